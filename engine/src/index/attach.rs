//! Adding attribute columns to a segment that was built without them,
//! without rebuilding its index: every section is copied as is, and the
//! attribute section, permuted into node order, is appended.

use std::path::{Path, PathBuf};

use omen_format::segment::attributes::AttributeColumns;
use omen_format::segment::{OpenOptions, SegmentFile, SegmentWriter};

use super::{Segment, SegmentOptions};
use crate::io::IoMode;
use crate::{EngineError, Result};

/// Writes `out`: the segment at `segment` plus `attributes`, given in
/// external-id order (row `i` belongs to the vector with id `i`).
pub fn attach_attributes(
    segment: &Path,
    attributes: &AttributeColumns,
    out: &Path,
) -> Result<PathBuf> {
    let opened = Segment::open(
        segment,
        &SegmentOptions {
            io: IoMode::Mmap,
            ..SegmentOptions::default()
        },
    )?;
    let n = opened.len();
    if attributes.len() != n {
        return Err(EngineError::InvalidArgument(format!(
            "{} attribute rows for the {n} vectors of {}",
            attributes.len(),
            segment.display()
        )));
    }
    let mut new_to_old = Vec::with_capacity(n);
    let mut seen = vec![false; n];
    opened.scan_rows(|row, id, _| {
        match usize::try_from(id).ok().filter(|&i| i < n && !seen[i]) {
            Some(i) => seen[i] = true,
            None => {
                return Err(EngineError::InvalidArgument(format!(
                    "{}: row {row} has id {id}; attaching attributes by id needs ids 0..{n}, each once",
                    segment.display()
                )));
            }
        }
        new_to_old.push(id as u32);
        Ok(())
    })?;
    drop(opened);
    let file = SegmentFile::open(segment, OpenOptions::default())?;
    let mut writer = SegmentWriter::extend(&file, out)?;
    writer.write_attributes(&attributes.permuted(&new_to_old)?)?;
    Ok(writer.finish()?)
}
