//! The upper layers of the HNSW-IF index, held in RAM: small graphs over the
//! nodes whose HNSW level is at least 1, searched greedily from the top to
//! find where the disk-resident base layer should start.
//!
//! Levels follow HNSW: node `i` has level `floor(-ln(u_i) * mL)` with
//! `mL = 1 / ln(M)` and `u_i` uniform in `(0, 1]`, drawn from a hash of
//! `(seed, i)` so that no per-node state is kept. About `1 / M` of the nodes
//! reach level 1, `1 / M^2` level 2, and so on. Each level is a graph of
//! degree at most `M` built with the base builder (Vamana, over the full
//! vectors of that level's nodes). At search time only a distance closure
//! is needed, so the caller can score nodes with compressed codes.
//!
//! Invariant: level `l + 1`'s nodes are a subset of level `l`'s; each level
//! lists its nodes' global ids in strictly ascending order and stores
//! neighbours as indices into that list (`u32`, CSR); the entry node is on
//! the top level. [`UpperLayers::from_bytes`] checks all of it.
//!
//! # Byte layout (version 1)
//!
//! All integers are little-endian. The encoding is dense: a level record
//! starts where the previous one ends, and every record is a multiple of 4
//! bytes long.
//!
//! ```text
//! header (32 bytes)
//!  0       4       6       8       12      16              24              32
//!  +-------+-------+-------+-------+-------+---------------+---------------+
//!  | magic |version|  M    |levels | entry | base_count    | reserved (0)  |
//!  +-------+-------+-------+-------+-------+---------------+---------------+
//!
//! then, for level l = 1 ..= levels:
//!  0       4       8
//!  +-------+-------+-------------+-------------+-----+---------------------+
//!  |count c|edges e| nodes: c*u32| degrees:    | pad | neighbours: e*u32   |
//!  |       |       | (global ids)| c*u16       |0/2  | (indices into nodes)|
//!  +-------+-------+-------------+-------------+-----+---------------------+
//! ```
//!
//! | offset | size | field | meaning | reader's check |
//! |---:|---:|---|---|---|
//! | 0 | 4 | magic | `4F 55 50 4C` ("OUPL") | else corrupt |
//! | 4 | 2 | version | 1 | else corrupt |
//! | 6 | 2 | max_degree `M` | bound on every degree | 0 is corrupt |
//! | 8 | 4 | levels | number of level records, at most 64 | else corrupt |
//! | 12 | 4 | entry | global id of the search entry; `0xFFFF_FFFF` iff `levels = 0` | must be a node of the top level |
//! | 16 | 8 | base_count | vectors in the base layer; every id is below it | at most `2^32 - 1` |
//! | 24 | 8 | reserved | zero | else corrupt |
//!
//! Per level record (`l` counts from 1):
//!
//! | field | size | meaning | reader's check |
//! |---|---:|---|---|
//! | count `c` | 4 | nodes on this level | `1 ..= ` previous level's count (level 1: `base_count`) |
//! | edges `e` | 4 | total neighbours on this level | `<= c * M`; equals the sum of degrees |
//! | nodes | `4c` | global ids, strictly ascending, `< base_count` | for `l >= 2`, each is a node of level `l - 1` |
//! | degrees | `2c` | out-degree of each node, in node order | each `<= M` |
//! | pad | 2 if `c` is odd, else 0 | zero | else corrupt |
//! | neighbours | `4e` | node 0's list, then node 1's, ...: indices `< c` into this level's nodes | no self loop, no repeat within a list |
//!
//! The buffer must end exactly after the last level record. Integrity
//! (checksums) is the container's job; this decoder guards against
//! structural corruption and never panics or over-allocates on any input.
//!
//! RAM per upper node: 4 bytes of id, 4 of CSR offset and 4 per edge; with
//! `M = 32` and degrees near `M / 2` this is about `(8 + 4 * 16) / 31`,
//! roughly 2.3 bytes per *base* vector.

#![deny(clippy::unwrap_used, clippy::indexing_slicing)]

use std::path::Path;

use super::build::{BuildParams, build_graph};
use super::reorder::Permutation;
use super::rng::unit_for;
use super::search::{Adjacency, Candidate, Neighbour, search_core};
use super::visited::VisitedIds;
use crate::distance::Element;
use crate::vectors::VectorSet;
use crate::{EngineError, Metric, Result};

