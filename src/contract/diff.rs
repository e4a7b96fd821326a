//! Drift between a live collection and its contract's target version: the server's
//! `$jsonSchema` validator (translated as `contract pull` does) compared structurally with
//! the contract's schema, the validation level and action, and the indexes.
//!
//! Directions are the server's: `property_added` is a property the server's validator has
//! and the contract does not; `required_removed` a field the contract requires and the
//! server does not.

use std::collections::BTreeSet;

use serde_json::{json, Map, Value};

use super::pull::{is_id_index, translate_options};
use super::{Contract, IndexSpec};
use crate::source::{Source, SourceError};

/// The `$defs` names that stand for one BSON type (see `pull::translate`).
const TYPE_DEFS: &[&str] = &[
    "objectId",
    "date",
    "decimal",
    "binData",
    "encrypted",
    "regex",
    "timestamp",
    "javascript",
    "javascriptWithScope",
    "symbol",
    "undefined",
    "minKey",
    "maxKey",
    "dbPointer",
];

/// One structural difference of the schemas.
#[derive(Debug, Clone, PartialEq)]
pub struct SchemaChange {
    /// `property_added`, `property_removed`, `required_added`, `required_removed`,
    /// `type_changed`, `additional_properties_changed`.
    pub change: &'static str,
    /// Dotted path of the property (`items[]` for array elements); empty for the document.
    pub path: String,
    pub contract: Value,
    pub server: Value,
}

/// A validation setting that is not what the contract needs (`strict` and `error`: every
/// document is checked and refused when it does not match).
#[derive(Debug, Clone, PartialEq)]
pub struct SettingChange {
    pub setting: &'static str,
    pub expected: String,
    pub actual: String,
}

/// An index on both sides whose options differ.
#[derive(Debug, Clone, PartialEq)]
pub struct IndexChange {
    pub contract: IndexSpec,
    pub server: IndexSpec,
    /// Which options differ: `unique`, `sparse`, `name`.
    pub options: Vec<&'static str>,
}

/// The drift of one collection.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Drift {
    pub collection: String,
    pub target_version: u32,
    /// The collection exists on the server.
    pub exists: bool,
    /// The server has a `$jsonSchema` validator.
    pub validator: bool,
    /// The validator could not be translated (why).
    pub validator_error: Option<String>,
    pub schema: Vec<SchemaChange>,
    pub validation: Vec<SettingChange>,
    pub missing: Vec<IndexSpec>,
    pub unexpected: Vec<IndexSpec>,
    pub different: Vec<IndexChange>,
    pub notes: Vec<String>,
}

impl Drift {
    /// The number of differences.
    pub fn count(&self) -> usize {
        usize::from(!self.exists)
            + usize::from(self.exists && !self.validator)
            + usize::from(self.validator_error.is_some())
            + self.schema.len()
            + self.validation.len()
            + self.missing.len()
            + self.unexpected.len()
            + self.different.len()
    }

    pub fn drifted(&self) -> bool {
        self.count() > 0
    }

    /// The `drift` object of `contract diff --json` and of a live check's report.json.
    pub fn to_json(&self) -> Value {
        let mut m = Map::new();
        m.insert("target_version".into(), json!(self.target_version));
        m.insert("drift".into(), json!(self.drifted()));
        m.insert("differences".into(), json!(self.count()));
        m.insert("exists".into(), json!(self.exists));
        m.insert("validator".into(), json!(self.validator));
        if let Some(e) = &self.validator_error {
            m.insert("validator_error".into(), json!(e));
        }
        m.insert(
            "schema".into(),
            self.schema
                .iter()
                .map(|c| {
                    json!({"change": c.change, "path": c.path, "contract": c.contract, "server": c.server})
                })
                .collect(),
        );
        m.insert(
            "validation".into(),
            self.validation
                .iter()
                .map(|s| json!({"setting": s.setting, "expected": s.expected, "actual": s.actual}))
                .collect(),
        );
        m.insert(
            "indexes".into(),
            json!({
                "missing": self.missing.iter().map(IndexSpec::to_report_json).collect::<Vec<_>>(),
                "unexpected": self.unexpected.iter().map(IndexSpec::to_report_json).collect::<Vec<_>>(),
                "different": self.different.iter().map(|d| json!({
                    "key": d.contract.key.to_json(),
                    "options": d.options,
                    "contract": d.contract.to_report_json(),
                    "server": d.server.to_report_json(),
                })).collect::<Vec<_>>(),
            }),
        );
        if !self.notes.is_empty() {
            m.insert("notes".into(), json!(self.notes));
        }
        Value::Object(m)
    }

