//! Collecting attribute rows in memory, with type checks, before a segment
//! is written (at build, flush or compaction time).

use std::collections::HashMap;

use super::{Column, ColumnValues, MAX_COLUMNS, MAX_NAME_LEN};
use crate::attr::{ColumnSchema, ColumnType, Value};
use crate::{FormatError, Result};

/// Attribute columns under construction, one row per vector.
///
/// Text columns are dictionary-encoded as rows arrive; the dictionary is
/// sorted when the columns are taken out ([`AttributeColumns::columns`]).
#[derive(Debug, Clone)]
pub struct AttributeColumns {
    schema: Vec<ColumnSchema>,
    columns: Vec<Column>,
    /// Per text column: value -> code in `dictionary` (insertion order).
    lookup: Vec<HashMap<String, u32>>,
    rows: usize,
}

impl AttributeColumns {
    /// Empty columns of `schema`. Names must be unique, non-empty and at
    /// most 255 bytes.
    pub fn new(schema: Vec<ColumnSchema>) -> Result<Self> {
        if schema.len() > MAX_COLUMNS {
            return Err(FormatError::InvalidArgument(format!(
                "{} attribute columns; at most {MAX_COLUMNS} are allowed",
                schema.len()
            )));
        }
        for (i, c) in schema.iter().enumerate() {
            if c.name.is_empty() || c.name.len() > MAX_NAME_LEN {
                return Err(FormatError::InvalidArgument(format!(
                    "attribute column {i}: names are 1..={MAX_NAME_LEN} bytes, got {:?}",
                    c.name
                )));
            }
            if schema.iter().take(i).any(|o| o.name == c.name) {
                return Err(FormatError::InvalidArgument(format!(
                    "attribute column {:?} is declared twice",
                    c.name
                )));
            }
        }
        let columns = schema
            .iter()
            .map(|c| Column {
                values: match c.ty {
                    ColumnType::Int64 => ColumnValues::Int64(Vec::new()),
                    ColumnType::Float64 => ColumnValues::Float64(Vec::new()),
                    ColumnType::Bool => ColumnValues::Bool(Vec::new()),
                    ColumnType::Text => ColumnValues::Text {
                        dictionary: Vec::new(),
                        codes: Vec::new(),
                    },
                    ColumnType::Timestamp => ColumnValues::Timestamp(Vec::new()),
                },
                present: None,
            })
            .collect();
        Ok(AttributeColumns {
            lookup: vec![HashMap::new(); schema.len()],
            schema,
            columns,
            rows: 0,
        })
    }

    /// The declared columns.
    pub fn schema(&self) -> &[ColumnSchema] {
        &self.schema
    }

    /// Rows pushed so far.
    pub fn len(&self) -> usize {
        self.rows
    }

    /// Whether no row was pushed.
    pub fn is_empty(&self) -> bool {
        self.rows == 0
    }

    /// Appends one row: one value per column, in schema order. An int64
    /// value is accepted by a float64 column; NULL only by a nullable one;
    /// NaN never. On error nothing is appended.
    pub fn push_row(&mut self, row: &[Value]) -> Result<()> {
        if row.len() != self.schema.len() {
            return Err(FormatError::InvalidArgument(format!(
                "row {} has {} attribute values, the schema has {} columns",
                self.rows,
                row.len(),
                self.schema.len()
            )));
        }
        for (c, v) in self.schema.iter().zip(row) {
            check_value(c, v).map_err(|why| {
                FormatError::InvalidArgument(format!(
                    "row {}, column {:?} ({}{}): {why}",
                    self.rows,
                    c.name,
                    c.ty,
                    if c.nullable { ", nullable" } else { "" }
                ))
            })?;
        }
        let row_index = self.rows;
        for ((column, lookup), v) in self.columns.iter_mut().zip(&mut self.lookup).zip(row) {
            let null = v.is_null();
            if null && column.present.is_none() {
                column.present = Some(vec![true; row_index]);
            }
            if let Some(p) = &mut column.present {
                p.push(!null);
            }
            match (&mut column.values, v) {
                (ColumnValues::Int64(x), Value::Int64(v)) => x.push(*v),
                (ColumnValues::Int64(x), _) => x.push(0),
                (ColumnValues::Float64(x), Value::Float64(v)) => x.push(*v),
                (ColumnValues::Float64(x), Value::Int64(v)) => x.push(*v as f64),
                (ColumnValues::Float64(x), _) => x.push(0.0),
                (ColumnValues::Bool(x), Value::Bool(v)) => x.push(*v),
                (ColumnValues::Bool(x), _) => x.push(false),
                (ColumnValues::Timestamp(x), Value::Timestamp(v)) => x.push(*v),
                (ColumnValues::Timestamp(x), _) => x.push(0),
                (ColumnValues::Text { dictionary, codes }, Value::Text(s)) => {
                    let next = dictionary.len() as u32;
                    let code = *lookup.entry(s.clone()).or_insert_with(|| {
                        dictionary.push(s.clone());
                        next
                    });
                    codes.push(code);
                }
                (ColumnValues::Text { codes, .. }, _) => codes.push(u32::MAX),
            }
        }
        self.rows += 1;
        Ok(())
    }

