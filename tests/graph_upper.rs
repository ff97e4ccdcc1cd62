//! The RAM-resident upper layers: level statistics, descent quality, and a
//! strict decoder (round trip, every truncation, hostile bytes).

mod graph_common;

use std::path::Path;

use graph_common::dataset;
use omendb::Metric;
use omendb::engine::EngineError;
use omendb::engine::distance::Kernels;
use omendb::engine::graph::upper::{HEADER_LEN, level_of};
use omendb::engine::graph::{BuildParams, UpperLayers, UpperParams, block_order, build_graph};
use omendb::engine::vectors::{FlatVectors, VectorSet};
use omendb::format::FormatError;
use proptest::prelude::*;

const DIM: usize = 16;

fn small_layers(n: usize, m: usize) -> (Vec<f32>, UpperLayers) {
    let (base, _) = dataset::<f32>(21, n, 1, DIM);
    let set = FlatVectors::new(&base, DIM).unwrap();
    let upper = UpperLayers::build(&set, Metric::L2, &UpperParams::new(m)).unwrap();
    (base, upper)
}

fn assert_corrupt(r: Result<UpperLayers, EngineError>, offset_limit: u64) {
    match r {
        Err(EngineError::Format(FormatError::Corrupt { offset, path, .. })) => {
            assert_eq!(path, Path::new("seg"));
            assert!(
                (1000..=1000 + offset_limit).contains(&offset),
                "offset {offset}"
            );
        }
        other => panic!("expected corruption, got {other:?}"),
    }
}

#[test]
fn levels_follow_the_geometric_law() {
    let n = 200_000u32;
    let m = 16;
    let at_least_1 = (0..n).filter(|&i| level_of(i, m, 1) >= 1).count() as f64;
    let at_least_2 = (0..n).filter(|&i| level_of(i, m, 1) >= 2).count() as f64;
    let expect1 = f64::from(n) / m as f64;
    assert!(
        (at_least_1 - expect1).abs() < 0.05 * expect1,
        "{at_least_1} vs {expect1}"
    );
    let expect2 = expect1 / m as f64;
    assert!(
        (at_least_2 - expect2).abs() < 0.2 * expect2,
        "{at_least_2} vs {expect2}"
    );
}

#[test]
fn descent_finds_a_near_entry_and_layers_nest() {
    let n = 8000;
    let (base, upper) = small_layers(n, 8);
    let set = FlatVectors::new(&base, DIM).unwrap();
    assert!(upper.levels() >= 2, "{} levels", upper.levels());
    for l in 2..=upper.levels() {
        for g in upper.nodes(l) {
            assert!(upper.nodes(l - 1).binary_search(g).is_ok());
        }
    }
    let bytes_per_vector = upper.heap_bytes() as f64 / n as f64;
    eprintln!(
        "levels {}, level-1 nodes {}, {bytes_per_vector:.2} B per base vector",
        upper.levels(),
        upper.nodes(1).len()
    );
    assert!(bytes_per_vector < 8.0);
    // The descent's best entry should be closer to the query than 95% of
    // the base set (it searches ~n/M nodes).
    let (_, queries) = dataset::<f32>(21, n, 50, DIM);
    let kern = Kernels::<f32>::best();
    let mut ranks = Vec::new();
    for q in queries.chunks(DIM) {
        let mut scored = 0usize;
        let mut dist = |id: u32| {
            scored += 1;
            kern.distance(Metric::L2, q, set.get(id as usize))
        };
        let entries = upper.descend(&mut dist, &|_| {}, 8);
        assert!(!entries.is_empty() && entries.len() <= 8);
        assert!(entries.windows(2).all(|w| w[0].distance <= w[1].distance));
        assert!(scored < n / 4, "scored {scored}");
        let best = entries[0].distance;
        let closer = (0..n)
            .filter(|&i| kern.distance(Metric::L2, q, set.get(i)) < best)
            .count();
        ranks.push(closer as f64 / n as f64);
    }
    let mean = ranks.iter().sum::<f64>() / ranks.len() as f64;
    assert!(mean < 0.05, "mean rank fraction {mean}");
}

/// A segment build hands the builder only the rows of the tall nodes; the
/// layers must be those built from every vector (same seeds, one thread).
#[test]
fn layers_from_the_tall_rows_alone_equal_layers_from_all_rows() {
    let (base, _) = dataset::<f32>(22, 5000, 1, DIM);
    let set = FlatVectors::new(&base, DIM).unwrap();
    let params = UpperParams::new(6);
    let tall = UpperLayers::tall_ids(set.len(), &params);
    assert!(
        tall.len() > 5000 / 12 && tall.len() < 5000 / 3,
        "{}",
        tall.len()
    );
    assert!(tall.windows(2).all(|w| w[0] < w[1]));
    let rows: Vec<f32> = tall
        .iter()
        .flat_map(|&i| set.get(i as usize).iter().copied())
        .collect();
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(1)
        .build()
        .unwrap();
    let (whole, sparse) = pool.install(|| {
        let tall_rows = FlatVectors::new(&rows, DIM).unwrap();
        (
            UpperLayers::build(&set, Metric::L2, &params).unwrap(),
            UpperLayers::build_from_tall_rows(&tall_rows, set.len(), Metric::L2, &params).unwrap(),
        )
    });
    assert!(whole.levels() >= 2);
    assert_eq!(sparse, whole);
    // Rows that do not match the tall nodes are refused, not misread.
    let short = FlatVectors::new(&rows[DIM..], DIM).unwrap();
    assert!(matches!(
        UpperLayers::build_from_tall_rows(&short, set.len(), Metric::L2, &params),
        Err(EngineError::InvalidArgument(_))
    ));
}

