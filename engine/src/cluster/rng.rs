//! Sampling training rows, deterministically from a seed.

pub(crate) use crate::rng::SplitMix64;
use crate::vectors::{FlatVectors, VectorSet};

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
