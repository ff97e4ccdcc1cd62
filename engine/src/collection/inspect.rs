//! A read-only look at a collection directory, for `omen inspect`: the
//! manifest, every segment with its size and tombstones, every WAL file
//! with its records (a torn tail is reported, not cut), leftovers, and
//! what compaction would do next. Nothing is written, locked or replayed.

use std::path::{Path, PathBuf};

use omen_format::FormatError;
use omen_format::collection::{
    CollectionFile, LOCK_FILE, MANIFEST_FILE, Manifest, SegmentRecord, WalOp, ids_file_name,
    segment_file_name, tombstone_file_name, wal,
};

use omen_format::segment::layout::INCOMPAT_FLAT_INDEX;
use omen_format::segment::{OpenOptions, SegmentFile};

use super::compaction::pick;
use super::options::CollectionOptions;
use crate::Result;

/// One segment as the manifest and the directory describe it.
#[derive(Debug, Clone)]
pub struct SegmentSummary {
    pub record: SegmentRecord,
    pub file: String,
    pub bytes: u64,
    pub ids_bytes: u64,
    pub tombstone_file: Option<String>,
    /// Whether the segment is a flat index (a flush not yet compacted into
    /// a graph); `None` when its superblock cannot be read.
    pub flat: Option<bool>,
}

/// One WAL file.
#[derive(Debug, Clone)]
pub struct WalSummary {
    pub file: String,
    pub bytes: u64,
    pub records: usize,
    pub rows_written: usize,
    pub rows_deleted: usize,
    pub lsns: Option<(u64, u64)>,
    /// Offset of a torn last record (recovery will cut it off).
    pub torn_at: Option<u64>,
    /// Set instead of the counts when the file is damaged.
    pub error: Option<String>,
}

/// What `omen inspect DIR` prints.
#[derive(Debug, Clone)]
pub struct Inspection {
    pub dir: PathBuf,
    pub manifest: Manifest,
    pub manifest_bytes: u64,
    pub segments: Vec<SegmentSummary>,
    pub wal: Vec<WalSummary>,
    /// Files no manifest names (removed at the next open).
    pub leftovers: Vec<String>,
    /// The compaction the default policy would run next.
    pub pending_compaction: Option<String>,
    /// Whether a process holds the collection open now.
    pub in_use: bool,
}

/// Inspects the collection in `dir` without changing it.
pub fn inspect(dir: &Path) -> Result<Inspection> {
    let manifest_path = dir.join(MANIFEST_FILE);
    let manifest = Manifest::read(&manifest_path)?;
    let size = |name: &str| std::fs::metadata(dir.join(name)).map_or(0, |m| m.len());
    let segments = manifest
        .segments
        .iter()
        .map(|r| SegmentSummary {
            record: *r,
            file: segment_file_name(r.id),
            bytes: size(&segment_file_name(r.id)),
            ids_bytes: size(&ids_file_name(r.id)),
            tombstone_file: (r.tombstone_generation != 0)
                .then(|| tombstone_file_name(r.id, r.tombstone_generation)),
            flat: SegmentFile::open(dir.join(segment_file_name(r.id)), OpenOptions::default())
                .ok()
                .map(|f| f.info().incompat_features & INCOMPAT_FLAT_INDEX != 0),
        })
        .collect();
    let mut wal_numbers = Vec::new();
    let mut leftovers = Vec::new();
    for entry in std::fs::read_dir(dir).map_err(|e| FormatError::io(dir, e))? {
        let entry = entry.map_err(|e| FormatError::io(dir, e))?;
        let name = entry.file_name().to_string_lossy().into_owned();
        match CollectionFile::parse(&name) {
            Some(CollectionFile::Wal(n)) if n >= manifest.wal_checkpoint => wal_numbers.push(n),
            Some(CollectionFile::Segment(id)) | Some(CollectionFile::Ids(id))
                if manifest.segments.iter().any(|s| s.id == id) => {}
            Some(CollectionFile::Tombstones {
                segment,
                generation,
            }) if manifest
                .segments
                .iter()
                .any(|s| s.id == segment && s.tombstone_generation == generation) => {}
            Some(CollectionFile::Manifest) | Some(CollectionFile::Lock) => {}
            Some(_) => leftovers.push(name),
            None => {}
        }
    }
    wal_numbers.sort_unstable();
    leftovers.sort();
    let wal = wal_numbers
        .iter()
        .enumerate()
        .map(|(i, &n)| {
            let name = omen_format::collection::wal_file_name(n);
            let path = dir.join(&name);
            let mut summary = WalSummary {
                file: name,
                bytes: size(&omen_format::collection::wal_file_name(n)),
                records: 0,
                rows_written: 0,
                rows_deleted: 0,
                lsns: None,
                torn_at: None,
                error: None,
            };
            let scanned = std::fs::read(&path)
                .map_err(|e| FormatError::io(&path, e))
                .and_then(|b| wal::scan(&path, n, &b, i + 1 == wal_numbers.len()));
            match scanned {
                Ok(scan) => {
                    summary.records = scan.records.len();
                    for r in &scan.records {
                        match &r.op {
                            WalOp::Upsert(b) => summary.rows_written += b.len(),
                            WalOp::Delete(ids) => summary.rows_deleted += ids.len(),
                        }
                    }
                    summary.lsns = scan
                        .records
                        .first()
                        .zip(scan.records.last())
                        .map(|(a, b)| (a.lsn, b.lsn));
                    summary.torn_at = scan.torn_at;
                }
                Err(e) => summary.error = Some(e.to_string()),
            }
            summary
        })
        .collect();
    let in_use = std::fs::File::open(dir.join(LOCK_FILE))
        .map(|f| match f.try_lock_shared() {
            Ok(()) => {
                let _ = f.unlock();
                false
            }
            Err(_) => true,
        })
        .unwrap_or(false);
    Ok(Inspection {
        dir: dir.to_path_buf(),
        manifest_bytes: size(MANIFEST_FILE),
        pending_compaction: pick(&manifest.segments, &CollectionOptions::default())
            .map(|p| p.describe()),
        manifest,
        segments,
        wal,
        leftovers,
        in_use,
    })
}
