// Command probe checks which MongoDB features a server (normally the FerretDB test server)
// supports, and prints one line per check. It is a tool for keeping docs/ferretdb.md up to
// date, not part of the test suite.
//
// Usage (from tools/ferretdb):
//
//	eval "$(../../scripts/ferretdb-start)"
//	go run ./cmd/probe "$DOCSWEEP_TEST_MONGODB_URI"
//	../../scripts/ferretdb-stop
//
// It creates and drops a database named "docsweep_probe".
package main

import (
	"bufio"
	"context"
	"encoding/binary"
	"errors"
	"flag"
	"fmt"
	"hash/crc32"
	"io"
	"math"
	"net"
	"net/url"
	"os"
	"strings"
	"time"

	"go.mongodb.org/mongo-driver/bson"
	"go.mongodb.org/mongo-driver/bson/primitive"
	"go.mongodb.org/mongo-driver/mongo"
	"go.mongodb.org/mongo-driver/mongo/options"
	"go.mongodb.org/mongo-driver/mongo/readpref"
)

const dbName = "docsweep_probe"

var verbose = flag.Bool("v", false, "print full replies, as canonical extended JSON")

func main() {
	flag.Parse()

	uri := "mongodb://127.0.0.1:27017/"
	if flag.NArg() > 0 {
		uri = flag.Arg(0)
	} else if u := os.Getenv("DOCSWEEP_TEST_MONGODB_URI"); u != "" {
		uri = u
	}

	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()

	client, err := mongo.Connect(ctx, options.Client().ApplyURI(uri).SetDirect(true).SetServerSelectionTimeout(5*time.Second))
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	defer client.Disconnect(context.Background()) //nolint:errcheck // best effort

	db := client.Database(dbName)
	_ = db.Drop(ctx)
	defer db.Drop(context.Background()) //nolint:errcheck // best effort

	p := &prober{ctx: ctx, client: client, db: db}

	p.section("handshake / server info")
	p.cmd("hello", "admin", bson.D{{"hello", 1}})
	p.cmd("hello saslSupportedMechs", "admin", bson.D{{"hello", 1}, {"saslSupportedMechs", "admin.user"}}, "saslSupportedMechs")
	p.cmd("isMaster", "admin", bson.D{{"isMaster", 1}})
	p.cmd("ismaster (lowercase)", "admin", bson.D{{"ismaster", 1}}, "ismaster")
	p.cmd("buildInfo", "admin", bson.D{{"buildInfo", 1}}, "version", "versionArray", "ferretdbVersion", "gitVersion")
	p.cmd("serverStatus", "admin", bson.D{{"serverStatus", 1}}, "host", "version", "process")
	p.cmd("listCommands", "admin", bson.D{{"listCommands", 1}})
	p.cmd("hostInfo", "admin", bson.D{{"hostInfo", 1}})
	p.cmd("connectionStatus", "admin", bson.D{{"connectionStatus", 1}})
	p.cmd("getParameter *", "admin", bson.D{{"getParameter", "*"}})
	p.cmd("listDatabases nameOnly", "admin", bson.D{{"listDatabases", 1}, {"nameOnly", true}})
	p.cmd("replSetGetStatus", "admin", bson.D{{"replSetGetStatus", 1}})
	p.cmd("endSessions", "admin", bson.D{{"endSessions", bson.A{}}})
	p.cmd("startSession", "admin", bson.D{{"startSession", 1}})
	p.cmd("killAllSessions", "admin", bson.D{{"killAllSessions", bson.A{}}})
	p.cmd("ping with $readPreference secondaryPreferred", "admin", bson.D{{"ping", 1}, {"$readPreference", bson.D{{"mode", "secondaryPreferred"}}}})

	p.section("collections, validators")
	schema := bson.D{{"$jsonSchema", bson.D{
		{"bsonType", "object"},
		{"required", bson.A{"name"}},
		{"properties", bson.D{{"name", bson.D{{"bsonType", "string"}}}}},
	}}}
	p.cmd("create with $jsonSchema validator", dbName, bson.D{{"create", "validated"}, {"validator", schema}, {"validationLevel", "strict"}, {"validationAction", "error"}})
	p.cmd("create (plain)", dbName, bson.D{{"create", "plain"}})
	p.cmd("listCollections", dbName, bson.D{{"listCollections", 1}})
	p.cmd("listCollections nameOnly", dbName, bson.D{{"listCollections", 1}, {"nameOnly", true}})
	p.cmd("listCollections filter name", dbName, bson.D{{"listCollections", 1}, {"filter", bson.D{{"name", "plain"}}}})
	p.cmd("insert violating validator", dbName, bson.D{{"insert", "validated"}, {"documents", bson.A{bson.D{{"_id", 1}, {"name", 42}}}}}, "n", "writeErrors")
	p.cmd("collMod validator", dbName, bson.D{{"collMod", "plain"}, {"validator", schema}})
	p.cmd("collMod validationLevel", dbName, bson.D{{"collMod", "plain"}, {"validationLevel", "moderate"}})
	p.cmd("create capped", dbName, bson.D{{"create", "capped"}, {"capped", true}, {"size", 4096}})
	p.cmd("create view", dbName, bson.D{{"create", "aview"}, {"viewOn", "plain"}, {"pipeline", bson.A{}}})
	p.cmd("create timeseries", dbName, bson.D{{"create", "ts"}, {"timeseries", bson.D{{"timeField", "t"}}}})
	p.cmd("create with collation", dbName, bson.D{{"create", "coll"}, {"collation", bson.D{{"locale", "en"}}}})
	p.cmd("renameCollection", "admin", bson.D{{"renameCollection", dbName + ".plain"}, {"to", dbName + ".plain2"}})
	p.cmd("renameCollection back", "admin", bson.D{{"renameCollection", dbName + ".plain2"}, {"to", dbName + ".plain"}})
	p.cmd("collStats", dbName, bson.D{{"collStats", "plain"}}, "count", "size", "nindexes")
	p.cmd("dbStats", dbName, bson.D{{"dbStats", 1}}, "collections", "objects")
	p.cmd("validate", dbName, bson.D{{"validate", "plain"}}, "valid")
	p.cmd("dbHash", dbName, bson.D{{"dbHash", 1}})

	p.section("indexes")
	p.cmd("listIndexes", dbName, bson.D{{"listIndexes", "plain"}})
	p.cmd("createIndexes unique", dbName, bson.D{{"createIndexes", "plain"}, {"indexes", bson.A{bson.D{{"key", bson.D{{"email", 1}}}, {"name", "email_1"}, {"unique", true}}}}})
	p.cmd("createIndexes compound desc", dbName, bson.D{{"createIndexes", "plain"}, {"indexes", bson.A{bson.D{{"key", bson.D{{"a", 1}, {"b", -1}}}, {"name", "a_1_b_-1"}}}}})
	p.cmd("createIndexes sparse", dbName, bson.D{{"createIndexes", "plain"}, {"indexes", bson.A{bson.D{{"key", bson.D{{"s", 1}}}, {"name", "s_1"}, {"sparse", true}}}}})
	p.cmd("createIndexes partialFilterExpression", dbName, bson.D{{"createIndexes", "plain"}, {"indexes", bson.A{bson.D{{"key", bson.D{{"p", 1}}}, {"name", "p_1"}, {"unique", true}, {"partialFilterExpression", bson.D{{"p", bson.D{{"$exists", true}}}}}}}}})
	p.cmd("createIndexes TTL", dbName, bson.D{{"createIndexes", "plain"}, {"indexes", bson.A{bson.D{{"key", bson.D{{"t", 1}}}, {"name", "t_1"}, {"expireAfterSeconds", 3600}}}}})
	p.cmd("createIndexes text", dbName, bson.D{{"createIndexes", "plain"}, {"indexes", bson.A{bson.D{{"key", bson.D{{"txt", "text"}}}, {"name", "txt_text"}}}}})
	p.cmd("createIndexes hashed", dbName, bson.D{{"createIndexes", "plain"}, {"indexes", bson.A{bson.D{{"key", bson.D{{"h", "hashed"}}}, {"name", "h_hashed"}}}}})
	p.cmd("createIndexes collation", dbName, bson.D{{"createIndexes", "plain"}, {"indexes", bson.A{bson.D{{"key", bson.D{{"c", 1}}}, {"name", "c_1"}, {"collation", bson.D{{"locale", "en"}, {"strength", 2}}}}}}})
	p.cmd("listIndexes after", dbName, bson.D{{"listIndexes", "plain"}})
	p.cmd("insert duplicate of unique key", dbName, bson.D{{"insert", "plain"}, {"documents", bson.A{bson.D{{"_id", 1}, {"email", "x"}}, bson.D{{"_id", 2}, {"email", "x"}}}}}, "n", "writeErrors")
	p.cmd("insert duplicates (no index yet)", dbName, bson.D{{"insert", "dups"}, {"documents", bson.A{bson.D{{"_id", 1}, {"k", 1}}, bson.D{{"_id", 2}, {"k", 1}}}}}, "n")
	p.cmd("createIndexes unique over existing dups", dbName, bson.D{{"createIndexes", "dups"}, {"indexes", bson.A{bson.D{{"key", bson.D{{"k", 1}}}, {"name", "k_1"}, {"unique", true}}}}})
	p.cmd("insert duplicate _id", dbName, bson.D{{"insert", "plain"}, {"documents", bson.A{bson.D{{"_id", 1}}}}}, "n", "writeErrors")
	p.cmd("dropIndexes", dbName, bson.D{{"dropIndexes", "plain"}, {"index", "s_1"}})

	p.section("find / cursors")
	docs := bson.A{}
	for i := 10; i > 0; i-- {
		docs = append(docs, bson.D{{"_id", int32(i)}, {"v", i % 3}})
	}
	p.cmd("insert 10 (ordered)", dbName, bson.D{{"insert", "cur"}, {"documents", docs}}, "n")
	p.cursorFlow()
	p.cmd("find sort _id desc limit 3", dbName, bson.D{{"find", "cur"}, {"sort", bson.D{{"_id", -1}}}, {"limit", 3}}, "cursor")
	p.cmd("find projection+skip", dbName, bson.D{{"find", "cur"}, {"projection", bson.D{{"v", 0}}}, {"skip", 8}, {"sort", bson.D{{"_id", 1}}}}, "cursor")
	p.cmd("find $readPreference secondaryPreferred", dbName, bson.D{{"find", "cur"}, {"filter", bson.D{{"_id", 1}}}, {"$readPreference", bson.D{{"mode", "secondaryPreferred"}}}}, "cursor")
	p.cmd("find hint", dbName, bson.D{{"find", "cur"}, {"hint", bson.D{{"_id", 1}}}, {"batchSize", 1}}, "ok")
	p.cmd("find min/max", dbName, bson.D{{"find", "cur"}, {"min", bson.D{{"_id", 2}}}, {"hint", bson.D{{"_id", 1}}}}, "ok")
	p.cmd("find maxTimeMS+comment", dbName, bson.D{{"find", "cur"}, {"maxTimeMS", 1000}, {"comment", "probe"}, {"batchSize", 1}}, "ok")
	p.cmd("find noCursorTimeout", dbName, bson.D{{"find", "cur"}, {"noCursorTimeout", true}, {"batchSize", 1}}, "ok")
	p.cmd("find readConcern snapshot", dbName, bson.D{{"find", "cur"}, {"readConcern", bson.D{{"level", "snapshot"}}}, {"batchSize", 1}}, "ok")
	p.cmd("find $expr", dbName, bson.D{{"find", "cur"}, {"filter", bson.D{{"$expr", bson.D{{"$gt", bson.A{"$_id", 8}}}}}}}, "cursor")
	p.cmd("find $type", dbName, bson.D{{"find", "cur"}, {"filter", bson.D{{"v", bson.D{{"$type", "int"}}}}}, {"batchSize", 0}}, "ok")
	p.cmd("find $jsonSchema", dbName, bson.D{{"find", "cur"}, {"filter", schema}}, "ok")
	p.cmd("find $where", dbName, bson.D{{"find", "cur"}, {"filter", bson.D{{"$where", "true"}}}}, "ok")
	p.cmd("find $regex", dbName, bson.D{{"find", "validated"}, {"filter", bson.D{{"name", bson.D{{"$regex", "^a"}}}}}}, "ok")
	p.cmd("count", dbName, bson.D{{"count", "cur"}, {"query", bson.D{{"v", 1}}}}, "n")
	p.cmd("distinct", dbName, bson.D{{"distinct", "cur"}, {"key", "v"}}, "values")
	p.cmd("explain find", dbName, bson.D{{"explain", bson.D{{"find", "cur"}, {"filter", bson.D{{"_id", 3}}}}}}, "queryPlanner", "pushdown")

	p.section("aggregation")
	p.cmd("aggregate $group", dbName, bson.D{{"aggregate", "cur"}, {"pipeline", bson.A{bson.D{{"$group", bson.D{{"_id", "$v"}, {"n", bson.D{{"$sum", 1}}}}}}, bson.D{{"$sort", bson.D{{"_id", 1}}}}}}, {"cursor", bson.D{}}}, "cursor")
	p.cmd("aggregate $match/$project/$limit", dbName, bson.D{{"aggregate", "cur"}, {"pipeline", bson.A{bson.D{{"$match", bson.D{{"v", 0}}}}, bson.D{{"$project", bson.D{{"x", bson.D{{"$add", bson.A{"$_id", 1}}}}}}}, bson.D{{"$limit", 1}}}}, {"cursor", bson.D{}}}, "cursor")
	p.cmd("aggregate $lookup", dbName, bson.D{{"aggregate", "cur"}, {"pipeline", bson.A{bson.D{{"$lookup", bson.D{{"from", "plain"}, {"localField", "_id"}, {"foreignField", "_id"}, {"as", "j"}}}}}}, {"cursor", bson.D{}}}, "ok")
	p.cmd("aggregate $sample", dbName, bson.D{{"aggregate", "cur"}, {"pipeline", bson.A{bson.D{{"$sample", bson.D{{"size", 2}}}}}}, {"cursor", bson.D{}}}, "ok")
	p.cmd("aggregate $facet", dbName, bson.D{{"aggregate", "cur"}, {"pipeline", bson.A{bson.D{{"$facet", bson.D{{"a", bson.A{}}}}}}}, {"cursor", bson.D{}}}, "ok")
	p.cmd("aggregate $out", dbName, bson.D{{"aggregate", "cur"}, {"pipeline", bson.A{bson.D{{"$out", "cur_out"}}}}, {"cursor", bson.D{}}}, "ok")
	p.cmd("aggregate $merge", dbName, bson.D{{"aggregate", "cur"}, {"pipeline", bson.A{bson.D{{"$merge", "cur_out"}}}}, {"cursor", bson.D{}}}, "ok")
	p.cmd("aggregate $collStats", dbName, bson.D{{"aggregate", "cur"}, {"pipeline", bson.A{bson.D{{"$collStats", bson.D{{"count", bson.D{}}}}}}}, {"cursor", bson.D{}}}, "cursor")
	p.cmd("aggregate $indexStats", dbName, bson.D{{"aggregate", "cur"}, {"pipeline", bson.A{bson.D{{"$indexStats", bson.D{}}}}}, {"cursor", bson.D{}}}, "ok")
	p.cmd("aggregate $changeStream", dbName, bson.D{{"aggregate", "cur"}, {"pipeline", bson.A{bson.D{{"$changeStream", bson.D{}}}}}, {"cursor", bson.D{}}}, "ok")
	p.cmd("aggregate $addFields $type", dbName, bson.D{{"aggregate", "cur"}, {"pipeline", bson.A{bson.D{{"$addFields", bson.D{{"t", bson.D{{"$type", "$v"}}}}}}, bson.D{{"$limit", 1}}}}, {"cursor", bson.D{}}}, "cursor")

	p.section("writes")
	p.cmd("update $set multi", dbName, bson.D{{"update", "cur"}, {"updates", bson.A{bson.D{{"q", bson.D{{"v", 0}}}, {"u", bson.D{{"$set", bson.D{{"z", true}}}}}, {"multi", true}}}}}, "n", "nModified")
	p.cmd("update upsert", dbName, bson.D{{"update", "cur"}, {"updates", bson.A{bson.D{{"q", bson.D{{"_id", 99}}}, {"u", bson.D{{"$set", bson.D{{"v", 9}}}}}, {"upsert", true}}}}}, "n", "upserted")
	p.cmd("update replacement", dbName, bson.D{{"update", "cur"}, {"updates", bson.A{bson.D{{"q", bson.D{{"_id", 99}}}, {"u", bson.D{{"v", 10}}}}}}}, "n", "nModified")
	p.cmd("update pipeline", dbName, bson.D{{"update", "cur"}, {"updates", bson.A{bson.D{{"q", bson.D{{"_id", 99}}}, {"u", bson.A{bson.D{{"$set", bson.D{{"w", 1}}}}}}}}}}, "n", "nModified")
	p.cmd("update arrayFilters", dbName, bson.D{{"update", "cur"}, {"updates", bson.A{bson.D{{"q", bson.D{{"_id", 99}}}, {"u", bson.D{{"$set", bson.D{{"arr.$[e]", 1}}}}}, {"arrayFilters", bson.A{bson.D{{"e", 0}}}}}}}}, "n", "nModified")
	p.cmd("update $unset/$rename/$inc", dbName, bson.D{{"update", "cur"}, {"updates", bson.A{bson.D{{"q", bson.D{{"_id", 99}}}, {"u", bson.D{{"$unset", bson.D{{"w", ""}}}, {"$rename", bson.D{{"v", "vv"}}}, {"$inc", bson.D{{"n", 1}}}}}}}}}, "n", "nModified")
	p.cmd("insert unordered with dup", dbName, bson.D{{"insert", "cur"}, {"ordered", false}, {"documents", bson.A{bson.D{{"_id", 1}}, bson.D{{"_id", 100}}}}}, "n", "writeErrors")
	p.cmd("insert writeConcern majority", dbName, bson.D{{"insert", "cur"}, {"documents", bson.A{bson.D{{"_id", 101}}}}, {"writeConcern", bson.D{{"w", "majority"}, {"j", true}}}}, "n")
	p.cmd("insert bypassDocumentValidation", dbName, bson.D{{"insert", "validated"}, {"bypassDocumentValidation", true}, {"documents", bson.A{bson.D{{"_id", 2}, {"name", 42}}}}}, "n", "writeErrors")
	p.cmd("insert field name with '.'", dbName, bson.D{{"insert", "odd"}, {"documents", bson.A{bson.D{{"_id", 1}, {"a.b", 1}}}}}, "n")
	p.cmd("insert field name starting with '$'", dbName, bson.D{{"insert", "odd"}, {"documents", bson.A{bson.D{{"_id", 2}, {"$x", 1}}}}}, "n")
	p.cmd("insert empty field name", dbName, bson.D{{"insert", "odd"}, {"documents", bson.A{bson.D{{"_id", 3}, {"", 1}}}}}, "n")
	p.cmd("insert duplicate field names", dbName, bson.D{{"insert", "odd"}, {"documents", bson.A{bson.D{{"_id", 4}, {"f", 1}, {"f", 2}}}}}, "n")
	for i, tv := range []struct {
		name string
		v    any
	}{
		{"double", 1.5},
		{"string", "s"},
		{"document", bson.D{{"x", 1}}},
		{"array", bson.A{1, "a"}},
		{"binary subtype 0", primitive.Binary{Subtype: 0, Data: []byte{1, 2}}},
		{"binary subtype 4 (UUID)", primitive.Binary{Subtype: 4, Data: make([]byte, 16)}},
		{"undefined", primitive.Undefined{}},
		{"objectId", primitive.NewObjectID()},
		{"bool", true},
		{"datetime", primitive.NewDateTimeFromTime(time.Unix(0, 0))},
		{"null", nil},
		{"regex", primitive.Regex{Pattern: "a", Options: "i"}},
		{"DBPointer", primitive.DBPointer{DB: "x", Pointer: primitive.NewObjectID()}},
		{"JavaScript", primitive.JavaScript("1")},
		{"symbol", primitive.Symbol("s")},
		{"JavaScript with scope", primitive.CodeWithScope{Code: "1", Scope: bson.D{}}},
		{"int32", int32(1)},
		{"timestamp", primitive.Timestamp{T: 1, I: 1}},
		{"int64", int64(1)},
		{"decimal128", primitive.NewDecimal128(0, 1)},
		{"minKey", primitive.MinKey{}},
		{"maxKey", primitive.MaxKey{}},
		{"double -0.0", negZero()},
		{"double NaN", nan()},
	} {
		p.cmd("insert BSON type "+tv.name, dbName, bson.D{{"insert", "types"}, {"documents", bson.A{bson.D{{"_id", int32(i)}, {"v", tv.v}}}}}, "n")
	}

	p.negZeroRoundTrip()

	p.cmd("insert mixed-type _ids", dbName, bson.D{{"insert", "mixed"}, {"documents", bson.A{
		bson.D{{"_id", "str"}}, bson.D{{"_id", primitive.NewObjectIDFromTimestamp(time.Unix(0, 0))}}, bson.D{{"_id", true}},
		bson.D{{"_id", 2.5}}, bson.D{{"_id", int64(1)}}, bson.D{{"_id", bson.D{{"a", 1}}}}, bson.D{{"_id", int32(3)}},
		bson.D{{"_id", primitive.NewDateTimeFromTime(time.Unix(0, 0))}}, bson.D{{"_id", nil}},
	}}}, "n")
	p.cmd("find mixed-type _ids sort _id asc", dbName, bson.D{{"find", "mixed"}, {"sort", bson.D{{"_id", 1}}}}, "cursor")
	p.cmd("find mixed-type _ids natural order", dbName, bson.D{{"find", "mixed"}}, "cursor")
	p.cmd("insert array _id", dbName, bson.D{{"insert", "mixed"}, {"documents", bson.A{bson.D{{"_id", bson.A{1}}}}}}, "n")
	p.cmd("insert 2 MiB document", dbName, bson.D{{"insert", "big"}, {"documents", bson.A{bson.D{{"_id", 1}, {"s", strings.Repeat("x", 2<<20)}}}}}, "n")
	p.cmd("insert 100-level nested document", dbName, bson.D{{"insert", "big"}, {"documents", bson.A{bson.D{{"_id", 2}, {"d", deep(100)}}}}}, "n")
	p.cmd("insert field order preserved", dbName, bson.D{{"insert", "order"}, {"documents", bson.A{bson.D{{"_id", 1}, {"z", 1}, {"a", 1}, {"m", 1}}}}}, "n")
	p.cmd("find field order", dbName, bson.D{{"find", "order"}}, "cursor")
	p.cmd("find types round trip", dbName, bson.D{{"find", "types"}, {"sort", bson.D{{"_id", 1}}}}, "cursor")
	p.cmd("findAndModify", dbName, bson.D{{"findAndModify", "cur"}, {"query", bson.D{{"_id", 1}}}, {"update", bson.D{{"$set", bson.D{{"f", 1}}}}}, {"new", true}}, "value")
	p.cmd("delete limit 0", dbName, bson.D{{"delete", "cur"}, {"deletes", bson.A{bson.D{{"q", bson.D{{"v", 1}}}, {"limit", 0}}}}}, "n")
	p.cmd("delete limit 1", dbName, bson.D{{"delete", "cur"}, {"deletes", bson.A{bson.D{{"q", bson.D{}}, {"limit", 1}}}}}, "n")
	p.cmd("bulkWrite (8.0 command)", "admin", bson.D{{"bulkWrite", 1}, {"ops", bson.A{bson.D{{"insert", 0}, {"document", bson.D{{"_id", 500}}}}}}, {"nsInfo", bson.A{bson.D{{"ns", dbName + ".cur"}}}}})

	p.section("sessions / transactions (driver)")
	p.transaction()

	p.section("wire protocol (raw)")
	p.raw(uri)
}

