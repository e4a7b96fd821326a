//! Metrics in the Prometheus text exposition format (version 0.0.4), for the
//! node-exporter textfile collector (`--collector.textfile.directory`): write the file
//! there (atomically, as [`write_metrics`] does) after each sweep, and alert on
//! `docsweep_status`, `docsweep_findings` or any per-check gauge. Compared with a previous
//! run, `docsweep_new_findings` and `docsweep_resolved_findings` (by collection and check)
//! say what changed since. `docsweep_check_findings` has the value each check kind's
//! threshold sees; with thresholds, `docsweep_verdict` the level it reached. The repairs
//! applied and undone (`docsweep_repair_runs`, `docsweep_repair_documents`) are added up
//! from the audit log the check appends to. `examples/grafana/docsweep.json` is a dashboard
//! over these.
//!
//! Every family is a gauge with `# HELP` and `# TYPE`; no sample carries a timestamp (the
//! textfile collector refuses them). Label values are escaped (`\\`, `\"`, `\n`).

use std::fmt::Write as _;
use std::path::Path;

use serde_json::Value;

use super::format::{prometheus_float as float, prometheus_help, prometheus_label as label};
use super::{CollectionReport, Report, Status};

/// One metric family: HELP, TYPE, then its samples.
struct Family<'a> {
    out: &'a mut String,
    name: &'static str,
}

impl<'a> Family<'a> {
    fn new(out: &'a mut String, name: &'static str, help: &str) -> Family<'a> {
        let help = prometheus_help(help);
        let _ = writeln!(out, "# HELP {name} {help}");
        let _ = writeln!(out, "# TYPE {name} gauge");
        Family { out, name }
    }

    fn sample(&mut self, labels: &[(&str, &str)], value: impl std::fmt::Display) {
        self.out.push_str(self.name);
        if !labels.is_empty() {
            self.out.push('{');
            for (i, (k, v)) in labels.iter().enumerate() {
                if i > 0 {
                    self.out.push(',');
                }
                let _ = write!(self.out, "{k}=\"{}\"", label(v));
            }
            self.out.push('}');
        }
        let _ = writeln!(self.out, " {value}");
    }
}

/// Everything that counts as a finding in a collection, added up: unreadable and non-valid
/// documents, missing and unexpected indexes, documents in duplicate groups, orphaned
/// references, structural problems, and missing/added/changed documents against the
/// baseline; 1 for a collection that is not in the source and 1 when its indexes could
/// not be read.
pub fn findings(c: &CollectionReport) -> u64 {
    super::checks::checks(c)
        .iter()
        .map(|check| check.count)
        .sum()
}

/// `0` clean, `1` findings, `3` failed: the exit code of `docsweep check`.
pub fn status_code(s: Status) -> u8 {
    match s {
        Status::Clean => 0,
        Status::Warn => 2,
        Status::Findings => 1,
        Status::Failed => 3,
    }
}

/// Seconds since the Unix epoch of an RFC 3339 time.
fn unix(s: &str) -> Option<f64> {
    let t = time::OffsetDateTime::parse(s, &time::format_description::well_known::Rfc3339).ok()?;
    Some(t.unix_timestamp_nanos() as f64 / 1e9)
}

/// The whole file. `duration_secs` is how long the check took.
pub fn render(report: &Report, duration_secs: f64) -> String {
    render_with(report, duration_secs, &[])
}

/// [`render`], with the repairs the audit log records (see [`crate::audit::repair_totals`]).
pub fn render_with(
    report: &Report,
    duration_secs: f64,
    repairs: &[crate::audit::RepairTotal],
) -> String {
    let cs = &report.collections;
    let mut out = String::with_capacity(4 * 1024);
    let o = &mut out;
    run(o, report, duration_secs);
    collections(o, cs);
    unreadable_and_indexes(o, cs);
    duplicates_and_references(o, cs);
    structure_and_reconciliation(o, cs);
    totals(o, cs);
    verdicts(o, report);
    repair_totals(o, repairs);
    changes(o, cs);
    out
}

/// The run: status, duration, when it finished, warnings.
fn run(o: &mut String, report: &Report, duration_secs: f64) {
    let mut f = Family::new(
        o,
        "docsweep_status",
        "Outcome of the last check: 0 clean, 1 findings, 2 warn (exit code 0: findings under their fail thresholds), 3 failed.",
    );
    f.sample(&[], status_code(report.status));

    let mut f = Family::new(
        o,
        "docsweep_check_duration_seconds",
        "How long the last check took.",
    );
    f.sample(&[], float(duration_secs));

    let mut f = Family::new(
        o,
        "docsweep_last_run_timestamp_seconds",
        "When the last check finished, in seconds since the Unix epoch.",
    );
    let finished = unix(&report.finished_at).unwrap_or_else(|| {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_secs_f64())
            .unwrap_or(0.0)
    });
    f.sample(&[], float(finished));

    let mut f = Family::new(
        o,
        "docsweep_warnings",
        "Warnings the last check printed (see report.json).",
    );
    f.sample(&[], report.warnings.len());
}

