//! `omen demo`: the first command a new user runs. It generates a small
//! synthetic dataset, computes and verifies its exact ground truth, and
//! describes the data, exercising the whole pipeline in seconds.
//!
//! Invariant: the demo never reports success for a ground truth that
//! disagrees with a naive scan or its own file; such a mismatch is an error
//! (exit 1), not a warning.

use std::path::PathBuf;
use std::time::Instant;

use clap::Args;
use indicatif::HumanBytes;
use omen_engine::distance::distance;
use omen_engine::ground_truth::GroundTruthParams;
use omen_engine::synth::{self, SynthConfig};
use omen_format::dataset::{GroundTruthFile, Neighbors, VectorFile, Vectors};
use omen_format::{ElementType, Metric};

use super::bench;
use super::build::{self, BuildArgs};
use super::data::{compute_ground_truth, mean_at_rank, parse_count};
use crate::progress::Progress;
use crate::{Result, ToolError, say};
use omen_engine::graph::Builder;
use omen_engine::index::{BuildOptions, SearchParams, Segment, SegmentOptions};

/// `--help` text of `omen demo`.
pub const LONG_ABOUT: &str = "\
Generate a small synthetic dataset (20,000 × 128 f32 vectors and 200 queries \
by default), compute its exact ground truth and verify it against a naive \
scan, build an index segment, and search it with one thread at several \
candidate-list sizes, printing recall@10, QPS, latency and disk reads per \
query. Takes well under a minute on two cores.

Files go to a temporary directory that is removed on exit, unless --dir is \
given.

Examples:
  omen demo
  omen demo --n 100k --metric cos --dir /tmp/omen-demo";

/// Arguments of `omen demo`.
#[derive(Debug, Args)]
pub struct DemoArgs {
    /// Keep the files in this directory (default: a temporary one).
    #[arg(long)]
    pub dir: Option<PathBuf>,
    /// Base vectors.
    #[arg(long, value_parser = parse_count, default_value = "20000")]
    pub n: u64,
    /// Dimension.
    #[arg(long, default_value_t = 128)]
    pub dim: usize,
    /// Query vectors.
    #[arg(long, value_parser = parse_count, default_value = "200")]
    pub queries: u64,
    /// Random seed.
    #[arg(long, default_value_t = 42)]
    pub seed: u64,
    /// Neighbours per query in the ground truth.
    #[arg(long, default_value_t = 100)]
    pub k: usize,
    /// Distance: l2, ip or cos.
    #[arg(long, default_value = "l2")]
    pub metric: Metric,
}

/// Queries whose nearest neighbour is re-derived by a naive scan.
const NAIVE_QUERIES: usize = 8;
/// Base vectors sampled for the relative contrast.
const CONTRAST_SAMPLE: usize = 1000;

