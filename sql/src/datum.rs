//! Values as SQL sees them ([`Datum`]) and the PostgreSQL types they
//! travel as ([`SqlType`]), with the type OIDs that clients look up.

use std::fmt;

use omen_format::attr::{ColumnType, Value};

use crate::vector;
use crate::{Result, SqlError};

/// The OID we give pgvector's `vector`. In PostgreSQL it is assigned when
/// the extension is created, so clients (pgvector-python's
/// `register_vector`, rust-postgres) look it up in `pg_type` by name; any
/// free OID above 16383 (the first one for user objects) works.
pub const VECTOR_OID: u32 = 16_390;
/// The OID of `vector[]`.
pub const VECTOR_ARRAY_OID: u32 = 16_391;

/// A PostgreSQL type a column or parameter has.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SqlType {
    Bool,
    Int2,
    Int4,
    Int8,
    Float4,
    Float8,
    Text,
    Name,
    Oid,
    Timestamp,
    Vector,
    /// PostgreSQL's one-byte `"char"` (pg_type.typtype and friends).
    Char,
    /// A parameter whose type the statement does not tell.
    Unknown,
}

impl SqlType {
    /// The type's OID in pg_type.
    pub const fn oid(self) -> u32 {
        match self {
            SqlType::Bool => 16,
            SqlType::Name => 19,
            SqlType::Int8 => 20,
            SqlType::Int2 => 21,
            SqlType::Int4 => 23,
            SqlType::Text => 25,
            SqlType::Oid => 26,
            SqlType::Float4 => 700,
            SqlType::Float8 => 701,
            SqlType::Timestamp => 1114,
            SqlType::Vector => VECTOR_OID,
            SqlType::Char => 18,
            SqlType::Unknown => 705,
        }
    }

    /// The type with `oid`, if we speak it.
    pub fn from_oid(oid: u32) -> Option<SqlType> {
        SqlType::ALL.iter().copied().find(|t| t.oid() == oid)
    }

    /// Every type, for pg_type.
    pub const ALL: [SqlType; 13] = [
        SqlType::Bool,
        SqlType::Name,
        SqlType::Int8,
        SqlType::Int2,
        SqlType::Int4,
        SqlType::Text,
        SqlType::Oid,
        SqlType::Float4,
        SqlType::Float8,
        SqlType::Timestamp,
        SqlType::Vector,
        SqlType::Char,
        SqlType::Unknown,
    ];

    /// The name in pg_type.
    pub const fn name(self) -> &'static str {
        match self {
            SqlType::Bool => "bool",
            SqlType::Name => "name",
            SqlType::Int8 => "int8",
            SqlType::Int2 => "int2",
            SqlType::Int4 => "int4",
            SqlType::Text => "text",
            SqlType::Oid => "oid",
            SqlType::Float4 => "float4",
            SqlType::Float8 => "float8",
            SqlType::Timestamp => "timestamp",
            SqlType::Vector => "vector",
            SqlType::Char => "char",
            SqlType::Unknown => "unknown",
        }
    }

    /// The type a SQL type name (as in a cast or DDL) denotes.
    pub fn from_sql_name(name: &str) -> Option<SqlType> {
        let n = name.to_ascii_lowercase();
        let n = n.strip_prefix("pg_catalog.").unwrap_or(&n);
        let base = n.split('(').next().unwrap_or(n).trim();
        Some(match base {
            "bool" | "boolean" => SqlType::Bool,
            "int2" | "smallint" => SqlType::Int2,
            "int4" | "int" | "integer" => SqlType::Int4,
            "int8" | "bigint" => SqlType::Int8,
            "float4" | "real" => SqlType::Float4,
            "float8" | "double precision" | "double" | "float" | "numeric" | "decimal" => {
                SqlType::Float8
            }
            "text" | "varchar" | "character varying" | "char" | "character" | "string" => {
                SqlType::Text
            }
            "name" => SqlType::Name,
            "oid" | "regtype" | "regclass" | "regproc" => SqlType::Oid,
            "timestamp" | "timestamptz" => SqlType::Timestamp,
            "vector" | "public.vector" => SqlType::Vector,
            _ => return None,
        })
    }

    /// The SQL type of an attribute column.
    pub const fn of_column(ty: ColumnType) -> SqlType {
        match ty {
            ColumnType::Int64 => SqlType::Int8,
            ColumnType::Float64 => SqlType::Float8,
            ColumnType::Bool => SqlType::Bool,
            ColumnType::Text => SqlType::Text,
            ColumnType::Timestamp => SqlType::Timestamp,
        }
    }
}

/// One SQL value.
#[derive(Debug, Clone, PartialEq)]
pub enum Datum {
    Null,
    Bool(bool),
    Int(i64),
    Float(f64),
    /// Text, and also an untyped literal or text-format parameter, which
    /// takes the type its context asks for ([`Datum::coerce`]).
    Text(String),
    Vector(Vec<f32>),
    /// Microseconds since the Unix epoch.
    Timestamp(i64),
}

