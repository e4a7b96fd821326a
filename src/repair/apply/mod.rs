//! Applying a plan to a dump, and undoing it. A dump is never changed in place: the
//! result is a new dump directory, built under a temporary name and renamed into place
//! when complete, with the journal (before- and after-image of every change) inside it at
//! `.docsweep/journal`. Each planned document is compared with its planned
//! before-fingerprint (compare-and-set): a document that changed since the plan is left
//! as it is and reported as a conflict. Unreadable records are carried over byte for byte.
//!
//! Re-running an apply whose output exists with the same plan is a no-op; a crash leaves
//! only the temporary directory, which the next run discards and rebuilds.
//!
//! - [`dump`]: the apply, one pass over each changed collection's file;
//! - [`undo`]: its exact reversal from the journal;
//! - [`metadata`]: index actions, carried in the dump's metadata files;
//! - [`files`]: the dump's files: reading, writing (gzip or not), the temporary output
//!   directory and its lock.

use std::path::{Path, PathBuf};

use serde_json::Value;

use super::error::io;
pub use super::error::ApplyError;
use super::matcher::Settled;
use super::plan::{Entry, Plan};
pub use super::settle::{Conflict, Reason};

mod dump;
mod files;
mod metadata;
mod undo;

pub use dump::apply_dump;
pub use undo::undo_dump;

/// What an apply or undo did.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Outcome {
    /// Entries this run carried out.
    pub applied: u64,
    /// Entries already in their after-state.
    pub already: u64,
    /// Entries left as they were, each with its reason.
    pub conflicts: Vec<Conflict>,
    pub already_done: bool,
    pub output: PathBuf,
    pub journal: PathBuf,
}

/// Crash injection for the crash-safety tests: when `DOCSWEEP_FAILPOINT` names this
/// point (`NAME`, or `NAME@K` for its K-th time), the process aborts on the spot (no
/// unwinding, no cleanup), like a SIGKILL.
pub(super) fn failpoint(name: &str) {
    static HITS: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let Ok(v) = std::env::var("DOCSWEEP_FAILPOINT") else {
        return;
    };
    let (point, nth) = match v.split_once('@') {
        Some((p, k)) => (p, k.parse::<u64>().unwrap_or(1)),
        None => (v.as_str(), 1),
    };
    if point == name && HITS.fetch_add(1, std::sync::atomic::Ordering::SeqCst) + 1 == nth {
        std::process::abort();
    }
}

/// Counts the settled entries into `result`; every entry must have ended exactly once.
pub(super) fn tally(
    plan: &Plan,
    settled: &[Option<Settled>],
    result: &mut Outcome,
) -> Result<(), ApplyError> {
    for (e, s) in plan.entries.iter().zip(settled) {
        match s {
            Some(Settled::Acted) => result.applied += 1,
            Some(Settled::Already) => result.already += 1,
            Some(Settled::Conflict(reason)) => result.conflicts.push(Conflict {
                id: entry_label(e),
                reason: *reason,
            }),
            None => {
                return Err(ApplyError::Usage(format!(
                    "internal error: plan entry {} {} was not accounted for; nothing was published",
                    e.action,
                    entry_label(e)
                )))
            }
        }
    }
    Ok(())
}

/// How an entry is named in messages: its `_id`, or an index action's index name.
pub(super) fn entry_label(e: &Entry) -> String {
    if e.id.is_null() {
        let name = e
            .after
            .as_ref()
            .and_then(|a| a["name"].as_str())
            .unwrap_or_default();
        format!("index:{name}")
    } else {
        crate::scan::id_text(&e.id)
    }
}

/// Conflicts as the journal's `finish` line holds them.
pub fn conflicts_json(conflicts: &[Conflict]) -> Value {
    conflicts.iter().map(Conflict::to_json).collect()
}

/// The conflicts of a journal's `finish` line.
pub(super) fn conflicts_of(finish: &Value) -> Vec<Conflict> {
    finish["conflicts"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(Conflict::from_json)
        .collect()
}

/// The checksum that identifies a plan file (its bytes).
pub fn plan_checksum(path: &Path) -> Result<String, ApplyError> {
    let bytes = std::fs::read(path).map_err(|e| io(path, e))?;
    Ok(format!("{:032x}", xxhash_rust::xxh3::xxh3_128(&bytes)))
}