/// Runs the demo.
pub fn run(args: &DemoArgs, quiet: bool) -> Result<()> {
    let total_start = Instant::now();
    if args.n == 0 || args.queries == 0 || args.n > i32::MAX as u64 {
        return Err(ToolError::Usage(format!(
            "--n must be in 1..={} and --queries at least 1",
            i32::MAX
        )));
    }
    let (dir, _temp) = match &args.dir {
        Some(d) => {
            std::fs::create_dir_all(d).map_err(|e| ToolError::io(d, e))?;
            (d.clone(), None)
        }
        None => {
            let t = tempfile::Builder::new()
                .prefix("omen-demo-")
                .tempdir()
                .map_err(|e| ToolError::io(std::env::temp_dir(), e))?;
            (t.path().to_path_buf(), Some(t))
        }
    };
    say!(
        "OmenDB demo: {} × {} f32 vectors, {} queries, k = {}, metric {}, seed {}",
        args.n,
        args.dim,
        args.queries,
        args.k,
        args.metric,
        args.seed
    );
    say!(
        "files in {}{}",
        dir.display(),
        if args.dir.is_none() {
            " (temporary; pass --dir to keep them)"
        } else {
            ""
        }
    );

    // 1. Data.
    let config = SynthConfig {
        n: args.n,
        dim: args.dim,
        queries: args.queries,
        seed: args.seed,
        element: ElementType::F32,
    };
    let started = Instant::now();
    let bar = Progress::new(args.n + args.queries, "synth", quiet);
    let data = synth::write_dataset(&config, &dir, &|rows| bar.set(rows))?;
    bar.finish();
    say!(
        "  generated     base.fbin {} + query.fbin {} in {:.2} s ({} clusters, latent dimension {})",
        HumanBytes(data.base.bytes),
        HumanBytes(data.queries.bytes),
        started.elapsed().as_secs_f64(),
        data.clusters,
        data.latent_dim
    );

    // 2. Ground truth.
    let params = GroundTruthParams::new(args.k, args.metric);
    let started = Instant::now();
    let (nb, _) = compute_ground_truth(&data.base_path, &data.query_path, &params, quiet)?;
    let gt_path = dir.join("gt.ibin");
    let gt_bytes = nb.write(&gt_path)?;
    let secs = started.elapsed().as_secs_f64();
    say!(
        "  ground truth  gt.ibin {} in {:.2} s ({:.1} M distances/s on {} threads)",
        HumanBytes(gt_bytes),
        secs,
        args.n as f64 * args.queries as f64 / secs.max(1e-9) / 1e6,
        rayon::current_num_threads()
    );

    // 3. Verification.
    let base = VectorFile::<f32>::open(&data.base_path)?;
    let queries = VectorFile::<f32>::open(&data.query_path)?;
    verify(
        &gt_path,
        &nb,
        base.vectors(),
        queries.vectors(),
        args.metric,
    )?;
    say!(
        "  verified      gt.ibin re-read intact, ids in range, ranks sorted, \
         nearest neighbour of {} queries matches a naive scan",
        NAIVE_QUERIES.min(queries.len())
    );

    // 4. What the data looks like.
    let rank =
        |r: usize| mean_at_rank(&nb, r).map_or_else(|| "-".to_string(), |d| format!("{d:.3}"));
    say!(
        "  neighbours    mean {} distance to the 1st {}, 10th {}, {}th {}",
        args.metric,
        rank(0),
        rank(9),
        nb.k(),
        rank(nb.k() - 1)
    );
    let rc = relative_contrast(base.vectors(), queries.vectors(), &nb, args.metric);
    say!(
        "  contrast      relative contrast {rc:.2} (mean Euclidean distance to a random base \
         vector ÷ to the nearest; ≈1 means no structure for an index to exploit, real \
         embeddings sit around 1.5-4)"
    );
    if rc < 1.2 {
        say!(
            "  warning       the data is barely clustered; recall numbers on it would be pessimistic"
        );
    }

    // 5. The index: build a segment, then search it cold (O_DIRECT).
    let started = Instant::now();
    let segment_path = dir.join("index.omen");
    let build_args = BuildArgs {
        input: data.base_path.clone(),
        metric: args.metric,
        out: segment_path.clone(),
        r: 32,
        l: 64,
        alpha: 1.2,
        builder: Builder::Vamana,
        code: BuildOptions::default().code,
        no_saturate: !BuildOptions::default().saturate,
        two_pass: !BuildOptions::default().one_pass,
        exact_build: !BuildOptions::default().quantized_build,
        upper_degree: 16,
        memory_budget: 1 << 30,
        threads: None,
        temp_dir: None,
        seed: args.seed,
        attributes: None,
        attr_types: None,
    };
    let report = build::build_quiet(&build_args, quiet)?;
    say!(
        "  index         index.omen {} in {:.2} s: R = 32, {} nodes per 4 KiB page, {:.1} B of RAM per vector",
        HumanBytes(report.file_bytes),
        started.elapsed().as_secs_f64(),
        report.nodes_per_page,
        report.ram_bytes_per_vector
    );
    let segment = Segment::open(&segment_path, &SegmentOptions::default())?;
    let queries_f32 = bench::read_queries(&data.query_path)?;
    let k = 10.min(args.k);
    say!(
        "  search        k = {k}, 1 thread, I/O {} (node pages bypass the page cache):",
        segment.io_mode()
    );
    say!("  {}", bench::header());
    let mut best_recall = 0.0f64;
    for ef in [10, 20, 40, 80] {
        let params = SearchParams {
            ef,
            ..SearchParams::default()
        };
        let row = bench::measure(&segment, &queries_f32, &file_gt(&gt_path)?, k, params, 1)?;
        best_recall = best_recall.max(row.recall);
        say!("  {}", bench::table_row(&row));
    }
    if best_recall < 0.9 {
        return Err(ToolError::Check(format!(
            "recall@{k} never reached 0.9 (best {best_recall:.3}); the index is broken"
        )));
    }
    say!(
        "done in {:.2} s. Next: omen data synth --n 1M --out data/synth-1m, omen-build, omen bench (see --help)",
        total_start.elapsed().as_secs_f64()
    );
    Ok(())
}

