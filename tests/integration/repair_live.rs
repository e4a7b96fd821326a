//! `docsweep repair apply | undo` on a live deployment (a real MongoDB-wire server,
//! `DOCSWEEP_TEST_MONGODB_URI`): `--yes` and `--max-changes` guard the writes, a document
//! changed since the plan is a conflict and left alone, a crash (a failpoint or a real
//! SIGKILL) followed by a re-run gives exactly the clean result without writing anything
//! twice, and undo brings back the original documents byte for byte.

use std::collections::{BTreeMap, HashSet};
use std::path::Path;
use std::process::{Command, Stdio};

use bson::{doc, Document, RawDocumentBuf};
use docsweep::repair::plan::Plan;
use mongodb::sync::Client;
use serde_json::Value;

use crate::live::loadable;
use crate::repair::check_code as check;
use crate::util::{example, fresh_db, server, with_db, Workdir};

/// Loads the collections of the example dump folder `src` into `db`, with the indexes its
/// metadata names.
fn load(client: &Client, db: &str, src: &Path) {
    for coll in ["customers", "orders"] {
        let docs = loadable(&src.join(format!("{coll}.bson")));
        let c = client.database(db).collection::<RawDocumentBuf>(coll);
        for chunk in docs.chunks(500) {
            c.insert_many(chunk.to_vec()).run().unwrap();
        }
        let meta: Value = serde_json::from_str(
            &std::fs::read_to_string(src.join(format!("{coll}.metadata.json"))).unwrap(),
        )
        .unwrap();
        let mut indexes = Vec::new();
        for ix in meta["indexes"].as_array().unwrap() {
            if ix["name"] == "_id_" {
                continue;
            }
            let mut key = Document::new();
            for (f, dir) in ix["key"].as_object().unwrap() {
                let d = dir["$numberInt"]
                    .as_str()
                    .map(|s| s.parse::<i32>().unwrap())
                    .or_else(|| dir.as_i64().map(|n| n as i32))
                    .unwrap();
                key.insert(f.clone(), d);
            }
            let mut d = doc! {"key": key, "name": ix["name"].as_str().unwrap()};
            if ix["unique"] == true {
                d.insert("unique", true);
            }
            indexes.push(d);
        }
        if !indexes.is_empty() {
            client
                .database(db)
                .run_command(doc! {"createIndexes": coll, "indexes": indexes})
                .run()
                .unwrap();
        }
    }
}

/// Whether the server has only the top-level guard (FerretDB, docs/ferretdb.md): there a
/// repair (and an undo) writes the changed top-level fields with an update, so the result
/// has the planned fields and values but new fields come last.
fn top_level_only(client: &Client) -> bool {
    client
        .database("admin")
        .run_command(doc! {"buildInfo": 1})
        .run()
        .unwrap()
        .contains_key("ferretdbVersion")
}

/// A document's bytes as the server's guard can reproduce them: as they are, or (with the
/// top-level guard) with the top-level fields in name order.
fn canon(bytes: &[u8], top_level: bool) -> Vec<u8> {
    if !top_level {
        return bytes.to_vec();
    }
    let mut fields: Vec<(String, bson::Bson)> =
        Document::from_reader(bytes).unwrap().into_iter().collect();
    fields.sort_by(|a, b| a.0.cmp(&b.0));
    fields.into_iter().collect::<Document>().to_vec().unwrap()
}

/// `v` as `canon` has it.
fn canon_value(v: &Value, top_level: bool) -> Value {
    match v {
        Value::Object(m) if top_level => {
            let mut keys: Vec<&String> = m.keys().collect();
            keys.sort();
            Value::Object(
                keys.into_iter()
                    .map(|k| (k.clone(), m[k].clone()))
                    .collect(),
            )
        }
        _ => v.clone(),
    }
}

/// Every document of a collection, by `_id` text, as its exact BSON bytes (on a server
/// with only the top-level guard, with the top-level fields in name order: see `canon`).
fn contents(client: &Client, db: &str, coll: &str) -> BTreeMap<String, Vec<u8>> {
    let top_level = top_level_only(client);
    let c = client.database(db).collection::<RawDocumentBuf>(coll);
    let mut out = BTreeMap::new();
    for d in c.find(doc! {}).run().unwrap() {
        let d = d.unwrap();
        let v = docsweep::value::from_bson(d.as_bytes()).unwrap().value;
        let id = docsweep::scan::id_text(&v["_id"]);
        assert!(
            out.insert(id.clone(), canon(d.as_bytes(), top_level))
                .is_none(),
            "_id {id} twice"
        );
    }
    out
}

/// The order-sensitive fingerprint of every document, by `_id` text.
fn fingerprints(client: &Client, db: &str, coll: &str) -> BTreeMap<String, u128> {
    contents(client, db, coll)
        .into_iter()
        .map(|(id, b)| {
            let v = docsweep::value::from_bson(&b).unwrap().value;
            (id, docsweep::value::fingerprint(&v).ordered)
        })
        .collect()
}

fn schemas() -> String {
    example().join("schemas").display().to_string()
}

fn plan(w: &Workdir, source: &str, out: &str, args: &[&str]) -> crate::util::Run {
    let s = schemas();
    let mut all = vec![
        "repair",
        "plan",
        "--schemas",
        s.as_str(),
        "--source",
        source,
        "--out",
        out,
    ];
    all.extend_from_slice(args);
    w.docsweep(&all)
}

/// The weaker guard, accepted: FerretDB has no whole-document one (docs/ferretdb.md); on
/// MongoDB the whole-document guard is used all the same.
const TOP_LEVEL: [&str; 2] = ["--guard", "top-level"];

fn apply(w: &Workdir, plan: &str, extra: &[&str]) -> crate::util::Run {
    let mut all = vec!["repair", "apply", plan, "--audit", "audit.jsonl"];
    all.extend_from_slice(&TOP_LEVEL);
    all.extend_from_slice(extra);
    w.docsweep(&all)
}

fn undo(w: &Workdir, journal: &str, extra: &[&str]) -> crate::util::Run {
    let mut all = vec!["repair", "undo", journal, "--audit", "audit.jsonl"];
    all.extend_from_slice(&TOP_LEVEL);
    all.extend_from_slice(extra);
    w.docsweep(&all)
}

const REVERT: [&str; 6] = [
    "--template",
    "revert-nested-reference",
    "--template",
    "units-from-cents",
    "--collection",
    "orders",
];

/// A fresh database with the example loaded, and the revert plan for its orders.
struct Fixture {
    client: Client,
    db: String,
    source: String,
    w: Workdir,
    original: BTreeMap<String, Vec<u8>>,
}

impl Fixture {
    fn new(tag: &str, uri: &str) -> Fixture {
        let db = fresh_db(tag);
        let client = Client::with_uri_str(uri).unwrap();
        load(&client, &db, &example().join("data/dump/shop"));
        let w = Workdir::new();
        let source = with_db(uri, &db);
        let run = plan(&w, &source, "revert.plan", &REVERT);
        assert_eq!(run.code, 0, "{}", run.stderr);
        assert!(run.stdout.contains("40 change(s)"), "{}", run.stdout);
        let original = contents(&client, &db, "orders");
        Fixture {
            client,
            db,
            source,
            w,
            original,
        }
    }

    fn orders(&self) -> BTreeMap<String, Vec<u8>> {
        contents(&self.client, &self.db, "orders")
    }

    fn plan(&self, name: &str) -> Plan {
        Plan::read(&self.w.path().join(name)).unwrap()
    }
}

impl Drop for Fixture {
    fn drop(&mut self) {
        let _ = self.client.database(&self.db).drop().run();
    }
}

