//! Best-first beam search over a proximity graph, shared by the builders
//! (on the graph under construction) and by the in-memory search used by
//! tests and measurements.
//!
//! Invariant: the candidate list is sorted by `(distance, id)`, holds at
//! most `list_size` entries and no id twice; every node is scored at most
//! once per search. Nodes *expanded* (their neighbour lists read) are what a
//! disk search pays a page read for, so [`SearchStats::expanded`] is the
//! proxy for I/O.

use std::collections::HashSet;

use super::Graph;
use crate::Metric;
use crate::distance::{Element, Kernels, prefetch};
use crate::vectors::VectorSet;

/// A node and its distance to the query; smaller is closer.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Neighbour {
    pub id: u32,
    pub distance: f32,
}

impl Neighbour {
    /// Total order: distance, then id, so that ties never depend on
    /// insertion order.
    #[inline]
    pub(crate) fn key_cmp(&self, other: &Neighbour) -> std::cmp::Ordering {
        self.distance
            .total_cmp(&other.distance)
            .then(self.id.cmp(&other.id))
    }
}

/// What one search cost.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SearchStats {
    /// Nodes whose neighbour lists were read: disk reads without locality.
    pub expanded: usize,
    /// Distances computed.
    pub distances: usize,
    /// Distinct pages among the expanded nodes when node `i` lives on page
    /// `i / nodes_per_page`: disk reads with a per-query page cache. Zero
    /// unless `nodes_per_page` was given.
    pub pages: usize,
}

/// Parameters of one in-memory search.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SearchParams {
    /// Results wanted.
    pub k: usize,
    /// Candidate list size `L` (raised to `k` if smaller).
    pub list_size: usize,
    /// Nodes per disk page for [`SearchStats::pages`]; 0 to skip counting.
    pub nodes_per_page: usize,
}

/// Reusable per-thread search state, so that a search allocates nothing.
///
/// The visited set is one bit per node, cleared through the list of nodes
/// it marked (a search marks a few thousand). A `u32` epoch per node (the
/// earlier layout) cleared in O(1) but took 4 bytes per node per thread,
/// 40 MB per thread at 10M nodes, touched at random; its filter loop had
/// 9% of a build's samples at 200K and 14% at 10M. The bitset is 32 times
/// smaller. Measured: the 200K graph phase 15% faster, 1M unchanged
/// (benches/RESULTS.md, session 7).
#[derive(Debug, Clone, Default)]
pub struct SearchScratch {
    /// Bit `id % 64` of word `id / 64`: `id` was scored in this search.
    seen: Vec<u64>,
    /// The nodes set in `seen`, cleared at the next reset.
    marked: Vec<u32>,
    pub(crate) list: Vec<Candidate>,
    pub(crate) buf: Vec<u32>,
    scores: Vec<f32>,
    pages: HashSet<u32>,
}

impl SearchScratch {
    /// Scratch for graphs of up to `n` nodes (it grows on demand).
    pub fn new(n: usize) -> Self {
        SearchScratch {
            seen: vec![0; n.div_ceil(64)],
            ..Default::default()
        }
    }

    /// Starts a new search over `n` nodes with no node visited.
    pub(crate) fn reset(&mut self, n: usize) {
        for &id in &self.marked {
            self.seen[id as usize / 64] = 0;
        }
        self.marked.clear();
        let words = n.div_ceil(64);
        if self.seen.len() < words {
            self.seen.resize(words, 0);
        }
        self.list.clear();
    }
}

impl SearchScratch {
    /// Sets the bit of `id` without branching on it; true if it was clear.
    /// The caller records `id` in `marked` when it was.
    #[inline]
    fn set_seen(&mut self, id: u32) -> bool {
        let word = &mut self.seen[id as usize / 64];
        let bit = 1u64 << (id % 64);
        let new = *word & bit == 0;
        *word |= bit;
        new
    }
}

impl Visited for SearchScratch {
    #[inline]
    fn first_visit(&mut self, id: u32) -> bool {
        let new = self.set_seen(id);
        if new {
            self.marked.push(id);
        }
        new
    }

