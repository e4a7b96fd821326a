//! Decode/encode error types. Messages name what is wrong and where (byte offset for BSON, field
//! path for Extended JSON) but never include field values: only paths, type names and lengths.

use std::fmt;

use super::MAX_DEPTH;

/// Error produced by [`from_bson`](super::from_bson), [`from_ejson`](super::from_ejson) and
/// [`to_bson`](super::to_bson).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DecodeError {
    /// Malformed BSON bytes. `offset` is the byte offset inside the document where the problem
    /// was detected; `path` is the dotted path of the enclosing field (empty at the top level).
    #[error(
        "invalid BSON at byte offset {offset} (field {}): {kind}",
        PathDisplay(path)
    )]
    Bson {
        /// Byte offset within the document.
        offset: usize,
        /// Dotted field path (array elements by index).
        path: String,
        /// What is wrong.
        kind: BsonErrorKind,
    },
    /// Extended JSON that violates the specification (or cannot be represented in BSON).
    #[error("invalid Extended JSON at field {}: {kind}", PathDisplay(path))]
    Ejson {
        /// Dotted field path (array elements by index), e.g. `items.3.price`.
        path: String,
        /// What is wrong.
        kind: EjsonErrorKind,
    },
}

struct PathDisplay<'a>(&'a str);

impl fmt::Display for PathDisplay<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.0.is_empty() {
            f.write_str("<root>")
        } else {
            write!(f, "`{}`", self.0)
        }
    }
}

impl DecodeError {
    /// Byte offset within the document for BSON errors, `None` for Extended JSON errors.
    pub fn offset(&self) -> Option<usize> {
        match self {
            DecodeError::Bson { offset, .. } => Some(*offset),
            DecodeError::Ejson { .. } => None,
        }
    }

    /// Dotted field path of the error location (empty for the document root).
    pub fn path(&self) -> &str {
        match self {
            DecodeError::Bson { path, .. } | DecodeError::Ejson { path, .. } => path,
        }
    }

    pub(crate) fn bson(offset: usize, kind: BsonErrorKind) -> Self {
        DecodeError::Bson {
            offset,
            path: String::new(),
            kind,
        }
    }

    pub(crate) fn ejson(kind: EjsonErrorKind) -> Self {
        DecodeError::Ejson {
            path: String::new(),
            kind,
        }
    }

    /// Prepend a path segment while the error propagates outwards (no cost on success).
    pub(crate) fn within(mut self, segment: &dyn fmt::Display) -> Self {
        let path = match &mut self {
            DecodeError::Bson { path, .. } | DecodeError::Ejson { path, .. } => path,
        };
        *path = if path.is_empty() {
            segment.to_string()
        } else {
            format!("{segment}.{path}")
        };
        self
    }
}

