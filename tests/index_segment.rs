//! The disk index end to end: build a segment from a synthetic file, open
//! it through every I/O path and check what searches return.

use std::path::Path;

use omendb::engine::ground_truth::{GroundTruthParams, exact_knn};
use omendb::engine::index::{BuildOptions, SearchParams, Segment, SegmentOptions, build_segment};
use omendb::engine::io::{IoMode, IoWait};
use omendb::engine::synth::{SynthConfig, write_dataset};
use omendb::engine::vectors::Widen;
use omendb::format::dataset::{DatasetElement, Neighbors, VectorFile};
use omendb::{ElementType, Metric};

/// Writes a synthetic dataset, builds a segment, returns (segment path,
/// query rows widened, ground truth ids).
fn fixture<T: Widen + DatasetElement>(
    dir: &Path,
    element: ElementType,
    metric: Metric,
    n: u64,
    dim: usize,
    options: &BuildOptions,
) -> (std::path::PathBuf, Vec<Vec<f32>>, Neighbors) {
    let config = SynthConfig {
        n,
        dim,
        queries: 50,
        seed: 7,
        element,
    };
    let summary = write_dataset(&config, dir, &|_| {}).unwrap();
    let base = VectorFile::<T>::open(&summary.base_path).unwrap();
    let queries = VectorFile::<T>::open(&summary.query_path).unwrap();
    let gt = exact_knn(
        base.vectors(),
        queries.vectors(),
        &GroundTruthParams {
            k: 10,
            metric,
            chunk_rows: 4096,
        },
        &|_| {},
    )
    .unwrap();
    let out = dir.join(format!("{element}-{metric}.omen"));
    build_segment(
        &base.row_reader().unwrap(),
        metric,
        &out,
        options,
        &|_, _, _| {},
    )
    .unwrap();
    let qs = (0..queries.len())
        .map(|i| queries.row(i).iter().map(|&x| x.widen()).collect())
        .collect();
    (out, qs, gt)
}

/// The f32, l2 fixture with [`small_options`] that most tests below share.
fn l2_fixture(dir: &Path, n: u64, dim: usize) -> (std::path::PathBuf, Vec<Vec<f32>>, Neighbors) {
    fixture::<f32>(dir, ElementType::F32, Metric::L2, n, dim, &small_options())
}

fn recall(segment: &Segment, queries: &[Vec<f32>], gt: &Neighbors, params: &SearchParams) -> f64 {
    let mut hits = 0usize;
    for (q, query) in queries.iter().enumerate() {
        let (found, _) = segment.search(query, 10, params).unwrap();
        let truth: Vec<i64> = gt.ids(q).iter().map(|&i| i64::from(i)).collect();
        hits += found
            .iter()
            .filter(|h| truth.contains(&(h.id as i64)))
            .count();
    }
    hits as f64 / (queries.len() * 10) as f64
}

/// Recall@10 and the pages read by all queries together.
fn recall_and_pages(
    segment: &Segment,
    queries: &[Vec<f32>],
    gt: &Neighbors,
    params: &SearchParams,
) -> (f64, u32) {
    let pages = queries
        .iter()
        .map(|q| segment.search(q, 10, params).unwrap().1.pages_read)
        .sum();
    (recall(segment, queries, gt, params), pages)
}

fn small_options() -> BuildOptions {
    BuildOptions {
        max_degree: 24,
        list_size: 48,
        upper_degree: 8,
        training_sample: 5000,
        ..BuildOptions::default()
    }
}

