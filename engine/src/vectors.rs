//! Read access to a set of vectors, whatever holds them (a mapped dataset
//! file, a shard copied into RAM, a memtable), so that graph building,
//! quantizer training and exact search are written once.

use crate::distance::Element;

/// A fixed-dimension set of vectors addressed by dense ids `0..len`.
pub trait VectorSet<T: Element>: Sync {
    /// Number of vectors.
    fn len(&self) -> usize;

    /// Components per vector.
    fn dim(&self) -> usize;

    /// Vector `id`; panics if `id >= len()` (ids are internal, never input).
    fn get(&self, id: usize) -> &[T];

    /// Whether the set is empty.
    fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// Vectors stored back to back in one slice, row-major.
#[derive(Debug, Clone, Copy)]
pub struct FlatVectors<'a, T> {
    data: &'a [T],
    dim: usize,
}

impl<'a, T: Element> FlatVectors<'a, T> {
    /// Wraps `data`, which must hold a whole number of `dim`-long rows.
    pub fn new(data: &'a [T], dim: usize) -> Option<Self> {
        (dim > 0 && data.len().is_multiple_of(dim)).then_some(FlatVectors { data, dim })
    }

    /// The underlying slice.
    pub fn as_slice(&self) -> &'a [T] {
        self.data
    }
}

impl<T: Element> VectorSet<T> for FlatVectors<'_, T> {
    fn len(&self) -> usize {
        self.data.len() / self.dim
    }

    fn dim(&self) -> usize {
        self.dim
    }

    fn get(&self, id: usize) -> &[T] {
        &self.data[id * self.dim..(id + 1) * self.dim]
    }
}

/// Element types that widen to f32: k-means, quantizers and the exact
/// rerank all work in f32 whatever the stored type.
pub trait Widen: Element {
    /// Zero, to initialise buffers that rows are copied into.
    const ZERO: Self;

    /// The value as f32 (exact for u8, i8 and f16).
    fn widen(self) -> f32;
}

impl Widen for f32 {
    const ZERO: Self = 0.0;

    fn widen(self) -> f32 {
        self
    }
}

impl Widen for half::f16 {
    const ZERO: Self = half::f16::ZERO;

    fn widen(self) -> f32 {
        self.to_f32()
    }
}

impl Widen for u8 {
    const ZERO: Self = 0;

    fn widen(self) -> f32 {
        f32::from(self)
    }
}

impl Widen for i8 {
    const ZERO: Self = 0;

    fn widen(self) -> f32 {
        f32::from(self)
    }
}
