use proptest::prelude::*;
use serde_json::{json, Value};

use super::*;

const CLOSED: SchemaOptions = SchemaOptions {
    required_ratio: 1.0,
    closed: true,
    enums: false,
};

fn validator(schema: &Value) -> jsonschema::Validator {
    jsonschema::draft202012::meta::validate(schema).expect("valid draft 2020-12");
    jsonschema::draft202012::options()
        .should_validate_formats(true)
        .build(schema)
        .expect("compiles")
}

fn oid(seconds: u32, n: u32) -> Value {
    json!({ "$oid": format!("{seconds:08x}0000000000{n:06x}") })
}

fn date(ms: i64) -> Value {
    let d = time::OffsetDateTime::from_unix_timestamp_nanos(i128::from(ms) * 1_000_000).unwrap();
    let s = d
        .format(&time::macros::format_description!(
            "[year]-[month]-[day]T[hour]:[minute]:[second].[subsecond digits:3]Z"
        ))
        .unwrap();
    json!({ "$date": s })
}

/// A document of a known schema: `_id` ObjectId, `n` int, `name` string, `price` double,
/// `at` date, `tags` strings, `owner` { id: ObjectId, email: string (email) },
/// `lines` [{ sku: string, qty: int }], optional `note` string.
fn known(
    i: u32,
    n: i64,
    price: f64,
    tags: Vec<String>,
    lines: Vec<(String, i64)>,
    note: bool,
) -> Value {
    let mut d = json!({
        "_id": oid(1_700_000_000 + i, i),
        "n": n,
        "name": format!("name {i}"),
        "price": price,
        "at": date(1_700_000_000_000 + i64::from(i) * 1000),
        "tags": tags,
        "owner": { "id": oid(1_600_000_000, i % 7), "email": format!("u{i}@example.com") },
        "lines": lines.into_iter().map(|(s, q)| json!({"sku": s, "qty": q})).collect::<Vec<_>>(),
    });
    if note {
        d["note"] = json!("a note");
    }
    d
}

fn arb_known() -> impl Strategy<Value = Vec<Value>> {
    prop::collection::vec(
        (
            any::<i32>(),
            // Doubles with a fraction, as a double field holds.
            (-1.0e6f64..1.0e6).prop_map(|x| x.trunc() + 0.25),
            prop::collection::vec("[a-z]{1,6}", 0..3),
            prop::collection::vec(("[A-Z]{3}-[0-9]{2}", 1i64..9), 1..4),
            any::<bool>(),
        ),
        2..40,
    )
    .prop_map(|rows| {
        rows.into_iter()
            .enumerate()
            .map(|(i, (n, p, t, l, note))| known(i as u32, i64::from(n), p, t, l, note))
            .collect()
    })
}

/// The mutations a contract must catch: a type changed, a required field removed.
fn mutations(d: &Value) -> Vec<(String, Value)> {
    let mut out = Vec::new();
    let mut m = d.clone();
    m["n"] = json!("seven");
    out.push(("n as a string".into(), m));
    let mut m = d.clone();
    m["price"] = json!("1.5");
    out.push(("price as a string".into(), m));
    let mut m = d.clone();
    m["at"] = json!("2024-01-01");
    out.push(("at as a string".into(), m));
    let mut m = d.clone();
    m["owner"]["id"] = json!(17);
    out.push(("owner.id as a number".into(), m));
    let mut m = d.clone();
    m["lines"] = json!([{"sku": 3, "qty": 1}]);
    out.push(("lines[].sku as a number".into(), m));
    let mut m = d.clone();
    m["owner"]["email"] = json!("not an address");
    out.push(("owner.email not an email".into(), m));
    for field in ["n", "name", "price", "at", "tags", "owner", "lines"] {
        let mut m = d.clone();
        m.as_object_mut().unwrap().remove(field);
        out.push((format!("{field} removed"), m));
    }
    let mut m = d.clone();
    m["owner"].as_object_mut().unwrap().remove("id");
    out.push(("owner.id removed".into(), m));
    let mut m = d.clone();
    m["extra"] = json!(1);
    out.push(("an unknown field (closed)".into(), m));
    out
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(48))]

    /// Documents of a known schema are all accepted by the inferred contract; every mutation
    /// (a type changed, a required field removed, a field added to a closed schema) is
    /// rejected by every version. With `--versions 1` that is one schema; with `auto`,
    /// documents whose optional parts differ both ways (one has `note`, another a non-empty
    /// `tags`) are not sub-shapes of each other and may be several versions.
    #[test]
    fn known_schema_accepts_its_documents_and_rejects_mutations(docs in arb_known()) {
        for mode in [VersionsMode::One, VersionsMode::Auto] {
            let inf = infer_documents("t", &docs, mode, &CLOSED);
            if mode == VersionsMode::One {
                prop_assert_eq!(inf.versions.len(), 1);
            }
            let vs: Vec<jsonschema::Validator> =
                inf.versions.iter().map(|v| validator(&v.schema)).collect();
            for d in &docs {
                prop_assert!(vs.iter().any(|v| v.is_valid(d)), "rejects its own document {}", d);
            }
            for (what, m) in mutations(&docs[0]) {
                prop_assert!(!vs.iter().any(|v| v.is_valid(&m)), "accepts a document with {}: {}", what, m);
            }
        }
    }

    /// The result does not depend on the order of the documents beyond property order,
    /// and never on how often it runs.
    #[test]
    fn inference_is_deterministic(docs in arb_known()) {
        let a = infer_documents("t", &docs, VersionsMode::Auto, &CLOSED);
        let b = infer_documents("t", &docs, VersionsMode::Auto, &CLOSED);
        prop_assert_eq!(&a.versions[0].schema, &b.versions[0].schema);
        let mut rev = docs.clone();
        rev.reverse();
        let c = infer_documents("t", &rev, VersionsMode::Auto, &CLOSED);
        prop_assert_eq!(
            serde_json::to_string(&sorted(&a.versions[0].schema)).unwrap(),
            serde_json::to_string(&sorted(&c.versions[0].schema)).unwrap()
        );
    }
}

