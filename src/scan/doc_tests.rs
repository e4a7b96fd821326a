//! The in-place path of `DocContext::examine` (preflight, in-place classification, projection
//! decode) gives exactly the facts of the decode path: class, errors, `_id`, unique keys,
//! references, exported values, depth and sample.

use std::path::Path;

use ::bson::{doc, Bson, DateTime, Document};
use proptest::prelude::*;

use super::doc::DocContext;
use crate::contract::Contract;
use crate::source::{Encoding, Location};

const CONTRACT: &str = r#"
collection = "things"
target = 1

[[versions]]
version = 1
schema = "v1.schema.json"
indexes = [
  { key = { "a.b" = 1, c = -1 }, unique = true },
  { key = { d = 1 }, unique = true, sparse = true },
  { key = { "e" = 1 }, unique = true },
]
references = [ { field = "r", collection = "other" }, { field = "a.x", collection = "other", to = "k" } ]

[[versions]]
version = 2
schema = "v2.schema.json"
references = [ { field = "s.0", collection = "other" } ]
"#;

const V1: &str = r#"{
  "$schema": "https://json-schema.org/draft/2020-12/schema",
  "type": "object",
  "properties": {
    "_id": {"type": ["object", "integer", "string"]},
    "a": {"type": "object", "properties": {"b": {"type": ["integer", "array", "null"]}}},
    "c": {"type": ["integer", "string", "object"]},
    "d": {"not": {"type": "boolean"}},
    "r": {"anyOf": [{"type": "object", "required": ["$oid"]}, {"type": "array"}, {"type": "null"}]}
  },
  "required": ["c"]
}"#;

const V2: &str = r#"{
  "$schema": "https://json-schema.org/draft/2020-12/schema",
  "type": "object",
  "required": ["s"]
}"#;

fn contract() -> &'static Contract {
    static C: std::sync::OnceLock<(tempfile::TempDir, Contract)> = std::sync::OnceLock::new();
    &C.get_or_init(|| {
        let dir = tempfile::tempdir().expect("tempdir");
        for (name, text) in [
            ("contract.toml", CONTRACT),
            ("v1.schema.json", V1),
            ("v2.schema.json", V2),
        ] {
            std::fs::write(dir.path().join(name), text).expect("write");
        }
        let c = crate::contract::load(&dir.path().join("contract.toml")).expect("contract");
        (dir, c)
    })
    .1
}

fn arb_value() -> impl Strategy<Value = Bson> {
    let leaf = prop_oneof![
        Just(Bson::Null),
        any::<bool>().prop_map(Bson::Boolean),
        (-3i32..3).prop_map(Bson::Int32),
        (-3i64..3).prop_map(Bson::Int64),
        prop_oneof![Just(1.0f64), Just(0.5), Just(-0.0)].prop_map(Bson::Double),
        "[ab]{0,2}".prop_map(Bson::String),
        (0u8..3).prop_map(|b| Bson::ObjectId([b; 12].into())),
        Just(Bson::DateTime(DateTime::from_millis(0))),
        Just(Bson::Undefined),
        Just(Bson::MinKey),
    ];
    leaf.prop_recursive(3, 24, 4, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..4).prop_map(Bson::Array),
            prop::collection::vec(
                (
                    prop_oneof![Just("b"), Just("x"), Just("0"), Just("k")],
                    inner
                ),
                0..3
            )
            .prop_map(|e| Bson::Document(e.into_iter().map(|(k, v)| (k.to_string(), v)).collect())),
        ]
    })
}

fn arb_document() -> impl Strategy<Value = Document> {
    prop::collection::vec(
        (
            prop_oneof![
                Just("_id"),
                Just("a"),
                Just("c"),
                Just("d"),
                Just("e"),
                Just("r"),
                Just("s"),
                Just("z")
            ],
            arb_value(),
        ),
        0..7,
    )
    .prop_map(|e| {
        let mut d: Document = e.into_iter().map(|(k, v)| (k.to_string(), v)).collect();
        // Most documents valid for the target, so the in-place path's projection matters.
        if !matches!(d.get("c"), Some(Bson::Int32(_) | Bson::String(_))) {
            d.insert("c", 1);
        }
        if let Some(Bson::Boolean(_)) = d.get("d") {
            d.remove("d");
        }
        if d.get("r")
            .is_some_and(|r| !matches!(r, Bson::ObjectId(_) | Bson::Array(_) | Bson::Null))
        {
            d.insert("r", Bson::ObjectId([2; 12].into()));
        }
        d
    })
}

