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

use serde_json::{json, Value};
use std::collections::{HashMap, HashSet};

use super::ops::{CollectionAction, Outcome, QuarantineTarget, Step};
use super::template::{Bound, Selection};
use crate::contract::{Contract, ContractSet};
use crate::report::ViolationSink;
use crate::scan::{self, Baseline, Class, ScanOptions};
use crate::source::Source;

mod entry;
mod file;
mod header;

pub use entry::{Action, Entry};
pub use header::{PlanHeader, TemplateParams};

/// The current plan format (chained line checksums).
pub const FORMAT: &str = "docsweep-plan/2";

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

/// A plan in memory.
///
/// `H` is the header's type: always [`PlanHeader`] here; a hand-built header (any
/// `Serialize`, such as a `serde_json::Value` in a benchmark) can be written too.
#[derive(Debug, Clone)]
pub struct Plan {
    pub header: PlanHeader,
    pub entries: Vec<Entry>,
}

impl Plan {
    /// The collection of a plan over one collection ("" for a plan over several).
    pub fn collection(&self) -> &str {
        self.header.collection.as_deref().unwrap_or_default()
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
        Plan {
            header: self.header.of_collection(coll),
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
    fn header(&self) -> PlanHeader {
        let req = self.req;
        let params = req
            .chain
            .iter()
            .map(|b| TemplateParams {
                template: b.template().name.clone(),
                params: b.params().iter().cloned().collect(),
            })
            .collect();
        let names: Vec<String> = req
            .chain
            .iter()
            .map(|b| b.template().name.clone())
            .collect();
        PlanHeader {
            template: names.join("+"),
            templates: Some(names),
            params: Some(params),
            select: Some(self.selection.as_str()),
            collection: Some(self.coll.to_string()),
            source: req.source.spec.to_string(),
            database: req.source.database.clone(),
            target_version: Some(req.contract.target),
            created_at: req.created_at.clone(),
            kept_as_baseline: (self.protected > 0).then_some(self.protected),
            ..PlanHeader::new(FORMAT)
        }
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
