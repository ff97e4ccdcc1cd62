//! pgvector's `vector` type: its text form (`'[1,2,3]'`), its binary form
//! on the wire, and its three distances exactly as pgvector defines them.
//!
//! Both parsers read bytes straight from the network, so they reject
//! rather than guess: a wrong length, an empty or oversized vector, NaN and
//! infinity are errors naming what was wrong (pgvector rejects the same).

use crate::{Result, SqlError};

/// The most dimensions a vector may have (pgvector's `VECTOR_MAX_DIM`).
pub const MAX_DIM: usize = 16_000;

/// Parses pgvector's text form: `[x1,x2,...]`, spaces allowed around
/// elements and brackets.
pub fn parse_text(text: &str) -> Result<Vec<f32>> {
    let bad = |why: String| {
        SqlError::bad_text(format!(
            "invalid input syntax for type vector: \"{}\": {why}",
            clip(text)
        ))
    };
    let inner = text
        .trim()
        .strip_prefix('[')
        .and_then(|s| s.strip_suffix(']'))
        .ok_or_else(|| bad("a vector is written [x1,x2,...]".into()))?;
    if inner.trim().is_empty() {
        return Err(SqlError::invalid("vector must have at least 1 dimension"));
    }
    let mut out = Vec::new();
    for (i, part) in inner.split(',').enumerate() {
        let part = part.trim();
        let x: f32 = part
            .parse()
            .map_err(|_| bad(format!("element {i} ('{}') is not a number", clip(part))))?;
        check_element(i, x)?;
        out.push(x);
        if out.len() > MAX_DIM {
            return Err(SqlError::invalid(format!(
                "vector cannot have more than {MAX_DIM} dimensions"
            )));
        }
    }
    Ok(out)
}

/// Writes pgvector's text form; each element in its shortest round-trip
/// decimal, as pgvector prints them.
pub fn format_text(v: &[f32]) -> String {
    use std::fmt::Write as _;
    let mut s = String::with_capacity(2 + v.len() * 10);
    s.push('[');
    for (i, x) in v.iter().enumerate() {
        if i > 0 {
            s.push(',');
        }
        let _ = write!(s, "{x}");
    }
    s.push(']');
    s
}

/// Decodes pgvector's binary form (its `vector_recv`): `int16` dimension
/// count, `int16` reserved (must be 0), then that many big-endian `float4`.
pub fn decode_binary(bytes: &[u8]) -> Result<Vec<f32>> {
    let (Some(dim), Some(unused)) = (be_u16(bytes, 0), be_u16(bytes, 2)) else {
        return Err(SqlError::invalid(format!(
            "binary vector of {} bytes is shorter than its 4-byte header",
            bytes.len()
        )));
    };
    let dim = usize::from(dim);
    if unused != 0 {
        return Err(SqlError::invalid(format!(
            "binary vector header: reserved field is {unused}, expected 0"
        )));
    }
    if dim == 0 || dim > MAX_DIM {
        return Err(SqlError::invalid(format!(
            "binary vector declares {dim} dimensions; 1..={MAX_DIM} are allowed"
        )));
    }
    let body = &bytes[4..];
    if body.len() != dim * 4 {
        return Err(SqlError::invalid(format!(
            "binary vector declares {dim} dimensions ({} bytes) but carries {} bytes",
            dim * 4,
            body.len()
        )));
    }
    let mut out = Vec::with_capacity(dim);
    for (i, c) in body.chunks_exact(4).enumerate() {
        let x = f32::from_be_bytes([c[0], c[1], c[2], c[3]]);
        check_element(i, x)?;
        out.push(x);
    }
    Ok(out)
}

/// Encodes pgvector's binary form (its `vector_send`).
pub fn encode_binary(v: &[f32], out: &mut Vec<u8>) {
    out.reserve(4 + v.len() * 4);
    out.extend_from_slice(&(v.len() as u16).to_be_bytes());
    out.extend_from_slice(&0u16.to_be_bytes());
    for x in v {
        out.extend_from_slice(&x.to_be_bytes());
    }
}

/// Rejects the values pgvector rejects.
fn check_element(i: usize, x: f32) -> Result<()> {
    if x.is_nan() {
        return Err(SqlError::invalid(format!(
            "NaN not allowed in vector (element {i})"
        )));
    }
    if x.is_infinite() {
        return Err(SqlError::invalid(format!(
            "infinite value not allowed in vector (element {i})"
        )));
    }
    Ok(())
}

