//! A writable collection (engine/src/collection) as a table: what
//! `CREATE TABLE` makes and `INSERT`, `UPDATE`, `DELETE` and `DROP TABLE`
//! change.
//!
//! The engine's schema knows the primary key, the dimension, the metric
//! and the attribute columns. SQL also knows the vector column's name and
//! the declared column order; those live in a small side file,
//! `<data dir>/<table>.table`, written atomically. A collection without
//! one (written by the library) is served with its vector column called
//! `embedding`.

use std::path::{Path, PathBuf};

use omen_engine::collection::{Collection, CollectionOptions, Schema};
use omen_engine::filter::Filter;
use omen_format::Metric;
use omen_format::atomic::AtomicFile;
use omen_format::attr::{ColumnSchema, ColumnType, Value};
use omen_format::collection::MANIFEST_FILE;
use sqlparser::ast::{ColumnOption, CreateTable, TableConstraint};

use super::{
    Column, ColumnKind, Row, SearchOutcome, SearchPlan, SearchRequest, SegmentDescription, Table,
    TableSchema,
};
use crate::datum::SqlType;
use crate::{Result, SqlError};

/// A collection served as a table.
#[derive(Debug)]
pub struct CollectionTable {
    schema: TableSchema,
    collection: Collection,
    sidecar: PathBuf,
}

/// Whether `dir` holds a collection.
pub fn is_collection_dir(dir: &Path) -> bool {
    dir.join(MANIFEST_FILE).is_file()
}

impl CollectionTable {
    /// Creates the collection `<data_dir>/<name>` for `schema`.
    pub fn create(
        data_dir: &Path,
        schema: TableSchema,
        options: CollectionOptions,
    ) -> Result<Self> {
        let dir = data_dir.join(&schema.name);
        let sidecar = sidecar_path(data_dir, &schema.name);
        let engine_schema = engine_schema(&schema)?;
        let collection = Collection::create(&dir, engine_schema, options)?;
        let mut file = AtomicFile::create(&sidecar)?;
        file.write(render_sidecar(&schema).as_bytes())?;
        file.commit(&[])?;
        Ok(CollectionTable {
            schema,
            collection,
            sidecar,
        })
    }

    /// Opens the collection in `dir` as the table named after the directory.
    pub fn open(dir: &Path, options: CollectionOptions) -> Result<Self> {
        let name = crate::loader::table_name(dir);
        let collection = Collection::open(dir, options)?;
        let data_dir = dir.parent().unwrap_or(Path::new("."));
        let sidecar = sidecar_path(data_dir, &name);
        let es = collection.schema();
        let schema = match std::fs::read_to_string(&sidecar) {
            Ok(text) => parse_sidecar(&name, &text, es.metric)
                .map_err(|e| SqlError::invalid(format!("{}: {e}", sidecar.display())))?,
            Err(_) => {
                let mut columns = vec![
                    Column {
                        name: es.primary_key.clone(),
                        kind: ColumnKind::Id,
                    },
                    Column {
                        name: "embedding".into(),
                        kind: ColumnKind::Vector { dim: es.dimension },
                    },
                ];
                columns.extend(es.columns.iter().map(|c| Column {
                    name: c.name.clone(),
                    kind: ColumnKind::Attribute(c.ty),
                }));
                TableSchema {
                    name: name.clone(),
                    columns,
                    metric: es.metric,
                }
            }
        };
        Ok(CollectionTable {
            schema,
            collection,
            sidecar,
        })
    }

    fn flat(&self, rows: &[Row]) -> Result<(Vec<u64>, Vec<f32>, Vec<Value>)> {
        let (_, dim) = self.schema.vector_column();
        let mut ids = Vec::with_capacity(rows.len());
        let mut vectors = Vec::with_capacity(rows.len() * dim);
        let mut values = Vec::new();
        for r in rows {
            if r.vector.len() != dim {
                return Err(SqlError::InvalidValue {
                    sqlstate: "22000",
                    message: format!(
                        "expected {dim} dimensions, not {} (row id {})",
                        r.vector.len(),
                        r.id
                    ),
                });
            }
            ids.push(r.id);
            vectors.extend_from_slice(&r.vector);
            values.extend(r.values.iter().cloned());
        }
        Ok((ids, vectors, values))
    }
}

impl Table for CollectionTable {
    fn schema(&self) -> &TableSchema {
        &self.schema
    }

    fn search(&self, request: &SearchRequest<'_>) -> Result<SearchOutcome> {
        let hits = match request.filter {
            // The engine's filtered search over memtables and segments.
            Some(f) => {
                self.collection
                    .search_filtered(request.query, request.k, f, &request.params)?
            }
            None => self
                .collection
                .search(request.query, request.k, &request.params)?,
        };
        Ok(SearchOutcome {
            hits,
            stats: Default::default(),
        })
    }

