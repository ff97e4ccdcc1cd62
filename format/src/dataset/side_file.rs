//! Attribute side files for `omen-build --attributes`: one row per vector,
//! in vector (id) order, as CSV (a header row names the columns) or JSON
//! lines (one object per line; keys name the columns).
//!
//! Types are inferred per column unless declared: every non-empty value an
//! integer gives int64, a number float64, `true`/`false` bool, an ISO 8601
//! date or date-time (`2024-05-01`, `2024-05-01T12:00:00.5Z`) timestamp,
//! anything else text. An empty CSV field, a JSON `null` or a missing key is
//! NULL, and a column with a NULL is nullable. Every error names the file,
//! the line, the column and the byte offset of the line.

#![expect(
    clippy::indexing_slicing,
    reason = "cells are indexed by column positions checked against the header"
)]

use std::path::Path;

use crate::attr::{ColumnSchema, ColumnType, Value};
use crate::segment::attributes::AttributeColumns;
use crate::{FormatError, Result};

/// The syntax of a side file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SideFormat {
    Csv,
    JsonLines,
}

impl SideFormat {
    /// From the extension: `.csv`, or `.jsonl` / `.ndjson` / `.json`.
    pub fn from_path(path: &Path) -> Result<Self> {
        match path
            .extension()
            .and_then(|e| e.to_str())
            .map(str::to_ascii_lowercase)
            .as_deref()
        {
            Some("csv") => Ok(SideFormat::Csv),
            Some("jsonl" | "ndjson" | "json") => Ok(SideFormat::JsonLines),
            _ => Err(FormatError::InvalidArgument(format!(
                "{}: attribute side files are .csv or .jsonl (JSON lines)",
                path.display()
            ))),
        }
    }
}

/// One raw cell before typing.
#[derive(Debug, Clone)]
enum Cell {
    Null,
    /// CSV text, or a JSON string.
    Text(String),
    Json(serde_json::Value),
}

/// Reads the side file at `path`; `declared` fixes the types of some
/// columns (the rest are inferred).
pub fn read_side_file(path: &Path, declared: &[(String, ColumnType)]) -> Result<AttributeColumns> {
    let bytes = std::fs::read(path).map_err(|e| FormatError::io(path, e))?;
    parse_side_file(path, &bytes, SideFormat::from_path(path)?, declared)
}

/// Parses side-file `bytes`; `label` names the file in errors.
pub fn parse_side_file(
    label: &Path,
    bytes: &[u8],
    format: SideFormat,
    declared: &[(String, ColumnType)],
) -> Result<AttributeColumns> {
    let path = label.to_path_buf();
    let text = std::str::from_utf8(bytes).map_err(|e| FormatError::InvalidData {
        path: path.clone(),
        offset: e.valid_up_to() as u64,
        reason: "attribute side files are UTF-8".into(),
    })?;
    let (names, rows) = match format {
        SideFormat::Csv => csv_rows(&path, text)?,
        SideFormat::JsonLines => json_rows(&path, text)?,
    };
    if let Some((name, _)) = declared.iter().find(|(n, _)| !names.contains(n)) {
        return Err(FormatError::InvalidArgument(format!(
            "{}: --attr-types names column \"{name}\", which the file does not have (it has {})",
            path.display(),
            names.join(", ")
        )));
    }
    let mut schema = Vec::with_capacity(names.len());
    for (c, name) in names.iter().enumerate() {
        let ty = match declared.iter().find(|(n, _)| n == name) {
            Some((_, ty)) => *ty,
            None => infer(rows.iter().map(|r| &r.cells[c])),
        };
        let nullable = rows.iter().any(|r| matches!(r.cells[c], Cell::Null));
        schema.push(ColumnSchema {
            name: name.clone(),
            ty,
            nullable,
        });
    }
    let mut columns =
        AttributeColumns::new(schema.clone()).map_err(|e| FormatError::InvalidData {
            path: path.clone(),
            offset: 0,
            reason: format!("header: {e}"),
        })?;
    let mut values = Vec::with_capacity(schema.len());
    for row in &rows {
        values.clear();
        for (cell, col) in row.cells.iter().zip(&schema) {
            values.push(
                convert(cell, col.ty).map_err(|why| FormatError::InvalidData {
                    path: path.clone(),
                    offset: row.offset,
                    reason: format!(
                        "line {}, column \"{}\" ({}): {why}",
                        row.line, col.name, col.ty
                    ),
                })?,
            );
        }
        columns
            .push_row(&values)
            .map_err(|e| FormatError::InvalidData {
                path: path.clone(),
                offset: row.offset,
                reason: format!("line {}: {e}", row.line),
            })?;
    }
    Ok(columns)
}

