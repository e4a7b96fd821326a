//! `docsweep merge`: fold the partial results of `check --partition i/N` into one report,
//! exactly the report a single `check` would have written.

use std::path::PathBuf;

use anyhow::Context;
use clap::Args;

use super::check::{self, CheckArgs, ReportArgs, PARTIAL_FILE};
use crate::config::ConfigError;
use crate::report::Status;
use crate::scan::PartialReader;

/// Merge the partial results of `check --partition i/N` (all N of them) into one
/// report: report.json, violations.csv, the summary and any --html/--junit/--metrics,
/// equal to what a single `check` over the whole source writes.
///
/// The contracts, targets, collections and baseline must be the ones the partitions
/// used (from docsweep.toml or the same flags); the merge refuses partial results of
/// different runs or partitions that do not tile the data. Exit codes as for `check`.
#[derive(Debug, Args)]
#[command(after_help = "Examples:
  docsweep check --partition 0/2 --report-dir parts/0
  docsweep check --partition 1/2 --report-dir parts/1
  docsweep merge parts/0 parts/1 --report-dir docsweep-report")]
pub struct MergeArgs {
    /// Report directories of the partitions (or their partial.dsw files)
    #[arg(required = true, value_name = "REPORT")]
    pub partials: Vec<PathBuf>,
    #[command(flatten)]
    pub report: ReportArgs,
}

pub fn run(args: MergeArgs) -> anyhow::Result<Status> {
    let mut readers = Vec::new();
    for p in &args.partials {
        let file = if p.is_dir() {
            p.join(PARTIAL_FILE)
        } else {
            p.clone()
        };
        if !file.is_file() {
            return Err(ConfigError::Usage(format!(
                "{}: no partial result (a partition writes {PARTIAL_FILE} into its report directory when it completes)",
                file.display()
            ))
            .into());
        }
        readers.push(PartialReader::open(&file)?);
    }
    let readers = order(readers)?;
    let h = &readers[0].header;
    let source = h["source"]
        .as_str()
        .context("a partial result without a source")?
        .to_string();
    let max_errors = h["settings"]["max_errors"].as_u64().map(|n| n as usize);
    let show_values = h["settings"]["show_values"].as_bool().unwrap_or(false);
    let started_at = h["created_at"].as_str().map(str::to_string);
    let check = CheckArgs {
        source: Some(source),
        report: args.report,
        db: h["settings"]["database"].as_str().map(str::to_string),
        threads: None,
        max_errors,
        show_values,
        no_progress: true,
        batch_size: None,
        max_time_ms: None,
        retries: None,
        connect_timeout: None,
        read_preference: None,
        max_staleness: None,
        partition: None,
        checkpoint: None,
        batch_records: None,
        query: h["settings"]["query"].as_str().map(str::to_string),
    };
    check::merge(check, readers, started_at)
}

/// Checks that the partial results are the N partitions of one run, each once, and
/// returns them in partition order.
fn order(readers: Vec<PartialReader>) -> anyhow::Result<Vec<PartialReader>> {
    let usage = |m: String| anyhow::Error::from(ConfigError::Usage(m));
    let mut slots: Vec<Option<PartialReader>> = Vec::new();
    let mut first: Option<(PathBuf, serde_json::Value)> = None;
    for r in readers {
        let h = &r.header;
        let path = r.path().display().to_string();
        if h["kind"] != "partition" {
            return Err(usage(format!(
                "{path}: not a partition's result (it is a {})",
                h["kind"]
            )));
        }
        let p: crate::source::Partition = serde_json::from_value(h["partition"].clone())
            .map_err(|_| usage(format!("{path}: no partition recorded")))?;
        match &first {
            None => {
                first = Some((r.path().to_path_buf(), h.clone()));
                slots = (0..p.count).map(|_| None).collect();
            }
            Some((fp, fh)) => {
                for key in ["source", "settings"] {
                    if h[key] != fh[key] {
                        return Err(usage(format!(
                            "{path} and {} are of different runs: {key} {} vs {}",
                            fp.display(),
                            h[key],
                            fh[key]
                        )));
                    }
                }
                if p.count as usize != slots.len() {
                    return Err(usage(format!(
                        "{path} is partition {p}, {} is one of {}: different partitionings",
                        fp.display(),
                        slots.len()
                    )));
                }
            }
        }
        let slot = &mut slots[p.index as usize];
        if let Some(other) = slot {
            return Err(usage(format!(
                "partition {p} is given twice: {} and {path}",
                other.path().display()
            )));
        }
        *slot = Some(r);
    }
    let n = slots.len();
    let missing: Vec<String> = slots
        .iter()
        .enumerate()
        .filter(|(_, s)| s.is_none())
        .map(|(i, _)| format!("{i}/{n}"))
        .collect();
    if !missing.is_empty() {
        return Err(usage(format!(
            "missing partition(s) {}: a merge needs all {n}",
            missing.join(", ")
        )));
    }
    Ok(slots.into_iter().flatten().collect())
}
