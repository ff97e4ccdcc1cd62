//! Opening and reading a segment. Nothing read from the source is trusted:
//! the superblock, the directory and every section are checked against each
//! other and against the real file length before any of them is used, and
//! every failure is a [`FormatError`] naming the file and the offset.
//!
//! Structure and the checksums of every non-paged section are verified at
//! open (those sections are small and loaded into RAM anyway). Paged sections
//! can be as large as the data set, so each page is verified when it is read;
//! [`Verify::Full`] also checks their whole-section checksums at open.

use std::collections::BTreeMap;
use std::fs::File;
use std::path::{Path, PathBuf};

use xxhash_rust::xxh3::Xxh3;
use zerocopy::FromBytes;

use super::attributes::{self, AttributeHead, CodecError, Column};
use super::kind::SectionKind;
use super::layout::*;
use super::page::{RowLayout, verify_page};
use super::source::ReadAt;
use super::writer::valid_metadata_key;
use crate::checksum::Checksum;
use crate::{ElementType, FormatError, Metric, Result};

/// How much of the file [`SegmentFile::open`] checks before returning.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Verify {
    /// Structure, superblock and directory only. For callers that load every
    /// section they use through [`SegmentFile::read_section`], which checks
    /// the section's checksum as it reads: verifying at open as well would
    /// read those sections twice.
    Structure,
    /// Structure, superblock, directory and non-paged section checksums.
    #[default]
    Metadata,
    /// All of the above and the checksum of every paged section: reads the
    /// whole file once.
    Full,
}

/// Options for [`SegmentFile::open`].
#[derive(Debug, Clone, Copy, Default)]
pub struct OpenOptions {
    pub verify: Verify,
}

/// What the superblock declares, after validation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SegmentInfo {
    pub version_major: u16,
    pub version_minor: u16,
    pub uuid: [u8; 16],
    pub created_unix_micros: u64,
    pub element_type: ElementType,
    pub metric: Metric,
    pub dimension: u32,
    pub vector_count: u64,
    pub compat_features: u64,
    pub incompat_features: u64,
    pub file_len: u64,
}

impl SegmentInfo {
    /// The UUID in its canonical hyphenated form.
    pub fn uuid_string(&self) -> String {
        let h: String = self.uuid.iter().map(|b| format!("{b:02x}")).collect();
        format!(
            "{}-{}-{}-{}-{}",
            &h[0..8],
            &h[8..12],
            &h[12..16],
            &h[16..20],
            &h[20..32]
        )
    }
}

/// One validated directory entry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Section {
    /// Position in the directory.
    pub index: usize,
    pub kind: SectionKind,
    pub flags: u32,
    pub offset: u64,
    pub stored_len: u64,
    pub logical_len: u64,
    pub checksum: u64,
    pub items: u64,
    pub item_len: u32,
}

impl Section {
    /// Whether the section is a run of checksummed pages.
    pub fn is_paged(&self) -> bool {
        self.flags & SECTION_FLAG_PAGED != 0
    }

    /// Whether the section is LZ4-compressed.
    pub fn is_lz4(&self) -> bool {
        self.flags & SECTION_FLAG_LZ4 != 0
    }

    /// The stored length rounded up to whole pages: what the checksum covers.
    pub fn extent(&self) -> u64 {
        // Validated at open not to overflow.
        page_align(self.stored_len).unwrap_or(u64::MAX)
    }

    /// Number of pages of a paged section.
    pub fn pages(&self) -> u64 {
        self.stored_len / PAGE_SIZE_U64
    }

    fn describe(&self) -> String {
        format!("section {} ({})", self.index, self.kind.name())
    }
}

/// An open, validated segment file.
#[derive(Debug)]
pub struct SegmentFile<S: ReadAt = File> {
    path: PathBuf,
    source: S,
    info: SegmentInfo,
    sections: Vec<Section>,
}

impl SegmentFile<File> {
    /// Opens and validates the segment at `path`.
    pub fn open(path: impl AsRef<Path>, options: OpenOptions) -> Result<Self> {
        let path = path.as_ref();
        let file = File::open(path).map_err(|e| FormatError::io(path, e))?;
        SegmentFile::from_source(path, file, options)
    }
}