/// A data row: its cells, 1-based line number and byte offset.
struct Row {
    cells: Vec<Cell>,
    line: usize,
    offset: u64,
}

fn invalid(path: &Path, offset: usize, line: usize, why: String) -> FormatError {
    FormatError::InvalidData {
        path: path.to_path_buf(),
        offset: offset as u64,
        reason: format!("line {line}: {why}"),
    }
}

/// One CSV record's fields: text and whether it was quoted.
type Fields = Vec<(String, bool)>;

/// RFC 4180 CSV: fields separated by commas, optionally double-quoted
/// (quotes inside doubled), records ending in LF or CRLF.
fn csv_rows(path: &Path, text: &str) -> Result<(Vec<String>, Vec<Row>)> {
    // (fields as (text, was quoted), byte offset, line)
    let mut records: Vec<(Fields, usize, usize)> = Vec::new();
    let mut at = 0usize;
    let mut line = 1usize;
    let bytes = text.as_bytes();
    while at < bytes.len() {
        let (start, start_line) = (at, line);
        let mut fields = Vec::new();
        loop {
            let mut field = String::new();
            let quoted = bytes.get(at) == Some(&b'"');
            if quoted {
                at += 1;
                loop {
                    match bytes.get(at) {
                        None => {
                            return Err(invalid(
                                path,
                                start,
                                start_line,
                                "unterminated quoted field".into(),
                            ));
                        }
                        Some(b'"') if bytes.get(at + 1) == Some(&b'"') => {
                            field.push('"');
                            at += 2;
                        }
                        Some(b'"') => {
                            at += 1;
                            break;
                        }
                        Some(_) => {
                            let ch = text
                                .get(at..)
                                .and_then(|s| s.chars().next())
                                .unwrap_or('\u{fffd}');
                            if ch == '\n' {
                                line += 1;
                            }
                            field.push(ch);
                            at += ch.len_utf8();
                        }
                    }
                }
            } else {
                let end = bytes
                    .get(at..)
                    .and_then(|rest| {
                        rest.iter()
                            .position(|&b| matches!(b, b',' | b'\n' | b'\r' | b'"'))
                    })
                    .map_or(bytes.len(), |p| at + p);
                field.push_str(text.get(at..end).unwrap_or_default());
                at = end;
                if bytes.get(at) == Some(&b'"') {
                    return Err(invalid(
                        path,
                        start,
                        start_line,
                        "a quote inside an unquoted field".into(),
                    ));
                }
            }
            fields.push((field, quoted));
            match bytes.get(at) {
                Some(b',') => at += 1,
                Some(b'\r') if bytes.get(at + 1) == Some(&b'\n') => {
                    at += 2;
                    break;
                }
                Some(b'\n') => {
                    at += 1;
                    break;
                }
                None => break,
                Some(_) => {
                    return Err(invalid(
                        path,
                        start,
                        start_line,
                        "text after a closing quote".into(),
                    ));
                }
            }
        }
        line += 1;
        records.push((fields, start, start_line));
    }
    let mut records = records.into_iter();
    let (header, _, _) = records.next().ok_or_else(|| {
        invalid(
            path,
            0,
            1,
            "empty file: expected a header row naming the columns".into(),
        )
    })?;
    let names: Vec<String> = header
        .into_iter()
        .map(|(f, _)| f.trim().to_string())
        .collect();
    // A blank line is skipped, unless the file has one column: then it is
    // a NULL.
    let blank = |f: &Fields| f.len() == 1 && f[0].0.is_empty() && !f[0].1;
    let rows = records
        .filter(|(fields, _, _)| names.len() == 1 || !blank(fields))
        .map(|(fields, offset, line)| {
            if fields.len() != names.len() {
                return Err(invalid(
                    path,
                    offset,
                    line,
                    format!(
                        "{} fields, the header names {} columns",
                        fields.len(),
                        names.len()
                    ),
                ));
            }
            Ok(Row {
                cells: fields
                    .into_iter()
                    .map(|(f, quoted)| {
                        if f.is_empty() && !quoted {
                            Cell::Null
                        } else {
                            Cell::Text(f)
                        }
                    })
                    .collect(),
                line,
                offset: offset as u64,
            })
        })
        .collect::<Result<_>>()?;
    Ok((names, rows))
}

