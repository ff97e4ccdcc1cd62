//! Statements that change data or tables: CREATE TABLE, DROP TABLE,
//! CREATE INDEX, INSERT, UPDATE and DELETE, mapped onto the table's
//! operations. The server's read-only check happens before anything here.

use std::path::Path;
use std::sync::Arc;

use omen_engine::collection::CollectionOptions;
use omen_format::Metric;
use omen_format::attr::Value;
use sqlparser::ast::{
    AssignmentTarget, CreateIndex, CreateTable, Delete, Expr, FromTable, Insert, ObjectName,
    ObjectType, SetExpr, Statement, TableFactor, TableObject, Update,
};

use crate::catalog::{
    Catalog, CollectionTable, ColumnKind, Row, Table, TableSchema, create_schema,
};
use crate::datum::{Datum, SqlType};
use crate::exec::Outcome;
use crate::expr::{Eval, NoColumns, Params, column_name};
use crate::session::Session;
use crate::{Result, SqlError};

/// Where writes go and how new tables are made.
#[derive(Debug)]
pub struct WriteContext<'a> {
    pub catalog: &'a Catalog,
    /// Directory new tables are created in.
    pub data_dir: Option<&'a Path>,
    pub params: &'a Params,
    pub session: &'a Session,
}

fn done(tag: &str, rows: u64) -> Result<Outcome> {
    Ok(Outcome::Command {
        tag: tag.into(),
        rows: Some(rows),
    })
}

fn table_name(name: &ObjectName) -> String {
    let n = name.to_string().replace('"', "").to_ascii_lowercase();
    n.strip_prefix("public.").unwrap_or(&n).to_string()
}

/// Runs one write statement.
pub fn run(ctx: &WriteContext<'_>, stmt: &Statement) -> Result<Outcome> {
    match stmt {
        Statement::CreateTable(ct) => create_table(ctx, ct, Metric::L2),
        Statement::Drop {
            object_type: ObjectType::Table,
            if_exists,
            names,
            ..
        } => {
            for n in names {
                let name = table_name(n);
                match ctx.catalog.get(&name) {
                    Ok(t) => {
                        t.drop_storage()?;
                        ctx.catalog.remove(&name);
                    }
                    Err(_) if *if_exists => {}
                    Err(e) => return Err(e),
                }
            }
            Ok(Outcome::Command {
                tag: "DROP TABLE".into(),
                rows: None,
            })
        }
        Statement::CreateIndex(ci) => create_index(ctx, ci),
        Statement::Insert(ins) => insert(ctx, ins),
        Statement::Delete(d) => delete(ctx, d),
        Statement::Update(u) => update(ctx, u),
        Statement::Copy { .. } => Err(SqlError::unsupported(
            "COPY is not supported yet; load rows with multi-row INSERT … VALUES",
        )),
        other => Err(SqlError::unsupported(format!(
            "{} is not supported",
            crate::exec::statement_kind(other)
        ))),
    }
}

fn create_table(ctx: &WriteContext<'_>, ct: &CreateTable, metric: Metric) -> Result<Outcome> {
    let schema = create_schema(ct, metric)?;
    if ctx.catalog.contains(&schema.name) {
        if ct.if_not_exists {
            return Ok(Outcome::Command {
                tag: "CREATE TABLE".into(),
                rows: None,
            });
        }
        return Err(SqlError::InvalidValue {
            sqlstate: "42P07",
            message: format!("relation \"{}\" already exists", schema.name),
        });
    }
    let dir = ctx.data_dir.ok_or_else(|| {
        SqlError::unsupported(
            "CREATE TABLE needs a data directory (omen-serve --data DIR --writable)",
        )
    })?;
    let table = CollectionTable::create(dir, schema, CollectionOptions::default())?;
    ctx.catalog.put(Arc::new(table));
    Ok(Outcome::Command {
        tag: "CREATE TABLE".into(),
        rows: None,
    })
}

