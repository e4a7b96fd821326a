//! `repair plan --from-report`: one plan from a report's remediations, in a safe order,
//! each step planned against the state the earlier ones leave; applied as one unit with
//! one journal, resumed exactly after a crash, undone byte for byte.

use std::path::Path;

use docsweep::repair::plan::Plan;
use serde_json::Value;

use crate::repair::{baseline, check, dump, files, schemas};
use crate::util::{collection, Workdir};

/// What a check observes of a finding a remediation names (0: the finding is gone).
fn observed(report: &Value, coll: &str, finding: &str) -> u64 {
    let c = collection(report, coll);
    let (kind, arg) = finding.split_once(':').unwrap_or((finding, ""));
    let n = |v: &Value| v.as_u64().unwrap_or(0);
    match kind {
        "missing" | "changed" | "added" => n(&c["reconciliation"][kind]),
        "invalid" => n(&c["classes"]["invalid"]),
        "other_version" => n(&c["classes"]["other_version"][arg]),
        "duplicate" => c["duplicates"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|d| {
                d["key"]
                    .as_object()
                    .unwrap()
                    .keys()
                    .cloned()
                    .collect::<Vec<_>>()
                    .join(",")
                    == arg
            })
            .map(|d| n(&d["groups"]))
            .sum(),
        "orphan" => c["references"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|r| r["field"] == arg)
            .map(|r| n(&r["orphans"]))
            .sum(),
        "index_missing" => c["indexes"]["missing"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|m| m["key"] == serde_json::from_str::<Value>(arg).unwrap())
            .count() as u64,
        "index_unexpected" => c["indexes"]["unexpected"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|m| m["name"] == arg)
            .count() as u64,
        other => panic!("unknown finding {other}"),
    }
}

/// The findings a report's remediations claim to repair: (collection, finding).
fn claimed(report: &Value) -> Vec<(String, String)> {
    let mut out = Vec::new();
    for c in report["collections"].as_array().unwrap() {
        for r in c["remediation"].as_array().unwrap() {
            if r["template"] != "" {
                out.push((
                    c["name"].as_str().unwrap().to_string(),
                    r["finding"].as_str().unwrap().to_string(),
                ));
            }
        }
    }
    out
}

fn from_report(w: &Workdir, report_dir: &str, out: &str, extra: &[&str]) -> crate::util::Run {
    let mut args = vec!["repair", "plan", "--from-report", report_dir, "--out", out];
    args.extend_from_slice(extra);
    w.docsweep(&args)
}

fn apply(w: &Workdir, plan: &str, out: &str) -> crate::util::Run {
    w.docsweep(&[
        "repair",
        "apply",
        plan,
        "--out",
        out,
        "--audit",
        "audit.jsonl",
    ])
}

/// The example's report, its one plan applied: every finding a remediation claimed is
/// gone, what is left is what no remediation claims (documents added since the baseline,
/// structure); a re-run is a no-op; undo gives back every file byte for byte.
#[test]
fn one_plan_from_the_report_fixes_every_finding_it_claims_and_undo_gives_back_every_byte() {
    let w = Workdir::new();
    let b = baseline();
    let (code, before) = crate::repair::check_code(&w, &dump(), "r0", &["--baseline", &b]);
    assert_eq!(code, 1);
    let claims = claimed(&before);
    assert!(claims.len() >= 10, "{claims:?}");

    let run = from_report(&w, "r0", "all.plan", &[]);
    assert_eq!(run.code, 0, "{}{}", run.stdout, run.stderr);
    // The safe order: restores, reverts, dedupes, quarantines, indexes.
    let stages: Vec<&str> = run
        .stdout
        .lines()
        .filter_map(|l| l.trim_start().split_once(". ").map(|(_, r)| r))
        .filter_map(|r| r.split_whitespace().next())
        .collect();
    let mut sorted = stages.clone();
    let rank = |s: &&str| {
        ["restore", "revert", "dedupe", "quarantine", "indexes"]
            .iter()
            .position(|x| x == s)
    };
    sorted.sort_by_key(rank);
    assert_eq!(stages, sorted, "{}", run.stdout);
    assert!(
        stages.contains(&"restore") && stages.contains(&"indexes"),
        "{}",
        run.stdout
    );
    assert!(
        run.stdout.contains("not included: orders added"),
        "{}",
        run.stdout
    );
    let plan = Plan::read(&w.path().join("all.plan")).unwrap();
    assert_eq!(plan.collections(), ["customers", "orders"]);

    let run = apply(&w, "all.plan", "dump:fixed");
    assert_eq!(run.code, 0, "{}{}", run.stdout, run.stderr);
    let n = plan.entries.len();
    assert!(
        run.stdout.contains(&format!(
            "{n} applied, 0 already in place, 0 conflict(s), of {n} planned"
        )),
        "{}",
        run.stdout
    );
    let after = check(&w, "dump:fixed", "r1", &["--baseline", &b]);
    for (coll, finding) in &claims {
        assert_eq!(
            observed(&after, coll, finding),
            0,
            "{coll} {finding} is left"
        );
    }
    for c in after["collections"].as_array().unwrap() {
        for r in c["remediation"].as_array().unwrap() {
            assert_eq!(
                r["finding"], "added",
                "only documents to review are left: {r}"
            );
        }
    }
    // Applied once: a re-run changes nothing.
    let again = apply(&w, "all.plan", "dump:fixed");
    assert_eq!(again.code, 0, "{}", again.stderr);
    assert!(again.stdout.contains("already"), "{}", again.stdout);

    let run = w.docsweep(&[
        "repair",
        "undo",
        "fixed/shop/.docsweep/journal",
        "--out",
        "dump:undone",
        "--audit",
        "audit.jsonl",
    ]);
    assert_eq!(run.code, 0, "{}{}", run.stdout, run.stderr);
    let input = crate::util::example().join("data/dump/shop");
    assert!(
        files(&input) == files(&w.path().join("undone/shop")),
        "undo gives back every file byte for byte"
    );
}

