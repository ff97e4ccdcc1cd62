//! Filtered search on one segment (SPEC.md §7.3): compile the filter
//! against the segment's attribute columns, estimate its selectivity from
//! their statistics, and answer with the strategy that estimate picks: no
//! work when nothing can match, an exact scan of the matching rows for
//! selective filters, a filtered graph walk otherwise.

use std::collections::HashMap;

use omen_format::segment::layout::{PAGE_PAYLOAD, PAGE_SIZE};
use omen_format::segment::verify_page;

use super::search::{ByRow, search};
use super::segment::Segment;
use super::{Hit, QueryStats, SearchParams};
use crate::Result;
use crate::distance::Kernels;
use crate::filter::{
    CompiledFilter, EXACT_SCAN_RERANK_FACTOR, Filter, FilterPlan, SearchStrategy, check, choose,
    compile, selectivity,
};

/// Candidate-list cap of the filtered walk, as a multiple of `ef / s`: the
/// window holds `ef` matching or unread candidates, so about `ef / s`
/// candidates in all; the cap bounds the work of a badly estimated filter.
const WALK_LIST_SLACK: f64 = 4.0;

impl Segment {
    /// The attribute columns, in order; empty when the segment has none.
    pub fn attribute_schema(&self) -> Vec<omen_format::attr::ColumnSchema> {
        self.attributes().map(|a| a.schema()).unwrap_or_default()
    }

    /// How this segment would answer `filter`, without searching: the
    /// estimated selectivity, the strategy and where the columns it reads
    /// live. Fails, naming the column, on an unknown column or a literal of
    /// the wrong type.
    pub fn plan_filter(&self, filter: &Filter) -> Result<FilterPlan> {
        let schema = self.attribute_schema();
        let used = check(filter, &schema)?;
        let stats = self.attributes().map(|a| a.stats()).unwrap_or_default();
        let s = selectivity(filter, &schema, &stats);
        Ok(FilterPlan {
            rows: self.len() as u64,
            selectivity: s,
            strategy: choose(s),
            columns: used
                .iter()
                .map(|&c| {
                    let resident = self.attributes().is_some_and(|a| a.is_resident(c));
                    (schema[c].name.clone(), resident)
                })
                .collect(),
        })
    }

    /// Binds `filter` to this segment's columns (reading any that are not
    /// resident), ready to evaluate row by row.
    pub fn compile_filter(&self, filter: &Filter) -> Result<CompiledFilter> {
        let schema = self.attribute_schema();
        let used = check(filter, &schema)?;
        let columns = match self.attributes() {
            Some(a) => a.columns_for(&used)?,
            None => Vec::new(),
        };
        compile(filter, &schema, columns, self.len())
    }

    /// The `k` nearest rows of `query` among those matching `filter`,
    /// closest first, with the strategy the planner chose recorded in the
    /// returned statistics. A filter no row matches returns no rows (and,
    /// when the statistics prove it, reads nothing).
    pub fn search_filtered(
        &self,
        query: &[f32],
        k: usize,
        filter: &Filter,
        params: &SearchParams,
    ) -> Result<(Vec<Hit>, QueryStats)> {
        let plan = self.plan_filter(filter)?;
        self.search_filtered_using(query, k, filter, params, plan.strategy)
    }

    /// [`Segment::search_filtered`] with the strategy forced: for
    /// benchmarks that measure the thresholds, and for tests.
    pub fn search_filtered_using(
        &self,
        query: &[f32],
        k: usize,
        filter: &Filter,
        params: &SearchParams,
        strategy: SearchStrategy,
    ) -> Result<(Vec<Hit>, QueryStats)> {
        self.check_query(query, k)?;
        let compiled = self.compile_filter(filter)?;
        match strategy {
            SearchStrategy::NoMatch => Ok((
                Vec::new(),
                QueryStats {
                    strategy,
                    ..QueryStats::default()
                },
            )),
            SearchStrategy::ExactScan => self.exact_scan(query, k, &compiled, params),
            SearchStrategy::FilteredWalk | SearchStrategy::Unfiltered => {
                let stats = self.attributes().map(|a| a.stats()).unwrap_or_default();
                let s = selectivity(filter, &self.attribute_schema(), &stats).max(1e-6);
                self.filtered_walk(query, k, &compiled, params, s)
            }
        }
    }

