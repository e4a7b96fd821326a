//! report.html, junit.xml and the Prometheus metrics file, read back by the tools their
//! consumers use: headless Chromium, an XML Schema validator with the Jenkins JUnit schema
//! and prometheus_client's text parser (all driven by tests/check_outputs.py; installed by
//! scripts/setup-test-tools). The reports are built through the library: one with the
//! bundled example's numbers and one full of text that must be escaped.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;

use docsweep::report::{
    self, Classes, CollectionReport, DuplicateFinding, ErrorKind, IndexFindings, Reconciliation,
    ReferenceFinding, Remediation, Report, Status, Structure,
};
use serde_json::{json, Value};

use super::util::repo;

const SETUP: &str = "run scripts/setup-test-tools (installs python3 lxml + prometheus-client, \
                     the JUnit XSD and Debian's chromium)";

fn oid(hex: &str) -> String {
    format!("{{\"$oid\":\"{hex}\"}}")
}

/// The bundled example's check (examples/shop, with its baseline), as report.json has it.
pub fn shop_report() -> Report {
    let customers = CollectionReport {
        name: "customers".into(),
        target_version: 1,
        present: true,
        documents: 313,
        unreadable: 0,
        classes: Classes {
            valid: 301,
            other_version: BTreeMap::from([("2".into(), 12)]),
            invalid: 0,
        },
        indexes: IndexFindings {
            available: true,
            missing: vec![json!({"key": {"email": 1}, "name": "email_1", "unique": true})],
            ..Default::default()
        },
        duplicates: vec![DuplicateFinding {
            key: json!({"email": 1}),
            name: "email_1".into(),
            groups: 5,
            documents: 12,
        }],
        reconciliation: Some(Reconciliation {
            baseline_documents: 300,
            missing: 4,
            added: 17,
            changed: 12,
            reordered: 5,
            indexes: None,
        }),
        ..Default::default()
    };
    let ids = |a: &str, b: &str, c: &str| vec![oid(a), oid(b), oid(c)];
    let reference = |field: &str, orphans| ReferenceFinding {
        field: field.into(),
        collection: "customers".into(),
        to: "_id".into(),
        checked: true,
        reason: None,
        orphans,
        orphans_unverified: None,
    };
    let orders = CollectionReport {
        name: "orders".into(),
        target_version: 1,
        present: true,
        documents: 1512,
        unreadable: 1,
        classes: Classes {
            valid: 1448,
            other_version: BTreeMap::from([("2".into(), 40)]),
            invalid: 24,
        },
        indexes: IndexFindings {
            available: true,
            missing: vec![json!({"key": {"customer_id": 1}})],
            unexpected: vec![json!({"key": {"customer.id": 1}, "name": "customer.id_1"})],
            ..Default::default()
        },
        references: vec![reference("customer_id", 6), reference("customer.id", 5)],
        structure: Structure {
            missing_id: 1,
            duplicate_id: 1,
            too_deep: 1,
            oversize: 0,
        },
        reconciliation: Some(Reconciliation {
            baseline_documents: 1500,
            missing: 20,
            added: 30,
            changed: 89,
            reordered: 10,
            indexes: None,
        }),
        top_errors: vec![
            ErrorKind {
                keyword: "additionalProperties".into(),
                path: "/".into(),
                count: 16,
                example_ids: ids(
                    "65b89d7f5d0c5e000d00010a",
                    "65d161fe5d0c5e000d0001a1",
                    "65e8d7065d0c5e000d000243",
                ),
            },
            ErrorKind {
                keyword: "required".into(),
                path: "/total".into(),
                count: 15,
                example_ids: ids(
                    "65b89d7f5d0c5e000d00010a",
                    "65d161fe5d0c5e000d0001a1",
                    "65e8d7065d0c5e000d000243",
                ),
            },
            ErrorKind {
                keyword: "enum".into(),
                path: "/status".into(),
                count: 8,
                example_ids: ids(
                    "65c4844b5d0c5e000d000154",
                    "65ef382a5d0c5e000d00025f",
                    "65f241535d0c5e000d00026e",
                ),
            },
            ErrorKind {
                keyword: "type".into(),
                path: "/status".into(),
                count: 8,
                example_ids: ids(
                    "65c4844b5d0c5e000d000154",
                    "65ef382a5d0c5e000d00025f",
                    "65f241535d0c5e000d00026e",
                ),
            },
        ],
        ..Default::default()
    };
    Report {
        format: report::FORMAT,
        status: Status::Findings,
        source: "dump:./data/dump".into(),
        database: Some("shop".into()),
        started_at: "2026-11-25T09:46:58Z".into(),
        finished_at: "2026-11-25T09:47:01Z".into(),
        error: None,
        baseline: Some("dump:./data/baseline".into()),
        warnings: vec![],
        collections: vec![customers, orders],
        gated: false,
    }
}

