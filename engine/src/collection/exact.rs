//! Exact search under any metric ([`Collection::exact_search`]): every
//! live row is scored, so the result is exact whatever metric the
//! segments' graphs were built for. This is what SQL runs when a query's
//! distance operator is not the one the collection is indexed for
//! (pgvector falls back to a sequential scan the same way).

use omen_format::Metric;

use super::memtable::TopK;
use super::{Collection, row_filter};
use crate::Result;
use crate::distance::Kernels;
use crate::filter::Filter;
use crate::index::Hit;

impl Collection {
    /// The `k` live rows nearest `query` under `metric` that satisfy
    /// `filter` (SQL semantics, as in [`Collection::search_filtered`]),
    /// closest first, by scoring every live row: a full read of the
    /// collection, exact by construction.
    pub fn exact_search(
        &self,
        query: &[f32],
        k: usize,
        metric: Metric,
        filter: Option<&Filter>,
    ) -> Result<Vec<Hit>> {
        let inner = &self.inner;
        let columns = &inner.schema.columns;
        if let Some(f) = filter {
            crate::filter::check(f, columns)?;
        }
        crate::index::check_query(query, k, inner.schema.dimension, || {
            format!("the collection {}", inner.dir.display())
        })?;
        let kernels = Kernels::<f32>::best();
        let mut top = TopK::default();
        inner.scan_live(&mut |id, vector, values| {
            if filter.is_none_or(|f| row_filter::eval(f, columns, values) == Some(true)) {
                let distance = kernels.distance(metric, query, vector);
                top.push(Hit { id, distance }, k);
            }
        })?;
        Ok(top.into_hits())
    }
}