    /// The columns, text dictionaries sorted (NULL text rows get code 0).
    pub fn columns(&self) -> Vec<Column> {
        self.columns.iter().map(sorted_dictionary).collect()
    }

    /// The same rows reordered: row `i` of the result is row
    /// `new_to_old[i]` of `self`. Used to store attributes in node order.
    #[expect(
        clippy::indexing_slicing,
        reason = "every index was checked against the row count above"
    )]
    pub fn permuted(&self, new_to_old: &[u32]) -> Result<AttributeColumns> {
        if new_to_old.len() != self.rows {
            return Err(FormatError::InvalidArgument(format!(
                "a permutation of {} rows for {} attribute rows",
                new_to_old.len(),
                self.rows
            )));
        }
        if let Some(&bad) = new_to_old.iter().find(|&&o| o as usize >= self.rows) {
            return Err(FormatError::InvalidArgument(format!(
                "permutation names row {bad} of {}",
                self.rows
            )));
        }
        let pick = |i: &u32| *i as usize;
        let columns = self
            .columns
            .iter()
            .map(|c| Column {
                values: match &c.values {
                    ColumnValues::Int64(v) => {
                        ColumnValues::Int64(new_to_old.iter().map(|i| v[pick(i)]).collect())
                    }
                    ColumnValues::Float64(v) => {
                        ColumnValues::Float64(new_to_old.iter().map(|i| v[pick(i)]).collect())
                    }
                    ColumnValues::Bool(v) => {
                        ColumnValues::Bool(new_to_old.iter().map(|i| v[pick(i)]).collect())
                    }
                    ColumnValues::Timestamp(v) => {
                        ColumnValues::Timestamp(new_to_old.iter().map(|i| v[pick(i)]).collect())
                    }
                    ColumnValues::Text { dictionary, codes } => ColumnValues::Text {
                        dictionary: dictionary.clone(),
                        codes: new_to_old.iter().map(|i| codes[pick(i)]).collect(),
                    },
                },
                present: c
                    .present
                    .as_ref()
                    .map(|p| new_to_old.iter().map(|i| p[pick(i)]).collect()),
            })
            .collect();
        Ok(AttributeColumns {
            schema: self.schema.clone(),
            columns,
            lookup: self.lookup.clone(),
            rows: self.rows,
        })
    }
}

#[expect(
    clippy::indexing_slicing,
    reason = "codes index the dictionary they were assigned from"
)]
fn sorted_dictionary(c: &Column) -> Column {
    let ColumnValues::Text { dictionary, codes } = &c.values else {
        return c.clone();
    };
    let mut order: Vec<u32> = (0..dictionary.len() as u32).collect();
    order.sort_unstable_by(|&a, &b| dictionary[a as usize].cmp(&dictionary[b as usize]));
    let mut rank = vec![0u32; dictionary.len()];
    for (new, &old) in order.iter().enumerate() {
        rank[old as usize] = new as u32;
    }
    Column {
        values: ColumnValues::Text {
            dictionary: order
                .iter()
                .map(|&o| dictionary[o as usize].clone())
                .collect(),
            codes: codes
                .iter()
                .map(|&c| rank.get(c as usize).copied().unwrap_or(0))
                .collect(),
        },
        present: c.present.clone(),
    }
}

fn check_value(c: &ColumnSchema, v: &Value) -> std::result::Result<(), String> {
    match v {
        Value::Null if c.nullable => Ok(()),
        Value::Null => Err("NULL in a column declared NOT NULL".into()),
        Value::Float64(x) if x.is_nan() => Err("NaN is not a value".into()),
        Value::Int64(_) if c.ty == ColumnType::Float64 => Ok(()),
        Value::Text(s) if s.len() > u32::MAX as usize / 2 => Err("text too long".into()),
        v if v.column_type() == Some(c.ty) => Ok(()),
        v => Err(format!(
            "got {} value {v}",
            v.column_type().map_or("untyped", |t| t.name())
        )),
    }
}
