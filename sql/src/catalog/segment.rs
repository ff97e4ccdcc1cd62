//! A bare segment built by omen-build, served read-only.

use std::collections::HashMap;
use std::path::Path;
use std::sync::{Arc, Mutex};

use omen_engine::distance::Kernels;
use omen_engine::filter::Filter;
use omen_engine::index::{Hit, Segment, SegmentOptions};
use omen_format::{Metric, Value};

use super::{
    Column, ColumnKind, Nearest, Row, SearchOutcome, SearchPlan, SearchRequest, SegmentDescription,
    Table, TableSchema,
};
use crate::{Result, SqlError};

/// Above this many rows a scan reads the file sequentially instead of
/// row by row.
const RANDOM_READ_ROWS: usize = 256;

/// A segment as a table. Ids are the ids the segment stores (row numbers
/// for segments built from a vector file).
#[derive(Debug)]
pub struct SegmentTable {
    schema: TableSchema,
    segment: Segment,
    /// The segment's column index of each SQL attribute column, in order.
    attribute_columns: Vec<usize>,
    row_of: Mutex<Option<Arc<HashMap<u64, u32>>>>,
}

impl SegmentTable {
    /// Opens `path` as table `name`.
    pub fn open(name: &str, path: &Path, options: &SegmentOptions) -> Result<Self> {
        let segment = Segment::open(path, options)?;
        let info = segment.info();
        let schema = TableSchema {
            name: name.to_string(),
            columns: vec![
                Column {
                    name: "id".into(),
                    kind: ColumnKind::Id,
                },
                Column {
                    name: "embedding".into(),
                    kind: ColumnKind::Vector {
                        dim: info.dimension as usize,
                    },
                },
            ],
            metric: info.metric,
        };
        let mut schema = schema;
        // Attribute columns stored in the segment (omen-build --attributes).
        let mut attribute_columns = Vec::new();
        for (index, c) in segment.attribute_schema().into_iter().enumerate() {
            // An attribute named like the id or vector column stays
            // reachable only through the engine; SQL names the built-in one.
            if schema
                .columns
                .iter()
                .any(|x| x.name.eq_ignore_ascii_case(&c.name))
            {
                continue;
            }
            schema.columns.push(Column {
                name: c.name.to_ascii_lowercase(),
                kind: ColumnKind::Attribute(c.ty),
            });
            attribute_columns.push(index);
        }
        Ok(SegmentTable {
            schema,
            segment,
            attribute_columns,
            row_of: Mutex::new(None),
        })
    }

    /// Id → row number. Rows are stored in graph order, not id order, so
    /// the map is built by one sequential scan the first time an id is
    /// looked up (12 bytes per row), then kept.
    fn row_numbers(&self) -> Result<Arc<HashMap<u64, u32>>> {
        let mut slot = self.row_of.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(map) = slot.as_ref() {
            return Ok(map.clone());
        }
        let mut map = HashMap::with_capacity(self.segment.len());
        self.segment.scan_rows(|row, id, _| {
            map.insert(id, row);
            Ok(())
        })?;
        let map = Arc::new(map);
        *slot = Some(map.clone());
        Ok(map)
    }

    /// Rows by row number, with their vectors and attribute values.
    fn read_rows(&self, rows: &[u32]) -> Result<Vec<Row>> {
        let values = self.values_of(rows)?;
        rows.iter()
            .zip(values)
            .map(|(&row, values)| {
                let (id, vector) = self.segment.read_row(row)?;
                Ok(Row { id, vector, values })
            })
            .collect()
    }

    /// The SQL attribute columns' values of `rows`.
    fn values_of(&self, rows: &[u32]) -> Result<Vec<Vec<Value>>> {
        Ok(self
            .segment
            .attribute_rows(rows)?
            .into_iter()
            .map(|all| {
                self.attribute_columns
                    .iter()
                    .map(|&c| all.get(c).cloned().unwrap_or(Value::Null))
                    .collect()
            })
            .collect())
    }

