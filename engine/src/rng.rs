//! The engine's one deterministic random generator, SplitMix64, and the
//! hashes built on it.
//!
//! Kept in the crate rather than taken from a dependency so that datasets,
//! trained models, insertion orders and level assignments never change when
//! a dependency changes its algorithm: a seed means the same bytes forever.
//!
//! Invariant: every stream is a pure function of its seed; no global state.

/// SplitMix64 (Steele, Lea and Flood 2014): one 64-bit word of state, full
/// period, good enough for sampling rows and drawing Gaussian matrices.
#[derive(Debug, Clone)]
pub struct SplitMix64 {
    state: u64,
    spare_normal: Option<f64>,
}

impl SplitMix64 {
    pub fn new(seed: u64) -> Self {
        SplitMix64 {
            state: seed,
            spare_normal: None,
        }
    }

    /// A generator for sub-task `stream` of `seed`, unrelated to the others.
    pub fn derive(seed: u64, stream: u64) -> Self {
        let mut g = SplitMix64::new(seed ^ stream.wrapping_mul(0xD1B5_4A32_D192_ED03));
        let s = g.next_u64();
        SplitMix64::new(s)
    }

    pub fn next_u64(&mut self) -> u64 {
        self.state = self.state.wrapping_add(0x9E37_79B9_7F4A_7C15);
        mix(self.state)
    }

    /// Uniform in `[0, 1)` with 53 random bits.
    pub fn uniform(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 * (1.0 / (1u64 << 53) as f64)
    }

    /// Uniform in `0..n` for `n > 0` (Lemire's multiply-shift).
    pub fn below(&mut self, n: usize) -> usize {
        ((u128::from(self.next_u64()) * n as u128) >> 64) as usize
    }

    /// A standard normal deviate (Box-Muller, both halves used).
    pub fn normal(&mut self) -> f64 {
        if let Some(z) = self.spare_normal.take() {
            return z;
        }
        let (z, spare) = box_muller(self.uniform(), self.uniform());
        self.spare_normal = Some(spare);
        z
    }
}

/// Two independent standard normal deviates from two uniforms in `[0, 1)`
/// (Box-Muller).
#[inline]
pub fn box_muller(u1: f64, u2: f64) -> (f64, f64) {
    // 1 - u1 is in (0, 1], so the logarithm is finite.
    let r = (-2.0 * (1.0 - u1).ln()).sqrt();
    let (s, c) = (std::f64::consts::TAU * u2).sin_cos();
    (r * c, r * s)
}

/// The SplitMix64 finaliser: a bijection with full avalanche, so hashing
/// `(seed, id)` gives independent per-item draws without any state.
#[inline]
pub fn mix(mut z: u64) -> u64 {
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// A uniform draw in `(0, 1]` that depends only on `(seed, id)`.
pub fn unit_for(seed: u64, id: u64) -> f64 {
    let z = mix(mix(seed ^ 0x5851_F42D_4C95_7F2D).wrapping_add(id));
    ((z >> 11) as f64 + 1.0) * (1.0 / (1u64 << 53) as f64)
}

/// A random permutation of `0..n` (Fisher-Yates).
pub fn permutation(n: usize, seed: u64) -> Vec<u32> {
    let mut order: Vec<u32> = (0..n as u32).collect();
    let mut rng = SplitMix64::new(seed);
    for i in (1..n).rev() {
        let j = rng.below(i + 1);
        order.swap(i, j);
    }
    order
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splitmix64_matches_the_published_sequence() {
        // SplitMix64 from 0: the reference implementation's first output.
        assert_eq!(SplitMix64::new(0).next_u64(), 0xE220_A839_7B1D_CDAF);
    }
}
