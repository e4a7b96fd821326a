//! Repair plans: a template bound to concrete documents, computed without writing
//! anything. The plan file is checksummed JSON lines (the journal's line format):
//! `<16 hex digits of xxh3-64> <json>\n`, chained as the journal's are: a line's checksum
//! is seeded with the previous line's (the header's seed is 0), so an entry removed,
//! repeated or moved is refused, not only one edited in place. (Plans of format
//! `docsweep-plan/1`, whose lines are checksummed one by one, are still read.)
//!
//! - `plan` header: `format` (`docsweep-plan/2`), `template`, `params`, `collection`,
//!   `source` (redacted), `target_version`, `created_at`.
//! - `entry` lines, in source order: `action` (`replace`, `delete`, `quarantine`,
//!   `insert`, `create_index`, `drop_index`), `_id`, `before` (the 128-bit order-sensitive
//!   fingerprint of the document as planned, hex; compare-and-set checks it), `after` (the
//!   after-image, relaxed Extended JSON), `to` (quarantine target).
//! - `summary` last: counts per action and `entries`; a plan without it is truncated.
//!
//! A plan over several collections (`repair plan --from-report`, see [`super::from_report`])
//! has `template: "from-report"`, `from_report` (the report directory), `collections`,
//! `target_versions` (per collection) and `parts` (per remediation: its finding, collection,
//! templates, stage, entries, and why it was refused if it was) in its header, and every
//! entry names its `collection`.
//!
//! Every `replace` and `insert` after-image passes the target version's schema, or no
//! plan is written and the refusal names the documents and why.

use std::collections::{HashMap, HashSet};
use std::path::Path;

use serde_json::{json, Map, Value};

use super::journal;
use super::ops::{CollectionAction, Outcome, QuarantineTarget, Step};
use super::template::{Bound, Selection};
use crate::contract::{Contract, ContractSet};
use crate::report::ViolationSink;
use crate::scan::{self, Baseline, Class, ScanOptions};
use crate::source::Source;

pub const FORMAT: &str = "docsweep-plan/2";
/// The earlier format: the same lines, each checksummed on its own.
const FORMAT_UNCHAINED: &str = "docsweep-plan/1";

/// The boolean index options a `create_index` entry's after-image may set (`true` only).
pub const INDEX_OPTIONS: [&str; 2] = ["unique", "sparse"];

#[derive(Debug, thiserror::Error)]
pub enum PlanError {
    #[error(transparent)]
    Source(#[from] crate::source::SourceError),
    #[error(transparent)]
    Scan(#[from] scan::ScanError),
    #[error("the plan is refused: {count} planned document(s) would not pass {collection} version {version}:\n{details}")]
    Refused {
        collection: String,
        version: u32,
        count: usize,
        details: String,
    },
    /// An `orphan:` selection on a reference that could not be verified: the referenced
    /// collection was not read completely, so an orphan cannot be told from a document
    /// whose referenced record is among the unreadable ones.
    #[error("the plan is refused: the references {reference} are not verified ({reason}); a document whose referenced record could not be read would be taken for an orphan. Make {referenced} readable and plan again")]
    NotVerified {
        /// `orders.customer_id → customers._id`
        reference: String,
        /// `customers: 1 unreadable record`
        reason: String,
        /// The referenced collection and its file: `customers (dump/shop/customers.bson)`.
        referenced: String,
    },
    #[error("{0}")]
    Usage(String),
    #[error("plan {path}: {message}")]
    File { path: String, message: String },
}

/// What a plan entry does.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Action {
    /// The document is replaced by the after-image.
    Replace,
    Delete,
    /// The document is removed from the collection and kept in `to`.
    Quarantine,
    /// The after-image is inserted (a document restored from the baseline).
    Insert,
    CreateIndex,
    DropIndex,
}

impl Action {
    pub const ALL: [Action; 6] = [
        Action::Replace,
        Action::Delete,
        Action::Quarantine,
        Action::Insert,
        Action::CreateIndex,
        Action::DropIndex,
    ];

    /// The name plans and journals use.
    pub fn as_str(self) -> &'static str {
        match self {
            Action::Replace => "replace",
            Action::Delete => "delete",
            Action::Quarantine => "quarantine",
            Action::Insert => "insert",
            Action::CreateIndex => "create_index",
            Action::DropIndex => "drop_index",
        }
    }

