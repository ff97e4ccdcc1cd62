//! Compiling a [`Filter`] against one segment's columns: names resolve to
//! column indices, literals are type-checked against the column types (a
//! mismatch is an error naming the column), and text literals become ranges
//! or sets of dictionary codes, so evaluation compares integers.

use std::sync::Arc;

use omen_format::attr::{ColumnSchema, ColumnType, Value};
use omen_format::segment::attributes::{Column, ColumnValues};

use super::{CompareOp, Filter};
use crate::{EngineError, Result};

/// A predicate on one column.
#[derive(Debug, Clone)]
pub(crate) enum Leaf {
    /// `column op literal` on an int64 or timestamp column, integer compare.
    Int { col: usize, op: CompareOp, lit: i64 },
    /// `column op literal` compared as `f64` (float columns, or an int64
    /// column against a float literal), with `total_cmp` like `sql_cmp`.
    Float { col: usize, op: CompareOp, lit: f64 },
    /// `column op literal` on a bool column.
    Bool {
        col: usize,
        op: CompareOp,
        lit: bool,
    },
    /// Text: the row's dictionary code lies in `lo..hi`.
    CodeRange { col: usize, lo: u32, hi: u32 },
    /// `column IN (...)`: the set of matching values for this column, as a
    /// sorted list of `f64`/`i64` keys or dictionary codes. `has_null`: the
    /// list contains NULL, so a non-match is unknown rather than false.
    IntIn {
        col: usize,
        set: Vec<i64>,
        has_null: bool,
    },
    FloatIn {
        col: usize,
        set: Vec<f64>,
        has_null: bool,
    },
    CodeIn {
        col: usize,
        set: Vec<bool>,
        has_null: bool,
    },
    /// `column IS NULL`.
    IsNull { col: usize },
}

impl Leaf {
    pub(crate) fn column(&self) -> usize {
        match self {
            Leaf::Int { col, .. }
            | Leaf::Float { col, .. }
            | Leaf::Bool { col, .. }
            | Leaf::CodeRange { col, .. }
            | Leaf::IntIn { col, .. }
            | Leaf::FloatIn { col, .. }
            | Leaf::CodeIn { col, .. }
            | Leaf::IsNull { col } => *col,
        }
    }
}

/// SQL's three truth values.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Truth {
    False,
    Unknown,
    True,
}

/// A compiled predicate tree.
#[derive(Debug, Clone)]
pub(crate) enum Node {
    /// Decided without looking at a row (a comparison with a NULL literal).
    Const(Truth),
    Leaf(Leaf),
    And(Vec<Node>),
    Or(Vec<Node>),
    Not(Box<Node>),
}

/// A filter bound to one segment's columns, ready to evaluate.
#[derive(Debug, Clone)]
pub struct CompiledFilter {
    pub(crate) root: Node,
    /// The columns the tree reads, indexed by the segment's column index
    /// (`None`: not used by this filter).
    pub(crate) columns: Vec<Option<Arc<Column>>>,
    pub(crate) rows: usize,
}

/// Resolves names and checks types of `filter` against `schema`; returns
/// the tree with literals not yet bound to dictionaries, and the column
/// indices it reads.
pub(crate) fn check(filter: &Filter, schema: &[ColumnSchema]) -> Result<Vec<usize>> {
    let mut used = Vec::new();
    walk_check(filter, schema, &mut used)?;
    used.sort_unstable();
    used.dedup();
    Ok(used)
}

fn walk_check(f: &Filter, schema: &[ColumnSchema], used: &mut Vec<usize>) -> Result<()> {
    let mut leaf = |column: &str, values: &[&Value]| -> Result<()> {
        let col = resolve(column, schema)?;
        let c = &schema[col];
        for v in values {
            check_literal(f, c, v)?;
        }
        used.push(col);
        Ok(())
    };
    match f {
        Filter::Compare { column, value, .. } => leaf(column, &[value]),
        Filter::In { column, values } => leaf(column, &values.iter().collect::<Vec<_>>()),
        Filter::Between { column, low, high } => leaf(column, &[low, high]),
        Filter::IsNull { column } => leaf(column, &[]),
        Filter::And(parts) | Filter::Or(parts) => {
            parts.iter().try_for_each(|p| walk_check(p, schema, used))
        }
        Filter::Not(inner) => walk_check(inner, schema, used),
    }
}

fn resolve(column: &str, schema: &[ColumnSchema]) -> Result<usize> {
    schema.iter().position(|c| c.name == column).ok_or_else(|| {
        let names: Vec<&str> = schema.iter().map(|c| c.name.as_str()).collect();
        EngineError::InvalidArgument(if names.is_empty() {
            format!("filter on column \"{column}\": the segment has no attribute columns")
        } else {
            format!(
                "filter on column \"{column}\": no such attribute column (the segment has {})",
                names.join(", ")
            )
        })
    })
}

fn check_literal(f: &Filter, c: &ColumnSchema, v: &Value) -> Result<()> {
    let ok = match (c.ty, v) {
        (_, Value::Null) => true,
        (ColumnType::Int64 | ColumnType::Float64, Value::Int64(_) | Value::Float64(_)) => true,
        (ty, v) => v.column_type() == Some(ty),
    };
    if let Value::Float64(x) = v
        && x.is_nan()
    {
        return Err(EngineError::InvalidArgument(format!(
            "filter `{f}`: NaN is not a value to compare column \"{}\" with",
            c.name
        )));
    }
    if ok {
        Ok(())
    } else {
        Err(EngineError::InvalidArgument(format!(
            "type mismatch in filter `{f}`: column \"{}\" is {}, but {v} is {}",
            c.name,
            c.ty,
            v.column_type().map_or("NULL", |t| t.name())
        )))
    }
}

