//! `mongodump --archive` files, plain or gzipped (`--archive --gzip` gzips the whole stream).
//!
//! Layout, as the files written by mongodump show it (see
//! `tests/fixtures/mongodump-archives/`): the magic number `0x8199e26d` (little-endian), then
//! BSON documents. A prelude: a header (`version`, `server_version`, `tool_version`,
//! `concurrent_collections`), one metadata document per namespace (`db`, `collection`,
//! `metadata` as an Extended JSON string, `size`, `type` in newer versions), a terminator
//! (int32 `-1`). Then blocks: a namespace header `{db, collection, EOF: false, CRC: 0}`, the
//! namespace's documents, a terminator. Blocks of different namespaces interleave; each
//! namespace ends with a header `{EOF: true, CRC}` (and a terminator), where `CRC` is the
//! CRC-64 (ECMA-182 polynomial, reflected, as Go's `hash/crc64` with `crc64.ECMA`) of the
//! namespace's document bytes in order, stored as an int64. docsweep checks it.
//!
//! An archive is a sequential stream, so a collection is read by streaming the archive from
//! the start (decompressing again for gzip) and keeping only its own blocks: checking k
//! collections reads the archive k times, stopping at each collection's end-of-namespace
//! header. Nothing is held in memory beyond one batch.

use std::io::Read;
use std::path::{Path, PathBuf};
use std::sync::atomic::AtomicU64;
use std::sync::Arc;

use super::{
    dump, io_err, Batch, CollectionKind, CollectionSource, Encoding, Location, Record,
    RecordReader, Source, SourceError, SourceSpec, BATCH_BYTES, MAX_RECORD_BYTES,
};

/// The first four bytes of every archive: 0x8199e26d, little-endian.
pub const MAGIC: [u8; 4] = 0x8199_e26d_u32.to_le_bytes();

/// Databases mongodump writes that never hold user collections.
const SYSTEM_DBS: [&str; 3] = ["admin", "config", "local"];

/// One namespace as the prelude describes it.
#[derive(Debug, Clone)]
pub(super) struct Namespace {
    pub db: String,
    pub collection: String,
    /// The `metadata` JSON string (options, indexes, uuid …).
    pub metadata: String,
    /// `type` (mongodump 100.x): `collection`, `view` or `timeseries`.
    pub kind: Option<String>,
    /// Offset of its metadata document in the (uncompressed) stream.
    pub offset: u64,
}

impl Namespace {
    /// A time-series collection: mongodump writes its buckets (`system.buckets.NAME`),
    /// not its measurements.
    fn is_timeseries(&self) -> bool {
        self.kind.as_deref() == Some("timeseries") || self.has_option("timeseries")
    }

    /// A view: mongodump writes its definition, no documents (a dump directory has only
    /// its `.metadata.json`, so it is no collection there either).
    fn is_view(&self) -> bool {
        self.kind.as_deref() == Some("view") || self.has_option("viewOn")
    }

    fn has_option(&self, key: &str) -> bool {
        serde_json::from_str::<serde_json::Value>(&self.metadata)
            .ok()
            .is_some_and(|m| m["options"].get(key).is_some())
    }
}

/// What the prelude of an archive says.
#[derive(Debug, Clone)]
pub(super) struct Prelude {
    pub gzip: bool,
    pub namespaces: Vec<Namespace>,
}

/// Is the file gzip-compressed (starts with the gzip magic bytes)?
fn is_gzip(path: &Path) -> Result<bool, SourceError> {
    let mut f = std::fs::File::open(path).map_err(|e| io_err(path, e))?;
    let mut magic = [0u8; 2];
    let mut got = 0;
    while got < 2 {
        match f.read(&mut magic[got..]) {
            Ok(0) => break,
            Ok(n) => got += n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(io_err(path, e)),
        }
    }
    Ok(got == 2 && magic == [0x1f, 0x8b])
}

fn format_err(path: &Path, message: impl Into<String>) -> SourceError {
    SourceError::Format {
        path: path.to_path_buf(),
        message: message.into(),
    }
}

