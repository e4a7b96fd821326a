//! Partial results: what a scan examined, recorded document by document so that folding
//! it later gives exactly what folding it on the spot would have. `check --partition`
//! writes one per partition and `docsweep merge` folds them in partition order;
//! `check --checkpoint` writes one as it goes and folds it back to continue.
//!
//! The file is a sequence of chunks, each `u32 length, u64 xxh3 of the payload, payload`
//! (little-endian), so a torn or damaged chunk is detected, never half-trusted. Payload
//! kinds, in file order:
//! - `header`: JSON (format, source, settings, collections with their indexes);
//! - `keys`: the value hashes of a referenced field in a collection that is not checked,
//!   then the number of its records in this partition that could not be read (when not
//!   0; references to the collection are not verified then);
//! - per collection: `section` (JSON: name, range), `records` (examined documents, one
//!   chunk per batch), `section_end` (JSON: records);
//! - `end`.

use std::fs::{File, OpenOptions};
use std::io::{BufReader, BufWriter, Read, Seek, Write};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::doc::{Class, DocFacts, Examined, Sample, SchemaError};
use super::HashSet128;
use crate::source::Location;
use crate::value::Fingerprint;

pub const FORMAT: &str = "docsweep-partial/1";

const MAGIC: &[u8; 8] = b"DSWPART\x01";
const HEADER: u8 = 1;
const KEYS: u8 = 2;
const SECTION: u8 = 3;
const RECORDS: u8 = 4;
const SECTION_END: u8 = 5;
const END: u8 = 6;
const NOTE: u8 = 7;
/// Larger chunks are damage, not data.
const MAX_CHUNK: u32 = 1 << 30;

#[derive(Debug, thiserror::Error)]
pub enum PartialError {
    #[error("{path}: {message}")]
    Io { path: PathBuf, message: String },
    /// The file is not a partial result, is damaged or is incomplete.
    #[error("{path}: {message}")]
    Invalid { path: PathBuf, message: String },
}

fn io(path: &Path, e: impl std::fmt::Display) -> PartialError {
    PartialError::Io {
        path: path.to_path_buf(),
        message: e.to_string(),
    }
}

/// The settings that decide a run's results, as a partial result or checkpoint records
/// them (the header's `settings`): runs agree when these are equal.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RunSettings {
    /// `--db`.
    pub database: Option<String>,
    /// A digest of the contracts directory (names and contents of every file).
    pub contracts: String,
    /// `--target` and `[targets]`, in the order given.
    pub targets: Vec<(String, u32)>,
    /// `--collection` (empty: every contract).
    pub collections: Vec<String>,
    /// The baseline, as the report names it.
    pub baseline: Option<String>,
    /// Schema errors kept per invalid document.
    pub max_errors: usize,
    /// Whether error messages show document values.
    pub show_values: bool,
    /// `--query`, as shown.
    pub query: Option<String>,
    /// `--nsInclude`.
    pub ns_include: Vec<String>,
    /// `--nsExclude`.
    pub ns_exclude: Vec<String>,
}

/// A collection a partition read, as its header records it.
#[derive(Debug, Clone, Deserialize)]
pub struct RecordedCollection {
    pub name: String,
    pub file: PathBuf,
}

/// What a merge reads of a partition's header (the header is written as JSON by `check`).
#[derive(Debug, Clone, Deserialize)]
pub struct PartialHeader {
    /// `partition` or `checkpoint`.
    pub kind: String,
    /// The source, as the report names it.
    pub source: Option<String>,
    /// When the partition started.
    pub created_at: Option<String>,
    pub settings: RunSettings,
    /// The database the source held.
    #[serde(default)]
    pub database: Option<String>,
    /// The collections the source held.
    #[serde(default)]
    pub collections: Vec<RecordedCollection>,
    /// Live drift per collection, read once per partition.
    #[serde(default)]
    pub drift: Option<serde_json::Map<String, Value>>,
}

/// One chunk, decoded.
#[derive(Debug)]
pub enum Chunk {
    Header(Value),
    Keys {
        collection: String,
        field: String,
        hashes: Vec<u128>,
        /// Records of the collection that could not be read.
        unreadable: u64,
    },
    Section(Value),
    Records(Vec<Examined>),
    SectionEnd(Value),
    /// What the run adds at its end (`{"read": …}`: where a live partition read), before
    /// [`Chunk::End`].
    Note(Value),
    End,
}

