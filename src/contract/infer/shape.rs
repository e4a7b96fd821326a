//! What one value position holds across documents: the kinds of values seen (as relaxed
//! Extended JSON shows them), how often each field is present, the items of arrays, and for
//! strings the distinct values (capped) and the formats every value so far matches.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use serde_json::{json, Map, Value};

/// The kind of a relaxed Extended JSON value.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Kind {
    Null,
    Bool,
    Int,
    Double,
    NonFiniteDouble,
    Decimal,
    String,
    Object,
    Array,
    ObjectId,
    Date,
    Binary,
    Regex,
    Timestamp,
    Code,
    CodeWithScope,
    Symbol,
    Undefined,
    MinKey,
    MaxKey,
    DbPointer,
}

impl Kind {
    pub fn of(v: &Value) -> Kind {
        match v {
            Value::Null => Kind::Null,
            Value::Bool(_) => Kind::Bool,
            Value::Number(n) if n.is_i64() || n.is_u64() => Kind::Int,
            Value::Number(_) => Kind::Double,
            Value::String(_) => Kind::String,
            Value::Array(_) => Kind::Array,
            Value::Object(m) => wrapper_kind(m).unwrap_or(Kind::Object),
        }
    }

    /// The name shown to users and used in shapes: the BSON type name where relaxed Extended
    /// JSON keeps it apart.
    pub fn name(self) -> &'static str {
        match self {
            Kind::Null => "null",
            Kind::Bool => "bool",
            Kind::Int => "int",
            Kind::Double => "double",
            Kind::NonFiniteDouble => "double",
            Kind::Decimal => "decimal",
            Kind::String => "string",
            Kind::Object => "object",
            Kind::Array => "array",
            Kind::ObjectId => "objectId",
            Kind::Date => "date",
            Kind::Binary => "binData",
            Kind::Regex => "regex",
            Kind::Timestamp => "timestamp",
            Kind::Code => "javascript",
            Kind::CodeWithScope => "javascriptWithScope",
            Kind::Symbol => "symbol",
            Kind::Undefined => "undefined",
            Kind::MinKey => "minKey",
            Kind::MaxKey => "maxKey",
            Kind::DbPointer => "dbPointer",
        }
    }

    /// The kind as part of a shape: integers and doubles are one kind there (a field holding
    /// 3 in one document and 2.5 in the next is the same field of the same version).
    pub fn shape_name(self) -> &'static str {
        match self {
            Kind::Int | Kind::Double | Kind::NonFiniteDouble => "number",
            other => other.name(),
        }
    }

    /// The `$defs` entry (see `pull::translate`) of a wrapper kind.
    fn def(self) -> Option<&'static str> {
        Some(match self {
            Kind::ObjectId => "objectId",
            Kind::Date => "date",
            Kind::NonFiniteDouble => "nonFiniteDouble",
            Kind::Decimal => "decimal",
            Kind::Binary => "binData",
            Kind::Regex => "regex",
            Kind::Timestamp => "timestamp",
            Kind::Code => "javascript",
            Kind::CodeWithScope => "javascriptWithScope",
            Kind::Symbol => "symbol",
            Kind::Undefined => "undefined",
            Kind::MinKey => "minKey",
            Kind::MaxKey => "maxKey",
            Kind::DbPointer => "dbPointer",
            _ => return None,
        })
    }

    /// The JSON Schema `type` of a plain JSON kind.
    fn json_type(self) -> Option<&'static str> {
        Some(match self {
            Kind::Null => "null",
            Kind::Bool => "boolean",
            Kind::Int => "integer",
            Kind::Double => "number",
            Kind::String => "string",
            Kind::Object => "object",
            Kind::Array => "array",
            _ => return None,
        })
    }
}

/// The BSON type a `$`-keyed object stands for in relaxed Extended JSON.
fn wrapper_kind(m: &Map<String, Value>) -> Option<Kind> {
    let mut keys = m.keys();
    let first = keys.next()?;
    if m.len() == 2 {
        return (m.contains_key("$code") && m.contains_key("$scope"))
            .then_some(Kind::CodeWithScope);
    }
    if m.len() != 1 {
        return None;
    }
    Some(match first.as_str() {
        "$oid" => Kind::ObjectId,
        "$date" => Kind::Date,
        "$numberDecimal" => Kind::Decimal,
        "$numberDouble" => Kind::NonFiniteDouble,
        "$binary" => Kind::Binary,
        "$regularExpression" => Kind::Regex,
        "$timestamp" => Kind::Timestamp,
        "$code" => Kind::Code,
        "$symbol" => Kind::Symbol,
        "$undefined" => Kind::Undefined,
        "$minKey" => Kind::MinKey,
        "$maxKey" => Kind::MaxKey,
        "$dbPointer" => Kind::DbPointer,
        _ => return None,
    })
}

