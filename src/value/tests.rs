//! Cross-module tests: BSON ⇄ relaxed/canonical Extended JSON agreement, error cases, depth
//! limits, fingerprints and property tests against the `bson` crate's Extended JSON generator.

use ::bson::{
    doc, raw::CString, spec::BinarySubtype, Binary, Bson, DateTime, Decimal128, Document,
    JavaScriptCodeWithScope, Regex, Timestamp,
};
use proptest::prelude::*;
use serde_json::{json, Value};

use super::*;

fn parse(s: &str) -> Value {
    serde_json::from_str(s).expect("test JSON")
}

fn text(v: &Value) -> String {
    serde_json::to_string(v).expect("serialise")
}

fn decode_doc(d: &Document) -> Decoded {
    from_bson(&d.to_vec().expect("encode")).expect("from_bson")
}

/// Asserts `a` and `b` are the same value with the same key order and fingerprints.
fn assert_same(a: &Value, b: &Value, ctx: &str) {
    assert_eq!(text(a), text(b), "{ctx}");
    assert_eq!(fingerprint(a), fingerprint(b), "{ctx}");
}

/// Asserts the to_bson round trip of a decoded value.
fn assert_round_trip(v: &Value, ctx: &str) {
    let bytes = to_bson(v).unwrap_or_else(|e| panic!("{ctx}: to_bson: {e}"));
    let back = from_bson(&bytes).unwrap_or_else(|e| panic!("{ctx}: from_bson: {e}"));
    assert_same(&back.value, v, ctx);
}

/// A document with a correct length prefix and terminator around `body`.
fn raw_doc(body: &[u8]) -> Vec<u8> {
    let len = i32::try_from(body.len() + 5).expect("small");
    let mut out = len.to_le_bytes().to_vec();
    out.extend_from_slice(body);
    out.push(0);
    out
}

fn regex(pattern: &str, options: &str) -> Bson {
    Bson::RegularExpression(Regex {
        pattern: CString::try_from(pattern).expect("cstring"),
        options: CString::try_from(options).expect("cstring"),
    })
}

fn binary(subtype: BinarySubtype, bytes: &[u8]) -> Bson {
    Bson::Binary(Binary {
        subtype,
        bytes: bytes.to_vec(),
    })
}

fn db_pointer() -> Bson {
    Bson::try_from(
        json!({"$dbPointer": {"$ref": "db.coll", "$id": {"$oid": "57e193d7a9cc81b4027498b5"}}}),
    )
    .expect("dbpointer")
}

struct Case {
    bson: Bson,
    /// Expected relaxed JSON text of the value.
    relaxed: &'static str,
    /// Other accepted input spellings (relaxed, canonical, legacy) of the same value.
    alts: &'static [&'static str],
    /// The `bson` crate's own relaxed output is spec-conformant for this value.
    crate_relaxed_ok: bool,
}

