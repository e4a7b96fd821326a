//! The kinds of relaxed Extended JSON values (their BSON type names) and the wrappers that
//! build dates, decimals and doubles: what both conversions and decimal arithmetic use.

use serde_json::{Map, Number, Value};

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
