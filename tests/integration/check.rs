//! `docsweep check` end to end: the bundled example reports exactly what its generator
//! planted, from every source format, and exit codes follow the design.

use serde_json::{json, Value};

use crate::util::{collection, copy_dir, example, repo, Workdir};

/// Runs check from the example directory's config, with the given extra arguments.
fn check_example(w: &Workdir, extra: &[&str]) -> (i32, Value) {
    let config = example().join("docsweep.toml");
    let mut args = vec![
        "check",
        "--no-progress",
        "--config",
        config.to_str().unwrap(),
        "--report-dir",
        "out",
    ];
    args.extend_from_slice(extra);
    let run = w.docsweep(&args);
    (run.code, w.read_json("out/report.json"))
}

fn nonzero(list: &Value, count: &str, keep: &[&str]) -> Vec<Value> {
    list.as_array()
        .unwrap()
        .iter()
        .filter(|x| x[count].as_u64().unwrap_or(0) > 0)
        .map(|x| {
            let mut m = serde_json::Map::new();
            for k in keep {
                m.insert(k.to_string(), x[*k].clone());
            }
            Value::Object(m)
        })
        .collect()
}

/// Asserts that `report` has every number `expected.json` planted (reconciliation aside).
fn assert_planted(report: &Value, expected: &Value, unreadable_override: Option<u64>) {
    for exp in expected["collections"].as_array().unwrap() {
        let name = exp["name"].as_str().unwrap();
        let got = collection(report, name);
        assert_eq!(got["target_version"], exp["target_version"], "{name}");
        assert_eq!(got["documents"], exp["documents"], "{name} documents");
        let unreadable = unreadable_override.map_or(exp["unreadable"].clone(), |u| json!(u));
        assert_eq!(got["unreadable"], unreadable, "{name} unreadable");
        assert_eq!(got["classes"], exp["classes"], "{name} classes");
        assert_eq!(got["structure"], exp["structure"], "{name} structure");
        for k in [
            "baseline_documents",
            "missing",
            "added",
            "changed",
            "reordered",
        ] {
            assert_eq!(
                got["reconciliation"][k], exp["reconciliation"][k],
                "{name} reconciliation {k}"
            );
        }
        assert_eq!(
            nonzero(
                &got["references"],
                "orphans",
                &["field", "collection", "orphans"]
            ),
            nonzero(
                &exp["references"],
                "orphans",
                &["field", "collection", "orphans"]
            ),
            "{name} references"
        );
        assert_eq!(
            nonzero(
                &got["duplicates"],
                "groups",
                &["key", "groups", "documents"]
            ),
            nonzero(
                &exp["duplicates"],
                "groups",
                &["key", "groups", "documents"]
            ),
            "{name} duplicates"
        );
    }
}

fn expected() -> Value {
    let text = std::fs::read_to_string(example().join("data/expected.json")).unwrap();
    serde_json::from_str(&text).unwrap()
}

#[test]
fn example_dump_reports_what_was_planted() {
    let w = Workdir::new();
    let (code, report) = check_example(&w, &[]);
    assert_eq!(code, 1, "findings exit 1");
    assert_eq!(report["format"], "docsweep-report/1");
    // Index changes since the baseline: the v1 index was dropped, the v2 one created.
    let ix = &collection(&report, "orders")["reconciliation"]["indexes"];
    assert_eq!(ix["dropped"][0]["key"], json!({"customer_id": 1}), "{ix}");
    assert_eq!(ix["created"][0]["key"], json!({"customer.id": 1}), "{ix}");
    assert_eq!(report["status"], "findings");
    let exp = expected();
    assert_planted(&report, &exp, None);
    for c in exp["collections"].as_array().unwrap() {
        let got = collection(&report, c["name"].as_str().unwrap());
        assert_eq!(got["indexes"]["available"], true);
        assert_eq!(got["indexes"]["missing"], c["indexes"]["missing"]);
        assert_eq!(got["indexes"]["unexpected"], c["indexes"]["unexpected"]);
    }
}

