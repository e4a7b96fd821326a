//! Reconciliation with a baseline (the state before the change), by `_id`: documents
//! `missing` from the current data, `added` since, `changed` in content, and `reordered`
//! (same content, different field order: informational).
//!
//! Only fingerprints are kept: per document the `_id` key hash and the order-insensitive
//! and order-sensitive 128-bit content hashes, plus its position in the scan so findings can
//! name it. Both sides are sorted by `_id` hash and merged.

pub mod snapshot;

use crate::report::Reconciliation;

/// One document's fingerprints. `ordinal` is its position in its own scan.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Entry {
    pub id: u128,
    pub content: u128,
    pub ordered: u128,
    pub ordinal: u32,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum DiffKind {
    Missing,
    Added,
    Changed,
    Reordered,
}

impl DiffKind {
    pub fn as_str(self) -> &'static str {
        match self {
            DiffKind::Missing => "missing",
            DiffKind::Added => "added",
            DiffKind::Changed => "changed",
            DiffKind::Reordered => "reordered",
        }
    }
}

/// A difference: for `Missing` the ordinal is the baseline document's, otherwise the
/// current document's.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Diff {
    pub kind: DiffKind,
    pub ordinal: u32,
}

/// The baseline side, indexed by `_id` hash, compared document by document while the
/// current data streams. Lookups are read-only and may run on any thread; `observe`
/// runs in scan order.
pub struct Reconciler {
    base: crate::scan::HashMap128<Base>,
    baseline_ordinals: usize,
}

/// The mutable side of a reconciliation, advanced in scan order.
pub struct Progress {
    /// Indexed by baseline ordinal: was this baseline document seen in the current data?
    seen: Vec<bool>,
    pub summary: Reconciliation,
}

#[derive(Debug, Clone, Copy)]
struct Base {
    content: u128,
    ordered: u128,
    ordinal: u32,
}

impl Reconciler {
    /// Indexes the baseline; of several baseline documents with one `_id` the first counts.
    pub fn new(entries: &[Entry]) -> Reconciler {
        let mut base =
            crate::scan::HashMap128::with_capacity_and_hasher(entries.len(), Default::default());
        let mut max_ordinal = 0;
        for e in entries {
            max_ordinal = max_ordinal.max(e.ordinal as usize + 1);
            base.entry(e.id).or_insert(Base {
                content: e.content,
                ordered: e.ordered,
                ordinal: e.ordinal,
            });
        }
        Reconciler {
            base,
            baseline_ordinals: max_ordinal,
        }
    }

    /// A fresh progress for one pass over the current data.
    pub fn start(&self) -> Progress {
        Progress {
            seen: vec![false; self.baseline_ordinals],
            summary: Reconciliation {
                baseline_documents: self.base.len() as u64,
                ..Reconciliation::default()
            },
        }
    }

    /// Would this document be `changed`? (Read-only; used to decide whether to collect
    /// its field hashes on a worker thread.)
    pub fn is_changed(&self, id: u128, content: u128) -> bool {
        self.base.get(&id).is_some_and(|b| b.content != content)
    }

    /// Classifies one current document (the first with its `_id`; callers skip
    /// duplicates). Returns the kind and, when it is in the baseline, its baseline ordinal.
    pub fn observe(
        &self,
        p: &mut Progress,
        id: u128,
        content: u128,
        ordered: u128,
    ) -> (Option<DiffKind>, Option<u32>) {
        let Some(b) = self.base.get(&id).copied() else {
            p.summary.added += 1;
            return (Some(DiffKind::Added), None);
        };
        if let Some(s) = p.seen.get_mut(b.ordinal as usize) {
            *s = true;
        }
        let kind = if b.content != content {
            p.summary.changed += 1;
            Some(DiffKind::Changed)
        } else if b.ordered != ordered {
            p.summary.reordered += 1;
            Some(DiffKind::Reordered)
        } else {
            None
        };
        (kind, Some(b.ordinal))
    }

    /// Baseline ordinals never seen in the current data, in baseline order; counts them.
    pub fn finish_missing(&self, p: &mut Progress) -> Vec<u32> {
        let mut missing: Vec<u32> = self
            .base
            .values()
            .filter(|b| !p.seen.get(b.ordinal as usize).copied().unwrap_or(false))
            .map(|b| b.ordinal)
            .collect();
        missing.sort_unstable();
        p.summary.missing = missing.len() as u64;
        missing
    }
}

