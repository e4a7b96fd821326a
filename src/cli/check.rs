//! `docsweep check`: arguments → [`Settings`] (the flags over docsweep.toml, validated,
//! the contracts loaded) → [`crate::check::run`] → the run's status.

use std::io::IsTerminal;
use std::path::PathBuf;

use clap::Args;

use crate::check::{BaselineSpec, Settings};
use crate::config::{parse_target, Config, ConfigError};
use crate::contract::ContractSet;
use crate::report::{self, Status};
use crate::scan::ScanOptions;
use crate::source::{LiveOptions, NsFilter, Partition, Query, SourceSpec};

/// Check every document against its collection's contract, plus indexes, unique keys
/// and references; write report.json and violations.csv.
///
/// Exit codes: 0 clean (or findings under their fail thresholds), 1 findings, 2
/// usage/configuration/contract error, 3 the source failed (what was scanned before the
/// failure is still reported) or a `required` [[notify]] hook failed.
#[derive(Debug, Args)]
#[command(after_help = "Examples:
  docsweep check --source dump:./dump --schemas ./schemas
  docsweep check --source export:./export/orders.json --target orders=1
  docsweep check                      # everything from ./docsweep.toml
  docsweep check --partition 2/8 --report-dir parts/2   # then: docsweep merge parts/*
  docsweep check --checkpoint sweep.ckpt               # re-run the same to continue")]
pub struct CheckArgs {
    /// The data: dump:PATH (mongodump), archive:PATH (mongodump --archive), export:PATH
    /// (mongoexport) or mongodb://…
    #[arg(long, visible_alias = "uri", value_name = "S")]
    pub source: Option<String>,
    #[command(flatten)]
    pub report: ReportArgs,
    #[command(flatten)]
    pub scan: ScanArgs,
}

/// The flags of a check besides the source and [`ReportArgs`]. A merge takes them from
/// the partitions' header instead (see `cli::merge`).
#[derive(Debug, Default, Args)]
pub struct ScanArgs {
    /// Database to read when the source holds several
    #[arg(short = 'd', long, value_name = "NAME")]
    pub db: Option<String>,
    /// Worker threads [default: one per core]
    #[arg(long, value_name = "N")]
    pub threads: Option<usize>,
    /// Schema errors kept per invalid document [default: 10]
    #[arg(long, value_name = "N")]
    pub max_errors: Option<usize>,
    /// Show document values in error messages (they may be personal data)
    #[arg(long)]
    pub show_values: bool,
    /// Never draw progress bars (they are drawn only when stderr is a terminal)
    #[arg(long)]
    pub no_progress: bool,
    /// Live sources: documents per round trip [default: 1000]
    #[arg(long, value_name = "N")]
    pub batch_size: Option<u32>,
    /// Live sources: server time limit per round trip (maxTimeMS)
    #[arg(long, value_name = "MS")]
    pub max_time_ms: Option<u64>,
    /// Live sources: retries of a failed read (with backoff, resuming after the last _id)
    /// [default: 5]
    #[arg(long, value_name = "N")]
    pub retries: Option<u32>,
    /// Live sources: seconds to find a server unless the URI sets serverSelectionTimeoutMS
    /// [default: 10]
    #[arg(long, value_name = "SECS")]
    pub connect_timeout: Option<u64>,
    /// Live sources: where to read: primary (the default, with read concern majority),
    /// primaryPreferred, secondary, secondaryPreferred or nearest; overrides the URI's
    /// readPreference
    #[arg(long, value_name = "MODE")]
    pub read_preference: Option<String>,
    /// Live sources: the most a secondary may lag, in seconds, to be read from
    /// (maxStalenessSeconds; at least 90)
    #[arg(long, value_name = "SECS")]
    pub max_staleness: Option<u64>,
    /// Scan only the i-th (0-based) of N contiguous ranges of every collection and write
    /// a partial result (REPORT_DIR/partial.dsw) for `docsweep merge`
    #[arg(long, value_name = "i/N")]
    pub partition: Option<String>,
    /// Record progress in FILE; after an interruption the same command continues from it
    /// (deleted once the check completes)
    #[arg(long, value_name = "FILE")]
    pub checkpoint: Option<PathBuf>,
    /// Records per batch handed to the workers (results never depend on it)
    #[arg(long, value_name = "N", hide = true)]
    pub batch_records: Option<usize>,
    /// Live sources: check only the documents this Extended JSON filter matches, in the
    /// one collection given with -c (a partial check: references into it are not verified)
    #[arg(short = 'q', long, value_name = "JSON")]
    pub query: Option<String>,
}

