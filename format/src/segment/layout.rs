//! The fixed-size structures of a segment file, byte for byte (SPEC.md §2).
//!
//! Every struct is `#[repr(C)]`, built only from byte arrays and explicit
//! little-endian integers, so it has alignment 1, no padding, and the same
//! bytes on every host. The size assertions below keep the code and SPEC.md
//! from drifting apart: a change to a struct that moves a field fails to
//! compile until the constants, and the spec beside them, are updated.

use zerocopy::little_endian::{U16, U32, U64};
use zerocopy::{FromBytes, Immutable, IntoBytes, KnownLayout};

/// The unit of alignment and of random reads: every section starts on a
/// multiple of it, so each can be read with `O_DIRECT`.
pub const PAGE_SIZE: usize = 4096;
/// `PAGE_SIZE` as a file offset.
pub const PAGE_SIZE_U64: u64 = PAGE_SIZE as u64;

/// Bytes of payload in a page of a paged section; the last 8 bytes of every
/// such page hold its checksum.
pub const PAGE_PAYLOAD: usize = PAGE_SIZE - PAGE_TRAILER;
/// Bytes of the per-page checksum trailer.
pub const PAGE_TRAILER: usize = 8;

/// The first eight bytes of every segment file.
pub const MAGIC: [u8; 8] = *b"OMENSEG\0";

/// The format version this build writes.
pub const VERSION_MAJOR: u16 = 1;
/// The minor version this build writes. Minor versions only add optional
/// sections, compatible feature bits or meanings for reserved bytes that a
/// v1.0 reader may ignore; anything else is a new major version.
pub const VERSION_MINOR: u16 = 0;

/// The largest dimension a segment may declare. It bounds integer
/// accumulators in the distance kernels (16384 * 255^2 < 2^31).
pub const MAX_DIMENSION: u32 = 16384;

/// The most sections one file may list; it bounds what a hostile directory
/// can make the reader allocate.
pub const MAX_SECTIONS: u32 = 4096;

/// Incompatible feature bit 0: the index has no graph (SPEC.md §2.5.3,
/// "flat index"). Its node records have no neighbour slots and it has no
/// upper levels, so it is searched by scanning every code and reranking
/// the best with full vectors. A reader that predates the bit would walk a
/// graph that is not there, so the bit is incompatible: it refuses.
pub const INCOMPAT_FLAT_INDEX: u64 = 1;

/// Incompatible feature bits this build understands. A reader refuses a
/// file that sets any bit it does not know.
pub const KNOWN_INCOMPAT_FEATURES: u64 = INCOMPAT_FLAT_INDEX;

/// [`IndexHeader::builder`] of a flat index: no graph was built.
pub const BUILDER_FLAT: u8 = 3;

/// Page 0 of every segment file.
#[derive(Debug, Clone, Copy, FromBytes, IntoBytes, KnownLayout, Immutable)]
#[repr(C)]
pub struct Superblock {
    /// [`MAGIC`].
    pub magic: [u8; 8],
    /// Format major version; a reader accepts only its own major.
    pub version_major: U16,
    /// Format minor version; any minor of a known major is readable.
    pub version_minor: U16,
    /// Size of this structure, `PAGE_SIZE`.
    pub superblock_len: U32,
    /// Feature bits a reader must understand to read the file.
    pub incompat_features: U64,
    /// Feature bits a reader may ignore.
    pub compat_features: U64,
    /// Random identifier of this segment, assigned by the writer.
    pub uuid: [u8; 16],
    /// Creation time in microseconds since the Unix epoch (UTC).
    pub created_unix_micros: U64,
    /// [`crate::ElementType`] code of the vectors.
    pub element_type: u8,
    /// [`crate::Metric`] code the segment was built for.
    pub metric: u8,
    /// Zero.
    pub reserved0: [u8; 2],
    /// Components per vector, `1..=MAX_DIMENSION`.
    pub dimension: U32,
    /// Number of vectors the segment holds.
    pub vector_count: U64,
    /// Number of entries in the section directory.
    pub section_count: U32,
    /// `PAGE_SIZE`; recorded so a future format can change it visibly.
    pub page_size: U32,
    /// File offset of the section directory (a multiple of `PAGE_SIZE`).
    pub directory_offset: U64,
    /// Bytes of directory entries: `section_count * 64`.
    pub directory_len: U64,
    /// xxh3-64 of the directory's page-padded extent.
    pub directory_checksum: U64,
    /// Total file length in bytes.
    pub file_len: U64,
    /// Zero in v1.0.
    pub reserved: [u8; SUPERBLOCK_RESERVED],
    /// xxh3-64 of bytes `0..SUPERBLOCK_CHECKSUM_OFFSET` of this page.
    pub checksum: U64,
}