/// `CREATE INDEX ON t USING omen|hnsw (embedding vector_l2_ops) WITH (…)`.
/// Collections index every segment they write, so this only fixes the
/// metric: it must match the table's, or the table must still be empty.
fn create_index(ctx: &WriteContext<'_>, ci: &CreateIndex) -> Result<Outcome> {
    let using = ci
        .using
        .as_ref()
        .map(|u| u.to_string().to_ascii_lowercase());
    if !matches!(
        using.as_deref(),
        Some("omen" | "hnsw" | "ivfflat" | "diskann")
    ) {
        return Err(SqlError::unsupported(
            "CREATE INDEX supports USING omen (pgvector's hnsw is an alias): CREATE INDEX ON items USING omen (embedding vector_l2_ops)",
        ));
    }
    let table = ctx.catalog.get(&table_name(&ci.table_name))?;
    let schema = table.schema().clone();
    let [col] = ci.columns.as_slice() else {
        return Err(SqlError::unsupported(
            "an index covers exactly one vector column",
        ));
    };
    let col_name = column_name(&col.column.expr)
        .unwrap_or_default()
        .to_string();
    if !matches!(schema.column(&col_name)?.kind, ColumnKind::Vector { .. }) {
        return Err(SqlError::unsupported(format!(
            "column \"{col_name}\" is not a vector column"
        )));
    }
    let opclass = col
        .operator_class
        .as_ref()
        .map(|o| o.to_string().to_ascii_lowercase())
        .unwrap_or_else(|| "vector_l2_ops".into());
    let metric = match opclass.as_str() {
        "vector_l2_ops" => Metric::L2,
        "vector_ip_ops" => Metric::InnerProduct,
        "vector_cosine_ops" => Metric::Cosine,
        other => {
            return Err(SqlError::unsupported(format!(
                "operator class {other}; supported: vector_l2_ops, vector_ip_ops, vector_cosine_ops"
            )));
        }
    };
    if metric == schema.metric {
        return Ok(Outcome::Command {
            tag: "CREATE INDEX".into(),
            rows: None,
        });
    }
    if !table.writable() || table.count(None)? > 0 {
        return Err(SqlError::unsupported(format!(
            "table \"{}\" is indexed with {}; the metric can change only while a table is empty",
            schema.name,
            crate::vector::DistanceOp::opclass(schema.metric)
        )));
    }
    // Empty: recreate it with the new metric.
    let dir = ctx
        .data_dir
        .ok_or_else(|| SqlError::unsupported("no data directory"))?;
    table.drop_storage()?;
    ctx.catalog.remove(&schema.name);
    let fresh = CollectionTable::create(
        dir,
        TableSchema { metric, ..schema },
        CollectionOptions::default(),
    )?;
    ctx.catalog.put(Arc::new(fresh));
    Ok(Outcome::Command {
        tag: "CREATE INDEX".into(),
        rows: None,
    })
}

fn eval<'a>(ctx: &'a WriteContext<'a>) -> Eval<'a> {
    Eval {
        params: ctx.params,
        session: ctx.session,
        columns: &NoColumns,
    }
}

/// A value for column `name` of `schema` into `row`.
fn assign(
    schema: &TableSchema,
    row: &mut Row,
    name: &str,
    value: Datum,
    allow_id: bool,
) -> Result<()> {
    let col = schema.column(name)?;
    match col.kind {
        ColumnKind::Id => {
            if !allow_id {
                return Err(SqlError::unsupported(
                    "the primary key cannot be updated; delete and insert",
                ));
            }
            match value.coerce(SqlType::Int8)? {
                Datum::Int(v) if v >= 0 => row.id = v as u64,
                other => {
                    return Err(SqlError::invalid(format!(
                        "id must be a non-negative bigint, not {}",
                        other.describe()
                    )));
                }
            }
        }
        ColumnKind::Vector { dim } => match value.coerce(SqlType::Vector)? {
            Datum::Vector(v) if v.len() == dim => row.vector = v,
            Datum::Vector(v) => {
                return Err(SqlError::InvalidValue {
                    sqlstate: "22000",
                    message: format!("expected {dim} dimensions, not {}", v.len()),
                });
            }
            _ => {
                return Err(SqlError::invalid(format!(
                    "column \"{}\" cannot be NULL",
                    col.name
                )));
            }
        },
        ColumnKind::Attribute(ty) => {
            let i = schema.attribute_index(&col.name).unwrap_or(0);
            row.values[i] = value.to_value(ty)?;
        }
    }
    Ok(())
}

