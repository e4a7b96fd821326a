//! `docsweep check`: scan a source against the contracts and write the reports.

use std::io::IsTerminal;
use std::path::PathBuf;

use anyhow::Context;
use clap::Args;

use crate::config::{parse_target, Config, ConfigError};
use crate::contract::ContractSet;
use crate::report::{self, trend, CsvSink, Report, Status};
use crate::scan::{self, Baseline, ScanOptions};
use crate::scan::{Checkpoint, Facts, PartialReader, PartialWriter};
use crate::source::{Partition, Source, SourceSpec};

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

/// `--baseline`: a source string, or the path of a snapshot file.
enum BaselineSpec {
    Source(SourceSpec),
    Snapshot(PathBuf),
}

impl BaselineSpec {
    fn parse(s: &str, base: Option<&std::path::Path>) -> anyhow::Result<BaselineSpec> {
        let lower = s.to_ascii_lowercase();
        let looks_like_source = ["dump:", "archive:", "export:"]
            .iter()
            .any(|p| lower.starts_with(p))
            || s.contains("://");
        if looks_like_source {
            let spec = SourceSpec::parse(s)?;
            return Ok(BaselineSpec::Source(match base {
                Some(b) => spec.relative_to(b),
                None => spec,
            }));
        }
        let path = match base {
            Some(b) => b.join(s),
            None => PathBuf::from(s),
        };
        if !path.is_file() {
            return Err(ConfigError::Usage(format!(
                "--baseline {}: no such snapshot file (a baseline is a snapshot file or a dump:/archive:/export:/mongodb:// source)",
                crate::source::redact_uri(s)
            ))
            .into());
        }
        Ok(BaselineSpec::Snapshot(path))
    }

    fn describe(&self) -> String {
        match self {
            BaselineSpec::Source(s) => s.to_string(),
            BaselineSpec::Snapshot(p) => p.display().to_string(),
        }
    }
}

/// Settings after merging arguments over docsweep.toml, validated before any work.
struct Settings {
    source: SourceSpec,
    schemas: PathBuf,
    report_dir: PathBuf,
    db: Option<String>,
    collections: Vec<String>,
    targets: Vec<(String, u32)>,
    baseline: Option<BaselineSpec>,
    html: Option<PathBuf>,
    template_dirs: Vec<PathBuf>,
    junit: Option<PathBuf>,
    metrics: Option<PathBuf>,
    scan: ScanOptions,
    live: crate::source::LiveOptions,
    partition: Option<Partition>,
    checkpoint: Option<PathBuf>,
    /// Thresholds: whether findings fail the run, warn, or pass.
    gate: report::gate::Gate,
    /// `[[notify]]` hooks (none with --no-notify).
    notify: Vec<report::notify::Hook>,
    /// The audit log.
    audit: PathBuf,
    /// The previous run to compare with, and whether it was named (else the default).
    previous: (PathBuf, bool),
    /// `--nsInclude` / `--nsExclude`.
    ns: crate::source::NsFilter,
}

