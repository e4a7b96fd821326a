//! The check report: `report.json` (format `docsweep-report/1`), `violations.csv` and the
//! terminal summary. This module is the only writer of these formats.
//!
//! `report.json` fields (stable; fields may be added, never renamed):
//!
//! - `format`: `"docsweep-report/1"`; `status`: `clean`, `warn`, `findings` or `failed`;
//!   `source` (passwords redacted), `started_at`, `finished_at` (RFC 3339, UTC);
//!   `error`: why the scan failed (only when `status` is `failed`).
//! - `read` (live sources only, see [`Scope`]): `read_preference` and `servers[]`, each with
//!   `host`, `role`, `replica_set`, `lag_seconds` and `lag_from` (null without a replica
//!   set). `filter` (only for a narrowed check): `query`, `query_collection`, `ns_include`,
//!   `ns_exclude`, `excluded`.
//! - `collections[]`: `name`, `target_version`, `present` (false when the source has no
//!   such collection), `documents` (readable documents), `unreadable`, `classes`
//!   (`valid`, `other_version` by version, `invalid`), `indexes` (`available`: false when
//!   the source carries no index information, e.g. mongoexport; `missing`, `unexpected`),
//!   `duplicates[]` per unique key (`key`, `name`, `groups`, `documents`: every document in
//!   a group), `references[]` (`field`, `collection`, `to`, `checked`, `reason`,
//!   `orphans`: documents whose reference is not found, `orphans_unverified`; see below),
//!   `structure` (`missing_id`, `duplicate_id`, `too_deep`, `oversize`),
//!   `reconciliation` (null without a baseline), `top_errors[]`
//!   (`keyword`, `path` with array indexes as `*`, `count`, `example_ids`), `remediation[]`,
//!   `verdict[]` (only with thresholds, see [`gate`]: `check`, `version` for
//!   `other_version`, `level`, `observed`, `threshold`),
//!   `since_previous` (only when compared with a previous run, see [`trend`]: its
//!   `finished_at` and `checks[]` with `check`, `previous`, `now`, `new`, `resolved`).
//!
//! A reference is verified (`checked: true`) only when every record of the referenced
//! collection was read: an orphan cannot be told from a reference to a record that could
//! not be read. It is not verified (`checked: false`, with `reason`) when the source does
//! not have the referenced collection (`"customers: not in the source"`), when records of
//! it are unreadable (`"customers: 1 unreadable record"`) or when reading it failed
//! (`"customers: reading it failed"`) — in a plain run, in any partition of a merged run
//! or in a checkpointed run alike. An unverified reference has `orphans: 0`, is no
//! finding (no `orphan:` rows in violations.csv, no remediation, not counted as orphans
//! in the summary, HTML, JUnit or metrics, which show it as not verified with the reason),
//! and `repair plan` refuses an `orphan:` selection on it. When the referenced collection
//! was read in part, `orphans_unverified` counts the documents whose reference was not found
//! among the records that were read: an upper bound, for information. `reason` and
//! `orphans_unverified` are absent for verified references. A collection read with
//! `--query` is read in part too: references into it are not verified
//! (`"orders: read with --query"`).

pub mod checks;
mod csv;
mod format;
pub mod gate;
pub mod html;
pub mod junit;
pub mod metrics;
pub mod notify;
mod summary;
pub mod trend;

use std::collections::BTreeMap;
use std::path::Path;

use serde::Serialize;
use serde_json::Value;

pub use self::csv::{CsvSink, Violation, ViolationSink};
pub use html::write_html;
pub use junit::write_junit;
pub use metrics::write_metrics;
pub use summary::write_summary;

pub const FORMAT: &str = "docsweep-report/1";

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Status {
    Clean,
    /// Findings that trip only `warn` thresholds (or none): the gate passes, exit 0.
    Warn,
    Findings,
    Failed,
}

#[derive(Debug, Clone, Serialize)]
pub struct Report {
    pub format: &'static str,
    pub status: Status,
    pub source: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub database: Option<String>,
    pub started_at: String,
    pub finished_at: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// The baseline reconciled against, if any (passwords redacted).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub baseline: Option<String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub warnings: Vec<String>,
    pub collections: Vec<CollectionReport>,
    /// Thresholds decided the status (each collection's `verdict`).
    #[serde(skip)]
    pub gated: bool,
}

#[derive(Debug, Clone, Default, Serialize, PartialEq)]
pub struct Classes {
    pub valid: u64,
    pub other_version: BTreeMap<String, u64>,
    pub invalid: u64,
}

#[derive(Debug, Clone, Default, Serialize, PartialEq)]
pub struct IndexFindings {
    pub available: bool,
    /// Why the actual indexes could not be read (e.g. a broken metadata.json).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    pub missing: Vec<Value>,
    pub unexpected: Vec<Value>,
}

#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct DuplicateFinding {
    pub key: Value,
    pub name: String,
    pub groups: u64,
    pub documents: u64,
}

#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct ReferenceFinding {
    pub field: String,
    pub collection: String,
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

#[derive(Debug, Clone, Default, Serialize, PartialEq)]
pub struct Structure {
    pub missing_id: u64,
    pub duplicate_id: u64,
    pub too_deep: u64,
    pub oversize: u64,
}

#[derive(Debug, Clone, Default, Serialize, PartialEq)]
pub struct Reconciliation {
    pub baseline_documents: u64,
    pub missing: u64,
    pub added: u64,
    pub changed: u64,
    pub reordered: u64,
    /// Indexes that differ from the baseline's (when both sides know their indexes):
    /// `dropped` since the baseline and `created` since. Informational.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub indexes: Option<IndexChanges>,
}

