//! `docsweep repair plan | apply | undo` on dumps: plans are checked against the target
//! schema, apply writes a new dump with a journal, re-running is a no-op, a crash at any
//! point followed by a re-run gives exactly the clean result, and undo restores the
//! original bytes.

use std::path::{Path, PathBuf};

use docsweep::repair::plan::Plan;
use serde_json::Value;

use crate::util::{collection, example, Workdir};

pub(crate) fn dump() -> String {
    format!("dump:{}", example().join("data/dump").display())
}

pub(crate) fn baseline() -> String {
    format!("dump:{}", example().join("data/baseline").display())
}

pub(crate) fn schemas() -> String {
    example().join("schemas").display().to_string()
}

pub(crate) fn plan(w: &Workdir, args: &[&str]) -> crate::util::Run {
    let s = schemas();
    let mut all = vec!["repair", "plan", "--schemas", s.as_str()];
    all.extend_from_slice(args);
    w.docsweep(&all)
}

pub(crate) fn check(w: &Workdir, source: &str, out: &str, extra: &[&str]) -> Value {
    check_code(w, source, out, extra).1
}

/// Runs `check` with the example's contracts; its exit code (0 or 1) and report.
pub(crate) fn check_code(w: &Workdir, source: &str, out: &str, extra: &[&str]) -> (i32, Value) {
    let s = schemas();
    let mut args = vec![
        "check",
        "--no-progress",
        "--source",
        source,
        "--schemas",
        s.as_str(),
        "--report-dir",
        out,
    ];
    args.extend_from_slice(extra);
    let run = w.docsweep(&args);
    assert!(run.code <= 1, "{}", run.stderr);
    (run.code, w.read_json(&format!("{out}/report.json")))
}

/// Every file of a dump database folder (not the .docsweep bookkeeping), by name.
pub(crate) fn files(dir: &Path) -> Vec<(String, Vec<u8>)> {
    let mut v: Vec<(String, Vec<u8>)> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.is_file())
        .map(|p| {
            (
                p.file_name().unwrap().to_string_lossy().into_owned(),
                std::fs::read(&p).unwrap(),
            )
        })
        .collect();
    v.sort();
    v
}

pub(crate) const REVERT: [&str; 4] = [
    "--template",
    "revert-nested-reference",
    "--template",
    "units-from-cents",
];

