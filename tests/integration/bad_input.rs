//! Bad input never panics: corpus and crafted files through the real executable.
//!
//! Each test builds a tiny dump or export in a temp dir, runs `docsweep check` on it and
//! asserts the exit code, the counts in report.json and that nothing panicked. The last tests
//! replay every file in `tests/corpus/` (fuzzer regressions and hand-made bad inputs) through
//! the decoders and readers in-process, with the fuzz targets' invariants, and as the block
//! of a mongodump archive.

use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::Command;

use docsweep::source::{BsonReader, JsonReader, Location, RecordReader};
use docsweep::value::{
    fingerprint, from_bson, from_ejson, from_json, parse_json, to_bson, JsonError,
};
use serde_json::{json, Value};

// ---------------------------------------------------------------- fixtures

/// A collection contract that accepts any document, so every finding is about the input.
const CONTRACT: &str = r#"collection = "items"
target = 1

[[versions]]
version = 1
schema = "v1.schema.json"
indexes = []
references = []
"#;

const SCHEMA: &str =
    r#"{"$schema": "https://json-schema.org/draft/2020-12/schema", "type": "object"}"#;

/// A scratch directory with `schemas/items/` and helpers to write sources and run `check`.
struct Case {
    dir: tempfile::TempDir,
}

/// One run of `docsweep check`.
struct Checked {
    code: i32,
    stderr: String,
    report: Option<Value>,
    csv: String,
}

impl Checked {
    fn items(&self) -> &Value {
        let report = self.report.as_ref().expect("report.json written");
        report["collections"]
            .as_array()
            .and_then(|a| a.iter().find(|c| c["name"] == "items"))
            .unwrap_or_else(|| panic!("no `items` in report: {report}"))
    }

    fn count(&self, field: &str) -> u64 {
        self.items()[field]
            .as_u64()
            .unwrap_or_else(|| panic!("no {field}: {}", self.items()))
    }

    fn structure(&self, field: &str) -> u64 {
        self.items()["structure"][field]
            .as_u64()
            .unwrap_or_else(|| panic!("no structure.{field}: {}", self.items()))
    }

    /// `violations.csv` rows whose finding is `kind`.
    fn rows(&self, kind: &str) -> Vec<String> {
        self.csv
            .lines()
            .filter(|l| l.split(',').any(|f| f == kind))
            .map(str::to_string)
            .collect()
    }
}

impl Case {
    fn new() -> Case {
        let c = Case {
            dir: tempfile::tempdir().expect("tempdir"),
        };
        c.write("schemas/items/contract.toml", CONTRACT.as_bytes());
        c.write("schemas/items/v1.schema.json", SCHEMA.as_bytes());
        c
    }

    fn path(&self) -> &Path {
        self.dir.path()
    }

    fn write(&self, rel: &str, bytes: &[u8]) -> PathBuf {
        let p = self.path().join(rel);
        std::fs::create_dir_all(p.parent().expect("parent")).expect("mkdir");
        std::fs::write(&p, bytes).expect("write");
        p
    }

    /// `dump/db/items.bson` with these bytes.
    fn dump(&self, bytes: &[u8]) -> String {
        self.write("dump/db/items.bson", bytes);
        format!("dump:{}", self.path().join("dump").display())
    }

    /// `export/items.json` with these bytes.
    fn export(&self, bytes: &[u8]) -> String {
        self.write("export/items.json", bytes);
        format!("export:{}", self.path().join("export").display())
    }

    fn check(&self, source: &str) -> Checked {
        let out = Command::new(env!("CARGO_BIN_EXE_docsweep"))
            .args(["check", "--no-progress", "--source", source, "--schemas"])
            .arg(self.path().join("schemas"))
            .arg("--report-dir")
            .arg(self.path().join("out"))
            .current_dir(self.path())
            .env_remove("RUST_BACKTRACE")
            .output()
            .expect("run docsweep");
        let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
        assert!(!stderr.contains("panicked"), "docsweep panicked:\n{stderr}");
        let report = std::fs::read_to_string(self.path().join("out/report.json"))
            .ok()
            .map(|t| serde_json::from_str(&t).expect("report.json is JSON"));
        let csv =
            std::fs::read_to_string(self.path().join("out/violations.csv")).unwrap_or_default();
        Checked {
            code: out.status.code().unwrap_or(-1),
            stderr,
            report,
            csv,
        }
    }
}