/// What is wrong with BSON bytes.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BsonErrorKind {
    /// Document length prefix below the minimum of 5 bytes.
    #[error("document length prefix {0} is below the minimum of 5")]
    DocumentTooShort(i64),
    /// Top-level length prefix differs from the number of bytes supplied.
    #[error("document length prefix {declared} does not match the {actual} bytes supplied")]
    LengthMismatch {
        /// Declared length.
        declared: i64,
        /// Bytes supplied.
        actual: usize,
    },
    /// A length prefix points past the end of the enclosing value.
    #[error("{what} length {declared} exceeds the {available} bytes available")]
    Overrun {
        /// Which length.
        what: &'static str,
        /// Declared length.
        declared: i64,
        /// Bytes available.
        available: usize,
    },
    /// Last byte of a document is not NUL.
    #[error("document does not end with a NUL byte")]
    MissingTerminator,
    /// The bytes end in the middle of something.
    #[error("truncated {0}")]
    Truncated(&'static str),
    /// Unknown element type byte.
    #[error("unknown element type 0x{0:02x}")]
    UnknownType(u8),
    /// A length field has an impossible value.
    #[error("invalid {what} length {len}")]
    BadLength {
        /// Which length.
        what: &'static str,
        /// Declared value.
        len: i64,
    },
    /// A string value does not end with NUL.
    #[error("string is not NUL-terminated")]
    StringNotTerminated,
    /// A C-string (key, regex) has no NUL before the end of its container.
    #[error("unterminated C-string ({0})")]
    UnterminatedCString(&'static str),
    /// Invalid UTF-8.
    #[error("invalid UTF-8 in {0}")]
    InvalidUtf8(&'static str),
    /// Nesting deeper than [`MAX_DEPTH`].
    #[error("nesting deeper than {MAX_DEPTH} levels")]
    TooDeep,
    /// A NUL type byte (document terminator) before the declared end of the document.
    #[error("{0} trailing bytes after the document terminator")]
    TrailingBytes(usize),
    /// Boolean byte other than 0 or 1.
    #[error("invalid boolean byte 0x{0:02x}")]
    BadBoolean(u8),
    /// The same key twice in one document.
    #[error("duplicate key")]
    DuplicateKey,
    /// Binary subtype 0x02 inner length inconsistent with the outer length.
    #[error("binary subtype 0x02 inner length {inner} does not match outer length {outer}")]
    BadOldBinary {
        /// Inner length prefix.
        inner: i64,
        /// Outer length.
        outer: i64,
    },
    /// An embedded document with a type wrapper's special key but the wrong shape (its Extended
    /// JSON form would be rejected, so the BSON form is too).
    #[error("embedded document is a malformed Extended JSON type wrapper: {0}")]
    MalformedWrapper(EjsonErrorKind),
    /// Code-with-scope total length inconsistent with its content.
    #[error("code-with-scope length {declared} does not match its content length {actual}")]
    CodeWithScopeLength {
        /// Declared total length.
        declared: i64,
        /// Actual content length.
        actual: usize,
    },
}

/// What is wrong with an Extended JSON value.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EjsonErrorKind {
    /// The top-level value is not an object.
    #[error("top-level value is a {0}, expected an object")]
    NotAnObject(&'static str),
    /// Nesting deeper than [`MAX_DEPTH`].
    #[error("nesting deeper than {MAX_DEPTH} levels")]
    TooDeep,
    /// A key contains a NUL character (not representable in BSON).
    #[error("key contains a NUL character")]
    NulInKey,
    /// The same key twice in one object (as [`BsonErrorKind::DuplicateKey`] in BSON).
    #[error("duplicate key")]
    DuplicateKey,
    /// A type wrapper has missing or extra keys.
    #[error("{wrapper} type wrapper has wrong keys ({keys} keys present)")]
    WrapperShape {
        /// The wrapper's special key, e.g. `$oid`.
        wrapper: &'static str,
        /// Number of keys present.
        keys: usize,
    },
    /// A type wrapper member has the wrong JSON type.
    #[error("{wrapper}: `{member}` must be {expected}, found {found}")]
    WrongType {
        /// The wrapper's special key.
        wrapper: &'static str,
        /// Member (`$oid`, `base64`, ...).
        member: &'static str,
        /// Expected JSON type.
        expected: &'static str,
        /// Actual JSON type.
        found: &'static str,
    },
    /// A type wrapper member has the right JSON type but an invalid value.
    #[error("{wrapper}: invalid `{member}` ({reason}; length {len})")]
    BadValue {
        /// The wrapper's special key.
        wrapper: &'static str,
        /// Member.
        member: &'static str,
        /// Why it is invalid.
        reason: &'static str,
        /// Length of the offending string/number text (never the value itself).
        len: usize,
    },
    /// A string or regex C-string contains NUL where BSON cannot represent it.
    #[error("{0} contains a NUL character")]
    NulInCString(&'static str),
    /// A value is too large for BSON (length does not fit in i32).
    #[error("{what} of length {len} is too large for BSON")]
    TooLarge {
        /// What is too large.
        what: &'static str,
        /// Its length.
        len: usize,
    },
}

/// JSON type name for error messages.
pub(crate) fn json_type(v: &serde_json::Value) -> &'static str {
    match v {
        serde_json::Value::Null => "null",
        serde_json::Value::Bool(_) => "boolean",
        serde_json::Value::Number(n) if n.is_f64() => "non-integer number",
        serde_json::Value::Number(_) => "integer",
        serde_json::Value::String(_) => "string",
        serde_json::Value::Array(_) => "array",
        serde_json::Value::Object(_) => "object",
    }
}
