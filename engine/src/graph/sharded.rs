//! Building a base-layer graph larger than a memory budget (DiskANN's
//! sharded build): k-means on a sample cuts the data into `S` overlapping
//! shards, each vector joining its `overlap` (2) nearest; each shard's graph
//! is built with only that shard's vectors in RAM and spilled to a
//! temporary file; a streaming merge then unions every node's lists from
//! its shards and RobustPrunes them to `R`, emitting nodes in id order.
//!
//! Invariant: at no point are all vectors, all shard graphs or the whole
//! merged adjacency in RAM. Peak memory, besides the caller's `emit` and
//! the input source (a mapped file's pages are the page cache's, and
//! reclaimable), is the largest of
//!
//! ```text
//! partition: s*d*(4 + t) + S*d*4 + S*B                     (sample, centroids, id spill buffers)
//! shard:     m*(d*t + 4*ceil(slack*R) + 14 + ceil(threads/8) + 4)  (vectors, adjacency, degrees, order and renaming, visited bits, ids)
//! merge:     S*B + K*(overlap*R*4 + 8) + threads*(overlap*R + 1)*d*t
//! ```
//!
//! with `t = size_of::<T>()`, `d` the dimension, `s` the k-means sample
//! rows, `B` = 64 KiB file buffers, `K` = 4096 nodes merged per batch and
//! `m` the largest shard. Shards are capped at
//! `m <= (budget - fixed) / per_node` (the `shard` line's per-node bytes) by a
//! capacity-constrained assignment, and `S = ceil(overlap * n / (0.8 * m))`
//! leaves 20% headroom for uneven clusters. For example, 100M x 128 f32 rows
//! (`--exact-build`; the 8-bit build copy has `t = 1`) with
//! `R = 64` (84 build slots), 2 threads and a 16 GiB budget: 867 bytes per
//! shard node, `m <= 19.8M`, 13 shards of about 15.4M; `n * R * 4` bytes
//! (25.6 GB) are never held.
//!
//! I/O: each shard reads its members from the source in ascending id order
//! (a forward sweep), and the merge reads the vectors of nodes whose union
//! exceeds `R` (random reads: about `overlap * R` rows per node).

use std::fs::File;
use std::io::{BufReader, BufWriter, Read, Write};
use std::path::{Path, PathBuf};

use rayon::prelude::*;

use super::EMPTY_SLOT;
use super::build::{BuildParams, build_bytes_per_node, build_graph_from_rows, medoid};
use super::prune::{PruneScratch, robust_prune};
use super::search::Neighbour;
use crate::cluster::KMeans;
use crate::distance::{Element, Kernels};
use crate::memory::advise_huge_pages;
use crate::vectors::{FlatVectors, VectorSet, Widen};
use crate::{EngineError, Metric, Result};

/// Where a sharded build reads vectors from: a mapped file (through
/// [`InMemory`]) or any reader that can copy rows out.
pub trait VectorSource<T: Element>: Sync {
    /// Number of vectors.
    fn len(&self) -> usize;

    /// Components per vector.
    fn dim(&self) -> usize;

    /// Copies rows `first .. first + out.len() / dim()` into `out`.
    fn read_rows(&self, first: usize, out: &mut [T]) -> Result<()>;

    /// Whether the source is empty.
    fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// A [`VectorSet`] as a [`VectorSource`].
#[derive(Debug, Clone, Copy)]
pub struct InMemory<'a, V: ?Sized>(pub &'a V);

impl<T: Element, V: VectorSet<T> + ?Sized> VectorSource<T> for InMemory<'_, V> {
    fn len(&self) -> usize {
        self.0.len()
    }

    fn dim(&self) -> usize {
        self.0.dim()
    }

    fn read_rows(&self, first: usize, out: &mut [T]) -> Result<()> {
        let d = self.0.dim();
        for (k, row) in out.chunks_exact_mut(d).enumerate() {
            row.copy_from_slice(self.0.get(first + k));
        }
        Ok(())
    }
}

