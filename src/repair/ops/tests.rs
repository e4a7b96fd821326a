//! Unit tests of the operations, table-driven where they can be.

use super::*;
use serde_json::json;

fn lit(s: &str) -> Arg<String> {
    Arg::Lit(s.to_string())
}

fn run(step: Step, doc: Value) -> Result<Outcome, StepError> {
    apply_steps(&[step], &doc, None)
}

fn replaced(step: Step, doc: Value) -> Value {
    match run(step, doc) {
        Ok(Outcome::Replace(v)) => v,
        other => panic!("expected Replace, got {other:?}"),
    }
}

fn text(v: &Value) -> String {
    serde_json::to_string(v).unwrap()
}

#[test]
fn ops_table() {
    let conv = |f: &str, t: TypeName, r: Rounding| Step::Convert {
        field: lit(f),
        to: Arg::Lit(t),
        round: Arg::Lit(r),
    };
    let scale = |f: &str, k: f64, t: TypeName| Step::Scale {
        field: lit(f),
        factor: Arg::Lit(k),
        to: Arg::Lit(t),
        round: Arg::Lit(Rounding::HalfEven),
    };
    let compute = |f: &str, e: &str, t: Option<TypeName>| Step::Compute {
        field: lit(f),
        expr: Arg::Lit(Expr::parse(e).unwrap()),
        to: t.map(Arg::Lit),
        round: Arg::Lit(Rounding::HalfEven),
    };
    let strs = |v: &[&str]| v.iter().map(|s| lit(s)).collect::<Vec<_>>();
    use Rounding::*;
    use TypeName as T;
    let cases: Vec<(&str, Step, Value, &str)> = vec![
        (
            "set new",
            Step::Set {
                field: lit("a"),
                value: Arg::Lit(json!(1)),
            },
            json!({"_id": 1, "b": 2}),
            r#"{"_id":1,"b":2,"a":1}"#,
        ),
        (
            "set nested creates",
            Step::Set {
                field: lit("x.y"),
                value: Arg::Lit(json!("s")),
            },
            json!({"_id": 1}),
            r#"{"_id":1,"x":{"y":"s"}}"#,
        ),
        (
            "set keeps place",
            Step::Set {
                field: lit("a"),
                value: Arg::Lit(json!(true)),
            },
            json!({"_id": 1, "a": 0, "b": 2}),
            r#"{"_id":1,"a":true,"b":2}"#,
        ),
        (
            "unset",
            Step::Unset { field: lit("a.b") },
            json!({"_id": 1, "a": {"b": 1, "c": 2}}),
            r#"{"_id":1,"a":{"c":2}}"#,
        ),
        (
            "rename in place",
            Step::Rename {
                from: lit("a"),
                to: lit("z"),
            },
            json!({"_id": 1, "a": 1, "b": 2}),
            r#"{"_id":1,"z":1,"b":2}"#,
        ),
        (
            "rename out of sub-doc",
            Step::Rename {
                from: lit("c.id"),
                to: lit("c_id"),
            },
            json!({"_id": 1, "c": {"id": 5, "e": "x"}, "t": 1}),
            r#"{"_id":1,"c_id":5,"c":{"e":"x"},"t":1}"#,
        ),
        (
            "copy",
            Step::Copy {
                from: lit("a"),
                to: lit("b.a"),
            },
            json!({"_id": 1, "a": [1]}),
            r#"{"_id":1,"a":[1],"b":{"a":[1]}}"#,
        ),
        (
            "default when missing",
            Step::Default {
                field: lit("s"),
                value: Arg::Lit(json!("new")),
            },
            json!({"_id": 1}),
            r#"{"_id":1,"s":"new"}"#,
        ),
        (
            "convert string->int",
            conv("n", T::Int, Exact),
            json!({"_id": 1, "n": "42"}),
            r#"{"_id":1,"n":42}"#,
        ),
        (
            "convert string->double",
            conv("n", T::Double, Exact),
            json!({"_id": 1, "n": "4.5"}),
            r#"{"_id":1,"n":4.5}"#,
        ),
        (
            "convert int->double",
            conv("n", T::Double, Exact),
            json!({"_id": 1, "n": 3}),
            r#"{"_id":1,"n":3.0}"#,
        ),
        (
            "convert double->int exact",
            conv("n", T::Int, Exact),
            json!({"_id": 1, "n": 3.0}),
            r#"{"_id":1,"n":3}"#,
        ),
        (
            "convert double->int half_even",
            conv("n", T::Int, HalfEven),
            json!({"_id": 1, "n": 2.5}),
            r#"{"_id":1,"n":2}"#,
        ),
        (
            "convert double->int half_up",
            conv("n", T::Int, HalfUp),
            json!({"_id": 1, "n": 2.5}),
            r#"{"_id":1,"n":3}"#,
        ),
        (
            "convert int->string",
            conv("n", T::String, Exact),
            json!({"_id": 1, "n": 7}),
            r#"{"_id":1,"n":"7"}"#,
        ),
        (
            "convert double->string",
            conv("n", T::String, Exact),
            json!({"_id": 1, "n": 1.5}),
            r#"{"_id":1,"n":"1.5"}"#,
        ),
        (
            "convert double->decimal",
            conv("n", T::Decimal, Exact),
            json!({"_id": 1, "n": 0.1}),
            r#"{"_id":1,"n":{"$numberDecimal":"0.1"}}"#,
        ),
        (
            "convert decimal->double",
            conv("n", T::Double, Exact),
            json!({"_id": 1, "n": {"$numberDecimal": "12.50"}}),
            r#"{"_id":1,"n":12.5}"#,
        ),
        (
            "convert string->date",
            conv("d", T::Date, Exact),
            json!({"_id": 1, "d": "2024-01-02T03:04:05Z"}),
            r#"{"_id":1,"d":{"$date":"2024-01-02T03:04:05Z"}}"#,
        ),
        (
            "convert int->date",
            conv("d", T::Date, Exact),
            json!({"_id": 1, "d": 0}),
            r#"{"_id":1,"d":{"$date":"1970-01-01T00:00:00Z"}}"#,
        ),
        (
            "convert date->int",
            conv("d", T::Int, Exact),
            json!({"_id": 1, "d": {"$date": "1970-01-01T00:00:01Z"}}),
            r#"{"_id":1,"d":1000}"#,
        ),
        (
            "convert date->string",
            conv("d", T::String, Exact),
            json!({"_id": 1, "d": {"$date": "2024-01-01T00:00:00Z"}}),
            r#"{"_id":1,"d":"2024-01-01T00:00:00.000Z"}"#,
        ),
        (
            "convert oid->string",
            conv("o", T::String, Exact),
            json!({"_id": 1, "o": {"$oid": "659202de5d0c5e000d000000"}}),
            r#"{"_id":1,"o":"659202de5d0c5e000d000000"}"#,
        ),
        (
            "scale cents->units",
            scale("t", 0.01, T::Double),
            json!({"_id": 1, "t": 16002}),
            r#"{"_id":1,"t":160.02}"#,
        ),
        (
            "scale units->cents",
            scale("t", 100.0, T::Int),
            json!({"_id": 1, "t": 12.34}),
            r#"{"_id":1,"t":1234}"#,
        ),
        (
            "scale half_even",
            scale("t", 0.1, T::Int),
            json!({"_id": 1, "t": 25}),
            r#"{"_id":1,"t":2}"#,
        ),
        (
            "scale decimal",
            scale("t", 0.01, T::Decimal),
            json!({"_id": 1, "t": 1250}),
            r#"{"_id":1,"t":{"$numberDecimal":"12.5"}}"#,
        ),
        (
            "compute division",
            compute("total", "total_cents / 100", None),
            json!({"_id": 1, "total_cents": 16002}),
            r#"{"_id":1,"total_cents":16002,"total":160.02}"#,
        ),
        (
            "compute ints",
            compute("s", "(a + b) * 2 - -1", None),
            json!({"_id": 1, "a": 1, "b": 2}),
            r#"{"_id":1,"a":1,"b":2,"s":7}"#,
        ),
        (
            "compute to int",
            compute("s", "a * 0.5", Some(T::Int)),
            json!({"_id": 1, "a": 5}),
            r#"{"_id":1,"a":5,"s":2}"#,
        ),
        (
            "join",
            Step::Join {
                fields: strs(&["first", "last"]),
                to: lit("name"),
                separator: lit(" "),
                keep: Arg::Lit(false),
            },
            json!({"_id": 1, "first": "Ada", "last": "Lovelace", "x": 1}),
            r#"{"_id":1,"name":"Ada Lovelace","x":1}"#,
        ),
        (
            "split",
            Step::Split {
                field: lit("name"),
                into: strs(&["first", "last"]),
                separator: lit(" "),
                keep: Arg::Lit(false),
            },
            json!({"_id": 1, "name": "Ada King Lovelace", "x": 1}),
            r#"{"_id":1,"first":"Ada","last":"King Lovelace","x":1}"#,
        ),
        (
            "move_in",
            Step::MoveIn {
                fields: strs(&["street", "city"]),
                into: lit("address"),
            },
            json!({"_id": 1, "street": "s", "zip": "z", "city": "c"}),
            r#"{"_id":1,"address":{"street":"s","city":"c"},"zip":"z"}"#,
        ),
        (
            "move_out all",
            Step::MoveOut {
                from: lit("address"),
                fields: vec![],
            },
            json!({"_id": 1, "address": {"street": "s", "city": "c"}, "zip": "z"}),
            r#"{"_id":1,"street":"s","city":"c","zip":"z"}"#,
        ),
        (
            "move_out some",
            Step::MoveOut {
                from: lit("address"),
                fields: strs(&["city"]),
            },
            json!({"_id": 1, "address": {"street": "s", "city": "c"}}),
            r#"{"_id":1,"city":"c","address":{"street":"s"}}"#,
        ),
    ];
    for (name, step, doc, want) in cases {
        assert_eq!(text(&replaced(step, doc)), want, "{name}");
    }
}

