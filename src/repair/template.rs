//! Repair templates: TOML files read into a [`TemplateConfig`], checked and built into a
//! runtime [`Template`], bound to parameter values ([`Bound`]) and applied to documents.
//!
//! Everything that can be wrong with a template is found when it is loaded (unknown op or
//! argument, wrong type, reference to an undeclared parameter, bad selection, …) and reported
//! as a [`TemplateError`] naming the file and the step. Parameters are referenced in any value
//! position as the exact string `"{{name}}"` and substituted as typed values, never spliced
//! into text: `"{{x}}"` inside a longer string is an error.

use std::collections::BTreeSet;
use std::fmt;
use std::path::{Path, PathBuf};

use serde::Deserialize;
use serde_json::{Map, Value};

use super::ops::{
    self, apply_steps, check_collection_name, check_path, touches_id, Arg, CollectionAction, Expr,
    Outcome, QuarantineTarget, Rounding, Step, StepError, TypeName,
};
use crate::contract::{IndexKey, IndexSpec};

/// Everything that can be wrong with a template or its parameters.
#[derive(Debug, thiserror::Error)]
pub enum TemplateError {
    #[error("{}: cannot read: {source}", path.display())]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{}: not valid TOML: {message}", path.display())]
    Toml { path: PathBuf, message: String },
    /// A problem of the template as a whole (name, select, filter, params).
    #[error("{}: {message}", path.display())]
    Invalid { path: PathBuf, message: String },
    /// A problem of one step (1-based).
    #[error("{}: step {step} ({op}): {message}", path.display())]
    Step {
        path: PathBuf,
        step: usize,
        op: String,
        message: String,
    },
    /// Two templates with one name.
    #[error("{}: template `{name}` is already defined in {}{}", path.display(), other.display(), if *bundled { " (bundled); user templates may not shadow bundled ones: rename it" } else { "" })]
    Duplicate {
        path: PathBuf,
        name: String,
        other: PathBuf,
        bundled: bool,
    },
    /// Parameters given to `bind` that do not fit the template.
    #[error("template `{template}` ({}): {message}", path.display())]
    Bind {
        template: String,
        path: PathBuf,
        message: String,
    },
}

/// Which documents a template works on (the finding classes of a report).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Selection {
    Valid,
    Invalid,
    OtherVersion(u32),
    /// `orphan:<field>`: documents whose reference `field` points nowhere.
    Orphan(String),
    /// `duplicate:<fields>` (comma-separated): members of a duplicate group on a unique key.
    Duplicate(String),
    /// Documents of the baseline that are missing now.
    Missing,
    /// Documents that differ from the baseline.
    Changed,
    /// Documents the baseline does not have.
    Added,
    All,
}

impl Selection {
    /// Parses `invalid`, `valid`, `other_version:N`, `orphan:<field>`, `duplicate:<fields>`,
    /// `missing`, `changed`, `added` or `all`. The argument of `orphan:`/`duplicate:` may be a
    /// parameter reference (`orphan:{{field}}`), resolved when the template is bound.
    pub fn parse(s: &str) -> Result<Selection, String> {
        let (kind, arg) = match s.split_once(':') {
            Some((k, a)) => (k, Some(a)),
            None => (s, None),
        };
        let no_arg = |sel: Selection| match arg {
            None => Ok(sel),
            Some(_) => Err(format!("select {s:?}: `{kind}` takes no argument")),
        };
        match kind {
            "valid" => no_arg(Selection::Valid),
            "invalid" => no_arg(Selection::Invalid),
            "missing" => no_arg(Selection::Missing),
            "changed" => no_arg(Selection::Changed),
            "added" => no_arg(Selection::Added),
            "all" => no_arg(Selection::All),
            "other_version" => {
                let n = arg
                    .and_then(|a| a.parse::<u32>().ok())
                    .filter(|n| *n > 0)
                    .ok_or_else(|| {
                        format!("select {s:?}: expected other_version:N with a version number N")
                    })?;
                Ok(Selection::OtherVersion(n))
            }
            "orphan" => {
                let a = arg.unwrap_or("");
                if param_ref(a).is_none() {
                    check_path(a).map_err(|m| format!("select {s:?}: {m}"))?;
                }
                Ok(Selection::Orphan(a.to_string()))
            }
            "duplicate" => {
                let a = arg.unwrap_or("");
                if param_ref(a).is_none() {
                    for f in a.split(',') {
                        check_path(f).map_err(|m| format!("select {s:?}: {m}"))?;
                    }
                }
                Ok(Selection::Duplicate(a.to_string()))
            }
            _ => Err(format!(
                "unknown select {s:?} (expected invalid, valid, other_version:N, orphan:<field>, duplicate:<fields>, missing, changed, added or all)"
            )),
        }
    }

    pub fn as_str(&self) -> String {
        match self {
            Selection::Valid => "valid".into(),
            Selection::Invalid => "invalid".into(),
            Selection::OtherVersion(n) => format!("other_version:{n}"),
            Selection::Orphan(f) => format!("orphan:{f}"),
            Selection::Duplicate(f) => format!("duplicate:{f}"),
            Selection::Missing => "missing".into(),
            Selection::Changed => "changed".into(),
            Selection::Added => "added".into(),
            Selection::All => "all".into(),
        }
    }

    /// Whether the documents selected need a baseline.
    pub fn needs_baseline(&self) -> bool {
        matches!(
            self,
            Selection::Missing | Selection::Changed | Selection::Added
        )
    }

    fn arg_ref(&self) -> Option<&str> {
        match self {
            Selection::Orphan(a) | Selection::Duplicate(a) => param_ref(a),
            _ => None,
        }
    }
}

impl fmt::Display for Selection {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.as_str())
    }
}

/// The type of a template parameter.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ParamType {
    String,
    Integer,
    Number,
    Boolean,
    /// A dotted field path.
    Field,
    /// Any relaxed Extended JSON value.
    Json,
}

impl ParamType {
    pub fn parse(s: &str) -> Result<ParamType, String> {
        Ok(match s {
            "string" => ParamType::String,
            "integer" => ParamType::Integer,
            "number" => ParamType::Number,
            "boolean" => ParamType::Boolean,
            "field" => ParamType::Field,
            "json" => ParamType::Json,
            _ => {
                return Err(format!(
                    "unknown type {s:?} (expected string, integer, number, boolean, field, json)"
                ))
            }
        })
    }