    pub fn parse(s: &str) -> Option<Action> {
        Action::ALL.into_iter().find(|a| a.as_str() == s)
    }

    /// An index action (the entry has no `_id`).
    pub fn is_index(self) -> bool {
        matches!(self, Action::CreateIndex | Action::DropIndex)
    }

    /// Writes over or removes an existing document.
    pub fn overwrites(self) -> bool {
        matches!(self, Action::Replace | Action::Delete | Action::Quarantine)
    }
}

impl std::fmt::Display for Action {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl serde::Serialize for Action {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

/// One planned change.
#[derive(Debug, Clone, PartialEq)]
pub struct Entry {
    pub action: Action,
    pub id: Value,
    pub before: Option<u128>,
    pub after: Option<Value>,
    pub to: Option<String>,
    /// Where the document was in the source (byte offset in a dump), so that apply acts
    /// on exactly that record even when several share an `_id`.
    pub at: Option<u64>,
    /// The collection, in a plan over several (`--from-report`); None: the header's.
    pub collection: Option<String>,
}

impl Entry {
    fn to_json(&self) -> Value {
        let mut m = Map::new();
        m.insert("kind".into(), "entry".into());
        m.insert("action".into(), Value::from(self.action.as_str()));
        m.insert("_id".into(), self.id.clone());
        if let Some(b) = self.before {
            m.insert("before".into(), Value::from(format!("{b:032x}")));
        }
        if let Some(a) = &self.after {
            m.insert("after".into(), a.clone());
        }
        if let Some(t) = &self.to {
            m.insert("to".into(), Value::from(t.as_str()));
        }
        if let Some(at) = self.at {
            m.insert("at".into(), Value::from(at));
        }
        if let Some(c) = &self.collection {
            m.insert("collection".into(), Value::from(c.as_str()));
        }
        Value::Object(m)
    }

    fn from_json(v: &Value) -> Result<Entry, String> {
        let name = v["action"].as_str().ok_or("entry without action")?;
        let action = Action::parse(name).ok_or_else(|| {
            format!(
                "unknown action {name:?} (for _id {}): a plan from another docsweep version?",
                scan::id_text(&v["_id"])
            )
        })?;
        let before = match v.get("before").and_then(Value::as_str) {
            Some(h) => Some(u128::from_str_radix(h, 16).map_err(|_| "bad before fingerprint")?),
            None => None,
        };
        Ok(Entry {
            action,
            id: v.get("_id").cloned().unwrap_or(Value::Null),
            before,
            after: v.get("after").cloned(),
            to: v.get("to").and_then(Value::as_str).map(str::to_string),
            at: v.get("at").and_then(Value::as_u64),
            collection: v
                .get("collection")
                .and_then(Value::as_str)
                .map(str::to_string),
        })
    }
}

/// A plan in memory.
#[derive(Debug, Clone)]
pub struct Plan {
    pub header: Value,
    pub entries: Vec<Entry>,
}

impl Plan {
    /// The collection of a plan over one collection ("" for a plan over several).
    pub fn collection(&self) -> &str {
        self.header["collection"].as_str().unwrap_or_default()
    }

    /// The collection an entry changes.
    pub fn collection_of<'a>(&'a self, e: &'a Entry) -> &'a str {
        e.collection.as_deref().unwrap_or_else(|| self.collection())
    }

    /// The collections the plan changes, in the order they first appear (the header's
    /// for a plan over one collection, even when it has no entries).
    pub fn collections(&self) -> Vec<String> {
        let mut out: Vec<String> = Vec::new();
        if !self.collection().is_empty() {
            out.push(self.collection().to_string());
        }
        for e in &self.entries {
            let c = self.collection_of(e);
            if !out.iter().any(|o| o == c) {
                out.push(c.to_string());
            }
        }
        out
    }

    /// The plan restricted to one collection's entries, as a plan over that collection.
    pub fn of_collection(&self, coll: &str) -> Plan {
        let mut header = self.header.clone();
        header["collection"] = Value::from(coll);
        if let Some(v) = self.header["target_versions"].get(coll) {
            header["target_version"] = v.clone();
        }
        Plan {
            header,
            entries: self
                .entries
                .iter()
                .filter(|e| self.collection_of(e) == coll)
                .map(|e| Entry {
                    collection: None,
                    ..e.clone()
                })
                .collect(),
        }
    }

