//! Bytes of the attribute section (SPEC.md §2.6). The section's payload
//! stream (its pages' payloads, concatenated) is the head, padded to a page
//! payload, then one LZ4 block per column, each starting on a fresh page.
//!
//! Parsing never trusts a count: every length is checked against the bytes
//! actually present before anything is allocated, so hostile input yields a
//! [`CodecError`], never a panic or an outsized allocation.

use super::stats::{ColumnStats, Histogram};
use super::{
    ATTR_FIXED_HEAD, ATTR_MAGIC, ATTR_VERSION, AttributeColumns, AttributeHead, Column, ColumnMeta,
    ColumnValues, HISTOGRAM_BUCKETS, MAX_COLUMNS, MAX_NAME_LEN, MOST_COMMON,
};
use crate::attr::{ColumnSchema, ColumnType, Value};
use crate::segment::layout::{LZ4_MAX_RATIO, PAGE_PAYLOAD};

/// Why bytes failed to parse: `offset` is relative to the slice parsed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CodecError {
    pub offset: u64,
    pub reason: String,
}

type Parsed<T> = std::result::Result<T, CodecError>;

const FLAG_NULLABLE: u8 = 1;

/// Encodes `columns` as the section's payload stream (a whole number of
/// page payloads).
pub fn encode_section(columns: &AttributeColumns) -> Vec<u8> {
    let rows = columns.len() as u64;
    let decoded = columns.columns();
    let blocks: Vec<(Vec<u8>, u64, ColumnStats)> = decoded
        .iter()
        .map(|c| {
            let stats = ColumnStats::compute(c);
            let logical = encode_column(c);
            (
                lz4_flex::block::compress(&logical),
                logical.len() as u64,
                stats,
            )
        })
        .collect();
    let head_for = |head_pages: u64| {
        let mut head = Vec::new();
        head.extend_from_slice(&ATTR_MAGIC);
        head.extend_from_slice(&ATTR_VERSION.to_le_bytes());
        head.extend_from_slice(&(decoded.len() as u32).to_le_bytes());
        head.extend_from_slice(&rows.to_le_bytes());
        head.extend_from_slice(&0u64.to_le_bytes()); // head_len, patched below
        let mut page = head_pages;
        for (schema, (stored, logical_len, stats)) in columns.schema().iter().zip(&blocks) {
            let meta = ColumnMeta {
                schema: schema.clone(),
                stats: stats.clone(),
                first_page: page,
                stored_len: stored.len() as u64,
                logical_len: *logical_len,
            };
            page += meta.pages();
            encode_meta(&meta, &mut head);
        }
        let len = head.len() as u64;
        if let Some(slot) = head.get_mut(24..32) {
            slot.copy_from_slice(&len.to_le_bytes());
        }
        head
    };
    // The head's length does not depend on the page numbers it records.
    let head_pages = (head_for(0).len() as u64).div_ceil(PAGE_PAYLOAD as u64);
    let mut stream = head_for(head_pages);
    pad(&mut stream);
    for (stored, _, _) in &blocks {
        stream.extend_from_slice(stored);
        if stored.is_empty() {
            stream.push(0);
        }
        pad(&mut stream);
    }
    stream
}

fn pad(stream: &mut Vec<u8>) {
    stream.resize(stream.len().next_multiple_of(PAGE_PAYLOAD), 0);
}

