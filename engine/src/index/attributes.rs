//! A segment's attribute columns: the head (schema and statistics) always
//! in RAM, column values in RAM while they fit
//! [`SegmentOptions::attribute_budget`](super::SegmentOptions), the rest
//! read from the segment (pages verified) by each query that needs them.

use std::fs::File;
use std::sync::Arc;

use omen_format::attr::ColumnSchema;
use omen_format::segment::SegmentFile;
use omen_format::segment::attributes::{AttributeHead, Column, ColumnStats};

use crate::Result;

#[derive(Debug)]
pub(crate) struct SegmentAttributes {
    head: AttributeHead,
    /// The head's schema and statistics, gathered once: every filtered
    /// query plans against them.
    schema: Vec<ColumnSchema>,
    stats: Vec<ColumnStats>,
    /// Columns held in RAM, by column index.
    resident: Vec<Option<Arc<Column>>>,
    file: SegmentFile<File>,
    resident_bytes: usize,
}

impl SegmentAttributes {
    /// Reads the head, then loads columns in schema order while their
    /// decoded size fits `budget` bytes.
    pub(crate) fn open(file: SegmentFile<File>, budget: usize) -> Result<Option<Self>> {
        let Some(head) = file.attributes()? else {
            return Ok(None);
        };
        let mut resident = Vec::with_capacity(head.columns.len());
        let mut used = 0usize;
        for (i, meta) in head.columns.iter().enumerate() {
            let size = meta.logical_len as usize;
            if used.saturating_add(size) <= budget {
                let column = file.read_attribute_column(&head, i)?;
                used += column.heap_bytes();
                resident.push(Some(Arc::new(column)));
            } else {
                resident.push(None);
            }
        }
        Ok(Some(SegmentAttributes {
            schema: head.schema(),
            stats: head.columns.iter().map(|c| c.stats.clone()).collect(),
            head,
            resident,
            file,
            resident_bytes: used,
        }))
    }

    pub(crate) fn schema(&self) -> &[ColumnSchema] {
        &self.schema
    }

    pub(crate) fn stats(&self) -> &[ColumnStats] {
        &self.stats
    }

    pub(crate) fn is_resident(&self, col: usize) -> bool {
        self.resident.get(col).is_some_and(Option::is_some)
    }

    /// The columns `used` (indices), resident or read now; the others
    /// `None`.
    pub(crate) fn columns_for(&self, used: &[usize]) -> Result<Vec<Option<Arc<Column>>>> {
        let mut out = vec![None; self.resident.len()];
        for &col in used {
            out[col] = Some(match &self.resident[col] {
                Some(c) => Arc::clone(c),
                None => Arc::new(self.file.read_attribute_column(&self.head, col)?),
            });
        }
        Ok(out)
    }

    /// Bytes of RAM the resident columns hold.
    pub(crate) fn ram_bytes(&self) -> usize {
        self.resident_bytes
    }
}
