//! Deterministic synthetic datasets shaped like real embeddings.
//!
//! Uniform noise is a poor stand-in for embeddings: in high dimensions all
//! its points are nearly equidistant, so indexes look either perfect or
//! hopeless. Real embeddings are clustered, unevenly, and live near a
//! low-dimensional manifold. The model here reproduces that:
//!
//! - a latent space of `m = clamp(D / 4, 8, 64)` dimensions (at most `D`)
//!   with a decaying spectrum, so the intrinsic dimension is well below `D`;
//! - `C = clamp(sqrt(n) / 2, 16, 4096)` Gaussian clusters in it, with
//!   Zipf-distributed sizes, log-normal spreads and anisotropic per-axis
//!   variances;
//! - a fixed random projection to `D` dimensions, a common offset (real
//!   embeddings are not centred, which makes `ip` and `cos` differ from
//!   `l2`) and small isotropic noise.
//!
//! The constants were tuned so that 20K-200K vectors of dimension 128 have
//! a relative contrast of about 2.4-2.6 and a local intrinsic dimension
//! (MLE, k = 100) of about 15-19, close to SIFT; `D / 8` latent dimensions
//! with tighter clusters gave a contrast above 5, far easier than real data.
//!
//! Base vectors and queries are independent draws from the same model
//! (different random streams), so no query is a copy of a base point.
//!
//! Invariant: the output is a pure function of `(seed, n, dim)` and the
//! element type: every vector is drawn from its own generator, seeded from
//! `(seed, stream, index)`, so chunk sizes and thread counts cannot change a
//! byte. Memory is bounded by one chunk, independent of `n`.

use std::path::{Path, PathBuf};

use omen_format::dataset::{BigAnnWriter, DatasetElement, FileKind, WriteSummary};
use rayon::prelude::*;

use crate::{ElementType, EngineError, Result};

pub use crate::rng::SplitMix64;
use crate::rng::mix as mix64;

/// xoshiro256++: small, fast and statistically strong; written here so that
/// the datasets do not change when a dependency's algorithm does.
#[derive(Debug, Clone)]
pub struct Rng {
    s: [u64; 4],
    spare_normal: Option<f64>,
}

impl Rng {
    /// A generator seeded from one word.
    pub fn new(seed: u64) -> Self {
        let mut sm = SplitMix64::new(seed);
        let s = [sm.next_u64(), sm.next_u64(), sm.next_u64(), sm.next_u64()];
        Rng {
            s,
            spare_normal: None,
        }
    }

    /// The generator of item `index` of `stream` under `seed`. Distinct
    /// triples give unrelated sequences, which is what makes parallel,
    /// chunked generation reproducible.
    pub fn for_item(seed: u64, stream: u64, index: u64) -> Self {
        let key = mix64(seed ^ mix64(stream.wrapping_add(0xA076_1D64_78BD_642F)));
        Rng::new(mix64(
            key ^ mix64(index.wrapping_add(0xE703_7ED1_A0B4_28DB)),
        ))
    }

    /// The next 64 random bits.
    #[inline]
    pub fn next_u64(&mut self) -> u64 {
        let s = &mut self.s;
        let result = s[0].wrapping_add(s[3]).rotate_left(23).wrapping_add(s[0]);
        let t = s[1] << 17;
        s[2] ^= s[0];
        s[3] ^= s[1];
        s[1] ^= s[2];
        s[0] ^= s[3];
        s[2] ^= t;
        s[3] = s[3].rotate_left(45);
        result
    }

    /// Uniform in `[0, 1)`, with 53 random bits.
    #[inline]
    pub fn uniform(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 * (1.0 / (1u64 << 53) as f64)
    }

