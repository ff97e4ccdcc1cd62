//! Damaged collection files: a torn last WAL record is cut off and
//! everything before it recovered; any other damage is an error that names
//! the file and the offset, and nothing is silently dropped.

mod collection_common;

use std::path::{Path, PathBuf};

use collection_common::{small_options, vectors};
use omendb::Metric;
use omendb::engine::collection::{Collection, Schema};

const DIM: usize = 8;

/// A collection with one flushed segment (with tombstones after a second
/// flush) and three unflushed batches in the WAL.
fn fixture(dir: &Path) {
    let c = Collection::create(dir, Schema::new(DIM, Metric::L2), small_options(10_000)).unwrap();
    let ids: Vec<u64> = (0..100).collect();
    c.insert(&ids, &vectors(&ids, 0, DIM), &[]).unwrap();
    c.flush().unwrap();
    c.delete(&[1, 2, 3]).unwrap();
    c.flush().unwrap();
    for b in 0..3u64 {
        let ids: Vec<u64> = (1000 + b * 10..1010 + b * 10).collect();
        c.insert(&ids, &vectors(&ids, 0, DIM), &[]).unwrap();
    }
    c.close().unwrap();
}

fn files(dir: &Path, prefix: &str) -> Vec<PathBuf> {
    let mut out: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.file_name().unwrap().to_str().unwrap().starts_with(prefix))
        .collect();
    out.sort();
    out
}

/// The WAL file holding the three batches (the largest one).
fn wal_with_records(dir: &Path) -> PathBuf {
    files(dir, "wal-")
        .into_iter()
        .max_by_key(|p| std::fs::metadata(p).unwrap().len())
        .unwrap()
}

fn live(dir: &Path) -> usize {
    Collection::open(dir, small_options(10_000)).unwrap().len()
}

#[test]
fn torn_last_record_is_cut_off() {
    let dir = tempfile::tempdir().unwrap();
    fixture(dir.path());
    assert_eq!(live(dir.path()), 97 + 30);
    let wal = wal_with_records(dir.path());
    let len = std::fs::metadata(&wal).unwrap().len();
    // Cut the last record in half.
    let f = std::fs::OpenOptions::new().write(true).open(&wal).unwrap();
    f.set_len(len - 100).unwrap();
    drop(f);
    assert_eq!(live(dir.path()), 97 + 20);
    // The cut is durable: the file now ends at the last whole record.
    assert!(std::fs::metadata(&wal).unwrap().len() < len - 100);
    assert_eq!(live(dir.path()), 97 + 20);
}

#[test]
fn damaged_wal_record_in_the_middle_is_an_error_naming_file_and_offset() {
    let dir = tempfile::tempdir().unwrap();
    fixture(dir.path());
    let wal = wal_with_records(dir.path());
    let mut bytes = std::fs::read(&wal).unwrap();
    // Inside the first record's payload (header 32, frame 12).
    bytes[32 + 12 + 30] ^= 0x40;
    std::fs::write(&wal, &bytes).unwrap();
    let err = Collection::open(dir.path(), small_options(10_000))
        .unwrap_err()
        .to_string();
    assert!(err.contains(wal.to_str().unwrap()), "{err}");
    assert!(err.contains("offset 32"), "{err}");
    assert!(err.contains("checksum"), "{err}");
}

#[test]
fn damaged_manifest_is_an_error() {
    let dir = tempfile::tempdir().unwrap();
    fixture(dir.path());
    let path = dir.path().join("MANIFEST");
    let mut bytes = std::fs::read(&path).unwrap();
    let at = bytes.len() / 2;
    bytes[at] ^= 1;
    std::fs::write(&path, &bytes).unwrap();
    let err = Collection::open(dir.path(), small_options(10_000))
        .unwrap_err()
        .to_string();
    assert!(
        err.contains(path.to_str().unwrap()) && err.contains("checksum"),
        "{err}"
    );
    std::fs::write(&path, &bytes[..20]).unwrap();
    let err = Collection::open(dir.path(), small_options(10_000))
        .unwrap_err()
        .to_string();
    assert!(err.contains("truncated"), "{err}");
}

#[test]
fn damaged_or_missing_segment_files_are_errors() {
    let dir = tempfile::tempdir().unwrap();
    fixture(dir.path());
    let tomb = files(dir.path(), "seg-")
        .into_iter()
        .find(|p| p.to_str().unwrap().contains(".tomb-"))
        .expect("a tombstone file");
    let mut bytes = std::fs::read(&tomb).unwrap();
    bytes[24] ^= 1;
    std::fs::write(&tomb, &bytes).unwrap();
    let err = Collection::open(dir.path(), small_options(10_000))
        .unwrap_err()
        .to_string();
    assert!(err.contains(tomb.to_str().unwrap()), "{err}");

    let dir = tempfile::tempdir().unwrap();
    fixture(dir.path());
    let ids = files(dir.path(), "seg-")
        .into_iter()
        .find(|p| p.extension().unwrap() == "ids")
        .unwrap();
    std::fs::remove_file(&ids).unwrap();
    let err = Collection::open(dir.path(), small_options(10_000))
        .unwrap_err()
        .to_string();
    assert!(err.contains(ids.to_str().unwrap()), "{err}");
}

#[test]
fn not_a_collection() {
    let dir = tempfile::tempdir().unwrap();
    let err = Collection::open(dir.path(), small_options(10))
        .unwrap_err()
        .to_string();
    assert!(err.contains("not a collection"), "{err}");
}