impl<S: ReadAt> SegmentFile<S> {
    /// Validates a segment read from `source`; `path` is used in messages.
    pub fn from_source(path: impl Into<PathBuf>, source: S, options: OpenOptions) -> Result<Self> {
        let path = path.into();
        let actual_len = source.size().map_err(|e| FormatError::io(&path, e))?;
        let validator = Validator {
            path: &path,
            source: &source,
            actual_len,
        };
        let (info, directory) = validator.superblock()?;
        let sections = validator.directory(&info, &directory)?;
        let segment = SegmentFile {
            path,
            source,
            info,
            sections,
        };
        for section in &segment.sections {
            let check = match options.verify {
                Verify::Structure => false,
                Verify::Metadata => !section.is_paged(),
                Verify::Full => true,
            };
            if check {
                segment.verify_section(section)?;
            }
        }
        Ok(segment)
    }

    /// The file's path, as given to `open`.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The validated superblock.
    pub fn info(&self) -> &SegmentInfo {
        &self.info
    }

    /// Every section, in file order.
    pub fn sections(&self) -> &[Section] {
        &self.sections
    }

    /// The section of `kind`, if the file has one.
    pub fn section(&self, kind: SectionKind) -> Option<&Section> {
        self.sections.iter().find(|s| s.kind == kind)
    }

    /// The section of `kind`, or a corruption error if it is missing.
    pub fn require(&self, kind: SectionKind) -> Result<&Section> {
        self.section(kind).ok_or_else(|| FormatError::Corrupt {
            path: self.path.clone(),
            what: "section directory".into(),
            offset: 0,
            reason: format!("required {kind} is missing"),
        })
    }

    /// Reads a non-paged section whole, checks its checksum and decodes it.
    pub fn read_section(&self, section: &Section) -> Result<Vec<u8>> {
        self.read_section_with(section, &|_| {})
    }

    /// [`Self::read_section`], calling `fresh` on each buffer it allocates
    /// (the one it returns included) before writing to it: a caller can
    /// advise the kernel how to back a large section (huge pages) without
    /// holding a second copy of it.
    pub fn read_section_with(&self, section: &Section, fresh: &dyn Fn(&[u8])) -> Result<Vec<u8>> {
        let mut stored = vec![0u8; usize_len(section.extent(), &self.path)?];
        fresh(&stored);
        self.read_at(&mut stored, section.offset, &section.describe())?;
        Checksum::of(&stored).check(
            section.checksum,
            &self.path,
            section.describe(),
            section.offset,
            section.extent(),
        )?;
        stored.truncate(usize_len(section.stored_len, &self.path)?);
        if !section.is_lz4() {
            return Ok(stored);
        }
        let mut out = vec![0u8; usize_len(section.logical_len, &self.path)?];
        fresh(&out);
        match lz4_flex::block::decompress_into(&stored, &mut out) {
            Ok(n) if n == out.len() => Ok(out),
            Ok(n) => Err(self.corrupt(
                section,
                section.offset,
                format!(
                    "LZ4 block decodes to {n} bytes, directory says {}",
                    section.logical_len
                ),
            )),
            Err(e) => Err(self.corrupt(section, section.offset, format!("LZ4 block: {e}"))),
        }
    }

    /// Reads pages `first..first + count` of a paged section into `buf`
    /// (`count * PAGE_SIZE` bytes) and verifies each page's checksum.
    pub fn read_pages(&self, section: &Section, first: u64, buf: &mut [u8]) -> Result<()> {
        let count = (buf.len() / PAGE_SIZE) as u64;
        if !section.is_paged()
            || !buf.len().is_multiple_of(PAGE_SIZE)
            || first.saturating_add(count) > section.pages()
        {
            return Err(FormatError::InvalidArgument(format!(
                "{}: pages {first}..{} of {} do not exist (it has {} pages)",
                self.path.display(),
                first.saturating_add(count),
                section.describe(),
                section.pages()
            )));
        }
        let offset = section.offset + first * PAGE_SIZE_U64;
        self.read_at(buf, offset, &section.describe())?;
        for (i, page) in buf.chunks_exact(PAGE_SIZE).enumerate() {
            let page: &[u8; PAGE_SIZE] = page.try_into().map_err(|_| {
                FormatError::InvalidArgument("page buffer is not page-sized".into())
            })?;
            verify_page(
                page,
                offset + i as u64 * PAGE_SIZE_U64,
                &self.path,
                &section.describe(),
            )?;
        }
        Ok(())
    }

