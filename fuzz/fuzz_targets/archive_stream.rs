//! The mongodump archive reader over arbitrary bytes, delivered in small reads of a fuzzed
//! size: reading the prelude and every namespace's records never panics and terminates;
//! records tile the batch buffer, come in input order, readable ones equal the input bytes
//! at their offset, at most a few are unreadable (a cut-off tail, a CRC mismatch, lost
//! framing end the namespace), and the records do not depend on how the input is split
//! into reads.
#![no_main]

use std::io::Read;
use std::path::Path;

use docsweep::source::archive;
use docsweep::source::Location;
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

fn chunked(input: &[u8], step: usize) -> Box<dyn Read + Send> {
    Box::new(Chunked {
        data: input.to_vec(),
        pos: 0,
        step,
    })
}

type Outline = Vec<(Location, Vec<u8>, Option<String>)>;

/// Every record of `db.coll`, checking the invariants on the way.
fn outline(input: &[u8], step: usize, max_records: usize, db: &str, coll: &str) -> Outline {
    let mut r = archive::records(chunked(input, step), Path::new("fuzz.archive"), db, coll);
    let mut out = Vec::new();
    let mut next_offset = 0u64;
    let mut batches = 0usize;
    while let Some(batch) = r
        .next_batch(max_records)
        .expect("in-memory reads never fail")
    {
        batches += 1;
        assert!(batches <= input.len() + 2, "more batches than input bytes");
        assert!(!batch.records.is_empty(), "empty batch");
        assert!(batch.records.len() <= max_records);
        let mut prev_end = 0;
        for rec in &batch.records {
            assert!(rec.start <= rec.end && rec.end <= batch.data.len());
            assert_eq!(rec.start, prev_end, "records do not tile the batch buffer");
            prev_end = rec.end;
            let Location::Offset(at) = rec.location else {
                panic!("archive record with a non-offset location");
            };
            assert!(
                at >= next_offset,
                "records out of order: {at} < {next_offset}"
            );
            assert!(at <= input.len() as u64);
            let bytes = batch.bytes(rec);
            if rec.broken.is_some() {
                assert!(bytes.is_empty(), "broken record with bytes");
            } else {
                let at = usize::try_from(at).expect("small input");
                assert!(bytes.len() >= 5, "record shorter than 5 bytes");
                assert_eq!(
                    Some(bytes),
                    input.get(at..at + bytes.len()),
                    "record bytes differ from input"
                );
                assert_eq!(bytes.last(), Some(&0));
                next_offset = (at + bytes.len()) as u64;
                let _ = docsweep::value::from_bson(bytes);
            }
            out.push((rec.location, bytes.to_vec(), rec.broken.clone()));
        }
        assert_eq!(
            prev_end,
            batch.data.len(),
            "batch buffer has bytes no record owns"
        );
    }
    // Unreadable records: documents without their NUL byte, and at most one more, last,
    // that ends the namespace (cut off, lost framing, CRC mismatch).
    if let Some((_, before)) = out.split_last() {
        for (_, _, broken) in before {
            if let Some(m) = broken {
                assert!(
                    m.contains("NUL"),
                    "an unreadable record before the last: {m}"
                );
            }
        }
    }
    assert!(
        r.next_batch(max_records).expect("after end").is_none(),
        "records after the end"
    );
    out
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
    let Ok(namespaces) = archive::namespaces(chunked(input, step), Path::new("fuzz.archive"))
    else {
        return;
    };
    assert_eq!(
        archive::namespaces(chunked(input, usize::MAX), Path::new("fuzz.archive"))
            .expect("the prelude does not depend on reads"),
        namespaces
    );
    for (db, coll) in namespaces.iter().take(8) {
        let a = outline(input, step, max_records, db, coll);
        if step != usize::MAX {
            assert_eq!(
                a,
                outline(input, usize::MAX, max_records, db, coll),
                "the records depend on how the input is split into reads"
            );
        }
    }
});
