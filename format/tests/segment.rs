//! The segment container: round trips, and detection of every truncation,
//! every bit flip and hostile headers.

use std::collections::BTreeMap;
use std::path::Path;

use omen_format::segment::fuzzing::read_everything;
use omen_format::segment::layout::{PAGE_PAYLOAD, PAGE_SIZE};
use omen_format::segment::{
    Encoding, OpenOptions, SectionKind, SegmentFile, SegmentHeader, SegmentWriter, Verify,
};
use omen_format::{ElementType, FormatError, Metric};
use proptest::prelude::*;

const FULL: OpenOptions = OpenOptions {
    verify: Verify::Full,
};

fn header(element_type: ElementType, dimension: u32, n: u64) -> SegmentHeader {
    let mut h = SegmentHeader::new(element_type, Metric::L2, dimension, n);
    h.uuid = [7; 16];
    h.created_unix_micros = 1_700_000_000_000_000;
    h
}

/// Rows whose bytes encode their index, so misplaced rows are visible.
fn rows(n: u64, row_len: usize) -> Vec<Vec<u8>> {
    (0..n)
        .map(|i| {
            (0..row_len)
                .map(|j| (i as usize * 31 + j * 7) as u8)
                .collect()
        })
        .collect()
}

fn write_segment(path: &Path, element_type: ElementType, dim: u32, n: u64) -> Vec<Vec<u8>> {
    let row_len = dim as usize * element_type.size();
    let data = rows(n, row_len);
    let mut w = SegmentWriter::create(path, header(element_type, dim, n)).unwrap();
    let mut meta = BTreeMap::new();
    meta.insert("writer".to_string(), "segment test".to_string());
    meta.insert("source.rows".to_string(), n.to_string());
    w.write_metadata(&meta).unwrap();
    w.write_vectors(data.iter().map(Vec::as_slice)).unwrap();
    w.finish().unwrap();
    data
}

fn small_file() -> Vec<u8> {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("small.omen");
    write_segment(&path, ElementType::F32, 3, 700);
    std::fs::read(&path).unwrap()
}

#[test]
fn round_trip_small_and_wide_rows() {
    let dir = tempfile::tempdir().unwrap();
    // 3-d rows share pages; 1100-d f32 rows (4400 bytes) span two pages.
    for (et, dim, n) in [
        (ElementType::F32, 3, 700),
        (ElementType::U8, 128, 100),
        (ElementType::F32, 1100, 5),
        (ElementType::F16, 1, 1),
    ] {
        let path = dir.path().join(format!("{et}-{dim}.omen"));
        let data = write_segment(&path, et, dim, n);
        assert!(!dir.path().join(format!("{et}-{dim}.omen.tmp")).exists());
        let seg = SegmentFile::open(&path, FULL).unwrap();
        let info = seg.info();
        assert_eq!(
            (info.element_type, info.dimension, info.vector_count),
            (et, dim, n)
        );
        assert_eq!(info.metric, Metric::L2);
        assert_eq!(info.uuid, [7; 16]);
        assert_eq!(info.file_len, std::fs::metadata(&path).unwrap().len());
        assert_eq!(info.file_len % PAGE_SIZE as u64, 0);
        assert_eq!(seg.metadata().unwrap()["source.rows"], n.to_string());
        let vectors = seg.vectors().unwrap();
        assert_eq!(vectors.len(), n);
        let mut row = vec![0u8; data[0].len()];
        for (i, expected) in data.iter().enumerate() {
            vectors.read_row(i as u64, &mut row).unwrap();
            assert_eq!(&row, expected, "row {i} of {et}-{dim}");
        }
        for s in seg.sections() {
            assert_eq!(
                s.offset % PAGE_SIZE as u64,
                0,
                "{:?} is not page-aligned",
                s.kind
            );
        }
    }
}

#[test]
fn row_layout_packs_rows_without_straddling() {
    let layout = omen_format::segment::RowLayout::new(12).unwrap();
    assert_eq!(layout.rows_per_page, PAGE_PAYLOAD / 12);
    assert_eq!(layout.locate(layout.rows_per_page as u64), (1, 0));
    let wide = omen_format::segment::RowLayout::new(PAGE_PAYLOAD + 1).unwrap();
    assert_eq!((wide.rows_per_page, wide.pages_per_row), (1, 2));
    assert_eq!(wide.locate(3), (6, 0));
}

