//! Undoing a live apply from its journal.

use super::*;
use crate::repair::plan::Action;

/// One journaled change, for undo.
pub(super) struct Journaled {
    /// The collection it changed.
    collection: String,
    action: Action,
    id: Value,
    before: Option<Vec<u8>>,
    before_json: Value,
    after: Value,
    to: Option<String>,
}

/// Reads an applied journal for undo: its header and the changes that were written.
pub(super) fn journaled_changes(path: &Path) -> Result<(Value, Vec<Journaled>), ApplyError> {
    let read = journal::read(path)?;
    let header = read.records[0].clone();
    if !read.records.iter().any(|r| r["kind"] == "finish") {
        return Err(usage(format!(
            "{}: the apply did not finish; re-run `docsweep repair apply` to complete it first",
            path.display()
        )));
    }
    let mut written = HashSet::new();
    let mut conflicts = HashSet::new();
    for r in read.records.iter().filter(|r| r["kind"] == "done") {
        for l in ["applied", "already"] {
            for id in r[l].as_array().into_iter().flatten() {
                written.insert(id.as_str().unwrap_or_default().to_string());
            }
        }
        for c in listed_conflicts(&r["conflicts"]) {
            conflicts.insert(c.id);
        }
    }
    let mut seen = HashSet::new();
    let mut out = Vec::new();
    let collections = journal::collections(&header);
    for r in read.records.iter().filter(|r| r["kind"] == "batch") {
        let collection = r["collection"]
            .as_str()
            .or(header["collection"].as_str())
            .unwrap_or_default()
            .to_string();
        // Keys in a journal over several collections name theirs (see `Target::key_prefix`).
        let prefix = if collections.len() > 1 {
            format!("{collection}/")
        } else {
            String::new()
        };
        for e in r["entries"].as_array().into_iter().flatten() {
            let name = e["action"].as_str().unwrap_or_default();
            let action = Action::parse(name).ok_or_else(|| {
                usage(format!(
                    "{}: unknown action {name:?}: a journal of another docsweep version?",
                    path.display()
                ))
            })?;
            let key = if e["_id"].is_null() {
                format!(
                    "{prefix}index:{}",
                    e["after"]["name"].as_str().unwrap_or_default()
                )
            } else {
                format!("{prefix}{}", crate::scan::id_text(&e["_id"]))
            };
            // The first journaled before-image is the original one.
            if !seen.insert(key.clone()) {
                continue;
            }
            if conflicts.contains(&key) && !written.contains(&key) {
                continue;
            }
            let before = match e["before_bson"].as_str() {
                Some(s) => Some(unb64(s, &format!("{}: entry {key}", path.display()))?),
                None => None,
            };
            out.push(Journaled {
                collection: collection.clone(),
                action,
                id: e["_id"].clone(),
                before,
                before_json: e["before"].clone(),
                after: e["after"].clone(),
                to: e["to"].as_str().map(str::to_string),
            });
        }
    }
    Ok((header, out))
}

/// Counts per action of an applied journal (for the summary shown without `--yes`).
pub fn journal_counts(
    path: &Path,
) -> Result<(String, std::collections::BTreeMap<String, u64>), ApplyError> {
    let (h, changes) = journaled_changes(path)?;
    let mut m = std::collections::BTreeMap::new();
    for c in &changes {
        *m.entry(c.action.to_string()).or_insert(0) += 1;
    }
    Ok((
        format!(
            "{} {}.{}",
            h["target"].as_str().unwrap_or_default(),
            h["database"].as_str().unwrap_or_default(),
            journal::collections(&h).join(",")
        ),
        m,
    ))
}

/// Whether a journal is of a live apply.
pub fn journal_is_live(path: &Path) -> Result<bool, ApplyError> {
    let read = journal::read(path)?;
    Ok(is_live(
        read.records[0]["target"].as_str().unwrap_or_default(),
    ))
}

