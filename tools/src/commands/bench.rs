//! `omen bench`: search a segment with a sweep of settings and report
//! recall, throughput, latency percentiles and I/O per query.
//!
//! Numbers are measurements of this run on this machine; nothing here
//! asserts a speed. With the default I/O mode, node pages are read with
//! `O_DIRECT`, so every run is cold with respect to the page cache.

use std::path::{Path, PathBuf};
use std::time::Instant;

use clap::Args;
use omen_engine::filter::SearchStrategy;
use omen_engine::index::{QueryStats, SearchParams, Segment, SegmentOptions};
use omen_engine::io::{IoMode, IoWait};
use omen_engine::vectors::Widen;
use omen_format::dataset::{AnyVectorFile, DatasetElement, GroundTruthFile, VectorFile};
use rayon::prelude::*;

use crate::{Result, ToolError, say};

/// `--help` text of `omen bench`.
pub const LONG_ABOUT: &str = "\
Search a segment with every query of a file, for each setting of a sweep, and \
print recall@k against exact ground truth, queries per second, latency \
percentiles, disk reads and bytes per query, resident memory and the I/O path.

--sweep names one knob and its values: ef (candidate list size), beam (page \
groups in flight), upper (entry candidates from the RAM layers), stop (early \
stop in thousandths of the k-th distance; 0 turns it off) or rerank (how many \
of the best nodes by code distance must have exact distances before a query \
returns; the unread ones are read in one final batch). The other knobs take \
--ef, --beam, --upper, --stop and --rerank.

Reads are pipelined: pages are taken in request order, and each time one is \
in hand its nodes are expanded and the best unread candidates are requested, \
so --beam groups stay in flight while the search computes. \
--rounds reads in rounds instead, as DiskANN does: the next batch only once \
the whole previous batch is in. The rounds column counts the waits for the \
device per query, wait ms is the mean time a query spent in them, and \
submit ms the time it spent handing reads to the kernel (io_uring only); \
the mean latency minus both is the search's own computation.

With --io auto (the default) node pages are read with io_uring and O_DIRECT, \
bypassing the page cache, so every setting runs cold; --io mmap reads through \
the page cache instead.

--plot FILE.png draws recall@k against QPS (log scale) for the sweep. Its text \
needs a TrueType font found at run time: $OMEN_PLOT_FONT, else a system font \
such as /usr/share/fonts/truetype/dejavu/DejaVuSans.ttf (Debian: \
fonts-dejavu-core); without one the command fails before searching.

Examples:
  omen bench --segment d/index.omen --queries d/query.fbin --gt d/gt.ibin \\
      --k 10 --sweep ef=10,20,40,80,160 --threads 1
  omen bench --segment d/index.omen --queries d/query.fbin --gt d/gt.ibin \\
      --sweep beam=1,2,4,8 --ef 64 --json
  omen bench --segment d/index.omen --queries d/query.fbin --gt d/gt.ibin \\
      --sweep rerank=0,10,20,40 --stop 65
  omen bench --segment d/index.omen --queries d/query.fbin --gt d/gt.ibin \\
      --sweep ef=10,20,40,80,160 --plot d/recall-qps.png
  omen bench --segment d/index.omen --queries d/query.fbin --gt d/gt.ibin \\
      --filter 'clustered < 10000' --filter 'independent < 10000'

--filter measures filtered search on a segment built with --attributes: \
recall@k against exact filtered ground truth (computed here, by brute force), \
QPS and reads, next to the unfiltered search and the naive post-filter \
baseline (search 10·k, drop rejected rows).";