/// JSON lines: one object per non-blank line; columns in order of first
/// appearance.
fn json_rows(path: &Path, text: &str) -> Result<(Vec<String>, Vec<Row>)> {
    let mut names: Vec<String> = Vec::new();
    let mut objects = Vec::new();
    let mut offset = 0usize;
    for (i, line) in text.split_inclusive('\n').enumerate() {
        let start = offset;
        offset += line.len();
        if line.trim().is_empty() {
            continue;
        }
        let value: serde_json::Value = serde_json::from_str(line)
            .map_err(|e| invalid(path, start, i + 1, format!("not JSON: {e}")))?;
        let serde_json::Value::Object(map) = value else {
            return Err(invalid(path, start, i + 1, "expected a JSON object".into()));
        };
        for k in map.keys() {
            if !names.contains(k) {
                names.push(k.clone());
            }
        }
        objects.push((map, i + 1, start));
    }
    if objects.is_empty() {
        return Err(invalid(path, 0, 1, "no JSON objects".into()));
    }
    let rows = objects
        .into_iter()
        .map(|(mut map, line, offset)| Row {
            cells: names
                .iter()
                .map(|n| match map.remove(n) {
                    None | Some(serde_json::Value::Null) => Cell::Null,
                    Some(serde_json::Value::String(s)) => Cell::Text(s),
                    Some(v) => Cell::Json(v),
                })
                .collect(),
            line,
            offset: offset as u64,
        })
        .collect();
    Ok((names, rows))
}

/// The narrowest type that holds every non-NULL cell.
fn infer<'a>(cells: impl Iterator<Item = &'a Cell>) -> ColumnType {
    let order = [
        ColumnType::Int64,
        ColumnType::Float64,
        ColumnType::Bool,
        ColumnType::Timestamp,
    ];
    let mut fits = [true; 4];
    let mut any = false;
    for cell in cells {
        if matches!(cell, Cell::Null) {
            continue;
        }
        any = true;
        for (f, ty) in fits.iter_mut().zip(order) {
            *f = *f && convert(cell, ty).is_ok();
        }
        if !fits.iter().any(|&f| f) {
            return ColumnType::Text;
        }
    }
    if !any {
        return ColumnType::Text;
    }
    order
        .iter()
        .zip(fits)
        .find(|(_, f)| *f)
        .map_or(ColumnType::Text, |(t, _)| *t)
}

