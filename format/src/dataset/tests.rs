//! Tests of the dataset readers and writers: round trips, and the typed
//! error (with file and offset) for each kind of damage.

use std::path::{Path, PathBuf};

use half::f16;
use proptest::prelude::*;

use super::*;
use crate::FormatError;

fn tmp() -> tempfile::TempDir {
    tempfile::tempdir().expect("temp dir")
}

fn bigann_bytes<T: DatasetElement>(n: i32, d: i32, values: &[T]) -> Vec<u8> {
    let mut b = Vec::new();
    b.extend_from_slice(&n.to_le_bytes());
    b.extend_from_slice(&d.to_le_bytes());
    b.extend_from_slice(values.as_bytes());
    b
}

fn texmex_bytes<T: DatasetElement>(d: usize, values: &[T]) -> Vec<u8> {
    let mut b = Vec::new();
    for row in values.chunks(d) {
        b.extend_from_slice(&(d as i32).to_le_bytes());
        b.extend_from_slice(row.as_bytes());
    }
    b
}

fn put(dir: &Path, name: &str, bytes: &[u8]) -> PathBuf {
    let p = dir.join(name);
    std::fs::write(&p, bytes).expect("write fixture");
    p
}

fn seq_f32(n: usize) -> Vec<f32> {
    (0..n).map(|i| i as f32 * 0.5 - 3.0).collect()
}

#[test]
fn fbin_round_trip_in_chunks() {
    let dir = tmp();
    let path = dir.path().join("base.fbin");
    let (n, d) = (37, 5);
    let data = seq_f32(n * d);
    let mut w = BigAnnWriter::<f32>::create(&path, d).unwrap();
    for chunk in data.chunks(d * 8) {
        w.push(chunk).unwrap();
    }
    assert_eq!(w.rows(), n as u64);
    assert!(!path.exists(), "nothing under the final name before finish");
    let s = w.finish().unwrap();
    assert_eq!(s.rows, n as u64);
    assert_eq!(s.bytes, 8 + (n * d * 4) as u64);
    assert!(!dir.path().join("base.fbin.tmp").exists());

    let f = VectorFile::<f32>::open(&path).unwrap();
    assert_eq!((f.len(), f.dim(), f.layout()), (n, d, Layout::BigAnn));
    assert_eq!(f.file_size(), s.bytes);
    for i in 0..n {
        assert_eq!(f.row(i), &data[i * d..(i + 1) * d]);
    }
    assert_eq!(f.rows(3..7).unwrap(), &data[3 * d..7 * d]);
    assert!(f.rows(30..38).is_none());
    assert!(f.get(n).is_none());
    assert_eq!(f.vectors().iter().count(), n);
    let sub = f.vectors().slice(10..20).unwrap();
    assert_eq!(sub.row(0), f.row(10));
    assert_eq!(sub.row_offset(0), 8 + (10 * d * 4) as u64);
    f.check_finite().unwrap();
}

#[test]
fn small_type_round_trips() {
    let dir = tmp();
    let u: Vec<u8> = (0..=255).collect();
    bigann::write(dir.path().join("a.u8bin"), 16, &u).unwrap();
    let f = VectorFile::<u8>::open(dir.path().join("a.u8bin")).unwrap();
    assert_eq!((f.len(), f.dim()), (16, 16));
    assert_eq!(f.rows(0..16).unwrap(), &u[..]);

    let i: Vec<i8> = (-128..=127).collect();
    bigann::write(dir.path().join("a.i8bin"), 8, &i).unwrap();
    let f = VectorFile::<i8>::open(dir.path().join("a.i8bin")).unwrap();
    assert_eq!(f.row(31), &i[248..256]);

    let h: Vec<f16> = seq_f32(12).into_iter().map(f16::from_f32).collect();
    bigann::write(dir.path().join("a.f16bin"), 3, &h).unwrap();
    let f = VectorFile::<f16>::open(dir.path().join("a.f16bin")).unwrap();
    assert_eq!(f.row(2), &h[6..9]);

    let any = AnyVectorFile::open(dir.path().join("a.u8bin")).unwrap();
    assert_eq!(any.element_name(), "u8");
    assert_eq!(any.element_type(), Some(crate::ElementType::U8));
    assert_eq!((any.len(), any.dim()), (16, 16));
}

