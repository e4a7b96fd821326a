//! Hardening: plan integrity, the actor in the audit log, closed stdout and stderr,
//! owner-only files, leftover temporary files, and outputs inside inputs.

use crate::util::{example, Workdir};

fn dump() -> String {
    format!("dump:{}", example().join("data/dump").display())
}

fn schemas() -> String {
    example().join("schemas").display().to_string()
}

/// `repair plan` of the example's 40 reverts into `out`.
fn make_plan(w: &Workdir, out: &str) {
    let (d, s) = (dump(), schemas());
    let run = w.docsweep(&[
        "repair",
        "plan",
        "--schemas",
        &s,
        "--template",
        "revert-nested-reference",
        "--template",
        "units-from-cents",
        "--collection",
        "orders",
        "--source",
        &d,
        "--out",
        out,
    ]);
    assert_eq!(run.code, 1, "a plan with changes exits 1: {}", run.stderr);
}

#[test]
fn a_plan_with_one_entry_removed_and_another_repeated_is_refused() {
    let w = Workdir::new();
    make_plan(&w, "p.plan");
    let text = w.read("p.plan");
    let lines: Vec<&str> = text.split_inclusive('\n').collect();
    assert!(lines.len() > 4, "{text}");
    // Entry 2 removed, entry 1 repeated: the summary's count still matches.
    let mut tampered: Vec<&str> = vec![lines[0], lines[1], lines[1]];
    tampered.extend_from_slice(&lines[3..]);
    assert_eq!(tampered.len(), lines.len());
    std::fs::write(w.path().join("tampered.plan"), tampered.concat()).unwrap();
    let run = w.docsweep(&[
        "repair",
        "apply",
        "tampered.plan",
        "--out",
        "dump:fixed",
        "--audit",
        "audit.jsonl",
    ]);
    assert_eq!(run.code, 2, "{}", run.stderr);
    assert!(
        run.stderr.contains("tampered.plan") && run.stderr.contains("line 3"),
        "{}",
        run.stderr
    );
    assert!(run.stderr.contains("checksum mismatch"), "{}", run.stderr);
    assert!(!w.path().join("fixed").exists());
    assert!(!w.path().join("audit.jsonl").exists());
    assert!(lines[0].contains("\"docsweep-plan/2\""), "{}", lines[0]);
}
