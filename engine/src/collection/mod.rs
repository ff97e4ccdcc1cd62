//! Writable collections: a directory of segments, a WAL and a manifest,
//! with a searchable memtable, background flush and size-tiered
//! compaction, and crash recovery (SPEC.md §8).
//!
//! Write path: [`Collection::insert`], [`Collection::upsert`] and
//! [`Collection::delete`] join a group commit ([`commit`]): one leader
//! logs every waiting batch with one `write` and (by default) one fsync,
//! applies them to the memtable and acknowledges them. Read path: a query
//! scans the memtables exactly and searches a pinned set of segments
//! ([`snapshot`]), hiding tombstoned and superseded rows, and merges by
//! exact distance. Background threads [`flush`] frozen memtables into
//! segments and [`compaction`] merges them; both publish a new manifest
//! atomically. [`recovery`] rebuilds the state at open.

mod commit;
mod compaction;
mod element;
mod exact;
mod flush;
mod inspect;
mod lookup;
mod memtable;
mod options;
mod recovery;
mod row_filter;
mod schema;
mod snapshot;
mod wal;

use std::collections::HashSet;
use std::fs::File;
use std::path::{Path, PathBuf};
use std::sync::atomic::AtomicU64;
use std::sync::{Arc, Condvar, Mutex, MutexGuard, RwLock};
use std::thread::JoinHandle;

use omen_format::Value;
use omen_format::collection::{Manifest, RowBatch};

pub use inspect::{Inspection, SegmentSummary, WalSummary, inspect};
pub use lookup::StoredRow;
pub use options::{CollectionOptions, Durability};
pub use schema::Schema;

use commit::{CommitQueue, Write};
use memtable::{Memtable, Slot, TopK};
use snapshot::Version;
use wal::WalWriter;

use crate::filter::Filter;
use crate::index::{Hit, SearchParams};
use crate::{EngineError, Result};

/// Locks a mutex, ignoring poisoning: every critical section here leaves
/// its data consistent before anything that can panic.
fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// Receives `(id, vector, attribute values)` of each row a scan visits.
pub type RowVisitor<'a> = dyn FnMut(u64, &[f32], &[Value]) + 'a;

/// What the background threads are told and report.
#[derive(Debug, Default)]
struct Background {
    shutdown: bool,
    /// The first background failure; writes fail with it from then on.
    error: Option<String>,
    compacting: Option<String>,
    flushes: u64,
}

/// The state shared by the API and the background threads.
#[derive(Debug)]
struct Inner {
    dir: PathBuf,
    schema: Schema,
    options: CollectionOptions,
    active: RwLock<Memtable>,
    version: RwLock<Arc<Version>>,
    /// The durable manifest; held while a flush or compaction publishes.
    manifest: Mutex<Manifest>,
    wal: Mutex<WalWriter>,
    queue: Mutex<CommitQueue>,
    queue_cv: Condvar,
    next_lsn: AtomicU64,
    next_segment_id: AtomicU64,
    background: Mutex<Background>,
    /// Wakes the flusher and the compactor.
    work_cv: Condvar,
    /// Wakes writers stalled on the flush or compaction backlog.
    stall_cv: Condvar,
    /// One compaction at a time.
    compaction_lock: Mutex<()>,
    _lock: File,
}

/// Crash-test hook. With `OMEN_FAILPOINT=<name>` (or `<name>:<n>` for the
/// `n`-th time, counting from 1) the process prints `failpoint <name>` on
/// stdout and stops there, so that a test can SIGKILL it at exactly that
/// point. Without the variable this is one cached comparison.
pub(crate) fn failpoint(name: &str) {
    if failpoint_armed(name) {
        failpoint_armed_stop(name);
    }
}

/// Announces the failpoint `name` and stops the calling thread for good.
pub(crate) fn failpoint_armed_stop(name: &str) {
    {
        use std::io::Write as _;
        let mut out = std::io::stdout().lock();
        let _ = writeln!(out, "failpoint {name}");
        let _ = out.flush();
        drop(out);
    }
    loop {
        std::thread::park();
    }
}

/// Whether reaching `name` now should stop the process (counts the hit).
pub(crate) fn failpoint_armed(name: &str) -> bool {
    use std::sync::OnceLock;
    use std::sync::atomic::Ordering;
    static ARMED: OnceLock<Option<(String, u64)>> = OnceLock::new();
    static HITS: AtomicU64 = AtomicU64::new(0);
    let armed = ARMED.get_or_init(|| {
        let spec = std::env::var("OMEN_FAILPOINT").ok()?;
        let (point, nth) = match spec.split_once(':') {
            Some((p, n)) => (p.to_string(), n.parse().ok()?),
            None => (spec, 1),
        };
        Some((point, nth))
    });
    match armed {
        Some((point, nth)) if point == name => HITS.fetch_add(1, Ordering::AcqRel) + 1 == *nth,
        _ => false,
    }
}

