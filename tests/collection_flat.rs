//! Flushes write flat indexes and compaction turns them into graphs
//! (SPEC.md §8.6, §8.7): a collection holding both kinds, the memtable and
//! tombstones in each answers exactly what a brute-force scan of its live
//! rows answers.

mod collection_common;

use std::collections::BTreeMap;

use collection_common::{live, small_options, vectors};
use omendb::Metric;
use omendb::engine::collection::{Collection, Schema, inspect};
use omendb::engine::index::SearchParams;

const DIM: usize = 12;

fn brute_force(rows: &BTreeMap<u64, Vec<f32>>, q: &[f32], k: usize) -> Vec<u64> {
    let mut all: Vec<(f32, u64)> = rows
        .iter()
        .map(|(&id, v)| (v.iter().zip(q).map(|(a, b)| (a - b) * (a - b)).sum(), id))
        .collect();
    all.sort_by(|a, b| a.0.total_cmp(&b.0).then(a.1.cmp(&b.1)));
    all.iter().take(k).map(|&(_, id)| id).collect()
}

/// `(flat, graph)` segment counts as `omen inspect` reports them.
fn shapes(c: &Collection) -> (usize, usize) {
    let i = inspect(c.dir()).unwrap();
    let flat = i.segments.iter().filter(|s| s.flat == Some(true)).count();
    let graph = i.segments.iter().filter(|s| s.flat == Some(false)).count();
    assert_eq!(flat + graph, i.segments.len(), "every superblock readable");
    (flat, graph)
}

#[test]
fn flat_and_graph_segments_merge_exactly() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("c");
    let mut options = small_options(400);
    options.compaction_fanout = 3;
    let schema = Schema::new(DIM, Metric::L2);
    let c = Collection::create(&path, schema, options.clone()).unwrap();

    // Three flushes: three flat segments.
    let ids: Vec<u64> = (0..1200).collect();
    for chunk in ids.chunks(200) {
        c.insert(chunk, &vectors(chunk, 0, DIM), &[]).unwrap();
    }
    c.flush().unwrap();
    assert_eq!(shapes(&c), (3, 0));

    // Compaction merges them into one graph segment.
    assert_eq!(c.compact().unwrap(), 1);
    assert_eq!(shapes(&c), (0, 1));

    // Upserts and deletes of rows in the graph, new rows, one more flush:
    // a flat segment beside the graph, tombstones in the graph.
    let moved: Vec<u64> = (0..1200).step_by(7).collect();
    c.upsert(&moved, &vectors(&moved, 1, DIM), &[]).unwrap();
    let gone: Vec<u64> = (3..1200).step_by(11).collect();
    c.delete(&gone).unwrap();
    let fresh: Vec<u64> = (5000..5300).collect();
    c.insert(&fresh, &vectors(&fresh, 0, DIM), &[]).unwrap();
    c.flush().unwrap();
    assert_eq!(shapes(&c), (1, 1));
    // And rows in the memtable only.
    let recent: Vec<u64> = (9000..9050).collect();
    c.insert(&recent, &vectors(&recent, 0, DIM), &[]).unwrap();
    let upd: Vec<u64> = (5000..5300).step_by(13).collect();
    c.upsert(&upd, &vectors(&upd, 2, DIM), &[]).unwrap();

    let check = |c: &Collection| {
        let rows = live(c);
        let params = SearchParams {
            ef: 2000,
            stop_permille: None,
            ..SearchParams::default()
        };
        for q in 0..30u64 {
            // Queries at existing rows of every part, and off-data points.
            let query = match q % 3 {
                0 => vectors(&[q * 37 % 1200], 1, DIM),
                1 => vectors(&[5000 + q], 2, DIM),
                _ => vectors(&[100_000 + q], 0, DIM),
            };
            let want = brute_force(&rows, &query, 10);
            let got: Vec<u64> = c
                .search(&query, 10, &params)
                .unwrap()
                .iter()
                .map(|h| h.id)
                .collect();
            assert_eq!(got, want, "query {q}");
        }
        rows
    };
    let before = check(&c);
    assert!(!before.contains_key(&3) && before.contains_key(&5003));
    assert_eq!(before[&7], vectors(&[7], 1, DIM));

    // The same after reopening (flat and graph segments plus WAL replay),
    // and after compacting everything into graphs.
    c.close().unwrap();
    options.compaction_fanout = 2;
    let c = Collection::open(&path, options).unwrap();
    assert_eq!(check(&c), before);
    c.flush().unwrap();
    let (flat, _) = shapes(&c);
    assert_eq!(flat, 2);
    assert!(c.compact().unwrap() >= 2);
    assert_eq!(shapes(&c), (0, 1));
    let rows = check(&c);
    assert_eq!(rows, before);
}
