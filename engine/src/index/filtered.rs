//! Filtered search on one segment (SPEC.md §7.3): compile the filter
//! against the segment's attribute columns, estimate its selectivity from
//! their statistics, and answer with the strategy that estimate picks: no
//! work when nothing can match, an exact scan of the matching rows for
//! selective filters, a filtered graph walk otherwise.

use std::collections::HashMap;

use omen_format::Value;
use omen_format::segment::layout::{PAGE_PAYLOAD, PAGE_SIZE};
use omen_format::segment::verify_page;

use super::search::{Acceptance, ByRow, search};
use super::segment::Segment;
use super::{Hit, QueryStats, RowFilter, SearchParams, nanos_since};
use crate::distance::Kernels;
use crate::filter::{
    CompiledFilter, EXACT_SCAN_RERANK_FACTOR, Filter, FilterPlan, SearchStrategy, check, choose,
    compile, selectivity,
};
use crate::{EngineError, Result};

/// Candidate-list cap of the filtered walk, as a multiple of `ef / s`: the
/// window holds `ef` matching or unread candidates, so about `ef / s`
/// candidates in all; the cap bounds the work of a badly estimated filter.
const WALK_LIST_SLACK: f64 = 4.0;

impl Segment {
    /// The attribute columns, in order; empty when the segment has none.
    pub fn attribute_schema(&self) -> Vec<omen_format::attr::ColumnSchema> {
        self.columns().to_vec()
    }

    fn columns(&self) -> &[omen_format::attr::ColumnSchema] {
        self.attributes().map_or(&[], |a| a.schema())
    }

    /// The attribute values of `rows` (row numbers, as [`Segment::read_row`]
    /// takes), each in schema order; empty when the segment has no
    /// attributes. Columns beyond the RAM budget are read once per call.
    pub fn attribute_rows(&self, rows: &[u32]) -> Result<Vec<Vec<Value>>> {
        let Some(attributes) = self.attributes() else {
            return Ok(vec![Vec::new(); rows.len()]);
        };
        if let Some(&row) = rows.iter().find(|&&r| r as usize >= self.len()) {
            return Err(EngineError::InvalidArgument(format!(
                "row {row} of {}, which has {} rows",
                self.path().display(),
                self.len()
            )));
        }
        let all: Vec<usize> = (0..attributes.schema().len()).collect();
        let columns = attributes.columns_for(&all)?;
        Ok(rows
            .iter()
            .map(|&row| {
                columns
                    .iter()
                    .map(|c| c.as_ref().map_or(Value::Null, |c| c.value(row as usize)))
                    .collect()
            })
            .collect())
    }

    /// How this segment would answer `filter`, without searching: the
    /// estimated selectivity, the strategy and where the columns it reads
    /// live. Fails, naming the column, on an unknown column or a literal of
    /// the wrong type.
    pub fn plan_filter(&self, filter: &Filter) -> Result<FilterPlan> {
        let schema = self.columns();
        let used = check(filter, schema)?;
        let stats = self.attributes().map_or(&[][..], |a| a.stats());
        let s = selectivity(filter, schema, stats);
        // A flat index has no graph to walk: anything that may match is
        // scanned.
        let strategy = match choose(s) {
            SearchStrategy::FilteredWalk if self.is_flat() => SearchStrategy::ExactScan,
            other => other,
        };
        Ok(FilterPlan {
            rows: self.len() as u64,
            selectivity: s,
            strategy,
            columns: used
                .iter()
                .map(|&c| {
                    let resident = self.attributes().is_some_and(|a| a.is_resident(c));
                    (schema[c].name.clone(), resident)
                })
                .collect(),
        })
    }

    /// Rows matching `filter`: none when the column statistics prove it,
    /// else the filter evaluated on every row's attributes (no page reads).
    pub fn count_matching(&self, filter: &Filter) -> Result<u64> {
        if self.plan_filter(filter)?.strategy == SearchStrategy::NoMatch {
            return Ok(0);
        }
        Ok(self.compile_filter(filter)?.matching_rows().len() as u64)
    }

    /// Binds `filter` to this segment's columns (reading any that are not
    /// resident), ready to evaluate row by row.
    pub fn compile_filter(&self, filter: &Filter) -> Result<CompiledFilter> {
        let schema = self.columns();
        let used = check(filter, schema)?;
        let columns = match self.attributes() {
            Some(a) => a.columns_for(&used)?,
            None => Vec::new(),
        };
        compile(filter, schema, columns, self.len())
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
        self.filtered(query, k, filter, params, &plan, None)
    }

