//! Applying a plan to a dump, and undoing it. A dump is never changed in place: the
//! result is a new dump directory, built under a temporary name and renamed into place
//! when complete, with the journal (before- and after-image of every change) inside it at
//! `.docsweep/journal`. Each planned document is compared with its planned
//! before-fingerprint (compare-and-set): a document that changed since the plan is left
//! as it is and reported as a conflict. Unreadable records are carried over byte for byte.
//!
//! Re-running an apply whose output exists with the same plan is a no-op; a crash leaves
//! only the temporary directory, which the next run discards and rebuilds.

use std::collections::HashMap;
use std::fs::File;
use std::io::{BufWriter, Read, Write};
use std::path::{Path, PathBuf};

use serde_json::{json, Value};

use super::image::after_bytes;
use super::journal::{self, Journal};
use super::matcher::{Found, Matcher, Settled, Want};
use super::plan::{Entry, Plan};
pub use super::settle::{Conflict, Reason};
use crate::source::{BsonReader, RecordReader, BATCH_RECORDS};

#[derive(Debug, thiserror::Error)]
pub enum ApplyError {
    #[error("{0}")]
    Usage(String),
    #[error("{path}: {message}")]
    Io { path: PathBuf, message: String },
    #[error(transparent)]
    Journal(#[from] journal::JournalError),
    #[error(transparent)]
    Source(#[from] crate::source::SourceError),
}

fn io(path: &Path, e: impl std::fmt::Display) -> ApplyError {
    ApplyError::Io {
        path: path.to_path_buf(),
        message: e.to_string(),
    }
}

/// What an apply or undo did.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Outcome {
    /// Entries this run carried out.
    pub applied: u64,
    /// Entries already in their after-state.
    pub already: u64,
    /// Entries left as they were, each with its reason.
    pub conflicts: Vec<Conflict>,
    pub already_done: bool,
    pub output: PathBuf,
    pub journal: PathBuf,
}

/// Crash injection for the crash-safety tests: when `DOCSWEEP_FAILPOINT` names this
/// point (`NAME`, or `NAME@K` for its K-th time), the process aborts on the spot (no
/// unwinding, no cleanup), like a SIGKILL.
pub(super) fn failpoint(name: &str) {
    static HITS: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let Ok(v) = std::env::var("DOCSWEEP_FAILPOINT") else {
        return;
    };
    let (point, nth) = match v.split_once('@') {
        Some((p, k)) => (p, k.parse::<u64>().unwrap_or(1)),
        None => (v.as_str(), 1),
    };
    if point == name && HITS.fetch_add(1, std::sync::atomic::Ordering::SeqCst) + 1 == nth {
        std::process::abort();
    }
}

/// A second, sequential view of the input stream, so that bytes the record reader could
/// not make into documents (unreadable regions) are carried over byte for byte.
struct Passthrough {
    raw: Box<dyn Read + Send>,
    pos: u64,
    /// Start of an unreadable region not yet copied.
    broken_from: Option<u64>,
}

impl Passthrough {
    fn new(raw: Box<dyn Read + Send>) -> Passthrough {
        Passthrough {
            raw,
            pos: 0,
            broken_from: None,
        }
    }

    /// Moves to `to`, copying into `out` what lies in an unreadable region.
    fn advance(&mut self, to: u64, out: &mut dyn Write) -> std::io::Result<()> {
        if to <= self.pos {
            return Ok(());
        }
        let n = to - self.pos;
        let mut take = (&mut self.raw).take(n);
        let copied = if self.broken_from.take().is_some() {
            std::io::copy(&mut take, out)?
        } else {
            std::io::copy(&mut take, &mut std::io::sink())?
        };
        self.pos += copied;
        Ok(())
    }

    /// A record at `offset` of `len` bytes was handled by the caller.
    fn record(&mut self, offset: u64, len: u64, out: &mut dyn Write) -> std::io::Result<()> {
        self.advance(offset, out)?;
        self.advance(offset + len, out)
    }

    /// An unreadable record starts at `offset`; its bytes run to the next record.
    fn broken(&mut self, offset: u64, out: &mut dyn Write) -> std::io::Result<()> {
        self.advance(offset, out)?;
        self.broken_from = Some(offset);
        Ok(())
    }