/// Good documents `{_id: i, n: "doc i"}` as BSON.
fn good_bson(i: i32) -> Vec<u8> {
    to_bson(&json!({"_id": i, "n": format!("doc {i}")})).expect("to_bson")
}

/// A BSON document around raw element bytes (correct length prefix and terminator).
fn raw_doc(body: &[u8]) -> Vec<u8> {
    let len = i32::try_from(body.len() + 5).expect("small");
    let mut out = len.to_le_bytes().to_vec();
    out.extend_from_slice(body);
    out.push(0);
    out
}

/// `_id: int32 id` as a BSON element.
fn id_elem(id: i32) -> Vec<u8> {
    let mut e = vec![0x10];
    e.extend_from_slice(b"_id\0");
    e.extend_from_slice(&id.to_le_bytes());
    e
}

/// `<good 1> <bad> <good 2>` as one dump file.
fn sandwich(bad: &[u8]) -> Vec<u8> {
    let mut s = good_bson(1);
    s.extend_from_slice(bad);
    s.extend(good_bson(2));
    s
}

fn assert_counts(c: &Checked, documents: u64, unreadable: u64, what: &str) {
    assert_eq!(
        (c.count("documents"), c.count("unreadable")),
        (documents, unreadable),
        "{what}: (documents, unreadable)\n{}\n{}",
        c.items(),
        c.stderr
    );
}

// ---------------------------------------------------------------- BSON dumps

#[test]
fn truncated_bson_is_one_unreadable_record() {
    let last = to_bson(&json!({
        "_id": 3,
        "a": {"x": 1, "y": "z"},
        "b": [{"x": 1}, {"x": 2}],
        "s": "tail",
    }))
    .expect("to_bson");
    // 13 cuts exactly after the array `b`: its embedded documents must not become records.
    for cut in [1, 6, 13, 20, last.len() - 4] {
        let case = Case::new();
        let mut s = good_bson(1);
        s.extend(good_bson(2));
        s.extend_from_slice(&last[..last.len() - cut]);
        let c = case.check(&case.dump(&s));
        assert_eq!(c.code, 1, "cut {cut}: {}", c.stderr);
        assert_counts(&c, 2, 1, &format!("cut {cut}"));
        let rows = c.rows("unreadable");
        assert_eq!(rows.len(), 1, "cut {cut}: {rows:?}");
        let offset = format!("byte offset {}", good_bson(1).len() + good_bson(2).len());
        assert!(rows[0].contains(&offset), "{offset} in {rows:?}");
        assert!(rows[0].contains("items.bson"), "file named in {rows:?}");
    }
}

#[test]
fn wrong_length_prefixes_are_skipped_and_reading_resumes() {
    for (name, prefix) in [
        ("too small", 3i32),
        ("zero", 0),
        ("negative", -20),
        ("too large", 0x7fff_fff0),
        ("longer than the file", 10_000),
    ] {
        let case = Case::new();
        let mut bad = raw_doc(&id_elem(7));
        bad[..4].copy_from_slice(&prefix.to_le_bytes());
        let c = case.check(&case.dump(&sandwich(&bad)));
        assert_eq!(c.code, 1, "{name}: {}", c.stderr);
        assert_counts(&c, 2, 1, name);
    }
    // Shorter than the document: the terminator is not where the prefix says.
    let case = Case::new();
    let mut bad = raw_doc(&id_elem(7));
    let short = i32::try_from(bad.len() - 2).expect("small");
    bad[..4].copy_from_slice(&short.to_le_bytes());
    let c = case.check(&case.dump(&sandwich(&bad)));
    assert_eq!(c.code, 1, "{}", c.stderr);
    assert!(c.count("unreadable") >= 1, "{}", c.items());
    assert!(c.count("documents") >= 2, "{}", c.items());
}

