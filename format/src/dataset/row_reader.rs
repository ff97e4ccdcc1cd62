//! Positioned reads of rows from a vector file, for builds that must stay
//! within a memory budget.
//!
//! A memory map is convenient, but every page it touches counts against the
//! process's resident set until the kernel decides to evict it, so a build
//! that streams a 50 GB input through a map looks like it uses 50 GB. Reads
//! with `pread` go through the page cache, which the kernel reclaims freely
//! and which is not charged to the process.
//!
//! Invariant: every float row handed out is finite. NaN and infinity are
//! rejected here, with the file and byte offset, so no build consumes them.

use std::fs::File;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

use zerocopy::IntoBytes;

use super::{DatasetElement, Vectors, u64_of};
use crate::{FormatError, Result};

/// Reads rows of one vector file by position; shareable across threads.
#[derive(Debug)]
pub struct RowReader<T> {
    file: File,
    path: PathBuf,
    len: usize,
    dim: usize,
    /// Byte offset of row 0's first value.
    first_offset: u64,
    /// Bytes from one row's first value to the next's.
    row_stride: u64,
    _element: std::marker::PhantomData<fn() -> T>,
}

impl<T: DatasetElement> RowReader<T> {
    /// A reader of the rows `vectors` views (all rows of a file).
    pub(crate) fn new(vectors: &Vectors<'_, T>, path: &Path) -> Result<Self> {
        let file = File::open(path).map_err(|e| FormatError::io(path, e))?;
        let first_offset = vectors.row_offset(0);
        let row_stride = if vectors.len() > 1 {
            vectors.row_offset(1) - first_offset
        } else {
            u64_of(vectors.dim() * size_of::<T>())
        };
        Ok(RowReader {
            file,
            path: path.to_path_buf(),
            len: vectors.len(),
            dim: vectors.dim(),
            first_offset,
            row_stride,
            _element: std::marker::PhantomData,
        })
    }

    /// Number of rows.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether the file has no rows.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Values per row.
    pub fn dim(&self) -> usize {
        self.dim
    }

    /// The file read.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Copies rows `first .. first + out.len() / dim()` into `out` and
    /// checks that float values are finite.
    pub fn read_rows(&self, first: usize, out: &mut [T]) -> Result<()> {
        let rows = out.len() / self.dim.max(1);
        if !out.len().is_multiple_of(self.dim.max(1))
            || first.checked_add(rows).is_none_or(|end| end > self.len)
        {
            return Err(FormatError::InvalidArgument(format!(
                "{}: rows {first}..+{rows} of {} requested into a buffer of {} values",
                self.path.display(),
                self.len,
                out.len()
            )));
        }
        let row_bytes = u64_of(self.dim * size_of::<T>());
        let offset = self.first_offset + u64_of(first) * self.row_stride;
        if self.row_stride == row_bytes {
            self.pread(out.as_mut_bytes(), offset)?;
        } else {
            for (k, row) in out.chunks_exact_mut(self.dim).enumerate() {
                self.pread(row.as_mut_bytes(), offset + u64_of(k) * self.row_stride)?;
            }
        }
        self.check_finite(first, out)
    }

    fn pread(&self, buf: &mut [u8], offset: u64) -> Result<()> {
        self.file
            .read_exact_at(buf, offset)
            .map_err(|e| FormatError::io(&self.path, e))
    }

    fn check_finite(&self, first: usize, rows: &[T]) -> Result<()> {
        // A fold rather than `all`, so the clean case vectorises.
        if rows.iter().fold(true, |ok, &x| ok & x.is_finite()) {
            return Ok(());
        }
        let Some((i, value)) = rows.iter().enumerate().find(|(_, x)| !x.is_finite()) else {
            return Ok(());
        };
        let (row, component) = (first + i / self.dim, i % self.dim);
        Err(FormatError::InvalidData {
            path: self.path.clone(),
            offset: self.first_offset
                + u64_of(row) * self.row_stride
                + u64_of(component * size_of::<T>()),
            reason: format!(
                "row {row}, component {component} is {value:?}; vectors must be finite"
            ),
        })
    }
}
