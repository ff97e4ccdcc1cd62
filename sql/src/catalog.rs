//! Tables: what SQL can name, and the one trait every kind of table
//! implements so the planner and executor never care where rows live.
//!
//! Today one kind exists: a bare segment from omen-build
//! ([`SegmentTable`]), read-only, with columns `id bigint` and
//! `embedding vector(d)`. The writable collection (engine/src/collection)
//! and segment attribute columns slot in as further `Table`
//! implementations; the trait already carries their operations, which a
//! segment refuses with 25006.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};

use omen_engine::filter::Filter;
use omen_engine::index::{Hit, QueryStats, SearchParams, Segment, SegmentOptions};
use omen_format::Metric;
use omen_format::attr::{ColumnType, Value};

use crate::{Result, SqlError};

/// What a column holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ColumnKind {
    /// The row id: `bigint`, the primary key.
    Id,
    /// The indexed vector: `vector(dim)`.
    Vector { dim: usize },
    /// A scalar attribute.
    Attribute(ColumnType),
}

/// One column of a table.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Column {
    pub name: String,
    pub kind: ColumnKind,
}

/// A table's name, columns and the metric its index orders by.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TableSchema {
    pub name: String,
    pub columns: Vec<Column>,
    pub metric: Metric,
}

impl TableSchema {
    /// The column called `name` (case-insensitive, as unquoted SQL).
    pub fn column(&self, name: &str) -> Result<&Column> {
        self.columns
            .iter()
            .find(|c| c.name.eq_ignore_ascii_case(name))
            .ok_or_else(|| SqlError::UndefinedColumn {
                table: self.name.clone(),
                column: name.to_string(),
            })
    }

    /// The vector column and its dimension.
    pub fn vector_column(&self) -> (&str, usize) {
        self.columns
            .iter()
            .find_map(|c| match c.kind {
                ColumnKind::Vector { dim } => Some((c.name.as_str(), dim)),
                _ => None,
            })
            .unwrap_or(("embedding", 0))
    }
}

/// One nearest-neighbour request against a table.
#[derive(Debug, Clone)]
pub struct SearchRequest<'a> {
    pub query: &'a [f32],
    pub k: usize,
    pub params: SearchParams,
    /// Pushed down to the engine's filtered search; never applied after.
    pub filter: Option<&'a Filter>,
}

/// What a search found and what it cost.
#[derive(Debug, Clone, Default)]
pub struct SearchOutcome {
    /// Closest first; distances as the engine reports them for the
    /// table's metric (squared for L2).
    pub hits: Vec<Hit>,
    pub stats: QueryStats,
}

/// One piece of storage a table searches, for EXPLAIN.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SegmentDescription {
    pub path: PathBuf,
    pub rows: u64,
    pub io: String,
}

/// How a table would run a search, for EXPLAIN.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SearchPlan {
    pub segments: Vec<SegmentDescription>,
    /// The engine's filter strategy; `None` without a filter.
    pub filter_strategy: Option<String>,
}

/// A table that SQL can read and, where the table allows it, write.
pub trait Table: Send + Sync + std::fmt::Debug {
    fn schema(&self) -> &TableSchema;

    /// The `k` rows nearest `request.query` that pass `request.filter`.
    fn search(&self, request: &SearchRequest<'_>) -> Result<SearchOutcome>;

    /// How [`Table::search`] would run, without running it.
    fn plan_search(&self, filter: Option<&Filter>) -> Result<SearchPlan>;

    /// Rows that pass `filter` (all rows without one).
    fn count(&self, filter: Option<&Filter>) -> Result<u64>;

    /// Whether writes are possible at all.
    fn writable(&self) -> bool {
        false
    }

    /// Inserts rows: `(id, vector, attributes in schema order)`.
    fn insert(&self, _rows: Vec<(u64, Vec<f32>, Vec<Value>)>) -> Result<u64> {
        Err(self.read_only())
    }

    /// Deletes the rows with these ids; returns how many existed.
    fn delete(&self, _ids: &[u64]) -> Result<u64> {
        Err(self.read_only())
    }

    /// The error a write gets.
    fn read_only(&self) -> SqlError {
        SqlError::ReadOnly(format!(
            "table \"{}\" is a read-only segment; writes need a collection served with --writable",
            self.schema().name
        ))
    }
}

/// A bare segment built by omen-build, served read-only. Ids are the
/// segment's row numbers.
#[derive(Debug)]
pub struct SegmentTable {
    schema: TableSchema,
    segment: Segment,
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
        Ok(SegmentTable { schema, segment })
    }

    pub fn segment(&self) -> &Segment {
        &self.segment
    }

    fn no_filters(&self) -> SqlError {
        SqlError::unsupported(format!(
            "table \"{}\" is a bare segment without attribute columns; WHERE is supported on attribute columns of tables that have them",
            self.schema.name
        ))
    }
}

impl Table for SegmentTable {
    fn schema(&self) -> &TableSchema {
        &self.schema
    }

    fn search(&self, request: &SearchRequest<'_>) -> Result<SearchOutcome> {
        if request.filter.is_some() {
            return Err(self.no_filters());
        }
        let (hits, stats) = self
            .segment
            .search(request.query, request.k, &request.params)?;
        Ok(SearchOutcome { hits, stats })
    }

    fn plan_search(&self, filter: Option<&Filter>) -> Result<SearchPlan> {
        if filter.is_some() {
            return Err(self.no_filters());
        }
        Ok(SearchPlan {
            segments: vec![SegmentDescription {
                path: self.segment.path().to_path_buf(),
                rows: self.segment.info().vector_count,
                io: self.segment.io_mode().to_string(),
            }],
            filter_strategy: None,
        })
    }

    fn count(&self, filter: Option<&Filter>) -> Result<u64> {
        if filter.is_some() {
            return Err(self.no_filters());
        }
        Ok(self.segment.info().vector_count)
    }
}

/// The tables a server or shell serves, by lower-case name. Readers take
/// a snapshot (`Arc`) of a table, so a reload never pulls a table out from
/// under a running query.
#[derive(Debug, Default)]
pub struct Catalog {
    tables: RwLock<BTreeMap<String, Arc<dyn Table>>>,
}

impl Catalog {
    pub fn new() -> Self {
        Catalog::default()
    }

    /// The table called `name`.
    pub fn get(&self, name: &str) -> Result<Arc<dyn Table>> {
        self.tables
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .get(&name.to_ascii_lowercase())
            .cloned()
            .ok_or_else(|| SqlError::UndefinedTable(name.to_string()))
    }

    /// Adds or replaces a table.
    pub fn put(&self, table: Arc<dyn Table>) {
        let name = table.schema().name.to_ascii_lowercase();
        self.tables
            .write()
            .unwrap_or_else(|p| p.into_inner())
            .insert(name, table);
    }

    /// Removes a table; queries already holding it finish normally.
    pub fn remove(&self, name: &str) {
        self.tables
            .write()
            .unwrap_or_else(|p| p.into_inner())
            .remove(&name.to_ascii_lowercase());
    }

    /// Whether a table of that name exists.
    pub fn contains(&self, name: &str) -> bool {
        self.tables
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .contains_key(&name.to_ascii_lowercase())
    }

    /// Every table, by name.
    pub fn tables(&self) -> Vec<Arc<dyn Table>> {
        self.tables
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .values()
            .cloned()
            .collect()
    }
}
