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
//! another group; its cell is still that of a pivot near it. Within a cell
//! and across cells the order stays the seeded random one, so with one
//! thread the build is still a pure function of the inputs and the seed.
//!
//! Measured (benches/RESULTS.md, session 16): at 1M × 128 the graph phase
//! took 7–10% less time than in random order in four builds, recall per
//! read within the spread of two builds; at 10M, with the lists' end mark
//! of the builder, 8% more nodes were inserted in the first six minutes.
//! Most list loads still miss: the gain is modest, not a cure.
//!
//! Cost: about `2 sqrt(pivots)` distances per node (64 at 1,024 pivots;
//! comparing every node with every pivot took 26 s of a 10M build), and 10
//! bytes per node while the order is made (the random order, each node's
//! cell, the regrouped rest), before the adjacency is allocated.

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

/// The insertion order of `vectors` for `seed`: a permutation of
/// `0..vectors.len()`.
pub fn insertion_order<T: Element, V: VectorSet<T> + ?Sized>(vectors: &V, seed: u64) -> Vec<u32> {
    let n = vectors.len();
    let mut order = permutation(n, seed);
    let pivots = (n / MIN_CELL).min(MAX_PIVOTS);
    let prefix = ((n as f64 * RANDOM_PREFIX) as usize).max(pivots);
    if pivots < 2 || prefix >= n {
        return order;
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
    let cells: Vec<u16> = order[prefix..]
        .par_iter()
        .map(|&p| {
            let v = row(p);
            let leader = nearest(v, &mut leader_ids.iter().copied());
            let group = &groups[leader];
            let k = nearest(v, &mut group.iter().map(|&c| pivot_ids[usize::from(c)]));
            // A leader joins its own group unless an identical earlier
            // leader took it, and then no node is nearer to it first.
            group.get(k).copied().unwrap_or(leader as u16)
        })
        .collect();
    // A counting sort by cell: stable, so each cell keeps the random order.
    let mut start = vec![0usize; pivots + 1];
    for &c in &cells {
        start[usize::from(c) + 1] += 1;
    }
    for c in 0..pivots {
        start[c + 1] += start[c];
    }
    let mut grouped = vec![0u32; n - prefix];
    for (&c, &p) in cells.iter().zip(&order[prefix..]) {
        let at = &mut start[usize::from(c)];
        grouped[*at] = p;
        *at += 1;
    }
    order[prefix..].copy_from_slice(&grouped);
    order
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
        // The cells follow one another, each in the random order.
        let mut expected: Vec<(usize, u32)> =
            random[prefix..].iter().map(|&p| (cell(p), p)).collect();
        expected.sort_by_key(|&(c, _)| c);
        let expected: Vec<u32> = expected.into_iter().map(|(_, p)| p).collect();
        assert_eq!(order[prefix..], expected[..]);
        assert_ne!(order, random);
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
