//! `docsweep contract`: `pull` turns a live collection's `$jsonSchema` validator and
//! indexes into a new contract version (`schemas/<C>/v<N>.schema.json` + a `[[versions]]`
//! entry); `infer` writes a contract from the data; `diff` compares a server with its
//! contracts.

use std::path::PathBuf;

use clap::{Args, Subcommand};

use crate::config::{Config, ConfigError};
use crate::contract::infer::{self, InferError, InferOptions, SchemaOptions, VersionsMode};
use crate::contract::pull;
use crate::report::Status;
use crate::source::{LiveOptions, Source, SourceSpec};

/// Work with contracts (schemas/<collection>/contract.toml).
#[derive(Debug, Args)]
pub struct ContractArgs {
    #[command(subcommand)]
    pub command: ContractCommand,
}

#[derive(Debug, Subcommand)]
pub enum ContractCommand {
    Pull(PullArgs),
    Infer(InferArgs),
    Diff(DiffArgs),
}

/// Write a collection's server-side $jsonSchema validator and its indexes as a new contract
/// version: schemas/<C>/v<N>.schema.json (JSON Schema 2020-12 over relaxed Extended JSON)
/// and a [[versions]] entry in schemas/<C>/contract.toml (created when missing). Never
/// overwrites an existing version or schema file.
#[derive(Debug, Args)]
#[command(
    disable_version_flag = true,
    after_help = "Examples:
  docsweep contract pull --source mongodb://localhost:27017/shop --collection orders
  docsweep contract pull --source mongodb://db.internal/shop --collection orders --version 3"
)]
pub struct PullArgs {
    /// The live deployment: mongodb://… or mongodb+srv://… [default: from docsweep.toml]
    #[arg(long, visible_alias = "uri", value_name = "S")]
    pub source: Option<String>,
    /// The collection to pull
    #[arg(short = 'c', long, value_name = "C")]
    pub collection: String,
    /// Contracts directory [default: from docsweep.toml, else ./schemas]
    #[arg(long, value_name = "DIR")]
    pub schemas: Option<PathBuf>,
    /// Version number to write [default: highest existing version + 1, or 1]
    #[arg(long, value_name = "N")]
    pub version: Option<u32>,
    /// Database, when the URI has none
    #[arg(short = 'd', long, value_name = "NAME")]
    pub db: Option<String>,
    /// Project configuration [default: ./docsweep.toml when present]
    #[arg(long, value_name = "FILE")]
    pub config: Option<PathBuf>,
}

/// Infer a contract from the documents of a collection: DIR/<C>/contract.toml and one
/// vN.schema.json per version (JSON Schema 2020-12 over relaxed Extended JSON). With
/// --versions auto the documents are grouped by shape (a shape that is a strict sub-shape of
/// another joins it: optional fields); versions are numbered by their earliest ObjectId _id,
/// else largest first, and the target is the largest version. The same data gives the same
/// files, byte for byte (sampling is seeded). Refuses to overwrite an existing contract.
#[derive(Debug, Args)]
#[command(after_help = "Examples:
  docsweep contract infer --source dump:backup-before-migration --collection orders
  docsweep contract infer --source mongodb://localhost:27017/shop --collection orders --all --closed --enums
  docsweep contract infer --source export:orders.json --collection orders --versions 1 --out schemas --force")]
pub struct InferArgs {
    /// Where the documents are: dump:PATH, archive:PATH, export:PATH or mongodb://… [default: from docsweep.toml]
    #[arg(long, visible_alias = "uri", value_name = "S")]
    pub source: Option<String>,
    /// The collection to infer
    #[arg(short = 'c', long, value_name = "C")]
    pub collection: String,
    /// Infer from a seeded sample of N documents (every document is still read)
    #[arg(
        long,
        value_name = "N",
        default_value_t = 10_000,
        conflicts_with = "all"
    )]
    pub sample: u64,
    /// Infer from every document
    #[arg(long)]
    pub all: bool,
    /// The seed of the sample
    #[arg(long, value_name = "S", default_value_t = 0)]
    pub seed: u64,
    /// `auto`: one version per cluster of shapes; `1`: one version for all documents
    #[arg(long, value_name = "auto|1", default_value = "auto", value_parser = parse_versions)]
    pub versions: VersionsMode,
    /// Contracts directory to write into [default: from docsweep.toml, else ./schemas]
    #[arg(long, value_name = "DIR")]
    pub out: Option<PathBuf>,
    /// A field is required when at least this share of a version's documents have it
    #[arg(long, value_name = "R", default_value_t = 1.0, value_parser = parse_ratio)]
    pub required_ratio: f64,
    /// additionalProperties: false on every object (fields not seen are errors)
    #[arg(long)]
    pub closed: bool,
    /// enum for strings with few distinct values
    #[arg(long)]
    pub enums: bool,
    /// Replace an existing contract
    #[arg(long)]
    pub force: bool,
    /// Database, when the source has several or the URI has none
    #[arg(short = 'd', long, value_name = "NAME")]
    pub db: Option<String>,
    /// Project configuration [default: ./docsweep.toml when present]
    #[arg(long, value_name = "FILE")]
    pub config: Option<PathBuf>,
}

