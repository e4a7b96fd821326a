//! Applying a plan to a live deployment, and resuming an interrupted apply.

use super::*;
use crate::repair::plan::Action;

/// What a batch found a document to need.
pub(super) enum Need {
    Write,
    Already,
    Conflict(Reason),
}

/// Settled `_id`s and counts of an unfinished journal.
#[derive(Default)]
pub(super) struct Progress {
    settled: HashSet<String>,
    applied: u64,
    already: u64,
    conflicts: Vec<Conflict>,
    batches: u64,
}

pub(super) fn progress(records: &[Value]) -> Progress {
    let mut p = Progress::default();
    for r in records {
        if r["kind"] == "done" {
            for (list, n) in [("applied", &mut p.applied), ("already", &mut p.already)] {
                for id in r[list].as_array().into_iter().flatten() {
                    *n += 1;
                    p.settled
                        .insert(id.as_str().unwrap_or_default().to_string());
                }
            }
            for c in listed_conflicts(&r["conflicts"]) {
                p.settled.insert(c.id.clone());
                p.conflicts.push(c);
            }
        }
        if let Some(n) = r["n"].as_u64() {
            p.batches = p.batches.max(n + 1);
        }
    }
    p
}

/// An existing journal of this plan: finished (the run is a no-op) or to resume; one of
/// another plan or target is refused.
enum Existing {
    None,
    Finished(Value),
    Resume(journal::Read),
}

fn existing_journal(
    req: &ApplyLive<'_>,
    checksum: &str,
    collections: &[String],
) -> Result<Existing, ApplyError> {
    if !req.journal.exists() {
        return Ok(Existing::None);
    }
    let plan = req.plan;
    let source = plan.header.source.as_str();
    let coll_name = plan.collection();
    let read = journal::read(&req.journal)?;
    let h = &read.records[0];
    if h["plan_checksum"] != checksum {
        return Err(usage(format!(
            "journal {} belongs to another plan ({}): pass --journal FILE for this one",
            req.journal.display(),
            h["plan"].as_str().unwrap_or("?")
        )));
    }
    if h["target"] != source
        || h["collection"] != coll_name
        || (collections.len() > 1 && h["collections"] != json!(collections))
    {
        return Err(usage(format!(
            "journal {} is for {} {}, not {source} {coll_name}",
            req.journal.display(),
            h["target"],
            h["collection"]
        )));
    }
    Ok(match read.records.iter().find(|r| r["kind"] == "finish") {
        Some(f) => Existing::Finished(f.clone()),
        None => Existing::Resume(read),
    })
}

/// Every collection's connection, and its guard checked: nothing is written unless all
/// of them can be.
fn connect_all(
    req: &ApplyLive<'_>,
    collections: &[String],
) -> Result<Vec<(Target, Plan)>, ApplyError> {
    let plan = req.plan;
    let source = plan.header.source.as_str();
    let mut targets = Vec::new();
    for c in collections {
        let mut target = Target::connect(
            source,
            req.uri,
            plan.header.database.as_deref(),
            c,
            req.accept_top_level,
        )?;
        if collections.len() > 1 {
            target.key_prefix = format!("{c}/");
        }
        let part = plan.of_collection(c);
        // Without a whole-document guard, writing over or deleting documents needs consent.
        let overwrites = part
            .entries
            .iter()
            .filter(|e| {
                matches!(
                    e.action,
                    Action::Replace | Action::Delete | Action::Quarantine
                )
            })
            .count();
        target.require_guard(overwrites, "planned replacements, deletions or quarantines")?;
        targets.push((target, part));
    }
    if targets.is_empty() {
        return Err(usage(format!(
            "{}: the plan names no collection",
            req.plan_path.display()
        )));
    }
    Ok(targets)
}

/// The run's state across collections.
struct Run<'j> {
    jr: &'j mut Journal,
    /// The next batch number.
    n: u64,
    throttle: Throttle,
    files: FileQuarantine,
    tally: Tally,
    /// Second entries for one `_id` or index name.
    seconds: Vec<Conflict>,
}

