//! Live MongoDB sources against a real MongoDB-wire server (`DOCSWEEP_TEST_MONGODB_URI`,
//! FerretDB started by scripts/test unless set): the live report equals the report of a
//! dump of the same data, an unreachable server exits 3 quickly, passwords never show,
//! and a connection dropped mid-scan is resumed without counting anything twice.

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;

use bson::{doc, Document, RawDocumentBuf};
use mongodb::sync::Client;
use serde_json::Value;

use crate::util::{example, fresh_db, server, with_db, Workdir};

/// The documents of a dump file that a server accepts: readable, with an `_id`, the
/// first of each `_id`, nested at most 100 levels.
pub(crate) fn loadable(bson_file: &Path) -> Vec<RawDocumentBuf> {
    let bytes = std::fs::read(bson_file).unwrap();
    let mut out = Vec::new();
    let mut seen = std::collections::HashSet::new();
    let mut pos = 0;
    while pos + 4 <= bytes.len() {
        let len = i32::from_le_bytes(bytes[pos..pos + 4].try_into().unwrap()) as usize;
        if pos + len > bytes.len() {
            break;
        }
        let raw = &bytes[pos..pos + len];
        pos += len;
        let Ok(decoded) = docsweep::value::from_bson(raw) else {
            continue;
        };
        let Some(id) = decoded.value.get("_id") else {
            continue;
        };
        if decoded.depth > 100 || !seen.insert(docsweep::value::key_hash(id)) {
            continue;
        }
        out.push(RawDocumentBuf::from_bytes(raw.to_vec()).unwrap());
    }
    out
}

/// Loads the example's collections into `db` (with the dump's indexes) and writes a dump
/// of exactly what was loaded to `dump_dir/<db>/`.
pub(crate) fn load_example(client: &Client, db: &str, dump_dir: &Path) {
    let src = example().join("data/dump/shop");
    let out = dump_dir.join(db);
    std::fs::create_dir_all(&out).unwrap();
    for coll in ["customers", "orders"] {
        let docs = loadable(&src.join(format!("{coll}.bson")));
        let c = client.database(db).collection::<RawDocumentBuf>(coll);
        for chunk in docs.chunks(500) {
            c.insert_many(chunk.to_vec()).run().unwrap();
        }
        let mut file = Vec::new();
        for d in &docs {
            file.extend_from_slice(d.as_bytes());
        }
        std::fs::write(out.join(format!("{coll}.bson")), file).unwrap();
        let meta_path = src.join(format!("{coll}.metadata.json"));
        std::fs::copy(&meta_path, out.join(format!("{coll}.metadata.json"))).unwrap();
        let meta: Value =
            serde_json::from_str(&std::fs::read_to_string(&meta_path).unwrap()).unwrap();
        let indexes: Vec<Document> = meta["indexes"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|ix| ix["name"] != "_id_")
            .map(|ix| {
                let spec = docsweep::contract::IndexSpec::from_server_json(ix).unwrap();
                let mut key = Document::new();
                for (f, _) in &spec.key.0 {
                    key.insert(
                        f.clone(),
                        ix["key"][f]["$numberInt"]
                            .as_str()
                            .unwrap()
                            .parse::<i32>()
                            .unwrap(),
                    );
                }
                let mut d = doc! {"key": key, "name": spec.name.clone().unwrap()};
                if spec.unique {
                    d.insert("unique", true);
                }
                d
            })
            .collect();
        if !indexes.is_empty() {
            client
                .database(db)
                .run_command(doc! {"createIndexes": coll, "indexes": indexes})
                .run()
                .unwrap();
        }
    }
}

fn check(w: &Workdir, source: &str, out: &str, extra: &[&str]) -> (i32, Value, String) {
    let schemas = example().join("schemas");
    let mut args = vec![
        "check",
        "--no-progress",
        "--source",
        source,
        "--schemas",
        schemas.to_str().unwrap(),
        "--report-dir",
        out,
    ];
    args.extend_from_slice(extra);
    let run = w.docsweep(&args);
    let report = w.read_json(&format!("{out}/report.json"));
    (run.code, report, run.stderr)
}