    fn exact_search(&self, request: &SearchRequest<'_>, metric: Metric) -> Result<SearchOutcome> {
        let hits =
            self.collection
                .exact_search(request.query, request.k, metric, request.filter)?;
        Ok(SearchOutcome {
            hits,
            stats: Default::default(),
        })
    }

    fn plan_search(&self, filter: Option<&Filter>) -> Result<SearchPlan> {
        let stats = self.collection.stats();
        let mut segments: Vec<SegmentDescription> = stats
            .segments
            .iter()
            .map(|&(id, tier, rows, dead, _)| SegmentDescription {
                path: self
                    .collection
                    .dir()
                    .join(format!("segment {id} (tier {tier}, {dead} deleted)")),
                rows,
                io: "segment".into(),
            })
            .collect();
        segments.push(SegmentDescription {
            path: self.collection.dir().join("memtable"),
            rows: stats.memtable_rows as u64,
            io: "memory, exact scan".into(),
        });
        let filter_strategy = filter.map(|_| {
            "engine filtered search: each segment picks exact scan or filtered walk from its column statistics; memtable rows tested exactly".to_string()
        });
        Ok(SearchPlan {
            segments,
            filter_strategy,
        })
    }

    fn count(&self, filter: Option<&Filter>) -> Result<u64> {
        match filter {
            None => Ok(self.collection.len() as u64),
            Some(f) => Ok(self.collection.count_matching(f)?),
        }
    }

    fn rows(&self, ids: &[u64]) -> Result<Vec<Row>> {
        // The engine's point lookup: memtables, then each segment's id
        // map, newest first, honouring tombstones.
        Ok(self
            .collection
            .get(ids)?
            .into_iter()
            .map(|r| Row {
                id: r.id,
                vector: r.vector,
                values: r.values,
            })
            .collect())
    }

    fn scan(&self, limit: usize) -> Result<Vec<Row>> {
        let mut out = Vec::new();
        self.collection.scan_live(&mut |id, v, values| {
            if out.len() < limit {
                out.push(Row {
                    id,
                    vector: v.to_vec(),
                    values: values.to_vec(),
                });
            }
        })?;
        out.sort_by_key(|r| r.id);
        Ok(out)
    }

    fn writable(&self) -> bool {
        true
    }

    fn insert(&self, rows: Vec<Row>) -> Result<u64> {
        let (ids, vectors, values) = self.flat(&rows)?;
        self.collection.insert(&ids, &vectors, &values)?;
        Ok(ids.len() as u64)
    }

    fn upsert(&self, rows: Vec<Row>) -> Result<u64> {
        let (ids, vectors, values) = self.flat(&rows)?;
        self.collection.upsert(&ids, &vectors, &values)?;
        Ok(ids.len() as u64)
    }

    fn delete(&self, ids: &[u64]) -> Result<u64> {
        let mut unique = ids.to_vec();
        unique.sort_unstable();
        unique.dedup();
        let existing = self.collection.get(&unique)?.len() as u64;
        self.collection.delete(ids)?;
        Ok(existing)
    }

    fn drop_storage(&self) -> Result<()> {
        let dir = self.collection.dir().to_path_buf();
        std::fs::remove_file(&self.sidecar).ok();
        std::fs::remove_dir_all(&dir).map_err(|e| omen_format::FormatError::io(&dir, e))?;
        Ok(())
    }
}

fn sidecar_path(data_dir: &Path, name: &str) -> PathBuf {
    data_dir.join(format!("{name}.table"))
}

/// The engine schema of a table schema.
fn engine_schema(t: &TableSchema) -> Result<Schema> {
    let (_, dim) = t.vector_column();
    let mut s = Schema::new(dim, t.metric);
    s.primary_key = t
        .columns
        .iter()
        .find(|c| c.kind == ColumnKind::Id)
        .map(|c| c.name.clone())
        .unwrap_or_else(|| "id".into());
    for (name, ty) in t.attributes() {
        s = s.with_column(ColumnSchema {
            name: name.to_string(),
            ty,
            nullable: true,
        });
    }
    s.validate()?;
    Ok(s)
}

/// The side file: one `kind name [detail]` line per column, then the metric.
fn render_sidecar(t: &TableSchema) -> String {
    let mut out = String::from("# omen-sql table layout; written by CREATE TABLE\n");
    for c in &t.columns {
        match c.kind {
            ColumnKind::Id => out.push_str(&format!("id {}\n", c.name)),
            ColumnKind::Vector { dim } => out.push_str(&format!("vector {} {dim}\n", c.name)),
            ColumnKind::Attribute(ty) => {
                out.push_str(&format!("attribute {} {}\n", c.name, ty.name()))
            }
        }
    }
    out.push_str(&format!("metric {}\n", t.metric.name()));
    out
}

