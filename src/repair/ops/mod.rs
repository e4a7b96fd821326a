//! The fixed set of repair operations and how they act on one document.
//!
//! A [`Step`] is one operation with typed arguments. Every argument is an [`Arg`]: a literal
//! checked when the template is loaded, or a reference to a parameter (`"{{name}}"`) resolved,
//! with the same checks, when the template is bound. Applying steps is pure: it takes a
//! document (and its baseline) and returns an [`Outcome`]; it never touches any data store.
//! Failures are [`StepError`]s naming the step and the field, never the values.

use std::fmt;
use std::path::PathBuf;

use serde_json::Value;

use crate::contract::IndexKey;

/// A step argument: a literal, or a parameter reference still to be resolved.
#[derive(Debug, Clone, PartialEq)]
pub enum Arg<T> {
    Lit(T),
    Param(String),
}

impl<T> Arg<T> {
    /// The literal; a parameter reference here means the step was not bound.
    pub fn lit(&self) -> Result<&T, OpError> {
        match self {
            Arg::Lit(v) => Ok(v),
            Arg::Param(p) => Err(OpError::Unbound(p.clone())),
        }
    }
}

/// A target type of `convert`, `scale` and `compute`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TypeName {
    String,
    Int,
    Double,
    Decimal,
    Date,
}

impl TypeName {
    pub fn parse(s: &str) -> Result<TypeName, String> {
        Ok(match s {
            "string" => TypeName::String,
            "int" => TypeName::Int,
            "double" => TypeName::Double,
            "decimal" => TypeName::Decimal,
            "date" => TypeName::Date,
            _ => {
                return Err(format!(
                    "unknown type {s:?} (expected string, int, double, decimal, date)"
                ))
            }
        })
    }

    pub fn as_str(self) -> &'static str {
        match self {
            TypeName::String => "string",
            TypeName::Int => "int",
            TypeName::Double => "double",
            TypeName::Decimal => "decimal",
            TypeName::Date => "date",
        }
    }

    pub fn is_numeric(self) -> bool {
        matches!(self, TypeName::Int | TypeName::Double | TypeName::Decimal)
    }
}

/// How a fractional number becomes an integer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Rounding {
    /// Fail on a fractional value.
    Exact,
    /// To the nearest, ties to even (banker's rounding).
    HalfEven,
    /// To the nearest, ties away from zero.
    HalfUp,
    /// Toward zero (truncate).
    Down,
    Floor,
    Ceil,
}

impl Rounding {
    pub fn parse(s: &str) -> Result<Rounding, String> {
        Ok(match s {
            "exact" => Rounding::Exact,
            "half_even" => Rounding::HalfEven,
            "half_up" => Rounding::HalfUp,
            "down" => Rounding::Down,
            "floor" => Rounding::Floor,
            "ceil" => Rounding::Ceil,
            _ => {
                return Err(format!(
                    "unknown rounding {s:?} (expected exact, half_even, half_up, down, floor, ceil)"
                ))
            }
        })
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Rounding::Exact => "exact",
            Rounding::HalfEven => "half_even",
            Rounding::HalfUp => "half_up",
            Rounding::Down => "down",
            Rounding::Floor => "floor",
            Rounding::Ceil => "ceil",
        }
    }
}

/// Where `quarantine` keeps a document.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum QuarantineTarget {
    /// `<collection>_quarantine` of the collection the document came from (used when the
    /// template names no collection; see [`QuarantineTarget::for_collection`]).
    DefaultCollection,
    /// Another collection of the same database.
    Collection(String),
    /// A file (`file:PATH` in the template): documents are appended as relaxed Extended JSON lines.
    File(PathBuf),
}