fn cases() -> Vec<Case> {
    let c = |bson, relaxed, alts| Case {
        bson,
        relaxed,
        alts,
        crate_relaxed_ok: true,
    };
    vec![
        c(Bson::Double(1.5), "1.5", &[r#"{"$numberDouble":"1.5"}"#]),
        c(
            Bson::Double(1.0),
            "1.0",
            &[r#"{"$numberDouble":"1.0"}"#, r#"{"$numberDouble":"1"}"#],
        ),
        c(Bson::Double(-0.0), "-0.0", &[r#"{"$numberDouble":"-0.0"}"#]),
        c(
            Bson::Double(1.234_567_892_123_2e18),
            "1.2345678921232e+18",
            &[r#"{"$numberDouble":"1.2345678921232E+18"}"#],
        ),
        c(Bson::Double(f64::NAN), r#"{"$numberDouble":"NaN"}"#, &[]),
        c(
            Bson::Double(f64::INFINITY),
            r#"{"$numberDouble":"Infinity"}"#,
            &[],
        ),
        c(
            Bson::Double(f64::NEG_INFINITY),
            r#"{"$numberDouble":"-Infinity"}"#,
            &[],
        ),
        c(Bson::String("héllo\u{0}x".into()), r#""héllo\u0000x""#, &[]),
        c(
            Bson::Document(doc! {"a": 1, "b": {"c": "d"}}),
            r#"{"a":1,"b":{"c":"d"}}"#,
            &[r#"{"a":{"$numberInt":"1"},"b":{"c":"d"}}"#],
        ),
        c(
            Bson::Array(vec![
                Bson::Int32(1),
                Bson::String("b".into()),
                Bson::Array(vec![]),
            ]),
            r#"[1,"b",[]]"#,
            &[r#"[{"$numberLong":"1"},"b",[]]"#],
        ),
        c(
            binary(BinarySubtype::Generic, &[1, 2, 3]),
            r#"{"$binary":{"base64":"AQID","subType":"00"}}"#,
            &[
                r#"{"$binary":{"subType":"0","base64":"AQID"}}"#,
                r#"{"$binary":"AQID","$type":"00"}"#,
                r#"{"$type":"0","$binary":"AQID"}"#,
            ],
        ),
        c(
            binary(BinarySubtype::UserDefined(0x80), b"123"),
            r#"{"$binary":{"base64":"MTIz","subType":"80"}}"#,
            &[],
        ),
        c(
            binary(BinarySubtype::BinaryOld, &[0xff, 0xff]),
            r#"{"$binary":{"base64":"//8=","subType":"02"}}"#,
            &[r#"{"$binary":{"base64":"//8=","subType":"2"}}"#],
        ),
        c(
            binary(
                BinarySubtype::Uuid,
                &[
                    0xc8, 0xed, 0xab, 0xc3, 0xf7, 0x38, 0x4c, 0xa3, 0xb6, 0x8d, 0xab, 0x92, 0xa9,
                    0x14, 0x78, 0xa3,
                ],
            ),
            r#"{"$binary":{"base64":"yO2rw/c4TKO2jauSqRR4ow==","subType":"04"}}"#,
            &[
                r#"{"$uuid":"c8edabc3-f738-4ca3-b68d-ab92a91478a3"}"#,
                r#"{"$uuid":"C8EDABC3F7384CA3B68DAB92A91478A3"}"#,
            ],
        ),
        c(
            Bson::ObjectId(
                [
                    0x57, 0xe1, 0x93, 0xd7, 0xa9, 0xcc, 0x81, 0xb4, 0x02, 0x74, 0x98, 0xb5,
                ]
                .into(),
            ),
            r#"{"$oid":"57e193d7a9cc81b4027498b5"}"#,
            &[r#"{"$oid":"57E193D7A9CC81B4027498B5"}"#],
        ),
        c(Bson::Boolean(true), "true", &[]),
        c(Bson::Boolean(false), "false", &[]),
        c(Bson::Null, "null", &[]),
        c(
            Bson::DateTime(DateTime::from_millis(0)),
            r#"{"$date":"1970-01-01T00:00:00Z"}"#,
            &[
                r#"{"$date":{"$numberLong":"0"}}"#,
                r#"{"$date":"1970-01-01T00:00:00.000Z"}"#,
                r#"{"$date":0}"#,
                r#"{"$date":"1970-01-01T01:00:00+01:00"}"#,
            ],
        ),
        c(
            Bson::DateTime(DateTime::from_millis(1_704_067_200_000)),
            r#"{"$date":"2024-01-01T00:00:00Z"}"#,
            &[
                r#"{"$date":"2024-01-01T00:00:00.000Z"}"#,
                r#"{"$date":"2024-01-01T01:00:00+01:00"}"#,
                r#"{"$date":"2024-01-01T00:00:00.000000Z"}"#,
            ],
        ),
        c(
            Bson::DateTime(DateTime::from_millis(1_704_067_200_120)),
            r#"{"$date":"2024-01-01T00:00:00.120Z"}"#,
            &[
                r#"{"$date":"2024-01-01T00:00:00.12Z"}"#,
                r#"{"$date":"2023-12-31T19:00:00.1209-05:00"}"#,
                r#"{"$date":{"$numberLong":"1704067200120"}}"#,
            ],
        ),
        c(
            Bson::DateTime(DateTime::from_millis(-1)),
            r#"{"$date":{"$numberLong":"-1"}}"#,
            &[r#"{"$date":"1969-12-31T23:59:59.999Z"}"#, r#"{"$date":-1}"#],
        ),
        Case {
            bson: Bson::DateTime(DateTime::from_millis(253_402_300_800_000)),
            relaxed: r#"{"$date":{"$numberLong":"253402300800000"}}"#,
            alts: &[],
            // The crate renders dates after 9999 as a saturated ISO string.
            crate_relaxed_ok: false,
        },
        c(
            regex("a.*b", "xi"),
            r#"{"$regularExpression":{"pattern":"a.*b","options":"ix"}}"#,
            &[
                r#"{"$regularExpression":{"options":"xi","pattern":"a.*b"}}"#,
                r#"{"$regex":"a.*b","$options":"ix"}"#,
            ],
        ),
        c(
            db_pointer(),
            r#"{"$dbPointer":{"$ref":"db.coll","$id":{"$oid":"57e193d7a9cc81b4027498b5"}}}"#,
            &[r#"{"$dbPointer":{"$id":{"$oid":"57E193D7A9CC81B4027498B5"},"$ref":"db.coll"}}"#],
        ),
        c(
            Bson::JavaScriptCode("f()".into()),
            r#"{"$code":"f()"}"#,
            &[],
        ),
        c(
            Bson::JavaScriptCodeWithScope(JavaScriptCodeWithScope {
                code: "f()".into(),
                scope: doc! {"y": 1, "z": [true, {"w": 2.5}]},
            }),
            r#"{"$code":"f()","$scope":{"y":1,"z":[true,{"w":2.5}]}}"#,
            &[
                r#"{"$code":"f()","$scope":{"y":{"$numberLong":"1"},"z":[true,{"w":{"$numberDouble":"2.5"}}]}}"#,
            ],
        ),
        c(
            Bson::JavaScriptCodeWithScope(JavaScriptCodeWithScope {
                code: "f()".into(),
                scope: doc! {"y": 1},
            }),
            r#"{"$code":"f()","$scope":{"y":1}}"#,
            &[r#"{"$scope":{"y":{"$numberInt":"1"}},"$code":"f()"}"#],
        ),
        c(Bson::Symbol("sym".into()), r#"{"$symbol":"sym"}"#, &[]),
        c(Bson::Undefined, r#"{"$undefined":true}"#, &[]),
        c(Bson::MinKey, r#"{"$minKey":1}"#, &[]),
        c(Bson::MaxKey, r#"{"$maxKey":1}"#, &[]),
        c(
            Bson::Timestamp(Timestamp {
                time: 42,
                increment: 1,
            }),
            r#"{"$timestamp":{"t":42,"i":1}}"#,
            &[r#"{"$timestamp":{"i":1,"t":42}}"#],
        ),
        c(
            Bson::Timestamp(Timestamp {
                time: u32::MAX,
                increment: u32::MAX,
            }),
            r#"{"$timestamp":{"t":4294967295,"i":4294967295}}"#,
            &[],
        ),
        c(
            Bson::Int32(5),
            "5",
            &[r#"{"$numberInt":"5"}"#, r#"{"$numberLong":"5"}"#],
        ),
        c(
            Bson::Int32(i32::MIN),
            "-2147483648",
            &[r#"{"$numberInt":"-2147483648"}"#],
        ),
        c(Bson::Int64(5), "5", &[r#"{"$numberLong":"5"}"#]),
        c(
            Bson::Int64(i64::MAX),
            "9223372036854775807",
            &[r#"{"$numberLong":"9223372036854775807"}"#],
        ),
        c(
            Bson::Double(18_446_744_073_709_551_615.0),
            "1.8446744073709552e+19",
            &["18446744073709551615"],
        ),
        c(
            Bson::Decimal128("1.50".parse().expect("dec")),
            r#"{"$numberDecimal":"1.50"}"#,
            &[
                r#"{"$numberDecimal":"+1.50"}"#,
                r#"{"$numberDecimal":"150E-2"}"#,
            ],
        ),
        c(
            Bson::Decimal128("1E+3".parse().expect("dec")),
            r#"{"$numberDecimal":"1E+3"}"#,
            &[r#"{"$numberDecimal":"1e3"}"#],
        ),
        c(
            Bson::Decimal128("-Infinity".parse().expect("dec")),
            r#"{"$numberDecimal":"-Infinity"}"#,
            &[r#"{"$numberDecimal":"-inf"}"#],
        ),
        c(
            Bson::Decimal128("NaN".parse().expect("dec")),
            r#"{"$numberDecimal":"NaN"}"#,
            &[r#"{"$numberDecimal":"-nan"}"#],
        ),
        c(
            Bson::Document(doc! {"$ref": "coll", "$id": 1, "$db": "db"}),
            r#"{"$ref":"coll","$id":1,"$db":"db"}"#,
            &[],
        ),
        c(
            Bson::Document(doc! {"$regex": "^a", "x": 1}),
            r#"{"$regex":"^a","x":1}"#,
            &[],
        ),
        c(
            Bson::Document(doc! {"$type": "string"}),
            r#"{"$type":"string"}"#,
            &[],
        ),
        c(Bson::Document(doc! {"$foo": 1}), r#"{"$foo":1}"#, &[]),
    ]
}

#[test]
fn every_type_from_bson_relaxed_and_canonical_agree() {
    for (n, case) in cases().into_iter().enumerate() {
        let ctx = format!("case {n}: {}", case.relaxed);
        let d = doc! {"_id": 1, "x": case.bson};
        let decoded = decode_doc(&d);
        let want = format!(r#"{{"_id":1,"x":{}}}"#, case.relaxed);
        assert_eq!(text(&decoded.value), want, "{ctx}");

        // Our own relaxed text parses back to the same value.
        let again = from_ejson(parse(&want)).unwrap_or_else(|e| panic!("{ctx}: {e}"));
        assert_same(&again.value, &decoded.value, &ctx);
        assert_eq!(again.depth, decoded.depth, "{ctx}");

        for alt in case.alts {
            let input = format!(r#"{{"_id":{{"$numberInt":"1"}},"x":{alt}}}"#);
            let got = from_ejson(parse(&input)).unwrap_or_else(|e| panic!("{ctx}: alt {alt}: {e}"));
            assert_same(&got.value, &decoded.value, &format!("{ctx}: alt {alt}"));
        }

        // The bson crate's canonical output, and its relaxed output where conformant.
        let canonical = Bson::Document(d.clone()).into_canonical_extjson();
        let got = from_ejson(canonical.clone())
            .unwrap_or_else(|e| panic!("{ctx}: canonical {canonical}: {e}"));
        assert_same(
            &got.value,
            &decoded.value,
            &format!("{ctx}: canonical {canonical}"),
        );
        if case.crate_relaxed_ok {
            let relaxed = Bson::Document(d.clone()).into_relaxed_extjson();
            let got = from_ejson(relaxed.clone())
                .unwrap_or_else(|e| panic!("{ctx}: relaxed {relaxed}: {e}"));
            assert_same(
                &got.value,
                &decoded.value,
                &format!("{ctx}: crate relaxed {relaxed}"),
            );
        }

        assert_round_trip(&decoded.value, &ctx);
        // Re-encoding reproduces the original bytes except for int width, option order and
        // unordered regex options; check the types survived by decoding again.
        assert_eq!(
            from_bson(&to_bson(&decoded.value).expect("to_bson"))
                .expect("again")
                .depth,
            decoded.depth
        );
    }
}

#[test]
fn to_bson_reproduces_bson_bytes() {
    let d = doc! {
        "a": 1, "b": i64::MAX, "c": 1.5, "d": "s", "e": [1, {"f": null}], "g": true,
        "h": Bson::DateTime(DateTime::from_millis(5)), "i": Bson::Timestamp(Timestamp { time: 1, increment: 2 }),
        "j": binary(BinarySubtype::BinaryOld, &[1, 2]), "k": regex("p", "im"), "l": db_pointer(),
        "m": Bson::JavaScriptCodeWithScope(JavaScriptCodeWithScope { code: "c".into(), scope: doc! {"s": 1} }),
        "n": Bson::Decimal128("-1.0E-10".parse().expect("dec")), "o": Bson::MinKey, "p": Bson::MaxKey,
        "q": Bson::Undefined, "r": Bson::Symbol("y".into()), "s": Bson::JavaScriptCode("z".into()),
    };
    let bytes = d.to_vec().expect("encode");
    let decoded = from_bson(&bytes).expect("decode");
    assert_eq!(to_bson(&decoded.value).expect("encode"), bytes);
}

#[test]
fn depth_accounting() {
    let cases: &[(&str, usize)] = &[
        (r#"{}"#, 1),
        (r#"{"a":1,"b":{"$oid":"57e193d7a9cc81b4027498b5"}}"#, 1),
        (r#"{"a":{"b":[1,{"c":{"$date":0}}]}}"#, 4),
        (r#"{"a":{"$code":"x","$scope":{"b":{}}}}"#, 3),
        (r#"{"a":[[[]]]}"#, 4),
    ];
    for (input, depth) in cases {
        let d = from_ejson(parse(input)).expect("ejson");
        assert_eq!(d.depth, *depth, "{input}");
        let b = from_bson(&to_bson(&d.value).expect("to_bson")).expect("bson");
        assert_eq!(b.depth, *depth, "{input}");
    }
}

#[test]
fn ejson_errors() {
    let bad = [
        r#"{"$oid":"xyz"}"#,
        r#"{"$oid":"57e193d7a9cc81b4027498b5","x":1}"#,
        r#"{"$oid":"57e193d7a9cc81b4027498b"}"#,
        r#"{"$oid":"57e193d7a9cc81b4027498bg"}"#,
        r#"{"$oid":1}"#,
        r#"{"$oid":"57e193d7a9cc81b4027498b5","$date":0}"#,
        r#"{"$numberInt":"abc"}"#,
        r#"{"$numberInt":"2147483648"}"#,
        r#"{"$numberInt":"-2147483649"}"#,
        r#"{"$numberInt":"1.0"}"#,
        r#"{"$numberInt":"+1"}"#,
        r#"{"$numberInt":""}"#,
        r#"{"$numberInt":5}"#,
        r#"{"$numberInt":"5","x":1}"#,
        r#"{"$numberLong":"9223372036854775808"}"#,
        r#"{"$numberLong":5}"#,
        r#"{"$numberDouble":"abc"}"#,
        r#"{"$numberDouble":"1e400"}"#,
        r#"{"$numberDouble":"-NaN"}"#,
        r#"{"$numberDouble":"inf"}"#,
        r#"{"$numberDouble":1.0}"#,
        r#"{"$numberDecimal":"abc"}"#,
        r#"{"$numberDecimal":"E02"}"#,
        r#"{"$numberDecimal":"."}"#,
        r#"{"$numberDecimal":"1..2"}"#,
        r#"{"$numberDecimal":"12345678901234567890123456789012345"}"#,
        r#"{"$numberDecimal":"1E+6145"}"#,
        r#"{"$numberDecimal":1}"#,
        r#"{"$binary":{"base64":"!!!!","subType":"00"}}"#,
        r#"{"$binary":{"base64":"AQI","subType":"00"}}"#,
        r#"{"$binary":{"base64":"AQID","subType":"zz"}}"#,
        r#"{"$binary":{"base64":"AQID","subType":"000"}}"#,
        r#"{"$binary":{"base64":"AQID","subType":""}}"#,
        r#"{"$binary":{"base64":"AQID","subType":0}}"#,
        r#"{"$binary":{"base64":"AQID"}}"#,
        r#"{"$binary":{"base64":"AQID","subType":"00","x":1}}"#,
        r#"{"$binary":{"base64":"AQID","subType":"00"},"x":1}"#,
        r#"{"$binary":{"base64":"AQID","subType":"00"},"$type":"00"}"#,
        r#"{"$binary":"AQID"}"#,
        r#"{"$binary":"AQID","$type":"zz"}"#,
        r#"{"$binary":"AQID","$type":0}"#,
        r#"{"$binary":"AQID","$type":"00","x":1}"#,
        r#"{"$uuid":"xyz"}"#,
        r#"{"$uuid":"c8edabc3-f738-4ca3-b68d-ab92a91478a"}"#,
        r#"{"$uuid":"c8edabc3-f738-4ca3-b68d-ab92a91478ag"}"#,
        r#"{"$uuid":1}"#,
        r#"{"$date":"not a date"}"#,
        r#"{"$date":"2024-13-01T00:00:00Z"}"#,
        r#"{"$date":{"$numberLong":"x"}}"#,
        r#"{"$date":{"$numberLong":1}}"#,
        r#"{"$date":{"$numberLong":"1","x":1}}"#,
        r#"{"$date":{}}"#,
        r#"{"$date":1.5}"#,
        r#"{"$date":18446744073709551615}"#,
        r#"{"$date":true}"#,
        r#"{"$date":0,"x":1}"#,
        r#"{"$timestamp":{"t":-1,"i":1}}"#,
        r#"{"$timestamp":{"t":4294967296,"i":1}}"#,
        r#"{"$timestamp":{"t":1.0,"i":1}}"#,
        r#"{"$timestamp":{"t":1}}"#,
        r#"{"$timestamp":{"t":1,"i":1,"x":1}}"#,
        r#"{"$timestamp":1}"#,
        r#"{"$regularExpression":{"pattern":"a"}}"#,
        r#"{"$regularExpression":{"pattern":1,"options":""}}"#,
        r#"{"$regularExpression":{"pattern":"a","options":"","x":""}}"#,
        r#"{"$regularExpression":{"pattern":"a\u0000","options":""}}"#,
        r#"{"$regularExpression":{"pattern":"a","options":"\u0000"}}"#,
        r#"{"$regularExpression":"a"}"#,
        r#"{"$regex":"a\u0000","$options":""}"#,
        r#"{"$dbPointer":{"$ref":"a","$id":{"$numberInt":"1"}}}"#,
        r#"{"$dbPointer":{"$ref":"a","$id":{"$oid":"xyz"}}}"#,
        r#"{"$dbPointer":{"$ref":"a","$id":"57e193d7a9cc81b4027498b5"}}"#,
        r#"{"$dbPointer":{"$ref":1,"$id":{"$oid":"57e193d7a9cc81b4027498b5"}}}"#,
        r#"{"$dbPointer":{"$ref":"a","$id":{"$oid":"57e193d7a9cc81b4027498b5"},"x":1}}"#,
        r#"{"$code":1}"#,
        r#"{"$code":"x","$scope":1}"#,
        r#"{"$scope":{}}"#,
        r#"{"$code":"x","$scope":{},"y":1}"#,
        r#"{"$code":"x","y":1}"#,
        r#"{"$code":"x","$scope":{"a":{"$oid":"bad"}}}"#,
        r#"{"$symbol":1}"#,
        r#"{"$minKey":2}"#,
        r#"{"$minKey":1.0}"#,
        r#"{"$maxKey":true}"#,
        r#"{"$undefined":false}"#,
        r#"{"$undefined":1}"#,
        r#"{"a\u0000b":1}"#,
        r#"[{"$oid":"xyz"}]"#,
    ];
    for b in bad {
        let input = format!(r#"{{"ok":1,"x":{b}}}"#);
        let r = from_ejson(parse(&input));
        assert!(r.is_err(), "{input} gave {r:?}");
        // The encoder rejects it too.
        assert!(to_bson(&parse(&input)).is_err(), "to_bson {input}");
    }
    for top in ["[]", "1", "\"s\"", "null"] {
        assert!(from_ejson(parse(top)).is_err(), "{top}");
        assert!(to_bson(&parse(top)).is_err(), "{top}");
    }
}

#[test]
fn ejson_error_paths_and_no_values_in_messages() {
    let e = from_ejson(parse(
        r#"{"items":[1,2,3,{"price":{"$numberInt":"secret123"}}]}"#,
    ))
    .expect_err("bad");
    assert_eq!(e.path(), "items.3.price");
    assert_eq!(e.offset(), None);
    let msg = e.to_string();
    assert!(msg.contains("items.3.price"), "{msg}");
    assert!(!msg.contains("secret123"), "{msg}");
    let e = from_ejson(parse(
        r#"{"a":{"$code":"c","$scope":{"b":{"$oid":"secret"}}}}"#,
    ))
    .expect_err("bad");
    assert_eq!(e.path(), "a.$scope.b");
    assert!(!e.to_string().contains("secret\""), "{e}");
}

#[test]
fn plain_objects_that_look_like_operators() {
    let input = r#"{
        "dbref": {"$ref": "c", "$id": {"$oid": "57E193D7A9CC81B4027498B5"}, "$db": "d"},
        "partial": {"$ref": "c"},
        "foo": {"$foo": 1},
        "q1": {"$regex": {"$regularExpression": {"pattern": "foo*", "options": ""}}, "$options": "ix"},
        "q2": {"$regex": {"$regularExpression": {"pattern": "foo*", "options": ""}}},
        "q3": {"$regex": "a"},
        "q4": {"$regex": 5, "$options": "i"},
        "t1": {"$type": 2},
        "t2": {"$type": "string"}
    }"#;
    let d = from_ejson(parse(input)).expect("plain objects");
    let v = &d.value;
    assert_eq!(
        v["dbref"]["$id"],
        json!({"$oid": "57e193d7a9cc81b4027498b5"})
    );
    assert_eq!(
        v["q1"]["$regex"],
        json!({"$regularExpression": {"pattern": "foo*", "options": ""}})
    );
    assert_eq!(v["q3"], json!({"$regex": "a"}));
    assert_eq!(v["t2"], json!({"$type": "string"}));
    assert_round_trip(v, "operators");
    // Top level is a document, never a type wrapper.
    let top = from_ejson(parse(r#"{"$oid": "xyz"}"#)).expect("top-level $ keys");
    assert_eq!(top.value, json!({"$oid": "xyz"}));
}

#[test]
fn integers_and_doubles_from_json_numbers() {
    let d = from_ejson(parse(
        r#"{"a":1,"b":1.0,"c":-5,"d":18446744073709551615,"e":9223372036854775807,"f":2147483648}"#,
    ))
    .expect("numbers");
    let v = &d.value;
    assert!(v["a"].is_i64() && v["c"].is_i64() && v["e"].is_i64() && v["f"].is_i64());
    assert!(v["b"].is_f64() && v["d"].is_f64());
    let bytes = to_bson(v).expect("to_bson");
    let raw = ::bson::RawDocument::from_bytes(&bytes).expect("raw");
    assert_eq!(
        raw.get("a").expect("a").map(|b| b.element_type()),
        Some(::bson::spec::ElementType::Int32)
    );
    assert_eq!(
        raw.get("f").expect("f").map(|b| b.element_type()),
        Some(::bson::spec::ElementType::Int64)
    );
    assert_eq!(
        raw.get("b").expect("b").map(|b| b.element_type()),
        Some(::bson::spec::ElementType::Double)
    );
}

/// BSON bytes that must be rejected, with the expected error offset where it is meaningful.
fn bson_bad_cases() -> Vec<(&'static str, Vec<u8>, Option<usize>)> {
    let mut v: Vec<(&'static str, Vec<u8>, Option<usize>)> = vec![
        ("empty", vec![], Some(0)),
        ("short prefix", vec![4, 0, 0, 0], Some(0)),
        ("prefix 4", vec![4, 0, 0, 0, 0], Some(0)),
        ("negative prefix", vec![0xff, 0xff, 0xff, 0xff, 0], Some(0)),
        ("missing terminator", vec![5, 0, 0, 0, 1], Some(4)),
        ("prefix too long", vec![6, 0, 0, 0, 0], Some(0)),
    ];
    let mut extra = raw_doc(&[]);
    extra.push(0);
    v.push(("trailing byte after document", extra, Some(0)));
    let body_cases: Vec<(&'static str, Vec<u8>, Option<usize>)> = vec![
        ("unknown type", vec![0x14, b'x', 0], Some(4)),
        ("type 0x00 before end", vec![0x00, 0x0A, b'x', 0], Some(4)),
        ("string len 0", vec![0x02, b'x', 0, 0, 0, 0, 0], Some(7)),
        (
            "string len -1",
            vec![0x02, b'x', 0, 0xff, 0xff, 0xff, 0xff],
            Some(7),
        ),
        (
            "string overrun",
            vec![0x02, b'x', 0, 10, 0, 0, 0, b'a', 0],
            Some(7),
        ),
        (
            "string not NUL-terminated",
            vec![0x02, b'x', 0, 2, 0, 0, 0, b'a', b'b'],
            Some(12),
        ),
        (
            "string invalid UTF-8",
            vec![0x02, b'x', 0, 2, 0, 0, 0, 0xff, 0],
            Some(11),
        ),
        (
            "string truncated length",
            vec![0x02, b'x', 0, 2, 0],
            Some(7),
        ),
        ("key invalid UTF-8", vec![0x0A, 0xff, 0], Some(5)),
        ("key unterminated", vec![0x0A, b'x'], Some(5)),
        ("bool 2", vec![0x08, b'x', 0, 2], Some(7)),
        ("bool truncated", vec![0x08, b'x', 0], Some(7)),
        ("double truncated", vec![0x01, b'x', 0, 1, 2, 3], Some(7)),
        ("int32 truncated", vec![0x10, b'x', 0, 1, 2, 3], Some(7)),
        ("int64 truncated", vec![0x12, b'x', 0, 1, 2, 3], Some(7)),
        ("datetime truncated", vec![0x09, b'x', 0, 1], Some(7)),
        ("timestamp truncated", vec![0x11, b'x', 0, 1], Some(7)),
        (
            "decimal truncated",
            vec![0x13, b'x', 0, 1, 2, 3, 4, 5, 6, 7, 8],
            Some(7),
        ),
        ("oid truncated", vec![0x07, b'x', 0, 1, 2, 3], Some(7)),
        (
            "binary negative length",
            vec![0x05, b'x', 0, 0xff, 0xff, 0xff, 0xff, 0],
            Some(7),
        ),
        (
            "binary overrun",
            vec![0x05, b'x', 0, 10, 0, 0, 0, 0, 1],
            Some(7),
        ),
        (
            "binary missing subtype",
            vec![0x05, b'x', 0, 0, 0, 0, 0],
            Some(11),
        ),
        (
            "old binary inner mismatch",
            vec![0x05, b'x', 0, 6, 0, 0, 0, 2, 3, 0, 0, 0, 1, 2],
            Some(12),
        ),
        (
            "old binary inner too long",
            vec![0x05, b'x', 0, 6, 0, 0, 0, 2, 9, 0, 0, 0, 1, 2],
            Some(12),
        ),
        (
            "old binary too short",
            vec![0x05, b'x', 0, 2, 0, 0, 0, 2, 1, 2],
            Some(12),
        ),
        (
            "embedded trailing bytes",
            vec![0x03, b'x', 0, 7, 0, 0, 0, 0, 0, 0],
            Some(11),
        ),
        (
            "embedded overrun",
            vec![0x03, b'x', 0, 20, 0, 0, 0, 0],
            Some(7),
        ),
        (
            "embedded too short",
            vec![0x03, b'x', 0, 4, 0, 0, 0, 0],
            Some(7),
        ),
        (
            "embedded missing terminator",
            vec![0x03, b'x', 0, 5, 0, 0, 0, 1],
            Some(11),
        ),
        (
            "array trailing bytes",
            vec![0x04, b'x', 0, 7, 0, 0, 0, 0, 0, 0],
            Some(11),
        ),
        (
            "array invalid element",
            vec![0x04, b'x', 0, 9, 0, 0, 0, 0x08, b'0', 0, 7, 0],
            Some(14),
        ),
        (
            "array key unterminated",
            vec![0x04, b'x', 0, 7, 0, 0, 0, 0x0A, b'0', 0],
            Some(12),
        ),
        (
            "cws too small",
            vec![0x0F, b'x', 0, 5, 0, 0, 0, 1, 0, 0, 0, 0],
            Some(7),
        ),
        (
            "cws length too long",
            vec![
                0x0F, b'x', 0, 16, 0, 0, 0, 2, 0, 0, 0, b'a', 0, 5, 0, 0, 0, 0, 0,
            ],
            Some(7),
        ),
        (
            "cws length truncates scope",
            vec![
                0x0F, b'x', 0, 14, 0, 0, 0, 2, 0, 0, 0, b'a', 0, 5, 0, 0, 0, 0,
            ],
            Some(17),
        ),
        (
            "cws overruns document",
            vec![
                0x0F, b'x', 0, 40, 0, 0, 0, 2, 0, 0, 0, b'a', 0, 5, 0, 0, 0, 0,
            ],
            Some(7),
        ),
        (
            "cws bad string length",
            vec![
                0x0F, b'x', 0, 15, 0, 0, 0, 9, 0, 0, 0, b'a', 0, 5, 0, 0, 0, 0,
            ],
            Some(11),
        ),
        (
            "regex unterminated options",
            vec![0x0B, b'x', 0, b'a', 0, b'i'],
            Some(9),
        ),
        (
            "regex invalid UTF-8",
            vec![0x0B, b'x', 0, 0xff, 0, 0],
            Some(7),
        ),
        (
            "dbpointer truncated oid",
            vec![0x0C, b'x', 0, 2, 0, 0, 0, b'a', 0, 1, 2, 3],
            Some(13),
        ),
        (
            "dbpointer bad string",
            vec![
                0x0C, b'x', 0, 0, 0, 0, 0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12,
            ],
            Some(7),
        ),
        ("duplicate key", vec![0x0A, b'x', 0, 0x0A, b'x', 0], Some(7)),
        (
            "symbol bad string",
            vec![0x0E, b'x', 0, 0xff, 0xff, 0xff, 0x7f, 0],
            Some(7),
        ),
        ("code bad string", vec![0x0D, b'x', 0, 0, 0, 0, 0], Some(7)),
    ];
    for (name, body, off) in body_cases {
        v.push((name, raw_doc(&body), off));
    }
    v
}

#[test]
fn bson_errors_with_offsets() {
    for (name, bytes, offset) in bson_bad_cases() {
        let e = from_bson(&bytes).expect_err(name);
        if let Some(off) = offset {
            assert_eq!(e.offset(), Some(off), "{name}: {e}");
        }
        assert!(e.to_string().contains("byte offset"), "{name}: {e}");
    }
    // Nested error: path and absolute offset.
    let d = doc! {"a": {"b": [true, false]}};
    let mut bytes = d.to_vec().expect("encode");
    let pos = bytes.len() - 4; // value byte of the second bool
    assert_eq!(bytes[pos], 0);
    bytes[pos] = 7;
    let e = from_bson(&bytes).expect_err("bool 7");
    assert_eq!(e.path(), "a.b.1");
    assert_eq!(e.offset(), Some(pos));
}

fn sample_document() -> Document {
    let mut d = Document::new();
    for (i, case) in cases().into_iter().enumerate() {
        d.insert(format!("f{i}"), case.bson);
    }
    d.insert("nested", doc! {"a": [1, {"b": [regex("x", "")]}]});
    d
}

#[test]
fn every_truncation_is_an_error() {
    let bytes = sample_document().to_vec().expect("encode");
    assert!(from_bson(&bytes).is_ok());
    for k in 0..bytes.len() {
        assert!(from_bson(&bytes[..k]).is_err(), "prefix of {k} bytes");
        // Same prefix with a consistent length header: must not panic.
        let mut patched = bytes[..k].to_vec();
        if k >= 4 {
            patched[..4].copy_from_slice(&(k as i32).to_le_bytes());
        }
        let _ = from_bson(&patched);
    }
}

#[test]
fn byte_mutations_never_panic() {
    let bytes = sample_document().to_vec().expect("encode");
    for i in 0..bytes.len() {
        for b in [0x00, 0x01, 0x02, 0x05, 0x7f, 0x80, 0xfe, 0xff] {
            let mut m = bytes.clone();
            m[i] = b;
            if let Ok(d) = from_bson(&m) {
                if let Ok(again) = to_bson(&d.value) {
                    let back = from_bson(&again).expect("re-decode");
                    assert_same(&back.value, &d.value, "mutation round trip");
                }
            }
        }
    }
}

fn nested_bson(levels: usize, array: bool) -> Vec<u8> {
    let mut inner = raw_doc(&[]);
    for _ in 1..levels {
        let mut body = vec![if array { 0x04 } else { 0x03 }, b'0', 0];
        body.extend_from_slice(&inner);
        inner = raw_doc(&body);
    }
    inner
}

fn nested_json(levels: usize, array: bool) -> Value {
    let mut v = json!({});
    for _ in 1..levels {
        v = if array {
            json!({"a": [v]})
        } else {
            json!({"a": v})
        };
    }
    v
}

#[test]
fn deep_nesting_is_rejected_without_overflow() {
    for array in [false, true] {
        let ok = from_bson(&nested_bson(MAX_DEPTH, array)).expect("at limit");
        assert_eq!(ok.depth, MAX_DEPTH);
        assert!(matches!(
            from_bson(&nested_bson(MAX_DEPTH + 1, array)),
            Err(DecodeError::Bson {
                kind: BsonErrorKind::TooDeep,
                ..
            })
        ));
        assert!(from_bson(&nested_bson(200, array)).is_err());
        assert!(from_bson(&nested_bson(5000, array)).is_err());
    }
    let ok = from_ejson(nested_json(MAX_DEPTH, false)).expect("at limit");
    assert_eq!(ok.depth, MAX_DEPTH);
    assert!(from_ejson(nested_json(MAX_DEPTH + 1, false)).is_err());
    assert!(from_ejson(nested_json(200, false)).is_err());
    assert!(from_ejson(nested_json(200, true)).is_err());
    assert!(to_bson(&nested_json(200, false)).is_err());
    let _ = fingerprint(&nested_json(200, true));
    let _ = key_hash(&nested_json(200, true));
    // serde_json itself refuses deeper text.
    let deep = format!("{}{}", "[".repeat(200), "]".repeat(200));
    assert!(serde_json::from_str::<Value>(&deep).is_err());
}

#[test]
fn fingerprints() {
    let fp = |s: &str| fingerprint(&parse(s));
    let a = fp(r#"{"a":1,"b":2}"#);
    let b = fp(r#"{"b":2,"a":1}"#);
    assert_eq!(a.content, b.content);
    assert_ne!(a.ordered, b.ordered);

    let n1 = fp(r#"{"x":{"a":1,"b":[{"c":1,"d":2}]},"y":0}"#);
    let n2 = fp(r#"{"y":0,"x":{"b":[{"d":2,"c":1}],"a":1}}"#);
    assert_eq!(n1.content, n2.content);
    assert_ne!(n1.ordered, n2.ordered);

    let distinct = [
        r#"{"a":1}"#,
        r#"{"a":1.0}"#,
        r#"{"a":-0.0}"#,
        r#"{"a":0}"#,
        r#"{"a":"1"}"#,
        r#"{"a":true}"#,
        r#"{"a":null}"#,
        r#"{"a":[]}"#,
        r#"{"a":{}}"#,
        r#"{"a":["a","b"]}"#,
        r#"{"a":["ab"]}"#,
        r#"{"a":[2,1]}"#,
        r#"{"a":[1,2]}"#,
        r#"{"ab":""}"#,
        r#"{"a":"b"}"#,
        r#"{"a":{"$numberDecimal":"1"}}"#,
        r#"{"a":{"b":1}}"#,
        r#"{"a":[{"b":1}]}"#,
        r#"{"a":[[1]]}"#,
        r#"{}"#,
        r#"{"a":1,"b":1}"#,
    ];
    for (i, x) in distinct.iter().enumerate() {
        for y in &distinct[i + 1..] {
            assert_ne!(fp(x).content, fp(y).content, "{x} vs {y}");
            assert_ne!(fp(x).ordered, fp(y).ordered, "{x} vs {y}");
        }
    }

    // Large objects (heap path) are order-insensitive too.
    let keys: Vec<String> = (0..50).map(|i| format!("k{i}")).collect();
    let mut m1 = serde_json::Map::new();
    let mut m2 = serde_json::Map::new();
    for k in &keys {
        m1.insert(k.clone(), json!(k));
    }
    for k in keys.iter().rev() {
        m2.insert(k.clone(), json!(k));
    }
    let (f1, f2) = (
        fingerprint(&Value::Object(m1)),
        fingerprint(&Value::Object(m2)),
    );
    assert_eq!(f1.content, f2.content);
    assert_ne!(f1.ordered, f2.ordered);
}

#[test]
fn key_hash_semantics() {
    let kh = |s: &str| key_hash(&parse(s));
    assert_eq!(kh("1"), kh("1.0"));
    assert_eq!(kh("0"), kh("-0.0"));
    assert_eq!(kh("-7"), kh("-7.0"));
    assert_eq!(kh("9223372036854775808"), kh("9.223372036854775808e18"));
    assert_ne!(kh("18446744073709551615"), kh("1.8446744073709552e19"));
    assert_eq!(kh(r#"{"a":[1,{"b":2}]}"#), kh(r#"{"a":[1.0,{"b":2.0}]}"#));
    assert_ne!(kh("1"), kh("1.5"));
    assert_ne!(kh("1"), kh(r#""1""#));
    assert_ne!(kh("1"), kh(r#"{"$numberDecimal":"1"}"#));
    assert_ne!(kh(r#"{"a":1,"b":2}"#), kh(r#"{"b":2,"a":1}"#));
    assert_ne!(kh("[1,2]"), kh("[2,1]"));
    assert_eq!(
        kh(r#"{"$oid":"57e193d7a9cc81b4027498b5"}"#),
        kh(r#"{"$oid":"57e193d7a9cc81b4027498b5"}"#)
    );
    assert_ne!(
        fingerprint(&parse("1")).content,
        fingerprint(&parse("1.0")).content
    );
    assert_ne!(kh("9223372036854775807"), kh("9.223372036854775807e18"));
}

// ------------------------------------------------------------------ property tests

fn arb_leaf() -> impl Strategy<Value = Bson> {
    prop_oneof![
        Just(Bson::Null),
        any::<bool>().prop_map(Bson::Boolean),
        // The bson crate writes negative NaN as "-NaN", which the spec does not allow; all
        // NaNs are "NaN" in the spec.
        any::<f64>().prop_map(|x| Bson::Double(if x.is_nan() { f64::NAN } else { x })),
        any::<i32>().prop_map(Bson::Int32),
        any::<i64>().prop_map(Bson::Int64),
        any::<String>().prop_map(Bson::String),
        ("[^\0]{0,8}", "[imsux]{0,4}").prop_map(|(p, o)| regex(&p, &o)),
        any::<[u8; 12]>().prop_map(|b| Bson::ObjectId(b.into())),
        (any::<u8>(), prop::collection::vec(any::<u8>(), 0..40))
            .prop_map(|(st, bytes)| binary(BinarySubtype::from(st), &bytes)),
        // The bson crate renders dates after year 9999 as a saturated ISO string (lossy and
        // not spec-conformant), so the relaxed comparison stays within 9999.
        (i64::MIN..=253_402_300_799_999i64)
            .prop_map(|ms| Bson::DateTime(DateTime::from_millis(ms))),
        (0i64..=253_402_300_799_999i64).prop_map(|ms| Bson::DateTime(DateTime::from_millis(ms))),
        any::<[u8; 16]>().prop_map(|b| Bson::Decimal128(Decimal128::from_bytes(b))),
        (any::<u32>(), any::<u32>())
            .prop_map(|(time, increment)| Bson::Timestamp(Timestamp { time, increment })),
        any::<String>().prop_map(Bson::JavaScriptCode),
        any::<String>().prop_map(Bson::Symbol),
        Just(Bson::Undefined),
        Just(Bson::MinKey),
        Just(Bson::MaxKey),
    ]
}

fn to_document(entries: Vec<(String, Bson)>) -> Document {
    entries.into_iter().collect()
}

/// Keys never start with `$`: Extended JSON cannot distinguish such documents from type
/// wrappers (spec "Restrictions and limitations").
fn arb_bson() -> impl Strategy<Value = Bson> {
    arb_leaf().prop_recursive(4, 64, 8, |inner| {
        prop_oneof![
            prop::collection::vec(("[a-z_.]{0,5}", inner.clone()), 0..6)
                .prop_map(|e| Bson::Document(to_document(e))),
            prop::collection::vec(inner.clone(), 0..6).prop_map(Bson::Array),
            (
                any::<String>(),
                prop::collection::vec(("[a-z]{1,4}", inner), 0..4)
            )
                .prop_map(|(code, e)| {
                    Bson::JavaScriptCodeWithScope(JavaScriptCodeWithScope {
                        code,
                        scope: to_document(e),
                    })
                }),
        ]
    })
}

fn arb_document() -> impl Strategy<Value = Document> {
    prop::collection::vec(("[a-zA-Z0-9_]{0,6}", arb_bson()), 0..8).prop_map(to_document)
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn bson_and_ejson_agree(d in arb_document()) {
        let bytes = d.to_vec().expect("encode");
        let from_bytes = from_bson(&bytes).expect("from_bson");
        let relaxed = Bson::Document(d.clone()).into_relaxed_extjson();
        let canonical = Bson::Document(d.clone()).into_canonical_extjson();
        // Through JSON text, as mongoexport lines arrive.
        let relaxed_text = serde_json::to_string(&relaxed).expect("text");
        let from_relaxed = from_ejson(parse(&relaxed_text)).expect("relaxed");
        let from_canonical = from_ejson(canonical).expect("canonical");
        prop_assert_eq!(text(&from_relaxed.value), text(&from_bytes.value));
        prop_assert_eq!(text(&from_canonical.value), text(&from_bytes.value));
        prop_assert_eq!(fingerprint(&from_relaxed.value), fingerprint(&from_bytes.value));
        prop_assert_eq!(fingerprint(&from_canonical.value), fingerprint(&from_bytes.value));
        prop_assert_eq!(from_relaxed.depth, from_bytes.depth);
        prop_assert_eq!(from_canonical.depth, from_bytes.depth);

        // to_bson round trip (and idempotent re-encoding).
        let again = to_bson(&from_bytes.value).expect("to_bson");
        let back = from_bson(&again).expect("from_bson again");
        prop_assert_eq!(text(&back.value), text(&from_bytes.value));
        prop_assert_eq!(fingerprint(&back.value), fingerprint(&from_bytes.value));
        prop_assert_eq!(to_bson(&back.value).expect("to_bson again"), again);
    }

    #[test]
    fn arbitrary_bytes_never_panic(bytes in prop::collection::vec(any::<u8>(), 0..64)) {
        let _ = from_bson(&bytes);
        let mut framed = bytes.clone();
        if framed.len() >= 5 {
            let n = framed.len() as i32;
            framed[..4].copy_from_slice(&n.to_le_bytes());
            if let Ok(d) = from_bson(&framed) {
                if let Ok(b) = to_bson(&d.value) {
                    let back = from_bson(&b).expect("re-decode");
                    prop_assert_eq!(text(&back.value), text(&d.value));
                }
            }
        }
    }

    #[test]
    fn arbitrary_json_never_panics(v in arb_json()) {
        let doc = json!({"x": v});
        if let Ok(d) = from_ejson(doc.clone()) {
            let bytes = to_bson(&d.value).expect("decoded EJSON encodes");
            let back = from_bson(&bytes).expect("decode");
            prop_assert_eq!(text(&back.value), text(&d.value));
            // Normalisation is idempotent.
            let again = from_ejson(d.value.clone()).expect("idempotent");
            prop_assert_eq!(text(&again.value), text(&d.value));
        }
        let _ = to_bson(&doc);
        let _ = fingerprint(&doc);
    }
}

fn arb_json() -> impl Strategy<Value = Value> {
    let key = prop_oneof![
        Just("$oid".to_owned()),
        Just("$date".to_owned()),
        Just("$numberLong".to_owned()),
        Just("$numberInt".to_owned()),
        Just("$numberDouble".to_owned()),
        Just("$numberDecimal".to_owned()),
        Just("$binary".to_owned()),
        Just("$type".to_owned()),
        Just("base64".to_owned()),
        Just("subType".to_owned()),
        Just("$code".to_owned()),
        Just("$scope".to_owned()),
        Just("$regex".to_owned()),
        Just("$options".to_owned()),
        Just("$timestamp".to_owned()),
        Just("t".to_owned()),
        Just("i".to_owned()),
        Just("$uuid".to_owned()),
        Just("$minKey".to_owned()),
        Just("$undefined".to_owned()),
        Just("$dbPointer".to_owned()),
        Just("$ref".to_owned()),
        Just("$id".to_owned()),
        "[a-z$]{0,3}",
    ];
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(Value::from),
        any::<u64>().prop_map(Value::from),
        any::<f64>()
            .prop_map(|x| serde_json::Number::from_f64(x).map_or(Value::Null, Value::Number)),
        prop_oneof![
            Just("AQID".to_owned()),
            Just("00".to_owned()),
            Just("57e193d7a9cc81b4027498b5".to_owned()),
            Just("1970-01-01T00:00:00Z".to_owned()),
            Just("12".to_owned()),
            Just("-1.5E+3".to_owned()),
            Just("NaN".to_owned()),
            Just("c8edabc3-f738-4ca3-b68d-ab92a91478a3".to_owned()),
            ".{0,4}",
        ]
        .prop_map(Value::String),
    ];
    leaf.prop_recursive(4, 48, 4, move |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..4).prop_map(Value::Array),
            prop::collection::vec((key.clone(), inner), 0..4)
                .prop_map(|e| Value::Object(e.into_iter().collect())),
        ]
    })
}

#[test]
fn bson_documents_that_look_like_wrappers_match_ejson() {
    let cases: &[(Document, Option<&str>)] = &[
        (
            doc! {"x": {"$date": "2024-01-01T00:00:00.000Z"}},
            Some(r#"{"x":{"$date":"2024-01-01T00:00:00Z"}}"#),
        ),
        (doc! {"x": {"$numberLong": "5"}}, Some(r#"{"x":5}"#)),
        (
            doc! {"x": {"$regex": "a", "$options": "mi"}},
            Some(r#"{"x":{"$regularExpression":{"pattern":"a","options":"im"}}}"#),
        ),
        (doc! {"x": {"$regex": "a"}}, Some(r#"{"x":{"$regex":"a"}}"#)),
        (
            doc! {"x": {"$ref": "c", "$id": 1}},
            Some(r#"{"x":{"$ref":"c","$id":1}}"#),
        ),
        (doc! {"$oid": "xyz"}, Some(r#"{"$oid":"xyz"}"#)),
        (doc! {"x": {"$oid": "xyz"}}, None),
        (
            doc! {"x": [{"$oid": "57e193d7a9cc81b4027498b5", "y": 1}]},
            None,
        ),
    ];
    for (d, want) in cases {
        let bytes = d.to_vec().expect("encode");
        let relaxed_text =
            serde_json::to_string(&Bson::Document(d.clone()).into_relaxed_extjson()).expect("text");
        match want {
            Some(want) => {
                let got = from_bson(&bytes).expect("from_bson");
                assert_eq!(text(&got.value), *want);
                let ej = from_ejson(parse(&relaxed_text)).expect("from_ejson");
                assert_same(&ej.value, &got.value, want);
                assert_round_trip(&got.value, want);
            }
            None => {
                let e = from_bson(&bytes).expect_err("malformed wrapper");
                assert!(
                    matches!(
                        e,
                        DecodeError::Bson {
                            kind: BsonErrorKind::MalformedWrapper(_),
                            ..
                        }
                    ),
                    "{e}"
                );
                assert!(from_ejson(parse(&relaxed_text)).is_err());
            }
        }
    }
}

// ------------------------------------------------------------------ repeated keys

#[test]
fn a_repeated_key_is_an_error_in_json_as_in_bson() {
    let cases: &[(&str, &str)] = &[
        (r#"{"a":1,"a":2}"#, "a"),
        (r#"{"_id":1,"a":{"b":1},"c":2,"a":{"b":1}}"#, "a"),
        (r#"{"x":{"b":[{"c":1,"c":1}]}}"#, "x.b.0.c"),
        (r#"{"x":[1,[2,{"y":{"z":0,"z":"0"}}]]}"#, "x.1.1.y.z"),
        (
            r#"{"x":{"$oid":"57e193d7a9cc81b4027498b5","$oid":"57e193d7a9cc81b4027498b5"}}"#,
            "x.$oid",
        ),
    ];
    for (text, path) in cases {
        let e = match parse_json(text.as_bytes()) {
            Err(JsonError::Decode(e)) => e,
            other => panic!("{text}: {other:?}"),
        };
        assert_eq!(
            e,
            DecodeError::Ejson {
                path: path.to_string(),
                kind: EjsonErrorKind::DuplicateKey
            },
            "{text}"
        );
        assert_eq!(
            e.to_string(),
            format!("invalid Extended JSON at field `{path}`: duplicate key")
        );
        assert!(from_json(text.as_bytes()).is_err(), "{text}");
    }
    // The same document as BSON: the same kind of error at the same field.
    let mut body = vec![0x10, b'a', 0, 1, 0, 0, 0];
    body.extend_from_slice(&[0x10, b'a', 0, 2, 0, 0, 0]);
    let e = from_bson(&raw_doc(&body)).expect_err("repeated key");
    assert!(
        matches!(&e, DecodeError::Bson { path, kind: BsonErrorKind::DuplicateKey, .. } if path == "a"),
        "{e}"
    );
    // Keys differing only in case or escaping are different keys; `"a"` and `"\u0061"` are not.
    assert!(parse_json(br#"{"a":1,"A":2}"#).is_ok());
    assert!(matches!(
        parse_json(br#"{"a":1,"\u0061":2}"#),
        Err(JsonError::Decode(_))
    ));
}

#[test]
fn strict_json_parsing_otherwise_is_serde_json() {
    for text in [
        r#"{"a":18446744073709551615,"b":-9223372036854775808,"c":1.5e300,"d":-0.0,"e":[],"f":{}}"#,
        r#"{"s":"\u00e9\ud83d\ude00","n":null,"t":true,"nested":[{"a":[{"a":1}]},{"a":2}]}"#,
        r#"  {"a":1}  "#,
    ] {
        let ours = parse_json(text.as_bytes()).expect(text);
        let theirs: Value = serde_json::from_slice(text.as_bytes()).expect(text);
        assert_eq!(text_of(&ours), text_of(&theirs), "{text}");
    }
    // Syntax errors (trailing characters included) stay syntax errors, with serde_json's message.
    for text in [r#"{"a":1"#, r#"{"a":1} x"#, "not json", r#"{"a":1,}"#, ""] {
        match parse_json(text.as_bytes()) {
            Err(e @ JsonError::Syntax(_)) => {
                assert!(e.to_string().starts_with("not valid JSON: "), "{e}")
            }
            other => panic!("{text:?}: {other:?}"),
        }
    }
    // The recursion limit holds as in serde_json.
    let deep = format!("{}{}", "[".repeat(10_000), "]".repeat(10_000));
    assert!(matches!(
        parse_json(format!(r#"{{"a":{deep}}}"#).as_bytes()),
        Err(JsonError::Syntax(_))
    ));
}

/// Key order and all: serde_json's text of a value.
fn text_of(v: &Value) -> String {
    serde_json::to_string(v).expect("serialise")
}

/// A small document tree that may repeat keys, written both as JSON text and as BSON.
#[derive(Debug, Clone)]
enum Tree {
    Int(i32),
    Str(String),
    Obj(Vec<(String, Tree)>),
    Arr(Vec<Tree>),
}

impl Tree {
    fn json(&self) -> String {
        match self {
            Tree::Int(i) => i.to_string(),
            Tree::Str(s) => serde_json::to_string(s).expect("string"),
            Tree::Obj(fields) => {
                let f: Vec<String> = fields
                    .iter()
                    .map(|(k, v)| {
                        format!("{}:{}", serde_json::to_string(k).expect("key"), v.json())
                    })
                    .collect();
                format!("{{{}}}", f.join(","))
            }
            Tree::Arr(items) => {
                let f: Vec<String> = items.iter().map(Tree::json).collect();
                format!("[{}]", f.join(","))
            }
        }
    }

    /// The BSON element `key: self`.
    fn element(&self, key: &str, out: &mut Vec<u8>) {
        let (t, value) = match self {
            Tree::Int(i) => (0x10, i.to_le_bytes().to_vec()),
            Tree::Str(s) => {
                let mut v = i32::try_from(s.len() + 1)
                    .expect("small")
                    .to_le_bytes()
                    .to_vec();
                v.extend_from_slice(s.as_bytes());
                v.push(0);
                (0x02, v)
            }
            Tree::Obj(_) => (0x03, self.bson()),
            Tree::Arr(_) => (0x04, self.bson()),
        };
        out.push(t);
        out.extend_from_slice(key.as_bytes());
        out.push(0);
        out.extend(value);
    }

    /// A document or array as BSON bytes (arrays keyed "0", "1", …).
    fn bson(&self) -> Vec<u8> {
        let mut body = Vec::new();
        match self {
            Tree::Obj(fields) => fields.iter().for_each(|(k, v)| v.element(k, &mut body)),
            Tree::Arr(items) => items
                .iter()
                .enumerate()
                .for_each(|(i, v)| v.element(&i.to_string(), &mut body)),
            _ => unreachable!("only containers are documents"),
        }
        raw_doc(&body)
    }

    /// Objects in the tree (this one included).
    fn objects(&self) -> usize {
        match self {
            Tree::Obj(fields) => 1 + fields.iter().map(|(_, v)| v.objects()).sum::<usize>(),
            Tree::Arr(items) => items.iter().map(Tree::objects).sum(),
            _ => 0,
        }
    }

    /// Repeats a key (the first, or `k` twice when empty) in the `n`-th object in
    /// pre-order, the repeat holding `value`; returns the path of the repeated key.
    fn repeat_key(&mut self, n: &mut usize, path: &str, value: &Tree) -> Option<String> {
        let join = |seg: &str| {
            if path.is_empty() {
                seg.to_string()
            } else {
                format!("{path}.{seg}")
            }
        };
        match self {
            Tree::Obj(fields) if *n == 0 => {
                let key = fields
                    .first()
                    .map_or_else(|| "k".to_string(), |(k, _)| k.clone());
                if fields.is_empty() {
                    fields.push((key.clone(), Tree::Int(0)));
                }
                fields.push((key.clone(), value.clone()));
                Some(join(&key))
            }
            Tree::Obj(fields) => {
                *n -= 1;
                fields
                    .iter_mut()
                    .find_map(|(k, v)| v.repeat_key(n, &join(k), value))
            }
            Tree::Arr(items) => items
                .iter_mut()
                .enumerate()
                .find_map(|(i, v)| v.repeat_key(n, &join(&i.to_string()), value)),
            _ => None,
        }
    }
}

fn arb_tree() -> impl Strategy<Value = Tree> {
    let leaf = prop_oneof![
        any::<i32>().prop_map(Tree::Int),
        "[a-z ]{0,6}".prop_map(Tree::Str)
    ];
    leaf.prop_recursive(4, 40, 5, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..5).prop_map(Tree::Arr),
            prop::collection::btree_map("[a-z_]{1,3}", inner, 0..5)
                .prop_map(|m| Tree::Obj(m.into_iter().collect())),
        ]
    })
}

fn arb_top() -> impl Strategy<Value = Tree> {
    prop::collection::btree_map("[a-z_]{1,3}", arb_tree(), 0..6)
        .prop_map(|m| Tree::Obj(m.into_iter().collect()))
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    /// The same document from BSON bytes and from JSON text: both read it alike, and when
    /// one object repeats a key both refuse it with a duplicate key at the same field.
    #[test]
    fn a_repeated_key_is_refused_alike_in_bson_and_json(
        mut doc in arb_top(),
        pick in any::<prop::sample::Index>(),
        dup_value in arb_tree(),
    ) {
        let clean_json = from_json(doc.json().as_bytes()).expect("json");
        let clean_bson = from_bson(&doc.bson()).expect("bson");
        prop_assert_eq!(text_of(&clean_json.value), text_of(&clean_bson.value));
        let via_serde: Value = serde_json::from_str(&doc.json()).expect("serde_json");
        prop_assert_eq!(text_of(&parse_json(doc.json().as_bytes()).expect("parse")), text_of(&via_serde));

        let mut n = pick.index(doc.objects());
        let want = doc.repeat_key(&mut n, "", &dup_value).expect("an object is picked");

        let from_text = from_json(doc.json().as_bytes()).expect_err("json with a repeated key");
        let from_bytes = from_bson(&doc.bson()).expect_err("bson with a repeated key");
        let JsonError::Decode(from_text) = from_text else {
            panic!("not a decode error: {from_text}");
        };
        prop_assert_eq!(from_text.path(), want.as_str());
        prop_assert_eq!(from_bytes.path(), want.as_str());
        let text_kind = matches!(from_text, DecodeError::Ejson { kind: EjsonErrorKind::DuplicateKey, .. });
        let bytes_kind = matches!(from_bytes, DecodeError::Bson { kind: BsonErrorKind::DuplicateKey, .. });
        prop_assert!(text_kind, "{}", from_text);
        prop_assert!(bytes_kind, "{}", from_bytes);
    }

    /// Without repeated keys, the strict parser is serde_json.
    #[test]
    fn strict_json_parsing_agrees_with_serde_json(v in arb_json()) {
        let text = serde_json::to_string(&json!({"x": v})).expect("text");
        let theirs: Value = serde_json::from_str(&text).expect("serde_json");
        let ours = parse_json(text.as_bytes()).expect("parse_json");
        prop_assert_eq!(text_of(&ours), text_of(&theirs));
    }
}
