//! Splits mongoexport output into records: NDJSON (one document per line) or a JSON
//! array (`--jsonArray`), without parsing the documents themselves.

use std::io::{BufRead, BufReader, Read};
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

#[cfg(test)]
use super::BATCH_RECORDS;
use super::{Batch, Encoding, Location, Record, RecordReader, SourceError, BATCH_BYTES};

/// Longest line or array element read before it is reported as unreadable.
const MAX_JSON_RECORD_BYTES: usize = super::MAX_RECORD_BYTES * 4;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Mode {
    Unknown,
    Lines,
    Array,
    /// After the closing `]` of an array.
    Done,
}

pub struct JsonReader {
    input: BufReader<Box<dyn Read + Send>>,
    counter: Option<Arc<AtomicU64>>,
    path: PathBuf,
    mode: Mode,
    offset: u64,
    line: u64,
    index: u64,
    line_buf: Vec<u8>,
    /// Where the first line starts when `detect` consumed some of its leading whitespace.
    first_line_start: Option<u64>,
}

impl JsonReader {
    pub fn new(
        input: Box<dyn Read + Send>,
        counter: Option<Arc<AtomicU64>>,
        path: PathBuf,
    ) -> Self {
        JsonReader {
            input: BufReader::with_capacity(256 << 10, input),
            counter,
            path,
            mode: Mode::Unknown,
            offset: 0,
            line: 1,
            index: 0,
            line_buf: Vec::new(),
            first_line_start: None,
        }
    }

    /// Skips a UTF-8 byte-order mark, however the input's first reads are split.
    fn skip_bom(&mut self) -> Result<(), SourceError> {
        const BOM: [u8; 3] = [0xef, 0xbb, 0xbf];
        let buf = self.input.fill_buf().map_err(|e| read_err(&self.path, e))?;
        if buf.len() >= BOM.len() || !BOM.starts_with(buf) || buf.is_empty() {
            if buf.starts_with(&BOM) {
                self.input.consume(BOM.len());
                self.offset += BOM.len() as u64;
            }
            return Ok(());
        }
        // A short first read that could be the start of a BOM: read the first three bytes
        // and put back whatever is not a BOM in front of the rest of the input.
        let mut head = Vec::with_capacity(BOM.len());
        (&mut self.input)
            .take(BOM.len() as u64)
            .read_to_end(&mut head)
            .map_err(|e| read_err(&self.path, e))?;
        if head == BOM {
            self.offset += BOM.len() as u64;
            return Ok(());
        }
        let rest = std::mem::replace(
            &mut self.input,
            BufReader::new(Box::new(std::io::empty()) as Box<dyn Read + Send>),
        );
        let joined: Box<dyn Read + Send> = Box::new(std::io::Cursor::new(head).chain(rest));
        self.input = BufReader::with_capacity(256 << 10, joined);
        Ok(())
    }

    /// Peeks the first non-whitespace byte to choose NDJSON or array mode.
    fn detect(&mut self) -> Result<(), SourceError> {
        self.skip_bom()?;
        loop {
            let buf = self.input.fill_buf().map_err(|e| read_err(&self.path, e))?;
            if buf.is_empty() {
                self.mode = Mode::Lines;
                return Ok(());
            }
            match buf.iter().position(|b| !b.is_ascii_whitespace()) {
                Some(i) => {
                    let first = buf[i];
                    self.mode = if first == b'[' {
                        Mode::Array
                    } else {
                        Mode::Lines
                    };
                    if self.mode == Mode::Array {
                        self.line += buf[..i].iter().filter(|&&b| b == b'\n').count() as u64;
                        self.input.consume(i + 1);
                        self.offset += (i + 1) as u64;
                    }
                    return Ok(());
                }
                None => {
                    // Whitespace only: consume it to see further, remembering where the
                    // current line started (so locations do not depend on read sizes).
                    let n = buf.len();
                    self.line += buf.iter().filter(|&&b| b == b'\n').count() as u64;
                    let start = self.first_line_start.unwrap_or(self.offset);
                    self.first_line_start = Some(match buf.iter().rposition(|&b| b == b'\n') {
                        Some(p) => self.offset + p as u64 + 1,
                        None => start,
                    });
                    self.input.consume(n);
                    self.offset += n as u64;
                }
            }
        }
    }