fn encode_meta(m: &ColumnMeta, out: &mut Vec<u8>) {
    out.extend_from_slice(&(m.schema.name.len() as u16).to_le_bytes());
    out.extend_from_slice(m.schema.name.as_bytes());
    out.push(m.schema.ty as u8);
    out.push(if m.schema.nullable { FLAG_NULLABLE } else { 0 });
    for x in [m.first_page, m.stored_len, m.logical_len] {
        out.extend_from_slice(&x.to_le_bytes());
    }
    let s = &m.stats;
    out.extend_from_slice(&s.null_count.to_le_bytes());
    out.extend_from_slice(&s.distinct_count.to_le_bytes());
    match (&s.min, &s.max) {
        (Some(lo), Some(hi)) => {
            out.push(1);
            encode_value(lo, out);
            encode_value(hi, out);
        }
        _ => out.push(0),
    }
    out.extend_from_slice(&(s.most_common.len() as u16).to_le_bytes());
    for (v, count) in &s.most_common {
        encode_value(v, out);
        out.extend_from_slice(&count.to_le_bytes());
    }
    match &s.histogram {
        Some(h) => {
            out.extend_from_slice(&(h.counts.len() as u16).to_le_bytes());
            for b in &h.bounds {
                out.extend_from_slice(&b.to_le_bytes());
            }
            for c in &h.counts {
                out.extend_from_slice(&c.to_le_bytes());
            }
        }
        None => out.extend_from_slice(&0u16.to_le_bytes()),
    }
}

/// A value in the column's own type, without a tag.
fn encode_value(v: &Value, out: &mut Vec<u8>) {
    match v {
        Value::Int64(x) | Value::Timestamp(x) => out.extend_from_slice(&x.to_le_bytes()),
        Value::Float64(x) => out.extend_from_slice(&x.to_le_bytes()),
        Value::Bool(x) => out.push(u8::from(*x)),
        Value::Text(s) => {
            out.extend_from_slice(&(s.len() as u32).to_le_bytes());
            out.extend_from_slice(s.as_bytes());
        }
        Value::Null => {}
    }
}

fn encode_column(c: &Column) -> Vec<u8> {
    let mut out = Vec::new();
    if let Some(present) = &c.present {
        push_bits(present, &mut out);
    }
    match &c.values {
        ColumnValues::Int64(v) | ColumnValues::Timestamp(v) => v
            .iter()
            .for_each(|x| out.extend_from_slice(&x.to_le_bytes())),
        ColumnValues::Float64(v) => v
            .iter()
            .for_each(|x| out.extend_from_slice(&x.to_le_bytes())),
        ColumnValues::Bool(v) => push_bits(v, &mut out),
        ColumnValues::Text { dictionary, codes } => {
            out.extend_from_slice(&(dictionary.len() as u32).to_le_bytes());
            for s in dictionary {
                out.extend_from_slice(&(s.len() as u32).to_le_bytes());
                out.extend_from_slice(s.as_bytes());
            }
            let width = code_width(dictionary.len() as u64);
            for &code in codes {
                out.extend(code.to_le_bytes().into_iter().take(width));
            }
        }
    }
    out
}

fn push_bits(bits: &[bool], out: &mut Vec<u8>) {
    for chunk in bits.chunks(8) {
        out.push(
            chunk
                .iter()
                .enumerate()
                .fold(0u8, |b, (i, &set)| b | (u8::from(set) << i)),
        );
    }
}

/// Bytes per dictionary code: the fewest that hold every code.
fn code_width(dictionary_len: u64) -> usize {
    match dictionary_len {
        0..=256 => 1,
        257..=65536 => 2,
        _ => 4,
    }
}

/// A bounds-checked little-endian reader over a byte slice.
struct Cursor<'a> {
    bytes: &'a [u8],
    at: usize,
}

impl<'a> Cursor<'a> {
    fn new(bytes: &'a [u8]) -> Self {
        Cursor { bytes, at: 0 }
    }

    fn fail<T>(&self, reason: impl Into<String>) -> Parsed<T> {
        Err(CodecError {
            offset: self.at as u64,
            reason: reason.into(),
        })
    }