/// The example plus remediation commands (the scan does not emit them yet).
fn shop_with_remediation() -> Report {
    let mut r = shop_report();
    r.collections[1].remediation = vec![
        Remediation {
            finding: "other_version:2".into(),
            template: "unnest-field".into(),
            command: "docsweep repair plan --template unnest-field --source dump:./data/dump \
                      --select other_version:2 --out plan.json"
                .into(),
        },
        Remediation {
            finding: "orphan:customer_id".into(),
            template: "quarantine".into(),
            command: "docsweep repair plan --template quarantine --select orphan:customer_id \
                      --out orphans.plan"
                .into(),
        },
    ];
    r
}

const EVIL: &str = "<script>alert(\"x\")</script>&amp;'\"\\\n</section><img src=x>";

/// A failed run whose every text field tries to break out of its context.
fn nasty_report() -> Report {
    let c = CollectionReport {
        name: format!("ord{EVIL}ers"),
        target_version: 3,
        present: true,
        documents: 10,
        unreadable: 2,
        classes: Classes {
            valid: 5,
            other_version: BTreeMap::from([("1".into(), 1), (format!("2{EVIL}"), 1)]),
            invalid: 3,
        },
        indexes: IndexFindings {
            available: true,
            error: Some(format!("bad metadata {EVIL}")),
            missing: vec![json!({"key": {EVIL: 1}})],
            unexpected: vec![json!({"key": {"a": -1}, "name": EVIL})],
        },
        duplicates: vec![DuplicateFinding {
            key: json!({EVIL: 1}),
            name: format!("u{EVIL}"),
            groups: 2,
            documents: 4,
        }],
        references: vec![
            ReferenceFinding {
                field: format!("f{EVIL}"),
                collection: format!("c{EVIL}"),
                to: "_id".into(),
                checked: true,
                reason: None,
                orphans: 7,
                orphans_unverified: None,
            },
            ReferenceFinding {
                field: "gone".into(),
                collection: "nowhere".into(),
                to: "_id".into(),
                checked: false,
                reason: None,
                orphans: 0,
                orphans_unverified: None,
            },
        ],
        top_errors: vec![ErrorKind {
            keyword: format!("k{EVIL}"),
            path: format!("/p{EVIL}"),
            count: 3,
            example_ids: vec![format!("{{\"$oid\":\"{EVIL}\"}}"), "\"]]>\"".into()],
        }],
        remediation: vec![Remediation {
            finding: format!("invalid{EVIL}"),
            template: format!("t{EVIL}"),
            command: format!("docsweep repair plan --param x='{EVIL}'"),
        }],
        ..Default::default()
    };
    let absent = CollectionReport {
        name: "absent".into(),
        target_version: 1,
        present: false,
        ..Default::default()
    };
    Report {
        format: report::FORMAT,
        status: Status::Failed,
        source: format!("dump:/data/{EVIL}"),
        database: Some(EVIL.into()),
        started_at: "2026-01-02T03:04:05Z".into(),
        finished_at: "2026-01-02T03:04:07Z".into(),
        error: Some(format!("cannot read {EVIL}: broken")),
        baseline: None,
        warnings: vec![format!("w{EVIL}")],
        collections: vec![c, absent],
        gated: false,
    }
}

fn clean_report() -> Report {
    Report {
        format: report::FORMAT,
        status: Status::Clean,
        source: "export:out".into(),
        database: None,
        started_at: "2026-01-02T03:04:05Z".into(),
        finished_at: "2026-01-02T03:04:05Z".into(),
        error: None,
        baseline: None,
        warnings: vec![],
        collections: vec![CollectionReport {
            name: "things".into(),
            target_version: 2,
            present: true,
            documents: 3,
            classes: Classes {
                valid: 3,
                ..Default::default()
            },
            indexes: IndexFindings {
                available: true,
                ..Default::default()
            },
            ..Default::default()
        }],
        gated: false,
    }
}

/// Where scripts/setup-test-tools puts the Jenkins JUnit schema.
fn junit_xsd() -> PathBuf {
    if let Some(p) = std::env::var_os("DOCSWEEP_JUNIT_XSD") {
        return p.into();
    }
    Path::new(env!("CARGO_TARGET_TMPDIR"))
        .parent()
        .unwrap_or(Path::new("target"))
        .join("test-tools/junit-10.xsd")
}

