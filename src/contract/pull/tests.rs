//! Tests of the translation and of the contract files written.

use super::*;
use bson::spec::BinarySubtype;
use bson::{doc, Bson, Document};
use serde_json::json;

/// A BSON document as docsweep sees it: relaxed Extended JSON.
fn relaxed(d: &Document) -> Value {
    crate::value::from_bson(&d.to_vec().unwrap()).unwrap().value
}

/// The schema `contract pull` writes for a collection with this validator.
fn pulled(validator: Document) -> Translation {
    translate_options(Some(&relaxed(&doc! {"validator": validator}))).unwrap()
}

fn compile(schema: &Value) -> jsonschema::Validator {
    jsonschema::draft202012::meta::validate(schema).unwrap();
    jsonschema::draft202012::options()
        .should_validate_formats(true)
        .build(schema)
        .unwrap()
}

struct Case {
    name: &'static str,
    validator: Document,
    /// Documents MongoDB inserts.
    accept: Vec<Document>,
    /// Documents MongoDB rejects ("Document failed validation").
    reject: Vec<Document>,
}

fn oid() -> bson::oid::ObjectId {
    bson::oid::ObjectId::parse_str("65a1b2c3d4e5f60718293a4b").unwrap()
}

fn dec(s: &str) -> Bson {
    Bson::Decimal128(s.parse().unwrap())
}

