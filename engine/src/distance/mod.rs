//! Distance kernels for every element type and metric, dispatched at run time
//! to the widest SIMD level the CPU supports.
//!
//! The public contract: [`Kernels::best`] returns the fastest kernel set for
//! an element type, detected once per process; [`Kernels::for_level`] returns
//! a specific level (benchmarks and tests compare every level against
//! [`SimdLevel::Scalar`]). All kernels of one set agree with the scalar
//! reference to within floating-point reassociation error; integer kernels
//! agree exactly.
//!
//! Smaller is closer for every metric (see [`Metric`]).
//!
//! Invariant: `unsafe` lives only in the architecture leaf modules (`x86`,
//! `neon`). Their kernels are safe `fn`s that may only run on a CPU with the
//! level's features, and the one place that hands them out is
//! [`Element::kernels_for`], which checks [`SimdLevel::is_supported`] first.

#[cfg(target_arch = "aarch64")]
mod neon;
mod scalar;
#[cfg(target_arch = "x86_64")]
mod x86;

use std::sync::OnceLock;

use crate::Metric;
use omen_format::ElementType;

/// One kernel: two equally long slices in, a number out.
pub type KernelFn<T> = fn(&[T], &[T]) -> f32;

/// A kernel from one slice to four others at once: `out[i] = k(a, rows[i])`.
pub type Kernel4Fn<T> = fn(&[T], [&[T]; 4]) -> [f32; 4];

/// A SIMD instruction-set level.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SimdLevel {
    Scalar,
    Avx2,
    Avx512,
    Neon,
}

impl SimdLevel {
    /// Every level, narrowest first.
    pub const ALL: [SimdLevel; 4] = [
        SimdLevel::Scalar,
        SimdLevel::Avx2,
        SimdLevel::Avx512,
        SimdLevel::Neon,
    ];

    /// Whether this CPU can run kernels of this level, detected at run time:
    /// AVX2 needs AVX2 + FMA + F16C; AVX-512 needs those and AVX-512F +
    /// AVX-512BW; NEON needs an aarch64 CPU with NEON.
    pub fn is_supported(self) -> bool {
        match self {
            SimdLevel::Scalar => true,
            #[cfg(target_arch = "x86_64")]
            SimdLevel::Avx2 => x86::avx2_detected(),
            #[cfg(target_arch = "x86_64")]
            SimdLevel::Avx512 => x86::avx512_detected(),
            #[cfg(target_arch = "aarch64")]
            SimdLevel::Neon => neon::detected(),
            _ => false,
        }
    }

    /// The levels this CPU supports, narrowest first.
    pub fn supported() -> Vec<SimdLevel> {
        Self::ALL.into_iter().filter(|l| l.is_supported()).collect()
    }

    /// The widest supported level.
    pub fn best() -> SimdLevel {
        Self::supported().pop().unwrap_or(SimdLevel::Scalar)
    }

    /// A short lowercase name for reports.
    pub fn name(self) -> &'static str {
        match self {
            SimdLevel::Scalar => "scalar",
            SimdLevel::Avx2 => "avx2",
            SimdLevel::Avx512 => "avx512",
            SimdLevel::Neon => "neon",
        }
    }
}

/// The kernels of one element type at one SIMD level.
#[derive(Debug, Clone, Copy)]
pub struct Kernels<T: 'static> {
    /// The level these kernels run at.
    pub level: SimdLevel,
    /// Squared Euclidean distance.
    pub l2_squared: KernelFn<T>,
    /// Dot product (not negated).
    pub dot: KernelFn<T>,
    /// `1 - cos(a, b)`; 1 when either vector is zero.
    pub cosine_distance: KernelFn<T>,
    /// Four squared Euclidean distances from one vector, where this level
    /// has a kernel that shares the loads of that vector and the final
    /// reductions (8-bit integers on AVX-512); equal to four calls of
    /// `l2_squared`.
    pub l2_squared_x4: Option<Kernel4Fn<T>>,
    /// Four dot products from one vector, as `l2_squared_x4`.
    pub dot_x4: Option<Kernel4Fn<T>>,
}

/// A vector component type with distance kernels.
pub trait Element: Copy + Send + Sync + 'static {
    /// The on-disk element type.
    const TYPE: ElementType;

    /// The kernels at `level`, or `None` if this CPU lacks it.
    fn kernels_for(level: SimdLevel) -> Option<Kernels<Self>>;

    /// The fastest kernels on this CPU, detected once.
    fn best_kernels() -> &'static Kernels<Self>;
}