    pub fn as_str(self) -> &'static str {
        match self {
            ParamType::String => "string",
            ParamType::Integer => "integer",
            ParamType::Number => "number",
            ParamType::Boolean => "boolean",
            ParamType::Field => "field",
            ParamType::Json => "json",
        }
    }

    /// Parses a `--param name=TEXT` value.
    pub fn parse_text(self, text: &str) -> Result<Value, String> {
        match self {
            ParamType::String => Ok(Value::String(text.to_string())),
            ParamType::Integer => text
                .trim()
                .parse::<i64>()
                .map(Value::from)
                .map_err(|_| "expected an integer".into()),
            ParamType::Number => text
                .trim()
                .parse::<f64>()
                .ok()
                .filter(|x| x.is_finite())
                .and_then(serde_json::Number::from_f64)
                .map(Value::Number)
                .ok_or_else(|| "expected a finite number".into()),
            ParamType::Boolean => match text.trim() {
                "true" => Ok(Value::Bool(true)),
                "false" => Ok(Value::Bool(false)),
                _ => Err("expected true or false".into()),
            },
            ParamType::Field => {
                check_path(text)?;
                Ok(Value::String(text.to_string()))
            }
            ParamType::Json => {
                let v: Value =
                    serde_json::from_str(text).map_err(|e| format!("not valid JSON: {e}"))?;
                ops::normalise(v)
            }
        }
    }

    /// Checks (and normalises) a default value given in the template.
    pub fn check_value(self, v: Value) -> Result<Value, String> {
        let want = || format!("the default must be a {}", self.as_str());
        match self {
            ParamType::String => v.is_string().then_some(v).ok_or_else(want),
            ParamType::Integer => v.as_i64().map(Value::from).ok_or_else(want),
            ParamType::Number => v
                .as_f64()
                .filter(|_| v.is_number())
                .and_then(serde_json::Number::from_f64)
                .map(Value::Number)
                .ok_or_else(want),
            ParamType::Boolean => v.is_boolean().then_some(v).ok_or_else(want),
            ParamType::Field => {
                let s = v.as_str().ok_or_else(want)?;
                check_path(s)?;
                Ok(v)
            }
            ParamType::Json => ops::normalise(v),
        }
    }
}

/// A declared parameter.
#[derive(Debug, Clone, PartialEq)]
pub struct Param {
    pub name: String,
    pub kind: ParamType,
    /// Required when `None`.
    pub default: Option<Value>,
    pub description: String,
}

/// A loaded, checked template.
#[derive(Debug, Clone, PartialEq)]
pub struct Template {
    pub name: String,
    pub description: String,
    /// The collection it is for; `None`: any collection.
    pub collection: Option<String>,
    pub select: Selection,
    /// Equality conditions on dotted paths (relaxed EJSON values; may hold `{{param}}`s).
    pub filter: Vec<(String, Value)>,
    pub params: Vec<Param>,
    pub steps: Vec<Step>,
    pub source_file: PathBuf,
}

// ---------------------------------------------------------------------------------------
// The file format.

/// A template file as written (before checking).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TemplateConfig {
    pub name: String,
    pub description: String,
    pub collection: Option<String>,
    pub select: String,
    #[serde(default)]
    pub filter: toml::Table,
    #[serde(default)]
    pub params: toml::map::Map<String, toml::Value>,
    #[serde(default)]
    pub steps: Vec<toml::Table>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
struct ParamConfig {
    #[serde(rename = "type")]
    kind: String,
    default: Option<toml::Value>,
    #[serde(default)]
    description: String,
}

impl TemplateConfig {
    pub fn from_toml(text: &str, path: &Path) -> Result<TemplateConfig, TemplateError> {
        toml::from_str(text).map_err(|e| TemplateError::Toml {
            path: path.to_path_buf(),
            message: e.to_string().trim_end().to_string(),
        })
    }

    /// Checks everything and builds the runtime template.
    pub fn build(self, path: &Path) -> Result<Template, TemplateError> {
        let invalid = |message: String| TemplateError::Invalid {
            path: path.to_path_buf(),
            message,
        };
        if self.name.is_empty()
            || !self
                .name
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        {
            return Err(invalid(format!(
                "invalid template name {:?} (letters, digits, - and _)",
                self.name
            )));
        }
        if self.description.trim().is_empty() {
            return Err(invalid("`description` is empty".into()));
        }
        if let Some(c) = &self.collection {
            check_collection_name(c).map_err(|m| invalid(format!("`collection`: {m}")))?;
        }

        let mut params = Vec::new();
        for (name, raw) in &self.params {
            if param_ref(&format!("{{{{{name}}}}}")).is_none() {
                return Err(invalid(format!(
                    "parameter {name:?}: invalid name (letters, digits and _)"
                )));
            }
            let pc: ParamConfig = raw.clone().try_into().map_err(|e: toml::de::Error| {
                invalid(format!("parameter `{name}`: {}", e.message()))
            })?;
            let kind = ParamType::parse(&pc.kind)
                .map_err(|m| invalid(format!("parameter `{name}`: {m}")))?;
            let default = match pc.default {
                None => None,
                Some(d) => Some(
                    toml_to_json(&d)
                        .and_then(|v| kind.check_value(v))
                        .map_err(|m| invalid(format!("parameter `{name}`: {m}")))?,
                ),
            };
            params.push(Param {
                name: name.clone(),
                kind,
                default,
                description: pc.description,
            });
        }
        let cx = Cx { params: &params };

        let select = Selection::parse(&self.select).map_err(&invalid)?;
        if let Some(p) = select.arg_ref() {
            let slot = if matches!(select, Selection::Orphan(_)) {
                Slot::Field
            } else {
                Slot::Str
            };
            cx.check_ref(p, "select", slot).map_err(&invalid)?;
        }

        let mut filter = Vec::new();
        let fj = toml_to_json(&toml::Value::Table(self.filter.clone()))
            .map_err(|m| invalid(format!("filter: {m}")))?;
        if let Value::Object(m) = fj {
            flatten_filter("", m, &mut filter);
        }
        for (p, v) in &mut filter {
            check_path(p).map_err(|m| invalid(format!("filter: {m}")))?;
            let a = cx
                .value_arg(&format!("filter `{p}`"), v.clone())
                .map_err(|m| invalid(format!("filter: {m}")))?;
            *v = match a {
                Arg::Lit(v) => v,
                Arg::Param(n) => Value::String(format!("{{{{{n}}}}}")),
            };
        }

        if self.steps.is_empty() {
            return Err(invalid("no [[steps]] declared".into()));
        }
        let default_quarantine = match &self.collection {
            Some(c) => QuarantineTarget::Collection(format!("{c}_quarantine")),
            None => QuarantineTarget::DefaultCollection,
        };
        let mut steps = Vec::with_capacity(self.steps.len());
        for (i, table) in self.steps.iter().enumerate() {
            let n = i + 1;
            let op = table
                .get("op")
                .and_then(toml::Value::as_str)
                .unwrap_or("")
                .to_string();
            let step_err = |message: String| TemplateError::Step {
                path: path.to_path_buf(),
                step: n,
                op: if op.is_empty() {
                    "?".into()
                } else {
                    op.clone()
                },
                message,
            };
            if let Some(prev) = steps.last().filter(|s: &&Step| s.is_terminal()) {
                return Err(step_err(format!(
                    "comes after `{}`, which ends the document's processing",
                    prev.op()
                )));
            }
            let step = parse_step(table, &cx, &default_quarantine).map_err(step_err)?;
            if step_is_literal(&step) {
                validate_step(&step).map_err(step_err)?;
            }
            steps.push(step);
        }

        let template = Template {
            name: self.name,
            description: self.description.trim_end().to_string(),
            collection: self.collection,
            select,
            filter,
            params,
            steps,
            source_file: path.to_path_buf(),
        };
        // With every parameter defaulted, the defaults must bind.
        if template.params.iter().all(|p| p.default.is_some()) {
            template.bind(&[]).map_err(|e| match e {
                TemplateError::Bind { message, .. } => {
                    invalid(format!("with the defaults: {message}"))
                }
                other => other,
            })?;
        }
        Ok(template)
    }
}