    fn take(&mut self, n: usize, what: &str) -> Parsed<&'a [u8]> {
        match self
            .at
            .checked_add(n)
            .and_then(|end| self.bytes.get(self.at..end))
        {
            Some(s) => {
                self.at += n;
                Ok(s)
            }
            None => self.fail(format!(
                "{what} needs {n} bytes, {} remain",
                self.bytes.len().saturating_sub(self.at)
            )),
        }
    }

    fn array<const N: usize>(&mut self, what: &str) -> Parsed<[u8; N]> {
        let s = self.take(N, what)?;
        let mut a = [0u8; N];
        a.copy_from_slice(s);
        Ok(a)
    }

    fn u8(&mut self, what: &str) -> Parsed<u8> {
        Ok(self.array::<1>(what)?[0])
    }
    fn u16(&mut self, what: &str) -> Parsed<u16> {
        Ok(u16::from_le_bytes(self.array(what)?))
    }
    fn u32(&mut self, what: &str) -> Parsed<u32> {
        Ok(u32::from_le_bytes(self.array(what)?))
    }
    fn u64(&mut self, what: &str) -> Parsed<u64> {
        Ok(u64::from_le_bytes(self.array(what)?))
    }

    fn text(&mut self, len: usize, what: &str) -> Parsed<String> {
        let at = self.at;
        let bytes = self.take(len, what)?;
        String::from_utf8(bytes.to_vec()).map_err(|_| CodecError {
            offset: at as u64,
            reason: format!("{what} is not UTF-8"),
        })
    }

    fn value(&mut self, ty: ColumnType, what: &str) -> Parsed<Value> {
        Ok(match ty {
            ColumnType::Int64 => Value::Int64(i64::from_le_bytes(self.array(what)?)),
            ColumnType::Timestamp => Value::Timestamp(i64::from_le_bytes(self.array(what)?)),
            ColumnType::Float64 => {
                let x = f64::from_le_bytes(self.array(what)?);
                if x.is_nan() {
                    return self.fail(format!("{what} is NaN"));
                }
                Value::Float64(x)
            }
            ColumnType::Bool => match self.u8(what)? {
                0 => Value::Bool(false),
                1 => Value::Bool(true),
                b => return self.fail(format!("{what}: bool byte {b}")),
            },
            ColumnType::Text => {
                let len = self.u32(what)? as usize;
                Value::Text(self.text(len, what)?)
            }
        })
    }
}

/// Reads `head_len` from the fixed part of the head (the first page's
/// payload suffices) and checks magic and version.
pub fn head_len(first: &[u8]) -> Parsed<u64> {
    let mut c = Cursor::new(first);
    if c.array::<8>("magic")? != ATTR_MAGIC {
        return Err(CodecError {
            offset: 0,
            reason: "bad magic: not an attribute section".into(),
        });
    }
    let version = c.u32("version")?;
    if version != ATTR_VERSION {
        return c.fail(format!(
            "attribute layout version {version} is not {ATTR_VERSION}"
        ));
    }
    c.take(12, "column and row counts")?;
    let len = c.u64("head length")?;
    if len < ATTR_FIXED_HEAD as u64 {
        return c.fail(format!("head length {len} is below {ATTR_FIXED_HEAD}"));
    }
    Ok(len)
}

