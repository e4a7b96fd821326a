//! References to a collection that was not read completely: with a truncated or garbled
//! `customers.bson`, the orders' references to customers are not verified (`checked:
//! false` with a reason), never orphans: no findings, no rows, no remediation, and
//! `repair plan` refuses to quarantine them; partitions merged and checkpointed runs say
//! the same as a single run.

use serde_json::Value;

use crate::util::{collection, copy_dir, example, Workdir};

const CUSTOMERS: &str = "dump/shop/customers.bson";

/// The example's contracts and dump, with `customers.bson` replaced by `damage(bytes)`.
fn damaged(damage: impl FnOnce(Vec<u8>) -> Vec<u8>) -> Workdir {
    let w = Workdir::new();
    copy_dir(&example().join("schemas"), &w.path().join("schemas"));
    copy_dir(&example().join("data/dump"), &w.path().join("dump"));
    let path = w.path().join(CUSTOMERS);
    let bytes = std::fs::read(&path).unwrap();
    std::fs::write(&path, damage(bytes)).unwrap();
    w
}

/// The first half of the bytes.
fn truncated() -> Workdir {
    damaged(|b| b[..b.len() / 2].to_vec())
}

/// As many pseudo-random bytes (fixed seed) as the file had.
fn random() -> Workdir {
    damaged(|b| {
        let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
        (0..b.len())
            .map(|_| {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                (x >> 24) as u8
            })
            .collect()
    })
}

fn check(w: &Workdir, out: &str, extra: &[&str]) -> crate::util::Run {
    let mut args = vec![
        "check",
        "--no-progress",
        "--source",
        "dump:dump",
        "--schemas",
        "schemas",
        "--report-dir",
        out,
    ];
    args.extend_from_slice(extra);
    let run = w.docsweep(&args);
    assert_eq!(run.code, 1, "{}", run.stderr);
    run
}

/// report.json without its timestamps.
fn timeless(w: &Workdir, dir: &str) -> Value {
    let mut r = w.read_json(&format!("{dir}/report.json"));
    r["started_at"] = Value::Null;
    r["finished_at"] = Value::Null;
    crate::util::without_history(&mut r);
    r
}

/// The orders' references to customers in the report in `dir` are not verified, with
/// the customers' unreadable records as the reason, and nothing calls them orphans.
fn assert_not_verified(w: &Workdir, dir: &str) {
    let report = w.read_json(&format!("{dir}/report.json"));
    // customers is checked too, or (--collection orders) only read for its _ids.
    let unreadable = report["collections"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["name"] == "customers")
        .map(|c| c["unreadable"].as_u64().unwrap());
    assert_ne!(unreadable, Some(0), "the damage is seen");
    let orders = collection(&report, "orders");
    let refs = orders["references"].as_array().unwrap();
    assert_eq!(refs.len(), 2, "customer_id (v1) and customer.id (v2)");
    for r in refs {
        assert_eq!(r["collection"], "customers");
        assert_eq!(r["checked"], false, "{r}");
        let reason = r["reason"].as_str().unwrap_or_else(|| panic!("{r}"));
        match unreadable {
            Some(1) => assert_eq!(reason, "customers: 1 unreadable record"),
            Some(n) => assert_eq!(reason, format!("customers: {n} unreadable records")),
            None => assert!(
                reason.starts_with("customers: ") && reason.contains("unreadable record"),
                "{reason}"
            ),
        }
        assert_eq!(r["orphans"], 0, "{r}");
    }
    assert!(
        orders["remediation"]
            .as_array()
            .unwrap()
            .iter()
            .all(|x| x["template"] != "quarantine-orphans"
                && !x["finding"].as_str().unwrap().starts_with("orphan:")),
        "{}",
        orders["remediation"]
    );
    let csv = w.read(&format!("{dir}/violations.csv"));
    assert!(!csv.contains(",orphan:"), "no orphan rows");
}