/// The report without what legitimately differs between two runs of the same data.
fn comparable(mut r: Value) -> Value {
    for k in ["source", "started_at", "finished_at", "database"] {
        r[k] = Value::Null;
    }
    // Where a live read was done (a dump has no such thing).
    if let Some(o) = r.as_object_mut() {
        o.remove("read");
    }
    // Remediation commands name the source.
    for c in r["collections"].as_array_mut().into_iter().flatten() {
        for rem in c["remediation"].as_array_mut().into_iter().flatten() {
            rem["command"] = Value::Null;
        }
    }
    crate::util::without_history(&mut r);
    // Only a live check reads the server's validator and indexes against the contract.
    for c in r["collections"].as_array_mut().into_iter().flatten() {
        if let Some(c) = c.as_object_mut() {
            c.remove("drift");
        }
    }
    r
}

#[test]
fn live_report_equals_the_dump_report() {
    let Some(uri) = server() else { return };
    let db = fresh_db("equal");
    let client = Client::with_uri_str(&uri).unwrap();
    let w = Workdir::new();
    load_example(&client, &db, &w.path().join("dump"));

    let (live_code, live, stderr) = check(&w, &with_db(&uri, &db), "live", &["--batch-size", "97"]);
    let dump_source = format!("dump:{}", w.path().join("dump").join(&db).display());
    let (dump_code, dump, _) = check(&w, &dump_source, "dump", &[]);
    assert_eq!(live_code, 1, "{stderr}");
    assert_eq!(dump_code, 1);
    assert_eq!(live["database"], db);
    assert_eq!(comparable(live.clone()), comparable(dump.clone()));
    for c in live["collections"].as_array().unwrap() {
        assert_eq!(
            c["drift"]["indexes"]["missing"], c["indexes"]["missing"],
            "{c:#}"
        );
        assert_eq!(
            c["drift"]["indexes"]["unexpected"], c["indexes"]["unexpected"],
            "{c:#}"
        );
    }
    assert!(dump["collections"][0].get("drift").is_none());
    // The live scan saw every loaded document.
    let orders = live["collections"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["name"] == "orders")
        .unwrap();
    assert!(orders["documents"].as_u64().unwrap() > 1400);
    assert_eq!(orders["indexes"]["available"], true);
    assert_eq!(w.read("live/violations.csv"), w.read("dump/violations.csv"));
    // Where the live read was done: the server that answered, its role and lag.
    assert!(dump.get("read").is_none());
    let read = &live["read"];
    assert_eq!(read["read_preference"], "primary", "{read}");
    let servers = read["servers"].as_array().unwrap();
    assert_eq!(servers.len(), 1, "{read}");
    let host = servers[0]["host"].as_str().unwrap();
    let port = uri.rsplit(':').next().unwrap().trim_end_matches('/');
    assert!(host.ends_with(&format!(":{port}")), "{host} is not {uri}");
    if servers[0]["replica_set"].is_null() {
        // Not a replica set (FerretDB, a standalone mongod): no lag to give.
        assert!(servers[0]["lag_seconds"].is_null(), "{read}");
        assert!(["standalone", "mongos"].contains(&servers[0]["role"].as_str().unwrap()));
    } else {
        assert_eq!(servers[0]["role"], "primary", "{read}");
        assert_eq!(servers[0]["lag_seconds"], 0.0, "{read}");
    }
    let run = w.docsweep(&[
        "check",
        "--no-progress",
        "--source",
        &with_db(&uri, &db),
        "--schemas",
        example().join("schemas").to_str().unwrap(),
        "--report-dir",
        "again",
    ]);
    let header: Vec<&str> = run.stdout.lines().take(2).collect();
    assert!(
        header[1].starts_with(&format!("read: {host} ("))
            && header[1].contains("read preference primary"),
        "{header:?}"
    );
    // Off the primary when asked, with a staleness bound: the same data, the same report.
    let (code, nearest, stderr) = check(
        &w,
        &with_db(&uri, &db),
        "nearest",
        &["--read-preference", "nearest", "--max-staleness", "120"],
    );
    assert_eq!(code, 1, "{stderr}");
    assert_eq!(comparable(nearest), comparable(live));
    // Bad read settings are usage errors, found before connecting.
    for bad in [
        &["--read-preference", "secondaryish"][..],
        &["--max-staleness", "120"],
        &["--read-preference", "primary", "--max-staleness", "120"],
    ] {
        let mut args = vec![
            "check",
            "--no-progress",
            "--source",
            "mongodb://127.0.0.1:1/x",
        ];
        args.extend_from_slice(bad);
        let run = w.docsweep(&args);
        assert_eq!(run.code, 2, "{bad:?}: {}", run.stderr);
        assert!(run.stderr.contains("--"), "{bad:?}: {}", run.stderr);
    }
    client.database(&db).drop().run().unwrap();
}