/// The `_id`s the `done` records of a journal list under `kind`, in order.
fn journal_ids(path: &Path, kind: &str) -> Vec<String> {
    let text = std::fs::read_to_string(path).unwrap();
    let mut out = Vec::new();
    for line in text.lines() {
        let (_, json) = line.split_once(' ').unwrap();
        let v: Value = serde_json::from_str(json).unwrap();
        if v["kind"] == "done" {
            for id in v[kind].as_array().unwrap() {
                out.push(id.as_str().unwrap().to_string());
            }
        }
    }
    out
}

#[test]
fn live_apply_is_guarded_then_applies_reruns_and_undoes() {
    let Some(uri) = server() else { return };
    let f = Fixture::new("apply", &uri);
    let w = &f.w;

    // Without --yes: what would change, exit 2, nothing written.
    let run = apply(w, "revert.plan", &[]);
    assert_eq!(run.code, 2, "{}", run.stderr);
    assert!(run.stdout.contains("replace 40"), "{}", run.stdout);
    assert!(run.stderr.contains("--yes"), "{}", run.stderr);
    // Too many changes for --max-changes: exit 2, nothing written.
    let run = apply(w, "revert.plan", &["--yes", "--max-changes", "39"]);
    assert_eq!(run.code, 2, "{}", run.stderr);
    assert!(run.stderr.contains("--max-changes 39"), "{}", run.stderr);
    // --out has no meaning for a live plan.
    let run = apply(w, "revert.plan", &["--yes", "--out", "dump:x"]);
    assert_eq!(run.code, 2, "{}", run.stderr);
    assert_eq!(f.orders(), f.original, "nothing was written");
    assert!(!w.path().join("revert.plan.journal").exists());

    let run = apply(
        w,
        "revert.plan",
        &["--yes", "--max-changes", "40", "--rate", "1000/s"],
    );
    assert_eq!(run.code, 0, "{}{}", run.stdout, run.stderr);
    assert!(
        run.stdout.contains("applied 40 change(s)"),
        "{}",
        run.stdout
    );
    let journal = w.path().join("revert.plan.journal");
    assert!(journal.is_file(), "the journal is next to the plan");
    let (_, report) = check(w, &f.source, "r1", &["--collection", "orders"]);
    let orders = crate::util::collection(&report, "orders");
    assert_eq!(orders["classes"]["other_version"], serde_json::json!({}));

    // Exactly the planned documents changed; the others are byte for byte the same.
    let after = f.orders();
    let planned: HashSet<String> = f
        .plan("revert.plan")
        .entries
        .iter()
        .map(|e| docsweep::scan::id_text(&e.id))
        .collect();
    assert_eq!(after.len(), f.original.len());
    for (id, bytes) in &f.original {
        assert_eq!(
            after[id] != *bytes,
            planned.contains(id),
            "_id {id}: changed if and only if planned"
        );
    }

    // A re-run is a no-op.
    let run = apply(w, "revert.plan", &["--yes"]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert!(run.stdout.contains("already applied"), "{}", run.stdout);
    assert_eq!(f.orders(), after);

    // Undo: guarded by --yes too, then the original bytes.
    let j = journal.display().to_string();
    let run = undo(w, &j, &[]);
    assert_eq!(run.code, 2, "{}", run.stderr);
    assert!(run.stdout.contains("replace 40"), "{}", run.stdout);
    assert_eq!(f.orders(), after);
    let run = undo(w, &j, &["--yes"]);
    assert_eq!(run.code, 0, "{}{}", run.stdout, run.stderr);
    assert!(run.stdout.contains("undone 40 change(s)"), "{}", run.stdout);
    assert!(f.orders() == f.original, "undo restores the original bytes");
    // Undoing again finds everything undone.
    let run = undo(w, &j, &["--yes"]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert!(run.stdout.contains("40 already undone"), "{}", run.stdout);

    let audit = w.read("audit.jsonl");
    assert_eq!(audit.lines().count(), 4, "{audit}");
    assert!(audit.contains(&f.db), "{audit}");
}

/// The records of a journal, in order.
fn journal_records(path: &Path) -> Vec<Value> {
    std::fs::read_to_string(path)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l.split_once(' ').unwrap().1).unwrap())
        .collect()
}

/// A filter on the `_id` of a plan entry.
fn id_filter(id: &Value) -> Document {
    Document::from_reader(&docsweep::value::to_bson(&serde_json::json!({ "_id": id })).unwrap()[..])
        .unwrap()
}

/// One planned document changed and one deleted between plan and apply, and a second
/// plan entry for an `_id`: each is a conflict with its reason, the others are applied,
/// and applied + already + conflicts is the plan's entry count — printed, journaled and
/// audited. Exit 1.
#[test]
fn a_document_changed_since_the_plan_is_a_conflict_and_left_alone() {
    let Some(uri) = server() else { return };
    let f = Fixture::new("conflict", &uri);
    let mut p = f.plan("revert.plan");
    let (changed_id, deleted_id) = (p.entries[3].id.clone(), p.entries[5].id.clone());
    let (changed_key, deleted_key) = (
        docsweep::scan::id_text(&changed_id),
        docsweep::scan::id_text(&deleted_id),
    );
    // A second entry for the first document (a plan written by hand, say).
    let again = p.entries[0].clone();
    let again_key = docsweep::scan::id_text(&again.id);
    p.entries.push(again);
    p.write(&f.w.path().join("revert.plan")).unwrap();
    let coll = f.client.database(&f.db).collection::<Document>("orders");
    let r = coll
        .update_one(
            id_filter(&changed_id),
            doc! {"$set": {"note": "changed by someone"}},
        )
        .run()
        .unwrap();
    assert_eq!(r.modified_count, 1, "{changed_key} was changed");
    let r = coll.delete_one(id_filter(&deleted_id)).run().unwrap();
    assert_eq!(r.deleted_count, 1, "{deleted_key} was deleted");
    let changed = f.orders();

    let run = apply(&f.w, "revert.plan", &["--yes"]);
    assert_eq!(run.code, 1, "conflicts: {}{}", run.stdout, run.stderr);
    assert!(
        run.stdout.contains("applied 38 change(s)")
            && run.stdout.contains(
                "0 already in place; 3 conflict(s) left as they were (41 planned entries)"
            ),
        "{}",
        run.stdout
    );
    for line in [
        format!("  conflict: _id {changed_key}: changed since the plan\n"),
        format!("  conflict: _id {deleted_key}: not found\n"),
        format!("  conflict: _id {again_key}: second entry for the same _id\n"),
    ] {
        assert!(run.stdout.contains(&line), "{line}: {}", run.stdout);
    }
    let now = f.orders();
    assert!(
        now[&changed_key] == changed[&changed_key],
        "the conflict is left alone"
    );
    assert!(!now.contains_key(&deleted_key));
    // The journal's finish record and the audit line say the same.
    let records = journal_records(&f.w.path().join("revert.plan.journal"));
    let finish = records.iter().find(|r| r["kind"] == "finish").unwrap();
    assert_eq!(
        (&finish["entries"], &finish["applied"], &finish["already"]),
        (&41.into(), &38.into(), &0.into()),
        "{finish}"
    );
    let reasons: BTreeMap<String, String> = finish["conflicts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| {
            (
                c["_id"].as_str().unwrap().into(),
                c["reason"].as_str().unwrap().into(),
            )
        })
        .collect();
    assert_eq!(
        reasons,
        BTreeMap::from([
            (changed_key.clone(), "changed since the plan".to_string()),
            (deleted_key.clone(), "not found".to_string()),
            (
                again_key.clone(),
                "second entry for the same _id".to_string()
            ),
        ])
    );
    let audit: Value =
        serde_json::from_str(f.w.read("audit.jsonl").lines().last().unwrap()).unwrap();
    assert_eq!(
        (
            &audit["entries"],
            &audit["applied"],
            &audit["already"],
            &audit["conflicts"]
        ),
        (&41.into(), &38.into(), &0.into(), &3.into()),
        "{audit}"
    );
    // A re-run reports the same counts.
    let run = apply(&f.w, "revert.plan", &["--yes"]);
    assert_eq!(run.code, 1, "{}{}", run.stdout, run.stderr);
    assert!(
        run.stdout.contains(
            "of 41 planned entries it applied 38, 0 were already in place, 3 conflict(s)"
        ),
        "{}",
        run.stdout
    );

    // Undo restores the 38 and leaves the changed document as it is.
    let run = undo(&f.w, "revert.plan.journal", &["--yes"]);
    assert_eq!(run.code, 0, "{}{}", run.stdout, run.stderr);
    assert!(
        run.stdout.contains("undone 38 change(s)") && run.stdout.contains("(38 journaled changes)"),
        "{}",
        run.stdout
    );
    assert!(f.orders() == changed);
}