fn convert(cell: &Cell, ty: ColumnType) -> std::result::Result<Value, String> {
    let text = match cell {
        Cell::Null => return Ok(Value::Null),
        Cell::Text(s) => s.as_str(),
        Cell::Json(v) => {
            return match (ty, v) {
                (ColumnType::Int64 | ColumnType::Timestamp, serde_json::Value::Number(n)) => n
                    .as_i64()
                    .map(|x| {
                        if ty == ColumnType::Int64 {
                            Value::Int64(x)
                        } else {
                            Value::Timestamp(x)
                        }
                    })
                    .ok_or_else(|| format!("{n} is not a 64-bit integer")),
                (ColumnType::Float64, serde_json::Value::Number(n)) => n
                    .as_f64()
                    .filter(|x| x.is_finite())
                    .map(Value::Float64)
                    .ok_or_else(|| format!("{n} is not a finite number")),
                (ColumnType::Bool, serde_json::Value::Bool(b)) => Ok(Value::Bool(*b)),
                (
                    ColumnType::Text,
                    v @ (serde_json::Value::Number(_) | serde_json::Value::Bool(_)),
                ) => Ok(Value::Text(v.to_string())),
                (_, v) => Err(format!("cannot hold the JSON value {v}")),
            };
        }
    };
    let t = text.trim();
    match ty {
        ColumnType::Text => Ok(Value::Text(text.to_string())),
        ColumnType::Int64 => t
            .parse::<i64>()
            .map(Value::Int64)
            .map_err(|_| format!("{text:?} is not an integer")),
        ColumnType::Float64 => t
            .parse::<f64>()
            .ok()
            .filter(|x| x.is_finite())
            .map(Value::Float64)
            .ok_or_else(|| format!("{text:?} is not a finite number")),
        ColumnType::Bool => match t.to_ascii_lowercase().as_str() {
            "true" | "t" => Ok(Value::Bool(true)),
            "false" | "f" => Ok(Value::Bool(false)),
            _ => Err(format!("{text:?} is not true or false")),
        },
        ColumnType::Timestamp => parse_timestamp(t).map(Value::Timestamp).ok_or_else(|| {
            format!(
                "{text:?} is not a date (YYYY-MM-DD[THH:MM:SS[.ffffff]][Z]) or integer microseconds"
            )
        }),
    }
}

/// Microseconds since 1970-01-01T00:00:00Z of an ISO 8601 date or UTC
/// date-time, or of an integer (already microseconds).
pub fn parse_timestamp(s: &str) -> Option<i64> {
    if let Ok(micros) = s.parse::<i64>() {
        return Some(micros);
    }
    let num = |t: &str| -> Option<i64> {
        (!t.is_empty() && t.bytes().all(|b| b.is_ascii_digit()))
            .then(|| t.parse().ok())
            .flatten()
    };
    let (date, time) = match s.find(['T', ' ']) {
        Some(i) => (s.get(..i)?, Some(s.get(i + 1..)?)),
        None => (s, None),
    };
    let mut d = date.split('-');
    let (y, m, day) = (num(d.next()?)?, num(d.next()?)?, num(d.next()?)?);
    if d.next().is_some() || !(1..=12).contains(&m) || !(1..=31).contains(&day) || date.len() != 10
    {
        return None;
    }
    let days = days_from_civil(y, m, day);
    let mut micros = 0i64;
    if let Some(time) = time {
        let time = time.strip_suffix('Z').unwrap_or(time);
        let (hms, frac) = match time.split_once('.') {
            Some((a, b)) => (a, Some(b)),
            None => (time, None),
        };
        let mut p = hms.split(':');
        let (h, mi, sec) = (num(p.next()?)?, num(p.next()?)?, num(p.next()?)?);
        if p.next().is_some() || h > 23 || mi > 59 || sec > 60 {
            return None;
        }
        micros = ((h * 60 + mi) * 60 + sec) * 1_000_000;
        if let Some(f) = frac {
            if f.is_empty() || f.len() > 6 {
                return None;
            }
            micros += num(f)? * 10i64.pow(6 - f.len() as u32);
        }
    }
    days.checked_mul(86_400_000_000)?.checked_add(micros)
}

/// Days since 1970-01-01 of a proleptic Gregorian date (H. Hinnant).
fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}
