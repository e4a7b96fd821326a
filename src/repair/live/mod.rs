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
//!
//! Files: [`apply`] (the apply and its resume), [`undo`], [`target`] (the connection and
//! the guarded writes).

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

mod apply;
mod target;
mod undo;

pub use apply::apply_live;
pub use target::Target;
use target::*;
pub use undo::{journal_counts, journal_is_live, undo_live};

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

/// Counts per action, for the summary printed before (or instead of) writing.
pub fn action_counts(plan: &Plan) -> std::collections::BTreeMap<String, u64> {
    let mut m = std::collections::BTreeMap::new();
    for e in &plan.entries {
        *m.entry(e.action.to_string()).or_insert(0) += 1;
    }
    m
}

#[cfg(test)]
mod tests;