/// A sequential reader of an archive's length-prefixed frames, counting the offset in the
/// uncompressed stream.
struct Frames {
    input: std::io::BufReader<Box<dyn Read + Send>>,
    offset: u64,
    path: PathBuf,
    /// The gzip stream ended early (reported as truncation, not as a read failure).
    cut_gzip: bool,
}

/// The next frame's length prefix.
enum Next {
    /// A clean end of the stream.
    End,
    /// The int32 `-1` that ends the prelude and every block.
    Terminator,
    /// A document of this many bytes (prefix included).
    Doc(usize),
    /// The stream ends inside a length prefix.
    Short(usize),
    /// A length that no document has: the framing is lost.
    BadLength(i32),
}

impl Frames {
    fn new(stream: Box<dyn Read + Send>, path: &Path) -> Frames {
        Frames {
            input: std::io::BufReader::with_capacity(256 << 10, stream),
            offset: 0,
            path: path.to_path_buf(),
            cut_gzip: false,
        }
    }

    fn open(path: &Path, gzip: bool) -> Result<(Frames, Arc<AtomicU64>), SourceError> {
        let (stream, count) = dump::open_stream(path, gzip)?;
        Ok((Frames::new(stream, path), count))
    }

    /// Fills `buf` unless the stream ends first; returns how much was read.
    fn read_up_to(&mut self, buf: &mut [u8]) -> Result<usize, SourceError> {
        let mut got = 0;
        while got < buf.len() {
            match self.input.read(&mut buf[got..]) {
                Ok(0) => break,
                Ok(n) => got += n,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                // flate2 reports a gzip stream cut short as UnexpectedEof: that is a truncated
                // archive, reported like a plain one.
                Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => {
                    self.cut_gzip = true;
                    break;
                }
                Err(e) => {
                    return Err(io_err(&self.path, format!("read failed: {e}")));
                }
            }
        }
        self.offset += got as u64;
        Ok(got)
    }

    /// Reads and checks the magic number; false when the stream does not start with it.
    fn magic(&mut self) -> Result<bool, SourceError> {
        let mut b = [0u8; 4];
        let got = self.read_up_to(&mut b);
        // A file with gzip magic bytes but no valid gzip stream is not an archive either.
        Ok(matches!(got, Ok(4)) && b == MAGIC)
    }

    fn next_len(&mut self) -> Result<Next, SourceError> {
        let mut b = [0u8; 4];
        let n = self.read_up_to(&mut b)?;
        Ok(match n {
            0 => Next::End,
            1..=3 => Next::Short(n),
            _ => match i32::from_le_bytes(b) {
                -1 => Next::Terminator,
                l if (5..=MAX_RECORD_BYTES as i64).contains(&(l as i64)) => Next::Doc(l as usize),
                l => Next::BadLength(l),
            },
        })
    }

    /// Appends the document of `len` bytes whose prefix was just read to `into`; returns
    /// how many of its bytes were missing at the end of the stream (0 when complete). An
    /// incomplete document is removed from `into`.
    fn read_doc(&mut self, len: usize, into: &mut Vec<u8>) -> Result<usize, SourceError> {
        let start = into.len();
        into.extend_from_slice(&(len as i32).to_le_bytes());
        into.resize(start + len, 0);
        let got = self.read_up_to(&mut into[start + 4..])?;
        if got < len - 4 {
            into.truncate(start);
            return Ok(len - 4 - got);
        }
        Ok(0)
    }