/// `"OUPL"`: identifies an upper-layers blob.
pub const MAGIC: [u8; 4] = *b"OUPL";
/// The encoding version written by [`UpperLayers::to_bytes`].
pub const VERSION: u16 = 1;
/// Header bytes.
pub const HEADER_LEN: usize = 32;
/// Most levels a file may declare: with `M >= 2` a level above 64 needs
/// `2^64` nodes.
pub const MAX_LEVELS: usize = 64;
/// The entry field when there are no levels.
const NO_ENTRY: u32 = u32::MAX;

/// Parameters of the upper layers.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct UpperParams {
    /// `M_upper`: the level multiplier's base and every level's degree bound.
    pub max_degree: usize,
    /// List size of the per-level builds.
    pub list_size: usize,
    /// Seed of the level draws.
    pub seed: u64,
}

impl UpperParams {
    /// `M` with a build list size of `2M` (ample for graphs this small).
    pub fn new(max_degree: usize) -> Self {
        UpperParams {
            max_degree,
            list_size: 2 * max_degree,
            seed: 0x000E_4E0B,
        }
    }
}

/// The HNSW level of node `id`: `floor(-ln(u) / ln(M))`.
pub fn level_of(id: u32, max_degree: usize, seed: u64) -> usize {
    let u = unit_for(seed, u64::from(id));
    let ml = 1.0 / (max_degree.max(2) as f64).ln();
    ((-u.ln() * ml).floor() as usize).min(MAX_LEVELS)
}

/// One level: CSR adjacency over local indices.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Level {
    /// Global ids, strictly ascending.
    nodes: Vec<u32>,
    /// `nodes.len() + 1` offsets into `edges`.
    offsets: Vec<u32>,
    /// Neighbours as local indices.
    edges: Vec<u32>,
}

impl Level {
    fn local(&self, global: u32) -> Option<u32> {
        self.nodes.binary_search(&global).ok().map(|i| i as u32)
    }

    fn list(&self, local: u32) -> &[u32] {
        let i = local as usize;
        match (self.offsets.get(i), self.offsets.get(i + 1)) {
            (Some(&a), Some(&b)) => self.edges.get(a as usize..b as usize).unwrap_or(&[]),
            _ => &[],
        }
    }

    fn global(&self, local: u32) -> u32 {
        self.nodes.get(local as usize).copied().unwrap_or(NO_ENTRY)
    }
}

impl Adjacency for Level {
    fn neighbours_into(&self, id: u32, out: &mut Vec<u32>) {
        out.clear();
        out.extend_from_slice(self.list(id));
    }
}

/// The RAM-resident upper layers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UpperLayers {
    base_count: u64,
    max_degree: usize,
    entry: u32,
    /// `levels[0]` is level 1.
    levels: Vec<Level>,
}

/// The vectors of a subset of nodes, addressed by position in `ids`.
struct Subset<'a, V: ?Sized> {
    base: &'a V,
    ids: &'a [u32],
}

impl<T: Element, V: VectorSet<T> + ?Sized> VectorSet<T> for Subset<'_, V> {
    fn len(&self) -> usize {
        self.ids.len()
    }

    fn dim(&self) -> usize {
        self.base.dim()
    }

    fn get(&self, id: usize) -> &[T] {
        #[expect(
            clippy::indexing_slicing,
            reason = "ids are internal; the trait panics out of range"
        )]
        self.base.get(self.ids[id] as usize)
    }
}

impl UpperLayers {
    /// The nodes above the base layer among `n`, ascending: whose rows
    /// [`UpperLayers::build_from_tall_rows`] needs.
    pub fn tall_ids(n: usize, params: &UpperParams) -> Vec<u32> {
        (0..n.min(u32::MAX as usize) as u32)
            .filter(|&i| level_of(i, params.max_degree, params.seed) >= 1)
            .collect()
    }

    /// Draws every node's level and builds each level's graph over the
    /// full vectors. `params.max_degree` must be in `2..=65535`.
    pub fn build<T: Element, V: VectorSet<T> + ?Sized>(
        vectors: &V,
        metric: Metric,
        params: &UpperParams,
    ) -> Result<Self> {
        let tall = Self::tall_ids(vectors.len(), params);
        let rows = Subset {
            base: vectors,
            ids: &tall,
        };
        Self::build_from_tall_rows(&rows, vectors.len(), metric, params)
    }

