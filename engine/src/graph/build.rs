//! Base-layer graph builders: Vamana (DiskANN) and the HNSW level-0
//! heuristic, sharing one insertion routine.
//!
//! Both insert every node in a seeded order (random, then region by
//! region: see `insertion_order`): a greedy search with list size `L` from
//! the entry node (the medoid) collects candidates, the node's list
//! becomes `RobustPrune(candidates, alpha, R)`, and the node is added to
//! each chosen neighbour's list, which is pruned again when it overflows.
//! They differ where the literature does:
//!
//! | | Vamana | HNSW level 0 |
//! |---|---|---|
//! | candidates | every node expanded by the search, plus the final list | the final list (`ef_construction = L`) |
//! | passes | two: `alpha = 1`, then `alpha` (1.2); or one, `alpha` | one, `alpha = 1` |
//! | overflow | a list may grow to `slack * R` before it is pruned | pruned as soon as it exceeds `R` |
//!
//! With [`BuildParams::saturate`] every prune of the final pass fills the
//! list towards `R` with the nearest candidates that the diversity rule
//! dropped (DiskANN's `saturate_graph`). A disk record has `R` slots
//! whatever its degree, so these edges cost no I/O; on 200K clustered
//! 128-d vectors they raised recall@10 at a fixed number of page reads
//! from 0.914 to 0.944 (mean degree 31 to 64), for about 2.5 times the
//! build time, since full lists overflow and are re-pruned more often.
//! A list re-pruned because reverse edges overflowed it is cut to
//! [`BuildParams::reprune_fill`] of `R`, which leaves room for more reverse
//! edges before the next overflow; see that field.
//!
//! Concurrency: insertions run in parallel on the current rayon pool. The
//! adjacency under construction is a flat array of atomics with striped
//! locks that serialise *writers* of a node; searches read lists without
//! locks and may see a list mid-rewrite, which only ever holds valid ids,
//! so at worst a search scores a stale neighbour (as in DiskANN).
//! With one rayon thread the build is sequential and a pure function of
//! the inputs and the seed.
//!
//! Invariant of the output: a [`Graph`] whose every list is at most `R`.

use std::sync::Mutex;
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};

use rayon::prelude::*;

use super::insertion_order::{Plan, insertion_order, plan};
use super::prune::{Between, PruneScratch, robust_prune};
use super::reorder::Permutation;
use super::rng::{SplitMix64, permutation};
use super::search::{Adjacency, Candidate, Neighbour, Scorer, SearchScratch, Visited, search_core};
use super::{EMPTY_SLOT, Graph, MAX_DEGREE_LIMIT};
use crate::distance::{Element, Kernels, prefetch};
use crate::memory::advise_huge_pages;
use crate::vectors::{FlatVectors, VectorSet};
use crate::{EngineError, Metric, Result};

/// Which base-layer construction to run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Builder {
    /// DiskANN's Vamana: two passes, the second with `alpha > 1`.
    Vamana,
    /// HNSW's level-0 construction: one pass with the `alpha = 1` heuristic.
    HnswHeuristic,
}

