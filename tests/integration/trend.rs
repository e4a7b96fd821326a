//! "What changed since the last sweep": `since_previous` in report.json compares each
//! check with the previous run (by document where violations.csv names them), the summary,
//! the metrics and `on = ["new"]` hooks follow it; a missing previous report changes
//! nothing and an unreadable one is a warning.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use serde_json::Value;

use crate::util::{collection, copy_dir, example, Workdir};

/// The example dump, copied into the working directory as `dump/`.
fn copy_dump(w: &Workdir) {
    copy_dir(&example().join("data/dump"), &w.path().join("dump"));
}

/// `check` of `dump/` (the working directory's copy) into `out`, with `extra` arguments.
fn check(w: &Workdir, out: &str, extra: &[&str]) -> (i32, Value, String) {
    let schemas = example().join("schemas");
    let metrics = format!("{out}.prom");
    let mut args = vec![
        "check",
        "--no-progress",
        "--source",
        "dump:dump",
        "--schemas",
        schemas.to_str().unwrap(),
        "--report-dir",
        out,
        "--metrics",
        &metrics,
        "--audit",
        "audit.jsonl",
    ];
    args.extend_from_slice(extra);
    let run = w.docsweep(&args);
    assert!(run.code == 0 || run.code == 1, "{}", run.stderr);
    let report = w.read_json(&format!("{out}/report.json"));
    (run.code, report, run.stdout + &run.stderr)
}

/// The check kind a violations.csv finding counts towards.
fn kind(finding: &str) -> Option<&'static str> {
    Some(match finding {
        "invalid" => "invalid",
        "other_version" => "other_version",
        "unreadable" => "unreadable",
        "missing_id" | "duplicate_id" | "too_deep" | "oversize" => "structure",
        f if f.starts_with("duplicate:") => "duplicates",
        f if f.starts_with("orphan:") => "orphans",
        _ => return None,
    })
}

type Ids = BTreeMap<(String, &'static str), BTreeSet<(String, String)>>;

/// violations.csv's identities, (collection, _id, finding), by collection and kind.
fn identities(w: &Workdir, csv: &str) -> Ids {
    let mut ids = Ids::new();
    let mut r = csv::Reader::from_path(w.path().join(csv)).unwrap();
    for row in r.records() {
        let row = row.unwrap();
        if let Some(k) = kind(&row[2]) {
            ids.entry((row[0].to_string(), k))
                .or_default()
                .insert((row[1].to_string(), row[2].to_string()));
        }
    }
    ids
}

/// The `_id`s violations.csv names in `coll`, with their findings.
fn findings_by_id(w: &Workdir, csv: &str, coll: &str) -> BTreeMap<String, BTreeSet<String>> {
    let mut m: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    let mut r = csv::Reader::from_path(w.path().join(csv)).unwrap();
    for row in r.records() {
        let row = row.unwrap();
        if &row[0] == coll {
            m.entry(row[1].to_string())
                .or_default()
                .insert(row[2].to_string());
        }
    }
    m
}

/// A document's `_id` as violations.csv writes it (relaxed Extended JSON).
fn csv_id(doc: &bson::Document) -> Option<String> {
    let id = doc.get("_id")?.clone();
    Some(serde_json::to_string(&id.into_relaxed_extjson()).unwrap())
}

/// Rewrites the readable documents of a `.bson` file: `f` returns None to remove one.
/// Unreadable bytes stay as they are.
fn edit(file: &Path, mut f: impl FnMut(bson::Document) -> Option<bson::Document>) {
    use docsweep::source::RecordReader as _;
    let bytes = std::fs::read(file).unwrap();
    let mut reader = docsweep::source::BsonReader::new(
        Box::new(std::io::Cursor::new(bytes.clone())),
        None,
        file.to_path_buf(),
    );
    let mut out = Vec::new();
    let mut pos = 0usize;
    while let Some(batch) = reader.next_batch(100).unwrap() {
        for rec in batch.records.iter().filter(|r| r.broken.is_none()) {
            let docsweep::source::Location::Offset(at) = rec.location else {
                panic!("a dump record has an offset")
            };
            let raw = batch.bytes(rec);
            let Ok(doc) = bson::Document::from_reader(raw) else {
                continue;
            };
            let at = at as usize;
            out.extend_from_slice(&bytes[pos..at]);
            pos = at + raw.len();
            if let Some(d) = f(doc) {
                d.to_writer(&mut out).unwrap();
            }
        }
    }
    out.extend_from_slice(&bytes[pos..]);
    std::fs::write(file, out).unwrap();
}

/// What the test plants in orders: `removed` documents that are only invalid now gone,
/// and `broken` valid documents made invalid (a `status` no version allows).
struct Planted {
    removed: BTreeSet<String>,
    broken: BTreeSet<String>,
}

fn plant(w: &Workdir, csv: &str, remove: usize, break_: usize) -> Planted {
    let before = findings_by_id(w, csv, "orders");
    let only_invalid: BTreeSet<String> = before
        .iter()
        .filter(|(_, f)| f.len() == 1 && f.contains("invalid"))
        .map(|(id, _)| id.clone())
        .take(remove)
        .collect();
    assert_eq!(only_invalid.len(), remove, "the example has invalid orders");
    let mut planted = Planted {
        removed: BTreeSet::new(),
        broken: BTreeSet::new(),
    };
    edit(&w.path().join("dump/shop/orders.bson"), |mut doc| {
        let Some(id) = csv_id(&doc) else {
            return Some(doc);
        };
        if only_invalid.contains(&id) {
            planted.removed.insert(id);
            return None;
        }
        if planted.broken.len() < break_ && !before.contains_key(&id) && doc.contains_key("status")
        {
            doc.insert("status", 12345_i32);
            planted.broken.insert(id);
        }
        Some(doc)
    });
    assert_eq!(planted.removed.len(), remove);
    assert_eq!(planted.broken.len(), break_);
    planted
}

fn since<'a>(report: &'a Value, coll: &str, check: &str) -> Option<&'a Value> {
    collection(report, coll)["since_previous"]["checks"]
        .as_array()
        .unwrap_or_else(|| panic!("{coll}: no since_previous"))
        .iter()
        .find(|c| c["check"] == check)
}