#[test]
fn every_source_format_reports_the_same() {
    let exp = expected();
    let data = example().join("data");
    for (src, unreadable) in [
        ("dump-gz", None),
        ("export", None),
        ("export-canonical", None),
        // The array variant leaves the broken element out.
        ("export-array", Some(0)),
    ] {
        let w = Workdir::new();
        let kind = if src.starts_with("dump") {
            "dump"
        } else {
            "export"
        };
        let source = format!("{kind}:{}", data.join(src).display());
        let (code, report) = check_example(&w, &["--source", &source]);
        assert_eq!(code, 1, "{src}");
        assert_planted(&report, &exp, unreadable);
        if kind == "export" {
            assert_eq!(
                collection(&report, "orders")["indexes"]["available"],
                false,
                "{src}"
            );
        }
    }
}

/// Rows of violations.csv without the columns that legitimately differ by source
/// (where a record was found).
fn rows(w: &Workdir) -> Vec<Vec<String>> {
    let mut r = csv::Reader::from_path(w.path().join("out/violations.csv")).unwrap();
    r.records()
        .map(|rec| rec.unwrap())
        .filter(|rec| &rec[2] != "unreadable")
        .map(|rec| {
            let mut v: Vec<String> = rec.iter().map(str::to_string).collect();
            if matches!(v[2].as_str(), "missing_id" | "duplicate_id") {
                v[6].clear();
            }
            v
        })
        .collect()
}

#[test]
fn dump_and_export_give_identical_violations() {
    let data = example().join("data");
    let a = Workdir::new();
    let b = Workdir::new();
    let (ca, _) = check_example(
        &a,
        &["--source", &format!("dump:{}", data.join("dump").display())],
    );
    let (cb, _) = check_example(
        &b,
        &[
            "--source",
            &format!("export:{}", data.join("export").display()),
        ],
    );
    assert_eq!((ca, cb), (1, 1));
    let (ra, rb) = (rows(&a), rows(&b));
    assert!(ra.len() > 100, "{} rows", ra.len());
    assert_eq!(ra, rb);
}

#[test]
fn baseline_given_as_a_database_folder_or_with_an_export_source() {
    let data = example().join("data");
    let exp = expected();
    let w = Workdir::new();
    let (code, report) = check_example(
        &w,
        &[
            "--source",
            &format!("export:{}", data.join("export").display()),
            "--baseline",
            &format!("dump:{}", data.join("baseline/shop").display()),
        ],
    );
    assert_eq!(code, 1);
    assert_planted(&report, &exp, None);
    let csv = w.read("out/violations.csv");
    let orders = &exp["collections"][0]["reconciliation"];
    assert_eq!(orders["missing"], 20);
    for (kind, n) in [
        ("missing", 24),
        ("added", 47),
        ("changed", 101),
        ("reordered", 15),
    ] {
        let rows = csv
            .lines()
            .filter(|l| l.contains(&format!(",{kind},")))
            .count();
        assert_eq!(rows, n, "{kind} rows");
    }
}

#[test]
fn a_baseline_that_is_not_complete_fails_the_run() {
    let w = Workdir::new();
    let data = example().join("data");
    // The current export holds a broken line: as a baseline it must be refused, not
    // silently read as partial.
    let (code, report) = check_example(
        &w,
        &[
            "--baseline",
            &format!("export:{}", data.join("export").display()),
        ],
    );
    assert_eq!(code, 3);
    assert_eq!(report["status"], "failed");
    assert!(report["error"].as_str().unwrap().contains("baseline"));
}

#[test]
fn results_do_not_depend_on_thread_count() {
    let strip = |mut v: Value| {
        v["started_at"] = Value::Null;
        v["finished_at"] = Value::Null;
        v
    };
    let one = Workdir::new();
    let three = Workdir::new();
    let (_, r1) = check_example(&one, &["--threads", "1"]);
    let (_, r3) = check_example(&three, &["--threads", "3"]);
    assert_eq!(strip(r1), strip(r3));
    assert_eq!(
        one.read("out/violations.csv"),
        three.read("out/violations.csv")
    );
}

