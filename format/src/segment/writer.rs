//! Writing a segment: sections are streamed to a temporary file, then the
//! directory, then the superblock; the file is fsynced and only then renamed
//! to its final name (and the directory fsynced), so a reader never sees a
//! half-written segment under the final name, whatever happens mid-write.
//!
//! Memory stays bounded by one page plus the caller's buffers: a paged
//! section of 100 GB is written page by page.

#![expect(
    clippy::indexing_slicing,
    reason = "the writer only indexes buffers it sized itself; it parses no input bytes"
)]

use std::collections::BTreeMap;
use std::hash::{BuildHasher, Hasher};
use std::path::{Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};

use xxhash_rust::xxh3::Xxh3;
use zerocopy::{FromZeros, IntoBytes};

use super::attributes::{AttributeColumns, encode_section};
use super::kind::SectionKind;
use super::layout::*;
use super::page::{RowLayout, seal_page};
use super::reader::SegmentFile;
use crate::atomic::AtomicFile;
use crate::{ElementType, FormatError, Metric, Result};

/// What the superblock says about the segment as a whole.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SegmentHeader {
    pub element_type: ElementType,
    pub metric: Metric,
    pub dimension: u32,
    pub vector_count: u64,
    pub uuid: [u8; 16],
    pub created_unix_micros: u64,
    pub compat_features: u64,
    pub incompat_features: u64,
}

impl SegmentHeader {
    /// A header with a fresh random UUID and the current time.
    pub fn new(
        element_type: ElementType,
        metric: Metric,
        dimension: u32,
        vector_count: u64,
    ) -> Self {
        let created_unix_micros = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_micros() as u64)
            .unwrap_or(0);
        SegmentHeader {
            element_type,
            metric,
            dimension,
            vector_count,
            uuid: random_uuid(),
            created_unix_micros,
            compat_features: 0,
            incompat_features: 0,
        }
    }
}

/// A version-4 UUID from the standard library's OS-seeded hasher keys.
fn random_uuid() -> [u8; 16] {
    let mut bytes = [0u8; 16];
    for (i, chunk) in bytes.chunks_mut(8).enumerate() {
        let mut h = std::collections::hash_map::RandomState::new().build_hasher();
        h.write_usize(i);
        h.write_u128(
            SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .map(|d| d.as_nanos())
                .unwrap_or(0),
        );
        h.write_u32(std::process::id());
        chunk.copy_from_slice(&h.finish().to_le_bytes());
    }
    bytes[6] = (bytes[6] & 0x0f) | 0x40;
    bytes[8] = (bytes[8] & 0x3f) | 0x80;
    bytes
}

/// How a section's bytes are stored.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Encoding {
    Raw,
    /// One LZ4 block; for metadata, never for sections read at random.
    Lz4,
}

/// Streams a segment into `<path>.tmp`; [`SegmentWriter::finish`] publishes it.
/// Dropping an unfinished writer deletes the temporary file.
#[derive(Debug)]
pub struct SegmentWriter {
    out: AtomicFile,
    header: SegmentHeader,
    pos: u64,
    entries: Vec<SectionEntry>,
}

impl SegmentWriter {
    /// Starts a segment that will be published at `path`.
    pub fn create(path: impl AsRef<Path>, header: SegmentHeader) -> Result<Self> {
        validate_header(&header)?;
        let mut writer = SegmentWriter {
            out: AtomicFile::create(path.as_ref())?,
            header,
            pos: 0,
            entries: Vec::new(),
        };
        // Page 0 is reserved for the superblock, written last.
        writer.write_all(&[0u8; PAGE_SIZE])?;
        Ok(writer)
    }