fn cases() -> Vec<Case> {
    // MongoDB manual, "Specify JSON Schema Validation": the students collection.
    let students = doc! {"$jsonSchema": {
        "bsonType": "object",
        "title": "Student Object Validation",
        "required": ["address", "major", "name", "year"],
        "properties": {
            "name": {"bsonType": "string", "description": "'name' must be a string and is required"},
            "year": {"bsonType": "int", "minimum": 2017, "maximum": 3017,
                     "description": "'year' must be an integer in [ 2017, 3017 ] and is required"},
            "major": {"enum": ["Math", "English", "Computer Science", "History", Bson::Null],
                      "description": "can only be one of the enum values and is required"},
            "gpa": {"bsonType": ["double"], "description": "'gpa' must be a double if the field exists"},
            "address": {
                "bsonType": "object",
                "required": ["city"],
                "properties": {
                    "street": {"bsonType": "string", "description": "must be a string if the field exists"},
                    "city": {"bsonType": "string", "description": "must be a string and is required"}
                }
            }
        }
    }};
    let alice = doc! {
        "_id": oid(), "name": "Alice", "year": 2019_i32, "major": "History", "gpa": 3.5,
        "address": {"city": "NYC", "street": "33rd Street"}
    };
    let with = |k: &str, v: Bson| {
        let mut d = alice.clone();
        d.insert(k, v);
        d
    };
    let without = |k: &str| {
        let mut d = alice.clone();
        d.remove(k);
        d
    };
    vec![
        Case {
            name: "students",
            validator: students,
            accept: vec![
                alice.clone(),
                without("gpa"),
                with("major", Bson::Null),
                with("year", Bson::Int64(3017)),
                with("address", Bson::Document(doc! {"city": "Paris"})),
            ],
            reject: vec![
                // The manual's example of a rejected insert: gpa is an integer.
                with("gpa", Bson::String("3".into())),
                with("gpa", dec("3.0")),
                with("year", Bson::Int32(2016)),
                with("year", Bson::Int32(3018)),
                with("year", Bson::String("2019".into())),
                with("year", Bson::Double(2019.5)),
                with("major", Bson::String("Art".into())),
                with("name", Bson::Int32(1)),
                without("address"),
                without("name"),
                with("address", Bson::Document(doc! {"street": "Main"})),
                with("address", Bson::String("NYC".into())),
                with("address", Bson::ObjectId(oid())),
                with("address", Bson::DateTime(bson::DateTime::from_millis(0))),
            ],
        },
        // "Specify Allowed Field Values" / additionalProperties: false.
        Case {
            name: "players: closed document, objectId _id, minLength",
            validator: doc! {"$jsonSchema": {
                "required": ["username", "password"],
                "properties": {
                    "_id": {"bsonType": "objectId"},
                    "username": {"bsonType": "string"},
                    "password": {"bsonType": "string", "minLength": 8,
                                 "description": "must be a string of at least 8 characters"}
                },
                "additionalProperties": false
            }},
            accept: vec![doc! {"_id": oid(), "username": "ann", "password": "12345678"}],
            reject: vec![
                doc! {"_id": oid(), "username": "ann", "password": "1234567"},
                doc! {"_id": oid(), "username": "ann", "password": "12345678", "admin": true},
                doc! {"_id": "ann", "username": "ann", "password": "12345678"},
                doc! {"_id": oid(), "username": "ann"},
            ],
        },
        // "Specify Null Field Values": bsonType arrays.
        Case {
            name: "bsonType arrays",
            validator: doc! {"$jsonSchema": {
                "bsonType": "object",
                "properties": {
                    "name": {"bsonType": ["string", "null"]},
                    "ref": {"bsonType": ["objectId", "int"]},
                    "meta": {"bsonType": ["object", "null"], "properties": {"v": {"bsonType": "int"}}}
                }
            }},
            accept: vec![
                doc! {"_id": 1, "name": "x"},
                doc! {"_id": 1, "name": Bson::Null},
                doc! {"_id": 1},
                doc! {"_id": 1, "ref": oid()},
                doc! {"_id": 1, "ref": 7_i32},
                doc! {"_id": 1, "meta": Bson::Null},
                doc! {"_id": 1, "meta": {"v": 1_i32}},
            ],
            reject: vec![
                doc! {"_id": 1, "name": 5_i32},
                doc! {"_id": 1, "ref": "65a1b2c3d4e5f60718293a4b"},
                doc! {"_id": 1, "ref": 1.5},
                doc! {"_id": 1, "meta": oid()},
                doc! {"_id": 1, "meta": {"v": "1"}},
            ],
        },
        Case {
            name: "number and decimal",
            validator: doc! {"$jsonSchema": {
                "bsonType": "object",
                "required": ["price"],
                "properties": {
                    "price": {"bsonType": "number", "minimum": 0, "description": "any numeric type"},
                    "qty": {"bsonType": "int", "minimum": 0, "exclusiveMinimum": true},
                    "rate": {"bsonType": "decimal"},
                    "ratio": {"type": "number", "maximum": dec("1")}
                }
            }},
            accept: vec![
                doc! {"price": 5_i32},
                doc! {"price": Bson::Int64(5_000_000_000)},
                doc! {"price": 2.5},
                doc! {"price": dec("9.99")},
                doc! {"price": 1_i32, "qty": 1_i32, "rate": dec("0.1"), "ratio": 0.5},
                doc! {"price": 1_i32, "ratio": 1_i32},
            ],
            reject: vec![
                doc! {},
                doc! {"price": -1_i32},
                doc! {"price": "5"},
                doc! {"price": 1_i32, "qty": 0_i32},
                doc! {"price": 1_i32, "rate": 0.1},
                doc! {"price": 1_i32, "ratio": 1.5},
                doc! {"price": 1_i32, "ratio": "1"},
            ],
        },
        Case {
            name: "dates",
            validator: doc! {"$jsonSchema": {
                "bsonType": "object",
                "required": ["createdAt"],
                "properties": {"createdAt": {"bsonType": "date"}, "seen": {"bsonType": "timestamp"}}
            }},
            accept: vec![
                doc! {"createdAt": bson::DateTime::from_millis(1_704_067_200_000)},
                doc! {"createdAt": bson::DateTime::from_millis(-86_400_000)},
                doc! {"createdAt": bson::DateTime::from_millis(0),
                "seen": bson::Timestamp { time: 1, increment: 2 }},
            ],
            reject: vec![
                doc! {"createdAt": "2024-01-01T00:00:00Z"},
                doc! {"createdAt": 1_704_067_200_000_i64},
                doc! {"createdAt": bson::DateTime::from_millis(0), "seen": bson::DateTime::from_millis(0)},
            ],
        },
        Case {
            name: "arrays: items as a schema and as a tuple",
            validator: doc! {"$jsonSchema": {
                "bsonType": "object",
                "properties": {
                    "tags": {"bsonType": "array", "minItems": 1, "uniqueItems": true,
                             "items": {"bsonType": "string"}},
                    "point": {"bsonType": "array", "items": [{"bsonType": "double"}, {"bsonType": "double"}],
                              "additionalItems": false},
                    "ids": {"bsonType": "array", "items": {"bsonType": "objectId"}, "maxItems": 2}
                }
            }},
            accept: vec![
                doc! {"tags": ["a", "b"]},
                doc! {"point": [1.5, 2.5]},
                doc! {"point": [1.5]},
                doc! {"ids": [oid()]},
            ],
            reject: vec![
                doc! {"tags": []},
                doc! {"tags": ["a", "a"]},
                doc! {"tags": ["a", 1_i32]},
                doc! {"tags": "a"},
                doc! {"point": [1.5, 2.5, 3.5]},
                doc! {"point": ["1.5"]},
                doc! {"ids": ["x"]},
                doc! {"ids": [oid(), oid(), oid()]},
            ],
        },
        Case {
            name: "dependencies, patternProperties, combinators, pattern",
            validator: doc! {"$jsonSchema": {
                "bsonType": "object",
                "dependencies": {
                    "card": ["billing"],
                    "coupon": {"required": ["campaign"]}
                },
                "patternProperties": {"^x_": {"bsonType": "string"}},
                "properties": {
                    "email": {"bsonType": "string", "pattern": "^[^@]+@example\\.com$"},
                    "kind": {"oneOf": [{"enum": ["a"]}, {"enum": ["b"]}]},
                    "flag": {"not": {"bsonType": "bool"}},
                    "code": {"anyOf": [{"bsonType": "int"}, {"bsonType": "string", "maxLength": 3}]},
                    "both": {"allOf": [{"bsonType": "string"}, {"minLength": 2}]}
                }
            }},
            accept: vec![
                doc! {"card": 1_i32, "billing": "x"},
                doc! {"coupon": "c", "campaign": "k"},
                doc! {"x_a": "s", "email": "a@example.com", "kind": "a", "flag": 1_i32,
                "code": 7_i32, "both": "ab"},
                doc! {"code": "abc"},
            ],
            reject: vec![
                doc! {"card": 1_i32},
                doc! {"coupon": "c"},
                doc! {"x_a": 1_i32},
                doc! {"email": "a@example.org"},
                doc! {"kind": "c"},
                doc! {"flag": true},
                doc! {"code": "abcd"},
                doc! {"code": 1.5},
                doc! {"both": "a"},
                doc! {"both": 12_i32},
            ],
        },
        Case {
            name: "enum of ObjectIds and an encrypted field",
            validator: doc! {"$jsonSchema": {
                "bsonType": "object",
                "properties": {
                    "owner": {"enum": [oid()]},
                    "ssn": {"encrypt": {"bsonType": "string",
                                        "algorithm": "AEAD_AES_256_CBC_HMAC_SHA_512-Deterministic"}}
                }
            }},
            accept: vec![
                doc! {"owner": oid()},
                doc! {"ssn": bson::Binary { subtype: BinarySubtype::Encrypted, bytes: vec![1, 2, 3] }},
            ],
            reject: vec![
                doc! {"owner": "65a1b2c3d4e5f60718293a4b"},
                doc! {"owner": bson::oid::ObjectId::from_bytes([0; 12])},
                doc! {"ssn": "123-45-6789"},
                doc! {"ssn": bson::Binary { subtype: BinarySubtype::Generic, bytes: vec![1] }},
            ],
        },
    ]
}