fn settings(args: CheckArgs) -> anyhow::Result<Settings> {
    let cfg = Config::load(args.report.config.as_deref())?;
    if let Some(name) = &args.report.actor {
        crate::os::set_actor(name);
    }
    let source_str = match &args.source {
        Some(s) => Some(s.clone()),
        None => cfg.source()?,
    };
    let source_str = source_str.ok_or_else(|| {
        ConfigError::Usage("no source: give --source dump:PATH|archive:PATH|export:PATH|mongodb://… or set `source` in docsweep.toml".into())
    })?;
    let mut source = SourceSpec::parse(&source_str)?;
    // Paths in the file are relative to it; a source from the command line or the
    // environment is relative to the working directory.
    if args.source.is_none() && cfg.source.is_some() {
        source = source.relative_to(&cfg.base);
    }
    let resolved = |p: &Option<PathBuf>| p.as_ref().map(|p| cfg.resolve(p));
    let schemas = match (&args.report.schemas, &cfg.schemas) {
        (Some(s), _) => s.clone(),
        (None, Some(s)) => cfg.resolve(s),
        (None, None) => cfg.resolve(&PathBuf::from("schemas")),
    };
    let report_dir = match (&args.report.report_dir, &cfg.report_dir) {
        (Some(s), _) => s.clone(),
        (None, Some(s)) => cfg.resolve(s),
        (None, None) => PathBuf::from("docsweep-report"),
    };
    let mut targets: Vec<(String, u32)> =
        cfg.targets.iter().map(|(c, v)| (c.clone(), *v)).collect();
    for t in &args.report.targets {
        targets.push(parse_target(t)?);
    }
    let baseline = match (&args.report.baseline, &cfg.baseline) {
        (Some(b), _) => Some(BaselineSpec::parse(b, None)?),
        (None, Some(b)) => Some(BaselineSpec::parse(b, Some(&cfg.base))?),
        (None, None) => None,
    };
    let partition = args
        .partition
        .as_deref()
        .map(Partition::parse)
        .transpose()
        .map_err(ConfigError::Usage)?;
    // A partition is re-run whole; a checkpoint set in docsweep.toml does not apply to it.
    let checkpoint = match (&partition, &args.checkpoint) {
        (None, None) => resolved(&cfg.checkpoint),
        (_, given) => given.clone(),
    };
    if partition.is_some() && args.checkpoint.is_some() {
        return Err(ConfigError::Usage(
            "--partition and --checkpoint cannot be combined: re-run an interrupted partition instead".into(),
        )
        .into());
    }
    let threads = args.threads.or(cfg.threads).unwrap_or(0);
    let read_pref = args
        .read_preference
        .clone()
        .or_else(|| cfg.live.read_preference.clone());
    let max_staleness = args.max_staleness.or(cfg.live.max_staleness);
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
    let ns = crate::source::NsFilter::new(&args.report.ns_include, &args.report.ns_exclude)
        .map_err(ConfigError::Usage)?;
    let query = match &args.query {
        None => None,
        Some(text) => {
            if !matches!(source, SourceSpec::Mongo(_)) {
                return Err(ConfigError::Usage(format!(
                    "--query: a filter for a live source (mongodb://…); {source} is read whole \
                     (mongodump and mongoexport take --query when the files are made)"
                ))
                .into());
            }
            let chosen = if args.report.collections.is_empty() {
                &cfg.collections
            } else {
                &args.report.collections
            };
            let [coll] = chosen.as_slice() else {
                return Err(ConfigError::Usage(
                    "--query needs exactly one --collection (-c), the collection it filters".into(),
                )
                .into());
            };
            if args.report.baseline.is_some() || cfg.baseline.is_some() {
                return Err(ConfigError::Usage(
                    "--query cannot be combined with a baseline: every document the query leaves out would count as missing".into(),
                )
                .into());
            }
            Some(crate::source::Query::parse(coll, text).map_err(ConfigError::Usage)?)
        }
    };
    if threads > 1024 {
        return Err(ConfigError::Usage(format!("--threads {threads}: at most 1024")).into());
    }
    let gate = report::gate::Gate::new(
        cfg.thresholds.as_ref(),
        &args.report.warn_on,
        &args.report.fail_on,
        args.report.strict,
    )
    .map_err(|m| match &cfg.path {
        Some(p) if !m.starts_with("--") => ConfigError::Usage(format!("{}: {m}", p.display())),
        _ => ConfigError::Usage(m),
    })?;
    let notify = if args.report.no_notify {
        Vec::new()
    } else {
        report::notify::hooks(&cfg.notify).map_err(|m| {
            let file = cfg
                .path
                .clone()
                .unwrap_or_else(|| crate::config::FILE_NAME.into());
            ConfigError::Usage(format!("{}: {m}", file.display()))
        })?
    };
    // The previous run: named (a missing report is then a warning), else the report
    // directory's own report.json, read before this run replaces it.
    let previous = match (&args.report.previous, &cfg.previous) {
        (Some(p), _) => (p.clone(), true),
        (None, Some(p)) => (cfg.resolve(p), true),
        (None, None) => (report_dir.clone(), false),
    };
    let audit = match (&args.report.audit, &cfg.audit) {
        (Some(a), _) => a.clone(),
        (None, Some(a)) => cfg.resolve(a),
        (None, None) => PathBuf::from(crate::audit::DEFAULT_FILE),
    };
    Ok(Settings {
        ns,
        gate,
        notify,
        previous,
        audit,
        source,
        schemas,
        report_dir,
        db: args.db.or(cfg.db.clone()),
        collections: if args.report.collections.is_empty() {
            cfg.collections.clone()
        } else {
            args.report.collections
        },
        targets,
        baseline,
        partition,
        checkpoint,
        html: args.report.html.or_else(|| resolved(&cfg.html)),
        template_dirs: if args.report.template_dirs.is_empty() {
            cfg.templates.iter().map(|p| cfg.resolve(p)).collect()
        } else {
            args.report.template_dirs
        },
        junit: args.report.junit.or_else(|| resolved(&cfg.junit)),
        metrics: args.report.metrics.or_else(|| resolved(&cfg.metrics)),
        live: crate::source::LiveOptions {
            batch_size: args
                .batch_size
                .or(cfg.live.batch_size)
                .unwrap_or(1000)
                .max(1),
            max_time: args
                .max_time_ms
                .or(cfg.live.max_time_ms)
                .map(std::time::Duration::from_millis),
            retries: args.retries.or(cfg.live.retries).unwrap_or(5),
            selection_timeout: std::time::Duration::from_secs(
                args.connect_timeout
                    .or(cfg.live.connect_timeout)
                    .unwrap_or(10)
                    .max(1),
            ),
            estimate_counts: !args.no_progress && std::io::stderr().is_terminal(),
            read_preference: read_pref,
            max_staleness,
            query,
            ..crate::source::LiveOptions::default()
        },
        scan: ScanOptions {
            threads,
            max_errors: args.max_errors.or(cfg.max_errors).unwrap_or(10).max(1),
            show_values: args.show_values,
            progress: !args.no_progress && std::io::stderr().is_terminal(),
            batch_records: args
                .batch_records
                .unwrap_or(crate::source::BATCH_RECORDS)
                .clamp(1, 1 << 20),
        },
    })
}

