//! Splits a stream of concatenated BSON documents (a mongodump `.bson` file) into
//! records, recovering after corrupt length prefixes instead of giving up.

use std::io::Read;

#[cfg(test)]
use super::BATCH_RECORDS;
use super::{Batch, Encoding, Location, Record, RecordReader, SourceError, BATCH_BYTES};

/// Records larger than this are treated as a corrupt length prefix. Documents over
/// MongoDB's 16 MiB limit up to this size are still read (and reported as oversize).
pub const MAX_RECORD_BYTES: usize = 64 << 20;

/// Smallest valid BSON document: length prefix plus the terminating NUL.
const MIN_RECORD_BYTES: usize = 5;

/// Reads records from any byte stream; `position` reports the consumed input bytes
/// through a shared counter so gzip streams report compressed progress.
pub struct BsonReader {
    input: Box<dyn Read + Send>,
    counter: Option<std::sync::Arc<std::sync::atomic::AtomicU64>>,
    /// Unconsumed bytes; `buf[pos..]` starts at stream offset `offset`.
    buf: Vec<u8>,
    pos: usize,
    offset: u64,
    eof: bool,
    path: std::path::PathBuf,
}

impl BsonReader {
    pub fn new(
        input: Box<dyn Read + Send>,
        counter: Option<std::sync::Arc<std::sync::atomic::AtomicU64>>,
        path: std::path::PathBuf,
    ) -> Self {
        BsonReader {
            input,
            counter,
            buf: Vec::with_capacity(BATCH_BYTES * 2),
            pos: 0,
            offset: 0,
            eof: false,
            path,
        }
    }

    fn available(&self) -> usize {
        self.buf.len() - self.pos
    }

    /// Makes at least `n` bytes available unless the stream ends first. Reads straight into
    /// the buffer (at least 256 KiB at a time), so a large `n` costs no scratch allocation.
    fn fill(&mut self, n: usize) -> Result<(), SourceError> {
        if self.available() >= n || self.eof {
            return Ok(());
        }
        if self.pos > 0 {
            self.buf.drain(..self.pos);
            self.pos = 0;
        }
        let want = (n - self.buf.len()).max(256 << 10);
        let got = (&mut self.input)
            .take(want as u64)
            .read_to_end(&mut self.buf)
            .map_err(|e| super::io_err(&self.path, format!("read failed: {e}")))?;
        if got < want {
            self.eof = true;
        }
        Ok(())
    }

    fn consume(&mut self, n: usize) {
        self.pos += n;
        self.offset += n as u64;
    }

    fn len_at(&self, i: usize) -> Option<usize> {
        let b = self.buf.get(self.pos + i..self.pos + i + 4)?;
        let l = i32::from_le_bytes([b[0], b[1], b[2], b[3]]);
        usize::try_from(l).ok()
    }

    /// Is there a plausible document starting `i` bytes ahead? Used only to resync
    /// after corruption, so it may read ahead. Returns its length.
    fn plausible_at(&mut self, i: usize) -> Result<Option<usize>, SourceError> {
        self.fill(i + MIN_RECORD_BYTES)?;
        let Some(l) = self.len_at(i) else {
            return Ok(None);
        };
        if !(MIN_RECORD_BYTES..=MAX_RECORD_BYTES).contains(&l) {
            return Ok(None);
        }
        let Some(&first_type) = self.buf.get(self.pos + i + 4) else {
            return Ok(None);
        };
        if !(first_type == 0 && l == 5
            || (1..=0x13).contains(&first_type)
            || first_type == 0x7f
            || first_type == 0xff)
        {
            return Ok(None);
        }
        self.fill(i + l)?;
        let Some(bytes) = self.buf.get(self.pos + i..self.pos + i + l) else {
            return Ok(None);
        };
        if bytes[l - 1] != 0 {
            return Ok(None);
        }
        let ok = bson::RawDocument::from_bytes(bytes)
            .map(|d| d.iter().all(|e| e.is_ok()))
            .unwrap_or(false);
        Ok(ok.then_some(l))
    }

    /// A plausible document at `i` that also ends the input or is followed by another
    /// plausible document. An embedded document inside a corrupt record looks like a
    /// document on its own, but is followed by its parent's next element (or terminator).
    fn chained_at(&mut self, i: usize) -> Result<bool, SourceError> {
        let Some(l) = self.plausible_at(i)? else {
            return Ok(false);
        };
        let next = i + l;
        self.fill(next + 1)?;
        if self.available() == next {
            // Ends the input: a truncated record cut right after an embedded document
            // looks the same, so also ask whether an element header leads up to it.
            return Ok(!self.after_element_header(i));
        }
        Ok(self.plausible_at(next)?.is_some())
    }

