//! Building a segment from a vector file: the offline pipeline behind
//! `omen-build`.
//!
//! Phases: validate the input, train the quantizer on a sample, build the
//! base graph within the memory budget (sharded when it must be), build the
//! upper layers, reorder nodes so that graph neighbours share pages, encode
//! every vector, and write the segment (to a temporary name, renamed into
//! place once complete and fsynced).
//!
//! Memory: the input is read with `pread`, never mapped, so its pages stay
//! in the reclaimable page cache. What the build holds is the final graph,
//! the codes and the permutation, `n * (4R + 2 + code_len + 12)` bytes, plus
//! whatever the sharded graph build is allowed: the rest of the budget.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Instant;

use omen_format::dataset::{DatasetElement, RowReader};
use omen_format::segment::layout::{BUILDER_FLAT, INCOMPAT_FLAT_INDEX, INDEX_VERSION, IndexHeader};
use omen_format::segment::{Encoding, SectionKind, SegmentHeader, SegmentWriter};
use omen_format::{ElementType, Metric};
use rayon::prelude::*;
use zerocopy::{FromZeros, IntoBytes};

use super::node::NodeLayout;
use crate::graph::{
    BuildParams, Builder, Graph, ShardedParams, UpperLayers, UpperParams, VectorSource,
    block_order, build_sharded, connect_unreachable, same_page_fraction,
};
use crate::quant::{BuildCodes, Quantizer, QuantizerKind};
use crate::vectors::{FlatVectors, Widen};
use crate::{EngineError, Result};

/// What `omen-build` can tune.
#[derive(Debug, Clone)]
pub struct BuildOptions {
    /// Base-graph builder.
    pub builder: Builder,
    /// `R`: maximum degree of the base layer.
    pub max_degree: usize,
    /// `L`: candidate list size while building.
    pub list_size: usize,
    /// Vamana's pruning relaxation.
    pub alpha: f32,
    /// Fill every list towards `R` with the nearest occluded candidates in
    /// the final pass: a record has `R` slots on disk whatever its degree,
    /// so the extra edges are free in I/O and raise recall per page read.
    pub saturate: bool,
    /// Build the Vamana graph in one pass with `alpha`, as DiskANN does,
    /// instead of the paper's two (`alpha = 1`, then `alpha`). On 200K
    /// clustered 128-d vectors one pass took 21% less CPU and reached
    /// slightly higher recall at the same page reads (benches/RESULTS.md).
    pub one_pass: bool,
    /// Compute the graph build's distances on an 8-bit copy of f32 and f16
    /// rows ([`BuildCodes`]) instead of the rows themselves. The build is
    /// bound by memory traffic, so a quarter of the bytes made the graph
    /// phase 30% faster on 200K × 128 with the same recall per read, and a
    /// shard within a memory budget holds more nodes. Byte rows (u8, i8)
    /// are always built as they are. The segment stores the full rows, and
    /// searches rerank with them, either way.
    pub quantized_build: bool,
    /// The in-RAM code. The default, `rabitq2` (41 bytes at 128-d, about
    /// 44 bytes of RAM per vector with the upper layers), halves the page
    /// reads that 1-bit codes need for the same recall.
    pub code: QuantizerKind,
    /// Degree (and level base) of the upper layers.
    pub upper_degree: usize,
    /// Bytes of RAM the build may use.
    pub memory_budget: usize,
    /// Where shard files go (default: beside the output).
    pub temp_dir: Option<PathBuf>,
    /// Most rows the quantizer trains on.
    pub training_sample: usize,
    /// Seed of every random choice (sampling, k-means, levels, codes).
    /// Graph construction inserts in parallel, so the order in which
    /// threads link nodes, and with it a few edges, can differ between two
    /// builds with the same seed; tests compare builds with brute force,
    /// never with each other.
    pub seed: u64,
    /// Attribute columns, one row per input vector in input (id) order;
    /// the build stores them in node order (SPEC.md §2.5.8).
    pub attributes: Option<std::sync::Arc<omen_format::segment::attributes::AttributeColumns>>,
}

