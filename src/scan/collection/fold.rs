//! Folding one examined document into its collection's results, in source order:
//! classes and schema errors, structure, reconciliation, unique keys and references.

use std::cell::OnceCell;
use std::collections::{HashMap, HashSet};

use super::finish::pointer_of;
use super::{CollectionScan, RefTargets};
use crate::reconcile::{self, DiffKind};
use crate::report::ViolationSink;
use crate::scan::doc::{Class, DocFacts, Examined, MAX_BSON_BYTES, MAX_NESTING};
use crate::scan::{ScanError, SAMPLES};
use crate::source::Location;
use crate::value::{generalise_pointer, StoredId};

/// The document being folded: its facts, where it was read, its ordinal, and its `_id`
/// text, formatted on first use (only rows need it).
struct Folded<'f> {
    facts: &'f DocFacts,
    location: Location,
    ordinal: u32,
    id: OnceCell<String>,
}

impl Folded<'_> {
    fn id(&self) -> &str {
        self.id.get_or_init(|| {
            self.facts
                .id
                .as_ref()
                .map(StoredId::text)
                .unwrap_or_default()
        })
    }
}

impl CollectionScan<'_> {
    /// Folds one examined document into the collection's results, in source order.
    pub(super) fn fold(
        &mut self,
        ex: Examined,
        targets: &RefTargets<'_>,
        recon: Option<&reconcile::Reconciler>,
        sink: &mut dyn ViolationSink,
    ) -> Result<(), ScanError> {
        let facts = match ex.outcome {
            Err(message) => {
                self.report.unreadable += 1;
                let file = self.cs.file.display();
                let message = format!("{file}: {}: {message}", ex.location);
                return Ok(sink.violation(&self.row("", "unreadable", None, "", "", message))?);
            }
            Ok(f) => f,
        };
        let doc = Folded {
            facts: &facts,
            location: ex.location,
            ordinal: self.seen as u32,
            id: OnceCell::new(),
        };
        self.seen += 1;
        if let Some(ids) = self.ids.as_mut() {
            ids.push_stored(facts.id.as_ref());
        }
        self.report.documents += 1;
        self.keep_sample(&facts);
        self.fold_class(&doc, sink)?;
        self.fold_id(&doc, recon, sink)?;
        self.fold_limits(&doc, sink)?;
        self.fold_unique_keys(&doc, sink)?;
        self.fold_references(&doc, targets, sink)?;
        for (set, hashes) in self.exported.iter_mut().zip(&facts.exported) {
            set.extend(hashes.iter().copied());
        }
        Ok(())
    }

    /// Keeps the first [`SAMPLES`] non-valid documents of each class.
    fn keep_sample(&mut self, facts: &DocFacts) {
        let Some(sample) = &facts.sample else { return };
        let key = facts.class.sample_key();
        let samples = self.report.samples.entry(key.clone()).or_default();
        if samples.len() < SAMPLES {
            let Some(doc) = sample.value() else { return };
            samples.push(doc.into_owned());
            if samples.len() == SAMPLES {
                if let Ok(mut full) = self.full_samples.lock() {
                    full.insert(key);
                }
            }
        }
    }

    /// Valid, another version, or invalid with its schema errors.
    fn fold_class(&mut self, doc: &Folded, sink: &mut dyn ViolationSink) -> Result<(), ScanError> {
        let target = self.contract.target;
        match doc.facts.class {
            Class::Valid => self.report.classes.valid += 1,
            Class::OtherVersion(v) => {
                *self
                    .report
                    .classes
                    .other_version
                    .entry(v.to_string())
                    .or_insert(0) += 1;
                let msg = format!("fails target version {target}, passes version {v}");
                sink.violation(&self.row(doc.id(), "other_version", Some(v), "", "", msg))?;
            }
            Class::Invalid => {
                self.report.classes.invalid += 1;
                for e in &doc.facts.errors {
                    let key = (e.keyword.clone(), generalise_pointer(&e.pointer));
                    let entry = self.errors.entry(key).or_insert((0, Vec::new()));
                    entry.0 += 1;
                    if entry.1.len() < 3 && doc.facts.id.is_some() {
                        entry.1.push(doc.id().to_string());
                    }
                    sink.violation(&self.row(
                        doc.id(),
                        "invalid",
                        Some(target),
                        &e.pointer,
                        &e.keyword,
                        e.message.clone(),
                    ))?;
                }
            }
        }
        Ok(())
    }

    /// The `_id`: missing, seen before, and (with a baseline) added, changed or reordered.
    fn fold_id(
        &mut self,
        doc: &Folded,
        recon: Option<&reconcile::Reconciler>,
        sink: &mut dyn ViolationSink,
    ) -> Result<(), ScanError> {
        let Some(k) = doc.facts.id_key else {
            self.report.structure.missing_id += 1;
            let msg = format!("document at {} has no _id", doc.location);
            return Ok(sink.violation(&self.row("", "missing_id", None, "/_id", "", msg))?);
        };
        let first = self.id_set.insert(k);
        if let (true, Some(r), Some(p)) = (first, recon, self.recon_progress.as_mut()) {
            let fp = doc.facts.fingerprint;
            match r.observe(p, k, fp.content, fp.ordered) {
                (Some(DiffKind::Changed), Some(base_ordinal)) => {
                    let fields = doc.facts.fields.clone();
                    self.changed
                        .push((doc.id().to_string(), base_ordinal, fields));
                }
                (Some(kind), _) => {
                    let msg = match kind {
                        DiffKind::Added => "in the source, not in the baseline",
                        _ => "same content as the baseline, fields in another order",
                    };
                    let row = self.row(doc.id(), kind.as_str(), None, "", "", msg.to_string());
                    sink.violation(&row)?;
                }
                (None, _) => {}
            }
        }
        if !first {
            self.report.structure.duplicate_id += 1;
            let msg = format!("_id seen before (document at {})", doc.location);
            sink.violation(&self.row(doc.id(), "duplicate_id", None, "/_id", "", msg))?;
        }
        Ok(())
    }

    /// MongoDB's nesting and size limits.
    fn fold_limits(&mut self, doc: &Folded, sink: &mut dyn ViolationSink) -> Result<(), ScanError> {
        let depth = doc.facts.depth;
        if depth > MAX_NESTING {
            self.report.structure.too_deep += 1;
            let msg = format!("nested {depth} levels deep; MongoDB allows {MAX_NESTING}");
            sink.violation(&self.row(doc.id(), "too_deep", None, "", "", msg))?;
        }
        if doc.facts.oversize {
            self.report.structure.oversize += 1;
            let msg = format!("larger than MongoDB's {MAX_BSON_BYTES}-byte document limit");
            sink.violation(&self.row(doc.id(), "oversize", None, "", "", msg))?;
        }
        Ok(())
    }

    /// Unique keys, checked on the data even when the index is missing. Each document is
    /// reported once per index, however many of its keys collide; the first document of a
    /// group is reported when the second one arrives.
    fn fold_unique_keys(
        &mut self,
        doc: &Folded,
        sink: &mut dyn ViolationSink,
    ) -> Result<(), ScanError> {
        for (ui, hashes) in doc.facts.unique.iter().enumerate() {
            for &h in hashes {
                let entry = self.unique[ui].entry(h).or_insert((doc.ordinal, 0));
                entry.1 = entry.1.saturating_add(1);
                let (first, count) = *entry;
                if count < 2 {
                    continue;
                }
                let label = &self.unique_labels[ui];
                let finding = format!("duplicate:{label}");
                let msg = format!("same {label} as another document (unique index)");
                if self.unique_reported[ui].insert(first) {
                    let first_id = self
                        .ids
                        .as_ref()
                        .map(|a| a.get(first as usize))
                        .unwrap_or_default();
                    sink.violation(&self.row(&first_id, &finding, None, "", "", msg.clone()))?;
                }
                if self.unique_reported[ui].insert(doc.ordinal) {
                    sink.violation(&self.row(doc.id(), &finding, None, "", "", msg))?;
                }
            }
        }
        Ok(())
    }

    /// References into collections already read are resolved now; the others (this
    /// collection, or a later one in a cycle) when the collection is finished.
    fn fold_references(
        &mut self,
        doc: &Folded,
        targets: &RefTargets<'_>,
        sink: &mut dyn ViolationSink,
    ) -> Result<(), ScanError> {
        for (ri, hashes) in &doc.facts.refs {
            let r = &self.ctx_refs[*ri];
            match targets.get(*ri).copied().flatten() {
                Some(set) => {
                    if hashes.iter().all(|h| set.contains(h)) {
                        continue;
                    }
                    let finding = &mut self.report.references[*ri];
                    if !finding.checked {
                        // Perhaps in a record that could not be read: not a finding.
                        *finding.orphans_unverified.get_or_insert(0) += 1;
                        continue;
                    }
                    finding.orphans += 1;
                    let msg = format!("{} not found in {}.{}", r.field, r.collection, r.to);
                    let finding = format!("orphan:{}", r.field);
                    let path = pointer_of(&r.field);
                    sink.violation(&self.row(doc.id(), &finding, None, &path, "", msg))?;
                }
                None if self.absent.contains(&r.collection) => {}
                None => self.deferred.push((*ri, doc.ordinal, hashes.clone())),
            }
        }
        Ok(())
    }
}

/// Drops, on the examining thread, the samples the fold cannot keep: beyond the first
/// [`SAMPLES`] of a class in this batch, and every one of a class the fold already has
/// [`SAMPLES`] of. Those come from documents earlier in the source than any of this
/// batch, so which samples the report keeps does not change. The others are decoded
/// here, off the fold's thread.
pub(super) fn settle_samples(examined: &mut [Examined], full: &std::sync::Mutex<HashSet<String>>) {
    let full = full.lock().map(|f| f.clone()).unwrap_or_default();
    let mut taken: HashMap<String, usize> = HashMap::new();
    for ex in examined {
        let Ok(f) = &mut ex.outcome else { continue };
        if f.sample.is_none() {
            continue;
        }
        let key = f.class.sample_key();
        let n = taken.entry(key).or_insert(0);
        *n += 1;
        if *n > SAMPLES || full.contains(&f.class.sample_key()) {
            f.sample = None;
        } else if let Some(s) = &mut f.sample {
            s.settle();
        }
    }
}
