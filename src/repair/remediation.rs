//! Remediations: for each finding of a check, the repair template that fixes it and the
//! exact `docsweep repair plan` command, with parameters filled where the report tells
//! them (reference fields, unique keys, index keys and names). For documents still in
//! another version, the bundled templates are tried on sample documents, alone and in
//! pairs, and a chain is suggested only when it turns every sample into a valid document.

use serde_json::Value;

use crate::shell::quote as sh;

use super::ops::Outcome;
use super::template::{Bound, Library};
use crate::contract::ContractSet;
use crate::report::{CollectionReport, Remediation};

/// What the commands are built from.
pub struct Context<'a> {
    /// The source as the user gave it (passwords redacted).
    pub source: &'a str,
    pub schemas: &'a str,
    pub baseline: Option<&'a str>,
    /// The baseline keeps whole documents (a source, or `snapshot --full`): restores work.
    pub baseline_restores: bool,
    /// Template directories of the check (`--templates`), passed on to every command.
    pub templates: &'a [std::path::PathBuf],
}

impl Context<'_> {
    /// The baseline, when it can restore documents.
    fn restoring_baseline(&self) -> Option<&str> {
        self.baseline.filter(|_| self.baseline_restores)
    }
}

/// What to do about findings a restore would fix when the baseline cannot restore.
fn no_restore(ctx: &Context<'_>, finding: &str) -> String {
    format!(
        "# {finding}: the baseline {} keeps no documents, so nothing can be restored from it; \
         take `docsweep snapshot --full` (or keep a dump) before the next change",
        ctx.baseline.unwrap_or_default()
    )
}

fn command(
    ctx: &Context<'_>,
    coll: &str,
    templates: &[&str],
    params: &[(&str, String)],
    extra: &[(&str, String)],
    out: &str,
) -> String {
    let mut c = String::from("docsweep repair plan");
    for t in templates {
        c.push_str(&format!(" --template {}", sh(t)));
    }
    for (k, v) in params {
        c.push_str(&format!(" --param {}", sh(&format!("{k}={v}"))));
    }
    for (k, v) in extra {
        c.push_str(&format!(" {k} {}", sh(v)));
    }
    for dir in ctx.templates {
        c.push_str(&format!(" --templates {}", sh(&dir.display().to_string())));
    }
    c.push_str(&format!(
        " --collection {} --source {} --schemas {} --out {}",
        sh(coll),
        sh(ctx.source),
        sh(ctx.schemas),
        sh(out)
    ));
    c
}

/// Does this chain (with default parameters) turn every sample into a valid document?
fn chain_fixes(chain: &[&Bound], samples: &[Value], validator: &jsonschema::Validator) -> bool {
    !samples.is_empty()
        && samples.iter().all(|doc| {
            let mut cur = doc.clone();
            for b in chain {
                match b.apply(&cur, None) {
                    Ok(Outcome::Replace(v)) => cur = v,
                    Ok(Outcome::Unchanged) => {}
                    _ => return false,
                }
            }
            validator.is_valid(&cur)
        })
}

/// A remediation that runs `repair plan` with `templates` (chained) on `coll`.
fn runnable(
    ctx: &Context<'_>,
    coll: &str,
    finding: impl Into<String>,
    templates: &[&str],
    params: &[(&str, String)],
    extra: &[(&str, String)],
    out: &str,
) -> Remediation {
    Remediation {
        finding: finding.into(),
        template: templates.join("+"),
        command: command(ctx, coll, templates, params, extra, out),
    }
}

/// Restores from the baseline of missing and changed documents, first: a repair that
/// removes documents must see the restored ones.
fn restores(ctx: &Context<'_>, r: &CollectionReport, coll: &str, out: &mut Vec<Remediation>) {
    // Restores first: a repair that removes documents must see the restored ones (a
    // dedupe keeps the member equal to its baseline image, and no orphan is counted
    // against a customer that is only missing).
    if let (Some(rec), Some(_)) = (&r.reconciliation, ctx.baseline) {
        for (finding, n, template) in [
            ("missing", rec.missing, "restore-missing"),
            ("changed", rec.changed, "restore-changed"),
        ] {
            if n == 0 {
                continue;
            }
            out.push(match ctx.restoring_baseline() {
                Some(b) => runnable(
                    ctx,
                    coll,
                    finding,
                    &[template],
                    &[],
                    &[("--baseline", b.to_string())],
                    &format!("{coll}-{template}.plan"),
                ),
                None => Remediation {
                    finding: finding.into(),
                    template: String::new(),
                    command: no_restore(ctx, finding),
                },
            });
        }
    }
}