impl<T: Element> Kernels<T> {
    /// The kernels at `level`, or `None` if this CPU lacks it.
    pub fn for_level(level: SimdLevel) -> Option<Self> {
        T::kernels_for(level)
    }

    /// The fastest kernels on this CPU.
    pub fn best() -> &'static Self {
        T::best_kernels()
    }

    /// The distance under `metric`; smaller is closer.
    #[inline]
    pub fn distance(&self, metric: Metric, a: &[T], b: &[T]) -> f32 {
        match metric {
            Metric::L2 => (self.l2_squared)(a, b),
            Metric::InnerProduct => -(self.dot)(a, b),
            Metric::Cosine => (self.cosine_distance)(a, b),
        }
    }

    /// The distances from `a` to each of `rows` under `metric`, equal to
    /// four calls of [`Kernels::distance`].
    #[inline]
    pub fn distances4(&self, metric: Metric, a: &[T], rows: [&[T]; 4]) -> [f32; 4] {
        match (metric, self.l2_squared_x4, self.dot_x4) {
            (Metric::L2, Some(l2), _) => l2(a, rows),
            (Metric::InnerProduct, _, Some(dot)) => dot(a, rows).map(|d| -d),
            _ => rows.map(|b| self.distance(metric, a, b)),
        }
    }
}

/// The distance between `a` and `b` under `metric` with the best kernels.
#[inline]
pub fn distance<T: Element>(metric: Metric, a: &[T], b: &[T]) -> f32 {
    T::best_kernels().distance(metric, a, b)
}

/// Implements [`Element`] for `$t` from kernels named `$l2`, `$dot` and
/// `$cos` in every level module.
macro_rules! element {
    (@x4 $level:expr) => {
        (None, None)
    };
    (@x4 $level:expr, $l2x4:ident, $dotx4:ident) => {
        match $level {
            #[cfg(target_arch = "x86_64")]
            SimdLevel::Avx512 => (
                Some(x86::avx512::$l2x4 as Kernel4Fn<_>),
                Some(x86::avx512::$dotx4 as Kernel4Fn<_>),
            ),
            _ => (None, None),
        }
    };
    ($t:ty, $code:expr, $l2:ident, $dot:ident, $cos:ident $(; x4: $l2x4:ident, $dotx4:ident)?) => {
        impl Element for $t {
            const TYPE: ElementType = $code;

            fn kernels_for(level: SimdLevel) -> Option<Kernels<Self>> {
                // The SIMD kernels may only run where the level is supported;
                // this check is what makes handing them out sound.
                if !level.is_supported() {
                    return None;
                }
                let (l2_squared, dot, cosine_distance): (KernelFn<$t>, KernelFn<$t>, KernelFn<$t>) =
                    match level {
                        SimdLevel::Scalar => (scalar::$l2, scalar::$dot, scalar::$cos),
                        #[cfg(target_arch = "x86_64")]
                        SimdLevel::Avx2 => (x86::avx2::$l2, x86::avx2::$dot, x86::avx2::$cos),
                        #[cfg(target_arch = "x86_64")]
                        SimdLevel::Avx512 => {
                            (x86::avx512::$l2, x86::avx512::$dot, x86::avx512::$cos)
                        }
                        #[cfg(target_arch = "aarch64")]
                        SimdLevel::Neon => (neon::$l2, neon::$dot, neon::$cos),
                        _ => return None,
                    };
                let (l2_squared_x4, dot_x4) = element!(@x4 level $(, $l2x4, $dotx4)?);
                Some(Kernels {
                    level,
                    l2_squared,
                    dot,
                    cosine_distance,
                    l2_squared_x4,
                    dot_x4,
                })
            }

            fn best_kernels() -> &'static Kernels<Self> {
                static BEST: OnceLock<Kernels<$t>> = OnceLock::new();
                BEST.get_or_init(|| {
                    SimdLevel::ALL
                        .into_iter()
                        .rev()
                        .find_map(<$t>::kernels_for)
                        .expect("scalar kernels always exist")
                })
            }
        }
    };
}

