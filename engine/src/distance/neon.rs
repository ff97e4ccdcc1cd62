//! aarch64 NEON kernels for every element type and kernel.
//!
//! Invariant: the `unsafe` `#[target_feature(enable = "neon")]` functions
//! here may only run on a CPU with NEON, so the only way out of this module is
//! the safe wrappers at the bottom, and `super::Element::kernels_for` hands
//! those out only after [`detected`] said yes at run time (NEON is part of
//! every aarch64 Linux/macOS target, but the check keeps the rule uniform
//! with x86). Every memory read goes through a helper that takes a fixed-size
//! array, so reads stay in bounds by construction for every length, 0 and 1
//! included; tails are copied into zero-padded arrays.
//!
//! `f32` kernels keep 4 accumulators to hide FMA latency. `f16` kernels do
//! not use NEON half-precision arithmetic (its vector types are unstable in
//! Rust): they convert chunks to `f32` with the `half` crate's slice
//! conversion (hardware `fcvt` where available) and run the `f32` kernels.
//! Integer kernels are exact: `u8`/`i8` widen to 16 bits, multiply-accumulate
//! into 32-bit lanes, flush into 64 bits every [`INT_BLOCK`] elements, and
//! convert the exact total to `f32` once, like the scalar reference.

use core::arch::aarch64::*;

use half::f16;
use half::slice::HalfFloatSliceExt;

use super::scalar::cosine_from_parts;

/// Elements per 32-bit accumulation block of the integer kernels.
///
/// Overflow bound: the largest term of any integer kernel is
/// `255 * 255 = 65_025` (i8 products are at most `128 * 128 = 16_384` in
/// magnitude), so the sum of all terms of one block, and every partial sum of
/// any subset of its lanes, is at most `16_384 * 65_025 = 1_065_369_600 <
/// i32::MAX`. The format caps dimensions at 16 384, so a real vector is a
/// single block; longer slices stay exact because block sums go into 64 bits.
const INT_BLOCK: usize = 16_384;

// The bound above, checked by the compiler.
const _: () = assert!(INT_BLOCK * 255 * 255 <= i32::MAX as usize);

/// `f16` elements converted to `f32` per step of the `f16` kernels.
const F16_CHUNK: usize = 256;

/// Whether this CPU can run these kernels.
pub(super) fn detected() -> bool {
    std::arch::is_aarch64_feature_detected!("neon")
}

/// Copies `tail` into a zero-filled array. Zero lanes add nothing to any
/// kernel. Panics if `tail` is longer than `N`.
#[inline(always)]
fn pad<T: Copy + Default, const N: usize>(tail: &[T]) -> [T; N] {
    let mut out = [T::default(); N];
    out[..tail.len()].copy_from_slice(tail);
    out
}

#[inline]
#[target_feature(enable = "neon")]
fn load_f32(x: &[f32; 4]) -> float32x4_t {
    // SAFETY: `x` is 4 readable `f32`; `vld1q` has no alignment needs.
    unsafe { vld1q_f32(x.as_ptr()) }
}

#[inline]
#[target_feature(enable = "neon")]
fn load_u8(x: &[u8; 16]) -> uint8x16_t {
    // SAFETY: `x` is 16 readable bytes; `vld1q` has no alignment needs.
    unsafe { vld1q_u8(x.as_ptr()) }
}

#[inline]
#[target_feature(enable = "neon")]
fn load_i8(x: &[i8; 16]) -> int8x16_t {
    // SAFETY: `x` is 16 readable bytes; `vld1q` has no alignment needs.
    unsafe { vld1q_s8(x.as_ptr()) }
}

/// The sum of 4 accumulators of 4 `f32` lanes.
#[inline]
#[target_feature(enable = "neon")]
fn hsum4(acc: [float32x4_t; 4]) -> f32 {
    vaddvq_f32(vaddq_f32(
        vaddq_f32(acc[0], acc[1]),
        vaddq_f32(acc[2], acc[3]),
    ))
}