    /// As [`UpperLayers::build`] over `n` nodes, given only the rows of
    /// the tall ones: `rows.get(i)` is the vector of node
    /// `tall_ids(n, params)[i]`. A segment build reads just these (one in
    /// `M`) and addresses them by position, with no lookup per distance.
    pub fn build_from_tall_rows<T: Element, V: VectorSet<T> + ?Sized>(
        rows: &V,
        n: usize,
        metric: Metric,
        params: &UpperParams,
    ) -> Result<Self> {
        if !(2..=usize::from(u16::MAX)).contains(&params.max_degree) {
            return Err(EngineError::InvalidArgument(format!(
                "upper-layer degree must be in 2..=65535, got {}",
                params.max_degree
            )));
        }
        if u32::try_from(n).map_or(true, |n| n == u32::MAX) {
            return Err(EngineError::InvalidArgument(format!(
                "too many vectors: {n}"
            )));
        }
        // (id, level) of every node above the base layer, ascending by id.
        let tall: Vec<(u32, usize)> = Self::tall_ids(n, params)
            .into_iter()
            .map(|i| (i, level_of(i, params.max_degree, params.seed)))
            .collect();
        if rows.len() != tall.len() {
            return Err(EngineError::InvalidArgument(format!(
                "{} rows for the {} nodes above the base layer",
                rows.len(),
                tall.len()
            )));
        }
        let top = tall.iter().map(|&(_, l)| l).max().unwrap_or(0);
        let mut levels = Vec::with_capacity(top);
        let mut entry = NO_ENTRY;
        for l in 1..=top {
            let (positions, nodes): (Vec<u32>, Vec<u32>) = tall
                .iter()
                .enumerate()
                .filter(|&(_, &(_, lv))| lv >= l)
                .map(|(at, &(i, _))| (at as u32, i))
                .unzip();
            let build = BuildParams {
                seed: params.seed ^ l as u64,
                ..BuildParams::vamana(params.max_degree, params.list_size.max(1))
            };
            let sub = Subset {
                base: rows,
                ids: &positions,
            };
            let g = build_graph(&sub, metric, &build, &|_, _| {})?;
            let mut offsets = Vec::with_capacity(nodes.len() + 1);
            let mut edges = Vec::with_capacity(g.edge_count() as usize);
            offsets.push(0u32);
            for i in 0..nodes.len() as u32 {
                edges.extend_from_slice(g.neighbours(i));
                offsets.push(edges.len() as u32);
            }
            entry = nodes.get(g.entry() as usize).copied().unwrap_or(NO_ENTRY);
            levels.push(Level {
                nodes,
                offsets,
                edges,
            });
        }
        Ok(UpperLayers {
            base_count: n as u64,
            max_degree: params.max_degree,
            entry,
            levels,
        })
    }

    /// No level above the base layer: what a flat index (one without a
    /// graph) stores. `max_degree` is kept only because the encoding
    /// requires a non-zero bound.
    pub fn empty(base_count: u64, max_degree: usize) -> Self {
        UpperLayers {
            base_count,
            max_degree: max_degree.clamp(1, usize::from(u16::MAX)),
            entry: NO_ENTRY,
            levels: Vec::new(),
        }
    }

    /// Number of levels above the base layer.
    pub fn levels(&self) -> usize {
        self.levels.len()
    }

    /// Number of base-layer vectors these layers index.
    pub fn base_count(&self) -> u64 {
        self.base_count
    }

    /// The degree bound `M`.
    pub fn max_degree(&self) -> usize {
        self.max_degree
    }

    /// Where descents start; `None` without levels.
    pub fn entry(&self) -> Option<u32> {
        (!self.levels.is_empty()).then_some(self.entry)
    }

    /// Global ids of the nodes on `level` (1-based), ascending.
    pub fn nodes(&self, level: usize) -> &[u32] {
        level
            .checked_sub(1)
            .and_then(|i| self.levels.get(i))
            .map_or(&[], |l| l.nodes.as_slice())
    }

    /// Global ids of the neighbours of `global` on `level`, or `None` if it
    /// is not on that level.
    pub fn neighbours(&self, level: usize, global: u32) -> Option<Vec<u32>> {
        let lv = self.levels.get(level.checked_sub(1)?)?;
        let local = lv.local(global)?;
        Some(lv.list(local).iter().map(|&v| lv.global(v)).collect())
    }

    /// RAM held, in bytes (ids, offsets and edges).
    pub fn heap_bytes(&self) -> usize {
        self.levels
            .iter()
            .map(|l| 4 * (l.nodes.len() + l.offsets.len() + l.edges.len()))
            .sum()
    }

