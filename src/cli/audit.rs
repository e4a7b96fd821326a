//! `docsweep audit`: the audit log as a timeline, one line per check, apply and undo.

use std::path::PathBuf;

use anyhow::Context;
use clap::Args;
use serde_json::Value;

use crate::config::{Config, ConfigError};
use crate::report::Status;

/// Show the audit log as a timeline: one line per check, apply and undo (time, event,
/// actor, collections, and what it did: a check's status, gate outcome per collection and
/// changes since the previous sweep; an apply's template and counts; an undo's counts).
/// An undo is about the collection of the apply that wrote its journal.
#[derive(Debug, Args)]
#[command(after_help = "Examples:
  docsweep audit
  docsweep audit --since 2026-12-01 --collection orders
  docsweep audit --event apply --event undo --until 2026-12-04T12:00:00Z
  docsweep audit --json | jq -c 'select(.event == \"check\")'")]
pub struct AuditArgs {
    /// The audit log [default: `audit` in docsweep.toml, else docsweep-audit.jsonl]
    #[arg(long, value_name = "FILE")]
    pub audit: Option<PathBuf>,
    /// Only events at or after T: RFC 3339 (2026-12-04T08:00:00Z) or a date (2026-12-04, UTC)
    #[arg(long, value_name = "T")]
    pub since: Option<String>,
    /// Only events before T (same forms as --since)
    #[arg(long, value_name = "T")]
    pub until: Option<String>,
    /// Only events about this collection
    #[arg(long, value_name = "C")]
    pub collection: Option<String>,
    /// Only these events: check, apply or undo (repeatable)
    #[arg(long, value_name = "EVENT", value_parser = ["check", "apply", "undo"])]
    pub event: Vec<String>,
    /// Print the selected lines as they are stored (JSON lines)
    #[arg(long)]
    pub json: bool,
    /// Project configuration [default: ./docsweep.toml when present]
    #[arg(long, value_name = "FILE")]
    pub config: Option<PathBuf>,
}

fn parse_time(s: &str) -> Option<time::OffsetDateTime> {
    use time::format_description::well_known::Rfc3339;
    if let Ok(t) = time::OffsetDateTime::parse(s, &Rfc3339) {
        return Some(t);
    }
    let date = time::Date::parse(s, time::macros::format_description!("[year]-[month]-[day]"));
    date.ok().map(|d| d.midnight().assume_utc())
}

/// What an event did: a check's status (with its gate outcome per collection, its changes
/// since the previous sweep and failed hooks), an apply's template and counts, an undo's
/// counts. `only`: the collection --collection selected.
fn outcome(line: &Value, only: Option<&str>) -> String {
    if let Some(s) = line["status"].as_str() {
        let mut out = s.to_string();
        if let Some(p) = line["partition"].as_str() {
            out.push_str(&format!(" (partition {p})"));
        }
        let selected = |name: &String| only.is_none_or(|o| o == name);
        if let Some(v) = line["verdict"].as_object() {
            let parts: Vec<String> = v
                .iter()
                .filter(|(c, _)| selected(c))
                .map(|(c, o)| format!("{c} {}", o.as_str().unwrap_or("?")))
                .collect();
            if !parts.is_empty() {
                out.push_str(&format!("; gate: {}", parts.join(", ")));
            }
        }
        if let Some(sp) = line["since_previous"].as_object() {
            let (mut new, mut resolved) = (0, 0);
            for (_, c) in sp.iter().filter(|(c, _)| selected(c)) {
                for ch in c["checks"].as_array().into_iter().flatten() {
                    new += ch["new"].as_u64().unwrap_or(0);
                    resolved += ch["resolved"].as_u64().unwrap_or(0);
                }
            }
            out.push_str(&format!("; since last: +{new} new, -{resolved} resolved"));
        }
        if let Some(hooks) = line["notify"].as_array() {
            let failed = hooks.iter().filter(|h| h["ok"] == false).count();
            if failed > 0 {
                out.push_str(&format!(", {failed} hook(s) failed"));
            }
        }
        return out;
    }
    let parts: Vec<String> = ["applied", "undone", "already", "conflicts"]
        .iter()
        .filter_map(|k| line[*k].as_u64().map(|n| format!("{k} {n}")))
        .collect();
    match line["template"].as_str() {
        Some(t) => format!("{t}: {}", parts.join(", ")),
        None => parts.join(", "),
    }
}

