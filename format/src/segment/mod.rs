//! The segment container, format v1 (SPEC.md §2).
//!
//! A segment is immutable once written: [`SegmentWriter`] streams it to a
//! temporary name and renames it into place only when it is complete and
//! durable, and [`SegmentFile`] validates every structure before use. The
//! container knows nothing about indexes; it stores typed, checksummed,
//! page-aligned sections that the engine defines the contents of.

pub mod attributes;
pub mod fuzzing;
mod kind;
pub mod layout;
mod page;
mod reader;
mod source;
mod writer;

pub use kind::SectionKind;
pub use page::{RowLayout, seal_page, verify_page};
pub use reader::{OpenOptions, Section, SegmentFile, SegmentInfo, VectorPages, Verify};
pub use source::ReadAt;
pub use writer::{Encoding, PagedSectionWriter, SegmentHeader, SegmentWriter};
