//! The agreement check between in-place and decoded validation, shared by the unit tests and
//! the `raw_agreement` fuzz target.

use jsonschema::{ValidationError, Validator};
use serde_json::{json, Value};

use super::{preflight, to_value, RawBson};
use crate::value::{from_bson, StoredId};

/// Schemas that exercise the keywords contracts use, over the relaxed view: the shop example's
/// contracts, types, required, patterns, enum/const, bounds, formats, additionalProperties,
/// arrays, uniqueItems, `$ref`, and the wrapper objects of the BSON types JSON lacks.
#[must_use]
pub fn agreement_schemas() -> Vec<Value> {
    let shop = [
        include_str!("../../../examples/shop/schemas/orders/v1.schema.json"),
        include_str!("../../../examples/shop/schemas/orders/v2.schema.json"),
        include_str!("../../../examples/shop/schemas/customers/v1.schema.json"),
        include_str!("../../../examples/shop/schemas/customers/v2.schema.json"),
    ];
    let mut schemas: Vec<Value> = shop
        .iter()
        .filter_map(|s| serde_json::from_str(s).ok())
        .collect();
    schemas.extend([
        json!({"type": "object"}),
        json!({"additionalProperties": {"type": ["string", "number", "boolean", "null"]}}),
        json!({"additionalProperties": {"type": "integer", "minimum": -1000, "maximum": 1000}}),
        json!({"additionalProperties": {"not": {"type": "array"}}}),
        json!({"additionalProperties": false, "properties": {"a": true, "_": true}}),
        json!({"required": ["a"], "properties": {"a": {"type": "string", "minLength": 1, "maxLength": 3}}}),
        json!({"patternProperties": {"^[a-m]": {"type": "object"}, "^[n-z]": {"type": "number", "multipleOf": 0.5}}}),
        json!({"propertyNames": {"pattern": "^[a-z_]*$", "maxLength": 4}, "maxProperties": 5, "minProperties": 1}),
        json!({"additionalProperties": {"anyOf": [
            {"type": "object", "required": ["$oid"], "properties": {"$oid": {"type": "string", "pattern": "^[0-9a-f]{24}$"}}},
            {"type": "object", "required": ["$date"], "properties": {"$date": {"type": "string", "format": "date-time"}}},
            {"type": "object", "properties": {"$date": {"type": "object", "properties": {"$numberLong": {"pattern": "^-"}}}}},
            {"type": "number", "exclusiveMinimum": 0}
        ]}}),
        json!({"additionalProperties": {"oneOf": [
            {"type": "object", "properties": {"$binary": {"properties": {"subType": {"enum": ["00", "04", "80"]}, "base64": {"maxLength": 12}}}}},
            {"type": "object", "properties": {"$numberDecimal": {"type": "string", "pattern": "^-?[0-9]"}}},
            {"type": "object", "properties": {"$regularExpression": {"properties": {"options": {"const": "i"}, "pattern": {"format": "regex"}}}}},
            {"type": "object", "properties": {"$timestamp": {"properties": {"t": {"minimum": 100000}, "i": {"maximum": 5}}}}},
            {"type": "string", "format": "email"}
        ]}}),
        json!({"additionalProperties": {"enum": [
            null, true, 0, 1.5, "a", {"$minKey": 1}, {"$maxKey": 1}, {"$undefined": true},
            {"$numberDouble": "NaN"}, {"$numberDouble": "-Infinity"}, [], {}, {"a": 1}
        ]}}),
        json!({"properties": {"a": {"const": {"$oid": "000000000000000000000000"}}, "b": {"const": [1, "b"]}}}),
        json!({"additionalProperties": {"type": "array", "uniqueItems": true, "maxItems": 4, "items": {"$ref": "#/$defs/leaf"}}, "$defs": {"leaf": {"type": ["object", "string", "number", "array"]}}}),
        json!({"additionalProperties": {"$ref": "#/$defs/tree"}, "$defs": {"tree": {"anyOf": [
            {"type": ["string", "number", "boolean", "null"]},
            {"type": "array", "items": {"$ref": "#/$defs/tree"}},
            {"type": "object", "additionalProperties": {"$ref": "#/$defs/tree"}}
        ]}}}),
        json!({"additionalProperties": {"contains": {"type": "integer"}, "minContains": 1}}),
        json!({"additionalProperties": {"properties": {"$code": {"type": "string", "maxLength": 2}, "$scope": {"type": "object", "maxProperties": 1}, "$symbol": {"minLength": 1}}}}),
        json!({"dependentRequired": {"a": ["b"]}, "if": {"required": ["_"]}, "then": {"properties": {"_": {"type": "string"}}}, "else": {"maxProperties": 3}}),
        json!({"additionalProperties": {"format": "date-time"}, "properties": {"a": {"format": "uuid"}, "b": {"format": "ipv4"}}}),
        json!({"unevaluatedProperties": {"type": "number"}, "properties": {"a": true}, "patternProperties": {"^_": true}}),
        json!({"additionalProperties": {"type": "object", "properties": {"$dbPointer": {"properties": {"$ref": {"const": "db.coll"}, "$id": {"required": ["$oid"]}}}}}}),
    ]);
    schemas
}