/// Undoes a live apply from its journal, with the apply's guards: every written document
/// goes back to its before-image where it still is the after-image; deleted and
/// quarantined documents come back where their `_id` is absent; created indexes are
/// dropped and dropped ones created again. Every journaled change ends as undone, already
/// undone, or a conflict with its reason. Re-running an undo is idempotent.
pub fn undo_live(
    journal_path: &Path,
    uri: Option<&str>,
    rate: Option<f64>,
    accept_top_level: bool,
) -> Result<LiveOutcome, ApplyError> {
    let (header, changes) = journaled_changes(journal_path)?;
    let collections = journal::collections(&header);
    let multi = collections.len() > 1;
    // Every collection's connection and guard first: nothing is written unless all of
    // them can be.
    let mut targets = Vec::new();
    for c in &collections {
        let mut t = Target::connect(
            header["target"].as_str().unwrap_or_default(),
            uri,
            header["database"].as_str(),
            c,
            accept_top_level,
        )?;
        if multi {
            t.key_prefix = format!("{c}/");
        }
        let mine: Vec<&Journaled> = changes.iter().filter(|j| j.collection == *c).collect();
        // Undoing a replace writes over a document, undoing an insert deletes one.
        let overwrites = mine
            .iter()
            .filter(|c| matches!(c.action, Action::Replace | Action::Insert))
            .count();
        t.require_guard(overwrites, "journaled replacements or inserts to undo")?;
        targets.push((t, mine));
    }
    let Some((first, _)) = targets.first() else {
        return Err(usage(format!(
            "{}: the journal names no collection",
            journal_path.display()
        )));
    };
    let mut out = LiveOutcome {
        journal: journal_path.to_path_buf(),
        target: if multi {
            format!(
                "{} {} ({})",
                first.redacted,
                first.database,
                collections.join(", ")
            )
        } else {
            first.describe()
        },
        entries: changes.len() as u64,
        guard: Some(first.guard),
        ..LiveOutcome::default()
    };
    let mut tally = Tally::default();
    let mut throttle = Throttle::new(rate);
    for (t, mine) in &targets {
        undo_collection(t, mine, &mut throttle, &mut tally)?;
    }
    out.applied = tally.applied.len() as u64;
    out.already = tally.already.len() as u64;
    out.conflicts = tally.conflicts;
    debug_assert_eq!(
        out.applied + out.already + out.conflicts.len() as u64,
        out.entries,
        "every journaled change settled once"
    );
    Ok(out)
}