fn parse_sidecar(
    name: &str,
    text: &str,
    metric: Metric,
) -> std::result::Result<TableSchema, String> {
    let mut columns = Vec::new();
    for (n, line) in text.lines().enumerate() {
        let parts: Vec<&str> = line.split_whitespace().collect();
        let bad = || format!("line {}: '{line}' is not a column", n + 1);
        match parts.as_slice() {
            [] => {}
            [c, ..] if c.starts_with('#') => {}
            ["id", col] => columns.push(Column {
                name: col.to_string(),
                kind: ColumnKind::Id,
            }),
            ["vector", col, dim] => columns.push(Column {
                name: col.to_string(),
                kind: ColumnKind::Vector {
                    dim: dim.parse().map_err(|_| bad())?,
                },
            }),
            ["attribute", col, ty] => columns.push(Column {
                name: col.to_string(),
                kind: ColumnKind::Attribute(ty.parse::<ColumnType>()?),
            }),
            ["metric", _] => {}
            _ => return Err(bad()),
        }
    }
    Ok(TableSchema {
        name: name.to_string(),
        columns,
        metric,
    })
}

/// The table schema `CREATE TABLE` asks for: one `bigint` primary key, one
/// `vector(n)` column, scalar attribute columns. `metric` comes from
/// `WITH (metric = …)` or defaults to l2 (CREATE INDEX can change it while
/// the table is empty).
pub fn create_schema(ct: &CreateTable, metric: Metric) -> Result<TableSchema> {
    let name = ct.name.to_string().replace('"', "").to_ascii_lowercase();
    let name = name.strip_prefix("public.").unwrap_or(&name).to_string();
    if !crate::loader::valid_table_name(&name) {
        return Err(SqlError::invalid(format!(
            "table name \"{name}\": use letters, digits and _ (not starting with a digit)"
        )));
    }
    let mut pk_cols: Vec<String> = Vec::new();
    for c in &ct.constraints {
        if let TableConstraint::PrimaryKey(pk) = c {
            pk_cols.extend(
                pk.columns
                    .iter()
                    .map(|c| c.to_string().replace('"', "").to_ascii_lowercase()),
            );
        }
    }
    let mut columns = Vec::new();
    for c in &ct.columns {
        let col = c.name.value.to_ascii_lowercase();
        let is_pk = pk_cols.contains(&col)
            || c.options
                .iter()
                .any(|o| matches!(o.option, ColumnOption::PrimaryKey(_)));
        let ty = c.data_type.to_string();
        let lower = ty.to_ascii_lowercase();
        let kind = if lower.starts_with("vector") {
            let dim = lower
                .strip_prefix("vector(")
                .and_then(|r| r.strip_suffix(')'))
                .and_then(|d| d.trim().parse::<usize>().ok())
                .filter(|d| (1..=crate::vector::MAX_DIM).contains(d))
                .ok_or_else(|| {
                    SqlError::invalid(format!(
                        "column \"{col}\": declare the dimension, vector(n) with n in 1..={}",
                        crate::vector::MAX_DIM
                    ))
                })?;
            ColumnKind::Vector { dim }
        } else if is_pk {
            if SqlType::from_sql_name(&lower) != Some(SqlType::Int8)
                && SqlType::from_sql_name(&lower) != Some(SqlType::Int4)
            {
                return Err(SqlError::unsupported(format!(
                    "primary key \"{col}\" is {ty}; the primary key must be bigint"
                )));
            }
            ColumnKind::Id
        } else {
            let ct: ColumnType = lower
                .split('(')
                .next()
                .unwrap_or(&lower)
                .trim()
                .parse()
                .map_err(|e: String| SqlError::unsupported(format!("column \"{col}\": {e}")))?;
            ColumnKind::Attribute(ct)
        };
        columns.push(Column { name: col, kind });
    }
    let ids = columns.iter().filter(|c| c.kind == ColumnKind::Id).count();
    let vectors = columns
        .iter()
        .filter(|c| matches!(c.kind, ColumnKind::Vector { .. }))
        .count();
    if ids != 1 || vectors != 1 {
        return Err(SqlError::unsupported(format!(
            "a table needs exactly one bigint PRIMARY KEY and one vector(n) column (found {ids} and {vectors}), e.g. \
             CREATE TABLE items (id bigint PRIMARY KEY, embedding vector(768), category text, price float8)"
        )));
    }
    Ok(TableSchema {
        name,
        columns,
        metric,
    })
}
