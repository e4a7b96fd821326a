//! The fixed set of repair operations and how they act on one document.
//!
//! A [`Step`] is one operation with typed arguments. Every argument is an [`Arg`]: a literal
//! checked when the template is loaded, or a reference to a parameter (`"{{name}}"`) resolved,
//! with the same checks, when the template is bound. Applying steps is pure: it takes a
//! document (and its baseline) and returns an [`Outcome`]; it never touches any data store.
//! Failures are [`StepError`]s naming the step and the field, never the values.

use std::fmt;
use std::path::PathBuf;

use serde_json::{Map, Number, Value};

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

/// A parsed `compute` expression: fields and numbers with `+ - * /` and parentheses.
#[derive(Debug, Clone, PartialEq)]
pub struct Expr {
    pub text: String,
    node: Node,
}

#[derive(Debug, Clone, PartialEq)]
enum Node {
    Num(Dec, bool),
    Field(String),
    Neg(Box<Node>),
    Bin(Box<Node>, u8, Box<Node>),
}

impl Expr {
    pub fn parse(text: &str) -> Result<Expr, String> {
        let toks = tokenize(text)?;
        let mut p = ExprParser { toks, pos: 0 };
        let node = p.expr(0)?;
        if p.pos != p.toks.len() {
            return Err(format!("expression {text:?}: unexpected {}", p.toks[p.pos]));
        }
        Ok(Expr {
            text: text.to_string(),
            node,
        })
    }

    /// The fields the expression reads.
    pub fn fields(&self) -> Vec<&str> {
        fn walk<'a>(n: &'a Node, out: &mut Vec<&'a str>) {
            match n {
                Node::Num(..) => {}
                Node::Field(f) => out.push(f),
                Node::Neg(a) => walk(a, out),
                Node::Bin(a, _, b) => {
                    walk(a, out);
                    walk(b, out);
                }
            }
        }
        let mut out = Vec::new();
        walk(&self.node, &mut out);
        out
    }
}

#[derive(Debug, Clone, PartialEq)]
enum Tok {
    Num(String),
    Ident(String),
    Op(u8),
}

impl fmt::Display for Tok {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Tok::Num(s) => write!(f, "number {s}"),
            Tok::Ident(s) => write!(f, "field {s}"),
            Tok::Op(c) => write!(f, "`{}`", *c as char),
        }
    }
}

fn tokenize(text: &str) -> Result<Vec<Tok>, String> {
    let b = text.as_bytes();
    let mut i = 0;
    let mut out = Vec::new();
    while i < b.len() {
        let c = b[i];
        if c.is_ascii_whitespace() {
            i += 1;
        } else if matches!(c, b'+' | b'-' | b'*' | b'/' | b'(' | b')') {
            out.push(Tok::Op(c));
            i += 1;
        } else if c.is_ascii_digit() || c == b'.' {
            let s = i;
            while i < b.len() && (b[i].is_ascii_digit() || b[i] == b'.') {
                i += 1;
            }
            out.push(Tok::Num(text[s..i].to_string()));
        } else if c.is_ascii_alphabetic() || c == b'_' {
            let s = i;
            while i < b.len() && (b[i].is_ascii_alphanumeric() || b[i] == b'_' || b[i] == b'.') {
                i += 1;
            }
            let f = &text[s..i];
            check_path(f).map_err(|m| format!("expression {text:?}: {m}"))?;
            out.push(Tok::Ident(f.to_string()));
        } else {
            return Err(format!(
                "expression {text:?}: unexpected character {:?} (only fields, numbers, + - * / and parentheses)",
                text[i..].chars().next().unwrap_or('?')
            ));
        }
    }
    if out.is_empty() {
        return Err("expression is empty".into());
    }
    Ok(out)
}

struct ExprParser {
    toks: Vec<Tok>,
    pos: usize,
}

const MAX_EXPR_DEPTH: usize = 64;