/// Squared L2 distance of two equally long `f32` slices.
#[inline]
#[target_feature(enable = "neon")]
fn l2_f32_body(a: &[f32], b: &[f32]) -> f32 {
    let (a16, a_rest) = a.as_chunks::<16>();
    let (b16, b_rest) = b.as_chunks::<16>();
    let mut acc = [vdupq_n_f32(0.0); 4];
    for (x, y) in a16.iter().zip(b16) {
        let (x, y) = (x.as_chunks::<4>().0, y.as_chunks::<4>().0);
        for k in 0..4 {
            let d = vsubq_f32(load_f32(&x[k]), load_f32(&y[k]));
            acc[k] = vfmaq_f32(acc[k], d, d);
        }
    }
    let (a4, a_tail) = a_rest.as_chunks::<4>();
    let (b4, b_tail) = b_rest.as_chunks::<4>();
    for (k, (x, y)) in a4.iter().zip(b4).enumerate() {
        let d = vsubq_f32(load_f32(x), load_f32(y));
        acc[k] = vfmaq_f32(acc[k], d, d);
    }
    if !a_tail.is_empty() {
        let d = vsubq_f32(load_f32(&pad(a_tail)), load_f32(&pad(b_tail)));
        acc[3] = vfmaq_f32(acc[3], d, d);
    }
    hsum4(acc)
}

/// Dot product of two equally long `f32` slices.
#[inline]
#[target_feature(enable = "neon")]
fn dot_f32_body(a: &[f32], b: &[f32]) -> f32 {
    let (a16, a_rest) = a.as_chunks::<16>();
    let (b16, b_rest) = b.as_chunks::<16>();
    let mut acc = [vdupq_n_f32(0.0); 4];
    for (x, y) in a16.iter().zip(b16) {
        let (x, y) = (x.as_chunks::<4>().0, y.as_chunks::<4>().0);
        for k in 0..4 {
            acc[k] = vfmaq_f32(acc[k], load_f32(&x[k]), load_f32(&y[k]));
        }
    }
    let (a4, a_tail) = a_rest.as_chunks::<4>();
    let (b4, b_tail) = b_rest.as_chunks::<4>();
    for (k, (x, y)) in a4.iter().zip(b4).enumerate() {
        acc[k] = vfmaq_f32(acc[k], load_f32(x), load_f32(y));
    }
    if !a_tail.is_empty() {
        acc[3] = vfmaq_f32(acc[3], load_f32(&pad(a_tail)), load_f32(&pad(b_tail)));
    }
    hsum4(acc)
}

/// `(dot, |a|^2, |b|^2)` of two equally long `f32` slices, in one pass.
#[inline]
#[target_feature(enable = "neon")]
fn cos_parts_f32(a: &[f32], b: &[f32]) -> (f32, f32, f32) {
    let (a16, a_rest) = a.as_chunks::<16>();
    let (b16, b_rest) = b.as_chunks::<16>();
    let mut d = [vdupq_n_f32(0.0); 4];
    let mut na = [vdupq_n_f32(0.0); 4];
    let mut nb = [vdupq_n_f32(0.0); 4];
    for (x, y) in a16.iter().zip(b16) {
        let (x, y) = (x.as_chunks::<4>().0, y.as_chunks::<4>().0);
        for k in 0..4 {
            let (x, y) = (load_f32(&x[k]), load_f32(&y[k]));
            d[k] = vfmaq_f32(d[k], x, y);
            na[k] = vfmaq_f32(na[k], x, x);
            nb[k] = vfmaq_f32(nb[k], y, y);
        }
    }
    let (a4, a_tail) = a_rest.as_chunks::<4>();
    let (b4, b_tail) = b_rest.as_chunks::<4>();
    for (k, (x, y)) in a4.iter().zip(b4).enumerate() {
        let (x, y) = (load_f32(x), load_f32(y));
        d[k] = vfmaq_f32(d[k], x, y);
        na[k] = vfmaq_f32(na[k], x, x);
        nb[k] = vfmaq_f32(nb[k], y, y);
    }
    if !a_tail.is_empty() {
        let (x, y) = (load_f32(&pad(a_tail)), load_f32(&pad(b_tail)));
        d[3] = vfmaq_f32(d[3], x, y);
        na[3] = vfmaq_f32(na[3], x, x);
        nb[3] = vfmaq_f32(nb[3], y, y);
    }
    (hsum4(d), hsum4(na), hsum4(nb))
}