impl Default for BuildOptions {
    fn default() -> Self {
        BuildOptions {
            builder: Builder::Vamana,
            max_degree: 64,
            list_size: 100,
            alpha: 1.2,
            saturate: true,
            one_pass: true,
            quantized_build: true,
            code: QuantizerKind::RaBitQ {
                bits: 2,
                centroids: 256,
            },
            upper_degree: 32,
            memory_budget: 4 << 30,
            temp_dir: None,
            training_sample: 100_000,
            seed: 42,
            attributes: None,
        }
    }
}

/// The phases of a build, for progress reporting.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BuildPhase {
    Validate,
    TrainCodes,
    Graph,
    UpperLayers,
    Reorder,
    Encode,
    Write,
}

impl BuildPhase {
    /// A short label for progress bars.
    pub fn label(self) -> &'static str {
        match self {
            BuildPhase::Validate => "validate input",
            BuildPhase::TrainCodes => "train quantizer",
            BuildPhase::Graph => "build graph",
            BuildPhase::UpperLayers => "upper layers",
            BuildPhase::Reorder => "reorder pages",
            BuildPhase::Encode => "encode vectors",
            BuildPhase::Write => "write segment",
        }
    }
}

/// What a build did.
#[derive(Debug, Clone)]
pub struct BuildReport {
    pub vectors: u64,
    pub dimension: usize,
    pub shards: usize,
    pub mean_degree: f64,
    /// Fraction of edges whose ends share a page, after reordering.
    pub same_page_fraction: f64,
    pub nodes_per_page: usize,
    /// The largest R whose records would fill the same pages
    /// ([`NodeLayout::widest_degree_on_same_pages`]); `None` for a flat
    /// index or records that span pages.
    pub widest_degree_on_same_pages: Option<usize>,
    pub code_len: usize,
    /// RAM a search holds per vector: codes, upper layers, quantizer model.
    pub ram_bytes_per_vector: f64,
    pub file_bytes: u64,
    /// Seconds per phase, in order.
    pub phase_seconds: Vec<(BuildPhase, f64)>,
    /// The process's peak resident set at the end of the build (Linux).
    pub peak_rss_bytes: Option<u64>,
}

/// Progress callback: `(phase, done, total)`.
pub type Progress<'a> = dyn Fn(BuildPhase, u64, u64) + Sync + 'a;

/// Rows read per block in sequential passes.
const BLOCK_ROWS: usize = 8192;

/// RAM the build keeps for its own buffers (blocks of rows and records,
/// per-thread scratch) outside what the budget plan counts.
const FIXED_BUILD_BYTES: usize = 8 << 20;

/// Fewest rows a quantizer should train on.
const MIN_TRAINING_ROWS: usize = 1000;

/// Bytes per vector the plan holds beside the adjacency from the graph
/// phase to the end: the permutation (8) and the page packer's scratch (a
/// score, a breadth-first queue that may grow to twice `n` ids, two flags:
/// 14). The adjacency itself is relabelled in place.
const REORDER_BYTES_PER_NODE: usize = 22;

/// Bytes an upper-layer node costs while the upper layers are built,
/// besides its full row (added by the caller): its slots in the row index
/// and the level lists (about 64), the Vamana adjacency of `ceil(1.3 M)`
/// slots, and the compacted graph and CSR lists of `M` ids each that exist
/// beside it for a moment.
fn upper_node_bytes(upper_degree: usize) -> usize {
    64 + 4 * (upper_degree * 13).div_ceil(10) + 8 * upper_degree
}

fn budget_error(budget: usize, n: usize, needed: usize) -> EngineError {
    EngineError::InvalidArgument(format!(
        "a memory budget of {} MiB is too small: the index of {n} vectors alone needs {} MiB \
         (graph, codes and buffers); raise --memory-budget",
        budget >> 20,
        needed.div_ceil(1 << 20)
    ))
}

/// Where a build reads its rows: a vector file, whose row numbers are the
/// ids (`omen-build`), or rows a collection flushes or compacts, with their
/// own primary keys. Rows must be finite (both sources check).
pub trait BuildRows<T>: Sync {
    /// Number of rows.
    fn len(&self) -> usize;
    /// Whether there are no rows.
    fn is_empty(&self) -> bool {
        self.len() == 0
    }
    /// Values per row.
    fn dim(&self) -> usize;
    /// Copies rows `first .. first + out.len() / dim()` into `out`.
    fn read_rows(&self, first: usize, out: &mut [T]) -> Result<()>;
    /// The id stored with row `row` in the segment.
    fn id(&self, row: usize) -> u64;
    /// Names the source in errors and in the segment's metadata.
    fn describe(&self) -> String;
}

