//! BSON decoder: walks raw BSON bytes with full bounds checking and builds the relaxed Extended
//! JSON value directly (no intermediate `bson::Document`).

use serde_json::{Map, Value};

use super::ejson::classify;
use super::error::{BsonErrorKind as Kind, DecodeError};
use super::{relaxed, Decoded, MAX_DEPTH};

/// Decode exactly one complete BSON document (its length prefix must equal `doc.len()`).
pub fn from_bson(doc: &[u8]) -> Result<Decoded, DecodeError> {
    let declared = read_i32(doc, 0, doc.len())
        .ok_or_else(|| DecodeError::bson(0, Kind::Truncated("document length prefix")))?;
    if declared < 5 {
        return Err(DecodeError::bson(
            0,
            Kind::DocumentTooShort(declared.into()),
        ));
    }
    if usize::try_from(declared).ok() != Some(doc.len()) {
        return Err(DecodeError::bson(
            0,
            Kind::LengthMismatch {
                declared: declared.into(),
                actual: doc.len(),
            },
        ));
    }
    let mut dec = Decoder { buf: doc, max: 1 };
    let (map, _) = dec.document(0, doc.len(), 1)?;
    Ok(Decoded {
        value: Value::Object(map),
        depth: dec.max,
    })
}

fn read_array<const N: usize>(buf: &[u8], pos: usize, lim: usize) -> Option<[u8; N]> {
    let end = pos.checked_add(N)?;
    if end > lim {
        return None;
    }
    buf.get(pos..end)?.try_into().ok()
}

/// The little-endian i32 at `pos`, when it ends by `lim`.
pub(super) fn read_i32(buf: &[u8], pos: usize, lim: usize) -> Option<i32> {
    read_array(buf, pos, lim).map(i32::from_le_bytes)
}

/// An embedded document whose keys make it an Extended JSON type wrapper (e.g. a stored
/// `{"$date": "…"}`) is indistinguishable from that type in Extended JSON (spec "Restrictions and
/// limitations"). Treat it exactly as `from_ejson` treats the same JSON text, so both sources
/// always agree: a valid wrapper is normalised, a malformed one is an error.
fn wrapper_like(map: Map<String, Value>, pos: usize) -> Result<Value, DecodeError> {
    if !map.keys().any(|k| k.starts_with('$')) {
        return Ok(Value::Object(map));
    }
    match classify(&map) {
        Ok(None) => {}
        Ok(Some(w)) => return Ok(w.to_relaxed()),
        Err(kind) => return Err(err(pos, Kind::MalformedWrapper(kind))),
    }
    Ok(Value::Object(map))
}

fn err(offset: usize, kind: Kind) -> DecodeError {
    DecodeError::bson(offset, kind)
}

struct Decoder<'a> {
    buf: &'a [u8],
    /// Deepest nesting level seen so far.
    max: usize,
}

impl<'a> Decoder<'a> {
    fn fixed<const N: usize>(
        &self,
        pos: usize,
        lim: usize,
        what: &'static str,
    ) -> Result<[u8; N], DecodeError> {
        read_array(self.buf, pos, lim).ok_or_else(|| err(pos, Kind::Truncated(what)))
    }

    fn byte(&self, pos: usize, lim: usize, what: &'static str) -> Result<u8, DecodeError> {
        self.fixed::<1>(pos, lim, what).map(|[b]| b)
    }

    /// Validate the frame (length prefix and terminator) of a document starting at `start` that
    /// must end by `lim`; returns its end offset (exclusive).
    fn frame(&self, start: usize, lim: usize, what: &'static str) -> Result<usize, DecodeError> {
        let len = i32::from_le_bytes(self.fixed(start, lim, "document length")?);
        if len < 5 {
            return Err(err(start, Kind::DocumentTooShort(len.into())));
        }
        let end = usize::try_from(len)
            .ok()
            .and_then(|l| start.checked_add(l))
            .filter(|&e| e <= lim)
            .ok_or_else(|| {
                err(
                    start,
                    Kind::Overrun {
                        what,
                        declared: len.into(),
                        available: lim.saturating_sub(start),
                    },
                )
            })?;
        if self.buf.get(end - 1) != Some(&0) {
            return Err(err(end - 1, Kind::MissingTerminator));
        }
        Ok(end)
    }

    /// C-string starting at `pos`, NUL strictly before `lim`. Returns bytes and the next offset.
    fn cstring(
        &self,
        pos: usize,
        lim: usize,
        what: &'static str,
    ) -> Result<(&'a [u8], usize), DecodeError> {
        let window = self
            .buf
            .get(pos..lim)
            .ok_or_else(|| err(pos, Kind::UnterminatedCString(what)))?;
        let nul = window
            .iter()
            .position(|&b| b == 0)
            .ok_or_else(|| err(pos, Kind::UnterminatedCString(what)))?;
        Ok((&window[..nul], pos + nul + 1))
    }

