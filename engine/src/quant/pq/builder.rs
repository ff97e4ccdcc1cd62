//! Training a product quantizer: k-means with 256 centres per subspace on a
//! sample of the data.
//!
//! Invariant: the result depends only on the sample rows, `m`, the metric
//! and the seed (each subspace uses its own derived seed).

use omen_format::Metric;

use super::{PQ_CENTROIDS, ProductQuantizer, subspace_offsets};
use crate::cluster::{KMeans, sample_rows};
use crate::quant::transform::normalize;
use crate::vectors::{FlatVectors, VectorSet};
use crate::{EngineError, Result};

/// Rows k-means looks at per subspace: 256 per centroid is plenty for
/// 256 centroids in a few dimensions, and bounds training time.
pub const PQ_MAX_TRAIN_ROWS: usize = 256 * PQ_CENTROIDS;

/// Lloyd iterations per subspace.
const PQ_ITERS: usize = 20;

impl ProductQuantizer {
    /// Trains `m` subspace codebooks on (a sample of) `sample`.
    pub fn train(
        sample: FlatVectors<'_, f32>,
        m: usize,
        metric: Metric,
        seed: u64,
    ) -> Result<ProductQuantizer> {
        let dim = sample.dim();
        if m == 0 || m > dim {
            return Err(EngineError::InvalidArgument(format!(
                "product quantization needs 1 <= m <= dimension ({dim}), got m = {m}"
            )));
        }
        if sample.is_empty() {
            return Err(EngineError::InvalidArgument(
                "product quantization needs at least one training vector".into(),
            ));
        }
        let mut rows = sample_rows(sample, PQ_MAX_TRAIN_ROWS, seed);
        if metric == Metric::Cosine {
            rows.chunks_exact_mut(dim).for_each(normalize);
        }
        let n = rows.len() / dim;
        let offsets = subspace_offsets(dim, m);
        let mut codebook = Vec::with_capacity(PQ_CENTROIDS * dim);
        for (s, w) in offsets.windows(2).enumerate() {
            let (lo, hi) = match *w {
                [lo, hi] => (lo, hi),
                _ => continue,
            };
            let width = hi - lo;
            let sub: Vec<f32> = rows
                .chunks_exact(dim)
                .flat_map(|r| r.get(lo..hi).unwrap_or(&[]))
                .copied()
                .collect();
            let sub = FlatVectors::new(&sub, width).ok_or_else(|| {
                EngineError::InvalidArgument("subspace rows are not whole".into())
            })?;
            let k = n.min(PQ_CENTROIDS);
            let centroids = KMeans::new(k)
                .max_iters(PQ_ITERS)
                .seed(seed ^ (s as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15))
                .fit(sub)?;
            codebook.extend_from_slice(centroids.as_slice());
            let first = centroids.centroid(0).to_vec();
            for _ in k..PQ_CENTROIDS {
                codebook.extend_from_slice(&first);
            }
        }
        Ok(ProductQuantizer::from_codebook(metric, dim, m, codebook))
    }
}
