//! Index specifications: the key pattern (order significant), uniqueness and name,
//! read from a contract or from a collection's actual indexes.

use std::fmt;

use serde_json::{Map, Value};

/// The direction or type of one field of an index key.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum KeyDirection {
    Asc,
    Desc,
    /// `"text"`, `"hashed"`, `"2dsphere"`, …
    Special(String),
}

impl KeyDirection {
    fn to_json(&self) -> Value {
        match self {
            KeyDirection::Asc => Value::from(1),
            KeyDirection::Desc => Value::from(-1),
            KeyDirection::Special(s) => Value::from(s.as_str()),
        }
    }

    fn name_part(&self) -> String {
        match self {
            KeyDirection::Asc => "1".into(),
            KeyDirection::Desc => "-1".into(),
            KeyDirection::Special(s) => s.clone(),
        }
    }
}

/// An ordered index key pattern such as `{ status: 1, created_at: -1 }`.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct IndexKey(pub Vec<(String, KeyDirection)>);

impl IndexKey {
    /// The key as a JSON object, fields in index order.
    pub fn to_json(&self) -> Value {
        let mut m = Map::new();
        for (f, d) in &self.0 {
            m.insert(f.clone(), d.to_json());
        }
        Value::Object(m)
    }

    /// The name MongoDB gives an index with this key when none is given.
    pub fn default_name(&self) -> String {
        let parts: Vec<String> = self
            .0
            .iter()
            .map(|(f, d)| format!("{f}_{}", d.name_part()))
            .collect();
        parts.join("_")
    }

    /// The fields, in order, joined by `,` (used in finding names such as `duplicate:email`).
    pub fn fields_label(&self) -> String {
        let f: Vec<&str> = self.0.iter().map(|(f, _)| f.as_str()).collect();
        f.join(",")
    }

    pub fn is_id_only(&self) -> bool {
        self.0.len() == 1 && self.0[0].0 == "_id" && self.0[0].1 == KeyDirection::Asc
    }
}

impl fmt::Display for IndexKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("{ ")?;
        for (i, (field, d)) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str(", ")?;
            }
            write!(f, "{field}: {}", d.to_json())?;
        }
        f.write_str(" }")
    }
}

/// One index: declared in a contract or found on the collection.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IndexSpec {
    pub key: IndexKey,
    pub unique: bool,
    pub sparse: bool,
    pub name: Option<String>,
}

impl IndexSpec {
    /// Two indexes are the same for coverage when key pattern, uniqueness and
    /// sparseness agree; names are informational.
    pub fn same_index(&self, other: &IndexSpec) -> bool {
        self.key == other.key && self.unique == other.unique && self.sparse == other.sparse
    }

    /// The index as it appears in report.json.
    pub fn to_report_json(&self) -> Value {
        let mut m = Map::new();
        m.insert("key".into(), self.key.to_json());
        if let Some(n) = &self.name {
            m.insert("name".into(), Value::from(n.as_str()));
        }
        if self.unique {
            m.insert("unique".into(), Value::Bool(true));
        }
        if self.sparse {
            m.insert("sparse".into(), Value::Bool(true));
        }
        Value::Object(m)
    }

