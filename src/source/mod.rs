//! Sources of documents: `dump:PATH` (mongodump), `archive:PATH` (mongodump --archive),
//! `export:PATH` (mongoexport) and `mongodb://…`. Each yields a collection's raw records in batches, with where each
//! record came from, so that decoding can run in parallel downstream.

pub mod archive;
mod bson_reader;
mod dump;
mod export;
mod filter;
mod json_reader;
mod live;
mod partition;

use std::fmt;
use std::path::{Path, PathBuf};

use crate::contract::IndexSpec;

pub use bson_reader::{BsonReader, MAX_RECORD_BYTES};
pub use filter::{glob, NsFilter, Query};
pub use json_reader::JsonReader;
pub use live::{read_preference, Live, LiveOptions};
pub use partition::{Bound, Partition, Range};

/// A source failed: unreachable, unreadable or not what it claims to be.
#[derive(Debug, thiserror::Error)]
pub enum SourceError {
    #[error("{path}: {message}")]
    Io { path: PathBuf, message: String },
    /// The input is not what the source string says (not an archive, say): a usage
    /// error (exit 2), not a failing source.
    #[error("{path}: {message}")]
    Format { path: PathBuf, message: String },
    #[error("{0}")]
    Other(String),
}

impl SourceError {
    /// Is this the user's mistake (a file that is not what the source string says) rather
    /// than a source that failed?
    pub fn is_usage(&self) -> bool {
        matches!(self, SourceError::Format { .. })
    }
}

/// A source string is malformed (a usage error, exit 2).
#[derive(Debug, thiserror::Error)]
#[error("invalid source {given:?}: {message}")]
pub struct SourceSpecError {
    pub given: String,
    pub message: String,
}

/// A parsed source string.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SourceSpec {
    /// A mongodump directory, or (a file) a mongodump archive.
    Dump(PathBuf),
    /// A `mongodump --archive` file, plain or gzipped.
    Archive(PathBuf),
    Export(PathBuf),
    /// A live deployment; the URI is kept verbatim and only shown redacted.
    Mongo(String),
}

impl SourceSpec {
    pub fn parse(s: &str) -> Result<SourceSpec, SourceSpecError> {
        let err = |m: &str| SourceSpecError {
            given: redact_uri(s),
            message: m.to_string(),
        };
        if let Some(p) = s.strip_prefix("dump:") {
            if p.is_empty() {
                return Err(err("dump: needs a path, e.g. dump:./dump"));
            }
            Ok(SourceSpec::Dump(PathBuf::from(p)))
        } else if let Some(p) = s.strip_prefix("archive:") {
            if p.is_empty() {
                return Err(err("archive: needs a path, e.g. archive:./shop.archive"));
            }
            Ok(SourceSpec::Archive(PathBuf::from(p)))
        } else if let Some(p) = s.strip_prefix("export:") {
            if p.is_empty() {
                return Err(err("export: needs a path, e.g. export:./export"));
            }
            Ok(SourceSpec::Export(PathBuf::from(p)))
        } else if s.starts_with("mongodb://") || s.starts_with("mongodb+srv://") {
            Ok(SourceSpec::Mongo(s.to_string()))
        } else {
            Err(err(&format!(
                "expected dump:PATH, archive:PATH, export:PATH, mongodb://… or mongodb+srv://…{}",
                did_you_mean(s)
            )))
        }
    }

    /// Does it name a `mongodump --archive` file (`archive:PATH`, or `dump:PATH` of a file)?
    pub fn is_archive(&self) -> bool {
        match self {
            SourceSpec::Archive(_) => true,
            SourceSpec::Dump(p) => p.is_file(),
            _ => false,
        }
    }