impl ExprParser {
    fn expr(&mut self, depth: usize) -> Result<Node, String> {
        let mut lhs = self.term(depth)?;
        while let Some(Tok::Op(op @ (b'+' | b'-'))) = self.toks.get(self.pos).cloned() {
            self.pos += 1;
            let rhs = self.term(depth)?;
            lhs = Node::Bin(Box::new(lhs), op, Box::new(rhs));
        }
        Ok(lhs)
    }

    fn term(&mut self, depth: usize) -> Result<Node, String> {
        let mut lhs = self.unary(depth)?;
        while let Some(Tok::Op(op @ (b'*' | b'/'))) = self.toks.get(self.pos).cloned() {
            self.pos += 1;
            let rhs = self.unary(depth)?;
            lhs = Node::Bin(Box::new(lhs), op, Box::new(rhs));
        }
        Ok(lhs)
    }

    fn unary(&mut self, depth: usize) -> Result<Node, String> {
        if depth > MAX_EXPR_DEPTH {
            return Err("expression is nested too deeply".into());
        }
        match self.toks.get(self.pos).cloned() {
            Some(Tok::Op(b'-')) => {
                self.pos += 1;
                Ok(Node::Neg(Box::new(self.unary(depth + 1)?)))
            }
            Some(Tok::Op(b'(')) => {
                self.pos += 1;
                let e = self.expr(depth + 1)?;
                match self.toks.get(self.pos) {
                    Some(Tok::Op(b')')) => {
                        self.pos += 1;
                        Ok(e)
                    }
                    _ => Err("expression: missing `)`".into()),
                }
            }
            Some(Tok::Num(s)) => {
                self.pos += 1;
                let d = Dec::parse(&s).ok_or_else(|| format!("expression: bad number {s:?}"))?;
                Ok(Node::Num(d, s.contains('.')))
            }
            Some(Tok::Ident(f)) => {
                self.pos += 1;
                Ok(Node::Field(f))
            }
            Some(t) => Err(format!("expression: unexpected {t}")),
            None => Err("expression ends too early".into()),
        }
    }
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

// ---------------------------------------------------------------------------------------
// Paths on documents (exact: no fan-out over arrays; a numeric component indexes an array).

fn get<'a>(doc: &'a Value, path: &str) -> Option<&'a Value> {
    let mut cur = doc;
    for part in path.split('.') {
        cur = match cur {
            Value::Object(m) => m.get(part)?,
            Value::Array(a) => a.get(part.parse::<usize>().ok()?)?,
            _ => return None,
        };
    }
    Some(cur)
}

fn split_parent(path: &str) -> (Option<&str>, &str) {
    match path.rsplit_once('.') {
        Some((p, k)) => (Some(p), k),
        None => (None, path),
    }
}

fn get_container_mut<'a>(doc: &'a mut Value, path: Option<&str>) -> Option<&'a mut Value> {
    let Some(path) = path else {
        return Some(doc);
    };
    let mut cur = doc;
    for part in path.split('.') {
        cur = match cur {
            Value::Object(m) => m.get_mut(part)?,
            Value::Array(a) => a.get_mut(part.parse::<usize>().ok()?)?,
            _ => return None,
        };
    }
    Some(cur)
}

/// Removes the value at `path`; returns it.
fn remove(doc: &mut Value, path: &str) -> Option<Value> {
    let (parent, key) = split_parent(path);
    match get_container_mut(doc, parent)? {
        Value::Object(m) => m.shift_remove(key),
        _ => None,
    }
}

/// The index of `key` in the object at `parent`.
fn position(doc: &Value, parent: Option<&str>, key: &str) -> Option<usize> {
    let obj = match parent {
        None => doc,
        Some(p) => get(doc, p)?,
    };
    obj.as_object()?.keys().position(|k| k == key)
}

