//! How an op is described: an [`OpSpec`] row names the op and, per argument, its name, its
//! [`Kind`] (the converter that checks a literal at load and a parameter value at bind) and
//! whether it is required or what it defaults to. Template parsing, binding, display,
//! checking and the list of allowed ops all read these rows (see `table.rs`, where the rows are).
//!
//! Between the table and the typed [`Step`] variants, arguments travel as [`Given`]: a step
//! turns into one `Given` per argument (`Step::given`) and back (`Step::build`).

use serde_json::{Map, Value};

use super::{check_path, kind, touches_id, Arg, Expr, QuarantineTarget, Rounding, TypeName};
use crate::contract::{IndexKey, IndexSpec};

/// Where a step ends up: edits a document, ends its processing, or acts on the collection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scope {
    Document,
    /// Ends the processing of a document (delete, quarantine): must be the last step.
    Terminal,
    /// Acts on the collection (indexes), not on documents.
    Collection,
}

/// One op: its name, scope and arguments (in the order they are parsed and shown).
#[derive(Debug)]
pub struct OpSpec {
    pub name: &'static str,
    pub scope: Scope,
    pub args: &'static [ArgSpec],
}

/// One argument of an op.
#[derive(Debug, Clone, Copy)]
pub struct ArgSpec {
    pub name: &'static str,
    pub kind: Kind,
    pub need: Need,
    /// Shown by `Step::args` only when this other argument is given.
    pub shown_with: Option<&'static str>,
}

/// Whether an argument must be given, and what it is when it is not.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Need {
    Required,
    /// Absent when not given.
    Optional,
    /// This value, as written in a template, when not given.
    Default(DefaultValue),
    /// The template's quarantine collection when not given.
    DefaultQuarantine,
    /// A list of field paths; `required`: it must be given and not be empty (else: empty).
    List {
        required: bool,
    },
}

/// A default value as it would be written in a template.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DefaultValue {
    Str(&'static str),
    Bool(bool),
}

impl DefaultValue {
    pub fn to_json(self) -> Value {
        match self {
            DefaultValue::Str(s) => Value::String(s.to_string()),
            DefaultValue::Bool(b) => Value::Bool(b),
        }
    }
}

pub const fn req(kind: Kind) -> ArgSpec {
    spec(kind, Need::Required)
}

pub const fn opt(kind: Kind) -> ArgSpec {
    spec(kind, Need::Optional)
}

pub const fn def_str(kind: Kind, s: &'static str) -> ArgSpec {
    spec(kind, Need::Default(DefaultValue::Str(s)))
}

pub const fn def_bool(b: bool) -> ArgSpec {
    spec(Kind::Bool, Need::Default(DefaultValue::Bool(b)))
}

pub const fn list(kind: Kind, required: bool) -> ArgSpec {
    spec(kind, Need::List { required })
}

pub const fn spec(kind: Kind, need: Need) -> ArgSpec {
    ArgSpec {
        name: "",
        kind,
        need,
        shown_with: None,
    }
}

impl ArgSpec {
    pub const fn shown_with(mut self, other: &'static str) -> ArgSpec {
        self.shown_with = Some(other);
        self
    }
}

/// What a step argument holds, for checking parameter types against it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Slot {
    Field,
    Str,
    Number,
    Bool,
    Any,
    Json,
}

impl Slot {
    pub fn wants(self) -> &'static str {
        match self {
            Slot::Field => "a field (or string)",
            Slot::Str => "a string",
            Slot::Number => "a number or integer",
            Slot::Bool => "a boolean",
            Slot::Any => "any value",
            Slot::Json => "a json",
        }
    }
}

/// The converter of an argument: what a literal or a parameter value must be.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// A field path that may be `_id`.
    Path,
    /// A field path that is not `_id` (a field a step writes or removes).
    Target,
    /// A field name inside a sub-document (no dots).
    Key,
    Str,
    NonEmpty,
    Number,
    Bool,
    Type,
    NumType,
    Round,
    Quarantine,
    Expr,
    IndexKey,
    /// An index name; `""` is the default name.
    IndexName,
    /// Any relaxed Extended JSON value; parameters may appear anywhere inside it.
    Json,
}

impl Kind {
    pub fn slot(self) -> Slot {
        match self {
            Kind::Path | Kind::Target | Kind::Key => Slot::Field,
            Kind::Number => Slot::Number,
            Kind::Bool => Slot::Bool,
            Kind::IndexKey => Slot::Json,
            Kind::Json => Slot::Any,
            _ => Slot::Str,
        }
    }

