//! In-place validation of BSON documents: a `jsonschema` representation ([`RawBson`]) that reads
//! a document's bytes and presents exactly the relaxed Extended JSON view `from_bson` builds
//! (same keys in the same order, same types, strings and numbers, and the same wrapper objects
//! for the BSON types JSON lacks), without building a `serde_json::Value`.
//!
//! Only documents that pass [`preflight`] are read this way: those are well-formed and contain
//! nothing `from_bson` would rewrite, so the view needs no error handling of its own. Accessors
//! still never panic on any input (a malformed container simply ends early).

mod check;
mod preflight;

use std::borrow::Cow;
use std::ops::ControlFlow;

use base64::Engine as _;
use jsonschema::json::{cmp, Array, Json, Node, NodeIdentity, Object};
use jsonschema::JsonType;
use jsonschema_value::LazyInstance;
use serde_json::{Map, Number, Value};

#[doc(hidden)]
pub use self::check::{agreement, agreement_schemas, agreement_validators};
pub use self::preflight::{preflight, Checked};

use super::relaxed::{
    decimal_string, format_iso, hex_lower, non_finite_name, sort_options, MAX_ISO_MS,
};
use super::{StoredId, MAX_DEPTH};

/// The representation: nodes point into one BSON document's bytes.
pub struct RawBson;

impl RawBson {
    /// The root node of a document that passed [`preflight`].
    #[must_use]
    pub fn root(doc: Checked<'_>) -> RawNode<'_> {
        RawNode {
            at: doc.bytes(),
            kind: Kind::Doc,
        }
    }
}

/// One node of the relaxed view: a BSON value, or a synthetic part of a wrapper object.
#[derive(Clone, Copy)]
pub struct RawNode<'a> {
    /// The bytes of the BSON value the node comes from (its identity, and the source of
    /// synthetic parts).
    at: &'a [u8],
    kind: Kind<'a>,
}

#[derive(Clone, Copy)]
enum Kind<'a> {
    /// A document (its framed bytes).
    Doc,
    /// An array (its framed bytes).
    Array,
    /// A string borrowed from the bytes; the tag tells apart parts of one value.
    Str(&'a str, u8),
    Int(i64, u8),
    /// A finite double.
    Double(f64),
    Bool(bool, u8),
    Null,
    /// A wrapper object of BSON type `ty` (`level` 0 is the outer `{"$…": …}` object; 1 and 2 are
    /// nested objects such as `$binary`'s `{"base64": …, "subType": …}`).
    Wrapper(u8, u8),
    /// A string computed from the value's bytes (hex, base64, ISO date, decimal …).
    Text(u8, u8),
}

// Tags of `Str` parts.
const STR_PLAIN: u8 = 0;
const STR_PATTERN: u8 = 1;
const STR_NS: u8 = 2;
const STR_CODE: u8 = 3;
const STR_SYMBOL: u8 = 4;
const STR_NAME: u8 = 5;
// Tags of `Int` parts.
const INT_PLAIN: u8 = 0;
const INT_T: u8 = 1;
const INT_I: u8 = 2;
const INT_KEY: u8 = 3;
// Numbers of the container kinds in [`RawNode::tag`].
const TAG_DOC: u32 = 1;
const TAG_ARRAY: u32 = 2;
// Parts of `Text`.
const TEXT_MAIN: u8 = 0;
const TEXT_SUBTYPE: u8 = 1;
const TEXT_LONG: u8 = 2;

fn le<const N: usize>(buf: &[u8], pos: usize) -> Option<[u8; N]> {
    buf.get(pos..pos.checked_add(N)?)?.try_into().ok()
}

fn len_at(buf: &[u8], pos: usize) -> Option<usize> {
    usize::try_from(i32::from_le_bytes(le(buf, pos)?)).ok()
}