/// Arguments of `omen bench`.
#[derive(Debug, Args)]
#[command(args_conflicts_with_subcommands = true, subcommand_negates_reqs = true)]
pub struct BenchArgs {
    /// `omen bench ingest`: benchmark a collection's write path instead.
    #[command(subcommand)]
    pub mode: Option<BenchMode>,
    /// Segment to search.
    #[arg(long, required = true)]
    pub segment: Option<PathBuf>,
    /// Query vectors.
    #[arg(long, required = true)]
    pub queries: Option<PathBuf>,
    /// Exact ground truth for the queries (from `omen data gt`).
    #[arg(long, required = true)]
    pub gt: Option<PathBuf>,
    /// Neighbours per query.
    #[arg(long, default_value_t = 10)]
    pub k: usize,
    /// The knob to sweep and its values, e.g. ef=10,20,40.
    #[arg(long, default_value = "ef=10,20,40,80,160")]
    pub sweep: String,
    /// Candidate list size when not swept.
    #[arg(long, default_value_t = SearchParams::default().ef)]
    pub ef: usize,
    /// Page groups in flight when not swept.
    #[arg(long, default_value_t = SearchParams::default().beam_width)]
    pub beam: usize,
    /// Read in rounds of --beam groups, waiting for each whole round,
    /// instead of refilling the queue as each page arrives.
    #[arg(long)]
    pub rounds: bool,
    /// Entry candidates from the upper layers when not swept.
    #[arg(long, default_value_t = SearchParams::default().upper_ef)]
    pub upper: usize,
    /// Early stop: stop reading once every unread candidate is this many
    /// thousandths farther than the r-th best exact distance, r = max(k,
    /// ef/4), so raising --ef still raises recall; 0 turns it off (use 0 for
    /// segments built with 1-bit codes).
    #[arg(long, default_value_t = SearchParams::default().stop_permille.unwrap_or(0))]
    pub stop: u32,
    /// Rerank depth: the best this many nodes by code distance get exact
    /// distances before a query returns (unread ones in one final batch of
    /// reads); 0 returns what the walk read.
    #[arg(long, default_value_t = SearchParams::default().rerank)]
    pub rerank: usize,
    /// Searching threads.
    #[arg(long, default_value_t = 1)]
    pub threads: usize,
    /// I/O path: auto, direct (io_uring + O_DIRECT) or mmap.
    #[arg(long, default_value = "auto")]
    pub io: IoMode,
    /// How a search thread waits for its io_uring reads: sleep (in the
    /// kernel) or spin (on the completion queue: lower latency, and the
    /// thread's core stays busy while it waits).
    #[arg(long, default_value = "sleep")]
    pub io_wait: IoWait,
    /// Print one JSON object per setting instead of a table.
    #[arg(long)]
    pub json: bool,
    /// Also draw recall@k against QPS for the sweep into this PNG file.
    #[arg(long, value_name = "FILE.png")]
    pub plot: Option<PathBuf>,
    /// Filtered search: a predicate on the segment's attribute columns,
    /// e.g. "category = 'shoes' AND price < 50" (=, <>, <, <=, >, >=, IN,
    /// BETWEEN, IS NULL, AND, OR, NOT). Repeatable. Each is measured against
    /// its own exact ground truth, next to the unfiltered search (first
    /// setting of --sweep) and the post-filter baseline (over-fetch ×10).
    #[arg(long, value_name = "PREDICATE")]
    pub filter: Vec<String>,
    /// With --filter: force a strategy (exact-scan or filtered-walk)
    /// instead of the planner's choice, to measure the thresholds.
    #[arg(long, value_parser = parse_strategy, requires = "filter")]
    pub strategy: Option<SearchStrategy>,
}

fn parse_strategy(s: &str) -> std::result::Result<SearchStrategy, String> {
    match s {
        "exact-scan" => Ok(SearchStrategy::ExactScan),
        "filtered-walk" => Ok(SearchStrategy::FilteredWalk),
        other => Err(format!("{other:?}: expected exact-scan or filtered-walk")),
    }
}

/// The measurements of one setting.
#[derive(Debug, Clone)]
pub struct SweepRow {
    pub params: SearchParams,
    pub recall: f64,
    pub qps: f64,
    pub mean_ms: f64,
    pub p50_ms: f64,
    pub p95_ms: f64,
    pub p99_ms: f64,
    pub pages: f64,
    pub bytes: f64,
    pub rounds: f64,
    /// Mean milliseconds per query waiting for pages.
    pub wait_ms: f64,
    /// Mean milliseconds per query handing reads to the kernel.
    pub submit_ms: f64,
    pub code_distances: f64,
    pub exact_distances: f64,
    pub rss_bytes: u64,
}

/// Benchmarks other than a segment search sweep.
#[derive(Debug, clap::Subcommand)]
pub enum BenchMode {
    /// Durable ingest into a collection, with recall during and after.
    #[command(long_about = super::ingest::LONG_ABOUT)]
    Ingest(Box<super::ingest::IngestArgs>),
}