/// The string formats docsweep infers, in order of preference, with the check that decides
/// them (the same validator a check runs, so an inferred format never rejects its own data).
pub struct Formats {
    checks: Vec<(&'static str, jsonschema::Validator)>,
}

impl Formats {
    pub const NAMES: [&'static str; 6] = ["date-time", "date", "uuid", "email", "ipv4", "ipv6"];

    pub fn new() -> Formats {
        let checks = Self::NAMES
            .iter()
            .map(|f| {
                let v = jsonschema::draft202012::options()
                    .should_validate_formats(true)
                    .build(&json!({ "type": "string", "format": f }))
                    .expect("a format schema compiles");
                (*f, v)
            })
            .collect();
        Formats { checks }
    }

    fn all() -> u8 {
        (1u8 << Self::NAMES.len()) - 1
    }

    /// The subset of `mask` that `s` matches.
    fn matching(&self, s: &str, mask: u8) -> u8 {
        if mask == 0 {
            return 0;
        }
        let v = Value::String(s.to_owned());
        let mut out = 0;
        for (i, (_, check)) in self.checks.iter().enumerate() {
            if mask & (1 << i) != 0 && check.is_valid(&v) {
                out |= 1 << i;
            }
        }
        out
    }
}

impl Default for Formats {
    fn default() -> Self {
        Formats::new()
    }
}

/// Distinct string values are kept up to this many (for `--enums`).
pub const ENUM_TRACK: usize = 32;

/// Statistics of one value position.
#[derive(Debug, Clone)]
pub struct Node {
    /// Values seen here.
    pub count: u64,
    pub kinds: BTreeMap<Kind, u64>,
    /// Fields of the objects seen here, in first-seen order; a field's `count` is the number
    /// of those objects that have it.
    pub props: Vec<(String, Node)>,
    index: HashMap<String, usize>,
    /// The elements of the arrays seen here.
    pub items: Option<Box<Node>>,
    /// Distinct strings, until there are more than [`ENUM_TRACK`].
    pub strings: BTreeSet<String>,
    pub strings_overflow: bool,
    /// The formats (bits of [`Formats::NAMES`]) every string seen here matches.
    pub formats: u8,
}

impl Default for Node {
    fn default() -> Self {
        Node {
            count: 0,
            kinds: BTreeMap::new(),
            props: Vec::new(),
            index: HashMap::new(),
            items: None,
            strings: BTreeSet::new(),
            strings_overflow: false,
            formats: Formats::all(),
        }
    }
}

impl Node {
    pub fn add(&mut self, v: &Value, formats: &Formats) {
        self.count += 1;
        let kind = Kind::of(v);
        *self.kinds.entry(kind).or_default() += 1;
        match (kind, v) {
            (Kind::Object, Value::Object(m)) => {
                for (k, x) in m {
                    self.prop_mut(k).add(x, formats);
                }
            }
            (Kind::Array, Value::Array(a)) => {
                let items = self.items.get_or_insert_with(Box::default);
                for x in a {
                    items.add(x, formats);
                }
            }
            (Kind::String, Value::String(s)) => {
                self.formats = formats.matching(s, self.formats);
                if !self.strings_overflow && !self.strings.contains(s) {
                    if self.strings.len() >= ENUM_TRACK {
                        self.strings_overflow = true;
                        self.strings.clear();
                    } else {
                        self.strings.insert(s.clone());
                    }
                }
            }
            _ => {}
        }
    }

    fn prop_mut(&mut self, k: &str) -> &mut Node {
        let i = match self.index.get(k) {
            Some(i) => *i,
            None => {
                self.index.insert(k.to_owned(), self.props.len());
                self.props.push((k.to_owned(), Node::default()));
                self.props.len() - 1
            }
        };
        &mut self.props[i].1
    }

    /// Folds `other` (another set of values of the same position) into this one.
    pub fn merge(&mut self, other: &Node) {
        self.count += other.count;
        for (k, n) in &other.kinds {
            *self.kinds.entry(*k).or_default() += n;
        }
        for (k, n) in &other.props {
            self.prop_mut(k).merge(n);
        }
        if let Some(oi) = &other.items {
            self.items.get_or_insert_with(Box::default).merge(oi);
        }
        self.formats &= other.formats;
        if other.strings_overflow {
            self.strings_overflow = true;
        }
        if !self.strings_overflow {
            self.strings.extend(other.strings.iter().cloned());
            if self.strings.len() > ENUM_TRACK {
                self.strings_overflow = true;
            }
        }
        if self.strings_overflow {
            self.strings.clear();
        }
    }