/// Parameters of a base-layer build.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct BuildParams {
    pub builder: Builder,
    /// `R`: the bound on every node's out-degree.
    pub max_degree: usize,
    /// `L`: the candidate list size of the insertion searches.
    pub list_size: usize,
    /// Relaxation of the final Vamana pass; ignored by the HNSW heuristic.
    pub alpha: f32,
    /// How far past `R` a list may grow from reverse edges before it is
    /// pruned: pruning costs `O(R^2)` distances, so letting lists overflow
    /// by 30% amortises it over several insertions.
    pub slack: f32,
    /// Fill lists shorter than `R` in the final pass with the nearest
    /// occluded candidates (DiskANN's `saturate_graph`); see `prune`.
    pub saturate: bool,
    /// With `saturate`: the share of `R` that a list overflowing with
    /// reverse edges during the insertions is re-pruned to (1.0: to `R`,
    /// as DiskANN does). Saturation fills a list to `R`, so it overflows
    /// again after `capacity - R` more reverse edges (20 at `R = 64`), and
    /// pruning took most of the build's distances (about 5,000 of 7,300 per
    /// insertion at 200K, with 1.8 re-prunes per insertion). Re-pruned to
    /// 0.75 (48 edges at `R = 64`: the nearest diverse edges, then
    /// saturation), a list takes 36 more first. A node's own list after its
    /// search, and lists longer than `R` at the end, are still pruned and
    /// saturated to `R`; lists in between keep every edge they hold (mean
    /// degree 61 instead of 64). At 1M × 128 this cut the graph phase from
    /// 230 s to 175 s with recall per read unchanged (0.9513 at 31.9 reads
    /// against 0.9518 and 0.9544 for two builds with 1.0). Re-pruning to
    /// 0.625 lost 0.01 of recall at the same reads, and pruning a node's
    /// own list to 0.75 as well lost 0.004 (benches/RESULTS.md, session 10).
    pub reprune_fill: f32,
    /// Vamana only: skip the `alpha = 1` pass of the Vamana paper and
    /// insert once, with `alpha`, as DiskANN's current builder does
    /// (`BuildOptions::one_pass` says what that was measured to cost).
    pub one_pass: bool,
    /// Insert a random tenth of the nodes first, then the rest region by
    /// region, so that consecutive insertions find their rows and lists in
    /// the cache (`insertion_order`); otherwise in plain random order.
    pub grouped_order: bool,
    /// Seed of the insertion order.
    pub seed: u64,
}

impl BuildParams {
    /// Vamana with DiskANN's defaults (`alpha = 1.2`, slack 1.3).
    pub fn vamana(max_degree: usize, list_size: usize) -> Self {
        BuildParams {
            builder: Builder::Vamana,
            max_degree,
            list_size,
            alpha: 1.2,
            slack: 1.3,
            saturate: false,
            reprune_fill: 0.75,
            one_pass: false,
            grouped_order: true,
            seed: 0x0E4E_DB00,
        }
    }

    /// The HNSW level-0 heuristic (hnswlib: `M0 = R`, `ef_construction = L`).
    pub fn hnsw(max_degree: usize, list_size: usize) -> Self {
        BuildParams {
            builder: Builder::HnswHeuristic,
            alpha: 1.0,
            slack: 1.0,
            ..BuildParams::vamana(max_degree, list_size)
        }
    }

    /// The order in which a pass with `seed` inserts the nodes.
    fn insertion_order<T: Element, V: VectorSet<T> + ?Sized>(
        &self,
        vectors: &V,
        seed: u64,
    ) -> Vec<u32> {
        if self.grouped_order {
            insertion_order(vectors, seed)
        } else {
            permutation(vectors.len(), seed)
        }
    }

    /// The alpha of each pass.
    pub(crate) fn passes(&self) -> Vec<f32> {
        match self.builder {
            Builder::Vamana if self.one_pass => vec![self.alpha],
            Builder::Vamana if self.alpha > 1.0 => vec![1.0, self.alpha],
            Builder::Vamana => vec![1.0, 1.0],
            Builder::HnswHeuristic => vec![1.0],
        }
    }

    /// The degree that a list overflowing with reverse edges is re-pruned
    /// to during the insertions: the `reprune_fill` share of `R` when lists
    /// are saturated, else `R`.
    fn reprune_degree(&self, saturate: bool) -> usize {
        if !saturate {
            return self.max_degree;
        }
        let share = f64::from(self.reprune_fill.clamp(0.0, 1.0));
        ((self.max_degree as f64 * share).ceil() as usize).max(1)
    }

    /// List capacity during the build.
    fn capacity(&self) -> usize {
        let c = (self.max_degree as f64 * f64::from(self.slack.max(1.0))).ceil() as usize;
        c.clamp(self.max_degree, MAX_DEGREE_LIMIT)
    }

