//! The error of applying and undoing repairs (dump and live).

use std::path::{Path, PathBuf};

use super::journal;

#[derive(Debug, thiserror::Error)]
pub enum ApplyError {
    #[error("{0}")]
    Usage(String),
    #[error("{path}: {message}")]
    Io { path: PathBuf, message: String },
    #[error(transparent)]
    Journal(#[from] journal::JournalError),
    #[error(transparent)]
    Source(#[from] crate::source::SourceError),
}

pub(crate) fn io(path: &Path, e: impl std::fmt::Display) -> ApplyError {
    ApplyError::Io {
        path: path.to_path_buf(),
        message: e.to_string(),
    }
}
