//! Attribute columns for the synthetic datasets of [`crate::synth`], made
//! for filtered-search benchmarks (SPEC.md §5, benches/RESULTS.md).
//!
//! Both columns are permutations of `0..n`, so `column < s·n` matches
//! exactly the fraction `s` of the rows, for any `s`:
//!
//! - `clustered`: the clusters are put in a random order and numbered
//!   consecutively, cluster after cluster, so a range selects whole
//!   clusters (and a part of one): the matching rows are neighbours of each
//!   other and, for most queries, far from the query;
//! - `independent`: a random permutation, unrelated to the vectors.

use crate::Result;
use crate::rng::SplitMix64;
use crate::synth::{Stream, SynthModel};

/// The two columns for base vectors `0..n` of the synthetic set
/// `(seed, n, dim)`: `(clustered, independent)`.
pub fn synth_attributes(seed: u64, n: u64, dim: usize) -> Result<(Vec<i64>, Vec<i64>)> {
    let model = SynthModel::new(seed, n, dim)?;
    let clusters = model.clusters();
    let cluster: Vec<u32> = (0..n)
        .map(|i| model.cluster_of(Stream::Base, i) as u32)
        .collect();
    let mut rng = SplitMix64::new(seed ^ 0xA77B_5EED);
    let order = shuffled(clusters, &mut rng);
    let mut rank = vec![0u32; clusters];
    for (r, &c) in order.iter().enumerate() {
        rank[c] = r as u32;
    }
    let mut by_cluster: Vec<u32> = (0..n as u32).collect();
    by_cluster.sort_by_key(|&i| (rank[cluster[i as usize] as usize], i));
    let mut clustered = vec![0i64; n as usize];
    for (position, &row) in by_cluster.iter().enumerate() {
        clustered[row as usize] = position as i64;
    }
    let independent = shuffled(n as usize, &mut rng)
        .into_iter()
        .map(|v| v as i64)
        .collect();
    Ok((clustered, independent))
}

/// A uniformly random permutation of `0..n` (Fisher–Yates).
fn shuffled(n: usize, rng: &mut SplitMix64) -> Vec<usize> {
    let mut v: Vec<usize> = (0..n).collect();
    for i in (1..n).rev() {
        let j = (rng.next_u64() % (i as u64 + 1)) as usize;
        v.swap(i, j);
    }
    v
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn columns_are_permutations_and_clustered_follows_clusters() {
        let (n, dim) = (5000u64, 16);
        let (clustered, independent) = synth_attributes(9, n, dim).unwrap();
        for col in [&clustered, &independent] {
            let mut sorted = col.clone();
            sorted.sort_unstable();
            assert_eq!(sorted, (0..n as i64).collect::<Vec<_>>());
        }
        // A clustered range covers few clusters; an independent one many.
        let model = SynthModel::new(9, n, dim).unwrap();
        let clusters_in = |col: &[i64]| {
            let mut c: Vec<usize> = (0..n)
                .filter(|&i| col[i as usize] < 250)
                .map(|i| model.cluster_of(Stream::Base, i))
                .collect();
            c.sort_unstable();
            c.dedup();
            c.len()
        };
        assert!(clusters_in(&clustered) * 4 < clusters_in(&independent));
        assert_eq!(
            synth_attributes(9, n, dim).unwrap().0,
            clustered,
            "deterministic"
        );
    }
}