    /// Recomputes the whole-section checksum of `section`.
    pub fn verify_section(&self, section: &Section) -> Result<()> {
        if !section.is_paged() {
            return self.read_section(section).map(drop);
        }
        let mut hasher = Xxh3::new();
        let mut buf = vec![0u8; 256 * PAGE_SIZE];
        let mut page = 0;
        while page < section.pages() {
            let n = (section.pages() - page).min(256);
            let chunk = buf.get_mut(..n as usize * PAGE_SIZE).unwrap_or_default();
            self.read_pages(section, page, chunk)?;
            hasher.update(chunk);
            page += n;
        }
        Checksum(hasher.digest()).check(
            section.checksum,
            &self.path,
            section.describe(),
            section.offset,
            section.extent(),
        )
    }

    /// Verifies every checksum in the file.
    pub fn verify_all(&self) -> Result<()> {
        self.sections
            .iter()
            .try_for_each(|s| self.verify_section(s))
    }

    /// The metadata section as a map, empty if the file has none.
    pub fn metadata(&self) -> Result<BTreeMap<String, String>> {
        let Some(section) = self.section(SectionKind::METADATA) else {
            return Ok(BTreeMap::new());
        };
        let bytes = self.read_section(section)?;
        let text = std::str::from_utf8(&bytes).map_err(|e| {
            self.corrupt(
                section,
                section.offset,
                format!("metadata is not UTF-8: {e}"),
            )
        })?;
        let mut map = BTreeMap::new();
        for (line_no, line) in text.lines().enumerate() {
            let (k, v) = line
                .split_once('=')
                .filter(|(k, _)| valid_metadata_key(k))
                .ok_or_else(|| {
                    self.corrupt(
                        section,
                        section.offset,
                        format!("metadata line {} is not key=value", line_no + 1),
                    )
                })?;
            map.insert(k.to_string(), v.to_string());
        }
        Ok(map)
    }

    /// The head of the attribute section (schema, statistics, where each
    /// column lies), or `None` when the segment has no attributes.
    pub fn attributes(&self) -> Result<Option<AttributeHead>> {
        let Some(section) = self.section(SectionKind::ATTRIBUTES).copied() else {
            return Ok(None);
        };
        if !section.is_paged() || section.pages() == 0 || section.items != self.info.vector_count {
            return Err(self.corrupt(
                &section,
                section.offset,
                format!(
                    "expected a paged section of {} rows, found {} pages of {} rows",
                    self.info.vector_count,
                    section.pages(),
                    section.items
                ),
            ));
        }
        let locate = |e: CodecError| {
            let page = e.offset / PAGE_PAYLOAD as u64;
            let at = section.offset + page * PAGE_SIZE_U64 + e.offset % PAGE_PAYLOAD as u64;
            self.corrupt(&section, at, e.reason)
        };
        let first = self.payloads(&section, 0, 1)?;
        let len = attributes::head_len(&first).map_err(locate)?;
        let head_pages = len.div_ceil(PAGE_PAYLOAD as u64);
        if head_pages > section.pages() {
            return Err(self.corrupt(
                &section,
                section.offset + 24,
                format!(
                    "head of {len} bytes exceeds the section's {} pages",
                    section.pages()
                ),
            ));
        }
        let stream = self.payloads(&section, 0, head_pages)?;
        let head = attributes::parse_head(&stream, section.pages()).map_err(locate)?;
        if head.rows != self.info.vector_count || head.columns.len() != section.item_len as usize {
            return Err(self.corrupt(
                &section,
                section.offset + 12,
                format!(
                    "{} rows in {} columns; the directory says {} rows in {} columns",
                    head.rows,
                    head.columns.len(),
                    section.items,
                    section.item_len
                ),
            ));
        }
        Ok(Some(head))
    }

