//! The storage seam: where a segment reader gets its bytes.
//!
//! The reader never assumes a real file. Tests and the fuzzer hand it bytes in
//! memory, and a fault-injecting source can fail or tear reads; production
//! reads use positioned reads on a [`std::fs::File`], which are safe to issue
//! from many threads at once because they carry their own offset.

use std::fs::File;
use std::io;
use std::os::unix::fs::FileExt;

/// A random-access, read-only byte source shared by reader threads.
pub trait ReadAt: Send + Sync {
    /// The total length in bytes.
    fn size(&self) -> io::Result<u64>;

    /// Fills `buf` from `offset`, or fails with `UnexpectedEof` if the source
    /// ends first.
    fn read_exact_at(&self, buf: &mut [u8], offset: u64) -> io::Result<()>;
}

impl ReadAt for File {
    fn size(&self) -> io::Result<u64> {
        Ok(self.metadata()?.len())
    }

    fn read_exact_at(&self, buf: &mut [u8], offset: u64) -> io::Result<()> {
        FileExt::read_exact_at(self, buf, offset)
    }
}

impl ReadAt for Vec<u8> {
    fn size(&self) -> io::Result<u64> {
        Ok(self.len() as u64)
    }

    fn read_exact_at(&self, buf: &mut [u8], offset: u64) -> io::Result<()> {
        self.as_slice().read_exact_at(buf, offset)
    }
}

impl ReadAt for &[u8] {
    fn size(&self) -> io::Result<u64> {
        Ok(self.len() as u64)
    }

    fn read_exact_at(&self, buf: &mut [u8], offset: u64) -> io::Result<()> {
        let eof = || {
            io::Error::new(
                io::ErrorKind::UnexpectedEof,
                "read past the end of the source",
            )
        };
        let start = usize::try_from(offset).map_err(|_| eof())?;
        let end = start.checked_add(buf.len()).ok_or_else(eof)?;
        let src = self.get(start..end).ok_or_else(eof)?;
        buf.copy_from_slice(src);
        Ok(())
    }
}
