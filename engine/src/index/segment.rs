//! An open, read-only index segment: what RAM holds (codes, quantizer,
//! upper layers) and how to reach what the disk holds (node pages).
//!
//! Invariant: every structure was validated when the segment was opened, so
//! search never indexes out of bounds on a corrupt file; node pages, which
//! are not read at open, are verified page by page as they arrive.

use std::ops::Range;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use omen_format::segment::layout::{
    BUILDER_FLAT, INCOMPAT_FLAT_INDEX, INDEX_VERSION, IndexHeader, PAGE_PAYLOAD, PAGE_SIZE,
    PAGE_SIZE_U64,
};
use omen_format::segment::{
    OpenOptions, RowLayout, SectionKind, SegmentFile, SegmentInfo, Verify, verify_page,
};
use omen_format::{ElementType, FormatError, Metric};
use zerocopy::FromBytes;

use super::attributes::SegmentAttributes;
use super::node::{NodeLayout, NodeView};
use super::pages::PageSource;
use super::search::{AcceptAll, Filtered, Scratch, search};
use super::{Hit, QueryStats, RowFilter, SearchParams, SegmentOptions};
use crate::graph::UpperLayers;
use crate::io::{IoMode, IoWait};
use crate::quant::Quantizer;
use crate::{EngineError, Result};

/// The candidate list of a filtered walk ([`Segment::search_with`]) holds
/// at most this many times `ef` nodes.
pub const FILTER_LIST_FACTOR: usize = 64;

/// Pages per sequential read in [`Segment::scan_rows`] (1 MiB).
const SCAN_CHUNK_PAGES: usize = 256;

/// A read-only segment, searchable from many threads at once (`&self`).
#[derive(Debug)]
pub struct Segment {
    path: PathBuf,
    info: SegmentInfo,
    base_entry: u32,
    node_layout: NodeLayout,
    rows: RowLayout,
    nodes_offset: u64,
    quantizer: Quantizer,
    /// Serialised size of the quantizer: its model's RAM, to the byte.
    quantizer_bytes: usize,
    codes: Vec<u8>,
    code_len: usize,
    upper: UpperLayers,
    pages: PageSource,
    scratch: Mutex<Vec<Scratch>>,
    attributes: Option<SegmentAttributes>,
    /// A flat index (no graph, SPEC.md §2.5.3): searched by the exact scan.
    flat: bool,
}

