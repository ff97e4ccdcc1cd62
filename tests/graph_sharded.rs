//! The memory-budgeted sharded build, run in a child process (this test
//! binary re-executed with an environment variable) so that its peak RSS
//! (`VmHWM`) can be checked against the budget; the parent then compares
//! the merged graph's recall with an unsharded build of the same data.

mod graph_common;

use std::io::{BufWriter, Write};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

use graph_common::{dataset, ground_truth, read_numbers, recall, run_child_test};
use omendb::Metric;
use omendb::engine::graph::search::SearchParams;
use omendb::engine::graph::{
    BuildParams, Graph, InMemory, SearchScratch, ShardedParams, VectorSource, beam_search,
    build_graph, build_sharded,
};
use omendb::engine::memory::{peak_resident_bytes, resident_bytes};
use omendb::engine::vectors::{FlatVectors, VectorSet};

const CHILD_ENV: &str = "OMEN_GRAPH_SHARDED_CHILD";
const N: usize = 100_000;
const DIM: usize = 64;
const R: usize = 24;
const L: usize = 32;
/// Well below the ~44 MB an unsharded build of this data needs.
const BUDGET: usize = 14 << 20;
/// Allowance above the budget for the test harness, thread stacks and
/// allocator slack.
const SLACK: usize = 6 << 20;

fn params() -> BuildParams {
    BuildParams::vamana(R, L)
}

/// Rows read with `pread`, so the child never maps (and so never counts in
/// its RSS) the input file.
struct FileSource {
    file: std::fs::File,
    n: usize,
}

impl VectorSource<f32> for FileSource {
    fn len(&self) -> usize {
        self.n
    }

    fn dim(&self) -> usize {
        DIM
    }

    fn read_rows(&self, first: usize, out: &mut [f32]) -> omendb::engine::Result<()> {
        let mut bytes = vec![0u8; out.len() * 4];
        self.file
            .read_exact_at(&mut bytes, (first * DIM * 4) as u64)
            .expect("read input");
        for (x, b) in out.iter_mut().zip(bytes.chunks_exact(4)) {
            *x = f32::from_le_bytes(b.try_into().unwrap());
        }
        Ok(())
    }
}

/// The child role: a no-op unless the parent set `CHILD_ENV`.
#[test]
fn child_sharded_build() {
    let Ok(dir) = std::env::var(CHILD_ENV) else {
        return;
    };
    let dir = PathBuf::from(dir);
    let baseline = resident_bytes().unwrap();
    let source = FileSource {
        file: std::fs::File::open(dir.join("base.f32")).unwrap(),
        n: N,
    };
    let out = std::fs::File::create(dir.join("merged.adj")).unwrap();
    let mut out = BufWriter::new(out);
    let sp = ShardedParams::new(params(), BUDGET, &dir);
    let mut last = 0i64;
    let summary = build_sharded(&source, Metric::L2, &sp, &|_, _| {}, &mut |id, list| {
        assert_eq!(i64::from(id), last, "emitted out of order");
        last += 1;
        out.write_all(&(list.len() as u32).to_le_bytes()).unwrap();
        for &v in list {
            out.write_all(&v.to_le_bytes()).unwrap();
        }
        Ok(())
    })
    .unwrap();
    out.flush().unwrap();
    let hwm = peak_resident_bytes().unwrap();
    std::fs::write(
        dir.join("report.txt"),
        format!(
            "{baseline} {hwm} {} {} {} {}",
            summary.shards, summary.entry, summary.planned_peak_bytes, summary.merged_pruned
        ),
    )
    .unwrap();
    eprintln!("shard sizes {:?}", summary.shard_sizes);
}

fn read_merged(path: &Path, entry: u32) -> Graph {
    let bytes = std::fs::read(path).unwrap();
    let mut g = Graph::new(N, R).unwrap();
    let mut pos = 0;
    let word = |p: usize| u32::from_le_bytes(bytes[p..p + 4].try_into().unwrap());
    for id in 0..N as u32 {
        let d = word(pos) as usize;
        let list: Vec<u32> = (0..d).map(|k| word(pos + 4 + 4 * k)).collect();
        g.set_neighbours(id, &list);
        pos += 4 + 4 * d;
    }
    assert_eq!(pos, bytes.len());
    g.set_entry(entry);
    g
}