impl QuarantineTarget {
    /// Parses `to`: `file:PATH` or a collection name.
    pub fn parse(s: &str) -> Result<QuarantineTarget, String> {
        if let Some(p) = s.strip_prefix("file:") {
            if p.is_empty() {
                return Err("`file:` needs a path".into());
            }
            return Ok(QuarantineTarget::File(PathBuf::from(p)));
        }
        check_collection_name(s)?;
        Ok(QuarantineTarget::Collection(s.to_string()))
    }

    /// The concrete target for documents of `collection`.
    pub fn for_collection(&self, collection: &str) -> QuarantineTarget {
        match self {
            QuarantineTarget::DefaultCollection => {
                QuarantineTarget::Collection(format!("{collection}_quarantine"))
            }
            other => other.clone(),
        }
    }
}

impl fmt::Display for QuarantineTarget {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            QuarantineTarget::DefaultCollection => f.write_str("<collection>_quarantine"),
            QuarantineTarget::Collection(c) => f.write_str(c),
            QuarantineTarget::File(p) => write!(f, "file:{}", p.display()),
        }
    }
}

pub(crate) fn check_collection_name(s: &str) -> Result<(), String> {
    if s.is_empty() || s.contains('\0') || s.contains('$') || s.starts_with("system.") {
        return Err(format!("invalid collection name {s:?}"));
    }
    Ok(())
}

impl Step {
    pub fn op(&self) -> &'static str {
        self.spec().name
    }

    /// Ends the processing of a document (delete, quarantine).
    pub fn is_terminal(&self) -> bool {
        self.spec().scope == Scope::Terminal
    }

    pub fn is_collection_level(&self) -> bool {
        self.spec().scope == Scope::Collection
    }

    /// The arguments as `(name, shown value)` pairs, for display: absent ones and empty
    /// lists are left out.
    pub fn args(&self) -> Vec<(&'static str, String)> {
        fn show(a: &Arg<Val>) -> String {
            match a {
                Arg::Lit(v) => v.show(),
                Arg::Param(p) => format!("\"{{{{{p}}}}}\""),
            }
        }
        let spec = self.spec();
        let given = self.given();
        let absent = |name: &str| {
            spec.args
                .iter()
                .zip(&given)
                .any(|(a, g)| a.name == name && *g == Given::Absent)
        };
        let mut out = Vec::new();
        for (a, g) in spec.args.iter().zip(&given) {
            if a.shown_with.is_some_and(absent) {
                continue;
            }
            match g {
                Given::Absent => {}
                Given::One(x) => out.push((a.name, show(x))),
                Given::List(items) if items.is_empty() => {}
                Given::List(items) => {
                    let parts: Vec<String> = items.iter().map(show).collect();
                    out.push((a.name, format!("[{}]", parts.join(", "))));
                }
            }
        }
        out
    }
}

/// What a bound template does to one document.
#[derive(Debug, Clone, PartialEq)]
pub enum Outcome {
    /// Replace the document with this one (`_id` first, field order kept where fields stay).
    Replace(Value),
    /// Nothing to change.
    Unchanged,
    /// Delete the document.
    Delete,
    /// Remove the document from the collection and keep `doc` in `to`.
    Quarantine { to: QuarantineTarget, doc: Value },
}

/// A collection-level step of a bound template.
#[derive(Debug, Clone, PartialEq)]
pub enum CollectionAction {
    CreateIndex {
        key: IndexKey,
        unique: bool,
        sparse: bool,
        name: Option<String>,
    },
    DropIndex {
        name: String,
    },
}

/// Checks a dotted path: non-empty components, no `$` at the start of a component.
pub fn check_path(p: &str) -> Result<(), String> {
    if p.is_empty() {
        return Err("a field path cannot be empty".into());
    }
    for c in p.split('.') {
        if c.is_empty() {
            return Err(format!("invalid field path {p:?} (empty component)"));
        }
        if c.starts_with('$') {
            return Err(format!(
                "invalid field path {p:?} (a component starts with `$`)"
            ));
        }
        if c.contains('\0') {
            return Err(format!("invalid field path {p:?}"));
        }
    }
    Ok(())
}

