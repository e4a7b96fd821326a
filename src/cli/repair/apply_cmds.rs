//! `repair apply` and `repair undo`, on a dump or a live deployment.

use super::*;

fn out_dir(out: Option<&str>) -> anyhow::Result<PathBuf> {
    let out =
        out.ok_or_else(|| ConfigError::Usage("--out dump:DIR is required for a dump".into()))?;
    match SourceSpec::parse(out)? {
        SourceSpec::Dump(p) => Ok(p),
        other => Err(ConfigError::Usage(format!("--out {other}: expected dump:DIR")).into()),
    }
}

/// An apply error for the exit code: a server or source failure is exit 3.
fn apply_err(e: apply::ApplyError) -> anyhow::Error {
    match e {
        apply::ApplyError::Source(s) => s.into(),
        other => other.into(),
    }
}

pub(super) fn apply_cmd(a: ApplyArgs) -> anyhow::Result<Status> {
    if let Some(name) = &a.actor {
        crate::os::set_actor(name);
    }
    let p = Plan::read(&a.plan)?;
    let source = p.header.source.clone();
    if live::is_live(&source) {
        return apply_live_cmd(a, p, source);
    }
    if !source.starts_with("dump:") && !source.starts_with("archive:") {
        return Err(ConfigError::Usage(format!(
            "the plan's source is {source}: applying to exports is not supported; \
             plan against a dump (mongodump) or a live deployment and apply to it"
        ))
        .into());
    }
    let out = out_dir(a.out.as_deref())?;
    let r = apply::apply_dump(&p, &a.plan, &out, a.max_changes).map_err(apply_err)?;
    let counts = format!(
        "{} applied, {} already in place, {} conflict(s), of {} planned",
        r.applied,
        r.already,
        r.conflicts.len(),
        p.entries.len()
    );
    if r.already_done {
        outln!(
            "already applied: {} holds this plan's result (nothing done now; that run: {counts})",
            r.output.display(),
        );
    } else {
        outln!("{counts}; output {}", r.output.display());
        print_conflicts(&r.conflicts);
        outln!("journal: {}", r.journal.display());
        outln!(
            "undo:    docsweep repair undo {} --out dump:DIR",
            r.journal.display()
        );
    }
    // Every run is audited, a re-run too (it may finish one whose process died after
    // the output appeared).
    audit_run(
        &a.audit,
        "apply",
        plan_fields(&a.plan, &p, &source),
        serde_json::json!({
            "output": r.output.display().to_string(), "journal": r.journal.display().to_string(),
            "entries": p.entries.len(), "applied": r.applied, "already": r.already,
            "conflicts": r.conflicts.len(), "conflict_ids": apply::conflicts_json(&r.conflicts),
            "already_applied": r.already_done,
        }),
    )?;
    Ok(status(&r.conflicts))
}

fn counts_text(counts: &std::collections::BTreeMap<String, u64>) -> String {
    let parts: Vec<String> = counts.iter().map(|(k, n)| format!("{k} {n}")).collect();
    if parts.is_empty() {
        "nothing".into()
    } else {
        parts.join(", ")
    }
}

fn parse_rate(r: Option<&str>) -> anyhow::Result<Option<f64>> {
    match r {
        None => Ok(None),
        Some(s) => Ok(Some(live::parse_rate(s).map_err(ConfigError::Usage)?)),
    }
}

fn apply_live_cmd(a: ApplyArgs, p: Plan, source: String) -> anyhow::Result<Status> {
    if a.out.is_some() {
        return Err(ConfigError::Usage(format!(
            "the plan's source is the live deployment {source}: it is changed in place, --out does not apply"
        ))
        .into());
    }
    let rate = parse_rate(a.rate.as_deref())?;
    let changes = p.entries.iter().filter(|e| !e.id.is_null()).count() as u64;
    if let Some(max) = a.max_changes {
        if changes > max {
            return Err(ConfigError::Usage(format!(
                "the plan changes {changes} documents, more than --max-changes {max}; nothing was written"
            ))
            .into());
        }
    }
    let target = format!(
        "{source} {}.{}",
        p.header.database.as_deref().unwrap_or_default(),
        p.collections().join(",")
    );
    if !a.yes {
        outln!(
            "would apply {} to {target}: {}",
            a.plan.display(),
            counts_text(&live::action_counts(&p))
        );
        return Err(ConfigError::Usage(
            "refusing to write to a live deployment without --yes; nothing was written".into(),
        )
        .into());
    }
    let journal = a
        .journal
        .clone()
        .unwrap_or_else(|| live::default_journal(&a.plan));
    let r = live::apply_live(&live::ApplyLive {
        plan: &p,
        plan_path: &a.plan,
        uri: a.uri.as_deref(),
        journal: journal.clone(),
        max_changes: a.max_changes,
        rate,
        batch_size: a.batch_size,
        accept_top_level: a.guard == Some(GuardArg::TopLevel),
    })
    .map_err(|e| {
        let resumable = journal.exists() && matches!(e, apply::ApplyError::Source(_));
        let e = apply_err(e);
        if resumable {
            e.context(format!(
                "the apply was interrupted; re-run the same command to finish it (journal {})",
                journal.display()
            ))
        } else {
            e
        }
    })?;
    if r.finished_before {
        outln!(
            "already applied: journal {} is finished (nothing done now; of {} planned entries it applied {}, {} were already in place, {} conflict(s))",
            r.journal.display(),
            r.entries,
            r.applied,
            r.already,
            r.conflicts.len()
        );
    } else {
        outln!(
            "{}applied {} change(s) to {}; {} already in place; {} conflict(s) left as they were ({} planned entries)",
            if r.resumed { "resumed: " } else { "" },
            r.applied,
            r.target,
            r.already,
            r.conflicts.len(),
            r.entries
        );
        print_guard(&r);
        print_conflicts(&r.conflicts);
        outln!("journal: {}", r.journal.display());
        outln!(
            "undo:    docsweep repair undo {} --yes",
            r.journal.display()
        );
    }
    audit_run(
        &a.audit,
        "apply",
        plan_fields(&a.plan, &p, &source),
        serde_json::json!({
            "target": r.target, "journal": r.journal.display().to_string(),
            "entries": r.entries, "applied": r.applied, "already": r.already,
            "conflicts": r.conflicts.len(), "guard": r.guard.map(live::Guard::as_str),
            "already_applied": r.finished_before, "resumed": r.resumed,
        }),
    )?;
    Ok(status(&r.conflicts))
}