type prober struct {
	ctx    context.Context
	client *mongo.Client
	db     *mongo.Database
}

func (p *prober) section(name string) { fmt.Printf("\n## %s\n", name) }

// cmd runs a command and prints OK plus the selected reply fields, or the error.
func (p *prober) cmd(name, db string, cmd bson.D, fields ...string) bson.M {
	// bson.Raw keeps the field order of the reply (a bson.M would not)
	raw, err := p.client.Database(db).RunCommand(p.ctx, cmd).Raw()

	// write commands with writeErrors come back as errors from the driver: show the reply
	var we mongo.WriteException
	if errors.As(err, &we) && we.Raw != nil {
		fmt.Printf("%-45s WERR %s\n", name, compact(we.Raw))
		return nil
	}

	if err != nil {
		fmt.Printf("%-45s ERR  %s\n", name, errString(err))
		return nil
	}

	fmt.Printf("%-45s OK   %s\n", name, summarize(raw, fields))

	var res bson.M
	if err = bson.Unmarshal(raw, &res); err != nil {
		panic(err)
	}

	return res
}

func summarize(res bson.Raw, fields []string) string {
	if *verbose || len(fields) == 0 {
		return compact(res)
	}

	var parts []string

	for _, f := range fields {
		if v, err := res.LookupErr(f); err == nil {
			parts = append(parts, f+"="+compact(v))
		} else {
			parts = append(parts, f+"=<absent>")
		}
	}

	return strings.Join(parts, " ")
}