pub fn run(args: AuditArgs) -> anyhow::Result<Status> {
    let cfg = Config::load(args.config.as_deref())?;
    let path = match (&args.audit, &cfg.audit) {
        (Some(a), _) => a.clone(),
        (None, Some(a)) => cfg.resolve(a),
        (None, None) => PathBuf::from(crate::audit::DEFAULT_FILE),
    };
    let time_arg = |flag: &str, value: &Option<String>| {
        value
            .as_ref()
            .map(|s| {
                parse_time(s).ok_or_else(|| {
                    ConfigError::Usage(format!(
                        "{flag} {s:?}: expected RFC 3339 (2026-12-04T08:00:00Z) or a date (2026-12-04)"
                    ))
                })
            })
            .transpose()
    };
    let since = time_arg("--since", &args.since)?;
    let until = time_arg("--until", &args.until)?;
    if !path.is_file() {
        return Err(ConfigError::Usage(format!(
            "{}: no audit log (check, repair apply and repair undo write it)",
            path.display()
        ))
        .into());
    }
    let text = std::fs::read_to_string(&path)
        .with_context(|| format!("cannot read the audit log {}", path.display()))?;
    let mut broken = 0;
    let mut rows = Vec::new();
    let mut journals = crate::audit::Journals::default();
    for raw in text.lines().filter(|l| !l.trim().is_empty()) {
        let Ok(line) = serde_json::from_str::<Value>(raw) else {
            broken += 1;
            continue;
        };
        // Every apply teaches which collection its journal is of, selected or not.
        journals.learn(&line);
        let at = line["at"].as_str().unwrap_or_default().to_string();
        let when = parse_time(&at);
        if since.is_some_and(|s| when.is_none_or(|t| t < s))
            || until.is_some_and(|u| when.is_none_or(|t| t >= u))
        {
            continue;
        }
        let event = line["event"]
            .as_str()
            .or_else(|| line["command"].as_str())
            .unwrap_or("?")
            .to_string();
        if !args.event.is_empty() && !args.event.contains(&event) {
            continue;
        }
        let colls = crate::audit::collections(&line, &journals);
        if let Some(c) = &args.collection {
            if !colls.contains(c) {
                continue;
            }
        }
        if args.json {
            outln!("{raw}");
            continue;
        }
        let actor = line["actor"].as_str().unwrap_or("-").to_string();
        let colls = if colls.is_empty() {
            "-".to_string()
        } else {
            colls.join(",")
        };
        rows.push([
            at,
            event,
            actor,
            colls,
            outcome(&line, args.collection.as_deref()),
        ]);
    }
    if !args.json {
        let head = ["TIME", "EVENT", "ACTOR", "COLLECTIONS", "STATUS / COUNTS"];
        let mut width = head.map(str::len);
        for r in &rows {
            for (w, cell) in width.iter_mut().zip(r) {
                *w = (*w).max(cell.chars().count());
            }
        }
        let print = |cells: [&str; 5]| {
            let mut line = String::new();
            for (i, cell) in cells.iter().enumerate() {
                if i + 1 < cells.len() {
                    line.push_str(&format!("{cell:<w$}  ", w = width[i]));
                } else {
                    line.push_str(cell);
                }
            }
            outln!("{line}");
        };
        print(head);
        for r in &rows {
            print([&r[0], &r[1], &r[2], &r[3], &r[4]]);
        }
    }
    if broken > 0 {
        eoutln!(
            "docsweep: warning: {broken} line(s) of {} are not JSON and were skipped",
            path.display()
        );
    }
    Ok(Status::Clean)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_and_outcomes() {
        assert!(parse_time("2026-12-04").unwrap() < parse_time("2026-12-04T00:00:01Z").unwrap());
        assert!(parse_time("yesterday").is_none());
        let check = serde_json::json!({"status": "findings", "counts": {"orders": {}, "customers": {}},
            "notify": [{"ok": false}]});
        assert_eq!(outcome(&check, None), "findings, 1 hook(s) failed");
        let gated = serde_json::json!({"status": "warn",
            "verdict": {"customers": "clean", "orders": "warn"},
            "since_previous": {
                "customers": {"checks": [{"new": 1, "resolved": 0}]},
                "orders": {"checks": [{"new": 3, "resolved": 2}, {"new": 0, "resolved": 1}]}}});
        assert_eq!(
            outcome(&gated, None),
            "warn; gate: customers clean, orders warn; since last: +4 new, -3 resolved"
        );
        assert_eq!(
            outcome(&gated, Some("orders")),
            "warn; gate: orders warn; since last: +3 new, -3 resolved"
        );
        let apply = serde_json::json!({"collection": "orders", "template": "restore-missing",
            "applied": 3, "already": 0, "conflicts": 1});
        assert_eq!(
            outcome(&apply, None),
            "restore-missing: applied 3, already 0, conflicts 1"
        );
    }
}