/// `--only` picks findings; a unique index is planned only once its duplicates are
/// resolved in the same plan, and refused with the reason otherwise.
#[test]
fn only_picks_findings_and_a_unique_index_waits_for_its_duplicates() {
    let w = Workdir::new();
    let (code, _) = crate::repair::check_code(&w, &dump(), "r0", &["--baseline", &baseline()]);
    assert_eq!(code, 1);
    let indexes_of = |plan: &str, coll: &str| -> Vec<String> {
        let p = Plan::read(&w.path().join(plan)).unwrap();
        p.entries
            .iter()
            .filter(|e| p.collection_of(e) == coll && e.action.as_str() == "create_index")
            .map(|e| {
                e.after.as_ref().unwrap()["name"]
                    .as_str()
                    .unwrap()
                    .to_string()
            })
            .collect()
    };

    let run = from_report(&w, "r0", "ix.plan", &["--only", "index_missing"]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert!(
        run.stdout
            .contains("customers index_missing:{\"email\":1} (create-missing-index): refused:")
            && run.stdout.contains("share {\"email\":1}"),
        "{}",
        run.stdout
    );
    assert!(indexes_of("ix.plan", "customers").is_empty());
    assert_eq!(indexes_of("ix.plan", "orders"), ["customer_id_1"]);

    let run = from_report(
        &w,
        "r0",
        "dedupe.plan",
        &[
            "--only",
            "customers/duplicate",
            "--only",
            "customers/index_missing",
        ],
    );
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert!(!run.stdout.contains("refused"), "{}", run.stdout);
    assert_eq!(indexes_of("dedupe.plan", "customers"), ["email_1"]);
    let p = Plan::read(&w.path().join("dedupe.plan")).unwrap();
    assert_eq!(p.collections(), ["customers"]);

    let run = from_report(&w, "r0", "x.plan", &["--only", "no_such_finding"]);
    assert_eq!(run.code, 2);
    assert!(
        run.stderr.contains("no_such_finding") && run.stderr.contains("orders/invalid"),
        "{}",
        run.stderr
    );
    assert!(!w.path().join("x.plan").exists());
    // Not a report directory: exit 2, naming the file.
    let run = from_report(&w, "nowhere", "x.plan", &[]);
    assert_eq!(run.code, 2);
    assert!(run.stderr.contains("nowhere/report.json"), "{}", run.stderr);
}

/// A `--from-report` apply over a generated scenario killed at 20 and more points (every
/// batch of every collection, before and after its journal lines, after each collection,
/// around the rename), then re-run, gives exactly the uninterrupted result.
#[test]
fn a_from_report_apply_killed_anywhere_then_rerun_gives_the_clean_result() {
    let w = Workdir::new();
    w.generate("gen", &["--scale", "6", "--seed", "11"]);
    let s = schemas();
    let run = w.docsweep(&[
        "check",
        "--no-progress",
        "--source",
        "dump:gen/dump",
        "--baseline",
        "dump:gen/baseline",
        "--schemas",
        &s,
        "--report-dir",
        "r0",
        "--audit",
        "audit.jsonl",
    ]);
    assert_eq!(run.code, 1, "{}", run.stderr);
    let run = from_report(&w, "r0", "all.plan", &[]);
    assert_eq!(run.code, 0, "{}{}", run.stdout, run.stderr);
    let run = apply(&w, "all.plan", "dump:clean");
    assert_eq!(run.code, 0, "{}", run.stderr);
    let clean = files(&w.path().join("clean/shop"));

    let mut crashes = 0;
    let names = [
        "apply.before-batch",
        "apply.batch-journaled",
        "apply.batch-done",
        "apply.collection-done",
        "apply.before-rename",
        "apply.after-rename",
    ];
    for name in names {
        for k in 1.. {
            let point = format!("{name}@{k}");
            let out = format!("crash-{name}-{k}");
            let o = std::process::Command::new(env!("CARGO_BIN_EXE_docsweep"))
                .args([
                    "repair",
                    "apply",
                    "all.plan",
                    "--out",
                    &format!("dump:{out}"),
                ])
                .args(["--audit", "audit.jsonl"])
                .current_dir(w.path())
                .env("DOCSWEEP_FAILPOINT", &point)
                .output()
                .unwrap();
            if o.status.success() {
                // This point is not reached that many times.
                assert!(k > 1, "{point} never reached");
                break;
            }
            crashes += 1;
            if name != "apply.after-rename" {
                assert!(
                    !Path::new(&w.path().join(&out).join("shop")).exists(),
                    "{point}"
                );
            }
            let run = apply(&w, "all.plan", &format!("dump:{out}"));
            assert_eq!(run.code, 0, "{point}: {}", run.stderr);
            assert!(
                files(&w.path().join(&out).join("shop")) == clean,
                "{point}: the result differs from an uninterrupted run"
            );
            assert!(!w.path().join(&out).join(".shop.docsweep-partial").exists());
        }
    }
    assert!(crashes >= 20, "{crashes} crash points");
}