/// The value with object keys sorted (to compare schemas regardless of property order).
fn sorted(v: &Value) -> Value {
    match v {
        Value::Object(m) => {
            let mut keys: Vec<&String> = m.keys().collect();
            keys.sort();
            let mut out = serde_json::Map::new();
            for k in keys {
                out.insert(k.clone(), sorted(&m[k]));
            }
            Value::Object(out)
        }
        Value::Array(a) => {
            let mut items: Vec<Value> = a.iter().map(sorted).collect();
            // `required` lists follow first-seen order.
            if items.iter().all(Value::is_string) {
                items.sort_by(|x, y| x.as_str().cmp(&y.as_str()));
            }
            Value::Array(items)
        }
        other => other.clone(),
    }
}

#[test]
fn two_shapes_are_two_versions_numbered_by_id_time() {
    let mut docs = Vec::new();
    // The older shape: flat customer_id and a double total.
    for i in 0..30u32 {
        docs.push(json!({"_id": oid(1_000 + i, i), "customer_id": oid(5, i), "total": 1.5}));
    }
    // The newer one: an embedded customer and integer cents; created later.
    for i in 0..50u32 {
        docs.push(
            json!({"_id": oid(9_000 + i, i), "customer": {"id": oid(5, i)}, "total_cents": 150}),
        );
    }
    let inf = infer_documents("orders", &docs, VersionsMode::Auto, &CLOSED);
    assert_eq!(inf.versions.len(), 2);
    assert_eq!(
        inf.versions[0].documents, 30,
        "the older shape is version 1"
    );
    assert_eq!(inf.versions[1].documents, 50);
    assert_eq!(inf.target, 2, "the target is the largest version");
    assert_eq!(
        inf.versions[0].only_here,
        vec!["customer_id:objectId".to_string(), "total:number".into()]
    );
    assert_eq!(
        inf.versions[1].only_here,
        vec!["customer:object".to_string(), "total_cents:number".into()]
    );
    assert_eq!(
        inf.versions[1].lacks,
        vec!["customer_id".to_string(), "total".into()]
    );
    let v1 = validator(&inf.versions[0].schema);
    let v2 = validator(&inf.versions[1].schema);
    assert!(v1.is_valid(&docs[0]) && !v2.is_valid(&docs[0]));
    assert!(v2.is_valid(&docs[40]) && !v1.is_valid(&docs[40]));

    // Without ObjectId _ids, versions are numbered largest first.
    let plain: Vec<Value> = docs
        .iter()
        .enumerate()
        .map(|(i, d)| {
            let mut d = d.clone();
            d["_id"] = json!(i);
            d
        })
        .collect();
    let inf = infer_documents("orders", &plain, VersionsMode::Auto, &CLOSED);
    assert_eq!(inf.versions[0].documents, 50);
    assert_eq!(inf.target, 1);

    // --versions 1: one version that accepts both.
    let inf = infer_documents("orders", &docs, VersionsMode::One, &CLOSED);
    assert_eq!(inf.versions.len(), 1);
    let v = validator(&inf.versions[0].schema);
    assert!(docs.iter().all(|d| v.is_valid(d)));
    assert!(
        !v.is_valid(&json!({"_id": 1, "total": 1.5})),
        "neither shape's required fields"
    );
}

