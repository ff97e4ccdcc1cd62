//! Measuring quantizers: bytes, training and encoding time, code-distance
//! speed, and recall after reranking the best codes with exact distances
//! (what the index does: codes choose, full vectors decide).
//!
//! Invariant: recall figures depend only on the inputs and the seed; only
//! the timings vary between runs.

use std::fmt::Write as _;
use std::time::Instant;

use omen_format::Metric;
use rayon::prelude::*;

use super::{Quantizer, QuantizerKind};
use crate::cluster::rng::SplitMix64;
use crate::distance::Kernels;
use crate::vectors::{FlatVectors, VectorSet};
use crate::{EngineError, Result};

/// What to measure.
#[derive(Debug, Clone)]
pub struct EvalConfig {
    /// The quantizers, each trained on the base vectors.
    pub kinds: Vec<QuantizerKind>,
    /// The metric of the ground truth.
    pub metric: Metric,
    /// Neighbours that count for recall (recall@k).
    pub k: usize,
    /// Candidate counts N: the best N by code distance are reranked exactly.
    pub rerank: Vec<usize>,
    /// Training seed.
    pub seed: u64,
    /// Queries timed single-threaded for the distance speed (all are used
    /// for recall).
    pub timed_queries: usize,
}

/// One quantizer's measurements.
#[derive(Debug, Clone)]
pub struct EvalRow {
    pub kind: QuantizerKind,
    /// Bytes per code.
    pub code_len: usize,
    /// Bytes of the serialised quantizer (codebooks, rotation).
    pub model_bytes: usize,
    pub train_secs: f64,
    /// Vectors encoded per second, all threads.
    pub encode_per_sec: f64,
    /// Nanoseconds per code distance, scanning codes in order, one thread
    /// (fastest of the timed queries).
    pub ns_scan: f64,
    /// Nanoseconds per code distance for random ids (cache misses, as in a
    /// graph search), one thread (fastest of the timed queries).
    pub ns_random: f64,
    /// `(N, recall@k)` after exact reranking of the best `N` codes.
    pub recall: Vec<(usize, f64)>,
}

/// The exact `k` nearest base ids of every query (ascending distance, ties
/// by id), by brute force: the reference for small evaluation sets.
pub fn exact_knn(
    base: FlatVectors<'_, f32>,
    queries: FlatVectors<'_, f32>,
    metric: Metric,
    k: usize,
) -> Vec<u32> {
    let kernels = Kernels::<f32>::best();
    let k = k.min(base.len());
    queries
        .as_slice()
        .par_chunks(queries.dim())
        .flat_map_iter(|q| {
            let mut d: Vec<(f32, u32)> = base
                .as_slice()
                .chunks_exact(base.dim())
                .zip(0u32..)
                .map(|(v, i)| (kernels.distance(metric, q, v), i))
                .collect();
            top(&mut d, k);
            d.into_iter().map(|(_, i)| i)
        })
        .collect()
}

/// Leaves the `k` smallest of `d`, sorted (ties by id).
fn top(d: &mut Vec<(f32, u32)>, k: usize) {
    let by = |a: &(f32, u32), b: &(f32, u32)| a.0.total_cmp(&b.0).then(a.1.cmp(&b.1));
    if k == 0 {
        d.clear();
        return;
    }
    if k < d.len() {
        d.select_nth_unstable_by(k - 1, by);
        d.truncate(k);
    }
    d.sort_unstable_by(by);
}

/// Trains, encodes and measures every quantizer of `config`.
/// `ground_truth` holds `gt_k >= config.k` ids per query.
pub fn evaluate(
    config: &EvalConfig,
    base: FlatVectors<'_, f32>,
    queries: FlatVectors<'_, f32>,
    ground_truth: &[u32],
    gt_k: usize,
) -> Result<Vec<EvalRow>> {
    let nq = queries.len();
    if base.dim() != queries.dim() || gt_k < config.k || ground_truth.len() != nq * gt_k {
        return Err(EngineError::InvalidArgument(format!(
            "evaluation inputs disagree: base dim {}, query dim {}, {} ground-truth ids for {nq} queries x {gt_k}, k = {}",
            base.dim(),
            queries.dim(),
            ground_truth.len(),
            config.k
        )));
    }
    let mut rows = Vec::new();
    for &kind in &config.kinds {
        let t = Instant::now();
        let q = Quantizer::train(kind, base, config.metric, config.seed)?;
        let train_secs = t.elapsed().as_secs_f64();

        let t = Instant::now();
        let codes = q.encode_all(base);
        let encode_per_sec = base.len() as f64 / t.elapsed().as_secs_f64().max(1e-9);

        let (ns_scan, ns_random) = time_distances(&q, &codes, base.len(), queries, config);
        let recall = rerank_recall(&q, &codes, base, queries, ground_truth, gt_k, config);
        rows.push(EvalRow {
            kind: q.kind(),
            code_len: q.code_len(),
            model_bytes: q.to_bytes().len(),
            train_secs,
            encode_per_sec,
            ns_scan,
            ns_random,
            recall,
        });
    }
    Ok(rows)
}

