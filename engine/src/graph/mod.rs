//! Proximity graphs for the HNSW-IF index: the disk-resident base layer
//! (Vamana or the HNSW level-0 heuristic), the RAM-resident upper layers,
//! block-locality reordering and a memory-budgeted sharded build.
//!
//! - [`build`]: base-layer builders over any [`VectorSet`](crate::vectors::VectorSet);
//! - [`search`]: the in-memory beam search used by tests and to measure
//!   graph quality (nodes expanded stand in for disk reads);
//! - [`upper`]: the sparse upper layers kept in RAM, and their byte layout;
//! - [`reorder`]: a node permutation that packs neighbours into one page;
//! - [`sharded`]: building graphs larger than a memory budget.
//!
//! Invariant of [`Graph`]: every node has at most `max_degree` neighbours,
//! all of them ids `< len()`, none equal to the node itself and none repeated.
//! The adjacency is one flat `n * max_degree` array of `u32` plus a `u16`
//! degree per node, the shape in which it is written into disk blocks;
//! unused slots hold [`EMPTY_SLOT`].

pub mod build;
mod insertion_order;
mod prune;
pub mod reorder;
mod rng;
pub mod search;
pub mod sharded;
pub mod upper;
pub(crate) mod visited;

pub use build::{
    BuildParams, Builder, build_graph, build_graph_from_rows, connect_unreachable, medoid,
};
pub use reorder::{Permutation, block_order, same_page_fraction};
pub use search::{Neighbour, SearchScratch, SearchStats, beam_search};
pub use sharded::{InMemory, ShardedParams, ShardedSummary, VectorSource, build_sharded};
pub use upper::{UpperLayers, UpperParams};

/// The value of unused adjacency slots: never a valid id, so a reader that
/// ignores the degree fails loudly instead of following edges to node 0.
pub const EMPTY_SLOT: u32 = u32::MAX;

/// The largest supported degree: degrees are stored as `u16`.
pub const MAX_DEGREE_LIMIT: usize = u16::MAX as usize;

/// A directed graph over nodes `0..len()` with bounded out-degree, stored
/// flat so that a node's list is one contiguous slice.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Graph {
    max_degree: usize,
    entry: u32,
    degrees: Vec<u16>,
    neighbours: Vec<u32>,
}

impl Graph {
    /// A graph of `n` nodes without edges; `max_degree` must be in
    /// `1..=MAX_DEGREE_LIMIT` and `n` at most `u32::MAX`.
    pub fn new(n: usize, max_degree: usize) -> crate::Result<Self> {
        check_shape(n, max_degree)?;
        let slots = n.checked_mul(max_degree).ok_or_else(|| {
            crate::EngineError::InvalidArgument(format!("graph of {n} x {max_degree} overflows"))
        })?;
        Ok(Graph {
            max_degree,
            entry: 0,
            degrees: vec![0; n],
            neighbours: vec![EMPTY_SLOT; slots],
        })
    }

    /// Reassembles a graph from its flat parts, checking every invariant:
    /// the parts may come from a file.
    pub fn from_parts(
        max_degree: usize,
        entry: u32,
        degrees: Vec<u16>,
        neighbours: Vec<u32>,
    ) -> crate::Result<Self> {
        check_shape(degrees.len(), max_degree)?;
        if Some(neighbours.len()) != degrees.len().checked_mul(max_degree) {
            return Err(crate::EngineError::InvalidArgument(format!(
                "{} adjacency slots for {} nodes of degree {max_degree}",
                neighbours.len(),
                degrees.len()
            )));
        }
        let g = Graph {
            max_degree,
            entry,
            degrees,
            neighbours,
        };
        match g.find_violation() {
            Some(v) => Err(crate::EngineError::InvalidArgument(v)),
            None => Ok(g),
        }
    }

    /// Number of nodes.
    pub fn len(&self) -> usize {
        self.degrees.len()
    }

    /// Whether the graph has no nodes.
    pub fn is_empty(&self) -> bool {
        self.degrees.is_empty()
    }

    /// The bound `R` on every node's degree, and the slot count per node.
    pub fn max_degree(&self) -> usize {
        self.max_degree
    }

