//! A dump's files as apply and undo read and write them: records passed through byte for
//! byte, plain or gzip output, the temporary output directory, its lock, and the checks that
//! an output never overlaps its input.

use std::fs::File;
use std::io::{BufWriter, Read, Write};
use std::path::{Path, PathBuf};

use serde_json::Value;

use super::{io, ApplyError};

/// A second, sequential view of the input stream, so that bytes the record reader could
/// not make into documents (unreadable regions) are carried over byte for byte.
pub(super) struct Passthrough {
    raw: Box<dyn Read + Send>,
    pos: u64,
    /// Start of an unreadable region not yet copied.
    broken_from: Option<u64>,
}

impl Passthrough {
    pub(super) fn new(raw: Box<dyn Read + Send>) -> Passthrough {
        Passthrough {
            raw,
            pos: 0,
            broken_from: None,
        }
    }

    /// Moves to `to`, copying into `out` what lies in an unreadable region.
    pub(super) fn advance(&mut self, to: u64, out: &mut dyn Write) -> std::io::Result<()> {
        if to <= self.pos {
            return Ok(());
        }
        let n = to - self.pos;
        let mut take = (&mut self.raw).take(n);
        let copied = if self.broken_from.take().is_some() {
            std::io::copy(&mut take, out)?
        } else {
            std::io::copy(&mut take, &mut std::io::sink())?
        };
        self.pos += copied;
        Ok(())
    }

    /// A record at `offset` of `len` bytes was handled by the caller.
    pub(super) fn record(
        &mut self,
        offset: u64,
        len: u64,
        out: &mut dyn Write,
    ) -> std::io::Result<()> {
        self.advance(offset, out)?;
        self.advance(offset + len, out)
    }

    /// An unreadable record starts at `offset`; its bytes run to the next record.
    pub(super) fn broken(&mut self, offset: u64, out: &mut dyn Write) -> std::io::Result<()> {
        self.advance(offset, out)?;
        self.broken_from = Some(offset);
        Ok(())
    }

    /// End of input: copies a trailing unreadable region.
    pub(super) fn finish(&mut self, out: &mut dyn Write) -> std::io::Result<()> {
        if self.broken_from.take().is_some() {
            self.pos += std::io::copy(&mut self.raw, out)?;
        }
        Ok(())
    }
}

pub(super) fn offset_of(loc: crate::source::Location) -> u64 {
    match loc {
        crate::source::Location::Offset(o) => o,
        _ => 0,
    }
}

/// The database folder of a dump source string (`dump:ROOT` or `dump:ROOT/db`).
pub fn dump_db_dir(source: &str, db: Option<&str>) -> Result<(PathBuf, String), ApplyError> {
    let spec =
        crate::source::SourceSpec::parse(source).map_err(|e| ApplyError::Usage(e.to_string()))?;
    if !matches!(spec, crate::source::SourceSpec::Dump(_)) {
        return Err(ApplyError::Usage(format!(
            "{spec} is not a dump: use a dump: source here"
        )));
    }
    let src = crate::source::Source::open(&spec, db)?;
    let db_name = src.database.clone().unwrap_or_default();
    let dir = src
        .collections
        .first()
        .and_then(|c| c.file.parent().map(Path::to_path_buf))
        .ok_or_else(|| ApplyError::Usage(format!("{spec}: no collections")))?;
    Ok((dir, db_name))
}

/// `dir/name`, or its gzipped form `dir/name.gz` (a `--gzip` dump), and which it is.
pub(super) fn plain_or_gz(dir: &Path, name: &str) -> Option<(PathBuf, bool)> {
    let plain = dir.join(name);
    let gz = dir.join(format!("{name}.gz"));
    if plain.is_file() {
        Some((plain, false))
    } else if gz.is_file() {
        Some((gz, true))
    } else {
        None
    }
}

pub(super) fn open_in(path: &Path, gzip: bool) -> Result<Box<dyn Read + Send>, ApplyError> {
    let f = File::open(path).map_err(|e| io(path, e))?;
    Ok(if gzip {
        Box::new(flate2::read::MultiGzDecoder::new(std::io::BufReader::new(
            f,
        )))
    } else {
        Box::new(std::io::BufReader::new(f))
    })
}

