//! `omen data`: generate synthetic datasets, compute exact ground truth and
//! describe dataset files.
//!
//! Invariant: inputs are validated in full (header, size, finite values)
//! before any long computation starts, and outputs appear under their final
//! names only when complete (the format layer writes `<path>.tmp` and
//! renames).

use std::path::{Path, PathBuf};
use std::time::Instant;

use clap::{Args, Subcommand};
use indicatif::{HumanBytes, HumanCount};
use omen_engine::ground_truth::{self, DEFAULT_CHUNK_ROWS, GroundTruthParams};
use omen_engine::synth::{self, SynthConfig};
use omen_format::dataset::{AnyVectorFile, DatasetElement, GroundTruthFile, Neighbors, VectorFile};
use omen_format::{ElementType, Metric};

use crate::progress::Progress;
use crate::{Result, ToolError, say};

const SYNTH_LONG: &str = "\
Generate a synthetic dataset that behaves like real embeddings: uneven \
clusters (Zipf sizes, log-normal spreads) in a low-dimensional latent space, \
projected to --dim dimensions with small noise. Queries are independent draws \
from the same distribution.

Writes DIR/base.<ext> and DIR/query.<ext> in the big-ann-benchmarks layout \
(ext: fbin, f16bin, u8bin or i8bin by --dtype; u8 and i8 are quantised from \
the same f32 model). The output is byte-identical for the same --seed, --n, \
--dim, --queries and --dtype, on any machine and thread count. Memory use does \
not grow with --n.

Examples:
  omen data synth --n 1M --dim 128 --queries 10k --out data/synth-1m
  omen data synth --n 100M --dim 96 --dtype u8 --seed 7 --out /mnt/nvme/synth-100m";

const GT_LONG: &str = "\
Compute exact k-nearest-neighbour ground truth by brute force, in parallel, \
streaming the base file once. The element type comes from the file \
extensions, which must match; both files are checked for NaN and infinity \
first.

Metrics (smaller is closer): l2 = squared Euclidean, ip = negated dot \
product, cos = 1 - cosine similarity. Ties are broken by the smaller id. \
The output uses the big-ann-benchmarks ground-truth layout: int32 nq, int32 \
k, nq×k int32 ids, nq×k f32 distances.

k must not exceed the number of base vectors.

Example:
  omen data gt --base d/base.fbin --queries d/query.fbin --k 100 --metric l2 --out d/gt.ibin";

const INFO_LONG: &str = "\
Validate a dataset file and print its shape: vectors (.fbin, .f16bin, .u8bin, \
.i8bin, .fvecs, .bvecs, .ivecs) or ground truth (.ibin). With --check, also \
scan every value for NaN and infinity.

Example:
  omen data info data/synth-1m/base.fbin --check";

/// `omen data` subcommands.
#[derive(Debug, Subcommand)]
pub enum DataCommand {
    /// Generate a synthetic clustered dataset (base and query files).
    #[command(long_about = SYNTH_LONG)]
    Synth(SynthArgs),
    /// Compute exact k-NN ground truth for a base and a query file.
    #[command(long_about = GT_LONG)]
    Gt(GtArgs),
    /// Validate a dataset or ground-truth file and print its shape.
    #[command(long_about = INFO_LONG)]
    Info(InfoArgs),
    /// Generate attribute columns for a synthetic dataset (for filtered
    /// search benchmarks).
    #[command(long_about = ATTRS_LONG)]
    Attrs(AttrsArgs),
}

const ATTRS_LONG: &str = "\
Write an attribute side file (CSV) for a dataset made by `omen data synth` \
with the same --n, --dim and --seed: one row per base vector, two int64 \
columns, each a permutation of 0..n, so `column < s*n` matches exactly the \
fraction s of the rows:

  clustered    numbers the synthetic clusters one after another, in a random \
order: a range selects whole clusters, so the matching rows sit together, \
mostly far from a given query (the hard case for graph search);
  independent  a random permutation, unrelated to the vectors.

Example:
  omen data synth --n 1M --dim 128 --out d1m
  omen data attrs --n 1M --dim 128 --out d1m/attrs.csv
  omen-build --input d1m/base.fbin --out d1m/index.omen --attributes d1m/attrs.csv
  omen bench --segment d1m/index.omen --queries d1m/query.fbin --gt d1m/gt.ibin \\
      --filter 'clustered < 10000' --filter 'independent < 10000'";

