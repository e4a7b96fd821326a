//! One collection's scan: its running state, how its records are streamed (or replayed
//! from partial results), folded in source order and finished into its report.

mod finish;
mod fold;
pub(super) mod replay;

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};

use rayon::prelude::*;

use super::doc::{self, DocContext, Examined};
use super::pipeline::{meter, stream_mapped};
use super::{Facts, KeySets, ScanError, ScanOptions};
use crate::contract::{Contract, IndexSpec};
use crate::reconcile;
use crate::report::{CollectionReport, ReferenceFinding, Violation, ViolationSink};
use crate::scan::{HashMap128, HashSet128, PartialWriter};
use crate::source::{CollectionSource, Source, SourceError};
use crate::value::IdArena;

pub use finish::index_coverage;
use fold::settle_samples;

/// What every collection of one scan reads from: the source, the pool, the options, the
/// key sets collected so far and the baseline's fingerprints of this collection.
#[derive(Clone, Copy)]
pub(crate) struct Env<'e> {
    pub source: &'e Source,
    pub pool: &'e rayon::ThreadPool,
    pub opts: &'e ScanOptions,
    pub keys: &'e KeySets,
    pub recon: Option<&'e reconcile::Reconciler>,
}

/// A changed document: its `_id` text, its baseline ordinal, its top-level field hashes.
type ChangedDoc = (String, u32, Option<Vec<(String, u128)>>);
/// The value sets of a collection's fields that other collections reference.
type ExportedKeys = Vec<(String, HashSet128)>;

/// The most documents [`CollectionScan::presize`] makes room for ahead (an estimate
/// could be wrong; beyond this the tables grow as they fill).
const MAX_PRESIZE: usize = 4 << 20;

/// How many documents `cs` holds, judged from its first batch (`records` records in `bytes`
/// bytes) and its size: the estimated count of a live collection, else the file's bytes at
/// the first batch's bytes per record (less for a compressed file, whose size is smaller).
fn expected_documents(cs: &CollectionSource, records: usize, bytes: usize) -> usize {
    let size = usize::try_from(cs.size).unwrap_or(usize::MAX);
    if cs.live().is_some() {
        return size;
    }
    match bytes.checked_div(records) {
        Some(per_record) if per_record > 0 => size / per_record,
        _ => records,
    }
}

/// Per distinct reference of the contract (as `ctx_refs`): the complete key set it is
/// resolved against while the collection is read, or `None` (this collection, or one not
/// read yet: resolved when the collection is finished).
type RefTargets<'k> = [Option<&'k HashSet128>];

/// The running state of one collection's scan.
pub(crate) struct CollectionScan<'a> {
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
    pub(crate) fn new(
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

    /// Reads, records and/or folds the collection's records as `facts` says.
    pub(crate) fn run(
        &mut self,
        env: &Env<'_>,
        sink: &mut dyn ViolationSink,
        facts: &mut Facts<'_>,
    ) -> Result<(), ScanError> {
        if let Some(r) = env.recon {
            self.recon_progress = Some(r.start());
        }
        let resume = crate::source::Resume::default();
        let (keys, recon) = (env.keys, env.recon);
        match facts {
            Facts::Fold => {
                let (reader, _) = env.source.reader_from(self.cs, &resume)?;
                self.stream(env, reader, sink, None, true)
            }
            Facts::Record(w) => {
                let (reader, range) = env.source.reader_from(self.cs, &resume)?;
                w.section(&self.section_meta(range.as_ref()))?;
                self.stream(env, reader, sink, Some(w), false)?;
                Ok(w.section_end()?)
            }
            Facts::Merge(readers) => self.merge(readers, keys, recon, sink),
            Facts::Checkpoint(cp) => {
                let Some((resume, open)) = self.replay_checkpoint(cp, keys, recon, sink)? else {
                    return Ok(());
                };
                let (reader, _) = env.source.reader_from(self.cs, &resume)?;
                let w = cp.writer(resume.skip)?;
                if !open {
                    w.section(&self.section_meta(None))?;
                }
                self.stream(env, reader, sink, Some(w), true)?;
                Ok(w.section_end()?)
            }
        }
    }

    /// Makes room for `expected` documents in the tables that grow with each one, so they
    /// are not rebuilt (and their memory first touched) again and again as they double.
    fn presize(&mut self, expected: usize) {
        let more = expected.min(MAX_PRESIZE).saturating_sub(self.seen);
        self.id_set.reserve(more);
        for u in &mut self.unique {
            u.reserve(more);
        }
        if let Some(ids) = self.ids.as_mut() {
            ids.reserve(more);
        }
    }

    /// The key sets this collection's references resolve against while it is read.
    fn ref_targets<'k>(&self, keys: &'k KeySets) -> Vec<Option<&'k HashSet128>> {
        self.ctx_refs
            .iter()
            .map(|r| {
                (r.collection != self.contract.collection)
                    .then(|| crate::scan::key_set(keys, &r.collection, &r.to))
                    .flatten()
            })
            .collect()
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
            "index_error": self.index_error.as_ref().map(std::string::ToString::to_string),
        })
    }

    /// Streams `reader`'s records through the examiners, then records and/or folds them.
    fn stream(
        &mut self,
        env: &Env<'_>,
        reader: Box<dyn crate::source::RecordReader>,
        sink: &mut dyn ViolationSink,
        mut record: Option<&mut PartialWriter>,
        fold: bool,
    ) -> Result<(), ScanError> {
        let Env {
            source,
            pool,
            opts,
            keys,
            recon,
        } = *env;
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
        let targets = self.ref_targets(keys);
        let map = |batch: &crate::source::Batch| -> (usize, Vec<Examined>) {
            let mut examined: Vec<Examined> = batch
                .records
                .par_iter()
                .map(|rec| ctx.examine(batch.bytes(rec), rec.location, rec.broken.as_deref()))
                .collect();
            settle_samples(&mut examined, &full);
            (batch.data.len(), examined)
        };
        let mut first = true;
        let mut consume = |(bytes, examined): (usize, Vec<Examined>)| -> Result<(), ScanError> {
            if let Some(w) = record.as_mut() {
                w.records(&examined)?;
            }
            if fold {
                if std::mem::take(&mut first) {
                    self.presize(expected_documents(cs, examined.len(), bytes));
                }
                for ex in examined {
                    self.fold(ex, &targets, recon, sink)?;
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
}
