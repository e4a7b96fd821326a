//! Extended JSON input: recognition and validation of type wrapper objects (shared with the BSON
//! encoder) and normalisation of parsed relaxed/canonical/legacy Extended JSON into the relaxed form.

use base64::Engine as _;
use serde_json::{Map, Value};

use super::error::{json_type, DecodeError, EjsonErrorKind};
use super::{relaxed, Decoded, MAX_DEPTH};

/// A recognised and validated type wrapper object.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Wrapper<'a> {
    Int32(i32),
    Int64(i64),
    Double(f64),
    Decimal([u8; 16]),
    Binary { subtype: u8, data: Vec<u8> },
    ObjectId([u8; 12]),
    Date(i64),
    Regex { pattern: &'a str, options: &'a str },
    DbPointer { ns: &'a str, oid: [u8; 12] },
    Code(&'a str),
    CodeWithScope(&'a str, &'a Map<String, Value>),
    Symbol(&'a str),
    Timestamp { t: u32, i: u32 },
    Undefined,
    MinKey,
    MaxKey,
}

type Kind = EjsonErrorKind;

fn wrong_type(
    wrapper: &'static str,
    member: &'static str,
    expected: &'static str,
    v: &Value,
) -> Kind {
    Kind::WrongType {
        wrapper,
        member,
        expected,
        found: json_type(v),
    }
}

fn bad_value(
    wrapper: &'static str,
    member: &'static str,
    reason: &'static str,
    len: usize,
) -> Kind {
    Kind::BadValue {
        wrapper,
        member,
        reason,
        len,
    }
}

fn shape(wrapper: &'static str, map: &Map<String, Value>) -> Kind {
    Kind::WrapperShape {
        wrapper,
        keys: map.len(),
    }
}

fn string<'a>(wrapper: &'static str, member: &'static str, v: &'a Value) -> Result<&'a str, Kind> {
    v.as_str()
        .ok_or_else(|| wrong_type(wrapper, member, "a string", v))
}

/// `m` has exactly the keys `a` and `b` (any order): their values.
fn exact2<'a>(m: &'a Map<String, Value>, a: &str, b: &str) -> Option<(&'a Value, &'a Value)> {
    if m.len() != 2 {
        return None;
    }
    Some((m.get(a)?, m.get(b)?))
}

fn no_nul(what: &'static str, s: &str) -> Result<(), Kind> {
    if s.as_bytes().contains(&0) {
        Err(Kind::NulInCString(what))
    } else {
        Ok(())
    }
}

/// Special keys that identify a type wrapper (Extended JSON v2 conversion table).
fn is_special(key: &str) -> Option<&'static str> {
    Some(match key {
        "$oid" => "$oid",
        "$symbol" => "$symbol",
        "$numberInt" => "$numberInt",
        "$numberLong" => "$numberLong",
        "$numberDouble" => "$numberDouble",
        "$numberDecimal" => "$numberDecimal",
        "$binary" => "$binary",
        "$uuid" => "$uuid",
        "$code" => "$code",
        "$scope" => "$code",
        "$timestamp" => "$timestamp",
        "$regularExpression" => "$regularExpression",
        "$dbPointer" => "$dbPointer",
        "$date" => "$date",
        "$minKey" => "$minKey",
        "$maxKey" => "$maxKey",
        "$undefined" => "$undefined",
        _ => return None,
    })
}

/// Classify a (non top-level) JSON object: `Ok(None)` for a plain document (including DBRefs,
/// unknown `$`-keys and the `$regex`/`$type` query operators), `Ok(Some(_))` for a valid type
/// wrapper, `Err` for an object that contains a wrapper's special key but is malformed.
pub(crate) fn classify(map: &Map<String, Value>) -> Result<Option<Wrapper<'_>>, Kind> {
    let mut special = None;
    let mut has_regex = false;
    for k in map.keys() {
        if !k.starts_with('$') {
            continue;
        }
        if let Some(s) = is_special(k) {
            special = Some(s);
            break;
        }
        has_regex |= k == "$regex";
    }
    let Some(special) = special else {
        // Legacy `{"$regex": <string>, "$options": <string>}`; anything else with `$regex` is
        // the query operator and stays a plain object.
        if has_regex {
            if let Some((Value::String(pattern), Value::String(options))) =
                exact2(map, "$regex", "$options")
            {
                no_nul("regex pattern", pattern)?;
                no_nul("regex options", options)?;
                return Ok(Some(Wrapper::Regex { pattern, options }));
            }
        }
        return Ok(None);
    };
    match special {
        "$binary" => return classify_binary(map).map(Some),
        "$code" => return classify_code(map).map(Some),
        _ => {}
    }
    let (Some(v), 1) = (map.get(special), map.len()) else {
        return Err(shape(special, map));
    };
    single_member(special, v, map).map(Some)
}

