//! Applying a plan to a dump: a new dump directory, each changed collection rewritten in
//! one pass with one journal; every entry ends applied, already in place, or a conflict.

use crate::repair::plan::Action;
use std::collections::HashMap;
use std::fs::File;
use std::io::Write;
use std::path::Path;

use serde_json::{json, Value};

use super::files::{
    bson_name, copy_others, dump_db_dir, dump_root, fresh_partial, lock_out, offset_of, open_in,
    open_out, refuse_overlap, sync_tree, write_quarantine, Output, Passthrough,
};
use super::metadata::{rewrite_metadata, settle_indexes};
use super::{
    conflicts_json, conflicts_of, failpoint, io, plan_checksum, tally, ApplyError, Outcome,
};
use crate::repair::image::after_bytes;
use crate::repair::journal::{self, Journal};
use crate::repair::matcher::{Found, Matcher, Settled, Want};
use crate::repair::plan::{Entry, Plan};
use crate::repair::settle::Reason;
use crate::source::{BsonReader, RecordReader, BATCH_RECORDS};

/// An output that exists: this plan's (what that run did, from its journal) or refused.
fn applied_before(final_dir: &Path, checksum: &str) -> Result<Outcome, ApplyError> {
    let marker = final_dir.join(".docsweep").join("applied");
    let journal_path = final_dir.join(".docsweep").join("journal");
    let done = std::fs::read_to_string(&marker).unwrap_or_default();
    if done.trim() != checksum {
        return Err(ApplyError::Usage(format!(
            "{} exists and is not the output of this plan: choose a new --out",
            final_dir.display()
        )));
    }
    let read = journal::read(&journal_path)?;
    // The output is published only when complete: a cut finish line lost the counts, not
    // the work; the journaled changes are what was applied.
    let finish = read
        .records
        .iter()
        .find(|r| r["kind"] == "finish")
        .cloned()
        .unwrap_or_else(|| {
            let applied: usize = read
                .records
                .iter()
                .filter(|r| r["kind"] == "batch")
                .map(|r| r["entries"].as_array().map_or(0, Vec::len))
                .sum();
            json!({"applied": applied})
        });
    Ok(Outcome {
        already_done: true,
        applied: finish["applied"].as_u64().unwrap_or(0),
        already: finish["already"].as_u64().unwrap_or(0),
        conflicts: conflicts_of(&finish),
        output: final_dir.to_path_buf(),
        journal: journal_path,
    })
}

