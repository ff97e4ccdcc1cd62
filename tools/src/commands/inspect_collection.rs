//! `omen inspect DIR` for a collection directory: the manifest, segments
//! with sizes and tombstones, WAL files with their records, leftovers and
//! the compaction state. Read-only: nothing is locked, replayed or cut.

use std::path::Path;

use indicatif::HumanBytes;
use omen_engine::collection::inspect;

use crate::{Result, say};

/// Prints the inspection of the collection in `dir`.
pub fn run(dir: &Path) -> Result<()> {
    let i = inspect(dir)?;
    let m = &i.manifest;
    let s = &m.schema;
    say!("{} (collection)", dir.display());
    say!(
        "  schema        {} {} × {} ({} distance), primary key '{}'",
        if s.columns.is_empty() {
            "vectors"
        } else {
            "rows of"
        },
        s.dimension,
        s.element_type,
        s.metric,
        s.primary_key
    );
    for c in &s.columns {
        say!(
            "  column        {} {}{}",
            c.name,
            c.ty,
            if c.nullable { " (nullable)" } else { "" }
        );
    }
    say!(
        "  manifest      generation {}, {} bytes; flushed below LSN {}, WAL checkpoint {}",
        m.generation,
        i.manifest_bytes,
        m.flushed_lsn,
        m.wal_checkpoint
    );
    say!(
        "  in use        {}",
        if i.in_use {
            "yes (open in a process)"
        } else {
            "no"
        }
    );
    let rows: u64 = i.segments.iter().map(|s| s.record.vectors).sum();
    let dead: u64 = i.segments.iter().map(|s| s.record.tombstones).sum();
    say!(
        "  segments      {} holding {rows} rows, {dead} tombstoned ({} live)",
        i.segments.len(),
        rows - dead
    );
    for seg in &i.segments {
        let r = &seg.record;
        say!(
            "    {:<26} {:<5} tier {:>2} {:>10} rows {:>9} tombstones ({:>5.1}%) {:>10}  max LSN {}{}",
            seg.file,
            match seg.flat {
                Some(true) => "flat",
                Some(false) => "graph",
                None => "?",
            },
            r.tier,
            r.vectors,
            r.tombstones,
            100.0 * r.tombstones as f64 / r.vectors.max(1) as f64,
            HumanBytes(seg.bytes).to_string(),
            r.max_lsn,
            seg.tombstone_file
                .as_ref()
                .map(|t| format!(", tombstones in {t}"))
                .unwrap_or_default()
        );
    }
    say!("  wal           {} file(s) to replay", i.wal.len());
    for w in &i.wal {
        match &w.error {
            Some(e) => say!(
                "    {:<26} {:>10}  DAMAGED: {e}",
                w.file,
                HumanBytes(w.bytes).to_string()
            ),
            None => say!(
                "    {:<26} {:>10}  {} records ({} rows written, {} deleted){}{}",
                w.file,
                HumanBytes(w.bytes).to_string(),
                w.records,
                w.rows_written,
                w.rows_deleted,
                w.lsns
                    .map(|(a, b)| format!(", LSN {a}..={b}"))
                    .unwrap_or_default(),
                w.torn_at
                    .map(|t| format!(", torn tail at offset {t} (cut off at the next open)"))
                    .unwrap_or_default()
            ),
        }
    }
    say!(
        "  compaction    {} completed; size-tiered (fan-in 4, rewrite at 30% tombstones); next: {}",
        m.compactions,
        i.pending_compaction.as_deref().unwrap_or("nothing to do")
    );
    if !i.leftovers.is_empty() {
        say!(
            "  leftovers     {} (from an interrupted flush or compaction; removed at the next open)",
            i.leftovers.join(", ")
        );
    }
    Ok(())
}
