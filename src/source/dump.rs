//! mongodump output: `<root>/<db>/<coll>.bson[.gz]` with `<coll>.metadata.json[.gz]`,
//! given as the dump root or as one database folder.

use std::fs::File;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use serde_json::Value;

use super::{
    io_err, BsonReader, CollectionKind, CollectionSource, RecordReader, Source, SourceError,
    SourceSpec,
};
use crate::contract::IndexSpec;

/// Databases mongodump writes that never hold user collections.
const SYSTEM_DBS: [&str; 3] = ["admin", "config", "local"];

pub(super) fn open(
    spec: &SourceSpec,
    path: &Path,
    db: Option<&str>,
) -> Result<Source, SourceError> {
    if path.is_file() {
        // `mongodump --archive` writes one file.
        return super::archive::open(spec, path, db);
    }
    if !path.is_dir() {
        return Err(io_err(
            path,
            if path.exists() {
                "a dump source must be a directory (the mongodump output or one database folder in it) or a mongodump --archive file"
            } else {
                "no such file or directory"
            },
        ));
    }
    let (db_name, dir) = if has_bson_files(path)? {
        let name = path.file_name().map(|n| n.to_string_lossy().into_owned());
        if let (Some(want), Some(have)) = (db, name.as_deref()) {
            if want != have {
                return Err(io_err(
                    path,
                    format!("is the dump of database {have:?}, not {want:?}"),
                ));
            }
        }
        (name, path.to_path_buf())
    } else {
        let chosen = choose_database(path, db)?;
        (Some(dir_name(&chosen)), chosen)
    };
    Ok(Source {
        spec: spec.clone(),
        database: db_name,
        collections: dump_collections(&dir)?,
        partition: None,
        overlay: None,
    })
}

fn dir_name(p: &Path) -> String {
    p.file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default()
}

/// The database folder of a mongodump output folder: the one `db` names, else its only
/// user database.
fn choose_database(path: &Path, db: Option<&str>) -> Result<PathBuf, SourceError> {
    let mut dbs = Vec::new();
    for entry in read_dir_sorted(path)? {
        if entry.is_dir() && has_bson_files(&entry)? {
            dbs.push(entry);
        }
    }
    if let Some(want) = db {
        return dbs
            .into_iter()
            .find(|p| dir_name(p) == want)
            .ok_or_else(|| io_err(path, format!("holds no dump of database {want:?}")));
    }
    let mut user: Vec<PathBuf> = dbs
        .into_iter()
        .filter(|p| !SYSTEM_DBS.contains(&dir_name(p).as_str()))
        .collect();
    match user.len() {
        0 => Err(io_err(
            path,
            "no .bson files found: not a mongodump directory",
        )),
        1 => Ok(user.remove(0)),
        _ => {
            let names: Vec<String> = user.iter().map(|p| dir_name(p)).collect();
            Err(io_err(
                path,
                format!(
                    "holds several databases ({}); choose one with --db or point at its folder",
                    names.join(", ")
                ),
            ))
        }
    }
}

/// The collections of one database folder: its `.bson` and `.bson.gz` files (not
/// `system.*` or the oplog), with their metadata files when present.
fn dump_collections(dir: &Path) -> Result<Vec<CollectionSource>, SourceError> {
    let mut collections = Vec::new();
    for file in read_dir_sorted(dir)? {
        let Some(fname) = file
            .file_name()
            .and_then(|n| n.to_str())
            .map(str::to_string)
        else {
            continue;
        };
        let (name, gzip) = if let Some(n) = fname.strip_suffix(".bson.gz") {
            (n.to_string(), true)
        } else if let Some(n) = fname.strip_suffix(".bson") {
            (n.to_string(), false)
        } else {
            continue;
        };
        if name.starts_with("system.") || name == "oplog" || !file.is_file() {
            continue;
        }
        let meta_name = if gzip {
            format!("{name}.metadata.json.gz")
        } else {
            format!("{name}.metadata.json")
        };
        let meta = dir.join(meta_name);
        let size = std::fs::metadata(&file)
            .map_err(|e| io_err(&file, e))?
            .len();
        collections.push(CollectionSource {
            name,
            file,
            size,
            kind: CollectionKind::Dump {
                gzip,
                metadata: meta.is_file().then_some(meta),
            },
        });
    }
    Ok(collections)
}