#[test]
fn documented_validators_accept_and_reject_as_mongodb_does() {
    for case in cases() {
        let t = pulled(case.validator.clone());
        let v = compile(&t.schema);
        for d in &case.accept {
            let errors: Vec<String> = v.iter_errors(&relaxed(d)).map(|e| e.to_string()).collect();
            assert!(
                errors.is_empty(),
                "{}: {d} should pass: {errors:?}\n{:#}",
                case.name,
                t.schema
            );
        }
        for d in &case.reject {
            assert!(
                !v.is_valid(&relaxed(d)),
                "{}: {d} should fail\n{:#}",
                case.name,
                t.schema
            );
        }
    }
}

/// One sample of every BSON type docsweep can decode, labelled with its alias.
fn samples() -> Vec<(&'static str, Bson)> {
    let cstr = |s: &str| -> bson::raw::CString { s.to_string().try_into().unwrap() };
    vec![
        ("double", Bson::Double(2.5)),
        ("double", Bson::Double(f64::NAN)),
        ("double", Bson::Double(f64::NEG_INFINITY)),
        ("string", Bson::String("s".into())),
        ("object", Bson::Document(doc! {"a": 1_i32})),
        ("object", Bson::Document(doc! {})),
        ("array", Bson::Array(vec![Bson::Int32(1)])),
        (
            "binData",
            Bson::Binary(bson::Binary {
                subtype: BinarySubtype::Generic,
                bytes: vec![0xff, 0],
            }),
        ),
        ("undefined", Bson::Undefined),
        ("objectId", Bson::ObjectId(oid())),
        ("bool", Bson::Boolean(false)),
        ("date", Bson::DateTime(bson::DateTime::from_millis(1))),
        ("date", Bson::DateTime(bson::DateTime::from_millis(-1))),
        ("null", Bson::Null),
        (
            "regex",
            Bson::RegularExpression(bson::Regex {
                pattern: cstr("^a"),
                options: cstr("i"),
            }),
        ),
        ("javascript", Bson::JavaScriptCode("f()".into())),
        ("symbol", Bson::Symbol("sym".into())),
        (
            "javascriptWithScope",
            Bson::JavaScriptCodeWithScope(bson::JavaScriptCodeWithScope {
                code: "f(x)".into(),
                scope: doc! {"x": 1_i32},
            }),
        ),
        ("int", Bson::Int32(5)),
        (
            "timestamp",
            Bson::Timestamp(bson::Timestamp {
                time: 7,
                increment: 1,
            }),
        ),
        ("long", Bson::Int64(1 << 40)),
        ("decimal", dec("1.25")),
        ("minKey", Bson::MinKey),
        ("maxKey", Bson::MaxKey),
    ]
}

