//! `omen-build`: builds an index segment from a vector file.
//!
//! Invariant: the output appears under its final name only when complete and
//! fsynced; on any error (bad input, no disk space, interruption) the
//! temporary file is removed and the exit status is 1.

use std::path::PathBuf;
use std::time::Instant;

use clap::Args;
use indicatif::HumanBytes;
use omen_engine::graph::Builder;
use omen_engine::index::{BuildOptions, BuildPhase, BuildReport, build_segment};
use omen_engine::quant::QuantizerKind;
use omen_engine::vectors::Widen;
use omen_format::Metric;
use omen_format::attr::ColumnType;
use omen_format::dataset::side_file::read_side_file;
use omen_format::dataset::{AnyVectorFile, DatasetElement, VectorFile};

use crate::progress::Progress;
use crate::{Result, ToolError, say};

/// `--help` text of `omen-build`.
pub const LONG_ABOUT: &str = "\
Build an OmenDB index segment from a big-ann-benchmarks or TEXMEX vector file \
(.fbin, .f16bin, .u8bin, .i8bin, .fvecs, .bvecs).

The segment holds the base graph (maximum degree R) and the full vectors in \
checksummed 4 KiB pages, packed so that graph neighbours share pages, plus the \
quantized codes and upper HNSW layers that searches keep in RAM. The input is \
read with positioned reads, never mapped, and the graph is built in \
overlapping k-means shards when it does not fit --memory-budget, so inputs \
larger than RAM build in bounded memory.

The output is written to OUT.tmp and renamed to OUT only when complete and \
fsynced; a failed build leaves nothing behind.

Examples:
  omen-build --input data/synth-1m/base.fbin --metric l2 --out data/synth-1m/index.omen
  omen-build --input base.u8bin --metric cos --out idx.omen --R 48 --L 80 \\
      --code pq32 --memory-budget 2GiB --threads 2
  omen-build --input base.fbin --out idx.omen --attributes side.csv \\
      --attr-types category:text,price:float64

--attributes stores scalar columns for filtered search (omen bench --filter). \
The side file has one row per vector in input order; its rows are stored in \
the segment's node order.";

/// Arguments of `omen-build`.
#[derive(Debug, Args)]
pub struct BuildArgs {
    /// Vector file to index.
    #[arg(long)]
    pub input: PathBuf,
    /// Distance: l2, ip or cos.
    #[arg(long, default_value = "l2")]
    pub metric: Metric,
    /// Output segment file.
    #[arg(long)]
    pub out: PathBuf,
    /// Maximum degree of the base graph. A larger R costs build time but no
    /// disk, RAM or reads while a page still holds as many records; the build
    /// report names the widest such R (124 at 384-d f32, 73 at 128-d). At
    /// 1M × 384 cosine, --R 124 reached recall@10 0.95 in 24 reads against
    /// about 32 at R = 64, for 1.7× the build CPU.
    #[arg(long = "R", default_value_t = 64)]
    pub r: usize,
    /// Candidate list size while building (larger: better graph, slower build).
    #[arg(long = "L", default_value_t = 100)]
    pub l: usize,
    /// Vamana's pruning relaxation (ignored by --builder hnsw).
    #[arg(long, default_value_t = 1.2)]
    pub alpha: f32,
    /// Base-graph builder: vamana or hnsw (HNSW's level-0 heuristic).
    #[arg(long, default_value = "vamana", value_parser = parse_builder)]
    pub builder: Builder,
    /// In-RAM code: rabitq2 (2 bits/dim, default), rabitq (1 bit), rabitq3
    /// (1 to 8 bits: rabitq3 at 128-d is 57 bytes, about 60 B of RAM per
    /// vector, and about 16% fewer reads), pq16, pq32, ...
    #[arg(long, default_value = "rabitq2")]
    pub code: QuantizerKind,
    /// Keep pruned lists short instead of filling them towards R (faster
    /// build, lower recall per page read).
    #[arg(long)]
    pub no_saturate: bool,
    /// Build the Vamana graph in two passes (alpha 1, then --alpha), as in
    /// the Vamana paper, instead of one pass with --alpha as DiskANN does
    /// (the default: less CPU, and no worse recall per page read where
    /// measured).
    #[arg(long)]
    pub two_pass: bool,
    /// Compute the graph build's distances on the full f32/f16 rows instead
    /// of an 8-bit copy (slower: the copy made the graph phase about 30%
    /// faster at the same recall where measured). Byte inputs are unaffected.
    #[arg(long)]
    pub exact_build: bool,
    /// Degree of the upper HNSW layers (about 1/M of the vectors reach level 1).
    #[arg(long, default_value_t = 32)]
    pub upper_degree: usize,
    /// RAM the build may use, e.g. 512MiB, 4GiB.
    #[arg(long, default_value = "4GiB", value_parser = parse_bytes)]
    pub memory_budget: usize,
    /// Worker threads (default: all cores).
    #[arg(long)]
    pub threads: Option<usize>,
    /// Directory for shard files (default: beside --out).
    #[arg(long)]
    pub temp_dir: Option<PathBuf>,
    /// Seed of every random choice.
    #[arg(long, default_value_t = 42)]
    pub seed: u64,
    /// Attribute side file, one row per vector in input order: .csv (a
    /// header row names the columns) or .jsonl (one JSON object per line).
    /// Stored as the segment's attribute columns for filtered search.
    #[arg(long, value_name = "FILE")]
    pub attributes: Option<PathBuf>,
    /// Types of side-file columns, overriding inference: name:type,...
    /// (types: int64, float64, bool, text, timestamp).
    #[arg(long, value_name = "NAME:TYPE,...", value_parser = parse_attr_types, requires = "attributes")]
    pub attr_types: Option<AttrTypes>,
}