/// Writes a partial result. `create` writes to a temporary name that `finish` renames
/// into place; `append` continues a checkpoint in place.
pub struct PartialWriter {
    out: BufWriter<File>,
    path: PathBuf,
    tmp: Option<PathBuf>,
    buf: Vec<u8>,
    last_sync: std::time::Instant,
    /// Remediation samples written per class (only the first few of each are kept).
    samples: std::collections::HashMap<String, usize>,
    /// Records written in the open section.
    records: u64,
    /// Record chunks written by this process (for the crash tests' failpoints).
    chunks: u64,
}

/// Crash injection for the interruption tests, when `DOCSWEEP_FAILPOINT` is
/// `partial.after:N` (abort after the N-th chunk of records is written) or
/// `partial.torn:N` (abort half-way through writing it), like a SIGKILL.
fn failpoint(w: &mut PartialWriter, payload: &[u8]) {
    let Ok(v) = std::env::var("DOCSWEEP_FAILPOINT") else {
        return;
    };
    let at = |prefix: &str| {
        v.strip_prefix(prefix)
            .and_then(|n| n.parse::<u64>().ok())
            .is_some_and(|n| n == w.chunks)
    };
    if at("partial.torn:") {
        let len = (payload.len() as u32).to_le_bytes();
        let _ = w.out.write_all(&len);
        let _ = w.out.write_all(&[0u8; 8]);
        let _ = w.out.write_all(&payload[..payload.len() / 2]);
        let _ = w.out.flush();
        std::process::abort();
    }
    if at("partial.after:") {
        w.chunks = u64::MAX;
        let _ = w.chunk(payload);
        let _ = w.out.flush();
        std::process::abort();
    }
}

impl PartialWriter {
    /// Starts a new partial result at `path` (complete only after [`finish`]).
    pub fn create(path: &Path, header: &Value) -> Result<PartialWriter, PartialError> {
        let tmp = crate::os::temp_path(path);
        let file = crate::os::create(&tmp, crate::os::Access::Private).map_err(|e| io(&tmp, e))?;
        let mut w = PartialWriter::new(file, path, Some(tmp));
        w.out.write_all(MAGIC).map_err(|e| io(path, e))?;
        w.json(HEADER, header)?;
        Ok(w)
    }

    /// Starts a checkpoint at `path`, written in place.
    pub fn create_in_place(path: &Path, header: &Value) -> Result<PartialWriter, PartialError> {
        let file = crate::os::create(path, crate::os::Access::Private).map_err(|e| io(path, e))?;
        let mut w = PartialWriter::new(file, path, None);
        w.out.write_all(MAGIC).map_err(|e| io(path, e))?;
        w.json(HEADER, header)?;
        w.sync()?;
        Ok(w)
    }

    /// Continues a checkpoint after its first `valid_len` bytes (a torn tail is cut).
    pub fn append(
        path: &Path,
        valid_len: u64,
        records: u64,
    ) -> Result<PartialWriter, PartialError> {
        let mut file = OpenOptions::new()
            .write(true)
            .open(path)
            .map_err(|e| io(path, e))?;
        file.set_len(valid_len).map_err(|e| io(path, e))?;
        file.seek(std::io::SeekFrom::End(0))
            .map_err(|e| io(path, e))?;
        let mut w = PartialWriter::new(file, path, None);
        w.records = records;
        Ok(w)
    }

