//! Applying a plan to a live deployment (`mongodb://…`), and undoing it.
//!
//! The journal (by default `<plan>.journal`, next to the plan) has the dump journal's
//! records: a `header` naming the target (redacted URI, database, collection) and the
//! plan's checksum; per batch, a `batch` record with the before- and after-image of every
//! document about to be written, fsynced before any of the batch's writes; a `done` record
//! after them (`applied`, `already`, `conflicts`: the `_id`s settled by the batch); and
//! `finish`. A journal of another plan or target is refused.
//!
//! Compare-and-set: the documents of a batch are read by `_id` and fingerprinted; only a
//! document whose fingerprint is still the plan's before-fingerprint is written, with
//! `findAndModify` (replace or remove, returning the document it replaced) filtered on
//! the `_id` *and* on the current value of each scalar top-level field. A change made by
//! someone else between the read and the write therefore makes the filter miss (nothing
//! is written: a conflict), except a change no equality filter can see (a sub-document,
//! an array, a type or field order); that one is caught afterwards, because the document
//! the server returns as replaced is fingerprinted too: when it is not the planned
//! before-image it is put back (again filtered on what was just written) and the document
//! is a conflict. MongoDB and FerretDB both have `findAndModify` with `$eq` filters, while
//! transactions (MongoDB only on replica sets) and `$expr` with `$$ROOT` (not in FerretDB)
//! are not available everywhere. On FerretDB the filter is the `_id` alone: it evaluates
//! other conditions outside its storage, a collection scan per write (4x slower at 300
//! documents, worse with more); the check of the returned document still catches every
//! concurrent change, which is then put back.
//!
//! Re-running: a finished journal makes the run a no-op; an unfinished one (a crash, a
//! lost connection) is resumed: the `_id`s of batches with a `done` record are settled;
//! every other document is classified again from its current state, so a document the
//! interrupted run already wrote is found in its after-state and counted as already done,
//! never written twice.

use std::collections::{HashMap, HashSet};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use bson::{doc, Bson, Document, RawDocumentBuf};
use mongodb::options::{ClientOptions, ReturnDocument};
use mongodb::sync::{Client, Collection, Database};
use serde_json::{json, Value};

use super::apply::{failpoint, plan_checksum, ApplyError};
use super::image::after_bytes;
use super::journal::{self, Journal};
use super::plan::{Entry, Plan};
use crate::source::{password_span, redact_uri, SourceError};

/// Documents per journaled batch unless `--batch-size` says otherwise.
pub const DEFAULT_BATCH: usize = 500;

/// What a live apply or undo did.
#[derive(Debug, Default, Clone)]
pub struct LiveOutcome {
    /// Documents (and indexes) written by this run.
    pub applied: u64,
    /// Already in the wanted state (a re-run, or a resumed run finding its own writes).
    pub already: u64,
    /// Left as they were: changed since the plan (or since the apply, for undo).
    pub conflicts: Vec<String>,
    /// The journal was finished: nothing was done now.
    pub finished_before: bool,
    /// An interrupted run was resumed.
    pub resumed: bool,
    pub journal: PathBuf,
    /// `URI (redacted) db.collection`.
    pub target: String,
}

/// How to apply a plan to a live deployment.
pub struct ApplyLive<'a> {
    pub plan: &'a Plan,
    pub plan_path: &'a Path,
    /// The connection string with its password, when the plan records it redacted.
    pub uri: Option<&'a str>,
    pub journal: PathBuf,
    pub max_changes: Option<u64>,
    /// Documents per second.
    pub rate: Option<f64>,
    pub batch_size: usize,
}

fn usage(m: impl Into<String>) -> ApplyError {
    ApplyError::Usage(m.into())
}

/// A driver error as a source failure, with the URI's password masked.
fn server_err(uri: &str, context: &str, e: impl std::fmt::Display) -> ApplyError {
    let mut msg = format!("{}: {context}: {e}", redact_uri(uri));
    if let Some(r) = password_span(uri) {
        let pw = &uri[r];
        if !pw.is_empty() {
            msg = msg.replace(pw, "****");
        }
    }
    ApplyError::Source(SourceError::Other(msg))
}

/// The default journal of a plan: `<plan>.journal` next to it.
pub fn default_journal(plan_path: &Path) -> PathBuf {
    let mut s = plan_path.as_os_str().to_owned();
    s.push(".journal");
    PathBuf::from(s)
}

/// Parses `--rate`: `N` or `N/s` documents per second.
pub fn parse_rate(s: &str) -> Result<f64, String> {
    let n = s.trim().strip_suffix("/s").unwrap_or(s.trim());
    match n.parse::<f64>() {
        Ok(r) if r.is_finite() && r > 0.0 => Ok(r),
        _ => Err(format!(
            "--rate {s:?}: expected a positive number of documents per second, e.g. 200 or 200/s"
        )),
    }
}

/// Whether a source string names a live deployment.
pub fn is_live(source: &str) -> bool {
    source.starts_with("mongodb://") || source.starts_with("mongodb+srv://")
}

/// Writes at most `rate` documents per second.
struct Throttle {
    rate: Option<f64>,
    start: Instant,
    n: u64,
}

impl Throttle {
    fn new(rate: Option<f64>) -> Throttle {
        Throttle {
            rate,
            start: Instant::now(),
            n: 0,
        }
    }

    fn tick(&mut self) {
        let Some(rate) = self.rate else { return };
        self.n += 1;
        let due = self.start + Duration::from_secs_f64(self.n as f64 / rate);
        let now = Instant::now();
        if due > now {
            std::thread::sleep(due - now);
        }
    }
}

