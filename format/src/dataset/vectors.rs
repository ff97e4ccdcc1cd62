//! Typed, zero-copy views of mapped vector files.
//!
//! Invariant: a [`Vectors`] view holds `len` rows of `dim` values at a fixed
//! `stride` (in elements) inside `data`, each row starting `lead` elements
//! into its stride (the TEXMEX `int32 d` prefix, 0 for big-ann), and
//! `data.len() == len * stride` exactly; so every in-range row lookup is in
//! bounds, and the view knows the file offset of each value for errors.

use std::fmt;
use std::marker::PhantomData;
use std::ops::Range;
use std::path::Path;

use super::{DatasetElement, FileKind, Layout, RowReader, bigann, cast_slice, texmex, u64_of};
use crate::mmap::MappedFile;
use crate::{ElementType, FormatError, Result};

/// Where rows sit in a file, as found by a layout's parser.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Shape {
    /// Rows.
    pub n: usize,
    /// Values per row.
    pub dim: usize,
    /// Byte offset of the typed region the view starts at.
    pub data_offset: usize,
    /// Elements from one row's start to the next's.
    pub stride: usize,
    /// Elements to skip at the start of each stride.
    pub lead: usize,
}

/// A vector file opened and validated, typed by its element `T`.
pub struct VectorFile<T> {
    map: MappedFile,
    layout: Layout,
    shape: Shape,
    _element: PhantomData<fn() -> T>,
}

impl<T> fmt::Debug for VectorFile<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("VectorFile")
            .field("path", &self.map.path())
            .field("layout", &self.layout)
            .field("len", &self.shape.n)
            .field("dim", &self.shape.dim)
            .finish()
    }
}

impl<T: DatasetElement> VectorFile<T> {
    /// Opens `path`, taking the layout from its extension, which must name
    /// files of `T` (a `.u8bin` cannot be opened as `f32`).
    pub fn open(path: impl AsRef<Path>) -> Result<Self> {
        let path = path.as_ref();
        let kind = FileKind::from_path(path)?;
        if kind.element_name() != T::NAME {
            return Err(FormatError::InvalidArgument(format!(
                "{}: a {kind} file holds {} values, not {}",
                path.display(),
                kind.element_name(),
                T::NAME
            )));
        }
        Self::open_as(path, kind.layout())
    }

    /// Opens `path` as `layout` regardless of its extension.
    pub fn open_as(path: impl AsRef<Path>, layout: Layout) -> Result<Self> {
        let map = MappedFile::open(path)?;
        let size = std::mem::size_of::<T>();
        let shape = match layout {
            Layout::BigAnn => bigann::parse(map.path(), map.bytes(), T::NAME, size)?,
            Layout::Texmex => texmex::parse(map.path(), map.bytes(), T::NAME, size)?,
        };
        let file = VectorFile {
            map,
            layout,
            shape,
            _element: PhantomData,
        };
        // Checked once here so that `vectors()` can be infallible.
        if file.try_vectors().is_none() {
            return Err(FormatError::Corrupt {
                path: file.path().to_path_buf(),
                what: "vector data".into(),
                offset: u64_of(shape.data_offset),
                reason: format!("cannot be viewed as {} values", T::NAME),
            });
        }
        Ok(file)
    }

    fn try_vectors(&self) -> Option<Vectors<'_, T>> {
        let Shape {
            n,
            dim,
            data_offset,
            stride,
            lead,
        } = self.shape;
        let bytes = self.map.bytes().get(data_offset..)?;
        let data = cast_slice::<T>(bytes)?.get(..n.checked_mul(stride)?)?;
        Some(Vectors {
            path: self.map.path(),
            data,
            data_offset: u64_of(data_offset),
            first_row: 0,
            len: n,
            dim,
            stride,
            lead,
        })
    }

    /// The rows, as a cheap copyable view.
    pub fn vectors(&self) -> Vectors<'_, T> {
        self.try_vectors()
            .expect("the typed view was checked when the file was opened")
    }

    /// Number of rows.
    pub fn len(&self) -> usize {
        self.shape.n
    }

    /// Always false: readers reject files without rows.
    pub fn is_empty(&self) -> bool {
        self.shape.n == 0
    }

    /// Values per row.
    pub fn dim(&self) -> usize {
        self.shape.dim
    }

    /// The row layout.
    pub fn layout(&self) -> Layout {
        self.layout
    }

    /// The file this reads.
    pub fn path(&self) -> &Path {
        self.map.path()
    }

    /// The file's size in bytes.
    pub fn file_size(&self) -> u64 {
        u64_of(self.map.bytes().len())
    }

    /// Row `i`.
    ///
    /// # Panics
    /// If `i >= len()`, like slice indexing.
    pub fn row(&self, i: usize) -> &[T] {
        self.vectors().row(i)
    }

    /// Row `i`, or `None` if out of range.
    pub fn get(&self, i: usize) -> Option<&[T]> {
        self.vectors().get(i)
    }

    /// Rows `range` as one row-major slice: the zero-copy path for big-ann
    /// files. `None` if the range is out of bounds or the layout is TEXMEX,
    /// whose rows are not contiguous.
    pub fn rows(&self, range: Range<usize>) -> Option<&[T]> {
        self.vectors().slice(range)?.as_flat()
    }

    /// Tells the kernel the file will be read front to back.
    pub fn advise_sequential(&self) {
        self.map.advise_sequential();
    }

    /// Fails with [`FormatError::InvalidData`] at the first NaN or infinity.
    pub fn check_finite(&self) -> Result<()> {
        self.vectors().check_finite()
    }

    /// A positioned-read reader of this file's rows, for work that must not
    /// grow the resident set with mapped pages (see [`RowReader`]).
    pub fn row_reader(&self) -> Result<RowReader<T>> {
        RowReader::new(&self.vectors(), self.map.path())
    }
}