    /// Reads, verifies and decodes column `index` of the attribute section
    /// whose head is `head`.
    pub fn read_attribute_column(&self, head: &AttributeHead, index: usize) -> Result<Column> {
        let section = *self.require(SectionKind::ATTRIBUTES)?;
        let meta = head.columns.get(index).ok_or_else(|| {
            FormatError::InvalidArgument(format!(
                "attribute column {index} of {}",
                head.columns.len()
            ))
        })?;
        let mut stored = self.payloads(&section, meta.first_page, meta.pages())?;
        stored.truncate(usize_len(meta.stored_len, &self.path)?);
        attributes::decode_column(meta, head.rows, &stored).map_err(|e| {
            self.corrupt(
                &section,
                section.offset + meta.first_page * PAGE_SIZE_U64,
                format!("column {:?}: {}", meta.schema.name, e.reason),
            )
        })
    }

    /// The payloads of pages `first..first + count` of a paged section,
    /// verified and concatenated.
    fn payloads(&self, section: &Section, first: u64, count: u64) -> Result<Vec<u8>> {
        if first
            .checked_add(count)
            .is_none_or(|end| end > section.pages())
        {
            return Err(self.corrupt(
                section,
                section.offset,
                format!(
                    "pages {first}..{} requested of {} pages",
                    first.saturating_add(count),
                    section.pages()
                ),
            ));
        }
        let mut buf = vec![0u8; usize_len(count.saturating_mul(PAGE_SIZE_U64), &self.path)?];
        self.read_pages(section, first, &mut buf)?;
        Ok(buf
            .chunks_exact(PAGE_SIZE)
            .flat_map(|p| p.iter().take(PAGE_PAYLOAD).copied())
            .collect())
    }

    /// A reader for the vectors section.
    pub fn vectors(&self) -> Result<VectorPages<'_, S>> {
        let section = *self.require(SectionKind::VECTORS)?;
        let row_len = self.info.dimension as usize * self.info.element_type.size();
        let layout = RowLayout::new(row_len)
            .ok_or_else(|| self.corrupt(&section, section.offset, "empty rows".into()))?;
        let rows_ok =
            section.items == self.info.vector_count && section.item_len as usize == row_len;
        if !rows_ok || layout.pages_for(section.items) != Some(section.pages()) {
            return Err(self.corrupt(
                &section,
                section.offset,
                format!(
                    "holds {} rows of {} bytes in {} pages; the superblock implies {} rows of {row_len} bytes",
                    section.items,
                    section.item_len,
                    section.pages(),
                    self.info.vector_count
                ),
            ));
        }
        Ok(VectorPages {
            segment: self,
            section,
            layout,
        })
    }

    fn read_at(&self, buf: &mut [u8], offset: u64, what: &str) -> Result<()> {
        self.source.read_exact_at(buf, offset).map_err(|e| {
            if e.kind() == std::io::ErrorKind::UnexpectedEof {
                FormatError::Truncated {
                    path: self.path.clone(),
                    what: what.to_string(),
                    needed: offset.saturating_add(buf.len() as u64),
                    actual: self.source.size().unwrap_or(0),
                }
            } else {
                FormatError::io(&self.path, e)
            }
        })
    }

    fn corrupt(&self, section: &Section, offset: u64, reason: String) -> FormatError {
        FormatError::Corrupt {
            path: self.path.clone(),
            what: section.describe(),
            offset,
            reason,
        }
    }
}

/// Random access to the rows of a vectors section, page-verified.
#[derive(Debug)]
pub struct VectorPages<'a, S: ReadAt> {
    segment: &'a SegmentFile<S>,
    section: Section,
    layout: RowLayout,
}

