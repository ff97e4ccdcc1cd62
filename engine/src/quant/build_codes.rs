//! An 8-bit copy of every vector for the graph build (not a search code).
//!
//! Why: the build's greedy searches and prunes compute tens of thousands of
//! distances per inserted node against vectors scattered over a set far
//! larger than the caches, so they are bound by memory traffic. A 128-d f32
//! vector is eight cache lines; its `i8` copy is two. On 200K × 128 the
//! graph phase took 30% less time with the same recall at the same reads
//! (benches/RESULTS.md, session 6), and the shard that a memory budget
//! allows holds about twice as many nodes.
//!
//! The encoding is `q = round((x - c) * s)` clamped to `±127`, with one scale
//! `s` for every component, so that it keeps what the builder relies on:
//!
//! - l2: squared distances between codes are `s²` times those between the
//!   rows (up to rounding), whatever the centre `c` (the per-component mean,
//!   which centres the range);
//! - inner product: `c = 0`, so dot products are also scaled by `s²`;
//! - cosine: rows are normalised first and then compared in l2, since for
//!   unit vectors `|x - y|² = 2 (1 - cos)`; the ratio that RobustPrune tests
//!   is the same in both.
//!
//! Every ratio of distances, which is all that the search order and the
//! pruning rule look at, is therefore kept up to rounding. `s` maps the
//! largest deviation seen in the training sample to 127; rows outside the
//! sample that go further are clamped.

use omen_format::Metric;

use super::transform::normalize;
use crate::vectors::{FlatVectors, VectorSet, Widen};

/// Largest code magnitude: symmetric, so that negation is exact.
const LIMIT: f32 = 127.0;

/// A trained 8-bit encoder of rows for the graph build.
#[derive(Debug, Clone, PartialEq)]
pub struct BuildCodes {
    /// The metric the rows are built under.
    metric: Metric,
    /// Per-component centre, subtracted before scaling (zero for ip).
    center: Vec<f32>,
    /// Code units per unit of the (normalised, centred) row.
    scale: f32,
}

impl BuildCodes {
    /// Trains on widened rows (not yet normalised) of the data.
    pub fn train(sample: &FlatVectors<'_, f32>, metric: Metric) -> Self {
        let dim = sample.dim();
        // One pass: per component, the sum (for the centre) and the range
        // (the largest deviation from any centre is at one of its ends).
        let mut sum = vec![0f64; dim];
        let mut low = vec![f32::INFINITY; dim];
        let mut high = vec![f32::NEG_INFINITY; dim];
        let mut row = Vec::with_capacity(dim);
        for i in 0..sample.len() {
            row.clear();
            row.extend_from_slice(sample.get(i));
            if metric == Metric::Cosine {
                normalize(&mut row);
            }
            for (((s, lo), hi), &x) in sum.iter_mut().zip(&mut low).zip(&mut high).zip(&row) {
                *s += f64::from(x);
                *lo = lo.min(x);
                *hi = hi.max(x);
            }
        }
        let center: Vec<f32> = if metric == Metric::InnerProduct || sample.is_empty() {
            vec![0.0; dim]
        } else {
            sum.iter()
                .map(|s| (s / sample.len() as f64) as f32)
                .collect()
        };
        let reach = center
            .iter()
            .zip(low.iter().zip(&high))
            .filter(|(_, (lo, hi))| lo <= hi)
            .map(|(&c, (&lo, &hi))| (hi - c).max(c - lo))
            .fold(0f32, f32::max);
        let scale = if reach > 0.0 && reach.is_finite() {
            LIMIT / reach
        } else {
            1.0
        };
        BuildCodes {
            metric,
            center,
            scale,
        }
    }

    /// The metric to build the codes' graph under: cosine rows are
    /// normalised before encoding, so they are compared in l2.
    pub fn build_metric(&self) -> Metric {
        match self.metric {
            Metric::Cosine => Metric::L2,
            m => m,
        }
    }

    /// Components per row.
    pub fn dim(&self) -> usize {
        self.center.len()
    }

