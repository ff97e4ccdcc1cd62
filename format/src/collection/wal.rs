//! The write-ahead log (SPEC.md §8.3): a file header, then records framed
//! by their length and an xxh3 checksum.
//!
//! Every acknowledged write is a record here before it is acknowledged. A
//! crash can leave the last record of the newest file torn (a prefix of what
//! was written); [`scan`] detects it and reports where the valid log ends so
//! recovery can cut it off. Any other damage is an error naming the file and
//! the offset: a record that fails its checksum with valid-looking bytes
//! after it was not torn by a crash, and dropping it would lose data
//! silently.

use std::path::Path;

use crate::ElementType;
use crate::attr::Value;
use crate::checksum::Checksum;
use crate::collection::reader::Cursor;
use crate::{FormatError, Result};

/// The first 8 bytes of every WAL file.
pub const WAL_MAGIC: [u8; 8] = *b"OMENWAL1";
/// The version in the WAL file header.
pub const WAL_VERSION: u32 = 1;
/// Bytes of the WAL file header.
pub const WAL_HEADER_LEN: usize = 32;
/// Bytes of a record frame before its payload: length (4) and checksum (8).
pub const FRAME_LEN: usize = 12;
/// Largest payload a record may have: bounds what a corrupt length can make
/// a reader allocate.
pub const MAX_PAYLOAD: usize = 1 << 30;

const OP_UPSERT: u8 = 1;
const OP_DELETE: u8 = 2;
/// Upsert of rows whose vectors are f16, u8 or i8 (SPEC.md §8.3): the
/// element type follows the column count and each vector is stored in it.
/// f32 rows keep operation 1, so f32 logs are unchanged.
const OP_UPSERT_TYPED: u8 = 3;

/// Rows written together: ids, their vectors back to back, and their
/// attribute values row by row (`columns` per row).
#[derive(Debug, Clone, PartialEq)]
pub struct RowBatch {
    pub dim: usize,
    pub columns: usize,
    /// How the vectors are stored in the log (and in the collection). The
    /// values in `vectors` are exactly representable in it: f32 holds them
    /// widened, which is exact for f16, u8 and i8.
    pub element_type: ElementType,
    pub ids: Vec<u64>,
    pub vectors: Vec<f32>,
    pub values: Vec<Value>,
}

impl Default for RowBatch {
    fn default() -> Self {
        RowBatch {
            dim: 0,
            columns: 0,
            element_type: ElementType::F32,
            ids: Vec::new(),
            vectors: Vec::new(),
            values: Vec::new(),
        }
    }
}

/// Appends `x` as one little-endian element of `element_type` (narrowing is
/// exact for the values a [`RowBatch`] holds).
fn encode_element(element_type: ElementType, x: f32, out: &mut Vec<u8>) {
    match element_type {
        ElementType::F32 => out.extend_from_slice(&x.to_le_bytes()),
        ElementType::F16 => out.extend_from_slice(&half::f16::from_f32(x).to_le_bytes()),
        ElementType::U8 => out.push(x as u8),
        ElementType::I8 => out.push(x as i8 as u8),
    }
}

/// Widens the little-endian elements in `bytes` into `out`.
fn decode_elements(element_type: ElementType, bytes: &[u8], out: &mut Vec<f32>) {
    match element_type {
        ElementType::F32 => out.extend(
            bytes
                .chunks_exact(4)
                .filter_map(|b| b.try_into().ok().map(f32::from_le_bytes)),
        ),
        ElementType::F16 => out.extend(bytes.chunks_exact(2).filter_map(|b| {
            b.try_into()
                .ok()
                .map(|b| half::f16::from_le_bytes(b).to_f32())
        })),
        ElementType::U8 => out.extend(bytes.iter().map(|&b| f32::from(b))),
        ElementType::I8 => out.extend(bytes.iter().map(|&b| f32::from(b as i8))),
    }
}

impl RowBatch {
    /// Rows in the batch.
    pub fn len(&self) -> usize {
        self.ids.len()
    }

    pub fn is_empty(&self) -> bool {
        self.ids.is_empty()
    }

    /// Row `i`'s vector.
    pub fn vector(&self, i: usize) -> &[f32] {
        self.vectors
            .get(i * self.dim..(i + 1) * self.dim)
            .unwrap_or_default()
    }

