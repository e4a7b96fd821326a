//! The state a check reconciles against: another source (read and fingerprinted first),
//! or a snapshot file.

use std::collections::{HashMap, HashSet};

use crate::contract::IndexSpec;
use crate::reconcile;
use crate::scan::error::ScanError;
use crate::scan::pipeline::{decode_any, fingerprint_collection, stream_batches};
use crate::scan::progress::Meter;
use crate::source::{Source, SourceError};
use crate::value::IdArena;

/// Scans the selected collections (all contracts when empty) of `source`.
/// A baseline collection's fingerprints and the ids they belong to.
pub(crate) type BaselineCollection<'a> = (
    std::borrow::Cow<'a, reconcile::Reconciler>,
    std::borrow::Cow<'a, IdArena>,
);

/// The state before the change: another source, or a snapshot file.
#[derive(Debug)]
pub enum Baseline {
    Source(Source),
    Snapshot(crate::reconcile::snapshot::Snapshot),
}

impl Baseline {
    pub(crate) fn database(&self) -> Option<&str> {
        match self {
            Baseline::Source(s) => s.database.as_deref(),
            Baseline::Snapshot(s) => s.header.database.as_deref(),
        }
    }

    pub(crate) fn describe(&self) -> String {
        match self {
            Baseline::Source(s) => s.spec.to_string(),
            Baseline::Snapshot(s) => format!(
                "snapshot of {} taken {}",
                s.header.source, s.header.taken_at
            ),
        }
    }

    /// The baseline's documents with the given ordinals, when the baseline keeps
    /// documents (a source, or a `--full` snapshot); None otherwise.
    pub(crate) fn documents(
        &self,
        name: &str,
        wanted: &HashSet<u32>,
        batch_records: usize,
    ) -> Option<Result<HashMap<u32, serde_json::Value>, SourceError>> {
        match self {
            Baseline::Source(s) => {
                let cs = s.collection(name)?;
                let mut out = HashMap::new();
                let mut ordinal = 0u32;
                let pb = Meter::hidden();
                let r = stream_batches(s, cs, &pb, batch_records, |encoding, batch| {
                    for rec in &batch.records {
                        if rec.broken.is_some() {
                            continue;
                        }
                        if wanted.contains(&ordinal) {
                            if let Some(d) = decode_any(encoding, batch.bytes(rec)) {
                                out.insert(ordinal, d.value);
                            }
                        }
                        ordinal += 1;
                    }
                    Ok(())
                });
                Some(match r {
                    Ok(()) => Ok(out),
                    Err(ScanError::Source(e)) => Err(e),
                    Err(other) => Err(SourceError::Other(other.to_string())),
                })
            }
            Baseline::Snapshot(s) => s
                .documents(name, wanted)
                .map(|r| r.map_err(|e| SourceError::Other(e.to_string()))),
        }
    }

    /// The baseline collection's indexes, when it knows them.
    pub(crate) fn indexes(&self, name: &str) -> Option<Vec<IndexSpec>> {
        match self {
            Baseline::Source(s) => s
                .collection(name)
                .and_then(|cs| s.indexes(cs).ok().flatten()),
            Baseline::Snapshot(s) => {
                let c = s.header.collections.iter().find(|c| c.name == name)?;
                let list = c.indexes.as_ref()?;
                list.iter()
                    .map(|v| IndexSpec::from_server_json(v).ok())
                    .collect()
            }
        }
    }

    /// The collection's fingerprints and ids, or None when the baseline lacks it.
    pub(crate) fn entries(
        &self,
        name: &str,
        pool: &rayon::ThreadPool,
        batch_records: usize,
    ) -> Option<Result<BaselineCollection<'_>, SourceError>> {
        self.entries_shown(name, pool, batch_records, false)
    }

    /// [`Baseline::entries`], with a progress line while a source is read when `progress`.
    pub(crate) fn entries_shown(
        &self,
        name: &str,
        pool: &rayon::ThreadPool,
        batch_records: usize,
        progress: bool,
    ) -> Option<Result<BaselineCollection<'_>, SourceError>> {
        match self {
            Baseline::Source(s) => {
                let cs = s.collection(name)?;
                Some(
                    fingerprint_collection(s, cs, pool, batch_records, None, progress, "baseline")
                        .map(|(e, ids)| {
                            (
                                std::borrow::Cow::Owned(reconcile::Reconciler::new(&e)),
                                std::borrow::Cow::Owned(ids),
                            )
                        }),
                )
            }
            Baseline::Snapshot(s) => {
                let c = s.collection(name)?;
                let recon = match &c.reconciler {
                    Some(r) => std::borrow::Cow::Borrowed(r),
                    None => std::borrow::Cow::Owned(reconcile::Reconciler::new(&c.entries)),
                };
                Some(Ok((recon, std::borrow::Cow::Borrowed(&c.ids))))
            }
        }
    }
}