fn flatten_filter(prefix: &str, m: Map<String, Value>, out: &mut Vec<(String, Value)>) {
    for (k, v) in m {
        let path = if prefix.is_empty() {
            k
        } else {
            format!("{prefix}.{k}")
        };
        match v {
            Value::Object(inner)
                if !inner.is_empty() && !inner.keys().any(|k| k.starts_with('$')) =>
            {
                flatten_filter(&path, inner, out)
            }
            other => out.push((path, other)),
        }
    }
}

/// TOML → relaxed Extended JSON (datetimes become `$date`).
fn toml_to_json(v: &toml::Value) -> Result<Value, String> {
    Ok(match v {
        toml::Value::String(s) => Value::String(s.clone()),
        toml::Value::Integer(i) => Value::from(*i),
        toml::Value::Float(f) => serde_json::Number::from_f64(*f)
            .map(Value::Number)
            .ok_or("a non-finite float is not allowed")?,
        toml::Value::Boolean(b) => Value::Bool(*b),
        toml::Value::Datetime(d) => {
            if d.date.is_none() || d.time.is_none() || d.offset.is_none() {
                return Err(
                    "a date-time needs a date, a time and an offset (e.g. 2024-01-01T00:00:00Z)"
                        .into(),
                );
            }
            let mut m = Map::new();
            m.insert("$date".into(), Value::String(d.to_string()));
            ops::normalise(Value::Object(m))?
        }
        toml::Value::Array(a) => {
            Value::Array(a.iter().map(toml_to_json).collect::<Result<_, _>>()?)
        }
        toml::Value::Table(t) => {
            let mut m = Map::new();
            for (k, v) in t {
                m.insert(k.clone(), toml_to_json(v)?);
            }
            Value::Object(m)
        }
    })
}

/// `{{name}}` exactly → `name`.
fn param_ref(s: &str) -> Option<&str> {
    let name = s.strip_prefix("{{")?.strip_suffix("}}")?;
    (!name.is_empty() && name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_'))
        .then_some(name)
}

/// Every parameter referenced anywhere inside `v`; an error for `{{` / `}}` that is not a
/// whole-string reference.
fn collect_refs<'a>(v: &'a Value, out: &mut Vec<&'a str>) -> Result<(), String> {
    match v {
        Value::String(s) => {
            if let Some(n) = param_ref(s) {
                out.push(n);
            } else if s.contains("{{") || s.contains("}}") {
                return Err(
                    "a parameter reference must be the whole string (\"{{name}}\"); it is never spliced into text"
                        .into(),
                );
            }
        }
        Value::Array(a) => {
            for x in a {
                collect_refs(x, out)?;
            }
        }
        Value::Object(m) => {
            for x in m.values() {
                collect_refs(x, out)?;
            }
        }
        _ => {}
    }
    Ok(())
}

/// What a step argument holds, for checking parameter types against it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Slot {
    Field,
    Str,
    Number,
    Bool,
    Any,
    Json,
}

impl Slot {
    fn accepts(self, t: ParamType) -> bool {
        match self {
            Slot::Field => matches!(t, ParamType::Field | ParamType::String),
            Slot::Str => t == ParamType::String,
            Slot::Number => matches!(t, ParamType::Number | ParamType::Integer),
            Slot::Bool => t == ParamType::Boolean,
            Slot::Any => true,
            Slot::Json => t == ParamType::Json,
        }
    }

    fn wants(self) -> &'static str {
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

/// Parameter context while checking a template.
struct Cx<'a> {
    params: &'a [Param],
}

