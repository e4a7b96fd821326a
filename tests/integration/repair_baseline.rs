//! With a baseline, repairs that remove documents never remove one that equals its
//! baseline image: a dedupe keeps the member the baseline knows, and the report suggests
//! restores before anything that deletes or quarantines.

use docsweep::repair::plan::Plan;
use serde_json::Value;

use crate::repair::{baseline, check, plan};
use crate::util::{collection, example, Workdir};

/// The `_id`s a plan deletes.
fn deleted(w: &Workdir, plan_file: &str) -> Vec<Value> {
    Plan::read(&w.path().join(plan_file))
        .unwrap()
        .entries
        .into_iter()
        .filter(|e| e.action.as_str() == "delete")
        .map(|e| e.id)
        .collect()
}

#[test]
fn dedupe_keeps_the_member_that_equals_its_baseline_image() {
    let w = Workdir::new();
    crate::util::copy_dir(&example().join("data/dump"), &w.path().join("in"));
    // A customer the baseline knows unchanged, and in front of it (first in file order) a
    // corrupted copy under a new `_id` with the same email.
    let base_file = example().join("data/baseline/shop/customers.bson");
    let base_bytes = std::fs::read(&base_file).unwrap();
    let current = std::fs::read(w.path().join("in/shop/customers.bson")).unwrap();
    let mut owner = None;
    let mut at = 0;
    while owner.is_none() && at + 4 <= base_bytes.len() {
        let len = i32::from_le_bytes(base_bytes[at..at + 4].try_into().unwrap()) as usize;
        let rec = &base_bytes[at..at + len];
        if current.windows(len).any(|wnd| wnd == rec) {
            owner = Some(bson::Document::from_reader(rec).unwrap());
        }
        at += len;
    }
    let owner = owner.expect("a customer unchanged since the baseline");
    let mut copy = owner.clone();
    copy.insert("_id", bson::oid::ObjectId::new());
    copy.insert("name", "a corrupted copy");
    let mut bytes = Vec::new();
    copy.to_writer(&mut bytes).unwrap();
    bytes.extend_from_slice(&current);
    std::fs::write(w.path().join("in/shop/customers.bson"), &bytes).unwrap();
    let owner_id = serde_json::json!({"$oid": owner.get_object_id("_id").unwrap().to_hex()});
    let copy_id = serde_json::json!({"$oid": copy.get_object_id("_id").unwrap().to_hex()});

    let b = baseline();
    let dedupe = |out: &str, extra: &[&str]| {
        let mut args = vec![
            "--template",
            "dedupe-keep-first",
            "--collection",
            "customers",
            "--param",
            "fields=email",
            "--source",
            "dump:in",
            "--out",
            out,
        ];
        args.extend_from_slice(extra);
        let run = plan(&w, &args);
        assert!(run.code <= 1, "{}", run.stderr);
        run
    };
    // Without a baseline: the first one stays, the owner goes (the old behaviour).
    dedupe("first.plan", &[]);
    let gone = deleted(&w, "first.plan");
    assert!(gone.contains(&owner_id) && !gone.contains(&copy_id));

    // With a baseline (keep = auto → baseline): the owner stays, the copy goes.
    dedupe("auto.plan", &["--baseline", &b]);
    let gone = deleted(&w, "auto.plan");
    assert!(!gone.contains(&owner_id), "the owner is kept");
    assert!(gone.contains(&copy_id), "the corrupted copy is deleted");

    // keep = first with a baseline: the owner still is never deleted.
    let run = dedupe("f.plan", &["--baseline", &b, "--param", "keep=first"]);
    assert!(!deleted(&w, "f.plan").contains(&owner_id));
    assert!(
        run.stdout.contains("that equal their baseline image"),
        "{}",
        run.stdout
    );

    // keep = baseline without one is a usage error.
    let run = plan(
        &w,
        &[
            "--template",
            "dedupe-keep-first",
            "--collection",
            "customers",
            "--param",
            "keep=baseline",
            "--source",
            "dump:in",
            "--out",
            "x.plan",
        ],
    );
    assert_eq!(run.code, 2, "{}", run.stderr);
    assert!(run.stderr.contains("keep=baseline needs a baseline"));
}

