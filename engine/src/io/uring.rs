//! Batched `O_DIRECT` page reads through io_uring: the fast path of disk
//! search.
//!
//! One ring serves one searching thread at a time (rings are pooled by the
//! segment). A batch of page reads is submitted with one system call and
//! each page is handed to the caller as soon as it completes, so the caller's
//! work on the first pages overlaps the device's work on the rest.
//!
//! Invariant: while a read is in flight, its buffer page is neither read nor
//! reused; `read_batch` returns only after every submitted read completed.

use std::fs::File;
use std::io;
use std::os::fd::AsRawFd;
use std::sync::Arc;

use io_uring::{IoUring, opcode, types};
use omen_format::segment::layout::PAGE_SIZE;

use super::aligned::AlignedPages;

/// Receives each completed page: its index in the batch and its bytes.
pub type OnPage<'a, E> = dyn FnMut(usize, &[u8; PAGE_SIZE]) -> Result<(), E> + 'a;

/// Reads pages of one file through a private io_uring.
pub struct UringReader {
    ring: IoUring,
    file: Arc<File>,
    buffers: AlignedPages,
}

impl std::fmt::Debug for UringReader {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("UringReader")
            .field("depth", &self.buffers.pages())
            .finish_non_exhaustive()
    }
}

impl UringReader {
    /// A reader of `file` (opened with `O_DIRECT`) with `depth` reads in
    /// flight at most.
    pub fn new(file: Arc<File>, depth: usize) -> io::Result<Self> {
        let depth = depth.clamp(1, 256);
        let ring = IoUring::new(depth.next_power_of_two() as u32)?;
        Ok(UringReader {
            ring,
            file,
            buffers: AlignedPages::new(depth),
        })
    }

    /// Most reads one batch can hold.
    pub fn depth(&self) -> usize {
        self.buffers.pages()
    }

    /// Reads the pages at `offsets` (page-aligned, at most `depth()` of
    /// them) and calls `on_page(i, page)` for each, in completion order,
    /// where `i` indexes `offsets`.
    pub fn read_batch<E: From<io::Error>>(
        &mut self,
        offsets: &[u64],
        on_page: &mut OnPage<'_, E>,
    ) -> Result<(), E> {
        assert!(offsets.len() <= self.depth(), "batch larger than the ring");
        let fd = types::Fd(self.file.as_raw_fd());
        for (i, &offset) in offsets.iter().enumerate() {
            let entry = opcode::Read::new(fd, self.buffers.page_ptr(i), PAGE_SIZE as u32)
                .offset(offset)
                .build()
                .user_data(i as u64);
            // SAFETY: the buffer page `i` is owned by `self`, is PAGE_SIZE
            // bytes long, and is not touched until this read completes: the
            // loop below waits for every submitted read before returning, and
            // `&mut self` keeps anyone else from using the buffers meanwhile.
            unsafe { self.ring.submission().push(&entry) }
                .map_err(|_| io::Error::other("io_uring submission queue is full"))?;
        }
        let mut pending = offsets.len();
        let mut first_error: Option<E> = None;
        while pending > 0 {
            match self.ring.submit_and_wait(1) {
                Ok(_) => {}
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(e.into()),
            }
            let done: Vec<(usize, i32)> = self
                .ring
                .completion()
                .map(|c| (c.user_data() as usize, c.result()))
                .collect();
            for (i, result) in done {
                pending -= 1;
                if first_error.is_some() {
                    continue; // drain the rest before reporting
                }
                let outcome = if result < 0 {
                    Err(io::Error::from_raw_os_error(-result).into())
                } else if result as usize != PAGE_SIZE {
                    Err(io::Error::new(
                        io::ErrorKind::UnexpectedEof,
                        format!("short read of {result} bytes at offset {}", offsets[i]),
                    )
                    .into())
                } else {
                    on_page(i, self.buffers.page(i))
                };
                if let Err(e) = outcome {
                    first_error = Some(e);
                }
            }
        }
        first_error.map_or(Ok(()), Err)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;

    #[test]
    fn reads_a_batch_of_direct_pages() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("pages");
        let mut f = File::create(&path).unwrap();
        for p in 0..8u8 {
            f.write_all(&[p; PAGE_SIZE]).unwrap();
        }
        f.sync_all().unwrap();
        let file = std::fs::OpenOptions::new()
            .read(true)
            .custom_flags(libc::O_DIRECT)
            .open(&path)
            .unwrap();
        let mut reader = match UringReader::new(Arc::new(file), 4) {
            Ok(r) => r,
            // A kernel or sandbox that refuses io_uring is a supported
            // configuration (search falls back to mmap); anything else is a bug.
            Err(e) if matches!(e.raw_os_error(), Some(libc::ENOSYS | libc::EPERM)) => {
                eprintln!("skipping: io_uring is refused here ({e})");
                return;
            }
            Err(e) => panic!("io_uring setup failed: {e}"),
        };
        let offsets = [7 * 4096, 2 * 4096, 5 * 4096];
        let mut seen = Vec::new();
        reader
            .read_batch::<io::Error>(&offsets, &mut |i, page| {
                assert!(page.iter().all(|&b| u64::from(b) == offsets[i] / 4096));
                seen.push(i);
                Ok(())
            })
            .unwrap();
        seen.sort();
        assert_eq!(seen, [0, 1, 2]);
        // Reading past the end is an error, not a hang or a panic.
        let err = reader
            .read_batch::<io::Error>(&[8 * 4096], &mut |_, _| Ok(()))
            .unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::UnexpectedEof);
    }
}