/// A writable, searchable collection of vectors with attributes.
#[derive(Debug)]
pub struct Collection {
    inner: Arc<Inner>,
    threads: Vec<JoinHandle<()>>,
}

/// What `omen inspect` shows about a collection.
#[derive(Debug, Clone)]
pub struct CollectionStats {
    pub dir: PathBuf,
    pub schema: Schema,
    pub manifest_generation: u64,
    pub wal_checkpoint: u64,
    pub flushed_lsn: u64,
    pub next_lsn: u64,
    pub compactions: u64,
    /// `(id, tier, rows, tombstones, file bytes)`, oldest first.
    pub segments: Vec<(u64, u32, u64, u64, u64)>,
    pub memtable_rows: usize,
    pub frozen_memtables: usize,
    /// `(file name, bytes)` of the WAL files.
    pub wal_files: Vec<(String, u64)>,
    /// The compaction running now, if any.
    pub compacting: Option<String>,
    /// The compaction the policy would run next, if any.
    pub pending_compaction: Option<String>,
    pub background_error: Option<String>,
}

impl Collection {
    /// Creates an empty collection in `dir` (which must not exist or be
    /// empty) and opens it.
    pub fn create(
        dir: impl AsRef<Path>,
        schema: Schema,
        options: CollectionOptions,
    ) -> Result<Self> {
        recovery::create(dir.as_ref(), &schema)?;
        Self::open(dir, options)
    }

    /// Opens the collection in `dir`: reads the manifest, opens the
    /// segments, removes files no manifest names, and replays the WAL.
    pub fn open(dir: impl AsRef<Path>, options: CollectionOptions) -> Result<Self> {
        let inner = Arc::new(recovery::open(dir.as_ref(), options)?);
        let mut threads = Vec::new();
        let flusher = Arc::clone(&inner);
        threads.push(
            std::thread::Builder::new()
                .name("omen-flush".into())
                .spawn(move || flusher.flush_loop())
                .map_err(EngineError::Io)?,
        );
        if inner.options.auto_compact {
            let compactor = Arc::clone(&inner);
            threads.push(
                std::thread::Builder::new()
                    .name("omen-compact".into())
                    .spawn(move || compactor.compaction_loop())
                    .map_err(EngineError::Io)?,
            );
        }
        Ok(Collection { inner, threads })
    }

    /// The schema.
    pub fn schema(&self) -> &Schema {
        &self.inner.schema
    }

    /// The directory.
    pub fn dir(&self) -> &Path {
        &self.inner.dir
    }

    /// Inserts rows; fails (and writes nothing) if any id is already live.
    /// `values` holds each row's attribute values in schema order, row
    /// after row (empty when the schema has no columns). Returns when the
    /// batch is as durable as the durability mode promises.
    pub fn insert(&self, ids: &[u64], vectors: &[f32], values: &[Value]) -> Result<()> {
        let batch = self.batch(ids, vectors, values)?;
        self.inner.commit(Write::Insert(batch)).map(drop)
    }

    /// Inserts rows, replacing any live rows with the same ids.
    pub fn upsert(&self, ids: &[u64], vectors: &[f32], values: &[Value]) -> Result<()> {
        let batch = self.batch(ids, vectors, values)?;
        self.inner.commit(Write::Upsert(batch)).map(drop)
    }

    /// Deletes rows by id; ids that are not live are ignored.
    pub fn delete(&self, ids: &[u64]) -> Result<()> {
        self.inner.commit(Write::Delete(ids.to_vec())).map(drop)
    }

    fn batch(&self, ids: &[u64], vectors: &[f32], values: &[Value]) -> Result<RowBatch> {
        let schema = &self.inner.schema;
        let dim = schema.dimension;
        let columns = schema.columns.len();
        if vectors.len() != ids.len() * dim || values.len() != ids.len() * columns {
            return Err(EngineError::InvalidArgument(format!(
                "{} ids need {} vector values and {} attribute values; got {} and {}",
                ids.len(),
                ids.len() * dim,
                ids.len() * columns,
                vectors.len(),
                values.len()
            )));
        }
        for (i, &id) in ids.iter().enumerate() {
            schema.check_row(
                id,
                &vectors[i * dim..(i + 1) * dim],
                &values[i * columns..(i + 1) * columns],
            )?;
        }
        let element_type = schema.element_type;
        Ok(RowBatch {
            dim,
            columns,
            element_type,
            ids: ids.to_vec(),
            // f16 rounds here, before the write is logged, so every part of
            // the collection holds the same value (checked above).
            vectors: vectors
                .iter()
                .map(|&x| element::stored_value(element_type, x).unwrap_or(x))
                .collect(),
            values: values.to_vec(),
        })
    }

