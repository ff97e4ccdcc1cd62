//! Flat indexes (SPEC.md §2.5.3): a segment without a graph, searched by
//! scoring every code and reranking the best with full vectors. What a
//! collection flushes; these tests check it on its own.

use std::path::{Path, PathBuf};

use omendb::engine::index::{
    BuildOptions, MemoryRows, SearchParams, Segment, SegmentOptions, build_flat_segment,
    build_segment,
};
use omendb::engine::rng::SplitMix64;
use omendb::format::checksum::Checksum;
use omendb::format::segment::layout::INCOMPAT_FLAT_INDEX;
use omendb::format::segment::{SectionKind, SegmentFile};
use omendb::{Metric, format::FormatError};

const DIM: usize = 16;

/// `n` clustered vectors and keys `1000 + 3·row` (keys are not row numbers).
fn rows(n: usize, seed: u64) -> (Vec<u64>, Vec<f32>) {
    let mut rng = SplitMix64::new(seed);
    let centres: Vec<f32> = (0..8 * DIM).map(|_| rng.uniform() as f32 * 20.0).collect();
    let mut vectors = Vec::with_capacity(n * DIM);
    for i in 0..n {
        let c = &centres[(i % 8) * DIM..(i % 8 + 1) * DIM];
        vectors.extend(c.iter().map(|&x| x + rng.uniform() as f32 * 4.0));
    }
    let ids = (0..n as u64).map(|r| 1000 + 3 * r).collect();
    (ids, vectors)
}

fn options() -> BuildOptions {
    BuildOptions {
        max_degree: 16,
        list_size: 32,
        upper_degree: 8,
        training_sample: 2000,
        memory_budget: 256 << 20,
        ..BuildOptions::default()
    }
}

fn build(dir: &Path, name: &str, ids: &[u64], vectors: &[f32], flat: bool) -> PathBuf {
    let path = dir.join(name);
    let input = MemoryRows {
        dim: DIM,
        vectors,
        ids,
        label: "test rows",
    };
    if flat {
        build_flat_segment(&input, Metric::L2, &path, &options(), &|_, _, _| {}).unwrap();
    } else {
        build_segment(&input, Metric::L2, &path, &options(), &|_, _, _| {}).unwrap();
    }
    path
}

fn l2(a: &[f32], b: &[f32]) -> f32 {
    a.iter().zip(b).map(|(x, y)| (x - y) * (x - y)).sum()
}

/// The `k` nearest `(key, distance)` among rows that `keep` accepts.
fn brute_force(
    ids: &[u64],
    vectors: &[f32],
    q: &[f32],
    k: usize,
    keep: impl Fn(u64) -> bool,
) -> Vec<(u64, f32)> {
    let mut all: Vec<(u64, f32)> = ids
        .iter()
        .enumerate()
        .filter(|(_, id)| keep(**id))
        .map(|(r, &id)| (id, l2(q, &vectors[r * DIM..(r + 1) * DIM])))
        .collect();
    all.sort_by(|a, b| a.1.total_cmp(&b.1).then(a.0.cmp(&b.0)));
    all.truncate(k);
    all
}

