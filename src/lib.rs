//! OmenDB: disk-first vector search for 100M to 1B vectors on one node.
//!
//! This crate is the public facade. It re-exports the layers:
//! [`format`] (bytes on disk) and [`engine`] (algorithms).

// The README's example is compiled as a doctest, so it cannot rot.
#[doc = include_str!("../README.md")]
#[cfg(doctest)]
pub struct ReadmeDoctests;

pub use omen_engine as engine;
pub use omen_format as format;

pub use omen_engine::distance::{Element, Kernels, SimdLevel};
pub use omen_format::{ElementType, Metric};