/// Parses the head from the section's payload stream (at least the head's
/// pages). `section_pages` bounds where column blocks may lie.
pub fn parse_head(stream: &[u8], section_pages: u64) -> Parsed<AttributeHead> {
    let len = head_len(stream)?;
    let head = usize::try_from(len)
        .ok()
        .and_then(|l| stream.get(..l))
        .ok_or_else(|| CodecError {
            offset: 24,
            reason: format!(
                "head length {len} exceeds the {} bytes present",
                stream.len()
            ),
        })?;
    let mut c = Cursor::new(head);
    c.take(12, "magic and version")?;
    let count = c.u32("column count")? as usize;
    let rows = c.u64("row count")?;
    c.take(8, "head length")?;
    if count > MAX_COLUMNS {
        return Err(CodecError {
            offset: 12,
            reason: format!("{count} columns, at most {MAX_COLUMNS}"),
        });
    }
    let head_pages = len.div_ceil(PAGE_PAYLOAD as u64);
    let mut next_page = head_pages;
    let mut columns: Vec<ColumnMeta> = Vec::with_capacity(count);
    for i in 0..count {
        let at = c.at;
        let meta = parse_meta(&mut c, rows, i)?;
        let bad = |reason: String| CodecError {
            offset: at as u64,
            reason: format!("column {i} ({:?}): {reason}", meta.schema.name),
        };
        if columns.iter().any(|o| o.schema.name == meta.schema.name) {
            return Err(bad("duplicate name".into()));
        }
        if meta.first_page != next_page {
            return Err(bad(format!(
                "block starts at page {}, expected {next_page}",
                meta.first_page
            )));
        }
        next_page = next_page
            .checked_add(meta.pages())
            .filter(|&end| end <= section_pages)
            .ok_or_else(|| {
                bad(format!(
                    "block of {} bytes at page {} runs past the section's {section_pages} pages",
                    meta.stored_len, meta.first_page
                ))
            })?;
        check_logical_len(&meta, rows).map_err(bad)?;
        columns.push(meta);
    }
    if c.at != head.len() {
        return c.fail(format!(
            "{} unused bytes after the last column",
            head.len() - c.at
        ));
    }
    Ok(AttributeHead {
        rows,
        head_pages,
        columns,
    })
}

fn parse_meta(c: &mut Cursor<'_>, rows: u64, i: usize) -> Parsed<ColumnMeta> {
    let name_len = c.u16("name length")? as usize;
    if name_len == 0 || name_len > MAX_NAME_LEN {
        return c.fail(format!("column {i}: name of {name_len} bytes"));
    }
    let name = c.text(name_len, "column name")?;
    let code = c.u8("type")?;
    let ty = match ColumnType::from_code(code) {
        Some(t) => t,
        None => return c.fail(format!("column {name:?}: unknown type code {code}")),
    };
    let flags = c.u8("flags")?;
    if flags & !FLAG_NULLABLE != 0 {
        return c.fail(format!("column {name:?}: unknown flags {flags:#x}"));
    }
    let nullable = flags & FLAG_NULLABLE != 0;
    let first_page = c.u64("first page")?;
    let stored_len = c.u64("stored length")?;
    let logical_len = c.u64("logical length")?;
    let null_count = c.u64("null count")?;
    let distinct_count = c.u64("distinct count")?;
    let non_null = rows.checked_sub(null_count).ok_or_else(|| CodecError {
        offset: c.at as u64,
        reason: format!("column {name:?}: {null_count} NULLs in {rows} rows"),
    })?;
    if !nullable && null_count > 0 {
        return c.fail(format!(
            "column {name:?} is NOT NULL but counts {null_count} NULLs"
        ));
    }
    if distinct_count > non_null || (non_null > 0 && distinct_count == 0) {
        return c.fail(format!(
            "column {name:?}: {distinct_count} distinct values in {non_null} non-NULL rows"
        ));
    }
    let (min, max) = match c.u8("range flag")? {
        0 if non_null == 0 => (None, None),
        1 if non_null > 0 => {
            let lo = c.value(ty, "min")?;
            let hi = c.value(ty, "max")?;
            if lo.sql_cmp(&hi).is_none_or(|o| o.is_gt()) {
                return c.fail(format!("column {name:?}: min {lo} above max {hi}"));
            }
            (Some(lo), Some(hi))
        }
        f => {
            return c.fail(format!(
                "column {name:?}: range flag {f} with {non_null} non-NULL rows"
            ));
        }
    };
    let mcv = c.u16("most common count")? as usize;
    if mcv > MOST_COMMON || mcv as u64 > distinct_count {
        return c.fail(format!("column {name:?}: {mcv} most common values"));
    }
    let mut most_common = Vec::with_capacity(mcv);
    let mut total = 0u64;
    for _ in 0..mcv {
        let v = c.value(ty, "common value")?;
        let n = c.u64("common count")?;
        total = total.saturating_add(n);
        most_common.push((v, n));
    }
    if total > non_null {
        return c.fail(format!(
            "column {name:?}: common values count {total} of {non_null} rows"
        ));
    }
    let buckets = c.u16("bucket count")? as usize;
    let numeric = matches!(
        ty,
        ColumnType::Int64 | ColumnType::Float64 | ColumnType::Timestamp
    );
    if buckets > HISTOGRAM_BUCKETS
        || (buckets > 0 && !numeric)
        || (buckets == 0 && numeric && non_null > 0)
    {
        return c.fail(format!(
            "column {name:?} ({ty}): {buckets} histogram buckets"
        ));
    }
    let histogram = if buckets == 0 {
        None
    } else {
        let mut bounds = Vec::with_capacity(buckets + 1);
        for _ in 0..=buckets {
            let b = f64::from_le_bytes(c.array("bucket bound")?);
            if b.is_nan() || bounds.last().is_some_and(|&p: &f64| p > b) {
                return c.fail(format!("column {name:?}: histogram bounds out of order"));
            }
            bounds.push(b);
        }
        let mut counts = Vec::with_capacity(buckets);
        let mut sum = 0u64;
        for _ in 0..buckets {
            let n = c.u64("bucket count")?;
            sum = sum.saturating_add(n);
            counts.push(n);
        }
        if sum != non_null {
            return c.fail(format!(
                "column {name:?}: histogram counts {sum} of {non_null} rows"
            ));
        }
        Some(Histogram { bounds, counts })
    };
    Ok(ColumnMeta {
        schema: ColumnSchema { name, ty, nullable },
        stats: ColumnStats {
            rows,
            null_count,
            distinct_count,
            min,
            max,
            most_common,
            histogram,
        },
        first_page,
        stored_len,
        logical_len,
    })
}