#[test]
fn flat_segment_returns_exact_results() {
    let dir = tempfile::tempdir().unwrap();
    let n = 1500;
    let (ids, vectors) = rows(n, 5);
    let path = build(dir.path(), "flat.omen", &ids, &vectors, true);
    let segment = Segment::open(&path, &SegmentOptions::default()).unwrap();
    assert!(segment.is_flat());
    assert_eq!(segment.len(), n);
    assert_eq!(segment.max_degree(), 0);
    // Rows stay in input order: row r holds key 1000 + 3r.
    assert_eq!(segment.read_row(7).unwrap().0, 1021);

    // With every row reranked (4 · ef ≥ n, no early stop) the scan is exact.
    let covering = SearchParams {
        ef: n.div_ceil(4),
        stop_permille: None,
        ..SearchParams::default()
    };
    let (_, queries) = rows(40, 99);
    let mut found_default = 0usize;
    for q in queries.chunks_exact(DIM) {
        let truth = brute_force(&ids, &vectors, q, 10, |_| true);
        let (hits, stats) = segment.search(q, 10, &covering).unwrap();
        let got: Vec<u64> = hits.iter().map(|h| h.id).collect();
        let want: Vec<u64> = truth.iter().map(|t| t.0).collect();
        assert_eq!(got, want);
        for (h, t) in hits.iter().zip(&truth) {
            assert!((h.distance - t.1).abs() <= 1e-3 * t.1.max(1.0));
        }
        assert_eq!(stats.code_distances as usize, n, "every code is scored");

        // A row filter: only odd keys; the scan reads past rejected rows.
        let truth_odd = brute_force(&ids, &vectors, q, 10, |id| id % 2 == 1);
        let odd = |_row: u32, id: u64| id % 2 == 1;
        let (hits, _) = segment.search_with(q, 10, &covering, &odd).unwrap();
        let got: Vec<u64> = hits.iter().map(|h| h.id).collect();
        let want: Vec<u64> = truth_odd.iter().map(|t| t.0).collect();
        assert_eq!(got, want);

        // Default parameters rerank 4 · ef candidates: near exact.
        let (hits, _) = segment.search(q, 10, &SearchParams::default()).unwrap();
        found_default += hits.iter().filter(|h| want_has(&truth, h.id)).count();
    }
    let recall = found_default as f64 / (40 * 10) as f64;
    assert!(recall >= 0.95, "recall@10 with default parameters {recall}");
}

fn want_has(truth: &[(u64, f32)], id: u64) -> bool {
    truth.iter().any(|t| t.0 == id)
}

/// Rewrites the superblock's incompat features of `path` into `out`, with
/// its checksum recomputed, so only the flag is inconsistent.
fn with_incompat_features(path: &Path, out: &Path, features: u64) {
    let mut bytes = std::fs::read(path).unwrap();
    bytes[16..24].copy_from_slice(&features.to_le_bytes());
    let sum = Checksum::of(&bytes[..4088]).0;
    bytes[4088..4096].copy_from_slice(&sum.to_le_bytes());
    std::fs::write(out, bytes).unwrap();
}

/// Sets index-header byte `at` of `path` to `value` in `out`, with the
/// section, directory and superblock checksums recomputed.
fn with_index_header_byte(path: &Path, out: &Path, at: usize, value: u8) {
    let file = SegmentFile::open(path, Default::default()).unwrap();
    let section = *file.section(SectionKind::INDEX_HEADER).unwrap();
    drop(file);
    let mut bytes = std::fs::read(path).unwrap();
    let dir_offset = u64::from_le_bytes(bytes[80..88].try_into().unwrap()) as usize;
    let dir_len = u64::from_le_bytes(bytes[88..96].try_into().unwrap()) as usize;
    let start = section.offset as usize;
    bytes[start + at] = value;
    let extent = (section.stored_len as usize).next_multiple_of(4096);
    let sum = Checksum::of(&bytes[start..start + extent]).0;
    // The directory entry whose offset is this section's holds its checksum.
    let entry = (0..dir_len / 64)
        .map(|i| dir_offset + 64 * i)
        .find(|&e| u64::from_le_bytes(bytes[e + 8..e + 16].try_into().unwrap()) == section.offset)
        .unwrap();
    bytes[entry + 32..entry + 40].copy_from_slice(&sum.to_le_bytes());
    let dir_extent = dir_len.next_multiple_of(4096);
    let dir_sum = Checksum::of(&bytes[dir_offset..dir_offset + dir_extent]).0;
    bytes[96..104].copy_from_slice(&dir_sum.to_le_bytes());
    let sum = Checksum::of(&bytes[..4088]).0;
    bytes[4088..4096].copy_from_slice(&sum.to_le_bytes());
    std::fs::write(out, bytes).unwrap();
}

fn open_error(path: &Path) -> String {
    let err = Segment::open(path, &SegmentOptions::default()).unwrap_err();
    assert!(
        matches!(
            err,
            omendb::engine::EngineError::Format(FormatError::Corrupt { .. })
        ),
        "not a corruption error: {err:?}"
    );
    err.to_string()
}