/// Documents still in another version: a chain of bundled templates that turns every
/// sampled document into a valid one, tried alone and in pairs.
fn reverts(
    ctx: &Context<'_>,
    r: &CollectionReport,
    coll: &str,
    library: &Library,
    contract: &crate::contract::Contract,
    out: &mut Vec<Remediation>,
) {
    let validator = &contract.target_version().validator;
    // Documents still in another version: a chain of templates derived from samples.
    for (version, n) in &r.classes.other_version {
        if *n == 0 {
            continue;
        }
        let key = format!("other_version:{version}");
        let samples = r.samples.get(&key).map(Vec::as_slice).unwrap_or_default();
        let candidates: Vec<Bound> = library
            .templates
            .iter()
            .filter(|t| t.collection.as_deref().is_none_or(|c| c == coll))
            .filter(|t| t.select.as_str() == key)
            .filter_map(|t| t.bind(&[]).ok())
            .collect();
        let mut found: Option<Vec<&Bound>> = None;
        'search: for a in &candidates {
            if chain_fixes(&[a], samples, validator) {
                found = Some(vec![a]);
                break;
            }
            for b in &candidates {
                if !std::ptr::eq(a, b) && chain_fixes(&[a, b], samples, validator) {
                    found = Some(vec![a, b]);
                    break 'search;
                }
            }
        }
        match found {
            Some(chain) => {
                let names: Vec<&str> = chain.iter().map(|b| b.template().name.as_str()).collect();
                out.push(runnable(ctx, coll, key.clone(), &names, &[], &[], &format!("{coll}-revert-v{version}.plan")));
            }
            None => out.push(Remediation {
                finding: key.clone(),
                template: String::new(),
                command: format!(
                    "# no bundled template turns the sampled {coll} documents of version {version} into version {}: write one (docsweep templates show revert-nested-reference is an example){}",
                    contract.target,
                    match ctx.restoring_baseline() {
                        Some(_) => ", or restore them from the baseline with restore-changed",
                        None => "",
                    }
                ),
            }),
        }
    }
}

/// Invalid documents: restored from the baseline where it keeps documents, else
/// quarantined.
fn invalid(
    ctx: &Context<'_>,
    r: &CollectionReport,
    coll: &str,
    with_baseline: &[(&str, String)],
    out: &mut Vec<Remediation>,
) {
    if r.classes.invalid > 0 {
        let (template, extra): (&str, Vec<(&str, String)>) = match ctx.restoring_baseline() {
            Some(b) => (
                "restore-changed",
                vec![
                    ("--select", "invalid".into()),
                    ("--baseline", b.to_string()),
                ],
            ),
            None => ("quarantine-invalid", with_baseline.to_vec()),
        };
        out.push(runnable(
            ctx,
            coll,
            "invalid",
            &[template],
            &[],
            &extra,
            &format!("{coll}-invalid.plan"),
        ));
    }
}

/// Duplicates of a unique key: dedupe (keeping the member equal to its baseline image).
fn dedupes(
    ctx: &Context<'_>,
    r: &CollectionReport,
    coll: &str,
    with_baseline: &[(&str, String)],
    out: &mut Vec<Remediation>,
) {
    for d in r.duplicates.iter().filter(|d| d.groups > 0) {
        let fields: Vec<&str> = d
            .key
            .as_object()
            .map(|m| m.keys().map(String::as_str).collect())
            .unwrap_or_default();
        let fields = fields.join(",");
        out.push(runnable(
            ctx,
            coll,
            format!("duplicate:{fields}"),
            &["dedupe-keep-first"],
            &[("fields", fields.clone())],
            with_baseline,
            &format!("{coll}-dedupe.plan"),
        ));
    }
}

/// Orphaned references: quarantined.
fn orphans(
    ctx: &Context<'_>,
    r: &CollectionReport,
    coll: &str,
    with_baseline: &[(&str, String)],
    out: &mut Vec<Remediation>,
) {
    for x in r.references.iter().filter(|x| x.orphans > 0) {
        out.push(runnable(
            ctx,
            coll,
            format!("orphan:{}", x.field),
            &["quarantine-orphans"],
            &[("field", x.field.clone())],
            with_baseline,
            &format!("{coll}-orphans-{}.plan", x.field.replace('.', "-")),
        ));
    }
}