    pub fn summary(&self) -> Value {
        let mut counts: std::collections::BTreeMap<&str, u64> = Default::default();
        for e in &self.entries {
            *counts.entry(e.action.as_str()).or_insert(0) += 1;
        }
        json!({"kind": "summary", "entries": self.entries.len(), "actions": counts})
    }

    /// Writes the plan atomically, its lines chained.
    pub fn write(&self, path: &Path) -> Result<(), PlanError> {
        let mut text = String::new();
        let mut seed = 0;
        let records = std::iter::once(self.header.clone())
            .chain(self.entries.iter().map(Entry::to_json))
            .chain(std::iter::once(self.summary()));
        for record in records {
            let (line, sum) = journal::chained_line(&record, seed);
            text.push_str(&line);
            seed = sum;
        }
        // Owner-only: it holds after-images.
        crate::os::write_atomic(path, text.as_bytes(), crate::os::Access::Private).map_err(|e| {
            PlanError::File {
                path: path.display().to_string(),
                message: format!("cannot write: {e}"),
            }
        })
    }

    /// Reads and verifies a plan: every line's checksum and their chain, the header,
    /// and the summary.
    pub fn read(path: &Path) -> Result<Plan, PlanError> {
        let bad = |message: String| PlanError::File {
            path: path.display().to_string(),
            message,
        };
        let text = std::fs::read_to_string(path).map_err(|e| bad(format!("cannot read: {e}")))?;
        let mut lines = Vec::new();
        let mut seed = 0;
        let mut chained = false;
        for (i, line) in text.split_inclusive('\n').enumerate() {
            if !line.ends_with('\n') {
                return Err(bad(format!("truncated at line {}", i + 1)));
            }
            let (v, sum) = journal::parse_seeded(line.as_bytes(), if chained { seed } else { 0 })
                .map_err(|m| {
                    bad(format!(
                        "line {}: {m}: the plan was edited or damaged; make it again with `docsweep repair plan`",
                        i + 1
                    ))
                })?;
            if i == 0 {
                chained = v["format"] == FORMAT;
            }
            seed = sum;
            lines.push(v);
        }
        let header = lines.first().cloned().ok_or_else(|| bad("empty".into()))?;
        if header["kind"] != "plan"
            || (header["format"] != FORMAT && header["format"] != FORMAT_UNCHAINED)
        {
            return Err(bad(format!("not a {FORMAT} plan")));
        }
        let summary = lines.last().cloned().unwrap_or(Value::Null);
        if summary["kind"] != "summary" || lines.len() < 2 {
            return Err(bad("truncated: no summary line".into()));
        }
        let entries = lines[1..lines.len() - 1]
            .iter()
            .enumerate()
            .map(|(i, v)| Entry::from_json(v).map_err(|m| bad(format!("entry {}: {m}", i + 1))))
            .collect::<Result<Vec<_>, _>>()?;
        if summary["entries"].as_u64() != Some(entries.len() as u64) {
            return Err(bad("the summary does not match the entries".into()));
        }
        Ok(Plan { header, entries })
    }
}

/// Collects the `_id`s of the violations a selection picks.
struct Picker {
    finding: String,
    ids: HashSet<String>,
}

impl ViolationSink for Picker {
    fn violation(&mut self, v: &crate::report::Violation) -> std::io::Result<()> {
        if v.finding == self.finding && !v.id.is_empty() {
            self.ids.insert(v.id.clone());
        }
        Ok(())
    }
}

/// Documents of the baseline collection whose `_id` text is in `ids`.
fn baseline_docs(
    baseline: &Baseline,
    collection: &str,
    ids: &HashSet<String>,
) -> Result<HashMap<String, Value>, PlanError> {
    let mut out = HashMap::new();
    if ids.is_empty() {
        return Ok(out);
    }
    match baseline {
        Baseline::Source(s) => {
            let Some(cs) = s.collection(collection) else {
                return Ok(out);
            };
            scan::read_documents(s, cs, &mut |_, doc| {
                if let Some(doc) = doc {
                    let id = doc.get("_id").map(scan::id_text).unwrap_or_default();
                    if ids.contains(&id) {
                        out.insert(id, doc);
                    }
                }
                Ok(())
            })?;
        }
        Baseline::Snapshot(snap) => {
            let Some(c) = snap.collection(collection) else {
                return Ok(out);
            };
            let mut wanted = HashSet::new();
            let mut id_of = HashMap::new();
            for i in 0..c.ids.len() {
                let id = c.ids.get(i);
                if ids.contains(&id) {
                    wanted.insert(i as u32);
                    id_of.insert(i as u32, id);
                }
            }
            match snap.documents(collection, &wanted) {
                None => {
                    return Err(PlanError::Usage(format!(
                        "the snapshot has no documents of {collection}: restoring needs `docsweep snapshot --full` or a source as the baseline"
                    )))
                }
                Some(r) => {
                    for (ordinal, doc) in r.map_err(|e| PlanError::Usage(e.to_string()))? {
                        if let Some(id) = id_of.remove(&ordinal) {
                            out.insert(id, doc);
                        }
                    }
                }
            }
        }
    }
    Ok(out)
}

/// Whether a class selection (`valid`, `invalid`, `other_version:N`) picks the
/// document; None for selections that are not by class.
fn selected_by_class(selection: &Selection, contract: &Contract, doc: &Value) -> Option<bool> {
    let want = match selection {
        Selection::Valid => Class::Valid,
        Selection::Invalid => Class::Invalid,
        Selection::OtherVersion(v) => Class::OtherVersion(*v),
        _ => return None,
    };
    Some(scan::classify(contract, doc).0 == want)
}

/// The key of a document for a `duplicate:<fields>` selection (as the unique check keys it).
pub(super) fn duplicate_key(doc: &Value, fields: &str) -> u128 {
    let mut bytes = Vec::new();
    for f in fields.split(',') {
        let mut hs: Vec<u128> = scan::values_at(doc, f)
            .into_iter()
            .map(crate::value::key_hash)
            .collect();
        if hs.is_empty() {
            hs.push(crate::value::key_hash(&Value::Null));
        }
        hs.sort_unstable();
        for h in hs {
            bytes.extend_from_slice(&h.to_le_bytes());
        }
        bytes.push(0xff);
    }
    xxhash_rust::xxh3::xxh3_128(&bytes)
}

/// Which member of a duplicate group a dedupe keeps.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Keep {
    /// The first in source order (file order for a dump, `_id` order live).
    First,
    /// The one equal to its baseline image; the first where none is.
    Baseline,
}

/// The `keep` parameter of the selecting template: `first`, `baseline`, or `auto` (the
/// default: `baseline` when a baseline is given, else `first`).
fn keep_policy(first: &Bound, have_baseline: bool) -> Result<Keep, PlanError> {
    let value = first
        .params()
        .iter()
        .find(|(n, _)| n == "keep")
        .and_then(|(_, v)| v.as_str())
        .unwrap_or("auto");
    match (value, have_baseline) {
        ("first", _) | ("auto", false) => Ok(Keep::First),
        ("baseline" | "auto", true) => Ok(Keep::Baseline),
        ("baseline", false) => Err(PlanError::Usage(
            "keep=baseline needs a baseline: pass --baseline (a snapshot or a source)".into(),
        )),
        (other, _) => Err(PlanError::Usage(format!(
            "keep={other:?}: expected first, baseline or auto"
        ))),
    }
}

/// The baseline's fingerprints of a collection, to tell which documents equal their
/// baseline image; None when the baseline lacks the collection.
fn baseline_images<'b>(
    baseline: &'b Baseline,
    collection: &str,
    opts: &ScanOptions,
) -> Result<Option<std::borrow::Cow<'b, crate::reconcile::Reconciler>>, PlanError> {
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(opts.threads)
        .build()
        .map_err(|e| PlanError::Usage(format!("cannot start {} threads: {e}", opts.threads)))?;
    match baseline.entries(collection, &pool, opts.batch_records) {
        None => Ok(None),
        Some(r) => Ok(Some(r?.0)),
    }
}

