//! Checksummed pages: the unit that searches read at random.
//!
//! A page of a paged section is `PAGE_PAYLOAD` bytes of payload followed by an
//! 8-byte trailer, the xxh3-64 of the payload seeded with the page's file
//! offset. A page can therefore be verified on its own, straight out of an
//! `O_DIRECT` read buffer, without the rest of its section; and a page that
//! was written to the wrong place fails its check.

use std::path::Path;

use super::layout::{PAGE_PAYLOAD, PAGE_SIZE};
use crate::Result;
use crate::checksum::Checksum;

/// Writes the trailer of `page`, which will live at `file_offset`.
pub fn seal_page(page: &mut [u8; PAGE_SIZE], file_offset: u64) {
    let (payload, trailer) = page.split_at_mut(PAGE_PAYLOAD);
    let sum = Checksum::of_seeded(payload, file_offset);
    trailer.copy_from_slice(&sum.0.to_le_bytes());
}

/// Checks the trailer of `page`, read from `file_offset` of `path`, and
/// returns its payload.
pub fn verify_page<'a>(
    page: &'a [u8; PAGE_SIZE],
    file_offset: u64,
    path: &Path,
    what: &str,
) -> Result<&'a [u8]> {
    let (payload, trailer) = page.split_at(PAGE_PAYLOAD);
    let mut stored = [0u8; 8];
    stored.copy_from_slice(trailer);
    let stored = u64::from_le_bytes(stored);
    let sum = Checksum::of_seeded(payload, file_offset);
    // Every page a search reads passes here: name the page only when it
    // is bad, not with a formatted string per read.
    if sum.matches(stored) {
        return Ok(payload);
    }
    sum.check(
        stored,
        path,
        format!("page of {what}"),
        file_offset,
        PAGE_SIZE as u64,
    )?;
    Ok(payload)
}

/// Where a fixed-size row lives in a paged section.
///
/// Rows never straddle a page unless one row is larger than a page's payload:
/// then each row starts on a fresh page and continues through the payloads of
/// as many pages as it needs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RowLayout {
    /// Bytes per row.
    pub row_len: usize,
    /// Rows per page (1 when rows span pages).
    pub rows_per_page: usize,
    /// Pages per row (1 when several rows share a page).
    pub pages_per_row: usize,
}

impl RowLayout {
    /// The layout of rows of `row_len` bytes; `None` for empty rows.
    pub fn new(row_len: usize) -> Option<Self> {
        if row_len == 0 {
            return None;
        }
        Some(if row_len <= PAGE_PAYLOAD {
            RowLayout {
                row_len,
                rows_per_page: PAGE_PAYLOAD / row_len,
                pages_per_row: 1,
            }
        } else {
            RowLayout {
                row_len,
                rows_per_page: 1,
                pages_per_row: row_len.div_ceil(PAGE_PAYLOAD),
            }
        })
    }

    /// Pages needed for `rows` rows, or `None` on overflow.
    pub fn pages_for(&self, rows: u64) -> Option<u64> {
        let rpp = self.rows_per_page as u64;
        rows.div_ceil(rpp).checked_mul(self.pages_per_row as u64)
    }

    /// The first page of row `row` and the row's byte offset in the payload
    /// of that page (0 when rows span pages).
    pub fn locate(&self, row: u64) -> (u64, usize) {
        let rpp = self.rows_per_page as u64;
        let page = row / rpp * self.pages_per_row as u64;
        let slot = (row % rpp) as usize;
        (page, slot * self.row_len)
    }
}