    /// Checks a literal or a parameter value.
    pub fn convert(self, v: &Value) -> Result<Val, String> {
        Ok(match self {
            Kind::Path => Val::Str(conv_path(v)?),
            Kind::Target => Val::Str(conv_target(v)?),
            Kind::Key => {
                let s = conv_target(v)?;
                if s.contains('.') {
                    return Err(format!(
                        "{s:?} must be a field name of the sub-document, not a path"
                    ));
                }
                Val::Str(s)
            }
            Kind::Str => Val::Str(conv_str(v)?),
            Kind::NonEmpty => Val::Str(conv_nonempty(v)?),
            Kind::Number => Val::Num(conv_f64(v)?),
            Kind::Bool => Val::Bool(
                v.as_bool()
                    .ok_or_else(|| format!("expected true or false, found {}", kind(v)))?,
            ),
            Kind::Type => Val::Type(TypeName::parse(&conv_str(v)?)?),
            Kind::NumType => Val::Type(conv_num_type(v)?),
            Kind::Round => Val::Round(Rounding::parse(&conv_str(v)?)?),
            Kind::Quarantine => Val::Quarantine(QuarantineTarget::parse(&conv_str(v)?)?),
            Kind::Expr => Val::Expr(Expr::parse(&conv_str(v)?)?),
            Kind::IndexKey => Val::Key(conv_index_key(v)?),
            Kind::IndexName => {
                let s = conv_str(v)?;
                Val::Name((!s.is_empty()).then_some(s))
            }
            Kind::Json => Val::Json(v.clone()),
        })
    }
}

fn conv_path(v: &Value) -> Result<String, String> {
    let s = v
        .as_str()
        .ok_or_else(|| format!("expected a field path string, found {}", kind(v)))?;
    check_path(s)?;
    Ok(s.to_string())
}

fn conv_target(v: &Value) -> Result<String, String> {
    let s = conv_path(v)?;
    if touches_id(&s) {
        return Err("`_id` cannot be changed by a repair step".into());
    }
    Ok(s)
}

fn conv_str(v: &Value) -> Result<String, String> {
    v.as_str()
        .map(str::to_string)
        .ok_or_else(|| format!("expected a string, found {}", kind(v)))
}

fn conv_nonempty(v: &Value) -> Result<String, String> {
    let s = conv_str(v)?;
    if s.is_empty() {
        return Err("must not be empty".into());
    }
    Ok(s)
}

fn conv_f64(v: &Value) -> Result<f64, String> {
    match v {
        Value::Number(n) => n
            .as_f64()
            .filter(|x| x.is_finite())
            .ok_or_else(|| "expected a finite number".into()),
        other => Err(format!("expected a number, found {}", kind(other))),
    }
}

fn conv_num_type(v: &Value) -> Result<TypeName, String> {
    let t = TypeName::parse(&conv_str(v)?)?;
    if !t.is_numeric() {
        return Err(format!(
            "expected int, double or decimal, found {:?}",
            t.as_str()
        ));
    }
    Ok(t)
}

fn conv_index_key(v: &Value) -> Result<IndexKey, String> {
    fn flatten(prefix: &str, m: &Map<String, Value>, out: &mut Map<String, Value>) {
        for (k, v) in m {
            let p = if prefix.is_empty() {
                k.clone()
            } else {
                format!("{prefix}.{k}")
            };
            match v {
                Value::Object(inner) => flatten(&p, inner, out),
                other => {
                    out.insert(p, other.clone());
                }
            }
        }
    }
    let m = v.as_object().ok_or_else(|| {
        format!(
            "an index key must be a document such as {{ field = 1 }}, found {}",
            kind(v)
        )
    })?;
    let mut flat = Map::new();
    flatten("", m, &mut flat);
    let mut spec = Map::new();
    spec.insert("key".into(), Value::Object(flat));
    IndexSpec::from_server_json(&Value::Object(spec)).map(|s| s.key)
}

/// A checked argument value, whatever its type.
#[derive(Debug, Clone, PartialEq)]
pub enum Val {
    Str(String),
    Json(Value),
    Num(f64),
    Bool(bool),
    Type(TypeName),
    Round(Rounding),
    Expr(Expr),
    Quarantine(QuarantineTarget),
    Key(IndexKey),
    Name(Option<String>),
}

impl Val {
    /// The value as `templates show` prints it.
    pub fn show(&self) -> String {
        match self {
            Val::Str(s) => format!("{s:?}"),
            Val::Json(v) => v.to_string(),
            Val::Num(x) => x.to_string(),
            Val::Bool(b) => b.to_string(),
            Val::Type(t) => format!("{:?}", t.as_str()),
            Val::Round(r) => format!("{:?}", r.as_str()),
            Val::Expr(e) => format!("{:?}", e.text),
            Val::Quarantine(q) => format!("{:?}", q.to_string()),
            Val::Key(k) => k.to_json().to_string(),
            Val::Name(Some(n)) => format!("{n:?}"),
            Val::Name(None) => "(default)".into(),
        }
    }
}

/// One argument of a step, whatever its type: given once, absent, or a list.
#[derive(Debug, Clone, PartialEq)]
pub enum Given {
    One(Arg<Val>),
    Absent,
    List(Vec<Arg<Val>>),
}

/// A literal type of a step argument.
pub trait Lit: Sized {
    fn into_val(self) -> Val;
    fn from_val(v: Val) -> Option<Self>;
}

