//! x86_64 SIMD kernels: an AVX2 level (AVX2 + FMA + F16C) and an AVX-512
//! level (AVX-512F + AVX-512BW), for every element type and kernel.
//!
//! Invariant: the `unsafe` `#[target_feature]` functions here may only run on
//! a CPU that has their features, so the only way out of this module is the
//! safe wrappers in [`avx2`] and [`avx512`], and `super::Element::kernels_for`
//! hands those out only after [`avx2_detected`] / [`avx512_detected`] said yes
//! at run time. Every memory read goes through a helper that takes a
//! fixed-size array (or a slice with a mask no longer than it), so reads stay
//! in bounds by construction for every length, 0 and 1 included.
//!
//! Floating-point kernels reassociate the sum (several vector accumulators)
//! and so differ from the scalar reference by rounding only. Integer kernels
//! are exact: they widen to `i16`, multiply-add pairs into `i32` lanes, flush
//! the lanes into an `i64` every [`INT_BLOCK`] elements, and convert the exact
//! total to `f32` once, exactly like the scalar reference.

use core::arch::x86_64::*;

use half::f16;

use super::scalar::cosine_from_parts;

/// Elements per `i32` accumulation block of the integer kernels.
///
/// Overflow bound: the largest term of any integer kernel is
/// `255 * 255 = 65_025` (u8 and i8 squared differences, u8 products and
/// norms; i8 products are at most `128 * 128 = 16_384` in magnitude), so the
/// sum of ALL terms of one block, and hence every partial sum of any subset of
/// its lanes, is at most `16_384 * 65_025 = 1_065_369_600 < i32::MAX =
/// 2_147_483_647`. The format caps dimensions at 16 384, so a real vector is a
/// single block; longer slices are still exact because each block's `i32` sum
/// is added into an `i64`.
const INT_BLOCK: usize = 16_384;

// The bound above, checked by the compiler.
const _: () = assert!(INT_BLOCK * 255 * 255 <= i32::MAX as usize);

/// Whether this CPU can run the [`avx2`] kernels.
pub(super) fn avx2_detected() -> bool {
    is_x86_feature_detected!("avx2")
        && is_x86_feature_detected!("fma")
        && is_x86_feature_detected!("f16c")
}

/// Whether this CPU can run the [`avx512`] kernels.
pub(super) fn avx512_detected() -> bool {
    // avx512f implies AVX2, FMA and F16C (rustc enables them with it), but
    // check them too rather than trust every hypervisor's CPUID.
    avx2_detected() && is_x86_feature_detected!("avx512f") && is_x86_feature_detected!("avx512bw")
}

/// Prefetches every cache line of the `len` bytes at `start` into all
/// cache levels.
#[inline(always)]
pub(super) fn prefetch(start: *const u8, len: usize) {
    const LINE: usize = 64;
    let lines = (len + (start as usize % LINE)).div_ceil(LINE);
    for i in 0..lines {
        // An address in line `i` (possibly past the last byte, but in its
        // line), so `wrapping_add`: nothing dereferences it.
        let at = start.wrapping_add(i * LINE);
        // SAFETY: a prefetch is a hint: it does not read or write memory as
        // far as the program can tell and never faults, whatever the address;
        // SSE, its only feature, is part of the x86_64 baseline.
        unsafe { _mm_prefetch::<_MM_HINT_T0>(at.cast()) };
    }
}

/// Copies `tail` into a zero-filled array. Zero lanes add nothing to any
/// kernel: `(0 - 0)^2 = 0 * 0 = 0`. Panics if `tail` is longer than `N`.
#[inline(always)]
fn pad<T: Copy + Default, const N: usize>(tail: &[T]) -> [T; N] {
    let mut out = [T::default(); N];
    out[..tail.len()].copy_from_slice(tail);
    out
}

/// Generates the safe public wrappers of one level. Each checks the lengths
/// and calls its `unsafe` inner kernel.
macro_rules! safe_wrappers {
    ($detected:path, $features:literal; $($name:ident => $inner:ident: $t:ty),* $(,)?) => {
        $(
            #[doc = concat!("Safe wrapper of the ", $features, " kernel `", stringify!($inner), "`.")]
            pub(in crate::distance) fn $name(a: &[$t], b: &[$t]) -> f32 {
                assert_eq!(a.len(), b.len(), "vector lengths differ");
                debug_assert!($detected(), concat!("CPU lacks ", $features));
                // SAFETY: the inner kernel needs the CPU features named in its
                // `#[target_feature]`. This wrapper is private to
                // `crate::distance`, whose `kernels_for(level)` returns it only
                // after `SimdLevel::is_supported` confirmed those features with
                // `is_x86_feature_detected!` at run time. All memory access in
                // the inner kernel is bounds-checked by construction.
                unsafe { $inner(a, b) }
            }
        )*
    };
}

/// Safe wrappers of four-row kernels, as [`safe_wrappers`] for one row.
macro_rules! safe_wrappers_x4 {
    ($detected:path, $features:literal; $($name:ident => $inner:ident: $t:ty),* $(,)?) => {
        $(
            #[doc = concat!("Safe wrapper of the ", $features, " kernel `", stringify!($inner), "`.")]
            pub(in crate::distance) fn $name(a: &[$t], rows: [&[$t]; 4]) -> [f32; 4] {
                for r in rows {
                    assert_eq!(a.len(), r.len(), "vector lengths differ");
                }
                debug_assert!($detected(), concat!("CPU lacks ", $features));
                // SAFETY: as in `safe_wrappers`: handed out only after the
                // run-time check of the features, and every read is bounds
                // checked by construction.
                unsafe { $inner(a, rows) }
            }
        )*
    };
}

/// AVX2 + FMA + F16C kernels: 8 `f32` lanes, 4 accumulators for the float
/// kernels, 16 widened integers per step for the integer kernels.
pub(super) mod avx2 {
    use super::*;

    /// Loads 8 `f32`.
    #[inline]
    #[target_feature(enable = "avx2,fma,f16c")]
    fn load_f32(x: &[f32; 8]) -> __m256 {
        // SAFETY: `x` is 32 readable bytes; `loadu` has no alignment needs.
        unsafe { _mm256_loadu_ps(x.as_ptr()) }
    }

