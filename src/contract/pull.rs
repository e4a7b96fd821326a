//! `docsweep contract pull`: a collection's server-side `$jsonSchema` validator translated
//! into a JSON Schema (draft 2020-12) over **relaxed Extended JSON** — the form docsweep
//! validates — and written, with the collection's indexes, as a new contract version.
//!
//! MongoDB's `$jsonSchema` is a draft-4 subset plus `bsonType`. Every BSON type becomes the
//! shape its relaxed Extended JSON takes (`objectId` → `{"$oid": "…"}`, `date` →
//! `{"$date": …}`, `int`/`long` → integer, …); the repeated wrapper shapes live in `$defs`.
//! Draft-4 spellings become their 2020-12 equivalents (array `items` → `prefixItems`,
//! `additionalItems` → `items`, boolean `exclusiveMinimum` → numeric, `dependencies` →
//! `dependentRequired`/`dependentSchemas`). See `docs/contract-pull.md` for the table and
//! the few places where JSON cannot express a BSON distinction.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use serde_json::{json, Map, Value};

use super::{ContractError, IndexSpec, KeyDirection};

/// The `$schema` of every schema docsweep writes.
pub const DRAFT_2020_12: &str = "https://json-schema.org/draft/2020-12/schema";

/// A validator that cannot be translated (MongoDB itself would not have accepted it).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("$jsonSchema{at}: {message}", at = if pointer.is_empty() { String::new() } else { format!(" at {pointer}") })]
pub struct TranslateError {
    /// JSON pointer into the `$jsonSchema` document.
    pub pointer: String,
    pub message: String,
}

/// A translated validator: the schema to write and what the user should know about it.
#[derive(Debug, Clone, PartialEq)]
pub struct Translation {
    pub schema: Value,
    /// Things the schema does not carry over (no validator, query operators, …).
    pub notes: Vec<String>,
}

/// The schema written for a collection without a `$jsonSchema` validator: any document.
pub fn permissive_schema() -> Value {
    json!({ "$schema": DRAFT_2020_12, "type": "object" })
}

/// Translates a collection's `options` (from `listCollections`, as relaxed Extended JSON):
/// `options.validator.$jsonSchema` becomes the schema; no validator gives the permissive
/// schema and a note.
pub fn translate_options(options: Option<&Value>) -> Result<Translation, TranslateError> {
    let mut notes = Vec::new();
    let validator = options.and_then(|o| o.get("validator"));
    let level = options
        .and_then(|o| o.get("validationLevel"))
        .and_then(Value::as_str);
    let action = options
        .and_then(|o| o.get("validationAction"))
        .and_then(Value::as_str);
    let Some(validator) = validator.and_then(Value::as_object) else {
        notes.push(
            "the collection has no validator: wrote a permissive schema (any document); \
             edit it to describe the documents"
                .into(),
        );
        return Ok(Translation {
            schema: permissive_schema(),
            notes,
        });
    };
    let others: Vec<&str> = validator
        .keys()
        .map(String::as_str)
        .filter(|k| *k != "$jsonSchema")
        .collect();
    let Some(js) = validator.get("$jsonSchema") else {
        notes.push(format!(
            "the validator has no $jsonSchema, only query conditions ({}) that a JSON Schema \
             does not express: wrote a permissive schema (any document)",
            others.join(", ")
        ));
        return Ok(Translation {
            schema: permissive_schema(),
            notes,
        });
    };
    if !others.is_empty() {
        notes.push(format!(
            "the validator also has query conditions ({}) besides $jsonSchema: \
             they are not part of the written schema",
            others.join(", ")
        ));
    }
    match level {
        Some("off") => notes.push(
            "validationLevel is \"off\": the server does not enforce this validator, \
             existing documents may not match it"
                .into(),
        ),
        Some("moderate") => notes.push(
            "validationLevel is \"moderate\": documents that were invalid before the validator \
             was set may not match it"
                .into(),
        ),
        _ => {}
    }
    if action == Some("warn") {
        notes.push(
            "validationAction is \"warn\": the server accepts documents that fail this \
             validator"
                .into(),
        );
    }
    let mut t = translate(js)?;
    t.notes.splice(0..0, notes);
    Ok(t)
}

/// Translates one `$jsonSchema` document (relaxed Extended JSON) into a draft 2020-12 schema
/// over relaxed Extended JSON. The result is meta-validated and compiled.
pub fn translate(json_schema: &Value) -> Result<Translation, TranslateError> {
    let mut t = Translator::default();
    let body = t.node(json_schema, "", true)?;
    let Value::Object(body) = body else {
        unreachable!("node() returns objects")
    };
    let mut root = Map::new();
    root.insert("$schema".into(), Value::from(DRAFT_2020_12));
    root.extend(body);
    if !t.used.is_empty() {
        let mut defs = Map::new();
        // dbPointer refers to objectId.
        if t.used.contains("dbPointer") {
            t.used.insert("objectId");
        }
        for (name, _) in DEFS {
            if t.used.contains(name) {
                defs.insert((*name).into(), def(name));
            }
        }
        root.insert("$defs".into(), Value::Object(defs));
    }
    let schema = Value::Object(root);
    if let Err(e) = jsonschema::draft202012::meta::validate(&schema) {
        return Err(TranslateError {
            pointer: e.instance_path().as_str().to_string(),
            message: format!("the translated schema is not valid draft 2020-12: {e}"),
        });
    }
    if let Err(e) = jsonschema::draft202012::options()
        .should_validate_formats(true)
        .build(&schema)
    {
        return Err(TranslateError {
            pointer: String::new(),
            message: format!("the translated schema cannot be compiled: {e}"),
        });
    }
    Ok(Translation {
        schema,
        notes: t.notes,
    })
}

/// The `$defs` docsweep may emit, in the order they are written, with a description.
const DEFS: &[(&str, &str)] = &[
    ("objectId", "ObjectId"),
    ("date", "Date"),
    ("nonFiniteDouble", "Double NaN or ±Infinity"),
    ("decimal", "Decimal128"),
    ("binData", "Binary data"),
    (
        "encrypted",
        "Binary data of subtype 6 (client-side field level encryption)",
    ),
    ("regex", "Regular expression"),
    ("timestamp", "Timestamp"),
    ("javascript", "JavaScript code"),
    ("javascriptWithScope", "JavaScript code with scope"),
    ("symbol", "Symbol"),
    ("undefined", "Undefined"),
    ("minKey", "MinKey"),
    ("maxKey", "MaxKey"),
    ("dbPointer", "DBPointer"),
    (
        "extendedJsonValue",
        "A BSON value that relaxed Extended JSON writes as a $-keyed object ({\"$oid\": …}, \
         {\"$date\": …}, …): not an embedded document",
    ),
];

/// `{"type": "object", "properties": {key: inner}, "required": [key], "additionalProperties": false}`
fn wrapper(key: &str, inner: Value) -> Value {
    let mut props = Map::new();
    props.insert(key.into(), inner);
    json!({
        "type": "object",
        "properties": props,
        "required": [key],
        "additionalProperties": false
    })
}

fn closed(props: Value, required: &[&str]) -> Value {
    json!({
        "type": "object",
        "properties": props,
        "required": required,
        "additionalProperties": false
    })
}