    /// Resolves relative paths against `base` (the directory of docsweep.toml).
    pub fn relative_to(self, base: &Path) -> SourceSpec {
        match self {
            SourceSpec::Dump(p) if p.is_relative() => SourceSpec::Dump(base.join(p)),
            SourceSpec::Archive(p) if p.is_relative() => SourceSpec::Archive(base.join(p)),
            SourceSpec::Export(p) if p.is_relative() => SourceSpec::Export(base.join(p)),
            other => other,
        }
    }
}

/// A hint for a bare path that looks like a source: "; did you mean dump:PATH?".
fn did_you_mean(s: &str) -> String {
    let p = Path::new(s);
    let is_json = |p: &Path| {
        p.extension()
            .and_then(|e| e.to_str())
            .is_some_and(|e| matches!(e, "json" | "ndjson" | "jsonl"))
    };
    let guess = if p.is_dir() {
        let any = |f: &dyn Fn(&Path) -> bool| {
            std::fs::read_dir(p).is_ok_and(|d| d.flatten().any(|e| f(&e.path())))
        };
        // A dump root holds database folders; a database folder holds .bson files.
        if any(&|q: &Path| q.is_dir() || q.to_string_lossy().contains(".bson")) {
            Some("dump")
        } else if any(&|q: &Path| is_json(q) || q.to_string_lossy().ends_with(".json.gz")) {
            Some("export")
        } else {
            None
        }
    } else if p.is_file() {
        Some(if is_json(p) { "export" } else { "archive" })
    } else {
        None
    };
    guess.map_or(String::new(), |kind| format!("; did you mean {kind}:{s}?"))
}

impl fmt::Display for SourceSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SourceSpec::Dump(p) => write!(f, "dump:{}", p.display()),
            SourceSpec::Archive(p) => write!(f, "archive:{}", p.display()),
            SourceSpec::Export(p) => write!(f, "export:{}", p.display()),
            SourceSpec::Mongo(uri) => f.write_str(&redact_uri(uri)),
        }
    }
}

/// Replaces the password in a `mongodb://user:pass@host` URI with `****`.
///
/// Passwords should be percent-encoded, but a careless one may hold `/`, `?` or `@`; the
/// user info is taken to end at the last `@` that is followed by a host list and preceded
/// by `user:`, so such passwords are still masked (over-masking is the safe failure).
pub fn redact_uri(s: &str) -> String {
    match password_span(s) {
        Some(r) => format!("{}****{}", &s[..r.start], &s[r.end..]),
        None => s.to_string(),
    }
}

/// The byte range of the password in a connection string, if it has one.
pub fn password_span(s: &str) -> Option<std::ops::Range<usize>> {
    let scheme_end = s.find("://")? + 3;
    let rest = &s[scheme_end..];
    let is_host_char = |c: char| c.is_ascii_alphanumeric() || ".-_:[],%".contains(c);
    let at = rest
        .char_indices()
        .rev()
        .filter(|&(_, c)| c == '@')
        .map(|(i, _)| i)
        .find(|&at| {
            let after = &rest[at + 1..];
            let host = &after[..after.find(['/', '?']).unwrap_or(after.len())];
            let before = &rest[..at];
            !host.is_empty()
                && host.chars().all(is_host_char)
                && (before.contains(':') || !before.contains(['/', '?']))
        })?;
    let colon = rest[..at].find(':')?;
    Some(scheme_end + colon + 1..scheme_end + at)
}

/// Where a record was read from, for messages and violations.csv.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Location {
    /// Byte offset in the (uncompressed) BSON stream: a `.bson` file, or a whole archive.
    Offset(u64),
    /// 1-based line of an NDJSON file, with the byte offset where it starts.
    Line { line: u64, offset: u64 },
    /// 0-based position in a live cursor (sorted by `_id`).
    Live { index: u64 },
    /// 0-based element of a JSON array file, with its line and byte offset.
    Element { index: u64, line: u64, offset: u64 },
}

