//! A check run: the settings resolved (see [`settings`]), one scan of the source against
//! the contracts, then the reports (or, for a partition, its partial result).

mod output;
pub mod settings;

pub(crate) use output::{
    after_report, new_report, open_baseline, previous_run, read_snapshot, report_dir, stage_dir,
    write_outputs, Scanned,
};
pub use settings::{BaselineSpec, Settings};

use anyhow::Context;

use crate::config::ConfigError;
use crate::report::{self, trend, CsvSink, Report, Status};
use crate::scan::{self, Baseline, Checkpoint, Facts, PartialReader, PartialWriter};
use crate::source::{Partition, Source};

/// The file a partition writes into its report directory.
pub const PARTIAL_FILE: &str = "partial.dsw";

/// Runs a check: scans the source and writes the reports (a partition: its partial
/// result). Returns the run's status.
pub fn run(s: &Settings) -> anyhow::Result<Status> {
    let _lock = report_dir(&s.report_dir)?;
    let kind = if s.partition.is_some() {
        "partition"
    } else {
        "checkpoint"
    };
    let header = s.header(kind)?;
    let started = std::time::Instant::now();
    let mut run = Scan {
        report: new_report(s),
        scope: report::Scope::default(),
        partial: None,
    };
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
        previous_run(s, &mut sink)
    } else {
        trend::Loaded::default()
    };
    // A corrupt snapshot is a usage error (exit 2), reported before any scan.
    let snapshot = read_snapshot(s)?;
    if s.partition.is_some() {
        remove_stale_partial(s)?;
    }
    // A checkpoint of another run is refused before any scan, too.
    let mut checkpoint = match &s.checkpoint {
        Some(p) => Some(open_checkpoint(p, &header)?),
        None => None,
    };
    run.scan(s, &header, snapshot, &mut sink, checkpoint.as_mut())?;
    if let Some(p) = s.partition {
        drop(sink);
        let _ = std::fs::remove_file(&csv_path);
        return end_partition(s, p, run);
    }
    let stage = stage.context("a report without a staging directory")?;
    let scanned = Scanned {
        report: run.report,
        scope: run.scope,
        sink,
        previous,
    };
    let written = write_outputs(s, scanned, started, stage)?;
    end_checkpoint(s, checkpoint, written.report.status)?;
    Ok(after_report(s, &written, "check"))
}

/// A partition's earlier result must not outlive a failed re-run (a merge would take it):
/// it is removed before anything else.
fn remove_stale_partial(s: &Settings) -> anyhow::Result<()> {
    let stale = s.report_dir.join(PARTIAL_FILE);
    match std::fs::remove_file(&stale) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(anyhow::Error::new(e))
            .with_context(|| format!("cannot remove the old {}", stale.display())),
    }
}

/// What one scan of the source gives: the report (before judging), its scope and, for a
/// partition, the partial result being written.
struct Scan {
    report: Report,
    scope: report::Scope,
    partial: Option<PartialWriter>,
}

impl Scan {
    /// Opens the source and the baseline and scans; a source that cannot be opened is the
    /// report's error (a usage error is returned).
    fn scan(
        &mut self,
        s: &Settings,
        header: &serde_json::Value,
        snapshot: Option<crate::reconcile::snapshot::Snapshot>,
        sink: &mut CsvSink,
        checkpoint: Option<&mut Checkpoint>,
    ) -> anyhow::Result<()> {
        let opened =
            Source::open_with(&s.source, s.db.as_deref(), &s.live).and_then(|mut source| {
                source.partition = s.partition;
                let baseline = open_baseline(s, snapshot)?;
                Ok((source, baseline))
            });
        match opened {
            // A file that is not what the source string says (not an archive): a usage
            // error.
            Err(e) if e.is_usage() => Err(e.into()),
            Err(e) => {
                self.report.error = Some(e.to_string());
                Ok(())
            }
            Ok((source, baseline)) => {
                self.scan_opened(s, header, &source, baseline.as_ref(), sink, checkpoint)
            }
        }
    }

    fn scan_opened(
        &mut self,
        s: &Settings,
        header: &serde_json::Value,
        source: &Source,
        baseline: Option<&Baseline>,
        sink: &mut CsvSink,
        checkpoint: Option<&mut Checkpoint>,
    ) -> anyhow::Result<()> {
        let report = &mut self.report;
        report.database = source.database.clone();
        let (chosen, excluded) = s.choose(source.database.as_deref())?;
        self.scope.filter = s.filter_json(&excluded);
        if s.partition.is_some() {
            self.partial = Some(partition_writer(s, header, source)?);
        }
        let mut facts = match (&mut self.partial, checkpoint) {
            (Some(w), _) => Facts::Record(w),
            (None, Some(cp)) => Facts::Checkpoint(cp),
            (None, None) => Facts::Fold,
        };
        let outcome = scan::scan_with(
            source,
            baseline,
            &s.contracts,
            &chosen,
            &s.scan,
            sink,
            &mut facts,
        )?;
        report.collections = outcome.collections;
        report.warnings = outcome.warnings;
        // A source that failed is not asked again for its validators and indexes.
        if outcome.failure.is_none() {
            crate::contract::diff::attach(
                source,
                &s.contracts,
                &mut report.collections,
                &mut report.warnings,
            );
        }
        report.error = outcome.failure.map(|e| e.to_string());
        self.scope.read = source.read_location();
        Ok(())
    }
}

/// Starts a partition's partial result: the run's header plus the source's database and
/// collections and its live drift (read once per partition, for the merge to report).
fn partition_writer(
    s: &Settings,
    header: &serde_json::Value,
    source: &Source,
) -> anyhow::Result<PartialWriter> {
    let mut header = header.clone();
    header["database"] = serde_json::json!(source.database);
    header["collections"] = source
        .collections
        .iter()
        .map(|c| serde_json::json!({"name": c.name, "file": c.file}))
        .collect();
    let drift = crate::contract::diff::drift_map(source, &s.contracts, &mut Vec::new());
    if !drift.is_empty() {
        header["drift"] = serde_json::Value::Object(drift);
    }
    let path = s.report_dir.join(PARTIAL_FILE);
    Ok(PartialWriter::create(&path, &header)?)
}

/// Ends a partition's run (its partial result, the audit line); returns its status.
fn end_partition(s: &Settings, p: Partition, run: Scan) -> anyhow::Result<Status> {
    let status = finish_partition(run.partial, p, &run.report, &run.scope)?;
    let mut record = output::audit_record(s, &run.report, "check");
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
    output::append_audit(s, &record);
    Ok(status)
}

/// Ends a partition's scan: its partial result is complete unless the source failed.
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

/// The checkpoint, once the reports are written: kept when the source failed (the same
/// command continues from it), else deleted.
fn end_checkpoint(
    s: &Settings,
    checkpoint: Option<Checkpoint>,
    status: Status,
) -> anyhow::Result<()> {
    let (Some(cp), Some(path)) = (checkpoint, &s.checkpoint) else {
        return Ok(());
    };
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
    Ok(())
}
