//! Size-tiered compaction (SPEC.md §8.7).
//!
//! A flushed segment is tier 0; merging `fanout` segments of tier `t`
//! gives one of tier `t + 1`. A segment whose tombstoned fraction reaches
//! `compaction_dead_fraction` is rewritten alone. Merging drops tombstoned
//! rows and rebuilds the graph with `build_segment`, which keeps within the
//! build's memory budget: the live rows are first spilled to a temporary
//! file, read back with `pread`, never held in RAM whole.
//!
//! Readers and writers never wait for a compaction: it reads segments that
//! are immutable, and it publishes its result with one manifest swap under
//! the manifest lock, taking over the tombstones that flushes added to its
//! inputs while it worked.

use std::collections::HashSet;
use std::fs::File;
use std::io::{BufWriter, Write as _};
use std::os::unix::fs::FileExt;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use omen_format::FormatError;
use omen_format::collection::{
    IdSetKind, MANIFEST_FILE, SegmentRecord, tombstone_file_name, write_id_set,
};

use super::flush::{SegmentShape, remove_quietly};
use super::options::CollectionOptions;
use super::snapshot::{SegmentView, Version};
use super::{Inner, failpoint, lock};
use crate::index::BuildRows;
use crate::{EngineError, Result};

/// One compaction the policy chose.
#[derive(Debug, Clone)]
pub(crate) struct Plan {
    pub(crate) inputs: Vec<u64>,
    pub(crate) output_tier: u32,
    pub(crate) reason: &'static str,
}

impl Plan {
    pub(crate) fn describe(&self) -> String {
        format!(
            "{} segment(s) {:?} -> tier {} ({})",
            self.inputs.len(),
            self.inputs,
            self.output_tier,
            self.reason
        )
    }
}

/// What the policy would compact next among `segments`, if anything.
pub(crate) fn pick(segments: &[SegmentRecord], options: &CollectionOptions) -> Option<Plan> {
    let fanout = options.compaction_fanout.max(2);
    let max_tier = segments.iter().map(|s| s.tier).max()?;
    for tier in 0..=max_tier {
        let at: Vec<u64> = segments
            .iter()
            .filter(|s| s.tier == tier)
            .map(|s| s.id)
            .take(fanout)
            .collect();
        if at.len() >= fanout {
            return Some(Plan {
                inputs: at,
                output_tier: tier + 1,
                reason: "tier full",
            });
        }
    }
    segments
        .iter()
        .find(|s| {
            s.tombstones > 0
                && s.tombstones as f64 >= options.compaction_dead_fraction * s.vectors as f64
        })
        .map(|s| Plan {
            inputs: vec![s.id],
            output_tier: s.tier,
            reason: "tombstones",
        })
}

/// The live rows of the inputs, spilled to a file: what the build reads.
struct Spill {
    path: PathBuf,
    file: File,
    dim: usize,
    ids: Vec<u64>,
}

impl BuildRows<f32> for Spill {
    fn len(&self) -> usize {
        self.ids.len()
    }
    fn dim(&self) -> usize {
        self.dim
    }
    fn read_rows(&self, first: usize, out: &mut [f32]) -> Result<()> {
        let mut bytes = vec![0u8; out.len() * 4];
        self.file
            .read_exact_at(&mut bytes, (first * self.dim * 4) as u64)
            .map_err(|e| FormatError::io(&self.path, e))?;
        for (o, b) in out.iter_mut().zip(bytes.chunks_exact(4)) {
            *o = f32::from_le_bytes([b[0], b[1], b[2], b[3]]);
        }
        Ok(())
    }
    fn id(&self, row: usize) -> u64 {
        self.ids.get(row).copied().unwrap_or(u64::MAX)
    }
    fn describe(&self) -> String {
        self.path.display().to_string()
    }
}

impl Drop for Spill {
    fn drop(&mut self) {
        remove_quietly(&self.path);
    }
}

impl Inner {
    /// The compactor thread.
    pub(crate) fn compaction_loop(&self) {
        loop {
            {
                let bg = lock(&self.background);
                if bg.shutdown || bg.error.is_some() {
                    return;
                }
                let _ = self
                    .work_cv
                    .wait_timeout(bg, Duration::from_millis(200))
                    .unwrap_or_else(|p| p.into_inner());
            }
            loop {
                if lock(&self.background).shutdown {
                    return;
                }
                match self.compact_once() {
                    Ok(true) => continue,
                    Ok(false) => break,
                    Err(e) => {
                        self.fail(format!("compaction failed: {e}"));
                        return;
                    }
                }
            }
        }
    }

    /// Runs the compaction the policy picks; false if there was none.
    pub(crate) fn compact_once(&self) -> Result<bool> {
        // One compaction at a time (the API's compact() and the thread).
        let _running = lock(&self.compaction_lock);
        let version = Arc::clone(&self.version.read().unwrap_or_else(|p| p.into_inner()));
        let records: Vec<SegmentRecord> = version.segments.iter().map(|s| s.record).collect();
        let Some(plan) = pick(&records, &self.options) else {
            return Ok(false);
        };
        lock(&self.background).compacting = Some(plan.describe());
        let result = self.compact(&version, &plan);
        lock(&self.background).compacting = None;
        result.map(|()| true)
    }