/// Every metric and element type; f32 also with `quantized_build` off.
/// The graph of f32 and f16 rows is built on 8-bit copies by default, and
/// the full-precision build must stay as good.
#[test]
fn recall_for_every_metric_and_element_type() {
    let dir = tempfile::tempdir().unwrap();
    let params = SearchParams {
        ef: 64,
        ..SearchParams::default()
    };
    for metric in [Metric::L2, Metric::InnerProduct, Metric::Cosine] {
        let cases: Vec<(ElementType, bool, f64)> = vec![
            (ElementType::F32, true, 0.95),
            (ElementType::F32, false, 0.95),
            (ElementType::F16, true, 0.95),
            (ElementType::U8, true, 0.95),
            (ElementType::I8, true, 0.95),
        ];
        for (element, quantized_build, bound) in cases {
            let case = format!("{element} {metric} quantized_build={quantized_build}");
            let sub = dir
                .path()
                .join(format!("{element}-{metric}-{quantized_build}"));
            std::fs::create_dir_all(&sub).unwrap();
            let options = BuildOptions {
                quantized_build,
                ..small_options()
            };
            let (path, queries, gt) = match element {
                ElementType::F32 => fixture::<f32>(&sub, element, metric, 4000, 32, &options),
                ElementType::F16 => fixture::<half::f16>(&sub, element, metric, 4000, 32, &options),
                ElementType::U8 => fixture::<u8>(&sub, element, metric, 4000, 32, &options),
                ElementType::I8 => fixture::<i8>(&sub, element, metric, 4000, 32, &options),
            };
            let segment = Segment::open(&path, &SegmentOptions::default()).unwrap();
            let r = recall(&segment, &queries, &gt, &params);
            eprintln!("{case}: recall@10 {r:.3} ({})", segment.io_mode());
            assert!(r >= bound, "{case}: recall@10 {r:.3} < {bound}");
        }
    }
}

#[test]
fn exact_when_ef_covers_the_whole_dataset() {
    let dir = tempfile::tempdir().unwrap();
    let (path, queries, gt) = l2_fixture(dir.path(), 600, 16);
    for (io, pipeline) in [
        (IoMode::Mmap, true),
        (IoMode::Direct, true),
        (IoMode::Direct, false),
    ] {
        let segment = open_with(&path, io, 8);
        let params = SearchParams {
            ef: 600,
            beam_width: 8,
            pipeline,
            upper_ef: 8,
            // The early stop would end the search before it covers the set.
            stop_permille: None,
            rerank: 0,
        };
        for (q, query) in queries.iter().enumerate() {
            let (found, stats) = segment.search(query, 10, &params).unwrap();
            let ids: Vec<i32> = found.iter().map(|h| h.id as i32).collect();
            assert_eq!(ids, gt.ids(q), "query {q} via {io}, pipeline {pipeline}");
            for (h, &d) in found.iter().zip(gt.distances(q)) {
                assert!(
                    (h.distance - d).abs() <= 1e-3 * d.abs().max(1.0),
                    "query {q}: {} vs {d}",
                    h.distance
                );
            }
            assert!(stats.pages_read > 0 && stats.bytes_read == u64::from(stats.pages_read) * 4096);
        }
    }
}

/// Pages are put in hand in request order, whatever order the device
/// completes them in, so a query's walk is a function of its data alone:
/// io_uring (several reads in flight, completing in any order, waited for
/// asleep or spinning) and the page cache (every read complete at the first
/// wait) read the same pages and return the same hits.
#[test]
fn the_walk_does_not_depend_on_io_timing() {
    let dir = tempfile::tempdir().unwrap();
    let (path, queries, _) = l2_fixture(dir.path(), 3000, 24);
    let depth = SegmentOptions::default().queue_depth;
    let mmap = open_with(&path, IoMode::Mmap, depth);
    let direct = open_with(&path, IoMode::Direct, depth);
    let spinning = open_spinning(&path, depth);
    assert_eq!(spinning.io_wait(), IoWait::Spin);
    for beam_width in [2, 4, 8] {
        let params = SearchParams {
            ef: 24,
            beam_width,
            ..SearchParams::default()
        };
        for (q, query) in queries.iter().enumerate() {
            let (b, sb) = mmap.search(query, 10, &params).unwrap();
            for (segment, wait) in [(&direct, "sleeping"), (&spinning, "spinning")] {
                let (a, sa) = segment.search(query, 10, &params).unwrap();
                assert_eq!(a, b, "query {q}, beam {beam_width}, {wait}");
                assert_eq!(
                    (sa.pages_read, sa.code_distances, sa.exact_distances),
                    (sb.pages_read, sb.code_distances, sb.exact_distances),
                    "query {q}, beam {beam_width}, {wait}"
                );
            }
        }
    }
}