impl Cx<'_> {
    fn check_ref(&self, name: &str, arg: &str, slot: Slot) -> Result<(), String> {
        let Some(p) = self.params.iter().find(|p| p.name == name) else {
            let declared: Vec<&str> = self.params.iter().map(|p| p.name.as_str()).collect();
            return Err(format!(
                "`{arg}` refers to parameter `{name}`, which is not declared in [params] ({})",
                if declared.is_empty() {
                    "none declared".to_string()
                } else {
                    format!("declared: {}", declared.join(", "))
                }
            ));
        };
        if !slot.accepts(p.kind) {
            return Err(format!(
                "`{arg}` needs {}, but parameter `{name}` is a {}",
                slot.wants(),
                p.kind.as_str()
            ));
        }
        Ok(())
    }

    fn arg<T>(
        &self,
        name: &str,
        v: Value,
        slot: Slot,
        conv: impl Fn(&Value) -> Result<T, String>,
    ) -> Result<Arg<T>, String> {
        if let Some(p) = v.as_str().and_then(param_ref) {
            self.check_ref(p, name, slot)?;
            return Ok(Arg::Param(p.to_string()));
        }
        let mut refs = Vec::new();
        collect_refs(&v, &mut refs).map_err(|m| format!("`{name}`: {m}"))?;
        if !refs.is_empty() {
            return Err(format!(
                "`{name}`: a parameter reference must be the whole value here"
            ));
        }
        conv(&v).map(Arg::Lit).map_err(|m| format!("`{name}`: {m}"))
    }

    /// A value argument: parameters may appear anywhere inside it (each as a whole string).
    fn value_arg(&self, name: &str, v: Value) -> Result<Arg<Value>, String> {
        if let Some(p) = v.as_str().and_then(param_ref) {
            self.check_ref(p, name, Slot::Any)?;
            return Ok(Arg::Param(p.to_string()));
        }
        let mut refs = Vec::new();
        collect_refs(&v, &mut refs).map_err(|m| format!("`{name}`: {m}"))?;
        for r in &refs {
            self.check_ref(r, name, Slot::Any)?;
        }
        if refs.is_empty() {
            Ok(Arg::Lit(ops::normalise(v).map_err(|m| {
                format!("`{name}`: not valid Extended JSON: {m}")
            })?))
        } else {
            Ok(Arg::Lit(v))
        }
    }
}

// Converters: one per argument kind; used for literals at load and parameter values at bind.

fn conv_path(v: &Value) -> Result<String, String> {
    let s = v
        .as_str()
        .ok_or_else(|| format!("expected a field path string, found {}", ops::kind(v)))?;
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

fn conv_key(v: &Value) -> Result<String, String> {
    let s = conv_target(v)?;
    if s.contains('.') {
        return Err(format!(
            "{s:?} must be a field name of the sub-document, not a path"
        ));
    }
    Ok(s)
}

fn conv_str(v: &Value) -> Result<String, String> {
    v.as_str()
        .map(str::to_string)
        .ok_or_else(|| format!("expected a string, found {}", ops::kind(v)))
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
        other => Err(format!("expected a number, found {}", ops::kind(other))),
    }
}

fn conv_bool(v: &Value) -> Result<bool, String> {
    v.as_bool()
        .ok_or_else(|| format!("expected true or false, found {}", ops::kind(v)))
}

fn conv_type(v: &Value) -> Result<TypeName, String> {
    TypeName::parse(&conv_str(v)?)
}

fn conv_num_type(v: &Value) -> Result<TypeName, String> {
    let t = conv_type(v)?;
    if !t.is_numeric() {
        return Err(format!(
            "expected int, double or decimal, found {:?}",
            t.as_str()
        ));
    }
    Ok(t)
}

fn conv_round(v: &Value) -> Result<Rounding, String> {
    Rounding::parse(&conv_str(v)?)
}

fn conv_quarantine(v: &Value) -> Result<QuarantineTarget, String> {
    QuarantineTarget::parse(&conv_str(v)?)
}

fn conv_expr(v: &Value) -> Result<Expr, String> {
    Expr::parse(&conv_str(v)?)
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
            ops::kind(v)
        )
    })?;
    let mut flat = Map::new();
    flatten("", m, &mut flat);
    let mut spec = Map::new();
    spec.insert("key".into(), Value::Object(flat));
    IndexSpec::from_server_json(&Value::Object(spec)).map(|s| s.key)
}

fn conv_index_name(v: &Value) -> Result<Option<String>, String> {
    let s = conv_str(v)?;
    Ok((!s.is_empty()).then_some(s))
}

/// The arguments of one step table.
struct StepArgs<'a> {
    map: Map<String, Value>,
    cx: &'a Cx<'a>,
}

impl StepArgs<'_> {
    fn req<T>(
        &mut self,
        name: &str,
        slot: Slot,
        conv: impl Fn(&Value) -> Result<T, String>,
    ) -> Result<Arg<T>, String> {
        let v = self
            .map
            .shift_remove(name)
            .ok_or_else(|| format!("missing required argument `{name}`"))?;
        self.cx.arg(name, v, slot, conv)
    }

    fn opt<T>(
        &mut self,
        name: &str,
        slot: Slot,
        conv: impl Fn(&Value) -> Result<T, String>,
    ) -> Result<Option<Arg<T>>, String> {
        match self.map.shift_remove(name) {
            None => Ok(None),
            Some(v) => self.cx.arg(name, v, slot, conv).map(Some),
        }
    }

    fn value(&mut self, name: &str) -> Result<Arg<Value>, String> {
        let v = self
            .map
            .shift_remove(name)
            .ok_or_else(|| format!("missing required argument `{name}`"))?;
        self.cx.value_arg(name, v)
    }

    fn list(
        &mut self,
        name: &str,
        required: bool,
        conv: impl Fn(&Value) -> Result<String, String>,
    ) -> Result<Vec<Arg<String>>, String> {
        let Some(v) = self.map.shift_remove(name) else {
            return if required {
                Err(format!("missing required argument `{name}`"))
            } else {
                Ok(Vec::new())
            };
        };
        let Value::Array(items) = v else {
            return Err(format!("`{name}` must be an array of field names"));
        };
        if required && items.is_empty() {
            return Err(format!("`{name}` must not be empty"));
        }
        items
            .into_iter()
            .enumerate()
            .map(|(i, x)| self.cx.arg(&format!("{name}[{i}]"), x, Slot::Field, &conv))
            .collect()
    }
}