fn expected_type(schema: &TableSchema, name: &str) -> SqlType {
    match schema.column(name).map(|c| c.kind) {
        Ok(ColumnKind::Id) => SqlType::Int8,
        Ok(ColumnKind::Vector { .. }) => SqlType::Vector,
        Ok(ColumnKind::Attribute(t)) => SqlType::of_column(t),
        Err(_) => SqlType::Unknown,
    }
}

/// The columns an INSERT's values fill, in order: those it names, else all.
fn insert_targets(ins: &Insert, schema: &TableSchema) -> Vec<String> {
    if ins.columns.is_empty() {
        schema.columns.iter().map(|c| c.name.clone()).collect()
    } else {
        ins.columns
            .iter()
            .map(|c| c.to_string().replace('"', ""))
            .collect()
    }
}

fn insert(ctx: &WriteContext<'_>, ins: &Insert) -> Result<Outcome> {
    let TableObject::TableName(name) = &ins.table else {
        return Err(SqlError::unsupported("INSERT INTO a table name"));
    };
    if ins.on.is_some() || ins.returning.is_some() {
        return Err(SqlError::unsupported(
            "INSERT … ON CONFLICT and RETURNING are not supported",
        ));
    }
    let table = ctx.catalog.get(&table_name(name))?;
    let schema = table.schema().clone();
    let targets = insert_targets(ins, &schema);
    let Some(SetExpr::Values(values)) = ins.source.as_ref().map(|q| q.body.as_ref()) else {
        return Err(SqlError::unsupported(
            "INSERT supports VALUES (…), (…); not INSERT … SELECT",
        ));
    };
    for t in &targets {
        schema.column(t)?;
    }
    let (vcol, _) = schema.vector_column();
    let has = |kind: fn(&ColumnKind) -> bool| {
        targets
            .iter()
            .any(|t| schema.column(t).is_ok_and(|c| kind(&c.kind)))
    };
    if !has(|k| *k == ColumnKind::Id) || !has(|k| matches!(k, ColumnKind::Vector { .. })) {
        return Err(SqlError::invalid(format!(
            "INSERT must give the id and \"{vcol}\" of every row"
        )));
    }
    let e = eval(ctx);
    let attrs = schema.attributes().count();
    let mut rows = Vec::with_capacity(values.rows.len());
    for exprs in &values.rows {
        let exprs = &exprs.content;
        if exprs.len() != targets.len() {
            return Err(SqlError::invalid(format!(
                "INSERT has {} target columns but a row of {} values",
                targets.len(),
                exprs.len()
            )));
        }
        let mut row = Row {
            id: 0,
            vector: Vec::new(),
            values: vec![Value::Null; attrs],
        };
        for (t, x) in targets.iter().zip(exprs) {
            let v = e.eval(x, expected_type(&schema, t))?;
            assign(&schema, &mut row, t, v, true)?;
        }
        rows.push(row);
    }
    let n = table.insert(rows)?;
    Ok(Outcome::Command {
        tag: "INSERT 0".into(),
        rows: Some(n),
    })
}

/// The ids a `WHERE` names (`id = …`, `id IN (…)`); writes need them.
fn where_ids(
    ctx: &WriteContext<'_>,
    table: &dyn Table,
    selection: Option<&Expr>,
    what: &str,
) -> Result<Vec<u64>> {
    let schema = table.schema();
    let ids = match selection {
        Some(w) => crate::plan::id_list(w, schema, &eval(ctx))?,
        None => None,
    };
    ids.ok_or_else(|| {
        SqlError::unsupported(format!("{what} needs WHERE id = … or WHERE id IN (…)"))
    })
}