    /// Descends from the top: greedy on every level above 1, then a beam
    /// search with `list_size` on level 1. Returns level 1's closest nodes
    /// (global ids, closest first) as entry candidates for the base layer,
    /// or nothing if there are no levels. `distance(id)` is the query's
    /// distance to global node `id`; each node is scored at most once per
    /// level. `prefetch(id)` is told of the nodes about to be scored, a
    /// neighbour list at a time, so that it can start loading their codes.
    pub fn descend(
        &self,
        distance: &mut dyn FnMut(u32) -> f32,
        prefetch: &dyn Fn(u32),
        list_size: usize,
    ) -> Vec<Neighbour> {
        let mut current = self.entry;
        let mut list: Vec<Candidate> = Vec::new();
        let mut buf = Vec::new();
        let mut scores = Vec::new();
        let mut visited = VisitedIds::default();
        for (i, level) in self.levels.iter().enumerate().rev() {
            let Some(start) = level.local(current) else {
                return Vec::new();
            };
            let l = if i == 0 { list_size.max(1) } else { 1 };
            visited.clear();
            let mut local_distance = |v: u32| distance(level.global(v));
            search_core(
                level,
                &[start],
                l,
                &mut local_distance,
                &mut visited,
                &mut list,
                &mut buf,
                &mut scores,
                &mut |_| {},
                &|v| prefetch(level.global(v)),
            );
            match list.first() {
                Some(best) => current = level.global(best.n.id),
                None => return Vec::new(),
            }
            if i == 0 {
                return list
                    .iter()
                    .map(|c| Neighbour {
                        id: level.global(c.n.id),
                        distance: c.n.distance,
                    })
                    .collect();
            }
        }
        Vec::new()
    }

    /// The same layers with node ids renamed by `perm` (old id `i` becomes
    /// `perm.old_to_new[i]`), for use with a reordered base layer.
    pub fn relabel(&self, perm: &Permutation) -> Self {
        let map = |g: u32| perm.old_to_new.get(g as usize).copied().unwrap_or(NO_ENTRY);
        let levels = self
            .levels
            .iter()
            .map(|lv| {
                // (new id, old local index), sorted by new id.
                let mut order: Vec<(u32, u32)> = lv
                    .nodes
                    .iter()
                    .enumerate()
                    .map(|(i, &g)| (map(g), i as u32))
                    .collect();
                order.sort_unstable();
                let mut new_local = vec![0u32; order.len()];
                for (new, &(_, old)) in order.iter().enumerate() {
                    if let Some(slot) = new_local.get_mut(old as usize) {
                        *slot = new as u32;
                    }
                }
                let mut offsets = Vec::with_capacity(order.len() + 1);
                let mut edges = Vec::with_capacity(lv.edges.len());
                offsets.push(0);
                for &(_, old) in &order {
                    edges.extend(
                        lv.list(old)
                            .iter()
                            .map(|&v| new_local.get(v as usize).copied().unwrap_or(NO_ENTRY)),
                    );
                    offsets.push(edges.len() as u32);
                }
                Level {
                    nodes: order.iter().map(|&(g, _)| g).collect(),
                    offsets,
                    edges,
                }
            })
            .collect();
        UpperLayers {
            base_count: self.base_count,
            max_degree: self.max_degree,
            entry: if self.levels.is_empty() {
                NO_ENTRY
            } else {
                map(self.entry)
            },
            levels,
        }
    }