    /// Row `i`'s attribute values, in schema order.
    pub fn row_values(&self, i: usize) -> &[Value] {
        self.values
            .get(i * self.columns..(i + 1) * self.columns)
            .unwrap_or_default()
    }
}

/// What a record does.
#[derive(Debug, Clone, PartialEq)]
pub enum WalOp {
    /// Insert or replace these rows (an `insert` is checked for duplicates
    /// before it is logged, so the log needs only one kind).
    Upsert(RowBatch),
    /// Delete these primary keys (absent keys are no-ops).
    Delete(Vec<u64>),
}

/// One logged commit.
#[derive(Debug, Clone, PartialEq)]
pub struct WalRecord {
    /// Log sequence number: strictly increasing through the log.
    pub lsn: u64,
    pub op: WalOp,
}

/// The 32-byte header of WAL file number `file_number`.
pub fn encode_header(file_number: u64) -> [u8; WAL_HEADER_LEN] {
    let mut h = [0u8; WAL_HEADER_LEN];
    h[..8].copy_from_slice(&WAL_MAGIC);
    h[8..12].copy_from_slice(&WAL_VERSION.to_le_bytes());
    h[16..24].copy_from_slice(&file_number.to_le_bytes());
    let sum = Checksum::of(&h[..24]).0;
    h[24..32].copy_from_slice(&sum.to_le_bytes());
    h
}

/// Appends `record`, framed, to `out`.
pub fn encode_record(record: &WalRecord, out: &mut Vec<u8>) {
    let start = out.len();
    out.extend_from_slice(&[0u8; FRAME_LEN]);
    out.extend_from_slice(&record.lsn.to_le_bytes());
    match &record.op {
        WalOp::Upsert(batch) => {
            let typed = batch.element_type != ElementType::F32;
            out.push(if typed { OP_UPSERT_TYPED } else { OP_UPSERT });
            out.extend_from_slice(&(batch.ids.len() as u32).to_le_bytes());
            out.extend_from_slice(&(batch.dim as u32).to_le_bytes());
            out.extend_from_slice(&(batch.columns as u16).to_le_bytes());
            if typed {
                out.push(batch.element_type as u8);
            }
            for i in 0..batch.len() {
                out.extend_from_slice(&batch.ids.get(i).copied().unwrap_or(0).to_le_bytes());
                for &x in batch.vector(i) {
                    encode_element(batch.element_type, x, out);
                }
                for v in batch.row_values(i) {
                    encode_value(v, out);
                }
            }
        }
        WalOp::Delete(ids) => {
            out.push(OP_DELETE);
            out.extend_from_slice(&(ids.len() as u32).to_le_bytes());
            for id in ids {
                out.extend_from_slice(&id.to_le_bytes());
            }
        }
    }
    let payload_len = out.len() - start - FRAME_LEN;
    let len = payload_len as u32;
    let sum = Checksum::of_seeded(
        out.get(start + FRAME_LEN..).unwrap_or_default(),
        u64::from(len),
    )
    .0;
    let mut frame = [0u8; FRAME_LEN];
    for (d, s) in frame
        .iter_mut()
        .zip(len.to_le_bytes().into_iter().chain(sum.to_le_bytes()))
    {
        *d = s;
    }
    if let Some(slot) = out.get_mut(start..start + FRAME_LEN) {
        slot.copy_from_slice(&frame);
    }
}

/// Value tags: 0 for NULL, else the column type code (format::attr).
fn encode_value(v: &Value, out: &mut Vec<u8>) {
    match v {
        Value::Null => out.push(0),
        Value::Int64(x) => {
            out.push(1);
            out.extend_from_slice(&x.to_le_bytes());
        }
        Value::Float64(x) => {
            out.push(2);
            out.extend_from_slice(&x.to_le_bytes());
        }
        Value::Bool(x) => {
            out.push(3);
            out.push(u8::from(*x));
        }
        Value::Text(s) => {
            out.push(4);
            out.extend_from_slice(&(s.len() as u32).to_le_bytes());
            out.extend_from_slice(s.as_bytes());
        }
        Value::Timestamp(x) => {
            out.push(5);
            out.extend_from_slice(&x.to_le_bytes());
        }
    }
}