// compact renders a value (bson.Raw or bson.RawValue keep their field order) as relaxed extended JSON.
func compact(v any) string {
	var doc any = bson.D{{"v", v}}
	if r, ok := v.(bson.Raw); ok {
		doc = r
	}

	b, err := bson.MarshalExtJSON(doc, *verbose, false) // -v: canonical (shows int32/int64/double)
	if err != nil {
		return fmt.Sprint(v)
	}

	s := string(b)
	if _, ok := v.(bson.Raw); !ok {
		s = strings.TrimSuffix(strings.TrimPrefix(s, `{"v":`), "}")
	}

	if len(s) > 400 && !*verbose {
		s = s[:400] + "…"
	}

	return s
}

func errString(err error) string {
	var ce mongo.CommandError
	if errors.As(err, &ce) {
		return fmt.Sprintf("code=%d (%s): %s", ce.Code, ce.Name, ce.Message)
	}

	return err.Error()
}

// cursorFlow checks find with sort on _id + batchSize, then getMore and killCursors.
func (p *prober) cursorFlow() {
	res := p.cmd("find sort _id asc batchSize 3", dbName, bson.D{{"find", "cur"}, {"sort", bson.D{{"_id", 1}}}, {"batchSize", 3}}, "cursor")
	if res == nil {
		return
	}

	cursor := res["cursor"].(bson.M)
	id := cursor["id"]
	fmt.Printf("%-45s      cursor id type %T, firstBatch %d docs\n", "", id, len(cursor["firstBatch"].(bson.A)))

	p.cmd("getMore batchSize 4", dbName, bson.D{{"getMore", id}, {"collection", "cur"}, {"batchSize", 4}}, "cursor")
	p.cmd("getMore (rest)", dbName, bson.D{{"getMore", id}, {"collection", "cur"}}, "cursor")
	p.cmd("getMore after exhaustion", dbName, bson.D{{"getMore", id}, {"collection", "cur"}})

	res = p.cmd("find batchSize 2 (to kill)", dbName, bson.D{{"find", "cur"}, {"sort", bson.D{{"_id", 1}}}, {"batchSize", 2}}, "ok")
	if res == nil {
		return
	}

	id = res["cursor"].(bson.M)["id"]
	p.cmd("killCursors", dbName, bson.D{{"killCursors", "cur"}, {"cursors", bson.A{id}}})
	p.cmd("getMore after killCursors", dbName, bson.D{{"getMore", id}, {"collection", "cur"}})
	p.cmd("killCursors unknown id", dbName, bson.D{{"killCursors", "cur"}, {"cursors", bson.A{int64(123456789)}}})
	p.cmd("getMore wrong collection", dbName, bson.D{{"getMore", int64(1)}, {"collection", "nope"}})

	// driver-level: the same via the Go driver, with secondaryPreferred read preference
	coll := p.db.Collection("cur", options.Collection().SetReadPreference(readpref.SecondaryPreferred()))

	c, err := coll.Find(p.ctx, bson.D{}, options.Find().SetSort(bson.D{{"_id", 1}}).SetBatchSize(2))
	if err != nil {
		fmt.Printf("%-45s ERR  %s\n", "driver Find secondaryPreferred batchSize 2", errString(err))
		return
	}

	var ids []any

	for c.Next(p.ctx) {
		ids = append(ids, c.Current.Lookup("_id").Int32())
	}

	if err = c.Err(); err != nil {
		fmt.Printf("%-45s ERR  %s\n", "driver Find secondaryPreferred batchSize 2", errString(err))
		return
	}

	_ = c.Close(p.ctx)
	fmt.Printf("%-45s OK   ids=%v\n", "driver Find secondaryPreferred batchSize 2", ids)
}

