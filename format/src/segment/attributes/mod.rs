//! The attribute section (kind 8, SPEC.md §2.6): scalar columns stored next
//! to the vectors, in node (row) order, one LZ4 block per column, with the
//! per-column statistics that filtered search estimates selectivity from.
//!
//! The section is paged (every 4 KiB page carries its own checksum), so one
//! column can be read and verified without the others: small columns are
//! loaded at open, large ones when a query needs them. The head (schema,
//! statistics, where each column's block starts) sits in the first pages.
//!
//! [`AttributeColumns`] collects rows in memory with type checks; the
//! writer encodes them ([`SegmentWriter::write_attributes`]) and the reader
//! parses the head ([`SegmentFile::attributes`]) and decodes columns
//! ([`SegmentFile::read_attribute_column`]).
//!
//! [`SegmentWriter::write_attributes`]: super::SegmentWriter::write_attributes
//! [`SegmentFile::attributes`]: super::SegmentFile::attributes
//! [`SegmentFile::read_attribute_column`]: super::SegmentFile::read_attribute_column

mod builder;
mod codec;
pub mod fuzzing;
mod stats;

pub use builder::AttributeColumns;
pub use codec::{CodecError, decode_column, encode_section, head_len, parse_head};
pub use stats::{ColumnStats, Histogram};

use crate::attr::{ColumnSchema, ColumnType, Value};

/// First bytes of the section's head.
pub const ATTR_MAGIC: [u8; 8] = *b"OMENATTR";
/// The head layout version this build writes and reads.
pub const ATTR_VERSION: u32 = 1;
/// Bytes of the fixed part of the head.
pub const ATTR_FIXED_HEAD: usize = 32;
/// Most columns one segment may hold.
pub const MAX_COLUMNS: usize = 1024;
/// Longest column name, in bytes of UTF-8.
pub const MAX_NAME_LEN: usize = 255;
/// Most values in a column's most-common-values list.
pub const MOST_COMMON: usize = 16;
/// Most buckets of a numeric column's equi-depth histogram.
pub const HISTOGRAM_BUCKETS: usize = 64;

/// The values of one column, one per row. NULL rows hold an arbitrary
/// value (zero, `false`, dictionary code 0); [`Column::is_null`] says which.
#[derive(Debug, Clone, PartialEq)]
pub enum ColumnValues {
    Int64(Vec<i64>),
    Float64(Vec<f64>),
    Bool(Vec<bool>),
    /// Dictionary-encoded text: `dictionary` is sorted ascending (byte
    /// order) without duplicates, and each row holds an index into it, so
    /// `=`, `IN` and ranges compare integers.
    Text {
        dictionary: Vec<String>,
        codes: Vec<u32>,
    },
    /// Microseconds since the Unix epoch.
    Timestamp(Vec<i64>),
}

impl ColumnValues {
    /// The column's type.
    pub fn column_type(&self) -> ColumnType {
        match self {
            ColumnValues::Int64(_) => ColumnType::Int64,
            ColumnValues::Float64(_) => ColumnType::Float64,
            ColumnValues::Bool(_) => ColumnType::Bool,
            ColumnValues::Text { .. } => ColumnType::Text,
            ColumnValues::Timestamp(_) => ColumnType::Timestamp,
        }
    }

    /// Rows held.
    pub fn len(&self) -> usize {
        match self {
            ColumnValues::Int64(v) | ColumnValues::Timestamp(v) => v.len(),
            ColumnValues::Float64(v) => v.len(),
            ColumnValues::Bool(v) => v.len(),
            ColumnValues::Text { codes, .. } => codes.len(),
        }
    }

    /// Whether no rows are held.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// One decoded column.
#[derive(Debug, Clone, PartialEq)]
pub struct Column {
    pub values: ColumnValues,
    /// `Some(present)` when the column has NULLs: `present[row]` is false
    /// for NULL rows. `None` when no row is NULL.
    pub present: Option<Vec<bool>>,
}

impl Column {
    /// Rows held.
    pub fn len(&self) -> usize {
        self.values.len()
    }

    /// Whether no rows are held.
    pub fn is_empty(&self) -> bool {
        self.values.is_empty()
    }

    /// Whether `row` is NULL.
    pub fn is_null(&self, row: usize) -> bool {
        self.present
            .as_ref()
            .is_some_and(|p| !p.get(row).copied().unwrap_or(false))
    }

    /// The value of `row` (NULL past the end).
    pub fn value(&self, row: usize) -> Value {
        if self.is_null(row) {
            return Value::Null;
        }
        let v = match &self.values {
            ColumnValues::Int64(v) => v.get(row).map(|&x| Value::Int64(x)),
            ColumnValues::Float64(v) => v.get(row).map(|&x| Value::Float64(x)),
            ColumnValues::Bool(v) => v.get(row).map(|&x| Value::Bool(x)),
            ColumnValues::Timestamp(v) => v.get(row).map(|&x| Value::Timestamp(x)),
            ColumnValues::Text { dictionary, codes } => codes
                .get(row)
                .and_then(|&c| dictionary.get(c as usize))
                .map(|s| Value::Text(s.clone())),
        };
        v.unwrap_or(Value::Null)
    }

    /// Bytes of RAM the column holds.
    pub fn heap_bytes(&self) -> usize {
        let values = match &self.values {
            ColumnValues::Int64(v) | ColumnValues::Timestamp(v) => v.len() * 8,
            ColumnValues::Float64(v) => v.len() * 8,
            ColumnValues::Bool(v) => v.len(),
            ColumnValues::Text { dictionary, codes } => {
                codes.len() * 4 + dictionary.iter().map(|s| s.len() + 24).sum::<usize>()
            }
        };
        values + self.present.as_ref().map_or(0, Vec::len)
    }
}

/// What the head says about one column.
#[derive(Debug, Clone, PartialEq)]
pub struct ColumnMeta {
    pub schema: ColumnSchema,
    pub stats: ColumnStats,
    /// First page of the column's block, counted from the section start.
    pub first_page: u64,
    /// Bytes of the LZ4 block.
    pub stored_len: u64,
    /// Bytes the block decodes to.
    pub logical_len: u64,
}

impl ColumnMeta {
    /// Pages the block occupies.
    pub fn pages(&self) -> u64 {
        self.stored_len
            .div_ceil(super::layout::PAGE_PAYLOAD as u64)
            .max(1)
    }
}

/// The parsed head of an attribute section.
#[derive(Debug, Clone, PartialEq)]
pub struct AttributeHead {
    pub rows: u64,
    /// Pages the head itself occupies.
    pub head_pages: u64,
    pub columns: Vec<ColumnMeta>,
}

impl AttributeHead {
    /// The column named `name`.
    pub fn column(&self, name: &str) -> Option<(usize, &ColumnMeta)> {
        self.columns
            .iter()
            .enumerate()
            .find(|(_, c)| c.schema.name == name)
    }

    /// The schema, in column order.
    pub fn schema(&self) -> Vec<ColumnSchema> {
        self.columns.iter().map(|c| c.schema.clone()).collect()
    }
}
