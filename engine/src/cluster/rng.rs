//! A tiny deterministic generator for training (SplitMix64), kept local so
//! that trained models never change when a dependency's algorithm does.
//!
//! Invariant: the stream is a pure function of the seed; no global state.

use crate::vectors::{FlatVectors, VectorSet};

/// SplitMix64 (Steele, Lea and Flood 2014): one 64-bit word of state, full
/// period, good enough for sampling rows and drawing Gaussian matrices.
#[derive(Debug, Clone)]
pub(crate) struct SplitMix64 {
    state: u64,
    spare_normal: Option<f64>,
}

impl SplitMix64 {
    pub(crate) fn new(seed: u64) -> Self {
        SplitMix64 {
            state: seed,
            spare_normal: None,
        }
    }

    /// A generator for sub-task `stream` of `seed`, unrelated to the others.
    pub(crate) fn derive(seed: u64, stream: u64) -> Self {
        let mut g = SplitMix64::new(seed ^ stream.wrapping_mul(0xD1B5_4A32_D192_ED03));
        let s = g.next_u64();
        SplitMix64::new(s)
    }

    pub(crate) fn next_u64(&mut self) -> u64 {
        self.state = self.state.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.state;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in `[0, 1)` with 53 random bits.
    pub(crate) fn uniform(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 * (1.0 / (1u64 << 53) as f64)
    }

    /// Uniform in `0..n` for `n > 0` (Lemire's multiply-shift).
    pub(crate) fn below(&mut self, n: usize) -> usize {
        ((u128::from(self.next_u64()) * n as u128) >> 64) as usize
    }

    /// A standard normal deviate (Box-Muller, both halves used).
    pub(crate) fn normal(&mut self) -> f64 {
        if let Some(z) = self.spare_normal.take() {
            return z;
        }
        // 1 - uniform is in (0, 1], so the logarithm is finite.
        let u1 = 1.0 - self.uniform();
        let u2 = self.uniform();
        let r = (-2.0 * u1.ln()).sqrt();
        let (s, c) = (std::f64::consts::TAU * u2).sin_cos();
        self.spare_normal = Some(r * s);
        r * c
    }
}

/// Up to `max` distinct rows of `data`, chosen uniformly at random under
/// `seed` and returned in their original order (row-major, `dim` wide).
/// Training on a sample bounds the cost of k-means independently of the
/// segment size; keeping the original order keeps the copy cache-friendly.
pub fn sample_rows(data: FlatVectors<'_, f32>, max: usize, seed: u64) -> Vec<f32> {
    let n = data.len();
    if n <= max {
        return data.as_slice().to_vec();
    }
    // Partial Fisher-Yates over the row indices.
    let mut idx: Vec<u32> = (0..n as u32).collect();
    let mut rng = SplitMix64::derive(seed, 0x5A3D);
    for i in 0..max {
        let j = i + rng.below(n - i);
        idx.swap(i, j);
    }
    let mut chosen = idx[..max].to_vec();
    chosen.sort_unstable();
    let mut out = Vec::with_capacity(max * data.dim());
    for &i in &chosen {
        out.extend_from_slice(data.get(i as usize));
    }
    out
}
