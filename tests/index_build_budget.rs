//! The whole segment build within its memory budget: every phase, not only
//! the sharded graph (`graph_sharded.rs`). The build runs in a child
//! process (this test binary re-executed with an environment variable) so
//! that its peak RSS (`VmHWM`) is its own. The phases after the graph
//! (upper layers, page reordering, codes, writing) once held a second copy
//! of the adjacency, which is most of the index at a tight budget: 1M × 128
//! with `--memory-budget 340MiB` peaked at 574 MiB.

mod graph_common;

use std::path::{Path, PathBuf};

use graph_common::{read_numbers, run_child_test};
use omendb::engine::index::{BuildOptions, Segment, SegmentOptions, build_segment};
use omendb::engine::memory::{peak_resident_bytes, resident_bytes};
use omendb::engine::synth::{SynthConfig, write_dataset};
use omendb::format::dataset::VectorFile;
use omendb::{ElementType, Metric};

const CHILD_ENV: &str = "OMEN_BUILD_BUDGET_CHILD";
const N: u64 = 100_000;
const DIM: usize = 32;
/// The index alone (adjacency of `R` = 48, codes, buffers) needs about
/// 30 MiB, so this leaves the graph phase a few MiB: it must shard.
const BUDGET: usize = 36 << 20;
/// Allowance above the budget for the test harness, thread stacks and
/// allocator slack; less than the 20 MB a second adjacency would take.
const SLACK: usize = 6 << 20;

fn options(dir: &Path) -> BuildOptions {
    BuildOptions {
        max_degree: 48,
        list_size: 48,
        upper_degree: 8,
        training_sample: 5000,
        memory_budget: BUDGET,
        temp_dir: Some(dir.to_path_buf()),
        ..BuildOptions::default()
    }
}

/// The child role: a no-op unless the parent set `CHILD_ENV`.
#[test]
fn child_budgeted_build() {
    let Ok(dir) = std::env::var(CHILD_ENV) else {
        return;
    };
    let dir = PathBuf::from(dir);
    let baseline = resident_bytes().unwrap();
    // The file is mapped but only read through `pread` (`RowReader`), so
    // its pages do not count in this process's RSS.
    let base = VectorFile::<f32>::open(dir.join("base.fbin")).unwrap();
    let report = build_segment(
        &base.row_reader().unwrap(),
        Metric::L2,
        &dir.join("index.omen"),
        &options(&dir),
        &|_, _, _| {},
    )
    .unwrap();
    let hwm = peak_resident_bytes().unwrap();
    std::fs::write(
        dir.join("report.txt"),
        format!("{baseline} {hwm} {}", report.shards),
    )
    .unwrap();
}

#[test]
fn a_sharded_segment_build_stays_within_its_budget() {
    if std::env::var(CHILD_ENV).is_ok() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let config = SynthConfig {
        n: N,
        dim: DIM,
        queries: 10,
        seed: 23,
        element: ElementType::F32,
    };
    let summary = write_dataset(&config, dir.path(), &|_| {}).unwrap();
    assert_eq!(summary.base_path, dir.path().join("base.fbin"));
    run_child_test("child_budgeted_build", CHILD_ENV, dir.path());
    let f = read_numbers(&dir.path().join("report.txt"));
    let (baseline, hwm, shards) = (f[0], f[1], f[2]);
    eprintln!(
        "{shards} shards, peak RSS {:.1} MiB over a {:.1} MiB baseline (budget {:.1} MiB)",
        hwm as f64 / 1048576.0,
        baseline as f64 / 1048576.0,
        BUDGET as f64 / 1048576.0,
    );
    assert!(shards >= 2, "the budget must force sharding");
    assert!(
        hwm <= baseline + BUDGET + SLACK,
        "peak {hwm} > {baseline} + {BUDGET} + {SLACK}"
    );
    // The segment is whole: it opens and holds every vector.
    let segment = Segment::open(dir.path().join("index.omen"), &SegmentOptions::default()).unwrap();
    assert_eq!(segment.len(), N as usize);
}