/// The time a query spends submitting reads and waiting for pages is
/// measured inside the query: never more than the query's own time, and
/// not zero once a page had to be waited for (or, through io_uring,
/// handed to the kernel).
#[test]
fn time_waiting_for_pages_is_part_of_the_query_time() {
    let dir = tempfile::tempdir().unwrap();
    let (path, queries, _) = l2_fixture(dir.path(), 3000, 24);
    let depth = SegmentOptions::default().queue_depth;
    for (mode, spin) in [
        (IoMode::Direct, false),
        (IoMode::Direct, true),
        (IoMode::Mmap, false),
    ] {
        let segment = if spin {
            open_spinning(&path, depth)
        } else {
            open_with(&path, mode, depth)
        };
        for query in &queries {
            let started = std::time::Instant::now();
            let (_, stats) = segment.search(query, 10, &SearchParams::default()).unwrap();
            let elapsed = u64::try_from(started.elapsed().as_nanos()).unwrap();
            assert!(stats.pages_read > 0, "{mode:?} (spin {spin}): {stats:?}");
            assert!(
                stats.wait_nanos + stats.submit_nanos <= elapsed,
                "{mode:?} (spin {spin}): {stats:?} in a query of {elapsed} ns"
            );
            // Through mmap every group is handed over at a wait; through
            // io_uring, at least the first read must be waited for.
            assert!(
                stats.rounds > 0 && stats.wait_nanos > 0,
                "{mode:?} (spin {spin}): {stats:?}"
            );
            // Only io_uring hands reads over before it waits for them.
            match mode {
                IoMode::Mmap => assert_eq!(stats.submit_nanos, 0, "{stats:?}"),
                _ => assert!(stats.submit_nanos > 0, "{stats:?}"),
            }
        }
    }
}

/// A beam wider than the segment's ring holds is capped to what fits, not
/// refused: it walks exactly as the widest beam that fits.
#[test]
fn a_beam_wider_than_the_ring_is_capped() {
    let dir = tempfile::tempdir().unwrap();
    let (path, queries, _) = l2_fixture(dir.path(), 2000, 16);
    let segment = open_with(&path, IoMode::Direct, 4);
    let fits = SearchParams {
        ef: 32,
        beam_width: 4,
        ..SearchParams::default()
    };
    let wide = SearchParams {
        beam_width: 64,
        ..fits
    };
    for query in &queries {
        let (a, sa) = segment.search(query, 10, &wide).unwrap();
        let (b, sb) = segment.search(query, 10, &fits).unwrap();
        assert_eq!(a, b);
        assert_eq!(sa.pages_read, sb.pages_read);
    }
}

/// The early stop measures "farther" from the `ef / 4`-th best exact
/// distance (the `k`-th for small `ef`), so a larger `ef` still buys
/// recall instead of stopping where the `k`-th best says.
#[test]
fn larger_ef_reads_further_under_the_early_stop() {
    let dir = tempfile::tempdir().unwrap();
    let (path, queries, gt) = l2_fixture(dir.path(), 4000, 32);
    let segment = Segment::open(&path, &SegmentOptions::default()).unwrap();
    let mut rows = Vec::new();
    for ef in [32, 256] {
        let params = SearchParams {
            ef,
            ..SearchParams::default()
        };
        assert!(params.stop_permille.is_some(), "the default stops early");
        let (r, pages) = recall_and_pages(&segment, &queries, &gt, &params);
        eprintln!("ef {ef}: recall@10 {r:.4}, {pages} pages");
        rows.push((r, pages));
    }
    let [(small_recall, small_pages), (large_recall, large_pages)] = rows[..] else {
        unreachable!()
    };
    assert!(
        large_pages >= 2 * small_pages,
        "ef 256 read {large_pages} pages, ef 32 read {small_pages}"
    );
    assert!(
        large_recall >= small_recall && large_recall >= 0.99,
        "{large_recall} vs {small_recall}"
    );
}

#[test]
fn early_stop_reads_less_and_keeps_recall() {
    let dir = tempfile::tempdir().unwrap();
    let (path, queries, gt) = l2_fixture(dir.path(), 4000, 32);
    let segment = Segment::open(&path, &SegmentOptions::default()).unwrap();
    let mut rows = Vec::new();
    for stop_permille in [None, Some(70), Some(0)] {
        let params = SearchParams {
            ef: 64,
            stop_permille,
            ..SearchParams::default()
        };
        let (r, pages) = recall_and_pages(&segment, &queries, &gt, &params);
        eprintln!("stop {stop_permille:?}: recall@10 {r:.3}, {pages} pages");
        rows.push((r, pages));
    }
    let [
        (full_recall, full_pages),
        (stop_recall, stop_pages),
        (tight_recall, tight_pages),
    ] = rows[..]
    else {
        unreachable!()
    };
    assert!(
        stop_pages < full_pages,
        "{stop_pages} vs {full_pages} pages"
    );
    assert!(
        tight_pages <= stop_pages,
        "{tight_pages} vs {stop_pages} pages"
    );
    assert!(
        stop_recall >= full_recall - 0.03,
        "{stop_recall} vs {full_recall}"
    );
    assert!(stop_recall >= 0.9 && tight_recall <= stop_recall + 1e-9);
}

