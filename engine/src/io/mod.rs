//! How search reads node pages from a segment file: io_uring with `O_DIRECT`
//! where the kernel allows it, the page cache through mmap where it does not.
//!
//! The choice is made once per segment at open ([`IoMode::Auto`]) and logged,
//! because it changes performance by an order of magnitude and users need to
//! know which one they are measuring.

mod aligned;
mod uring;

use std::fmt;

pub use aligned::AlignedPages;
pub use uring::UringReader;

/// Which page-reading path a segment uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum IoMode {
    /// io_uring with `O_DIRECT` if available, otherwise mmap.
    #[default]
    Auto,
    /// Batched `O_DIRECT` reads through io_uring; bypasses the page cache.
    Direct,
    /// Reads through a memory map and the page cache.
    Mmap,
}

impl fmt::Display for IoMode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            IoMode::Auto => "auto",
            IoMode::Direct => "io_uring+O_DIRECT",
            IoMode::Mmap => "mmap",
        })
    }
}

impl std::str::FromStr for IoMode {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "auto" => Ok(IoMode::Auto),
            "direct" | "uring" | "io_uring" => Ok(IoMode::Direct),
            "mmap" => Ok(IoMode::Mmap),
            other => Err(format!(
                "unknown I/O mode {other:?}; expected auto, direct or mmap"
            )),
        }
    }
}
