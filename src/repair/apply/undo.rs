//! Undoing a dump apply from its journal: a new dump where every journaled change is
//! reversed (compare-and-set against the after-image), removed records back in their
//! places, byte for byte.

use std::collections::HashMap;
use std::io::Write;
use std::path::{Path, PathBuf};

use serde_json::Value;

use super::files::{
    bson_name, copy_others, fresh_partial, lock_out, metadata_file, offset_of, open_in, open_out,
    refuse_overlap, sync_tree, write_text, Output, Passthrough,
};
use super::metadata::rewrite_metadata;
use super::{entry_label, io, ApplyError, Conflict, Outcome, Reason};
use crate::repair::journal;
use crate::repair::matcher::{Found, Matcher, Settled, Want};
use crate::repair::plan::{Action, Entry};
use crate::source::{BsonReader, RecordReader, BATCH_RECORDS};

/// The applied dump a journal lives in (`<db>/.docsweep/journal`), found wherever it was
/// moved and whatever the working directory; only the very output of this journal's apply
/// (its `applied` marker holds the plan's checksum). None for a journal kept elsewhere,
/// whose recorded target is then read.
fn applied_dump_beside<'j>(
    journal_path: &'j Path,
    header: &Value,
    collections: &[String],
) -> Option<&'j Path> {
    journal_path
        .parent()
        .filter(|p| p.file_name().is_some_and(|n| n == ".docsweep"))
        .and_then(Path::parent)
        .map(|d| {
            if d.as_os_str().is_empty() {
                Path::new(".")
            } else {
                d
            }
        })
        .filter(|d| {
            let marker = d.join(".docsweep").join("applied");
            std::fs::read_to_string(marker).is_ok_and(|m| m.trim() == header["plan_checksum"])
        })
        .filter(|d| collections.iter().all(|c| bson_name(d, c).is_some()))
}

/// Undoes an applied dump journal: writes a new dump under `out_root` where every
/// journaled change is reversed (compare-and-set against the after-image).
pub fn undo_dump(journal_path: &Path, out_root: &Path) -> Result<Outcome, ApplyError> {
    let read = journal::read(journal_path)?;
    let header = &read.records[0];
    let collections = journal::collections(header);
    let target = header["target"].as_str().unwrap_or_default();
    let beside = applied_dump_beside(journal_path, header, &collections);
    let recorded = PathBuf::from(target.strip_prefix("dump:").unwrap_or(target));
    let in_dir = match beside {
        Some(d) => d.to_path_buf(),
        None => recorded.clone(),
    };
    let in_dir = in_dir.canonicalize().unwrap_or(in_dir);
    // The database keeps its name, whatever the folder of a moved dump is called now.
    let db_name = header["database"]
        .as_str()
        .map(str::to_string)
        .or_else(|| {
            recorded
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
        })
        .unwrap_or_default();
    let final_dir = out_root.join(&db_name);
    if final_dir.exists() {
        return Err(ApplyError::Usage(format!(
            "{} exists: choose a new --out",
            final_dir.display()
        )));
    }
    // The applied dump is read, never written: the undone one goes outside it.
    refuse_overlap(&in_dir, out_root)?;
    let changes = journaled_changes(&read, journal_path)?;
    std::fs::create_dir_all(out_root).map_err(|e| io(out_root, e))?;
    let _lock = lock_out(out_root, &db_name)?;
    let partial = fresh_partial(out_root, &db_name)?;
    let mut skip = Vec::new();
    for coll in &collections {
        let (in_file, _) = bson_name(&in_dir, coll)
            .ok_or_else(|| ApplyError::Usage(format!("{}: no {coll}.bson", in_dir.display())))?;
        skip.push(
            in_file
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default(),
        );
    }
    let quarantine_files: Vec<String> = std::fs::read_dir(&in_dir)
        .map_err(|e| io(&in_dir, e))?
        .filter_map(std::result::Result::ok)
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.ends_with("_quarantine.bson") || n.ends_with("_quarantine.bson.gz"))
        .collect();
    skip.extend(quarantine_files.iter().cloned());
    copy_others(&in_dir, &partial, &skip)?;
    let _ = std::fs::remove_dir_all(partial.join(".docsweep"));
    let mut result = Outcome {
        output: final_dir.clone(),
        journal: journal_path.to_path_buf(),
        ..Outcome::default()
    };
    let mut settled: Vec<Option<Settled>> = vec![None; changes.len()];
    for coll in &collections {
        let mine: Vec<usize> = (0..changes.len())
            .filter(|&i| changes[i].collection == *coll)
            .collect();
        undo_collection(&in_dir, &partial, coll, &changes, &mine, &mut settled)?;
    }
    unquarantine(&in_dir, &partial, &quarantine_files, &changes, &settled)?;
    for coll in &collections {
        undo_indexes(&read, &partial, coll, &collections, &mut result)?;
    }
    for (c, s) in changes.iter().zip(&settled) {
        match s {
            Some(Settled::Acted) => result.applied += 1,
            Some(Settled::Already) => result.already += 1,
            Some(Settled::Conflict(reason)) => result.conflicts.push(Conflict {
                id: c.id.clone(),
                reason: *reason,
            }),
            None => {
                return Err(ApplyError::Usage(format!(
                "internal error: journaled {} _id {} was not accounted for; nothing was published",
                c.action, c.id
            )))
            }
        }
    }
    sync_tree(&partial)?;
    std::fs::rename(&partial, &final_dir).map_err(|e| io(&final_dir, e))?;
    Ok(result)
}