/// Every output file (`--html`, `--junit`, `--metrics`) must be writable before any
/// document is read: a finished scan is never thrown away for a bad path, and the report
/// directory is never left half updated.
fn check_output_paths(s: &Settings) -> anyhow::Result<()> {
    for (flag, path) in [
        ("--html", &s.html),
        ("--junit", &s.junit),
        ("--metrics", &s.metrics),
    ] {
        let Some(path) = path else { continue };
        let bad = |why: String| ConfigError::Usage(format!("{flag} {}: {why}", path.display()));
        if path.is_dir() {
            return Err(bad("is a directory; give a file name".into()).into());
        }
        let dir = match path.parent() {
            Some(d) if !d.as_os_str().is_empty() => d,
            _ => std::path::Path::new("."),
        };
        // The report directory is created by the run itself.
        let same = |a: &std::path::Path, b: &std::path::Path| {
            std::path::absolute(a).ok() == std::path::absolute(b).ok()
        };
        if !dir.is_dir() && same(dir, &s.report_dir) {
            continue;
        }
        if !dir.is_dir() {
            return Err(bad(format!("the folder {} does not exist", dir.display())).into());
        }
        let probe = dir.join(format!(".docsweep-probe-{}", std::process::id()));
        match std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&probe)
        {
            Ok(_) => {
                let _ = std::fs::remove_file(&probe);
            }
            Err(e) => {
                return Err(bad(format!("cannot write in {}: {e}", dir.display())).into());
            }
        }
    }
    Ok(())
}