fn decode_value(c: &mut Cursor<'_>) -> std::result::Result<Value, String> {
    let short = || "record ends inside a value".to_string();
    let tag = c.u8().ok_or_else(short)?;
    Ok(match tag {
        0 => Value::Null,
        1 => Value::Int64(c.i64().ok_or_else(short)?),
        2 => Value::Float64(c.f64().ok_or_else(short)?),
        3 => match c.u8().ok_or_else(short)? {
            0 => Value::Bool(false),
            1 => Value::Bool(true),
            b => return Err(format!("bool value {b} is neither 0 nor 1")),
        },
        4 => {
            let len = c.u32().ok_or_else(short)? as usize;
            let bytes = c.take(len).ok_or_else(short)?;
            Value::Text(
                std::str::from_utf8(bytes)
                    .map_err(|e| format!("text value is not UTF-8: {e}"))?
                    .to_owned(),
            )
        }
        5 => Value::Timestamp(c.i64().ok_or_else(short)?),
        t => return Err(format!("unknown value tag {t}")),
    })
}

/// Decodes one record's payload (the bytes after the frame).
pub fn decode_payload(payload: &[u8]) -> std::result::Result<WalRecord, String> {
    let mut c = Cursor::new(payload);
    let short = || "payload ends early".to_string();
    let lsn = c.u64().ok_or_else(short)?;
    let op = c.u8().ok_or_else(short)?;
    let count = c.u32().ok_or_else(short)? as usize;
    let op = match op {
        OP_UPSERT | OP_UPSERT_TYPED => {
            let dim = c.u32().ok_or_else(short)? as usize;
            let columns = c.u16().ok_or_else(short)? as usize;
            let element_type = if op == OP_UPSERT_TYPED {
                let code = c.u8().ok_or_else(short)?;
                match ElementType::from_code(code) {
                    Some(ElementType::F32) | None => {
                        return Err(format!(
                            "element type {code} in a typed upsert (f16, u8 or i8 expected)"
                        ));
                    }
                    Some(t) => t,
                }
            } else {
                ElementType::F32
            };
            let element_len = element_type.size();
            // Each row needs at least 8 + element_len·dim + columns bytes:
            // refuse counts the payload cannot hold before allocating.
            let min_row = 8 + element_len.saturating_mul(dim) + columns;
            if count.saturating_mul(min_row) > c.remaining() {
                return Err(format!(
                    "{count} rows of at least {min_row} bytes do not fit in {} bytes",
                    c.remaining()
                ));
            }
            let mut batch = RowBatch {
                dim,
                columns,
                element_type,
                ids: Vec::with_capacity(count),
                vectors: Vec::with_capacity(count * dim),
                values: Vec::with_capacity(count * columns),
            };
            for _ in 0..count {
                batch.ids.push(c.u64().ok_or_else(short)?);
                let bytes = c.take(element_len * dim).ok_or_else(short)?;
                decode_elements(element_type, bytes, &mut batch.vectors);
                for _ in 0..columns {
                    batch.values.push(decode_value(&mut c)?);
                }
            }
            WalOp::Upsert(batch)
        }
        OP_DELETE => {
            if count.saturating_mul(8) != c.remaining() {
                return Err(format!(
                    "{count} deleted ids need {} bytes, the payload has {}",
                    count.saturating_mul(8),
                    c.remaining()
                ));
            }
            WalOp::Delete((0..count).filter_map(|_| c.u64()).collect())
        }
        other => return Err(format!("unknown operation {other}")),
    };
    if c.remaining() != 0 {
        return Err(format!(
            "{} unexpected bytes after the record",
            c.remaining()
        ));
    }
    Ok(WalRecord { lsn, op })
}

/// What a WAL file holds.
#[derive(Debug, Clone, PartialEq)]
pub struct WalScan {
    pub records: Vec<WalRecord>,
    /// Bytes of the file that are valid: header plus whole records.
    pub valid_len: u64,
    /// Offset where a torn last record starts, when there was one.
    pub torn_at: Option<u64>,
}

