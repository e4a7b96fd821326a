//! Document fingerprints (xxh3-128 over a canonical, type-tagged, length-prefixed encoding of the
//! relaxed value) and `key_hash`, the equality hash for `_id`s, index keys and references.
//!
//! Encoding: every node hashes to a u128. Leaves are one-shot `xxh3_128_with_seed(payload, tag)`
//! (strings: UTF-8 bytes; integers: i64 LE; doubles: f64 bits LE). Containers stream a tag byte,
//! each child as fixed-width data (objects: key length u64 LE, key bytes, 16-byte child hash) and
//! finally the child count (content: object entries sorted by key bytes), so `["a","b"]` ≠ `["ab"]` and `"1"` ≠ `1` ≠ `1.0`.

use jsonschema::json::{Array as _, Json, JsonNumber as _, Node as _, Object as _, SerdeJson};
use jsonschema::JsonType;
use serde_json::{Number, Value};
use xxhash_rust::xxh3::{xxh3_128, xxh3_128_with_seed};

/// Beyond this nesting a subtree is hashed as an opaque marker (only reachable with hand-built
/// values; decoded values are limited to [`MAX_DEPTH`](super::MAX_DEPTH)).
const HASH_DEPTH_LIMIT: usize = 4 * super::MAX_DEPTH;

const TAG_NULL: u64 = 1;
const TAG_BOOL: u64 = 2;
const TAG_INT: u64 = 3;
const TAG_DOUBLE: u64 = 4;
const TAG_STRING: u64 = 5;
const TAG_ARRAY: u8 = 6;
const TAG_OBJECT: u8 = 7;
const TAG_U64: u64 = 8;
const TAG_TOO_DEEP: u64 = 9;

/// Fingerprints of one document.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Fingerprint {
    /// Field order is NOT significant at any depth (array order is).
    pub content: u128,
    /// Field order is significant (detects pure reordering when `content` matches).
    pub ordered: u128,
}

/// Compute both fingerprints of a relaxed value in one walk.
pub fn fingerprint(v: &Value) -> Fingerprint {
    node_fingerprint::<SerdeJson>(&v)
}

/// [`fingerprint`] of a node of any representation (a decoded value's, or the in-place view's,
/// which presents exactly that value: the same digests).
pub fn node_fingerprint<'a, J: Json>(v: &J::Node<'a>) -> Fingerprint {
    let mut s = Scratch::default();
    let (content, ordered) = walk::<J>(v, 0, &mut s);
    Fingerprint { content, ordered }
}

/// Equality hash with MongoDB's equality semantics for numbers: integer `1`, double `1.0` and
/// `-0.0`/`0` hash equal (a double hashes as an integer when it is integral and within i64).
/// Decimal128 values (`$numberDecimal`) are kept as they are and do not equal ints/doubles.
/// Object key order IS significant, as in MongoDB (`{a:1,b:2}` and `{b:2,a:1}` are different
/// `_id`s); everything else is hashed like [`Fingerprint::content`].
pub fn key_hash(v: &Value) -> u128 {
    node_key_hash::<SerdeJson>(&v)
}

/// [`key_hash`] of a node of any representation (a decoded value's, or the in-place view's).
pub fn node_key_hash<'a, J: Json>(v: &J::Node<'a>) -> u128 {
    thread_local! {
        /// The hash input stack, reused from key to key.
        static BUF: std::cell::Cell<Vec<u8>> = const { std::cell::Cell::new(Vec::new()) };
    }
    let mut buf = BUF.take();
    buf.clear();
    let h = walk_key::<J>(v, 0, &mut buf);
    BUF.set(buf);
    h
}

#[inline]
fn int_hash(i: i64) -> u128 {
    xxh3_128_with_seed(&i.to_le_bytes(), TAG_INT)
}

#[inline]
fn double_hash(x: f64) -> u128 {
    // serde_json numbers are finite; canonicalise NaN anyway.
    let bits = if x.is_nan() {
        f64::NAN.to_bits()
    } else {
        x.to_bits()
    };
    xxh3_128_with_seed(&bits.to_le_bytes(), TAG_DOUBLE)
}

