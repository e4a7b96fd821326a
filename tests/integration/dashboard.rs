//! examples/grafana/docsweep.json: every metric its PromQL queries use, and every label they
//! select or group by, is in the metrics file of a real sweep (a check after a repair was
//! applied and undone, with thresholds and a previous run), as prometheus_client parses it.

use std::collections::{BTreeMap, BTreeSet};

use serde_json::Value;

use crate::outputs::consumer;
use crate::util::{copy_dir, example, repo, Workdir};

/// A metric selector in a query: the metric and the labels its matchers name.
#[derive(Debug, PartialEq)]
struct Selector {
    metric: String,
    labels: Vec<String>,
}

/// What a PromQL expression uses: its selectors, and the labels of its `by (…)` /
/// `without (…)` / `on (…)` / `ignoring (…)` clauses.
#[derive(Debug, Default, PartialEq)]
struct Uses {
    selectors: Vec<Selector>,
    grouping: Vec<String>,
}

fn ident_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || c == '_' || c == ':'
}

/// A small PromQL reader: enough for metric names, label matchers and grouping clauses.
/// Functions and aggregations are identifiers followed by `(`; strings, durations, numbers
/// and `$variables` are skipped.
fn promql_uses(expr: &str) -> Uses {
    const KEYWORDS: [&str; 6] = ["and", "or", "unless", "bool", "offset", "group_left"];
    // Aggregations: `sum by (a) (x)` has `by` between the name and its argument.
    const AGGREGATIONS: [&str; 13] = [
        "sum",
        "min",
        "max",
        "avg",
        "group",
        "stddev",
        "stdvar",
        "count",
        "count_values",
        "bottomk",
        "topk",
        "quantile",
        "limitk",
    ];
    let chars: Vec<char> = expr.chars().collect();
    let mut uses = Uses::default();
    let mut i = 0;
    let skip_ws = |mut j: usize| {
        while j < chars.len() && chars[j].is_whitespace() {
            j += 1;
        }
        j
    };
    // The label names of a `(a, b)` list or a `{a="x", b=~"y"}` matcher starting at `j`.
    let labels_in = |j: usize, close: char| -> (Vec<String>, usize) {
        let mut names = Vec::new();
        let mut k = j + 1;
        let mut current = String::new();
        let mut in_string = false;
        let mut expect_name = true;
        while k < chars.len() {
            let c = chars[k];
            if in_string {
                if c == '\\' {
                    k += 1;
                } else if c == '"' {
                    in_string = false;
                }
            } else if c == '"' {
                in_string = true;
            } else if c == close {
                break;
            } else if ident_char(c) && expect_name {
                current.push(c);
            } else if !current.is_empty() {
                names.push(std::mem::take(&mut current));
                expect_name = false;
            }
            if !in_string && c == ',' {
                expect_name = true;
            }
            k += 1;
        }
        if !current.is_empty() {
            names.push(current);
        }
        (names, k + 1)
    };
    while i < chars.len() {
        let c = chars[i];
        if c == '"' {
            i += 1;
            while i < chars.len() && chars[i] != '"' {
                i += if chars[i] == '\\' { 2 } else { 1 };
            }
            i += 1;
        } else if c == '[' {
            while i < chars.len() && chars[i] != ']' {
                i += 1;
            }
        } else if c == '$' || c.is_ascii_digit() {
            i += 1;
            while i < chars.len() && (ident_char(chars[i]) || chars[i] == '.') {
                i += 1;
            }
        } else if ident_char(c) {
            let start = i;
            while i < chars.len() && ident_char(chars[i]) {
                i += 1;
            }
            let word: String = chars[start..i].iter().collect();
            let next = skip_ws(i);
            let opens = chars.get(next) == Some(&'(');
            if [
                "by",
                "without",
                "on",
                "ignoring",
                "group_right",
                "group_left",
            ]
            .contains(&word.as_str())
                && opens
            {
                let (names, end) = labels_in(next, ')');
                uses.grouping.extend(names);
                i = end;
            } else if opens
                || KEYWORDS.contains(&word.as_str())
                || AGGREGATIONS.contains(&word.as_str())
            {
                // a function or an aggregation (its arguments follow), or an operator
            } else {
                let mut labels = Vec::new();
                if chars.get(next) == Some(&'{') {
                    let (names, end) = labels_in(next, '}');
                    labels = names;
                    i = end;
                }
                uses.selectors.push(Selector {
                    metric: word,
                    labels,
                });
            }
        } else {
            i += 1;
        }
    }
    uses
}

