//! The body of the segment-reader fuzz target, kept in the crate so that the
//! same code runs under cargo-fuzz (fuzz/fuzz_targets/segment_reader.rs) and
//! under the property tests that CI runs on stable Rust.

use super::{OpenOptions, SegmentFile, Verify};

/// Opens `data` as a segment and, if it opens, reads everything in it.
/// Returns whether the whole file was accepted. It must never panic, hang
/// or allocate more than a small multiple of `data.len()`.
pub fn read_everything(data: &[u8]) -> bool {
    let options = OpenOptions {
        verify: Verify::Full,
    };
    let Ok(segment) = SegmentFile::from_source("fuzz-input", data, options) else {
        return false;
    };
    if segment.metadata().is_err() || segment.verify_all().is_err() {
        return false;
    }
    if let Ok(vectors) = segment.vectors() {
        let mut row = vec![0u8; vectors.layout().row_len];
        for i in 0..vectors.len() {
            if vectors.read_row(i, &mut row).is_err() {
                return false;
            }
        }
    }
    match segment.attributes() {
        Ok(Some(head)) => {
            for i in 0..head.columns.len() {
                if segment.read_attribute_column(&head, i).is_err() {
                    return false;
                }
            }
        }
        Ok(None) => {}
        Err(_) => return false,
    }
    true
}