    fn validate(&self) -> Result<()> {
        if self.max_degree == 0 || self.max_degree > MAX_DEGREE_LIMIT {
            return Err(EngineError::InvalidArgument(format!(
                "max degree must be in 1..={MAX_DEGREE_LIMIT}, got {}",
                self.max_degree
            )));
        }
        if self.list_size == 0 {
            return Err(EngineError::InvalidArgument(
                "list size must be at least 1".into(),
            ));
        }
        if !self.alpha.is_finite() || self.alpha < 1.0 || !self.slack.is_finite() {
            return Err(EngineError::InvalidArgument(format!(
                "alpha must be finite and >= 1 (got {}), slack finite (got {})",
                self.alpha, self.slack
            )));
        }
        Ok(())
    }
}

/// Bytes of RAM per node that [`build_graph_from_rows`] holds at its
/// peak, besides the vectors: the build-time adjacency (`capacity` slots
/// of 4 bytes), the finished graph's 2-byte degree, made while the slots
/// are still held, the insertion order and the renaming (12 bytes), and
/// one visited bit per thread, rounded up to a byte.
pub fn build_bytes_per_node(params: &BuildParams, threads: usize) -> usize {
    params.capacity() * 4 + 2 + 12 + threads.max(1).div_ceil(8)
}

/// Sample size for [`medoid`]: the estimate costs `s^2` distances.
const MEDOID_SAMPLE: usize = 1024;

/// An approximate medoid: of a seeded sample of nodes, the one with the
/// smallest total distance to the rest of the sample. It needs only the
/// distance function, so it works for every element type and metric.
pub fn medoid<T: Element, V: VectorSet<T> + ?Sized>(vectors: &V, metric: Metric, seed: u64) -> u32 {
    let n = vectors.len();
    if n == 0 {
        return 0;
    }
    let sample: Vec<u32> = if n <= MEDOID_SAMPLE {
        (0..n as u32).collect()
    } else {
        let mut rng = SplitMix64::new(seed ^ 0x003E_D01D);
        let mut s: Vec<u32> = (0..MEDOID_SAMPLE).map(|_| rng.below(n) as u32).collect();
        s.sort_unstable();
        s.dedup();
        s
    };
    let k = Kernels::<T>::best();
    let totals: Vec<f64> = sample
        .par_iter()
        .map(|&a| {
            let va = vectors.get(a as usize);
            sample
                .iter()
                .map(|&b| f64::from(k.distance(metric, va, vectors.get(b as usize))))
                .sum()
        })
        .collect();
    let mut best = 0;
    for (i, t) in totals.iter().enumerate() {
        if t.total_cmp(&totals[best]).is_lt() {
            best = i;
        }
    }
    sample[best]
}

/// The adjacency under construction: `cap` slots per node, a list ending
/// at its first `EMPTY_SLOT` (or at `cap`). The length is not kept apart:
/// a separate degree array cost every expansion a second cache miss, on
/// the degree and then on the list, and at 1M nodes the graph phase is
/// bound by those misses (benches/RESULTS.md, session 16).
struct SharedGraph {
    n: usize,
    cap: usize,
    slots: Vec<AtomicU32>,
    locks: Vec<Mutex<()>>,
}

/// Lock stripes: enough that two threads rarely collide, few enough to be
/// free next to the adjacency.
const LOCK_STRIPES: usize = 1 << 12;

impl SharedGraph {
    fn new(n: usize, cap: usize) -> Self {
        let mut slots = Vec::with_capacity(n * cap);
        advise_huge_pages(slots.spare_capacity_mut());
        slots.extend((0..n * cap).map(|_| AtomicU32::new(EMPTY_SLOT)));
        SharedGraph {
            n,
            cap,
            slots,
            locks: (0..LOCK_STRIPES.min(n.max(1)))
                .map(|_| Mutex::new(()))
                .collect(),
        }
    }

