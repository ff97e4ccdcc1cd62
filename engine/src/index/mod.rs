//! The disk-resident HNSW-IF index: building a segment ([`build`]) and
//! searching one ([`Segment`]).
//!
//! RAM holds the upper HNSW layers and one quantized code per vector; the
//! segment file holds the base layer as node records (full vector plus
//! neighbour list) packed into checksummed 4 KiB pages, ordered so that
//! graph neighbours share pages. See SPEC.md §2.5 and §6.

mod attach;
mod attributes;
pub mod build;
mod filtered;
mod node;
mod pages;
mod search;
mod segment;

pub use attach::attach_attributes;
pub use build::{
    BuildOptions, BuildPhase, BuildReport, BuildRows, MemoryRows, build_flat_segment, build_segment,
};
pub use node::NodeLayout;
pub use segment::{FILTER_LIST_FACTOR, Segment};

use crate::io::{IoMode, IoWait};
use crate::{EngineError, Result};

/// Which rows a search may return; rejected rows still guide the walk.
///
/// `row` is the segment-local node index (`0..Segment::len()`), `id` the
/// external id stored in the node's record. Implemented for every
/// `Fn(u32, u64) -> bool + Sync`, so a closure is a filter.
pub trait RowFilter: Sync {
    fn accepts(&self, row: u32, id: u64) -> bool;
}

impl<F: Fn(u32, u64) -> bool + Sync> RowFilter for F {
    fn accepts(&self, row: u32, id: u64) -> bool {
        self(row, id)
    }
}

/// How to open a segment.
#[derive(Debug, Clone, Copy)]
pub struct SegmentOptions {
    /// The page-reading path; `Auto` prefers io_uring with `O_DIRECT`.
    pub io: IoMode,
    /// Most page reads in flight per searching thread.
    pub queue_depth: usize,
    /// How a searching thread waits for io_uring reads: spinning lowers a
    /// query's latency for a busy core per searching thread (see [`IoWait`]).
    pub io_wait: IoWait,
    /// Bytes of RAM for attribute columns: columns are loaded at open, in
    /// schema order, while their decoded size fits; the others are read
    /// from the segment by each filtered query that needs them.
    pub attribute_budget: usize,
}

impl Default for SegmentOptions {
    fn default() -> Self {
        SegmentOptions {
            io: IoMode::Auto,
            queue_depth: 32,
            io_wait: IoWait::Sleep,
            attribute_budget: 256 << 20,
        }
    }
}

/// The knobs of one search.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SearchParams {
    /// Candidate list size: larger finds more, reads more.
    pub ef: usize,
    /// Page groups in flight at once (the I/O queue depth of a query), once
    /// the walk has its first four groups in hand; at most two before
    /// (`search.rs`, `APPROACH_GROUPS`). Capped by what the segment's
    /// `queue_depth` holds.
    pub beam_width: usize,
    /// How reads are scheduled. `true` (the default): each time the oldest
    /// requested group of pages is in hand and its nodes are expanded, the
    /// best unread candidates are requested, so `beam_width` groups stay in
    /// flight and the device reads while the search computes (PipeANN's
    /// pipelining). `false`: in rounds, the next batch is requested only
    /// when the whole previous batch is in (DiskANN's beam search). On the
    /// development VM's disk, which completes a batch together, pipelining
    /// gives 10–25% more QPS at the same reads (benches/RESULTS.md,
    /// session 8).
    pub pipeline: bool,
    /// Entry candidates taken from the upper layers.
    pub upper_ef: usize,
    /// Early stop, in thousandths: no page is read for a candidate more
    /// than this much farther than the current `r`-th best exact distance
    /// `d_r`, where `r = max(k, ef / 4)` (the bound is
    /// `d_r + stop_permille / 1000 * |d_r|`), so easy queries stop early and
    /// a larger `ef` still raises recall; `None` reads until the best `ef`
    /// candidates are all expanded. The default, 100 (10%), keeps recall@10 above 0.95 at
    /// `ef = 64` on both 200K and 1M 128-d sets (0.974 with 31 reads and
    /// 0.957 with 37). 65 reads fewer pages (24.3 at 200K for 0.955) but
    /// caps recall near 0.93 at 1M (benches/RESULTS.md). The bound trusts the
    /// codes: for 1-bit codes, which misjudge distances by more, use `None`.
    pub stop_permille: Option<u32>,
    /// Rerank depth: before returning, the search makes sure that the
    /// `rerank` nodes with the best code distances among all it scored have
    /// exact distances. Those whose pages the walk did not read are read in
    /// one final batch (one round at full queue depth, no expansion), so a
    /// true neighbour that the codes ranked well but the walk's list or
    /// early stop left unread can still be returned. `0` (the default)
    /// returns the best exact distances the walk read, as before the knob.
    /// Costs one extra round (at most `SegmentOptions::queue_depth` pages in
    /// flight) and up to `rerank` extra pages.
    /// Measured at 1M × 128 it buys no recall per read over a looser early
    /// stop (benches/RESULTS.md); it is for devices where a dependent round
    /// costs much more than its reads.
    pub rerank: usize,
}

