//! `omen bench --filter`: filtered search measured against its own exact
//! ground truth, next to the unfiltered search and the naive post-filter
//! baseline, in one invocation on the same segment and queries.
//!
//! The ground truth of each filter is computed here, by parallel brute
//! force over the segment's own vectors (read back sequentially), restricted
//! to the rows the filter matches. The post-filter baseline searches for
//! `10·k` neighbours with `ef ≥ 10·k`, drops the rows the filter rejects and
//! keeps the first `k`: what an index without filter support does.

use std::path::Path;
use std::time::Instant;

use omen_engine::filter::{Filter, SearchStrategy};
use omen_engine::ground_truth::{GroundTruthParams, exact_knn};
use omen_engine::index::{QueryStats, SearchParams, Segment};
use omen_format::dataset::Vectors;
use rayon::prelude::*;

use crate::{Result, ToolError, say};

/// Post-filter over-fetch factor.
const OVER_FETCH: usize = 10;

/// What one way of answering cost and found.
#[derive(Debug, Clone)]
struct Measured {
    recall: f64,
    qps: f64,
    mean_ms: f64,
    pages: f64,
    strategy: Option<SearchStrategy>,
}

/// Every row's vector and id, in row (node) order.
struct Rows {
    vectors: Vec<f32>,
    ids: Vec<u64>,
    dim: usize,
}

/// Runs every `--filter` of `args`; `unfiltered` was measured by the
/// caller with `params`.
#[allow(clippy::too_many_arguments)]
pub fn run(
    segment: &Segment,
    queries: &[Vec<f32>],
    filters: &[String],
    k: usize,
    params: SearchParams,
    threads: usize,
    strategy: Option<SearchStrategy>,
    unfiltered: (f64, f64, f64),
) -> Result<()> {
    let parsed: Vec<Filter> = filters
        .iter()
        .map(|f| {
            f.parse::<Filter>()
                .map_err(|e| ToolError::Usage(format!("--filter {f:?}: {e}")))
        })
        .collect::<Result<_>>()?;
    for f in &parsed {
        segment.plan_filter(f)?; // type errors before any long work
    }
    let started = Instant::now();
    let rows = read_rows(segment)?;
    say!(
        "read {} rows back from the segment in {:.1} s for the filtered ground truth",
        rows.ids.len(),
        started.elapsed().as_secs_f64()
    );
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(threads.max(1))
        .build()
        .map_err(|e| ToolError::Usage(format!("cannot start {threads} threads: {e}")))?;
    let mut row_of_id = vec![u32::MAX; rows.ids.iter().max().map_or(0, |&m| m as usize + 1)];
    for (row, &id) in rows.ids.iter().enumerate() {
        row_of_id[id as usize] = row as u32;
    }
    say!(
        "{:<34} {:>8} {:>8} {:<14} {:>7} {:>9} {:>8} {:>7}",
        "filter / method",
        "est. sel",
        "act. sel",
        "strategy",
        "recall",
        "QPS",
        "mean ms",
        "reads"
    );
    say!(
        "{:<34} {:>8} {:>8} {:<14} {:>7.4} {:>9.1} {:>8.3} {:>7.1}",
        "(unfiltered)",
        "",
        "",
        "unfiltered",
        unfiltered.0,
        unfiltered.1,
        1e3 / unfiltered.1.max(1e-9) * threads.max(1) as f64,
        unfiltered.2
    );
    for (text, filter) in filters.iter().zip(&parsed) {
        let plan = segment.plan_filter(filter)?;
        let compiled = segment.compile_filter(filter)?;
        let matching = compiled.matching_rows();
        let truth = filtered_truth(&rows, &matching, queries, k, segment)?;
        let actual = matching.len() as f64 / rows.ids.len().max(1) as f64;
        let filtered = time(&pool, queries, &truth, |q| {
            let (hits, stats) = match strategy {
                Some(s) => segment.search_filtered_using(q, k, filter, &params, s)?,
                None => segment.search_filtered(q, k, filter, &params)?,
            };
            Ok((hits.iter().map(|h| h.id).collect(), stats))
        })?;
        let wide = SearchParams {
            ef: params.ef.max(OVER_FETCH * k),
            ..params
        };
        let post = time(&pool, queries, &truth, |q| {
            let (hits, stats) = segment.search(q, OVER_FETCH * k, &wide)?;
            let kept = hits
                .iter()
                .filter(|h| {
                    row_of_id
                        .get(h.id as usize)
                        .is_some_and(|&r| r != u32::MAX && compiled.matches(r as usize))
                })
                .take(k)
                .map(|h| h.id)
                .collect();
            Ok((kept, stats))
        })?;
        let line = |label: &str, m: &Measured, show_sel: bool| {
            say!(
                "{:<34} {:>8} {:>8} {:<14} {:>7.4} {:>9.1} {:>8.3} {:>7.1}",
                label,
                if show_sel {
                    format!("{:.3}%", plan.selectivity * 100.0)
                } else {
                    String::new()
                },
                if show_sel {
                    format!("{:.3}%", actual * 100.0)
                } else {
                    String::new()
                },
                m.strategy.map_or("post-filter".into(), |s| s.to_string()),
                m.recall,
                m.qps,
                m.mean_ms,
                m.pages
            );
        };
        line(text, &filtered, true);
        line(
            &format!("  post-filter ×{OVER_FETCH} (ef {})", wide.ef),
            &post,
            false,
        );
    }
    Ok(())
}