/// The offset after a value of type `t` at `pos`, within `lim`.
fn value_end(buf: &[u8], t: u8, pos: usize, lim: usize) -> Option<usize> {
    let end = match t {
        0x01 | 0x09 | 0x11 | 0x12 => pos.checked_add(8)?,
        0x02 | 0x0D | 0x0E | 0x0F | 0x03 | 0x04 => {
            let len = len_at(buf, pos)?;
            match t {
                0x02 | 0x0D | 0x0E => pos.checked_add(4)?.checked_add(len)?,
                _ => pos.checked_add(len)?,
            }
        }
        0x05 => pos.checked_add(5)?.checked_add(len_at(buf, pos)?)?,
        0x06 | 0x0A | 0x7F | 0xFF => pos,
        0x07 => pos.checked_add(12)?,
        0x08 => pos.checked_add(1)?,
        0x0B => {
            let first = buf.get(pos..lim)?.iter().position(|&b| b == 0)? + pos + 1;
            buf.get(first..lim)?.iter().position(|&b| b == 0)? + first + 1
        }
        0x0C => pos.checked_add(16)?.checked_add(len_at(buf, pos)?)?,
        0x10 => pos.checked_add(4)?,
        0x13 => pos.checked_add(16)?,
        _ => return None,
    };
    (end <= lim && end <= buf.len()).then_some(end)
}

/// The elements of a document or array (its framed bytes): raw key, type and value bytes.
#[derive(Clone)]
pub struct Elements<'a> {
    buf: &'a [u8],
    pos: usize,
    last: usize,
}

impl<'a> Elements<'a> {
    fn new(buf: &'a [u8]) -> Self {
        Elements {
            buf,
            pos: 4,
            last: buf.len().saturating_sub(1),
        }
    }
}

impl<'a> Elements<'a> {
    /// The next element: key, type, value offset and end offset (in the container's bytes).
    fn next_at(&mut self) -> Option<(&'a [u8], u8, usize, usize)> {
        let step = || {
            let t = *self.buf.get(self.pos).filter(|_| self.pos < self.last)?;
            if t == 0 {
                return None;
            }
            let key_start = self.pos + 1;
            let window = self.buf.get(key_start..self.last)?;
            let nul = window.iter().position(|&b| b == 0)?;
            let value_pos = key_start + nul + 1;
            let end = value_end(self.buf, t, value_pos, self.last)?;
            Some((&window[..nul], t, value_pos, end))
        };
        match step() {
            Some(found) => {
                self.pos = found.3;
                Some(found)
            }
            None => {
                self.pos = self.last;
                None
            }
        }
    }
}

impl<'a> Iterator for Elements<'a> {
    type Item = (&'a [u8], u8, &'a [u8]);

    fn next(&mut self) -> Option<Self::Item> {
        let (key, t, value_pos, end) = self.next_at()?;
        Some((key, t, self.buf.get(value_pos..end)?))
    }
}

/// A key, string, code, symbol, regular expression part or DBPointer namespace of the view.
fn utf8(bytes: &[u8]) -> &str {
    debug_assert!(
        std::str::from_utf8(bytes).is_ok(),
        "unchecked text in the view"
    );
    // SAFETY: every node of the view descends from `RawBson::root`, which takes a `Checked`
    // document: only `preflight` builds one, after checking that each of these texts is UTF-8.
    // The view walks the same framing as the preflight (`value_end` and `Walk::value` agree on
    // every well-formed document, which `Checked` guarantees), so `bytes` is exactly a slice
    // the preflight checked. Debug builds (tests, fuzzing) check it again above.
    unsafe { std::str::from_utf8_unchecked(bytes) }
}

/// The body of a BSON string at the start of `bytes` (length prefix, text, NUL).
fn string_body(bytes: &[u8]) -> &str {
    let body = len_at(bytes, 0)
        .and_then(|len| bytes.get(4..(4 + len).checked_sub(1)?))
        .unwrap_or_default();
    utf8(body)
}

