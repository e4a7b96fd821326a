//! Finishing a collection's scan: missing and changed documents against the baseline,
//! deferred references, duplicate groups, index coverage and the top schema errors.

use std::collections::{HashMap, HashSet};

use super::{CollectionScan, ExportedKeys, KeySets};
use crate::contract::{Contract, IndexSpec};
use crate::reconcile::{self, Baseline};
use crate::report::{CollectionReport, DuplicateFinding, ErrorKind, IndexFindings, ViolationSink};
use crate::scan::{incomplete, HashSet128, ScanError};
use crate::source::Source;
use crate::value::IdArena;

impl CollectionScan<'_> {
    /// Missing documents, and the changed documents with the top-level fields that
    /// differ when the baseline's documents are available.
    pub(crate) fn finish_reconciliation(
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
    pub(crate) fn finish(
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
                crate::scan::key_set(keys, &r.collection, &r.to).unwrap_or(&empty)
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

pub(super) fn pointer_of(dotted: &str) -> String {
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
