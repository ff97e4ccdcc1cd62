//! Dataset files: the vectors, queries and ground truth that segments are
//! built from and benchmarks are scored against.
//!
//! Two public layouts are read, both little-endian:
//!
//! - big-ann-benchmarks ([`bigann`]): `.fbin` (f32), `.f16bin` (f16),
//!   `.u8bin` (u8) and `.i8bin` (i8) hold an `int32 n, int32 d` header and
//!   then `n × d` values row-major; ground-truth files ([`ground_truth`]) hold
//!   `int32 nq, int32 k`, `nq × k` int32 ids, then `nq × k` f32 distances;
//! - TEXMEX ([`texmex`]): `.fvecs` (f32), `.bvecs` (u8) and `.ivecs` (i32),
//!   where every row is `int32 d` followed by `d` values.
//!
//! Invariant: a [`VectorFile`] or [`GroundTruthFile`] that opened
//! successfully has had its header, its exact size and (TEXMEX) every row's
//! dimension checked against the mapped bytes, so every row index below
//! `len()` resolves to an in-bounds, aligned slice. Files are mapped, never
//! read whole, and written through `<path>.tmp` plus rename, so a crash never
//! leaves a half-written file under the final name.

pub mod bigann;
pub mod fuzzing;
pub mod ground_truth;
mod row_reader;
pub mod side_file;
pub mod texmex;
mod vectors;

#[cfg(test)]
mod tests;

use std::fmt;
use std::path::Path;

use half::f16;
use zerocopy::{FromBytes, Immutable, IntoBytes, KnownLayout};

use crate::{ElementType, FormatError, Result};

pub use bigann::{BigAnnWriter, WriteSummary};
pub use ground_truth::{GroundTruthFile, Neighbors, write_ground_truth};
pub use row_reader::RowReader;
pub use texmex::TexmexWriter;
pub use vectors::{AnyVectorFile, VectorFile, Vectors};

/// The largest dimension any reader accepts. Real embeddings stop around
/// 4096; the bound exists so that a garbage header is reported as such
/// instead of being multiplied into a nonsensical expected file size.
pub const MAX_DIM: usize = 16_384;

/// The largest row count a big-ann header can express (`int32`); writers
/// refuse to go beyond it rather than wrap.
pub const MAX_ROWS: u64 = i32::MAX as u64;

mod sealed {
    pub trait Sealed {}
    impl Sealed for f32 {}
    impl Sealed for half::f16 {}
    impl Sealed for u8 {}
    impl Sealed for i8 {}
    impl Sealed for i32 {}
}

/// A value type that dataset files store. Sealed: the set of types is fixed
/// by the file formats, and every one of them is valid for any bit pattern,
/// which is what lets a mapped file be viewed as `&[T]` without copying.
pub trait DatasetElement:
    FromBytes
    + IntoBytes
    + Immutable
    + KnownLayout
    + Copy
    + Send
    + Sync
    + fmt::Debug
    + 'static
    + sealed::Sealed
{
    /// The name used in messages and on command lines (`f32`, `u8`, ...).
    const NAME: &'static str;

    /// The engine-level element type; `None` for `i32`, which only appears
    /// in TEXMEX ground-truth files (`.ivecs`), never as searchable vectors.
    const ELEMENT_TYPE: Option<ElementType>;

    /// Whether the value is a usable coordinate: NaN and infinities poison
    /// every distance they touch, so inputs are screened for them.
    #[inline]
    fn is_finite(self) -> bool {
        true
    }
}

impl DatasetElement for f32 {
    const NAME: &'static str = "f32";
    const ELEMENT_TYPE: Option<ElementType> = Some(ElementType::F32);
    #[inline]
    fn is_finite(self) -> bool {
        f32::is_finite(self)
    }
}

impl DatasetElement for f16 {
    const NAME: &'static str = "f16";
    const ELEMENT_TYPE: Option<ElementType> = Some(ElementType::F16);
    #[inline]
    fn is_finite(self) -> bool {
        f16::is_finite(self)
    }
}

impl DatasetElement for u8 {
    const NAME: &'static str = "u8";
    const ELEMENT_TYPE: Option<ElementType> = Some(ElementType::U8);
}

impl DatasetElement for i8 {
    const NAME: &'static str = "i8";
    const ELEMENT_TYPE: Option<ElementType> = Some(ElementType::I8);
}

impl DatasetElement for i32 {
    const NAME: &'static str = "i32";
    const ELEMENT_TYPE: Option<ElementType> = None;
}

/// How rows are laid out in a vector file.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Layout {
    /// big-ann-benchmarks: one `int32 n, int32 d` header, then contiguous rows.
    BigAnn,
    /// TEXMEX: every row carries its own `int32 d` prefix.
    Texmex,
}

impl fmt::Display for Layout {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Layout::BigAnn => "big-ann",
            Layout::Texmex => "TEXMEX",
        })
    }
}

/// A vector file format, as named by its extension. The extension is the
/// only type information these formats carry, so it is trusted for the
/// element type and then checked against the file size.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum FileKind {
    Fbin,
    F16bin,
    U8bin,
    I8bin,
    Fvecs,
    Bvecs,
    Ivecs,
}