#[test]
fn with_a_baseline_restores_come_first_and_removals_take_the_baseline() {
    let w = Workdir::new();
    let b = baseline();
    let report = check(
        &w,
        &crate::repair::dump(),
        "r",
        &["--baseline", &b, "--collection", "customers"],
    );
    let rem = collection(&report, "customers")["remediation"]
        .as_array()
        .unwrap()
        .clone();
    let findings: Vec<&str> = rem.iter().map(|r| r["finding"].as_str().unwrap()).collect();
    let first_removal = rem
        .iter()
        .position(|r| {
            let t = r["template"].as_str().unwrap();
            t.starts_with("dedupe") || t.starts_with("quarantine")
        })
        .expect("a dedupe or quarantine remediation");
    let last_restore = rem
        .iter()
        .rposition(|r| r["template"].as_str().unwrap().starts_with("restore"))
        .expect("a restore remediation");
    assert!(last_restore < first_removal, "{findings:?}");
    for r in &rem[first_removal..] {
        let t = r["template"].as_str().unwrap();
        if t.starts_with("dedupe") || t.starts_with("quarantine") {
            assert!(r["command"].as_str().unwrap().contains("--baseline"), "{r}");
        }
    }
}

/// The remediations of one collection of a check's report, by finding.
fn remediations(w: &Workdir, source: &str, out: &str, extra: &[&str]) -> Vec<(String, String)> {
    let report = check(w, source, out, extra);
    collection(&report, "orders")["remediation"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            (
                r["finding"].as_str().unwrap().to_string(),
                r["command"].as_str().unwrap().to_string(),
            )
        })
        .collect()
}

#[test]
fn suggestions_fit_the_baseline_the_templates_and_the_source() {
    let w = Workdir::new();
    let d = crate::repair::dump();
    // A snapshot without documents cannot restore: the report says what to do instead.
    let b = baseline();
    for (file, full) in [("fp.snap", false), ("full.snap", true)] {
        let mut args = vec!["snapshot", "--source", b.as_str(), "--out", file];
        if full {
            args.push("--full");
        }
        let run = w.docsweep(&args);
        assert_eq!(run.code, 0, "{}", run.stderr);
        let rem = remediations(&w, &d, &format!("r-{file}"), &["--baseline", file]);
        let missing = &rem.iter().find(|(f, _)| f == "missing").unwrap().1;
        if full {
            assert!(
                missing.starts_with("docsweep repair plan --template restore-missing"),
                "{missing}"
            );
        } else {
            assert!(
                missing.starts_with('#') && missing.contains("snapshot --full"),
                "{missing}"
            );
            let invalid = &rem.iter().find(|(f, _)| f == "invalid").unwrap().1;
            assert!(invalid.contains("quarantine-invalid"), "{invalid}");
        }
        let added = &rem.iter().find(|(f, _)| f == "added").unwrap().1;
        assert!(added.contains("--template quarantine-added"), "{added}");
    }

    // Custom template directories are passed on.
    std::fs::create_dir(w.path().join("mine")).unwrap();
    let rem = remediations(&w, &d, "r-t", &["--templates", "mine"]);
    for (finding, cmd) in &rem {
        if !cmd.starts_with('#') {
            assert!(cmd.contains("--templates mine"), "{finding}: {cmd}");
        }
    }

    // An export cannot be repaired, and the report says so plainly.
    let e = format!("export:{}", example().join("data/export").display());
    let rem = remediations(&w, &e, "r-e", &[]);
    assert!(!rem.is_empty());
    for (finding, cmd) in &rem {
        assert!(
            cmd.starts_with('#') && (cmd.contains("cannot repair") || cmd.contains("no bundled")),
            "{finding}: {cmd}"
        );
    }
}
