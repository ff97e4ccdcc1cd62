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
pub use uring::{SPIN_LIMIT, UringReader};

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

/// How an io_uring reader waits for its reads: the trade between a query's
/// latency and the CPU it burns.
///
/// A query waits for the device 7–9 times (`QueryStats::rounds`). Each
/// sleeping wait costs a sleep in the kernel and a wake-up, which on the
/// virtual machines measured added 10–20 µs to a 50 µs read; spinning
/// saves them by keeping the searching thread's core busy while it waits.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum IoWait {
    /// Sleep in the kernel until a read completes: no CPU spent waiting.
    /// Right when queries keep every core busy.
    #[default]
    Sleep,
    /// Spin on the completion queue (for up to
    /// [`SPIN_LIMIT`](uring::SPIN_LIMIT), then sleep after all) while the
    /// process has a core for every query that spins, and sleep otherwise:
    /// lower latency while cores are idle, for a busy core per query.
    Spin,
}

impl fmt::Display for IoWait {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            IoWait::Sleep => "sleep",
            IoWait::Spin => "spin",
        })
    }
}

impl std::str::FromStr for IoWait {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "sleep" => Ok(IoWait::Sleep),
            "spin" => Ok(IoWait::Spin),
            other => Err(format!(
                "unknown I/O wait {other:?}; expected sleep or spin"
            )),
        }
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
