//! The one error type of the engine crate.

/// Errors from the engine's algorithms.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum EngineError {
    /// A file could not be read, written or parsed; see the inner error for
    /// whether it is corruption, I/O or bad user data. Nothing is retried.
    #[error(transparent)]
    Format(#[from] omen_format::FormatError),

    /// I/O: an operating-system error not yet tied to a path. Only the page
    /// readers produce it, and the segment that owns them wraps it into
    /// [`EngineError::Format`] with the file's path before it leaves the crate.
    #[error("I/O error: {0}")]
    Io(#[from] std::io::Error),

    /// User: the arguments disagree with each other or with the data (for
    /// example a query dimension that differs from the base dimension).
    #[error("{0}")]
    InvalidArgument(String),

    /// User: `insert` of a primary key that is already live (use `upsert`
    /// to replace it). Nothing of the batch was written.
    #[error("primary key {id} already exists (use upsert to replace it)")]
    Duplicate { id: u64 },

    /// The collection cannot serve the request: it is closing, open
    /// elsewhere, or a background flush or compaction failed (the message
    /// says which, with the file). Reads keep working; reopen to recover.
    #[error("{0}")]
    Unavailable(String),
}

/// The crate's result type.
pub type Result<T, E = EngineError> = std::result::Result<T, E>;