/// Both paths' facts for `bytes`, rendered; and whether the in-place path validated it.
fn both(bytes: &[u8], exported: &[&str]) -> (String, String, bool) {
    let exported: Vec<String> = exported.iter().map(|s| (*s).to_string()).collect();
    let mut ctx = DocContext::new(contract(), Encoding::Bson, exported, 3, false);
    let in_place = format!("{:?}", ctx.examine(bytes, Location::Offset(7), None));
    ctx.in_place = false;
    let decoded = format!("{:?}", ctx.examine(bytes, Location::Offset(7), None));
    let ready = crate::value::raw::preflight(bytes).is_some();
    (in_place, decoded, ready)
}

#[test]
fn hand_picked_documents_have_the_same_facts_on_both_paths() {
    let oid = ::bson::oid::ObjectId::from_bytes([1; 12]);
    let docs = [
        doc! {"_id": oid, "c": 1, "a": {"b": [1, 2, [3]], "x": oid}, "r": oid, "e": []},
        doc! {"_id": 5, "c": "x", "d": null, "a": {"b": []}, "r": [oid, null, {"$x": 1}]},
        doc! {"c": {"k": 1}, "s": [1, 2], "e": {"k": [1, 1]}},
        doc! {"_id": "s", "c": true},
        doc! {"_id": oid, "c": 1, "a": {"$oid": "x"}},
        doc! {"_id": {"a": 1}, "s": [{"k": 2}], "z": {"y": [[]]}},
    ];
    let mut in_place = 0;
    for d in docs {
        let bytes = d.to_vec().expect("encode");
        let (a, b, ready) = both(&bytes, &["_id", "a.x", "e.k", "z.y"]);
        assert_eq!(a, b, "{d}");
        in_place += usize::from(ready);
    }
    assert!(in_place >= 4, "{in_place}");
    // Damaged documents: the same error either way.
    let mut bytes = doc! {"c": 1, "d": "xy"}.to_vec().expect("encode");
    let n = bytes.len();
    bytes[n - 3] = 0xff;
    let (a, b, ready) = both(&bytes, &[]);
    assert!(!ready);
    assert_eq!(a, b);
    assert!(a.contains("Err"), "{a}");
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn generated_documents_have_the_same_facts_on_both_paths(d in arb_document()) {
        let bytes = d.to_vec().expect("encode");
        let (a, b, _) = both(&bytes, &["_id", "a.x", "e.k", "z", "r.0"]);
        prop_assert_eq!(a, b);
    }
}

#[test]
fn the_example_dump_has_the_same_facts_on_both_paths() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/shop");
    for coll in ["orders", "customers"] {
        let c = crate::contract::load(&root.join(format!("schemas/{coll}/contract.toml")))
            .expect("contract");
        let data = std::fs::read(root.join(format!("data/dump/shop/{coll}.bson"))).expect("dump");
        let exported: Vec<String> = vec!["_id".into()];
        let mut ctx = DocContext::new(&c, Encoding::Bson, exported, 5, false);
        let (mut pos, mut seen, mut in_place) = (0usize, 0, 0);
        while let Some(len) = data
            .get(pos..pos + 4)
            .and_then(|b| usize::try_from(i32::from_le_bytes(b.try_into().ok()?)).ok())
            .filter(|&l| l >= 5 && pos + l <= data.len())
        {
            let bytes = &data[pos..pos + len];
            ctx.in_place = true;
            let a = format!(
                "{:?}",
                ctx.examine(bytes, Location::Offset(pos as u64), None)
            );
            ctx.in_place = false;
            let b = format!(
                "{:?}",
                ctx.examine(bytes, Location::Offset(pos as u64), None)
            );
            assert_eq!(a, b, "{coll} at {pos}");
            seen += 1;
            in_place += usize::from(crate::value::raw::preflight(bytes).is_some());
            pos += len;
        }
        assert!(
            seen > 100 && in_place * 10 > seen * 9,
            "{coll}: {in_place} of {seen}"
        );
    }
}