#[test]
fn round_trip_relabel_and_empty() {
    let (base, upper) = small_layers(3000, 6);
    let bytes = upper.to_bytes();
    assert_eq!(
        UpperLayers::from_bytes(&bytes, Path::new("seg"), 1000).unwrap(),
        upper
    );
    // Relabelling by a block order keeps the structure and round-trips.
    let set = FlatVectors::new(&base, DIM).unwrap();
    let g = build_graph(&set, Metric::L2, &BuildParams::vamana(8, 16), &|_, _| {}).unwrap();
    let perm = block_order(&g, 4);
    let moved = upper.relabel(&perm);
    assert_eq!(moved.levels(), upper.levels());
    let old_top = upper.entry().unwrap();
    assert_eq!(moved.entry(), Some(perm.old_to_new[old_top as usize]));
    let nb_old = upper.neighbours(1, upper.nodes(1)[0]).unwrap();
    let nb_new = moved
        .neighbours(1, perm.old_to_new[upper.nodes(1)[0] as usize])
        .unwrap();
    let mapped: Vec<u32> = nb_old
        .iter()
        .map(|&v| perm.old_to_new[v as usize])
        .collect();
    assert_eq!(mapped, nb_new);
    let again = UpperLayers::from_bytes(&moved.to_bytes(), Path::new("seg"), 0).unwrap();
    assert_eq!(again, moved);
    // A set too small for any level above 0 encodes as a bare header.
    let one = [1.0f32; DIM];
    let tiny = UpperLayers::build(
        &FlatVectors::new(&one, DIM).unwrap(),
        Metric::L2,
        &UpperParams::new(64),
    )
    .unwrap();
    let b = tiny.to_bytes();
    if tiny.levels() == 0 {
        assert_eq!(b.len(), HEADER_LEN);
        assert!(tiny.descend(&mut |_| 0.0, &|_| {}, 4).is_empty());
    }
    assert_eq!(
        UpperLayers::from_bytes(&b, Path::new("seg"), 0).unwrap(),
        tiny
    );
}

#[test]
fn every_truncation_is_corrupt() {
    let (_, upper) = small_layers(1500, 4);
    let bytes = upper.to_bytes();
    for len in 0..bytes.len() {
        assert_corrupt(
            UpperLayers::from_bytes(&bytes[..len], Path::new("seg"), 1000),
            bytes.len() as u64,
        );
    }
    let mut long = bytes.clone();
    long.extend_from_slice(&[0, 0, 0, 0]);
    assert_corrupt(
        UpperLayers::from_bytes(&long, Path::new("seg"), 1000),
        long.len() as u64,
    );
}

#[test]
fn named_corruptions_are_caught_at_their_offset() {
    let (_, upper) = small_layers(1500, 4);
    let bytes = upper.to_bytes();
    let c1 = u32::from_le_bytes(bytes[32..36].try_into().unwrap()) as usize;
    let cases: Vec<(&str, usize, Vec<u8>)> = vec![
        ("magic", 0, b"XUPL".to_vec()),
        ("version", 4, 2u16.to_le_bytes().to_vec()),
        ("degree zero", 6, 0u16.to_le_bytes().to_vec()),
        ("levels", 8, 65u32.to_le_bytes().to_vec()),
        ("entry", 12, 0xFFFF_FFF0u32.to_le_bytes().to_vec()),
        ("reserved", 24, vec![1]),
        ("count zero", 32, 0u32.to_le_bytes().to_vec()),
        ("first node huge", 40, 0xFFFF_FFF0u32.to_le_bytes().to_vec()),
        ("degree above M", 40 + 4 * c1, 9u16.to_le_bytes().to_vec()),
    ];
    for (name, at, patch) in cases {
        let mut b = bytes.clone();
        b[at..at + patch.len()].copy_from_slice(&patch);
        match UpperLayers::from_bytes(&b, Path::new("seg"), 1000) {
            Err(EngineError::Format(FormatError::Corrupt { offset, .. })) => {
                assert!(
                    offset >= 1000 && offset <= 1000 + b.len() as u64,
                    "{name}: offset {offset}"
                );
            }
            other => panic!("{name}: {other:?}"),
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, failure_persistence: None, ..ProptestConfig::default() })]

    #[test]
    fn random_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..512)) {
        let _ = UpperLayers::from_bytes(&bytes, Path::new("seg"), 0);
    }

    #[test]
    fn random_bytes_after_a_valid_header_never_panic(
        tail in proptest::collection::vec(any::<u8>(), 0..512),
        levels in 0u32..4,
        m in 1u16..8,
    ) {
        let mut b = Vec::new();
        b.extend_from_slice(b"OUPL");
        b.extend_from_slice(&1u16.to_le_bytes());
        b.extend_from_slice(&m.to_le_bytes());
        b.extend_from_slice(&levels.to_le_bytes());
        b.extend_from_slice(&0u32.to_le_bytes());
        b.extend_from_slice(&64u64.to_le_bytes());
        b.extend_from_slice(&[0; 8]);
        b.extend_from_slice(&tail);
        let _ = UpperLayers::from_bytes(&b, Path::new("seg"), 0);
    }

    #[test]
    fn flipped_bytes_decode_or_fail_cleanly(seed in 0usize..10_000, flip in 1u8..=255) {
        let (_, upper) = small_layers(400, 4);
        let mut b = upper.to_bytes();
        let at = seed % b.len();
        b[at] ^= flip;
        if let Ok(d) = UpperLayers::from_bytes(&b, Path::new("seg"), 0) {
            // Whatever decodes re-encodes to the same bytes.
            prop_assert_eq!(d.to_bytes(), b);
        }
    }
}