impl<T: DatasetElement> BuildRows<T> for RowReader<T> {
    fn len(&self) -> usize {
        RowReader::len(self)
    }
    fn dim(&self) -> usize {
        RowReader::dim(self)
    }
    fn read_rows(&self, first: usize, out: &mut [T]) -> Result<()> {
        Ok(RowReader::read_rows(self, first, out)?)
    }
    fn id(&self, row: usize) -> u64 {
        row as u64
    }
    fn describe(&self) -> String {
        self.path().display().to_string()
    }
}

/// Rows held in memory with explicit ids: what a flush builds from.
#[derive(Debug)]
pub struct MemoryRows<'a> {
    pub dim: usize,
    /// Row-major, `ids.len() * dim` values, all finite.
    pub vectors: &'a [f32],
    pub ids: &'a [u64],
    /// For errors and metadata, e.g. `"memtable flush (wal 7)"`.
    pub label: &'a str,
}

impl BuildRows<f32> for MemoryRows<'_> {
    fn len(&self) -> usize {
        self.ids.len()
    }
    fn dim(&self) -> usize {
        self.dim
    }
    fn read_rows(&self, first: usize, out: &mut [f32]) -> Result<()> {
        let start = first * self.dim;
        let src = self.vectors.get(start..start + out.len()).ok_or_else(|| {
            EngineError::InvalidArgument(format!(
                "{}: rows {first}.. are past the {} rows held",
                self.label,
                self.ids.len()
            ))
        })?;
        out.copy_from_slice(src);
        Ok(())
    }
    fn id(&self, row: usize) -> u64 {
        self.ids.get(row).copied().unwrap_or(u64::MAX)
    }
    fn describe(&self) -> String {
        self.label.to_string()
    }
}

/// What both builders refuse before reading a row: an id file given as
/// vectors, attribute rows that do not match the vectors, and a row count
/// that a segment's `u32` node numbers cannot hold. Returns the row count,
/// the dimension and the element type.
fn check_input<T: DatasetElement>(
    input: &dyn BuildRows<T>,
    options: &BuildOptions,
) -> Result<(usize, usize, ElementType)> {
    let n = input.len();
    let dim = input.dim();
    let element_type = T::ELEMENT_TYPE.ok_or_else(|| {
        EngineError::InvalidArgument(format!(
            "{}: i32 files hold ids, not vectors",
            input.describe()
        ))
    })?;
    if let Some(a) = &options.attributes
        && a.len() != n
    {
        return Err(EngineError::InvalidArgument(format!(
            "{} attribute rows for the {n} vectors of {}",
            a.len(),
            input.describe()
        )));
    }
    if n == 0 || u32::try_from(n).map_or(true, |n| n == u32::MAX) {
        return Err(EngineError::InvalidArgument(format!(
            "{}: a segment holds 1..{} vectors, the input has {n}",
            input.describe(),
            u32::MAX
        )));
    }
    Ok((n, dim, element_type))
}