impl Segment {
    /// Opens and validates the segment at `path`.
    pub fn open(path: impl AsRef<Path>, options: &SegmentOptions) -> Result<Self> {
        let path = path.as_ref();
        // Every section used below is checksummed by `read_section`.
        let file = SegmentFile::open(
            path,
            OpenOptions {
                verify: Verify::Structure,
            },
        )?;
        let info = file.info().clone();
        let n = info.vector_count;
        let corrupt = |kind: SectionKind, offset: u64, reason: String| {
            EngineError::Format(FormatError::Corrupt {
                path: path.to_path_buf(),
                what: kind.to_string(),
                offset,
                reason,
            })
        };
        if n == 0 || u32::try_from(n).is_err() {
            return Err(corrupt(
                SectionKind::NODES,
                0,
                format!("a segment holds 1..=2^32-1 vectors, this one declares {n}"),
            ));
        }

        let section = *file.require(SectionKind::INDEX_HEADER)?;
        let bytes = file.read_section(&section)?;
        let header = IndexHeader::read_from_bytes(&bytes).map_err(|_| {
            corrupt(
                SectionKind::INDEX_HEADER,
                section.offset,
                format!("{} bytes, expected 64", bytes.len()),
            )
        })?;
        if header.version.get() != INDEX_VERSION {
            return Err(corrupt(
                SectionKind::INDEX_HEADER,
                section.offset,
                format!(
                    "index layout version {} is not {INDEX_VERSION}",
                    header.version.get()
                ),
            ));
        }
        let base_entry = header.base_entry.get();
        if u64::from(base_entry) >= n {
            return Err(corrupt(
                SectionKind::INDEX_HEADER,
                section.offset + 4,
                format!("entry {base_entry} of {n} nodes"),
            ));
        }

        // A flat index is flagged twice, in the superblock (so that older
        // readers refuse it) and in the index header; the two must agree
        // with each other and with the shape of the records.
        let flat = info.incompat_features & INCOMPAT_FLAT_INDEX != 0;
        if flat != (header.builder == BUILDER_FLAT) {
            return Err(corrupt(
                SectionKind::INDEX_HEADER,
                section.offset + 24,
                format!(
                    "builder {} {} a flat index, but the superblock {} the flat-index feature bit",
                    header.builder,
                    if header.builder == BUILDER_FLAT {
                        "marks"
                    } else {
                        "does not mark"
                    },
                    if flat { "sets" } else { "does not set" },
                ),
            ));
        }
        if flat != (header.max_degree.get() == 0) {
            return Err(corrupt(
                SectionKind::INDEX_HEADER,
                section.offset + 8,
                format!(
                    "R = {} in a {} index (a flat index has R = 0, a graph R > 0)",
                    header.max_degree.get(),
                    if flat { "flat" } else { "graph" }
                ),
            ));
        }

        let vector_len = info.dimension as usize * info.element_type.size();
        let nodes = *file.require(SectionKind::NODES)?;
        let record_len = nodes.item_len as usize;
        let node_layout = NodeLayout::from_record_len(vector_len, record_len)
            .filter(|l| l.max_degree == header.max_degree.get() as usize)
            .ok_or_else(|| {
                corrupt(SectionKind::NODES, nodes.offset, format!("records of {record_len} bytes do not hold {vector_len}-byte vectors and R = {}", header.max_degree.get()))
            })?;
        let rows = RowLayout::new(record_len)
            .ok_or_else(|| corrupt(SectionKind::NODES, nodes.offset, "empty records".into()))?;
        if nodes.items != n || rows.pages_for(n) != Some(nodes.pages()) || !nodes.is_paged() {
            return Err(corrupt(
                SectionKind::NODES,
                nodes.offset,
                format!(
                    "{} records in {} pages; the superblock declares {n} vectors",
                    nodes.items,
                    nodes.pages()
                ),
            ));
        }

        let section = *file.require(SectionKind::QUANTIZER)?;
        let quantizer_section = file.read_section(&section)?;
        let quantizer_bytes = quantizer_section.len();
        let quantizer = Quantizer::from_bytes(&quantizer_section, path, section.offset)?;
        if quantizer.dim() != info.dimension as usize || quantizer.metric() != info.metric {
            return Err(corrupt(
                SectionKind::QUANTIZER,
                section.offset,
                format!(
                    "quantizer for {}-d {} vectors in a {}-d {} segment",
                    quantizer.dim(),
                    quantizer.metric(),
                    info.dimension,
                    info.metric
                ),
            ));
        }
        let code_len = quantizer.code_len();
        let section = *file.require(SectionKind::CODES)?;
        // Every query reads a few thousand codes at random.
        let codes = file.read_section_with(&section, &crate::memory::advise_huge_pages)?;
        if Some(codes.len() as u64) != n.checked_mul(code_len as u64)
            || header.code_len.get() as usize != code_len
        {
            return Err(corrupt(
                SectionKind::CODES,
                section.offset,
                format!("{} bytes for {n} codes of {code_len} bytes", codes.len()),
            ));
        }
        let section = *file.require(SectionKind::UPPER_LAYERS)?;
        let upper = UpperLayers::from_bytes(&file.read_section(&section)?, path, section.offset)?;
        if upper.base_count() != n {
            return Err(corrupt(
                SectionKind::UPPER_LAYERS,
                section.offset,
                format!(
                    "built over {} nodes, the segment has {n}",
                    upper.base_count()
                ),
            ));
        }
        if flat && upper.levels() != 0 {
            return Err(corrupt(
                SectionKind::UPPER_LAYERS,
                section.offset,
                format!("{} upper levels in a flat index", upper.levels()),
            ));
        }

        let attributes = SegmentAttributes::open(file, options.attribute_budget)?;
        let pages = PageSource::open(path, options.io, options.queue_depth, options.io_wait)?;
        if options.io == IoMode::Auto {
            tracing::debug!(path = %path.display(), mode = %pages.mode(), "segment opened");
        }
        Ok(Segment {
            path: path.to_path_buf(),
            info,
            base_entry,
            node_layout,
            rows,
            nodes_offset: nodes.offset,
            quantizer,
            quantizer_bytes,
            codes,
            code_len,
            upper,
            pages,
            scratch: Mutex::new(Vec::new()),
            attributes,
            flat,
        })
    }