    fn cstr(
        &self,
        pos: usize,
        lim: usize,
        what: &'static str,
    ) -> Result<(&'a str, usize), DecodeError> {
        let (bytes, next) = self.cstring(pos, lim, what)?;
        let s = std::str::from_utf8(bytes).map_err(|_| err(pos, Kind::InvalidUtf8(what)))?;
        Ok((s, next))
    }

    /// BSON string (i32 length incl. NUL, bytes, NUL).
    fn string(&self, pos: usize, lim: usize) -> Result<(&'a str, usize), DecodeError> {
        let len = i32::from_le_bytes(self.fixed(pos, lim, "string length")?);
        if len < 1 {
            return Err(err(
                pos,
                Kind::BadLength {
                    what: "string",
                    len: len.into(),
                },
            ));
        }
        let body = pos + 4;
        let end = usize::try_from(len)
            .ok()
            .and_then(|l| body.checked_add(l))
            .filter(|&e| e <= lim)
            .ok_or_else(|| {
                err(
                    pos,
                    Kind::Overrun {
                        what: "string",
                        declared: len.into(),
                        available: lim.saturating_sub(body),
                    },
                )
            })?;
        if self.buf.get(end - 1) != Some(&0) {
            return Err(err(end - 1, Kind::StringNotTerminated));
        }
        let bytes = self
            .buf
            .get(body..end - 1)
            .ok_or_else(|| err(pos, Kind::Truncated("string")))?;
        let s = std::str::from_utf8(bytes).map_err(|_| err(body, Kind::InvalidUtf8("string")))?;
        Ok((s, end))
    }

    fn enter(&mut self, pos: usize, depth: usize) -> Result<usize, DecodeError> {
        if depth >= MAX_DEPTH {
            return Err(err(pos, Kind::TooDeep));
        }
        self.max = self.max.max(depth + 1);
        Ok(depth + 1)
    }

    /// Document at `start` (level `depth`) bounded by `lim`: its map and end offset.
    fn document(
        &mut self,
        start: usize,
        lim: usize,
        depth: usize,
    ) -> Result<(Map<String, Value>, usize), DecodeError> {
        let end = self.frame(start, lim, "document")?;
        let last = end - 1;
        let mut map = Map::new();
        let mut pos = start + 4;
        loop {
            let t = self.byte(pos, end, "element type")?;
            if t == 0 {
                if pos == last {
                    return Ok((map, end));
                }
                return Err(err(pos, Kind::TrailingBytes(last - pos)));
            }
            let (key, value_pos) = self.cstr(pos + 1, last, "key")?;
            let (value, next) = self
                .value(t, pos, value_pos, last, depth)
                .map_err(|e| e.within(&key))?;
            if map.insert(key.to_owned(), value).is_some() {
                return Err(err(pos, Kind::DuplicateKey).within(&key));
            }
            pos = next;
        }
    }

    /// Array at `start` (level `depth`): keys are only checked to be C-strings.
    fn array(
        &mut self,
        start: usize,
        lim: usize,
        depth: usize,
    ) -> Result<(Vec<Value>, usize), DecodeError> {
        let end = self.frame(start, lim, "array")?;
        let last = end - 1;
        let mut items = Vec::new();
        let mut pos = start + 4;
        loop {
            let t = self.byte(pos, end, "element type")?;
            if t == 0 {
                if pos == last {
                    return Ok((items, end));
                }
                return Err(err(pos, Kind::TrailingBytes(last - pos)));
            }
            let (_, value_pos) = self.cstring(pos + 1, last, "array key")?;
            let index = items.len();
            let (value, next) = self
                .value(t, pos, value_pos, last, depth)
                .map_err(|e| e.within(&index))?;
            items.push(value);
            pos = next;
        }
    }

