//! The projection decode: for a document that passed the preflight, only the top-level fields
//! the per-document facts read (`_id`, the first segment of each unique-index, reference and
//! exported path) are decoded, each by `from_bson`'s own decoder, into a small object.

use serde_json::{Map, Value};

use super::Elements;

/// The top-level fields of `doc` named in `fields` (in document order), decoded as `from_bson`
/// decodes them; `None` if the document does not decode (the caller then takes the decode
/// path, which reports the error).
#[must_use]
pub fn project(doc: &[u8], fields: &[String]) -> Option<Value> {
    let mut map = Map::with_capacity(fields.len());
    let mut elements = Elements::new(doc);
    while let Some((key, t, value_pos, _)) = elements.next_at() {
        if !fields.iter().any(|f| f.as_bytes() == key) {
            continue;
        }
        let key = std::str::from_utf8(key).ok()?;
        let value = crate::value::bson::decode_value(doc, t, value_pos).ok()?;
        if map.insert(key.to_owned(), value).is_some() {
            return None;
        }
    }
    Some(Value::Object(map))
}