#[test]
fn texmex_round_trips() {
    let dir = tmp();
    let f: Vec<f32> = seq_f32(4 * 3);
    texmex::write(dir.path().join("a.fvecs"), 3, &f).unwrap();
    assert_eq!(
        std::fs::read(dir.path().join("a.fvecs")).unwrap(),
        texmex_bytes(3, &f)
    );
    let v = VectorFile::<f32>::open(dir.path().join("a.fvecs")).unwrap();
    assert_eq!((v.len(), v.dim(), v.layout()), (4, 3, Layout::Texmex));
    assert_eq!(v.row(3), &f[9..12]);
    assert!(v.rows(0..2).is_none(), "TEXMEX rows are not contiguous");
    assert_eq!(v.vectors().row_offset(1), 16 + 4);

    let b: Vec<u8> = (0..30).collect();
    put(dir.path(), "a.bvecs", &texmex_bytes(10, &b));
    let v = VectorFile::<u8>::open(dir.path().join("a.bvecs")).unwrap();
    assert_eq!(v.row(2), &b[20..30]);
    let rows: Vec<&[u8]> = v.vectors().iter().collect();
    assert_eq!(rows, vec![&b[0..10], &b[10..20], &b[20..30]]);

    let i: Vec<i32> = (0..8).collect();
    put(dir.path(), "gt.ivecs", &texmex_bytes(4, &i));
    let v = VectorFile::<i32>::open(dir.path().join("gt.ivecs")).unwrap();
    assert_eq!(v.row(1), &[4, 5, 6, 7]);
}

#[test]
fn ground_truth_round_trip() {
    let dir = tmp();
    let path = dir.path().join("gt.ibin");
    let ids: Vec<i32> = (0..12).collect();
    let dist: Vec<f32> = seq_f32(12);
    let nb = Neighbors::new(3, 4, ids.clone(), dist.clone()).unwrap();
    assert_eq!(nb.write(&path).unwrap(), 8 + 12 * 8);
    let g = GroundTruthFile::open(&path).unwrap();
    assert_eq!((g.nq(), g.k()), (3, 4));
    assert_eq!(g.ids(1), &ids[4..8]);
    assert_eq!(g.distances(2), &dist[8..12]);
    assert!(g.get_ids(3).is_none());
    assert_eq!(g.to_neighbors(), nb);
    g.check_ids(12).unwrap();
    let err = g.check_ids(11).unwrap_err();
    assert!(
        matches!(err, FormatError::InvalidData { offset, .. } if offset == 8 + 11 * 4),
        "{err}"
    );
    assert!(Neighbors::new(3, 4, ids, vec![]).is_err());
}

fn expect_truncated(err: FormatError, path: &Path, want_needed: u64, want_actual: u64) {
    let msg = err.to_string();
    match err {
        FormatError::Truncated {
            path: p,
            needed,
            actual,
            ..
        } => {
            assert_eq!(p, path);
            assert_eq!((needed, actual), (want_needed, want_actual), "{msg}");
        }
        other => panic!("expected Truncated, got {other}"),
    }
    assert!(msg.contains(&path.display().to_string()), "{msg}");
    assert!(msg.contains(&want_needed.to_string()), "{msg}");
}

fn expect_invalid(err: FormatError, path: &Path, want_offset: u64, needle: &str) {
    let msg = err.to_string();
    match err {
        FormatError::InvalidData {
            path: p, offset, ..
        } => {
            assert_eq!(p, path);
            assert_eq!(offset, want_offset, "{msg}");
        }
        other => panic!("expected InvalidData, got {other}"),
    }
    assert!(msg.contains(&path.display().to_string()), "{msg}");
    assert!(
        msg.contains(&format!("offset {want_offset}")),
        "{msg} lacks the offset"
    );
    assert!(msg.contains(needle), "{msg} lacks {needle:?}");
}