/// Rows of vectors, borrowed from a [`VectorFile`] or from memory.
pub struct Vectors<'a, T> {
    path: &'a Path,
    data: &'a [T],
    data_offset: u64,
    first_row: usize,
    len: usize,
    dim: usize,
    stride: usize,
    lead: usize,
}

impl<T> Clone for Vectors<'_, T> {
    fn clone(&self) -> Self {
        *self
    }
}

impl<T> Copy for Vectors<'_, T> {}

impl<T> fmt::Debug for Vectors<'_, T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Vectors")
            .field("path", &self.path)
            .field("first_row", &self.first_row)
            .field("len", &self.len)
            .field("dim", &self.dim)
            .finish()
    }
}

impl<'a, T: DatasetElement> Vectors<'a, T> {
    /// A view of a row-major buffer in memory; `label` stands in for a file
    /// path in error messages.
    pub fn from_slice(label: &'a Path, data: &'a [T], dim: usize) -> Result<Self> {
        if dim == 0 || !data.len().is_multiple_of(dim) {
            return Err(FormatError::InvalidArgument(format!(
                "{}: {} values do not form rows of dimension {dim}",
                label.display(),
                data.len()
            )));
        }
        Ok(Vectors {
            path: label,
            data,
            data_offset: 0,
            first_row: 0,
            len: data.len() / dim,
            dim,
            stride: dim,
            lead: 0,
        })
    }

    /// Number of rows.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether there are no rows (only possible for a sub-view).
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Values per row.
    pub fn dim(&self) -> usize {
        self.dim
    }

    /// The file (or label) the rows come from.
    pub fn path(&self) -> &'a Path {
        self.path
    }

    /// The element type, if `T` is a searchable one.
    pub fn element_type(&self) -> Option<ElementType> {
        T::ELEMENT_TYPE
    }

    /// Row `i`, or `None` if out of range.
    #[inline]
    pub fn get(&self, i: usize) -> Option<&'a [T]> {
        if i >= self.len {
            return None;
        }
        let start = i.checked_mul(self.stride)?.checked_add(self.lead)?;
        self.data.get(start..start.checked_add(self.dim)?)
    }

    /// Row `i`.
    ///
    /// # Panics
    /// If `i >= len()`, like slice indexing.
    #[inline]
    pub fn row(&self, i: usize) -> &'a [T] {
        match self.get(i) {
            Some(row) => row,
            None => panic!(
                "row {i} out of range: {} has {} rows",
                self.path.display(),
                self.len
            ),
        }
    }

    /// The rows in order.
    pub fn iter(&self) -> impl ExactSizeIterator<Item = &'a [T]> + DoubleEndedIterator + 'a {
        let lead = self.lead;
        // `data.len() == len * stride` (module invariant), so the chunks are
        // exactly the rows and each is `lead + dim` long.
        self.data
            .chunks_exact(self.stride)
            .map(move |chunk| chunk.get(lead..).unwrap_or_default())
    }

    /// Rows `range` as a view of its own (row 0 of it is row `range.start`
    /// here); `None` if the range is out of bounds.
    pub fn slice(&self, range: Range<usize>) -> Option<Vectors<'a, T>> {
        if range.start > range.end || range.end > self.len {
            return None;
        }
        let start = range.start.checked_mul(self.stride)?;
        let end = range.end.checked_mul(self.stride)?;
        let skipped = u64_of(start.checked_mul(std::mem::size_of::<T>())?);
        Some(Vectors {
            path: self.path,
            data: self.data.get(start..end)?,
            data_offset: self.data_offset.checked_add(skipped)?,
            first_row: self.first_row.checked_add(range.start)?,
            len: range.len(),
            dim: self.dim,
            stride: self.stride,
            lead: self.lead,
        })
    }

    /// All rows as one row-major slice, if they are contiguous (big-ann and
    /// in-memory views; not TEXMEX).
    pub fn as_flat(&self) -> Option<&'a [T]> {
        (self.lead == 0 && self.stride == self.dim).then_some(self.data)
    }

    /// The byte offset in the file of row `i`'s first value.
    pub fn row_offset(&self, i: usize) -> u64 {
        let elements = u64_of(i)
            .saturating_mul(u64_of(self.stride))
            .saturating_add(u64_of(self.lead));
        self.data_offset
            .saturating_add(elements.saturating_mul(u64_of(std::mem::size_of::<T>())))
    }

    /// Fails with [`FormatError::InvalidData`] naming the file, the row, the
    /// component and the byte offset of the first NaN or infinity. A no-op
    /// for integer elements.
    pub fn check_finite(&self) -> Result<()> {
        if T::NAME != "f32" && T::NAME != "f16" {
            return Ok(());
        }
        for (i, row) in self.iter().enumerate() {
            // A fold rather than `all` so that the common, clean case
            // vectorises instead of branching per value.
            if row.iter().fold(true, |ok, &x| ok & x.is_finite()) {
                continue;
            }
            let Some((c, value)) = row.iter().enumerate().find(|(_, x)| !x.is_finite()) else {
                continue;
            };
            let offset = self
                .row_offset(i)
                .saturating_add(u64_of(c).saturating_mul(u64_of(std::mem::size_of::<T>())));
            return Err(FormatError::InvalidData {
                path: self.path.to_path_buf(),
                offset,
                reason: format!(
                    "row {}, component {c} is {value:?}; vectors must be finite",
                    self.first_row.saturating_add(i)
                ),
            });
        }
        Ok(())
    }
}

