//! Malformed input: Extended JSON and BSON errors, their offsets and paths, truncations, mutations and nesting limits.

use super::agreement::cases;
use super::*;
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

/// BSON bytes that must be rejected, with the expected error offset where it is meaningful.
pub(super) fn bson_bad_cases() -> Vec<(&'static str, Vec<u8>, Option<usize>)> {
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

pub(super) fn sample_document() -> Document {
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

pub(super) fn nested_bson(levels: usize, array: bool) -> Vec<u8> {
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
