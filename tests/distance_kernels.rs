//! Every SIMD level's kernels against the scalar reference.
//!
//! The scalar level is the definition; every other supported level must agree
//! with it exactly for integer element types and to within reassociation
//! error for floating-point ones, at every length (the odd and edge lengths
//! below exercise each loop's tail), at unaligned offsets, and on extreme
//! values.

use std::panic::{AssertUnwindSafe, catch_unwind};

use half::f16;
use omendb::Metric;
use omendb::engine::distance::{Element, KernelFn, Kernels, SimdLevel, distance};
use proptest::prelude::*;

/// Lengths around every vector width, unroll factor and block boundary.
const DIMS: [usize; 20] = [
    0, 1, 2, 3, 7, 15, 17, 31, 33, 63, 65, 95, 97, 127, 129, 383, 385, 767, 1023, 1537,
];

/// Relative tolerance of float kernels, scaled by the sum of absolute terms.
const REL_TOL: f64 = 1e-4;

/// Deterministic SplitMix64, so failures reproduce without a seed file.
struct Rng(omendb::engine::rng::SplitMix64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0.next_u64()
    }

    /// Uniform in [-1, 1).
    fn unit(&mut self) -> f32 {
        (self.next() >> 40) as f32 / (1u64 << 23) as f32 - 1.0
    }
}

/// An element type the tests can generate and compare.
trait TestElement: Element + std::fmt::Debug + PartialEq {
    /// Integer kernels must match the scalar reference bit for bit.
    const EXACT: bool;
    const ZERO: Self;
    fn random(rng: &mut Rng) -> Self;
    fn to_f64(self) -> f64;
}

impl TestElement for f32 {
    const EXACT: bool = false;
    const ZERO: Self = 0.0;
    fn random(rng: &mut Rng) -> Self {
        rng.unit() * 10.0
    }
    fn to_f64(self) -> f64 {
        f64::from(self)
    }
}

impl TestElement for f16 {
    const EXACT: bool = false;
    const ZERO: Self = f16::ZERO;
    fn random(rng: &mut Rng) -> Self {
        f16::from_f32(rng.unit() * 10.0)
    }
    fn to_f64(self) -> f64 {
        f64::from(self.to_f32())
    }
}

impl TestElement for u8 {
    const EXACT: bool = true;
    const ZERO: Self = 0;
    fn random(rng: &mut Rng) -> Self {
        rng.next() as u8
    }
    fn to_f64(self) -> f64 {
        f64::from(self)
    }
}

impl TestElement for i8 {
    const EXACT: bool = true;
    const ZERO: Self = 0;
    fn random(rng: &mut Rng) -> Self {
        rng.next() as i8
    }
    fn to_f64(self) -> f64 {
        f64::from(self)
    }
}