    /// The rows of the table: change, where, contract, server.
    pub fn rows(&self) -> Vec<[String; 4]> {
        let mut rows = Vec::new();
        if !self.exists {
            rows.push([
                "collection missing".into(),
                self.collection.clone(),
                "exists".into(),
                "-".into(),
            ]);
            return rows;
        }
        if !self.validator {
            rows.push([
                "no validator".into(),
                "(document)".into(),
                format!("v{} schema", self.target_version),
                "no $jsonSchema".into(),
            ]);
        }
        if let Some(e) = &self.validator_error {
            rows.push([
                "validator unreadable".into(),
                "(document)".into(),
                "-".into(),
                e.clone(),
            ]);
        }
        for c in &self.schema {
            rows.push([
                c.change.replace('_', " "),
                if c.path.is_empty() {
                    "(document)".into()
                } else {
                    c.path.clone()
                },
                short(&c.contract),
                short(&c.server),
            ]);
        }
        for s in &self.validation {
            rows.push([
                format!("{} changed", s.setting),
                "-".into(),
                s.expected.clone(),
                s.actual.clone(),
            ]);
        }
        for ix in &self.missing {
            rows.push([
                "index missing".into(),
                ix.key.to_string(),
                index_options(ix),
                "-".into(),
            ]);
        }
        for ix in &self.unexpected {
            rows.push([
                "index unexpected".into(),
                ix.key.to_string(),
                "-".into(),
                index_options(ix),
            ]);
        }
        for d in &self.different {
            rows.push([
                format!("index {} differs", d.options.join("+")),
                d.contract.key.to_string(),
                index_options(&d.contract),
                index_options(&d.server),
            ]);
        }
        rows
    }
}

/// The drift of several collections as the table `contract diff` prints.
pub fn table(drifts: &[Drift]) -> String {
    let mut out = String::new();
    for d in drifts {
        if !d.drifted() {
            out.push_str(&format!(
                "{} (v{}): no drift\n",
                d.collection, d.target_version
            ));
            continue;
        }
        out.push_str(&format!(
            "{} (v{}): {} difference(s)\n",
            d.collection,
            d.target_version,
            d.count()
        ));
        let header = ["CHANGE", "WHERE", "CONTRACT", "SERVER"].map(String::from);
        let rows = d.rows();
        let mut widths = [0usize; 4];
        for r in std::iter::once(&header).chain(&rows) {
            for (w, c) in widths.iter_mut().zip(r) {
                *w = (*w).max(c.chars().count());
            }
        }
        for r in std::iter::once(&header).chain(&rows) {
            let mut line = String::from(" ");
            for (i, (w, c)) in widths.iter().zip(r).enumerate() {
                line.push(' ');
                line.push_str(c);
                if i < 3 {
                    line.push_str(&" ".repeat(w - c.chars().count() + 1));
                }
            }
            out.push_str(line.trim_end());
            out.push('\n');
        }
    }
    out
}

fn index_options(ix: &IndexSpec) -> String {
    let mut parts = Vec::new();
    if let Some(n) = &ix.name {
        parts.push(format!("name {n}"));
    }
    parts.push(if ix.unique { "unique" } else { "not unique" }.to_string());
    if ix.sparse {
        parts.push("sparse".into());
    }
    parts.join(", ")
}

