//! The ops: one row each (name, scope, arguments; see [`ops!`]) and one function each that
//! applies it to a document. Adding an op is a row here, its function, and its tests.
//!
//! An op function gets the [`Run`] (the document being edited, its baseline) and the step's
//! arguments, resolved. It fails with a [`Failure`]: the field concerned and an [`OpError`].

use serde_json::{Map, Value};

use super::convert::{self, join_text};
use super::decimal::{Dec, Num};
use super::doc_path::{anchor, get, insert, remove, split_parent};
use super::error::{path_err, value_err, Failure, OpError};
use super::kinds::kind;
use super::spec::{def_bool, def_str, list, ops, opt, req, spec, ArgSpec, Field, Given};
use super::spec::{Kind as K, Need, OpSpec};
use super::{Arg, End, Expr, QuarantineTarget, Rounding, Run, TypeName};
use crate::contract::IndexKey;

ops! {
    /// Set `field` to `value` (created, with missing parent documents, when absent).
    Set("set", Document, set) { field: Arg<String> = req(K::Target), value: Arg<Value> = req(K::Json) },
    /// Remove `field` (nothing when absent).
    Unset("unset", Document, unset) { field: Arg<String> = req(K::Target) },
    /// Move a value to another path (nothing when `from` is absent; `to` is overwritten).
    Rename("rename", Document, rename) {
        from: Arg<String> = req(K::Target),
        to: Arg<String> = req(K::Target),
    } check (check_rename: from, to),
    /// Copy a value to another path (nothing when `from` is absent).
    Copy("copy", Document, copy) {
        from: Arg<String> = req(K::Path),
        to: Arg<String> = req(K::Target),
    } check (check_copy: from, to),
    /// Set `field` to `value` only when it is missing.
    Default("default", Document, default) {
        field: Arg<String> = req(K::Target),
        value: Arg<Value> = req(K::Json),
    },
    /// Change the type of `field` (absent or null: nothing).
    Convert("convert", Document, convert) {
        field: Arg<String> = req(K::Target),
        to: Arg<TypeName> = req(K::Type),
        round: Arg<Rounding> = def_str(K::Round, "exact"),
    },
    /// Multiply a numeric `field` by `factor` (exact decimal arithmetic) into type `to`.
    Scale("scale", Document, scale) {
        field: Arg<String> = req(K::Target),
        factor: Arg<f64> = req(K::Number),
        to: Arg<TypeName> = def_str(K::NumType, "double"),
        round: Arg<Rounding> = def_str(K::Round, "half_even"),
    },
    /// Set `field` to the value of an arithmetic expression over fields and numbers.
    Compute("compute", Document, compute) {
        field: Arg<String> = req(K::Target),
        expr: Arg<Expr> = req(K::Expr),
        to: Option<Arg<TypeName>> = opt(K::Type),
        round: Arg<Rounding> = def_str(K::Round, "half_even").shown_with("to"),
    },
    /// Join the (string or number) values of `fields` with `separator` into `to`; the
    /// sources are removed unless `keep`.
    Join("join", Document, join) {
        fields: Vec<Arg<String>> = list(K::Target, true),
        to: Arg<String> = req(K::Target),
        separator: Arg<String> = def_str(K::Str, " "),
        keep: Arg<bool> = def_bool(false),
    } check (check_listed_once: fields),
    /// Split a string `field` at `separator` into the fields `into` (the last one takes the
    /// rest); the source is removed unless `keep`.
    Split("split", Document, split) {
        field: Arg<String> = req(K::Target),
        into: Vec<Arg<String>> = list(K::Target, true),
        separator: Arg<String> = req(K::NonEmpty),
        keep: Arg<bool> = def_bool(false),
    } check (check_into: into),
    /// Lower-case a string `field` (Unicode; absent or null: nothing).
    Lowercase("lowercase", Document, lowercase) { field: Arg<String> = req(K::Target) },
    /// Move fields into the sub-document `into` (created when missing).
    MoveIn("move_in", Document, move_in) {
        fields: Vec<Arg<String>> = list(K::Target, true),
        into: Arg<String> = req(K::Target),
    } check (check_move_in: fields, into),
    /// Lift fields (all when `fields` is empty) out of the sub-document `from` into its
    /// parent; `from` is removed when it becomes empty.
    MoveOut("move_out", Document, move_out) {
        from: Arg<String> = req(K::Target),
        fields: Vec<Arg<String>> = list(K::Key, false),
    } check (check_listed_once: fields),
    /// The document is to be deleted.
    Delete("delete", Terminal, delete),
    /// The document is to be removed from the collection and kept in `to`.
    Quarantine("quarantine", Terminal, quarantine) {
        to: Arg<QuarantineTarget> = spec(K::Quarantine, Need::DefaultQuarantine),
    },
    /// Replace the document with its baseline version.
    RestoreFromBaseline("restore_from_baseline", Document, restore_from_baseline),
    /// Collection level: create an index.
    CreateIndex("create_index", Collection, create_index) {
        key: Arg<IndexKey> = req(K::IndexKey),
        unique: Arg<bool> = def_bool(false),
        sparse: Arg<bool> = def_bool(false),
        name: Arg<Option<String>> = def_str(K::IndexName, ""),
    },
    /// Collection level: drop an index.
    DropIndex("drop_index", Collection, drop_index) {
        name: Arg<String> = req(K::NonEmpty),
    },
}