/// The relaxed Extended JSON shape of one BSON type, as a `$defs` entry.
fn def(name: &str) -> Value {
    let description = DEFS
        .iter()
        .find(|(n, _)| *n == name)
        .map(|(_, d)| *d)
        .unwrap_or_default();
    let mut v = match name {
        "objectId" => wrapper(
            "$oid",
            json!({"type": "string", "pattern": "^[0-9a-f]{24}$"}),
        ),
        "date" => wrapper(
            "$date",
            json!({"anyOf": [
                {"type": "string", "format": "date-time"},
                wrapper("$numberLong", json!({"type": "string", "pattern": "^-?[0-9]+$"}))
            ]}),
        ),
        "nonFiniteDouble" => wrapper(
            "$numberDouble",
            json!({"enum": ["NaN", "Infinity", "-Infinity"]}),
        ),
        "decimal" => wrapper("$numberDecimal", json!({"type": "string"})),
        "binData" => wrapper(
            "$binary",
            closed(
                json!({"base64": {"type": "string"}, "subType": {"type": "string", "pattern": "^[0-9a-f]{2}$"}}),
                &["base64", "subType"],
            ),
        ),
        "encrypted" => wrapper(
            "$binary",
            closed(
                json!({"base64": {"type": "string"}, "subType": {"const": "06"}}),
                &["base64", "subType"],
            ),
        ),
        "regex" => wrapper(
            "$regularExpression",
            closed(
                json!({"pattern": {"type": "string"}, "options": {"type": "string"}}),
                &["pattern", "options"],
            ),
        ),
        "timestamp" => {
            let u32_ = json!({"type": "integer", "minimum": 0, "maximum": 4294967295u64});
            wrapper(
                "$timestamp",
                closed(json!({"t": u32_, "i": u32_}), &["t", "i"]),
            )
        }
        "javascript" => wrapper("$code", json!({"type": "string"})),
        "javascriptWithScope" => closed(
            json!({"$code": {"type": "string"}, "$scope": {"type": "object"}}),
            &["$code", "$scope"],
        ),
        "symbol" => wrapper("$symbol", json!({"type": "string"})),
        "undefined" => wrapper("$undefined", json!({"const": true})),
        "minKey" => wrapper("$minKey", json!({"const": 1})),
        "maxKey" => wrapper("$maxKey", json!({"const": 1})),
        "dbPointer" => wrapper(
            "$dbPointer",
            closed(
                json!({"$ref": {"type": "string"}, "$id": {"$ref": "#/$defs/objectId"}}),
                &["$ref", "$id"],
            ),
        ),
        "extendedJsonValue" => json!({
            "type": "object",
            "minProperties": 1,
            "maxProperties": 2,
            "propertyNames": {"enum": [
                "$oid", "$date", "$numberInt", "$numberLong", "$numberDouble", "$numberDecimal",
                "$binary", "$regularExpression", "$timestamp", "$code", "$scope", "$symbol",
                "$undefined", "$minKey", "$maxKey", "$dbPointer"
            ]}
        }),
        other => unreachable!("no $defs entry {other}"),
    };
    if let Value::Object(m) = &mut v {
        let mut with_desc = Map::new();
        with_desc.insert("description".into(), Value::from(description));
        with_desc.extend(std::mem::take(m));
        *m = with_desc;
    }
    v
}

#[derive(Default)]
struct Translator {
    used: BTreeSet<&'static str>,
    notes: Vec<String>,
}

fn fail<T>(pointer: &str, message: impl Into<String>) -> Result<T, TranslateError> {
    Err(TranslateError {
        pointer: pointer.to_string(),
        message: message.into(),
    })
}

/// JSON pointer escaping of one token.
fn token(s: &str) -> String {
    s.replace('~', "~0").replace('/', "~1")
}

/// The constraints of a set of BSON types, in relaxed Extended JSON.
struct TypeSet {
    json: Vec<&'static str>,
    refs: Vec<&'static str>,
    object: bool,
}

