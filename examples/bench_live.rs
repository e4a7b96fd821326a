//! Live-scan helper for `scripts/bench`: loads a dump's collection into a MongoDB-wire server
//! and measures the reference workload for the live scan, draining the same cursor as raw BSON
//! without checking anything.
//!
//! ```text
//! bench_live load  --uri mongodb://HOST/DB --collection C [--limit N] [--chunk N] FILE.bson
//! bench_live drain --uri mongodb://HOST/DB --collection C [--batch-size N] [--repeat R]
//! ```
//!
//! `load` drops the collection, then inserts the records of FILE.bson in order with
//! `insert_many` (chunks of `--chunk` documents, default 1000), skipping records that are not
//! well-formed BSON (`RawDocument::from_bytes`) and documents without `_id`; with `--limit N` it
//! stops after N documents. It prints `docs=… skipped=… seconds=… docs_per_sec=…`.
//!
//! `drain` runs `find({}).sort({_id: 1}).batch_size(N)` (default 1000, docsweep's default)
//! as `RawDocumentBuf` — the same query a live `docsweep check` issues — and counts the
//! documents and their bytes without decoding them. With `--repeat R` the fastest of R
//! passes is reported. It prints `docs=… bytes=… seconds=… docs_per_sec=…`, then
//! `count_seconds=…`: the time of one `estimatedDocumentCount` (docsweep asks for it to size
//! its progress bar; on FerretDB/SQLite it is a full `count`, not a metadata read).

use std::time::Instant;

use bson::{doc, RawDocument, RawDocumentBuf};
use mongodb::sync::{Client, Collection};

type Res<T> = Result<T, Box<dyn std::error::Error>>;

struct Args {
    cmd: String,
    uri: String,
    collection: String,
    file: Option<String>,
    limit: Option<usize>,
    chunk: usize,
    batch_size: u32,
    repeat: usize,
}

fn usage() -> &'static str {
    "usage: bench_live load --uri URI --collection C [--limit N] [--chunk N] FILE.bson\n       \
     bench_live drain --uri URI --collection C [--batch-size N] [--repeat R]"
}

fn parse_args() -> Res<Args> {
    let mut it = std::env::args().skip(1);
    let cmd = it.next().ok_or(usage())?;
    if cmd == "-h" || cmd == "--help" {
        println!("{}", usage());
        std::process::exit(0);
    }
    let mut a = Args {
        cmd,
        uri: String::new(),
        collection: String::new(),
        file: None,
        limit: None,
        chunk: 1000,
        batch_size: 1000,
        repeat: 1,
    };
    while let Some(x) = it.next() {
        let mut val = || it.next().ok_or_else(|| format!("{x} needs a value"));
        match x.as_str() {
            "--uri" => a.uri = val()?,
            "--collection" => a.collection = val()?,
            "--limit" => a.limit = Some(val()?.parse()?),
            "--chunk" => a.chunk = val()?.parse()?,
            "--batch-size" => a.batch_size = val()?.parse()?,
            "--repeat" => a.repeat = val()?.parse()?,
            _ if !x.starts_with("--") && a.file.is_none() => a.file = Some(x),
            _ => return Err(format!("unknown argument {x}\n{}", usage()).into()),
        }
    }
    if a.uri.is_empty() || a.collection.is_empty() || a.chunk == 0 || a.repeat == 0 {
        return Err(usage().into());
    }
    Ok(a)
}

fn collection(a: &Args) -> Res<Collection<RawDocumentBuf>> {
    let client = Client::with_uri_str(&a.uri)?;
    let db = client
        .default_database()
        .ok_or("the URI must name the database (mongodb://HOST/DB)")?;
    Ok(db.collection::<RawDocumentBuf>(&a.collection))
}

fn load(a: &Args) -> Res<()> {
    let file = a.file.as_deref().ok_or("load needs a .bson file")?;
    let data = std::fs::read(file).map_err(|e| format!("{file}: {e}"))?;
    let coll = collection(a)?;
    coll.drop().run()?;
    let limit = a.limit.unwrap_or(usize::MAX);
    let start = Instant::now();
    let (mut docs, mut skipped, mut pos) = (0usize, 0usize, 0usize);
    let mut chunk: Vec<RawDocumentBuf> = Vec::with_capacity(a.chunk);
    while pos + 4 <= data.len() && docs < limit {
        let len = i32::from_le_bytes(data[pos..pos + 4].try_into().unwrap());
        if len < 5 || pos + len as usize > data.len() {
            break; // a broken length prefix: nothing after it can be framed
        }
        let bytes = &data[pos..pos + len as usize];
        pos += len as usize;
        match RawDocument::from_bytes(bytes) {
            Ok(d) if matches!(d.get("_id"), Ok(Some(_))) => {
                chunk.push(d.to_owned());
                docs += 1;
            }
            _ => {
                skipped += 1;
                continue;
            }
        }
        if chunk.len() == a.chunk {
            coll.insert_many(std::mem::take(&mut chunk)).run()?;
        }
    }
    if !chunk.is_empty() {
        coll.insert_many(chunk).run()?;
    }
    let secs = start.elapsed().as_secs_f64();
    println!(
        "docs={docs} skipped={skipped} seconds={secs:.4} docs_per_sec={:.0}",
        docs as f64 / secs
    );
    Ok(())
}

fn drain(a: &Args) -> Res<()> {
    let coll = collection(a)?;
    let mut best = f64::INFINITY;
    let (mut docs, mut bytes) = (0u64, 0u64);
    for _ in 0..a.repeat {
        let start = Instant::now();
        let (mut n, mut b) = (0u64, 0u64);
        let cursor = coll
            .find(doc! {})
            .sort(doc! {"_id": 1})
            .batch_size(a.batch_size)
            .run()?;
        for d in cursor {
            let d = d?;
            b += d.as_bytes().len() as u64;
            std::hint::black_box(&d);
            n += 1;
        }
        best = best.min(start.elapsed().as_secs_f64());
        docs = n;
        bytes = b;
    }
    let start = Instant::now();
    let estimated = coll.estimated_document_count().run()?;
    let count_secs = start.elapsed().as_secs_f64();
    println!(
        "docs={docs} bytes={bytes} seconds={best:.4} docs_per_sec={:.0} estimated={estimated} count_seconds={count_secs:.4}",
        docs as f64 / best
    );
    Ok(())
}

fn main() -> Res<()> {
    let a = parse_args()?;
    match a.cmd.as_str() {
        "load" => load(&a),
        "drain" => drain(&a),
        c => Err(format!("unknown command {c}\n{}", usage()).into()),
    }
}