/// Where a value taken from `from` should land when written to `to`: when `to`'s parent
/// object holds `from` (or an ancestor of it), at that position, so a field keeps its place.
fn anchor(doc: &Value, from: &str, to: &str) -> Option<usize> {
    let (to_parent, _) = split_parent(to);
    let rest = match to_parent {
        None => from,
        Some(p) => from.strip_prefix(p)?.strip_prefix('.')?,
    };
    let key = rest.split('.').next()?;
    position(doc, to_parent, key)
}

/// Writes `value` at `path`, creating missing parent documents. An existing field is
/// replaced in place; a new one goes to `at` (or the end).
fn insert(doc: &mut Value, path: &str, value: Value, at: Option<usize>) -> Result<(), String> {
    let parts: Vec<&str> = path.split('.').collect();
    let mut cur = doc;
    for (i, part) in parts.iter().enumerate() {
        let last = i + 1 == parts.len();
        match cur {
            Value::Object(m) => {
                if last {
                    if let Some(slot) = m.get_mut(*part) {
                        *slot = value;
                    } else {
                        match at {
                            Some(idx) if idx <= m.len() => {
                                m.shift_insert(idx, (*part).to_string(), value);
                            }
                            _ => {
                                m.insert((*part).to_string(), value);
                            }
                        }
                    }
                    return Ok(());
                }
                cur = m
                    .entry((*part).to_string())
                    .or_insert_with(|| Value::Object(Map::new()));
            }
            Value::Array(a) => {
                let idx = part
                    .parse::<usize>()
                    .ok()
                    .filter(|i| *i < a.len())
                    .ok_or_else(|| {
                        format!(
                            "`{}` is an array without that element",
                            parts[..i].join(".")
                        )
                    })?;
                if last {
                    a[idx] = value;
                    return Ok(());
                }
                cur = &mut a[idx];
            }
            other => {
                return Err(format!(
                    "`{}` is a {}, not a document",
                    parts[..i].join("."),
                    kind(other)
                ))
            }
        }
    }
    Ok(())
}

/// The BSON type name of a relaxed Extended JSON value.
pub fn kind(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "bool",
        Value::Number(n) if n.is_f64() => "double",
        Value::Number(_) => "int",
        Value::String(_) => "string",
        Value::Array(_) => "array",
        Value::Object(m) => match wrapper(m) {
            Some(("$oid", _)) => "objectId",
            Some(("$date", _)) => "date",
            Some(("$numberDecimal", _)) => "decimal",
            Some(("$numberDouble", _)) => "double",
            Some(("$binary", _)) => "binData",
            Some(("$timestamp", _)) => "timestamp",
            Some(("$regularExpression", _)) => "regex",
            Some(_) => "special",
            None => "document",
        },
    }
}

fn wrapper(m: &Map<String, Value>) -> Option<(&str, &Value)> {
    let (k, v) = m.iter().next()?;
    k.starts_with('$').then_some((k.as_str(), v))
}

/// Normalises a relaxed or canonical Extended JSON value to the relaxed form.
pub(crate) fn normalise(v: Value) -> Result<Value, String> {
    let mut m = Map::new();
    m.insert("v".into(), v);
    let d = crate::value::from_ejson(Value::Object(m)).map_err(|e| e.to_string())?;
    match d.value {
        Value::Object(mut m) => Ok(m.shift_remove("v").unwrap_or(Value::Null)),
        _ => Err("not a value".into()),
    }
}

fn date_value(ms: i64) -> Result<Value, String> {
    let mut inner = Map::new();
    inner.insert("$numberLong".into(), Value::String(ms.to_string()));
    let mut m = Map::new();
    m.insert("$date".into(), Value::Object(inner));
    normalise(Value::Object(m))
}

fn date_ms(v: &Value) -> Option<i64> {
    let inner = v.as_object()?.get("$date")?;
    match inner {
        Value::String(s) => {
            let t = time::OffsetDateTime::parse(s, &time::format_description::well_known::Rfc3339)
                .ok()?;
            i64::try_from(t.unix_timestamp_nanos() / 1_000_000).ok()
        }
        Value::Object(m) => m.get("$numberLong")?.as_str()?.parse().ok(),
        _ => None,
    }
}