/// Refuses an `orphan:<field>` selection when a reference of that field is not verified
/// (its collection is not in the source, has unreadable records or failed to read): no
/// document may be quarantined or deleted as an orphan on such a reference.
fn refuse_unverified(
    source: &Source,
    reports: &[crate::report::CollectionReport],
    coll: &str,
    field: &str,
) -> Result<(), PlanError> {
    let unverified = reports
        .iter()
        .filter(|c| c.name == coll)
        .flat_map(|c| &c.references)
        .find(|r| r.field == field && !r.checked);
    let Some(r) = unverified else {
        return Ok(());
    };
    let file = source
        .collection(&r.collection)
        .map(|cs| cs.file.display().to_string())
        .unwrap_or_else(|| format!("the source {} has no such collection", source.spec));
    Err(PlanError::NotVerified {
        reference: format!("{coll}.{field} → {}.{}", r.collection, r.to),
        reason: r
            .reason
            .clone()
            .unwrap_or_else(|| format!("{}: not read", r.collection)),
        referenced: format!("{} ({file})", r.collection),
    })
}

/// Everything a plan is made from.
pub struct Request<'a> {
    pub source: &'a Source,
    pub baseline: Option<&'a Baseline>,
    pub contracts: &'a ContractSet,
    pub contract: &'a Contract,
    /// The templates, applied in order; the first one selects the documents.
    pub chain: &'a [Bound],
    /// Overrides the first template's selection (`--select`).
    pub select: Option<Selection>,
    pub scan: &'a ScanOptions,
    pub created_at: String,
}

