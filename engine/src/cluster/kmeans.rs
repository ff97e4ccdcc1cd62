//! k-means under squared L2: k-means++ (or random-sample) seeding, then
//! Lloyd iterations until the assignment stops changing.
//!
//! Invariant: [`KMeans::fit`] returns exactly `k` finite centroids, none of
//! them the centroid of an empty cluster, and the same bits for the same
//! input and seed whatever the thread count. Determinism comes from two
//! rules: the parallel loops compute per-row (assignment) or per-cluster
//! (means, summed in f64 in row order) values only, and every random choice
//! is drawn sequentially from one seeded generator.

use rayon::prelude::*;

use super::rng::SplitMix64;
use crate::distance::{Kernels, columns_l2};
use crate::vectors::{FlatVectors, VectorSet};
use crate::{EngineError, Result};

/// How the first `k` centres are chosen.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Init {
    /// k-means++ (Arthur and Vassilvitskii 2007) on a sample of at most
    /// [`KMeans::INIT_SAMPLE_PER_CENTROID`] rows per centroid: D²-weighted
    /// seeding is O(log k)-competitive, and the sample keeps its O(n k d)
    /// cost independent of the data size.
    KMeansPlusPlus,
    /// `k` distinct rows chosen uniformly: cheaper, worse on skewed data.
    RandomSample,
}

/// k-means parameters. `KMeans::new(k)` gives sensible defaults; the
/// builder methods change them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KMeans {
    k: usize,
    max_iters: usize,
    seed: u64,
    init: Init,
}

/// Trained centres, `k` rows of `dim` values.
#[derive(Debug, Clone, PartialEq)]
pub struct Centroids {
    dim: usize,
    data: Vec<f32>,
}

impl KMeans {
    /// Rows per centroid that k-means++ seeding looks at.
    pub const INIT_SAMPLE_PER_CENTROID: usize = 32;

    /// Lloyd iterations stop early once fewer than one row in this many
    /// changes cluster.
    pub const STOP_MOVED_PER: usize = 1000;

    /// `k` clusters, 25 Lloyd iterations at most, seed 0, k-means++.
    pub fn new(k: usize) -> Self {
        KMeans {
            k,
            max_iters: 25,
            seed: 0,
            init: Init::KMeansPlusPlus,
        }
    }

    /// At most `iters` Lloyd iterations (0 returns the seeding).
    pub fn max_iters(mut self, iters: usize) -> Self {
        self.max_iters = iters;
        self
    }

    /// The seed of every random choice.
    pub fn seed(mut self, seed: u64) -> Self {
        self.seed = seed;
        self
    }

    /// The seeding method.
    pub fn init(mut self, init: Init) -> Self {
        self.init = init;
        self
    }

    /// Shorthand for `KMeans::new(k).max_iters(iters).seed(seed).fit(data)`.
    pub fn train(
        data: FlatVectors<'_, f32>,
        k: usize,
        iters: usize,
        seed: u64,
    ) -> Result<Centroids> {
        KMeans::new(k).max_iters(iters).seed(seed).fit(data)
    }

    /// Clusters `data`. Fails if `k` is zero or exceeds the number of rows,
    /// or if a value is not finite (it would poison every mean).
    pub fn fit(&self, data: FlatVectors<'_, f32>) -> Result<Centroids> {
        let (n, dim, k) = (data.len(), data.dim(), self.k);
        if k == 0 || k > n {
            return Err(EngineError::InvalidArgument(format!(
                "k-means needs 1 <= k <= rows, got k = {k} for {n} rows"
            )));
        }
        if k > u32::MAX as usize || n > u32::MAX as usize {
            return Err(EngineError::InvalidArgument(format!(
                "k-means supports at most 2^32 - 1 rows and clusters, got {n} rows"
            )));
        }
        if let Some(i) = data.as_slice().iter().position(|x| !x.is_finite()) {
            return Err(EngineError::InvalidArgument(format!(
                "k-means input row {} holds a non-finite value",
                i / dim
            )));
        }
        let mut rng = SplitMix64::derive(self.seed, 0x4B4D);
        let seeds = match self.init {
            Init::KMeansPlusPlus => plus_plus(data, k, &mut rng),
            Init::RandomSample => random_rows(n, k, &mut rng),
        };
        let mut centroids = Centroids {
            dim,
            data: seeds.iter().flat_map(|&i| data.get(i)).copied().collect(),
        };

        let mut assign = vec![u32::MAX; n];
        let mut dist = vec![0f32; n];
        let mut first_done = false;
        for _ in 0..self.max_iters {
            let changed = centroids.assign_into(data, &mut assign, &mut dist);
            // Once almost no row moves, further iterations barely change
            // the centres; stopping saves most of the training time.
            if changed == 0 || (first_done && changed * KMeans::STOP_MOVED_PER < n) {
                break;
            }
            first_done = true;
            let mut counts = vec![0usize; k];
            for &a in &assign {
                counts[a as usize] += 1;
            }
            fix_empty(&mut assign, &mut dist, &mut counts);
            centroids.data = means(data, &assign, &counts);
        }
        Ok(centroids)
    }
}