    /// What a truncated stream is called in messages.
    fn truncated(&self) -> &'static str {
        if self.cut_gzip {
            "the gzip stream ends early"
        } else {
            "the file ends early"
        }
    }

    /// Reads the magic number and the prelude.
    fn prelude(&mut self) -> Result<Vec<Namespace>, SourceError> {
        let path = self.path.clone();
        if !self.magic()? {
            return Err(format_err(
                &path,
                "not a mongodump archive: it does not start with the archive magic number \
                 0x8199e26d (a dump source is a mongodump directory, a database folder in it, \
                 or a file written by mongodump --archive [--gzip])",
            ));
        }
        let mut namespaces = Vec::new();
        let mut doc = Vec::new();
        let mut first = true;
        loop {
            let at = self.offset;
            let len = match self.next_len()? {
                Next::Terminator if !first => return Ok(namespaces),
                Next::Doc(l) => l,
                Next::End | Next::Short(_) => {
                    return Err(io_err(
                        &path,
                        format!(
                            "truncated archive: {} inside the prelude (byte offset {at})",
                            self.truncated()
                        ),
                    ))
                }
                Next::Terminator | Next::BadLength(_) => {
                    return Err(format_err(
                        &path,
                        format!("not a mongodump archive: no prelude header at byte offset {at}"),
                    ))
                }
            };
            doc.clear();
            if self.read_doc(len, &mut doc)? > 0 {
                return Err(io_err(
                    &path,
                    format!(
                        "truncated archive: {} inside the prelude (byte offset {at})",
                        self.truncated()
                    ),
                ));
            }
            let bad = |what: &str| {
                format_err(
                    &path,
                    format!("not a mongodump archive: {what} at byte offset {at}"),
                )
            };
            let d = bson::RawDocument::from_bytes(&doc)
                .map_err(|e| bad(&format!("unreadable prelude document ({e})")))?;
            if first {
                if d.get_str("version").is_err() {
                    return Err(bad("the prelude header has no `version`"));
                }
                first = false;
                continue;
            }
            let field = |k: &str| {
                d.get_str(k)
                    .map(str::to_string)
                    .map_err(|_| bad(&format!("a collection's metadata has no string `{k}`")))
            };
            namespaces.push(Namespace {
                db: field("db")?,
                collection: field("collection")?,
                metadata: d.get_str("metadata").unwrap_or_default().to_string(),
                kind: d.get_str("type").ok().map(str::to_string),
                offset: at,
            });
        }
    }
}

/// Reads the prelude of the archive at `path`.
pub(super) fn read_prelude(path: &Path) -> Result<Prelude, SourceError> {
    if path.is_dir() {
        return Err(format_err(
            path,
            "is a directory: an archive: source is a file written by mongodump --archive",
        ));
    }
    if !path.exists() {
        return Err(io_err(path, "no such file"));
    }
    let gzip = is_gzip(path)?;
    let (mut frames, _) = Frames::open(path, gzip)?;
    let namespaces = frames.prelude()?;
    Ok(Prelude { gzip, namespaces })
}

/// The namespaces `(db, collection)` an archive's prelude lists, read from any stream of the
/// uncompressed archive (`name` is used in messages). For fuzzing and tools; sources use
/// `archive:PATH`.
pub fn namespaces(
    input: Box<dyn Read + Send>,
    name: &Path,
) -> Result<Vec<(String, String)>, SourceError> {
    let mut frames = Frames::new(input, name);
    Ok(frames
        .prelude()?
        .into_iter()
        .map(|n| (n.db, n.collection))
        .collect())
}

/// A reader of the records of namespace `db.collection` out of any stream of the
/// uncompressed archive, as `archive:PATH` reads them (positions are uncompressed offsets).
pub fn records(
    input: Box<dyn Read + Send>,
    name: &Path,
    db: &str,
    collection: &str,
) -> Box<dyn RecordReader> {
    Box::new(ArchiveReader {
        frames: Frames::new(input, name),
        count: None,
        db: db.to_string(),
        collection: collection.to_string(),
        state: State::Start,
        crc: Crc64::new(),
        pending: None,
    })
}

/// The oplog namespace (`--oplog`: db empty, collection `oplog`) and system collections
/// (`system.*`: views, versions, time-series buckets …) hold no user documents.
fn is_user(ns: &Namespace) -> bool {
    !ns.db.is_empty() && ns.collection != "oplog" && !ns.collection.starts_with("system.")
}

