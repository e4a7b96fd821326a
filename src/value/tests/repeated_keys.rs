//! Repeated keys are an error in JSON as in BSON; otherwise strict parsing is serde_json.

use super::properties::arb_json;
use super::*;
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
                assert!(e.to_string().starts_with("not valid JSON: "), "{e}");
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
pub(super) enum Tree {
    Int(i32),
    Str(String),
    Obj(Vec<(String, Tree)>),
    Arr(Vec<Tree>),
}

impl Tree {
    pub(super) fn json(&self) -> String {
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
    pub(super) fn bson(&self) -> Vec<u8> {
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
    pub(super) fn objects(&self) -> usize {
        match self {
            Tree::Obj(fields) => 1 + fields.iter().map(|(_, v)| v.objects()).sum::<usize>(),
            Tree::Arr(items) => items.iter().map(Tree::objects).sum(),
            _ => 0,
        }
    }

    /// Repeats a key (the first, or `k` twice when empty) in the `n`-th object in
    /// pre-order, the repeat holding `value`; returns the path of the repeated key.
    pub(super) fn repeat_key(&mut self, n: &mut usize, path: &str, value: &Tree) -> Option<String> {
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

pub(super) fn arb_tree() -> impl Strategy<Value = Tree> {
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

pub(super) fn arb_top() -> impl Strategy<Value = Tree> {
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