/// Applies the chain of templates: each one to the previous one's result, stopping at
/// a delete or quarantine.
fn apply_chain(chain: &[Bound], doc: &Value, baseline: Option<&Value>) -> Result<Outcome, String> {
    let mut current: Option<Value> = None;
    for b in chain {
        let input = current.as_ref().unwrap_or(doc);
        if current.is_some() && !b.matches_filter(input) {
            continue;
        }
        match b
            .apply(input, baseline)
            .map_err(|e| format!("template {}: {e}", b.template().name))?
        {
            Outcome::Replace(v) => current = Some(v),
            Outcome::Unchanged => {}
            other => return Ok(other),
        }
    }
    Ok(match current {
        Some(v) if v != *doc => Outcome::Replace(v),
        _ => Outcome::Unchanged,
    })
}

/// Why an after-image does not pass the target version, if it does not.
fn after_refusal(contract: &Contract, id: &Value, after: &Value) -> Option<String> {
    let target = contract.target_version();
    if target.validator.is_valid(after) {
        return None;
    }
    let first = target
        .validator
        .iter_errors(after)
        .next()
        .map(|e| {
            let at = e.instance_path().as_str().to_string();
            format!(
                "{} at {}",
                e.masked(),
                if at.is_empty() { "/".to_string() } else { at }
            )
        })
        .unwrap_or_default();
    Some(format!("  _id {}: {first}", scan::id_text(id)))
}

/// The index actions of a chain, as entries.
fn index_entries(chain: &[Bound]) -> Vec<Entry> {
    let entry = |action: Action, after: Value| Entry {
        action,
        id: Value::Null,
        before: None,
        after: Some(after),
        to: None,
        at: None,
        collection: None,
    };
    chain
        .iter()
        .flat_map(Bound::collection_actions)
        .map(|action| match action {
            CollectionAction::CreateIndex {
                key,
                unique,
                sparse,
                name,
            } => {
                let name = name.unwrap_or_else(|| key.default_name());
                let mut after = json!({"key": key.to_json(), "name": name});
                for (option, set) in INDEX_OPTIONS.into_iter().zip([unique, sparse]) {
                    if set {
                        after[option] = Value::Bool(true);
                    }
                }
                entry(Action::CreateIndex, after)
            }
            CollectionAction::DropIndex { name } => {
                entry(Action::DropIndex, json!({ "name": name }))
            }
        })
        .collect()
}

/// The entry for what the chain made of a document (None: unchanged).
fn document_entry(
    outcome: Outcome,
    coll: &str,
    id: Value,
    before: Option<u128>,
    at: Option<u64>,
) -> Option<Entry> {
    let entry = |action: Action, after: Option<Value>, to: Option<String>| Entry {
        action,
        id: id.clone(),
        before,
        after,
        to,
        at,
        collection: None,
    };
    match outcome {
        Outcome::Unchanged => None,
        Outcome::Replace(after) => Some(entry(Action::Replace, Some(after), None)),
        Outcome::Delete => Some(entry(Action::Delete, None, None)),
        Outcome::Quarantine { to, doc } => {
            let to = match to {
                QuarantineTarget::DefaultCollection => format!("collection:{coll}_quarantine"),
                QuarantineTarget::Collection(c) => format!("collection:{c}"),
                QuarantineTarget::File(p) => format!("file:{}", p.display()),
            };
            Some(entry(Action::Quarantine, Some(doc), Some(to)))
        }
    }
}