#[test]
fn invalid_utf8_in_a_value_and_in_a_key() {
    // A string value with invalid UTF-8.
    let mut value = id_elem(7);
    value.extend_from_slice(&[0x02, b's', 0]);
    value.extend_from_slice(&4i32.to_le_bytes());
    value.extend_from_slice(&[b'a', 0xff, 0xfe, 0]);
    // A key with invalid UTF-8.
    let mut key = id_elem(8);
    key.extend_from_slice(&[0x10, 0xc3, 0x28, 0]);
    key.extend_from_slice(&1i32.to_le_bytes());
    for (name, body) in [("value", value), ("key", key)] {
        let case = Case::new();
        let c = case.check(&case.dump(&sandwich(&raw_doc(&body))));
        assert_eq!(c.code, 1, "{name}: {}", c.stderr);
        assert_counts(&c, 2, 1, name);
        assert_eq!(c.rows("unreadable").len(), 1, "{name}: {}", c.csv);
    }
}

/// `_id`, then `depth - 1` nested documents `{"a": {"a": …}}` (the top level is depth 1).
fn nested_bson(depth: usize) -> Vec<u8> {
    let mut inner = raw_doc(&[]);
    for _ in 1..depth - 1 {
        let mut body = vec![0x03, b'a', 0];
        body.extend(inner);
        inner = raw_doc(&body);
    }
    let mut body = id_elem(9);
    body.extend_from_slice(&[0x03, b'a', 0]);
    body.extend(inner);
    raw_doc(&body)
}

#[test]
fn deep_nesting_in_bson_and_json() {
    // 200 levels: beyond the decoders' 128, so the document is unreadable.
    let case = Case::new();
    let c = case.check(&case.dump(&sandwich(&nested_bson(200))));
    assert_eq!(c.code, 1, "{}", c.stderr);
    assert_counts(&c, 2, 1, "BSON, 200 levels");
    assert!(c.rows("unreadable")[0].contains("nesting"), "{}", c.csv);
    // 110 levels: readable, but deeper than MongoDB's 100.
    let case = Case::new();
    let c = case.check(&case.dump(&sandwich(&nested_bson(110))));
    assert_eq!(c.code, 1, "{}", c.stderr);
    assert_counts(&c, 3, 0, "BSON, 110 levels");
    assert_eq!(c.structure("too_deep"), 1, "{}", c.items());

    // JSON: 200 and 100 000 levels (serde_json's recursion limit, not the stack).
    for levels in [200, 100_000] {
        let case = Case::new();
        let deep = format!(
            "{{\"_id\":9,\"a\":{}1{}}}",
            "[".repeat(levels),
            "]".repeat(levels)
        );
        let text = format!("{{\"_id\":1}}\n{deep}\n{{\"_id\":2}}\n");
        let c = case.check(&case.export(text.as_bytes()));
        assert_eq!(c.code, 1, "{levels}: {}", c.stderr);
        assert_counts(&c, 2, 1, &format!("JSON, {levels} levels"));
        assert!(c.rows("unreadable")[0].contains("line 2"), "{}", c.csv);
    }
}

#[test]
fn huge_document_is_oversize() {
    // One 17 MiB string: over MongoDB's 16 MiB limit, under the reader's record limit.
    let big = vec![b'x'; 17 << 20];
    let mut body = id_elem(5);
    body.extend_from_slice(&[0x02, b'b', 0]);
    body.extend_from_slice(&i32::try_from(big.len() + 1).expect("fits").to_le_bytes());
    body.extend_from_slice(&big);
    body.push(0);
    let case = Case::new();
    let c = case.check(&case.dump(&sandwich(&raw_doc(&body))));
    assert_eq!(c.code, 1, "{}", c.stderr);
    assert_eq!(c.structure("oversize"), 1, "{}", c.items());
    assert_eq!(c.count("unreadable"), 0, "{}", c.items());
}

#[test]
fn garbage_dump_terminates_with_findings() {
    // Pseudo-random bytes with plausible-looking length prefixes sprinkled in.
    let mut x = 0x2545_f491_4f6c_dd1du64;
    let mut s: Vec<u8> = (0..64 << 10)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            (x >> 24) as u8
        })
        .collect();
    for i in (0..s.len() - 8).step_by(997) {
        s[i..i + 4].copy_from_slice(&40i32.to_le_bytes());
        s[i + 4] = 0x02;
    }
    s.extend(good_bson(1));
    let case = Case::new();
    let c = case.check(&case.dump(&s));
    assert_eq!(c.code, 1, "{}", c.stderr);
    assert!(c.count("unreadable") >= 1, "{}", c.items());
    assert!(c.count("documents") >= 1, "{}", c.items());
}

// ---------------------------------------------------------------- JSON exports

