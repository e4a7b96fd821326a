//! `docsweep audit`: the audit log as a timeline, one line per check, apply and undo.

use std::path::PathBuf;

use anyhow::Context;
use clap::Args;
use serde_json::Value;

use crate::config::{Config, ConfigError};
use crate::report::Status;

/// Show the audit log as a timeline: one line per check, apply and undo (time, event,
/// actor, collections, and the status or the counts).
#[derive(Debug, Args)]
#[command(after_help = "Examples:
  docsweep audit
  docsweep audit --since 2026-12-01 --collection orders
  docsweep audit --json | jq -c 'select(.event == \"check\")'")]
pub struct AuditArgs {
    /// The audit log [default: `audit` in docsweep.toml, else docsweep-audit.jsonl]
    #[arg(long, value_name = "FILE")]
    pub audit: Option<PathBuf>,
    /// Only events at or after T: RFC 3339 (2026-12-04T08:00:00Z) or a date (2026-12-04, UTC)
    #[arg(long, value_name = "T")]
    pub since: Option<String>,
    /// Only events about this collection
    #[arg(long, value_name = "C")]
    pub collection: Option<String>,
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

/// The collections an audit line is about.
fn collections(line: &Value) -> Vec<String> {
    if let Some(c) = line["counts"].as_object() {
        return c.keys().cloned().collect();
    }
    line["collection"]
        .as_str()
        .map(|c| vec![c.to_string()])
        .unwrap_or_default()
}

/// The status of a check, or the counts of an apply or undo.
fn outcome(line: &Value) -> String {
    if let Some(s) = line["status"].as_str() {
        let mut out = s.to_string();
        if let Some(p) = line["partition"].as_str() {
            out.push_str(&format!(" (partition {p})"));
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
    parts.join(", ")
}

pub fn run(args: AuditArgs) -> anyhow::Result<Status> {
    let cfg = Config::load(args.config.as_deref())?;
    let path = match (&args.audit, &cfg.audit) {
        (Some(a), _) => a.clone(),
        (None, Some(a)) => cfg.resolve(a),
        (None, None) => PathBuf::from(crate::audit::DEFAULT_FILE),
    };
    let since = match &args.since {
        Some(s) => Some(parse_time(s).ok_or_else(|| {
            ConfigError::Usage(format!(
                "--since {s:?}: expected RFC 3339 (2026-12-04T08:00:00Z) or a date (2026-12-04)"
            ))
        })?),
        None => None,
    };
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
    for raw in text.lines().filter(|l| !l.trim().is_empty()) {
        let Ok(line) = serde_json::from_str::<Value>(raw) else {
            broken += 1;
            continue;
        };
        let at = line["at"].as_str().unwrap_or_default().to_string();
        if let Some(since) = since {
            if parse_time(&at).is_none_or(|t| t < since) {
                continue;
            }
        }
        let colls = collections(&line);
        if let Some(c) = &args.collection {
            if !colls.contains(c) {
                continue;
            }
        }
        if args.json {
            outln!("{raw}");
            continue;
        }
        let event = line["event"]
            .as_str()
            .or_else(|| line["command"].as_str())
            .unwrap_or("?")
            .to_string();
        let actor = line["actor"].as_str().unwrap_or("-").to_string();
        let colls = if colls.is_empty() {
            "-".to_string()
        } else {
            colls.join(",")
        };
        rows.push([at, event, actor, colls, outcome(&line)]);
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
        assert_eq!(collections(&check), ["orders", "customers"]);
        assert_eq!(outcome(&check), "findings, 1 hook(s) failed");
        let apply =
            serde_json::json!({"collection": "orders", "applied": 3, "already": 0, "conflicts": 1});
        assert_eq!(collections(&apply), ["orders"]);
        assert_eq!(outcome(&apply), "applied 3, already 0, conflicts 1");
    }
}