/// One plan being made: the request, what it selects, and what it found so far.
struct Planner<'r, 'a> {
    req: &'r Request<'a>,
    coll: &'r str,
    selection: Selection,
    needs_baseline: bool,
    /// The `_id`s a collection-wide finding picks (None: the selection is by class).
    picked: Option<HashSet<String>>,
    entries: Vec<Entry>,
    /// After-images that do not pass the target version.
    refused: Vec<String>,
    /// Documents a delete or quarantine would have removed but that equal their baseline.
    protected: u64,
}

impl Planner<'_, '_> {
    /// The `_id`s of the documents a collection-wide finding picks (orphans, duplicates,
    /// and against the baseline missing, changed, added), by a scan.
    fn pick(&mut self) -> Result<(), PlanError> {
        let finding = match &self.selection {
            Selection::Orphan(f) => format!("orphan:{f}"),
            Selection::Duplicate(f) => format!("duplicate:{f}"),
            Selection::Missing => "missing".to_string(),
            Selection::Changed => "changed".to_string(),
            Selection::Added => "added".to_string(),
            _ => return Ok(()),
        };
        let mut picker = Picker {
            finding,
            ids: HashSet::new(),
        };
        let req = self.req;
        let outcome = scan::scan(
            req.source,
            req.baseline,
            req.contracts,
            &[self.coll.to_string()],
            req.scan,
            &mut picker,
        )?;
        if let Some(e) = outcome.failure {
            return Err(PlanError::Source(e));
        }
        if let Selection::Orphan(field) = &self.selection {
            refuse_unverified(req.source, &outcome.collections, self.coll, field)?;
        }
        self.picked = Some(picker.ids);
        Ok(())
    }

    /// Missing documents come from the baseline and are inserted.
    fn inserts(&mut self) -> Result<(), PlanError> {
        let ids = self.picked.take().unwrap_or_default();
        let baseline = self
            .req
            .baseline
            .ok_or_else(|| PlanError::Usage("no baseline".into()))?;
        let mut ordered: Vec<(String, Value)> = baseline_docs(baseline, self.coll, &ids)?
            .into_iter()
            .collect();
        ordered.sort_by(|a, b| a.0.cmp(&b.0));
        for (_, base) in ordered {
            let id = base.get("_id").cloned().unwrap_or(Value::Null);
            // The document is absent now: the template sees a stub and the baseline.
            let stub = json!({ "_id": id.clone() });
            let outcome = apply_chain(self.req.chain, &stub, Some(&base))
                .map_err(|e| PlanError::Usage(format!("_id {}: {e}", scan::id_text(&id))))?;
            let Outcome::Replace(after) = outcome else {
                continue;
            };
            self.refused
                .extend(after_refusal(self.req.contract, &id, &after));
            self.entries.push(Entry {
                action: Action::Insert,
                id,
                before: None,
                after: Some(after),
                to: None,
                at: None,
                collection: None,
            });
        }
        Ok(())
    }

    /// The baseline documents of the selected ones, for templates that restore from it.
    fn baseline_for_restores(
        &self,
        cs: &crate::source::CollectionSource,
    ) -> Result<HashMap<String, Value>, PlanError> {
        let req = self.req;
        let Some(b) = req.baseline.filter(|_| self.needs_baseline) else {
            return Ok(HashMap::new());
        };
        let ids = match &self.picked {
            Some(p) => p.clone(),
            // A selection by class: a first pass finds the selected documents.
            None => {
                let mut ids = HashSet::new();
                scan::read_documents(req.source, cs, &mut |_, doc| {
                    let Some(doc) = doc else { return Ok(()) };
                    if selected_by_class(&self.selection, req.contract, &doc).unwrap_or(true) {
                        ids.insert(doc.get("_id").map(scan::id_text).unwrap_or_default());
                    }
                    Ok(())
                })?;
                ids
            }
        };
        baseline_docs(b, self.coll, &ids)
    }

    /// Duplicate groups with a member equal to its baseline image (kept; the others go).
    fn groups_with_a_baseline_member(
        &self,
        cs: &crate::source::CollectionSource,
        keep: Keep,
        equals_baseline: &dyn Fn(&Value) -> bool,
    ) -> Result<HashSet<u128>, PlanError> {
        let mut groups = HashSet::new();
        let (Selection::Duplicate(fields), Keep::Baseline) = (&self.selection, keep) else {
            return Ok(groups);
        };
        scan::read_documents(self.req.source, cs, &mut |_, doc| {
            let Some(doc) = doc else { return Ok(()) };
            let id = doc.get("_id").map(scan::id_text).unwrap_or_default();
            if self.picked.as_ref().is_some_and(|p| p.contains(&id)) && equals_baseline(&doc) {
                groups.insert(duplicate_key(&doc, fields));
            }
            Ok(())
        })?;
        Ok(groups)
    }