    /// Starts a segment at `path` that holds every section of `existing`,
    /// copied byte for byte to the same offsets (so paged sections keep
    /// their offset-seeded page checksums), ready for more sections: adding
    /// attributes to a built index without rebuilding it. The copy gets a
    /// fresh UUID and creation time.
    pub fn extend(existing: &SegmentFile, path: impl AsRef<Path>) -> Result<Self> {
        use std::os::unix::fs::FileExt;
        let info = existing.info();
        let mut header = SegmentHeader::new(
            info.element_type,
            info.metric,
            info.dimension,
            info.vector_count,
        );
        header.compat_features = info.compat_features;
        header.incompat_features = info.incompat_features;
        let mut writer = SegmentWriter::create(path, header)?;
        let source = std::fs::File::open(existing.path())
            .map_err(|e| FormatError::io(existing.path(), e))?;
        let end = existing
            .sections()
            .last()
            .map_or(PAGE_SIZE_U64, |s| s.offset + s.extent());
        let mut buf = vec![0u8; 1 << 20];
        let mut at = PAGE_SIZE_U64;
        while at < end {
            let n = (end - at).min(buf.len() as u64) as usize;
            source
                .read_exact_at(&mut buf[..n], at)
                .map_err(|e| FormatError::io(existing.path(), e))?;
            writer.write_all(&buf[..n])?;
            at += n as u64;
        }
        for s in existing.sections() {
            writer.entries.push(entry(
                s.kind,
                s.flags,
                s.offset,
                s.stored_len,
                s.logical_len,
                s.checksum,
                s.items,
                s.item_len,
            ));
        }
        Ok(writer)
    }

    /// Writes a whole section from memory.
    pub fn write_section(
        &mut self,
        kind: SectionKind,
        bytes: &[u8],
        encoding: Encoding,
        items: u64,
        item_len: u32,
    ) -> Result<()> {
        self.check_new_kind(kind)?;
        let (stored, flags) = match encoding {
            Encoding::Raw => (std::borrow::Cow::Borrowed(bytes), 0),
            Encoding::Lz4 => (
                std::borrow::Cow::Owned(lz4_flex::block::compress(bytes)),
                SECTION_FLAG_LZ4,
            ),
        };
        let offset = self.pos;
        let mut hasher = Xxh3::new();
        hasher.update(&stored);
        self.write_all(&stored)?;
        self.pad_to_page(&mut hasher)?;
        self.entries.push(entry(
            kind,
            flags | required_flag(kind),
            offset,
            stored.len() as u64,
            bytes.len() as u64,
            hasher.digest(),
            items,
            item_len,
        ));
        Ok(())
    }

    /// Writes the metadata section: `key=value` lines, LZ4-compressed.
    pub fn write_metadata(&mut self, metadata: &BTreeMap<String, String>) -> Result<()> {
        let mut text = String::new();
        for (k, v) in metadata {
            if !valid_metadata_key(k) || v.contains('\n') {
                return Err(FormatError::InvalidArgument(format!(
                    "metadata entry {k:?} = {v:?}: keys are [a-z0-9_.]+, values one line"
                )));
            }
            text.push_str(k);
            text.push('=');
            text.push_str(v);
            text.push('\n');
        }
        self.write_section(
            SectionKind::METADATA,
            text.as_bytes(),
            Encoding::Lz4,
            metadata.len() as u64,
            0,
        )
    }