#[test]
fn broken_json_lines_are_unreadable_with_their_line() {
    let case = Case::new();
    let text =
        b"{\"_id\":1}\n{\"_id\":2,\n\n{\"_id\":3}\nnot json\n{\"_id\":4}\xff\n[1,2]\n{\"_id\":5}\n";
    let c = case.check(&case.export(text));
    assert_eq!(c.code, 1, "{}", c.stderr);
    assert_counts(&c, 3, 4, "ndjson");
    let rows = c.rows("unreadable");
    for line in ["line 2", "line 5", "line 6", "line 7"] {
        assert!(
            rows.iter().any(|r| r.contains(line)),
            "{line} not in {rows:#?}"
        );
    }
}

#[test]
fn json_array_missing_its_closing_bracket() {
    let case = Case::new();
    let c = case.check(&case.export(b"[{\"_id\":1},\n{\"_id\":2},\n{\"_id\":3}\n"));
    assert_eq!(c.code, 1, "{}", c.stderr);
    assert_counts(&c, 3, 1, "array without ]");

    let case = Case::new();
    let c = case.check(&case.export(b"[{\"_id\":1},\n{\"_id\":2,\"a\":[1,2\n"));
    assert_eq!(c.code, 1, "{}", c.stderr);
    assert_counts(&c, 1, 1, "array cut inside an element");
}

#[test]
fn invalid_extended_json_wrappers_are_unreadable() {
    let lines = [
        r#"{"_id":1}"#,
        r#"{"_id":{"$oid":"zz"}}"#,
        r#"{"_id":3,"d":{"$date":"yesterday"}}"#,
        r#"{"_id":4,"n":{"$numberInt":"1.5"}}"#,
        r#"{"_id":5,"b":{"$binary":{"base64":"!!","subType":"00"}}}"#,
        r#"{"_id":6,"x":{"$numberLong":"1","extra":1}}"#,
        r#"{"_id":7,"t":{"$timestamp":{"t":-1,"i":0}}}"#,
        r#"{"_id":8,"k":{"$minKey":2}}"#,
        r#"{"_id":{"$numberDecimal":"1e999999"}}"#,
        r#"{"_id":10}"#,
    ];
    let case = Case::new();
    let c = case.check(&case.export(lines.join("\n").as_bytes()));
    assert_eq!(c.code, 1, "{}", c.stderr);
    assert_counts(&c, 2, 8, "wrappers");
    // Messages name the problem, never the value.
    assert!(!c.csv.contains("yesterday"), "{}", c.csv);
}

#[test]
fn a_repeated_key_is_unreadable_in_a_dump_and_in_an_export_alike() {
    // {"_id": 7, "a": 1, "a": 2} and {"_id": 8, "x": {"b": [{"c": 1, "c": 1}]}}
    let mut top = id_elem(7);
    for v in [1i32, 2] {
        top.extend_from_slice(b"\x10a\0");
        top.extend_from_slice(&v.to_le_bytes());
    }
    let mut c = Vec::new();
    for _ in 0..2 {
        c.extend_from_slice(b"\x10c\0");
        c.extend_from_slice(&1i32.to_le_bytes());
    }
    let mut b = b"\x030\0".to_vec();
    b.extend(raw_doc(&c));
    let mut x = b"\x04b\0".to_vec();
    x.extend(raw_doc(&b));
    let mut nested = id_elem(8);
    nested.extend_from_slice(b"\x03x\0");
    nested.extend(raw_doc(&x));
    let mut dump = sandwich(&raw_doc(&top));
    dump.extend(raw_doc(&nested));

    let lines = [
        r#"{"_id":1,"n":"doc 1"}"#,
        r#"{"_id":7,"a":1,"a":2}"#,
        r#"{"_id":2,"n":"doc 2"}"#,
        r#"{"_id":8,"x":{"b":[{"c":1,"c":1}]}}"#,
    ];
    let ndjson = lines.join("\n");
    let array = format!("[{}]", lines.join(",\n"));

    let mut seen = Vec::new();
    for what in ["dump", "NDJSON", "JSON array"] {
        let case = Case::new();
        let src = match what {
            "dump" => case.dump(&dump),
            "NDJSON" => case.export(ndjson.as_bytes()),
            _ => case.export(array.as_bytes()),
        };
        let c = case.check(&src);
        assert_eq!(c.code, 1, "{what}: {}", c.stderr);
        assert_counts(&c, 2, 2, what);
        let rows = c.rows("unreadable");
        assert_eq!(rows.len(), 2, "{what}: {rows:?}");
        for (row, field) in rows.iter().zip(["`a`", "`x.b.0.c`"]) {
            assert!(
                row.contains(&format!("{field}): duplicate key"))
                    || row.contains(&format!("at field {field}: duplicate key")),
                "{what}: {field} in {row}"
            );
            assert!(row.contains("items."), "{what}: the file is named: {row}");
        }
        let items = c.items();
        seen.push((items["documents"].clone(), items["classes"].clone()));
    }
    assert!(seen.windows(2).all(|w| w[0] == w[1]), "{seen:?}");
}