/// A vector file of any element type, for code that learns the type from
/// the file name at run time (command-line tools).
#[derive(Debug)]
pub enum AnyVectorFile {
    F32(VectorFile<f32>),
    F16(VectorFile<half::f16>),
    U8(VectorFile<u8>),
    I8(VectorFile<i8>),
    I32(VectorFile<i32>),
}

/// Applies an expression to the inner file of every variant.
macro_rules! each {
    ($self:expr, $f:ident => $e:expr) => {
        match $self {
            AnyVectorFile::F32($f) => $e,
            AnyVectorFile::F16($f) => $e,
            AnyVectorFile::U8($f) => $e,
            AnyVectorFile::I8($f) => $e,
            AnyVectorFile::I32($f) => $e,
        }
    };
}

impl AnyVectorFile {
    /// Opens `path` with the format its extension names.
    pub fn open(path: impl AsRef<Path>) -> Result<Self> {
        let path = path.as_ref();
        Self::open_kind(path, FileKind::from_path(path)?)
    }

    /// Opens `path` as `kind` regardless of its extension.
    pub fn open_kind(path: impl AsRef<Path>, kind: FileKind) -> Result<Self> {
        let layout = kind.layout();
        Ok(match kind {
            FileKind::Fbin | FileKind::Fvecs => Self::F32(VectorFile::open_as(path, layout)?),
            FileKind::F16bin => Self::F16(VectorFile::open_as(path, layout)?),
            FileKind::U8bin | FileKind::Bvecs => Self::U8(VectorFile::open_as(path, layout)?),
            FileKind::I8bin => Self::I8(VectorFile::open_as(path, layout)?),
            FileKind::Ivecs => Self::I32(VectorFile::open_as(path, layout)?),
        })
    }

    /// Number of rows.
    pub fn len(&self) -> usize {
        each!(self, f => f.len())
    }

    /// Always false: readers reject files without rows.
    pub fn is_empty(&self) -> bool {
        each!(self, f => f.is_empty())
    }

    /// Values per row.
    pub fn dim(&self) -> usize {
        each!(self, f => f.dim())
    }

    /// The file this reads.
    pub fn path(&self) -> &Path {
        each!(self, f => f.path())
    }

    /// The row layout.
    pub fn layout(&self) -> Layout {
        each!(self, f => f.layout())
    }

    /// The file's size in bytes.
    pub fn file_size(&self) -> u64 {
        each!(self, f => f.file_size())
    }

    /// The element's name (`f32`, `u8`, ...).
    pub fn element_name(&self) -> &'static str {
        match self {
            Self::F32(_) => "f32",
            Self::F16(_) => "f16",
            Self::U8(_) => "u8",
            Self::I8(_) => "i8",
            Self::I32(_) => "i32",
        }
    }

    /// The engine element type; `None` for `i32` files.
    pub fn element_type(&self) -> Option<ElementType> {
        match self {
            Self::F32(_) => Some(ElementType::F32),
            Self::F16(_) => Some(ElementType::F16),
            Self::U8(_) => Some(ElementType::U8),
            Self::I8(_) => Some(ElementType::I8),
            Self::I32(_) => None,
        }
    }

    /// Tells the kernel the file will be read front to back.
    pub fn advise_sequential(&self) {
        each!(self, f => f.advise_sequential())
    }

    /// Fails with [`FormatError::InvalidData`] at the first NaN or infinity.
    pub fn check_finite(&self) -> Result<()> {
        each!(self, f => f.check_finite())
    }
}