    /// An approximately standard normal deviate, from one 64-bit draw: the
    /// sum of four 16-bit uniforms (Irwin-Hall), centred and scaled to unit
    /// variance. Its tails stop at 3.5 sigma; it serves for the isotropic
    /// noise, where exact tails do not matter and Box-Muller's logarithm
    /// and sine per pair would dominate generation time.
    #[inline]
    pub fn approx_normal(&mut self) -> f32 {
        let r = self.next_u64();
        let lanes = (r & 0xFFFF) + ((r >> 16) & 0xFFFF) + ((r >> 32) & 0xFFFF) + (r >> 48);
        // Four lanes of mean 32767.5 and variance (65536^2 - 1) / 12.
        const SCALE: f32 = 1.0 / 37_837.23;
        (lanes as f32 - 131_070.0) * SCALE
    }

    /// Uniform in `0..n` (`n > 0`), by Lemire's multiply-shift; the bias is
    /// below 2^-32 for every `n` used here.
    #[inline]
    pub fn below(&mut self, n: u64) -> u64 {
        ((u128::from(self.next_u64()) * u128::from(n)) >> 64) as u64
    }

    /// A standard normal deviate (Box-Muller; each pair yields two).
    #[inline]
    pub fn normal(&mut self) -> f64 {
        if let Some(z) = self.spare_normal.take() {
            return z;
        }
        let (z, spare) = crate::rng::box_muller(self.uniform(), self.uniform());
        self.spare_normal = Some(spare);
        z
    }
}

/// Which independent sequence a vector comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Stream {
    /// The indexed vectors.
    Base,
    /// The query vectors.
    Query,
    /// Vectors used only to calibrate integer quantisation.
    Calibration,
}

impl Stream {
    fn id(self) -> u64 {
        match self {
            Stream::Base => 1,
            Stream::Query => 2,
            Stream::Calibration => 3,
        }
    }
}

/// The stream the model's own parameters are drawn from.
const MODEL_STREAM: u64 = 0;
/// Vectors drawn to calibrate quantisation.
const CALIBRATION_ROWS: usize = 4096;
/// Zipf exponent of the cluster sizes: the largest of 200 clusters holds
/// about 13% of the points, the smallest about 0.1%.
const ZIPF_EXPONENT: f64 = 0.9;
/// Standard deviation of the logarithm of a cluster's spread.
const SPREAD_LOG_SD: f64 = 0.5;
/// Standard deviation of the logarithm of each per-axis scale.
const AXIS_LOG_SD: f64 = 0.4;
/// Mean cluster spread relative to the spread of the cluster centres:
/// clusters overlap, as topics in real embeddings do.
const SPREAD: f64 = 0.8;
/// Size of the common offset relative to the data's scale.
const OFFSET: f64 = 0.5;
/// Isotropic noise relative to the data's per-coordinate scale.
const NOISE: f64 = 0.15;
/// Latent axis `j` has scale `(j + 1)^-SPECTRUM_DECAY`.
const SPECTRUM_DECAY: f64 = 0.25;

/// Latent dimensions for ambient dimension `dim`.
pub fn latent_dim(dim: usize) -> usize {
    (dim / 4).clamp(8, 64).min(dim)
}

/// Number of clusters for `n` base vectors.
pub fn cluster_count(n: u64) -> usize {
    let half_root = ((n as f64).sqrt() / 2.0).round() as usize;
    half_root.clamp(16, 4096)
}

/// The fixed parameters of one synthetic dataset.
#[derive(Debug, Clone)]
pub struct SynthModel {
    seed: u64,
    dim: usize,
    latent: usize,
    /// Cumulative cluster probabilities, last = 1.
    cumulative: Vec<f64>,
    /// Cluster centres, `clusters × latent`.
    centres: Vec<f32>,
    /// Per-cluster, per-axis standard deviations, `clusters × latent`.
    scales: Vec<f32>,
    /// Projection, stored transposed (`latent × dim`, row `j` is the image
    /// of latent axis `j`) so that projecting is a sum of scaled rows,
    /// which vectorises, rather than `dim` short dot products, which do not.
    basis: Vec<f32>,
    /// Common offset, `dim`.
    offset: Vec<f32>,
    /// Isotropic noise standard deviation.
    noise: f32,
}

