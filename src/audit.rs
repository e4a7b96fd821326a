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
