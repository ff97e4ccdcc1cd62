//! OmenDB's algorithms, above the byte formats of `omen-format`.
//!
//! - [`distance`]: SIMD distance kernels with run-time dispatch;
//! - [`synth`]: deterministic, clustered synthetic datasets;
//! - [`ground_truth`]: exact k-nearest-neighbour ground truth, blocked and
//!   parallel.
//!
//! `unsafe` is confined to the architecture leaf modules of [`distance`]
//! (SIMD kernels and the prefetch hint), to [`io`] (io_uring reads into
//! aligned buffers) and to [`memory`]'s huge-page hint.

pub mod cluster;
pub mod collection;
pub mod distance;
pub mod error;
pub mod filter;
pub mod graph;
pub mod ground_truth;
pub mod index;
pub mod io;
pub mod memory;
pub mod quant;
pub mod rng;
pub mod synth;
pub mod synth_attributes;
pub mod vectors;

pub use error::{EngineError, Result};
pub use omen_format::{ElementType, Metric};