#[test]
fn revert_apply_rerun_and_undo() {
    let w = Workdir::new();
    let d = dump();
    let mut args = REVERT.to_vec();
    args.extend([
        "--collection",
        "orders",
        "--source",
        &d,
        "--out",
        "revert.plan",
    ]);
    let run = plan(&w, &args);
    assert_eq!(run.code, 0, "a written plan exits 0: {}", run.stderr);
    assert!(run.stdout.contains("40 change(s)"), "{}", run.stdout);

    let run = w.docsweep(&[
        "repair",
        "apply",
        "revert.plan",
        "--out",
        "dump:fixed",
        "--audit",
        "audit.jsonl",
    ]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    let report = check(&w, "dump:fixed", "r1", &[]);
    let orders = collection(&report, "orders");
    assert_eq!(orders["classes"]["other_version"], serde_json::json!({}));
    assert_eq!(orders["classes"]["valid"], 1448 + 40);
    assert_eq!(
        orders["unreadable"], 1,
        "the unreadable record is carried over"
    );

    // Re-running is a no-op.
    let before = files(&w.path().join("fixed/shop"));
    let run = w.docsweep(&[
        "repair",
        "apply",
        "revert.plan",
        "--out",
        "dump:fixed",
        "--audit",
        "audit.jsonl",
    ]);
    assert_eq!(run.code, 0);
    assert!(run.stdout.contains("already applied"), "{}", run.stdout);
    assert_eq!(files(&w.path().join("fixed/shop")), before);

    // Undo restores the original bytes of every file.
    let run = w.docsweep(&[
        "repair",
        "undo",
        "fixed/shop/.docsweep/journal",
        "--out",
        "dump:undone",
        "--audit",
        "audit.jsonl",
    ]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert_eq!(
        files(&w.path().join("undone/shop")),
        files(&example().join("data/dump/shop"))
    );

    let audit = w.read("audit.jsonl");
    assert_eq!(
        audit.lines().count(),
        3,
        "apply, the re-run and undo: {audit}"
    );
    assert!(audit.contains("\"command\":\"apply\"") && audit.contains("\"command\":\"undo\""));
}

#[test]
fn a_plan_whose_results_fail_the_target_schema_is_refused() {
    let w = Workdir::new();
    let d = dump();
    let run = plan(
        &w,
        &[
            "--template",
            "revert-nested-reference",
            "--collection",
            "orders",
            "--source",
            &d,
            "--out",
            "p.plan",
        ],
    );
    assert_eq!(run.code, 2);
    assert!(
        run.stderr.contains("refused") && run.stderr.contains("\"total\""),
        "{}",
        run.stderr
    );
    assert!(!w.path().join("p.plan").exists(), "no plan is written");
}

#[test]
fn restore_missing_documents_from_the_baseline() {
    let w = Workdir::new();
    let (d, b) = (dump(), baseline());
    let run = plan(
        &w,
        &[
            "--template",
            "restore-missing",
            "--collection",
            "orders",
            "--source",
            &d,
            "--baseline",
            &b,
            "--out",
            "m.plan",
        ],
    );
    assert_eq!(run.code, 0, "{}", run.stderr);
    let run = w.docsweep(&[
        "repair",
        "apply",
        "m.plan",
        "--out",
        "dump:restored",
        "--audit",
        "a.jsonl",
    ]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    let report = check(&w, "dump:restored", "r", &["--baseline", &b]);
    let orders = collection(&report, "orders");
    assert_eq!(orders["reconciliation"]["missing"], 0);
    assert_eq!(orders["documents"], 1512 + 20);
}

/// Plans and applies `quarantine-orphans` for the orders' `customer_id` from `source`
/// into `out`.
pub(crate) fn quarantine_the_orphans(w: &Workdir, source: &str, out: &str) {
    let run = plan(
        w,
        &[
            "--template",
            "quarantine-orphans",
            "--collection",
            "orders",
            "--param",
            "field=customer_id",
            "--source",
            source,
            "--out",
            "q.plan",
        ],
    );
    assert_eq!(run.code, 0, "{}", run.stderr);
    let run = w.docsweep(&[
        "repair", "apply", "q.plan", "--out", out, "--audit", "a.jsonl",
    ]);
    assert_eq!(run.code, 0, "{}", run.stderr);
}

#[test]
fn quarantine_orphans_and_dedupe() {
    let w = Workdir::new();
    let d = dump();
    quarantine_the_orphans(&w, &d, "dump:q");
    let report = check(&w, "dump:q/shop", "r", &["--collection", "orders"]);
    let refs = &collection(&report, "orders")["references"];
    assert_eq!(refs[0]["field"], "customer_id");
    assert_eq!(refs[0]["orphans"], 0);
    let q = std::fs::read(w.path().join("q/shop/orders_quarantine.bson")).unwrap();
    let mut n = 0;
    let mut pos = 0;
    while pos + 4 <= q.len() {
        pos += i32::from_le_bytes(q[pos..pos + 4].try_into().unwrap()) as usize;
        n += 1;
    }
    assert_eq!(n, 6, "the six orphans are kept in orders_quarantine");

    let run = plan(
        &w,
        &[
            "--template",
            "dedupe-keep-first",
            "--collection",
            "customers",
            "--param",
            "fields=email",
            "--source",
            &d,
            "--out",
            "dd.plan",
        ],
    );
    assert_eq!(run.code, 0, "{}", run.stderr);
    let run = w.docsweep(&[
        "repair", "apply", "dd.plan", "--out", "dump:dd", "--audit", "a.jsonl",
    ]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    let report = check(&w, "dump:dd", "r2", &["--collection", "customers"]);
    let customers = collection(&report, "customers");
    assert_eq!(customers["duplicates"][0]["groups"], 0);
    // 5 groups with 12 documents: the first of each stays.
    assert_eq!(customers["documents"], 313 - 7);
}

/// Plans and applies the orders' missing `customer_id` index from `source` into `out`.
pub(crate) fn create_the_missing_index(w: &Workdir, source: &str, out: &str) {
    let run = plan(
        w,
        &[
            "--template",
            "create-missing-index",
            "--collection",
            "orders",
            "--param",
            "key={\"customer_id\": 1}",
            "--source",
            source,
            "--out",
            "create-index.plan",
        ],
    );
    assert_eq!(run.code, 0, "{}", run.stderr);
    let run = w.docsweep(&[
        "repair",
        "apply",
        "create-index.plan",
        "--out",
        out,
        "--audit",
        "a.jsonl",
    ]);
    assert_eq!(run.code, 0, "{}", run.stderr);
}

#[test]
fn index_templates_change_the_metadata() {
    let w = Workdir::new();
    let d = dump();
    create_the_missing_index(&w, &d, "dump:i1");
    let run = plan(
        &w,
        &[
            "--template",
            "drop-unexpected-index",
            "--collection",
            "orders",
            "--param",
            "name=customer.id_1",
            "--source",
            "dump:i1",
            "--out",
            "j.plan",
        ],
    );
    assert_eq!(run.code, 0, "{}", run.stderr);
    let run = w.docsweep(&[
        "repair", "apply", "j.plan", "--out", "dump:i2", "--audit", "a.jsonl",
    ]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    let report = check(&w, "dump:i2", "r", &["--collection", "orders"]);
    let ix = &collection(&report, "orders")["indexes"];
    assert_eq!(ix["missing"], serde_json::json!([]), "{ix}");
    assert_eq!(ix["unexpected"], serde_json::json!([]), "{ix}");
}

#[test]
fn a_crash_anywhere_then_a_rerun_gives_the_clean_result() {
    let w = Workdir::new();
    let d = dump();
    let mut args = REVERT.to_vec();
    args.extend([
        "--collection",
        "orders",
        "--source",
        &d,
        "--out",
        "revert.plan",
    ]);
    assert_eq!(plan(&w, &args).code, 0);
    let run = w.docsweep(&[
        "repair",
        "apply",
        "revert.plan",
        "--out",
        "dump:clean",
        "--audit",
        "a.jsonl",
    ]);
    assert_eq!(run.code, 0);
    let clean = files(&w.path().join("clean/shop"));
    for point in [
        "apply.before-batch",
        "apply.batch-journaled",
        "apply.batch-done",
        "apply.before-rename",
        "apply.after-rename",
    ] {
        let out = format!("crash-{point}");
        let status = std::process::Command::new(env!("CARGO_BIN_EXE_docsweep"))
            .args([
                "repair",
                "apply",
                "revert.plan",
                "--out",
                &format!("dump:{out}"),
                "--audit",
                "a.jsonl",
            ])
            .current_dir(w.path())
            .env("DOCSWEEP_FAILPOINT", point)
            .output()
            .unwrap();
        assert!(
            !status.status.success(),
            "{point}: the process must have crashed"
        );
        if point != "apply.after-rename" {
            assert!(
                !w.path().join(&out).join("shop").exists(),
                "{point}: no output may look complete"
            );
        }
        let run = w.docsweep(&[
            "repair",
            "apply",
            "revert.plan",
            "--out",
            &format!("dump:{out}"),
            "--audit",
            "a.jsonl",
        ]);
        assert_eq!(run.code, 0, "{point}: {}", run.stderr);
        assert_eq!(
            files(&w.path().join(&out).join("shop")),
            clean,
            "{point}: result differs from a clean run"
        );
        assert!(!w.path().join(&out).join(".shop.docsweep-partial").exists());
    }
}

#[test]
fn damaged_plans_and_journals_are_refused() {
    let w = Workdir::new();
    let d = dump();
    let mut args = REVERT.to_vec();
    args.extend(["--collection", "orders", "--source", &d, "--out", "p.plan"]);
    assert_eq!(plan(&w, &args).code, 0);
    let bytes = std::fs::read(w.path().join("p.plan")).unwrap();
    let mut edited = bytes.clone();
    let i = bytes.len() / 2;
    edited[i] = if edited[i] == b'1' { b'2' } else { b'1' };
    std::fs::write(w.path().join("edited.plan"), &edited).unwrap();
    std::fs::write(w.path().join("cut.plan"), &bytes[..bytes.len() - 40]).unwrap();
    for p in ["edited.plan", "cut.plan"] {
        let run = w.docsweep(&[
            "repair", "apply", p, "--out", "dump:x", "--audit", "a.jsonl",
        ]);
        assert_eq!(run.code, 2, "{p}: {}", run.stderr);
        assert!(run.stderr.contains(p), "{}", run.stderr);
    }
    assert_eq!(
        w.docsweep(&["repair", "apply", "p.plan", "--out", "dump:ok", "--audit", "a.jsonl"])
            .code,
        0
    );
    let journal = w.path().join("ok/shop/.docsweep/journal");
    let j = std::fs::read(&journal).unwrap();
    let mut bad = j.clone();
    bad[30] ^= 0x01;
    let bad_path: PathBuf = w.path().join("bad.journal");
    std::fs::write(&bad_path, &bad).unwrap();
    let run = w.docsweep(&[
        "repair",
        "undo",
        "bad.journal",
        "--out",
        "dump:u",
        "--audit",
        "a.jsonl",
    ]);
    assert_eq!(run.code, 2, "{}", run.stderr);
    assert!(run.stderr.contains("checksum"), "{}", run.stderr);
}

#[test]
fn every_bundled_template_plans_and_applies() {
    let w = Workdir::new();
    let (d, b) = (dump(), baseline());
    // Template, extra arguments, what the plan holds (0: nothing to change, 1: changes;
    // both exit 0) or 2: refused (exit 2) because the results would not pass the target
    // version.
    let cases: &[(&str, &[&str], i32)] = &[
        (
            "revert-nested-reference",
            &["--template", "units-from-cents", "--collection", "orders"],
            1,
        ),
        (
            "units-from-cents",
            &[
                "--collection",
                "orders",
                "--select",
                "invalid",
                "--param",
                "field=total_cents",
            ],
            1,
        ),
        (
            "cents-from-units",
            &["--collection", "orders", "--select", "other_version:2"],
            0,
        ),
        (
            "revert-split-field",
            &[
                "--collection",
                "customers",
                "--param",
                "first=name.first",
                "--param",
                "second=name.last",
                "--select",
                "all",
            ],
            1,
        ),
        (
            "restore-missing",
            &["--collection", "orders", "--baseline", &b],
            1,
        ),
        (
            "restore-changed",
            &["--collection", "orders", "--baseline", &b],
            1,
        ),
        ("quarantine-orphans", &["--collection", "orders"], 1),
        ("quarantine-invalid", &["--collection", "orders"], 1),
        (
            "quarantine-added",
            &["--collection", "orders", "--baseline", &b],
            1,
        ),
        ("dedupe-keep-first", &["--collection", "customers"], 1),
        (
            "create-missing-index",
            &[
                "--collection",
                "orders",
                "--param",
                "key={\"customer_id\": 1}",
            ],
            1,
        ),
        (
            "drop-unexpected-index",
            &["--collection", "orders", "--param", "name=customer.id_1"],
            1,
        ),
        (
            "set-default",
            &[
                "--collection",
                "orders",
                "--param",
                "field=currency",
                "--param",
                "value=\"EUR\"",
            ],
            0,
        ),
        (
            "rename-field",
            &[
                "--collection",
                "orders",
                "--param",
                "from=total_cents",
                "--param",
                "to=total",
            ],
            1,
        ),
        // Numeric statuses become strings, which the enum still refuses.
        (
            "convert-field-type",
            &[
                "--collection",
                "orders",
                "--param",
                "field=status",
                "--param",
                "to=string",
            ],
            2,
        ),
    ];
    let listed = w.docsweep(&["templates", "list"]).stdout;
    for (name, extra, want) in cases {
        assert!(listed.contains(name), "{name} is not listed");
        let out = format!("{name}.plan");
        let mut args = vec![
            "--template",
            name,
            "--source",
            d.as_str(),
            "--out",
            out.as_str(),
        ];
        args.extend_from_slice(extra);
        let run = plan(&w, &args);
        assert_eq!(
            run.code,
            if *want == 2 { 2 } else { 0 },
            "{name}: {}",
            run.stderr
        );
        if *want < 2 {
            let entries = Plan::read(&w.path().join(&out)).unwrap().entries.len();
            assert_eq!(entries > 0, *want == 1, "{name}: {entries} entries");
        }
        if *want == 2 {
            assert!(run.stderr.contains("refused"), "{name}: {}", run.stderr);
            continue;
        }
        let dir = format!("dump:out-{name}");
        let run = w.docsweep(&["repair", "apply", &out, "--out", &dir, "--audit", "a.jsonl"]);
        assert_eq!(run.code, 0, "{name}: apply: {}", run.stderr);
        let report = check(&w, &dir, &format!("r-{name}"), &[]);
        assert_eq!(
            report["status"], "findings",
            "{name}: the example has other findings left"
        );
    }
}

#[test]
fn the_remediation_commands_of_a_report_run_as_written() {
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
    let report = w.read_json("out/report.json");
    let orders = collection(&report, "orders");
    let rem = orders["remediation"].as_array().unwrap();
    let revert = rem
        .iter()
        .find(|r| r["finding"] == "other_version:2")
        .expect("a remediation for v2 orders");
    assert_eq!(
        revert["template"], "revert-nested-reference+units-from-cents",
        "derived from samples"
    );
    for r in rem {
        let cmd = r["command"].as_str().unwrap();
        if r["template"] == "" {
            continue;
        }
        // The command as printed, with the binary under test.
        let cmd = cmd.replacen("docsweep", env!("CARGO_BIN_EXE_docsweep"), 1);
        let out = std::process::Command::new("sh")
            .arg("-c")
            .arg(&cmd)
            .current_dir(w.path())
            .output()
            .unwrap();
        let code = out.status.code().unwrap_or(-1);
        assert!(
            code <= 1,
            "{cmd}: exit {code}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let run = w.docsweep(&[
        "repair",
        "apply",
        "orders-revert-v2.plan",
        "--out",
        "dump:fixed",
        "--audit",
        "a.jsonl",
    ]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    let after = check(&w, "dump:fixed", "r2", &["--collection", "orders"]);
    assert_eq!(
        collection(&after, "orders")["classes"]["other_version"],
        serde_json::json!({})
    );
}

#[test]
fn records_sharing_an_id_are_changed_one_by_one_and_restores_never_duplicate() {
    let w = Workdir::new();
    crate::util::copy_dir(&example().join("data/dump"), &w.path().join("in"));
    // A second, identical copy of the first customer (as a missing unique index allows).
    let file = w.path().join("in/shop/customers.bson");
    let mut bytes = std::fs::read(&file).unwrap();
    let first = i32::from_le_bytes(bytes[0..4].try_into().unwrap()) as usize;
    let copy = bytes[..first].to_vec();
    bytes.extend_from_slice(&copy);
    std::fs::write(&file, &bytes).unwrap();

    let run = plan(
        &w,
        &[
            "--template",
            "dedupe-keep-first",
            "--collection",
            "customers",
            "--source",
            "dump:in",
            "--out",
            "d.plan",
        ],
    );
    assert_eq!(run.code, 0, "{}", run.stderr);
    let deletes = Plan::read(&w.path().join("d.plan")).unwrap().entries.len();
    let run = w.docsweep(&[
        "repair", "apply", "d.plan", "--out", "dump:out", "--audit", "a.jsonl",
    ]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    let report = check(&w, "dump:out", "r", &["--collection", "customers"]);
    let customers = collection(&report, "customers");
    assert_eq!(
        customers["documents"],
        313 + 1 - deletes as u64,
        "exactly the planned records are deleted"
    );
    assert_eq!(customers["structure"]["duplicate_id"], 0);

    // Restoring a document whose _id has come back since the plan is a conflict.
    let b = baseline();
    let run = plan(
        &w,
        &[
            "--template",
            "restore-missing",
            "--collection",
            "customers",
            "--source",
            "dump:in",
            "--baseline",
            &b,
            "--out",
            "m.plan",
        ],
    );
    assert_eq!(run.code, 0, "{}", run.stderr);
    let p = Plan::read(&w.path().join("m.plan")).unwrap();
    // Another document under that `_id` (the same one would already be in place).
    let mut back = p.entries[0].after.clone().unwrap();
    back["note"] = "came back otherwise".into();
    let mut bytes = std::fs::read(&file).unwrap();
    bytes.extend_from_slice(&docsweep::value::to_bson(&back).unwrap());
    std::fs::write(&file, &bytes).unwrap();
    let run = w.docsweep(&[
        "repair", "apply", "m.plan", "--out", "dump:m", "--audit", "a.jsonl",
    ]);
    assert_eq!(run.code, 1, "a conflict: {}", run.stdout);
    assert!(
        run.stdout.contains(": _id taken by another document"),
        "{}",
        run.stdout
    );
    let report = check(&w, "dump:m", "r2", &["--collection", "customers"]);
    assert_eq!(
        collection(&report, "customers")["structure"]["duplicate_id"],
        1,
        "only the planted copy"
    );
}

/// Every file of a dump database folder, gunzipped where it is gzipped (a recompressed file
/// has other bytes for the same content), by name without `.gz`.
pub(crate) fn contents(dir: &Path) -> Vec<(String, Vec<u8>)> {
    use std::io::Read as _;
    files(dir)
        .into_iter()
        .map(|(name, bytes)| match name.strip_suffix(".gz") {
            Some(plain) => {
                let mut out = Vec::new();
                flate2::read::MultiGzDecoder::new(&bytes[..])
                    .read_to_end(&mut out)
                    .unwrap();
                (plain.to_string(), out)
            }
            None => (name, bytes),
        })
        .collect()
}

#[test]
fn index_changes_in_a_gzipped_dump_then_undo_from_the_moved_dump() {
    let w = Workdir::new();
    let gz = format!("dump:{}", example().join("data/dump-gz").display());
    // One plan for both: each template's `name` parameter set on its own.
    let ix_plan = |extra: &[&str]| {
        let mut args = vec![
            "--template",
            "create-missing-index",
            "--template",
            "drop-unexpected-index",
            "--collection",
            "orders",
            "--param",
            "key={\"customer_id\": 1}",
            "--source",
            &gz,
            "--out",
            "ix.plan",
        ];
        args.extend_from_slice(extra);
        plan(&w, &args)
    };
    for bad in ["nosuch.name=x", "create-missing-index.nosuch=x"] {
        let run = ix_plan(&["--param", bad]);
        assert_eq!(run.code, 2, "{bad}: {}", run.stderr);
    }
    let run = ix_plan(&[
        "--param",
        "drop-unexpected-index.name=customer.id_1",
        "--param",
        "create-missing-index.name=customer_id_1",
    ]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    let run = w.docsweep(&[
        "repair", "apply", "ix.plan", "--out", "dump:gz1", "--audit", "a.jsonl",
    ]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    let out = w.path().join("gz1/shop");
    assert!(out.join("orders.metadata.json.gz").is_file());
    assert!(!out.join("orders.metadata.json").exists(), "stays gzipped");
    let report = check(&w, "dump:gz1", "r", &["--collection", "orders"]);
    let ix = &collection(&report, "orders")["indexes"];
    assert_eq!(ix["missing"], serde_json::json!([]), "{ix}");
    assert_eq!(ix["unexpected"], serde_json::json!([]), "{ix}");

    // The dump is moved and renamed; undo finds it from its journal, run from another
    // directory, and keeps the database's name.
    std::fs::create_dir(w.path().join("elsewhere")).unwrap();
    std::fs::rename(&out, w.path().join("elsewhere/shop-fixed")).unwrap();
    let run = w.docsweep(&[
        "repair",
        "undo",
        &w.path()
            .join("elsewhere/shop-fixed/.docsweep/journal")
            .display()
            .to_string(),
        "--out",
        "dump:back",
        "--audit",
        "a.jsonl",
    ]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert_eq!(
        contents(&w.path().join("back/shop")),
        contents(&example().join("data/dump-gz/shop")),
        "undo gives back the content of every file, the index metadata included"
    );
}

/// A one-collection dump whose documents carry Int64 fields, with a contract whose v2
/// renamed `name` to `label`.
fn int64_project(w: &Workdir) {
    let dir = w.path().join("src/db");
    std::fs::create_dir_all(&dir).unwrap();
    let mut bytes = Vec::new();
    for i in 0..3_i64 {
        let d = if i == 1 {
            bson::doc! {"_id": i, "big": 5_000_000_000_i64 + i, "small": 7_i64, "sub": {"k": 9_i64}, "label": "b"}
        } else {
            bson::doc! {"_id": i, "big": 5_000_000_000_i64 + i, "small": 7_i64, "sub": {"k": 9_i64}, "name": "a"}
        };
        bytes.extend(d.to_vec().unwrap());
    }
    std::fs::write(dir.join("items.bson"), bytes).unwrap();
    let s = w.path().join("schemas/items");
    std::fs::create_dir_all(&s).unwrap();
    std::fs::write(
        s.join("contract.toml"),
        "collection = \"items\"\ntarget = 1\n[[versions]]\nversion = 1\nschema = \"v1.json\"\n\
         [[versions]]\nversion = 2\nschema = \"v2.json\"\n",
    )
    .unwrap();
    for (file, field) in [("v1.json", "name"), ("v2.json", "label")] {
        std::fs::write(
            s.join(file),
            serde_json::json!({
                "$schema": "https://json-schema.org/draft/2020-12/schema",
                "type": "object",
                "required": ["_id", "big", field],
                "properties": {"big": {"type": "integer"}, field: {"type": "string"}},
                "not": {"required": [if field == "name" { "label" } else { "name" }]}
            })
            .to_string(),
        )
        .unwrap();
    }
}

#[test]
fn fields_a_repair_does_not_touch_keep_their_bson_types_in_the_new_dump() {
    let w = Workdir::new();
    int64_project(&w);
    let run = w.docsweep(&[
        "repair",
        "plan",
        "--schemas",
        "schemas",
        "--template",
        "rename-field",
        "--collection",
        "items",
        "--select",
        "other_version:2",
        "--param",
        "from=label",
        "--param",
        "to=name",
        "--source",
        "dump:src",
        "--out",
        "p.plan",
    ]);
    assert_eq!(run.code, 0, "{}{}", run.stdout, run.stderr);
    let run = w.docsweep(&[
        "repair", "apply", "p.plan", "--out", "dump:out", "--audit", "a.jsonl",
    ]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    let bytes = std::fs::read(w.path().join("out/db/items.bson")).unwrap();
    let mut docs = Vec::new();
    let mut at = 0;
    while at < bytes.len() {
        let len = i32::from_le_bytes(bytes[at..at + 4].try_into().unwrap()) as usize;
        docs.push(bson::Document::from_reader(&bytes[at..at + len]).unwrap());
        at += len;
    }
    assert_eq!(docs.len(), 3);
    let fixed = &docs[1];
    assert_eq!(fixed.get_str("name").ok(), Some("b"), "{fixed}");
    assert!(!fixed.contains_key("label"));
    assert_eq!(fixed.get("big"), Some(&bson::Bson::Int64(5_000_000_001)));
    assert_eq!(fixed.get("small"), Some(&bson::Bson::Int64(7)), "{fixed}");
    assert_eq!(
        fixed.get_document("sub").unwrap().get("k"),
        Some(&bson::Bson::Int64(9))
    );
    // Undo gives back the original bytes.
    let run = w.docsweep(&[
        "repair",
        "undo",
        "out/db/.docsweep/journal",
        "--out",
        "dump:undone",
        "--audit",
        "a.jsonl",
    ]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert_eq!(
        std::fs::read(w.path().join("undone/db/items.bson")).unwrap(),
        std::fs::read(w.path().join("src/db/items.bson")).unwrap()
    );
}

#[test]
fn quarantine_in_a_gzipped_dump_stays_gzipped_and_undo_takes_it_back() {
    let w = Workdir::new();
    let gz = format!("dump:{}", example().join("data/dump-gz").display());
    quarantine_the_orphans(&w, &gz, "dump:qz");
    let out = w.path().join("qz/shop");
    assert!(!out.join("orders_quarantine.bson").exists());
    let quarantined = contents(&out)
        .into_iter()
        .find(|(name, _)| name == "orders_quarantine.bson")
        .expect("orders_quarantine.bson.gz")
        .1;
    use docsweep::source::RecordReader as _;
    let mut reader = docsweep::source::BsonReader::new(
        Box::new(std::io::Cursor::new(quarantined)),
        None,
        "orders_quarantine.bson".into(),
    );
    let mut n = 0;
    while let Some(batch) = reader.next_batch(100).unwrap() {
        assert!(batch.records.iter().all(|rec| rec.broken.is_none()));
        n += batch.len();
    }
    assert_eq!(n, 6, "the six orphans, gzipped like the dump");
    let report = check(&w, "dump:qz", "r", &["--collection", "orders"]);
    assert_eq!(collection(&report, "orders")["references"][0]["orphans"], 0);

    let run = w.docsweep(&[
        "repair",
        "undo",
        "qz/shop/.docsweep/journal",
        "--out",
        "dump:back",
        "--audit",
        "a.jsonl",
    ]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    // The orphans are back (appended at the end) and the emptied quarantine collection is
    // gone: the same files, the same documents.
    let by_document = |dir: &Path| -> Vec<(String, Vec<Vec<u8>>)> {
        contents(dir)
            .into_iter()
            .map(|(name, bytes)| {
                let mut docs = Vec::new();
                if name.ends_with(".bson") {
                    let mut at = 0;
                    while at + 4 <= bytes.len() {
                        let len = i32::from_le_bytes(bytes[at..at + 4].try_into().unwrap());
                        let end = (at + len.max(1) as usize).min(bytes.len());
                        docs.push(bytes[at..end].to_vec());
                        at = end;
                    }
                    docs.sort();
                } else {
                    docs.push(bytes);
                }
                (name, docs)
            })
            .collect()
    };
    assert_eq!(
        by_document(&w.path().join("back/shop")),
        by_document(&example().join("data/dump-gz/shop"))
    );
}
