//! Group commit: concurrent writers share one WAL `write` and one fsync.
//!
//! A writer queues its batch. If no leader is running, it becomes the
//! leader: it takes every queued batch, checks them against the current
//! state (duplicate keys for `insert`), logs them as one append, makes the
//! append as durable as the mode promises, applies them to the memtable in
//! log order and publishes each writer's result. Writers that queued while
//! a leader worked wait and form the next group. A batch is visible to
//! searches only once it is durable, and acknowledged only after that.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use omen_format::collection::wal::encode_record;
use omen_format::collection::{RowBatch, WalOp, WalRecord};

use super::memtable::Memtable;
use super::{Durability, Inner, WalWriter, lock};
use crate::{EngineError, Result};

/// One queued request.
#[derive(Debug)]
pub(crate) enum Write {
    Insert(RowBatch),
    Upsert(RowBatch),
    Delete(Vec<u64>),
    /// Freeze the memtable (an explicit flush).
    Freeze,
}

#[derive(Debug)]
struct Pending {
    ticket: u64,
    write: Write,
}

/// The queue of writers waiting for a group commit.
#[derive(Debug, Default)]
pub(crate) struct CommitQueue {
    pending: Vec<Pending>,
    leader: bool,
    next_ticket: u64,
    done: HashMap<u64, Result<u64>>,
    last_sync: Option<Instant>,
}

impl Inner {
    /// Queues `write` and returns its sequence number once acknowledged.
    pub(crate) fn commit(&self, write: Write) -> Result<u64> {
        let mut q = lock(&self.queue);
        let ticket = q.next_ticket;
        q.next_ticket += 1;
        q.pending.push(Pending { ticket, write });
        loop {
            if let Some(result) = q.done.remove(&ticket) {
                return result;
            }
            if !q.leader {
                q.leader = true;
                let group = std::mem::take(&mut q.pending);
                let last_sync = q.last_sync;
                drop(q);
                let (results, synced) = self.commit_group(group, last_sync);
                q = lock(&self.queue);
                if synced {
                    q.last_sync = Some(Instant::now());
                }
                q.done.extend(results);
                q.leader = false;
                self.queue_cv.notify_all();
                continue;
            }
            q = self.queue_cv.wait(q).unwrap_or_else(|p| p.into_inner());
        }
    }

    /// Leader only. Returns each ticket's result and whether it fsynced.
    fn commit_group(
        &self,
        group: Vec<Pending>,
        last_sync: Option<Instant>,
    ) -> (Vec<(u64, Result<u64>)>, bool) {
        let fail_all = |group: &[Pending], e: &EngineError| {
            group
                .iter()
                .map(|p| (p.ticket, Err(EngineError::Unavailable(e.to_string()))))
                .collect()
        };
        if let Err(e) = self.wait_for_room() {
            return (fail_all(&group, &e), false);
        }
        let freeze_requested = group.iter().any(|p| matches!(p.write, Write::Freeze));
        let too_big = {
            let active = self.active.read().unwrap_or_else(|p| p.into_inner());
            active.appended_rows() >= self.options.memtable_rows
        };
        if (freeze_requested || too_big)
            && let Err(e) = self.freeze()
        {
            return (fail_all(&group, &e), false);
        }

        // Check and log.
        let version = Arc::clone(&self.version.read().unwrap_or_else(|p| p.into_inner()));
        let mut results = Vec::with_capacity(group.len());
        let mut logged: Vec<(u64, u64, WalOp)> = Vec::new();
        let mut bytes = Vec::new();
        {
            let active = self.active.read().unwrap_or_else(|p| p.into_inner());
            // Liveness changes made by earlier batches of this group.
            let mut group_live: HashMap<u64, bool> = HashMap::new();
            for p in group {
                let op = match p.write {
                    Write::Freeze => {
                        results.push((p.ticket, Ok(0)));
                        continue;
                    }
                    Write::Insert(batch) => {
                        let mut seen = HashMap::new();
                        let dup = batch.ids.iter().copied().find(|&id| {
                            seen.insert(id, ()).is_some()
                                || group_live
                                    .get(&id)
                                    .copied()
                                    .unwrap_or_else(|| self.is_live(&active, &version, id))
                        });
                        if let Some(id) = dup {
                            results.push((p.ticket, Err(EngineError::Duplicate { id })));
                            continue;
                        }
                        WalOp::Upsert(batch)
                    }
                    Write::Upsert(batch) => WalOp::Upsert(batch),
                    Write::Delete(ids) => WalOp::Delete(ids),
                };
                match &op {
                    WalOp::Upsert(b) => group_live.extend(b.ids.iter().map(|&id| (id, true))),
                    WalOp::Delete(ids) => group_live.extend(ids.iter().map(|&id| (id, false))),
                }
                let lsn = self.next_lsn.fetch_add(1, Ordering::AcqRel);
                let record = WalRecord { lsn, op };
                encode_record(&record, &mut bytes);
                logged.push((p.ticket, lsn, record.op));
            }
        }
        if logged.is_empty() {
            return (results, false);
        }

        // Make durable.
        let synced = {
            let mut wal = lock(&self.wal);
            if super::failpoint_armed("wal-torn") {
                // Crash test: half a group reaches the file, then the
                // process stops (and is killed) mid-append.
                let _ = wal.append(&bytes[..bytes.len() / 2]);
                let _ = wal.sync();
                super::failpoint_armed_stop("wal-torn");
            }
            let written = wal.append(&bytes);
            let sync = match self.options.durability {
                Durability::PerCommit => true,
                Durability::Interval(every) => last_sync.is_none_or(|t| t.elapsed() >= every),
            };
            let done = written.and_then(|()| if sync { wal.sync() } else { Ok(()) });
            if let Err(e) = done {
                // The log may now hold records whose writers hear of a
                // failure: refuse all further writes rather than risk
                // acknowledging on top of a damaged log.
                let msg = format!("WAL append failed: {e}");
                lock(&self.background).error.get_or_insert(msg);
                let e = self.background_error().unwrap_or(e);
                results.extend(
                    logged
                        .iter()
                        .map(|(t, _, _)| (*t, Err(EngineError::Unavailable(e.to_string())))),
                );
                return (results, false);
            }
            sync
        };

        // Apply, in log order, and acknowledge.
        {
            let mut active = self.active.write().unwrap_or_else(|p| p.into_inner());
            for (ticket, lsn, op) in logged {
                apply(&mut active, lsn, &op);
                results.push((ticket, Ok(lsn)));
            }
        }
        (results, synced)
    }

