//! The graph builders' random draws come from the engine's one generator
//! ([`crate::rng`]); this module only names what the graph code uses.

pub(crate) use crate::rng::{SplitMix64, permutation, unit_for};