/// Compare a live server with the contracts: each collection's $jsonSchema validator
/// (translated as `contract pull` does) with its contract's target schema (properties added
/// or removed, required, types, additionalProperties), validationLevel and validationAction
/// (a contract needs strict and error), and the indexes (missing, unexpected, different
/// options). Directions are the server's: "property added" is on the server, not in the
/// contract. Exits 1 on drift, 0 when there is none.
#[derive(Debug, Args)]
#[command(after_help = "Examples:
  docsweep contract diff --source mongodb://localhost:27017/shop
  docsweep contract diff --source mongodb://db.internal/shop --collection orders --json")]
pub struct DiffArgs {
    /// The live deployment: mongodb://… or mongodb+srv://… [default: from docsweep.toml]
    #[arg(long, visible_alias = "uri", value_name = "S")]
    pub source: Option<String>,
    /// Compare only these collections [default: every contract]
    #[arg(short = 'c', long = "collection", value_name = "C")]
    pub collections: Vec<String>,
    /// Contracts directory [default: from docsweep.toml, else ./schemas]
    #[arg(long, value_name = "DIR")]
    pub schemas: Option<PathBuf>,
    /// Compare with version V of collection C instead of its target
    #[arg(long = "target", value_name = "COLL=V")]
    pub targets: Vec<String>,
    /// Print JSON instead of a table
    #[arg(long)]
    pub json: bool,
    /// Database, when the URI has none
    #[arg(short = 'd', long, value_name = "NAME")]
    pub db: Option<String>,
    /// Project configuration [default: ./docsweep.toml when present]
    #[arg(long, value_name = "FILE")]
    pub config: Option<PathBuf>,
}

fn parse_versions(s: &str) -> Result<VersionsMode, String> {
    match s {
        "auto" => Ok(VersionsMode::Auto),
        "1" => Ok(VersionsMode::One),
        other => Err(format!("{other:?}: expected `auto` or `1`")),
    }
}

fn parse_ratio(s: &str) -> Result<f64, String> {
    match s.parse::<f64>() {
        Ok(r) if r > 0.0 && r <= 1.0 => Ok(r),
        _ => Err(format!(
            "{s:?}: expected a number above 0 and at most 1 (such as 0.95)"
        )),
    }
}

pub fn run(args: ContractArgs) -> anyhow::Result<Status> {
    match args.command {
        ContractCommand::Pull(a) => pull_cmd(a),
        ContractCommand::Infer(a) => infer_cmd(a),
        ContractCommand::Diff(a) => diff_cmd(a),
    }
}