/// The node of a BSON value of type `t` whose bytes are `at`.
fn node(t: u8, at: &[u8]) -> RawNode<'_> {
    let kind = match t {
        0x01 => {
            let x = le::<8>(at, 0).map_or(f64::NAN, f64::from_le_bytes);
            if x.is_finite() {
                Kind::Double(x)
            } else {
                Kind::Wrapper(t, 0)
            }
        }
        0x02 => Kind::Str(string_body(at), STR_PLAIN),
        0x03 => Kind::Doc,
        0x04 => Kind::Array,
        0x08 => Kind::Bool(at.first() == Some(&1), 0),
        0x0A => Kind::Null,
        0x10 => Kind::Int(
            le::<4>(at, 0).map_or(0, |b| i64::from(i32::from_le_bytes(b))),
            INT_PLAIN,
        ),
        0x12 => Kind::Int(le::<8>(at, 0).map_or(0, i64::from_le_bytes), INT_PLAIN),
        _ => Kind::Wrapper(t, 0),
    };
    RawNode { at, kind }
}

impl Json for RawBson {
    type Node<'a> = RawNode<'a>;
    type PreparedKey = Box<str>;
    type StringBuffer = ();

    // A lookup walks the members, so one members pass always beats two lookups.
    const KEYS_PER_LOOKUP: usize = 1024;
    const ACYCLIC: bool = true;

    fn prepare_key(key: &str) -> Box<str> {
        key.into()
    }

    fn with_string_node<T>((): &mut (), string: &str, f: impl FnOnce(RawNode<'_>) -> T) -> T {
        f(RawNode {
            at: string.as_bytes(),
            kind: Kind::Str(string, STR_NAME),
        })
    }
}

impl<'a> RawNode<'a> {
    fn date_ms(&self) -> i64 {
        le::<8>(self.at, 0).map_or(0, i64::from_le_bytes)
    }

    /// The members of a wrapper object (at most two).
    fn wrapper_members(&self, ty: u8, level: u8) -> [Option<(&'static str, RawNode<'a>)>; 2] {
        let at = self.at;
        let n = |kind| RawNode { at, kind };
        let one = |name, kind| [Some((name, n(kind))), None];
        match (ty, level) {
            (0x01, _) => one("$numberDouble", Kind::Text(ty, TEXT_MAIN)),
            (0x05, 0) => one("$binary", Kind::Wrapper(ty, 1)),
            (0x05, _) => [
                Some(("base64", n(Kind::Text(ty, TEXT_MAIN)))),
                Some(("subType", n(Kind::Text(ty, TEXT_SUBTYPE)))),
            ],
            (0x06, _) => one("$undefined", Kind::Bool(true, 1)),
            (0x07, _) => one("$oid", Kind::Text(ty, TEXT_MAIN)),
            (0x09, 0) => {
                if (0..=MAX_ISO_MS).contains(&self.date_ms()) {
                    one("$date", Kind::Text(ty, TEXT_MAIN))
                } else {
                    one("$date", Kind::Wrapper(ty, 1))
                }
            }
            (0x09, _) => one("$numberLong", Kind::Text(ty, TEXT_LONG)),
            (0x0B, 0) => one("$regularExpression", Kind::Wrapper(ty, 1)),
            (0x0B, _) => {
                let nul = at.iter().position(|&b| b == 0).unwrap_or(at.len());
                [
                    Some(("pattern", n(Kind::Str(utf8(&at[..nul]), STR_PATTERN)))),
                    Some(("options", n(Kind::Text(ty, TEXT_MAIN)))),
                ]
            }
            (0x0C, 0) => one("$dbPointer", Kind::Wrapper(ty, 1)),
            (0x0C, 1) => [
                Some(("$ref", n(Kind::Str(string_body(at), STR_NS)))),
                Some(("$id", n(Kind::Wrapper(ty, 2)))),
            ],
            (0x0C, _) => one("$oid", Kind::Text(ty, TEXT_MAIN)),
            (0x0D, _) => one("$code", Kind::Str(string_body(at), STR_CODE)),
            (0x0E, _) => one("$symbol", Kind::Str(string_body(at), STR_SYMBOL)),
            (0x0F, _) => {
                let code = at.get(4..).unwrap_or_default();
                let scope = len_at(code, 0)
                    .and_then(|len| at.get(8 + len..))
                    .unwrap_or_default();
                [
                    Some(("$code", n(Kind::Str(string_body(code), STR_CODE)))),
                    Some((
                        "$scope",
                        RawNode {
                            at: scope,
                            kind: Kind::Doc,
                        },
                    )),
                ]
            }
            (0x11, 0) => one("$timestamp", Kind::Wrapper(ty, 1)),
            (0x11, _) => {
                let raw = le::<8>(at, 0).map_or(0, u64::from_le_bytes);
                [
                    Some(("t", n(Kind::Int(i64::from((raw >> 32) as u32), INT_T)))),
                    Some(("i", n(Kind::Int(i64::from(raw as u32), INT_I)))),
                ]
            }
            (0x13, _) => one("$numberDecimal", Kind::Text(ty, TEXT_MAIN)),
            (0xFF, _) => one("$minKey", Kind::Int(1, INT_KEY)),
            (0x7F, _) => one("$maxKey", Kind::Int(1, INT_KEY)),
            _ => [None, None],
        }
    }

