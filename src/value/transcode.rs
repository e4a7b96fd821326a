//! One export line (Extended JSON text) straight to BSON bytes, in one streaming pass: serde_json's
//! parser drives a BSON writer through a [`DeserializeSeed`], with no `Value` tree and no maps.
//!
//! The bytes are exactly `to_bson(&from_json(line)?.value)`: the same Extended JSON rules
//! ([`from_json`](super::from_json) then [`to_bson`](super::to_bson)), including the width rule
//! for integers (Int32 when it fits, else Int64; beyond i64 a double) and the normal form of every
//! wrapper (a `$numberLong` that fits 32 bits becomes an Int32, as the relaxed value does).
//! Whatever is unusual or unsure makes it give up (`None`), and the caller takes the decode path,
//! which also words the errors: syntax errors, repeated keys, NUL in keys, depth beyond
//! [`MAX_DEPTH`], non-finite numbers, sizes beyond BSON's, `$`-prefixed keys other than a whole
//! wrapper it handles as the first key of an embedded object, and these wrappers:
//! `$dbPointer`, `$code` with `$scope`, legacy `$binary` written after its `$type`.
//!
//! Handled wrappers: `$oid`, `$date` (ISO string, `$numberLong` object or integer), `$numberInt`,
//! `$numberLong`, `$numberDouble`, `$numberDecimal`, `$binary` (canonical and legacy), `$uuid`,
//! `$timestamp`, `$regularExpression`, legacy `$regex`/`$options`, `$code` (without scope),
//! `$symbol`, `$minKey`, `$maxKey`, `$undefined`.

use std::fmt;

use base64::Engine as _;
use serde::de::{self, DeserializeSeed, Deserializer, MapAccess, SeqAccess, Visitor};

use super::ejson::Wrapper;
use super::encode::{self, decimal_key};
use super::relaxed;
use super::MAX_DEPTH;

/// Beyond this many keys an object's repeated-key check sorts its keys once at the end instead
/// of comparing each new key with the previous ones.
const LINEAR_KEYS: usize = 16;

/// A reusable transcoder: its buffers keep their capacity from one line to the next.
#[derive(Default)]
pub struct Transcoder {
    /// The BSON being written.
    out: Vec<u8>,
    /// Byte ranges (in `out`) of the keys of the objects being written, innermost last.
    keys: Vec<(usize, usize)>,
    /// Decoded `$binary` payloads.
    scratch: Vec<u8>,
}

/// `to_bson(&from_json(line)?.value)` when the line is a document the transcoder handles fully;
/// `None` otherwise (take the decode path).
#[must_use]
pub fn transcode(line: &[u8]) -> Option<Vec<u8>> {
    Transcoder::default().transcode(line).map(<[u8]>::to_vec)
}

impl Transcoder {
    #[must_use]
    pub fn new() -> Self {
        Self::default()
    }

    /// [`transcode`] into this transcoder's buffer (valid until the next call).
    pub fn transcode(&mut self, line: &[u8]) -> Option<&[u8]> {
        self.out.clear();
        self.keys.clear();
        let mut de = serde_json::Deserializer::from_slice(line);
        let done = Seed { t: self, depth: 0 }
            .deserialize(&mut de)
            .and_then(|_| de.end())
            .is_ok();
        done.then_some(self.out.as_slice())
    }

    /// Gives back memory after an unusually large document.
    pub fn trim(&mut self, keep: usize) {
        if self.out.capacity() > keep {
            self.out = Vec::new();
        }
        if self.scratch.capacity() > keep {
            self.scratch = Vec::new();
        }
    }

    fn string(&mut self, s: &str) -> Option<()> {
        encode::write_string(&mut self.out, s).ok()
    }

    /// Overwrites the length placeholder at `start` with the length from there to the end.
    fn patch_len(&mut self, start: usize) -> Option<()> {
        encode::patch_len(&mut self.out, start, "document").ok()
    }

    /// Whether the keys from `base` on (one object's) hold a repeat: the last one against the
    /// others while the object is small, all at once (sorted) at its end when it is large.
    fn repeated(&self, base: usize, at_end: bool) -> bool {
        let keys = &self.keys[base..];
        let out = &self.out;
        let key = |&(a, b): &(usize, usize)| &out[a..b];
        if !at_end {
            let Some((last, others)) = keys.split_last() else {
                return false;
            };
            return others.len() < LINEAR_KEYS && others.iter().any(|k| key(k) == key(last));
        }
        if keys.len() <= LINEAR_KEYS {
            return false;
        }
        let mut sorted: Vec<&[u8]> = keys.iter().map(key).collect();
        sorted.sort_unstable();
        sorted.windows(2).any(|w| w[0] == w[1])
    }
}