fn date_text(ms: i64) -> Option<String> {
    let t = time::OffsetDateTime::from_unix_timestamp_nanos(i128::from(ms) * 1_000_000).ok()?;
    let fmt = time::macros::format_description!(
        "[year]-[month]-[day]T[hour]:[minute]:[second].[subsecond digits:3]Z"
    );
    t.format(&fmt).ok()
}

fn decimal_value(s: &str) -> Result<Value, String> {
    let mut m = Map::new();
    m.insert("$numberDecimal".into(), Value::String(s.to_string()));
    normalise(Value::Object(m))
}

fn double_value(x: f64) -> Result<Value, String> {
    Number::from_f64(x)
        .map(Value::Number)
        .ok_or_else(|| "the result is not a finite double".to_string())
}

// ---------------------------------------------------------------------------------------
// Exact decimals: mantissa × 10^exp, for scaling and arithmetic without binary rounding.

#[derive(Debug, Clone, Copy, PartialEq)]
struct Dec {
    m: i128,
    e: i32,
}

impl Dec {
    fn int(i: i64) -> Dec {
        Dec {
            m: i128::from(i),
            e: 0,
        }
    }

    /// Parses `[-+]digits[.digits][e[-+]digits]`; None when malformed or too long.
    fn parse(s: &str) -> Option<Dec> {
        let (neg, body) = match s.as_bytes().first()? {
            b'-' => (true, &s[1..]),
            b'+' => (false, &s[1..]),
            _ => (false, s),
        };
        let (num, exp) = match body.find(['e', 'E']) {
            Some(i) => (&body[..i], body[i + 1..].parse::<i32>().ok()?),
            None => (body, 0),
        };
        let (ip, fp) = match num.split_once('.') {
            Some((a, b)) => (a, b),
            None => (num, ""),
        };
        if ip.is_empty() && fp.is_empty() {
            return None;
        }
        let mut m: i128 = 0;
        for c in ip.bytes().chain(fp.bytes()) {
            if !c.is_ascii_digit() {
                return None;
            }
            m = m.checked_mul(10)?.checked_add(i128::from(c - b'0'))?;
        }
        let e = exp.checked_sub(i32::try_from(fp.len()).ok()?)?;
        // Beyond Decimal128's range; also keeps `to_string` small.
        if !(-MAX_DEC_EXP..=MAX_DEC_EXP).contains(&e) {
            return None;
        }
        Some(
            Dec {
                m: if neg { -m } else { m },
                e,
            }
            .trim(),
        )
    }

    fn from_f64(x: f64) -> Option<Dec> {
        if !x.is_finite() {
            return None;
        }
        Dec::parse(&format!("{x}"))
    }

    fn trim(mut self) -> Dec {
        if self.m == 0 {
            return Dec { m: 0, e: 0 };
        }
        while self.m % 10 == 0 && self.e < 0 {
            self.m /= 10;
            self.e += 1;
        }
        self
    }

    fn align(a: Dec, b: Dec) -> Option<(i128, i128, i32)> {
        let e = a.e.min(b.e);
        let sa = a.m.checked_mul(pow10(a.e - e)?)?;
        let sb = b.m.checked_mul(pow10(b.e - e)?)?;
        Some((sa, sb, e))
    }

    fn add(self, o: Dec) -> Option<Dec> {
        let (a, b, e) = Dec::align(self, o)?;
        Some(
            Dec {
                m: a.checked_add(b)?,
                e,
            }
            .trim(),
        )
    }

    fn sub(self, o: Dec) -> Option<Dec> {
        let (a, b, e) = Dec::align(self, o)?;
        Some(
            Dec {
                m: a.checked_sub(b)?,
                e,
            }
            .trim(),
        )
    }