#[test]
fn inconsistent_flat_flags_are_typed_errors() {
    let dir = tempfile::tempdir().unwrap();
    let (ids, vectors) = rows(300, 6);
    let flat = build(dir.path(), "flat.omen", &ids, &vectors, true);
    let graph = build(dir.path(), "graph.omen", &ids, &vectors, false);
    let bad = dir.path().join("bad.omen");

    // The checksum helpers are right: unchanged bytes still open.
    with_incompat_features(&flat, &bad, INCOMPAT_FLAT_INDEX);
    assert!(
        Segment::open(&bad, &SegmentOptions::default())
            .unwrap()
            .is_flat()
    );
    with_index_header_byte(&graph, &bad, 24, 1);
    assert!(
        !Segment::open(&bad, &SegmentOptions::default())
            .unwrap()
            .is_flat()
    );

    // A flat index whose superblock lost the feature bit.
    with_incompat_features(&flat, &bad, 0);
    let err = open_error(&bad);
    assert!(err.contains("bad.omen") && err.contains("flat"), "{err}");

    // A graph whose superblock claims a flat index.
    with_incompat_features(&graph, &bad, INCOMPAT_FLAT_INDEX);
    let err = open_error(&bad);
    assert!(err.contains("flat") && err.contains("builder 1"), "{err}");

    // A graph whose index header claims builder 3 (flat).
    with_index_header_byte(&graph, &bad, 24, 3);
    let err = open_error(&bad);
    assert!(err.contains("builder 3"), "{err}");

    // A flat index whose header claims neighbour slots.
    with_index_header_byte(&flat, &bad, 8, 4);
    let err = open_error(&bad);
    assert!(err.contains("R = 4 in a flat index"), "{err}");

    // An unknown incompatible bit is still refused as a newer version.
    with_incompat_features(&graph, &bad, 2);
    let err = Segment::open(&bad, &SegmentOptions::default()).unwrap_err();
    assert!(
        matches!(
            err,
            omendb::engine::EngineError::Format(FormatError::IncompatibleVersion { .. })
        ),
        "{err:?}"
    );
}

/// The released flat-index layout (SPEC.md §2.5.7, §2.8) keeps opening:
/// a fixture written once by `build_flat_segment` (regenerate with
/// `OMEN_REGENERATE_FIXTURES=1`; the old file must keep passing first).
#[test]
fn flat_index_fixture_opens_and_answers() {
    let fixture = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("format/tests/fixtures/v1.0-flat-index-f32-4d-10.omen");
    let vector = |r: u64| -> Vec<f32> { (0..4).map(|j| (r * 4 + j) as f32 * 0.5).collect() };
    if std::env::var_os("OMEN_REGENERATE_FIXTURES").is_some() {
        let ids: Vec<u64> = (0..10).map(|r| 100 + r).collect();
        let vectors: Vec<f32> = (0..10).flat_map(vector).collect();
        let input = MemoryRows {
            dim: 4,
            vectors: &vectors,
            ids: &ids,
            label: "fixture",
        };
        build_flat_segment(&input, Metric::L2, &fixture, &options(), &|_, _, _| {}).unwrap();
    }
    let file = SegmentFile::open(
        &fixture,
        omendb::format::segment::OpenOptions {
            verify: omendb::format::segment::Verify::Full,
        },
    )
    .unwrap();
    assert_eq!(file.info().incompat_features, INCOMPAT_FLAT_INDEX);
    drop(file);
    let segment = Segment::open(&fixture, &SegmentOptions::default()).unwrap();
    assert!(segment.is_flat());
    let params = SearchParams {
        stop_permille: None,
        ..SearchParams::default()
    };
    for r in 0..10 {
        let hits = segment.search(&vector(r), 3, &params).unwrap().0;
        assert_eq!((hits[0].id, hits[0].distance), (100 + r, 0.0), "row {r}");
        assert_eq!(hits.len(), 3);
    }
}
