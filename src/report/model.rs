//! The report model: what a check found, per collection, as report.json has it (see the
//! field list in [`crate::report`]). The renderers (summary, HTML, JUnit, metrics,
//! notifications) lay it out; [`super::checks`] derives each check's findings from it.
//! Behaviour that needs thresholds or the previous run lives with them (`gate`, `trend`).

use std::collections::BTreeMap;

use serde::Serialize;
use serde_json::Value;

/// The outcome of a check run (report.json's `status`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Status {
    /// No findings.
    Clean,
    /// Findings that trip only `warn` thresholds (or none): the gate passes, exit 0.
    Warn,
    /// Findings (with thresholds: some check reached its `fail` level): exit 1.
    Findings,
    /// The source could not be read to the end (`error` says why): exit 3.
    Failed,
}

/// A whole check run: report.json without the run's scope (see [`super::Scope`]).
#[derive(Debug, Clone, Serialize)]
pub struct Report {
    /// Always [`super::FORMAT`].
    pub format: &'static str,
    /// The run's outcome (see [`Report::derive_status`]).
    pub status: Status,
    /// What was read (passwords redacted).
    pub source: String,
    /// The database of a live source, when it has one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub database: Option<String>,
    /// When the run started (RFC 3339, UTC).
    pub started_at: String,
    /// When the run finished (RFC 3339, UTC).
    pub finished_at: String,
    /// Why the scan failed (only when `status` is `failed`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// The baseline reconciled against, if any (passwords redacted).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub baseline: Option<String>,
    /// Warnings printed during the run.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub warnings: Vec<String>,
    /// One report per collection of the contract.
    pub collections: Vec<CollectionReport>,
    /// Thresholds decided the status (each collection's `verdict`).
    #[serde(skip)]
    pub gated: bool,
}

/// The documents of a collection by the contract version they match.
#[derive(Debug, Clone, Default, Serialize, PartialEq)]
pub struct Classes {
    /// Documents that match the target version.
    pub valid: u64,
    /// Documents that match another version of the contract, by version.
    pub other_version: BTreeMap<String, u64>,
    /// Documents that match no version.
    pub invalid: u64,
}

/// The collection's indexes against those the target version declares.
#[derive(Debug, Clone, Default, Serialize, PartialEq)]
pub struct IndexFindings {
    /// False when the source carries no index information (e.g. mongoexport).
    pub available: bool,
    /// Why the actual indexes could not be read (e.g. a broken metadata.json).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// Indexes the target version declares but the collection lacks.
    pub missing: Vec<Value>,
    /// Indexes the collection has but the target version does not declare.
    pub unexpected: Vec<Value>,
}

/// Documents sharing a value of one unique key.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct DuplicateFinding {
    /// The unique index's key (`{"field": 1, …}`).
    pub key: Value,
    /// The unique index's name.
    pub name: String,
    /// Values shared by more than one document.
    pub groups: u64,
    /// Every document in those groups.
    pub documents: u64,
}

/// One reference of the contract and the documents whose reference is not found.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct ReferenceFinding {
    /// The referring field.
    pub field: String,
    /// The referenced collection.
    pub collection: String,
    /// The field of the referenced collection referred to (e.g. `_id`).
    pub to: String,
    /// False when the reference could not be verified: the source does not have the
    /// referenced collection, or did not yield all of its records (unreadable records, a
    /// failed read). An orphan cannot be told from a reference to a record that could
    /// not be read, so nothing is counted as an orphan then.
    pub checked: bool,
    /// Why the reference is not verified (only when `checked` is false), e.g.
    /// `customers: 1 unreadable record`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// Documents whose reference is a finding: not found in the referenced collection.
    /// Always 0 when `checked` is false.
    pub orphans: u64,
    /// When the referenced collection was read incompletely: documents whose reference
    /// was not found among the records that could be read. An upper bound, not a finding
    /// (the rest may be in the unreadable records).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub orphans_unverified: Option<u64>,
}

impl ReferenceFinding {
    /// The reference as a label: `customer_id → customers._id`.
    pub fn label(&self) -> String {
        format!("{} → {}.{}", self.field, self.collection, self.to)
    }
}

/// Documents MongoDB could not hold as they are.
#[derive(Debug, Clone, Default, Serialize, PartialEq)]
pub struct Structure {
    /// Documents without `_id`.
    pub missing_id: u64,
    /// Documents whose `_id` another document has too.
    pub duplicate_id: u64,
    /// Documents nested deeper than 100 levels.
    pub too_deep: u64,
    /// Documents over 16 MiB.
    pub oversize: u64,
}

/// The collection against the baseline, by `_id`.
#[derive(Debug, Clone, Default, Serialize, PartialEq)]
pub struct Reconciliation {
    /// Documents in the baseline.
    pub baseline_documents: u64,
    /// Documents of the baseline that are gone.
    pub missing: u64,
    /// Documents not in the baseline.
    pub added: u64,
    /// Documents whose content differs from the baseline's.
    pub changed: u64,
    /// Documents whose fields differ only in order (informational).
    pub reordered: u64,
    /// Indexes that differ from the baseline's (when both sides know their indexes):
    /// `dropped` since the baseline and `created` since. Informational.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub indexes: Option<IndexChanges>,
}

/// Indexes that differ from the baseline's.
#[derive(Debug, Clone, Default, Serialize, PartialEq)]
pub struct IndexChanges {
    /// In the baseline, gone now.
    pub dropped: Vec<Value>,
    /// New since the baseline.
    pub created: Vec<Value>,
}