/// Reverses one collection's journaled changes into `partial`.
pub(super) fn undo_collection(
    in_dir: &Path,
    partial: &Path,
    coll: &str,
    changes: &[Change],
    mine: &[usize],
    settled: &mut [Option<Settled>],
) -> Result<(), ApplyError> {
    let (in_file, gzip) = bson_name(in_dir, coll)
        .ok_or_else(|| ApplyError::Usage(format!("{}: no {coll}.bson", in_dir.display())))?;
    let out_name = in_file
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    // Replaced and inserted documents are found in the applied dump and reversed.
    let reversed: Vec<usize> = mine
        .iter()
        .copied()
        .filter(|&i| matches!(changes[i].action, Action::Replace | Action::Insert))
        .collect();
    let mut matcher = Matcher::new(
        reversed
            .iter()
            .map(|&i| {
                let c = &changes[i];
                Want {
                    id: c.id.clone(),
                    expect: crate::value::fingerprint(&c.after).ordered,
                    done: (c.action == Action::Replace)
                        .then(|| crate::value::fingerprint(&c.before).ordered),
                    at: c.out_at,
                    // A removed insert is already undone.
                    absent_is_done: c.action == Action::Insert,
                }
            })
            .collect(),
    );
    // Deleted and quarantined documents go back where they were, unless their `_id` is
    // there again.
    let mut restores: Vec<usize> = mine
        .iter()
        .copied()
        .filter(|&i| matches!(changes[i].action, Action::Delete | Action::Quarantine))
        .collect();
    restores.sort_by_key(|&i| changes[i].out_at.unwrap_or(u64::MAX));
    let present = ids_present(&in_file, gzip, &restores, changes)?;
    for &i in &restores {
        let c = &changes[i];
        settled[i] = match present.get(&c.id) {
            None => None,
            Some(fps) if fps.contains(&crate::value::fingerprint(&c.before).ordered) => {
                Some(Settled::Already)
            }
            Some(_) => Some(Settled::Conflict(Reason::IdTaken)),
        };
    }
    restores.retain(|&i| settled[i].is_none());
    let mut restores = restores.into_iter().peekable();

    let mut out = open_out(&partial.join(&out_name), gzip)?;
    let mut reader = BsonReader::new(open_in(&in_file, gzip)?, None, in_file.clone());
    let mut pass = Passthrough::new(open_in(&in_file, gzip)?);
    let mut put_back = |upto: u64, out: &mut Output, settled: &mut [Option<Settled>]| {
        while let Some(i) = restores.next_if(|&i| changes[i].out_at.unwrap_or(u64::MAX) <= upto) {
            out.write_all(&changes[i].before_bytes)
                .map_err(|e| io(&in_file, e))?;
            settled[i] = Some(Settled::Acted);
        }
        Ok::<(), ApplyError>(())
    };
    while let Some(batch) = reader.next_batch(BATCH_RECORDS)? {
        for rec in &batch.records {
            let bytes = batch.bytes(rec);
            let at = offset_of(rec.location);
            pass.advance(at, &mut out).map_err(|e| io(&in_file, e))?;
            put_back(at, &mut out, settled)?;
            if rec.broken.is_some() {
                pass.broken(at, &mut out).map_err(|e| io(&in_file, e))?;
                continue;
            }
            pass.record(at, bytes.len() as u64, &mut out)
                .map_err(|e| io(&in_file, e))?;
            let found = match crate::value::from_bson(bytes) {
                Ok(d) => {
                    let id = d
                        .value
                        .get("_id")
                        .map(crate::scan::id_text)
                        .unwrap_or_default();
                    if matcher.wants(&id) {
                        matcher.offer(&id, crate::value::fingerprint(&d.value).ordered, at)
                    } else {
                        Found::Other
                    }
                }
                Err(_) => Found::Other,
            };
            match found {
                Found::Act(k) if changes[reversed[k]].action == Action::Replace => out
                    .write_all(&changes[reversed[k]].before_bytes)
                    .map_err(|e| io(&in_file, e))?,
                // An inserted (restored) document is removed again.
                Found::Act(_) => {}
                _ => out.write_all(bytes).map_err(|e| io(&in_file, e))?,
            }
        }
    }
    put_back(u64::MAX, &mut out, settled)?;
    pass.finish(&mut out).map_err(|e| io(&in_file, e))?;
    out.finish(&partial.join(&out_name))?;
    for (k, s) in matcher
        .finish(Reason::ChangedSinceApply)
        .into_iter()
        .enumerate()
    {
        settled[reversed[k]] = Some(s);
    }
    Ok(())
}