    /// Loads 8 `f16` and converts them to `f32` (exact).
    #[inline]
    #[target_feature(enable = "avx2,fma,f16c")]
    fn load_f16(x: &[f16; 8]) -> __m256 {
        // SAFETY: `x` is 16 readable bytes; `loadu` has no alignment needs.
        let h = unsafe { _mm_loadu_si128(x.as_ptr().cast()) };
        _mm256_cvtph_ps(h)
    }

    /// Loads 16 `u8` and zero-extends them to `i16`.
    #[inline]
    #[target_feature(enable = "avx2,fma,f16c")]
    fn widen_u8(x: &[u8; 16]) -> __m256i {
        // SAFETY: `x` is 16 readable bytes; `loadu` has no alignment needs.
        let v = unsafe { _mm_loadu_si128(x.as_ptr().cast()) };
        _mm256_cvtepu8_epi16(v)
    }

    /// Loads 16 `i8` and sign-extends them to `i16`.
    #[inline]
    #[target_feature(enable = "avx2,fma,f16c")]
    fn widen_i8(x: &[i8; 16]) -> __m256i {
        // SAFETY: `x` is 16 readable bytes; `loadu` has no alignment needs.
        let v = unsafe { _mm_loadu_si128(x.as_ptr().cast()) };
        _mm256_cvtepi8_epi16(v)
    }

