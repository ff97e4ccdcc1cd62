//! Flush: a frozen memtable becomes a segment, built in the background in
//! the format `omen-build` writes, plus tombstones for the rows it hides in
//! older segments; one atomic manifest swap publishes both, and only then
//! are the memtable's WAL files deleted.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use omen_format::collection::{
    IdSetKind, MANIFEST_FILE, SegmentRecord, ids_file_name, segment_file_name, tombstone_file_name,
    wal_file_name, write_id_set,
};

use omen_format::segment::attributes::AttributeColumns;

use super::element::build_typed;
use super::memtable::Memtable;
use super::snapshot::{SegmentFiles, SegmentView, Version};
use super::{Durability, Inner, failpoint, lock};
use crate::index::{MemoryRows, Segment};
use crate::quant::QuantizerKind;

/// The code of a flushed (flat) segment: 1-bit RaBitQ with 16 residual
/// centroids. A flush must train and encode in about a second per 100,000
/// rows so that it keeps up with the WAL: the 2-bit grid search made
/// encoding 4× slower (benches/RESULTS.md, "Collections: flat flushes"),
/// and the flat scan reranks `4 · ef` candidates with full vectors, with the
/// early stop off for 1-bit codes. Compaction re-encodes with the
/// collection's build options (2-bit, 256 centroids by default).
pub(crate) const FLUSH_CODE: QuantizerKind = QuantizerKind::RaBitQ {
    bits: 1,
    centroids: 16,
};

/// Rows the flush's quantizer trains on (evenly spaced over the memtable).
pub(crate) const FLUSH_TRAINING_ROWS: usize = 16_384;

/// What a new segment is built as.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum SegmentShape {
    /// A flat index (SPEC.md §8.6): what a flush writes, in seconds.
    Flat,
    /// A graph index as `omen-build` writes it: what compaction writes.
    Graph,
}
use crate::{EngineError, Result};

impl Inner {
    /// The flusher thread: flushes frozen memtables oldest first; in the
    /// interval durability mode it also fsyncs the WAL on time.
    pub(crate) fn flush_loop(&self) {
        let tick = match self.options.durability {
            Durability::Interval(every) => every,
            Durability::PerCommit => Duration::from_millis(200),
        };
        loop {
            {
                let mut bg = lock(&self.background);
                loop {
                    let pending = !self
                        .version
                        .read()
                        .unwrap_or_else(|p| p.into_inner())
                        .frozen
                        .is_empty();
                    if bg.error.is_some() || bg.shutdown && !pending {
                        return;
                    }
                    if pending {
                        break;
                    }
                    let (guard, timeout) = self
                        .work_cv
                        .wait_timeout(bg, tick)
                        .unwrap_or_else(|p| p.into_inner());
                    bg = guard;
                    if timeout.timed_out()
                        && matches!(self.options.durability, Durability::Interval(_))
                    {
                        drop(bg);
                        if let Err(e) = self.sync_wal() {
                            self.fail(format!("WAL fsync failed: {e}"));
                            return;
                        }
                        bg = lock(&self.background);
                    }
                }
                if bg.shutdown {
                    // Closing: the frozen memtables stay in the WAL.
                    return;
                }
            }
            if let Err(e) = self.flush_oldest() {
                self.fail(format!("flush failed: {e}"));
                return;
            }
        }
    }

    /// Records a background failure and wakes everyone who waits on one.
    pub(crate) fn fail(&self, message: String) {
        tracing::error!(dir = %self.dir.display(), "{message}");
        lock(&self.background).error.get_or_insert(message);
        self.stall_cv.notify_all();
        self.work_cv.notify_all();
    }

    /// Waits until no frozen memtable is left.
    pub(crate) fn wait_for_flushes(&self) -> Result<()> {
        let mut bg = lock(&self.background);
        loop {
            if let Some(e) = &bg.error {
                return Err(EngineError::Unavailable(format!("flush failed: {e}")));
            }
            if self
                .version
                .read()
                .unwrap_or_else(|p| p.into_inner())
                .frozen
                .is_empty()
            {
                return Ok(());
            }
            bg = self
                .stall_cv
                .wait_timeout(bg, Duration::from_millis(50))
                .unwrap_or_else(|p| p.into_inner())
                .0;
        }
    }

    /// Flushes the oldest frozen memtable.
    fn flush_oldest(&self) -> Result<()> {
        let Some(memtable) = self
            .version
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .frozen
            .first()
            .cloned()
        else {
            return Ok(());
        };
        let built = self.build_from_memtable(&memtable)?;
        failpoint("flush-built");

        let mut manifest = lock(&self.manifest);
        let version = Arc::clone(&self.version.read().unwrap_or_else(|p| p.into_inner()));
        let mut next = manifest.clone();
        next.generation += 1;
        let (mut segments, retired_tombs) =
            self.with_tombstones(&version, memtable.touched_ids(), next.generation)?;
        if let Some(view) = built {
            segments.push(view);
        }
        next.segments = segments.iter().map(|s| s.record).collect();
        next.flushed_lsn = next.flushed_lsn.max(memtable.max_lsn + 1);
        next.wal_checkpoint = next.wal_checkpoint.max(memtable.last_wal + 1);
        next.next_segment_id = self.next_segment_id.load(Ordering::Acquire);
        failpoint("manifest-swap");
        next.write(&self.dir.join(MANIFEST_FILE))?;
        failpoint("manifest-swapped");
        *manifest = next;
        {
            let mut current = self.version.write().unwrap_or_else(|p| p.into_inner());
            let mut v = (**current).clone();
            v.segments = segments;
            if v.frozen.first().is_some_and(|m| Arc::ptr_eq(m, &memtable)) {
                v.frozen.remove(0);
            }
            *current = Arc::new(v);
        }
        drop(manifest);
        // The manifest no longer needs them.
        for n in memtable.first_wal..=memtable.last_wal {
            remove_quietly(&self.dir.join(wal_file_name(n)));
        }
        for name in retired_tombs {
            remove_quietly(&self.dir.join(name));
        }
        lock(&self.background).flushes += 1;
        self.stall_cv.notify_all();
        self.work_cv.notify_all();
        Ok(())
    }