/// Parameters of a sharded build.
#[derive(Debug, Clone, PartialEq)]
pub struct ShardedParams {
    /// The per-shard build (its `R` is also the merged graph's).
    pub build: BuildParams,
    /// Bytes of RAM the build may use (see the module documentation).
    pub memory_budget: usize,
    /// Shards each vector joins; 2 as in DiskANN.
    pub overlap: usize,
    /// Most rows k-means trains on.
    pub sample: usize,
    /// Lloyd iterations.
    pub kmeans_iters: usize,
    /// Where shard files go; they are deleted when the build ends.
    pub temp_dir: PathBuf,
}

impl ShardedParams {
    /// DiskANN-like defaults: overlap 2, up to 100 000 sample rows, 10
    /// iterations.
    pub fn new(build: BuildParams, memory_budget: usize, temp_dir: impl Into<PathBuf>) -> Self {
        ShardedParams {
            build,
            memory_budget,
            overlap: 2,
            sample: 100_000,
            kmeans_iters: 10,
            temp_dir: temp_dir.into(),
        }
    }
}

/// What a sharded build did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ShardedSummary {
    /// Number of shards (1: the data fit the budget and was built whole).
    pub shards: usize,
    /// Vectors in each shard.
    pub shard_sizes: Vec<usize>,
    /// The merged graph's entry node (an approximate medoid).
    pub entry: u32,
    /// The module documentation's peak estimate for this build, in bytes.
    pub planned_peak_bytes: usize,
    /// Nodes whose union of shard lists exceeded `R` and was re-pruned.
    pub merged_pruned: u64,
}

/// File buffer size of every spill reader and writer.
const FILE_BUFFER: usize = 64 << 10;
/// Nodes merged per parallel batch.
const MERGE_BATCH: usize = 4096;
/// Shards are filled to at most this fraction of their capacity on average.
const FILL: f64 = 0.8;
/// Rows read per block while partitioning.
const READ_BLOCK_BYTES: usize = 1 << 20;
/// Allowance for everything not proportional to a shard: lock stripes,
/// thread stacks touched, allocator slack.
const FIXED_OVERHEAD: usize = 2 << 20;

fn io_err(path: &Path, e: std::io::Error) -> EngineError {
    EngineError::Format(omen_format::FormatError::Io {
        path: path.to_path_buf(),
        source: e,
    })
}

/// Deletes the build's temporary files however the build ends.
struct TempFiles(Vec<PathBuf>);

impl Drop for TempFiles {
    fn drop(&mut self) {
        for p in &self.0 {
            let _ = std::fs::remove_file(p);
        }
    }
}

/// The widened (and, for cosine, normalised) copy of a row.
fn widen_row<T: Widen>(row: &[T], metric: Metric, out: &mut Vec<f32>) {
    out.clear();
    out.extend(row.iter().map(|&x| x.widen()));
    if metric == Metric::Cosine {
        let norm = out.iter().map(|x| x * x).sum::<f32>().sqrt();
        if norm > 0.0 {
            out.iter_mut().for_each(|x| *x /= norm);
        }
    }
}