    fn lock(&self, id: u32) -> std::sync::MutexGuard<'_, ()> {
        // A poisoned stripe only means another insertion panicked; the
        // build is then failing anyway, and the data it guards is atomic.
        match self.locks[id as usize % self.locks.len()].lock() {
            Ok(g) => g,
            Err(p) => p.into_inner(),
        }
    }

    /// Overwrites the list of `id`; the caller holds its lock. A reader
    /// racing the rewrite may see old and new entries mixed, and past the
    /// new end old entries up to the old end: all valid ids, which at worst
    /// costs that search a stale neighbour.
    fn store(&self, id: u32, list: &[u32]) {
        let base = id as usize * self.cap;
        for (k, &v) in list.iter().enumerate() {
            self.slots[base + k].store(v, Ordering::Relaxed);
        }
        if list.len() < self.cap {
            self.slots[base + list.len()].store(EMPTY_SLOT, Ordering::Release);
        }
    }

    /// Appends `v` to the list of `id`, which holds `len < cap` entries;
    /// the caller holds its lock. The terminator moves first, so that no
    /// reader runs on into stale slots.
    fn push(&self, id: u32, len: usize, v: u32) {
        let base = id as usize * self.cap;
        if len + 1 < self.cap {
            self.slots[base + len + 1].store(EMPTY_SLOT, Ordering::Release);
        }
        self.slots[base + len].store(v, Ordering::Release);
    }

    /// The length of the list of `id`.
    fn degree(&self, id: usize) -> usize {
        let list = &self.slots[id * self.cap..(id + 1) * self.cap];
        list.iter()
            .position(|s| s.load(Ordering::Relaxed) == EMPTY_SLOT)
            .unwrap_or(self.cap)
    }

    /// Moves the lists into a compact [`Graph`] of degree `r`, reusing the
    /// allocation (an in-place collect) so that the peak is not doubled.
    fn into_graph(self, r: usize, entry: u32) -> Result<Graph> {
        let (n, cap) = (self.n, self.cap);
        let degrees: Vec<u16> = (0..n).map(|i| self.degree(i).min(r) as u16).collect();
        let mut slots: Vec<u32> = self.slots.into_iter().map(AtomicU32::into_inner).collect();
        for (i, &d) in degrees.iter().enumerate() {
            let (from, to, d) = (i * cap, i * r, usize::from(d));
            // `to <= from`, so copying forward never overwrites unread lists.
            slots.copy_within(from..from + d, to);
            slots[to + d..to + r].fill(EMPTY_SLOT);
        }
        slots.truncate(n * r);
        slots.shrink_to_fit();
        Graph::from_parts(r, entry, degrees, slots)
    }
}

impl Adjacency for SharedGraph {
    #[inline]
    fn neighbours_into(&self, id: u32, out: &mut Vec<u32>) {
        out.clear();
        let base = id as usize * self.cap;
        for slot in &self.slots[base..base + self.cap] {
            let v = slot.load(Ordering::Acquire);
            if v == EMPTY_SLOT {
                break;
            }
            out.push(v);
        }
    }

    #[inline]
    fn prefetch_list(&self, id: u32) {
        let base = id as usize * self.cap;
        prefetch(&self.slots[base..base + self.cap]);
    }
}

/// Per-thread state of the builder.
#[derive(Default)]
struct BuildScratch {
    search: SearchScratch,
    pool: Vec<Neighbour>,
    prune: PruneScratch,
    distances: Vec<f32>,
    pruned: Vec<u32>,
    chosen: Vec<u32>,
    list: Vec<Candidate>,
    buf: Vec<u32>,
    work: InsertWork,
}

/// What the insertions of one thread cost, for the debug log: where the
/// graph phase's distances go decides what is worth making cheaper.
#[derive(Default, Clone, Copy, Debug)]
struct InsertWork {
    /// Distances computed by the insertion searches.
    search: u64,
    /// Distances computed pruning each inserted node's own list.
    own_prune: u64,
    /// Lists re-pruned because a reverse edge overflowed them.
    reprunes: u64,
    /// Distances computed by those re-prunes.
    reprune: u64,
}

impl InsertWork {
    fn add(&mut self, o: &InsertWork) {
        self.search += o.search;
        self.own_prune += o.own_prune;
        self.reprunes += o.reprunes;
        self.reprune += o.reprune;
    }
}

struct Inserter<'a, T: Element, V: VectorSet<T> + ?Sized> {
    vectors: &'a V,
    metric: Metric,
    kernels: &'static Kernels<T>,
    graph: SharedGraph,
    params: BuildParams,
    entry: u32,
}

