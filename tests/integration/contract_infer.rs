//! `docsweep contract infer` on the bundled example and on generated data: the inferred
//! contract passes the data it came from and catches what changed after, versions are found
//! by shape, the files are byte-identical across runs, and bad input is a clear error.

use std::path::Path;

use serde_json::{json, Value};

use crate::util::{collection, example, Workdir};

fn baseline() -> String {
    format!("dump:{}", example().join("data/baseline").display())
}

fn after_rollback() -> String {
    format!("dump:{}", example().join("data/dump").display())
}

fn infer(w: &Workdir, source: &str, coll: &str, extra: &[&str]) -> crate::util::Run {
    let mut args = vec![
        "contract",
        "infer",
        "--source",
        source,
        "--collection",
        coll,
    ];
    args.extend_from_slice(extra);
    w.docsweep(&args)
}

fn check(w: &Workdir, source: &str, schemas: &str, report: &str) -> (i32, Value) {
    let run = w.docsweep(&[
        "check",
        "--source",
        source,
        "--schemas",
        schemas,
        "--report-dir",
        report,
    ]);
    (run.code, w.read_json(&format!("{report}/report.json")))
}

#[test]
fn inferred_from_the_baseline_passes_it_and_catches_the_rollback() {
    let w = Workdir::new();
    for c in ["orders", "customers"] {
        let run = infer(&w, &baseline(), c, &["--closed"]);
        assert_eq!(run.code, 0, "{}{}", run.stdout, run.stderr);
    }
    let orders = w.read("schemas/orders/contract.toml");
    assert!(
        orders.contains(
            "indexes = [\n  { key = { customer_id = 1 }, name = \"customer_id_1\" },\n  \
             { key = { status = 1, created_at = -1 }, name = \"status_1_created_at_-1\" },\n]"
        ),
        "{orders}"
    );
    assert!(
        orders.contains("#   { field = \"customer_id\", collection = \"customers\" },"),
        "{orders}"
    );

    let (code, report) = check(&w, &baseline(), "schemas", "r-baseline");
    assert_eq!(code, 0, "{report:#}");
    assert_eq!(report["status"], "clean");

    // After the partial rollback: the v2 documents and the invalid ones fail the inferred v1
    // (it has no v2), exactly as many as the generator planted.
    let expected = w_expected();
    let (code, report) = check(&w, &after_rollback(), "schemas", "r-dump");
    assert_eq!(code, 1);
    for c in ["orders", "customers"] {
        let want = collection(&expected, c);
        let got = collection(&report, c);
        let other: u64 = want["classes"]["other_version"]
            .as_object()
            .unwrap()
            .values()
            .map(|v| v.as_u64().unwrap())
            .sum();
        assert_eq!(
            got["classes"]["invalid"].as_u64().unwrap(),
            want["classes"]["invalid"].as_u64().unwrap() + other,
            "{c}: {}",
            got["classes"]
        );
        assert_eq!(got["classes"]["valid"], want["classes"]["valid"], "{c}");
        assert_eq!(
            got["indexes"]["missing"].as_array().map(Vec::len),
            want["indexes"]["missing"].as_array().map(Vec::len),
            "{c}"
        );
    }
}

fn w_expected() -> Value {
    let text = std::fs::read_to_string(example().join("data/expected.json")).unwrap();
    serde_json::from_str(&text).unwrap()
}

#[test]
fn the_after_rollback_dump_falls_into_versions_by_shape() {
    let w = Workdir::new();
    let run = infer(&w, &after_rollback(), "orders", &["--all"]);
    assert_eq!(run.code, 0, "{}{}", run.stdout, run.stderr);
    // v1 (with the one too-deep document's `debug` as an optional field), the 40 v2
    // documents, the half-reverted and the wrong-type ones.
    assert!(
        run.stdout
            .contains("  v2        40 document(s)\n        only in v2: customer (object)\n"),
        "{}",
        run.stdout
    );
    assert!(
        run.stdout.contains("target = 1: the largest version"),
        "{}",
        run.stdout
    );
    assert!(
        run.stderr.contains("1 unreadable record(s)"),
        "{}",
        run.stderr
    );
    let text = w.read("schemas/orders/contract.toml");
    // The v2 index goes to v2 only, the v1 one to v1 only.
    let t: toml::Table = toml::from_str(&text).unwrap();
    let keys = |i: usize| -> Vec<String> {
        t["versions"].as_array().unwrap()[i]["indexes"]
            .as_array()
            .unwrap()
            .iter()
            .map(|x| x["name"].as_str().unwrap().to_string())
            .collect()
    };
    assert_eq!(
        keys(0),
        ["status_1_created_at_-1"],
        "customer_id_1 is not in the dump"
    );
    assert_eq!(keys(1), ["status_1_created_at_-1", "customer.id_1"]);
}