/// `k` distinct row indices, uniformly.
fn random_rows(n: usize, k: usize, rng: &mut SplitMix64) -> Vec<usize> {
    let mut idx: Vec<usize> = (0..n).collect();
    for i in 0..k {
        let j = i + rng.below(n - i);
        idx.swap(i, j);
    }
    idx.truncate(k);
    idx
}

/// k-means++ seeding on a random sample; returns row indices of `data`.
fn plus_plus(data: FlatVectors<'_, f32>, k: usize, rng: &mut SplitMix64) -> Vec<usize> {
    let n = data.len();
    let m = n.min(k.saturating_mul(KMeans::INIT_SAMPLE_PER_CENTROID).max(k));
    let mut pool = random_rows(n, m, rng);
    pool.sort_unstable();
    let l2 = Kernels::<f32>::best().l2_squared;

    let mut chosen = Vec::with_capacity(k);
    let mut taken = vec![false; m];
    let first = rng.below(m);
    chosen.push(pool[first]);
    taken[first] = true;
    let mut best: Vec<f32> = vec![f32::INFINITY; m];
    while chosen.len() < k {
        let c = data.get(*chosen.last().expect("one centre is chosen first"));
        best.par_iter_mut().zip(&pool).for_each(|(b, &i)| {
            let d = l2(data.get(i), c);
            if d < *b {
                *b = d;
            }
        });
        // Sequential, in pool order: the same sum and the same pick on
        // every thread count.
        let total: f64 = best
            .iter()
            .zip(&taken)
            .filter(|&(_, &t)| !t)
            .map(|(&d, _)| f64::from(d))
            .sum();
        let pick = if total > 0.0 {
            let target = rng.uniform() * total;
            let mut acc = 0.0;
            let mut pick = None;
            for (j, (&d, &t)) in best.iter().zip(&taken).enumerate() {
                if t || d <= 0.0 {
                    continue;
                }
                acc += f64::from(d);
                pick = Some(j);
                if acc > target {
                    break;
                }
            }
            pick
        } else {
            None
        };
        // Every remaining row duplicates a centre: take any untaken row.
        let j = match pick {
            Some(j) => j,
            None => {
                let free: Vec<usize> = (0..m).filter(|&j| !taken[j]).collect();
                free[rng.below(free.len())]
            }
        };
        taken[j] = true;
        chosen.push(pool[j]);
    }
    chosen
}

/// Gives every empty cluster the row farthest from its own centre, taken
/// from the currently most populous cluster (so that no cluster empties).
/// Splitting the biggest cluster is where the next centre helps most.
fn fix_empty(assign: &mut [u32], dist: &mut [f32], counts: &mut [usize]) {
    for e in 0..counts.len() {
        if counts[e] > 0 {
            continue;
        }
        let mut donor = 0;
        for (c, &n) in counts.iter().enumerate() {
            if n > counts[donor] {
                donor = c;
            }
        }
        // k <= n, so an empty cluster implies one with at least two rows.
        debug_assert!(counts[donor] >= 2);
        let mut far: Option<usize> = None;
        for (i, (&a, &d)) in assign.iter().zip(dist.iter()).enumerate() {
            if a as usize == donor && far.is_none_or(|f| d > dist[f]) {
                far = Some(i);
            }
        }
        let far = far.expect("the donor cluster has rows");
        assign[far] = e as u32;
        dist[far] = 0.0;
        counts[donor] -= 1;
        counts[e] = 1;
    }
}

/// Cluster means, each summed in f64 over its rows in row order.
fn means(data: FlatVectors<'_, f32>, assign: &[u32], counts: &[usize]) -> Vec<f32> {
    let (k, dim) = (counts.len(), data.dim());
    // Counting sort of row ids by cluster.
    let mut start = vec![0usize; k + 1];
    for (c, &n) in counts.iter().enumerate() {
        start[c + 1] = start[c] + n;
    }
    let mut fill = start.clone();
    let mut members = vec![0u32; assign.len()];
    for (i, &a) in assign.iter().enumerate() {
        members[fill[a as usize]] = i as u32;
        fill[a as usize] += 1;
    }
    let mut out = vec![0f32; k * dim];
    out.par_chunks_mut(dim).enumerate().for_each(|(c, row)| {
        let mut acc = vec![0f64; dim];
        let rows = &members[start[c]..start[c + 1]];
        for &i in rows {
            for (a, &x) in acc.iter_mut().zip(data.get(i as usize)) {
                *a += f64::from(x);
            }
        }
        let inv = 1.0 / rows.len().max(1) as f64;
        for (o, a) in row.iter_mut().zip(&acc) {
            *o = (a * inv) as f32;
        }
    });
    out
}