/// Exit 1 when any planned change was left as it was.
fn status(conflicts: &[live::Conflict]) -> Status {
    if conflicts.is_empty() {
        Status::Clean
    } else {
        Status::Findings
    }
}

/// What every audit line of an apply says about its plan.
fn plan_fields(path: &std::path::Path, p: &Plan, source: &str) -> serde_json::Value {
    serde_json::json!({
        "plan": path.display().to_string(), "template": p.header.template,
        "params": p.header.params, "collection": p.collection(), "collections": p.collections(),
        "source": source,
    })
}

/// Appends one audit line for a run of `command`: when and by whom, then `what` (the
/// plan or journal) and `result`, in that order. Every run is audited, a re-run too.
fn audit_run(
    audit: &std::path::Path,
    command: &str,
    what: serde_json::Value,
    result: serde_json::Value,
) -> anyhow::Result<()> {
    let mut line = serde_json::json!({
        "event": command, "at": report::now_rfc3339(), "actor": actor(), "user": actor(),
        "command": command,
    });
    if let (Some(line), serde_json::Value::Object(what), serde_json::Value::Object(result)) =
        (line.as_object_mut(), what, result)
    {
        line.extend(what);
        line.extend(result);
    }
    crate::audit::append(audit, &line)?;
    Ok(())
}

/// The first conflicts, each with its `_id` (or index) and reason.
fn print_conflicts(conflicts: &[live::Conflict]) {
    const SHOWN: usize = 20;
    for c in conflicts.iter().take(SHOWN) {
        outln!("  conflict: {c}");
    }
    if conflicts.len() > SHOWN {
        outln!("  … and {} more", conflicts.len() - SHOWN);
    }
}

/// How the live writes were guarded, when it was not the whole document.
fn print_guard(r: &live::LiveOutcome) {
    if r.guard == Some(live::Guard::TopLevel) {
        outln!(
            "guard: {} (--guard top-level; the server has no whole-document guard)",
            live::Guard::TopLevel.as_str()
        );
    }
}

fn undo_live_cmd(a: UndoArgs) -> anyhow::Result<Status> {
    if a.out.is_some() {
        return Err(ConfigError::Usage(
            "the journal is of a live deployment: it is changed in place, --out does not apply"
                .into(),
        )
        .into());
    }
    let rate = parse_rate(a.rate.as_deref())?;
    if !a.yes {
        let (target, counts) = live::journal_counts(&a.journal).map_err(apply_err)?;
        outln!(
            "would undo {} on {target}: {}",
            a.journal.display(),
            counts_text(&counts)
        );
        return Err(ConfigError::Usage(
            "refusing to write to a live deployment without --yes; nothing was written".into(),
        )
        .into());
    }
    let r = live::undo_live(
        &a.journal,
        a.uri.as_deref(),
        rate,
        a.guard == Some(GuardArg::TopLevel),
    )
    .map_err(apply_err)?;
    outln!(
        "undone {} change(s) on {}; {} already undone; {} conflict(s) left as they were ({} journaled changes)",
        r.applied,
        r.target,
        r.already,
        r.conflicts.len(),
        r.entries
    );
    print_guard(&r);
    print_conflicts(&r.conflicts);
    audit_run(
        &a.audit,
        "undo",
        serde_json::json!({"journal": a.journal.display().to_string()}),
        serde_json::json!({
            "target": r.target,
            "entries": r.entries, "undone": r.applied, "already": r.already,
            "conflicts": r.conflicts.len(), "guard": r.guard.map(live::Guard::as_str),
        }),
    )?;
    Ok(status(&r.conflicts))
}

pub(super) fn undo_cmd(a: UndoArgs) -> anyhow::Result<Status> {
    if let Some(name) = &a.actor {
        crate::os::set_actor(name);
    }
    if live::journal_is_live(&a.journal).map_err(apply_err)? {
        return undo_live_cmd(a);
    }
    let out = out_dir(a.out.as_deref())?;
    let r = apply::undo_dump(&a.journal, &out).map_err(apply_err)?;
    outln!(
        "{} undone, {} already undone, {} conflict(s); output {}",
        r.applied,
        r.already,
        r.conflicts.len(),
        r.output.display()
    );
    print_conflicts(&r.conflicts);
    audit_run(
        &a.audit,
        "undo",
        serde_json::json!({"journal": a.journal.display().to_string()}),
        serde_json::json!({
            "output": r.output.display().to_string(), "undone": r.applied, "already": r.already,
            "conflicts": r.conflicts.len(), "conflict_ids": apply::conflicts_json(&r.conflicts),
        }),
    )?;
    Ok(status(&r.conflicts))
}