/// Applies one collection's entries that are not settled yet: dropped indexes first (a
/// wrong unique one would refuse documents the plan brings back), then the documents in
/// batches, then created indexes (a unique one needs its duplicates resolved).
fn apply_collection(
    target: &Target,
    part: &Plan,
    settled: &HashSet<String>,
    batch_size: usize,
    run: &mut Run<'_>,
) -> Result<(), ApplyError> {
    // One change per `_id` (and index name): a later entry for the same one is a conflict.
    let mut first = HashSet::new();
    let mut entries = Vec::new();
    for e in &part.entries {
        let key = target.key(&entry_key(e));
        if first.insert(key.clone()) {
            entries.push(e);
        } else {
            run.seconds.push(Conflict::new(key, Reason::SecondEntry));
        }
    }
    let open = |e: &&Entry| !settled.contains(&target.key(&entry_key(e)));
    let pick = |index: Option<Action>| -> Vec<&Entry> {
        entries
            .iter()
            .copied()
            .filter(|e| match index {
                Some(action) => e.id.is_null() && e.action == action,
                None => !e.id.is_null(),
            })
            .filter(open)
            .collect()
    };
    let (drops, docs, creates) = (
        pick(Some(Action::DropIndex)),
        pick(None),
        pick(Some(Action::CreateIndex)),
    );
    if !drops.is_empty() {
        apply_indexes(target, &drops, run.jr, run.n, &mut run.tally)?;
        run.n += 1;
    }
    for chunk in docs.chunks(batch_size.max(1)) {
        apply_batch(
            target,
            chunk,
            run.jr,
            run.n,
            &mut run.throttle,
            &mut run.files,
            &mut run.tally,
        )?;
        run.n += 1;
    }
    if !creates.is_empty() {
        apply_indexes(target, &creates, run.jr, run.n, &mut run.tally)?;
        run.n += 1;
    }
    Ok(())
}

/// Journals a batch's changes (before- and after-images) before any of its writes: the
/// intent is durable first.
fn journal_intent(
    jr: &mut Journal,
    t: &Target,
    n: u64,
    journaled: Vec<Value>,
) -> Result<(), ApplyError> {
    failpoint("apply.before-batch");
    if !journaled.is_empty() {
        jr.append(
            &json!({"kind": "batch", "n": n, "collection": t.collection, "entries": journaled}),
        )?;
        failpoint("apply.batch-journaled");
    }
    Ok(())
}

/// Applies `plan` to the live deployment it was made from.
pub fn apply_live(req: &ApplyLive<'_>) -> Result<LiveOutcome, ApplyError> {
    let plan = req.plan;
    let source = plan.header.source.as_str();
    let collections = plan.collections();
    let coll_name = plan.collection().to_string();
    let changes = plan.entries.iter().filter(|e| !e.id.is_null()).count() as u64;
    if let Some(max) = req.max_changes {
        if changes > max {
            return Err(usage(format!(
                "the plan changes {changes} documents, more than --max-changes {max}"
            )));
        }
    }
    let checksum = plan_checksum(req.plan_path)?;
    let mut out = LiveOutcome {
        journal: req.journal.clone(),
        entries: plan.entries.len() as u64,
        ..LiveOutcome::default()
    };
    let existing = match existing_journal(req, &checksum, &collections)? {
        Existing::Finished(f) => {
            out.finished_before = true;
            out.applied = f["applied"].as_u64().unwrap_or(0);
            out.already = f["already"].as_u64().unwrap_or(0);
            out.conflicts = listed_conflicts(&f["conflicts"]);
            out.target = format!("{source} {coll_name}");
            return Ok(out);
        }
        Existing::Resume(read) => Some(read),
        Existing::None => None,
    };
    let targets = connect_all(req, &collections)?;
    let first_target = &targets[0].0;
    out.target = if collections.len() > 1 {
        format!(
            "{} {} ({})",
            first_target.redacted,
            first_target.database,
            collections.join(", ")
        )
    } else {
        first_target.describe()
    };
    let guard = first_target.guard;
    out.guard = Some(guard);
    let (mut jr, prog) = match existing {
        Some(read) => {
            out.resumed = true;
            let p = progress(&read.records);
            let mut j = Journal::reopen(&req.journal, &read)?;
            j.append(&json!({
                "kind": "resume", "at": crate::report::now_rfc3339(),
                "torn_tail": read.torn_tail, "settled": p.settled.len(),
                "guard": guard.as_str(),
            }))?;
            (j, p)
        }
        None => {
            let mut j = Journal::create(&req.journal)?;
            j.append(&json!({
                "kind": "header", "format": journal::FORMAT,
                "plan": req.plan_path.display().to_string(), "plan_checksum": checksum,
                "target": source, "database": first_target.database, "collection": coll_name,
                "collections": collections,
                "template": plan.header.template, "params": plan.header.params,
                "started_at": crate::report::now_rfc3339(),
                "user": crate::os::actor(),
                "guard": guard.as_str(),
            }))?;
            (j, Progress::default())
        }
    };
    let mut run = Run {
        jr: &mut jr,
        n: prog.batches,
        throttle: Throttle::new(req.rate),
        files: FileQuarantine::default(),
        tally: Tally::default(),
        seconds: Vec::new(),
    };
    for (target, part) in &targets {
        apply_collection(target, part, &prog.settled, req.batch_size, &mut run)?;
    }
    let (tally, seconds) = (run.tally, run.seconds);
    out.applied = prog.applied + tally.applied.len() as u64;
    out.already = prog.already + tally.already.len() as u64;
    out.conflicts = prog.conflicts;
    out.conflicts.extend(tally.conflicts);
    out.conflicts.extend(seconds);
    debug_assert_eq!(
        out.applied + out.already + out.conflicts.len() as u64,
        out.entries,
        "every entry settled once"
    );
    failpoint("apply.before-finish");
    let conflicts: Vec<Value> = out.conflicts.iter().map(Conflict::to_json).collect();
    jr.append(&json!({
        "kind": "finish", "entries": out.entries, "applied": out.applied,
        "already": out.already, "conflicts": conflicts,
        "finished_at": crate::report::now_rfc3339(),
    }))?;
    Ok(out)
}