/// The literal of an argument; `field` names the field a failure concerns.
fn lit<'a, T>(a: &'a Arg<T>, field: &str) -> Result<&'a T, Failure> {
    a.lit().map_err(|e| Failure::at(field, e))
}

/// The literals of a list argument.
fn lits(a: &[Arg<String>]) -> Result<Vec<String>, Failure> {
    a.iter().map(|x| lit(x, "").cloned()).collect()
}

fn set(r: &mut Run<'_>, field: &Arg<String>, value: &Arg<Value>) -> Result<(), Failure> {
    let f = lit(field, "")?;
    let v = lit(value, f)?.clone();
    insert(&mut r.doc, f, v, None).map_err(path_err(f))
}

fn unset(r: &mut Run<'_>, field: &Arg<String>) -> Result<(), Failure> {
    remove(&mut r.doc, lit(field, "")?);
    Ok(())
}

fn rename(r: &mut Run<'_>, from: &Arg<String>, to: &Arg<String>) -> Result<(), Failure> {
    let (from, to) = (lit(from, "")?, lit(to, "")?);
    if get(&r.doc, from).is_none() {
        return Ok(());
    }
    let at = anchor(&r.doc, from, to);
    let v = remove(&mut r.doc, from).ok_or_else(|| Failure::at(from, OpError::InsideArray))?;
    insert(&mut r.doc, to, v, at).map_err(path_err(to))
}

fn copy(r: &mut Run<'_>, from: &Arg<String>, to: &Arg<String>) -> Result<(), Failure> {
    let (from, to) = (lit(from, "")?, lit(to, "")?);
    let Some(v) = get(&r.doc, from).cloned() else {
        return Ok(());
    };
    let at = anchor(&r.doc, from, to);
    insert(&mut r.doc, to, v, at).map_err(path_err(to))
}

fn default(r: &mut Run<'_>, field: &Arg<String>, value: &Arg<Value>) -> Result<(), Failure> {
    let f = lit(field, "")?;
    if get(&r.doc, f).is_none() {
        let v = lit(value, f)?.clone();
        insert(&mut r.doc, f, v, None).map_err(path_err(f))?;
    }
    Ok(())
}

fn convert(
    r: &mut Run<'_>,
    field: &Arg<String>,
    to: &Arg<TypeName>,
    round: &Arg<Rounding>,
) -> Result<(), Failure> {
    let f = lit(field, "")?;
    let (to, round) = (*lit(to, f)?, *lit(round, f)?);
    match get(&r.doc, f) {
        None | Some(Value::Null) => Ok(()),
        Some(v) => {
            let nv = convert::convert(v, to, round).map_err(value_err(f))?;
            insert(&mut r.doc, f, nv, None).map_err(path_err(f))
        }
    }
}

fn scale(
    r: &mut Run<'_>,
    field: &Arg<String>,
    factor: &Arg<f64>,
    to: &Arg<TypeName>,
    round: &Arg<Rounding>,
) -> Result<(), Failure> {
    let f = lit(field, "")?;
    let factor = *lit(factor, f)?;
    let (to, round) = (*lit(to, f)?, *lit(round, f)?);
    let v = match get(&r.doc, f) {
        None | Some(Value::Null) => return Ok(()),
        Some(v) => v,
    };
    let x = Num::from_value(v).map_err(value_err(f))?;
    let k = Dec::from_f64(factor).map_or(Num::Float(factor), |d| Num::Exact(d, true));
    let nv = x
        .binop(b'*', k)
        .and_then(|p| p.into_value(Some(to), round))
        .map_err(value_err(f))?;
    insert(&mut r.doc, f, nv, None).map_err(path_err(f))
}

