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

mod doc;
mod ids;
pub mod partial;
mod path;
mod prehashed;
mod progress;

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};

pub use progress::{progress_line, Meter, Unit};
use rayon::prelude::*;

use crate::contract::{Contract, ContractSet, IndexSpec};
use crate::reconcile::{self, DiffKind, Entry};

use crate::report::{
    CollectionReport, DuplicateFinding, ErrorKind, IndexFindings, ReferenceFinding, Violation,
    ViolationSink,
};
use crate::source::{CollectionSource, Source, SourceError};

pub use doc::{
    classify, Class, DocContext, DocFacts, Examined, SchemaError, MAX_BSON_BYTES, MAX_NESTING,
};
pub use ids::{id_text, IdArena};
pub use partial::{Chunk, PartialError, PartialReader, PartialWriter};
pub use path::{generalise_pointer, values_at};
pub use prehashed::{HashMap128, HashSet128};

/// Documents kept per non-valid class to derive remediations from.
const SAMPLES: usize = 25;

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

/// Why a scan stopped early.
#[derive(Debug, thiserror::Error)]
pub enum ScanError {
    /// The source failed; the partial results are still returned.
    #[error(transparent)]
    Source(#[from] SourceError),
    #[error("cannot write violations: {0}")]
    Output(#[from] std::io::Error),
    #[error("cannot start {threads} worker threads: {message}")]
    Threads { threads: usize, message: String },
    /// A partial result to merge or a checkpoint to continue is unusable.
    #[error(transparent)]
    Partial(#[from] PartialError),
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

type KeySets = HashMap<(String, String), HashSet128>;
/// A changed document: its `_id` text, its baseline ordinal, its top-level field hashes.
type ChangedDoc = (String, u32, Option<Vec<(String, u128)>>);
/// The value sets of a collection's fields that other collections reference.
type ExportedKeys = Vec<(String, HashSet128)>;

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
    fn database(&self) -> Option<&str> {
        match self {
            Baseline::Source(s) => s.database.as_deref(),
            Baseline::Snapshot(s) => s.header.database.as_deref(),
        }
    }

    fn describe(&self) -> String {
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
    fn documents(
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
    fn indexes(&self, name: &str) -> Option<Vec<IndexSpec>> {
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
    let mut warnings = Vec::new();
    if let Some(b) = baseline {
        if let (Some(bd), Some(sd)) = (b.database(), source.database.as_deref()) {
            if bd != sd {
                warnings.push(format!(
                    "the baseline is database {bd:?}, the source is database {sd:?}"
                ));
            }
        }
    }
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(opts.threads)
        .thread_name(|i| format!("docsweep-scan-{i}"))
        .build()
        .map_err(|e| ScanError::Threads {
            threads: opts.threads,
            message: e.to_string(),
        })?;
    let chosen: Vec<&Contract> = contracts
        .contracts
        .values()
        .filter(|c| selected.is_empty() || selected.contains(&c.collection))
        .collect();

    // Which (collection, field) value sets references need.
    let mut needed: BTreeSet<(String, String)> = BTreeSet::new();
    for c in &chosen {
        for v in &c.versions {
            for r in &v.references {
                needed.insert((r.collection.clone(), r.to.clone()));
            }
        }
    }
    let order = scan_order(&chosen);
    let mut keys: KeySets = HashMap::new();

    // Referenced collections that are not checked themselves: collect their keys first.
    let checked: BTreeSet<&str> = chosen.iter().map(|c| c.collection.as_str()).collect();
    let mut key_only: BTreeMap<&str, Vec<String>> = BTreeMap::new();
    for (coll, field) in &needed {
        if !checked.contains(coll.as_str()) {
            key_only
                .entry(coll.as_str())
                .or_default()
                .push(field.clone());
        }
    }
    // References that point forward in the scan order (cycles between collections)
    // need the referenced values before the referenced collection is checked.
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
    // A referenced collection the source does not have cannot be checked: say so
    // instead of calling every reference an orphan.
    let mut absent: BTreeSet<String> = BTreeSet::new();
    // Referenced collections whose records were not all read, and why: references to
    // them are not verified (an orphan cannot be told from a reference to a record that
    // could not be read).
    let mut unverified: BTreeMap<String, String> = BTreeMap::new();
    for (coll, _) in &needed {
        // Read with --query: what it did not match was not read.
        if let Some(reason) = source.filtered(coll) {
            unverified.insert(coll.clone(), reason);
        }
        if source.collection(coll).is_none() && absent.insert(coll.clone()) {
            warnings.push(format!(
                "references to {coll:?} are not checked: the source has no collection {coll:?}"
            ));
            unverified.insert(coll.clone(), format!("{coll}: not in the source"));
        }
    }
    for (coll, fields) in key_only {
        if let Some(cs) = source.collection(coll) {
            let collected = match facts {
                Facts::Merge(readers) => Ok(merged_keys(readers, coll, &fields)?),
                _ => collect_keys(source, cs, &fields, &pool, opts.batch_records),
            };
            match collected {
                Ok((sets, unreadable)) => {
                    if unreadable > 0 {
                        unverified.insert(coll.to_string(), unreadable_reason(coll, unreadable));
                    }
                    for (f, set) in fields.into_iter().zip(sets) {
                        if let Facts::Record(w) = facts {
                            w.keys(coll, &f, &set, unreadable)?;
                        }
                        keys.insert((coll.to_string(), f), set);
                    }
                }
                Err(e) => {
                    return Ok(ScanOutcome {
                        collections: Vec::new(),
                        failure: Some(e),
                        warnings,
                    })
                }
            }
        }
    }

    let mut reports: BTreeMap<String, CollectionReport> = BTreeMap::new();
    let mut failure = None;
    for contract in order {
        let exported: Vec<String> = needed
            .iter()
            .filter(|(c, _)| *c == contract.collection)
            .map(|(_, f)| f.clone())
            .collect();
        let Some(cs) = source.collection(&contract.collection) else {
            reports.insert(
                contract.collection.clone(),
                CollectionReport {
                    name: contract.collection.clone(),
                    target_version: contract.target,
                    present: false,
                    ..CollectionReport::default()
                },
            );
            continue;
        };
        let mut col = CollectionScan::new(contract, cs, exported, &absent, &unverified, source);
        // The baseline side is read first, so each document is compared as it streams.
        let mut base = None;
        if let Some(b) = baseline {
            match b.entries_shown(
                &contract.collection,
                &pool,
                opts.batch_records,
                opts.progress,
            ) {
                None => warnings.push(format!(
                    "the baseline ({}) has no collection {:?}: not reconciled",
                    b.describe(),
                    contract.collection
                )),
                Some(Ok((recon, ids))) => base = Some((recon, ids)),
                Some(Err(e)) => {
                    failure = Some(e);
                    break;
                }
            }
        }
        let recon = base.as_ref().map(|(r, _)| &**r);
        let mut result = col.run(source, &pool, opts, &keys, recon, sink, facts);
        if let Facts::Record(_) = facts {
            // Nothing is folded: the merge makes the report.
            match result {
                Ok(()) => continue,
                Err(ScanError::Source(e)) => {
                    failure = Some(e);
                    break;
                }
                Err(other) => return Err(other),
            }
        }
        if let (Some(b), Some((r, ids)), Ok(())) = (baseline, &base, &result) {
            if let Err(e) = col.finish_reconciliation(b, r, ids, opts.batch_records, sink) {
                match e {
                    ScanError::Source(e) => result = Err(ScanError::Source(e)),
                    other => return Err(other),
                }
            }
        }
        let failed = matches!(result, Err(ScanError::Source(_)));
        let (report, exported_sets) = col.finish(source, &keys, failed, sink)?;
        for (f, set) in exported_sets {
            keys.insert((contract.collection.clone(), f), set);
        }
        if let Some(reason) =
            incomplete(&report, failed).or_else(|| source.filtered(&contract.collection))
        {
            unverified.insert(contract.collection.clone(), reason);
        }
        reports.insert(contract.collection.clone(), report);
        match result {
            Ok(()) => {}
            Err(ScanError::Source(e)) => {
                failure = Some(e);
                break;
            }
            Err(other) => return Err(other),
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
        warnings,
    })
}

/// Why references to a collection are not verified when `n` of its records are unreadable.
fn unreadable_reason(coll: &str, n: u64) -> String {
    let s = if n == 1 { "" } else { "s" };
    format!("{coll}: {n} unreadable record{s}")
}

/// Why references to the collection of `report` are not verified, or None when every
/// record of it was read.
fn incomplete(report: &CollectionReport, failed: bool) -> Option<String> {
    if failed {
        Some(format!("{}: reading it failed", report.name))
    } else if report.unreadable > 0 {
        Some(unreadable_reason(&report.name, report.unreadable))
    } else {
        None
    }
}

/// Decodes and fingerprints every document of a collection (for a baseline or a
/// snapshot). Unreadable records fail it: a baseline must be complete.
pub fn fingerprint_collection(
    source: &Source,
    cs: &CollectionSource,
    pool: &rayon::ThreadPool,
    batch_records: usize,
    mut keep_documents: Option<&mut dyn std::io::Write>,
    progress: bool,
    label: &str,
) -> Result<(Vec<Entry>, IdArena), SourceError> {
    let keep = keep_documents.is_some();
    let mut write_error = None;
    let mut entries = Vec::new();
    let mut ids = IdArena::default();
    let pb = meter(progress, label, source, cs);
    let mut unreadable = 0u64;
    /// A document's `_id` (and its key hash), fingerprints and kept bytes.
    type Fingerprinted = (
        Option<(serde_json::Value, u128)>,
        crate::value::Fingerprint,
        Option<Vec<u8>>,
    );
    let reader = source.reader(cs)?;
    let encoding = reader.encoding();
    let map = |batch: &crate::source::Batch| -> Vec<Option<Fingerprinted>> {
        batch
            .records
            .par_iter()
            .map(|rec| {
                if rec.broken.is_some() {
                    return None;
                }
                let bytes = batch.bytes(rec);
                let d = decode_any(encoding, bytes)?;
                let fp = crate::value::fingerprint(&d.value);
                // A full snapshot keeps the original BSON; exports are re-encoded.
                let doc = match (keep, encoding) {
                    (false, _) => None,
                    (true, crate::source::Encoding::Bson) => Some(bytes.to_vec()),
                    (true, crate::source::Encoding::Json) => crate::value::to_bson(&d.value).ok(),
                };
                let id = d
                    .value
                    .get("_id")
                    .map(|id| (id.clone(), crate::value::key_hash(id)));
                Some((id, fp, doc))
            })
            .collect()
    };
    let mut fold = |docs: Vec<Option<Fingerprinted>>| -> Result<(), ScanError> {
        for doc in docs {
            let Some((id, fp, bytes)) = doc else {
                unreadable += 1;
                continue;
            };
            let ordinal = ids.len() as u32;
            ids.push(id.as_ref().map(|(v, _)| v));
            if let Some((_, key)) = id {
                if let (Some(out), Some(b)) = (keep_documents.as_mut(), &bytes) {
                    if let Err(e) = out.write_all(b) {
                        write_error.get_or_insert(e);
                    }
                }
                entries.push(Entry {
                    id: key,
                    content: fp.content,
                    ordered: fp.ordered,
                    ordinal,
                });
            }
        }
        Ok(())
    };
    let r = stream_mapped(reader, &pb, batch_records, pool, &map, &mut fold);
    pb.finish();
    if let Some(e) = write_error {
        return Err(SourceError::Other(format!(
            "cannot keep the documents of {}: {e}",
            cs.name
        )));
    }
    match r {
        Ok(()) if unreadable > 0 => Err(SourceError::Other(format!(
            "baseline {}: {unreadable} unreadable record(s) in {}; a baseline must be complete",
            source.spec,
            cs.file.display()
        ))),
        Ok(()) => Ok((entries, ids)),
        Err(ScanError::Source(e)) => Err(e),
        Err(other) => Err(SourceError::Other(other.to_string())),
    }
}

/// Reads a collection's documents in order on the calling thread (for the second pass
/// of a repair plan, which needs the documents themselves). Unreadable records are
/// passed as errors.
pub fn read_documents(
    source: &Source,
    cs: &CollectionSource,
    f: &mut dyn FnMut(crate::source::Location, Option<serde_json::Value>) -> Result<(), ScanError>,
) -> Result<(), ScanError> {
    let pb = Meter::hidden();
    stream_batches(
        source,
        cs,
        &pb,
        crate::source::BATCH_RECORDS,
        |encoding, batch| {
            for rec in &batch.records {
                let doc = match rec.broken {
                    Some(_) => None,
                    None => decode_any(encoding, batch.bytes(rec)).map(|d| d.value),
                };
                f(rec.location, doc)?;
            }
            Ok(())
        },
    )
}

/// Decodes a record of either encoding, or None when it is unreadable.
fn decode_any(encoding: crate::source::Encoding, bytes: &[u8]) -> Option<crate::value::Decoded> {
    match encoding {
        crate::source::Encoding::Bson => crate::value::from_bson(bytes).ok(),
        crate::source::Encoding::Json => crate::value::from_json(bytes).ok(),
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

/// The progress line of reading `cs` (labelled `label`, else the collection's name):
/// bytes of a file, documents against the estimated count live.
fn meter(show: bool, label: &str, source: &Source, cs: &CollectionSource) -> Meter {
    let unit = if source.is_live() {
        Unit::Docs
    } else {
        Unit::Bytes
    };
    let label = if label.is_empty() {
        cs.name.clone()
    } else {
        format!("{label} {}", cs.name)
    };
    Meter::new(show, &label, unit, cs.size)
}

type BatchResult = Result<Option<crate::source::Batch>, SourceError>;

/// Reads batches on their own thread (bounded hand-off, so memory stays flat); the
/// reader ends when the receiver is dropped.
fn spawn_reader<'s>(
    s: &'s std::thread::Scope<'s, '_>,
    mut reader: Box<dyn crate::source::RecordReader>,
    pb: &Meter,
    batch_records: usize,
) -> crossbeam_channel::Receiver<BatchResult> {
    let (tx, rx) = crossbeam_channel::bounded(4);
    let pb = pb.clone();
    s.spawn(move || {
        let mut docs = 0u64;
        loop {
            let next = reader.next_batch(batch_records);
            if let Ok(Some(b)) = &next {
                docs += b.records.len() as u64;
            }
            pb.update(reader.position(), docs);
            let stop = !matches!(next, Ok(Some(_)));
            if tx.send(next).is_err() || stop {
                break;
            }
        }
    });
    rx
}

/// Runs the reader on its own thread, handing batches to `consume` in order.
fn stream_batches(
    source: &Source,
    cs: &CollectionSource,
    pb: &Meter,
    batch_records: usize,
    mut consume: impl FnMut(crate::source::Encoding, crate::source::Batch) -> Result<(), ScanError>,
) -> Result<(), ScanError> {
    let reader = source.reader(cs)?;
    let encoding = reader.encoding();
    std::thread::scope(|s| {
        let rx = spawn_reader(s, reader, pb, batch_records);
        for msg in rx {
            match msg {
                Ok(Some(batch)) => consume(encoding, batch)?,
                Ok(None) => break,
                Err(e) => return Err(ScanError::Source(e)),
            }
        }
        Ok(())
        // Dropping `rx` on an early return unblocks the reader, which then ends.
    })
}

/// Streams batches and maps each on the pool while the calling thread folds the results
/// of earlier batches, in source order: reading, examining and folding overlap.
fn stream_mapped<T: Send>(
    reader: Box<dyn crate::source::RecordReader>,
    pb: &Meter,
    batch_records: usize,
    pool: &rayon::ThreadPool,
    map: &(dyn Fn(&crate::source::Batch) -> T + Sync),
    fold: &mut dyn FnMut(T) -> Result<(), ScanError>,
) -> Result<(), ScanError> {
    /// Batches being examined ahead of the fold.
    const AHEAD: usize = 3;
    if pool.current_num_threads() == 1 {
        // One thread does it all, reading included: one core, as asked.
        return stream_inline(reader, pb, batch_records, pool, map, fold);
    }
    std::thread::scope(|s| {
        let rx = spawn_reader(s, reader, pb, batch_records);
        pool.in_place_scope(|scope| {
            let mut queue = std::collections::VecDeque::new();
            let mut result = Ok(());
            for msg in rx {
                match msg {
                    Ok(Some(batch)) => {
                        let (btx, brx) = crossbeam_channel::bounded(1);
                        scope.spawn(move |_| {
                            let _ = btx.send(map(&batch));
                        });
                        queue.push_back(brx);
                    }
                    Ok(None) => break,
                    Err(e) => {
                        result = Err(ScanError::Source(e));
                        break;
                    }
                }
                while queue.len() > AHEAD {
                    if let Some(Ok(t)) = queue.pop_front().map(|q| q.recv()) {
                        fold(t)?;
                    }
                }
            }
            while let Some(q) = queue.pop_front() {
                if let (Ok(t), Ok(())) = (q.recv(), &result) {
                    result = fold(t);
                }
            }
            result
        })
        // Dropping the receivers on an early return unblocks the reader and the
        // examiners, which then end.
    })
}

/// [`stream_mapped`] on the calling thread alone: read a batch, map it (on the pool's
/// one thread, which runs nested parallel iterators inline), fold it.
fn stream_inline<T: Send>(
    mut reader: Box<dyn crate::source::RecordReader>,
    pb: &Meter,
    batch_records: usize,
    pool: &rayon::ThreadPool,
    map: &(dyn Fn(&crate::source::Batch) -> T + Sync),
    fold: &mut dyn FnMut(T) -> Result<(), ScanError>,
) -> Result<(), ScanError> {
    let mut docs = 0u64;
    loop {
        let batch = reader.next_batch(batch_records)?;
        pb.update(reader.position(), docs);
        let Some(batch) = batch else {
            return Ok(());
        };
        docs += batch.records.len() as u64;
        let t = pool.install(|| map(&batch));
        drop(batch);
        fold(t)?;
    }
}

/// The value sets of `fields` of a collection that is referenced but not checked: the
/// union of what every partition recorded.
fn merged_keys(
    readers: &mut [PartialReader],
    coll: &str,
    fields: &[String],
) -> Result<(Vec<HashSet128>, u64), PartialError> {
    let mut sets = vec![HashSet128::default(); fields.len()];
    let mut unreadable = 0u64;
    for r in readers.iter_mut() {
        // Each field's chunk of a partition counts the same unreadable records.
        let mut in_partition = 0u64;
        for (f, set) in fields.iter().zip(sets.iter_mut()) {
            match r.next_chunk()? {
                Some(Chunk::Keys {
                    collection,
                    field,
                    hashes,
                    unreadable: n,
                }) if collection == coll && field == *f => {
                    set.extend(hashes);
                    in_partition = in_partition.max(n);
                }
                other => {
                    return Err(PartialError::Invalid {
                        path: r.path().to_path_buf(),
                        message: format!(
                            "expected the values of {coll}.{f}, found {}",
                            describe_chunk(other.as_ref())
                        ),
                    })
                }
            }
        }
        unreadable += in_partition;
    }
    Ok((sets, unreadable))
}

fn describe_chunk(c: Option<&Chunk>) -> String {
    match c {
        None => "the end of the file (the partition run did not finish)".into(),
        Some(Chunk::Header(_)) => "a second header".into(),
        Some(Chunk::Keys {
            collection, field, ..
        }) => format!("the values of {collection}.{field}"),
        Some(Chunk::Section(m)) => format!("the records of {}", m["collection"]),
        Some(Chunk::Records(_)) => "records".into(),
        Some(Chunk::SectionEnd(_)) => "the end of a collection".into(),
        Some(Chunk::Note(_)) | Some(Chunk::End) => "the end of the results".into(),
    }
}

/// Checks that the partitions' ranges of a collection tile it: the first starts at the
/// beginning, each ends where the next starts, the last runs to the end.
fn check_tiling(
    name: &str,
    ranges: &[Option<crate::source::Range>],
    readers: &[PartialReader],
) -> Result<(), ScanError> {
    let bad = |i: usize, m: String| {
        ScanError::Partial(PartialError::Invalid {
            path: readers[i].path().to_path_buf(),
            message: m,
        })
    };
    let n = ranges.len();
    for (i, r) in ranges.iter().enumerate() {
        let Some(r) = r else {
            return Err(bad(i, format!("no range recorded for {name:?}")));
        };
        if i == 0 && !r.is_first() {
            return Err(bad(
                i,
                format!("{name:?}: the first partition starts at {r}"),
            ));
        }
        if i + 1 == n && !r.is_last() {
            return Err(bad(i, format!("{name:?}: the last partition ends at {r}")));
        }
        if let Some(Some(next)) = ranges.get(i + 1) {
            if !r.meets(next) {
                return Err(bad(
                    i + 1,
                    format!(
                        "{name:?}: partition {} covers {r} but partition {} covers {next}: \
                         the partitions do not tile the data (did it change between the runs?)",
                        i,
                        i + 1
                    ),
                ));
            }
        }
    }
    Ok(())
}

/// Collects the value hashes of `fields` in a collection that is referenced but not
/// checked, and counts its unreadable records (references to it are not verified then).
fn collect_keys(
    source: &Source,
    cs: &CollectionSource,
    fields: &[String],
    pool: &rayon::ThreadPool,
    batch_records: usize,
) -> Result<(Vec<HashSet128>, u64), SourceError> {
    let mut sets = vec![HashSet128::default(); fields.len()];
    let mut unreadable = 0u64;
    let pb = Meter::hidden();
    let reader = source.reader(cs)?;
    let encoding = reader.encoding();
    let map = |batch: &crate::source::Batch| -> Vec<Option<Vec<Vec<u128>>>> {
        batch
            .records
            .par_iter()
            .map(|rec| {
                if rec.broken.is_some() {
                    return None;
                }
                let d = decode_any(encoding, batch.bytes(rec))?;
                Some(
                    fields
                        .iter()
                        .map(|f| {
                            values_at(&d.value, f)
                                .into_iter()
                                .filter(|v| !v.is_null())
                                .map(crate::value::key_hash)
                                .collect()
                        })
                        .collect(),
                )
            })
            .collect()
    };
    let mut fold = |per_doc: Vec<Option<Vec<Vec<u128>>>>| -> Result<(), ScanError> {
        for doc in per_doc {
            let Some(doc) = doc else {
                unreadable += 1;
                continue;
            };
            for (set, hashes) in sets.iter_mut().zip(doc) {
                set.extend(hashes);
            }
        }
        Ok(())
    };
    let r = stream_mapped(reader, &pb, batch_records, pool, &map, &mut fold);
    match r {
        Ok(()) => Ok((sets, unreadable)),
        Err(ScanError::Source(e)) => Err(e),
        Err(other) => Err(SourceError::Other(other.to_string())),
    }
}

/// The running state of one collection's scan.
struct CollectionScan<'a> {
    contract: &'a Contract,
    cs: &'a CollectionSource,
    report: CollectionReport,
    exported_fields: Vec<String>,
    exported: Vec<HashSet128>,
    /// Every document's `_id` by ordinal, kept only when findings discovered later need
    /// to name earlier documents (unique keys, self-references).
    ids: Option<IdArena>,
    /// Documents seen so far (the ordinal of the next one).
    seen: usize,
    id_set: HashSet128,
    /// Per unique index: key hash → (ordinal of the first document, documents with it).
    unique: Vec<HashMap128<(u32, u32)>>,
    /// References to collections not yet complete: (reference, _id text, value hashes).
    deferred: Vec<(usize, u32, Vec<u128>)>,
    /// Referenced collections the source does not have (references to them are not checked).
    absent: BTreeSet<String>,
    /// Per unique index: ordinals of documents already reported as duplicates.
    unique_reported: Vec<HashSet<u32>>,
    errors: HashMap<(String, String), (u64, Vec<String>)>,
    ctx_refs: Vec<crate::contract::Reference>,
    actual_indexes: Option<Vec<IndexSpec>>,
    index_error: Option<SourceError>,
    /// Reconciliation state while streaming (with a baseline).
    recon_progress: Option<reconcile::Progress>,
    /// Changed documents: (ordinal, baseline ordinal, top-level field hashes).
    changed: Vec<ChangedDoc>,
    /// Per unique index: its fields joined by `,` (as in `duplicate:email`).
    unique_labels: Vec<String>,
    /// Sample classes the report already holds [`SAMPLES`] of: the examiners drop
    /// further samples of them instead of handing them to the fold.
    full_samples: std::sync::Arc<std::sync::Mutex<HashSet<String>>>,
}

impl<'a> CollectionScan<'a> {
    fn new(
        contract: &'a Contract,
        cs: &'a CollectionSource,
        exported_fields: Vec<String>,
        absent: &BTreeSet<String>,
        unverified: &BTreeMap<String, String>,
        source: &Source,
    ) -> Self {
        let ctx_refs = doc::distinct_refs(contract);
        let references = ctx_refs
            .iter()
            .map(|r| {
                let reason = unverified.get(&r.collection).cloned();
                ReferenceFinding {
                    field: r.field.clone(),
                    collection: r.collection.clone(),
                    to: r.to.clone(),
                    checked: reason.is_none(),
                    orphans_unverified: (reason.is_some() && !absent.contains(&r.collection))
                        .then_some(0),
                    reason,
                    orphans: 0,
                }
            })
            .collect();
        let (actual_indexes, index_error) = match source.indexes(cs) {
            Ok(ix) => (ix, None),
            Err(e) => (None, Some(e)),
        };
        let n_unique = contract.unique_indexes().count();
        let self_referencing = ctx_refs.iter().any(|r| r.collection == contract.collection);
        CollectionScan {
            contract,
            cs,
            report: CollectionReport {
                name: contract.collection.clone(),
                target_version: contract.target,
                present: true,
                references,
                ..CollectionReport::default()
            },
            exported: vec![HashSet128::default(); exported_fields.len()],
            exported_fields,
            ids: (n_unique > 0 || self_referencing).then(IdArena::default),
            seen: 0,
            id_set: HashSet128::default(),
            unique: vec![HashMap128::default(); n_unique],
            deferred: Vec::new(),
            absent: absent.clone(),
            unique_reported: vec![HashSet::new(); n_unique],
            errors: HashMap::new(),
            ctx_refs,
            actual_indexes,
            index_error,
            recon_progress: None,
            changed: Vec::new(),
            unique_labels: contract
                .unique_indexes()
                .map(|ix| ix.key.fields_label())
                .collect(),
            full_samples: Default::default(),
        }
    }

    #[allow(clippy::too_many_arguments)]
    fn run(
        &mut self,
        source: &Source,
        pool: &rayon::ThreadPool,
        opts: &ScanOptions,
        keys: &KeySets,
        recon: Option<&reconcile::Reconciler>,
        sink: &mut dyn ViolationSink,
        facts: &mut Facts<'_>,
    ) -> Result<(), ScanError> {
        if let Some(r) = recon {
            self.recon_progress = Some(r.start());
        }
        let resume = crate::source::Resume::default();
        match facts {
            Facts::Fold => {
                let (reader, _) = source.reader_from(self.cs, &resume)?;
                self.stream(source, reader, pool, opts, keys, recon, sink, None, true)
            }
            Facts::Record(w) => {
                let (reader, range) = source.reader_from(self.cs, &resume)?;
                w.section(&self.section_meta(range.as_ref()))?;
                self.stream(
                    source,
                    reader,
                    pool,
                    opts,
                    keys,
                    recon,
                    sink,
                    Some(w),
                    false,
                )?;
                Ok(w.section_end()?)
            }
            Facts::Merge(readers) => self.merge(readers, keys, recon, sink),
            Facts::Checkpoint(cp) => {
                let Some((resume, open)) = self.replay_checkpoint(cp, keys, recon, sink)? else {
                    return Ok(());
                };
                let (reader, _) = source.reader_from(self.cs, &resume)?;
                let w = cp.writer(resume.skip)?;
                if !open {
                    w.section(&self.section_meta(None))?;
                }
                self.stream(source, reader, pool, opts, keys, recon, sink, Some(w), true)?;
                Ok(w.section_end()?)
            }
        }
    }

    /// What a partial result says about a collection before its records.
    fn section_meta(&self, range: Option<&crate::source::Range>) -> serde_json::Value {
        serde_json::json!({
            "collection": self.contract.collection,
            "file": self.cs.file.display().to_string(),
            "range": range,
            "indexes": self.actual_indexes.as_ref().map(|l| {
                l.iter().map(IndexSpec::to_report_json).collect::<Vec<_>>()
            }),
            "index_error": self.index_error.as_ref().map(|e| e.to_string()),
        })
    }

    /// Reads and folds this collection's records in every partition, in order, after
    /// checking that the partitions' ranges tile the collection.
    fn merge(
        &mut self,
        readers: &mut [PartialReader],
        keys: &KeySets,
        recon: Option<&reconcile::Reconciler>,
        sink: &mut dyn ViolationSink,
    ) -> Result<(), ScanError> {
        let name = self.contract.collection.clone();
        let mut ranges: Vec<Option<crate::source::Range>> = Vec::new();
        // Live cursor positions restart in each partition; they continue here.
        let mut base = 0u64;
        for (i, r) in readers.iter_mut().enumerate() {
            let bad = |r: &PartialReader, m: String| {
                ScanError::Partial(PartialError::Invalid {
                    path: r.path().to_path_buf(),
                    message: m,
                })
            };
            let meta = match r.next_chunk()? {
                Some(Chunk::Section(m)) if m["collection"] == name.as_str() => m,
                other => {
                    return Err(bad(
                        r,
                        format!(
                            "expected the records of {name:?}, found {}",
                            describe_chunk(other.as_ref())
                        ),
                    ))
                }
            };
            if i == 0 {
                self.adopt_indexes(&meta);
            }
            let range: Option<crate::source::Range> =
                serde_json::from_value(meta["range"].clone()).ok().flatten();
            ranges.push(range);
            let mut count = 0u64;
            loop {
                match r.next_chunk()? {
                    Some(Chunk::Records(list)) => {
                        for mut ex in list {
                            if let crate::source::Location::Live { index } = &mut ex.location {
                                *index += base;
                            }
                            count += 1;
                            self.fold(ex, keys, recon, sink)?;
                        }
                    }
                    Some(Chunk::SectionEnd(_)) => break,
                    other => {
                        return Err(bad(
                            r,
                            format!(
                                "the records of {name:?} end early ({})",
                                describe_chunk(other.as_ref())
                            ),
                        ))
                    }
                }
            }
            base += count;
        }
        check_tiling(&name, &ranges, readers)
    }

    /// Takes the indexes a partial result recorded for this collection.
    fn adopt_indexes(&mut self, meta: &serde_json::Value) {
        self.actual_indexes = meta["indexes"].as_array().map(|l| {
            l.iter()
                .filter_map(|v| IndexSpec::from_server_json(v).ok())
                .collect()
        });
        self.index_error = meta["index_error"]
            .as_str()
            .map(|m| SourceError::Other(m.to_string()));
    }

    /// Folds what a checkpoint recorded for this collection. Returns where to continue
    /// reading and whether the checkpoint already has this collection's section open,
    /// or None when the collection was complete.
    fn replay_checkpoint(
        &mut self,
        cp: &mut Checkpoint,
        keys: &KeySets,
        recon: Option<&reconcile::Reconciler>,
        sink: &mut dyn ViolationSink,
    ) -> Result<Option<(crate::source::Resume, bool)>, ScanError> {
        let mut resume = crate::source::Resume::default();
        let Some(r) = cp.replay.as_mut() else {
            return Ok(Some((resume, false)));
        };
        let name = self.contract.collection.as_str();
        match r.peek() {
            Ok(Some(Chunk::Section(m))) if m["collection"] == name => {}
            // Nothing (more) recorded, or a torn tail: scan from here on.
            Ok(_) | Err(PartialError::Invalid { .. }) => {
                let done = cp.replay.take().map(|r| r.valid_len()).unwrap_or(0);
                cp.writer = Some(PartialWriter::append(&cp.path, done, 0)?);
                return Ok(Some((resume, false)));
            }
            Err(e) => return Err(e.into()),
        }
        let _ = r.next_chunk()?;
        let mut after_id = 0u64;
        loop {
            match r.next_chunk() {
                Ok(Some(Chunk::Records(list))) => {
                    for ex in list {
                        resume.skip += 1;
                        after_id += 1;
                        if let Ok(f) = &ex.outcome {
                            if f.id.is_some() {
                                resume.after_id = f.id.clone();
                                after_id = 0;
                            }
                        }
                        self.fold(ex, keys, recon, sink)?;
                    }
                }
                Ok(Some(Chunk::SectionEnd(_))) => return Ok(None),
                // The run stopped in this collection: continue after what it recorded.
                Ok(None) | Err(PartialError::Invalid { .. }) => break,
                Ok(Some(other)) => {
                    return Err(ScanError::Partial(PartialError::Invalid {
                        path: cp.path.clone(),
                        message: format!(
                            "inconsistent checkpoint: {} inside the records of {name:?}",
                            describe_chunk(Some(&other))
                        ),
                    }))
                }
                Err(e) => return Err(e.into()),
            }
        }
        resume.skip_after_id = if resume.after_id.is_some() {
            after_id
        } else {
            resume.skip
        };
        let valid = r.valid_len();
        cp.replay = None;
        cp.writer = Some(PartialWriter::append(&cp.path, valid, resume.skip)?);
        Ok(Some((resume, true)))
    }

    /// Streams `reader`'s records through the examiners, then records and/or folds them.
    #[allow(clippy::too_many_arguments)]
    fn stream(
        &mut self,
        source: &Source,
        reader: Box<dyn crate::source::RecordReader>,
        pool: &rayon::ThreadPool,
        opts: &ScanOptions,
        keys: &KeySets,
        recon: Option<&reconcile::Reconciler>,
        sink: &mut dyn ViolationSink,
        mut record: Option<&mut PartialWriter>,
        fold: bool,
    ) -> Result<(), ScanError> {
        let pb = meter(opts.progress, "", source, self.cs);
        let cs = self.cs;
        let contract = self.contract;
        let exported_fields = self.exported_fields.clone();
        let ctx = DocContext::new(
            contract,
            cs.encoding(),
            exported_fields,
            opts.max_errors,
            opts.show_values,
        )
        .with_baseline(recon);
        let full = std::sync::Arc::clone(&self.full_samples);
        let map = |batch: &crate::source::Batch| -> Vec<Examined> {
            let mut examined: Vec<Examined> = batch
                .records
                .par_iter()
                .map(|rec| ctx.examine(batch.bytes(rec), rec.location, rec.broken.as_deref()))
                .collect();
            drop_unneeded_samples(&mut examined, &full);
            examined
        };
        let mut consume = |examined: Vec<Examined>| -> Result<(), ScanError> {
            if let Some(w) = record.as_mut() {
                w.records(&examined)?;
            }
            if fold {
                for ex in examined {
                    self.fold(ex, keys, recon, sink)?;
                }
            }
            Ok(())
        };
        let result = stream_mapped(reader, &pb, opts.batch_records, pool, &map, &mut consume);
        pb.finish();
        result
    }

    fn row(
        &self,
        id: &str,
        finding: &str,
        version: Option<u32>,
        path: &str,
        keyword: &str,
        message: String,
    ) -> Violation {
        Violation {
            collection: self.contract.collection.clone(),
            id: id.to_string(),
            finding: finding.to_string(),
            version,
            path: path.to_string(),
            keyword: keyword.to_string(),
            message,
        }
    }

    /// Folds one examined document into the collection's results, in source order.
    fn fold(
        &mut self,
        ex: Examined,
        keys: &KeySets,
        recon: Option<&reconcile::Reconciler>,
        sink: &mut dyn ViolationSink,
    ) -> Result<(), ScanError> {
        let facts = match ex.outcome {
            Err(message) => {
                self.report.unreadable += 1;
                let file = self.cs.file.display();
                let v = self.row(
                    "",
                    "unreadable",
                    None,
                    "",
                    "",
                    format!("{file}: {}: {message}", ex.location),
                );
                sink.violation(&v)?;
                return Ok(());
            }
            Ok(f) => f,
        };
        let ordinal = self.seen;
        self.seen += 1;
        if let Some(ids) = self.ids.as_mut() {
            ids.push(facts.id.as_ref());
        }
        self.report.documents += 1;
        // Formatting the _id costs; only rows need it.
        let id_cell = std::cell::OnceCell::new();
        let id = || -> &str {
            id_cell.get_or_init(|| facts.id.as_ref().map(id_text).unwrap_or_default())
        };
        let target = self.contract.target;

        if let Some(doc) = &facts.sample {
            let key = sample_class(facts.class);
            let samples = self.report.samples.entry(key.clone()).or_default();
            if samples.len() < SAMPLES {
                samples.push(doc.clone());
                if samples.len() == SAMPLES {
                    if let Ok(mut full) = self.full_samples.lock() {
                        full.insert(key);
                    }
                }
            }
        }
        match facts.class {
            Class::Valid => self.report.classes.valid += 1,
            Class::OtherVersion(v) => {
                *self
                    .report
                    .classes
                    .other_version
                    .entry(v.to_string())
                    .or_insert(0) += 1;
                let msg = format!("fails target version {target}, passes version {v}");
                sink.violation(&self.row(id(), "other_version", Some(v), "", "", msg))?;
            }
            Class::Invalid => {
                self.report.classes.invalid += 1;
                for e in &facts.errors {
                    let key = (e.keyword.clone(), generalise_pointer(&e.pointer));
                    let entry = self.errors.entry(key).or_insert((0, Vec::new()));
                    entry.0 += 1;
                    if entry.1.len() < 3 && facts.id.is_some() {
                        entry.1.push(id().to_string());
                    }
                    sink.violation(&self.row(
                        id(),
                        "invalid",
                        Some(target),
                        &e.pointer,
                        &e.keyword,
                        e.message.clone(),
                    ))?;
                }
            }
        }

        // Structure.
        match facts.id_key {
            None => {
                self.report.structure.missing_id += 1;
                sink.violation(&self.row(
                    "",
                    "missing_id",
                    None,
                    "/_id",
                    "",
                    format!("document at {} has no _id", ex.location),
                ))?;
            }
            Some(k) => {
                let first = self.id_set.insert(k);
                if let (true, Some(r), Some(p)) = (first, recon, self.recon_progress.as_mut()) {
                    let fp = facts.fingerprint;
                    match r.observe(p, k, fp.content, fp.ordered) {
                        (Some(DiffKind::Changed), Some(base_ordinal)) => {
                            self.changed.push((
                                id().to_string(),
                                base_ordinal,
                                facts.fields.clone(),
                            ));
                        }
                        (Some(kind), _) => {
                            let msg = match kind {
                                DiffKind::Added => "in the source, not in the baseline",
                                _ => "same content as the baseline, fields in another order",
                            };
                            sink.violation(&self.row(
                                id(),
                                kind.as_str(),
                                None,
                                "",
                                "",
                                msg.to_string(),
                            ))?;
                        }
                        (None, _) => {}
                    }
                }
                if !first {
                    self.report.structure.duplicate_id += 1;
                    sink.violation(&self.row(
                        id(),
                        "duplicate_id",
                        None,
                        "/_id",
                        "",
                        format!("_id seen before (document at {})", ex.location),
                    ))?;
                }
            }
        }
        if facts.depth > MAX_NESTING {
            self.report.structure.too_deep += 1;
            sink.violation(&self.row(
                id(),
                "too_deep",
                None,
                "",
                "",
                format!(
                    "nested {} levels deep; MongoDB allows {MAX_NESTING}",
                    facts.depth
                ),
            ))?;
        }
        if facts.oversize {
            self.report.structure.oversize += 1;
            sink.violation(&self.row(
                id(),
                "oversize",
                None,
                "",
                "",
                format!("larger than MongoDB's {MAX_BSON_BYTES}-byte document limit"),
            ))?;
        }

        // Unique keys, checked on the data even when the index is missing. Each
        // document is reported once per index, however many of its keys collide.
        for (ui, hashes) in facts.unique.iter().enumerate() {
            let finding = format!("duplicate:{}", self.unique_labels[ui]);
            let msg = format!(
                "same {} as another document (unique index)",
                self.unique_labels[ui]
            );
            for &h in hashes {
                let entry = self.unique[ui].entry(h).or_insert((ordinal as u32, 0));
                entry.1 = entry.1.saturating_add(1);
                let (first, count) = *entry;
                if count < 2 {
                    continue;
                }
                if self.unique_reported[ui].insert(first) {
                    let first_id = self
                        .ids
                        .as_ref()
                        .map(|a| a.get(first as usize))
                        .unwrap_or_default();
                    sink.violation(&self.row(&first_id, &finding, None, "", "", msg.clone()))?;
                }
                if self.unique_reported[ui].insert(ordinal as u32) {
                    sink.violation(&self.row(id(), &finding, None, "", "", msg.clone()))?;
                }
            }
        }

        // References.
        for (ri, hashes) in &facts.refs {
            let r = &self.ctx_refs[*ri];
            let set = if r.collection == self.contract.collection {
                None
            } else {
                keys.get(&(r.collection.clone(), r.to.clone()))
            };
            match set {
                Some(set) => {
                    if hashes.iter().any(|h| !set.contains(h)) {
                        let finding = &mut self.report.references[*ri];
                        if !finding.checked {
                            // Perhaps in a record that could not be read: not a finding.
                            *finding.orphans_unverified.get_or_insert(0) += 1;
                            continue;
                        }
                        finding.orphans += 1;
                        let msg = format!("{} not found in {}.{}", r.field, r.collection, r.to);
                        sink.violation(&self.row(
                            id(),
                            &format!("orphan:{}", r.field),
                            None,
                            &pointer_of(&r.field),
                            "",
                            msg,
                        ))?;
                    }
                }
                None if self.absent.contains(&r.collection) => {}
                None => self.deferred.push((*ri, ordinal as u32, hashes.clone())),
            }
        }
        for (set, hashes) in self.exported.iter_mut().zip(&facts.exported) {
            set.extend(hashes.iter().copied());
        }
        Ok(())
    }

    /// Missing documents, and the changed documents with the top-level fields that
    /// differ when the baseline's documents are available.
    fn finish_reconciliation(
        &mut self,
        baseline: &Baseline,
        recon: &reconcile::Reconciler,
        baseline_ids: &IdArena,
        batch_records: usize,
        sink: &mut dyn ViolationSink,
    ) -> Result<(), ScanError> {
        let Some(mut progress) = self.recon_progress.take() else {
            return Ok(());
        };
        for ordinal in recon.finish_missing(&mut progress) {
            let id = baseline_ids.get(ordinal as usize);
            let v = self.row(
                &id,
                "missing",
                None,
                "",
                "",
                "in the baseline, not in the source".into(),
            );
            sink.violation(&v)?;
        }
        let changed = std::mem::take(&mut self.changed);
        let wanted: HashSet<u32> = changed.iter().map(|c| c.1).collect();
        let before = if wanted.is_empty() {
            None
        } else {
            baseline
                .documents(&self.contract.collection, &wanted, batch_records)
                .transpose()?
        };
        for (id, base_ordinal, fields) in changed {
            let old = before.as_ref().and_then(|m| m.get(&base_ordinal));
            let (path, msg) = match (old, fields) {
                (Some(old), Some(now)) => {
                    let diff = reconcile::differing_fields(&reconcile::field_hashes(old), &now);
                    let paths: Vec<String> = diff
                        .iter()
                        .map(|f| format!("/{}", f.replace('~', "~0").replace('/', "~1")))
                        .collect();
                    (
                        paths.join(" "),
                        format!("content differs from the baseline in {}", diff.join(", ")),
                    )
                }
                _ => (
                    String::new(),
                    "content differs from the baseline".to_string(),
                ),
            };
            sink.violation(&self.row(&id, "changed", None, &path, "", msg))?;
        }
        let mut summary = progress.summary;
        if let (Some(before), Some(now)) = (
            baseline.indexes(&self.contract.collection),
            self.actual_indexes.as_ref(),
        ) {
            let dropped: Vec<serde_json::Value> = before
                .iter()
                .filter(|b| !b.key.is_id_only() && !now.iter().any(|n| n.same_index(b)))
                .map(IndexSpec::to_report_json)
                .collect();
            let created: Vec<serde_json::Value> = now
                .iter()
                .filter(|n| !n.key.is_id_only() && !before.iter().any(|b| b.same_index(n)))
                .map(IndexSpec::to_report_json)
                .collect();
            summary.indexes = Some(crate::report::IndexChanges { dropped, created });
        }
        self.report.reconciliation = Some(summary);
        Ok(())
    }

    /// Resolves deferred references, tallies duplicates and index coverage.
    fn finish(
        mut self,
        source: &Source,
        keys: &KeySets,
        failed: bool,
        sink: &mut dyn ViolationSink,
    ) -> Result<(CollectionReport, ExportedKeys), ScanError> {
        // References within the collection are resolved against what was read of it:
        // not verified when that is not all of it.
        if let Some(reason) =
            incomplete(&self.report, failed).or_else(|| source.filtered(&self.contract.collection))
        {
            let own = &self.contract.collection;
            for finding in &mut self.report.references {
                if finding.checked && finding.collection == *own {
                    finding.checked = false;
                    finding.reason = Some(reason.clone());
                    finding.orphans_unverified = Some(0);
                }
            }
        }
        let own: HashMap<&str, &HashSet128> = self
            .exported_fields
            .iter()
            .map(String::as_str)
            .zip(self.exported.iter())
            .collect();
        let empty = HashSet128::default();
        for (ri, ordinal, hashes) in std::mem::take(&mut self.deferred) {
            let id = self
                .ids
                .as_ref()
                .map(|a| a.get(ordinal as usize))
                .unwrap_or_default();
            let r = &self.ctx_refs[ri];
            let set = if r.collection == self.contract.collection {
                own.get(r.to.as_str()).copied().unwrap_or(&empty)
            } else {
                keys.get(&(r.collection.clone(), r.to.clone()))
                    .unwrap_or(&empty)
            };
            if hashes.iter().any(|h| !set.contains(h)) {
                let finding = &mut self.report.references[ri];
                if !finding.checked {
                    *finding.orphans_unverified.get_or_insert(0) += 1;
                    continue;
                }
                finding.orphans += 1;
                let msg = format!("{} not found in {}.{}", r.field, r.collection, r.to);
                let v = self.row(
                    &id,
                    &format!("orphan:{}", r.field),
                    None,
                    &pointer_of(&r.field),
                    "",
                    msg,
                );
                sink.violation(&v)?;
            }
        }
        drop(own);

        let uniques: Vec<&IndexSpec> = self.contract.unique_indexes().collect();
        self.report.duplicates = uniques
            .iter()
            .zip(self.unique.iter().zip(&self.unique_reported))
            .map(|(ix, (map, reported))| {
                let groups = map.values().filter(|(_, n)| *n > 1).count() as u64;
                let documents = reported.len() as u64;
                DuplicateFinding {
                    key: ix.key.to_json(),
                    name: ix.name.clone().unwrap_or_else(|| ix.key.default_name()),
                    groups,
                    documents,
                }
            })
            .collect();

        self.report.indexes = index_coverage(self.contract, self.actual_indexes.as_deref());
        if let Some(e) = self.index_error.take() {
            self.report.indexes.error = Some(e.to_string());
        }

        let mut top: Vec<ErrorKind> = self
            .errors
            .drain()
            .map(|((keyword, path), (count, example_ids))| ErrorKind {
                keyword,
                path,
                count,
                example_ids,
            })
            .collect();
        top.sort_by(|a, b| {
            b.count
                .cmp(&a.count)
                .then_with(|| (&a.keyword, &a.path).cmp(&(&b.keyword, &b.path)))
        });
        top.truncate(20);
        self.report.top_errors = top;

        let exported = self
            .exported_fields
            .into_iter()
            .zip(self.exported)
            .collect();
        Ok((self.report, exported))
    }
}

/// The class a remediation sample is kept under.
fn sample_class(class: Class) -> String {
    match class {
        Class::OtherVersion(v) => format!("other_version:{v}"),
        _ => "invalid".to_string(),
    }
}

/// Drops, on the examining thread, the samples the fold cannot keep: beyond the first
/// [`SAMPLES`] of a class in this batch, and every one of a class the fold already has
/// [`SAMPLES`] of. Those come from documents earlier in the source than any of this
/// batch, so which samples the report keeps does not change.
fn drop_unneeded_samples(examined: &mut [Examined], full: &std::sync::Mutex<HashSet<String>>) {
    let full = full.lock().map(|f| f.clone()).unwrap_or_default();
    let mut taken: HashMap<String, usize> = HashMap::new();
    for ex in examined {
        let Ok(f) = &mut ex.outcome else { continue };
        if f.sample.is_none() {
            continue;
        }
        let key = sample_class(f.class);
        let n = taken.entry(key).or_insert(0);
        *n += 1;
        if *n > SAMPLES || full.contains(&sample_class(f.class)) {
            f.sample = None;
        }
    }
}

fn pointer_of(dotted: &str) -> String {
    format!(
        "/{}",
        dotted
            .replace('~', "~0")
            .replace('/', "~1")
            .replace('.', "/")
    )
}

/// Compares the collection's actual indexes with the target version's.
pub fn index_coverage(contract: &Contract, actual: Option<&[IndexSpec]>) -> IndexFindings {
    let Some(actual) = actual else {
        return IndexFindings::default();
    };
    let want = &contract.target_version().indexes;
    let actual: Vec<&IndexSpec> = actual.iter().filter(|i| !i.key.is_id_only()).collect();
    IndexFindings {
        available: true,
        error: None,
        missing: want
            .iter()
            .filter(|w| !w.key.is_id_only() && !actual.iter().any(|a| a.same_index(w)))
            .map(IndexSpec::to_report_json)
            .collect(),
        unexpected: actual
            .iter()
            .filter(|a| !want.iter().any(|w| w.same_index(a)))
            .map(|a| a.to_report_json())
            .collect(),
    }
}

#[cfg(test)]
mod tests;