// ---------------------------------------------------------------- configuration and sources

#[test]
fn invalid_schema_file_is_a_contract_error_naming_the_file() {
    let case = Case::new();
    case.write("schemas/items/v1.schema.json", b"{\"type\": \"object\",");
    let c = case.check(&case.dump(&good_bson(1)));
    assert_eq!(c.code, 2, "{}", c.stderr);
    assert!(c.stderr.contains("v1.schema.json"), "{}", c.stderr);

    // Valid JSON, invalid JSON Schema.
    let case = Case::new();
    case.write("schemas/items/v1.schema.json", b"{\"type\": 12}");
    let c = case.check(&case.dump(&good_bson(1)));
    assert_eq!(c.code, 2, "{}", c.stderr);
    assert!(c.stderr.contains("v1.schema.json"), "{}", c.stderr);
}

#[test]
fn invalid_contract_toml_is_a_contract_error() {
    for text in [
        "collection = \"items\"\ntarget = \n",
        "collection = \"items\"\ntarget = 1\n[[versions]]\nversion = \"one\"\n",
        "target = 1\n",
        "\u{feff}\u{0}\u{1}",
    ] {
        let case = Case::new();
        case.write("schemas/items/contract.toml", text.as_bytes());
        let c = case.check(&case.dump(&good_bson(1)));
        assert_eq!(c.code, 2, "{text:?}: {}", c.stderr);
        assert!(c.stderr.contains("contract.toml"), "{text:?}: {}", c.stderr);
    }
}

#[test]
fn missing_source_directory_fails_with_a_report() {
    let case = Case::new();
    let missing = case.path().join("no-such-dump");
    let c = case.check(&format!("dump:{}", missing.display()));
    assert_eq!(c.code, 3, "{}", c.stderr);
    let report = c.report.as_ref().expect("report.json written on failure");
    assert_eq!(report["status"], "failed", "{report}");
    assert!(c.stderr.contains("no-such-dump"), "{}", c.stderr);
}

// ---------------------------------------------------------------- corpus replay

fn corpus_files() -> Vec<PathBuf> {
    fn walk(dir: &Path, out: &mut Vec<PathBuf>) {
        let Ok(entries) = std::fs::read_dir(dir) else {
            return;
        };
        for e in entries.flatten() {
            let p = e.path();
            if p.is_dir() {
                walk(&p, out);
            } else if p.file_name().is_some_and(|n| n != "README.md") {
                out.push(p);
            }
        }
    }
    let mut out = Vec::new();
    walk(
        &Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/corpus"),
        &mut out,
    );
    out.sort();
    out
}

/// The round-trip invariants of the `bson_document` / `ejson_line` fuzz targets.
fn round_trip(v: &Value, ctx: &str) {
    let bytes = to_bson(v).unwrap_or_else(|e| panic!("{ctx}: to_bson of a decoded value: {e}"));
    let back = from_bson(&bytes).unwrap_or_else(|e| panic!("{ctx}: from_bson of to_bson: {e}"));
    assert_eq!(&back.value, v, "{ctx}: round trip changed the value");
    assert_eq!(
        fingerprint(&back.value),
        fingerprint(v),
        "{ctx}: round trip changed the fingerprint"
    );
}

/// Hands out the input `step` bytes per read, like the stream fuzz targets.
struct Chunked {
    data: Vec<u8>,
    pos: usize,
    step: usize,
}

impl Read for Chunked {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = buf.len().min(self.step).min(self.data.len() - self.pos);
        buf[..n].copy_from_slice(&self.data[self.pos..self.pos + n]);
        self.pos += n;
        Ok(n)
    }
}

