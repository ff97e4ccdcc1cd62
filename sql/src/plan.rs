//! Planning `SELECT`: which of the few query shapes OmenDB runs a query
//! is, and everything needed to run it.
//!
//! - `ORDER BY embedding <op> q LIMIT k` on a table: a nearest-neighbour
//!   search, with `WHERE` pushed down as an engine filter;
//! - `SELECT count(*) FROM t [WHERE …]`: a count;
//! - `SELECT` without `FROM`, and `FROM pg_type`: evaluated here (drivers
//!   need these on connect).
//!
//! Anything else is 0A000 with a message that says what is supported.

use std::sync::Arc;

use omen_engine::filter::Filter;
use omen_engine::index::SearchParams;
use sqlparser::ast::{
    Expr, LimitClause, OrderByKind, Query, Select, SelectItem, SetExpr, TableFactor,
};

use crate::catalog::{Catalog, ColumnKind, Table, TableSchema};
use crate::datum::{Datum, SqlType, VECTOR_ARRAY_OID, VECTOR_OID};
use crate::expr::{
    Columns, Eval, NoColumns, Params, as_distance, column_name, function_name, is_true,
};
use crate::filter::to_filter;
use crate::session::Session;
use crate::vector::DistanceOp;
use crate::{Result, SqlError};

/// A result column: name and type.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutColumn {
    pub name: String,
    pub ty: SqlType,
}

impl OutColumn {
    pub fn new(name: impl Into<String>, ty: SqlType) -> Self {
        OutColumn {
            name: name.into(),
            ty,
        }
    }
}

/// A planned `SELECT`.
#[derive(Debug)]
pub enum Plan {
    /// Rows computed while planning (constants, catalog rows).
    Values {
        columns: Vec<OutColumn>,
        rows: Vec<Vec<Datum>>,
    },
    /// A nearest-neighbour search.
    Search(VectorSearch),
    /// `count(*)`.
    Count {
        table: Arc<dyn Table>,
        filter: Option<Filter>,
        /// `WHERE id = …` / `id IN (…)`: count these rows.
        ids: Option<Vec<u64>>,
        column: OutColumn,
    },
    /// Rows by id, or the first rows of a table.
    Scan(Scan),
}

/// A planned read of rows without a search.
#[derive(Debug)]
pub struct Scan {
    pub table: Arc<dyn Table>,
    pub ids: Option<Vec<u64>>,
    pub limit: Option<usize>,
    pub offset: usize,
    pub outputs: Vec<Output>,
    pub columns: Vec<OutColumn>,
}

impl Plan {
    /// The result columns.
    pub fn columns(&self) -> Vec<OutColumn> {
        match self {
            Plan::Values { columns, .. } => columns.clone(),
            Plan::Search(s) => s.columns.clone(),
            Plan::Count { column, .. } => vec![column.clone()],
            Plan::Scan(s) => s.columns.clone(),
        }
    }
}

/// What a search query returns per hit.
#[derive(Debug, Clone)]
pub enum Output {
    Id,
    /// The ORDER BY distance, converted to the operator's value.
    Distance,
    /// The stored vector.
    Vector,
    /// Attribute value `i` of the row.
    Attribute(usize),
    /// A value that does not depend on the row.
    Constant(Datum),
}

/// A planned nearest-neighbour search.
#[derive(Debug)]
pub struct VectorSearch {
    pub table: Arc<dyn Table>,
    pub op: DistanceOp,
    /// `None` while describing (the parameter is not bound yet).
    pub query: Option<Vec<f32>>,
    pub k: usize,
    pub offset: usize,
    pub filter: Option<Filter>,
    pub params: SearchParams,
    /// Why the index cannot serve this search (the operator is not the
    /// one it was built for): every row is scored exactly instead.
    pub exact_scan: Option<String>,
    pub outputs: Vec<Output>,
    pub columns: Vec<OutColumn>,
}