    fn mul(self, o: Dec) -> Option<Dec> {
        Some(
            Dec {
                m: self.m.checked_mul(o.m)?,
                e: self.e.checked_add(o.e)?,
            }
            .trim(),
        )
    }

    fn to_f64(self) -> f64 {
        self.to_string().parse().unwrap_or(f64::NAN)
    }

    /// Rounds to an integer.
    fn round(self, mode: Rounding) -> Result<i64, String> {
        let too_big = || "the result does not fit a 64-bit integer".to_string();
        if self.e >= 0 {
            let m = self
                .m
                .checked_mul(pow10(self.e).ok_or_else(too_big)?)
                .ok_or_else(too_big)?;
            return i64::try_from(m).map_err(|_| too_big());
        }
        let Some(p) = pow10(-self.e) else {
            // More than 38 fractional digits: the integer part is 0.
            return match mode {
                Rounding::Exact if self.m != 0 => Err("the value has a fraction".into()),
                Rounding::Floor if self.m < 0 => Ok(-1),
                Rounding::Ceil if self.m > 0 => Ok(1),
                _ => Ok(0),
            };
        };
        let q = self.m / p; // toward zero
        let r = self.m % p;
        if r == 0 {
            return i64::try_from(q).map_err(|_| too_big());
        }
        let twice = r.unsigned_abs().saturating_mul(2);
        let half = twice.cmp(&p.unsigned_abs());
        let away = if self.m < 0 { -1 } else { 1 };
        let q = match mode {
            Rounding::Exact => return Err("the value has a fraction (set `round`)".into()),
            Rounding::Down => q,
            Rounding::Floor => {
                if self.m < 0 {
                    q - 1
                } else {
                    q
                }
            }
            Rounding::Ceil => {
                if self.m > 0 {
                    q + 1
                } else {
                    q
                }
            }
            Rounding::HalfUp => match half {
                std::cmp::Ordering::Less => q,
                _ => q + away,
            },
            Rounding::HalfEven => match half {
                std::cmp::Ordering::Less => q,
                std::cmp::Ordering::Greater => q + away,
                std::cmp::Ordering::Equal => {
                    if q % 2 == 0 {
                        q
                    } else {
                        q + away
                    }
                }
            },
        };
        i64::try_from(q).map_err(|_| too_big())
    }
}

const MAX_DEC_EXP: i32 = 6200;

fn pow10(n: i32) -> Option<i128> {
    10i128.checked_pow(u32::try_from(n).ok()?)
}

impl fmt::Display for Dec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let neg = self.m < 0;
        let digits = self.m.unsigned_abs().to_string();
        let sign = if neg { "-" } else { "" };
        if self.e >= 0 {
            let zeros = "0".repeat(usize::try_from(self.e).unwrap_or(0));
            return write!(f, "{sign}{digits}{zeros}");
        }
        let frac = usize::try_from(-self.e).unwrap_or(0);
        if digits.len() > frac {
            let (a, b) = digits.split_at(digits.len() - frac);
            write!(f, "{sign}{a}.{b}")
        } else {
            let zeros = "0".repeat(frac - digits.len());
            write!(f, "{sign}0.{zeros}{digits}")
        }
    }
}

/// A number read from a document.
#[derive(Debug, Clone, Copy)]
enum Num {
    /// Exact (from an integer, a decimal or a double's shortest form); `fractional` when it
    /// came from a double or decimal (so the natural result type is a double).
    Exact(Dec, bool),
    Float(f64),
}

impl Num {
    fn from_value(v: &Value) -> Result<Num, String> {
        match v {
            Value::Number(n) => {
                if let Some(i) = n.as_i64() {
                    Ok(Num::Exact(Dec::int(i), false))
                } else {
                    let x = n.as_f64().unwrap_or(f64::NAN);
                    Ok(Dec::from_f64(x).map_or(Num::Float(x), |d| Num::Exact(d, true)))
                }
            }
            Value::Object(m) => match wrapper(m) {
                Some(("$numberDecimal", Value::String(s))) => Dec::parse(s)
                    .map(|d| Num::Exact(d, true))
                    .ok_or_else(|| "the decimal is not finite or too long".to_string()),
                _ => Err(format!("a {} is not a number", kind(v))),
            },
            other => Err(format!("a {} is not a number", kind(other))),
        }
    }