    fn new(file: File, path: &Path, tmp: Option<PathBuf>) -> PartialWriter {
        PartialWriter {
            out: BufWriter::with_capacity(1 << 20, file),
            path: path.to_path_buf(),
            tmp,
            buf: Vec::new(),
            last_sync: std::time::Instant::now(),
            samples: Default::default(),
            records: 0,
            chunks: 0,
        }
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Records written in the open section.
    pub fn records_in_section(&self) -> u64 {
        self.records
    }

    fn chunk(&mut self, payload: &[u8]) -> Result<(), PartialError> {
        let len = u32::try_from(payload.len())
            .ok()
            .filter(|&l| l <= MAX_CHUNK)
            .ok_or_else(|| io(&self.path, "a chunk is too large"))?;
        let sum = xxhash_rust::xxh3::xxh3_64(payload);
        let w = &mut self.out;
        w.write_all(&len.to_le_bytes())
            .and_then(|_| w.write_all(&sum.to_le_bytes()))
            .and_then(|_| w.write_all(payload))
            .map_err(|e| io(&self.path, e))
    }

    fn json(&mut self, kind: u8, v: &Value) -> Result<(), PartialError> {
        let mut payload = vec![kind];
        serde_json::to_writer(&mut payload, v).map_err(|e| io(&self.path, e))?;
        self.chunk(&payload)
    }

    pub fn keys(
        &mut self,
        collection: &str,
        field: &str,
        set: &HashSet128,
        unreadable: u64,
    ) -> Result<(), PartialError> {
        let mut p = vec![KEYS];
        put_str(&mut p, collection);
        put_str(&mut p, field);
        let mut hashes: Vec<u128> = set.iter().copied().collect();
        hashes.sort_unstable();
        put_u(&mut p, hashes.len() as u64);
        for h in hashes {
            p.extend_from_slice(&h.to_le_bytes());
        }
        // Absent when 0, as in the files written before it was recorded.
        if unreadable > 0 {
            put_u(&mut p, unreadable);
        }
        self.chunk(&p)
    }

    pub fn section(&mut self, meta: &Value) -> Result<(), PartialError> {
        self.samples.clear();
        self.records = 0;
        self.json(SECTION, meta)
    }

    /// Records a batch of examined documents.
    pub fn records(&mut self, examined: &[Examined]) -> Result<(), PartialError> {
        let mut p = std::mem::take(&mut self.buf);
        p.clear();
        p.push(RECORDS);
        put_u(&mut p, examined.len() as u64);
        for ex in examined {
            let keep_sample = match &ex.outcome {
                Ok(f) if f.sample.is_some() => {
                    let n = self.samples.entry(f.class.sample_key()).or_insert(0);
                    *n += 1;
                    *n <= super::SAMPLES
                }
                _ => false,
            };
            put_examined(&mut p, ex, keep_sample);
        }
        self.records += examined.len() as u64;
        self.chunks += 1;
        failpoint(self, &p);
        let r = self.chunk(&p);
        self.buf = p;
        r?;
        // A checkpoint is worth little if it lags far behind.
        if self.tmp.is_none() && self.last_sync.elapsed() > std::time::Duration::from_secs(5) {
            self.sync()?;
        }
        Ok(())
    }

    pub fn section_end(&mut self) -> Result<(), PartialError> {
        let records = self.records;
        self.json(SECTION_END, &serde_json::json!({ "records": records }))?;
        if self.tmp.is_none() {
            self.sync()?;
        }
        Ok(())
    }

    /// Flushes and syncs what is written.
    pub fn sync(&mut self) -> Result<(), PartialError> {
        self.out.flush().map_err(|e| io(&self.path, e))?;
        self.out
            .get_ref()
            .sync_data()
            .map_err(|e| io(&self.path, e))?;
        self.last_sync = std::time::Instant::now();
        Ok(())
    }

    /// Ends the file with a [`Chunk::Note`] and moves it into place.
    pub fn finish_with_note(mut self, note: &Value) -> Result<PathBuf, PartialError> {
        self.json(NOTE, note)?;
        self.finish()
    }

    /// Ends the file and (for [`create`]) moves it into place.
    pub fn finish(mut self) -> Result<PathBuf, PartialError> {
        self.chunk(&[END])?;
        self.sync()?;
        if let Some(tmp) = self.tmp.take() {
            crate::os::rename_into_place(&tmp, &self.path).map_err(|e| io(&self.path, e))?;
        }
        Ok(self.path.clone())
    }
}

impl Drop for PartialWriter {
    fn drop(&mut self) {
        // An unfinished partial result is never left under its real name.
        if let Some(tmp) = &self.tmp {
            let _ = std::fs::remove_file(tmp);
        }
    }
}

/// Reads a partial result chunk by chunk, verifying each.
pub struct PartialReader {
    input: BufReader<File>,
    path: PathBuf,
    /// Bytes of verified chunks so far.
    valid: u64,
    peeked: Option<Chunk>,
    pub header: Value,
}

impl PartialReader {
    pub fn open(path: &Path) -> Result<PartialReader, PartialError> {
        let file = File::open(path).map_err(|e| io(path, e))?;
        let mut input = BufReader::with_capacity(1 << 20, file);
        let mut magic = [0u8; 8];
        let bad = |m: &str| PartialError::Invalid {
            path: path.to_path_buf(),
            message: m.to_string(),
        };
        if input.read_exact(&mut magic).is_err() || &magic != MAGIC {
            return Err(bad(
                "not a docsweep partial result (written by `check --partition` or `--checkpoint`)",
            ));
        }
        let mut r = PartialReader {
            input,
            path: path.to_path_buf(),
            valid: MAGIC.len() as u64,
            peeked: None,
            header: Value::Null,
        };
        match r.next_chunk()? {
            Some(Chunk::Header(h)) => r.header = h,
            _ => return Err(bad("the header is missing or damaged")),
        }
        if r.header.get("format").and_then(Value::as_str) != Some(FORMAT) {
            return Err(bad(&format!(
                "format {} is not {FORMAT}",
                r.header.get("format").unwrap_or(&Value::Null)
            )));
        }
        Ok(r)
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Bytes of the verified chunks read so far.
    pub fn valid_len(&self) -> u64 {
        self.valid
    }

    fn invalid(&self, message: impl Into<String>) -> PartialError {
        PartialError::Invalid {
            path: self.path.clone(),
            message: message.into(),
        }
    }

    /// The next chunk; `None` at the end of the file (an `End` chunk is returned first
    /// when the file is complete). A torn or damaged chunk is an error.
    pub fn next_chunk(&mut self) -> Result<Option<Chunk>, PartialError> {
        if let Some(c) = self.peeked.take() {
            return Ok(Some(c));
        }
        let mut head = [0u8; 12];
        match read_full(&mut self.input, &mut head) {
            Ok(0) => return Ok(None),
            Ok(12) => {}
            Ok(_) => return Err(self.invalid(format!("torn chunk at byte {}", self.valid))),
            Err(e) => return Err(io(&self.path, e)),
        }
        let len = u32::from_le_bytes(head[..4].try_into().unwrap_or_default());
        let sum = u64::from_le_bytes(head[4..].try_into().unwrap_or_default());
        if len == 0 || len > MAX_CHUNK {
            return Err(self.invalid(format!("damaged chunk at byte {}", self.valid)));
        }
        let mut payload = vec![0u8; len as usize];
        match read_full(&mut self.input, &mut payload) {
            Ok(n) if n == payload.len() => {}
            Ok(_) => return Err(self.invalid(format!("torn chunk at byte {}", self.valid))),
            Err(e) => return Err(io(&self.path, e)),
        }
        if xxhash_rust::xxh3::xxh3_64(&payload) != sum {
            return Err(self.invalid(format!(
                "damaged chunk at byte {} (checksum mismatch)",
                self.valid
            )));
        }
        let at = self.valid;
        let chunk =
            decode_chunk(&payload).map_err(|m| self.invalid(format!("chunk at byte {at}: {m}")))?;
        self.valid += 12 + len as u64;
        Ok(Some(chunk))
    }

    /// The next chunk without consuming it.
    pub fn peek(&mut self) -> Result<Option<&Chunk>, PartialError> {
        if self.peeked.is_none() {
            self.peeked = self.next_chunk()?;
        }
        Ok(self.peeked.as_ref())
    }
}

fn read_full(r: &mut impl Read, buf: &mut [u8]) -> std::io::Result<usize> {
    let mut n = 0;
    while n < buf.len() {
        match r.read(&mut buf[n..]) {
            Ok(0) => break,
            Ok(k) => n += k,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(n)
}

/// Decodes one chunk's payload (after its checksum was verified). Public for fuzzing:
/// a payload with a valid checksum can still be crafted.
#[doc(hidden)]
pub fn decode_payload(p: &[u8]) -> Result<Chunk, String> {
    decode_chunk(p)
}

/// The payload of a chunk of records, as [`PartialWriter`] writes it (every sample kept).
#[doc(hidden)]
pub fn encode_records(examined: &[Examined]) -> Vec<u8> {
    let mut p = vec![RECORDS];
    put_u(&mut p, examined.len() as u64);
    for ex in examined {
        put_examined(&mut p, ex, true);
    }
    p
}

fn decode_chunk(p: &[u8]) -> Result<Chunk, String> {
    let (&kind, rest) = p.split_first().ok_or("empty chunk")?;
    let json = |b: &[u8]| serde_json::from_slice::<Value>(b).map_err(|e| e.to_string());
    Ok(match kind {
        HEADER => Chunk::Header(json(rest)?),
        SECTION => Chunk::Section(json(rest)?),
        SECTION_END => Chunk::SectionEnd(json(rest)?),
        NOTE => Chunk::Note(json(rest)?),
        END => Chunk::End,
        KEYS => {
            let mut d = Dec { b: rest, pos: 0 };
            let collection = d.str()?;
            let field = d.str()?;
            let n = d.len(16)?;
            let hashes = (0..n).map(|_| d.u128()).collect::<Result<_, _>>()?;
            let unreadable = if d.pos < d.b.len() { d.u()? } else { 0 };
            d.end()?;
            Chunk::Keys {
                collection,
                field,
                hashes,
                unreadable,
            }
        }
        RECORDS => {
            let mut d = Dec { b: rest, pos: 0 };
            let n = d.len(2)?;
            let mut out = Vec::with_capacity(n);
            for _ in 0..n {
                out.push(get_examined(&mut d)?);
            }
            d.end()?;
            Chunk::Records(out)
        }
        k => return Err(format!("unknown chunk kind {k}")),
    })
}

fn put_u(b: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        b.push((v as u8) | 0x80);
        v >>= 7;
    }
    b.push(v as u8);
}

fn put_str(b: &mut Vec<u8>, s: &str) {
    put_u(b, s.len() as u64);
    b.extend_from_slice(s.as_bytes());
}

fn put_hashes(b: &mut Vec<u8>, hs: &[u128]) {
    put_u(b, hs.len() as u64);
    for h in hs {
        b.extend_from_slice(&h.to_le_bytes());
    }
}

fn put_json(b: &mut Vec<u8>, v: Option<&Value>) {
    match v {
        None => b.push(0),
        Some(v) => {
            b.push(1);
            put_str(b, &v.to_string());
        }
    }
}

fn put_examined(b: &mut Vec<u8>, ex: &Examined, keep_sample: bool) {
    match ex.location {
        Location::Offset(o) => {
            b.push(0);
            put_u(b, o);
        }
        Location::Line { line, offset } => {
            b.push(1);
            put_u(b, line);
            put_u(b, offset);
        }
        Location::Live { index } => {
            b.push(2);
            put_u(b, index);
        }
        Location::Element {
            index,
            line,
            offset,
        } => {
            b.push(3);
            put_u(b, index);
            put_u(b, line);
            put_u(b, offset);
        }
    }
    let f = match &ex.outcome {
        Err(m) => {
            b.push(0);
            put_str(b, m);
            return;
        }
        Ok(f) => f,
    };
    b.push(1);
    put_json(b, f.id.as_ref().map(crate::value::StoredId::value).as_ref());
    match f.id_key {
        None => b.push(0),
        Some(k) => {
            b.push(1);
            b.extend_from_slice(&k.to_le_bytes());
        }
    }
    match f.class {
        Class::Valid => b.push(0),
        Class::OtherVersion(v) => {
            b.push(1);
            put_u(b, v as u64);
        }
        Class::Invalid => b.push(2),
    }
    put_u(b, f.errors.len() as u64);
    for e in &f.errors {
        put_str(b, &e.pointer);
        put_str(b, &e.keyword);
        put_str(b, &e.message);
    }
    put_u(b, f.depth as u64);
    b.push(f.oversize as u8);
    b.extend_from_slice(&f.fingerprint.content.to_le_bytes());
    b.extend_from_slice(&f.fingerprint.ordered.to_le_bytes());
    put_u(b, f.unique.len() as u64);
    for hs in &f.unique {
        put_hashes(b, hs);
    }
    put_u(b, f.refs.len() as u64);
    for (ri, hs) in &f.refs {
        put_u(b, *ri as u64);
        put_hashes(b, hs);
    }
    put_u(b, f.exported.len() as u64);
    for hs in &f.exported {
        put_hashes(b, hs);
    }
    match &f.fields {
        None => b.push(0),
        Some(fields) => {
            b.push(1);
            put_u(b, fields.len() as u64);
            for (name, h) in fields {
                put_str(b, name);
                b.extend_from_slice(&h.to_le_bytes());
            }
        }
    }
    let sample = f
        .sample
        .as_ref()
        .filter(|_| keep_sample)
        .and_then(Sample::value);
    put_json(b, sample.as_deref());
}

struct Dec<'a> {
    b: &'a [u8],
    pos: usize,
}

impl Dec<'_> {
    fn u8(&mut self) -> Result<u8, String> {
        let v = *self.b.get(self.pos).ok_or("truncated")?;
        self.pos += 1;
        Ok(v)
    }