fn be_u16(b: &[u8], at: usize) -> Option<u16> {
    Some(u16::from_be_bytes([*b.get(at)?, *b.get(at + 1)?]))
}

/// At most 40 characters of `s`, for error messages about hostile input.
fn clip(s: &str) -> String {
    let mut out: String = s.chars().take(40).collect();
    if s.chars().nth(40).is_some() {
        out.push('…');
    }
    out
}

/// pgvector's three distance operators.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum DistanceOp {
    /// `<->`, `l2_distance`: Euclidean distance (not squared).
    L2,
    /// `<#>`: the NEGATIVE inner product, so that smaller is closer.
    /// (`inner_product()` is the positive one.)
    NegativeInnerProduct,
    /// `<=>`, `cosine_distance`: 1 - cosine similarity.
    Cosine,
}

impl DistanceOp {
    /// The SQL operator.
    pub const fn symbol(self) -> &'static str {
        match self {
            DistanceOp::L2 => "<->",
            DistanceOp::NegativeInnerProduct => "<#>",
            DistanceOp::Cosine => "<=>",
        }
    }

    /// The engine metric whose index orders rows the way this operator does.
    pub const fn metric(self) -> omen_format::Metric {
        match self {
            DistanceOp::L2 => omen_format::Metric::L2,
            DistanceOp::NegativeInnerProduct => omen_format::Metric::InnerProduct,
            DistanceOp::Cosine => omen_format::Metric::Cosine,
        }
    }

    /// The operator an index built for `metric` serves.
    pub const fn for_metric(metric: omen_format::Metric) -> DistanceOp {
        match metric {
            omen_format::Metric::L2 => DistanceOp::L2,
            omen_format::Metric::InnerProduct => DistanceOp::NegativeInnerProduct,
            omen_format::Metric::Cosine => DistanceOp::Cosine,
        }
    }

    /// The pgvector operator class of an index built for `metric`.
    pub const fn opclass(metric: omen_format::Metric) -> &'static str {
        match metric {
            omen_format::Metric::L2 => "vector_l2_ops",
            omen_format::Metric::InnerProduct => "vector_ip_ops",
            omen_format::Metric::Cosine => "vector_cosine_ops",
        }
    }

    /// Converts an engine distance under `self.metric()` to this operator's
    /// value: the engine ranks L2 by its square, pgvector reports the root;
    /// the engine's inner-product and cosine distances already are
    /// pgvector's `<#>` and `<=>`.
    pub fn from_engine(self, distance: f32) -> f64 {
        match self {
            DistanceOp::L2 => f64::from(distance.max(0.0)).sqrt(),
            DistanceOp::NegativeInnerProduct | DistanceOp::Cosine => f64::from(distance),
        }
    }

    /// This operator between two vectors of equal length, computed in f64
    /// the way pgvector's SQL functions are.
    pub fn eval(self, a: &[f32], b: &[f32]) -> Result<f64> {
        if a.len() != b.len() {
            return Err(SqlError::invalid(format!(
                "different vector dimensions {} and {}",
                a.len(),
                b.len()
            )));
        }
        let pairs = a.iter().zip(b).map(|(&x, &y)| (f64::from(x), f64::from(y)));
        Ok(match self {
            DistanceOp::L2 => pairs.map(|(x, y)| (x - y) * (x - y)).sum::<f64>().sqrt(),
            DistanceOp::NegativeInnerProduct => -pairs.map(|(x, y)| x * y).sum::<f64>(),
            DistanceOp::Cosine => {
                let (mut dot, mut na, mut nb) = (0.0, 0.0, 0.0);
                for (x, y) in pairs {
                    dot += x * y;
                    na += x * x;
                    nb += y * y;
                }
                // pgvector returns NaN for a zero vector; so do we.
                let sim = dot / (na * nb).sqrt();
                1.0 - sim.clamp(-1.0, 1.0)
            }
        })
    }
}