/// The arguments each op takes (besides `op`).
fn allowed_args(op: &str) -> Option<&'static [&'static str]> {
    Some(match op {
        "set" | "default" => &["field", "value"],
        "unset" => &["field"],
        "rename" | "copy" => &["from", "to"],
        "convert" => &["field", "to", "round"],
        "scale" => &["field", "factor", "to", "round"],
        "compute" => &["field", "expr", "to", "round"],
        "join" => &["fields", "to", "separator", "keep"],
        "split" => &["field", "into", "separator", "keep"],
        "move_in" => &["fields", "into"],
        "move_out" => &["from", "fields"],
        "delete" | "restore_from_baseline" => &[],
        "quarantine" => &["to"],
        "create_index" => &["key", "unique", "sparse", "name"],
        "drop_index" => &["name"],
        _ => return None,
    })
}

const OPS: &str = "set, unset, rename, copy, default, convert, scale, compute, join, split, move_in, move_out, delete, quarantine, restore_from_baseline, create_index, drop_index";

fn parse_step(
    table: &toml::Table,
    cx: &Cx<'_>,
    default_quarantine: &QuarantineTarget,
) -> Result<Step, String> {
    let op = match table.get("op") {
        None => return Err(format!("missing `op` (one of {OPS})")),
        Some(toml::Value::String(s)) => s.as_str(),
        Some(_) => return Err("`op` must be a string".into()),
    };
    let allowed =
        allowed_args(op).ok_or_else(|| format!("unknown op {op:?} (expected one of {OPS})"))?;
    let mut map = Map::new();
    for (k, v) in table {
        if k == "op" {
            continue;
        }
        if !allowed.contains(&k.as_str()) {
            return Err(format!(
                "unknown argument `{k}` ({})",
                if allowed.is_empty() {
                    format!("`{op}` takes no arguments")
                } else {
                    format!("expected {}", allowed.join(", "))
                }
            ));
        }
        map.insert(
            k.clone(),
            toml_to_json(v).map_err(|m| format!("`{k}`: {m}"))?,
        );
    }
    let mut a = StepArgs { map, cx };
    let f = Slot::Field;
    let step = match op {
        "set" => Step::Set {
            field: a.req("field", f, conv_target)?,
            value: a.value("value")?,
        },
        "default" => Step::Default {
            field: a.req("field", f, conv_target)?,
            value: a.value("value")?,
        },
        "unset" => Step::Unset {
            field: a.req("field", f, conv_target)?,
        },
        "rename" => Step::Rename {
            from: a.req("from", f, conv_target)?,
            to: a.req("to", f, conv_target)?,
        },
        "copy" => Step::Copy {
            from: a.req("from", f, conv_path)?,
            to: a.req("to", f, conv_target)?,
        },
        "convert" => Step::Convert {
            field: a.req("field", f, conv_target)?,
            to: a.req("to", Slot::Str, conv_type)?,
            round: a
                .opt("round", Slot::Str, conv_round)?
                .unwrap_or(Arg::Lit(Rounding::Exact)),
        },
        "scale" => Step::Scale {
            field: a.req("field", f, conv_target)?,
            factor: a.req("factor", Slot::Number, conv_f64)?,
            to: a
                .opt("to", Slot::Str, conv_num_type)?
                .unwrap_or(Arg::Lit(TypeName::Double)),
            round: a
                .opt("round", Slot::Str, conv_round)?
                .unwrap_or(Arg::Lit(Rounding::HalfEven)),
        },
        "compute" => Step::Compute {
            field: a.req("field", f, conv_target)?,
            expr: a.req("expr", Slot::Str, conv_expr)?,
            to: a.opt("to", Slot::Str, conv_type)?,
            round: a
                .opt("round", Slot::Str, conv_round)?
                .unwrap_or(Arg::Lit(Rounding::HalfEven)),
        },
        "join" => Step::Join {
            fields: a.list("fields", true, conv_target)?,
            to: a.req("to", f, conv_target)?,
            separator: a
                .opt("separator", Slot::Str, conv_str)?
                .unwrap_or(Arg::Lit(" ".into())),
            keep: a
                .opt("keep", Slot::Bool, conv_bool)?
                .unwrap_or(Arg::Lit(false)),
        },
        "split" => Step::Split {
            field: a.req("field", f, conv_target)?,
            into: a.list("into", true, conv_target)?,
            separator: a.req("separator", Slot::Str, conv_nonempty)?,
            keep: a
                .opt("keep", Slot::Bool, conv_bool)?
                .unwrap_or(Arg::Lit(false)),
        },
        "move_in" => Step::MoveIn {
            fields: a.list("fields", true, conv_target)?,
            into: a.req("into", f, conv_target)?,
        },
        "move_out" => Step::MoveOut {
            from: a.req("from", f, conv_target)?,
            fields: a.list("fields", false, conv_key)?,
        },
        "delete" => Step::Delete,
        "restore_from_baseline" => Step::RestoreFromBaseline,
        "quarantine" => Step::Quarantine {
            to: a
                .opt("to", Slot::Str, conv_quarantine)?
                .unwrap_or_else(|| Arg::Lit(default_quarantine.clone())),
        },
        "create_index" => Step::CreateIndex {
            key: a.req("key", Slot::Json, conv_index_key)?,
            unique: a
                .opt("unique", Slot::Bool, conv_bool)?
                .unwrap_or(Arg::Lit(false)),
            sparse: a
                .opt("sparse", Slot::Bool, conv_bool)?
                .unwrap_or(Arg::Lit(false)),
            name: a
                .opt("name", Slot::Str, conv_index_name)?
                .unwrap_or(Arg::Lit(None)),
        },
        "drop_index" => Step::DropIndex {
            name: a.req("name", Slot::Str, conv_nonempty)?,
        },
        _ => unreachable!("allowed_args covers every op"),
    };
    Ok(step)
}

/// Whether no argument of the step is a parameter reference (then it is checked at load).
fn step_is_literal(step: &Step) -> bool {
    resolve_step(step, &[]).is_ok()
}

