//! The apply journal: an append-only file of checksummed JSON lines, fsynced before the
//! writes it describes. Every line is `<16 hex digits of xxh3-64> <json>\n`; reading
//! verifies each one. The checksums are chained: a line's checksum is xxh3-64 of its JSON
//! seeded with the previous line's checksum (the header's seed is 0), so a line removed,
//! repeated or moved anywhere before the last one breaks the chain, not only a line
//! edited in place. A torn last line (a crash while appending) is dropped — it was never
//! acted upon, because intent is synced before the writes — while damage anywhere else
//! makes the whole journal untrusted. (Journals of format `docsweep-journal/1`, whose
//! lines are checksummed one by one, are still read.)
//!
//! Lines (`kind`):
//! - `header`: `format` (`docsweep-journal/2`), `plan` (path), `plan_checksum`, `target`,
//!   `database` (dumps), `collection`, `template`, `params`, `started_at`, `user`.
//! - `batch`: `n`, `entries` — each `{action, _id, before, after}` with full
//!   before- and after-images (relaxed Extended JSON; null where there is none).
//! - `done`: `n`, `applied`, `already`, `conflicts` (ids; in live journals
//!   `{_id, reason}`), after the batch's writes.
//! - `finish`: `summary`, when the whole plan is through (live journals: `entries`,
//!   `applied`, `already`, `conflicts` as in `done`).

use std::fs::{File, OpenOptions};
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};

use serde_json::Value;
use xxhash_rust::xxh3::xxh3_64_with_seed;

pub const FORMAT: &str = "docsweep-journal/2";
/// The earlier format: the same records, each line checksummed on its own.
const FORMAT_UNCHAINED: &str = "docsweep-journal/1";

#[derive(Debug, thiserror::Error)]
pub enum JournalError {
    #[error("journal {path}: {message}")]
    Corrupt { path: PathBuf, message: String },
    #[error("journal {path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

/// An open journal, appending.
pub struct Journal {
    file: File,
    path: PathBuf,
    /// The checksum of the last line written: the next line's seed.
    last: u64,
    /// Lines are chained (false only when continuing a `docsweep-journal/1` journal).
    chained: bool,
}

/// One line checksummed on its own (the unchained line of `docsweep-journal/1`).
#[cfg(test)]
pub(super) fn line_for(v: &Value) -> String {
    chained_line(v, 0).0
}

/// One line whose checksum is seeded with `seed`, and that checksum (also the plan
/// file's line format).
pub fn chained_line(v: &Value, seed: u64) -> (String, u64) {
    let json = v.to_string();
    let sum = xxh3_64_with_seed(json.as_bytes(), seed);
    (format!("{sum:016x} {json}\n"), sum)
}

impl Journal {
    /// Creates a new journal, owner-only (it holds before- and after-images); fails if the
    /// file exists.
    pub fn create(path: &Path) -> Result<Journal, JournalError> {
        let file = crate::os::create_new(path, crate::os::Access::Private).map_err(|source| {
            JournalError::Io {
                path: path.to_path_buf(),
                source,
            }
        })?;
        // The directory entry must survive a crash too.
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            if let Ok(d) = File::open(dir) {
                let _ = d.sync_all();
            }
        }
        Ok(Journal {
            file,
            path: path.to_path_buf(),
            last: 0,
            chained: true,
        })
    }

    /// Reopens an existing journal for appending, after `read` has verified it; a torn
    /// tail is cut off first.
    pub fn reopen(path: &Path, read: &Read) -> Result<Journal, JournalError> {
        let valid_len = read.valid_len;
        let io = |source| JournalError::Io {
            path: path.to_path_buf(),
            source,
        };
        let file = OpenOptions::new().write(true).open(path).map_err(io)?;
        file.set_len(valid_len).map_err(io)?;
        file.sync_all().map_err(io)?;
        let file = OpenOptions::new().append(true).open(path).map_err(io)?;
        Ok(Journal {
            file,
            path: path.to_path_buf(),
            last: read.last,
            // An unchained journal goes on unchained.
            chained: read.chained,
        })
    }

    /// Appends one record and fsyncs it.
    pub fn append(&mut self, record: &Value) -> Result<(), JournalError> {
        let io = |source| JournalError::Io {
            path: self.path.clone(),
            source,
        };
        let (line, sum) = chained_line(record, if self.chained { self.last } else { 0 });
        self.file.write_all(line.as_bytes()).map_err(io)?;
        self.file.sync_data().map_err(io)?;
        self.last = sum;
        Ok(())
    }

    pub fn path(&self) -> &Path {
        &self.path
    }
}

/// A journal read back: its verified records and the length they span.
#[derive(Debug)]
pub struct Read {
    pub records: Vec<Value>,
    pub valid_len: u64,
    /// A torn last line was found (and is ignored).
    pub torn_tail: bool,
    /// The checksum of the last verified line.
    last: u64,
    /// The lines are chained (the current format).
    chained: bool,
}

