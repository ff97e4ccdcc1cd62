//! Per-query state for RaBitQ codes: the rotated query in one of two forms,
//! and one constant per centroid.
//!
//! `<v, y>` is linear in the code's bits. Where the CPU has a packed-code
//! kernel for the width ([`packed_dot_kernel`]: AVX-512 VBMI and VNNI, 1, 2
//! or 4 bits), `y` is rounded to `i8` with one scale per query and the
//! grid's integer dot product is taken 64 components at a time. Elsewhere
//! (and for 3, 5, 6 and 7 bits) the query builds one 256-entry table per
//! code byte, a load per byte. At 384-d with 2 bits the tables are 96 KiB,
//! past the L1 cache, and code distances were a third of a query's
//! computation (benches/RESULTS.md, session 14).
//!
//! Invariant: `tables[p][b]` is the exact contribution `Σ v_j y_j` of code
//! byte `p` holding `b`, so `Σ_p tables[p][code[p]] = <v, y>` up to float
//! rounding; `scale · Σ c_j q_j + offset` is the same sum with `y` rounded
//! to `scale · q`. A distance is `f_add + k[c] + f_scale · <v, y>`.

use omen_format::Metric;

use super::RaBitQuantizer;
use crate::distance::{Kernels, PackedDotFn, packed_dot_kernel};
use crate::quant::transform::normalized;

/// A query prepared for RaBitQ codes.
#[derive(Debug, Clone)]
pub struct RaBitQQuery {
    grid: Grid,
    /// The per-query, per-centroid term of the estimate.
    k: Vec<f32>,
    code_len: usize,
}

/// How `<v, y>` is taken from a code's grid bytes.
#[derive(Clone)]
enum Grid {
    /// One table per code byte.
    Tables(Vec<[f32; 256]>),
    /// `y ≈ scale · q`; `<v, y> ≈ scale · dot(grid, q) + offset`.
    Packed {
        dot: PackedDotFn,
        q: Vec<i8>,
        scale: f32,
        /// `-level · Σ y_j`: the grid's values are `code - level`.
        offset: f32,
        grid_len: usize,
    },
}

impl std::fmt::Debug for Grid {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Grid::Tables(t) => write!(f, "Tables({} bytes)", t.len()),
            Grid::Packed { scale, .. } => write!(f, "Packed(scale {scale})"),
        }
    }
}

impl RaBitQuantizer {
    /// Rotates `q` and prepares it for the fastest grid kernel this CPU has.
    /// Panics if `q.len() != dim()`.
    pub fn query(&self, q: &[f32]) -> RaBitQQuery {
        self.prepare(q, packed_dot_kernel(self.bits))
    }

    /// The query with `packed` as its grid kernel, or with tables.
    fn prepare(&self, q: &[f32], packed: Option<PackedDotFn>) -> RaBitQQuery {
        assert_eq!(q.len(), self.dim, "query dimension");
        let q = if self.metric == Metric::Cosine {
            normalized(q)
        } else {
            q.to_vec()
        };
        let centred: Vec<f32> = q.iter().zip(&self.mean).map(|(&x, &m)| x - m).collect();
        let mut y = vec![0f32; self.rotation.padded()];
        self.rotation.apply(&centred, &mut y);

        // One term per centroid, every query: with 256 centroids this is
        // 256 full-dimension distances, so it takes the SIMD kernels (a
        // scalar sum here was 7% of a 1M × 128 query's computation).
        let kernels = Kernels::<f32>::best();
        let k = self
            .centroids
            .as_slice()
            .chunks_exact(self.dim)
            .map(|c| match self.metric {
                Metric::L2 => (kernels.l2_squared)(&q, c),
                Metric::InnerProduct => -(kernels.dot)(&q, c),
                Metric::Cosine => 1.0 - (kernels.dot)(&q, c),
            })
            .collect();

        let bits = usize::from(self.bits);
        let level = ((1u32 << bits) - 1) as f32 / 2.0;
        let grid = match packed {
            Some(dot) => packed_query(dot, &y, level, self.grid_len()),
            None => Grid::Tables(byte_tables(&y, bits, level)),
        };
        RaBitQQuery {
            grid,
            k,
            code_len: self.code_len(),
        }
    }
}

impl RaBitQQuery {
    /// Bytes per code.
    pub fn code_len(&self) -> usize {
        self.code_len
    }

    /// The estimated distance to `code`. Panics if `code` is shorter than
    /// the code length (codes are the engine's own, so that is a bug).
    #[inline]
    pub fn distance(&self, code: &[u8]) -> f32 {
        let (s, rest) = match &self.grid {
            Grid::Tables(tables) => {
                let (grid, rest) = code
                    .split_at_checked(tables.len())
                    .expect("code shorter than its grid");
                (table_sum(tables, grid), rest)
            }
            Grid::Packed {
                dot,
                q,
                scale,
                offset,
                grid_len,
            } => {
                let (grid, rest) = code
                    .split_at_checked(*grid_len)
                    .expect("code shorter than its grid");
                (*scale * dot(grid, q) as f32 + offset, rest)
            }
        };
        let (f_add, rest) = rest.split_first_chunk::<4>().expect("code lacks f_add");
        let (f_scale, rest) = rest.split_first_chunk::<4>().expect("code lacks f_scale");
        let cid = rest.first().map_or(0, |&c| usize::from(c));
        let k = self.k.get(cid).copied().unwrap_or(f32::NAN);
        f32::from_le_bytes(*f_add) + k + f32::from_le_bytes(*f_scale) * s
    }
}

