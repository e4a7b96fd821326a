//! Every planned entry of a dump apply ends exactly once: applied, already in its
//! after-state, or a conflict with its `_id` and reason; the counts add up to the plan and
//! are printed, journaled and audited. Undo gives back every file byte for byte, removed
//! records at their own positions.

use std::path::Path;

use docsweep::repair::plan::Plan;
use serde_json::Value;

use crate::repair::{
    check, contents, create_the_missing_index, dump, files, plan, quarantine_the_orphans, REVERT,
};
use crate::util::{collection, example, Workdir};

/// What to do with one record of a dump file.
enum Edit {
    Keep,
    Replace(bson::Document),
    /// These bytes instead of the record (they need not be a readable document).
    Raw(Vec<u8>),
    Remove,
}

/// Rewrites the readable records of a `.bson` file; unreadable bytes stay as they are.
fn edit_records(file: &Path, mut f: impl FnMut(&Value, &bson::Document) -> Edit) {
    use docsweep::source::RecordReader as _;
    let bytes = std::fs::read(file).unwrap();
    let mut reader = docsweep::source::BsonReader::new(
        Box::new(std::io::Cursor::new(bytes.clone())),
        None,
        file.to_path_buf(),
    );
    let mut out = Vec::new();
    let mut pos = 0usize;
    while let Some(batch) = reader.next_batch(100).unwrap() {
        for rec in batch.records.iter().filter(|r| r.broken.is_none()) {
            let docsweep::source::Location::Offset(at) = rec.location else {
                panic!("a dump record has an offset")
            };
            let raw = batch.bytes(rec);
            let (Ok(doc), Ok(value)) = (
                bson::Document::from_reader(raw),
                docsweep::value::from_bson(raw),
            ) else {
                continue;
            };
            let at = at as usize;
            out.extend_from_slice(&bytes[pos..at]);
            pos = at + raw.len();
            match f(&value.value, &doc) {
                Edit::Keep => out.extend_from_slice(raw),
                Edit::Replace(d) => d.to_writer(&mut out).unwrap(),
                Edit::Raw(b) => out.extend_from_slice(&b),
                Edit::Remove => {}
            }
        }
    }
    out.extend_from_slice(&bytes[pos..]);
    std::fs::write(file, out).unwrap();
}

fn other_version_total(report: &Value) -> u64 {
    collection(report, "orders")["classes"]["other_version"]
        .as_object()
        .map(|m| m.values().filter_map(Value::as_u64).sum())
        .unwrap_or(0)
}

fn last_audit(w: &Workdir, file: &str) -> Value {
    let text = w.read(file);
    serde_json::from_str(text.lines().last().unwrap()).unwrap()
}

fn journal_finish(path: &Path) -> Value {
    let read = docsweep::repair::journal::read(path).unwrap();
    read.records
        .into_iter()
        .find(|r| r["kind"] == "finish")
        .expect("a finish line")
}

/// Copies the example dump to `in/` and plans the orders' revert on it into
/// `revert.plan`; returns the planned `_id`s.
fn plan_revert_on_a_copy(w: &Workdir) -> Vec<Value> {
    crate::util::copy_dir(&example().join("data/dump"), &w.path().join("in"));
    let mut args = REVERT.to_vec();
    args.extend([
        "--collection",
        "orders",
        "--source",
        "dump:in",
        "--out",
        "revert.plan",
    ]);
    let run = plan(w, &args);
    assert_eq!(run.code, 0, "{}", run.stderr);
    Plan::read(&w.path().join("revert.plan"))
        .unwrap()
        .entries
        .into_iter()
        .map(|e| e.id)
        .collect()
}

