//! Partitions (`check --partition i/N`) and resumed reads (`check --checkpoint`).
//!
//! A partition is one of N contiguous ranges of a collection, in the order a scan reads
//! it, so that the partitions' results laid end to end are exactly a single scan's:
//! - dumps and exports: the records that *start* in the i-th of N equal byte ranges of
//!   the (uncompressed) stream. Every partition reads the stream from the beginning
//!   (splitting BSON or JSON at an arbitrary byte is not safe) but only examines its own
//!   records, and stops reading at the end of its range;
//! - live sources: the i-th of N `_id` ranges, split at the `_id`s found at equal
//!   positions of the `_id` order, compared in MongoDB's cross-type order.
//!
//! Each partition records its [`Range`], so that a merge can prove the partitions tile
//! the data with neither gap nor overlap.

use std::fmt;
use std::io::Read;
use std::path::Path;

use serde::{Deserialize, Serialize};

use super::{io_err, Batch, Encoding, Location, RecordReader, SourceError};

/// `--partition i/N`: the i-th (0-based) of N partitions.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Partition {
    pub index: u32,
    pub count: u32,
}

impl Partition {
    /// At most this many partitions.
    pub const MAX: u32 = 10_000;

    pub fn parse(s: &str) -> Result<Partition, String> {
        let bad = || format!("--partition {s:?}: expected i/N with 0 <= i < N, e.g. 0/4");
        let (i, n) = s.split_once('/').ok_or_else(bad)?;
        let index: u32 = i.trim().parse().map_err(|_| bad())?;
        let count: u32 = n.trim().parse().map_err(|_| bad())?;
        if count == 0 || index >= count {
            return Err(bad());
        }
        if count > Partition::MAX {
            return Err(format!(
                "--partition {s:?}: at most {} partitions",
                Partition::MAX
            ));
        }
        Ok(Partition { index, count })
    }

    /// The `[from, to)` share of `0..total` (the last one runs to the end).
    pub fn share(&self, total: u64) -> (u64, Option<u64>) {
        let at = |k: u32| (total as u128 * k as u128 / self.count as u128) as u64;
        let to = (self.index + 1 < self.count).then(|| at(self.index + 1));
        (at(self.index), to)
    }
}

impl fmt::Display for Partition {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.index, self.count)
    }
}

/// One end of an `_id` range, in MongoDB's order over all BSON types.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Bound {
    /// Before every `_id`.
    Min,
    /// At this `_id` (relaxed Extended JSON): included as a start, excluded as an end.
    At(serde_json::Value),
    /// After every `_id`.
    Max,
}

/// What one partition covers, as recorded for the merge.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "scheme", rename_all = "snake_case")]
pub enum Range {
    /// Records starting at byte offsets `from..to` of an uncompressed stream whose
    /// nominal size is `total`; `file_len` identifies the file.
    Bytes {
        total: u64,
        file_len: u64,
        from: u64,
        to: Option<u64>,
    },
    /// Documents with `from <= _id < to`.
    Ids { from: Bound, to: Bound },
}

impl Range {
    /// Do `self` (partition i) and `next` (partition i+1) meet with neither gap nor overlap?
    pub fn meets(&self, next: &Range) -> bool {
        match (self, next) {
            (
                Range::Bytes {
                    total: t1,
                    file_len: l1,
                    to: Some(end),
                    ..
                },
                Range::Bytes {
                    total: t2,
                    file_len: l2,
                    from,
                    ..
                },
            ) => t1 == t2 && l1 == l2 && end == from,
            (Range::Ids { to, .. }, Range::Ids { from, .. }) => to == from,
            _ => false,
        }
    }

    /// Is this range open at the start (the first partition)?
    pub fn is_first(&self) -> bool {
        matches!(
            self,
            Range::Bytes { from: 0, .. }
                | Range::Ids {
                    from: Bound::Min,
                    ..
                }
        )
    }

    /// Is this range open at the end (the last partition)?
    pub fn is_last(&self) -> bool {
        matches!(
            self,
            Range::Bytes { to: None, .. } | Range::Ids { to: Bound::Max, .. }
        )
    }
}

impl fmt::Display for Range {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Range::Bytes { from, to, .. } => match to {
                Some(to) => write!(f, "bytes {from}..{to}"),
                None => write!(f, "bytes {from}..end"),
            },
            Range::Ids { from, to } => {
                let b = |b: &Bound| match b {
                    Bound::Min => "min".to_string(),
                    Bound::Max => "max".to_string(),
                    Bound::At(v) => v.to_string(),
                };
                write!(f, "_id {}..{}", b(from), b(to))
            }
        }
    }
}

