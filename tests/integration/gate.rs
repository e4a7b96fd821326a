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