impl<T: Element, V: VectorSet<T> + ?Sized> Inserter<'_, T, V> {
    /// Searches for `p`'s neighbours, prunes them into its list and adds
    /// the reverse edges.
    fn insert(&self, p: u32, alpha: f32, saturate: bool, s: &mut BuildScratch) {
        let n = self.graph.n;
        let query = self.vectors.get(p as usize);
        let mut dist = FromQuery {
            inserter: self,
            query,
        };
        s.search.reset(n);
        s.pool.clear();
        let collect_expanded = self.params.builder == Builder::Vamana;
        let pool = &mut s.pool;
        s.work.search += search_core(
            &self.graph,
            &[self.entry],
            self.params.list_size,
            &mut dist,
            &mut s.search,
            &mut s.list,
            &mut s.buf,
            &mut s.distances,
            &mut |nb: Neighbour| {
                if collect_expanded {
                    pool.push(nb);
                }
            },
            &|v| prefetch(self.vectors.get(v as usize)),
        ) as u64;
        pool.extend(
            s.list
                .iter()
                .filter(|c| !c.expanded || !collect_expanded)
                .map(|c| c.n),
        );
        // A node keeps the good edges it already has (later passes).
        self.graph.neighbours_into(p, &mut s.buf);
        s.search.retain_first_visits(&mut s.buf);
        self.distances_from(query, &s.buf, &mut s.distances);
        pool.extend(
            s.buf
                .iter()
                .zip(&s.distances)
                .map(|(&id, &distance)| Neighbour { id, distance }),
        );
        pool.retain(|c| c.id != p);
        pool.sort_unstable_by(Neighbour::key_cmp);
        pool.dedup_by_key(|c| c.id);
        s.work.own_prune += robust_prune(
            self.metric,
            pool,
            alpha,
            self.params.max_degree,
            saturate,
            &mut &*self,
            &mut s.prune,
            &mut s.pruned,
        ) as u64;
        {
            let _guard = self.graph.lock(p);
            self.graph.store(p, &s.pruned);
        }
        // Reverse-edge pruning reuses `pruned`; keep the chosen list apart.
        let mut chosen = std::mem::take(&mut s.chosen);
        chosen.clear();
        chosen.extend_from_slice(&s.pruned);
        // Each reverse edge reads a list under a lock, whose atomic
        // operation keeps the next list's miss from overlapping this one.
        for &j in &chosen {
            self.graph.prefetch_list(j);
        }
        for &j in &chosen {
            self.add_reverse(j, p, alpha, saturate, s);
        }
        s.chosen = chosen;
    }

    /// Adds the edge `j -> p`, pruning `j`'s list if it overflows.
    fn add_reverse(&self, j: u32, p: u32, alpha: f32, saturate: bool, s: &mut BuildScratch) {
        let _guard = self.graph.lock(j);
        self.graph.neighbours_into(j, &mut s.buf);
        if s.buf.contains(&p) {
            return;
        }
        if s.buf.len() < self.graph.cap {
            self.graph.push(j, s.buf.len(), p);
            return;
        }
        s.buf.push(p);
        let degree = self.params.reprune_degree(saturate);
        s.work.reprunes += 1;
        s.work.reprune += self.prune_node(j, alpha, degree, saturate, s);
    }

    /// Re-prunes `j` over the ids in `s.buf` to at most `degree` edges;
    /// the caller holds `j`'s lock. Returns the distances computed.
    fn prune_node(
        &self,
        j: u32,
        alpha: f32,
        degree: usize,
        saturate: bool,
        s: &mut BuildScratch,
    ) -> u64 {
        // The rows of a list's nodes are rarely in the cache: start all
        // their misses before the first distance.
        for &v in &s.buf {
            prefetch(self.vectors.get(v as usize));
        }
        s.buf.retain(|&v| v != j);
        self.distances_from(self.vectors.get(j as usize), &s.buf, &mut s.distances);
        s.pool.clear();
        s.pool.extend(
            s.buf
                .iter()
                .zip(&s.distances)
                .map(|(&id, &distance)| Neighbour { id, distance }),
        );
        s.pool.sort_unstable_by(Neighbour::key_cmp);
        s.pool.dedup_by_key(|c| c.id);
        let computed = s.buf.len()
            + robust_prune(
                self.metric,
                &s.pool,
                alpha,
                degree,
                saturate,
                &mut &*self,
                &mut s.prune,
                &mut s.pruned,
            );
        self.graph.store(j, &s.pruned);
        computed as u64
    }

    /// Sets `out` to the distances from `query` to the rows of `ids`, four
    /// at a time where the kernels can share the query's loads.
    fn distances_from(&self, query: &[T], ids: &[u32], out: &mut Vec<f32>) {
        out.clear();
        let row = |v: u32| self.vectors.get(v as usize);
        let (fours, rest) = ids.as_chunks::<4>();
        for four in fours {
            let d = self.kernels.distances4(self.metric, query, four.map(&row));
            out.extend_from_slice(&d);
        }
        out.extend(
            rest.iter()
                .map(|&v| self.kernels.distance(self.metric, query, row(v))),
        );
    }
}