    /// End of input: copies a trailing unreadable region.
    fn finish(&mut self, out: &mut dyn Write) -> std::io::Result<()> {
        if self.broken_from.take().is_some() {
            self.pos += std::io::copy(&mut self.raw, out)?;
        }
        Ok(())
    }
}

fn offset_of(loc: crate::source::Location) -> u64 {
    match loc {
        crate::source::Location::Offset(o) => o,
        _ => 0,
    }
}

/// A plan made on a mongodump archive (`archive:FILE`, or `dump:FILE`) cannot be applied:
/// apply reads and writes dump directories.
pub fn refuse_archive(source: &str) -> Result<(), ApplyError> {
    let archive = crate::source::SourceSpec::parse(source).is_ok_and(|s| s.is_archive());
    if archive {
        return Err(ApplyError::Usage(format!(
            "the plan's source {source} is a mongodump archive: repair apply reads a dump \
             directory and writes a repaired one, it does not rewrite archives. Turn the \
             archive into a dump directory first (mongorestore --archive=FILE [--gzip] into a \
             scratch server, then mongodump --db DB --out DIR), make the plan again on \
             dump:DIR/DB and apply that plan"
        )));
    }
    Ok(())
}

/// The database folder of a dump source string (`dump:ROOT` or `dump:ROOT/db`).
pub fn dump_db_dir(source: &str, db: Option<&str>) -> Result<(PathBuf, String), ApplyError> {
    let spec =
        crate::source::SourceSpec::parse(source).map_err(|e| ApplyError::Usage(e.to_string()))?;
    refuse_archive(source)?;
    if !matches!(spec, crate::source::SourceSpec::Dump(_)) {
        return Err(ApplyError::Usage(format!(
            "{spec} is not a dump: use a dump: source here"
        )));
    }
    let src = crate::source::Source::open(&spec, db)?;
    let db_name = src.database.clone().unwrap_or_default();
    let dir = src
        .collections
        .first()
        .and_then(|c| c.file.parent().map(Path::to_path_buf))
        .ok_or_else(|| ApplyError::Usage(format!("{spec}: no collections")))?;
    Ok((dir, db_name))
}

/// `dir/name`, or its gzipped form `dir/name.gz` (a `--gzip` dump), and which it is.
fn plain_or_gz(dir: &Path, name: &str) -> Option<(PathBuf, bool)> {
    let plain = dir.join(name);
    let gz = dir.join(format!("{name}.gz"));
    if plain.is_file() {
        Some((plain, false))
    } else if gz.is_file() {
        Some((gz, true))
    } else {
        None
    }
}

fn open_in(path: &Path, gzip: bool) -> Result<Box<dyn Read + Send>, ApplyError> {
    let f = File::open(path).map_err(|e| io(path, e))?;
    Ok(if gzip {
        Box::new(flate2::read::MultiGzDecoder::new(std::io::BufReader::new(
            f,
        )))
    } else {
        Box::new(std::io::BufReader::new(f))
    })
}

/// An output file of a new dump, plain or gzipped. `finish` completes it (the gzip
/// trailer included) and reports any error; dropping one unfinished leaves a file that the
/// temporary directory's removal discards.
struct Output {
    sink: Sink,
    /// Bytes written so far (uncompressed): the position of the next record.
    pos: u64,
}

enum Sink {
    Plain(BufWriter<File>),
    Gzip(flate2::write::GzEncoder<BufWriter<File>>),
}

impl Write for Output {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let n = match &mut self.sink {
            Sink::Plain(w) => w.write(buf),
            Sink::Gzip(w) => w.write(buf),
        }?;
        self.pos += n as u64;
        Ok(n)
    }

    fn flush(&mut self) -> std::io::Result<()> {
        match &mut self.sink {
            Sink::Plain(w) => w.flush(),
            Sink::Gzip(w) => w.flush(),
        }
    }
}

impl Output {
    fn new(file: File, gzip: bool) -> Output {
        let w = BufWriter::with_capacity(1 << 20, file);
        let sink = if gzip {
            Sink::Gzip(flate2::write::GzEncoder::new(
                w,
                flate2::Compression::default(),
            ))
        } else {
            Sink::Plain(w)
        };
        Output { sink, pos: 0 }
    }

    fn position(&self) -> u64 {
        self.pos
    }

    fn finish(self, path: &Path) -> Result<(), ApplyError> {
        let w = match self.sink {
            Sink::Plain(w) => w,
            Sink::Gzip(w) => w.finish().map_err(|e| io(path, e))?,
        };
        w.into_inner()
            .map_err(|e| io(path, e.error()))?
            .sync_all()
            .map_err(|e| io(path, e))
    }
}

fn open_out(path: &Path, gzip: bool) -> Result<Output, ApplyError> {
    let f = File::create(path).map_err(|e| io(path, e))?;
    Ok(Output::new(f, gzip))
}

/// Copies every file of `from` into `to` except the named ones.
fn copy_others(from: &Path, to: &Path, skip: &[String]) -> Result<(), ApplyError> {
    for e in std::fs::read_dir(from).map_err(|e| io(from, e))? {
        let p = e.map_err(|e| io(from, e))?.path();
        let name = p
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        if p.is_file() && !skip.contains(&name) {
            std::fs::copy(&p, to.join(&name)).map_err(|e| io(&p, e))?;
        }
    }
    Ok(())
}

