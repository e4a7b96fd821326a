//! In-place validation (`value::raw`): the preflight sends every document `from_bson` would
//! refuse or rewrite to the decode path, and on the documents it accepts the in-place view,
//! the projection, the validators' answers and their errors are exactly the decoded ones.

use std::sync::OnceLock;

use ::bson::oid::ObjectId;
use jsonschema::Validator;

use super::agreement::cases;
use super::errors::{bson_bad_cases, nested_bson, sample_document};
use super::properties::arb_document;
use super::repeated_keys::{arb_top, arb_tree};
use super::*;
use crate::contract::Contract;
use crate::scan::{classify, classify_raw, DocContext};
use crate::source::{Encoding, Location};
use crate::value::raw::{agreement, agreement_validators, preflight, RawBson};

fn validators() -> &'static [(Validator, Validator<RawBson>)] {
    static V: OnceLock<Vec<(Validator, Validator<RawBson>)>> = OnceLock::new();
    V.get_or_init(agreement_validators)
}

pub(super) fn contracts() -> &'static [Contract] {
    static C: OnceLock<Vec<Contract>> = OnceLock::new();
    C.get_or_init(|| {
        ["orders", "customers"]
            .iter()
            .map(|c| {
                let path = format!(
                    "{}/examples/shop/schemas/{c}/contract.toml",
                    env!("CARGO_MANIFEST_DIR")
                );
                crate::contract::load(std::path::Path::new(&path)).expect("example contract")
            })
            .collect()
    })
}

/// In place and decoded agree on `bytes` (checked when the preflight accepts it), the
/// contracts classify it alike, examining it in place gives the decode path's facts (class,
/// errors, keys, sample), and the preflight answers `want_in_place`.
fn check(bytes: &[u8], want_in_place: Option<bool>, ctx: &str) {
    if let Some(want) = want_in_place {
        assert_eq!(preflight(bytes).is_some(), want, "{ctx}: preflight");
    }
    if let Err(e) = agreement(bytes, validators()) {
        panic!("{ctx}: {e}");
    }
    if let Some(checked) = preflight(bytes) {
        let d = from_bson(bytes).expect("accepted");
        for c in contracts() {
            assert_eq!(
                classify(c, &d.value),
                classify_raw(c, RawBson::root(checked)),
                "{ctx}: {}",
                c.collection
            );
            let mut doc = DocContext::new(c, Encoding::Bson, vec!["_id".into()], 5, false);
            let at = Location::Offset(7);
            let in_place = format!("{:?}", doc.examine(bytes, at, None));
            doc.in_place = false;
            let decoded = format!("{:?}", doc.examine(bytes, at, None));
            assert_eq!(in_place, decoded, "{ctx}: facts differ ({})", c.collection);
        }
    }
}

/// Whether `b` holds an embedded document with a `$`-prefixed key (a scope's own keys aside).
pub(super) fn has_dollar_key(b: &Bson) -> bool {
    match b {
        Bson::Document(d) => d
            .iter()
            .any(|(k, v)| k.starts_with('$') || has_dollar_key(v)),
        Bson::Array(a) => a.iter().any(has_dollar_key),
        Bson::JavaScriptCodeWithScope(c) => c.scope.values().any(has_dollar_key),
        _ => false,
    }
}

/// Every corpus value that goes in place, in one document.
fn every_type_document() -> Vec<u8> {
    let mut every: Document = cases()
        .into_iter()
        .enumerate()
        .filter(|(_, c)| !has_dollar_key(&c.bson))
        .map(|(i, c)| (format!("f{i}"), c.bson))
        .collect();
    every.insert("nested", doc! {"a": [1, {"b": [regex("x", "")]}]});
    every.to_vec().expect("encode")
}

#[test]
fn every_bson_type_in_place() {
    let mut in_place = 0;
    for (i, case) in cases().into_iter().enumerate() {
        let b = case.bson;
        let want = !has_dollar_key(&b);
        in_place += usize::from(want);
        for d in [
            doc! {"x": b.clone()},
            doc! {"_id": 1, "a": [b.clone(), {"y": b.clone()}], "z": {"w": [[b.clone()]]}},
        ] {
            check(
                &d.to_vec().expect("encode"),
                Some(want),
                &format!("case {i}: {d}"),
            );
        }
    }
    assert!(in_place > 30, "{in_place}");
    check(
        &sample_document().to_vec().expect("encode"),
        Some(false),
        "sample (a DBRef-like document)",
    );
    check(&every_type_document(), Some(true), "every type");
    // Top-level `$` keys are not rewritten by `from_bson`, nor the keys of a scope.
    check(
        &doc! {"$oid": "xyz", "$date": 1}.to_vec().expect("encode"),
        Some(true),
        "top-level $ keys",
    );
    let scoped = Bson::JavaScriptCodeWithScope(JavaScriptCodeWithScope {
        code: "f()".into(),
        scope: doc! {"$x": 1, "y": {"z": [1]}},
    });
    check(
        &doc! {"c": scoped}.to_vec().expect("encode"),
        Some(true),
        "scope",
    );
    for levels in [1, 2, MAX_DEPTH - 1, MAX_DEPTH] {
        for array in [false, true] {
            let bytes = nested_bson(levels, array);
            assert_eq!(
                preflight(&bytes).map(crate::value::raw::Checked::depth),
                Some(levels),
                "{levels} {array}"
            );
            check(&bytes, Some(true), "nested");
        }
    }
}