pub fn run(args: CheckArgs) -> anyhow::Result<Status> {
    let s = settings(args)?;
    check_output_paths(&s)?;
    let contracts = load_contracts(&s)?;
    let _lock = report_dir(&s.report_dir)?;
    let header = header(
        &s,
        if s.partition.is_some() {
            "partition"
        } else {
            "checkpoint"
        },
    )?;

    let started = std::time::Instant::now();
    let mut report = new_report(&s);
    // A partition writes only its partial result; a report is written into a staging
    // directory and swapped in as a whole.
    let stage = match s.partition {
        Some(_) => None,
        None => Some(stage_dir(&s.report_dir)?),
    };
    let csv_path = match &stage {
        Some(st) => st.path().join("violations.csv"),
        None => s.report_dir.join("violations.csv"),
    };
    let mut sink = CsvSink::create(&csv_path)
        .with_context(|| format!("cannot write {}", csv_path.display()))?;
    // The previous run is read now, before anything in the (locked) report directory is
    // replaced; a partition writes no report to compare.
    let previous = if s.partition.is_none() {
        previous_run(&s, &mut sink)
    } else {
        trend::Loaded::default()
    };

    // A corrupt snapshot is a usage error (exit 2), reported before any scan.
    let snapshot = read_snapshot(&s)?;
    // A partition's earlier result must not outlive a failed re-run (a merge would take
    // it): it is removed before anything else.
    if s.partition.is_some() {
        let stale = s.report_dir.join(PARTIAL_FILE);
        match std::fs::remove_file(&stale) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => {
                return Err(anyhow::Error::new(e))
                    .with_context(|| format!("cannot remove the old {}", stale.display()))
            }
        }
    }
    // A checkpoint of another run is refused before any scan, too.
    let mut checkpoint = match &s.checkpoint {
        Some(p) => Some(open_checkpoint(p, &header)?),
        None => None,
    };
    let mut partial = None;
    let mut scope = report::Scope::default();
    let opened = Source::open_with(&s.source, s.db.as_deref(), &s.live).and_then(|mut source| {
        source.partition = s.partition;
        let baseline = open_baseline(&s, snapshot)?;
        Ok((source, baseline))
    });
    match opened {
        // A file that is not what the source string says (not an archive): a usage error.
        Err(e) if e.is_usage() => return Err(e.into()),
        Err(e) => report.error = Some(e.to_string()),
        Ok((source, baseline)) => {
            report.database = source.database.clone();
            let (chosen, excluded) = choose(&s, &contracts, source.database.as_deref())?;
            scope.filter = filter_json(&s, &excluded);
            if s.partition.is_some() {
                let mut header = header.clone();
                header["database"] = serde_json::json!(source.database);
                header["collections"] = source
                    .collections
                    .iter()
                    .map(|c| serde_json::json!({"name": c.name, "file": c.file}))
                    .collect();
                // Live drift, read once per partition, for the merge to report.
                let drift = crate::contract::diff::drift_map(&source, &contracts, &mut Vec::new());
                if !drift.is_empty() {
                    header["drift"] = serde_json::Value::Object(drift);
                }
                let path = s.report_dir.join(PARTIAL_FILE);
                partial = Some(PartialWriter::create(&path, &header)?);
            }
            let mut facts = match (&mut partial, &mut checkpoint) {
                (Some(w), _) => Facts::Record(w),
                (None, Some(cp)) => Facts::Checkpoint(cp),
                (None, None) => Facts::Fold,
            };
            let outcome = scan::scan_with(
                &source,
                baseline.as_ref(),
                &contracts,
                &chosen,
                &s.scan,
                &mut sink,
                &mut facts,
            )?;
            report.collections = outcome.collections;
            report.warnings = outcome.warnings;
            // A source that failed is not asked again for its validators and indexes.
            if outcome.failure.is_none() {
                crate::contract::diff::attach(
                    &source,
                    &contracts,
                    &mut report.collections,
                    &mut report.warnings,
                );
            }
            report.error = outcome.failure.map(|e| e.to_string());
            scope.read = source.read_location();
        }
    }
    if let Some(p) = s.partition {
        drop(sink);
        let _ = std::fs::remove_file(&csv_path);
        let status = finish_partition(partial, p, &report, &scope)?;
        let mut record = audit_record(&s, &report, "check");
        record["partition"] = serde_json::json!(p.to_string());
        record["status"] = serde_json::json!(if status == Status::Failed {
            "failed"
        } else {
            "partial"
        });
        record["at"] = serde_json::json!(report::now_rfc3339());
        for key in [
            "counts",
            "verdict",
            "gate",
            "since_previous",
            "report",
            "finished_at",
        ] {
            if let Some(o) = record.as_object_mut() {
                o.remove(key);
            }
        }
        append_audit(&s, &record);
        return Ok(status);
    }
    let stage = stage.context("a report without a staging directory")?;
    let written = write_outputs(
        &s, &contracts, report, &scope, sink, previous, started, stage,
    )?;
    let status = written.report.status;
    if let (Some(cp), Some(path)) = (checkpoint, &s.checkpoint) {
        drop(cp);
        if status == Status::Failed {
            eoutln!(
                "docsweep: the checkpoint {} keeps what was examined: run the same command again to continue",
                path.display()
            );
        } else {
            std::fs::remove_file(path)
                .with_context(|| format!("cannot remove the checkpoint {}", path.display()))?;
        }
    }
    Ok(after_report(&s, &written, "check"))
}

/// Creates the report directory (owner-only) and locks it for this run: a second run into
/// the same directory is refused (exit 2) rather than mixing its files with this one's.
/// Temporary files that a killed run left there are removed.
fn report_dir(dir: &std::path::Path) -> anyhow::Result<crate::os::DirLock> {
    crate::os::create_dir_all(dir, crate::os::Access::Private)
        .with_context(|| format!("cannot create report directory {}", dir.display()))?;
    let (lock, _removed) = crate::os::DirLock::acquire(dir).map_err(|e| match e {
        crate::os::LockError::Busy { .. } => anyhow::Error::new(ConfigError::Usage(e.to_string())),
        other => anyhow::Error::new(other).context(format!(
            "cannot lock the report directory {}",
            dir.display()
        )),
    })?;
    Ok(lock)
}

/// The staging directory this run's reports are written into (see
/// [`crate::os::StagedDir`]); the caller holds the report directory's lock.
fn stage_dir(dir: &std::path::Path) -> anyhow::Result<crate::os::StagedDir> {
    crate::os::StagedDir::create(dir).with_context(|| {
        format!(
            "cannot create a staging directory for the report directory {}",
            dir.display()
        )
    })
}

/// Crash injection for the tests: when `DOCSWEEP_FAILPOINT` names this point, the process
/// aborts on the spot (no unwinding, no cleanup), like a SIGKILL.
fn failpoint(name: &str) {
    if std::env::var("DOCSWEEP_FAILPOINT").is_ok_and(|v| v == name) {
        std::process::abort();
    }
}