#[test]
fn bigann_header_and_size_errors() {
    let dir = tmp();
    let d = dir.path();

    let p = put(d, "empty.fbin", &[]);
    expect_truncated(VectorFile::<f32>::open(&p).unwrap_err(), &p, 8, 0);
    let p = put(d, "short.fbin", &[1, 0, 0]);
    expect_truncated(VectorFile::<f32>::open(&p).unwrap_err(), &p, 8, 3);

    let p = put(d, "n0.fbin", &bigann_bytes::<f32>(0, 4, &[]));
    expect_invalid(VectorFile::<f32>::open(&p).unwrap_err(), &p, 0, "n = 0");
    let p = put(d, "nneg.fbin", &bigann_bytes::<f32>(-5, 4, &[]));
    expect_invalid(VectorFile::<f32>::open(&p).unwrap_err(), &p, 0, "n = -5");
    let p = put(d, "d0.fbin", &bigann_bytes::<f32>(1, 0, &[]));
    expect_invalid(VectorFile::<f32>::open(&p).unwrap_err(), &p, 4, "d = 0");
    let p = put(d, "dbig.fbin", &bigann_bytes::<f32>(1, 16_385, &[]));
    expect_invalid(VectorFile::<f32>::open(&p).unwrap_err(), &p, 4, "d = 16385");

    // Truncated: one value short.
    let p = put(d, "trunc.fbin", &bigann_bytes(3, 4, &seq_f32(11)));
    expect_truncated(VectorFile::<f32>::open(&p).unwrap_err(), &p, 8 + 48, 8 + 44);
    // Too long: one extra value.
    let p = put(d, "long.fbin", &bigann_bytes(3, 4, &seq_f32(13)));
    expect_invalid(VectorFile::<f32>::open(&p).unwrap_err(), &p, 56, "60 bytes");
    // A u8 file read as f32 is too short for its header.
    let p = put(d, "u8.fbin", &bigann_bytes::<u8>(3, 4, &[7; 12]));
    expect_truncated(VectorFile::<f32>::open(&p).unwrap_err(), &p, 56, 20);
    // An f32 file read as u8 is too long.
    let p = put(d, "f32.u8bin", &bigann_bytes(3, 4, &seq_f32(12)));
    expect_invalid(VectorFile::<u8>::open(&p).unwrap_err(), &p, 20, "u8");
}

#[test]
fn extension_errors() {
    let dir = tmp();
    let p = put(dir.path(), "x.u8bin", &bigann_bytes::<u8>(1, 1, &[1]));
    let err = VectorFile::<f32>::open(&p).unwrap_err();
    assert!(matches!(err, FormatError::InvalidArgument(_)), "{err}");
    assert!(err.to_string().contains("x.u8bin"), "{err}");
    let p = put(dir.path(), "x.bin", &bigann_bytes::<u8>(1, 1, &[1]));
    let err = AnyVectorFile::open(&p).unwrap_err();
    assert!(err.to_string().contains(".fbin"), "{err}");
    // Explicit layout ignores the extension.
    assert_eq!(
        VectorFile::<u8>::open_as(&p, Layout::BigAnn).unwrap().len(),
        1
    );
    assert_eq!(
        FileKind::from_path(Path::new("A.FVECS")).unwrap(),
        FileKind::Fvecs
    );
}

#[test]
fn texmex_errors() {
    let dir = tmp();
    let d = dir.path();
    let p = put(d, "empty.fvecs", &[]);
    expect_truncated(VectorFile::<f32>::open(&p).unwrap_err(), &p, 4, 0);
    let p = put(d, "d0.fvecs", &0i32.to_le_bytes());
    expect_invalid(VectorFile::<f32>::open(&p).unwrap_err(), &p, 0, "d = 0");

    // Row 2 of 4 claims dimension 4 instead of 3.
    let mut bytes = texmex_bytes(3, &seq_f32(12));
    let row_bytes = 4 + 3 * 4;
    bytes[2 * row_bytes..2 * row_bytes + 4].copy_from_slice(&4i32.to_le_bytes());
    let p = put(d, "mismatch.fvecs", &bytes);
    expect_invalid(
        VectorFile::<f32>::open(&p).unwrap_err(),
        &p,
        2 * row_bytes as u64,
        "row 2 gives dimension 4",
    );

    // The last row lost a value.
    let bytes = texmex_bytes(3, &seq_f32(12));
    let p = put(d, "trunc.fvecs", &bytes[..bytes.len() - 4]);
    expect_truncated(VectorFile::<f32>::open(&p).unwrap_err(), &p, 64, 60);
    let err = VectorFile::<f32>::open(&p).unwrap_err().to_string();
    assert!(err.contains("row 3"), "{err}");

    // A dangling partial prefix.
    let mut bytes = texmex_bytes(2, &[1u8, 2, 3, 4]);
    bytes.extend_from_slice(&[2, 0]);
    let p = put(d, "tail.bvecs", &bytes);
    expect_truncated(VectorFile::<u8>::open(&p).unwrap_err(), &p, 18, 14);
}