#[test]
fn clean_data_exits_zero() {
    let w = Workdir::new();
    w.generate("clean", &["--clean", "--scale", "2"]);
    let schemas = example().join("schemas");
    let run = w.docsweep(&[
        "check",
        "--no-progress",
        "--source",
        "dump:clean/dump",
        "--schemas",
        schemas.to_str().unwrap(),
        "--report-dir",
        "out",
    ]);
    assert_eq!(run.code, 0, "{}", run.stdout);
    let report = w.read_json("out/report.json");
    assert_eq!(report["status"], "clean");
    assert_eq!(collection(&report, "orders")["documents"], 3000);
    // The header line only.
    assert_eq!(w.read("out/violations.csv").lines().count(), 1);
    let run = w.docsweep(&[
        "check",
        "--no-progress",
        "--source",
        "export:clean/export",
        "--schemas",
        schemas.to_str().unwrap(),
        "--report-dir",
        "out2",
    ]);
    assert_eq!(run.code, 0, "{}", run.stdout);
}

#[test]
fn generator_is_deterministic_and_matches_the_bundled_data() {
    let w = Workdir::new();
    w.generate("data", &[]);
    let bundled = example().join("data");
    let mut stack = vec![bundled.clone()];
    let mut files = 0;
    while let Some(dir) = stack.pop() {
        for e in std::fs::read_dir(&dir).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                stack.push(p);
                continue;
            }
            let rel = p.strip_prefix(&bundled).unwrap();
            let fresh = std::fs::read(w.path().join("data").join(rel)).unwrap();
            assert!(
                std::fs::read(&p).unwrap() == fresh,
                "{} differs from a fresh run of the generator",
                rel.display()
            );
            files += 1;
        }
    }
    assert!(files >= 10);
}

#[test]
fn target_override_changes_the_classification() {
    let w = Workdir::new();
    let (code, report) = check_example(&w, &["--target", "orders=2", "--collection", "orders"]);
    assert_eq!(code, 1);
    let orders = collection(&report, "orders");
    assert_eq!(orders["target_version"], 2);
    assert_eq!(report["collections"].as_array().unwrap().len(), 1);
    // The v2 documents are now valid; the v1 ones are "other_version 1".
    assert_eq!(orders["classes"]["valid"], 40);
    assert!(orders["classes"]["other_version"]["1"].as_u64().unwrap() > 1000);
}

#[test]
fn usage_and_contract_errors_exit_2() {
    let w = Workdir::new();
    let schemas = example().join("schemas");
    let s = schemas.to_str().unwrap();
    for (args, needle) in [
        (vec!["check", "--frobnicate"], "frobnicate"),
        (
            vec![
                "check",
                "--source",
                "dump:x",
                "--schemas",
                s,
                "--target",
                "orders=9",
            ],
            "target version 9",
        ),
        (
            vec![
                "check",
                "--source",
                "dump:x",
                "--schemas",
                s,
                "--target",
                "nope=1",
            ],
            "nope",
        ),
        (
            vec!["check", "--source", "ftp://x", "--schemas", s],
            "ftp://x",
        ),
        (
            vec!["check", "--source", "dump:x", "--schemas", "no-such-dir"],
            "no-such-dir",
        ),
        (vec!["check", "--schemas", s], "no source"),
    ] {
        let run = w.docsweep(&args);
        assert_eq!(run.code, 2, "{args:?}: {}", run.stderr);
        assert!(run.stderr.contains(needle), "{args:?}: {}", run.stderr);
    }
    // A broken schema names its file.
    let broken = w.path().join("schemas");
    copy_dir(&schemas, &broken);
    std::fs::write(
        broken.join("orders/v2.schema.json"),
        r#"{"type": "objekt"}"#,
    )
    .unwrap();
    let run = w.docsweep(&["check", "--source", "dump:x", "--schemas", "schemas"]);
    assert_eq!(run.code, 2);
    assert!(run.stderr.contains("v2.schema.json"), "{}", run.stderr);
}

