//! Point lookups by primary key ([`Collection::get`]): what SQL's
//! `WHERE id = …` reads instead of scanning the whole collection.
//!
//! An id's newest state is in the newest place that has seen it: the active
//! memtable, then the frozen ones newest first (a row, or a deletion that
//! hides every older version), then the segments newest first, skipping
//! tombstoned rows. A segment stores its rows in graph order, so finding an
//! id's row needs a map; each segment builds one (`u32` per row, indexed
//! like its sorted id list) by one sequential scan the first time it is
//! asked, and keeps it for its lifetime (segments are immutable).

use std::sync::{Arc, Mutex};

use omen_format::{FormatError, Value};

use super::memtable::Slot;
use super::snapshot::{SegmentFiles, push_values};
use super::{Collection, Inner, lock};
use crate::Result;

/// One live row, as [`Collection::get`] returns it.
#[derive(Debug, Clone, PartialEq)]
pub struct StoredRow {
    pub id: u64,
    pub vector: Vec<f32>,
    /// Attribute values in schema order.
    pub values: Vec<Value>,
}

/// A segment's row numbers in the order of its sorted id list, built on
/// the first lookup.
#[derive(Debug, Default)]
pub(crate) struct RowIndex(Mutex<Option<Arc<Vec<u32>>>>);

impl SegmentFiles {
    /// The row that stores `id` (live or not), if this segment has it.
    fn row_of(&self, id: u64) -> Result<Option<u32>> {
        let Ok(at) = self.ids.binary_search(&id) else {
            return Ok(None);
        };
        let rows = {
            let mut slot = lock(&self.rows.0);
            match slot.as_ref() {
                Some(rows) => rows.clone(),
                None => {
                    let rows = Arc::new(self.build_row_index()?);
                    *slot = Some(rows.clone());
                    rows
                }
            }
        };
        Ok(rows.get(at).copied())
    }

    /// One sequential scan: row number of every id, by the id's position
    /// in `ids`. Fails if the segment and its id list disagree.
    fn build_row_index(&self) -> Result<Vec<u32>> {
        let mut rows = vec![u32::MAX; self.ids.len()];
        let path = self.segment.path().to_path_buf();
        self.segment.scan_rows(|row, id, _| {
            match self.ids.binary_search(&id) {
                Ok(at) => rows[at] = row,
                Err(_) => {
                    return Err(FormatError::Corrupt {
                        path: path.clone(),
                        what: "segment rows".into(),
                        offset: 0,
                        reason: format!(
                            "row {row} holds id {id}, which the segment's id list lacks"
                        ),
                    }
                    .into());
                }
            }
            Ok(())
        })?;
        if let Some(at) = rows.iter().position(|&r| r == u32::MAX) {
            return Err(FormatError::Corrupt {
                path,
                what: "segment rows".into(),
                offset: 0,
                reason: format!("id {} of the id list is in no row", self.ids[at]),
            }
            .into());
        }
        Ok(rows)
    }
}

impl Collection {
    /// The live rows with these ids, in the order of `ids`; ids that are
    /// not live (never written, or deleted) are left out, and a repeated
    /// id is returned once per mention. One consistent snapshot; costs a
    /// hash probe per memtable, a binary search per segment and one random
    /// read per row found in a segment (after that segment's first lookup,
    /// which builds its row map with one sequential scan).
    pub fn get(&self, ids: &[u64]) -> Result<Vec<StoredRow>> {
        self.inner.get(ids)
    }
}

impl Inner {
    fn get(&self, ids: &[u64]) -> Result<Vec<StoredRow>> {
        let dim = self.schema.dimension;
        let ncols = self.schema.columns.len();
        // Lock order: active, then version (as search takes them).
        let active = self.active.read().unwrap_or_else(|p| p.into_inner());
        let version = Arc::clone(&self.version.read().unwrap_or_else(|p| p.into_inner()));
        let memtables: Vec<&super::memtable::Memtable> = std::iter::once(&*active)
            .chain(version.frozen.iter().rev().map(|m| &**m))
            .collect();
        let mut out = Vec::with_capacity(ids.len());
        'ids: for &id in ids {
            for m in &memtables {
                match m.get(id) {
                    Some(Slot::Row(r)) => {
                        let (vector, values) = m.row(r);
                        out.push(StoredRow {
                            id,
                            vector: vector.to_vec(),
                            values: values.to_vec(),
                        });
                        continue 'ids;
                    }
                    Some(Slot::Deleted) => continue 'ids,
                    None => {}
                }
            }
            for seg in version.segments.iter().rev() {
                if !seg.holds_live(id) {
                    continue;
                }
                let Some(row) = seg.files.row_of(id)? else {
                    continue;
                };
                let (stored, vector) = seg.files.segment.read_row(row)?;
                debug_assert_eq!(stored, id);
                let mut values = Vec::with_capacity(ncols);
                let columns = seg.files.attribute_columns(ncols)?;
                push_values(&columns, row, ncols, &mut values);
                debug_assert_eq!(vector.len(), dim);
                out.push(StoredRow { id, vector, values });
                continue 'ids;
            }
        }
        Ok(out)
    }
}
