//! Partitions and merge, and checkpoints, through the real binary: N partitions merged
//! give byte for byte the report and violations.csv of a single run (dumps, gzip dumps,
//! exports and a live server whose `_id`s mix types), merges of mismatched or damaged
//! partial results are refused, and an interrupted checkpointed run continues to the
//! uninterrupted result.

use bson::doc;
use mongodb::sync::Client;
use serde_json::Value;

use crate::util::{copy_dir, example, fresh_db, server, with_db, Workdir};

/// A copy of the example project (docsweep.toml, schemas, data) to run in.
pub(crate) fn project() -> Workdir {
    let w = Workdir::new();
    for d in ["schemas", "data"] {
        copy_dir(&example().join(d), &w.path().join(d));
    }
    std::fs::copy(
        example().join("docsweep.toml"),
        w.path().join("docsweep.toml"),
    )
    .unwrap();
    w
}

/// report.json without its timestamps, nor the comparison with whatever run the report
/// directory held before (`since_previous`: the history, not this run's result).
pub(crate) fn timeless(w: &Workdir, dir: &str) -> Value {
    let mut r = w.read_json(&format!("{dir}/report.json"));
    r["started_at"] = Value::Null;
    r["finished_at"] = Value::Null;
    crate::util::without_history(&mut r);
    r
}

/// Runs `n` partitions into `parts/<i>` and merges them into `merged`; returns the
/// merge's exit code.
pub(crate) fn partition_and_merge(w: &Workdir, n: u32, extra: &[&str]) -> i32 {
    let mut dirs = Vec::new();
    for i in 0..n {
        let p = format!("{i}/{n}");
        let dir = format!("parts/{i}");
        let mut args = vec![
            "check",
            "--no-progress",
            "--partition",
            &p,
            "--report-dir",
            &dir,
        ];
        args.extend_from_slice(extra);
        let run = w.docsweep(&args);
        assert_eq!(run.code, 0, "partition {p}: {}", run.stderr);
        assert!(run.stdout.contains("partial result"), "{}", run.stdout);
        assert!(
            !w.path().join(&dir).join("report.json").exists(),
            "a partition writes no report of its own"
        );
        dirs.push(dir);
    }
    let mut args = vec!["merge", "--report-dir", "merged"];
    args.extend(dirs.iter().rev().map(String::as_str));
    w.docsweep(&args).code
}

#[test]
fn merged_partitions_equal_a_single_run_on_dumps_and_exports() {
    let w = project();
    for source in [
        "dump:data/dump",
        "dump:data/dump-gz",
        "export:data/export",
        "export:data/export-array",
    ] {
        let single = w.docsweep(&[
            "check",
            "--no-progress",
            "--source",
            source,
            "--report-dir",
            "single",
        ]);
        assert_eq!(single.code, 1, "{source}: {}", single.stderr);
        for n in [1, 2, 5] {
            let code = partition_and_merge(&w, n, &["--source", source]);
            assert_eq!(code, 1, "{source} in {n}");
            assert_eq!(
                timeless(&w, "single"),
                timeless(&w, "merged"),
                "{source} in {n}"
            );
            assert_eq!(
                w.read("single/violations.csv"),
                w.read("merged/violations.csv"),
                "{source} in {n}"
            );
            std::fs::remove_dir_all(w.path().join("parts")).unwrap();
        }
    }
    // The merge writes the other outputs too.
    partition_and_merge(&w, 2, &[]);
    let run = w.docsweep(&[
        "merge",
        "parts/0",
        "parts/1/partial.dsw",
        "--report-dir",
        "merged",
        "--html",
        "merged/report.html",
        "--junit",
        "merged/junit.xml",
        "--metrics",
        "merged/docsweep.prom",
    ]);
    assert_eq!(run.code, 1, "{}", run.stderr);
    for f in ["report.html", "junit.xml", "docsweep.prom"] {
        assert!(w.path().join("merged").join(f).is_file(), "{f}");
    }
    assert!(run.stdout.contains("orders"), "the summary: {}", run.stdout);
}