/// Compiles a type-checked filter over `columns` (every column `check`
/// reported must be present).
pub(crate) fn compile(
    filter: &Filter,
    schema: &[ColumnSchema],
    columns: Vec<Option<Arc<Column>>>,
    rows: usize,
) -> Result<CompiledFilter> {
    let root = node(filter, schema, &columns)?;
    Ok(CompiledFilter {
        root,
        columns,
        rows,
    })
}

fn column_of(columns: &[Option<Arc<Column>>], col: usize) -> Result<&Column> {
    columns
        .get(col)
        .and_then(|c| c.as_deref())
        .ok_or_else(|| EngineError::InvalidArgument(format!("attribute column {col} not loaded")))
}

fn node(f: &Filter, schema: &[ColumnSchema], columns: &[Option<Arc<Column>>]) -> Result<Node> {
    Ok(match f {
        Filter::Compare { column, op, value } => {
            let col = resolve(column, schema)?;
            compare(col, *op, value, column_of(columns, col)?)
        }
        Filter::Between { column, low, high } => {
            let col = resolve(column, schema)?;
            let c = column_of(columns, col)?;
            Node::And(vec![
                compare(col, CompareOp::Ge, low, c),
                compare(col, CompareOp::Le, high, c),
            ])
        }
        Filter::In { column, values } => {
            let col = resolve(column, schema)?;
            let c = column_of(columns, col)?;
            in_list(col, values, c)
        }
        Filter::IsNull { column } => Node::Leaf(Leaf::IsNull {
            col: resolve(column, schema)?,
        }),
        Filter::And(parts) => Node::And(
            parts
                .iter()
                .map(|p| node(p, schema, columns))
                .collect::<Result<_>>()?,
        ),
        Filter::Or(parts) => Node::Or(
            parts
                .iter()
                .map(|p| node(p, schema, columns))
                .collect::<Result<_>>()?,
        ),
        Filter::Not(inner) => Node::Not(Box::new(node(inner, schema, columns)?)),
    })
}

/// `col op value`, already type-checked.
fn compare(col: usize, op: CompareOp, value: &Value, c: &Column) -> Node {
    match (&c.values, value) {
        (_, Value::Null) => Node::Const(Truth::Unknown),
        (ColumnValues::Int64(_), Value::Int64(x))
        | (ColumnValues::Timestamp(_), Value::Timestamp(x)) => {
            Node::Leaf(Leaf::Int { col, op, lit: *x })
        }
        (ColumnValues::Int64(_) | ColumnValues::Float64(_), Value::Float64(x)) => {
            Node::Leaf(Leaf::Float { col, op, lit: *x })
        }
        (ColumnValues::Float64(_), Value::Int64(x)) => Node::Leaf(Leaf::Float {
            col,
            op,
            lit: *x as f64,
        }),
        (ColumnValues::Bool(_), Value::Bool(b)) => Node::Leaf(Leaf::Bool { col, op, lit: *b }),
        (ColumnValues::Text { dictionary, .. }, Value::Text(s)) => {
            let below = dictionary.partition_point(|d| d.as_str() < s.as_str()) as u32;
            let upto = dictionary.partition_point(|d| d.as_str() <= s.as_str()) as u32;
            let all = dictionary.len() as u32;
            let (lo, hi) = match op {
                CompareOp::Eq => (below, upto),
                CompareOp::Ne => {
                    return Node::Not(Box::new(Node::Leaf(Leaf::CodeRange {
                        col,
                        lo: below,
                        hi: upto,
                    })));
                }
                CompareOp::Lt => (0, below),
                CompareOp::Le => (0, upto),
                CompareOp::Gt => (upto, all),
                CompareOp::Ge => (below, all),
            };
            Node::Leaf(Leaf::CodeRange { col, lo, hi })
        }
        // Unreachable after `check`; stay total anyway.
        _ => Node::Const(Truth::Unknown),
    }
}

fn in_list(col: usize, values: &[Value], c: &Column) -> Node {
    let has_null = values.iter().any(Value::is_null);
    match &c.values {
        ColumnValues::Int64(_) | ColumnValues::Timestamp(_)
            if values.iter().all(|v| !matches!(v, Value::Float64(_))) =>
        {
            let mut set: Vec<i64> = values
                .iter()
                .filter_map(|v| match v {
                    Value::Int64(x) | Value::Timestamp(x) => Some(*x),
                    _ => None,
                })
                .collect();
            set.sort_unstable();
            set.dedup();
            Node::Leaf(Leaf::IntIn { col, set, has_null })
        }
        ColumnValues::Int64(_) | ColumnValues::Float64(_) => {
            let mut set: Vec<f64> = values
                .iter()
                .filter_map(|v| match v {
                    Value::Int64(x) => Some(*x as f64),
                    Value::Float64(x) => Some(*x),
                    _ => None,
                })
                .collect();
            set.sort_unstable_by(f64::total_cmp);
            set.dedup_by(|a, b| a.total_cmp(b).is_eq());
            Node::Leaf(Leaf::FloatIn { col, set, has_null })
        }
        ColumnValues::Bool(_) => Node::Or(
            values
                .iter()
                .map(|v| compare(col, CompareOp::Eq, v, c))
                .collect(),
        ),
        ColumnValues::Text { dictionary, .. } => {
            let mut set = vec![false; dictionary.len()];
            for v in values {
                if let Value::Text(s) = v
                    && let Ok(code) = dictionary.binary_search_by(|d| d.as_str().cmp(s))
                {
                    set[code] = true;
                }
            }
            Node::Leaf(Leaf::CodeIn { col, set, has_null })
        }
        ColumnValues::Timestamp(_) => Node::Const(Truth::Unknown),
    }
}