const ALIASES: &[&str] = &[
    "double",
    "string",
    "object",
    "array",
    "binData",
    "undefined",
    "objectId",
    "bool",
    "date",
    "null",
    "regex",
    "javascript",
    "symbol",
    "javascriptWithScope",
    "int",
    "timestamp",
    "long",
    "decimal",
    "minKey",
    "maxKey",
    "number",
];

/// Where relaxed Extended JSON cannot carry the BSON distinction: Int32 and Int64 are
/// both JSON integers, and an integer is also a JSON number. (A double with no fraction,
/// such as 2.0, likewise passes `int`; the samples use 2.5.)
fn indistinguishable(alias: &str, label: &str) -> bool {
    matches!(
        (alias, label),
        ("int" | "long", "int" | "long") | ("double", "int" | "long")
    )
}

#[test]
fn every_bson_type_against_every_alias() {
    for alias in ALIASES {
        let t = pulled(doc! {"$jsonSchema": {"properties": {"v": {"bsonType": *alias}}}});
        let v = compile(&t.schema);
        for (label, value) in samples() {
            let mongo = *alias == label
                || (*alias == "number" && matches!(label, "int" | "long" | "double" | "decimal"));
            let expected = mongo || indistinguishable(alias, label);
            let d = relaxed(&doc! {"v": value.clone()});
            assert_eq!(
                v.is_valid(&d),
                expected,
                "bsonType {alias} with a {label} ({d}):\n{:#}",
                t.schema
            );
        }
    }
}