    fn to_f64(self) -> f64 {
        match self {
            Num::Exact(d, _) => d.to_f64(),
            Num::Float(x) => x,
        }
    }

    fn fractional(self) -> bool {
        match self {
            Num::Exact(_, f) => f,
            Num::Float(_) => true,
        }
    }

    fn binop(self, op: u8, o: Num) -> Result<Num, String> {
        let frac = self.fractional() || o.fractional();
        if let (Num::Exact(a, _), Num::Exact(b, _)) = (self, o) {
            let r = match op {
                b'+' => a.add(b),
                b'-' => a.sub(b),
                b'*' => a.mul(b),
                _ => None,
            };
            if let Some(r) = r {
                return Ok(Num::Exact(r, frac));
            }
        }
        let (a, b) = (self.to_f64(), o.to_f64());
        let r = match op {
            b'+' => a + b,
            b'-' => a - b,
            b'*' => a * b,
            _ => {
                if b == 0.0 {
                    return Err("division by zero".into());
                }
                a / b
            }
        };
        if !r.is_finite() {
            return Err("the result is not a finite number".into());
        }
        Ok(Dec::from_f64(r).map_or(Num::Float(r), |d| Num::Exact(d, true)))
    }

    /// The value as `to` (`None`: int when nothing fractional was involved, else double).
    fn into_value(self, to: Option<TypeName>, round: Rounding) -> Result<Value, String> {
        let to = to.unwrap_or(if self.fractional() {
            TypeName::Double
        } else {
            TypeName::Int
        });
        match (to, self) {
            (TypeName::Int, Num::Exact(d, _)) => Ok(Value::from(d.round(round)?)),
            (TypeName::Int, Num::Float(x)) => {
                let d = Dec::from_f64(x).ok_or("the result is not a finite number")?;
                Ok(Value::from(d.round(round)?))
            }
            (TypeName::Double, n) => double_value(n.to_f64()),
            (TypeName::Decimal, Num::Exact(d, _)) => decimal_value(&d.to_string()),
            (TypeName::Decimal, Num::Float(x)) => decimal_value(&format!("{x}")),
            (TypeName::String, Num::Exact(d, _)) => Ok(Value::String(d.to_string())),
            (TypeName::String, Num::Float(x)) => Ok(Value::String(format!("{x}"))),
            (TypeName::Date, n) => {
                let ms = match n {
                    Num::Exact(d, _) => d.round(round)?,
                    Num::Float(x) => Dec::from_f64(x)
                        .ok_or("the result is not a finite number")?
                        .round(round)?,
                };
                date_value(ms)
            }
        }
    }
}

fn eval(node: &Node, doc: &Value) -> Result<Num, (String, String)> {
    match node {
        Node::Num(d, frac) => Ok(Num::Exact(*d, *frac)),
        Node::Field(f) => {
            let v = get(doc, f).ok_or_else(|| (f.clone(), "the field is missing".to_string()))?;
            Num::from_value(v).map_err(|m| (f.clone(), m))
        }
        Node::Neg(a) => {
            let v = eval(a, doc)?;
            Num::Exact(Dec::int(0), false)
                .binop(b'-', v)
                .map_err(|m| (String::new(), m))
        }
        Node::Bin(a, op, b) => {
            let x = eval(a, doc)?;
            let y = eval(b, doc)?;
            let r = x.binop(*op, y).map_err(|m| (String::new(), m))?;
            // A division makes the natural result type a double.
            Ok(match (r, *op) {
                (Num::Exact(d, _), b'/') => Num::Exact(d, true),
                _ => r,
            })
        }
    }
}