/// The three kernels of a set, with names for messages.
fn kernels_of<T: Element>(k: &Kernels<T>) -> [(&'static str, KernelFn<T>); 3] {
    [
        ("l2_squared", k.l2_squared),
        ("dot", k.dot),
        ("cosine_distance", k.cosine_distance),
    ]
}

/// The scale that reassociation error is relative to: the sum of the
/// absolute values of the terms being summed (for cosine, which is
/// normalised, 1).
fn error_scale<T: TestElement>(kernel: &str, a: &[T], b: &[T]) -> f64 {
    let pairs = a.iter().zip(b).map(|(&x, &y)| (x.to_f64(), y.to_f64()));
    match kernel {
        "l2_squared" => pairs.map(|(x, y)| (x - y) * (x - y)).sum(),
        "dot" => pairs.map(|(x, y)| (x * y).abs()).sum(),
        _ => 1.0,
    }
}

/// Asserts that `level`'s kernels agree with the scalar ones on `a`, `b`.
fn check_pair<T: TestElement>(level: SimdLevel, a: &[T], b: &[T]) {
    let reference = Kernels::<T>::for_level(SimdLevel::Scalar).expect("scalar always exists");
    let simd = Kernels::<T>::for_level(level).expect("level is supported");
    assert_eq!(simd.level, level);
    for ((name, want), (_, got)) in kernels_of(&reference).into_iter().zip(kernels_of(&simd)) {
        let (want, got) = (want(a, b), got(a, b));
        let ctx = format!(
            "{name} {:?} at {level:?}, len {}: scalar {want}, simd {got}",
            T::TYPE,
            a.len()
        );
        assert!(want.is_finite() && got.is_finite(), "{ctx}");
        if T::EXACT {
            assert_eq!(want.to_bits(), got.to_bits(), "{ctx}");
        } else {
            let err = (f64::from(want) - f64::from(got)).abs();
            let tol = REL_TOL * (f64::from(want).abs() + error_scale(name, a, b)) + 1e-30;
            assert!(err <= tol, "{ctx}: error {err} > tolerance {tol}");
        }
    }
}

/// Random vectors at every length of [`DIMS`], aligned and misaligned.
fn check_random<T: TestElement>(level: SimdLevel, seed: u64) {
    let mut rng = Rng(omendb::engine::rng::SplitMix64::new(seed));
    for &n in &DIMS {
        let a: Vec<T> = (0..n + 1).map(|_| T::random(&mut rng)).collect();
        let b: Vec<T> = (0..n + 1).map(|_| T::random(&mut rng)).collect();
        check_pair(level, &a[..n], &b[..n]);
        // One element in: unaligned starts for every type wider than a byte.
        check_pair(level, &a[1..], &b[1..]);
    }
}

/// Every supported level other than scalar; printed so the log says what ran.
fn simd_levels() -> Vec<SimdLevel> {
    let levels: Vec<SimdLevel> = SimdLevel::supported()
        .into_iter()
        .filter(|&l| l != SimdLevel::Scalar)
        .collect();
    eprintln!(
        "SIMD levels under test: {:?}",
        levels.iter().map(|l| l.name()).collect::<Vec<_>>()
    );
    levels
}

#[test]
fn detected_levels_match_the_cpu() {
    let supported = SimdLevel::supported();
    eprintln!("supported levels: {supported:?}");
    assert_eq!(supported.first(), Some(&SimdLevel::Scalar));
    #[cfg(target_arch = "x86_64")]
    {
        use std::arch::is_x86_feature_detected as has;
        let avx2 = has!("avx2") && has!("fma") && has!("f16c");
        let avx512 = avx2 && has!("avx512f") && has!("avx512bw");
        assert_eq!(SimdLevel::Avx2.is_supported(), avx2, "AVX2 detection");
        assert_eq!(
            SimdLevel::Avx512.is_supported(),
            avx512,
            "AVX-512 detection"
        );
        assert!(!SimdLevel::Neon.is_supported());
        let expected = if avx512 {
            SimdLevel::Avx512
        } else if avx2 {
            SimdLevel::Avx2
        } else {
            SimdLevel::Scalar
        };
        assert_eq!(SimdLevel::best(), expected);
    }
    #[cfg(target_arch = "aarch64")]
    {
        assert!(SimdLevel::Neon.is_supported());
        assert!(!SimdLevel::Avx2.is_supported() && !SimdLevel::Avx512.is_supported());
        assert_eq!(SimdLevel::best(), SimdLevel::Neon);
    }
}

#[test]
fn kernel_sets_exist_exactly_for_supported_levels() {
    fn check<T: Element>() {
        for level in SimdLevel::ALL {
            let k = Kernels::<T>::for_level(level);
            assert_eq!(k.is_some(), level.is_supported(), "{:?} {level:?}", T::TYPE);
            assert!(k.is_none_or(|k| k.level == level));
        }
        assert_eq!(
            Kernels::<T>::best().level,
            SimdLevel::best(),
            "{:?}",
            T::TYPE
        );
    }
    check::<f32>();
    check::<f16>();
    check::<u8>();
    check::<i8>();
}

#[test]
fn every_level_matches_scalar_on_random_data() {
    for level in simd_levels() {
        for seed in 0..4 {
            check_random::<f32>(level, seed);
            check_random::<f16>(level, seed);
            check_random::<u8>(level, seed);
            check_random::<i8>(level, seed);
        }
    }
}

#[test]
fn every_level_matches_scalar_on_extreme_values() {
    for level in simd_levels() {
        for &n in &DIMS {
            // Largest u8 terms: every difference and product is 255 * 255.
            let (max, zero) = (vec![255u8; n], vec![0u8; n]);
            check_pair(level, &max, &zero);
            check_pair(level, &zero, &max);
            check_pair(level, &max, &max);
            check_pair(level, &zero, &zero);

            // i8 extremes: -128 - 127 = -255, (-128)^2 = 16384, mixed signs.
            let low = vec![i8::MIN; n];
            let high = vec![i8::MAX; n];
            let alt: Vec<i8> = (0..n)
                .map(|i| if i % 2 == 0 { i8::MIN } else { i8::MAX })
                .collect();
            check_pair(level, &low, &high);
            check_pair(level, &low, &low);
            check_pair(level, &alt, &high);
            check_pair(level, &vec![0i8; n], &low);

            // f16: the largest finite values, subnormals and signed zeros.
            let big: Vec<f16> = (0..n)
                .map(|i| if i % 3 == 0 { f16::MAX } else { f16::MIN })
                .collect();
            let tiny: Vec<f16> = (0..n)
                .map(|i| f16::from_bits((i % 0x3ff) as u16 + 1))
                .collect();
            let zeros = vec![f16::from_f32(-0.0); n];
            check_pair(level, &big, &zeros);
            check_pair(level, &big, &big);
            check_pair(level, &tiny, &big);
            check_pair(level, &zeros, &zeros);

            // f32 zeros (cosine's zero-vector convention) and large values.
            let fz = vec![0.0f32; n];
            let fbig: Vec<f32> = (0..n).map(|i| (i as f32 - 500.0) * 1e12).collect();
            check_pair(level, &fz, &fz);
            check_pair(level, &fbig, &fz);
            check_pair(level, &fbig, &fbig);
        }
    }
}

#[test]
fn integer_kernels_are_exact_past_one_accumulation_block() {
    // Longer than the format's 16 384 limit: the SIMD kernels must still be
    // exact (they flush 32-bit lanes into 64 bits per block), and the f32
    // result of a sum above 2^24 must round exactly like the scalar one.
    let n = 3 * 16_384 + 37;
    for level in simd_levels() {
        check_pair(level, &vec![255u8; n], &vec![0u8; n]);
        check_pair(level, &vec![255u8; n], &vec![255u8; n]);
        check_pair(level, &vec![i8::MIN; n], &vec![i8::MAX; n]);
        check_pair(level, &vec![i8::MIN; n], &vec![i8::MIN; n]);
        check_random::<u8>(level, 99);
        let mut rng = Rng(omendb::engine::rng::SplitMix64::new(7));
        let a: Vec<i8> = (0..n).map(|_| i8::random(&mut rng)).collect();
        let b: Vec<i8> = (0..n).map(|_| i8::random(&mut rng)).collect();
        check_pair(level, &a, &b);
    }
}

/// Asserts that `level`'s four-row distances equal four one-row ones, bit
/// for bit, under every metric: the builders rely on it to prune the same
/// way whichever path computed a distance.
fn check_four<T: TestElement>(level: SimdLevel, a: &[T], rows: [&[T]; 4]) {
    let k = Kernels::<T>::for_level(level).expect("level is supported");
    for metric in [Metric::L2, Metric::InnerProduct, Metric::Cosine] {
        let want = rows.map(|b| k.distance(metric, a, b).to_bits());
        let got = k.distances4(metric, a, rows).map(f32::to_bits);
        assert_eq!(
            got,
            want,
            "{metric:?} {:?} at {level:?}, len {}",
            T::TYPE,
            a.len()
        );
    }
}

fn check_four_random<T: TestElement>(level: SimdLevel, seed: u64, lens: &[usize]) {
    let mut rng = Rng(omendb::engine::rng::SplitMix64::new(seed));
    for &n in lens {
        let mut v = || (0..n).map(|_| T::random(&mut rng)).collect::<Vec<T>>();
        let (a, b, c, d, e) = (v(), v(), v(), v(), v());
        check_four(level, &a, [&b, &c, &d, &e]);
        check_four(level, &a, [&a, &b, &a, &c]);
    }
}

#[test]
fn four_row_kernels_equal_four_calls() {
    let past_block = [3 * 16_384 + 37];
    for level in SimdLevel::supported() {
        let has_x4 = level == SimdLevel::Avx512;
        for k in [
            Kernels::<u8>::for_level(level)
                .unwrap()
                .l2_squared_x4
                .is_some(),
            Kernels::<i8>::for_level(level).unwrap().dot_x4.is_some(),
        ] {
            assert_eq!(
                k, has_x4,
                "{level:?}: byte types have four-row kernels at AVX-512 only"
            );
        }
        check_four_random::<u8>(level, 5, &DIMS);
        check_four_random::<i8>(level, 6, &DIMS);
        check_four_random::<f32>(level, 7, &DIMS);
        check_four_random::<u8>(level, 8, &past_block);
        check_four_random::<i8>(level, 9, &past_block);
        let (lo, hi) = (vec![i8::MIN; past_block[0]], vec![i8::MAX; past_block[0]]);
        check_four(level, &lo, [&hi, &lo, &hi, &lo]);
        let (zero, top) = (vec![0u8; past_block[0]], vec![255u8; past_block[0]]);
        check_four(level, &top, [&zero, &top, &top, &zero]);
    }
}

#[test]
fn known_values() {
    for level in SimdLevel::supported() {
        let k = Kernels::<f32>::for_level(level).unwrap();
        let a = [1.0f32, 2.0, 3.0];
        let b = [4.0f32, -5.0, 6.0];
        assert_eq!((k.l2_squared)(&a, &b), 9.0 + 49.0 + 9.0, "{level:?}");
        assert_eq!((k.dot)(&a, &b), 4.0 - 10.0 + 18.0, "{level:?}");
        assert!((k.cosine_distance)(&a, &a).abs() < 1e-6, "{level:?}");
        let neg = a.map(|x| -x);
        assert!(
            ((k.cosine_distance)(&a, &neg) - 2.0).abs() < 1e-6,
            "{level:?}"
        );

        let k = Kernels::<u8>::for_level(level).unwrap();
        assert_eq!((k.l2_squared)(&[255], &[0]), 65_025.0, "{level:?}");
        let k = Kernels::<i8>::for_level(level).unwrap();
        assert_eq!(
            (k.dot)(&[-128, 127], &[-128, -128]),
            16_384.0 - 16_256.0,
            "{level:?}"
        );
    }
}

#[test]
fn inner_product_is_negated_dot_and_zero_cosine_is_one() {
    fn check<T: TestElement>(level: SimdLevel) {
        let k = Kernels::<T>::for_level(level).unwrap();
        let mut rng = Rng(omendb::engine::rng::SplitMix64::new(42));
        for &n in &DIMS {
            let a: Vec<T> = (0..n).map(|_| T::random(&mut rng)).collect();
            let b: Vec<T> = (0..n).map(|_| T::random(&mut rng)).collect();
            let ip = k.distance(Metric::InnerProduct, &a, &b);
            assert_eq!(ip.to_bits(), (-(k.dot)(&a, &b)).to_bits(), "{level:?} {n}");
            assert_eq!(k.distance(Metric::L2, &a, &b), (k.l2_squared)(&a, &b));
            assert_eq!(
                k.distance(Metric::Cosine, &a, &b),
                (k.cosine_distance)(&a, &b)
            );

            let zero = vec![T::ZERO; n];
            assert_eq!((k.cosine_distance)(&zero, &a), 1.0, "{level:?} {n}");
            assert_eq!((k.cosine_distance)(&a, &zero), 1.0, "{level:?} {n}");
            assert_eq!((k.cosine_distance)(&zero, &zero), 1.0, "{level:?} {n}");
        }
    }
    for level in SimdLevel::supported() {
        check::<f32>(level);
        check::<f16>(level);
        check::<u8>(level);
        check::<i8>(level);
    }
    // The free function uses the best kernels.
    let (a, b) = ([1.0f32, 2.0], [3.0f32, 4.0]);
    assert_eq!(distance(Metric::InnerProduct, &a, &b), -11.0);
    assert_eq!(distance(Metric::L2, &a, &b), 8.0);
}

#[test]
fn mismatched_lengths_panic_at_every_level() {
    for level in SimdLevel::supported() {
        let k = Kernels::<f32>::for_level(level).unwrap();
        for (name, f) in kernels_of(&k) {
            let r = catch_unwind(AssertUnwindSafe(|| f(&[1.0; 17], &[1.0; 16])));
            assert!(
                r.is_err(),
                "{name} at {level:?} accepted mismatched lengths"
            );
        }
        let k = Kernels::<u8>::for_level(level).unwrap();
        for (name, f) in kernels_of(&k) {
            let r = catch_unwind(AssertUnwindSafe(|| f(&[1; 0], &[1; 1])));
            assert!(
                r.is_err(),
                "{name} at {level:?} accepted mismatched lengths"
            );
        }
    }
}

/// Two equally long vectors of `elem`, up to `max` long.
fn pair<S: Strategy + Clone>(
    elem: S,
    max: usize,
) -> impl Strategy<Value = (Vec<S::Value>, Vec<S::Value>)>
where
    S::Value: std::fmt::Debug,
{
    (0..=max).prop_flat_map(move |n| {
        (
            proptest::collection::vec(elem.clone(), n),
            proptest::collection::vec(elem.clone(), n),
        )
    })
}

/// Finite `f16` from any bit pattern: subnormals, huge values, signed zeros.
fn any_finite_f16() -> impl Strategy<Value = f16> + Clone {
    any::<u16>()
        .prop_map(f16::from_bits)
        .prop_filter("finite", |x| x.is_finite())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn prop_f32_matches_scalar((a, b) in pair(-1e3f32..1e3, 600)) {
        for level in SimdLevel::supported() {
            check_pair(level, &a, &b);
        }
    }

    #[test]
    fn prop_f16_matches_scalar((a, b) in pair(any_finite_f16(), 600)) {
        for level in SimdLevel::supported() {
            check_pair(level, &a, &b);
        }
    }

    #[test]
    fn prop_u8_matches_scalar((a, b) in pair(any::<u8>(), 600)) {
        for level in SimdLevel::supported() {
            check_pair(level, &a, &b);
        }
    }

    #[test]
    fn prop_i8_matches_scalar((a, b) in pair(any::<i8>(), 600)) {
        for level in SimdLevel::supported() {
            check_pair(level, &a, &b);
        }
    }
}
