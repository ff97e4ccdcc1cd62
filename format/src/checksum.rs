//! Checksums: xxh3-64 everywhere, behind a newtype so that a mismatch is
//! always reported the same way.

use std::path::Path;

use crate::FormatError;

/// An xxh3-64 checksum.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Checksum(pub u64);

impl Checksum {
    /// The checksum of `bytes`.
    pub fn of(bytes: &[u8]) -> Self {
        Checksum(xxhash_rust::xxh3::xxh3_64(bytes))
    }

    /// The checksum of `bytes`, seeded. Page checksums are seeded with the
    /// page's file offset so that a page written to the wrong place is caught.
    pub fn of_seeded(bytes: &[u8], seed: u64) -> Self {
        Checksum(xxhash_rust::xxh3::xxh3_64_with_seed(bytes, seed))
    }

    /// Whether the stored value is this checksum.
    pub fn matches(self, expected: u64) -> bool {
        self.0 == expected
    }

    /// Compares with the stored value; a mismatch becomes a corruption error
    /// naming the file, the structure and its extent.
    pub fn check(
        self,
        expected: u64,
        path: &Path,
        what: impl Into<String>,
        offset: u64,
        len: u64,
    ) -> Result<(), FormatError> {
        if self.matches(expected) {
            Ok(())
        } else {
            Err(FormatError::ChecksumMismatch {
                path: path.to_path_buf(),
                what: what.into(),
                offset,
                len,
                expected,
                got: self.0,
            })
        }
    }
}