#[test]
fn the_preflight_sends_refused_and_rewritten_documents_to_the_decode_path() {
    for (name, bytes, _) in bson_bad_cases() {
        assert!(from_bson(&bytes).is_err(), "{name}");
        check(&bytes, Some(false), name);
    }
    for levels in [MAX_DEPTH + 1, 200, 5000] {
        for array in [false, true] {
            check(&nested_bson(levels, array), Some(false), "too deep");
        }
    }
    let oid = ObjectId::parse_str("57e193d7a9cc81b4027498b5").expect("oid");
    for d in [
        doc! {"x": {"$date": "2024-01-01T00:00:00.000Z"}},
        doc! {"x": {"$numberLong": "5"}},
        doc! {"x": {"$oid": "xyz"}},
        doc! {"x": {"$foo": 1}},
        doc! {"x": {"a": 1, "$ref": "c", "$id": 1}},
        doc! {"x": [{"$oid": oid.to_hex()}]},
        doc! {"x": {"y": [1, {"z": {"$regex": "a"}}]}},
        doc! {"c": Bson::JavaScriptCodeWithScope(JavaScriptCodeWithScope {
            code: String::new(),
            scope: doc! {"s": {"$numberInt": "1"}},
        })},
    ] {
        check(&d.to_vec().expect("encode"), Some(false), &d.to_string());
    }
    // Repeated keys, at the top and nested.
    let mut body = vec![0x10, b'a', 0, 1, 0, 0, 0];
    body.extend_from_slice(&[0x10, b'a', 0, 2, 0, 0, 0]);
    check(&raw_doc(&body), Some(false), "repeated a");
    let inner = raw_doc(&body);
    let mut outer = vec![0x03, b'x', 0];
    outer.extend_from_slice(&inner);
    check(&raw_doc(&outer), Some(false), "repeated x.a");
    // The same key in two documents is not a repeat.
    let mut twice = vec![0x03, b'x', 0];
    twice.extend_from_slice(&raw_doc(&[0x10, b'a', 0, 1, 0, 0, 0]));
    twice.extend_from_slice(&[0x03, b'a', 0]);
    twice.extend_from_slice(&raw_doc(&[0x10, b'a', 0, 1, 0, 0, 0]));
    check(&raw_doc(&twice), Some(true), "a and x.a");
}

#[test]
fn truncations_and_mutations_agree_or_take_the_decode_path() {
    let bytes = every_type_document();
    for k in 0..bytes.len() {
        check(&bytes[..k], Some(false), "prefix");
        let mut patched = bytes[..k].to_vec();
        if k >= 4 {
            patched[..4].copy_from_slice(&(k as i32).to_le_bytes());
        }
        check(&patched, None, "patched prefix");
    }
    for i in 0..bytes.len() {
        for b in [0x00, 0x02, 0x24, 0x7f, 0xff] {
            let mut m = bytes.clone();
            m[i] = b;
            check(&m, None, &format!("byte {i} = {b:#x}"));
        }
    }
}

fn arb_oid() -> impl Strategy<Value = Bson> {
    any::<[u8; 12]>().prop_map(|b| Bson::ObjectId(b.into()))
}

fn arb_item() -> impl Strategy<Value = Bson> {
    (
        prop_oneof![
            Just(Bson::String("sku-1".into())),
            Just(Bson::String(String::new())),
            Just(Bson::Int32(1))
        ],
        prop_oneof![
            (0..4i32).prop_map(Bson::Int32),
            (0..4i64).prop_map(Bson::Int64),
            Just(Bson::Double(2.0)),
            Just(Bson::Double(1.5))
        ],
        prop_oneof![
            (0..1000i32).prop_map(|c| Bson::Double(f64::from(c) / 100.0)),
            Just(Bson::Int32(-1)),
            Just(Bson::Double(f64::NAN))
        ],
        any::<bool>(),
    )
        .prop_map(|(sku, qty, price, extra)| {
            let mut d = doc! {"sku": sku, "qty": qty, "price": price};
            if extra {
                d.insert("note", "x");
            }
            Bson::Document(d)
        })
}

