//! Creating and opening a collection directory: the manifest is the truth;
//! files it does not name are leftovers of an interrupted flush or
//! compaction and are removed; the WAL from the manifest's checkpoint on
//! is replayed into the memtable.

use std::collections::HashSet;
use std::fs::File;
use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicU64};
use std::sync::{Arc, Condvar, Mutex, RwLock};

use omen_format::FormatError;
use omen_format::collection::{
    CollectionFile, IdSetKind, LOCK_FILE, MANIFEST_FILE, Manifest, WalOp, ids_file_name,
    read_id_set, segment_file_name, tombstone_file_name,
};

use super::commit::{CommitQueue, apply};
use super::memtable::Memtable;
use super::options::CollectionOptions;
use super::snapshot::{SegmentFiles, SegmentView, Version};
use super::wal::{WalWriter, replay};
use super::{Background, Inner, Schema};
use crate::index::Segment;
use crate::{EngineError, Result};

/// Writes the first manifest of a new collection in `dir`.
pub(crate) fn create(dir: &Path, schema: &Schema) -> Result<()> {
    schema.validate()?;
    std::fs::create_dir_all(dir).map_err(|e| FormatError::io(dir, e))?;
    let not_empty = std::fs::read_dir(dir)
        .map_err(|e| FormatError::io(dir, e))?
        .next()
        .is_some();
    if not_empty {
        return Err(EngineError::InvalidArgument(format!(
            "{}: a new collection needs an empty directory",
            dir.display()
        )));
    }
    let manifest = Manifest {
        generation: 1,
        next_segment_id: 1,
        flushed_lsn: 1,
        wal_checkpoint: 1,
        compactions: 0,
        schema: schema.to_record(),
        segments: Vec::new(),
    };
    manifest.write(&dir.join(MANIFEST_FILE))?;
    Ok(())
}

/// Takes the collection's lock file so that a second process (or a second
/// `open` in this one) cannot write to it at the same time.
fn lock_dir(dir: &Path) -> Result<File> {
    let path = dir.join(LOCK_FILE);
    let file = File::options()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&path)
        .map_err(|e| FormatError::io(&path, e))?;
    match file.try_lock() {
        Ok(()) => {}
        Err(std::fs::TryLockError::WouldBlock) => {
            return Err(EngineError::Unavailable(format!(
                "{}: the collection is open in another process or handle",
                dir.display()
            )));
        }
        Err(std::fs::TryLockError::Error(e)) => return Err(FormatError::io(&path, e).into()),
    }
    Ok(file)
}

