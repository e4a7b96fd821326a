//! Value kinds and conversions between them (`convert`, `join`), on relaxed Extended JSON.

use serde_json::{Map, Number, Value};

use super::decimal::{parse_number_text, Dec, Num};
use super::{Rounding, TypeName};

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

pub(super) fn wrapper(m: &Map<String, Value>) -> Option<(&str, &Value)> {
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

pub(super) fn date_value(ms: i64) -> Result<Value, String> {
    let mut inner = Map::new();
    inner.insert("$numberLong".into(), Value::String(ms.to_string()));
    let mut m = Map::new();
    m.insert("$date".into(), Value::Object(inner));
    normalise(Value::Object(m))
}

pub(super) fn date_ms(v: &Value) -> Option<i64> {
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

pub(super) fn date_text(ms: i64) -> Option<String> {
    let t = time::OffsetDateTime::from_unix_timestamp_nanos(i128::from(ms) * 1_000_000).ok()?;
    let fmt = time::macros::format_description!(
        "[year]-[month]-[day]T[hour]:[minute]:[second].[subsecond digits:3]Z"
    );
    t.format(&fmt).ok()
}

pub(super) fn decimal_value(s: &str) -> Result<Value, String> {
    let mut m = Map::new();
    m.insert("$numberDecimal".into(), Value::String(s.to_string()));
    normalise(Value::Object(m))
}

pub(super) fn double_value(x: f64) -> Result<Value, String> {
    Number::from_f64(x)
        .map(Value::Number)
        .ok_or_else(|| "the result is not a finite double".to_string())
}

/// `convert`: the value `v` as type `to`.
pub(super) fn convert(v: &Value, to: TypeName, round: Rounding) -> Result<Value, String> {
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

/// The text of a value for `join`.
pub(super) fn join_text(v: &Value) -> Result<String, String> {
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
