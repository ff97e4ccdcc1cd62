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

mod scalar;

use std::sync::OnceLock;

use crate::Metric;
use omen_format::ElementType;

/// One kernel: two equally long slices in, a number out.
pub type KernelFn<T> = fn(&[T], &[T]) -> f32;

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

    /// Whether this CPU can run kernels of this level.
    pub fn is_supported(self) -> bool {
        matches!(self, SimdLevel::Scalar)
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
}

/// The distance between `a` and `b` under `metric` with the best kernels.
#[inline]
pub fn distance<T: Element>(metric: Metric, a: &[T], b: &[T]) -> f32 {
    T::best_kernels().distance(metric, a, b)
}

macro_rules! element {
    ($t:ty, $code:expr, $l2:path, $dot:path, $cos:path) => {
        impl Element for $t {
            const TYPE: ElementType = $code;

            fn kernels_for(level: SimdLevel) -> Option<Kernels<Self>> {
                match level {
                    SimdLevel::Scalar => Some(Kernels {
                        level,
                        l2_squared: $l2,
                        dot: $dot,
                        cosine_distance: $cos,
                    }),
                    _ => None,
                }
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

element!(
    f32,
    ElementType::F32,
    scalar::l2_f32,
    scalar::dot_f32,
    scalar::cos_f32
);
element!(
    half::f16,
    ElementType::F16,
    scalar::l2_f16,
    scalar::dot_f16,
    scalar::cos_f16
);
element!(
    u8,
    ElementType::U8,
    scalar::l2_u8,
    scalar::dot_u8,
    scalar::cos_u8
);
element!(
    i8,
    ElementType::I8,
    scalar::l2_i8,
    scalar::dot_i8,
    scalar::cos_i8
);
