//! Scalar reference kernels: the definition every SIMD kernel is tested
//! against, and the fallback on CPUs without a SIMD level.

use half::f16;

/// `1 - dot / sqrt(na * nb)`, with the zero-vector convention of the crate.
#[inline]
pub(crate) fn cosine_from_parts(dot: f32, norm_a: f32, norm_b: f32) -> f32 {
    let denom = (norm_a * norm_b).sqrt();
    if denom > 0.0 { 1.0 - dot / denom } else { 1.0 }
}

pub(crate) fn l2_f32(a: &[f32], b: &[f32]) -> f32 {
    assert_eq!(a.len(), b.len(), "vector lengths differ");
    a.iter().zip(b).map(|(x, y)| (x - y) * (x - y)).sum()
}

pub(crate) fn dot_f32(a: &[f32], b: &[f32]) -> f32 {
    assert_eq!(a.len(), b.len(), "vector lengths differ");
    a.iter().zip(b).map(|(x, y)| x * y).sum()
}

pub(crate) fn cos_f32(a: &[f32], b: &[f32]) -> f32 {
    assert_eq!(a.len(), b.len(), "vector lengths differ");
    let (mut d, mut na, mut nb) = (0.0f32, 0.0f32, 0.0f32);
    for (x, y) in a.iter().zip(b) {
        d += x * y;
        na += x * x;
        nb += y * y;
    }
    cosine_from_parts(d, na, nb)
}

pub(crate) fn l2_f16(a: &[f16], b: &[f16]) -> f32 {
    assert_eq!(a.len(), b.len(), "vector lengths differ");
    a.iter()
        .zip(b)
        .map(|(x, y)| {
            let d = x.to_f32() - y.to_f32();
            d * d
        })
        .sum()
}

pub(crate) fn dot_f16(a: &[f16], b: &[f16]) -> f32 {
    assert_eq!(a.len(), b.len(), "vector lengths differ");
    a.iter().zip(b).map(|(x, y)| x.to_f32() * y.to_f32()).sum()
}

pub(crate) fn cos_f16(a: &[f16], b: &[f16]) -> f32 {
    assert_eq!(a.len(), b.len(), "vector lengths differ");
    let (mut d, mut na, mut nb) = (0.0f32, 0.0f32, 0.0f32);
    for (x, y) in a.iter().zip(b) {
        let (x, y) = (x.to_f32(), y.to_f32());
        d += x * y;
        na += x * x;
        nb += y * y;
    }
    cosine_from_parts(d, na, nb)
}

pub(crate) fn l2_u8(a: &[u8], b: &[u8]) -> f32 {
    assert_eq!(a.len(), b.len(), "vector lengths differ");
    let s: u64 = a
        .iter()
        .zip(b)
        .map(|(&x, &y)| {
            let d = i64::from(x) - i64::from(y);
            (d * d) as u64
        })
        .sum();
    s as f32
}

pub(crate) fn dot_u8(a: &[u8], b: &[u8]) -> f32 {
    assert_eq!(a.len(), b.len(), "vector lengths differ");
    let s: u64 = a
        .iter()
        .zip(b)
        .map(|(&x, &y)| u64::from(x) * u64::from(y))
        .sum();
    s as f32
}

pub(crate) fn cos_u8(a: &[u8], b: &[u8]) -> f32 {
    assert_eq!(a.len(), b.len(), "vector lengths differ");
    let (mut d, mut na, mut nb) = (0u64, 0u64, 0u64);
    for (&x, &y) in a.iter().zip(b) {
        let (x, y) = (u64::from(x), u64::from(y));
        d += x * y;
        na += x * x;
        nb += y * y;
    }
    cosine_from_parts(d as f32, na as f32, nb as f32)
}

pub(crate) fn l2_i8(a: &[i8], b: &[i8]) -> f32 {
    assert_eq!(a.len(), b.len(), "vector lengths differ");
    let s: i64 = a
        .iter()
        .zip(b)
        .map(|(&x, &y)| {
            let d = i64::from(x) - i64::from(y);
            d * d
        })
        .sum();
    s as f32
}

pub(crate) fn dot_i8(a: &[i8], b: &[i8]) -> f32 {
    assert_eq!(a.len(), b.len(), "vector lengths differ");
    let s: i64 = a
        .iter()
        .zip(b)
        .map(|(&x, &y)| i64::from(x) * i64::from(y))
        .sum();
    s as f32
}

pub(crate) fn cos_i8(a: &[i8], b: &[i8]) -> f32 {
    assert_eq!(a.len(), b.len(), "vector lengths differ");
    let (mut d, mut na, mut nb) = (0i64, 0i64, 0i64);
    for (&x, &y) in a.iter().zip(b) {
        let (x, y) = (i64::from(x), i64::from(y));
        d += x * y;
        na += x * x;
        nb += y * y;
    }
    cosine_from_parts(d as f32, na as f32, nb as f32)
}

/// `Σ_j c_j q_j` with `c_j` the `bits`-bit field `j` of the packed stream.
pub(crate) fn packed_dot(bits: u8, codes: &[u8], query: &[i8]) -> i32 {
    let bits = usize::from(bits);
    assert!((1..=8).contains(&bits), "code width {bits}");
    assert!(
        codes.len() * 8 >= query.len() * bits,
        "code stream too short"
    );
    query
        .iter()
        .enumerate()
        .map(|(j, &q)| {
            let c = (0..bits).fold(0i32, |c, b| {
                let g = bits * j + b;
                c | (i32::from(codes[g / 8] >> (g % 8) & 1) << b)
            });
            c * i32::from(q)
        })
        .sum()
}

/// `out[i] = Σ_j x[j] · cols[j k + i]` with `k = out.len()`: the reference
/// of `super::columns_dot`.
pub(crate) fn columns_dot(cols: &[f32], x: &[f32], out: &mut [f32]) {
    columns(cols, x, out, |xj, c| xj * c);
}

/// `out[i] = Σ_j (x[j] − cols[j k + i])²`: the reference of
/// `super::columns_l2`.
pub(crate) fn columns_l2(cols: &[f32], x: &[f32], out: &mut [f32]) {
    columns(cols, x, out, |xj, c| (xj - c) * (xj - c));
}

/// A sum of `term(x_j, c_ji)` per row, one column at a time: the inner loop
/// has no reduction and autovectorises at any level.
#[inline(always)]
fn columns(cols: &[f32], x: &[f32], out: &mut [f32], term: impl Fn(f32, f32) -> f32) {
    assert_eq!(cols.len(), x.len() * out.len(), "matrix shape");
    out.fill(0.0);
    if out.is_empty() {
        return;
    }
    for (&xj, col) in x.iter().zip(cols.chunks_exact(out.len())) {
        for (o, &c) in out.iter_mut().zip(col) {
            *o += term(xj, c);
        }
    }
}