fn sync_tree(dir: &Path) -> Result<(), ApplyError> {
    for e in std::fs::read_dir(dir).map_err(|e| io(dir, e))? {
        let p = e.map_err(|e| io(dir, e))?.path();
        if p.is_dir() {
            sync_tree(&p)?;
        } else if let Ok(f) = File::open(&p) {
            f.sync_all().map_err(|e| io(&p, e))?;
        }
    }
    if let Ok(d) = File::open(dir) {
        let _ = d.sync_all();
    }
    Ok(())
}

fn bson_name(dir: &Path, coll: &str) -> Option<(PathBuf, bool)> {
    plain_or_gz(dir, &format!("{coll}.bson"))
}

/// The collection's metadata file in `dir` (gzipped in a `--gzip` dump).
fn metadata_file(dir: &Path, coll: &str) -> Option<(PathBuf, bool)> {
    plain_or_gz(dir, &format!("{coll}.metadata.json"))
}

fn read_text(path: &Path, gzip: bool) -> Result<String, ApplyError> {
    let mut text = String::new();
    open_in(path, gzip)?
        .read_to_string(&mut text)
        .map_err(|e| io(path, e))?;
    Ok(text)
}

fn write_text(path: &Path, gzip: bool, text: &str) -> Result<(), ApplyError> {
    let mut w = open_out(path, gzip)?;
    w.write_all(text.as_bytes()).map_err(|e| io(path, e))?;
    w.finish(path)
}

/// Rewrites the collection's metadata file in `dir` for index actions.
fn rewrite_metadata(
    dir: &Path,
    coll: &str,
    plan_entries: &[Entry],
    undo: bool,
) -> Result<(), ApplyError> {
    let touches_indexes = plan_entries
        .iter()
        .any(|e| matches!(e.action.as_str(), "create_index" | "drop_index"));
    let Some((path, gzip)) = metadata_file(dir, coll).filter(|_| touches_indexes) else {
        // Nothing to change: the copied file stays byte for byte.
        return Ok(());
    };
    let path = path.as_path();
    let text = read_text(path, gzip)?;
    let mut meta: Value =
        serde_json::from_str(&text).map_err(|e| io(path, format!("not valid JSON: {e}")))?;
    // The form the file is in: canonical Extended JSON (mongodump 100.x) or relaxed
    // (older mongodump).
    let canonical = text.contains("\"$numberInt\"");
    let Some(indexes) = meta.get_mut("indexes").and_then(Value::as_array_mut) else {
        return Ok(());
    };
    for e in plan_entries {
        let Some(after) = &e.after else { continue };
        let name = after["name"].as_str().unwrap_or_default().to_string();
        let (create, drop) = match (e.action.as_str(), undo) {
            ("create_index", false) | ("drop_index", true) => (true, false),
            ("drop_index", false) | ("create_index", true) => (false, true),
            _ => continue,
        };
        if drop {
            indexes.retain(|ix| ix["name"] != name.as_str());
        }
        if create
            && !indexes.iter().any(|ix| ix["name"] == name.as_str())
            && after.get("key").is_some()
        {
            let mut ix = if canonical {
                json!({"v": {"$numberInt": "2"}, "key": canonical_key(&after["key"]), "name": name})
            } else {
                json!({"v": 2, "key": after["key"], "name": name})
            };
            for option in super::plan::INDEX_OPTIONS {
                if after[option] == true {
                    ix[option] = Value::Bool(true);
                }
            }
            indexes.push(ix);
        }
    }
    write_text(path, gzip, &meta.to_string())
}

