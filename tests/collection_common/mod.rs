//! Helpers shared by the collection tests: small, fast build settings and
//! deterministic vectors.

#![allow(dead_code)]

use std::collections::BTreeMap;

use omendb::engine::collection::{Collection, CollectionOptions, Durability};
use omendb::engine::index::BuildOptions;
use omendb::engine::rng::SplitMix64;

/// Options that keep flushes and compactions quick in tests.
pub fn small_options(memtable_rows: usize) -> CollectionOptions {
    CollectionOptions {
        durability: Durability::PerCommit,
        memtable_rows,
        auto_compact: false,
        build: BuildOptions {
            max_degree: 16,
            list_size: 32,
            upper_degree: 8,
            memory_budget: 256 << 20,
            ..BuildOptions::default()
        },
        ..CollectionOptions::default()
    }
}

/// The vector of `id` at `version`: distinct per (id, version).
pub fn vector(id: u64, version: u64, dim: usize) -> Vec<f32> {
    let mut rng = SplitMix64::new(id.wrapping_mul(0x9E37_79B9).wrapping_add(version));
    (0..dim).map(|_| rng.uniform() as f32 * 10.0).collect()
}

/// Vectors of `ids` at `version`, back to back.
pub fn vectors(ids: &[u64], version: u64, dim: usize) -> Vec<f32> {
    ids.iter()
        .flat_map(|&id| vector(id, version, dim))
        .collect()
}

/// Every live row of `c` (id to stored vector), as a full scan sees it.
pub fn live(c: &Collection) -> BTreeMap<u64, Vec<f32>> {
    let mut out = BTreeMap::new();
    c.scan_live(&mut |id, v, _| {
        out.insert(id, v.to_vec());
    })
    .unwrap();
    out
}