    /// Where searches of this layer start when no upper layer gives a
    /// better entry (the medoid for built graphs).
    pub fn entry(&self) -> u32 {
        self.entry
    }

    /// Sets the entry node; it must be a node of the graph.
    pub fn set_entry(&mut self, entry: u32) {
        assert!(
            (entry as usize) < self.len() || self.is_empty(),
            "entry out of range"
        );
        self.entry = entry;
    }

    /// The out-neighbours of `id`.
    #[inline]
    pub fn neighbours(&self, id: u32) -> &[u32] {
        let i = id as usize;
        let start = i * self.max_degree;
        &self.neighbours[start..start + usize::from(self.degrees[i])]
    }

    /// The degree of `id`.
    #[inline]
    pub fn degree(&self, id: u32) -> usize {
        usize::from(self.degrees[id as usize])
    }

    /// Replaces the out-neighbours of `id`. Panics if the list breaks the
    /// module invariant: callers are builders, whose lists are internal.
    pub fn set_neighbours(&mut self, id: u32, list: &[u32]) {
        assert!(list.len() <= self.max_degree, "degree above R");
        let i = id as usize;
        debug_assert!(list.iter().all(|&v| v != id && (v as usize) < self.len()));
        let start = i * self.max_degree;
        let slots = &mut self.neighbours[start..start + self.max_degree];
        slots[..list.len()].copy_from_slice(list);
        slots[list.len()..].fill(EMPTY_SLOT);
        self.degrees[i] = u16::try_from(list.len()).unwrap_or(u16::MAX);
    }

    /// The per-node degrees.
    pub fn degrees(&self) -> &[u16] {
        &self.degrees
    }

    /// All `len() * max_degree()` slots, node after node.
    pub fn slots(&self) -> &[u32] {
        &self.neighbours
    }

    /// Total number of edges.
    pub fn edge_count(&self) -> u64 {
        self.degrees.iter().map(|&d| u64::from(d)).sum()
    }

    /// Mean out-degree.
    pub fn mean_degree(&self) -> f64 {
        if self.is_empty() {
            0.0
        } else {
            self.edge_count() as f64 / self.len() as f64
        }
    }

    /// RAM held by the adjacency, in bytes.
    pub fn heap_bytes(&self) -> usize {
        self.neighbours.len() * 4 + self.degrees.len() * 2
    }

    /// The first broken invariant, described, or `None` if the graph is
    /// well formed: degree at most `R`, ids in range, no self loops, no
    /// repeated edges, unused slots empty, entry in range.
    pub fn find_violation(&self) -> Option<String> {
        let n = self.len();
        if n > 0 && self.entry as usize >= n {
            return Some(format!("entry {} out of range", self.entry));
        }
        let mut seen = Vec::with_capacity(self.max_degree);
        for (i, &d) in self.degrees.iter().enumerate() {
            let d = usize::from(d);
            if d > self.max_degree {
                return Some(format!("node {i} has degree {d} > {}", self.max_degree));
            }
            let start = i * self.max_degree;
            let slots = &self.neighbours[start..start + self.max_degree];
            seen.clear();
            for &v in &slots[..d] {
                if v as usize >= n {
                    return Some(format!("node {i} has an edge to {v}, out of range"));
                }
                if v as usize == i {
                    return Some(format!("node {i} has a self loop"));
                }
                seen.push(v);
            }
            seen.sort_unstable();
            if seen.windows(2).any(|w| w[0] == w[1]) {
                return Some(format!("node {i} has a repeated edge"));
            }
            if slots[d..].iter().any(|&v| v != EMPTY_SLOT) {
                return Some(format!("node {i} has a non-empty unused slot"));
            }
        }
        None
    }
}

fn check_shape(n: usize, max_degree: usize) -> crate::Result<()> {
    if max_degree == 0 || max_degree > MAX_DEGREE_LIMIT {
        return Err(crate::EngineError::InvalidArgument(format!(
            "max degree must be in 1..={MAX_DEGREE_LIMIT}, got {max_degree}"
        )));
    }
    if u32::try_from(n).is_err() {
        return Err(crate::EngineError::InvalidArgument(format!(
            "a graph holds at most {} nodes, got {n}",
            u32::MAX
        )));
    }
    Ok(())
}
