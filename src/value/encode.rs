//! BSON encoder: relaxed (or canonical) Extended JSON `Value` back to BSON bytes.

use serde_json::{Map, Value};

use super::ejson::{classify, Wrapper};
use super::error::{json_type, DecodeError, EjsonErrorKind};
use super::MAX_DEPTH;

type Kind = EjsonErrorKind;

/// Encode a relaxed Extended JSON object as one BSON document. Integers become Int32 when they
/// fit, else Int64; type wrappers become their BSON types. Round trip:
/// `from_bson(&to_bson(&v)?)?.value == v` for any `v` produced by `from_bson`/`from_ejson`.
pub fn to_bson(v: &Value) -> Result<Vec<u8>, DecodeError> {
    let Value::Object(map) = v else {
        return Err(DecodeError::ejson(Kind::NotAnObject(json_type(v))));
    };
    let mut out = Vec::with_capacity(256);
    write_document(&mut out, map, 1)?;
    Ok(out)
}

fn too_large(what: &'static str, len: usize) -> DecodeError {
    DecodeError::ejson(Kind::TooLarge { what, len })
}

fn nested(depth: usize) -> Result<usize, DecodeError> {
    if depth >= MAX_DEPTH {
        Err(DecodeError::ejson(Kind::TooDeep))
    } else {
        Ok(depth + 1)
    }
}

/// Overwrite the 4-byte length placeholder at `start` with the length from `start` to the end.
pub(super) fn patch_len(
    out: &mut [u8],
    start: usize,
    what: &'static str,
) -> Result<(), DecodeError> {
    let len = out.len().saturating_sub(start);
    let len32 = i32::try_from(len).map_err(|_| too_large(what, len))?;
    if let Some(slot) = out.get_mut(start..start + 4) {
        slot.copy_from_slice(&len32.to_le_bytes());
    }
    Ok(())
}

fn write_document(
    out: &mut Vec<u8>,
    map: &Map<String, Value>,
    depth: usize,
) -> Result<(), DecodeError> {
    let start = out.len();
    out.extend_from_slice(&[0; 4]);
    for (k, v) in map {
        if k.as_bytes().contains(&0) {
            return Err(DecodeError::ejson(Kind::NulInKey).within(k));
        }
        write_element(out, k.as_bytes(), v, depth).map_err(|e| e.within(k))?;
    }
    out.push(0);
    patch_len(out, start, "document")
}

fn write_array(out: &mut Vec<u8>, items: &[Value], depth: usize) -> Result<(), DecodeError> {
    let start = out.len();
    out.extend_from_slice(&[0; 4]);
    let mut key = [0u8; 20];
    for (i, v) in items.iter().enumerate() {
        let digits = decimal_key(i, &mut key);
        write_element(out, digits, v, depth).map_err(|e| e.within(&i))?;
    }
    out.push(0);
    patch_len(out, start, "array")
}

/// Decimal text of `n` in the tail of `buf` (an array index as a BSON key).
pub(super) fn decimal_key(mut n: usize, buf: &mut [u8; 20]) -> &[u8] {
    let mut pos = buf.len();
    loop {
        pos -= 1;
        buf[pos] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 || pos == 0 {
            break;
        }
    }
    &buf[pos..]
}

fn write_element(
    out: &mut Vec<u8>,
    key: &[u8],
    v: &Value,
    depth: usize,
) -> Result<(), DecodeError> {
    let type_pos = out.len();
    out.push(0);
    out.extend_from_slice(key);
    out.push(0);
    let t = write_value(out, v, depth)?;
    if let Some(slot) = out.get_mut(type_pos) {
        *slot = t;
    }
    Ok(())
}

pub(super) fn write_string(out: &mut Vec<u8>, s: &str) -> Result<(), DecodeError> {
    let len = i32::try_from(s.len() + 1).map_err(|_| too_large("string", s.len()))?;
    out.extend_from_slice(&len.to_le_bytes());
    out.extend_from_slice(s.as_bytes());
    out.push(0);
    Ok(())
}

fn write_cstring(out: &mut Vec<u8>, s: &str, what: &'static str) -> Result<(), DecodeError> {
    if s.as_bytes().contains(&0) {
        return Err(DecodeError::ejson(Kind::NulInCString(what)));
    }
    out.extend_from_slice(s.as_bytes());
    out.push(0);
    Ok(())
}

