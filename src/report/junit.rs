//! `junit.xml`: the check as JUnit XML, for CI systems that show test results (Jenkins,
//! GitLab, GitHub Actions reporters, Azure DevOps …). Valid against the Jenkins
//! xunit-plugin JUnit schema (`junit-10.xsd`).
//!
//! One `<testsuite>` per collection (`name` = the collection), one `<testcase>` per check
//! (`classname` = `docsweep.<collection>`): `classification`, `unreadable`, `indexes`,
//! `unique_keys`, `references`, `structure` and, with a baseline, `reconciliation`. A
//! check with findings has a `<failure type="CHECK" message="…">` whose message has the
//! counts and whose text has the details (top errors with example `_id`s, the index
//! patterns, the remediation commands). A check that could not run is `<skipped>`
//! (indexes of a source without index information). One more suite, `docsweep`, holds
//! the test case `scan`: an `<error>` when the scan failed (status `failed`), and the
//! warnings as `<system-err>`.

use std::fmt::Write as _;
use std::path::Path;

use super::checks::{checks, Check, CheckKind};
use super::format::{status_word, xml as esc};
use super::{write_atomic, CollectionReport, Remediation, Report, Status};

enum Outcome {
    Pass,
    Fail { message: String, details: String },
    Skip(String),
}

struct Case {
    name: &'static str,
    outcome: Outcome,
    out: Option<String>,
}

/// The check a remediation belongs to (`""` for none).
fn check_of(r: &Remediation) -> &'static str {
    CheckKind::of_finding(&r.finding).map_or("", CheckKind::as_str)
}

fn with_remediation(details: &mut String, c: &CollectionReport, check: &str) {
    let mut first = true;
    for r in c.remediation.iter().filter(|r| check_of(r) == check) {
        if first {
            details.push_str("\nremediation:\n");
            first = false;
        }
        let _ = writeln!(details, "  {}  # {} ({})", r.command, r.finding, r.template);
    }
}

/// With thresholds, a check whose findings stay under their `fail` level passes; its
/// verdict (warn, or accepted) is in the case's output.
fn gated(mut cases: Vec<Case>, c: &CollectionReport) -> Vec<Case> {
    use super::gate::Level;
    if c.verdict.is_empty() || !c.present {
        return cases;
    }
    for case in &mut cases {
        let verdicts: Vec<&super::gate::Verdict> = c
            .verdict
            .iter()
            .filter(|v| case_of(v.check) == case.name)
            .collect();
        if verdicts.is_empty()
            || verdicts.iter().any(|v| v.level == Level::Fail)
            || !matches!(case.outcome, Outcome::Fail { .. })
        {
            continue;
        }
        let mut note = String::new();
        for v in verdicts {
            let level = if v.level == Level::Warn {
                "warn"
            } else {
                "pass"
            };
            let threshold = v.threshold.map(|t| t.to_string()).unwrap_or_default();
            let _ = writeln!(
                note,
                "gate: {level}: {} {} (threshold {threshold})",
                v.label(),
                v.observed
            );
        }
        if let Outcome::Fail { message, details } = &case.outcome {
            let _ = write!(note, "{message}\n{details}");
        }
        case.outcome = Outcome::Pass;
        case.out = Some(match case.out.take() {
            Some(text) => format!("{note}\n{text}"),
            None => note,
        });
    }
    cases
}

/// The test case a threshold's check kind belongs to.
fn case_of(kind: &str) -> &'static str {
    CheckKind::of_gate(kind).map_or("", CheckKind::as_str)
}

/// One test case per check.
fn cases(c: &CollectionReport) -> Vec<Case> {
    checks(c).into_iter().map(|check| case(c, check)).collect()
}

fn case(c: &CollectionReport, check: Check) -> Case {
    let name = check.kind.as_str();
    let outcome = match (check.headline, check.skipped) {
        (Some(message), _) => {
            let mut details = check.details;
            if check.remediable {
                with_remediation(&mut details, c, name);
            }
            Outcome::Fail { message, details }
        }
        (None, Some(why)) => Outcome::Skip(why),
        (None, None) => Outcome::Pass,
    };
    Case {
        name,
        outcome,
        out: check.summary,
    }
}