impl<S: ReadAt> VectorPages<'_, S> {
    /// Number of rows.
    pub fn len(&self) -> u64 {
        self.section.items
    }

    /// Whether there are no rows.
    pub fn is_empty(&self) -> bool {
        self.section.items == 0
    }

    /// How rows are laid out in pages.
    pub fn layout(&self) -> RowLayout {
        self.layout
    }

    /// Copies row `row`'s bytes into `out` (`row_len` bytes), reading and
    /// verifying the pages that hold it.
    pub fn read_row(&self, row: u64, out: &mut [u8]) -> Result<()> {
        if row >= self.len() || out.len() != self.layout.row_len {
            return Err(FormatError::InvalidArgument(format!(
                "row {row} of {} with a {}-byte buffer (rows are {} bytes)",
                self.len(),
                out.len(),
                self.layout.row_len
            )));
        }
        let (page, at) = self.layout.locate(row);
        let mut buf = vec![0u8; self.layout.pages_per_row * PAGE_SIZE];
        self.segment.read_pages(&self.section, page, &mut buf)?;
        let payloads = buf
            .chunks_exact(PAGE_SIZE)
            .flat_map(|p| p.iter().take(PAGE_PAYLOAD));
        for (dst, src) in out.iter_mut().zip(payloads.skip(at)) {
            *dst = *src;
        }
        Ok(())
    }
}

/// Reads and validates the superblock and directory.
struct Validator<'a, S: ReadAt> {
    path: &'a Path,
    source: &'a S,
    actual_len: u64,
}