impl SynthModel {
    /// The model for `n` base vectors of dimension `dim` under `seed`.
    pub fn new(seed: u64, n: u64, dim: usize) -> Result<Self> {
        if !(1..=omen_format::dataset::MAX_DIM).contains(&dim) {
            return Err(EngineError::InvalidArgument(format!(
                "dimension {dim} is outside 1..={}",
                omen_format::dataset::MAX_DIM
            )));
        }
        let latent = latent_dim(dim);
        let clusters = cluster_count(n);
        let mut rng = Rng::for_item(seed, MODEL_STREAM, 0);

        // A decaying latent spectrum, as the principal components of real
        // embeddings have.
        let spectrum: Vec<f64> = (0..latent)
            .map(|j| ((j + 1) as f64).powf(-SPECTRUM_DECAY))
            .collect();

        let weights: Vec<f64> = (0..clusters)
            .map(|c| ((c + 1) as f64).powf(-ZIPF_EXPONENT))
            .collect();
        let total: f64 = weights.iter().sum();
        let mut acc = 0.0;
        let mut cumulative: Vec<f64> = weights
            .iter()
            .map(|w| {
                acc += w / total;
                acc
            })
            .collect();
        if let Some(last) = cumulative.last_mut() {
            *last = 1.0;
        }

        let mut centres = Vec::with_capacity(clusters * latent);
        let mut scales = Vec::with_capacity(clusters * latent);
        for _ in 0..clusters {
            let spread = SPREAD * (SPREAD_LOG_SD * rng.normal()).exp();
            for s in &spectrum {
                centres.push((rng.normal() * s) as f32);
                scales.push((spread * s * (AXIS_LOG_SD * rng.normal()).exp()) as f32);
            }
        }

        // Entries N(0, 1/latent) keep each coordinate's variance near the
        // latent points' mean squared norm over `latent`, whatever `dim` is.
        let inv_root = 1.0 / (latent as f64).sqrt();
        let basis: Vec<f32> = (0..latent * dim)
            .map(|_| (rng.normal() * inv_root) as f32)
            .collect();

        // Coordinate scale: the mean of sum_j (centre_j^2 + scale_j^2) / latent.
        let energy: f64 = centres
            .iter()
            .chain(&scales)
            .map(|&x| f64::from(x) * f64::from(x))
            .sum::<f64>()
            / (clusters * latent) as f64;
        let coord_sd = energy.sqrt();
        let offset: Vec<f32> = (0..dim)
            .map(|_| (OFFSET * coord_sd * rng.normal()) as f32)
            .collect();

        Ok(SynthModel {
            seed,
            dim,
            latent,
            cumulative,
            centres,
            scales,
            basis,
            offset,
            noise: (NOISE * coord_sd) as f32,
        })
    }

    /// Ambient dimension.
    pub fn dim(&self) -> usize {
        self.dim
    }

    /// Latent (intrinsic) dimension.
    pub fn latent_dim(&self) -> usize {
        self.latent
    }

    /// Number of clusters.
    pub fn clusters(&self) -> usize {
        self.cumulative.len()
    }

    /// The seed.
    pub fn seed(&self) -> u64 {
        self.seed
    }

    /// The cluster that vector `index` of `stream` is drawn from (the
    /// first draw of its random stream, as in [`SynthModel::sample`]), for
    /// attributes correlated with the clusters.
    pub fn cluster_of(&self, stream: Stream, index: u64) -> usize {
        let mut rng = Rng::for_item(self.seed, stream.id(), index);
        let u = rng.uniform();
        self.cumulative
            .partition_point(|&p| p <= u)
            .min(self.clusters() - 1)
    }

    /// Draws vector `index` of `stream` into `out` (`dim` values).
    pub fn sample(&self, stream: Stream, index: u64, out: &mut [f32]) {
        let mut rng = Rng::for_item(self.seed, stream.id(), index);
        let u = rng.uniform();
        let c = self
            .cumulative
            .partition_point(|&p| p <= u)
            .min(self.clusters() - 1);
        let m = self.latent;
        let centre = &self.centres[c * m..(c + 1) * m];
        let scale = &self.scales[c * m..(c + 1) * m];
        for (x, &b) in out.iter_mut().zip(&self.offset) {
            *x = b + self.noise * rng.approx_normal();
        }
        for ((&mu, &s), axis) in centre
            .iter()
            .zip(scale)
            .zip(self.basis.chunks_exact(self.dim))
        {
            let z = mu + s * rng.normal() as f32;
            for (x, &p) in out.iter_mut().zip(axis) {
                *x += z * p;
            }
        }
    }

