//! Fingerprints and key hashes.

use super::*;
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