/// Plans a query.
pub fn plan_query(
    query: &Query,
    catalog: &Catalog,
    session: &Session,
    params: &Params,
) -> Result<Plan> {
    if query.with.is_some() || query.fetch.is_some() || !query.locks.is_empty() {
        return Err(SqlError::unsupported(
            "WITH, FETCH and FOR UPDATE are not supported",
        ));
    }
    let select = match query.body.as_ref() {
        SetExpr::Select(s) => s.as_ref(),
        SetExpr::Query(q) => return plan_query(q, catalog, session, params),
        other => {
            return Err(SqlError::unsupported(format!(
                "{} is not supported; supported: SELECT … FROM table ORDER BY embedding <-> $1 LIMIT k, SELECT count(*)",
                other
                    .to_string()
                    .split_whitespace()
                    .next()
                    .unwrap_or("this query")
            )));
        }
    };
    let noop = Eval {
        params,
        session,
        columns: &NoColumns,
    };
    let (limit, offset) = limit_offset(query.limit_clause.as_ref(), &noop)?;
    if select.from.is_empty() {
        return plan_constant(select, &noop);
    }
    if select.from.len() != 1 {
        return Err(SqlError::unsupported(
            "joins are not supported; query one table",
        ));
    }
    let from = &select.from[0];
    let TableFactor::Table { name, .. } = &from.relation else {
        return Err(SqlError::unsupported(
            "subqueries in FROM are not supported",
        ));
    };
    let name = name.to_string().replace('"', "").to_ascii_lowercase();
    let bare = name.strip_prefix("pg_catalog.").unwrap_or(&name);
    if bare == "pg_type" {
        return plan_pg_type(select, &noop, params, session);
    }
    if !from.joins.is_empty() {
        return Err(SqlError::unsupported(
            "joins are not supported; query one table",
        ));
    }
    if name.starts_with("pg_")
        || name.starts_with("pg_catalog.")
        || name.starts_with("information_schema.")
    {
        return Err(SqlError::unsupported(format!(
            "catalog table {name} is not supported; of the catalogs only pg_type is (list tables with \\d in `omen sql`)"
        )));
    }
    let bare = name.strip_prefix("public.").unwrap_or(&name);
    let table = catalog.get(bare)?;
    let schema = table.schema().clone();
    if !matches!(select.group_by, sqlparser::ast::GroupByExpr::Expressions(ref e, _) if e.is_empty())
        || select.having.is_some()
        || select.distinct.is_some()
    {
        return Err(SqlError::unsupported(
            "GROUP BY, HAVING and DISTINCT are not supported",
        ));
    }
    let ids = match &select.selection {
        Some(w) => id_list(w, &schema, &noop)?,
        None => None,
    };
    let filter = match (&select.selection, &ids) {
        (Some(w), None) => Some(to_filter(w, &schema, &noop)?),
        _ => None,
    };

    // count(*)
    if let [item] = select.projection.as_slice()
        && let Some((expr, alias)) = item_expr(item)
        && let Expr::Function(f) = expr
        && function_name(f) == "count"
    {
        return Ok(Plan::Count {
            table,
            filter,
            ids,
            column: OutColumn::new(alias.unwrap_or_else(|| "count".into()), SqlType::Int8),
        });
    }

    let order = match &query.order_by {
        Some(ob) => match &ob.kind {
            OrderByKind::Expressions(list) if list.len() == 1 => Some(&list[0]),
            _ => None,
        },
        None => None,
    };
    let Some(order) = order else {
        if filter.is_some() {
            return Err(SqlError::unsupported(format!(
                "WHERE on attribute columns needs a nearest-neighbour search: ORDER BY {} <-> $1 LIMIT k (filters run inside the engine's search); without ORDER BY, WHERE may name ids (id = …, id IN (…))",
                schema.vector_column().0
            )));
        }
        if query.order_by.is_some() {
            return Err(SqlError::unsupported(format!(
                "ORDER BY supports one expression: the distance to the vector column, ORDER BY {} <-> $1",
                schema.vector_column().0
            )));
        }
        let (outputs, columns) = plan_outputs(select, &schema, None, &noop)?;
        return Ok(Plan::Scan(Scan {
            table,
            ids,
            limit,
            offset,
            outputs,
            columns,
        }));
    };
    if ids.is_some() {
        return Err(SqlError::unsupported(
            "WHERE on id with ORDER BY distance is not supported; filter on attribute columns",
        ));
    }
    if order.options.sort == Some(sqlparser::ast::OrderBySort::Desc) {
        return Err(SqlError::unsupported(
            "ORDER BY distance DESC is not supported; nearest first only",
        ));
    }
    let (op, query_expr) = order_distance(&order.expr, &schema)?;
    // pgvector: an index serves only its operator class; another operator
    // on the same column is answered by a sequential scan. So here.
    let exact_scan = (op.metric() != schema.metric).then(|| {
        format!(
            "operator {} is not the index's: the index is {} (for {}), so every row is scored exactly; \
             for an index search use {} or build the table for {}",
            op.symbol(),
            DistanceOp::opclass(schema.metric),
            DistanceOp::for_metric(schema.metric).symbol(),
            DistanceOp::for_metric(schema.metric).symbol(),
            DistanceOp::opclass(op.metric()),
        )
    });
    let Some(limit) = limit else {
        return Err(SqlError::unsupported(
            "a nearest-neighbour search needs LIMIT k",
        ));
    };
    let query_vec = noop.vector(query_expr)?;
    if params.is_bound() && query_vec.is_none() {
        return Err(SqlError::invalid("the query vector is NULL"));
    }
    let (_, dim) = schema.vector_column();
    if let Some(q) = &query_vec
        && q.len() != dim
    {
        return Err(SqlError::InvalidValue {
            sqlstate: "22000",
            message: format!(
                "expected {dim} dimensions, not {} (table \"{}\")",
                q.len(),
                schema.name
            ),
        });
    }

    let (outputs, columns) = plan_outputs(select, &schema, Some((op, query_expr)), &noop)?;
    let k = limit.saturating_add(offset);
    if k == 0 {
        return Err(SqlError::invalid("LIMIT must be at least 1"));
    }
    Ok(Plan::Search(VectorSearch {
        table,
        op,
        query: query_vec,
        k,
        offset,
        filter,
        params: session.search_params(k),
        exact_scan,
        outputs,
        columns,
    }))
}

