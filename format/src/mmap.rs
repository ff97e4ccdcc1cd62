//! Read-only memory maps: the format crate's only `unsafe`.
//!
//! Dataset files of 100M vectors are far larger than RAM, so they are mapped
//! rather than read. A map is only sound while nobody truncates or rewrites
//! the file underneath it; OmenDB never modifies a file it has mapped (datasets
//! are inputs, segments are immutable once renamed into place), and the docs
//! tell users not to modify inputs while a command runs.

use std::fs::File;
use std::path::{Path, PathBuf};

use crate::{FormatError, Result};

/// A read-only mapping of a whole file, with the path kept for error messages.
#[derive(Debug)]
pub struct MappedFile {
    path: PathBuf,
    map: Option<memmap2::Mmap>,
}

impl MappedFile {
    /// Maps `path` read-only. An empty file yields an empty byte slice
    /// (mapping zero bytes is an error on Linux).
    pub fn open(path: impl AsRef<Path>) -> Result<Self> {
        let path = path.as_ref().to_path_buf();
        let file = File::open(&path).map_err(|e| FormatError::io(&path, e))?;
        let len = file
            .metadata()
            .map_err(|e| FormatError::io(&path, e))?
            .len();
        if len == 0 {
            return Ok(MappedFile { path, map: None });
        }
        // SAFETY: the mapping is read-only and OmenDB never writes to or
        // truncates a file while it is mapped (module docs). Other processes
        // doing so is outside our contract, as for every mmap-based reader.
        let map = unsafe { memmap2::MmapOptions::new().map(&file) }
            .map_err(|e| FormatError::io(&path, e))?;
        Ok(MappedFile {
            path,
            map: Some(map),
        })
    }

    /// Tells the kernel the mapping will be read front to back.
    pub fn advise_sequential(&self) {
        if let Some(map) = &self.map {
            // Advice is only a hint; failure changes nothing we rely on.
            let _ = map.advise(memmap2::Advice::Sequential);
        }
    }

    /// Tells the kernel reads will be random, so it does not read ahead:
    /// search touches single pages, and read-ahead would waste the disk.
    pub fn advise_random(&self) {
        if let Some(map) = &self.map {
            // Advice is only a hint; failure changes nothing we rely on.
            let _ = map.advise(memmap2::Advice::Random);
        }
    }

    /// The mapped bytes.
    pub fn bytes(&self) -> &[u8] {
        self.map.as_deref().unwrap_or(&[])
    }

    /// The file this maps.
    pub fn path(&self) -> &Path {
        &self.path
    }
}
