//! The template file format as written (TOML), before checking, and parameter references.

use std::path::Path;

use serde::Deserialize;
use serde_json::{Map, Value};

use super::{
    parse_step, step_is_literal, validate_step, Cx, Param, ParamType, Selection, Slot, Template,
    TemplateError,
};
use crate::repair::ops::{self, check_collection_name, check_path, Arg, QuarantineTarget, Step};

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
pub(super) struct ParamConfig {
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
        self.check_names().map_err(invalid)?;
        let params = self.params().map_err(invalid)?;
        let cx = Cx { params: &params };
        let select = Selection::parse(&self.select).map_err(invalid)?;
        if let Some(p) = select.arg_ref() {
            let slot = if matches!(select, Selection::Orphan(_)) {
                Slot::Field
            } else {
                Slot::Str
            };
            cx.check_ref(p, "select", slot).map_err(invalid)?;
        }
        let filter = self.filter(&cx).map_err(invalid)?;
        let steps = self.steps(&cx, path)?;
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

    /// The template's name, description and collection.
    fn check_names(&self) -> Result<(), String> {
        if self.name.is_empty()
            || !self
                .name
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        {
            return Err(format!(
                "invalid template name {:?} (letters, digits, - and _)",
                self.name
            ));
        }
        if self.description.trim().is_empty() {
            return Err("`description` is empty".into());
        }
        if let Some(c) = &self.collection {
            check_collection_name(c).map_err(|m| format!("`collection`: {m}"))?;
        }
        Ok(())
    }

    /// The declared parameters, their types and checked defaults.
    fn params(&self) -> Result<Vec<Param>, String> {
        let mut params = Vec::new();
        for (name, raw) in &self.params {
            if param_ref(&format!("{{{{{name}}}}}")).is_none() {
                return Err(format!(
                    "parameter {name:?}: invalid name (letters, digits and _)"
                ));
            }
            let pc: ParamConfig = raw
                .clone()
                .try_into()
                .map_err(|e: toml::de::Error| format!("parameter `{name}`: {}", e.message()))?;
            let kind =
                ParamType::parse(&pc.kind).map_err(|m| format!("parameter `{name}`: {m}"))?;
            let default = match pc.default {
                None => None,
                Some(d) => Some(
                    toml_to_json(&d)
                        .and_then(|v| kind.check_value(v))
                        .map_err(|m| format!("parameter `{name}`: {m}"))?,
                ),
            };
            params.push(Param {
                name: name.clone(),
                kind,
                default,
                description: pc.description,
            });
        }
        Ok(params)
    }

    /// The filter as (dotted path, literal or `{{param}}` value) pairs.
    fn filter(&self, cx: &Cx<'_>) -> Result<Vec<(String, Value)>, String> {
        let mut filter = Vec::new();
        let fj = toml_to_json(&toml::Value::Table(self.filter.clone()))
            .map_err(|m| format!("filter: {m}"))?;
        if let Value::Object(m) = fj {
            flatten_filter("", m, &mut filter);
        }
        for (p, v) in &mut filter {
            check_path(p).map_err(|m| format!("filter: {m}"))?;
            let a = cx
                .value_arg(&format!("filter `{p}`"), v.clone())
                .map_err(|m| format!("filter: {m}"))?;
            *v = match a {
                Arg::Lit(v) => v,
                Arg::Param(n) => Value::String(format!("{{{{{n}}}}}")),
            };
        }
        Ok(filter)
    }

    /// The steps, parsed in order; nothing may follow a step that ends the document's
    /// processing.
    fn steps(&self, cx: &Cx<'_>, path: &Path) -> Result<Vec<Step>, TemplateError> {
        if self.steps.is_empty() {
            return Err(TemplateError::Invalid {
                path: path.to_path_buf(),
                message: "no [[steps]] declared".into(),
            });
        }
        let default_quarantine = match &self.collection {
            Some(c) => QuarantineTarget::Collection(format!("{c}_quarantine")),
            None => QuarantineTarget::DefaultCollection,
        };
        let mut steps = Vec::with_capacity(self.steps.len());
        for (i, table) in self.steps.iter().enumerate() {
            let op = table.get("op").and_then(toml::Value::as_str).unwrap_or("");
            let step_err = |message: String| TemplateError::Step {
                path: path.to_path_buf(),
                step: i + 1,
                op: if op.is_empty() { "?" } else { op }.to_string(),
                message,
            };
            if let Some(prev) = steps.last().filter(|s: &&Step| s.is_terminal()) {
                return Err(step_err(format!(
                    "comes after `{}`, which ends the document's processing",
                    prev.op()
                )));
            }
            let step = parse_step(table, cx, &default_quarantine).map_err(step_err)?;
            if step_is_literal(&step) {
                validate_step(&step).map_err(step_err)?;
            }
            steps.push(step);
        }
        Ok(steps)
    }
}

pub(super) fn flatten_filter(prefix: &str, m: Map<String, Value>, out: &mut Vec<(String, Value)>) {
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
                flatten_filter(&path, inner, out);
            }
            other => out.push((path, other)),
        }
    }
}

/// TOML → relaxed Extended JSON (datetimes become `$date`).
pub(super) fn toml_to_json(v: &toml::Value) -> Result<Value, String> {
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
pub(super) fn param_ref(s: &str) -> Option<&str> {
    let name = s.strip_prefix("{{")?.strip_suffix("}}")?;
    (!name.is_empty() && name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_'))
        .then_some(name)
}

/// Every parameter referenced anywhere inside `v`; an error for `{{` / `}}` that is not a
/// whole-string reference.
pub(super) fn collect_refs<'a>(v: &'a Value, out: &mut Vec<&'a str>) -> Result<(), String> {
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
