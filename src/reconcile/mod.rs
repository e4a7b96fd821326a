//! Reconciliation with a baseline (the state before the change), by `_id`: documents
//! `missing` from the current data, `added` since, `changed` in content, and `reordered`
//! (same content, different field order: informational).
//!
//! Only fingerprints are kept: per document the `_id` key hash and the order-insensitive
//! and order-sensitive 128-bit content hashes, plus its position in the scan so findings can
//! name it. Both sides are sorted by `_id` hash and merged.

mod baseline;
pub mod snapshot;

pub use baseline::Baseline;
pub(crate) use baseline::BaselineCollection;

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

/// The baseline side, sorted by `_id` hash, compared document by document while the
/// current data streams. Lookups are read-only and may run on any thread; `observe`
/// runs in scan order.
#[derive(Debug, Clone)]
pub struct Reconciler {
    /// One per distinct baseline `_id`, sorted by it: 40 bytes a document.
    base: Vec<Base>,
    /// Where the documents whose `_id` hash starts with each `bits`-bit prefix begin in
    /// `base` (and, last, its length): about 2 bytes a document.
    starts: Vec<u32>,
    bits: u32,
    baseline_ordinals: usize,
}

/// The bucket of a hash whose top 64 bits are `top`.
fn bucket(top: u64, bits: u32) -> usize {
    if bits == 0 {
        0
    } else {
        (top >> (64 - bits)) as usize
    }
}

/// The mutable side of a reconciliation, advanced in scan order.
pub struct Progress {
    /// Indexed by baseline ordinal: was this baseline document seen in the current data?
    seen: Vec<bool>,
    pub summary: Reconciliation,
}

/// A baseline document as the comparison keeps it. The content hashes are cut to 64 bits:
/// each is only ever compared with the one current document of the same `_id`, where a
/// 2^-64 chance of missing a change is negligible; `_id`s keep all 128 bits, because they
/// are matched among all documents.
#[derive(Debug, Clone, Copy)]
struct Base {
    id: [u64; 2],
    content: u64,
    ordered: u64,
    ordinal: u32,
}

fn split(h: u128) -> [u64; 2] {
    [(h >> 64) as u64, h as u64]
}

impl Reconciler {
    /// Indexes the baseline; of several baseline documents with one `_id` the first counts.
    pub fn new(entries: &[Entry]) -> Reconciler {
        let mut base: Vec<Base> = entries
            .iter()
            .map(|e| Base {
                id: split(e.id),
                content: e.content as u64,
                ordered: e.ordered as u64,
                ordinal: e.ordinal,
            })
            .collect();
        let max_ordinal = entries
            .iter()
            .map(|e| e.ordinal as usize + 1)
            .max()
            .unwrap_or(0);
        base.sort_unstable_by_key(|b| (b.id, b.ordinal));
        base.dedup_by_key(|b| b.id);
        base.shrink_to_fit();
        // About two documents per bucket.
        let bits = (usize::BITS - (base.len() / 2).leading_zeros()).min(32);
        let mut starts = vec![0u32; (1usize << bits) + 1];
        for x in &base {
            starts[bucket(x.id[0], bits) + 1] += 1;
        }
        for i in 1..starts.len() {
            starts[i] += starts[i - 1];
        }
        Reconciler {
            base,
            starts,
            bits,
            baseline_ordinals: max_ordinal,
        }
    }

    /// The baseline document with this `_id` hash: the hashes are uniform, so their top
    /// bits index a table of where each bucket of (about two) documents starts.
    fn find(&self, id: u128) -> Option<&Base> {
        let key = split(id);
        let b = bucket(key[0], self.bits);
        let (lo, hi) = (self.starts[b] as usize, self.starts[b + 1] as usize);
        let window = &self.base[lo..hi];
        window.iter().find(|x| x.id == key)
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
        self.find(id).is_some_and(|b| b.content != content as u64)
    }

    /// Is this document in the baseline with the same content (its baseline image)?
    pub fn equals_baseline(&self, id: u128, content: u128) -> bool {
        self.find(id).is_some_and(|b| b.content == content as u64)
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
        let Some(b) = self.find(id).copied() else {
            p.summary.added += 1;
            return (Some(DiffKind::Added), None);
        };
        if let Some(s) = p.seen.get_mut(b.ordinal as usize) {
            *s = true;
        }
        let kind = if b.content != content as u64 {
            p.summary.changed += 1;
            Some(DiffKind::Changed)
        } else if b.ordered != ordered as u64 {
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
            .iter()
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
    node_field_hashes::<jsonschema::json::SerdeJson>(&doc)
}

/// [`field_hashes`] of a node of any representation (a decoded value's, or the in-place
/// view's: the same hashes).
pub fn node_field_hashes<'a, J: jsonschema::json::Json>(doc: &J::Node<'a>) -> Vec<(String, u128)> {
    use jsonschema::json::{Node as _, Object as _};
    let mut out: Vec<(String, u128)> = doc
        .as_object()
        .map(|m| {
            m.members()
                .map(|(k, v)| {
                    let content = crate::value::node_fingerprint::<J>(&v).content;
                    (k.as_ref().to_owned(), content)
                })
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

#[cfg(test)]
mod find_tests {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        /// The galloping search finds exactly what a map would, for any ids (uniform or
        /// not, with repeats), and the first ordinal of a repeated `_id` counts.
        #[test]
        fn finds_what_a_map_finds(
            ids in proptest::collection::vec(prop_oneof![any::<u128>(), 0u128..8, Just(u128::MAX)], 0..300),
            probes in proptest::collection::vec(any::<u128>(), 0..50),
        ) {
            let entries: Vec<Entry> = ids
                .iter()
                .enumerate()
                .map(|(i, &id)| Entry { id, content: id ^ 1, ordered: id ^ 2, ordinal: i as u32 })
                .collect();
            let r = Reconciler::new(&entries);
            let mut first = std::collections::HashMap::new();
            for e in &entries {
                first.entry(e.id).or_insert(e.ordinal);
            }
            for id in ids.iter().chain(&probes).chain([&0, &u128::MAX]) {
                prop_assert_eq!(r.find(*id).map(|b| b.ordinal), first.get(id).copied());
            }
            prop_assert_eq!(r.start().summary.baseline_documents, first.len() as u64);
        }
    }
}
