//! Crash-safe file creation: bytes go to `<path>.tmp`, which is fsynced and
//! renamed over `<path>` only once complete.
//!
//! Invariant: `<path>` either does not change or is replaced by a complete,
//! durable file; an abandoned writer (error, panic, early return) removes its
//! temporary file on drop.

use std::ffi::OsString;
use std::fs::File;
use std::io::{BufWriter, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

use crate::{FormatError, Result};

/// Large enough that writes reach the kernel in big sequential runs.
const BUFFER_BYTES: usize = 1 << 20;

/// A file under construction.
#[derive(Debug)]
pub struct AtomicFile {
    path: PathBuf,
    tmp: PathBuf,
    out: Option<BufWriter<File>>,
    written: u64,
}

impl AtomicFile {
    /// Starts `<path>.tmp`, replacing any leftover from an earlier crash.
    pub fn create(path: &Path) -> Result<Self> {
        let mut name: OsString = path
            .file_name()
            .ok_or_else(|| {
                FormatError::InvalidArgument(format!(
                    "{}: not a file name to write to",
                    path.display()
                ))
            })?
            .to_os_string();
        name.push(".tmp");
        let tmp = path.with_file_name(name);
        let file = File::create(&tmp).map_err(|e| FormatError::io(&tmp, e))?;
        Ok(AtomicFile {
            path: path.to_path_buf(),
            tmp,
            out: Some(BufWriter::with_capacity(BUFFER_BYTES, file)),
            written: 0,
        })
    }

    /// The final path.
    pub(crate) fn path(&self) -> &Path {
        &self.path
    }

    /// Appends `bytes`.
    pub fn write(&mut self, bytes: &[u8]) -> Result<()> {
        let Some(out) = self.out.as_mut() else {
            return Err(self.closed());
        };
        out.write_all(bytes)
            .map_err(|e| FormatError::io(&self.tmp, e))?;
        self.written = self
            .written
            .saturating_add(u64::try_from(bytes.len()).unwrap_or(u64::MAX));
        Ok(())
    }

    /// Overwrites `bytes` at `offset` (headers whose counts are known only
    /// at the end), makes the file durable and renames it into place.
    ///
    /// On failure (a full disk often shows only here, when the buffer is
    /// flushed) the temporary file is removed, as on drop.
    pub fn commit(mut self, patches: &[(u64, &[u8])]) -> Result<u64> {
        let out = self.out.take().ok_or_else(|| self.closed())?;
        match self.finish(out, patches) {
            Ok(()) => Ok(self.written),
            Err(e) => {
                // Best effort, as in drop; after a successful rename there
                // is nothing left to remove.
                let _ = std::fs::remove_file(&self.tmp);
                Err(e)
            }
        }
    }

    fn finish(&self, out: BufWriter<File>, patches: &[(u64, &[u8])]) -> Result<()> {
        let tmp = self.tmp.clone();
        let io = |e: std::io::Error| FormatError::io(&tmp, e);
        let mut file = out.into_inner().map_err(|e| io(e.into_error()))?;
        for (offset, bytes) in patches {
            file.seek(SeekFrom::Start(*offset)).map_err(io)?;
            file.write_all(bytes).map_err(io)?;
        }
        file.sync_all().map_err(io)?;
        drop(file);
        std::fs::rename(&self.tmp, &self.path).map_err(|e| FormatError::io(&self.path, e))?;
        // The rename is durable only once the directory entry is; without
        // this a power cut can resurrect the old file or lose the new one.
        let dir = match self.path.parent() {
            Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
            _ => PathBuf::from("."),
        };
        File::open(&dir)
            .and_then(|d| d.sync_all())
            .map_err(|e| FormatError::io(&dir, e))?;
        Ok(())
    }

    fn closed(&self) -> FormatError {
        FormatError::InvalidArgument(format!(
            "{}: the writer was already finished",
            self.tmp.display()
        ))
    }
}

impl Drop for AtomicFile {
    fn drop(&mut self) {
        if let Some(out) = self.out.take() {
            // Discard the buffer instead of flushing it into a doomed file.
            let (file, _unflushed) = out.into_parts();
            drop(file);
            // Best effort: the file is garbage either way, and drop cannot
            // report an error.
            let _ = std::fs::remove_file(&self.tmp);
        }
    }
}