/// Opens an archive as a source: one database (chosen as in a dump root), its collections
/// from the prelude.
pub(super) fn open(
    spec: &SourceSpec,
    path: &Path,
    db: Option<&str>,
) -> Result<Source, SourceError> {
    let prelude = read_prelude(path)?;
    let mut dbs: Vec<&str> = prelude
        .namespaces
        .iter()
        .filter(|n| is_user(n))
        .map(|n| n.db.as_str())
        .collect();
    dbs.sort_unstable();
    dbs.dedup();
    let chosen = match db {
        Some(want) => {
            if !prelude.namespaces.iter().any(|n| n.db == want) {
                return Err(io_err(
                    path,
                    format!("holds no collections of database {want:?}"),
                ));
            }
            want.to_string()
        }
        None => {
            let user: Vec<&str> = dbs
                .iter()
                .copied()
                .filter(|d| !SYSTEM_DBS.contains(d))
                .collect();
            match user.as_slice() {
                [] => {
                    return Err(io_err(
                        path,
                        "the archive holds no user collections (only system ones); choose a database with --db",
                    ))
                }
                [one] => one.to_string(),
                several => {
                    return Err(io_err(
                        path,
                        format!(
                            "holds several databases ({}); choose one with --db",
                            several.join(", ")
                        ),
                    ))
                }
            }
        }
    };
    let size = std::fs::metadata(path).map_err(|e| io_err(path, e))?.len();
    let mut namespaces: Vec<&Namespace> = prelude
        .namespaces
        .iter()
        .filter(|n| n.db == chosen && is_user(n) && !n.is_view())
        .collect();
    namespaces.sort_by(|a, b| a.collection.cmp(&b.collection));
    namespaces.dedup_by(|a, b| a.collection == b.collection);
    let collections = namespaces
        .into_iter()
        .map(|n| CollectionSource {
            name: n.collection.clone(),
            file: path.to_path_buf(),
            size,
            kind: CollectionKind::Archive(Box::new(ArchiveCollection {
                gzip: prelude.gzip,
                db: n.db.clone(),
                timeseries: n.is_timeseries(),
                metadata: n.metadata.clone(),
                metadata_offset: n.offset,
            })),
        })
        .collect();
    Ok(Source {
        spec: spec.clone(),
        database: Some(chosen),
        collections,
        partition: None,
        overlay: None,
    })
}

/// How to read one collection of an archive.
#[derive(Debug, Clone)]
pub(super) struct ArchiveCollection {
    gzip: bool,
    db: String,
    /// A time-series collection: its documents are not in the archive (see [`reader`]).
    timeseries: bool,
    metadata: String,
    metadata_offset: u64,
}

/// A collection's metadata as the prelude holds it (a dump's `.metadata.json`).
pub(super) fn metadata(c: &ArchiveCollection) -> &str {
    &c.metadata
}

/// The `indexes` of a collection's metadata.
pub(super) fn indexes(
    path: &Path,
    name: &str,
    c: &ArchiveCollection,
) -> Result<Vec<crate::contract::IndexSpec>, SourceError> {
    let what = format!("metadata of {}.{name}", c.db);
    let v: serde_json::Value = serde_json::from_str(&c.metadata)
        .map_err(|e| io_err(path, format!("{what}: not valid JSON: {e}")))?;
    dump::indexes_from_json(path, &what, &v)
}

/// A reader over one collection's records.
pub(super) fn reader(
    path: &Path,
    name: &str,
    c: &ArchiveCollection,
) -> Result<Box<dyn RecordReader>, SourceError> {
    let (frames, count) = Frames::open(path, c.gzip)?;
    let mut r = ArchiveReader {
        frames,
        count: Some(count),
        db: c.db.clone(),
        collection: name.to_string(),
        state: State::Start,
        crc: Crc64::new(),
        pending: None,
    };
    if c.timeseries {
        // mongodump writes a time-series collection as its buckets (system.buckets.NAME):
        // compressed columns, not the measurements a contract describes. Checking the
        // buckets against it would report nonsense, and calling the collection empty or
        // absent would hide it; so it is one unreadable record that says why.
        r.state = State::Done;
        r.pending = Some((
            c.metadata_offset,
            format!(
                "{}.{name} is a time-series collection: the archive holds its buckets \
                 (system.buckets.{name}), not its measurements, and docsweep does not \
                 unpack buckets; check it live (mongodb://…) instead",
                c.db
            ),
        ));
    }
    Ok(Box::new(r))
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    /// Before the magic number and prelude.
    Start,
    /// Expecting a namespace header (or the end).
    Header,
    /// Inside a block (up to its terminator); `ours` when it is this collection's. An
    /// end-of-namespace header of another collection opens an (empty) block too.
    Block { ours: bool },
    /// Finished (the collection's end-of-namespace header was read, or the input failed).
    Done,
}