#[test]
fn every_truncation_is_detected() {
    let file = small_file();
    // Truncation at every byte is cheap in memory, so test all of them.
    for len in 0..file.len() {
        let result = SegmentFile::from_source("t.omen", &file[..len], FULL);
        let err = result.expect_err(&format!("truncation to {len} bytes was accepted"));
        assert!(
            err.is_corruption(),
            "truncation to {len}: not a corruption error: {err}"
        );
        assert!(
            err.to_string().contains("t.omen"),
            "message lacks the path: {err}"
        );
    }
    assert!(read_everything(&file));
}

#[test]
fn trailing_garbage_is_detected() {
    let mut file = small_file();
    file.extend_from_slice(&[0u8; PAGE_SIZE]);
    let err = SegmentFile::from_source("g.omen", &file[..], FULL).unwrap_err();
    assert!(matches!(err, FormatError::Corrupt { .. }), "{err}");
}

#[test]
fn flip_in_superblock_names_file_section_and_offset() {
    let mut file = small_file();
    file[60] ^= 1; // the dimension field
    let err = SegmentFile::from_source("s.omen", &file[..], FULL).unwrap_err();
    let msg = err.to_string();
    assert!(
        matches!(err, FormatError::ChecksumMismatch { offset: 0, .. }),
        "{msg}"
    );
    assert!(
        msg.contains("s.omen") && msg.contains("superblock"),
        "{msg}"
    );
}

#[test]
fn flip_in_a_page_is_caught_by_its_page_checksum() {
    let mut file = small_file();
    let seg = SegmentFile::from_source("p.omen", &file[..], OpenOptions::default()).unwrap();
    let vectors_at = seg.section(SectionKind::VECTORS).unwrap().offset as usize;
    drop(seg);
    file[vectors_at + PAGE_SIZE + 5] ^= 0x10; // second page of vectors
    // Default open does not scan paged sections; the read of that page fails.
    let seg = SegmentFile::from_source("p.omen", &file[..], OpenOptions::default()).unwrap();
    let vectors = seg.vectors().unwrap();
    let mut row = vec![0u8; 12];
    vectors.read_row(0, &mut row).unwrap();
    let rows_per_page = vectors.layout().rows_per_page as u64;
    let err = vectors.read_row(rows_per_page, &mut row).unwrap_err();
    assert!(
        matches!(err, FormatError::ChecksumMismatch { offset, .. } if offset == (vectors_at + PAGE_SIZE) as u64),
        "{err}"
    );
    // A full verification catches it at open.
    assert!(SegmentFile::from_source("p.omen", &file[..], FULL).is_err());
}

#[test]
fn newer_major_version_is_incompatible() {
    let file = small_file();
    let mut patched = file.clone();
    patched[8] = 2; // version_major = 2
    reseal_superblock(&mut patched);
    let err = SegmentFile::from_source("v.omen", &patched[..], FULL).unwrap_err();
    assert!(
        matches!(err, FormatError::IncompatibleVersion { found_major: 2, .. }),
        "{err}"
    );
    // A newer minor version of the same major is readable.
    let mut minor = file;
    minor[10] = 9;
    reseal_superblock(&mut minor);
    assert!(SegmentFile::from_source("v.omen", &minor[..], FULL).is_ok());
}

#[test]
fn unknown_sections_are_skipped_unless_required() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("x.omen");
    let mut w = SegmentWriter::create(&path, header(ElementType::U8, 4, 1)).unwrap();
    w.write_section(SectionKind(900), b"from the future", Encoding::Lz4, 0, 0)
        .unwrap();
    w.write_vectors([&[1u8, 2, 3, 4][..]]).unwrap();
    w.finish().unwrap();
    let seg = SegmentFile::open(&path, FULL).unwrap();
    assert_eq!(seg.sections().len(), 2);
    let future = seg.section(SectionKind(900)).unwrap();
    assert_eq!(seg.read_section(future).unwrap(), b"from the future");

    // Mark the unknown section required: this reader must refuse the file.
    let mut file = std::fs::read(&path).unwrap();
    let dir_offset = u64::from_le_bytes(file[80..88].try_into().unwrap()) as usize;
    file[dir_offset + 4] |= 1 << 2;
    reseal_directory(&mut file);
    let err = SegmentFile::from_source("r.omen", &file[..], FULL).unwrap_err();
    assert!(
        matches!(err, FormatError::IncompatibleVersion { .. }),
        "{err}"
    );
}

#[test]
fn unfinished_writer_leaves_nothing_behind() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("never.omen");
    {
        let mut w = SegmentWriter::create(&path, header(ElementType::F32, 2, 3)).unwrap();
        // Two rows where the header promised three: an error, then a drop.
        let row = [0u8; 8];
        assert!(w.write_vectors([&row[..], &row[..]]).is_err());
    }
    assert!(std::fs::read_dir(dir.path()).unwrap().next().is_none());
}

