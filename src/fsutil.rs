//! Small filesystem and time helpers.

use std::path::Path;

/// Now, as RFC 3339 UTC with second precision.
pub fn now_rfc3339() -> String {
    let now = time::OffsetDateTime::now_utc()
        .replace_nanosecond(0)
        .unwrap_or(time::OffsetDateTime::UNIX_EPOCH);
    now.format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_else(|_| "1970-01-01T00:00:00Z".into())
}

/// Writes a report file atomically (see [`crate::os::write_atomic`]), owner-only: reports
/// name documents by `_id` and, with `--show-values`, hold their values.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    crate::os::write_atomic(path, bytes, crate::os::Access::Private)
}