/// A document changed after the apply is a conflict for undo, with its reason; one
/// deleted after the apply is `not found`.
#[test]
fn undo_reports_documents_changed_or_deleted_since_the_apply() {
    let Some(uri) = server() else { return };
    let f = Fixture::new("undo_conflict", &uri);
    let run = apply(&f.w, "revert.plan", &["--yes"]);
    assert_eq!(run.code, 0, "{}{}", run.stdout, run.stderr);
    let p = f.plan("revert.plan");
    let (changed_id, deleted_id) = (p.entries[1].id.clone(), p.entries[2].id.clone());
    let coll = f.client.database(&f.db).collection::<Document>("orders");
    coll.update_one(id_filter(&changed_id), doc! {"$set": {"note": "later"}})
        .run()
        .unwrap();
    coll.delete_one(id_filter(&deleted_id)).run().unwrap();
    let run = undo(&f.w, "revert.plan.journal", &["--yes"]);
    assert_eq!(run.code, 1, "{}{}", run.stdout, run.stderr);
    assert!(
        run.stdout.contains("undone 38 change(s)")
            && run
                .stdout
                .contains("2 conflict(s) left as they were (40 journaled changes)"),
        "{}",
        run.stdout
    );
    for line in [
        format!(
            "  conflict: _id {}: changed since the apply\n",
            docsweep::scan::id_text(&changed_id)
        ),
        format!(
            "  conflict: _id {}: not found\n",
            docsweep::scan::id_text(&deleted_id)
        ),
    ] {
        assert!(run.stdout.contains(&line), "{line}: {}", run.stdout);
    }
    let audit: Value =
        serde_json::from_str(f.w.read("audit.jsonl").lines().last().unwrap()).unwrap();
    assert_eq!(
        (
            &audit["entries"],
            &audit["undone"],
            &audit["already"],
            &audit["conflicts"]
        ),
        (&40.into(), &38.into(), &0.into(), &2.into()),
        "{audit}"
    );
}

