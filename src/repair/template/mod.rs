//! Repair templates: TOML files read into a [`TemplateConfig`], checked and built into a
//! runtime [`Template`], bound to parameter values ([`Bound`]) and applied to documents.
//!
//! Everything that can be wrong with a template is found when it is loaded (unknown op or
//! argument, wrong type, reference to an undeclared parameter, bad selection, …) and reported
//! as a [`TemplateError`] naming the file and the step. Parameters are referenced in any value
//! position as the exact string `"{{name}}"` and substituted as typed values, never spliced
//! into text: `"{{x}}"` inside a longer string is an error.

use std::path::{Path, PathBuf};

use serde_json::Value;

use super::ops::{self, apply_steps, check_path, Arg, CollectionAction, Outcome, Step, StepError};

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

mod config;
mod library;
mod selection;
mod steps;

use super::ops::spec::Slot;
pub use config::TemplateConfig;
use config::{collect_refs, param_ref, toml_to_json};
pub use library::{Library, BUNDLED_DIR};
pub use selection::Selection;
use steps::{lookup, parse_step, resolve_step, step_is_literal, substitute, validate_step, Cx};

#[cfg(test)]
mod tests;
