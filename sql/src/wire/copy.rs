//! `COPY table [(columns)] FROM STDIN` in PostgreSQL's text and binary
//! formats: the bulk-load path of psql's `\copy` and psycopg's
//! `cursor.copy()`. The bytes come from the network, so the parsers check
//! every length and report the line or tuple that was wrong.

use omen_format::attr::Value;

use crate::catalog::{ColumnKind, Row, TableSchema};
use crate::datum::{Datum, SqlType};
use crate::wire::codec::decode_param;
use crate::{Result, SqlError};

/// The signature that starts binary COPY data.
const BINARY_SIGNATURE: &[u8] = b"PGCOPY\n\xff\r\n\0";

/// Largest COPY accepted in one statement; larger loads go in batches.
pub const MAX_COPY_BYTES: usize = 256 << 20;

/// The columns COPY fills, in the order the data gives them.
pub fn targets(schema: &TableSchema, columns: &[String]) -> Result<Vec<String>> {
    let targets: Vec<String> = if columns.is_empty() {
        schema.columns.iter().map(|c| c.name.clone()).collect()
    } else {
        columns.to_vec()
    };
    let mut has_id = false;
    let mut has_vector = false;
    for t in &targets {
        match schema.column(t)?.kind {
            ColumnKind::Id => has_id = true,
            ColumnKind::Vector { .. } => has_vector = true,
            ColumnKind::Attribute(_) => {}
        }
    }
    if !has_id || !has_vector {
        return Err(SqlError::invalid(
            "COPY must load the id and the vector of every row",
        ));
    }
    Ok(targets)
}

fn column_type(schema: &TableSchema, name: &str) -> Result<SqlType> {
    Ok(match schema.column(name)?.kind {
        ColumnKind::Id => SqlType::Int8,
        ColumnKind::Vector { .. } => SqlType::Vector,
        ColumnKind::Attribute(t) => SqlType::of_column(t),
    })
}

fn row_of(schema: &TableSchema, targets: &[String], values: Vec<Datum>, at: &str) -> Result<Row> {
    let mut row = Row {
        id: 0,
        vector: Vec::new(),
        values: vec![Value::Null; schema.attributes().count()],
    };
    let (_, dim) = schema.vector_column();
    for (t, v) in targets.iter().zip(values) {
        let col = schema.column(t)?;
        let bad = |m: String| SqlError::invalid(format!("COPY {at}, column {}: {m}", col.name));
        match col.kind {
            ColumnKind::Id => match v {
                Datum::Int(i) if i >= 0 => row.id = i as u64,
                other => {
                    return Err(bad(format!(
                        "id must be a non-negative bigint, not {}",
                        other.describe()
                    )));
                }
            },
            ColumnKind::Vector { .. } => match v {
                Datum::Vector(x) if x.len() == dim => row.vector = x,
                Datum::Vector(x) => {
                    return Err(bad(format!("expected {dim} dimensions, not {}", x.len())));
                }
                other => return Err(bad(format!("expected a vector, not {}", other.describe()))),
            },
            ColumnKind::Attribute(ty) => {
                let i = schema.attribute_index(&col.name).unwrap_or(0);
                row.values[i] = v.to_value(ty).map_err(|e| bad(e.to_string()))?;
            }
        }
    }
    Ok(row)
}

