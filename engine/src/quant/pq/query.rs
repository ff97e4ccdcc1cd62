//! Per-query lookup tables for asymmetric distance computation.
//!
//! Invariant: `tables[s][c]` is the exact partial distance between the
//! query's subvector `s` and centroid `c` of subspace `s`, so a code's
//! estimate is `bias + Σ_s tables[s][code[s]]` with no other error than the
//! quantization of the base vector.

use omen_format::Metric;

use super::{PQ_CENTROIDS, ProductQuantizer, accumulate};
use crate::quant::transform::normalized;

/// A query prepared for product-quantized codes.
#[derive(Debug, Clone)]
pub struct PqQuery {
    tables: Vec<[f32; PQ_CENTROIDS]>,
    bias: f32,
}

impl ProductQuantizer {
    /// Builds the lookup tables of `q`. Panics if `q.len() != dim()`.
    pub fn query(&self, q: &[f32]) -> PqQuery {
        assert_eq!(q.len(), self.dim, "query dimension");
        let owned;
        let q = if self.metric == Metric::Cosine {
            owned = normalized(q);
            &owned[..]
        } else {
            q
        };
        let mut tables = vec![[0f32; PQ_CENTROIDS]; self.m()];
        for (table, (range, t)) in tables.iter_mut().zip(self.subspaces()) {
            let x = q.get(range).unwrap_or(&[]);
            match self.metric {
                Metric::L2 => accumulate(table, x, t, |a, c| (a - c) * (a - c)),
                Metric::InnerProduct | Metric::Cosine => accumulate(table, x, t, |a, c| -a * c),
            }
        }
        let bias = if self.metric == Metric::Cosine {
            1.0
        } else {
            0.0
        };
        PqQuery { tables, bias }
    }
}

impl PqQuery {
    /// Bytes per code.
    pub fn code_len(&self) -> usize {
        self.tables.len()
    }

    /// The estimated distance to `code`. Four independent sums hide the
    /// latency of the dependent float adds; each lookup indexes a 256-entry
    /// array with a byte, so it needs no bounds check.
    #[inline]
    pub fn distance(&self, code: &[u8]) -> f32 {
        debug_assert_eq!(code.len(), self.tables.len(), "code length");
        let mut acc = [0f32; 4];
        let codes = code.chunks_exact(4);
        let tables = self.tables.chunks_exact(4);
        let (rc, rt) = (codes.remainder(), tables.remainder());
        for (c4, t4) in codes.zip(tables) {
            for ((a, &c), t) in acc.iter_mut().zip(c4).zip(t4) {
                *a += lookup(t, c);
            }
        }
        let tail: f32 = rc.iter().zip(rt).map(|(&c, t)| lookup(t, c)).sum();
        self.bias + (acc[0] + acc[1]) + (acc[2] + acc[3]) + tail
    }
}

#[inline(always)]
#[expect(
    clippy::indexing_slicing,
    reason = "a u8 index into a 256-entry array is always in bounds"
)]
fn lookup(t: &[f32; PQ_CENTROIDS], c: u8) -> f32 {
    t[usize::from(c)]
}
