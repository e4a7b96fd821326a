//! `docsweep contract pull`: turn a live collection's `$jsonSchema` validator and indexes
//! into a new contract version (`schemas/<C>/v<N>.schema.json` + a `[[versions]]` entry).

use std::path::PathBuf;

use clap::{Args, Subcommand};

use crate::config::{Config, ConfigError};
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

pub fn run(args: ContractArgs) -> anyhow::Result<Status> {
    match args.command {
        ContractCommand::Pull(a) => pull_cmd(a),
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
