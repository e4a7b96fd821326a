//! The parallel scan: reads each collection's records in batches on a reader thread,
//! examines the documents on the rayon pool, and folds the results in source order, so
//! that every count and every violations.csv row is independent of thread count and
//! batch size.
//!
//! References are resolved against the values of the referenced collection's records that
//! were read. When that is not all of them (the source lacks the collection, some records
//! are unreadable, or reading it failed), a reference found nowhere may point into a record
//! that could not be read: such references are not verified (`checked: false` with a
//! reason), counted only as `orphans_unverified` and never reported as orphans. Referenced
//! collections are read before the collections referring to them (or for their keys only,
//! counting unreadable records too), so this is known before any row is written; a
//! partition records the unreadable records of a key-only collection for the merge.

mod collection;
mod doc;
pub(crate) mod error;
pub mod partial;
pub(crate) mod pipeline;
mod prehashed;
pub(crate) mod progress;

use std::collections::{BTreeMap, BTreeSet, HashMap};

pub use progress::{progress_line, Meter, Unit};

use crate::contract::{Contract, ContractSet};
pub use crate::reconcile::Baseline;
use crate::reconcile::BaselineCollection;
use crate::report::{CollectionReport, ViolationSink};
use crate::source::{Source, SourceError};
use collection::replay::merged_keys;
use collection::{CollectionScan, Env};
use pipeline::collect_keys;

pub use collection::index_coverage;
pub use doc::{
    classify, classify_raw, Class, DocContext, DocFacts, Examined, Sample, SchemaError,
    MAX_BSON_BYTES, MAX_NESTING,
};
pub use error::ScanError;
pub use partial::{Chunk, PartialError, PartialReader, PartialWriter};
pub use pipeline::{fingerprint_collection, read_documents};
pub use prehashed::{BuildPrehashed, HashMap128, HashSet128};
// The `_id` arena and dotted paths live with the value model; these names stay for callers.
pub use crate::value::{generalise_pointer, id_text, values_at, IdArena};

/// Documents kept per non-valid class to derive remediations from.
pub(crate) const SAMPLES: usize = 25;

/// How a check runs. None of these change its results.
#[derive(Debug, Clone)]
pub struct ScanOptions {
    /// Worker threads (0: one per core).
    pub threads: usize,
    /// Schema errors kept per invalid document.
    pub max_errors: usize,
    /// Include document values in error messages (off: values can be personal data).
    pub show_values: bool,
    /// Draw progress bars on stderr.
    pub progress: bool,
    /// Records per batch handed to the workers.
    pub batch_records: usize,
}

impl Default for ScanOptions {
    fn default() -> Self {
        ScanOptions {
            threads: 0,
            max_errors: 10,
            show_values: false,
            progress: false,
            batch_records: crate::source::BATCH_RECORDS,
        }
    }
}

/// What happens to the documents a scan examines.
pub enum Facts<'a> {
    /// Fold them into the report (a plain check).
    Fold,
    /// Record them for a later merge, and nothing else (`check --partition`).
    Record(&'a mut PartialWriter),
    /// Examine nothing: fold what the partitions recorded, in partition order
    /// (`docsweep merge`).
    Merge(&'a mut [PartialReader]),
    /// Fold what an interrupted run recorded, then continue where it stopped, recording
    /// as well (`check --checkpoint`).
    Checkpoint(&'a mut Checkpoint),
}

/// A checkpoint being continued or written.
pub struct Checkpoint {
    /// What an earlier run recorded, still to be folded.
    pub replay: Option<PartialReader>,
    /// Where new records go; opened after the replay (at its verified end).
    pub writer: Option<PartialWriter>,
    pub path: std::path::PathBuf,
}

impl Checkpoint {
    /// The writer, continuing the file after what was replayed.
    fn writer(&mut self, records: u64) -> Result<&mut PartialWriter, PartialError> {
        if self.writer.is_none() {
            let valid = self.replay.take().map(|r| r.valid_len()).unwrap_or(0);
            self.writer = Some(PartialWriter::append(&self.path, valid, records)?);
        }
        Ok(self.writer.as_mut().expect("just opened"))
    }
}

/// The result of scanning every selected collection.
#[derive(Debug)]
pub struct ScanOutcome {
    pub collections: Vec<CollectionReport>,
    /// Set when the source failed part-way; `collections` holds what was scanned.
    pub failure: Option<SourceError>,
    /// Things the user should know that are not findings (e.g. a baseline without a
    /// collection).
    pub warnings: Vec<String>,
}

/// The value sets of referenced fields: (collection, field) → key hashes.
type KeySets = HashMap<String, HashMap<String, HashSet128>>;

/// The value set of `collection.field`, when it was collected.
fn key_set<'k>(keys: &'k KeySets, collection: &str, field: &str) -> Option<&'k HashSet128> {
    keys.get(collection).and_then(|fields| fields.get(field))
}

