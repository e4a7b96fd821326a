//! `BsonReader` over arbitrary bytes, delivered in small reads of a fuzzed size: never
//! panics, terminates, keeps record ranges inside the batch, reports records in input order
//! with their true bytes, and consumes the whole input.
#![no_main]

use std::io::Read;

use docsweep::source::{BsonReader, Location, RecordReader};
use libfuzzer_sys::fuzz_target;

/// Hands out the input at most `step` bytes per `read` call.
struct Chunked {
    data: Vec<u8>,
    pos: usize,
    step: usize,
}

impl Read for Chunked {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = buf.len().min(self.step).min(self.data.len() - self.pos);
        buf[..n].copy_from_slice(&self.data[self.pos..self.pos + n]);
        self.pos += n;
        Ok(n)
    }
}

/// Every record as (location, bytes, broken) plus the final position, reading `step` bytes
/// at a time: the split of the input into reads must not change anything.
fn outline(input: &[u8], step: usize, max_records: usize) -> (Vec<(Location, Vec<u8>, bool)>, u64) {
    let reader = Chunked {
        data: input.to_vec(),
        pos: 0,
        step,
    };
    let mut r = BsonReader::new(Box::new(reader), None, "fuzz".into());
    let mut out = Vec::new();
    while let Some(batch) = r
        .next_batch(max_records)
        .expect("in-memory reads never fail")
    {
        for rec in &batch.records {
            out.push((
                rec.location,
                batch.bytes(rec).to_vec(),
                rec.broken.is_some(),
            ));
        }
    }
    (out, r.position())
}

fuzz_target!(|data: &[u8]| {
    let Some((&ctl, input)) = data.split_first() else {
        return;
    };
    // Low bits: read size (1..=16 or unlimited); high bits: records per batch.
    let step = match ctl & 0x1f {
        0 => usize::MAX,
        s => usize::from(s),
    };
    let max_records = usize::from(ctl >> 5) + 1;
    let reader = Chunked {
        data: input.to_vec(),
        pos: 0,
        step,
    };
    let mut r = BsonReader::new(Box::new(reader), None, "fuzz.bson".into());
    let mut next_offset = 0u64;
    let mut batches = 0usize;
    while let Some(batch) = r
        .next_batch(max_records)
        .expect("in-memory reads never fail")
    {
        batches += 1;
        assert!(batches <= input.len() + 1, "more batches than input bytes");
        assert!(!batch.records.is_empty(), "empty batch");
        assert!(batch.records.len() <= max_records);
        let mut prev_end = 0;
        for rec in &batch.records {
            assert!(rec.start <= rec.end && rec.end <= batch.data.len());
            assert_eq!(rec.start, prev_end, "records do not tile the batch buffer");
            prev_end = rec.end;
            let Location::Offset(at) = rec.location else {
                panic!("BSON record with a non-offset location");
            };
            assert!(
                at >= next_offset,
                "records out of order: {at} < {next_offset}"
            );
            assert!(at <= input.len() as u64);
            let bytes = batch.bytes(rec);
            if rec.broken.is_some() {
                assert!(bytes.is_empty(), "broken record with bytes");
                // At least one byte of input is consumed per broken record.
                next_offset = at + 1;
                continue;
            }
            let at = usize::try_from(at).expect("small input");
            assert!(bytes.len() >= 5, "record shorter than 5 bytes");
            assert_eq!(
                Some(bytes),
                input.get(at..at + bytes.len()),
                "record bytes differ from input"
            );
            let declared = i32::from_le_bytes([bytes[0], bytes[1], bytes[2], bytes[3]]);
            assert_eq!(usize::try_from(declared).ok(), Some(bytes.len()));
            assert_eq!(bytes.last(), Some(&0));
            next_offset = (at + bytes.len()) as u64;
            // Whatever the splitter hands on must be safe to decode.
            let _ = docsweep::value::from_bson(bytes);
        }
        assert_eq!(
            prev_end,
            batch.data.len(),
            "batch buffer has bytes no record owns"
        );
    }
    assert_eq!(r.position(), input.len() as u64, "input not fully consumed");
    assert!(
        r.next_batch(max_records).expect("after end").is_none(),
        "records after the end"
    );
    if step != usize::MAX {
        assert_eq!(
            outline(input, step, max_records),
            outline(input, usize::MAX, max_records),
            "the records depend on how the input is split into reads"
        );
    }
});
