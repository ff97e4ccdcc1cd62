//! The vocabulary of scalar attribute columns: the values that filters
//! compare, that the WAL logs next to each vector, and that segments store
//! column by column.
//!
//! The type codes below are part of the format (they are written in WAL
//! records and segment attribute sections) and must never be renumbered.

use std::cmp::Ordering;
use std::fmt;
use std::str::FromStr;

/// The type of a scalar attribute column.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[repr(u8)]
pub enum ColumnType {
    Int64 = 1,
    Float64 = 2,
    Bool = 3,
    /// UTF-8 text; short, repeated values (keywords) compress well.
    Text = 4,
    /// Microseconds since 1970-01-01 00:00:00 UTC, as PostgreSQL stores
    /// `timestamp`.
    Timestamp = 5,
}

impl ColumnType {
    /// Decodes the on-disk byte; `None` for an unknown code.
    pub const fn from_code(code: u8) -> Option<Self> {
        match code {
            1 => Some(ColumnType::Int64),
            2 => Some(ColumnType::Float64),
            3 => Some(ColumnType::Bool),
            4 => Some(ColumnType::Text),
            5 => Some(ColumnType::Timestamp),
            _ => None,
        }
    }

    /// The name used in schemas, side files and error messages.
    pub const fn name(self) -> &'static str {
        match self {
            ColumnType::Int64 => "int64",
            ColumnType::Float64 => "float64",
            ColumnType::Bool => "bool",
            ColumnType::Text => "text",
            ColumnType::Timestamp => "timestamp",
        }
    }
}

impl fmt::Display for ColumnType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for ColumnType {
    type Err = String;
    /// Accepts our names and the PostgreSQL spellings users write in DDL.
    fn from_str(s: &str) -> Result<Self, String> {
        match s.to_ascii_lowercase().as_str() {
            "int64" | "bigint" | "int8" | "int" | "integer" | "int4" => Ok(ColumnType::Int64),
            "float64" | "float8" | "double precision" | "double" | "real" | "float" => {
                Ok(ColumnType::Float64)
            }
            "bool" | "boolean" => Ok(ColumnType::Bool),
            "text" | "keyword" | "varchar" | "string" => Ok(ColumnType::Text),
            "timestamp" | "timestamptz" => Ok(ColumnType::Timestamp),
            other => Err(format!(
                "unknown column type '{other}' (expected int64, float64, bool, text or timestamp)"
            )),
        }
    }
}

/// One declared attribute column.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct ColumnSchema {
    pub name: String,
    pub ty: ColumnType,
    /// Whether rows may leave it NULL.
    pub nullable: bool,
}

/// One attribute value, or NULL.
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    Null,
    Int64(i64),
    Float64(f64),
    Bool(bool),
    Text(String),
    /// Microseconds since the Unix epoch (see [`ColumnType::Timestamp`]).
    Timestamp(i64),
}

impl Value {
    /// The column type this value belongs to; `None` for NULL, which fits
    /// any nullable column.
    pub fn column_type(&self) -> Option<ColumnType> {
        match self {
            Value::Null => None,
            Value::Int64(_) => Some(ColumnType::Int64),
            Value::Float64(_) => Some(ColumnType::Float64),
            Value::Bool(_) => Some(ColumnType::Bool),
            Value::Text(_) => Some(ColumnType::Text),
            Value::Timestamp(_) => Some(ColumnType::Timestamp),
        }
    }

    pub fn is_null(&self) -> bool {
        matches!(self, Value::Null)
    }

    /// SQL comparison: `None` when either side is NULL or the types differ
    /// (an int64 compares with a float64 numerically). Floats order by
    /// `total_cmp`, so NaN, which ingest rejects anyway, cannot poison a
    /// sort.
    pub fn sql_cmp(&self, other: &Value) -> Option<Ordering> {
        match (self, other) {
            (Value::Int64(a), Value::Int64(b)) => Some(a.cmp(b)),
            (Value::Float64(a), Value::Float64(b)) => Some(a.total_cmp(b)),
            (Value::Int64(a), Value::Float64(b)) => Some((*a as f64).total_cmp(b)),
            (Value::Float64(a), Value::Int64(b)) => Some(a.total_cmp(&(*b as f64))),
            (Value::Bool(a), Value::Bool(b)) => Some(a.cmp(b)),
            (Value::Text(a), Value::Text(b)) => Some(a.cmp(b)),
            (Value::Timestamp(a), Value::Timestamp(b)) => Some(a.cmp(b)),
            _ => None,
        }
    }
}

impl fmt::Display for Value {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Value::Null => f.write_str("NULL"),
            Value::Int64(v) => write!(f, "{v}"),
            Value::Float64(v) => write!(f, "{v}"),
            Value::Bool(v) => write!(f, "{v}"),
            Value::Text(v) => write!(f, "'{}'", v.replace('\'', "''")),
            Value::Timestamp(v) => write!(f, "timestamp {v}us"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_round_trip_and_unknown_codes_fail() {
        for code in 0..=255u8 {
            match ColumnType::from_code(code) {
                Some(ty) => assert_eq!(ty as u8, code),
                None => assert!(code == 0 || code > 5),
            }
        }
        assert_eq!("BIGINT".parse::<ColumnType>(), Ok(ColumnType::Int64));
        assert!("uuid".parse::<ColumnType>().unwrap_err().contains("uuid"));
    }

    #[test]
    fn comparison_follows_sql() {
        assert_eq!(
            Value::Int64(2).sql_cmp(&Value::Float64(2.5)),
            Some(Ordering::Less)
        );
        assert_eq!(Value::Null.sql_cmp(&Value::Int64(1)), None);
        assert_eq!(Value::Text("a".into()).sql_cmp(&Value::Int64(1)), None);
    }
}