    fn compact(&self, version: &Version, plan: &Plan) -> Result<()> {
        let inputs: Vec<SegmentView> = version
            .segments
            .iter()
            .filter(|s| plan.inputs.contains(&s.record.id))
            .cloned()
            .collect();
        let id = self.next_segment_id.fetch_add(1, Ordering::AcqRel);

        // 1. Spill the live rows (tombstones as of now).
        let path = self.dir.join(format!("compact-{id:020}.rows.tmp"));
        let file = File::options()
            .create(true)
            .truncate(true)
            .read(true)
            .write(true)
            .open(&path)
            .map_err(|e| FormatError::io(&path, e))?;
        let mut spill = Spill {
            path: path.clone(),
            file,
            dim: self.schema.dimension,
            ids: Vec::new(),
        };
        let ncols = self.schema.columns.len();
        let mut values: Vec<omen_format::Value> = Vec::new();
        {
            let mut out = BufWriter::with_capacity(1 << 20, &spill.file);
            for s in &inputs {
                let columns = s.files.attribute_columns(ncols)?;
                s.files.segment.scan_rows(|row, rid, v| {
                    if !s.tombstones.contains(&rid) {
                        super::snapshot::push_values(&columns, row, ncols, &mut values);
                        for x in v {
                            out.write_all(&x.to_le_bytes())
                                .map_err(|e| FormatError::io(&path, e))?;
                        }
                        spill.ids.push(rid);
                    }
                    Ok(())
                })?;
            }
            out.flush().map_err(|e| FormatError::io(&path, e))?;
        }
        let mut sorted = spill.ids.clone();
        sorted.sort_unstable();
        if sorted.windows(2).any(|w| w[0] == w[1]) {
            return Err(EngineError::Unavailable(format!(
                "compaction of segments {:?} found an id live in two of them",
                plan.inputs
            )));
        }

        // 2. Build the merged segment (nothing to build if all rows died).
        let files = if sorted.is_empty() {
            None
        } else {
            let attributes = self.attribute_columns(values.chunks(ncols.max(1)))?;
            Some(self.write_segment(id, &spill, &sorted, attributes, SegmentShape::Graph)?)
        };
        drop(spill);
        failpoint("compaction-built");

        // 3. Publish, taking over tombstones added meanwhile.
        let mut manifest = lock(&self.manifest);
        let current = Arc::clone(&self.version.read().unwrap_or_else(|p| p.into_inner()));
        let mut next = manifest.clone();
        next.generation += 1;
        let mut late: Vec<u64> = Vec::new();
        let mut retired_tombs = Vec::new();
        let mut max_lsn = 0;
        for old in &inputs {
            let now = current
                .segments
                .iter()
                .find(|s| s.record.id == old.record.id)
                .ok_or_else(|| {
                    EngineError::Unavailable(format!(
                        "segment {} vanished during its compaction",
                        old.record.id
                    ))
                })?;
            late.extend(now.tombstones.difference(&old.tombstones));
            if now.record.tombstone_generation != 0 {
                retired_tombs.push(tombstone_file_name(
                    now.record.id,
                    now.record.tombstone_generation,
                ));
            }
            max_lsn = max_lsn.max(now.record.max_lsn);
        }
        let mut segments: Vec<SegmentView> = current
            .segments
            .iter()
            .filter(|s| !plan.inputs.contains(&s.record.id))
            .cloned()
            .collect();
        if let Some(files) = files {
            late.sort_unstable();
            late.dedup();
            let tombstones: HashSet<u64> = late.iter().copied().collect();
            let generation = if late.is_empty() {
                0
            } else {
                write_id_set(
                    &self.dir.join(tombstone_file_name(id, next.generation)),
                    IdSetKind::Tombstones,
                    &late,
                )?;
                next.generation
            };
            segments.push(SegmentView {
                record: SegmentRecord {
                    id,
                    vectors: files.ids.len() as u64,
                    tier: plan.output_tier,
                    tombstone_generation: generation,
                    tombstones: late.len() as u64,
                    max_lsn,
                },
                files,
                tombstones: Arc::new(tombstones),
            });
        }
        next.segments = segments.iter().map(|s| s.record).collect();
        next.next_segment_id = self.next_segment_id.load(Ordering::Acquire);
        next.compactions += 1;
        failpoint("compaction-swap");
        next.write(&self.dir.join(MANIFEST_FILE))?;
        failpoint("compaction-swapped");
        *manifest = next;
        {
            let mut v = self.version.write().unwrap_or_else(|p| p.into_inner());
            let mut nv = (**v).clone();
            nv.segments = segments;
            *v = Arc::new(nv);
        }
        drop(manifest);
        // Files go when the last pinned reader lets go.
        for s in &inputs {
            s.files.retire();
        }
        for name in retired_tombs {
            remove_quietly(&self.dir.join(name));
        }
        self.stall_cv.notify_all();
        Ok(())
    }
}