impl fmt::Display for Location {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Location::Offset(o) => write!(f, "byte offset {o}"),
            Location::Line { line, offset } => write!(f, "line {line} (byte offset {offset})"),
            Location::Live { index } => write!(f, "document {index} of the cursor"),
            Location::Element { index, line, .. } => {
                write!(f, "array element {index} (line {line})")
            }
        }
    }
}

/// How a record's bytes are encoded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Encoding {
    Bson,
    Json,
}

/// One record of a batch: a range of the batch buffer, or a piece of the input that
/// could not even be split into a record.
#[derive(Debug, Clone)]
pub struct Record {
    pub start: usize,
    pub end: usize,
    pub location: Location,
    /// Set when the reader already knows this record is unreadable.
    pub broken: Option<String>,
}

/// A batch of raw records sharing one buffer.
#[derive(Debug, Default)]
pub struct Batch {
    pub data: Vec<u8>,
    pub records: Vec<Record>,
}

/// Buffers of finished batches, reused by the next ones: a fresh 1 MiB buffer per batch
/// costs a new mapping and the kernel zeroing its pages, over and over.
static SPARE_BUFFERS: std::sync::Mutex<Vec<(Vec<u8>, Vec<Record>)>> =
    std::sync::Mutex::new(Vec::new());
/// Spare buffers kept at most: more than the batches in flight at once (the reader's
/// hand-off queue plus the batches being examined).
const SPARE_LIMIT: usize = 12;
/// Room a batch buffer is allocated with, so filling a batch never reallocates.
const BATCH_CAPACITY: usize = BATCH_BYTES + (64 << 10);

impl Batch {
    /// An empty batch with room for a full one, so filling it never reallocates: a
    /// finished batch's buffers when one is spare, else new ones.
    pub fn with_capacity() -> Batch {
        let spare = SPARE_BUFFERS.lock().ok().and_then(|mut s| s.pop());
        let (data, records) =
            spare.unwrap_or_else(|| (Vec::with_capacity(BATCH_CAPACITY), Vec::with_capacity(256)));
        Batch { data, records }
    }

    pub fn bytes(&self, r: &Record) -> &[u8] {
        &self.data[r.start..r.end]
    }

    pub fn len(&self) -> usize {
        self.records.len()
    }

    pub fn is_empty(&self) -> bool {
        self.records.is_empty()
    }
}

impl Drop for Batch {
    /// Hands the buffers back for the next batch (buffers that grew past a batch's usual
    /// size, for an oversized record, are freed instead).
    fn drop(&mut self) {
        if self.data.capacity() != BATCH_CAPACITY || self.records.capacity() > 4096 {
            return;
        }
        let (mut data, mut records) = (
            std::mem::take(&mut self.data),
            std::mem::take(&mut self.records),
        );
        data.clear();
        records.clear();
        if let Ok(mut spare) = SPARE_BUFFERS.lock() {
            if spare.len() < SPARE_LIMIT {
                spare.push((data, records));
            }
        }
    }
}

/// Streams one collection's raw records.
pub trait RecordReader: Send {
    fn encoding(&self) -> Encoding;
    /// The next batch, or `None` at the end. An `Err` means the source itself failed.
    /// Batches end after about [`BATCH_BYTES`] or `max_records` records.
    fn next_batch(&mut self, max_records: usize) -> Result<Option<Batch>, SourceError>;
    /// Bytes of input consumed so far (compressed bytes for gzip files).
    fn position(&self) -> u64;
}

/// Target size of one batch: big enough to amortise the hand-off between threads,
/// small enough to keep memory flat.
pub const BATCH_BYTES: usize = 1 << 20;
pub const BATCH_RECORDS: usize = 4096;

/// One collection in an opened source.
#[derive(Debug, Clone)]
pub struct CollectionSource {
    pub name: String,
    /// The file it is read from (for messages).
    pub file: PathBuf,
    /// Input size in bytes, for progress.
    pub size: u64,
    kind: CollectionKind,
}