/// Parses WAL file number `file_number` whose bytes are `bytes`.
///
/// `newest` says whether this is the last file of the log: only there can a
/// crash leave a torn record (older files were complete and fsynced before
/// the next was started). A damaged record counts as torn only when it
/// reaches the end of the file; anything else is corruption.
pub fn scan(path: &Path, file_number: u64, bytes: &[u8], newest: bool) -> Result<WalScan> {
    let corrupt = |offset: usize, what: &str, reason: String| FormatError::Corrupt {
        path: path.to_path_buf(),
        what: what.to_string(),
        offset: offset as u64,
        reason,
    };
    let Some(header) = bytes.get(..WAL_HEADER_LEN) else {
        if newest {
            // Created but the header never became durable.
            return Ok(WalScan {
                records: Vec::new(),
                valid_len: 0,
                torn_at: Some(0),
            });
        }
        return Err(FormatError::Truncated {
            path: path.to_path_buf(),
            what: "WAL file header".into(),
            needed: WAL_HEADER_LEN as u64,
            actual: bytes.len() as u64,
        });
    };
    let mut c = Cursor::new(header);
    let magic = c.take(8).unwrap_or_default();
    let version = c.u32().unwrap_or(0);
    let _reserved = c.u32();
    let number = c.u64().unwrap_or(0);
    let stored = c.u64().unwrap_or(0);
    Checksum::of(header.get(..24).unwrap_or_default()).check(
        stored,
        path,
        "WAL file header",
        0,
        24,
    )?;
    if magic != WAL_MAGIC {
        return Err(corrupt(
            0,
            "WAL file header",
            "not an OmenDB WAL file".into(),
        ));
    }
    if version != WAL_VERSION {
        return Err(FormatError::IncompatibleVersion {
            path: path.to_path_buf(),
            found_major: version as u16,
            found_minor: 0,
            supported: WAL_VERSION.to_string(),
        });
    }
    if number != file_number {
        return Err(corrupt(
            16,
            "WAL file header",
            format!("the header says file {number}, the name says {file_number}"),
        ));
    }

    let mut records = Vec::new();
    let mut at = WAL_HEADER_LEN;
    let mut last_lsn: Option<u64> = None;
    while at < bytes.len() {
        let rest = bytes.get(at..).unwrap_or_default();
        let torn = |records: Vec<WalRecord>| -> Result<WalScan> {
            if newest {
                Ok(WalScan {
                    records,
                    valid_len: at as u64,
                    torn_at: Some(at as u64),
                })
            } else {
                Err(corrupt(
                    at,
                    "WAL record",
                    "the record is cut short, but a newer WAL file follows".into(),
                ))
            }
        };
        let mut c = Cursor::new(rest);
        let (Some(len), Some(stored)) = (c.u32(), c.u64()) else {
            return torn(records);
        };
        let len = len as usize;
        let end = FRAME_LEN.saturating_add(len);
        if len > MAX_PAYLOAD || end > rest.len() {
            // A length past the end of the file is what a torn frame looks
            // like; a huge length with bytes after it cannot be one.
            if end >= rest.len() {
                return torn(records);
            }
            return Err(corrupt(
                at,
                "WAL record",
                format!("length {len} is impossible"),
            ));
        }
        let payload = rest.get(FRAME_LEN..end).unwrap_or_default();
        let got = Checksum::of_seeded(payload, len as u64).0;
        if got != stored {
            if end == rest.len() {
                return torn(records);
            }
            return Err(FormatError::ChecksumMismatch {
                path: path.to_path_buf(),
                what: "WAL record".into(),
                offset: at as u64,
                len: end as u64,
                expected: stored,
                got,
            });
        }
        let record = decode_payload(payload).map_err(|reason| corrupt(at, "WAL record", reason))?;
        if last_lsn.is_some_and(|l| record.lsn <= l) {
            return Err(corrupt(
                at,
                "WAL record",
                format!(
                    "sequence number {} does not follow {}",
                    record.lsn,
                    last_lsn.unwrap_or(0)
                ),
            ));
        }
        last_lsn = Some(record.lsn);
        records.push(record);
        at += end;
    }
    Ok(WalScan {
        records,
        valid_len: at as u64,
        torn_at: None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn value() -> impl Strategy<Value = Value> {
        prop_oneof![
            Just(Value::Null),
            any::<i64>().prop_map(Value::Int64),
            any::<f64>()
                .prop_filter("finite", |x| x.is_finite())
                .prop_map(Value::Float64),
            any::<bool>().prop_map(Value::Bool),
            "[a-zé]{0,12}".prop_map(Value::Text),
            any::<i64>().prop_map(Value::Timestamp),
        ]
    }

    fn record(lsn: u64) -> impl Strategy<Value = WalRecord> {
        let types = prop_oneof![
            Just(ElementType::F32),
            Just(ElementType::F16),
            Just(ElementType::U8),
            Just(ElementType::I8),
        ];
        let upsert = (1usize..5, 0usize..3, 0usize..6, types).prop_flat_map(
            |(dim, columns, rows, element_type)| {
                (
                    proptest::collection::vec(any::<u64>(), rows),
                    proptest::collection::vec(-1e6f32..1e6, rows * dim),
                    proptest::collection::vec(value(), rows * columns),
                )
                    .prop_map(move |(ids, vectors, values)| {
                        // Values the element type represents exactly.
                        let vectors = vectors
                            .into_iter()
                            .map(|x| match element_type {
                                ElementType::F32 => x,
                                ElementType::F16 => half::f16::from_f32(x / 100.0).to_f32(),
                                ElementType::U8 => (x.abs() % 256.0).floor(),
                                ElementType::I8 => (x % 128.0).trunc(),
                            })
                            .collect();
                        WalOp::Upsert(RowBatch {
                            dim,
                            columns,
                            element_type,
                            ids,
                            vectors,
                            values,
                        })
                    })
            },
        );
        let delete = proptest::collection::vec(any::<u64>(), 0..8).prop_map(WalOp::Delete);
        prop_oneof![upsert, delete].prop_map(move |op| WalRecord { lsn, op })
    }

    fn log(records: &[WalRecord]) -> Vec<u8> {
        let mut out = encode_header(3).to_vec();
        for r in records {
            encode_record(r, &mut out);
        }
        out
    }

    fn records() -> impl Strategy<Value = Vec<WalRecord>> {
        proptest::collection::vec(record(0), 0..6).prop_map(|mut rs| {
            for (i, r) in rs.iter_mut().enumerate() {
                r.lsn = 10 + i as u64 * 3;
            }
            rs
        })
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(128))]

        #[test]
        fn records_round_trip(rs in records()) {
            let bytes = log(&rs);
            let scan = scan(Path::new("w"), 3, &bytes, false).unwrap();
            prop_assert_eq!(scan.records, rs);
            prop_assert_eq!(scan.valid_len, bytes.len() as u64);
        }

        /// Any prefix of a log is a log with a torn tail: whole records
        /// survive, the partial one is reported, nothing errors.
        #[test]
        fn every_prefix_is_a_torn_log(rs in records(), cut in any::<prop::sample::Index>()) {
            let bytes = log(&rs);
            let cut = cut.index(bytes.len() + 1);
            let scan = scan(Path::new("w"), 3, &bytes[..cut], true).unwrap();
            let mut whole = WAL_HEADER_LEN;
            let mut kept = 0;
            for r in &rs {
                let mut one = Vec::new();
                encode_record(r, &mut one);
                if whole + one.len() > cut { break; }
                whole += one.len();
                kept += 1;
            }
            prop_assert_eq!(&scan.records[..], &rs[..kept]);
            if cut >= WAL_HEADER_LEN {
                prop_assert_eq!(scan.valid_len, whole as u64);
                prop_assert_eq!(scan.torn_at.is_some(), cut != whole);
            }
        }

        /// A flipped bit never yields different records silently: the scan
        /// fails, or stops at a torn tail with a prefix of the records.
        #[test]
        fn flipped_bits_are_caught(rs in records(), at in any::<prop::sample::Index>(), bit in 0u8..8) {
            let mut bytes = log(&rs);
            let at = at.index(bytes.len());
            bytes[at] ^= 1 << bit;
            if let Ok(scan) = scan(Path::new("w"), 3, &bytes, true) {
                prop_assert!(scan.records.len() <= rs.len());
                prop_assert_eq!(&scan.records[..], &rs[..scan.records.len()]);
                prop_assert!(scan.torn_at.is_some());
            }
        }

        #[test]
        fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..256)) {
            crate::collection::fuzzing::parse_everything(&bytes);
        }
    }

    #[test]
    fn corruption_in_the_middle_names_file_and_offset() {
        let rs: Vec<WalRecord> = (0..3)
            .map(|i| WalRecord {
                lsn: i + 1,
                op: WalOp::Delete(vec![i, i + 100]),
            })
            .collect();
        let mut bytes = log(&rs);
        let second = WAL_HEADER_LEN + (bytes.len() - WAL_HEADER_LEN) / 3;
        bytes[second + FRAME_LEN + 2] ^= 0xff;
        let err = scan(Path::new("/c/wal-3.log"), 3, &bytes, true).unwrap_err();
        let text = err.to_string();
        assert!(text.contains("/c/wal-3.log"), "{text}");
        assert!(text.contains(&format!("offset {second}")), "{text}");
    }
}
