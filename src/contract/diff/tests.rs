use std::path::PathBuf;

use serde_json::{json, Value};

use super::*;

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// The hand-written `listCollections`/`listIndexes` replies (see the fixture's README).
fn fixture() -> Value {
    let p = repo().join("tests/fixtures/mongodb-replies/shop-listCollections-listIndexes.json");
    serde_json::from_str(&std::fs::read_to_string(p).unwrap()).unwrap()
}

/// The collection's `options` and indexes as docsweep reads them from those replies.
fn server(name: &str) -> (Value, Vec<IndexSpec>) {
    let f = fixture();
    let entry = f["listCollections"]["cursor"]["firstBatch"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["name"] == name)
        .unwrap()
        .clone();
    let indexes = f["listIndexes"][name]["cursor"]["firstBatch"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| IndexSpec::from_server_json(i).unwrap())
        .collect();
    (entry["options"].clone(), indexes)
}

fn example_contract(name: &str) -> (Contract, Value) {
    let c = super::super::load(&repo().join(format!("examples/shop/schemas/{name}/contract.toml")))
        .unwrap();
    let s = target_schema(&c).unwrap();
    (c, s)
}

#[test]
fn every_kind_of_drift_from_a_listcollections_reply() {
    let (contract, schema) = example_contract("orders");
    let (options, indexes) = server("orders");
    let d = diff(&contract, &schema, Some(&options), true, &indexes);
    let changes: Vec<(&str, &str, Value, Value)> = d
        .schema
        .iter()
        .map(|c| {
            (
                c.change,
                c.path.as_str(),
                c.contract.clone(),
                c.server.clone(),
            )
        })
        .collect();
    assert_eq!(
        changes,
        vec![
            (
                "type_changed",
                "total",
                json!(["number"]),
                json!(["integer"])
            ),
            ("property_added", "coupon", Value::Null, json!(["string"])),
            (
                "property_removed",
                "currency",
                json!(["string"]),
                Value::Null
            ),
            (
                "required_added",
                "coupon",
                json!("optional"),
                json!("required")
            ),
            (
                "required_removed",
                "currency",
                json!("required"),
                json!("optional")
            ),
            (
                "additional_properties_changed",
                "",
                json!("false"),
                json!("allowed")
            ),
        ]
    );
    assert_eq!(
        d.validation,
        vec![
            SettingChange {
                setting: "validationLevel",
                expected: "strict".into(),
                actual: "moderate".into()
            },
            SettingChange {
                setting: "validationAction",
                expected: "error".into(),
                actual: "warn".into()
            },
        ]
    );
    let keys = |v: &[IndexSpec]| v.iter().map(|i| i.key.to_string()).collect::<Vec<_>>();
    assert_eq!(keys(&d.missing), ["{ status: 1, created_at: -1 }"]);
    assert_eq!(keys(&d.unexpected), ["{ customer.id: 1 }"]);
    assert_eq!(d.different.len(), 1);
    assert_eq!(d.different[0].options, ["unique"]);
    assert_eq!(d.count(), 6 + 2 + 3);
    assert!(d.drifted());
    let j = d.to_json();
    assert_eq!(j["drift"], true);
    assert_eq!(j["indexes"]["different"][0]["server"]["unique"], true);
    assert_eq!(d.rows().len(), d.count());
    let t = table(std::slice::from_ref(&d));
    assert_eq!(
        t,
        std::fs::read_to_string(
            repo().join("tests/fixtures/mongodb-replies/orders-drift-table.txt")
        )
        .unwrap(),
        "{t}"
    );
}

#[test]
fn a_server_that_matches_its_contract_has_no_drift() {
    let (contract, schema) = example_contract("customers");
    let (options, indexes) = server("customers");
    let d = diff(&contract, &schema, Some(&options), true, &indexes);
    assert_eq!(
        d,
        Drift {
            validator: true,
            exists: true,
            collection: "customers".into(),
            target_version: 1,
            ..Drift::default()
        }
    );
    assert!(!d.drifted());
    assert_eq!(d.to_json()["differences"], 0);
}

#[test]
fn no_validator_no_collection_and_a_validator_without_json_schema() {
    let (contract, schema) = example_contract("customers");
    let (_, indexes) = server("customers");
    let d = diff(&contract, &schema, Some(&json!({})), true, &indexes);
    assert!(!d.validator && d.schema.is_empty() && d.validation.is_empty());
    assert_eq!(d.count(), 1, "no validator is one difference");
    let d = diff(&contract, &schema, None, false, &[]);
    assert!(!d.exists);
    assert_eq!(d.rows()[0][0], "collection missing");
    let only_query = json!({"validator": {"status": {"$in": ["a"]}}});
    let d = diff(&contract, &schema, Some(&only_query), true, &indexes);
    assert!(!d.validator && d.notes[0].contains("only query conditions"));
}

#[test]
fn nested_and_array_changes_are_found_by_path() {
    let (contract, schema) = example_contract("orders");
    let (mut options, indexes) = server("orders");
    let items = &mut options["validator"]["$jsonSchema"]["properties"]["items"]["items"];
    items["properties"]["qty"] = json!({"bsonType": "string"});
    items["properties"]["gift"] = json!({"bsonType": "bool"});
    items["required"] = json!(["sku", "qty"]);
    let d = diff(&contract, &schema, Some(&options), true, &indexes);
    let at: Vec<(&str, &str)> = d
        .schema
        .iter()
        .filter(|c| c.path.starts_with("items"))
        .map(|c| (c.change, c.path.as_str()))
        .collect();
    assert_eq!(
        at,
        [
            ("type_changed", "items[].qty"),
            ("property_added", "items[].gift"),
            ("required_removed", "items[].price"),
        ]
    );
}