/// Builds a segment at `out` from the rows `input` reads.
pub fn build_segment<T: Widen + DatasetElement>(
    input: &dyn BuildRows<T>,
    metric: Metric,
    out: &Path,
    options: &BuildOptions,
    progress: &Progress<'_>,
) -> Result<BuildReport> {
    let (n, dim, element_type) = check_input(input, options)?;
    let r = options.max_degree;
    let mut timer = PhaseTimer::default();

    // 1. Every row is finite (RowReader checks as it reads).
    timer.start(BuildPhase::Validate);
    sequential_pass(input, BuildPhase::Validate, progress, |_, _| Ok(()))?;

    // 2. The quantizer, trained on an evenly spaced sample small enough to
    // fit beside the index the build will hold (training roughly doubles it).
    timer.start(BuildPhase::TrainCodes);
    let graph_bytes = n.saturating_mul(4 * r + 2 + REORDER_BYTES_PER_NODE);
    let spare = options
        .memory_budget
        .saturating_sub(graph_bytes)
        .saturating_sub(FIXED_BUILD_BYTES);
    let affordable = spare / 2 / (8 * dim).max(1);
    if affordable < MIN_TRAINING_ROWS.min(n) {
        return Err(budget_error(
            options.memory_budget,
            n,
            graph_bytes + FIXED_BUILD_BYTES,
        ));
    }
    let sample_rows = options.training_sample.max(1).min(affordable);
    let sample_ids: Vec<usize> = evenly_spaced(n, sample_rows);
    let sample = read_widened(input, &sample_ids)?;
    let quantizer = Quantizer::train(options.code, flat(&sample, dim)?, metric, options.seed)?;
    let code_len = quantizer.code_len();
    let build_codes = (options.quantized_build && size_of::<T>() > 1)
        .then(|| flat(&sample, dim).map(|s| BuildCodes::train(&s, metric)))
        .transpose()?;
    progress(BuildPhase::TrainCodes, 1, 1);
    drop(sample);

    // 3. The base graph, within what the budget leaves after the index.
    timer.start(BuildPhase::Graph);
    let resident = graph_bytes + n.saturating_mul(code_len) + FIXED_BUILD_BYTES;
    let graph_budget = options
        .memory_budget
        .checked_sub(resident)
        .ok_or_else(|| budget_error(options.memory_budget, n, resident))?;
    // The upper layers are built after the shards have been freed and
    // before the codes exist, in the room both leave.
    let upper_params = UpperParams {
        seed: options.seed ^ 0x0550_0E4E,
        ..UpperParams::new(options.upper_degree)
    };
    let tall_ids = UpperLayers::tall_ids(n, &upper_params);
    let upper_bytes = tall_ids
        .len()
        .saturating_mul(dim * size_of::<T>() + upper_node_bytes(options.upper_degree));
    if upper_bytes > graph_budget + n.saturating_mul(code_len) {
        return Err(budget_error(
            options.memory_budget,
            n,
            graph_bytes + FIXED_BUILD_BYTES + upper_bytes,
        ));
    }
    let build = BuildParams {
        alpha: options.alpha,
        seed: options.seed,
        saturate: options.saturate,
        one_pass: options.one_pass,
        ..match options.builder {
            Builder::Vamana => BuildParams::vamana(r, options.list_size),
            Builder::HnswHeuristic => BuildParams::hnsw(r, options.list_size),
        }
    };
    let temp_dir = options
        .temp_dir
        .clone()
        .or_else(|| out.parent().map(Path::to_path_buf))
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or_else(|| PathBuf::from("."));
    let sharded = ShardedParams::new(build, graph_budget, temp_dir);
    let mut graph = Graph::new(n, r)?;
    let graph_progress = |done, total| progress(BuildPhase::Graph, done, total);
    let mut emit = |id, list: &[u32]| {
        graph.set_neighbours(id, list);
        Ok(())
    };
    let summary = match &build_codes {
        Some(codes) => build_sharded(
            &CodedRows { input, codes },
            codes.build_metric(),
            &sharded,
            &graph_progress,
            &mut emit,
        )?,
        None => build_sharded(&Rows(input), metric, &sharded, &graph_progress, &mut emit)?,
    };
    graph.set_entry(summary.entry);
    tracing::debug!(seconds = timer.elapsed(), "graph built and emitted");
    if metric != Metric::InnerProduct && summary.shards > 1 {
        // Under inner product unreachable nodes are legitimate (routing
        // climbs towards large norms) and forcing edges hurts recall. A
        // single shard was connected by `build_graph` already (a second
        // pass over 10M nodes took 8 s); a merge of shards was not.
        connect_unreachable(&mut graph);
    }

    // 4. Upper layers over the nodes whose HNSW level is at least 1.
    timer.start(BuildPhase::UpperLayers);
    let tall = read_rows_of(input, &tall_ids)?;
    let tall_rows = FlatVectors::new(&tall, dim)
        .ok_or_else(|| EngineError::InvalidArgument(format!("dimension {dim}")))?;
    tracing::debug!(
        rows = tall_ids.len(),
        seconds = timer.elapsed(),
        "upper-layer rows read"
    );
    let upper = UpperLayers::build_from_tall_rows(&tall_rows, n, metric, &upper_params)?;
    drop(tall);
    progress(BuildPhase::UpperLayers, 1, 1);

    // 5. Pack graph neighbours into the same pages.
    timer.start(BuildPhase::Reorder);
    let layout = NodeLayout::new(element_type, dim, r);
    let nodes_per_page = layout.nodes_per_page();
    let perm = block_order(&graph, nodes_per_page);
    graph.relabel_in_place(&perm);
    let upper = upper.relabel(&perm);
    let locality = same_page_fraction(&graph, nodes_per_page);
    progress(BuildPhase::Reorder, 1, 1);

    // 6. Codes, in the new order.
    timer.start(BuildPhase::Encode);
    let codes = encode_rows(
        input,
        &quantizer,
        &|new| perm.new_to_old[new] as usize,
        progress,
    )?;

    // 7. The segment.
    timer.start(BuildPhase::Write);
    let mut header = SegmentHeader::new(element_type, metric, dim as u32, n as u64);
    header.created_unix_micros = header.created_unix_micros.max(1);
    let mut writer = SegmentWriter::create(out, header)?;
    let mut meta = BTreeMap::new();
    meta.insert(
        "writer".to_string(),
        format!("omen-build {}", env!("CARGO_PKG_VERSION")),
    );
    meta.insert("source".to_string(), input.describe());
    meta.insert(
        "build.builder".to_string(),
        format!("{:?}", options.builder),
    );
    meta.insert("build.r".to_string(), r.to_string());
    meta.insert("build.l".to_string(), options.list_size.to_string());
    meta.insert("build.alpha".to_string(), options.alpha.to_string());
    meta.insert("build.passes".to_string(), build.passes().len().to_string());
    meta.insert("build.code".to_string(), options.code.to_string());
    meta.insert("build.shards".to_string(), summary.shards.to_string());
    meta.insert("build.seed".to_string(), options.seed.to_string());
    writer.write_metadata(&meta)?;

    let mut index = IndexHeader::new_zeroed();
    index.version.set(INDEX_VERSION);
    index.base_entry.set(graph.entry());
    index.max_degree.set(r as u32);
    index.nodes_per_page.set(nodes_per_page as u32);
    index.record_len.set(layout.record_len() as u32);
    index.code_len.set(code_len as u32);
    index.builder = match options.builder {
        Builder::Vamana => 1,
        Builder::HnswHeuristic => 2,
    };
    index.build_list_size.set(options.list_size as u32);
    index.build_alpha_bits.set(options.alpha.to_bits());
    writer.write_section(
        SectionKind::INDEX_HEADER,
        index.as_bytes(),
        Encoding::Raw,
        1,
        64,
    )?;

    write_nodes(
        &mut writer,
        input,
        &|node| graph.neighbours(node),
        &perm.new_to_old,
        layout,
        progress,
    )?;
    let q = quantizer.to_bytes();
    write_ram_sections(&mut writer, &codes, code_len, &q, &upper)?;
    if let Some(a) = &options.attributes {
        writer.write_attributes(&a.permuted(&perm.new_to_old)?)?;
    }
    let path = writer.finish()?;
    let file_bytes = std::fs::metadata(&path).map(|m| m.len()).unwrap_or(0);
    timer.stop();

    Ok(BuildReport {
        vectors: n as u64,
        dimension: dim,
        shards: summary.shards,
        mean_degree: graph.mean_degree(),
        same_page_fraction: locality,
        nodes_per_page,
        widest_degree_on_same_pages: layout.widest_degree_on_same_pages(),
        code_len,
        ram_bytes_per_vector: (codes.len() + q.len() + upper.heap_bytes()) as f64 / n as f64,
        file_bytes,
        phase_seconds: timer.done,
        peak_rss_bytes: crate::memory::peak_resident_bytes(),
    })
}