    /// The `k` nearest live rows to `query`, closest first, with exact
    /// distances, over a consistent snapshot (memtables plus a pinned set
    /// of segments).
    pub fn search(&self, query: &[f32], k: usize, params: &SearchParams) -> Result<Vec<Hit>> {
        self.inner.search(query, k, params, None)
    }

    /// Like [`Collection::search`], among the live rows whose attributes
    /// satisfy `filter` (SQL semantics: NULL comparisons are unknown and do
    /// not match). Memtable rows are tested value by value; segments compile
    /// the filter on their columns and walk until `k` rows pass the filter,
    /// the tombstones and the memtables together.
    pub fn search_filtered(
        &self,
        query: &[f32],
        k: usize,
        filter: &Filter,
        params: &SearchParams,
    ) -> Result<Vec<Hit>> {
        self.inner.search(query, k, params, Some(filter))
    }

    /// Makes every acknowledged write part of a segment: freezes the
    /// memtable and waits for the flushes to finish.
    pub fn flush(&self) -> Result<()> {
        self.inner.commit(Write::Freeze)?;
        self.inner.wait_for_flushes()
    }

    /// Runs compactions until the policy has nothing left to do, in the
    /// calling thread.
    pub fn compact(&self) -> Result<usize> {
        let mut done = 0;
        while self.inner.compact_once()? {
            done += 1;
        }
        Ok(done)
    }

    /// Calls `f(id, vector, values)` for every live row (memtables and
    /// segments; order unspecified). For checks and exports.
    pub fn scan_live(&self, f: &mut RowVisitor<'_>) -> Result<()> {
        self.inner.scan_live(f)
    }

