//! Parsing one JSON text (an export line or array element) into a `serde_json::Value`,
//! exactly as `serde_json::from_slice` does except that an object with a repeated key is
//! an error instead of silently keeping the last value: the same document as a `.bson`
//! record is unreadable ([`BsonErrorKind::DuplicateKey`](super::BsonErrorKind)), so it is
//! here too ([`EjsonErrorKind::DuplicateKey`], with the path of the repeated key).
//!
//! The check costs nothing measurable: a repeated key is seen when an insert does not grow
//! the object (serde_json's own visitor inserts the same way). Only then is the text parsed
//! a second time, keeping each key until it is inserted, to name the repeated key's path.

use std::cell::RefCell;
use std::fmt;

use serde::de::{DeserializeSeed, Deserializer, MapAccess, SeqAccess, Visitor};
use serde_json::map::Entry;
use serde_json::{Map, Number, Value};

use super::error::{DecodeError, EjsonErrorKind};
use super::{from_ejson, Decoded};

/// Why a JSON text is not a document.
#[derive(Debug, thiserror::Error)]
pub enum JsonError {
    /// Not JSON at all (or trailing characters after the value).
    #[error("not valid JSON: {0}")]
    Syntax(serde_json::Error),
    /// JSON, but not a valid (Extended JSON) document: a repeated key, a malformed type
    /// wrapper, a top level that is not an object, …
    #[error(transparent)]
    Decode(#[from] DecodeError),
}

/// Parses `bytes` as one JSON value; a repeated key in any object is an error.
pub fn parse_json(bytes: &[u8]) -> Result<Value, JsonError> {
    match parse::<false>(bytes) {
        (Ok(v), _) => Ok(v),
        (Err(e), None) => Err(JsonError::Syntax(e)),
        // A repeated key: parse again, naming it this time.
        (Err(_), Some(_)) => Err(JsonError::Decode(match parse::<true>(bytes) {
            (Err(_), Some(segments)) => duplicate(segments),
            _ => duplicate(Vec::new()),
        })),
    }
}

/// One parse; the path of a repeated key (innermost segment first) when that is why it
/// failed, empty unless `NAME`.
fn parse<const NAME: bool>(
    bytes: &[u8],
) -> (Result<Value, serde_json::Error>, Option<Vec<String>>) {
    let repeated = RefCell::new(None);
    let mut de = serde_json::Deserializer::from_slice(bytes);
    let parsed = Strict::<NAME> {
        repeated: &repeated,
    }
    .deserialize(&mut de)
    .and_then(|v| de.end().map(|()| v));
    (parsed, repeated.into_inner())
}

/// [`parse_json`], then [`from_ejson`]: one export record as a decoded document.
pub fn from_json(bytes: &[u8]) -> Result<Decoded, JsonError> {
    Ok(from_ejson(parse_json(bytes)?)?)
}

/// The error for a repeated key, its path given innermost segment first.
fn duplicate(segments: Vec<String>) -> DecodeError {
    segments
        .iter()
        .fold(DecodeError::ejson(EjsonErrorKind::DuplicateKey), |e, s| {
            e.within(s)
        })
}

/// Set when a repeated key was found: the path to it, innermost segment first (each
/// enclosing object or array adds its segment while the error propagates).
type Repeated = RefCell<Option<Vec<String>>>;

/// Builds a `Value` as serde_json's own visitor does, refusing repeated keys; with
/// `NAME`, also records the path of the repeated key (a little slower: each key is kept
/// until it is inserted).
#[derive(Clone, Copy)]
struct Strict<'r, const NAME: bool> {
    repeated: &'r Repeated,
}

impl<const NAME: bool> Strict<'_, NAME> {
    /// Adds `segment` to the path of a repeated key found below it, if that is why the
    /// parse failed.
    fn within(&self, segment: impl fmt::Display) {
        if !NAME {
            return;
        }
        if let Some(path) = self.repeated.borrow_mut().as_mut() {
            path.push(segment.to_string());
        }
    }

    fn repeated_key<E: serde::de::Error>(&self, key: Option<&str>) -> E {
        *self.repeated.borrow_mut() = Some(key.map(str::to_string).into_iter().collect());
        E::custom("duplicate key")
    }
}

impl<'de, const NAME: bool> DeserializeSeed<'de> for Strict<'_, NAME> {
    type Value = Value;

    #[inline]
    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<Value, D::Error> {
        deserializer.deserialize_any(self)
    }
}

impl<'de, const NAME: bool> Visitor<'de> for Strict<'_, NAME> {
    type Value = Value;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("any valid JSON value")
    }

    #[inline]
    fn visit_bool<E>(self, v: bool) -> Result<Value, E> {
        Ok(Value::Bool(v))
    }

    #[inline]
    fn visit_i64<E>(self, v: i64) -> Result<Value, E> {
        Ok(Value::Number(v.into()))
    }

    #[inline]
    fn visit_u64<E>(self, v: u64) -> Result<Value, E> {
        Ok(Value::Number(v.into()))
    }

    #[inline]
    fn visit_f64<E>(self, v: f64) -> Result<Value, E> {
        Ok(Number::from_f64(v).map_or(Value::Null, Value::Number))
    }

    #[inline]
    fn visit_str<E>(self, v: &str) -> Result<Value, E> {
        Ok(Value::String(v.to_owned()))
    }

    #[inline]
    fn visit_string<E>(self, v: String) -> Result<Value, E> {
        Ok(Value::String(v))
    }

    #[inline]
    fn visit_none<E>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }

    #[inline]
    fn visit_unit<E>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }

    #[inline]
    fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<Value, D::Error> {
        self.deserialize(d)
    }

    #[inline]
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Value, A::Error> {
        let mut items = Vec::new();
        loop {
            match seq.next_element_seed(self) {
                Ok(Some(v)) => items.push(v),
                Ok(None) => return Ok(Value::Array(items)),
                Err(e) => {
                    self.within(items.len());
                    return Err(e);
                }
            }
        }
    }

    #[inline]
    fn visit_map<A: MapAccess<'de>>(self, mut access: A) -> Result<Value, A::Error> {
        let mut map = Map::new();
        while let Some(key) = access.next_key::<String>()? {
            let value = match access.next_value_seed(self) {
                Ok(v) => v,
                Err(e) => {
                    self.within(&key);
                    return Err(e);
                }
            };
            if NAME {
                match map.entry(key) {
                    Entry::Vacant(slot) => {
                        slot.insert(value);
                    }
                    Entry::Occupied(slot) => return Err(self.repeated_key(Some(slot.key()))),
                }
            } else {
                let before = map.len();
                map.insert(key, value);
                if map.len() == before {
                    return Err(self.repeated_key(None));
                }
            }
        }
        Ok(Value::Object(map))
    }
}