#[test]
fn a_sub_shape_joins_the_largest_shape_that_contains_it() {
    let docs = vec![
        json!({"_id": 1, "a": 1, "b": "x"}),
        json!({"_id": 2, "a": 1, "b": "x"}),
        json!({"_id": 3, "a": 1, "c": true}),
        json!({"_id": 4, "a": 2}),
    ];
    let inf = infer_documents("t", &docs, VersionsMode::Auto, &CLOSED);
    assert_eq!(inf.versions.len(), 2);
    assert_eq!(
        inf.versions[0].documents, 3,
        "{{a}} joined {{a, b}}, the larger"
    );
    let s = &inf.versions[0].schema;
    assert_eq!(s["required"], json!(["a"]), "b is optional: {s}");
    // A different type at the same path is another shape.
    let docs = vec![json!({"a": 1}), json!({"a": "1"})];
    assert_eq!(
        infer_documents("t", &docs, VersionsMode::Auto, &CLOSED)
            .versions
            .len(),
        2
    );
    // Integers and doubles are one shape, and the schema says number.
    let docs = vec![json!({"a": 1}), json!({"a": 1.5})];
    let inf = infer_documents("t", &docs, VersionsMode::Auto, &CLOSED);
    assert_eq!(inf.versions.len(), 1);
    assert_eq!(
        inf.versions[0].schema["properties"]["a"],
        json!({"type": "number"})
    );
    let docs = vec![json!({"a": 1}), json!({"a": 2})];
    let inf = infer_documents("t", &docs, VersionsMode::Auto, &CLOSED);
    assert_eq!(
        inf.versions[0].schema["properties"]["a"],
        json!({"type": "integer"})
    );
}

#[test]
fn required_ratio_enums_and_formats() {
    let mut docs = Vec::new();
    for i in 0..20 {
        let mut d = json!({
            "status": (["new", "paid"][i % 2]),
            "email": format!("a{i}@example.com"),
            "day": "2024-02-03",
            "id": "123e4567-e89b-12d3-a456-426614174000",
            "free": format!("text {i}"),
        });
        if i < 19 {
            d["often"] = json!(true);
        }
        docs.push(d);
    }
    let inf = infer_documents("t", &docs, VersionsMode::One, &CLOSED);
    let s = &inf.versions[0].schema;
    assert!(!s["required"].as_array().unwrap().contains(&json!("often")));
    assert_eq!(s["properties"]["email"]["format"], "email");
    assert_eq!(s["properties"]["day"]["format"], "date");
    assert_eq!(s["properties"]["id"]["format"], "uuid");
    assert!(s["properties"]["free"].get("format").is_none());
    assert!(
        s["properties"]["status"].get("enum").is_none(),
        "enums only when asked"
    );

    let opts = SchemaOptions {
        required_ratio: 0.9,
        closed: false,
        enums: true,
    };
    let inf = infer_documents("t", &docs, VersionsMode::One, &opts);
    let s = &inf.versions[0].schema;
    assert!(s["required"].as_array().unwrap().contains(&json!("often")));
    assert_eq!(s["properties"]["status"]["enum"], json!(["new", "paid"]));
    assert!(
        s["properties"]["free"].get("enum").is_none(),
        "20 values, each seen once"
    );
    assert!(s.get("additionalProperties").is_none());

    // One value that is not an email: no format.
    docs.push(json!({"status": "new", "email": "nobody", "day": "2024-02-03", "id": "x", "free": "", "often": true}));
    let inf = infer_documents("t", &docs, VersionsMode::One, &CLOSED);
    let s = &inf.versions[0].schema;
    assert!(s["properties"]["email"].get("format").is_none());
    assert!(s["properties"]["id"].get("format").is_none());
    assert_eq!(s["properties"]["day"]["format"], "date");
}

#[test]
fn extended_json_kinds_and_mixed_types() {
    let docs = vec![
        json!({"d": {"$numberDecimal": "1.5"}, "m": null, "arr": [], "b": {"$binary": {"base64": "AA==", "subType": "00"}}}),
        json!({"d": {"$numberDecimal": "2"}, "m": "x", "arr": [1, "a"], "b": {"$binary": {"base64": "AQ==", "subType": "00"}}}),
        json!({"d": {"$numberDecimal": "3"}, "m": {"$oid": "000000000000000000000001"}, "arr": [], "b": {"$binary": {"base64": "", "subType": "04"}}}),
    ];
    let inf = infer_documents("t", &docs, VersionsMode::One, &CLOSED);
    let s = &inf.versions[0].schema;
    let v = validator(s);
    assert!(docs.iter().all(|d| v.is_valid(d)), "{s}");
    assert_eq!(s["properties"]["d"], json!({"$ref": "#/$defs/decimal"}));
    assert!(s["$defs"]["binData"].is_object());
    assert!(!v.is_valid(
        &json!({"d": 1.5, "m": null, "arr": [], "b": {"$binary": {"base64": "", "subType": "00"}}})
    ));
    assert!(!v.is_valid(&json!({"d": {"$numberDecimal": "1"}, "m": 3, "arr": [], "b": {"$binary": {"base64": "", "subType": "00"}}})));
    assert!(!v.is_valid(&json!({"d": {"$numberDecimal": "1"}, "m": null, "arr": [true], "b": {"$binary": {"base64": "", "subType": "00"}}})));
}

