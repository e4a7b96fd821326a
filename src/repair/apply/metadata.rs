//! Index actions on a dump: its `<collection>.metadata.json` files, rewritten in the form
//! mongodump wrote them.

use crate::repair::plan::Action;
use std::path::Path;

use serde_json::{json, Value};

use super::files::{metadata_file, read_text, write_text};
use super::{io, ApplyError};
use crate::repair::journal::Journal;
use crate::repair::matcher::Settled;
use crate::repair::plan::{Entry, Plan};
use crate::repair::settle::Reason;

/// Rewrites the collection's metadata file in `dir` for index actions.
pub(super) fn rewrite_metadata(
    dir: &Path,
    coll: &str,
    plan_entries: &[Entry],
    undo: bool,
) -> Result<(), ApplyError> {
    let touches_indexes = plan_entries
        .iter()
        .any(|e| matches!(e.action, Action::CreateIndex | Action::DropIndex));
    let Some((path, gzip)) = metadata_file(dir, coll).filter(|_| touches_indexes) else {
        // Nothing to change: the copied file stays byte for byte.
        return Ok(());
    };
    let path = path.as_path();
    let text = read_text(path, gzip)?;
    let mut meta: Value =
        serde_json::from_str(&text).map_err(|e| io(path, format!("not valid JSON: {e}")))?;
    // The form the file is in: canonical Extended JSON (mongodump 100.x) or relaxed
    // (older mongodump).
    let canonical = text.contains("\"$numberInt\"");
    let Some(indexes) = meta.get_mut("indexes").and_then(Value::as_array_mut) else {
        return Ok(());
    };
    for e in plan_entries {
        let Some(after) = &e.after else { continue };
        let name = after["name"].as_str().unwrap_or_default().to_string();
        let (create, drop) = match (e.action, undo) {
            (Action::CreateIndex, false) | (Action::DropIndex, true) => (true, false),
            (Action::DropIndex, false) | (Action::CreateIndex, true) => (false, true),
            _ => continue,
        };
        if drop {
            indexes.retain(|ix| ix["name"] != name.as_str());
        }
        if create
            && !indexes.iter().any(|ix| ix["name"] == name.as_str())
            && after.get("key").is_some()
        {
            let mut ix = if canonical {
                json!({"v": {"$numberInt": "2"}, "key": canonical_key(&after["key"]), "name": name})
            } else {
                json!({"v": 2, "key": after["key"], "name": name})
            };
            for option in crate::repair::plan::INDEX_OPTIONS {
                if after[option] == true {
                    ix[option] = Value::Bool(true);
                }
            }
            indexes.push(ix);
        }
    }
    write_text(path, gzip, &meta.to_string())
}

/// Index key directions in canonical Extended JSON, as mongodump writes them.
pub(super) fn canonical_key(key: &Value) -> Value {
    let mut m = serde_json::Map::new();
    if let Some(o) = key.as_object() {
        for (k, v) in o {
            let d = match v.as_i64() {
                Some(n) => json!({"$numberInt": n.to_string()}),
                None => v.clone(),
            };
            m.insert(k.clone(), d);
        }
    }
    Value::Object(m)
}

/// Index entries: which the metadata already reflects, which change it (journaled with
/// the metadata as it was, so that undo gives back its exact bytes), and which cannot be
/// carried because the dump has no metadata file.
pub(super) fn settle_indexes(
    in_dir: &Path,
    coll: &str,
    plan: &Plan,
    mine: &[usize],
    journal: &mut Journal,
    settled: &mut [Option<Settled>],
) -> Result<(), ApplyError> {
    let index_entries: Vec<usize> = mine
        .iter()
        .copied()
        .filter(|&i| plan.entries[i].id.is_null())
        .collect();
    if index_entries.is_empty() {
        return Ok(());
    }
    let Some((meta, gzip)) = metadata_file(in_dir, coll) else {
        for i in index_entries {
            settled[i] = Some(Settled::Conflict(Reason::NoMetadata));
        }
        return Ok(());
    };
    let metadata_before = read_text(&meta, gzip)?;
    let parsed: Value = serde_json::from_str(&metadata_before)
        .map_err(|e| io(&meta, format!("not valid JSON: {e}")))?;
    let indexes = parsed["indexes"].as_array().cloned().unwrap_or_default();
    let mut acted = Vec::new();
    for i in index_entries {
        let e = &plan.entries[i];
        let after = e.after.clone().unwrap_or(Value::Null);
        let name = after["name"].as_str().unwrap_or_default();
        let existing = indexes.iter().find(|ix| ix["name"] == name);
        let in_place = match e.action {
            Action::CreateIndex => existing.is_some_and(|ix| same_index(ix, &after)),
            _ => existing.is_none(),
        };
        settled[i] = Some(match (e.action, existing) {
            _ if in_place => Settled::Already,
            // Another index under the planned name: creating it would need a drop.
            (Action::CreateIndex, Some(_)) => Settled::Conflict(Reason::IndexDiffers),
            _ => {
                acted.push(json!({"action": e.action, "_id": Value::Null, "before": Value::Null, "after": e.after}));
                Settled::Acted
            }
        });
    }
    if !acted.is_empty() {
        journal.append(&json!({"kind": "batch", "n": "indexes", "collection": coll, "entries": acted, "metadata_before": metadata_before}))?;
    }
    Ok(())
}

/// Whether a metadata index spec is the planned one: same key (in order) and options.
pub(super) fn same_index(ix: &Value, planned: &Value) -> bool {
    let plain_key = |k: &Value| -> Vec<(String, String)> {
        k.as_object()
            .map(|o| {
                o.iter()
                    .map(|(f, d)| {
                        let d = d
                            .get("$numberInt")
                            .or_else(|| d.get("$numberLong"))
                            .or_else(|| d.get("$numberDouble"))
                            .and_then(Value::as_str)
                            .and_then(|s| s.parse::<f64>().ok())
                            .or_else(|| d.as_f64())
                            .map_or_else(|| d.to_string(), |n| n.to_string());
                        (f.clone(), d)
                    })
                    .collect()
            })
            .unwrap_or_default()
    };
    plain_key(&ix["key"]) == plain_key(&planned["key"])
        && crate::repair::plan::INDEX_OPTIONS
            .iter()
            .all(|o| (ix[*o] == true) == (planned[*o] == true))
}