func (p *prober) transaction() {
	sess, err := p.client.StartSession()
	if err != nil {
		fmt.Printf("%-45s ERR  %s\n", "StartSession", errString(err))
		return
	}
	defer sess.EndSession(p.ctx)

	_, err = sess.WithTransaction(p.ctx, func(sc mongo.SessionContext) (any, error) {
		return p.db.Collection("txn").InsertOne(sc, bson.D{{"_id", 1}})
	})
	if err != nil {
		fmt.Printf("%-45s ERR  %s\n", "WithTransaction insert", errString(err))
	} else {
		fmt.Printf("%-45s OK\n", "WithTransaction insert")
	}

	p.cmd("commitTransaction (raw)", "admin", bson.D{{"commitTransaction", 1}})
	p.cmd("abortTransaction (raw)", "admin", bson.D{{"abortTransaction", 1}})
}

// raw checks OP_MSG with a CRC-32C checksum (valid and invalid), OP_MSG exhaustAllowed/moreToCome,
// and legacy OP_QUERY hello.
func (p *prober) raw(uri string) {
	u, err := url.Parse(uri)
	if err != nil {
		fmt.Println(err)
		return
	}

	send := func(name string, msg []byte, expectReply bool) {
		conn, err := net.DialTimeout("tcp", u.Host, 3*time.Second)
		if err != nil {
			fmt.Printf("%-45s ERR  %v\n", name, err)
			return
		}
		defer conn.Close()

		_ = conn.SetDeadline(time.Now().Add(3 * time.Second))

		if _, err = conn.Write(msg); err != nil {
			fmt.Printf("%-45s ERR  write: %v\n", name, err)
			return
		}

		r := bufio.NewReader(conn)

		var hdr [16]byte
		if _, err = io.ReadFull(r, hdr[:]); err != nil {
			if expectReply {
				fmt.Printf("%-45s ERR  no reply (%v)\n", name, err)
			} else {
				fmt.Printf("%-45s OK   no reply, as expected (%v)\n", name, err)
			}

			return
		}

		l := binary.LittleEndian.Uint32(hdr[0:])
		op := binary.LittleEndian.Uint32(hdr[12:])
		body := make([]byte, l-16)

		if _, err = io.ReadFull(r, body); err != nil {
			fmt.Printf("%-45s ERR  short reply: %v\n", name, err)
			return
		}

		var doc bson.Raw

		switch op {
		case 2013: // OP_MSG: flags, kind 0, doc
			flags := binary.LittleEndian.Uint32(body)
			doc = bson.Raw(body[5:])
			doc = doc[:binary.LittleEndian.Uint32(doc)]
			fmt.Printf("%-45s OK   OP_MSG reply flags=%#x %s\n", name, flags, shortDoc(doc))
		case 1: // OP_REPLY: flags, cursorID, startingFrom, numberReturned, docs
			doc = bson.Raw(body[20:])
			doc = doc[:binary.LittleEndian.Uint32(doc)]
			fmt.Printf("%-45s OK   OP_REPLY %s\n", name, shortDoc(doc))
		default:
			fmt.Printf("%-45s ??   opcode %d\n", name, op)
		}
	}

	ping := must(bson.Marshal(bson.D{{"ping", 1}, {"$db", "admin"}}))
	hello := must(bson.Marshal(bson.D{{"hello", 1}, {"$db", "admin"}}))

	send("OP_MSG ping, no checksum", opMsg(1, 0, ping, false, false), true)
	send("OP_MSG ping, valid CRC-32C checksum", opMsg(2, 1, ping, true, false), true)
	send("OP_MSG ping, WRONG checksum", opMsg(3, 1, ping, true, true), true)
	send("OP_MSG ping, moreToCome (no reply expected)", opMsg(4, 2, ping, false, false), false)
	send("OP_MSG hello, exhaustAllowed", opMsg(5, 1<<16, hello, false, false), true)

	isMaster := must(bson.Marshal(bson.D{{"isMaster", 1}}))
	send("OP_QUERY admin.$cmd isMaster", opQuery(6, "admin.$cmd", isMaster), true)
	send("OP_QUERY admin.$cmd hello", opQuery(7, "admin.$cmd", must(bson.Marshal(bson.D{{"hello", 1}}))), true)
	send("OP_QUERY admin.$cmd ping (non-handshake)", opQuery(8, "admin.$cmd", must(bson.Marshal(bson.D{{"ping", 1}}))), true)
}

