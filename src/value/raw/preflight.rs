//! The preflight: one allocation-free walk of a BSON document's bytes that decides whether the
//! document can be validated in place. It accepts exactly what `from_bson` accepts, minus
//! everything `from_bson` would rewrite or reject: repeated keys, and embedded documents with
//! a `$`-prefixed key (`wrapper_like`). Anything else, including every malformed document,
//! answers `None`, and the caller takes the decode path, so errors stay today's by construction.

use super::MAX_DEPTH;
use crate::value::bson::read_i32;

/// Keys of all the documents open at once whose hashes are kept for the repeated-key check;
/// beyond this many the document takes the decode path.
const KEY_STACK: usize = 512;

/// Whether `bytes` is UTF-8; the common all-ASCII case is decided inline.
fn is_utf8(bytes: &[u8]) -> bool {
    bytes.is_ascii() || std::str::from_utf8(bytes).is_ok()
}

/// A BSON document the preflight accepted: well-formed, and every key, string, code, symbol,
/// regular expression and DBPointer namespace in it is valid UTF-8. Only [`preflight`] builds
/// one, so the in-place view ([`RawBson::root`](super::RawBson::root)) reads those texts
/// without checking them again.
#[derive(Clone, Copy)]
pub struct Checked<'a> {
    bytes: &'a [u8],
    depth: usize,
}

impl<'a> Checked<'a> {
    /// The document's bytes.
    #[must_use]
    pub fn bytes(self) -> &'a [u8] {
        self.bytes
    }

    /// The nesting depth `from_bson` reports for it.
    #[must_use]
    pub fn depth(self) -> usize {
        self.depth
    }
}

/// `Some` (with the nesting depth `from_bson` would report) when `doc` is one well-formed
/// BSON document that `from_bson` decodes without rewriting anything: no repeated key and no
/// embedded document with a `$`-prefixed key. `None`: take the decode path.
#[must_use]
pub fn preflight(doc: &[u8]) -> Option<Checked<'_>> {
    let declared = read_i32(doc, 0, doc.len())?;
    if declared < 5 || usize::try_from(declared).ok()? != doc.len() {
        return None;
    }
    let mut walk = Walk {
        buf: doc,
        max: 1,
        keys: [0; KEY_STACK],
        top: 0,
    };
    let end = walk.document(0, doc.len(), 1, false)?;
    (end == doc.len()).then_some(Checked {
        bytes: doc,
        depth: walk.max,
    })
}

struct Walk<'a> {
    buf: &'a [u8],
    max: usize,
    /// Hashes of the keys of the documents being walked (a stack: each document's keys on top
    /// of its parents').
    keys: [u64; KEY_STACK],
    top: usize,
}

