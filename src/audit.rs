//! The audit log: one JSON line per `check` (and `merge`), `repair apply` and `repair undo`,
//! appended to `docsweep-audit.jsonl` in the working directory unless told otherwise. Each
//! line has `event` (`check`, `apply`, `undo`), `at` (when it finished, RFC 3339 UTC) and
//! `actor` (see [`crate::os::actor`]), then what the event did.
//!
//! A `check` line: `command` (`check` or `merge`), `started_at`, `source` (password
//! masked), `status`, `report` (the path of report.json), `counts` per collection
//! (`documents`, `valid`, then each check kind's count), `verdict` per collection when
//! thresholds judged it (`clean`, `pass`, `warn`, `fail`), `error` when the source failed,
//! and `notify`: the hooks that fired and whether they succeeded. A partition's run
//! (`check --partition`) writes `partition` and `status` `partial` (or `failed`) instead.

use std::io::Write;
use std::path::Path;

use anyhow::Context;

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
