//! The disk search of one query: descend the RAM layers, beam-search the
//! base layer reading node pages, rerank with exact distances.
//!
//! The candidate list holds at most `ef` nodes, ordered by distance: exact
//! for nodes whose record has been read, the code estimate otherwise. The
//! pages of the best unexpanded candidates not yet requested are requested
//! until `beam_width` page groups are in flight, and handed to the kernel
//! at once: after every group put in hand and expanded
//! ([`SearchParams::pipeline`]), or once the whole previous batch is in hand
//! (rounds). Groups are put in hand one at a time, in request order, so the
//! device reads the next pages while the search expands the last ones (on
//! this VM's disk, which completes a batch together, that overlap is worth
//! 10–25% of QPS at the same reads), and so the walk does not depend on
//! completion order. Every node on
//! a group put in hand gets its exact distance (records are packed so that
//! graph neighbours tend to share pages, SPEC.md §2.5.4) and joins the list
//! if it is good enough; expanding a node whose page is already in hand
//! costs no I/O. The search ends when the best `ef` candidates are all
//! expanded, or, with [`SearchParams::stop_permille`], when every
//! unexpanded candidate among them is farther than the bound
//! `d_r + stop · |d_r|` (`d_r`: the `r`-th best exact distance so far, with
//! `r = max(k, ef / 4)`), so easy queries stop early and `ef` still buys
//! recall on the hard ones. The result is
//! the `k` best exact distances seen.
//!
//! Measured on 200K clustered 128-d vectors (R = 64 saturated, rabitq2,
//! beam 4): a 6.5% bound at `ef = 64` reads 24.3 pages per query for
//! recall@10 0.953, where the plain rule needs `ef = 24` and 26 pages for
//! 0.948.
//!
//! Invariants: a page is read at most once per query; a node is scored by
//! code at most once (the visited set); every exact distance comes from a
//! record whose page checksum was verified; the walk is a function of the
//! query and the segment, whatever the I/O path or its timing.

use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hasher};
use std::time::Instant;

use omen_format::segment::layout::{PAGE_PAYLOAD, PAGE_SIZE};
use omen_format::segment::verify_page;

use super::pages::PageReads;
use super::segment::Segment;
use super::{Hit, QueryStats, RowFilter, SearchParams, nanos_since};
use crate::Result;
use crate::distance::Kernels;
use crate::graph::visited::VisitedIds;

/// A multiplicative hash for dense `u32`/`u64` ids (page groups here): the
/// standard SipHash costs more than the rest of a map lookup.
#[derive(Default, Clone, Copy)]
pub(crate) struct IdHasher(u64);

impl Hasher for IdHasher {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.0 = (self.0.rotate_left(8) ^ u64::from(b)).wrapping_mul(0x9E37_79B9_7F4A_7C15);
        }
    }
    fn write_u32(&mut self, n: u32) {
        self.0 = (u64::from(n) ^ 0xA076_1D64_78BD_642F).wrapping_mul(0x9E37_79B9_7F4A_7C15);
    }
    fn write_u64(&mut self, n: u64) {
        self.0 = (n ^ 0xA076_1D64_78BD_642F).wrapping_mul(0x9E37_79B9_7F4A_7C15);
    }
}

type IdBuild = BuildHasherDefault<IdHasher>;

/// The early stop's reference is the `max(k, ef / STOP_RANK_DIVISOR)`-th
/// best exact distance. Measuring from the `k`-th alone made recall stop
/// growing with `ef`: at 1M × 128 it plateaued at 0.972 with 38 reads from
/// `ef = 96` up. From the `ef / 4`-th, `ef <= 4k` is unchanged (the 0.95
/// operating point) and larger lists keep buying recall: 0.991 at
/// `ef = 128` with 86 reads, 0.997 at 256 (benches/RESULTS.md, session 6).
const STOP_RANK_DIVISOR: usize = 4;