impl Translator {
    fn node(&mut self, s: &Value, at: &str, root: bool) -> Result<Value, TranslateError> {
        let Some(s) = s.as_object() else {
            return fail(at, "a schema must be a document");
        };
        let mut out = Map::new();
        // Keywords that collide with ones already set go into allOf (kept in order).
        let mut all_of: Vec<Value> = Vec::new();
        let excl = |k: &str| s.get(k) == Some(&Value::Bool(true));
        if s.contains_key("type") && s.contains_key("bsonType") {
            return fail(at, "`type` and `bsonType` cannot both be given");
        }
        for (k, v) in s {
            let here = format!("{at}/{}", token(k));
            match k.as_str() {
                "bsonType" | "type" => {
                    let names: Vec<&str> = match v {
                        Value::String(n) => vec![n.as_str()],
                        Value::Array(items) if !items.is_empty() => items
                            .iter()
                            .map(|i| i.as_str().ok_or(()))
                            .collect::<Result<_, _>>()
                            .or_else(|_| fail(&here, "type names must be strings"))?,
                        _ => {
                            return fail(&here, "must be a type name or a non-empty array of them")
                        }
                    };
                    let set = self.types(&names, k == "type", &here)?;
                    for (kw, val) in self.type_keywords(set, root) {
                        put(&mut out, &mut all_of, kw, val);
                    }
                }
                "properties" | "patternProperties" | "dependentSchemas" => {
                    let Some(props) = v.as_object() else {
                        return fail(&here, "must be a document");
                    };
                    let mut m = Map::new();
                    for (name, sub) in props {
                        m.insert(
                            name.clone(),
                            self.node(sub, &format!("{here}/{}", token(name)), false)?,
                        );
                    }
                    put(&mut out, &mut all_of, k, Value::Object(m));
                }
                "additionalProperties" => {
                    let val = match v {
                        Value::Bool(b) => Value::Bool(*b),
                        _ => self.node(v, &here, false)?,
                    };
                    put(&mut out, &mut all_of, k, val);
                }
                "items" => match v {
                    Value::Array(list) => {
                        let mut items = Vec::with_capacity(list.len());
                        for (i, sub) in list.iter().enumerate() {
                            items.push(self.node(sub, &format!("{here}/{i}"), false)?);
                        }
                        put(&mut out, &mut all_of, "prefixItems", Value::Array(items));
                        // Draft 4: additionalItems applies only after an array of items.
                        match s.get("additionalItems") {
                            None => {}
                            Some(Value::Bool(b)) => {
                                put(&mut out, &mut all_of, "items", Value::Bool(*b))
                            }
                            Some(sub) => {
                                let t = self.node(sub, &format!("{at}/additionalItems"), false)?;
                                put(&mut out, &mut all_of, "items", t);
                            }
                        }
                    }
                    _ => {
                        let t = self.node(v, &here, false)?;
                        put(&mut out, &mut all_of, "items", t);
                    }
                },
                // Handled with `items`; without an array of items it has no effect.
                "additionalItems" => {}
                "anyOf" | "allOf" | "oneOf" => {
                    let Some(list) = v.as_array().filter(|l| !l.is_empty()) else {
                        return fail(&here, "must be a non-empty array of schemas");
                    };
                    let mut subs = Vec::with_capacity(list.len());
                    for (i, sub) in list.iter().enumerate() {
                        subs.push(self.node(sub, &format!("{here}/{i}"), false)?);
                    }
                    if k == "allOf" {
                        all_of.extend(subs);
                    } else {
                        put(&mut out, &mut all_of, k, Value::Array(subs));
                    }
                }
                "not" => {
                    let t = self.node(v, &here, false)?;
                    put(&mut out, &mut all_of, k, t);
                }
                "dependencies" => {
                    let Some(deps) = v.as_object() else {
                        return fail(&here, "must be a document");
                    };
                    let mut required = Map::new();
                    let mut schemas = Map::new();
                    for (name, dep) in deps {
                        match dep {
                            Value::Array(names) => {
                                if !names.iter().all(Value::is_string) {
                                    return fail(
                                        &format!("{here}/{}", token(name)),
                                        "property dependencies must be strings",
                                    );
                                }
                                required.insert(name.clone(), dep.clone());
                            }
                            _ => {
                                let t =
                                    self.node(dep, &format!("{here}/{}", token(name)), false)?;
                                schemas.insert(name.clone(), t);
                            }
                        }
                    }
                    if !required.is_empty() {
                        put(
                            &mut out,
                            &mut all_of,
                            "dependentRequired",
                            Value::Object(required),
                        );
                    }
                    if !schemas.is_empty() {
                        put(
                            &mut out,
                            &mut all_of,
                            "dependentSchemas",
                            Value::Object(schemas),
                        );
                    }
                }
                "minimum" | "maximum" => {
                    let n = number(v, &here)?;
                    let kw = match (
                        k.as_str(),
                        excl("exclusiveMinimum"),
                        excl("exclusiveMaximum"),
                    ) {
                        ("minimum", true, _) => "exclusiveMinimum",
                        ("maximum", _, true) => "exclusiveMaximum",
                        _ => k.as_str(),
                    };
                    put(&mut out, &mut all_of, kw, n);
                }
                "exclusiveMinimum" | "exclusiveMaximum" => match v {
                    // Draft 4: a flag on minimum/maximum, handled there.
                    Value::Bool(_) => {}
                    _ => {
                        let n = number(v, &here)?;
                        put(&mut out, &mut all_of, k, n);
                    }
                },
                "multipleOf" => {
                    let n = number(v, &here)?;
                    if n.as_f64().is_none_or(|x| x <= 0.0) {
                        return fail(&here, "must be a number greater than 0");
                    }
                    put(&mut out, &mut all_of, k, n);
                }
                "minLength" | "maxLength" | "minItems" | "maxItems" | "minProperties"
                | "maxProperties" => {
                    let n = number(v, &here)?;
                    let Some(x) = n.as_f64().filter(|x| *x >= 0.0 && x.fract() == 0.0) else {
                        return fail(&here, "must be a non-negative whole number");
                    };
                    put(&mut out, &mut all_of, k, Value::from(x as u64));
                }
                "required" => {
                    if !v.as_array().is_some_and(|a| a.iter().all(Value::is_string)) {
                        return fail(&here, "must be an array of field names");
                    }
                    put(&mut out, &mut all_of, k, v.clone());
                }
                "enum" => {
                    if !v.is_array() {
                        return fail(&here, "must be an array");
                    }
                    put(&mut out, &mut all_of, k, v.clone());
                }
                "encrypt" => {
                    // Client-side field level encryption: the stored value is BinData subtype 6.
                    self.used.insert("encrypted");
                    put(
                        &mut out,
                        &mut all_of,
                        "$ref",
                        Value::from("#/$defs/encrypted"),
                    );
                }
                // uniqueItems, pattern, title, description and anything else: as is.
                _ => {
                    if !matches!(
                        k.as_str(),
                        "uniqueItems" | "pattern" | "title" | "description"
                    ) {
                        let place = if at.is_empty() { "/" } else { at };
                        self.notes.push(format!(
                            "$jsonSchema at {place}: keyword `{k}` is not one MongoDB documents; \
                             kept as is"
                        ));
                    }
                    put(&mut out, &mut all_of, k, v.clone());
                }
            }
        }
        if !all_of.is_empty() {
            out.insert("allOf".into(), Value::Array(all_of));
        }
        Ok(Value::Object(out))
    }

    /// The BSON types named by `bsonType` (or by `type`, with JSON type names).
    fn types(
        &mut self,
        names: &[&str],
        json_names: bool,
        at: &str,
    ) -> Result<TypeSet, TranslateError> {
        let mut set = TypeSet {
            json: Vec::new(),
            refs: Vec::new(),
            object: false,
        };
        for name in names {
            let (json, refs): (&[&'static str], &[&'static str]) = match (*name, json_names) {
                ("double", false) => (&["number"], &["nonFiniteDouble"]),
                ("string", _) => (&["string"], &[]),
                ("object", _) => (&["object"], &[]),
                ("array", _) => (&["array"], &[]),
                ("binData", false) => (&[], &["binData"]),
                ("undefined", false) => (&[], &["undefined"]),
                ("objectId", false) => (&[], &["objectId"]),
                ("bool", false) | ("boolean", true) => (&["boolean"], &[]),
                ("date", false) => (&[], &["date"]),
                ("null", _) => (&["null"], &[]),
                ("regex", false) => (&[], &["regex"]),
                ("dbPointer", false) => (&[], &["dbPointer"]),
                ("javascript", false) => (&[], &["javascript"]),
                ("symbol", false) => (&[], &["symbol"]),
                ("javascriptWithScope", false) => (&[], &["javascriptWithScope"]),
                ("int", false) | ("long", false) | ("integer", true) => (&["integer"], &[]),
                ("timestamp", false) => (&[], &["timestamp"]),
                ("decimal", false) => (&[], &["decimal"]),
                ("number", _) => (&["number"], &["nonFiniteDouble", "decimal"]),
                ("minKey", false) => (&[], &["minKey"]),
                ("maxKey", false) => (&[], &["maxKey"]),
                (other, true) => {
                    return fail(
                        at,
                        format!(
                            "unknown type {other:?} (type takes JSON types: object, array, \
                             number, boolean, string, null; use bsonType for BSON types)"
                        ),
                    )
                }
                (other, false) => return fail(at, format!("unknown bsonType alias {other:?}")),
            };
            for j in json {
                if !set.json.contains(j) {
                    set.json.push(j);
                }
            }
            for r in refs {
                if !set.refs.contains(r) {
                    set.refs.push(r);
                }
            }
            set.object |= *name == "object";
        }
        if set.json.contains(&"number") {
            set.json.retain(|j| *j != "integer");
        }
        for r in &set.refs {
            self.used.insert(r);
        }
        Ok(set)
    }

    /// The keywords that express a type set: `type` alone when JSON types suffice, a `$ref`
    /// for one wrapper type, `anyOf` otherwise. An embedded document excludes the
    /// `{"$oid": …}`-style objects of other BSON types (but the root is always a document).
    fn type_keywords(&mut self, set: TypeSet, root: bool) -> Vec<(&'static str, Value)> {
        let json_type = match set.json.as_slice() {
            [] => None,
            [one] => Some(Value::from(*one)),
            many => Some(Value::from(many.to_vec())),
        };
        let not_wrapper = set.object && !root;
        if not_wrapper {
            self.used.insert("extendedJsonValue");
        }
        let not = || json!({"$ref": "#/$defs/extendedJsonValue"});
        let refs: Vec<Value> = set
            .refs
            .iter()
            .map(|r| json!({ "$ref": format!("#/$defs/{r}") }))
            .collect();
        match (json_type, refs.len()) {
            (Some(t), 0) => {
                let mut kw = vec![("type", t)];
                if not_wrapper {
                    kw.push(("not", not()));
                }
                kw
            }
            (None, 1) => vec![("$ref", refs[0]["$ref"].clone())],
            (t, _) => {
                let mut alts = Vec::new();
                if let Some(t) = t {
                    let mut a = Map::new();
                    a.insert("type".into(), t);
                    if not_wrapper {
                        a.insert("not".into(), not());
                    }
                    alts.push(Value::Object(a));
                }
                alts.extend(refs);
                vec![("anyOf", Value::Array(alts))]
            }
        }
    }
}