/// An open connection to the plan's collection.
pub struct Target {
    uri: String,
    db: Database,
    pub coll: Collection<RawDocumentBuf>,
    pub collection: String,
    pub database: String,
    pub redacted: String,
    pub ferretdb: bool,
}

impl Target {
    /// Connects to `recorded` (the plan's or journal's redacted source), using `given`
    /// (with the password) when there is one; they must name the same deployment.
    pub fn connect(
        recorded: &str,
        given: Option<&str>,
        database: Option<&str>,
        collection: &str,
    ) -> Result<Target, ApplyError> {
        let uri = match given {
            Some(g) => {
                if redact_uri(g) != recorded {
                    return Err(usage(format!(
                        "--uri {} is not the deployment the plan was made from ({recorded})",
                        redact_uri(g)
                    )));
                }
                g.to_string()
            }
            None => {
                if password_span(recorded).is_some_and(|r| &recorded[r] == "****") {
                    return Err(usage(format!(
                        "{recorded}: the password is not recorded; pass the connection string with --uri"
                    )));
                }
                recorded.to_string()
            }
        };
        let mut opts = ClientOptions::parse(&uri)
            .run()
            .map_err(|e| server_err(&uri, "invalid connection string", e))?;
        if opts.server_selection_timeout.is_none() {
            opts.server_selection_timeout = Some(Duration::from_secs(10));
        }
        if opts.connect_timeout.is_none() {
            opts.connect_timeout = Some(Duration::from_secs(10));
        }
        opts.app_name.get_or_insert_with(|| "docsweep".to_string());
        let db_name = match (database, opts.default_database.clone()) {
            (Some(d), _) => d.to_string(),
            (None, Some(d)) => d,
            (None, None) => {
                return Err(usage(format!(
                    "{}: no database in the plan or the URI",
                    redact_uri(&uri)
                )))
            }
        };
        let client =
            Client::with_options(opts).map_err(|e| server_err(&uri, "cannot create client", e))?;
        let db = client.database(&db_name);
        let info = db
            .run_command(doc! {"buildInfo": 1})
            .run()
            .map_err(|e| server_err(&uri, "cannot reach the server", e))?;
        Ok(Target {
            coll: db.collection::<RawDocumentBuf>(collection),
            redacted: redact_uri(&uri),
            collection: collection.to_string(),
            database: db_name,
            ferretdb: info.contains_key("ferretdbVersion"),
            db,
            uri,
        })
    }

    /// The compare-and-set filter for a document (see `pinned`). FerretDB evaluates
    /// filters beyond `_id` outside its storage, a collection scan per write, so there the
    /// filter is the `_id` alone and the returned document's check does the work.
    fn pin(&self, current: &RawDocumentBuf) -> Document {
        pinned(current, !self.ferretdb)
    }

    fn err(&self, context: &str, e: impl std::fmt::Display) -> ApplyError {
        server_err(&self.uri, context, e)
    }

    fn describe(&self) -> String {
        format!("{} {}.{}", self.redacted, self.database, self.collection)
    }

    /// The current documents with these `_id`s, by `_id` text.
    fn current(
        &self,
        coll: &Collection<RawDocumentBuf>,
        ids: &[Bson],
    ) -> Result<HashMap<String, RawDocumentBuf>, ApplyError> {
        let mut out = HashMap::new();
        if ids.is_empty() {
            return Ok(out);
        }
        let cursor = coll
            .find(doc! {"_id": {"$in": ids.to_vec()}})
            .run()
            .map_err(|e| self.err(&format!("find in {}", coll.name()), e))?;
        for d in cursor {
            let d = d.map_err(|e| self.err(&format!("find in {}", coll.name()), e))?;
            let v = decode(d.as_bytes())?;
            out.insert(id_of(&v), d);
        }
        Ok(out)
    }

    /// The collection's indexes as relaxed JSON, by name.
    fn indexes(&self) -> Result<HashMap<String, Value>, ApplyError> {
        let mut out = HashMap::new();
        let cursor = match self
            .db
            .run_cursor_command(doc! {"listIndexes": &self.collection})
            .run()
        {
            Ok(c) => c,
            // NamespaceNotFound: no collection, no indexes.
            Err(e) if command_code(&e) == Some(26) => return Ok(out),
            Err(e) => return Err(self.err("listIndexes", e)),
        };
        for d in cursor {
            let d: Document = d.map_err(|e| self.err("listIndexes", e))?;
            let bytes = d.to_vec().map_err(|e| self.err("listIndexes", e))?;
            let v = decode(&bytes)?;
            if let Some(name) = v["name"].as_str() {
                out.insert(name.to_string(), v);
            }
        }
        Ok(out)
    }
}

fn decode(bytes: &[u8]) -> Result<Value, ApplyError> {
    crate::value::from_bson(bytes)
        .map(|d| d.value)
        .map_err(|e| usage(format!("a document cannot be decoded: {e}")))
}

fn id_of(v: &Value) -> String {
    v.get("_id").map(crate::scan::id_text).unwrap_or_default()
}

fn fp(v: &Value) -> u128 {
    crate::value::fingerprint(v).ordered
}

fn fp_raw(bytes: &[u8]) -> Result<u128, ApplyError> {
    decode(bytes).map(|v| fp(&v))
}