#[test]
fn unreachable_server_exits_3_quickly_with_a_clear_message() {
    // A port nothing listens on: bind, note the port, close.
    let port = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let w = Workdir::new();
    let started = std::time::Instant::now();
    let source = format!("mongodb://scanner:s3cretpw@127.0.0.1:{port}/shop");
    let (code, report, stderr) = check(&w, &source, "out", &["--connect-timeout", "2"]);
    assert_eq!(code, 3, "{stderr}");
    assert!(
        started.elapsed().as_secs() < 30,
        "took {:?}",
        started.elapsed()
    );
    assert_eq!(report["status"], "failed");
    // Said as a person would, not the driver's debug text.
    assert!(
        stderr.contains(&format!(
            "cannot connect to 127.0.0.1:{port}: connection refused (after 2 s)"
        )),
        "{stderr}"
    );
    assert!(!stderr.contains("SystemOverloadedError"), "{stderr}");
    let all = format!("{stderr}{report}");
    assert!(!all.contains("s3cretpw"), "password leaked: {all}");
    assert!(all.contains("scanner:****@"), "{all}");
}

/// A TCP proxy to the server that cuts the first connection that has carried more than
/// `cut_after` bytes from the server, then forwards faithfully.
struct CuttingProxy {
    port: u16,
    cuts: Arc<AtomicUsize>,
    stop: Arc<AtomicBool>,
}

impl CuttingProxy {
    fn start(upstream: String, cut_after: usize) -> CuttingProxy {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let cuts = Arc::new(AtomicUsize::new(0));
        let stop = Arc::new(AtomicBool::new(false));
        let (c2, s2) = (Arc::clone(&cuts), Arc::clone(&stop));
        std::thread::spawn(move || {
            for conn in listener.incoming() {
                if s2.load(Ordering::SeqCst) {
                    break;
                }
                let Ok(client) = conn else { continue };
                let Ok(server) = TcpStream::connect(&upstream) else {
                    continue;
                };
                let cuts = Arc::clone(&c2);
                let (mut c_read, mut s_write) =
                    (client.try_clone().unwrap(), server.try_clone().unwrap());
                std::thread::spawn(move || {
                    let mut buf = [0u8; 16384];
                    while let Ok(n) = c_read.read(&mut buf) {
                        if n == 0 || s_write.write_all(&buf[..n]).is_err() {
                            break;
                        }
                    }
                });
                std::thread::spawn(move || {
                    let (mut s_read, mut c_write) = (server, client);
                    let mut carried = 0usize;
                    let mut buf = [0u8; 16384];
                    while let Ok(n) = s_read.read(&mut buf) {
                        if n == 0 || c_write.write_all(&buf[..n]).is_err() {
                            break;
                        }
                        carried += n;
                        if carried > cut_after && cuts.fetch_add(1, Ordering::SeqCst) == 0 {
                            let _ = c_write.shutdown(std::net::Shutdown::Both);
                            let _ = s_read.shutdown(std::net::Shutdown::Both);
                            break;
                        }
                    }
                });
            }
        });
        CuttingProxy { port, cuts, stop }
    }
}

impl Drop for CuttingProxy {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        let _ = TcpStream::connect(("127.0.0.1", self.port));
    }
}

#[test]
fn a_connection_cut_mid_scan_is_resumed_without_double_counting() {
    let Some(uri) = server() else { return };
    let db = fresh_db("cut");
    let client = Client::with_uri_str(&uri).unwrap();
    let w = Workdir::new();
    load_example(&client, &db, &w.path().join("dump"));
    let (_, reference, _) = check(&w, &with_db(&uri, &db), "direct", &[]);

    let host = uri.split_once("://").unwrap().1;
    let upstream = host[..host.find(['/', '?']).unwrap_or(host.len())].to_string();
    let proxy = CuttingProxy::start(upstream, 200_000);
    let via_proxy = format!(
        "mongodb://127.0.0.1:{}/{db}?directConnection=true",
        proxy.port
    );
    let (code, cut, stderr) = check(&w, &via_proxy, "cut", &["--batch-size", "50"]);
    assert!(
        proxy.cuts.load(Ordering::SeqCst) >= 1,
        "the proxy never cut the connection"
    );
    assert_eq!(code, 1, "{stderr}");
    assert_eq!(comparable(cut), comparable(reference));
    assert_eq!(
        w.read("cut/violations.csv"),
        w.read("direct/violations.csv")
    );
    client.database(&db).drop().run().unwrap();
}

