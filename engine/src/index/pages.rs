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

use crate::io::{IoMode, IoWait, UringReader};
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
        wait: IoWait,
    },
    Mmap(MappedFile),
}

impl PageSource {
    /// Opens `path` for page reads in `mode`; `Auto` tries io_uring with
    /// `O_DIRECT` first and falls back to mmap, logging why. `wait` applies
    /// to io_uring only (page-cache reads do not wait for completions).
    pub(crate) fn open(path: &Path, mode: IoMode, depth: usize, wait: IoWait) -> Result<Self> {
        match mode {
            IoMode::Mmap => Self::mmap(path),
            IoMode::Direct => Self::direct(path, depth, wait),
            IoMode::Auto => Self::direct(path, depth, wait).or_else(|e| {
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

    fn direct(path: &Path, depth: usize, wait: IoWait) -> Result<Self> {
        let file = std::fs::OpenOptions::new()
            .read(true)
            .custom_flags(libc::O_DIRECT)
            .open(path)
            .map_err(|e| FormatError::io(path, e))?;
        let file = Arc::new(file);
        // Probe once so that an unsupported kernel fails here, at open.
        let reader = UringReader::new(Arc::clone(&file), depth, wait)
            .map_err(|e| FormatError::io(path, e))?;
        Ok(PageSource::Direct {
            path: path.to_path_buf(),
            file,
            pool: Mutex::new(vec![reader]),
            depth,
            wait,
        })
    }

    /// The mode actually in use.
    pub(crate) fn mode(&self) -> IoMode {
        match self {
            PageSource::Direct { .. } => IoMode::Direct,
            PageSource::Mmap(_) => IoMode::Mmap,
        }
    }

    /// How io_uring reads are waited for (`Sleep` for mmap, which does not
    /// wait for completions).
    pub(crate) fn wait(&self) -> IoWait {
        match self {
            PageSource::Direct { wait, .. } => *wait,
            PageSource::Mmap(_) => IoWait::Sleep,
        }
    }

    /// A session of page reads for one query: up to [`PageReads::depth`]
    /// reads in flight, refilled as pages arrive.
    pub(crate) fn reads(&self) -> Result<PageReads<'_>> {
        let kind = match self {
            PageSource::Mmap(map) => Session::Mmap {
                map,
                queued: Vec::new(),
            },
            PageSource::Direct {
                path,
                file,
                pool,
                depth,
                wait,
            } => {
                let taken = pool.lock().unwrap_or_else(|p| p.into_inner()).pop();
                let mut reader = match taken {
                    Some(r) => r,
                    None => UringReader::new(Arc::clone(file), *depth, *wait)
                        .map_err(|e| FormatError::io(path, e))?,
                };
                reader.lend();
                Session::Direct {
                    path,
                    pool,
                    reader: Some(reader),
                }
            }
        };
        Ok(PageReads { kind })
    }

    /// Reads the pages at `offsets` and calls `on_page(i, page)` for each as
    /// it arrives (in any order), where `i` indexes `offsets`.
    pub(crate) fn read(
        &self,
        offsets: &[u64],
        on_page: &mut dyn FnMut(usize, &[u8; PAGE_SIZE]) -> Result<()>,
    ) -> Result<()> {
        let mut reads = self.reads()?;
        let mut next = 0;
        while next < offsets.len() || reads.in_flight() > 0 {
            while next < offsets.len() && reads.in_flight() < reads.depth() {
                reads.submit(offsets[next], next as u64)?;
                next += 1;
            }
            reads.wait(&mut |tag, page| on_page(tag as usize, page))?;
        }
        Ok(())
    }
}

/// One query's page reads (see [`PageSource::reads`]). A direct reader goes
/// back to the segment's pool when this is dropped, after any reads still
/// in flight (a query that failed midway) have completed.
#[derive(Debug)]
pub(crate) struct PageReads<'a> {
    kind: Session<'a>,
}

#[derive(Debug)]
#[expect(
    clippy::large_enum_variant,
    reason = "one per query, on the stack; boxing the reader would allocate per query"
)]
enum Session<'a> {
    /// Submitted reads are served from the map when waited for.
    Mmap {
        map: &'a MappedFile,
        queued: Vec<(u64, u64)>,
    },
    Direct {
        path: &'a Path,
        pool: &'a Mutex<Vec<UringReader>>,
        /// Always `Some` until dropped.
        reader: Option<UringReader>,
    },
}

/// Reads at most in flight through the page cache: one query's worth.
const MMAP_DEPTH: usize = 256;

impl PageReads<'_> {
    /// Most reads in flight at once.
    pub(crate) fn depth(&self) -> usize {
        match &self.kind {
            Session::Mmap { .. } => MMAP_DEPTH,
            Session::Direct { reader, .. } => reader.as_ref().map_or(1, UringReader::depth),
        }
    }

    /// Reads submitted and not yet handed back.
    pub(crate) fn in_flight(&self) -> usize {
        match &self.kind {
            Session::Mmap { queued, .. } => queued.len(),
            Session::Direct { reader, .. } => reader.as_ref().map_or(0, UringReader::in_flight),
        }
    }

    /// Starts reading the page at `offset`; [`PageReads::wait`] hands it
    /// back with `tag`. At most [`PageReads::depth`] reads may be in flight.
    pub(crate) fn submit(&mut self, offset: u64, tag: u64) -> Result<()> {
        match &mut self.kind {
            Session::Mmap { queued, .. } => {
                queued.push((offset, tag));
                Ok(())
            }
            Session::Direct { path, reader, .. } => reader
                .as_mut()
                .map_or(Ok(()), |r| r.submit(offset, tag))
                .map_err(|e| FormatError::io(*path, e).into()),
        }
    }

    /// Starts the submitted reads now rather than at the next wait (a no-op
    /// for the page cache, whose reads happen at the wait). Returns the
    /// nanoseconds that handing them to the kernel took (0 for the page
    /// cache), for [`QueryStats::submit_nanos`](super::QueryStats::submit_nanos).
    pub(crate) fn flush(&mut self) -> Result<u64> {
        match &mut self.kind {
            Session::Mmap { .. } => Ok(0),
            Session::Direct { path, reader, .. } => {
                let Some(reader) = reader.as_mut() else {
                    return Ok(0);
                };
                let handing = std::time::Instant::now();
                reader.flush().map_err(|e| FormatError::io(*path, e))?;
                Ok(super::nanos_since(handing))
            }
        }
    }

    /// Waits until at least one submitted read is complete and calls
    /// `on_page(tag, page)` for each completed one; returns at once if none
    /// is in flight.
    pub(crate) fn wait(
        &mut self,
        on_page: &mut dyn FnMut(u64, &[u8; PAGE_SIZE]) -> Result<()>,
    ) -> Result<()> {
        match &mut self.kind {
            Session::Mmap { map, queued } => {
                for (offset, tag) in queued.drain(..) {
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
                    on_page(tag, page)?;
                }
                Ok(())
            }
            Session::Direct { path, reader, .. } => {
                let Some(reader) = reader.as_mut() else {
                    return Ok(());
                };
                reader.wait::<EngineError>(on_page).map_err(|e| match e {
                    EngineError::Io(source) => FormatError::io(*path, source).into(),
                    other => other,
                })
            }
        }
    }
}

impl Drop for PageReads<'_> {
    fn drop(&mut self) {
        if let Session::Direct { pool, reader, .. } = &mut self.kind
            && let Some(mut reader) = reader.take()
            && reader.drain().is_ok()
        {
            reader.give_back();
            pool.lock().unwrap_or_else(|p| p.into_inner()).push(reader);
        }
    }
}