/// Undoes one collection's journaled changes.
pub(super) fn undo_collection(
    t: &Target,
    changes: &[&Journaled],
    throttle: &mut Throttle,
    tally: &mut Tally,
) -> Result<(), ApplyError> {
    let existing = t.indexes()?;
    // Created indexes go first (a unique one would refuse the documents coming back).
    for c in changes.iter().filter(|c| c.action == Action::CreateIndex) {
        let name = c.after["name"].as_str().unwrap_or_default();
        let key = t.key(&format!("index:{name}"));
        if !existing.contains_key(name) {
            tally.already.push(key);
            continue;
        }
        t.db.run_command(doc! {"dropIndexes": &t.collection, "index": name})
            .run()
            .map_err(|e| t.err(&format!("dropIndexes {name}"), e))?;
        tally.applied.push(key);
    }
    let docs: Vec<&Journaled> = changes
        .iter()
        .copied()
        .filter(|c| !c.id.is_null())
        .collect();
    for chunk in docs.chunks(DEFAULT_BATCH) {
        let mut ids = Vec::new();
        for c in chunk {
            ids.push(json_to_bson(&c.id, "_id")?);
        }
        let current = t.current(&t.coll, &ids)?;
        for c in chunk {
            let key = crate::scan::id_text(&c.id);
            let before_raw = match &c.before {
                Some(b) => Some(to_raw(b.clone(), &key)?),
                None => None,
            };
            let before_state = match &before_raw {
                Some(b) => Some(state_fp_raw(b.as_bytes(), t.guard)?),
                None if c.before_json.is_null() => None,
                None => Some(state_fp(&c.before_json, t.guard)),
            };
            let after_state = (!c.after.is_null()).then(|| state_fp(&c.after, t.guard));
            let cur = current.get(&key);
            let cur_state = match cur {
                Some(d) => Some(state_fp_raw(d.as_bytes(), t.guard)?),
                None => None,
            };
            throttle.tick();
            let changed = Reason::ChangedSinceApply;
            let r = match (c.action, cur) {
                (Action::Replace, None) => Cas::Conflict(Reason::NotFound),
                (Action::Replace, Some(d)) if cur_state == after_state => match &before_raw {
                    Some(b) => guarded_replace(t, &t.coll, d, b, changed)?,
                    None => Cas::Conflict(changed),
                },
                (Action::Replace, Some(_)) if cur_state == before_state => Cas::Already,
                (Action::Insert, None) => Cas::Already,
                (Action::Insert, Some(d)) if cur_state == after_state => {
                    guarded_delete(t, &t.coll, d, changed)?.0
                }
                (Action::Delete | Action::Quarantine, None) => match &before_raw {
                    Some(b) => insert_absent(t, &t.coll, b)?,
                    None => Cas::Conflict(changed),
                },
                (Action::Delete | Action::Quarantine, Some(_)) if cur_state == before_state => {
                    Cas::Already
                }
                (Action::Delete | Action::Quarantine, Some(_)) => Cas::Conflict(Reason::IdTaken),
                _ => Cas::Conflict(changed),
            };
            // A document back from quarantine leaves the quarantine collection.
            if c.action == Action::Quarantine && !matches!(r, Cas::Conflict(_)) {
                let e = Entry {
                    action: c.action,
                    id: c.id.clone(),
                    before: None,
                    after: None,
                    to: c.to.clone(),
                    at: None,
                    collection: None,
                };
                if let (Some(q), Some(b)) = (quarantine_collection(&e, &t.collection), &before_raw)
                {
                    let qc = t.db.collection::<RawDocumentBuf>(&q);
                    let copy =
                        t.current(&qc, std::slice::from_ref(&json_to_bson(&c.id, "_id")?))?;
                    if let Some(copy) = copy.get(&key) {
                        if copy.as_bytes() == b.as_bytes() {
                            guarded_delete(t, &qc, copy, changed)?;
                        }
                    }
                }
            }
            tally.settle(t.key(&key), r);
        }
    }
    // Dropped indexes come back last.
    for c in changes.iter().filter(|c| c.action == Action::DropIndex) {
        let name = c.after["name"].as_str().unwrap_or_default();
        let key = t.key(&format!("index:{name}"));
        if existing.contains_key(name) || t.indexes()?.contains_key(name) {
            tally.already.push(key);
            continue;
        }
        let ix = dropped_index_spec(&c.before_json, name)?;
        match t
            .db
            .run_command(doc! {"createIndexes": &t.collection, "indexes": [ix]})
            .run()
        {
            Ok(_) => tally.applied.push(key),
            Err(e) if is_duplicate_key(&e) => {
                tally.conflicts.push(Conflict::new(key, Reason::Refused));
            }
            Err(e) => return Err(t.err(&format!("createIndexes {name}"), e)),
        }
    }
    Ok(())
}

/// The `createIndexes` spec that gives back a dropped index: everything `listIndexes`
/// showed before the drop (unique, sparse, partial filter, collation, TTL, …) except what
/// the server sets itself (`v`, `ns`).
pub(super) fn dropped_index_spec(before: &Value, name: &str) -> Result<Document, ApplyError> {
    let mut ix = match json_to_bson(before, &format!("index {name}"))? {
        Bson::Document(d) => d,
        _ => Document::new(),
    };
    // Set by the server, or options no server since 3.0 takes (`dropDups`).
    for field in ["v", "ns", "dropDups"] {
        ix.remove(field);
    }
    ix.insert("key", index_key(&before["key"])?);
    ix.insert("name", name);
    Ok(ix)
}