/// The walk's approach: until `APPROACH_GROUPS` page groups are in hand, at
/// most `APPROACH_BEAM` are in flight. Early on each read moves the walk
/// towards the query and changes which candidates are best, so reads
/// requested side by side are mostly wasted; once the walk is near the
/// query, the best unread candidates stay good and the full beam reads them
/// in parallel. At 1M × 128 with `beam_width` 6, recall@10 0.9535 takes 31.8
/// reads in 8.4 waits, where a plain beam of 4 needs 32.5 reads in 9.0 waits
/// for 0.9525 and a plain beam of 6 35.4 reads (benches/RESULTS.md,
/// session 8).
const APPROACH_GROUPS: usize = 4;
const APPROACH_BEAM: usize = 2;

/// Matching level-1 nodes a row-filtered walk starts from, per `upper_ef`.
const FILTER_SEED_FACTOR: usize = 2;

#[derive(Debug, Clone, Copy)]
struct Candidate {
    distance: f32,
    id: u32,
    /// Its neighbours have been scored.
    expanded: bool,
    /// Its page has been requested in the current round.
    pending: bool,
    /// Its record was read and the row filter rejected it: it still guides
    /// the walk but does not count towards the `ef` window.
    rejected: bool,
}

/// How a search applies a row filter, decided at compile time so that the
/// unfiltered search keeps its original code path.
pub(crate) trait Acceptance {
    /// Whether any row can be rejected.
    const FILTERS: bool;
    /// Whether [`Acceptance::known`] answers for every row.
    const BY_ROW: bool = false;
    fn accepts(&self, row: u32, id: u64) -> bool;
    /// Whether `row` passes, when that is known from the row alone (before
    /// its record is read): rejected candidates then do not count towards
    /// the window from the moment they are scored by code. `Some(true)` is
    /// a forecast: [`Acceptance::accepts`] has the last word once the
    /// record is read.
    fn known(&self, _row: u32) -> Option<bool> {
        None
    }
}

/// Every row qualifies: the plain search.
pub(crate) struct AcceptAll;

impl Acceptance for AcceptAll {
    const FILTERS: bool = false;
    #[inline(always)]
    fn accepts(&self, _: u32, _: u64) -> bool {
        true
    }
}

/// A caller's [`RowFilter`].
pub(crate) struct Filtered<'a>(pub(crate) &'a dyn RowFilter);

impl Acceptance for Filtered<'_> {
    const FILTERS: bool = true;
    fn accepts(&self, row: u32, id: u64) -> bool {
        self.0.accepts(row, id)
    }
}

/// A compiled attribute filter, known by row before a record is read, and
/// optionally a caller's [`RowFilter`] on top (a collection's tombstones),
/// which a row that matches can still fail once its record is read.
pub(crate) struct ByRow<'a> {
    pub(crate) filter: &'a crate::filter::CompiledFilter,
    pub(crate) also: Option<&'a dyn RowFilter>,
}

impl Acceptance for ByRow<'_> {
    const FILTERS: bool = true;
    const BY_ROW: bool = true;
    fn accepts(&self, row: u32, id: u64) -> bool {
        self.filter.matches(row as usize) && self.also.is_none_or(|f| f.accepts(row, id))
    }
    fn known(&self, row: u32) -> Option<bool> {
        Some(self.filter.matches(row as usize))
    }
}

/// The shape of the candidate list: at most `ef` candidates that are not
/// known to be rejected, and (when filtering) at most `cap` in all.
#[derive(Debug, Clone, Copy)]
struct Window {
    ef: usize,
    cap: usize,
    filters: bool,
}

/// Per-query working memory, pooled by the segment so that steady-state
/// searches allocate nothing.
#[derive(Debug, Default)]
pub(crate) struct Scratch {
    list: Vec<Candidate>,
    visited: VisitedIds,
    /// Page group -> index into `groups`, for every group requested by this
    /// query (in flight or in hand).
    cached: HashMap<u64, usize, IdBuild>,
    /// Payloads of the page groups requested by this query; the first
    /// `slots` are in use.
    groups: Vec<Vec<u8>>,
    slots: usize,
    /// Per slot: the page group it holds.
    slot_group: Vec<u64>,
    /// Per slot: pages still to arrive.
    arriving: Vec<usize>,
    /// Slots are taken in request order, and the first `released` are in
    /// hand: their nodes have exact distances and may be expanded. Groups
    /// are released strictly in request order, whatever order the device
    /// completes them in, so a query's walk (its reads and its results)
    /// does not depend on I/O timing.
    released: usize,
    results: Vec<(f32, u32, u64)>,
    /// Exact distances, reordered to find the current `k`-th best.
    kth: Vec<f32>,
    widened: Vec<f32>,
    batch_groups: Vec<u64>,
    /// The neighbours of the node being expanded that were not yet visited.
    fresh: Vec<u32>,
    /// Every node scored by code, with its estimate, when the search has a
    /// rerank depth (otherwise left empty).
    scored: Vec<(f32, u32)>,
    keep_scored: bool,
}