pub fn scan(
    source: &Source,
    baseline: Option<&Baseline>,
    contracts: &ContractSet,
    selected: &[String],
    opts: &ScanOptions,
    sink: &mut dyn ViolationSink,
) -> Result<ScanOutcome, ScanError> {
    scan_with(
        source,
        baseline,
        contracts,
        selected,
        opts,
        sink,
        &mut Facts::Fold,
    )
}

/// [`scan`], with the examined documents going where `facts` says.
pub fn scan_with(
    source: &Source,
    baseline: Option<&Baseline>,
    contracts: &ContractSet,
    selected: &[String],
    opts: &ScanOptions,
    sink: &mut dyn ViolationSink,
    facts: &mut Facts<'_>,
) -> Result<ScanOutcome, ScanError> {
    let chosen: Vec<&Contract> = contracts
        .contracts
        .values()
        .filter(|c| selected.is_empty() || selected.contains(&c.collection))
        .collect();
    let needed = needed_keys(&chosen);
    let order = scan_order(&chosen);
    let mut run = Run {
        source,
        baseline,
        opts,
        pool: thread_pool(opts.threads)?,
        keys: KeySets::new(),
        absent: BTreeSet::new(),
        unverified: BTreeMap::new(),
        warnings: baseline_warning(baseline, source).into_iter().collect(),
    };
    run.note_unverifiable(&needed);
    if let Some(failure) = run.collect_key_only(key_only(&chosen, &order, &needed), facts)? {
        return Ok(ScanOutcome {
            collections: Vec::new(),
            failure: Some(failure),
            warnings: run.warnings,
        });
    }
    let mut reports: BTreeMap<String, CollectionReport> = BTreeMap::new();
    let mut failure = None;
    for contract in order {
        let exported: Vec<String> = needed
            .iter()
            .filter(|(c, _)| *c == contract.collection)
            .map(|(_, f)| f.clone())
            .collect();
        let (report, stop) = run.collection(contract, exported, sink, facts)?;
        if let Some(report) = report {
            reports.insert(contract.collection.clone(), report);
        }
        if let Some(e) = stop {
            failure = Some(e);
            break;
        }
    }
    // Report in contract (name) order, whatever order the scan took.
    let collections = chosen
        .iter()
        .filter_map(|c| reports.remove(&c.collection))
        .collect();
    Ok(ScanOutcome {
        collections,
        failure,
        warnings: run.warnings,
    })
}

/// A warning when the baseline and the source name different databases.
fn baseline_warning(baseline: Option<&Baseline>, source: &Source) -> Option<String> {
    let bd = baseline?.database()?;
    let sd = source.database.as_deref()?;
    (bd != sd).then(|| format!("the baseline is database {bd:?}, the source is database {sd:?}"))
}

fn thread_pool(threads: usize) -> Result<rayon::ThreadPool, ScanError> {
    rayon::ThreadPoolBuilder::new()
        .num_threads(threads)
        .thread_name(|i| format!("docsweep-scan-{i}"))
        .build()
        .map_err(|e| ScanError::Threads {
            threads,
            message: e.to_string(),
        })
}

/// Which (collection, field) value sets the references of the chosen contracts need.
fn needed_keys(chosen: &[&Contract]) -> BTreeSet<(String, String)> {
    chosen
        .iter()
        .flat_map(|c| &c.versions)
        .flat_map(|v| &v.references)
        .map(|r| (r.collection.clone(), r.to.clone()))
        .collect()
}