/// An integer: an Int32 when it fits, else an Int64 (the rule for a JSON integer); returns the
/// type byte.
pub(super) fn write_int(out: &mut Vec<u8>, i: i64) -> u8 {
    if let Ok(i) = i32::try_from(i) {
        out.extend_from_slice(&i.to_le_bytes());
        0x10
    } else {
        out.extend_from_slice(&i.to_le_bytes());
        0x12
    }
}

/// Write the value bytes of `v` (inside a document at level `depth`); returns the type byte.
fn write_value(out: &mut Vec<u8>, v: &Value, depth: usize) -> Result<u8, DecodeError> {
    Ok(match v {
        Value::Null => 0x0A,
        Value::Bool(b) => {
            out.push(u8::from(*b));
            0x08
        }
        Value::Number(n) => {
            if let Some(i) = n.as_i64() {
                write_int(out, i)
            } else {
                let x = n.as_f64().unwrap_or(f64::NAN);
                out.extend_from_slice(&x.to_le_bytes());
                0x01
            }
        }
        Value::String(s) => {
            write_string(out, s)?;
            0x02
        }
        Value::Array(items) => {
            write_array(out, items, nested(depth)?)?;
            0x04
        }
        Value::Object(map) => match classify(map).map_err(DecodeError::ejson)? {
            None => {
                write_document(out, map, nested(depth)?)?;
                0x03
            }
            Some(w) => write_wrapper(out, &w, depth)?,
        },
    })
}

pub(super) fn write_wrapper(
    out: &mut Vec<u8>,
    w: &Wrapper<'_>,
    depth: usize,
) -> Result<u8, DecodeError> {
    Ok(match w {
        Wrapper::Int32(i) => {
            out.extend_from_slice(&i.to_le_bytes());
            0x10
        }
        Wrapper::Int64(i) => {
            out.extend_from_slice(&i.to_le_bytes());
            0x12
        }
        Wrapper::Double(x) => {
            out.extend_from_slice(&x.to_le_bytes());
            0x01
        }
        Wrapper::Decimal(b) => {
            out.extend_from_slice(b);
            0x13
        }
        Wrapper::Binary { subtype, data } => {
            let old = *subtype == 2;
            let total = data.len() + if old { 4 } else { 0 };
            let total32 = i32::try_from(total).map_err(|_| too_large("binary", data.len()))?;
            out.extend_from_slice(&total32.to_le_bytes());
            out.push(*subtype);
            if old {
                // Old binary subtype 0x02 repeats the payload length inside the payload.
                let inner = total32.saturating_sub(4);
                out.extend_from_slice(&inner.to_le_bytes());
            }
            out.extend_from_slice(data);
            0x05
        }
        Wrapper::ObjectId(oid) => {
            out.extend_from_slice(oid);
            0x07
        }
        Wrapper::Date(ms) => {
            out.extend_from_slice(&ms.to_le_bytes());
            0x09
        }
        Wrapper::Regex { pattern, options } => {
            write_cstring(out, pattern, "regex pattern")?;
            write_cstring(out, &super::relaxed::sort_options(options), "regex options")?;
            0x0B
        }
        Wrapper::DbPointer { ns, oid } => {
            write_string(out, ns)?;
            out.extend_from_slice(oid);
            0x0C
        }
        Wrapper::Code(code) => {
            write_string(out, code)?;
            0x0D
        }
        Wrapper::CodeWithScope(code, scope) => {
            let start = out.len();
            out.extend_from_slice(&[0; 4]);
            write_string(out, code)?;
            write_document(out, scope, nested(depth)?).map_err(|e| e.within(&"$scope"))?;
            patch_len(out, start, "code with scope")?;
            0x0F
        }
        Wrapper::Symbol(s) => {
            write_string(out, s)?;
            0x0E
        }
        Wrapper::Timestamp { t, i } => {
            out.extend_from_slice(&i.to_le_bytes());
            out.extend_from_slice(&t.to_le_bytes());
            0x11
        }
        Wrapper::Undefined => 0x06,
        Wrapper::MinKey => 0xFF,
        Wrapper::MaxKey => 0x7F,
    })
}