/// Gives up: the caller takes the decode path.
fn bail<E: de::Error>() -> E {
    E::custom("not transcoded")
}

fn ok_or_bail<T, E: de::Error>(v: Option<T>) -> Result<T, E> {
    v.ok_or_else(bail)
}

/// One JSON value inside a document at nesting level `depth` (0: the line itself, which must be
/// an object): writes its BSON value bytes and answers its BSON type byte.
struct Seed<'t> {
    t: &'t mut Transcoder,
    depth: usize,
}

impl<'de> DeserializeSeed<'de> for Seed<'_> {
    type Value = u8;

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<u8, D::Error> {
        d.deserialize_any(self)
    }
}

/// A key: written as an element header (a type byte placeholder, the key, its NUL); answers
/// the header's offset and the key's byte range.
struct Key<'t>(&'t mut Vec<u8>);

#[derive(Clone, Copy)]
struct Header {
    type_pos: usize,
    start: usize,
    end: usize,
}

impl<'de> DeserializeSeed<'de> for Key<'_> {
    type Value = Header;

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Header, D::Error> {
        d.deserialize_str(self)
    }
}

impl Visitor<'_> for Key<'_> {
    type Value = Header;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a key")
    }

    fn visit_str<E: de::Error>(self, s: &str) -> Result<Header, E> {
        if s.as_bytes().contains(&0) {
            return Err(bail());
        }
        let type_pos = self.0.len();
        self.0.push(0);
        let start = self.0.len();
        self.0.extend_from_slice(s.as_bytes());
        let end = self.0.len();
        self.0.push(0);
        Ok(Header {
            type_pos,
            start,
            end,
        })
    }
}

/// A key of a wrapper's object: which of `names` it is (any other key gives up).
struct KeyIn(&'static [&'static str]);

impl<'de> DeserializeSeed<'de> for KeyIn {
    type Value = usize;

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<usize, D::Error> {
        d.deserialize_str(self)
    }
}

impl Visitor<'_> for KeyIn {
    type Value = usize;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a wrapper key")
    }

    fn visit_str<E: de::Error>(self, s: &str) -> Result<usize, E> {
        ok_or_bail(self.0.iter().position(|n| *n == s))
    }
}

/// A string value, handed to `F` (anything else gives up).
struct Str<F>(F);

impl<'de, R, F: FnOnce(&str) -> Option<R>> DeserializeSeed<'de> for Str<F> {
    type Value = R;

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<R, D::Error> {
        d.deserialize_str(self)
    }
}

impl<R, F: FnOnce(&str) -> Option<R>> Visitor<'_> for Str<F> {
    type Value = R;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a string")
    }

    fn visit_str<E: de::Error>(self, s: &str) -> Result<R, E> {
        ok_or_bail((self.0)(s))
    }
}

/// An integer value that fits `i64` (anything else gives up).
struct IntSeed;

impl<'de> DeserializeSeed<'de> for IntSeed {
    type Value = i64;

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<i64, D::Error> {
        d.deserialize_any(self)
    }
}

impl Visitor<'_> for IntSeed {
    type Value = i64;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("an integer")
    }

    fn visit_i64<E: de::Error>(self, v: i64) -> Result<i64, E> {
        Ok(v)
    }

    fn visit_u64<E: de::Error>(self, v: u64) -> Result<i64, E> {
        ok_or_bail(i64::try_from(v).ok())
    }
}

/// `{"$timestamp": {"t": u32, "i": u32}}`'s object: (t, i).
struct TimestampSeed;

impl<'de> DeserializeSeed<'de> for TimestampSeed {
    type Value = (u32, u32);

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<(u32, u32), D::Error> {
        d.deserialize_map(self)
    }
}

impl<'de> Visitor<'de> for TimestampSeed {
    type Value = (u32, u32);

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a timestamp")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(u32, u32), A::Error> {
        let mut got = [None; 2];
        while let Some(k) = map.next_key_seed(KeyIn(&["t", "i"]))? {
            let v = ok_or_bail(u32::try_from(map.next_value_seed(IntSeed)?).ok())?;
            if got[k].replace(v).is_some() {
                return Err(bail());
            }
        }
        match got {
            [Some(t), Some(i)] => Ok((t, i)),
            _ => Err(bail()),
        }
    }
}

/// An object with exactly the two string members `names` (any order): their values.
struct Pair(&'static [&'static str; 2]);

impl<'de> DeserializeSeed<'de> for Pair {
    type Value = [String; 2];

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<[String; 2], D::Error> {
        d.deserialize_map(self)
    }
}