    /// Parses a contract entry `{ key = { … }, unique = true, name = "…", sparse = false }`.
    pub(crate) fn from_toml(v: &toml::Value) -> Result<IndexSpec, String> {
        let t = v
            .as_table()
            .ok_or("must be a table like { key = { field = 1 } }")?;
        for k in t.keys() {
            if !matches!(k.as_str(), "key" | "unique" | "name" | "sparse") {
                return Err(format!(
                    "unknown field `{k}` (expected key, unique, name, sparse)"
                ));
            }
        }
        let key_v = t.get("key").ok_or("missing `key`")?;
        let mut fields = Vec::new();
        match key_v {
            toml::Value::Table(kt) => flatten_toml_key("", kt, &mut fields)?,
            toml::Value::Array(items) => {
                // [["status", 1], ["created_at", -1]]: explicit order.
                for item in items {
                    let pair = item
                        .as_array()
                        .filter(|p| p.len() == 2)
                        .ok_or("`key` as an array must hold [field, direction] pairs")?;
                    let f = pair[0]
                        .as_str()
                        .ok_or("a key field name must be a string")?;
                    fields.push((f.to_string(), toml_direction(f, &pair[1])?));
                }
            }
            _ => return Err("`key` must be a table such as { field = 1 }".into()),
        }
        let bool_field = |name: &str| -> Result<bool, String> {
            match t.get(name) {
                None => Ok(false),
                Some(toml::Value::Boolean(b)) => Ok(*b),
                Some(_) => Err(format!("`{name}` must be true or false")),
            }
        };
        let name = match t.get("name") {
            None => None,
            Some(toml::Value::String(s)) if !s.is_empty() => Some(s.clone()),
            Some(_) => return Err("`name` must be a non-empty string".into()),
        };
        let key = IndexKey(fields);
        check_key(&key)?;
        Ok(IndexSpec {
            key,
            unique: bool_field("unique")?,
            sparse: bool_field("sparse")?,
            name,
        })
    }

    /// Parses one entry of `listIndexes` or of a dump's `metadata.json` `indexes`,
    /// given as relaxed or canonical Extended JSON.
    pub fn from_server_json(v: &Value) -> Result<IndexSpec, String> {
        let o = v.as_object().ok_or("an index must be a document")?;
        let key_o = o
            .get("key")
            .and_then(Value::as_object)
            .ok_or("an index needs a `key` document")?;
        let mut fields = Vec::new();
        for (f, d) in key_o {
            fields.push((f.clone(), json_direction(f, d)?));
        }
        let key = IndexKey(fields);
        check_key(&key)?;
        let truthy = |name: &str| o.get(name).is_some_and(json_truthy);
        Ok(IndexSpec {
            key,
            unique: truthy("unique"),
            sparse: truthy("sparse"),
            name: o.get("name").and_then(Value::as_str).map(str::to_string),
        })
    }
}

fn check_key(key: &IndexKey) -> Result<(), String> {
    if key.0.is_empty() {
        return Err("`key` is empty".into());
    }
    for (i, (f, _)) in key.0.iter().enumerate() {
        if f.is_empty() || f.split('.').any(str::is_empty) {
            return Err(format!("invalid key field {f:?}"));
        }
        if key.0[..i].iter().any(|(g, _)| g == f) {
            return Err(format!("key field {f:?} appears twice"));
        }
    }
    Ok(())
}

/// `{ customer.id = 1 }` in TOML is a nested table; flatten it back into the dotted
/// path, keeping the written order.
fn flatten_toml_key(
    prefix: &str,
    t: &toml::map::Map<String, toml::Value>,
    out: &mut Vec<(String, KeyDirection)>,
) -> Result<(), String> {
    for (k, v) in t {
        let path = if prefix.is_empty() {
            k.clone()
        } else {
            format!("{prefix}.{k}")
        };
        match v {
            toml::Value::Table(inner) => flatten_toml_key(&path, inner, out)?,
            other => out.push((path.clone(), toml_direction(&path, other)?)),
        }
    }
    Ok(())
}

fn toml_direction(field: &str, v: &toml::Value) -> Result<KeyDirection, String> {
    match v {
        toml::Value::Integer(1) => Ok(KeyDirection::Asc),
        toml::Value::Integer(-1) => Ok(KeyDirection::Desc),
        toml::Value::String(s) if is_special(s) => Ok(KeyDirection::Special(s.clone())),
        _ => Err(format!(
            "key field {field:?}: direction must be 1, -1, \"text\", \"hashed\", \"2d\" or \"2dsphere\""
        )),
    }
}

fn is_special(s: &str) -> bool {
    matches!(
        s,
        "text" | "hashed" | "2d" | "2dsphere" | "geoHaystack" | "wildcard"
    )
}