/// The quarantine collections of the applied dump, without the documents that went back.
pub(super) fn unquarantine(
    in_dir: &Path,
    partial: &Path,
    quarantine_files: &[String],
    changes: &[Change],
    settled: &[Option<Settled>],
) -> Result<(), ApplyError> {
    // Quarantine collections lose the documents that went back.
    // By quarantine collection; older journals do not name it ("" : any of them).
    let mut back: HashMap<&str, std::collections::HashSet<&str>> = HashMap::new();
    for (c, s) in changes.iter().zip(settled) {
        if c.action == Action::Quarantine && *s == Some(Settled::Acted) {
            let target =
                c.to.as_deref()
                    .and_then(|t| t.strip_prefix("collection:"))
                    .unwrap_or("");
            back.entry(target).or_default().insert(c.id.as_str());
        }
    }
    for q in quarantine_files {
        let name = q.trim_end_matches(".gz").trim_end_matches(".bson");
        let went_back = |id: &str| {
            [name, ""]
                .iter()
                .any(|t| back.get(t).is_some_and(|ids| ids.contains(id)))
        };
        let from = in_dir.join(q);
        let gz = q.ends_with(".gz");
        let mut r = BsonReader::new(open_in(&from, gz)?, None, from.clone());
        let mut kept = Vec::new();
        while let Some(batch) = r.next_batch(BATCH_RECORDS)? {
            for rec in &batch.records {
                let bytes = batch.bytes(rec);
                let id = crate::value::from_bson(bytes)
                    .ok()
                    .and_then(|d| d.value.get("_id").map(crate::scan::id_text))
                    .unwrap_or_default();
                if !went_back(&id) {
                    kept.extend_from_slice(bytes);
                }
            }
        }
        if !kept.is_empty() {
            let to = partial.join(q);
            let mut out = open_out(&to, gz)?;
            out.write_all(&kept).map_err(|e| io(&to, e))?;
            out.finish(&to)?;
        }
    }
    Ok(())
}

/// Gives back a collection's metadata file as it was before its index actions.
pub(super) fn undo_indexes(
    read: &journal::Read,
    partial: &Path,
    coll: &str,
    collections: &[String],
    result: &mut Outcome,
) -> Result<(), ApplyError> {
    // Batches name their collection; in a journal over one collection they may not.
    let ours = |r: &&Value| {
        r["kind"] == "batch"
            && (r["collection"] == coll || (r["collection"].is_null() && collections.len() == 1))
    };
    let plan_entries: Vec<Entry> = read
        .records
        .iter()
        .filter(ours)
        .flat_map(|r| r["entries"].as_array().cloned().unwrap_or_default())
        .filter_map(|e| {
            Some(Entry {
                action: crate::repair::plan::Action::parse(e["action"].as_str()?)?,
                id: e["_id"].clone(),
                before: None,
                after: Some(e["after"].clone()),
                to: None,
                at: None,
                collection: None,
            })
        })
        .collect();
    let metadata_before = read
        .records
        .iter()
        .filter(ours)
        .find(|r| r["n"] == "indexes")
        .and_then(|r| r["metadata_before"].as_str());
    let index_changes = plan_entries.iter().filter(|e| e.id.is_null()).count() as u64;
    match (metadata_before, metadata_file(partial, coll)) {
        (Some(text), Some((meta, gzip))) => {
            write_text(&meta, gzip, text)?;
            result.applied += index_changes;
        }
        (_, None) => result
            .conflicts
            .extend(
                plan_entries
                    .iter()
                    .filter(|e| e.id.is_null())
                    .map(|e| Conflict {
                        id: entry_label(e),
                        reason: Reason::NoMetadata,
                    }),
            ),
        (None, Some(_)) => {
            rewrite_metadata(partial, coll, &plan_entries, true)?;
            result.applied += index_changes;
        }
    }
    Ok(())
}