/// Writes `docs` as an NDJSON export file `<dir>/<coll>.json`.
fn write_export(dir: &Path, coll: &str, docs: &[Value]) {
    std::fs::create_dir_all(dir).unwrap();
    let mut text = String::new();
    for d in docs {
        text.push_str(&serde_json::to_string(d).unwrap());
        text.push('\n');
    }
    std::fs::write(dir.join(format!("{coll}.json")), text).unwrap();
}

fn oid(seconds: u32, n: u32) -> Value {
    json!({ "$oid": format!("{seconds:08x}0000000000{n:06x}") })
}

/// Two generated shapes (with optional fields in each), interleaved: exactly two versions,
/// each accepting its documents and rejecting the other's.
#[test]
fn two_generated_shapes_are_two_versions() {
    let w = Workdir::new();
    let mut docs = Vec::new();
    for i in 0..400u32 {
        let d = if i % 3 == 0 {
            let mut d = json!({"_id": oid(2_000_000 + i, i), "customer": {"id": oid(5, i % 10), "email": format!("c{i}@example.com")}, "total_cents": i * 10, "items": [{"sku": "A", "qty": 1}]});
            if i % 2 == 0 {
                d["coupon"] = json!("X1");
            }
            d
        } else {
            let mut d = json!({"_id": oid(1_000_000 + i, i), "customer_id": oid(5, i % 10), "total": f64::from(i) + 0.5, "items": []});
            if i % 5 == 0 {
                d["note"] = json!("gift");
            }
            d
        };
        docs.push(d);
    }
    write_export(&w.path().join("exp"), "orders", &docs);
    let run = infer(&w, "export:exp", "orders", &["--closed"]);
    assert_eq!(run.code, 0, "{}{}", run.stdout, run.stderr);
    assert!(
        run.stdout
            .contains("inferred 2 version(s) from 400 document(s)"),
        "{}",
        run.stdout
    );
    let t: toml::Table = toml::from_str(&w.read("schemas/orders/contract.toml")).unwrap();
    assert_eq!(t["versions"].as_array().unwrap().len(), 2);
    assert_eq!(
        t["target"].as_integer(),
        Some(1),
        "the older shape is the larger"
    );

    // Checked against its own data: v1 valid, the others other_version 2.
    let (code, report) = check(&w, "export:exp", "schemas", "r");
    assert_eq!(code, 1, "{report:#}");
    let c = collection(&report, "orders");
    assert_eq!(c["classes"]["valid"], 266);
    assert_eq!(c["classes"]["other_version"]["2"], 134);
    assert_eq!(c["classes"]["invalid"], 0);
}