#[test]
fn unreadable_source_exits_3_and_still_reports() {
    let w = Workdir::new();
    let schemas = example().join("schemas");
    let run = w.docsweep(&[
        "check",
        "--no-progress",
        "--source",
        "dump:does-not-exist",
        "--schemas",
        schemas.to_str().unwrap(),
        "--report-dir",
        "out",
    ]);
    assert_eq!(run.code, 3, "{}", run.stderr);
    let report = w.read_json("out/report.json");
    assert_eq!(report["status"], "failed");
    assert!(report["error"].as_str().unwrap().contains("does-not-exist"));
}

#[test]
fn help_shows_an_example() {
    let w = Workdir::new();
    let run = w.docsweep(&["check", "--help"]);
    assert_eq!(run.code, 0);
    assert!(run.stdout.contains("Examples:") && run.stdout.contains("docsweep check --source"));
}

/// Masks what differs between machines and runs: times and absolute paths.
fn mask(text: &str) -> String {
    let root = repo().display().to_string();
    text.replace(&root, "[REPO]")
        .lines()
        .map(|l| {
            let t = l.trim_start();
            if t.starts_with("\"started_at\"") || t.starts_with("\"finished_at\"") {
                let indent = &l[..l.len() - t.len()];
                let key = t.split(':').next().unwrap_or("");
                let comma = if l.trim_end().ends_with(',') { "," } else { "" };
                format!("{indent}{key}: \"[TIME]\"{comma}")
            } else {
                l.to_string()
            }
        })
        .collect::<Vec<_>>()
        .join("\n")
}

#[test]
fn snapshot_of_the_example_report_and_summary() {
    let w = Workdir::new();
    let config = example().join("docsweep.toml");
    let run = w.docsweep(&[
        "check",
        "--no-progress",
        "--config",
        config.to_str().unwrap(),
        "--report-dir",
        "out",
    ]);
    assert_eq!(run.code, 1);
    insta::assert_snapshot!("example_summary", mask(&run.stdout));
    insta::assert_snapshot!("example_report", mask(&w.read("out/report.json")));
}