#[test]
fn ground_truth_errors() {
    let dir = tmp();
    let d = dir.path();
    let p = put(d, "short.ibin", &[0; 7]);
    expect_truncated(GroundTruthFile::open(&p).unwrap_err(), &p, 8, 7);
    let p = put(d, "k0.ibin", &bigann_bytes::<i32>(2, 0, &[]));
    expect_invalid(GroundTruthFile::open(&p).unwrap_err(), &p, 4, "k = 0");
    let mut bytes = bigann_bytes::<i32>(2, 3, &[0; 6]);
    bytes.extend_from_slice(&[0; 20]);
    let p = put(d, "trunc.ibin", &bytes);
    expect_truncated(GroundTruthFile::open(&p).unwrap_err(), &p, 56, 52);
    bytes.extend_from_slice(&[0; 8]);
    let p = put(d, "long.ibin", &bytes);
    expect_invalid(GroundTruthFile::open(&p).unwrap_err(), &p, 56, "left over");
    let err = write_ground_truth(d.join("bad.ibin"), 2, 3, &[0; 6], &[0.0; 5]).unwrap_err();
    assert!(matches!(err, FormatError::InvalidArgument(_)));
    assert!(!d.join("bad.ibin").exists() && !d.join("bad.ibin.tmp").exists());
}

#[test]
fn non_finite_values_are_reported_with_offset() {
    let dir = tmp();
    let mut data = seq_f32(20);
    data[13] = f32::NAN;
    data[17] = f32::INFINITY;
    bigann::write(dir.path().join("nan.fbin"), 4, &data).unwrap();
    let p = dir.path().join("nan.fbin");
    let f = VectorFile::<f32>::open(&p).unwrap();
    expect_invalid(
        f.check_finite().unwrap_err(),
        &p,
        8 + 13 * 4,
        "row 3, component 1 is NaN",
    );
    // A sub-view reports rows in file numbering and file offsets.
    let tail = f.vectors().slice(4..5).unwrap();
    expect_invalid(
        tail.check_finite().unwrap_err(),
        &p,
        8 + 17 * 4,
        "row 4, component 1 is inf",
    );

    // TEXMEX offsets skip the row prefixes.
    texmex::write(dir.path().join("nan.fvecs"), 4, &data).unwrap();
    let p = dir.path().join("nan.fvecs");
    let f = VectorFile::<f32>::open(&p).unwrap();
    expect_invalid(
        f.check_finite().unwrap_err(),
        &p,
        3 * 20 + 4 + 4,
        "row 3, component 1",
    );

    let h: Vec<f16> = vec![f16::ONE, f16::NEG_INFINITY];
    bigann::write(dir.path().join("inf.f16bin"), 1, &h).unwrap();
    let p = dir.path().join("inf.f16bin");
    let any = AnyVectorFile::open(&p).unwrap();
    expect_invalid(
        any.check_finite().unwrap_err(),
        &p,
        8 + 2,
        "row 1, component 0 is -inf",
    );
}

#[test]
fn abandoned_writers_leave_nothing() {
    let dir = tmp();
    let path = dir.path().join("x.fbin");
    {
        let mut w = BigAnnWriter::<f32>::create(&path, 2).unwrap();
        w.push(&[1.0, 2.0]).unwrap();
        assert!(dir.path().join("x.fbin.tmp").exists());
    }
    assert!(!dir.path().join("x.fbin.tmp").exists());
    assert!(!path.exists());

    let w = BigAnnWriter::<f32>::create(&path, 2).unwrap();
    assert!(w.finish().is_err(), "empty files are refused");
    assert!(!path.exists() && !dir.path().join("x.fbin.tmp").exists());

    let mut w = BigAnnWriter::<f32>::create(&path, 2).unwrap();
    assert!(
        w.push(&[1.0, 2.0, 3.0]).is_err(),
        "partial rows are refused"
    );
    assert!(BigAnnWriter::<f32>::create(&path, 0).is_err());
    assert!(BigAnnWriter::<f32>::create(&path, MAX_DIM + 1).is_err());
}

