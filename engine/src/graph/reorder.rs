//! Block-locality reordering: a permutation of node ids that puts graph
//! neighbours on the same disk page, so that one 4 KiB read brings several
//! nodes a search is likely to visit next (Starling, Wang et al. 2024,
//! "block shuffling").
//!
//! Page `p` holds new ids `p * nodes_per_page .. (p + 1) * nodes_per_page`.
//! Pages are filled greedily: a page is seeded with the next unplaced node
//! in breadth-first order from the entry, then repeatedly takes the
//! unplaced node with the most edges from the page's members (ties to the
//! one seen first, which is the nearer, because lists are sorted by
//! distance). If no member has an unplaced neighbour, the next seed fills
//! the slot, so every page but the last is full.
//!
//! Invariant of [`Permutation`]: `new_to_old` and `old_to_new` are inverse
//! bijections of `0..n`.
//!
//! Cost: `O(n * nodes_per_page * R)` time; `12n` bytes beyond the graph
//! (both maps and a score per node) plus the BFS queue.

use std::collections::VecDeque;

use super::{EMPTY_SLOT, Graph};

/// A renaming of nodes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Permutation {
    /// `new_to_old[new] = old`: the order in which nodes are written.
    pub new_to_old: Vec<u32>,
    /// `old_to_new[old] = new`: how edges are renamed.
    pub old_to_new: Vec<u32>,
}

impl Permutation {
    /// The identity on `n` nodes.
    pub fn identity(n: usize) -> Self {
        let ids: Vec<u32> = (0..n as u32).collect();
        Permutation {
            new_to_old: ids.clone(),
            old_to_new: ids,
        }
    }

    /// Builds the inverse map from `new_to_old`; `None` if it is not a
    /// permutation of `0..len`.
    pub fn from_new_to_old(new_to_old: Vec<u32>) -> Option<Self> {
        let mut old_to_new = vec![EMPTY_SLOT; new_to_old.len()];
        for (new, &old) in new_to_old.iter().enumerate() {
            let slot = old_to_new.get_mut(old as usize)?;
            if *slot != EMPTY_SLOT {
                return None;
            }
            *slot = new as u32;
        }
        Some(Permutation {
            new_to_old,
            old_to_new,
        })
    }

    /// Number of nodes.
    pub fn len(&self) -> usize {
        self.new_to_old.len()
    }

    /// Whether it permutes nothing.
    pub fn is_empty(&self) -> bool {
        self.new_to_old.is_empty()
    }

    /// The renaming back: new names to old.
    pub fn inverse(self) -> Self {
        Permutation {
            new_to_old: self.old_to_new,
            old_to_new: self.new_to_old,
        }
    }

    /// Moves the rows of `rows` (`width` items each, one row per node) so
    /// that row `new` holds what row `new_to_old[new]` held. In place,
    /// along the permutation's cycles, since the rows may be most of a
    /// build's memory: `n / 8` bytes mark the moved rows. Panics if `rows`
    /// does not hold one row per node.
    pub fn move_rows<T: Copy>(&self, rows: &mut [T], width: usize) {
        assert_eq!(rows.len(), self.len() * width, "rows of the wrong shape");
        let row = |i: usize| i * width..(i + 1) * width;
        let mut moved = vec![0u64; self.len().div_ceil(64)];
        let mut held = Vec::with_capacity(width);
        for start in 0..self.len() {
            if moved[start / 64] & (1 << (start % 64)) != 0 {
                continue;
            }
            // Follow the cycle from `start`, holding its row aside.
            held.clear();
            held.extend_from_slice(&rows[row(start)]);
            let mut slot = start;
            loop {
                moved[slot / 64] |= 1 << (slot % 64);
                let from = self.new_to_old[slot] as usize;
                if from == start {
                    rows[row(slot)].copy_from_slice(&held);
                    break;
                }
                rows.copy_within(row(from), slot * width);
                slot = from;
            }
        }
    }
}