    /// The text of a `Text` node.
    fn text(&self, ty: u8, part: u8) -> String {
        let at = self.at;
        match (ty, part) {
            (0x01, _) => {
                non_finite_name(le::<8>(at, 0).map_or(f64::NAN, f64::from_le_bytes)).to_owned()
            }
            (0x05, TEXT_SUBTYPE) => hex_lower(at.get(4..5).unwrap_or_default()),
            (0x05, _) => {
                let data = at.get(5..).unwrap_or_default();
                let payload = if at.get(4) == Some(&2) {
                    data.get(4..).unwrap_or_default()
                } else {
                    data
                };
                base64::engine::general_purpose::STANDARD.encode(payload)
            }
            (0x07, _) => hex_lower(at.get(..12).unwrap_or_default()),
            (0x09, TEXT_LONG) => self.date_ms().to_string(),
            (0x09, _) => format_iso(self.date_ms()),
            (0x0B, _) => {
                let mut parts = at.split(|&b| b == 0);
                let _pattern = parts.next();
                sort_options(utf8(parts.next().unwrap_or_default()))
            }
            (0x0C, _) => {
                let oid = len_at(at, 0)
                    .and_then(|len| at.get(4 + len..16 + len))
                    .unwrap_or_default();
                hex_lower(oid)
            }
            (0x13, _) => le::<16>(at, 0).map_or_else(String::new, decimal_string),
            _ => String::new(),
        }
    }

    /// The node's kind and part, packed: the kind's number in bits 16 and up (see
    /// [`materialize_container`], which reads it back).
    fn tag(&self) -> u32 {
        let (kind, a, b) = match self.kind {
            Kind::Doc => (TAG_DOC, 0, 0),
            Kind::Array => (TAG_ARRAY, 0, 0),
            Kind::Str(_, t) => (3, t, 0),
            Kind::Int(_, t) => (4, t, 0),
            Kind::Double(_) => (5, 0, 0),
            Kind::Bool(_, t) => (6, t, 0),
            Kind::Null => (7, 0, 0),
            Kind::Wrapper(ty, level) => (8, ty, level),
            Kind::Text(ty, part) => (9, ty, part),
        };
        (kind << 16) | (u32::from(a) << 8) | u32::from(b)
    }
}

/// The value of `node`, built (for cold paths and the projection of documents).
fn materialize(node: &RawNode<'_>, depth: usize) -> Value {
    if depth > MAX_DEPTH + 2 {
        return Value::Null;
    }
    match node.kind {
        Kind::Doc | Kind::Wrapper(..) => {
            let mut map = Map::new();
            if let Some(object) = node.as_object() {
                for (name, value) in object.members() {
                    map.insert(name.to_owned(), materialize(&value, depth + 1));
                }
            }
            Value::Object(map)
        }
        Kind::Array => Value::Array(
            node.as_array()
                .map(|a| a.elements().map(|e| materialize(&e, depth + 1)).collect())
                .unwrap_or_default(),
        ),
        Kind::Str(s, _) => Value::String(s.to_owned()),
        Kind::Text(ty, part) => Value::String(node.text(ty, part)),
        Kind::Int(i, _) => Value::Number(Number::from(i)),
        Kind::Double(x) => Number::from_f64(x).map_or(Value::Null, Value::Number),
        Kind::Bool(b, _) => Value::Bool(b),
        Kind::Null => Value::Null,
    }
}

/// [`materialize`] of the container a deferred instance names: `at` is a document's or an
/// array's bytes from a checked document, and `tag` its [`RawNode::tag`].
fn materialize_container(at: &[u8], tag: u32) -> Value {
    let kind = if tag >> 16 == TAG_ARRAY {
        Kind::Array
    } else {
        Kind::Doc
    };
    materialize(&RawNode { at, kind }, 0)
}

impl<'a> Node<'a, RawBson> for RawNode<'a> {
    type Object = RawObject<'a>;
    type Array = RawArray<'a>;
    type Number = Number;