element!(f32, ElementType::F32, l2_f32, dot_f32, cos_f32);
element!(half::f16, ElementType::F16, l2_f16, dot_f16, cos_f16);
element!(u8, ElementType::U8, l2_u8, dot_u8, cos_u8; x4: l2_u8_x4, dot_u8_x4);
element!(i8, ElementType::I8, l2_i8, dot_i8, cos_i8; x4: l2_i8_x4, dot_i8_x4);

/// Whether the AVX-512 column kernels can run here, detected once.
fn columns_avx512() -> bool {
    static AVX512: OnceLock<bool> = OnceLock::new();
    *AVX512.get_or_init(|| SimdLevel::Avx512.is_supported())
}

/// A column-major matrix times a vector: `out[i] = Σ_j x[j] · cols[j k + i]`
/// with `k = out.len()`; panics unless `cols.len() == x.len() · k`. Every
/// RaBitQ code and query is rotated through it.
pub fn columns_dot(cols: &[f32], x: &[f32], out: &mut [f32]) {
    #[cfg(target_arch = "x86_64")]
    if columns_avx512() {
        return x86::columns::dot(cols, x, out);
    }
    scalar::columns_dot(cols, x, out)
}

/// The squared l2 distance from `x` to every row of a transposed matrix:
/// `out[i] = Σ_j (x[j] − cols[j k + i])²`, shapes as in [`columns_dot`].
/// What k-means assignment and each RaBitQ code's centroid search run on.
pub fn columns_l2(cols: &[f32], x: &[f32], out: &mut [f32]) {
    #[cfg(target_arch = "x86_64")]
    if columns_avx512() {
        return x86::columns::l2(cols, x, out);
    }
    scalar::columns_l2(cols, x, out)
}

/// `Σ_j c_j q_j` over a stream of packed `B`-bit unsigned codes `c` (bit
/// `b` of component `j` is bit `B j + b` of the stream, least significant
/// bit of each byte first) and an `i8` vector `q` whose length is a
/// multiple of 64. Exact: every product and sum fits in an `i32`.
pub type PackedDotFn = fn(codes: &[u8], query: &[i8]) -> i32;

/// The SIMD kernel of [`PackedDotFn`] for `bits`-bit codes, if this CPU has
/// one (AVX-512 VBMI and VNNI; widths 1, 2 and 4). Callers keep a portable
/// path for the rest.
pub fn packed_dot_kernel(bits: u8) -> Option<PackedDotFn> {
    #[cfg(target_arch = "x86_64")]
    if x86::packed_detected() {
        return match bits {
            1 => Some(x86::packed::dot_u1),
            2 => Some(x86::packed::dot_u2),
            4 => Some(x86::packed::dot_u4),
            _ => None,
        };
    }
    let _ = bits;
    None
}

/// The reference of [`PackedDotFn`], one component at a time, for any
/// width from 1 to 8. Panics if `codes` is shorter than the stream.
pub fn packed_dot_scalar(bits: u8, codes: &[u8], query: &[i8]) -> i32 {
    scalar::packed_dot(bits, codes, query)
}

/// Asks the CPU to start loading `data` into cache, and returns at once.
///
/// Why: a search scores the codes of a node's neighbours (64 at the default
/// degree), scattered over tens of megabytes, so each code is a cache miss
/// of about 100 ns. Prefetching all of them before scoring the first lets
/// the misses overlap; a 1M-vector search spent half its CPU time waiting
/// on them (benches/RESULTS.md). Graph builds do the same for full
/// vectors. A no-op where no prefetch is available.
#[inline(always)]
pub fn prefetch<T>(data: &[T]) {
    #[cfg(target_arch = "x86_64")]
    x86::prefetch(data.as_ptr().cast(), std::mem::size_of_val(data));
    #[cfg(not(target_arch = "x86_64"))]
    let _ = data;
}

#[cfg(test)]
mod tests {
    //! A smoke test inside the crate; the thorough comparison of every level
    //! against the scalar reference is `tests/distance_kernels.rs` of the
    //! root crate.

    use super::*;

    fn agree<T: Element>(a: &[T], b: &[T], exact: bool) {
        let reference = Kernels::<T>::for_level(SimdLevel::Scalar).unwrap();
        for level in SimdLevel::supported() {
            let k = Kernels::<T>::for_level(level).unwrap();
            for (want, got) in [
                ((reference.l2_squared)(a, b), (k.l2_squared)(a, b)),
                ((reference.dot)(a, b), (k.dot)(a, b)),
                ((reference.cosine_distance)(a, b), (k.cosine_distance)(a, b)),
            ] {
                if exact {
                    assert_eq!(want.to_bits(), got.to_bits(), "{level:?} len {}", a.len());
                } else {
                    let tol = 1e-4 * want.abs().max(1.0);
                    assert!((want - got).abs() <= tol, "{level:?} len {}", a.len());
                }
            }
        }
    }