/// Arguments of `omen data attrs`.
#[derive(Debug, Args)]
pub struct AttrsArgs {
    /// Base vectors of the synthetic set (as given to `omen data synth`).
    #[arg(long, value_parser = parse_count)]
    pub n: u64,
    /// Dimension of the synthetic set.
    #[arg(long, default_value_t = 128)]
    pub dim: usize,
    /// Seed of the synthetic set.
    #[arg(long, default_value_t = 42)]
    pub seed: u64,
    /// Output CSV file.
    #[arg(long)]
    pub out: PathBuf,
}

/// Arguments of `omen data synth`.
#[derive(Debug, Args)]
pub struct SynthArgs {
    /// Base vectors to generate (suffixes k, M, B allowed: 1M = 1,000,000).
    #[arg(long, value_parser = parse_count)]
    pub n: u64,
    /// Dimension of every vector (1..=16384).
    #[arg(long, default_value_t = 128)]
    pub dim: usize,
    /// Query vectors to generate.
    #[arg(long, value_parser = parse_count, default_value = "1000")]
    pub queries: u64,
    /// Random seed; the same seed and sizes give byte-identical files.
    #[arg(long, default_value_t = 42)]
    pub seed: u64,
    /// Element type stored: f32, f16, u8 or i8.
    #[arg(long, default_value = "f32")]
    pub dtype: ElementType,
    /// Output directory (created if missing).
    #[arg(long)]
    pub out: PathBuf,
}

/// Arguments of `omen data gt`.
#[derive(Debug, Args)]
pub struct GtArgs {
    /// Base vectors (big-ann or TEXMEX; type from the extension).
    #[arg(long)]
    pub base: PathBuf,
    /// Query vectors, same element type and dimension as the base.
    #[arg(long)]
    pub queries: PathBuf,
    /// Neighbours per query.
    #[arg(long, default_value_t = 100)]
    pub k: usize,
    /// Distance: l2 (squared), ip (negated dot product) or cos (1 - cosine).
    #[arg(long, default_value = "l2")]
    pub metric: Metric,
    /// Output ground-truth file (.ibin by convention).
    #[arg(long)]
    pub out: PathBuf,
    /// Base rows per chunk; the base file is read once, chunk by chunk.
    #[arg(long, default_value_t = DEFAULT_CHUNK_ROWS, hide = true)]
    pub chunk_rows: usize,
}

/// Arguments of `omen data info`.
#[derive(Debug, Args)]
pub struct InfoArgs {
    /// The file to describe.
    pub file: PathBuf,
    /// Also scan every value for NaN and infinity.
    #[arg(long)]
    pub check: bool,
}

/// Parses a count such as `200000`, `200_000`, `200k`, `1M` or `1B`.
pub fn parse_count(s: &str) -> std::result::Result<u64, String> {
    let t: String = s.trim().chars().filter(|&c| c != '_' && c != ',').collect();
    let (digits, multiplier) = match t.char_indices().last() {
        Some((i, c)) if c.is_ascii_alphabetic() => {
            let m = match c.to_ascii_lowercase() {
                'k' => 1_000,
                'm' => 1_000_000,
                'b' | 'g' => 1_000_000_000,
                _ => return Err(format!("unknown suffix {c:?} in {s:?}; use k, M or B")),
            };
            (t.get(..i).unwrap_or_default(), m)
        }
        _ => (t.as_str(), 1),
    };
    let value: u64 = digits
        .parse()
        .map_err(|_| format!("{s:?} is not a count (examples: 1000, 200k, 1M)"))?;
    value
        .checked_mul(multiplier)
        .ok_or_else(|| format!("{s:?} is too large"))
}

/// Runs an `omen data` subcommand.
pub fn run(cmd: DataCommand, quiet: bool) -> Result<()> {
    match cmd {
        DataCommand::Synth(args) => synth(&args, quiet),
        DataCommand::Gt(args) => gt(&args, quiet),
        DataCommand::Info(args) => info(&args, quiet),
        DataCommand::Attrs(args) => attrs(&args),
    }
}

