//! `omen bench ingest`: durable ingest into a collection, with recall of
//! queries during and after, and optionally deletes, re-inserts and a
//! compaction measured against a fresh build of the same live data.
//!
//! Numbers are measurements of this run on this machine; nothing here
//! asserts a speed.

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use clap::Args;
use omen_engine::collection::{Collection, CollectionOptions, Durability, Schema};
use omen_engine::distance::Kernels;
use omen_engine::index::{
    BuildOptions, Hit, MemoryRows, SearchParams, Segment, SegmentOptions, build_segment,
};
use omen_engine::rng::SplitMix64;
use omen_engine::synth::{Stream, SynthModel};
use omen_format::Metric;
use rayon::prelude::*;

use crate::{Result, ToolError, say};

/// `--help` text of `omen bench ingest`.
pub const LONG_ABOUT: &str = "\
Create a collection in --dir and insert --n synthetic vectors (the model of \
`omen data synth`) in batches of --batch. Each insert returns only once the \
batch is durable (fsync per commit by default), so the rate printed is \
durable vectors per second. After every batch the last vector inserted is \
searched for and must come back at distance 0 (searchable on \
acknowledgement). At ten points during the ingest, and after it, --queries \
queries are run and scored against exact ground truth over the rows \
inserted so far.

With --delete-fraction F, F of the rows are then deleted and re-inserted \
with new vectors (upserts of the same ids), the collection is flushed and \
compacted, and recall is compared with a fresh omen-build style build of the \
same live rows at the same search settings. Query latency is measured while \
the collection is quiet and while the compaction runs.

Examples:
  omen bench ingest --dir /tmp/c --n 200000 --dim 128 --batch 1000
  omen bench ingest --dir /tmp/c --n 200000 --delete-fraction 0.3
  omen bench ingest --dir /tmp/c --n 100000 --durability interval:100";

/// Arguments of `omen bench ingest`.
#[derive(Debug, Args)]
pub struct IngestArgs {
    /// The collection directory to create (must not exist or be empty).
    #[arg(long)]
    pub dir: PathBuf,
    /// Vectors to insert.
    #[arg(long, default_value_t = 100_000)]
    pub n: u64,
    #[arg(long, default_value_t = 128)]
    pub dim: usize,
    /// Rows per insert call (one commit).
    #[arg(long, default_value_t = 1000)]
    pub batch: usize,
    /// Writing threads (they share group commits).
    #[arg(long, default_value_t = 1)]
    pub writers: usize,
    /// `commit` (fsync before every acknowledgement) or `interval:MS`.
    #[arg(long, default_value = "commit")]
    pub durability: String,
    /// Memtable rows before a flush.
    #[arg(long, default_value_t = CollectionOptions::default().memtable_rows)]
    pub memtable_rows: usize,
    /// Queries scored at each checkpoint.
    #[arg(long, default_value_t = 100)]
    pub queries: usize,
    #[arg(long, default_value_t = 10)]
    pub k: usize,
    /// Search candidate list size.
    #[arg(long, default_value_t = SearchParams::default().ef)]
    pub ef: usize,
    /// Fraction of rows to delete and re-insert after the ingest.
    #[arg(long, default_value_t = 0.0)]
    pub delete_fraction: f64,
    #[arg(long, default_value_t = 42)]
    pub seed: u64,
    /// Stop after the ingest phase: no final flush, no later phases (the
    /// unflushed rows stay in the WAL and are replayed at the next open).
    #[arg(long)]
    pub ingest_only: bool,
    /// Skip the search after every acknowledged batch, so that the writers
    /// never pause and the flusher gets no idle time from them: the
    /// strictest measure of the sustained rate (recall is still measured at
    /// the checkpoints).
    #[arg(long)]
    pub no_ack_search: bool,
    /// Pauses during the ingest to measure recall against brute force.
    /// Background flushes catch up during each pause; with 1, the only
    /// measurement is at the end and the writers never stop.
    #[arg(long, default_value_t = 10)]
    pub checkpoints: usize,
}

fn durability(s: &str) -> Result<Durability> {
    if s == "commit" {
        return Ok(Durability::PerCommit);
    }
    s.strip_prefix("interval:")
        .and_then(|ms| ms.parse().ok())
        .map(|ms| Durability::Interval(Duration::from_millis(ms)))
        .ok_or_else(|| {
            ToolError::Usage(format!("--durability {s}: expected commit or interval:MS"))
        })
}

/// The rows a benchmark has written: id -> vector (ids are 0..n).
struct Live {
    dim: usize,
    vectors: Vec<f32>,
    alive: Vec<bool>,
}