#[test]
fn no_ops_and_failures() {
    let unchanged: Vec<(Step, Value)> = vec![
        (Step::Unset { field: lit("nope") }, json!({"_id": 1})),
        (
            Step::Rename {
                from: lit("nope"),
                to: lit("x"),
            },
            json!({"_id": 1}),
        ),
        (
            Step::Default {
                field: lit("a"),
                value: Arg::Lit(json!(2)),
            },
            json!({"_id": 1, "a": null}),
        ),
        (
            Step::Convert {
                field: lit("a"),
                to: Arg::Lit(TypeName::Int),
                round: Arg::Lit(Rounding::Exact),
            },
            json!({"_id": 1, "a": null}),
        ),
        (
            Step::Convert {
                field: lit("a"),
                to: Arg::Lit(TypeName::Int),
                round: Arg::Lit(Rounding::Exact),
            },
            json!({"_id": 1, "a": 5}),
        ),
        (
            Step::MoveOut {
                from: lit("a"),
                fields: vec![],
            },
            json!({"_id": 1}),
        ),
        (
            Step::CreateIndex {
                key: Arg::Lit(IndexKey(vec![])),
                unique: Arg::Lit(false),
                sparse: Arg::Lit(false),
                name: Arg::Lit(None),
            },
            json!({"_id": 1}),
        ),
    ];
    for (step, doc) in unchanged {
        let op = step.op();
        assert_eq!(run(step, doc).unwrap(), Outcome::Unchanged, "{op}");
    }
    let failing: Vec<(Step, Value, &str, &str)> = vec![
        (
            Step::Convert {
                field: lit("n"),
                to: Arg::Lit(TypeName::Int),
                round: Arg::Lit(Rounding::Exact),
            },
            json!({"_id": 1, "n": "twelve"}),
            "n",
            "not a number",
        ),
        (
            Step::Convert {
                field: lit("n"),
                to: Arg::Lit(TypeName::Int),
                round: Arg::Lit(Rounding::Exact),
            },
            json!({"_id": 1, "n": 2.5}),
            "n",
            "fraction",
        ),
        (
            Step::Convert {
                field: lit("n"),
                to: Arg::Lit(TypeName::Date),
                round: Arg::Lit(Rounding::Exact),
            },
            json!({"_id": 1, "n": "yesterday"}),
            "n",
            "ISO-8601",
        ),
        (
            Step::Convert {
                field: lit("n"),
                to: Arg::Lit(TypeName::Int),
                round: Arg::Lit(Rounding::Exact),
            },
            json!({"_id": 1, "n": [1]}),
            "n",
            "array cannot be converted",
        ),
        (
            Step::Scale {
                field: lit("n"),
                factor: Arg::Lit(2.0),
                to: Arg::Lit(TypeName::Int),
                round: Arg::Lit(Rounding::HalfEven),
            },
            json!({"_id": 1, "n": "9"}),
            "n",
            "not a number",
        ),
        (
            Step::Compute {
                field: lit("r"),
                expr: Arg::Lit(Expr::parse("a / b").unwrap()),
                to: None,
                round: Arg::Lit(Rounding::HalfEven),
            },
            json!({"_id": 1, "a": 1, "b": 0}),
            "r",
            "division by zero",
        ),
        (
            Step::Compute {
                field: lit("r"),
                expr: Arg::Lit(Expr::parse("a + q").unwrap()),
                to: None,
                round: Arg::Lit(Rounding::HalfEven),
            },
            json!({"_id": 1, "a": 1}),
            "q",
            "missing",
        ),
        (
            Step::Set {
                field: lit("a.b"),
                value: Arg::Lit(json!(1)),
            },
            json!({"_id": 1, "a": 3}),
            "a.b",
            "not a document",
        ),
        (
            Step::Split {
                field: lit("s"),
                into: vec![lit("x"), lit("y")],
                separator: lit(","),
                keep: Arg::Lit(false),
            },
            json!({"_id": 1, "s": "one"}),
            "s",
            "fewer",
        ),
        (
            Step::MoveIn {
                fields: vec![lit("a")],
                into: lit("b"),
            },
            json!({"_id": 1, "a": 1, "b": 2}),
            "b",
            "not a document",
        ),
        (
            Step::MoveOut {
                from: lit("c"),
                fields: vec![],
            },
            json!({"_id": 1, "c": {"x": 1}, "x": 2}),
            "x",
            "already exists",
        ),
        (
            Step::RestoreFromBaseline,
            json!({"_id": 1}),
            "",
            "no baseline",
        ),
        (
            Step::Set {
                field: Arg::Param("p".into()),
                value: Arg::Lit(json!(1)),
            },
            json!({"_id": 1}),
            "",
            "not bound",
        ),
    ];
    for (step, doc, field, msg) in failing {
        let op = step.op();
        let e = run(step, doc).unwrap_err();
        assert_eq!(e.step, 1);
        assert_eq!(e.op, op);
        assert_eq!(e.field, field, "{op}: {e}");
        assert!(e.message.contains(msg), "{op}: {e}");
        // Messages never carry values.
        assert!(!e.to_string().contains("twelve") && !e.to_string().contains("yesterday"));
    }
}

