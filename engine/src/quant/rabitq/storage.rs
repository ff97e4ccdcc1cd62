//! RaBitQ codes and the quantizer's byte layout.
//!
//! A code is, in order: the grid (`D' B / 8` bytes, a bit stream: bit `b`
//! of component `j` is bit `(j B + b) % 8` of byte `(j B + b) / 8`), `f_add` (f32
//! LE), `f_scale` (f32 LE), and, when there is more than one centroid, the
//! centroid id (u8).
//!
//! Invariant: [`RaBitQuantizer::read`] accepts exactly what
//! [`RaBitQuantizer::write`] produces for finite parameters, and fails
//! without panicking on anything else.

use omen_format::Metric;

use super::builder::RABITQ_MAX_CENTROIDS;
use super::{RABITQ_BITS, RaBitQuantizer, padded_dim};
use crate::EngineError;
use crate::cluster::Centroids;
use crate::quant::MAX_DIM;
use crate::quant::codec::{Reader, Writer};
use crate::quant::transform::{Rotation, normalized};

/// Candidate clipping points, in standard deviations of a rotated unit
/// vector's components, searched for the multi-bit grid's scale: this many
/// coarse steps over the range, then as many fine ones around the best.
const CLIP_STEPS: usize = 16;
const CLIP_MIN: f32 = 0.5;
const CLIP_MAX: f32 = 4.5;

impl RaBitQuantizer {
    /// Writes the code of `v` into `out` (`code_len()` bytes). Panics if
    /// either length is wrong: codes are produced by the engine from its
    /// own vectors, so a mismatch is a bug, not bad input.
    pub fn encode(&self, v: &[f32], out: &mut [u8]) {
        assert_eq!(v.len(), self.dim, "vector dimension");
        assert_eq!(out.len(), self.code_len(), "code length");
        let o = if self.metric == Metric::Cosine {
            normalized(v)
        } else {
            v.to_vec()
        };
        let cid = if self.centroids.k() > 1 {
            self.centroids_t.nearest(&o).0 as usize
        } else {
            0
        };
        let c = self.centroids.centroid(cid);
        let residual: Vec<f32> = o.iter().zip(c).map(|(&x, &m)| x - m).collect();
        let norm = residual
            .iter()
            .map(|&x| f64::from(x) * f64::from(x))
            .sum::<f64>()
            .sqrt();
        let (grid, rest) = out
            .split_at_mut_checked(self.grid_len())
            .expect("code length checked above");
        grid.fill(0);
        let (f_add, f_scale) = if norm > 0.0 {
            let padded = self.rotation.padded();
            let unit: Vec<f32> = residual
                .iter()
                .map(|&x| (f64::from(x) / norm) as f32)
                .collect();
            let mut u = vec![0f32; padded];
            self.rotation.apply(&unit, &mut u);
            let codes = grid_point(&u, self.bits);
            let level = ((1u32 << self.bits) - 1) as f64 / 2.0;
            let value = |code: u8| f64::from(code) - level;
            let vu: f64 = codes
                .iter()
                .zip(&u)
                .map(|(&k, &x)| value(k) * f64::from(x))
                .sum();
            let pc = self
                .rotated_centroids
                .get(cid * padded..(cid + 1) * padded)
                .unwrap_or(&[]);
            let vpc: f64 = codes
                .iter()
                .zip(pc)
                .map(|(&k, &x)| value(k) * f64::from(x))
                .sum();
            pack(&codes, self.bits, grid);
            // vu > 0: the grid point has the sign of every large component.
            let g = if vu > 0.0 { norm / vu } else { 0.0 };
            match self.metric {
                Metric::L2 => (norm * norm + 2.0 * g * vpc, -2.0 * g),
                Metric::Cosine => {
                    let rc: f64 = residual
                        .iter()
                        .zip(c)
                        .map(|(&r, &m)| f64::from(r) * f64::from(m))
                        .sum();
                    (g * vpc - rc, -g)
                }
                Metric::InnerProduct => {
                    let rm: f64 = residual
                        .iter()
                        .zip(&self.mean)
                        .map(|(&r, &m)| f64::from(r) * f64::from(m))
                        .sum();
                    (-rm, -g)
                }
            }
        } else {
            // The vector is its centroid: the per-query term is exact.
            (0.0, 0.0)
        };
        let (add, rest) = rest.split_first_chunk_mut::<4>().expect("code has f_add");
        let (scale, rest) = rest.split_first_chunk_mut::<4>().expect("code has f_scale");
        *add = (f_add as f32).to_le_bytes();
        *scale = (f_scale as f32).to_le_bytes();
        if let Some(slot) = rest.first_mut() {
            *slot = cid as u8;
        }
    }

