//! The order in which the graph builders insert nodes: a random prefix,
//! then the rest grouped by region.
//!
//! Each insertion searches the graph built so far, and once the vectors
//! and lists outgrow the CPU cache that search waits on memory: at 1M × 128
//! most of the graph phase's samples fell on loads of lists and rows.
//! Insertions of nodes that lie close together visit mostly the same
//! nodes, so inserting a region's nodes one after another lets each
//! insertion find the rows and lists that the previous one loaded still
//! in the cache. A random prefix comes first so that the graph already
//! spans the whole set, with the long edges that routing needs, before the
//! regions are filled in; without it, early regions would link only among
//! themselves until later regions added reverse edges.
//!
//! Regions are the cells of randomly drawn pivots (the prefix's first
//! nodes) under squared L2, whatever the build's metric: the point is
//! where rows lie, not which are neighbours. A node's pivot is found in two
//! levels: the nearest of `sqrt(pivots)` leaders (the first pivots), then
//! the nearest pivot of that leader's group, each pivot belonging to the
//! group of its nearest leader. A node may so miss a nearer pivot of
//! another group; its cell is still that of a pivot near it. Cells come
//! group by group, so that consecutive cells lie near one another too.
//! Within a cell the order stays the seeded random one, so with one thread
//! the build is still a pure function of the inputs and the seed.
//!
//! The plan also gives a layout: every node, the prefix's too, grouped by
//! cell in that order. A builder that owns the rows stores them so
//! (`build::build_graph_from_rows`): a region's rows, lists and visited
//! bits then lie side by side instead of spread over the whole set, so a
//! search near the inserted node touches fewer pages and DRAM rows, and
//! lines that the hardware prefetches with a miss are more often of use.
//!
//! Measured (benches/RESULTS.md, session 16): at 1M × 128 the graph phase
//! took 7–10% less time than in random order in four builds, recall per
//! read within the spread of two builds; at 10M, with the lists' end mark
//! of the builder, 8% more nodes were inserted in the first six minutes.
//! Most list loads still miss: the gain is modest, not a cure. With the
//! layout as well (session 20), a 10M build inserted 17% more nodes in its
//! first eight minutes than the code without it, both on one thread side
//! by side; at 1M, where a thread's visited bits fit in L2, the difference
//! stayed within the noise.
//!
//! Cost: about `2 sqrt(pivots)` distances per node (64 at 1,024 pivots;
//! comparing every node with every pivot took 26 s of a 10M build), and 14
//! bytes per node while the plan is made (the random order, each node's
//! cell, the layout, the regrouped rest), before the adjacency is
//! allocated.

use rayon::prelude::*;

use super::rng::permutation;
use crate::Metric;
use crate::distance::{Element, Kernels};
use crate::vectors::VectorSet;

/// Share of the nodes inserted in plain random order first.
const RANDOM_PREFIX: f64 = 0.1;

/// Most pivots. With one distance per node and pivot (before the two
/// levels), 2,048 pivots took 8.5 s of a 108 s graph phase at 1M and saved
/// nothing over 1,024 (3.7 s) or 256.
const MAX_PIVOTS: usize = 1024;

/// Mean nodes per cell below which grouping is not worth its distances.
const MIN_CELL: usize = 1024;

/// How a build visits and stores the nodes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Plan {
    /// The insertion order: a permutation of `0..n`.
    pub order: Vec<u32>,
    /// Every node, the random prefix included, grouped by cell in the
    /// order the insertions visit the cells; `None` for sets too small to
    /// have cells. A build that stores row `layout[k]` as row `k` finds a
    /// region's rows, lists and visited bits side by side.
    pub layout: Option<Vec<u32>>,
}

/// The insertion order of `vectors` for `seed`: a permutation of
/// `0..vectors.len()`.
pub fn insertion_order<T: Element, V: VectorSet<T> + ?Sized>(vectors: &V, seed: u64) -> Vec<u32> {
    plan(vectors, seed).order
}

