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
mod model;
pub mod notify;
mod summary;
pub mod trend;

use std::path::Path;

use serde_json::Value;

pub use self::csv::{CsvSink, Violation, ViolationSink};
pub use crate::fsutil::{now_rfc3339, write_atomic};
pub use html::write_html;
pub use junit::write_junit;
pub use metrics::write_metrics;
pub use model::{
    Classes, CollectionReport, DuplicateFinding, ErrorKind, IndexChanges, IndexFindings,
    Reconciliation, ReferenceFinding, Remediation, Report, Status, Structure,
};
pub use summary::write_summary;

/// report.json's `format`.
pub const FORMAT: &str = "docsweep-report/1";

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
