//! Exact k-nearest-neighbour ground truth by blocked, parallel brute force.
//!
//! The base is streamed once, front to back, in chunks of
//! [`GroundTruthParams::chunk_rows`] rows (the file's mapping is advised
//! sequential, so the kernel reads ahead and drops pages behind). Within a
//! chunk, query blocks run in parallel, each holding one bounded heap per
//! query, and walk the chunk in small tiles that stay in cache while every
//! query of the block is scored against them.
//!
//! Invariant: the result is the `k` smallest `(distance, id)` pairs per
//! query under that lexicographic order, sorted ascending, so ties are
//! broken by the smaller id and the output does not depend on chunk sizes,
//! block sizes or thread counts. Distances are those of
//! [`Kernels::best`](crate::distance::Kernels::best): squared L2, negated
//! dot product, or `1 - cos` (see [`Metric`]).
//!
//! `k` larger than the base is an error rather than a silent clamp: a
//! ground-truth file whose `k` differs from the one asked for would be
//! scored wrongly by tools that trust the header.

use std::cmp::Ordering;
use std::collections::BinaryHeap;

use omen_format::dataset::{AnyVectorFile, DatasetElement, Neighbors, Vectors};
use rayon::prelude::*;

use crate::distance::{Element, Kernels};
use crate::{EngineError, Metric, Result};

/// Base rows per chunk by default: 32K rows of 128 f32 is 16 MiB, enough to
/// amortise the per-chunk synchronisation and small enough to stay hot in
/// the page cache while every query block reads it.
pub const DEFAULT_CHUNK_ROWS: usize = 32 * 1024;

/// Base rows per tile, scored against every query of a block while the tile
/// sits in L2.
const TILE_ROWS: usize = 256;

/// What to compute.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct GroundTruthParams {
    /// Neighbours per query; must be in `1..=n`.
    pub k: usize,
    /// The distance.
    pub metric: Metric,
    /// Base rows per chunk (progress is reported once per chunk).
    pub chunk_rows: usize,
}

impl GroundTruthParams {
    /// `k` neighbours under `metric`, with the default chunk size.
    pub fn new(k: usize, metric: Metric) -> Self {
        GroundTruthParams {
            k,
            metric,
            chunk_rows: DEFAULT_CHUNK_ROWS,
        }
    }
}

/// One candidate; ordered by distance, then id, with `total_cmp` so that
/// even NaN has a fixed place (last).
#[derive(Debug, Clone, Copy)]
struct Candidate {
    distance: f32,
    id: u32,
}

impl Ord for Candidate {
    fn cmp(&self, other: &Self) -> Ordering {
        self.distance
            .total_cmp(&other.distance)
            .then(self.id.cmp(&other.id))
    }
}

impl PartialOrd for Candidate {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl PartialEq for Candidate {
    fn eq(&self, other: &Self) -> bool {
        self.cmp(other) == Ordering::Equal
    }
}

impl Eq for Candidate {}

/// The `k` best candidates seen so far; the worst sits on top.
#[derive(Debug)]
struct TopK {
    k: usize,
    heap: BinaryHeap<Candidate>,
}

impl TopK {
    fn new(k: usize) -> Self {
        TopK {
            k,
            heap: BinaryHeap::with_capacity(k + 1),
        }
    }

