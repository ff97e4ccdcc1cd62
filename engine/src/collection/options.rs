//! How a collection trades durability, memory and background work.

use std::time::Duration;

use crate::index::{BuildOptions, SegmentOptions};

/// When an acknowledged write is durable.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Durability {
    /// The WAL is fsynced (fdatasync) before a commit is acknowledged;
    /// concurrent commits share one fsync (group commit). An acknowledged
    /// write survives a process crash and a power failure.
    PerCommit,
    /// The WAL is written (to the OS) before a commit is acknowledged and
    /// fsynced at most `interval` later. An acknowledged write survives a
    /// process crash (SIGKILL); a power failure or kernel crash can lose the
    /// writes of the last `interval`, never a prefix with a hole in it.
    Interval(Duration),
}

/// Tuning of one open collection. The defaults suit 128-d vectors.
#[derive(Debug, Clone)]
pub struct CollectionOptions {
    pub durability: Durability,
    /// Rows in the memtable before it is frozen and flushed to a segment.
    pub memtable_rows: usize,
    /// Write stall: writers wait while this many frozen memtables await
    /// their flush.
    pub max_frozen_memtables: usize,
    /// Run size-tiered compaction in the background.
    pub auto_compact: bool,
    /// Segments of one tier merged together (size-tiered fan-in).
    pub compaction_fanout: usize,
    /// A segment with at least this fraction of tombstoned rows is
    /// rewritten on its own.
    pub compaction_dead_fraction: f64,
    /// Write stall: writers wait while the collection has this many
    /// segments (compaction has fallen behind). Only with `auto_compact`.
    pub max_segments: usize,
    /// How flushes and compactions build segments.
    pub build: BuildOptions,
    /// How segments are opened.
    pub segment: SegmentOptions,
}

impl Default for CollectionOptions {
    fn default() -> Self {
        CollectionOptions {
            durability: Durability::PerCommit,
            memtable_rows: 100_000,
            max_frozen_memtables: 2,
            auto_compact: true,
            compaction_fanout: 4,
            compaction_dead_fraction: 0.3,
            max_segments: 24,
            build: BuildOptions {
                memory_budget: 1 << 30,
                ..BuildOptions::default()
            },
            segment: SegmentOptions::default(),
        }
    }
}