/// A wrapper with exactly one member, `special`, whose value is `v`.
fn single_member<'a>(
    special: &'static str,
    v: &'a Value,
    map: &Map<String, Value>,
) -> Result<Wrapper<'a>, Kind> {
    let w = special;
    Ok(match special {
        "$oid" | "$symbol" | "$numberInt" | "$numberLong" | "$numberDouble" | "$numberDecimal"
        | "$uuid" => string_wrapper(w, string(w, w, v)?)?,
        "$timestamp" => timestamp(v)?,
        "$regularExpression" => regular_expression(v)?,
        "$dbPointer" => db_pointer(v)?,
        "$date" => Wrapper::Date(date(v)?),
        "$minKey" | "$maxKey" => {
            if v.as_i64() != Some(1) {
                return Err(wrong_type(w, w, "the integer 1", v));
            }
            if special == "$minKey" {
                Wrapper::MinKey
            } else {
                Wrapper::MaxKey
            }
        }
        "$undefined" => match v {
            Value::Bool(true) => Wrapper::Undefined,
            _ => return Err(wrong_type(w, w, "true", v)),
        },
        _ => return Err(shape(special, map)),
    })
}

/// The wrappers whose value is one string: `$oid`, `$symbol`, the number types, `$uuid`.
fn string_wrapper<'a>(w: &'static str, s: &'a str) -> Result<Wrapper<'a>, Kind> {
    let bad = |what| bad_value(w, w, what, s.len());
    Ok(match w {
        "$oid" => {
            Wrapper::ObjectId(relaxed::parse_hex(s).ok_or_else(|| bad("expected 24 hex digits"))?)
        }
        "$symbol" => Wrapper::Symbol(s),
        "$numberInt" => {
            Wrapper::Int32(relaxed::parse_int(s).ok_or_else(|| bad("not a 32-bit integer"))?)
        }
        "$numberLong" => {
            Wrapper::Int64(relaxed::parse_int(s).ok_or_else(|| bad("not a 64-bit integer"))?)
        }
        "$numberDouble" => {
            Wrapper::Double(relaxed::parse_double(s).ok_or_else(|| bad("not a double"))?)
        }
        "$numberDecimal" => Wrapper::Decimal(
            relaxed::parse_decimal(s)
                .ok_or_else(|| bad("not an exactly representable decimal128"))?,
        ),
        _ => Wrapper::Binary {
            subtype: 4,
            data: relaxed::parse_uuid(s)
                .ok_or_else(|| bad("not a UUID"))?
                .to_vec(),
        },
    })
}

/// `{"$timestamp": {"t": u32, "i": u32}}`.
fn timestamp(v: &Value) -> Result<Wrapper<'_>, Kind> {
    const W: &str = "$timestamp";
    let inner = v
        .as_object()
        .ok_or_else(|| wrong_type(W, W, "an object", v))?;
    let (t, i) = exact2(inner, "t", "i").ok_or_else(|| shape(W, inner))?;
    let u32_of = |member, x: &Value| {
        x.as_u64()
            .and_then(|n| u32::try_from(n).ok())
            .ok_or_else(|| wrong_type(W, member, "an unsigned 32-bit integer", x))
    };
    Ok(Wrapper::Timestamp {
        t: u32_of("t", t)?,
        i: u32_of("i", i)?,
    })
}

/// `{"$regularExpression": {"pattern": …, "options": …}}`.
fn regular_expression(v: &Value) -> Result<Wrapper<'_>, Kind> {
    const W: &str = "$regularExpression";
    let inner = v
        .as_object()
        .ok_or_else(|| wrong_type(W, W, "an object", v))?;
    let (p, o) = exact2(inner, "pattern", "options").ok_or_else(|| shape(W, inner))?;
    let pattern = string(W, "pattern", p)?;
    let options = string(W, "options", o)?;
    no_nul("regex pattern", pattern)?;
    no_nul("regex options", options)?;
    Ok(Wrapper::Regex { pattern, options })
}

