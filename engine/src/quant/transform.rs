//! Transforms applied to vectors before they are quantized: normalisation
//! (for cosine) and a random orthogonal rotation (for RaBitQ).
//!
//! Invariant: [`Rotation`] has orthonormal columns, so it preserves norms
//! and inner products: `<R x, R y> = <x, y>`. This is what lets quantizers
//! work in the rotated space and still estimate distances of the original
//! vectors.

use crate::cluster::rng::SplitMix64;
use crate::distance::columns_dot;

/// Scales `v` to unit length in place; a zero vector stays zero (cosine
/// distance treats it as orthogonal to everything, distance 1).
pub(crate) fn normalize(v: &mut [f32]) {
    let norm = v
        .iter()
        .map(|&x| f64::from(x) * f64::from(x))
        .sum::<f64>()
        .sqrt();
    if norm > 0.0 {
        let inv = (1.0 / norm) as f32;
        v.iter_mut().for_each(|x| *x *= inv);
    }
}

/// A copy of `v`, normalised.
pub(crate) fn normalized(v: &[f32]) -> Vec<f32> {
    let mut out = v.to_vec();
    normalize(&mut out);
    out
}

/// A `padded × dim` matrix with orthonormal columns (`padded >= dim`),
/// applied to a `dim`-vector as if it were zero-padded to `padded` and
/// rotated by a Haar-random orthogonal matrix. Only the first `dim`
/// columns of that matrix ever meet a non-zero, so only they are stored.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Rotation {
    dim: usize,
    padded: usize,
    /// Column-major: column `j` is `cols[j * padded..(j + 1) * padded]`.
    cols: Vec<f32>,
}

impl Rotation {
    /// Gram-Schmidt (modified, in f64, twice for stability) of `dim`
    /// Gaussian vectors: the Q factor of a Gaussian matrix is Haar
    /// distributed, which is what RaBitQ's error bound assumes.
    pub(crate) fn random(dim: usize, padded: usize, seed: u64) -> Self {
        debug_assert!(dim <= padded);
        let mut rng = SplitMix64::derive(seed, 0x0207);
        let mut q: Vec<Vec<f64>> = Vec::with_capacity(dim);
        while q.len() < dim {
            let mut v: Vec<f64> = (0..padded).map(|_| rng.normal()).collect();
            for _ in 0..2 {
                for u in &q {
                    let p: f64 = u.iter().zip(&v).map(|(a, b)| a * b).sum();
                    v.iter_mut().zip(u).for_each(|(x, &y)| *x -= p * y);
                }
            }
            let norm = v.iter().map(|x| x * x).sum::<f64>().sqrt();
            // A draw (numerically) inside the span is vanishingly rare;
            // draw again rather than divide by ~0.
            if norm > 1e-6 {
                v.iter_mut().for_each(|x| *x /= norm);
                q.push(v);
            }
        }
        let cols = q.iter().flatten().map(|&x| x as f32).collect();
        Rotation { dim, padded, cols }
    }

    /// Wraps stored columns; `None` unless `cols.len() == dim * padded`.
    pub(crate) fn from_cols(dim: usize, padded: usize, cols: Vec<f32>) -> Option<Self> {
        (dim.checked_mul(padded) == Some(cols.len())).then_some(Rotation { dim, padded, cols })
    }

    pub(crate) fn padded(&self) -> usize {
        self.padded
    }

    /// The stored columns, column-major.
    pub(crate) fn cols(&self) -> &[f32] {
        &self.cols
    }

    /// `out = R x`, column by column (see [`columns_dot`]).
    pub(crate) fn apply(&self, x: &[f32], out: &mut [f32]) {
        assert_eq!(x.len(), self.dim, "rotation input length");
        assert_eq!(out.len(), self.padded, "rotation output length");
        columns_dot(&self.cols, x, out);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dot(a: &[f32], b: &[f32]) -> f32 {
        (crate::distance::Kernels::<f32>::best().dot)(a, b)
    }

    #[test]
    fn rotation_preserves_inner_products() {
        let r = Rotation::random(10, 64, 5);
        let a: Vec<f32> = (0..10).map(|i| i as f32 - 3.0).collect();
        let b: Vec<f32> = (0..10).map(|i| (i * i) as f32 * 0.1).collect();
        let (mut ra, mut rb) = (vec![0f32; 64], vec![0f32; 64]);
        r.apply(&a, &mut ra);
        r.apply(&b, &mut rb);
        let want = dot(&a, &b);
        assert!((dot(&ra, &rb) - want).abs() < 1e-3 * want.abs().max(1.0));
        assert!((dot(&ra, &ra) - dot(&a, &a)).abs() < 1e-3 * dot(&a, &a));
    }

    #[test]
    fn normalize_keeps_zero() {
        let mut z = vec![0f32; 4];
        normalize(&mut z);
        assert_eq!(z, vec![0f32; 4]);
        let n = normalized(&[3.0, 4.0]);
        assert!((n[0] - 0.6).abs() < 1e-6 && (n[1] - 0.8).abs() < 1e-6);
    }
}
