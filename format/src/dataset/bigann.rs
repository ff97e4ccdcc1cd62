//! big-ann-benchmarks vector files: `int32 n, int32 d`, then `n × d` values
//! row-major (`.fbin`, `.f16bin`, `.u8bin`, `.i8bin`).
//!
//! Invariant: a file is accepted only if `1 <= n`, `1 <= d <= MAX_DIM` and
//! its size is exactly `8 + n × d × size_of(T)`; the writer produces nothing
//! else, and only under the final name once complete.

use std::marker::PhantomData;
use std::path::Path;

use zerocopy::IntoBytes;

use super::vectors::Shape;
use super::{DatasetElement, MAX_DIM, MAX_ROWS, read_i32, u64_of};
use crate::atomic::AtomicFile;
use crate::{FormatError, Result};

/// Bytes before the first value.
pub const HEADER_BYTES: usize = 8;

/// Validates the header and size of a big-ann file of `size`-byte
/// `element`s.
pub(crate) fn parse(path: &Path, bytes: &[u8], element: &str, size: usize) -> Result<Shape> {
    let actual = u64_of(bytes.len());
    let (Some(n), Some(d)) = (read_i32(bytes, 0), read_i32(bytes, 4)) else {
        return Err(FormatError::Truncated {
            path: path.to_path_buf(),
            what: "big-ann header (int32 n, int32 d)".into(),
            needed: u64_of(HEADER_BYTES),
            actual,
        });
    };
    if n <= 0 {
        return Err(FormatError::InvalidData {
            path: path.to_path_buf(),
            offset: 0,
            reason: format!("the header gives n = {n} vectors; it must be positive"),
        });
    }
    let dim_ok = usize::try_from(d).is_ok_and(|d| (1..=MAX_DIM).contains(&d));
    if !dim_ok {
        return Err(FormatError::InvalidData {
            path: path.to_path_buf(),
            offset: 4,
            reason: format!("the header gives dimension d = {d}; it must be in 1..={MAX_DIM}"),
        });
    }
    // Both positive and bounded, so these conversions and products fit.
    let (n64, d64) = (n.unsigned_abs() as u64, d.unsigned_abs() as u64);
    let expected = n64
        .checked_mul(d64)
        .and_then(|v| v.checked_mul(u64_of(size)))
        .and_then(|v| v.checked_add(u64_of(HEADER_BYTES)))
        .ok_or_else(|| FormatError::InvalidData {
            path: path.to_path_buf(),
            offset: 0,
            reason: format!("n = {n}, d = {d} overflow the file size"),
        })?;
    if actual < expected {
        return Err(FormatError::Truncated {
            path: path.to_path_buf(),
            what: format!("{n} × {d} {element} vectors (8 + n × d × {size} = {expected} bytes)"),
            needed: expected,
            actual,
        });
    }
    if actual > expected {
        return Err(FormatError::InvalidData {
            path: path.to_path_buf(),
            offset: expected,
            reason: format!(
                "the file has {actual} bytes, but its header (n = {n}, d = {d}) implies \
                 8 + n × d × {size} = {expected} for {element} values; {} bytes are left over \
                 (wrong element type or a damaged header?)",
                actual - expected
            ),
        });
    }
    let too_big = || FormatError::InvalidData {
        path: path.to_path_buf(),
        offset: 0,
        reason: "the file is too large to map on this platform".into(),
    };
    Ok(Shape {
        n: usize::try_from(n).map_err(|_| too_big())?,
        dim: usize::try_from(d).map_err(|_| too_big())?,
        data_offset: HEADER_BYTES,
        stride: usize::try_from(d).map_err(|_| too_big())?,
        lead: 0,
    })
}

/// What a writer produced.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WriteSummary {
    /// Rows written.
    pub rows: u64,
    /// Values per row.
    pub dim: usize,
    /// Bytes in the final file.
    pub bytes: u64,
}

/// Streams rows into a big-ann file without holding them: the header's `n`
/// is patched in by [`finish`](Self::finish), which also fsyncs and renames
/// `<path>.tmp` into place. Dropping the writer unfinished deletes the
/// temporary file.
#[derive(Debug)]
pub struct BigAnnWriter<T> {
    file: AtomicFile,
    dim: usize,
    rows: u64,
    _element: PhantomData<fn(T)>,
}

impl<T: DatasetElement> BigAnnWriter<T> {
    /// Starts writing `path` with rows of `dim` values.
    pub fn create(path: impl AsRef<Path>, dim: usize) -> Result<Self> {
        let path = path.as_ref();
        let d = super::header_dim(path, dim)?;
        let mut file = AtomicFile::create(path)?;
        file.write(&0i32.to_le_bytes())?;
        file.write(&d.to_le_bytes())?;
        Ok(BigAnnWriter {
            file,
            dim,
            rows: 0,
            _element: PhantomData,
        })
    }

    /// Appends whole rows: `values.len()` must be a multiple of the
    /// dimension.
    pub fn push(&mut self, values: &[T]) -> Result<()> {
        super::check_whole_rows(self.file.path(), values.len(), self.dim)?;
        let rows = self.rows.saturating_add(u64_of(values.len() / self.dim));
        if rows > MAX_ROWS {
            return Err(FormatError::InvalidArgument(format!(
                "{}: more than {MAX_ROWS} rows do not fit the int32 header",
                self.file.path().display()
            )));
        }
        self.file.write(values.as_bytes())?;
        self.rows = rows;
        Ok(())
    }

    /// Rows appended so far.
    pub fn rows(&self) -> u64 {
        self.rows
    }

    /// Values per row.
    pub fn dim(&self) -> usize {
        self.dim
    }

    /// Writes the row count, makes the file durable and renames it into
    /// place. A file with no rows is refused, since readers reject `n = 0`.
    pub fn finish(self) -> Result<WriteSummary> {
        let n = i32::try_from(self.rows)
            .ok()
            .filter(|&n| n > 0)
            .ok_or_else(|| {
                FormatError::InvalidArgument(format!(
                    "{}: refusing to write a file with {} rows (need 1..={MAX_ROWS})",
                    self.file.path().display(),
                    self.rows
                ))
            })?;
        let bytes = self.file.commit(&[(0, &n.to_le_bytes())])?;
        Ok(WriteSummary {
            rows: self.rows,
            dim: self.dim,
            bytes,
        })
    }
}

/// Writes a whole in-memory row-major buffer as a big-ann file.
pub fn write<T: DatasetElement>(
    path: impl AsRef<Path>,
    dim: usize,
    values: &[T],
) -> Result<WriteSummary> {
    let mut w = BigAnnWriter::create(path, dim)?;
    w.push(values)?;
    w.finish()
}