    /// Encodes the layers (see the module documentation for the layout).
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(HEADER_LEN + self.heap_bytes());
        out.extend_from_slice(&MAGIC);
        out.extend_from_slice(&VERSION.to_le_bytes());
        out.extend_from_slice(&(self.max_degree as u16).to_le_bytes());
        out.extend_from_slice(&(self.levels.len() as u32).to_le_bytes());
        out.extend_from_slice(&self.entry().unwrap_or(NO_ENTRY).to_le_bytes());
        out.extend_from_slice(&self.base_count.to_le_bytes());
        out.extend_from_slice(&[0u8; 8]);
        for lv in &self.levels {
            out.extend_from_slice(&(lv.nodes.len() as u32).to_le_bytes());
            out.extend_from_slice(&(lv.edges.len() as u32).to_le_bytes());
            for &g in &lv.nodes {
                out.extend_from_slice(&g.to_le_bytes());
            }
            for w in lv.offsets.windows(2) {
                if let [a, b] = w {
                    out.extend_from_slice(&((b - a) as u16).to_le_bytes());
                }
            }
            if lv.nodes.len() % 2 == 1 {
                out.extend_from_slice(&[0, 0]);
            }
            for &e in &lv.edges {
                out.extend_from_slice(&e.to_le_bytes());
            }
        }
        out
    }

    /// Decodes [`to_bytes`](Self::to_bytes)'s output, checking every rule of
    /// the layout. `path` and `section_offset` (where `bytes` starts in the
    /// file) only locate errors: a violation is
    /// [`FormatError::Corrupt`](omen_format::FormatError::Corrupt) with the
    /// file offset of the offending field.
    pub fn from_bytes(bytes: &[u8], path: &Path, section_offset: u64) -> Result<Self> {
        let mut r = Reader {
            bytes,
            pos: 0,
            path,
            base: section_offset,
        };
        let magic = r.take(4, "magic")?;
        if magic != MAGIC {
            return Err(r.corrupt_at(0, "header", format!("bad magic {magic:02x?}")));
        }
        let version = r.u16("version")?;
        if version != VERSION {
            return Err(r.corrupt_at(4, "header", format!("unsupported version {version}")));
        }
        let max_degree = usize::from(r.u16("max_degree")?);
        if max_degree == 0 {
            return Err(r.corrupt_at(6, "header", "max_degree is 0".into()));
        }
        let level_count = r.u32("levels")? as usize;
        if level_count > MAX_LEVELS {
            return Err(r.corrupt_at(8, "header", format!("{level_count} levels > {MAX_LEVELS}")));
        }
        let entry = r.u32("entry")?;
        let base_count = r.u64("base_count")?;
        if base_count >= u64::from(u32::MAX) {
            return Err(r.corrupt_at(16, "header", format!("base_count {base_count} too large")));
        }
        let reserved = r.u64("reserved")?;
        if reserved != 0 {
            return Err(r.corrupt_at(24, "header", "reserved bytes are not zero".into()));
        }
        if level_count == 0 && entry != NO_ENTRY {
            return Err(r.corrupt_at(12, "header", "entry set without levels".into()));
        }
        let mut levels: Vec<Level> = Vec::with_capacity(level_count);
        let mut limit = base_count;
        for l in 1..=level_count {
            let what = format!("upper level {l}");
            let record = r.pos;
            let count = r.u32(&what)?;
            if count == 0 || u64::from(count) > limit {
                return Err(r.corrupt_at(
                    record,
                    &what,
                    format!("node count {count} not in 1..={limit}"),
                ));
            }
            let c = count as usize;
            let edges_total = r.u32(&what)?;
            if u64::from(edges_total) > count as u64 * max_degree as u64 {
                return Err(r.corrupt_at(
                    record + 4,
                    &what,
                    format!("{edges_total} edges exceed {count} nodes x degree {max_degree}"),
                ));
            }
            // Every allocation below is bounded by bytes actually present.
            let node_start = r.pos;
            let node_bytes = r.take(4 * c, &what)?;
            let mut nodes = Vec::with_capacity(c);
            for (k, chunk) in node_bytes.chunks_exact(4).enumerate() {
                let g = le_u32(chunk);
                if u64::from(g) >= base_count {
                    return Err(r.corrupt_at(
                        node_start + 4 * k,
                        &what,
                        format!("node id {g} >= base_count"),
                    ));
                }
                if nodes.last().is_some_and(|&p| p >= g) {
                    return Err(r.corrupt_at(
                        node_start + 4 * k,
                        &what,
                        "node ids not strictly ascending".into(),
                    ));
                }
                nodes.push(g);
            }
            if let Some(below) = levels.last()
                && let Some(k) = nodes.iter().position(|&g| below.local(g).is_none())
            {
                return Err(r.corrupt_at(
                    node_start + 4 * k,
                    &what,
                    format!(
                        "node {} is not on level {}",
                        nodes.get(k).copied().unwrap_or(0),
                        l - 1
                    ),
                ));
            }
            let deg_start = r.pos;
            let deg_bytes = r.take(2 * c, &what)?;
            let mut offsets = Vec::with_capacity(c + 1);
            offsets.push(0u32);
            let mut sum = 0u64;
            for (k, chunk) in deg_bytes.chunks_exact(2).enumerate() {
                let d = u16::from_le_bytes([
                    chunk.first().copied().unwrap_or(0),
                    chunk.get(1).copied().unwrap_or(0),
                ]);
                if usize::from(d) > max_degree {
                    return Err(r.corrupt_at(
                        deg_start + 2 * k,
                        &what,
                        format!("degree {d} > {max_degree}"),
                    ));
                }
                sum += u64::from(d);
                if sum > u64::from(edges_total) {
                    return Err(r.corrupt_at(
                        deg_start + 2 * k,
                        &what,
                        format!("degrees exceed {edges_total} edges"),
                    ));
                }
                offsets.push(sum as u32);
            }
            if sum != u64::from(edges_total) {
                return Err(r.corrupt_at(
                    record + 4,
                    &what,
                    format!("degrees sum to {sum}, not {edges_total}"),
                ));
            }
            if c % 2 == 1 {
                let pad_at = r.pos;
                if r.take(2, &what)? != [0, 0] {
                    return Err(r.corrupt_at(pad_at, &what, "padding is not zero".into()));
                }
            }
            let edge_start = r.pos;
            let edge_bytes = r.take(4 * edges_total as usize, &what)?;
            let edges: Vec<u32> = edge_bytes.chunks_exact(4).map(le_u32).collect();
            let mut seen = Vec::with_capacity(max_degree);
            for (i, w) in offsets.windows(2).enumerate() {
                let (a, b) = match w {
                    [a, b] => (*a as usize, *b as usize),
                    _ => continue,
                };
                let list = edges.get(a..b).unwrap_or(&[]);
                seen.clear();
                for (k, &v) in list.iter().enumerate() {
                    let at = edge_start + 4 * (a + k);
                    if v as usize >= c {
                        return Err(r.corrupt_at(at, &what, format!("neighbour index {v} >= {c}")));
                    }
                    if v as usize == i {
                        return Err(r.corrupt_at(
                            at,
                            &what,
                            format!("node index {i} has a self loop"),
                        ));
                    }
                    seen.push(v);
                }
                seen.sort_unstable();
                if seen.windows(2).any(|p| p.first() == p.get(1)) {
                    return Err(r.corrupt_at(
                        edge_start + 4 * a,
                        &what,
                        format!("node index {i} repeats a neighbour"),
                    ));
                }
            }
            limit = u64::from(count);
            levels.push(Level {
                nodes,
                offsets,
                edges,
            });
        }
        if r.pos != bytes.len() {
            return Err(r.corrupt_at(
                r.pos,
                "upper layers",
                format!("{} trailing bytes", bytes.len() - r.pos),
            ));
        }
        if let Some(top) = levels.last()
            && top.local(entry).is_none()
        {
            return Err(r.corrupt_at(
                12,
                "header",
                format!("entry {entry} is not on the top level"),
            ));
        }
        Ok(UpperLayers {
            base_count,
            max_degree,
            entry,
            levels,
        })
    }
}