/// Runs tests/check_outputs.py and returns what the tool saw; fails the test (with how to
/// install what is missing) when a tool is not there.
pub(crate) fn consumer(args: &[&str]) -> Value {
    let o = Command::new("python3")
        .arg(repo().join("tests/check_outputs.py"))
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("cannot run python3 ({e}): {SETUP}"));
    let stderr = String::from_utf8_lossy(&o.stderr);
    match o.status.code() {
        Some(0) => serde_json::from_slice(&o.stdout)
            .unwrap_or_else(|e| panic!("check_outputs.py printed no JSON ({e}): {stderr}")),
        Some(2) => panic!("a test tool is missing: {stderr}\n{SETUP}"),
        _ => panic!("check_outputs.py {args:?} rejected the file:\n{stderr}"),
    }
}

fn write(dir: &Path, name: &str, text: &str) -> String {
    let p = dir.join(name);
    std::fs::write(&p, text).unwrap();
    p.to_string_lossy().into_owned()
}

/// `data-testid` values of one collection's section as Chromium rendered them.
fn ids<'a>(seen: &'a Value, collection: &str) -> &'a Value {
    let v = &seen["collections"][collection];
    assert!(v.is_object(), "no section for {collection:?} in {seen}");
    v
}

fn one(v: &Value, testid: &str) -> String {
    match v[testid].as_array().map(Vec::as_slice) {
        Some([x]) => x.as_str().unwrap_or_default().to_string(),
        other => panic!("expected one {testid:?}, found {other:?}"),
    }
}

// ---- HTML ---------------------------------------------------------------------------------

#[test]
fn html_escapes_all_report_text() {
    let html = report::html::render(&nasty_report());
    for raw in ["<script", "<img", "</section><", "'\"\\"] {
        assert!(!html.contains(raw), "unescaped {raw:?} in the page");
    }
    assert!(html.contains("&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt;&amp;amp;&#39;"));
    // exactly one section per collection: nothing closed or opened one early
    assert_eq!(html.matches("<section").count(), 2);
    assert_eq!(html.matches("</section>").count(), 2);
}

