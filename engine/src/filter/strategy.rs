//! Choosing how one segment answers a filtered query (SPEC.md §7.3), from
//! the estimated selectivity `s` of the filter on that segment:
//!
//! - `s = 0` by the statistics: no row can match; return nothing, read
//!   nothing;
//! - `s ≤ EXACT_SCAN_MAX_SELECTIVITY`: evaluate the filter on every row (in
//!   RAM), rank the matching rows by their in-RAM codes, read the pages of
//!   the best few and rerank them exactly; recall does not depend on the
//!   graph's connectivity among matching rows;
//! - otherwise: walk the graph, evaluating the filter as nodes are met.
//!   Non-matching nodes are still expanded (they are the paths to matching
//!   ones) but never returned, and the candidate window counts matching and
//!   unread nodes only, so the walk widens past non-matching regions.
//!
//! The threshold was measured, not guessed (benches/RESULTS.md, "Filtered
//! search"): see the constant's documentation.

use std::fmt;

/// Largest estimated selectivity answered by the exact scan. Measured on
/// the 200K × 128 synthetic set (k = 10, ef = 64, 2 cores): the walk
/// missed recall 0.95 at 1% for clustered attributes while the exact scan
/// held ≥ 0.99 up to 10%; the walk is faster at 10% and above.
pub const EXACT_SCAN_MAX_SELECTIVITY: f64 = 0.02;

/// Candidates the exact scan reranks with full vectors: `ef` times this
/// factor, at least `k`.
pub const EXACT_SCAN_RERANK_FACTOR: usize = 1;

/// How a segment answered (or will answer) a query.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum SearchStrategy {
    /// No filter: the plain graph search.
    #[default]
    Unfiltered,
    /// The statistics (or the scan) proved that no row matches.
    NoMatch,
    /// Every row tested, matching rows ranked by code, best reranked.
    ExactScan,
    /// Graph walk with the filter applied to every node met.
    FilteredWalk,
}

impl SearchStrategy {
    /// The name EXPLAIN and `omen bench` print.
    pub const fn name(self) -> &'static str {
        match self {
            SearchStrategy::Unfiltered => "unfiltered",
            SearchStrategy::NoMatch => "no-match",
            SearchStrategy::ExactScan => "exact-scan",
            SearchStrategy::FilteredWalk => "filtered-walk",
        }
    }
}

impl fmt::Display for SearchStrategy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// What a segment plans for a filter, before searching: for EXPLAIN.
#[derive(Debug, Clone, PartialEq)]
pub struct FilterPlan {
    /// Rows of the segment.
    pub rows: u64,
    /// Estimated fraction of rows that match, from column statistics.
    pub selectivity: f64,
    /// The strategy chosen.
    pub strategy: SearchStrategy,
    /// Columns the filter reads, and whether each is held in RAM (else it
    /// is read from the segment for each query).
    pub columns: Vec<(String, bool)>,
}

impl FilterPlan {
    /// Estimated matching rows.
    pub fn estimated_rows(&self) -> f64 {
        self.selectivity * self.rows as f64
    }
}

impl fmt::Display for FilterPlan {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} (estimated selectivity {:.4}%, ~{:.0} of {} rows",
            self.strategy,
            self.selectivity * 100.0,
            self.estimated_rows(),
            self.rows
        )?;
        for (name, ram) in &self.columns {
            write!(
                f,
                "; {name}: {}",
                if *ram { "in RAM" } else { "read on demand" }
            )?;
        }
        f.write_str(")")
    }
}

/// The strategy for estimated selectivity `s`.
pub fn choose(selectivity: f64) -> SearchStrategy {
    if selectivity <= 0.0 {
        SearchStrategy::NoMatch
    } else if selectivity <= EXACT_SCAN_MAX_SELECTIVITY {
        SearchStrategy::ExactScan
    } else {
        SearchStrategy::FilteredWalk
    }
}