/// The collections a journal's apply changed: `collections` in a journal over several,
/// else its one `collection`.
pub fn collections(header: &Value) -> Vec<String> {
    let listed: Vec<String> = header["collections"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|c| c.as_str().map(str::to_string))
        .collect();
    if listed.is_empty() {
        vec![header["collection"]
            .as_str()
            .unwrap_or_default()
            .to_string()]
    } else {
        listed
    }
}

/// Reads and verifies a journal.
pub fn read(path: &Path) -> Result<Read, JournalError> {
    let corrupt = |message: String| JournalError::Corrupt {
        path: path.to_path_buf(),
        message,
    };
    let file = File::open(path).map_err(|source| JournalError::Io {
        path: path.to_path_buf(),
        source,
    })?;
    let mut r = BufReader::new(file);
    let mut records = Vec::new();
    let mut valid_len = 0u64;
    let mut torn_tail = false;
    let mut line = Vec::new();
    let mut n = 0;
    let mut seed = 0u64;
    let mut chained = false;
    loop {
        line.clear();
        let k = r
            .read_until(b'\n', &mut line)
            .map_err(|source| JournalError::Io {
                path: path.to_path_buf(),
                source,
            })?;
        if k == 0 {
            break;
        }
        n += 1;
        let complete = line.ends_with(b"\n");
        let parsed = parse_seeded(&line, if chained { seed } else { 0 });
        match (parsed, complete) {
            (Ok((v, sum)), true) => {
                if n == 1 {
                    chained = v["format"] == FORMAT;
                }
                seed = sum;
                records.push(v);
                valid_len += k as u64;
            }
            (Err(_), false) | (Ok(_), false) => {
                // Only the last line can be torn: nothing follows an unterminated line.
                torn_tail = true;
                break;
            }
            // A complete line that does not verify is damage, never a torn write
            // (each line is written whole, newline last).
            (Err(m), true) => return Err(corrupt(format!("line {n}: {m}"))),
        }
    }
    if records.is_empty() {
        return Err(corrupt("no header: empty or not a journal".into()));
    }
    let format = &records[0]["format"];
    if records[0]["kind"] != "header" || (format != FORMAT && format != FORMAT_UNCHAINED) {
        return Err(corrupt(format!("not a {FORMAT} journal")));
    }
    Ok(Read {
        records,
        valid_len,
        torn_tail,
        last: seed,
        chained,
    })
}

/// Verifies and parses one line checksummed on its own (with or without its newline).
#[cfg(test)]
pub(super) fn parse_line(line: &[u8]) -> Result<Value, String> {
    parse_seeded(line, 0).map(|(v, _)| v)
}

/// Verifies one line whose checksum is seeded with `seed`; the value and the checksum.
pub(super) fn parse_seeded(line: &[u8], seed: u64) -> Result<(Value, u64), String> {
    let text = std::str::from_utf8(line).map_err(|_| "not UTF-8".to_string())?;
    let text = text.strip_suffix('\n').unwrap_or(text);
    let (sum, json) = text.split_once(' ').ok_or("no checksum")?;
    let want = u64::from_str_radix(sum, 16).map_err(|_| "bad checksum field".to_string())?;
    if sum.len() != 16 || xxh3_64_with_seed(json.as_bytes(), seed) != want {
        return Err(if seed == 0 {
            "checksum mismatch".into()
        } else {
            "checksum mismatch (a line edited, removed, repeated or out of order)".into()
        });
    }
    Ok((parse_deep(json)?, want))
}

/// How deep a plan or journal line may nest: a document (at most
/// [`crate::value::MAX_DEPTH`] levels, or it is unreadable and never planned) inside the
/// few levels of a line's own record.
const MAX_LINE_DEPTH: usize = crate::value::MAX_DEPTH + 16;