/// A frequent schema error against the target version.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct ErrorKind {
    /// The JSON Schema keyword that failed (`required`, `type`, …).
    pub keyword: String,
    /// Where, with array indexes as `*`.
    pub path: String,
    /// Documents with this error.
    pub count: u64,
    /// A few of their `_id`s.
    pub example_ids: Vec<String>,
}

/// What to run about a finding.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Remediation {
    /// The finding, as violations.csv names it (`invalid`, `orphan:FIELD`, …).
    pub finding: String,
    /// The repair templates the command chains (`a+b`); empty when none applies.
    pub template: String,
    /// The command to run (a `docsweep repair plan`), or what to do instead.
    pub command: String,
}

/// What a check found in one collection.
#[derive(Debug, Clone, Default, Serialize, PartialEq)]
pub struct CollectionReport {
    /// The collection's name.
    pub name: String,
    /// The contract version every document must match.
    pub target_version: u32,
    /// False when the source has no such collection.
    pub present: bool,
    /// Readable documents.
    pub documents: u64,
    /// Records that could not be decoded.
    pub unreadable: u64,
    /// The documents by the version they match.
    pub classes: Classes,
    /// The indexes against the contract's.
    pub indexes: IndexFindings,
    /// Per unique key of the contract.
    pub duplicates: Vec<DuplicateFinding>,
    /// Per reference of the contract.
    pub references: Vec<ReferenceFinding>,
    /// Structural problems.
    pub structure: Structure,
    /// Against the baseline (None without one).
    pub reconciliation: Option<Reconciliation>,
    /// The most frequent schema errors.
    pub top_errors: Vec<ErrorKind>,
    /// What to run about the findings.
    pub remediation: Vec<Remediation>,
    /// With thresholds: each check with findings and the level it reached.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub verdict: Vec<Verdict>,
    /// The changes since the previous run (only when there was one to compare with).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub since_previous: Option<SincePrevious>,
    /// Live checks: the server's validator and indexes against the contract
    /// (`contract::diff`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub drift: Option<Value>,
    /// A few documents of each non-valid class (`other_version:N`, `invalid`), kept to
    /// derive remediations; never written out.
    #[serde(skip)]
    pub samples: BTreeMap<String, Vec<Value>>,
}

impl CollectionReport {
    /// The collection's outcome in one word: `clean` (no findings), `pass` (findings under
    /// every threshold), `warn` or `fail`. Without thresholds (`gated` false) any finding
    /// is `fail`; a collection missing from the source, or whose indexes could not be
    /// read, always is.
    pub fn outcome(&self, gated: bool) -> &'static str {
        if !self.present || self.indexes.error.is_some() {
            return "fail";
        }
        if !gated {
            return if self.has_findings() { "fail" } else { "clean" };
        }
        match self.verdict.iter().map(|v| v.level).max() {
            Some(Level::Fail) => "fail",
            Some(Level::Warn) => "warn",
            Some(Level::Pass) => "pass",
            None => "clean",
        }
    }
}

impl Report {
    /// `failed` wins, then `findings`, then `warn`, else `clean`. Without thresholds any
    /// finding is `findings`; with them, a check at its `fail` level is, one at its `warn`
    /// level is `warn`, and one below both passes. A collection missing from the source,
    /// or whose indexes could not be read, is always `findings`.
    pub fn derive_status(&self) -> Status {
        if self.error.is_some() {
            return Status::Failed;
        }
        if !self.gated {
            return if self.collections.iter().any(CollectionReport::has_findings) {
                Status::Findings
            } else {
                Status::Clean
            };
        }
        let level = |l: Level| {
            self.collections
                .iter()
                .flat_map(|c| &c.verdict)
                .any(|v| v.level == l)
        };
        if level(Level::Fail)
            || self
                .collections
                .iter()
                .any(|c| !c.present || c.indexes.error.is_some())
        {
            Status::Findings
        } else if level(Level::Warn) {
            Status::Warn
        } else {
            Status::Clean
        }
    }
}

/// The level a check reached.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Level {
    /// Findings below every threshold: accepted.
    Pass,
    /// Findings at or above the `warn` threshold, below the `fail` one.
    Warn,
    /// Findings at or above the `fail` threshold (without thresholds: any finding).
    Fail,
}

/// One check's verdict in one collection.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Verdict {
    /// The check kind (`gate::Kind`'s name).
    pub check: &'static str,
    /// For `other_version`: the version whose documents these are.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub version: Option<u32>,
    /// The level it reached.
    pub level: Level,
    /// What the check observed.
    pub observed: u64,
    /// The threshold that decided it (the `warn` one for a pass).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub threshold: Option<Limit>,
}

impl Verdict {
    /// The check as people read it: `invalid`, `other_version:2`.
    pub fn label(&self) -> String {
        match self.version {
            Some(v) => format!("{}:{v}", self.check),
            None => self.check.to_string(),
        }
    }
}

/// One level of a threshold: a count, or a percentage of the documents.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Limit {
    /// At least this many.
    Count(u64),
    /// At least this percentage (0 to 100) of the documents.
    Percent(f64),
}

/// A collection's changes since the previous run.
#[derive(Debug, Clone, Default, Serialize, PartialEq)]
pub struct SincePrevious {
    /// The previous run's `finished_at`.
    pub finished_at: String,
    /// Every check kind with a non-zero previous or current value.
    pub checks: Vec<CheckChange>,
}

/// One check kind's change since the previous run.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct CheckChange {
    /// The check kind (`gate::Kind`'s name).
    pub check: &'static str,
    /// Its count in the previous run.
    pub previous: u64,
    /// Its count now.
    pub now: u64,
    /// Findings now that were not there before.
    pub new: u64,
    /// Findings before that are not there now.
    pub resolved: u64,
}
