//! Training RaBitQ: the sample mean, optional k-means centroids for the
//! residuals, and a random rotation.
//!
//! Invariant: the result depends only on the sample rows, the parameters
//! and the seed.

use omen_format::Metric;

use super::{RABITQ_BITS, RaBitQuantizer, padded_dim};
use crate::cluster::{Centroids, KMeans, sample_rows};
use crate::quant::transform::{Rotation, normalize};
use crate::vectors::{FlatVectors, VectorSet};
use crate::{EngineError, Result};

/// Rows the centroids and the mean are trained on.
pub const RABITQ_MAX_TRAIN_ROWS: usize = 65536;

/// Most centroids a code can name (one id byte).
pub const RABITQ_MAX_CENTROIDS: usize = 256;

impl RaBitQuantizer {
    /// Trains on (a sample of) `sample`. `centroids` residual centres are
    /// trained by k-means (fewer if the sample has fewer rows); with one,
    /// the centre is the mean and codes carry no centroid id.
    pub fn train(
        sample: FlatVectors<'_, f32>,
        bits: u8,
        centroids: usize,
        metric: Metric,
        seed: u64,
    ) -> Result<RaBitQuantizer> {
        let dim = sample.dim();
        if !RABITQ_BITS.contains(&bits) {
            return Err(EngineError::InvalidArgument(format!(
                "RaBitQ supports 1 to 8 bits per dimension, got {bits}"
            )));
        }
        if !(1..=RABITQ_MAX_CENTROIDS).contains(&centroids) {
            return Err(EngineError::InvalidArgument(format!(
                "RaBitQ supports 1..={RABITQ_MAX_CENTROIDS} centroids, got {centroids}"
            )));
        }
        if sample.is_empty() {
            return Err(EngineError::InvalidArgument(
                "RaBitQ needs at least one training vector".into(),
            ));
        }
        let mut rows = sample_rows(sample, RABITQ_MAX_TRAIN_ROWS, seed);
        if metric == Metric::Cosine {
            rows.chunks_exact_mut(dim).for_each(normalize);
        }
        let n = rows.len() / dim;
        let mut sum = vec![0f64; dim];
        for row in rows.chunks_exact(dim) {
            sum.iter_mut()
                .zip(row)
                .for_each(|(s, &x)| *s += f64::from(x));
        }
        let mean: Vec<f32> = sum.iter().map(|&s| (s / n as f64) as f32).collect();
        let centres = if centroids == 1 {
            Centroids::from_vec(mean.clone(), dim)
        } else {
            let rows = FlatVectors::new(&rows, dim).ok_or_else(|| {
                EngineError::InvalidArgument("training rows are not whole".into())
            })?;
            Some(
                KMeans::new(centroids.min(n))
                    .max_iters(20)
                    .seed(seed)
                    .fit(rows)?,
            )
        }
        .ok_or_else(|| EngineError::InvalidArgument("empty centroid set".into()))?;
        let rotation = Rotation::random(dim, padded_dim(dim), seed);
        Ok(RaBitQuantizer::assemble(
            metric, bits, mean, centres, rotation,
        ))
    }
}