    /// The `k` nearest neighbours of `query`, closest first, with exact
    /// distances, and what finding them cost.
    pub fn search(
        &self,
        query: &[f32],
        k: usize,
        params: &SearchParams,
    ) -> Result<(Vec<Hit>, QueryStats)> {
        self.check_query(query, k)?;
        if self.flat {
            return self.exact_scan(query, k, 0..self.len() as u32, &AcceptAll, params);
        }
        self.with_scratch(|scratch| search(self, scratch, query, k, params, &AcceptAll, 0))
    }

    /// Like [`Segment::search`], but returns only rows that `filter`
    /// accepts. Rejected rows are still read and followed (they are the
    /// graph's paths to accepted ones); the `ef` window and the early-stop
    /// bound count accepted rows only, so the walk keeps going until it has
    /// `k` accepted rows or runs out of candidates. The candidate list
    /// holds at most [`FILTER_LIST_FACTOR`]` * ef` nodes in all, which
    /// bounds the work of a filter that rejects almost everything (see
    /// `search_filtered` for the strategy that handles those).
    pub fn search_with(
        &self,
        query: &[f32],
        k: usize,
        params: &SearchParams,
        filter: &dyn RowFilter,
    ) -> Result<(Vec<Hit>, QueryStats)> {
        self.check_query(query, k)?;
        let accept = Filtered(filter);
        if self.flat {
            return self.exact_scan(query, k, 0..self.len() as u32, &accept, params);
        }
        let list_cap = params.ef.max(k).max(1).saturating_mul(FILTER_LIST_FACTOR);
        self.with_scratch(|scratch| search(self, scratch, query, k, params, &accept, list_cap))
    }

    pub(crate) fn with_scratch<T>(&self, f: impl FnOnce(&mut Scratch) -> T) -> T {
        let mut scratch = self
            .scratch
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .pop()
            .unwrap_or_default();
        let out = f(&mut scratch);
        self.scratch
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push(scratch);
        out
    }

    /// Number of rows (nodes, vectors) in the segment.
    pub fn len(&self) -> usize {
        self.info.vector_count as usize
    }

    /// Always false: a segment holds at least one vector.
    pub fn is_empty(&self) -> bool {
        self.info.vector_count == 0
    }

    /// The external id and full vector (widened to f32) of row `row`,
    /// read from its page(s) with one random read.
    pub fn read_row(&self, row: u32) -> Result<(u64, Vec<f32>)> {
        if row as usize >= self.len() {
            return Err(EngineError::InvalidArgument(format!(
                "row {row} is out of range: {} has {} rows",
                self.path.display(),
                self.len()
            )));
        }
        let per = self.pages_per_group();
        let group = self.group_of(row);
        let offsets: Vec<u64> = (0..per as u64)
            .map(|p| self.page_offset(group * per as u64 + p))
            .collect();
        let mut payload = vec![0u8; per * PAGE_PAYLOAD];
        self.pages.read(&offsets, &mut |i, page| {
            let bytes = verify_page(page, offsets[i], &self.path, "nodes section")?;
            payload[i * PAGE_PAYLOAD..(i + 1) * PAGE_PAYLOAD].copy_from_slice(bytes);
            Ok(())
        })?;
        let node = self.decode(&payload, row)?;
        let mut vector = Vec::new();
        self.widen(node.vector, &mut vector);
        Ok((node.external_id, vector))
    }