#[test]
fn translation_shapes() {
    let t = pulled(doc! {"$jsonSchema": {
        "bsonType": "object",
        "properties": {
            "_id": {"bsonType": "objectId"},
            "at": {"bsonType": ["date", "null"], "description": "when"},
            "n": {"bsonType": "long", "minimum": 0, "exclusiveMinimum": false},
            "pair": {"items": [{"bsonType": "int"}], "additionalItems": {"bsonType": "string"}}
        }
    }});
    let s = &t.schema;
    assert_eq!(s["$schema"], DRAFT_2020_12);
    assert_eq!(s["type"], "object");
    assert!(s.get("not").is_none(), "the root is always a document");
    assert_eq!(s["properties"]["_id"], json!({"$ref": "#/$defs/objectId"}));
    let mut oid_def = s["$defs"]["objectId"].clone();
    oid_def.as_object_mut().unwrap().remove("description");
    assert_eq!(
        oid_def,
        json!({"type": "object",
               "properties": {"$oid": {"type": "string", "pattern": "^[0-9a-f]{24}$"}},
               "required": ["$oid"], "additionalProperties": false})
    );
    assert_eq!(
        s["properties"]["at"],
        json!({"anyOf": [{"type": "null"}, {"$ref": "#/$defs/date"}], "description": "when"})
    );
    assert_eq!(
        s["properties"]["n"],
        json!({"type": "integer", "minimum": 0})
    );
    assert_eq!(
        s["properties"]["pair"],
        json!({"prefixItems": [{"type": "integer"}], "items": {"type": "string"}})
    );
    let defs: Vec<&String> = s["$defs"].as_object().unwrap().keys().collect();
    assert_eq!(defs, ["objectId", "date"], "only the shapes used");
    assert!(t.notes.is_empty(), "{:?}", t.notes);
}

#[test]
fn validators_without_json_schema() {
    let t = translate_options(None).unwrap();
    assert_eq!(t.schema, permissive_schema());
    assert!(t.notes[0].contains("no validator"));
    let t = translate_options(Some(&json!({}))).unwrap();
    assert_eq!(t.schema, permissive_schema());
    // The manual's query-operator validator.
    let t = pulled(doc! {"$or": [
        {"phone": {"$type": "string"}},
        {"email": {"$regex": "@mongodb\\.com$"}},
        {"status": {"$in": ["Unknown", "Incomplete"]}}
    ]});
    assert_eq!(t.schema, permissive_schema());
    assert!(t.notes[0].contains("$or"), "{:?}", t.notes);
    let t = translate_options(Some(&json!({
        "validator": {"$jsonSchema": {"required": ["a"]}, "status": "x"},
        "validationLevel": "moderate", "validationAction": "warn"
    })))
    .unwrap();
    assert_eq!(t.schema["required"], json!(["a"]));
    assert_eq!(t.notes.len(), 3, "{:?}", t.notes);
}

#[test]
fn untranslatable_validators_are_errors() {
    for (bad, at) in [
        (json!({"bsonType": "float"}), "/bsonType"),
        (json!({"type": "int"}), "/type"),
        (json!({"properties": {"a": 1}}), "/properties/a"),
        (
            json!({"properties": {"a": {"minLength": -1}}}),
            "/properties/a/minLength",
        ),
        (json!({"bsonType": "string", "type": "string"}), ""),
        (json!({"properties": {"a": {"pattern": "("}}}), ""),
    ] {
        let e = translate(&bad).unwrap_err();
        assert_eq!(e.pointer, at, "{bad}: {e}");
    }
}

fn spec(key: &[(&str, KeyDirection)], unique: bool, name: &str) -> IndexSpec {
    IndexSpec {
        key: super::super::IndexKey(
            key.iter()
                .map(|(f, d)| (f.to_string(), d.clone()))
                .collect(),
        ),
        unique,
        sparse: false,
        name: Some(name.into()),
    }
}

