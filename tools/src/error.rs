//! The one error type of the tools crate.
//!
//! Wraps the lower layers' errors unchanged (their messages already name
//! files and offsets) and adds the failures only a command can have.

use std::path::PathBuf;

/// Errors from the command-line tools.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ToolError {
    /// A dataset or segment file was unreadable, corrupt or invalid.
    #[error(transparent)]
    Format(#[from] omen_format::FormatError),

    /// An algorithm refused its arguments or failed on the data.
    #[error(transparent)]
    Engine(#[from] omen_engine::EngineError),

    /// SQL: parsing, planning, executing or serving failed.
    #[error(transparent)]
    Sql(#[from] omen_sql::SqlError),

    /// I/O outside the format layer (creating directories, temp dirs).
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },

    /// User: the arguments do not make sense together.
    #[error("{0}")]
    Usage(String),

    /// A self-check found results that disagree with their definition.
    #[error("self-check failed: {0}")]
    Check(String),
}

impl ToolError {
    /// Wraps an operating-system error with the path it concerns.
    pub fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        ToolError::Io {
            path: path.into(),
            source,
        }
    }
}

/// The crate's result type.
pub type Result<T, E = ToolError> = std::result::Result<T, E>;