#[test]
fn sharded_build_stays_within_budget_and_keeps_recall() {
    if std::env::var(CHILD_ENV).is_ok() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let (base, queries) = dataset::<f32>(17, N, 200, DIM);
    let bytes: Vec<u8> = base.iter().flat_map(|x| x.to_le_bytes()).collect();
    std::fs::write(dir.path().join("base.f32"), &bytes).unwrap();
    drop(bytes);
    let t = std::time::Instant::now();
    run_child_test("child_sharded_build", CHILD_ENV, dir.path());
    let sharded_secs = t.elapsed().as_secs_f64();
    let f = read_numbers(&dir.path().join("report.txt"));
    let (baseline, hwm, shards, entry, planned, pruned) = (f[0], f[1], f[2], f[3], f[4], f[5]);
    eprintln!(
        "sharded: {shards} shards, peak RSS {:.1} MiB over a {:.1} MiB baseline (budget {:.1} MiB, planned {:.1} MiB), {pruned} unions re-pruned, {sharded_secs:.1} s",
        hwm as f64 / 1048576.0,
        baseline as f64 / 1048576.0,
        BUDGET as f64 / 1048576.0,
        planned as f64 / 1048576.0
    );
    assert!(shards >= 2, "the budget must force sharding");
    assert!(
        hwm <= baseline + BUDGET + SLACK,
        "peak {hwm} > {baseline} + {BUDGET} + {SLACK}"
    );

    let merged = read_merged(&dir.path().join("merged.adj"), entry as u32);
    assert_eq!(merged.find_violation(), None);
    let base_v = FlatVectors::new(&base, DIM).unwrap();
    let queries = FlatVectors::new(&queries, DIM).unwrap();
    let t = std::time::Instant::now();
    let whole = build_graph(&base_v, Metric::L2, &params(), &|_, _| {}).unwrap();
    let whole_secs = t.elapsed().as_secs_f64();
    let truth = ground_truth(&base_v, &queries, Metric::L2, 10);
    let search = SearchParams {
        k: 10,
        list_size: 64,
        nodes_per_page: 0,
    };
    let run = |g: &Graph| {
        let mut scratch = SearchScratch::new(N);
        let mut expanded = 0;
        let found: Vec<Vec<u32>> = (0..queries.len())
            .map(|q| {
                let (res, st) = beam_search(
                    g,
                    &base_v,
                    Metric::L2,
                    queries.get(q),
                    &[],
                    &search,
                    &mut scratch,
                );
                expanded += st.expanded;
                res.iter().map(|x| x.id).collect()
            })
            .collect();
        (
            recall(&truth, &found, 10),
            expanded as f64 / queries.len() as f64,
        )
    };
    let (r_whole, e_whole) = run(&whole);
    let (r_sharded, e_sharded) = run(&merged);
    eprintln!(
        "recall@10 at L=64: unsharded {r_whole:.4} ({e_whole:.1} expanded, {whole_secs:.1} s), sharded {r_sharded:.4} ({e_sharded:.1} expanded)"
    );
    assert!(
        r_sharded >= r_whole - 0.02,
        "sharded {r_sharded} vs unsharded {r_whole}"
    );
}

#[test]
fn a_budget_that_fits_builds_one_shard_in_memory() {
    let (base, _) = dataset::<u8>(19, 3000, 1, 16);
    let set = FlatVectors::new(&base, 16).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let sp = ShardedParams::new(BuildParams::vamana(12, 24), 64 << 20, dir.path());
    let mut g = Graph::new(3000, 12).unwrap();
    let summary = build_sharded(
        &InMemory(&set),
        Metric::Cosine,
        &sp,
        &|_, _| {},
        &mut |id, l| {
            g.set_neighbours(id, l);
            Ok(())
        },
    )
    .unwrap();
    assert_eq!(summary.shards, 1);
    assert_eq!(g.find_violation(), None);
    // A budget below a couple of nodes per shard is a user error.
    let tiny = ShardedParams::new(BuildParams::vamana(12, 24), 1 << 20, dir.path());
    assert!(
        build_sharded(
            &InMemory(&set),
            Metric::L2,
            &tiny,
            &|_, _| {},
            &mut |_, _| Ok(())
        )
        .is_err()
    );
}

#[test]
fn small_sharded_build_in_process() {
    // Exercises the sharded path quickly with u8 data and cosine.
    let n = 8000;
    let (base, queries) = dataset::<u8>(23, n, 100, 16);
    let set = FlatVectors::new(&base, 16).unwrap();
    let qs = FlatVectors::new(&queries, 16).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let mut sp = ShardedParams::new(
        BuildParams::vamana(16, 32),
        (2 << 20) + 400 * 1000,
        dir.path(),
    );
    sp.sample = 2000;
    let mut g = Graph::new(n, 16).unwrap();
    let summary = build_sharded(
        &InMemory(&set),
        Metric::Cosine,
        &sp,
        &|_, _| {},
        &mut |id, l| {
            g.set_neighbours(id, l);
            Ok(())
        },
    )
    .unwrap();
    g.set_entry(summary.entry);
    assert!(summary.shards >= 3, "{summary:?}");
    assert_eq!(summary.shard_sizes.iter().sum::<usize>(), 2 * n);
    assert_eq!(g.find_violation(), None);
    let truth = ground_truth(&set, &qs, Metric::Cosine, 10);
    let mut scratch = SearchScratch::new(n);
    let search = SearchParams {
        k: 10,
        list_size: 64,
        nodes_per_page: 0,
    };
    let found: Vec<Vec<u32>> = (0..qs.len())
        .map(|q| {
            beam_search(
                &g,
                &set,
                Metric::Cosine,
                qs.get(q),
                &[],
                &search,
                &mut scratch,
            )
            .0
            .iter()
            .map(|x| x.id)
            .collect()
        })
        .collect();
    let r = recall(&truth, &found, 10);
    eprintln!("small sharded cosine u8: {summary:?}, recall {r:.4}");
    assert!(r >= 0.95, "recall {r}");
    // Temporary files are gone.
    assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0);
}
