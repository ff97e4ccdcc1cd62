//! The memtable: the newest writes, in RAM, searchable the moment they are
//! applied (an exact SIMD scan; no graph to wait for).
//!
//! Rows are appended; an upsert of an id already here marks its old row
//! dead. `index` maps every id this memtable has seen to its newest state:
//! a row, or a deletion that must hide older versions in frozen memtables
//! and segments.

use std::collections::HashMap;

use omen_format::collection::RowBatch;
use omen_format::{Metric, Value};

use crate::distance::Kernels;
use crate::index::Hit;

/// An id's newest state in one memtable.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Slot {
    Row(u32),
    Deleted,
}

/// Recent writes. Frozen memtables are shared read-only (`Arc`).
#[derive(Debug)]
pub(crate) struct Memtable {
    dim: usize,
    columns: usize,
    ids: Vec<u64>,
    vectors: Vec<f32>,
    values: Vec<Value>,
    live: Vec<bool>,
    live_rows: usize,
    index: HashMap<u64, Slot>,
    /// WAL files holding this memtable's records.
    pub(crate) first_wal: u64,
    pub(crate) last_wal: u64,
    /// Highest sequence number applied.
    pub(crate) max_lsn: u64,
}

impl Memtable {
    pub(crate) fn new(dim: usize, columns: usize, wal: u64) -> Self {
        Memtable {
            dim,
            columns,
            ids: Vec::new(),
            vectors: Vec::new(),
            values: Vec::new(),
            live: Vec::new(),
            live_rows: 0,
            index: HashMap::new(),
            first_wal: wal,
            last_wal: wal,
            max_lsn: 0,
        }
    }

    /// Applies an upsert batch (already validated and logged).
    pub(crate) fn upsert(&mut self, batch: &RowBatch, lsn: u64) {
        for i in 0..batch.len() {
            let id = batch.ids[i];
            let row = self.ids.len() as u32;
            self.ids.push(id);
            self.vectors.extend_from_slice(batch.vector(i));
            self.values.extend_from_slice(batch.row_values(i));
            self.live.push(true);
            self.live_rows += 1;
            if let Some(Slot::Row(old)) = self.index.insert(id, Slot::Row(row)) {
                self.live[old as usize] = false;
                self.live_rows -= 1;
            }
        }
        self.max_lsn = self.max_lsn.max(lsn);
    }

    /// Applies a delete batch (already logged).
    pub(crate) fn delete(&mut self, ids: &[u64], lsn: u64) {
        for &id in ids {
            if let Some(Slot::Row(old)) = self.index.insert(id, Slot::Deleted) {
                self.live[old as usize] = false;
                self.live_rows -= 1;
            }
        }
        self.max_lsn = self.max_lsn.max(lsn);
    }

    /// The newest state of `id` here, if this memtable has seen it.
    pub(crate) fn get(&self, id: u64) -> Option<Slot> {
        self.index.get(&id).copied()
    }

    /// Row `r`'s vector and attribute values (a row [`Memtable::get`]
    /// returned).
    pub(crate) fn row(&self, r: u32) -> (&[f32], &[Value]) {
        let r = r as usize;
        (
            &self.vectors[r * self.dim..(r + 1) * self.dim],
            &self.values[r * self.columns..(r + 1) * self.columns],
        )
    }

    /// Rows appended (live or not): what the size limit counts.
    pub(crate) fn appended_rows(&self) -> usize {
        self.ids.len()
    }

    pub(crate) fn live_rows(&self) -> usize {
        self.live_rows
    }

    /// Ids this memtable writes or deletes: each hides older versions.
    pub(crate) fn touched_ids(&self) -> impl Iterator<Item = u64> + '_ {
        self.index.keys().copied()
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.index.is_empty()
    }

    /// The live rows, sorted by id: `(ids, vectors, values)`.
    pub(crate) fn live_sorted(&self) -> (Vec<u64>, Vec<f32>, Vec<Value>) {
        let mut rows: Vec<(u64, usize)> = (0..self.ids.len())
            .filter(|&r| self.live[r])
            .map(|r| (self.ids[r], r))
            .collect();
        rows.sort_unstable();
        let mut ids = Vec::with_capacity(rows.len());
        let mut vectors = Vec::with_capacity(rows.len() * self.dim);
        let mut values = Vec::with_capacity(rows.len() * self.columns);
        for (id, r) in rows {
            ids.push(id);
            vectors.extend_from_slice(&self.vectors[r * self.dim..(r + 1) * self.dim]);
            values.extend_from_slice(&self.values[r * self.columns..(r + 1) * self.columns]);
        }
        (ids, vectors, values)
    }

    /// Exact scan: adds to `top` the live rows that `visible` accepts,
    /// keeping the `k` closest.
    pub(crate) fn scan(
        &self,
        query: &[f32],
        metric: Metric,
        k: usize,
        visible: &dyn Fn(u64) -> bool,
        matches: Option<RowPredicate<'_>>,
        top: &mut TopK,
    ) {
        let kernels = Kernels::<f32>::best();
        for (r, v) in self.vectors.chunks_exact(self.dim).enumerate() {
            if !self.live[r] {
                continue;
            }
            let d = kernels.distance(metric, query, v);
            let values = || &self.values[r * self.columns..(r + 1) * self.columns];
            if top.would_take(d, k) && visible(self.ids[r]) && matches.is_none_or(|m| m(values())) {
                top.push(
                    Hit {
                        id: self.ids[r],
                        distance: d,
                    },
                    k,
                );
            }
        }
    }
}

/// A test of one row's attribute values (a compiled `WHERE`).
pub(crate) type RowPredicate<'a> = &'a dyn Fn(&[Value]) -> bool;

/// The `k` best hits seen so far.
#[derive(Debug, Default)]
pub(crate) struct TopK {
    hits: Vec<Hit>,
}

impl TopK {
    fn worst(&self) -> f32 {
        self.hits.last().map_or(f32::INFINITY, |h| h.distance)
    }

    pub(crate) fn would_take(&self, distance: f32, k: usize) -> bool {
        self.hits.len() < k || distance < self.worst()
    }

    pub(crate) fn push(&mut self, hit: Hit, k: usize) {
        if !self.would_take(hit.distance, k) {
            return;
        }
        let at = self
            .hits
            .partition_point(|h| h.distance.total_cmp(&hit.distance).is_le());
        self.hits.insert(at, hit);
        self.hits.truncate(k);
    }

    pub(crate) fn into_hits(self) -> Vec<Hit> {
        self.hits
    }
}
