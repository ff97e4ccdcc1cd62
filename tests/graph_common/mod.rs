//! Shared helpers of the graph integration tests: clustered data from the
//! synthetic generator, exact ground truth and recall.

#![allow(dead_code, reason = "each test binary uses a different subset")]

use omendb::engine::distance::{Element, Kernels};
use omendb::engine::graph::Neighbour;
use omendb::engine::synth::{Stream, SynthElement, SynthModel};
use omendb::engine::vectors::{FlatVectors, VectorSet};
use omendb::{ElementType, Metric};

/// `n` base and `q` query vectors of dimension `dim`, clustered, as `T`.
pub fn dataset<T: SynthElement + Element>(
    seed: u64,
    n: usize,
    q: usize,
    dim: usize,
) -> (Vec<T>, Vec<T>) {
    let model = SynthModel::new(seed, n as u64, dim).expect("model");
    let quant = model.quantizer(T::TYPE);
    let draw = |stream, count: usize| {
        let mut raw = vec![0f32; count * dim];
        model.fill(stream, 0, &mut raw);
        raw.iter()
            .map(|&x| T::quantize(&quant, x))
            .collect::<Vec<T>>()
    };
    (draw(Stream::Base, n), draw(Stream::Query, q))
}

/// The element type a test runs on, for messages.
pub fn type_name<T: Element>() -> &'static str {
    match T::TYPE {
        ElementType::F32 => "f32",
        ElementType::F16 => "f16",
        ElementType::U8 => "u8",
        ElementType::I8 => "i8",
    }
}

/// Exact `k` nearest neighbours of every query, ties by id.
pub fn ground_truth<T: Element>(
    base: &FlatVectors<'_, T>,
    queries: &FlatVectors<'_, T>,
    metric: Metric,
    k: usize,
) -> Vec<Vec<u32>> {
    use rayon::prelude::*;
    let kern = Kernels::<T>::best();
    (0..queries.len())
        .into_par_iter()
        .map(|qi| {
            let q = queries.get(qi);
            let mut all: Vec<Neighbour> = (0..base.len())
                .map(|i| Neighbour {
                    id: i as u32,
                    distance: kern.distance(metric, q, base.get(i)),
                })
                .collect();
            all.sort_by(|a, b| a.distance.total_cmp(&b.distance).then(a.id.cmp(&b.id)));
            all.iter().take(k).map(|n| n.id).collect()
        })
        .collect()
}

/// Mean fraction of the true `k` nearest found among `found` (first `k`).
pub fn recall(truth: &[Vec<u32>], found: &[Vec<u32>], k: usize) -> f64 {
    let mut hits = 0usize;
    for (t, f) in truth.iter().zip(found) {
        let t = &t[..k.min(t.len())];
        hits += f.iter().take(k).filter(|id| t.contains(id)).count();
    }
    hits as f64 / (truth.len() * k) as f64
}

/// Runs the test `name` of this test binary alone in a child process,
/// with `env` set to `dir` and two rayon threads, so that its peak RSS is
/// its own; the child writes what it measured under `dir`.
pub fn run_child_test(name: &str, env: &str, dir: &std::path::Path) {
    let status = std::process::Command::new(std::env::current_exe().unwrap())
        .args(["--exact", name, "--nocapture", "--test-threads=1"])
        .env(env, dir)
        .env("RAYON_NUM_THREADS", "2")
        .status()
        .unwrap();
    assert!(status.success(), "child test {name} failed");
}

/// The whitespace-separated numbers of a report file a child wrote.
pub fn read_numbers(path: &std::path::Path) -> Vec<usize> {
    std::fs::read_to_string(path)
        .unwrap()
        .split_whitespace()
        .map(|x| x.parse().unwrap())
        .collect()
}