fn pull_cmd(args: PullArgs) -> anyhow::Result<Status> {
    let cfg = Config::load(args.config.as_deref())?;
    let source = args.source.or_else(|| cfg.source.clone()).ok_or_else(|| {
        ConfigError::Usage("contract pull: --source mongodb://… is required".into())
    })?;
    let spec = SourceSpec::parse(&source)?;
    if !matches!(spec, SourceSpec::Mongo(_)) {
        return Err(ConfigError::Usage(format!(
            "contract pull reads a live server's validator: --source must be mongodb://… or \
             mongodb+srv://…, not {spec}"
        ))
        .into());
    }
    let schemas = match (&args.schemas, &cfg.schemas) {
        (Some(s), _) => s.clone(),
        (None, Some(s)) => cfg.resolve(s),
        (None, None) => PathBuf::from("schemas"),
    };
    // Refuse an existing version before touching the server.
    let prepared = pull::prepare(&schemas, &args.collection, args.version)?;

    let db = args.db.as_deref().or(cfg.db.as_deref());
    let source = Source::open_with(&spec, db, &LiveOptions::default())?;
    let database = source.database.clone().unwrap_or_default();
    let Some(cs) = source.collection(&args.collection) else {
        return Err(ConfigError::Usage(format!(
            "--collection {}: database {database:?} on {spec} has no such collection",
            args.collection
        ))
        .into());
    };
    let live = cs.live().expect("a mongodb:// source has live collections");
    let options = live.collection_options(&cs.name)?;
    let translation = pull::translate_options(options.as_ref()).map_err(|e| {
        ConfigError::Usage(format!(
            "collection {}: its validator cannot be translated: {e}",
            cs.name
        ))
    })?;
    let indexes = source.indexes(cs)?.unwrap_or_default();
    let comment = format!(
        "pulled by `docsweep contract pull` from {spec} ({database}.{}) at {}",
        cs.name,
        crate::report::now_rfc3339()
    );
    let written = pull::write(&prepared, &translation.schema, &indexes, Some(&comment))?;
    for n in &translation.notes {
        eoutln!("docsweep: note: {}: {n}", cs.name);
    }
    outln!(
        "wrote version {} of {}: {} and {} ({} index(es) besides _id_)",
        written.version,
        cs.name,
        written.schema_path.display(),
        written.contract_path.display(),
        written.indexes
    );
    if written.created {
        outln!(
            "  created {} with target = {}",
            written.contract_path.display(),
            written.target
        );
    } else if written.target != written.version {
        outln!(
            "  the target is still version {}; set `target = {}` in {} (or pass --target {}={}) \
             to check against the pulled version",
            written.target,
            written.version,
            written.contract_path.display(),
            cs.name,
            written.version
        );
    }
    Ok(Status::Clean)
}

fn infer_cmd(args: InferArgs) -> anyhow::Result<Status> {
    let cfg = Config::load(args.config.as_deref())?;
    let spec = infer_source(&cfg, args.source.as_deref())?;
    let out = match (&args.out, &cfg.schemas) {
        (Some(s), _) => s.clone(),
        (None, Some(s)) => cfg.resolve(s),
        (None, None) => PathBuf::from("schemas"),
    };
    // Refuse an existing contract before reading anything.
    let contract_path = infer::prepare(&out, &args.collection, args.force)?;
    let db = args.db.as_deref().or(cfg.db.as_deref());
    let source = Source::open_with(&spec, db, &LiveOptions::default())?;
    let Some(cs) = source.collection(&args.collection) else {
        let names: Vec<&str> = source.collections.iter().map(|c| c.name.as_str()).collect();
        return Err(ConfigError::Usage(format!(
            "--collection {}: {spec} has no such collection (it has: {})",
            args.collection,
            if names.is_empty() {
                "none".to_string()
            } else {
                names.join(", ")
            }
        ))
        .into());
    };
    let opts = InferOptions {
        versions: args.versions,
        sample: if args.all { None } else { Some(args.sample) },
        seed: args.seed,
        schema: SchemaOptions {
            required_ratio: args.required_ratio,
            closed: args.closed,
            enums: args.enums,
        },
    };
    let inference = match infer::infer(&source, cs, &opts) {
        Ok(i) => i,
        Err(InferError::Empty {
            collection,
            source_name,
            detail,
        }) => {
            return Err(ConfigError::Usage(format!(
                "collection {collection} in {source_name}: no documents to infer a contract from{detail}"
            ))
            .into())
        }
        Err(InferError::Source(e)) => return Err(e.into()),
    };
    let provenance = provenance(&spec, &cs.name, &inference, &args);
    let written = infer::write(&contract_path, &inference, &provenance)?;
    for n in &inference.notes {
        eoutln!("docsweep: note: {}: {n}", cs.name);
    }
    print_inference(&cs.name, &inference, &written, args.seed);
    Ok(Status::Clean)
}

/// `--source`, else docsweep.toml's (relative to its folder).
fn infer_source(cfg: &Config, given: Option<&str>) -> anyhow::Result<SourceSpec> {
    let source = match given {
        Some(s) => s.to_string(),
        None => cfg.source()?.ok_or_else(|| {
            ConfigError::Usage(
                "contract infer: --source is required (dump:…, export:…, mongodb://…)".into(),
            )
        })?,
    };
    let spec = SourceSpec::parse(&source)?;
    // Paths in docsweep.toml are relative to its folder.
    Ok(if given.is_none() {
        spec.relative_to(&cfg.base)
    } else {
        spec
    })
}