/// Index key directions in canonical Extended JSON, as mongodump writes them.
fn canonical_key(key: &Value) -> Value {
    let mut m = serde_json::Map::new();
    if let Some(o) = key.as_object() {
        for (k, v) in o {
            let d = match v.as_i64() {
                Some(n) => json!({"$numberInt": n.to_string()}),
                None => v.clone(),
            };
            m.insert(k.clone(), d);
        }
    }
    Value::Object(m)
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
    let source = plan.header["source"].as_str().unwrap_or_default();
    let db = plan.header["database"].as_str();
    let (in_dir, db_name) = dump_db_dir(source, db)?;
    let coll = plan.collection().to_string();
    let checksum = plan_checksum(plan_path)?;
    let final_dir = out_root.join(&db_name);
    let marker = final_dir.join(".docsweep").join("applied");
    let journal_path = final_dir.join(".docsweep").join("journal");
    if final_dir.exists() {
        let done = std::fs::read_to_string(&marker).unwrap_or_default();
        if done.trim() == checksum {
            // Report what that run did, from its journal.
            let read = journal::read(&journal_path)?;
            // The output is published only when complete: a cut finish line lost the
            // counts, not the work; the journaled changes are what was applied.
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
            return Ok(Outcome {
                already_done: true,
                applied: finish["applied"].as_u64().unwrap_or(0),
                already: finish["already"].as_u64().unwrap_or(0),
                conflicts: conflicts_of(&finish),
                output: final_dir,
                journal: journal_path,
            });
        }
        return Err(ApplyError::Usage(format!(
            "{} exists and is not the output of this plan: choose a new --out",
            final_dir.display()
        )));
    }
    // A dump is never modified in place: the output is neither inside the source nor around it.
    refuse_overlap(&dump_root(source, &in_dir), out_root)?;
    // An action this version does not know is never guessed at.
    if let Some(e) = plan.entries.iter().find(|e| {
        !matches!(
            e.action.as_str(),
            "replace" | "delete" | "quarantine" | "insert" | "create_index" | "drop_index"
        )
    }) {
        return Err(ApplyError::Usage(format!(
            "{}: unknown action {:?} (for _id {}): a plan from another docsweep version?",
            plan_path.display(),
            e.action,
            crate::scan::id_text(&e.id)
        )));
    }
    let changes = plan.entries.len() as u64;
    if let Some(max) = max_changes {
        if changes > max {
            return Err(ApplyError::Usage(format!(
                "the plan changes {changes} documents and indexes, more than --max-changes {max}"
            )));
        }
    }
    std::fs::create_dir_all(out_root).map_err(|e| io(out_root, e))?;
    let _lock = lock_out(out_root, &db_name)?;
    let partial = fresh_partial(out_root, &db_name)?;
    std::fs::create_dir_all(partial.join(".docsweep")).map_err(|e| io(&partial, e))?;
    let mut journal = Journal::create(&partial.join(".docsweep").join("journal"))?;
    journal.append(&json!({
        "kind": "header", "format": journal::FORMAT, "plan": plan_path.display().to_string(),
        "plan_checksum": checksum,
        "target": format!("dump:{}", std::path::absolute(&final_dir).unwrap_or_else(|_| final_dir.clone()).display()),
        "source": source, "database": db_name, "collection": coll, "collections": plan.collections(),
        "template": plan.header["template"],
        "params": plan.header["params"], "started_at": crate::report::now_rfc3339(),
        "user": crate::os::actor(),
    }))?;
    let mut result = Outcome {
        output: final_dir.clone(),
        journal: journal_path.clone(),
        ..Outcome::default()
    };
    let mut settled: Vec<Option<Settled>> = vec![None; plan.entries.len()];
    // The files of the collections the plan changes are rewritten; the others are copied.
    let collections = plan.collections();
    let mut rewritten = Vec::new();
    for coll in &collections {
        let (in_file, _) = bson_name(&in_dir, coll)
            .ok_or_else(|| ApplyError::Usage(format!("{}: no {coll}.bson", in_dir.display())))?;
        rewritten.push(
            in_file
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default(),
        );
    }
    copy_others(&in_dir, &partial, &rewritten)?;
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
    std::fs::write(partial.join(".docsweep").join("applied"), &checksum)
        .map_err(|e| io(&partial, e))?;
    sync_tree(&partial)?;
    failpoint("apply.before-rename");
    std::fs::rename(&partial, &final_dir).map_err(|e| io(&final_dir, e))?;
    failpoint("apply.after-rename");
    if let Ok(d) = File::open(out_root) {
        let _ = d.sync_all();
    }
    Ok(result)
}