/// Runs `omen bench`.
pub fn run(args: &BenchArgs) -> Result<()> {
    if let Some(BenchMode::Ingest(ingest)) = &args.mode {
        return super::ingest::run(ingest);
    }
    let (Some(segment_path), Some(queries_path), Some(gt_path)) =
        (&args.segment, &args.queries, &args.gt)
    else {
        return Err(ToolError::Usage(
            "omen bench needs --segment, --queries and --gt (or the ingest subcommand)".into(),
        ));
    };
    let segment = Segment::open(
        segment_path,
        &SegmentOptions {
            io: args.io,
            io_wait: args.io_wait,
            ..SegmentOptions::default()
        },
    )?;
    let queries = read_queries(queries_path)?;
    let gt = GroundTruthFile::open(gt_path)?;
    if args.plot.is_some() {
        // Fail before a long sweep, not after it.
        crate::plot::ensure_font()?;
    }
    let base = SearchParams {
        ef: args.ef,
        beam_width: args.beam,
        pipeline: !args.rounds,
        upper_ef: args.upper,
        stop_permille: (args.stop > 0).then_some(args.stop),
        rerank: args.rerank,
    };
    let settings = parse_sweep(&args.sweep, base)?;
    // The first line of a run: what is searched, how, and what RAM it holds.
    let describe = |settings: &str| {
        let info = segment.info();
        say!(
            "segment {} ({} × {} {}, {}), {} queries, k = {}, {settings}{} thread(s), I/O {} ({}{}), RAM {:.1} B/vector",
            segment_path.display(),
            info.vector_count,
            info.dimension,
            info.element_type,
            info.metric,
            queries.len(),
            args.k,
            args.threads,
            segment.io_mode(),
            if args.rounds {
                "in rounds"
            } else {
                "pipelined"
            },
            match segment.io_wait() {
                IoWait::Sleep => "",
                IoWait::Spin => ", spinning waits",
            },
            segment.ram_bytes() as f64 / info.vector_count as f64
        );
    };
    if !args.filter.is_empty() {
        // Filtered runs use the single setting of --ef/--beam/--upper/--stop.
        let params = base;
        describe(&format!("ef {}, beam {}, ", params.ef, params.beam_width));
        let row = measure(&segment, &queries, &gt, args.k, params, args.threads)?;
        return super::bench_filter::run(
            &segment,
            &queries,
            &args.filter,
            args.k,
            params,
            args.threads,
            args.strategy,
            (row.recall, row.qps, row.pages),
        );
    }
    if !args.json {
        describe("");
        say!("{}", header());
    }
    let mut rows = Vec::with_capacity(settings.len());
    for params in settings {
        let row = measure(&segment, &queries, &gt, args.k, params, args.threads)?;
        if args.json {
            say!(
                "{}",
                json(&row, args.k, segment.io_mode(), segment.io_wait())
            );
        } else {
            say!("{}", table_row(&row));
        }
        rows.push(row);
    }
    if let Some(path) = &args.plot {
        let info = segment.info();
        let name = segment_path
            .file_name()
            .map_or_else(|| "segment".into(), |n| n.to_string_lossy().into_owned());
        let title = format!(
            "{name}: {} × {} {}, {} queries, {} thread(s), I/O {}",
            info.vector_count,
            info.dimension,
            info.metric,
            queries.len(),
            args.threads,
            segment.io_mode()
        );
        let knob = args.sweep.split_once('=').map_or("ef", |(k, _)| k.trim());
        plot_sweep(path, &title, "OmenDB", args.k, knob, &rows)?;
        if !args.json {
            say!("plot: {}", path.display());
        }
    }
    Ok(())
}

/// Draws the rows of a sweep as one recall/QPS curve, each point labelled
/// with its value of `knob` (ef, beam or upper), into a PNG file.
pub fn plot_sweep(
    path: &Path,
    title: &str,
    name: &str,
    k: usize,
    knob: &str,
    rows: &[SweepRow],
) -> Result<()> {
    let value = |p: &SearchParams| match knob {
        "beam" => Some(p.beam_width),
        "upper" => Some(p.upper_ef),
        "ef" => Some(p.ef),
        "stop" => Some(p.stop_permille.unwrap_or(0) as usize),
        "rerank" => Some(p.rerank),
        _ => None,
    };
    let series = crate::plot::Series {
        name: name.to_owned(),
        points: rows
            .iter()
            .map(|r| crate::plot::Point {
                recall: r.recall,
                qps: r.qps,
                label: value(&r.params).map(|v| format!("{knob}={v}")),
            })
            .collect(),
    };
    crate::plot::recall_qps_png(path, title, k, &[series])
}

/// The column header of [`table_row`].
pub fn header() -> String {
    format!(
        "{:>5} {:>4} {:>5} {:>4} {:>6} {:>8} {:>9} {:>8} {:>8} {:>8} {:>8} {:>7} {:>9} {:>7} {:>7} {:>9} {:>8}",
        "ef",
        "beam",
        "upper",
        "stop",
        "rerank",
        "recall",
        "QPS",
        "mean ms",
        "p50 ms",
        "p95 ms",
        "p99 ms",
        "reads",
        "KiB/q",
        "rounds",
        "wait ms",
        "submit ms",
        "RSS MiB"
    )
}

