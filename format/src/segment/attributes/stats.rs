//! Per-column statistics, computed when a segment is written and read back
//! by the planner of filtered searches to estimate selectivity: NULL count,
//! exact distinct count, min/max, the most common values with their exact
//! counts, and (for numeric and timestamp columns) an equi-depth histogram.

#![expect(
    clippy::indexing_slicing,
    reason = "computed from in-memory columns whose lengths were checked; no input bytes are parsed here"
)]

use super::{Column, ColumnValues, HISTOGRAM_BUCKETS, MOST_COMMON};
use crate::attr::Value;

/// What the planner knows about one column of one segment.
#[derive(Debug, Clone, PartialEq)]
pub struct ColumnStats {
    /// Rows of the segment.
    pub rows: u64,
    /// Rows that are NULL.
    pub null_count: u64,
    /// Distinct non-NULL values (exact).
    pub distinct_count: u64,
    /// Smallest and largest non-NULL value; `None` when every row is NULL.
    pub min: Option<Value>,
    pub max: Option<Value>,
    /// Up to [`MOST_COMMON`] most frequent values and their exact counts,
    /// most frequent first (ties: smaller value first).
    pub most_common: Vec<(Value, u64)>,
    /// Numeric and timestamp columns only.
    pub histogram: Option<Histogram>,
}

/// An equi-depth histogram over the non-NULL values, as `f64`.
///
/// Bucket `i` counts values `v` with `bounds[i] <= v < bounds[i + 1]`; the
/// last bucket also counts `v == bounds[last]`. `bounds` is non-decreasing
/// and one longer than `counts`; the counts sum to the non-NULL rows.
#[derive(Debug, Clone, PartialEq)]
pub struct Histogram {
    pub bounds: Vec<f64>,
    pub counts: Vec<u64>,
}

impl ColumnStats {
    /// Non-NULL rows.
    pub fn non_null(&self) -> u64 {
        self.rows - self.null_count.min(self.rows)
    }

    /// Computes the statistics of `column`.
    pub fn compute(column: &Column) -> ColumnStats {
        let rows = column.len();
        let present = |i: usize| !column.is_null(i);
        let null_count = (0..rows).filter(|&i| !present(i)).count() as u64;
        let mut stats = ColumnStats {
            rows: rows as u64,
            null_count,
            distinct_count: 0,
            min: None,
            max: None,
            most_common: Vec::new(),
            histogram: None,
        };
        match &column.values {
            ColumnValues::Int64(v) | ColumnValues::Timestamp(v) => {
                let wrap = |x: i64| match column.values {
                    ColumnValues::Timestamp(_) => Value::Timestamp(x),
                    _ => Value::Int64(x),
                };
                let mut sorted: Vec<i64> =
                    (0..rows).filter(|&i| present(i)).map(|i| v[i]).collect();
                sorted.sort_unstable();
                fill_sorted(&mut stats, &sorted, |a, b| a == b, |&x| wrap(x));
                stats.histogram = histogram(&sorted.iter().map(|&x| x as f64).collect::<Vec<_>>());
            }
            ColumnValues::Float64(v) => {
                let mut sorted: Vec<f64> =
                    (0..rows).filter(|&i| present(i)).map(|i| v[i]).collect();
                sorted.sort_unstable_by(f64::total_cmp);
                fill_sorted(
                    &mut stats,
                    &sorted,
                    |a, b| a.total_cmp(b).is_eq(),
                    |&x| Value::Float64(x),
                );
                stats.histogram = histogram(&sorted);
            }
            ColumnValues::Bool(v) => {
                let mut sorted: Vec<bool> =
                    (0..rows).filter(|&i| present(i)).map(|i| v[i]).collect();
                sorted.sort_unstable();
                fill_sorted(&mut stats, &sorted, |a, b| a == b, |&x| Value::Bool(x));
            }
            ColumnValues::Text { dictionary, codes } => {
                let mut sorted: Vec<u32> = (0..rows)
                    .filter(|&i| present(i))
                    .map(|i| codes[i])
                    .collect();
                sorted.sort_unstable();
                let text =
                    |&c: &u32| Value::Text(dictionary.get(c as usize).cloned().unwrap_or_default());
                fill_sorted(&mut stats, &sorted, |a, b| a == b, text);
            }
        }
        stats
    }
}

/// Distinct count, min/max and most common values from sorted values.
fn fill_sorted<T>(
    stats: &mut ColumnStats,
    sorted: &[T],
    same: impl Fn(&T, &T) -> bool,
    value: impl Fn(&T) -> Value,
) {
    let (Some(first), Some(last)) = (sorted.first(), sorted.last()) else {
        return;
    };
    stats.min = Some(value(first));
    stats.max = Some(value(last));
    let mut runs: Vec<(usize, u64)> = Vec::new();
    let mut start = 0;
    for i in 1..=sorted.len() {
        if i == sorted.len() || !same(&sorted[start], &sorted[i]) {
            runs.push((start, (i - start) as u64));
            start = i;
        }
    }
    stats.distinct_count = runs.len() as u64;
    // Most frequent first; stable, so equal counts keep value order.
    runs.sort_by_key(|r| std::cmp::Reverse(r.1));
    stats.most_common = runs
        .iter()
        .take(MOST_COMMON)
        .map(|&(at, count)| (value(&sorted[at]), count))
        .collect();
}

/// An equi-depth histogram of sorted values; `None` when there are none.
fn histogram(sorted: &[f64]) -> Option<Histogram> {
    let n = sorted.len();
    if n == 0 {
        return None;
    }
    let buckets = HISTOGRAM_BUCKETS.min(n);
    let mut bounds: Vec<f64> = (0..buckets).map(|b| sorted[b * n / buckets]).collect();
    bounds.push(sorted[n - 1]);
    bounds.dedup_by(|a, b| a.total_cmp(b).is_eq());
    if bounds.len() == 1 {
        bounds.push(bounds[0]);
    }
    let below = |x: f64| sorted.partition_point(|v| v.total_cmp(&x).is_lt()) as u64;
    let last = bounds.len() - 2;
    let counts = (0..bounds.len() - 1)
        .map(|b| {
            let hi = if b == last {
                n as u64
            } else {
                below(bounds[b + 1])
            };
            hi - below(bounds[b])
        })
        .collect();
    Some(Histogram { bounds, counts })
}