/// Whether `p` is `_id` or inside it.
pub(crate) fn touches_id(p: &str) -> bool {
    p == "_id" || p.starts_with("_id.")
}

/// Order-sensitive equality (serde_json's map equality ignores order).
pub(crate) fn same_exact(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::Object(x), Value::Object(y)) => {
            x.len() == y.len()
                && x.iter()
                    .zip(y.iter())
                    .all(|((ka, va), (kb, vb))| ka == kb && same_exact(va, vb))
        }
        (Value::Array(x), Value::Array(y)) => {
            x.len() == y.len() && x.iter().zip(y).all(|(p, q)| same_exact(p, q))
        }
        _ => a == b,
    }
}

/// A document while steps are applied to it.
pub(crate) struct Run<'a> {
    pub(crate) doc: Value,
    pub(crate) baseline: Option<&'a Value>,
    /// Set by a terminal step.
    pub(crate) end: Option<End>,
}

/// How a terminal step ends a document's processing.
pub(crate) enum End {
    Delete,
    Quarantine(QuarantineTarget),
}

/// Applies resolved steps to one document.
pub(crate) fn apply_steps(
    steps: &[Step],
    doc: &Value,
    baseline: Option<&Value>,
) -> Result<Outcome, StepError> {
    let mut run = Run {
        doc: doc.clone(),
        baseline,
        end: None,
    };
    for (i, step) in steps.iter().enumerate() {
        step.run(&mut run).map_err(|f| StepError {
            step: i + 1,
            op: step.op(),
            field: f.field,
            message: f.error,
        })?;
        match run.end.take() {
            Some(End::Delete) => return Ok(Outcome::Delete),
            Some(End::Quarantine(to)) => return Ok(Outcome::Quarantine { to, doc: run.doc }),
            None => {}
        }
    }
    let mut cur = run.doc;
    if same_exact(&cur, doc) {
        return Ok(Outcome::Unchanged);
    }
    if let Value::Object(m) = &mut cur {
        if m.keys().next().is_some_and(|k| k != "_id") {
            if let Some(id) = m.shift_remove("_id") {
                m.shift_insert(0, "_id".to_string(), id);
            }
        }
    }
    Ok(Outcome::Replace(cur))
}

/// MongoDB-style equality for filters: numbers by value, arrays also element-wise.
pub(crate) fn filter_matches(doc: &Value, path: &str, want: &Value) -> bool {
    let got = crate::scan::values_at(doc, path);
    if want.is_null() && got.is_empty() {
        return true;
    }
    if got.iter().any(|v| loose_eq(v, want)) {
        return true;
    }
    get(doc, path).is_some_and(|v| v.is_array() && loose_eq(v, want))
}

fn loose_eq(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::Number(x), Value::Number(y)) => match (x.as_i64(), y.as_i64()) {
            (Some(p), Some(q)) => p == q,
            _ => x.as_f64() == y.as_f64(),
        },
        (Value::Array(x), Value::Array(y)) => {
            x.len() == y.len() && x.iter().zip(y).all(|(p, q)| loose_eq(p, q))
        }
        (Value::Object(x), Value::Object(y)) => {
            x.len() == y.len()
                && x.iter()
                    .zip(y.iter())
                    .all(|((ka, va), (kb, vb))| ka == kb && loose_eq(va, vb))
        }
        _ => a == b,
    }
}

mod convert;
mod decimal;
mod doc_path;
mod error;
mod expr;
mod kinds;
pub mod spec;
mod table;

#[cfg(test)]
use decimal::Dec;
use doc_path::get;
pub use error::{OpError, StepError};
pub use expr::Expr;
pub use kinds::kind;
pub(crate) use kinds::normalise;
pub use spec::OpSpec;
use spec::{Given, Scope, Val};
pub use table::{Step, OPS};

#[cfg(test)]
mod table_tests;
#[cfg(test)]
mod tests;
