//! SQL values to and from the bytes of the wire, in PostgreSQL's text and
//! binary formats. Parameter bytes come straight from the network: every
//! decoder checks lengths and reports what was wrong.

use bytes::{BufMut, BytesMut};
use pgwire::api::Type;
use pgwire::api::portal::Format;
use pgwire::messages::data::DataRow;
use postgres_types::Kind;

use crate::datum::{Datum, SqlType, VECTOR_OID};
use crate::vector;
use crate::{Result, SqlError};

/// Microseconds from 1970-01-01 to 2000-01-01, PostgreSQL's epoch.
const PG_EPOCH_OFFSET_US: i64 = 946_684_800_000_000;

/// pgvector's `vector` as a pgwire type.
pub fn vector_type() -> Type {
    Type::new("vector".into(), VECTOR_OID, Kind::Simple, "public".into())
}

/// Our type for an OID a client declared; text-like and unknown OIDs map
/// to `Unknown` so that the value is read by its context.
pub fn sql_type_of(oid: u32) -> Option<SqlType> {
    match SqlType::from_oid(oid)? {
        SqlType::Text | SqlType::Name | SqlType::Char | SqlType::Unknown => None,
        other => Some(other),
    }
}

/// Decodes one parameter: `None` is SQL NULL.
pub fn decode_param(raw: Option<&[u8]>, binary: bool, ty: SqlType) -> Result<Datum> {
    let Some(raw) = raw else {
        return Ok(Datum::Null);
    };
    if !binary {
        let text = std::str::from_utf8(raw)
            .map_err(|_| SqlError::bad_text("text parameter is not valid UTF-8"))?;
        return Datum::Text(text.to_string()).coerce(ty);
    }
    let fixed = |n: usize| -> Result<&[u8]> {
        if raw.len() == n {
            Ok(raw)
        } else {
            Err(SqlError::invalid(format!(
                "binary {} parameter has {} bytes, expected {n}",
                ty.name(),
                raw.len()
            )))
        }
    };
    Ok(match ty {
        SqlType::Vector => Datum::Vector(vector::decode_binary(raw)?),
        SqlType::Bool => Datum::Bool(fixed(1)?[0] != 0),
        SqlType::Int2 => Datum::Int(i64::from(i16::from_be_bytes(
            fixed(2)?.try_into().unwrap_or_default(),
        ))),
        SqlType::Int4 => Datum::Int(i64::from(i32::from_be_bytes(
            fixed(4)?.try_into().unwrap_or_default(),
        ))),
        SqlType::Oid => Datum::Int(i64::from(u32::from_be_bytes(
            fixed(4)?.try_into().unwrap_or_default(),
        ))),
        SqlType::Int8 => Datum::Int(i64::from_be_bytes(fixed(8)?.try_into().unwrap_or_default())),
        SqlType::Float4 => Datum::Float(f64::from(f32::from_be_bytes(
            fixed(4)?.try_into().unwrap_or_default(),
        ))),
        SqlType::Float8 => {
            Datum::Float(f64::from_be_bytes(fixed(8)?.try_into().unwrap_or_default()))
        }
        SqlType::Timestamp => Datum::Timestamp(
            i64::from_be_bytes(fixed(8)?.try_into().unwrap_or_default())
                .saturating_add(PG_EPOCH_OFFSET_US),
        ),
        SqlType::Text | SqlType::Name | SqlType::Char | SqlType::Unknown => Datum::Text(
            std::str::from_utf8(raw)
                .map_err(|_| SqlError::bad_text("text parameter is not valid UTF-8"))?
                .to_string(),
        ),
    })
}

/// Encodes one value of a column of type `ty`.
pub fn encode_value(d: &Datum, ty: SqlType, binary: bool, out: &mut BytesMut) {
    let start = out.len();
    out.put_i32(-1);
    let Some(len) = encode_body(d, ty, binary, out) else {
        return;
    };
    let len = i32::try_from(len).unwrap_or(i32::MAX).to_be_bytes();
    out[start..start + 4].copy_from_slice(&len);
}