#[test]
fn compatibility_fixtures() {
    let fixtures = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures");
    let good = fixtures.join("v1.0-u8-4d-10.omen");
    if std::env::var_os("OMEN_REGENERATE_FIXTURES").is_some() {
        let mut w = SegmentWriter::create(&good, header(ElementType::U8, 4, 10)).unwrap();
        let mut meta = BTreeMap::new();
        meta.insert("writer".to_string(), "omendb 0.1.0 fixture".to_string());
        w.write_metadata(&meta).unwrap();
        let data = rows(10, 4);
        w.write_vectors(data.iter().map(Vec::as_slice)).unwrap();
        w.finish().unwrap();
        let mut bad = std::fs::read(&good).unwrap();
        bad[PAGE_SIZE * 2 + 3] ^= 0x40;
        std::fs::write(fixtures.join("v1.0-corrupt-vectors.omen"), bad).unwrap();
    }
    let seg = SegmentFile::open(&good, FULL).unwrap();
    assert_eq!(seg.info().vector_count, 10);
    assert_eq!(seg.metadata().unwrap()["writer"], "omendb 0.1.0 fixture");
    let mut row = [0u8; 4];
    seg.vectors().unwrap().read_row(9, &mut row).unwrap();
    assert_eq!(row.to_vec(), rows(10, 4)[9]);
    let err = SegmentFile::open(fixtures.join("v1.0-corrupt-vectors.omen"), FULL).unwrap_err();
    assert!(matches!(err, FormatError::ChecksumMismatch { .. }), "{err}");
}

/// Recomputes the superblock checksum after a deliberate edit.
fn reseal_superblock(file: &mut [u8]) {
    let sum = xxh3(&file[..PAGE_SIZE - 8]);
    file[PAGE_SIZE - 8..PAGE_SIZE].copy_from_slice(&sum.to_le_bytes());
}

/// Recomputes the directory checksum (and then the superblock's).
fn reseal_directory(file: &mut [u8]) {
    let at = u64::from_le_bytes(file[80..88].try_into().unwrap()) as usize;
    let sum = xxh3(&file[at..]);
    file[96..104].copy_from_slice(&sum.to_le_bytes());
    reseal_superblock(file);
}

fn xxh3(bytes: &[u8]) -> u64 {
    // The format's checksum, computed independently of the crate.
    xxhash_rust::xxh3::xxh3_64(bytes)
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    /// Every single-bit flip anywhere in the file is detected, at open or
    /// when the page is read: every byte is covered by some checksum.
    #[test]
    fn every_bit_flip_is_detected(seed in any::<u64>()) {
        let file = small_file_cached();
        let bit = (seed % (file.len() as u64 * 8)) as usize;
        let mut flipped = file.to_vec();
        flipped[bit / 8] ^= 1 << (bit % 8);
        prop_assert!(!read_everything(&flipped), "flip of bit {bit} went unnoticed");
    }

    /// Several random byte edits: never a panic, never accepted.
    #[test]
    fn random_damage_is_rejected_without_panic(edits in prop::collection::vec((any::<u64>(), 1u8..=255), 1..8)) {
        let mut damaged = small_file_cached().to_vec();
        for (at, xor) in &edits {
            let i = (*at % damaged.len() as u64) as usize;
            damaged[i] ^= xor;
        }
        prop_assert!(!read_everything(&damaged));
    }

    /// Hostile headers: a valid superblock checksum over arbitrary fields
    /// must still be rejected or read safely, never panic.
    #[test]
    fn hostile_superblock_fields_never_panic(fields in prop::collection::vec(any::<u8>(), 112)) {
        let mut file = small_file_cached().to_vec();
        file[..8].copy_from_slice(b"OMENSEG\0");
        file[8..112].copy_from_slice(&fields[8..]);
        reseal_superblock(&mut file);
        let _ = read_everything(&file);
    }

    /// Arbitrary bytes behind a valid magic never panic.
    #[test]
    fn arbitrary_bytes_never_panic(bytes in prop::collection::vec(any::<u8>(), 0..3 * PAGE_SIZE)) {
        let mut file = b"OMENSEG\0".to_vec();
        file.extend_from_slice(&bytes);
        prop_assert!(!read_everything(&file), "random bytes passed every checksum");
    }
}

fn small_file_cached() -> &'static [u8] {
    static FILE: std::sync::OnceLock<Vec<u8>> = std::sync::OnceLock::new();
    FILE.get_or_init(small_file)
}