/// Every check's `new` and `resolved` are the identities in one violations.csv and not
/// the other; `previous` and `now` are the two reports' values.
fn assert_matches_csv(w: &Workdir, report: &Value, before_csv: &str, after_csv: &str) {
    let (before, after) = (identities(w, before_csv), identities(w, after_csv));
    let empty = BTreeSet::new();
    for c in report["collections"].as_array().unwrap() {
        let name = c["name"].as_str().unwrap();
        for ch in c["since_previous"]["checks"].as_array().unwrap() {
            let check = ch["check"].as_str().unwrap();
            let Some(k) = kind_of_check(check) else {
                // Index checks: by the count.
                let (p, n) = (
                    ch["previous"].as_u64().unwrap(),
                    ch["now"].as_u64().unwrap(),
                );
                assert_eq!(ch["new"], n.saturating_sub(p), "{name} {check}");
                assert_eq!(ch["resolved"], p.saturating_sub(n), "{name} {check}");
                continue;
            };
            let key = (name.to_string(), k);
            let b = before.get(&key).unwrap_or(&empty);
            let a = after.get(&key).unwrap_or(&empty);
            assert_eq!(ch["new"], a.difference(b).count(), "{name} {check}");
            assert_eq!(ch["resolved"], b.difference(a).count(), "{name} {check}");
        }
    }
}

fn kind_of_check(check: &str) -> Option<&'static str> {
    [
        "invalid",
        "other_version",
        "unreadable",
        "structure",
        "duplicates",
        "orphans",
    ]
    .into_iter()
    .find(|k| *k == check)
}