/// Scores an insertion search's nodes against the inserted node's row.
struct FromQuery<'a, T: Element, V: VectorSet<T> + ?Sized> {
    inserter: &'a Inserter<'a, T, V>,
    query: &'a [T],
}

impl<T: Element, V: VectorSet<T> + ?Sized> Scorer for FromQuery<'_, T, V> {
    fn score(&mut self, ids: &[u32], out: &mut Vec<f32>) {
        self.inserter.distances_from(self.query, ids, out);
    }
}

impl<T: Element, V: VectorSet<T> + ?Sized> Between for &Inserter<'_, T, V> {
    fn distances(&mut self, s: u32, ids: &[u32], out: &mut Vec<f32>) {
        self.distances_from(self.vectors.get(s as usize), ids, out);
    }
}

/// Nodes per parallel work item: large enough to amortise taking a
/// scratch from the pool, small enough to balance two threads.
const CHUNK: usize = 64;

/// Builds the base-layer graph of `vectors` under `metric` on the current
/// rayon pool. `progress(done, total)` is called from worker threads as
/// insertions complete (`total` counts every pass), often enough for a
/// progress bar and never more than once per 1024 nodes.
pub fn build_graph<T: Element, V: VectorSet<T> + ?Sized>(
    vectors: &V,
    metric: Metric,
    params: &BuildParams,
    progress: &(dyn Fn(u64, u64) + Sync),
) -> Result<Graph> {
    check_size(params, vectors.len())?;
    if vectors.is_empty() {
        return Graph::new(0, params.max_degree);
    }
    let started = std::time::Instant::now();
    let entry = medoid(vectors, metric, params.seed);
    // Made before the adjacency exists: its scratch then adds nothing to
    // the peak.
    let order = params.insertion_order(vectors, params.seed);
    tracing::debug!(
        seconds = started.elapsed().as_secs_f64(),
        "medoid and insertion order made"
    );
    let graph = insert_all(vectors, metric, params, entry, order, started, progress)?;
    Ok(repaired(graph, metric, started))
}

/// [`build_graph`] over rows that it may move: `rows` holds `dim`
/// components per vector, row `i` being node `i` of the graph.
///
/// Before inserting, it stores the rows region by region, in the layout of
/// the insertion plan (`insertion_order::Plan`), and builds over those
/// names; the graph is renamed back at the end. An insertion's search then
/// finds the rows, lists and visited bits of its region side by side
/// rather than spread over the whole set. The graph is the one
/// [`build_graph`] would make up to ties between equal distances, which
/// the names break (and, beyond the first pass, up to each pass's order).
/// Costs 8 bytes per node for the renaming while the graph is built.
pub fn build_graph_from_rows<T: Element>(
    mut rows: Vec<T>,
    dim: usize,
    metric: Metric,
    params: &BuildParams,
    progress: &(dyn Fn(u64, u64) + Sync),
) -> Result<Graph> {
    let shape_error = || EngineError::InvalidArgument(format!("rows of dimension {dim}"));
    let set = FlatVectors::new(&rows, dim).ok_or_else(shape_error)?;
    check_size(params, set.len())?;
    if !params.grouped_order || set.is_empty() {
        return build_graph(&set, metric, params, progress);
    }
    let started = std::time::Instant::now();
    let entry = medoid(&set, metric, params.seed);
    let Plan { order, layout } = plan(&set, params.seed);
    let Some(layout) = layout else {
        return build_graph(&set, metric, params, progress);
    };
    let renaming = Permutation::from_new_to_old(layout)
        .ok_or_else(|| EngineError::InvalidArgument("layout is not a permutation".into()))?;
    renaming.move_rows(&mut rows, dim);
    let order: Vec<u32> = order
        .iter()
        .map(|&p| renaming.old_to_new[p as usize])
        .collect();
    let entry = renaming.old_to_new[entry as usize];
    tracing::debug!(
        seconds = started.elapsed().as_secs_f64(),
        "medoid, insertion order and layout made"
    );
    let set = FlatVectors::new(&rows, dim).ok_or_else(shape_error)?;
    let mut graph = insert_all(&set, metric, params, entry, order, started, progress)?;
    drop(rows);
    graph.relabel_in_place(&renaming.inverse());
    Ok(repaired(graph, metric, started))
}