/// One table per code byte.
fn byte_tables(y: &[f32], bits: usize, level: f32) -> Vec<[f32; 256]> {
    // Byte p's contribution is linear in its bits: bit i is stream bit
    // g = 8p + i, bit g % B of component g / B, worth 2^(g % B) y_j;
    // plus a constant, the `-level · y_j` of every component whose first
    // bit is in the byte (the value at code 0).
    (0..y.len() * bits / 8)
        .map(|p| {
            let mut w = [0f32; 8];
            for (i, wi) in w.iter_mut().enumerate() {
                let g = 8 * p + i;
                let yj = y.get(g / bits).copied().unwrap_or(0.0);
                *wi = (1u32 << (g % bits)) as f32 * yj;
            }
            let first = (8 * p).div_ceil(bits);
            let end = (8 * (p + 1)).div_ceil(bits).min(y.len());
            let base = y.get(first..end).map_or(0.0, |ys| ys.iter().sum::<f32>());
            byte_table(&w, -level * base)
        })
        .collect()
}

/// `Σ_p tables[p][grid[p]]`, four sums in flight.
#[inline]
fn table_sum(tables: &[[f32; 256]], grid: &[u8]) -> f32 {
    let mut acc = [0f32; 4];
    let codes = grid.chunks_exact(4);
    let tables = tables.chunks_exact(4);
    let (rc, rt) = (codes.remainder(), tables.remainder());
    for (c4, t4) in codes.zip(tables) {
        for ((a, &c), t) in acc.iter_mut().zip(c4).zip(t4) {
            *a += lookup(t, c);
        }
    }
    let tail: f32 = rc.iter().zip(rt).map(|(&c, t)| lookup(t, c)).sum();
    (acc[0] + acc[1]) + (acc[2] + acc[3]) + tail
}

/// `y` rounded to `i8` with one scale: the largest component maps to ±127,
/// so the rounding error of each is at most 1/254 of the largest.
fn packed_query(dot: PackedDotFn, y: &[f32], level: f32, grid_len: usize) -> Grid {
    let largest = y.iter().fold(0f32, |m, &v| m.max(v.abs()));
    let scale = if largest > 0.0 { largest / 127.0 } else { 1.0 };
    let q = y.iter().map(|&v| (v / scale).round() as i8).collect();
    Grid::Packed {
        dot,
        q,
        scale,
        offset: -level * y.iter().sum::<f32>(),
        grid_len,
    }
}

/// The 256 sums `base + Σ_{bit i of b set} w[i]`, each from a smaller
/// one: 255 adds per code byte.
#[expect(
    clippy::indexing_slicing,
    reason = "b < 256, b & (b - 1) < b, and a non-zero byte has fewer than 8 trailing zeros"
)]
fn byte_table(w: &[f32; 8], base: f32) -> [f32; 256] {
    let mut t = [0f32; 256];
    t[0] = base;
    for b in 1..256usize {
        t[b] = t[b & (b - 1)] + w[b.trailing_zeros() as usize];
    }
    t
}

#[inline(always)]
#[expect(
    clippy::indexing_slicing,
    reason = "a u8 index into a 256-entry array is always in bounds"
)]
fn lookup(t: &[f32; 256], c: u8) -> f32 {
    t[usize::from(c)]
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::vectors::FlatVectors;

    /// The packed path rounds the query to `i8`; its estimates stay within
    /// a small fraction of the spread of the table path's, at every width
    /// it serves and for every metric.
    #[test]
    fn packed_estimates_match_the_tables() {
        let (n, dim) = (300usize, 96usize);
        let mut state = 0x9E37_79B9_7F4A_7C15u64;
        let mut next = || {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            (state >> 40) as f32 / (1u64 << 24) as f32 - 0.5
        };
        let data: Vec<f32> = (0..n * dim).map(|_| next()).collect();
        let query: Vec<f32> = (0..dim).map(|_| next()).collect();
        for metric in [Metric::L2, Metric::InnerProduct, Metric::Cosine] {
            for bits in [1u8, 2, 4] {
                let Some(dot) = packed_dot_kernel(bits) else {
                    continue;
                };
                let sample = FlatVectors::new(&data, dim).unwrap();
                let quantizer = RaBitQuantizer::train(sample, bits, 4, metric, 3).unwrap();
                let tables = quantizer.prepare(&query, None);
                let packed = quantizer.prepare(&query, Some(dot));
                assert!(matches!(packed.grid, Grid::Packed { .. }));
                let mut code = vec![0u8; quantizer.code_len()];
                let (mut lo, mut hi, mut worst) = (f32::MAX, f32::MIN, 0f32);
                for row in data.chunks_exact(dim) {
                    quantizer.encode(row, &mut code);
                    let (t, p) = (tables.distance(&code), packed.distance(&code));
                    lo = lo.min(t);
                    hi = hi.max(t);
                    worst = worst.max((t - p).abs());
                }
                assert!(
                    worst <= 0.02 * (hi - lo),
                    "{metric:?}, {bits} bits: off by {worst} over a spread of {}",
                    hi - lo
                );
            }
        }
    }
}