/// Applies `plan` to the dump it was made from, writing a new dump under `out_root`.
///
/// Every entry of the plan ends exactly once: applied, already in its after-state, or a
/// conflict with its reason (see [`super::matcher`]); the three counts add up to the
/// plan's entries, or no output is published.
pub fn apply_dump(
    plan: &Plan,
    plan_path: &Path,
    out_root: &Path,
    max_changes: Option<u64>,
) -> Result<Outcome, ApplyError> {
    let input = DumpInput::open(plan)?;
    let without_offsets;
    let plan = match input.archive {
        Some(_) => {
            without_offsets = plan_without_offsets(plan);
            &without_offsets
        }
        None => plan,
    };
    let db_name = input.db_name.as_str();
    let checksum = plan_checksum(plan_path)?;
    let final_dir = out_root.join(db_name);
    if final_dir.exists() {
        return applied_before(&final_dir, &checksum);
    }
    // A dump is never modified in place: the output is neither inside the source nor around it.
    refuse_overlap(
        &dump_root(plan.header.source.as_str(), &input.in_dir),
        out_root,
    )?;
    check_max_changes(plan.entries.len() as u64, max_changes)?;
    std::fs::create_dir_all(out_root).map_err(|e| io(out_root, e))?;
    let _lock = lock_out(out_root, db_name)?;
    let partial = fresh_partial(out_root, db_name)?;
    let extracted = out_root.join(format!(".{db_name}.docsweep-archive"));
    let in_dir = match &input.archive {
        Some(a) => {
            extract_archive(a, &extracted, &partial)?;
            extracted.clone()
        }
        None => input.in_dir.clone(),
    };
    std::fs::create_dir_all(partial.join(".docsweep")).map_err(|e| io(&partial, e))?;
    let mut journal = Journal::create(&partial.join(".docsweep").join("journal"))?;
    journal.append(&json!({
        "kind": "header", "format": journal::FORMAT, "plan": plan_path.display().to_string(),
        "plan_checksum": checksum,
        "target": format!("dump:{}", std::path::absolute(&final_dir).unwrap_or_else(|_| final_dir.clone()).display()),
        "source": plan.header.source.as_str(), "database": db_name, "collection": plan.collection(),
        "collections": plan.collections(), "template": plan.header.template,
        "params": plan.header.params, "started_at": crate::report::now_rfc3339(),
        "user": crate::os::actor(),
    }))?;
    let mut result = Outcome {
        output: final_dir.clone(),
        journal: final_dir.join(".docsweep").join("journal"),
        ..Outcome::default()
    };
    let mut settled: Vec<Option<Settled>> = vec![None; plan.entries.len()];
    // The files of the collections the plan changes are rewritten; the others are copied.
    let collections = plan.collections();
    copy_others(&in_dir, &partial, &rewritten_files(&in_dir, &collections)?)?;
    let mut cx = DumpApply {
        plan,
        in_dir: &in_dir,
        partial: &partial,
        journal: &mut journal,
        settled: &mut settled,
        batch_no: 0,
    };
    for coll in &collections {
        cx.collection(coll)?;
    }
    tally(plan, &settled, &mut result)?;
    journal.append(&json!({
        "kind": "finish", "entries": plan.entries.len(), "applied": result.applied,
        "already": result.already, "conflicts": conflicts_json(&result.conflicts),
    }))?;
    publish(&partial, &final_dir, &checksum)?;
    if input.archive.is_some() {
        let _ = std::fs::remove_dir_all(&extracted);
    }
    if let Ok(d) = File::open(out_root) {
        let _ = d.sync_all();
    }
    Ok(result)
}

/// The dump a plan was made from: its database folder, or an archive read as the dump
/// folder its collections make (extracted under the output's lock, removed when done).
struct DumpInput {
    archive: Option<crate::source::Source>,
    /// The database folder; for an archive, the archive file (for the overlap check)
    /// until it is extracted.
    in_dir: std::path::PathBuf,
    db_name: String,
}

impl DumpInput {
    fn open(plan: &Plan) -> Result<Self, ApplyError> {
        let source = plan.header.source.as_str();
        let db = plan.header.database.as_deref();
        let spec = crate::source::SourceSpec::parse(source)
            .map_err(|e| ApplyError::Usage(e.to_string()))?;
        if !spec.is_archive() {
            let (in_dir, db_name) = dump_db_dir(source, db)?;
            return Ok(DumpInput {
                archive: None,
                in_dir,
                db_name,
            });
        }
        let archive = crate::source::Source::open(&spec, db)?;
        let in_dir = archive
            .collections
            .first()
            .map(|c| c.file.clone())
            .ok_or_else(|| ApplyError::Usage(format!("{spec}: no collections")))?;
        let db_name = archive.database.clone().unwrap_or_default();
        Ok(DumpInput {
            archive: Some(archive),
            in_dir,
            db_name,
        })
    }
}

/// An archive's records are found by `_id` and fingerprint, since the plan's offsets count
/// from the start of the archive.
fn plan_without_offsets(plan: &Plan) -> Plan {
    Plan {
        header: plan.header.clone(),
        entries: plan
            .entries
            .iter()
            .map(|e| Entry {
                at: None,
                ..e.clone()
            })
            .collect(),
    }
}

fn check_max_changes(changes: u64, max_changes: Option<u64>) -> Result<(), ApplyError> {
    match max_changes {
        Some(max) if changes > max => Err(ApplyError::Usage(format!(
            "the plan changes {changes} documents and indexes, more than --max-changes {max}"
        ))),
        _ => Ok(()),
    }
}

/// Extracts `archive` into a fresh `extracted` folder; on failure removes it and the
/// partial output.
fn extract_archive(
    archive: &crate::source::Source,
    extracted: &Path,
    partial: &Path,
) -> Result<(), ApplyError> {
    if extracted.exists() {
        std::fs::remove_dir_all(extracted).map_err(|e| io(extracted, e))?;
    }
    std::fs::create_dir_all(extracted).map_err(|e| io(extracted, e))?;
    if let Err(e) = archive.extract_archive(extracted) {
        let _ = std::fs::remove_dir_all(extracted);
        let _ = std::fs::remove_dir_all(partial);
        return Err(e.into());
    }
    Ok(())
}