/// The nominal uncompressed size of a file, for splitting it into byte ranges. For
/// gzip it is the size in the trailer (kept modulo 2^32, so raised by 4 GiB steps to at
/// least the compressed size); it only balances the partitions, it never decides which
/// records exist.
pub(super) fn stream_size(path: &Path) -> Result<(u64, u64), SourceError> {
    let mut f = std::fs::File::open(path).map_err(|e| io_err(path, e))?;
    let len = f.metadata().map_err(|e| io_err(path, e))?.len();
    let mut magic = [0u8; 2];
    let gzip = len >= 18 && f.read_exact(&mut magic).is_ok() && magic == [0x1f, 0x8b];
    if !gzip {
        return Ok((len, len));
    }
    use std::io::Seek;
    let mut tail = [0u8; 4];
    f.seek(std::io::SeekFrom::End(-4))
        .and_then(|_| f.read_exact(&mut tail))
        .map_err(|e| io_err(path, e))?;
    let mut size = u32::from_le_bytes(tail) as u64;
    while size < len {
        size += 1 << 32;
    }
    Ok((size, len))
}

/// The record's byte offset in its stream (None for live cursors).
fn offset(l: &Location) -> Option<u64> {
    match *l {
        Location::Offset(o) => Some(o),
        Location::Line { offset, .. } | Location::Element { offset, .. } => Some(offset),
        Location::Live { .. } => None,
    }
}

/// Passes on only the records that start in `from..to`, and stops after `to`.
pub(super) struct ByteRange {
    pub inner: Box<dyn RecordReader>,
    pub from: u64,
    pub to: Option<u64>,
    pub done: bool,
}

impl RecordReader for ByteRange {
    fn encoding(&self) -> Encoding {
        self.inner.encoding()
    }

    fn next_batch(&mut self, max_records: usize) -> Result<Option<Batch>, SourceError> {
        while !self.done {
            let Some(mut batch) = self.inner.next_batch(max_records)? else {
                return Ok(None);
            };
            let (from, to) = (self.from, self.to);
            let mut past = false;
            batch.records.retain(|r| {
                let o = offset(&r.location).unwrap_or(0);
                past |= to.is_some_and(|t| o >= t);
                o >= from && to.is_none_or(|t| o < t)
            });
            self.done = past;
            if !batch.records.is_empty() {
                return Ok(Some(batch));
            }
        }
        Ok(None)
    }

    fn position(&self) -> u64 {
        self.inner.position()
    }
}

/// Drops the first `skip` records (already examined before an interruption).
pub(super) struct Skip {
    pub inner: Box<dyn RecordReader>,
    pub skip: u64,
}

impl RecordReader for Skip {
    fn encoding(&self) -> Encoding {
        self.inner.encoding()
    }

    fn next_batch(&mut self, max_records: usize) -> Result<Option<Batch>, SourceError> {
        loop {
            let Some(mut batch) = self.inner.next_batch(max_records)? else {
                return Ok(None);
            };
            if self.skip == 0 {
                return Ok(Some(batch));
            }
            let drop = (self.skip as usize).min(batch.records.len());
            batch.records.drain(..drop);
            self.skip -= drop as u64;
            if !batch.records.is_empty() {
                return Ok(Some(batch));
            }
        }
    }

    fn position(&self) -> u64 {
        self.inner.position()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_and_shares() {
        assert_eq!(
            Partition::parse("1/4").unwrap(),
            Partition { index: 1, count: 4 }
        );
        for bad in ["4/4", "x/2", "1", "0/0", "-1/2", "1/2/3"] {
            assert!(Partition::parse(bad).is_err(), "{bad}");
        }
        let shares: Vec<_> = (0..3)
            .map(|i| Partition { index: i, count: 3 }.share(10))
            .collect();
        assert_eq!(shares, [(0, Some(3)), (3, Some(6)), (6, None)]);
    }

    #[test]
    fn ranges_meet_only_end_to_start() {
        let b = |from, to| Range::Bytes {
            total: 10,
            file_len: 10,
            from,
            to,
        };
        assert!(b(0, Some(5)).meets(&b(5, None)));
        assert!(!b(0, Some(5)).meets(&b(6, None)));
        assert!(!b(0, None).meets(&b(5, None)));
        let i = |from, to| Range::Ids { from, to };
        let at = Bound::At(serde_json::json!(7));
        assert!(i(Bound::Min, at.clone()).meets(&i(at.clone(), Bound::Max)));
        assert!(!i(Bound::Min, at).meets(&i(Bound::Max, Bound::Max)));
    }
}