    /// Without a branch on the visited bit: which of a node's neighbours
    /// were already visited follows no pattern a predictor learns, so a
    /// branch on the bit is often mispredicted. Against `retain` with
    /// that branch, a 10M × 128 graph phase inserted 1.06 to 1.10 times as
    /// many vectors per second (benches/RESULTS.md, session 11).
    fn retain_first_visits(&mut self, ids: &mut Vec<u32>) {
        let mut kept = 0;
        for i in 0..ids.len() {
            let id = ids[i];
            let new = self.set_seen(id);
            // Always written; the slot is kept only if `id` is new.
            ids[kept] = id;
            kept += usize::from(new);
        }
        ids.truncate(kept);
        self.marked.extend_from_slice(ids);
    }
}

/// A set of nodes already scored in this search.
pub(crate) trait Visited {
    /// Marks `id`; true the first time.
    fn first_visit(&mut self, id: u32) -> bool;

    /// Keeps in `ids` only the ids visited for the first time, marking
    /// them, in their order.
    fn retain_first_visits(&mut self, ids: &mut Vec<u32>) {
        ids.retain(|&id| self.first_visit(id));
    }
}

/// Read access to out-neighbours, whoever stores them.
pub(crate) trait Adjacency {
    /// Appends the out-neighbours of `id` to `out` (cleared first).
    fn neighbours_into(&self, id: u32, out: &mut Vec<u32>);

    /// Starts loading the list of `id` into the cache, for an adjacency
    /// too large for it; a hint, which may do nothing.
    fn prefetch_list(&self, _id: u32) {}
}

impl Adjacency for Graph {
    #[inline]
    fn neighbours_into(&self, id: u32, out: &mut Vec<u32>) {
        out.clear();
        out.extend_from_slice(self.neighbours(id));
    }
}

/// An entry of the candidate list.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Candidate {
    pub(crate) n: Neighbour,
    pub(crate) expanded: bool,
}

/// How a search scores the nodes it visits: all new neighbours of an
/// expanded node at once, so that an implementation can share the query's
/// loads among them (`Kernels::distances4`). Any `FnMut(id) -> distance`
/// is one.
pub(crate) trait Scorer {
    /// Sets `out` to the distance of each of `ids` from the query, in order.
    fn score(&mut self, ids: &[u32], out: &mut Vec<f32>);
}

impl<F: FnMut(u32) -> f32> Scorer for F {
    fn score(&mut self, ids: &[u32], out: &mut Vec<f32>) {
        out.clear();
        out.extend(ids.iter().map(|&v| self(v)));
    }
}

/// Inserts `n` into the sorted `list` bounded by `cap`; returns the index
/// it went to, or `None` if it was not close enough.
#[inline]
fn insert(list: &mut Vec<Candidate>, cap: usize, n: Neighbour) -> Option<usize> {
    if list.len() >= cap
        && let Some(last) = list.last()
        && n.key_cmp(&last.n).is_ge()
    {
        return None;
    }
    let pos = list.partition_point(|c| c.n.key_cmp(&n).is_lt());
    if list.len() >= cap {
        list.pop();
    }
    list.insert(pos, Candidate { n, expanded: false });
    Some(pos)
}

/// Best-first search: repeatedly expands the closest unexpanded candidate
/// until all of the `list_size` closest are expanded. Entries must be
/// unvisited node ids. `on_expand` sees every expanded node with its
/// distance, in expansion order; `prefetch` sees each newly visited
/// neighbour of an expanded node before any of them is scored; `scores` is
/// scratch. Returns the number of distances computed; the result is left
/// in `list`.
#[expect(
    clippy::too_many_arguments,
    reason = "internal kernel shared by builders and search"
)]
pub(crate) fn search_core<A: Adjacency + ?Sized, Vis: Visited>(
    adjacency: &A,
    entries: &[u32],
    list_size: usize,
    distance: &mut impl Scorer,
    visited: &mut Vis,
    list: &mut Vec<Candidate>,
    buf: &mut Vec<u32>,
    scores: &mut Vec<f32>,
    on_expand: &mut impl FnMut(Neighbour),
    prefetch: &impl Fn(u32),
) -> usize {
    let cap = list_size.max(1);
    let mut computed = 0;
    list.clear();
    buf.clear();
    buf.extend(entries.iter().copied().filter(|&e| visited.first_visit(e)));
    distance.score(buf, scores);
    computed += buf.len();
    for (&id, &d) in buf.iter().zip(scores.iter()) {
        insert(list, cap, Neighbour { id, distance: d });
    }
    let mut cursor = 0;
    while cursor < list.len() {
        let current = &mut list[cursor];
        current.expanded = true;
        let node = current.n;
        on_expand(node);
        adjacency.neighbours_into(node.id, buf);
        // The list expanded next is most often the next unexpanded one
        // now: its cache miss overlaps this expansion's distances.
        if let Some(c) = list[cursor + 1..].iter().find(|c| !c.expanded) {
            adjacency.prefetch_list(c.n.id);
        }
        // Start loading every new neighbour's data before scoring the
        // first, so that their cache misses overlap.
        visited.retain_first_visits(buf);
        for &v in buf.iter() {
            prefetch(v);
        }
        let mut next = cursor + 1;
        distance.score(buf, scores);
        computed += buf.len();
        for (&v, &d) in buf.iter().zip(scores.iter()) {
            if let Some(pos) = insert(list, cap, Neighbour { id: v, distance: d })
                && pos < next
            {
                next = pos;
            }
        }
        // Everything before `cursor` was expanded and the list changed only
        // at or after `next` (<= cursor + 1): resume from there.
        cursor = next;
        while cursor < list.len() && list[cursor].expanded {
            cursor += 1;
        }
    }
    computed
}