#[test]
fn second_run_shows_what_was_planted() {
    let w = Workdir::new();
    copy_dump(&w);
    let (code1, first, _) = check(&w, "out", &[]);
    assert_eq!(code1, 1);
    assert!(collection(&first, "orders").get("since_previous").is_none());
    std::fs::copy(w.path().join("out/violations.csv"), w.path().join("v1.csv")).unwrap();
    let invalid_before = collection(&first, "orders")["classes"]["invalid"]
        .as_u64()
        .unwrap();

    let planted = plant(&w, "out/violations.csv", 2, 1);
    let (code2, second, out) = check(&w, "out", &[]);
    assert_eq!(code2, 1);
    let inv = since(&second, "orders", "invalid").expect("invalid compared");
    assert_eq!(inv["previous"], invalid_before);
    assert_eq!(
        inv["now"],
        invalid_before - planted.removed.len() as u64 + planted.broken.len() as u64
    );
    assert_eq!(inv["new"], planted.broken.len());
    assert_eq!(inv["resolved"], planted.removed.len());
    assert_eq!(
        collection(&second, "orders")["since_previous"]["finished_at"],
        first["finished_at"]
    );
    // The broken documents are the new invalid ones.
    let now = findings_by_id(&w, "out/violations.csv", "orders");
    for id in &planted.broken {
        assert!(now[id].contains("invalid"), "{id}");
    }
    // Nothing else changed in customers.
    for ch in collection(&second, "customers")["since_previous"]["checks"]
        .as_array()
        .unwrap()
    {
        assert_eq!(
            (&ch["new"], &ch["resolved"]),
            (&0.into(), &0.into()),
            "{ch}"
        );
        assert_eq!(ch["previous"], ch["now"]);
    }
    assert_matches_csv(&w, &second, "v1.csv", "out/violations.csv");
    // Checks with nothing before or now are left out.
    for c in second["collections"].as_array().unwrap() {
        for ch in c["since_previous"]["checks"].as_array().unwrap() {
            assert!(ch["previous"] != 0 || ch["now"] != 0, "{ch}");
        }
    }
    assert!(
        out.contains(&format!(
            "  since last     +{} invalid, -{} invalid",
            planted.broken.len(),
            planted.removed.len()
        )),
        "{out}"
    );
    assert!(second.get("warnings").is_none(), "{second}");

    // The metrics say the same, as valid exposition format.
    let prom = w.read("out.prom");
    let new_line = format!(
        "docsweep_new_findings{{collection=\"orders\",check=\"invalid\"}} {}",
        planted.broken.len()
    );
    let resolved_line = format!(
        "docsweep_resolved_findings{{collection=\"orders\",check=\"invalid\"}} {}",
        planted.removed.len()
    );
    assert!(prom.contains(&new_line), "{prom}");
    assert!(prom.contains(&resolved_line), "{prom}");
    assert!(prom.contains("# TYPE docsweep_new_findings gauge"));
}

#[test]
fn previous_names_another_report_dir() {
    let w = Workdir::new();
    copy_dump(&w);
    let (_, first, _) = check(&w, "first", &[]);
    let planted = plant(&w, "first/violations.csv", 1, 2);
    // A fresh report directory: nothing to compare with by default.
    let (_, alone, _) = check(&w, "alone", &[]);
    assert!(collection(&alone, "orders").get("since_previous").is_none());
    let (code, second, _) = check(&w, "second", &["--previous", "first"]);
    assert_eq!(code, 1);
    let inv = since(&second, "orders", "invalid").unwrap();
    assert_eq!(inv["new"], planted.broken.len());
    assert_eq!(inv["resolved"], planted.removed.len());
    assert_eq!(
        collection(&second, "orders")["since_previous"]["finished_at"],
        first["finished_at"]
    );
    assert_matches_csv(&w, &second, "first/violations.csv", "second/violations.csv");

    // `previous` in docsweep.toml, relative to the file; here a report.json itself.
    std::fs::write(
        w.path().join("docsweep.toml"),
        "previous = \"first/report.json\"\n",
    )
    .unwrap();
    let (_, third, _) = check(&w, "third", &["--config", "docsweep.toml"]);
    assert_eq!(
        since(&third, "orders", "invalid").unwrap(),
        since(&second, "orders", "invalid").unwrap()
    );

    // Without violations.csv next to it: by the difference of the counts, with a warning.
    std::fs::remove_file(w.path().join("first/violations.csv")).unwrap();
    let (_, fourth, _) = check(&w, "fourth", &["--previous", "first"]);
    let inv = since(&fourth, "orders", "invalid").unwrap();
    let (p, n) = (
        inv["previous"].as_u64().unwrap(),
        inv["now"].as_u64().unwrap(),
    );
    assert_eq!(inv["new"], n.saturating_sub(p));
    assert_eq!(inv["resolved"], p.saturating_sub(n));
    assert!(
        fourth["warnings"].to_string().contains("violations"),
        "{fourth}"
    );
}

/// Timestamps set aside, the report is byte for byte what it is without a comparison.
fn normalized(mut report: Value) -> Vec<u8> {
    report["started_at"] = "T".into();
    report["finished_at"] = "T".into();
    for c in report["collections"].as_array_mut().unwrap() {
        c.as_object_mut().unwrap().remove("since_previous");
    }
    let mut text = serde_json::to_vec_pretty(&report).unwrap();
    text.push(b'\n');
    text
}

#[test]
fn no_previous_report_no_field() {
    let w = Workdir::new();
    copy_dump(&w);
    let (_, first, _) = check(&w, "first", &[]);
    let text = w.read("first/report.json");
    assert!(!text.contains("since_previous"));
    // The re-serialization is the file itself: the comparison below is byte for byte.
    let mut again = serde_json::to_vec_pretty(&first).unwrap();
    again.push(b'\n');
    assert_eq!(String::from_utf8(again).unwrap(), text);
    let (_, second, _) = check(&w, "second", &["--previous", "first"]);
    assert!(collection(&second, "orders")
        .get("since_previous")
        .is_some());
    assert_eq!(
        String::from_utf8(normalized(second)).unwrap(),
        String::from_utf8(normalized(first)).unwrap()
    );
}

