//! An open, read-only index segment: what RAM holds (codes, quantizer,
//! upper layers) and how to reach what the disk holds (node pages).
//!
//! Invariant: every structure was validated when the segment was opened, so
//! search never indexes out of bounds on a corrupt file; node pages, which
//! are not read at open, are verified page by page as they arrive.

use std::ops::Range;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use omen_format::segment::layout::{INDEX_VERSION, IndexHeader, PAGE_PAYLOAD, PAGE_SIZE_U64};
use omen_format::segment::{OpenOptions, RowLayout, SectionKind, SegmentFile, SegmentInfo, Verify};
use omen_format::{ElementType, FormatError, Metric};
use zerocopy::FromBytes;

use super::node::{NodeLayout, NodeView};
use super::pages::PageSource;
use super::search::{Scratch, search};
use super::{Hit, QueryStats, SearchParams, SegmentOptions};
use crate::graph::UpperLayers;
use crate::io::IoMode;
use crate::quant::Quantizer;
use crate::{EngineError, Result};

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
        let codes = file.read_section(&section)?;
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

        let pages = PageSource::open(path, options.io, options.queue_depth)?;
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
        let mut scratch = self
            .scratch
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .pop()
            .unwrap_or_default();
        let out = search(self, &mut scratch, query, k, params);
        self.scratch
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push(scratch);
        out
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

    fn check_query(&self, query: &[f32], k: usize) -> Result<()> {
        if query.len() != self.info.dimension as usize {
            return Err(EngineError::InvalidArgument(format!(
                "query has {} dimensions, the segment {} has {}",
                query.len(),
                self.path.display(),
                self.info.dimension
            )));
        }
        if let Some(i) = query.iter().position(|x| !x.is_finite()) {
            return Err(EngineError::InvalidArgument(format!(
                "query component {i} is {}; queries must be finite",
                query[i]
            )));
        }
        if k == 0 {
            return Err(EngineError::InvalidArgument("k must be at least 1".into()));
        }
        Ok(())
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

    /// The distance the segment was built for.
    pub fn metric(&self) -> Metric {
        self.info.metric
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
        self.codes.len() + self.quantizer_bytes + self.upper.heap_bytes()
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
