//! The terminal summary: per collection the counts, index/reference/duplicate findings
//! and the most frequent schema errors, then where the details are and what to do next.

use std::io::{self, Write};

use super::checks::CheckKind;
use super::format::{index_label, num};
use super::{CollectionReport, Report, Status};

fn collection(w: &mut dyn Write, c: &CollectionReport) -> io::Result<()> {
    if !c.present {
        return writeln!(w, "{}  target v{}  NOT IN SOURCE", c.name, c.target_version);
    }
    write!(
        w,
        "{}  target v{}  {} documents",
        c.name,
        c.target_version,
        num(c.documents)
    )?;
    if c.unreadable > 0 {
        write!(w, ", {} UNREADABLE", num(c.unreadable))?;
    }
    writeln!(w)?;
    writeln!(w, "  valid          {}", num(c.classes.valid))?;
    let other: Vec<String> = c
        .classes
        .other_version
        .iter()
        .map(|(v, n)| format!("v{v}: {}", num(*n)))
        .collect();
    if !other.is_empty() {
        writeln!(w, "  other version  {}", other.join(", "))?;
    }
    if c.classes.invalid > 0 {
        writeln!(w, "  invalid        {}", num(c.classes.invalid))?;
    }
    if !c.indexes.available {
        writeln!(
            w,
            "  indexes        not checked (the source has no index information)"
        )?;
    } else if c.indexes.missing.is_empty() && c.indexes.unexpected.is_empty() {
        writeln!(w, "  indexes        as the contract says")?;
    } else {
        for m in &c.indexes.missing {
            writeln!(w, "  index missing     {}", index_label(m))?;
        }
        for u in &c.indexes.unexpected {
            writeln!(w, "  index unexpected  {}", index_label(u))?;
        }
    }
    for d in c.duplicates.iter().filter(|d| d.groups > 0) {
        writeln!(
            w,
            "  duplicates     {}: {} groups, {} documents",
            d.name,
            num(d.groups),
            num(d.documents)
        )?;
    }
    for r in c.references.iter().filter(|r| r.orphans > 0) {
        writeln!(w, "  orphans        {}: {}", r.label(), num(r.orphans))?;
    }
    for r in c.references.iter().filter(|r| !r.checked) {
        write!(
            w,
            "  references     {}: not verified: {}",
            r.label(),
            r.reason.as_deref().unwrap_or("not checked")
        )?;
        if let Some(n) = r.orphans_unverified.filter(|&n| n > 0) {
            write!(w, " ({} not found among the records read)", num(n))?;
        }
        writeln!(w)?;
    }
    let structure = super::checks::checks(c)
        .into_iter()
        .find(|check| check.kind == CheckKind::Structure)
        .and_then(|check| check.headline);
    if let Some(headline) = structure {
        writeln!(w, "  structure      {headline}")?;
    }
    if let Some(r) = &c.reconciliation {
        writeln!(
            w,
            "  vs baseline    {} before: {} missing, {} added, {} changed, {} reordered",
            num(r.baseline_documents),
            num(r.missing),
            num(r.added),
            num(r.changed),
            num(r.reordered)
        )?;
        if let Some(ix) = r
            .indexes
            .as_ref()
            .filter(|ix| !ix.dropped.is_empty() || !ix.created.is_empty())
        {
            let dropped: Vec<String> = ix.dropped.iter().map(index_label).collect();
            let created: Vec<String> = ix.created.iter().map(index_label).collect();
            writeln!(
                w,
                "  since baseline indexes dropped: {}; created: {}",
                if dropped.is_empty() {
                    "none".into()
                } else {
                    dropped.join(", ")
                },
                if created.is_empty() {
                    "none".into()
                } else {
                    created.join(", ")
                }
            )?;
        }
    }
    if let Some(sp) = &c.since_previous {
        if let Some(changes) = sp.changes() {
            writeln!(w, "  since last     {changes} ({})", sp.finished_at)?;
        }
    }
    if !c.top_errors.is_empty() {
        writeln!(w, "  top errors")?;
        for e in c.top_errors.iter().take(5) {
            writeln!(w, "    {:>8}  {} at {}", num(e.count), e.keyword, e.path)?;
        }
    }
    Ok(())
}