/// Searches `graph` for the `k` nodes closest to `query`, starting from
/// `entries` (or the graph's entry if empty), with exact distances over
/// `vectors`. Returns the results, closest first, and the search's cost.
pub fn beam_search<T: Element, V: VectorSet<T> + ?Sized>(
    graph: &Graph,
    vectors: &V,
    metric: Metric,
    query: &[T],
    entries: &[u32],
    params: &SearchParams,
    scratch: &mut SearchScratch,
) -> (Vec<Neighbour>, SearchStats) {
    let mut stats = SearchStats::default();
    if graph.is_empty() {
        return (Vec::new(), stats);
    }
    let kernels = Kernels::<T>::best();
    let default_entry = [graph.entry()];
    let entries = if entries.is_empty() {
        &default_entry[..]
    } else {
        entries
    };
    scratch.reset(graph.len());
    let mut list = std::mem::take(&mut scratch.list);
    let mut buf = std::mem::take(&mut scratch.buf);
    let mut pages = std::mem::take(&mut scratch.pages);
    let mut scores = std::mem::take(&mut scratch.scores);
    pages.clear();
    let npp = params.nodes_per_page;
    let mut dist = |id: u32| kernels.distance(metric, query, vectors.get(id as usize));
    stats.distances = search_core(
        graph,
        entries,
        params.list_size.max(params.k),
        &mut dist,
        scratch,
        &mut list,
        &mut buf,
        &mut scores,
        &mut |n: Neighbour| {
            stats.expanded += 1;
            if npp > 0 {
                pages.insert(n.id / npp as u32);
            }
        },
        &|id| prefetch(vectors.get(id as usize)),
    );
    stats.pages = pages.len();
    let out = list.iter().take(params.k).map(|c| c.n).collect();
    scratch.list = list;
    scratch.buf = buf;
    scratch.pages = pages;
    scratch.scores = scores;
    (out, stats)
}

#[cfg(test)]
mod tests {
    use super::{SearchScratch, Visited};

    #[test]
    fn visited_bits_clear_between_searches_and_grow() {
        let mut s = SearchScratch::new(10);
        s.reset(10);
        assert!(s.first_visit(3));
        assert!(!s.first_visit(3));
        s.reset(200);
        let ids = [0, 3, 63, 64, 127, 128, 199];
        for id in ids {
            assert!(s.first_visit(id), "{id} is new in this search");
            assert!(!s.first_visit(id), "{id} was just marked");
        }
        s.reset(200);
        for id in ids {
            assert!(s.first_visit(id), "{id} was cleared by the reset");
        }
        assert!(!s.first_visit(64));
        assert!(s.first_visit(65));
    }

    #[test]
    fn retain_first_visits_keeps_new_ids_once_in_order() {
        let mut s = SearchScratch::new(300);
        s.reset(300);
        assert!(s.first_visit(70));
        let mut ids = vec![5, 70, 200, 5, 64, 200, 299, 0];
        s.retain_first_visits(&mut ids);
        assert_eq!(ids, [5, 200, 64, 299, 0]);
        for id in [5, 70, 200, 64, 299, 0] {
            assert!(!s.first_visit(id), "{id} is marked");
        }
        // The reset must clear what the filter marked.
        s.reset(300);
        let mut again = vec![0, 5, 64, 70, 200, 299];
        s.retain_first_visits(&mut again);
        assert_eq!(again, [0, 5, 64, 70, 200, 299]);
    }
}
