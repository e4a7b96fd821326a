//! Thresholds: findings under their `fail` level pass the gate (status `warn`, exit 0) and
//! every output says why; `--strict` fails on warnings; bad thresholds are usage errors
//! naming the file and the key.

use serde_json::Value;

use crate::util::{collection, example, Workdir};

const KINDS: [&str; 11] = [
    "invalid",
    "other_version",
    "unreadable",
    "orphans",
    "duplicates",
    "index_missing",
    "index_unexpected",
    "structure",
    "missing",
    "added",
    "changed",
];

/// `check` of the example dump against its baseline, with `extra` arguments.
fn check(w: &Workdir, out: &str, extra: &[&str]) -> (i32, Value, String) {
    let schemas = example().join("schemas");
    let dump = format!("dump:{}", example().join("data/dump").display());
    let baseline = format!("dump:{}", example().join("data/baseline").display());
    let junit = format!("{out}.xml");
    let metrics = format!("{out}.prom");
    let mut args = vec![
        "check",
        "--no-progress",
        "--source",
        &dump,
        "--baseline",
        &baseline,
        "--schemas",
        schemas.to_str().unwrap(),
        "--report-dir",
        out,
        "--junit",
        &junit,
        "--metrics",
        &metrics,
    ];
    args.extend_from_slice(extra);
    let run = w.docsweep(&args);
    assert!(run.code <= 2, "{}", run.stderr);
    let report = if run.code < 2 {
        w.read_json(&format!("{out}/report.json"))
    } else {
        Value::Null
    };
    (run.code, report, run.stdout + &run.stderr)
}

fn warn_on_everything() -> Vec<String> {
    KINDS
        .iter()
        .flat_map(|k| ["--warn-on".to_string(), format!("{k}=1")])
        .collect()
}

#[test]
fn findings_under_their_fail_thresholds_warn_and_exit_0() {
    let w = Workdir::new();
    let flags = warn_on_everything();
    let args: Vec<&str> = flags.iter().map(String::as_str).collect();
    let (code, report, out) = check(&w, "r", &args);
    assert_eq!(code, 0, "{out}");
    assert_eq!(report["status"], "warn");
    let orders = collection(&report, "orders");
    let invalid = orders["verdict"]
        .as_array()
        .unwrap()
        .iter()
        .find(|v| v["check"] == "invalid")
        .expect("a verdict for invalid");
    assert_eq!(invalid["level"], "warn");
    assert_eq!(invalid["threshold"], 1);
    assert_eq!(invalid["observed"], orders["classes"]["invalid"]);
    assert!(
        out.contains("status: warn") && out.contains("WARN  orders invalid"),
        "{out}"
    );
    let junit = w.read("r.xml");
    assert!(!junit.contains("<failure"), "{junit}");
    assert!(junit.contains("gate: warn: invalid"), "{junit}");
    assert!(w.read("r.prom").contains("docsweep_status 2"));

    // --strict: a warning fails.
    let mut strict = args.clone();
    strict.push("--strict");
    let (code, report, _) = check(&w, "s", &strict);
    assert_eq!((code, &report["status"]), (1, &Value::from("findings")));
}

#[test]
fn thresholds_in_docsweep_toml_are_per_collection_and_percentages() {
    let w = Workdir::new();
    let mut toml = String::from("[thresholds]\n");
    for k in KINDS {
        toml.push_str(&format!("{k} = {{ warn = 1, fail = \"100%\" }}\n"));
    }
    toml.push_str("[thresholds.collections.orders]\ninvalid = { fail = 1 }\n");
    std::fs::write(w.path().join("docsweep.toml"), &toml).unwrap();
    let (code, report, out) = check(&w, "r", &[]);
    assert_eq!(code, 1, "{out}");
    assert_eq!(report["status"], "findings");
    let level = |coll: &str, check: &str| -> Value {
        collection(&report, coll)["verdict"]
            .as_array()
            .unwrap()
            .iter()
            .find(|v| v["check"] == check)
            .map(|v| v["level"].clone())
            .unwrap_or(Value::Null)
    };
    assert_eq!(level("orders", "invalid"), "fail", "the orders override");
    assert_eq!(level("orders", "other_version"), "warn", "under 100%");
    assert_eq!(level("customers", "duplicates"), "warn");
    let junit = w.read("r.xml");
    assert_eq!(junit.matches("<failure").count(), 1, "{junit}");

    // Without the override every check is under its fail level.
    let toml = toml.replace(
        "[thresholds.collections.orders]\ninvalid = { fail = 1 }\n",
        "",
    );
    std::fs::write(w.path().join("docsweep.toml"), &toml).unwrap();
    let (code, report, out) = check(&w, "r2", &[]);
    assert_eq!(
        (code, &report["status"]),
        (0, &Value::from("warn")),
        "{out}"
    );
}