#[test]
fn in_memory_views() {
    let data = seq_f32(6);
    let v = Vectors::from_slice(Path::new("<mem>"), &data, 3).unwrap();
    assert_eq!((v.len(), v.dim()), (2, 3));
    assert_eq!(v.as_flat(), Some(&data[..]));
    assert!(Vectors::from_slice(Path::new("<mem>"), &data, 4).is_err());
    assert!(Vectors::from_slice(Path::new("<mem>"), &data, 0).is_err());
}

fn arb_dims() -> impl Strategy<Value = (usize, usize)> {
    (1usize..20, 1usize..40)
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    #[test]
    fn prop_fbin_round_trip(
        (n, d) in arb_dims(),
        seed in any::<u32>(),
        chunk in 1usize..7,
    ) {
        let data: Vec<f32> = (0..n * d)
            .map(|i| ((i as u32).wrapping_mul(2_654_435_761) ^ seed) as f32 / 1e6)
            .collect();
        let dir = tmp();
        let path = dir.path().join("p.fbin");
        let mut w = BigAnnWriter::<f32>::create(&path, d).unwrap();
        for c in data.chunks(d * chunk) {
            w.push(c).unwrap();
        }
        w.finish().unwrap();
        let f = VectorFile::<f32>::open(&path).unwrap();
        prop_assert_eq!((f.len(), f.dim()), (n, d));
        prop_assert_eq!(f.rows(0..n).unwrap(), &data[..]);
    }

    #[test]
    fn prop_i8_and_bvecs_round_trip((n, d) in arb_dims(), bytes in prop::collection::vec(any::<u8>(), 800)) {
        let values = &bytes[..n * d];
        let signed: Vec<i8> = values.iter().map(|&b| b as i8).collect();
        let dir = tmp();
        bigann::write(dir.path().join("p.i8bin"), d, &signed).unwrap();
        let f = VectorFile::<i8>::open(dir.path().join("p.i8bin")).unwrap();
        prop_assert_eq!(f.rows(0..n).unwrap(), &signed[..]);
        texmex::write(dir.path().join("p.bvecs"), d, values).unwrap();
        let f = VectorFile::<u8>::open(dir.path().join("p.bvecs")).unwrap();
        prop_assert_eq!(f.len(), n);
        for (i, row) in f.vectors().iter().enumerate() {
            prop_assert_eq!(row, &values[i * d..(i + 1) * d]);
        }
    }

    #[test]
    fn prop_ground_truth_round_trip(nq in 1usize..10, k in 1usize..20, salt in any::<i32>()) {
        let ids: Vec<i32> = (0..nq * k).map(|i| (i as i32) ^ salt).collect();
        let dist: Vec<f32> = (0..nq * k).map(|i| i as f32 * 0.25).collect();
        let dir = tmp();
        let p = dir.path().join("g.ibin");
        write_ground_truth(&p, nq, k, &ids, &dist).unwrap();
        let g = GroundTruthFile::open(&p).unwrap();
        for q in 0..nq {
            prop_assert_eq!(g.ids(q), &ids[q * k..(q + 1) * k]);
            prop_assert_eq!(g.distances(q), &dist[q * k..(q + 1) * k]);
        }
    }

    /// No byte string makes a reader panic; whatever opens is internally
    /// consistent.
    #[test]
    fn prop_arbitrary_bytes_never_panic(
        bytes in prop::collection::vec(any::<u8>(), 0..200),
        header in (any::<i8>(), any::<i8>()),
        use_header in any::<bool>(),
    ) {
        let mut bytes = bytes;
        if use_header && bytes.len() >= 8 {
            bytes[..4].copy_from_slice(&i32::from(header.0).to_le_bytes());
            bytes[4..8].copy_from_slice(&i32::from(header.1).to_le_bytes());
        }
        let dir = tmp();
        super::fuzzing::open_everything(dir.path(), &bytes);
    }
}