#[test]
fn terminal_and_baseline_outcomes() {
    let doc = json!({"_id": 1, "a": 1});
    assert_eq!(run(Step::Delete, doc.clone()).unwrap(), Outcome::Delete);
    let q = run(
        Step::Quarantine {
            to: Arg::Lit(QuarantineTarget::DefaultCollection),
        },
        doc.clone(),
    )
    .unwrap();
    assert_eq!(
        q,
        Outcome::Quarantine {
            to: QuarantineTarget::DefaultCollection,
            doc: doc.clone()
        }
    );
    let base = json!({"_id": 1, "a": 0, "b": 2});
    assert_eq!(
        apply_steps(&[Step::RestoreFromBaseline], &doc, Some(&base)).unwrap(),
        Outcome::Replace(base.clone())
    );
    assert_eq!(
        apply_steps(&[Step::RestoreFromBaseline], &base, Some(&base)).unwrap(),
        Outcome::Unchanged
    );
    // Same content, other order: a restore puts the baseline's order back.
    let reordered = json!({"_id": 1, "b": 2, "a": 0});
    assert_eq!(
        apply_steps(&[Step::RestoreFromBaseline], &reordered, Some(&base)).unwrap(),
        Outcome::Replace(base)
    );
    assert_eq!(
        QuarantineTarget::DefaultCollection.for_collection("orders"),
        QuarantineTarget::Collection("orders_quarantine".into())
    );
}

