//! Id-set files (SPEC.md §8.4): a sorted list of primary keys. A segment's
//! `.ids` file lists the keys of its rows; its `.tomb-G` files list the keys
//! whose rows in it are deleted or superseded by a newer write.
//!
//! Both are written once (atomically) and never modified: a new set of
//! tombstones is a new generation, installed by the manifest that names it.

use std::path::Path;

use crate::atomic::AtomicFile;
use crate::checksum::Checksum;
use crate::collection::reader::Cursor;
use crate::{FormatError, Result};

/// The first 8 bytes of an id-set file.
pub const IDSET_MAGIC: [u8; 8] = *b"OMENIDS1";
/// Bytes before the ids: magic, kind, reserved, count.
pub const IDSET_HEADER_LEN: usize = 24;

/// What an id-set file lists.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u32)]
pub enum IdSetKind {
    /// The primary keys of a segment's rows.
    SegmentIds = 1,
    /// The keys whose rows in a segment are dead.
    Tombstones = 2,
}

impl IdSetKind {
    fn name(self) -> &'static str {
        match self {
            IdSetKind::SegmentIds => "segment id list",
            IdSetKind::Tombstones => "tombstone list",
        }
    }
}

/// Serialises `ids`, which must be strictly ascending.
pub fn encode_id_set(kind: IdSetKind, ids: &[u64]) -> Vec<u8> {
    let mut out = Vec::with_capacity(IDSET_HEADER_LEN + 8 * ids.len() + 8);
    out.extend_from_slice(&IDSET_MAGIC);
    out.extend_from_slice(&(kind as u32).to_le_bytes());
    out.extend_from_slice(&0u32.to_le_bytes());
    out.extend_from_slice(&(ids.len() as u64).to_le_bytes());
    for id in ids {
        out.extend_from_slice(&id.to_le_bytes());
    }
    let sum = Checksum::of(&out).0;
    out.extend_from_slice(&sum.to_le_bytes());
    out
}

/// Parses an id-set of `kind` read from `path`.
pub fn decode_id_set(path: &Path, kind: IdSetKind, bytes: &[u8]) -> Result<Vec<u64>> {
    let corrupt = |offset: usize, reason: String| FormatError::Corrupt {
        path: path.to_path_buf(),
        what: kind.name().into(),
        offset: offset as u64,
        reason,
    };
    let mut c = Cursor::new(bytes);
    let (Some(magic), Some(code), Some(_), Some(count)) = (c.take(8), c.u32(), c.u32(), c.u64())
    else {
        return Err(FormatError::Truncated {
            path: path.to_path_buf(),
            what: kind.name().into(),
            needed: IDSET_HEADER_LEN as u64 + 8,
            actual: bytes.len() as u64,
        });
    };
    if magic != IDSET_MAGIC {
        return Err(corrupt(0, "not an OmenDB id-set file".into()));
    }
    if code != kind as u32 {
        return Err(corrupt(8, format!("kind {code}, expected {}", kind as u32)));
    }
    let expected = usize::try_from(count)
        .ok()
        .and_then(|n| n.checked_mul(8))
        .and_then(|b| b.checked_add(IDSET_HEADER_LEN + 8));
    if expected != Some(bytes.len()) {
        return Err(corrupt(
            16,
            format!("{count} ids do not fit a file of {} bytes", bytes.len()),
        ));
    }
    let covered = bytes.get(..bytes.len() - 8).unwrap_or_default();
    let stored = bytes
        .get(bytes.len() - 8..)
        .and_then(|b| b.try_into().ok())
        .map(u64::from_le_bytes)
        .unwrap_or(0);
    Checksum::of(covered).check(stored, path, kind.name(), 0, covered.len() as u64)?;
    let mut ids = Vec::with_capacity(count as usize);
    for i in 0..count as usize {
        let id = c.u64().unwrap_or(0);
        if ids.last().is_some_and(|&last| id <= last) {
            return Err(corrupt(
                IDSET_HEADER_LEN + 8 * i,
                format!("id {id} is not above the previous one"),
            ));
        }
        ids.push(id);
    }
    Ok(ids)
}

/// Writes `ids` (strictly ascending) to `path`, durably (AtomicFile).
pub fn write_id_set(path: &Path, kind: IdSetKind, ids: &[u64]) -> Result<()> {
    if ids.iter().zip(ids.iter().skip(1)).any(|(a, b)| a >= b) {
        return Err(FormatError::InvalidArgument(format!(
            "{}: ids must be strictly ascending",
            path.display()
        )));
    }
    let mut file = AtomicFile::create(path)?;
    file.write(&encode_id_set(kind, ids))?;
    file.commit(&[])?;
    Ok(())
}

/// Reads and validates the id-set of `kind` at `path`.
pub fn read_id_set(path: &Path, kind: IdSetKind) -> Result<Vec<u64>> {
    let bytes = fs_err::read(path).map_err(|e| FormatError::io(path, e))?;
    decode_id_set(path, kind, &bytes)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(128))]

        #[test]
        fn id_sets_round_trip(ids in proptest::collection::btree_set(any::<u64>(), 0..64)) {
            let ids: Vec<u64> = ids.into_iter().collect();
            let bytes = encode_id_set(IdSetKind::Tombstones, &ids);
            prop_assert_eq!(decode_id_set(Path::new("t"), IdSetKind::Tombstones, &bytes).unwrap(), ids);
        }

        #[test]
        fn damage_is_an_error(ids in proptest::collection::btree_set(any::<u64>(), 0..16),
                              at in any::<prop::sample::Index>(), bit in 0u8..8) {
            let ids: Vec<u64> = ids.into_iter().collect();
            let mut bytes = encode_id_set(IdSetKind::SegmentIds, &ids);
            let at = at.index(bytes.len());
            bytes[at] ^= 1 << bit;
            let err = decode_id_set(Path::new("/s.ids"), IdSetKind::SegmentIds, &bytes).unwrap_err();
            prop_assert!(err.is_corruption());
            prop_assert!(err.to_string().contains("/s.ids"));
        }
    }

    #[test]
    fn wrong_kind_and_unsorted_ids_are_refused() {
        let bytes = encode_id_set(IdSetKind::SegmentIds, &[1, 2]);
        assert!(decode_id_set(Path::new("x"), IdSetKind::Tombstones, &bytes).is_err());
        let bytes = encode_id_set(IdSetKind::SegmentIds, &[2, 1]);
        let err = decode_id_set(Path::new("x"), IdSetKind::SegmentIds, &bytes).unwrap_err();
        assert!(err.to_string().contains("offset 32"), "{err}");
    }
}