/// Parses one line's JSON. serde_json refuses anything nested deeper than 128 levels,
/// which a line holding a document of 124 levels already is; the depth is bounded here
/// instead, before parsing, so that every document a plan accepts reads back.
fn parse_deep(json: &str) -> Result<Value, String> {
    let (mut depth, mut deepest, mut in_string, mut escaped) = (0usize, 0usize, false, false);
    for b in json.bytes() {
        match (in_string, escaped, b) {
            (true, true, _) => escaped = false,
            (true, false, b'\\') => escaped = true,
            (true, false, b'"') | (false, _, b'"') => in_string = !in_string,
            (false, _, b'{' | b'[') => {
                depth += 1;
                deepest = deepest.max(depth);
            }
            (false, _, b'}' | b']') => depth = depth.saturating_sub(1),
            _ => {}
        }
    }
    if deepest > MAX_LINE_DEPTH {
        return Err(format!(
            "nested {deepest} levels deep, more than {MAX_LINE_DEPTH}"
        ));
    }
    let mut de = serde_json::Deserializer::from_str(json);
    de.disable_recursion_limit();
    let v = serde::Deserialize::deserialize(&mut de).map_err(|e| format!("not JSON: {e}"))?;
    de.end().map_err(|e| format!("not JSON: {e}"))?;
    Ok(v)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn lines_as_deep_as_a_document_read_back_and_deeper_ones_are_refused() {
        let nest = |n: usize| format!("{}1{}", "[".repeat(n), "]".repeat(n));
        assert!(parse_deep(&nest(MAX_LINE_DEPTH)).is_ok());
        assert!(parse_deep(&format!("{{\"s\": \"[[[\\\"[[\", \"v\": {}}}", nest(100))).is_ok());
        let err = parse_deep(&nest(100_000)).unwrap_err();
        assert!(err.contains("levels deep"), "{err}");
    }

    fn sample(dir: &Path) -> PathBuf {
        let p = dir.join("j.journal");
        let mut j = Journal::create(&p).unwrap();
        j.append(&json!({"kind": "header", "format": FORMAT}))
            .unwrap();
        j.append(&json!({"kind": "batch", "n": 0, "entries": []}))
            .unwrap();
        j.append(&json!({"kind": "done", "n": 0})).unwrap();
        p
    }

    #[test]
    fn round_trip_and_torn_tail() {
        let dir = tempfile::tempdir().unwrap();
        let p = sample(dir.path());
        let r = read(&p).unwrap();
        assert_eq!(r.records.len(), 3);
        assert!(!r.torn_tail);
        assert!(Journal::create(&p).is_err(), "never overwritten");
        let bytes = std::fs::read(&p).unwrap();
        // Cut anywhere inside the last line: a torn tail, the rest intact.
        let last_start = bytes[..bytes.len() - 1]
            .iter()
            .rposition(|&b| b == b'\n')
            .unwrap()
            + 1;
        for cut in last_start + 1..bytes.len() {
            std::fs::write(&p, &bytes[..cut]).unwrap();
            let r = read(&p).unwrap();
            assert_eq!((r.records.len(), r.torn_tail), (2, true), "cut at {cut}");
            assert_eq!(r.valid_len as usize, last_start);
        }
        // Reopening cuts the tail and appends cleanly, the chain going on.
        let r = read(&p).unwrap();
        let mut j = Journal::reopen(&p, &r).unwrap();
        j.append(&json!({"kind": "done", "n": 0})).unwrap();
        j.append(&json!({"kind": "finish"})).unwrap();
        assert_eq!(read(&p).unwrap().records.len(), 4);
    }

    /// Lines of a journal as they are, newline included.
    fn lines(p: &Path) -> Vec<Vec<u8>> {
        std::fs::read(p)
            .unwrap()
            .split_inclusive(|&b| b == b'\n')
            .map(<[u8]>::to_vec)
            .collect()
    }

    #[test]
    fn a_removed_repeated_or_moved_line_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let p = sample(dir.path());
        let mut j = Journal::reopen(&p, &read(&p).unwrap()).unwrap();
        j.append(&json!({"kind": "finish"})).unwrap();
        let all = lines(&p);
        assert_eq!(all.len(), 4);
        let variants: [(&str, &[usize]); 4] = [
            ("batch removed", &[0, 2, 3]),
            ("done removed", &[0, 1, 3]),
            ("batch repeated", &[0, 1, 1, 2, 3]),
            ("swapped", &[0, 2, 1, 3]),
        ];
        for (what, order) in variants {
            let v: Vec<u8> = order.iter().flat_map(|&i| all[i].clone()).collect();
            std::fs::write(&p, v).unwrap();
            let e = read(&p).expect_err(what);
            assert!(e.to_string().contains("checksum mismatch"), "{what}: {e}");
        }
    }

    #[test]
    fn unchained_journals_of_the_earlier_format_are_read_and_continued_unchained() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("old.journal");
        let old = [
            json!({"kind": "header", "format": FORMAT_UNCHAINED}),
            json!({"kind": "batch", "n": 0, "entries": []}),
        ];
        let text: String = old.iter().map(line_for).collect();
        std::fs::write(&p, text).unwrap();
        let r = read(&p).unwrap();
        assert_eq!(r.records.len(), 2);
        let mut j = Journal::reopen(&p, &r).unwrap();
        j.append(&json!({"kind": "done", "n": 0})).unwrap();
        j.append(&json!({"kind": "batch", "n": 1, "entries": []}))
            .unwrap();
        drop(j);
        let r = read(&p).unwrap();
        assert_eq!(r.records.len(), 4);
        let mut j = Journal::reopen(&p, &r).unwrap();
        j.append(&json!({"kind": "done", "n": 1})).unwrap();
        assert_eq!(read(&p).unwrap().records.len(), 5);
        // Its lines verify one by one, so any single line of it is a valid line.
        for l in lines(&p) {
            parse_line(&l).unwrap();
        }
    }

    #[test]
    fn damage_before_the_tail_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let p = sample(dir.path());
        let bytes = std::fs::read(&p).unwrap();
        let first_nl = bytes.iter().position(|&b| b == b'\n').unwrap();
        for i in 0..first_nl + 10 {
            let mut b = bytes.clone();
            if b[i] == b'\n' {
                continue;
            }
            b[i] ^= 0x01;
            std::fs::write(&p, &b).unwrap();
            assert!(read(&p).is_err(), "flip at {i} must be refused");
        }
        std::fs::write(&p, b"").unwrap();
        assert!(read(&p).is_err());
    }
}
