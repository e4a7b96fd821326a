//! Unit tests of the live apply: filters, updates and fingerprints of the guards.

use super::undo::dropped_index_spec;
use super::*;

#[test]
fn rates() {
    assert_eq!(parse_rate("200"), Ok(200.0));
    assert_eq!(parse_rate("2.5/s"), Ok(2.5));
    assert!(parse_rate("0").is_err());
    assert!(parse_rate("fast").is_err());
    assert!(parse_rate("-1/s").is_err());
}

#[test]
fn a_dropped_index_comes_back_with_its_options() {
    let before = json!({"v": 2, "key": {"a": 1, "b": -1}, "name": "a_1_b_-1", "ns": "db.c",
        "unique": true, "sparse": true, "partialFilterExpression": {"a": {"$gt": 5}},
        "collation": {"locale": "fr", "strength": 2}, "expireAfterSeconds": 3600});
    let ix = dropped_index_spec(&before, "a_1_b_-1").unwrap();
    assert_eq!(
        ix,
        doc! {"key": {"a": 1, "b": -1}, "name": "a_1_b_-1", "unique": true, "sparse": true,
        "partialFilterExpression": {"a": {"$gt": 5}},
        "collation": {"locale": "fr", "strength": 2}, "expireAfterSeconds": 3600}
    );
    let keys: Vec<&str> = ix.keys().map(String::as_str).collect();
    assert_eq!(keys[..2], ["key", "name"]);
}

fn raw(d: Document) -> RawDocumentBuf {
    RawDocumentBuf::from_bytes(d.to_vec().unwrap()).unwrap()
}

#[test]
fn the_whole_document_guard_compares_the_literal_document() {
    let d = doc! {"_id": 1, "price": "$5", "c": {"$gt": 1}};
    assert_eq!(
        whole_document_filter(Bson::Int32(1), d.clone()),
        doc! {"_id": 1, "$expr": {"$eq": ["$$ROOT", {"$literal": d}]}}
    );
}

#[test]
fn the_top_level_guard_pins_every_field_and_the_type_of_numbers() {
    let d = doc! {"_id": 1, "a": "x", "b": [1], "c": {"d": 1}, "n": 5_i64, "z": Bson::Null};
    assert_eq!(
        top_level_filter(&d).unwrap(),
        doc! {"_id": 1, "a": {"$eq": "x"}, "b": {"$eq": [1]}, "c": {"$eq": {"d": 1}},
        "n": {"$eq": 5_i64, "$type": "long"}, "z": {"$eq": Bson::Null, "$type": "null"}}
    );
    // Names a filter would read as a path or an operator are refused.
    assert!(top_level_filter(&doc! {"_id": 1, "e.f": 1}).is_err());
    assert!(top_level_filter(&doc! {"_id": 1, "$x": 1}).is_err());
}

#[test]
fn the_top_level_update_touches_only_changed_fields() {
    let cur = raw(doc! {"_id": 1, "first": "a", "last": "b", "counter": {"n": 0}, "k": 1});
    let new = raw(doc! {"_id": 1, "name": "a b", "counter": {"n": 0}, "k": 1_i64});
    assert_eq!(
        top_level_update(&cur, &new).unwrap(),
        doc! {"$set": {"name": "a b", "k": 1_i64}, "$unset": {"first": "", "last": ""}}
    );
    let moved = raw(doc! {"_id": 2, "first": "a"});
    assert!(top_level_update(&cur, &moved).is_err(), "another _id");
}

#[test]
fn the_top_level_state_ignores_the_order_of_top_level_fields_only() {
    let a = json!({"_id": 1, "name": "x", "c": {"p": 1, "q": 2}});
    let b = json!({"_id": 1, "c": {"p": 1, "q": 2}, "name": "x"});
    let c = json!({"_id": 1, "c": {"q": 2, "p": 1}, "name": "x"});
    assert_ne!(state_fp(&a, Guard::Document), state_fp(&b, Guard::Document));
    assert_eq!(state_fp(&a, Guard::TopLevel), state_fp(&b, Guard::TopLevel));
    assert_ne!(state_fp(&a, Guard::TopLevel), state_fp(&c, Guard::TopLevel));
}

#[test]
fn journal_next_to_the_plan() {
    assert_eq!(
        default_journal(Path::new("x/fix.plan")),
        PathBuf::from("x/fix.plan.journal")
    );
}