/// `docsweep merge`: folds the partitions' records (in partition order) into one report.
pub fn merge(
    args: CheckArgs,
    mut readers: Vec<PartialReader>,
    started_at: Option<String>,
) -> anyhow::Result<Status> {
    let s = settings(args)?;
    check_output_paths(&s)?;
    let contracts = load_contracts(&s)?;
    let mine = run_settings(&s)?;
    let theirs = &readers[0].header["settings"];
    if let Some(obj) = mine.as_object() {
        for (key, v) in obj {
            if theirs[key] != *v {
                return Err(ConfigError::Usage(format!(
                    "{}: the partitions ran with {key} {}, this merge has {v}: \
                     merge with the partitions' contracts, targets, collections and baseline",
                    readers[0].path().display(),
                    theirs[key]
                ))
                .into());
            }
        }
    }
    let _lock = report_dir(&s.report_dir)?;
    let stage = stage_dir(&s.report_dir)?;
    let started = std::time::Instant::now();
    let mut report = new_report(&s);
    if let Some(at) = started_at {
        report.started_at = at;
    }
    let h = readers[0].header.clone();
    report.database = h["database"].as_str().map(str::to_string);
    let csv_path = stage.path().join("violations.csv");
    let mut sink = CsvSink::create(&csv_path)
        .with_context(|| format!("cannot write {}", csv_path.display()))?;
    let previous = previous_run(&s, &mut sink);
    let snapshot = read_snapshot(&s)?;
    let collections = h["collections"]
        .as_array()
        .map(|l| {
            l.iter()
                .filter_map(|c| {
                    Some((
                        c["name"].as_str()?.to_string(),
                        PathBuf::from(c["file"].as_str()?),
                        Ok(None),
                    ))
                })
                .collect()
        })
        .unwrap_or_default();
    let source = Source::recorded(s.source.clone(), report.database.clone(), collections);
    let (chosen, excluded) = choose(&s, &contracts, report.database.as_deref())?;
    let mut scope = report::Scope {
        read: None,
        filter: filter_json(&s, &excluded),
    };
    match open_baseline(&s, snapshot) {
        Err(e) => report.error = Some(e.to_string()),
        Ok(baseline) => {
            let outcome = scan::scan_with(
                &source,
                baseline.as_ref(),
                &contracts,
                &chosen,
                &s.scan,
                &mut sink,
                &mut Facts::Merge(&mut readers),
            )?;
            report.collections = outcome.collections;
            report.warnings = outcome.warnings;
            if let Some(drift) = h["drift"].as_object() {
                crate::contract::diff::attach_map(drift, &mut report.collections);
            }
            report.error = outcome.failure.map(|e| e.to_string());
            if report.error.is_none() {
                for r in &mut readers {
                    let mut chunk = r.next_chunk()?;
                    if let Some(crate::scan::Chunk::Note(note)) = &chunk {
                        merge_read(&mut scope.read, &note["read"]);
                        chunk = r.next_chunk()?;
                    }
                    match chunk {
                        Some(crate::scan::Chunk::End) => {}
                        _ => {
                            return Err(ConfigError::Usage(format!(
                            "{}: more or less than this merge expected after the last collection",
                            r.path().display()
                        ))
                            .into())
                        }
                    }
                }
            }
        }
    }
    let written = write_outputs(
        &s, &contracts, report, &scope, sink, previous, started, stage,
    )?;
    Ok(after_report(&s, &written, "merge"))
}

/// Reads the previous run (see [`trend`]) and, when there is one, has the sink record
/// this run's finding identities to compare with it.
fn previous_run(s: &Settings, sink: &mut CsvSink) -> trend::Loaded {
    let (path, explicit) = &s.previous;
    let loaded = trend::load(path, *explicit);
    if loaded.previous.is_some() {
        sink.tracker = Some(trend::Tracker::default());
    }
    loaded
}

/// The collections to check: `--collection`'s (else every contract's) that
/// `--nsInclude`/`--nsExclude` take in `database`, and the contracts' collections they
/// left out. Nothing left is a usage error (an empty list would mean every contract).
fn choose(
    s: &Settings,
    contracts: &ContractSet,
    database: Option<&str>,
) -> anyhow::Result<(Vec<String>, Vec<String>)> {
    if s.ns.is_empty() {
        return Ok((s.collections.clone(), Vec::new()));
    }
    let all: Vec<String> = if s.collections.is_empty() {
        contracts.contracts.keys().cloned().collect()
    } else {
        s.collections.clone()
    };
    let (chosen, excluded): (Vec<String>, Vec<String>) =
        all.into_iter().partition(|c| s.ns.takes(database, c));
    if chosen.is_empty() {
        let mut flags: Vec<String> =
            s.ns.include
                .iter()
                .map(|p| format!("--nsInclude {p}"))
                .collect();
        flags.extend(s.ns.exclude.iter().map(|p| format!("--nsExclude {p}")));
        return Err(ConfigError::Usage(format!(
            "{}: no collection with a contract in {} is left in database {} (contracts for: {})",
            flags.join(" "),
            s.schemas.display(),
            database.unwrap_or("(none: an export)"),
            excluded.join(", ")
        ))
        .into());
    }
    Ok((chosen, excluded))
}