#[test]
fn html_renders_in_chromium_with_the_reports_numbers() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("report.html");
    report::write_html(&shop_with_remediation(), &file).unwrap();
    let seen = consumer(&["html", file.to_str().unwrap()]);

    assert_eq!(seen["run"]["status"], json!(["findings"]));
    assert_eq!(seen["run"]["source"], json!(["dump:./data/dump"]));
    assert_eq!(seen["run"]["baseline"], json!(["dump:./data/baseline"]));
    assert_eq!(seen["run"]["started_at"], json!(["2026-11-25T09:46:58Z"]));
    assert_eq!(seen["run"]["finished_at"], json!(["2026-11-25T09:47:01Z"]));

    let o = ids(&seen, "orders");
    for (id, n) in [
        ("documents", "1512"),
        ("unreadable", "1"),
        ("valid", "1448"),
        ("other_version.2", "40"),
        ("invalid", "24"),
        ("indexes.missing", "1"),
        ("indexes.unexpected", "1"),
        ("orphans.customer_id", "6"),
        ("orphans.customer.id", "5"),
        ("structure.missing_id", "1"),
        ("structure.duplicate_id", "1"),
        ("structure.too_deep", "1"),
        ("structure.oversize", "0"),
        ("reconciliation.baseline_documents", "1500"),
        ("reconciliation.missing", "20"),
        ("reconciliation.added", "30"),
        ("reconciliation.changed", "89"),
        ("reconciliation.reordered", "10"),
        ("top_errors.0.count", "16"),
        ("top_errors.3.count", "8"),
        ("target_version", "1"),
    ] {
        assert_eq!(one(o, id), n, "orders {id}");
    }
    assert_eq!(o["example-id"].as_array().unwrap().len(), 12);
    assert!(o["example-id"]
        .as_array()
        .unwrap()
        .contains(&json!(r#"{"$oid":"65b89d7f5d0c5e000d00010a"}"#)));
    assert_eq!(o["index-missing"], json!(["{ customer_id: 1 }"]));
    assert_eq!(
        o["index-unexpected"],
        json!(["{ customer.id: 1 } (customer.id_1)"])
    );
    assert_eq!(o["remediation"].as_array().unwrap().len(), 2);
    assert!(seen["text"].as_str().unwrap().contains(
        "docsweep repair plan --template unnest-field --source dump:./data/dump --select other_version:2"
    ));

    let c = ids(&seen, "customers");
    for (id, n) in [
        ("documents", "313"),
        ("valid", "301"),
        ("other_version.2", "12"),
        ("invalid", "0"),
        ("duplicates.email_1.groups", "5"),
        ("duplicates.email_1.documents", "12"),
        ("reconciliation.missing", "4"),
        ("reconciliation.added", "17"),
    ] {
        assert_eq!(one(c, id), n, "customers {id}");
    }
    // people read the separated form
    assert!(seen["text"].as_str().unwrap().contains("1,448"));
}

/// The example judged by thresholds (orders: invalid over 1% fails, version 2 warns) and
/// compared with a previous run.
fn gated_shop() -> Report {
    use docsweep::report::gate::Gate;
    use docsweep::report::trend::{CheckChange, SincePrevious};
    let mut r = shop_with_remediation();
    let gate = Gate::new(
        None,
        &["invalid=1".into(), "other_version=1".into()],
        &[
            "invalid=1%".into(),
            "other_version:2=50".into(),
            "orphans=1000".into(),
        ],
        false,
    )
    .unwrap();
    r.judge(&gate);
    r.status = r.derive_status();
    r.collections[1].since_previous = Some(SincePrevious {
        finished_at: "2026-11-24T09:47:01Z".into(),
        checks: vec![CheckChange {
            check: "invalid",
            previous: 25,
            now: 24,
            new: 3,
            resolved: 4,
        }],
    });
    r
}

#[test]
fn html_shows_the_gate_verdict_and_the_changes_since_the_last_sweep() {
    let r = gated_shop();
    assert_eq!(r.status, Status::Findings);
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("report.html");
    report::write_html(&r, &file).unwrap();
    let seen = consumer(&["html", file.to_str().unwrap()]);
    assert_eq!(seen["run"]["status"], json!(["findings"]));

    let o = ids(&seen, "orders");
    // One row per check with findings, as report.json's verdict has them.
    let verdict = &r.collections[1].verdict;
    assert_eq!(o["gate.invalid.level"].as_array().map(Vec::len), Some(1));
    for v in verdict {
        let label = v.label();
        let level = serde_json::to_value(v.level).unwrap();
        assert_eq!(one(o, &format!("gate.{label}.level")), level, "{label}");
        assert_eq!(
            one(o, &format!("gate.{label}.observed")),
            v.observed.to_string(),
            "{label}"
        );
        assert_eq!(
            one(o, &format!("gate.{label}.threshold")),
            v.threshold.map(|t| t.to_string()).unwrap_or_default(),
            "{label}"
        );
    }
    for (label, level, observed, threshold) in [
        ("invalid", "fail", "24", "1%"),
        ("other_version:2", "warn", "40", "1"),
        ("orphans", "pass", "11", "1000"),
        ("structure", "fail", "3", "1"),
    ] {
        assert_eq!(one(o, &format!("gate.{label}.level")), level, "{label}");
        assert_eq!(one(o, &format!("gate.{label}.observed")), observed);
        assert_eq!(one(o, &format!("gate.{label}.threshold")), threshold);
    }
    assert_eq!(one(o, "collection-status"), "gate: fail");
    let c = ids(&seen, "customers");
    assert_eq!(one(c, "gate.other_version:2.level"), "warn");
    assert_eq!(one(c, "gate.other_version:2.observed"), "12");
    let text = seen["text"].as_str().unwrap();
    assert!(
        text.contains("reached 1%") && text.contains("below 1000") && text.contains("WARN"),
        "{text}"
    );

    // The changes since the previous run.
    assert_eq!(one(o, "since.finished_at"), "2026-11-24T09:47:01Z");
    for (id, n) in [
        ("since.invalid.previous", "25"),
        ("since.invalid.now", "24"),
        ("since.invalid.new", "3"),
        ("since.invalid.resolved", "4"),
    ] {
        assert_eq!(one(o, id), n, "{id}");
    }
    assert!(c.get("since.finished_at").is_none());
}

#[test]
fn html_without_thresholds_has_no_gate_table() {
    let html = report::html::render(&shop_report());
    assert!(
        !html.contains("data-testid=\"gate"),
        "no verdict, no gate table"
    );
    let html = report::html::render(&gated_shop());
    assert_eq!(html.matches("data-testid=\"gate\"").count(), 2);
}

#[test]
fn html_with_hostile_text_renders_it_as_text() {
    let dir = tempfile::tempdir().unwrap();
    let r = nasty_report();
    let file = write(dir.path(), "report.html", &report::html::render(&r));
    let seen = consumer(&["html", &file]);
    // the section is found under the exact collection name, which shows as text
    let c = ids(&seen, &r.collections[0].name);
    assert_eq!(one(c, "collection-name"), r.collections[0].name);
    assert_eq!(one(c, "invalid"), "3");
    assert_eq!(one(c, &format!("other_version.2{EVIL}")), "1");
    assert!(one(c, "indexes-error").contains(EVIL));
    assert!(one(c, "orphans.gone").contains("not checked"));
    assert_eq!(seen["run"]["status"], json!(["failed"]));
    assert!(seen["run"]["error"][0].as_str().unwrap().contains(EVIL));
    assert!(seen["run"]["warning"][0].as_str().unwrap().contains(EVIL));
    let absent = ids(&seen, "absent");
    assert_eq!(one(absent, "collection-status"), "not in source");
}

#[test]
fn html_of_a_clean_run() {
    let html = report::html::render(&clean_report());
    assert!(html.contains(r#"data-testid="status" data-value="clean""#));
    assert!(html.contains("As the contract says."));
    assert!(html.contains(r#"data-testid="reconciliation-none""#));
}

// ---- JUnit --------------------------------------------------------------------------------

fn junit_seen(r: &Report) -> Value {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("junit.xml");
    report::write_junit(r, &file).unwrap();
    let xsd = junit_xsd();
    assert!(xsd.is_file(), "{} is missing: {SETUP}", xsd.display());
    consumer(&[
        "junit",
        "--xsd",
        xsd.to_str().unwrap(),
        file.to_str().unwrap(),
    ])
}

fn suite<'a>(seen: &'a Value, name: &str) -> &'a Value {
    seen["suites"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["attrs"]["name"] == name)
        .unwrap_or_else(|| panic!("no suite {name:?}"))
}

fn case<'a>(suite: &'a Value, name: &str) -> &'a Value {
    suite["cases"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["name"] == name)
        .unwrap_or_else(|| panic!("no case {name:?}"))
}

#[test]
fn junit_validates_against_the_jenkins_schema_and_has_one_case_per_check() {
    let seen = junit_seen(&shop_with_remediation());
    assert_eq!(seen["root"], "testsuites");
    let o = suite(&seen, "orders");
    let names: Vec<&str> = o["cases"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["name"].as_str().unwrap())
        .collect();
    assert_eq!(
        names,
        [
            "classification",
            "unreadable",
            "indexes",
            "unique_keys",
            "references",
            "structure",
            "reconciliation"
        ]
    );
    assert!(o["cases"]
        .as_array()
        .unwrap()
        .iter()
        .all(|c| c["classname"] == "docsweep.orders"));
    assert_eq!(o["attrs"]["tests"], "7");
    assert_eq!(o["attrs"]["failures"], "6");
    let cl = case(o, "classification");
    assert_eq!(cl["status"], "failure");
    assert_eq!(
        cl["message"],
        "64 of 1,512 documents do not match target v1: 40 match v2, 24 invalid"
    );
    let text = cl["text"].as_str().unwrap();
    assert!(text
        .contains(r#"16 x additionalProperties at /  e.g. {"$oid":"65b89d7f5d0c5e000d00010a"}"#));
    assert!(text.contains("--select other_version:2"), "{text}");
    assert_eq!(case(o, "unique_keys")["status"], "passed");
    assert_eq!(case(o, "unreadable")["message"], "1 unreadable record");
    assert_eq!(
        case(o, "indexes")["message"],
        "1 missing, 1 unexpected indexes"
    );
    assert!(case(o, "indexes")["text"]
        .as_str()
        .unwrap()
        .contains("unexpected  { customer.id: 1 } (customer.id_1)"));
    let refs = case(o, "references");
    assert_eq!(
        refs["message"],
        "11 documents with orphaned references (customer_id: 6, customer.id: 5)"
    );
    assert!(refs["text"]
        .as_str()
        .unwrap()
        .contains("--select orphan:customer_id"));
    assert_eq!(
        case(o, "structure")["message"],
        "1 without _id, 1 duplicate _id, 1 nested deeper than 100"
    );
    assert_eq!(
        case(o, "reconciliation")["message"],
        "1,500 in the baseline: 20 missing, 30 added, 89 changed, 10 reordered"
    );

    let c = suite(&seen, "customers");
    assert_eq!(case(c, "unique_keys")["status"], "failure");
    assert_eq!(
        case(c, "unique_keys")["message"],
        "duplicates on email_1: 5 groups, 12 documents"
    );
    assert_eq!(case(c, "references")["status"], "passed");

    let run = suite(&seen, "docsweep");
    assert_eq!(case(run, "scan")["status"], "passed");
    assert_eq!(run["properties"]["status"], "findings");
    assert_eq!(run["properties"]["source"], "dump:./data/dump");
    // 7 + 7 + 1 cases, 6 + 4 failures (customers: classification, indexes, unique keys,
    // reconciliation)
    assert_eq!(seen["attrs"]["tests"], "15");
    assert_eq!(seen["attrs"]["failures"], "10");
    assert_eq!(seen["attrs"]["errors"], "0");
    assert_eq!(seen["attrs"]["time"], "3.000");
}

#[test]
fn junit_of_a_failed_run_with_hostile_text_validates_and_keeps_the_text() {
    let r = nasty_report();
    let seen = junit_seen(&r);
    let name = &r.collections[0].name;
    let s = suite(&seen, name);
    assert_eq!(s["cases"][0]["classname"], format!("docsweep.{name}"));
    assert!(case(s, "indexes")["message"]
        .as_str()
        .unwrap()
        .contains(EVIL));
    assert_eq!(case(s, "references")["status"], "failure");
    assert!(case(s, "classification")["text"]
        .as_str()
        .unwrap()
        .contains("\"]]>\""));
    let absent = suite(&seen, "absent");
    assert_eq!(
        case(absent, "classification")["message"],
        "collection absent is not in the source"
    );
    assert_eq!(case(absent, "indexes")["status"], "skipped");
    let run = suite(&seen, "docsweep");
    let scan = case(run, "scan");
    assert_eq!(scan["status"], "error");
    assert_eq!(scan["message"], format!("cannot read {EVIL}: broken"));
    assert_eq!(run["system_err"], format!("warning: w{EVIL}\n"));
    assert_eq!(seen["attrs"]["errors"], "1");
    assert_eq!(run["properties"]["source"], r.source);
}

#[test]
fn junit_of_a_clean_run_has_no_failures() {
    let seen = junit_seen(&clean_report());
    assert_eq!(seen["attrs"]["failures"], "0");
    let s = suite(&seen, "things");
    assert_eq!(s["attrs"]["tests"], "6"); // no baseline: no reconciliation case
    assert!(s["cases"]
        .as_array()
        .unwrap()
        .iter()
        .all(|c| c["status"] == "passed"));
}

// ---- Prometheus ---------------------------------------------------------------------------

fn metrics_seen(r: &Report, secs: f64) -> Value {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("docsweep.prom");
    report::write_metrics(r, secs, &file).unwrap();
    consumer(&["metrics", file.to_str().unwrap()])
}

/// The value of the sample of `family` whose labels include `labels`.
fn sample(seen: &Value, family: &str, labels: &[(&str, &str)]) -> f64 {
    let fam = &seen[family];
    assert_eq!(fam["type"], "gauge", "{family}");
    let hits: Vec<&Value> = fam["samples"]
        .as_array()
        .unwrap_or_else(|| panic!("no family {family}"))
        .iter()
        .filter(|s| labels.iter().all(|(k, v)| s["labels"][*k] == *v))
        .collect();
    assert_eq!(hits.len(), 1, "{family} {labels:?}: {hits:?}");
    hits[0]["value"].as_f64().unwrap()
}

#[test]
fn metrics_parse_with_prometheus_client() {
    let seen = metrics_seen(&shop_report(), 2.5);
    let o = [("collection", "orders")];
    assert_eq!(sample(&seen, "docsweep_status", &[]), 1.0);
    assert_eq!(sample(&seen, "docsweep_check_duration_seconds", &[]), 2.5);
    assert_eq!(
        sample(&seen, "docsweep_last_run_timestamp_seconds", &[]),
        1_795_600_021.0 // 2026-11-25T09:47:01Z
    );
    assert_eq!(sample(&seen, "docsweep_documents", &o), 1512.0);
    let class = |c: &str, v: &str| {
        sample(
            &seen,
            "docsweep_documents_by_class",
            &[("collection", "orders"), ("class", c), ("version", v)],
        )
    };
    assert_eq!(class("valid", "1"), 1448.0);
    assert_eq!(class("other_version", "2"), 40.0);
    // an empty label value is the same as no label
    let invalid: Vec<&Value> = seen["docsweep_documents_by_class"]["samples"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|s| s["labels"]["collection"] == "orders" && s["labels"]["class"] == "invalid")
        .collect();
    assert_eq!(invalid.len(), 1);
    assert_eq!(invalid[0]["value"], 24.0);
    assert_eq!(sample(&seen, "docsweep_unreadable", &o), 1.0);
    let kind = |f: &str, k: &str| sample(&seen, f, &[("collection", "orders"), ("kind", k)]);
    assert_eq!(kind("docsweep_index_findings", "missing"), 1.0);
    assert_eq!(kind("docsweep_index_findings", "unexpected"), 1.0);
    assert_eq!(kind("docsweep_structure", "missing_id"), 1.0);
    assert_eq!(kind("docsweep_structure", "oversize"), 0.0);
    assert_eq!(kind("docsweep_reconciliation", "changed"), 89.0);
    assert_eq!(
        kind("docsweep_reconciliation", "baseline_documents"),
        1500.0
    );
    assert_eq!(
        sample(
            &seen,
            "docsweep_orphans",
            &[("collection", "orders"), ("field", "customer.id")]
        ),
        5.0
    );
    assert_eq!(
        sample(
            &seen,
            "docsweep_duplicate_groups",
            &[("collection", "customers"), ("index", "email_1")]
        ),
        5.0
    );
    // 1 unreadable + 40 + 24 + 2 indexes + 11 orphans + 3 structure + 20 + 30 + 89
    assert_eq!(sample(&seen, "docsweep_findings", &o), 220.0);
    assert_eq!(sample(&seen, "docsweep_indexes_checked", &o), 1.0);
}

#[test]
fn metrics_escape_label_values_and_report_failed_runs() {
    let r = nasty_report();
    let seen = metrics_seen(&r, f64::NAN);
    let name = r.collections[0].name.as_str();
    assert_eq!(sample(&seen, "docsweep_status", &[]), 3.0);
    assert_eq!(
        seen["docsweep_check_duration_seconds"]["samples"][0]["value"],
        "nan"
    );
    assert_eq!(
        sample(&seen, "docsweep_documents", &[("collection", name)]),
        10.0
    );
    let weird_version = format!("2{EVIL}");
    assert_eq!(
        sample(
            &seen,
            "docsweep_documents_by_class",
            &[("collection", name), ("version", weird_version.as_str())]
        ),
        1.0
    );
    // indexes that could not be read are not compared; the unchecked reference has no sample
    assert_eq!(
        sample(&seen, "docsweep_indexes_checked", &[("collection", name)]),
        0.0
    );
    assert!(seen["docsweep_index_findings"]["samples"]
        .as_array()
        .unwrap()
        .is_empty());
    assert_eq!(
        seen["docsweep_orphans"]["samples"]
            .as_array()
            .unwrap()
            .len(),
        1
    );
    assert_eq!(
        sample(
            &seen,
            "docsweep_collection_present",
            &[("collection", "absent")]
        ),
        0.0
    );
    assert_eq!(
        sample(&seen, "docsweep_findings", &[("collection", "absent")]),
        1.0
    );
    assert_eq!(sample(&seen, "docsweep_warnings", &[]), 1.0);
}

#[test]
fn metrics_of_a_clean_run() {
    let text = report::metrics::render(&clean_report(), 0.25);
    assert!(text.contains("\ndocsweep_status 0\n"));
    assert!(text.contains("\ndocsweep_findings{collection=\"things\"} 0\n"));
    assert!(text.contains("\ndocsweep_check_duration_seconds 0.25\n"));
    assert!(!text.contains("docsweep_reconciliation{"));
    for line in text.lines().filter(|l| l.starts_with("# TYPE")) {
        assert!(line.ends_with(" gauge"), "{line}");
    }
}

// ---- files --------------------------------------------------------------------------------

#[test]
fn writers_replace_files_atomically() {
    let dir = tempfile::tempdir().unwrap();
    let r = shop_report();
    let (h, j, m) = (
        dir.path().join("report.html"),
        dir.path().join("junit.xml"),
        dir.path().join("docsweep.prom"),
    );
    for _ in 0..2 {
        report::write_html(&r, &h).unwrap();
        report::write_junit(&r, &j).unwrap();
        report::write_metrics(&r, 1.0, &m).unwrap();
    }
    assert_eq!(
        std::fs::read_to_string(&h).unwrap(),
        report::html::render(&r)
    );
    assert_eq!(
        std::fs::read_to_string(&j).unwrap(),
        report::junit::render(&r)
    );
    assert_eq!(
        std::fs::read_to_string(&m).unwrap(),
        report::metrics::render(&r, 1.0)
    );
    let names: Vec<String> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(names.len(), 3, "left-over temporary files: {names:?}");
    assert!(report::write_html(&r, &dir.path().join("no/such/dir/report.html")).is_err());
}

/// A bad output path is found before any document is read: exit 2, and the report
/// directory keeps the previous run's report.json and violations.csv, together.
#[test]
fn a_bad_output_path_is_refused_before_the_scan_and_keeps_the_last_report() {
    let w = crate::util::Workdir::new();
    let schemas = crate::util::example().join("schemas");
    let dump = format!(
        "dump:{}",
        crate::util::example().join("data/dump").display()
    );
    let run = |extra: &[&str]| {
        let mut args = vec![
            "check",
            "--no-progress",
            "--source",
            &dump,
            "--schemas",
            schemas.to_str().unwrap(),
            "--report-dir",
            "r",
        ];
        args.extend_from_slice(extra);
        w.docsweep(&args)
    };
    assert_eq!(run(&[]).code, 1);
    let (json, csv) = (w.read("r/report.json"), w.read("r/violations.csv"));
    std::fs::create_dir(w.path().join("adir")).unwrap();
    for (flag, path) in [
        ("--html", "/nonexistent/r.html"),
        ("--junit", "/nonexistent/j.xml"),
        ("--metrics", "/nonexistent/m.prom"),
        ("--html", "adir"),
    ] {
        let started = std::time::Instant::now();
        let r = run(&[flag, path, "--collection", "orders"]);
        assert_eq!(r.code, 2, "{flag} {path}: {}", r.stderr);
        assert!(
            r.stderr.contains(flag) && r.stderr.contains(path),
            "{}",
            r.stderr
        );
        assert!(r.stdout.is_empty(), "no summary: {}", r.stdout);
        assert!(started.elapsed() < std::time::Duration::from_secs(30));
        assert_eq!(
            w.read("r/report.json"),
            json,
            "{flag}: report.json untouched"
        );
        assert_eq!(
            w.read("r/violations.csv"),
            csv,
            "{flag}: violations.csv untouched"
        );
    }
}

/// A failed source prints no advice that needs the whole source.
#[test]
fn a_failed_source_gives_no_advice_but_to_fix_it() {
    let w = crate::util::Workdir::new();
    crate::util::copy_dir(
        &crate::util::example().join("data/dump-gz"),
        &w.path().join("d"),
    );
    // A gzip stream that breaks off halfway: the read fails mid-collection.
    let gz = w.path().join("d/shop/orders.bson.gz");
    let bytes = std::fs::read(&gz).unwrap();
    std::fs::write(
        &gz,
        [&bytes[..bytes.len() / 2], b"garbage".as_slice()].concat(),
    )
    .unwrap();
    let schemas = crate::util::example().join("schemas");
    let r = w.docsweep(&[
        "check",
        "--no-progress",
        "--source",
        "dump:d",
        "--schemas",
        schemas.to_str().unwrap(),
        "--report-dir",
        "r",
    ]);
    assert_eq!(r.code, 3, "{}{}", r.stdout, r.stderr);
    assert!(r.stdout.contains("status: FAILED"), "{}", r.stdout);
    assert!(r.stdout.contains("next: fix the source"), "{}", r.stdout);
    assert!(!r.stdout.contains("repair plan"), "{}", r.stdout);
    assert_eq!(w.read_json("r/report.json")["status"], "failed");
}

#[test]
fn trend_metrics_parse_with_prometheus_client() {
    use docsweep::report::trend::{CheckChange, SincePrevious};
    let mut r = shop_report();
    // Without a comparison the families are absent.
    let seen = metrics_seen(&r, 1.0);
    assert!(seen.get("docsweep_new_findings").is_none(), "{seen}");
    r.collections[1].since_previous = Some(SincePrevious {
        finished_at: "2026-11-24T09:47:01Z".into(),
        checks: vec![CheckChange {
            check: "invalid",
            previous: 25,
            now: 24,
            new: 3,
            resolved: 4,
        }],
    });
    let name = r.collections[1].name.clone();
    let seen = metrics_seen(&r, 1.0);
    let l = [("collection", name.as_str()), ("check", "invalid")];
    assert_eq!(sample(&seen, "docsweep_new_findings", &l), 3.0);
    assert_eq!(sample(&seen, "docsweep_resolved_findings", &l), 4.0);
}