impl FileKind {
    /// Every kind, in the order help texts list them.
    pub const ALL: [FileKind; 7] = [
        FileKind::Fbin,
        FileKind::F16bin,
        FileKind::U8bin,
        FileKind::I8bin,
        FileKind::Fvecs,
        FileKind::Bvecs,
        FileKind::Ivecs,
    ];

    /// The extension, without the dot.
    pub const fn extension(self) -> &'static str {
        match self {
            FileKind::Fbin => "fbin",
            FileKind::F16bin => "f16bin",
            FileKind::U8bin => "u8bin",
            FileKind::I8bin => "i8bin",
            FileKind::Fvecs => "fvecs",
            FileKind::Bvecs => "bvecs",
            FileKind::Ivecs => "ivecs",
        }
    }

    /// The row layout.
    pub const fn layout(self) -> Layout {
        match self {
            FileKind::Fbin | FileKind::F16bin | FileKind::U8bin | FileKind::I8bin => Layout::BigAnn,
            FileKind::Fvecs | FileKind::Bvecs | FileKind::Ivecs => Layout::Texmex,
        }
    }

    /// The element's name, as [`DatasetElement::NAME`].
    pub const fn element_name(self) -> &'static str {
        match self {
            FileKind::Fbin | FileKind::Fvecs => "f32",
            FileKind::F16bin => "f16",
            FileKind::U8bin | FileKind::Bvecs => "u8",
            FileKind::I8bin => "i8",
            FileKind::Ivecs => "i32",
        }
    }

    /// Bytes per element.
    pub const fn element_size(self) -> usize {
        match self {
            FileKind::Fbin | FileKind::Fvecs | FileKind::Ivecs => 4,
            FileKind::F16bin => 2,
            FileKind::U8bin | FileKind::I8bin | FileKind::Bvecs => 1,
        }
    }

    /// The engine element type; `None` for `.ivecs`.
    pub const fn element_type(self) -> Option<ElementType> {
        match self {
            FileKind::Fbin | FileKind::Fvecs => Some(ElementType::F32),
            FileKind::F16bin => Some(ElementType::F16),
            FileKind::U8bin | FileKind::Bvecs => Some(ElementType::U8),
            FileKind::I8bin => Some(ElementType::I8),
            FileKind::Ivecs => None,
        }
    }

    /// The big-ann kind that stores `element`.
    pub const fn bigann(element: ElementType) -> FileKind {
        match element {
            ElementType::F32 => FileKind::Fbin,
            ElementType::F16 => FileKind::F16bin,
            ElementType::U8 => FileKind::U8bin,
            ElementType::I8 => FileKind::I8bin,
        }
    }

    /// The kind named by `path`'s extension (case-insensitive).
    pub fn from_path(path: &Path) -> Result<FileKind> {
        let ext = path
            .extension()
            .and_then(|e| e.to_str())
            .map(str::to_ascii_lowercase)
            .unwrap_or_default();
        FileKind::ALL
            .into_iter()
            .find(|k| k.extension() == ext)
            .ok_or_else(|| {
                let known: Vec<String> = FileKind::ALL
                    .iter()
                    .map(|k| format!(".{}", k.extension()))
                    .collect();
                FormatError::InvalidArgument(format!(
                    "{}: cannot tell the vector format from the extension {:?}; \
                     expected one of {}",
                    path.display(),
                    ext,
                    known.join(", ")
                ))
            })
    }
}

impl fmt::Display for FileKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, ".{}", self.extension())
    }
}

/// Reads a little-endian `int32` at `offset`, or `None` past the end.
fn read_i32(bytes: &[u8], offset: usize) -> Option<i32> {
    let end = offset.checked_add(4)?;
    let raw: [u8; 4] = bytes.get(offset..end)?.try_into().ok()?;
    Some(i32::from_le_bytes(raw))
}

/// Views `bytes` as `&[T]`; `None` if the length or alignment is wrong.
fn cast_slice<T: DatasetElement>(bytes: &[u8]) -> Option<&[T]> {
    <[T]>::ref_from_bytes(bytes).ok()
}

/// The byte size as a `u64`, which every offset in an error uses.
fn u64_of(n: usize) -> u64 {
    u64::try_from(n).unwrap_or(u64::MAX)
}

/// `dim` as the int32 a file header stores, if it is a valid dimension.
fn header_dim(path: &Path, dim: usize) -> Result<i32> {
    i32::try_from(dim)
        .ok()
        .filter(|_| (1..=MAX_DIM).contains(&dim))
        .ok_or_else(|| {
            FormatError::InvalidArgument(format!(
                "{}: dimension {dim} is outside 1..={MAX_DIM}",
                path.display()
            ))
        })
}

/// Writers take whole rows only.
fn check_whole_rows(path: &Path, values: usize, dim: usize) -> Result<()> {
    if values.is_multiple_of(dim) {
        Ok(())
    } else {
        Err(FormatError::InvalidArgument(format!(
            "{}: {values} values are not a whole number of rows of dimension {dim}",
            path.display()
        )))
    }
}
