//! Distance kernels at every supported SIMD level.
//!
//! One criterion group per kernel, element type and dimension, named
//! `<kernel>/<type>/<dim>` (criterion stores it as `<kernel>_<type>_<dim>`),
//! with one benchmark per level (`scalar`, `avx2`, `avx512`, `neon`), so
//! `benches/kernel_speedups.py` can tabulate the speedups. Timings are short
//! (0.3 s warm-up, 0.6 s measurement, 20 samples) to keep the whole run to a
//! few minutes on a small machine; each call is tens to hundreds of
//! nanoseconds, so that still averages millions of calls.

use std::hint::black_box;
use std::time::Duration;

use criterion::{Criterion, criterion_group, criterion_main};
use half::f16;
use omendb::engine::distance::{Element, Kernels, SimdLevel};

/// Dimensions of common embedding models.
const DIMS: [usize; 5] = [96, 128, 384, 768, 1536];

/// Kernel names, in the field order of [`Kernels`].
const KERNELS: [&str; 3] = ["l2_squared", "dot", "cosine_distance"];

/// A deterministic pseudo-random stream (SplitMix64).
struct Rng(omendb::engine::rng::SplitMix64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0.next_u64()
    }

    /// Uniform in [-1, 1).
    fn unit(&mut self) -> f32 {
        (self.next() >> 40) as f32 / (1u64 << 23) as f32 - 1.0
    }
}

/// An element type with a name and a random generator for the benchmark.
trait BenchElement: Element {
    const NAME: &'static str;
    fn random(rng: &mut Rng) -> Self;
}

impl BenchElement for f32 {
    const NAME: &'static str = "f32";
    fn random(rng: &mut Rng) -> Self {
        rng.unit()
    }
}

impl BenchElement for f16 {
    const NAME: &'static str = "f16";
    fn random(rng: &mut Rng) -> Self {
        f16::from_f32(rng.unit())
    }
}

impl BenchElement for u8 {
    const NAME: &'static str = "u8";
    fn random(rng: &mut Rng) -> Self {
        rng.next() as u8
    }
}

impl BenchElement for i8 {
    const NAME: &'static str = "i8";
    fn random(rng: &mut Rng) -> Self {
        rng.next() as i8
    }
}

/// Benchmarks every kernel of `T` at every dimension and supported level.
fn bench_type<T: BenchElement>(c: &mut Criterion) {
    let levels: Vec<Kernels<T>> = SimdLevel::supported()
        .into_iter()
        .filter_map(Kernels::<T>::for_level)
        .collect();
    let mut rng = Rng(omendb::engine::rng::SplitMix64::new(0x0de0_0d1b));
    for dim in DIMS {
        let a: Vec<T> = (0..dim).map(|_| T::random(&mut rng)).collect();
        let b: Vec<T> = (0..dim).map(|_| T::random(&mut rng)).collect();
        for (i, kernel) in KERNELS.into_iter().enumerate() {
            let mut group = c.benchmark_group(format!("{kernel}/{}/{dim}", T::NAME));
            for k in &levels {
                let f = [k.l2_squared, k.dot, k.cosine_distance][i];
                group.bench_function(k.level.name(), |bench| {
                    bench.iter(|| f(black_box(&a), black_box(&b)))
                });
            }
            group.finish();
        }
    }
}

fn distance(c: &mut Criterion) {
    bench_type::<f32>(c);
    bench_type::<f16>(c);
    bench_type::<u8>(c);
    bench_type::<i8>(c);
}

criterion_group! {
    name = benches;
    config = Criterion::default()
        .warm_up_time(Duration::from_millis(300))
        .measurement_time(Duration::from_millis(600))
        .sample_size(20);
    targets = distance
}
criterion_main!(benches);