impl Scratch {
    /// Groups requested and not yet in hand.
    fn groups_in_flight(&self) -> usize {
        self.slots - self.released
    }

    fn reset(&mut self) {
        self.list.clear();
        self.visited.clear();
        self.cached.clear();
        self.slots = 0;
        self.released = 0;
        self.results.clear();
        self.batch_groups.clear();
        self.scored.clear();
    }
}

/// Searches `segment` for the `k` nearest neighbours of `query`.
///
/// With a filter, rows the filter rejects are scored and expanded like any
/// other (they are the graph's paths to the rows it accepts) but never enter
/// the results; the `ef` window and the early-stop bound count accepted
/// rows only, so the walk widens past rejected regions until it holds `k`
/// accepted rows, runs out of candidates, or the list reaches its cap.
pub(crate) fn search<A: Acceptance>(
    segment: &Segment,
    scratch: &mut Scratch,
    query: &[f32],
    k: usize,
    params: &SearchParams,
    accept: &A,
    // The most candidates (accepted, rejected or unread) a filtered list
    // holds; ignored without a filter.
    list_cap: usize,
) -> Result<(Vec<Hit>, QueryStats)> {
    scratch.reset();
    scratch.keep_scored = params.rerank > 0;
    let mut stats = QueryStats::default();
    let ef = params.ef.max(k).max(1);
    let window = Window {
        ef,
        cap: if A::FILTERS { list_cap.max(ef) } else { ef },
        filters: A::FILTERS,
    };
    let codes = CodeScorer {
        query: segment.quantizer().query(query),
        codes: segment.codes(),
        code_len: segment.code_len(),
    };

    // 1. The RAM layers give the entry candidates.
    let mut entries = segment.upper().descend(
        &mut |id| codes.distance(id, &mut stats),
        &|id| codes.prefetch(id),
        params.upper_ef.max(1),
    );
    if entries.is_empty() {
        let e = segment.base_entry();
        entries.push(crate::graph::Neighbour {
            id: e,
            distance: codes.distance(e, &mut stats),
        });
    }
    // A filter known by row also seeds the walk with the matching level-1
    // nodes (a 1/M sample of the segment, in RAM) nearest by code: when
    // the rows around the query do not match (attributes correlated with
    // the clusters), the walk then starts in matching regions too.
    if A::BY_ROW && segment.upper().levels() >= 1 {
        let mut seeds: Vec<crate::graph::Neighbour> = Vec::new();
        for &id in segment.upper().nodes(1) {
            if accept.known(id) == Some(true) {
                seeds.push(crate::graph::Neighbour {
                    id,
                    distance: codes.distance(id, &mut stats),
                });
            }
        }
        let keep = params.upper_ef.max(1) * FILTER_SEED_FACTOR;
        if seeds.len() > keep {
            seeds.select_nth_unstable_by(keep - 1, |a, b| a.distance.total_cmp(&b.distance));
            seeds.truncate(keep);
        }
        entries.extend(seeds);
    }
    for e in entries {
        if scratch.visited.insert(e.id) {
            if scratch.keep_scored {
                scratch.scored.push((e.distance, e.id));
            }
            let rejected = A::FILTERS && accept.known(e.id) == Some(false);
            insert(&mut scratch.list, window, e.id, e.distance, rejected);
        }
    }

    // 2. Beam search over the base layer.
    let mut reads = segment.pages().reads()?;
    // More groups than the ring holds could not be in flight at once.
    let beam = params
        .beam_width
        .clamp(1, (reads.depth() / segment.pages_per_group()).max(1));
    loop {
        // Expand, for free, the best candidate whose page is already here.
        let free = scratch
            .list
            .iter()
            .position(|c| !c.expanded && in_hand(scratch, segment.group_of(c.id)));
        if let Some(i) = free {
            let id = scratch.list[i].id;
            scratch.list[i].expanded = true;
            expand(segment, scratch, id, window, accept, &codes, &mut stats)?;
            continue;
        }
        // Keep `beam` groups in flight: request the pages of the best
        // unexpanded candidates. In rounds, only once the last batch is in.
        if params.pipeline || scratch.groups_in_flight() == 0 {
            let in_flight = if scratch.released < APPROACH_GROUPS {
                beam.min(APPROACH_BEAM)
            } else {
                beam
            };
            request_best(
                segment, scratch, &mut reads, params, k, in_flight, &mut stats,
            )?;
        }
        if scratch.groups_in_flight() == 0 {
            break;
        }
        receive(
            segment, scratch, &mut reads, query, window, accept, &mut stats,
        )?;
    }

    // 3. Rerank: read what the walk left unread among the best by code,
    // then take the k best exact distances among everything read.
    if params.rerank > 0 {
        read_best_unread(
            segment,
            scratch,
            &mut reads,
            query,
            window,
            accept,
            params.rerank,
            &mut stats,
        )?;
    }
    let results = &mut scratch.results;
    results.sort_unstable_by(|a, b| a.0.total_cmp(&b.0).then(a.1.cmp(&b.1)));
    let hits = results
        .iter()
        .take(k)
        .map(|&(distance, _, external)| Hit {
            id: external,
            distance,
        })
        .collect();
    Ok((hits, stats))
}