    /// The sum of 8 `f32` lanes.
    #[inline]
    #[target_feature(enable = "avx2,fma,f16c")]
    fn hsum_ps(v: __m256) -> f32 {
        let s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps::<1>(v));
        let s = _mm_add_ps(s, _mm_movehl_ps(s, s));
        let s = _mm_add_ss(s, _mm_shuffle_ps::<0b01>(s, s));
        _mm_cvtss_f32(s)
    }

    /// The sum of 4 accumulators of 8 `f32` lanes.
    #[inline]
    #[target_feature(enable = "avx2,fma,f16c")]
    fn hsum4_ps(acc: [__m256; 4]) -> f32 {
        hsum_ps(_mm256_add_ps(
            _mm256_add_ps(acc[0], acc[1]),
            _mm256_add_ps(acc[2], acc[3]),
        ))
    }

    /// The sum of 8 `i32` lanes; exact under the [`INT_BLOCK`] bound.
    #[inline]
    #[target_feature(enable = "avx2,fma,f16c")]
    fn hsum_epi32(v: __m256i) -> i32 {
        let s = _mm_add_epi32(_mm256_castsi256_si128(v), _mm256_extracti128_si256::<1>(v));
        let s = _mm_add_epi32(s, _mm_shuffle_epi32::<0b01_00_11_10>(s));
        let s = _mm_add_epi32(s, _mm_shuffle_epi32::<0b10_11_00_01>(s));
        _mm_cvtsi128_si32(s)
    }

    /// Float kernels over a type that `$load` turns into 8 `f32` lanes.
    macro_rules! float_kernels {
        ($t:ty, $load:ident, $l2:ident, $dot:ident, $cos:ident) => {
            /// # Safety
            /// The CPU must support AVX2, FMA and F16C.
            #[target_feature(enable = "avx2,fma,f16c")]
            unsafe fn $l2(a: &[$t], b: &[$t]) -> f32 {
                let (a32, a_rest) = a.as_chunks::<32>();
                let (b32, b_rest) = b.as_chunks::<32>();
                let mut acc = [_mm256_setzero_ps(); 4];
                for (x, y) in a32.iter().zip(b32) {
                    let (x, y) = (x.as_chunks::<8>().0, y.as_chunks::<8>().0);
                    for k in 0..4 {
                        let d = _mm256_sub_ps($load(&x[k]), $load(&y[k]));
                        acc[k] = _mm256_fmadd_ps(d, d, acc[k]);
                    }
                }
                let (a8, a_tail) = a_rest.as_chunks::<8>();
                let (b8, b_tail) = b_rest.as_chunks::<8>();
                for (k, (x, y)) in a8.iter().zip(b8).enumerate() {
                    let d = _mm256_sub_ps($load(x), $load(y));
                    acc[k] = _mm256_fmadd_ps(d, d, acc[k]);
                }
                if !a_tail.is_empty() {
                    let d = _mm256_sub_ps($load(&pad(a_tail)), $load(&pad(b_tail)));
                    acc[3] = _mm256_fmadd_ps(d, d, acc[3]);
                }
                hsum4_ps(acc)
            }

            /// # Safety
            /// The CPU must support AVX2, FMA and F16C.
            #[target_feature(enable = "avx2,fma,f16c")]
            unsafe fn $dot(a: &[$t], b: &[$t]) -> f32 {
                let (a32, a_rest) = a.as_chunks::<32>();
                let (b32, b_rest) = b.as_chunks::<32>();
                let mut acc = [_mm256_setzero_ps(); 4];
                for (x, y) in a32.iter().zip(b32) {
                    let (x, y) = (x.as_chunks::<8>().0, y.as_chunks::<8>().0);
                    for k in 0..4 {
                        acc[k] = _mm256_fmadd_ps($load(&x[k]), $load(&y[k]), acc[k]);
                    }
                }
                let (a8, a_tail) = a_rest.as_chunks::<8>();
                let (b8, b_tail) = b_rest.as_chunks::<8>();
                for (k, (x, y)) in a8.iter().zip(b8).enumerate() {
                    acc[k] = _mm256_fmadd_ps($load(x), $load(y), acc[k]);
                }
                if !a_tail.is_empty() {
                    let (x, y) = ($load(&pad(a_tail)), $load(&pad(b_tail)));
                    acc[3] = _mm256_fmadd_ps(x, y, acc[3]);
                }
                hsum4_ps(acc)
            }

            /// One pass: dot, |a|^2 and |b|^2 together.
            ///
            /// # Safety
            /// The CPU must support AVX2, FMA and F16C.
            #[target_feature(enable = "avx2,fma,f16c")]
            unsafe fn $cos(a: &[$t], b: &[$t]) -> f32 {
                let (a32, a_rest) = a.as_chunks::<32>();
                let (b32, b_rest) = b.as_chunks::<32>();
                let mut d = [_mm256_setzero_ps(); 4];
                let mut na = [_mm256_setzero_ps(); 4];
                let mut nb = [_mm256_setzero_ps(); 4];
                for (x, y) in a32.iter().zip(b32) {
                    let (x, y) = (x.as_chunks::<8>().0, y.as_chunks::<8>().0);
                    for k in 0..4 {
                        let (x, y) = ($load(&x[k]), $load(&y[k]));
                        d[k] = _mm256_fmadd_ps(x, y, d[k]);
                        na[k] = _mm256_fmadd_ps(x, x, na[k]);
                        nb[k] = _mm256_fmadd_ps(y, y, nb[k]);
                    }
                }
                let (a8, a_tail) = a_rest.as_chunks::<8>();
                let (b8, b_tail) = b_rest.as_chunks::<8>();
                for (k, (x, y)) in a8.iter().zip(b8).enumerate() {
                    let (x, y) = ($load(x), $load(y));
                    d[k] = _mm256_fmadd_ps(x, y, d[k]);
                    na[k] = _mm256_fmadd_ps(x, x, na[k]);
                    nb[k] = _mm256_fmadd_ps(y, y, nb[k]);
                }
                if !a_tail.is_empty() {
                    let (x, y) = ($load(&pad(a_tail)), $load(&pad(b_tail)));
                    d[3] = _mm256_fmadd_ps(x, y, d[3]);
                    na[3] = _mm256_fmadd_ps(x, x, na[3]);
                    nb[3] = _mm256_fmadd_ps(y, y, nb[3]);
                }
                cosine_from_parts(hsum4_ps(d), hsum4_ps(na), hsum4_ps(nb))
            }
        };
    }

    /// Exact integer kernels over a byte type that `$widen` turns into 16
    /// `i16` lanes.
    macro_rules! int_kernels {
        ($t:ty, $widen:ident, $l2:ident, $dot:ident, $cos:ident) => {
            /// # Safety
            /// The CPU must support AVX2, FMA and F16C.
            #[target_feature(enable = "avx2,fma,f16c")]
            unsafe fn $l2(a: &[$t], b: &[$t]) -> f32 {
                let mut total = 0i64;
                for (a, b) in a.chunks(INT_BLOCK).zip(b.chunks(INT_BLOCK)) {
                    let (a16, a_tail) = a.as_chunks::<16>();
                    let (b16, b_tail) = b.as_chunks::<16>();
                    let mut acc = _mm256_setzero_si256();
                    for (x, y) in a16.iter().zip(b16) {
                        let d = _mm256_sub_epi16($widen(x), $widen(y));
                        acc = _mm256_add_epi32(acc, _mm256_madd_epi16(d, d));
                    }
                    if !a_tail.is_empty() {
                        let d = _mm256_sub_epi16($widen(&pad(a_tail)), $widen(&pad(b_tail)));
                        acc = _mm256_add_epi32(acc, _mm256_madd_epi16(d, d));
                    }
                    total += i64::from(hsum_epi32(acc));
                }
                // Same rounding as the scalar `u64`/`i64 as f32`.
                total as f32
            }

            /// # Safety
            /// The CPU must support AVX2, FMA and F16C.
            #[target_feature(enable = "avx2,fma,f16c")]
            unsafe fn $dot(a: &[$t], b: &[$t]) -> f32 {
                let mut total = 0i64;
                for (a, b) in a.chunks(INT_BLOCK).zip(b.chunks(INT_BLOCK)) {
                    let (a16, a_tail) = a.as_chunks::<16>();
                    let (b16, b_tail) = b.as_chunks::<16>();
                    let mut acc = _mm256_setzero_si256();
                    for (x, y) in a16.iter().zip(b16) {
                        acc = _mm256_add_epi32(acc, _mm256_madd_epi16($widen(x), $widen(y)));
                    }
                    if !a_tail.is_empty() {
                        let (x, y) = ($widen(&pad(a_tail)), $widen(&pad(b_tail)));
                        acc = _mm256_add_epi32(acc, _mm256_madd_epi16(x, y));
                    }
                    total += i64::from(hsum_epi32(acc));
                }
                total as f32
            }

            /// One pass: dot, |a|^2 and |b|^2 together.
            ///
            /// # Safety
            /// The CPU must support AVX2, FMA and F16C.
            #[target_feature(enable = "avx2,fma,f16c")]
            unsafe fn $cos(a: &[$t], b: &[$t]) -> f32 {
                let (mut d, mut na, mut nb) = (0i64, 0i64, 0i64);
                for (a, b) in a.chunks(INT_BLOCK).zip(b.chunks(INT_BLOCK)) {
                    let (a16, a_tail) = a.as_chunks::<16>();
                    let (b16, b_tail) = b.as_chunks::<16>();
                    let mut dv = _mm256_setzero_si256();
                    let mut nav = _mm256_setzero_si256();
                    let mut nbv = _mm256_setzero_si256();
                    for (x, y) in a16.iter().zip(b16) {
                        let (x, y) = ($widen(x), $widen(y));
                        dv = _mm256_add_epi32(dv, _mm256_madd_epi16(x, y));
                        nav = _mm256_add_epi32(nav, _mm256_madd_epi16(x, x));
                        nbv = _mm256_add_epi32(nbv, _mm256_madd_epi16(y, y));
                    }
                    if !a_tail.is_empty() {
                        let (x, y) = ($widen(&pad(a_tail)), $widen(&pad(b_tail)));
                        dv = _mm256_add_epi32(dv, _mm256_madd_epi16(x, y));
                        nav = _mm256_add_epi32(nav, _mm256_madd_epi16(x, x));
                        nbv = _mm256_add_epi32(nbv, _mm256_madd_epi16(y, y));
                    }
                    d += i64::from(hsum_epi32(dv));
                    na += i64::from(hsum_epi32(nav));
                    nb += i64::from(hsum_epi32(nbv));
                }
                cosine_from_parts(d as f32, na as f32, nb as f32)
            }
        };
    }

    float_kernels!(f32, load_f32, l2_f32_inner, dot_f32_inner, cos_f32_inner);
    float_kernels!(f16, load_f16, l2_f16_inner, dot_f16_inner, cos_f16_inner);
    int_kernels!(u8, widen_u8, l2_u8_inner, dot_u8_inner, cos_u8_inner);
    int_kernels!(i8, widen_i8, l2_i8_inner, dot_i8_inner, cos_i8_inner);

    safe_wrappers!(super::avx2_detected, "AVX2+FMA+F16C";
        l2_f32 => l2_f32_inner: f32,
        dot_f32 => dot_f32_inner: f32,
        cos_f32 => cos_f32_inner: f32,
        l2_f16 => l2_f16_inner: f16,
        dot_f16 => dot_f16_inner: f16,
        cos_f16 => cos_f16_inner: f16,
        l2_u8 => l2_u8_inner: u8,
        dot_u8 => dot_u8_inner: u8,
        cos_u8 => cos_u8_inner: u8,
        l2_i8 => l2_i8_inner: i8,
        dot_i8 => dot_i8_inner: i8,
        cos_i8 => cos_i8_inner: i8,
    );
}