#[test]
fn rerank_adds_one_round_and_never_loses_what_the_walk_found() {
    let dir = tempfile::tempdir().unwrap();
    // One build thread, so that the graph, and with it the walk's misses
    // that the rerank is there to recover, is the same on every run.
    let (path, queries, gt) = rayon::ThreadPoolBuilder::new()
        .num_threads(1)
        .build()
        .unwrap()
        .install(|| l2_fixture(dir.path(), 4000, 32));
    let segment = open_mmap(&path);
    // A tight walk (the stop at the k-th distance itself, one read per
    // round) leaves good candidates unread, which is what the rerank batch
    // is for.
    let walk = SearchParams {
        ef: 10,
        beam_width: 1,
        stop_permille: Some(1),
        ..SearchParams::default()
    };
    let reranked = SearchParams { rerank: 40, ..walk };
    assert_eq!(SearchParams::default().rerank, 0, "off by default");
    for query in &queries {
        let (plain, before) = segment.search(query, 10, &walk).unwrap();
        let (more, after) = segment.search(query, 10, &reranked).unwrap();
        // The walk is the same; the batch adds at most one round and at
        // most `rerank` pages, and only adds exact distances.
        assert!(
            after.rounds == before.rounds || after.rounds == before.rounds + 1,
            "{before:?} vs {after:?}"
        );
        assert!(after.pages_read >= before.pages_read);
        assert!(after.pages_read - before.pages_read <= 40);
        assert_eq!(after.code_distances, before.code_distances);
        assert_eq!(more.len(), plain.len());
        for (m, p) in more.iter().zip(&plain) {
            assert!(m.distance <= p.distance, "{m:?} vs {p:?}");
        }
    }
    let r0 = recall(&segment, &queries, &gt, &walk);
    let r40 = recall(&segment, &queries, &gt, &reranked);
    eprintln!("tight walk: recall@10 {r0:.3}, with rerank 40: {r40:.3}");
    assert!(
        r0 < 1.0,
        "the walk must miss something for this test to mean anything"
    );
    assert!(r40 > r0, "rerank 40: {r40} vs {r0}");
}

#[test]
fn rerank_as_deep_as_the_set_reads_every_scored_node() {
    let dir = tempfile::tempdir().unwrap();
    let n = 2000;
    // The weak walk below must miss some exact answers, or the rerank has
    // nothing to add: at 400 nodes the graphs of session 17's pruning let it
    // find every one. One build thread: a parallel build may link a few
    // edges differently from run to run.
    let (path, queries, gt) = rayon::ThreadPoolBuilder::new()
        .num_threads(1)
        .build()
        .unwrap()
        .install(|| l2_fixture(dir.path(), n, 16));
    let segment = open_mmap(&path);
    let walk = SearchParams {
        ef: 10,
        beam_width: 1,
        stop_permille: Some(1),
        ..SearchParams::default()
    };
    let deep = SearchParams {
        rerank: n as usize,
        ..walk
    };
    let (mut walk_exact, mut deep_exact) = (0, 0);
    for (q, query) in queries.iter().enumerate() {
        let ids = |params: &SearchParams| -> Vec<i32> {
            let (found, _) = segment.search(query, 10, params).unwrap();
            found.iter().map(|h| h.id as i32).collect()
        };
        let (w, d) = (ids(&walk) == gt.ids(q), ids(&deep) == gt.ids(q));
        // Reading more can only keep an exact answer exact.
        assert!(d || !w, "query {q}: exact without rerank, not with it");
        walk_exact += usize::from(w);
        deep_exact += usize::from(d);
    }
    let r = recall(&segment, &queries, &gt, &deep);
    eprintln!(
        "exact top-10: {walk_exact} of {} by the walk, {deep_exact} with rerank {n} (recall@10 {r:.3})",
        queries.len()
    );
    assert!(deep_exact > walk_exact, "{deep_exact} vs {walk_exact}");
    // Every node the walk scored is read; what remains missing was never
    // reached by the walk at all.
    assert!(r >= 0.99, "recall@10 {r}");
}