    /// Do the bytes before `i` end like the header of an embedded document or array
    /// element (type 0x03/0x04, then a key and its NUL)?
    fn after_element_header(&self, i: usize) -> bool {
        let Some(before) = self.buf.get(self.pos..self.pos + i) else {
            return false;
        };
        let Some((&0, head)) = before.split_last() else {
            return false;
        };
        let run = head.iter().rposition(|&b| b == 0).map_or(0, |p| p + 1);
        head.iter()
            .enumerate()
            .skip(run)
            .any(|(j, &b)| matches!(b, 3 | 4) && std::str::from_utf8(&head[j + 1..]).is_ok())
    }

    /// Skips forward from a corrupt record to the next readable document (or the end),
    /// returning how many bytes were skipped. Candidates starting before `strict_until`
    /// (inside the corrupt record, as far as is known) must be [chained](Self::chained_at),
    /// so that the corrupt record's embedded documents are not taken for records.
    fn resync(&mut self, mut strict_until: usize) -> Result<usize, SourceError> {
        /// Scanned bytes kept in the buffer (for the element-header look-back); the rest
        /// is dropped as the scan goes, so a long corrupt stretch needs no memory.
        const KEEP: usize = 64 << 10;
        let mut dropped = 0;
        let mut i = 1;
        loop {
            if i > 16 * KEEP {
                let drop = i - KEEP;
                self.consume(drop);
                dropped += drop;
                i -= drop;
                strict_until = strict_until.saturating_sub(drop);
            }
            self.fill(i + MIN_RECORD_BYTES)?;
            if self.available() < i + MIN_RECORD_BYTES {
                let rest = self.available();
                self.consume(rest);
                return Ok(dropped + rest);
            }
            let found = if i < strict_until {
                self.chained_at(i)?
            } else {
                self.plausible_at(i)?.is_some()
            };
            if found {
                self.consume(i);
                return Ok(dropped + i);
            }
            i += 1;
        }
    }
}

impl RecordReader for BsonReader {
    fn encoding(&self) -> Encoding {
        Encoding::Bson
    }

    fn next_batch(&mut self, max_records: usize) -> Result<Option<Batch>, SourceError> {
        let mut batch = Batch::with_capacity();
        while batch.data.len() < BATCH_BYTES && batch.records.len() < max_records.max(1) {
            self.fill(4)?;
            let avail = self.available();
            if avail == 0 {
                break;
            }
            let at = self.offset;
            let broken = |batch: &mut Batch, msg: String| {
                let n = batch.data.len();
                batch.records.push(Record {
                    start: n,
                    end: n,
                    location: Location::Offset(at),
                    broken: Some(msg),
                });
            };
            if avail < 4 {
                self.consume(avail);
                broken(
                    &mut batch,
                    format!("truncated length prefix: {avail} byte(s) left at end of file"),
                );
                break;
            }
            let len = match self.len_at(0) {
                Some(l) if (MIN_RECORD_BYTES..=MAX_RECORD_BYTES).contains(&l) => l,
                _ => {
                    let raw_len = i32::from_le_bytes([
                        self.buf[self.pos],
                        self.buf[self.pos + 1],
                        self.buf[self.pos + 2],
                        self.buf[self.pos + 3],
                    ]);
                    let skipped = self.resync(usize::MAX)?;
                    broken(
                        &mut batch,
                        format!(
                            "invalid length prefix {raw_len} (must be {MIN_RECORD_BYTES}..={MAX_RECORD_BYTES}); skipped {skipped} bytes to the next readable document"
                        ),
                    );
                    continue;
                }
            };
            self.fill(len)?;
            let avail = self.available();
            if avail < len {
                let skipped = self.resync(usize::MAX)?;
                broken(
                    &mut batch,
                    format!(
                        "truncated record: length prefix says {len} bytes but only {avail} remain; skipped {skipped} bytes"
                    ),
                );
                continue;
            }
            if self.buf[self.pos + len - 1] != 0 {
                let skipped = self.resync(len)?;
                broken(
                    &mut batch,
                    format!(
                        "record of {len} bytes does not end with a NUL byte; skipped {skipped} bytes to the next readable document"
                    ),
                );
                continue;
            }
            let start = batch.data.len();
            batch
                .data
                .extend_from_slice(&self.buf[self.pos..self.pos + len]);
            batch.records.push(Record {
                start,
                end: start + len,
                location: Location::Offset(at),
                broken: None,
            });
            self.consume(len);
        }
        Ok((!batch.records.is_empty()).then_some(batch))
    }

