//! Apply throughput for `scripts/bench`: `docsweep repair apply` of a plan that changes
//! every document of a collection, against the same writes without a journal.
//!
//! ```text
//! bench_apply dump --bin DOCSWEEP --dump ROOT --db DB --collection C [--limit N] --work DIR
//! bench_apply live --bin DOCSWEEP --uri mongodb://HOST/DB --collection C --file FILE.bson
//!                  [--limit N] [--batch-size N] --work DIR
//! ```
//!
//! The plan (written to DIR) replaces each document by itself plus a field
//! `bench_note`. `dump` times `docsweep repair apply PLAN --out dump:…` against writing
//! the same output file in-process (the same after-images, one fsync, no journal and no
//! compare-and-set). `live` loads the first N documents of FILE.bson into the collection,
//! times a plain driver loop of `replace_one({_id}, after)` over them, loads them again
//! and times `docsweep repair apply PLAN --yes`. Each prints one line:
//! `docs=… apply_seconds=… ref_seconds=… apply_docs_per_sec=… ref_docs_per_sec=… ratio=…`
//! (ratio: apply time over reference time).

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

use bson::{doc, Document, RawDocumentBuf};
use docsweep::repair::plan::{Entry, Plan};
use mongodb::sync::Client;
use serde_json::{json, Value};

type Res<T> = Result<T, Box<dyn std::error::Error>>;

#[derive(Default)]
struct Args {
    mode: String,
    bin: PathBuf,
    dump: PathBuf,
    db: String,
    uri: String,
    collection: String,
    file: PathBuf,
    limit: Option<usize>,
    batch_size: usize,
    work: PathBuf,
}

fn usage() -> &'static str {
    "usage: bench_apply dump --bin DOCSWEEP --dump ROOT --db DB --collection C [--limit N] --work DIR\n       \
     bench_apply live --bin DOCSWEEP --uri URI/DB --collection C --file FILE.bson [--limit N] [--batch-size N] --work DIR"
}

fn parse_args() -> Res<Args> {
    let mut it = std::env::args().skip(1);
    let mut a = Args {
        mode: it.next().ok_or(usage())?,
        batch_size: 500,
        ..Args::default()
    };
    while let Some(k) = it.next() {
        let mut v = || it.next().ok_or_else(|| format!("{k} needs a value"));
        match k.as_str() {
            "--bin" => a.bin = v()?.into(),
            "--dump" => a.dump = v()?.into(),
            "--db" => a.db = v()?,
            "--uri" => a.uri = v()?,
            "--collection" => a.collection = v()?,
            "--file" => a.file = v()?.into(),
            "--limit" => a.limit = Some(v()?.parse()?),
            "--batch-size" => a.batch_size = v()?.parse()?,
            "--work" => a.work = v()?.into(),
            _ => return Err(format!("unknown argument {k}\n{}", usage()).into()),
        }
    }
    if a.collection.is_empty() || a.work.as_os_str().is_empty() || a.bin.as_os_str().is_empty() {
        return Err(usage().into());
    }
    Ok(a)
}

/// The readable documents of a .bson file with an `_id` (the first `limit`).
fn documents(file: &Path, limit: Option<usize>) -> Res<Vec<Vec<u8>>> {
    let bytes = std::fs::read(file).map_err(|e| format!("{}: {e}", file.display()))?;
    let mut out = Vec::new();
    let mut pos = 0;
    while pos + 4 <= bytes.len() && limit.is_none_or(|l| out.len() < l) {
        let len = i32::from_le_bytes(bytes[pos..pos + 4].try_into()?) as usize;
        if len < 5 || pos + len > bytes.len() {
            break;
        }
        let raw = bytes[pos..pos + len].to_vec();
        pos += len;
        if let Ok(d) = docsweep::value::from_bson(&raw) {
            if d.value.get("_id").is_some() {
                out.push(raw);
            }
        }
    }
    Ok(out)
}

/// The plan: every document replaced by itself plus `bench_note`.
fn make_plan(docs: &[Vec<u8>], source: &str, db: &str, coll: &str, path: &Path) -> Res<Vec<Value>> {
    let mut afters = Vec::with_capacity(docs.len());
    let mut entries = Vec::with_capacity(docs.len());
    for raw in docs {
        let v = docsweep::value::from_bson(raw)?.value;
        let mut after = v.clone();
        after["bench_note"] = Value::from("applied");
        entries.push(Entry {
            action: docsweep::repair::plan::Action::Replace,
            id: v["_id"].clone(),
            before: Some(docsweep::value::fingerprint(&v).ordered),
            after: Some(after.clone()),
            to: None,
            at: None,
            collection: None,
        });
        afters.push(after);
    }
    let header = json!({
        "kind": "plan", "format": docsweep::repair::plan::FORMAT, "template": "bench",
        "templates": ["bench"], "params": [], "select": "all", "collection": coll,
        "source": source, "database": db, "target_version": 1,
        "created_at": "2024-01-01T00:00:00Z",
    });
    let header = serde_json::from_value(header)?;
    Plan { header, entries }.write(path)?;
    Ok(afters)
}

fn run_apply(bin: &Path, args: &[&str], work: &Path) -> Res<f64> {
    let start = Instant::now();
    let out = Command::new(bin).args(args).current_dir(work).output()?;
    let secs = start.elapsed().as_secs_f64();
    if !out.status.success() {
        return Err(format!(
            "docsweep {}: exit {:?}: {}{}",
            args.join(" "),
            out.status.code(),
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        )
        .into());
    }
    let stdout = String::from_utf8_lossy(&out.stdout);
    if !stdout.contains("applied") || stdout.contains("already applied") {
        return Err(format!("docsweep did not apply: {stdout}").into());
    }
    Ok(secs)
}