    /// Write stall: waits while frozen memtables or segments pile up
    /// faster than the flusher or compactor retire them.
    fn wait_for_room(&self) -> Result<()> {
        let mut bg = lock(&self.background);
        loop {
            if let Some(e) = &bg.error {
                return Err(EngineError::Unavailable(format!(
                    "a background flush or compaction failed: {e}"
                )));
            }
            if bg.shutdown {
                return Err(EngineError::Unavailable("the collection is closing".into()));
            }
            let version = Arc::clone(&self.version.read().unwrap_or_else(|p| p.into_inner()));
            let frozen_full = version.frozen.len() >= self.options.max_frozen_memtables;
            let segments_full =
                self.options.auto_compact && version.segments.len() >= self.options.max_segments;
            if !frozen_full && !segments_full {
                return Ok(());
            }
            bg = self
                .stall_cv
                .wait_timeout(bg, Duration::from_millis(100))
                .unwrap_or_else(|p| p.into_inner())
                .0;
        }
    }

    /// Leader only: moves the active memtable to the frozen list and starts
    /// a new WAL file for its successor.
    pub(crate) fn freeze(&self) -> Result<()> {
        let mut wal = lock(&self.wal);
        if self
            .active
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .is_empty()
        {
            return Ok(());
        }
        // Older WAL files must be whole: recovery accepts a torn record
        // only in the newest file.
        wal.sync()?;
        let next = WalWriter::create(&self.dir, wal.number + 1)?;
        let number = next.number;
        *wal = next;
        let mut active = self.active.write().unwrap_or_else(|p| p.into_inner());
        let mut version = self.version.write().unwrap_or_else(|p| p.into_inner());
        let fresh = Memtable::new(self.schema.dimension, self.schema.columns.len(), number);
        let old = std::mem::replace(&mut *active, fresh);
        let mut next_version = (**version).clone();
        next_version.frozen.push(Arc::new(old));
        *version = Arc::new(next_version);
        drop((version, active, wal));
        self.work_cv.notify_all();
        Ok(())
    }

    /// Fsyncs the WAL if the interval mode left it unsynced.
    pub(crate) fn sync_wal(&self) -> Result<()> {
        lock(&self.wal).sync()?;
        lock(&self.queue).last_sync = Some(Instant::now());
        Ok(())
    }
}

/// Applies a logged operation to a memtable.
pub(crate) fn apply(memtable: &mut Memtable, lsn: u64, op: &WalOp) {
    match op {
        WalOp::Upsert(batch) => memtable.upsert(batch, lsn),
        WalOp::Delete(ids) => memtable.delete(ids, lsn),
    }
}