/// One journaled document change of a dump apply, for undo.
pub(super) struct Change {
    /// The collection it changed.
    collection: String,
    /// Where a quarantined document went (`collection:NAME`; older journals do not say).
    to: Option<String>,
    action: Action,
    /// `_id` text.
    id: String,
    before: Value,
    /// The record as it was, byte for byte (re-encoded from `before` in older journals).
    before_bytes: Vec<u8>,
    after: Value,
    /// Where the change lies in the applied dump (older journals do not say).
    out_at: Option<u64>,
}

/// The document changes a dump journal records, in order, with their positions.
pub(super) fn journaled_changes(
    read: &journal::Read,
    path: &Path,
) -> Result<Vec<Change>, ApplyError> {
    let bad = |m: String| ApplyError::Usage(format!("{}: {m}", path.display()));
    let header_collection = read.records[0]["collection"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    let mut changes = Vec::new();
    for r in read.records.iter().filter(|r| r["kind"] == "batch") {
        if r["n"] == "indexes" {
            continue;
        }
        let out_at: Vec<Option<u64>> = read
            .records
            .iter()
            .find(|d| d["kind"] == "done" && d["n"] == r["n"])
            .and_then(|d| d["out_at"].as_array())
            .map(|a| a.iter().map(Value::as_u64).collect())
            .unwrap_or_default();
        for (k, e) in r["entries"].as_array().into_iter().flatten().enumerate() {
            if e["_id"].is_null() {
                continue;
            }
            let id = crate::scan::id_text(&e["_id"]);
            let before_bytes = match e["before_bson"].as_str() {
                Some(b64) => {
                    use base64::Engine as _;
                    base64::engine::general_purpose::STANDARD
                        .decode(b64)
                        .map_err(|_| bad(format!("entry {id}: bad before_bson")))?
                }
                None if e["before"].is_null() => Vec::new(),
                None => crate::value::to_bson(&e["before"])
                    .map_err(|m| bad(format!("entry {id}: {m}")))?,
            };
            changes.push(Change {
                collection: r["collection"]
                    .as_str()
                    .map(str::to_string)
                    .unwrap_or_else(|| header_collection.clone()),
                to: e["to"].as_str().map(str::to_string),
                action: Action::parse(e["action"].as_str().unwrap_or_default())
                    .ok_or_else(|| bad(format!("entry {id}: unknown action {}", e["action"])))?,
                id,
                before: e["before"].clone(),
                before_bytes,
                after: e["after"].clone(),
                out_at: out_at.get(k).copied().flatten(),
            });
        }
    }
    Ok(changes)
}

/// For the `_id`s of the documents to restore: the fingerprints of the records that carry
/// them in `file` now.
pub(super) fn ids_present(
    file: &Path,
    gzip: bool,
    restores: &[usize],
    changes: &[Change],
) -> Result<HashMap<String, Vec<u128>>, ApplyError> {
    let mut present: HashMap<String, Vec<u128>> = HashMap::new();
    if restores.is_empty() {
        return Ok(present);
    }
    let wanted: std::collections::HashSet<&str> =
        restores.iter().map(|&i| changes[i].id.as_str()).collect();
    let mut reader = BsonReader::new(open_in(file, gzip)?, None, file.to_path_buf());
    while let Some(batch) = reader.next_batch(BATCH_RECORDS)? {
        for rec in batch.records.iter().filter(|r| r.broken.is_none()) {
            let Ok(d) = crate::value::from_bson(batch.bytes(rec)) else {
                continue;
            };
            let id = d
                .value
                .get("_id")
                .map(crate::scan::id_text)
                .unwrap_or_default();
            if wanted.contains(id.as_str()) {
                let fp = crate::value::fingerprint(&d.value).ordered;
                present.entry(id).or_default().push(fp);
            }
        }
    }
    Ok(present)
}
