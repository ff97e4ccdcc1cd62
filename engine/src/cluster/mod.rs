//! Clustering of f32 vectors: k-means under squared L2, for quantizer
//! codebooks, RaBitQ centroids and the graph builder's shard assignment.
//!
//! Invariant: every result here is a pure function of the input rows and the
//! seed. Parallel loops only ever compute per-row or per-cluster values, and
//! every reduction runs in a fixed order, so thread counts cannot change a
//! single bit of a trained model.

pub mod kmeans;
pub(crate) mod rng;

pub use kmeans::{Centroids, Init, KMeans, Transposed};
pub use rng::sample_rows;