impl<'de> Visitor<'de> for Pair {
    type Value = [String; 2];

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a wrapper object")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<[String; 2], A::Error> {
        let mut got: [Option<String>; 2] = [None, None];
        while let Some(k) = map.next_key_seed(KeyIn(self.0))? {
            let v = map.next_value_seed(Str(|s: &str| Some(s.to_owned())))?;
            if got[k].replace(v).is_some() {
                return Err(bail());
            }
        }
        match got {
            [Some(a), Some(b)] => Ok([a, b]),
            _ => Err(bail()),
        }
    }
}

/// A `$date`'s value: an ISO-8601 string, `{"$numberLong": …}` or an integer; the milliseconds.
struct DateSeed;

impl<'de> DeserializeSeed<'de> for DateSeed {
    type Value = i64;

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<i64, D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for DateSeed {
    type Value = i64;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a date")
    }

    fn visit_str<E: de::Error>(self, s: &str) -> Result<i64, E> {
        ok_or_bail(relaxed::parse_iso(s))
    }

    fn visit_i64<E: de::Error>(self, v: i64) -> Result<i64, E> {
        Ok(v)
    }

    fn visit_u64<E: de::Error>(self, v: u64) -> Result<i64, E> {
        ok_or_bail(i64::try_from(v).ok())
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<i64, A::Error> {
        map.next_key_seed(KeyIn(&["$numberLong"]))?
            .ok_or_else(bail)?;
        let ms = map.next_value_seed(Str(relaxed::parse_int::<i64>))?;
        match map.next_key_seed(KeyIn(&[]))? {
            None => Ok(ms),
            Some(_) => Err(bail()),
        }
    }
}

/// A `$binary`'s value: the legacy base64 string, or the canonical `{"base64", "subType"}`.
enum BinaryValue {
    Legacy(Vec<u8>),
    Canonical(u8, Vec<u8>),
}

struct BinarySeed(Vec<u8>);

impl<'de> DeserializeSeed<'de> for BinarySeed {
    type Value = BinaryValue;

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<BinaryValue, D::Error> {
        d.deserialize_any(self)
    }
}

fn base64_into(s: &str, mut buf: Vec<u8>) -> Option<Vec<u8>> {
    buf.clear();
    base64::engine::general_purpose::STANDARD
        .decode_vec(s, &mut buf)
        .ok()?;
    Some(buf)
}

impl<'de> Visitor<'de> for BinarySeed {
    type Value = BinaryValue;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("binary data")
    }

    fn visit_str<E: de::Error>(self, s: &str) -> Result<BinaryValue, E> {
        ok_or_bail(base64_into(s, self.0)).map(BinaryValue::Legacy)
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<BinaryValue, A::Error> {
        let (mut buf, mut data, mut subtype) = (Some(self.0), None, None);
        while let Some(k) = map.next_key_seed(KeyIn(&["base64", "subType"]))? {
            if k == 0 {
                let buf = buf.take().ok_or_else(bail)?;
                data = Some(map.next_value_seed(Str(|s: &str| base64_into(s, buf)))?);
            } else if subtype.is_some() {
                return Err(bail());
            } else {
                subtype = Some(map.next_value_seed(Str(relaxed::parse_subtype))?);
            }
        }
        match (subtype, data) {
            (Some(st), Some(d)) => Ok(BinaryValue::Canonical(st, d)),
            _ => Err(bail()),
        }
    }
}

/// Whether a wrapper's object ends here (no other key).
fn end<'de, A: MapAccess<'de>>(map: &mut A) -> Result<(), A::Error> {
    match map.next_key_seed(KeyIn(&[]))? {
        None => Ok(()),
        Some(_) => Err(bail()),
    }
}

impl Seed<'_> {
    /// An Int32 when `i` fits, else an Int64 (`to_bson`'s rule for a JSON integer).
    fn int(&mut self, i: i64) -> u8 {
        encode::write_int(&mut self.t.out, i)
    }

    fn double(&mut self, x: f64) -> u8 {
        self.t.out.extend_from_slice(&x.to_le_bytes());
        0x01
    }

    /// The value bytes of `w`, as `to_bson` writes them; its type byte, or `None` (give up).
    fn put(&mut self, w: &Wrapper<'_>) -> Option<u8> {
        encode::write_wrapper(&mut self.t.out, w, 0).ok()
    }

    /// A binary value of `data`, whose buffer is then kept for the next one.
    fn put_binary(&mut self, subtype: u8, data: Vec<u8>) -> Option<u8> {
        let binary = Wrapper::Binary { subtype, data };
        let t = self.put(&binary);
        if let Wrapper::Binary { data, .. } = binary {
            self.t.scratch = data;
        }
        t
    }