/// Streams one collection's documents out of the archive's interleaved blocks.
struct ArchiveReader {
    frames: Frames,
    /// Bytes read from the file (compressed bytes for gzip); `None` for an in-memory stream.
    count: Option<Arc<AtomicU64>>,
    db: String,
    collection: String,
    state: State,
    crc: Crc64,
    /// A broken record to report next: its offset and message.
    pending: Option<(u64, String)>,
}

impl ArchiveReader {
    fn ns(&self) -> String {
        format!("{}.{}", self.db, self.collection)
    }

    /// The input ends (or can no longer be framed) before this collection's end header.
    fn incomplete(&mut self, at: u64, why: String) {
        self.state = State::Done;
        self.pending = Some((
            at,
            format!(
                "{why}: no more of {} can be read (its end-of-collection header was not \
                 reached), so its later documents, if any, are missing",
                self.ns()
            ),
        ));
    }

    /// Handles a namespace header document.
    fn header(&mut self, at: u64, bytes: &[u8]) {
        let parsed = bson::RawDocument::from_bytes(bytes).ok().and_then(|d| {
            Some((
                d.get_str("db").ok()?.to_string(),
                d.get_str("collection").ok()?.to_string(),
                d.get_bool("EOF").ok()?,
                d.get_i64("CRC").ok(),
            ))
        });
        let Some((db, coll, eof, crc)) = parsed else {
            self.incomplete(
                at,
                format!("expected a namespace header at byte offset {at}, found another document"),
            );
            return;
        };
        let ours = db == self.db && coll == self.collection;
        if ours && eof {
            self.state = State::Done;
            let computed = self.crc.value();
            match crc {
                Some(stored) if stored as u64 == computed => {}
                Some(stored) => {
                    self.pending = Some((
                        at,
                        format!(
                            "CRC mismatch for {}: the end-of-collection header says {:#018x}, \
                             the documents read give {computed:#018x}; the archive is corrupt",
                            self.ns(),
                            stored as u64
                        ),
                    ));
                }
                None => {
                    self.pending = Some((
                        at,
                        format!("the end-of-collection header of {} has no CRC", self.ns()),
                    ));
                }
            }
            return;
        }
        self.state = State::Block { ours };
    }

    fn push_pending(&mut self, batch: &mut Batch) {
        if let Some((at, msg)) = self.pending.take() {
            let n = batch.data.len();
            batch.records.push(Record {
                start: n,
                end: n,
                location: Location::Offset(at),
                broken: Some(msg),
            });
        }
    }
}

impl RecordReader for ArchiveReader {
    fn encoding(&self) -> Encoding {
        Encoding::Bson
    }

