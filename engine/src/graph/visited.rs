//! The set of nodes a query has already scored, in the RAM layers and on
//! disk.
//!
//! A query scores a few thousand of the segment's nodes, so the set is a
//! small open-addressing table (linear probing, Fibonacci hashing),
//! emptied between queries, rather than a bit per node: at 1B nodes that
//! would be 125 MB per searching thread. Every neighbour of every expanded
//! node is offered to it, so it is the search's most frequent operation
//! after the code distance itself. (Builds, which search the whole graph
//! many times over, keep the bit per node: see `SearchScratch`.)
//!
//! Invariant: the table's length is a power of two at least twice the
//! number of ids it holds, so a probe always reaches an empty slot.

use super::search::Visited;

/// Marks an empty slot. The id `u32::MAX` itself is kept aside.
const EMPTY: u32 = u32::MAX;

/// Fewest slots once the table holds anything.
const MIN_SLOTS: usize = 1024;

/// A set of `u32` node ids, reused across queries without freeing.
#[derive(Debug, Default, Clone)]
pub(crate) struct VisitedIds {
    slots: Vec<u32>,
    /// `32 - log2(slots.len())`: the hash keeps the product's high bits.
    shift: u32,
    len: usize,
    /// Whether `u32::MAX`, which marks empty slots, is in the set.
    has_max: bool,
}

impl VisitedIds {
    /// Empties the set, keeping its table.
    pub(crate) fn clear(&mut self) {
        if self.len > 0 {
            self.slots.fill(EMPTY);
            self.len = 0;
        }
        self.has_max = false;
    }

    /// Adds `id`; true if it was not in the set.
    #[inline]
    pub(crate) fn insert(&mut self, id: u32) -> bool {
        if id == EMPTY {
            return !std::mem::replace(&mut self.has_max, true);
        }
        if (self.len + 1) * 2 > self.slots.len() {
            self.grow();
        }
        let inserted = place(&mut self.slots, self.shift, id);
        self.len += usize::from(inserted);
        inserted
    }

    /// Doubles the table (or makes the first one) and re-places every id.
    #[cold]
    fn grow(&mut self) {
        let slots = (self.slots.len() * 2).max(MIN_SLOTS);
        let shift = 32 - slots.trailing_zeros();
        let old = std::mem::replace(&mut self.slots, vec![EMPTY; slots]);
        self.shift = shift;
        for id in old.into_iter().filter(|&id| id != EMPTY) {
            place(&mut self.slots, shift, id);
        }
    }
}

impl Visited for VisitedIds {
    #[inline]
    fn first_visit(&mut self, id: u32) -> bool {
        self.insert(id)
    }
}

/// Puts `id` (not `EMPTY`) in the first free slot of its probe sequence;
/// false if it is already there. `slots` is a power of two long with an
/// empty slot somewhere.
#[inline]
#[expect(
    clippy::indexing_slicing,
    reason = "i is masked to slots.len() - 1, and slots is never empty here"
)]
fn place(slots: &mut [u32], shift: u32, id: u32) -> bool {
    let mask = slots.len() - 1;
    let mut i = (id.wrapping_mul(0x9E37_79B9) >> shift) as usize & mask;
    loop {
        let s = slots[i];
        if s == id {
            return false;
        }
        if s == EMPTY {
            slots[i] = id;
            return true;
        }
        i = (i + 1) & mask;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use std::collections::HashSet;

    proptest! {
        /// The set answers exactly as a `HashSet` does, through growth and
        /// clears, including for the id that marks empty slots.
        #[test]
        fn behaves_as_a_hash_set(
            rounds in prop::collection::vec(
                prop::collection::vec(
                    prop_oneof![0u32..3000, Just(u32::MAX), Just(u32::MAX - 1), any::<u32>()],
                    0..5000,
                ),
                1..4,
            )
        ) {
            let mut set = VisitedIds::default();
            for ids in rounds {
                set.clear();
                let mut reference = HashSet::new();
                for id in ids {
                    prop_assert_eq!(set.insert(id), reference.insert(id), "id {}", id);
                }
                prop_assert_eq!(set.len + usize::from(set.has_max), reference.len());
            }
        }
    }
}
