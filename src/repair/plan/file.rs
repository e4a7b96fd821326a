//! The plan file: checksummed JSON lines, chained (see [`super`]); writing it atomically
//! and owner-only, and reading it back with every check.

use std::path::Path;

use serde_json::{json, Value};

use super::{Entry, Plan, PlanError, PlanHeader, FORMAT};
use crate::repair::journal;

/// The earlier format: the same lines, each checksummed on its own.
pub(super) const FORMAT_UNCHAINED: &str = "docsweep-plan/1";

impl Plan {
    /// The last line: counts per action and the number of entries.
    pub fn summary(&self) -> Value {
        let mut counts: std::collections::BTreeMap<&str, u64> = Default::default();
        for e in &self.entries {
            *counts.entry(e.action.as_str()).or_insert(0) += 1;
        }
        json!({"kind": "summary", "entries": self.entries.len(), "actions": counts})
    }

    /// Writes the plan atomically, its lines chained.
    pub fn write(&self, path: &Path) -> Result<(), PlanError> {
        let mut text = String::new();
        let mut seed = 0;
        let header = serde_json::to_value(&self.header).unwrap_or(Value::Null);
        let records = std::iter::once(header)
            .chain(self.entries.iter().map(Entry::to_json))
            .chain(std::iter::once(self.summary()));
        for record in records {
            let (line, sum) = journal::chained_line(&record, seed);
            text.push_str(&line);
            seed = sum;
        }
        // Owner-only: it holds after-images.
        crate::os::write_atomic(path, text.as_bytes(), crate::os::Access::Private).map_err(|e| {
            PlanError::File {
                path: path.display().to_string(),
                message: format!("cannot write: {e}"),
            }
        })
    }
}

impl Plan {
    /// Reads and verifies a plan: every line's checksum and their chain, the header,
    /// and the summary.
    pub fn read(path: &Path) -> Result<Plan, PlanError> {
        let bad = |message: String| PlanError::File {
            path: path.display().to_string(),
            message,
        };
        let text = std::fs::read_to_string(path).map_err(|e| bad(format!("cannot read: {e}")))?;
        let lines = checked_lines(&text).map_err(bad)?;
        let first = lines.first().cloned().ok_or_else(|| bad("empty".into()))?;
        if first["kind"] != "plan"
            || (first["format"] != FORMAT && first["format"] != FORMAT_UNCHAINED)
        {
            return Err(bad(format!("not a {FORMAT} plan")));
        }
        let summary = lines.last().cloned().unwrap_or(Value::Null);
        if summary["kind"] != "summary" || lines.len() < 2 {
            return Err(bad("truncated: no summary line".into()));
        }
        let header: PlanHeader =
            serde_json::from_value(first).map_err(|e| bad(format!("header: {e}")))?;
        let entries = lines[1..lines.len() - 1]
            .iter()
            .enumerate()
            .map(|(i, v)| Entry::from_json(v).map_err(|m| bad(format!("entry {}: {m}", i + 1))))
            .collect::<Result<Vec<_>, _>>()?;
        if summary["entries"].as_u64() != Some(entries.len() as u64) {
            return Err(bad("the summary does not match the entries".into()));
        }
        Ok(Plan { header, entries })
    }
}

/// The plan file's lines, each checksum checked (chained when the first line says the
/// current format).
fn checked_lines(text: &str) -> Result<Vec<Value>, String> {
    let mut lines = Vec::new();
    let mut seed = 0;
    let mut chained = false;
    for (i, line) in text.split_inclusive('\n').enumerate() {
        if !line.ends_with('\n') {
            return Err(format!("truncated at line {}", i + 1));
        }
        let (v, sum) = journal::parse_seeded(line.as_bytes(), if chained { seed } else { 0 })
            .map_err(|m| {
                format!(
                    "line {}: {m}: the plan was edited or damaged; make it again with `docsweep repair plan`",
                    i + 1
                )
            })?;
        if i == 0 {
            chained = v["format"] == FORMAT;
        }
        seed = sum;
        lines.push(v);
    }
    Ok(lines)
}

#[cfg(test)]
mod tests {
    use super::super::Action;
    use super::*;

    fn entry(n: u64) -> Entry {
        Entry {
            action: Action::Delete,
            id: json!(n),
            before: Some(u128::from(n)),
            after: None,
            to: None,
            at: None,
            collection: None,
        }
    }

    fn sample() -> Plan {
        Plan {
            header: PlanHeader {
                collection: Some("orders".into()),
                ..PlanHeader::new(FORMAT)
            },
            entries: (1..=3).map(entry).collect(),
        }
    }

    fn lines(p: &Path) -> Vec<String> {
        std::fs::read_to_string(p)
            .unwrap()
            .split_inclusive('\n')
            .map(str::to_string)
            .collect()
    }

    #[test]
    fn a_plan_round_trips_and_an_entry_removed_and_another_repeated_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("p.plan");
        let plan = sample();
        plan.write(&p).unwrap();
        assert_eq!(Plan::read(&p).unwrap().entries, plan.entries);
        let all = lines(&p);
        assert_eq!(all.len(), 5);
        // The summary still counts 3 entries: only the chain tells.
        let orders: [(&str, &[usize]); 3] = [
            ("entry 2 removed, entry 1 repeated", &[0, 1, 1, 3, 4]),
            ("entry 3 removed, entry 2 repeated", &[0, 1, 2, 2, 4]),
            ("entries swapped", &[0, 2, 1, 3, 4]),
        ];
        for (what, order) in orders {
            let text: String = order.iter().map(|&i| all[i].as_str()).collect();
            std::fs::write(&p, text).unwrap();
            let e = Plan::read(&p).expect_err(what).to_string();
            assert!(e.contains("checksum mismatch"), "{what}: {e}");
            assert!(e.contains("p.plan"), "{what}: {e}");
        }
    }

    #[test]
    fn unchained_plans_of_the_earlier_format_are_read() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("old.plan");
        let plan = sample();
        let mut header = plan.header.clone();
        header.format = FORMAT_UNCHAINED.into();
        let mut text = journal::line_for(&header.to_json());
        for e in &plan.entries {
            text.push_str(&journal::line_for(&e.to_json()));
        }
        text.push_str(&journal::line_for(&plan.summary()));
        std::fs::write(&p, &text).unwrap();
        assert_eq!(Plan::read(&p).unwrap().entries, plan.entries);
        // The same lines claiming the chained format are refused.
        header.format = FORMAT.into();
        let mut lines: Vec<String> = text.split_inclusive('\n').map(str::to_string).collect();
        lines[0] = journal::line_for(&header.to_json());
        std::fs::write(&p, lines.concat()).unwrap();
        assert!(Plan::read(&p).is_err());
    }
}