    fn as_object(&self) -> Option<RawObject<'a>> {
        match self.kind {
            Kind::Doc => Some(RawObject::Doc(self.at)),
            Kind::Wrapper(ty, level) => Some(RawObject::Wrapper(*self, ty, level)),
            _ => None,
        }
    }

    fn as_array(&self) -> Option<RawArray<'a>> {
        match self.kind {
            Kind::Array => Some(RawArray(self.at)),
            _ => None,
        }
    }

    fn as_string(&self) -> Option<Cow<'a, str>> {
        match self.kind {
            Kind::Str(s, _) => Some(Cow::Borrowed(s)),
            Kind::Text(ty, part) => Some(Cow::Owned(self.text(ty, part))),
            _ => None,
        }
    }

    fn as_number(&self) -> Option<Number> {
        match self.kind {
            Kind::Int(i, _) => Some(Number::from(i)),
            Kind::Double(x) => Number::from_f64(x),
            _ => None,
        }
    }

    fn as_boolean(&self) -> Option<bool> {
        match self.kind {
            Kind::Bool(b, _) => Some(b),
            _ => None,
        }
    }

    fn is_null(&self) -> bool {
        matches!(self.kind, Kind::Null)
    }

    fn is_number(&self) -> bool {
        matches!(self.kind, Kind::Int(..) | Kind::Double(_))
    }

    fn is_string(&self) -> bool {
        matches!(self.kind, Kind::Str(..) | Kind::Text(..))
    }

    fn json_type(&self) -> JsonType {
        match self.kind {
            Kind::Doc | Kind::Wrapper(..) => JsonType::Object,
            Kind::Array => JsonType::Array,
            Kind::Str(..) | Kind::Text(..) => JsonType::String,
            Kind::Int(..) | Kind::Double(_) => JsonType::Number,
            Kind::Bool(..) => JsonType::Boolean,
            Kind::Null => JsonType::Null,
        }
    }

    fn equals_value(&self, expected: &Value) -> bool {
        match expected {
            Value::Null => self.is_null(),
            Value::Bool(b) => self.as_boolean() == Some(*b),
            Value::Number(n) => self
                .as_number()
                .is_some_and(|got| cmp::equal_numbers(&got, n)),
            Value::String(s) => self.as_string().is_some_and(|got| got == s.as_str()),
            Value::Array(items) => self.as_array().is_some_and(|array| {
                array.len() == items.len()
                    && array
                        .elements()
                        .zip(items)
                        .all(|(got, want)| got.equals_value(want))
            }),
            Value::Object(map) => self.as_object().is_some_and(|object| {
                object.len() == map.len()
                    && object
                        .members()
                        .all(|(name, got)| map.get(name).is_some_and(|want| got.equals_value(want)))
            }),
        }
    }

    fn to_value(&self) -> Cow<'a, Value> {
        Cow::Owned(materialize(self, 0))
    }

    /// A document's or array's instance is built when an error's instance is read, not when
    /// the error is: `iter_errors` builds every error, and most are counted, never shown.
    fn lazy_value(&self) -> LazyInstance<'a> {
        match self.kind {
            Kind::Doc | Kind::Array => LazyInstance::Deferred {
                bytes: self.at,
                tag: self.tag(),
                make: materialize_container,
                cell: std::sync::OnceLock::new(),
            },
            _ => LazyInstance::Ready(self.to_value()),
        }
    }

    fn identity(&self) -> Option<NodeIdentity> {
        Some(NodeIdentity::tagged(self.at.as_ptr() as usize, self.tag()))
    }
}

