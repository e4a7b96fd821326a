//! The audit log: one JSON line per `check` (and `merge`), `repair apply` and `repair undo`,
//! appended to `docsweep-audit.jsonl` in the working directory unless told otherwise. Each
//! line has `event` (`check`, `apply`, `undo`), `at` (when it finished, RFC 3339 UTC) and
//! `actor` (see [`crate::os::actor`]), then what the event did.
//!
//! A `check` line ([`check_line`]): `command` (`check` or `merge`), `started_at` and
//! `finished_at` (= `at`), `source` (password masked), `database` and `baseline` (when
//! known), `status`, `report` (the path of report.json), `counts` per collection
//! (`documents`, `valid`, each check kind's count, and `other_versions`: the documents of
//! each other version), `verdict` per collection when thresholds judged it (`clean`,
//! `pass`, `warn`, `fail`) with `gate`: the verdict rows per collection (`check`,
//! `version` for `other_version`, `level`, `observed`, `threshold`), `since_previous` per
//! collection when the run was compared with a previous one (`finished_at`, `checks[]` with
//! `check`, `previous`, `now`, `new`, `resolved`), `error` when the source failed, and
//! `notify`: the hooks that fired and whether they succeeded. A partition's run
//! (`check --partition`) writes `partition` and `status` `partial` (or `failed`) instead.

use std::collections::{BTreeMap, HashMap};
use std::io::Write;
use std::path::Path;

use anyhow::Context;
use serde_json::{json, Map, Value};

use crate::report::Report;

/// The audit log's file when none is given.
pub const DEFAULT_FILE: &str = "docsweep-audit.jsonl";

/// Appends `record` as one line, synced. The log is owner-only when this creates it: its
/// lines may name documents (conflicts) and sources.
pub fn append(path: &Path, record: &serde_json::Value) -> anyhow::Result<()> {
    let mut f = crate::os::open_append(path, crate::os::Access::Private)
        .with_context(|| format!("cannot open the audit log {}", path.display()))?;
    // One write of the whole line: concurrent appenders do not interleave within it.
    let mut line = record.to_string();
    line.push('\n');
    f.write_all(line.as_bytes())
        .with_context(|| format!("cannot write the audit log {}", path.display()))?;
    f.sync_data()
        .with_context(|| format!("cannot sync the audit log {}", path.display()))?;
    Ok(())
}

/// The audit line of a check (or merge) whose report is `r`; `source` as the line shows
/// it (password masked).
pub fn check_line(r: &Report, source: &str, command: &str) -> Value {
    let per = |f: &dyn Fn(&crate::report::CollectionReport) -> Option<Value>| {
        r.collections
            .iter()
            .filter_map(|c| f(c).map(|v| (c.name.clone(), v)))
            .collect::<Map<_, _>>()
    };
    let mut record = json!({
        "event": "check", "command": command, "at": r.finished_at,
        "started_at": r.started_at, "finished_at": r.finished_at,
        "actor": crate::os::actor(), "source": source, "status": r.status,
        "counts": per(&|c| {
            let mut counts = c.counts();
            counts.insert("other_versions".into(), json!(c.classes.other_version));
            Some(Value::Object(counts))
        }),
    });
    if let Some(db) = &r.database {
        record["database"] = json!(db);
    }
    if let Some(b) = &r.baseline {
        record["baseline"] = json!(b);
    }
    if r.gated {
        record["verdict"] = per(&|c| Some(json!(c.outcome(true)))).into();
        record["gate"] = per(&|c| Some(json!(c.verdict))).into();
    }
    let since = per(&|c| c.since_previous.as_ref().map(|s| json!(s)));
    if !since.is_empty() {
        record["since_previous"] = since.into();
    }
    if let Some(e) = &r.error {
        record["error"] = json!(e);
    }
    record
}