/// The collections whose keys are collected before any collection is checked, with the
/// fields wanted: referenced collections that are not checked themselves, and those that
/// references point forward to in the scan order (cycles between collections).
fn key_only<'c>(
    chosen: &[&Contract],
    order: &[&'c Contract],
    needed: &'c BTreeSet<(String, String)>,
) -> BTreeMap<&'c str, Vec<String>> {
    let checked: BTreeSet<&str> = chosen.iter().map(|c| c.collection.as_str()).collect();
    let mut key_only: BTreeMap<&str, Vec<String>> = BTreeMap::new();
    for (coll, field) in needed {
        if !checked.contains(coll.as_str()) {
            key_only
                .entry(coll.as_str())
                .or_default()
                .push(field.clone());
        }
    }
    let position: HashMap<&str, usize> = order
        .iter()
        .enumerate()
        .map(|(i, c)| (c.collection.as_str(), i))
        .collect();
    for (i, c) in order.iter().enumerate() {
        for r in c.versions.iter().flat_map(|v| &v.references) {
            let later = position.get(r.collection.as_str()).is_some_and(|&j| j > i);
            if later && r.collection != c.collection {
                let fields = key_only.entry(r.collection.as_str()).or_default();
                if !fields.contains(&r.to) {
                    fields.push(r.to.clone());
                }
            }
        }
    }
    key_only
}

/// What one scan shares across its collections.
struct Run<'r> {
    source: &'r Source,
    baseline: Option<&'r Baseline>,
    opts: &'r ScanOptions,
    pool: rayon::ThreadPool,
    /// The value sets of referenced fields collected so far.
    keys: KeySets,
    /// Referenced collections the source does not have: references to them cannot be
    /// checked, which is said instead of calling every reference an orphan.
    absent: BTreeSet<String>,
    /// Referenced collections whose records were not all read, and why: references to
    /// them are not verified (an orphan cannot be told from a reference to a record that
    /// could not be read).
    unverified: BTreeMap<String, String>,
    warnings: Vec<String>,
}

impl<'r> Run<'r> {
    /// Notes the referenced collections that are absent or read with a query.
    fn note_unverifiable(&mut self, needed: &BTreeSet<(String, String)>) {
        for (coll, _) in needed {
            // Read with --query: what it did not match was not read.
            if let Some(reason) = self.source.filtered(coll) {
                self.unverified.insert(coll.clone(), reason);
            }
            if self.source.collection(coll).is_none() && self.absent.insert(coll.clone()) {
                self.warnings.push(format!(
                    "references to {coll:?} are not checked: the source has no collection {coll:?}"
                ));
                self.unverified
                    .insert(coll.clone(), format!("{coll}: not in the source"));
            }
        }
    }

    /// Collects the keys of the key-only collections (from the partial results when
    /// merging; recorded for the merge when partitioning). Returns the source's failure.
    fn collect_key_only(
        &mut self,
        key_only: BTreeMap<&str, Vec<String>>,
        facts: &mut Facts<'_>,
    ) -> Result<Option<SourceError>, ScanError> {
        for (coll, fields) in key_only {
            let Some(cs) = self.source.collection(coll) else {
                continue;
            };
            let collected = match facts {
                Facts::Merge(readers) => Ok(merged_keys(readers, coll, &fields)?),
                _ => collect_keys(
                    self.source,
                    cs,
                    &fields,
                    &self.pool,
                    self.opts.batch_records,
                ),
            };
            let (sets, unreadable) = match collected {
                Ok(c) => c,
                Err(e) => return Ok(Some(e)),
            };
            if unreadable > 0 {
                self.unverified
                    .insert(coll.to_string(), unreadable_reason(coll, unreadable));
            }
            for (f, set) in fields.into_iter().zip(sets) {
                if let Facts::Record(w) = facts {
                    w.keys(coll, &f, &set, unreadable)?;
                }
                self.keys
                    .entry(coll.to_string())
                    .or_default()
                    .insert(f, set);
            }
        }
        Ok(None)
    }