    #[test]
    fn column_kernels_agree_with_the_reference() {
        for (k, dim) in [
            (0, 3),
            (1, 0),
            (1, 1),
            (15, 7),
            (16, 128),
            (17, 5),
            (128, 128),
            (129, 64),
            (256, 128),
            (300, 9),
        ] {
            let cols: Vec<f32> = (0..k * dim)
                .map(|i| ((i * 37 % 101) as f32 - 50.0) / 7.0)
                .collect();
            let x: Vec<f32> = (0..dim)
                .map(|j| ((j * 11 % 13) as f32 - 6.0) / 3.0)
                .collect();
            for (got, want) in [
                (
                    columns_dot as fn(&[f32], &[f32], &mut [f32]),
                    scalar::columns_dot as fn(&[f32], &[f32], &mut [f32]),
                ),
                (columns_l2, scalar::columns_l2),
            ] {
                let (mut a, mut b) = (vec![f32::NAN; k], vec![f32::NAN; k]);
                got(&cols, &x, &mut a);
                want(&cols, &x, &mut b);
                for (i, (p, q)) in a.iter().zip(&b).enumerate() {
                    assert!(
                        (p - q).abs() <= 1e-4 * q.abs().max(1.0),
                        "k {k} dim {dim} row {i}: {p} vs {q}"
                    );
                }
            }
        }
    }

    #[test]
    #[should_panic(expected = "matrix shape")]
    fn column_kernels_refuse_a_wrong_shape() {
        columns_dot(&[1.0; 10], &[1.0; 3], &mut [0.0; 4]);
    }

    #[test]
    fn packed_reference_reads_fields_least_significant_bit_first() {
        // Components 0..4 of 2-bit codes: 0, 1, 2, 3.
        assert_eq!(
            packed_dot_scalar(2, &[0b11_10_01_00], &[1, 10, 100, -1]),
            -3 + 10 + 200
        );
        // A 3-bit field straddling a byte: component 2 is bits 6, 7 and 8.
        assert_eq!(packed_dot_scalar(3, &[0b1100_0000, 0b1], &[0, 0, 2]), 14);
    }

    #[test]
    fn packed_kernels_agree_with_the_reference() {
        let mut state = 0x2545_F491_4F6C_DD1Du64;
        let mut next = || {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state
        };
        for bits in [1u8, 2, 3, 4, 8] {
            let Some(kernel) = packed_dot_kernel(bits) else {
                continue;
            };
            for n in [64usize, 128, 384, 1024] {
                let codes: Vec<u8> = (0..n * usize::from(bits) / 8)
                    .map(|_| next() as u8)
                    .collect();
                let mut query: Vec<i8> = (0..n).map(|_| next() as i8).collect();
                query[0] = i8::MIN;
                query[n - 1] = i8::MAX;
                assert_eq!(
                    kernel(&codes, &query),
                    packed_dot_scalar(bits, &codes, &query),
                    "{bits} bits, {n} components"
                );
            }
        }
    }

    #[test]
    fn every_supported_level_agrees_with_scalar() {
        for n in [0usize, 1, 15, 16, 17, 33, 64, 65, 100] {
            let u: Vec<u8> = (0..n).map(|i| (i * 37 % 256) as u8).collect();
            let v: Vec<u8> = (0..n).map(|i| (255 - i * 11 % 256) as u8).collect();
            agree(&u, &v, true);
            let s: Vec<i8> = u.iter().map(|&x| x as i8).collect();
            let t: Vec<i8> = v.iter().map(|&x| x as i8).collect();
            agree(&s, &t, true);
            let f: Vec<f32> = u.iter().map(|&x| f32::from(x) / 64.0 - 2.0).collect();
            let g: Vec<f32> = v.iter().map(|&x| f32::from(x) / 32.0 - 4.0).collect();
            agree(&f, &g, false);
            let h: Vec<half::f16> = f.iter().map(|&x| half::f16::from_f32(x)).collect();
            let k: Vec<half::f16> = g.iter().map(|&x| half::f16::from_f32(x)).collect();
            agree(&h, &k, false);
        }
    }
}