/// What a check reports against and where: shared by `check` and `merge`, which must
/// agree on the contracts, targets, collections and baseline.
#[derive(Debug, Args)]
pub struct ReportArgs {
    /// Directory of <collection>/contract.toml [default: schemas]
    #[arg(long, value_name = "DIR")]
    pub schemas: Option<PathBuf>,
    /// Target version for a collection, overriding contract.toml (repeatable)
    #[arg(long = "target", value_name = "COLL=V")]
    pub targets: Vec<String>,
    /// Check only these collections (repeatable) [default: every contract]
    #[arg(short = 'c', long = "collection", value_name = "C")]
    pub collections: Vec<String>,
    /// Check only the collections whose namespace DB.COLLECTION matches (repeatable; `*`
    /// matches any characters)
    #[arg(long = "nsInclude", value_name = "PATTERN")]
    pub ns_include: Vec<String>,
    /// Leave out the collections whose namespace DB.COLLECTION matches (repeatable)
    #[arg(long = "nsExclude", value_name = "PATTERN")]
    pub ns_exclude: Vec<String>,
    /// The state before the change, to reconcile with by _id: a snapshot file (from
    /// `docsweep snapshot`) or a dump:/archive:/export: source
    #[arg(long, value_name = "S")]
    pub baseline: Option<String>,
    /// Where report.json and violations.csv go [default: docsweep-report]
    #[arg(long, value_name = "DIR")]
    pub report_dir: Option<PathBuf>,
    /// More repair-template directories, for the remediations (repeatable)
    #[arg(long = "templates", value_name = "DIR")]
    pub template_dirs: Vec<PathBuf>,
    /// Also write a self-contained HTML report here
    #[arg(long, value_name = "FILE")]
    pub html: Option<PathBuf>,
    /// Also write JUnit XML here (one test case per collection and check)
    #[arg(long, value_name = "FILE")]
    pub junit: Option<PathBuf>,
    /// Also write Prometheus text-format metrics here (for a node-exporter textfile collector)
    #[arg(long, value_name = "FILE")]
    pub metrics: Option<PathBuf>,
    /// Warn when a check reaches this, a count or a percentage of the collection's
    /// documents, e.g. invalid=1 or orphans=0.5%; other_version:2=1 for one version
    /// (repeatable; over [thresholds])
    #[arg(long = "warn-on", value_name = "KIND=N|P%")]
    pub warn_on: Vec<String>,
    /// Fail when a check reaches this (repeatable; over [thresholds]). With thresholds, a
    /// check without one fails at 1 finding; without any, every finding fails
    #[arg(long = "fail-on", value_name = "KIND=N|P%")]
    pub fail_on: Vec<String>,
    /// Warnings fail the run too
    #[arg(long)]
    pub strict: bool,
    /// Project configuration [default: ./docsweep.toml when present]
    #[arg(long, value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// The audit log (JSON lines) to append this run to [default: `audit` in docsweep.toml,
    /// else docsweep-audit.jsonl]
    #[arg(long, value_name = "FILE")]
    pub audit: Option<PathBuf>,
    /// Who runs this, for the audit log [default: $DOCSWEEP_ACTOR, else $USER, else the
    /// uid's name; then @host]
    #[arg(long, value_name = "NAME")]
    pub actor: Option<String>,
    /// Run no [[notify]] hook
    #[arg(long)]
    pub no_notify: bool,
    /// The previous run to compare with (`since_previous` in report.json): a report
    /// directory, or a report.json [default: the report.json this run replaces in
    /// --report-dir]
    #[arg(long, value_name = "REPORT_DIR")]
    pub previous: Option<PathBuf>,
}

/// `docsweep check`.
pub fn run(args: CheckArgs) -> anyhow::Result<Status> {
    let s = settings(args.source, args.report, args.scan)?;
    crate::check::run(&s)
}