/// One record as the stream targets compare them: location, bytes, broken.
type Outline = Vec<(Location, Vec<u8>, bool)>;

/// Reads all records; checks ranges and that the whole input was consumed.
fn drain(mut r: Box<dyn RecordReader>, input_len: usize, max: usize, ctx: &str) -> Outline {
    let mut n = 0;
    let mut out = Vec::new();
    let mut last = 0u64;
    while let Some(b) = r.next_batch(max).unwrap_or_else(|e| panic!("{ctx}: {e}")) {
        assert!(!b.records.is_empty(), "{ctx}: empty batch");
        for rec in &b.records {
            assert!(rec.start <= rec.end && rec.end <= b.data.len(), "{ctx}");
            let at = match rec.location {
                Location::Offset(o) => o,
                Location::Line { offset, .. } | Location::Element { offset, .. } => offset,
                Location::Live { index } => index,
            };
            assert!(at >= last && at <= input_len as u64, "{ctx}: offsets");
            last = at;
            n += 1;
            assert!(n <= input_len + 2, "{ctx}: more records than bytes");
            out.push((rec.location, b.bytes(rec).to_vec(), rec.broken.is_some()));
        }
    }
    assert_eq!(r.position(), input_len as u64, "{ctx}: input not consumed");
    out
}

/// Feeds `bytes` through every decoder and reader (as the fuzz targets do).
fn replay(bytes: &[u8], ctx: &str) {
    // bson_document
    if let Ok(d) = from_bson(bytes) {
        round_trip(&d.value, ctx);
    }
    // ejson_line (whole file and each line)
    for text in std::iter::once(bytes).chain(bytes.split(|&b| b == b'\n')) {
        if let Ok(v) = serde_json::from_slice::<Value>(text) {
            if let Ok(d) = from_ejson(v) {
                round_trip(&d.value, ctx);
            }
        }
        if let Ok(d) = from_json(text) {
            round_trip(&d.value, ctx);
        }
        // The scan's strict parse is serde_json's, except that a repeated key is refused.
        match (parse_json(text), serde_json::from_slice::<Value>(text)) {
            (Ok(ours), Ok(theirs)) => assert_eq!(ours, theirs, "{ctx}: parse_json differs"),
            (Err(JsonError::Syntax(_)), Err(_)) | (Err(JsonError::Decode(_)), Ok(_)) => {}
            (ours, theirs) => panic!("{ctx}: parse_json {ours:?}, serde_json {theirs:?}"),
        }
    }
    // bson_stream / json_stream: the first byte is the fuzz targets' control byte, but the
    // whole file is a stream too.
    let variants: [(&[u8], usize, usize); 2] = match bytes.split_first() {
        Some((&ctl, rest)) => [
            (bytes, usize::MAX, 4096),
            (
                rest,
                match ctl & 0x1f {
                    0 => usize::MAX,
                    s => usize::from(s),
                },
                usize::from(ctl >> 5) + 1,
            ),
        ],
        None => [(bytes, usize::MAX, 4096), (bytes, 1, 1)],
    };
    for (input, step, max) in variants {
        let chunked = |d: &[u8], step: usize| -> Box<dyn Read + Send> {
            Box::new(Chunked {
                data: d.to_vec(),
                pos: 0,
                step,
            })
        };
        // The records must not depend on how the input is split into reads.
        let bson = |step| {
            let r = BsonReader::new(chunked(input, step), None, "corpus.bson".into());
            drain(Box::new(r), input.len(), max, ctx)
        };
        assert_eq!(
            bson(step),
            bson(usize::MAX),
            "{ctx}: BSON records vary with reads"
        );
        let json = |step| {
            let r = JsonReader::new(chunked(input, step), None, "corpus.json".into());
            drain(Box::new(r), input.len(), max, ctx)
        };
        assert_eq!(
            json(step),
            json(usize::MAX),
            "{ctx}: JSON records vary with reads"
        );
    }
}

#[test]
fn corpus_replays_through_decoders_and_readers() {
    let files = corpus_files();
    for f in &files {
        let bytes = std::fs::read(f).expect("read corpus file");
        replay(&bytes, &f.display().to_string());
    }
}