/// `{"$dbPointer": {"$ref": …, "$id": {"$oid": …}}}`.
fn db_pointer(v: &Value) -> Result<Wrapper<'_>, Kind> {
    const W: &str = "$dbPointer";
    let inner = v
        .as_object()
        .ok_or_else(|| wrong_type(W, W, "an object", v))?;
    let (r, id) = exact2(inner, "$ref", "$id").ok_or_else(|| shape(W, inner))?;
    let ns = string(W, "$ref", r)?;
    let oid = match id.as_object().map(classify) {
        Some(Ok(Some(Wrapper::ObjectId(oid)))) => oid,
        Some(Err(e)) => return Err(e),
        _ => return Err(wrong_type(W, "$id", "an ObjectId", id)),
    };
    Ok(Wrapper::DbPointer { ns, oid })
}

/// The milliseconds of a `$date`: an ISO-8601 string, `{"$numberLong": …}` or an integer.
fn date(v: &Value) -> Result<i64, Kind> {
    const W: &str = "$date";
    match v {
        Value::String(s) => relaxed::parse_iso(s)
            .ok_or_else(|| bad_value(W, W, "not an ISO-8601 date-time", s.len())),
        Value::Object(inner) => match (inner.get("$numberLong"), inner.len()) {
            (Some(Value::String(s)), 1) => relaxed::parse_int(s)
                .ok_or_else(|| bad_value(W, "$numberLong", "not a 64-bit integer", s.len())),
            (Some(other), 1) => Err(wrong_type(W, "$numberLong", "a string", other)),
            _ => Err(shape("$date.$numberLong", inner)),
        },
        Value::Number(n) => n
            .as_i64()
            .ok_or_else(|| wrong_type(W, W, "a 64-bit integer", v)),
        _ => Err(wrong_type(W, W, "a string, object or integer", v)),
    }
}

fn classify_binary(map: &Map<String, Value>) -> Result<Wrapper<'_>, Kind> {
    const W: &str = "$binary";
    let decode = |member, s: &str| {
        base64::engine::general_purpose::STANDARD
            .decode(s)
            .map_err(|_| bad_value(W, member, "not padded standard base64", s.len()))
    };
    let subtype = |member, v: &Value| {
        let s = string(W, member, v)?;
        relaxed::parse_subtype(s).ok_or_else(|| bad_value(W, member, "not 1-2 hex digits", s.len()))
    };
    let v = map.get(W).ok_or_else(|| shape(W, map))?;
    match map.len() {
        1 => {
            let inner = v
                .as_object()
                .ok_or_else(|| wrong_type(W, W, "an object", v))?;
            let (b, st) = exact2(inner, "base64", "subType").ok_or_else(|| shape(W, inner))?;
            let subtype = subtype("subType", st)?;
            let data = decode("base64", string(W, "base64", b)?)?;
            Ok(Wrapper::Binary { subtype, data })
        }
        2 => {
            // Legacy `{"$binary": <base64>, "$type": <hex>}`.
            let t = map.get("$type").ok_or_else(|| shape(W, map))?;
            let data = decode(W, string(W, W, v)?)?;
            let subtype = subtype("$type", t)?;
            Ok(Wrapper::Binary { subtype, data })
        }
        _ => Err(shape(W, map)),
    }
}

fn classify_code(map: &Map<String, Value>) -> Result<Wrapper<'_>, Kind> {
    const W: &str = "$code";
    let code = map.get(W).ok_or_else(|| shape(W, map))?;
    let code = string(W, W, code)?;
    match (map.len(), map.get("$scope")) {
        (1, None) => Ok(Wrapper::Code(code)),
        (2, Some(scope)) => {
            let scope = scope
                .as_object()
                .ok_or_else(|| wrong_type(W, "$scope", "an object", scope))?;
            Ok(Wrapper::CodeWithScope(code, scope))
        }
        _ => Err(shape(W, map)),
    }
}

impl Wrapper<'_> {
    /// The relaxed form (code-with-scope: scope taken as-is, callers normalise it first).
    pub(crate) fn to_relaxed(&self) -> Value {
        match self {
            Wrapper::Int32(i) => relaxed::int(i64::from(*i)),
            Wrapper::Int64(i) => relaxed::int(*i),
            Wrapper::Double(x) => relaxed::double(*x),
            Wrapper::Decimal(b) => relaxed::decimal(*b),
            Wrapper::Binary { subtype, data } => relaxed::binary(*subtype, data),
            Wrapper::ObjectId(oid) => relaxed::object_id(oid),
            Wrapper::Date(ms) => relaxed::date(*ms),
            Wrapper::Regex { pattern, options } => relaxed::regex(pattern, options),
            Wrapper::DbPointer { ns, oid } => relaxed::db_pointer(ns, oid),
            Wrapper::Code(c) => relaxed::code(c),
            Wrapper::CodeWithScope(c, scope) => relaxed::code_with_scope(c, (*scope).clone()),
            Wrapper::Symbol(s) => relaxed::symbol(s),
            Wrapper::Timestamp { t, i } => relaxed::timestamp(*t, *i),
            Wrapper::Undefined => relaxed::undefined(),
            Wrapper::MinKey => relaxed::min_key(),
            Wrapper::MaxKey => relaxed::max_key(),
        }
    }
}