/// Offset of [`Superblock::reserved`].
pub const SUPERBLOCK_RESERVED_OFFSET: usize = 112;
/// Offset of [`Superblock::checksum`]: the checksum covers everything before it.
pub const SUPERBLOCK_CHECKSUM_OFFSET: usize = PAGE_SIZE - 8;
/// Length of [`Superblock::reserved`].
pub const SUPERBLOCK_RESERVED: usize = SUPERBLOCK_CHECKSUM_OFFSET - SUPERBLOCK_RESERVED_OFFSET;

const _: () = assert!(size_of::<Superblock>() == PAGE_SIZE);
const _: () = assert!(std::mem::offset_of!(Superblock, reserved) == SUPERBLOCK_RESERVED_OFFSET);
const _: () = assert!(std::mem::offset_of!(Superblock, checksum) == SUPERBLOCK_CHECKSUM_OFFSET);
const _: () = assert!(std::mem::offset_of!(Superblock, dimension) == 60);
const _: () = assert!(std::mem::offset_of!(Superblock, file_len) == 104);

/// One entry of the section directory.
#[derive(Debug, Clone, Copy, PartialEq, Eq, FromBytes, IntoBytes, KnownLayout, Immutable)]
#[repr(C)]
pub struct SectionEntry {
    /// [`super::SectionKind`] code.
    pub kind: U32,
    /// `SECTION_FLAG_*` bits.
    pub flags: U32,
    /// File offset of the section (a multiple of `PAGE_SIZE`).
    pub offset: U64,
    /// Bytes stored in the file, before padding to `PAGE_SIZE`.
    pub stored_len: U64,
    /// Bytes after decoding (equal to `stored_len` unless compressed).
    pub logical_len: U64,
    /// xxh3-64 of the section's page-padded extent as stored.
    pub checksum: U64,
    /// Kind-specific count (rows, pages, nodes, ...); see SPEC.md §2.5.
    pub items: U64,
    /// Kind-specific size of one item in bytes; see SPEC.md §2.5.
    pub item_len: U32,
    /// Zero.
    pub reserved: [u8; 12],
}

/// Size of one [`SectionEntry`].
pub const SECTION_ENTRY_LEN: usize = 64;
const _: () = assert!(size_of::<SectionEntry>() == SECTION_ENTRY_LEN);

/// The section's stored bytes are one LZ4 block (lz4_flex block format).
pub const SECTION_FLAG_LZ4: u32 = 1 << 0;
/// The section is a run of 4 KiB pages, each ending in its own checksum.
pub const SECTION_FLAG_PAGED: u32 = 1 << 1;
/// A reader that does not know this section's kind must refuse the file;
/// without the flag it skips the section.
pub const SECTION_FLAG_REQUIRED: u32 = 1 << 2;
/// All flag bits v1 defines.
pub const KNOWN_SECTION_FLAGS: u32 = SECTION_FLAG_LZ4 | SECTION_FLAG_PAGED | SECTION_FLAG_REQUIRED;

/// LZ4 never expands data by more than this factor when decoded, so a
/// `logical_len` beyond it is corruption, not a reason to allocate.
pub const LZ4_MAX_RATIO: u64 = 255;

/// Rounds `n` up to a multiple of `PAGE_SIZE`, or `None` on overflow.
pub const fn page_align(n: u64) -> Option<u64> {
    match n.checked_add(PAGE_SIZE_U64 - 1) {
        Some(v) => Some(v / PAGE_SIZE_U64 * PAGE_SIZE_U64),
        None => None,
    }
}

/// The contents of the index header section (kind 3): the fixed parameters
/// a search needs before it reads any node (SPEC.md §2.5.3).
#[derive(Debug, Clone, Copy, PartialEq, Eq, FromBytes, IntoBytes, KnownLayout, Immutable)]
#[repr(C)]
pub struct IndexHeader {
    /// Layout version of the index sections; 1.
    pub version: U32,
    /// Base-layer node where searches start when the upper layers are empty.
    pub base_entry: U32,
    /// `R`: the most neighbours a node record holds.
    pub max_degree: U32,
    /// Node records per page of the nodes section.
    pub nodes_per_page: U32,
    /// Bytes of one node record.
    pub record_len: U32,
    /// Bytes of one quantized code.
    pub code_len: U32,
    /// 1 = Vamana, 2 = HNSW level-0 heuristic, 3 = none ([`BUILDER_FLAT`]:
    /// a flat index, exactly when the superblock sets
    /// [`INCOMPAT_FLAT_INDEX`]).
    pub builder: u8,
    /// Zero.
    pub reserved0: [u8; 3],
    /// `L` used while building.
    pub build_list_size: U32,
    /// `alpha` used while building, as IEEE 754 bits.
    pub build_alpha_bits: U32,
    /// Zero.
    pub reserved: [u8; 28],
}

/// Size of [`IndexHeader`].
pub const INDEX_HEADER_LEN: usize = 64;
const _: () = assert!(size_of::<IndexHeader>() == INDEX_HEADER_LEN);
/// The index layout version this build writes and reads.
pub const INDEX_VERSION: u32 = 1;
