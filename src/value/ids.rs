//! Compact storage of every scanned document's `_id`, by ordinal, so that findings
//! discovered later (the first member of a duplicate group) can still name documents.
//! An ObjectId takes 13 bytes; other `_id`s keep their relaxed Extended JSON text.

use serde_json::Value;

const TAG_OID: u8 = 0;
const TAG_JSON: u8 = 1;
const TAG_NONE: u8 = 2;

#[derive(Debug, Default, Clone)]
pub struct IdArena {
    bytes: Vec<u8>,
    ends: Vec<u64>,
}

/// One document's `_id` in the arena's form: the 12 bytes of an ObjectId (no allocation), or
/// any other `_id`'s relaxed Extended JSON text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StoredId {
    Oid([u8; 12]),
    Text(Box<str>),
}

impl StoredId {
    /// The stored form of a relaxed `_id` value.
    #[must_use]
    pub fn of(v: &Value) -> Self {
        match oid_bytes(v) {
            Some(b) => StoredId::Oid(b),
            None => StoredId::Text(id_text(v).into()),
        }
    }

    /// The `_id` as violations.csv shows it: exactly [`id_text`] of its value.
    #[must_use]
    pub fn text(&self) -> String {
        match self {
            StoredId::Oid(b) => format!("{{\"$oid\":\"{}\"}}", crate::value::hex_lower(b)),
            StoredId::Text(t) => t.to_string(),
        }
    }

    /// The relaxed value of the `_id`.
    #[must_use]
    pub fn value(&self) -> Value {
        match self {
            StoredId::Oid(b) => serde_json::json!({ "$oid": crate::value::hex_lower(b) }),
            StoredId::Text(t) => parse_id_text(t.as_bytes()).unwrap_or(Value::Null),
        }
    }
}

impl IdArena {
    pub fn push(&mut self, id: Option<&Value>) {
        self.push_stored(id.map(StoredId::of).as_ref());
    }

    /// Makes room for `more` `_id`s (ObjectIds: a tag byte and 12 bytes each).
    pub fn reserve(&mut self, more: usize) {
        self.bytes.reserve(more.saturating_mul(13));
        self.ends.reserve(more);
    }

    pub fn push_stored(&mut self, id: Option<&StoredId>) {
        match id {
            None => self.bytes.push(TAG_NONE),
            Some(StoredId::Oid(b)) => {
                self.bytes.push(TAG_OID);
                self.bytes.extend_from_slice(b);
            }
            Some(StoredId::Text(t)) => {
                self.bytes.push(TAG_JSON);
                self.bytes.extend_from_slice(t.as_bytes());
            }
        }
        self.ends.push(self.bytes.len() as u64);
    }

    /// The stored form of document `ordinal`: a tag byte and its payload (12 ObjectId
    /// bytes, or relaxed Extended JSON text). Snapshots store exactly this.
    pub fn raw(&self, ordinal: usize) -> &[u8] {
        let Some(&end) = self.ends.get(ordinal) else {
            return &[];
        };
        let start = match ordinal.checked_sub(1) {
            Some(prev) => self.ends.get(prev).copied().unwrap_or(0),
            None => 0,
        };
        self.bytes.get(start as usize..end as usize).unwrap_or(&[])
    }

    /// Appends a stored form read back from a snapshot; rejects malformed ones.
    pub fn push_raw(&mut self, raw: &[u8]) -> Result<(), String> {
        match raw.split_first() {
            Some((&TAG_OID, rest)) if rest.len() == 12 => {}
            Some((&TAG_JSON, rest)) if std::str::from_utf8(rest).is_ok() => {}
            Some((&TAG_NONE, [])) => {}
            _ => return Err("malformed _id record".into()),
        }
        self.bytes.extend_from_slice(raw);
        self.ends.push(self.bytes.len() as u64);
        Ok(())
    }

    pub fn len(&self) -> usize {
        self.ends.len()
    }

    /// The `_id` of document `ordinal` as a relaxed value (None when it had none or the
    /// record is damaged).
    pub fn value(&self, ordinal: usize) -> Option<Value> {
        match self.stored(ordinal)? {
            StoredId::Text(t) => parse_id_text(t.as_bytes()),
            oid => Some(oid.value()),
        }
    }

    /// The `_id` of document `ordinal` (None when it had none).
    pub fn stored(&self, ordinal: usize) -> Option<StoredId> {
        match self.raw(ordinal).split_first()? {
            (&TAG_OID, rest) => Some(StoredId::Oid(rest.try_into().ok()?)),
            (&TAG_JSON, rest) => Some(StoredId::Text(std::str::from_utf8(rest).ok()?.into())),
            _ => None,
        }
    }

    pub fn is_empty(&self) -> bool {
        self.ends.is_empty()
    }

    /// The `_id` of document `ordinal` as relaxed Extended JSON ("" when it had none).
    pub fn get(&self, ordinal: usize) -> String {
        self.stored(ordinal)
            .as_ref()
            .map(StoredId::text)
            .unwrap_or_default()
    }
}

/// The value of an `_id`'s stored text. The text is [`id_text`] of a decoded value, so it parses
/// back to that value; without serde_json's recursion limit, as deep as decoding allows.
fn parse_id_text(text: &[u8]) -> Option<Value> {
    let mut de = serde_json::Deserializer::from_slice(text);
    de.disable_recursion_limit();
    let value = serde::Deserialize::deserialize(&mut de).ok()?;
    de.end().ok()?;
    Some(value)
}

/// An `_id` rendered as compact relaxed Extended JSON, as it appears in violations.csv.
pub fn id_text(v: &Value) -> String {
    serde_json::to_string(v).unwrap_or_default()
}

fn oid_bytes(v: &Value) -> Option<[u8; 12]> {
    let o = v.as_object()?;
    if o.len() != 1 {
        return None;
    }
    let hex = o.get("$oid")?.as_str()?;
    if hex.len() != 24 {
        return None;
    }
    let mut out = [0u8; 12];
    for (i, chunk) in hex.as_bytes().chunks(2).enumerate() {
        let s = std::str::from_utf8(chunk).ok()?;
        // Only lowercase hex round-trips exactly; anything else keeps its text.
        if s.bytes().any(|b| b.is_ascii_uppercase()) {
            return None;
        }
        out[i] = u8::from_str_radix(s, 16).ok()?;
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn round_trips_ids() {
        let ids = [
            Some(json!({"$oid": "65a1b2c3d4e5f60718293a4b"})),
            None,
            Some(json!(42)),
            Some(json!("abc")),
            Some(json!({"$oid": "65A1B2C3D4E5F60718293A4B"})),
            Some(json!({"a": 1, "b": [1, 2]})),
            Some((0..200).fold(json!(1.5), |v, _| json!([v]))),
        ];
        let mut a = IdArena::default();
        for id in &ids {
            a.push(id.as_ref());
        }
        for (i, id) in ids.iter().enumerate() {
            let want = id.as_ref().map(id_text).unwrap_or_default();
            assert_eq!(a.get(i), want);
            if let Some(v) = id {
                let stored = StoredId::of(v);
                assert_eq!(stored.text(), want);
                assert_eq!(&stored.value(), v);
                assert_eq!(a.value(i).as_ref(), Some(v));
            }
        }
        assert_eq!(a.get(99), "");
        let mut damaged = IdArena::default();
        damaged
            .push_raw(b"\x01{\"a\":1}x")
            .expect("UTF-8 text is stored");
        assert_eq!(damaged.value(0), None, "trailing bytes are not an _id");
    }
}