    /// Calls `f(row, id, vector)` for every row in row order, reading the
    /// nodes section sequentially in large chunks through the page cache
    /// (compaction and rebuilds read everything back; one random read per
    /// row would be far slower). Every page is verified; the first error,
    /// from the file or from `f`, stops the scan.
    pub fn scan_rows(&self, mut f: impl FnMut(u32, u64, &[f32]) -> Result<()>) -> Result<()> {
        use std::os::unix::fs::FileExt;
        let file = std::fs::File::open(&self.path).map_err(|e| FormatError::io(&self.path, e))?;
        let per = self.pages_per_group();
        let groups_total = self.rows.pages_for(self.info.vector_count).unwrap_or(0) / per as u64;
        let chunk_groups = (SCAN_CHUNK_PAGES / per).max(1) as u64;
        let mut buf = vec![0u8; chunk_groups as usize * per * PAGE_SIZE];
        let mut payload = vec![0u8; per * PAGE_PAYLOAD];
        let mut widened = Vec::new();
        let mut group = 0u64;
        while group < groups_total {
            let count = chunk_groups.min(groups_total - group);
            let first_page = group * per as u64;
            let bytes = &mut buf[..count as usize * per * PAGE_SIZE];
            file.read_exact_at(bytes, self.page_offset(first_page))
                .map_err(|e| FormatError::io(&self.path, e))?;
            for g in 0..count {
                for p in 0..per {
                    let index = (g as usize * per + p) * PAGE_SIZE;
                    let page: &[u8; PAGE_SIZE] = bytes[index..index + PAGE_SIZE]
                        .try_into()
                        .expect("one page");
                    let offset = self.page_offset(first_page + g * per as u64 + p as u64);
                    let checked = verify_page(page, offset, &self.path, "nodes section")?;
                    payload[p * PAGE_PAYLOAD..(p + 1) * PAGE_PAYLOAD].copy_from_slice(checked);
                }
                for row in self.nodes_in_group(group + g) {
                    let node = self.decode(&payload, row)?;
                    self.widen(node.vector, &mut widened);
                    f(row, node.external_id, &widened)?;
                }
            }
            group += count;
        }
        Ok(())
    }

    /// Searches many queries in parallel on the current rayon pool.
    pub fn search_batch(
        &self,
        queries: &[Vec<f32>],
        k: usize,
        params: &SearchParams,
    ) -> Vec<Result<(Vec<Hit>, QueryStats)>> {
        use rayon::prelude::*;
        queries
            .par_iter()
            .map(|q| self.search(q, k, params))
            .collect()
    }

    pub(crate) fn check_query(&self, query: &[f32], k: usize) -> Result<()> {
        super::check_query(query, k, self.info.dimension as usize, || {
            format!("the segment {}", self.path.display())
        })
    }

    /// What the superblock says.
    pub fn info(&self) -> &SegmentInfo {
        &self.info
    }

    /// The file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The page-reading path in use.
    pub fn io_mode(&self) -> IoMode {
        self.pages.mode()
    }

    /// How a searching thread waits for io_uring reads (`Sleep` when
    /// reading through mmap, which has no completions to wait for).
    pub fn io_wait(&self) -> IoWait {
        self.pages.wait()
    }

    /// The distance the segment was built for.
    pub fn metric(&self) -> Metric {
        self.info.metric
    }

    /// Whether this is a flat index (no graph; every search is the exact
    /// scan of codes with a full-precision rerank). Collections flush
    /// memtables as flat indexes and compaction turns them into graphs.
    pub fn is_flat(&self) -> bool {
        self.flat
    }