/// Single-threaded nanoseconds per code distance: in order, and at random
/// ids. Each figure is the fastest of the timed queries, which filters out
/// preemption on a shared machine; query preparation is excluded (it is
/// once per query).
fn time_distances(
    q: &Quantizer,
    codes: &[u8],
    n: usize,
    queries: FlatVectors<'_, f32>,
    config: &EvalConfig,
) -> (f64, f64) {
    let timed = config.timed_queries.clamp(1, queries.len().max(1));
    let prepared: Vec<_> = queries
        .as_slice()
        .chunks_exact(queries.dim())
        .take(timed)
        .map(|v| q.query(v))
        .collect();
    let mut out = vec![0f32; n];
    let mut sink = 0f32;
    let mut ns_scan = f64::INFINITY;
    for p in &prepared {
        let t = Instant::now();
        p.scan(codes, &mut out);
        ns_scan = ns_scan.min(t.elapsed().as_nanos() as f64 / n.max(1) as f64);
        sink += out.iter().fold(0f32, |a, &b| a.max(b));
    }

    let mut rng = SplitMix64::new(config.seed);
    let ids: Vec<u32> = (0..n.min(1 << 16)).map(|_| rng.below(n) as u32).collect();
    let mut out = vec![0f32; ids.len()];
    let mut ns_random = f64::INFINITY;
    for p in &prepared {
        let t = Instant::now();
        p.distances(codes, &ids, &mut out);
        ns_random = ns_random.min(t.elapsed().as_nanos() as f64 / ids.len().max(1) as f64);
        sink += out.iter().fold(0f32, |a, &b| a.max(b));
    }
    std::hint::black_box(sink);
    (ns_scan, ns_random)
}

/// Mean recall@k after reranking the best `N` codes exactly, for each `N`.
fn rerank_recall(
    q: &Quantizer,
    codes: &[u8],
    base: FlatVectors<'_, f32>,
    queries: FlatVectors<'_, f32>,
    ground_truth: &[u32],
    gt_k: usize,
    config: &EvalConfig,
) -> Vec<(usize, f64)> {
    let kernels = Kernels::<f32>::best();
    let max_n = config.rerank.iter().copied().max().unwrap_or(0);
    let hits: Vec<Vec<usize>> = queries
        .as_slice()
        .par_chunks(queries.dim())
        .zip(ground_truth.par_chunks(gt_k))
        .map(|(v, gt)| {
            let prepared = q.query(v);
            let mut out = vec![0f32; base.len()];
            prepared.scan(codes, &mut out);
            let mut cand: Vec<(f32, u32)> = out.into_iter().zip(0u32..).collect();
            top(&mut cand, max_n);
            let truth = gt.get(..config.k).unwrap_or(gt);
            config
                .rerank
                .iter()
                .map(|&n| {
                    let mut exact: Vec<(f32, u32)> = cand
                        .iter()
                        .take(n)
                        .map(|&(_, i)| {
                            (kernels.distance(config.metric, v, base.get(i as usize)), i)
                        })
                        .collect();
                    top(&mut exact, config.k);
                    exact.iter().filter(|(_, i)| truth.contains(i)).count()
                })
                .collect()
        })
        .collect();
    let denom = (queries.len() * config.k).max(1) as f64;
    config
        .rerank
        .iter()
        .enumerate()
        .map(|(j, &n)| {
            let total: usize = hits.iter().filter_map(|h| h.get(j)).sum();
            (n, total as f64 / denom)
        })
        .collect()
}

/// A Markdown table of `rows`, one line per quantizer.
pub fn format_table(rows: &[EvalRow], k: usize) -> String {
    let mut s = String::new();
    let ns: Vec<usize> = rows
        .first()
        .map(|r| r.recall.iter().map(|&(n, _)| n).collect())
        .unwrap_or_default();
    let _ = write!(
        s,
        "| quantizer | B/vector | model KiB | train s | encode vec/s | ns/dist scan | ns/dist random |"
    );
    for n in &ns {
        let _ = write!(s, " R@{k} N={n} |");
    }
    s.push('\n');
    s.push_str("|---|---:|---:|---:|---:|---:|---:|");
    for _ in &ns {
        s.push_str("---:|");
    }
    s.push('\n');
    for r in rows {
        let _ = write!(
            s,
            "| {} | {} | {:.0} | {:.2} | {:.0} | {:.2} | {:.2} |",
            r.kind,
            r.code_len,
            r.model_bytes as f64 / 1024.0,
            r.train_secs,
            r.encode_per_sec,
            r.ns_scan,
            r.ns_random
        );
        for &(_, recall) in &r.recall {
            let _ = write!(s, " {recall:.3} |");
        }
        s.push('\n');
    }
    s
}