    /// Appends the parameters after the common header (see
    /// [`crate::quant`]).
    pub(crate) fn write(&self, w: &mut Writer) {
        w.u8(self.bits);
        w.u32(self.dim as u32);
        w.u32(self.rotation.padded() as u32);
        w.u32(self.centroids.k() as u32);
        w.f32s(&self.mean);
        w.f32s(self.centroids.as_slice());
        w.f32s(self.rotation.cols());
    }

    /// Reads what [`RaBitQuantizer::write`] wrote.
    pub(crate) fn read(r: &mut Reader<'_>, metric: Metric) -> Result<Self, EngineError> {
        let at = r.pos();
        let bits = r.u8()?;
        if !RABITQ_BITS.contains(&bits) {
            return Err(r.error_at(at, format!("{bits} bits per dimension")));
        }
        let at = r.pos();
        let dim = r.u32()? as usize;
        if !(1..=MAX_DIM).contains(&dim) {
            return Err(r.error_at(at, format!("dimension {dim} is outside 1..={MAX_DIM}")));
        }
        let at = r.pos();
        let padded = r.u32()? as usize;
        if padded != padded_dim(dim) {
            return Err(r.error_at(
                at,
                format!("padded dimension {padded}, expected {}", padded_dim(dim)),
            ));
        }
        let at = r.pos();
        let k = r.u32()? as usize;
        if !(1..=RABITQ_MAX_CENTROIDS).contains(&k) {
            return Err(r.error_at(at, format!("{k} centroids")));
        }
        let at = r.pos();
        let mean = r.f32s(dim)?;
        let centroids = Centroids::from_vec(r.f32s(k * dim)?, dim)
            .ok_or_else(|| r.error_at(at, "empty centroid table"))?;
        let at = r.pos();
        let rotation = Rotation::from_cols(dim, padded, r.f32s(dim * padded)?)
            .ok_or_else(|| r.error_at(at, "rotation size"))?;
        Ok(RaBitQuantizer::assemble(
            metric, bits, mean, centroids, rotation,
        ))
    }
}

/// The grid point (codes `0..2^B`, value `code - (2^B - 1) / 2`) whose
/// direction is closest to the unit vector `u`. One bit is the sign; more
/// bits search the scale, since the best uniform grid clips the largest
/// components rather than spanning them: exactly for up to
/// [`EXACT_MAX_BITS`] bits, by sampled clipping points above.
fn grid_point(u: &[f32], bits: u8) -> Vec<u8> {
    match bits {
        1 => u.iter().map(|&x| u8::from(x >= 0.0)).collect(),
        2..=EXACT_MAX_BITS => exact_grid_point(u, bits),
        _ => sampled_grid_point(u, bits),
    }
}

/// Widest codes whose scale [`exact_grid_point`] searches exactly: it sorts
/// `D (2^(B-1) - 1)` breakpoints, `D` at two bits and `3 D` at three, fewer
/// operations than the `2 (CLIP_STEPS + 1)` passes over `D` components of
/// the sampled search; at four bits and more the sort would cost more.
const EXACT_MAX_BITS: u8 = 3;

