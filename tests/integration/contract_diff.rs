//! `docsweep contract infer` and `contract diff` against a real MongoDB-wire server
//! (`DOCSWEEP_TEST_MONGODB_URI`, FerretDB started by scripts/test unless set): a contract
//! inferred from a live collection, its index drift as a table, as JSON and in a live
//! check's report.json; the validator side where the server has validators (FerretDB
//! answers 238: the validator side is covered by the unit tests over a listCollections reply).

use bson::{doc, oid::ObjectId, Document};
use mongodb::sync::Client;
use serde_json::{json, Value};

use crate::util::{collection, fresh_db, server, with_db, Workdir};

fn seed(client: &Client, db: &str) -> Vec<ObjectId> {
    let customers: Vec<ObjectId> = (0..5).map(|_| ObjectId::new()).collect();
    client
        .database(db)
        .collection::<Document>("customers")
        .insert_many(
            customers
                .iter()
                .map(|id| doc! {"_id": id, "email": format!("{id}@example.com")}),
        )
        .run()
        .unwrap();
    let orders = client.database(db).collection::<Document>("orders");
    orders
        .insert_many((0..20).map(|i| {
            doc! {"_id": ObjectId::new(), "customer_id": customers[i % 5], "status": "new",
            "total": 1.5 + i as f64, "items": [{"sku": "A", "qty": 1}]}
        }))
        .run()
        .unwrap();
    client
        .database(db)
        .run_command(doc! {"createIndexes": "orders", "indexes": [
            {"key": {"status": 1, "total": -1}, "name": "status_1_total_-1"},
            {"key": {"customer_id": 1}, "name": "customer_id_1"},
        ]})
        .run()
        .unwrap();
    customers
}

fn keys(v: &Value) -> Vec<Value> {
    v.as_array()
        .unwrap()
        .iter()
        .map(|i| i["key"].clone())
        .collect()
}

#[test]
fn infer_from_a_live_collection_then_index_drift() {
    let Some(uri) = server() else { return };
    let db = fresh_db("infer_diff");
    let client = Client::with_uri_str(&uri).unwrap();
    seed(&client, &db);
    let source = with_db(&uri, &db);
    let w = Workdir::new();

    let run = w.docsweep(&[
        "contract",
        "infer",
        "--source",
        &source,
        "--collection",
        "orders",
        "--closed",
    ]);
    assert_eq!(run.code, 0, "{}{}", run.stdout, run.stderr);
    assert!(
        run.stdout
            .contains("inferred 1 version(s) from 20 document(s)"),
        "{}",
        run.stdout
    );
    let text = w.read("schemas/orders/contract.toml");
    // The indexes from listIndexes, each key in its order; the reference as a suggestion.
    assert!(
        text.contains("{ key = { status = 1, total = -1 }, name = \"status_1_total_-1\" }"),
        "{text}"
    );
    assert!(
        text.contains("{ key = { customer_id = 1 }, name = \"customer_id_1\" }"),
        "{text}"
    );
    assert!(
        text.contains("#   { field = \"customer_id\", collection = \"customers\" },"),
        "{text}"
    );
    // A check of the same collection against it is clean; its drift section is there.
    let check = |dir: &str| {
        let run = w.docsweep(&[
            "check",
            "--no-progress",
            "--source",
            &source,
            "--collection",
            "orders",
            "--schemas",
            "schemas",
            "--report-dir",
            dir,
        ]);
        let report = w.read_json(&format!("{dir}/report.json"));
        (run, report)
    };
    let (run, report) = check("r1");
    assert_eq!(run.code, 0, "{}{}", run.stdout, run.stderr);
    let drift = &collection(&report, "orders")["drift"];
    assert_eq!(drift["indexes"]["missing"], json!([]), "{drift:#}");
    assert_eq!(drift["indexes"]["unexpected"], json!([]), "{drift:#}");
    assert_eq!(drift["indexes"]["different"], json!([]), "{drift:#}");

    let diff = |extra: &[&str]| {
        let mut args = vec!["contract", "diff", "--source", source.as_str()];
        args.extend_from_slice(extra);
        w.docsweep(&args)
    };
    let validators = drift["validator"] == true;
    if !validators {
        // No validator on the server: that alone is drift.
        let run = diff(&[]);
        assert_eq!(run.code, 1, "{}{}", run.stdout, run.stderr);
        assert!(run.stdout.contains("no validator"), "{}", run.stdout);
    }

    // Now the indexes drift: one dropped, one left over, one with other options.
    let database = client.database(&db);
    database
        .run_command(doc! {"dropIndexes": "orders", "index": "customer_id_1"})
        .run()
        .unwrap();
    database
        .run_command(doc! {"dropIndexes": "orders", "index": "status_1_total_-1"})
        .run()
        .unwrap();
    database
        .run_command(doc! {"createIndexes": "orders", "indexes": [
            {"key": {"status": 1, "total": -1}, "name": "status_1_total_-1", "unique": true},
            {"key": {"legacy": 1}, "name": "legacy_1"},
        ]})
        .run()
        .unwrap();

    let run = diff(&["--collection", "orders", "--json"]);
    assert_eq!(run.code, 1, "{}{}", run.stdout, run.stderr);
    let j: Value = serde_json::from_str(&run.stdout).unwrap();
    assert_eq!(j["format"], "docsweep-drift/1");
    assert_eq!(j["drift"], true);
    let o = &j["collections"][0];
    assert_eq!(o["name"], "orders");
    assert_eq!(keys(&o["indexes"]["missing"]), [json!({"customer_id": 1})]);
    assert_eq!(keys(&o["indexes"]["unexpected"]), [json!({"legacy": 1})]);
    assert_eq!(
        o["indexes"]["different"],
        json!([{
            "key": {"status": 1, "total": -1},
            "options": ["unique"],
            "contract": {"key": {"status": 1, "total": -1}, "name": "status_1_total_-1"},
            "server": {"key": {"status": 1, "total": -1}, "name": "status_1_total_-1", "unique": true}
        }])
    );

    let run = diff(&["--collection", "orders"]);
    assert_eq!(run.code, 1, "{}{}", run.stdout, run.stderr);
    for line in [
        "index missing",
        "{ customer_id: 1 }",
        "index unexpected",
        "{ legacy: 1 }",
        "index unique differs",
        "{ status: 1, total: -1 }",
    ] {
        assert!(run.stdout.contains(line), "{line}: {}", run.stdout);
    }

    // A live check reports the same drift per collection.
    let (_, report) = check("r2");
    let drift = &collection(&report, "orders")["drift"];
    assert_eq!(drift["indexes"], o["indexes"], "{drift:#}");
    assert_eq!(drift["schema"], o["schema"]);

    // Errors: a collection the server lacks, a source that is not live, a dead server.
    let run = w.docsweep(&[
        "contract",
        "diff",
        "--source",
        &source,
        "--collection",
        "customers",
    ]);
    assert_eq!(run.code, 2, "no contract for customers: {}", run.stderr);
    assert!(
        run.stderr.contains("--collection customers: no contract"),
        "{}",
        run.stderr
    );
    std::fs::create_dir_all(w.path().join("schemas/gone")).unwrap();
    std::fs::write(
        w.path().join("schemas/gone/contract.toml"),
        "collection = \"gone\"\ntarget = 1\n[[versions]]\nversion = 1\nschema = \"../orders/v1.schema.json\"\n",
    )
    .unwrap();
    let run = diff(&["--collection", "gone"]);
    assert_eq!(run.code, 2, "{}", run.stderr);
    assert!(
        run.stderr.contains("has no such collection"),
        "{}",
        run.stderr
    );
    let run = diff(&["--json"]);
    assert_eq!(run.code, 1);
    let j: Value = serde_json::from_str(&run.stdout).unwrap();
    let gone = j["collections"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["name"] == "gone")
        .unwrap();
    assert_eq!(gone["exists"], false);
    let run = w.docsweep(&["contract", "diff", "--source", "dump:x"]);
    assert_eq!(run.code, 2, "{}", run.stderr);
    let dead = "mongodb://127.0.0.1:1/shop?serverSelectionTimeoutMS=300&connectTimeoutMS=300";
    let run = w.docsweep(&["contract", "diff", "--source", dead]);
    assert_eq!(run.code, 3, "{}", run.stderr);
    let run = w.docsweep(&[
        "contract",
        "infer",
        "--source",
        dead,
        "--collection",
        "orders",
        "--out",
        "dead",
    ]);
    assert_eq!(run.code, 3, "{}", run.stderr);
    // A live collection that does not exist / is empty: exit 2.
    database
        .run_command(doc! {"create": "empty"})
        .run()
        .unwrap();
    for c in ["empty", "nope"] {
        let run = w.docsweep(&[
            "contract",
            "infer",
            "--source",
            &source,
            "--collection",
            c,
            "--out",
            "x",
        ]);
        assert_eq!(run.code, 2, "{c}: {}", run.stderr);
        assert!(run.stderr.contains(c), "{}", run.stderr);
    }
    database.drop().run().unwrap();
}

