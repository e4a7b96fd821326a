//! Reference workloads for `scripts/bench`: what the same libraries need to parse, validate or
//! walk the documents a check reads, with the files in memory.
//!
//! ```text
//! cargo run --release --example bench_parse -- [--repeat N] [--threads T]
//!     [--mode parse|validate|walk|preflight|classify-bson|classify-export] [--schemas DIR] FILE...
//! ```
//!
//! Modes:
//!
//! - `parse` (default): `serde_json::from_slice::<serde_json::Value>` on every NDJSON line.
//! - `validate`: the same parse, then `jsonschema` `is_valid` on every contract version of
//!   the line's collection (the file's name without extension: `orders.json` → `orders`),
//!   every version whatever the earlier ones answered. The contracts are loaded from
//!   `--schemas DIR` through the library, as `docsweep check` loads them (same crates, same
//!   options).
//! - `walk`: FILE is a `.bson` dump file; every element of every document is visited
//!   recursively through `bson::RawDocument` iterators, nothing decoded into values.
//!
//! Floors: the parts of a check's own per-document work, through the library, to show what a
//! check could reach if it did nothing else (not targets):
//!
//! - `preflight`: FILE is a `.bson` dump file; docsweep's preflight (bounds, UTF-8, repeated
//!   keys) on every document, which the in-place view needs before it reads anything.
//! - `classify-bson`: the preflight, then the check's classification in place
//!   (`scan::classify_raw`: the target version, and the other versions only when the target
//!   refuses the document). No facts, no errors, no keys. A document the preflight refuses
//!   is decoded and classified, as the check does.
//! - `classify-export`: FILE is NDJSON; each line transcoded to BSON (`value::Transcoder`, as
//!   the check does), then the same preflight and classification; a line that does not
//!   transcode is decoded and classified.
//!
//! Without `--threads` the work runs on the calling thread (one core); with `--threads T` on
//! a rayon pool of T threads. The files are read, and split into lines or BSON records,
//! before the clock starts, so only the per-document work is timed (the strictest
//! reference). Lines that do not parse and a truncated last BSON record are counted as
//! `errors=`, not as documents. With `--repeat N` the fastest of N passes is reported. Prints
//! one line: `mode=… threads=… docs=… errors=… bytes=… seconds=… docs_per_sec=…
//! mib_per_sec=…` (and `versions_valid=…`, the number of (document, version) pairs that
//! validated, for `validate`).

use std::hint::black_box;
use std::path::Path;
use std::time::Instant;

use bson::raw::{RawArray, RawBsonRef, RawDocument};
use docsweep::contract::{Contract, ContractSet};
use docsweep::scan::{classify as classify_value, classify_raw, Class};
use docsweep::value::raw::{self, RawBson};
use docsweep::value::{from_bson, from_json, Decoded, Transcoder};
use rayon::prelude::*;

type Res<T> = Result<T, Box<dyn std::error::Error>>;

const USAGE: &str = "usage: bench_parse [--repeat N] [--threads T] \
                     [--mode parse|validate|walk|preflight|classify-bson|classify-export] \
                     [--schemas DIR] FILE...";

#[derive(Clone, Copy, PartialEq)]
enum Mode {
    Parse,
    Validate,
    Walk,
    Preflight,
    ClassifyBson,
    ClassifyExport,
}

impl Mode {
    const ALL: [(&'static str, Mode); 6] = [
        ("parse", Mode::Parse),
        ("validate", Mode::Validate),
        ("walk", Mode::Walk),
        ("preflight", Mode::Preflight),
        ("classify-bson", Mode::ClassifyBson),
        ("classify-export", Mode::ClassifyExport),
    ];

    fn name(self) -> &'static str {
        Mode::ALL
            .iter()
            .find(|(_, m)| *m == self)
            .map_or("?", |(n, _)| n)
    }

    /// Reads `.bson` dump files (else NDJSON).
    fn bson(self) -> bool {
        matches!(self, Mode::Walk | Mode::Preflight | Mode::ClassifyBson)
    }

    /// Needs the contracts (`--schemas`).
    fn contracts(self) -> bool {
        matches!(
            self,
            Mode::Validate | Mode::ClassifyBson | Mode::ClassifyExport
        )
    }
}

