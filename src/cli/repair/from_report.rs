//! `repair plan --from-report`: one plan from the remediations of a check's report; each
//! remediation command is parsed as `repair plan` parses its arguments.

use super::*;

/// One remediation command of a report, parsed as `repair plan` parses its arguments.
#[derive(Debug, clap::Parser)]
#[command(name = "docsweep repair plan")]
struct RemediationCommand {
    #[command(flatten)]
    args: PlanArgs,
}

/// Whether `--only` names a remediation's finding.
fn only_matches(only: &str, collection: &str, finding: &str) -> bool {
    let (coll, want) = match only.split_once('/') {
        Some((c, f)) => (Some(c), f),
        None => (None, only),
    };
    coll.is_none_or(|c| c == collection)
        && (want == finding || finding.split(':').next() == Some(want))
}

/// A path without `.` components, to compare paths written differently.
fn normal(p: &std::path::Path) -> PathBuf {
    p.components()
        .filter(|c| !matches!(c, std::path::Component::CurDir))
        .collect()
}

/// Whether two source strings name different places (`dump:./d` and `dump:d` do not).
fn differ(a: &str, b: &str) -> bool {
    let split = |s: &str| match s.split_once(':') {
        Some((k, p)) if !s.contains("://") => (k.to_string(), normal(std::path::Path::new(p))),
        _ => (s.to_string(), PathBuf::new()),
    };
    split(a) != split(b)
}

/// A report's remediations, sorted out.
struct Remediations {
    /// Those to plan: the finding and its `repair plan` arguments, resolved.
    parts: Vec<(String, Prepared)>,
    /// Advice that is not a repair (documents to review, nothing to restore from).
    left_out: Vec<String>,
}

/// Reads `DIR/report.json`; a report of a failed check is refused.
fn read_report(path: &std::path::Path, dir: &std::path::Path) -> anyhow::Result<serde_json::Value> {
    let usage = |m: String| ConfigError::Usage(format!("{}: {m}", path.display()));
    let text = std::fs::read_to_string(path).map_err(|e| {
        usage(format!(
            "cannot read: {e}; run `docsweep check --report-dir {}` first",
            dir.display()
        ))
    })?;
    let report: serde_json::Value =
        serde_json::from_str(&text).map_err(|e| usage(format!("not a docsweep report: {e}")))?;
    if report["format"] != report::FORMAT {
        return Err(usage(format!("not a {} report", report::FORMAT)).into());
    }
    if report["status"] == "failed" {
        return Err(usage(
            "the check failed, so its remediations rest on part of the data: fix the source and check again"
                .into(),
        )
        .into());
    }
    Ok(report)
}

/// Every remediation of the report as `COLLECTION/FINDING`.
fn all_findings(report: &serde_json::Value) -> Vec<String> {
    let mut all = Vec::new();
    for c in report["collections"].as_array().into_iter().flatten() {
        for r in c["remediation"].as_array().into_iter().flatten() {
            all.push(format!(
                "{}/{}",
                c["name"].as_str().unwrap_or(""),
                r["finding"].as_str().unwrap_or("")
            ));
        }
    }
    all
}

/// The remediations `--only` picks (all without it), their commands parsed.
fn remediations(
    a: &PlanArgs,
    cfg: &Config,
    report: &serde_json::Value,
    path: &std::path::Path,
) -> anyhow::Result<Remediations> {
    let usage = |m: String| ConfigError::Usage(format!("{}: {m}", path.display()));
    let mut out = Remediations {
        parts: Vec::new(),
        left_out: Vec::new(),
    };
    let mut used = vec![false; a.only.len()];
    let plan_words = ["docsweep".to_string(), "repair".into(), "plan".into()];
    for c in report["collections"].as_array().into_iter().flatten() {
        let coll = c["name"].as_str().unwrap_or_default();
        for r in c["remediation"].as_array().into_iter().flatten() {
            let finding = r["finding"].as_str().unwrap_or_default();
            let command = r["command"].as_str().unwrap_or_default();
            let hits: Vec<usize> = (0..a.only.len())
                .filter(|&i| only_matches(&a.only[i], coll, finding))
                .collect();
            if !a.only.is_empty() && hits.is_empty() {
                continue;
            }
            for i in hits {
                used[i] = true;
            }
            let words = crate::shell::words(command)
                .map_err(|m| usage(format!("{coll} {finding}: {m}")))?;
            if command.starts_with('#') || words.get(..3) != Some(&plan_words[..]) {
                out.left_out.push(format!("{coll} {finding}: {command}"));
                continue;
            }
            let one = <RemediationCommand as clap::Parser>::try_parse_from(
                std::iter::once("plan".to_string()).chain(words[3..].iter().cloned()),
            )
            .map_err(|e| usage(format!("{coll} {finding}: {command}: {e}")))?;
            out.parts
                .push((finding.to_string(), prepare(&one.args, cfg)?));
        }
    }
    if let Some(i) = used.iter().position(|u| !u) {
        let all = all_findings(report);
        return Err(usage(format!(
            "--only {}: no remediation has that finding; the report's are: {}",
            a.only[i],
            if all.is_empty() {
                "none".to_string()
            } else {
                all.join(", ")
            }
        ))
        .into());
    }
    Ok(out)
}