/// Checks between arguments of a fully resolved step.
fn validate_step(step: &Step) -> Result<(), String> {
    let lit = |a: &Arg<String>| a.lit().cloned();
    let related = |a: &str, b: &str| {
        a == b || b.starts_with(&format!("{a}.")) || a.starts_with(&format!("{b}."))
    };
    match step {
        Step::Rename { from, to } => {
            let (f, t) = (lit(from)?, lit(to)?);
            if f != t && related(&f, &t) {
                return Err(format!("`from` {f:?} and `to` {t:?} overlap"));
            }
        }
        Step::Copy { from, to } => {
            let (f, t) = (lit(from)?, lit(to)?);
            if f == t {
                return Err("`from` and `to` are the same field".into());
            }
        }
        Step::Join { fields, .. } | Step::MoveIn { fields, .. } | Step::MoveOut { fields, .. } => {
            let mut seen = BTreeSet::new();
            for f in fields {
                let f = lit(f)?;
                if !seen.insert(f.clone()) {
                    return Err(format!("field {f:?} is listed twice"));
                }
            }
            if let Step::MoveIn { into, .. } = step {
                let into = lit(into)?;
                if seen.iter().any(|f| related(f, &into)) {
                    return Err(format!("`into` {into:?} overlaps a moved field"));
                }
            }
        }
        Step::Split { into, .. } => {
            let mut seen = BTreeSet::new();
            for f in into {
                let f = lit(f)?;
                if !seen.insert(f.clone()) {
                    return Err(format!("field {f:?} is listed twice in `into`"));
                }
            }
        }
        _ => {}
    }
    Ok(())
}

fn lookup<'p>(params: &'p [(String, Value)], name: &str) -> Result<&'p Value, String> {
    params
        .iter()
        .find(|(n, _)| n == name)
        .map(|(_, v)| v)
        .ok_or_else(|| format!("parameter `{name}` is not bound"))
}

fn res<T: Clone>(
    a: &Arg<T>,
    params: &[(String, Value)],
    name: &str,
    conv: impl Fn(&Value) -> Result<T, String>,
) -> Result<Arg<T>, String> {
    match a {
        Arg::Lit(v) => Ok(Arg::Lit(v.clone())),
        Arg::Param(p) => {
            let v = lookup(params, p)?;
            conv(v)
                .map(Arg::Lit)
                .map_err(|m| format!("`{name}` = parameter `{p}`: {m}"))
        }
    }
}

/// Substitutes every whole-string reference inside `v` (typed), then normalises.
fn substitute(v: &Value, params: &[(String, Value)]) -> Result<Value, String> {
    fn walk(v: &Value, params: &[(String, Value)]) -> Result<Value, String> {
        Ok(match v {
            Value::String(s) => match param_ref(s) {
                Some(p) => lookup(params, p)?.clone(),
                None => v.clone(),
            },
            Value::Array(a) => Value::Array(
                a.iter()
                    .map(|x| walk(x, params))
                    .collect::<Result<_, _>>()?,
            ),
            Value::Object(m) => {
                let mut out = Map::new();
                for (k, x) in m {
                    out.insert(k.clone(), walk(x, params)?);
                }
                Value::Object(out)
            }
            other => other.clone(),
        })
    }
    let mut refs = Vec::new();
    collect_refs(v, &mut refs)?;
    if refs.is_empty() {
        return Ok(v.clone());
    }
    ops::normalise(walk(v, params)?).map_err(|m| format!("not valid Extended JSON: {m}"))
}

fn res_value(a: &Arg<Value>, params: &[(String, Value)], name: &str) -> Result<Arg<Value>, String> {
    match a {
        Arg::Param(p) => Ok(Arg::Lit(lookup(params, p)?.clone())),
        Arg::Lit(v) => substitute(v, params)
            .map(Arg::Lit)
            .map_err(|m| format!("`{name}`: {m}")),
    }
}

fn res_list(
    a: &[Arg<String>],
    params: &[(String, Value)],
    name: &str,
    conv: impl Fn(&Value) -> Result<String, String> + Copy,
) -> Result<Vec<Arg<String>>, String> {
    a.iter().map(|x| res(x, params, name, conv)).collect()
}

/// The step with every parameter replaced by its value (each checked like a literal).
fn resolve_step(step: &Step, p: &[(String, Value)]) -> Result<Step, String> {
    Ok(match step {
        Step::Set { field, value } => Step::Set {
            field: res(field, p, "field", conv_target)?,
            value: res_value(value, p, "value")?,
        },
        Step::Default { field, value } => Step::Default {
            field: res(field, p, "field", conv_target)?,
            value: res_value(value, p, "value")?,
        },
        Step::Unset { field } => Step::Unset {
            field: res(field, p, "field", conv_target)?,
        },
        Step::Rename { from, to } => Step::Rename {
            from: res(from, p, "from", conv_target)?,
            to: res(to, p, "to", conv_target)?,
        },
        Step::Copy { from, to } => Step::Copy {
            from: res(from, p, "from", conv_path)?,
            to: res(to, p, "to", conv_target)?,
        },
        Step::Convert { field, to, round } => Step::Convert {
            field: res(field, p, "field", conv_target)?,
            to: res(to, p, "to", conv_type)?,
            round: res(round, p, "round", conv_round)?,
        },
        Step::Scale {
            field,
            factor,
            to,
            round,
        } => Step::Scale {
            field: res(field, p, "field", conv_target)?,
            factor: res(factor, p, "factor", conv_f64)?,
            to: res(to, p, "to", conv_num_type)?,
            round: res(round, p, "round", conv_round)?,
        },
        Step::Compute {
            field,
            expr,
            to,
            round,
        } => Step::Compute {
            field: res(field, p, "field", conv_target)?,
            expr: res(expr, p, "expr", conv_expr)?,
            to: match to {
                Some(t) => Some(res(t, p, "to", conv_type)?),
                None => None,
            },
            round: res(round, p, "round", conv_round)?,
        },
        Step::Join {
            fields,
            to,
            separator,
            keep,
        } => Step::Join {
            fields: res_list(fields, p, "fields", conv_target)?,
            to: res(to, p, "to", conv_target)?,
            separator: res(separator, p, "separator", conv_str)?,
            keep: res(keep, p, "keep", conv_bool)?,
        },
        Step::Split {
            field,
            into,
            separator,
            keep,
        } => Step::Split {
            field: res(field, p, "field", conv_target)?,
            into: res_list(into, p, "into", conv_target)?,
            separator: res(separator, p, "separator", conv_nonempty)?,
            keep: res(keep, p, "keep", conv_bool)?,
        },
        Step::MoveIn { fields, into } => Step::MoveIn {
            fields: res_list(fields, p, "fields", conv_target)?,
            into: res(into, p, "into", conv_target)?,
        },
        Step::MoveOut { from, fields } => Step::MoveOut {
            from: res(from, p, "from", conv_target)?,
            fields: res_list(fields, p, "fields", conv_key)?,
        },
        Step::Delete => Step::Delete,
        Step::RestoreFromBaseline => Step::RestoreFromBaseline,
        Step::Quarantine { to } => Step::Quarantine {
            to: res(to, p, "to", conv_quarantine)?,
        },
        Step::CreateIndex {
            key,
            unique,
            sparse,
            name,
        } => Step::CreateIndex {
            key: res(key, p, "key", conv_index_key)?,
            unique: res(unique, p, "unique", conv_bool)?,
            sparse: res(sparse, p, "sparse", conv_bool)?,
            name: res(name, p, "name", conv_index_name)?,
        },
        Step::DropIndex { name } => Step::DropIndex {
            name: res(name, p, "name", conv_nonempty)?,
        },
    })
}