/// The grid point of largest cosine with `u` over every scale. The scale
/// `t` of the grid (`code = floor(t x) + half`, clamped) sets each
/// component's magnitude `|v| = min(floor(t |x|), half - 1) + 1/2`, which
/// steps up by one at `t = k / |x|` for `k = 1 .. half - 1`; between two such
/// breakpoints the cosine is constant. So the sweep sorts the breakpoints,
/// raises one component at a time (`Σ v x` grows by `|x|`, `Σ v²` by
/// `2 k`), and keeps the best prefix, the exact optimum that the sampled
/// clipping points of [`sampled_grid_point`] approach: at two bits the
/// encoding phase of a 1M × 128 build spent half its time in that search
/// (benches/RESULTS.md, session 17).
fn exact_grid_point(u: &[f32], bits: u8) -> Vec<u8> {
    let half = 1u16 << (bits - 1);
    let mut breakpoints: Vec<(f32, u16)> = Vec::with_capacity(u.len() * usize::from(half - 1));
    for (i, &x) in u.iter().enumerate() {
        let a = x.abs();
        if a > 0.0 {
            breakpoints.extend((1..half).map(|k| (f32::from(k) / a, i as u16)));
        }
    }
    breakpoints.sort_unstable_by(|p, q| p.0.total_cmp(&q.0).then(p.1.cmp(&q.1)));
    let mut level = vec![0u16; u.len()];
    let mut vu: f64 = u.iter().map(|&x| 0.5 * f64::from(x.abs())).sum();
    let mut vv = 0.25 * u.len() as f64;
    let (mut best, mut best_cos) = (0, vu / vv.sqrt());
    for (e, &(_, i)) in breakpoints.iter().enumerate() {
        let i = usize::from(i);
        let (Some(l), Some(&x)) = (level.get_mut(i), u.get(i)) else {
            continue;
        };
        *l += 1;
        vu += f64::from(x.abs());
        vv += 2.0 * f64::from(*l);
        let cos = vu / vv.sqrt();
        if cos > best_cos {
            (best, best_cos) = (e + 1, cos);
        }
    }
    level.fill(0);
    for &(_, i) in breakpoints.iter().take(best) {
        if let Some(l) = level.get_mut(usize::from(i)) {
            *l += 1;
        }
    }
    u.iter()
        .zip(&level)
        .map(|(&x, &l)| {
            // Non-negative components sit above the centre, as `grid_code`
            // places zero.
            let code = if x >= 0.0 { half + l } else { half - 1 - l };
            code as u8
        })
        .collect()
}

/// The grid point of best cosine among sampled clipping points: coarse
/// steps over the whole range, then fine steps around the best.
fn sampled_grid_point(u: &[f32], bits: u8) -> Vec<u8> {
    let top = (1i32 << bits) - 1;
    let half = 1i32 << (bits - 1);
    let sigma = 1.0 / (u.len() as f32).sqrt();
    let scale = |clip: f32| half as f32 / (clip * sigma);
    let coarse = (CLIP_MAX - CLIP_MIN) / CLIP_STEPS as f32;
    let mut best = (f32::NEG_INFINITY, CLIP_MIN);
    for step in 0..=CLIP_STEPS {
        let clip = CLIP_MIN + coarse * step as f32;
        let cos = grid_cosine(u, scale(clip), half, top);
        if cos > best.0 {
            best = (cos, clip);
        }
    }
    let centre = best.1;
    for step in 0..=CLIP_STEPS {
        let clip = centre + coarse * (step as f32 / CLIP_STEPS as f32 - 0.5);
        let cos = grid_cosine(u, scale(clip), half, top);
        if cos > best.0 {
            best = (cos, clip);
        }
    }
    let t = scale(best.1);
    u.iter()
        .map(|&x| grid_code(t * x, half, top) as u8)
        .collect()
}

/// The code of the grid cell holding `y`: `floor(y) + half`, clamped.
/// `floor` is a libm call on baseline x86-64 (no SSE4.1), so this floors by
/// truncating a value shifted to be positive; the first clamp keeps it so.
#[inline(always)]
fn grid_code(y: f32, half: i32, top: i32) -> i32 {
    let bound = (half + 1) as f32;
    let f = y.clamp(-bound, bound) + 256.0;
    (f as i32 - 256 + half).clamp(0, top)
}

/// The cosine between `u` and its grid point at scale `t`. Eight lanes of
/// partial sums let the loop vectorise.
fn grid_cosine(u: &[f32], t: f32, half: i32, top: i32) -> f32 {
    let (mut vu, mut vv) = ([0f32; 8], [0f32; 8]);
    let chunks = u.chunks_exact(8);
    let rest = chunks.remainder();
    for c in chunks {
        for ((a, b), &x) in vu.iter_mut().zip(vv.iter_mut()).zip(c) {
            let v = (grid_code(t * x, half, top) - half) as f32 + 0.5;
            *a += v * x;
            *b += v * v;
        }
    }
    for (&x, (a, b)) in rest.iter().zip(vu.iter_mut().zip(vv.iter_mut())) {
        let v = (grid_code(t * x, half, top) - half) as f32 + 0.5;
        *a += v * x;
        *b += v * v;
    }
    vu.iter().sum::<f32>() / vv.iter().sum::<f32>().sqrt()
}

