//! `O_DIRECT` page reads through io_uring: the fast path of disk search.
//!
//! One ring serves one searching thread at a time (rings are pooled by the
//! segment). The caller keeps up to `depth()` reads in flight: it submits
//! reads one by one, each with a tag, and waits for at least one to
//! complete, getting every completed page with its tag. A search can so
//! refill the queue as soon as one page arrives instead of waiting for a
//! whole batch (PipeANN's observation: the device is idle while the slowest
//! read of a batch finishes).
//!
//! A reader sleeps in the kernel while it waits, or spins ([`IoWait`]).
//!
//! Invariant: while a read is in flight its buffer page is neither handed
//! out nor reused, and the reader is never dropped with reads in flight
//! (`Drop` waits for them), so the kernel never writes into memory that the
//! program uses for something else.

use std::fs::File;
use std::io;
use std::os::fd::AsRawFd;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use io_uring::{IoUring, opcode, types};
use omen_format::segment::layout::PAGE_SIZE;

use super::IoWait;
use super::aligned::AlignedPages;

/// How long a spinning wait spins before it sleeps in the kernel after all:
/// far beyond a healthy read (50–100 µs), so spinning only gives up on a
/// device that has stalled, where sleeping costs nothing extra.
pub const SPIN_LIMIT: Duration = Duration::from_millis(2);

/// Spinning readers of this process that are lent to a query right now.
static LENT_SPINNERS: AtomicUsize = AtomicUsize::new(0);

/// Whether a spinning reader may spin now: only while every query that
/// could spin has a core of its own. With more, a spinner takes the core
/// of a thread that has work (4 threads on 2 cores, spinning always: 9–13%
/// fewer queries per second than sleeping, and p95 latency 2× worse).
fn cores_to_spare() -> bool {
    static CORES: OnceLock<usize> = OnceLock::new();
    let cores = *CORES.get_or_init(|| std::thread::available_parallelism().map_or(1, usize::from));
    LENT_SPINNERS.load(Ordering::Relaxed) <= cores
}

/// Receives each completed page: its tag and its bytes.
pub type OnPage<'a, E> = dyn FnMut(u64, &[u8; PAGE_SIZE]) -> Result<(), E> + 'a;

/// Reads pages of one file through a private io_uring.
pub struct UringReader {
    ring: IoUring,
    file: Arc<File>,
    buffers: AlignedPages,
    /// Buffer pages with no read in flight.
    free: Vec<usize>,
    /// Per buffer page: the tag and offset of its read in flight.
    reads: Vec<(u64, u64)>,
    /// Spin on the completion queue rather than sleep (see [`IoWait`]).
    spin: bool,
    /// Counted in `LENT_SPINNERS` (see [`UringReader::lend`]).
    lent: bool,
}

impl std::fmt::Debug for UringReader {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("UringReader")
            .field("depth", &self.buffers.pages())
            .field("in_flight", &self.in_flight())
            .finish_non_exhaustive()
    }
}

impl UringReader {
    /// A reader of `file` (opened with `O_DIRECT`) with `depth` reads in
    /// flight at most, waiting for them as `wait` says.
    pub fn new(file: Arc<File>, depth: usize, wait: IoWait) -> io::Result<Self> {
        let depth = depth.clamp(1, 256);
        let ring = IoUring::new(depth.next_power_of_two() as u32)?;
        Ok(UringReader {
            ring,
            spin: wait == IoWait::Spin,
            lent: false,
            file,
            buffers: AlignedPages::new(depth),
            free: (0..depth).rev().collect(),
            reads: vec![(0, 0); depth],
        })
    }