#[test]
fn every_planned_entry_is_applied_already_or_a_conflict_with_its_reason() {
    let w = Workdir::new();
    let ids = plan_revert_on_a_copy(&w);
    assert_eq!(ids.len(), 40);

    // Since the plan: the first unplanned order grew (every later record moved), one
    // planned order was edited and another one deleted.
    let mut grown = false;
    edit_records(&w.path().join("in/shop/orders.bson"), |v, doc| {
        let id = &v["_id"];
        if *id == ids[3] {
            let mut d = doc.clone();
            d.insert("edited_by", "someone else");
            Edit::Replace(d)
        } else if *id == ids[7] {
            Edit::Remove
        } else if !grown && !ids.contains(id) {
            grown = true;
            let mut d = doc.clone();
            d.insert("note", "a note that makes this record longer");
            Edit::Replace(d)
        } else {
            Edit::Keep
        }
    });
    assert!(grown);
    let before = check(&w, "dump:in", "r0", &["--collection", "orders"]);

    let run = w.docsweep(&[
        "repair",
        "apply",
        "revert.plan",
        "--out",
        "dump:out",
        "--audit",
        "a.jsonl",
    ]);
    assert_eq!(
        run.code, 1,
        "conflicts exit 1: {}{}",
        run.stdout, run.stderr
    );
    assert!(
        run.stdout
            .contains("38 applied, 0 already in place, 2 conflict(s), of 40 planned"),
        "{}",
        run.stdout
    );
    let text = |id: &Value| docsweep::scan::id_text(id);
    assert!(
        run.stdout.contains(&format!(
            "conflict: _id {}: changed since the plan",
            text(&ids[3])
        )),
        "{}",
        run.stdout
    );
    assert!(
        run.stdout
            .contains(&format!("conflict: _id {}: not found", text(&ids[7]))),
        "{}",
        run.stdout
    );
    let after = check(&w, "dump:out", "r1", &["--collection", "orders"]);
    assert_eq!(
        other_version_total(&before) - other_version_total(&after),
        38,
        "every applied entry is in the output"
    );

    // Journaled and audited with the same counts.
    let finish = journal_finish(&w.path().join("out/shop/.docsweep/journal"));
    assert_eq!(finish["entries"], 40);
    assert_eq!(finish["applied"], 38);
    assert_eq!(finish["already"], 0);
    let reasons: Vec<&str> = finish["conflicts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["reason"].as_str().unwrap())
        .collect();
    assert_eq!(reasons, ["changed since the plan", "not found"]);
    let audit = last_audit(&w, "a.jsonl");
    assert_eq!(
        (
            &audit["entries"],
            &audit["applied"],
            &audit["already"],
            &audit["conflicts"]
        ),
        (&40.into(), &38.into(), &0.into(), &2.into())
    );

    // Undo gives back the input, byte for byte.
    let run = w.docsweep(&[
        "repair",
        "undo",
        "out/shop/.docsweep/journal",
        "--out",
        "dump:back",
        "--audit",
        "a.jsonl",
    ]);
    assert_eq!(run.code, 0, "{}{}", run.stdout, run.stderr);
    assert!(
        run.stdout
            .contains("38 undone, 0 already undone, 0 conflict(s)"),
        "{}",
        run.stdout
    );
    assert_eq!(
        files(&w.path().join("back/shop")),
        files(&w.path().join("in/shop"))
    );
}

#[test]
fn a_plan_applied_to_a_dump_whose_first_record_changed_still_applies_the_rest() {
    let w = Workdir::new();
    let ids = plan_revert_on_a_copy(&w);
    let mut first_planned = None;
    edit_records(&w.path().join("in/shop/orders.bson"), |v, doc| {
        if first_planned.is_none() {
            first_planned = Some(ids.contains(&v["_id"]));
            let mut d = doc.clone();
            d.insert("status", "a status much longer than any before it");
            Edit::Replace(d)
        } else {
            Edit::Keep
        }
    });
    let run = w.docsweep(&[
        "repair",
        "apply",
        "revert.plan",
        "--out",
        "dump:out",
        "--audit",
        "a.jsonl",
    ]);
    let expected = if first_planned == Some(true) {
        (
            1,
            "39 applied, 0 already in place, 1 conflict(s), of 40 planned",
        )
    } else {
        (
            0,
            "40 applied, 0 already in place, 0 conflict(s), of 40 planned",
        )
    };
    assert_eq!(run.code, expected.0, "{}{}", run.stdout, run.stderr);
    assert!(run.stdout.contains(expected.1), "{}", run.stdout);
}

#[test]
fn undo_of_deletes_and_quarantines_puts_every_record_back_in_its_place() {
    let w = Workdir::new();
    let d = dump();
    // Quarantine: the orphans leave orders.bson for orders_quarantine.bson.
    quarantine_the_orphans(&w, &d, "dump:q");
    // Dedupe: later members of duplicate groups are deleted.
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
            "dump:q",
            "--out",
            "dd.plan",
        ],
    );
    assert_eq!(run.code, 0, "{}", run.stderr);
    let run = w.docsweep(&[
        "repair", "apply", "dd.plan", "--out", "dump:dd", "--audit", "a.jsonl",
    ]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert!(
        run.stdout
            .contains("7 applied, 0 already in place, 0 conflict(s), of 7 planned"),
        "{}",
        run.stdout
    );
    for (journal, out, original) in [
        (
            "dd/shop/.docsweep/journal",
            "dump:b1",
            w.path().join("q/shop"),
        ),
        (
            "q/shop/.docsweep/journal",
            "dump:b2",
            example().join("data/dump/shop"),
        ),
    ] {
        let run = w.docsweep(&[
            "repair", "undo", journal, "--out", out, "--audit", "a.jsonl",
        ]);
        assert_eq!(run.code, 0, "{}{}", run.stdout, run.stderr);
        let back = w
            .path()
            .join(out.strip_prefix("dump:").unwrap())
            .join("shop");
        assert_eq!(files(&back), files(&original), "{journal}: byte for byte");
    }

    // The same in a gzipped dump: the decompressed bytes are the original's.
    let gz = format!("dump:{}", example().join("data/dump-gz").display());
    quarantine_the_orphans(&w, &gz, "dump:qz");
    let run = w.docsweep(&[
        "repair",
        "undo",
        "qz/shop/.docsweep/journal",
        "--out",
        "dump:bz",
        "--audit",
        "a.jsonl",
    ]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert_eq!(
        contents(&w.path().join("bz/shop")),
        contents(&example().join("data/dump-gz/shop"))
    );
}

#[test]
fn index_actions_are_counted_like_document_changes() {
    let w = Workdir::new();
    create_the_missing_index(&w, &dump(), "dump:i1");
    let finish = journal_finish(&w.path().join("i1/shop/.docsweep/journal"));
    assert_eq!(
        (&finish["entries"], &finish["applied"]),
        (&1.into(), &1.into())
    );
    let audit = last_audit(&w, "a.jsonl");
    assert_eq!(audit["applied"], 1);
    let run = w.docsweep(&[
        "repair",
        "undo",
        "i1/shop/.docsweep/journal",
        "--out",
        "dump:i0",
        "--audit",
        "a.jsonl",
    ]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert!(run.stdout.starts_with("1 undone"), "{}", run.stdout);
    assert_eq!(last_audit(&w, "a.jsonl")["undone"], 1);

    // A dump without metadata cannot carry the index: a conflict, not a silent no-op.
    crate::util::copy_dir(&example().join("data/dump"), &w.path().join("nometa"));
    std::fs::remove_file(w.path().join("nometa/shop/orders.metadata.json")).unwrap();
    let run = plan(
        &w,
        &[
            "--template",
            "create-missing-index",
            "--collection",
            "orders",
            "--param",
            "key={\"customer_id\": 1}",
            "--source",
            "dump:nometa",
            "--out",
            "n.plan",
        ],
    );
    assert_eq!(run.code, 0, "{}", run.stderr);
    let run = w.docsweep(&[
        "repair", "apply", "n.plan", "--out", "dump:n1", "--audit", "a.jsonl",
    ]);
    assert_eq!(run.code, 1, "{}", run.stdout);
    assert!(
        run.stdout
            .contains("conflict: index customer_id_1: the dump has no metadata file"),
        "{}",
        run.stdout
    );
}

#[test]
fn deeply_nested_documents_round_trip_through_plan_journal_and_undo() {
    for levels in [124, 126] {
        let w = Workdir::new();
        crate::util::copy_dir(&example().join("data/dump"), &w.path().join("in"));
        // An invalid order nested `levels` deep (the top level counts as one).
        let mut inner = bson::doc! { "x": 1 };
        for _ in 0..levels - 2 {
            inner = bson::doc! { "x": inner };
        }
        let deep = bson::doc! { "_id": bson::oid::ObjectId::new(), "x": inner };
        let file = w.path().join("in/shop/orders.bson");
        // First in the file (the example's file ends in an unreadable record).
        let mut bytes = Vec::new();
        deep.to_writer(&mut bytes).unwrap();
        bytes.extend_from_slice(&std::fs::read(&file).unwrap());
        std::fs::write(&file, &bytes).unwrap();
        let run = plan(
            &w,
            &[
                "--template",
                "quarantine-invalid",
                "--collection",
                "orders",
                "--source",
                "dump:in",
                "--out",
                "q.plan",
            ],
        );
        assert_eq!(run.code, 0, "{levels}: {}{}", run.stdout, run.stderr);
        let planned = Plan::read(&w.path().join("q.plan")).unwrap();
        let id = serde_json::json!({"$oid": deep.get_object_id("_id").unwrap().to_hex()});
        assert!(
            planned.entries.iter().any(|e| e.id == id),
            "{levels}: the deep document is planned"
        );
        let run = w.docsweep(&[
            "repair", "apply", "q.plan", "--out", "dump:out", "--audit", "a.jsonl",
        ]);
        assert_eq!(run.code, 0, "{levels}: {}{}", run.stdout, run.stderr);
        let run = w.docsweep(&[
            "repair",
            "undo",
            "out/shop/.docsweep/journal",
            "--out",
            "dump:back",
            "--audit",
            "a.jsonl",
        ]);
        assert_eq!(run.code, 0, "{levels}: {}{}", run.stdout, run.stderr);
        assert_eq!(
            files(&w.path().join("back/shop")),
            files(&w.path().join("in/shop")),
            "{levels}: byte for byte"
        );
    }
}

#[test]
fn a_journal_cut_in_its_finish_line_still_reports_and_undoes() {
    let w = Workdir::new();
    let d = dump();
    let mut args = REVERT.to_vec();
    args.extend(["--collection", "orders", "--source", &d, "--out", "r.plan"]);
    assert_eq!(plan(&w, &args).code, 0);
    let apply = || {
        w.docsweep(&[
            "repair", "apply", "r.plan", "--out", "dump:out", "--audit", "a.jsonl",
        ])
    };
    assert_eq!(apply().code, 0);
    // Cut the journal in the middle of its last line (the finish).
    let journal = w.path().join("out/shop/.docsweep/journal");
    let bytes = std::fs::read(&journal).unwrap();
    let last = bytes[..bytes.len() - 1]
        .iter()
        .rposition(|&b| b == b'\n')
        .unwrap();
    std::fs::write(&journal, &bytes[..last + 20]).unwrap();

    let run = apply();
    assert_eq!(run.code, 0, "{}{}", run.stdout, run.stderr);
    assert!(
        run.stdout.contains("already applied") && run.stdout.contains("40 applied"),
        "{}",
        run.stdout
    );
    let run = w.docsweep(&[
        "repair",
        "undo",
        "out/shop/.docsweep/journal",
        "--out",
        "dump:back",
        "--audit",
        "a.jsonl",
    ]);
    assert_eq!(run.code, 0, "{}{}", run.stdout, run.stderr);
    assert!(run.stdout.starts_with("40 undone"), "{}", run.stdout);
    assert_eq!(
        files(&w.path().join("back/shop")),
        files(&example().join("data/dump/shop"))
    );
}

#[test]
fn undo_refuses_an_output_inside_the_applied_dump() {
    let w = Workdir::new();
    create_the_missing_index(&w, &dump(), "dump:i1");
    let before = files(&w.path().join("i1/shop"));
    let run = w.docsweep(&[
        "repair",
        "undo",
        "i1/shop/.docsweep/journal",
        "--out",
        "dump:i1/shop/back",
        "--audit",
        "a.jsonl",
    ]);
    assert_eq!(run.code, 2, "{}{}", run.stdout, run.stderr);
    assert!(run.stderr.contains("inside"), "{}", run.stderr);
    assert_eq!(files(&w.path().join("i1/shop")), before);
    assert!(!w.path().join("i1/shop/back").exists());
}

#[test]
fn a_planned_record_that_became_unreadable_is_a_conflict_and_its_bytes_are_kept() {
    let w = Workdir::new();
    let ids = plan_revert_on_a_copy(&w);
    // Damage one planned record in place: same length, but its last byte (the document's
    // terminating zero) is no longer zero, so it cannot be read.
    let mut damaged = None;
    edit_records(&w.path().join("in/shop/orders.bson"), |v, doc| {
        if damaged.is_none() && ids.contains(&v["_id"]) {
            damaged = Some(v["_id"].clone());
            let mut bytes = Vec::new();
            doc.to_writer(&mut bytes).unwrap();
            *bytes.last_mut().unwrap() = 1;
            return Edit::Raw(bytes);
        }
        Edit::Keep
    });
    let damaged = damaged.unwrap();
    let run = w.docsweep(&[
        "repair",
        "apply",
        "revert.plan",
        "--out",
        "dump:out",
        "--audit",
        "a.jsonl",
    ]);
    assert_eq!(run.code, 1, "{}{}", run.stdout, run.stderr);
    assert!(
        run.stdout
            .contains("39 applied, 0 already in place, 1 conflict(s), of 40 planned"),
        "{}",
        run.stdout
    );
    assert!(
        run.stdout.contains(&format!(
            "conflict: _id {}: not found",
            docsweep::scan::id_text(&damaged)
        )),
        "{}",
        run.stdout
    );
    // The damaged bytes are carried over, and undo gives the input back.
    let run = w.docsweep(&[
        "repair",
        "undo",
        "out/shop/.docsweep/journal",
        "--out",
        "dump:back",
        "--audit",
        "a.jsonl",
    ]);
    assert_eq!(run.code, 0, "{}{}", run.stdout, run.stderr);
    assert_eq!(
        files(&w.path().join("back/shop")),
        files(&w.path().join("in/shop"))
    );
}

#[test]
fn a_plan_with_an_unknown_action_is_refused_before_anything_is_written() {
    let w = Workdir::new();
    let mut args = REVERT.to_vec();
    let d = dump();
    args.extend(["--collection", "orders", "--source", &d, "--out", "r.plan"]);
    assert_eq!(plan(&w, &args).code, 0);
    // The plan's lines, the first entry's action renamed, chained again as a plan file's.
    let text = std::fs::read_to_string(w.path().join("r.plan")).unwrap();
    let (mut odd, mut seed) = (String::new(), 0);
    for (i, line) in text.lines().enumerate() {
        let mut v: Value = serde_json::from_str(&line[17..]).unwrap();
        if i == 1 {
            v["action"] = "frobnicate".into();
        }
        let (l, sum) = docsweep::repair::journal::chained_line(&v, seed);
        odd.push_str(&l);
        seed = sum;
    }
    std::fs::write(w.path().join("odd.plan"), odd).unwrap();
    let run = w.docsweep(&[
        "repair", "apply", "odd.plan", "--out", "dump:out", "--audit", "a.jsonl",
    ]);
    assert_eq!(run.code, 2, "{}{}", run.stdout, run.stderr);
    assert!(
        run.stderr.contains("unknown action \"frobnicate\""),
        "{}",
        run.stderr
    );
    assert!(!w.path().join("out/shop").exists());
}