    /// Encodes `rows` (a whole number of rows) into `out`, one byte per
    /// component; `wide` is scratch.
    pub fn encode<T: Widen>(&self, rows: &[T], out: &mut [i8], wide: &mut Vec<f32>) {
        let dim = self.dim().max(1);
        for (row, code) in rows.chunks_exact(dim).zip(out.chunks_exact_mut(dim)) {
            wide.clear();
            wide.extend(row.iter().map(|&x| x.widen()));
            if self.metric == Metric::Cosine {
                normalize(wide);
            }
            for ((q, &x), &c) in code.iter_mut().zip(wide.iter()).zip(&self.center) {
                // `as` saturates, and the clamp keeps the range symmetric.
                *q = ((x - c) * self.scale).round().clamp(-LIMIT, LIMIT) as i8;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::distance::distance;

    fn rows(n: usize, dim: usize, offset: f32) -> Vec<f32> {
        let mut state = 0x1234_5678_u64;
        (0..n * dim)
            .map(|_| {
                state = state
                    .wrapping_mul(6364136223846793005)
                    .wrapping_add(1442695040888963407);
                offset + ((state >> 40) as f32 / (1u64 << 24) as f32 - 0.5) * 4.0
            })
            .collect()
    }

    /// Largest relative error of `ratio(code distances) / ratio(row
    /// distances)` over pairs of pairs: what the builder's decisions see.
    fn worst_ratio_error(metric: Metric, offset: f32) -> f32 {
        let dim = 32;
        let data = rows(200, dim, offset);
        let set = FlatVectors::new(&data, dim).unwrap();
        let codes = BuildCodes::train(&set, metric);
        let mut enc = vec![0i8; data.len()];
        codes.encode(&data, &mut enc, &mut Vec::new());
        let exact = |a: usize, b: usize| {
            let (mut x, mut y) = (set.get(a).to_vec(), set.get(b).to_vec());
            if metric == Metric::Cosine {
                normalize(&mut x);
                normalize(&mut y);
            }
            distance(codes.build_metric(), &x, &y)
        };
        let coded = |a: usize, b: usize| {
            distance(
                codes.build_metric(),
                &enc[a * dim..(a + 1) * dim],
                &enc[b * dim..(b + 1) * dim],
            )
        };
        let mut worst = 0f32;
        for a in 0..20 {
            for b in 20..40 {
                let (e, c) = (exact(a, b), coded(a, b));
                let (e0, c0) = (exact(a, 0), coded(a, 0));
                if e.abs() < 1e-3 || e0.abs() < 1e-3 || c0 == 0.0 {
                    continue;
                }
                worst = worst.max(((c / c0) / (e / e0) - 1.0).abs());
            }
        }
        worst
    }

    #[test]
    fn codes_keep_distance_ratios() {
        for metric in [Metric::L2, Metric::Cosine] {
            for offset in [0.0, 100.0] {
                let w = worst_ratio_error(metric, offset);
                assert!(w < 0.02, "{metric} offset {offset}: ratio error {w}");
            }
        }
        // Inner products near zero make ratios unstable; the data is
        // offset so that every product is large.
        let w = worst_ratio_error(Metric::InnerProduct, 5.0);
        assert!(w < 0.02, "ip: ratio error {w}");
    }

    #[test]
    fn cosine_is_built_in_l2_and_ignores_norms() {
        let dim = 4;
        let data = [1.0f32, 2.0, 3.0, 4.0, 10.0, 20.0, 30.0, 40.0];
        let set = FlatVectors::new(&data, dim).unwrap();
        let codes = BuildCodes::train(&set, Metric::Cosine);
        assert_eq!(codes.build_metric(), Metric::L2);
        let mut enc = [0i8; 8];
        codes.encode(&data, &mut enc, &mut Vec::new());
        assert_eq!(enc[..4], enc[4..]);
    }

    #[test]
    fn outliers_beyond_the_sample_are_clamped() {
        let data = [0.0f32, 1.0, -1.0, 0.5];
        let set = FlatVectors::new(&data, 1).unwrap();
        let codes = BuildCodes::train(&set, Metric::InnerProduct);
        let mut enc = [0i8; 3];
        codes.encode(&[1.0f32, 1000.0, -1000.0], &mut enc, &mut Vec::new());
        assert_eq!(enc, [127, 127, -127]);
    }
}