/// A dump apply in progress: the collections are rewritten one by one into `partial`,
/// with one journal.
struct DumpApply<'a> {
    plan: &'a Plan,
    in_dir: &'a Path,
    partial: &'a Path,
    journal: &'a mut Journal,
    settled: &'a mut [Option<Settled>],
    /// The next journal batch number (unique across collections).
    batch_no: u64,
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

        // The documents the plan changes in place, and those it inserts.
        let in_place: Vec<usize> = mine
            .iter()
            .copied()
            .filter(|&i| !plan.entries[i].id.is_null() && plan.entries[i].action != "insert")
            .collect();
        let mut matcher = Matcher::new(
            in_place
                .iter()
                .map(|&i| want_of(&plan.entries[i]))
                .collect(),
        );
        let mut inserts: HashMap<String, (usize, u128)> = HashMap::new();
        for &i in &mine {
            let e = &plan.entries[i];
            if e.action == "insert" {
                let fp =
                    crate::value::fingerprint(e.after.as_ref().unwrap_or(&Value::Null)).ordered;
                let id = crate::scan::id_text(&e.id);
                match inserts.entry(id) {
                    // One document per `_id`: a second insert of it cannot be carried out.
                    std::collections::hash_map::Entry::Occupied(_) => {
                        self.settled[i] = Some(Settled::Conflict(Reason::SecondEntry));
                    }
                    std::collections::hash_map::Entry::Vacant(v) => {
                        v.insert((i, fp));
                    }
                }
            }
        }
        let mut out = open_out(&self.partial.join(&out_name), gzip)?;
        let mut quarantine: HashMap<String, Vec<Value>> = HashMap::new();
        let mut reader = BsonReader::new(open_in(&in_file, gzip)?, None, in_file.clone());
        let mut pass = Passthrough::new(open_in(&in_file, gzip)?);
        while let Some(batch) = reader.next_batch(BATCH_RECORDS)? {
            // (offset, length in the input, bytes to write; None for an unreadable region)
            let mut writes: Vec<(u64, u64, Option<Vec<u8>>)> = Vec::with_capacity(batch.len());
            let mut journaled = Vec::new();
            // Which writes are journaled entries (their output position goes in `done`).
            let mut journaled_writes = Vec::new();
            for rec in &batch.records {
                let bytes = batch.bytes(rec);
                let (at, len) = (offset_of(rec.location), bytes.len() as u64);
                if rec.broken.is_some() {
                    writes.push((at, 0, None));
                    continue;
                }
                let keep = |writes: &mut Vec<_>| writes.push((at, len, Some(bytes.to_vec())));
                let Ok(decoded) = crate::value::from_bson(bytes) else {
                    keep(&mut writes);
                    continue;
                };
                let doc = decoded.value;
                let id = doc.get("_id").map(crate::scan::id_text).unwrap_or_default();
                if let Some((i, after_fp)) = inserts.get(&id) {
                    // An insert whose `_id` exists again is a conflict, never a duplicate.
                    let fp = crate::value::fingerprint(&doc).ordered;
                    self.settled[*i] = Some(match self.settled[*i] {
                        None if fp == *after_fp => Settled::Already,
                        _ => Settled::Conflict(Reason::IdTaken),
                    });
                }
                if !matcher.wants(&id) {
                    keep(&mut writes);
                    continue;
                }
                let fp = crate::value::fingerprint(&doc).ordered;
                let Found::Act(k) = matcher.offer(&id, fp, at) else {
                    keep(&mut writes);
                    continue;
                };
                let entry = &plan.entries[in_place[k]];
                // The original bytes too: undo restores them exactly (relaxed JSON cannot
                // tell Int32 from Int64).
                use base64::Engine as _;
                let raw = base64::engine::general_purpose::STANDARD.encode(bytes);
                let mut j = json!({"action": entry.action, "_id": entry.id, "before": doc, "before_bson": raw, "after": entry.after});
                if let Some(to) = &entry.to {
                    j["to"] = Value::from(to.as_str());
                }
                journaled.push(j);
                journaled_writes.push(writes.len());
                match entry.action.as_str() {
                    "replace" => {
                        let after = entry.after.clone().unwrap_or(Value::Null);
                        writes.push((at, len, Some(after_bytes(Some(bytes), &after)?)));
                    }
                    "quarantine" => {
                        // The image the plan set aside (the document as earlier steps of the
                        // plan left it); the document as read for older plans.
                        let to = entry.to.clone().unwrap_or_default();
                        quarantine
                            .entry(to)
                            .or_default()
                            .push(entry.after.clone().unwrap_or(doc));
                        writes.push((at, len, Some(Vec::new())));
                    }
                    // "delete" (the actions are checked above)
                    _ => writes.push((at, len, Some(Vec::new()))),
                }
            }
            // The journal holds the batch before any of it is written.
            failpoint("apply.before-batch");
            if !journaled.is_empty() {
                self.journal.append(&json!({"kind": "batch", "n": self.batch_no, "collection": coll, "entries": journaled}))?;
                failpoint("apply.batch-journaled");
            }
            // Where each journaled change lies in the new file, so that undo puts a removed
            // record back exactly where it was.
            let mut out_at = Vec::with_capacity(journaled_writes.len());
            let mut next_journaled = journaled_writes.iter().peekable();
            for (w, (at, len, bytes)) in writes.into_iter().enumerate() {
                match bytes {
                    Some(b) => {
                        pass.record(at, len, &mut out)
                            .map_err(|e| io(&in_file, e))?;
                        if next_journaled.next_if_eq(&&w).is_some() {
                            out_at.push(out.position());
                        }
                        out.write_all(&b).map_err(|e| io(&in_file, e))?;
                    }
                    None => pass.broken(at, &mut out).map_err(|e| io(&in_file, e))?,
                }
            }
            if !journaled.is_empty() {
                self.journal
                    .append(&json!({"kind": "done", "n": self.batch_no, "out_at": out_at}))?;
                failpoint("apply.batch-done");
            }
            self.batch_no += 1;
        }
        // Restored documents (inserts) go at the end, before a trailing unreadable region
        // (which must stay last: its length prefix would swallow anything after it).
        let mut to_insert: Vec<usize> = inserts
            .values()
            .map(|&(i, _)| i)
            .filter(|&i| self.settled[i].is_none())
            .collect();
        to_insert.sort_unstable();
        if !to_insert.is_empty() {
            let journaled: Vec<Value> = to_insert
                .iter()
                .map(|&i| {
                    let e = &plan.entries[i];
                    json!({"action": "insert", "_id": e.id, "before": Value::Null, "after": e.after})
                })
                .collect();
            failpoint("apply.before-batch");
            self.journal.append(&json!({"kind": "batch", "n": self.batch_no, "collection": coll, "entries": journaled}))?;
            failpoint("apply.batch-journaled");
            let mut out_at = Vec::with_capacity(to_insert.len());
            for &i in &to_insert {
                let e = &plan.entries[i];
                let b = crate::value::to_bson(e.after.as_ref().unwrap_or(&Value::Null))
                    .map_err(|err| ApplyError::Usage(format!("insert: {err}")))?;
                out_at.push(out.position());
                out.write_all(&b).map_err(|err| io(&in_file, err))?;
                self.settled[i] = Some(Settled::Acted);
            }
            self.journal
                .append(&json!({"kind": "done", "n": self.batch_no, "out_at": out_at}))?;
            failpoint("apply.batch-done");
            self.batch_no += 1;
        }
        pass.finish(&mut out).map_err(|e| io(&in_file, e))?;
        out.finish(&self.partial.join(&out_name))?;
        for (to, docs) in quarantine {
            write_quarantine(self.partial, coll, &to, &docs, gzip)?;
        }
        let entries: Vec<Entry> = mine.iter().map(|&i| plan.entries[i].clone()).collect();
        rewrite_metadata(self.partial, coll, &entries, false)?;
        failpoint("apply.collection-done");
        for (k, s) in matcher
            .finish(Reason::ChangedSincePlan)
            .into_iter()
            .enumerate()
        {
            self.settled[in_place[k]] = Some(s);
        }
        Ok(())
    }
}