    fn u(&mut self) -> Result<u64, String> {
        let mut v = 0u64;
        for shift in (0..64).step_by(7) {
            let byte = self.u8()?;
            v |= ((byte & 0x7f) as u64) << shift;
            if byte & 0x80 == 0 {
                return Ok(v);
            }
        }
        Err("bad number".into())
    }

    /// A count of items of at least `min` bytes each (bounded by what is left).
    fn len(&mut self, min: usize) -> Result<usize, String> {
        let n = self.u()?;
        if n.saturating_mul(min as u64) > (self.b.len() - self.pos) as u64 {
            return Err("count beyond the chunk".into());
        }
        Ok(n as usize)
    }

    fn bytes(&mut self, n: usize) -> Result<&[u8], String> {
        let end = self.pos.checked_add(n).filter(|&e| e <= self.b.len());
        let end = end.ok_or("truncated")?;
        let s = &self.b[self.pos..end];
        self.pos = end;
        Ok(s)
    }

    fn str(&mut self) -> Result<String, String> {
        let n = self.len(1)?;
        String::from_utf8(self.bytes(n)?.to_vec()).map_err(|_| "invalid UTF-8".to_string())
    }

    fn u128(&mut self) -> Result<u128, String> {
        let b: [u8; 16] = self.bytes(16)?.try_into().map_err(|_| "truncated")?;
        Ok(u128::from_le_bytes(b))
    }

