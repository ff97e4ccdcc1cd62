//! Per-query state for RaBitQ codes: byte lookup tables of the rotated
//! query and one constant per centroid.
//!
//! Invariant: `tables[p][b]` is the exact contribution `Σ v_j y_j` of code
//! byte `p` holding `b`, so `Σ_p tables[p][code[p]] = <v, y>` up to float
//! rounding, and a distance is `f_add + k[c] + f_scale · <v, y>`.

use omen_format::Metric;

use super::RaBitQuantizer;
use crate::quant::transform::{dot, normalized};

/// A query prepared for RaBitQ codes.
#[derive(Debug, Clone)]
pub struct RaBitQQuery {
    tables: Vec<[f32; 256]>,
    /// The per-query, per-centroid term of the estimate.
    k: Vec<f32>,
    code_len: usize,
}

impl RaBitQuantizer {
    /// Rotates `q` and builds its tables. Panics if `q.len() != dim()`.
    pub fn query(&self, q: &[f32]) -> RaBitQQuery {
        assert_eq!(q.len(), self.dim, "query dimension");
        let q = if self.metric == Metric::Cosine {
            normalized(q)
        } else {
            q.to_vec()
        };
        let centred: Vec<f32> = q.iter().zip(&self.mean).map(|(&x, &m)| x - m).collect();
        let mut y = vec![0f32; self.rotation.padded()];
        self.rotation.apply(&centred, &mut y);

        let k = self
            .centroids
            .as_slice()
            .chunks_exact(self.dim)
            .map(|c| match self.metric {
                Metric::L2 => q.iter().zip(c).map(|(&a, &b)| (a - b) * (a - b)).sum(),
                Metric::InnerProduct => -dot(&q, c),
                Metric::Cosine => 1.0 - dot(&q, c),
            })
            .collect();

        // Byte p's contribution is linear in its bits: bit i is stream bit
        // g = 8p + i, bit g % B of component g / B, worth 2^(g % B) y_j;
        // plus a constant, the `-level · y_j` of every component whose first
        // bit is in the byte (the value at code 0).
        let bits = usize::from(self.bits);
        let level = ((1u32 << bits) - 1) as f32 / 2.0;
        let tables = (0..y.len() * bits / 8)
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
            .collect();
        RaBitQQuery {
            tables,
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
        let (grid, rest) = code
            .split_at_checked(self.tables.len())
            .expect("code shorter than its grid");
        let mut acc = [0f32; 4];
        let codes = grid.chunks_exact(4);
        let tables = self.tables.chunks_exact(4);
        let (rc, rt) = (codes.remainder(), tables.remainder());
        for (c4, t4) in codes.zip(tables) {
            for ((a, &c), t) in acc.iter_mut().zip(c4).zip(t4) {
                *a += lookup(t, c);
            }
        }
        let tail: f32 = rc.iter().zip(rt).map(|(&c, t)| lookup(t, c)).sum();
        let s = (acc[0] + acc[1]) + (acc[2] + acc[3]) + tail;
        let (f_add, rest) = rest.split_first_chunk::<4>().expect("code lacks f_add");
        let (f_scale, rest) = rest.split_first_chunk::<4>().expect("code lacks f_scale");
        let cid = rest.first().map_or(0, |&c| usize::from(c));
        let k = self.k.get(cid).copied().unwrap_or(f32::NAN);
        f32::from_le_bytes(*f_add) + k + f32::from_le_bytes(*f_scale) * s
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