/// The ORDER BY expression as (operator, query-vector expression).
fn order_distance<'e>(expr: &'e Expr, schema: &TableSchema) -> Result<(DistanceOp, &'e Expr)> {
    let (vcol, _) = schema.vector_column();
    if let Some((op, a, b)) = as_distance(expr) {
        let is_vcol = |e: &Expr| column_name(e).is_some_and(|n| n.eq_ignore_ascii_case(vcol));
        if is_vcol(a) {
            return Ok((op, b));
        }
        if is_vcol(b) {
            return Ok((op, a));
        }
    }
    Err(SqlError::unsupported(format!(
        "ORDER BY {expr} is not supported; order by distance to the vector column: ORDER BY {vcol} <-> $1 (or <#>, <=>)"
    )))
}

/// The outputs and result columns of the select list. `order` is the
/// search's (operator, query) when there is one.
fn plan_outputs(
    select: &Select,
    schema: &TableSchema,
    order: Option<(DistanceOp, &Expr)>,
    eval: &Eval<'_>,
) -> Result<(Vec<Output>, Vec<OutColumn>)> {
    let mut outputs = Vec::new();
    let mut columns = Vec::new();
    for item in &select.projection {
        match item {
            SelectItem::Wildcard(_) | SelectItem::QualifiedWildcard(..) => {
                for c in &schema.columns {
                    let (o, ty) = column_output(schema, &c.name)?;
                    outputs.push(o);
                    columns.push(OutColumn::new(c.name.clone(), ty));
                }
            }
            _ => {
                let (expr, alias) = item_expr(item)
                    .ok_or_else(|| SqlError::unsupported(format!("select item {item}")))?;
                let (out, ty, name) = plan_output(expr, schema, order, eval)?;
                outputs.push(out);
                columns.push(OutColumn::new(alias.unwrap_or(name), ty));
            }
        }
    }
    Ok((outputs, columns))
}