/// `--query` reads one collection of a live source through an Extended JSON filter (query
/// operators included): the report says it was filtered, and references into that
/// collection (here its own `parent`) are not verified, because what the query left out
/// was not read. `repair plan --query` plans among the matching documents only and refuses
/// an orphan selection on such a reference.
#[test]
fn a_query_narrows_a_live_check_and_its_references_are_not_verified() {
    let Some(uri) = server() else { return };
    let db = fresh_db("query");
    let client = Client::with_uri_str(&uri).unwrap();
    let nodes = client.database(&db).collection::<Document>("nodes");
    nodes
        .insert_many([
            doc! {"_id": 1, "kind": "a"},
            doc! {"_id": 2, "kind": "b", "parent": 1},
            doc! {"_id": 3, "kind": "b", "parent": 99},
            doc! {"_id": 4, "kind": "zzz"},
            doc! {"_id": 5, "kind": "zzz", "tag": "x"},
        ])
        .run()
        .unwrap();
    let w = Workdir::new();
    let dir = w.path().join("schemas/nodes");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(
        dir.join("contract.toml"),
        "collection = \"nodes\"\ntarget = 1\n[[versions]]\nversion = 1\nschema = \"v1.schema.json\"\n\
         references = [ { field = \"parent\", collection = \"nodes\" } ]\n",
    )
    .unwrap();
    std::fs::write(
        dir.join("v1.schema.json"),
        r#"{"type": "object", "properties": {"kind": {"enum": ["a", "b"]}}}"#,
    )
    .unwrap();
    let source = with_db(&uri, &db);
    let check = |out: &str, extra: &[&str]| {
        let mut args = vec![
            "check",
            "--no-progress",
            "--uri",
            &source,
            "--schemas",
            "schemas",
            "--report-dir",
            out,
        ];
        args.extend_from_slice(extra);
        let run = w.docsweep(&args);
        (run, w.read_json(&format!("{out}/report.json")))
    };
    let (run, full) = check("full", &[]);
    assert_eq!(run.code, 1, "{}", run.stderr);
    let c = crate::util::collection(&full, "nodes");
    assert_eq!(c["documents"], 5);
    assert_eq!(c["references"][0]["checked"], true, "{c}");
    assert_eq!(c["references"][0]["orphans"], 1, "{c}");
    assert!(full.get("filter").is_none());

    let query = r#"{"kind": {"$in": ["b"]}}"#;
    let (run, part) = check("part", &["-c", "nodes", "--query", query]);
    assert_eq!(run.code, 0, "{}{}", run.stdout, run.stderr);
    let c = crate::util::collection(&part, "nodes");
    assert_eq!(c["documents"], 2, "{c}");
    assert_eq!(c["classes"]["invalid"], 0);
    let r = &c["references"][0];
    assert_eq!(r["checked"], false, "{r}");
    assert_eq!(r["reason"], "nodes: read with --query", "{r}");
    assert_eq!(r["orphans"], 0);
    assert_eq!(r["orphans_unverified"], 2, "{r}");
    assert_eq!(
        part["filter"]["query"],
        serde_json::json!({"kind": {"$in": ["b"]}})
    );
    assert_eq!(part["filter"]["query_collection"], "nodes");
    assert!(
        run.stdout.contains("FILTERED (a partial check): --query")
            && run.stdout.contains("references into nodes not verified"),
        "{}",
        run.stdout
    );

    let plan = |out: &str, extra: &[&str]| {
        let mut args = vec![
            "repair",
            "plan",
            "--template",
            "quarantine-invalid",
            "-c",
            "nodes",
            "--uri",
            &source,
            "--schemas",
            "schemas",
            "--out",
            out,
        ];
        args.extend_from_slice(extra);
        w.docsweep(&args)
    };
    let all = plan("all.plan", &[]);
    assert_eq!(all.code, 0, "{}", all.stderr);
    assert!(all.stdout.contains(": 2 change(s)"), "{}", all.stdout);
    let some = plan("some.plan", &["--query", r#"{"_id": {"$gte": 5}}"#]);
    assert_eq!(some.code, 0, "{}", some.stderr);
    assert!(some.stdout.contains(": 1 change(s)"), "{}", some.stdout);
    assert!(some.stdout.contains("FILTERED"), "{}", some.stdout);
    let orphans = plan(
        "orphans.plan",
        &["--query", query, "--select", "orphan:parent"],
    );
    assert_eq!(orphans.code, 2, "{}{}", orphans.stdout, orphans.stderr);
    assert!(
        orphans.stderr.contains("read with --query"),
        "{}",
        orphans.stderr
    );
}