    /// Builds the segment of `memtable`'s live rows, if it has any.
    fn build_from_memtable(&self, memtable: &Memtable) -> Result<Option<SegmentView>> {
        let (ids, vectors, values) = memtable.live_sorted();
        if ids.is_empty() {
            return Ok(None);
        }
        let id = self.next_segment_id.fetch_add(1, Ordering::AcqRel);
        let label = format!(
            "flush of WAL files {}..={}",
            memtable.first_wal, memtable.last_wal
        );
        let rows = MemoryRows {
            dim: self.schema.dimension,
            vectors: &vectors,
            ids: &ids,
            label: &label,
        };
        let attributes = self.attribute_columns(values.chunks(self.schema.columns.len().max(1)))?;
        let files = self.write_segment(id, &rows, &ids, attributes, SegmentShape::Flat)?;
        Ok(Some(SegmentView {
            record: SegmentRecord {
                id,
                vectors: ids.len() as u64,
                tier: 0,
                tombstone_generation: 0,
                tombstones: 0,
                max_lsn: memtable.max_lsn,
            },
            files,
            tombstones: Arc::default(),
        }))
    }

    /// Builds segment `id` from `rows` (whose ids, ascending, are
    /// `sorted_ids`) in the given shape, writes its id list and opens it.
    pub(crate) fn write_segment(
        &self,
        id: u64,
        rows: &dyn crate::index::BuildRows<f32>,
        sorted_ids: &[u64],
        attributes: Option<AttributeColumns>,
        shape: SegmentShape,
    ) -> Result<Arc<SegmentFiles>> {
        let path = self.dir.join(segment_file_name(id));
        let attributes = attributes.map(Arc::new);
        let metric = self.schema.metric;
        let element_type = self.schema.element_type;
        match shape {
            SegmentShape::Flat => {
                let options = crate::index::BuildOptions {
                    code: FLUSH_CODE,
                    training_sample: FLUSH_TRAINING_ROWS,
                    attributes,
                    ..self.options.build.clone()
                };
                build_typed(element_type, true, rows, metric, &path, &options)?;
            }
            SegmentShape::Graph => {
                let options = crate::index::BuildOptions {
                    temp_dir: Some(self.dir.clone()),
                    attributes,
                    ..self.options.build.clone()
                };
                build_typed(element_type, false, rows, metric, &path, &options)?;
            }
        }
        write_id_set(
            &self.dir.join(ids_file_name(id)),
            IdSetKind::SegmentIds,
            sorted_ids,
        )?;
        let segment = Segment::open(&path, &self.options.segment)?;
        Ok(Arc::new(SegmentFiles {
            dir: self.dir.clone(),
            id,
            segment,
            ids: sorted_ids.to_vec(),
            obsolete: AtomicBool::new(false),
            rows: Default::default(),
        }))
    }

    /// The attribute columns of `rows` (each in schema order), or `None`
    /// when the schema has no columns.
    pub(crate) fn attribute_columns<'a>(
        &self,
        rows: impl Iterator<Item = &'a [omen_format::Value]>,
    ) -> Result<Option<AttributeColumns>> {
        if self.schema.columns.is_empty() {
            return Ok(None);
        }
        let mut columns = AttributeColumns::new(self.schema.columns.clone())?;
        for row in rows {
            columns.push_row(row)?;
        }
        Ok(Some(columns))
    }

    /// The segments of `version` with `hidden` ids tombstoned where they
    /// are live, new tombstone generations written as `generation`, and
    /// the names of the generations they replace.
    pub(crate) fn with_tombstones(
        &self,
        version: &Version,
        hidden: impl Iterator<Item = u64>,
        generation: u64,
    ) -> Result<(Vec<SegmentView>, Vec<String>)> {
        let mut added: HashMap<usize, Vec<u64>> = HashMap::new();
        for id in hidden {
            // At most one segment holds an id live.
            if let Some(i) = version.segments.iter().position(|s| s.holds_live(id)) {
                added.entry(i).or_default().push(id);
            }
        }
        let mut segments = version.segments.clone();
        let mut retired = Vec::new();
        for (i, ids) in added {
            let s = &mut segments[i];
            let mut set = (*s.tombstones).clone();
            set.extend(ids);
            let mut sorted: Vec<u64> = set.iter().copied().collect();
            sorted.sort_unstable();
            let name = tombstone_file_name(s.record.id, generation);
            write_id_set(&self.dir.join(&name), IdSetKind::Tombstones, &sorted)?;
            if s.record.tombstone_generation != 0 {
                retired.push(tombstone_file_name(
                    s.record.id,
                    s.record.tombstone_generation,
                ));
            }
            s.record.tombstone_generation = generation;
            s.record.tombstones = sorted.len() as u64;
            s.tombstones = Arc::new(set);
        }
        Ok((segments, retired))
    }
}

/// Deletes a file the manifest no longer names; a leftover is removed at
/// the next open.
pub(crate) fn remove_quietly(path: &std::path::Path) {
    if let Err(e) = std::fs::remove_file(path)
        && e.kind() != std::io::ErrorKind::NotFound
    {
        tracing::warn!(file = %path.display(), "could not delete: {e}");
    }
}