    /// Value of type `t` (element starting at `elem`) at `pos`, bounded by `lim`, inside a
    /// container at level `depth`. Returns the value and the offset after it.
    fn value(
        &mut self,
        t: u8,
        elem: usize,
        pos: usize,
        lim: usize,
        depth: usize,
    ) -> Result<(Value, usize), DecodeError> {
        Ok(match t {
            0x01 => (
                relaxed::double(f64::from_le_bytes(self.fixed(pos, lim, "double")?)),
                pos + 8,
            ),
            0x02 => {
                let (s, next) = self.string(pos, lim)?;
                (Value::String(s.to_owned()), next)
            }
            0x03 => {
                let inner = self.enter(pos, depth)?;
                let (map, next) = self.document(pos, lim, inner)?;
                (wrapper_like(map, pos)?, next)
            }
            0x04 => {
                let inner = self.enter(pos, depth)?;
                let (items, next) = self.array(pos, lim, inner)?;
                (Value::Array(items), next)
            }
            0x05 => self.binary(pos, lim)?,
            0x06 => (relaxed::undefined(), pos),
            0x07 => (
                relaxed::object_id(&self.fixed(pos, lim, "ObjectId")?),
                pos + 12,
            ),
            0x08 => match self.byte(pos, lim, "boolean")? {
                0 => (Value::Bool(false), pos + 1),
                1 => (Value::Bool(true), pos + 1),
                b => return Err(err(pos, Kind::BadBoolean(b))),
            },
            0x09 => (
                relaxed::date(i64::from_le_bytes(self.fixed(pos, lim, "datetime")?)),
                pos + 8,
            ),
            0x0A => (Value::Null, pos),
            0x0B => {
                let (pattern, next) = self.cstr(pos, lim, "regex pattern")?;
                let (options, next) = self.cstr(next, lim, "regex options")?;
                (relaxed::regex(pattern, options), next)
            }
            0x0C => {
                let (ns, next) = self.string(pos, lim)?;
                let oid = self.fixed(next, lim, "DBPointer ObjectId")?;
                (relaxed::db_pointer(ns, &oid), next + 12)
            }
            0x0D => {
                let (code, next) = self.string(pos, lim)?;
                (relaxed::code(code), next)
            }
            0x0E => {
                let (sym, next) = self.string(pos, lim)?;
                (relaxed::symbol(sym), next)
            }
            0x0F => self.code_with_scope(pos, lim, depth)?,
            0x10 => (
                relaxed::int(i32::from_le_bytes(self.fixed(pos, lim, "int32")?).into()),
                pos + 4,
            ),
            0x11 => {
                let raw = u64::from_le_bytes(self.fixed(pos, lim, "timestamp")?);
                let (t, i) = ((raw >> 32) as u32, raw as u32);
                (relaxed::timestamp(t, i), pos + 8)
            }
            0x12 => (
                relaxed::int(i64::from_le_bytes(self.fixed(pos, lim, "int64")?)),
                pos + 8,
            ),
            0x13 => (
                relaxed::decimal(self.fixed(pos, lim, "decimal128")?),
                pos + 16,
            ),
            0xFF => (relaxed::min_key(), pos),
            0x7F => (relaxed::max_key(), pos),
            other => return Err(err(elem, Kind::UnknownType(other))),
        })
    }

    fn binary(&self, pos: usize, lim: usize) -> Result<(Value, usize), DecodeError> {
        let len = i32::from_le_bytes(self.fixed(pos, lim, "binary length")?);
        let subtype = self.byte(pos + 4, lim, "binary subtype")?;
        let data_start = pos + 5;
        let bad = || {
            err(
                pos,
                Kind::BadLength {
                    what: "binary",
                    len: len.into(),
                },
            )
        };
        let ulen = usize::try_from(len).map_err(|_| bad())?;
        let end = data_start
            .checked_add(ulen)
            .filter(|&e| e <= lim)
            .ok_or_else(|| {
                err(
                    pos,
                    Kind::Overrun {
                        what: "binary",
                        declared: len.into(),
                        available: lim.saturating_sub(data_start),
                    },
                )
            })?;
        let data = self.buf.get(data_start..end).ok_or_else(bad)?;
        let payload = if subtype == 2 {
            // Old binary: the payload repeats its own length.
            let inner = read_i32(self.buf, data_start, end);
            match inner {
                Some(inner) if i64::from(inner) == i64::from(len) - 4 => {
                    data.get(4..).ok_or_else(bad)?
                }
                _ => {
                    return Err(err(
                        data_start,
                        Kind::BadOldBinary {
                            inner: inner.map_or(-1, i64::from),
                            outer: len.into(),
                        },
                    ))
                }
            }
        } else {
            data
        };
        Ok((relaxed::binary(subtype, payload), end))
    }

    fn code_with_scope(
        &mut self,
        pos: usize,
        lim: usize,
        depth: usize,
    ) -> Result<(Value, usize), DecodeError> {
        let total = i32::from_le_bytes(self.fixed(pos, lim, "code-with-scope length")?);
        // 4 (total) + 5 (empty string) + 5 (empty document).
        if total < 14 {
            return Err(err(
                pos,
                Kind::BadLength {
                    what: "code-with-scope",
                    len: total.into(),
                },
            ));
        }
        let end = usize::try_from(total)
            .ok()
            .and_then(|t| pos.checked_add(t))
            .filter(|&e| e <= lim)
            .ok_or_else(|| {
                err(
                    pos,
                    Kind::Overrun {
                        what: "code-with-scope",
                        declared: total.into(),
                        available: lim.saturating_sub(pos),
                    },
                )
            })?;
        let (code, scope_pos) = self.string(pos + 4, end)?;
        let inner = self.enter(scope_pos, depth)?;
        let (scope, scope_end) = self
            .document(scope_pos, end, inner)
            .map_err(|e| e.within(&"$scope"))?;
        if scope_end != end {
            return Err(err(
                pos,
                Kind::CodeWithScopeLength {
                    declared: total.into(),
                    actual: scope_end - pos,
                },
            ));
        }
        Ok((relaxed::code_with_scope(code, scope), end))
    }
}