/// AVX-512F + AVX-512BW kernels: 16 `f32` lanes, 4 accumulators for the
/// float kernels, 32 widened integers per step for the integer kernels, and
/// masked loads for the tails.
pub(super) mod avx512 {
    use super::*;

    /// `n` low bits set; `n` is clamped to the mask width, so a mask built
    /// from it never covers more than `n` elements.
    #[inline(always)]
    fn low_bits(n: usize, width: u32) -> u64 {
        let n = n.min(width as usize) as u32;
        if n >= 64 { u64::MAX } else { (1u64 << n) - 1 }
    }

    /// Loads 16 `f32`.
    #[inline]
    #[target_feature(enable = "avx512f,avx512bw")]
    fn load_f32(x: &[f32; 16]) -> __m512 {
        // SAFETY: `x` is 64 readable bytes; `loadu` has no alignment needs.
        unsafe { _mm512_loadu_ps(x.as_ptr()) }
    }

    /// Loads the first `min(x.len(), 16)` `f32`, zeros in the other lanes.
    #[inline]
    #[target_feature(enable = "avx512f,avx512bw")]
    fn load_f32_tail(x: &[f32]) -> __m512 {
        let k = low_bits(x.len(), 16) as __mmask16;
        // SAFETY: the mask enables only the first `min(len, 16)` lanes, all
        // inside `x`; masked-off lanes are not read (fault suppression).
        unsafe { _mm512_maskz_loadu_ps(k, x.as_ptr()) }
    }

    /// Loads 16 `f16` and converts them to `f32` (exact).
    #[inline]
    #[target_feature(enable = "avx512f,avx512bw")]
    fn load_f16(x: &[f16; 16]) -> __m512 {
        // SAFETY: `x` is 32 readable bytes; `loadu` has no alignment needs.
        let h = unsafe { _mm256_loadu_si256(x.as_ptr().cast()) };
        _mm512_cvtph_ps(h)
    }

    /// Loads the first `min(x.len(), 16)` `f16` as `f32`, zeros elsewhere.
    #[inline]
    #[target_feature(enable = "avx512f,avx512bw")]
    fn load_f16_tail(x: &[f16]) -> __m512 {
        let k = low_bits(x.len(), 16) as __mmask32;
        // SAFETY: the mask enables only the first `min(len, 16)` 16-bit lanes,
        // all inside `x`; masked-off lanes are not read (fault suppression).
        let h = unsafe { _mm512_maskz_loadu_epi16(k, x.as_ptr().cast()) };
        _mm512_cvtph_ps(_mm512_castsi512_si256(h))
    }

    /// Loads 32 `u8` and zero-extends them to `i16`.
    #[inline]
    #[target_feature(enable = "avx512f,avx512bw")]
    fn widen_u8(x: &[u8; 32]) -> __m512i {
        // SAFETY: `x` is 32 readable bytes; `loadu` has no alignment needs.
        let v = unsafe { _mm256_loadu_si256(x.as_ptr().cast()) };
        _mm512_cvtepu8_epi16(v)
    }

    /// Loads the first `min(x.len(), 32)` `u8` as `i16`, zeros elsewhere.
    #[inline]
    #[target_feature(enable = "avx512f,avx512bw")]
    fn widen_u8_tail(x: &[u8]) -> __m512i {
        let k = low_bits(x.len(), 32) as __mmask64;
        // SAFETY: the mask enables only the first `min(len, 32)` bytes, all
        // inside `x`; masked-off bytes are not read (fault suppression).
        let v = unsafe { _mm512_maskz_loadu_epi8(k, x.as_ptr().cast()) };
        _mm512_cvtepu8_epi16(_mm512_castsi512_si256(v))
    }

    /// Loads 32 `i8` and sign-extends them to `i16`.
    #[inline]
    #[target_feature(enable = "avx512f,avx512bw")]
    fn widen_i8(x: &[i8; 32]) -> __m512i {
        // SAFETY: `x` is 32 readable bytes; `loadu` has no alignment needs.
        let v = unsafe { _mm256_loadu_si256(x.as_ptr().cast()) };
        _mm512_cvtepi8_epi16(v)
    }

    /// Loads the first `min(x.len(), 32)` `i8` as `i16`, zeros elsewhere.
    #[inline]
    #[target_feature(enable = "avx512f,avx512bw")]
    fn widen_i8_tail(x: &[i8]) -> __m512i {
        let k = low_bits(x.len(), 32) as __mmask64;
        // SAFETY: the mask enables only the first `min(len, 32)` bytes, all
        // inside `x`; masked-off bytes are not read (fault suppression).
        let v = unsafe { _mm512_maskz_loadu_epi8(k, x.as_ptr()) };
        _mm512_cvtepi8_epi16(_mm512_castsi512_si256(v))
    }

    /// The sum of 4 accumulators of 16 `f32` lanes.
    #[inline]
    #[target_feature(enable = "avx512f,avx512bw")]
    fn hsum4_ps(acc: [__m512; 4]) -> f32 {
        _mm512_reduce_add_ps(_mm512_add_ps(
            _mm512_add_ps(acc[0], acc[1]),
            _mm512_add_ps(acc[2], acc[3]),
        ))
    }