/// Declared side-file column types.
#[derive(Debug, Clone, Default)]
pub struct AttrTypes(pub Vec<(String, ColumnType)>);

/// Parses `name:type,name:type`.
pub fn parse_attr_types(s: &str) -> std::result::Result<AttrTypes, String> {
    s.split(',')
        .filter(|p| !p.trim().is_empty())
        .map(|pair| {
            let (name, ty) = pair
                .split_once(':')
                .ok_or_else(|| format!("{pair:?}: expected NAME:TYPE"))?;
            Ok((name.trim().to_string(), ty.trim().parse::<ColumnType>()?))
        })
        .collect::<std::result::Result<_, String>>()
        .map(AttrTypes)
}

/// Runs a build and prints its report.
pub fn run(args: &BuildArgs, quiet: bool) -> Result<BuildReport> {
    let started = Instant::now();
    let (report, threads) = build_with_pool(args, quiet)?;
    let phases: Vec<String> = report
        .phase_seconds
        .iter()
        .map(|(p, s)| format!("{} {s:.1}s", p.label()))
        .collect();
    say!(
        "built {} ({} vectors × {}, {}) in {:.1} s on {threads} threads",
        args.out.display(),
        report.vectors,
        report.dimension,
        HumanBytes(report.file_bytes),
        started.elapsed().as_secs_f64(),
    );
    say!("  phases        {}", phases.join(", "));
    say!(
        "  graph         R = {}, mean degree {:.1}, {} shard(s), {} nodes per page, {:.1}% of edges stay on their page",
        args.r,
        report.mean_degree,
        report.shards,
        report.nodes_per_page,
        report.same_page_fraction * 100.0
    );
    // A denser graph up to this degree costs build time only: no disk, no
    // RAM, no extra page per read.
    if let Some(widest) = report.widest_degree_on_same_pages.filter(|&w| w > args.r) {
        say!(
            "                --R up to {widest} would fill the same pages ({} per page) and cost only build time",
            report.nodes_per_page
        );
    }
    say!(
        "  RAM           {:.1} bytes per vector for search ({} code of {} bytes, upper layers, model)",
        report.ram_bytes_per_vector,
        args.code,
        report.code_len
    );
    say!(
        "  disk          {:.1} bytes per vector",
        report.file_bytes as f64 / report.vectors.max(1) as f64
    );
    if let Some(peak) = report.peak_rss_bytes {
        say!(
            "  memory        peak RSS {:.1} MiB (budget {:.1} MiB)",
            peak as f64 / (1 << 20) as f64,
            args.memory_budget as f64 / (1 << 20) as f64
        );
    }
    Ok(report)
}

/// Runs a build without printing a report (progress bars still follow
/// `quiet`).
pub fn build_quiet(args: &BuildArgs, quiet: bool) -> Result<BuildReport> {
    build_with_pool(args, quiet).map(|(r, _)| r)
}