fn short(v: &Value) -> String {
    match v {
        Value::Null => "-".into(),
        Value::String(s) => s.clone(),
        Value::Array(a) => a.iter().map(short).collect::<Vec<_>>().join(" | "),
        other => other.to_string(),
    }
}

/// Compares a contract's target version with a collection's `options` (from
/// `listCollections`, relaxed Extended JSON; `None` when the collection does not exist)
/// and its actual indexes.
pub fn diff(
    contract: &Contract,
    contract_schema: &Value,
    options: Option<&Value>,
    exists: bool,
    indexes: &[IndexSpec],
) -> Drift {
    let mut d = Drift {
        collection: contract.collection.clone(),
        target_version: contract.target,
        exists,
        ..Drift::default()
    };
    if !exists {
        return d;
    }
    let validator = options.and_then(|o| o.get("validator"));
    d.validator = validator.and_then(|v| v.get("$jsonSchema")).is_some();
    if d.validator {
        match translate_options(options) {
            Ok(t) => {
                d.notes = t.notes;
                compare(
                    contract_schema,
                    contract_schema,
                    &t.schema,
                    &t.schema,
                    "",
                    0,
                    &mut d.schema,
                );
            }
            Err(e) => d.validator_error = Some(e.to_string()),
        }
        let setting = |k: &str, default: &str| {
            options
                .and_then(|o| o.get(k))
                .and_then(Value::as_str)
                .unwrap_or(default)
                .to_string()
        };
        for (k, want) in [("validationLevel", "strict"), ("validationAction", "error")] {
            let actual = setting(k, want);
            if actual != want {
                d.validation.push(SettingChange {
                    setting: if k == "validationLevel" {
                        "validationLevel"
                    } else {
                        "validationAction"
                    },
                    expected: want.into(),
                    actual,
                });
            }
        }
    } else if validator.is_some() {
        d.notes.push(
            "the validator has only query conditions, no $jsonSchema: nothing to compare the \
             schema with"
                .into(),
        );
    }
    let want = &contract.target_version().indexes;
    let actual: Vec<&IndexSpec> = indexes
        .iter()
        .filter(|i| !is_id_index(i) && !i.key.is_id_only())
        .collect();
    for w in want.iter().filter(|w| !w.key.is_id_only()) {
        match actual.iter().find(|a| a.key == w.key) {
            None => d.missing.push(w.clone()),
            Some(a) => {
                let mut opts = Vec::new();
                if a.unique != w.unique {
                    opts.push("unique");
                }
                if a.sparse != w.sparse {
                    opts.push("sparse");
                }
                if w.name.is_some() && a.name != w.name {
                    opts.push("name");
                }
                if !opts.is_empty() {
                    d.different.push(IndexChange {
                        contract: w.clone(),
                        server: (*a).clone(),
                        options: opts,
                    });
                }
            }
        }
    }
    for a in actual {
        if !want.iter().any(|w| w.key == a.key) {
            d.unexpected.push(a.clone());
        }
    }
    d
}

/// Follows local `$ref`s to non-type `$defs` (a contract's own definitions).
fn resolve<'a>(root: &'a Value, mut node: &'a Value) -> &'a Value {
    for _ in 0..16 {
        let Some(r) = node.get("$ref").and_then(Value::as_str) else {
            return node;
        };
        let Some(name) = r.strip_prefix("#/$defs/") else {
            return node;
        };
        if TYPE_DEFS.contains(&name) || name == "nonFiniteDouble" {
            return node;
        }
        match root.get("$defs").and_then(|d| d.get(name)) {
            Some(n) => node = n,
            None => return node,
        }
    }
    node
}