/// Requests the page groups of the best unexpanded candidates not yet
/// requested, until `beam` groups are in flight, and starts their reads at
/// once, so the device works while the search expands what it has.
fn request_best(
    segment: &Segment,
    scratch: &mut Scratch,
    reads: &mut PageReads<'_>,
    params: &SearchParams,
    k: usize,
    beam: usize,
    stats: &mut QueryStats,
) -> Result<()> {
    let rank = k.max(params.ef / STOP_RANK_DIVISOR);
    let bound = match params.stop_permille {
        Some(p) if scratch.results.len() >= rank => {
            let kth = &mut scratch.kth;
            kth.clear();
            kth.extend(scratch.results.iter().map(|r| r.0));
            let (_, &mut dk, _) = kth.select_nth_unstable_by(rank - 1, f32::total_cmp);
            dk + dk.abs() * (p as f32 / 1000.0)
        }
        _ => f32::INFINITY,
    };
    scratch.batch_groups.clear();
    let mut open = beam.saturating_sub(scratch.groups_in_flight());
    for c in scratch.list.iter_mut() {
        if c.distance > bound || open == 0 {
            break;
        }
        if c.expanded || c.pending {
            continue;
        }
        c.pending = true;
        let group = segment.group_of(c.id);
        // Not yet requested (a group in flight may hold several
        // candidates).
        if !scratch.cached.contains_key(&group) && !scratch.batch_groups.contains(&group) {
            scratch.batch_groups.push(group);
            open -= 1;
        }
    }
    for i in 0..scratch.batch_groups.len() {
        request(segment, scratch, reads, scratch.batch_groups[i], stats)?;
    }
    if !scratch.batch_groups.is_empty() {
        stats.submit_nanos += reads.flush()?;
    }
    Ok(())
}