#[test]
fn merges_of_partial_results_that_do_not_belong_together_are_refused() {
    let w = project();
    assert_eq!(partition_and_merge(&w, 3, &[]), 1);
    let refused = |args: &[&str], says: &str| {
        let run = w.docsweep(args);
        assert_eq!(run.code, 2, "{args:?}: {}", run.stderr);
        assert!(
            run.stderr.contains(says),
            "{args:?} should say {says:?}: {}",
            run.stderr
        );
    };
    refused(&["merge", "parts/0", "parts/2"], "missing partition(s) 1/3");
    refused(
        &["merge", "parts/0", "parts/1", "parts/1", "parts/2"],
        "given twice",
    );
    refused(&["merge", "parts/0", "nowhere"], "no partial result");
    refused(
        &[
            "merge", "parts/0", "parts/1", "parts/2", "--target", "orders=2",
        ],
        "the partitions ran with targets",
    );
    // A partition of another partitioning.
    let run = w.docsweep(&[
        "check",
        "--no-progress",
        "--partition",
        "1/2",
        "--report-dir",
        "other",
    ]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    refused(
        &["merge", "parts/0", "other", "parts/2"],
        "different partitionings",
    );
    // A partition whose re-run fails leaves no result behind, not the previous one.
    let run = w.docsweep(&[
        "check",
        "--no-progress",
        "--source",
        "dump:nowhere",
        "--partition",
        "1/2",
        "--report-dir",
        "other",
    ]);
    assert_eq!(run.code, 3, "{}", run.stderr);
    assert!(!w.path().join("other/partial.dsw").exists());
    // Of another source.
    let run = w.docsweep(&[
        "check",
        "--no-progress",
        "--source",
        "dump:data/dump-gz",
        "--partition",
        "1/3",
        "--report-dir",
        "gz",
    ]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    refused(&["merge", "parts/0", "gz", "parts/2"], "different runs");
    // Damage anywhere in a partial result is detected.
    let path = w.path().join("parts/1/partial.dsw");
    let good = std::fs::read(&path).unwrap();
    for at in [good.len() / 3, good.len() / 2, good.len() - 3] {
        let mut bad = good.clone();
        bad[at] ^= 0x01;
        std::fs::write(&path, &bad).unwrap();
        refused(&["merge", "parts/0", "parts/1", "parts/2"], "partial.dsw");
        assert!(
            !w.path().join("docsweep-report/report.json").exists(),
            "no report from a refused merge"
        );
    }
    std::fs::write(&path, &good[..good.len() - 20]).unwrap();
    refused(&["merge", "parts/0", "parts/1", "parts/2"], "partial.dsw");
    std::fs::write(&path, &good).unwrap();
    assert_eq!(
        w.docsweep(&["merge", "parts/0", "parts/1", "parts/2"]).code,
        1
    );
}

#[test]
fn bad_partition_arguments_are_usage_errors() {
    let w = project();
    for (args, says) in [
        (vec!["--partition", "3/3"], "expected i/N"),
        (vec!["--partition", "x"], "expected i/N"),
        (
            vec!["--partition", "0/2", "--checkpoint", "c.ckpt"],
            "cannot be combined",
        ),
    ] {
        let mut a = vec!["check", "--no-progress"];
        a.extend(args);
        let run = w.docsweep(&a);
        assert_eq!(run.code, 2, "{a:?}: {}", run.stderr);
        assert!(run.stderr.contains(says), "{}", run.stderr);
    }
}

/// Runs `check --checkpoint` killed at `failpoint`, then again to the end.
fn interrupted_then_continued(w: &Workdir, failpoint: &str, extra: &[&str]) -> crate::util::Run {
    let mut args = vec![
        "check",
        "--no-progress",
        "--checkpoint",
        "sweep.ckpt",
        "--batch-records",
        "97",
        "--report-dir",
        "continued",
    ];
    args.extend_from_slice(extra);
    let o = std::process::Command::new(env!("CARGO_BIN_EXE_docsweep"))
        .args(&args)
        .current_dir(w.path())
        .env("DOCSWEEP_FAILPOINT", failpoint)
        .output()
        .unwrap();
    assert!(
        o.status.code().is_none(),
        "{failpoint}: the run should have been killed"
    );
    assert!(w.path().join("sweep.ckpt").is_file());
    let run = w.docsweep(&args);
    assert!(
        run.stderr.contains("continuing from the checkpoint"),
        "{}",
        run.stderr
    );
    run
}

#[test]
fn an_interrupted_checkpointed_check_continues_to_the_uninterrupted_result() {
    let w = project();
    let straight = w.docsweep(&["check", "--no-progress", "--report-dir", "straight"]);
    assert_eq!(straight.code, 1, "{}", straight.stderr);
    for failpoint in [
        "partial.after:1",
        "partial.after:9",
        "partial.torn:4",
        "partial.torn:17",
    ] {
        let run = interrupted_then_continued(&w, failpoint, &[]);
        assert_eq!(run.code, 1, "{failpoint}: {}", run.stderr);
        assert_eq!(
            timeless(&w, "straight"),
            timeless(&w, "continued"),
            "{failpoint}"
        );
        assert_eq!(
            w.read("straight/violations.csv"),
            w.read("continued/violations.csv"),
            "{failpoint}"
        );
        assert!(
            !w.path().join("sweep.ckpt").exists(),
            "a completed check removes its checkpoint"
        );
    }
    // A checkpoint of another run is refused, not folded in.
    let o = std::process::Command::new(env!("CARGO_BIN_EXE_docsweep"))
        .args([
            "check",
            "--no-progress",
            "--checkpoint",
            "sweep.ckpt",
            "--batch-records",
            "97",
        ])
        .current_dir(w.path())
        .env("DOCSWEEP_FAILPOINT", "partial.after:3")
        .output()
        .unwrap();
    assert!(o.status.code().is_none());
    let run = w.docsweep(&[
        "check",
        "--no-progress",
        "--checkpoint",
        "sweep.ckpt",
        "--target",
        "orders=2",
    ]);
    assert_eq!(run.code, 2, "{}", run.stderr);
    assert!(run.stderr.contains("is of another run"), "{}", run.stderr);
}

/// Orders whose `_id`s are not ObjectIds, so that live split points and ranges cross
/// BSON type brackets (numbers < strings < ObjectIds < dates).
fn add_mixed_ids(client: &Client, db: &str) {
    let c = client.database(db).collection::<bson::Document>("orders");
    let mut docs = Vec::new();
    for i in 0..40 {
        docs.push(doc! {"_id": i, "status": "odd"});
        docs.push(doc! {"_id": format!("s{i:02}"), "status": "odd"});
        docs.push(doc! {"_id": i as f64 + 0.5, "status": "odd"});
    }
    docs.push(doc! {"_id": bson::DateTime::from_millis(1_700_000_000_000), "status": "odd"});
    c.insert_many(docs).run().unwrap();
}

/// The example (and the mixed `_id`s) in a fresh database of the test server, and a plain
/// check of it into `reference`; None without a server.
fn live_example(tag: &str, reference: &str) -> Option<(Client, String, Workdir, String)> {
    let uri = server()?;
    let db = fresh_db(tag);
    let client = Client::with_uri_str(&uri).unwrap();
    let w = project();
    crate::live::load_example(&client, &db, &w.path().join("loaded"));
    add_mixed_ids(&client, &db);
    let source = with_db(&uri, &db);
    let run = w.docsweep(&[
        "check",
        "--no-progress",
        "--source",
        &source,
        "--report-dir",
        reference,
    ]);
    assert_eq!(run.code, 1, "{}", run.stderr);
    Some((client, db, w, source))
}

#[test]
fn live_partitions_split_by_id_and_merge_to_the_single_run() {
    let Some((client, db, w, source)) = live_example("partition", "single") else {
        return;
    };
    for n in [2, 7] {
        let code = partition_and_merge(&w, n, &["--source", &source, "--batch-size", "50"]);
        assert_eq!(code, 1, "{n}");
        assert_eq!(timeless(&w, "single"), timeless(&w, "merged"), "{n}");
        assert_eq!(
            w.read("single/violations.csv"),
            w.read("merged/violations.csv"),
            "{n}"
        );
        // The partitions split the `_id`s where the data says: the merge checked that
        // they tile each collection.
        let part = std::fs::read(w.path().join("parts/1/partial.dsw")).unwrap();
        assert!(contains(&part, b"\"scheme\":\"ids\""));
        std::fs::remove_dir_all(w.path().join("parts")).unwrap();
    }
    client.database(&db).drop().run().unwrap();
}

#[test]
fn an_interrupted_live_check_continues_after_the_last_recorded_id() {
    let Some((client, db, w, source)) = live_example("checkpoint", "straight") else {
        return;
    };
    for failpoint in ["partial.after:5", "partial.torn:12"] {
        let run = interrupted_then_continued(&w, failpoint, &["--source", &source]);
        assert_eq!(run.code, 1, "{failpoint}: {}", run.stderr);
        assert_eq!(
            timeless(&w, "straight"),
            timeless(&w, "continued"),
            "{failpoint}"
        );
        assert_eq!(
            w.read("straight/violations.csv"),
            w.read("continued/violations.csv"),
            "{failpoint}"
        );
    }
    client.database(&db).drop().run().unwrap();
}

fn contains(hay: &[u8], needle: &[u8]) -> bool {
    hay.windows(needle.len()).any(|w| w == needle)
}

/// `docsweep check` alone runs a nightly sweep from docsweep.toml: the source from an
/// environment variable, the extra outputs and a checkpoint from the file.
#[test]
fn a_nightly_sweep_is_configured_entirely_in_docsweep_toml() {
    let w = project();
    std::fs::write(
        w.path().join("docsweep.toml"),
        r#"source_env = "SHOP_SOURCE"
schemas = "schemas"
baseline = "dump:data/baseline"
report_dir = "out"
html = "out/report.html"
junit = "out/junit.xml"
metrics = "out/docsweep.prom"
checkpoint = "sweep.ckpt"
[targets]
orders = 1
customers = 1
[live]
retries = 2
batch_size = 500
"#,
    )
    .unwrap();
    let run = |env: Option<&str>| {
        let mut c = std::process::Command::new(env!("CARGO_BIN_EXE_docsweep"));
        c.args(["check", "--no-progress"]).current_dir(w.path());
        c.env_remove("SHOP_SOURCE");
        if let Some(v) = env {
            c.env("SHOP_SOURCE", v);
        }
        c.output().unwrap()
    };
    let o = run(None);
    assert_eq!(o.status.code(), Some(2));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(err.contains("SHOP_SOURCE is not set"), "{err}");
    let o = run(Some("dump:data/dump"));
    assert_eq!(
        o.status.code(),
        Some(1),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
    for f in [
        "report.json",
        "violations.csv",
        "report.html",
        "junit.xml",
        "docsweep.prom",
    ] {
        assert!(w.path().join("out").join(f).is_file(), "{f}");
    }
    assert!(
        !w.path().join("sweep.ckpt").exists(),
        "removed once complete"
    );
    let report = w.read_json("out/report.json");
    assert_eq!(report["source"], "dump:data/dump");
    assert!(report["baseline"]
        .as_str()
        .unwrap()
        .ends_with("data/baseline"));
}