impl Datum {
    /// This value as `ty`, converting text the way PostgreSQL's input
    /// functions would and numbers the way its casts would.
    pub fn coerce(self, ty: SqlType) -> Result<Datum> {
        let mismatch =
            |d: &Datum| SqlError::bad_text(format!("cannot use {} as {}", d.describe(), ty.name()));
        Ok(match (ty, self) {
            (_, Datum::Null) => Datum::Null,
            (SqlType::Unknown, d) => d,
            (SqlType::Vector, Datum::Text(s)) => Datum::Vector(vector::parse_text(&s)?),
            (SqlType::Vector, d @ Datum::Vector(_)) => d,
            (SqlType::Int2 | SqlType::Int4 | SqlType::Int8 | SqlType::Oid, d) => match d {
                Datum::Int(v) => Datum::Int(v),
                Datum::Float(f) if f.fract() == 0.0 && f.abs() < 9.2e18 => Datum::Int(f as i64),
                Datum::Text(s) => Datum::Int(s.trim().parse().map_err(|_| {
                    SqlError::bad_text(format!(
                        "invalid input syntax for type {}: \"{s}\"",
                        ty.name()
                    ))
                })?),
                d => return Err(mismatch(&d)),
            },
            (SqlType::Float4 | SqlType::Float8, d) => match d {
                Datum::Int(v) => Datum::Float(v as f64),
                Datum::Float(v) => Datum::Float(v),
                Datum::Text(s) => Datum::Float(s.trim().parse().map_err(|_| {
                    SqlError::bad_text(format!(
                        "invalid input syntax for type {}: \"{s}\"",
                        ty.name()
                    ))
                })?),
                d => return Err(mismatch(&d)),
            },
            (SqlType::Bool, d) => match d {
                Datum::Bool(b) => Datum::Bool(b),
                Datum::Text(s) => match s.trim().to_ascii_lowercase().as_str() {
                    "t" | "true" | "yes" | "on" | "1" => Datum::Bool(true),
                    "f" | "false" | "no" | "off" | "0" => Datum::Bool(false),
                    _ => {
                        return Err(SqlError::bad_text(format!(
                            "invalid input syntax for type boolean: \"{s}\""
                        )));
                    }
                },
                d => return Err(mismatch(&d)),
            },
            (SqlType::Text | SqlType::Name | SqlType::Char, d) => match d {
                Datum::Text(s) => Datum::Text(s),
                d => Datum::Text(d.to_text().unwrap_or_default()),
            },
            (SqlType::Timestamp, d) => match d {
                Datum::Timestamp(t) | Datum::Int(t) => Datum::Timestamp(t),
                d => return Err(mismatch(&d)),
            },
            (SqlType::Vector, d) => return Err(mismatch(&d)),
        })
    }

    /// PostgreSQL's text output of this value; `None` for NULL.
    pub fn to_text(&self) -> Option<String> {
        Some(match self {
            Datum::Null => return None,
            Datum::Bool(b) => if *b { "t" } else { "f" }.to_string(),
            Datum::Int(v) => v.to_string(),
            Datum::Float(v) => format_float(*v),
            Datum::Text(s) => s.clone(),
            Datum::Vector(v) => vector::format_text(v),
            Datum::Timestamp(t) => format!("{t}"),
        })
    }

    /// A short description for error messages.
    pub fn describe(&self) -> String {
        match self {
            Datum::Null => "NULL".into(),
            Datum::Bool(_) => "a boolean".into(),
            Datum::Int(_) => "an integer".into(),
            Datum::Float(_) => "a float".into(),
            Datum::Text(_) => "text".into(),
            Datum::Vector(v) => format!("a {}-dimensional vector", v.len()),
            Datum::Timestamp(_) => "a timestamp".into(),
        }
    }

    /// The natural type of this value.
    pub fn sql_type(&self) -> SqlType {
        match self {
            Datum::Null | Datum::Text(_) => SqlType::Text,
            Datum::Bool(_) => SqlType::Bool,
            Datum::Int(_) => SqlType::Int8,
            Datum::Float(_) => SqlType::Float8,
            Datum::Vector(_) => SqlType::Vector,
            Datum::Timestamp(_) => SqlType::Timestamp,
        }
    }

    /// As an attribute value for a column of type `ty`.
    pub fn to_value(&self, ty: ColumnType) -> Result<Value> {
        Ok(match self.clone().coerce(SqlType::of_column(ty))? {
            Datum::Null => Value::Null,
            Datum::Int(v) => Value::Int64(v),
            Datum::Float(v) => Value::Float64(v),
            Datum::Bool(v) => Value::Bool(v),
            Datum::Text(v) => Value::Text(v),
            Datum::Timestamp(v) => Value::Timestamp(v),
            Datum::Vector(_) => {
                return Err(SqlError::invalid("a vector is not an attribute value"));
            }
        })
    }

    /// From an attribute value.
    pub fn from_value(v: &Value) -> Datum {
        match v {
            Value::Null => Datum::Null,
            Value::Int64(v) => Datum::Int(*v),
            Value::Float64(v) => Datum::Float(*v),
            Value::Bool(v) => Datum::Bool(*v),
            Value::Text(v) => Datum::Text(v.clone()),
            Value::Timestamp(v) => Datum::Timestamp(*v),
        }
    }
}

impl fmt::Display for Datum {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.to_text().as_deref().unwrap_or("NULL"))
    }
}

/// PostgreSQL's float8 output: shortest round trip, `NaN`, `Infinity`.
pub fn format_float(v: f64) -> String {
    if v.is_nan() {
        "NaN".into()
    } else if v.is_infinite() {
        if v > 0.0 { "Infinity" } else { "-Infinity" }.into()
    } else {
        format!("{v}")
    }
}