#[test]
fn writes_a_loadable_contract_and_refuses_to_overwrite() {
    use KeyDirection::{Asc, Desc};
    let dir = tempfile::tempdir().unwrap();
    let indexes = vec![
        spec(&[("_id", Asc)], false, "_id_"),
        spec(
            &[("status", Asc), ("created_at", Desc)],
            false,
            "status_1_created_at_-1",
        ),
        spec(&[("email", Asc)], true, "email_1"),
        spec(&[("customer.id", Asc)], false, "customer.id_1"),
    ];
    let p = prepare(dir.path(), "orders", None).unwrap();
    assert_eq!(p.version, 1);
    let schema = pulled(doc! {"$jsonSchema": {"bsonType": "object", "required": ["_id"]}}).schema;
    let w = write(&p, &schema, &indexes, Some("pulled in a test")).unwrap();
    assert!(w.created);
    assert_eq!((w.version, w.target, w.indexes), (1, 1, 3));
    let text = std::fs::read_to_string(&w.contract_path).unwrap();
    assert!(
        text.starts_with("collection = \"orders\"\ntarget = 1\n"),
        "{text}"
    );
    assert!(
        text.contains("# pulled in a test\n[[versions]]\nversion = 1\n"),
        "{text}"
    );
    assert!(
        text.contains(
            "  { key = { status = 1, created_at = -1 }, name = \"status_1_created_at_-1\" },\n"
        ),
        "{text}"
    );
    assert!(text.contains("  { key = { email = 1 }, unique = true, name = \"email_1\" },\n"));
    assert!(text.contains("  { key = { \"customer.id\" = 1 }, name = \"customer.id_1\" },\n"));
    assert!(!text.contains("_id_"));
    let c = crate::contract::load(&w.contract_path).unwrap();
    let keys: Vec<String> = c.versions[0]
        .indexes
        .iter()
        .map(|i| i.key.fields_label())
        .collect();
    assert_eq!(keys, ["status,created_at", "email", "customer.id"]);
    assert_eq!(
        serde_json::from_str::<Value>(&std::fs::read_to_string(&w.schema_path).unwrap()).unwrap(),
        schema
    );

    // The next pull appends version 2; the target stays.
    let p2 = prepare(dir.path(), "orders", None).unwrap();
    assert_eq!(p2.version, 2);
    let w2 = write(&p2, &permissive_schema(), &[], None).unwrap();
    assert!(!w2.created);
    assert_eq!(w2.target, 1);
    let c = crate::contract::load(&w2.contract_path).unwrap();
    assert_eq!(c.versions.len(), 2);
    assert!(c.version(2).unwrap().indexes.is_empty());

    // Existing versions and schema files are never overwritten.
    let e = prepare(dir.path(), "orders", Some(2))
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("contract.toml") && e.contains("version 2 already exists"),
        "{e}"
    );
    std::fs::write(dir.path().join("orders/v5.schema.json"), "{}").unwrap();
    let e = prepare(dir.path(), "orders", Some(5))
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("v5.schema.json") && e.contains("refusing to overwrite"),
        "{e}"
    );
    let p7 = prepare(dir.path(), "orders", Some(7)).unwrap();
    assert_eq!(p7.version, 7);

    // A contract of another collection in the folder is refused.
    std::fs::create_dir_all(dir.path().join("x")).unwrap();
    std::fs::write(
        dir.path().join("x/contract.toml"),
        "collection = \"y\"\ntarget = 1\n[[versions]]\nversion = 1\nschema = \"v1.schema.json\"\n",
    )
    .unwrap();
    let e = prepare(dir.path(), "x", None).unwrap_err().to_string();
    assert!(e.contains("x/contract.toml") && e.contains("\"y\""), "{e}");
    assert!(prepare(dir.path(), "../etc", None).is_err());
}

#[test]
fn an_inline_versions_array_is_not_appended_to() {
    let dir = tempfile::tempdir().unwrap();
    let c = dir.path().join("a");
    std::fs::create_dir_all(&c).unwrap();
    std::fs::write(c.join("v1.schema.json"), permissive_schema().to_string()).unwrap();
    let original = "collection = \"a\"\ntarget = 1\nversions = [{ version = 1, schema = \"v1.schema.json\" }]\n";
    std::fs::write(c.join("contract.toml"), original).unwrap();
    let p = prepare(dir.path(), "a", None).unwrap();
    assert_eq!(p.version, 2);
    let e = write(&p, &permissive_schema(), &[], None)
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("add this by hand") && e.contains("version = 2"),
        "{e}"
    );
    assert_eq!(
        std::fs::read_to_string(c.join("contract.toml")).unwrap(),
        original
    );
    assert!(!c.join("v2.schema.json").exists());
}

#[test]
fn toml_keys_and_strings() {
    assert_eq!(toml_key("status"), "status");
    assert_eq!(toml_key("customer.id"), "\"customer.id\"");
    assert_eq!(toml_key("$**"), "\"$**\"");
    assert_eq!(toml_string("a\"b\\c\n"), "\"a\\\"b\\\\c\\n\"");
    let ix = spec(
        &[
            ("_fts", KeyDirection::Special("text".into())),
            ("_ftsx", KeyDirection::Asc),
        ],
        false,
        "t",
    );
    assert_eq!(
        index_entry(&ix),
        "{ key = { _fts = \"text\", _ftsx = 1 }, name = \"t\" }"
    );
}