/// report.json's `filter` for a narrowed run (`None` when the scan was not narrowed by
/// `--query` or namespace patterns).
fn filter_json(s: &Settings, excluded: &[String]) -> Option<serde_json::Value> {
    let query = s.live.query.as_ref();
    if query.is_none() && s.ns.is_empty() {
        return None;
    }
    Some(serde_json::json!({
        "query": query.map(|q| q.shown.clone()),
        "query_collection": query.map(|q| q.collection.clone()),
        "ns_include": s.ns.include,
        "ns_exclude": s.ns.exclude,
        "excluded": excluded,
    }))
}

/// Adds a partition's `read` to the merge's: the servers of all partitions, each once.
fn merge_read(into: &mut Option<serde_json::Value>, read: &serde_json::Value) {
    if read.is_null() {
        return;
    }
    let Some(mine) = into else {
        *into = Some(read.clone());
        return;
    };
    let Some(servers) = mine["servers"].as_array_mut() else {
        return;
    };
    for s in read["servers"].as_array().into_iter().flatten() {
        if !servers.iter().any(|m| m["host"] == s["host"]) {
            servers.push(s.clone());
        }
    }
}

/// The file a partition writes into its report directory.
pub const PARTIAL_FILE: &str = "partial.dsw";

fn load_contracts(s: &Settings) -> anyhow::Result<ContractSet> {
    let mut contracts = ContractSet::load_dir(&s.schemas)?;
    for (coll, v) in &s.targets {
        let c = contracts.contracts.get_mut(coll).ok_or_else(|| {
            ConfigError::Usage(format!(
                "--target {coll}={v}: no contract for collection {coll:?} in {}",
                s.schemas.display()
            ))
        })?;
        c.set_target(*v)?;
    }
    for c in &s.collections {
        if !contracts.contracts.contains_key(c) {
            return Err(ConfigError::Usage(format!(
                "--collection {c}: no contract for it in {}",
                s.schemas.display()
            ))
            .into());
        }
    }
    Ok(contracts)
}

fn new_report(s: &Settings) -> Report {
    Report {
        format: report::FORMAT,
        status: Status::Clean,
        source: s.source.to_string(),
        database: None,
        started_at: report::now_rfc3339(),
        finished_at: String::new(),
        error: None,
        baseline: s.baseline.as_ref().map(BaselineSpec::describe),
        warnings: Vec::new(),
        collections: Vec::new(),
        gated: false,
    }
}

fn read_snapshot(s: &Settings) -> anyhow::Result<Option<crate::reconcile::snapshot::Snapshot>> {
    Ok(match &s.baseline {
        Some(BaselineSpec::Snapshot(p)) => Some(crate::reconcile::snapshot::read(p)?),
        _ => None,
    })
}

fn open_baseline(
    s: &Settings,
    snapshot: Option<crate::reconcile::snapshot::Snapshot>,
) -> Result<Option<Baseline>, crate::source::SourceError> {
    Ok(match (&s.baseline, snapshot) {
        (_, Some(snap)) => Some(Baseline::Snapshot(snap)),
        (Some(BaselineSpec::Source(b)), None) => Some(Baseline::Source(
            Source::open_with(b, s.db.as_deref(), &s.live)
                .map_err(|e| crate::source::SourceError::Other(format!("baseline: {e}")))?,
        )),
        _ => None,
    })
}

/// What a partial result or checkpoint records about the run that made it: everything
/// that must be the same for its records to be folded with others or continued.
fn header(s: &Settings, kind: &str) -> anyhow::Result<serde_json::Value> {
    Ok(serde_json::json!({
        "format": crate::scan::partial::FORMAT,
        "kind": kind,
        "partition": s.partition,
        "created_at": report::now_rfc3339(),
        "source": s.source.to_string(),
        "settings": run_settings(s)?,
    }))
}

/// The settings that decide a run's results, for comparing runs.
fn run_settings(s: &Settings) -> anyhow::Result<serde_json::Value> {
    Ok(serde_json::json!({
        "database": s.db,
        "contracts": contracts_digest(&s.schemas)?,
        "targets": s.targets,
        "collections": s.collections,
        "baseline": s.baseline.as_ref().map(BaselineSpec::describe),
        "max_errors": s.scan.max_errors,
        "show_values": s.scan.show_values,
        "query": s.live.query.as_ref().map(|q| q.shown.to_string()),
        "ns_include": s.ns.include,
        "ns_exclude": s.ns.exclude,
    }))
}

