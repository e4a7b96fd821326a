//! `docsweep snapshot`: record every document's `_id` and fingerprints (and each
//! collection's indexes) before a change, for `check --baseline FILE` afterwards.

use std::path::PathBuf;

use anyhow::Context;
use clap::Args;

use crate::reconcile::snapshot::{self, CollectionData, CollectionHeader, Header};
use crate::report::{self, Status};
use crate::scan::fingerprint_collection;
use crate::source::{Source, SourceSpec};

/// Take a snapshot of a source: per collection every document's _id and 128-bit
/// fingerprints, plus the indexes, in a small checksummed file.
#[derive(Debug, Args)]
#[command(after_help = "Examples:
  docsweep snapshot --source dump:./dump --out before.snap
  docsweep check --source dump:./dump-after --baseline before.snap")]
pub struct SnapshotArgs {
    /// The data: dump:PATH, archive:PATH (mongodump --archive) or export:PATH
    #[arg(long, visible_alias = "uri", value_name = "S")]
    pub source: String,
    /// The snapshot file to write (atomically)
    #[arg(long, value_name = "FILE")]
    pub out: PathBuf,
    /// Only these collections (repeatable) [default: all in the source]
    #[arg(short = 'c', long = "collection", value_name = "C")]
    pub collections: Vec<String>,
    /// Database to read when the source holds several
    #[arg(short = 'd', long, value_name = "NAME")]
    pub db: Option<String>,
    /// Also keep the complete documents (compressed), so repairs can restore them
    #[arg(long)]
    pub full: bool,
    /// Worker threads (0: one per core)
    #[arg(long, value_name = "N", default_value_t = 0)]
    pub threads: usize,
    /// Only the collections whose namespace DB.COLLECTION matches (repeatable; `*` matches
    /// any characters)
    #[arg(long = "nsInclude", value_name = "PATTERN")]
    pub ns_include: Vec<String>,
    /// Leave out the collections whose namespace DB.COLLECTION matches (repeatable)
    #[arg(long = "nsExclude", value_name = "PATTERN")]
    pub ns_exclude: Vec<String>,
    /// Never draw progress bars (they are drawn only when stderr is a terminal)
    #[arg(long)]
    pub no_progress: bool,
}

pub fn run(args: SnapshotArgs) -> anyhow::Result<Status> {
    let spec = SourceSpec::parse(&args.source)?;
    let ns = crate::source::NsFilter::new(&args.ns_include, &args.ns_exclude)
        .map_err(crate::config::ConfigError::Usage)?;
    let progress = !args.no_progress && std::io::IsTerminal::is_terminal(&std::io::stderr());
    let live = crate::source::LiveOptions {
        estimate_counts: progress,
        ..Default::default()
    };
    let source = Source::open_with(&spec, args.db.as_deref(), &live)?;
    for c in &args.collections {
        if source.collection(c).is_none() {
            return Err(crate::config::ConfigError::Usage(format!(
                "--collection {c}: the source has no such collection"
            ))
            .into());
        }
    }
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(args.threads)
        .build()
        .context("cannot start worker threads")?;
    let mut header = Header {
        source: spec.to_string(),
        database: source.database.clone(),
        taken_at: report::now_rfc3339(),
        full: args.full,
        collections: Vec::new(),
    };
    let mut data = Vec::new();
    for cs in &source.collections {
        if !args.collections.is_empty() && !args.collections.contains(&cs.name) {
            continue;
        }
        if !ns.takes(source.database.as_deref(), &cs.name) {
            continue;
        }
        let indexes = source.indexes(cs)?.map(|list| {
            list.iter()
                .map(crate::contract::IndexSpec::to_report_json)
                .collect()
        });
        let mut compressed = args
            .full
            .then(|| flate2::write::DeflateEncoder::new(Vec::new(), flate2::Compression::fast()));
        let (entries, ids) = fingerprint_collection(
            &source,
            cs,
            &pool,
            crate::source::BATCH_RECORDS,
            compressed.as_mut().map(|c| c as &mut dyn std::io::Write),
            progress,
            "",
        )?;
        let documents = match compressed {
            Some(c) => Some(c.finish().context("cannot compress the documents")?),
            None => None,
        };
        header.collections.push(CollectionHeader {
            name: cs.name.clone(),
            documents: entries.len() as u64,
            indexes,
        });
        data.push(CollectionData {
            entries,
            reconciler: None,
            ids,
            documents,
        });
    }
    if header.collections.is_empty() && !ns.is_empty() {
        return Err(crate::config::ConfigError::Usage(format!(
            "--nsInclude/--nsExclude: no collection of the source is left (database {})",
            source.database.as_deref().unwrap_or("(none)")
        ))
        .into());
    }
    let bytes = snapshot::write(&args.out, &header, &data)?;
    let docs: u64 = header.collections.iter().map(|c| c.documents).sum();
    outln!(
        "snapshot {}: {} collection(s), {docs} documents with an _id, {bytes} bytes",
        args.out.display(),
        header.collections.len()
    );
    for c in &header.collections {
        outln!("  {:<24} {}", c.name, c.documents);
    }
    Ok(Status::Clean)
}