/// What to look for in the input for an entry that changes a document in place.
fn want_of(e: &Entry) -> Want {
    let done = match e.action.as_str() {
        "replace" => e
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
        absent_is_done: e.action == "delete",
    }
}

/// Index entries: which the metadata already reflects, which change it (journaled with
/// the metadata as it was, so that undo gives back its exact bytes), and which cannot be
/// carried because the dump has no metadata file.
fn settle_indexes(
    in_dir: &Path,
    coll: &str,
    plan: &Plan,
    mine: &[usize],
    journal: &mut Journal,
    settled: &mut [Option<Settled>],
) -> Result<(), ApplyError> {
    let index_entries: Vec<usize> = mine
        .iter()
        .copied()
        .filter(|&i| plan.entries[i].id.is_null())
        .collect();
    if index_entries.is_empty() {
        return Ok(());
    }
    let Some((meta, gzip)) = metadata_file(in_dir, coll) else {
        for i in index_entries {
            settled[i] = Some(Settled::Conflict(Reason::NoMetadata));
        }
        return Ok(());
    };
    let metadata_before = read_text(&meta, gzip)?;
    let parsed: Value = serde_json::from_str(&metadata_before)
        .map_err(|e| io(&meta, format!("not valid JSON: {e}")))?;
    let indexes = parsed["indexes"].as_array().cloned().unwrap_or_default();
    let mut acted = Vec::new();
    for i in index_entries {
        let e = &plan.entries[i];
        let after = e.after.clone().unwrap_or(Value::Null);
        let name = after["name"].as_str().unwrap_or_default();
        let existing = indexes.iter().find(|ix| ix["name"] == name);
        let in_place = match e.action.as_str() {
            "create_index" => existing.is_some_and(|ix| same_index(ix, &after)),
            _ => existing.is_none(),
        };
        settled[i] = Some(match (e.action.as_str(), existing) {
            _ if in_place => Settled::Already,
            // Another index under the planned name: creating it would need a drop.
            ("create_index", Some(_)) => Settled::Conflict(Reason::IndexDiffers),
            _ => {
                acted.push(json!({"action": e.action, "_id": Value::Null, "before": Value::Null, "after": e.after}));
                Settled::Acted
            }
        });
    }
    if !acted.is_empty() {
        journal.append(&json!({"kind": "batch", "n": "indexes", "collection": coll, "entries": acted, "metadata_before": metadata_before}))?;
    }
    Ok(())
}

/// Whether a metadata index spec is the planned one: same key (in order) and options.
fn same_index(ix: &Value, planned: &Value) -> bool {
    let plain_key = |k: &Value| -> Vec<(String, String)> {
        k.as_object()
            .map(|o| {
                o.iter()
                    .map(|(f, d)| {
                        let d = d
                            .get("$numberInt")
                            .or_else(|| d.get("$numberLong"))
                            .or_else(|| d.get("$numberDouble"))
                            .and_then(Value::as_str)
                            .and_then(|s| s.parse::<f64>().ok())
                            .or_else(|| d.as_f64())
                            .map_or_else(|| d.to_string(), |n| n.to_string());
                        (f.clone(), d)
                    })
                    .collect()
            })
            .unwrap_or_default()
    };
    plain_key(&ix["key"]) == plain_key(&planned["key"])
        && super::plan::INDEX_OPTIONS
            .iter()
            .all(|o| (ix[*o] == true) == (planned[*o] == true))
}