/// Checks the parameters, and that `n` nodes can be named by `u32`s
/// (`u32::MAX` marks an empty slot).
fn check_size(params: &BuildParams, n: usize) -> Result<()> {
    params.validate()?;
    if u32::try_from(n).map_or(true, |n| n == u32::MAX) {
        return Err(EngineError::InvalidArgument(format!(
            "too many vectors for a graph: {n}"
        )));
    }
    Ok(())
}

/// Inserts every node of `vectors` (at least one), the first pass in
/// `first_order`, and prunes every list to `R`: the graph before
/// [`repaired`].
fn insert_all<T: Element, V: VectorSet<T> + ?Sized>(
    vectors: &V,
    metric: Metric,
    params: &BuildParams,
    entry: u32,
    first_order: Vec<u32>,
    started: std::time::Instant,
    progress: &(dyn Fn(u64, u64) + Sync),
) -> Result<Graph> {
    let n = vectors.len();
    let mut first_order = Some(first_order);
    let ins = Inserter {
        vectors,
        metric,
        kernels: Kernels::<T>::best(),
        graph: SharedGraph::new(n, params.capacity()),
        params: *params,
        entry,
    };
    let passes = params.passes();
    let total = (n * passes.len()) as u64;
    let done = AtomicU64::new(0);
    let tick = |k: u64| {
        let before = done.fetch_add(k, Ordering::Relaxed);
        if (before + k) >> 10 != before >> 10 || before + k == total {
            progress(before + k, total);
        }
    };
    let sequential = rayon::current_num_threads() <= 1;
    let scratches: Mutex<Vec<BuildScratch>> = Mutex::new(Vec::new());
    let take = || {
        scratches
            .lock()
            .ok()
            .and_then(|mut v| v.pop())
            .unwrap_or_else(|| BuildScratch {
                search: SearchScratch::new(n),
                ..Default::default()
            })
    };
    let give = |s: BuildScratch| {
        if let Ok(mut v) = scratches.lock() {
            v.push(s);
        }
    };
    for (pass, &alpha) in passes.iter().enumerate() {
        let seed = params.seed.wrapping_add(pass as u64);
        let order = match first_order.take() {
            Some(order) => order,
            None => params.insertion_order(vectors, seed),
        };
        let saturate = params.saturate && pass + 1 == passes.len();
        if sequential {
            let mut s = take();
            for chunk in order.chunks(CHUNK) {
                for &p in chunk {
                    ins.insert(p, alpha, saturate, &mut s);
                }
                tick(chunk.len() as u64);
            }
            give(s);
        } else {
            order.par_chunks(CHUNK).for_each(|chunk| {
                let mut s = take();
                for &p in chunk {
                    ins.insert(p, alpha, saturate, &mut s);
                }
                give(s);
                tick(chunk.len() as u64);
            });
        }
    }
    let mut work = InsertWork::default();
    if let Ok(v) = scratches.lock() {
        v.iter().for_each(|s| work.add(&s.work));
    }
    let per_node = |x: u64| x as f64 / total.max(1) as f64;
    tracing::debug!(
        nodes = n,
        seconds = started.elapsed().as_secs_f64(),
        search_distances = per_node(work.search),
        own_prune_distances = per_node(work.own_prune),
        reprunes = per_node(work.reprunes),
        reprune_distances = per_node(work.reprune),
        "graph insertions done (distances and re-prunes per insertion)"
    );
    // Lists may still hold up to `slack * R` entries: prune them to `R`.
    let final_alpha = passes.last().copied().unwrap_or(1.0);
    let r = params.max_degree;
    let over: Vec<u32> = (0..n as u32)
        .filter(|&i| ins.graph.degree(i as usize) > r)
        .collect();
    over.par_chunks(CHUNK).for_each(|chunk| {
        let mut s = take();
        for &j in chunk {
            let _guard = ins.graph.lock(j);
            ins.graph.neighbours_into(j, &mut s.buf);
            ins.prune_node(j, final_alpha, r, params.saturate, &mut s);
        }
        give(s);
    });
    drop(scratches);
    tracing::debug!(
        lists = over.len(),
        seconds = started.elapsed().as_secs_f64(),
        "final prune done"
    );
    ins.graph.into_graph(r, entry)
}