#[test]
fn a_truncated_referenced_collection_leaves_its_references_not_verified() {
    let w = truncated();
    let run = check(
        &w,
        "out",
        &[
            "--html",
            "out/report.html",
            "--junit",
            "out/junit.xml",
            "--metrics",
            "out/docsweep.prom",
        ],
    );
    assert_not_verified(&w, "out");
    let report = w.read_json("out/report.json");
    let r = &collection(&report, "orders")["references"][0];
    assert!(r["orphans_unverified"].as_u64().unwrap() > 0, "{r}");
    // Every output says "not verified" and counts no orphans.
    assert!(
        run.stdout
            .contains("customer_id → customers._id: not verified: customers: 1 unreadable record"),
        "{}",
        run.stdout
    );
    assert!(!run.stdout.contains("  orphans  "), "{}", run.stdout);
    assert!(!run.stdout.contains("quarantine-orphans"), "{}", run.stdout);
    assert!(w
        .read("out/report.html")
        .contains("not verified: customers: 1 unreadable record"));
    assert!(w.read("out/junit.xml").contains(
        r#"<skipped message="not verified: customers: 1 unreadable record (for customer_id)"#
    ));
    let prom = w.read("out/docsweep.prom");
    assert!(prom.contains(
        r#"docsweep_references_verified{collection="orders",field="customer_id",references="customers._id"} 0"#
    ));
    assert!(!prom.contains(r#"docsweep_orphans{"#), "{prom}");

    // Only orders checked: customers is read for its _ids, with the same result.
    check(&w, "orders-only", &["--collection", "orders"]);
    assert_not_verified(&w, "orders-only");
}

#[test]
fn random_bytes_as_the_referenced_collection_leave_its_references_not_verified() {
    let w = random();
    check(&w, "out", &[]);
    assert_not_verified(&w, "out");
    check(&w, "orders-only", &["--collection", "orders"]);
    assert_not_verified(&w, "orders-only");
}

#[test]
fn repair_plan_refuses_to_quarantine_orphans_of_an_unverified_reference() {
    for w in [truncated(), random()] {
        for field in ["customer_id", "customer.id"] {
            let run = w.docsweep(&[
                "repair",
                "plan",
                "--template",
                "quarantine-orphans",
                "--param",
                &format!("field={field}"),
                "--collection",
                "orders",
                "--source",
                "dump:dump",
                "--schemas",
                "schemas",
                "--out",
                "q.plan",
            ]);
            assert_eq!(run.code, 2, "{field}: {}{}", run.stdout, run.stderr);
            assert!(
                run.stderr.contains(&format!(
                    "the references orders.{field} → customers._id are not verified (customers: "
                )) && run.stderr.contains("unreadable record"),
                "{}",
                run.stderr
            );
            assert!(run.stderr.contains("customers.bson"), "{}", run.stderr);
            assert!(!w.path().join("q.plan").exists(), "no plan is written");
        }
    }
}

/// Runs `n` partitions of `check` into `parts/<i>` and merges them into `merged`.
fn partition_and_merge(w: &Workdir, n: u32, extra: &[&str]) {
    let mut dirs = Vec::new();
    for i in 0..n {
        let p = format!("{i}/{n}");
        let dir = format!("parts/{i}");
        let mut args = vec![
            "check",
            "--no-progress",
            "--source",
            "dump:dump",
            "--schemas",
            "schemas",
            "--partition",
            &p,
            "--report-dir",
            &dir,
        ];
        args.extend_from_slice(extra);
        let run = w.docsweep(&args);
        assert_eq!(run.code, 0, "partition {p}: {}", run.stderr);
        dirs.push(dir);
    }
    let mut args = vec!["merge", "--schemas", "schemas", "--report-dir", "merged"];
    args.extend_from_slice(extra);
    args.extend(dirs.iter().map(String::as_str));
    let run = w.docsweep(&args);
    assert_eq!(run.code, 1, "merge: {}", run.stderr);
    std::fs::remove_dir_all(w.path().join("parts")).unwrap();
}

#[test]
fn merged_partitions_and_checkpointed_runs_say_not_verified_too() {
    let w = truncated();
    for extra in [&[][..], &["--collection", "orders"][..]] {
        check(&w, "single", extra);
        assert_not_verified(&w, "single");
        for n in [2, 3] {
            partition_and_merge(&w, n, extra);
            assert_not_verified(&w, "merged");
            assert_eq!(
                timeless(&w, "single"),
                timeless(&w, "merged"),
                "{extra:?} in {n}"
            );
            assert_eq!(
                w.read("single/violations.csv"),
                w.read("merged/violations.csv"),
                "{extra:?} in {n}"
            );
        }
    }

    // Interrupted while reading customers (20 records a chunk: the second chunk), or while
    // reading orders after all of customers was recorded, then continued: the same.
    check(&w, "single", &[]);
    let args = [
        "check",
        "--no-progress",
        "--source",
        "dump:dump",
        "--schemas",
        "schemas",
        "--checkpoint",
        "sweep.ckpt",
        "--batch-records",
        "20",
        "--report-dir",
        "continued",
    ];
    for failpoint in ["partial.after:2", "partial.after:12"] {
        let o = std::process::Command::new(env!("CARGO_BIN_EXE_docsweep"))
            .args(args)
            .current_dir(w.path())
            .env("DOCSWEEP_FAILPOINT", failpoint)
            .output()
            .unwrap();
        assert!(
            o.status.code().is_none(),
            "{failpoint}: the run should have been killed"
        );
        let run = w.docsweep(&args);
        assert_eq!(run.code, 1, "{failpoint}: {}", run.stderr);
        assert!(run.stderr.contains("continuing from the checkpoint"));
        assert_not_verified(&w, "continued");
        assert_eq!(
            timeless(&w, "single"),
            timeless(&w, "continued"),
            "{failpoint}"
        );
        assert_eq!(
            w.read("single/violations.csv"),
            w.read("continued/violations.csv"),
            "{failpoint}"
        );
    }
}