impl CollectionSource {
    /// The live connection this collection is read through (`None` for dumps and exports).
    pub fn live(&self) -> Option<&Live> {
        match &self.kind {
            CollectionKind::Live(l) => Some(l),
            _ => None,
        }
    }
}

#[derive(Debug, Clone)]
enum CollectionKind {
    Dump {
        gzip: bool,
        metadata: Option<PathBuf>,
    },
    /// One collection of a `mongodump --archive` file.
    Archive(Box<archive::ArchiveCollection>),
    Export,
    Live(Box<live::Live>),
    /// Known only from a partial result (`docsweep merge`): its name, file and indexes,
    /// no records.
    Recorded {
        indexes: Result<Indexes, String>,
    },
}

/// Where an interrupted scan continues: after `skip` records (dumps and exports), or
/// (live sources, which may have changed since) after the record with `_id` `after_id`
/// and then `skip_after_id` more; `skip` counts all of them either way.
#[derive(Debug, Clone, Default)]
pub struct Resume {
    /// Records already read (they keep their positions in messages).
    pub skip: u64,
    pub after_id: Option<serde_json::Value>,
    /// Records to drop after `after_id` (unreadable ones that had no `_id`).
    pub skip_after_id: u64,
}

/// An opened source: which collections it has and how to read them.
#[derive(Debug)]
pub struct Source {
    pub spec: SourceSpec,
    /// The database name, when the source knows it.
    pub database: Option<String>,
    pub collections: Vec<CollectionSource>,
    /// Read only this partition of every collection.
    pub partition: Option<Partition>,
    /// Records as they would be after changes not yet written: every reader this source
    /// hands out is wrapped by it (planning several repairs, each against the state the
    /// earlier ones leave).
    pub overlay: Option<std::sync::Arc<dyn Overlay>>,
}

/// A view of a collection's records with changes that are not written anywhere.
pub trait Overlay: Send + Sync + fmt::Debug {
    /// Wraps a reader over `collection`'s records.
    fn wrap(&self, collection: &str, reader: Box<dyn RecordReader>) -> Box<dyn RecordReader>;
}

/// The actual indexes of a collection, or `None` when the source cannot tell
/// (mongoexport files carry no indexes).
pub type Indexes = Option<Vec<IndexSpec>>;

impl CollectionSource {
    /// How this collection's records are encoded.
    pub fn encoding(&self) -> Encoding {
        match self.kind {
            CollectionKind::Dump { .. } | CollectionKind::Archive(_) | CollectionKind::Live(_) => {
                Encoding::Bson
            }
            CollectionKind::Export => Encoding::Json,
            CollectionKind::Recorded { .. } => Encoding::Bson,
        }
    }
}

impl Source {
    /// Opens a source and lists its collections. `db` picks a database in a dump root.
    pub fn open(spec: &SourceSpec, db: Option<&str>) -> Result<Source, SourceError> {
        Source::open_with(spec, db, &LiveOptions::default())
    }

    /// Opens a source; `live` tunes how a mongodb:// source is read.
    pub fn open_with(
        spec: &SourceSpec,
        db: Option<&str>,
        live: &LiveOptions,
    ) -> Result<Source, SourceError> {
        match spec {
            SourceSpec::Dump(p) => dump::open(spec, p, db),
            SourceSpec::Archive(p) => archive::open(spec, p, db),
            SourceSpec::Export(p) => export::open(spec, p),
            SourceSpec::Mongo(uri) => live::open(spec, uri, db, live),
        }
    }

    /// Where a live source's reads were done (see [`Live::read_location`]); `None` for
    /// files.
    pub fn read_location(&self) -> Option<serde_json::Value> {
        self.collections
            .iter()
            .find_map(|c| c.live())
            .map(Live::read_location)
    }