/// The types a schema allows: JSON types and the BSON types of wrapper `$defs`.
fn types(root: &Value, node: &Value, depth: usize) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    let node = resolve(root, node);
    if depth > 16 {
        return out;
    }
    match node.get("type") {
        Some(Value::String(s)) => {
            out.insert(s.clone());
        }
        Some(Value::Array(a)) => out.extend(a.iter().filter_map(Value::as_str).map(String::from)),
        _ => {}
    }
    if let Some(name) = node
        .get("$ref")
        .and_then(Value::as_str)
        .and_then(|r| r.strip_prefix("#/$defs/"))
    {
        out.insert(if name == "nonFiniteDouble" {
            "number".into()
        } else {
            name.to_string()
        });
    }
    for k in ["anyOf", "oneOf"] {
        for alt in node.get(k).and_then(Value::as_array).into_iter().flatten() {
            out.extend(types(root, alt, depth + 1));
        }
    }
    if out.contains("number") {
        out.remove("integer");
    }
    out
}

/// The schema that describes the object form of a node: the node, or its first `anyOf`/
/// `oneOf`/`allOf` alternative with properties.
fn object_schema<'a>(root: &'a Value, node: &'a Value) -> Option<&'a Value> {
    let node = resolve(root, node);
    if node.get("properties").is_some()
        || node.get("required").is_some()
        || node.get("additionalProperties").is_some()
    {
        return Some(node);
    }
    for k in ["anyOf", "oneOf", "allOf"] {
        for alt in node.get(k).and_then(Value::as_array).into_iter().flatten() {
            if let Some(o) = object_schema(root, alt) {
                return Some(o);
            }
        }
    }
    None
}

fn items_schema<'a>(root: &'a Value, node: &'a Value) -> Option<&'a Value> {
    let node = resolve(root, node);
    if let Some(i) = node.get("items").filter(|i| i.is_object()) {
        return Some(i);
    }
    for k in ["anyOf", "oneOf", "allOf"] {
        for alt in node.get(k).and_then(Value::as_array).into_iter().flatten() {
            if let Some(o) = items_schema(root, alt) {
                return Some(o);
            }
        }
    }
    None
}

fn additional(o: Option<&Value>) -> &'static str {
    match o.and_then(|o| o.get("additionalProperties")) {
        None | Some(Value::Bool(true)) => "allowed",
        Some(Value::Bool(false)) => "false",
        Some(_) => "schema",
    }
}

fn type_list(t: &BTreeSet<String>) -> Value {
    if t.is_empty() {
        json!("any")
    } else {
        Value::from(t.iter().cloned().collect::<Vec<_>>())
    }
}

fn join(path: &str, k: &str) -> String {
    if path.is_empty() {
        k.to_string()
    } else {
        format!("{path}.{k}")
    }
}

fn compare(
    croot: &Value,
    c: &Value,
    sroot: &Value,
    s: &Value,
    path: &str,
    depth: usize,
    out: &mut Vec<SchemaChange>,
) {
    if depth > 64 {
        return;
    }
    let (tc, ts) = (types(croot, c, 0), types(sroot, s, 0));
    if tc != ts {
        out.push(SchemaChange {
            change: "type_changed",
            path: path.to_string(),
            contract: type_list(&tc),
            server: type_list(&ts),
        });
    }
    let (co, so) = (object_schema(croot, c), object_schema(sroot, s));
    let object_like = co.is_some() || so.is_some();
    if object_like {
        let empty = Map::new();
        let props = |o: Option<&Value>| {
            o.and_then(|o| o.get("properties"))
                .and_then(Value::as_object)
                .unwrap_or(&empty)
                .clone()
        };
        let (cp, sp) = (props(co), props(so));
        for (k, v) in &sp {
            match cp.get(k) {
                None => out.push(SchemaChange {
                    change: "property_added",
                    path: join(path, k),
                    contract: Value::Null,
                    server: type_list(&types(sroot, v, 0)),
                }),
                Some(cv) => compare(croot, cv, sroot, v, &join(path, k), depth + 1, out),
            }
        }
        for (k, v) in &cp {
            if !sp.contains_key(k) {
                out.push(SchemaChange {
                    change: "property_removed",
                    path: join(path, k),
                    contract: type_list(&types(croot, v, 0)),
                    server: Value::Null,
                });
            }
        }
        let required = |o: Option<&Value>| -> BTreeSet<String> {
            o.and_then(|o| o.get("required"))
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
                .filter_map(Value::as_str)
                .map(String::from)
                .collect()
        };
        let (cr, sr) = (required(co), required(so));
        for k in sr.difference(&cr) {
            out.push(SchemaChange {
                change: "required_added",
                path: join(path, k),
                contract: json!("optional"),
                server: json!("required"),
            });
        }
        for k in cr.difference(&sr) {
            out.push(SchemaChange {
                change: "required_removed",
                path: join(path, k),
                contract: json!("required"),
                server: json!("optional"),
            });
        }
        let (ca, sa) = (additional(co), additional(so));
        if ca != sa {
            out.push(SchemaChange {
                change: "additional_properties_changed",
                path: path.to_string(),
                contract: json!(ca),
                server: json!(sa),
            });
        }
    }
    if let (Some(ci), Some(si)) = (items_schema(croot, c), items_schema(sroot, s)) {
        compare(croot, ci, sroot, si, &format!("{path}[]"), depth + 1, out);
    }
}

