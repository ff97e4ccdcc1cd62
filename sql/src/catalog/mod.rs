//! Tables: what SQL can name, and the one trait every kind of table
//! implements so the planner and executor never care where rows live.
//!
//! Two kinds exist: a bare segment from omen-build ([`SegmentTable`]),
//! read-only, with columns `id bigint` and `embedding vector(d)`; and a
//! writable collection ([`CollectionTable`], engine/src/collection), made
//! by `CREATE TABLE`. Writes on a segment get 25006.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::{Arc, RwLock};

use omen_engine::filter::Filter;
use omen_engine::index::{Hit, QueryStats, SearchParams};
use omen_format::Metric;
use omen_format::attr::{ColumnType, Value};

mod collection;
mod segment;

pub use collection::{CollectionTable, create_schema, is_collection_dir};
pub use segment::SegmentTable;

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

    /// Index into a row's attribute values of each column (`None` for the
    /// id and vector columns).
    pub fn attribute_index(&self, name: &str) -> Option<usize> {
        self.columns
            .iter()
            .filter(|c| matches!(c.kind, ColumnKind::Attribute(_)))
            .position(|c| c.name.eq_ignore_ascii_case(name))
    }

    /// The attribute columns in row order.
    pub fn attributes(&self) -> impl Iterator<Item = (&str, ColumnType)> {
        self.columns.iter().filter_map(|c| match c.kind {
            ColumnKind::Attribute(t) => Some((c.name.as_str(), t)),
            _ => None,
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

/// The `k` smallest `hits` by distance (ties by id), closest first: the
/// bounded selection an exact scan keeps while it reads.
#[derive(Debug)]
pub(crate) struct Nearest {
    k: usize,
    hits: Vec<Hit>,
}

impl Nearest {
    pub(crate) fn new(k: usize) -> Self {
        Nearest {
            k,
            hits: Vec::with_capacity(k.saturating_mul(2).min(1 << 16)),
        }
    }

    pub(crate) fn push(&mut self, hit: Hit) {
        self.hits.push(hit);
        if self.hits.len() >= self.k.saturating_mul(2).max(64) {
            self.shrink();
        }
    }

    fn shrink(&mut self) {
        let order = |a: &Hit, b: &Hit| a.distance.total_cmp(&b.distance).then(a.id.cmp(&b.id));
        if self.hits.len() > self.k && self.k > 0 {
            self.hits.select_nth_unstable_by(self.k - 1, order);
        }
        self.hits.truncate(self.k);
        self.hits.sort_by(order);
    }

    pub(crate) fn into_hits(mut self) -> Vec<Hit> {
        self.shrink();
        self.hits
    }
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

/// One stored row.
#[derive(Debug, Clone, PartialEq)]
pub struct Row {
    pub id: u64,
    pub vector: Vec<f32>,
    /// Attribute values in [`TableSchema::attributes`] order.
    pub values: Vec<Value>,
}

/// A table that SQL can read and, where the table allows it, write.
pub trait Table: Send + Sync + std::fmt::Debug {
    fn schema(&self) -> &TableSchema;

    /// The `k` rows nearest `request.query` that pass `request.filter`.
    fn search(&self, request: &SearchRequest<'_>) -> Result<SearchOutcome>;

    /// Like [`Table::search`], but exact: every row that passes the
    /// filter is scored under `metric`, which need not be the metric the
    /// table is indexed for (pgvector's sequential-scan fallback when the
    /// operator is not the index's). Distances as the engine reports them
    /// for `metric` (squared for L2).
    fn exact_search(&self, request: &SearchRequest<'_>, metric: Metric) -> Result<SearchOutcome>;

    /// How [`Table::search`] would run, without running it.
    fn plan_search(&self, filter: Option<&Filter>) -> Result<SearchPlan>;

    /// Rows that pass `filter` (all rows without one).
    fn count(&self, filter: Option<&Filter>) -> Result<u64>;

    /// The rows with these ids that exist, in the order of `ids`: a point
    /// lookup per id, not a scan.
    fn rows(&self, ids: &[u64]) -> Result<Vec<Row>>;

    /// Up to `limit` rows, in storage order.
    fn scan(&self, limit: usize) -> Result<Vec<Row>>;

    /// Whether writes are possible at all.
    fn writable(&self) -> bool {
        false
    }

    /// Inserts rows; fails, writing nothing, if an id exists.
    fn insert(&self, _rows: Vec<Row>) -> Result<u64> {
        Err(self.read_only())
    }

    /// Inserts rows, replacing rows with the same ids.
    fn upsert(&self, _rows: Vec<Row>) -> Result<u64> {
        Err(self.read_only())
    }

    /// Removes the table's storage for good.
    fn drop_storage(&self) -> Result<()> {
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