fn column_output(schema: &TableSchema, name: &str) -> Result<(Output, SqlType)> {
    let col = schema.column(name)?;
    Ok(match col.kind {
        ColumnKind::Id => (Output::Id, SqlType::Int8),
        ColumnKind::Vector { .. } => (Output::Vector, SqlType::Vector),
        ColumnKind::Attribute(ty) => (
            Output::Attribute(schema.attribute_index(&col.name).unwrap_or(0)),
            SqlType::of_column(ty),
        ),
    })
}

/// `WHERE id = v`, `v = id` or `id IN (…)` as the list of ids; `None`
/// for any other condition.
pub fn id_list(expr: &Expr, schema: &TableSchema, eval: &Eval<'_>) -> Result<Option<Vec<u64>>> {
    let is_id = |e: &Expr| {
        column_name(e)
            .and_then(|n| schema.column(n).ok())
            .is_some_and(|c| c.kind == ColumnKind::Id)
    };
    let id_of = |e: &Expr| -> Result<Option<u64>> {
        match eval.eval(e, SqlType::Int8)?.coerce(SqlType::Int8)? {
            Datum::Int(v) => Ok(u64::try_from(v).ok()),
            _ => Ok(None),
        }
    };
    match expr {
        Expr::Nested(e) => id_list(e, schema, eval),
        Expr::BinaryOp {
            left,
            op: sqlparser::ast::BinaryOperator::Eq,
            right,
        } => {
            let v = if is_id(left) {
                right
            } else if is_id(right) {
                left
            } else {
                return Ok(None);
            };
            Ok(Some(id_of(v)?.into_iter().collect()))
        }
        Expr::InList {
            expr,
            list,
            negated: false,
        } if is_id(expr) => {
            // IN is a set: each id once, in the order first named.
            let mut ids = Vec::new();
            let mut seen = std::collections::HashSet::new();
            for v in list {
                ids.extend(id_of(v)?.filter(|&id| seen.insert(id)));
            }
            Ok(Some(ids))
        }
        _ => Ok(None),
    }
}

fn plan_output(
    expr: &Expr,
    schema: &TableSchema,
    order: Option<(DistanceOp, &Expr)>,
    eval: &Eval<'_>,
) -> Result<(Output, SqlType, String)> {
    if let Some(name) = column_name(expr) {
        let (o, ty) = column_output(schema, name)?;
        return Ok((o, ty, schema.column(name)?.name.clone()));
    }
    if let (Some((op, query_expr)), Ok((o, q))) = (order, order_distance(expr, schema)) {
        let same_query = q == query_expr || eval.vector(q)? == eval.vector(query_expr)?;
        if o == op && same_query {
            let name = match expr {
                Expr::Function(f) => function_name(f),
                _ => "?column?".into(),
            };
            return Ok((Output::Distance, SqlType::Float8, name));
        }
        return Err(SqlError::unsupported(format!(
            "only the ORDER BY distance ({}) can be selected",
            op.symbol()
        )));
    }
    if as_distance(expr).is_some() {
        return Err(SqlError::unsupported(
            "a distance to a stored vector can be selected only in a search: ORDER BY embedding <-> $1 LIMIT k",
        ));
    }
    let ty = eval.infer(expr);
    let value = eval.eval(expr, ty)?;
    Ok((Output::Constant(value), ty, default_name(expr)))
}

/// PostgreSQL's name for an unaliased result column.
pub fn default_name(expr: &Expr) -> String {
    match expr {
        Expr::Function(f) => function_name(f),
        Expr::Cast { expr, .. } => match expr.as_ref() {
            e @ (Expr::Function(_) | Expr::Identifier(_) | Expr::CompoundIdentifier(_)) => {
                default_name(e)
            }
            _ => "?column?".into(),
        },
        e => column_name(e)
            .map(str::to_string)
            .unwrap_or_else(|| "?column?".into()),
    }
}