/// # Safety
/// The CPU must support NEON.
#[target_feature(enable = "neon")]
unsafe fn l2_f32_inner(a: &[f32], b: &[f32]) -> f32 {
    l2_f32_body(a, b)
}

/// # Safety
/// The CPU must support NEON.
#[target_feature(enable = "neon")]
unsafe fn dot_f32_inner(a: &[f32], b: &[f32]) -> f32 {
    dot_f32_body(a, b)
}

/// # Safety
/// The CPU must support NEON.
#[target_feature(enable = "neon")]
unsafe fn cos_f32_inner(a: &[f32], b: &[f32]) -> f32 {
    let (d, na, nb) = cos_parts_f32(a, b);
    cosine_from_parts(d, na, nb)
}

/// Calls `f` on `f32` copies of successive equal chunks of `a` and `b`.
#[inline(always)]
fn for_f16_chunks(a: &[f16], b: &[f16], mut f: impl FnMut(&[f32], &[f32])) {
    let mut fa = [0f32; F16_CHUNK];
    let mut fb = [0f32; F16_CHUNK];
    for (x, y) in a.chunks(F16_CHUNK).zip(b.chunks(F16_CHUNK)) {
        let (fa, fb) = (&mut fa[..x.len()], &mut fb[..y.len()]);
        x.convert_to_f32_slice(fa);
        y.convert_to_f32_slice(fb);
        f(fa, fb);
    }
}

/// # Safety
/// The CPU must support NEON.
#[target_feature(enable = "neon")]
unsafe fn l2_f16_inner(a: &[f16], b: &[f16]) -> f32 {
    let mut s = 0.0f32;
    for_f16_chunks(a, b, |x, y| s += l2_f32_body(x, y));
    s
}

/// # Safety
/// The CPU must support NEON.
#[target_feature(enable = "neon")]
unsafe fn dot_f16_inner(a: &[f16], b: &[f16]) -> f32 {
    let mut s = 0.0f32;
    for_f16_chunks(a, b, |x, y| s += dot_f32_body(x, y));
    s
}

/// # Safety
/// The CPU must support NEON.
#[target_feature(enable = "neon")]
unsafe fn cos_f16_inner(a: &[f16], b: &[f16]) -> f32 {
    let (mut d, mut na, mut nb) = (0.0f32, 0.0f32, 0.0f32);
    for_f16_chunks(a, b, |x, y| {
        let (cd, cna, cnb) = cos_parts_f32(x, y);
        d += cd;
        na += cna;
        nb += cnb;
    });
    cosine_from_parts(d, na, nb)
}

/// # Safety
/// The CPU must support NEON.
#[target_feature(enable = "neon")]
unsafe fn l2_u8_inner(a: &[u8], b: &[u8]) -> f32 {
    let mut total = 0u64;
    for (a, b) in a.chunks(INT_BLOCK).zip(b.chunks(INT_BLOCK)) {
        let (a16, a_tail) = a.as_chunks::<16>();
        let (b16, b_tail) = b.as_chunks::<16>();
        let tail = (!a_tail.is_empty()).then(|| (pad(a_tail), pad(b_tail)));
        let mut acc = vdupq_n_u32(0);
        for (x, y) in a16.iter().zip(b16).chain(tail.iter().map(|(x, y)| (x, y))) {
            let (x, y) = (load_u8(x), load_u8(y));
            let lo = vabdl_u8(vget_low_u8(x), vget_low_u8(y));
            let hi = vabdl_high_u8(x, y);
            acc = vmlal_u16(acc, vget_low_u16(lo), vget_low_u16(lo));
            acc = vmlal_high_u16(acc, lo, lo);
            acc = vmlal_u16(acc, vget_low_u16(hi), vget_low_u16(hi));
            acc = vmlal_high_u16(acc, hi, hi);
        }
        total += u64::from(vaddvq_u32(acc));
    }
    // Same rounding as the scalar `u64 as f32`.
    total as f32
}

