//! The body of the `collection_files` fuzz target, shared with the property
//! tests that CI runs on stable Rust (the `fuzzing.rs` pattern of
//! `segment` and `dataset`).

use std::path::Path;

use super::idset::{IdSetKind, decode_id_set};
use super::manifest::Manifest;
use super::wal;

/// Parses `data` as a WAL file (as the newest file and as an older one), a
/// manifest and both kinds of id-set file. Returns how many parses
/// accepted it. Must never panic or allocate without bound.
pub fn parse_everything(data: &[u8]) -> usize {
    let path = Path::new("fuzz-input");
    let mut accepted = 0;
    for newest in [true, false] {
        if let Ok(scan) = wal::scan(path, 0, data, newest) {
            accepted += 1;
            assert!(scan.valid_len as usize <= data.len());
        }
    }
    // Record payloads alone, without a frame, reach the record decoder
    // even when the checksum would have stopped them.
    accepted += usize::from(wal::decode_payload(data).is_ok());
    accepted += usize::from(Manifest::decode(path, data).is_ok());
    for kind in [IdSetKind::SegmentIds, IdSetKind::Tombstones] {
        accepted += usize::from(decode_id_set(path, kind, data).is_ok());
    }
    accepted
}