#[test]
fn corpus_dumps_and_exports_through_the_executable() {
    // Every corpus file as a dump and as an export: exit 1 or 0, never a crash or a failure.
    let files = corpus_files();
    let case = Case::new();
    for (i, f) in files.iter().enumerate() {
        let bytes = std::fs::read(f).expect("read corpus file");
        case.write(&format!("dump/db/c{i}.bson"), &bytes);
        case.write(&format!("export/c{i}.json"), &bytes);
    }
    if files.is_empty() {
        return;
    }
    for kind in ["dump", "export"] {
        let c = case.check(&format!("{kind}:{}", case.path().join(kind).display()));
        assert!(
            matches!(c.code, 0 | 1),
            "{kind}: exit {}\n{}",
            c.code,
            c.stderr
        );
    }
}

/// The `archive_stream` fuzz target's invariants: every namespace of the prelude read with
/// `step` bytes per read gives the records of unlimited reads; readable records are their
/// input bytes; unreadable ones before the last lack their NUL byte.
fn replay_archive(input: &[u8], step: usize, max: usize, ctx: &str) {
    use docsweep::source::archive;
    let chunked = |step: usize| -> Box<dyn Read + Send> {
        Box::new(Chunked {
            data: input.to_vec(),
            pos: 0,
            step,
        })
    };
    let name = Path::new("corpus.archive");
    let Ok(namespaces) = archive::namespaces(chunked(step), name) else {
        return;
    };
    for (db, coll) in namespaces.iter().take(8) {
        let read = |step| {
            let mut r = archive::records(chunked(step), name, db, coll);
            let mut out = Vec::new();
            while let Some(b) = r.next_batch(max).unwrap() {
                assert!(b.records.len() <= max, "{ctx}");
                for rec in &b.records {
                    let Location::Offset(o) = rec.location else {
                        panic!("{ctx}: not an offset")
                    };
                    if rec.broken.is_none() {
                        let o = o as usize;
                        assert_eq!(Some(b.bytes(rec)), input.get(o..o + b.bytes(rec).len()));
                    }
                    out.push((rec.location, b.bytes(rec).to_vec(), rec.broken.clone()));
                }
            }
            out
        };
        let got = read(step);
        assert_eq!(
            got,
            read(usize::MAX),
            "{ctx}: archive records vary with reads"
        );
        if let Some((_, before)) = got.split_last() {
            for m in before.iter().filter_map(|r| r.2.as_deref()) {
                assert!(m.contains("NUL"), "{ctx}: {m}");
            }
        }
    }
}

#[test]
fn corpus_replays_through_the_archive_reader() {
    for f in corpus_files() {
        let bytes = std::fs::read(&f).expect("read corpus file");
        let ctx = f.display().to_string();
        replay_archive(&bytes, usize::MAX, 4096, &ctx);
        if let Some((&ctl, rest)) = bytes.split_first() {
            let step = match ctl & 0x1f {
                0 => usize::MAX,
                s => usize::from(s),
            };
            replay_archive(rest, step, usize::from(ctl >> 5) + 1, &ctx);
        }
    }
}

#[test]
fn corpus_files_as_archive_blocks_never_panic() {
    // Every corpus file as the documents of an archive's collection: whatever is readable
    // is the bytes at its offset; the rest is unreadable, never a crash.
    use docsweep::source::{Source, SourceSpec};
    let dir = tempfile::tempdir().unwrap();
    for f in corpus_files() {
        let bytes = std::fs::read(&f).expect("read corpus file");
        let archive = crate::archive::archive_of("db", "items", &bytes);
        let path = dir.path().join("corpus.archive");
        std::fs::write(&path, &archive).unwrap();
        let src = Source::open(&SourceSpec::Archive(path), None)
            .unwrap_or_else(|e| panic!("{}: {e}", f.display()));
        let c = src.collection("items").expect("the collection");
        let mut r = src.reader(c).unwrap();
        let mut n = 0;
        while let Some(b) = r.next_batch(64).unwrap() {
            for rec in &b.records {
                let Location::Offset(o) = rec.location else {
                    panic!("{}: not an offset", f.display())
                };
                let o = o as usize;
                if rec.broken.is_none() {
                    assert_eq!(&archive[o..o + rec.end - rec.start], b.bytes(rec));
                }
                n += 1;
            }
        }
        assert!(n <= bytes.len() + 2, "{}: {n} records", f.display());
    }
}