/// Opens `dir` (see the module documentation).
pub(crate) fn open(dir: &Path, options: CollectionOptions) -> Result<Inner> {
    let manifest_path = dir.join(MANIFEST_FILE);
    if !manifest_path.exists() {
        return Err(EngineError::InvalidArgument(format!(
            "{}: not a collection (no {MANIFEST_FILE}); create one first",
            dir.display()
        )));
    }
    let lock = lock_dir(dir)?;
    let manifest = Manifest::read(&manifest_path)?;
    let schema = Schema::from_record(&manifest.schema);

    // Segments, their ids and tombstones.
    let mut segments = Vec::with_capacity(manifest.segments.len());
    for record in &manifest.segments {
        let path = dir.join(segment_file_name(record.id));
        let segment = Segment::open(&path, &options.segment)?;
        super::element::check_segment_type(
            &path,
            segment.info().element_type,
            schema.element_type,
        )?;
        let ids_path = dir.join(ids_file_name(record.id));
        let ids = read_id_set(&ids_path, IdSetKind::SegmentIds)?;
        if ids.len() as u64 != record.vectors || segment.len() as u64 != record.vectors {
            return Err(FormatError::Corrupt {
                path: manifest_path.clone(),
                what: format!("segment {}", record.id),
                offset: 0,
                reason: format!(
                    "the manifest says {} rows, {} holds {} and {} lists {}",
                    record.vectors,
                    path.display(),
                    segment.len(),
                    ids_path.display(),
                    ids.len()
                ),
            }
            .into());
        }
        let tombstones: HashSet<u64> = if record.tombstone_generation == 0 {
            HashSet::new()
        } else {
            let p = dir.join(tombstone_file_name(record.id, record.tombstone_generation));
            let t = read_id_set(&p, IdSetKind::Tombstones)?;
            if t.len() as u64 != record.tombstones {
                return Err(FormatError::Corrupt {
                    path: p,
                    what: "tombstone list".into(),
                    offset: 16,
                    reason: format!(
                        "{} tombstones, the manifest says {}",
                        t.len(),
                        record.tombstones
                    ),
                }
                .into());
            }
            t.into_iter().collect()
        };
        segments.push(SegmentView {
            files: Arc::new(SegmentFiles {
                dir: dir.to_path_buf(),
                id: record.id,
                segment,
                ids,
                obsolete: AtomicBool::new(false),
                rows: Default::default(),
            }),
            record: *record,
            tombstones: Arc::new(tombstones),
        });
    }

    // Leftovers and the WAL files to replay.
    let live: HashSet<u64> = manifest.segments.iter().map(|s| s.id).collect();
    let mut wal_numbers = Vec::new();
    for entry in std::fs::read_dir(dir).map_err(|e| FormatError::io(dir, e))? {
        let entry = entry.map_err(|e| FormatError::io(dir, e))?;
        let Some(name) = entry.file_name().to_str().map(str::to_owned) else {
            continue;
        };
        let stale = match CollectionFile::parse(&name) {
            Some(CollectionFile::Wal(n)) if n >= manifest.wal_checkpoint => {
                wal_numbers.push(n);
                false
            }
            Some(CollectionFile::Wal(_)) | Some(CollectionFile::Temporary) => true,
            Some(CollectionFile::Segment(id)) | Some(CollectionFile::Ids(id)) => {
                !live.contains(&id)
            }
            Some(CollectionFile::Tombstones {
                segment,
                generation,
            }) => !manifest
                .segments
                .iter()
                .any(|s| s.id == segment && s.tombstone_generation == generation),
            _ => false,
        };
        if stale {
            super::flush::remove_quietly(&entry.path());
        }
    }
    wal_numbers.sort_unstable();

    // Replay.
    let super::wal::Replayed { records, torn } = replay(dir, &wal_numbers)?;
    if let Some((file, offset)) = &torn {
        tracing::warn!(file = %file.display(), offset, "recovered from a torn WAL tail");
    }
    let dim = schema.dimension;
    let columns = schema.columns.len();
    let next_wal = wal_numbers
        .last()
        .map_or(manifest.wal_checkpoint, |&n| n + 1)
        .max(manifest.wal_checkpoint);
    let first_wal = wal_numbers.first().copied().unwrap_or(next_wal);
    let mut active = Memtable::new(dim, columns, first_wal);
    let mut next_lsn = manifest.flushed_lsn;
    for (n, record) in &records {
        if record.lsn < manifest.flushed_lsn {
            continue;
        }
        if let WalOp::Upsert(b) = &record.op
            && (b.dim != dim || b.columns != columns || b.element_type != schema.element_type)
        {
            return Err(FormatError::Corrupt {
                path: dir.join(omen_format::collection::wal_file_name(*n)),
                what: format!("WAL record {}", record.lsn),
                offset: 0,
                reason: format!(
                    "rows of {} {} dimensions and {} columns in a collection of {dim} {} and {columns}",
                    b.dim, b.element_type, b.columns, schema.element_type
                ),
            }
            .into());
        }
        apply(&mut active, record.lsn, &record.op);
        next_lsn = next_lsn.max(record.lsn + 1);
    }
    // Keep appending to the newest file (no empty file per open).
    let wal = match wal_numbers.last() {
        Some(&n) if dir.join(omen_format::collection::wal_file_name(n)).exists() => {
            WalWriter::append_to(dir, n)?
        }
        _ => WalWriter::create(dir, next_wal)?,
    };
    active.last_wal = wal.number;

    Ok(Inner {
        dir: dir.to_path_buf(),
        schema,
        active: RwLock::new(active),
        version: RwLock::new(Arc::new(Version {
            segments,
            frozen: Vec::new(),
        })),
        next_segment_id: AtomicU64::new(manifest.next_segment_id),
        manifest: Mutex::new(manifest),
        wal: Mutex::new(wal),
        queue: Mutex::new(CommitQueue::default()),
        queue_cv: Condvar::new(),
        next_lsn: AtomicU64::new(next_lsn),
        background: Mutex::new(Background::default()),
        work_cv: Condvar::new(),
        stall_cv: Condvar::new(),
        compaction_lock: Mutex::new(()),
        options,
        _lock: lock,
    })
}