fn number_hash(n: &Number) -> u128 {
    if let Some(i) = n.as_i64() {
        int_hash(i)
    } else if let Some(u) = n.as_u64() {
        xxh3_128_with_seed(&u.to_le_bytes(), TAG_U64)
    } else {
        double_hash(n.as_f64().unwrap_or(f64::NAN))
    }
}

/// Numbers under MongoDB equality: integral doubles within i64 hash as integers.
fn number_key_hash(n: &Number) -> u128 {
    if let Some(i) = n.as_i64() {
        return int_hash(i);
    }
    if let Some(u) = n.as_u64() {
        // Beyond i64: equal to a double only if exactly representable.
        let x = u as f64;
        return if x as u64 == u && x != 18_446_744_073_709_551_616.0 {
            double_hash(x)
        } else {
            xxh3_128_with_seed(&u.to_le_bytes(), TAG_U64)
        };
    }
    let x = n.as_f64().unwrap_or(f64::NAN);
    // [-2^63, 2^63) integral doubles are exactly some i64.
    if x.fract() == 0.0 && (-9_223_372_036_854_775_808.0..9_223_372_036_854_775_808.0).contains(&x)
    {
        int_hash(x as i64)
    } else {
        double_hash(x)
    }
}

/// The hash of a leaf; `key_semantics`: numbers under MongoDB equality ([`key_hash`]).
fn leaf_hash<'a, J: Json>(v: &J::Node<'a>, key_semantics: bool) -> u128 {
    match v.json_type() {
        JsonType::Null => xxh3_128_with_seed(&[], TAG_NULL),
        JsonType::Boolean => {
            xxh3_128_with_seed(&[u8::from(v.as_boolean().unwrap_or_default())], TAG_BOOL)
        }
        JsonType::Number | JsonType::Integer => match v.as_number() {
            Some(n) if key_semantics => number_key_hash(&n.to_number()),
            Some(n) => number_hash(&n.to_number()),
            None => xxh3_128_with_seed(&[], TAG_TOO_DEEP),
        },
        JsonType::String => {
            xxh3_128_with_seed(v.as_string().unwrap_or_default().as_bytes(), TAG_STRING)
        }
        JsonType::Array | JsonType::Object => xxh3_128_with_seed(&[], TAG_TOO_DEEP),
    }
}

/// One child of a container while its parent is being hashed. Children of all open containers
/// live in one shared scratch vector, so recursion frames stay small and nodes allocate nothing.
struct Entry<'v> {
    key: std::borrow::Cow<'v, str>,
    content: u128,
    ordered: u128,
}

/// Working memory of one hash walk: the entries of all open containers, and the byte
/// buffer a container's hash input is laid out in.
#[derive(Default)]
struct Scratch<'v> {
    entries: Vec<Entry<'v>>,
    bytes: Vec<u8>,
}

