//! What a webhook POSTs: the run as JSON, a Slack message, or PagerDuty events (one per
//! collection that warns or fails).

use std::collections::BTreeMap;

use serde_json::{json, Value};

use super::{Context, Format};
use crate::report::format::{num, status_word};
use crate::report::gate::{Kind, Level};
use crate::report::{CollectionReport, Report};

/// A collection's checks with findings at `warn` or `fail` (without thresholds every
/// finding fails); `other_version` by version when thresholds judged it.
fn flagged(c: &CollectionReport, gated: bool) -> Vec<(String, u64, Level)> {
    if gated {
        return c
            .verdict
            .iter()
            .filter(|v| v.level != Level::Pass)
            .map(|v| (v.label(), v.observed, v.level))
            .collect();
    }
    Kind::ALL
        .iter()
        .map(|k| (k.as_str().to_string(), k.observe(c).0, Level::Fail))
        .filter(|(_, n, _)| *n > 0)
        .collect()
}

fn describe_checks(checks: &[(String, u64, Level)]) -> String {
    let mut parts = Vec::new();
    for (level, word) in [(Level::Fail, "fail"), (Level::Warn, "warn")] {
        let these: Vec<String> = checks
            .iter()
            .filter(|c| c.2 == level)
            .map(|(k, n, _)| format!("{k} {}", num(*n)))
            .collect();
        if !these.is_empty() {
            parts.push(format!("{word}: {}", these.join(", ")));
        }
    }
    parts.join("; ")
}

/// `since the last sweep (T): +4 invalid, -2 orphans`, when something changed.
fn describe_changes(c: &CollectionReport) -> Option<String> {
    let sp = c.since_previous.as_ref()?;
    Some(format!(
        "since the last sweep ({}): {}",
        sp.finished_at,
        sp.changes()?
    ))
}

/// The run's new and resolved findings, added up over the collections (None without a
/// comparison with a previous run).
fn change_totals(r: &Report) -> Option<Value> {
    let compared: Vec<_> = r
        .collections
        .iter()
        .filter_map(|c| c.since_previous.as_ref())
        .collect();
    let first = compared.first()?;
    let (new, resolved) = compared.iter().fold((0, 0), |(n, r), sp| {
        let (a, b) = sp.totals();
        (n + a, r + b)
    });
    Some(json!({ "finished_at": first.finished_at, "new": new, "resolved": resolved }))
}

/// The bodies a webhook of `format` POSTs (several for pagerduty: one per collection).
pub fn payloads(format: Format, ctx: &Context<'_>, routing_key: Option<&str>) -> Vec<Value> {
    let r = ctx.report;
    match format {
        Format::Json => vec![json!({
            "status": status_word(r.status),
            "source": r.source,
            "started_at": r.started_at,
            "finished_at": r.finished_at,
            "report": ctx.report_path.display().to_string(),
            "error": r.error,
            "since_previous": change_totals(r),
            "collections": r.collections.iter().map(|c| {
                let mut v = json!({
                    "name": c.name,
                    "documents": c.documents,
                    "present": c.present,
                    "verdict": c.outcome(r.gated),
                    "counts": c.counts(),
                });
                if r.gated {
                    v["checks"] = json!(c.verdict);
                }
                if let Some(sp) = &c.since_previous {
                    v["since_previous"] = json!(sp);
                }
                v
            }).collect::<Vec<_>>(),
        })],
        Format::Slack => vec![json!({ "text": slack_text(ctx) })],
        Format::PagerDuty => pagerduty(ctx, routing_key.unwrap_or_default()),
    }
}

fn slack_text(ctx: &Context<'_>) -> String {
    let r = ctx.report;
    let mut t = format!(
        "docsweep check: *{}* — {}\n",
        status_word(r.status).to_uppercase(),
        r.source
    );
    if let Some(e) = &r.error {
        t.push_str(&format!("source failed: {e}\n"));
    }
    let mut clean = 0;
    for c in &r.collections {
        if !c.present {
            t.push_str(&format!("• {}: not in the source\n", c.name));
            continue;
        }
        let checks = flagged(c, r.gated);
        let changes = describe_changes(c);
        if checks.is_empty() && changes.is_none() {
            clean += 1;
            continue;
        }
        let what = if checks.is_empty() {
            "no findings at warn or fail".to_string()
        } else {
            describe_checks(&checks)
        };
        t.push_str(&format!(
            "• {} ({} documents): {what}{}\n",
            c.name,
            num(c.documents),
            changes.map(|c| format!("; {c}")).unwrap_or_default()
        ));
    }
    if clean > 0 {
        t.push_str(&format!(
            "{clean} collection{} without findings\n",
            if clean == 1 { "" } else { "s" }
        ));
    }
    t.push_str(&format!("Report: {}", ctx.report_path.display()));
    t
}

fn pagerduty(ctx: &Context<'_>, routing_key: &str) -> Vec<Value> {
    let r = ctx.report;
    let event = |dedup: String, summary: String, severity: &str, details: Value| {
        let mut summary = summary;
        if summary.len() > 1024 {
            let mut cut = 1021;
            while !summary.is_char_boundary(cut) {
                cut -= 1;
            }
            summary.truncate(cut);
            summary.push_str("...");
        }
        json!({
            "routing_key": routing_key,
            "event_action": "trigger",
            "dedup_key": dedup,
            "payload": {
                "summary": summary,
                "source": r.source,
                "severity": severity,
                "timestamp": r.finished_at,
                "component": "docsweep",
                "custom_details": details,
            },
        })
    };
    let mut out = Vec::new();
    if let Some(e) = &r.error {
        out.push(event(
            format!("docsweep:{}", r.source),
            format!("docsweep check failed on {}: {e}", r.source),
            "critical",
            json!({ "status": "failed", "error": e, "report": ctx.report_path.display().to_string() }),
        ));
    }
    for c in &r.collections {
        let verdict = c.outcome(r.gated);
        let severity = match verdict {
            "fail" => "critical",
            "warn" => "warning",
            _ => continue,
        };
        let checks = flagged(c, r.gated);
        let what = if c.present {
            describe_checks(&checks)
        } else {
            "not in the source".into()
        };
        let levels: BTreeMap<&str, &str> = checks
            .iter()
            .map(|(k, _, l)| (k.as_str(), if *l == Level::Fail { "fail" } else { "warn" }))
            .collect();
        let mut details = json!({
            "status": status_word(r.status),
            "collection": c.name,
            "verdict": verdict,
            "levels": levels,
            "counts": c.counts(),
            "report": ctx.report_path.display().to_string(),
        });
        let mut summary = format!("docsweep: {} in {}: {what}", c.name, r.source);
        if let Some(sp) = &c.since_previous {
            details["since_previous"] = json!(sp);
            if let Some(changes) = sp.changes() {
                summary.push_str(&format!(" ({changes} since the last sweep)"));
            }
        }
        out.push(event(
            format!("docsweep:{}:{}", r.source, c.name),
            summary,
            severity,
            details,
        ));
    }
    out
}