    fn position(&self) -> u64 {
        match &self.counter {
            Some(c) => c.load(std::sync::atomic::Ordering::Relaxed),
            None => self.offset,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn doc(i: i32) -> Vec<u8> {
        bson::doc! {"_id": i, "name": format!("n{i}")}
            .to_vec()
            .unwrap()
    }

    fn read_all(bytes: Vec<u8>) -> Vec<(Location, Option<String>, usize)> {
        let mut r = BsonReader::new(Box::new(std::io::Cursor::new(bytes)), None, "t.bson".into());
        let mut out = Vec::new();
        while let Some(b) = r.next_batch(BATCH_RECORDS).unwrap() {
            for rec in &b.records {
                out.push((rec.location, rec.broken.clone(), rec.end - rec.start));
            }
        }
        out
    }

    #[test]
    fn splits_clean_stream() {
        let mut s = Vec::new();
        for i in 0..10 {
            s.extend(doc(i));
        }
        let recs = read_all(s);
        assert_eq!(recs.len(), 10);
        assert!(recs.iter().all(|r| r.1.is_none()));
        assert_eq!(recs[1].0, Location::Offset(recs[0].2 as u64));
    }

    #[test]
    fn truncated_tail_is_one_broken_record() {
        let mut s = doc(1);
        let mut d = doc(2);
        d.truncate(d.len() - 3);
        s.extend(d);
        let recs = read_all(s);
        assert_eq!(recs.len(), 2);
        assert!(recs[1].1.as_ref().unwrap().contains("truncated"));
    }

    #[test]
    fn recovers_after_corrupt_length() {
        let a = doc(1);
        let mut s = a.clone();
        let mut bad = doc(2);
        bad[0] = 0xff;
        bad[3] = 0x7f;
        s.extend(bad);
        s.extend(doc(3));
        s.extend(doc(4));
        let recs = read_all(s);
        let good = recs.iter().filter(|r| r.1.is_none()).count();
        let broken = recs.iter().filter(|r| r.1.is_some()).count();
        assert_eq!((good, broken), (3, 1), "{recs:?}");
    }

    #[test]
    fn embedded_documents_of_a_corrupt_record_are_not_records() {
        let inner = bson::doc! {"x": 1, "y": "z"};
        let parent =
            bson::doc! {"_id": 3, "a": inner.clone(), "b": [inner.clone(), inner], "s": "tail"}
                .to_vec()
                .unwrap();
        // Truncated at the end of the file, at every possible cut.
        for cut in 1..parent.len() {
            let mut s = doc(1);
            s.extend_from_slice(&parent[..parent.len() - cut]);
            let recs = read_all(s);
            let good = recs.iter().filter(|r| r.1.is_none()).count();
            assert_eq!(good, 1, "cut {cut}: {recs:?}");
        }
        // Corrupt length prefix / terminator in the middle of the file.
        for (at, byte) in [(0, 0xff), (3, 0x7f), (0, 0x01), (parent.len() - 1, 7)] {
            let mut bad = parent.clone();
            bad[at] = byte;
            let mut s = doc(1);
            s.extend(bad);
            s.extend(doc(2));
            s.extend(doc(4));
            let recs = read_all(s);
            let good = recs.iter().filter(|r| r.1.is_none()).count();
            let broken = recs.iter().filter(|r| r.1.is_some()).count();
            assert_eq!((good, broken), (3, 1), "byte {at}: {recs:?}");
        }
    }

    #[test]
    fn long_garbage_is_skipped_in_bounded_memory() {
        let mut x = 0x9e37_79b9_7f4a_7c15u64;
        let mut s: Vec<u8> = (0..12 << 20)
            .map(|_| {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                (x >> 32) as u8 | 0x80
            })
            .collect();
        let garbage = s.len();
        s.extend(doc(1));
        let mut r = BsonReader::new(Box::new(std::io::Cursor::new(s)), None, "t.bson".into());
        let mut recs = Vec::new();
        while let Some(b) = r.next_batch(BATCH_RECORDS).unwrap() {
            assert!(
                r.buf.capacity() < 4 << 20,
                "buffer grew to {}",
                r.buf.capacity()
            );
            recs.extend(
                b.records
                    .iter()
                    .map(|rec| (rec.location, rec.broken.clone())),
            );
        }
        assert_eq!(recs.len(), 2, "{recs:?}");
        assert!(recs[0]
            .1
            .as_deref()
            .unwrap()
            .contains(&format!("skipped {garbage}")));
        assert_eq!(recs[1], (Location::Offset(garbage as u64), None));
    }

    #[test]
    fn never_panics_on_any_truncation_or_garbage() {
        let mut s = Vec::new();
        for i in 0..4 {
            s.extend(doc(i));
        }
        for cut in 0..s.len() {
            let _ = read_all(s[..cut].to_vec());
        }
        for flip in 0..s.len() {
            let mut t = s.clone();
            t[flip] ^= 0xa5;
            let recs = read_all(t);
            assert!(!recs.is_empty());
        }
    }
}