/// Sets `k` in `out`, or when it is already set (two sources of `anyOf`, `not`, …) adds
/// `{k: v}` to `allOf` so that both apply.
fn put(out: &mut Map<String, Value>, all_of: &mut Vec<Value>, k: &str, v: Value) {
    if out.contains_key(k) {
        let mut m = Map::new();
        m.insert(k.into(), v);
        all_of.push(Value::Object(m));
    } else {
        out.insert(k.into(), v);
    }
}

/// A numeric keyword value: a JSON number, or a `$numberDecimal`/`$numberDouble`/
/// `$numberLong` wrapper that relaxed Extended JSON keeps for Decimal128 and non-finite doubles.
fn number(v: &Value, at: &str) -> Result<Value, TranslateError> {
    if v.is_number() {
        return Ok(v.clone());
    }
    let text = v.as_object().filter(|o| o.len() == 1).and_then(|o| {
        [
            "$numberDecimal",
            "$numberDouble",
            "$numberLong",
            "$numberInt",
        ]
        .iter()
        .find_map(|k| o.get(*k))
        .and_then(Value::as_str)
    });
    if let Some(text) = text {
        if let Ok(i) = text.parse::<i64>() {
            return Ok(Value::from(i));
        }
        if let Some(n) = text
            .parse::<f64>()
            .ok()
            .and_then(serde_json::Number::from_f64)
        {
            return Ok(Value::Number(n));
        }
    }
    fail(at, "must be a finite number")
}

// ------------------------------------------------------------------ writing

/// Where a pulled version goes: computed (and checked) before the server is read.
#[derive(Debug, Clone)]
pub struct Prepared {
    pub collection: String,
    pub dir: PathBuf,
    pub contract_path: PathBuf,
    pub schema_path: PathBuf,
    pub version: u32,
    /// The existing contract.toml text, `None` when it is to be created.
    existing: Option<String>,
    /// The existing contract's target (the new version when created).
    pub target: u32,
}

/// What [`write`] did.
#[derive(Debug, Clone)]
pub struct Written {
    pub version: u32,
    pub schema_path: PathBuf,
    pub contract_path: PathBuf,
    /// contract.toml was created (rather than appended to).
    pub created: bool,
    /// The contract's target version after the write.
    pub target: u32,
    pub indexes: usize,
}

fn invalid(path: &Path, message: impl Into<String>) -> ContractError {
    ContractError::Invalid {
        path: path.to_path_buf(),
        message: message.into(),
    }
}

/// Decides which version to write for `collection` under `schemas_dir` (`version`, or the
/// highest existing one + 1, or 1) and refuses to overwrite an existing version or file.
pub fn prepare(
    schemas_dir: &Path,
    collection: &str,
    version: Option<u32>,
) -> Result<Prepared, ContractError> {
    if collection.is_empty()
        || collection.contains(['/', '\\', '\0'])
        || collection == "."
        || collection == ".."
        || collection.starts_with("system.")
    {
        return Err(ContractError::Directory {
            path: schemas_dir.to_path_buf(),
            message: format!("cannot hold a contract for a collection named {collection:?}"),
        });
    }
    let dir = schemas_dir.join(collection);
    let contract_path = dir.join("contract.toml");
    let (existing, declared, target) = if contract_path.exists() {
        let text = std::fs::read_to_string(&contract_path).map_err(|source| ContractError::Io {
            path: contract_path.clone(),
            source,
        })?;
        let table: toml::Table = toml::from_str(&text).map_err(|e| ContractError::Toml {
            path: contract_path.clone(),
            message: e.to_string().trim_end().to_string(),
        })?;
        match table.get("collection").and_then(toml::Value::as_str) {
            Some(c) if c == collection => {}
            Some(c) => {
                return Err(invalid(
                    &contract_path,
                    format!("is the contract of collection {c:?}, not {collection:?}"),
                ))
            }
            None => return Err(invalid(&contract_path, "has no `collection`")),
        }
        let target = table
            .get("target")
            .and_then(toml::Value::as_integer)
            .and_then(|t| u32::try_from(t).ok())
            .ok_or_else(|| invalid(&contract_path, "has no valid `target`"))?;
        let mut declared = Vec::new();
        if let Some(vs) = table.get("versions") {
            let arr = vs
                .as_array()
                .ok_or_else(|| invalid(&contract_path, "`versions` must be an array"))?;
            for v in arr {
                let n = v
                    .get("version")
                    .and_then(toml::Value::as_integer)
                    .and_then(|n| u32::try_from(n).ok())
                    .ok_or_else(|| {
                        invalid(
                            &contract_path,
                            "a [[versions]] entry has no valid `version`",
                        )
                    })?;
                let schema = v
                    .get("schema")
                    .and_then(toml::Value::as_str)
                    .map(String::from);
                declared.push((n, schema));
            }
        }
        (Some(text), declared, Some(target))
    } else {
        (None, Vec::new(), None)
    };
    let highest = declared.iter().map(|(n, _)| *n).max();
    let version = match (version, highest) {
        (Some(v), _) => v,
        (None, Some(h)) => h
            .checked_add(1)
            .ok_or_else(|| invalid(&contract_path, "no version number left"))?,
        (None, None) => 1,
    };
    if declared.iter().any(|(n, _)| *n == version) {
        return Err(invalid(
            &contract_path,
            format!(
                "version {version} already exists; refusing to overwrite it \
                 (pull as another version with --version N)"
            ),
        ));
    }
    let file = format!("v{version}.schema.json");
    if let Some((n, _)) = declared
        .iter()
        .find(|(_, s)| s.as_deref() == Some(file.as_str()))
    {
        return Err(invalid(
            &contract_path,
            format!("version {n} already uses {file}; refusing to overwrite it"),
        ));
    }
    let schema_path = dir.join(&file);
    if schema_path.exists() {
        return Err(invalid(
            &schema_path,
            "already exists; refusing to overwrite it (remove it or pull with --version N)",
        ));
    }
    Ok(Prepared {
        collection: collection.to_string(),
        dir,
        contract_path,
        schema_path,
        version,
        target: target.unwrap_or(version),
        existing,
    })
}

/// A TOML key: bare when it can be, else a quoted string.
fn toml_key(k: &str) -> String {
    if !k.is_empty()
        && k.chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
    {
        k.to_string()
    } else {
        toml_string(k)
    }
}

