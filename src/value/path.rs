//! Dotted paths (`customer.id`) resolved the way MongoDB resolves them for indexes and
//! queries: an array on the path fans out to each element, a numeric component may
//! index an array, and an array at the end contributes each element.

use serde_json::Value;

/// Every value `path` reaches in `doc`. Arrays at the leaf are expanded into their
/// elements. An empty result means the field is missing.
pub fn values_at<'a>(doc: &'a Value, path: &str) -> Vec<&'a Value> {
    let mut out = Vec::new();
    let parts: Vec<&str> = path.split('.').collect();
    walk(doc, &parts, &mut out, 0);
    out
}

/// Array nesting on a path is bounded; a pathological document cannot blow the stack.
const MAX_FANOUT_DEPTH: usize = 32;

fn walk<'a>(v: &'a Value, parts: &[&str], out: &mut Vec<&'a Value>, depth: usize) {
    if depth > MAX_FANOUT_DEPTH {
        return;
    }
    let Some((first, rest)) = parts.split_first() else {
        match v {
            Value::Array(items) => out.extend(items.iter()),
            other => out.push(other),
        }
        return;
    };
    match v {
        Value::Object(m) => {
            if let Some(child) = m.get(*first) {
                walk(child, rest, out, depth + 1);
            }
        }
        Value::Array(items) => {
            if let Ok(i) = first.parse::<usize>() {
                if let Some(child) = items.get(i) {
                    walk(child, rest, out, depth + 1);
                }
            }
            for item in items {
                if item.is_object() {
                    walk(item, parts, out, depth + 1);
                }
            }
        }
        _ => {}
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