/// One line of the table.
pub fn table_row(r: &SweepRow) -> String {
    format!(
        "{:>5} {:>4} {:>5} {:>4} {:>6} {:>8.4} {:>9.1} {:>8.3} {:>8.3} {:>8.3} {:>8.3} {:>7.1} {:>9.1} {:>7.1} {:>7.3} {:>9.3} {:>8.1}",
        r.params.ef,
        r.params.beam_width,
        r.params.upper_ef,
        r.params.stop_permille.unwrap_or(0),
        r.params.rerank,
        r.recall,
        r.qps,
        r.mean_ms,
        r.p50_ms,
        r.p95_ms,
        r.p99_ms,
        r.pages,
        r.bytes / 1024.0,
        r.rounds,
        r.wait_ms,
        r.submit_ms,
        r.rss_bytes as f64 / (1 << 20) as f64
    )
}

fn json(r: &SweepRow, k: usize, io: IoMode, wait: IoWait) -> String {
    format!(
        "{{\"ef\":{},\"beam\":{},\"upper\":{},\"stop\":{},\"rerank\":{},\"pipeline\":{},\"k\":{k},\"recall\":{:.5},\"qps\":{:.2},\"mean_ms\":{:.4},\
         \"p50_ms\":{:.4},\"p95_ms\":{:.4},\"p99_ms\":{:.4},\"reads_per_query\":{:.2},\"bytes_per_query\":{:.0},\
         \"rounds\":{:.2},\"wait_ms\":{:.4},\"submit_ms\":{:.4},\"code_distances\":{:.1},\"exact_distances\":{:.1},\"rss_bytes\":{},\"io\":\"{io}\",\"io_wait\":\"{wait}\"}}",
        r.params.ef,
        r.params.beam_width,
        r.params.upper_ef,
        r.params.stop_permille.unwrap_or(0),
        r.params.rerank,
        r.params.pipeline,
        r.recall,
        r.qps,
        r.mean_ms,
        r.p50_ms,
        r.p95_ms,
        r.p99_ms,
        r.pages,
        r.bytes,
        r.rounds,
        r.wait_ms,
        r.submit_ms,
        r.code_distances,
        r.exact_distances,
        r.rss_bytes
    )
}

/// Searches every query once with `params` on `threads` threads.
pub fn measure(
    segment: &Segment,
    queries: &[Vec<f32>],
    gt: &GroundTruthFile,
    k: usize,
    params: SearchParams,
    threads: usize,
) -> Result<SweepRow> {
    if gt.nq() < queries.len() || gt.k() < k {
        return Err(ToolError::Usage(format!(
            "{}: ground truth for {} queries × {} neighbours cannot score {} queries at k = {k}",
            gt.path().display(),
            gt.nq(),
            gt.k(),
            queries.len()
        )));
    }
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(threads.max(1))
        .build()
        .map_err(|e| ToolError::Usage(format!("cannot start {threads} threads: {e}")))?;
    let (results, wall) = run_queries(&pool, queries, |q| {
        let (hits, stats) = segment.search(q, k, &params)?;
        Ok((hits.iter().map(|h| h.id).collect(), stats))
    })?;
    let nq = queries.len().max(1) as f64;
    let mut found = 0usize;
    for (q, (ids, _, _)) in results.iter().enumerate() {
        let truth = &gt.ids(q)[..k];
        found += ids
            .iter()
            .filter(|&&id| truth.contains(&(id as i32)))
            .count();
    }
    let mut latencies: Vec<f64> = results.iter().map(|r| r.2).collect();
    latencies.sort_by(f64::total_cmp);
    let pct = |p: f64| {
        latencies
            .get(((latencies.len() as f64 * p).ceil() as usize).saturating_sub(1))
            .copied()
            .unwrap_or(0.0)
    };
    let mean = |f: &dyn Fn(&QueryStats) -> f64| results.iter().map(|r| f(&r.1)).sum::<f64>() / nq;
    Ok(SweepRow {
        params,
        recall: found as f64 / (nq * k as f64),
        qps: nq / wall.max(1e-9),
        mean_ms: latencies.iter().sum::<f64>() / nq,
        p50_ms: pct(0.50),
        p95_ms: pct(0.95),
        p99_ms: pct(0.99),
        pages: mean(&|s| f64::from(s.pages_read)),
        bytes: mean(&|s| s.bytes_read as f64),
        rounds: mean(&|s| f64::from(s.rounds)),
        wait_ms: mean(&|s| s.wait_nanos as f64 / 1e6),
        submit_ms: mean(&|s| s.submit_nanos as f64 / 1e6),
        code_distances: mean(&|s| f64::from(s.code_distances)),
        exact_distances: mean(&|s| f64::from(s.exact_distances)),
        rss_bytes: omen_engine::memory::resident_bytes().unwrap_or(0),
    })
}