    /// Every selected document of the source, through the chain.
    fn documents(&mut self, cs: &crate::source::CollectionSource) -> Result<(), PlanError> {
        let req = self.req;
        let first = &req.chain[0];
        let restores = self.baseline_for_restores(cs)?;
        // A document that equals its baseline image is never deleted or quarantined: with
        // a baseline, the copies that changed are the ones to go.
        let removes = req.chain.iter().any(|b| {
            b.steps()
                .iter()
                .any(|s| matches!(s, Step::Delete | Step::Quarantine { .. }))
        });
        let protect = match req.baseline {
            Some(b) if removes => baseline_images(b, self.coll, req.scan)?,
            _ => None,
        };
        let keep = keep_policy(first, req.baseline.is_some())?;
        let equals_baseline = |doc: &Value| {
            protect.as_ref().is_some_and(|r| {
                let id = doc.get("_id").map(crate::value::key_hash).unwrap_or(0);
                r.equals_baseline(id, crate::value::fingerprint(doc).content)
            })
        };
        let baseline_groups = self.groups_with_a_baseline_member(cs, keep, &equals_baseline)?;
        let mut first_of_group: HashSet<u128> = HashSet::new();
        let mut step_error = None;
        scan::read_documents(req.source, cs, &mut |location, doc| {
            let Some(doc) = doc else { return Ok(()) };
            if step_error.is_some() {
                return Ok(());
            }
            let id = doc.get("_id").cloned().unwrap_or(Value::Null);
            let id_str = scan::id_text(&id);
            let picked = self.picked.as_ref().is_some_and(|p| p.contains(&id_str));
            let selected = match &self.selection {
                Selection::All => true,
                Selection::Valid | Selection::Invalid | Selection::OtherVersion(_) => {
                    selected_by_class(&self.selection, req.contract, &doc).unwrap_or(false)
                }
                // One document of each group is kept as it is: the one equal to its
                // baseline image where there is one, else the first.
                Selection::Duplicate(fields) => {
                    let key = duplicate_key(&doc, fields);
                    picked
                        && if baseline_groups.contains(&key) {
                            !equals_baseline(&doc)
                        } else {
                            !first_of_group.insert(key)
                        }
                }
                _ => picked,
            };
            if !selected || !first.matches_filter(&doc) || id.is_null() {
                return Ok(());
            }
            let outcome = match apply_chain(req.chain, &doc, restores.get(&id_str)) {
                Ok(o) => o,
                Err(e) => {
                    step_error = Some(format!("_id {id_str}: {e}"));
                    return Ok(());
                }
            };
            if matches!(outcome, Outcome::Delete | Outcome::Quarantine { .. })
                && equals_baseline(&doc)
            {
                self.protected += 1;
                return Ok(());
            }
            if let Outcome::Replace(after) = &outcome {
                self.refused.extend(after_refusal(req.contract, &id, after));
            }
            let at = match location {
                crate::source::Location::Offset(o) => Some(o),
                _ => None,
            };
            let before = Some(crate::value::fingerprint(&doc).ordered);
            self.entries
                .extend(document_entry(outcome, self.coll, id, before, at));
            Ok(())
        })?;
        match step_error {
            Some(e) => Err(PlanError::Usage(format!(
                "template {}: {e}",
                first.template().name
            ))),
            None => Ok(()),
        }
    }

    /// The plan's header.
    fn header(&self) -> Value {
        let req = self.req;
        let params: Vec<Value> = req
            .chain
            .iter()
            .map(|b| {
                let p: Map<String, Value> = b.params().iter().cloned().collect();
                json!({"template": b.template().name, "params": p})
            })
            .collect();
        let names: Vec<&str> = req
            .chain
            .iter()
            .map(|b| b.template().name.as_str())
            .collect();
        let mut header = json!({
            "kind": "plan",
            "format": FORMAT,
            "template": names.join("+"),
            "templates": names,
            "params": params,
            "select": self.selection.as_str(),
            "collection": self.coll,
            "source": req.source.spec.to_string(),
            "database": req.source.database,
            "target_version": req.contract.target,
            "created_at": req.created_at,
        });
        if self.protected > 0 {
            header["kept_as_baseline"] = Value::from(self.protected);
        }
        header
    }
}