/// Fuzz bodies shared by the proptests below and `fuzz/fuzz_targets`.
pub mod fuzzing {
    /// Feeds arbitrary bytes to both parsers; whatever parses must survive
    /// a round trip bit for bit. Never panics on any input.
    pub fn vector_formats(data: &[u8]) {
        if let Ok(v) = super::decode_binary(data) {
            let mut out = Vec::new();
            super::encode_binary(&v, &mut out);
            assert_eq!(out.as_slice(), data, "binary round trip");
        }
        if let Ok(text) = std::str::from_utf8(data)
            && let Ok(v) = super::parse_text(text)
        {
            let again = super::parse_text(&super::format_text(&v)).expect("own text parses");
            assert_eq!(
                again.iter().map(|x| x.to_bits()).collect::<Vec<_>>(),
                v.iter().map(|x| x.to_bits()).collect::<Vec<_>>(),
                "text round trip"
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn text_form_matches_pgvector() {
        assert_eq!(parse_text("[1,2,3]").unwrap(), vec![1.0, 2.0, 3.0]);
        assert_eq!(parse_text(" [ 1.5 , -2e3 ] ").unwrap(), vec![1.5, -2000.0]);
        assert_eq!(format_text(&[1.0, -0.5, 3.25]), "[1,-0.5,3.25]");
        for bad in ["", "[]", "1,2", "[1,,2]", "[1,2", "[a]", "[NaN]", "[1,inf]"] {
            let err = parse_text(bad).unwrap_err();
            assert!(matches!(err, SqlError::InvalidValue { .. }), "{bad}: {err}");
        }
        assert!(parse_text("[NaN]").unwrap_err().to_string().contains("NaN"));
    }

    #[test]
    fn binary_form_matches_pgvector() {
        // pgvector's vector_send of [1,2]: dim 2, unused 0, BE floats.
        let wire = [0, 2, 0, 0, 0x3f, 0x80, 0, 0, 0x40, 0, 0, 0];
        assert_eq!(decode_binary(&wire).unwrap(), vec![1.0, 2.0]);
        let mut out = Vec::new();
        encode_binary(&[1.0, 2.0], &mut out);
        assert_eq!(out, wire);
        assert!(decode_binary(&wire[..11]).is_err());
        assert!(decode_binary(&[0, 0, 0, 0]).is_err());
        assert!(decode_binary(&[0, 1, 0, 1, 0, 0, 0, 0]).is_err());
        assert!(
            decode_binary(&[0, 1, 0, 0, 0x7f, 0xc0, 0, 0]).is_err(),
            "NaN"
        );
    }

    #[test]
    fn distances_follow_pgvector() {
        let (a, b) = ([1.0f32, 2.0, 3.0], [4.0f32, 5.0, 6.0]);
        assert!((DistanceOp::L2.eval(&a, &b).unwrap() - 27f64.sqrt()).abs() < 1e-12);
        assert_eq!(
            DistanceOp::NegativeInnerProduct.eval(&a, &b).unwrap(),
            -32.0
        );
        let cos = 32.0 / (14f64.sqrt() * 77f64.sqrt());
        assert!((DistanceOp::Cosine.eval(&a, &b).unwrap() - (1.0 - cos)).abs() < 1e-12);
        assert!(DistanceOp::L2.eval(&a, &b[..2]).is_err());
        assert_eq!(DistanceOp::L2.from_engine(25.0), 5.0);
    }

    proptest! {
        #[test]
        fn binary_round_trips(v in prop::collection::vec(-1e30f32..1e30, 1..64)) {
            let mut out = Vec::new();
            encode_binary(&v, &mut out);
            prop_assert_eq!(decode_binary(&out).unwrap(), v);
        }

        #[test]
        fn text_round_trips(v in prop::collection::vec(any::<f32>().prop_filter("finite", |x| x.is_finite()), 1..64)) {
            let back = parse_text(&format_text(&v)).unwrap();
            prop_assert_eq!(back.iter().map(|x| x.to_bits()).collect::<Vec<_>>(), v.iter().map(|x| x.to_bits()).collect::<Vec<_>>());
        }

        #[test]
        fn arbitrary_bytes_never_panic(data in prop::collection::vec(any::<u8>(), 0..80)) {
            fuzzing::vector_formats(&data);
        }

        #[test]
        fn arbitrary_text_never_panics(s in "\\[[0-9eE.,+\\- ]{0,40}\\]?") {
            fuzzing::vector_formats(s.as_bytes());
        }
    }
}