    /// Draws vectors `first..first + out.len() / dim` of `stream` into
    /// `out`, in parallel.
    pub fn fill(&self, stream: Stream, first: u64, out: &mut [f32]) {
        out.par_chunks_mut(self.dim)
            .with_min_len(64)
            .enumerate()
            .for_each(|(i, row)| self.sample(stream, first + i as u64, row));
    }

    /// How to turn this model's values into `element`s, calibrated on a
    /// fixed sample so that it too depends only on the model.
    pub fn quantizer(&self, element: ElementType) -> Quantizer {
        match element {
            ElementType::F32 => Quantizer::F32,
            ElementType::F16 => Quantizer::F16,
            ElementType::U8 | ElementType::I8 => {
                let mut sample = vec![0f32; CALIBRATION_ROWS * self.dim];
                self.fill(Stream::Calibration, 0, &mut sample);
                sample.sort_unstable_by(f32::total_cmp);
                let at = |q: f64| {
                    let i = ((sample.len() - 1) as f64 * q).round() as usize;
                    sample[i]
                };
                let (lo, hi) = (at(0.001), at(0.999));
                if element == ElementType::U8 {
                    // SIFT-style: an affine map of the central 99.8% onto
                    // 0..=255, clamping the tails.
                    let width = (hi - lo).max(f32::MIN_POSITIVE);
                    Quantizer::U8 {
                        low: lo,
                        scale: 255.0 / width,
                    }
                } else {
                    // Symmetric, so zero stays zero and signs survive.
                    let bound = lo.abs().max(hi.abs()).max(f32::MIN_POSITIVE);
                    Quantizer::I8 {
                        scale: 127.0 / bound,
                    }
                }
            }
        }
    }
}

/// A map from model values to a stored element type.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Quantizer {
    F32,
    F16,
    /// `round((x - low) * scale)` clamped to `0..=255`.
    U8 {
        low: f32,
        scale: f32,
    },
    /// `round(x * scale)` clamped to `-127..=127`.
    I8 {
        scale: f32,
    },
}

/// An element type the generator can emit.
pub trait SynthElement: DatasetElement {
    /// Converts one value under `q`.
    fn quantize(q: &Quantizer, x: f32) -> Self;
}

impl SynthElement for f32 {
    fn quantize(_: &Quantizer, x: f32) -> Self {
        x
    }
}

impl SynthElement for half::f16 {
    fn quantize(_: &Quantizer, x: f32) -> Self {
        half::f16::from_f32(x)
    }
}

impl SynthElement for u8 {
    fn quantize(q: &Quantizer, x: f32) -> Self {
        match *q {
            Quantizer::U8 { low, scale } => ((x - low) * scale).round().clamp(0.0, 255.0) as u8,
            _ => x.round().clamp(0.0, 255.0) as u8,
        }
    }
}

impl SynthElement for i8 {
    fn quantize(q: &Quantizer, x: f32) -> Self {
        match *q {
            Quantizer::I8 { scale } => (x * scale).round().clamp(-127.0, 127.0) as i8,
            _ => x.round().clamp(-127.0, 127.0) as i8,
        }
    }
}

/// Target values per generated chunk (16 MiB of f32), whatever the
/// dimension; bounds memory independently of `n`.
const CHUNK_VALUES: usize = 4 << 20;

