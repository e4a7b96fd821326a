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

mod agreement;
mod errors;
mod hashing;
mod properties;
mod raw;
mod repeated_keys;
mod transcode;