/// `u8` products of 16 pairs, pairwise added into 4 `u32` lanes.
#[inline]
#[target_feature(enable = "neon")]
fn dot_u8x16(acc: uint32x4_t, x: uint8x16_t, y: uint8x16_t) -> uint32x4_t {
    let acc = vpadalq_u16(acc, vmull_u8(vget_low_u8(x), vget_low_u8(y)));
    vpadalq_u16(acc, vmull_high_u8(x, y))
}

/// # Safety
/// The CPU must support NEON.
#[target_feature(enable = "neon")]
unsafe fn dot_u8_inner(a: &[u8], b: &[u8]) -> f32 {
    let mut total = 0u64;
    for (a, b) in a.chunks(INT_BLOCK).zip(b.chunks(INT_BLOCK)) {
        let (a16, a_tail) = a.as_chunks::<16>();
        let (b16, b_tail) = b.as_chunks::<16>();
        let tail = (!a_tail.is_empty()).then(|| (pad(a_tail), pad(b_tail)));
        let mut acc = vdupq_n_u32(0);
        for (x, y) in a16.iter().zip(b16).chain(tail.iter().map(|(x, y)| (x, y))) {
            acc = dot_u8x16(acc, load_u8(x), load_u8(y));
        }
        total += u64::from(vaddvq_u32(acc));
    }
    total as f32
}

/// # Safety
/// The CPU must support NEON.
#[target_feature(enable = "neon")]
unsafe fn cos_u8_inner(a: &[u8], b: &[u8]) -> f32 {
    let (mut d, mut na, mut nb) = (0u64, 0u64, 0u64);
    for (a, b) in a.chunks(INT_BLOCK).zip(b.chunks(INT_BLOCK)) {
        let (a16, a_tail) = a.as_chunks::<16>();
        let (b16, b_tail) = b.as_chunks::<16>();
        let tail = (!a_tail.is_empty()).then(|| (pad(a_tail), pad(b_tail)));
        let (mut dv, mut nav, mut nbv) = (vdupq_n_u32(0), vdupq_n_u32(0), vdupq_n_u32(0));
        for (x, y) in a16.iter().zip(b16).chain(tail.iter().map(|(x, y)| (x, y))) {
            let (x, y) = (load_u8(x), load_u8(y));
            dv = dot_u8x16(dv, x, y);
            nav = dot_u8x16(nav, x, x);
            nbv = dot_u8x16(nbv, y, y);
        }
        d += u64::from(vaddvq_u32(dv));
        na += u64::from(vaddvq_u32(nav));
        nb += u64::from(vaddvq_u32(nbv));
    }
    cosine_from_parts(d as f32, na as f32, nb as f32)
}

/// # Safety
/// The CPU must support NEON.
#[target_feature(enable = "neon")]
unsafe fn l2_i8_inner(a: &[i8], b: &[i8]) -> f32 {
    let mut total = 0i64;
    for (a, b) in a.chunks(INT_BLOCK).zip(b.chunks(INT_BLOCK)) {
        let (a16, a_tail) = a.as_chunks::<16>();
        let (b16, b_tail) = b.as_chunks::<16>();
        let tail = (!a_tail.is_empty()).then(|| (pad(a_tail), pad(b_tail)));
        let mut acc = vdupq_n_s32(0);
        for (x, y) in a16.iter().zip(b16).chain(tail.iter().map(|(x, y)| (x, y))) {
            let (x, y) = (load_i8(x), load_i8(y));
            // Differences lie in -255..=255: exact in i16.
            let lo = vsubl_s8(vget_low_s8(x), vget_low_s8(y));
            let hi = vsubl_high_s8(x, y);
            acc = vmlal_s16(acc, vget_low_s16(lo), vget_low_s16(lo));
            acc = vmlal_high_s16(acc, lo, lo);
            acc = vmlal_s16(acc, vget_low_s16(hi), vget_low_s16(hi));
            acc = vmlal_high_s16(acc, hi, hi);
        }
        total += i64::from(vaddvq_s32(acc));
    }
    // Same rounding as the scalar `i64 as f32`.
    total as f32
}