/// One query's answer (ids), its statistics and its latency in ms.
pub(super) type Timed = (Vec<u64>, QueryStats, f64);

/// Runs `search` over every query on `pool`, timing each; returns the
/// answers in query order and the wall-clock seconds of the whole run.
pub(super) fn run_queries(
    pool: &rayon::ThreadPool,
    queries: &[Vec<f32>],
    search: impl Fn(&[f32]) -> Result<(Vec<u64>, QueryStats)> + Sync,
) -> Result<(Vec<Timed>, f64)> {
    let started = Instant::now();
    let results = pool.install(|| {
        queries
            .par_iter()
            .map(|q| {
                let t = Instant::now();
                let (ids, stats) = search(q)?;
                Ok((ids, stats, t.elapsed().as_secs_f64() * 1e3))
            })
            .collect::<Result<Vec<Timed>>>()
    })?;
    Ok((results, started.elapsed().as_secs_f64()))
}

/// Reads a query file of any element type, widened to f32.
pub fn read_queries(path: &Path) -> Result<Vec<Vec<f32>>> {
    fn widen<T: Widen + DatasetElement>(f: &VectorFile<T>) -> Result<Vec<Vec<f32>>> {
        f.check_finite()?;
        Ok((0..f.len())
            .map(|i| f.row(i).iter().map(|&x| x.widen()).collect())
            .collect())
    }
    match AnyVectorFile::open(path)? {
        AnyVectorFile::F32(f) => widen(&f),
        AnyVectorFile::F16(f) => widen(&f),
        AnyVectorFile::U8(f) => widen(&f),
        AnyVectorFile::I8(f) => widen(&f),
        AnyVectorFile::I32(_) => Err(ToolError::Usage(format!(
            "{}: .ivecs holds ids, not queries",
            path.display()
        ))),
    }
}

/// Parses `ef=10,20` (or `beam=...`, `upper=...`, `stop=...`,
/// `rerank=...`) into search settings. `stop` and `rerank` take 0 (off).
pub fn parse_sweep(spec: &str, base: SearchParams) -> Result<Vec<SearchParams>> {
    let (knob, values) = spec.split_once('=').ok_or_else(|| {
        ToolError::Usage(format!(
            "--sweep {spec:?}: expected KNOB=V1,V2,... (knobs: ef, beam, upper, stop, rerank)"
        ))
    })?;
    let knob = knob.trim();
    let zero_allowed = matches!(knob, "stop" | "rerank");
    values
        .split(',')
        .map(|v| {
            let v: usize = v
                .trim()
                .parse()
                .ok()
                .filter(|&v| v > 0 || zero_allowed)
                .ok_or_else(|| {
                    ToolError::Usage(format!(
                        "--sweep {spec:?}: {v:?} is not a {} integer",
                        if zero_allowed {
                            "non-negative"
                        } else {
                            "positive"
                        }
                    ))
                })?;
            match knob {
                "ef" => Ok(SearchParams { ef: v, ..base }),
                "beam" => Ok(SearchParams {
                    beam_width: v,
                    ..base
                }),
                "upper" => Ok(SearchParams {
                    upper_ef: v,
                    ..base
                }),
                "stop" => Ok(SearchParams {
                    stop_permille: u32::try_from(v).ok().filter(|&p| p > 0),
                    ..base
                }),
                "rerank" => Ok(SearchParams { rerank: v, ..base }),
                other => Err(ToolError::Usage(format!(
                    "--sweep: unknown knob {other:?}; use ef, beam, upper, stop or rerank"
                ))),
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sweep_takes_stop_and_rerank_with_zero_meaning_off() {
        let base = SearchParams::default();
        let rerank = parse_sweep("rerank=0,20", base).unwrap();
        assert_eq!(rerank.iter().map(|p| p.rerank).collect::<Vec<_>>(), [0, 20]);
        assert!(rerank.iter().all(|p| p.ef == base.ef));
        let stop = parse_sweep("stop=0,65", base).unwrap();
        assert_eq!(stop[0].stop_permille, None);
        assert_eq!(stop[1].stop_permille, Some(65));
        assert!(parse_sweep("ef=0", base).is_err());
        let unknown = parse_sweep("depth=3", base).unwrap_err().to_string();
        assert!(unknown.contains("rerank"), "{unknown}");
    }
}