/// Counts the settled entries into `result`; every entry must have ended exactly once.
fn tally(plan: &Plan, settled: &[Option<Settled>], result: &mut Outcome) -> Result<(), ApplyError> {
    for (e, s) in plan.entries.iter().zip(settled) {
        match s {
            Some(Settled::Acted) => result.applied += 1,
            Some(Settled::Already) => result.already += 1,
            Some(Settled::Conflict(reason)) => result.conflicts.push(Conflict {
                id: entry_label(e),
                reason: *reason,
            }),
            None => {
                return Err(ApplyError::Usage(format!(
                    "internal error: plan entry {} {} was not accounted for; nothing was published",
                    e.action,
                    entry_label(e)
                )))
            }
        }
    }
    Ok(())
}

/// How an entry is named in messages: its `_id`, or an index action's index name.
fn entry_label(e: &Entry) -> String {
    if e.id.is_null() {
        let name = e
            .after
            .as_ref()
            .and_then(|a| a["name"].as_str())
            .unwrap_or_default();
        format!("index:{name}")
    } else {
        crate::scan::id_text(&e.id)
    }
}

/// Conflicts as the journal's `finish` line holds them.
pub fn conflicts_json(conflicts: &[Conflict]) -> Value {
    conflicts.iter().map(Conflict::to_json).collect()
}