    pub fn segment(&self) -> &Segment {
        &self.segment
    }
}

impl Table for SegmentTable {
    fn schema(&self) -> &TableSchema {
        &self.schema
    }

    fn search(&self, request: &SearchRequest<'_>) -> Result<SearchOutcome> {
        let (hits, stats) = match request.filter {
            // The engine's filtered search: the filter runs inside the
            // walk or scan it chooses, never after it.
            Some(f) => {
                self.segment
                    .search_filtered(request.query, request.k, f, &request.params)?
            }
            None => self
                .segment
                .search(request.query, request.k, &request.params)?,
        };
        Ok(SearchOutcome { hits, stats })
    }

    fn exact_search(&self, request: &SearchRequest<'_>, metric: Metric) -> Result<SearchOutcome> {
        let (_, dim) = self.schema.vector_column();
        if request.query.len() != dim {
            return Err(SqlError::InvalidValue {
                sqlstate: "22000",
                message: format!(
                    "expected {dim} dimensions, not {} (table \"{}\")",
                    request.query.len(),
                    self.schema.name
                ),
            });
        }
        let compiled = request
            .filter
            .map(|f| self.segment.compile_filter(f))
            .transpose()?;
        let kernels = Kernels::<f32>::best();
        let mut nearest = Nearest::new(request.k);
        self.segment.scan_rows(|row, id, vector| {
            if compiled.as_ref().is_none_or(|c| c.matches(row as usize)) {
                nearest.push(Hit {
                    id,
                    distance: kernels.distance(metric, request.query, vector),
                });
            }
            Ok(())
        })?;
        Ok(SearchOutcome {
            hits: nearest.into_hits(),
            stats: Default::default(),
        })
    }

    fn plan_search(&self, filter: Option<&Filter>) -> Result<SearchPlan> {
        let filter_strategy = match filter {
            None => None,
            Some(f) => {
                let p = self.segment.plan_filter(f)?;
                let columns: Vec<String> = p
                    .columns
                    .iter()
                    .map(|(c, ram)| {
                        format!("{c} ({})", if *ram { "in RAM" } else { "read from disk" })
                    })
                    .collect();
                Some(format!(
                    "{} (estimated selectivity {:.4}: ~{:.0} of {} rows; columns {})",
                    p.strategy,
                    p.selectivity,
                    p.estimated_rows(),
                    p.rows,
                    columns.join(", ")
                ))
            }
        };
        Ok(SearchPlan {
            segments: vec![SegmentDescription {
                path: self.segment.path().to_path_buf(),
                rows: self.segment.info().vector_count,
                io: self.segment.io_mode().to_string(),
            }],
            filter_strategy,
        })
    }

    fn count(&self, filter: Option<&Filter>) -> Result<u64> {
        match filter {
            None => Ok(self.segment.info().vector_count),
            Some(f) => Ok(self.segment.count_matching(f)?),
        }
    }

    fn rows(&self, ids: &[u64]) -> Result<Vec<Row>> {
        let map = self.row_numbers()?;
        let rows: Vec<u32> = ids.iter().filter_map(|id| map.get(id).copied()).collect();
        self.read_rows(&rows)
    }

    fn scan(&self, limit: usize) -> Result<Vec<Row>> {
        let n = limit.min(self.segment.len());
        if n <= RANDOM_READ_ROWS {
            return self.read_rows(&(0..n as u32).collect::<Vec<_>>());
        }
        let mut out = Vec::with_capacity(n);
        self.segment.scan_rows(|_, id, v| {
            if out.len() < n {
                out.push(Row {
                    id,
                    vector: v.to_vec(),
                    values: Vec::new(),
                });
            }
            Ok(())
        })?;
        let values = self.values_of(&(0..out.len() as u32).collect::<Vec<_>>())?;
        for (row, values) in out.iter_mut().zip(values) {
            row.values = values;
        }
        Ok(out)
    }
}