#[test]
fn bad_thresholds_are_usage_errors_naming_the_key() {
    let w = Workdir::new();
    for (toml, key) in [
        (
            "[thresholds]\ninvalidd = { fail = 1 }\n",
            "thresholds.invalidd",
        ),
        (
            "[thresholds]\ninvalid = { fail = \"lots\" }\n",
            "thresholds.invalid.fail",
        ),
        ("[thresholds]\ninvalid = { fial = 1 }\n", "fial"),
    ] {
        std::fs::write(w.path().join("docsweep.toml"), toml).unwrap();
        let (code, _, out) = check(&w, "r", &[]);
        assert_eq!(code, 2, "{toml}: {out}");
        assert!(
            out.contains(key) && out.contains("docsweep.toml"),
            "{toml}: {out}"
        );
    }
    std::fs::remove_file(w.path().join("docsweep.toml")).unwrap();
    let (code, _, out) = check(&w, "r", &["--fail-on", "orphans=lots"]);
    assert_eq!(code, 2);
    assert!(out.contains("--fail-on"), "{out}");
}

/// A collection `items` with three versions (target 1) read from an export: 10 documents
/// of version 1, 2 of version 2, 5 of version 3 and 1 of none.
fn three_versions(w: &Workdir) {
    let dir = w.path().join("schemas/items");
    std::fs::create_dir_all(&dir).unwrap();
    let mut contract = String::from("collection = \"items\"\ntarget = 1\n");
    for (v, field) in [(1, "a"), (2, "b"), (3, "c")] {
        contract.push_str(&format!(
            "[[versions]]\nversion = {v}\nschema = \"v{v}.schema.json\"\n"
        ));
        let schema = serde_json::json!({
            "$schema": "https://json-schema.org/draft/2020-12/schema",
            "type": "object",
            "properties": { "_id": {}, field: { "type": "integer" } },
            "required": [field],
            "additionalProperties": false,
        });
        std::fs::write(dir.join(format!("v{v}.schema.json")), schema.to_string()).unwrap();
    }
    std::fs::write(dir.join("contract.toml"), contract).unwrap();
    let mut lines = String::new();
    let mut id = 0;
    for (field, n) in [("a", 10), ("b", 2), ("c", 5), ("z", 1)] {
        for _ in 0..n {
            id += 1;
            lines.push_str(&format!("{{\"_id\": {id}, \"{field}\": 1}}\n"));
        }
    }
    std::fs::create_dir_all(w.path().join("export")).unwrap();
    std::fs::write(w.path().join("export/items.json"), lines).unwrap();
}

/// `check` of the three-version export with `extra` arguments: exit code, report, output.
fn check_items(w: &Workdir, extra: &[&str]) -> (i32, Value, String) {
    let mut args = vec![
        "check",
        "--no-progress",
        "--source",
        "export:export",
        "--schemas",
        "schemas",
        "--report-dir",
        "r",
        "--junit",
        "r.xml",
    ];
    args.extend_from_slice(extra);
    let run = w.docsweep(&args);
    let report = if run.code < 2 {
        w.read_json("r/report.json")
    } else {
        Value::Null
    };
    (run.code, report, run.stdout + &run.stderr)
}

/// `(version, level, observed, threshold)` of each `other_version` verdict row of items.
fn other_version_rows(report: &Value) -> Vec<(u64, String, u64, Value)> {
    collection(report, "items")["verdict"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|v| v["check"] == "other_version")
        .map(|v| {
            (
                v["version"].as_u64().expect("the row says which version"),
                v["level"].as_str().unwrap().to_string(),
                v["observed"].as_u64().unwrap(),
                v["threshold"].clone(),
            )
        })
        .collect()
}