fn bitmap_len(rows: u64) -> u64 {
    rows.div_ceil(8)
}

/// The decoded length a fixed-width column must have; for text, a floor.
fn check_logical_len(m: &ColumnMeta, rows: u64) -> Result<(), String> {
    let bitmap = if m.stats.null_count > 0 {
        bitmap_len(rows)
    } else {
        0
    };
    let fixed = match m.schema.ty {
        ColumnType::Int64 | ColumnType::Float64 | ColumnType::Timestamp => {
            Some(rows.checked_mul(8))
        }
        ColumnType::Bool => Some(Some(bitmap_len(rows))),
        ColumnType::Text => None,
    };
    let ok = match fixed {
        Some(Some(values)) => values.checked_add(bitmap) == Some(m.logical_len),
        Some(None) => false,
        // Text: the dictionary size and at least one byte per row.
        None => bitmap
            .checked_add(4)
            .and_then(|b| b.checked_add(rows))
            .is_some_and(|floor| m.logical_len >= floor),
    };
    if !ok {
        return Err(format!(
            "decodes to {} bytes, which cannot hold {rows} {} rows",
            m.logical_len, m.schema.ty
        ));
    }
    if m.logical_len > m.stored_len.saturating_mul(LZ4_MAX_RATIO) + 16 {
        return Err(format!(
            "{} bytes cannot decode to {}",
            m.stored_len, m.logical_len
        ));
    }
    Ok(())
}