    fn hashes(&mut self) -> Result<Vec<u128>, String> {
        let n = self.len(16)?;
        (0..n).map(|_| self.u128()).collect()
    }

    fn json(&mut self) -> Result<Option<Value>, String> {
        match self.u8()? {
            0 => Ok(None),
            1 => {
                let s = self.str()?;
                serde_json::from_str(&s)
                    .map(Some)
                    .map_err(|e| e.to_string())
            }
            t => Err(format!("bad tag {t}")),
        }
    }

    fn end(&self) -> Result<(), String> {
        if self.pos == self.b.len() {
            Ok(())
        } else {
            Err("trailing bytes".into())
        }
    }
}

fn get_examined(d: &mut Dec<'_>) -> Result<Examined, String> {
    let location = match d.u8()? {
        0 => Location::Offset(d.u()?),
        1 => Location::Line {
            line: d.u()?,
            offset: d.u()?,
        },
        2 => Location::Live { index: d.u()? },
        3 => Location::Element {
            index: d.u()?,
            line: d.u()?,
            offset: d.u()?,
        },
        t => return Err(format!("bad location tag {t}")),
    };
    let outcome = match d.u8()? {
        0 => Err(d.str()?),
        1 => Ok(Box::new(get_facts(d)?)),
        t => return Err(format!("bad outcome tag {t}")),
    };
    Ok(Examined { location, outcome })
}

fn get_facts(d: &mut Dec<'_>) -> Result<DocFacts, String> {
    let id = d.json()?.as_ref().map(crate::value::StoredId::of);
    let id_key = match d.u8()? {
        0 => None,
        1 => Some(d.u128()?),
        t => return Err(format!("bad tag {t}")),
    };
    let class = match d.u8()? {
        0 => Class::Valid,
        1 => Class::OtherVersion(u32::try_from(d.u()?).map_err(|_| "bad version")?),
        2 => Class::Invalid,
        t => return Err(format!("bad class tag {t}")),
    };
    let n = d.len(3)?;
    let mut errors = Vec::with_capacity(n);
    for _ in 0..n {
        errors.push(SchemaError {
            pointer: d.str()?,
            keyword: d.str()?,
            message: d.str()?,
        });
    }
    let depth = usize::try_from(d.u()?).map_err(|_| "bad depth")?;
    let oversize = d.u8()? != 0;
    let fingerprint = Fingerprint {
        content: d.u128()?,
        ordered: d.u128()?,
    };
    let n = d.len(1)?;
    let unique = (0..n).map(|_| d.hashes()).collect::<Result<_, _>>()?;
    let n = d.len(2)?;
    let mut refs = Vec::with_capacity(n);
    for _ in 0..n {
        let ri = usize::try_from(d.u()?).map_err(|_| "bad reference")?;
        refs.push((ri, d.hashes()?));
    }
    let n = d.len(1)?;
    let exported = (0..n).map(|_| d.hashes()).collect::<Result<_, _>>()?;
    let fields = match d.u8()? {
        0 => None,
        1 => {
            let n = d.len(17)?;
            let mut v = Vec::with_capacity(n);
            for _ in 0..n {
                v.push((d.str()?, d.u128()?));
            }
            Some(v)
        }
        t => return Err(format!("bad tag {t}")),
    };
    let sample = d.json()?.map(Sample::Decoded);
    Ok(DocFacts {
        id,
        id_key,
        class,
        errors,
        depth,
        oversize,
        fingerprint,
        unique,
        refs,
        exported,
        fields,
        sample,
    })
}

#[cfg(test)]
mod tests;