/// Reads, in one batch, the page groups of the `depth` nodes with the best
/// code distances that the walk scored but did not read (skipping rows a
/// filter known by row rejects), so that all of them have exact distances.
#[allow(clippy::too_many_arguments)]
fn read_best_unread<A: Acceptance>(
    segment: &Segment,
    scratch: &mut Scratch,
    reads: &mut PageReads<'_>,
    query: &[f32],
    window: Window,
    accept: &A,
    depth: usize,
    stats: &mut QueryStats,
) -> Result<()> {
    let scored = &mut scratch.scored;
    if A::BY_ROW {
        scored.retain(|&(_, id)| accept.known(id) != Some(false));
    }
    if scored.len() > depth {
        scored.select_nth_unstable_by(depth - 1, |a, b| a.0.total_cmp(&b.0));
        scored.truncate(depth);
    }
    scratch.batch_groups.clear();
    for &(_, id) in scored.iter() {
        let group = segment.group_of(id);
        if !scratch.cached.contains_key(&group) {
            scratch.batch_groups.push(group);
        }
    }
    scratch.batch_groups.sort_unstable();
    scratch.batch_groups.dedup();
    let per_group = segment.pages_per_group();
    for i in 0..scratch.batch_groups.len() {
        while reads.in_flight() + per_group > reads.depth() {
            receive(segment, scratch, reads, query, window, accept, stats)?;
        }
        request(segment, scratch, reads, scratch.batch_groups[i], stats)?;
    }
    while scratch.groups_in_flight() > 0 {
        receive(segment, scratch, reads, query, window, accept, stats)?;
    }
    Ok(())
}

/// Whether the pages of `group` have all arrived.
fn in_hand(scratch: &Scratch, group: u64) -> bool {
    scratch
        .cached
        .get(&group)
        .is_some_and(|&slot| slot < scratch.released)
}

/// The query's code distances over the segment's codes in RAM.
struct CodeScorer<'a> {
    query: crate::quant::QueryDistances,
    codes: &'a [u8],
    code_len: usize,
}

impl CodeScorer<'_> {
    fn code(&self, id: u32) -> &[u8] {
        let at = id as usize * self.code_len;
        &self.codes[at..at + self.code_len]
    }

    fn prefetch(&self, id: u32) {
        crate::distance::prefetch(self.code(id));
    }

    fn distance(&self, id: u32, stats: &mut QueryStats) -> f32 {
        stats.code_distances += 1;
        self.query.distance(self.code(id))
    }
}

/// Scores the neighbours of `id`, whose page group is cached.
///
/// The unvisited neighbours' codes are prefetched before the first is
/// scored, so that their cache misses overlap.
fn expand<A: Acceptance>(
    segment: &Segment,
    scratch: &mut Scratch,
    id: u32,
    window: Window,
    accept: &A,
    codes: &CodeScorer<'_>,
    stats: &mut QueryStats,
) -> Result<()> {
    let group = segment.group_of(id);
    let slot = scratch.cached[&group];
    let node = segment.decode(&scratch.groups[slot], id)?;
    scratch.fresh.clear();
    for n in node.neighbours() {
        if scratch.visited.insert(n) {
            codes.prefetch(n);
            scratch.fresh.push(n);
        }
    }
    for &n in &scratch.fresh {
        let d = codes.distance(n, stats);
        if scratch.keep_scored {
            scratch.scored.push((d, n));
        }
        let rejected = A::FILTERS && accept.known(n) == Some(false);
        insert(&mut scratch.list, window, n, d, rejected);
    }
    Ok(())
}

/// Starts reading the pages of `group` into a free slot.
fn request(
    segment: &Segment,
    scratch: &mut Scratch,
    reads: &mut PageReads<'_>,
    group: u64,
    stats: &mut QueryStats,
) -> Result<()> {
    let per_group = segment.pages_per_group();
    let slot = scratch.slots;
    scratch.slots += 1;
    if scratch.groups.len() < scratch.slots {
        scratch.groups.push(Vec::new());
        scratch.slot_group.push(0);
        scratch.arriving.push(0);
    }
    scratch.groups[slot].resize(per_group * PAGE_PAYLOAD, 0);
    scratch.slot_group[slot] = group;
    scratch.arriving[slot] = per_group;
    scratch.cached.insert(group, slot);
    for p in 0..per_group {
        let page = group * per_group as u64 + p as u64;
        reads.submit(segment.page_offset(page), (slot * per_group + p) as u64)?;
    }
    stats.pages_read += per_group as u32;
    stats.bytes_read += (per_group * PAGE_SIZE) as u64;
    Ok(())
}