#[test]
fn other_version_thresholds_are_per_version_globally_and_per_collection() {
    let w = Workdir::new();
    three_versions(&w);
    let toml = r#"
[thresholds]
invalid = { warn = 1 }
other_version = { warn = 1 }
"other_version:2" = { fail = 1 }
[thresholds.collections.items]
"other_version:3" = { fail = 5 }
"#;
    std::fs::write(w.path().join("docsweep.toml"), toml).unwrap();
    let (code, report, out) = check_items(&w, &[]);
    assert_eq!(code, 1, "{out}");
    let items = collection(&report, "items");
    assert_eq!(items["classes"]["other_version"]["2"], 2, "{items}");
    assert_eq!(items["classes"]["other_version"]["3"], 5, "{items}");
    assert_eq!(
        other_version_rows(&report),
        [
            (2, "fail".into(), 2, Value::from(1)),
            (3, "fail".into(), 5, Value::from(5)),
        ]
    );
    assert!(
        out.contains("FAIL  items other_version:2: 2 (reached 1)")
            && out.contains("FAIL  items other_version:3: 5 (reached 5)"),
        "{out}"
    );

    // Version 3 under its collection's fail level only warns; version 2 still fails.
    std::fs::write(
        w.path().join("docsweep.toml"),
        toml.replace("fail = 5", "fail = 6"),
    )
    .unwrap();
    let (code, report, out) = check_items(&w, &[]);
    assert_eq!((code, &report["status"]), (1, &Value::from("findings")));
    assert_eq!(
        other_version_rows(&report),
        [
            (2, "fail".into(), 2, Value::from(1)),
            (3, "warn".into(), 5, Value::from(1)),
        ],
        "{out}"
    );

    // A flag for version 2 wins over docsweep.toml: nothing fails any more.
    let (code, report, out) = check_items(&w, &["--fail-on", "other_version:2=50%"]);
    assert_eq!(
        (code, &report["status"]),
        (0, &Value::from("warn")),
        "{out}"
    );
    assert_eq!(
        other_version_rows(&report)[0],
        (2, "warn".into(), 2, Value::from(1))
    );
    let junit = w.read("r.xml");
    assert!(
        junit.contains("gate: warn: other_version:2 2")
            && junit.contains("gate: warn: other_version:3 5"),
        "{junit}"
    );

    // Without thresholds, as always: every other-version document fails, no verdict.
    std::fs::remove_file(w.path().join("docsweep.toml")).unwrap();
    let (code, report, _) = check_items(&w, &[]);
    assert_eq!(code, 1);
    assert!(collection(&report, "items").get("verdict").is_none());

    // A version on another kind, or one that is no number: exit 2 naming file and key.
    for (toml, key) in [
        (
            "[thresholds]\n\"invalid:2\" = { fail = 1 }\n",
            "thresholds.invalid:2",
        ),
        (
            "[thresholds.collections.items]\n\"other_version:two\" = { fail = 1 }\n",
            "thresholds.collections.items.other_version:two",
        ),
    ] {
        std::fs::write(w.path().join("docsweep.toml"), toml).unwrap();
        let (code, _, out) = check_items(&w, &[]);
        assert_eq!(code, 2, "{toml}: {out}");
        assert!(
            out.contains(key) && out.contains("docsweep.toml"),
            "{toml}: {out}"
        );
    }
}

/// The fenced block of `lang` that follows `heading` in the README.
fn readme_block(readme: &str, heading: &str, lang: &str) -> String {
    let section = &readme[readme.find(heading).expect("the README section")..];
    let fence = format!("```{lang}\n");
    let start = section.find(&fence).expect("the block") + fence.len();
    let len = section[start..].find("```").expect("the block's end");
    section[start..start + len].to_string()
}

#[test]
fn the_readme_post_rollback_gate_runs_as_shown() {
    let readme = std::fs::read_to_string(crate::util::repo().join("README.md")).unwrap();
    let heading = "### A post-rollback gate on the bundled example";
    let toml = readme_block(&readme, heading, "toml");
    let shown = readme_block(&readme, heading, "text");
    // As in examples/shop: its data and schemas next to gate.toml.
    let w = Workdir::new();
    for dir in ["data", "schemas"] {
        std::os::unix::fs::symlink(example().join(dir), w.path().join(dir)).unwrap();
    }
    std::fs::write(w.path().join("gate.toml"), &toml).unwrap();
    let run = w.docsweep(&["check", "--config", "gate.toml", "--no-progress"]);
    assert_eq!(run.code, 1, "{}{}", run.stdout, run.stderr);
    let gate: Vec<&str> = run
        .stdout
        .lines()
        .skip_while(|l| *l != "gate:")
        .take_while(|l| !l.starts_with("report:"))
        .collect();
    assert_eq!(gate, shown.lines().collect::<Vec<_>>(), "{}", run.stdout);
    let report = w.read_json("gate-report/report.json");
    assert_eq!(report["status"], "findings");
    let log = w.read("gate-notifications.log");
    assert!(
        log.starts_with("findings /") && log.trim_end().ends_with("gate-report/report.json"),
        "{log}"
    );
    let audit: Value = serde_json::from_str(w.read("gate-audit.jsonl").trim()).unwrap();
    assert_eq!(audit["verdict"]["orders"], "fail");
    assert_eq!(audit["notify"][0]["ok"], true);
}