macro_rules! lit {
    ($($t:ty => $v:ident),* $(,)?) => {$(
        impl Lit for $t {
            fn into_val(self) -> Val {
                Val::$v(self)
            }
            fn from_val(v: Val) -> Option<Self> {
                match v {
                    Val::$v(x) => Some(x),
                    _ => None,
                }
            }
        }
    )*};
}

lit!(
    String => Str, Value => Json, f64 => Num, bool => Bool, TypeName => Type,
    Rounding => Round, Expr => Expr, QuarantineTarget => Quarantine, IndexKey => Key,
    Option<String> => Name,
);

fn arg_to<T: Lit + Clone>(a: &Arg<T>) -> Arg<Val> {
    match a {
        Arg::Lit(v) => Arg::Lit(v.clone().into_val()),
        Arg::Param(p) => Arg::Param(p.clone()),
    }
}

fn arg_from<T: Lit>(a: Arg<Val>) -> Option<Arg<T>> {
    Some(match a {
        Arg::Lit(v) => Arg::Lit(T::from_val(v)?),
        Arg::Param(p) => Arg::Param(p),
    })
}

/// The shape of a field of a `Step` variant: `Arg<T>`, `Option<Arg<T>>` or `Vec<Arg<T>>`.
pub trait Field: Sized {
    fn given(&self) -> Given;
    fn from_given(g: Given) -> Option<Self>;
}

impl<T: Lit + Clone> Field for Arg<T> {
    fn given(&self) -> Given {
        Given::One(arg_to(self))
    }
    fn from_given(g: Given) -> Option<Self> {
        match g {
            Given::One(a) => arg_from(a),
            _ => None,
        }
    }
}

impl<T: Lit + Clone> Field for Option<Arg<T>> {
    fn given(&self) -> Given {
        self.as_ref()
            .map_or(Given::Absent, |a| Given::One(arg_to(a)))
    }
    fn from_given(g: Given) -> Option<Self> {
        match g {
            Given::One(a) => arg_from(a).map(Some),
            Given::Absent => Some(None),
            Given::List(_) => None,
        }
    }
}

impl<T: Lit + Clone> Field for Vec<Arg<T>> {
    fn given(&self) -> Given {
        Given::List(self.iter().map(arg_to).collect())
    }
    fn from_given(g: Given) -> Option<Self> {
        match g {
            Given::List(items) => items.into_iter().map(arg_from).collect(),
            _ => None,
        }
    }
}

/// Declares the ops: the [`Step`] enum (one variant per op, one field per argument), the
/// table of [`OpSpec`]s, and the dispatch to each op's function. Each row is
///
/// `Variant("name", Scope, function) { arg: FieldType = ArgSpec, … } check (fn: args…)`
///
/// where `function(run, args…)` applies the op to a document and the optional `check`
/// function checks arguments against each other once they are all known.
macro_rules! ops {
    ($(
        $(#[$doc:meta])*
        $v:ident($name:literal, $scope:ident, $run:path)
        $({ $($f:ident: $t:ty = $spec:expr),* $(,)? })?
        $(check ($check:path : $($cf:ident),*))?
    ),* $(,)?) => {
        /// One operation of a template, with its typed arguments.
        #[derive(Debug, Clone, PartialEq)]
        pub enum Step {
            $($(#[$doc])* $v $({ $($f: $t),* })?,)*
        }

        /// Every op, in the order they are listed to users.
        pub static OPS: &[OpSpec] = &[$(OpSpec {
            name: $name,
            scope: $crate::repair::ops::spec::Scope::$scope,
            args: &[$($(ArgSpec { name: stringify!($f), ..$spec }),*)?],
        }),*];

        impl Step {
            /// The row of [`OPS`] describing this step's op.
            pub fn spec(&self) -> &'static OpSpec {
                let mut _i = 0;
                $(
                    if let Step::$v { .. } = self {
                        return &OPS[_i];
                    }
                    _i += 1;
                )*
                unreachable!("every op has a row")
            }

            /// The arguments, one per [`ArgSpec`] of the op.
            pub fn given(&self) -> Vec<Given> {
                match self {
                    $(Step::$v $({ $($f),* })? => vec![$($(Field::given($f)),*)?],)*
                }
            }

            /// The step of op `spec` with these arguments (`None` when they do not fit it).
            pub fn build(spec: &OpSpec, given: Vec<Given>) -> Option<Step> {
                let mut _it = given.into_iter();
                let step = match spec.name {
                    $($name => Step::$v $({ $($f: Field::from_given(_it.next()?)?),* })?,)*
                    _ => return None,
                };
                _it.next().is_none().then_some(step)
            }

            /// Applies the step to a document.
            pub(crate) fn run(&self, _run: &mut Run<'_>) -> Result<(), Failure> {
                match self {
                    $(Step::$v $({ $($f),* })? => $run(_run $($(, $f)*)?),)*
                }
            }

            /// Checks arguments against each other (all resolved).
            pub(crate) fn check(&self) -> Result<(), String> {
                match self {
                    $($(Step::$v { $($cf,)* .. } => $check($($cf),*),)?)*
                    #[allow(unreachable_patterns)]
                    _ => Ok(()),
                }
            }
        }
    };
}

pub(crate) use ops;
