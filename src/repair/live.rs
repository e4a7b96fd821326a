//! Applying a plan to a live deployment (`mongodb://…`), and undoing it.
//!
//! The journal (by default `<plan>.journal`, next to the plan) has the dump journal's
//! records: a `header` naming the target (redacted URI, database, collection), the plan's
//! checksum and the guard; per batch, a `batch` record with the before- and after-image of
//! every document about to be written, fsynced before any of the batch's writes; a `done`
//! record after them (`applied`, `already`: the `_id`s settled by the batch; `conflicts`:
//! `{_id, reason}`); and `finish` (`entries`, `applied`, `already`, `conflicts`). A
//! journal of another plan or target is refused.
//!
//! Every plan entry (index actions included) ends as exactly one of applied, already in
//! its after-state, or a conflict with a reason (`settle::Reason`); the three add up to
//! the plan's entry count. A second entry for an `_id` (or index name) is a conflict.
//!
//! Guarded writes: the documents of a batch are read by `_id` and fingerprinted; only a
//! document that is still the plan's before-image is written, and the write itself is
//! conditional on the document as read — never a write followed by a repair:
//!
//! - MongoDB (`Guard::Document`): `replaceOne`/`deleteOne` filtered on the `_id` and
//!   `$expr: {$eq: ["$$ROOT", {$literal: <the document as read>}]}`, which the server
//!   checks atomically with the write. Any change since the read (a sub-document, field
//!   order, a field added) makes it match nothing. Only a change of a number's type alone
//!   (Int32 5 to Double 5.0) compares equal.
//! - FerretDB (`Guard::TopLevel`) has no such guard: it refuses `$expr` `$eq`, and it runs
//!   every `findAndModify`, `update` and `delete` as a read, a filter in its own code and
//!   a write by `_id`, not atomically, so a write of another client to the same document
//!   in between is lost whatever the filter says. Replacements, deletions and quarantines
//!   (and undoing replacements and inserts) are therefore refused there, before anything
//!   is written, unless the user accepts the top-level guard (`--guard top-level`): the
//!   filter is the exact value of every top-level field (numbers and null also by type);
//!   a replace is an update that `$set`s and `$unset`s only the changed top-level fields
//!   (a field someone added stays; its fields kept stay in place, new ones come last, so
//!   "already done" compares top-level fields in any order); a delete is filtered the
//!   same way (a field someone added goes with the document).
//!
//! A guarded write that matches nothing writes nothing: the document is read again to
//! say why (not found, changed since the plan, or already in the wanted state). Inserts
//! (and documents coming back on undo) are plain inserts: atomic on every server; an
//! `_id` held by another document is a conflict.
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
pub use super::settle::{Conflict, Reason};
use crate::source::{password_span, redact_uri, SourceError};

/// Documents per journaled batch unless `--batch-size` says otherwise.
pub const DEFAULT_BATCH: usize = 500;

/// What a live apply or undo did. Every entry ends as exactly one of `applied`,
/// `already` or a conflict: the three add up to `entries`.
#[derive(Debug, Default, Clone)]
pub struct LiveOutcome {
    /// Documents (and indexes) written by this run.
    pub applied: u64,
    /// Already in the wanted state (a re-run, or a resumed run finding its own writes).
    pub already: u64,
    /// Left as they were, each with its reason.
    pub conflicts: Vec<Conflict>,
    /// The plan's entries (apply) or the journaled changes (undo).
    pub entries: u64,
    /// How writes were guarded (None when nothing was done now).
    pub guard: Option<Guard>,
    /// The journal was finished: nothing was done now.
    pub finished_before: bool,
    /// An interrupted run was resumed.
    pub resumed: bool,
    pub journal: PathBuf,
    /// `URI (redacted) db.collection`.
    pub target: String,
}

/// How a write is made conditional on the document it replaces or deletes (see the
/// module documentation).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Guard {
    /// MongoDB: the filter is the `_id` and `$expr: {$eq: ["$$ROOT", <the document as
    /// read>]}`, checked by the server together with the write.
    Document,
    /// FerretDB, only with `--guard top-level`: the filter is the exact value of every
    /// top-level field, a replace is an update of the changed fields.
    TopLevel,
}

impl Guard {
    pub fn as_str(self) -> &'static str {
        match self {
            Guard::Document => "whole document",
            Guard::TopLevel => "top-level fields",
        }
    }
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
    /// `--guard top-level`: accept the weaker guard where the server has no other.
    pub accept_top_level: bool,
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
    /// `MongoDB` or `FerretDB <version>`.
    pub server: String,
    pub guard: Guard,
    /// The user accepted the top-level guard (`--guard top-level`).
    pub accept_top_level: bool,
    /// Prefixed to the keys of the journal's settled sets: `COLLECTION/` in a plan over
    /// several collections, where one `_id` may be in more than one.
    pub key_prefix: String,
}

