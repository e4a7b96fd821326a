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

/// Every document of a collection, by `_id` text, as its exact BSON bytes.
fn contents(client: &Client, db: &str, coll: &str) -> BTreeMap<String, Vec<u8>> {
    let c = client.database(db).collection::<RawDocumentBuf>(coll);
    let mut out = BTreeMap::new();
    for d in c.find(doc! {}).run().unwrap() {
        let d = d.unwrap();
        let v = docsweep::value::from_bson(d.as_bytes()).unwrap().value;
        let id = docsweep::scan::id_text(&v["_id"]);
        assert!(
            out.insert(id.clone(), d.as_bytes().to_vec()).is_none(),
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

fn apply(w: &Workdir, plan: &str, extra: &[&str]) -> crate::util::Run {
    let mut all = vec!["repair", "apply", plan, "--audit", "audit.jsonl"];
    all.extend_from_slice(extra);
    w.docsweep(&all)
}

fn undo(w: &Workdir, journal: &str, extra: &[&str]) -> crate::util::Run {
    let mut all = vec!["repair", "undo", journal, "--audit", "audit.jsonl"];
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
        assert_eq!(run.code, 1, "{}", run.stderr);
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
    assert_eq!(f.orders(), f.original, "undo restores the original bytes");
    // Undoing again finds everything undone.
    let run = undo(w, &j, &["--yes"]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert!(run.stdout.contains("40 already undone"), "{}", run.stdout);

    let audit = w.read("audit.jsonl");
    assert_eq!(audit.lines().count(), 4, "{audit}");
    assert!(audit.contains(&f.db), "{audit}");
}

#[test]
fn a_document_changed_since_the_plan_is_a_conflict_and_left_alone() {
    let Some(uri) = server() else { return };
    let f = Fixture::new("conflict", &uri);
    let p = f.plan("revert.plan");
    let victim = p.entries[3].id.clone();
    let id = docsweep::scan::id_text(&victim);
    let coll = f.client.database(&f.db).collection::<Document>("orders");
    let filter = Document::from_reader(
        &docsweep::value::to_bson(&serde_json::json!({ "_id": victim })).unwrap()[..],
    )
    .unwrap();
    let r = coll
        .update_one(filter, doc! {"$set": {"note": "changed by someone"}})
        .run()
        .unwrap();
    assert_eq!(r.modified_count, 1, "the victim {id} was changed");
    let changed = f.orders();

    let run = apply(&f.w, "revert.plan", &["--yes"]);
    assert_eq!(run.code, 1, "a conflict: {}{}", run.stdout, run.stderr);
    assert!(
        run.stdout.contains("applied 39 change(s)"),
        "{}",
        run.stdout
    );
    assert!(
        run.stdout.contains(&format!("conflict: _id {id}")),
        "{}",
        run.stdout
    );
    assert_eq!(f.orders()[&id], changed[&id], "the conflict is left alone");

    // Undo restores the 39 and leaves the changed document as it is.
    let run = undo(&f.w, "revert.plan.journal", &["--yes"]);
    assert_eq!(run.code, 0, "{}{}", run.stdout, run.stderr);
    assert_eq!(f.orders(), changed);
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
    assert_eq!(run.code, 1, "{}", run.stderr);
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
    let after_fp: BTreeMap<String, u128> = p
        .entries
        .iter()
        .map(|e| {
            (
                docsweep::scan::id_text(&e.id),
                docsweep::value::fingerprint(e.after.as_ref().unwrap()).ordered,
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
    assert_eq!(f.orders(), f.original);

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
        assert_eq!(f.orders(), f.original, "{name}: byte for byte");
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
        assert!(run.code <= 1, "{finding}: {cmd}: {}", run.stderr);
        if run.code == 0 {
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
                assert_eq!(dumped.len(), on_server.len(), "{coll}");
                for d in dumped {
                    let v = docsweep::value::from_bson(d.as_bytes()).unwrap().value;
                    let id = docsweep::scan::id_text(&v["_id"]);
                    assert_eq!(on_server[&id], d.as_bytes(), "{coll} _id {id}");
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
        assert_eq!(run.code, 1, "{}", run.stderr);
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