#[test]
fn the_promql_reader_finds_names_labels_and_typos() {
    let u = promql_uses(
        r#"-sum by (check, collection) (delta(docsweep_new_findingz{collection=~"a,b\"}", check!="x"}[$__range])) / on(collection) group_left time() - docsweep_status offset 5m"#,
    );
    assert_eq!(
        u.selectors,
        [
            Selector {
                metric: "docsweep_new_findingz".into(),
                labels: vec!["collection".into(), "check".into()]
            },
            Selector {
                metric: "docsweep_status".into(),
                labels: vec![]
            }
        ]
    );
    assert_eq!(u.grouping, ["check", "collection", "collection"]);
}

/// Every PromQL expression of the dashboard: the panels' targets and the variables'
/// queries (`label_values(metric, label)` as the selector `metric{label}`).
fn expressions(dashboard: &Value) -> Vec<String> {
    let mut out = Vec::new();
    let mut panels: Vec<&Value> = dashboard["panels"].as_array().unwrap().iter().collect();
    while let Some(p) = panels.pop() {
        panels.extend(p["panels"].as_array().into_iter().flatten());
        for t in p["targets"].as_array().into_iter().flatten() {
            out.push(t["expr"].as_str().expect("a target with expr").to_string());
        }
    }
    for v in dashboard["templating"]["list"].as_array().unwrap() {
        if let Some(q) = v["query"]["query"].as_str() {
            let inner = q
                .strip_prefix("label_values(")
                .and_then(|q| q.strip_suffix(')'))
                .unwrap_or_else(|| panic!("unexpected variable query {q}"));
            let (metric, label) = inner.split_once(',').unwrap();
            out.push(format!("{}{{{}=\"\"}}", metric.trim(), label.trim()));
        }
    }
    out
}

fn run_ok(w: &Workdir, args: &[&str], codes: &[i32]) {
    let run = w.docsweep(args);
    assert!(
        codes.contains(&run.code),
        "docsweep {args:?}: exit {}\n{}{}",
        run.code,
        run.stdout,
        run.stderr
    );
}

