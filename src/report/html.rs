//! `report.html`: one self-contained page for a person (inline CSS, no script, no fonts or
//! anything else fetched over the network).
//!
//! Every number carries `data-testid` (what it is) and `data-value` (the plain number,
//! without thousands separators) and sits inside the `<section data-collection="NAME">` of
//! its collection, so tests and scrapers can read the page without parsing prose. Run-wide
//! values (`status`, `source`, …) carry `data-testid` outside any section. All text from
//! the report is escaped: collection names, ids and messages can hold anything.

use std::fmt::Write as _;
use std::path::Path;

use super::format::{html as escape, index_label, num, status_word};
use super::{write_atomic, CollectionReport, Report};

const CSS: &str = r#"
:root{--fg:#1d2330;--muted:#5b6472;--bg:#fff;--card:#f6f7f9;--line:#dde1e7;
--valid:#2e9d5b;--other:#e0a21b;--other2:#c77d0a;--other3:#a15c00;--invalid:#d2453c;
--unread:#7a5ea8;--ok:#2e9d5b;--warn:#c77d0a;--bad:#d2453c}
@media (prefers-color-scheme:dark){:root{--fg:#e6e8ec;--muted:#9aa3b2;--bg:#14171c;
--card:#1d2128;--line:#2f3540}}
*{box-sizing:border-box}
body{margin:0;padding:24px 32px 48px;font:14px/1.45 system-ui,-apple-system,"Segoe UI",
Roboto,"DejaVu Sans",sans-serif;color:var(--fg);background:var(--bg);max-width:1200px}
h1{font-size:22px;margin:0 0 4px}h2{font-size:19px;margin:0}
h3{font-size:13px;text-transform:uppercase;letter-spacing:.04em;color:var(--muted);
margin:18px 0 6px}
code,pre{font:12.5px/1.4 ui-monospace,SFMono-Regular,Menlo,Consolas,"DejaVu Sans Mono",
monospace}
.badge{display:inline-block;padding:2px 10px;border-radius:999px;color:#fff;font-weight:600;
font-size:13px;vertical-align:middle}
.badge.clean{background:var(--ok)}.badge.findings{background:var(--warn)}
.badge.failed{background:var(--bad)}
.badge.warn{background:var(--warn)}.badge.pass{background:var(--ok)}
.badge.fail{background:var(--bad)}
td.lvl-fail{color:var(--bad);font-weight:600}td.lvl-warn{color:var(--warn);font-weight:600}
td.lvl-pass{color:var(--ok)}
.meta{display:grid;grid-template-columns:max-content 1fr;gap:2px 14px;margin:12px 0 0;
color:var(--muted)}.meta dt{font-weight:600}.meta dd{margin:0;color:var(--fg);
overflow-wrap:anywhere}
.alert{border-left:4px solid var(--bad);background:var(--card);padding:8px 12px;
margin:14px 0;white-space:pre-wrap;overflow-wrap:anywhere}
.alert.warn{border-color:var(--warn)}
table{border-collapse:collapse;width:100%;margin:4px 0}
th,td{text-align:left;padding:4px 10px 4px 0;border-bottom:1px solid var(--line);
vertical-align:top}th{font-weight:600;color:var(--muted);font-size:12.5px}
td.n,th.n{text-align:right;font-variant-numeric:tabular-nums;white-space:nowrap}
td code{overflow-wrap:anywhere}
section.coll{background:var(--card);border:1px solid var(--line);border-radius:8px;
padding:16px 20px;margin:22px 0}
.head{display:flex;gap:12px;align-items:baseline;flex-wrap:wrap}
.head .sub{color:var(--muted)}
.bar{display:flex;height:26px;border-radius:5px;overflow:hidden;margin:12px 0 6px;
background:var(--line)}
.bar span{display:block;flex:none;min-width:3px;color:#fff;font-size:12px;line-height:26px;
white-space:nowrap;overflow:hidden;text-overflow:clip}.bar span.lbl{padding:0 6px}
.seg-valid{background:var(--valid)}.seg-other{background:var(--other)}
.seg-other.v2{background:var(--other2)}.seg-other.v3{background:var(--other3)}
.seg-invalid{background:var(--invalid)}
.legend{display:flex;flex-wrap:wrap;gap:6px 22px;margin:0 0 4px}
.legend .sw{display:inline-block;width:11px;height:11px;border-radius:2px;margin-right:6px;
vertical-align:-1px}
.num{font-weight:600;font-variant-numeric:tabular-nums}
.zero{color:var(--muted);font-weight:400}
.hit{color:var(--bad)}
.grid{display:grid;grid-template-columns:repeat(auto-fit,minmax(330px,1fr));gap:0 28px}
.none{color:var(--muted)}
pre.cmd{background:var(--bg);border:1px solid var(--line);border-radius:4px;padding:6px 8px;
margin:2px 0;white-space:pre-wrap;overflow-wrap:anywhere;user-select:all}
nav{margin-top:18px}nav ul{margin:6px 0 0;padding:0;list-style:none;display:flex;flex-wrap:wrap;gap:4px 16px}
a{color:inherit}
footer{margin-top:30px;color:var(--muted);font-size:12px}
"#;

/// A number with its test id; zero is shown muted, a finding count in red.
fn number(out: &mut String, testid: &str, n: u64, is_finding: bool) {
    let class = if n == 0 {
        "num zero"
    } else if is_finding {
        "num hit"
    } else {
        "num"
    };
    let _ = write!(
        out,
        r#"<span class="{class}" data-testid="{}" data-value="{n}">{}</span>"#,
        escape(testid),
        num(n)
    );
}

fn pct(part: u64, total: u64) -> f64 {
    if total == 0 {
        0.0
    } else {
        part as f64 * 100.0 / total as f64
    }
}

fn bar(out: &mut String, c: &CollectionReport) {
    let cl = &c.classes;
    let mut segs: Vec<(String, String, String, u64)> = Vec::new(); // class, label, testid, n
    segs.push((
        "seg-valid".into(),
        format!("valid (v{})", c.target_version),
        "valid".into(),
        cl.valid,
    ));
    for (i, (v, n)) in cl.other_version.iter().enumerate() {
        segs.push((
            format!("seg-other v{}", i % 3 + 1),
            format!("v{v}"),
            format!("other_version.{v}"),
            *n,
        ));
    }
    segs.push((
        "seg-invalid".into(),
        "invalid".into(),
        "invalid".into(),
        cl.invalid,
    ));
    let total: u64 = segs.iter().map(|s| s.3).sum();
    let _ = write!(
        out,
        r#"<div class="bar" role="img" aria-label="{}">"#,
        escape(
            &segs
                .iter()
                .map(|s| format!("{} {}", s.1, num(s.3)))
                .collect::<Vec<_>>()
                .join(", ")
        )
    );
    for (class, label, testid, n) in segs.iter().filter(|s| s.3 > 0) {
        let p = pct(*n, total);
        // the label shows inside the segment only where it fits; the legend always has it
        let (text, lbl) = if p >= 9.0 {
            (format!("{} {}", escape(label), num(*n)), " lbl")
        } else {
            (String::new(), "")
        };
        let _ = write!(
            out,
            r#"<span class="{class}{lbl}" style="width:{p:.3}%" data-segment="{}" data-value="{n}" title="{} {} ({p:.1}%)">{text}</span>"#,
            escape(testid),
            escape(label),
            num(*n)
        );
    }
    out.push_str("</div>\n<div class=\"legend\">");
    for (class, label, testid, n) in &segs {
        let _ = write!(
            out,
            r#"<span><span class="sw {class}"></span>{} "#,
            escape(label)
        );
        number(out, testid, *n, testid != "valid");
        let _ = write!(
            out,
            r#" <span class="zero">({:.1}%)</span></span>"#,
            pct(*n, total)
        );
    }
    out.push_str("</div>\n");
}

fn row(out: &mut String, label: &str, testid: &str, n: u64, is_finding: bool) {
    let _ = write!(out, "<tr><td>{}</td><td class=\"n\">", escape(label));
    number(out, testid, n, is_finding);
    out.push_str("</td></tr>\n");
}

/// The thresholds' verdict: one row per check with findings (per version for
/// `other_version`): the level it reached, what was observed and the threshold that decided.
fn gate_table(out: &mut String, c: &CollectionReport) {
    use super::gate::Level;
    if c.verdict.is_empty() {
        return;
    }
    out.push_str("<h3>Gate</h3>\n<table data-testid=\"gate\"><tr><th>check</th><th>level</th><th class=\"n\">observed</th><th class=\"n\">threshold</th></tr>\n");
    for v in &c.verdict {
        let label = v.label();
        let (level, word) = match v.level {
            Level::Fail => ("fail", "FAIL"),
            Level::Warn => ("warn", "WARN"),
            Level::Pass => ("pass", "pass"),
        };
        let threshold = v.threshold.map(|t| t.to_string());
        let bound = match (v.level, &threshold) {
            (_, None) => "none".to_string(),
            (Level::Pass, Some(t)) => format!("below {t}"),
            (_, Some(t)) => format!("reached {t}"),
        };
        let _ = write!(
            out,
            r#"<tr data-check="{}"><td><code>{}</code></td><td class="lvl-{level}" data-testid="gate.{}.level" data-value="{level}">{word}</td><td class="n">"#,
            escape(&label),
            escape(&label),
            escape(&label)
        );
        number(out, &format!("gate.{label}.observed"), v.observed, true);
        let _ = writeln!(
            out,
            r#"</td><td class="n" data-testid="gate.{}.threshold" data-value="{}">{}</td></tr>"#,
            escape(&label),
            escape(threshold.as_deref().unwrap_or("")),
            escape(&bound)
        );
    }
    out.push_str("</table>\n");
}

/// The changes since the previous run, when the check was compared with one.
fn since_previous(out: &mut String, c: &CollectionReport) {
    let Some(sp) = &c.since_previous else {
        return;
    };
    let _ = writeln!(
        out,
        r#"<h3>Since the last sweep (<span data-testid="since.finished_at">{}</span>)</h3>"#,
        escape(&sp.finished_at)
    );
    if sp.checks.is_empty() {
        out.push_str("<p class=\"none\">No findings then or now.</p>\n");
        return;
    }
    out.push_str("<table><tr><th>check</th><th class=\"n\">before</th><th class=\"n\">now</th><th class=\"n\">new</th><th class=\"n\">resolved</th></tr>\n");
    for ch in &sp.checks {
        let _ = write!(
            out,
            r#"<tr><td><code>{}</code></td><td class="n">"#,
            ch.check
        );
        for (field, n, finding) in [
            ("previous", ch.previous, false),
            ("now", ch.now, false),
            ("new", ch.new, true),
            ("resolved", ch.resolved, false),
        ] {
            if field != "previous" {
                out.push_str("</td><td class=\"n\">");
            }
            number(out, &format!("since.{}.{field}", ch.check), n, finding);
        }
        out.push_str("</td></tr>\n");
    }
    out.push_str("</table>\n");
}

fn collection(out: &mut String, idx: usize, c: &CollectionReport) {
    heading(out, idx, c);
    gate_table(out, c);
    since_previous(out, c);
    // documents and classification
    out.push_str("<p>");
    number(out, "documents", c.documents, false);
    out.push_str(" readable documents, ");
    number(out, "unreadable", c.unreadable, true);
    out.push_str(
        " unreadable (could not be decoded; file and byte offset in violations.csv)</p>\n",
    );
    bar(out, c);

    out.push_str("<div class=\"grid\"><div>\n");
    indexes_section(out, c);
    unique_keys_section(out, c);
    references_section(out, c);
    out.push_str("</div><div>\n");
    structure_section(out, c);
    reconciliation_section(out, c);
    out.push_str("</div></div>\n");
    top_errors_section(out, c);
    remediation_section(out, c);
    out.push_str("</section>\n");
}

/// The section's opening tag and heading: name, target version and state.
fn heading(out: &mut String, idx: usize, c: &CollectionReport) {
    let _ = write!(
        out,
        r#"<section class="coll" id="c{idx}" data-collection="{}">"#,
        escape(&c.name)
    );
    let state = if !c.present {
        r#"<span class="badge failed" data-testid="collection-status">not in source</span>"#
    } else if !c.verdict.is_empty() {
        match c.outcome(true) {
            "fail" => {
                r#"<span class="badge fail" data-testid="collection-status">gate: fail</span>"#
            }
            "warn" => {
                r#"<span class="badge warn" data-testid="collection-status">gate: warn</span>"#
            }
            _ => r#"<span class="badge pass" data-testid="collection-status">gate: pass</span>"#,
        }
    } else if c.has_findings() {
        r#"<span class="badge findings" data-testid="collection-status">findings</span>"#
    } else {
        r#"<span class="badge clean" data-testid="collection-status">as the contract says</span>"#
    };
    let _ = write!(
        out,
        r#"<div class="head"><h2 data-testid="collection-name">{}</h2><span class="sub">target version <span data-testid="target_version" data-value="{}">v{}</span></span>{state}</div>"#,
        escape(&c.name),
        c.target_version,
        c.target_version
    );
    out.push('\n');
    if !c.present {
        out.push_str("<p>The source has no such collection.</p>\n");
    }
}

/// Indexes: missing and unexpected, or why they were not checked.
fn indexes_section(out: &mut String, c: &CollectionReport) {
    out.push_str("<h3>Indexes</h3>\n");
    let ix = &c.indexes;
    if let Some(e) = &ix.error {
        let _ = writeln!(
            out,
            r#"<p class="hit" data-testid="indexes-error">The indexes could not be read: {}</p>"#,
            escape(e)
        );
    } else if !ix.available {
        out.push_str("<p class=\"none\" data-testid=\"indexes-unavailable\">Not checked: the source carries no index information.</p>\n");
    } else {
        out.push_str("<table>");
        row(
            out,
            "missing",
            "indexes.missing",
            ix.missing.len() as u64,
            true,
        );
        row(
            out,
            "unexpected",
            "indexes.unexpected",
            ix.unexpected.len() as u64,
            true,
        );
        out.push_str("</table>\n");
        if ix.missing.is_empty() && ix.unexpected.is_empty() {
            out.push_str("<p class=\"none\">As the contract says.</p>\n");
        } else {
            out.push_str("<table><tr><th>finding</th><th>index</th></tr>\n");
            for (kind, list) in [("missing", &ix.missing), ("unexpected", &ix.unexpected)] {
                for i in list {
                    let _ = writeln!(
                        out,
                        r#"<tr><td>{kind}</td><td><code data-testid="index-{kind}">{}</code></td></tr>"#,
                        escape(&index_label(i))
                    );
                }
            }
            out.push_str("</table>\n");
        }
    }
}

/// Unique keys: duplicate groups and their documents.
fn unique_keys_section(out: &mut String, c: &CollectionReport) {
    out.push_str("<h3>Unique keys</h3>\n");
    if c.duplicates.is_empty() {
        out.push_str("<p class=\"none\">No unique keys in the contract.</p>\n");
    } else {
        out.push_str("<table><tr><th>index</th><th>key</th><th class=\"n\">duplicate groups</th><th class=\"n\">documents</th></tr>\n");
        for d in &c.duplicates {
            let _ = write!(
                out,
                r#"<tr data-index="{}"><td>{}</td><td><code>{}</code></td><td class="n">"#,
                escape(&d.name),
                escape(&d.name),
                escape(&index_label(&serde_json::json!({ "key": d.key })))
            );
            number(
                out,
                &format!("duplicates.{}.groups", d.name),
                d.groups,
                true,
            );
            out.push_str("</td><td class=\"n\">");
            number(
                out,
                &format!("duplicates.{}.documents", d.name),
                d.documents,
                true,
            );
            out.push_str("</td></tr>\n");
        }
        out.push_str("</table>\n");
    }
}

/// References: orphans, or why a reference is not verified.
fn references_section(out: &mut String, c: &CollectionReport) {
    out.push_str("<h3>References</h3>\n");
    if c.references.is_empty() {
        out.push_str("<p class=\"none\">No references in the contract.</p>\n");
    } else {
        out.push_str(
            "<table><tr><th>field</th><th>refers to</th><th class=\"n\">orphans</th></tr>\n",
        );
        for r in &c.references {
            let _ = write!(
                out,
                r#"<tr><td><code>{}</code></td><td><code>{}.{}</code></td><td class="n">"#,
                escape(&r.field),
                escape(&r.collection),
                escape(&r.to)
            );
            if r.checked {
                number(out, &format!("orphans.{}", r.field), r.orphans, true);
            } else {
                let reason = match &r.reason {
                    Some(reason) => format!("not verified: {reason}"),
                    None => format!("not checked: {} is not in the source", r.collection),
                };
                let _ = write!(
                    out,
                    r#"<span class="hit" data-testid="orphans.{}">{}</span>"#,
                    escape(&r.field),
                    escape(&reason)
                );
                if let Some(n) = r.orphans_unverified.filter(|&n| n > 0) {
                    let _ = write!(
                        out,
                        r#" <span class="none">(<span class="num" data-testid="orphans_unverified.{}" data-value="{n}">{}</span> not found among the records read)</span>"#,
                        escape(&r.field),
                        num(n)
                    );
                }
            }
            out.push_str("</td></tr>\n");
        }
        out.push_str("</table>\n");
    }
}

/// Structure: one row per structural check.
fn structure_section(out: &mut String, c: &CollectionReport) {
    out.push_str("<h3>Structure</h3>\n<table>");
    for (key, label, n) in super::checks::structure_parts(&c.structure) {
        row(out, label, &format!("structure.{key}"), n, true);
    }
    out.push_str("</table>\n");
}

/// Against the baseline, when there is one.
fn reconciliation_section(out: &mut String, c: &CollectionReport) {
    out.push_str("<h3>Against the baseline</h3>\n");
    match &c.reconciliation {
        None => out.push_str(
            "<p class=\"none\" data-testid=\"reconciliation-none\">No baseline given.</p>\n",
        ),
        Some(r) => {
            out.push_str("<table>");
            row(
                out,
                "documents in the baseline",
                "reconciliation.baseline_documents",
                r.baseline_documents,
                false,
            );
            row(
                out,
                "missing now",
                "reconciliation.missing",
                r.missing,
                true,
            );
            row(out, "added", "reconciliation.added", r.added, true);
            row(out, "changed", "reconciliation.changed", r.changed, true);
            row(
                out,
                "reordered fields only (informational)",
                "reconciliation.reordered",
                r.reordered,
                false,
            );
            out.push_str("</table>\n");
        }
    }
}

/// The most frequent schema errors, with example ids.
fn top_errors_section(out: &mut String, c: &CollectionReport) {
    if !c.top_errors.is_empty() {
        let _ = writeln!(
            out,
            "<h3>Most frequent schema errors (against v{})</h3>",
            c.target_version
        );
        out.push_str("<table><tr><th>keyword</th><th>path</th><th class=\"n\">documents</th><th>for example</th></tr>\n");
        for (i, e) in c.top_errors.iter().enumerate() {
            let _ = write!(
                out,
                r#"<tr data-testid="top-error"><td><code>{}</code></td><td><code>{}</code></td><td class="n">"#,
                escape(&e.keyword),
                escape(&e.path)
            );
            number(out, &format!("top_errors.{i}.count"), e.count, true);
            out.push_str("</td><td>");
            for (j, id) in e.example_ids.iter().enumerate() {
                if j > 0 {
                    out.push_str("<br>");
                }
                let _ = write!(
                    out,
                    r#"<code data-testid="example-id">{}</code>"#,
                    escape(id)
                );
            }
            out.push_str("</td></tr>\n");
        }
        out.push_str("</table>\n");
    }
}

/// The remediation commands.
fn remediation_section(out: &mut String, c: &CollectionReport) {
    out.push_str("<h3>Remediation</h3>\n");
    if c.remediation.is_empty() {
        out.push_str("<p class=\"none\">No repair template applies; see violations.csv for the documents.</p>\n");
    } else {
        out.push_str("<table><tr><th>finding</th><th>template</th><th>command</th></tr>\n");
        for r in &c.remediation {
            let _ = writeln!(
                out,
                r#"<tr data-testid="remediation"><td><code>{}</code></td><td>{}</td><td><pre class="cmd">{}</pre></td></tr>"#,
                escape(&r.finding),
                escape(&r.template),
                escape(&r.command)
            );
        }
        out.push_str("</table>\n");
    }
}

/// The whole page.
pub fn render(report: &Report) -> String {
    let mut out = String::with_capacity(16 * 1024);
    let status = status_word(report.status);
    let _ = write!(
        out,
        "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n\
         <meta name=\"generator\" content=\"docsweep {}\">\n\
         <title>docsweep: {} — {}</title>\n<style>{CSS}</style>\n</head>\n<body>\n",
        env!("CARGO_PKG_VERSION"),
        status,
        escape(&report.source)
    );
    let _ = write!(
        out,
        r#"<header><h1>docsweep check <span class="badge {status}" data-testid="status" data-value="{status}">{}</span></h1>"#,
        status.to_uppercase()
    );
    out.push_str("<dl class=\"meta\">");
    let mut meta = |label: &str, testid: &str, value: &str| {
        let _ = write!(
            out,
            r#"<dt>{}</dt><dd data-testid="{testid}">{}</dd>"#,
            escape(label),
            escape(value)
        );
    };
    meta("source", "source", &report.source);
    if let Some(db) = &report.database {
        meta("database", "database", db);
    }
    if let Some(b) = &report.baseline {
        meta("baseline", "baseline", b);
    }
    meta("started", "started_at", &report.started_at);
    meta("finished", "finished_at", &report.finished_at);
    out.push_str("</dl>\n");
    if let Some(e) = &report.error {
        let _ = writeln!(
            out,
            r#"<div class="alert" data-testid="error"><strong>The scan failed:</strong> {}
What was scanned before the failure is reported below.</div>"#,
            escape(e)
        );
    }
    for w in &report.warnings {
        let _ = writeln!(
            out,
            r#"<div class="alert warn" data-testid="warning"><strong>warning:</strong> {}</div>"#,
            escape(w)
        );
    }
    out.push_str("</header>\n");

    if report.collections.is_empty() {
        out.push_str("<p class=\"none\">No collections were checked.</p>\n");
    } else {
        // overview
        out.push_str("<nav><table><tr><th>collection</th><th class=\"n\">documents</th><th class=\"n\">valid</th><th class=\"n\">other version</th><th class=\"n\">invalid</th><th class=\"n\">unreadable</th><th>state</th></tr>\n");
        for (i, c) in report.collections.iter().enumerate() {
            let other: u64 = c.classes.other_version.values().sum();
            let state = if !c.present {
                "not in source"
            } else if !c.verdict.is_empty() {
                match c.outcome(true) {
                    "fail" => "gate: fail",
                    "warn" => "gate: warn",
                    _ => "gate: pass",
                }
            } else if c.has_findings() {
                "findings"
            } else {
                "clean"
            };
            let _ = writeln!(
                out,
                r##"<tr><td><a href="#c{i}">{}</a></td><td class="n">{}</td><td class="n">{}</td><td class="n">{}</td><td class="n">{}</td><td class="n">{}</td><td>{state}</td></tr>"##,
                escape(&c.name),
                num(c.documents),
                num(c.classes.valid),
                num(other),
                num(c.classes.invalid),
                num(c.unreadable)
            );
        }
        out.push_str("</table></nav>\n");
        for (i, c) in report.collections.iter().enumerate() {
            collection(&mut out, i, c);
        }
    }
    let _ = write!(
        out,
        "<footer>{} · docsweep {} · report.json has every field of this page; violations.csv lists each document</footer>\n</body>\n</html>\n",
        escape(report.format),
        env!("CARGO_PKG_VERSION")
    );
    out
}

/// Writes [`render`] to `path` atomically.
pub fn write_html(report: &Report, path: &Path) -> std::io::Result<()> {
    write_atomic(path, render(report).as_bytes())
}