/// The conflicts of a journal's `finish` line.
fn conflicts_of(finish: &Value) -> Vec<Conflict> {
    finish["conflicts"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(Conflict::from_json)
        .collect()
}

/// Keeps quarantined documents in the new dump: a file under `.docsweep/`, or a collection
/// (`<coll>_quarantine` by default), gzipped like the rest of a `--gzip` dump.
fn write_quarantine(
    dir: &Path,
    coll: &str,
    to: &str,
    docs: &[Value],
    gzip: bool,
) -> Result<(), ApplyError> {
    if let Some(file) = to.strip_prefix("file:") {
        // Kept inside the new dump (never elsewhere), so it appears with it atomically.
        let name = Path::new(file)
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_else(|| "quarantine.jsonl".into());
        let p = dir.join(".docsweep").join(format!("quarantine-{name}"));
        let mut w = BufWriter::new(
            std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(&p)
                .map_err(|e| io(&p, e))?,
        );
        for d in docs {
            writeln!(w, "{d}").map_err(|e| io(&p, e))?;
        }
        w.flush().map_err(|e| io(&p, e))?;
        return Ok(());
    }
    let name = to
        .strip_prefix("collection:")
        .map(str::to_string)
        .unwrap_or_else(|| format!("{coll}_quarantine"));
    let p = dir.join(format!("{name}.bson{}", if gzip { ".gz" } else { "" }));
    let mut bytes = Vec::new();
    for d in docs {
        bytes.extend(crate::value::to_bson(d).map_err(|e| io(&p, e))?);
    }
    // Appended to what the collection held already (a gzipped file gets another member).
    let file = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(&p)
        .map_err(|e| io(&p, e))?;
    let mut out = Output::new(file, gzip);
    out.write_all(&bytes).map_err(|e| io(&p, e))?;
    out.finish(&p)
}

/// Holds an exclusive lock on the output root for one database while a run builds it,
/// so two runs never share (or delete) each other's temporary directory.
fn lock_out(out_root: &Path, db: &str) -> Result<File, ApplyError> {
    let p = out_root.join(format!(".{db}.docsweep.lock"));
    let f = File::create(&p).map_err(|e| io(&p, e))?;
    f.try_lock().map_err(|_| {
        ApplyError::Usage(format!(
            "{}: another docsweep run is writing here; try again when it is done",
            out_root.display()
        ))
    })?;
    Ok(f)
}

/// The temporary directory a run builds its output in, emptied first: one left by an
/// interrupted run was never visible as the output. Call with the output lock held.
fn fresh_partial(out_root: &Path, db: &str) -> Result<PathBuf, ApplyError> {
    let partial = out_root.join(format!(".{db}.docsweep-partial"));
    if partial.exists() {
        std::fs::remove_dir_all(&partial).map_err(|e| io(&partial, e))?;
    }
    std::fs::create_dir_all(&partial).map_err(|e| io(&partial, e))?;
    Ok(partial)
}

/// The checksum that identifies a plan file (its bytes).
pub fn plan_checksum(path: &Path) -> Result<String, ApplyError> {
    let bytes = std::fs::read(path).map_err(|e| io(path, e))?;
    Ok(format!("{:032x}", xxhash_rust::xxh3::xxh3_128(&bytes)))
}

/// Undoes an applied dump journal: writes a new dump under `out_root` where every
/// journaled change is reversed (compare-and-set against the after-image).
pub fn undo_dump(journal_path: &Path, out_root: &Path) -> Result<Outcome, ApplyError> {
    let read = journal::read(journal_path)?;
    let header = &read.records[0];
    let collections = journal_collections(header);
    // The journal lives in the dump it describes (`<db>/.docsweep/journal`), so that dump
    // is found wherever it was moved and whatever the working directory; the recorded
    // target is the fallback for a journal kept elsewhere.
    let target = header["target"].as_str().unwrap_or_default();
    let beside = journal_path
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
        // Only the very output of this journal's apply.
        .filter(|d| {
            let marker = d.join(".docsweep").join("applied");
            std::fs::read_to_string(marker).is_ok_and(|m| m.trim() == header["plan_checksum"])
        })
        .filter(|d| collections.iter().all(|c| bson_name(d, c).is_some()));
    // A dump's output is published (renamed into place, with its `applied` marker) only
    // after every batch was written, so a published dump's journal is complete even when
    // its last line, the finish, was cut; anywhere else, a journal without it is an apply
    // that never finished.
    if beside.is_none() && !read.records.iter().any(|r| r["kind"] == "finish") {
        return Err(ApplyError::Usage(format!(
            "{}: the apply did not finish and its output was never published: nothing to undo; \
             re-run `docsweep repair apply {}` to complete it, then undo that output's journal",
            journal_path.display(),
            header["plan"].as_str().unwrap_or("PLAN")
        )));
    }
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
        .filter_map(|e| e.ok())
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
fn undo_collection(
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
        .filter(|&i| matches!(changes[i].action.as_str(), "replace" | "insert"))
        .collect();
    let mut matcher = Matcher::new(
        reversed
            .iter()
            .map(|&i| {
                let c = &changes[i];
                Want {
                    id: c.id.clone(),
                    expect: crate::value::fingerprint(&c.after).ordered,
                    done: (c.action == "replace")
                        .then(|| crate::value::fingerprint(&c.before).ordered),
                    at: c.out_at,
                    // A removed insert is already undone.
                    absent_is_done: c.action == "insert",
                }
            })
            .collect(),
    );
    // Deleted and quarantined documents go back where they were, unless their `_id` is
    // there again.
    let mut restores: Vec<usize> = mine
        .iter()
        .copied()
        .filter(|&i| matches!(changes[i].action.as_str(), "delete" | "quarantine"))
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
                Found::Act(k) if changes[reversed[k]].action == "replace" => out
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
fn unquarantine(
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
        if c.action == "quarantine" && *s == Some(Settled::Acted) {
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
fn undo_indexes(
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
                action: e["action"].as_str()?.to_string(),
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

/// The collections a dump journal's apply changed.
fn journal_collections(header: &Value) -> Vec<String> {
    let listed: Vec<String> = header["collections"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|c| c.as_str().map(str::to_string))
        .collect();
    if listed.is_empty() {
        vec![header["collection"]
            .as_str()
            .unwrap_or_default()
            .to_string()]
    } else {
        listed
    }
}

/// One journaled document change of a dump apply, for undo.
struct Change {
    /// The collection it changed.
    collection: String,
    /// Where a quarantined document went (`collection:NAME`; older journals do not say).
    to: Option<String>,
    action: String,
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
fn journaled_changes(read: &journal::Read, path: &Path) -> Result<Vec<Change>, ApplyError> {
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
                action: e["action"].as_str().unwrap_or_default().to_string(),
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
fn ids_present(
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

/// The folder a `dump:` source names (its root, or the one database folder given), else
/// `in_dir`, the database folder read.
fn dump_root(source: &str, in_dir: &Path) -> PathBuf {
    match crate::source::SourceSpec::parse(source) {
        Ok(crate::source::SourceSpec::Dump(p)) if p.is_dir() => p,
        _ => in_dir.to_path_buf(),
    }
}

/// Refuses an output folder inside the input dump, or one that contains it (the same
/// folder included): paths compared resolved, symbolic links and `..` included, the
/// output's missing part from its nearest existing ancestor.
fn refuse_overlap(input: &Path, output: &Path) -> Result<(), ApplyError> {
    let resolved = |p: &Path| crate::os::resolve(p).map_err(|e| io(p, e));
    let (inp, out) = (resolved(input)?, resolved(output)?);
    if out.starts_with(&inp) {
        return Err(ApplyError::Usage(format!(
            "--out {}: inside the plan's source {}; a dump is never modified in place: choose a folder outside it",
            output.display(),
            input.display()
        )));
    }
    if inp.starts_with(&out) {
        return Err(ApplyError::Usage(format!(
            "--out {}: contains the plan's source {}; choose a folder outside it",
            output.display(),
            input.display()
        )));
    }
    Ok(())
}