    /// Float kernels over a type that `$load` turns into 16 `f32` lanes.
    macro_rules! float_kernels {
        ($t:ty, $load:ident, $load_tail:ident, $l2:ident, $dot:ident, $cos:ident) => {
            /// # Safety
            /// The CPU must support AVX-512F and AVX-512BW.
            #[target_feature(enable = "avx512f,avx512bw")]
            unsafe fn $l2(a: &[$t], b: &[$t]) -> f32 {
                let (a64, a_rest) = a.as_chunks::<64>();
                let (b64, b_rest) = b.as_chunks::<64>();
                let mut acc = [_mm512_setzero_ps(); 4];
                for (x, y) in a64.iter().zip(b64) {
                    let (x, y) = (x.as_chunks::<16>().0, y.as_chunks::<16>().0);
                    for k in 0..4 {
                        let d = _mm512_sub_ps($load(&x[k]), $load(&y[k]));
                        acc[k] = _mm512_fmadd_ps(d, d, acc[k]);
                    }
                }
                let (a16, a_tail) = a_rest.as_chunks::<16>();
                let (b16, b_tail) = b_rest.as_chunks::<16>();
                for (k, (x, y)) in a16.iter().zip(b16).enumerate() {
                    let d = _mm512_sub_ps($load(x), $load(y));
                    acc[k] = _mm512_fmadd_ps(d, d, acc[k]);
                }
                if !a_tail.is_empty() {
                    let d = _mm512_sub_ps($load_tail(a_tail), $load_tail(b_tail));
                    acc[3] = _mm512_fmadd_ps(d, d, acc[3]);
                }
                hsum4_ps(acc)
            }

            /// # Safety
            /// The CPU must support AVX-512F and AVX-512BW.
            #[target_feature(enable = "avx512f,avx512bw")]
            unsafe fn $dot(a: &[$t], b: &[$t]) -> f32 {
                let (a64, a_rest) = a.as_chunks::<64>();
                let (b64, b_rest) = b.as_chunks::<64>();
                let mut acc = [_mm512_setzero_ps(); 4];
                for (x, y) in a64.iter().zip(b64) {
                    let (x, y) = (x.as_chunks::<16>().0, y.as_chunks::<16>().0);
                    for k in 0..4 {
                        acc[k] = _mm512_fmadd_ps($load(&x[k]), $load(&y[k]), acc[k]);
                    }
                }
                let (a16, a_tail) = a_rest.as_chunks::<16>();
                let (b16, b_tail) = b_rest.as_chunks::<16>();
                for (k, (x, y)) in a16.iter().zip(b16).enumerate() {
                    acc[k] = _mm512_fmadd_ps($load(x), $load(y), acc[k]);
                }
                if !a_tail.is_empty() {
                    let (x, y) = ($load_tail(a_tail), $load_tail(b_tail));
                    acc[3] = _mm512_fmadd_ps(x, y, acc[3]);
                }
                hsum4_ps(acc)
            }

            /// One pass: dot, |a|^2 and |b|^2 together.
            ///
            /// # Safety
            /// The CPU must support AVX-512F and AVX-512BW.
            #[target_feature(enable = "avx512f,avx512bw")]
            unsafe fn $cos(a: &[$t], b: &[$t]) -> f32 {
                let (a64, a_rest) = a.as_chunks::<64>();
                let (b64, b_rest) = b.as_chunks::<64>();
                let mut d = [_mm512_setzero_ps(); 4];
                let mut na = [_mm512_setzero_ps(); 4];
                let mut nb = [_mm512_setzero_ps(); 4];
                for (x, y) in a64.iter().zip(b64) {
                    let (x, y) = (x.as_chunks::<16>().0, y.as_chunks::<16>().0);
                    for k in 0..4 {
                        let (x, y) = ($load(&x[k]), $load(&y[k]));
                        d[k] = _mm512_fmadd_ps(x, y, d[k]);
                        na[k] = _mm512_fmadd_ps(x, x, na[k]);
                        nb[k] = _mm512_fmadd_ps(y, y, nb[k]);
                    }
                }
                let (a16, a_tail) = a_rest.as_chunks::<16>();
                let (b16, b_tail) = b_rest.as_chunks::<16>();
                for (k, (x, y)) in a16.iter().zip(b16).enumerate() {
                    let (x, y) = ($load(x), $load(y));
                    d[k] = _mm512_fmadd_ps(x, y, d[k]);
                    na[k] = _mm512_fmadd_ps(x, x, na[k]);
                    nb[k] = _mm512_fmadd_ps(y, y, nb[k]);
                }
                if !a_tail.is_empty() {
                    let (x, y) = ($load_tail(a_tail), $load_tail(b_tail));
                    d[3] = _mm512_fmadd_ps(x, y, d[3]);
                    na[3] = _mm512_fmadd_ps(x, x, na[3]);
                    nb[3] = _mm512_fmadd_ps(y, y, nb[3]);
                }
                cosine_from_parts(hsum4_ps(d), hsum4_ps(na), hsum4_ps(nb))
            }
        };
    }

    /// The body of a four-row integer kernel: `$term(x, y)` turns 32
    /// widened lanes of `a` and of a row into 16 `i32` partial sums.
    macro_rules! int_x4 {
        ($a:expr, $rows:expr, $widen:ident, $widen_tail:ident, $term:ident) => {{
            let (a, rows) = ($a, $rows);
            let mut total = [0i64; 4];
            for start in (0..a.len()).step_by(INT_BLOCK) {
                let end = (start + INT_BLOCK).min(a.len());
                let (a32, a_tail) = a[start..end].as_chunks::<32>();
                let r = rows.map(|r| r[start..end].as_chunks::<32>());
                let mut acc = [_mm512_setzero_si512(); 4];
                for (k, x) in a32.iter().enumerate() {
                    let x = $widen(x);
                    for j in 0..4 {
                        acc[j] = _mm512_add_epi32(acc[j], $term(x, $widen(&r[j].0[k])));
                    }
                }
                if !a_tail.is_empty() {
                    let x = $widen_tail(a_tail);
                    for j in 0..4 {
                        acc[j] = _mm512_add_epi32(acc[j], $term(x, $widen_tail(r[j].1)));
                    }
                }
                for (t, s) in total.iter_mut().zip(hsum4_epi32(acc)) {
                    *t += i64::from(s);
                }
            }
            // Same rounding as the scalar `i64 as f32`.
            total.map(|t| t as f32)
        }};
    }