/// The codes of every row, in the order `old_of(new)` gives (the row of
/// the input stored as node `new`), encoded in parallel blocks.
fn encode_rows<T: Widen + DatasetElement>(
    input: &dyn BuildRows<T>,
    quantizer: &Quantizer,
    old_of: &(dyn Fn(usize) -> usize + Sync),
    progress: &Progress<'_>,
) -> Result<Vec<u8>> {
    let n = input.len();
    let dim = input.dim();
    let code_len = quantizer.code_len();
    let mut codes = vec![0u8; n * code_len];
    let done = std::sync::atomic::AtomicU64::new(0);
    codes
        .par_chunks_mut(BLOCK_ROWS * code_len)
        .enumerate()
        .try_for_each(|(b, block)| -> Result<()> {
            let first = b * BLOCK_ROWS;
            let ids: Vec<usize> = (first..first + block.len() / code_len)
                .map(old_of)
                .collect();
            let rows = read_widened(input, &ids)?;
            for (code, row) in block.chunks_exact_mut(code_len).zip(rows.chunks_exact(dim)) {
                quantizer.encode(row, code);
            }
            let d = done.fetch_add(ids.len() as u64, std::sync::atomic::Ordering::Relaxed);
            progress(BuildPhase::Encode, d + ids.len() as u64, n as u64);
            Ok(())
        })?;
    Ok(codes)
}