/// Builds the base-layer graph of `source` within `params.memory_budget`,
/// calling `emit(id, neighbours)` once per node in ascending id order.
/// `progress(done, total)` counts rows partitioned, insertions and nodes
/// merged.
pub fn build_sharded<T: Widen, S: VectorSource<T> + ?Sized>(
    source: &S,
    metric: Metric,
    params: &ShardedParams,
    progress: &(dyn Fn(u64, u64) + Sync),
    emit: &mut dyn FnMut(u32, &[u32]) -> Result<()>,
) -> Result<ShardedSummary> {
    let n = source.len();
    let d = source.dim();
    let t = size_of::<T>();
    let r = params.build.max_degree;
    let threads = rayon::current_num_threads();
    if params.overlap == 0 || d == 0 {
        return Err(EngineError::InvalidArgument(
            "overlap and dimension must be positive".into(),
        ));
    }
    if u32::try_from(n).map_or(true, |n| n == u32::MAX) {
        return Err(EngineError::InvalidArgument(format!(
            "too many vectors: {n}"
        )));
    }
    let per_node = d * t + build_bytes_per_node(&params.build, threads) + 4;
    let usable = params.memory_budget.saturating_sub(FIXED_OVERHEAD);
    let cap = usable / per_node;
    let passes = if params.build.builder == super::Builder::Vamana {
        2
    } else {
        1
    };
    if n * per_node <= usable {
        // Everything fits: one shard, no spill.
        let mut data = vec![T::ZERO; n * d];
        advise_huge_pages(&data);
        source.read_rows(0, &mut data)?;
        let g = build_graph_from_rows(data, d, metric, &params.build, progress)?;
        for i in 0..n as u32 {
            emit(i, g.neighbours(i))?;
        }
        return Ok(ShardedSummary {
            shards: 1,
            shard_sizes: vec![n],
            entry: g.entry(),
            planned_peak_bytes: n * per_node + FIXED_OVERHEAD,
            merged_pruned: 0,
        });
    }
    if cap < 2 * r.max(8) {
        return Err(EngineError::InvalidArgument(format!(
            "a memory budget of {} bytes leaves room for {cap} vectors per shard; \
             raise it (each vector needs {per_node} bytes while its shard is built)",
            params.memory_budget
        )));
    }
    let overlap = params.overlap;
    let shards = ((overlap * n) as f64 / (FILL * cap as f64)).ceil().max(2.0) as usize;
    let overlap = overlap.min(shards);
    let total = (n + overlap * n * passes + n) as u64;
    let mut done = 0u64;

    // 1. Partition: k-means on a strided sample.
    let sample_rows = params
        .sample
        .min(n)
        .min(usable / 4 / (d * (4 + t)).max(1))
        .max(shards);
    let stride = n / sample_rows;
    let mut sample_ids = Vec::with_capacity(sample_rows);
    let mut sample_t = vec![T::ZERO; sample_rows * d];
    let mut sample_f = Vec::with_capacity(sample_rows * d);
    let mut wide = Vec::with_capacity(d);
    for (k, row) in sample_t.chunks_exact_mut(d).enumerate() {
        let id = k * stride;
        source.read_rows(id, row)?;
        sample_ids.push(id as u32);
        widen_row(row, metric, &mut wide);
        sample_f.extend_from_slice(&wide);
    }
    let centroids = KMeans::train(
        flat(&sample_f, d)?,
        shards,
        params.kmeans_iters,
        params.build.seed,
    )?;
    drop(sample_f);
    let entry = sample_ids
        .get(medoid(&flat(&sample_t, d)?, metric, params.build.seed) as usize)
        .copied()
        .unwrap_or(0);
    drop(sample_t);

    // 2. Assign each row to its `overlap` nearest shards that have room,
    // spilling member ids per shard.
    let mut temp = TempFiles(Vec::new());
    let tag = format!("omen-shard-{}-{:x}", std::process::id(), params.build.seed);
    let mut id_paths = Vec::with_capacity(shards);
    let mut writers = Vec::with_capacity(shards);
    for s in 0..shards {
        let p = params.temp_dir.join(format!("{tag}-{s}.ids"));
        let f = File::create(&p).map_err(|e| io_err(&p, e))?;
        temp.0.push(p.clone());
        id_paths.push(p);
        writers.push(BufWriter::with_capacity(FILE_BUFFER, f));
    }
    let mut sizes = vec![0usize; shards];
    let block = (READ_BLOCK_BYTES / (d * t)).max(1);
    let mut rows = vec![T::ZERO; block * d];
    let mut first = 0;
    while first < n {
        let count = block.min(n - first);
        let rows = &mut rows[..count * d];
        source.read_rows(first, rows)?;
        let ranked: Vec<Vec<(usize, f32)>> = rows
            .par_chunks_exact(d)
            .map_init(Vec::new, |wide, row| {
                widen_row(row, metric, wide);
                centroids.nearest_n(wide, shards)
            })
            .collect();
        for (k, ranks) in ranked.iter().enumerate() {
            let id = (first + k) as u32;
            let mut joined = 0;
            for &(s, _) in ranks {
                if joined == overlap {
                    break;
                }
                if sizes[s] < cap {
                    sizes[s] += 1;
                    joined += 1;
                    writers[s]
                        .write_all(&id.to_le_bytes())
                        .map_err(|e| io_err(&id_paths[s], e))?;
                }
            }
        }
        first += count;
        done += count as u64;
        progress(done, total);
    }
    for (w, p) in writers.into_iter().zip(&id_paths) {
        w.into_inner()
            .map_err(|e| io_err(p, e.into_error()))?
            .sync_all()
            .map_err(|e| io_err(p, e))?;
    }

    // 3. Build each shard with only its vectors in RAM; spill adjacency as
    // fixed records `[id u32][degree u16][0u16][R x u32]` in id order.
    let record = 8 + 4 * r;
    let mut adj_paths = Vec::with_capacity(shards);
    for s in 0..shards {
        let members = read_ids(&id_paths[s], sizes[s])?;
        let _ = std::fs::remove_file(&id_paths[s]);
        let mut data = vec![T::ZERO; members.len() * d];
        advise_huge_pages(&data);
        for (row, &id) in data.chunks_exact_mut(d).zip(&members) {
            source.read_rows(id as usize, row)?;
        }
        let base_done = done;
        let tick = |k: u64, _total: u64| progress(base_done + k, total);
        let g = build_graph_from_rows(data, d, metric, &params.build, &tick)?;
        done += (members.len() * passes) as u64;
        let p = params.temp_dir.join(format!("{tag}-{s}.adj"));
        let f = File::create(&p).map_err(|e| io_err(&p, e))?;
        temp.0.push(p.clone());
        let mut w = BufWriter::with_capacity(FILE_BUFFER, f);
        let mut buf = Vec::with_capacity(record);
        for (local, &global) in members.iter().enumerate() {
            let list = g.neighbours(local as u32);
            buf.clear();
            buf.extend_from_slice(&global.to_le_bytes());
            buf.extend_from_slice(&(list.len() as u16).to_le_bytes());
            buf.extend_from_slice(&[0, 0]);
            for k in 0..r {
                let v = list.get(k).map_or(EMPTY_SLOT, |&v| members[v as usize]);
                buf.extend_from_slice(&v.to_le_bytes());
            }
            w.write_all(&buf).map_err(|e| io_err(&p, e))?;
        }
        w.into_inner()
            .map_err(|e| io_err(&p, e.into_error()))?
            .sync_all()
            .map_err(|e| io_err(&p, e))?;
        adj_paths.push(p);
    }

    // 4. Streaming k-way merge in id order.
    let mut readers: Vec<ShardReader> = adj_paths
        .iter()
        .map(|p| ShardReader::open(p, r))
        .collect::<Result<_>>()?;
    let kernels = Kernels::<T>::best();
    let alpha = match params.build.builder {
        super::Builder::Vamana => params.build.alpha,
        super::Builder::HnswHeuristic => 1.0,
    };
    let mut merged_pruned = 0u64;
    let mut batch: Vec<(u32, Vec<u32>)> = Vec::with_capacity(MERGE_BATCH);
    let mut next = 0u32;
    while (next as usize) < n {
        batch.clear();
        while batch.len() < MERGE_BATCH && (next as usize) < n {
            let mut union = Vec::new();
            for rd in readers.iter_mut() {
                if rd.head == Some(next) {
                    union.extend(rd.list.iter().copied().filter(|&v| v != next));
                    rd.advance()?;
                }
            }
            let mut seen = std::collections::HashSet::with_capacity(union.len());
            union.retain(|v| seen.insert(*v));
            batch.push((next, union));
            next += 1;
        }
        let pruned: Vec<Result<Option<Vec<u32>>>> = batch
            .par_iter()
            .map(|(id, union)| {
                if union.len() <= r {
                    return Ok(None);
                }
                let mut q = vec![T::ZERO; d];
                source.read_rows(*id as usize, &mut q)?;
                let mut rows = vec![T::ZERO; union.len() * d];
                for (row, &v) in rows.chunks_exact_mut(d).zip(union) {
                    source.read_rows(v as usize, row)?;
                }
                let row = |k: usize| &rows[k * d..(k + 1) * d];
                let mut cands: Vec<(Neighbour, usize)> = union
                    .iter()
                    .enumerate()
                    .map(|(k, &v)| {
                        (
                            Neighbour {
                                id: v,
                                distance: kernels.distance(metric, &q, row(k)),
                            },
                            k,
                        )
                    })
                    .collect();
                cands.sort_unstable_by(|a, b| a.0.key_cmp(&b.0));
                let pos: std::collections::HashMap<u32, usize> =
                    cands.iter().map(|(c, k)| (c.id, *k)).collect();
                let list: Vec<Neighbour> = cands.iter().map(|c| c.0).collect();
                let mut out = Vec::new();
                robust_prune(
                    metric,
                    &list,
                    alpha,
                    r,
                    params.build.saturate,
                    &mut |a, b| kernels.distance(metric, row(pos[&a]), row(pos[&b])),
                    &mut PruneScratch::default(),
                    &mut out,
                );
                Ok(Some(out))
            })
            .collect();
        for ((id, union), p) in batch.iter().zip(pruned) {
            match p? {
                Some(list) => {
                    merged_pruned += 1;
                    emit(*id, &list)?;
                }
                None => emit(*id, union)?,
            }
        }
        done += batch.len() as u64;
        progress(done.min(total), total);
    }
    let m = sizes.iter().copied().max().unwrap_or(0);
    let planned = [
        sample_rows * d * (4 + t) + shards * d * 4 + shards * FILE_BUFFER,
        m * per_node,
        shards * FILE_BUFFER
            + MERGE_BATCH * (overlap * r * 4 + 8)
            + threads * (overlap * r + 1) * d * t,
    ]
    .into_iter()
    .max()
    .unwrap_or(0)
        + FIXED_OVERHEAD;
    drop(temp);
    Ok(ShardedSummary {
        shards,
        shard_sizes: sizes,
        entry,
        planned_peak_bytes: planned,
        merged_pruned,
    })
}

