//! `docsweep merge`: folds the partial results of `check --partition i/N` (in partition
//! order) into one report, exactly the report a single check would have written.

use std::path::PathBuf;

use anyhow::Context;

use crate::check::{self, Scanned, Settings};
use crate::config::ConfigError;
use crate::report::{self, CsvSink, Status};
use crate::scan::partial::PartialHeader;
use crate::scan::{self, Chunk, Facts, PartialReader};
use crate::source::{Partition, Source};

fn usage(m: String) -> anyhow::Error {
    anyhow::Error::from(ConfigError::Usage(m))
}

/// Checks that the partial results are the N partitions of one run, each once, and
/// returns them in partition order.
pub fn order(readers: Vec<PartialReader>) -> anyhow::Result<Vec<PartialReader>> {
    let mut slots: Vec<Option<PartialReader>> = Vec::new();
    let mut first: Option<(PathBuf, serde_json::Value)> = None;
    for r in readers {
        let p = partition_of(&r)?;
        match &first {
            None => {
                first = Some((r.path().to_path_buf(), r.header.clone()));
                slots = (0..p.count).map(|_| None).collect();
            }
            Some((fp, fh)) => same_run(&r, p, fp, fh, slots.len())?,
        }
        let slot = &mut slots[p.index as usize];
        if let Some(other) = slot {
            return Err(usage(format!(
                "partition {p} is given twice: {} and {}",
                other.path().display(),
                r.path().display()
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

/// The partition a partial result is of (it must be a partition's).
fn partition_of(r: &PartialReader) -> anyhow::Result<Partition> {
    let h = &r.header;
    let path = r.path().display().to_string();
    if h["kind"] != "partition" {
        return Err(usage(format!(
            "{path}: not a partition's result (it is a {})",
            h["kind"]
        )));
    }
    serde_json::from_value(h["partition"].clone())
        .map_err(|_| usage(format!("{path}: no partition recorded")))
}

/// Refuses a partial result (partition `p`) of another run or partitioning than the
/// first one's (`first`, with `count` partitions).
fn same_run(
    r: &PartialReader,
    p: Partition,
    first: &std::path::Path,
    first_header: &serde_json::Value,
    count: usize,
) -> anyhow::Result<()> {
    let h = &r.header;
    let path = r.path().display().to_string();
    for key in ["source", "settings"] {
        if h[key] != first_header[key] {
            return Err(usage(format!(
                "{path} and {} are of different runs: {key} {} vs {}",
                first.display(),
                h[key],
                first_header[key]
            )));
        }
    }
    if p.count as usize != count {
        return Err(usage(format!(
            "{path} is partition {p}, {} is one of {count}: different partitionings",
            first.display(),
        )));
    }
    Ok(())
}

/// The header of a partition's partial result, typed.
pub fn header(r: &PartialReader) -> anyhow::Result<PartialHeader> {
    serde_json::from_value(r.header.clone()).map_err(|e| {
        usage(format!(
            "{}: the header is missing or damaged: {e}",
            r.path().display()
        ))
    })
}

/// Refuses to merge with other settings than the partitions ran with.
fn check_settings(s: &Settings, h: &PartialHeader, first: &PartialReader) -> anyhow::Result<()> {
    let mine = serde_json::to_value(s.run_settings()?)?;
    let theirs = serde_json::to_value(&h.settings)?;
    let Some(obj) = mine.as_object() else {
        return Ok(());
    };
    for (key, v) in obj {
        if theirs[key] != *v {
            return Err(usage(format!(
                "{}: the partitions ran with {key} {}, this merge has {v}: \
                 merge with the partitions' contracts, targets, collections and baseline",
                first.path().display(),
                theirs[key]
            )));
        }
    }
    Ok(())
}

/// Folds the partitions' records (`readers`, in partition order, the first's header `h`)
/// into one report.
pub fn merge(
    s: &Settings,
    h: &PartialHeader,
    mut readers: Vec<PartialReader>,
) -> anyhow::Result<Status> {
    check_settings(s, h, &readers[0])?;
    let _lock = check::report_dir(&s.report_dir)?;
    let stage = check::stage_dir(&s.report_dir)?;
    let started = std::time::Instant::now();
    let mut report = check::new_report(s);
    if let Some(at) = &h.created_at {
        report.started_at = at.clone();
    }
    report.database = h.database.clone();
    let csv_path = stage.path().join("violations.csv");
    let mut sink = CsvSink::create(&csv_path)
        .with_context(|| format!("cannot write {}", csv_path.display()))?;
    let previous = check::previous_run(s, &mut sink);
    let snapshot = check::read_snapshot(s)?;
    let collections = h
        .collections
        .iter()
        .map(|c| (c.name.clone(), c.file.clone(), Ok(None)))
        .collect();
    let source = Source::recorded(s.source.clone(), report.database.clone(), collections);
    let (chosen, excluded) = s.choose(report.database.as_deref())?;
    let mut scope = report::Scope {
        read: None,
        filter: s.filter_json(&excluded),
    };
    match check::open_baseline(s, snapshot) {
        Err(e) => report.error = Some(e.to_string()),
        Ok(baseline) => {
            let outcome = scan::scan_with(
                &source,
                baseline.as_ref(),
                &s.contracts,
                &chosen,
                &s.scan,
                &mut sink,
                &mut Facts::Merge(&mut readers),
            )?;
            report.collections = outcome.collections;
            report.warnings = outcome.warnings;
            if let Some(drift) = &h.drift {
                crate::contract::diff::attach_map(drift, &mut report.collections);
            }
            report.error = outcome.failure.map(|e| e.to_string());
            if report.error.is_none() {
                read_ends(&mut readers, &mut scope.read)?;
            }
        }
    }
    let scanned = Scanned {
        report,
        scope,
        sink,
        previous,
    };
    let written = check::write_outputs(s, scanned, started, stage)?;
    Ok(check::after_report(s, &written, "merge"))
}

/// Reads what follows each partition's last collection: where it read (a note), then
/// its end.
fn read_ends(
    readers: &mut [PartialReader],
    read: &mut Option<serde_json::Value>,
) -> anyhow::Result<()> {
    for r in readers {
        let mut chunk = r.next_chunk()?;
        if let Some(Chunk::Note(note)) = &chunk {
            merge_read(read, &note["read"]);
            chunk = r.next_chunk()?;
        }
        if !matches!(chunk, Some(Chunk::End)) {
            return Err(usage(format!(
                "{}: more or less than this merge expected after the last collection",
                r.path().display()
            )));
        }
    }
    Ok(())
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