/// Per collection: present, target version, documents, by class.
fn collections(o: &mut String, cs: &[CollectionReport]) {
    let mut f = Family::new(
        o,
        "docsweep_collection_present",
        "1 if the source has the collection, 0 if it is missing.",
    );
    for c in cs {
        f.sample(&[("collection", &c.name)], u8::from(c.present));
    }

    let mut f = Family::new(
        o,
        "docsweep_target_version",
        "The contract version every document must match.",
    );
    for c in cs {
        f.sample(&[("collection", &c.name)], c.target_version);
    }

    let mut f = Family::new(
        o,
        "docsweep_documents",
        "Readable documents in the collection.",
    );
    for c in cs {
        f.sample(&[("collection", &c.name)], c.documents);
    }

    let mut f = Family::new(
        o,
        "docsweep_documents_by_class",
        "Documents by classification: valid (version = the target), other_version (version = the one they match), invalid (version empty: they match none).",
    );
    for c in cs {
        let target = c.target_version.to_string();
        let n = &c.name;
        f.sample(
            &[("collection", n), ("class", "valid"), ("version", &target)],
            c.classes.valid,
        );
        for (v, count) in &c.classes.other_version {
            f.sample(
                &[
                    ("collection", n),
                    ("class", "other_version"),
                    ("version", v),
                ],
                count,
            );
        }
        f.sample(
            &[("collection", n), ("class", "invalid"), ("version", "")],
            c.classes.invalid,
        );
    }
}

/// Unreadable records and the index checks.
fn unreadable_and_indexes(o: &mut String, cs: &[CollectionReport]) {
    let mut f = Family::new(
        o,
        "docsweep_unreadable",
        "Records that could not be decoded at all.",
    );
    for c in cs {
        f.sample(&[("collection", &c.name)], c.unreadable);
    }

    let mut f = Family::new(
        o,
        "docsweep_indexes_checked",
        "1 if the collection's indexes were read and compared with the contract, else 0 (no index information in the source, or it could not be read).",
    );
    for c in cs {
        let checked = c.indexes.available && c.indexes.error.is_none();
        f.sample(&[("collection", &c.name)], u8::from(checked));
    }

    let mut f = Family::new(
        o,
        "docsweep_index_findings",
        "Indexes the target version requires but the collection lacks (missing) or has but the target version does not declare (unexpected). Absent when indexes were not checked.",
    );
    for c in cs
        .iter()
        .filter(|c| c.indexes.available && c.indexes.error.is_none())
    {
        f.sample(
            &[("collection", &c.name), ("kind", "missing")],
            c.indexes.missing.len(),
        );
        f.sample(
            &[("collection", &c.name), ("kind", "unexpected")],
            c.indexes.unexpected.len(),
        );
    }

    let mut f = Family::new(
        o,
        "docsweep_duplicate_groups",
        "Groups of documents sharing a value of a unique key (index = the unique index's name).",
    );
    for c in cs {
        for d in &c.duplicates {
            f.sample(&[("collection", &c.name), ("index", &d.name)], d.groups);
        }
    }
}

/// Unique keys and references.
fn duplicates_and_references(o: &mut String, cs: &[CollectionReport]) {
    let mut f = Family::new(
        o,
        "docsweep_duplicate_documents",
        "Documents in duplicate groups of a unique key.",
    );
    for c in cs {
        for d in &c.duplicates {
            f.sample(&[("collection", &c.name), ("index", &d.name)], d.documents);
        }
    }

    let mut f = Family::new(
        o,
        "docsweep_references_verified",
        "1 when the reference (field) was checked against the whole referenced collection (references = collection.field referred to); 0 when it is not verified: the source lacks that collection or did not yield all of its records (see the reason in report.json).",
    );
    for c in cs {
        for r in &c.references {
            let to = format!("{}.{}", r.collection, r.to);
            f.sample(
                &[
                    ("collection", &c.name),
                    ("field", &r.field),
                    ("references", &to),
                ],
                u8::from(r.checked),
            );
        }
    }

    let mut f = Family::new(
        o,
        "docsweep_orphans",
        "Documents whose reference (field) is not found in the referenced collection (references = collection.field referred to). Absent when the reference is not verified (docsweep_references_verified 0).",
    );
    for c in cs {
        for r in &c.references {
            let to = format!("{}.{}", r.collection, r.to);
            if r.checked {
                f.sample(
                    &[
                        ("collection", &c.name),
                        ("field", &r.field),
                        ("references", &to),
                    ],
                    r.orphans,
                );
            }
        }
    }
}

