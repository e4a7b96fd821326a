//! Paths on documents: exact (no fan-out over arrays; a numeric component indexes an
//! array), order-keeping edits for the operations that move, rename and insert fields.

use serde_json::{Map, Value};

use super::error::OpError;
use super::kinds::kind;

pub(super) fn get<'a>(doc: &'a Value, path: &str) -> Option<&'a Value> {
    let mut cur = doc;
    for part in path.split('.') {
        cur = match cur {
            Value::Object(m) => m.get(part)?,
            Value::Array(a) => a.get(part.parse::<usize>().ok()?)?,
            _ => return None,
        };
    }
    Some(cur)
}

pub(super) fn split_parent(path: &str) -> (Option<&str>, &str) {
    match path.rsplit_once('.') {
        Some((p, k)) => (Some(p), k),
        None => (None, path),
    }
}

pub(super) fn get_container_mut<'a>(
    doc: &'a mut Value,
    path: Option<&str>,
) -> Option<&'a mut Value> {
    let Some(path) = path else {
        return Some(doc);
    };
    let mut cur = doc;
    for part in path.split('.') {
        cur = match cur {
            Value::Object(m) => m.get_mut(part)?,
            Value::Array(a) => a.get_mut(part.parse::<usize>().ok()?)?,
            _ => return None,
        };
    }
    Some(cur)
}

/// Removes the value at `path`; returns it.
pub(super) fn remove(doc: &mut Value, path: &str) -> Option<Value> {
    let (parent, key) = split_parent(path);
    match get_container_mut(doc, parent)? {
        Value::Object(m) => m.shift_remove(key),
        _ => None,
    }
}

/// The index of `key` in the object at `parent`.
pub(super) fn position(doc: &Value, parent: Option<&str>, key: &str) -> Option<usize> {
    let obj = match parent {
        None => doc,
        Some(p) => get(doc, p)?,
    };
    obj.as_object()?.keys().position(|k| k == key)
}

/// Where a value taken from `from` should land when written to `to`: when `to`'s parent
/// object holds `from` (or an ancestor of it), at that position, so a field keeps its place.
pub(super) fn anchor(doc: &Value, from: &str, to: &str) -> Option<usize> {
    let (to_parent, _) = split_parent(to);
    let rest = match to_parent {
        None => from,
        Some(p) => from.strip_prefix(p)?.strip_prefix('.')?,
    };
    let key = rest.split('.').next()?;
    position(doc, to_parent, key)
}

/// Writes `value` at `path`, creating missing parent documents. An existing field is
/// replaced in place; a new one goes to `at` (or the end).
pub(super) fn insert(
    doc: &mut Value,
    path: &str,
    value: Value,
    at: Option<usize>,
) -> Result<(), OpError> {
    let parts: Vec<&str> = path.split('.').collect();
    let mut cur = doc;
    for (i, part) in parts.iter().enumerate() {
        let last = i + 1 == parts.len();
        match cur {
            Value::Object(m) => {
                if last {
                    if let Some(slot) = m.get_mut(*part) {
                        *slot = value;
                    } else {
                        match at {
                            Some(idx) if idx <= m.len() => {
                                m.shift_insert(idx, (*part).to_string(), value);
                            }
                            _ => {
                                m.insert((*part).to_string(), value);
                            }
                        }
                    }
                    return Ok(());
                }
                cur = m
                    .entry((*part).to_string())
                    .or_insert_with(|| Value::Object(Map::new()));
            }
            Value::Array(a) => {
                let idx = part
                    .parse::<usize>()
                    .ok()
                    .filter(|i| *i < a.len())
                    .ok_or_else(|| OpError::NoSuchElement(parts[..i].join(".")))?;
                if last {
                    a[idx] = value;
                    return Ok(());
                }
                cur = &mut a[idx];
            }
            other => {
                return Err(OpError::ParentNotADocument {
                    path: parts[..i].join("."),
                    kind: kind(other),
                })
            }
        }
    }
    Ok(())
}