#[test]
fn every_metric_and_label_the_dashboard_queries_is_in_a_real_sweeps_metrics() {
    let w = Workdir::new();
    copy_dir(&example().join("data/dump"), &w.path().join("dump"));
    let schemas = example().join("schemas");
    let schemas = schemas.to_str().unwrap();
    let baseline = format!("dump:{}", example().join("data/baseline").display());
    std::fs::write(
        w.path().join("docsweep.toml"),
        "[thresholds]\ninvalid = { warn = 1, fail = \"5%\" }\nother_version = { warn = 1 }\n\"other_version:2\" = { fail = 1 }\n",
    )
    .unwrap();
    // A repair applied and undone: the audit log the checks append to records both.
    run_ok(
        &w,
        &[
            "repair",
            "plan",
            "--template",
            "restore-missing",
            "--baseline",
            &baseline,
            "--collection",
            "orders",
            "--source",
            "dump:dump",
            "--schemas",
            schemas,
            "--out",
            "p.plan",
        ],
        &[0],
    );
    run_ok(
        &w,
        &["repair", "apply", "p.plan", "--out", "dump:fixed"],
        &[0],
    );
    run_ok(
        &w,
        &[
            "repair",
            "undo",
            "fixed/shop/.docsweep/journal",
            "--out",
            "dump:undone",
        ],
        &[0],
    );
    // Two sweeps: the second (of the repaired dump) is compared with the first.
    for source in ["dump:dump", "dump:fixed"] {
        run_ok(
            &w,
            &[
                "check",
                "--no-progress",
                "--source",
                source,
                "--baseline",
                &baseline,
                "--schemas",
                schemas,
                "--metrics",
                "docsweep.prom",
            ],
            &[1],
        );
    }
    let report = w.read_json("docsweep-report/report.json");
    let applied = w
        .read("docsweep-audit.jsonl")
        .lines()
        .map(|l| serde_json::from_str::<Value>(l).unwrap())
        .find(|l| l["event"] == "apply")
        .expect("an apply line")["applied"]
        .as_u64()
        .unwrap();
    assert!(applied > 0);

    let prom = w.path().join("docsweep.prom");
    let seen = consumer(&["metrics", prom.to_str().unwrap()]);
    // The families with samples, and the labels their samples carry.
    let mut emitted: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for (name, fam) in seen.as_object().unwrap() {
        for s in fam["samples"].as_array().unwrap() {
            let labels = emitted.entry(name.clone()).or_default();
            labels.extend(s["labels"].as_object().unwrap().keys().cloned());
        }
    }
    let sample = |family: &str, labels: &[(&str, &str)]| -> f64 {
        seen[family]["samples"]
            .as_array()
            .unwrap()
            .iter()
            .find(|s| labels.iter().all(|(k, v)| s["labels"][*k] == *v))
            .unwrap_or_else(|| panic!("no {family} {labels:?}"))["value"]
            .as_f64()
            .unwrap()
    };
    let apply = [("collection", "orders"), ("event", "apply")];
    assert_eq!(sample("docsweep_repair_documents", &apply), applied as f64);
    assert_eq!(sample("docsweep_repair_runs", &apply), 1.0);
    let undo = [("collection", "orders"), ("event", "undo")];
    assert_eq!(sample("docsweep_repair_documents", &undo), applied as f64);
    let orders = crate::util::collection(&report, "orders");
    assert_eq!(
        sample(
            "docsweep_check_findings",
            &[("collection", "orders"), ("check", "invalid")]
        ),
        orders["classes"]["invalid"].as_f64().unwrap()
    );
    assert_eq!(
        sample(
            "docsweep_verdict",
            &[
                ("collection", "orders"),
                ("check", "other_version"),
                ("version", "2")
            ]
        ),
        2.0,
        "other_version:2 fails"
    );

    let dashboard: Value = serde_json::from_str(
        &std::fs::read_to_string(repo().join("examples/grafana/docsweep.json")).unwrap(),
    )
    .expect("the dashboard is JSON");
    let exprs = expressions(&dashboard);
    let mut used = BTreeSet::new();
    for expr in &exprs {
        let uses = promql_uses(expr);
        assert!(!uses.selectors.is_empty(), "no metric in {expr}");
        let mut labels_here = BTreeSet::new();
        for s in &uses.selectors {
            let labels = emitted.get(&s.metric).unwrap_or_else(|| {
                panic!(
                    "{expr}: {} is not in the metrics of a real sweep (it has {:?})",
                    s.metric,
                    emitted.keys().collect::<Vec<_>>()
                )
            });
            for l in &s.labels {
                assert!(labels.contains(l), "{expr}: {} has no label {l}", s.metric);
            }
            labels_here.extend(labels.iter().cloned());
            used.insert(s.metric.clone());
        }
        for l in &uses.grouping {
            assert!(labels_here.contains(l), "{expr}: no metric has {l}");
        }
    }
    // What the dashboard is for: versions, findings by kind, the last sweep, repairs.
    for m in [
        "docsweep_documents_by_class",
        "docsweep_check_findings",
        "docsweep_status",
        "docsweep_last_run_timestamp_seconds",
        "docsweep_verdict",
        "docsweep_new_findings",
        "docsweep_repair_documents",
    ] {
        assert!(used.contains(m), "the dashboard does not query {m}");
    }
    // Panels have unique ids and a place on the grid.
    let mut ids = BTreeSet::new();
    for p in dashboard["panels"].as_array().unwrap() {
        assert!(ids.insert(p["id"].as_u64().unwrap()), "duplicate id {p}");
        assert!(p["gridPos"]["w"].as_u64().unwrap() > 0);
    }
}