pub(super) fn apply_indexes(
    t: &Target,
    entries: &[&Entry],
    jr: &mut Journal,
    n: u64,
    run: &mut Tally,
) -> Result<(), ApplyError> {
    let existing = t.indexes()?;
    let mut tally = Tally::default();
    let mut todo = Vec::new();
    let mut journaled = Vec::new();
    for e in entries {
        let after = e.after.clone().unwrap_or(Value::Null);
        let name = after["name"].as_str().unwrap_or_default().to_string();
        let id = t.key(&index_id(e));
        match (e.action, existing.get(&name)) {
            (Action::CreateIndex, Some(ix)) => {
                // The same index only with the same key and options the plan asks for.
                let option = |v: &Value, o: &str| v[o] == true;
                let same = crate::value::key_hash(&ix["key"])
                    == crate::value::key_hash(&after["key"])
                    && crate::repair::plan::INDEX_OPTIONS
                        .iter()
                        .all(|o| option(ix, o) == option(&after, o));
                if same {
                    tally.already.push(id);
                } else {
                    tally
                        .conflicts
                        .push(Conflict::new(id, Reason::IndexDiffers));
                }
            }
            (Action::DropIndex, None) => tally.already.push(id),
            (action, before) => {
                journaled.push(
                    json!({"action": action, "_id": Value::Null, "before": before, "after": after}),
                );
                todo.push((e, name, id));
            }
        }
    }
    journal_intent(jr, t, n, journaled)?;
    for (e, name, id) in todo {
        let after = e.after.clone().unwrap_or(Value::Null);
        let result = if e.action == Action::CreateIndex {
            let mut ix = doc! {"key": index_key(&after["key"])?, "name": &name};
            for option in crate::repair::plan::INDEX_OPTIONS {
                if after[option] == true {
                    ix.insert(option, true);
                }
            }
            t.db.run_command(doc! {"createIndexes": &t.collection, "indexes": [ix]})
                .run()
        } else {
            t.db.run_command(doc! {"dropIndexes": &t.collection, "index": &name})
                .run()
        };
        match result {
            Ok(_) => tally.applied.push(id),
            // The data does not allow it (a unique index over duplicates): not done.
            Err(err) if is_duplicate_key(&err) => {
                eoutln!(
                    "docsweep: index {name} of {}: the server refused it: {err}",
                    t.collection
                );
                tally.conflicts.push(Conflict::new(id, Reason::Refused));
            }
            Err(err) => return Err(t.err(&format!("{} {name}", e.action), err)),
        }
    }
    jr.append(&tally.done(n))?;
    failpoint("apply.batch-done");
    run.absorb(tally);
    Ok(())
}