/// The permutation that packs neighbours into pages of `nodes_per_page`.
pub fn block_order(graph: &Graph, nodes_per_page: usize) -> Permutation {
    let n = graph.len();
    let npp = nodes_per_page.max(1);
    let mut placed = vec![false; n];
    let mut new_to_old: Vec<u32> = Vec::with_capacity(n);
    // Per-node edge counts from the current page; `touched` lists the
    // non-zero ones in first-seen order.
    let mut score = vec![0u32; n];
    let mut touched: Vec<u32> = Vec::new();
    let mut queue: VecDeque<u32> = VecDeque::new();
    let mut queued = vec![false; n];
    let mut scan = 0usize;
    if n > 0 {
        queue.push_back(graph.entry());
        queued[graph.entry() as usize] = true;
    }
    let mut next_seed =
        |placed: &[bool], queue: &mut VecDeque<u32>, queued: &mut [bool]| -> Option<u32> {
            while let Some(v) = queue.pop_front() {
                if !placed[v as usize] {
                    return Some(v);
                }
            }
            // The rest of the graph is unreachable from what was placed.
            while scan < n {
                let v = scan as u32;
                scan += 1;
                if !placed[v as usize] {
                    queued[v as usize] = true;
                    return Some(v);
                }
            }
            None
        };
    while new_to_old.len() < n {
        let page_start = new_to_old.len();
        let Some(seed) = next_seed(&placed, &mut queue, &mut queued) else {
            break;
        };
        let mut member = seed;
        loop {
            placed[member as usize] = true;
            new_to_old.push(member);
            for &v in graph.neighbours(member) {
                if !queued[v as usize] {
                    queued[v as usize] = true;
                    queue.push_back(v);
                }
                if !placed[v as usize] {
                    if score[v as usize] == 0 {
                        touched.push(v);
                    }
                    score[v as usize] += 1;
                }
            }
            if new_to_old.len() - page_start >= npp || new_to_old.len() == n {
                break;
            }
            let mut best: Option<u32> = None;
            for &v in &touched {
                if placed[v as usize] {
                    continue;
                }
                if best.is_none_or(|b| score[v as usize] > score[b as usize]) {
                    best = Some(v);
                }
            }
            member = match best {
                Some(b) => b,
                None => match next_seed(&placed, &mut queue, &mut queued) {
                    Some(s) => s,
                    None => break,
                },
            };
        }
        for &v in &touched {
            score[v as usize] = 0;
        }
        touched.clear();
    }
    Permutation::from_new_to_old(new_to_old).unwrap_or_else(|| Permutation::identity(n))
}

/// The fraction of all edges whose two ends share a page when node `i` is
/// on page `i / nodes_per_page`.
pub fn same_page_fraction(graph: &Graph, nodes_per_page: usize) -> f64 {
    let npp = nodes_per_page.max(1) as u32;
    let mut same = 0u64;
    let mut total = 0u64;
    for u in 0..graph.len() as u32 {
        let list = graph.neighbours(u);
        total += list.len() as u64;
        same += list.iter().filter(|&&v| v / npp == u / npp).count() as u64;
    }
    if total == 0 {
        0.0
    } else {
        same as f64 / total as f64
    }
}

impl Graph {
    /// The same graph with node `old` renamed `perm.old_to_new[old]`; lists
    /// keep their order. Panics if `perm` has a different length.
    pub fn relabel(&self, perm: &Permutation) -> Graph {
        let mut out = self.clone();
        out.relabel_in_place(perm);
        out
    }

    /// [`Graph::relabel`] without a second copy of the adjacency: the build
    /// reorders a graph that may be most of its memory budget (see
    /// [`Permutation::move_rows`]).
    pub fn relabel_in_place(&mut self, perm: &Permutation) {
        assert_eq!(perm.len(), self.len(), "permutation of the wrong length");
        let r = self.max_degree;
        for (row, &d) in self
            .neighbours
            .chunks_exact_mut(r.max(1))
            .zip(&self.degrees)
        {
            for v in &mut row[..usize::from(d)] {
                *v = perm.old_to_new[*v as usize];
            }
        }
        self.entry = perm
            .old_to_new
            .get(self.entry as usize)
            .copied()
            .unwrap_or(0);
        perm.move_rows(&mut self.neighbours, r.max(1));
        perm.move_rows(&mut self.degrees, 1);
    }
}
