//! `JsonReader` over arbitrary bytes (NDJSON or a JSON array), delivered in small reads of a
//! fuzzed size: never panics, terminates, keeps record ranges inside the batch, reports
//! records in input order with their true (trimmed) text, and consumes the whole input.
#![no_main]

use std::io::Read;

use docsweep::source::{JsonReader, Location, RecordReader};
use libfuzzer_sys::fuzz_target;

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

fn is_ws(b: &u8) -> bool {
    b.is_ascii_whitespace()
}

/// Every record as (location, bytes, broken) plus the final position, reading `step` bytes
/// at a time: the split of the input into reads must not change anything.
fn outline(input: &[u8], step: usize, max_records: usize) -> (Vec<(Location, Vec<u8>, bool)>, u64) {
    let reader = Chunked {
        data: input.to_vec(),
        pos: 0,
        step,
    };
    let mut r = JsonReader::new(Box::new(reader), None, "fuzz".into());
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
    let mut r = JsonReader::new(Box::new(reader), None, "fuzz.json".into());
    let mut last_offset = 0u64;
    let mut batches = 0usize;
    while let Some(batch) = r
        .next_batch(max_records)
        .expect("in-memory reads never fail")
    {
        batches += 1;
        assert!(batches <= input.len() + 2, "more batches than input bytes");
        assert!(!batch.records.is_empty(), "empty batch");
        assert!(batch.records.len() <= max_records);
        for rec in &batch.records {
            assert!(rec.start <= rec.end && rec.end <= batch.data.len());
            let (offset, line) = match rec.location {
                Location::Line { line, offset } => (offset, line),
                Location::Element { line, offset, .. } => (offset, line),
                other => panic!("JSON record with location {other:?}"),
            };
            assert!(offset >= last_offset, "records out of order");
            assert!(offset <= input.len() as u64);
            last_offset = offset;
            let at = usize::try_from(offset).expect("small input");
            // Lines are 1-based and agree with the newlines before the offset.
            let newlines = input[..at].iter().filter(|&&b| b == b'\n').count() as u64;
            assert_eq!(line, newlines + 1, "wrong line number for offset {at}");
            let bytes = batch.bytes(rec);
            if rec.broken.is_some() {
                assert!(bytes.is_empty(), "broken record with bytes");
                continue;
            }
            assert!(!bytes.is_empty(), "empty record");
            assert!(
                !is_ws(&bytes[0]) && !is_ws(&bytes[bytes.len() - 1]),
                "record not trimmed"
            );
            let rest = &input[at..];
            let skip = rest.iter().position(|b| !is_ws(b)).unwrap_or(rest.len());
            assert!(
                rest[skip..].starts_with(bytes),
                "record text differs from the input at its offset"
            );
            if let Ok(v) = serde_json::from_slice::<serde_json::Value>(bytes) {
                let _ = docsweep::value::from_ejson(v);
            }
        }
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