impl Default for SearchParams {
    fn default() -> Self {
        SearchParams {
            ef: 64,
            beam_width: 6,
            pipeline: true,
            upper_ef: 8,
            stop_permille: Some(100),
            rerank: 0,
        }
    }
}

/// One result: the vector's id and its exact distance (smaller is closer).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Hit {
    pub id: u64,
    pub distance: f32,
}

/// What one search cost.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct QueryStats {
    /// 4 KiB pages read from the segment file.
    pub pages_read: u32,
    /// Bytes read from the segment file.
    pub bytes_read: u64,
    /// Times the search waited for the device: once per group put in hand
    /// whose pages were not all in yet (with `pipeline = false`, about its
    /// rounds of reads). Unlike the other counts, it depends on I/O timing.
    pub rounds: u32,
    /// Nanoseconds spent in those waits (including the checksum of each
    /// page as it arrives; through mmap, the page faults). Depends on
    /// timing, like `rounds`.
    pub wait_nanos: u64,
    /// Nanoseconds spent handing reads to the kernel outside the waits
    /// (io_uring submissions that do not wait; zero through mmap). On a
    /// virtual disk each submission also notifies the device, which costs
    /// the searching thread several microseconds. The latency minus
    /// `wait_nanos` and `submit_nanos` is the search's own computation.
    pub submit_nanos: u64,
    /// Distances estimated from in-RAM codes.
    pub code_distances: u32,
    /// Exact distances from full vectors.
    pub exact_distances: u32,
    /// How the segment answered: unfiltered, or the filtered strategy its
    /// planner chose (SPEC.md §7.3).
    pub strategy: crate::filter::SearchStrategy,
    /// Rows the filter was evaluated on.
    pub filter_rows_tested: u32,
}

/// Nanoseconds since `start`, for the timings in [`QueryStats`].
pub(crate) fn nanos_since(start: std::time::Instant) -> u64 {
    u64::try_from(start.elapsed().as_nanos()).unwrap_or(u64::MAX)
}

/// Rejects a query that no index can answer: the wrong dimension (naming
/// `owner()`, "the segment /path" or "the collection /dir"), a component
/// that is not finite, or `k = 0`.
pub(crate) fn check_query(
    query: &[f32],
    k: usize,
    dimension: usize,
    owner: impl FnOnce() -> String,
) -> Result<()> {
    if query.len() != dimension {
        return Err(EngineError::InvalidArgument(format!(
            "query has {} dimensions, {} has {dimension}",
            query.len(),
            owner()
        )));
    }
    if let Some(i) = query.iter().position(|x| !x.is_finite()) {
        return Err(EngineError::InvalidArgument(format!(
            "query component {i} is {}; queries must be finite",
            query[i]
        )));
    }
    if k == 0 {
        return Err(EngineError::InvalidArgument("k must be at least 1".into()));
    }
    Ok(())
}
