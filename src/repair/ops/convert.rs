//! Value kinds and conversions between them (`convert`, `join`), on relaxed Extended JSON.

use serde_json::{Map, Value};

use super::decimal::{parse_number_text, Dec, Num};
use super::kinds::{date_ms, date_text, kind, normalise, wrapper};
use super::{Rounding, TypeName};

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