    /// Marks the reader as serving a query until [`UringReader::give_back`]
    /// (or its drop): a spinning reader spins only while the process has a
    /// core for each spinning reader so marked.
    pub fn lend(&mut self) {
        if self.spin && !self.lent {
            self.lent = true;
            LENT_SPINNERS.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// Ends [`UringReader::lend`].
    pub fn give_back(&mut self) {
        if self.lent {
            self.lent = false;
            LENT_SPINNERS.fetch_sub(1, Ordering::Relaxed);
        }
    }

    /// Most reads in flight at once.
    pub fn depth(&self) -> usize {
        self.buffers.pages()
    }

    /// Reads submitted and not yet handed back by [`UringReader::wait`].
    pub fn in_flight(&self) -> usize {
        self.depth() - self.free.len()
    }

    /// Queues a read of the page at `offset` (page-aligned), handed back
    /// with `tag` by a later [`UringReader::wait`], which also submits it.
    /// Fails if `depth()` reads are already in flight.
    pub fn submit(&mut self, offset: u64, tag: u64) -> io::Result<()> {
        let slot = self
            .free
            .pop()
            .ok_or_else(|| io::Error::other("every io_uring buffer has a read in flight"))?;
        let fd = types::Fd(self.file.as_raw_fd());
        let entry = opcode::Read::new(fd, self.buffers.page_ptr(slot), PAGE_SIZE as u32)
            .offset(offset)
            .build()
            .user_data(slot as u64);
        // SAFETY: buffer page `slot` is owned by `self`, is PAGE_SIZE bytes
        // long, and was free: nothing reads or reuses it until its
        // completion is reaped in `wait` (which only then frees it), and
        // `Drop` reaps every read before the buffers are freed.
        if unsafe { self.ring.submission().push(&entry) }.is_err() {
            self.free.push(slot);
            return Err(io::Error::other("io_uring submission queue is full"));
        }
        self.reads[slot] = (tag, offset);
        Ok(())
    }

    /// Hands the queued reads to the kernel without waiting, so the device
    /// works on them while the caller computes.
    pub fn flush(&mut self) -> io::Result<()> {
        self.enter(0)
    }

    /// Submits the queued reads and waits for `want` completions, retrying
    /// when a signal interrupts the call.
    fn enter(&mut self, want: usize) -> io::Result<()> {
        loop {
            match self.ring.submit_and_wait(want) {
                Ok(_) => return Ok(()),
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(e),
            }
        }
    }

    /// Submits the queued reads, waits until at least one read is complete
    /// and calls `on_page(tag, page)` for every completed read, in
    /// completion order. Returns at once if nothing is in flight. On an
    /// error (the read's or `on_page`'s) the other completed reads are
    /// still reaped, and the first error is returned.
    pub fn wait<E: From<io::Error>>(&mut self, on_page: &mut OnPage<'_, E>) -> Result<(), E> {
        if self.in_flight() == 0 {
            return Ok(());
        }
        if !(self.spin && cores_to_spare() && self.spin_for_completion()?) {
            self.enter(1)?;
        }
        let mut first_error: Option<E> = None;
        // Collected first: the completion queue borrows the ring.
        let mut done = [(0usize, 0i32); 64];
        loop {
            let mut n = 0;
            for c in self.ring.completion().take(done.len()) {
                done[n] = (c.user_data() as usize, c.result());
                n += 1;
            }
            if n == 0 {
                break;
            }
            for &(slot, result) in &done[..n] {
                let (tag, offset) = self.reads[slot];
                let outcome = if result < 0 {
                    Err(io::Error::from_raw_os_error(-result).into())
                } else if result as usize != PAGE_SIZE {
                    Err(io::Error::new(
                        io::ErrorKind::UnexpectedEof,
                        format!("short read of {result} bytes at offset {offset}"),
                    )
                    .into())
                } else if first_error.is_some() {
                    Ok(())
                } else {
                    on_page(tag, self.buffers.page(slot))
                };
                self.free.push(slot);
                if let Err(e) = outcome {
                    first_error.get_or_insert(e);
                }
            }
        }
        first_error.map_or(Ok(()), Err)
    }

    /// Submits the queued reads and spins until a completion is posted;
    /// false if none was within [`SPIN_LIMIT`]. (Completions are posted
    /// while the thread runs in user space: the ring is set up without
    /// `COOP_TASKRUN`, so the kernel interrupts the thread to post them.)
    fn spin_for_completion(&mut self) -> io::Result<bool> {
        // Without a polling kernel thread every enter is a system call,
        // even with nothing to submit: most waits follow a `flush`.
        if !self.ring.submission().is_empty() {
            self.enter(0)?;
        }
        let start = Instant::now();
        loop {
            for _ in 0..64 {
                if !self.ring.completion().is_empty() {
                    return Ok(true);
                }
                std::hint::spin_loop();
            }
            if start.elapsed() > SPIN_LIMIT {
                return Ok(false);
            }
        }
    }

    /// Waits for every read in flight and discards the pages (and any read
    /// errors). Fails only if the ring itself fails, with reads still in
    /// flight.
    pub fn drain(&mut self) -> io::Result<()> {
        while self.in_flight() > 0 {
            let before = self.in_flight();
            let waited = self.wait::<io::Error>(&mut |_, _| Ok(()));
            if waited.is_err() && self.in_flight() == before {
                return waited;
            }
        }
        Ok(())
    }
}

impl Drop for UringReader {
    fn drop(&mut self) {
        self.give_back();
        if self.drain().is_err() {
            // A read that could not be reaped may still be written by the
            // kernel: leak the buffers rather than free them under it.
            std::mem::forget(std::mem::replace(&mut self.buffers, AlignedPages::new(1)));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;

    /// Spinning stops once more spinning readers are lent to queries than
    /// the process has cores, and resumes as they come back, whether given
    /// back or dropped; sleeping readers are not counted. (The only test
    /// of this binary that lends spinning readers, so the count is its own.)
    #[test]
    fn spinning_readers_spin_only_while_each_has_a_core() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("pages");
        std::fs::write(&path, [0u8; PAGE_SIZE]).unwrap();
        let file = Arc::new(File::open(&path).unwrap());
        let reader = |wait| match UringReader::new(Arc::clone(&file), 2, wait) {
            Ok(r) => Some(r),
            Err(e) if matches!(e.raw_os_error(), Some(libc::ENOSYS | libc::EPERM)) => None,
            Err(e) => panic!("io_uring setup failed: {e}"),
        };
        let cores = std::thread::available_parallelism().map_or(1, usize::from);
        let Some(mut sleeper) = reader(IoWait::Sleep) else {
            eprintln!("skipping: io_uring is refused here");
            return;
        };
        sleeper.lend();
        let mut spinners: Vec<UringReader> =
            (0..cores).map(|_| reader(IoWait::Spin).unwrap()).collect();
        for r in &mut spinners {
            r.lend();
            // Lending twice counts once.
            r.lend();
        }
        assert!(cores_to_spare(), "one spinner per core, plus a sleeper");
        let mut extra = reader(IoWait::Spin).unwrap();
        extra.lend();
        assert!(!cores_to_spare(), "{} spinners on {cores} cores", cores + 1);
        extra.give_back();
        assert!(cores_to_spare());
        extra.lend();
        assert!(!cores_to_spare());
        drop(extra);
        assert!(cores_to_spare());
        for r in &mut spinners {
            r.give_back();
        }
        assert_eq!(LENT_SPINNERS.load(Ordering::Relaxed), 0);
    }

    #[test]
    fn reads_direct_pages_with_tags() {
        for wait in [IoWait::Sleep, IoWait::Spin] {
            reads_direct_pages_with_tags_when(wait);
        }
    }

    fn reads_direct_pages_with_tags_when(wait: IoWait) {
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
        let mut reader = match UringReader::new(Arc::new(file), 4, wait) {
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
        for (i, &offset) in offsets.iter().enumerate() {
            reader.submit(offset, i as u64).unwrap();
        }
        assert_eq!(reader.in_flight(), 3);
        // A full ring refuses another read instead of reusing a buffer.
        reader.submit(0, 9).unwrap();
        assert!(reader.submit(4096, 10).is_err());
        let mut seen = Vec::new();
        while reader.in_flight() > 0 {
            reader
                .wait::<io::Error>(&mut |tag, page| {
                    let expect = offsets.get(tag as usize).map_or(0, |o| o / 4096);
                    assert!(page.iter().all(|&b| u64::from(b) == expect));
                    seen.push(tag);
                    Ok(())
                })
                .unwrap();
        }
        seen.sort();
        assert_eq!(seen, [0, 1, 2, 9]);
        // Reading past the end is an error, not a hang or a panic, and
        // frees its buffer.
        reader.submit(8 * 4096, 0).unwrap();
        let err = reader.wait::<io::Error>(&mut |_, _| Ok(())).unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::UnexpectedEof);
        assert_eq!(reader.in_flight(), 0);
        // Dropping a reader with reads in flight waits for them.
        reader.submit(3 * 4096, 0).unwrap();
        drop(reader);
    }
}