/// Normalise parsed relaxed or canonical Extended JSON (plus the legacy `$binary`/`$type`,
/// `$regex`/`$options`, `$uuid` and integer `$date` forms) into the relaxed form produced by
/// [`from_bson`](super::from_bson). The top level must be an object; it is a document, never a
/// type wrapper.
pub fn from_ejson(v: Value) -> Result<Decoded, DecodeError> {
    let mut v = v;
    let Value::Object(map) = &mut v else {
        return Err(DecodeError::ejson(Kind::NotAnObject(json_type(&v))));
    };
    let mut max = 1;
    normalise_document(map, 1, &mut max)?;
    Ok(Decoded {
        value: v,
        depth: max,
    })
}

fn normalise_document(
    map: &mut Map<String, Value>,
    depth: usize,
    max: &mut usize,
) -> Result<(), DecodeError> {
    *max = (*max).max(depth);
    for (k, v) in map.iter_mut() {
        if k.as_bytes().contains(&0) {
            return Err(DecodeError::ejson(Kind::NulInKey).within(k));
        }
        normalise_value(v, depth, max).map_err(|e| e.within(k))?;
    }
    Ok(())
}

fn nested(depth: usize) -> Result<usize, DecodeError> {
    if depth >= MAX_DEPTH {
        Err(DecodeError::ejson(Kind::TooDeep))
    } else {
        Ok(depth + 1)
    }
}

enum Action {
    Plain,
    /// A type wrapper that is already in its relaxed form.
    Keep,
    Replace(Value),
    CodeWithScope,
}

/// Whether the wrapper object `map` (classified as `w`) is already exactly what
/// `w.to_relaxed()` would build, so it can stay as it is (saves rebuilding the two most
/// common wrappers, `$oid` and `$date`, in relaxed input such as mongoexport's).
fn already_relaxed(map: &Map<String, Value>, w: &Wrapper<'_>) -> bool {
    // `classify` accepted these with exactly one key, the special one.
    match (w, map.get("$oid"), map.get("$date")) {
        (Wrapper::ObjectId(_), Some(Value::String(s)), _) => {
            // 24 hex digits (checked by `classify`); relaxed form is lower case.
            !s.bytes().any(|c| c.is_ascii_uppercase())
        }
        (Wrapper::Date(ms), _, Some(Value::String(s))) => relaxed::is_iso_of(s, *ms),
        _ => false,
    }
}

/// Normalise `v`, a value inside a document at nesting level `depth`.
fn normalise_value(v: &mut Value, depth: usize, max: &mut usize) -> Result<(), DecodeError> {
    match v {
        Value::Object(map) => {
            let action = match classify(map).map_err(DecodeError::ejson)? {
                None => Action::Plain,
                Some(Wrapper::CodeWithScope(..)) => Action::CodeWithScope,
                Some(w) if already_relaxed(map, &w) => Action::Keep,
                Some(w) => Action::Replace(w.to_relaxed()),
            };
            match action {
                Action::Keep => {}
                Action::Replace(new) => *v = new,
                Action::Plain => normalise_document(map, nested(depth)?, max)?,
                Action::CodeWithScope => {
                    let inner = nested(depth)?;
                    let code = map.get_mut("$code").map(Value::take);
                    let scope = map.get_mut("$scope").map(Value::take);
                    let (Some(Value::String(code)), Some(Value::Object(mut scope))) = (code, scope)
                    else {
                        return Err(DecodeError::ejson(Kind::WrapperShape {
                            wrapper: "$code",
                            keys: map.len(),
                        }));
                    };
                    normalise_document(&mut scope, inner, max).map_err(|e| e.within(&"$scope"))?;
                    *v = relaxed::code_with_scope_owned(code, scope);
                }
            }
        }
        Value::Array(items) => {
            let inner = nested(depth)?;
            *max = (*max).max(inner);
            for (i, item) in items.iter_mut().enumerate() {
                normalise_value(item, inner, max).map_err(|e| e.within(&i))?;
            }
        }
        Value::Number(n) => {
            if let (None, Some(u)) = (n.as_i64(), n.as_u64()) {
                // Integer beyond i64: the spec says interpret it as a double.
                *v = relaxed::double(u as f64);
            }
        }
        Value::Null | Value::Bool(_) | Value::String(_) => {}
    }
    Ok(())
}