/// An output file of a new dump, plain or gzipped. `finish` completes it (the gzip
/// trailer included) and reports any error; dropping one unfinished leaves a file that the
/// temporary directory's removal discards.
pub(super) struct Output {
    sink: Sink,
    /// Bytes written so far (uncompressed): the position of the next record.
    pos: u64,
}

pub(super) enum Sink {
    Plain(BufWriter<File>),
    Gzip(flate2::write::GzEncoder<BufWriter<File>>),
}

impl Write for Output {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let n = match &mut self.sink {
            Sink::Plain(w) => w.write(buf),
            Sink::Gzip(w) => w.write(buf),
        }?;
        self.pos += n as u64;
        Ok(n)
    }

    fn flush(&mut self) -> std::io::Result<()> {
        match &mut self.sink {
            Sink::Plain(w) => w.flush(),
            Sink::Gzip(w) => w.flush(),
        }
    }
}

impl Output {
    pub(super) fn new(file: File, gzip: bool) -> Output {
        let w = BufWriter::with_capacity(1 << 20, file);
        let sink = if gzip {
            Sink::Gzip(flate2::write::GzEncoder::new(
                w,
                flate2::Compression::default(),
            ))
        } else {
            Sink::Plain(w)
        };
        Output { sink, pos: 0 }
    }

    pub(super) fn position(&self) -> u64 {
        self.pos
    }

    pub(super) fn finish(self, path: &Path) -> Result<(), ApplyError> {
        let w = match self.sink {
            Sink::Plain(w) => w,
            Sink::Gzip(w) => w.finish().map_err(|e| io(path, e))?,
        };
        w.into_inner()
            .map_err(|e| io(path, e.error()))?
            .sync_all()
            .map_err(|e| io(path, e))
    }
}

pub(super) fn open_out(path: &Path, gzip: bool) -> Result<Output, ApplyError> {
    let f = File::create(path).map_err(|e| io(path, e))?;
    Ok(Output::new(f, gzip))
}

/// Copies every file of `from` into `to` except the named ones.
pub(super) fn copy_others(from: &Path, to: &Path, skip: &[String]) -> Result<(), ApplyError> {
    for e in std::fs::read_dir(from).map_err(|e| io(from, e))? {
        let p = e.map_err(|e| io(from, e))?.path();
        let name = p
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        if p.is_file() && !skip.contains(&name) {
            std::fs::copy(&p, to.join(&name)).map_err(|e| io(&p, e))?;
        }
    }
    Ok(())
}

pub(super) fn sync_tree(dir: &Path) -> Result<(), ApplyError> {
    for e in std::fs::read_dir(dir).map_err(|e| io(dir, e))? {
        let p = e.map_err(|e| io(dir, e))?.path();
        if p.is_dir() {
            sync_tree(&p)?;
        } else if let Ok(f) = File::open(&p) {
            f.sync_all().map_err(|e| io(&p, e))?;
        }
    }
    if let Ok(d) = File::open(dir) {
        let _ = d.sync_all();
    }
    Ok(())
}

pub(super) fn bson_name(dir: &Path, coll: &str) -> Option<(PathBuf, bool)> {
    plain_or_gz(dir, &format!("{coll}.bson"))
}

/// The collection's metadata file in `dir` (gzipped in a `--gzip` dump).
pub(super) fn metadata_file(dir: &Path, coll: &str) -> Option<(PathBuf, bool)> {
    plain_or_gz(dir, &format!("{coll}.metadata.json"))
}

pub(super) fn read_text(path: &Path, gzip: bool) -> Result<String, ApplyError> {
    let mut text = String::new();
    open_in(path, gzip)?
        .read_to_string(&mut text)
        .map_err(|e| io(path, e))?;
    Ok(text)
}

pub(super) fn write_text(path: &Path, gzip: bool, text: &str) -> Result<(), ApplyError> {
    let mut w = open_out(path, gzip)?;
    w.write_all(text.as_bytes()).map_err(|e| io(path, e))?;
    w.finish(path)
}