/// Decompresses and decodes one column's block (`stored`: exactly
/// `meta.stored_len` bytes).
pub fn decode_column(meta: &ColumnMeta, rows: u64, stored: &[u8]) -> Parsed<Column> {
    if stored.len() as u64 != meta.stored_len {
        return Err(CodecError {
            offset: 0,
            reason: format!(
                "{} stored bytes, expected {}",
                stored.len(),
                meta.stored_len
            ),
        });
    }
    check_logical_len(meta, rows).map_err(|reason| CodecError { offset: 0, reason })?;
    let logical_len = usize::try_from(meta.logical_len).map_err(|_| CodecError {
        offset: 0,
        reason: "block too large for this host".into(),
    })?;
    let rows = usize::try_from(rows).map_err(|_| CodecError {
        offset: 0,
        reason: "too many rows for this host".into(),
    })?;
    let mut logical = vec![0u8; logical_len];
    match lz4_flex::block::decompress_into(stored, &mut logical) {
        Ok(n) if n == logical_len => {}
        Ok(n) => {
            return Err(CodecError {
                offset: 0,
                reason: format!("LZ4 block decodes to {n} bytes, head says {logical_len}"),
            });
        }
        Err(e) => {
            return Err(CodecError {
                offset: 0,
                reason: format!("LZ4 block: {e}"),
            });
        }
    }
    let mut c = Cursor::new(&logical);
    let present = if meta.stats.null_count > 0 {
        let bits = bits(&mut c, rows, "presence bitmap")?;
        let nulls = bits.iter().filter(|&&p| !p).count() as u64;
        if nulls != meta.stats.null_count {
            return c.fail(format!(
                "presence bitmap marks {nulls} NULLs, the head says {}",
                meta.stats.null_count
            ));
        }
        Some(bits)
    } else {
        None
    };
    let fixed = |c: &mut Cursor<'_>| -> Parsed<Vec<[u8; 8]>> {
        let bytes = c.take(rows * 8, "values")?;
        Ok(bytes
            .chunks_exact(8)
            .map(|b| {
                let mut a = [0u8; 8];
                a.copy_from_slice(b);
                a
            })
            .collect())
    };
    let values = match meta.schema.ty {
        ColumnType::Int64 => {
            ColumnValues::Int64(fixed(&mut c)?.into_iter().map(i64::from_le_bytes).collect())
        }
        ColumnType::Timestamp => {
            ColumnValues::Timestamp(fixed(&mut c)?.into_iter().map(i64::from_le_bytes).collect())
        }
        ColumnType::Float64 => {
            ColumnValues::Float64(fixed(&mut c)?.into_iter().map(f64::from_le_bytes).collect())
        }
        ColumnType::Bool => ColumnValues::Bool(bits(&mut c, rows, "bool values")?),
        ColumnType::Text => {
            let count = c.u32("dictionary size")? as usize;
            // Each entry takes at least its 4-byte length.
            if count > logical.len() / 4 {
                return c.fail(format!(
                    "dictionary of {count} entries in {} bytes",
                    logical.len()
                ));
            }
            let mut dictionary: Vec<String> = Vec::with_capacity(count);
            for _ in 0..count {
                let len = c.u32("dictionary entry length")? as usize;
                let s = c.text(len, "dictionary entry")?;
                if dictionary.last().is_some_and(|p| p.as_str() >= s.as_str()) {
                    return c.fail("dictionary is not strictly ascending");
                }
                dictionary.push(s);
            }
            let width = code_width(count as u64);
            let bytes = c.take(rows * width, "codes")?;
            let mut codes = Vec::with_capacity(rows);
            for (row, b) in bytes.chunks_exact(width).enumerate() {
                let mut a = [0u8; 4];
                a.get_mut(..width).unwrap_or_default().copy_from_slice(b);
                let code = u32::from_le_bytes(a);
                let null = present
                    .as_ref()
                    .is_some_and(|p| !p.get(row).copied().unwrap_or(false));
                if (code as usize) >= count.max(1) || (count == 0 && !null) {
                    return c.fail(format!(
                        "row {row}: code {code} of a {count}-entry dictionary"
                    ));
                }
                codes.push(code);
            }
            ColumnValues::Text { dictionary, codes }
        }
    };
    if c.at != logical.len() {
        return c.fail(format!(
            "{} unused bytes after the values",
            logical.len() - c.at
        ));
    }
    Ok(Column { values, present })
}

fn bits(c: &mut Cursor<'_>, rows: usize, what: &str) -> Parsed<Vec<bool>> {
    let bytes = c.take(rows.div_ceil(8), what)?;
    Ok((0..rows)
        .map(|i| bytes.get(i / 8).is_some_and(|b| b >> (i % 8) & 1 == 1))
        .collect())
}
