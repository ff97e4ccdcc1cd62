//! What a query sees: the frozen memtables and a pinned set of segments,
//! each with the tombstones that were current when the set was published.
//!
//! A [`Version`] is immutable and shared (`Arc`). Flush and compaction
//! publish a new one; a reader that cloned the old one keeps its segments
//! open and their files on disk until it drops it: a segment's files are
//! deleted only when the last handle to an obsolete segment goes away.

use std::collections::HashSet;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use omen_format::collection::{SegmentRecord, ids_file_name, segment_file_name};

use super::memtable::Memtable;
use crate::index::Segment;

/// A segment's immutable parts: the open index and its primary keys.
#[derive(Debug)]
pub(crate) struct SegmentFiles {
    pub(crate) dir: PathBuf,
    pub(crate) id: u64,
    pub(crate) segment: Segment,
    /// The ids of its rows, ascending.
    pub(crate) ids: Vec<u64>,
    /// Set once a manifest without this segment is durable: the files go
    /// when the last reader lets go.
    pub(crate) obsolete: AtomicBool,
    /// Id to row, for point lookups; built on the first one.
    pub(crate) rows: super::lookup::RowIndex,
}

impl SegmentFiles {
    pub(crate) fn contains(&self, id: u64) -> bool {
        self.ids.binary_search(&id).is_ok()
    }

    /// Every attribute column of the segment (read now if not resident);
    /// empty when the collection has none.
    pub(crate) fn attribute_columns(
        &self,
        ncols: usize,
    ) -> crate::Result<Vec<Option<Arc<omen_format::segment::attributes::Column>>>> {
        if ncols == 0 {
            return Ok(Vec::new());
        }
        match self.segment.attributes() {
            Some(a) => a.columns_for(&(0..ncols).collect::<Vec<_>>()),
            None => Ok(vec![None; ncols]),
        }
    }

    pub(crate) fn retire(&self) {
        self.obsolete.store(true, Ordering::Release);
    }
}

impl Drop for SegmentFiles {
    fn drop(&mut self) {
        if self.obsolete.load(Ordering::Acquire) {
            // Best effort: an orphan left here is removed at the next open.
            let _ = std::fs::remove_file(self.dir.join(segment_file_name(self.id)));
            let _ = std::fs::remove_file(self.dir.join(ids_file_name(self.id)));
        }
    }
}

/// One live segment as a version sees it.
#[derive(Debug, Clone)]
pub(crate) struct SegmentView {
    pub(crate) files: Arc<SegmentFiles>,
    pub(crate) record: SegmentRecord,
    /// Ids whose rows here are dead.
    pub(crate) tombstones: Arc<HashSet<u64>>,
}

impl SegmentView {
    /// Whether `id` is stored here and not tombstoned.
    pub(crate) fn holds_live(&self, id: u64) -> bool {
        self.files.contains(id) && !self.tombstones.contains(&id)
    }

    pub(crate) fn live_rows(&self) -> u64 {
        self.record.vectors - self.record.tombstones
    }
}

/// An immutable view of everything but the active memtable.
#[derive(Debug, Clone, Default)]
pub(crate) struct Version {
    /// Oldest first; never empty ones.
    pub(crate) segments: Vec<SegmentView>,
    /// Frozen memtables awaiting their flush, oldest first.
    pub(crate) frozen: Vec<Arc<Memtable>>,
}

impl Version {
    /// Whether `id` is live in a segment (memtables are asked separately).
    pub(crate) fn segment_holding(&self, id: u64) -> Option<&SegmentView> {
        self.segments.iter().find(|s| s.holds_live(id))
    }
}

/// Appends row `row`'s values of `columns` (NULL where a column is absent).
pub(crate) fn push_values(
    columns: &[Option<Arc<omen_format::segment::attributes::Column>>],
    row: u32,
    ncols: usize,
    out: &mut Vec<omen_format::Value>,
) {
    for c in 0..ncols {
        out.push(
            columns
                .get(c)
                .and_then(Option::as_ref)
                .map_or(omen_format::Value::Null, |col| col.value(row as usize)),
        );
    }
}