    fn next_line(&mut self, batch: &mut Batch) -> Result<bool, SourceError> {
        self.line_buf.clear();
        let n = (&mut self.input)
            .take(MAX_JSON_RECORD_BYTES as u64 + 1)
            .read_until(b'\n', &mut self.line_buf)
            .map_err(|e| read_err(&self.path, e))?;
        if n == 0 {
            return Ok(false);
        }
        let location = Location::Line {
            line: self.line,
            offset: self.first_line_start.take().unwrap_or(self.offset),
        };
        self.offset += n as u64;
        self.line += 1;
        if n > MAX_JSON_RECORD_BYTES && !self.line_buf.ends_with(b"\n") {
            // Skip the rest of an over-long line.
            let mut skipped = 0u64;
            loop {
                let buf = self.input.fill_buf().map_err(|e| read_err(&self.path, e))?;
                if buf.is_empty() {
                    break;
                }
                match buf.iter().position(|&b| b == b'\n') {
                    Some(i) => {
                        self.input.consume(i + 1);
                        skipped += (i + 1) as u64;
                        break;
                    }
                    None => {
                        let k = buf.len();
                        self.input.consume(k);
                        skipped += k as u64;
                    }
                }
            }
            self.offset += skipped;
            push_broken(
                batch,
                location,
                format!("line longer than {MAX_JSON_RECORD_BYTES} bytes"),
            );
            return Ok(true);
        }
        let text = trim_ascii(&self.line_buf);
        if text.is_empty() {
            return Ok(true);
        }
        let start = batch.data.len();
        batch.data.extend_from_slice(text);
        batch.records.push(Record {
            start,
            end: batch.data.len(),
            location,
            broken: None,
        });
        Ok(true)
    }

    /// Reads one array element (or the closing bracket). Tracks strings and nesting so
    /// that commas and brackets inside values do not split elements.
    fn next_element(&mut self, batch: &mut Batch) -> Result<bool, SourceError> {
        // Skip whitespace and separating commas.
        loop {
            let buf = self.input.fill_buf().map_err(|e| read_err(&self.path, e))?;
            if buf.is_empty() {
                let location = self.element_location();
                push_broken(
                    batch,
                    location,
                    "unterminated JSON array: missing `]`".into(),
                );
                self.mode = Mode::Done;
                return Ok(false);
            }
            let b = buf[0];
            if b.is_ascii_whitespace() || b == b',' {
                if b == b'\n' {
                    self.line += 1;
                }
                self.input.consume(1);
                self.offset += 1;
                continue;
            }
            if b == b']' {
                self.input.consume(1);
                self.offset += 1;
                self.mode = Mode::Done;
                return Ok(false);
            }
            break;
        }
        let location = self.element_location();
        self.index += 1;
        let start = batch.data.len();
        let mut depth = 0usize;
        let mut in_str = false;
        let mut escaped = false;
        let mut oversized = false;
        loop {
            let buf = self.input.fill_buf().map_err(|e| read_err(&self.path, e))?;
            if buf.is_empty() {
                batch.data.truncate(start);
                push_broken(
                    batch,
                    location,
                    "unterminated array element at end of file".into(),
                );
                self.mode = Mode::Done;
                return Ok(false);
            }
            let mut end = None;
            for (i, &b) in buf.iter().enumerate() {
                if b == b'\n' {
                    self.line += 1;
                }
                if in_str {
                    if escaped {
                        escaped = false;
                    } else if b == b'\\' {
                        escaped = true;
                    } else if b == b'"' {
                        in_str = false;
                    }
                    continue;
                }
                match b {
                    b'"' => in_str = true,
                    b'{' | b'[' => depth += 1,
                    b'}' | b']' if depth > 0 => {
                        depth -= 1;
                        if depth == 0 {
                            end = Some((i + 1, i + 1));
                            break;
                        }
                    }
                    b',' | b']' if depth == 0 => {
                        // A scalar element ends before the separator, which is left
                        // for the next call.
                        end = Some((i, i));
                        break;
                    }
                    _ => {}
                }
            }
            let (take, consume) = end.unwrap_or((buf.len(), buf.len()));
            if !oversized {
                batch.data.extend_from_slice(&buf[..take]);
            }
            self.input.consume(consume);
            self.offset += consume as u64;
            if end.is_some() {
                break;
            }
            if !oversized && batch.data.len() - start > MAX_JSON_RECORD_BYTES {
                // Too long to keep: skip to its end and go on with the next element.
                batch.data.truncate(start);
                oversized = true;
            }
        }
        if oversized {
            push_broken(
                batch,
                location,
                format!("array element longer than {MAX_JSON_RECORD_BYTES} bytes; skipped"),
            );
            return Ok(true);
        }
        let trimmed_end = start + trim_ascii(&batch.data[start..]).len();
        batch.data.truncate(trimmed_end);
        batch.records.push(Record {
            start,
            end: batch.data.len(),
            location,
            broken: None,
        });
        Ok(true)
    }

    fn element_location(&self) -> Location {
        Location::Element {
            index: self.index,
            line: self.line,
            offset: self.offset,
        }
    }
}

fn read_err(path: &std::path::Path, e: std::io::Error) -> SourceError {
    super::io_err(path, format!("read failed: {e}"))
}

fn push_broken(batch: &mut Batch, location: Location, msg: String) {
    let n = batch.data.len();
    batch.records.push(Record {
        start: n,
        end: n,
        location,
        broken: Some(msg),
    });
}

fn trim_ascii(b: &[u8]) -> &[u8] {
    let s = b
        .iter()
        .position(|c| !c.is_ascii_whitespace())
        .unwrap_or(b.len());
    let e = b
        .iter()
        .rposition(|c| !c.is_ascii_whitespace())
        .map_or(s, |i| i + 1);
    &b[s..e.max(s)]
}

