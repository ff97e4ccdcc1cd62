//! The body of the attribute-section fuzz target, kept in the crate so that
//! the same code runs under cargo-fuzz (fuzz/fuzz_targets/attributes.rs) and
//! under the property tests that CI runs on stable Rust.

use super::codec::{decode_column, parse_head};
use crate::segment::layout::PAGE_PAYLOAD;

/// Parses `data` as an attribute section's payload stream and decodes
/// every column it describes. Returns whether everything was accepted. It
/// must never panic, hang or allocate more than a small multiple of
/// `data.len()`.
pub fn decode_everything(data: &[u8]) -> bool {
    let pages = data.len().div_ceil(PAGE_PAYLOAD) as u64;
    let Ok(head) = parse_head(data, pages) else {
        return false;
    };
    for meta in &head.columns {
        let range = usize::try_from(meta.first_page)
            .ok()
            .and_then(|p| p.checked_mul(PAGE_PAYLOAD))
            .and_then(|s| Some(s..s.checked_add(usize::try_from(meta.stored_len).ok()?)?));
        let Some(stored) = range.and_then(|r| data.get(r)) else {
            return false;
        };
        match decode_column(meta, head.rows, stored) {
            Ok(column) if column.len() as u64 == head.rows => {}
            _ => return false,
        }
    }
    true
}