#[derive(Debug, Clone, Default, Serialize, PartialEq)]
pub struct IndexChanges {
    pub dropped: Vec<Value>,
    pub created: Vec<Value>,
}

#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct ErrorKind {
    pub keyword: String,
    pub path: String,
    pub count: u64,
    pub example_ids: Vec<String>,
}

#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Remediation {
    pub finding: String,
    pub template: String,
    pub command: String,
}

#[derive(Debug, Clone, Default, Serialize, PartialEq)]
pub struct CollectionReport {
    pub name: String,
    pub target_version: u32,
    pub present: bool,
    pub documents: u64,
    pub unreadable: u64,
    pub classes: Classes,
    pub indexes: IndexFindings,
    pub duplicates: Vec<DuplicateFinding>,
    pub references: Vec<ReferenceFinding>,
    pub structure: Structure,
    pub reconciliation: Option<Reconciliation>,
    pub top_errors: Vec<ErrorKind>,
    pub remediation: Vec<Remediation>,
    /// With thresholds: each check with findings and the level it reached.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub verdict: Vec<gate::Verdict>,
    /// The changes since the previous run (only when there was one to compare with).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub since_previous: Option<trend::SincePrevious>,
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
    /// What was counted, by check kind (`missing`, `added` and `changed` with a baseline
    /// only), with `documents` and `valid`: for the audit log and notifications.
    pub fn counts(&self) -> serde_json::Map<String, Value> {
        let mut m = serde_json::Map::new();
        m.insert("documents".into(), self.documents.into());
        m.insert("valid".into(), self.classes.valid.into());
        for kind in gate::Kind::ALL {
            let reconciled = matches!(
                kind,
                gate::Kind::Missing | gate::Kind::Added | gate::Kind::Changed
            );
            if reconciled && self.reconciliation.is_none() {
                continue;
            }
            m.insert(kind.as_str().into(), kind.observe(self).0.into());
        }
        m
    }

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
            Some(gate::Level::Fail) => "fail",
            Some(gate::Level::Warn) => "warn",
            Some(gate::Level::Pass) => "pass",
            None => "clean",
        }
    }

    /// Does anything in this collection differ from its contract?
    pub fn has_findings(&self) -> bool {
        checks::checks(self).iter().any(|check| check.found)
    }
}

impl Report {
    /// Judges every collection's findings against the thresholds, when there are any.
    pub fn judge(&mut self, gate: &gate::Gate) {
        self.gated = gate.configured;
        if gate.configured {
            for c in &mut self.collections {
                c.verdict = gate.judge(c);
            }
        }
    }

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
        let level = |l: gate::Level| {
            self.collections
                .iter()
                .flat_map(|c| &c.verdict)
                .any(|v| v.level == l)
        };
        if level(gate::Level::Fail)
            || self
                .collections
                .iter()
                .any(|c| !c.present || c.indexes.error.is_some())
        {
            Status::Findings
        } else if level(gate::Level::Warn) {
            Status::Warn
        } else {
            Status::Clean
        }
    }
}

/// Now, as RFC 3339 UTC with second precision.
pub fn now_rfc3339() -> String {
    let now = time::OffsetDateTime::now_utc()
        .replace_nanosecond(0)
        .unwrap_or(time::OffsetDateTime::UNIX_EPOCH);
    now.format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_else(|_| "1970-01-01T00:00:00Z".into())
}

/// Writes a report file atomically (see [`crate::os::write_atomic`]), owner-only: reports
/// name documents by `_id` and, with `--show-values`, hold their values.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    crate::os::write_atomic(path, bytes, crate::os::Access::Private)
}

/// What a run adds to report.json beyond [`Report`]: where a live source was read
/// (`read`) and what the scan was narrowed to (`filter`). Both absent for a full scan of
/// files.
#[derive(Debug, Clone, Default)]
pub struct Scope {
    /// `{"read_preference": …, "servers": [{"host", "role", "replica_set", "lag_seconds",
    /// "lag_from"}]}`.
    pub read: Option<Value>,
    /// `{"query": …, "ns_include": […], "ns_exclude": […], "excluded": […]}`.
    pub filter: Option<Value>,
}

impl Scope {
    /// `report` as JSON with `read` and `filter` placed before `warnings`/`collections`.
    pub fn to_json(&self, report: &Report) -> serde_json::Result<Value> {
        let Value::Object(fields) = serde_json::to_value(report)? else {
            return Ok(Value::Null);
        };
        let mut out = serde_json::Map::new();
        let mut pending = vec![("read", &self.read), ("filter", &self.filter)];
        for (k, v) in fields {
            if k == "warnings" || k == "collections" {
                for (name, value) in pending.drain(..) {
                    if let Some(value) = value {
                        out.insert(name.into(), value.clone());
                    }
                }
            }
            out.insert(k, v);
        }
        Ok(Value::Object(out))
    }
}

/// Writes `report.json` (pretty, trailing newline) atomically.
pub fn write_json(report: &Report, scope: &Scope, path: &Path) -> std::io::Result<()> {
    let value = scope.to_json(report).map_err(std::io::Error::other)?;
    let mut text = serde_json::to_vec_pretty(&value).map_err(std::io::Error::other)?;
    text.push(b'\n');
    write_atomic(path, &text)
}