/// Writes a *flat index* of the rows `input` reads (SPEC.md §2.5.3): the
/// same sections as [`build_segment`] (full vectors in node records, codes,
/// quantizer, attributes), but no graph: records have no neighbour slots
/// (`R = 0`), nodes are in input order, there are no upper levels, the
/// index header says builder 3 and the superblock sets
/// [`INCOMPAT_FLAT_INDEX`]. A search scores every code and reranks the best
/// with full vectors. It costs a quantizer training and one encoding pass,
/// so a collection can flush a memtable in seconds and leave the graph to
/// compaction. `options.code`, `training_sample`, `seed` and `attributes`
/// apply; the graph options do not.
pub fn build_flat_segment<T: Widen + DatasetElement>(
    input: &dyn BuildRows<T>,
    metric: Metric,
    out: &Path,
    options: &BuildOptions,
    progress: &Progress<'_>,
) -> Result<BuildReport> {
    let (n, dim, element_type) = check_input(input, options)?;
    let mut timer = PhaseTimer::default();
    timer.start(BuildPhase::Validate);
    sequential_pass(input, BuildPhase::Validate, progress, |_, _| Ok(()))?;

    timer.start(BuildPhase::TrainCodes);
    let sample = read_widened(input, &evenly_spaced(n, options.training_sample.max(1)))?;
    let quantizer = Quantizer::train(options.code, flat(&sample, dim)?, metric, options.seed)?;
    drop(sample);
    let code_len = quantizer.code_len();
    progress(BuildPhase::TrainCodes, 1, 1);

    timer.start(BuildPhase::Encode);
    let codes = encode_rows(input, &quantizer, &|row| row, progress)?;

    timer.start(BuildPhase::Write);
    let layout = NodeLayout::new(element_type, dim, 0);
    let nodes_per_page = layout.nodes_per_page();
    let mut header = SegmentHeader::new(element_type, metric, dim as u32, n as u64);
    header.created_unix_micros = header.created_unix_micros.max(1);
    header.incompat_features = INCOMPAT_FLAT_INDEX;
    let mut writer = SegmentWriter::create(out, header)?;
    let mut meta = BTreeMap::new();
    meta.insert(
        "writer".to_string(),
        format!("omen-engine flat {}", env!("CARGO_PKG_VERSION")),
    );
    meta.insert("source".to_string(), input.describe());
    meta.insert("build.builder".to_string(), "flat".to_string());
    meta.insert("build.code".to_string(), options.code.to_string());
    meta.insert("build.seed".to_string(), options.seed.to_string());
    writer.write_metadata(&meta)?;

    let mut index = IndexHeader::new_zeroed();
    index.version.set(INDEX_VERSION);
    index.nodes_per_page.set(nodes_per_page as u32);
    index.record_len.set(layout.record_len() as u32);
    index.code_len.set(code_len as u32);
    index.builder = BUILDER_FLAT;
    writer.write_section(
        SectionKind::INDEX_HEADER,
        index.as_bytes(),
        Encoding::Raw,
        1,
        64,
    )?;
    let identity: Vec<u32> = (0..n as u32).collect();
    write_nodes(&mut writer, input, &|_| &[], &identity, layout, progress)?;
    let q = quantizer.to_bytes();
    let upper = UpperLayers::empty(n as u64, options.upper_degree);
    write_ram_sections(&mut writer, &codes, code_len, &q, &upper)?;
    if let Some(a) = &options.attributes {
        writer.write_attributes(a)?;
    }
    let path = writer.finish()?;
    let file_bytes = std::fs::metadata(&path).map(|m| m.len()).unwrap_or(0);
    timer.stop();
    Ok(BuildReport {
        vectors: n as u64,
        dimension: dim,
        shards: 0,
        mean_degree: 0.0,
        same_page_fraction: 0.0,
        nodes_per_page,
        widest_degree_on_same_pages: None,
        code_len,
        ram_bytes_per_vector: (codes.len() + q.len()) as f64 / n as f64,
        file_bytes,
        phase_seconds: timer.done,
        peak_rss_bytes: crate::memory::peak_resident_bytes(),
    })
}