/// Documents the baseline does not have: a suggestion to review, never a repair to run.
fn added(
    ctx: &Context<'_>,
    r: &CollectionReport,
    coll: &str,
    with_baseline: &[(&str, String)],
    out: &mut Vec<Remediation>,
) {
    if let Some(added) = r
        .reconciliation
        .as_ref()
        .map(|rec| rec.added)
        .filter(|&n| n > 0)
    {
        // Documents the baseline does not have: legitimate new ones or leftovers of the
        // rolled-back change. Only a person can tell, so the command is a suggestion to
        // review, never part of the repairs to run.
        out.push(Remediation {
            finding: "added".into(),
            template: String::new(),
            command: format!(
                "# {added} document(s) are not in the baseline: review them (violations.csv, \
                 finding added); those that should not exist can be set aside with: {}",
                command(
                    ctx,
                    coll,
                    &["quarantine-added"],
                    &[],
                    with_baseline,
                    &format!("{coll}-added.plan"),
                )
            ),
        });
    }
}

/// Missing indexes created, unexpected ones dropped.
fn indexes(ctx: &Context<'_>, r: &CollectionReport, coll: &str, out: &mut Vec<Remediation>) {
    for m in &r.indexes.missing {
        let mut params = vec![("key", m["key"].to_string())];
        if m["unique"] == true {
            params.push(("unique", "true".into()));
        }
        if m["sparse"] == true {
            params.push(("sparse", "true".into()));
        }
        if let Some(n) = m["name"].as_str() {
            params.push(("name", n.to_string()));
        }
        out.push(Remediation {
            finding: format!("index_missing:{}", m["key"]),
            template: "create-missing-index".into(),
            command: command(
                ctx,
                coll,
                &["create-missing-index"],
                &params,
                &[],
                &format!(
                    "{coll}-index-{}.plan",
                    m["key"]
                        .as_object()
                        .map(|o| o.keys().cloned().collect::<Vec<_>>().join("_"))
                        .unwrap_or_default()
                        .replace('.', "_")
                ),
            ),
        });
    }
    for u in &r.indexes.unexpected {
        let Some(name) = u["name"].as_str() else {
            continue;
        };
        out.push(runnable(
            ctx,
            coll,
            format!("index_unexpected:{name}"),
            &["drop-unexpected-index"],
            &[("name", name.to_string())],
            &[],
            &format!("{coll}-drop-{}.plan", name.replace('.', "-")),
        ));
    }
}

/// Commands on an export say plainly that it cannot be repaired.
fn annotate(ctx: &Context<'_>, out: &mut [Remediation]) {
    if ctx.source.starts_with("export:") {
        // An export is a copy: repairs go to the dump or deployment it came from.
        for rem in out.iter_mut().filter(|rem| !rem.template.is_empty()) {
            rem.command = format!(
                "# {} is an export, which docsweep cannot repair: run this with --source \
                 set to the dump or live deployment it was exported from: {}",
                ctx.source, rem.command
            );
        }
    }
}

/// Fills `remediation` of each collection report, in the safe order.
pub fn fill(
    reports: &mut [CollectionReport],
    contracts: &ContractSet,
    library: &Library,
    ctx: &Context<'_>,
) {
    for r in reports.iter_mut() {
        let Some(contract) = contracts.contracts.get(&r.name) else {
            continue;
        };
        let coll = r.name.clone();
        let mut out = Vec::new();
        // Repairs that delete or quarantine take the baseline too: they never remove a
        // document that equals its baseline image.
        let with_baseline: Vec<(&str, String)> = ctx
            .baseline
            .map(|b| vec![("--baseline", b.to_string())])
            .unwrap_or_default();
        restores(ctx, r, &coll, &mut out);
        reverts(ctx, r, &coll, library, contract, &mut out);
        invalid(ctx, r, &coll, &with_baseline, &mut out);
        dedupes(ctx, r, &coll, &with_baseline, &mut out);
        orphans(ctx, r, &coll, &with_baseline, &mut out);
        added(ctx, r, &coll, &with_baseline, &mut out);
        indexes(ctx, r, &coll, &mut out);
        annotate(ctx, &mut out);
        r.remediation = out;
    }
}