#[test]
fn concurrent_searches_match_sequential_ones() {
    let dir = tempfile::tempdir().unwrap();
    let (path, queries, _) = l2_fixture(dir.path(), 3000, 24);
    let segment = Segment::open(&path, &SegmentOptions::default()).unwrap();
    let params = SearchParams::default();
    let sequential: Vec<_> = queries
        .iter()
        .map(|q| segment.search(q, 10, &params).unwrap().0)
        .collect();
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(8)
        .build()
        .unwrap();
    for _ in 0..3 {
        let parallel = pool.install(|| segment.search_batch(&queries, 10, &params));
        for (p, s) in parallel.into_iter().zip(&sequential) {
            assert_eq!(&p.unwrap().0, s);
        }
    }
}

#[test]
fn bad_queries_get_clear_errors() {
    let dir = tempfile::tempdir().unwrap();
    let (path, queries, _) = l2_fixture(dir.path(), 500, 16);
    let segment = Segment::open(&path, &SegmentOptions::default()).unwrap();
    let params = SearchParams::default();
    let err = segment
        .search(&queries[0][..15], 10, &params)
        .unwrap_err()
        .to_string();
    assert!(err.contains("15 dimensions") && err.contains("16"), "{err}");
    let mut nan = queries[0].clone();
    nan[3] = f32::NAN;
    let err = segment.search(&nan, 10, &params).unwrap_err().to_string();
    assert!(err.contains("component 3"), "{err}");
    // The segment keeps serving after bad input.
    assert_eq!(
        segment.search(&queries[0], 10, &params).unwrap().0.len(),
        10
    );
}

#[test]
fn corrupt_node_page_is_detected_at_read() {
    let dir = tempfile::tempdir().unwrap();
    let (path, queries, _) = l2_fixture(dir.path(), 500, 16);
    let mut bytes = std::fs::read(&path).unwrap();
    let file = omendb::format::segment::SegmentFile::open(&path, Default::default()).unwrap();
    let nodes = *file
        .section(omendb::format::segment::SectionKind::NODES)
        .unwrap();
    drop(file);
    // Damage every node page: whichever page a search reads first fails.
    for p in 0..nodes.pages() {
        bytes[(nodes.offset + p * 4096 + 100) as usize] ^= 0x20;
    }
    let bad = dir.path().join("bad.omen");
    std::fs::write(&bad, &bytes).unwrap();
    let segment = Segment::open(&bad, &SegmentOptions::default()).unwrap();
    let err = segment
        .search(&queries[0], 10, &SearchParams::default())
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("bad.omen") && err.contains("checksum mismatch"),
        "{err}"
    );

    // A flipped bit in RAM-loaded sections is caught at open.
    let codes = {
        let f = omendb::format::segment::SegmentFile::open(&path, Default::default()).unwrap();
        *f.section(omendb::format::segment::SectionKind::CODES)
            .unwrap()
    };
    let mut bytes = std::fs::read(&path).unwrap();
    bytes[codes.offset as usize + 3] ^= 1;
    std::fs::write(&bad, &bytes).unwrap();
    let err = Segment::open(&bad, &SegmentOptions::default())
        .unwrap_err()
        .to_string();
    assert!(err.contains("codes") && err.contains("checksum"), "{err}");
}

/// Opens `path` read through the page cache, so that a test runs the same
/// wherever io_uring or O_DIRECT is missing.
fn open_mmap(path: &std::path::Path) -> Segment {
    open_with(path, IoMode::Mmap, SegmentOptions::default().queue_depth)
}

/// Opens `path` for io_uring reads waited for by spinning.
fn open_spinning(path: &std::path::Path, queue_depth: usize) -> Segment {
    Segment::open(
        path,
        &SegmentOptions {
            io: IoMode::Direct,
            io_wait: IoWait::Spin,
            queue_depth,
            ..SegmentOptions::default()
        },
    )
    .unwrap()
}

/// Opens `path` with the I/O path and the ring depth (reads in flight) a
/// test needs.
fn open_with(path: &std::path::Path, io: IoMode, queue_depth: usize) -> Segment {
    Segment::open(
        path,
        &SegmentOptions {
            io,
            queue_depth,
            ..SegmentOptions::default()
        },
    )
    .unwrap()
}