/// Writes the value's bytes; `None` for NULL (nothing written).
fn encode_body(d: &Datum, ty: SqlType, binary: bool, out: &mut BytesMut) -> Option<usize> {
    let start = out.len();
    if !binary {
        out.put_slice(d.to_text()?.as_bytes());
        return Some(out.len() - start);
    }
    match (ty, d) {
        (_, Datum::Null) => return None,
        (SqlType::Vector, Datum::Vector(v)) => {
            let mut b = Vec::new();
            vector::encode_binary(v, &mut b);
            out.put_slice(&b);
        }
        (SqlType::Bool, Datum::Bool(b)) => out.put_u8(u8::from(*b)),
        (SqlType::Int2, Datum::Int(v)) => out.put_i16(*v as i16),
        (SqlType::Int4, Datum::Int(v)) => out.put_i32(*v as i32),
        (SqlType::Oid, Datum::Int(v)) => out.put_u32(*v as u32),
        (SqlType::Int8, Datum::Int(v)) => out.put_i64(*v),
        (SqlType::Float4, Datum::Float(v)) => out.put_f32(*v as f32),
        (SqlType::Float8, Datum::Float(v)) => out.put_f64(*v),
        (SqlType::Float8, Datum::Int(v)) => out.put_f64(*v as f64),
        (SqlType::Timestamp, Datum::Timestamp(t)) => out.put_i64(t - PG_EPOCH_OFFSET_US),
        // Text-typed columns (and anything whose value disagrees with its
        // declared type) go out as their text form, which is also text's
        // binary form.
        (_, d) => out.put_slice(d.to_text()?.as_bytes()),
    }
    Some(out.len() - start)
}

/// One DataRow in the formats the client asked for.
pub fn encode_row(row: &[Datum], types: &[SqlType], format: &Format) -> DataRow {
    let mut buf = BytesMut::with_capacity(16 * row.len());
    for (i, (d, &ty)) in row.iter().zip(types).enumerate() {
        encode_value(d, ty, format.is_binary(i), &mut buf);
    }
    DataRow::new(buf, row.len() as i16)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parameters_decode_in_both_formats() {
        let mut v = Vec::new();
        vector::encode_binary(&[1.0, -2.0], &mut v);
        assert_eq!(
            decode_param(Some(&v), true, SqlType::Vector).unwrap(),
            Datum::Vector(vec![1.0, -2.0])
        );
        assert_eq!(
            decode_param(Some(b"[1,-2]"), false, SqlType::Vector).unwrap(),
            Datum::Vector(vec![1.0, -2.0])
        );
        assert_eq!(
            decode_param(Some(&7i64.to_be_bytes()), true, SqlType::Int8).unwrap(),
            Datum::Int(7)
        );
        assert_eq!(
            decode_param(Some(b"10"), false, SqlType::Int8).unwrap(),
            Datum::Int(10)
        );
        assert_eq!(
            decode_param(None, true, SqlType::Vector).unwrap(),
            Datum::Null
        );
        assert!(decode_param(Some(&[0, 0, 1]), true, SqlType::Int4).is_err());
        assert!(decode_param(Some(&[0xff, 0xfe]), false, SqlType::Text).is_err());
    }

    #[test]
    fn values_encode_as_postgres_does() {
        let mut b = BytesMut::new();
        encode_value(&Datum::Int(5), SqlType::Int8, true, &mut b);
        assert_eq!(&b[..], &[0, 0, 0, 8, 0, 0, 0, 0, 0, 0, 0, 5]);
        b.clear();
        encode_value(&Datum::Null, SqlType::Int8, false, &mut b);
        assert_eq!(&b[..], &[0xff, 0xff, 0xff, 0xff]);
        b.clear();
        encode_value(&Datum::Vector(vec![1.5]), SqlType::Vector, false, &mut b);
        assert_eq!(&b[..], b"\0\0\0\x05[1.5]");
    }
}

/// Fuzz bodies shared by the proptests and `fuzz/fuzz_targets/sql_values.rs`.
pub mod fuzzing {
    use super::*;

    /// Decodes `data` as a parameter of every type in both formats, and as
    /// a pgvector value in both forms, and as SQL text: each must return
    /// a value or an error, never panic.
    pub fn wire_values(data: &[u8]) {
        for ty in SqlType::ALL {
            for binary in [false, true] {
                if let Ok(d) = decode_param(Some(data), binary, ty) {
                    let mut out = BytesMut::new();
                    encode_value(&d, ty, binary, &mut out);
                }
            }
        }
        crate::vector::fuzzing::vector_formats(data);
        crate::wire::copy::fuzzing::copy_data(data);
        if let Ok(sql) = std::str::from_utf8(data) {
            let _ = crate::exec::parse(sql);
        }
    }
}

#[cfg(test)]
mod proptests {
    use proptest::prelude::*;

    proptest! {
        #[test]
        fn arbitrary_parameter_bytes_never_panic(data in prop::collection::vec(any::<u8>(), 0..64)) {
            super::fuzzing::wire_values(&data);
        }

        #[test]
        fn arbitrary_sql_never_panics(sql in "(SELECT|INSERT|SET|EXPLAIN|<->|<#>|<=>|'\\[1,2\\]'|\\$1|[a-z(),;=*0-9 ]){0,12}") {
            super::fuzzing::wire_values(sql.as_bytes());
        }
    }
}
