//! big-ann-benchmarks ground-truth files: `int32 nq, int32 k`, then
//! `nq × k` int32 neighbour ids (row-major, nearest first), then `nq × k` f32
//! distances in the same order.
//!
//! Invariant: a [`GroundTruthFile`] is accepted only if `nq` and `k` are
//! positive and the size is exactly `8 + nq × k × 8`; ids are not checked
//! against a base size until [`GroundTruthFile::check_ids`] is asked to.

use std::path::Path;

use zerocopy::IntoBytes;

use super::{cast_slice, read_i32, u64_of};
use crate::atomic::AtomicFile;
use crate::mmap::MappedFile;
use crate::{FormatError, Result};

/// Bytes before the first id.
pub const HEADER_BYTES: usize = 8;

/// A mapped, validated ground-truth file.
#[derive(Debug)]
pub struct GroundTruthFile {
    map: MappedFile,
    nq: usize,
    k: usize,
}

impl GroundTruthFile {
    /// Maps and validates `path`.
    pub fn open(path: impl AsRef<Path>) -> Result<Self> {
        let map = MappedFile::open(path)?;
        let path = map.path();
        let bytes = map.bytes();
        let actual = u64_of(bytes.len());
        let (Some(nq), Some(k)) = (read_i32(bytes, 0), read_i32(bytes, 4)) else {
            return Err(FormatError::Truncated {
                path: path.to_path_buf(),
                what: "ground-truth header (int32 nq, int32 k)".into(),
                needed: u64_of(HEADER_BYTES),
                actual,
            });
        };
        for (value, name, offset) in [(nq, "nq", 0), (k, "k", 4)] {
            if value <= 0 {
                return Err(FormatError::InvalidData {
                    path: path.to_path_buf(),
                    offset,
                    reason: format!("the header gives {name} = {value}; it must be positive"),
                });
            }
        }
        let (nq64, k64) = (u64::from(nq.unsigned_abs()), u64::from(k.unsigned_abs()));
        // nq, k < 2^31, so 8 + nq × k × 8 < 2^66 may overflow: check.
        let expected = nq64
            .checked_mul(k64)
            .and_then(|v| v.checked_mul(8))
            .and_then(|v| v.checked_add(u64_of(HEADER_BYTES)))
            .ok_or_else(|| FormatError::InvalidData {
                path: path.to_path_buf(),
                offset: 0,
                reason: format!("nq = {nq}, k = {k} overflow the file size"),
            })?;
        if actual < expected {
            return Err(FormatError::Truncated {
                path: path.to_path_buf(),
                what: format!(
                    "ground truth for {nq} queries × {k} neighbours (8 + nq × k × 8 = {expected} bytes)"
                ),
                needed: expected,
                actual,
            });
        }
        if actual > expected {
            return Err(FormatError::InvalidData {
                path: path.to_path_buf(),
                offset: expected,
                reason: format!(
                    "the file has {actual} bytes, but its header (nq = {nq}, k = {k}) implies \
                     8 + nq × k × 8 = {expected}; {} bytes are left over",
                    actual - expected
                ),
            });
        }
        let file = GroundTruthFile {
            nq: usize::try_from(nq).unwrap_or(0),
            k: usize::try_from(k).unwrap_or(0),
            map,
        };
        if file.all_ids().is_none() || file.all_distances().is_none() {
            return Err(FormatError::Corrupt {
                path: file.map.path().to_path_buf(),
                what: "ground truth".into(),
                offset: u64_of(HEADER_BYTES),
                reason: "cannot be viewed as int32 and f32 values".into(),
            });
        }
        Ok(file)
    }

    /// Number of queries.
    pub fn nq(&self) -> usize {
        self.nq
    }

    /// Neighbours per query.
    pub fn k(&self) -> usize {
        self.k
    }

    /// The file this reads.
    pub fn path(&self) -> &Path {
        self.map.path()
    }

    fn entries(&self) -> usize {
        self.nq.saturating_mul(self.k)
    }

    /// Every id, query-major.
    pub fn all_ids(&self) -> Option<&[i32]> {
        let end = HEADER_BYTES.checked_add(self.entries().checked_mul(4)?)?;
        cast_slice(self.map.bytes().get(HEADER_BYTES..end)?)
    }

    /// Every distance, query-major.
    pub fn all_distances(&self) -> Option<&[f32]> {
        let start = HEADER_BYTES.checked_add(self.entries().checked_mul(4)?)?;
        cast_slice(self.map.bytes().get(start..)?)
    }

    /// The ids of query `q`'s neighbours, or `None` if out of range.
    pub fn get_ids(&self, q: usize) -> Option<&[i32]> {
        let start = q.checked_mul(self.k)?;
        self.all_ids()?.get(start..start.checked_add(self.k)?)
    }

    /// The distances of query `q`'s neighbours, or `None` if out of range.
    pub fn get_distances(&self, q: usize) -> Option<&[f32]> {
        let start = q.checked_mul(self.k)?;
        self.all_distances()?.get(start..start.checked_add(self.k)?)
    }

    /// The ids of query `q`'s neighbours, nearest first.
    ///
    /// # Panics
    /// If `q >= nq()`, like slice indexing.
    pub fn ids(&self, q: usize) -> &[i32] {
        match self.get_ids(q) {
            Some(ids) => ids,
            None => panic!(
                "query {q} out of range: {} has {}",
                self.path().display(),
                self.nq
            ),
        }
    }