impl Target {
    /// Connects to `recorded` (the plan's or journal's redacted source), using `given`
    /// (with the password) when there is one; they must name the same deployment.
    pub fn connect(
        recorded: &str,
        given: Option<&str>,
        database: Option<&str>,
        collection: &str,
        accept_top_level: bool,
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
        let ferretdb = info
            .get("ferretdbVersion")
            .map(|v| v.as_str().unwrap_or("?").to_string());
        Ok(Target {
            coll: db.collection::<RawDocumentBuf>(collection),
            redacted: redact_uri(&uri),
            collection: collection.to_string(),
            database: db_name,
            ferretdb: ferretdb.is_some(),
            guard: if ferretdb.is_some() {
                Guard::TopLevel
            } else {
                Guard::Document
            },
            accept_top_level,
            key_prefix: String::new(),
            server: match ferretdb {
                Some(v) => format!("FerretDB {v}"),
                None => "MongoDB".to_string(),
            },
            db,
            uri,
        })
    }

    /// Refuses (before anything is written) `n` writes over or deletions of existing
    /// documents (`what`) where the only guard is the top-level one and the user did not
    /// accept it.
    fn require_guard(&self, n: usize, what: &str) -> Result<(), ApplyError> {
        if n == 0 || self.guard == Guard::Document || self.accept_top_level {
            return Ok(());
        }
        Err(usage(format!(
            "{}: the server is {}, which cannot make a write conditional on the whole \
             document: it runs every update, findAndModify and delete as a read followed by \
             a write by _id, not atomically, so another client's write to the same document \
             in between is lost. {n} {what}; nothing was written. Pass --guard top-level to \
             accept the weaker guard (every top-level field compared, see the README), or \
             use a MongoDB server.",
            self.describe(),
            self.server
        )))
    }

    /// The guard filter for replacing or deleting `current` (the document as read, whose
    /// fingerprint was checked against the plan).
    fn guard_filter(&self, current: &RawDocumentBuf) -> Result<Document, ApplyError> {
        let d = Document::try_from(current.as_ref()).map_err(undecodable)?;
        let id = d
            .get("_id")
            .cloned()
            .ok_or_else(|| usage("a document without _id cannot be written"))?;
        match self.guard {
            Guard::Document => Ok(whole_document_filter(id, d)),
            Guard::TopLevel => top_level_filter(&d),
        }
    }

    fn err(&self, context: &str, e: impl std::fmt::Display) -> ApplyError {
        server_err(&self.uri, context, e)
    }

    fn describe(&self) -> String {
        format!("{} {}.{}", self.redacted, self.database, self.collection)
    }

