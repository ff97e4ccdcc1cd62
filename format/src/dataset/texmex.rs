//! TEXMEX vector files (the SIFT/GIST corpora): every row is `int32 d`
//! followed by `d` values — `.fvecs` (f32), `.bvecs` (u8), `.ivecs` (i32).
//!
//! Invariant: a file is accepted only if its first `d` is in `1..=MAX_DIM`,
//! every row repeats that `d`, and the size is a whole number of rows. There
//! is no row count in the file, so opening reads every row's prefix (a
//! sequential pass over the mapping); the rows themselves are not copied.

use std::marker::PhantomData;
use std::path::Path;

use zerocopy::IntoBytes;

use super::bigann::WriteSummary;
use super::vectors::Shape;
use super::{DatasetElement, MAX_DIM, read_i32, u64_of};
use crate::atomic::AtomicFile;
use crate::{FormatError, Result};

/// Bytes of each row's dimension prefix.
pub const ROW_PREFIX_BYTES: usize = 4;

/// Validates every row prefix and the size of a TEXMEX file of `size`-byte
/// `element`s.
pub(crate) fn parse(path: &Path, bytes: &[u8], element: &str, size: usize) -> Result<Shape> {
    let actual = u64_of(bytes.len());
    let Some(d) = read_i32(bytes, 0) else {
        return Err(FormatError::Truncated {
            path: path.to_path_buf(),
            what: "the dimension (int32) of row 0".into(),
            needed: u64_of(ROW_PREFIX_BYTES),
            actual,
        });
    };
    let dim = usize::try_from(d)
        .ok()
        .filter(|d| (1..=MAX_DIM).contains(d))
        .ok_or_else(|| FormatError::InvalidData {
            path: path.to_path_buf(),
            offset: 0,
            reason: format!("row 0 gives dimension d = {d}; it must be in 1..={MAX_DIM}"),
        })?;
    // `size` divides 4 for every element type (1, 2 or 4 bytes), so rows
    // are a whole number of elements and the prefix a whole number of them.
    if size == 0 || !ROW_PREFIX_BYTES.is_multiple_of(size) {
        return Err(FormatError::InvalidArgument(format!(
            "{}: TEXMEX rows cannot hold {size}-byte elements",
            path.display()
        )));
    }
    let row_bytes = dim
        .checked_mul(size)
        .and_then(|b| b.checked_add(ROW_PREFIX_BYTES))
        .ok_or_else(|| FormatError::InvalidArgument("row size overflows".into()))?;
    let full_rows = bytes.len() / row_bytes;
    let remainder = bytes.len() % row_bytes;
    let row_count = if remainder == 0 {
        full_rows
    } else {
        full_rows.saturating_add(1)
    };
    for r in 1..row_count {
        let offset = r.saturating_mul(row_bytes);
        match read_i32(bytes, offset) {
            Some(dr) if dr == d => {}
            Some(dr) => {
                return Err(FormatError::InvalidData {
                    path: path.to_path_buf(),
                    offset: u64_of(offset),
                    reason: format!(
                        "row {r} gives dimension {dr}, but row 0 gives {d}; \
                         every row of a TEXMEX file must have the same dimension"
                    ),
                });
            }
            // The remainder is shorter than a prefix; reported below.
            None => break,
        }
    }
    if remainder != 0 {
        return Err(FormatError::Truncated {
            path: path.to_path_buf(),
            what: format!(
                "row {full_rows} (int32 d + {dim} {element} values = {row_bytes} bytes per row)"
            ),
            needed: u64_of(full_rows.saturating_add(1).saturating_mul(row_bytes)),
            actual,
        });
    }
    let lead = ROW_PREFIX_BYTES / size;
    Ok(Shape {
        n: full_rows,
        dim,
        data_offset: 0,
        stride: row_bytes / size,
        lead,
    })
}

/// Streams rows into a TEXMEX file through `<path>.tmp` and a final
/// rename; mainly for tests and for converting datasets.
#[derive(Debug)]
pub struct TexmexWriter<T> {
    file: AtomicFile,
    dim: usize,
    prefix: [u8; 4],
    rows: u64,
    _element: PhantomData<fn(T)>,
}

impl<T: DatasetElement> TexmexWriter<T> {
    /// Starts writing `path` with rows of `dim` values.
    pub fn create(path: impl AsRef<Path>, dim: usize) -> Result<Self> {
        let path = path.as_ref();
        let d = super::header_dim(path, dim)?;
        if !ROW_PREFIX_BYTES.is_multiple_of(std::mem::size_of::<T>()) {
            return Err(FormatError::InvalidArgument(format!(
                "{}: TEXMEX rows cannot hold {} values",
                path.display(),
                T::NAME
            )));
        }
        Ok(TexmexWriter {
            file: AtomicFile::create(path)?,
            dim,
            prefix: d.to_le_bytes(),
            rows: 0,
            _element: PhantomData,
        })
    }

    /// Appends whole rows: `values.len()` must be a multiple of the
    /// dimension.
    pub fn push(&mut self, values: &[T]) -> Result<()> {
        super::check_whole_rows(self.file.path(), values.len(), self.dim)?;
        for row in values.chunks_exact(self.dim) {
            self.file.write(&self.prefix)?;
            self.file.write(row.as_bytes())?;
            self.rows = self.rows.saturating_add(1);
        }
        Ok(())
    }

    /// Makes the file durable and renames it into place; refuses an empty
    /// file, which readers reject.
    pub fn finish(self) -> Result<WriteSummary> {
        if self.rows == 0 {
            return Err(FormatError::InvalidArgument(format!(
                "{}: refusing to write a file with no rows",
                self.file.path().display()
            )));
        }
        let rows = self.rows;
        let dim = self.dim;
        let bytes = self.file.commit(&[])?;
        Ok(WriteSummary { rows, dim, bytes })
    }
}

/// Writes a whole in-memory row-major buffer as a TEXMEX file.
pub fn write<T: DatasetElement>(
    path: impl AsRef<Path>,
    dim: usize,
    values: &[T],
) -> Result<WriteSummary> {
    let mut w = TexmexWriter::create(path, dim)?;
    w.push(values)?;
    w.finish()
}