#[test]
fn unreadable_previous_report_is_a_warning() {
    let w = Workdir::new();
    copy_dump(&w);
    let (code, _, _) = check(&w, "out", &[]);
    std::fs::write(w.path().join("out/report.json"), "garbage{").unwrap();
    let (code2, report, out) = check(&w, "out", &[]);
    assert_eq!(code2, code);
    assert!(collection(&report, "orders")
        .get("since_previous")
        .is_none());
    let warnings = report["warnings"].to_string();
    assert!(warnings.contains("previous report"), "{report}");
    assert!(out.contains("warning: previous report"), "{out}");

    // Another format: a warning too.
    std::fs::create_dir(w.path().join("other")).unwrap();
    std::fs::write(
        w.path().join("other/report.json"),
        r#"{"format": "something-else/2", "collections": []}"#,
    )
    .unwrap();
    let (code3, report, _) = check(&w, "out", &["--previous", "other"]);
    assert_eq!(code3, code);
    assert!(report["warnings"].to_string().contains("something-else/2"));
    // A named previous report that does not exist: a warning.
    let (code4, report, _) = check(&w, "out", &["--previous", "nowhere"]);
    assert_eq!(code4, code);
    assert!(report["warnings"].to_string().contains("nowhere"));

    // Another source: compared anyway, with a warning.
    copy_dir(&w.path().join("dump"), &w.path().join("dump2"));
    let schemas = example().join("schemas");
    let run = w.docsweep(&[
        "check",
        "--no-progress",
        "--source",
        "dump:dump2",
        "--schemas",
        schemas.to_str().unwrap(),
        "--report-dir",
        "out2",
        "--previous",
        "out",
        "--audit",
        "audit.jsonl",
    ]);
    assert_eq!(run.code, code);
    let report = w.read_json("out2/report.json");
    assert!(collection(&report, "orders")
        .get("since_previous")
        .is_some());
    assert!(
        report["warnings"]
            .to_string()
            .contains("another source or database"),
        "{report}"
    );
}

#[test]
fn notify_new_fires_only_on_new_findings() {
    let w = Workdir::new();
    copy_dump(&w);
    let log = w.path().join("hook.log");
    std::fs::write(
        w.path().join("docsweep.toml"),
        format!(
            "[[notify]]\non = [\"new\"]\ncommand = [\"sh\", \"-c\", \"echo fired >> '{}'\"]\n",
            log.display()
        ),
    )
    .unwrap();
    let fired = || {
        std::fs::read_to_string(&log)
            .map(|t| t.lines().count())
            .unwrap_or(0)
    };
    let cfg = ["--config", "docsweep.toml"];
    // No previous report: every finding is new.
    check(&w, "out", &cfg);
    assert_eq!(fired(), 1);
    // The same data again: nothing new.
    check(&w, "out", &cfg);
    assert_eq!(fired(), 1);
    // Findings only resolved: nothing new.
    plant(&w, "out/violations.csv", 2, 0);
    let (_, report, _) = check(&w, "out", &cfg);
    assert_eq!(since(&report, "orders", "invalid").unwrap()["resolved"], 2);
    assert_eq!(fired(), 1);
    // A new invalid document: it fires.
    plant(&w, "out/violations.csv", 0, 1);
    let (_, report, _) = check(&w, "out", &cfg);
    assert_eq!(since(&report, "orders", "invalid").unwrap()["new"], 1);
    assert_eq!(fired(), 2);
}

#[test]
fn merge_compares_with_the_previous_merge() {
    use crate::partition::{partition_and_merge, project};
    let w = project();
    assert_eq!(partition_and_merge(&w, 2, &[]), 1);
    let first = w.read_json("merged/report.json");
    assert!(collection(&first, "orders").get("since_previous").is_none());
    assert_eq!(partition_and_merge(&w, 2, &[]), 1);
    let second = w.read_json("merged/report.json");
    assert_eq!(
        collection(&second, "orders")["since_previous"]["finished_at"],
        first["finished_at"]
    );
    for c in second["collections"].as_array().unwrap() {
        for ch in c["since_previous"]["checks"].as_array().unwrap() {
            assert_eq!(
                (&ch["new"], &ch["resolved"]),
                (&0.into(), &0.into()),
                "{ch}"
            );
            assert_eq!(ch["previous"], ch["now"], "{ch}");
        }
    }
    // A partition's own run compares nothing (it writes no report.json).
    assert!(!w.path().join("parts/0/report.json").exists());
}