/// The contract's comment on where it came from.
fn provenance(
    spec: &SourceSpec,
    collection: &str,
    inference: &infer::Inference,
    args: &InferArgs,
) -> String {
    let mut provenance =
        format!("Inferred by `docsweep contract infer` from {spec}, collection {collection}: ");
    if inference.used == inference.read {
        provenance.push_str(&format!("all {} document(s)", inference.read));
    } else {
        provenance.push_str(&format!(
            "a sample of {} of {} document(s) (seed {})",
            inference.used, inference.read, args.seed
        ));
    }
    provenance.push_str(match args.versions {
        VersionsMode::Auto => ", versions by shape.",
        VersionsMode::One => ", one version.",
    });
    provenance.push_str(
        "\nReview the schemas, the target and the suggested references before relying on them.",
    );
    provenance
}

/// Prints what was inferred: the versions, their differences and suggested references,
/// and the files written.
fn print_inference(
    collection: &str,
    inference: &infer::Inference,
    written: &infer::Written,
    seed: u64,
) {
    let sampled = if inference.used == inference.read {
        format!("{} document(s)", inference.read)
    } else {
        format!(
            "a sample of {} of {} document(s) (seed {seed}; --all to use every one)",
            inference.used, inference.read
        )
    };
    outln!(
        "{collection}: inferred {} version(s) from {sampled}, {} shape(s)",
        inference.versions.len(),
        inference.shapes
    );
    for v in &inference.versions {
        print_version(inference, v);
    }
    if inference.versions.len() > 1 {
        outln!(
            "target = {}: the largest version; set `target` in {} to the version every document must match now",
            inference.target,
            written.contract_path.display()
        );
    }
    let files: Vec<String> = written
        .schema_paths
        .iter()
        .map(|p| p.display().to_string())
        .collect();
    outln!(
        "wrote {} and {}",
        written.contract_path.display(),
        files.join(", ")
    );
}

/// One inferred version's lines.
fn print_version(inference: &infer::Inference, v: &infer::InferredVersion) {
    let mut line = format!("  v{}  {:>8} document(s)", v.version, v.documents);
    if v.version == inference.target {
        line.push_str("  [target]");
    }
    outln!("{line}");
    if inference.versions.len() > 1 {
        if !v.only_here.is_empty() {
            outln!(
                "        only in v{}: {}",
                v.version,
                infer::describe(&v.only_here, 8)
            );
        }
        if !v.lacks.is_empty() {
            let lacks: Vec<String> = v.lacks.iter().take(8).cloned().collect();
            let more = if v.lacks.len() > 8 {
                format!(", … {} more", v.lacks.len() - 8)
            } else {
                String::new()
            };
            outln!("        lacks: {}{more}", lacks.join(", "));
        }
    }
    for (f, c) in &v.references {
        outln!("        suggested reference (commented out): {f} → {c}._id");
    }
}

fn diff_cmd(args: DiffArgs) -> anyhow::Result<Status> {
    let cfg = Config::load(args.config.as_deref())?;
    let source = match &args.source {
        Some(s) => s.clone(),
        None => cfg.source()?.ok_or_else(|| {
            ConfigError::Usage("contract diff: --source mongodb://… is required".into())
        })?,
    };
    let spec = SourceSpec::parse(&source)?;
    if !matches!(spec, SourceSpec::Mongo(_)) {
        return Err(ConfigError::Usage(format!(
            "contract diff reads a live server's validator and indexes: --source must be \
             mongodb://… or mongodb+srv://…, not {spec}"
        ))
        .into());
    }
    let (contracts, names) = diff_contracts(&cfg, &args)?;
    let db = args.db.as_deref().or(cfg.db.as_deref());
    let source = Source::open_with(&spec, db, &LiveOptions::default())?;
    let database = source.database.clone().unwrap_or_default();
    for c in &args.collections {
        if source.collection(c).is_none() {
            return Err(ConfigError::Usage(format!(
                "--collection {c}: database {database:?} on {spec} has no such collection"
            ))
            .into());
        }
    }
    let mut drifts = Vec::new();
    for name in &names {
        let contract = &contracts.contracts[name];
        let d = crate::contract::diff::live_drift(&source, contract).map_err(|e| match e {
            crate::contract::diff::LiveDriftError::Source(s) => anyhow::Error::new(s),
            crate::contract::diff::LiveDriftError::Contract(c) => anyhow::Error::new(c),
        })?;
        drifts.push(d);
    }
    let drifted = drifts.iter().filter(|d| d.drifted()).count();
    if args.json {
        print_drift_json(&drifts, &spec, &database, drifted);
    } else {
        print_drift_table(&drifts, &spec, &database, drifted);
    }
    Ok(if drifted > 0 {
        Status::Findings
    } else {
        Status::Clean
    })
}

