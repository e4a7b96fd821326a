//! Contract loading: good contracts compile, every broken one names its file and problem.

use super::*;

const V1: &str = r#"{"$schema":"https://json-schema.org/draft/2020-12/schema","type":"object","required":["a"]}"#;

fn write(dir: &Path, name: &str, text: &str) {
    std::fs::write(dir.join(name), text).unwrap();
}

fn contract(toml: &str, files: &[(&str, &str)]) -> Result<Contract, ContractError> {
    let dir = tempfile::tempdir().unwrap();
    write(dir.path(), "contract.toml", toml);
    for (n, t) in files {
        write(dir.path(), n, t);
    }
    load(&dir.path().join("contract.toml"))
}

const GOOD: &str = r#"
collection = "orders"
target = 1
[[versions]]
version = 2
schema = "v2.schema.json"
indexes = [ { key = { "customer.id" = 1 } } ]
references = [ { field = "customer.id", collection = "customers" } ]
[[versions]]
version = 1
schema = "v1.schema.json"
indexes = [ { key = { status = 1, created_at = -1 } }, { key = { email = 1 }, unique = true, name = "email_1" } ]
references = [ { field = "customer_id", collection = "customers", to = "_id" } ]
"#;

#[test]
fn loads_and_sorts_versions() {
    let c = contract(GOOD, &[("v1.schema.json", V1), ("v2.schema.json", V1)]).unwrap();
    assert_eq!(c.collection, "orders");
    assert_eq!(
        c.versions.iter().map(|v| v.version).collect::<Vec<_>>(),
        [1, 2]
    );
    assert_eq!(c.target_version().version, 1);
    assert_eq!(c.unique_indexes().count(), 1);
    assert!(c
        .target_version()
        .validator
        .is_valid(&serde_json::json!({"a": 1})));
    assert!(!c
        .target_version()
        .validator
        .is_valid(&serde_json::json!({"b": 1})));
}

#[test]
fn target_override() {
    let mut c = contract(GOOD, &[("v1.schema.json", V1), ("v2.schema.json", V1)]).unwrap();
    c.set_target(2).unwrap();
    assert_eq!(c.target_version().version, 2);
    assert!(c.set_target(7).is_err());
}

#[test]
fn broken_contracts_are_reported_with_the_file() {
    let bad_schema = r#"{"type": 12}"#;
    type Case<'a> = (&'a str, &'a str, &'a [(&'a str, &'a str)], &'a str);
    let cases: &[Case] = &[
        ("bad toml", "collection = ", &[], "not valid TOML"),
        ("unknown field", "collection = \"o\"\ntarget = 1\ncolour = 2\n[[versions]]\nversion = 1\nschema = \"v1.schema.json\"\n", &[("v1.schema.json", V1)], "colour"),
        ("no versions", "collection = \"o\"\ntarget = 1\nversions = []\n", &[], "no [[versions]]"),
        ("unknown target", "collection = \"o\"\ntarget = 3\n[[versions]]\nversion = 1\nschema = \"v1.schema.json\"\n", &[("v1.schema.json", V1)], "target version 3"),
        ("schema missing", "collection = \"o\"\ntarget = 1\n[[versions]]\nversion = 1\nschema = \"nope.json\"\n", &[], "nope.json"),
        ("schema not json", "collection = \"o\"\ntarget = 1\n[[versions]]\nversion = 1\nschema = \"v1.schema.json\"\n", &[("v1.schema.json", "{")], "not valid JSON"),
        ("schema not a schema", "collection = \"o\"\ntarget = 1\n[[versions]]\nversion = 1\nschema = \"v1.schema.json\"\n", &[("v1.schema.json", bad_schema)], "not a valid JSON Schema"),
        ("other draft", "collection = \"o\"\ntarget = 1\n[[versions]]\nversion = 1\nschema = \"v1.schema.json\"\n", &[("v1.schema.json", r#"{"$schema":"http://json-schema.org/draft-04/schema#"}"#)], "draft 2020-12"),
        ("duplicate version", "collection = \"o\"\ntarget = 1\n[[versions]]\nversion = 1\nschema = \"v1.schema.json\"\n[[versions]]\nversion = 1\nschema = \"v1.schema.json\"\n", &[("v1.schema.json", V1)], "declared twice"),
        ("bad index", "collection = \"o\"\ntarget = 1\n[[versions]]\nversion = 1\nschema = \"v1.schema.json\"\nindexes = [ { key = { a = 5 } } ]\n", &[("v1.schema.json", V1)], "index #1"),
        ("empty reference", "collection = \"o\"\ntarget = 1\n[[versions]]\nversion = 1\nschema = \"v1.schema.json\"\nreferences = [ { field = \"\", collection = \"c\" } ]\n", &[("v1.schema.json", V1)], "reference"),
    ];
    for (what, toml, files, needle) in cases {
        let err = contract(toml, files).expect_err(what).to_string();
        assert!(
            err.contains(needle),
            "{what}: {err:?} should mention {needle:?}"
        );
        assert!(
            err.contains(".toml") || err.contains(".json"),
            "{what}: {err:?} should name the file"
        );
    }
}