/// A JSON value as BSON (through a one-field document).
fn json_to_bson(v: &Value, what: &str) -> Result<Bson, ApplyError> {
    let bytes = crate::value::to_bson(&json!({ "v": v }))
        .map_err(|e| usage(format!("{what}: cannot encode: {e}")))?;
    let mut d = Document::from_reader(&bytes[..])
        .map_err(|e| usage(format!("{what}: cannot encode: {e}")))?;
    Ok(d.remove("v").unwrap_or(Bson::Null))
}

fn to_raw(bytes: Vec<u8>, what: &str) -> Result<RawDocumentBuf, ApplyError> {
    RawDocumentBuf::from_bytes(bytes).map_err(|e| usage(format!("{what}: not a document: {e}")))
}

fn command_code(e: &mongodb::error::Error) -> Option<i32> {
    use mongodb::error::{ErrorKind, WriteFailure};
    match e.kind.as_ref() {
        ErrorKind::Command(c) => Some(c.code),
        ErrorKind::Write(WriteFailure::WriteError(w)) => Some(w.code),
        ErrorKind::InsertMany(m) => m
            .write_errors
            .as_ref()
            .and_then(|w| w.first())
            .map(|w| w.code),
        _ => None,
    }
}

fn is_duplicate_key(e: &mongodb::error::Error) -> bool {
    command_code(e) == Some(11000) || e.to_string().contains("E11000")
}

/// The compare-and-set filter: the `_id` and the current value of every scalar
/// top-level field (a superset match: numbers compare by value, `null` matches a missing
/// field; the returned document is verified exactly afterwards).
fn pinned(current: &RawDocumentBuf, all_fields: bool) -> Document {
    let mut f = Document::new();
    let Ok(d) = Document::try_from(current.as_ref()) else {
        return f;
    };
    if let Some(id) = d.get("_id") {
        f.insert("_id", id.clone());
    }
    if !all_fields {
        return f;
    }
    for (k, v) in &d {
        if k == "_id" || k.starts_with('$') || k.contains('.') || k.is_empty() {
            continue;
        }
        let simple = match v {
            Bson::Double(x) => x.is_finite(),
            Bson::String(_)
            | Bson::Boolean(_)
            | Bson::Int32(_)
            | Bson::Int64(_)
            | Bson::ObjectId(_)
            | Bson::DateTime(_) => true,
            _ => false,
        };
        if simple {
            f.insert(k.clone(), doc! {"$eq": v.clone()});
        }
    }
    f
}