fn flat<T: Element>(data: &[T], d: usize) -> Result<FlatVectors<'_, T>> {
    FlatVectors::new(data, d)
        .ok_or_else(|| EngineError::InvalidArgument("rows of the wrong length".into()))
}

fn read_ids(path: &Path, count: usize) -> Result<Vec<u32>> {
    let f = File::open(path).map_err(|e| io_err(path, e))?;
    let mut r = BufReader::with_capacity(FILE_BUFFER, f);
    let mut out = Vec::with_capacity(count);
    let mut b = [0u8; 4];
    for _ in 0..count {
        r.read_exact(&mut b).map_err(|e| io_err(path, e))?;
        out.push(u32::from_le_bytes(b));
    }
    Ok(out)
}

/// A cursor over one shard's adjacency spill, sorted by global id.
struct ShardReader {
    path: PathBuf,
    reader: BufReader<File>,
    record: Vec<u8>,
    head: Option<u32>,
    list: Vec<u32>,
}

impl ShardReader {
    fn open(path: &Path, r: usize) -> Result<Self> {
        let f = File::open(path).map_err(|e| io_err(path, e))?;
        let mut s = ShardReader {
            path: path.to_path_buf(),
            reader: BufReader::with_capacity(FILE_BUFFER, f),
            record: vec![0; 8 + 4 * r],
            head: None,
            list: Vec::with_capacity(r),
        };
        s.advance()?;
        Ok(s)
    }

    fn advance(&mut self) -> Result<()> {
        self.list.clear();
        match self.reader.read_exact(&mut self.record) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => {
                self.head = None;
                return Ok(());
            }
            Err(e) => return Err(io_err(&self.path, e)),
        }
        let word = |k: usize| {
            let mut b = [0u8; 4];
            b.copy_from_slice(&self.record[k..k + 4]);
            u32::from_le_bytes(b)
        };
        self.head = Some(word(0));
        let degree = usize::from(u16::from_le_bytes([self.record[4], self.record[5]]));
        for k in 0..degree {
            self.list.push(word(8 + 4 * k));
        }
        Ok(())
    }
}