    /// An entry's key in the journal's settled sets.
    fn key(&self, k: &str) -> String {
        format!("{}{k}", self.key_prefix)
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

fn undecodable(e: impl std::fmt::Display) -> ApplyError {
    usage(format!("a document cannot be decoded: {e}"))
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

/// The whole-document guard: the `_id` (so that the `_id` index finds the document) and
/// the whole document equal to `d`, field order and sub-documents included. `$literal`
/// keeps strings that start with `$` and fields named like operators from being read as
/// expressions.
fn whole_document_filter(id: Bson, d: Document) -> Document {
    doc! {
        "_id": id,
        "$expr": {"$eq": ["$$ROOT", {"$literal": Bson::Document(d)}]},
    }
}

/// A top-level field name an update or a filter can address as itself (not a path, not
/// an operator).
fn plain_name(k: &str) -> Result<(), ApplyError> {
    if k.is_empty() || k.starts_with('$') || k.contains('.') {
        return Err(usage(format!(
            "field {k:?}: a name that a filter or an update cannot address exactly; \
             this document needs the whole-document guard (MongoDB)"
        )));
    }
    Ok(())
}

/// The top-level guard: the `_id` and the exact value of every other top-level field
/// (`$eq`; sub-documents compare whole, field order included), numbers and null pinned to
/// their BSON type as well (`$eq` alone takes 5 for 5.0, and null for a missing field).
/// A field added by someone else is not seen (see the module documentation).
fn top_level_filter(d: &Document) -> Result<Document, ApplyError> {
    let mut f = Document::new();
    for (k, v) in d {
        if k == "_id" {
            f.insert("_id", v.clone());
            continue;
        }
        plain_name(k)?;
        let mut cond = doc! {"$eq": v.clone()};
        let ty = match v {
            Bson::Double(_) => Some("double"),
            Bson::Int32(_) => Some("int"),
            Bson::Int64(_) => Some("long"),
            Bson::Decimal128(_) => Some("decimal"),
            Bson::Null => Some("null"),
            _ => None,
        };
        if let Some(ty) = ty {
            cond.insert("$type", ty);
        }
        f.insert(k.clone(), cond);
    }
    Ok(f)
}

/// The update that turns `current` into `new` touching only the top-level fields that
/// differ: `$set` for changed and new ones, `$unset` for removed ones. Fields it keeps
/// stay where they are; new ones are appended (in name order, as servers apply `$set`).
fn top_level_update(
    current: &RawDocumentBuf,
    new: &RawDocumentBuf,
) -> Result<Document, ApplyError> {
    let cur = Document::try_from(current.as_ref()).map_err(undecodable)?;
    let new = Document::try_from(new.as_ref()).map_err(undecodable)?;
    let mut set = Document::new();
    let mut unset = Document::new();
    for (k, v) in &new {
        if cur.get(k) == Some(v) {
            continue;
        }
        if k == "_id" {
            return Err(usage("an after-image with another _id cannot be written"));
        }
        plain_name(k)?;
        set.insert(k.clone(), v.clone());
    }
    for k in cur.keys() {
        if !new.contains_key(k) {
            plain_name(k)?;
            unset.insert(k.clone(), "");
        }
    }
    let mut u = Document::new();
    if !set.is_empty() {
        u.insert("$set", set);
    }
    if !unset.is_empty() {
        u.insert("$unset", unset);
    }
    Ok(u)
}

/// The fingerprint a guard compares states by: in field order for the whole-document
/// guard; with the top-level fields in name order for the top-level one, whose updates
/// cannot put a new field where the after-image has it.
fn state_fp(v: &Value, guard: Guard) -> u128 {
    match (guard, v) {
        (Guard::TopLevel, Value::Object(m)) => {
            let mut keys: Vec<&String> = m.keys().collect();
            keys.sort();
            let sorted: serde_json::Map<String, Value> = keys
                .into_iter()
                .map(|k| (k.clone(), m[k].clone()))
                .collect();
            fp(&Value::Object(sorted))
        }
        _ => fp(v),
    }
}

fn state_fp_raw(bytes: &[u8], guard: Guard) -> Result<u128, ApplyError> {
    decode(bytes).map(|v| state_fp(&v, guard))
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
    Conflict(Reason),
}

/// The key of an entry in the journal's settled sets: the `_id` text, or `index:NAME`
/// for an index action.
fn entry_key(e: &Entry) -> String {
    if e.id.is_null() {
        index_id(e)
    } else {
        crate::scan::id_text(&e.id)
    }
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

/// The conflicts a `done` or `finish` record lists.
fn listed_conflicts(v: &Value) -> Vec<Conflict> {
    v.as_array()
        .into_iter()
        .flatten()
        .filter_map(Conflict::from_json)
        .collect()
}

/// Settled `_id`s and counts of an unfinished journal.
#[derive(Default)]
struct Progress {
    settled: HashSet<String>,
    applied: u64,
    already: u64,
    conflicts: Vec<Conflict>,
    batches: u64,
}

fn progress(records: &[Value]) -> Progress {
    let mut p = Progress::default();
    for r in records {
        if r["kind"] == "done" {
            for (list, n) in [("applied", &mut p.applied), ("already", &mut p.already)] {
                for id in r[list].as_array().into_iter().flatten() {
                    *n += 1;
                    p.settled
                        .insert(id.as_str().unwrap_or_default().to_string());
                }
            }
            for c in listed_conflicts(&r["conflicts"]) {
                p.settled.insert(c.id.clone());
                p.conflicts.push(c);
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
    let collections = plan.collections();
    let multi = collections.len() > 1;
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
        entries: plan.entries.len() as u64,
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
        if h["target"] != source
            || h["collection"] != coll_name.as_str()
            || (multi && h["collections"] != json!(collections))
        {
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
            out.conflicts = listed_conflicts(&f["conflicts"]);
            out.target = format!("{source} {coll_name}");
            return Ok(out);
        }
        Some(read)
    } else {
        None
    };
    // Every collection's connection and guard first: nothing is written unless all of
    // them can be.
    let mut targets = Vec::new();
    for c in &collections {
        let mut target = Target::connect(
            source,
            req.uri,
            plan.header["database"].as_str(),
            c,
            req.accept_top_level,
        )?;
        if multi {
            target.key_prefix = format!("{c}/");
        }
        let part = plan.of_collection(c);
        // Without a whole-document guard, writing over or deleting documents needs consent.
        let overwrites = part
            .entries
            .iter()
            .filter(|e| matches!(e.action.as_str(), "replace" | "delete" | "quarantine"))
            .count();
        target.require_guard(overwrites, "planned replacements, deletions or quarantines")?;
        targets.push((target, part));
    }
    let Some((first_target, _)) = targets.first() else {
        return Err(usage(format!(
            "{}: the plan names no collection",
            req.plan_path.display()
        )));
    };
    out.target = if multi {
        format!(
            "{} {} ({})",
            first_target.redacted,
            first_target.database,
            collections.join(", ")
        )
    } else {
        first_target.describe()
    };
    out.guard = Some(first_target.guard);
    let guard = first_target.guard;
    let database = first_target.database.clone();

    let (mut jr, prog) = match existing {
        Some(read) => {
            out.resumed = true;
            let p = progress(&read.records);
            let mut j = Journal::reopen(&req.journal, &read)?;
            j.append(&json!({
                "kind": "resume", "at": crate::report::now_rfc3339(),
                "torn_tail": read.torn_tail, "settled": p.settled.len(),
                "guard": guard.as_str(),
            }))?;
            (j, p)
        }
        None => {
            let mut j = Journal::create(&req.journal)?;
            j.append(&json!({
                "kind": "header", "format": journal::FORMAT,
                "plan": req.plan_path.display().to_string(), "plan_checksum": checksum,
                "target": source, "database": database, "collection": coll_name,
                "collections": collections,
                "template": plan.header["template"], "params": plan.header["params"],
                "started_at": crate::report::now_rfc3339(),
                "user": crate::os::actor(),
                "guard": guard.as_str(),
            }))?;
            (j, Progress::default())
        }
    };
    let mut n = prog.batches;
    let mut throttle = Throttle::new(req.rate);
    let mut run = Tally::default();
    let mut seconds = Vec::new();
    let mut files = FileQuarantine::default();
    for (target, part) in &targets {
        // One change per `_id` (and index name): a later entry for the same one is a
        // conflict.
        let mut first = HashSet::new();
        let mut entries = Vec::new();
        for e in &part.entries {
            let key = target.key(&entry_key(e));
            if first.insert(key.clone()) {
                entries.push(e);
            } else {
                seconds.push(Conflict::new(key, Reason::SecondEntry));
            }
        }
        let open = |e: &&Entry| !prog.settled.contains(&target.key(&entry_key(e)));
        // Dropped indexes go first (a wrong unique one would refuse documents the plan
        // brings back), created ones last (a unique one needs its duplicates resolved).
        let index_entries = |action: &str| -> Vec<&Entry> {
            entries
                .iter()
                .copied()
                .filter(|e| e.id.is_null() && e.action == action)
                .filter(open)
                .collect()
        };
        let (drops, creates) = (index_entries("drop_index"), index_entries("create_index"));
        if !drops.is_empty() {
            apply_indexes(target, &drops, &mut jr, n, &mut run)?;
            n += 1;
        }
        let docs: Vec<&Entry> = entries
            .iter()
            .copied()
            .filter(|e| !e.id.is_null())
            .filter(open)
            .collect();
        for chunk in docs.chunks(req.batch_size.max(1)) {
            apply_batch(
                target,
                chunk,
                &mut jr,
                n,
                &mut throttle,
                &mut files,
                &mut run,
            )?;
            n += 1;
        }
        if !creates.is_empty() {
            apply_indexes(target, &creates, &mut jr, n, &mut run)?;
            n += 1;
        }
    }
    out.applied = prog.applied + run.applied.len() as u64;
    out.already = prog.already + run.already.len() as u64;
    out.conflicts = prog.conflicts;
    out.conflicts.extend(run.conflicts);
    out.conflicts.extend(seconds);
    debug_assert_eq!(
        out.applied + out.already + out.conflicts.len() as u64,
        out.entries,
        "every entry settled once"
    );
    failpoint("apply.before-finish");
    let conflicts: Vec<Value> = out.conflicts.iter().map(Conflict::to_json).collect();
    jr.append(&json!({
        "kind": "finish", "entries": out.entries, "applied": out.applied,
        "already": out.already, "conflicts": conflicts,
        "finished_at": crate::report::now_rfc3339(),
    }))?;
    Ok(out)
}

/// The `_id`s a batch settled.
#[derive(Default)]
struct Tally {
    applied: Vec<String>,
    already: Vec<String>,
    conflicts: Vec<Conflict>,
}

impl Tally {
    fn done(&self, n: u64) -> Value {
        let conflicts: Vec<Value> = self.conflicts.iter().map(Conflict::to_json).collect();
        json!({"kind": "done", "n": n, "applied": self.applied, "already": self.already, "conflicts": conflicts})
    }

    fn settle(&mut self, key: String, r: Cas) {
        match r {
            Cas::Written => self.applied.push(key),
            Cas::Already => self.already.push(key),
            Cas::Conflict(reason) => self.conflicts.push(Conflict::new(key, reason)),
        }
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
        let id = t.key(&index_id(e));
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
                    tally
                        .conflicts
                        .push(Conflict::new(id, Reason::IndexDiffers));
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
        jr.append(
            &json!({"kind": "batch", "n": n, "collection": t.collection, "entries": journaled}),
        )?;
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
                tally.conflicts.push(Conflict::new(id, Reason::Refused));
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
    let mut todo: Vec<(&Entry, Option<&RawDocumentBuf>)> = Vec::new();
    let mut journaled = Vec::new();
    for e in entries {
        let key = crate::scan::id_text(&e.id);
        let cur = current.get(&key);
        // The planned before-fingerprint is in field order; "already done" is compared
        // as the guard can write it.
        let (cur_fp, cur_state) = match cur {
            Some(c) => {
                let v = decode(c.as_bytes())?;
                (Some(fp(&v)), Some(state_fp(&v, t.guard)))
            }
            None => (None, None),
        };
        let after_state = e.after.as_ref().map(|a| state_fp(a, t.guard));
        let need = match (e.action.as_str(), cur_fp) {
            ("insert", None) => Need::Write,
            ("insert", Some(_)) if cur_state == after_state => Need::Already,
            ("insert", Some(_)) => Need::Conflict(Reason::IdTaken),
            ("delete" | "quarantine", None) => Need::Already,
            ("replace", None) => Need::Conflict(Reason::NotFound),
            ("replace", Some(_)) if cur_state == after_state => Need::Already,
            ("replace" | "delete" | "quarantine", Some(c)) if Some(c) == e.before => Need::Write,
            ("replace" | "delete" | "quarantine", Some(_)) => {
                Need::Conflict(Reason::ChangedSincePlan)
            }
            (other, _) => return Err(usage(format!("_id {key}: unknown action {other:?}"))),
        };
        match need {
            Need::Already => tally.already.push(t.key(&key)),
            Need::Conflict(reason) => tally.conflicts.push(Conflict::new(t.key(&key), reason)),
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
                todo.push((e, cur));
            }
        }
    }
    // The intent is durable before the first write.
    failpoint("apply.before-batch");
    if !journaled.is_empty() {
        jr.append(
            &json!({"kind": "batch", "n": n, "collection": t.collection, "entries": journaled}),
        )?;
        failpoint("apply.batch-journaled");
    }
    for (i, (e, cur)) in todo.into_iter().enumerate() {
        if i == 1 {
            failpoint("apply.mid-batch");
        }
        throttle.tick();
        let key = crate::scan::id_text(&e.id);
        let after = e.after.clone().unwrap_or(Value::Null);
        let r = match (e.action.as_str(), cur) {
            ("replace", Some(cur)) => {
                let new = to_raw(after_bytes(Some(cur.as_bytes()), &after)?, &key)?;
                guarded_replace(t, &t.coll, cur, &new, Reason::ChangedSincePlan)?
            }
            ("delete", Some(cur)) => guarded_delete(t, &t.coll, cur, Reason::ChangedSincePlan)?.0,
            ("quarantine", Some(cur)) => quarantine(t, e, cur, files)?,
            ("insert", None) => {
                let raw = to_raw(after_bytes(None, &after)?, &key)?;
                insert_absent(t, &t.coll, &raw)?
            }
            (other, _) => {
                return Err(usage(format!(
                    "_id {key}: {other} of a document that is {}",
                    if cur.is_some() { "there" } else { "absent" }
                )))
            }
        };
        tally.settle(t.key(&key), r);
    }
    jr.append(&tally.done(n))?;
    failpoint("apply.batch-done");
    run.absorb(tally);
    Ok(())
}

/// How one guarded write ended.
enum Cas {
    Written,
    Already,
    Conflict(Reason),
}

/// After a guarded write matched nothing (nothing was written): why, from the document
/// as it is now. `goal` is the fingerprint (`state_fp`) of the state the write wanted;
/// `gone` what a missing document means.
fn missed(
    t: &Target,
    coll: &Collection<RawDocumentBuf>,
    id: &Bson,
    goal: Option<u128>,
    gone: Cas,
    changed: Reason,
) -> Result<Cas, ApplyError> {
    let now = t.current(coll, std::slice::from_ref(id))?;
    let Some(d) = now.into_values().next() else {
        return Ok(gone);
    };
    if goal.is_some() && Some(state_fp_raw(d.as_bytes(), t.guard)?) == goal {
        return Ok(Cas::Already);
    }
    Ok(Cas::Conflict(changed))
}

fn id_bson(d: &RawDocumentBuf) -> Result<Bson, ApplyError> {
    let d = Document::try_from(d.as_ref()).map_err(undecodable)?;
    d.get("_id")
        .cloned()
        .ok_or_else(|| usage("a document without _id cannot be written"))
}

/// Replaces `current` (the document as read, already checked against the plan) with
/// `new`, in one write that the server makes only while the document is still `current`
/// (see `Guard`). Nothing is written otherwise: a conflict (`changed`), `not found`, or
/// already the wanted state. Nothing is ever written back afterwards.
fn guarded_replace(
    t: &Target,
    coll: &Collection<RawDocumentBuf>,
    current: &RawDocumentBuf,
    new: &RawDocumentBuf,
    changed: Reason,
) -> Result<Cas, ApplyError> {
    let filter = t.guard_filter(current)?;
    let context = || format!("guarded write in {}", coll.name());
    let written = match t.guard {
        Guard::Document => {
            let r = coll
                .replace_one(filter, new)
                .run()
                .map_err(|e| t.err(&context(), e))?;
            r.matched_count == 1
        }
        Guard::TopLevel => {
            let update = top_level_update(current, new)?;
            let result = coll
                .find_one_and_update(filter, update)
                .return_document(ReturnDocument::After)
                .run()
                .map_err(|e| t.err(&context(), e))?;
            match result {
                Some(now) => {
                    if state_fp_raw(now.as_bytes(), t.guard)?
                        != state_fp_raw(new.as_bytes(), t.guard)?
                    {
                        crate::eoutln!(
                            "docsweep: {}: _id {}: written, and the document also holds a change the top-level guard cannot see (a field added since it was read); that change was kept",
                            coll.name(),
                            id_of(&decode(now.as_bytes())?)
                        );
                    }
                    true
                }
                None => false,
            }
        }
    };
    if written {
        return Ok(Cas::Written);
    }
    let goal = state_fp_raw(new.as_bytes(), t.guard)?;
    missed(
        t,
        coll,
        &id_bson(current)?,
        Some(goal),
        Cas::Conflict(Reason::NotFound),
        changed,
    )
}

/// Deletes `current` (the document as read) in one write that the server makes only
/// while the document is still `current`. Returns the outcome and, when written, the
/// document the server deleted.
fn guarded_delete(
    t: &Target,
    coll: &Collection<RawDocumentBuf>,
    current: &RawDocumentBuf,
    changed: Reason,
) -> Result<(Cas, Option<RawDocumentBuf>), ApplyError> {
    let filter = t.guard_filter(current)?;
    let context = || format!("guarded delete in {}", coll.name());
    let deleted = match t.guard {
        Guard::Document => {
            let r = coll
                .delete_one(filter)
                .run()
                .map_err(|e| t.err(&context(), e))?;
            (r.deleted_count == 1).then(|| current.clone())
        }
        Guard::TopLevel => {
            let old = coll
                .find_one_and_delete(filter)
                .run()
                .map_err(|e| t.err(&context(), e))?;
            if let Some(old) = &old {
                if state_fp_raw(old.as_bytes(), t.guard)?
                    != state_fp_raw(current.as_bytes(), t.guard)?
                {
                    crate::eoutln!(
                        "docsweep: {}: _id {}: deleted with a field added since it was read (the top-level guard cannot see added fields)",
                        coll.name(),
                        id_of(&decode(old.as_bytes())?)
                    );
                }
            }
            old
        }
    };
    if deleted.is_some() {
        return Ok((Cas::Written, deleted));
    }
    let r = missed(t, coll, &id_bson(current)?, None, Cas::Already, changed)?;
    Ok((r, None))
}

/// Inserts `doc` unless a document with its `_id` is there (an insert is atomic on every
/// server): the same one is already done, another one is a conflict.
fn insert_absent(
    t: &Target,
    coll: &Collection<RawDocumentBuf>,
    doc: &RawDocumentBuf,
) -> Result<Cas, ApplyError> {
    match coll.insert_one(doc).run() {
        Ok(_) => Ok(Cas::Written),
        Err(err) if is_duplicate_key(&err) => {
            let goal = state_fp_raw(doc.as_bytes(), t.guard)?;
            missed(
                t,
                coll,
                &id_bson(doc)?,
                Some(goal),
                Cas::Conflict(Reason::IdTaken),
                Reason::IdTaken,
            )
        }
        Err(err) => Err(t.err(&format!("insert into {}", coll.name()), err)),
    }
}

/// Quarantine: the document goes into the quarantine target first, then leaves the
/// collection with a guarded delete; when that deletes nothing, the copy leaves the
/// quarantine collection again (a guarded delete of docsweep's own copy).
fn quarantine(
    t: &Target,
    e: &Entry,
    cur: &RawDocumentBuf,
    files: &mut FileQuarantine,
) -> Result<Cas, ApplyError> {
    let qcoll = quarantine_collection(e, &t.collection);
    match &qcoll {
        Some(q) => {
            let qc = t.db.collection::<RawDocumentBuf>(q);
            if let Cas::Conflict(_) = insert_absent(t, &qc, cur)? {
                return Ok(Cas::Conflict(Reason::IdTaken));
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
    let (r, deleted) = guarded_delete(t, &t.coll, cur, Reason::ChangedSincePlan)?;
    if let Some(q) = &qcoll {
        let qc = t.db.collection::<RawDocumentBuf>(q);
        match (&r, deleted) {
            // What left the collection is what the quarantine keeps (the top-level guard
            // may have deleted a document with an added field).
            (Cas::Written, Some(old)) if old.as_bytes() != cur.as_bytes() => {
                qc.replace_one(doc! {"_id": id_bson(cur)?}, &old)
                    .run()
                    .map_err(|err| t.err(&format!("replace in {q}"), err))?;
            }
            (Cas::Written, _) => {}
            _ => {
                guarded_delete(t, &qc, cur, Reason::ChangedSincePlan)?;
            }
        }
    }
    Ok(r)
}

/// One journaled change, for undo.
struct Journaled {
    /// The collection it changed.
    collection: String,
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
        for c in listed_conflicts(&r["conflicts"]) {
            conflicts.insert(c.id);
        }
    }
    let mut seen = HashSet::new();
    let mut out = Vec::new();
    let collections = journal::collections(&header);
    for r in read.records.iter().filter(|r| r["kind"] == "batch") {
        let collection = r["collection"]
            .as_str()
            .or(header["collection"].as_str())
            .unwrap_or_default()
            .to_string();
        // Keys in a journal over several collections name theirs (see `Target::key_prefix`).
        let prefix = if collections.len() > 1 {
            format!("{collection}/")
        } else {
            String::new()
        };
        for e in r["entries"].as_array().into_iter().flatten() {
            let action = e["action"].as_str().unwrap_or_default().to_string();
            let key = if e["_id"].is_null() {
                format!(
                    "{prefix}index:{}",
                    e["after"]["name"].as_str().unwrap_or_default()
                )
            } else {
                format!("{prefix}{}", crate::scan::id_text(&e["_id"]))
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
                collection: collection.clone(),
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
            journal::collections(&h).join(",")
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

/// Undoes a live apply from its journal, with the apply's guards: every written document
/// goes back to its before-image where it still is the after-image; deleted and
/// quarantined documents come back where their `_id` is absent; created indexes are
/// dropped and dropped ones created again. Every journaled change ends as undone, already
/// undone, or a conflict with its reason. Re-running an undo is idempotent.
pub fn undo_live(
    journal_path: &Path,
    uri: Option<&str>,
    rate: Option<f64>,
    accept_top_level: bool,
) -> Result<LiveOutcome, ApplyError> {
    let (header, changes) = journaled_changes(journal_path)?;
    let collections = journal::collections(&header);
    let multi = collections.len() > 1;
    // Every collection's connection and guard first: nothing is written unless all of
    // them can be.
    let mut targets = Vec::new();
    for c in &collections {
        let mut t = Target::connect(
            header["target"].as_str().unwrap_or_default(),
            uri,
            header["database"].as_str(),
            c,
            accept_top_level,
        )?;
        if multi {
            t.key_prefix = format!("{c}/");
        }
        let mine: Vec<&Journaled> = changes.iter().filter(|j| j.collection == *c).collect();
        // Undoing a replace writes over a document, undoing an insert deletes one.
        let overwrites = mine
            .iter()
            .filter(|c| matches!(c.action.as_str(), "replace" | "insert"))
            .count();
        t.require_guard(overwrites, "journaled replacements or inserts to undo")?;
        targets.push((t, mine));
    }
    let Some((first, _)) = targets.first() else {
        return Err(usage(format!(
            "{}: the journal names no collection",
            journal_path.display()
        )));
    };
    let mut out = LiveOutcome {
        journal: journal_path.to_path_buf(),
        target: if multi {
            format!(
                "{} {} ({})",
                first.redacted,
                first.database,
                collections.join(", ")
            )
        } else {
            first.describe()
        },
        entries: changes.len() as u64,
        guard: Some(first.guard),
        ..LiveOutcome::default()
    };
    let mut tally = Tally::default();
    let mut throttle = Throttle::new(rate);
    for (t, mine) in &targets {
        undo_collection(t, mine, &mut throttle, &mut tally)?;
    }
    out.applied = tally.applied.len() as u64;
    out.already = tally.already.len() as u64;
    out.conflicts = tally.conflicts;
    debug_assert_eq!(
        out.applied + out.already + out.conflicts.len() as u64,
        out.entries,
        "every journaled change settled once"
    );
    Ok(out)
}

/// Undoes one collection's journaled changes.
fn undo_collection(
    t: &Target,
    changes: &[&Journaled],
    throttle: &mut Throttle,
    tally: &mut Tally,
) -> Result<(), ApplyError> {
    let existing = t.indexes()?;
    // Created indexes go first (a unique one would refuse the documents coming back).
    for c in changes.iter().filter(|c| c.action == "create_index") {
        let name = c.after["name"].as_str().unwrap_or_default();
        let key = t.key(&format!("index:{name}"));
        if !existing.contains_key(name) {
            tally.already.push(key);
            continue;
        }
        t.db.run_command(doc! {"dropIndexes": &t.collection, "index": name})
            .run()
            .map_err(|e| t.err(&format!("dropIndexes {name}"), e))?;
        tally.applied.push(key);
    }
    let docs: Vec<&Journaled> = changes
        .iter()
        .copied()
        .filter(|c| !c.id.is_null())
        .collect();
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
            let before_state = match &before_raw {
                Some(b) => Some(state_fp_raw(b.as_bytes(), t.guard)?),
                None if c.before_json.is_null() => None,
                None => Some(state_fp(&c.before_json, t.guard)),
            };
            let after_state = (!c.after.is_null()).then(|| state_fp(&c.after, t.guard));
            let cur = current.get(&key);
            let cur_state = match cur {
                Some(d) => Some(state_fp_raw(d.as_bytes(), t.guard)?),
                None => None,
            };
            throttle.tick();
            let changed = Reason::ChangedSinceApply;
            let r = match (c.action.as_str(), cur) {
                ("replace", None) => Cas::Conflict(Reason::NotFound),
                ("replace", Some(d)) if cur_state == after_state => match &before_raw {
                    Some(b) => guarded_replace(t, &t.coll, d, b, changed)?,
                    None => Cas::Conflict(changed),
                },
                ("replace", Some(_)) if cur_state == before_state => Cas::Already,
                ("insert", None) => Cas::Already,
                ("insert", Some(d)) if cur_state == after_state => {
                    guarded_delete(t, &t.coll, d, changed)?.0
                }
                ("delete" | "quarantine", None) => match &before_raw {
                    Some(b) => insert_absent(t, &t.coll, b)?,
                    None => Cas::Conflict(changed),
                },
                ("delete" | "quarantine", Some(_)) if cur_state == before_state => Cas::Already,
                ("delete" | "quarantine", Some(_)) => Cas::Conflict(Reason::IdTaken),
                _ => Cas::Conflict(changed),
            };
            // A document back from quarantine leaves the quarantine collection.
            if c.action == "quarantine" && !matches!(r, Cas::Conflict(_)) {
                let e = Entry {
                    action: c.action.clone(),
                    id: c.id.clone(),
                    before: None,
                    after: None,
                    to: c.to.clone(),
                    at: None,
                    collection: None,
                };
                if let (Some(q), Some(b)) = (quarantine_collection(&e, &t.collection), &before_raw)
                {
                    let qc = t.db.collection::<RawDocumentBuf>(&q);
                    let copy =
                        t.current(&qc, std::slice::from_ref(&json_to_bson(&c.id, "_id")?))?;
                    if let Some(copy) = copy.get(&key) {
                        if copy.as_bytes() == b.as_bytes() {
                            guarded_delete(t, &qc, copy, changed)?;
                        }
                    }
                }
            }
            tally.settle(t.key(&key), r);
        }
    }
    // Dropped indexes come back last.
    for c in changes.iter().filter(|c| c.action == "drop_index") {
        let name = c.after["name"].as_str().unwrap_or_default();
        let key = t.key(&format!("index:{name}"));
        if existing.contains_key(name) || t.indexes()?.contains_key(name) {
            tally.already.push(key);
            continue;
        }
        let ix = dropped_index_spec(&c.before_json, name)?;
        match t
            .db
            .run_command(doc! {"createIndexes": &t.collection, "indexes": [ix]})
            .run()
        {
            Ok(_) => tally.applied.push(key),
            Err(e) if is_duplicate_key(&e) => {
                tally.conflicts.push(Conflict::new(key, Reason::Refused))
            }
            Err(e) => return Err(t.err(&format!("createIndexes {name}"), e)),
        }
    }
    Ok(())
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

    fn raw(d: Document) -> RawDocumentBuf {
        RawDocumentBuf::from_bytes(d.to_vec().unwrap()).unwrap()
    }

    #[test]
    fn the_whole_document_guard_compares_the_literal_document() {
        let d = doc! {"_id": 1, "price": "$5", "c": {"$gt": 1}};
        assert_eq!(
            whole_document_filter(Bson::Int32(1), d.clone()),
            doc! {"_id": 1, "$expr": {"$eq": ["$$ROOT", {"$literal": d}]}}
        );
    }

    #[test]
    fn the_top_level_guard_pins_every_field_and_the_type_of_numbers() {
        let d = doc! {"_id": 1, "a": "x", "b": [1], "c": {"d": 1}, "n": 5_i64, "z": Bson::Null};
        assert_eq!(
            top_level_filter(&d).unwrap(),
            doc! {"_id": 1, "a": {"$eq": "x"}, "b": {"$eq": [1]}, "c": {"$eq": {"d": 1}},
            "n": {"$eq": 5_i64, "$type": "long"}, "z": {"$eq": Bson::Null, "$type": "null"}}
        );
        // Names a filter would read as a path or an operator are refused.
        assert!(top_level_filter(&doc! {"_id": 1, "e.f": 1}).is_err());
        assert!(top_level_filter(&doc! {"_id": 1, "$x": 1}).is_err());
    }

    #[test]
    fn the_top_level_update_touches_only_changed_fields() {
        let cur = raw(doc! {"_id": 1, "first": "a", "last": "b", "counter": {"n": 0}, "k": 1});
        let new = raw(doc! {"_id": 1, "name": "a b", "counter": {"n": 0}, "k": 1_i64});
        assert_eq!(
            top_level_update(&cur, &new).unwrap(),
            doc! {"$set": {"name": "a b", "k": 1_i64}, "$unset": {"first": "", "last": ""}}
        );
        let moved = raw(doc! {"_id": 2, "first": "a"});
        assert!(top_level_update(&cur, &moved).is_err(), "another _id");
    }

    #[test]
    fn the_top_level_state_ignores_the_order_of_top_level_fields_only() {
        let a = json!({"_id": 1, "name": "x", "c": {"p": 1, "q": 2}});
        let b = json!({"_id": 1, "c": {"p": 1, "q": 2}, "name": "x"});
        let c = json!({"_id": 1, "c": {"q": 2, "p": 1}, "name": "x"});
        assert_ne!(state_fp(&a, Guard::Document), state_fp(&b, Guard::Document));
        assert_eq!(state_fp(&a, Guard::TopLevel), state_fp(&b, Guard::TopLevel));
        assert_ne!(state_fp(&a, Guard::TopLevel), state_fp(&c, Guard::TopLevel));
    }

    #[test]
    fn journal_next_to_the_plan() {
        assert_eq!(
            default_journal(Path::new("x/fix.plan")),
            PathBuf::from("x/fix.plan.journal")
        );
    }
}