    /// The distances of query `q`'s neighbours, nearest first.
    ///
    /// # Panics
    /// If `q >= nq()`, like slice indexing.
    pub fn distances(&self, q: usize) -> &[f32] {
        match self.get_distances(q) {
            Some(d) => d,
            None => panic!(
                "query {q} out of range: {} has {}",
                self.path().display(),
                self.nq
            ),
        }
    }

    /// Fails with [`FormatError::InvalidData`] at the first id outside
    /// `0..n_base` (the ids must index the base file they were computed on).
    pub fn check_ids(&self, n_base: usize) -> Result<()> {
        let ids = self.all_ids().unwrap_or_default();
        if let Some((i, &id)) = ids
            .iter()
            .enumerate()
            .find(|&(_, &id)| usize::try_from(id).map_or(true, |id| id >= n_base))
        {
            return Err(FormatError::InvalidData {
                path: self.path().to_path_buf(),
                offset: u64_of(HEADER_BYTES.saturating_add(i.saturating_mul(4))),
                reason: format!(
                    "query {}, rank {} has id {id}, outside the {n_base} base vectors",
                    i / self.k.max(1),
                    i % self.k.max(1)
                ),
            });
        }
        Ok(())
    }

    /// Copies the file into memory.
    pub fn to_neighbors(&self) -> Neighbors {
        Neighbors {
            nq: self.nq,
            k: self.k,
            ids: self.all_ids().unwrap_or_default().to_vec(),
            distances: self.all_distances().unwrap_or_default().to_vec(),
        }
    }
}

/// Ground truth in memory: what a k-NN computation produces and a
/// ground-truth file stores.
#[derive(Debug, Clone, PartialEq)]
pub struct Neighbors {
    nq: usize,
    k: usize,
    ids: Vec<i32>,
    distances: Vec<f32>,
}

impl Neighbors {
    /// Wraps query-major `ids` and `distances` of `nq × k` entries each.
    pub fn new(nq: usize, k: usize, ids: Vec<i32>, distances: Vec<f32>) -> Result<Self> {
        let entries = nq.checked_mul(k);
        if entries != Some(ids.len()) || entries != Some(distances.len()) {
            return Err(FormatError::InvalidArgument(format!(
                "ground truth for {nq} queries × {k} neighbours needs {} ids and distances, \
                 got {} and {}",
                nq.saturating_mul(k),
                ids.len(),
                distances.len()
            )));
        }
        Ok(Neighbors {
            nq,
            k,
            ids,
            distances,
        })
    }

    /// Number of queries.
    pub fn nq(&self) -> usize {
        self.nq
    }

    /// Neighbours per query.
    pub fn k(&self) -> usize {
        self.k
    }

    /// Every id, query-major.
    pub fn all_ids(&self) -> &[i32] {
        &self.ids
    }

    /// Every distance, query-major.
    pub fn all_distances(&self) -> &[f32] {
        &self.distances
    }

    /// The ids of query `q`'s neighbours, nearest first.
    ///
    /// # Panics
    /// If `q >= nq()`.
    pub fn ids(&self, q: usize) -> &[i32] {
        let start = q.saturating_mul(self.k);
        match self.ids.get(start..start.saturating_add(self.k)) {
            Some(ids) if q < self.nq => ids,
            _ => panic!("query {q} out of range: {} queries", self.nq),
        }
    }

    /// The distances of query `q`'s neighbours, nearest first.
    ///
    /// # Panics
    /// If `q >= nq()`.
    pub fn distances(&self, q: usize) -> &[f32] {
        let start = q.saturating_mul(self.k);
        match self.distances.get(start..start.saturating_add(self.k)) {
            Some(d) if q < self.nq => d,
            _ => panic!("query {q} out of range: {} queries", self.nq),
        }
    }

    /// Writes a ground-truth file; returns its size in bytes.
    pub fn write(&self, path: impl AsRef<Path>) -> Result<u64> {
        write_ground_truth(path, self.nq, self.k, &self.ids, &self.distances)
    }
}

/// Writes a ground-truth file of `nq × k` query-major `ids` and `distances`
/// through `<path>.tmp`, fsync and rename; returns its size in bytes.
pub fn write_ground_truth(
    path: impl AsRef<Path>,
    nq: usize,
    k: usize,
    ids: &[i32],
    distances: &[f32],
) -> Result<u64> {
    let path = path.as_ref();
    let header = |v: usize, name: &str| {
        i32::try_from(v).ok().filter(|&v| v > 0).ok_or_else(|| {
            FormatError::InvalidArgument(format!(
                "{}: {name} = {v} must be in 1..={}",
                path.display(),
                i32::MAX
            ))
        })
    };
    let (nq32, k32) = (header(nq, "nq")?, header(k, "k")?);
    let entries = nq.checked_mul(k);
    if entries != Some(ids.len()) || entries != Some(distances.len()) {
        return Err(FormatError::InvalidArgument(format!(
            "{}: {nq} queries × {k} neighbours need {} ids and distances, got {} and {}",
            path.display(),
            nq.saturating_mul(k),
            ids.len(),
            distances.len()
        )));
    }
    let mut file = AtomicFile::create(path)?;
    file.write(&nq32.to_le_bytes())?;
    file.write(&k32.to_le_bytes())?;
    file.write(ids.as_bytes())?;
    file.write(distances.as_bytes())?;
    file.commit(&[])
}