/// Hash a container from its entries; `content` selects which child hash is fed.
///
/// The input is laid out in one buffer and hashed in one shot, which gives exactly the digest
/// of streaming the same bytes into `Xxh3Default` (seed 0, default secret), but without the
/// streaming state's setup and per-update overhead on these short inputs.
#[inline(never)]
fn hash_entries(
    buf: &mut Vec<u8>,
    tag: u8,
    entries: &[Entry<'_>],
    content: bool,
    with_keys: bool,
) -> u128 {
    buf.clear();
    buf.push(tag);
    for e in entries {
        let child = if content { e.content } else { e.ordered };
        put_child(buf, with_keys.then_some(&*e.key), child);
    }
    close_container(buf, 0, entries.len())
}

/// One child of a container's hash input: its key (objects only) as length and bytes, then
/// its 16-byte hash.
fn put_child(buf: &mut Vec<u8>, key: Option<&str>, child: u128) {
    if let Some(key) = key {
        buf.extend_from_slice(&(key.len() as u64).to_le_bytes());
        buf.extend_from_slice(key.as_bytes());
    }
    buf.extend_from_slice(&child.to_le_bytes());
}

/// Ends the container whose hash input starts at `buf[base]` (its tag) with the child count,
/// hashes that input and removes it from `buf`.
fn close_container(buf: &mut Vec<u8>, base: usize, count: usize) -> u128 {
    buf.extend_from_slice(&(count as u64).to_le_bytes());
    let h = xxh3_128(buf.get(base..).unwrap_or_default());
    buf.truncate(base);
    h
}

#[inline(never)]
fn finish_array(buf: &mut Vec<u8>, entries: &[Entry<'_>]) -> (u128, u128) {
    let ordered = hash_entries(buf, TAG_ARRAY, entries, false, false);
    if entries.iter().all(|e| e.content == e.ordered) {
        // Identical input for both hashes.
        return (ordered, ordered);
    }
    (hash_entries(buf, TAG_ARRAY, entries, true, false), ordered)
}

#[inline(never)]
fn finish_object(buf: &mut Vec<u8>, entries: &mut [Entry<'_>]) -> (u128, u128) {
    let ordered = hash_entries(buf, TAG_OBJECT, entries, false, true);
    let sorted = entries
        .windows(2)
        .all(|w| w[0].key.as_bytes() <= w[1].key.as_bytes());
    if sorted && entries.iter().all(|e| e.content == e.ordered) {
        // Already in canonical order with order-independent children: identical input.
        return (ordered, ordered);
    }
    if !sorted {
        entries.sort_unstable_by(|a, b| a.key.as_bytes().cmp(b.key.as_bytes()));
    }
    (hash_entries(buf, TAG_OBJECT, entries, true, true), ordered)
}

/// (content, ordered) hashes of `v`; `s.entries` holds the entries of all open containers.
fn walk<'a, J: Json>(v: &J::Node<'a>, depth: usize, s: &mut Scratch<'a>) -> (u128, u128) {
    if depth > HASH_DEPTH_LIMIT {
        let h = xxh3_128_with_seed(&[], TAG_TOO_DEEP);
        return (h, h);
    }
    let base = s.entries.len();
    let r = if let Some(items) = v.as_array() {
        for item in items.elements() {
            let (content, ordered) = walk::<J>(&item, depth + 1, s);
            s.entries.push(Entry {
                key: std::borrow::Cow::Borrowed(""),
                content,
                ordered,
            });
        }
        finish_array(&mut s.bytes, s.entries.get(base..).unwrap_or_default())
    } else if let Some(map) = v.as_object() {
        for (key, child) in map.members() {
            let (content, ordered) = walk::<J>(&child, depth + 1, s);
            s.entries.push(Entry {
                key: key.into(),
                content,
                ordered,
            });
        }
        finish_object(&mut s.bytes, s.entries.get_mut(base..).unwrap_or_default())
    } else {
        let h = leaf_hash::<J>(v, false);
        return (h, h);
    };
    s.entries.truncate(base);
    r
}

/// [`key_hash`] of any representation's node: the same digest for a decoded value and for the
/// in-place view of its BSON bytes (which presents exactly that value). The hash input of each
/// container is laid out on one stack of bytes, `buf[base..]`, with the same layout as
/// [`hash_entries`]; a child's input lies above its parent's until it is hashed.
fn walk_key<'a, J: Json>(v: &J::Node<'a>, depth: usize, buf: &mut Vec<u8>) -> u128 {
    if depth > HASH_DEPTH_LIMIT {
        return xxh3_128_with_seed(&[], TAG_TOO_DEEP);
    }
    let base = buf.len();
    let mut count = 0;
    if let Some(items) = v.as_array() {
        buf.push(TAG_ARRAY);
        for item in items.elements() {
            let h = walk_key::<J>(&item, depth + 1, buf);
            put_child(buf, None, h);
            count += 1;
        }
    } else if let Some(map) = v.as_object() {
        buf.push(TAG_OBJECT);
        for (key, child) in map.members() {
            // The key goes in after the child's own input is hashed and removed.
            let h = walk_key::<J>(&child, depth + 1, buf);
            put_child(buf, Some(key.as_ref()), h);
            count += 1;
        }
    } else {
        return leaf_hash::<J>(v, true);
    }
    close_container(buf, base, count)
}