pub(super) fn apply_batch(
    t: &Target,
    entries: &[&Entry],
    jr: &mut Journal,
    n: u64,
    throttle: &mut Throttle,
    files: &mut FileQuarantine,
    run: &mut Tally,
) -> Result<(), ApplyError> {
    let mut ids = Vec::with_capacity(entries.len());
    for e in entries {
        ids.push(json_to_bson(&e.id, "_id")?);
    }
    let current = t.current(&t.coll, &ids)?;
    let mut tally = Tally::default();
    let mut todo: Vec<(&Entry, Option<&RawDocumentBuf>)> = Vec::new();
    let mut journaled = Vec::new();
    for e in entries {
        let key = crate::scan::id_text(&e.id);
        let cur = current.get(&key);
        // The planned before-fingerprint is in field order; "already done" is compared
        // as the guard can write it.
        let (cur_fp, cur_state) = match cur {
            Some(c) => {
                let v = decode(c.as_bytes())?;
                (Some(fp(&v)), Some(state_fp(&v, t.guard)))
            }
            None => (None, None),
        };
        let after_state = e.after.as_ref().map(|a| state_fp(a, t.guard));
        let need = match (e.action, cur_fp) {
            (Action::Insert, None) => Need::Write,
            (Action::Insert, Some(_)) if cur_state == after_state => Need::Already,
            (Action::Insert, Some(_)) => Need::Conflict(Reason::IdTaken),
            (Action::Delete | Action::Quarantine, None) => Need::Already,
            (Action::Replace, None) => Need::Conflict(Reason::NotFound),
            (Action::Replace, Some(_)) if cur_state == after_state => Need::Already,
            (Action::Replace | Action::Delete | Action::Quarantine, Some(c))
                if Some(c) == e.before =>
            {
                Need::Write
            }
            (Action::Replace | Action::Delete | Action::Quarantine, Some(_)) => {
                Need::Conflict(Reason::ChangedSincePlan)
            }
            (other, _) => return Err(usage(format!("_id {key}: unknown action {other:?}"))),
        };
        match need {
            Need::Already => tally.already.push(t.key(&key)),
            Need::Conflict(reason) => tally.conflicts.push(Conflict::new(t.key(&key), reason)),
            Need::Write => {
                let mut rec = json!({"action": e.action, "_id": e.id, "before": Value::Null, "after": e.after});
                if let Some(c) = cur {
                    rec["before"] = decode(c.as_bytes())?;
                    rec["before_bson"] = Value::from(b64(c.as_bytes()));
                }
                if let Some(to) = &e.to {
                    rec["to"] = Value::from(to.as_str());
                }
                journaled.push(rec);
                todo.push((e, cur));
            }
        }
    }
    journal_intent(jr, t, n, journaled)?;
    for (i, (e, cur)) in todo.into_iter().enumerate() {
        if i == 1 {
            failpoint("apply.mid-batch");
        }
        throttle.tick();
        let key = crate::scan::id_text(&e.id);
        let after = e.after.clone().unwrap_or(Value::Null);
        let r = match (e.action, cur) {
            (Action::Replace, Some(cur)) => {
                let new = to_raw(after_bytes(Some(cur.as_bytes()), &after)?, &key)?;
                guarded_replace(t, &t.coll, cur, &new, Reason::ChangedSincePlan)?
            }
            (Action::Delete, Some(cur)) => {
                guarded_delete(t, &t.coll, cur, Reason::ChangedSincePlan)?.0
            }
            (Action::Quarantine, Some(cur)) => quarantine(t, e, cur, files)?,
            (Action::Insert, None) => {
                let raw = to_raw(after_bytes(None, &after)?, &key)?;
                insert_absent(t, &t.coll, &raw)?
            }
            (other, _) => {
                return Err(usage(format!(
                    "_id {key}: {other} of a document that is {}",
                    if cur.is_some() { "there" } else { "absent" }
                )))
            }
        };
        tally.settle(t.key(&key), r);
    }
    jr.append(&tally.done(n))?;
    failpoint("apply.batch-done");
    run.absorb(tally);
    Ok(())
}