/// Streams `count` vectors of `stream` into a big-ann file at `path`,
/// reporting rows written to `progress` after each chunk.
pub fn write_stream<T: SynthElement>(
    model: &SynthModel,
    stream: Stream,
    count: u64,
    path: &Path,
    progress: &dyn Fn(u64),
) -> Result<WriteSummary> {
    let q = model.quantizer(T::ELEMENT_TYPE.unwrap_or(ElementType::F32));
    let dim = model.dim;
    let chunk_rows = (CHUNK_VALUES / dim).max(1) as u64;
    let mut writer = BigAnnWriter::<T>::create(path, dim)?;
    let mut values = Vec::new();
    let mut converted: Vec<T> = Vec::new();
    let mut done = 0u64;
    while done < count {
        let rows = chunk_rows.min(count - done);
        let len = usize::try_from(rows).unwrap_or(usize::MAX) * dim;
        values.resize(len, 0.0);
        model.fill(stream, done, &mut values);
        converted.clear();
        values
            .par_iter()
            .with_min_len(4096)
            .map(|&x| T::quantize(&q, x))
            .collect_into_vec(&mut converted);
        writer.push(&converted)?;
        done += rows;
        progress(done);
    }
    Ok(writer.finish()?)
}

/// What [`write_dataset`] produced.
#[derive(Debug, Clone)]
pub struct DatasetSummary {
    /// The base vectors file.
    pub base_path: PathBuf,
    /// The query vectors file.
    pub query_path: PathBuf,
    /// The base file's rows, dimension and bytes.
    pub base: WriteSummary,
    /// The query file's rows, dimension and bytes.
    pub queries: WriteSummary,
    /// Clusters in the model.
    pub clusters: usize,
    /// Latent dimension of the model.
    pub latent_dim: usize,
}

/// Parameters of a generated dataset.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SynthConfig {
    /// Base vectors.
    pub n: u64,
    /// Dimension.
    pub dim: usize,
    /// Query vectors.
    pub queries: u64,
    /// Seed; the same seed, sizes and element type give the same bytes.
    pub seed: u64,
    /// Stored element type.
    pub element: ElementType,
}