fn compute(
    r: &mut Run<'_>,
    field: &Arg<String>,
    expr: &Arg<Expr>,
    to: &Option<Arg<TypeName>>,
    round: &Arg<Rounding>,
) -> Result<(), Failure> {
    let f = lit(field, "")?;
    let expr = lit(expr, f)?;
    let to = match to {
        Some(t) => Some(*lit(t, f)?),
        None => None,
    };
    let round = *lit(round, f)?;
    let x = expr.eval(&r.doc).map_err(|(g, m)| {
        let g = if g.is_empty() { f } else { &g };
        Failure::at(g, OpError::Value(m))
    })?;
    let nv = x.into_value(to, round).map_err(value_err(f))?;
    insert(&mut r.doc, f, nv, None).map_err(path_err(f))
}

fn join(
    r: &mut Run<'_>,
    fields: &[Arg<String>],
    to: &Arg<String>,
    separator: &Arg<String>,
    keep: &Arg<bool>,
) -> Result<(), Failure> {
    let (to, sep) = (lit(to, "")?, lit(separator, "")?);
    let keep = *lit(keep, to)?;
    let mut parts = Vec::new();
    let mut present = Vec::new();
    for f in lits(fields)? {
        match get(&r.doc, &f) {
            None | Some(Value::Null) => {}
            Some(v) => {
                parts.push(join_text(v).map_err(value_err(&f))?);
                present.push(f);
            }
        }
    }
    let Some(first) = present.first() else {
        return Ok(());
    };
    let at = anchor(&r.doc, first, to);
    insert(&mut r.doc, to, Value::String(parts.join(sep)), at).map_err(path_err(to))?;
    if !keep {
        for f in present.iter().filter(|f| *f != to) {
            remove(&mut r.doc, f);
        }
    }
    Ok(())
}

fn split(
    r: &mut Run<'_>,
    field: &Arg<String>,
    into: &[Arg<String>],
    separator: &Arg<String>,
    keep: &Arg<bool>,
) -> Result<(), Failure> {
    let f = lit(field, "")?;
    let sep = lit(separator, "")?;
    let keep = *lit(keep, f)?;
    let into = lits(into)?;
    let text = match get(&r.doc, f) {
        None | Some(Value::Null) => return Ok(()),
        Some(Value::String(s)) => s.clone(),
        Some(other) => return Err(not_a_string(f, other, "split")),
    };
    let parts: Vec<&str> = text.splitn(into.len(), sep.as_str()).collect();
    if parts.len() < into.len() {
        let (parts, fields) = (parts.len(), into.len());
        return Err(Failure::at(f, OpError::TooFewParts { parts, fields }));
    }
    let mut at = anchor(&r.doc, f, &into[0]);
    if !keep && !into.iter().any(|i| i == f) {
        remove(&mut r.doc, f);
    }
    for (name, part) in into.iter().zip(parts) {
        let existed = get(&r.doc, name).is_some();
        insert(&mut r.doc, name, Value::String(part.to_string()), at).map_err(path_err(name))?;
        if !existed {
            at = at.map(|i| i + 1);
        }
    }
    Ok(())
}

fn lowercase(r: &mut Run<'_>, field: &Arg<String>) -> Result<(), Failure> {
    let f = lit(field, "")?;
    let lower = match get(&r.doc, f) {
        None | Some(Value::Null) => return Ok(()),
        Some(Value::String(s)) => s.to_lowercase(),
        Some(other) => return Err(not_a_string(f, other, "lower-cased")),
    };
    insert(&mut r.doc, f, Value::String(lower), None).map_err(path_err(f))
}

fn move_in(r: &mut Run<'_>, fields: &[Arg<String>], into: &Arg<String>) -> Result<(), Failure> {
    let into = lit(into, "")?;
    let fields = lits(fields)?;
    let present: Vec<&String> = fields.iter().filter(|f| get(&r.doc, f).is_some()).collect();
    let Some(first) = present.first() else {
        return Ok(());
    };
    match get(&r.doc, into) {
        None => {
            let at = anchor(&r.doc, first, into);
            let empty = Value::Object(Map::new());
            insert(&mut r.doc, into, empty, at).map_err(path_err(into))?;
        }
        Some(Value::Object(_)) => {}
        Some(other) => return Err(Failure::at(into, OpError::NotADocument(kind(other)))),
    }
    for f in present {
        let (_, key) = split_parent(f);
        let dest = format!("{into}.{key}");
        if get(&r.doc, &dest).is_some() {
            return Err(Failure::at(&dest, OpError::ExistsInTarget));
        }
        let v = remove(&mut r.doc, f).ok_or_else(|| Failure::at(f, OpError::InsideArray))?;
        insert(&mut r.doc, &dest, v, None).map_err(path_err(&dest))?;
    }
    Ok(())
}