/// A digest of every file under the contracts directory (names and contents).
fn contracts_digest(dir: &std::path::Path) -> anyhow::Result<String> {
    fn walk(
        dir: &std::path::Path,
        rel: &std::path::Path,
        out: &mut Vec<(String, PathBuf)>,
    ) -> std::io::Result<()> {
        for e in std::fs::read_dir(dir)? {
            let e = e?;
            let rel = rel.join(e.file_name());
            if e.file_type()?.is_dir() {
                walk(&e.path(), &rel, out)?;
            } else {
                out.push((rel.to_string_lossy().into_owned(), e.path()));
            }
        }
        Ok(())
    }
    let mut files = Vec::new();
    walk(dir, std::path::Path::new(""), &mut files)
        .with_context(|| format!("cannot read {}", dir.display()))?;
    files.sort();
    let mut h = xxhash_rust::xxh3::Xxh3::new();
    for (rel, path) in files {
        let bytes =
            std::fs::read(&path).with_context(|| format!("cannot read {}", path.display()))?;
        h.update(rel.as_bytes());
        h.update(&[0]);
        h.update(&(bytes.len() as u64).to_le_bytes());
        h.update(&bytes);
    }
    Ok(format!("{:032x}", h.digest128()))
}

/// Continues the checkpoint at `path` when it exists (it must be of this run), else
/// starts one.
fn open_checkpoint(
    path: &std::path::Path,
    header: &serde_json::Value,
) -> anyhow::Result<Checkpoint> {
    if !path.exists() {
        let writer = PartialWriter::create_in_place(path, header)?;
        return Ok(Checkpoint {
            replay: None,
            writer: Some(writer),
            path: path.to_path_buf(),
        });
    }
    let reader = PartialReader::open(path).map_err(|e| {
        ConfigError::Usage(format!(
            "{e}; delete the checkpoint {} to start over",
            path.display()
        ))
    })?;
    for key in ["kind", "source", "settings"] {
        if reader.header[key] != header[key] {
            return Err(ConfigError::Usage(format!(
                "the checkpoint {} is of another run (its {key} is {}, this run's is {}); \
                 delete it or give another --checkpoint file",
                path.display(),
                reader.header[key],
                header[key]
            ))
            .into());
        }
    }
    eoutln!(
        "docsweep: continuing from the checkpoint {}",
        path.display()
    );
    Ok(Checkpoint {
        replay: Some(reader),
        writer: None,
        path: path.to_path_buf(),
    })
}

/// Ends a partition's run: its partial result is complete unless the source failed.
fn finish_partition(
    w: Option<PartialWriter>,
    p: Partition,
    report: &Report,
    scope: &report::Scope,
) -> anyhow::Result<Status> {
    let (Some(w), None) = (w, &report.error) else {
        // The writer's temporary file is removed on drop: no partial result exists.
        let e = report.error.as_deref().unwrap_or("unknown");
        eoutln!("docsweep: error: source failed: {e}");
        eoutln!("docsweep: partition {p}: no partial result written; run it again");
        return Ok(Status::Failed);
    };
    // Where a live partition read, for the merge's report.
    let path = match &scope.read {
        Some(read) => w.finish_with_note(&serde_json::json!({ "read": read }))?,
        None => w.finish()?,
    };
    for warning in &report.warnings {
        eoutln!("docsweep: warning: {warning}");
    }
    outln!("partition {p}: partial result in {}", path.display());
    outln!(
        "next: docsweep merge DIR...   (the report directories of all {} partitions)",
        p.count
    );
    Ok(Status::Clean)
}

/// What [`write_outputs`] wrote: the judged report, the summary as printed, and where
/// report.json is.
struct Written {
    report: Report,
    summary: Vec<u8>,
    json_path: PathBuf,
}

