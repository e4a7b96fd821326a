//! Unit tests of templates: loading and checking, binding, and every bundled template applied.

use std::path::{Path, PathBuf};

use serde_json::{json, Value};

use super::*;
use crate::contract::IndexKey;
use crate::contract::KeyDirection;
use crate::repair::ops::QuarantineTarget;

fn parse(text: &str) -> Result<Template, TemplateError> {
    Template::parse(text, Path::new("t/my.toml"))
}

fn load_err(text: &str) -> String {
    match parse(text) {
        Ok(_) => panic!("expected an error for:\n{text}"),
        Err(e) => e.to_string(),
    }
}

fn given(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

fn replaced(o: Outcome) -> Value {
    match o {
        Outcome::Replace(v) => v,
        other => panic!("expected Replace, got {other:?}"),
    }
}

fn text(v: &Value) -> String {
    serde_json::to_string(v).unwrap()
}

const HEAD: &str = "name = \"t\"\ndescription = \"d\"\nselect = \"invalid\"\n";

fn v2_order() -> Value {
    json!({
        "_id": {"$oid": "659202de5d0c5e000d000000"},
        "customer": {"id": {"$oid": "6455db035d0c5e00c100006a"}, "email": "a@b.c"},
        "status": "new",
        "total_cents": 16002,
        "currency": "USD",
        "created_at": {"$date": "2024-01-01T00:10:06.503Z"},
        "items": [{"sku": "SKU-10065", "qty": 3, "price": 53.34}]
    })
}

#[test]
fn every_bundled_template_loads_binds_and_applies() {
    let lib = Library::bundled().unwrap();
    let names: Vec<&str> = lib.templates.iter().map(|t| t.name.as_str()).collect();
    for want in [
        "revert-nested-reference",
        "revert-split-field",
        "units-from-cents",
        "cents-from-units",
        "restore-missing",
        "restore-changed",
        "quarantine-orphans",
        "quarantine-invalid",
        "quarantine-added",
        "dedupe-keep-first",
        "create-missing-index",
        "drop-unexpected-index",
        "set-default",
        "rename-field",
        "convert-field-type",
        "lowercase-email",
    ] {
        assert!(names.contains(&want), "{want} not bundled: {names:?}");
    }
    assert_eq!(names.len(), super::library::BUNDLED.len());
    let order = v2_order();
    let v1_order = json!({
        "_id": {"$oid": "659202de5d0c5e000d000000"},
        "customer_id": {"$oid": "6455db035d0c5e00c100006a"},
        "status": "new", "total": 160.02, "currency": "USD",
        "created_at": {"$date": "2024-01-01T00:10:06.503Z"},
        "items": [{"sku": "SKU-10065", "qty": 3, "price": 53.34}]
    });
    for t in &lib.templates {
        assert!(Library::is_bundled(t), "{}", t.name);
        assert!(!t.description.is_empty());
        let (params, doc, baseline, want): (Vec<(String, String)>, Value, Option<Value>, Outcome) =
            match t.name.as_str() {
                "revert-nested-reference" => {
                    let mut want = order.clone();
                    let m = want.as_object_mut().unwrap();
                    m.shift_remove("customer");
                    m.shift_insert(
                        1,
                        "customer_id".into(),
                        json!({"$oid": "6455db035d0c5e00c100006a"}),
                    );
                    (vec![], order.clone(), None, Outcome::Replace(want))
                }
                "revert-split-field" => (
                    vec![],
                    json!({"_id": 1, "first_name": "Ada", "last_name": "Lovelace", "age": 36}),
                    None,
                    Outcome::Replace(json!({"_id": 1, "name": "Ada Lovelace", "age": 36})),
                ),
                "units-from-cents" => {
                    let mut want = order.clone();
                    let m = want.as_object_mut().unwrap();
                    let i = m.keys().position(|k| k == "total_cents").unwrap();
                    m.shift_remove("total_cents");
                    m.shift_insert(i, "total".into(), json!(160.02));
                    (vec![], order.clone(), None, Outcome::Replace(want))
                }
                "cents-from-units" => (
                    vec![],
                    json!({"_id": 1, "total": 12.345, "x": 1}),
                    None,
                    Outcome::Replace(json!({"_id": 1, "total_cents": 1234, "x": 1})),
                ),
                "restore-missing" | "restore-changed" => (
                    vec![],
                    json!({"_id": 1}),
                    Some(json!({"_id": 1, "a": 2})),
                    Outcome::Replace(json!({"_id": 1, "a": 2})),
                ),
                "quarantine-orphans" | "quarantine-invalid" | "quarantine-added" => (
                    vec![],
                    order.clone(),
                    None,
                    Outcome::Quarantine {
                        to: QuarantineTarget::DefaultCollection,
                        doc: order.clone(),
                    },
                ),
                "dedupe-keep-first" => (vec![], order.clone(), None, Outcome::Delete),
                "create-missing-index" => (
                    given(&[
                        ("key", r#"{"customer_id": 1, "created_at": -1}"#),
                        ("unique", "true"),
                    ]),
                    order.clone(),
                    None,
                    Outcome::Unchanged,
                ),
                "drop-unexpected-index" => (
                    given(&[("name", "customer.id_1")]),
                    order.clone(),
                    None,
                    Outcome::Unchanged,
                ),
                "set-default" => (
                    given(&[("field", "currency"), ("value", "\"EUR\"")]),
                    json!({"_id": 1, "total": 1.5}),
                    None,
                    Outcome::Replace(json!({"_id": 1, "total": 1.5, "currency": "EUR"})),
                ),
                "rename-field" => (
                    given(&[("from", "cust"), ("to", "customer_id")]),
                    json!({"_id": 1, "cust": 5, "z": 0}),
                    None,
                    Outcome::Replace(json!({"_id": 1, "customer_id": 5, "z": 0})),
                ),
                "convert-field-type" => (
                    given(&[("field", "qty"), ("to", "int")]),
                    json!({"_id": 1, "qty": "3"}),
                    None,
                    Outcome::Replace(json!({"_id": 1, "qty": 3})),
                ),
                "lowercase-email" => (
                    vec![],
                    json!({"_id": 1, "email": "Ada.Lovelace@Example.COM", "z": 0}),
                    None,
                    Outcome::Replace(
                        json!({"_id": 1, "email": "ada.lovelace@example.com", "z": 0}),
                    ),
                ),
                other => panic!("no sample for bundled template {other}"),
            };
        let b = t
            .bind(&params)
            .unwrap_or_else(|e| panic!("{}: {e}", t.name));
        let got = b
            .apply(&doc, baseline.as_ref())
            .unwrap_or_else(|e| panic!("{}: {e}", t.name));
        match (&got, &want) {
            (Outcome::Replace(g), Outcome::Replace(w)) => {
                assert_eq!(text(g), text(w), "{}", t.name);
            }
            _ => assert_eq!(got, want, "{}", t.name),
        }
    }

    // The two reverts together turn a v2 order into the v1 shape.
    let nested = lib
        .get("revert-nested-reference")
        .unwrap()
        .bind(&[])
        .unwrap();
    let cents = lib.get("units-from-cents").unwrap().bind(&[]).unwrap();
    let step1 = replaced(nested.apply(&order, None).unwrap());
    let step2 = replaced(cents.apply(&step1, None).unwrap());
    assert_eq!(text(&step2), text(&v1_order));

    // Selections resolved from parameters.
    let q = lib.get("quarantine-orphans").unwrap();
    assert_eq!(q.select, Selection::Orphan("{{field}}".into()));
    let b = q.bind(&given(&[("field", "customer.id")])).unwrap();
    assert_eq!(b.selection(), &Selection::Orphan("customer.id".into()));
    let d = lib
        .get("dedupe-keep-first")
        .unwrap()
        .bind(&given(&[("fields", "a,b")]))
        .unwrap();
    assert_eq!(d.selection().as_str(), "duplicate:a,b");
    assert!(lib
        .get("dedupe-keep-first")
        .unwrap()
        .bind(&given(&[("fields", "a,,b")]))
        .is_err());

    // Collection-level actions.
    let ci = lib.get("create-missing-index").unwrap();
    let b = ci
        .bind(&given(&[(
            "key",
            r#"{"customer_id": 1, "created_at": -1}"#,
        )]))
        .unwrap();
    assert_eq!(
        b.collection_actions(),
        vec![CollectionAction::CreateIndex {
            key: IndexKey(vec![
                ("customer_id".into(), KeyDirection::Asc),
                ("created_at".into(), KeyDirection::Desc)
            ]),
            unique: false,
            sparse: false,
            name: None,
        }]
    );
    assert!(ci
        .bind(&[])
        .unwrap_err()
        .to_string()
        .contains("`key` is required"));
    assert!(ci.bind(&given(&[("key", "[1]")])).is_err());
    let di = lib.get("drop-unexpected-index").unwrap();
    assert_eq!(
        di.bind(&given(&[("name", "customer.id_1")]))
            .unwrap()
            .collection_actions(),
        vec![CollectionAction::DropIndex {
            name: "customer.id_1".into()
        }]
    );
    // restore without a baseline is a step error, not a panic.
    let r = lib.get("restore-changed").unwrap().bind(&[]).unwrap();
    assert!(r.needs_baseline());
    let e = r.apply(&json!({"_id": 1}), None).unwrap_err();
    assert_eq!((e.step, e.op), (1, "restore_from_baseline"));
}

#[test]
fn typed_substitution() {
    let t = parse(&format!(
        r#"{HEAD}
[params.s]
type = "string"
default = "42"
[params.i]
type = "integer"
default = 7
[params.n]
type = "number"
default = 2
[params.b]
type = "boolean"
default = true
[params.j]
type = "json"
default = {{ "$oid" = "659202de5d0c5e000d000000" }}
[params.f]
type = "field"
default = "deep.x"

[[steps]]
op = "set"
field = "s"
value = "{{{{s}}}}"
[[steps]]
op = "set"
field = "i"
value = "{{{{i}}}}"
[[steps]]
op = "set"
field = "n"
value = "{{{{n}}}}"
[[steps]]
op = "set"
field = "b"
value = "{{{{b}}}}"
[[steps]]
op = "set"
field = "j"
value = "{{{{j}}}}"
[[steps]]
op = "set"
field = "{{{{f}}}}"
value = {{ nested = "{{{{s}}}}", list = ["{{{{i}}}}"] }}
"#
    ))
    .unwrap();
    let doc = json!({"_id": 1});
    let out = replaced(t.bind(&[]).unwrap().apply(&doc, None).unwrap());
    assert_eq!(
        text(&out),
        r#"{"_id":1,"s":"42","i":7,"n":2.0,"b":true,"j":{"$oid":"659202de5d0c5e000d000000"},"deep":{"x":{"nested":"42","list":[7]}}}"#
    );
    // Given on the command line: parsed by type, a numeric-looking string stays a string.
    let b = t
        .bind(&given(&[
            ("s", "0012"),
            ("i", "-3"),
            ("n", "1.5"),
            ("j", r#"{"$date":"2024-01-01T00:00:00Z"}"#),
        ]))
        .unwrap();
    assert_eq!(b.params()[0], ("s".to_string(), json!("0012")));
    let out = replaced(b.apply(&doc, None).unwrap());
    assert_eq!(out["s"], json!("0012"));
    assert_eq!(out["i"], json!(-3));
    assert_eq!(out["n"], json!(1.5));
    assert_eq!(out["j"], json!({"$date": "2024-01-01T00:00:00Z"}));
    // Canonical EJSON in a json parameter is normalised.
    let b = t.bind(&given(&[("j", r#"{"$numberLong":"5"}"#)])).unwrap();
    assert_eq!(replaced(b.apply(&doc, None).unwrap())["j"], json!(5));

    for (k, v, msg) in [
        ("i", "1.5", "expected an integer"),
        ("n", "abc", "finite number"),
        ("b", "yes", "true or false"),
        ("f", "a..b", "empty component"),
        ("j", "{", "not valid JSON"),
        ("nope", "1", "unknown parameter `nope`"),
    ] {
        let e = t.bind(&given(&[(k, v)])).unwrap_err().to_string();
        assert!(e.contains(msg), "{k}={v}: {e}");
        assert!(e.contains("t/my.toml"), "{e}");
    }
    let e = t
        .bind(&given(&[("i", "1"), ("i", "2")]))
        .unwrap_err()
        .to_string();
    assert!(e.contains("given twice"), "{e}");
    // A field parameter cannot point a step at _id.
    let e = t.bind(&given(&[("f", "_id")])).unwrap_err().to_string();
    assert!(e.contains("step 6 (set)") && e.contains("_id"), "{e}");
}

#[test]
fn load_errors_name_file_and_step() {
    let step = |body: &str| {
        format!("{HEAD}\n[[steps]]\nop = \"unset\"\nfield = \"a\"\n\n[[steps]]\n{body}\n")
    };
    let cases: Vec<(String, &str)> = vec![
        (step("op = \"frobnicate\""), "step 2 (frobnicate): unknown op \"frobnicate\""),
        (step("field = \"a\""), "step 2 (?): missing `op`"),
        (step("op = \"rename\"\nfrom = \"a\"\nto = \"b\"\nform = \"c\""), "step 2 (rename): unknown argument `form` (expected from, to)"),
        (step("op = \"delete\"\nfield = \"a\""), "step 2 (delete): unknown argument `field`"),
        (step("op = \"rename\"\nfrom = \"a\""), "step 2 (rename): missing required argument `to`"),
        (step("op = \"scale\"\nfield = \"a\"\nfactor = \"ten\""), "step 2 (scale): `factor`: expected a number"),
        (step("op = \"scale\"\nfield = \"a\"\nfactor = 2\nto = \"date\""), "step 2 (scale): `to`: expected int, double or decimal"),
        (step("op = \"convert\"\nfield = \"a\"\nto = \"bool\""), "step 2 (convert): `to`: unknown type"),
        (step("op = \"convert\"\nfield = \"a\"\nto = \"int\"\nround = \"up\""), "unknown rounding"),
        (step("op = \"unset\"\nfield = 3"), "step 2 (unset): `field`: expected a field path string"),
        (step("op = \"unset\"\nfield = \"{{x}}\""), "step 2 (unset): `field` refers to parameter `x`, which is not declared"),
        (step("op = \"set\"\nfield = \"a\"\nvalue = \"id-{{x}}\""), "step 2 (set): `value`: a parameter reference must be the whole string"),
        (step("op = \"set\"\nfield = \"a\"\nvalue = { \"$oid\" = \"xyz\" }"), "step 2 (set): `value`: not valid Extended JSON"),
        (step("op = \"set\"\nfield = \"_id\"\nvalue = 1"), "step 2 (set): `field`: `_id` cannot be changed"),
        (step("op = \"rename\"\nfrom = \"a\"\nto = \"a.b\""), "step 2 (rename): `from` \"a\" and `to` \"a.b\" overlap"),
        (step("op = \"compute\"\nfield = \"a\"\nexpr = \"b +\""), "step 2 (compute): `expr`: expression ends too early"),
        (step("op = \"split\"\nfield = \"a\"\ninto = [\"b\", \"b\"]\nseparator = \" \""), "listed twice"),
        (step("op = \"split\"\nfield = \"a\"\ninto = [\"b\"]\nseparator = \"\""), "`separator`: must not be empty"),
        (step("op = \"join\"\nfields = \"a\"\nto = \"b\""), "`fields` must be an array"),
        (step("op = \"quarantine\"\nto = \"system.x\""), "invalid collection name"),
        (step("op = \"create_index\"\nkey = { }"), "`key`"),
        (step("op = \"drop_index\""), "missing required argument `name`"),
        (format!("{HEAD}\n[[steps]]\nop = \"delete\"\n\n[[steps]]\nop = \"unset\"\nfield = \"a\"\n"), "step 2 (unset): comes after `delete`"),
        ("name = \"t\"\ndescription = \"d\"\nselect = \"bogus\"\n[[steps]]\nop = \"delete\"\n".into(), "unknown select \"bogus\""),
        ("name = \"t\"\ndescription = \"d\"\nselect = \"other_version:x\"\n[[steps]]\nop = \"delete\"\n".into(), "other_version:N"),
        ("name = \"t\"\ndescription = \"d\"\nselect = \"orphan:{{f}}\"\n[[steps]]\nop = \"delete\"\n".into(), "parameter `f`, which is not declared"),
        ("name = \"t\"\ndescription = \"d\"\nselect = \"invalid\"\nextra = 1\n[[steps]]\nop = \"delete\"\n".into(), "unknown field `extra`"),
        ("name = \"t\"\ndescription = \"d\"\nselect = \"invalid\"\n".into(), "no [[steps]]"),
        ("name = \"t\"\nselect = \"invalid\"\n[[steps]]\nop = \"delete\"\n".into(), "missing field `description`"),
        ("name = \"bad name\"\ndescription = \"d\"\nselect = \"invalid\"\n[[steps]]\nop = \"delete\"\n".into(), "invalid template name"),
        (format!("{HEAD}[params.p]\ntype = \"float\"\n[[steps]]\nop = \"delete\"\n"), "parameter `p`: unknown type \"float\""),
        (format!("{HEAD}[params.p]\ntype = \"integer\"\ndefault = \"1\"\n[[steps]]\nop = \"delete\"\n"), "parameter `p`: the default must be a integer"),
        (format!("{HEAD}[params.p]\ntype = \"integer\"\ndefalt = 1\n[[steps]]\nop = \"delete\"\n"), "parameter `p`: unknown field `defalt`"),
        (format!("{HEAD}[params.p]\ntype = \"boolean\"\ndefault = true\n[[steps]]\nop = \"unset\"\nfield = \"{{{{p}}}}\""), "step 1 (unset): `field` needs a field (or string), but parameter `p` is a boolean"),
        (format!("{HEAD}[params.t]\ntype = \"string\"\ndefault = \"bool\"\n[[steps]]\nop = \"convert\"\nfield = \"a\"\nto = \"{{{{t}}}}\""), "with the defaults: step 1 (convert): `to` = parameter `t`: unknown type"),
        (format!("{HEAD}filter = {{ a = \"x{{{{p}}}}\" }}\n[[steps]]\nop = \"delete\"\n"), "filter: `filter `a``: a parameter reference must be the whole string"),
        ("name = \"t\"\ndescription = \"d\"\nselect = \"invalid\"\n[[steps]\n".into(), "not valid TOML"),
    ];
    for (text, want) in cases {
        let e = load_err(&text);
        assert!(e.starts_with("t/my.toml: "), "{e}");
        assert!(e.contains(want), "want {want:?} in {e:?}");
    }
}

#[test]
fn filters_and_params_in_filters() {
    let t = parse(&format!(
        "{HEAD}filter = {{ status = \"{{{{status}}}}\", customer.kind = \"vip\" }}\n[params.status]\ntype = \"string\"\ndefault = \"paid\"\n[[steps]]\nop = \"delete\"\n"
    ))
    .unwrap();
    assert_eq!(t.filter[1].0, "customer.kind");
    let b = t.bind(&[]).unwrap();
    assert!(b.matches_filter(&json!({"status": "paid", "customer": {"kind": "vip"}})));
    assert!(!b.matches_filter(&json!({"status": "new", "customer": {"kind": "vip"}})));
    assert!(!b.matches_filter(&json!({"status": "paid"})));
    let b = t.bind(&given(&[("status", "new")])).unwrap();
    assert!(b.matches_filter(&json!({"status": "new", "customer": {"kind": "vip"}})));
    // EJSON values in filters.
    let t = parse(&format!(
        "{HEAD}filter = {{ \"customer.id\" = {{ \"$oid\" = \"6455db035d0c5e00c100006a\" }} }}\n[[steps]]\nop = \"delete\"\n"
    ))
    .unwrap();
    assert!(t.bind(&[]).unwrap().matches_filter(&v2_order()));
}

#[test]
fn toml_literals_and_quarantine_defaults() {
    let t = parse(
        "name = \"t\"\ndescription = \"d\"\ncollection = \"orders\"\nselect = \"all\"\n\
         [[steps]]\nop = \"set\"\nfield = \"at\"\nvalue = 2024-01-02T03:04:05Z\n\
         [[steps]]\nop = \"create_index\"\nkey = { customer.id = 1, status = -1 }\nunique = true\nname = \"x\"\n\
         [[steps]]\nop = \"quarantine\"\n",
    )
    .unwrap();
    let b = t.bind(&[]).unwrap();
    match b.apply(&json!({"_id": 1}), None).unwrap() {
        Outcome::Quarantine { to, doc } => {
            assert_eq!(to, QuarantineTarget::Collection("orders_quarantine".into()));
            assert_eq!(doc["at"], json!({"$date": "2024-01-02T03:04:05Z"}));
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(
        b.collection_actions(),
        vec![CollectionAction::CreateIndex {
            key: IndexKey(vec![
                ("customer.id".into(), KeyDirection::Asc),
                ("status".into(), KeyDirection::Desc)
            ]),
            unique: true,
            sparse: false,
            name: Some("x".into()),
        }]
    );
    let t = parse(&format!(
        "{HEAD}[[steps]]\nop = \"quarantine\"\nto = \"file:q/bad.jsonl\"\n"
    ))
    .unwrap();
    assert!(matches!(
        t.bind(&[]).unwrap().apply(&json!({"_id": 1}), None).unwrap(),
        Outcome::Quarantine { to: QuarantineTarget::File(p), .. } if p == Path::new("q/bad.jsonl")
    ));
}

#[test]
fn selection_round_trip() {
    for s in [
        "valid",
        "invalid",
        "other_version:2",
        "orphan:customer.id",
        "duplicate:email,tenant",
        "missing",
        "changed",
        "all",
    ] {
        assert_eq!(Selection::parse(s).unwrap().as_str(), s);
    }
    for bad in [
        "",
        "other_version:0",
        "orphan:",
        "duplicate:a,",
        "valid:1",
        "orphans:x",
    ] {
        assert!(Selection::parse(bad).is_err(), "{bad}");
    }
}

#[test]
fn user_directories() {
    let dir = tempfile::tempdir().unwrap();
    let ok =
        "name = \"mine\"\ndescription = \"d\"\nselect = \"invalid\"\n[[steps]]\nop = \"delete\"\n";
    std::fs::write(dir.path().join("mine.toml"), ok).unwrap();
    std::fs::write(dir.path().join("notes.md"), "not a template").unwrap();
    let lib = Library::load(&[dir.path().to_path_buf()]).unwrap();
    assert!(lib.get("mine").is_some());
    assert!(!Library::is_bundled(lib.get("mine").unwrap()));
    assert_eq!(
        lib.templates.len(),
        Library::bundled().unwrap().templates.len() + 1
    );

    // The bundled files themselves are not a shadowing conflict.
    let repo = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("repair-templates");
    assert!(Library::load(&[repo]).is_ok());

    // Shadowing a bundled template.
    let shadow = tempfile::tempdir().unwrap();
    std::fs::write(
        shadow.path().join("x.toml"),
        "name = \"rename-field\"\ndescription = \"d\"\nselect = \"invalid\"\n[[steps]]\nop = \"delete\"\n",
    )
    .unwrap();
    let e = Library::load(&[shadow.path().to_path_buf()])
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("x.toml") && e.contains("rename-field") && e.contains("bundled"),
        "{e}"
    );

    // Two user directories defining one name.
    let e = Library::load(&[dir.path().to_path_buf(), dir.path().to_path_buf()])
        .unwrap_err()
        .to_string();
    assert!(e.contains("already defined"), "{e}");

    // A broken template names its file and step.
    std::fs::write(
        dir.path().join("broken.toml"),
        "name = \"b\"\ndescription = \"d\"\nselect = \"invalid\"\n[[steps]]\nop = \"explode\"\n",
    )
    .unwrap();
    let e = Library::load(&[dir.path().to_path_buf()])
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("broken.toml: step 1 (explode): unknown op"),
        "{e}"
    );

    let e = Library::load(&[dir.path().join("nope")])
        .unwrap_err()
        .to_string();
    assert!(e.contains("cannot read"), "{e}");
}