/// The insertion order of `vectors` for `seed`, and the layout that goes
/// with it (see [`Plan`]).
pub fn plan<T: Element, V: VectorSet<T> + ?Sized>(vectors: &V, seed: u64) -> Plan {
    let n = vectors.len();
    let mut order = permutation(n, seed);
    let pivots = (n / MIN_CELL).min(MAX_PIVOTS);
    let prefix = ((n as f64 * RANDOM_PREFIX) as usize).max(pivots);
    if pivots < 2 || prefix >= n {
        return Plan {
            order,
            layout: None,
        };
    }
    let pivot_ids = &order[..pivots];
    let kernels = Kernels::<T>::best();
    let row = |id: u32| vectors.get(id as usize);
    // Two levels: the first `leaders` pivots lead groups, each pivot joins
    // the group of its nearest leader, and a node takes the nearest pivot
    // of its nearest leader's group: about 2·sqrt(pivots) distances per
    // node instead of `pivots` (64 instead of 1,024 at 10M).
    let leaders = (pivots as f64).sqrt().ceil() as usize;
    let nearest = |v: &[T], among: &mut dyn Iterator<Item = u32>| -> usize {
        let mut best = (f32::INFINITY, 0);
        for (k, q) in among.enumerate() {
            let d = kernels.distance(Metric::L2, v, row(q));
            if d < best.0 {
                best = (d, k);
            }
        }
        best.1
    };
    let leader_ids = &pivot_ids[..leaders];
    let mut groups: Vec<Vec<u16>> = vec![Vec::new(); leaders];
    for (c, &q) in pivot_ids.iter().enumerate() {
        groups[nearest(row(q), &mut leader_ids.iter().copied())].push(c as u16);
    }
    // Cells are visited group by group, so that consecutive cells lie
    // near one another too: `rank[c]` is cell `c`'s place in that order.
    let mut rank = vec![0u16; pivots];
    for (k, &c) in groups.iter().flatten().enumerate() {
        rank[usize::from(c)] = k as u16;
    }
    // Indexed like `order`: the place of each node's cell.
    let cells: Vec<u16> = order
        .par_iter()
        .map(|&p| {
            let v = row(p);
            let leader = nearest(v, &mut leader_ids.iter().copied());
            let group = &groups[leader];
            let k = nearest(v, &mut group.iter().map(|&c| pivot_ids[usize::from(c)]));
            // A leader joins its own group unless an identical earlier
            // leader took it, and then no node is nearer to it first.
            rank[usize::from(group.get(k).copied().unwrap_or(leader as u16))]
        })
        .collect();
    let layout = grouped(&order, &cells, pivots);
    let rest = grouped(&order[prefix..], &cells[prefix..], pivots);
    order[prefix..].copy_from_slice(&rest);
    Plan {
        order,
        layout: Some(layout),
    }
}

/// `ids` sorted by `cells` (each below `count`), a counting sort: stable,
/// so each cell keeps the random order.
fn grouped(ids: &[u32], cells: &[u16], count: usize) -> Vec<u32> {
    let mut start = vec![0usize; count + 1];
    for &c in cells {
        start[usize::from(c) + 1] += 1;
    }
    for c in 0..count {
        start[c + 1] += start[c];
    }
    let mut out = vec![0u32; ids.len()];
    for (&c, &p) in cells.iter().zip(ids) {
        let at = &mut start[usize::from(c)];
        out[*at] = p;
        *at += 1;
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::vectors::FlatVectors;

    fn rows(n: usize, dim: usize) -> Vec<f32> {
        // Points on a line, so that cells are intervals.
        (0..n)
            .flat_map(|i| (0..dim).map(move |k| (i * (k + 1)) as f32))
            .collect()
    }

    #[test]
    fn small_sets_keep_the_random_order() {
        let data = rows(1000, 4);
        let set = FlatVectors::new(&data, 4).unwrap();
        assert_eq!(insertion_order(&set, 7), permutation(1000, 7));
        assert_eq!(plan(&set, 7).layout, None);
    }

    #[test]
    fn the_order_is_a_random_prefix_then_the_cells_in_turn() {
        let (n, dim) = (20_000, 4);
        let data = rows(n, dim);
        let set = FlatVectors::new(&data, dim).unwrap();
        let order = insertion_order(&set, 11);
        let random = permutation(n, 11);
        let mut sorted = order.clone();
        sorted.sort_unstable();
        assert!(sorted.iter().enumerate().all(|(i, &v)| v as usize == i));
        let (pivots, prefix) = (n / MIN_CELL, n / 10);
        assert_eq!(order[..prefix], random[..prefix]);
        let k = Kernels::<f32>::best();
        let d = |p: u32, c: usize| {
            k.distance(Metric::L2, set.get(p as usize), set.get(random[c] as usize))
        };
        // The first of the nearest, as `min_by` keeps.
        let nearest = |p: u32, among: &mut dyn Iterator<Item = usize>| {
            among.min_by(|&a, &b| d(p, a).total_cmp(&d(p, b))).unwrap()
        };
        let leaders = (pivots as f64).sqrt().ceil() as usize;
        assert!(leaders > 1 && leaders < pivots);
        let leader = |p: u32| nearest(p, &mut (0..leaders));
        // The nearest pivot among those whose nearest leader is the node's.
        let cell = |p: u32| {
            let l = leader(p);
            nearest(p, &mut (0..pivots).filter(|&c| leader(random[c]) == l))
        };
        // Cells follow one another group by group (the groups in their
        // leaders' order, a group's cells in their pivots' order), each
        // cell's nodes in the random order.
        let by_cell = |ids: &[u32]| {
            let mut keyed: Vec<((usize, usize), u32)> = ids
                .iter()
                .map(|&p| {
                    let c = cell(p);
                    ((leader(random[c]), c), p)
                })
                .collect();
            keyed.sort_by_key(|&(key, _)| key);
            keyed.into_iter().map(|(_, p)| p).collect::<Vec<u32>>()
        };
        assert_eq!(order[prefix..], by_cell(&random[prefix..])[..]);
        assert_ne!(order, random);
        // The layout groups every node the same way, the prefix's too.
        assert_eq!(plan(&set, 11).layout, Some(by_cell(&random)));
    }

    #[test]
    fn the_same_seed_gives_the_same_order_on_any_pool() {
        let data = rows(8192, 4);
        let set = FlatVectors::new(&data, 4).unwrap();
        let one = rayon::ThreadPoolBuilder::new()
            .num_threads(1)
            .build()
            .unwrap();
        let a = one.install(|| insertion_order(&set, 3));
        assert_eq!(a, insertion_order(&set, 3));
        assert_ne!(a, insertion_order(&set, 4));
    }
}
