//! The files of a writable collection (SPEC.md §8): the write-ahead log,
//! the manifest and the id-set files (segment ids and tombstones).
//!
//! A collection directory holds one `MANIFEST`, WAL files `wal-N.log`, and
//! per segment `seg-N.omen` (the segment container of §2), `seg-N.ids` (its
//! primary keys) and optionally `seg-N.tomb-G` (its tombstones, generation
//! `G`). This module only encodes and validates bytes; the engine's
//! `collection` module decides when each file is written.
//!
//! Invariant, as everywhere in this crate: no input makes a parser panic,
//! read out of bounds or allocate more than a small multiple of its length.

pub mod fuzzing;
pub mod idset;
pub mod manifest;
mod reader;
pub mod wal;

pub use idset::{IdSetKind, read_id_set, write_id_set};
pub use manifest::{Manifest, SchemaRecord, SegmentRecord};
pub use wal::{RowBatch, WalOp, WalRecord, WalScan};

/// The current manifest's file name.
pub const MANIFEST_FILE: &str = "MANIFEST";

/// The lock file that keeps a second process from opening the collection.
pub const LOCK_FILE: &str = "LOCK";

/// The name of WAL file number `n`.
pub fn wal_file_name(n: u64) -> String {
    format!("wal-{n:020}.log")
}

/// The name of segment `id`'s container file.
pub fn segment_file_name(id: u64) -> String {
    format!("seg-{id:020}.omen")
}

/// The name of segment `id`'s primary-key file.
pub fn ids_file_name(id: u64) -> String {
    format!("seg-{id:020}.ids")
}

/// The name of generation `generation` of segment `id`'s tombstones.
pub fn tombstone_file_name(id: u64, generation: u64) -> String {
    format!("seg-{id:020}.tomb-{generation}")
}

/// What a file name in a collection directory is, if it is one of ours.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CollectionFile {
    Manifest,
    Lock,
    Wal(u64),
    Segment(u64),
    Ids(u64),
    Tombstones {
        segment: u64,
        generation: u64,
    },
    /// A `*.tmp` left by an interrupted atomic write.
    Temporary,
}

impl CollectionFile {
    /// Classifies `name`; `None` for files OmenDB did not write.
    pub fn parse(name: &str) -> Option<Self> {
        if name == MANIFEST_FILE {
            return Some(CollectionFile::Manifest);
        }
        if name == LOCK_FILE {
            return Some(CollectionFile::Lock);
        }
        if name.ends_with(".tmp") {
            return Some(CollectionFile::Temporary);
        }
        let number = |s: &str| -> Option<u64> {
            (s.len() == 20 && s.bytes().all(|b| b.is_ascii_digit()))
                .then(|| s.parse().ok())
                .flatten()
        };
        if let Some(rest) = name.strip_prefix("wal-") {
            return number(rest.strip_suffix(".log")?).map(CollectionFile::Wal);
        }
        let rest = name.strip_prefix("seg-")?;
        let (id, ext) = rest.split_at_checked(20)?;
        let id = number(id)?;
        match ext {
            ".omen" => Some(CollectionFile::Segment(id)),
            ".ids" => Some(CollectionFile::Ids(id)),
            _ => {
                let generation = ext.strip_prefix(".tomb-")?;
                if generation.is_empty() || !generation.bytes().all(|b| b.is_ascii_digit()) {
                    return None;
                }
                Some(CollectionFile::Tombstones {
                    segment: id,
                    generation: generation.parse().ok()?,
                })
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn file_names_round_trip() {
        assert_eq!(
            CollectionFile::parse(&wal_file_name(7)),
            Some(CollectionFile::Wal(7))
        );
        assert_eq!(
            CollectionFile::parse(&segment_file_name(3)),
            Some(CollectionFile::Segment(3))
        );
        assert_eq!(
            CollectionFile::parse(&ids_file_name(3)),
            Some(CollectionFile::Ids(3))
        );
        assert_eq!(
            CollectionFile::parse(&tombstone_file_name(3, 12)),
            Some(CollectionFile::Tombstones {
                segment: 3,
                generation: 12
            })
        );
        assert_eq!(
            CollectionFile::parse("MANIFEST.tmp"),
            Some(CollectionFile::Temporary)
        );
        assert_eq!(CollectionFile::parse("seg-1.omen"), None);
        assert_eq!(CollectionFile::parse("notes.txt"), None);
    }
}