/// Directions on a server may be any numeric type (1, 1.0, NumberLong(1)); MongoDB treats
/// any positive number as ascending and any negative one as descending.
fn json_direction(field: &str, v: &Value) -> Result<KeyDirection, String> {
    let n = json_number(v);
    match (n, v.as_str()) {
        (Some(x), _) if x > 0.0 => Ok(KeyDirection::Asc),
        (Some(x), _) if x < 0.0 => Ok(KeyDirection::Desc),
        (_, Some(s)) => Ok(KeyDirection::Special(s.to_string())),
        _ => Err(format!("key field {field:?}: unsupported direction")),
    }
}

/// A number in relaxed or canonical Extended JSON.
fn json_number(v: &Value) -> Option<f64> {
    if let Some(x) = v.as_f64() {
        return Some(x);
    }
    let o = v.as_object()?;
    if o.len() != 1 {
        return None;
    }
    let (k, inner) = o.iter().next()?;
    match k.as_str() {
        "$numberInt" | "$numberLong" | "$numberDouble" | "$numberDecimal" => {
            inner.as_str()?.parse().ok()
        }
        _ => None,
    }
}

fn json_truthy(v: &Value) -> bool {
    match v {
        Value::Bool(b) => *b,
        Value::Null => false,
        other => json_number(other).is_some_and(|x| x != 0.0),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn spec(src: &str) -> Result<IndexSpec, String> {
        let v: toml::Value = toml::from_str(&format!("i = {src}")).map_err(|e| e.to_string())?;
        IndexSpec::from_toml(&v["i"])
    }

    #[test]
    fn toml_keys_keep_order_and_flatten_dotted() {
        let s = spec("{ key = { status = 1, created_at = -1 } }").unwrap();
        assert_eq!(s.key.default_name(), "status_1_created_at_-1");
        let s = spec("{ key = { created_at = -1, status = 1 } }").unwrap();
        assert_eq!(s.key.default_name(), "created_at_-1_status_1");
        let s = spec(r#"{ key = { "customer.id" = 1 } }"#).unwrap();
        assert_eq!(s.key.0[0].0, "customer.id");
        let s = spec("{ key = { customer.id = 1, x = -1 } }").unwrap();
        assert_eq!(s.key.fields_label(), "customer.id,x");
        let s = spec(r#"{ key = [["b", 1], ["a", -1]], unique = true, name = "n" }"#).unwrap();
        assert_eq!(s.key.fields_label(), "b,a");
        assert!(s.unique);
        assert_eq!(s.name.as_deref(), Some("n"));
    }

    #[test]
    fn toml_key_errors() {
        for bad in [
            "{ key = {} }",
            "{ key = { a = 2 } }",
            "{ key = { a = \"up\" } }",
            "{ key = { a = 1 }, unique = 1 }",
            "{ key = { a = 1 }, colour = 1 }",
            "{ unique = true }",
            "{ key = [[\"a\"]] }",
            "{ key = [[\"a\", 1], [\"a\", -1]] }",
            "3",
        ] {
            assert!(spec(bad).is_err(), "{bad} should be rejected");
        }
    }

    #[test]
    fn server_indexes_in_canonical_and_relaxed_json() {
        let a = IndexSpec::from_server_json(&json!({
            "v": {"$numberInt": "2"},
            "key": {"status": {"$numberInt": "1"}, "created_at": {"$numberDouble": "-1.0"}},
            "name": "status_1_created_at_-1",
            "unique": true
        }))
        .unwrap();
        let b = IndexSpec::from_server_json(&json!({
            "v": 2, "key": {"status": 1, "created_at": -1}, "name": "x", "unique": true
        }))
        .unwrap();
        assert!(a.same_index(&b));
        let c = IndexSpec::from_server_json(&json!({
            "key": {"created_at": -1, "status": 1}, "name": "x"
        }))
        .unwrap();
        assert!(!a.same_index(&c), "key order is significant");
        assert!(IndexSpec::from_server_json(&json!({"key": {"a": true}})).is_err());
    }
}