    /// Why collection `name` was not read whole although every record of it could be:
    /// it was read with `--query`.
    pub fn filtered(&self, name: &str) -> Option<String> {
        let live = self.collection(name)?.live()?;
        live.query_of(name)
            .map(|_| format!("{name}: read with --query"))
    }

    /// Is this a live deployment (progress counts documents, not bytes)?
    pub fn is_live(&self) -> bool {
        matches!(self.spec, SourceSpec::Mongo(_))
    }

    pub fn collection(&self, name: &str) -> Option<&CollectionSource> {
        self.collections.iter().find(|c| c.name == name)
    }

    /// The collection's actual indexes.
    pub fn indexes(&self, c: &CollectionSource) -> Result<Indexes, SourceError> {
        match &c.kind {
            CollectionKind::Dump { metadata, .. } => match metadata {
                Some(m) => dump::read_indexes(m).map(Some),
                None => Ok(None),
            },
            CollectionKind::Archive(a) => archive::indexes(&c.file, &c.name, a).map(Some),
            CollectionKind::Export => Ok(None),
            CollectionKind::Live(l) => l.indexes(&c.name).map(Some),
            CollectionKind::Recorded { indexes } => indexes.clone().map_err(SourceError::Other),
        }
    }

    /// A reader over the collection's records (this source's partition of them).
    pub fn reader(&self, c: &CollectionSource) -> Result<Box<dyn RecordReader>, SourceError> {
        self.reader_from(c, &Resume::default()).map(|(r, _)| r)
    }

    /// A reader over the collection's records (this source's partition of them),
    /// continuing at `resume`, and the range it covers when partitioned.
    pub fn reader_from(
        &self,
        c: &CollectionSource,
        resume: &Resume,
    ) -> Result<(Box<dyn RecordReader>, Option<Range>), SourceError> {
        if let CollectionKind::Live(l) = &c.kind {
            let range = self
                .partition
                .map(|p| l.partition_range(&c.name, p))
                .transpose()?;
            let reader = self.overlaid(c, l.reader(&c.name, range.clone(), resume)?);
            return Ok((reader, range.map(|(from, to)| Range::Ids { from, to })));
        }
        let mut reader = match &c.kind {
            CollectionKind::Dump { gzip, .. } => dump::reader(&c.file, *gzip)?,
            CollectionKind::Archive(a) => archive::reader(&c.file, &c.name, a)?,
            CollectionKind::Export => export::reader(&c.file)?,
            CollectionKind::Live(_) => unreachable!("handled above"),
            CollectionKind::Recorded { .. } => {
                return Err(SourceError::Other(format!(
                    "{}: only known from partial results; its records cannot be read",
                    c.file.display()
                )))
            }
        };
        let mut range = None;
        if let Some(p) = self.partition {
            let (total, file_len) = partition::stream_size(&c.file)?;
            let (from, to) = p.share(total);
            reader = Box::new(partition::ByteRange {
                inner: reader,
                from,
                to,
                done: false,
            });
            range = Some(Range::Bytes {
                total,
                file_len,
                from,
                to,
            });
        }
        if resume.skip > 0 {
            reader = Box::new(partition::Skip {
                inner: reader,
                skip: resume.skip,
            });
        }
        Ok((self.overlaid(c, reader), range))
    }

    fn overlaid(
        &self,
        c: &CollectionSource,
        reader: Box<dyn RecordReader>,
    ) -> Box<dyn RecordReader> {
        match &self.overlay {
            Some(o) => o.wrap(&c.name, reader),
            None => reader,
        }
    }

