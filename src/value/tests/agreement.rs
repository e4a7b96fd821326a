//! BSON, relaxed and canonical Extended JSON decode to the same value, and re-encode to the same bytes.

use super::*;

pub(super) struct Case {
    pub(super) bson: Bson,
    /// Expected relaxed JSON text of the value.
    pub(super) relaxed: &'static str,
    /// Other accepted input spellings (relaxed, canonical, legacy) of the same value.
    pub(super) alts: &'static [&'static str],
    /// The `bson` crate's own relaxed output is spec-conformant for this value.
    pub(super) crate_relaxed_ok: bool,
}

pub(super) fn cases() -> Vec<Case> {
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