#[test]
fn hooks_and_the_audit_line_carry_since_previous() {
    use crate::notify::Server;
    let server = Server::start(|_, _| 200);
    let w = Workdir::new();
    copy_dump(&w);
    std::fs::write(
        w.path().join("docsweep.toml"),
        format!(
            r#"
[[notify]]
on = ["always"]
webhook = "{}"
[[notify]]
on = ["always"]
webhook = "{}"
format = "slack"
[[notify]]
on = ["always"]
webhook = "{}"
format = "pagerduty"
routing_key_env = "TEST_PD_KEY"
"#,
            server.url("/json"),
            server.url("/slack"),
            server.url("/pd")
        ),
    )
    .unwrap();
    // As `check` does, with the routing key and without proxy variables (the server is on
    // 127.0.0.1).
    let check = |w: &Workdir, out: &str| -> (i32, Value, String) {
        let schemas = example().join("schemas");
        let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_docsweep"));
        cmd.args([
            "check",
            "--no-progress",
            "--source",
            "dump:dump",
            "--schemas",
        ])
        .arg(&schemas)
        .args(["--report-dir", out, "--audit", "audit.jsonl"])
        .current_dir(w.path())
        .env("TEST_PD_KEY", "R0UTING");
        for var in ["ALL_PROXY", "HTTPS_PROXY", "HTTP_PROXY"] {
            cmd.env_remove(var).env_remove(var.to_lowercase());
        }
        let o = cmd.output().unwrap();
        let stderr = String::from_utf8_lossy(&o.stderr).into_owned();
        assert!(
            !stderr.contains("panicked") && !stderr.contains("notify["),
            "{stderr}"
        );
        let report = w.read_json(&format!("{out}/report.json"));
        (o.status.code().unwrap_or(-1), report, stderr)
    };
    let (_, first, _) = check(&w, "out");
    // Without a previous run the payloads have no comparison.
    assert!(server.requests("/json")[0].json()["since_previous"].is_null());
    let planted = plant(&w, "out/violations.csv", 2, 1);
    let (_, second, _) = check(&w, "out");
    let want = &collection(&second, "orders")["since_previous"];
    let (new, resolved) = (planted.broken.len(), planted.removed.len());

    // json: per collection as report.json has it, and the totals of the run.
    let json = server.requests("/json").pop().unwrap().json();
    assert_eq!(&collection(&json, "orders")["since_previous"], want);
    let total = |field: &str| -> u64 {
        second["collections"]
            .as_array()
            .unwrap()
            .iter()
            .flat_map(|c| c["since_previous"]["checks"].as_array().unwrap())
            .map(|ch| ch[field].as_u64().unwrap())
            .sum()
    };
    assert_eq!(json["since_previous"]["new"], total("new"));
    assert_eq!(json["since_previous"]["resolved"], total("resolved"));
    assert_eq!(json["since_previous"]["finished_at"], first["finished_at"]);

    // slack: the changes in the collection's line.
    let text = server.requests("/slack").pop().unwrap().json()["text"]
        .as_str()
        .unwrap()
        .to_string();
    let line = text
        .lines()
        .find(|l| l.starts_with("• orders"))
        .unwrap_or_else(|| panic!("{text}"));
    assert!(
        line.contains(&format!(
            "since the last sweep ({}): +{new} invalid, -{resolved} invalid",
            first["finished_at"].as_str().unwrap()
        )),
        "{line}"
    );

    // pagerduty: in the event's custom_details and summary.
    let events: Vec<Value> = server
        .requests("/pd")
        .iter()
        .map(super::notify::Request::json)
        .filter(|e| e["payload"]["custom_details"]["collection"] == "orders")
        .collect();
    let last = events.last().unwrap();
    assert_eq!(&last["payload"]["custom_details"]["since_previous"], want);
    assert!(
        last["payload"]["summary"]
            .as_str()
            .unwrap()
            .contains(&format!(
                "+{new} invalid, -{resolved} invalid since the last sweep"
            )),
        "{last}"
    );

    // The audit line of the second check.
    let audit: Vec<Value> = w
        .read("audit.jsonl")
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert!(audit[0].get("since_previous").is_none(), "{}", audit[0]);
    assert_eq!(&audit[1]["since_previous"]["orders"], want);
    assert_eq!(
        audit[1]["since_previous"]["customers"],
        collection(&second, "customers")["since_previous"]
    );
}
