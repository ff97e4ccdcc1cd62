//! Product quantization (Jégou, Douze and Schmid 2011): the vector is cut
//! into `m` subvectors, each replaced by the index of the nearest of 256
//! centroids trained for its subspace, so a code is `m` bytes.
//!
//! Subspace widths differ by at most one: with `D = q·m + r`, the first `r`
//! subspaces are `q + 1` wide and the rest `q` wide, so any `m <= D` works.
//!
//! Distances are asymmetric (ADC): the query stays exact, and a per-query
//! table of the 256 partial distances of each subspace turns a code's
//! distance into `m` table lookups. Per metric:
//!
//! - `l2`: the table holds `||q_s - c||²`; the sum estimates `||q - x||²`;
//! - `ip`: the table holds `-<q_s, c>`; the sum estimates `-<q, x>`;
//! - `cos`: vectors are normalised before training and encoding, the query
//!   at query time, and the `ip` tables plus 1 estimate `1 - <q̂, x̂>`
//!   (the inner product form keeps the estimate linear in the code, so it
//!   stays unbiased when the reconstruction is not exactly unit length).
//!
//! Invariant: the codebook always holds 256 finite centroids per subspace.
//! When training had fewer than 256 distinct rows the spare entries repeat
//! centroid 0; nearest-centroid search breaks ties towards the lower index,
//! so they are never emitted.

mod builder;
mod query;
mod storage;

pub use query::PqQuery;

use omen_format::Metric;

/// Centroids per subspace: one byte per subspace.
pub const PQ_CENTROIDS: usize = 256;

/// A trained product quantizer.
#[derive(Debug, Clone, PartialEq)]
pub struct ProductQuantizer {
    metric: Metric,
    dim: usize,
    /// Subspace `s` covers components `offsets[s]..offsets[s + 1]`.
    offsets: Vec<usize>,
    /// Subspace `s`: 256 centroids of its width, row-major, starting at
    /// `256 * offsets[s]`.
    codebook: Vec<f32>,
    /// The same values transposed per subspace (`width × 256`), so that a
    /// subvector's distances to all 256 centroids are one vectorisable
    /// loop (see `crate::cluster::kmeans`).
    transposed: Vec<f32>,
}

/// Subspace boundaries for `dim` components in `m` subspaces.
pub(crate) fn subspace_offsets(dim: usize, m: usize) -> Vec<usize> {
    let (q, r) = (dim / m, dim % m);
    let mut offsets = Vec::with_capacity(m + 1);
    let mut at = 0;
    offsets.push(0);
    for s in 0..m {
        at += q + usize::from(s < r);
        offsets.push(at);
    }
    offsets
}

impl ProductQuantizer {
    fn from_codebook(metric: Metric, dim: usize, m: usize, codebook: Vec<f32>) -> Self {
        let offsets = subspace_offsets(dim, m);
        let mut transposed = vec![0f32; codebook.len()];
        for w in offsets.windows(2) {
            let (lo, hi) = match *w {
                [lo, hi] => (lo, hi),
                _ => continue,
            };
            let width = hi - lo;
            let base = PQ_CENTROIDS * lo;
            let src = codebook
                .get(base..base + PQ_CENTROIDS * width)
                .unwrap_or(&[]);
            let dst = transposed
                .get_mut(base..base + PQ_CENTROIDS * width)
                .unwrap_or(&mut []);
            for (c, row) in src.chunks_exact(width).enumerate() {
                for (j, &x) in row.iter().enumerate() {
                    if let Some(t) = dst.get_mut(j * PQ_CENTROIDS + c) {
                        *t = x;
                    }
                }
            }
        }
        ProductQuantizer {
            metric,
            dim,
            offsets,
            codebook,
            transposed,
        }
    }

    /// The metric the codes estimate.
    pub fn metric(&self) -> Metric {
        self.metric
    }

    /// Components per input vector.
    pub fn dim(&self) -> usize {
        self.dim
    }

    /// Number of subspaces, which is also the code length in bytes.
    pub fn m(&self) -> usize {
        self.offsets.len() - 1
    }

    /// Bytes per code.
    pub fn code_len(&self) -> usize {
        self.m()
    }

    /// Subspace `s`'s transposed codebook (`width × 256`) and its component
    /// range.
    fn subspaces(&self) -> impl Iterator<Item = (std::ops::Range<usize>, &[f32])> {
        self.offsets.windows(2).filter_map(|w| match *w {
            [lo, hi] => self
                .transposed
                .get(PQ_CENTROIDS * lo..PQ_CENTROIDS * hi)
                .map(|t| (lo..hi, t)),
            _ => None,
        })
    }
}

/// `acc[c] = Σ_j f(x_j, t[j][c])` over the transposed `width × 256` table
/// `t`: the loop over `c` has no reduction, so it autovectorises.
#[inline]
fn accumulate(acc: &mut [f32; PQ_CENTROIDS], x: &[f32], t: &[f32], f: impl Fn(f32, f32) -> f32) {
    acc.fill(0.0);
    for (&xj, col) in x.iter().zip(t.chunks_exact(PQ_CENTROIDS)) {
        for (a, &c) in acc.iter_mut().zip(col) {
            *a += f(xj, c);
        }
    }
}