#[test]
fn id_first() {
    let doc = json!({"a": 1, "_id": 7});
    let v = replaced(
        Step::Set {
            field: lit("b"),
            value: Arg::Lit(json!(2)),
        },
        doc,
    );
    assert_eq!(text(&v), r#"{"_id":7,"a":1,"b":2}"#);
}

#[test]
fn decimals_and_rounding() {
    let d = |s: &str| Dec::parse(s).unwrap();
    assert_eq!(d("160.020").to_string(), "160.02");
    assert_eq!(d("-0.05").to_string(), "-0.05");
    assert_eq!(d("1e3").to_string(), "1000");
    assert!(Dec::parse("1.2.3").is_none() && Dec::parse("abc").is_none());
    assert!(Dec::parse("1e999999999").is_none());
    let huge = convert::convert(&json!("1e999999999"), TypeName::Double, Rounding::Exact);
    assert!(huge.unwrap_err().contains("not a number"));
    let cases = [
        ("2.5", Rounding::HalfEven, 2),
        ("3.5", Rounding::HalfEven, 4),
        ("-2.5", Rounding::HalfEven, -2),
        ("-2.5", Rounding::HalfUp, -3),
        ("2.4", Rounding::HalfUp, 2),
        ("-2.7", Rounding::Down, -2),
        ("-2.1", Rounding::Floor, -3),
        ("2.1", Rounding::Ceil, 3),
    ];
    for (s, r, want) in cases {
        assert_eq!(d(s).round(r).unwrap(), want, "{s} {r:?}");
    }
    assert!(d("2.5").round(Rounding::Exact).is_err());
}

#[test]
fn expressions() {
    for bad in ["", "a +", "(a", "a $ b", "a..b", "1 2"] {
        assert!(Expr::parse(bad).is_err(), "{bad}");
    }
    let e = Expr::parse("(price * qty) - discount.amount").unwrap();
    assert_eq!(e.fields(), vec!["price", "qty", "discount.amount"]);
}

#[test]
fn filters() {
    let doc = json!({"status": "paid", "n": 1, "tags": ["a", "b"], "c": {"id": 2}});
    assert!(filter_matches(&doc, "status", &json!("paid")));
    assert!(!filter_matches(&doc, "status", &json!("new")));
    assert!(filter_matches(&doc, "n", &json!(1.0)));
    assert!(filter_matches(&doc, "tags", &json!("b")));
    assert!(filter_matches(&doc, "tags", &json!(["a", "b"])));
    assert!(filter_matches(&doc, "c.id", &json!(2)));
    assert!(filter_matches(&doc, "missing", &Value::Null));
}

#[test]
fn lowercase() {
    let step = || Step::Lowercase {
        field: lit("c.email"),
    };
    assert_eq!(
        text(&replaced(
            step(),
            json!({"_id": 1, "c": {"email": "Ada.LOVELACE@Example.COM", "z": 0}, "y": 2})
        )),
        r#"{"_id":1,"c":{"email":"ada.lovelace@example.com","z":0},"y":2}"#
    );
    // Unicode, not only ASCII.
    assert_eq!(
        text(&replaced(
            step(),
            json!({"_id": 1, "c": {"email": "ÉLODIE@ΣΧΟΛΗ.GR"}})
        )),
        r#"{"_id":1,"c":{"email":"élodie@σχολη.gr"}}"#
    );
    for nothing in [
        json!({"_id": 1}),
        json!({"_id": 1, "c": {"email": null}}),
        json!({"_id": 1, "c": {"email": "already@lower.case"}}),
    ] {
        assert_eq!(run(step(), nothing).unwrap(), Outcome::Unchanged);
    }
    for (doc, kind) in [
        (json!({"_id": 1, "c": {"email": 12}}), "int"),
        (json!({"_id": 1, "c": {"email": {"a": "B"}}}), "document"),
        (json!({"_id": 1, "c": {"email": ["A"]}}), "array"),
    ] {
        let e = run(step(), doc).unwrap_err();
        assert_eq!(
            (e.step, e.op, e.field.as_str()),
            (1, "lowercase", "c.email")
        );
        assert_eq!(
            e.message,
            OpError::NotAString {
                kind,
                verb: "lower-cased"
            }
        );
        assert_eq!(
            e.to_string(),
            format!(
                "step 1 (lowercase), field `c.email`: a {kind} cannot be lower-cased (not a string)"
            )
        );
    }
}
