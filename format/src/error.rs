//! The one error type of the format crate.
//!
//! Every variant says which kind of failure it is, because callers react
//! differently: a *user* error is fixed by changing the input or the call, a
//! *corruption* error means the bytes on disk are not what a writer produced
//! (restore or rebuild the file), and an *I/O* error comes from the operating
//! system and may be transient. Corruption errors always carry the file path
//! and the byte offset at which the reader gave up.

use std::path::PathBuf;

/// Errors from reading or writing OmenDB files.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum FormatError {
    /// I/O: the operating system failed a call on `path`.
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },

    /// Corruption: the bytes at `offset` of `path` break the format's rules.
    /// `what` names the structure (for example `section 3 (vectors)`).
    #[error("{path}: corrupt {what} at offset {offset}: {reason}")]
    Corrupt {
        path: PathBuf,
        what: String,
        offset: u64,
        reason: String,
    },

    /// Corruption: a checksum over `len` bytes starting at `offset` disagrees.
    #[error(
        "{path}: checksum mismatch in {what} at offset {offset} (length {len}): \
         stored {expected:#018x}, computed {got:#018x}"
    )]
    ChecksumMismatch {
        path: PathBuf,
        what: String,
        offset: u64,
        len: u64,
        expected: u64,
        got: u64,
    },

    /// Corruption: the file ends before the structure that must be at `offset`.
    #[error(
        "{path}: truncated: {what} needs bytes up to offset {needed}, but the file has {actual}"
    )]
    Truncated {
        path: PathBuf,
        what: String,
        needed: u64,
        actual: u64,
    },

    /// User: the file is a valid OmenDB file from a format version this build
    /// cannot read. Upgrade (or downgrade) OmenDB, or rebuild the segment.
    #[error(
        "{path}: format version {found_major}.{found_minor} is not supported (this build reads {supported})"
    )]
    IncompatibleVersion {
        path: PathBuf,
        found_major: u16,
        found_minor: u16,
        supported: String,
    },

    /// User: the input data is malformed (wrong size, dimension, NaN, ...).
    /// `offset` is the byte offset in `path` of the first bad value.
    #[error("{path}: invalid data at offset {offset}: {reason}")]
    InvalidData {
        path: PathBuf,
        offset: u64,
        reason: String,
    },

    /// User: the caller asked for something the format cannot express.
    #[error("{0}")]
    InvalidArgument(String),
}

/// The crate's result type.
pub type Result<T, E = FormatError> = std::result::Result<T, E>;

impl FormatError {
    /// Wraps an operating-system error with the path it concerns.
    pub fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        FormatError::Io {
            path: path.into(),
            source,
        }
    }

    /// True for errors that mean the file's bytes are damaged or hostile.
    pub fn is_corruption(&self) -> bool {
        matches!(
            self,
            FormatError::Corrupt { .. }
                | FormatError::ChecksumMismatch { .. }
                | FormatError::Truncated { .. }
        )
    }
}

/// `err`'s message followed by each cause not already quoted in it: errors
/// that embed their source in their own message (`path: cause`) would
/// otherwise print the cause twice. Every crate's user-facing error text
/// (the command line, the SQL server's error responses) goes through this.
pub fn render_chain(err: &dyn std::error::Error) -> String {
    let mut message = err.to_string();
    let mut source = err.source();
    while let Some(cause) = source {
        let text = cause.to_string();
        if !message.contains(&text) {
            message.push_str(": ");
            message.push_str(&text);
        }
        source = cause.source();
    }
    message
}
