//! What one collection flush costs: writes a flat index (SPEC.md §2.8) of
//! 100,000 synthetic 128-d rows with each candidate code, printing the
//! phase times and recall@10 of 100 queries against brute force, with and
//! without the early stop. Numbers in benches/RESULTS.md ("Collections:
//! flat flushes").
//!
//! `cargo run --release -p omen-tools --example flat_flush -- [DIR]`

use std::path::PathBuf;
use std::time::Instant;

use omen_engine::index::{BuildOptions, MemoryRows, SearchParams, Segment, build_flat_segment};
use omen_engine::quant::QuantizerKind;
use omen_engine::synth::{Stream, SynthModel};
use omen_format::Metric;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let dir = PathBuf::from(std::env::args().nth(1).unwrap_or_else(|| "/tmp".into()));
    let (n, dim, nq, k) = (100_000usize, 128usize, 100usize, 10usize);
    let model = SynthModel::new(42, n as u64, dim)?;
    let mut base = vec![0f32; n * dim];
    for (i, row) in base.chunks_exact_mut(dim).enumerate() {
        model.sample(Stream::Base, i as u64, row);
    }
    let mut queries = vec![0f32; nq * dim];
    for (i, q) in queries.chunks_exact_mut(dim).enumerate() {
        model.sample(Stream::Query, i as u64, q);
    }
    let truth: Vec<Vec<u64>> = queries
        .chunks_exact(dim)
        .map(|q| {
            let mut d: Vec<(f32, u64)> = base
                .chunks_exact(dim)
                .enumerate()
                .map(|(i, x)| {
                    (
                        x.iter().zip(q).map(|(a, b)| (a - b) * (a - b)).sum(),
                        i as u64,
                    )
                })
                .collect();
            d.select_nth_unstable_by(k, |a, b| a.0.total_cmp(&b.0));
            d.truncate(k);
            d.into_iter().map(|x| x.1).collect()
        })
        .collect();
    let ids: Vec<u64> = (0..n as u64).collect();
    let path = dir.join("flat-flush-example.omen");
    for code in [
        QuantizerKind::RaBitQ {
            bits: 1,
            centroids: 16,
        },
        QuantizerKind::RaBitQ {
            bits: 2,
            centroids: 16,
        },
        QuantizerKind::RaBitQ {
            bits: 4,
            centroids: 16,
        },
    ] {
        let rows = MemoryRows {
            dim,
            vectors: &base,
            ids: &ids,
            label: "example",
        };
        let options = BuildOptions {
            code,
            training_sample: 16_384,
            ..BuildOptions::default()
        };
        let t = Instant::now();
        let report = build_flat_segment(&rows, Metric::L2, &path, &options, &|_, _, _| {})?;
        let phases: Vec<String> = report
            .phase_seconds
            .iter()
            .map(|(p, s)| format!("{} {s:.2} s", p.label()))
            .collect();
        println!(
            "{code}: flush of {n} rows {:.2} s ({})",
            t.elapsed().as_secs_f64(),
            phases.join(", ")
        );
        let segment = Segment::open(&path, &Default::default())?;
        for stop in [SearchParams::default().stop_permille, None] {
            let params = SearchParams {
                stop_permille: stop,
                ..SearchParams::default()
            };
            let t = Instant::now();
            let mut found = 0;
            for (q, want) in queries.chunks_exact(dim).zip(&truth) {
                let hits = segment.search(q, k, &params)?.0;
                found += hits.iter().filter(|h| want.contains(&h.id)).count();
            }
            println!(
                "  early stop {stop:?}: recall@{k} {:.4}, {:.2} ms per query",
                found as f64 / (nq * k) as f64,
                t.elapsed().as_secs_f64() * 1e3 / nq as f64
            );
        }
    }
    std::fs::remove_file(&path)?;
    Ok(())
}