    /// Starts a paged section; pages are added with [`PagedSectionWriter`].
    pub fn paged_section(&mut self, kind: SectionKind) -> Result<PagedSectionWriter<'_>> {
        self.check_new_kind(kind)?;
        Ok(PagedSectionWriter {
            offset: self.pos,
            writer: self,
            kind,
            pages: 0,
            hasher: Xxh3::new(),
            items: 0,
            item_len: 0,
        })
    }

    /// Writes the vectors section from rows given in order. Each row holds
    /// `dimension` elements in little-endian bytes.
    pub fn write_vectors<'r>(&mut self, rows: impl IntoIterator<Item = &'r [u8]>) -> Result<()> {
        let row_len = self.header.dimension as usize * self.header.element_type.size();
        let expected = self.header.vector_count;
        let count = self.write_rows(SectionKind::VECTORS, row_len, rows)?;
        if count != expected {
            return Err(FormatError::InvalidArgument(format!(
                "the header declares {expected} vectors but {count} were written"
            )));
        }
        Ok(())
    }

    /// Writes a paged section of fixed-size rows, packed as SPEC.md §2.4
    /// says, and returns the number of rows. The directory entry records
    /// `items = rows` and `item_len = row_len`.
    pub fn write_rows<'r>(
        &mut self,
        kind: SectionKind,
        row_len: usize,
        rows: impl IntoIterator<Item = &'r [u8]>,
    ) -> Result<u64> {
        let mut rows = rows.into_iter();
        let mut count = 0u64;
        self.write_rows_with(kind, row_len, &mut |out| match rows.next() {
            None => Ok(false),
            Some(row) if row.len() == out.len() => {
                out.copy_from_slice(row);
                count += 1;
                Ok(true)
            }
            Some(row) => Err(FormatError::InvalidArgument(format!(
                "row {count} of the {kind} has {} bytes, expected {row_len}",
                row.len()
            ))),
        })
    }

    /// Like [`SegmentWriter::write_rows`], but `fill` writes each row in
    /// place (`row_len` zeroed bytes) and returns `false` when there are no
    /// more rows; no row is ever copied through an intermediate buffer.
    pub fn write_rows_with(
        &mut self,
        kind: SectionKind,
        row_len: usize,
        fill: &mut dyn FnMut(&mut [u8]) -> Result<bool>,
    ) -> Result<u64> {
        let layout = RowLayout::new(row_len)
            .ok_or_else(|| FormatError::InvalidArgument("rows of zero bytes".into()))?;
        let item_len = u32::try_from(row_len)
            .map_err(|_| FormatError::InvalidArgument(format!("rows of {row_len} bytes")))?;
        let mut section = self.paged_section(kind)?;
        let mut page = Box::new([0u8; PAGE_SIZE]);
        let mut row = vec![0u8; if layout.pages_per_row > 1 { row_len } else { 0 }];
        let mut count = 0u64;
        let mut slot = 0usize;
        loop {
            if layout.pages_per_row == 1 {
                let at = slot * row_len;
                if !fill(&mut page[at..at + row_len])? {
                    break;
                }
                slot += 1;
                if slot == layout.rows_per_page {
                    section.push_page(&mut page)?;
                    slot = 0;
                }
            } else {
                row.fill(0);
                if !fill(&mut row)? {
                    break;
                }
                for chunk in row.chunks(PAGE_PAYLOAD) {
                    page[..chunk.len()].copy_from_slice(chunk);
                    section.push_page(&mut page)?;
                }
            }
            count += 1;
        }
        if slot > 0 {
            section.push_page(&mut page)?;
        }
        section.finish(count, item_len)?;
        Ok(count)
    }

    /// Writes the attribute section (SPEC.md §2.6): `columns` must hold one
    /// row per vector, in node order.
    pub fn write_attributes(&mut self, columns: &AttributeColumns) -> Result<()> {
        let expected = self.header.vector_count;
        if columns.len() as u64 != expected {
            return Err(FormatError::InvalidArgument(format!(
                "{} attribute rows for a segment of {expected} vectors",
                columns.len()
            )));
        }
        let stream = encode_section(columns);
        let mut section = self.paged_section(SectionKind::ATTRIBUTES)?;
        let mut page = Box::new([0u8; PAGE_SIZE]);
        for chunk in stream.chunks(PAGE_PAYLOAD) {
            page[..chunk.len()].copy_from_slice(chunk);
            section.push_page(&mut page)?;
        }
        section.finish(expected, columns.schema().len() as u32)
    }

    /// Writes the directory and the superblock, fsyncs, renames the file to
    /// its final name and fsyncs the parent directory.
    pub fn finish(mut self) -> Result<PathBuf> {
        let directory_offset = self.pos;
        let dir_bytes = self.entries.as_bytes().to_vec();
        let mut hasher = Xxh3::new();
        hasher.update(&dir_bytes);
        self.write_all(&dir_bytes)?;
        self.pad_to_page(&mut hasher)?;

        let mut sb = Superblock::new_zeroed();
        sb.magic = MAGIC;
        sb.version_major.set(VERSION_MAJOR);
        sb.version_minor.set(VERSION_MINOR);
        sb.superblock_len.set(PAGE_SIZE as u32);
        sb.incompat_features.set(self.header.incompat_features);
        sb.compat_features.set(self.header.compat_features);
        sb.uuid = self.header.uuid;
        sb.created_unix_micros.set(self.header.created_unix_micros);
        sb.element_type = self.header.element_type as u8;
        sb.metric = self.header.metric as u8;
        sb.dimension.set(self.header.dimension);
        sb.vector_count.set(self.header.vector_count);
        sb.section_count.set(self.entries.len() as u32);
        sb.page_size.set(PAGE_SIZE as u32);
        sb.directory_offset.set(directory_offset);
        sb.directory_len.set(dir_bytes.len() as u64);
        sb.directory_checksum.set(hasher.digest());
        sb.file_len.set(self.pos);
        let sum = crate::checksum::Checksum::of(&sb.as_bytes()[..SUPERBLOCK_CHECKSUM_OFFSET]);
        sb.checksum.set(sum.0);

        let path = self.out.path().to_path_buf();
        self.out.commit(&[(0, sb.as_bytes())])?;
        Ok(path)
    }

    fn check_new_kind(&self, kind: SectionKind) -> Result<()> {
        if self.entries.iter().any(|e| e.kind.get() == kind.0) {
            return Err(FormatError::InvalidArgument(format!(
                "{kind} written twice"
            )));
        }
        if self.entries.len() >= MAX_SECTIONS as usize {
            return Err(FormatError::InvalidArgument("too many sections".into()));
        }
        Ok(())
    }

    fn write_all(&mut self, bytes: &[u8]) -> Result<()> {
        self.out.write(bytes)?;
        self.pos += bytes.len() as u64;
        Ok(())
    }

    /// Zero-fills to the next page boundary, feeding the zeros to `hasher`.
    fn pad_to_page(&mut self, hasher: &mut Xxh3) -> Result<()> {
        let rem = (self.pos % PAGE_SIZE_U64) as usize;
        if rem != 0 {
            let zeros = [0u8; PAGE_SIZE];
            let pad = &zeros[..PAGE_SIZE - rem];
            hasher.update(pad);
            self.write_all(pad)?;
        }
        Ok(())
    }
}