impl RecordReader for JsonReader {
    fn encoding(&self) -> Encoding {
        Encoding::Json
    }

    fn next_batch(&mut self, max_records: usize) -> Result<Option<Batch>, SourceError> {
        if self.mode == Mode::Unknown {
            self.detect()?;
        }
        let mut batch = Batch::with_capacity();
        while batch.data.len() < BATCH_BYTES && batch.records.len() < max_records.max(1) {
            let more = match self.mode {
                Mode::Lines => self.next_line(&mut batch)?,
                Mode::Array => self.next_element(&mut batch)?,
                Mode::Done | Mode::Unknown => false,
            };
            if !more {
                break;
            }
        }
        if self.mode == Mode::Done && batch.records.is_empty() {
            // Anything but whitespace after the closing bracket is reported once.
            let mut rest = Vec::new();
            (&mut self.input)
                .take(1 << 20)
                .read_to_end(&mut rest)
                .map_err(|e| read_err(&self.path, e))?;
            if !trim_ascii(&rest).is_empty() {
                let location = self.element_location();
                push_broken(
                    &mut batch,
                    location,
                    "unexpected content after the closing `]`".into(),
                );
            }
            self.offset += rest.len() as u64;
        }
        Ok((!batch.records.is_empty()).then_some(batch))
    }

    fn position(&self) -> u64 {
        match &self.counter {
            Some(c) => c.load(Ordering::Relaxed),
            None => self.offset,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn records(text: &str) -> Vec<(String, Option<String>, Location)> {
        let mut r = JsonReader::new(
            Box::new(std::io::Cursor::new(text.as_bytes().to_vec())),
            None,
            "t.json".into(),
        );
        let mut out = Vec::new();
        while let Some(b) = r.next_batch(BATCH_RECORDS).unwrap() {
            for rec in &b.records {
                out.push((
                    String::from_utf8_lossy(b.bytes(rec)).into_owned(),
                    rec.broken.clone(),
                    rec.location,
                ));
            }
        }
        out
    }

    #[test]
    fn ndjson_lines_with_numbers() {
        let r = records("{\"a\":1}\r\n\n{\"a\":2}\n{\"a\":");
        assert_eq!(r.len(), 3);
        assert_eq!(r[0].0, "{\"a\":1}");
        assert_eq!(
            r[1].2,
            Location::Line {
                line: 3,
                offset: 10
            }
        );
        assert_eq!(r[2].0, "{\"a\":");
    }

    #[test]
    fn json_array_elements() {
        let r = records(" [\n{\"a\":\"x,]}\\\"\"},\n {\"b\":[1,2]} , 3 ]\n");
        let texts: Vec<&str> = r.iter().map(|x| x.0.as_str()).collect();
        assert_eq!(texts, ["{\"a\":\"x,]}\\\"\"}", "{\"b\":[1,2]}", "3"]);
        assert_eq!(
            r[1].2,
            Location::Element {
                index: 1,
                line: 3,
                offset: 20
            }
        );
        assert!(records("[]").is_empty());
    }

    #[test]
    fn byte_order_mark_split_across_reads() {
        /// Reads one byte at a time.
        struct Trickle(std::io::Cursor<Vec<u8>>);
        impl Read for Trickle {
            fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
                let n = buf.len().min(1);
                self.0.read(&mut buf[..n])
            }
        }
        for text in [
            &b"\xef\xbb\xbf[{\"a\":1}]"[..],
            b"\xef\xbb\xbf{\"a\":1}\n",
            b"\xef\xbbx\n",
            b"\xef",
        ] {
            let run = |input: Box<dyn Read + Send>| {
                let mut r = JsonReader::new(input, None, "t.json".into());
                let mut out = Vec::new();
                while let Some(b) = r.next_batch(BATCH_RECORDS).unwrap() {
                    for rec in &b.records {
                        out.push((b.bytes(rec).to_vec(), rec.broken.clone(), rec.location));
                    }
                }
                (out, r.position())
            };
            let whole = run(Box::new(std::io::Cursor::new(text.to_vec())));
            let trickled = run(Box::new(Trickle(std::io::Cursor::new(text.to_vec()))));
            assert_eq!(whole, trickled, "{text:?}");
            assert_eq!(whole.1, text.len() as u64);
        }
        let r = records("\u{feff}[{\"a\":1}]");
        assert_eq!(r.len(), 1);
        assert_eq!(r[0].0, "{\"a\":1}");
    }

    #[test]
    fn broken_arrays_are_reported() {
        let r = records("[{\"a\":1},{\"a\":");
        assert_eq!(r.len(), 2);
        assert!(r[1].1.is_some());
        let r = records("[{\"a\":1}] x");
        assert!(r
            .last()
            .unwrap()
            .1
            .as_deref()
            .unwrap()
            .contains("after the closing"));
        let r = records("[{\"a\":1}");
        assert!(r.last().unwrap().1.is_some());
    }
}