    /// `(x - y)²` of 32 `i16` lanes, summed in pairs into 16 `i32` lanes.
    #[inline]
    #[target_feature(enable = "avx512f,avx512bw")]
    fn squared_differences(x: __m512i, y: __m512i) -> __m512i {
        let d = _mm512_sub_epi16(x, y);
        _mm512_madd_epi16(d, d)
    }

    /// The sums of four accumulators of 16 `i32` lanes, in order. Exact
    /// under the [`INT_BLOCK`] bound: each result is a partial sum of one
    /// block's terms.
    #[inline]
    #[target_feature(enable = "avx512f,avx512bw")]
    fn hsum4_epi32(acc: [__m512i; 4]) -> [i32; 4] {
        // Per 128-bit lane: [a0+a2, b0+b2, a1+a3, b1+b3], then [A, B, C, D].
        let ab = _mm512_add_epi32(
            _mm512_unpacklo_epi32(acc[0], acc[1]),
            _mm512_unpackhi_epi32(acc[0], acc[1]),
        );
        let cd = _mm512_add_epi32(
            _mm512_unpacklo_epi32(acc[2], acc[3]),
            _mm512_unpackhi_epi32(acc[2], acc[3]),
        );
        let lanes = _mm512_add_epi32(_mm512_unpacklo_epi64(ab, cd), _mm512_unpackhi_epi64(ab, cd));
        let half = _mm256_add_epi32(
            _mm512_castsi512_si256(lanes),
            _mm512_extracti64x4_epi64::<1>(lanes),
        );
        let sum = _mm_add_epi32(
            _mm256_castsi256_si128(half),
            _mm256_extracti128_si256::<1>(half),
        );
        let mut out = [0i32; 4];
        // SAFETY: `out` is 16 writable bytes; `storeu` has no alignment needs.
        unsafe { _mm_storeu_si128(out.as_mut_ptr().cast(), sum) };
        out
    }

    /// Exact integer kernels over a byte type that `$widen` turns into 32
    /// `i16` lanes.
    macro_rules! int_kernels {
        (
            $t:ty, $widen:ident, $widen_tail:ident, $l2:ident, $dot:ident, $cos:ident,
            $l2x4:ident, $dotx4:ident
        ) => {
            /// Four squared l2 distances from `a`: `a` is widened once per
            /// step for all four rows, and the four sums are reduced
            /// together. The graph build scores many rows against one, and
            /// with the loads of four rows in flight at once its insertions
            /// took 8% less time at 1M × 128 (benches/RESULTS.md, session 19).
            ///
            /// # Safety
            /// The CPU must support AVX-512F and AVX-512BW.
            #[target_feature(enable = "avx512f,avx512bw")]
            unsafe fn $l2x4(a: &[$t], rows: [&[$t]; 4]) -> [f32; 4] {
                int_x4!(a, rows, $widen, $widen_tail, squared_differences)
            }

            /// Four dot products from `a`, as the four l2 distances above.
            ///
            /// # Safety
            /// The CPU must support AVX-512F and AVX-512BW.
            #[target_feature(enable = "avx512f,avx512bw")]
            unsafe fn $dotx4(a: &[$t], rows: [&[$t]; 4]) -> [f32; 4] {
                int_x4!(a, rows, $widen, $widen_tail, _mm512_madd_epi16)
            }

            /// # Safety
            /// The CPU must support AVX-512F and AVX-512BW.
            #[target_feature(enable = "avx512f,avx512bw")]
            unsafe fn $l2(a: &[$t], b: &[$t]) -> f32 {
                let mut total = 0i64;
                for (a, b) in a.chunks(INT_BLOCK).zip(b.chunks(INT_BLOCK)) {
                    let (a32, a_tail) = a.as_chunks::<32>();
                    let (b32, b_tail) = b.as_chunks::<32>();
                    let mut acc = _mm512_setzero_si512();
                    for (x, y) in a32.iter().zip(b32) {
                        let d = _mm512_sub_epi16($widen(x), $widen(y));
                        acc = _mm512_add_epi32(acc, _mm512_madd_epi16(d, d));
                    }
                    if !a_tail.is_empty() {
                        let d = _mm512_sub_epi16($widen_tail(a_tail), $widen_tail(b_tail));
                        acc = _mm512_add_epi32(acc, _mm512_madd_epi16(d, d));
                    }
                    total += i64::from(_mm512_reduce_add_epi32(acc));
                }
                // Same rounding as the scalar `u64`/`i64 as f32`.
                total as f32
            }

            /// # Safety
            /// The CPU must support AVX-512F and AVX-512BW.
            #[target_feature(enable = "avx512f,avx512bw")]
            unsafe fn $dot(a: &[$t], b: &[$t]) -> f32 {
                let mut total = 0i64;
                for (a, b) in a.chunks(INT_BLOCK).zip(b.chunks(INT_BLOCK)) {
                    let (a32, a_tail) = a.as_chunks::<32>();
                    let (b32, b_tail) = b.as_chunks::<32>();
                    let mut acc = _mm512_setzero_si512();
                    for (x, y) in a32.iter().zip(b32) {
                        acc = _mm512_add_epi32(acc, _mm512_madd_epi16($widen(x), $widen(y)));
                    }
                    if !a_tail.is_empty() {
                        let (x, y) = ($widen_tail(a_tail), $widen_tail(b_tail));
                        acc = _mm512_add_epi32(acc, _mm512_madd_epi16(x, y));
                    }
                    total += i64::from(_mm512_reduce_add_epi32(acc));
                }
                total as f32
            }

            /// One pass: dot, |a|^2 and |b|^2 together.
            ///
            /// # Safety
            /// The CPU must support AVX-512F and AVX-512BW.
            #[target_feature(enable = "avx512f,avx512bw")]
            unsafe fn $cos(a: &[$t], b: &[$t]) -> f32 {
                let (mut d, mut na, mut nb) = (0i64, 0i64, 0i64);
                for (a, b) in a.chunks(INT_BLOCK).zip(b.chunks(INT_BLOCK)) {
                    let (a32, a_tail) = a.as_chunks::<32>();
                    let (b32, b_tail) = b.as_chunks::<32>();
                    let mut dv = _mm512_setzero_si512();
                    let mut nav = _mm512_setzero_si512();
                    let mut nbv = _mm512_setzero_si512();
                    for (x, y) in a32.iter().zip(b32) {
                        let (x, y) = ($widen(x), $widen(y));
                        dv = _mm512_add_epi32(dv, _mm512_madd_epi16(x, y));
                        nav = _mm512_add_epi32(nav, _mm512_madd_epi16(x, x));
                        nbv = _mm512_add_epi32(nbv, _mm512_madd_epi16(y, y));
                    }
                    if !a_tail.is_empty() {
                        let (x, y) = ($widen_tail(a_tail), $widen_tail(b_tail));
                        dv = _mm512_add_epi32(dv, _mm512_madd_epi16(x, y));
                        nav = _mm512_add_epi32(nav, _mm512_madd_epi16(x, x));
                        nbv = _mm512_add_epi32(nbv, _mm512_madd_epi16(y, y));
                    }
                    d += i64::from(_mm512_reduce_add_epi32(dv));
                    na += i64::from(_mm512_reduce_add_epi32(nav));
                    nb += i64::from(_mm512_reduce_add_epi32(nbv));
                }
                cosine_from_parts(d as f32, na as f32, nb as f32)
            }
        };
    }