/// `convert`: the value `v` as type `to`.
fn convert(v: &Value, to: TypeName, round: Rounding) -> Result<Value, String> {
    let k = kind(v);
    let cannot = || format!("a {k} cannot be converted to {}", to.as_str());
    match to {
        TypeName::String => match v {
            Value::String(_) => Ok(v.clone()),
            Value::Bool(b) => Ok(Value::String(b.to_string())),
            Value::Number(_) => Num::from_value(v)?.into_value(Some(TypeName::String), round),
            Value::Object(m) => match wrapper(m) {
                Some(("$numberDecimal", Value::String(s))) => Ok(Value::String(s.clone())),
                Some(("$oid", Value::String(s))) => Ok(Value::String(s.clone())),
                Some(("$date", _)) => {
                    let ms = date_ms(v).ok_or_else(cannot)?;
                    date_text(ms).map(Value::String).ok_or_else(cannot)
                }
                _ => Err(cannot()),
            },
            _ => Err(cannot()),
        },
        TypeName::Int | TypeName::Double | TypeName::Decimal => {
            if k == to.as_str() {
                return Ok(v.clone());
            }
            let n = match v {
                Value::Number(_) => Num::from_value(v)?,
                Value::String(s) => parse_number_text(s).ok_or_else(|| {
                    format!(
                        "a string that is not a number cannot be converted to {}",
                        to.as_str()
                    )
                })?,
                Value::Object(_) if k == "decimal" => Num::from_value(v)?,
                Value::Object(_) if k == "date" => {
                    Num::Exact(Dec::int(date_ms(v).ok_or_else(cannot)?), false)
                }
                _ => return Err(cannot()),
            };
            n.into_value(Some(to), round)
        }
        TypeName::Date => match v {
            Value::Object(_) if k == "date" => Ok(v.clone()),
            Value::String(s) => {
                let mut m = Map::new();
                m.insert("$date".into(), Value::String(s.clone()));
                normalise(Value::Object(m)).map_err(|_| {
                    "a string that is not an ISO-8601 date-time cannot be converted to date"
                        .to_string()
                })
            }
            Value::Number(_) => Num::from_value(v)?.into_value(Some(TypeName::Date), round),
            Value::Object(_) if k == "decimal" => {
                Num::from_value(v)?.into_value(Some(TypeName::Date), round)
            }
            _ => Err(cannot()),
        },
    }
}

fn parse_number_text(s: &str) -> Option<Num> {
    if let Some(d) = Dec::parse(s) {
        return Some(Num::Exact(d, s.contains(['.', 'e', 'E'])));
    }
    // Syntactically a number but too long for an exact decimal.
    let looks_numeric = !s.is_empty()
        && s.bytes()
            .all(|c| c.is_ascii_digit() || matches!(c, b'.' | b'-' | b'+' | b'e' | b'E'));
    let x: f64 = s
        .parse()
        .ok()
        .filter(|x: &f64| x.is_finite() && looks_numeric)?;
    Some(Num::Float(x))
}

/// The text of a value for `join`.
fn join_text(v: &Value) -> Result<String, String> {
    match v {
        Value::String(s) => Ok(s.clone()),
        Value::Number(_) => match Num::from_value(v)? {
            Num::Exact(d, _) => Ok(d.to_string()),
            Num::Float(x) => Ok(format!("{x}")),
        },
        Value::Object(m) => match wrapper(m) {
            Some(("$numberDecimal" | "$oid", Value::String(s))) => Ok(s.clone()),
            _ => Err(format!("a {} cannot be joined as text", kind(v))),
        },
        other => Err(format!("a {} cannot be joined as text", kind(other))),
    }
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
                    let nv = convert(v, to, round).map_err(bad(&f))?;
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
            let r = eval(&expr.node, doc).map_err(|(g, m)| {
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

#[cfg(test)]
mod tests {
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
        let huge = convert(&json!("1e999999999"), TypeName::Double, Rounding::Exact);
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
}