/// Writes the sections a search holds in RAM, after the node records:
/// the codes (`code_len` bytes per node, in node order), the serialized
/// quantizer and the upper levels (empty for a flat index).
fn write_ram_sections(
    writer: &mut SegmentWriter,
    codes: &[u8],
    code_len: usize,
    quantizer: &[u8],
    upper: &UpperLayers,
) -> Result<()> {
    writer.write_section(
        SectionKind::CODES,
        codes,
        Encoding::Raw,
        (codes.len() / code_len.max(1)) as u64,
        code_len as u32,
    )?;
    writer.write_section(SectionKind::QUANTIZER, quantizer, Encoding::Lz4, 1, 0)?;
    writer.write_section(
        SectionKind::UPPER_LAYERS,
        &upper.to_bytes(),
        Encoding::Lz4,
        upper.levels() as u64,
        0,
    )?;
    Ok(())
}

/// Records assembled per parallel block while writing: small, because a
/// record can be several KiB at high dimensions.
const WRITE_BLOCK_ROWS: usize = 1024;

/// Writes node records in the new order, reading each vector from the
/// input by its old id. Rows are read in parallel blocks.
fn write_nodes<'g, T: Widen + DatasetElement>(
    writer: &mut SegmentWriter,
    input: &dyn BuildRows<T>,
    neighbours: &(dyn Fn(u32) -> &'g [u32] + Sync),
    new_to_old: &[u32],
    layout: NodeLayout,
    progress: &Progress<'_>,
) -> Result<()> {
    let n = new_to_old.len();
    let dim = input.dim();
    let record_len = layout.record_len();
    let mut block: Vec<u8> = Vec::new();
    let mut next = 0usize; // next new id to hand to the writer
    let mut failure: Option<EngineError> = None;
    writer
        .write_rows_with(SectionKind::NODES, record_len, &mut |out| {
            if next == n {
                return Ok(false);
            }
            let in_block = next % WRITE_BLOCK_ROWS;
            if in_block == 0 {
                let end = (next + WRITE_BLOCK_ROWS).min(n);
                block.resize((end - next) * record_len, 0);
                let filled =
                    block
                        .par_chunks_mut(record_len)
                        .enumerate()
                        .try_for_each(|(k, rec)| {
                            let new = next + k;
                            let old = new_to_old[new] as usize;
                            let mut row = vec![T::ZERO; dim];
                            input.read_rows(old, &mut row)?;
                            layout.encode(
                                input.id(old),
                                row.as_bytes(),
                                neighbours(new as u32),
                                rec,
                            );
                            Ok::<(), EngineError>(())
                        });
                if let Err(e) = filled {
                    failure = Some(e);
                    return Err(omen_format::FormatError::InvalidArgument(
                        "node block failed".into(),
                    ));
                }
                progress(BuildPhase::Write, end as u64, n as u64);
            }
            out.copy_from_slice(&block[in_block * record_len..(in_block + 1) * record_len]);
            next += 1;
            Ok(true)
        })
        .map_err(|e| failure.take().unwrap_or(EngineError::Format(e)))?;
    Ok(())
}

/// Reads every row once, in blocks, calling `each(first_row, rows)`.
fn sequential_pass<T: Widen + DatasetElement>(
    input: &dyn BuildRows<T>,
    phase: BuildPhase,
    progress: &Progress<'_>,
    mut each: impl FnMut(usize, &[T]) -> Result<()>,
) -> Result<()> {
    let n = input.len();
    let mut buf = vec![T::ZERO; BLOCK_ROWS * input.dim()];
    let mut first = 0;
    while first < n {
        let rows = BLOCK_ROWS.min(n - first);
        let block = &mut buf[..rows * input.dim()];
        input.read_rows(first, block)?;
        each(first, block)?;
        first += rows;
        progress(phase, first as u64, n as u64);
    }
    Ok(())
}