#[test]
fn damaged_and_foreign_journals_are_refused() {
    let Some(uri) = server() else { return };
    let f = Fixture::new("journal", &uri);
    let w = &f.w;
    // An interrupted apply leaves an unfinished journal.
    let out = Command::new(env!("CARGO_BIN_EXE_docsweep"))
        .args([
            "repair",
            "apply",
            "revert.plan",
            "--yes",
            "--batch-size",
            "10",
            "--audit",
            "a.jsonl",
        ])
        .args(TOP_LEVEL)
        .current_dir(w.path())
        .env("DOCSWEEP_FAILPOINT", "apply.batch-done")
        .output()
        .unwrap();
    assert!(!out.status.success());
    let journal = w.path().join("revert.plan.journal");
    let good = std::fs::read(&journal).unwrap();

    // Undo refuses an unfinished journal.
    let run = undo(w, "revert.plan.journal", &["--yes"]);
    assert_eq!(run.code, 2, "{}", run.stderr);
    assert!(run.stderr.contains("did not finish"), "{}", run.stderr);

    let mut bad = good.clone();
    bad[40] ^= 0x01;
    std::fs::write(&journal, &bad).unwrap();
    let before = f.orders();
    let run = apply(w, "revert.plan", &["--yes"]);
    assert_eq!(run.code, 2, "{}", run.stderr);
    assert!(
        run.stderr.contains("revert.plan.journal") && run.stderr.contains("checksum"),
        "{}",
        run.stderr
    );
    assert_eq!(f.orders(), before, "nothing written on a damaged journal");

    // Another plan's journal is refused.
    std::fs::write(&journal, &good).unwrap();
    let run = plan(
        w,
        &f.source,
        "other.plan",
        &[
            "--template",
            "quarantine-orphans",
            "--collection",
            "orders",
            "--param",
            "field=customer_id",
        ],
    );
    assert_eq!(run.code, 0, "{}", run.stderr);
    let run = apply(
        w,
        "other.plan",
        &["--yes", "--journal", "revert.plan.journal"],
    );
    assert_eq!(run.code, 2, "{}", run.stderr);
    assert!(run.stderr.contains("another plan"), "{}", run.stderr);
    assert_eq!(f.orders(), before);

    // The intact journal resumes.
    let run = apply(w, "revert.plan", &["--yes"]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert!(run.stdout.contains("resumed"), "{}", run.stdout);
}

/// Runs the apply with a failpoint or a SIGKILL, then re-runs it; the result must be the
/// clean run's, and the re-run must not write what the crashed run wrote.
#[test]
fn a_crash_anywhere_then_a_rerun_gives_the_clean_result_and_undo_the_original() {
    let Some(uri) = server() else { return };
    let f = Fixture::new("crash", &uri);
    let w = &f.w;
    let p = f.plan("revert.plan");
    let top_level = top_level_only(&f.client);
    let after_fp: BTreeMap<String, u128> = p
        .entries
        .iter()
        .map(|e| {
            (
                docsweep::scan::id_text(&e.id),
                docsweep::value::fingerprint(&canon_value(e.after.as_ref().unwrap(), top_level))
                    .ordered,
            )
        })
        .collect();
    let planned: HashSet<String> = after_fp.keys().cloned().collect();

    // A clean run, for reference, then undone.
    let run = apply(w, "revert.plan", &["--yes", "--journal", "clean.journal"]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    let clean = fingerprints(&f.client, &f.db, "orders");
    let run = undo(w, "clean.journal", &["--yes"]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert!(f.orders() == f.original);
    // With the top-level guard an undo re-adds fields at the end: the documents' field
    // order is no longer the plan's before-image, so the plan is made again.
    let replan = || {
        if top_level {
            let run = plan(w, &f.source, "revert.plan", &REVERT);
            assert_eq!(run.code, 0, "{}", run.stderr);
        }
    };
    replan();

    // Failpoints: between reading and journaling, after journaling a batch, after the
    // first write of a batch, after a batch, before the finish record; then a real kill.
    let points = [
        Some("apply.before-batch"),
        Some("apply.batch-journaled"),
        Some("apply.mid-batch"),
        Some("apply.batch-done"),
        Some("apply.before-finish"),
        None,
    ];
    for point in points {
        let name = point.unwrap_or("sigkill");
        let journal = format!("{name}.journal");
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_docsweep"));
        cmd.args([
            "repair",
            "apply",
            "revert.plan",
            "--yes",
            "--batch-size",
            "7",
            "--journal",
            &journal,
            "--audit",
            "a.jsonl",
        ])
        .args(TOP_LEVEL)
        .current_dir(w.path())
        .stdout(Stdio::null())
        .stderr(Stdio::null());
        match point {
            Some(p) => {
                let status = cmd.env("DOCSWEEP_FAILPOINT", p).status().unwrap();
                assert!(!status.success(), "{name}: the process must have crashed");
            }
            None => {
                // Slow (20 documents/s): killed once two batches (14 documents) are done.
                let mut child = cmd.args(["--rate", "20/s"]).spawn().unwrap();
                let jpath = w.path().join(&journal);
                let start = std::time::Instant::now();
                loop {
                    std::thread::sleep(std::time::Duration::from_millis(20));
                    let done = std::fs::read_to_string(&jpath)
                        .unwrap_or_default()
                        .matches("\"kind\":\"done\"")
                        .count();
                    if done >= 2 || start.elapsed().as_secs() > 20 {
                        break;
                    }
                }
                child.kill().unwrap(); // SIGKILL
                let status = child.wait().unwrap();
                assert!(!status.success(), "killed");
                assert!(jpath.is_file());
                assert!(
                    !std::fs::read_to_string(&jpath)
                        .unwrap()
                        .contains("\"finish\""),
                    "killed before the end"
                );
            }
        }
        // What the crashed run wrote: the planned documents now in their after-state.
        let now = fingerprints(&f.client, &f.db, "orders");
        let written_before: HashSet<String> = planned
            .iter()
            .filter(|id| now.get(*id) == after_fp.get(*id))
            .cloned()
            .collect();
        if matches!(point, Some("apply.before-batch" | "apply.batch-journaled")) {
            assert!(written_before.is_empty(), "{name}: nothing written yet");
        } else {
            assert!(!written_before.is_empty(), "{name}: some writes happened");
        }

        let run = apply(w, "revert.plan", &["--yes", "--journal", &journal]);
        assert_eq!(run.code, 0, "{name}: {}{}", run.stdout, run.stderr);
        assert_eq!(
            fingerprints(&f.client, &f.db, "orders"),
            clean,
            "{name}: the result differs from a clean run"
        );
        // Nothing written twice: every planned document is applied by exactly one run, and
        // the re-run wrote none of those the crashed run had written.
        let jpath = w.path().join(&journal);
        let applied = journal_ids(&jpath, "applied");
        let already = journal_ids(&jpath, "already");
        let unique: HashSet<&String> = applied.iter().collect();
        assert_eq!(unique.len(), applied.len(), "{name}: an _id applied twice");
        let rerun_applied: HashSet<String> = rerun_ids(&jpath, "applied").into_iter().collect();
        let rerun_already: HashSet<String> = rerun_ids(&jpath, "already").into_iter().collect();
        for id in &written_before {
            assert!(
                !rerun_applied.contains(id),
                "{name}: _id {id} was written again"
            );
        }
        // What the crashed run wrote without recording it is found in place by the re-run.
        assert!(
            rerun_already.iter().all(|id| written_before.contains(id)),
            "{name}: the re-run found documents in place that the crashed run did not write"
        );
        let all: HashSet<String> = applied.iter().chain(&already).cloned().collect();
        assert_eq!(all, planned, "{name}: every planned document is settled");
        assert_eq!(
            applied.len() + already.len(),
            planned.len(),
            "{name}: each once"
        );

        let run = undo(w, &journal, &["--yes"]);
        assert_eq!(run.code, 0, "{name}: undo: {}{}", run.stdout, run.stderr);
        assert_eq!(
            fingerprints(&f.client, &f.db, "orders"),
            f.original
                .iter()
                .map(|(id, b)| {
                    let v = docsweep::value::from_bson(b).unwrap().value;
                    (id.clone(), docsweep::value::fingerprint(&v).ordered)
                })
                .collect::<BTreeMap<_, _>>(),
            "{name}: undo gives the original"
        );
        assert!(f.orders() == f.original, "{name}: byte for byte");
        replan();
    }
}

/// The `_id`s the `done` records after the last `resume` record list under `kind`: what
/// the re-run did.
fn rerun_ids(path: &Path, kind: &str) -> Vec<String> {
    let text = std::fs::read_to_string(path).unwrap();
    let records: Vec<Value> = text
        .lines()
        .map(|l| serde_json::from_str(l.split_once(' ').unwrap().1).unwrap())
        .collect();
    let from = records
        .iter()
        .rposition(|v| v["kind"] == "resume")
        .expect("the re-run resumed the journal");
    records[from..]
        .iter()
        .filter(|v| v["kind"] == "done")
        .flat_map(|v| v[kind].as_array().unwrap().clone())
        .map(|id| id.as_str().unwrap().to_string())
        .collect()
}

/// The remediation commands of a report, with the binary under test.
fn remediation_commands(report: &Value) -> Vec<(String, String, String)> {
    let mut out = Vec::new();
    for c in report["collections"].as_array().unwrap() {
        for r in c["remediation"].as_array().unwrap() {
            if r["template"] == "" {
                continue;
            }
            let cmd = r["command"].as_str().unwrap();
            let plan = cmd.rsplit_once("--out ").unwrap().1.to_string();
            out.push((
                r["finding"].as_str().unwrap().to_string(),
                cmd.replacen("docsweep", env!("CARGO_BIN_EXE_docsweep"), 1),
                plan,
            ));
        }
    }
    out
}

fn sh(w: &Workdir, cmd: &str) -> crate::util::Run {
    let o = Command::new("sh")
        .arg("-c")
        .arg(cmd)
        .current_dir(w.path())
        .output()
        .unwrap();
    crate::util::Run {
        code: o.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&o.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&o.stderr).into_owned(),
    }
}

/// A report without what differs between two checks of the same data.
fn comparable(mut r: Value) -> Value {
    for k in ["started_at", "finished_at"] {
        r[k] = Value::Null;
    }
    crate::util::without_history(&mut r);
    r
}

/// `cmd` with its `--source S` replaced.
fn with_source(cmd: &str, source: &str) -> String {
    let (head, rest) = cmd.split_once(" --source ").unwrap();
    let rest = rest.split_once(' ').unwrap().1;
    format!("{head} --source {source} {rest}")
}

/// The bundled example as far as a server takes it (see `loadable`), loaded into a fresh
/// database and written as a dump `<w>/dump/<db>/` too, so that both paths start equal.
fn live_and_dump(uri: &str, w: &Workdir, tag: &str) -> (Client, String) {
    let db = fresh_db(tag);
    let client = Client::with_uri_str(uri).unwrap();
    let src = example().join("data/dump/shop");
    load(&client, &db, &src);
    let out = w.path().join("dump").join(&db);
    std::fs::create_dir_all(&out).unwrap();
    for coll in ["customers", "orders"] {
        let mut file = Vec::new();
        for d in loadable(&src.join(format!("{coll}.bson"))) {
            file.extend_from_slice(d.as_bytes());
        }
        std::fs::write(out.join(format!("{coll}.bson")), file).unwrap();
        let meta = format!("{coll}.metadata.json");
        std::fs::copy(src.join(&meta), out.join(&meta)).unwrap();
    }
    (client, db)
}

/// Runs every remediation command of `report` (plan, then apply), each planned against
/// the state the previous ones left; returns the journals in order. On a dump each apply
/// writes a new dump, which the next plan reads.
fn remedy(w: &Workdir, report: &Value, live: bool) -> (Vec<String>, Vec<String>) {
    let mut journals = Vec::new();
    let mut sources = vec![report["source"].as_str().unwrap().to_string()];
    for (i, (finding, cmd, plan)) in remediation_commands(report).into_iter().enumerate() {
        let cmd = with_source(&cmd, sources.last().unwrap());
        let run = sh(w, &cmd);
        assert_eq!(run.code, 0, "{finding}: {cmd}: {}", run.stderr);
        if Plan::read(&w.path().join(&plan))
            .unwrap()
            .entries
            .is_empty()
        {
            continue; // nothing left to change (an earlier repair did it)
        }
        let run = if live {
            apply(w, &plan, &["--yes"])
        } else {
            apply(w, &plan, &["--out", &format!("dump:step{i}")])
        };
        assert_eq!(run.code, 0, "{finding}: {}{}", run.stdout, run.stderr);
        eprintln!(
            "{finding}: {plan}: {}",
            run.stdout.lines().next().unwrap_or_default()
        );
        if live {
            journals.push(format!("{plan}.journal"));
        } else {
            let db = report["database"].as_str().unwrap();
            journals.push(format!("step{i}/{db}/.docsweep/journal"));
            sources.push(format!("dump:step{i}"));
        }
    }
    (journals, sources)
}

/// The remediation the report suggests turns the example into data that passes its
/// contracts (a clean check, exit 0); against the baseline, what is left is the documents
/// added since it (new documents: no repair removes them) and nothing else. Undo, last
/// apply first, brings back the original report. The live server and the dump end equal.
#[test]
fn the_remediation_of_a_report_makes_the_example_clean_and_undo_brings_it_back() {
    let Some(uri) = server() else { return };
    let w = Workdir::new();
    let (client, db) = live_and_dump(&uri, &w, "remedy");
    let baseline = format!("dump:{}", example().join("data/baseline").display());
    let dump = format!("dump:{}", w.path().join("dump").display());
    for (kind, source) in [("live", with_db(&uri, &db)), ("dump", dump.clone())] {
        let live = kind == "live";
        let (code, original) = check(
            &w,
            &source,
            &format!("{kind}-0"),
            &["--baseline", &baseline],
        );
        assert_eq!(code, 1);
        let (journals, sources) = remedy(&w, &original, live);
        assert!(journals.len() >= 8, "{kind}: {journals:?}");
        let fixed_source = sources.last().unwrap().clone();
        let (code, fixed) = check(&w, &fixed_source, &format!("{kind}-1"), &[]);
        assert_eq!(code, 0, "{kind}: a clean check: {fixed}");
        let (code, fixed) = check(
            &w,
            &fixed_source,
            &format!("{kind}-2"),
            &["--baseline", &baseline],
        );
        assert_eq!(code, 1);
        for c in fixed["collections"].as_array().unwrap() {
            let rec = &c["reconciliation"];
            assert_eq!(
                (&rec["missing"], &rec["changed"]),
                (&0.into(), &0.into()),
                "{kind}: {c}"
            );
            assert!(rec["added"].as_u64().unwrap() > 0);
            // Nothing left to repair; the added documents are left for a person to review.
            let left: Vec<&Value> = c["remediation"].as_array().unwrap().iter().collect();
            assert!(
                left.iter()
                    .all(|r| r["finding"] == "added" && r["template"] == ""),
                "{kind}: nothing left to repair: {left:?}"
            );
        }
        // Undo, the last apply first.
        for (k, j) in journals.iter().enumerate().rev() {
            let run = if live {
                undo(&w, j, &["--yes"])
            } else {
                undo(&w, j, &["--out", &format!("dump:undo{k}")])
            };
            assert_eq!(
                run.code, 0,
                "{kind}: undo {j}: {}{}",
                run.stdout, run.stderr
            );
            if !live {
                // The undone dump is the one the apply read, file for file.
                let read = sources[k].strip_prefix("dump:").unwrap();
                let read = Path::new(read).join(&db);
                let read = if read.is_absolute() {
                    read
                } else {
                    w.path().join(read)
                };
                // Deleted and quarantined documents come back in their places: the same
                // documents, byte for byte, and the same other files.
                let (a, b) = (
                    dump_contents(&read),
                    dump_contents(&w.path().join(format!("undo{k}")).join(&db)),
                );
                assert_eq!(
                    a.keys().collect::<Vec<_>>(),
                    b.keys().collect::<Vec<_>>(),
                    "{kind}: undo {j}"
                );
                for (name, content) in &a {
                    assert!(content == &b[name], "{kind}: undo {j}: {name} differs");
                }
            }
        }
        let undone_source = if live { source.clone() } else { dump.clone() };
        let (_, undone) = check(
            &w,
            &undone_source,
            &format!("{kind}-3"),
            &["--baseline", &baseline],
        );
        assert_eq!(
            comparable(undone),
            comparable(original),
            "{kind}: undo brings the report back"
        );
        if live {
            // Undone live data equals the dump it was loaded from, document for document.
            for coll in ["customers", "orders"] {
                let dumped =
                    loadable(&w.path().join("dump").join(&db).join(format!("{coll}.bson")));
                let on_server = contents(&client, &db, coll);
                let top_level = top_level_only(&client);
                assert_eq!(dumped.len(), on_server.len(), "{coll}");
                for d in dumped {
                    let v = docsweep::value::from_bson(d.as_bytes()).unwrap().value;
                    let id = docsweep::scan::id_text(&v["_id"]);
                    assert!(
                        on_server[&id] == canon(d.as_bytes(), top_level),
                        "{coll} _id {id}"
                    );
                }
            }
        }
    }
    let _ = client.database(&db).drop().run();
}

/// Every file of a dump database folder, by name: `.bson` files as their documents by
/// `_id` (with how often each occurs), the others as bytes.
fn dump_contents(dir: &Path) -> BTreeMap<String, BTreeMap<String, (usize, Vec<u8>)>> {
    let mut out = BTreeMap::new();
    for (name, bytes) in files(dir) {
        let mut docs = BTreeMap::new();
        if name.ends_with(".bson") {
            let mut pos = 0;
            while pos + 4 <= bytes.len() {
                let len = i32::from_le_bytes(bytes[pos..pos + 4].try_into().unwrap()) as usize;
                let raw = bytes[pos..pos + len].to_vec();
                pos += len;
                let v = docsweep::value::from_bson(&raw).unwrap().value;
                let e = docs
                    .entry(docsweep::scan::id_text(&v["_id"]))
                    .or_insert((0, raw));
                e.0 += 1;
            }
        } else {
            docs.insert(String::new(), (1, bytes));
        }
        out.insert(name, docs);
    }
    out
}

/// Every file of a dump database folder, by name.
fn files(dir: &Path) -> Vec<(String, Vec<u8>)> {
    let mut v: Vec<(String, Vec<u8>)> = std::fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
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

/// The indexes of a collection by name, as `listIndexes` shows them.
fn index_specs(client: &Client, db: &str, coll: &str) -> BTreeMap<String, Document> {
    client
        .database(db)
        .run_cursor_command(doc! {"listIndexes": coll})
        .run()
        .unwrap()
        .map(|ix| {
            let mut spec: Document = ix.unwrap();
            spec.remove("v");
            spec.remove("ns");
            (spec.get_str("name").unwrap().to_string(), spec)
        })
        .collect()
}

#[test]
fn index_repairs_keep_index_options_and_undo_gives_a_dropped_index_back_whole() {
    let Some(uri) = server() else { return };
    let db = fresh_db("index");
    let client = Client::with_uri_str(&uri).unwrap();
    load(&client, &db, &example().join("data/dump/shop"));
    let _drop = DropDb(&client, &db);
    // A unique, sparse leftover index next to the example's ones.
    client
        .database(&db)
        .run_command(doc! {"createIndexes": "orders", "indexes": [
            {"key": {"_id": 1, "status": -1}, "name": "_id_1_status_-1", "unique": true, "sparse": true}
        ]})
        .run()
        .unwrap();
    let before = index_specs(&client, &db, "orders");
    let leftover = &before["_id_1_status_-1"];
    assert_eq!(leftover.get_bool("unique").ok(), Some(true), "{before:?}");
    // FerretDB accepts `sparse` but does not keep it (docs/ferretdb.md); MongoDB does.
    let keeps_sparse = leftover.get_bool("sparse").ok() == Some(true);
    let w = Workdir::new();
    let source = with_db(&uri, &db);
    // Plans `template` with `params` for the orders and applies it (journal: NAME.journal).
    let plan_and_apply = |name: &str, template: &str, params: &[&str]| {
        let mut args = vec!["--template", template, "--collection", "orders"];
        for p in params {
            args.extend(["--param", p]);
        }
        let run = plan(&w, &source, name, &args);
        assert_eq!(run.code, 0, "{}", run.stderr);
        let run = apply(&w, name, &["--yes"]);
        assert_eq!(run.code, 0, "{}{}", run.stdout, run.stderr);
    };
    plan_and_apply(
        "drop.plan",
        "drop-unexpected-index",
        &["name=_id_1_status_-1"],
    );
    let dropped = index_specs(&client, &db, "orders");
    assert!(!dropped.contains_key("_id_1_status_-1"), "{dropped:?}");
    plan_and_apply(
        "create.plan",
        "create-missing-index",
        &[
            "key={\"status\": 1, \"_id\": 1}",
            "sparse=true",
            "unique=true",
        ],
    );
    let created = index_specs(&client, &db, "orders");
    let ix = &created["status_1__id_1"];
    assert_eq!(ix.get_bool("unique").ok(), Some(true), "{created:?}");
    assert_eq!(
        ix.get_bool("sparse").ok() == Some(true),
        keeps_sparse,
        "the created index is sparse: {created:?}"
    );

    for journal in ["create.plan.journal", "drop.plan.journal"] {
        let run = undo(&w, journal, &["--yes"]);
        assert_eq!(run.code, 0, "{journal}: {}{}", run.stdout, run.stderr);
    }
    assert_eq!(
        index_specs(&client, &db, "orders"),
        before,
        "the dropped index is back with its options; the created one is gone"
    );
}

/// Drops a test database when the test ends, passed or not.
struct DropDb<'a>(&'a Client, &'a str);

impl Drop for DropDb<'_> {
    fn drop(&mut self) {
        let _ = self.0.database(self.1).drop().run();
    }
}

// ---------------------------------------------------------------------------------------
// Concurrent writers: no acknowledged write of another client is ever lost.

/// Documents in the concurrency tests.
const PEOPLE: i32 = 300;
/// Writer threads (clients); each owns the documents whose `_id` % WRITERS is its number,
/// because FerretDB itself loses `$inc`s of two clients on one document.
const WRITERS: i32 = 4;

/// A contract for `people`: v2 split `name` into `first_name` + `last_name` (rolled
/// back), v1 is the target; `counter` is what the other clients change.
fn people_schemas(w: &Workdir) -> String {
    let dir = w.path().join("people-schemas/people");
    std::fs::create_dir_all(&dir).unwrap();
    let counter = serde_json::json!({"type": "object", "properties": {"n": {"type": "integer"}}});
    let v1 = serde_json::json!({"type": "object",
        "properties": {"name": {"type": "string"}, "counter": counter},
        "required": ["name", "counter"], "additionalProperties": false});
    let v2 = serde_json::json!({"type": "object",
        "properties": {"first_name": {"type": "string"}, "last_name": {"type": "string"}, "counter": counter},
        "required": ["first_name", "last_name", "counter"], "additionalProperties": false});
    // `_id` is allowed by `additionalProperties: false` only when named.
    let mut v1 = v1;
    let mut v2 = v2;
    v1["properties"]["_id"] = serde_json::json!({});
    v2["properties"]["_id"] = serde_json::json!({});
    std::fs::write(dir.join("v1.schema.json"), v1.to_string()).unwrap();
    std::fs::write(dir.join("v2.schema.json"), v2.to_string()).unwrap();
    std::fs::write(
        dir.join("contract.toml"),
        "collection = \"people\"\ntarget = 1\n\n[[versions]]\nversion = 1\nschema = \"v1.schema.json\"\n\n[[versions]]\nversion = 2\nschema = \"v2.schema.json\"\n",
    )
    .unwrap();
    w.path().join("people-schemas").display().to_string()
}

/// A fresh database with PEOPLE split-name documents and the `revert-split-field` plan
/// (`people.plan`) for all of them.
fn people(tag: &str, uri: &str) -> (Client, String, Workdir, DropOnExit) {
    let db = fresh_db(tag);
    let client = Client::with_uri_str(uri).unwrap();
    let docs: Vec<Document> = (0..PEOPLE)
        .map(|i| doc! {"_id": i, "first_name": format!("F{i}"), "last_name": format!("L{i}"), "counter": {"n": 0}})
        .collect();
    client
        .database(&db)
        .collection::<Document>("people")
        .insert_many(docs)
        .run()
        .unwrap();
    let w = Workdir::new();
    let schemas = people_schemas(&w);
    let run = w.docsweep(&[
        "repair",
        "plan",
        "--schemas",
        &schemas,
        "--source",
        &with_db(uri, &db),
        "--template",
        "revert-split-field",
        "--collection",
        "people",
        "--out",
        "people.plan",
    ]);
    assert_eq!(run.code, 0, "{}{}", run.stdout, run.stderr);
    assert!(
        run.stdout.contains(&format!("{PEOPLE} change(s)")),
        "{}",
        run.stdout
    );
    let guard = DropOnExit(client.clone(), db.clone());
    (client, db, w, guard)
}

/// Drops a test database when the test ends (owning variant of `DropDb`).
struct DropOnExit(Client, String);

impl Drop for DropOnExit {
    fn drop(&mut self) {
        let _ = self.0.database(&self.1).drop().run();
    }
}

/// Starts WRITERS clients doing acknowledged `$inc: {"counter.n": 1}` on random documents
/// of their own until `stop`; returns, per `_id`, how many increments were acknowledged.
fn hammer(
    uri: &str,
    db: &str,
    stop: std::sync::Arc<std::sync::atomic::AtomicBool>,
) -> Vec<std::thread::JoinHandle<BTreeMap<i32, i64>>> {
    (0..WRITERS)
        .map(|t| {
            let (uri, db, stop) = (uri.to_string(), db.to_string(), stop.clone());
            std::thread::spawn(move || {
                let client = Client::with_uri_str(&uri).unwrap();
                let c = client.database(&db).collection::<Document>("people");
                let mine: Vec<i32> = (0..PEOPLE).filter(|i| i % WRITERS == t).collect();
                let mut acked = BTreeMap::new();
                let mut x: u64 = 0x9e37_79b9_7f4a_7c15 ^ (t as u64 + 1);
                while !stop.load(std::sync::atomic::Ordering::SeqCst) {
                    x ^= x << 13;
                    x ^= x >> 7;
                    x ^= x << 17;
                    let id = mine[(x % mine.len() as u64) as usize];
                    let r = c
                        .update_one(doc! {"_id": id}, doc! {"$inc": {"counter.n": 1}})
                        .run()
                        .unwrap();
                    assert_eq!(r.matched_count, 1, "_id {id} is always there");
                    *acked.entry(id).or_insert(0) += 1;
                    std::thread::sleep(std::time::Duration::from_millis(15));
                }
                acked
            })
        })
        .collect()
}

/// Runs `args` (a docsweep apply or undo) while the writers hammer; returns its run and
/// the acknowledged increments per `_id`.
fn under_load(
    uri: &str,
    db: &str,
    w: &Workdir,
    args: &[&str],
) -> (crate::util::Run, BTreeMap<i32, i64>) {
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let writers = hammer(uri, db, stop.clone());
    let start = std::time::Instant::now();
    std::thread::sleep(std::time::Duration::from_millis(100));
    let run = w.docsweep(args);
    // A refusal is quick: the writers get a second and a half in any case.
    std::thread::sleep(std::time::Duration::from_millis(1500).saturating_sub(start.elapsed()));
    stop.store(true, std::sync::atomic::Ordering::SeqCst);
    let mut acked = BTreeMap::new();
    for h in writers {
        acked.extend(h.join().unwrap());
    }
    (run, acked)
}

/// The documents of `people` by `_id`, decoded.
fn people_now(client: &Client, db: &str) -> BTreeMap<i32, Value> {
    client
        .database(db)
        .collection::<RawDocumentBuf>("people")
        .find(doc! {})
        .run()
        .unwrap()
        .map(|d| {
            let v = docsweep::value::from_bson(d.unwrap().as_bytes())
                .unwrap()
                .value;
            (v["_id"].as_i64().unwrap() as i32, v)
        })
        .collect()
}

/// `v` with `counter.n` set to `n`.
fn with_count(v: &Value, n: i64) -> Value {
    let mut v = v.clone();
    v["counter"]["n"] = n.into();
    v
}

/// An id from a journal's `applied`/`already` list or `conflicts` list (a bare `_id`
/// text, or `{_id, reason}`).
fn listed_id(v: &Value) -> String {
    v.as_str()
        .or_else(|| v["_id"].as_str())
        .unwrap()
        .to_string()
}

/// What a run under load did to the documents, checked against what it reported.
#[derive(Debug, Default)]
struct Settled {
    /// Written by docsweep, and now the wanted image plus every acknowledged increment.
    written: usize,
    /// Reported as conflicts, and untouched by docsweep (plus every increment).
    conflicts: usize,
    /// Documents missing acknowledged increments.
    lost: Vec<String>,
    /// Documents whose state is not what the run reported.
    misreported: Vec<String>,
}

/// Checks every planned document: `done` says what the run reported for it (`true`:
/// written, `false`: a conflict), `wanted` and `left` are its images without the writers'
/// increments.
fn settled(
    now: &BTreeMap<i32, Value>,
    acked: &BTreeMap<i32, i64>,
    outcome: impl Fn(i32) -> bool,
    wanted: impl Fn(i32) -> Value,
    left: impl Fn(i32) -> Value,
) -> Settled {
    let mut s = Settled::default();
    for (&id, doc) in now {
        let n = acked.get(&id).copied().unwrap_or(0);
        if doc["counter"]["n"].as_i64() != Some(n) {
            s.lost.push(format!(
                "_id {id}: {n} increments acknowledged, the document has {doc}"
            ));
            continue;
        }
        let written = outcome(id);
        let expect = with_count(&if written { wanted(id) } else { left(id) }, n);
        if doc != &expect {
            s.misreported.push(format!(
                "_id {id}: reported {}, is {doc}",
                if written { "written" } else { "a conflict" }
            ));
        } else if written {
            s.written += 1;
        } else {
            s.conflicts += 1;
        }
    }
    s
}

/// How each planned `_id` ended according to a journal: `applied`, `already` or
/// `conflicts`.
fn journal_outcomes(path: &Path) -> BTreeMap<String, String> {
    let mut outcome = BTreeMap::new();
    for r in journal_records(path).iter().filter(|r| r["kind"] == "done") {
        for kind in ["applied", "already", "conflicts"] {
            for id in r[kind].as_array().unwrap() {
                assert!(
                    outcome.insert(listed_id(id), kind.to_string()).is_none(),
                    "{id} twice"
                );
            }
        }
    }
    outcome
}

/// Applies the plan while the writers run; returns the run, the increments and how the
/// documents settled.
fn apply_under_load(uri: &str, extra: &[&str]) -> (crate::util::Run, Settled, i64) {
    let (client, db, w, _drop) = people("race_apply", uri);
    let plan = Plan::read(&w.path().join("people.plan")).unwrap();
    let before = people_now(&client, &db);
    let mut args = vec![
        "repair",
        "apply",
        "people.plan",
        "--yes",
        "--batch-size",
        "10",
        "--audit",
        "a.jsonl",
    ];
    args.extend_from_slice(extra);
    let (run, acked) = under_load(uri, &db, &w, &args);
    let total: i64 = acked.values().sum();
    assert!(total > 50, "the writers were busy: {total} increments");
    let now = people_now(&client, &db);
    if run.code == 2 {
        // Refused: nothing written, nothing lost.
        let s = settled(
            &now,
            &acked,
            |_| false,
            |_| Value::Null,
            |id| before[&id].clone(),
        );
        return (run, s, total);
    }
    let outcome = journal_outcomes(&w.path().join("people.plan.journal"));
    assert_eq!(
        outcome.len(),
        PEOPLE as usize,
        "every entry is settled once"
    );
    let after: BTreeMap<i32, Value> = plan
        .entries
        .iter()
        .map(|e| (e.id.as_i64().unwrap() as i32, e.after.clone().unwrap()))
        .collect();
    let s = settled(
        &now,
        &acked,
        |id| outcome[&id.to_string()] != "conflicts",
        |id| after[&id].clone(),
        |id| before[&id].clone(),
    );
    (run, s, total)
}

/// Four clients increment `counter.n` of their own documents (acknowledged) while a live
/// apply runs: every document ends either as its planned after-image plus all its
/// increments (applied), or untouched by docsweep plus all its increments (a conflict).
/// Where the server has no whole-document guard (FerretDB), the apply is refused without
/// `--guard top-level`, and nothing is written.
#[test]
fn concurrent_increments_during_live_apply_are_never_lost() {
    let Some(uri) = server() else { return };
    let top_level = top_level_only(&Client::with_uri_str(&uri).unwrap());
    let (run, s, total) = apply_under_load(&uri, &[]);
    eprintln!(
        "apply under load: exit {}, {s:?}, {total} increments",
        run.code
    );
    assert!(
        s.lost.is_empty(),
        "acknowledged increments were lost: {:?}",
        s.lost
    );
    assert!(s.misreported.is_empty(), "{:?}", s.misreported);
    if top_level {
        assert_eq!(run.code, 2, "{}{}", run.stdout, run.stderr);
        assert!(
            run.stderr
                .contains("cannot make a write conditional on the whole document")
                && run.stderr.contains("--guard top-level")
                && run.stderr.contains("nothing was written"),
            "{}",
            run.stderr
        );
        assert_eq!(s.conflicts, PEOPLE as usize, "nothing was written");
        return;
    }
    assert_eq!(s.written + s.conflicts, PEOPLE as usize);
    assert!(s.written > 0, "some documents were applied");
    assert_eq!(run.code, i32::from(s.conflicts > 0), "{}", run.stdout);
}

/// The same for a live undo: every applied document ends either as its before-image plus
/// all its increments (undone), or as the after-image plus all its increments (a
/// conflict, changed since the apply). FerretDB: refused without `--guard top-level`.
#[test]
fn concurrent_increments_during_live_undo_are_never_lost() {
    let Some(uri) = server() else { return };
    let (client, db, w, _drop) = people("race_undo", &uri);
    let top_level = top_level_only(&client);
    let plan = Plan::read(&w.path().join("people.plan")).unwrap();
    let before = people_now(&client, &db);
    let run = w.docsweep(&[
        "repair",
        "apply",
        "people.plan",
        "--yes",
        "--guard",
        "top-level",
        "--audit",
        "a.jsonl",
    ]);
    assert_eq!(run.code, 0, "{}{}", run.stdout, run.stderr);
    let (run, acked) = under_load(
        &uri,
        &db,
        &w,
        &[
            "repair",
            "undo",
            "people.plan.journal",
            "--yes",
            "--audit",
            "a.jsonl",
        ],
    );
    let total: i64 = acked.values().sum();
    assert!(total > 50, "the writers were busy: {total} increments");
    let now = people_now(&client, &db);
    let after: BTreeMap<i32, Value> = plan
        .entries
        .iter()
        .map(|e| (e.id.as_i64().unwrap() as i32, e.after.clone().unwrap()))
        .collect();
    // Undone documents are their before-image again (with the increments).
    let undone = |id: i32| with_count(&now[&id], 0) == with_count(&before[&id], 0);
    let s = settled(
        &now,
        &acked,
        undone,
        |id| before[&id].clone(),
        |id| after[&id].clone(),
    );
    eprintln!(
        "undo under load: exit {}, {s:?}, {total} increments",
        run.code
    );
    assert!(
        s.lost.is_empty(),
        "acknowledged increments were lost: {:?}",
        s.lost
    );
    assert!(s.misreported.is_empty(), "{:?}", s.misreported);
    if top_level {
        assert_eq!(run.code, 2, "{}{}", run.stdout, run.stderr);
        assert!(
            run.stderr.contains("--guard top-level") && run.stderr.contains("nothing was written"),
            "{}",
            run.stderr
        );
        assert_eq!(s.written, 0, "nothing was undone");
        return;
    }
    // The counts printed are the documents' states.
    assert!(
        run.stdout
            .contains(&format!("undone {} change(s)", s.written))
            && run.stdout.contains(&format!(
                "{} conflict(s) left as they were ({PEOPLE} journaled changes)",
                s.conflicts
            )),
        "{s:?}: {}",
        run.stdout
    );
    assert_eq!(run.code, i32::from(s.conflicts > 0), "{}", run.stdout);
}

/// A quarantine (a deletion) where the server has no whole-document guard (FerretDB) is
/// refused without `--guard top-level`: exit 2, nothing written, no journal. With the
/// flag, or on MongoDB, it applies.
#[test]
fn deleting_without_a_whole_document_guard_needs_consent() {
    let Some(uri) = server() else { return };
    let f = Fixture::new("consent", &uri);
    let w = &f.w;
    let run = plan(
        w,
        &f.source,
        "q.plan",
        &[
            "--template",
            "quarantine-orphans",
            "--collection",
            "orders",
            "--param",
            "field=customer_id",
        ],
    );
    assert_eq!(run.code, 0, "{}", run.stderr);
    let run = w.docsweep(&["repair", "apply", "q.plan", "--yes", "--audit", "a.jsonl"]);
    if top_level_only(&f.client) {
        assert_eq!(run.code, 2, "{}{}", run.stdout, run.stderr);
        assert!(
            run.stderr.contains("FerretDB")
                && run.stderr.contains("not atomically")
                && run
                    .stderr
                    .contains("planned replacements, deletions or quarantines")
                && run.stderr.contains("Pass --guard top-level"),
            "{}",
            run.stderr
        );
        assert!(f.orders() == f.original, "nothing was written");
        assert!(!w.path().join("q.plan.journal").exists(), "no journal");
        let run = apply(w, "q.plan", &["--yes"]);
        assert_eq!(run.code, 0, "{}{}", run.stdout, run.stderr);
        assert!(
            run.stdout.contains("guard: top-level fields"),
            "{}",
            run.stdout
        );
    } else {
        assert_eq!(run.code, 0, "{}{}", run.stdout, run.stderr);
        assert!(!run.stdout.contains("guard:"), "{}", run.stdout);
    }
    let quarantined = f
        .plan("q.plan")
        .entries
        .iter()
        .filter(|e| e.action.as_str() == "quarantine")
        .count();
    assert!(quarantined > 0);
    assert_eq!(f.orders().len(), f.original.len() - quarantined);
}

/// One plan from a live check's report (`--from-report`), applied to the server with one
/// journal: a planned document edited between plan and apply is a conflict and keeps the
/// edit; every other claimed finding is gone; undo brings every other document back byte
/// for byte. Without consent to the weaker guard, FerretDB refuses the whole plan before
/// writing anything.
#[test]
fn one_plan_from_a_live_report_applies_with_one_journal_and_undoes() {
    let Some(uri) = server() else { return };
    let w = Workdir::new();
    let (client, db) = live_and_dump(&uri, &w, "fromreport");
    let baseline = format!("dump:{}", example().join("data/baseline").display());
    let source = with_db(&uri, &db);
    let (code, _) = check(&w, &source, "fr0", &["--baseline", &baseline]);
    assert_eq!(code, 1);
    let run = w.docsweep(&[
        "repair",
        "plan",
        "--from-report",
        "fr0",
        "--source",
        &source,
        "--out",
        "all.plan",
    ]);
    assert_eq!(run.code, 0, "{}{}", run.stdout, run.stderr);
    let plan = Plan::read(&w.path().join("all.plan")).unwrap();
    assert_eq!(plan.collections(), ["customers", "orders"]);
    let originals: BTreeMap<&str, BTreeMap<String, Vec<u8>>> = ["customers", "orders"]
        .into_iter()
        .map(|c| (c, contents(&client, &db, c)))
        .collect();

    if top_level_only(&client) {
        let run = w.docsweep(&[
            "repair",
            "apply",
            "all.plan",
            "--yes",
            "--audit",
            "audit.jsonl",
        ]);
        assert_eq!(run.code, 2, "{}{}", run.stdout, run.stderr);
        assert!(run.stderr.contains("--guard top-level"), "{}", run.stderr);
        for c in ["customers", "orders"] {
            assert!(
                contents(&client, &db, c) == originals[c],
                "{c}: nothing written"
            );
        }
        assert!(!w.path().join("all.plan.journal").exists());
    }

    // A planned order is edited by hand between the plan and the apply.
    let edited = plan
        .entries
        .iter()
        .find(|e| plan.collection_of(e) == "orders" && e.action.as_str() == "replace")
        .unwrap();
    let edited_id = docsweep::scan::id_text(&edited.id);
    client
        .database(&db)
        .collection::<Document>("orders")
        .update_one(
            id_filter(&edited.id),
            doc! {"$set": {"note": "edited by hand"}},
        )
        .run()
        .unwrap();
    let run = apply(&w, "all.plan", &["--yes"]);
    assert_eq!(run.code, 1, "{}{}", run.stdout, run.stderr);
    let n = plan.entries.len();
    assert!(
        run.stdout.contains(&format!("applied {} change(s)", n - 1))
            && run.stdout.contains("1 conflict(s)")
            && run.stdout.contains(&format!("({n} planned entries)")),
        "{}",
        run.stdout
    );
    assert!(
        run.stdout.contains("changed since the plan"),
        "{}",
        run.stdout
    );
    let (_, after) = check(&w, &source, "fr1", &["--baseline", &baseline]);
    for c in after["collections"].as_array().unwrap() {
        let rec = &c["reconciliation"];
        let edited_here = u64::from(c["name"] == "orders");
        assert_eq!(rec["missing"], 0, "{c}");
        assert_eq!(
            rec["changed"], edited_here,
            "only the edited order is left: {c}"
        );
        for r in c["remediation"].as_array().unwrap() {
            assert!(
                ["added", "changed", "invalid"].contains(&r["finding"].as_str().unwrap())
                    || r["finding"].as_str().unwrap().starts_with("other_version"),
                "{r}"
            );
        }
    }
    let edited_now = contents(&client, &db, "orders")[&edited_id].clone();

    let run = undo(&w, "all.plan.journal", &["--yes"]);
    assert_eq!(run.code, 0, "{}{}", run.stdout, run.stderr);
    // The conflict was never written, so it is not journaled as a change.
    assert!(
        run.stdout.contains(&format!("undone {} change(s)", n - 1))
            && run.stdout.contains("0 conflict(s)"),
        "{}",
        run.stdout
    );
    for c in ["customers", "orders"] {
        let now = contents(&client, &db, c);
        assert_eq!(now.len(), originals[c].len(), "{c}");
        for (id, bytes) in &originals[c] {
            if c == "orders" && *id == edited_id {
                assert!(now[id] == edited_now, "the hand edit stays");
            } else {
                assert!(now[id] == *bytes, "{c} _id {id} is back as it was");
            }
        }
    }
    let _ = client.database(&db).drop().run();
}
