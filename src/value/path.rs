//! Dotted paths (`customer.id`) resolved the way MongoDB resolves them for indexes and
//! queries: an array on the path fans out to each element, a numeric component may
//! index an array, and an array at the end contributes each element.

use jsonschema::json::{Array as _, Json, Node as _, Object as _, SerdeJson};
use jsonschema::JsonType;
use serde_json::Value;

/// Every value `path` reaches in `doc`. Arrays at the leaf are expanded into their
/// elements. An empty result means the field is missing.
pub fn values_at<'a>(doc: &'a Value, path: &str) -> Vec<&'a Value> {
    nodes_at::<SerdeJson>(doc, path)
}

/// [`values_at`] for a node of any representation (a decoded value's, or the in-place view's,
/// which gives the same nodes in the same order).
pub fn nodes_at<'a, J: Json>(doc: J::Node<'a>, path: &str) -> Vec<J::Node<'a>> {
    let mut out = Vec::new();
    let parts: Vec<&str> = path.split('.').collect();
    walk::<J>(doc, &parts, &mut out, 0);
    out
}

/// Array nesting on a path is bounded; a pathological document cannot blow the stack.
const MAX_FANOUT_DEPTH: usize = 32;

/// The member `key` of an object node.
pub fn member<'a, J: Json>(v: &J::Node<'a>, key: &str) -> Option<J::Node<'a>> {
    v.as_object()?
        .members()
        .find(|(name, _)| name.as_ref() == key)
        .map(|(_, child)| child)
}

fn walk<'a, J: Json>(v: J::Node<'a>, parts: &[&str], out: &mut Vec<J::Node<'a>>, depth: usize) {
    if depth > MAX_FANOUT_DEPTH {
        return;
    }
    let Some((first, rest)) = parts.split_first() else {
        match v.as_array() {
            Some(items) => out.extend(items.elements()),
            None => out.push(v),
        }
        return;
    };
    if let Some(items) = v.as_array() {
        if let Ok(i) = first.parse::<usize>() {
            if let Some(child) = items.elements().nth(i) {
                walk::<J>(child, rest, out, depth + 1);
            }
        }
        for item in items.elements() {
            if item.json_type() == JsonType::Object {
                walk::<J>(item, parts, out, depth + 1);
            }
        }
    } else if let Some(child) = member::<J>(&v, first) {
        walk::<J>(child, rest, out, depth + 1);
    }
}

/// Generalises a JSON pointer for grouping errors: array indexes become `*`.
pub fn generalise_pointer(p: &str) -> String {
    if p.is_empty() {
        return "/".into();
    }
    p.split('/')
        .map(|seg| {
            if !seg.is_empty() && seg.bytes().all(|b| b.is_ascii_digit()) {
                "*"
            } else {
                seg
            }
        })
        .collect::<Vec<_>>()
        .join("/")
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn mongo_path_semantics() {
        let d = json!({
            "a": {"b": 1},
            "items": [{"sku": "x"}, {"sku": "y"}, {"other": 1}],
            "tags": ["t1", "t2"],
            "nested": [[{"k": 1}]],
            "n": null
        });
        let cases: &[(&str, Vec<Value>)] = &[
            ("a.b", vec![json!(1)]),
            ("a", vec![json!({"b": 1})]),
            ("missing", vec![]),
            ("a.b.c", vec![]),
            ("items.sku", vec![json!("x"), json!("y")]),
            ("items.1.sku", vec![json!("y")]),
            ("tags", vec![json!("t1"), json!("t2")]),
            ("tags.0", vec![json!("t1")]),
            ("n", vec![Value::Null]),
        ];
        for (p, want) in cases {
            let got: Vec<Value> = values_at(&d, p).into_iter().cloned().collect();
            assert_eq!(&got, want, "{p}");
        }
    }

    #[test]
    fn pointer_generalisation() {
        assert_eq!(generalise_pointer(""), "/");
        assert_eq!(generalise_pointer("/items/3/price"), "/items/*/price");
        assert_eq!(generalise_pointer("/a1/b"), "/a1/b");
    }
}
