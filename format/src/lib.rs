//! OmenDB's on-disk formats.
//!
//! This crate owns every byte that OmenDB reads from or writes to a file:
//!
//! - [`segment`]: the versioned, checksummed, 4 KiB-aligned segment container
//!   (SPEC.md §2), written by `omen-build` and by flushes and read by search;
//! - [`collection`]: a writable collection's WAL, manifest and id-set files
//!   (SPEC.md §8);
//! - [`attr`]: scalar attribute column types and values, shared by the
//!   WAL, the segment attribute section, filters and SQL;
//! - [`dataset`]: the big-ann-benchmarks and TEXMEX vector and ground-truth
//!   files that segments are built from and benchmarks are scored against.
//!
//! Invariant: nothing here trusts a byte it read. Every parser validates
//! lengths and offsets before it indexes, and reports failures as
//! [`FormatError`] values that name the file and the offset; no input can make
//! it panic or read out of bounds.
//!
//! `unsafe` lives in exactly one module, [`mmap`], which maps read-only files.

#![cfg_attr(not(test), deny(clippy::unwrap_used, clippy::indexing_slicing))]

#[cfg(not(target_endian = "little"))]
compile_error!(
    "OmenDB maps little-endian files straight into memory and supports only little-endian hosts"
);

pub mod atomic;
pub mod attr;
pub mod checksum;
pub mod collection;
pub mod dataset;
pub mod error;
pub mod mmap;
pub mod segment;
pub mod types;

pub use attr::{ColumnSchema, ColumnType, Value};
pub use error::{FormatError, Result};
pub use types::{ElementType, Metric};
