//! Appending to the WAL and reading it back at open (the byte layout is
//! `omen_format::collection::wal`, SPEC.md §8.3).
//!
//! One file is written at a time; a new file starts when the memtable is
//! frozen, so every WAL file belongs to exactly one memtable and is deleted
//! once the manifest that covers that memtable's segment is durable.

use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};

use omen_format::FormatError;
use omen_format::collection::wal::{self, WalRecord};
use omen_format::collection::wal_file_name;

use crate::Result;

/// The WAL file being appended to.
#[derive(Debug)]
pub(crate) struct WalWriter {
    path: PathBuf,
    file: File,
    pub(crate) number: u64,
    /// Bytes written since the last fsync.
    unsynced: u64,
}

fn fsync_dir(dir: &Path) -> Result<()> {
    File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(|e| FormatError::io(dir, e).into())
}

impl WalWriter {
    /// Starts WAL file `number` in `dir`: header written and durable, and
    /// the directory entry too, before any record goes in.
    pub(crate) fn create(dir: &Path, number: u64) -> Result<Self> {
        let path = dir.join(wal_file_name(number));
        let io = |e| FormatError::io(&path, e);
        let mut file = OpenOptions::new()
            .create_new(true)
            .write(true)
            .open(&path)
            .map_err(io)?;
        file.write_all(&wal::encode_header(number)).map_err(io)?;
        file.sync_all().map_err(io)?;
        fsync_dir(dir)?;
        Ok(WalWriter {
            path,
            file,
            number,
            unsynced: 0,
        })
    }

    /// Continues WAL file `number` (already replayed, and cut back to its
    /// last whole record if its tail was torn).
    pub(crate) fn append_to(dir: &Path, number: u64) -> Result<Self> {
        let path = dir.join(wal_file_name(number));
        let file = OpenOptions::new()
            .append(true)
            .open(&path)
            .map_err(|e| FormatError::io(&path, e))?;
        Ok(WalWriter {
            path,
            file,
            number,
            unsynced: 0,
        })
    }

    /// Appends framed records (one `write` for the whole group).
    pub(crate) fn append(&mut self, bytes: &[u8]) -> Result<()> {
        self.file
            .write_all(bytes)
            .map_err(|e| FormatError::io(&self.path, e))?;
        self.unsynced += bytes.len() as u64;
        Ok(())
    }

    /// Makes everything appended durable (fdatasync).
    pub(crate) fn sync(&mut self) -> Result<()> {
        if self.unsynced > 0 {
            self.file
                .sync_data()
                .map_err(|e| FormatError::io(&self.path, e))?;
            self.unsynced = 0;
        }
        Ok(())
    }
}

/// What replaying the WAL found.
#[derive(Debug)]
pub(crate) struct Replayed {
    /// `(file number, record)`, in log order.
    pub(crate) records: Vec<(u64, WalRecord)>,
    /// The file and offset of a torn tail that was cut off.
    pub(crate) torn: Option<(PathBuf, u64)>,
}

/// Records of WAL files `numbers` (ascending) in `dir`, in order. A torn
/// tail of the newest file is cut off the file (truncated and fsynced) and
/// reported as `(file, offset)`.
pub(crate) fn replay(dir: &Path, numbers: &[u64]) -> Result<Replayed> {
    let mut out = Vec::new();
    let mut torn = None;
    let mut last_lsn = None;
    for (i, &n) in numbers.iter().enumerate() {
        let path = dir.join(wal_file_name(n));
        let bytes = fs_err_read(&path)?;
        let newest = i + 1 == numbers.len();
        let scan = wal::scan(&path, n, &bytes, newest)?;
        if let Some(at) = scan.torn_at
            && scan.valid_len < wal::WAL_HEADER_LEN as u64
        {
            // Not even the header became durable: the file never held a
            // record. Remove it so that it cannot sit before a newer file.
            std::fs::remove_file(&path).map_err(|e| FormatError::io(&path, e))?;
            fsync_dir(dir)?;
            tracing::warn!(file = %path.display(), offset = at, "removed a WAL file with a torn header");
            torn = Some((path.clone(), at));
        } else if let Some(at) = scan.torn_at {
            let file = OpenOptions::new()
                .write(true)
                .open(&path)
                .map_err(|e| FormatError::io(&path, e))?;
            file.set_len(scan.valid_len)
                .and_then(|()| file.sync_all())
                .map_err(|e| FormatError::io(&path, e))?;
            tracing::warn!(file = %path.display(), offset = at, "cut off a torn WAL record");
            torn = Some((path.clone(), at));
        }
        if let (Some(first), Some(last)) = (scan.records.first(), last_lsn)
            && first.lsn <= last
        {
            return Err(FormatError::Corrupt {
                path,
                what: "WAL record".into(),
                offset: wal::WAL_HEADER_LEN as u64,
                reason: format!(
                    "sequence number {} does not follow {last} of the previous file",
                    first.lsn
                ),
            }
            .into());
        }
        if let Some(r) = scan.records.last() {
            last_lsn = Some(r.lsn);
        }
        out.extend(scan.records.into_iter().map(|r| (n, r)));
    }
    Ok(Replayed { records: out, torn })
}

fn fs_err_read(path: &Path) -> Result<Vec<u8>> {
    std::fs::read(path).map_err(|e| FormatError::io(path, e).into())
}
