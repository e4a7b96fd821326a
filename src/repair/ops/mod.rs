//! The fixed set of repair operations and how they act on one document.
//!
//! A [`Step`] is one operation with typed arguments. Every argument is an [`Arg`]: a literal
//! checked when the template is loaded, or a reference to a parameter (`"{{name}}"`) resolved,
//! with the same checks, when the template is bound. Applying steps is pure: it takes a
//! document (and its baseline) and returns an [`Outcome`]; it never touches any data store.
//! Failures are [`StepError`]s naming the step and the field, never the values.

use std::fmt;
use std::path::PathBuf;

use serde_json::{Map, Value};

use crate::contract::IndexKey;

/// A step argument: a literal, or a parameter reference still to be resolved.
#[derive(Debug, Clone, PartialEq)]
pub enum Arg<T> {
    Lit(T),
    Param(String),
}

impl<T> Arg<T> {
    /// The literal; a parameter reference here means the step was not bound.
    pub fn lit(&self) -> Result<&T, String> {
        match self {
            Arg::Lit(v) => Ok(v),
            Arg::Param(p) => Err(format!("parameter `{p}` is not bound")),
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

/// One operation of a template, with its typed arguments.
#[derive(Debug, Clone, PartialEq)]
pub enum Step {
    /// Set `field` to `value` (created, with missing parent documents, when absent).
    Set {
        field: Arg<String>,
        value: Arg<Value>,
    },
    /// Remove `field` (nothing when absent).
    Unset { field: Arg<String> },
    /// Move a value to another path (nothing when `from` is absent; `to` is overwritten).
    Rename { from: Arg<String>, to: Arg<String> },
    /// Copy a value to another path (nothing when `from` is absent).
    Copy { from: Arg<String>, to: Arg<String> },
    /// Set `field` to `value` only when it is missing.
    Default {
        field: Arg<String>,
        value: Arg<Value>,
    },
    /// Change the type of `field` (absent or null: nothing).
    Convert {
        field: Arg<String>,
        to: Arg<TypeName>,
        round: Arg<Rounding>,
    },
    /// Multiply a numeric `field` by `factor` (exact decimal arithmetic) into type `to`.
    Scale {
        field: Arg<String>,
        factor: Arg<f64>,
        to: Arg<TypeName>,
        round: Arg<Rounding>,
    },
    /// Set `field` to the value of an arithmetic expression over fields and numbers.
    Compute {
        field: Arg<String>,
        expr: Arg<Expr>,
        to: Option<Arg<TypeName>>,
        round: Arg<Rounding>,
    },
    /// Join the (string or number) values of `fields` with `separator` into `to`; the
    /// sources are removed unless `keep`.
    Join {
        fields: Vec<Arg<String>>,
        to: Arg<String>,
        separator: Arg<String>,
        keep: Arg<bool>,
    },
    /// Split a string `field` at `separator` into the fields `into` (the last one takes the
    /// rest); the source is removed unless `keep`.
    Split {
        field: Arg<String>,
        into: Vec<Arg<String>>,
        separator: Arg<String>,
        keep: Arg<bool>,
    },
    /// Move fields into the sub-document `into` (created when missing).
    MoveIn {
        fields: Vec<Arg<String>>,
        into: Arg<String>,
    },
    /// Lift fields (all when `fields` is empty) out of the sub-document `from` into its
    /// parent; `from` is removed when it becomes empty.
    MoveOut {
        from: Arg<String>,
        fields: Vec<Arg<String>>,
    },
    /// The document is to be deleted.
    Delete,
    /// The document is to be removed from the collection and kept in `to`.
    Quarantine { to: Arg<QuarantineTarget> },
    /// Replace the document with its baseline version.
    RestoreFromBaseline,
    /// Collection level: create an index.
    CreateIndex {
        key: Arg<IndexKey>,
        unique: Arg<bool>,
        sparse: Arg<bool>,
        name: Arg<Option<String>>,
    },
    /// Collection level: drop an index.
    DropIndex { name: Arg<String> },
}

impl Step {
    pub fn op(&self) -> &'static str {
        match self {
            Step::Set { .. } => "set",
            Step::Unset { .. } => "unset",
            Step::Rename { .. } => "rename",
            Step::Copy { .. } => "copy",
            Step::Default { .. } => "default",
            Step::Convert { .. } => "convert",
            Step::Scale { .. } => "scale",
            Step::Compute { .. } => "compute",
            Step::Join { .. } => "join",
            Step::Split { .. } => "split",
            Step::MoveIn { .. } => "move_in",
            Step::MoveOut { .. } => "move_out",
            Step::Delete => "delete",
            Step::Quarantine { .. } => "quarantine",
            Step::RestoreFromBaseline => "restore_from_baseline",
            Step::CreateIndex { .. } => "create_index",
            Step::DropIndex { .. } => "drop_index",
        }
    }

    /// Ends the processing of a document (delete, quarantine).
    pub fn is_terminal(&self) -> bool {
        matches!(self, Step::Delete | Step::Quarantine { .. })
    }

    pub fn is_collection_level(&self) -> bool {
        matches!(self, Step::CreateIndex { .. } | Step::DropIndex { .. })
    }

    /// The arguments as `(name, shown value)` pairs, for display.
    pub fn args(&self) -> Vec<(&'static str, String)> {
        fn s(a: &Arg<String>) -> String {
            show(a, |v| format!("{v:?}"))
        }
        fn list(a: &[Arg<String>]) -> String {
            let parts: Vec<String> = a.iter().map(s).collect();
            format!("[{}]", parts.join(", "))
        }
        fn show<T>(a: &Arg<T>, f: impl Fn(&T) -> String) -> String {
            match a {
                Arg::Lit(v) => f(v),
                Arg::Param(p) => format!("\"{{{{{p}}}}}\""),
            }
        }
        let json = |a: &Arg<Value>| show(a, |v| v.to_string());
        let ty = |a: &Arg<TypeName>| show(a, |t| format!("{:?}", t.as_str()));
        let round = |a: &Arg<Rounding>| show(a, |r| format!("{:?}", r.as_str()));
        let b = |a: &Arg<bool>| show(a, |v| v.to_string());
        match self {
            Step::Set { field, value } | Step::Default { field, value } => {
                vec![("field", s(field)), ("value", json(value))]
            }
            Step::Unset { field } => vec![("field", s(field))],
            Step::Rename { from, to } | Step::Copy { from, to } => {
                vec![("from", s(from)), ("to", s(to))]
            }
            Step::Convert {
                field,
                to,
                round: r,
            } => {
                vec![("field", s(field)), ("to", ty(to)), ("round", round(r))]
            }
            Step::Scale {
                field,
                factor,
                to,
                round: r,
            } => vec![
                ("field", s(field)),
                ("factor", show(factor, |f| f.to_string())),
                ("to", ty(to)),
                ("round", round(r)),
            ],
            Step::Compute {
                field,
                expr,
                to,
                round: r,
            } => {
                let mut v = vec![
                    ("field", s(field)),
                    ("expr", show(expr, |e| format!("{:?}", e.text))),
                ];
                if let Some(t) = to {
                    v.push(("to", ty(t)));
                    v.push(("round", round(r)));
                }
                v
            }
            Step::Join {
                fields,
                to,
                separator,
                keep,
            } => vec![
                ("fields", list(fields)),
                ("to", s(to)),
                ("separator", s(separator)),
                ("keep", b(keep)),
            ],
            Step::Split {
                field,
                into,
                separator,
                keep,
            } => vec![
                ("field", s(field)),
                ("into", list(into)),
                ("separator", s(separator)),
                ("keep", b(keep)),
            ],
            Step::MoveIn { fields, into } => vec![("fields", list(fields)), ("into", s(into))],
            Step::MoveOut { from, fields } => {
                let mut v = vec![("from", s(from))];
                if !fields.is_empty() {
                    v.push(("fields", list(fields)));
                }
                v
            }
            Step::Delete | Step::RestoreFromBaseline => vec![],
            Step::Quarantine { to } => vec![("to", show(to, |t| format!("{:?}", t.to_string())))],
            Step::CreateIndex {
                key,
                unique,
                sparse,
                name,
            } => vec![
                ("key", show(key, |k| k.to_json().to_string())),
                ("unique", b(unique)),
                ("sparse", b(sparse)),
                (
                    "name",
                    show(name, |n| match n {
                        Some(n) => format!("{n:?}"),
                        None => "(default)".into(),
                    }),
                ),
            ],
            Step::DropIndex { name } => vec![("name", s(name))],
        }
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

/// A step that cannot be applied to a document. Names the step and the field, never values.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("step {step} ({op}){}: {message}", if field.is_empty() { String::new() } else { format!(", field `{field}`") })]
pub struct StepError {
    /// 1-based step number.
    pub step: usize,
    pub op: &'static str,
    /// The field concerned ("" when none).
    pub field: String,
    pub message: String,
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

/// Applies resolved steps to one document.
pub(crate) fn apply_steps(
    steps: &[Step],
    doc: &Value,
    baseline: Option<&Value>,
) -> Result<Outcome, StepError> {
    let mut cur = doc.clone();
    for (i, step) in steps.iter().enumerate() {
        let n = i + 1;
        let err = |field: &str, message: String| StepError {
            step: n,
            op: step.op(),
            field: field.to_string(),
            message,
        };
        match step {
            Step::Delete => return Ok(Outcome::Delete),
            Step::Quarantine { to } => {
                return Ok(Outcome::Quarantine {
                    to: to.lit().map_err(|m| err("", m))?.clone(),
                    doc: cur,
                })
            }
            Step::RestoreFromBaseline => {
                let b = baseline.ok_or_else(|| {
                    err("", "the document has no baseline version to restore".into())
                })?;
                cur = b.clone();
            }
            Step::CreateIndex { .. } | Step::DropIndex { .. } => {}
            other => apply_one(other, &mut cur).map_err(|(f, m)| err(&f, m))?,
        }
    }
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

type OpResult = Result<(), (String, String)>;

fn apply_one(step: &Step, doc: &mut Value) -> OpResult {
    fn bad(f: &str) -> impl Fn(String) -> (String, String) + '_ {
        move |m: String| (f.to_string(), m)
    }
    let lit = |a: &Arg<String>| -> Result<String, (String, String)> {
        a.lit().cloned().map_err(|m| (String::new(), m))
    };
    match step {
        Step::Set { field, value } => {
            let f = lit(field)?;
            let v = value.lit().map_err(bad(&f))?.clone();
            insert(doc, &f, v, None).map_err(bad(&f))
        }
        Step::Default { field, value } => {
            let f = lit(field)?;
            if get(doc, &f).is_none() {
                let v = value.lit().map_err(bad(&f))?.clone();
                insert(doc, &f, v, None).map_err(bad(&f))?;
            }
            Ok(())
        }
        Step::Unset { field } => {
            let f = lit(field)?;
            remove(doc, &f);
            Ok(())
        }
        Step::Rename { from, to } => {
            let (from, to) = (lit(from)?, lit(to)?);
            if get(doc, &from).is_none() {
                return Ok(());
            }
            let at = anchor(doc, &from, &to);
            let v = remove(doc, &from).ok_or_else(|| {
                (
                    from.clone(),
                    "cannot remove the field (inside an array)".into(),
                )
            })?;
            insert(doc, &to, v, at).map_err(bad(&to))
        }
        Step::Copy { from, to } => {
            let (from, to) = (lit(from)?, lit(to)?);
            let Some(v) = get(doc, &from).cloned() else {
                return Ok(());
            };
            let at = anchor(doc, &from, &to);
            insert(doc, &to, v, at).map_err(bad(&to))
        }
        Step::Convert { field, to, round } => {
            let f = lit(field)?;
            let to = *to.lit().map_err(bad(&f))?;
            let round = *round.lit().map_err(bad(&f))?;
            match get(doc, &f) {
                None | Some(Value::Null) => Ok(()),
                Some(v) => {
                    let nv = convert::convert(v, to, round).map_err(bad(&f))?;
                    insert(doc, &f, nv, None).map_err(bad(&f))
                }
            }
        }
        Step::Scale {
            field,
            factor,
            to,
            round,
        } => {
            let f = lit(field)?;
            let factor = *factor.lit().map_err(bad(&f))?;
            let to = *to.lit().map_err(bad(&f))?;
            let round = *round.lit().map_err(bad(&f))?;
            let v = match get(doc, &f) {
                None | Some(Value::Null) => return Ok(()),
                Some(v) => v,
            };
            let x = Num::from_value(v).map_err(bad(&f))?;
            let k = Dec::from_f64(factor).map_or(Num::Float(factor), |d| Num::Exact(d, true));
            let r = x.binop(b'*', k).map_err(bad(&f))?;
            let nv = r.into_value(Some(to), round).map_err(bad(&f))?;
            insert(doc, &f, nv, None).map_err(bad(&f))
        }
        Step::Compute {
            field,
            expr,
            to,
            round,
        } => {
            let f = lit(field)?;
            let expr = expr.lit().map_err(bad(&f))?;
            let to = match to {
                Some(t) => Some(*t.lit().map_err(bad(&f))?),
                None => None,
            };
            let round = *round.lit().map_err(bad(&f))?;
            let r = expr.eval(doc).map_err(|(g, m)| {
                let g = if g.is_empty() { f.clone() } else { g };
                (g, m)
            })?;
            let nv = r.into_value(to, round).map_err(bad(&f))?;
            insert(doc, &f, nv, None).map_err(bad(&f))
        }
        Step::Join {
            fields,
            to,
            separator,
            keep,
        } => {
            let to = lit(to)?;
            let sep = lit(separator)?;
            let keep = *keep.lit().map_err(bad(&to))?;
            let mut parts = Vec::new();
            let mut present = Vec::new();
            for a in fields {
                let f = lit(a)?;
                match get(doc, &f) {
                    None | Some(Value::Null) => {}
                    Some(v) => {
                        parts.push(join_text(v).map_err(bad(&f))?);
                        present.push(f);
                    }
                }
            }
            let Some(first) = present.first() else {
                return Ok(());
            };
            let at = anchor(doc, first, &to);
            insert(doc, &to, Value::String(parts.join(&sep)), at).map_err(bad(&to))?;
            if !keep {
                for f in present.iter().filter(|f| **f != to) {
                    remove(doc, f);
                }
            }
            Ok(())
        }
        Step::Split {
            field,
            into,
            separator,
            keep,
        } => {
            let f = lit(field)?;
            let sep = lit(separator)?;
            let keep = *keep.lit().map_err(bad(&f))?;
            let into: Vec<String> = into.iter().map(lit).collect::<Result<_, _>>()?;
            let text = match get(doc, &f) {
                None | Some(Value::Null) => return Ok(()),
                Some(Value::String(s)) => s.clone(),
                Some(other) => {
                    return Err((
                        f,
                        format!("a {} cannot be split (not a string)", kind(other)),
                    ))
                }
            };
            let parts: Vec<&str> = text.splitn(into.len(), sep.as_str()).collect();
            if parts.len() < into.len() {
                return Err((
                    f,
                    format!(
                        "the text has {} part(s), fewer than the {} fields of `into`",
                        parts.len(),
                        into.len()
                    ),
                ));
            }
            let mut at = anchor(doc, &f, &into[0]);
            if !keep && !into.contains(&f) {
                remove(doc, &f);
            }
            for (name, part) in into.iter().zip(parts) {
                let existed = get(doc, name).is_some();
                insert(doc, name, Value::String(part.to_string()), at).map_err(bad(name))?;
                if !existed {
                    at = at.map(|i| i + 1);
                }
            }
            Ok(())
        }
        Step::MoveIn { fields, into } => {
            let into = lit(into)?;
            let fields: Vec<String> = fields.iter().map(lit).collect::<Result<_, _>>()?;
            let present: Vec<&String> = fields.iter().filter(|f| get(doc, f).is_some()).collect();
            let Some(first) = present.first() else {
                return Ok(());
            };
            match get(doc, &into) {
                None => {
                    let at = anchor(doc, first, &into);
                    insert(doc, &into, Value::Object(Map::new()), at).map_err(bad(&into))?;
                }
                Some(Value::Object(_)) => {}
                Some(other) => {
                    return Err((
                        into.clone(),
                        format!("is a {}, not a document", kind(other)),
                    ))
                }
            }
            for f in present {
                let (_, key) = split_parent(f);
                let dest = format!("{into}.{key}");
                if get(doc, &dest).is_some() {
                    return Err((dest, "already exists in the target sub-document".into()));
                }
                let v = remove(doc, f).ok_or_else(|| {
                    (
                        f.clone(),
                        "cannot remove the field (inside an array)".into(),
                    )
                })?;
                insert(doc, &dest, v, None).map_err(bad(&dest))?;
            }
            Ok(())
        }
        Step::MoveOut { from, fields } => {
            let from = lit(from)?;
            let fields: Vec<String> = fields.iter().map(lit).collect::<Result<_, _>>()?;
            let keys: Vec<String> = match get(doc, &from) {
                None | Some(Value::Null) => return Ok(()),
                Some(Value::Object(m)) => {
                    if fields.is_empty() {
                        m.keys().cloned().collect()
                    } else {
                        fields
                            .iter()
                            .filter(|k| m.contains_key(*k))
                            .cloned()
                            .collect()
                    }
                }
                Some(other) => {
                    return Err((
                        from.clone(),
                        format!("is a {}, not a document", kind(other)),
                    ))
                }
            };
            let (parent, _) = split_parent(&from);
            for key in keys {
                let dest = match parent {
                    Some(p) => format!("{p}.{key}"),
                    None => key.clone(),
                };
                let src = format!("{from}.{key}");
                if get(doc, &dest).is_some() {
                    return Err((dest, "already exists next to the sub-document".into()));
                }
                let at = anchor(doc, &src, &dest);
                let v = remove(doc, &src).unwrap_or(Value::Null);
                insert(doc, &dest, v, at).map_err(bad(&dest))?;
            }
            if get(doc, &from)
                .and_then(Value::as_object)
                .is_some_and(Map::is_empty)
            {
                remove(doc, &from);
            }
            Ok(())
        }
        Step::Delete
        | Step::Quarantine { .. }
        | Step::RestoreFromBaseline
        | Step::CreateIndex { .. }
        | Step::DropIndex { .. } => Ok(()),
    }
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
mod expr;

use convert::join_text;
pub use convert::kind;
pub(crate) use convert::normalise;
use decimal::{Dec, Num};
use doc_path::{anchor, get, insert, remove, split_parent};
pub use expr::Expr;
#[cfg(test)]
mod tests;