/// Both validators of each schema.
///
/// # Panics
///
/// When a schema does not compile (the schemas above all do).
#[must_use]
pub fn agreement_validators() -> Vec<(Validator, Validator<RawBson>)> {
    agreement_schemas()
        .iter()
        .map(|s| {
            let options = || {
                jsonschema::draft202012::options()
                    .should_validate_formats(true)
                    .build(s)
            };
            (
                options().expect("schema compiles"),
                crate::contract::raw_validator(s).expect("schema compiles for RawBson"),
            )
        })
        .collect()
}

fn error_facts(e: &ValidationError<'_>) -> [String; 5] {
    [
        e.instance_path().as_str().to_string(),
        e.schema_path().as_str().to_string(),
        e.kind().keyword().to_string(),
        e.to_string(),
        e.masked().to_string(),
    ]
}

/// For one document: whenever the preflight accepts it, `from_bson` does too with the same
/// depth, the in-place view is exactly the decoded value, its `_id` is stored alike, its
/// fingerprints, field hashes and key hashes (`_id`, fields, subfields, array elements) are
/// equal, and each validator answers alike on both, with the same errors (instance paths,
/// schema paths, keywords, messages) in the same order. `Err` describes the first difference.
///
/// # Errors
///
/// The first disagreement found.
pub fn agreement(
    bytes: &[u8],
    validators: &[(Validator, Validator<RawBson>)],
) -> Result<(), String> {
    let Some(checked) = preflight(bytes) else {
        return Ok(());
    };
    let depth = checked.depth();
    let d = from_bson(bytes).map_err(|e| format!("preflight accepted, from_bson refused: {e}"))?;
    if d.depth != depth {
        return Err(format!("depth {depth} in place, {} decoded", d.depth));
    }
    let text = |v: &Value| serde_json::to_string(v).unwrap_or_default();
    let view = to_value(checked);
    if text(&view) != text(&d.value) {
        return Err(format!(
            "view differs:\n  raw     {}\n  decoded {}",
            text(&view),
            text(&d.value)
        ));
    }
    let root = RawBson::root(checked);
    let stored = crate::value::member::<RawBson>(&root, "_id").map(super::stored_id);
    if stored != d.value.get("_id").map(StoredId::of) {
        return Err(format!("_id stored as {stored:?} in place"));
    }
    let fp = crate::value::node_fingerprint::<RawBson>(&root);
    if fp != crate::value::fingerprint(&d.value) {
        return Err(format!(
            "fingerprint {fp:x?} in place differs from the decoded one"
        ));
    }
    let fields = crate::reconcile::node_field_hashes::<RawBson>(&root);
    if fields != crate::reconcile::field_hashes(&d.value) {
        return Err(format!("field hashes {fields:x?} in place differ"));
    }
    for path in key_paths(&d.value) {
        let want: Vec<u128> = crate::value::values_at(&d.value, &path)
            .into_iter()
            .map(crate::value::key_hash)
            .collect();
        let got: Vec<u128> = crate::value::nodes_at::<RawBson>(root, &path)
            .iter()
            .map(crate::value::node_key_hash::<RawBson>)
            .collect();
        if got != want {
            return Err(format!(
                "key hashes at {path} differ: {got:x?} in place, {want:x?} decoded"
            ));
        }
    }
    for (i, (serde, raw)) in validators.iter().enumerate() {
        let (a, b) = (serde.is_valid(&d.value), raw.is_valid(root));
        if a != b {
            return Err(format!("schema #{i}: is_valid {a} decoded, {b} in place"));
        }
        let ea: Vec<[String; 5]> = serde
            .iter_errors(&d.value)
            .map(|e| error_facts(&e))
            .collect();
        let eb: Vec<[String; 5]> = raw.iter_errors(root).map(|e| error_facts(&e)).collect();
        if ea != eb {
            return Err(format!(
                "schema #{i}: errors differ\n  decoded  {ea:?}\n  in place {eb:?}"
            ));
        }
        if a != ea.is_empty() {
            return Err(format!("schema #{i}: is_valid {a} with errors {ea:?}"));
        }
    }
    Ok(())
}

/// Dotted paths to compare key hashes at: every top-level field, every field of an embedded
/// document or of the documents in an array (one level down), and an array index.
fn key_paths(doc: &Value) -> Vec<String> {
    let mut paths = vec!["_id".to_string(), "missing".to_string()];
    for (k, v) in doc.as_object().into_iter().flatten() {
        paths.push(k.clone());
        let inner: Vec<&Value> = match v {
            Value::Array(items) => {
                paths.push(format!("{k}.0"));
                items.iter().collect()
            }
            other => vec![other],
        };
        for m in inner.iter().filter_map(|x| x.as_object()) {
            for sub in m.keys() {
                let p = format!("{k}.{sub}");
                if !paths.contains(&p) {
                    paths.push(p);
                }
            }
        }
    }
    paths
}