/// Parses COPY text format: one row per line, tab-separated, `\N` for
/// NULL, backslash escapes; a line `\.` ends the data.
pub fn parse_text(data: &[u8], schema: &TableSchema, targets: &[String]) -> Result<Vec<Row>> {
    let text = std::str::from_utf8(data).map_err(|e| {
        SqlError::bad_text(format!("COPY data is not UTF-8 (byte {})", e.valid_up_to()))
    })?;
    let types: Vec<SqlType> = targets
        .iter()
        .map(|t| column_type(schema, t))
        .collect::<Result<_>>()?;
    let mut rows = Vec::new();
    for (n, line) in text.lines().enumerate() {
        if line == "\\." {
            break;
        }
        if line.is_empty() {
            continue;
        }
        let at = format!("line {}", n + 1);
        let fields: Vec<&str> = line.split('\t').collect();
        if fields.len() != targets.len() {
            return Err(SqlError::invalid(format!(
                "COPY {at}: {} fields, expected {}",
                fields.len(),
                targets.len()
            )));
        }
        let mut values = Vec::with_capacity(fields.len());
        for (f, &ty) in fields.iter().zip(&types) {
            values.push(if *f == "\\N" {
                Datum::Null
            } else {
                Datum::Text(unescape(f))
                    .coerce(ty)
                    .map_err(|e| SqlError::InvalidValue {
                        sqlstate: e.sqlstate(),
                        message: format!("COPY {at}: {e}"),
                    })?
            });
        }
        rows.push(row_of(schema, targets, values, &at)?);
    }
    Ok(rows)
}

/// COPY text escapes: `\\`, `\t`, `\n`, `\r`, `\b`, `\f`, `\v`.
fn unescape(s: &str) -> String {
    if !s.contains('\\') {
        return s.to_string();
    }
    let mut out = String::with_capacity(s.len());
    let mut chars = s.chars();
    while let Some(c) = chars.next() {
        if c != '\\' {
            out.push(c);
            continue;
        }
        match chars.next() {
            Some('t') => out.push('\t'),
            Some('n') => out.push('\n'),
            Some('r') => out.push('\r'),
            Some('b') => out.push('\u{8}'),
            Some('f') => out.push('\u{c}'),
            Some('v') => out.push('\u{b}'),
            Some(other) => out.push(other),
            None => out.push('\\'),
        }
    }
    out
}

/// Parses COPY binary format: signature, flags, header extension, then
/// tuples of (int16 field count, per field int32 length or -1 and bytes),
/// ended by a count of -1. Fields use each type's binary form
/// (pgvector's for vectors).
pub fn parse_binary(data: &[u8], schema: &TableSchema, targets: &[String]) -> Result<Vec<Row>> {
    let bad = |at: usize, m: &str| SqlError::invalid(format!("COPY binary data at byte {at}: {m}"));
    if !data.starts_with(BINARY_SIGNATURE) {
        return Err(bad(0, "missing the PGCOPY signature"));
    }
    let mut at = BINARY_SIGNATURE.len();
    let take = |at: &mut usize, n: usize| -> Result<&[u8]> {
        let end = at
            .checked_add(n)
            .filter(|&e| e <= data.len())
            .ok_or_else(|| bad(*at, "truncated"))?;
        let s = &data[*at..end];
        *at = end;
        Ok(s)
    };
    let be32 = |b: &[u8]| i32::from_be_bytes([b[0], b[1], b[2], b[3]]);
    let flags = be32(take(&mut at, 4)?);
    if flags & (1 << 16) != 0 {
        return Err(bad(at - 4, "OIDs in COPY data are not supported"));
    }
    let ext = be32(take(&mut at, 4)?);
    let ext = usize::try_from(ext).map_err(|_| bad(at - 4, "negative header extension length"))?;
    take(&mut at, ext)?;
    let types: Vec<SqlType> = targets
        .iter()
        .map(|t| column_type(schema, t))
        .collect::<Result<_>>()?;
    let mut rows = Vec::new();
    loop {
        let start = at;
        let count = i16::from_be_bytes(take(&mut at, 2)?.try_into().unwrap_or_default());
        if count == -1 {
            break;
        }
        if count as usize != targets.len() || count < 0 {
            return Err(bad(
                start,
                &format!(
                    "tuple {} has {count} fields, expected {}",
                    rows.len() + 1,
                    targets.len()
                ),
            ));
        }
        let mut values = Vec::with_capacity(targets.len());
        for &ty in &types {
            let len = be32(take(&mut at, 4)?);
            let value = if len < 0 {
                Datum::Null
            } else {
                let bytes = take(&mut at, len as usize)?;
                decode_param(Some(bytes), true, ty).map_err(|e| SqlError::InvalidValue {
                    sqlstate: e.sqlstate(),
                    message: format!("COPY tuple {}: {e}", rows.len() + 1),
                })?
            };
            values.push(value);
        }
        rows.push(row_of(
            schema,
            targets,
            values,
            &format!("tuple {}", rows.len() + 1),
        )?);
    }
    Ok(rows)
}