    fn filtered_walk(
        &self,
        query: &[f32],
        k: usize,
        compiled: &CompiledFilter,
        params: &SearchParams,
        selectivity: f64,
    ) -> Result<(Vec<Hit>, QueryStats)> {
        let ef = params.ef.max(k).max(1);
        let cap = ((ef as f64 / selectivity) * WALK_LIST_SLACK).min(self.len() as f64) as usize;
        let accept = ByRow(compiled);
        let (hits, mut stats) = self.with_scratch(|scratch| {
            search(self, scratch, query, k, params, &accept, cap.max(ef))
        })?;
        stats.strategy = SearchStrategy::FilteredWalk;
        stats.filter_rows_tested = stats.code_distances;
        Ok((hits, stats))
    }

    /// Ranks every matching row by its in-RAM code, reads the pages of the
    /// best `ef × EXACT_SCAN_RERANK_FACTOR` (at least `k`) and returns the
    /// `k` best by exact distance. When no more rows match than that, every
    /// match is reranked and the result is exact.
    fn exact_scan(
        &self,
        query: &[f32],
        k: usize,
        compiled: &CompiledFilter,
        params: &SearchParams,
    ) -> Result<(Vec<Hit>, QueryStats)> {
        let mut stats = QueryStats {
            strategy: SearchStrategy::ExactScan,
            filter_rows_tested: self.len() as u32,
            ..QueryStats::default()
        };
        let matches = compiled.matching_rows();
        if matches.is_empty() {
            return Ok((Vec::new(), stats));
        }
        let rerank = (params.ef.max(k) * EXACT_SCAN_RERANK_FACTOR).max(k);
        let mut scored: Vec<(f32, u32)> = if matches.len() <= rerank {
            matches.iter().map(|&r| (0.0, r)).collect()
        } else {
            let codes = self.quantizer().query(query);
            let len = self.code_len();
            let all = self.codes();
            stats.code_distances = matches.len() as u32;
            let mut scored: Vec<(f32, u32)> = matches
                .iter()
                .map(|&r| {
                    let at = r as usize * len;
                    (codes.distance(&all[at..at + len]), r)
                })
                .collect();
            scored.select_nth_unstable_by(rerank - 1, |a, b| a.0.total_cmp(&b.0));
            scored.truncate(rerank);
            scored
        };
        // Read each page group once, in file order.
        scored.sort_unstable_by_key(|&(_, r)| r);
        let mut wanted: HashMap<u64, Vec<u32>> = HashMap::new();
        for &(_, r) in &scored {
            wanted.entry(self.group_of(r)).or_default().push(r);
        }
        let mut groups: Vec<u64> = wanted.keys().copied().collect();
        groups.sort_unstable();
        let per = self.pages_per_group();
        let kernels = Kernels::<f32>::best();
        let mut widened = Vec::new();
        let mut exact: Vec<(f32, u32, u64)> = Vec::with_capacity(scored.len());
        let mut payload = vec![0u8; per * PAGE_PAYLOAD];
        let batch = 64usize.div_ceil(per).max(1);
        for chunk in groups.chunks(batch) {
            let offsets: Vec<u64> = chunk
                .iter()
                .flat_map(|&g| (0..per as u64).map(move |p| g * per as u64 + p))
                .map(|page| self.page_offset(page))
                .collect();
            let mut pages = vec![0u8; offsets.len() * PAGE_PAYLOAD];
            self.pages().read(&offsets, &mut |i, page| {
                let bytes = verify_page(page, offsets[i], self.path(), "nodes section")?;
                pages[i * PAGE_PAYLOAD..(i + 1) * PAGE_PAYLOAD].copy_from_slice(bytes);
                Ok(())
            })?;
            stats.rounds += 1;
            stats.pages_read += offsets.len() as u32;
            stats.bytes_read += (offsets.len() * PAGE_SIZE) as u64;
            for (j, g) in chunk.iter().enumerate() {
                payload
                    .copy_from_slice(&pages[j * per * PAGE_PAYLOAD..(j + 1) * per * PAGE_PAYLOAD]);
                for &row in &wanted[g] {
                    let node = self.decode(&payload, row)?;
                    self.widen(node.vector, &mut widened);
                    let d = kernels.distance(self.metric(), query, &widened);
                    stats.exact_distances += 1;
                    exact.push((d, row, node.external_id));
                }
            }
        }
        exact.sort_unstable_by(|a, b| a.0.total_cmp(&b.0).then(a.1.cmp(&b.1)));
        let hits = exact
            .iter()
            .take(k)
            .map(|&(distance, _, id)| Hit { id, distance })
            .collect();
        Ok((hits, stats))
    }
}
