//! What a check and a merge share around the scan: the locked report directory, the new
//! report, the baseline, and, after the scan, the reports, the `[[notify]]` hooks and the
//! audit line.

use std::path::{Path, PathBuf};

use anyhow::Context;

use super::{BaselineSpec, Settings};
use crate::config::ConfigError;
use crate::reconcile::snapshot::Snapshot;
use crate::report::{self, trend, CsvSink, Report, Scope, Status};
use crate::scan::Baseline;
use crate::source::{Source, SourceError};

/// Creates the report directory (owner-only) and locks it for this run: a second run into
/// the same directory is refused (exit 2) rather than mixing its files with this one's.
/// Temporary files that a killed run left there are removed.
pub(crate) fn report_dir(dir: &Path) -> anyhow::Result<crate::os::DirLock> {
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
pub(crate) fn stage_dir(dir: &Path) -> anyhow::Result<crate::os::StagedDir> {
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

/// Reads the previous run (see [`trend`]) and, when there is one, has the sink record
/// this run's finding identities to compare with it.
pub(crate) fn previous_run(s: &Settings, sink: &mut CsvSink) -> trend::Loaded {
    let (path, explicit) = &s.previous;
    // With more than one thread, the previous violations.csv is read while the scan runs.
    let loaded = trend::load(path, *explicit, s.scan.threads != 1);
    if loaded.previous.is_some() {
        sink.tracker = Some(trend::Tracker::default());
    }
    loaded
}

/// The report of a run that has not scanned yet.
pub(crate) fn new_report(s: &Settings) -> Report {
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

/// The baseline's snapshot, when the baseline is a snapshot file.
pub(crate) fn read_snapshot(s: &Settings) -> anyhow::Result<Option<Snapshot>> {
    Ok(match &s.baseline {
        Some(BaselineSpec::Snapshot(p)) => Some(crate::reconcile::snapshot::read(p)?),
        _ => None,
    })
}

/// The baseline to reconcile with: the snapshot read, or the baseline source opened.
pub(crate) fn open_baseline(
    s: &Settings,
    snapshot: Option<Snapshot>,
) -> Result<Option<Baseline>, SourceError> {
    Ok(match (&s.baseline, snapshot) {
        (_, Some(snap)) => Some(Baseline::Snapshot(snap)),
        (Some(BaselineSpec::Source(b)), None) => Some(Baseline::Source(
            Source::open_with(b, s.db.as_deref(), &s.live)
                .map_err(|e| SourceError::Other(format!("baseline: {e}")))?,
        )),
        _ => None,
    })
}

/// What [`write_outputs`] wrote: the judged report, the summary as printed, and where
/// report.json is.
pub(crate) struct Written {
    pub report: Report,
    pub summary: Vec<u8>,
    pub json_path: PathBuf,
}

/// What the scan left for the reports: the report, its scope, the sink of its findings
/// and the previous run to compare with.
pub(crate) struct Scanned {
    pub report: Report,
    pub scope: Scope,
    pub sink: CsvSink,
    pub previous: trend::Loaded,
}

/// Fills the remediations and writes every output.
pub(crate) fn write_outputs(
    s: &Settings,
    scanned: Scanned,
    started: std::time::Instant,
    stage: crate::os::StagedDir,
) -> anyhow::Result<Written> {
    let Scanned {
        mut report,
        scope,
        mut sink,
        mut previous,
    } = scanned;
    previous.finish();
    let csv_path = stage.path().join("violations.csv");
    fill_remediations(s, &mut report);
    report.warnings.extend(previous.warnings);
    if let Some(p) = &previous.previous {
        trend::compare(&mut report, p, sink.tracker.take().as_ref());
    }
    report.finished_at = report::now_rfc3339();
    report.judge(&s.gate);
    report.status = report.derive_status();
    let duration = started.elapsed().as_secs_f64();
    write_extra_outputs(s, &report, duration, &stage)?;
    let rows = sink
        .finish()
        .with_context(|| format!("cannot write {}", csv_path.display()))?;
    failpoint("check.before-report-json");
    let json_path = s.report_dir.join("report.json");
    report::write_json(&report, &scope, &stage.path().join("report.json"))
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
        &scope,
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

/// Remediations name the bundled templates (and any in --templates directories).
fn fill_remediations(s: &Settings, report: &mut Report) {
    match crate::repair::Library::load(&s.template_dirs) {
        Ok(library) => {
            let source = report.source.clone();
            let schemas = s.schemas.display().to_string();
            let baseline = report.baseline.clone();
            let ctx = crate::repair::remediation::Context {
                source: &source,
                schemas: &schemas,
                baseline: baseline.as_deref(),
                baseline_restores: s.baseline_restores(),
                templates: &s.template_dirs,
            };
            crate::repair::remediation::fill(&mut report.collections, &s.contracts, &library, &ctx);
        }
        Err(e) => report.warnings.push(format!("no remediations: {e}")),
    }
}

/// Writes `--html`, `--junit` and `--metrics`. Files in the report directory are written
/// into the staging directory; the report directory is replaced as a whole once every
/// file is written, and stays as it was when any of them fails (or the run is killed).
fn write_extra_outputs(
    s: &Settings,
    report: &Report,
    duration: f64,
    stage: &crate::os::StagedDir,
) -> anyhow::Result<()> {
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
        report::write_html(report, &place(p)?)
            .with_context(|| format!("cannot write {}", p.display()))?;
    }
    if let Some(p) = &s.junit {
        report::write_junit(report, &place(p)?)
            .with_context(|| format!("cannot write {}", p.display()))?;
    }
    if let Some(p) = &s.metrics {
        let repairs = crate::audit::repair_totals(&s.audit);
        report::metrics::write_metrics_with(report, duration, &repairs, &place(p)?)
            .with_context(|| format!("cannot write {}", p.display()))?;
    }
    Ok(())
}

/// After the reports: runs the `[[notify]]` hooks and appends the audit line. Returns the
/// run's status: the report's, or `failed` when a required hook failed.
pub(crate) fn after_report(s: &Settings, w: &Written, command: &str) -> Status {
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
        record["notify"] = outcomes
            .iter()
            .map(crate::report::notify::Outcome::to_json)
            .collect();
    }
    append_audit(s, &record);
    status
}

/// The audit line of a check (see [`crate::audit::check_line`]).
pub(crate) fn audit_record(s: &Settings, r: &Report, command: &str) -> serde_json::Value {
    crate::audit::check_line(r, &s.source.to_string(), command)
}

/// Appends to the audit log; a failure is a warning: the reports are written, and the
/// run's outcome stands.
pub(crate) fn append_audit(s: &Settings, record: &serde_json::Value) {
    if let Err(e) = crate::audit::append(&s.audit, record) {
        eoutln!("docsweep: warning: {e:#}");
    }
}