impl<S: ReadAt> Validator<'_, S> {
    fn corrupt(&self, what: &str, offset: u64, reason: impl Into<String>) -> FormatError {
        FormatError::Corrupt {
            path: self.path.to_path_buf(),
            what: what.to_string(),
            offset,
            reason: reason.into(),
        }
    }

    fn read(&self, buf: &mut [u8], offset: u64, what: &str) -> Result<()> {
        let needed = offset.saturating_add(buf.len() as u64);
        if needed > self.actual_len {
            return Err(FormatError::Truncated {
                path: self.path.to_path_buf(),
                what: what.to_string(),
                needed,
                actual: self.actual_len,
            });
        }
        self.source
            .read_exact_at(buf, offset)
            .map_err(|e| FormatError::io(self.path, e))
    }

    fn superblock(&self) -> Result<(SegmentInfo, DirectoryRef)> {
        const WHAT: &str = "superblock";
        let mut page = [0u8; PAGE_SIZE];
        if self.actual_len < 8 {
            return Err(FormatError::Truncated {
                path: self.path.to_path_buf(),
                what: WHAT.into(),
                needed: PAGE_SIZE_U64,
                actual: self.actual_len,
            });
        }
        let mut magic = [0u8; 8];
        self.read(&mut magic, 0, WHAT)?;
        if magic != MAGIC {
            return Err(self.corrupt(
                WHAT,
                0,
                format!("bad magic {magic:02x?}: not an OmenDB segment"),
            ));
        }
        self.read(&mut page, 0, WHAT)?;
        let sb = Superblock::ref_from_bytes(&page[..])
            .map_err(|_| self.corrupt(WHAT, 0, "unreadable superblock"))?;
        let body = page.get(..SUPERBLOCK_CHECKSUM_OFFSET).unwrap_or_default();
        Checksum::of(body).check(
            sb.checksum.get(),
            self.path,
            WHAT,
            0,
            SUPERBLOCK_CHECKSUM_OFFSET as u64,
        )?;
        let (major, minor) = (sb.version_major.get(), sb.version_minor.get());
        if major != VERSION_MAJOR {
            return Err(FormatError::IncompatibleVersion {
                path: self.path.to_path_buf(),
                found_major: major,
                found_minor: minor,
                supported: format!("{VERSION_MAJOR}.x"),
            });
        }
        let field = |name: &str| format!("{WHAT} field {name}");
        let off = |o: usize| o as u64;
        if sb.superblock_len.get() != PAGE_SIZE as u32 {
            return Err(self.corrupt(
                &field("superblock_len"),
                off(12),
                format!("is {}", sb.superblock_len.get()),
            ));
        }
        if sb.page_size.get() != PAGE_SIZE as u32 {
            return Err(self.corrupt(
                &field("page_size"),
                off(76),
                format!("is {}, v1 requires {PAGE_SIZE}", sb.page_size.get()),
            ));
        }
        let unknown = sb.incompat_features.get() & !KNOWN_INCOMPAT_FEATURES;
        if unknown != 0 {
            return Err(FormatError::IncompatibleVersion {
                path: self.path.to_path_buf(),
                found_major: major,
                found_minor: minor,
                supported: format!("{VERSION_MAJOR}.x without incompatible features {unknown:#x}"),
            });
        }
        let element_type = ElementType::from_code(sb.element_type).ok_or_else(|| {
            self.corrupt(
                &field("element_type"),
                off(56),
                format!("unknown code {}", sb.element_type),
            )
        })?;
        let metric = Metric::from_code(sb.metric).ok_or_else(|| {
            self.corrupt(
                &field("metric"),
                off(57),
                format!("unknown code {}", sb.metric),
            )
        })?;
        let dimension = sb.dimension.get();
        if dimension == 0 || dimension > MAX_DIMENSION {
            return Err(self.corrupt(
                &field("dimension"),
                off(60),
                format!("{dimension} is outside 1..={MAX_DIMENSION}"),
            ));
        }
        if sb.reserved0 != [0; 2] || sb.reserved.iter().any(|&b| b != 0) {
            return Err(self.corrupt(
                &field("reserved"),
                off(SUPERBLOCK_RESERVED_OFFSET),
                "reserved bytes are not zero",
            ));
        }
        let file_len = sb.file_len.get();
        if file_len > self.actual_len {
            return Err(FormatError::Truncated {
                path: self.path.to_path_buf(),
                what: "file".into(),
                needed: file_len,
                actual: self.actual_len,
            });
        }
        if file_len < self.actual_len {
            return Err(self.corrupt(
                "file",
                file_len,
                format!(
                    "{} unexpected bytes after the end the superblock declares",
                    self.actual_len - file_len
                ),
            ));
        }
        let info = SegmentInfo {
            version_major: major,
            version_minor: minor,
            uuid: sb.uuid,
            created_unix_micros: sb.created_unix_micros.get(),
            element_type,
            metric,
            dimension,
            vector_count: sb.vector_count.get(),
            compat_features: sb.compat_features.get(),
            incompat_features: sb.incompat_features.get(),
            file_len,
        };
        let directory = DirectoryRef {
            offset: sb.directory_offset.get(),
            len: sb.directory_len.get(),
            checksum: sb.directory_checksum.get(),
            count: sb.section_count.get(),
        };
        Ok((info, directory))
    }

    /// Validates the directory and every entry. The sections, then the
    /// directory, must tile the file from page 1 to its end without gaps or
    /// overlaps, so that every byte of the file is covered by a checksum.
    fn directory(&self, info: &SegmentInfo, dir: &DirectoryRef) -> Result<Vec<Section>> {
        const WHAT: &str = "section directory";
        if dir.count > MAX_SECTIONS {
            return Err(self.corrupt(
                "superblock field section_count",
                72,
                format!("{} exceeds {MAX_SECTIONS}", dir.count),
            ));
        }
        if dir.len != u64::from(dir.count) * SECTION_ENTRY_LEN as u64 {
            return Err(self.corrupt(
                "superblock field directory_len",
                88,
                format!(
                    "is {} bytes for {} entries of {SECTION_ENTRY_LEN}",
                    dir.len, dir.count
                ),
            ));
        }
        let extent = page_align(dir.len);
        let ends_file = dir.offset.checked_add(extent.unwrap_or(u64::MAX)) == Some(info.file_len);
        if !dir.offset.is_multiple_of(PAGE_SIZE_U64) || dir.offset < PAGE_SIZE_U64 || !ends_file {
            return Err(self.corrupt(
                "superblock field directory_offset",
                80,
                format!(
                    "directory at {} (+{} bytes) must be page-aligned, after the superblock, and end the {}-byte file",
                    dir.offset, dir.len, info.file_len
                ),
            ));
        }
        let mut bytes = vec![0u8; usize_len(extent.unwrap_or(0), self.path)?];
        self.read(&mut bytes, dir.offset, WHAT)?;
        Checksum::of(&bytes).check(
            dir.checksum,
            self.path,
            WHAT,
            dir.offset,
            bytes.len() as u64,
        )?;
        let entries_bytes = bytes.get(..dir.len as usize).unwrap_or_default();
        let entries = <[SectionEntry]>::ref_from_bytes(entries_bytes)
            .map_err(|_| self.corrupt(WHAT, dir.offset, "entries are not whole"))?;

        let mut sections = Vec::with_capacity(entries.len());
        let mut next_offset = PAGE_SIZE_U64;
        for (index, e) in entries.iter().enumerate() {
            let at = dir.offset + (index * SECTION_ENTRY_LEN) as u64;
            let what = format!("section directory entry {index}");
            let section = Section {
                index,
                kind: SectionKind(e.kind.get()),
                flags: e.flags.get(),
                offset: e.offset.get(),
                stored_len: e.stored_len.get(),
                logical_len: e.logical_len.get(),
                checksum: e.checksum.get(),
                items: e.items.get(),
                item_len: e.item_len.get(),
            };
            let bad = |reason: String| self.corrupt(&what, at, reason);
            if section.flags & !KNOWN_SECTION_FLAGS != 0 {
                return Err(bad(format!(
                    "unknown flag bits {:#x}",
                    section.flags & !KNOWN_SECTION_FLAGS
                )));
            }
            if e.reserved != [0; 12] {
                return Err(bad("reserved bytes are not zero".into()));
            }
            if !section.kind.is_known() && section.flags & SECTION_FLAG_REQUIRED != 0 {
                return Err(FormatError::IncompatibleVersion {
                    path: self.path.to_path_buf(),
                    found_major: info.version_major,
                    found_minor: info.version_minor,
                    supported: format!(
                        "{VERSION_MAJOR}.x without required section kind {}",
                        section.kind.0
                    ),
                });
            }
            if sections.iter().any(|s: &Section| s.kind == section.kind) {
                return Err(bad(format!("{} appears twice", section.kind)));
            }
            if section.offset != next_offset {
                return Err(bad(format!(
                    "starts at {} but the previous extent ends at {next_offset}",
                    section.offset
                )));
            }
            let end = page_align(section.stored_len).and_then(|x| section.offset.checked_add(x));
            match end {
                Some(end) if end <= dir.offset => next_offset = end,
                _ => {
                    return Err(bad(format!(
                        "{} bytes at {} run past the directory at {}",
                        section.stored_len, section.offset, dir.offset
                    )));
                }
            }
            let paged = section.is_paged();
            let lz4 = section.flags & SECTION_FLAG_LZ4 != 0;
            if paged && (lz4 || !section.stored_len.is_multiple_of(PAGE_SIZE_U64)) {
                return Err(bad(
                    "a paged section must be uncompressed whole pages".into()
                ));
            }
            let logical_ok = if lz4 {
                section.logical_len
                    <= section
                        .stored_len
                        .saturating_mul(LZ4_MAX_RATIO)
                        .saturating_add(16)
            } else {
                section.logical_len == section.stored_len
            };
            if !logical_ok {
                return Err(bad(format!(
                    "decoded length {} is impossible for {} stored bytes",
                    section.logical_len, section.stored_len
                )));
            }
            sections.push(section);
        }
        if next_offset != dir.offset {
            return Err(self.corrupt(
                WHAT,
                dir.offset,
                format!(
                    "{} unaccounted bytes between the last section and the directory",
                    dir.offset - next_offset
                ),
            ));
        }
        Ok(sections)
    }
}

/// Where the superblock says the directory is.
struct DirectoryRef {
    offset: u64,
    len: u64,
    checksum: u64,
    count: u32,
}

/// Converts a validated on-disk length to a buffer size.
fn usize_len(len: u64, path: &Path) -> Result<usize> {
    usize::try_from(len).map_err(|_| {
        FormatError::InvalidArgument(format!(
            "{}: a {len}-byte section does not fit in memory on this platform",
            path.display()
        ))
    })
}