    /// Scans one collection: its report (None when partitioning: the merge makes it),
    /// and the source's failure that stops the scan.
    fn collection(
        &mut self,
        contract: &Contract,
        exported: Vec<String>,
        sink: &mut dyn ViolationSink,
        facts: &mut Facts<'_>,
    ) -> Result<(Option<CollectionReport>, Option<SourceError>), ScanError> {
        let source = self.source;
        let Some(cs) = source.collection(&contract.collection) else {
            let report = CollectionReport {
                name: contract.collection.clone(),
                target_version: contract.target,
                present: false,
                ..CollectionReport::default()
            };
            return Ok((Some(report), None));
        };
        let mut col = CollectionScan::new(
            contract,
            cs,
            exported,
            &self.absent,
            &self.unverified,
            source,
        );
        // The baseline side is read first, so each document is compared as it streams.
        let base = match self.baseline_of(&contract.collection) {
            Ok(base) => base,
            Err(e) => return Ok((None, Some(e))),
        };
        let recon = base.as_ref().map(|(r, _)| &**r);
        let opts = self.opts;
        let env = Env {
            source,
            pool: &self.pool,
            opts,
            keys: &self.keys,
            recon,
        };
        let mut result = col.run(&env, sink, facts);
        if let Facts::Record(_) = facts {
            // Nothing is folded: the merge makes the report.
            return match result {
                Ok(()) => Ok((None, None)),
                Err(ScanError::Source(e)) => Ok((None, Some(e))),
                Err(other) => Err(other),
            };
        }
        if let (Some(b), Some((r, ids)), Ok(())) = (self.baseline, &base, &result) {
            match col.finish_reconciliation(b, r, ids, opts.batch_records, sink) {
                Err(ScanError::Source(e)) => result = Err(ScanError::Source(e)),
                Err(other) => return Err(other),
                Ok(()) => {}
            }
        }
        let failed = matches!(result, Err(ScanError::Source(_)));
        let (report, exported_sets) = col.finish(source, &self.keys, failed, sink)?;
        let name = &contract.collection;
        for (f, set) in exported_sets {
            self.keys.entry(name.clone()).or_default().insert(f, set);
        }
        if let Some(reason) = incomplete(&report, failed).or_else(|| source.filtered(name)) {
            self.unverified.insert(name.clone(), reason);
        }
        match result {
            Ok(()) => Ok((Some(report), None)),
            Err(ScanError::Source(e)) => Ok((Some(report), Some(e))),
            Err(other) => Err(other),
        }
    }

    /// The baseline's side of a collection, read before it; None without a baseline or
    /// when the baseline lacks the collection (a warning says so).
    fn baseline_of(&mut self, name: &str) -> Result<Option<BaselineCollection<'r>>, SourceError> {
        let Some(b) = self.baseline else {
            return Ok(None);
        };
        let opts = self.opts;
        match b.entries_shown(name, &self.pool, opts.batch_records, opts.progress) {
            None => {
                self.warnings.push(format!(
                    "the baseline ({}) has no collection {name:?}: not reconciled",
                    b.describe()
                ));
                Ok(None)
            }
            Some(r) => r.map(Some),
        }
    }
}

/// Why references to a collection are not verified when `n` of its records are unreadable.
fn unreadable_reason(coll: &str, n: u64) -> String {
    let s = if n == 1 { "" } else { "s" };
    format!("{coll}: {n} unreadable record{s}")
}

/// Why references to the collection of `report` are not verified, or None when every
/// record of it was read.
pub(crate) fn incomplete(report: &CollectionReport, failed: bool) -> Option<String> {
    if failed {
        Some(format!("{}: reading it failed", report.name))
    } else if report.unreadable > 0 {
        Some(unreadable_reason(&report.name, report.unreadable))
    } else {
        None
    }
}

/// Referenced collections first, so that references can be resolved while the
/// referencing collection streams; cycles fall back to name order (and are resolved
/// at the end of the collection instead).
fn scan_order<'a>(chosen: &[&'a Contract]) -> Vec<&'a Contract> {
    let mut done: Vec<&'a Contract> = Vec::new();
    let mut left: Vec<&'a Contract> = chosen.to_vec();
    while !left.is_empty() {
        let ready = left.iter().position(|c| {
            c.versions.iter().flat_map(|v| &v.references).all(|r| {
                r.collection == c.collection || !left.iter().any(|o| o.collection == r.collection)
            })
        });
        let i = ready.unwrap_or(0);
        done.push(left.remove(i));
    }
    done
}

#[cfg(test)]
mod doc_tests;
#[cfg(test)]
mod tests;