    pub fn prop(&self, k: &str) -> Option<&Node> {
        self.props.iter().find(|(n, _)| n == k).map(|(_, n)| n)
    }
}

/// How schemas are written.
#[derive(Debug, Clone, Copy)]
pub struct SchemaOptions {
    /// A field is required when at least this share of the objects have it.
    pub required_ratio: f64,
    /// `additionalProperties: false` on every object.
    pub closed: bool,
    /// `enum` for strings with few distinct values.
    pub enums: bool,
}

/// Strings become an enum (with `--enums`) when they take at most this many values, each
/// seen [`ENUM_MIN_REPEAT`] times on average.
pub const ENUM_MAX: usize = 20;
pub const ENUM_MIN_REPEAT: u64 = 4;

/// Documents and arrays nested deeper than this get an unconstrained schema (`{}`), and
/// their fields are not part of the shape: a schema mirrors the data's nesting about three
/// times over, and JSON readers limit nesting.
pub const MAX_DEPTH: usize = 24;

/// Writes the schema of a value position; `used` collects the `$defs` it refers to.
pub fn schema_of(node: &Node, opts: &SchemaOptions, used: &mut BTreeSet<&'static str>) -> Value {
    schema_at(node, opts, used, 1)
}

fn schema_at(
    node: &Node,
    opts: &SchemaOptions,
    used: &mut BTreeSet<&'static str>,
    depth: usize,
) -> Value {
    if depth > MAX_DEPTH {
        return json!({});
    }
    let mut plain: Vec<&'static str> = Vec::new();
    let mut alts: Vec<Value> = Vec::new();
    let has_double = node.kinds.contains_key(&Kind::Double);
    for kind in node.kinds.keys() {
        if let Some(t) = kind.json_type() {
            // Integers and doubles together: "number" holds both.
            if *kind == Kind::Int && has_double {
                continue;
            }
            plain.push(t);
        } else if let Some(d) = kind.def() {
            used.insert(d);
            alts.push(json!({ "$ref": format!("#/$defs/{d}") }));
        }
    }
    let mut m = Map::new();
    match plain.as_slice() {
        [] => {}
        [one] => {
            m.insert("type".into(), Value::from(*one));
        }
        many => {
            m.insert("type".into(), Value::from(many.to_vec()));
        }
    }
    if node.kinds.contains_key(&Kind::String) {
        let string_count = node.kinds[&Kind::String];
        if opts.enums
            && !node.strings_overflow
            && !node.strings.is_empty()
            && node.strings.len() <= ENUM_MAX
            && string_count >= ENUM_MIN_REPEAT * node.strings.len() as u64
        {
            let mut values: Vec<Value> = node.strings.iter().cloned().map(Value::from).collect();
            if plain.len() > 1 {
                // The enum must not exclude the other plain kinds: keep it for strings only.
                let other: Vec<&str> = plain.iter().copied().filter(|t| *t != "string").collect();
                m.insert(
                    "anyOf".into(),
                    json!([{ "type": "string", "enum": values }, { "type": other }]),
                );
            } else {
                m.insert("enum".into(), Value::Array(std::mem::take(&mut values)));
            }
        }
        if let Some(i) = (0..Formats::NAMES.len()).find(|i| node.formats & (1 << i) != 0) {
            m.insert("format".into(), Value::from(Formats::NAMES[i]));
        }
    }
    if node.kinds.contains_key(&Kind::Object) {
        let objects = node.kinds[&Kind::Object];
        let mut props = Map::new();
        let mut required = Vec::new();
        for (k, child) in &node.props {
            props.insert(k.clone(), schema_at(child, opts, used, depth + 1));
            if k != "_id" && child.count as f64 >= opts.required_ratio * objects as f64 {
                required.push(Value::from(k.as_str()));
            }
        }
        if !props.is_empty() {
            m.insert("properties".into(), Value::Object(props));
        }
        if !required.is_empty() {
            m.insert("required".into(), Value::Array(required));
        }
        if opts.closed {
            m.insert("additionalProperties".into(), Value::Bool(false));
        }
    }
    if node.kinds.contains_key(&Kind::Array) {
        if let Some(items) = node.items.as_deref().filter(|i| i.count > 0) {
            m.insert("items".into(), schema_at(items, opts, used, depth + 1));
        }
    }
    if alts.is_empty() {
        return Value::Object(m);
    }
    if m.is_empty() && alts.len() == 1 {
        return alts.pop().expect("one alternative");
    }
    if !m.is_empty() {
        alts.insert(0, Value::Object(m));
    }
    json!({ "anyOf": alts })
}

/// Every `path:kind` of a document (arrays add `[]` to the path), for its shape.
pub fn shape_paths(v: &Value, prefix: &str, out: &mut Vec<String>) {
    shape_paths_at(v, prefix, out, 1);
}

fn shape_paths_at(v: &Value, prefix: &str, out: &mut Vec<String>, depth: usize) {
    let kind = Kind::of(v);
    if !prefix.is_empty() {
        out.push(format!("{prefix}:{}", kind.shape_name()));
    }
    if depth >= MAX_DEPTH {
        return;
    }
    match (kind, v) {
        (Kind::Object, Value::Object(m)) => {
            for (k, x) in m {
                let p = if prefix.is_empty() {
                    k.clone()
                } else {
                    format!("{prefix}.{k}")
                };
                shape_paths_at(x, &p, out, depth + 1);
            }
        }
        (Kind::Array, Value::Array(a)) => {
            let p = format!("{prefix}[]");
            for x in a {
                shape_paths_at(x, &p, out, depth + 1);
            }
        }
        _ => {}
    }
}