/// Fills the remediations and writes every output.
#[allow(clippy::too_many_arguments)]
fn write_outputs(
    s: &Settings,
    contracts: &ContractSet,
    mut report: Report,
    scope: &report::Scope,
    mut sink: CsvSink,
    previous: trend::Loaded,
    started: std::time::Instant,
    stage: crate::os::StagedDir,
) -> anyhow::Result<Written> {
    let csv_path = stage.path().join("violations.csv");
    // Remediations name the bundled templates (and any in --templates directories).
    match crate::repair::Library::load(&s.template_dirs) {
        Ok(library) => {
            let source = report.source.clone();
            let schemas = s.schemas.display().to_string();
            let ctx = crate::repair::remediation::Context {
                source: &source,
                schemas: &schemas,
                baseline: report.baseline.as_deref(),
                baseline_restores: match &s.baseline {
                    Some(BaselineSpec::Source(_)) => true,
                    Some(BaselineSpec::Snapshot(p)) => {
                        crate::reconcile::snapshot::keeps_documents(p)
                    }
                    None => false,
                },
                templates: &s.template_dirs,
            };
            crate::repair::remediation::fill(&mut report.collections, contracts, &library, &ctx);
        }
        Err(e) => report.warnings.push(format!("no remediations: {e}")),
    }
    report.warnings.extend(previous.warnings);
    if let Some(p) = &previous.previous {
        trend::compare(&mut report, p, sink.tracker.take().as_ref());
    }
    report.finished_at = report::now_rfc3339();
    report.judge(&s.gate);
    report.status = report.derive_status();
    let duration = started.elapsed().as_secs_f64();
    // Files in the report directory are written into the staging directory; the report
    // directory is replaced as a whole once every file is written, and stays as it was
    // when any of them fails (or the run is killed).
    let place = |p: &PathBuf| -> anyhow::Result<PathBuf> {
        let Some(staged) = stage.staged(p) else {
            return Ok(p.clone());
        };
        if let Some(parent) = staged.parent() {
            crate::os::create_dir_all(parent, crate::os::Access::Private)
                .with_context(|| format!("cannot write {}", p.display()))?;
        }
        Ok(staged)
    };
    if let Some(p) = &s.html {
        report::write_html(&report, &place(p)?)
            .with_context(|| format!("cannot write {}", p.display()))?;
    }
    if let Some(p) = &s.junit {
        report::write_junit(&report, &place(p)?)
            .with_context(|| format!("cannot write {}", p.display()))?;
    }
    if let Some(p) = &s.metrics {
        let repairs = crate::audit::repair_totals(&s.audit);
        report::metrics::write_metrics_with(&report, duration, &repairs, &place(p)?)
            .with_context(|| format!("cannot write {}", p.display()))?;
    }
    let rows = sink
        .finish()
        .with_context(|| format!("cannot write {}", csv_path.display()))?;
    failpoint("check.before-report-json");
    let json_path = s.report_dir.join("report.json");
    report::write_json(&report, scope, &stage.path().join("report.json"))
        .with_context(|| format!("cannot write {}", json_path.display()))?;
    failpoint("check.before-swap");
    stage.commit().with_context(|| {
        format!(
            "cannot update the report directory {}",
            s.report_dir.display()
        )
    })?;
    // The reports are written; a closed stdout must not change the outcome.
    let mut summary = Vec::new();
    let _ = report::write_summary(
        &mut summary,
        &report,
        scope,
        &s.report_dir.display().to_string(),
        rows,
    );
    crate::stdio::with_stdout(|out| out.write_all(&summary));
    for w in &report.warnings {
        eoutln!("docsweep: warning: {w}");
    }
    if let Some(e) = &report.error {
        eoutln!("docsweep: error: source failed: {e}");
    }
    Ok(Written {
        report,
        summary,
        json_path,
    })
}

/// After the reports: runs the `[[notify]]` hooks and appends the audit line. Returns the
/// run's status: the report's, or `failed` when a required hook failed.
fn after_report(s: &Settings, w: &Written, command: &str) -> Status {
    let ctx = report::notify::Context {
        report: &w.report,
        report_path: &w.json_path,
        summary: &w.summary,
    };
    let outcomes = report::notify::run(&s.notify, &ctx);
    let mut status = w.report.status;
    for o in &outcomes {
        if let Some(e) = &o.error {
            if o.required {
                eoutln!(
                    "docsweep: error: {} ({}, required) failed: {e}; exit 3",
                    o.name,
                    o.target
                );
                status = Status::Failed;
            } else {
                eoutln!(
                    "docsweep: warning: {} ({}) failed: {e}; the exit code is unchanged",
                    o.name,
                    o.target
                );
            }
        }
    }
    let mut record = audit_record(s, &w.report, command);
    record["report"] = serde_json::json!(w.json_path.display().to_string());
    if !outcomes.is_empty() {
        record["notify"] = outcomes.iter().map(|o| o.to_json()).collect();
    }
    append_audit(s, &record);
    status
}

/// The audit line of a check (see [`crate::audit::check_line`]).
fn audit_record(s: &Settings, r: &Report, command: &str) -> serde_json::Value {
    crate::audit::check_line(r, &s.source.to_string(), command)
}

/// Appends to the audit log; a failure is a warning: the reports are written, and the
/// run's outcome stands.
fn append_audit(s: &Settings, record: &serde_json::Value) {
    if let Err(e) = crate::audit::append(&s.audit, record) {
        eoutln!("docsweep: warning: {e:#}");
    }
}