fn item_expr(item: &SelectItem) -> Option<(&Expr, Option<String>)> {
    match item {
        SelectItem::UnnamedExpr(e) => Some((e, None)),
        SelectItem::ExprWithAlias { expr, alias } => Some((expr, Some(alias.value.clone()))),
        _ => None,
    }
}

fn limit_offset(clause: Option<&LimitClause>, eval: &Eval<'_>) -> Result<(Option<usize>, usize)> {
    let int = |e: &Expr, what: &str| -> Result<Option<usize>> {
        match eval.eval(e, SqlType::Int8)?.coerce(SqlType::Int8)? {
            Datum::Null if !eval.params.is_bound() => Ok(Some(1)),
            Datum::Null => Ok(None),
            Datum::Int(v) if (0..=100_000).contains(&v) => Ok(Some(v as usize)),
            Datum::Int(v) => Err(SqlError::invalid(format!(
                "{what} {v} is out of range 0..=100000"
            ))),
            _ => Err(SqlError::invalid(format!("{what} must be an integer"))),
        }
    };
    match clause {
        None => Ok((None, 0)),
        Some(LimitClause::LimitOffset {
            limit,
            offset,
            limit_by,
        }) => {
            if !limit_by.is_empty() {
                return Err(SqlError::unsupported("LIMIT BY is not supported"));
            }
            let l = limit
                .as_ref()
                .map(|e| int(e, "LIMIT"))
                .transpose()?
                .flatten();
            let o = offset
                .as_ref()
                .map(|o| int(&o.value, "OFFSET"))
                .transpose()?
                .flatten()
                .unwrap_or(0);
            Ok((l, o))
        }
        Some(LimitClause::OffsetCommaLimit { offset, limit }) => {
            Ok((int(limit, "LIMIT")?, int(offset, "OFFSET")?.unwrap_or(0)))
        }
    }
}

/// `SELECT expr, …` without FROM: one row.
fn plan_constant(select: &Select, eval: &Eval<'_>) -> Result<Plan> {
    if select.selection.is_some() {
        return Err(SqlError::unsupported("WHERE without FROM is not supported"));
    }
    let mut columns = Vec::new();
    let mut row = Vec::new();
    for item in &select.projection {
        let (expr, alias) =
            item_expr(item).ok_or_else(|| SqlError::unsupported(format!("select item {item}")))?;
        let ty = eval.infer(expr);
        let v = eval.eval(expr, ty)?;
        let ty = if ty == SqlType::Unknown {
            v.sql_type()
        } else {
            ty
        };
        columns.push(OutColumn::new(
            alias.unwrap_or_else(|| default_name(expr)),
            ty,
        ));
        row.push(v);
    }
    Ok(Plan::Values {
        columns,
        rows: vec![row],
    })
}

/// One row of our `pg_type`: what drivers look up to learn type OIDs
/// (pgvector-python's `register_vector` finds `vector` here).
struct PgTypeRow {
    oid: u32,
    name: &'static str,
    elem: u32,
    array: u32,
    namespace: &'static str,
    len: i64,
    category: &'static str,
}

