//! Where a segment's node pages come from during search: a pool of io_uring
//! readers over an `O_DIRECT` file descriptor, or a read-only memory map.
//!
//! Both paths hand out whole, still-unverified pages; the caller verifies
//! each page's checksum before trusting a byte of it.

use std::fs::File;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use omen_format::FormatError;
use omen_format::mmap::MappedFile;
use omen_format::segment::layout::PAGE_SIZE;

use crate::io::{IoMode, UringReader};
use crate::{EngineError, Result};

/// Reads raw pages of one segment file.
#[derive(Debug)]
pub(crate) enum PageSource {
    Direct {
        path: PathBuf,
        file: Arc<File>,
        /// Idle readers; a searching thread takes one and puts it back, so
        /// there is one ring per concurrently searching thread.
        pool: Mutex<Vec<UringReader>>,
        depth: usize,
    },
    Mmap(MappedFile),
}

impl PageSource {
    /// Opens `path` for page reads in `mode`; `Auto` tries io_uring with
    /// `O_DIRECT` first and falls back to mmap, logging why.
    pub(crate) fn open(path: &Path, mode: IoMode, depth: usize) -> Result<Self> {
        match mode {
            IoMode::Mmap => Self::mmap(path),
            IoMode::Direct => Self::direct(path, depth),
            IoMode::Auto => Self::direct(path, depth).or_else(|e| {
                tracing::warn!(
                    path = %path.display(),
                    "io_uring with O_DIRECT is unavailable ({e}); reading through mmap and the page cache"
                );
                Self::mmap(path)
            }),
        }
    }

    fn mmap(path: &Path) -> Result<Self> {
        let map = MappedFile::open(path)?;
        map.advise_random();
        Ok(PageSource::Mmap(map))
    }

    fn direct(path: &Path, depth: usize) -> Result<Self> {
        let file = std::fs::OpenOptions::new()
            .read(true)
            .custom_flags(libc::O_DIRECT)
            .open(path)
            .map_err(|e| FormatError::io(path, e))?;
        let file = Arc::new(file);
        // Probe once so that an unsupported kernel fails here, at open.
        let reader =
            UringReader::new(Arc::clone(&file), depth).map_err(|e| FormatError::io(path, e))?;
        Ok(PageSource::Direct {
            path: path.to_path_buf(),
            file,
            pool: Mutex::new(vec![reader]),
            depth,
        })
    }

    /// The mode actually in use.
    pub(crate) fn mode(&self) -> IoMode {
        match self {
            PageSource::Direct { .. } => IoMode::Direct,
            PageSource::Mmap(_) => IoMode::Mmap,
        }
    }

    /// Reads the pages at `offsets` and calls `on_page(i, page)` for each as
    /// it arrives (in any order), where `i` indexes `offsets`.
    pub(crate) fn read(
        &self,
        offsets: &[u64],
        on_page: &mut dyn FnMut(usize, &[u8; PAGE_SIZE]) -> Result<()>,
    ) -> Result<()> {
        match self {
            PageSource::Mmap(map) => {
                for (i, &offset) in offsets.iter().enumerate() {
                    let page = usize::try_from(offset)
                        .ok()
                        .and_then(|at| map.bytes().get(at..at.checked_add(PAGE_SIZE)?))
                        .and_then(|p| <&[u8; PAGE_SIZE]>::try_from(p).ok())
                        .ok_or_else(|| FormatError::Truncated {
                            path: map.path().to_path_buf(),
                            what: "node page".into(),
                            needed: offset.saturating_add(PAGE_SIZE as u64),
                            actual: map.bytes().len() as u64,
                        })?;
                    on_page(i, page)?;
                }
                Ok(())
            }
            PageSource::Direct {
                path,
                file,
                pool,
                depth,
            } => {
                let taken = pool.lock().unwrap_or_else(|p| p.into_inner()).pop();
                let mut reader = match taken {
                    Some(r) => r,
                    None => UringReader::new(Arc::clone(file), *depth)
                        .map_err(|e| FormatError::io(path, e))?,
                };
                let mut result = Ok(());
                for (chunk_no, chunk) in offsets.chunks(reader.depth()).enumerate() {
                    let base = chunk_no * reader.depth();
                    result = reader
                        .read_batch::<EngineError>(chunk, &mut |i, page| on_page(base + i, page));
                    if result.is_err() {
                        break;
                    }
                }
                pool.lock().unwrap_or_else(|p| p.into_inner()).push(reader);
                result.map_err(|e| match e {
                    EngineError::Io(source) => FormatError::io(path, source).into(),
                    other => other,
                })
            }
        }
    }
}