fn le_u32(chunk: &[u8]) -> u32 {
    let mut b = [0u8; 4];
    for (d, s) in b.iter_mut().zip(chunk) {
        *d = *s;
    }
    u32::from_le_bytes(b)
}

/// A bounds-checked cursor that turns every shortfall into a corruption
/// error at the right file offset.
struct Reader<'a> {
    bytes: &'a [u8],
    pos: usize,
    path: &'a Path,
    base: u64,
}

impl<'a> Reader<'a> {
    fn corrupt_at(&self, local: usize, what: &str, reason: String) -> EngineError {
        EngineError::Format(omen_format::FormatError::Corrupt {
            path: self.path.to_path_buf(),
            what: what.to_string(),
            offset: self.base.saturating_add(local as u64),
            reason,
        })
    }

    fn take(&mut self, len: usize, what: &str) -> Result<&'a [u8]> {
        let end = self.pos.checked_add(len);
        match end.and_then(|e| self.bytes.get(self.pos..e)) {
            Some(s) => {
                self.pos += len;
                Ok(s)
            }
            None => Err(self.corrupt_at(
                self.pos,
                what,
                format!(
                    "needs {len} bytes, {} left",
                    self.bytes.len().saturating_sub(self.pos)
                ),
            )),
        }
    }

    fn u16(&mut self, what: &str) -> Result<u16> {
        let s = self.take(2, what)?;
        Ok(u16::from_le_bytes([
            s.first().copied().unwrap_or(0),
            s.get(1).copied().unwrap_or(0),
        ]))
    }

    fn u32(&mut self, what: &str) -> Result<u32> {
        Ok(le_u32(self.take(4, what)?))
    }

    fn u64(&mut self, what: &str) -> Result<u64> {
        let s = self.take(8, what)?;
        let mut b = [0u8; 8];
        for (d, x) in b.iter_mut().zip(s) {
            *d = *x;
        }
        Ok(u64::from_le_bytes(b))
    }
}
