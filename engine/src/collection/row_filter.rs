//! Evaluating a [`Filter`] on one row's values, for the rows that are not
//! in a segment yet (memtables). Segments evaluate filters on their
//! columns (`engine::filter`); this follows the same SQL three-valued logic,
//! and the collection tests check that a row matches the same filter
//! before and after its flush.

use omen_format::{ColumnSchema, Value};

use crate::filter::Filter;

/// `Some(true)`, `Some(false)`, or `None` for SQL's unknown. The filter was
/// checked against `schema` (columns exist, literals have their types).
pub(crate) fn eval(filter: &Filter, schema: &[ColumnSchema], row: &[Value]) -> Option<bool> {
    let value = |column: &str| {
        schema
            .iter()
            .position(|c| c.name == column)
            .and_then(|i| row.get(i))
            .unwrap_or(&Value::Null)
    };
    match filter {
        Filter::Compare {
            column,
            op,
            value: v,
        } => value(column).sql_cmp(v).map(|o| op.holds(o)),
        Filter::In { column, values } => {
            let x = value(column);
            let mut unknown = false;
            for v in values {
                match x.sql_cmp(v) {
                    Some(o) if o.is_eq() => return Some(true),
                    Some(_) => {}
                    None => unknown = true,
                }
            }
            if unknown { None } else { Some(false) }
        }
        Filter::Between { column, low, high } => {
            let x = value(column);
            and([
                x.sql_cmp(low).map(|o| o.is_ge()),
                x.sql_cmp(high).map(|o| o.is_le()),
            ])
        }
        Filter::IsNull { column } => Some(value(column).is_null()),
        Filter::And(parts) => and(parts.iter().map(|p| eval(p, schema, row))),
        Filter::Or(parts) => {
            let mut unknown = false;
            for p in parts {
                match eval(p, schema, row) {
                    Some(true) => return Some(true),
                    Some(false) => {}
                    None => unknown = true,
                }
            }
            if unknown { None } else { Some(false) }
        }
        Filter::Not(inner) => eval(inner, schema, row).map(|b| !b),
    }
}

fn and(parts: impl IntoIterator<Item = Option<bool>>) -> Option<bool> {
    let mut unknown = false;
    for p in parts {
        match p {
            Some(false) => return Some(false),
            Some(true) => {}
            None => unknown = true,
        }
    }
    if unknown { None } else { Some(true) }
}