/// The baseline the parts share; refuses parts that read another source, schemas or
/// baseline than the first.
fn shared_baseline(
    parts: &[(String, Prepared)],
    path: &std::path::Path,
) -> anyhow::Result<Option<String>> {
    let the_baseline = parts.iter().find_map(|(_, p)| p.baseline.clone());
    let Some((_, first)) = parts.first() else {
        return Ok(the_baseline);
    };
    for (finding, p) in parts {
        if differ(&p.spec.to_string(), &first.spec.to_string())
            || normal(&p.schemas) != normal(&first.schemas)
            || p.baseline
                .as_ref()
                .zip(the_baseline.as_ref())
                .is_some_and(|(b, t)| differ(b, t))
            || p.db != first.db
        {
            return Err(ConfigError::Usage(format!(
                "{}: the remediation for {finding} reads another source, schemas or baseline than the first one; plan them one by one",
                path.display()
            ))
            .into());
        }
    }
    Ok(the_baseline)
}

/// The source to plan on: the report's, or `--source` (the same deployment, with the
/// password the report does not keep). An export cannot be repaired.
fn plan_source(
    a: &PlanArgs,
    recorded: &SourceSpec,
    path: &std::path::Path,
) -> anyhow::Result<SourceSpec> {
    let mut spec = recorded.clone();
    if let Some(s) = &a.source {
        let given = SourceSpec::parse(s)?;
        if given.to_string() != spec.to_string() {
            return Err(ConfigError::Usage(format!(
                "--source {given}: the report was made on {spec}"
            ))
            .into());
        }
        spec = given;
    }
    if matches!(spec, SourceSpec::Export(_)) {
        return Err(ConfigError::Usage(format!(
            "{}: {spec} is an export, which docsweep cannot repair: check the dump or live deployment it was exported from, and plan from that report",
            path.display()
        ))
        .into());
    }
    Ok(spec)
}

/// What the plan holds, step by step.
fn print_steps(outcomes: &[crate::repair::from_report::PartOutcome], left_out: &[String]) {
    for (i, o) in outcomes.iter().enumerate() {
        let what = match &o.refused {
            Some(r) => format!("refused: {r}"),
            None => format!(
                "{} entr{}",
                o.planned,
                if o.planned == 1 { "y" } else { "ies" }
            ),
        };
        outln!(
            "  {:>2}. {:<10} {} {} ({}): {what}",
            i + 1,
            o.stage.as_str(),
            o.collection,
            o.finding,
            o.templates
        );
        if o.kept_as_baseline > 0 {
            outln!(
                "     kept {} document(s) that equal their baseline image (never removed)",
                o.kept_as_baseline
            );
        }
    }
    for l in left_out {
        outln!("  not included: {l}");
    }
}

/// `repair plan --from-report`: one plan from the remediations of a check's report.
pub(super) fn from_report_cmd(
    a: &PlanArgs,
    cfg: &Config,
    dir: &std::path::Path,
) -> anyhow::Result<Status> {
    let path = dir.join("report.json");
    let report = read_report(&path, dir)?;
    let Remediations { parts, left_out } = remediations(a, cfg, &report, &path)?;
    let the_baseline = shared_baseline(&parts, &path)?;
    let Some((_, first)) = parts.first() else {
        outln!("{}: no remediation to plan", path.display());
        print_steps(&[], &left_out);
        return Ok(Status::Clean);
    };
    let spec = plan_source(a, &first.spec, &path)?;
    // The target versions the check used.
    let mut targets = first.targets.clone();
    for c in report["collections"].as_array().into_iter().flatten() {
        if let (Some(n), Some(v)) = (c["name"].as_str(), c["target_version"].as_u64()) {
            targets.push((n.to_string(), v as u32));
        }
    }
    let contracts = load_contracts(&first.schemas, &targets)?;
    let db = first.db.clone();
    let mut source = Source::open(&spec, db.as_deref())?;
    let baseline = the_baseline
        .as_deref()
        .map(|b| open_baseline(b, db.as_deref()))
        .transpose()?;
    let scan_opts = ScanOptions::default();
    let parts = parts
        .into_iter()
        .map(|(finding, p)| crate::repair::from_report::Part {
            finding,
            collection: p.collection,
            chain: p.chain,
            select: p.select,
            with_baseline: p.baseline.is_some(),
        })
        .collect();
    let (p, outcomes) = crate::repair::from_report::make(
        &mut source,
        crate::repair::from_report::Request {
            report: dir.display().to_string(),
            baseline: baseline.as_ref(),
            contracts: &contracts,
            parts,
            scan: &scan_opts,
            created_at: report::now_rfc3339(),
        },
    )?;
    p.write(&a.out)?;
    outln!(
        "plan {}: {} change(s) {} from {} ({spec})",
        a.out.display(),
        p.entries.len(),
        p.summary()["actions"],
        path.display()
    );
    print_steps(&outcomes, &left_out);
    outln!("each step was planned against the state the steps before it leave; every after-image passes its collection's target version");
    next_apply(&spec, &a.out);
    Ok(Status::Clean)
}
