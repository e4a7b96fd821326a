//! mongoexport output: a directory of `<coll>.json` files or one file, each NDJSON or a
//! JSON array, relaxed or canonical Extended JSON; `.gz` files are decompressed.

use std::path::Path;

use super::dump::open_stream;
use super::{
    io_err, CollectionKind, CollectionSource, JsonReader, RecordReader, Source, SourceError,
    SourceSpec,
};

const SUFFIXES: [&str; 6] = [
    ".json",
    ".ndjson",
    ".jsonl",
    ".json.gz",
    ".ndjson.gz",
    ".jsonl.gz",
];

fn collection_name(file: &Path) -> Option<String> {
    let name = file.file_name()?.to_str()?;
    SUFFIXES
        .iter()
        .find_map(|s| name.strip_suffix(s))
        .filter(|n| !n.is_empty())
        .map(str::to_string)
}

pub(super) fn open(spec: &SourceSpec, path: &Path) -> Result<Source, SourceError> {
    let files = if path.is_dir() {
        let mut v = Vec::new();
        for e in std::fs::read_dir(path).map_err(|e| io_err(path, e))? {
            let p = e.map_err(|e| io_err(path, e))?.path();
            if p.is_file() && collection_name(&p).is_some() {
                v.push(p);
            }
        }
        v.sort();
        if v.is_empty() {
            return Err(io_err(
                path,
                "no <collection>.json files found: not a mongoexport directory",
            ));
        }
        v
    } else if path.is_file() {
        if collection_name(path).is_none() {
            return Err(io_err(path, "an export file must be named <collection>.json (or .ndjson, .jsonl, optionally .gz)"));
        }
        vec![path.to_path_buf()]
    } else {
        return Err(io_err(path, "no such file or directory"));
    };
    let mut collections: Vec<CollectionSource> = Vec::new();
    for file in files {
        let Some(name) = collection_name(&file) else {
            continue;
        };
        if let Some(prev) = collections.iter().find(|c| c.name == name) {
            return Err(io_err(
                &file,
                format!(
                    "collection {name:?} is also exported in {}",
                    prev.file.display()
                ),
            ));
        }
        let size = std::fs::metadata(&file)
            .map_err(|e| io_err(&file, e))?
            .len();
        collections.push(CollectionSource {
            name,
            file,
            size,
            kind: CollectionKind::Export,
        });
    }
    Ok(Source {
        spec: spec.clone(),
        database: None,
        collections,
        partition: None,
        overlay: None,
    })
}

pub(super) fn reader(path: &Path) -> Result<Box<dyn RecordReader>, SourceError> {
    let gzip = path.extension().is_some_and(|e| e == "gz");
    let (stream, count) = open_stream(path, gzip)?;
    Ok(Box::new(JsonReader::new(
        stream,
        Some(count),
        path.to_path_buf(),
    )))
}