/// Both paths' facts for an export `line`, rendered; and whether the line was transcoded and
/// went in place.
fn both_json(line: &[u8], exported: &[&str]) -> (String, String, bool) {
    let exported: Vec<String> = exported.iter().map(|s| (*s).to_string()).collect();
    let mut ctx = DocContext::new(contract(), Encoding::Json, exported, 3, false);
    let at = Location::Line { line: 2, offset: 9 };
    let in_place = format!("{:?}", ctx.examine(line, at, None));
    ctx.in_place = false;
    let decoded = format!("{:?}", ctx.examine(line, at, None));
    let ready =
        crate::value::transcode(line).is_some_and(|b| crate::value::raw::preflight(&b).is_some());
    (in_place, decoded, ready)
}

/// A document as export lines: canonical and relaxed Extended JSON.
fn export_lines(d: &Document) -> [String; 2] {
    [
        Bson::Document(d.clone())
            .into_canonical_extjson()
            .to_string(),
        Bson::Document(d.clone()).into_relaxed_extjson().to_string(),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn generated_export_lines_have_the_same_facts_on_both_paths(d in arb_document()) {
        for line in export_lines(&d) {
            let (a, b, ready) = both_json(line.as_bytes(), &["_id", "a.x", "e.k", "z", "r.0"]);
            prop_assert_eq!(a, b);
            // The generated documents hold no `$` keys: all transcoded, all in place.
            prop_assert!(ready, "{}", line);
        }
    }
}

#[test]
fn hand_picked_export_lines_have_the_same_facts_on_both_paths() {
    for line in [
        r#"{"_id":{"$oid":"57e193d7a9cc81b4027498b5"},"c":1,"a":{"b":[1,2,[3]],"x":{"$oid":"57e193d7a9cc81b4027498b5"}},"e":[]}"#,
        r#"{"_id":{"$numberLong":"5"},"c":"x","d":null,"a":{"b":[]},"r":[null,{"$x":1}]}"#,
        r#"{"c":{"k":{"$numberDecimal":"1.50"}},"s":[1,2.5,{"$date":0}],"e":{"k":[1,1]}}"#,
        r#"{"_id":"s","c":true}"#,
        r#"{"_id":{"a":1},"c":1,"a":{"$oid":"x"}}"#,
        r#"{"_id":1,"c":1,"c":2}"#,
        r#"{"_id":1,"c":1,"d":{"$binary":"AQID","$type":"00"},"z":{"$regex":"a","$options":"mi"}}"#,
        r#"{"_id":1,"c":1"#,
    ] {
        let (a, b, _) = both_json(line.as_bytes(), &["_id", "a.x", "e.k", "z"]);
        assert_eq!(a, b, "{line}");
    }
}

#[test]
fn the_example_export_has_the_same_facts_on_both_paths() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/shop");
    for export in ["export", "export-canonical"] {
        for coll in ["orders", "customers"] {
            let c = crate::contract::load(&root.join(format!("schemas/{coll}/contract.toml")))
                .expect("contract");
            let text =
                std::fs::read(root.join(format!("data/{export}/{coll}.json"))).expect("export");
            let exported: Vec<String> = vec!["_id".into()];
            let mut ctx = DocContext::new(&c, Encoding::Json, exported, 5, false);
            let (mut seen, mut valid, mut in_place, mut valid_in_place) = (0, 0, 0, 0);
            for (i, line) in text.split(|&b| b == b'\n').enumerate() {
                if line.iter().all(u8::is_ascii_whitespace) {
                    continue;
                }
                let at = Location::Line {
                    line: i as u64 + 1,
                    offset: 0,
                };
                ctx.in_place = true;
                let a = ctx.examine(line, at, None);
                ctx.in_place = false;
                let b = ctx.examine(line, at, None);
                let (a_text, b_text) = (format!("{a:?}"), format!("{b:?}"));
                assert_eq!(a_text, b_text, "{export}/{coll} line {}", i + 1);
                let ready = crate::value::transcode(line)
                    .is_some_and(|b| crate::value::raw::preflight(&b).is_some());
                let is_valid = matches!(&b.outcome, Ok(f) if f.class == super::doc::Class::Valid);
                seen += 1;
                valid += usize::from(is_valid);
                in_place += usize::from(ready);
                valid_in_place += usize::from(ready && is_valid);
            }
            eprintln!(
                "{export}/{coll}: {in_place} of {seen} lines in place ({valid_in_place} of {valid} valid ones)"
            );
            assert!(seen > 100, "{export}/{coll}: {seen}");
            assert!(
                valid_in_place * 100 >= valid * 99,
                "{export}/{coll}: {valid_in_place} of {valid} valid lines in place"
            );
        }
    }
}