/// On a server with validators (a real MongoDB): a validator that differs from the contract
/// is reported property by property, with its validation level. FerretDB refuses to create
/// validators (238), which is checked instead.
#[test]
fn validator_drift_where_the_server_has_validators() {
    let Some(uri) = server() else { return };
    let db = fresh_db("validator_drift");
    let client = Client::with_uri_str(&uri).unwrap();
    let database = client.database(&db);
    let created = database
        .run_command(doc! {
            "create": "things",
            "validator": {"$jsonSchema": {"bsonType": "object", "required": ["a"],
                "properties": {"_id": {"bsonType": "objectId"}, "a": {"bsonType": "string"}}}},
            "validationLevel": "moderate",
        })
        .run();
    if let Err(e) = created {
        let code = match e.kind.as_ref() {
            mongodb::error::ErrorKind::Command(c) => c.code,
            other => panic!("create with a validator failed unexpectedly: {other:?}"),
        };
        assert_eq!(code, 238, "NotImplemented expected: {e}");
        return;
    }
    database
        .collection::<Document>("things")
        .insert_many([doc! {"a": "x", "b": 1}, doc! {"a": "y", "b": 2}])
        .run()
        .unwrap();
    let w = Workdir::new();
    let source = with_db(&uri, &db);
    let run = w.docsweep(&[
        "contract",
        "infer",
        "--source",
        &source,
        "--collection",
        "things",
        "--closed",
    ]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    let run = w.docsweep(&["contract", "diff", "--source", &source, "--json"]);
    assert_eq!(run.code, 1, "{}{}", run.stdout, run.stderr);
    let j: Value = serde_json::from_str(&run.stdout).unwrap();
    let o = &j["collections"][0];
    let changes: Vec<(String, String)> = o["schema"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| {
            (
                c["change"].as_str().unwrap().to_string(),
                c["path"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    for want in [
        ("property_removed", "b"),
        ("required_removed", "b"),
        ("additional_properties_changed", ""),
    ] {
        assert!(
            changes.contains(&(want.0.to_string(), want.1.to_string())),
            "{want:?} in {changes:?}"
        );
    }
    assert_eq!(
        o["validation"],
        json!([{"setting": "validationLevel", "expected": "strict", "actual": "moderate"}])
    );
    database.drop().run().unwrap();
}