/// Reads the contract's target schema file.
pub fn target_schema(contract: &Contract) -> Result<Value, super::ContractError> {
    let path = &contract.target_version().schema_path;
    let text = std::fs::read_to_string(path).map_err(|source| super::ContractError::Io {
        path: path.clone(),
        source,
    })?;
    serde_json::from_str(&text).map_err(|e| super::ContractError::SchemaJson {
        path: path.clone(),
        version: contract.target,
        message: e.to_string(),
    })
}

/// The drift of one collection of a live source.
pub fn live_drift(source: &Source, contract: &Contract) -> Result<Drift, LiveDriftError> {
    let schema = target_schema(contract)?;
    let Some(cs) = source.collection(&contract.collection) else {
        return Ok(diff(contract, &schema, None, false, &[]));
    };
    let Some(live) = cs.live() else {
        return Err(LiveDriftError::Source(SourceError::Other(format!(
            "{}: drift is read from a live server (mongodb://…), not from {}",
            contract.collection, source.spec
        ))));
    };
    let options = live.collection_options(&cs.name)?;
    let indexes = source.indexes(cs)?.unwrap_or_default();
    Ok(diff(contract, &schema, options.as_ref(), true, &indexes))
}

#[derive(Debug, thiserror::Error)]
pub enum LiveDriftError {
    #[error(transparent)]
    Contract(#[from] super::ContractError),
    #[error(transparent)]
    Source(#[from] SourceError),
}

/// For a live check: the drift of every collection with a contract, by name
/// (`{name: drift}`); empty for other sources. A collection whose drift cannot be read gets
/// a warning instead.
pub fn drift_map(
    source: &Source,
    contracts: &super::ContractSet,
    warnings: &mut Vec<String>,
) -> Map<String, Value> {
    let mut out = Map::new();
    if !source.is_live() {
        return out;
    }
    for (name, contract) in &contracts.contracts {
        match live_drift(source, contract) {
            Ok(d) => {
                out.insert(name.clone(), d.to_json());
            }
            Err(e) => warnings.push(format!("{name}: drift not read: {e}")),
        }
    }
    out
}

/// Sets each report collection's `drift` from a [`drift_map`] (read now, or recorded by the
/// partitions of a run and merged).
pub fn attach_map(map: &Map<String, Value>, collections: &mut [crate::report::CollectionReport]) {
    for c in collections.iter_mut() {
        if let Some(d) = map.get(&c.name) {
            c.drift = Some(d.clone());
        }
    }
}

/// For a live check: sets the `drift` of every checked collection with a contract.
pub fn attach(
    source: &Source,
    contracts: &super::ContractSet,
    collections: &mut [crate::report::CollectionReport],
    warnings: &mut Vec<String>,
) {
    let map = drift_map(source, contracts, warnings);
    attach_map(&map, collections);
}

#[cfg(test)]
mod tests;