/// The same data gives byte-identical files, with a sample too; another seed may differ.
#[test]
fn files_are_byte_identical_across_runs() {
    let w = Workdir::new();
    w.generate("gen", &["--scale", "3", "--seed", "7"]);
    let source = "dump:gen/dump";
    let mut outputs = Vec::new();
    for (dir, extra) in [
        ("a", vec!["--sample", "500", "--enums"]),
        ("b", vec!["--sample", "500", "--enums"]),
        ("c", vec!["--all"]),
        ("d", vec!["--all"]),
    ] {
        let mut args = vec!["--out", dir];
        args.extend(extra);
        let run = infer(&w, source, "orders", &args);
        assert_eq!(run.code, 0, "{}{}", run.stdout, run.stderr);
        let mut files: Vec<(String, Vec<u8>)> =
            std::fs::read_dir(w.path().join(dir).join("orders"))
                .unwrap()
                .map(|e| {
                    let e = e.unwrap();
                    (
                        e.file_name().to_string_lossy().into_owned(),
                        std::fs::read(e.path()).unwrap(),
                    )
                })
                .collect();
        files.sort();
        outputs.push((run.stdout.replace(&format!("{dir}/"), ""), files));
    }
    assert!(outputs[0].1.len() >= 2);
    assert_eq!(outputs[0], outputs[1], "sampled runs differ");
    assert_eq!(outputs[2], outputs[3], "--all runs differ");
    assert!(
        outputs[0].0.contains("a sample of 500 of "),
        "{}",
        outputs[0].0
    );
    // The dump and the NDJSON export of the same data sample the same documents.
    let run = infer(
        &w,
        "export:gen/export",
        "orders",
        &["--out", "e", "--sample", "500", "--enums"],
    );
    assert_eq!(run.code, 0, "{}{}", run.stdout, run.stderr);
    for (name, bytes) in &outputs[0].1 {
        if name.ends_with(".schema.json") {
            assert_eq!(
                &w.read(&format!("e/orders/{name}")).into_bytes(),
                bytes,
                "{name}"
            );
        }
    }
}

#[test]
fn errors_are_clear() {
    let w = Workdir::new();
    // No such collection: exit 2, naming it and what there is.
    let run = infer(&w, &baseline(), "nope", &[]);
    assert_eq!(run.code, 2, "{}", run.stderr);
    assert!(
        run.stderr.contains("--collection nope") && run.stderr.contains("customers, orders"),
        "{}",
        run.stderr
    );
    // An empty collection: exit 2.
    write_export(&w.path().join("exp"), "empty", &[]);
    let run = infer(&w, "export:exp", "empty", &[]);
    assert_eq!(run.code, 2, "{}", run.stderr);
    assert!(
        run.stderr
            .contains("collection empty in export:exp: no documents"),
        "{}",
        run.stderr
    );
    assert!(!w.path().join("schemas/empty").exists());
    // A source that cannot be read: exit 3.
    let run = infer(&w, "dump:does-not-exist", "orders", &[]);
    assert_eq!(run.code, 3, "{}", run.stderr);
    assert!(run.stderr.contains("does-not-exist"), "{}", run.stderr);
    // Bad flags: exit 2.
    let run = infer(&w, &baseline(), "orders", &["--required-ratio", "1.5"]);
    assert_eq!(run.code, 2, "{}", run.stderr);
    let run = infer(&w, &baseline(), "orders", &["--versions", "3"]);
    assert_eq!(run.code, 2, "{}", run.stderr);
    let run = infer(&w, &baseline(), "orders", &["--sample", "5", "--all"]);
    assert_eq!(run.code, 2, "{}", run.stderr);

    // An existing contract is not overwritten without --force.
    let run = infer(&w, &baseline(), "orders", &[]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    std::fs::write(w.path().join("schemas/orders/contract.toml"), "# mine\n").unwrap();
    let run = infer(&w, &baseline(), "orders", &[]);
    assert_eq!(run.code, 2, "{}", run.stderr);
    assert!(
        run.stderr.contains(
            "schemas/orders/contract.toml: already exists; refusing to overwrite it (pass --force"
        ),
        "{}",
        run.stderr
    );
    assert_eq!(w.read("schemas/orders/contract.toml"), "# mine\n");
    let run = infer(&w, &baseline(), "orders", &["--force"]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert!(w
        .read("schemas/orders/contract.toml")
        .contains("collection = \"orders\""));
}

#[test]
fn help_shows_an_example() {
    let w = Workdir::new();
    let run = w.docsweep(&["contract", "infer", "--help"]);
    assert_eq!(run.code, 0);
    assert!(
        run.stdout
            .contains("docsweep contract infer --source dump:"),
        "{}",
        run.stdout
    );
    let run = w.docsweep(&["contract", "diff", "--help"]);
    assert_eq!(run.code, 0);
    assert!(
        run.stdout
            .contains("docsweep contract diff --source mongodb://"),
        "{}",
        run.stdout
    );
}