    float_kernels!(
        f32,
        load_f32,
        load_f32_tail,
        l2_f32_inner,
        dot_f32_inner,
        cos_f32_inner
    );
    float_kernels!(
        f16,
        load_f16,
        load_f16_tail,
        l2_f16_inner,
        dot_f16_inner,
        cos_f16_inner
    );
    int_kernels!(
        u8,
        widen_u8,
        widen_u8_tail,
        l2_u8_inner,
        dot_u8_inner,
        cos_u8_inner,
        l2_u8_x4_inner,
        dot_u8_x4_inner
    );
    int_kernels!(
        i8,
        widen_i8,
        widen_i8_tail,
        l2_i8_inner,
        dot_i8_inner,
        cos_i8_inner,
        l2_i8_x4_inner,
        dot_i8_x4_inner
    );

    safe_wrappers_x4!(super::avx512_detected, "AVX-512F+AVX-512BW";
        l2_u8_x4 => l2_u8_x4_inner: u8,
        dot_u8_x4 => dot_u8_x4_inner: u8,
        l2_i8_x4 => l2_i8_x4_inner: i8,
        dot_i8_x4 => dot_i8_x4_inner: i8,
    );

    safe_wrappers!(super::avx512_detected, "AVX-512F+AVX-512BW";
        l2_f32 => l2_f32_inner: f32,
        dot_f32 => dot_f32_inner: f32,
        cos_f32 => cos_f32_inner: f32,
        l2_f16 => l2_f16_inner: f16,
        dot_f16 => dot_f16_inner: f16,
        cos_f16 => cos_f16_inner: f16,
        l2_u8 => l2_u8_inner: u8,
        dot_u8 => dot_u8_inner: u8,
        cos_u8 => cos_u8_inner: u8,
        l2_i8 => l2_i8_inner: i8,
        dot_i8 => dot_i8_inner: i8,
        cos_i8 => cos_i8_inner: i8,
    );
}

/// Whether this CPU can run the [`packed`] kernels.
pub(super) fn packed_detected() -> bool {
    avx512_detected()
        && is_x86_feature_detected!("avx512vbmi")
        && is_x86_feature_detected!("avx512vnni")
}

/// `Σ_j c_j q_j` of a packed stream of `B`-bit unsigned codes and an `i8`
/// query, 64 components per step: the code bytes of eight components are
/// spread to one 64-bit lane each (`vpmovzx`), a multishift cuts each
/// lane's eight `B`-bit fields into bytes, and VNNI multiplies them by the
/// query bytes and adds in 32 bits (`vpdpbusd`). A byte-table lookup per
/// code byte (the portable path) costs a load per 8 / `B` components.
pub(super) mod packed {
    use super::*;

    /// Multishift controls: byte `k` of each lane takes bits `B k ..`.
    const SHIFTS_1: i64 = 0x0706_0504_0302_0100;
    const SHIFTS_2: i64 = 0x0E0C_0A08_0604_0200;
    const SHIFTS_4: i64 = 0x1C18_1410_0C08_0400;

    #[target_feature(enable = "avx512f,avx512bw,avx512vbmi,avx512vnni")]
    fn load_query(q: &[i8; 64]) -> __m512i {
        // SAFETY: `q` is 64 readable bytes; `loadu` has no alignment needs.
        unsafe { _mm512_loadu_si512(q.as_ptr().cast()) }
    }

    /// The code bytes of 64 components of `B` bits, spread so that 64-bit
    /// lane `l` holds those of components `8 l .. 8 l + 8` in its low bits.
    #[target_feature(enable = "avx512f,avx512bw,avx512vbmi,avx512vnni")]
    fn spread_u1(c: &[u8; 8]) -> __m512i {
        // SAFETY: `c` is 8 readable bytes; `loadl` reads 8 and has no
        // alignment needs.
        _mm512_cvtepu8_epi64(unsafe { _mm_loadl_epi64(c.as_ptr().cast()) })
    }

    #[target_feature(enable = "avx512f,avx512bw,avx512vbmi,avx512vnni")]
    fn spread_u2(c: &[u8; 16]) -> __m512i {
        // SAFETY: `c` is 16 readable bytes; `loadu` has no alignment needs.
        _mm512_cvtepu16_epi64(unsafe { _mm_loadu_si128(c.as_ptr().cast()) })
    }

    #[target_feature(enable = "avx512f,avx512bw,avx512vbmi,avx512vnni")]
    fn spread_u4(c: &[u8; 32]) -> __m512i {
        // SAFETY: `c` is 32 readable bytes; `loadu` has no alignment needs.
        _mm512_cvtepu32_epi64(unsafe { _mm256_loadu_si256(c.as_ptr().cast()) })
    }