func shortDoc(doc bson.Raw) string {
	var m bson.M
	if err := bson.Unmarshal(doc, &m); err != nil {
		return err.Error()
	}

	keep := bson.M{}

	for _, k := range []string{"ok", "errmsg", "code", "codeName", "isWritablePrimary", "ismaster", "helloOk", "maxWireVersion"} {
		if v, ok := m[k]; ok {
			keep[k] = v
		}
	}

	return compact(keep)
}

func opMsg(reqID int32, flags uint32, doc []byte, checksum, corrupt bool) []byte {
	if checksum {
		flags |= 1
	}

	b := make([]byte, 16, 64)
	b = binary.LittleEndian.AppendUint32(b, flags)
	b = append(b, 0)
	b = append(b, doc...)

	if checksum {
		b = append(b, 0, 0, 0, 0)
	}

	binary.LittleEndian.PutUint32(b[0:], uint32(len(b)))
	binary.LittleEndian.PutUint32(b[4:], uint32(reqID))
	binary.LittleEndian.PutUint32(b[12:], 2013)

	if checksum {
		sum := crc32.Checksum(b[:len(b)-4], crc32.MakeTable(crc32.Castagnoli))
		if corrupt {
			sum ^= 0xdeadbeef
		}

		binary.LittleEndian.PutUint32(b[len(b)-4:], sum)
	}

	return b
}