    /// The rest of an embedded object whose first key (already read, its header at `first`)
    /// starts with `$`: a wrapper this transcoder handles whole, else give up. The header is
    /// dropped: the wrapper's value bytes start at `start`.
    fn wrapper<'de, A: MapAccess<'de>>(
        mut self,
        mut map: A,
        start: usize,
        first: Header,
    ) -> Result<u8, A::Error> {
        let name = match &self.t.out[first.start..first.end] {
            b"$oid" => "$oid",
            b"$numberInt" => "$numberInt",
            b"$numberLong" => "$numberLong",
            b"$numberDouble" => "$numberDouble",
            b"$numberDecimal" => "$numberDecimal",
            b"$date" => "$date",
            b"$binary" => "$binary",
            b"$uuid" => "$uuid",
            b"$timestamp" => "$timestamp",
            b"$regularExpression" => "$regularExpression",
            b"$regex" => "$regex",
            b"$code" => "$code",
            b"$symbol" => "$symbol",
            b"$minKey" => "$minKey",
            b"$maxKey" => "$maxKey",
            b"$undefined" => "$undefined",
            _ => return Err(bail()),
        };
        self.t.out.truncate(start);
        let t = match name {
            "$oid" => {
                let oid = map.next_value_seed(Str(relaxed::parse_hex::<12>))?;
                ok_or_bail(self.put(&Wrapper::ObjectId(oid)))?
            }
            "$numberInt" => {
                let i = map.next_value_seed(Str(relaxed::parse_int::<i32>))?;
                self.int(i64::from(i))
            }
            // The relaxed value of an Int64 is a JSON integer: an Int32 again when it fits.
            "$numberLong" => {
                let i = map.next_value_seed(Str(relaxed::parse_int::<i64>))?;
                self.int(i)
            }
            "$numberDouble" => {
                let x = map.next_value_seed(Str(relaxed::parse_double))?;
                self.double(x)
            }
            "$numberDecimal" => {
                // The relaxed value is the decimal's text; `to_bson` parses that text again.
                let d = map.next_value_seed(Str(|s: &str| {
                    relaxed::parse_decimal(&relaxed::decimal_string(relaxed::parse_decimal(s)?))
                }))?;
                ok_or_bail(self.put(&Wrapper::Decimal(d)))?
            }
            "$date" => {
                let ms = map.next_value_seed(DateSeed)?;
                ok_or_bail(self.put(&Wrapper::Date(ms)))?
            }
            "$binary" => {
                let buf = std::mem::take(&mut self.t.scratch);
                let (subtype, data) = match map.next_value_seed(BinarySeed(buf))? {
                    BinaryValue::Canonical(st, data) => (st, data),
                    BinaryValue::Legacy(data) => {
                        map.next_key_seed(KeyIn(&["$type"]))?.ok_or_else(bail)?;
                        (map.next_value_seed(Str(relaxed::parse_subtype))?, data)
                    }
                };
                ok_or_bail(self.put_binary(subtype, data))?
            }
            "$uuid" => {
                let u = map.next_value_seed(Str(relaxed::parse_uuid))?;
                let mut data = std::mem::take(&mut self.t.scratch);
                data.clear();
                data.extend_from_slice(&u);
                ok_or_bail(self.put_binary(4, data))?
            }
            "$timestamp" => {
                let (t, i) = map.next_value_seed(TimestampSeed)?;
                ok_or_bail(self.put(&Wrapper::Timestamp { t, i }))?
            }
            "$regularExpression" => {
                let [pattern, options] = map.next_value_seed(Pair(&["pattern", "options"]))?;
                ok_or_bail(self.put(&Wrapper::Regex {
                    pattern: &pattern,
                    options: &options,
                }))?
            }
            // Legacy `{"$regex": <string>, "$options": <string>}` (anything else with `$regex`
            // is a query operator, a plain object: given up on).
            "$regex" => {
                let p = map.next_value_seed(Str(|s: &str| Some(s.to_owned())))?;
                map.next_key_seed(KeyIn(&["$options"]))?.ok_or_else(bail)?;
                let o = map.next_value_seed(Str(|s: &str| Some(s.to_owned())))?;
                ok_or_bail(self.put(&Wrapper::Regex {
                    pattern: &p,
                    options: &o,
                }))?
            }
            "$code" => {
                let out = &mut *self.t;
                map.next_value_seed(Str(|s: &str| out.string(s)))?;
                0x0D
            }
            "$symbol" => {
                let out = &mut *self.t;
                map.next_value_seed(Str(|s: &str| out.string(s)))?;
                0x0E
            }
            "$minKey" | "$maxKey" => {
                if map.next_value_seed(IntSeed)? != 1 {
                    return Err(bail());
                }
                if name == "$minKey" {
                    0xFF
                } else {
                    0x7F
                }
            }
            "$undefined" => {
                if !map.next_value_seed(BoolSeed)? {
                    return Err(bail());
                }
                0x06
            }
            _ => return Err(bail()),
        };
        end(&mut map)?;
        Ok(t)
    }
}