impl Centroids {
    /// Wraps `k * dim` values; `None` unless `dim > 0` and `data` holds a
    /// whole, non-zero number of rows.
    pub fn from_vec(data: Vec<f32>, dim: usize) -> Option<Self> {
        (dim > 0 && !data.is_empty() && data.len().is_multiple_of(dim))
            .then_some(Centroids { dim, data })
    }

    /// Number of centroids.
    pub fn k(&self) -> usize {
        self.data.len() / self.dim
    }

    /// Components per centroid.
    pub fn dim(&self) -> usize {
        self.dim
    }

    /// Centroid `i`; panics if `i >= k()`.
    pub fn centroid(&self, i: usize) -> &[f32] {
        &self.data[i * self.dim..(i + 1) * self.dim]
    }

    /// All centroids, row-major.
    pub fn as_slice(&self) -> &[f32] {
        &self.data
    }

    /// The centroids as a vector set (for example to train on them).
    pub fn as_vectors(&self) -> FlatVectors<'_, f32> {
        FlatVectors::new(&self.data, self.dim).expect("whole rows by construction")
    }

    /// The nearest centroid to `v` and its squared L2 distance; ties go to
    /// the lower index. Panics if `v.len() != dim()`.
    pub fn nearest(&self, v: &[f32]) -> (usize, f32) {
        assert_eq!(v.len(), self.dim, "vector and centroid dimensions differ");
        let l2 = Kernels::<f32>::best().l2_squared;
        let mut best = (0, f32::INFINITY);
        for (i, c) in self.data.chunks_exact(self.dim).enumerate() {
            let d = l2(v, c);
            if d < best.1 {
                best = (i, d);
            }
        }
        best
    }

    /// The `n` nearest centroids to `v` (all of them if `n >= k()`), closest
    /// first, ties by index: the overlapping assignment that lets a shard
    /// boundary not cut a vector off from its neighbours.
    pub fn nearest_n(&self, v: &[f32], n: usize) -> Vec<(usize, f32)> {
        assert_eq!(v.len(), self.dim, "vector and centroid dimensions differ");
        let l2 = Kernels::<f32>::best().l2_squared;
        let mut all: Vec<(usize, f32)> = self
            .data
            .chunks_exact(self.dim)
            .map(|c| l2(v, c))
            .enumerate()
            .collect();
        let by = |a: &(usize, f32), b: &(usize, f32)| a.1.total_cmp(&b.1).then(a.0.cmp(&b.0));
        let n = n.min(all.len());
        if n == 0 {
            return Vec::new();
        }
        if n < all.len() {
            all.select_nth_unstable_by(n - 1, by);
            all.truncate(n);
        }
        all.sort_unstable_by(by);
        all
    }

    /// The nearest centroid of every row of `data`, in parallel.
    pub fn assign(&self, data: FlatVectors<'_, f32>) -> Vec<(u32, f32)> {
        let mut assign = vec![u32::MAX; data.len()];
        let mut dist = vec![0f32; data.len()];
        self.assign_into(data, &mut assign, &mut dist);
        assign.into_iter().zip(dist).collect()
    }

    /// The centroids laid out for [`Transposed::nearest`].
    pub fn transposed(&self) -> Transposed {
        let (k, dim) = (self.k(), self.dim);
        let mut t = vec![0f32; k * dim];
        for (c, row) in self.data.chunks_exact(dim).enumerate() {
            for (j, &x) in row.iter().enumerate() {
                t[j * k + c] = x;
            }
        }
        Transposed { k, dim, t }
    }

    /// Assigns every row to its nearest centroid; returns how many rows
    /// changed cluster.
    ///
    /// This is the hot loop of training, so it does not call a distance
    /// kernel per pair: the centroids are transposed (`dim × k`) and each
    /// row's distances to all `k` centroids are accumulated lane-wise across
    /// centroids. That inner loop has no reduction, so it autovectorises
    /// without reassociating any sum (and without `unsafe`), and it stays
    /// fast for the 4 to 16-wide subspaces of product quantization, where a
    /// call per pair would cost more than the arithmetic.
    fn assign_into(
        &self,
        data: FlatVectors<'_, f32>,
        assign: &mut [u32],
        dist: &mut [f32],
    ) -> usize {
        let (k, dim) = (self.k(), self.dim);
        assert_eq!(data.dim(), dim, "data and centroid dimensions differ");
        let Transposed { t, .. } = self.transposed();
        let rows = data.as_slice();
        assign
            .par_iter_mut()
            .zip(dist.par_iter_mut())
            .zip(rows.par_chunks(dim))
            .with_min_len(64)
            .map_init(
                || vec![0f32; k],
                |acc, ((a, d), row)| nearest_transposed(&t, row, acc, a, d),
            )
            .filter(|&changed| changed)
            .count()
    }
}