/// Structure and the baseline.
fn structure_and_reconciliation(o: &mut String, cs: &[CollectionReport]) {
    let mut f = Family::new(
        o,
        "docsweep_structure",
        "Structural problems: missing_id, duplicate_id, too_deep (nested deeper than 100), oversize (over 16 MiB).",
    );
    for c in cs {
        for (kind, _, n) in super::checks::structure_parts(&c.structure) {
            f.sample(&[("collection", &c.name), ("kind", kind)], n);
        }
    }

    let mut f = Family::new(
        o,
        "docsweep_reconciliation",
        "Comparison with the baseline by _id: baseline_documents, missing, added, changed, reordered (field order only). Absent without a baseline.",
    );
    for c in cs {
        if let Some(r) = &c.reconciliation {
            for (kind, n) in [
                ("baseline_documents", r.baseline_documents),
                ("missing", r.missing),
                ("added", r.added),
                ("changed", r.changed),
                ("reordered", r.reordered),
            ] {
                f.sample(&[("collection", &c.name), ("kind", kind)], n);
            }
        }
    }

    let mut f = Family::new(
        o,
        "docsweep_findings",
        "All findings in the collection added up (0 means it is exactly as the contract says).",
    );
    for c in cs {
        f.sample(&[("collection", &c.name)], findings(c));
    }
}

/// All findings, and by check kind.
fn totals(o: &mut String, cs: &[CollectionReport]) {
    let mut f = Family::new(
        o,
        "docsweep_check_findings",
        "Findings of each check kind (check), as its thresholds see them: invalid, other_version, unreadable, orphans, duplicates (documents in duplicate groups), index_missing, index_unexpected, structure, and with a baseline missing, added, changed.",
    );
    for c in cs {
        // counts() has the baseline's kinds only with a baseline.
        let counts = c.counts();
        for kind in super::gate::Kind::ALL {
            if let Some(n) = counts.get(kind.as_str()).and_then(Value::as_u64) {
                f.sample(&[("collection", &c.name), ("check", kind.as_str())], n);
            }
        }
    }
}

/// The thresholds' verdicts (only when thresholds judged the findings).
fn verdicts(o: &mut String, report: &Report) {
    let cs = &report.collections;
    // Only when thresholds judged the findings.
    if report.gated {
        let mut f = Family::new(
            o,
            "docsweep_verdict",
            "The level each check with findings reached against its thresholds: 0 pass (under every threshold), 1 warn, 2 fail; version: the other version, for other_version. Absent without thresholds.",
        );
        for c in cs {
            for v in &c.verdict {
                let version = v.version.map(|v| v.to_string()).unwrap_or_default();
                let level = match v.level {
                    super::gate::Level::Pass => 0,
                    super::gate::Level::Warn => 1,
                    super::gate::Level::Fail => 2,
                };
                f.sample(
                    &[
                        ("collection", &c.name),
                        ("check", v.check),
                        ("version", &version),
                    ],
                    level,
                );
            }
        }
    }
}

/// The repairs the audit log records.
fn repair_totals(o: &mut String, repairs: &[crate::audit::RepairTotal]) {
    for (name, help, documents) in [
        (
            "docsweep_repair_runs",
            "repair apply (event=apply) and repair undo (event=undo) runs the audit log records, by collection (empty for an undo whose apply is not in the log).",
            false,
        ),
        (
            "docsweep_repair_documents",
            "Documents those runs changed: applied (event=apply) or undone (event=undo).",
            true,
        ),
    ] {
        let mut f = Family::new(o, name, help);
        for r in repairs {
            let n = if documents { r.documents } else { r.runs };
            f.sample(&[("collection", &r.collection), ("event", r.event)], n);
        }
    }
}

/// New and resolved findings (only when compared with a previous run).
fn changes(o: &mut String, cs: &[CollectionReport]) {
    // Only when the check was compared with a previous run (`since_previous`).
    if cs.iter().any(|c| c.since_previous.is_some()) {
        for (name, help, new) in [
            (
                "docsweep_new_findings",
                "Findings of the check (kind) not there in the previous run: by document where violations.csv names them, else the increase of the count. Absent without a previous report.",
                true,
            ),
            (
                "docsweep_resolved_findings",
                "Findings of the check (kind) in the previous run that are gone: by document where violations.csv names them, else the decrease of the count. Absent without a previous report.",
                false,
            ),
        ] {
            let mut f = Family::new(o, name, help);
            for c in cs {
                for ch in c.since_previous.iter().flat_map(|s| &s.checks) {
                    let n = if new { ch.new } else { ch.resolved };
                    f.sample(&[("collection", &c.name), ("check", ch.check)], n);
                }
            }
        }
    }
}

/// Writes [`render`] to `path` atomically (the textfile collector must never read a
/// half-written file).
pub fn write_metrics(report: &Report, duration_secs: f64, path: &Path) -> std::io::Result<()> {
    write_metrics_with(report, duration_secs, &[], path)
}

/// [`render_with`] to `path` atomically.
pub fn write_metrics_with(
    report: &Report,
    duration_secs: f64,
    repairs: &[crate::audit::RepairTotal],
    path: &Path,
) -> std::io::Result<()> {
    // Counts only, no document data: readable by a node-exporter running as another user.
    crate::os::write_atomic(
        path,
        render_with(report, duration_secs, repairs).as_bytes(),
        crate::os::Access::Shared,
    )
}
