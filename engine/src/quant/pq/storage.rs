//! Product quantization codes and the codebook's byte layout.
//!
//! Invariant: a code is exactly `m` bytes, byte `s` the index of the
//! nearest centroid of subspace `s`; [`ProductQuantizer::from_bytes`]
//! accepts exactly what [`ProductQuantizer::write`] produces for some
//! codebook of finite values, and fails without panicking on anything else.

use omen_format::Metric;

use super::{PQ_CENTROIDS, ProductQuantizer, accumulate};
use crate::EngineError;
use crate::quant::MAX_DIM;
use crate::quant::codec::{Reader, Writer};
use crate::quant::transform::normalized;

impl ProductQuantizer {
    /// Writes the code of `v` into `out` (`code_len()` bytes). Panics if
    /// either length is wrong: codes are produced by the engine from its
    /// own vectors, so a mismatch is a bug, not bad input.
    pub fn encode(&self, v: &[f32], out: &mut [u8]) {
        assert_eq!(v.len(), self.dim, "vector dimension");
        assert_eq!(out.len(), self.m(), "code length");
        let owned;
        let v = if self.metric == Metric::Cosine {
            owned = normalized(v);
            &owned[..]
        } else {
            v
        };
        let mut acc = [0f32; PQ_CENTROIDS];
        for (o, (range, t)) in out.iter_mut().zip(self.subspaces()) {
            let x = v.get(range).unwrap_or(&[]);
            accumulate(&mut acc, x, t, |a, c| (a - c) * (a - c));
            let mut best = (0u8, f32::INFINITY);
            for (c, &d) in (0..=u8::MAX).zip(acc.iter()) {
                if d < best.1 {
                    best = (c, d);
                }
            }
            *o = best.0;
        }
    }

    /// Appends the codebook (after the common header, see
    /// [`crate::quant`]): `dim u32`, `m u32`, then for each subspace its
    /// 256 centroids, row-major f32.
    pub(crate) fn write(&self, w: &mut Writer) {
        w.u32(self.dim as u32);
        w.u32(self.m() as u32);
        w.f32s(&self.codebook);
    }

    /// Reads what [`ProductQuantizer::write`] wrote.
    pub(crate) fn read(r: &mut Reader<'_>, metric: Metric) -> Result<Self, EngineError> {
        let at = r.pos();
        let dim = r.u32()? as usize;
        if !(1..=MAX_DIM).contains(&dim) {
            return Err(r.error_at(at, format!("dimension {dim} is outside 1..={MAX_DIM}")));
        }
        let at = r.pos();
        let m = r.u32()? as usize;
        if !(1..=dim).contains(&m) {
            return Err(r.error_at(at, format!("m = {m} subspaces for dimension {dim}")));
        }
        let codebook = r.f32s(PQ_CENTROIDS * dim)?;
        Ok(ProductQuantizer::from_codebook(metric, dim, m, codebook))
    }
}