/// Settings after merging arguments over docsweep.toml, validated before any work; the
/// last step loads the contracts.
pub(crate) fn settings(
    source: Option<String>,
    report: ReportArgs,
    scan: ScanArgs,
) -> anyhow::Result<Settings> {
    let cfg = Config::load(report.config.as_deref())?;
    if let Some(name) = &report.actor {
        crate::os::set_actor(name);
    }
    let source = source_spec(&cfg, source.as_deref())?;
    let report_dir = match (&report.report_dir, &cfg.report_dir) {
        (Some(s), _) => s.clone(),
        (None, Some(s)) => cfg.resolve(s),
        (None, None) => PathBuf::from("docsweep-report"),
    };
    let mut targets: Vec<(String, u32)> =
        cfg.targets.iter().map(|(c, v)| (c.clone(), *v)).collect();
    for t in &report.targets {
        targets.push(parse_target(t)?);
    }
    let baseline = match (&report.baseline, &cfg.baseline) {
        (Some(b), _) => Some(BaselineSpec::parse(b, None)?),
        (None, Some(b)) => Some(BaselineSpec::parse(b, Some(&cfg.base))?),
        (None, None) => None,
    };
    let (partition, checkpoint) = partition_and_checkpoint(&cfg, &scan)?;
    let threads = scan.threads.or(cfg.threads).unwrap_or(0);
    let (read_preference, max_staleness) = read_preference(&cfg, &scan)?;
    let ns = NsFilter::new(&report.ns_include, &report.ns_exclude).map_err(ConfigError::Usage)?;
    let query = query(&cfg, &report, &scan, &source)?;
    if threads > 1024 {
        return Err(ConfigError::Usage(format!("--threads {threads}: at most 1024")).into());
    }
    let gate = gate(&cfg, &report)?;
    let notify = notify(&cfg, &report)?;
    let live = LiveOptions {
        read_preference,
        max_staleness,
        query,
        ..live_options(&cfg, &scan)
    };
    Settings {
        ns,
        gate,
        notify,
        previous: previous(&cfg, &report, &report_dir),
        audit: match (&report.audit, &cfg.audit) {
            (Some(a), _) => a.clone(),
            (None, Some(a)) => cfg.resolve(a),
            (None, None) => PathBuf::from(crate::audit::DEFAULT_FILE),
        },
        source,
        schemas: match (&report.schemas, &cfg.schemas) {
            (Some(s), _) => s.clone(),
            (None, Some(s)) => cfg.resolve(s),
            (None, None) => cfg.resolve(&PathBuf::from("schemas")),
        },
        report_dir,
        db: scan.db.clone().or(cfg.db.clone()),
        collections: if report.collections.is_empty() {
            cfg.collections.clone()
        } else {
            report.collections
        },
        targets,
        baseline,
        partition,
        checkpoint,
        html: report.html.or_else(|| resolved(&cfg, &cfg.html)),
        template_dirs: if report.template_dirs.is_empty() {
            cfg.templates.iter().map(|p| cfg.resolve(p)).collect()
        } else {
            report.template_dirs
        },
        junit: report.junit.or_else(|| resolved(&cfg, &cfg.junit)),
        metrics: report.metrics.or_else(|| resolved(&cfg, &cfg.metrics)),
        live,
        scan: scan_options(&cfg, &scan, threads),
        contracts: ContractSet::default(),
    }
    .load_contracts()
}

/// A path of docsweep.toml, resolved against the file's directory.
fn resolved(cfg: &Config, p: &Option<PathBuf>) -> Option<PathBuf> {
    p.as_ref().map(|p| cfg.resolve(p))
}

/// `--source`, else docsweep.toml's. Paths in the file are relative to it; a source from
/// the command line or the environment is relative to the working directory.
fn source_spec(cfg: &Config, given: Option<&str>) -> anyhow::Result<SourceSpec> {
    let source_str = match given {
        Some(s) => Some(s.to_string()),
        None => cfg.source()?,
    };
    let source_str = source_str.ok_or_else(|| {
        ConfigError::Usage("no source: give --source dump:PATH|archive:PATH|export:PATH|mongodb://… or set `source` in docsweep.toml".into())
    })?;
    let source = SourceSpec::parse(&source_str)?;
    Ok(if given.is_none() && cfg.source.is_some() {
        source.relative_to(&cfg.base)
    } else {
        source
    })
}

/// `--partition` and `--checkpoint` (which cannot be combined).
fn partition_and_checkpoint(
    cfg: &Config,
    scan: &ScanArgs,
) -> anyhow::Result<(Option<Partition>, Option<PathBuf>)> {
    let partition = scan
        .partition
        .as_deref()
        .map(Partition::parse)
        .transpose()
        .map_err(ConfigError::Usage)?;
    // A partition is re-run whole; a checkpoint set in docsweep.toml does not apply to it.
    let checkpoint = match (&partition, &scan.checkpoint) {
        (None, None) => resolved(cfg, &cfg.checkpoint),
        (_, given) => given.clone(),
    };
    if partition.is_some() && scan.checkpoint.is_some() {
        return Err(ConfigError::Usage(
            "--partition and --checkpoint cannot be combined: re-run an interrupted partition instead".into(),
        )
        .into());
    }
    Ok((partition, checkpoint))
}