fn attrs(args: &AttrsArgs) -> Result<()> {
    use std::io::Write;
    let (clustered, independent) =
        omen_engine::synth_attributes::synth_attributes(args.seed, args.n, args.dim)?;
    let file = std::fs::File::create(&args.out).map_err(|e| ToolError::io(&args.out, e))?;
    let mut out = std::io::BufWriter::new(file);
    let mut write = || -> std::io::Result<()> {
        writeln!(out, "clustered,independent")?;
        for (c, i) in clustered.iter().zip(&independent) {
            writeln!(out, "{c},{i}")?;
        }
        out.flush()
    };
    write().map_err(|e| ToolError::io(&args.out, e))?;
    say!(
        "attributes: {} rows × 2 int64 columns (clustered, independent) → {}",
        HumanCount(args.n),
        args.out.display()
    );
    for s in [0.001, 0.01, 0.1, 0.5] {
        let bound = (s * args.n as f64).round() as u64;
        say!(
            "  selectivity {:>5}%: --filter 'clustered < {bound}'  --filter 'independent < {bound}'",
            s * 100.0
        );
    }
    Ok(())
}

fn synth(args: &SynthArgs, quiet: bool) -> Result<()> {
    if args.n == 0 || args.queries == 0 {
        return Err(ToolError::Usage(
            "--n and --queries must be at least 1".into(),
        ));
    }
    if args.n > i32::MAX as u64 || args.queries > i32::MAX as u64 {
        return Err(ToolError::Usage(format!(
            "--n and --queries must be at most {} (the int32 header of big-ann files)",
            i32::MAX
        )));
    }
    std::fs::create_dir_all(&args.out).map_err(|e| ToolError::io(&args.out, e))?;
    let config = SynthConfig {
        n: args.n,
        dim: args.dim,
        queries: args.queries,
        seed: args.seed,
        element: args.dtype,
    };
    let bar = Progress::new(args.n + args.queries, "synth", quiet);
    let started = Instant::now();
    let summary = synth::write_dataset(&config, &args.out, &|rows| bar.set(rows))?;
    bar.finish();
    let secs = started.elapsed().as_secs_f64();
    let bytes = summary.base.bytes + summary.queries.bytes;
    say!(
        "base:    {} × {} {} vectors, {} → {}",
        HumanCount(summary.base.rows),
        summary.base.dim,
        args.dtype,
        HumanBytes(summary.base.bytes),
        summary.base_path.display()
    );
    say!(
        "queries: {} × {} {} vectors, {} → {}",
        HumanCount(summary.queries.rows),
        summary.queries.dim,
        args.dtype,
        HumanBytes(summary.queries.bytes),
        summary.query_path.display()
    );
    say!(
        "model:   {} clusters, latent dimension {}, seed {}",
        summary.clusters,
        summary.latent_dim,
        args.seed
    );
    say!(
        "time:    {:.2} s ({} vectors/s, {}/s)",
        secs,
        HumanCount(((args.n + args.queries) as f64 / secs.max(1e-9)) as u64),
        HumanBytes((bytes as f64 / secs.max(1e-9)) as u64)
    );
    Ok(())
}

/// Scans `file` for NaN and infinity in slices, advancing `bar` by rows.
pub fn check_finite(file: &AnyVectorFile, bar: &Progress) -> Result<()> {
    fn scan<T: DatasetElement>(f: &VectorFile<T>, bar: &Progress) -> Result<()> {
        const ROWS: usize = 1 << 16;
        let v = f.vectors();
        let mut start = 0;
        while start < v.len() {
            let end = (start + ROWS).min(v.len());
            if let Some(part) = v.slice(start..end) {
                part.check_finite()?;
            }
            bar.add((end - start) as u64);
            start = end;
        }
        Ok(())
    }
    match file {
        AnyVectorFile::F32(f) => scan(f, bar),
        AnyVectorFile::F16(f) => scan(f, bar),
        AnyVectorFile::U8(f) => scan(f, bar),
        AnyVectorFile::I8(f) => scan(f, bar),
        AnyVectorFile::I32(f) => scan(f, bar),
    }
}

/// Mean distance at `rank` (0-based) over all queries.
pub fn mean_at_rank(nb: &Neighbors, rank: usize) -> Option<f64> {
    if rank >= nb.k() || nb.nq() == 0 {
        return None;
    }
    let sum: f64 = (0..nb.nq()).map(|q| f64::from(nb.distances(q)[rank])).sum();
    Some(sum / nb.nq() as f64)
}