// ---------------------------------------------------------------------------------------
// Binding and applying.

/// A template with every parameter resolved to a typed value.
#[derive(Debug, Clone, PartialEq)]
pub struct Bound {
    template: Template,
    params: Vec<(String, Value)>,
    selection: Selection,
    filter: Vec<(String, Value)>,
    steps: Vec<Step>,
}

impl Template {
    /// Loads and checks one template file.
    pub fn load_file(path: &Path) -> Result<Template, TemplateError> {
        let text = std::fs::read_to_string(path).map_err(|source| TemplateError::Io {
            path: path.to_path_buf(),
            source,
        })?;
        Template::parse(&text, path)
    }

    /// Parses and checks a template's text; `path` names it in messages.
    pub fn parse(text: &str, path: &Path) -> Result<Template, TemplateError> {
        TemplateConfig::from_toml(text, path)?.build(path)
    }

    pub fn param(&self, name: &str) -> Option<&Param> {
        self.params.iter().find(|p| p.name == name)
    }

    /// Binds `--param name=value` strings (parsed by each parameter's type) and defaults.
    pub fn bind(&self, given: &[(String, String)]) -> Result<Bound, TemplateError> {
        let err = |message: String| TemplateError::Bind {
            template: self.name.clone(),
            path: self.source_file.clone(),
            message,
        };
        for (i, (k, _)) in given.iter().enumerate() {
            if self.param(k).is_none() {
                let declared: Vec<&str> = self.params.iter().map(|p| p.name.as_str()).collect();
                return Err(err(format!(
                    "unknown parameter `{k}` ({})",
                    if declared.is_empty() {
                        "the template takes no parameters".to_string()
                    } else {
                        format!("expected {}", declared.join(", "))
                    }
                )));
            }
            if given[..i].iter().any(|(j, _)| j == k) {
                return Err(err(format!("parameter `{k}` is given twice")));
            }
        }
        let mut values = Vec::with_capacity(self.params.len());
        for p in &self.params {
            let v = match given.iter().find(|(k, _)| *k == p.name) {
                Some((_, text)) => p.kind.parse_text(text).map_err(|m| {
                    err(format!("parameter `{}` ({}): {m}", p.name, p.kind.as_str()))
                })?,
                None => p.default.clone().ok_or_else(|| {
                    err(format!(
                        "parameter `{}` is required (no default): give --param {}=…",
                        p.name, p.name
                    ))
                })?,
            };
            values.push((p.name.clone(), v));
        }

        let selection = match (&self.select, self.select.arg_ref()) {
            (sel, Some(p)) => {
                let v = lookup(&values, p).map_err(&err)?;
                let text = v.as_str().unwrap_or_default();
                let s = match sel {
                    Selection::Orphan(_) => format!("orphan:{text}"),
                    _ => format!("duplicate:{text}"),
                };
                let parsed = Selection::parse(&s).map_err(|m| err(format!("select: {m}")))?;
                if parsed.arg_ref().is_some() {
                    return Err(err("select: a parameter value cannot be a reference".into()));
                }
                parsed
            }
            (sel, None) => sel.clone(),
        };
        let mut filter = Vec::with_capacity(self.filter.len());
        for (path, v) in &self.filter {
            let v = substitute(v, &values).map_err(|m| err(format!("filter `{path}`: {m}")))?;
            filter.push((path.clone(), v));
        }
        let mut steps = Vec::with_capacity(self.steps.len());
        for (i, s) in self.steps.iter().enumerate() {
            let r = resolve_step(s, &values)
                .and_then(|r| validate_step(&r).map(|()| r))
                .map_err(|m| err(format!("step {} ({}): {m}", i + 1, s.op())))?;
            steps.push(r);
        }
        Ok(Bound {
            template: self.clone(),
            params: values,
            selection,
            filter,
            steps,
        })
    }
}

impl Bound {
    /// Whether `doc` satisfies every filter condition (MongoDB equality: numbers by
    /// value, arrays match an element; `null` matches a missing field).
    pub fn matches_filter(&self, doc: &Value) -> bool {
        self.filter
            .iter()
            .all(|(p, want)| ops::filter_matches(doc, p, want))
    }

    /// Applies the steps to one document (pure). `baseline` is the document's baseline
    /// version, needed by `restore_from_baseline`. For a document that is missing now,
    /// pass a stub such as `{"_id": …}` as `doc`.
    pub fn apply(&self, doc: &Value, baseline: Option<&Value>) -> Result<Outcome, StepError> {
        apply_steps(&self.steps, doc, baseline)
    }

    /// The collection-level steps (index changes), in order.
    pub fn collection_actions(&self) -> Vec<CollectionAction> {
        self.steps
            .iter()
            .filter_map(|s| match s {
                Step::CreateIndex {
                    key: Arg::Lit(key),
                    unique: Arg::Lit(unique),
                    sparse: Arg::Lit(sparse),
                    name: Arg::Lit(name),
                } => Some(CollectionAction::CreateIndex {
                    key: key.clone(),
                    unique: *unique,
                    sparse: *sparse,
                    name: name.clone(),
                }),
                Step::DropIndex {
                    name: Arg::Lit(name),
                } => Some(CollectionAction::DropIndex { name: name.clone() }),
                _ => None,
            })
            .collect()
    }

