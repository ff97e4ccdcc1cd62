//! A small deterministic generator for the graph builders (SplitMix64), kept
//! local so that insertion orders and level assignments never change when a
//! dependency or another module changes its algorithm.
//!
//! Invariant: every stream is a pure function of its seed.

/// SplitMix64 (Steele, Lea and Flood 2014).
#[derive(Debug, Clone)]
pub(crate) struct SplitMix64(u64);

impl SplitMix64 {
    pub(crate) fn new(seed: u64) -> Self {
        SplitMix64(seed)
    }

    pub(crate) fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        mix(self.0)
    }

    /// Uniform in `0..n` for `n > 0` (Lemire's multiply-shift).
    pub(crate) fn below(&mut self, n: usize) -> usize {
        ((u128::from(self.next_u64()) * n as u128) >> 64) as usize
    }
}

/// The SplitMix64 finaliser: a bijection with full avalanche, so hashing
/// `(seed, id)` gives independent per-node draws without any state.
pub(crate) fn mix(mut z: u64) -> u64 {
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// A uniform draw in `(0, 1]` that depends only on `(seed, id)`.
pub(crate) fn unit_for(seed: u64, id: u64) -> f64 {
    let z = mix(mix(seed ^ 0x5851_F42D_4C95_7F2D).wrapping_add(id));
    ((z >> 11) as f64 + 1.0) * (1.0 / (1u64 << 53) as f64)
}

/// A random permutation of `0..n` (Fisher-Yates).
pub(crate) fn permutation(n: usize, seed: u64) -> Vec<u32> {
    let mut order: Vec<u32> = (0..n as u32).collect();
    let mut rng = SplitMix64::new(seed);
    for i in (1..n).rev() {
        let j = rng.below(i + 1);
        order.swap(i, j);
    }
    order
}