#[test]
fn snapshot_then_check_against_it() {
    let w = Workdir::new();
    let data = example().join("data");
    let run = w.docsweep(&[
        "snapshot",
        "--source",
        &format!("dump:{}", data.join("baseline").display()),
        "--out",
        "before.snap",
    ]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    let size = std::fs::metadata(w.path().join("before.snap"))
        .unwrap()
        .len();
    // 1,800 documents with ObjectId _ids: at most 48 bytes each, plus the header.
    assert!(size < 1800 * 48 + 4096, "{size} bytes");
    let (code, report) = check_example(&w, &["--baseline", "before.snap"]);
    assert_eq!(code, 1);
    assert_planted(&report, &expected(), None);

    // Truncated, corrupted or foreign files are refused (exit 2), never read as partial.
    let bytes = std::fs::read(w.path().join("before.snap")).unwrap();
    let mut flipped = bytes.clone();
    flipped[bytes.len() / 2] ^= 1;
    for (name, content) in [
        ("cut.snap", bytes[..bytes.len() - 100].to_vec()),
        ("flip.snap", flipped),
        ("empty.snap", Vec::new()),
        ("text.snap", b"hello".to_vec()),
    ] {
        std::fs::write(w.path().join(name), content).unwrap();
        let config = example().join("docsweep.toml");
        let run = w.docsweep(&[
            "check",
            "--no-progress",
            "--config",
            config.to_str().unwrap(),
            "--report-dir",
            "bad",
            "--baseline",
            name,
        ]);
        assert_eq!(run.code, 2, "{name}: {}", run.stderr);
        assert!(run.stderr.contains(name), "{name}: {}", run.stderr);
    }
}

#[test]
fn html_junit_and_metrics_outputs_are_written() {
    let w = Workdir::new();
    let (code, _) = check_example(
        &w,
        &[
            "--html",
            "out/report.html",
            "--junit",
            "out/junit.xml",
            "--metrics",
            "out/docsweep.prom",
        ],
    );
    assert_eq!(code, 1);
    let html = w.read("out/report.html");
    assert!(
        html.contains("1,512") || html.contains("1512"),
        "orders document count in the page"
    );
    assert!(w.read("out/junit.xml").contains("<testsuite"));
    let prom = w.read("out/docsweep.prom");
    assert!(
        prom.contains("docsweep_documents{collection=\"orders\"} 1512"),
        "{prom}"
    );
}

/// The Database Tools' vocabulary: `--uri` names the source, `-d`/`-c` the database and
/// collection; a bare path gets a hint, and a URI without a database is a usage error.
#[test]
fn database_tools_flags_and_hints() {
    let w = Workdir::new();
    let schemas = example().join("schemas");
    let dump = example().join("data/dump");
    let source = format!("dump:{}", dump.display());
    let run = |args: &[&str]| {
        let mut all = vec![
            "check",
            "--no-progress",
            "--schemas",
            schemas.to_str().unwrap(),
        ];
        all.extend_from_slice(args);
        w.docsweep(&all)
    };
    let r = run(&[
        "--uri",
        &source,
        "-d",
        "shop",
        "-c",
        "orders",
        "--report-dir",
        "a",
    ]);
    assert_eq!(r.code, 1, "{}", r.stderr);
    let r2 = run(&[
        "--source",
        &source,
        "--collection",
        "orders",
        "--report-dir",
        "b",
    ]);
    assert_eq!(r2.code, 1);
    assert_eq!(w.read("a/violations.csv"), w.read("b/violations.csv"));
    let names: Vec<Value> = w.read_json("a/report.json")["collections"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["name"].clone())
        .collect();
    assert_eq!(names, ["orders"]);

    // A bare path: exit 2 with what was probably meant.
    let bare = dump.display().to_string();
    let r = run(&["--source", &bare]);
    assert_eq!(r.code, 2, "{}", r.stderr);
    assert!(
        r.stderr.contains(&format!("did you mean dump:{bare}?")),
        "{}",
        r.stderr
    );
    let export = example().join("data/export").display().to_string();
    let r = run(&["--source", &export]);
    assert!(r.stderr.contains("did you mean export:"), "{}", r.stderr);

    // A URI without a database: a usage error, found before connecting.
    let r = run(&["--uri", "mongodb://127.0.0.1:1/"]);
    assert_eq!(r.code, 2, "{}", r.stderr);
    assert!(r.stderr.contains("no database"), "{}", r.stderr);
}

/// `--nsInclude`/`--nsExclude` narrow the collections checked (and snapshotted), and the
/// report says so; `--query` is for live sources only, with one collection; bad patterns
/// and filters are usage errors naming the flag.
#[test]
fn namespace_patterns_narrow_the_check_and_the_report_says_so() {
    let w = Workdir::new();
    let dump = format!("dump:{}", example().join("data/dump").display());
    let schemas = example().join("schemas");
    let run = |dir: &str, extra: &[&str]| {
        let mut args = vec![
            "check",
            "--no-progress",
            "--source",
            &dump,
            "--schemas",
            schemas.to_str().unwrap(),
            "--report-dir",
            dir,
        ];
        args.extend_from_slice(extra);
        w.docsweep(&args)
    };
    let full = run("full", &[]);
    assert_eq!(full.code, 1, "{}", full.stderr);
    assert!(w.read_json("full/report.json").get("filter").is_none());
    assert!(!full.stdout.contains("FILTERED"), "{}", full.stdout);

    let r = run("ns", &["--nsInclude", "shop.ord*"]);
    assert_eq!(r.code, 1, "{}", r.stderr);
    let report = w.read_json("ns/report.json");
    let names: Vec<&str> = report["collections"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["orders"]);
    assert_eq!(report["filter"]["ns_include"], json!(["shop.ord*"]));
    assert_eq!(report["filter"]["excluded"], json!(["customers"]));
    assert!(report["filter"]["query"].is_null());
    // The referenced collection is still read whole: the references are verified, and
    // orders is reported exactly as in the full run.
    assert_eq!(
        collection(&report, "orders"),
        collection(&w.read_json("full/report.json"), "orders")
    );
    let header: Vec<&str> = r.stdout.lines().take(2).collect();
    assert!(
        header[1]
            .starts_with("FILTERED (a partial check): --nsInclude shop.ord*; left out: customers"),
        "{header:?}"
    );
    // Excluding by pattern; a pattern of another database takes nothing.
    let r = run("ex", &["--nsExclude", "*.orders"]);
    assert_eq!(r.code, 1, "{}", r.stderr);
    assert_eq!(
        w.read_json("ex/report.json")["filter"]["excluded"],
        json!(["orders"])
    );
    for (flag, value, says) in [
        ("--nsInclude", "other.*", "no collection with a contract"),
        ("--nsInclude", "orders", "DB.COLLECTION"),
        ("--nsExclude", "shop.*", "no collection with a contract"),
        ("--query", "{\"status\": \"paid\"}", "live source"),
    ] {
        let r = run("bad", &[flag, value, "-c", "orders"]);
        assert_eq!(r.code, 2, "{flag} {value}: {}", r.stderr);
        assert!(
            r.stderr.contains(flag) && r.stderr.contains(says),
            "{}",
            r.stderr
        );
    }
    // --query: one collection, valid Extended JSON, no baseline; all found before connecting.
    let live = "mongodb://127.0.0.1:1/shop";
    for (extra, says) in [
        (&["--query", "{}"][..], "exactly one --collection"),
        (
            &["--query", "{\"a\": {\"$oid\": \"x\"}}", "-c", "orders"][..],
            "Extended JSON",
        ),
        (&["--query", "[1]", "-c", "orders"][..], "not a JSON object"),
        (
            &["--query", "{}", "-c", "orders", "--baseline", &dump][..],
            "baseline",
        ),
    ] {
        let mut args = vec![
            "check",
            "--no-progress",
            "--source",
            live,
            "--schemas",
            schemas.to_str().unwrap(),
            "--report-dir",
            "bad",
        ];
        args.extend_from_slice(extra);
        let r = w.docsweep(&args);
        assert_eq!(r.code, 2, "{extra:?}: {}", r.stderr);
        assert!(
            r.stderr.contains("--query") && r.stderr.contains(says),
            "{}",
            r.stderr
        );
    }
    // snapshot takes the patterns too.
    let baseline = format!("dump:{}", example().join("data/baseline").display());
    let r = w.docsweep(&[
        "snapshot",
        "--source",
        &baseline,
        "--out",
        "s.snap",
        "--nsExclude",
        "shop.customers",
    ]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert!(
        r.stdout.contains("1 collection(s)") && r.stdout.contains("orders"),
        "{}",
        r.stdout
    );
    assert!(!r.stdout.contains("customers"), "{}", r.stdout);
}

/// The README's quick start prints exactly what `docsweep check` prints in examples/shop
/// (run here in a copy, so that nothing is written into the repository).
#[test]
fn the_readme_shows_the_example_summary_as_printed() {
    let readme = std::fs::read_to_string(repo().join("README.md")).unwrap();
    let start = readme
        .find("```\ndocsweep check  dump:./data/dump")
        .expect("the README shows the example's summary")
        + 4;
    let len = readme[start..].find("```").unwrap();
    let shown = &readme[start..start + len];
    let w = Workdir::new();
    let shop = w.path().join("shop");
    std::fs::create_dir_all(&shop).unwrap();
    for entry in ["data", "schemas", "docsweep.toml"] {
        let from = example().join(entry);
        if from.is_dir() {
            copy_dir(&from, &shop.join(entry));
        } else {
            std::fs::copy(&from, shop.join(entry)).unwrap();
        }
    }
    let o = std::process::Command::new(env!("CARGO_BIN_EXE_docsweep"))
        .arg("check")
        .current_dir(&shop)
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(1));
    let printed = String::from_utf8(o.stdout).unwrap();
    assert_eq!(
        shown, printed,
        "README.md's example summary differs from the output"
    );
}
