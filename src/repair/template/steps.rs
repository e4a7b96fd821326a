//! Steps: parsing a template's `[[steps]]` into typed [`Step`]s, checking them, and resolving
//! parameter references when a template is bound.

use serde_json::{Map, Value};

use super::{collect_refs, param_ref, toml_to_json, Param, ParamType};
use crate::repair::ops::spec::{ArgSpec, Given, Kind, Need, OpSpec, Slot, Val};
use crate::repair::ops::{self, Arg, QuarantineTarget, Step, OPS};

/// Whether a parameter of type `t` may fill an argument of this slot.
pub(super) fn accepts(slot: Slot, t: ParamType) -> bool {
    match slot {
        Slot::Field => matches!(t, ParamType::Field | ParamType::String),
        Slot::Str => t == ParamType::String,
        Slot::Number => matches!(t, ParamType::Number | ParamType::Integer),
        Slot::Bool => t == ParamType::Boolean,
        Slot::Any => true,
        Slot::Json => t == ParamType::Json,
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
        if !accepts(slot, p.kind) {
            return Err(format!(
                "`{arg}` needs {}, but parameter `{name}` is a {}",
                slot.wants(),
                p.kind.as_str()
            ));
        }
        Ok(())
    }

    /// A literal (checked by `kind`) or a parameter reference of a fitting type.
    pub(super) fn arg(&self, name: &str, v: Value, kind: Kind) -> Result<Arg<Val>, String> {
        if kind == Kind::Json {
            return Ok(match self.value_arg(name, v)? {
                Arg::Lit(v) => Arg::Lit(Val::Json(v)),
                Arg::Param(p) => Arg::Param(p),
            });
        }
        if let Some(p) = v.as_str().and_then(param_ref) {
            self.check_ref(p, name, kind.slot())?;
            return Ok(Arg::Param(p.to_string()));
        }
        let mut refs = Vec::new();
        collect_refs(&v, &mut refs).map_err(|m| format!("`{name}`: {m}"))?;
        if !refs.is_empty() {
            return Err(format!(
                "`{name}`: a parameter reference must be the whole value here"
            ));
        }
        kind.convert(&v)
            .map(Arg::Lit)
            .map_err(|m| format!("`{name}`: {m}"))
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

/// The names of every op, for messages.
pub(super) fn op_names() -> String {
    let names: Vec<&str> = OPS.iter().map(|o| o.name).collect();
    names.join(", ")
}

/// Reads one argument from a step table (removing it), as its [`ArgSpec`] says.
fn parse_arg(
    map: &mut Map<String, Value>,
    a: &ArgSpec,
    cx: &Cx<'_>,
    default_quarantine: &QuarantineTarget,
) -> Result<Given, String> {
    let name = a.name;
    let missing = || format!("missing required argument `{name}`");
    let Some(v) = map.shift_remove(name) else {
        return Ok(match a.need {
            Need::Required => return Err(missing()),
            Need::List { required: true } => return Err(missing()),
            Need::Optional => Given::Absent,
            Need::List { required: false } => Given::List(Vec::new()),
            Need::Default(d) => Given::One(Arg::Lit(
                a.kind
                    .convert(&d.to_json())
                    .map_err(|m| format!("`{name}`: {m}"))?,
            )),
            Need::DefaultQuarantine => {
                Given::One(Arg::Lit(Val::Quarantine(default_quarantine.clone())))
            }
        });
    };
    let Need::List { required } = a.need else {
        return cx.arg(name, v, a.kind).map(Given::One);
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
        .map(|(i, x)| cx.arg(&format!("{name}[{i}]"), x, a.kind))
        .collect::<Result<_, _>>()
        .map(Given::List)
}

pub(super) fn parse_step(
    table: &toml::Table,
    cx: &Cx<'_>,
    default_quarantine: &QuarantineTarget,
) -> Result<Step, String> {
    let op = match table.get("op") {
        None => return Err(format!("missing `op` (one of {})", op_names())),
        Some(toml::Value::String(s)) => s.as_str(),
        Some(_) => return Err("`op` must be a string".into()),
    };
    let spec = OPS
        .iter()
        .find(|o| o.name == op)
        .ok_or_else(|| format!("unknown op {op:?} (expected one of {})", op_names()))?;
    let mut map = Map::new();
    for (k, v) in table {
        if k == "op" {
            continue;
        }
        if !spec.args.iter().any(|a| a.name == k) {
            let allowed: Vec<&str> = spec.args.iter().map(|a| a.name).collect();
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
    let given = spec
        .args
        .iter()
        .map(|a| parse_arg(&mut map, a, cx, default_quarantine))
        .collect::<Result<_, _>>()?;
    Ok(build(spec, given))
}

/// The step of `spec` with these arguments, which its own rows produced.
fn build(spec: &OpSpec, given: Vec<Given>) -> Step {
    Step::build(spec, given).expect("arguments read by the op's own row fit its step")
}

/// Whether no argument of the step is a parameter reference (then it is checked at load).
pub(super) fn step_is_literal(step: &Step) -> bool {
    resolve_step(step, &[]).is_ok()
}

/// Checks between arguments of a fully resolved step.
pub(super) fn validate_step(step: &Step) -> Result<(), String> {
    step.check()
}

pub(super) fn lookup<'p>(params: &'p [(String, Value)], name: &str) -> Result<&'p Value, String> {
    params
        .iter()
        .find(|(n, _)| n == name)
        .map(|(_, v)| v)
        .ok_or_else(|| format!("parameter `{name}` is not bound"))
}

/// One argument with its parameter replaced by its value (checked like a literal).
fn res(a: &Arg<Val>, kind: Kind, p: &[(String, Value)], name: &str) -> Result<Arg<Val>, String> {
    match a {
        Arg::Param(r) if kind == Kind::Json => Ok(Arg::Lit(Val::Json(lookup(p, r)?.clone()))),
        Arg::Param(r) => {
            let v = lookup(p, r)?;
            kind.convert(v)
                .map(Arg::Lit)
                .map_err(|m| format!("`{name}` = parameter `{r}`: {m}"))
        }
        Arg::Lit(Val::Json(v)) => substitute(v, p)
            .map(|v| Arg::Lit(Val::Json(v)))
            .map_err(|m| format!("`{name}`: {m}")),
        Arg::Lit(v) => Ok(Arg::Lit(v.clone())),
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

/// The step with every parameter replaced by its value (each checked like a literal).
pub(super) fn resolve_step(step: &Step, p: &[(String, Value)]) -> Result<Step, String> {
    let spec = step.spec();
    let mut given = step.given();
    for (a, g) in spec.args.iter().zip(&mut given) {
        match g {
            Given::One(x) => *x = res(x, a.kind, p, a.name)?,
            Given::List(items) => {
                for x in items {
                    *x = res(x, a.kind, p, a.name)?;
                }
            }
            Given::Absent => {}
        }
    }
    Ok(build(spec, given))
}
