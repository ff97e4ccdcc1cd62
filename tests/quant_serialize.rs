//! The quantizer decoder is strict and total: every truncation and every
//! random byte string is an error (never a panic), corruption errors carry
//! the section's file offset, and valid bytes round-trip exactly.

use std::path::Path;
use std::sync::OnceLock;

use omendb::Metric;
use omendb::engine::EngineError;
use omendb::engine::quant::{Quantizer, QuantizerKind};
use omendb::engine::vectors::FlatVectors;
use omendb::format::FormatError;
use proptest::prelude::*;

const DIM: usize = 12;
const SECTION: u64 = 8192;

/// Small trained quantizers of every kind and metric, serialised.
fn samples() -> &'static [(Quantizer, Vec<u8>)] {
    static S: OnceLock<Vec<(Quantizer, Vec<u8>)>> = OnceLock::new();
    S.get_or_init(|| {
        let rows: Vec<f32> = (0..300 * DIM)
            .map(|i| ((i * 7919) % 1009) as f32 / 100.0 - 5.0)
            .collect();
        let v = FlatVectors::new(&rows, DIM).unwrap();
        let mut out = Vec::new();
        for (kind, metric) in [
            ("pq4", Metric::L2),
            ("pq5", Metric::Cosine),
            ("rabitq", Metric::InnerProduct),
            ("rabitq2c1", Metric::L2),
            ("rabitq3", Metric::L2),
            ("rabitq8c3", Metric::Cosine),
        ] {
            let kind: QuantizerKind = kind.parse().unwrap();
            let q = Quantizer::train(kind, v, metric, 1).unwrap();
            let bytes = q.to_bytes();
            out.push((q, bytes));
        }
        out
    })
}

fn decode(bytes: &[u8]) -> Result<Quantizer, EngineError> {
    Quantizer::from_bytes(bytes, Path::new("q.seg"), SECTION)
}

/// A corruption error located inside the section.
fn assert_corrupt(r: Result<Quantizer, EngineError>, len: usize) {
    match r {
        Err(EngineError::Format(FormatError::Corrupt { offset, path, .. })) => {
            assert!(
                offset >= SECTION && offset <= SECTION + len as u64,
                "offset {offset}"
            );
            assert_eq!(path, Path::new("q.seg"));
        }
        other => panic!("expected a corruption error, got {other:?}"),
    }
}

#[test]
fn every_truncation_fails() {
    for (_, bytes) in samples() {
        for cut in 0..bytes.len() {
            assert_corrupt(decode(&bytes[..cut]), cut);
        }
        let mut long = bytes.clone();
        long.push(0);
        assert_corrupt(decode(&long), long.len());
    }
}

#[test]
fn header_fields_are_checked() {
    let (_, pq) = &samples()[0];
    let (_, rq) = &samples()[2];
    let patch = |b: &[u8], at: usize, v: &[u8]| {
        let mut b = b.to_vec();
        b[at..at + v.len()].copy_from_slice(v);
        b
    };
    for (bytes, at, value, offset) in [
        (pq, 0, &[9u8][..], 0),                    // kind
        (pq, 1, &[2u8][..], 1),                    // version
        (pq, 2, &[4u8][..], 2),                    // metric
        (pq, 3, &[1u8][..], 3),                    // reserved
        (pq, 4, &0u32.to_le_bytes()[..], 4),       // dim
        (pq, 8, &13u32.to_le_bytes()[..], 8),      // m > dim
        (pq, 12, &f32::NAN.to_le_bytes()[..], 12), // codebook value
        (rq, 3, &[9u8][..], 3),                    // bits
        (rq, 8, &128u32.to_le_bytes()[..], 8),     // padded dim
        (rq, 12, &0u32.to_le_bytes()[..], 12),     // centroids
        (rq, 12, &u32::MAX.to_le_bytes()[..], 12), // centroids
    ] {
        match decode(&patch(bytes, at, value)) {
            Err(EngineError::Format(FormatError::Corrupt {
                offset: o, reason, ..
            })) => {
                assert_eq!(o, SECTION + offset, "{reason}")
            }
            other => panic!("patch at {at}: {other:?}"),
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn random_bytes_are_rejected(bytes in proptest::collection::vec(any::<u8>(), 0..4096)) {
        prop_assert!(decode(&bytes).is_err());
    }

    /// Random bytes behind a plausible header reach the deeper checks.
    #[test]
    fn random_bodies_are_rejected(
        kind in 1u8..=2,
        metric in 1u8..=3,
        body in proptest::collection::vec(any::<u8>(), 0..2048),
    ) {
        let mut bytes = vec![kind, 1, metric];
        bytes.extend(body);
        prop_assert!(decode(&bytes).is_err());
    }

    /// Any single-byte change decodes or fails cleanly; if it decodes, it
    /// re-encodes to the same bytes (the layout has no slack).
    #[test]
    fn mutations_never_panic(which in 0usize..6, at in any::<prop::sample::Index>(), byte in any::<u8>()) {
        let (_, bytes) = &samples()[which];
        let mut b = bytes.clone();
        let i = at.index(b.len());
        b[i] = byte;
        if let Ok(q) = decode(&b) {
            prop_assert_eq!(q.to_bytes(), b);
        }
    }

    #[test]
    fn round_trip(which in 0usize..6, offset in any::<u64>()) {
        let (q, bytes) = &samples()[which];
        let back = Quantizer::from_bytes(bytes, Path::new("x"), offset).unwrap();
        prop_assert_eq!(&back, q);
        prop_assert_eq!(&back.to_bytes(), bytes);
    }
}
