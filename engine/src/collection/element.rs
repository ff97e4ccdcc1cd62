//! The element type of a collection's vectors (f32, f16, u8, i8; SPEC.md
//! §8.5): which values a row may hold, and building segments of that type.
//!
//! Callers always pass f32 components. A row of a narrower type is checked
//! (u8 and i8 take integers in range, f16 finite values within ±65504) and
//! f16 components are rounded to the nearest f16 *before* the write is
//! logged, so the WAL, the memtable and the segments hold the same values
//! and a search sees the same distances in every part. The memtable keeps
//! them widened to f32 (exact for every type), which its SIMD scan reads
//! directly; the WAL and the segments store the narrow type.

use std::marker::PhantomData;
use std::path::Path;

use half::f16;
use omen_format::dataset::DatasetElement;
use omen_format::{ElementType, Metric};

use crate::index::{BuildOptions, BuildRows, build_flat_segment, build_segment};
use crate::vectors::Widen;
use crate::{EngineError, Result};

/// The value `x` is stored as in a collection of `element_type`, or why it
/// cannot be. `x` is finite (checked before).
pub(crate) fn stored_value(element_type: ElementType, x: f32) -> std::result::Result<f32, String> {
    match element_type {
        ElementType::F32 => Ok(x),
        ElementType::F16 => {
            let h = f16::from_f32(x);
            if h.is_finite() {
                Ok(h.to_f32())
            } else {
                Err(format!("{x} is outside the f16 range (±65504)"))
            }
        }
        ElementType::U8 => integer_in(x, 0.0, 255.0, "u8 (0..=255)"),
        ElementType::I8 => integer_in(x, -128.0, 127.0, "i8 (-128..=127)"),
    }
}

fn integer_in(x: f32, low: f32, high: f32, what: &str) -> std::result::Result<f32, String> {
    if x.fract() != 0.0 {
        Err(format!("{x} is not an integer, as {what} requires"))
    } else if !(low..=high).contains(&x) {
        Err(format!("{x} is outside {what}"))
    } else {
        Ok(x)
    }
}

/// An element type a collection stores: narrowing from the f32 values a
/// collection holds, which [`stored_value`] made exact.
trait Narrow: Widen + DatasetElement {
    fn narrow(x: f32) -> Self;
}

impl Narrow for f32 {
    fn narrow(x: f32) -> Self {
        x
    }
}

impl Narrow for f16 {
    fn narrow(x: f32) -> Self {
        f16::from_f32(x)
    }
}

impl Narrow for u8 {
    fn narrow(x: f32) -> Self {
        x as u8
    }
}

impl Narrow for i8 {
    fn narrow(x: f32) -> Self {
        x as i8
    }
}

/// f32 rows read as element type `T`.
struct Narrowed<'a, T> {
    rows: &'a dyn BuildRows<f32>,
    _type: PhantomData<T>,
}

impl<T: Narrow> BuildRows<T> for Narrowed<'_, T> {
    fn len(&self) -> usize {
        self.rows.len()
    }
    fn dim(&self) -> usize {
        self.rows.dim()
    }
    fn read_rows(&self, first: usize, out: &mut [T]) -> Result<()> {
        let mut wide = vec![0f32; out.len()];
        self.rows.read_rows(first, &mut wide)?;
        for (o, &x) in out.iter_mut().zip(&wide) {
            *o = T::narrow(x);
        }
        Ok(())
    }
    fn id(&self, row: usize) -> u64 {
        self.rows.id(row)
    }
    fn describe(&self) -> String {
        self.rows.describe()
    }
}

/// Writes a segment of `element_type` at `path` from f32 `rows`: a flat
/// index (a flush) or a graph (a compaction).
pub(crate) fn build_typed(
    element_type: ElementType,
    flat: bool,
    rows: &dyn BuildRows<f32>,
    metric: Metric,
    path: &Path,
    options: &BuildOptions,
) -> Result<()> {
    fn build<T: Narrow>(
        flat: bool,
        rows: &dyn BuildRows<f32>,
        metric: Metric,
        path: &Path,
        options: &BuildOptions,
    ) -> Result<()> {
        let typed = Narrowed::<T> {
            rows,
            _type: PhantomData,
        };
        if flat {
            build_flat_segment(&typed, metric, path, options, &|_, _, _| {})?;
        } else {
            build_segment(&typed, metric, path, options, &|_, _, _| {})?;
        }
        Ok(())
    }
    match element_type {
        ElementType::F32 => {
            // No copy: the rows are already f32.
            if flat {
                build_flat_segment(rows, metric, path, options, &|_, _, _| {})?;
            } else {
                build_segment(rows, metric, path, options, &|_, _, _| {})?;
            }
            Ok(())
        }
        ElementType::F16 => build::<f16>(flat, rows, metric, path, options),
        ElementType::U8 => build::<u8>(flat, rows, metric, path, options),
        ElementType::I8 => build::<i8>(flat, rows, metric, path, options),
    }
}

/// Fails, as corruption of the segment's superblock, unless
/// `segment_type` is the collection's element type.
pub(crate) fn check_segment_type(
    path: &Path,
    segment_type: ElementType,
    collection_type: ElementType,
) -> Result<()> {
    if segment_type == collection_type {
        return Ok(());
    }
    Err(EngineError::Format(omen_format::FormatError::Corrupt {
        path: path.to_path_buf(),
        what: "superblock field element_type".into(),
        offset: 56,
        reason: format!(
            "the segment holds {segment_type} vectors, its collection stores {collection_type}"
        ),
    }))
}