/// Opens both files, checks them, computes the ground truth with a bar.
pub fn compute_ground_truth(
    base_path: &Path,
    query_path: &Path,
    params: &GroundTruthParams,
    quiet: bool,
) -> Result<(Neighbors, AnyVectorFile)> {
    let base = AnyVectorFile::open(base_path)?;
    let queries = AnyVectorFile::open(query_path)?;
    ground_truth::check_compatible(&base, &queries)?;
    let checking = Progress::new((base.len() + queries.len()) as u64, "checking", quiet);
    check_finite(&queries, &checking)?;
    check_finite(&base, &checking)?;
    checking.finish();
    let bar = Progress::new(base.len() as u64, "gt", quiet);
    let nb = ground_truth::exact_knn_files(&base, &queries, params, &|rows| bar.set(rows))?;
    bar.finish();
    Ok((nb, base))
}

fn gt(args: &GtArgs, quiet: bool) -> Result<()> {
    let params = GroundTruthParams {
        k: args.k,
        metric: args.metric,
        chunk_rows: args.chunk_rows.max(1),
    };
    let started = Instant::now();
    let (nb, base) = compute_ground_truth(&args.base, &args.queries, &params, quiet)?;
    let secs = started.elapsed().as_secs_f64();
    let bytes = nb.write(&args.out)?;
    let distances = base.len() as f64 * nb.nq() as f64;
    say!(
        "ground truth: {} queries × k = {} ({}) over {} × {} {} base vectors → {} ({})",
        HumanCount(nb.nq() as u64),
        nb.k(),
        args.metric,
        HumanCount(base.len() as u64),
        base.dim(),
        base.element_name(),
        args.out.display(),
        HumanBytes(bytes)
    );
    say!(
        "distances:   mean to 1st neighbour {:.4}, to {}th {:.4}",
        mean_at_rank(&nb, 0).unwrap_or(f64::NAN),
        nb.k(),
        mean_at_rank(&nb, nb.k() - 1).unwrap_or(f64::NAN)
    );
    say!(
        "time:        {:.2} s ({:.1} M distances/s, {} threads)",
        secs,
        distances / secs.max(1e-9) / 1e6,
        rayon::current_num_threads()
    );
    Ok(())
}

fn info(args: &InfoArgs, quiet: bool) -> Result<()> {
    let path = &args.file;
    let is_gt = path
        .extension()
        .and_then(|e| e.to_str())
        .is_some_and(|e| e.eq_ignore_ascii_case("ibin"));
    if is_gt {
        let g = GroundTruthFile::open(path)?;
        let size = std::fs::metadata(path).map(|m| m.len()).unwrap_or(0);
        say!("file:    {}", path.display());
        say!("format:  big-ann ground truth (int32 ids, f32 distances)");
        say!("queries: {}", HumanCount(g.nq() as u64));
        say!("k:       {}", g.k());
        say!("size:    {} ({size} bytes)", HumanBytes(size));
        return Ok(());
    }
    let f = AnyVectorFile::open(path)?;
    say!("file:    {}", path.display());
    say!("format:  {} ({})", f.layout(), f.element_name());
    say!("vectors: {} ({})", HumanCount(f.len() as u64), f.len());
    say!("dim:     {}", f.dim());
    say!(
        "size:    {} ({} bytes)",
        HumanBytes(f.file_size()),
        f.file_size()
    );
    if args.check {
        let bar = Progress::new(f.len() as u64, "checking", quiet);
        check_finite(&f, &bar)?;
        bar.finish();
        say!("check:   every value is finite");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::parse_count;

    #[test]
    fn counts() {
        assert_eq!(parse_count("200000"), Ok(200_000));
        assert_eq!(parse_count("200_000"), Ok(200_000));
        assert_eq!(parse_count("200k"), Ok(200_000));
        assert_eq!(parse_count("1M"), Ok(1_000_000));
        assert_eq!(parse_count("2B"), Ok(2_000_000_000));
        assert!(parse_count("1x").is_err());
        assert!(parse_count("k").is_err());
        assert!(parse_count("").is_err());
    }
}