impl Live {
    fn ground_truth(&self, queries: &[Vec<f32>], k: usize, upto: usize) -> Vec<Vec<u64>> {
        let kernels = Kernels::<f32>::best();
        queries
            .par_iter()
            .map(|q| {
                let mut best: Vec<(f32, u64)> = Vec::with_capacity(k + 1);
                for (id, v) in self.vectors[..upto * self.dim]
                    .chunks_exact(self.dim)
                    .enumerate()
                {
                    if !self.alive[id] {
                        continue;
                    }
                    let d = kernels.distance(Metric::L2, q, v);
                    if best.len() < k || d < best[best.len() - 1].0 {
                        let at = best.partition_point(|b| b.0 <= d);
                        best.insert(at, (d, id as u64));
                        best.truncate(k);
                    }
                }
                best.into_iter().map(|b| b.1).collect()
            })
            .collect()
    }
}

fn recall(hits: &[Vec<Hit>], gt: &[Vec<u64>], k: usize) -> f64 {
    let found: usize = hits
        .iter()
        .zip(gt)
        .map(|(h, g)| h.iter().take(k).filter(|h| g.contains(&h.id)).count())
        .sum();
    found as f64 / (gt.len() * k).max(1) as f64
}

/// Searches every query once on this thread; returns hits and latencies.
fn run_queries(
    search: &dyn Fn(&[f32]) -> omen_engine::Result<Vec<Hit>>,
    queries: &[Vec<f32>],
) -> Result<(Vec<Vec<Hit>>, Vec<f64>)> {
    let mut hits = Vec::with_capacity(queries.len());
    let mut ms = Vec::with_capacity(queries.len());
    for q in queries {
        let t = Instant::now();
        hits.push(search(q)?);
        ms.push(t.elapsed().as_secs_f64() * 1e3);
    }
    Ok((hits, ms))
}

fn percentile(ms: &mut [f64], p: f64) -> f64 {
    ms.sort_by(f64::total_cmp);
    ms.get(((ms.len() as f64 * p).ceil() as usize).saturating_sub(1))
        .copied()
        .unwrap_or(0.0)
}