/// `graph` with every node reachable from the entry, under true metrics.
fn repaired(mut graph: Graph, metric: Metric, started: std::time::Instant) -> Graph {
    // Under inner product most nodes are legitimately unreachable: greedy
    // routing climbs towards large norms, and points inside the hull are
    // rarely anyone's best neighbour. Forcing edges to them costs the hubs
    // edges (recall@10 fell from 0.99 to 0.94 on the f32 test set), so only
    // true metrics are repaired.
    if metric != Metric::InnerProduct {
        connect_unreachable(&mut graph);
    }
    tracing::debug!(
        seconds = started.elapsed().as_secs_f64(),
        "graph compacted and repaired"
    );
    graph
}

/// Rounds of [`connect_unreachable`]; one almost always suffices.
const REPAIR_ROUNDS: usize = 4;

/// Makes every node reachable from the entry. Pruning can leave a few
/// nodes (about 1 in 2000) without in-edges, and a search can never return
/// them. Each unreached node gets an edge from its nearest reached
/// out-neighbour (lists are mostly in distance order), or from the entry;
/// a full list gives up its last edge to a node that has other in-edges.
pub fn connect_unreachable(graph: &mut Graph) -> usize {
    let n = graph.len();
    if n == 0 {
        return 0;
    }
    let mut added = 0;
    let mut in_degree = vec![0u32; n];
    for u in 0..n as u32 {
        for &v in graph.neighbours(u) {
            in_degree[v as usize] += 1;
        }
    }
    let mut list = Vec::with_capacity(graph.max_degree());
    for _ in 0..REPAIR_ROUNDS {
        let mut reached = vec![false; n];
        let mut stack = vec![graph.entry()];
        reached[graph.entry() as usize] = true;
        let mark = |stack: &mut Vec<u32>, reached: &mut [bool], graph: &Graph| {
            while let Some(u) = stack.pop() {
                for &v in graph.neighbours(u) {
                    if !reached[v as usize] {
                        reached[v as usize] = true;
                        stack.push(v);
                    }
                }
            }
        };
        mark(&mut stack, &mut reached, graph);
        let mut missing = false;
        for v in 0..n as u32 {
            if reached[v as usize] {
                continue;
            }
            missing = true;
            let parent = graph
                .neighbours(v)
                .iter()
                .copied()
                .find(|&u| reached[u as usize])
                .unwrap_or(graph.entry());
            list.clear();
            list.extend_from_slice(graph.neighbours(parent));
            if list.len() >= graph.max_degree() {
                let Some(pos) = list.iter().rposition(|&w| in_degree[w as usize] >= 2) else {
                    continue;
                };
                in_degree[list[pos] as usize] -= 1;
                list.remove(pos);
            }
            list.push(v);
            in_degree[v as usize] += 1;
            graph.set_neighbours(parent, &list);
            added += 1;
            reached[v as usize] = true;
            stack.push(v);
            mark(&mut stack, &mut reached, graph);
        }
        if !missing {
            break;
        }
    }
    added
}