/// Keeps quarantined documents in the new dump: a file under `.docsweep/`, or a collection
/// (`<coll>_quarantine` by default), gzipped like the rest of a `--gzip` dump.
pub(super) fn write_quarantine(
    dir: &Path,
    coll: &str,
    to: &str,
    docs: &[Value],
    gzip: bool,
) -> Result<(), ApplyError> {
    if let Some(file) = to.strip_prefix("file:") {
        // Kept inside the new dump (never elsewhere), so it appears with it atomically.
        let name = Path::new(file)
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_else(|| "quarantine.jsonl".into());
        let p = dir.join(".docsweep").join(format!("quarantine-{name}"));
        let mut w = BufWriter::new(
            std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(&p)
                .map_err(|e| io(&p, e))?,
        );
        for d in docs {
            writeln!(w, "{d}").map_err(|e| io(&p, e))?;
        }
        w.flush().map_err(|e| io(&p, e))?;
        return Ok(());
    }
    let name = to
        .strip_prefix("collection:")
        .map(str::to_string)
        .unwrap_or_else(|| format!("{coll}_quarantine"));
    let p = dir.join(format!("{name}.bson{}", if gzip { ".gz" } else { "" }));
    let mut bytes = Vec::new();
    for d in docs {
        bytes.extend(crate::value::to_bson(d).map_err(|e| io(&p, e))?);
    }
    // Appended to what the collection held already (a gzipped file gets another member).
    let file = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(&p)
        .map_err(|e| io(&p, e))?;
    let mut out = Output::new(file, gzip);
    out.write_all(&bytes).map_err(|e| io(&p, e))?;
    out.finish(&p)
}

/// Holds an exclusive lock on the output root for one database while a run builds it,
/// so two runs never share (or delete) each other's temporary directory.
pub(super) fn lock_out(out_root: &Path, db: &str) -> Result<File, ApplyError> {
    let p = out_root.join(format!(".{db}.docsweep.lock"));
    let f = File::create(&p).map_err(|e| io(&p, e))?;
    f.try_lock().map_err(|_| {
        ApplyError::Usage(format!(
            "{}: another docsweep run is writing here; try again when it is done",
            out_root.display()
        ))
    })?;
    Ok(f)
}

/// The temporary directory a run builds its output in, emptied first: one left by an
/// interrupted run was never visible as the output. Call with the output lock held.
pub(super) fn fresh_partial(out_root: &Path, db: &str) -> Result<PathBuf, ApplyError> {
    let partial = out_root.join(format!(".{db}.docsweep-partial"));
    if partial.exists() {
        std::fs::remove_dir_all(&partial).map_err(|e| io(&partial, e))?;
    }
    std::fs::create_dir_all(&partial).map_err(|e| io(&partial, e))?;
    Ok(partial)
}

/// The folder a `dump:` source names (its root, or the one database folder given), else
/// `in_dir`, the database folder read.
pub(super) fn dump_root(source: &str, in_dir: &Path) -> PathBuf {
    match crate::source::SourceSpec::parse(source) {
        Ok(crate::source::SourceSpec::Dump(p)) if p.is_dir() => p,
        _ => in_dir.to_path_buf(),
    }
}

/// Refuses an output folder inside the input dump, or one that contains it (the same
/// folder included): paths compared resolved, symbolic links and `..` included, the
/// output's missing part from its nearest existing ancestor.
pub(super) fn refuse_overlap(input: &Path, output: &Path) -> Result<(), ApplyError> {
    let resolved = |p: &Path| crate::os::resolve(p).map_err(|e| io(p, e));
    let (inp, out) = (resolved(input)?, resolved(output)?);
    if out.starts_with(&inp) {
        return Err(ApplyError::Usage(format!(
            "--out {}: inside the plan's source {}; a dump is never modified in place: choose a folder outside it",
            output.display(),
            input.display()
        )));
    }
    if inp.starts_with(&out) {
        return Err(ApplyError::Usage(format!(
            "--out {}: contains the plan's source {}; choose a folder outside it",
            output.display(),
            input.display()
        )));
    }
    Ok(())
}