/// Appends checksummed pages to one paged section.
pub struct PagedSectionWriter<'w> {
    writer: &'w mut SegmentWriter,
    kind: SectionKind,
    offset: u64,
    pages: u64,
    hasher: Xxh3,
    items: u64,
    item_len: u32,
}

impl std::fmt::Debug for PagedSectionWriter<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PagedSectionWriter")
            .field("kind", &self.kind)
            .field("offset", &self.offset)
            .field("pages", &self.pages)
            .finish_non_exhaustive()
    }
}

impl PagedSectionWriter<'_> {
    /// Seals `page` (its trailer is overwritten) and appends it. The page
    /// is zeroed afterwards, ready to be filled again.
    pub fn push_page(&mut self, page: &mut [u8; PAGE_SIZE]) -> Result<()> {
        let at = self.writer.pos;
        seal_page(page, at);
        self.hasher.update(&page[..]);
        self.writer.write_all(&page[..])?;
        self.pages += 1;
        page.fill(0);
        Ok(())
    }

    /// Sets the kind-specific item count and size recorded in the directory.
    pub fn set_items(&mut self, items: u64, item_len: u32) {
        self.items = items;
        self.item_len = item_len;
    }

    /// Records the section in the directory.
    pub fn finish(mut self, items: u64, item_len: u32) -> Result<()> {
        self.set_items(items, item_len);
        let stored = self.pages * PAGE_SIZE_U64;
        self.writer.entries.push(entry(
            self.kind,
            SECTION_FLAG_PAGED | required_flag(self.kind),
            self.offset,
            stored,
            stored,
            self.hasher.digest(),
            self.items,
            self.item_len,
        ));
        Ok(())
    }
}

fn required_flag(kind: SectionKind) -> u32 {
    // Every kind v1.0 defines is needed to interpret the segment; the
    // attribute section (added later) is optional, so older readers skip it.
    if kind.is_known() && kind != SectionKind::ATTRIBUTES {
        SECTION_FLAG_REQUIRED
    } else {
        0
    }
}

#[expect(
    clippy::too_many_arguments,
    reason = "one argument per directory field"
)]
fn entry(
    kind: SectionKind,
    flags: u32,
    offset: u64,
    stored_len: u64,
    logical_len: u64,
    checksum: u64,
    items: u64,
    item_len: u32,
) -> SectionEntry {
    let mut e = SectionEntry::new_zeroed();
    e.kind.set(kind.0);
    e.flags.set(flags);
    e.offset.set(offset);
    e.stored_len.set(stored_len);
    e.logical_len.set(logical_len);
    e.checksum.set(checksum);
    e.items.set(items);
    e.item_len.set(item_len);
    e
}

pub(crate) fn valid_metadata_key(k: &str) -> bool {
    !k.is_empty()
        && k.bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_' || b == b'.')
}

fn validate_header(h: &SegmentHeader) -> Result<()> {
    if h.dimension == 0 || h.dimension > MAX_DIMENSION {
        return Err(FormatError::InvalidArgument(format!(
            "dimension {} is outside 1..={MAX_DIMENSION}",
            h.dimension
        )));
    }
    if h.incompat_features & !KNOWN_INCOMPAT_FEATURES != 0 {
        return Err(FormatError::InvalidArgument(format!(
            "incompatible feature bits {:#x} are not defined by this version",
            h.incompat_features
        )));
    }
    Ok(())
}