/// The contracts to compare (with the targets applied) and the collections chosen.
fn diff_contracts(
    cfg: &Config,
    args: &DiffArgs,
) -> anyhow::Result<(crate::contract::ContractSet, Vec<String>)> {
    let schemas = match (&args.schemas, &cfg.schemas) {
        (Some(s), _) => s.clone(),
        (None, Some(s)) => cfg.resolve(s),
        (None, None) => PathBuf::from("schemas"),
    };
    let mut contracts = crate::contract::ContractSet::load_dir(&schemas)?;
    let mut targets: Vec<(String, u32)> =
        cfg.targets.iter().map(|(c, v)| (c.clone(), *v)).collect();
    for t in &args.targets {
        targets.push(crate::config::parse_target(t)?);
    }
    for (coll, v) in &targets {
        if let Some(c) = contracts.contracts.get_mut(coll) {
            c.set_target(*v)?;
        } else if args
            .targets
            .iter()
            .any(|t| t.starts_with(&format!("{coll}=")))
        {
            return Err(ConfigError::Usage(format!(
                "--target {coll}={v}: no contract for collection {coll:?} in {}",
                schemas.display()
            ))
            .into());
        }
    }
    if args.collections.is_empty() {
        let names = contracts.contracts.keys().cloned().collect();
        return Ok((contracts, names));
    }
    for c in &args.collections {
        if !contracts.contracts.contains_key(c) {
            return Err(ConfigError::Usage(format!(
                "--collection {c}: no contract for it in {} (write one with `docsweep contract infer` or `contract pull`)",
                schemas.display()
            ))
            .into());
        }
    }
    Ok((contracts, args.collections.clone()))
}

/// `contract diff --json`: the drift of every collection, as one JSON document.
fn print_drift_json(
    drifts: &[crate::contract::diff::Drift],
    spec: &SourceSpec,
    database: &str,
    drifted: usize,
) {
    let collections: Vec<serde_json::Value> = drifts
        .iter()
        .map(|d| {
            let mut j = d.to_json();
            if let Some(o) = j.as_object_mut() {
                let mut m = serde_json::Map::new();
                m.insert("name".into(), serde_json::Value::from(d.collection.clone()));
                m.extend(std::mem::take(o));
                *o = m;
            }
            j
        })
        .collect();
    let out = serde_json::json!({
        "format": "docsweep-drift/1",
        "source": spec.to_string(),
        "database": database,
        "drift": drifted > 0,
        "collections": collections,
    });
    outln!(
        "{}",
        serde_json::to_string_pretty(&out).expect("JSON serialises")
    );
}

/// `contract diff`: the drift table, its notes, and a summary line when anything drifted.
fn print_drift_table(
    drifts: &[crate::contract::diff::Drift],
    spec: &SourceSpec,
    database: &str,
    drifted: usize,
) {
    crate::out!("{}", crate::contract::diff::table(drifts));
    for d in drifts {
        for n in &d.notes {
            eoutln!("docsweep: note: {}: {n}", d.collection);
        }
    }
    if drifted > 0 {
        outln!(
            "drift in {drifted} of {} collection(s) of {database} on {spec}",
            drifts.len()
        );
    }
}

#[cfg(test)]
mod tests {
    use clap::{CommandFactory, Parser};

    use super::*;
    use crate::cli::{Cli, Command};

    #[test]
    fn parses_contract_pull() {
        Cli::command().debug_assert();
        let cli = Cli::try_parse_from([
            "docsweep",
            "contract",
            "pull",
            "--source",
            "mongodb://h/db",
            "--collection",
            "c",
            "--version",
            "3",
            "--schemas",
            "s",
        ])
        .unwrap();
        let Command::Contract(ContractArgs {
            command: ContractCommand::Pull(p),
        }) = cli.command
        else {
            panic!("not contract pull");
        };
        assert_eq!(p.version, Some(3));
        assert_eq!(p.collection, "c");
        assert_eq!(p.schemas, Some(PathBuf::from("s")));
    }
}