fn read_dir_sorted(path: &Path) -> Result<Vec<PathBuf>, SourceError> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(path).map_err(|e| io_err(path, e))? {
        out.push(e.map_err(|e| io_err(path, e))?.path());
    }
    out.sort();
    Ok(out)
}

fn has_bson_files(path: &Path) -> Result<bool, SourceError> {
    Ok(read_dir_sorted(path)?.iter().any(|p| {
        p.is_file()
            && p.file_name().and_then(|n| n.to_str()).is_some_and(|n| {
                (n.ends_with(".bson") || n.ends_with(".bson.gz")) && !n.starts_with("oplog.bson")
            })
    }))
}

/// Counts bytes read from the underlying file (compressed bytes for gzip).
struct Counting<R> {
    inner: R,
    count: Arc<AtomicU64>,
}

impl<R: Read> Read for Counting<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.count.fetch_add(n as u64, Ordering::Relaxed);
        Ok(n)
    }
}

/// Opens a file for streaming, decompressing gzip when asked, counting raw bytes.
pub(super) fn open_stream(
    path: &Path,
    gzip: bool,
) -> Result<(Box<dyn Read + Send>, Arc<AtomicU64>), SourceError> {
    let f = File::open(path).map_err(|e| io_err(path, e))?;
    let count = Arc::new(AtomicU64::new(0));
    let counting = Counting {
        inner: f,
        count: Arc::clone(&count),
    };
    let stream: Box<dyn Read + Send> = if gzip {
        Box::new(flate2::read::MultiGzDecoder::new(
            std::io::BufReader::with_capacity(256 << 10, counting),
        ))
    } else {
        Box::new(counting)
    };
    Ok((stream, count))
}

pub(super) fn reader(path: &Path, gzip: bool) -> Result<Box<dyn RecordReader>, SourceError> {
    let (stream, count) = open_stream(path, gzip)?;
    Ok(Box::new(BsonReader::new(
        stream,
        Some(count),
        path.to_path_buf(),
    )))
}

/// Reads the `indexes` of a `<coll>.metadata.json[.gz]` file (canonical or relaxed
/// Extended JSON, as mongodump versions write it).
pub(super) fn read_indexes(path: &Path) -> Result<Vec<IndexSpec>, SourceError> {
    let gzip = path.extension().is_some_and(|e| e == "gz");
    let (mut stream, _) = open_stream(path, gzip)?;
    let mut text = Vec::new();
    stream
        .read_to_end(&mut text)
        .map_err(|e| io_err(path, format!("read failed: {e}")))?;
    let v: Value =
        serde_json::from_slice(&text).map_err(|e| io_err(path, format!("not valid JSON: {e}")))?;
    indexes_from_json(path, "", &v)
}

/// The `indexes` of collection metadata (`what` names it in messages when `path` does not).
pub(super) fn indexes_from_json(
    path: &Path,
    what: &str,
    v: &Value,
) -> Result<Vec<IndexSpec>, SourceError> {
    let prefix = if what.is_empty() {
        String::new()
    } else {
        format!("{what}: ")
    };
    let list = v
        .get("indexes")
        .and_then(Value::as_array)
        .ok_or_else(|| io_err(path, format!("{prefix}no `indexes` array")))?;
    list.iter()
        .enumerate()
        .map(|(i, ix)| {
            IndexSpec::from_server_json(ix)
                .map_err(|m| io_err(path, format!("{prefix}index #{}: {m}", i + 1)))
        })
        .collect()
}
