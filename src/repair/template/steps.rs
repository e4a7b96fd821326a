//! Steps: parsing a template's `[[steps]]` into typed [`Step`]s, checking them, and resolving
//! parameter references when a template is bound.

use std::collections::BTreeSet;

use serde_json::{Map, Value};

use super::{collect_refs, param_ref, toml_to_json, Param, ParamType};
use crate::contract::{IndexKey, IndexSpec};
use crate::repair::ops::{
    self, check_path, touches_id, Arg, Expr, QuarantineTarget, Rounding, Step, TypeName,
};

/// What a step argument holds, for checking parameter types against it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Slot {
    Field,
    Str,
    Number,
    Bool,
    Any,
    Json,
}

impl Slot {
    pub(super) fn accepts(self, t: ParamType) -> bool {
        match self {
            Slot::Field => matches!(t, ParamType::Field | ParamType::String),
            Slot::Str => t == ParamType::String,
            Slot::Number => matches!(t, ParamType::Number | ParamType::Integer),
            Slot::Bool => t == ParamType::Boolean,
            Slot::Any => true,
            Slot::Json => t == ParamType::Json,
        }
    }

    pub(super) fn wants(self) -> &'static str {
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
pub(super) struct Cx<'a> {
    pub(super) params: &'a [Param],
}

impl Cx<'_> {
    pub(super) fn check_ref(&self, name: &str, arg: &str, slot: Slot) -> Result<(), String> {
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

    pub(super) fn arg<T>(
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
    pub(super) fn value_arg(&self, name: &str, v: Value) -> Result<Arg<Value>, String> {
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

pub(super) fn conv_path(v: &Value) -> Result<String, String> {
    let s = v
        .as_str()
        .ok_or_else(|| format!("expected a field path string, found {}", ops::kind(v)))?;
    check_path(s)?;
    Ok(s.to_string())
}

pub(super) fn conv_target(v: &Value) -> Result<String, String> {
    let s = conv_path(v)?;
    if touches_id(&s) {
        return Err("`_id` cannot be changed by a repair step".into());
    }
    Ok(s)
}

pub(super) fn conv_key(v: &Value) -> Result<String, String> {
    let s = conv_target(v)?;
    if s.contains('.') {
        return Err(format!(
            "{s:?} must be a field name of the sub-document, not a path"
        ));
    }
    Ok(s)
}

pub(super) fn conv_str(v: &Value) -> Result<String, String> {
    v.as_str()
        .map(str::to_string)
        .ok_or_else(|| format!("expected a string, found {}", ops::kind(v)))
}

pub(super) fn conv_nonempty(v: &Value) -> Result<String, String> {
    let s = conv_str(v)?;
    if s.is_empty() {
        return Err("must not be empty".into());
    }
    Ok(s)
}

pub(super) fn conv_f64(v: &Value) -> Result<f64, String> {
    match v {
        Value::Number(n) => n
            .as_f64()
            .filter(|x| x.is_finite())
            .ok_or_else(|| "expected a finite number".into()),
        other => Err(format!("expected a number, found {}", ops::kind(other))),
    }
}

pub(super) fn conv_bool(v: &Value) -> Result<bool, String> {
    v.as_bool()
        .ok_or_else(|| format!("expected true or false, found {}", ops::kind(v)))
}

pub(super) fn conv_type(v: &Value) -> Result<TypeName, String> {
    TypeName::parse(&conv_str(v)?)
}

pub(super) fn conv_num_type(v: &Value) -> Result<TypeName, String> {
    let t = conv_type(v)?;
    if !t.is_numeric() {
        return Err(format!(
            "expected int, double or decimal, found {:?}",
            t.as_str()
        ));
    }
    Ok(t)
}

pub(super) fn conv_round(v: &Value) -> Result<Rounding, String> {
    Rounding::parse(&conv_str(v)?)
}

pub(super) fn conv_quarantine(v: &Value) -> Result<QuarantineTarget, String> {
    QuarantineTarget::parse(&conv_str(v)?)
}

pub(super) fn conv_expr(v: &Value) -> Result<Expr, String> {
    Expr::parse(&conv_str(v)?)
}

pub(super) fn conv_index_key(v: &Value) -> Result<IndexKey, String> {
    pub(super) fn flatten(prefix: &str, m: &Map<String, Value>, out: &mut Map<String, Value>) {
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

pub(super) fn conv_index_name(v: &Value) -> Result<Option<String>, String> {
    let s = conv_str(v)?;
    Ok((!s.is_empty()).then_some(s))
}

/// The arguments of one step table.
pub(super) struct StepArgs<'a> {
    map: Map<String, Value>,
    cx: &'a Cx<'a>,
}

impl StepArgs<'_> {
    pub(super) fn req<T>(
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

    pub(super) fn opt<T>(
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

    pub(super) fn value(&mut self, name: &str) -> Result<Arg<Value>, String> {
        let v = self
            .map
            .shift_remove(name)
            .ok_or_else(|| format!("missing required argument `{name}`"))?;
        self.cx.value_arg(name, v)
    }

    pub(super) fn list(
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
pub(super) fn allowed_args(op: &str) -> Option<&'static [&'static str]> {
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

pub(super) const OPS: &str = "set, unset, rename, copy, default, convert, scale, compute, join, split, move_in, move_out, delete, quarantine, restore_from_baseline, create_index, drop_index";

pub(super) fn parse_step(
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
pub(super) fn step_is_literal(step: &Step) -> bool {
    resolve_step(step, &[]).is_ok()
}

/// Checks between arguments of a fully resolved step.
pub(super) fn validate_step(step: &Step) -> Result<(), String> {
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

pub(super) fn lookup<'p>(params: &'p [(String, Value)], name: &str) -> Result<&'p Value, String> {
    params
        .iter()
        .find(|(n, _)| n == name)
        .map(|(_, v)| v)
        .ok_or_else(|| format!("parameter `{name}` is not bound"))
}

pub(super) fn res<T: Clone>(
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
pub(super) fn substitute(v: &Value, params: &[(String, Value)]) -> Result<Value, String> {
    pub(super) fn walk(v: &Value, params: &[(String, Value)]) -> Result<Value, String> {
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

pub(super) fn res_value(
    a: &Arg<Value>,
    params: &[(String, Value)],
    name: &str,
) -> Result<Arg<Value>, String> {
    match a {
        Arg::Param(p) => Ok(Arg::Lit(lookup(params, p)?.clone())),
        Arg::Lit(v) => substitute(v, params)
            .map(Arg::Lit)
            .map_err(|m| format!("`{name}`: {m}")),
    }
}

pub(super) fn res_list(
    a: &[Arg<String>],
    params: &[(String, Value)],
    name: &str,
    conv: impl Fn(&Value) -> Result<String, String> + Copy,
) -> Result<Vec<Arg<String>>, String> {
    a.iter().map(|x| res(x, params, name, conv)).collect()
}

/// The step with every parameter replaced by its value (each checked like a literal).
pub(super) fn resolve_step(step: &Step, p: &[(String, Value)]) -> Result<Step, String> {
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