    /// [`Segment::search_filtered`] among the rows that `also` accepts too:
    /// a collection passes its tombstones and the ids its memtables
    /// shadow. The planner chooses the strategy from the attribute filter
    /// alone; rows that `also` rejects are dropped once read, like rows of
    /// [`Segment::search_with`].
    pub fn search_filtered_with(
        &self,
        query: &[f32],
        k: usize,
        filter: &Filter,
        params: &SearchParams,
        also: &dyn RowFilter,
    ) -> Result<(Vec<Hit>, QueryStats)> {
        let plan = self.plan_filter(filter)?;
        self.filtered(query, k, filter, params, &plan, Some(also))
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
        let plan = FilterPlan {
            strategy,
            ..self.plan_filter(filter)?
        };
        self.filtered(query, k, filter, params, &plan, None)
    }

    fn filtered(
        &self,
        query: &[f32],
        k: usize,
        filter: &Filter,
        params: &SearchParams,
        plan: &FilterPlan,
        also: Option<&dyn RowFilter>,
    ) -> Result<(Vec<Hit>, QueryStats)> {
        self.check_query(query, k)?;
        if plan.strategy == SearchStrategy::NoMatch {
            // Proven by the statistics: no column is read.
            return Ok((
                Vec::new(),
                QueryStats {
                    strategy: plan.strategy,
                    ..QueryStats::default()
                },
            ));
        }
        let compiled = self.compile_filter(filter)?;
        let accept = ByRow {
            filter: &compiled,
            also,
        };
        if plan.strategy == SearchStrategy::ExactScan || self.is_flat() {
            let matches = compiled.matching_rows();
            stats_rows_tested(
                self.exact_scan(query, k, matches.into_iter(), &accept, params),
                self.len(),
            )
        } else {
            self.filtered_walk(query, k, &accept, params, plan.selectivity.max(1e-6))
        }
    }

    fn filtered_walk(
        &self,
        query: &[f32],
        k: usize,
        accept: &ByRow<'_>,
        params: &SearchParams,
        selectivity: f64,
    ) -> Result<(Vec<Hit>, QueryStats)> {
        let ef = params.ef.max(k).max(1);
        let cap = ((ef as f64 / selectivity) * WALK_LIST_SLACK).min(self.len() as f64) as usize;
        let (hits, mut stats) = self
            .with_scratch(|scratch| search(self, scratch, query, k, params, accept, cap.max(ef)))?;
        stats.strategy = SearchStrategy::FilteredWalk;
        stats.filter_rows_tested = stats.code_distances;
        Ok((hits, stats))
    }