/// Documents shaped like the shop example's orders and customers: mostly valid for some
/// version, with the usual defects.
fn arb_shop_document() -> impl Strategy<Value = Document> {
    let order = (
        prop_oneof![arb_oid(), Just(Bson::Int32(7))],
        prop_oneof![3 => arb_oid(), 1 => Just(Bson::String("57e193d7a9cc81b4027498b5".into())), 1 => Just(Bson::Null)],
        prop_oneof![Just("new"), Just("paid"), Just("shipped"), Just("cancelled"), Just("lost")],
        prop_oneof![
            (0..100_000i32).prop_map(|c| Bson::Double(f64::from(c) / 100.0)),
            (0..100_000i32).prop_map(Bson::Int32),
            any::<i64>().prop_map(Bson::Int64),
            Just(Bson::Double(-1.0)),
            Just(Bson::Decimal128("1.50".parse().expect("decimal")))
        ],
        prop_oneof![Just("EUR"), Just("USD"), Just("GBP")],
        prop_oneof![
            (0i64..4_000_000_000_000).prop_map(|ms| Bson::DateTime(DateTime::from_millis(ms))),
            Just(Bson::DateTime(DateTime::from_millis(-1))),
            Just(Bson::String("2024-01-01T00:00:00Z".into()))
        ],
        prop::collection::vec(arb_item(), 0..3),
        any::<u8>(),
    )
        .prop_map(|(id, customer, status, total, currency, created, items, flags)| {
            let mut d = doc! {"_id": id};
            if flags & 1 == 0 {
                d.insert("customer_id", customer.clone());
            } else {
                d.insert("customer", doc! {"id": customer, "email": "a@example.com"});
            }
            d.insert("status", status);
            d.insert("total", total);
            if flags & 2 == 0 {
                d.insert("currency", currency);
            }
            d.insert("created_at", created);
            d.insert("items", items);
            if flags & 4 != 0 {
                d.insert("extra", Bson::Undefined);
            }
            d
        });
    let customer = (
        arb_oid(),
        prop_oneof![
            Just("a@example.com"),
            Just("not an email"),
            Just("b@example.org")
        ],
        prop_oneof![
            Just(Bson::String("Ann".into())),
            Just(Bson::Document(doc! {"first": "Ann", "last": "Lee"})),
            Just(Bson::Document(doc! {"first": ""}))
        ],
        (0i64..4_000_000_000_000).prop_map(|ms| Bson::DateTime(DateTime::from_millis(ms))),
    )
        .prop_map(|(id, email, name, created)| {
            doc! {"_id": id, "email": email, "name": name, "created_at": created}
        });
    prop_oneof![order, customer]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    /// Arbitrary documents (every BSON type, nested, no repeated or `$` keys): all go in place,
    /// with exactly the decoded view, classifications and errors.
    #[test]
    fn in_place_agrees_with_decoded(d in arb_document()) {
        let bytes = d.to_vec().expect("encode");
        check(&bytes, Some(true), &d.to_string());
    }

    #[test]
    fn shop_documents_classify_alike(d in arb_shop_document()) {
        let bytes = d.to_vec().expect("encode");
        check(&bytes, Some(true), &d.to_string());
    }

    /// A repeated key anywhere sends the document to the decode path.
    #[test]
    fn repeated_keys_take_the_decode_path(
        mut doc in arb_top(),
        pick in any::<prop::sample::Index>(),
        dup_value in arb_tree(),
    ) {
        check(&doc.bson(), Some(true), "clean");
        let mut n = pick.index(doc.objects());
        doc.repeat_key(&mut n, "", &dup_value).expect("an object is picked");
        check(&doc.bson(), Some(false), "repeated");
    }

    /// Damaged documents: never a panic, and whatever the preflight accepts agrees.
    #[test]
    fn damaged_documents_agree_or_take_the_decode_path(
        d in arb_document(),
        edits in prop::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 1..4),
        fix_length in any::<bool>(),
    ) {
        let mut bytes = d.to_vec().expect("encode");
        for (at, b) in edits {
            let i = at.index(bytes.len());
            bytes[i] = b;
        }
        if fix_length {
            let n = bytes.len() as i32;
            bytes[..4].copy_from_slice(&n.to_le_bytes());
        }
        check(&bytes, None, "damaged");
    }
}