    /// The maximum degree `R` of the base layer.
    pub fn max_degree(&self) -> usize {
        self.node_layout.max_degree
    }

    /// Node records per page (1 when records span pages).
    pub fn nodes_per_page(&self) -> usize {
        self.rows.rows_per_page
    }

    /// Bytes of RAM the segment holds for search: codes, quantizer model,
    /// upper layers. (Scratch and rings add a fixed amount per thread.)
    pub fn ram_bytes(&self) -> usize {
        self.codes.len()
            + self.quantizer_bytes
            + self.upper.heap_bytes()
            + self
                .attributes
                .as_ref()
                .map_or(0, SegmentAttributes::ram_bytes)
    }

    pub(crate) fn attributes(&self) -> Option<&SegmentAttributes> {
        self.attributes.as_ref()
    }

    pub(crate) fn quantizer(&self) -> &Quantizer {
        &self.quantizer
    }

    pub(crate) fn code_len(&self) -> usize {
        self.code_len
    }

    pub(crate) fn codes(&self) -> &[u8] {
        &self.codes
    }

    pub(crate) fn upper(&self) -> &UpperLayers {
        &self.upper
    }

    pub(crate) fn base_entry(&self) -> u32 {
        self.base_entry
    }

    pub(crate) fn pages(&self) -> &PageSource {
        &self.pages
    }

    /// The page group holding node `id`: one page shared by several nodes,
    /// or the run of pages of one large node.
    pub(crate) fn group_of(&self, id: u32) -> u64 {
        u64::from(id) / self.rows.rows_per_page as u64
    }

    /// Pages per group.
    pub(crate) fn pages_per_group(&self) -> usize {
        self.rows.pages_per_row
    }

    /// File offset of page `page` of the nodes section.
    pub(crate) fn page_offset(&self, page: u64) -> u64 {
        self.nodes_offset + page * PAGE_SIZE_U64
    }

    /// The nodes stored in `group`.
    pub(crate) fn nodes_in_group(&self, group: u64) -> Range<u32> {
        let rpp = self.rows.rows_per_page as u64;
        let start = group * rpp;
        let end = (start + rpp).min(self.info.vector_count);
        start as u32..end as u32
    }

    /// Decodes node `id` from the payload of its group.
    pub(crate) fn decode<'a>(&self, payload: &'a [u8], id: u32) -> Result<NodeView<'a>> {
        let rpp = self.rows.rows_per_page;
        let at = (id as usize % rpp) * self.rows.row_len;
        let record = payload.get(at..at + self.rows.row_len).unwrap_or_default();
        self.node_layout
            .decode(record, self.info.vector_count)
            .map_err(|e| {
                let (page, _) = self.rows.locate(u64::from(id));
                EngineError::Format(FormatError::Corrupt {
                    path: self.path.clone(),
                    what: format!("node {id} in the nodes section"),
                    offset: self.page_offset(page) + (at % PAGE_PAYLOAD) as u64,
                    reason: e.0,
                })
            })
    }

    /// Widens a stored vector to f32.
    pub(crate) fn widen(&self, bytes: &[u8], out: &mut Vec<f32>) {
        widen_bytes(self.info.element_type, bytes, out);
    }
}

/// Widens little-endian vector bytes of `element_type` into `out`.
pub(crate) fn widen_bytes(element_type: ElementType, bytes: &[u8], out: &mut Vec<f32>) {
    out.clear();
    match element_type {
        ElementType::F32 => out.extend(
            bytes
                .chunks_exact(4)
                .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]])),
        ),
        ElementType::F16 => out.extend(
            bytes
                .chunks_exact(2)
                .map(|c| half::f16::from_le_bytes([c[0], c[1]]).to_f32()),
        ),
        ElementType::U8 => out.extend(bytes.iter().map(|&b| f32::from(b))),
        ElementType::I8 => out.extend(bytes.iter().map(|&b| f32::from(b as i8))),
    }
}