    /// Writes a mongodump archive's collections as a dump database folder into `dir`:
    /// `<collection>.bson` (the records as the archive holds them) and
    /// `<collection>.metadata.json` (the prelude's metadata). An archive with unreadable
    /// records is refused: their bytes are not kept, so the folder would lose them. Other
    /// sources: nothing to do.
    pub fn extract_archive(&self, dir: &Path) -> Result<(), SourceError> {
        for c in &self.collections {
            let CollectionKind::Archive(a) = &c.kind else {
                continue;
            };
            let bson = dir.join(format!("{}.bson", c.name));
            let mut out = std::io::BufWriter::new(
                std::fs::File::create(&bson).map_err(|e| io_err(&bson, e))?,
            );
            let mut reader = archive::reader(&c.file, &c.name, a)?;
            while let Some(batch) = reader.next_batch(BATCH_RECORDS)? {
                for rec in &batch.records {
                    if let Some(why) = &rec.broken {
                        return Err(io_err(
                            &c.file,
                            format!(
                                "{}: an unreadable record at {} ({why}); a dump folder made from \
                                 this archive would lose it, so nothing is written: repair or \
                                 replace the archive first",
                                c.name, rec.location
                            ),
                        ));
                    }
                    std::io::Write::write_all(&mut out, batch.bytes(rec))
                        .map_err(|e| io_err(&bson, e))?;
                }
            }
            std::io::Write::flush(&mut out).map_err(|e| io_err(&bson, e))?;
            let meta = dir.join(format!("{}.metadata.json", c.name));
            std::fs::write(&meta, archive::metadata(a)).map_err(|e| io_err(&meta, e))?;
        }
        Ok(())
    }

    /// A source known only from partial results: collections with their files and
    /// indexes, no records.
    pub fn recorded(
        spec: SourceSpec,
        database: Option<String>,
        collections: Vec<(String, PathBuf, Result<Indexes, String>)>,
    ) -> Source {
        Source {
            spec,
            database,
            collections: collections
                .into_iter()
                .map(|(name, file, indexes)| CollectionSource {
                    name,
                    file,
                    size: 0,
                    kind: CollectionKind::Recorded { indexes },
                })
                .collect(),
            partition: None,
            overlay: None,
        }
    }
}

fn io_err(path: &Path, e: impl fmt::Display) -> SourceError {
    SourceError::Io {
        path: path.to_path_buf(),
        message: e.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_source_strings() {
        assert_eq!(
            SourceSpec::parse("dump:./d").unwrap(),
            SourceSpec::Dump("./d".into())
        );
        assert_eq!(
            SourceSpec::parse("export:x.json").unwrap(),
            SourceSpec::Export("x.json".into())
        );
        assert!(matches!(
            SourceSpec::parse("mongodb+srv://h/db").unwrap(),
            SourceSpec::Mongo(_)
        ));
        for bad in ["", "dump:", "export:", "file:x", "./dump"] {
            assert!(SourceSpec::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn passwords_are_redacted() {
        let cases = [
            (
                "mongodb://u:secret@h:27017/db",
                "mongodb://u:****@h:27017/db",
            ),
            (
                "mongodb://u:p%40ss@h1,h2/db?x=1",
                "mongodb://u:****@h1,h2/db?x=1",
            ),
            ("mongodb+srv://u@h/db", "mongodb+srv://u@h/db"),
            (
                "mongodb://h/db?authSource=a@b",
                "mongodb://h/db?authSource=a@b",
            ),
            ("mongodb://h", "mongodb://h"),
            ("mongodb://u:pa/ss@h/db", "mongodb://u:****@h/db"),
            (
                "mongodb://u:p?a@ss@h1:27017,h2/db?w=1",
                "mongodb://u:****@h1:27017,h2/db?w=1",
            ),
            ("Mongodb://u:secret@h", "Mongodb://u:****@h"),
        ];
        for (given, want) in cases {
            assert_eq!(redact_uri(given), want);
            let shown = match SourceSpec::parse(given) {
                Ok(spec) => spec.to_string(),
                Err(e) => e.to_string(),
            };
            assert!(!shown.contains("secret"), "{shown}");
        }
        let e = SourceSpec::parse("mongo://u:secret@h")
            .unwrap_err()
            .to_string();
        assert!(!e.contains("secret"), "{e}");
    }
}