/// An object of the view: a document, or a synthetic wrapper object.
#[derive(Clone, Copy)]
pub enum RawObject<'a> {
    Doc(&'a [u8]),
    Wrapper(RawNode<'a>, u8, u8),
}

pub enum RawMembers<'a> {
    Doc(Elements<'a>),
    Fixed(std::array::IntoIter<Option<(&'static str, RawNode<'a>)>, 2>),
}

impl<'a> Iterator for RawMembers<'a> {
    type Item = (&'a str, RawNode<'a>);

    fn next(&mut self) -> Option<Self::Item> {
        match self {
            RawMembers::Doc(elements) => {
                elements.next().map(|(key, t, at)| (utf8(key), node(t, at)))
            }
            RawMembers::Fixed(members) => members.next().flatten(),
        }
    }
}

impl<'a> Object<'a, RawBson> for RawObject<'a> {
    type Node = RawNode<'a>;
    type MemberName = &'a str;
    type MembersIter = RawMembers<'a>;

    fn len(&self) -> usize {
        match self {
            RawObject::Doc(at) => Elements::new(at).count(),
            RawObject::Wrapper(n, ty, level) => {
                n.wrapper_members(*ty, *level).iter().flatten().count()
            }
        }
    }

    fn get(&self, key: &Box<str>) -> Option<RawNode<'a>> {
        match self {
            RawObject::Doc(at) => Elements::new(at)
                .find(|(name, _, _)| *name == key.as_bytes())
                .map(|(_, t, at)| node(t, at)),
            RawObject::Wrapper(n, ty, level) => n
                .wrapper_members(*ty, *level)
                .into_iter()
                .flatten()
                .find(|(name, _)| *name == &**key)
                .map(|(_, v)| v),
        }
    }

    fn members(&self) -> RawMembers<'a> {
        match self {
            RawObject::Doc(at) => RawMembers::Doc(Elements::new(at)),
            RawObject::Wrapper(n, ty, level) => {
                RawMembers::Fixed(n.wrapper_members(*ty, *level).into_iter())
            }
        }
    }

    fn try_for_each_name_node<B>(
        &self,
        (): &mut (),
        mut f: impl FnMut(RawNode<'_>) -> ControlFlow<B>,
    ) -> ControlFlow<B> {
        for (name, _) in self.members() {
            f(RawNode {
                at: name.as_bytes(),
                kind: Kind::Str(name, STR_NAME),
            })?;
        }
        ControlFlow::Continue(())
    }
}

/// An array of the view (its framed bytes).
#[derive(Clone, Copy)]
pub struct RawArray<'a>(&'a [u8]);

pub struct RawElements<'a>(Elements<'a>);

impl<'a> Iterator for RawElements<'a> {
    type Item = RawNode<'a>;

    fn next(&mut self) -> Option<RawNode<'a>> {
        self.0.next().map(|(_, t, at)| node(t, at))
    }
}

impl<'a> Array<'a, RawBson> for RawArray<'a> {
    type Node = RawNode<'a>;
    type ElementsIter = RawElements<'a>;

    fn len(&self) -> usize {
        Elements::new(self.0).count()
    }

    fn elements(&self) -> RawElements<'a> {
        RawElements(Elements::new(self.0))
    }
}

/// The `_id` (or any node) in the arena's stored form: an ObjectId's 12 bytes are taken as
/// they are; anything else is built and rendered as [`StoredId::of`] renders its value.
#[must_use]
pub fn stored_id(node: RawNode<'_>) -> StoredId {
    match (node.kind, le::<12>(node.at, 0)) {
        (Kind::Wrapper(0x07, 0), Some(oid)) => StoredId::Oid(oid),
        _ => StoredId::of(&materialize(&node, 0)),
    }
}

/// The relaxed Extended JSON value of a whole document, built from the view (tests compare it
/// with `from_bson`).
#[must_use]
pub fn to_value(doc: Checked<'_>) -> Value {
    materialize(&RawBson::root(doc), 0)
}
