//! `docsweep merge`: fold the partial results of `check --partition i/N` into one report,
//! exactly the report a single `check` would have written.

use std::path::PathBuf;

use anyhow::Context;
use clap::Args;

use super::check::{settings, ReportArgs, ScanArgs};
use crate::check::PARTIAL_FILE;
use crate::config::ConfigError;
use crate::merge;
use crate::report::Status;
use crate::scan::partial::PartialHeader;
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

/// `docsweep merge`: the partial results in partition order, the settings they ran with
/// (over the report flags) → [`crate::merge::merge`].
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
    let readers = merge::order(readers)?;
    let h = merge::header(&readers[0])?;
    let source = h
        .source
        .clone()
        .context("a partial result without a source")?;
    let s = settings(Some(source), args.report, recorded(&h))?;
    merge::merge(&s, &h, readers)
}

/// The scan flags the partitions ran with, as their header records them.
fn recorded(h: &PartialHeader) -> ScanArgs {
    ScanArgs {
        db: h.settings.database.clone(),
        max_errors: Some(h.settings.max_errors),
        show_values: h.settings.show_values,
        no_progress: true,
        query: h.settings.query.clone(),
        ..ScanArgs::default()
    }
}