/// A TOML basic string.
fn toml_string(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\t' => out.push_str("\\t"),
            '\r' => out.push_str("\\r"),
            c if c.is_control() => out.push_str(&format!("\\u{:04X}", c as u32)),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// One index as a contract entry: `{ key = { status = 1, created_at = -1 }, unique = true, name = "…" }`.
pub fn index_entry(ix: &IndexSpec) -> String {
    let fields: Vec<String> = ix
        .key
        .0
        .iter()
        .map(|(f, d)| {
            let d = match d {
                KeyDirection::Asc => "1".to_string(),
                KeyDirection::Desc => "-1".to_string(),
                KeyDirection::Special(s) => toml_string(s),
            };
            format!("{} = {d}", toml_key(f))
        })
        .collect();
    let mut s = format!("{{ key = {{ {} }}", fields.join(", "));
    if ix.unique {
        s.push_str(", unique = true");
    }
    if ix.sparse {
        s.push_str(", sparse = true");
    }
    if let Some(n) = &ix.name {
        s.push_str(&format!(", name = {}", toml_string(n)));
    }
    s.push_str(" }");
    s
}

/// The `[[versions]]` entry for a pulled version (the implicit `_id_` index left out).
pub fn version_entry(version: u32, indexes: &[IndexSpec], comment: Option<&str>) -> String {
    let mut s = String::new();
    if let Some(c) = comment {
        for line in c.lines() {
            s.push_str(&format!("# {line}\n"));
        }
    }
    s.push_str(&format!(
        "[[versions]]\nversion = {version}\nschema = {}\n",
        toml_string(&format!("v{version}.schema.json"))
    ));
    let entries: Vec<String> = indexes
        .iter()
        .filter(|ix| !is_id_index(ix))
        .map(index_entry)
        .collect();
    if entries.is_empty() {
        s.push_str("indexes = []\n");
    } else {
        s.push_str("indexes = [\n");
        for e in entries {
            s.push_str(&format!("  {e},\n"));
        }
        s.push_str("]\n");
    }
    s
}

/// The implicit `_id_` index.
pub fn is_id_index(ix: &IndexSpec) -> bool {
    ix.name.as_deref() == Some("_id_") || (ix.key.is_id_only() && !ix.unique && ix.name.is_none())
}

/// Writes the schema file and the contract entry (each atomically), then loads the contract;
/// if it does not load, both files are put back as they were.
pub fn write(
    p: &Prepared,
    schema: &Value,
    indexes: &[IndexSpec],
    comment: Option<&str>,
) -> Result<Written, ContractError> {
    let entry = version_entry(p.version, indexes, comment);
    let text = match &p.existing {
        Some(old) => {
            let mut t = old.trim_end().to_string();
            t.push_str("\n\n");
            t.push_str(&entry);
            t
        }
        None => format!(
            "collection = {}\ntarget = {}\n\n{entry}",
            toml_string(&p.collection),
            p.version
        ),
    };
    if let Err(e) = toml::from_str::<toml::Table>(&text) {
        return Err(invalid(
            &p.contract_path,
            format!(
                "cannot append a [[versions]] entry to it ({}); add this by hand:\n{entry}",
                e.to_string().trim_end()
            ),
        ));
    }
    // Re-checked: another process may have written it since prepare().
    if p.schema_path.exists() {
        return Err(invalid(
            &p.schema_path,
            "already exists; refusing to overwrite it",
        ));
    }
    let io = |path: &Path| {
        let path = path.to_path_buf();
        move |source| ContractError::Io { path, source }
    };
    std::fs::create_dir_all(&p.dir).map_err(io(&p.dir))?;
    let mut json = serde_json::to_string_pretty(schema).expect("a JSON value serialises");
    json.push('\n');
    crate::os::write_atomic(&p.schema_path, json.as_bytes(), crate::os::Access::Shared)
        .map_err(io(&p.schema_path))?;
    let undo = || {
        let _ = std::fs::remove_file(&p.schema_path);
        match &p.existing {
            Some(old) => {
                let _ = crate::os::write_atomic(
                    &p.contract_path,
                    old.as_bytes(),
                    crate::os::Access::Shared,
                );
            }
            None => {
                let _ = std::fs::remove_file(&p.contract_path);
            }
        }
    };
    if let Err(e) =
        crate::os::write_atomic(&p.contract_path, text.as_bytes(), crate::os::Access::Shared)
    {
        undo();
        return Err(io(&p.contract_path)(e));
    }
    match super::load(&p.contract_path) {
        Ok(c) => Ok(Written {
            version: p.version,
            schema_path: p.schema_path.clone(),
            contract_path: p.contract_path.clone(),
            created: p.existing.is_none(),
            target: c.target,
            indexes: c.version(p.version).map_or(0, |v| v.indexes.len()),
        }),
        Err(e) => {
            undo();
            Err(e)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use bson::spec::BinarySubtype;
    use bson::{doc, Bson, Document};

    /// A BSON document as docsweep sees it: relaxed Extended JSON.
    fn relaxed(d: &Document) -> Value {
        crate::value::from_bson(&d.to_vec().unwrap()).unwrap().value
    }

    /// The schema `contract pull` writes for a collection with this validator.
    fn pulled(validator: Document) -> Translation {
        translate_options(Some(&relaxed(&doc! {"validator": validator}))).unwrap()
    }

    fn compile(schema: &Value) -> jsonschema::Validator {
        jsonschema::draft202012::meta::validate(schema).unwrap();
        jsonschema::draft202012::options()
            .should_validate_formats(true)
            .build(schema)
            .unwrap()
    }

    struct Case {
        name: &'static str,
        validator: Document,
        /// Documents MongoDB inserts.
        accept: Vec<Document>,
        /// Documents MongoDB rejects ("Document failed validation").
        reject: Vec<Document>,
    }

    fn oid() -> bson::oid::ObjectId {
        bson::oid::ObjectId::parse_str("65a1b2c3d4e5f60718293a4b").unwrap()
    }

    fn dec(s: &str) -> Bson {
        Bson::Decimal128(s.parse().unwrap())
    }

    fn cases() -> Vec<Case> {
        // MongoDB manual, "Specify JSON Schema Validation": the students collection.
        let students = doc! {"$jsonSchema": {
            "bsonType": "object",
            "title": "Student Object Validation",
            "required": ["address", "major", "name", "year"],
            "properties": {
                "name": {"bsonType": "string", "description": "'name' must be a string and is required"},
                "year": {"bsonType": "int", "minimum": 2017, "maximum": 3017,
                         "description": "'year' must be an integer in [ 2017, 3017 ] and is required"},
                "major": {"enum": ["Math", "English", "Computer Science", "History", Bson::Null],
                          "description": "can only be one of the enum values and is required"},
                "gpa": {"bsonType": ["double"], "description": "'gpa' must be a double if the field exists"},
                "address": {
                    "bsonType": "object",
                    "required": ["city"],
                    "properties": {
                        "street": {"bsonType": "string", "description": "must be a string if the field exists"},
                        "city": {"bsonType": "string", "description": "must be a string and is required"}
                    }
                }
            }
        }};
        let alice = doc! {
            "_id": oid(), "name": "Alice", "year": 2019_i32, "major": "History", "gpa": 3.5,
            "address": {"city": "NYC", "street": "33rd Street"}
        };
        let with = |k: &str, v: Bson| {
            let mut d = alice.clone();
            d.insert(k, v);
            d
        };
        let without = |k: &str| {
            let mut d = alice.clone();
            d.remove(k);
            d
        };
        vec![
            Case {
                name: "students",
                validator: students,
                accept: vec![
                    alice.clone(),
                    without("gpa"),
                    with("major", Bson::Null),
                    with("year", Bson::Int64(3017)),
                    with("address", Bson::Document(doc! {"city": "Paris"})),
                ],
                reject: vec![
                    // The manual's example of a rejected insert: gpa is an integer.
                    with("gpa", Bson::String("3".into())),
                    with("gpa", dec("3.0")),
                    with("year", Bson::Int32(2016)),
                    with("year", Bson::Int32(3018)),
                    with("year", Bson::String("2019".into())),
                    with("year", Bson::Double(2019.5)),
                    with("major", Bson::String("Art".into())),
                    with("name", Bson::Int32(1)),
                    without("address"),
                    without("name"),
                    with("address", Bson::Document(doc! {"street": "Main"})),
                    with("address", Bson::String("NYC".into())),
                    with("address", Bson::ObjectId(oid())),
                    with("address", Bson::DateTime(bson::DateTime::from_millis(0))),
                ],
            },
            // "Specify Allowed Field Values" / additionalProperties: false.
            Case {
                name: "players: closed document, objectId _id, minLength",
                validator: doc! {"$jsonSchema": {
                    "required": ["username", "password"],
                    "properties": {
                        "_id": {"bsonType": "objectId"},
                        "username": {"bsonType": "string"},
                        "password": {"bsonType": "string", "minLength": 8,
                                     "description": "must be a string of at least 8 characters"}
                    },
                    "additionalProperties": false
                }},
                accept: vec![doc! {"_id": oid(), "username": "ann", "password": "12345678"}],
                reject: vec![
                    doc! {"_id": oid(), "username": "ann", "password": "1234567"},
                    doc! {"_id": oid(), "username": "ann", "password": "12345678", "admin": true},
                    doc! {"_id": "ann", "username": "ann", "password": "12345678"},
                    doc! {"_id": oid(), "username": "ann"},
                ],
            },
            // "Specify Null Field Values": bsonType arrays.
            Case {
                name: "bsonType arrays",
                validator: doc! {"$jsonSchema": {
                    "bsonType": "object",
                    "properties": {
                        "name": {"bsonType": ["string", "null"]},
                        "ref": {"bsonType": ["objectId", "int"]},
                        "meta": {"bsonType": ["object", "null"], "properties": {"v": {"bsonType": "int"}}}
                    }
                }},
                accept: vec![
                    doc! {"_id": 1, "name": "x"},
                    doc! {"_id": 1, "name": Bson::Null},
                    doc! {"_id": 1},
                    doc! {"_id": 1, "ref": oid()},
                    doc! {"_id": 1, "ref": 7_i32},
                    doc! {"_id": 1, "meta": Bson::Null},
                    doc! {"_id": 1, "meta": {"v": 1_i32}},
                ],
                reject: vec![
                    doc! {"_id": 1, "name": 5_i32},
                    doc! {"_id": 1, "ref": "65a1b2c3d4e5f60718293a4b"},
                    doc! {"_id": 1, "ref": 1.5},
                    doc! {"_id": 1, "meta": oid()},
                    doc! {"_id": 1, "meta": {"v": "1"}},
                ],
            },
            Case {
                name: "number and decimal",
                validator: doc! {"$jsonSchema": {
                    "bsonType": "object",
                    "required": ["price"],
                    "properties": {
                        "price": {"bsonType": "number", "minimum": 0, "description": "any numeric type"},
                        "qty": {"bsonType": "int", "minimum": 0, "exclusiveMinimum": true},
                        "rate": {"bsonType": "decimal"},
                        "ratio": {"type": "number", "maximum": dec("1")}
                    }
                }},
                accept: vec![
                    doc! {"price": 5_i32},
                    doc! {"price": Bson::Int64(5_000_000_000)},
                    doc! {"price": 2.5},
                    doc! {"price": dec("9.99")},
                    doc! {"price": 1_i32, "qty": 1_i32, "rate": dec("0.1"), "ratio": 0.5},
                    doc! {"price": 1_i32, "ratio": 1_i32},
                ],
                reject: vec![
                    doc! {},
                    doc! {"price": -1_i32},
                    doc! {"price": "5"},
                    doc! {"price": 1_i32, "qty": 0_i32},
                    doc! {"price": 1_i32, "rate": 0.1},
                    doc! {"price": 1_i32, "ratio": 1.5},
                    doc! {"price": 1_i32, "ratio": "1"},
                ],
            },
            Case {
                name: "dates",
                validator: doc! {"$jsonSchema": {
                    "bsonType": "object",
                    "required": ["createdAt"],
                    "properties": {"createdAt": {"bsonType": "date"}, "seen": {"bsonType": "timestamp"}}
                }},
                accept: vec![
                    doc! {"createdAt": bson::DateTime::from_millis(1_704_067_200_000)},
                    doc! {"createdAt": bson::DateTime::from_millis(-86_400_000)},
                    doc! {"createdAt": bson::DateTime::from_millis(0),
                    "seen": bson::Timestamp { time: 1, increment: 2 }},
                ],
                reject: vec![
                    doc! {"createdAt": "2024-01-01T00:00:00Z"},
                    doc! {"createdAt": 1_704_067_200_000_i64},
                    doc! {"createdAt": bson::DateTime::from_millis(0), "seen": bson::DateTime::from_millis(0)},
                ],
            },
            Case {
                name: "arrays: items as a schema and as a tuple",
                validator: doc! {"$jsonSchema": {
                    "bsonType": "object",
                    "properties": {
                        "tags": {"bsonType": "array", "minItems": 1, "uniqueItems": true,
                                 "items": {"bsonType": "string"}},
                        "point": {"bsonType": "array", "items": [{"bsonType": "double"}, {"bsonType": "double"}],
                                  "additionalItems": false},
                        "ids": {"bsonType": "array", "items": {"bsonType": "objectId"}, "maxItems": 2}
                    }
                }},
                accept: vec![
                    doc! {"tags": ["a", "b"]},
                    doc! {"point": [1.5, 2.5]},
                    doc! {"point": [1.5]},
                    doc! {"ids": [oid()]},
                ],
                reject: vec![
                    doc! {"tags": []},
                    doc! {"tags": ["a", "a"]},
                    doc! {"tags": ["a", 1_i32]},
                    doc! {"tags": "a"},
                    doc! {"point": [1.5, 2.5, 3.5]},
                    doc! {"point": ["1.5"]},
                    doc! {"ids": ["x"]},
                    doc! {"ids": [oid(), oid(), oid()]},
                ],
            },
            Case {
                name: "dependencies, patternProperties, combinators, pattern",
                validator: doc! {"$jsonSchema": {
                    "bsonType": "object",
                    "dependencies": {
                        "card": ["billing"],
                        "coupon": {"required": ["campaign"]}
                    },
                    "patternProperties": {"^x_": {"bsonType": "string"}},
                    "properties": {
                        "email": {"bsonType": "string", "pattern": "^[^@]+@example\\.com$"},
                        "kind": {"oneOf": [{"enum": ["a"]}, {"enum": ["b"]}]},
                        "flag": {"not": {"bsonType": "bool"}},
                        "code": {"anyOf": [{"bsonType": "int"}, {"bsonType": "string", "maxLength": 3}]},
                        "both": {"allOf": [{"bsonType": "string"}, {"minLength": 2}]}
                    }
                }},
                accept: vec![
                    doc! {"card": 1_i32, "billing": "x"},
                    doc! {"coupon": "c", "campaign": "k"},
                    doc! {"x_a": "s", "email": "a@example.com", "kind": "a", "flag": 1_i32,
                    "code": 7_i32, "both": "ab"},
                    doc! {"code": "abc"},
                ],
                reject: vec![
                    doc! {"card": 1_i32},
                    doc! {"coupon": "c"},
                    doc! {"x_a": 1_i32},
                    doc! {"email": "a@example.org"},
                    doc! {"kind": "c"},
                    doc! {"flag": true},
                    doc! {"code": "abcd"},
                    doc! {"code": 1.5},
                    doc! {"both": "a"},
                    doc! {"both": 12_i32},
                ],
            },
            Case {
                name: "enum of ObjectIds and an encrypted field",
                validator: doc! {"$jsonSchema": {
                    "bsonType": "object",
                    "properties": {
                        "owner": {"enum": [oid()]},
                        "ssn": {"encrypt": {"bsonType": "string",
                                            "algorithm": "AEAD_AES_256_CBC_HMAC_SHA_512-Deterministic"}}
                    }
                }},
                accept: vec![
                    doc! {"owner": oid()},
                    doc! {"ssn": bson::Binary { subtype: BinarySubtype::Encrypted, bytes: vec![1, 2, 3] }},
                ],
                reject: vec![
                    doc! {"owner": "65a1b2c3d4e5f60718293a4b"},
                    doc! {"owner": bson::oid::ObjectId::from_bytes([0; 12])},
                    doc! {"ssn": "123-45-6789"},
                    doc! {"ssn": bson::Binary { subtype: BinarySubtype::Generic, bytes: vec![1] }},
                ],
            },
        ]
    }

    #[test]
    fn documented_validators_accept_and_reject_as_mongodb_does() {
        for case in cases() {
            let t = pulled(case.validator.clone());
            let v = compile(&t.schema);
            for d in &case.accept {
                let errors: Vec<String> =
                    v.iter_errors(&relaxed(d)).map(|e| e.to_string()).collect();
                assert!(
                    errors.is_empty(),
                    "{}: {d} should pass: {errors:?}\n{:#}",
                    case.name,
                    t.schema
                );
            }
            for d in &case.reject {
                assert!(
                    !v.is_valid(&relaxed(d)),
                    "{}: {d} should fail\n{:#}",
                    case.name,
                    t.schema
                );
            }
        }
    }

    /// One sample of every BSON type docsweep can decode, labelled with its alias.
    fn samples() -> Vec<(&'static str, Bson)> {
        let cstr = |s: &str| -> bson::raw::CString { s.to_string().try_into().unwrap() };
        vec![
            ("double", Bson::Double(2.5)),
            ("double", Bson::Double(f64::NAN)),
            ("double", Bson::Double(f64::NEG_INFINITY)),
            ("string", Bson::String("s".into())),
            ("object", Bson::Document(doc! {"a": 1_i32})),
            ("object", Bson::Document(doc! {})),
            ("array", Bson::Array(vec![Bson::Int32(1)])),
            (
                "binData",
                Bson::Binary(bson::Binary {
                    subtype: BinarySubtype::Generic,
                    bytes: vec![0xff, 0],
                }),
            ),
            ("undefined", Bson::Undefined),
            ("objectId", Bson::ObjectId(oid())),
            ("bool", Bson::Boolean(false)),
            ("date", Bson::DateTime(bson::DateTime::from_millis(1))),
            ("date", Bson::DateTime(bson::DateTime::from_millis(-1))),
            ("null", Bson::Null),
            (
                "regex",
                Bson::RegularExpression(bson::Regex {
                    pattern: cstr("^a"),
                    options: cstr("i"),
                }),
            ),
            ("javascript", Bson::JavaScriptCode("f()".into())),
            ("symbol", Bson::Symbol("sym".into())),
            (
                "javascriptWithScope",
                Bson::JavaScriptCodeWithScope(bson::JavaScriptCodeWithScope {
                    code: "f(x)".into(),
                    scope: doc! {"x": 1_i32},
                }),
            ),
            ("int", Bson::Int32(5)),
            (
                "timestamp",
                Bson::Timestamp(bson::Timestamp {
                    time: 7,
                    increment: 1,
                }),
            ),
            ("long", Bson::Int64(1 << 40)),
            ("decimal", dec("1.25")),
            ("minKey", Bson::MinKey),
            ("maxKey", Bson::MaxKey),
        ]
    }

    const ALIASES: &[&str] = &[
        "double",
        "string",
        "object",
        "array",
        "binData",
        "undefined",
        "objectId",
        "bool",
        "date",
        "null",
        "regex",
        "javascript",
        "symbol",
        "javascriptWithScope",
        "int",
        "timestamp",
        "long",
        "decimal",
        "minKey",
        "maxKey",
        "number",
    ];

    /// Where relaxed Extended JSON cannot carry the BSON distinction: Int32 and Int64 are
    /// both JSON integers, and an integer is also a JSON number. (A double with no fraction,
    /// such as 2.0, likewise passes `int`; the samples use 2.5.)
    fn indistinguishable(alias: &str, label: &str) -> bool {
        matches!(
            (alias, label),
            ("int" | "long", "int" | "long") | ("double", "int" | "long")
        )
    }

    #[test]
    fn every_bson_type_against_every_alias() {
        for alias in ALIASES {
            let t = pulled(doc! {"$jsonSchema": {"properties": {"v": {"bsonType": *alias}}}});
            let v = compile(&t.schema);
            for (label, value) in samples() {
                let mongo = *alias == label
                    || (*alias == "number"
                        && matches!(label, "int" | "long" | "double" | "decimal"));
                let expected = mongo || indistinguishable(alias, label);
                let d = relaxed(&doc! {"v": value.clone()});
                assert_eq!(
                    v.is_valid(&d),
                    expected,
                    "bsonType {alias} with a {label} ({d}):\n{:#}",
                    t.schema
                );
            }
        }
    }

    #[test]
    fn translation_shapes() {
        let t = pulled(doc! {"$jsonSchema": {
            "bsonType": "object",
            "properties": {
                "_id": {"bsonType": "objectId"},
                "at": {"bsonType": ["date", "null"], "description": "when"},
                "n": {"bsonType": "long", "minimum": 0, "exclusiveMinimum": false},
                "pair": {"items": [{"bsonType": "int"}], "additionalItems": {"bsonType": "string"}}
            }
        }});
        let s = &t.schema;
        assert_eq!(s["$schema"], DRAFT_2020_12);
        assert_eq!(s["type"], "object");
        assert!(s.get("not").is_none(), "the root is always a document");
        assert_eq!(s["properties"]["_id"], json!({"$ref": "#/$defs/objectId"}));
        let mut oid_def = s["$defs"]["objectId"].clone();
        oid_def.as_object_mut().unwrap().remove("description");
        assert_eq!(
            oid_def,
            json!({"type": "object",
                   "properties": {"$oid": {"type": "string", "pattern": "^[0-9a-f]{24}$"}},
                   "required": ["$oid"], "additionalProperties": false})
        );
        assert_eq!(
            s["properties"]["at"],
            json!({"anyOf": [{"type": "null"}, {"$ref": "#/$defs/date"}], "description": "when"})
        );
        assert_eq!(
            s["properties"]["n"],
            json!({"type": "integer", "minimum": 0})
        );
        assert_eq!(
            s["properties"]["pair"],
            json!({"prefixItems": [{"type": "integer"}], "items": {"type": "string"}})
        );
        let defs: Vec<&String> = s["$defs"].as_object().unwrap().keys().collect();
        assert_eq!(defs, ["objectId", "date"], "only the shapes used");
        assert!(t.notes.is_empty(), "{:?}", t.notes);
    }

    #[test]
    fn validators_without_json_schema() {
        let t = translate_options(None).unwrap();
        assert_eq!(t.schema, permissive_schema());
        assert!(t.notes[0].contains("no validator"));
        let t = translate_options(Some(&json!({}))).unwrap();
        assert_eq!(t.schema, permissive_schema());
        // The manual's query-operator validator.
        let t = pulled(doc! {"$or": [
            {"phone": {"$type": "string"}},
            {"email": {"$regex": "@mongodb\\.com$"}},
            {"status": {"$in": ["Unknown", "Incomplete"]}}
        ]});
        assert_eq!(t.schema, permissive_schema());
        assert!(t.notes[0].contains("$or"), "{:?}", t.notes);
        let t = translate_options(Some(&json!({
            "validator": {"$jsonSchema": {"required": ["a"]}, "status": "x"},
            "validationLevel": "moderate", "validationAction": "warn"
        })))
        .unwrap();
        assert_eq!(t.schema["required"], json!(["a"]));
        assert_eq!(t.notes.len(), 3, "{:?}", t.notes);
    }

    #[test]
    fn untranslatable_validators_are_errors() {
        for (bad, at) in [
            (json!({"bsonType": "float"}), "/bsonType"),
            (json!({"type": "int"}), "/type"),
            (json!({"properties": {"a": 1}}), "/properties/a"),
            (
                json!({"properties": {"a": {"minLength": -1}}}),
                "/properties/a/minLength",
            ),
            (json!({"bsonType": "string", "type": "string"}), ""),
            (json!({"properties": {"a": {"pattern": "("}}}), ""),
        ] {
            let e = translate(&bad).unwrap_err();
            assert_eq!(e.pointer, at, "{bad}: {e}");
        }
    }

    fn spec(key: &[(&str, KeyDirection)], unique: bool, name: &str) -> IndexSpec {
        IndexSpec {
            key: super::super::IndexKey(
                key.iter()
                    .map(|(f, d)| (f.to_string(), d.clone()))
                    .collect(),
            ),
            unique,
            sparse: false,
            name: Some(name.into()),
        }
    }

    #[test]
    fn writes_a_loadable_contract_and_refuses_to_overwrite() {
        use KeyDirection::{Asc, Desc};
        let dir = tempfile::tempdir().unwrap();
        let indexes = vec![
            spec(&[("_id", Asc)], false, "_id_"),
            spec(
                &[("status", Asc), ("created_at", Desc)],
                false,
                "status_1_created_at_-1",
            ),
            spec(&[("email", Asc)], true, "email_1"),
            spec(&[("customer.id", Asc)], false, "customer.id_1"),
        ];
        let p = prepare(dir.path(), "orders", None).unwrap();
        assert_eq!(p.version, 1);
        let schema =
            pulled(doc! {"$jsonSchema": {"bsonType": "object", "required": ["_id"]}}).schema;
        let w = write(&p, &schema, &indexes, Some("pulled in a test")).unwrap();
        assert!(w.created);
        assert_eq!((w.version, w.target, w.indexes), (1, 1, 3));
        let text = std::fs::read_to_string(&w.contract_path).unwrap();
        assert!(
            text.starts_with("collection = \"orders\"\ntarget = 1\n"),
            "{text}"
        );
        assert!(
            text.contains("# pulled in a test\n[[versions]]\nversion = 1\n"),
            "{text}"
        );
        assert!(
            text.contains(
                "  { key = { status = 1, created_at = -1 }, name = \"status_1_created_at_-1\" },\n"
            ),
            "{text}"
        );
        assert!(text.contains("  { key = { email = 1 }, unique = true, name = \"email_1\" },\n"));
        assert!(text.contains("  { key = { \"customer.id\" = 1 }, name = \"customer.id_1\" },\n"));
        assert!(!text.contains("_id_"));
        let c = crate::contract::load(&w.contract_path).unwrap();
        let keys: Vec<String> = c.versions[0]
            .indexes
            .iter()
            .map(|i| i.key.fields_label())
            .collect();
        assert_eq!(keys, ["status,created_at", "email", "customer.id"]);
        assert_eq!(
            serde_json::from_str::<Value>(&std::fs::read_to_string(&w.schema_path).unwrap())
                .unwrap(),
            schema
        );

        // The next pull appends version 2; the target stays.
        let p2 = prepare(dir.path(), "orders", None).unwrap();
        assert_eq!(p2.version, 2);
        let w2 = write(&p2, &permissive_schema(), &[], None).unwrap();
        assert!(!w2.created);
        assert_eq!(w2.target, 1);
        let c = crate::contract::load(&w2.contract_path).unwrap();
        assert_eq!(c.versions.len(), 2);
        assert!(c.version(2).unwrap().indexes.is_empty());

        // Existing versions and schema files are never overwritten.
        let e = prepare(dir.path(), "orders", Some(2))
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("contract.toml") && e.contains("version 2 already exists"),
            "{e}"
        );
        std::fs::write(dir.path().join("orders/v5.schema.json"), "{}").unwrap();
        let e = prepare(dir.path(), "orders", Some(5))
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("v5.schema.json") && e.contains("refusing to overwrite"),
            "{e}"
        );
        let p7 = prepare(dir.path(), "orders", Some(7)).unwrap();
        assert_eq!(p7.version, 7);

        // A contract of another collection in the folder is refused.
        std::fs::create_dir_all(dir.path().join("x")).unwrap();
        std::fs::write(
            dir.path().join("x/contract.toml"),
            "collection = \"y\"\ntarget = 1\n[[versions]]\nversion = 1\nschema = \"v1.schema.json\"\n",
        )
        .unwrap();
        let e = prepare(dir.path(), "x", None).unwrap_err().to_string();
        assert!(e.contains("x/contract.toml") && e.contains("\"y\""), "{e}");
        assert!(prepare(dir.path(), "../etc", None).is_err());
    }

    #[test]
    fn an_inline_versions_array_is_not_appended_to() {
        let dir = tempfile::tempdir().unwrap();
        let c = dir.path().join("a");
        std::fs::create_dir_all(&c).unwrap();
        std::fs::write(c.join("v1.schema.json"), permissive_schema().to_string()).unwrap();
        let original = "collection = \"a\"\ntarget = 1\nversions = [{ version = 1, schema = \"v1.schema.json\" }]\n";
        std::fs::write(c.join("contract.toml"), original).unwrap();
        let p = prepare(dir.path(), "a", None).unwrap();
        assert_eq!(p.version, 2);
        let e = write(&p, &permissive_schema(), &[], None)
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("add this by hand") && e.contains("version = 2"),
            "{e}"
        );
        assert_eq!(
            std::fs::read_to_string(c.join("contract.toml")).unwrap(),
            original
        );
        assert!(!c.join("v2.schema.json").exists());
    }

    #[test]
    fn toml_keys_and_strings() {
        assert_eq!(toml_key("status"), "status");
        assert_eq!(toml_key("customer.id"), "\"customer.id\"");
        assert_eq!(toml_key("$**"), "\"$**\"");
        assert_eq!(toml_string("a\"b\\c\n"), "\"a\\\"b\\\\c\\n\"");
        let ix = spec(
            &[
                ("_fts", KeyDirection::Special("text".into())),
                ("_ftsx", KeyDirection::Asc),
            ],
            false,
            "t",
        );
        assert_eq!(
            index_entry(&ix),
            "{ key = { _fts = \"text\", _ftsx = 1 }, name = \"t\" }"
        );
    }
}
