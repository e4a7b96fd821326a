//! Document value model: decoding BSON bytes and (relaxed or canonical) Extended JSON into one
//! normalised relaxed Extended JSON `serde_json::Value`, re-encoding it to BSON, and fingerprinting it.
//!
//! Both decoders produce exactly the same `Value` for the same document, following the MongoDB
//! Extended JSON v2 specification; see `relaxed` for the normal form of every BSON type.

mod bson;
mod ejson;
mod encode;
mod error;
mod fingerprint;
mod ids;
mod json;
mod path;
pub mod raw;
mod relaxed;
mod transcode;

#[cfg(test)]
mod tests;

pub use self::bson::from_bson;
pub use self::ejson::from_ejson;
pub use self::encode::to_bson;
pub use self::error::{BsonErrorKind, DecodeError, EjsonErrorKind};
pub use self::fingerprint::{fingerprint, key_hash, node_fingerprint, node_key_hash, Fingerprint};
pub use self::ids::{id_text, IdArena, StoredId};
pub use self::json::{from_json, parse_json, JsonError};
pub use self::path::{generalise_pointer, member, nodes_at, values_at};
pub(crate) use self::relaxed::{hex_lower, undefined};
pub use self::transcode::{transcode, Transcoder};

/// Maximum nesting depth of documents/arrays (top-level document = 1). Aligned with
/// serde_json's own recursion limit of 128.
pub const MAX_DEPTH: usize = 128;

/// A decoded document: the relaxed-EJSON value and its nesting depth in BSON terms
/// (top-level document = 1; each nested document/array adds 1; EJSON type wrappers such as
/// `{"$oid":…}` do NOT count; the scope of a code-with-scope value counts as a nested document).
#[derive(Debug, Clone, PartialEq)]
pub struct Decoded {
    /// The normalised relaxed Extended JSON value (always an object).
    pub value: serde_json::Value,
    /// Maximum nesting depth (top-level document = 1).
    pub depth: usize,
}