    /// Ranks every row of `rows` (a filter's matches, or every row of a
    /// flat index) by its in-RAM code, then reads the best
    /// candidates' pages in code order, a batch of `2 · beam_width` page
    /// groups per round, computing exact distances, until the next
    /// candidate's code distance exceeds the early-stop bound on the `k`-th
    /// exact distance (as in the walk, [`SearchParams::stop_permille`]) or
    /// `ef × EXACT_SCAN_RERANK_FACTOR` candidates (at least `k`) were
    /// read and at least `k` of them passed `accept`. When `rows` holds no
    /// more than that and the bound is off, every row is reranked and the
    /// result is exact.
    pub(crate) fn exact_scan<A: Acceptance>(
        &self,
        query: &[f32],
        k: usize,
        rows: impl Iterator<Item = u32>,
        accept: &A,
        params: &SearchParams,
    ) -> Result<(Vec<Hit>, QueryStats)> {
        let mut stats = QueryStats {
            strategy: SearchStrategy::ExactScan,
            ..QueryStats::default()
        };
        let rerank = (params.ef.max(k) * EXACT_SCAN_RERANK_FACTOR).max(k);
        let codes = self.quantizer().query(query);
        // 1-bit codes estimate too loosely for the early-stop bound (§7.2):
        // with them every one of the `rerank` candidates is read.
        let stop_permille = match self.quantizer().kind() {
            crate::quant::QuantizerKind::RaBitQ { bits: 1, .. } => None,
            _ => params.stop_permille,
        };
        let len = self.code_len();
        let all = self.codes();
        let mut scored: Vec<(f32, u32)> = rows
            .map(|r| {
                let at = r as usize * len;
                (codes.distance(&all[at..at + len]), r)
            })
            .collect();
        if scored.is_empty() {
            return Ok((Vec::new(), stats));
        }
        stats.code_distances = scored.len() as u32;
        // Only the best `limit` are put in order. A caller's row filter can
        // reject rows once read (deleted ones); while fewer than `k` pass,
        // the next `rerank` are ordered and read too, so deletes cost no
        // recall.
        let mut limit = order_prefix(&mut scored, 0, rerank);

        let per = self.pages_per_group();
        let kernels = Kernels::<f32>::best();
        let mut widened = Vec::new();
        let mut exact: Vec<(f32, u32, u64)> = Vec::with_capacity(limit);
        let mut kth: Vec<f32> = Vec::new();
        let mut payload = vec![0u8; per * PAGE_PAYLOAD];
        let groups_per_round = (2 * params.beam_width).max(1);
        let mut next = 0usize;
        while next < scored.len() {
            if next == limit {
                if exact.len() >= k {
                    break;
                }
                limit = order_prefix(&mut scored, limit, rerank);
            }
            if let Some(p) = stop_permille
                && exact.len() >= k
            {
                kth.clear();
                kth.extend(exact.iter().map(|e| e.0));
                let (_, &mut dk, _) = kth.select_nth_unstable_by(k - 1, f32::total_cmp);
                if scored[next].0 > dk + dk.abs() * (p as f32 / 1000.0) {
                    break;
                }
            }
            // The next candidates, until the round has its page groups.
            let mut wanted: HashMap<u64, Vec<u32>> = HashMap::new();
            let mut groups: Vec<u64> = Vec::new();
            while next < limit {
                let row = scored[next].1;
                let g = self.group_of(row);
                if !wanted.contains_key(&g) {
                    if groups.len() == groups_per_round {
                        break;
                    }
                    groups.push(g);
                }
                wanted.entry(g).or_default().push(row);
                next += 1;
            }
            let offsets: Vec<u64> = groups
                .iter()
                .flat_map(|&g| (0..per as u64).map(move |p| g * per as u64 + p))
                .map(|page| self.page_offset(page))
                .collect();
            let mut pages = vec![0u8; offsets.len() * PAGE_PAYLOAD];
            let blocked = std::time::Instant::now();
            self.pages().read(&offsets, &mut |i, page| {
                let bytes = verify_page(page, offsets[i], self.path(), "nodes section")?;
                pages[i * PAGE_PAYLOAD..(i + 1) * PAGE_PAYLOAD].copy_from_slice(bytes);
                Ok(())
            })?;
            stats.wait_nanos += nanos_since(blocked);
            stats.rounds += 1;
            stats.pages_read += offsets.len() as u32;
            stats.bytes_read += (offsets.len() * PAGE_SIZE) as u64;
            for (j, g) in groups.iter().enumerate() {
                payload
                    .copy_from_slice(&pages[j * per * PAGE_PAYLOAD..(j + 1) * per * PAGE_PAYLOAD]);
                for &row in &wanted[g] {
                    let node = self.decode(&payload, row)?;
                    if !accept.accepts(row, node.external_id) {
                        continue;
                    }
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

/// The exact scan of a compiled filter tested every row of the segment.
fn stats_rows_tested(
    result: Result<(Vec<Hit>, QueryStats)>,
    rows: usize,
) -> Result<(Vec<Hit>, QueryStats)> {
    result.map(|(hits, mut stats)| {
        stats.filter_rows_tested = rows as u32;
        (hits, stats)
    })
}

/// Puts the best `count` candidates of `scored[from..]` in order at its
/// front (by code distance, then row) and returns the end of that prefix.
fn order_prefix(scored: &mut [(f32, u32)], from: usize, count: usize) -> usize {
    let rest = &mut scored[from..];
    let by = |a: &(f32, u32), b: &(f32, u32)| a.0.total_cmp(&b.0).then(a.1.cmp(&b.1));
    let count = count.min(rest.len());
    if count == 0 {
        return from;
    }
    if count < rest.len() {
        rest.select_nth_unstable_by(count - 1, by);
    }
    rest[..count].sort_unstable_by(by);
    from + count
}