/// Packs `codes` of `bits` bits each into the zeroed `out` as one bit
/// stream, least significant bit first.
fn pack(codes: &[u8], bits: u8, out: &mut [u8]) {
    let bits = usize::from(bits);
    for (j, &c) in codes.iter().enumerate() {
        for b in 0..bits {
            let at = j * bits + b;
            if let Some(byte) = out.get_mut(at / 8) {
                *byte |= ((c >> b) & 1) << (at % 8);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn grid_point_is_at_least_as_good_as_the_sign() {
        let u: Vec<f32> = (0..64)
            .map(|i| ((i * 37 % 23) as f32 - 11.0) / 40.0)
            .collect();
        let norm = u.iter().map(|x| x * x).sum::<f32>().sqrt();
        let u: Vec<f32> = u.iter().map(|x| x / norm).collect();
        let cosine = |bits: u8| {
            let codes = grid_point(&u, bits);
            let level = ((1u32 << bits) - 1) as f32 / 2.0;
            let v: Vec<f32> = codes.iter().map(|&c| c as f32 - level).collect();
            let vu: f32 = v.iter().zip(&u).map(|(a, b)| a * b).sum();
            vu / v.iter().map(|x| x * x).sum::<f32>().sqrt()
        };
        let (c1, c2, c4) = (cosine(1), cosine(2), cosine(4));
        assert!(c1 > 0.7 && c2 > c1 && c4 > c2 && c4 < 1.0, "{c1} {c2} {c4}");
    }

    /// The exact sweep finds a grid point at least as close in direction
    /// as every sampled clipping point, and a valid one: codes in range,
    /// on the side of each component's sign.
    #[test]
    fn exact_grid_point_is_never_worse_than_the_sampled_search() {
        let mut rng = crate::rng::SplitMix64::new(17);
        for trial in 0..200 {
            let dim = [1, 2, 7, 64, 128, 200][trial % 6];
            let mut u: Vec<f32> = (0..dim).map(|_| rng.normal() as f32).collect();
            if trial % 7 == 0 {
                u[0] = 0.0;
            }
            let norm = u.iter().map(|x| x * x).sum::<f32>().sqrt().max(1e-30);
            u.iter_mut().for_each(|x| *x /= norm);
            for bits in 2..=EXACT_MAX_BITS {
                let cosine = |codes: &[u8]| {
                    let level = ((1u32 << bits) - 1) as f64 / 2.0;
                    let v: Vec<f64> = codes.iter().map(|&c| f64::from(c) - level).collect();
                    let vu: f64 = v.iter().zip(&u).map(|(a, &b)| a * f64::from(b)).sum();
                    vu / v.iter().map(|x| x * x).sum::<f64>().sqrt()
                };
                let exact = exact_grid_point(&u, bits);
                let sampled = sampled_grid_point(&u, bits);
                assert!(exact.iter().all(|&c| c < 1 << bits));
                for (&c, &x) in exact.iter().zip(&u) {
                    assert_eq!(c >= 1 << (bits - 1), x >= 0.0, "{c} for {x}");
                }
                let (ce, cs) = (cosine(&exact), cosine(&sampled));
                assert!(ce >= cs - 1e-6, "dim {dim} bits {bits}: {ce} < {cs}");
            }
        }
    }

    #[test]
    fn pack_orders_bits_least_significant_first() {
        let mut out = [0u8; 2];
        pack(&[1, 2, 3, 0, 3, 3, 3, 3], 2, &mut out);
        assert_eq!(out, [0b00_11_10_01, 0xFF]);
        // Three bits: component 2 straddles bytes 0 and 1.
        let mut out = [0u8; 3];
        pack(&[0b101, 0b011, 0b110, 0, 0, 0, 0, 0b111], 3, &mut out);
        assert_eq!(out, [0b10_011_101, 0b0000_0001, 0b111_00000]);
    }
}