fn build_with_pool(args: &BuildArgs, quiet: bool) -> Result<(BuildReport, usize)> {
    let attributes = match &args.attributes {
        Some(path) => {
            let declared = args.attr_types.clone().unwrap_or_default().0;
            let columns = read_side_file(path, &declared)?;
            let schema: Vec<String> = columns
                .schema()
                .iter()
                .map(|c| {
                    format!(
                        "{} {}{}",
                        c.name,
                        c.ty,
                        if c.nullable { "" } else { " not null" }
                    )
                })
                .collect();
            say!(
                "attributes: {} rows from {}: {}",
                columns.len(),
                path.display(),
                schema.join(", ")
            );
            Some(std::sync::Arc::new(columns))
        }
        None => None,
    };
    let options = BuildOptions {
        attributes,
        builder: args.builder,
        max_degree: args.r,
        list_size: args.l,
        alpha: args.alpha,
        saturate: !args.no_saturate,
        one_pass: !args.two_pass,
        quantized_build: !args.exact_build,
        code: args.code,
        upper_degree: args.upper_degree,
        memory_budget: args.memory_budget,
        temp_dir: args.temp_dir.clone(),
        seed: args.seed,
        ..BuildOptions::default()
    };
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(args.threads.unwrap_or(0))
        .build()
        .map_err(|e| ToolError::Usage(format!("cannot start {:?} threads: {e}", args.threads)))?;
    let report = pool.install(|| match AnyVectorFile::open(&args.input)? {
        AnyVectorFile::F32(f) => build_from(&f, args, &options, quiet),
        AnyVectorFile::F16(f) => build_from(&f, args, &options, quiet),
        AnyVectorFile::U8(f) => build_from(&f, args, &options, quiet),
        AnyVectorFile::I8(f) => build_from(&f, args, &options, quiet),
        AnyVectorFile::I32(_) => Err(ToolError::Usage(format!(
            "{}: .ivecs files hold ids, not vectors",
            args.input.display()
        ))),
    })?;
    Ok((report, pool.current_num_threads()))
}

fn build_from<T: Widen + DatasetElement>(
    file: &VectorFile<T>,
    args: &BuildArgs,
    options: &BuildOptions,
    quiet: bool,
) -> Result<BuildReport> {
    let reader = file.row_reader()?;
    let bars = PhaseBars::new(quiet);
    let report = build_segment(
        &reader,
        args.metric,
        &args.out,
        options,
        &|phase, done, total| bars.update(phase, done, total),
    )?;
    bars.finish();
    Ok(report)
}

/// One progress bar per build phase, replaced when the phase changes.
struct PhaseBars {
    quiet: bool,
    current: std::sync::Mutex<Option<(BuildPhase, Progress)>>,
}

impl PhaseBars {
    fn new(quiet: bool) -> Self {
        PhaseBars {
            quiet,
            current: std::sync::Mutex::new(None),
        }
    }

    fn update(&self, phase: BuildPhase, done: u64, total: u64) {
        let mut current = self.current.lock().unwrap_or_else(|p| p.into_inner());
        if current.as_ref().is_none_or(|(p, _)| *p != phase) {
            if let Some((_, bar)) = current.take() {
                bar.finish();
            }
            *current = Some((phase, Progress::new(total, phase.label(), self.quiet)));
        }
        if let Some((_, bar)) = current.as_ref() {
            bar.set(done);
        }
    }

    fn finish(&self) {
        if let Some((_, bar)) = self
            .current
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .take()
        {
            bar.finish();
        }
    }
}

/// Parses `vamana` or `hnsw`.
pub fn parse_builder(s: &str) -> std::result::Result<Builder, String> {
    match s.to_ascii_lowercase().as_str() {
        "vamana" => Ok(Builder::Vamana),
        "hnsw" => Ok(Builder::HnswHeuristic),
        other => Err(format!(
            "unknown builder {other:?}; expected vamana or hnsw"
        )),
    }
}

/// Parses a byte size: `1073741824`, `512MiB`, `4GiB`, `2G`, `100MB`.
pub fn parse_bytes(s: &str) -> std::result::Result<usize, String> {
    let t = s.trim();
    let split = t.find(|c: char| c.is_ascii_alphabetic()).unwrap_or(t.len());
    let (num, unit) = t.split_at(split);
    let value: f64 = num
        .trim()
        .parse()
        .map_err(|_| format!("{s:?} is not a size (examples: 512MiB, 4GiB)"))?;
    let multiplier: f64 = match unit.to_ascii_lowercase().as_str() {
        "" | "b" => 1.0,
        "k" | "kib" => 1024.0,
        "kb" => 1e3,
        "m" | "mib" => 1024.0 * 1024.0,
        "mb" => 1e6,
        "g" | "gib" => 1024.0 * 1024.0 * 1024.0,
        "gb" => 1e9,
        "t" | "tib" => 1024f64.powi(4),
        "tb" => 1e12,
        other => return Err(format!("unknown unit {other:?} in {s:?}; use MiB or GiB")),
    };
    let bytes = value * multiplier;
    if !(bytes.is_finite() && bytes >= 1.0 && bytes < usize::MAX as f64) {
        return Err(format!("{s:?} is not a usable size"));
    }
    Ok(bytes as usize)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_parse() {
        assert_eq!(parse_bytes("4GiB"), Ok(4 << 30));
        assert_eq!(parse_bytes("512MiB"), Ok(512 << 20));
        assert_eq!(parse_bytes("100MB"), Ok(100_000_000));
        assert_eq!(parse_bytes("1.5G"), Ok(3 << 29));
        assert!(parse_bytes("lots").is_err());
        assert!(parse_bytes("4 parsecs").is_err());
    }
}