fn file_gt(path: &std::path::Path) -> Result<GroundTruthFile> {
    Ok(GroundTruthFile::open(path)?)
}

/// Re-reads the written file and re-derives a few answers from scratch.
fn verify(
    gt_path: &std::path::Path,
    nb: &Neighbors,
    base: Vectors<'_, f32>,
    queries: Vectors<'_, f32>,
    metric: Metric,
) -> Result<()> {
    let file = GroundTruthFile::open(gt_path)?;
    file.check_ids(base.len())?;
    if &file.to_neighbors() != nb {
        return Err(ToolError::Check(format!(
            "{} does not read back as written",
            gt_path.display()
        )));
    }
    for q in 0..nb.nq() {
        let (ids, d) = (nb.ids(q), nb.distances(q));
        let sorted = (1..nb.k()).all(|r| (d[r - 1], ids[r - 1]) < (d[r], ids[r]));
        if !sorted {
            return Err(ToolError::Check(format!(
                "query {q}: neighbours are not in ascending (distance, id) order"
            )));
        }
    }
    for q in 0..NAIVE_QUERIES.min(queries.len()) {
        let query = queries.row(q);
        let best = base
            .iter()
            .enumerate()
            .map(|(i, row)| (distance(metric, query, row), i))
            .min_by(|a, b| a.0.total_cmp(&b.0).then(a.1.cmp(&b.1)));
        let want = (nb.distances(q)[0], nb.ids(q)[0] as usize);
        if best != Some(want) {
            return Err(ToolError::Check(format!(
                "query {q}: naive scan finds {best:?}, ground truth says {want:?}"
            )));
        }
    }
    Ok(())
}

/// He et al.'s relative contrast: mean over queries of the mean Euclidean
/// distance to a random base vector divided by the distance to the nearest
/// one. Computed in Euclidean distance whatever the metric, so numbers are
/// comparable across runs.
fn relative_contrast(
    base: Vectors<'_, f32>,
    queries: Vectors<'_, f32>,
    nb: &Neighbors,
    metric: Metric,
) -> f64 {
    let stride = (base.len() / CONTRAST_SAMPLE).max(1);
    let sample: Vec<&[f32]> = base.iter().step_by(stride).collect();
    let mut sum = 0.0;
    let mut counted = 0usize;
    for (q, query) in queries.iter().enumerate() {
        let euclid = |row: &[f32]| f64::from(distance(Metric::L2, query, row)).sqrt();
        let nearest = if metric == Metric::L2 {
            f64::from(nb.distances(q)[0]).sqrt()
        } else {
            base.iter().map(euclid).fold(f64::INFINITY, f64::min)
        };
        let mean = sample.iter().map(|r| euclid(r)).sum::<f64>() / sample.len().max(1) as f64;
        if nearest > 0.0 {
            sum += mean / nearest;
            counted += 1;
        }
    }
    if counted == 0 {
        f64::NAN
    } else {
        sum / counted as f64
    }
}