/// The file names of the collections the plan rewrites.
fn rewritten_files(in_dir: &Path, collections: &[String]) -> Result<Vec<String>, ApplyError> {
    collections
        .iter()
        .map(|coll| {
            let (in_file, _) = bson_name(in_dir, coll).ok_or_else(|| {
                ApplyError::Usage(format!("{}: no {coll}.bson", in_dir.display()))
            })?;
            Ok(in_file
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default())
        })
        .collect()
}

/// Marks the complete output as this plan's, makes it durable and publishes it under its
/// final name.
fn publish(partial: &Path, final_dir: &Path, checksum: &str) -> Result<(), ApplyError> {
    std::fs::write(partial.join(".docsweep").join("applied"), checksum)
        .map_err(|e| io(partial, e))?;
    sync_tree(partial)?;
    failpoint("apply.before-rename");
    std::fs::rename(partial, final_dir).map_err(|e| io(final_dir, e))?;
    failpoint("apply.after-rename");
    Ok(())
}

/// A dump apply in progress: the collections are rewritten one by one into `partial`,
/// with one journal.
pub(super) struct DumpApply<'a> {
    plan: &'a Plan,
    in_dir: &'a Path,
    partial: &'a Path,
    journal: &'a mut Journal,
    settled: &'a mut [Option<Settled>],
    /// The next journal batch number (unique across collections).
    batch_no: u64,
}

/// One collection's file being rewritten.
struct Rewrite<'p> {
    coll: &'p str,
    in_file: std::path::PathBuf,
    /// The plan's entries that change a document in place, by matcher index.
    in_place: Vec<usize>,
    matcher: Matcher,
    /// `_id` text → (entry, fingerprint of its after-image), for the inserts.
    inserts: HashMap<String, (usize, u128)>,
    /// Quarantined images, by target.
    quarantine: HashMap<String, Vec<Value>>,
}

/// What one input record becomes: (offset, length in the input, bytes to write; None for
/// an unreadable region).
type Write1 = (u64, u64, Option<Vec<u8>>);

/// A batch's records, rewritten, with the journal lines of its changes.
#[derive(Default)]
struct Rewritten {
    writes: Vec<Write1>,
    journaled: Vec<Value>,
    /// Which writes are journaled changes (their output position goes in `done`).
    journaled_writes: Vec<usize>,
}