fn b64(bytes: &[u8]) -> String {
    use base64::Engine as _;
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

fn unb64(s: &str, what: &str) -> Result<Vec<u8>, ApplyError> {
    use base64::Engine as _;
    base64::engine::general_purpose::STANDARD
        .decode(s)
        .map_err(|_| usage(format!("{what}: bad base64")))
}

/// The quarantine collection of an entry (None for a file target).
fn quarantine_collection(entry: &Entry, coll: &str) -> Option<String> {
    match entry.to.as_deref() {
        Some(t) if t.starts_with("file:") => None,
        Some(t) => Some(t.strip_prefix("collection:").unwrap_or(t).to_string()),
        None => Some(format!("{coll}_quarantine")),
    }
}

/// What a batch found a document to need.
enum Need {
    Write,
    Already,
    Conflict,
}

/// Index actions get ids of their own in the journal's settled sets.
fn index_id(e: &Entry) -> String {
    format!(
        "index:{}",
        e.after
            .as_ref()
            .and_then(|a| a["name"].as_str())
            .unwrap_or_default()
    )
}

/// An index key as BSON (directions as Int32, as the server keeps them).
fn index_key(key: &Value) -> Result<Document, ApplyError> {
    match json_to_bson(key, "index key")? {
        Bson::Document(d) => Ok(d),
        _ => Err(usage("index key: not a document")),
    }
}

/// Settled `_id`s and counts of an unfinished journal.
#[derive(Default)]
struct Progress {
    settled: HashSet<String>,
    applied: u64,
    already: u64,
    conflicts: Vec<String>,
    batches: u64,
}

fn progress(records: &[Value]) -> Progress {
    let mut p = Progress::default();
    for r in records {
        if r["kind"] == "done" {
            for (list, count) in [("applied", 0), ("already", 1), ("conflicts", 2)] {
                for id in r[list].as_array().into_iter().flatten() {
                    let id = id.as_str().unwrap_or_default().to_string();
                    match count {
                        0 => p.applied += 1,
                        1 => p.already += 1,
                        _ => p.conflicts.push(id.clone()),
                    }
                    p.settled.insert(id);
                }
            }
        }
        if let Some(n) = r["n"].as_u64() {
            p.batches = p.batches.max(n + 1);
        }
    }
    p
}

/// Counts per action, for the summary printed before (or instead of) writing.
pub fn action_counts(plan: &Plan) -> std::collections::BTreeMap<String, u64> {
    let mut m = std::collections::BTreeMap::new();
    for e in &plan.entries {
        *m.entry(e.action.clone()).or_insert(0) += 1;
    }
    m
}

/// Applies `plan` to the live deployment it was made from.
pub fn apply_live(req: &ApplyLive<'_>) -> Result<LiveOutcome, ApplyError> {
    let plan = req.plan;
    let source = plan.header["source"].as_str().unwrap_or_default();
    let coll_name = plan.collection().to_string();
    let changes = plan.entries.iter().filter(|e| !e.id.is_null()).count() as u64;
    if let Some(max) = req.max_changes {
        if changes > max {
            return Err(usage(format!(
                "the plan changes {changes} documents, more than --max-changes {max}"
            )));
        }
    }
    let checksum = plan_checksum(req.plan_path)?;
    let mut out = LiveOutcome {
        journal: req.journal.clone(),
        ..LiveOutcome::default()
    };
    // An existing journal: this plan's (finished: nothing to do; else resume) or refused.
    let existing = if req.journal.exists() {
        let read = journal::read(&req.journal)?;
        let h = &read.records[0];
        if h["plan_checksum"] != checksum.as_str() {
            return Err(usage(format!(
                "journal {} belongs to another plan ({}): pass --journal FILE for this one",
                req.journal.display(),
                h["plan"].as_str().unwrap_or("?")
            )));
        }
        if h["target"] != source || h["collection"] != coll_name.as_str() {
            return Err(usage(format!(
                "journal {} is for {} {}, not {source} {coll_name}",
                req.journal.display(),
                h["target"],
                h["collection"]
            )));
        }
        if let Some(f) = read.records.iter().find(|r| r["kind"] == "finish") {
            out.finished_before = true;
            out.applied = f["applied"].as_u64().unwrap_or(0);
            out.already = f["already"].as_u64().unwrap_or(0);
            out.conflicts = f["conflicts"]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(|c| c.as_str().map(str::to_string))
                .collect();
            out.target = format!("{source} {coll_name}");
            return Ok(out);
        }
        Some(read)
    } else {
        None
    };
    let target = Target::connect(
        source,
        req.uri,
        plan.header["database"].as_str(),
        &coll_name,
    )?;
    out.target = target.describe();
    let (mut jr, prog) = match existing {
        Some(read) => {
            out.resumed = true;
            let p = progress(&read.records);
            let mut j = Journal::reopen(&req.journal, &read)?;
            j.append(&json!({
                "kind": "resume", "at": crate::report::now_rfc3339(),
                "torn_tail": read.torn_tail, "settled": p.settled.len(),
            }))?;
            (j, p)
        }
        None => {
            let mut j = Journal::create(&req.journal)?;
            j.append(&json!({
                "kind": "header", "format": journal::FORMAT,
                "plan": req.plan_path.display().to_string(), "plan_checksum": checksum,
                "target": source, "database": target.database, "collection": coll_name,
                "template": plan.header["template"], "params": plan.header["params"],
                "started_at": crate::report::now_rfc3339(),
                "user": crate::os::actor(),
            }))?;
            (j, Progress::default())
        }
    };
    let mut n = prog.batches;
    let mut throttle = Throttle::new(req.rate);
    let mut run = Tally::default();

    // Index actions first, as one batch.
    let index_entries: Vec<&Entry> = plan
        .entries
        .iter()
        .filter(|e| e.id.is_null() && !prog.settled.contains(&index_id(e)))
        .collect();
    if !index_entries.is_empty() {
        apply_indexes(&target, &index_entries, &mut jr, n, &mut run)?;
        n += 1;
    }

    let docs: Vec<&Entry> = plan
        .entries
        .iter()
        .filter(|e| !e.id.is_null() && !prog.settled.contains(&crate::scan::id_text(&e.id)))
        .collect();
    let mut files = FileQuarantine::default();
    for chunk in docs.chunks(req.batch_size.max(1)) {
        apply_batch(
            &target,
            chunk,
            &mut jr,
            n,
            &mut throttle,
            &mut files,
            &mut run,
        )?;
        n += 1;
    }
    out.applied = prog.applied + run.applied.len() as u64;
    out.already = prog.already + run.already.len() as u64;
    out.conflicts = prog.conflicts;
    out.conflicts.extend(run.conflicts);
    failpoint("apply.before-finish");
    jr.append(&json!({
        "kind": "finish", "applied": out.applied, "already": out.already,
        "conflicts": out.conflicts, "finished_at": crate::report::now_rfc3339(),
    }))?;
    Ok(out)
}

/// The `_id`s a batch settled.
#[derive(Default)]
struct Tally {
    applied: Vec<String>,
    already: Vec<String>,
    conflicts: Vec<String>,
}

impl Tally {
    fn done(&self, n: u64) -> Value {
        json!({"kind": "done", "n": n, "applied": self.applied, "already": self.already, "conflicts": self.conflicts})
    }

    fn absorb(&mut self, other: Tally) {
        self.applied.extend(other.applied);
        self.already.extend(other.already);
        self.conflicts.extend(other.conflicts);
    }
}

fn apply_indexes(
    t: &Target,
    entries: &[&Entry],
    jr: &mut Journal,
    n: u64,
    run: &mut Tally,
) -> Result<(), ApplyError> {
    let existing = t.indexes()?;
    let mut tally = Tally::default();
    let mut todo = Vec::new();
    let mut journaled = Vec::new();
    for e in entries {
        let after = e.after.clone().unwrap_or(Value::Null);
        let name = after["name"].as_str().unwrap_or_default().to_string();
        let id = index_id(e);
        match (e.action.as_str(), existing.get(&name)) {
            ("create_index", Some(ix)) => {
                // The same index only with the same key and options the plan asks for.
                let option = |v: &Value, o: &str| v[o] == true;
                let same = crate::value::key_hash(&ix["key"])
                    == crate::value::key_hash(&after["key"])
                    && super::plan::INDEX_OPTIONS
                        .iter()
                        .all(|o| option(ix, o) == option(&after, o));
                if same {
                    tally.already.push(id);
                } else {
                    tally.conflicts.push(id);
                }
            }
            ("drop_index", None) => tally.already.push(id),
            (action, before) => {
                journaled.push(
                    json!({"action": action, "_id": Value::Null, "before": before, "after": after}),
                );
                todo.push((e, name, id));
            }
        }
    }
    failpoint("apply.before-batch");
    if !journaled.is_empty() {
        jr.append(&json!({"kind": "batch", "n": n, "entries": journaled}))?;
        failpoint("apply.batch-journaled");
    }
    for (e, name, id) in todo {
        let after = e.after.clone().unwrap_or(Value::Null);
        let result = if e.action == "create_index" {
            let mut ix = doc! {"key": index_key(&after["key"])?, "name": &name};
            for option in super::plan::INDEX_OPTIONS {
                if after[option] == true {
                    ix.insert(option, true);
                }
            }
            t.db.run_command(doc! {"createIndexes": &t.collection, "indexes": [ix]})
                .run()
        } else {
            t.db.run_command(doc! {"dropIndexes": &t.collection, "index": &name})
                .run()
        };
        match result {
            Ok(_) => tally.applied.push(id),
            // The data does not allow it (a unique index over duplicates): not done.
            Err(err) if is_duplicate_key(&err) => {
                eoutln!(
                    "docsweep: index {name} of {}: the server refused it: {err}",
                    t.collection
                );
                tally.conflicts.push(id);
            }
            Err(err) => return Err(t.err(&format!("{} {name}", e.action), err)),
        }
    }
    jr.append(&tally.done(n))?;
    failpoint("apply.batch-done");
    run.absorb(tally);
    Ok(())
}

/// Documents quarantined into files: the `_id`s each file holds already, so that a
/// resumed run never appends one twice.
#[derive(Default)]
struct FileQuarantine {
    ids: HashMap<PathBuf, HashSet<String>>,
}

impl FileQuarantine {
    fn put(&mut self, path: &Path, doc: &Value) -> Result<(), ApplyError> {
        let io = |e: std::io::Error| ApplyError::Io {
            path: path.to_path_buf(),
            message: e.to_string(),
        };
        if !self.ids.contains_key(path) {
            let mut have = HashSet::new();
            if let Ok(text) = std::fs::read_to_string(path) {
                for line in text.lines() {
                    if let Ok(v) = serde_json::from_str::<Value>(line) {
                        have.insert(id_of(&v));
                    }
                }
            }
            self.ids.insert(path.to_path_buf(), have);
        }
        let have = self.ids.get_mut(path).expect("inserted above");
        let id = id_of(doc);
        if have.contains(&id) {
            return Ok(());
        }
        let mut f = crate::os::open_append(path, crate::os::Access::Private).map_err(io)?;
        writeln!(f, "{doc}").map_err(io)?;
        f.sync_data().map_err(io)?;
        have.insert(id);
        Ok(())
    }
}

fn apply_batch(
    t: &Target,
    entries: &[&Entry],
    jr: &mut Journal,
    n: u64,
    throttle: &mut Throttle,
    files: &mut FileQuarantine,
    run: &mut Tally,
) -> Result<(), ApplyError> {
    let mut ids = Vec::with_capacity(entries.len());
    for e in entries {
        ids.push(json_to_bson(&e.id, "_id")?);
    }
    let current = t.current(&t.coll, &ids)?;
    let mut tally = Tally::default();
    let mut todo: Vec<(&Entry, Bson, Option<&RawDocumentBuf>)> = Vec::new();
    let mut journaled = Vec::new();
    let mut seen = HashSet::new();
    for (e, id) in entries.iter().zip(ids) {
        let key = crate::scan::id_text(&e.id);
        if !seen.insert(key.clone()) {
            // One write per `_id`: a second entry for it is a conflict.
            tally.conflicts.push(key);
            continue;
        }
        let cur = current.get(&key);
        let cur_fp = match cur {
            Some(c) => Some(fp_raw(c.as_bytes())?),
            None => None,
        };
        let after_fp = e.after.as_ref().map(fp);
        let need = match (e.action.as_str(), cur_fp) {
            ("insert", None) => Need::Write,
            ("insert", Some(c)) if Some(c) == after_fp => Need::Already,
            ("delete" | "quarantine", None) => Need::Already,
            ("replace", Some(c)) if Some(c) == after_fp => Need::Already,
            ("replace" | "delete" | "quarantine", Some(c)) if Some(c) == e.before => Need::Write,
            _ => Need::Conflict,
        };
        match need {
            Need::Already => tally.already.push(key),
            Need::Conflict => tally.conflicts.push(key),
            Need::Write => {
                let mut rec = json!({"action": e.action, "_id": e.id, "before": Value::Null, "after": e.after});
                if let Some(c) = cur {
                    rec["before"] = decode(c.as_bytes())?;
                    rec["before_bson"] = Value::from(b64(c.as_bytes()));
                }
                if let Some(to) = &e.to {
                    rec["to"] = Value::from(to.as_str());
                }
                journaled.push(rec);
                todo.push((e, id, cur));
            }
        }
    }
    // The intent is durable before the first write.
    failpoint("apply.before-batch");
    if !journaled.is_empty() {
        jr.append(&json!({"kind": "batch", "n": n, "entries": journaled}))?;
        failpoint("apply.batch-journaled");
    }
    for (i, (e, id, cur)) in todo.into_iter().enumerate() {
        if i == 1 {
            failpoint("apply.mid-batch");
        }
        throttle.tick();
        let key = crate::scan::id_text(&e.id);
        let ok = match e.action.as_str() {
            "replace" => {
                let cur = cur.expect("a replace writes over a present document");
                let after = e.after.clone().unwrap_or(Value::Null);
                let bytes = after_bytes(Some(cur.as_bytes()), &after)?;
                cas_replace(t, &t.coll, cur, to_raw(bytes, &key)?, e.before.unwrap_or(0))?
            }
            "delete" => {
                let cur = cur.expect("a delete removes a present document");
                cas_delete(t, &t.coll, cur, e.before.unwrap_or(0))?
            }
            "quarantine" => {
                let cur = cur.expect("a quarantine moves a present document");
                quarantine(t, e, cur, files)?
            }
            "insert" => {
                let after = e.after.clone().unwrap_or(Value::Null);
                let raw = to_raw(after_bytes(None, &after)?, &key)?;
                match t.coll.insert_one(raw).run() {
                    Ok(_) => Cas::Written,
                    Err(err) if is_duplicate_key(&err) => {
                        // Someone inserted it since the read: same document or not.
                        let now = t.current(&t.coll, std::slice::from_ref(&id))?;
                        match now.get(&key) {
                            Some(d) if fp_raw(d.as_bytes())? == fp(&after) => Cas::Already,
                            _ => Cas::Conflict,
                        }
                    }
                    Err(err) => return Err(t.err(&format!("insert _id {key}"), err)),
                }
            }
            other => return Err(usage(format!("_id {key}: unknown action {other:?}"))),
        };
        match ok {
            Cas::Written => tally.applied.push(key),
            Cas::Already => tally.already.push(key),
            Cas::Conflict => tally.conflicts.push(key),
        }
    }
    jr.append(&tally.done(n))?;
    failpoint("apply.batch-done");
    run.absorb(tally);
    Ok(())
}

enum Cas {
    Written,
    Already,
    Conflict,
}

/// Replaces `current` with `new` when the server still holds a document fingerprinted
/// `expect`; a concurrent change the filter could not see is put back.
fn cas_replace(
    t: &Target,
    coll: &Collection<RawDocumentBuf>,
    current: &RawDocumentBuf,
    new: RawDocumentBuf,
    expect: u128,
) -> Result<Cas, ApplyError> {
    let filter = t.pin(current);
    let replaced = coll
        .find_one_and_replace(filter.clone(), &new)
        .return_document(ReturnDocument::Before)
        .run()
        .map_err(|e| t.err(&format!("findAndModify in {}", coll.name()), e))?;
    match replaced {
        None => Ok(Cas::Conflict),
        Some(old) if fp_raw(old.as_bytes())? == expect => Ok(Cas::Written),
        Some(old) => {
            // Not the planned before-image: put the other writer's document back.
            coll.find_one_and_replace(t.pin(&new), &old)
                .run()
                .map_err(|e| t.err(&format!("restoring in {}", coll.name()), e))?;
            Ok(Cas::Conflict)
        }
    }
}

/// Deletes `current` when the server still holds a document fingerprinted `expect`.
fn cas_delete(
    t: &Target,
    coll: &Collection<RawDocumentBuf>,
    current: &RawDocumentBuf,
    expect: u128,
) -> Result<Cas, ApplyError> {
    let removed = coll
        .find_one_and_delete(t.pin(current))
        .run()
        .map_err(|e| t.err(&format!("findAndModify in {}", coll.name()), e))?;
    match removed {
        None => Ok(Cas::Conflict),
        Some(old) if fp_raw(old.as_bytes())? == expect => Ok(Cas::Written),
        Some(old) => {
            coll.insert_one(old)
                .run()
                .map_err(|e| t.err(&format!("restoring in {}", coll.name()), e))?;
            Ok(Cas::Conflict)
        }
    }
}

/// Inserts `doc` unless a document with its `_id` is there: the same one is fine, another
/// one is a conflict.
fn insert_absent(
    t: &Target,
    coll: &Collection<RawDocumentBuf>,
    doc: &RawDocumentBuf,
) -> Result<Cas, ApplyError> {
    match coll.insert_one(doc).run() {
        Ok(_) => Ok(Cas::Written),
        Err(err) if is_duplicate_key(&err) => {
            let v = decode(doc.as_bytes())?;
            let id = json_to_bson(&v["_id"], "_id")?;
            let now = t.current(coll, &[id])?;
            match now.get(&id_of(&v)) {
                Some(d) if fp_raw(d.as_bytes())? == fp(&v) => Ok(Cas::Already),
                _ => Ok(Cas::Conflict),
            }
        }
        Err(err) => Err(t.err(&format!("insert into {}", coll.name()), err)),
    }
}

/// Quarantine: the document goes into the quarantine target first, then leaves the
/// collection with compare-and-set; on a conflict it leaves the quarantine again.
fn quarantine(
    t: &Target,
    e: &Entry,
    cur: &RawDocumentBuf,
    files: &mut FileQuarantine,
) -> Result<Cas, ApplyError> {
    let expect = e.before.unwrap_or(0);
    let qcoll = quarantine_collection(e, &t.collection);
    match &qcoll {
        Some(q) => {
            let qc = t.db.collection::<RawDocumentBuf>(q);
            if let Cas::Conflict = insert_absent(t, &qc, cur)? {
                return Ok(Cas::Conflict);
            }
        }
        None => {
            let file =
                e.to.as_deref()
                    .and_then(|s| s.strip_prefix("file:"))
                    .unwrap_or("quarantine.jsonl");
            files.put(Path::new(file), &decode(cur.as_bytes())?)?;
        }
    }
    let r = cas_delete(t, &t.coll, cur, expect)?;
    if let (Cas::Conflict, Some(q)) = (&r, &qcoll) {
        let qc = t.db.collection::<RawDocumentBuf>(q);
        qc.find_one_and_delete(t.pin(cur))
            .run()
            .map_err(|err| t.err(&format!("findAndModify in {q}"), err))?;
    }
    Ok(r)
}

/// One journaled change, for undo.
struct Journaled {
    action: String,
    id: Value,
    before: Option<Vec<u8>>,
    before_json: Value,
    after: Value,
    to: Option<String>,
}

/// Reads an applied journal for undo: its header and the changes that were written.
fn journaled_changes(path: &Path) -> Result<(Value, Vec<Journaled>), ApplyError> {
    let read = journal::read(path)?;
    let header = read.records[0].clone();
    if !read.records.iter().any(|r| r["kind"] == "finish") {
        return Err(usage(format!(
            "{}: the apply did not finish; re-run `docsweep repair apply` to complete it first",
            path.display()
        )));
    }
    let mut written = HashSet::new();
    let mut conflicts = HashSet::new();
    for r in read.records.iter().filter(|r| r["kind"] == "done") {
        for l in ["applied", "already"] {
            for id in r[l].as_array().into_iter().flatten() {
                written.insert(id.as_str().unwrap_or_default().to_string());
            }
        }
        for id in r["conflicts"].as_array().into_iter().flatten() {
            conflicts.insert(id.as_str().unwrap_or_default().to_string());
        }
    }
    let mut seen = HashSet::new();
    let mut out = Vec::new();
    for r in read.records.iter().filter(|r| r["kind"] == "batch") {
        for e in r["entries"].as_array().into_iter().flatten() {
            let action = e["action"].as_str().unwrap_or_default().to_string();
            let key = if e["_id"].is_null() {
                format!("index:{}", e["after"]["name"].as_str().unwrap_or_default())
            } else {
                crate::scan::id_text(&e["_id"])
            };
            // The first journaled before-image is the original one.
            if !seen.insert(key.clone()) {
                continue;
            }
            if conflicts.contains(&key) && !written.contains(&key) {
                continue;
            }
            let before = match e["before_bson"].as_str() {
                Some(s) => Some(unb64(s, &format!("{}: entry {key}", path.display()))?),
                None => None,
            };
            out.push(Journaled {
                action,
                id: e["_id"].clone(),
                before,
                before_json: e["before"].clone(),
                after: e["after"].clone(),
                to: e["to"].as_str().map(str::to_string),
            });
        }
    }
    Ok((header, out))
}

/// Counts per action of an applied journal (for the summary shown without `--yes`).
pub fn journal_counts(
    path: &Path,
) -> Result<(String, std::collections::BTreeMap<String, u64>), ApplyError> {
    let (h, changes) = journaled_changes(path)?;
    let mut m = std::collections::BTreeMap::new();
    for c in &changes {
        *m.entry(c.action.clone()).or_insert(0) += 1;
    }
    Ok((
        format!(
            "{} {}.{}",
            h["target"].as_str().unwrap_or_default(),
            h["database"].as_str().unwrap_or_default(),
            h["collection"].as_str().unwrap_or_default()
        ),
        m,
    ))
}

/// Whether a journal is of a live apply.
pub fn journal_is_live(path: &Path) -> Result<bool, ApplyError> {
    let read = journal::read(path)?;
    Ok(is_live(
        read.records[0]["target"].as_str().unwrap_or_default(),
    ))
}

/// Undoes a live apply from its journal: every written document goes back to its
/// before-image where it still is the after-image (compare-and-set); deleted and
/// quarantined documents come back where their `_id` is absent; created indexes are
/// dropped and dropped ones created again. Re-running an undo is idempotent.
pub fn undo_live(
    journal_path: &Path,
    uri: Option<&str>,
    rate: Option<f64>,
) -> Result<LiveOutcome, ApplyError> {
    let (header, changes) = journaled_changes(journal_path)?;
    let coll_name = header["collection"].as_str().unwrap_or_default();
    let t = Target::connect(
        header["target"].as_str().unwrap_or_default(),
        uri,
        header["database"].as_str(),
        coll_name,
    )?;
    let mut out = LiveOutcome {
        journal: journal_path.to_path_buf(),
        target: t.describe(),
        ..LiveOutcome::default()
    };
    let mut throttle = Throttle::new(rate);
    let existing = t.indexes()?;
    // Created indexes go first (a unique one would refuse the documents coming back).
    for c in changes.iter().filter(|c| c.action == "create_index") {
        let name = c.after["name"].as_str().unwrap_or_default();
        if !existing.contains_key(name) {
            out.already += 1;
            continue;
        }
        t.db.run_command(doc! {"dropIndexes": &t.collection, "index": name})
            .run()
            .map_err(|e| t.err(&format!("dropIndexes {name}"), e))?;
        out.applied += 1;
    }
    let docs: Vec<&Journaled> = changes.iter().filter(|c| !c.id.is_null()).collect();
    for chunk in docs.chunks(DEFAULT_BATCH) {
        let mut ids = Vec::new();
        for c in chunk {
            ids.push(json_to_bson(&c.id, "_id")?);
        }
        let current = t.current(&t.coll, &ids)?;
        for c in chunk {
            let key = crate::scan::id_text(&c.id);
            let before_raw = match &c.before {
                Some(b) => Some(to_raw(b.clone(), &key)?),
                None => None,
            };
            let before_fp = match &before_raw {
                Some(b) => Some(fp_raw(b.as_bytes())?),
                None if c.before_json.is_null() => None,
                None => Some(fp(&c.before_json)),
            };
            let after_fp = (!c.after.is_null()).then(|| fp(&c.after));
            let cur = current.get(&key);
            let cur_fp = match cur {
                Some(d) => Some(fp_raw(d.as_bytes())?),
                None => None,
            };
            throttle.tick();
            let r = match (c.action.as_str(), cur, cur_fp) {
                ("replace", Some(d), Some(f)) if Some(f) == after_fp => match &before_raw {
                    Some(b) => cas_replace(&t, &t.coll, d, b.clone(), f)?,
                    None => Cas::Conflict,
                },
                ("replace", Some(_), f) if f == before_fp => Cas::Already,
                ("insert", None, _) => Cas::Already,
                ("insert", Some(d), Some(f)) if Some(f) == after_fp => {
                    cas_delete(&t, &t.coll, d, f)?
                }
                ("delete" | "quarantine", None, _) => match &before_raw {
                    Some(b) => insert_absent(&t, &t.coll, b)?,
                    None => Cas::Conflict,
                },
                ("delete" | "quarantine", Some(_), f) if f == before_fp => Cas::Already,
                _ => Cas::Conflict,
            };
            // A document back from quarantine leaves the quarantine collection.
            if c.action == "quarantine" && !matches!(r, Cas::Conflict) {
                let e = Entry {
                    action: c.action.clone(),
                    id: c.id.clone(),
                    before: None,
                    after: None,
                    to: c.to.clone(),
                    at: None,
                };
                if let (Some(q), Some(b)) = (quarantine_collection(&e, coll_name), &before_raw) {
                    let qc = t.db.collection::<RawDocumentBuf>(&q);
                    qc.find_one_and_delete(t.pin(b))
                        .run()
                        .map_err(|err| t.err(&format!("findAndModify in {q}"), err))?;
                }
            }
            match r {
                Cas::Written => out.applied += 1,
                Cas::Already => out.already += 1,
                Cas::Conflict => out.conflicts.push(key),
            }
        }
    }
    // Dropped indexes come back last.
    for c in changes.iter().filter(|c| c.action == "drop_index") {
        let name = c.after["name"].as_str().unwrap_or_default();
        if existing.contains_key(name) || t.indexes()?.contains_key(name) {
            out.already += 1;
            continue;
        }
        let ix = dropped_index_spec(&c.before_json, name)?;
        match t
            .db
            .run_command(doc! {"createIndexes": &t.collection, "indexes": [ix]})
            .run()
        {
            Ok(_) => out.applied += 1,
            Err(e) if is_duplicate_key(&e) => out.conflicts.push(format!("index:{name}")),
            Err(e) => return Err(t.err(&format!("createIndexes {name}"), e)),
        }
    }
    Ok(out)
}

/// The `createIndexes` spec that gives back a dropped index: everything `listIndexes`
/// showed before the drop (unique, sparse, partial filter, collation, TTL, …) except what
/// the server sets itself (`v`, `ns`).
fn dropped_index_spec(before: &Value, name: &str) -> Result<Document, ApplyError> {
    let mut ix = match json_to_bson(before, &format!("index {name}"))? {
        Bson::Document(d) => d,
        _ => Document::new(),
    };
    // Set by the server, or options no server since 3.0 takes (`dropDups`).
    for field in ["v", "ns", "dropDups"] {
        ix.remove(field);
    }
    ix.insert("key", index_key(&before["key"])?);
    ix.insert("name", name);
    Ok(ix)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rates() {
        assert_eq!(parse_rate("200"), Ok(200.0));
        assert_eq!(parse_rate("2.5/s"), Ok(2.5));
        assert!(parse_rate("0").is_err());
        assert!(parse_rate("fast").is_err());
        assert!(parse_rate("-1/s").is_err());
    }

    #[test]
    fn a_dropped_index_comes_back_with_its_options() {
        let before = json!({"v": 2, "key": {"a": 1, "b": -1}, "name": "a_1_b_-1", "ns": "db.c",
            "unique": true, "sparse": true, "partialFilterExpression": {"a": {"$gt": 5}},
            "collation": {"locale": "fr", "strength": 2}, "expireAfterSeconds": 3600});
        let ix = dropped_index_spec(&before, "a_1_b_-1").unwrap();
        assert_eq!(
            ix,
            doc! {"key": {"a": 1, "b": -1}, "name": "a_1_b_-1", "unique": true, "sparse": true,
            "partialFilterExpression": {"a": {"$gt": 5}},
            "collation": {"locale": "fr", "strength": 2}, "expireAfterSeconds": 3600}
        );
        let keys: Vec<&str> = ix.keys().map(String::as_str).collect();
        assert_eq!(keys[..2], ["key", "name"]);
    }

    #[test]
    fn pinned_filters_only_scalars() {
        let d = doc! {"_id": 1, "a": "x", "b": [1], "c": {"d": 1}, "e.f": 1, "g": f64::NAN};
        let raw = RawDocumentBuf::from_bytes(d.to_vec().unwrap()).unwrap();
        let f = pinned(&raw, true);
        assert_eq!(pinned(&raw, false), doc! {"_id": 1});
        assert_eq!(f, doc! {"_id": 1, "a": {"$eq": "x"}});
    }

    #[test]
    fn journal_next_to_the_plan() {
        assert_eq!(
            default_journal(Path::new("x/fix.plan")),
            PathBuf::from("x/fix.plan.journal")
        );
    }
}