    macro_rules! packed_kernel {
        ($name:ident, $bytes:literal, $spread:ident, $shifts:expr, $mask:literal) => {
            /// # Safety
            /// The CPU must support AVX-512F, BW, VBMI and VNNI. Lengths
            /// need not match: the kernel stops at the shorter input.
            #[target_feature(enable = "avx512f,avx512bw,avx512vbmi,avx512vnni")]
            unsafe fn $name(codes: &[u8], query: &[i8]) -> i32 {
                let (codes, _) = codes.as_chunks::<$bytes>();
                let (query, _) = query.as_chunks::<64>();
                let shifts = _mm512_set1_epi64($shifts);
                let mask = _mm512_set1_epi8($mask);
                let mut acc = _mm512_setzero_si512();
                for (c, q) in codes.iter().zip(query) {
                    let fields = _mm512_multishift_epi64_epi8(shifts, $spread(c));
                    let fields = _mm512_and_si512(fields, mask);
                    acc = _mm512_dpbusd_epi32(acc, fields, load_query(q));
                }
                _mm512_reduce_add_epi32(acc)
            }
        };
    }

    packed_kernel!(dot_u1_inner, 8, spread_u1, SHIFTS_1, 0x01);
    packed_kernel!(dot_u2_inner, 16, spread_u2, SHIFTS_2, 0x03);
    packed_kernel!(dot_u4_inner, 32, spread_u4, SHIFTS_4, 0x0F);

    macro_rules! packed_wrappers {
        ($($name:ident => $inner:ident: $bits:literal),* $(,)?) => {
            $(
                #[doc = concat!("Safe wrapper of `", stringify!($inner), "`.")]
                pub(in crate::distance) fn $name(codes: &[u8], query: &[i8]) -> i32 {
                    assert!(query.len() % 64 == 0, "query length not a multiple of 64");
                    assert_eq!(codes.len(), query.len() * $bits / 8, "code length");
                    debug_assert!(super::packed_detected(), "CPU lacks AVX-512 VBMI + VNNI");
                    // SAFETY: the lengths are checked above. This wrapper
                    // is private to `crate::distance`, whose
                    // `packed_dot_kernel` hands it out only after
                    // `packed_detected` confirmed the features at run time.
                    unsafe { $inner(codes, query) }
                }
            )*
        };
    }

    packed_wrappers!(
        dot_u1 => dot_u1_inner: 1,
        dot_u2 => dot_u2_inner: 2,
        dot_u4 => dot_u4_inner: 4,
    );
}

/// Column-major matrix times vector for the AVX-512 level: `out[i] =
/// Σ_j x_j c_ji` ([`columns::dot`]) or `Σ_j (x_j − c_ji)²`
/// ([`columns::l2`]). Rows go in groups of `16 ×` [`columns::GROUP`], whose
/// sums stay in registers across every column, so each matrix element is
/// loaded once and no partial sum goes through memory; the portable loop
/// loads and stores its sums once per multiply-add.
pub(super) mod columns {
    use super::*;

    /// 16-row blocks per group: 8 accumulators of the 32 registers.
    const GROUP: usize = 8;

    #[inline]
    #[target_feature(enable = "avx512f,avx512bw")]
    fn load(x: &[f32; 16]) -> __m512 {
        // SAFETY: `x` is 64 readable bytes; `loadu` has no alignment needs.
        unsafe { _mm512_loadu_ps(x.as_ptr()) }
    }

    #[inline]
    #[target_feature(enable = "avx512f,avx512bw")]
    fn store(out: &mut [f32; 16], v: __m512) {
        // SAFETY: `out` is 64 writable bytes; `storeu` has no alignment needs.
        unsafe { _mm512_storeu_ps(out.as_mut_ptr(), v) }
    }

    /// The `16 N` rows from `first` on, of a matrix with `k` rows.
    #[inline]
    #[target_feature(enable = "avx512f,avx512bw")]
    fn rows<const N: usize, const L2: bool>(
        cols: &[f32],
        x: &[f32],
        k: usize,
        first: usize,
        out: &mut [[f32; 16]; N],
    ) {
        let mut acc = [_mm512_setzero_ps(); N];
        for (j, &xj) in x.iter().enumerate() {
            let xv = _mm512_set1_ps(xj);
            let start = j * k + first;
            let (col, _) = cols[start..start + 16 * N].as_chunks::<16>();
            for (a, c) in acc.iter_mut().zip(col) {
                let c = load(c);
                *a = if L2 {
                    let d = _mm512_sub_ps(xv, c);
                    _mm512_fmadd_ps(d, d, *a)
                } else {
                    _mm512_fmadd_ps(xv, c, *a)
                };
            }
        }
        for (o, a) in out.iter_mut().zip(acc) {
            store(o, a);
        }
    }

    /// # Safety
    /// The CPU must support AVX-512F and BW. Slices are indexed with
    /// bounds checks, so a wrong shape panics rather than reads out of
    /// bounds.
    #[target_feature(enable = "avx512f,avx512bw")]
    unsafe fn columns_inner<const L2: bool>(cols: &[f32], x: &[f32], out: &mut [f32]) {
        let k = out.len();
        let (blocks, tail) = out.as_chunks_mut::<16>();
        let (groups, rest) = blocks.as_chunks_mut::<GROUP>();
        let mut first = 0;
        for g in groups {
            rows::<GROUP, L2>(cols, x, k, first, g);
            first += 16 * GROUP;
        }
        for b in rest {
            rows::<1, L2>(cols, x, k, first, core::array::from_mut(b));
            first += 16;
        }
        for (i, o) in tail.iter_mut().enumerate() {
            *o = x
                .iter()
                .enumerate()
                .map(|(j, &xj)| {
                    let c = cols[j * k + first + i];
                    if L2 { (xj - c) * (xj - c) } else { xj * c }
                })
                .sum();
        }
    }

    macro_rules! column_wrappers {
        ($($name:ident => $l2:literal),* $(,)?) => {
            $(
                #[doc = concat!("Safe wrapper of `columns_inner` (`L2 = ", stringify!($l2), "`).")]
                pub(in crate::distance) fn $name(cols: &[f32], x: &[f32], out: &mut [f32]) {
                    assert_eq!(cols.len(), x.len() * out.len(), "matrix shape");
                    debug_assert!(super::avx512_detected(), "CPU lacks AVX-512");
                    // SAFETY: this wrapper is private to `crate::distance`,
                    // whose dispatch calls it only after `avx512_detected`
                    // confirmed the features at run time; every slice access
                    // in the kernel is bounds-checked.
                    unsafe { columns_inner::<$l2>(cols, x, out) }
                }
            )*
        };
    }

    column_wrappers!(dot => false, l2 => true);
}