/// One unit of work: a document's bytes and its collection's contract (modes that validate).
struct Item<'a> {
    bytes: &'a [u8],
    contract: Option<&'a Contract>,
}

/// (documents, errors, valid (document, version) pairs) of one item.
type Counts = (u64, u64, u64);

fn add(a: Counts, b: Counts) -> Counts {
    (a.0 + b.0, a.1 + b.1, a.2 + b.2)
}

fn main() -> Res<()> {
    let mut repeat = 1usize;
    let mut threads: Option<usize> = None;
    let mut mode = Mode::Parse;
    let mut schemas: Option<String> = None;
    let mut files = Vec::new();
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        let mut value = |name: &str| args.next().ok_or(format!("{name} needs a value"));
        match a.as_str() {
            "--repeat" => {
                repeat = value("--repeat")?.parse()?;
                if repeat == 0 {
                    return Err("--repeat must be at least 1".into());
                }
            }
            "--threads" => {
                let t: usize = value("--threads")?.parse()?;
                if t == 0 {
                    return Err("--threads must be at least 1".into());
                }
                threads = Some(t);
            }
            "--mode" => {
                let name = value("--mode")?;
                mode = Mode::ALL
                    .iter()
                    .find(|(n, _)| *n == name)
                    .map(|(_, m)| *m)
                    .ok_or(format!("unknown mode {name:?}\n{USAGE}"))?;
            }
            "--schemas" => schemas = Some(value("--schemas")?),
            "-h" | "--help" => {
                println!("{USAGE}");
                return Ok(());
            }
            _ => files.push(a),
        }
    }
    if files.is_empty() {
        return Err(USAGE.into());
    }
    let contracts = match (mode.contracts(), &schemas) {
        (true, Some(dir)) => Some(ContractSet::load_dir(Path::new(dir))?),
        (true, None) => return Err(format!("--mode {} needs --schemas DIR", mode.name()).into()),
        (false, _) => None,
    };
    let data: Vec<Vec<u8>> = files
        .iter()
        .map(|f| std::fs::read(f).map_err(|e| format!("{f}: {e}")))
        .collect::<Result<_, _>>()?;
    let bytes: usize = data.iter().map(Vec::len).sum();

    // The contract of each file (modes that validate), then the documents of every file.
    let mut file_contracts: Vec<Option<&Contract>> = Vec::new();
    for f in &files {
        let mut c = None;
        if let Some(set) = &contracts {
            let stem = Path::new(f)
                .file_stem()
                .and_then(|s| s.to_str())
                .ok_or(format!("{f}: no file name"))?;
            c = Some(
                set.contracts
                    .get(stem)
                    .ok_or(format!("{f}: no contract for collection {stem:?}"))?,
            );
        }
        file_contracts.push(c);
    }
    let mut items: Vec<Item> = Vec::new();
    let mut framing_errors = 0u64;
    for (buf, &contract) in data.iter().zip(&file_contracts) {
        if mode.bson() {
            let mut at = 0;
            while at < buf.len() {
                let len = buf
                    .get(at..at + 4)
                    .map(|b| i32::from_le_bytes([b[0], b[1], b[2], b[3]]))
                    .unwrap_or(0);
                if len < 5 || at + len as usize > buf.len() {
                    framing_errors += 1; // a truncated record ends the file
                    break;
                }
                items.push(Item {
                    bytes: &buf[at..at + len as usize],
                    contract,
                });
                at += len as usize;
            }
        } else {
            for line in buf.split(|&b| b == b'\n') {
                if line.iter().all(u8::is_ascii_whitespace) {
                    continue;
                }
                items.push(Item {
                    bytes: line,
                    contract,
                });
            }
        }
    }

    let work = |item: &Item| -> Counts {
        match mode {
            Mode::Parse => match serde_json::from_slice::<serde_json::Value>(item.bytes) {
                Ok(v) => {
                    black_box(&v);
                    (1, 0, 0)
                }
                Err(_) => (0, 1, 0),
            },
            Mode::Validate => match serde_json::from_slice::<serde_json::Value>(item.bytes) {
                Ok(v) => {
                    let versions = &item.contract.expect("contract").versions;
                    let ok = versions.iter().filter(|x| x.validator.is_valid(&v)).count();
                    (1, 0, ok as u64)
                }
                Err(_) => (0, 1, 0),
            },
            Mode::Walk => match RawDocument::from_bytes(item.bytes) {
                Ok(d) if walk_doc(d) => (1, 0, 0),
                _ => (0, 1, 0),
            },
            Mode::Preflight => match raw::preflight(item.bytes) {
                Some(d) => {
                    black_box(d);
                    (1, 0, 0)
                }
                None => (0, 1, 0),
            },
            Mode::ClassifyBson => {
                let contract = item.contract.expect("contract");
                classify(contract, item.bytes)
                    .unwrap_or_else(|| decoded(contract, from_bson(item.bytes).ok()))
            }
            Mode::ClassifyExport => {
                let contract = item.contract.expect("contract");
                TRANSCODER
                    .with(|t| {
                        t.borrow_mut()
                            .transcode(item.bytes)
                            .and_then(|d| classify(contract, d))
                    })
                    .unwrap_or_else(|| decoded(contract, from_json(item.bytes).ok()))
            }
        }
    };
    let pool = match threads {
        Some(t) => Some(rayon::ThreadPoolBuilder::new().num_threads(t).build()?),
        None => None,
    };

    let mut best = f64::INFINITY;
    let mut counts = (0, 0, 0);
    for _ in 0..repeat {
        let start = Instant::now();
        let c = match &pool {
            None => items.iter().map(work).fold((0, 0, 0), add),
            Some(pool) => pool.install(|| {
                items
                    .par_iter()
                    .with_min_len(256)
                    .map(work)
                    .reduce(|| (0, 0, 0), add)
            }),
        };
        let secs = start.elapsed().as_secs_f64();
        best = best.min(secs);
        counts = c;
    }
    let (docs, errors, valid) = counts;
    let mode_name = mode.name();
    let extra = match mode {
        Mode::Validate => format!(" versions_valid={valid}"),
        Mode::ClassifyBson | Mode::ClassifyExport => format!(" valid={valid}"),
        _ => String::new(),
    };
    println!(
        "mode={mode_name} threads={} docs={docs} errors={} bytes={bytes} seconds={best:.6} docs_per_sec={:.0} mib_per_sec={:.2}{extra}",
        threads.unwrap_or(1),
        errors + framing_errors,
        docs as f64 / best,
        bytes as f64 / best / (1024.0 * 1024.0)
    );
    Ok(())
}