/// Reads every row's vector and id with one sequential scan.
fn read_rows(segment: &Segment) -> Result<Rows> {
    let dim = segment.info().dimension as usize;
    let mut vectors = Vec::with_capacity(segment.len() * dim);
    let mut ids = Vec::with_capacity(segment.len());
    segment.scan_rows(|_, id, v| {
        vectors.extend_from_slice(v);
        ids.push(id);
        Ok(())
    })?;
    Ok(Rows { vectors, ids, dim })
}

/// Exact `k` nearest matching ids per query (fewer when fewer match).
fn filtered_truth(
    rows: &Rows,
    matching: &[u32],
    queries: &[Vec<f32>],
    k: usize,
    segment: &Segment,
) -> Result<Vec<Vec<u64>>> {
    if matching.is_empty() {
        return Ok(vec![Vec::new(); queries.len()]);
    }
    let dim = rows.dim;
    let mut base = Vec::with_capacity(matching.len() * dim);
    for &r in matching {
        base.extend_from_slice(&rows.vectors[r as usize * dim..(r as usize + 1) * dim]);
    }
    let flat_queries: Vec<f32> = queries.iter().flatten().copied().collect();
    let label = Path::new("filtered rows");
    let nb = exact_knn(
        Vectors::from_slice(label, &base, dim)?,
        Vectors::from_slice(label, &flat_queries, dim)?,
        &GroundTruthParams::new(k.min(matching.len()), segment.metric()),
        &|_| {},
    )?;
    Ok((0..queries.len())
        .map(|q| {
            nb.ids(q)
                .iter()
                .map(|&i| rows.ids[matching[i as usize] as usize])
                .collect()
        })
        .collect())
}

/// Runs `search` over every query on `pool`; scores against `truth`.
fn time(
    pool: &rayon::ThreadPool,
    queries: &[Vec<f32>],
    truth: &[Vec<u64>],
    search: impl Fn(&[f32]) -> Result<(Vec<u64>, QueryStats)> + Sync,
) -> Result<Measured> {
    let started = Instant::now();
    let results: Vec<(Vec<u64>, QueryStats, f64)> = pool.install(|| {
        queries
            .par_iter()
            .map(|q| {
                let t = Instant::now();
                let (ids, stats) = search(q)?;
                Ok((ids, stats, t.elapsed().as_secs_f64() * 1e3))
            })
            .collect::<Result<_>>()
    })?;
    let wall = started.elapsed().as_secs_f64();
    let nq = queries.len().max(1) as f64;
    let (mut found, mut wanted) = (0usize, 0usize);
    for ((ids, _, _), want) in results.iter().zip(truth) {
        found += ids.iter().filter(|id| want.contains(id)).count();
        wanted += want.len();
    }
    Ok(Measured {
        recall: if wanted == 0 {
            1.0
        } else {
            found as f64 / wanted as f64
        },
        qps: nq / wall.max(1e-9),
        mean_ms: results.iter().map(|r| r.2).sum::<f64>() / nq,
        pages: results
            .iter()
            .map(|r| f64::from(r.1.pages_read))
            .sum::<f64>()
            / nq,
        strategy: results.first().map(|r| r.1.strategy),
    })
}
