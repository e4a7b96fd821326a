//! A collection's server-side `$jsonSchema` validator translated
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

use serde_json::{json, Map, Value};

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

/// The `$defs` entries for the wrapper shapes in `used` (names as in [`DEFS`]), in the order
/// `translate` writes them; `dbPointer` brings `objectId` along.
pub(crate) fn defs_for(used: &BTreeSet<&'static str>) -> Map<String, Value> {
    let mut used = used.clone();
    if used.contains("dbPointer") {
        used.insert("objectId");
    }
    let mut defs = Map::new();
    for (name, _) in DEFS {
        if used.contains(name) {
            defs.insert((*name).into(), def(name));
        }
    }
    defs
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

/// A schema being translated: its keywords, and (kept in order) those that collide with
/// ones already set, for `allOf`.
#[derive(Default)]
struct Out {
    map: Map<String, Value>,
    all_of: Vec<Value>,
}

impl Out {
    fn put(&mut self, k: &str, v: Value) {
        put(&mut self.map, &mut self.all_of, k, v);
    }
}

impl Translator {
    fn node(&mut self, s: &Value, at: &str, root: bool) -> Result<Value, TranslateError> {
        let Some(s) = s.as_object() else {
            return fail(at, "a schema must be a document");
        };
        let mut out = Out::default();
        if s.contains_key("type") && s.contains_key("bsonType") {
            return fail(at, "`type` and `bsonType` cannot both be given");
        }
        for (k, v) in s {
            let here = format!("{at}/{}", token(k));
            self.keyword(&mut out, s, k, v, at, &here, root)?;
        }
        let Out { mut map, all_of } = out;
        if !all_of.is_empty() {
            map.insert("allOf".into(), Value::Array(all_of));
        }
        Ok(Value::Object(map))
    }

    /// Translates keyword `k` (value `v`, at `here`) of the schema `s` (at `at`) into `out`.
    #[allow(clippy::too_many_arguments)]
    fn keyword(
        &mut self,
        out: &mut Out,
        s: &Map<String, Value>,
        k: &str,
        v: &Value,
        at: &str,
        here: &str,
        root: bool,
    ) -> Result<(), TranslateError> {
        match k {
            "bsonType" | "type" => {
                let names: Vec<&str> = match v {
                    Value::String(n) => vec![n.as_str()],
                    Value::Array(items) if !items.is_empty() => items
                        .iter()
                        .map(|i| i.as_str().ok_or(()))
                        .collect::<Result<_, _>>()
                        .or_else(|_| fail(here, "type names must be strings"))?,
                    _ => return fail(here, "must be a type name or a non-empty array of them"),
                };
                let set = self.types(&names, k == "type", here)?;
                for (kw, val) in self.type_keywords(set, root) {
                    out.put(kw, val);
                }
            }
            "properties" | "patternProperties" | "dependentSchemas" => {
                let Some(props) = v.as_object() else {
                    return fail(here, "must be a document");
                };
                let mut m = Map::new();
                for (name, sub) in props {
                    m.insert(
                        name.clone(),
                        self.node(sub, &format!("{here}/{}", token(name)), false)?,
                    );
                }
                out.put(k, Value::Object(m));
            }
            "additionalProperties" => {
                let val = match v {
                    Value::Bool(b) => Value::Bool(*b),
                    _ => self.node(v, here, false)?,
                };
                out.put(k, val);
            }
            "items" => self.items(out, s, v, at, here)?,
            // Handled with `items`; without an array of items it has no effect.
            "additionalItems" => {}
            "anyOf" | "allOf" | "oneOf" => {
                let Some(list) = v.as_array().filter(|l| !l.is_empty()) else {
                    return fail(here, "must be a non-empty array of schemas");
                };
                let mut subs = Vec::with_capacity(list.len());
                for (i, sub) in list.iter().enumerate() {
                    subs.push(self.node(sub, &format!("{here}/{i}"), false)?);
                }
                if k == "allOf" {
                    out.all_of.extend(subs);
                } else {
                    out.put(k, Value::Array(subs));
                }
            }
            "not" => {
                let t = self.node(v, here, false)?;
                out.put(k, t);
            }
            "dependencies" => self.dependencies(out, v, here)?,
            "encrypt" => {
                // Client-side field level encryption: the stored value is BinData subtype 6.
                self.used.insert("encrypted");
                out.put("$ref", Value::from("#/$defs/encrypted"));
            }
            _ => self.plain_keyword(out, s, k, v, at, here)?,
        }
        Ok(())
    }

    /// `items`: a schema, or (draft 4) an array of them with `additionalItems` after it.
    fn items(
        &mut self,
        out: &mut Out,
        s: &Map<String, Value>,
        v: &Value,
        at: &str,
        here: &str,
    ) -> Result<(), TranslateError> {
        let Value::Array(list) = v else {
            let t = self.node(v, here, false)?;
            out.put("items", t);
            return Ok(());
        };
        let mut items = Vec::with_capacity(list.len());
        for (i, sub) in list.iter().enumerate() {
            items.push(self.node(sub, &format!("{here}/{i}"), false)?);
        }
        out.put("prefixItems", Value::Array(items));
        // Draft 4: additionalItems applies only after an array of items.
        match s.get("additionalItems") {
            None => {}
            Some(Value::Bool(b)) => out.put("items", Value::Bool(*b)),
            Some(sub) => {
                let t = self.node(sub, &format!("{at}/additionalItems"), false)?;
                out.put("items", t);
            }
        }
        Ok(())
    }

    /// Draft 4 `dependencies`: property dependencies become `dependentRequired`, schema
    /// dependencies `dependentSchemas`.
    fn dependencies(&mut self, out: &mut Out, v: &Value, here: &str) -> Result<(), TranslateError> {
        let Some(deps) = v.as_object() else {
            return fail(here, "must be a document");
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
                    let t = self.node(dep, &format!("{here}/{}", token(name)), false)?;
                    schemas.insert(name.clone(), t);
                }
            }
        }
        if !required.is_empty() {
            out.put("dependentRequired", Value::Object(required));
        }
        if !schemas.is_empty() {
            out.put("dependentSchemas", Value::Object(schemas));
        }
        Ok(())
    }

    /// A keyword without subschemas: numeric bounds, `required`, `enum`, and anything else
    /// (kept as is, with a note when MongoDB does not document it).
    fn plain_keyword(
        &mut self,
        out: &mut Out,
        s: &Map<String, Value>,
        k: &str,
        v: &Value,
        at: &str,
        here: &str,
    ) -> Result<(), TranslateError> {
        let excl = |k: &str| s.get(k) == Some(&Value::Bool(true));
        match k {
            "minimum" | "maximum" => {
                let n = number(v, here)?;
                let kw = match (k, excl("exclusiveMinimum"), excl("exclusiveMaximum")) {
                    ("minimum", true, _) => "exclusiveMinimum",
                    ("maximum", _, true) => "exclusiveMaximum",
                    _ => k,
                };
                out.put(kw, n);
            }
            "exclusiveMinimum" | "exclusiveMaximum" => match v {
                // Draft 4: a flag on minimum/maximum, handled there.
                Value::Bool(_) => {}
                _ => {
                    let n = number(v, here)?;
                    out.put(k, n);
                }
            },
            "multipleOf" => {
                let n = number(v, here)?;
                if n.as_f64().is_none_or(|x| x <= 0.0) {
                    return fail(here, "must be a number greater than 0");
                }
                out.put(k, n);
            }
            "minLength" | "maxLength" | "minItems" | "maxItems" | "minProperties"
            | "maxProperties" => {
                let n = number(v, here)?;
                let Some(x) = n.as_f64().filter(|x| *x >= 0.0 && x.fract() == 0.0) else {
                    return fail(here, "must be a non-negative whole number");
                };
                out.put(k, Value::from(x as u64));
            }
            "required" => {
                if !v.as_array().is_some_and(|a| a.iter().all(Value::is_string)) {
                    return fail(here, "must be an array of field names");
                }
                out.put(k, v.clone());
            }
            "enum" => {
                if !v.is_array() {
                    return fail(here, "must be an array");
                }
                out.put(k, v.clone());
            }
            // uniqueItems, pattern, title, description and anything else: as is.
            _ => {
                if !matches!(k, "uniqueItems" | "pattern" | "title" | "description") {
                    let place = if at.is_empty() { "/" } else { at };
                    self.notes.push(format!(
                        "$jsonSchema at {place}: keyword `{k}` is not one MongoDB documents; \
                         kept as is"
                    ));
                }
                out.put(k, v.clone());
            }
        }
        Ok(())
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