    pub fn template(&self) -> &Template {
        &self.template
    }

    /// Every parameter with its typed value, in declaration order.
    pub fn params(&self) -> &[(String, Value)] {
        &self.params
    }

    /// The selection with parameters resolved.
    pub fn selection(&self) -> &Selection {
        &self.selection
    }

    /// The filter with parameters resolved.
    pub fn filter(&self) -> &[(String, Value)] {
        &self.filter
    }

    /// The resolved steps.
    pub fn steps(&self) -> &[Step] {
        &self.steps
    }

    /// Whether any document step uses the baseline.
    pub fn needs_baseline(&self) -> bool {
        self.selection.needs_baseline()
            || self
                .steps
                .iter()
                .any(|s| matches!(s, Step::RestoreFromBaseline))
    }
}

// ---------------------------------------------------------------------------------------
// The library.

/// The bundled templates, compiled in so the binary works anywhere.
const BUNDLED: &[(&str, &str)] = &[
    (
        "cents-from-units.toml",
        include_str!("../../repair-templates/cents-from-units.toml"),
    ),
    (
        "convert-field-type.toml",
        include_str!("../../repair-templates/convert-field-type.toml"),
    ),
    (
        "create-missing-index.toml",
        include_str!("../../repair-templates/create-missing-index.toml"),
    ),
    (
        "dedupe-keep-first.toml",
        include_str!("../../repair-templates/dedupe-keep-first.toml"),
    ),
    (
        "drop-unexpected-index.toml",
        include_str!("../../repair-templates/drop-unexpected-index.toml"),
    ),
    (
        "quarantine-invalid.toml",
        include_str!("../../repair-templates/quarantine-invalid.toml"),
    ),
    (
        "quarantine-orphans.toml",
        include_str!("../../repair-templates/quarantine-orphans.toml"),
    ),
    (
        "quarantine-added.toml",
        include_str!("../../repair-templates/quarantine-added.toml"),
    ),
    (
        "rename-field.toml",
        include_str!("../../repair-templates/rename-field.toml"),
    ),
    (
        "restore-changed.toml",
        include_str!("../../repair-templates/restore-changed.toml"),
    ),
    (
        "restore-missing.toml",
        include_str!("../../repair-templates/restore-missing.toml"),
    ),
    (
        "revert-nested-reference.toml",
        include_str!("../../repair-templates/revert-nested-reference.toml"),
    ),
    (
        "revert-split-field.toml",
        include_str!("../../repair-templates/revert-split-field.toml"),
    ),
    (
        "set-default.toml",
        include_str!("../../repair-templates/set-default.toml"),
    ),
    (
        "units-from-cents.toml",
        include_str!("../../repair-templates/units-from-cents.toml"),
    ),
];

/// Where bundled templates say they come from.
pub const BUNDLED_DIR: &str = "repair-templates";

/// A set of templates with unique names.
#[derive(Debug, Clone, Default)]
pub struct Library {
    pub templates: Vec<Template>,
}

impl Library {
    /// The bundled templates.
    pub fn bundled() -> Result<Library, TemplateError> {
        let mut lib = Library::default();
        for (file, text) in BUNDLED {
            let path = Path::new(BUNDLED_DIR).join(file);
            lib.add(Template::parse(text, &path)?, false)?;
        }
        Ok(lib)
    }

    /// The bundled templates plus every `*.toml` in `dirs` (sorted by file name). A user
    /// template with the name of a bundled one is an error, unless it is the very same
    /// file (e.g. `--dir repair-templates` in a checkout).
    pub fn load(dirs: &[PathBuf]) -> Result<Library, TemplateError> {
        let mut lib = Library::bundled()?;
        for dir in dirs {
            let entries = std::fs::read_dir(dir).map_err(|source| TemplateError::Io {
                path: dir.clone(),
                source,
            })?;
            let mut files = Vec::new();
            for e in entries {
                let e = e.map_err(|source| TemplateError::Io {
                    path: dir.clone(),
                    source,
                })?;
                let p = e.path();
                if p.extension().is_some_and(|x| x == "toml") && p.is_file() {
                    files.push(p);
                }
            }
            files.sort();
            for p in files {
                let text = std::fs::read_to_string(&p).map_err(|source| TemplateError::Io {
                    path: p.clone(),
                    source,
                })?;
                if BUNDLED.iter().any(|(_, b)| *b == text) {
                    continue;
                }
                lib.add(Template::parse(&text, &p)?, true)?;
            }
        }
        Ok(lib)
    }

    fn add(&mut self, t: Template, user: bool) -> Result<(), TemplateError> {
        if let Some(prev) = self.get(&t.name) {
            return Err(TemplateError::Duplicate {
                path: t.source_file.clone(),
                name: t.name.clone(),
                other: prev.source_file.clone(),
                bundled: user && Library::is_bundled(prev),
            });
        }
        self.templates.push(t);
        Ok(())
    }

    pub fn get(&self, name: &str) -> Option<&Template> {
        self.templates.iter().find(|t| t.name == name)
    }

    /// The text of a template's file (compiled in for bundled templates).
    pub fn source_text(t: &Template) -> Option<String> {
        if Library::is_bundled(t) {
            let f = t.source_file.file_name()?;
            return BUNDLED
                .iter()
                .find(|(n, _)| std::ffi::OsStr::new(n) == f)
                .map(|(_, text)| (*text).to_string());
        }
        std::fs::read_to_string(&t.source_file).ok()
    }

    /// The comment block at the top of a template file, without the `#` marks.
    pub fn header_comment(text: &str) -> String {
        let mut out = Vec::new();
        for line in text.lines() {
            let l = line.trim_start();
            let Some(c) = l.strip_prefix('#') else { break };
            out.push(c.strip_prefix(' ').unwrap_or(c).trim_end());
        }
        out.join("\n").trim().to_string()
    }

    /// Whether `t` is one of the bundled templates.
    pub fn is_bundled(t: &Template) -> bool {
        t.source_file.parent() == Some(Path::new(BUNDLED_DIR))
            && BUNDLED
                .iter()
                .any(|(f, _)| t.source_file.file_name() == Some(std::ffi::OsStr::new(f)))
    }
}

#[cfg(test)]
#[path = "template_tests.rs"]
mod tests;