    fn next_batch(&mut self, max_records: usize) -> Result<Option<Batch>, SourceError> {
        let mut batch = Batch::with_capacity();
        let mut skip = Vec::new();
        while batch.data.len() < BATCH_BYTES && batch.records.len() < max_records.max(1) {
            if self.pending.is_some() {
                self.push_pending(&mut batch);
                continue;
            }
            match self.state {
                State::Done => break,
                State::Start => {
                    // Checked when the source was opened; a file changed since is a failure.
                    self.frames.prelude()?;
                    self.state = State::Header;
                    continue;
                }
                _ => {}
            }
            let at = self.frames.offset;
            let len = match self.frames.next_len()? {
                Next::End => {
                    self.incomplete(
                        at,
                        format!("{} at byte offset {at}", self.frames.truncated()),
                    );
                    continue;
                }
                Next::Short(n) => {
                    self.incomplete(
                        at,
                        format!("truncated length prefix: {n} byte(s) left at byte offset {at}"),
                    );
                    continue;
                }
                Next::BadLength(l) => {
                    self.incomplete(
                        at,
                        format!(
                            "invalid length prefix {l} at byte offset {at} (must be 5..={MAX_RECORD_BYTES} or -1): the rest of the archive cannot be framed"
                        ),
                    );
                    continue;
                }
                Next::Terminator => {
                    match self.state {
                        State::Block { .. } => self.state = State::Header,
                        _ => self.incomplete(
                            at,
                            format!(
                                "a block terminator without a namespace header at byte offset {at}"
                            ),
                        ),
                    }
                    continue;
                }
                Next::Doc(l) => l,
            };
            match self.state {
                State::Block { ours: true } => {
                    let start = batch.data.len();
                    let missing = self.frames.read_doc(len, &mut batch.data)?;
                    if missing > 0 {
                        self.incomplete(
                            at,
                            format!(
                                "truncated record: length prefix says {len} bytes but {missing} are missing ({})",
                                self.frames.truncated()
                            ),
                        );
                        continue;
                    }
                    let bytes = &batch.data[start..];
                    self.crc.update(bytes);
                    let broken = (bytes[len - 1] != 0)
                        .then(|| format!("record of {len} bytes does not end with a NUL byte"));
                    if broken.is_some() {
                        batch.data.truncate(start);
                    }
                    let end = batch.data.len();
                    batch.records.push(Record {
                        start: if broken.is_some() { end } else { start },
                        end,
                        location: Location::Offset(at),
                        broken,
                    });
                }
                State::Block { ours: false } => {
                    skip.clear();
                    if self.frames.read_doc(len, &mut skip)? > 0 {
                        self.incomplete(
                            at,
                            format!(
                                "truncated record of another collection at byte offset {at} ({})",
                                self.frames.truncated()
                            ),
                        );
                    }
                }
                _ => {
                    skip.clear();
                    if self.frames.read_doc(len, &mut skip)? > 0 {
                        self.incomplete(
                            at,
                            format!(
                                "truncated namespace header at byte offset {at} ({})",
                                self.frames.truncated()
                            ),
                        );
                        continue;
                    }
                    let header = std::mem::take(&mut skip);
                    self.header(at, &header);
                    skip = header;
                }
            }
        }
        Ok((!batch.records.is_empty()).then_some(batch))
    }

    fn position(&self) -> u64 {
        match &self.count {
            Some(c) => c.load(std::sync::atomic::Ordering::Relaxed),
            None => self.frames.offset,
        }
    }
}

/// CRC-64 as Go's `hash/crc64` with the `ECMA` table (reflected ECMA-182 polynomial,
/// inverted in and out; also known as CRC-64/XZ), which mongodump uses for the `CRC`
/// of each namespace.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Crc64(u64);

const CRC64_TABLE: [u64; 256] = {
    let mut t = [0u64; 256];
    let mut i = 0;
    while i < 256 {
        let mut c = i as u64;
        let mut k = 0;
        while k < 8 {
            c = if c & 1 == 1 {
                (c >> 1) ^ 0xC96C_5795_D787_0F42
            } else {
                c >> 1
            };
            k += 1;
        }
        t[i] = c;
        i += 1;
    }
    t
};

impl Crc64 {
    pub(crate) fn new() -> Crc64 {
        Crc64(0)
    }

    pub(crate) fn update(&mut self, bytes: &[u8]) {
        let mut c = !self.0;
        for &b in bytes {
            c = CRC64_TABLE[((c ^ b as u64) & 0xff) as usize] ^ (c >> 8);
        }
        self.0 = !c;
    }

    pub(crate) fn value(&self) -> u64 {
        self.0
    }
}

#[cfg(test)]
mod tests;
