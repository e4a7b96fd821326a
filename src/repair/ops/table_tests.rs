//! Unit tests of the op table: every row fits its step, every default is valid.

use serde_json::{json, Value};

use super::spec::{Given, Kind, Need, OpSpec, Scope};
use super::{Arg, Step, OPS};

/// A valid literal of each kind.
fn sample(kind: Kind) -> Value {
    match kind {
        Kind::Path | Kind::Target | Kind::Key => json!("a"),
        Kind::Str | Kind::NonEmpty | Kind::IndexName => json!("x"),
        Kind::Number => json!(2),
        Kind::Bool => json!(true),
        Kind::Type | Kind::NumType => json!("int"),
        Kind::Round => json!("half_up"),
        Kind::Quarantine => json!("q"),
        Kind::Expr => json!("a + 1"),
        Kind::IndexKey => json!({"a": 1}),
        Kind::Json => json!({"k": [1]}),
    }
}

fn sample_args(spec: &OpSpec) -> Vec<Given> {
    spec.args
        .iter()
        .map(|a| {
            let v = Arg::Lit(a.kind.convert(&sample(a.kind)).unwrap());
            match a.need {
                Need::List { .. } => Given::List(vec![v, Arg::Param("p".into())]),
                _ => Given::One(v),
            }
        })
        .collect()
}

#[test]
fn every_row_builds_its_step_and_back() {
    for spec in OPS {
        let given = sample_args(spec);
        let step = Step::build(spec, given.clone())
            .unwrap_or_else(|| panic!("{}: the row does not fit the step", spec.name));
        assert_eq!(step.op(), spec.name);
        assert!(std::ptr::eq(step.spec(), spec), "{}", spec.name);
        assert_eq!(step.given(), given, "{}", spec.name);
        assert_eq!(step.args().len(), spec.args.len(), "{}", spec.name);
        // Arguments of another op do not fit.
        let other = OPS
            .iter()
            .find(|o| o.args.len() != spec.args.len())
            .unwrap();
        assert!(Step::build(other, given).is_none(), "{}", spec.name);
    }
}

#[test]
fn names_are_unique_and_defaults_valid() {
    for (i, spec) in OPS.iter().enumerate() {
        assert!(
            OPS[..i].iter().all(|o| o.name != spec.name),
            "{} twice",
            spec.name
        );
        for (j, a) in spec.args.iter().enumerate() {
            assert!(spec.args[..j].iter().all(|b| b.name != a.name));
            if let Need::Default(d) = a.need {
                assert!(
                    a.kind.convert(&d.to_json()).is_ok(),
                    "{}.{}",
                    spec.name,
                    a.name
                );
            }
            if let Some(w) = a.shown_with {
                assert!(spec.args.iter().any(|b| b.name == w), "{}", spec.name);
            }
        }
    }
}

#[test]
fn scopes() {
    let of = |scope| -> Vec<&str> {
        OPS.iter()
            .filter(|o| o.scope == scope)
            .map(|o| o.name)
            .collect()
    };
    assert_eq!(of(Scope::Terminal), ["delete", "quarantine"]);
    assert_eq!(of(Scope::Collection), ["create_index", "drop_index"]);
}

#[test]
fn paths_that_cannot_be_written_are_typed_errors() {
    use super::{apply_steps, OpError};
    let set = |f: &str| Step::Set {
        field: Arg::Lit(f.to_string()),
        value: Arg::Lit(json!(1)),
    };
    let doc = json!({"_id": 1, "a": 5, "l": [1]});
    let e = apply_steps(&[set("a.b")], &doc, None).unwrap_err();
    assert_eq!(
        e.message,
        OpError::ParentNotADocument {
            path: "a".into(),
            kind: "int"
        }
    );
    assert_eq!(
        e.to_string(),
        "step 1 (set), field `a.b`: `a` is a int, not a document"
    );
    let e = apply_steps(&[set("l.5.x")], &doc, None).unwrap_err();
    assert_eq!(e.message, OpError::NoSuchElement("l".into()));
    assert_eq!(
        e.to_string(),
        "step 1 (set), field `l.5.x`: `l` is an array without that element"
    );
}