fn report(docs: usize, apply: f64, reference: f64) {
    println!(
        "docs={docs} apply_seconds={apply:.4} ref_seconds={reference:.4} apply_docs_per_sec={:.0} ref_docs_per_sec={:.0} ratio={:.2}",
        docs as f64 / apply,
        docs as f64 / reference,
        apply / reference
    );
}

fn dump(a: &Args) -> Res<()> {
    let root = a
        .dump
        .canonicalize()
        .map_err(|e| format!("{}: {e}", a.dump.display()))?;
    let in_dir = root.join(&a.db);
    let file = in_dir.join(format!("{}.bson", a.collection));
    let docs = documents(&file, a.limit)?;
    std::fs::create_dir_all(&a.work)?;
    let work = a.work.canonicalize()?;
    let plan = work.join("dump.plan");
    let source = format!("dump:{}", root.display());
    let afters = make_plan(&docs, &source, &a.db, &a.collection, &plan)?;
    // Reference: the same output file, written in-process with one fsync.
    let start = Instant::now();
    let by_id: std::collections::HashMap<String, &Value> = afters
        .iter()
        .map(|v| (docsweep::scan::id_text(&v["_id"]), v))
        .collect();
    let input = std::fs::read(&file)?;
    let ref_out = work.join("reference.bson");
    let mut w = std::io::BufWriter::with_capacity(1 << 20, std::fs::File::create(&ref_out)?);
    let mut pos = 0;
    while pos + 4 <= input.len() {
        let len = i32::from_le_bytes(input[pos..pos + 4].try_into()?) as usize;
        if len < 5 || pos + len > input.len() {
            w.write_all(&input[pos..])?;
            break;
        }
        let raw = &input[pos..pos + len];
        pos += len;
        let id = docsweep::value::from_bson(raw)
            .ok()
            .and_then(|d| d.value.get("_id").map(docsweep::scan::id_text));
        match id.and_then(|id| by_id.get(&id)) {
            Some(after) => w.write_all(&docsweep::value::to_bson(after)?)?,
            None => w.write_all(raw)?,
        }
    }
    w.into_inner().map_err(|e| e.to_string())?.sync_all()?;
    let reference = start.elapsed().as_secs_f64();
    let out = work.join("dump-out");
    let _ = std::fs::remove_dir_all(&out);
    let apply = run_apply(
        &a.bin,
        &[
            "repair",
            "apply",
            "dump.plan",
            "--out",
            &format!("dump:{}", out.display()),
            "--audit",
            "audit.jsonl",
        ],
        &work,
    )?;
    report(docs.len(), apply, reference);
    Ok(())
}

fn load(coll: &mongodb::sync::Collection<RawDocumentBuf>, docs: &[Vec<u8>]) -> Res<()> {
    coll.drop().run()?;
    for chunk in docs.chunks(1000) {
        let raws: Vec<RawDocumentBuf> = chunk
            .iter()
            .map(|b| RawDocumentBuf::from_bytes(b.clone()))
            .collect::<Result<_, _>>()?;
        coll.insert_many(raws).run()?;
    }
    Ok(())
}

fn live(a: &Args) -> Res<()> {
    let client = Client::with_uri_str(&a.uri)?;
    let db_name = a
        .uri
        .rsplit_once('/')
        .map(|(_, d)| d.split('?').next().unwrap_or_default().to_string())
        .filter(|d| !d.is_empty())
        .ok_or("--uri must name the database: mongodb://HOST/DB")?;
    let coll = client
        .database(&db_name)
        .collection::<RawDocumentBuf>(&a.collection);
    let docs = documents(&a.file, a.limit)?;
    std::fs::create_dir_all(&a.work)?;
    let plan = a.work.join("live.plan");
    let journal = a.work.join("live.plan.journal");
    let _ = std::fs::remove_file(&journal);
    let afters = make_plan(&docs, &a.uri, &db_name, &a.collection, &plan)?;
    load(&coll, &docs)?;
    // Reference: the same replacements with the driver, no reads, no journal.
    let start = Instant::now();
    for after in &afters {
        let raw = RawDocumentBuf::from_bytes(docsweep::value::to_bson(after)?)?;
        let id =
            Document::from_reader(&docsweep::value::to_bson(&json!({"_id": after["_id"]}))?[..])?;
        let r = coll.replace_one(id, raw).run()?;
        if r.matched_count != 1 {
            return Err("reference: a document was not found".into());
        }
    }
    let reference = start.elapsed().as_secs_f64();
    load(&coll, &docs)?;
    let batch = a.batch_size.to_string();
    let apply = run_apply(
        &a.bin,
        &[
            "repair",
            "apply",
            "live.plan",
            "--yes",
            // FerretDB has no whole-document guard (docs/ferretdb.md); MongoDB ignores this
            // and guards the whole document.
            "--guard",
            "top-level",
            "--batch-size",
            &batch,
            "--audit",
            "audit.jsonl",
        ],
        &a.work,
    )?;
    let n = coll.count_documents(doc! {"bench_note": "applied"}).run()?;
    if n != docs.len() as u64 {
        return Err(format!("apply changed {n} of {} documents", docs.len()).into());
    }
    coll.drop().run()?;
    report(docs.len(), apply, reference);
    Ok(())
}

fn main() {
    let result = parse_args().and_then(|a| match a.mode.as_str() {
        "dump" => dump(&a),
        "live" => live(&a),
        _ => Err(usage().into()),
    });
    if let Err(e) = result {
        eprintln!("bench_apply: {e}");
        std::process::exit(2);
    }
}