impl PgTypeRow {
    fn all() -> Vec<PgTypeRow> {
        let mut rows: Vec<PgTypeRow> = SqlType::ALL
            .iter()
            .filter(|t| !matches!(t, SqlType::Vector | SqlType::Unknown))
            .map(|t| PgTypeRow {
                oid: t.oid(),
                name: t.name(),
                elem: 0,
                array: 0,
                namespace: "pg_catalog",
                len: match t {
                    SqlType::Bool => 1,
                    SqlType::Int2 => 2,
                    SqlType::Int4 | SqlType::Float4 | SqlType::Oid => 4,
                    SqlType::Int8 | SqlType::Float8 | SqlType::Timestamp => 8,
                    SqlType::Name => 64,
                    SqlType::Char => 1,
                    _ => -1,
                },
                category: match t {
                    SqlType::Bool => "B",
                    SqlType::Text | SqlType::Name => "S",
                    SqlType::Timestamp => "D",
                    _ => "N",
                },
            })
            .collect();
        // pgvector-python's register_vector also looks up bit.
        rows.push(PgTypeRow {
            oid: 1560,
            name: "bit",
            elem: 0,
            array: 1561,
            namespace: "pg_catalog",
            len: -1,
            category: "V",
        });
        rows.push(PgTypeRow {
            oid: VECTOR_OID,
            name: "vector",
            elem: 0,
            array: VECTOR_ARRAY_OID,
            namespace: "public",
            len: -1,
            category: "U",
        });
        rows.push(PgTypeRow {
            oid: VECTOR_ARRAY_OID,
            name: "_vector",
            elem: VECTOR_OID,
            array: 0,
            namespace: "public",
            len: -1,
            category: "A",
        });
        rows
    }
}

impl Columns for PgTypeRow {
    fn column(&self, name: &str) -> Result<Option<Datum>> {
        let oid = |v: u32| Datum::Int(i64::from(v));
        Ok(Some(match name.to_ascii_lowercase().as_str() {
            "oid" => oid(self.oid),
            "typname" => Datum::Text(self.name.into()),
            "typelem" => oid(self.elem),
            "typarray" => oid(self.array),
            "typdelim" => Datum::Text(",".into()),
            "typtype" => Datum::Text("b".into()),
            "typlen" => Datum::Int(self.len),
            "typcategory" => Datum::Text(self.category.into()),
            "typnamespace" => oid(if self.namespace == "public" { 2200 } else { 11 }),
            "nspname" => Datum::Text(self.namespace.into()),
            "typrelid" | "typbasetype" | "typtypmod" | "typndims" => Datum::Int(0),
            "rngsubtype" | "typdefault" => Datum::Null,
            "typnotnull" | "typisdefined" => Datum::Bool(true),
            _ => return Ok(None),
        }))
    }

    fn column_type(&self, name: &str) -> Option<SqlType> {
        Some(match name.to_ascii_lowercase().as_str() {
            "oid" | "typelem" | "typarray" | "typnamespace" | "typrelid" | "typbasetype"
            | "rngsubtype" => SqlType::Oid,
            "typname" | "nspname" => SqlType::Name,
            "typtype" | "typcategory" | "typdelim" => SqlType::Char,
            "typlen" | "typtypmod" | "typndims" => SqlType::Int4,
            "typnotnull" | "typisdefined" => SqlType::Bool,
            _ => SqlType::Text,
        })
    }
}

fn plan_pg_type(
    select: &Select,
    noop: &Eval<'_>,
    params: &Params,
    session: &Session,
) -> Result<Plan> {
    let rows_all = PgTypeRow::all();
    let probe = &rows_all[0];
    let mut columns = Vec::new();
    let items: Vec<(&Expr, Option<String>)> = select
        .projection
        .iter()
        .map(|i| {
            item_expr(i)
                .ok_or_else(|| SqlError::unsupported("SELECT * FROM pg_type; name the columns"))
        })
        .collect::<Result<_>>()?;
    {
        let eval = Eval {
            params,
            session,
            columns: probe,
        };
        for (expr, alias) in &items {
            columns.push(OutColumn::new(
                alias.clone().unwrap_or_else(|| default_name(expr)),
                eval.infer(expr),
            ));
        }
    }
    let _ = noop;
    let mut rows = Vec::new();
    for r in &rows_all {
        let eval = Eval {
            params,
            session,
            columns: r,
        };
        if let Some(w) = &select.selection {
            // While describing, parameters are NULL and match nothing.
            if !is_true(&eval.eval(w, SqlType::Bool)?)? {
                continue;
            }
        }
        let mut row = Vec::new();
        for ((expr, _), col) in items.iter().zip(&columns) {
            row.push(eval.eval(expr, col.ty)?);
        }
        rows.push(row);
    }
    Ok(Plan::Values { columns, rows })
}