func opQuery(reqID int32, ns string, doc []byte) []byte {
	b := make([]byte, 16, 64)
	b = binary.LittleEndian.AppendUint32(b, 0) // flags
	b = append(b, ns...)
	b = append(b, 0)
	b = binary.LittleEndian.AppendUint32(b, 0)          // numberToSkip
	b = binary.LittleEndian.AppendUint32(b, 0xffffffff) // numberToReturn -1
	b = append(b, doc...)
	binary.LittleEndian.PutUint32(b[0:], uint32(len(b)))
	binary.LittleEndian.PutUint32(b[4:], uint32(reqID))
	binary.LittleEndian.PutUint32(b[12:], 2004)

	return b
}

func must[T any](v T, err error) T {
	if err != nil {
		panic(err)
	}

	return v
}

// negZeroRoundTrip checks whether -0.0 comes back with its sign.
func (p *prober) negZeroRoundTrip() {
	coll := p.db.Collection("negzero")
	if _, err := coll.InsertOne(p.ctx, bson.D{{"_id", 1}, {"v", negZero()}}); err != nil {
		fmt.Printf("%-45s ERR  %s\n", "double -0.0 round trip", errString(err))
		return
	}

	raw, err := coll.FindOne(p.ctx, bson.D{{"_id", 1}}).Raw()
	if err != nil {
		fmt.Printf("%-45s ERR  %s\n", "double -0.0 round trip", errString(err))
		return
	}

	v := raw.Lookup("v").Double()
	fmt.Printf("%-45s OK   stored -0.0, read back %v (sign bit %v)\n", "double -0.0 round trip", v, math.Signbit(v))
}

func deep(n int) bson.D {
	d := bson.D{{"x", 1}}
	for range n {
		d = bson.D{{"x", d}}
	}

	return d
}

func negZero() float64 {
	z := 0.0
	return -z
}

func nan() float64 {
	z := 0.0
	return z / z
}