/// `i8` products of 16 pairs (each in -16_256..=16_384, exact in i16),
/// pairwise added into 4 `i32` lanes.
#[inline]
#[target_feature(enable = "neon")]
fn dot_i8x16(acc: int32x4_t, x: int8x16_t, y: int8x16_t) -> int32x4_t {
    let acc = vpadalq_s16(acc, vmull_s8(vget_low_s8(x), vget_low_s8(y)));
    vpadalq_s16(acc, vmull_high_s8(x, y))
}

/// # Safety
/// The CPU must support NEON.
#[target_feature(enable = "neon")]
unsafe fn dot_i8_inner(a: &[i8], b: &[i8]) -> f32 {
    let mut total = 0i64;
    for (a, b) in a.chunks(INT_BLOCK).zip(b.chunks(INT_BLOCK)) {
        let (a16, a_tail) = a.as_chunks::<16>();
        let (b16, b_tail) = b.as_chunks::<16>();
        let tail = (!a_tail.is_empty()).then(|| (pad(a_tail), pad(b_tail)));
        let mut acc = vdupq_n_s32(0);
        for (x, y) in a16.iter().zip(b16).chain(tail.iter().map(|(x, y)| (x, y))) {
            acc = dot_i8x16(acc, load_i8(x), load_i8(y));
        }
        total += i64::from(vaddvq_s32(acc));
    }
    total as f32
}

/// # Safety
/// The CPU must support NEON.
#[target_feature(enable = "neon")]
unsafe fn cos_i8_inner(a: &[i8], b: &[i8]) -> f32 {
    let (mut d, mut na, mut nb) = (0i64, 0i64, 0i64);
    for (a, b) in a.chunks(INT_BLOCK).zip(b.chunks(INT_BLOCK)) {
        let (a16, a_tail) = a.as_chunks::<16>();
        let (b16, b_tail) = b.as_chunks::<16>();
        let tail = (!a_tail.is_empty()).then(|| (pad(a_tail), pad(b_tail)));
        let (mut dv, mut nav, mut nbv) = (vdupq_n_s32(0), vdupq_n_s32(0), vdupq_n_s32(0));
        for (x, y) in a16.iter().zip(b16).chain(tail.iter().map(|(x, y)| (x, y))) {
            let (x, y) = (load_i8(x), load_i8(y));
            dv = dot_i8x16(dv, x, y);
            nav = dot_i8x16(nav, x, x);
            nbv = dot_i8x16(nbv, y, y);
        }
        d += i64::from(vaddvq_s32(dv));
        na += i64::from(vaddvq_s32(nav));
        nb += i64::from(vaddvq_s32(nbv));
    }
    cosine_from_parts(d as f32, na as f32, nb as f32)
}

/// Generates the safe wrappers that `super::Element::kernels_for` hands out.
macro_rules! safe_wrappers {
    ($($name:ident => $inner:ident: $t:ty),* $(,)?) => {
        $(
            #[doc = concat!("Safe wrapper of the NEON kernel `", stringify!($inner), "`.")]
            pub(super) fn $name(a: &[$t], b: &[$t]) -> f32 {
                assert_eq!(a.len(), b.len(), "vector lengths differ");
                debug_assert!(detected(), "CPU lacks NEON");
                // SAFETY: the inner kernel needs NEON. This wrapper is private
                // to `crate::distance`, whose `kernels_for(level)` returns it
                // only after `SimdLevel::is_supported` confirmed NEON with
                // `is_aarch64_feature_detected!` at run time. All memory
                // access in the inner kernel is bounds-checked by construction.
                unsafe { $inner(a, b) }
            }
        )*
    };
}

safe_wrappers!(
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