/// Writes the summary of a finished (or failed) check.
pub fn write_summary(
    w: &mut dyn Write,
    report: &Report,
    scope: &super::Scope,
    report_dir: &str,
    violations: u64,
) -> io::Result<()> {
    match &report.database {
        Some(db) => writeln!(w, "docsweep check  {}  (database {db})", report.source)?,
        None => writeln!(w, "docsweep check  {}", report.source)?,
    }
    if let Some(read) = &scope.read {
        writeln!(w, "{}", read_line(read))?;
    }
    if let Some(filter) = &scope.filter {
        writeln!(w, "{}", filter_line(filter))?;
    }
    for c in &report.collections {
        writeln!(w)?;
        collection(w, c)?;
    }
    writeln!(w)?;
    if report.gated {
        gate(w, report)?;
    }
    let status = match report.status {
        Status::Clean => "clean",
        Status::Warn => "warn",
        Status::Findings => "FINDINGS",
        Status::Failed => "FAILED",
    };
    writeln!(w, "status: {status}")?;
    if let Some(e) = &report.error {
        writeln!(w, "error: {e}")?;
    }
    writeln!(
        w,
        "report: {report_dir}/report.json, {report_dir}/violations.csv ({} rows)",
        num(violations)
    )?;
    if report.status == Status::Failed {
        // What was read before the failure is reported, but advice needs the whole source.
        writeln!(
            w,
            "next: fix the source (see the error above) and run the check again; the counts above cover only what was read"
        )?;
        return Ok(());
    }
    if report.status != Status::Clean {
        let mut next = Vec::new();
        let mut runnable = 0;
        for c in &report.collections {
            for r in &c.remediation {
                next.push(format!("  {}  # {}", r.command, r.finding));
                runnable += usize::from(r.command.starts_with("docsweep "));
            }
        }
        if next.is_empty() {
            writeln!(w, "next: review {report_dir}/violations.csv; each row names the document, the finding and the schema error")?;
        } else if runnable == 0 {
            writeln!(w, "next:")?;
            for n in next {
                writeln!(w, "{n}")?;
            }
        } else {
            // One plan for every repair, in a safe order; the single commands plan the same
            // repairs one by one.
            let dir = crate::shell::quote(report_dir);
            writeln!(w, "next: one plan for the repairs below, in a safe order (restores, reverts, dedupes, quarantines, indexes):")?;
            writeln!(
                w,
                "  docsweep repair plan --from-report {dir} --out repairs.plan"
            )?;
            writeln!(w, "or one at a time:")?;
            for n in next {
                writeln!(w, "{n}")?;
            }
            let apply = if report.source.starts_with("mongodb") {
                "--yes"
            } else {
                "--out dump:repaired"
            };
            writeln!(w, "then: docsweep repair apply repairs.plan {apply}")?;
        }
    }
    Ok(())
}

/// The verdict of every check with findings: the level it reached and why.
fn gate(w: &mut dyn Write, report: &Report) -> io::Result<()> {
    let mut any = false;
    for c in &report.collections {
        for v in &c.verdict {
            if !any {
                writeln!(w, "gate:")?;
                any = true;
            }
            let level = match v.level {
                super::gate::Level::Pass => "pass",
                super::gate::Level::Warn => "WARN",
                super::gate::Level::Fail => "FAIL",
            };
            let bound = match (v.level, v.threshold) {
                (super::gate::Level::Pass, Some(t)) => format!("below {t}"),
                (_, Some(t)) => format!("reached {t}"),
                (_, None) => "no threshold".to_string(),
            };
            writeln!(
                w,
                "  {level:<5} {} {}: {} ({bound})",
                c.name,
                v.label(),
                num(v.observed)
            )?;
        }
    }
    if any {
        writeln!(w)?;
    }
    Ok(())
}

/// `read: HOST (ROLE, lag N s) …; read preference MODE`, from report.json's `read`.
pub fn read_line(read: &serde_json::Value) -> String {
    let servers: Vec<String> = read["servers"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|s| {
            let host = s["host"].as_str().unwrap_or("?");
            let role = s["role"].as_str().unwrap_or("?");
            let lag = match s["lag_seconds"].as_f64() {
                Some(l) => format!("lag {l} s"),
                None if s["replica_set"].is_null() => "no replica set: no lag".to_string(),
                None => "lag unknown".to_string(),
            };
            match s["replica_set"].as_str() {
                Some(set) => format!("{host} ({role} of {set}, {lag})"),
                None => format!("{host} ({role}, {lag})"),
            }
        })
        .collect();
    let servers = if servers.is_empty() {
        "no server answered a read".to_string()
    } else {
        servers.join(", ")
    };
    format!(
        "read: {servers}; read preference {}",
        read["read_preference"].as_str().unwrap_or("?")
    )
}

/// `FILTERED: …`, from report.json's `filter`: a partial check must not look like a full one.
pub fn filter_line(filter: &serde_json::Value) -> String {
    let mut parts = Vec::new();
    if let Some(q) = filter.get("query").filter(|q| !q.is_null()) {
        let on = filter["query_collection"].as_str().unwrap_or("?");
        parts.push(format!(
            "--query {q} on {on} (references into {on} not verified)"
        ));
    }
    let list = |k: &str| -> Vec<String> {
        filter[k]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|v| v.as_str().map(str::to_string))
            .collect()
    };
    let (inc, exc, out) = (list("ns_include"), list("ns_exclude"), list("excluded"));
    if !inc.is_empty() {
        parts.push(format!("--nsInclude {}", inc.join(" ")));
    }
    if !exc.is_empty() {
        parts.push(format!("--nsExclude {}", exc.join(" ")));
    }
    if !out.is_empty() {
        parts.push(format!("left out: {}", out.join(", ")));
    }
    format!("FILTERED (a partial check): {}", parts.join("; "))
}