fn write_case(out: &mut String, classname: &str, case: &Case) {
    let _ = write!(
        out,
        r#"    <testcase name="{}" classname="{}" time="0""#,
        case.name,
        esc(classname)
    );
    if matches!(case.outcome, Outcome::Pass) && case.out.is_none() {
        out.push_str("/>\n");
        return;
    }
    out.push_str(">\n");
    match &case.outcome {
        Outcome::Pass => {}
        Outcome::Fail { message, details } => {
            let _ = writeln!(
                out,
                r#"      <failure type="{}" message="{}">{}</failure>"#,
                case.name,
                esc(message),
                esc(details)
            );
        }
        Outcome::Skip(why) => {
            let _ = writeln!(out, r#"      <skipped message="{}"/>"#, esc(why));
        }
    }
    if let Some(text) = &case.out {
        let _ = writeln!(out, "      <system-out>{}</system-out>", esc(text));
    }
    out.push_str("    </testcase>\n");
}

/// Seconds between two RFC 3339 times, formatted for the `time` attribute.
fn duration(report: &Report) -> Option<String> {
    let parse = |s: &str| {
        time::OffsetDateTime::parse(s, &time::format_description::well_known::Rfc3339).ok()
    };
    let secs = (parse(&report.finished_at)? - parse(&report.started_at)?).as_seconds_f64();
    Some(format!("{:.3}", secs.max(0.0)))
}

/// A `<testsuite>`: a collection's checks, or the run itself.
struct Suite {
    name: String,
    classname: String,
    cases: Vec<Case>,
    props: Vec<(&'static str, String)>,
    sysout: Option<String>,
    syserr: Option<String>,
}

/// A collection's suite: one case per check; remediations of no check as its output.
fn collection_suite(c: &CollectionReport) -> Suite {
    Suite {
        name: c.name.clone(),
        classname: format!("docsweep.{}", c.name),
        cases: gated(cases(c), c),
        props: vec![
            ("target_version", c.target_version.to_string()),
            ("documents", c.documents.to_string()),
        ],
        syserr: None,
        sysout: c
            .remediation
            .iter()
            .filter(|r| check_of(r).is_empty())
            .map(|r| format!("{}  # {} ({})\n", r.command, r.finding, r.template))
            .reduce(|a, b| a + &b),
    }
}

/// The run's suite, `docsweep`: the scan case, the run's properties and its warnings.
fn run_suite(report: &Report) -> Suite {
    let mut props = vec![
        ("source", report.source.clone()),
        ("status", status_word(report.status).to_string()),
        ("started_at", report.started_at.clone()),
        ("finished_at", report.finished_at.clone()),
    ];
    if let Some(db) = &report.database {
        props.push(("database", db.clone()));
    }
    if let Some(b) = &report.baseline {
        props.push(("baseline", b.clone()));
    }
    let scan = Case {
        name: "scan",
        outcome: Outcome::Pass,
        out: None,
    };
    Suite {
        name: "docsweep".into(),
        classname: "docsweep".into(),
        cases: vec![scan],
        props,
        sysout: None,
        syserr: (!report.warnings.is_empty()).then(|| {
            report
                .warnings
                .iter()
                .map(|w| format!("warning: {w}\n"))
                .collect()
        }),
    }
}

/// The whole document.
pub fn render(report: &Report) -> String {
    let mut suites: Vec<Suite> = report.collections.iter().map(collection_suite).collect();
    suites.push(run_suite(report));

    let time = duration(report);
    let time_attr = time
        .as_deref()
        .map(|t| format!(r#" time="{t}""#))
        .unwrap_or_default();
    let failed_scan = report.status == Status::Failed || report.error.is_some();
    let count =
        |s: &Suite, f: fn(&Outcome) -> bool| s.cases.iter().filter(|c| f(&c.outcome)).count();
    let is_fail = |o: &Outcome| matches!(o, Outcome::Fail { .. });
    let is_skip = |o: &Outcome| matches!(o, Outcome::Skip(_));
    let tests: usize = suites.iter().map(|s| s.cases.len()).sum();
    let failures: usize = suites.iter().map(|s| count(s, is_fail)).sum();
    let errors = usize::from(failed_scan);

    let mut out = String::with_capacity(8 * 1024);
    out.push_str("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n");
    let _ = writeln!(
        out,
        r#"<testsuites name="docsweep check {}" tests="{tests}" failures="{failures}" errors="{errors}"{time_attr}>"#,
        esc(&report.source)
    );
    let last = suites.len() - 1;
    for (i, s) in suites.iter().enumerate() {
        let is_run = i == last;
        let _ = writeln!(
            out,
            r#"  <testsuite name="{}" tests="{}" failures="{}" errors="{}" skipped="{}" timestamp="{}"{}>"#,
            esc(&s.name),
            s.cases.len(),
            count(s, is_fail),
            if is_run { errors } else { 0 },
            count(s, is_skip),
            esc(&report.started_at),
            if is_run { time_attr.as_str() } else { "" }
        );
        out.push_str("    <properties>\n");
        for (k, v) in &s.props {
            let _ = writeln!(out, r#"      <property name="{k}" value="{}"/>"#, esc(v));
        }
        out.push_str("    </properties>\n");
        if is_run && failed_scan {
            let _ = writeln!(
                out,
                r#"    <testcase name="scan" classname="docsweep" time="0">
      <error type="source" message="{}">the scan failed; what was scanned before the failure is reported</error>
    </testcase>"#,
                esc(report.error.as_deref().unwrap_or("the scan failed"))
            );
        } else {
            for case in &s.cases {
                write_case(&mut out, &s.classname, case);
            }
        }
        if let Some(o) = &s.sysout {
            let _ = writeln!(out, "    <system-out>remediation:\n{}</system-out>", esc(o));
        }
        if let Some(e) = &s.syserr {
            let _ = writeln!(out, "    <system-err>{}</system-err>", esc(e));
        }
        out.push_str("  </testsuite>\n");
    }
    out.push_str("</testsuites>\n");
    out
}

/// Writes [`render`] to `path` atomically.
pub fn write_junit(report: &Report, path: &Path) -> std::io::Result<()> {
    write_atomic(path, render(report).as_bytes())
}
