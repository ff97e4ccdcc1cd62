//! Selectivity estimates from per-segment column statistics (SPEC.md §7.3):
//! exact where the statistics decide it (a value outside `[min, max]`, a
//! value among the most common values, a column whose most common values
//! cover every distinct value), interpolated in the equi-depth histogram
//! for numeric ranges, and otherwise the uniform share of the remaining
//! rows. Conjunctions multiply (independence), disjunctions combine as
//! `1 − Π(1 − s)`.

use omen_format::attr::{ColumnSchema, Value};
use omen_format::segment::attributes::ColumnStats;

use super::{CompareOp, Filter};

/// Estimated fraction of rows matching `filter`, in `0..=1`. Columns the
/// statistics do not cover count as a fraction of 1 (no information).
pub fn selectivity(filter: &Filter, schema: &[ColumnSchema], stats: &[ColumnStats]) -> f64 {
    let find = |column: &str| {
        schema
            .iter()
            .position(|c| c.name == column)
            .and_then(|i| stats.get(i))
    };
    let s = match filter {
        Filter::Compare { column, op, value } => match find(column) {
            Some(st) => compare(st, *op, value),
            None => 1.0,
        },
        Filter::Between { column, low, high } => match find(column) {
            Some(st) => {
                (compare(st, CompareOp::Le, high) - compare(st, CompareOp::Lt, low)).max(0.0)
            }
            None => 1.0,
        },
        Filter::In { column, values } => match find(column) {
            Some(st) => {
                let mut seen: Vec<&Value> = Vec::new();
                let mut sum = 0.0;
                for v in values {
                    if !seen.iter().any(|s| s.sql_cmp(v).is_some_and(|o| o.is_eq())) {
                        seen.push(v);
                        sum += compare(st, CompareOp::Eq, v);
                    }
                }
                sum.min(non_null(st))
            }
            None => 1.0,
        },
        Filter::IsNull { column } => match find(column) {
            Some(st) => fraction(st.null_count, st.rows),
            None => 1.0,
        },
        Filter::And(parts) => parts
            .iter()
            .map(|p| selectivity(p, schema, stats))
            .product(),
        Filter::Or(parts) => {
            1.0 - parts
                .iter()
                .map(|p| 1.0 - selectivity(p, schema, stats))
                .product::<f64>()
        }
        Filter::Not(inner) => 1.0 - selectivity(inner, schema, stats),
    };
    s.clamp(0.0, 1.0)
}

fn fraction(count: u64, rows: u64) -> f64 {
    if rows == 0 {
        0.0
    } else {
        count as f64 / rows as f64
    }
}

fn non_null(st: &ColumnStats) -> f64 {
    fraction(st.non_null(), st.rows)
}

fn is_eq(a: &Value, b: &Value) -> bool {
    a.sql_cmp(b).is_some_and(|o| o.is_eq())
}

/// Fraction of rows with `column op value`.
fn compare(st: &ColumnStats, op: CompareOp, value: &Value) -> f64 {
    if value.is_null() || st.non_null() == 0 {
        return 0.0;
    }
    let (Some(min), Some(max)) = (&st.min, &st.max) else {
        return 0.0;
    };
    let mcv_rows: u64 = st.most_common.iter().map(|m| m.1).sum();
    let complete = st.most_common.len() as u64 == st.distinct_count;
    let eq = || {
        if let Some((_, n)) = st.most_common.iter().find(|(v, _)| is_eq(v, value)) {
            return fraction(*n, st.rows);
        }
        let outside = value.sql_cmp(min).is_some_and(|o| o.is_lt())
            || value.sql_cmp(max).is_some_and(|o| o.is_gt());
        if complete || outside {
            return 0.0;
        }
        let rest_values = st.distinct_count - st.most_common.len() as u64;
        fraction(st.non_null() - mcv_rows.min(st.non_null()), st.rows) / rest_values.max(1) as f64
    };
    match op {
        CompareOp::Eq => eq(),
        CompareOp::Ne => (non_null(st) - eq()).max(0.0),
        CompareOp::Lt | CompareOp::Le | CompareOp::Gt | CompareOp::Ge => {
            // Fraction strictly below / at-or-below the value.
            let (below, at_or_below) = if complete {
                let count = |keep: &dyn Fn(std::cmp::Ordering) -> bool| {
                    st.most_common
                        .iter()
                        .filter(|(v, _)| v.sql_cmp(value).is_some_and(keep))
                        .map(|m| m.1)
                        .sum::<u64>()
                };
                (
                    fraction(count(&|o| o.is_lt()), st.rows),
                    fraction(count(&|o| o.is_le()), st.rows),
                )
            } else if let (Some(h), Some(x)) = (&st.histogram, as_f64(value)) {
                let b = histogram_below(h, x) * non_null(st);
                (b, b + eq())
            } else {
                // No histogram (text, bool with many values): a third, as
                // PostgreSQL assumes for an unknown inequality.
                let third = non_null(st) / 3.0;
                (third, third)
            };
            match op {
                CompareOp::Lt => below,
                CompareOp::Le => at_or_below,
                CompareOp::Gt => non_null(st) - at_or_below,
                _ => non_null(st) - below,
            }
            .clamp(0.0, 1.0)
        }
    }
}

fn as_f64(v: &Value) -> Option<f64> {
    match v {
        Value::Int64(x) | Value::Timestamp(x) => Some(*x as f64),
        Value::Float64(x) => Some(*x),
        _ => None,
    }
}

/// Fraction of non-NULL values below `x`, interpolating linearly inside
/// the bucket that holds it.
fn histogram_below(h: &omen_format::segment::attributes::Histogram, x: f64) -> f64 {
    let total: u64 = h.counts.iter().sum();
    if total == 0 {
        return 0.0;
    }
    let mut below = 0.0;
    for (i, &count) in h.counts.iter().enumerate() {
        let (lo, hi) = (h.bounds[i], h.bounds[i + 1]);
        if x >= hi && i + 1 < h.counts.len() {
            below += count as f64;
        } else if x > lo {
            let width = hi - lo;
            let part = if width > 0.0 {
                ((x - lo) / width).min(1.0)
            } else {
                1.0
            };
            below += count as f64 * part;
            break;
        } else {
            break;
        }
    }
    below / total as f64
}