/// Reads rows `ids` (in parallel) and widens them to f32, back to back.
fn read_widened<T: Widen + DatasetElement>(
    input: &dyn BuildRows<T>,
    ids: &[usize],
) -> Result<Vec<f32>> {
    let dim = input.dim();
    let mut out = vec![0f32; ids.len() * dim];
    out.par_chunks_mut(dim)
        .zip(ids.par_iter())
        .try_for_each_init(
            || vec![T::ZERO; dim],
            |row, (dst, &id)| {
                input.read_rows(id, row)?;
                for (d, &x) in dst.iter_mut().zip(row.iter()) {
                    *d = x.widen();
                }
                Ok::<(), EngineError>(())
            },
        )?;
    Ok(out)
}

fn flat(data: &[f32], dim: usize) -> Result<FlatVectors<'_, f32>> {
    FlatVectors::new(data, dim)
        .ok_or_else(|| EngineError::InvalidArgument("empty training sample".into()))
}

/// `count` ids spread evenly over `0..n` (all of them if `count >= n`).
fn evenly_spaced(n: usize, count: usize) -> Vec<usize> {
    if count >= n {
        return (0..n).collect();
    }
    (0..count)
        .map(|i| (i as u128 * n as u128 / count as u128) as usize)
        .collect()
}

/// The input as a [`VectorSource`] for the sharded builder.
struct Rows<'a, T>(&'a dyn BuildRows<T>);

impl<T: Widen + DatasetElement> VectorSource<T> for Rows<'_, T> {
    fn len(&self) -> usize {
        self.0.len()
    }
    fn dim(&self) -> usize {
        self.0.dim()
    }
    fn read_rows(&self, first: usize, out: &mut [T]) -> Result<()> {
        self.0.read_rows(first, out)
    }
}

/// Rows read at a time by [`CodedRows`]: its scratch stays small beside
/// the build's fixed allowance.
const CODED_BLOCK_ROWS: usize = 256;

/// The input's 8-bit build codes as a [`VectorSource`], encoded as rows are
/// read so that no full-precision copy is ever held.
struct CodedRows<'a, T> {
    input: &'a dyn BuildRows<T>,
    codes: &'a BuildCodes,
}

impl<T: Widen + DatasetElement> VectorSource<i8> for CodedRows<'_, T> {
    fn len(&self) -> usize {
        self.input.len()
    }
    fn dim(&self) -> usize {
        self.input.dim()
    }
    /// Blocks in parallel: a one-shard build reads its whole input here
    /// (5 GB at 10M × 128), and the encoding keeps a core busy.
    fn read_rows(&self, first: usize, out: &mut [i8]) -> Result<()> {
        let dim = self.input.dim().max(1);
        let block_rows = CODED_BLOCK_ROWS.min(out.len() / dim).max(1);
        out.par_chunks_mut(CODED_BLOCK_ROWS * dim)
            .enumerate()
            .try_for_each_init(
                || (vec![T::ZERO; block_rows * dim], Vec::with_capacity(dim)),
                |(rows, wide), (k, block)| {
                    let rows = &mut rows[..block.len()];
                    self.input.read_rows(first + k * CODED_BLOCK_ROWS, rows)?;
                    self.codes.encode(rows, block, wide);
                    Ok(())
                },
            )
    }
}

/// The rows of `ids`, in that order, copied into RAM.
fn read_rows_of<T: Widen + DatasetElement>(
    input: &dyn BuildRows<T>,
    ids: &[u32],
) -> Result<Vec<T>> {
    let dim = input.dim();
    let mut data = vec![T::ZERO; ids.len() * dim];
    data.par_chunks_mut(dim)
        .zip(ids.par_iter())
        .try_for_each(|(row, &id)| input.read_rows(id as usize, row))?;
    Ok(data)
}

#[derive(Default)]
struct PhaseTimer {
    current: Option<(BuildPhase, Instant)>,
    done: Vec<(BuildPhase, f64)>,
}

impl PhaseTimer {
    /// Seconds into the current phase.
    fn elapsed(&self) -> f64 {
        self.current.map_or(0.0, |(_, t)| t.elapsed().as_secs_f64())
    }
    fn start(&mut self, phase: BuildPhase) {
        self.stop();
        self.current = Some((phase, Instant::now()));
    }
    fn stop(&mut self) {
        if let Some((p, t)) = self.current.take() {
            self.done.push((p, t.elapsed().as_secs_f64()));
        }
    }
}