/// Computes a plan. Nothing is written to the data.
pub fn make(req: &Request<'_>) -> Result<Plan, PlanError> {
    let coll = req.contract.collection.as_str();
    let first = req
        .chain
        .first()
        .ok_or_else(|| PlanError::Usage("no template given".into()))?;
    let cs = req
        .source
        .collection(coll)
        .ok_or_else(|| PlanError::Usage(format!("the source has no collection {coll:?}")))?;
    let selection = req
        .select
        .clone()
        .unwrap_or_else(|| first.selection().clone());
    let needs_baseline = req.chain.iter().any(Bound::needs_baseline) || selection.needs_baseline();
    if needs_baseline && req.baseline.is_none() {
        return Err(PlanError::Usage(format!(
            "template {} needs a baseline: pass --baseline (a `snapshot --full` file or a source)",
            first.template().name
        )));
    }
    let mut planner = Planner {
        req,
        coll,
        selection,
        needs_baseline,
        picked: None,
        entries: index_entries(req.chain),
        refused: Vec::new(),
        protected: 0,
    };
    planner.pick()?;
    if matches!(planner.selection, Selection::Missing) {
        planner.inserts()?;
    } else {
        planner.documents(cs)?;
    }
    if !planner.refused.is_empty() {
        let count = planner.refused.len();
        planner.refused.truncate(20);
        return Err(PlanError::Refused {
            collection: coll.to_string(),
            version: req.contract.target,
            count,
            details: planner.refused.join("\n"),
        });
    }
    Ok(Plan {
        header: planner.header(),
        entries: planner.entries,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(n: u64) -> Entry {
        Entry {
            action: Action::Delete,
            id: json!(n),
            before: Some(u128::from(n)),
            after: None,
            to: None,
            at: None,
            collection: None,
        }
    }

    fn sample() -> Plan {
        Plan {
            header: json!({"kind": "plan", "format": FORMAT, "collection": "orders"}),
            entries: (1..=3).map(entry).collect(),
        }
    }

    fn lines(p: &Path) -> Vec<String> {
        std::fs::read_to_string(p)
            .unwrap()
            .split_inclusive('\n')
            .map(str::to_string)
            .collect()
    }

    #[test]
    fn a_plan_round_trips_and_an_entry_removed_and_another_repeated_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("p.plan");
        let plan = sample();
        plan.write(&p).unwrap();
        assert_eq!(Plan::read(&p).unwrap().entries, plan.entries);
        let all = lines(&p);
        assert_eq!(all.len(), 5);
        // The summary still counts 3 entries: only the chain tells.
        let orders: [(&str, &[usize]); 3] = [
            ("entry 2 removed, entry 1 repeated", &[0, 1, 1, 3, 4]),
            ("entry 3 removed, entry 2 repeated", &[0, 1, 2, 2, 4]),
            ("entries swapped", &[0, 2, 1, 3, 4]),
        ];
        for (what, order) in orders {
            let text: String = order.iter().map(|&i| all[i].as_str()).collect();
            std::fs::write(&p, text).unwrap();
            let e = Plan::read(&p).expect_err(what).to_string();
            assert!(e.contains("checksum mismatch"), "{what}: {e}");
            assert!(e.contains("p.plan"), "{what}: {e}");
        }
    }

    #[test]
    fn unchained_plans_of_the_earlier_format_are_read() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("old.plan");
        let plan = sample();
        let mut header = plan.header.clone();
        header["format"] = json!(FORMAT_UNCHAINED);
        let mut text = journal::line_for(&header);
        for e in &plan.entries {
            text.push_str(&journal::line_for(&e.to_json()));
        }
        text.push_str(&journal::line_for(&plan.summary()));
        std::fs::write(&p, &text).unwrap();
        assert_eq!(Plan::read(&p).unwrap().entries, plan.entries);
        // The same lines claiming the chained format are refused.
        header["format"] = json!(FORMAT);
        let mut lines: Vec<String> = text.split_inclusive('\n').map(str::to_string).collect();
        lines[0] = journal::line_for(&header);
        std::fs::write(&p, lines.concat()).unwrap();
        assert!(Plan::read(&p).is_err());
    }
}