/// Puts the oldest requested group in hand, waiting for the device until
/// all its pages are in, and scores its nodes.
fn receive<A: Acceptance>(
    segment: &Segment,
    scratch: &mut Scratch,
    reads: &mut PageReads<'_>,
    query: &[f32],
    window: Window,
    accept: &A,
    stats: &mut QueryStats,
) -> Result<()> {
    let per_group = segment.pages_per_group();
    let slot = scratch.released;
    debug_assert!(slot < scratch.slots, "nothing requested");
    let blocked = (scratch.arriving[slot] > 0).then(Instant::now);
    while scratch.arriving[slot] > 0 {
        stats.rounds += 1;
        reads.wait(&mut |tag, page| {
            let (slot, p) = (tag as usize / per_group, tag as usize % per_group);
            let group = scratch.slot_group[slot];
            let offset = segment.page_offset(group * per_group as u64 + p as u64);
            let payload = verify_page(page, offset, segment.path(), "nodes section")?;
            scratch.groups[slot][p * PAGE_PAYLOAD..(p + 1) * PAGE_PAYLOAD].copy_from_slice(payload);
            scratch.arriving[slot] -= 1;
            Ok(())
        })?;
    }
    if let Some(blocked) = blocked {
        stats.wait_nanos += nanos_since(blocked);
    }
    scratch.released += 1;
    let group = scratch.slot_group[slot];
    score_group(segment, scratch, group, slot, query, window, accept, stats)
}

/// Computes the exact distance of every node in a freshly read group and
/// offers each to the candidate list.
#[allow(clippy::too_many_arguments)]
fn score_group<A: Acceptance>(
    segment: &Segment,
    scratch: &mut Scratch,
    group: u64,
    slot: usize,
    query: &[f32],
    window: Window,
    accept: &A,
    stats: &mut QueryStats,
) -> Result<()> {
    let kernels = Kernels::<f32>::best();
    for id in segment.nodes_in_group(group) {
        let node = segment.decode(&scratch.groups[slot], id)?;
        segment.widen(node.vector, &mut scratch.widened);
        let d = kernels.distance(segment.metric(), query, &scratch.widened);
        stats.exact_distances += 1;
        let rejected = A::FILTERS && !accept.accepts(id, node.external_id);
        if !rejected {
            scratch.results.push((d, id, node.external_id));
        }
        scratch.visited.insert(id);
        // An exact distance replaces the estimate of a listed node. (A node
        // that turns out rejected only shrinks the counted window.)
        if let Some(c) = scratch.list.iter().position(|c| c.id == id) {
            let expanded = scratch.list[c].expanded;
            scratch.list.remove(c);
            insert_sorted(
                &mut scratch.list,
                Candidate {
                    distance: d,
                    id,
                    expanded,
                    pending: false,
                    rejected,
                },
            );
        } else {
            insert(&mut scratch.list, window, id, d, rejected);
        }
    }
    Ok(())
}

/// Inserts a new, unexpanded candidate into the list, keeping it sorted and
/// within its window.
fn insert(list: &mut Vec<Candidate>, window: Window, id: u32, distance: f32, rejected: bool) {
    let full = if window.filters {
        counted(list) >= window.ef
    } else {
        list.len() >= window.ef
    };
    if full && list.last().is_some_and(|w| w.distance <= distance) {
        return;
    }
    insert_sorted(
        list,
        Candidate {
            distance,
            id,
            expanded: false,
            pending: false,
            rejected,
        },
    );
    if window.filters {
        // Keep everything up to the ef-th candidate not known rejected.
        let mut seen = 0;
        let end = list
            .iter()
            .position(|c| {
                seen += usize::from(!c.rejected);
                seen == window.ef
            })
            .map_or(list.len(), |i| i + 1);
        list.truncate(end);
        // Over the cap, drop the farthest rejected candidates: they only
        // guide, and matching candidates beyond them must stay reachable.
        if list.len() > window.cap {
            let mut excess = list.len() - window.cap;
            let mut i = list.len();
            while excess > 0 && i > 0 {
                i -= 1;
                if list[i].rejected {
                    list.remove(i);
                    excess -= 1;
                }
            }
        }
    } else {
        list.truncate(window.ef);
    }
}

/// Candidates not known to be rejected.
fn counted(list: &[Candidate]) -> usize {
    list.iter().filter(|c| !c.rejected).count()
}

fn insert_sorted(list: &mut Vec<Candidate>, c: Candidate) {
    let at = list.partition_point(|x| x.distance <= c.distance);
    list.insert(at, c);
}