fn move_out(r: &mut Run<'_>, from: &Arg<String>, fields: &[Arg<String>]) -> Result<(), Failure> {
    let from = lit(from, "")?;
    let fields = lits(fields)?;
    let keys: Vec<String> = match get(&r.doc, from) {
        None | Some(Value::Null) => return Ok(()),
        Some(Value::Object(m)) if fields.is_empty() => m.keys().cloned().collect(),
        Some(Value::Object(m)) => fields.into_iter().filter(|k| m.contains_key(k)).collect(),
        Some(other) => return Err(Failure::at(from, OpError::NotADocument(kind(other)))),
    };
    let (parent, _) = split_parent(from);
    for key in keys {
        let dest = match parent {
            Some(p) => format!("{p}.{key}"),
            None => key.clone(),
        };
        let src = format!("{from}.{key}");
        if get(&r.doc, &dest).is_some() {
            return Err(Failure::at(&dest, OpError::ExistsNextTo));
        }
        let at = anchor(&r.doc, &src, &dest);
        let v = remove(&mut r.doc, &src).unwrap_or(Value::Null);
        insert(&mut r.doc, &dest, v, at).map_err(path_err(&dest))?;
    }
    if get(&r.doc, from)
        .and_then(Value::as_object)
        .is_some_and(Map::is_empty)
    {
        remove(&mut r.doc, from);
    }
    Ok(())
}

fn delete(r: &mut Run<'_>) -> Result<(), Failure> {
    r.end = Some(End::Delete);
    Ok(())
}

fn quarantine(r: &mut Run<'_>, to: &Arg<QuarantineTarget>) -> Result<(), Failure> {
    r.end = Some(End::Quarantine(lit(to, "")?.clone()));
    Ok(())
}

fn restore_from_baseline(r: &mut Run<'_>) -> Result<(), Failure> {
    let b = r
        .baseline
        .ok_or_else(|| Failure::at("", OpError::NoBaseline))?;
    r.doc = b.clone();
    Ok(())
}

/// Index steps do nothing to documents (see `Bound::collection_actions`).
fn create_index(
    _: &mut Run<'_>,
    _key: &Arg<IndexKey>,
    _unique: &Arg<bool>,
    _sparse: &Arg<bool>,
    _name: &Arg<Option<String>>,
) -> Result<(), Failure> {
    Ok(())
}

fn drop_index(_: &mut Run<'_>, _name: &Arg<String>) -> Result<(), Failure> {
    Ok(())
}

fn not_a_string(field: &str, v: &Value, verb: &'static str) -> Failure {
    let kind = kind(v);
    Failure::at(field, OpError::NotAString { kind, verb })
}

// Checks between the arguments of a resolved step.

fn text<T>(a: &Arg<T>) -> Result<&T, String> {
    a.lit().map_err(|e| e.to_string())
}

fn related(a: &str, b: &str) -> bool {
    a == b || b.starts_with(&format!("{a}.")) || a.starts_with(&format!("{b}."))
}

fn check_rename(from: &Arg<String>, to: &Arg<String>) -> Result<(), String> {
    let (f, t) = (text(from)?, text(to)?);
    if f != t && related(f, t) {
        return Err(format!("`from` {f:?} and `to` {t:?} overlap"));
    }
    Ok(())
}

fn check_copy(from: &Arg<String>, to: &Arg<String>) -> Result<(), String> {
    if text(from)? == text(to)? {
        return Err("`from` and `to` are the same field".into());
    }
    Ok(())
}

/// The fields, each listed once; `what` follows "listed twice" in the message.
fn listed_once<'a>(fields: &'a [Arg<String>], what: &str) -> Result<Vec<&'a String>, String> {
    let mut seen: Vec<&String> = Vec::with_capacity(fields.len());
    for f in fields {
        let f = text(f)?;
        if seen.contains(&f) {
            return Err(format!("field {f:?} is listed twice{what}"));
        }
        seen.push(f);
    }
    Ok(seen)
}

fn check_listed_once(fields: &[Arg<String>]) -> Result<(), String> {
    listed_once(fields, "").map(drop)
}

fn check_into(into: &[Arg<String>]) -> Result<(), String> {
    listed_once(into, " in `into`").map(drop)
}

fn check_move_in(fields: &[Arg<String>], into: &Arg<String>) -> Result<(), String> {
    let seen = listed_once(fields, "")?;
    let into = text(into)?;
    if seen.iter().any(|f| related(f, into)) {
        return Err(format!("`into` {into:?} overlaps a moved field"));
    }
    Ok(())
}
