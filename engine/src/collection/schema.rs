//! A collection's schema: the primary key, the vector column and the scalar
//! attribute columns that filters use. Stored in the manifest.

use omen_format::collection::SchemaRecord;
use omen_format::{ColumnSchema, ElementType, Metric, Value};

use crate::{EngineError, Result};

/// What every row of a collection has.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Schema {
    /// Name of the primary key column; its values are u64 (map a user key
    /// to one before inserting, e.g. with a hash or a counter).
    pub primary_key: String,
    /// Vector dimension.
    pub dimension: usize,
    /// Element type of the stored vectors: f32, f16, u8 or i8. Rows are
    /// always given as f32; a narrower type checks them (SPEC.md §8.5).
    pub element_type: ElementType,
    pub metric: Metric,
    /// Scalar attribute columns, in the order rows give their values.
    pub columns: Vec<ColumnSchema>,
}

impl Schema {
    /// A schema with f32 vectors and no attribute columns.
    pub fn new(dimension: usize, metric: Metric) -> Self {
        Schema {
            primary_key: "id".into(),
            dimension,
            element_type: ElementType::F32,
            metric,
            columns: Vec::new(),
        }
    }

    /// Adds an attribute column.
    pub fn with_column(mut self, column: ColumnSchema) -> Self {
        self.columns.push(column);
        self
    }

    /// Checks that the schema can be stored and served.
    pub fn validate(&self) -> Result<()> {
        let bad = |m: String| Err(EngineError::InvalidArgument(m));
        if self.dimension == 0 || u32::try_from(self.dimension).is_err() {
            return bad(format!("dimension {} is not in 1..2^32", self.dimension));
        }
        let mut names = vec![self.primary_key.as_str()];
        for c in &self.columns {
            if names.contains(&c.name.as_str()) {
                return bad(format!("column name '{}' is used twice", c.name));
            }
            names.push(&c.name);
        }
        if names.iter().any(|n| n.is_empty() || n.len() > 255) {
            return bad("column names must have 1..=255 bytes".into());
        }
        if self.columns.len() > 1024 {
            return bad(format!("{} columns; at most 1024", self.columns.len()));
        }
        Ok(())
    }

    /// Checks one row's vector and attribute values.
    pub fn check_row(&self, id: u64, vector: &[f32], values: &[Value]) -> Result<()> {
        if vector.len() != self.dimension {
            return Err(EngineError::InvalidArgument(format!(
                "row {id}: vector has {} dimensions, the collection has {}",
                vector.len(),
                self.dimension
            )));
        }
        if let Some(i) = vector.iter().position(|x| !x.is_finite()) {
            return Err(EngineError::InvalidArgument(format!(
                "row {id}: vector component {i} is {}; vectors must be finite",
                vector[i]
            )));
        }
        for (i, &x) in vector.iter().enumerate() {
            if let Err(why) = super::element::stored_value(self.element_type, x) {
                return Err(EngineError::InvalidArgument(format!(
                    "row {id}: vector column, component {i}: {why}"
                )));
            }
        }
        if values.len() != self.columns.len() {
            return Err(EngineError::InvalidArgument(format!(
                "row {id}: {} attribute values for {} columns",
                values.len(),
                self.columns.len()
            )));
        }
        for (v, c) in values.iter().zip(&self.columns) {
            match v.column_type() {
                None if !c.nullable => {
                    return Err(EngineError::InvalidArgument(format!(
                        "row {id}: column '{}' is not nullable",
                        c.name
                    )));
                }
                Some(t) if t != c.ty => {
                    return Err(EngineError::InvalidArgument(format!(
                        "row {id}: column '{}' is {}, the value {v} is {t}",
                        c.name, c.ty
                    )));
                }
                _ => {}
            }
            if let Value::Float64(x) = v
                && !x.is_finite()
            {
                return Err(EngineError::InvalidArgument(format!(
                    "row {id}: column '{}' holds {x}; floats must be finite",
                    c.name
                )));
            }
        }
        Ok(())
    }

    pub(crate) fn to_record(&self) -> SchemaRecord {
        SchemaRecord {
            dimension: self.dimension as u32,
            element_type: self.element_type,
            metric: self.metric,
            primary_key: self.primary_key.clone(),
            columns: self.columns.clone(),
        }
    }

    pub(crate) fn from_record(r: &SchemaRecord) -> Self {
        Schema {
            primary_key: r.primary_key.clone(),
            dimension: r.dimension as usize,
            element_type: r.element_type,
            metric: r.metric,
            columns: r.columns.clone(),
        }
    }
}