#[test]
fn deep_documents_stay_readable() {
    let mut deep = json!({"leaf": 1});
    for _ in 0..120 {
        deep = json!({ "next": deep });
    }
    let docs = vec![json!({"a": 1, "deep": deep})];
    let inf = infer_documents("t", &docs, VersionsMode::Auto, &CLOSED);
    let text = serde_json::to_string_pretty(&inf.versions[0].schema).unwrap();
    // serde_json's default recursion limit, as contracts are read.
    let back: Value = serde_json::from_str(&text).expect("the schema reads back");
    let v = validator(&back);
    assert!(v.is_valid(&docs[0]));
}

#[test]
fn contract_text_has_indexes_in_key_order_and_commented_references() {
    let docs = vec![json!({"_id": oid(1, 1), "customer_id": oid(2, 2), "status": "new", "at": 1})];
    let mut inf = infer_documents("orders", &docs, VersionsMode::Auto, &CLOSED);
    let ix = |j: Value| IndexSpec::from_server_json(&j).unwrap();
    assert_index_assignment(
        &mut inf,
        &[
            ix(json!({"key": {"_id": 1}, "name": "_id_"})),
            ix(json!({"key": {"status": 1, "at": -1}, "name": "status_1_at_-1"})),
            ix(json!({"key": {"customer_id": 1}, "name": "customer_id_1", "unique": true})),
        ],
    );
    inf.versions[0]
        .references
        .push(("customer_id".into(), "customers".into()));
    let text = contract_text(&inf, "from a test");
    assert!(
        text.starts_with("# from a test\ncollection = \"orders\"\ntarget = 1\n"),
        "{text}"
    );
    assert!(text.contains(
        "indexes = [\n  { key = { status = 1, at = -1 }, name = \"status_1_at_-1\" },\n  { key = { customer_id = 1 }, unique = true, name = \"customer_id_1\" },\n]\n"
    ), "{text}");
    assert!(
        text.contains(
            "# references = [\n#   { field = \"customer_id\", collection = \"customers\" },\n# ]\n"
        ),
        "{text}"
    );
    // Uncommented, the suggestion is a valid contract entry.
    let uncommented = text
        .replace("# references", "references")
        .replace("#   {", "  {")
        .replace("# ]", "]");
    let t: toml::Table = toml::from_str(&uncommented).unwrap();
    assert_eq!(
        t["versions"][0]["references"][0]["collection"].as_str(),
        Some("customers")
    );
}

fn assert_index_assignment(inf: &mut Inference, indexes: &[IndexSpec]) {
    assign_indexes(inf, indexes);
    assert!(inf.versions[0].indexes.iter().all(|i| !is_id_index(i)));
}

#[test]
fn indexes_go_to_the_versions_that_have_their_fields() {
    let docs = vec![
        json!({"_id": oid(1, 1), "customer_id": oid(2, 2), "status": "new"}),
        json!({"_id": oid(9, 1), "customer": {"id": oid(2, 2)}, "status": "new"}),
    ];
    let mut inf = infer_documents("orders", &docs, VersionsMode::Auto, &CLOSED);
    let ix = |j: Value| IndexSpec::from_server_json(&j).unwrap();
    assign_indexes(
        &mut inf,
        &[
            ix(json!({"key": {"customer_id": 1}, "name": "a"})),
            ix(json!({"key": {"customer.id": 1}, "name": "b"})),
            ix(json!({"key": {"status": 1}, "name": "c"})),
            ix(json!({"key": {"gone": 1}, "name": "d"})),
        ],
    );
    let names = |v: &InferredVersion| -> Vec<String> {
        v.indexes.iter().map(|i| i.name.clone().unwrap()).collect()
    };
    assert_eq!(names(&inf.versions[0]), ["a", "c", "d"]);
    assert_eq!(names(&inf.versions[1]), ["b", "c", "d"]);
    assert!(inf.notes.iter().any(|n| n.contains("gone")));
}

#[test]
fn too_many_shapes_collapse_into_one_version() {
    let docs: Vec<Value> = (0..(MAX_SHAPES + 5))
        .map(|i| {
            let mut d = json!({"a": 1});
            d[format!("k{i}")] = json!(i);
            d
        })
        .collect();
    let inf = infer_documents("t", &docs, VersionsMode::Auto, &CLOSED);
    assert_eq!(inf.versions.len(), 1);
    let v = validator(&inf.versions[0].schema);
    assert!(docs.iter().all(|d| v.is_valid(d)));
}
