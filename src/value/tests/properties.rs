//! Property tests against the `bson` crate's Extended JSON generator.

use super::*;
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

pub(super) fn arb_document() -> impl Strategy<Value = Document> {
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

pub(super) fn arb_json() -> impl Strategy<Value = Value> {
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
