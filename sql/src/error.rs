//! The one error type of the SQL crate.
//!
//! Every variant maps to a PostgreSQL SQLSTATE ([`SqlError::sqlstate`]) so
//! that the wire layer reports errors the way clients and drivers expect:
//! psycopg raises `FeatureNotSupported` for 0A000, `ReadOnlySqlTransaction`
//! for 25006, and so on.

/// Errors from parsing, planning and executing SQL.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SqlError {
    /// User: the text is not SQL (42601 syntax_error).
    #[error("syntax error: {0}")]
    Syntax(String),

    /// User: valid SQL that OmenDB does not run (0A000
    /// feature_not_supported). The message says what is supported.
    #[error("{0}")]
    Unsupported(String),

    /// User: a write on a read-only server or table (25006
    /// read_only_sql_transaction).
    #[error("{0}")]
    ReadOnly(String),

    /// User: no such table (42P01 undefined_table).
    #[error("relation \"{0}\" does not exist")]
    UndefinedTable(String),

    /// User: no such column (42703 undefined_column).
    #[error("column \"{column}\" does not exist in table \"{table}\"")]
    UndefinedColumn { table: String, column: String },

    /// User: no such setting (42704 undefined_object).
    #[error("unrecognized configuration parameter \"{0}\"")]
    UndefinedSetting(String),

    /// User: a value of the wrong shape: bad vector text or bytes, a wrong
    /// dimension, NaN, a bad parameter (22023 invalid_parameter_value, or
    /// 22P02 invalid_text_representation for text that does not parse).
    #[error("{message}")]
    InvalidValue {
        sqlstate: &'static str,
        message: String,
    },

    /// The engine refused the request or failed reading a file.
    #[error(transparent)]
    Engine(#[from] omen_engine::EngineError),

    /// A file the catalog needs could not be read or written.
    #[error(transparent)]
    Format(#[from] omen_format::FormatError),
}

impl SqlError {
    /// The PostgreSQL SQLSTATE of this error.
    pub fn sqlstate(&self) -> &'static str {
        match self {
            SqlError::Syntax(_) => "42601",
            SqlError::Unsupported(_) => "0A000",
            SqlError::ReadOnly(_) => "25006",
            SqlError::UndefinedTable(_) => "42P01",
            SqlError::UndefinedColumn { .. } => "42703",
            SqlError::UndefinedSetting(_) => "42704",
            SqlError::InvalidValue { sqlstate, .. } => sqlstate,
            // The engine's InvalidArgument is the user's query (dimension,
            // NaN, k); everything else is the server's problem.
            SqlError::Engine(omen_engine::EngineError::InvalidArgument(_)) => "22023",
            SqlError::Engine(omen_engine::EngineError::Duplicate { .. }) => "23505",
            SqlError::Engine(omen_engine::EngineError::Unavailable(_)) => "55000",
            SqlError::Engine(_) | SqlError::Format(_) => "XX000",
        }
    }

    /// A 0A000 error.
    pub fn unsupported(what: impl Into<String>) -> Self {
        SqlError::Unsupported(what.into())
    }

    /// A 22023 invalid_parameter_value error.
    pub fn invalid(message: impl Into<String>) -> Self {
        SqlError::InvalidValue {
            sqlstate: "22023",
            message: message.into(),
        }
    }

    /// A 22P02 invalid_text_representation error.
    pub fn bad_text(message: impl Into<String>) -> Self {
        SqlError::InvalidValue {
            sqlstate: "22P02",
            message: message.into(),
        }
    }
}

/// The crate's result type.
pub type Result<T, E = SqlError> = std::result::Result<T, E>;