fn delete(ctx: &WriteContext<'_>, d: &Delete) -> Result<Outcome> {
    let (FromTable::WithFromKeyword(from) | FromTable::WithoutKeyword(from)) = &d.from;
    let [t] = from.as_slice() else {
        return Err(SqlError::unsupported("DELETE FROM one table"));
    };
    let TableFactor::Table { name, .. } = &t.relation else {
        return Err(SqlError::unsupported("DELETE FROM a table name"));
    };
    let table = ctx.catalog.get(&table_name(name))?;
    let ids = where_ids(ctx, table.as_ref(), d.selection.as_ref(), "DELETE")?;
    let n = table.delete(&ids)?;
    done("DELETE", n)
}

fn update(ctx: &WriteContext<'_>, u: &Update) -> Result<Outcome> {
    let TableFactor::Table { name, .. } = &u.table.relation else {
        return Err(SqlError::unsupported("UPDATE a table name"));
    };
    let table = ctx.catalog.get(&table_name(name))?;
    let schema = table.schema().clone();
    let ids = where_ids(ctx, table.as_ref(), u.selection.as_ref(), "UPDATE")?;
    let e = eval(ctx);
    let mut assignments = Vec::new();
    for a in &u.assignments {
        let AssignmentTarget::ColumnName(col) = &a.target else {
            return Err(SqlError::unsupported("UPDATE … SET column = value"));
        };
        let col = col.to_string().replace('"', "");
        let v = e.eval(&a.value, expected_type(&schema, &col))?;
        assignments.push((col, v));
    }
    let mut rows = table.rows(&ids)?;
    if !table.writable() {
        return Err(table.read_only());
    }
    for row in &mut rows {
        for (col, v) in &assignments {
            assign(&schema, row, col, v.clone(), false)?;
        }
    }
    let n = rows.len() as u64;
    if n > 0 {
        table.upsert(rows)?;
    }
    done("UPDATE", n)
}

/// Learns the parameter types of a write statement (recorded in
/// `params`, which is in describe mode): `$n` takes the type of the column
/// it is assigned to or compared with. Unknown tables leave them untyped;
/// running the statement reports the error.
pub fn describe(catalog: &Catalog, stmt: &Statement, params: &Params, session: &Session) {
    let e = Eval {
        params,
        session,
        columns: &NoColumns,
    };
    let typed = |schema: &TableSchema, col: &str, x: &Expr| {
        let _ = e.eval(x, expected_type(schema, col));
    };
    let ids = |schema: &TableSchema, w: Option<&Expr>| {
        if let Some(w) = w {
            let _ = crate::plan::id_list(w, schema, &e);
        }
    };
    match stmt {
        Statement::Insert(ins) => {
            let TableObject::TableName(name) = &ins.table else {
                return;
            };
            let Ok(table) = catalog.get(&table_name(name)) else {
                return;
            };
            let schema = table.schema();
            let targets = insert_targets(ins, schema);
            if let Some(SetExpr::Values(values)) = ins.source.as_ref().map(|q| q.body.as_ref()) {
                for row in &values.rows {
                    for (t, x) in targets.iter().zip(&row.content) {
                        typed(schema, t, x);
                    }
                }
            }
        }
        Statement::Update(u) => {
            let TableFactor::Table { name, .. } = &u.table.relation else {
                return;
            };
            let Ok(table) = catalog.get(&table_name(name)) else {
                return;
            };
            let schema = table.schema();
            for a in &u.assignments {
                if let AssignmentTarget::ColumnName(col) = &a.target {
                    typed(schema, &col.to_string().replace('"', ""), &a.value);
                }
            }
            ids(schema, u.selection.as_ref());
        }
        Statement::Delete(d) => {
            let (FromTable::WithFromKeyword(from) | FromTable::WithoutKeyword(from)) = &d.from;
            let Some(TableFactor::Table { name, .. }) = from.first().map(|t| &t.relation) else {
                return;
            };
            let Ok(table) = catalog.get(&table_name(name)) else {
                return;
            };
            ids(table.schema(), d.selection.as_ref());
        }
        _ => {}
    }
}