/// The collections an audit line is about: a check's (the keys of `counts`), an apply's
/// `collection`, and for an undo (whose line names its journal only) the collection of the
/// apply that wrote that journal, from `journals` (journal → collection, as [`Journals`]
/// learns them reading the log in order).
pub fn collections(line: &Value, journals: &Journals) -> Vec<String> {
    if let Some(c) = line["counts"].as_object() {
        return c.keys().cloned().collect();
    }
    if let Some(c) = line["collection"].as_str() {
        return vec![c.to_string()];
    }
    line["journal"]
        .as_str()
        .and_then(|j| journals.0.get(j))
        .map(|c| vec![c.clone()])
        .unwrap_or_default()
}

/// Which collection each journal an apply line names belongs to.
#[derive(Debug, Default)]
pub struct Journals(HashMap<String, String>);

impl Journals {
    /// Learns from an apply line (call for every line, in the log's order).
    pub fn learn(&mut self, line: &Value) {
        if line["event"] != "apply" {
            return;
        }
        if let (Some(j), Some(c)) = (line["journal"].as_str(), line["collection"].as_str()) {
            self.0.insert(j.to_string(), c.to_string());
        }
    }
}

/// The repairs an audit log records for one collection and event (`apply` or `undo`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RepairTotal {
    /// Empty when an undo's journal was applied by no line of the log.
    pub collection: String,
    pub event: &'static str,
    /// `repair apply` / `repair undo` runs.
    pub runs: u64,
    /// Documents they changed (`applied`, `undone`).
    pub documents: u64,
}

/// Adds up the `apply` and `undo` lines of the audit log at `path`, by collection and
/// event. A log that does not exist or cannot be read counts nothing; lines that are not
/// JSON are skipped.
pub fn repair_totals(path: &Path) -> Vec<RepairTotal> {
    let Ok(text) = std::fs::read_to_string(path) else {
        return Vec::new();
    };
    let mut journals = Journals::default();
    let mut totals: BTreeMap<(String, &'static str), (u64, u64)> = BTreeMap::new();
    for line in text.lines() {
        let Ok(v) = serde_json::from_str::<Value>(line) else {
            continue;
        };
        journals.learn(&v);
        let (event, field) = match v["event"].as_str() {
            Some("apply") => ("apply", "applied"),
            Some("undo") => ("undo", "undone"),
            _ => continue,
        };
        let collection = collections(&v, &journals).pop().unwrap_or_default();
        let t = totals.entry((collection, event)).or_default();
        t.0 += 1;
        t.1 += v[field].as_u64().unwrap_or(0);
    }
    totals
        .into_iter()
        .map(|((collection, event), (runs, documents))| RepairTotal {
            collection,
            event,
            runs,
            documents,
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn repairs_add_up_and_undo_finds_its_collection_by_journal() {
        let dir = tempfile::tempdir().unwrap();
        let log = dir.path().join("audit.jsonl");
        assert!(repair_totals(&log).is_empty(), "no log, nothing");
        let lines = [
            json!({"event": "check", "counts": {"orders": {}}}),
            json!({"event": "apply", "collection": "orders", "journal": "j1", "applied": 20}),
            json!({"event": "apply", "collection": "orders", "journal": "j2", "applied": 3}),
            json!({"event": "apply", "collection": "customers", "journal": "j3", "applied": 1}),
            json!({"event": "undo", "journal": "j2", "undone": 3}),
            json!({"event": "undo", "journal": "elsewhere", "undone": 7}),
        ];
        let mut text: String = lines.iter().map(|l| format!("{l}\n")).collect();
        text.push_str("not json\n");
        std::fs::write(&log, text).unwrap();
        let got: Vec<(String, &str, u64, u64)> = repair_totals(&log)
            .into_iter()
            .map(|t| (t.collection, t.event, t.runs, t.documents))
            .collect();
        assert_eq!(
            got,
            [
                (String::new(), "undo", 1, 7),
                ("customers".into(), "apply", 1, 1),
                ("orders".into(), "apply", 2, 23),
                ("orders".into(), "undo", 1, 3),
            ]
        );
    }
}