/// `true` or `false` (anything else gives up).
struct BoolSeed;

impl<'de> DeserializeSeed<'de> for BoolSeed {
    type Value = bool;

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<bool, D::Error> {
        d.deserialize_any(self)
    }
}

impl Visitor<'_> for BoolSeed {
    type Value = bool;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a boolean")
    }

    fn visit_bool<E: de::Error>(self, v: bool) -> Result<bool, E> {
        Ok(v)
    }
}

impl<'de> Visitor<'de> for Seed<'_> {
    type Value = u8;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("an Extended JSON document")
    }

    fn visit_bool<E: de::Error>(self, v: bool) -> Result<u8, E> {
        if self.depth == 0 {
            return Err(bail());
        }
        self.t.out.push(u8::from(v));
        Ok(0x08)
    }

    fn visit_i64<E: de::Error>(mut self, v: i64) -> Result<u8, E> {
        if self.depth == 0 {
            return Err(bail());
        }
        Ok(self.int(v))
    }

    fn visit_u64<E: de::Error>(mut self, v: u64) -> Result<u8, E> {
        if self.depth == 0 {
            return Err(bail());
        }
        Ok(match i64::try_from(v) {
            Ok(i) => self.int(i),
            // Beyond i64: a double, as the Extended JSON spec says.
            Err(_) => self.double(v as f64),
        })
    }

    fn visit_f64<E: de::Error>(mut self, v: f64) -> Result<u8, E> {
        if self.depth == 0 || !v.is_finite() {
            return Err(bail());
        }
        Ok(self.double(v))
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<u8, E> {
        if self.depth == 0 {
            return Err(bail());
        }
        ok_or_bail(self.t.string(v))?;
        Ok(0x02)
    }

    fn visit_unit<E: de::Error>(self) -> Result<u8, E> {
        if self.depth == 0 {
            return Err(bail());
        }
        Ok(0x0A)
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<u8, A::Error> {
        if self.depth == 0 || self.depth >= MAX_DEPTH {
            return Err(bail());
        }
        let t = self.t;
        let start = t.out.len();
        t.out.extend_from_slice(&[0; 4]);
        let mut digits = [0u8; 20];
        for i in 0usize.. {
            let type_pos = t.out.len();
            t.out.push(0);
            t.out.extend_from_slice(decimal_key(i, &mut digits));
            t.out.push(0);
            let seed = Seed {
                t: &mut *t,
                depth: self.depth + 1,
            };
            match seq.next_element_seed(seed)? {
                Some(ty) => {
                    t.out[type_pos] = ty;
                }
                None => {
                    t.out.truncate(type_pos);
                    break;
                }
            }
        }
        t.out.push(0);
        ok_or_bail(t.patch_len(start))?;
        Ok(0x04)
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<u8, A::Error> {
        let top = self.depth == 0;
        let start = self.t.out.len();
        self.t.out.extend_from_slice(&[0; 4]);
        let mut next = map.next_key_seed(Key(&mut self.t.out))?;
        if let (false, Some(first)) = (top, next) {
            if self.t.out.get(first.start) == Some(&b'$') {
                return self.wrapper(map, start, first);
            }
        }
        // A plain document: one more level.
        if self.depth >= MAX_DEPTH {
            return Err(bail());
        }
        let t = self.t;
        let base = t.keys.len();
        while let Some(h) = next {
            // `$` keys below the top are wrappers (handled above) or documents the in-place
            // path refuses anyway.
            if !top && t.out.get(h.start) == Some(&b'$') {
                return Err(bail());
            }
            t.keys.push((h.start, h.end));
            if t.repeated(base, false) {
                return Err(bail());
            }
            let seed = Seed {
                t: &mut *t,
                depth: self.depth + 1,
            };
            let ty = map.next_value_seed(seed)?;
            t.out[h.type_pos] = ty;
            next = map.next_key_seed(Key(&mut t.out))?;
        }
        if t.repeated(base, true) {
            return Err(bail());
        }
        t.keys.truncate(base);
        t.out.push(0);
        ok_or_bail(t.patch_len(start))?;
        Ok(0x03)
    }
}