/// Per top-level field of a document: its name and the order-insensitive hash of its
/// value, sorted by name.
pub fn field_hashes(doc: &serde_json::Value) -> Vec<(String, u128)> {
    let mut out: Vec<(String, u128)> = doc
        .as_object()
        .map(|m| {
            m.iter()
                .map(|(k, v)| (k.clone(), crate::value::fingerprint(v).content))
                .collect()
        })
        .unwrap_or_default();
    out.sort();
    out
}

/// The top-level fields whose values differ, or that only one side has, sorted.
pub fn differing_fields(a: &[(String, u128)], b: &[(String, u128)]) -> Vec<String> {
    let mut out = Vec::new();
    let (mut i, mut j) = (0, 0);
    while i < a.len() || j < b.len() {
        match (a.get(i), b.get(j)) {
            (Some(x), Some(y)) if x.0 == y.0 => {
                if x.1 != y.1 {
                    out.push(x.0.clone());
                }
                i += 1;
                j += 1;
            }
            (Some(x), Some(y)) if x.0 < y.0 => {
                out.push(x.0.clone());
                i += 1;
            }
            (Some(x), None) => {
                out.push(x.0.clone());
                i += 1;
            }
            (_, Some(y)) => {
                out.push(y.0.clone());
                j += 1;
            }
            (None, None) => break,
        }
    }
    out
}

/// Compares current entries with baseline entries in one go (what the scan does
/// incrementally). Duplicate current `_id`s count once.
pub fn compare(current: &[Entry], baseline: &[Entry]) -> (Reconciliation, Vec<Diff>) {
    let r = Reconciler::new(baseline);
    let mut p = r.start();
    let mut seen = std::collections::HashSet::new();
    let mut diffs = Vec::new();
    for c in current {
        if !seen.insert(c.id) {
            continue;
        }
        if let (Some(kind), _) = r.observe(&mut p, c.id, c.content, c.ordered) {
            diffs.push(Diff {
                kind,
                ordinal: c.ordinal,
            });
        }
    }
    let mut all: Vec<Diff> = r
        .finish_missing(&mut p)
        .into_iter()
        .map(|ordinal| Diff {
            kind: DiffKind::Missing,
            ordinal,
        })
        .collect();
    all.extend(diffs);
    (p.summary, all)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn e(id: u128, content: u128, ordered: u128, ordinal: u32) -> Entry {
        Entry {
            id,
            content,
            ordered,
            ordinal,
        }
    }

    #[test]
    fn classifies_every_kind() {
        let base = vec![
            e(1, 10, 100, 0),
            e(2, 20, 200, 1),
            e(3, 30, 300, 2),
            e(4, 40, 400, 3),
        ];
        let cur = vec![
            e(4, 40, 401, 0), // reordered
            e(2, 21, 210, 1), // changed
            e(5, 50, 500, 2), // added
            e(1, 10, 100, 3), // same
            e(5, 99, 990, 4), // duplicate _id: ignored here
        ];
        let (s, d) = compare(&cur, &base);
        assert_eq!(
            (
                s.baseline_documents,
                s.missing,
                s.added,
                s.changed,
                s.reordered
            ),
            (4, 1, 1, 1, 1)
        );
        let kinds: Vec<(DiffKind, u32)> = d.iter().map(|x| (x.kind, x.ordinal)).collect();
        assert_eq!(
            kinds,
            [
                (DiffKind::Missing, 2),
                (DiffKind::Reordered, 0),
                (DiffKind::Changed, 1),
                (DiffKind::Added, 2)
            ]
        );
    }

    #[test]
    fn field_differences() {
        let a = field_hashes(&serde_json::json!({"b": 1, "a": {"x": 1, "y": 2}, "c": 3}));
        let b = field_hashes(&serde_json::json!({"a": {"y": 2, "x": 1}, "b": 2, "d": 4}));
        assert_eq!(differing_fields(&a, &b), ["b", "c", "d"]);
    }

    #[test]
    fn empty_sides() {
        let (s, d) = compare(&[], &[e(1, 1, 1, 0)]);
        assert_eq!((s.missing, d.len()), (1, 1));
        let (s, _) = compare(&[e(1, 1, 1, 0)], &[]);
        assert_eq!(s.added, 1);
    }
}