/// Runs `omen bench ingest`.
pub fn run(args: &IngestArgs) -> Result<()> {
    if args.n == 0
        || args.batch == 0
        || args.queries == 0
        || args.writers == 0
        || args.checkpoints == 0
    {
        return Err(ToolError::Usage(
            "--n, --batch, --queries, --writers and --checkpoints must be at least 1".into(),
        ));
    }
    if !(0.0..1.0).contains(&args.delete_fraction) {
        return Err(ToolError::Usage(
            "--delete-fraction must be in [0, 1)".into(),
        ));
    }
    let n = args.n as usize;
    let dim = args.dim;
    let options = CollectionOptions {
        durability: durability(&args.durability)?,
        memtable_rows: args.memtable_rows,
        // Compaction runs at a measured point below.
        auto_compact: false,
        ..CollectionOptions::default()
    };
    let build = options.build.clone();
    let params = SearchParams {
        ef: args.ef,
        ..SearchParams::default()
    };
    let model = SynthModel::new(args.seed, args.n, dim)?;
    let rows_needed = n + (n as f64 * args.delete_fraction) as usize;
    let mut all = vec![0f32; rows_needed * dim];
    all.par_chunks_mut(dim)
        .enumerate()
        .for_each(|(i, v)| model.sample(Stream::Base, i as u64, v));
    let mut queries = vec![vec![0f32; dim]; args.queries];
    for (i, q) in queries.iter_mut().enumerate() {
        model.sample(Stream::Query, i as u64, q);
    }
    let mut live = Live {
        dim,
        vectors: all[..n * dim].to_vec(),
        alive: vec![true; n],
    };

    let c = Arc::new(Collection::create(
        &args.dir,
        Schema::new(dim, Metric::L2),
        options.clone(),
    )?);
    say!(
        "collection {} ({} × {dim} f32 l2), batches of {}, {} writer(s), durability {}, memtable {} rows",
        args.dir.display(),
        n,
        args.batch,
        args.writers,
        args.durability,
        args.memtable_rows
    );

    // 1. Ingest, with checkpoints.
    let batches: Vec<(usize, usize)> = (0..n)
        .step_by(args.batch)
        .map(|s| (s, (s + args.batch).min(n)))
        .collect();
    let checkpoint_every = batches.len().div_ceil(args.checkpoints).max(1);
    let mut ingest_secs = 0.0;
    let mut wall_secs = 0.0;
    let mut immediate = (0usize, 0usize);
    let mut during = Vec::new();
    for (round, chunk) in batches.chunks(checkpoint_every).enumerate() {
        let t = Instant::now();
        let found = std::thread::scope(|s| {
            let per = chunk.len().div_ceil(args.writers);
            let handles: Vec<_> = chunk
                .chunks(per)
                .map(|part| {
                    let c = Arc::clone(&c);
                    let all = &all;
                    let no_ack_search = args.no_ack_search;
                    s.spawn(move || -> omen_engine::Result<(Vec<bool>, f64)> {
                        let mut found = Vec::new();
                        let mut inserting = 0.0;
                        for &(a, b) in part {
                            let ids: Vec<u64> = (a as u64..b as u64).collect();
                            let t = Instant::now();
                            c.insert(&ids, &all[a * dim..b * dim], &[])?;
                            inserting += t.elapsed().as_secs_f64();
                            if no_ack_search {
                                continue;
                            }
                            // Searchable on acknowledgement.
                            let last = &all[(b - 1) * dim..b * dim];
                            let hits = c.search(last, 1, &params)?;
                            found.push(hits.first().is_some_and(|h| h.distance == 0.0));
                        }
                        Ok((found, inserting))
                    })
                })
                .collect();
            handles
                .into_iter()
                .map(|h| h.join().expect("writer thread"))
                .collect::<omen_engine::Result<Vec<(Vec<bool>, f64)>>>()
        })?;
        wall_secs += t.elapsed().as_secs_f64();
        // The writers insert in parallel: the slowest one's insert time.
        ingest_secs += found.iter().map(|f| f.1).fold(0.0, f64::max);
        let found: Vec<bool> = found.into_iter().flat_map(|f| f.0).collect();
        immediate.0 += found.iter().filter(|&&f| f).count();
        immediate.1 += found.len();
        let upto = chunk.last().map_or(0, |c| c.1);
        let gt = live.ground_truth(&queries, args.k, upto);
        let (hits, mut ms) = run_queries(&|q| c.search(q, args.k, &params), &queries)?;
        let stats = c.stats();
        let r = recall(&hits, &gt, args.k);
        say!(
            "  {:>3}%  {:>9} rows  {:>9.0} durable vectors/s so far  recall@{} {:.4}  p50 {:.2} ms  p99 {:.2} ms  ({} segments, {} frozen memtables)",
            (round + 1) * 100 / batches.len().div_ceil(checkpoint_every),
            upto,
            upto as f64 / ingest_secs,
            args.k,
            r,
            percentile(&mut ms, 0.5),
            percentile(&mut ms, 0.99),
            stats.segments.len(),
            stats.frozen_memtables
        );
        during.push(r);
    }
    say!(
        "ingest: {n} vectors acknowledged in {ingest_secs:.2} s of insert calls = {:.0} durable vectors/s ({wall_secs:.2} s wall, {:.0} vectors/s, with a search after every batch); the last vector of {}/{} batches was found at distance 0 right after its acknowledgement",
        n as f64 / ingest_secs,
        n as f64 / wall_secs,
        immediate.0,
        immediate.1
    );
    say!(
        "recall@{} during ingest: min {:.4}, mean {:.4}",
        args.k,
        during.iter().copied().fold(f64::INFINITY, f64::min),
        during.iter().sum::<f64>() / during.len() as f64
    );
    if args.ingest_only {
        return close(c);
    }
    let t = Instant::now();
    c.flush()?;
    say!(
        "flush of the remaining memtables: {:.1} s",
        t.elapsed().as_secs_f64()
    );
    let gt = live.ground_truth(&queries, args.k, n);
    let (hits, mut ms) = run_queries(&|q| c.search(q, args.k, &params), &queries)?;
    say!(
        "after ingest: recall@{} {:.4}, p50 {:.2} ms, p99 {:.2} ms, {} segments",
        args.k,
        recall(&hits, &gt, args.k),
        percentile(&mut ms, 0.5),
        percentile(&mut ms, 0.99),
        c.stats().segments.len()
    );

    if args.delete_fraction > 0.0 {
        // 2. Delete a random fraction, then re-insert those ids with new vectors.
        let mut rng = SplitMix64::new(args.seed ^ 0xde1e7e);
        let mut ids: Vec<u64> = (0..n as u64).collect();
        for i in (1..ids.len()).rev() {
            ids.swap(i, rng.below(i + 1));
        }
        ids.truncate((n as f64 * args.delete_fraction) as usize);
        let t = Instant::now();
        for chunk in ids.chunks(args.batch) {
            c.delete(chunk)?;
            for &id in chunk {
                live.alive[id as usize] = false;
            }
        }
        let delete_secs = t.elapsed().as_secs_f64();
        let gt = live.ground_truth(&queries, args.k, n);
        let (hits, _) = run_queries(&|q| c.search(q, args.k, &params), &queries)?;
        say!(
            "deleted {} rows in {delete_secs:.2} s; recall@{} over the {} live rows {:.4}",
            ids.len(),
            args.k,
            n - ids.len(),
            recall(&hits, &gt, args.k)
        );
        let t = Instant::now();
        for (j, chunk) in ids.chunks(args.batch).enumerate() {
            let first = n + j * args.batch;
            let vectors = &all[first * dim..(first + chunk.len()) * dim];
            c.upsert(chunk, vectors, &[])?;
            for (i, &id) in chunk.iter().enumerate() {
                let id = id as usize;
                live.vectors[id * dim..(id + 1) * dim]
                    .copy_from_slice(&vectors[i * dim..(i + 1) * dim]);
                live.alive[id] = true;
            }
        }
        let reinsert_secs = t.elapsed().as_secs_f64();
        c.flush()?;
        let gt = live.ground_truth(&queries, args.k, n);
        let (hits, mut quiet_ms) = run_queries(&|q| c.search(q, args.k, &params), &queries)?;
        let stats = c.stats();
        say!(
            "re-inserted {} rows in {reinsert_secs:.2} s ({:.0} vectors/s); after flush: recall@{} {:.4}, {} segments, {} tombstones",
            ids.len(),
            ids.len() as f64 / reinsert_secs,
            args.k,
            recall(&hits, &gt, args.k),
            stats.segments.len(),
            stats.segments.iter().map(|s| s.3).sum::<u64>()
        );

        // 3. Quiet latency, then latency while compacting.
        for _ in 0..4 {
            quiet_ms.extend(run_queries(&|q| c.search(q, args.k, &params), &queries)?.1);
        }
        let quiet_p99 = percentile(&mut quiet_ms, 0.99);
        let quiet_p50 = percentile(&mut quiet_ms, 0.5);
        let busy = AtomicBool::new(true);
        let t = Instant::now();
        let (compactions, mut busy_ms) = std::thread::scope(|s| {
            let compactor = s.spawn(|| {
                let r = c.compact();
                busy.store(false, Ordering::Release);
                r
            });
            let mut ms = Vec::new();
            while busy.load(Ordering::Acquire) {
                let (_, m) = run_queries(&|q| c.search(q, args.k, &params), &queries)?;
                ms.extend(m);
            }
            let done = compactor.join().expect("compactor")?;
            Ok::<_, ToolError>((done, ms))
        })?;
        let compact_secs = t.elapsed().as_secs_f64();
        let busy_p99 = percentile(&mut busy_ms, 0.99);
        let (hits, _) = run_queries(&|q| c.search(q, args.k, &params), &queries)?;
        let after = recall(&hits, &gt, args.k);
        let stats = c.stats();
        say!(
            "compaction: {compactions} merge(s) in {compact_secs:.1} s; query p50/p99 quiet {quiet_p50:.2}/{quiet_p99:.2} ms, during compaction p50/p99 {:.2}/{busy_p99:.2} ms ({} queries, p99 ratio {:.2})",
            percentile(&mut busy_ms, 0.5),
            busy_ms.len(),
            busy_p99 / quiet_p99.max(1e-9)
        );
        say!(
            "after compaction: recall@{} {after:.4}, {} segments, {} tombstones",
            args.k,
            stats.segments.len(),
            stats.segments.iter().map(|s| s.3).sum::<u64>()
        );

        // 4. A fresh build of the same live rows.
        let live_ids: Vec<u64> = (0..n as u64).filter(|&i| live.alive[i as usize]).collect();
        let live_vectors: Vec<f32> = live_ids
            .iter()
            .flat_map(|&i| {
                live.vectors[i as usize * dim..(i as usize + 1) * dim]
                    .iter()
                    .copied()
            })
            .collect();
        let fresh_path = args.dir.join("fresh-build.omen.bench");
        let t = Instant::now();
        build_segment(
            &MemoryRows {
                dim,
                vectors: &live_vectors,
                ids: &live_ids,
                label: "fresh build",
            },
            Metric::L2,
            &fresh_path,
            &BuildOptions {
                temp_dir: Some(args.dir.clone()),
                ..build
            },
            &|_, _, _| {},
        )?;
        let fresh = Segment::open(&fresh_path, &SegmentOptions::default())?;
        let (hits, _) = run_queries(
            &|q| fresh.search(q, args.k, &params).map(|(h, _)| h),
            &queries,
        )?;
        let fresh_recall = recall(&hits, &gt, args.k);
        drop(fresh);
        let _ = std::fs::remove_file(&fresh_path);
        say!(
            "fresh build of the {} live rows: {:.1} s, recall@{} {fresh_recall:.4}; collection - fresh = {:+.4}",
            live_ids.len(),
            t.elapsed().as_secs_f64(),
            args.k,
            after - fresh_recall
        );
    }
    close(c)
}

fn close(c: Arc<Collection>) -> Result<()> {
    match Arc::try_unwrap(c) {
        Ok(c) => c.close()?,
        Err(_) => unreachable!("every thread that shared the collection has finished"),
    }
    Ok(())
}