/// Fuzz bodies shared by the proptests and `fuzz/fuzz_targets/sql_values.rs`.
pub mod fuzzing {
    use super::*;
    use crate::catalog::Column;
    use omen_format::Metric;
    use omen_format::attr::ColumnType;

    /// `t (id, embedding vector(2), tag text)`, l2.
    pub(super) fn schema() -> TableSchema {
        TableSchema {
            name: "t".into(),
            columns: vec![
                Column {
                    name: "id".into(),
                    kind: ColumnKind::Id,
                },
                Column {
                    name: "embedding".into(),
                    kind: ColumnKind::Vector { dim: 2 },
                },
                Column {
                    name: "tag".into(),
                    kind: ColumnKind::Attribute(ColumnType::Text),
                },
            ],
            metric: Metric::L2,
        }
    }

    /// Parses `data` as COPY text and binary data; never panics.
    pub fn copy_data(data: &[u8]) {
        let s = schema();
        let t = targets(&s, &[]).expect("fixed schema");
        let _ = parse_text(data, &s, &t);
        let _ = parse_binary(data, &s, &t);
        let mut framed = BINARY_SIGNATURE.to_vec();
        framed.extend_from_slice(&[0; 8]);
        framed.extend_from_slice(data);
        let _ = parse_binary(&framed, &s, &t);
    }
}

#[cfg(test)]
mod tests {
    use super::fuzzing::{copy_data, schema};
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn text_format_rows() {
        let s = schema();
        let t = targets(&s, &[]).unwrap();
        let rows = parse_text(b"1\t[1,2]\ta\\tb\n2\t[3,4]\t\\N\n\\.\n", &s, &t).unwrap();
        assert_eq!(rows.len(), 2);
        assert_eq!(rows[0].values, vec![Value::Text("a\tb".into())]);
        assert_eq!(rows[1].values, vec![Value::Null]);
        assert!(
            parse_text(b"1\t[1,2]\n", &s, &t)
                .unwrap_err()
                .to_string()
                .contains("line 1")
        );
        assert!(parse_text(b"1\t[1,2,3]\tx\n", &s, &t).is_err());
    }

    #[test]
    fn binary_format_rows() {
        let s = schema();
        let t = targets(&s, &[]).unwrap();
        let mut d = BINARY_SIGNATURE.to_vec();
        d.extend_from_slice(&[0; 8]);
        d.extend_from_slice(&3i16.to_be_bytes());
        d.extend_from_slice(&8i32.to_be_bytes());
        d.extend_from_slice(&7i64.to_be_bytes());
        let mut v = Vec::new();
        crate::vector::encode_binary(&[1.0, 2.0], &mut v);
        d.extend_from_slice(&(v.len() as i32).to_be_bytes());
        d.extend_from_slice(&v);
        d.extend_from_slice(&(-1i32).to_be_bytes());
        d.extend_from_slice(&(-1i16).to_be_bytes());
        let rows = parse_binary(&d, &s, &t).unwrap();
        assert_eq!(
            rows,
            vec![Row {
                id: 7,
                vector: vec![1.0, 2.0],
                values: vec![Value::Null]
            }]
        );
        assert!(parse_binary(&d[..d.len() - 3], &s, &t).is_err());
    }

    proptest! {
        #[test]
        fn arbitrary_copy_bytes_never_panic(data in prop::collection::vec(any::<u8>(), 0..96)) {
            copy_data(&data);
        }
    }
}
