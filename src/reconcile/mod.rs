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

/// Sorts by `_id` and keeps the first occurrence of each (a duplicate `_id` is reported
/// by the structure checks, not counted twice here).
fn prepare(entries: &mut Vec<Entry>) {
    entries.sort_by_key(|e| (e.id, e.ordinal));
    entries.dedup_by_key(|e| e.id);
}

/// Compares current entries with baseline entries.
pub fn compare(current: &mut Vec<Entry>, baseline: &mut Vec<Entry>) -> (Reconciliation, Vec<Diff>) {
    prepare(current);
    prepare(baseline);
    let mut summary = Reconciliation {
        baseline_documents: baseline.len() as u64,
        ..Reconciliation::default()
    };
    let mut diffs = Vec::new();
    let (mut i, mut j) = (0, 0);
    while i < current.len() || j < baseline.len() {
        let c = current.get(i);
        let b = baseline.get(j);
        match (c, b) {
            (Some(c), Some(b)) if c.id == b.id => {
                if c.content != b.content {
                    summary.changed += 1;
                    diffs.push(Diff {
                        kind: DiffKind::Changed,
                        ordinal: c.ordinal,
                    });
                } else if c.ordered != b.ordered {
                    summary.reordered += 1;
                    diffs.push(Diff {
                        kind: DiffKind::Reordered,
                        ordinal: c.ordinal,
                    });
                }
                i += 1;
                j += 1;
            }
            (Some(c), Some(b)) if c.id < b.id => {
                summary.added += 1;
                diffs.push(Diff {
                    kind: DiffKind::Added,
                    ordinal: c.ordinal,
                });
                i += 1;
            }
            (Some(c), None) => {
                summary.added += 1;
                diffs.push(Diff {
                    kind: DiffKind::Added,
                    ordinal: c.ordinal,
                });
                i += 1;
            }
            (_, Some(b)) => {
                summary.missing += 1;
                diffs.push(Diff {
                    kind: DiffKind::Missing,
                    ordinal: b.ordinal,
                });
                j += 1;
            }
            (None, None) => break,
        }
    }
    // Report in scan order: missing documents (baseline order) first, then the rest.
    diffs.sort_by_key(|d| (d.kind != DiffKind::Missing, d.ordinal, d.kind));
    (summary, diffs)
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
        let mut base = vec![
            e(1, 10, 100, 0),
            e(2, 20, 200, 1),
            e(3, 30, 300, 2),
            e(4, 40, 400, 3),
        ];
        let mut cur = vec![
            e(4, 40, 401, 0), // reordered
            e(2, 21, 210, 1), // changed
            e(5, 50, 500, 2), // added
            e(1, 10, 100, 3), // same
            e(5, 99, 990, 4), // duplicate _id: ignored here
        ];
        let (s, d) = compare(&mut cur, &mut base);
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
    fn empty_sides() {
        let (s, d) = compare(&mut Vec::new(), &mut vec![e(1, 1, 1, 0)]);
        assert_eq!((s.missing, d.len()), (1, 1));
        let (s, _) = compare(&mut vec![e(1, 1, 1, 0)], &mut Vec::new());
        assert_eq!(s.added, 1);
    }
}