impl Walk<'_> {
    /// `pos + n` when `n` bytes at `pos` lie before `lim` (and inside the buffer).
    fn fixed(&self, pos: usize, n: usize, lim: usize) -> Option<usize> {
        let end = pos.checked_add(n)?;
        (end <= lim && end <= self.buf.len()).then_some(end)
    }

    fn frame(&self, start: usize, lim: usize) -> Option<usize> {
        let len = read_i32(self.buf, start, lim)?;
        if len < 5 {
            return None;
        }
        let end = start.checked_add(usize::try_from(len).ok()?)?;
        if end > lim || self.buf.get(end - 1) != Some(&0) {
            return None;
        }
        Some(end)
    }

    /// The bytes of a C-string at `pos` whose NUL lies strictly before `lim`, and the offset
    /// after the NUL.
    fn cstring(&self, pos: usize, lim: usize) -> Option<(&[u8], usize)> {
        let window = self.buf.get(pos..lim)?;
        let nul = window.iter().position(|&b| b == 0)?;
        Some((&window[..nul], pos + nul + 1))
    }

    fn cstr(&self, pos: usize, lim: usize) -> Option<usize> {
        let (bytes, next) = self.cstring(pos, lim)?;
        is_utf8(bytes).then_some(next)
    }

    fn string(&self, pos: usize, lim: usize) -> Option<usize> {
        let len = read_i32(self.buf, pos, lim)?;
        if len < 1 {
            return None;
        }
        let body = pos + 4;
        let end = body.checked_add(usize::try_from(len).ok()?)?;
        if end > lim || self.buf.get(end - 1) != Some(&0) {
            return None;
        }
        is_utf8(self.buf.get(body..end - 1)?).then_some(end)
    }

    fn enter(&mut self, depth: usize) -> Option<usize> {
        if depth >= MAX_DEPTH {
            return None;
        }
        self.max = self.max.max(depth + 1);
        Some(depth + 1)
    }

    /// A document at `start` (level `depth`) bounded by `lim`; `embedded`: one `from_bson`
    /// passes through `wrapper_like`, so a `$`-prefixed key sends it to the decode path.
    fn document(
        &mut self,
        start: usize,
        lim: usize,
        depth: usize,
        embedded: bool,
    ) -> Option<usize> {
        let end = self.frame(start, lim)?;
        let last = end - 1;
        let base = self.top;
        let mut pos = start + 4;
        loop {
            let t = *self.buf.get(pos)?;
            if t == 0 {
                if pos != last {
                    return None;
                }
                self.top = base;
                return Some(end);
            }
            let (key, value_pos) = self.cstring(pos + 1, last)?;
            if !is_utf8(key) {
                return None;
            }
            if embedded && key.first() == Some(&b'$') {
                return None;
            }
            let hash = xxhash_rust::xxh3::xxh3_64(key);
            // A repeated key, or (rarely) two keys with one hash: the decode path decides.
            if self.keys[base..self.top].contains(&hash) || self.top == KEY_STACK {
                return None;
            }
            self.keys[self.top] = hash;
            self.top += 1;
            pos = self.value(t, value_pos, last, depth)?;
        }
    }

    fn array(&mut self, start: usize, lim: usize, depth: usize) -> Option<usize> {
        let end = self.frame(start, lim)?;
        let last = end - 1;
        let mut pos = start + 4;
        loop {
            let t = *self.buf.get(pos)?;
            if t == 0 {
                return (pos == last).then_some(end);
            }
            let (_, value_pos) = self.cstring(pos + 1, last)?;
            pos = self.value(t, value_pos, last, depth)?;
        }
    }

    /// A value of type `t` at `pos` bounded by `lim` inside a container at level `depth`: the
    /// offset after it.
    fn value(&mut self, t: u8, pos: usize, lim: usize, depth: usize) -> Option<usize> {
        match t {
            0x01 | 0x09 | 0x11 | 0x12 => self.fixed(pos, 8, lim),
            0x02 | 0x0D | 0x0E => self.string(pos, lim),
            0x03 => {
                let inner = self.enter(depth)?;
                self.document(pos, lim, inner, true)
            }
            0x04 => {
                let inner = self.enter(depth)?;
                self.array(pos, lim, inner)
            }
            0x05 => self.binary(pos, lim),
            0x06 | 0x0A | 0x7F | 0xFF => Some(pos),
            0x07 => self.fixed(pos, 12, lim),
            0x08 => match self.buf.get(pos) {
                Some(0 | 1) if pos < lim => Some(pos + 1),
                _ => None,
            },
            0x0B => {
                let next = self.cstr(pos, lim)?;
                self.cstr(next, lim)
            }
            0x0C => {
                let next = self.string(pos, lim)?;
                self.fixed(next, 12, lim)
            }
            0x0F => self.code_with_scope(pos, lim, depth),
            0x10 => self.fixed(pos, 4, lim),
            0x13 => self.fixed(pos, 16, lim),
            _ => None,
        }
    }

    fn binary(&self, pos: usize, lim: usize) -> Option<usize> {
        let len = read_i32(self.buf, pos, lim)?;
        let subtype_end = self.fixed(pos + 4, 1, lim)?;
        let subtype = self.buf[pos + 4];
        let end = subtype_end.checked_add(usize::try_from(len).ok()?)?;
        if end > lim || end > self.buf.len() {
            return None;
        }
        if subtype == 2 {
            // Old binary: the payload repeats its own length.
            let inner = read_i32(self.buf, subtype_end, end)?;
            if i64::from(inner) != i64::from(len) - 4 {
                return None;
            }
        }
        Some(end)
    }

    fn code_with_scope(&mut self, pos: usize, lim: usize, depth: usize) -> Option<usize> {
        let total = read_i32(self.buf, pos, lim)?;
        if total < 14 {
            return None;
        }
        let end = pos.checked_add(usize::try_from(total).ok()?)?;
        if end > lim {
            return None;
        }
        let scope_pos = self.string(pos + 4, end)?;
        let inner = self.enter(depth)?;
        // The scope is not passed through `wrapper_like`: its own `$` keys stay as they are.
        let scope_end = self.document(scope_pos, end, inner, false)?;
        (scope_end == end).then_some(end)
    }
}