/// `--read-preference` and `--max-staleness` (over `[live]`), validated.
fn read_preference(cfg: &Config, scan: &ScanArgs) -> anyhow::Result<(Option<String>, Option<u64>)> {
    let read_pref = scan
        .read_preference
        .clone()
        .or_else(|| cfg.live.read_preference.clone());
    let max_staleness = scan.max_staleness.or(cfg.live.max_staleness);
    match &read_pref {
        Some(mode) => {
            crate::source::read_preference(mode, max_staleness).map_err(ConfigError::Usage)?;
        }
        None if max_staleness.is_some() => {
            return Err(ConfigError::Usage(
                "--max-staleness needs --read-preference (other than primary)".into(),
            )
            .into())
        }
        None => {}
    }
    Ok((read_pref, max_staleness))
}

/// `--query`: a filter of one collection of a live source, without a baseline.
fn query(
    cfg: &Config,
    report: &ReportArgs,
    scan: &ScanArgs,
    source: &SourceSpec,
) -> anyhow::Result<Option<Query>> {
    let Some(text) = &scan.query else {
        return Ok(None);
    };
    if !matches!(source, SourceSpec::Mongo(_)) {
        return Err(ConfigError::Usage(format!(
            "--query: a filter for a live source (mongodb://…); {source} is read whole \
             (mongodump and mongoexport take --query when the files are made)"
        ))
        .into());
    }
    let chosen = if report.collections.is_empty() {
        &cfg.collections
    } else {
        &report.collections
    };
    let [coll] = chosen.as_slice() else {
        return Err(ConfigError::Usage(
            "--query needs exactly one --collection (-c), the collection it filters".into(),
        )
        .into());
    };
    if report.baseline.is_some() || cfg.baseline.is_some() {
        return Err(ConfigError::Usage(
            "--query cannot be combined with a baseline: every document the query leaves out would count as missing".into(),
        )
        .into());
    }
    Ok(Some(Query::parse(coll, text).map_err(ConfigError::Usage)?))
}

/// The thresholds: `[thresholds]`, `--warn-on`, `--fail-on`, `--strict`.
fn gate(cfg: &Config, report: &ReportArgs) -> anyhow::Result<report::gate::Gate> {
    Ok(report::gate::Gate::new(
        cfg.thresholds.as_ref(),
        &report.warn_on,
        &report.fail_on,
        report.strict,
    )
    .map_err(|m| match &cfg.path {
        Some(p) if !m.starts_with("--") => ConfigError::Usage(format!("{}: {m}", p.display())),
        _ => ConfigError::Usage(m),
    })?)
}

/// The `[[notify]]` hooks (none with `--no-notify`).
fn notify(cfg: &Config, report: &ReportArgs) -> anyhow::Result<Vec<report::notify::Hook>> {
    if report.no_notify {
        return Ok(Vec::new());
    }
    Ok(report::notify::hooks(&cfg.notify).map_err(|m| {
        let file = cfg
            .path
            .clone()
            .unwrap_or_else(|| crate::config::FILE_NAME.into());
        ConfigError::Usage(format!("{}: {m}", file.display()))
    })?)
}

/// The previous run: named (a missing report is then a warning), else the report
/// directory's own report.json, read before this run replaces it.
fn previous(cfg: &Config, report: &ReportArgs, report_dir: &std::path::Path) -> (PathBuf, bool) {
    match (&report.previous, &cfg.previous) {
        (Some(p), _) => (p.clone(), true),
        (None, Some(p)) => (cfg.resolve(p), true),
        (None, None) => (report_dir.to_path_buf(), false),
    }
}

/// How a live source is read (`--read-preference`, `--max-staleness` and `--query` are
/// set by the caller).
fn live_options(cfg: &Config, scan: &ScanArgs) -> LiveOptions {
    LiveOptions {
        batch_size: scan
            .batch_size
            .or(cfg.live.batch_size)
            .unwrap_or(1000)
            .max(1),
        max_time: scan
            .max_time_ms
            .or(cfg.live.max_time_ms)
            .map(std::time::Duration::from_millis),
        retries: scan.retries.or(cfg.live.retries).unwrap_or(5),
        selection_timeout: std::time::Duration::from_secs(
            scan.connect_timeout
                .or(cfg.live.connect_timeout)
                .unwrap_or(10)
                .max(1),
        ),
        estimate_counts: !scan.no_progress && std::io::stderr().is_terminal(),
        ..LiveOptions::default()
    }
}

/// How the scan runs.
fn scan_options(cfg: &Config, scan: &ScanArgs, threads: usize) -> ScanOptions {
    ScanOptions {
        threads,
        max_errors: scan.max_errors.or(cfg.max_errors).unwrap_or(10).max(1),
        show_values: scan.show_values,
        progress: !scan.no_progress && std::io::stderr().is_terminal(),
        batch_records: scan
            .batch_records
            .unwrap_or(crate::source::BATCH_RECORDS)
            .clamp(1, 1 << 20),
    }
}