    #[inline]
    fn offer(&mut self, distance: f32, id: u32) {
        let c = Candidate { distance, id };
        if self.heap.len() < self.k {
            self.heap.push(c);
        } else if let Some(mut worst) = self.heap.peek_mut()
            && c < *worst
        {
            *worst = c;
        }
    }
}

/// Exact `k` nearest neighbours in `base` of every row of `queries`.
/// `progress` receives the number of base rows finished, after each chunk,
/// on the calling thread.
pub fn exact_knn<T: Element + DatasetElement>(
    base: Vectors<'_, T>,
    queries: Vectors<'_, T>,
    params: &GroundTruthParams,
    progress: &dyn Fn(u64),
) -> Result<Neighbors> {
    let (n, nq, k) = (base.len(), queries.len(), params.k);
    if base.dim() != queries.dim() {
        return Err(EngineError::InvalidArgument(format!(
            "the queries in {} have dimension {}, but the base vectors in {} have dimension {}",
            queries.path().display(),
            queries.dim(),
            base.path().display(),
            base.dim()
        )));
    }
    if k == 0 || k > n {
        return Err(EngineError::InvalidArgument(format!(
            "k = {k} must be in 1..={n}: {} holds {n} base vectors",
            base.path().display()
        )));
    }
    if u32::try_from(n).is_err() || i32::try_from(n).is_err() {
        return Err(EngineError::InvalidArgument(format!(
            "{} holds {n} vectors; ground-truth ids are int32, so at most {}",
            base.path().display(),
            i32::MAX
        )));
    }
    if nq == 0 {
        return Err(EngineError::InvalidArgument(format!(
            "{} holds no queries",
            queries.path().display()
        )));
    }

    let kernels = Kernels::<T>::best();
    let metric = params.metric;
    let chunk_rows = params.chunk_rows.max(1);
    // Enough blocks to keep every thread busy with some slack for uneven
    // progress, but blocks big enough that a tile is reused many times.
    let threads = rayon::current_num_threads().max(1);
    let block = nq.div_ceil(threads * 4).clamp(1, 64);

    let mut heaps: Vec<TopK> = (0..nq).map(|_| TopK::new(k)).collect();
    let mut start = 0usize;
    while start < n {
        let end = start.saturating_add(chunk_rows).min(n);
        let chunk = base
            .slice(start..end)
            .ok_or_else(|| EngineError::InvalidArgument("base chunk out of range".into()))?;
        heaps
            .par_chunks_mut(block)
            .enumerate()
            .for_each(|(b, block_heaps)| {
                let q0 = b * block;
                let mut tile_start = 0;
                while tile_start < chunk.len() {
                    let tile_end = (tile_start + TILE_ROWS).min(chunk.len());
                    let Some(tile) = chunk.slice(tile_start..tile_end) else {
                        break;
                    };
                    let first_id = (start + tile_start) as u32;
                    for (qi, heap) in block_heaps.iter_mut().enumerate() {
                        let q = queries.row(q0 + qi);
                        for (j, row) in tile.iter().enumerate() {
                            let d = kernels.distance(metric, q, row);
                            heap.offer(d, first_id + j as u32);
                        }
                    }
                    tile_start = tile_end;
                }
            });
        start = end;
        progress(end as u64);
    }

    let mut ids = Vec::with_capacity(nq * k);
    let mut distances = Vec::with_capacity(nq * k);
    for heap in heaps {
        for c in heap.heap.into_sorted_vec() {
            // Checked above: every id < n <= i32::MAX.
            ids.push(c.id as i32);
            distances.push(c.distance);
        }
    }
    Ok(Neighbors::new(nq, k, ids, distances)?)
}

/// Checks that `base` and `queries` can be searched against each other:
/// the same searchable element type and the same dimension.
pub fn check_compatible(base: &AnyVectorFile, queries: &AnyVectorFile) -> Result<()> {
    if base.element_type().is_none() || base.element_name() != queries.element_name() {
        return Err(EngineError::InvalidArgument(format!(
            "the base vectors in {} are {} and the queries in {} are {}; \
             both must be the same one of f32, f16, u8 or i8",
            base.path().display(),
            base.element_name(),
            queries.path().display(),
            queries.element_name()
        )));
    }
    if base.dim() != queries.dim() {
        return Err(EngineError::InvalidArgument(format!(
            "the queries in {} have dimension {}, but the base vectors in {} have dimension {}",
            queries.path().display(),
            queries.dim(),
            base.path().display(),
            base.dim()
        )));
    }
    Ok(())
}

/// [`exact_knn`] over two opened files of any (matching) element type.
pub fn exact_knn_files(
    base: &AnyVectorFile,
    queries: &AnyVectorFile,
    params: &GroundTruthParams,
    progress: &dyn Fn(u64),
) -> Result<Neighbors> {
    check_compatible(base, queries)?;
    base.advise_sequential();
    match (base, queries) {
        (AnyVectorFile::F32(b), AnyVectorFile::F32(q)) => {
            exact_knn(b.vectors(), q.vectors(), params, progress)
        }
        (AnyVectorFile::F16(b), AnyVectorFile::F16(q)) => {
            exact_knn(b.vectors(), q.vectors(), params, progress)
        }
        (AnyVectorFile::U8(b), AnyVectorFile::U8(q)) => {
            exact_knn(b.vectors(), q.vectors(), params, progress)
        }
        (AnyVectorFile::I8(b), AnyVectorFile::I8(q)) => {
            exact_knn(b.vectors(), q.vectors(), params, progress)
        }
        _ => Err(EngineError::InvalidArgument(format!(
            "cannot search {} ({}) with {} ({})",
            base.path().display(),
            base.element_name(),
            queries.path().display(),
            queries.element_name()
        ))),
    }
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::*;
    use crate::distance::distance;
    use crate::synth::Rng;

    /// The definition: score everything, sort by (distance, id), keep k.
    fn naive<T: Element + DatasetElement>(
        base: &[T],
        queries: &[T],
        dim: usize,
        k: usize,
        metric: Metric,
    ) -> (Vec<i32>, Vec<f32>) {
        let mut ids = Vec::new();
        let mut dists = Vec::new();
        for q in queries.chunks(dim) {
            let mut all: Vec<(f32, i32)> = base
                .chunks(dim)
                .enumerate()
                .map(|(i, b)| (distance(metric, q, b), i as i32))
                .collect();
            all.sort_by(|a, b| a.0.total_cmp(&b.0).then(a.1.cmp(&b.1)));
            for &(d, i) in &all[..k] {
                ids.push(i);
                dists.push(d);
            }
        }
        (ids, dists)
    }

    fn check<T: Element + DatasetElement>(base: &[T], queries: &[T], dim: usize, k: usize) {
        let label = Path::new("<mem>");
        let b = Vectors::from_slice(label, base, dim).unwrap();
        let q = Vectors::from_slice(label, queries, dim).unwrap();
        for metric in [Metric::L2, Metric::InnerProduct, Metric::Cosine] {
            let (want_ids, want_d) = naive(base, queries, dim, k, metric);
            for chunk_rows in [7, 300, DEFAULT_CHUNK_ROWS] {
                let params = GroundTruthParams {
                    k,
                    metric,
                    chunk_rows,
                };
                let reports = std::cell::RefCell::new(Vec::new());
                let got = exact_knn(b, q, &params, &|r| reports.borrow_mut().push(r)).unwrap();
                assert_eq!(got.all_ids(), &want_ids[..], "{metric} chunk {chunk_rows}");
                assert_eq!(got.all_distances(), &want_d[..], "{metric}");
                let reports = reports.into_inner();
                assert_eq!(reports.last(), Some(&(b.len() as u64)));
                assert!(reports.windows(2).all(|w| w[0] < w[1]));
            }
        }
    }

    #[test]
    fn agrees_with_naive_f32() {
        let mut rng = Rng::new(11);
        let dim = 13;
        let base: Vec<f32> = (0..700 * dim).map(|_| rng.normal() as f32).collect();
        let queries: Vec<f32> = (0..37 * dim).map(|_| rng.normal() as f32).collect();
        check(&base, &queries, dim, 10);
        check(&base[..5 * dim], &queries, dim, 5);
    }

    #[test]
    fn agrees_with_naive_u8_with_ties() {
        let mut rng = Rng::new(12);
        let dim = 8;
        // Few distinct values: many exact ties, which must go to the
        // smaller id.
        let base: Vec<u8> = (0..900 * dim).map(|_| (rng.below(4) * 60) as u8).collect();
        let queries: Vec<u8> = (0..20 * dim).map(|_| (rng.below(4) * 60) as u8).collect();
        check(&base, &queries, dim, 25);
    }

    #[test]
    fn agrees_with_naive_i8() {
        let mut rng = Rng::new(13);
        let dim = 5;
        let base: Vec<i8> = (0..400 * dim).map(|_| rng.below(256) as u8 as i8).collect();
        let queries: Vec<i8> = (0..9 * dim).map(|_| rng.below(256) as u8 as i8).collect();
        check(&base, &queries, dim, 3);
    }

    #[test]
    fn argument_errors() {
        let label_b = Path::new("base.fbin");
        let label_q = Path::new("query.fbin");
        let base = vec![0f32; 40];
        let q4 = vec![0f32; 4];
        let q5 = vec![0f32; 5];
        let b = Vectors::from_slice(label_b, &base, 4).unwrap();
        let params = GroundTruthParams::new(3, Metric::L2);
        let err = exact_knn(
            b,
            Vectors::from_slice(label_q, &q5, 5).unwrap(),
            &params,
            &|_| {},
        )
        .unwrap_err()
        .to_string();
        assert!(
            err.contains("base.fbin") && err.contains("query.fbin") && err.contains('5'),
            "{err}"
        );
        let q = Vectors::from_slice(label_q, &q4, 4).unwrap();
        let err = exact_knn(b, q, &GroundTruthParams::new(11, Metric::L2), &|_| {})
            .unwrap_err()
            .to_string();
        assert!(err.contains("k = 11") && err.contains("10"), "{err}");
        assert!(exact_knn(b, q, &GroundTruthParams::new(0, Metric::L2), &|_| {}).is_err());
        assert_eq!(
            exact_knn(b, q, &GroundTruthParams::new(10, Metric::L2), &|_| {})
                .unwrap()
                .k(),
            10
        );
    }
}