impl DumpApply<'_> {
    /// Rewrites one collection's file: its entries applied, every other record kept.
    fn collection(&mut self, coll: &str) -> Result<(), ApplyError> {
        let plan = self.plan;
        let mine: Vec<usize> = (0..plan.entries.len())
            .filter(|&i| plan.collection_of(&plan.entries[i]) == coll)
            .collect();
        settle_indexes(self.in_dir, coll, plan, &mine, self.journal, self.settled)?;
        let (in_file, gzip) = bson_name(self.in_dir, coll).ok_or_else(|| {
            ApplyError::Usage(format!("{}: no {coll}.bson", self.in_dir.display()))
        })?;
        let out_name = in_file
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        let mut rw = self.targets(coll, &mine, in_file.clone());
        let mut out = open_out(&self.partial.join(&out_name), gzip)?;
        let mut reader = BsonReader::new(open_in(&in_file, gzip)?, None, in_file.clone());
        let mut pass = Passthrough::new(open_in(&in_file, gzip)?);
        while let Some(batch) = reader.next_batch(BATCH_RECORDS)? {
            let mut done = Rewritten::default();
            for rec in &batch.records {
                self.record(&mut rw, &mut done, batch.bytes(rec), rec)?;
            }
            self.write_batch(&rw, done, &mut pass, &mut out)?;
        }
        self.append_inserts(&rw, &mut out)?;
        pass.finish(&mut out).map_err(|e| io(&in_file, e))?;
        out.finish(&self.partial.join(&out_name))?;
        for (to, docs) in std::mem::take(&mut rw.quarantine) {
            write_quarantine(self.partial, coll, &to, &docs, gzip)?;
        }
        let entries: Vec<Entry> = mine.iter().map(|&i| plan.entries[i].clone()).collect();
        rewrite_metadata(self.partial, coll, &entries, false)?;
        failpoint("apply.collection-done");
        for (k, s) in rw
            .matcher
            .finish(Reason::ChangedSincePlan)
            .into_iter()
            .enumerate()
        {
            self.settled[rw.in_place[k]] = Some(s);
        }
        Ok(())
    }

    /// The documents the plan changes in place (found by `_id` and fingerprint), and those
    /// it inserts (one per `_id`: a second insert of one is a conflict).
    fn targets<'p>(
        &mut self,
        coll: &'p str,
        mine: &[usize],
        in_file: std::path::PathBuf,
    ) -> Rewrite<'p> {
        let plan = self.plan;
        let in_place: Vec<usize> = mine
            .iter()
            .copied()
            .filter(|&i| !plan.entries[i].id.is_null() && plan.entries[i].action != Action::Insert)
            .collect();
        let matcher = Matcher::new(
            in_place
                .iter()
                .map(|&i| want_of(&plan.entries[i]))
                .collect(),
        );
        let mut inserts: HashMap<String, (usize, u128)> = HashMap::new();
        for &i in mine {
            let e = &plan.entries[i];
            if e.action != Action::Insert {
                continue;
            }
            let fp = crate::value::fingerprint(e.after.as_ref().unwrap_or(&Value::Null)).ordered;
            match inserts.entry(crate::scan::id_text(&e.id)) {
                std::collections::hash_map::Entry::Occupied(_) => {
                    self.settled[i] = Some(Settled::Conflict(Reason::SecondEntry));
                }
                std::collections::hash_map::Entry::Vacant(v) => {
                    v.insert((i, fp));
                }
            }
        }
        Rewrite {
            coll,
            in_file,
            in_place,
            matcher,
            inserts,
            quarantine: HashMap::new(),
        }
    }

    /// What one input record becomes.
    fn record(
        &mut self,
        rw: &mut Rewrite<'_>,
        done: &mut Rewritten,
        bytes: &[u8],
        rec: &crate::source::Record,
    ) -> Result<(), ApplyError> {
        let (at, len) = (offset_of(rec.location), bytes.len() as u64);
        if rec.broken.is_some() {
            done.writes.push((at, 0, None));
            return Ok(());
        }
        let keep = |done: &mut Rewritten| done.writes.push((at, len, Some(bytes.to_vec())));
        let Ok(decoded) = crate::value::from_bson(bytes) else {
            keep(done);
            return Ok(());
        };
        let doc = decoded.value;
        let id = doc.get("_id").map(crate::scan::id_text).unwrap_or_default();
        if let Some((i, after_fp)) = rw.inserts.get(&id) {
            // An insert whose `_id` exists again is a conflict, never a duplicate.
            let fp = crate::value::fingerprint(&doc).ordered;
            self.settled[*i] = Some(match self.settled[*i] {
                None if fp == *after_fp => Settled::Already,
                _ => Settled::Conflict(Reason::IdTaken),
            });
        }
        if !rw.matcher.wants(&id) {
            keep(done);
            return Ok(());
        }
        let fp = crate::value::fingerprint(&doc).ordered;
        let Found::Act(k) = rw.matcher.offer(&id, fp, at) else {
            keep(done);
            return Ok(());
        };
        let entry = &self.plan.entries[rw.in_place[k]];
        // The original bytes too: undo restores them exactly (relaxed JSON cannot tell
        // Int32 from Int64).
        use base64::Engine as _;
        let raw = base64::engine::general_purpose::STANDARD.encode(bytes);
        let mut j = json!({"action": entry.action, "_id": entry.id, "before": doc, "before_bson": raw, "after": entry.after});
        if let Some(to) = &entry.to {
            j["to"] = Value::from(to.as_str());
        }
        done.journaled.push(j);
        done.journaled_writes.push(done.writes.len());
        let written = match entry.action {
            Action::Replace => {
                after_bytes(Some(bytes), entry.after.as_ref().unwrap_or(&Value::Null))?
            }
            Action::Quarantine => {
                // What leaves the collection is what the quarantine keeps, as on a live
                // deployment: the record as it is in the dump.
                let to = entry.to.clone().unwrap_or_default();
                rw.quarantine.entry(to).or_default().push(doc);
                Vec::new()
            }
            // A delete.
            _ => Vec::new(),
        };
        done.writes.push((at, len, Some(written)));
        Ok(())
    }

    /// Journals a batch's changes, then writes it; then journals where each change lies
    /// in the new file (undo puts a removed record back exactly there).
    fn write_batch(
        &mut self,
        rw: &Rewrite<'_>,
        done: Rewritten,
        pass: &mut Passthrough,
        out: &mut Output,
    ) -> Result<(), ApplyError> {
        let in_file = &rw.in_file;
        // The journal holds the batch before any of it is written.
        failpoint("apply.before-batch");
        if !done.journaled.is_empty() {
            self.journal.append(&json!({"kind": "batch", "n": self.batch_no, "collection": rw.coll, "entries": done.journaled}))?;
            failpoint("apply.batch-journaled");
        }
        let mut out_at = Vec::with_capacity(done.journaled_writes.len());
        let mut next_journaled = done.journaled_writes.iter().peekable();
        for (w, (at, len, bytes)) in done.writes.into_iter().enumerate() {
            match bytes {
                Some(b) => {
                    pass.record(at, len, out).map_err(|e| io(in_file, e))?;
                    if next_journaled.next_if_eq(&&w).is_some() {
                        out_at.push(out.position());
                    }
                    out.write_all(&b).map_err(|e| io(in_file, e))?;
                }
                None => pass.broken(at, out).map_err(|e| io(in_file, e))?,
            }
        }
        if !done.journaled.is_empty() {
            self.journal
                .append(&json!({"kind": "done", "n": self.batch_no, "out_at": out_at}))?;
            failpoint("apply.batch-done");
        }
        self.batch_no += 1;
        Ok(())
    }

    /// Restored documents (inserts) go at the end, before a trailing unreadable region
    /// (which must stay last: its length prefix would swallow anything after it).
    fn append_inserts(&mut self, rw: &Rewrite<'_>, out: &mut Output) -> Result<(), ApplyError> {
        let plan = self.plan;
        let mut to_insert: Vec<usize> = rw
            .inserts
            .values()
            .map(|&(i, _)| i)
            .filter(|&i| self.settled[i].is_none())
            .collect();
        if to_insert.is_empty() {
            return Ok(());
        }
        to_insert.sort_unstable();
        let journaled: Vec<Value> = to_insert
            .iter()
            .map(|&i| {
                let e = &plan.entries[i];
                json!({"action": "insert", "_id": e.id, "before": Value::Null, "after": e.after})
            })
            .collect();
        failpoint("apply.before-batch");
        self.journal.append(&json!({"kind": "batch", "n": self.batch_no, "collection": rw.coll, "entries": journaled}))?;
        failpoint("apply.batch-journaled");
        let mut out_at = Vec::with_capacity(to_insert.len());
        for &i in &to_insert {
            let e = &plan.entries[i];
            let b = crate::value::to_bson(e.after.as_ref().unwrap_or(&Value::Null))
                .map_err(|err| ApplyError::Usage(format!("insert: {err}")))?;
            out_at.push(out.position());
            out.write_all(&b).map_err(|err| io(&rw.in_file, err))?;
            self.settled[i] = Some(Settled::Acted);
        }
        self.journal
            .append(&json!({"kind": "done", "n": self.batch_no, "out_at": out_at}))?;
        failpoint("apply.batch-done");
        self.batch_no += 1;
        Ok(())
    }
}

/// What to look for in the input for an entry that changes a document in place.
pub(super) fn want_of(e: &Entry) -> Want {
    let done = match e.action {
        Action::Replace => e
            .after
            .as_ref()
            .map(|a| crate::value::fingerprint(a).ordered),
        _ => None,
    };
    Want {
        id: crate::scan::id_text(&e.id),
        // An entry without a before-image never matches: it can only be a conflict.
        expect: e.before.unwrap_or(0),
        done,
        at: e.at,
        absent_is_done: e.action == Action::Delete,
    }
}