    /// Live rows in the collection. Counts by scanning every row (the
    /// memtables and every segment's node pages), so it costs a full read:
    /// meant for checks and tools, not for a hot path.
    pub fn len(&self) -> usize {
        let mut n = 0;
        let _ = self.inner.scan_live(&mut |_, _, _| n += 1);
        n
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Live rows whose attributes satisfy `filter` (SQL semantics, as in
    /// [`Collection::search_filtered`]). Like [`Collection::len`], a full
    /// scan. Fails, naming the column, on an unknown column or a literal
    /// of the wrong type.
    pub fn count_matching(&self, filter: &Filter) -> Result<u64> {
        let columns = &self.inner.schema.columns;
        crate::filter::check(filter, columns)?;
        let mut n = 0u64;
        self.inner.scan_live(&mut |_, _, values| {
            n += u64::from(row_filter::eval(filter, columns, values) == Some(true));
        })?;
        Ok(n)
    }

    /// The state `omen inspect` prints.
    pub fn stats(&self) -> CollectionStats {
        self.inner.stats()
    }

    /// Stops the background threads (a flush or compaction in progress
    /// finishes first) and makes the WAL durable. Unflushed writes stay in
    /// the WAL and are replayed at the next open.
    pub fn close(mut self) -> Result<()> {
        self.shutdown()
    }

    fn shutdown(&mut self) -> Result<()> {
        lock(&self.inner.background).shutdown = true;
        self.inner.work_cv.notify_all();
        self.inner.stall_cv.notify_all();
        for t in self.threads.drain(..) {
            let _ = t.join();
        }
        lock(&self.inner.wal).sync()
    }
}

impl Drop for Collection {
    fn drop(&mut self) {
        let _ = self.shutdown();
    }
}

impl Inner {
    fn background_error(&self) -> Option<EngineError> {
        lock(&self.background).error.as_ref().map(|e| {
            EngineError::Unavailable(format!("a background flush or compaction failed: {e}"))
        })
    }

    fn search(
        &self,
        query: &[f32],
        k: usize,
        params: &SearchParams,
        filter: Option<&Filter>,
    ) -> Result<Vec<Hit>> {
        if let Some(f) = filter {
            // Unknown columns and mistyped literals fail here, by name.
            crate::filter::check(f, &self.schema.columns)?;
        }
        let dim = self.schema.dimension;
        crate::index::check_query(query, k, dim, || {
            format!("the collection {}", self.dir.display())
        })?;
        let metric = self.schema.metric;
        let mut top = TopK::default();
        // Lock order: active, then version (as freezing takes them).
        let active = self.active.read().unwrap_or_else(|p| p.into_inner());
        let version = Arc::clone(&self.version.read().unwrap_or_else(|p| p.into_inner()));
        let columns = &self.schema.columns;
        let row_matches = |values: &[Value]| {
            filter.is_none_or(|f| row_filter::eval(f, columns, values) == Some(true))
        };
        let matches: Option<memtable::RowPredicate<'_>> = filter
            .is_some()
            .then_some(&row_matches as memtable::RowPredicate<'_>);
        active.scan(query, metric, k, &|_| true, matches, &mut top);
        for (i, frozen) in version.frozen.iter().enumerate().rev() {
            let newer = &version.frozen[i + 1..];
            let visible =
                |id: u64| active.get(id).is_none() && newer.iter().all(|m| m.get(id).is_none());
            frozen.scan(query, metric, k, &visible, matches, &mut top);
        }
        let in_memtables = |id: u64| {
            active.get(id).is_some() || version.frozen.iter().any(|m| m.get(id).is_some())
        };
        for seg in &version.segments {
            if seg.live_rows() == 0 {
                continue;
            }
            let segment = &seg.files.segment;
            // Tombstones and the memtables' newer versions hide rows as
            // they are read; with a filter, the segment's planner picks the
            // strategy for the attribute predicate.
            let live = |_row: u32, id: u64| !seg.tombstones.contains(&id) && !in_memtables(id);
            let hits = match filter {
                None => segment.search_with(query, k, params, &live)?.0,
                Some(f) => segment.search_filtered_with(query, k, f, params, &live)?.0,
            };
            for h in hits {
                top.push(h, k);
            }
        }
        Ok(top.into_hits())
    }

    fn scan_live(&self, f: &mut RowVisitor<'_>) -> Result<()> {
        let active = self.active.read().unwrap_or_else(|p| p.into_inner());
        let version = Arc::clone(&self.version.read().unwrap_or_else(|p| p.into_inner()));
        let mut seen = HashSet::new();
        let memtables = std::iter::once(&*active).chain(version.frozen.iter().rev().map(|m| &**m));
        for m in memtables {
            let (ids, vectors, values) = m.live_sorted();
            let dim = self.schema.dimension;
            let cols = self.schema.columns.len();
            for (i, &id) in ids.iter().enumerate() {
                if seen.insert(id) {
                    f(
                        id,
                        &vectors[i * dim..(i + 1) * dim],
                        &values[i * cols..(i + 1) * cols],
                    );
                }
            }
            for id in m.touched_ids() {
                seen.insert(id);
            }
        }
        let ncols = self.schema.columns.len();
        let mut values = Vec::with_capacity(ncols);
        for seg in &version.segments {
            let columns = seg.files.attribute_columns(ncols)?;
            seg.files.segment.scan_rows(|row, id, v| {
                if !seg.tombstones.contains(&id) && !seen.contains(&id) {
                    values.clear();
                    snapshot::push_values(&columns, row, ncols, &mut values);
                    f(id, v, &values);
                }
                Ok(())
            })?;
        }
        Ok(())
    }

    fn stats(&self) -> CollectionStats {
        let active_rows = self
            .active
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .live_rows();
        let version = Arc::clone(&self.version.read().unwrap_or_else(|p| p.into_inner()));
        let manifest = lock(&self.manifest).clone();
        let background = lock(&self.background);
        let segments = version
            .segments
            .iter()
            .map(|s| {
                let bytes = std::fs::metadata(s.files.segment.path()).map_or(0, |m| m.len());
                (
                    s.record.id,
                    s.record.tier,
                    s.record.vectors,
                    s.record.tombstones,
                    bytes,
                )
            })
            .collect();
        let mut wal_files: Vec<(String, u64)> = std::fs::read_dir(&self.dir)
            .into_iter()
            .flatten()
            .flatten()
            .filter_map(|e| {
                let name = e.file_name().into_string().ok()?;
                name.starts_with("wal-")
                    .then(|| (name, e.metadata().map_or(0, |m| m.len())))
            })
            .collect();
        wal_files.sort();
        CollectionStats {
            dir: self.dir.clone(),
            schema: self.schema.clone(),
            manifest_generation: manifest.generation,
            wal_checkpoint: manifest.wal_checkpoint,
            flushed_lsn: manifest.flushed_lsn,
            next_lsn: self.next_lsn.load(std::sync::atomic::Ordering::Acquire),
            compactions: manifest.compactions,
            segments,
            memtable_rows: active_rows,
            frozen_memtables: version.frozen.len(),
            wal_files,
            compacting: background.compacting.clone(),
            pending_compaction: compaction::pick(
                &version
                    .segments
                    .iter()
                    .map(|s| s.record)
                    .collect::<Vec<_>>(),
                &self.options,
            )
            .map(|p| p.describe()),
            background_error: background.error.clone(),
        }
    }

    /// Whether `id` is live anywhere (for `insert`'s duplicate check).
    fn is_live(&self, active: &Memtable, version: &Version, id: u64) -> bool {
        let memtables = std::iter::once(active).chain(version.frozen.iter().rev().map(|m| &**m));
        for m in memtables {
            match m.get(id) {
                Some(Slot::Row(_)) => return true,
                Some(Slot::Deleted) => return false,
                None => {}
            }
        }
        version.segment_holding(id).is_some()
    }
}
