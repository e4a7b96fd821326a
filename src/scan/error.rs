//! Why a scan stops early.

use super::partial::PartialError;
use crate::source::SourceError;

/// Why a scan stopped early.
#[derive(Debug, thiserror::Error)]
pub enum ScanError {
    /// The source failed; the partial results are still returned.
    #[error(transparent)]
    Source(#[from] SourceError),
    #[error("cannot write violations: {0}")]
    Output(#[from] std::io::Error),
    #[error("cannot start {threads} worker threads: {message}")]
    Threads { threads: usize, message: String },
    /// A partial result to merge or a checkpoint to continue is unusable.
    #[error(transparent)]
    Partial(#[from] PartialError),
}