thread_local! {
    static TRANSCODER: std::cell::RefCell<Transcoder> = std::cell::RefCell::new(Transcoder::new());
}

/// Preflight and classification in place of one BSON document: (1, 0, 1 when valid for the
/// target); `None` when the preflight refuses it.
fn classify(contract: &Contract, bytes: &[u8]) -> Option<Counts> {
    let (class, _) = classify_raw(contract, RawBson::root(raw::preflight(bytes)?));
    Some((1, 0, u64::from(class == Class::Valid)))
}

/// What the check does with a document the in-place path refuses: the decoded value
/// classified (an error when it does not decode).
fn decoded(contract: &Contract, d: Option<Decoded>) -> Counts {
    match d {
        Some(d) => {
            let (class, _) = classify_value(contract, &d.value);
            (1, 0, u64::from(class == Class::Valid))
        }
        None => (0, 1, 0),
    }
}

/// Visits every element of `doc`, recursing into documents and arrays; false when a
/// record is malformed.
fn walk_doc(doc: &RawDocument) -> bool {
    for el in doc {
        match el {
            Ok((key, value)) => {
                black_box(key);
                if !walk_value(value) {
                    return false;
                }
            }
            Err(_) => return false,
        }
    }
    true
}

fn walk_array(arr: &RawArray) -> bool {
    for el in arr {
        match el {
            Ok(value) => {
                if !walk_value(value) {
                    return false;
                }
            }
            Err(_) => return false,
        }
    }
    true
}

fn walk_value(value: RawBsonRef) -> bool {
    match value {
        RawBsonRef::Document(d) => walk_doc(d),
        RawBsonRef::Array(a) => walk_array(a),
        other => {
            black_box(other);
            true
        }
    }
}