/// Centroids stored dimension-major (`dim × k`), for many nearest-centroid
/// searches against the same set: the search accumulates all `k`
/// distances lane-wise ([`columns_l2`]), with no reduction per centroid
/// (see `Centroids::assign_into`).
#[derive(Debug, Clone, PartialEq)]
pub struct Transposed {
    k: usize,
    dim: usize,
    t: Vec<f32>,
}

impl Transposed {
    /// The nearest centroid to `v` and its squared L2 distance, ties to the
    /// lower index. Panics if `v.len()` differs from the dimension.
    pub fn nearest(&self, v: &[f32]) -> (u32, f32) {
        assert_eq!(v.len(), self.dim, "vector and centroid dimensions differ");
        let mut acc = vec![0f32; self.k];
        let (mut a, mut d) = (u32::MAX, 0f32);
        nearest_transposed(&self.t, v, &mut acc, &mut a, &mut d);
        (a, d)
    }
}

/// Writes the nearest of the `acc.len()` transposed centroids `t` to `row`
/// into `a`/`d`; returns whether `a` changed.
#[inline]
fn nearest_transposed(t: &[f32], row: &[f32], acc: &mut [f32], a: &mut u32, d: &mut f32) -> bool {
    columns_l2(t, row, acc);
    let mut best = (0u32, f32::INFINITY);
    for (c, &s) in acc.iter().enumerate() {
        if s < best.1 {
            best = (c as u32, s);
        }
    }
    let changed = *a != best.0;
    *a = best.0;
    *d = best.1;
    changed
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Three tight blobs far apart.
    fn blobs(per: usize, dim: usize) -> (Vec<f32>, Vec<Vec<f32>>) {
        let mut rng = SplitMix64::new(7);
        let centres: Vec<Vec<f32>> = (0..3)
            .map(|c| {
                (0..dim)
                    .map(|j| if j % 3 == c { 100.0 } else { 0.0 })
                    .collect()
            })
            .collect();
        let mut data = Vec::new();
        for i in 0..3 * per {
            let c = &centres[i % 3];
            data.extend(c.iter().map(|&x| x + rng.normal() as f32));
        }
        (data, centres)
    }

    #[test]
    fn finds_planted_blobs() {
        let (data, centres) = blobs(200, 6);
        let v = FlatVectors::new(&data, 6).unwrap();
        let c = KMeans::train(v, 3, 20, 1).unwrap();
        for centre in &centres {
            let (_, d) = c.nearest(centre);
            assert!(d < 1.0, "planted centre is {d} away");
        }
    }

    #[test]
    fn k_equal_to_n_and_duplicates_give_no_empty_cluster() {
        let data = vec![1.0f32; 8 * 4];
        let v = FlatVectors::new(&data, 4).unwrap();
        let c = KMeans::train(v, 8, 5, 3).unwrap();
        assert_eq!(c.k(), 8);
        assert!(c.as_slice().iter().all(|&x| x == 1.0));
        assert!(KMeans::train(v, 9, 5, 3).is_err());
        assert!(KMeans::train(v, 0, 5, 3).is_err());
    }

    #[test]
    fn nearest_n_is_sorted_and_consistent() {
        let (data, _) = blobs(50, 6);
        let v = FlatVectors::new(&data, 6).unwrap();
        let c = KMeans::new(10).seed(4).fit(v).unwrap();
        let q = v.get(17);
        let top = c.nearest_n(q, 4);
        assert_eq!(top.len(), 4);
        assert_eq!(top[0], c.nearest(q));
        assert!(top.windows(2).all(|w| w[0].1 <= w[1].1));
        assert_eq!(c.nearest_n(q, 100).len(), 10);
    }

    #[test]
    fn random_init_is_deterministic() {
        let (data, _) = blobs(100, 5);
        let v = FlatVectors::new(&data, 5).unwrap();
        let a = KMeans::new(7)
            .init(Init::RandomSample)
            .seed(9)
            .fit(v)
            .unwrap();
        let b = KMeans::new(7)
            .init(Init::RandomSample)
            .seed(9)
            .fit(v)
            .unwrap();
        assert_eq!(a, b);
    }
}