/// Writes `dir/base.<ext>` and `dir/query.<ext>` (`ext` from the element
/// type: fbin, f16bin, u8bin, i8bin). `progress` receives rows written,
/// base then queries, out of `n + queries`.
pub fn write_dataset(
    config: &SynthConfig,
    dir: &Path,
    progress: &dyn Fn(u64),
) -> Result<DatasetSummary> {
    if config.n == 0 || config.queries == 0 {
        return Err(EngineError::InvalidArgument(format!(
            "need at least one base vector and one query (got n = {}, queries = {})",
            config.n, config.queries
        )));
    }
    let model = SynthModel::new(config.seed, config.n, config.dim)?;
    let ext = FileKind::bigann(config.element).extension();
    let base_path = dir.join(format!("base.{ext}"));
    let query_path = dir.join(format!("query.{ext}"));
    let n = config.n;
    let write = |stream, count, path: &Path, before: u64| match config.element {
        ElementType::F32 => {
            write_stream::<f32>(&model, stream, count, path, &|r| progress(before + r))
        }
        ElementType::F16 => {
            write_stream::<half::f16>(&model, stream, count, path, &|r| progress(before + r))
        }
        ElementType::U8 => {
            write_stream::<u8>(&model, stream, count, path, &|r| progress(before + r))
        }
        ElementType::I8 => {
            write_stream::<i8>(&model, stream, count, path, &|r| progress(before + r))
        }
    };
    let base = write(Stream::Base, n, &base_path, 0)?;
    let queries = write(Stream::Query, config.queries, &query_path, n)?;
    Ok(DatasetSummary {
        base_path,
        query_path,
        base,
        queries,
        clusters: model.clusters(),
        latent_dim: model.latent_dim(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn xoshiro_matches_reference() {
        // Reference: xoshiro256++ from state [1, 2, 3, 4] (Vigna's C code).
        let mut r = Rng {
            s: [1, 2, 3, 4],
            spare_normal: None,
        };
        let got: Vec<u64> = (0..3).map(|_| r.next_u64()).collect();
        assert_eq!(got, vec![41943041, 58720359, 3588806011781223]);
        // SplitMix64 from 0: the published first output.
        assert_eq!(SplitMix64::new(0).next_u64(), 0xE220_A839_7B1D_CDAF);
    }

    #[test]
    fn normals_have_unit_moments() {
        let mut r = Rng::new(7);
        let xs: Vec<f64> = (0..200_000).map(|_| r.normal()).collect();
        let mean = xs.iter().sum::<f64>() / xs.len() as f64;
        let var = xs.iter().map(|x| (x - mean) * (x - mean)).sum::<f64>() / xs.len() as f64;
        assert!(mean.abs() < 0.01, "{mean}");
        assert!((var - 1.0).abs() < 0.02, "{var}");
        let xs: Vec<f64> = (0..200_000).map(|_| f64::from(r.approx_normal())).collect();
        let mean = xs.iter().sum::<f64>() / xs.len() as f64;
        let var = xs.iter().map(|x| (x - mean) * (x - mean)).sum::<f64>() / xs.len() as f64;
        assert!(mean.abs() < 0.01, "{mean}");
        assert!((var - 1.0).abs() < 0.02, "{var}");
        assert!(xs.iter().all(|x| x.abs() < 3.47));
    }

    #[test]
    fn sizes_follow_n_and_dim() {
        assert_eq!(latent_dim(128), 32);
        assert_eq!(latent_dim(32), 8);
        assert_eq!(latent_dim(4), 4);
        assert_eq!(latent_dim(4096), 64);
        assert_eq!(cluster_count(100), 16);
        assert_eq!(cluster_count(1_000_000), 500);
        assert_eq!(cluster_count(1_000_000_000), 4096);
    }

    #[test]
    fn generation_is_independent_of_chunking_and_threads() {
        let m = SynthModel::new(3, 10_000, 24).unwrap();
        let mut whole = vec![0f32; 100 * 24];
        m.fill(Stream::Base, 0, &mut whole);
        let mut parts = vec![0f32; 100 * 24];
        let (a, b) = parts.split_at_mut(37 * 24);
        m.fill(Stream::Base, 0, a);
        let pool = rayon::ThreadPoolBuilder::new()
            .num_threads(1)
            .build()
            .unwrap();
        pool.install(|| m.fill(Stream::Base, 37, b));
        assert_eq!(whole, parts);
        let again = SynthModel::new(3, 10_000, 24).unwrap();
        let mut row = vec![0f32; 24];
        again.sample(Stream::Base, 99, &mut row);
        assert_eq!(row, whole[99 * 24..]);
        // Queries are different draws, and every value is finite.
        let mut q = vec![0f32; 24];
        m.sample(Stream::Query, 0, &mut q);
        assert_ne!(q, whole[..24]);
        assert!(whole.iter().all(|x| x.is_finite()));
    }

    #[test]
    fn clusters_are_uneven() {
        let m = SynthModel::new(1, 40_000, 32).unwrap();
        let mut counts = vec![0usize; m.clusters()];
        for i in 0..40_000u64 {
            let mut rng = Rng::for_item(1, Stream::Base.id(), i);
            let u = rng.uniform();
            counts[m
                .cumulative
                .partition_point(|&p| p <= u)
                .min(m.clusters() - 1)] += 1;
        }
        let max = *counts.iter().max().unwrap();
        let min = *counts.iter().min().unwrap();
        assert!(max > 20 * min.max(1), "max {max}, min {min}");
    }

    #[test]
    fn quantizers_use_the_range() {
        let m = SynthModel::new(5, 1000, 16).unwrap();
        let mut v = vec![0f32; 500 * 16];
        m.fill(Stream::Base, 0, &mut v);
        let qu = m.quantizer(ElementType::U8);
        let u: Vec<u8> = v.iter().map(|&x| u8::quantize(&qu, x)).collect();
        let distinct = u.iter().collect::<std::collections::BTreeSet<_>>().len();
        assert!(distinct > 150, "{distinct} distinct u8 values");
        let qi = m.quantizer(ElementType::I8);
        let i: Vec<i8> = v.iter().map(|&x| i8::quantize(&qi, x)).collect();
        assert!(i.iter().any(|&x| x < -50) && i.iter().any(|&x| x > 50));
    }
}
