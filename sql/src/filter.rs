//! Translating `WHERE` on scalar columns into the engine's filter tree
//! ([`omen_engine::filter::Filter`]), which the engine's filtered search
//! evaluates while it searches. Nothing here filters rows itself.

use omen_engine::filter::{CompareOp, Filter};
use sqlparser::ast::{BinaryOperator, Expr, UnaryOperator};

use crate::catalog::{ColumnKind, TableSchema};
use crate::datum::SqlType;
use crate::expr::{Eval, column_name};
use crate::{Result, SqlError};

/// `expr` as a filter over `schema`'s attribute columns; values (literals
/// and parameters) are evaluated by `eval`.
pub fn to_filter(expr: &Expr, schema: &TableSchema, eval: &Eval<'_>) -> Result<Filter> {
    let attr = |e: &Expr| -> Result<Option<(String, omen_format::attr::ColumnType)>> {
        let Some(name) = column_name(e) else {
            return Ok(None);
        };
        let col = schema.column(name)?;
        match col.kind {
            ColumnKind::Attribute(ty) => Ok(Some((col.name.clone(), ty))),
            ColumnKind::Id | ColumnKind::Vector { .. } => Err(SqlError::unsupported(format!(
                "WHERE on column \"{}\" is not supported with vector search; filter on attribute columns (and delete by id)",
                col.name
            ))),
        }
    };
    let value = |e: &Expr, ty| -> Result<omen_format::attr::Value> {
        eval.eval(e, SqlType::of_column(ty))?.to_value(ty)
    };
    Ok(match expr {
        Expr::Nested(e) => to_filter(e, schema, eval)?,
        Expr::BinaryOp {
            left,
            op: BinaryOperator::And,
            right,
        } => flatten(
            true,
            to_filter(left, schema, eval)?,
            to_filter(right, schema, eval)?,
        ),
        Expr::BinaryOp {
            left,
            op: BinaryOperator::Or,
            right,
        } => flatten(
            false,
            to_filter(left, schema, eval)?,
            to_filter(right, schema, eval)?,
        ),
        Expr::UnaryOp {
            op: UnaryOperator::Not,
            expr,
        } => Filter::Not(Box::new(to_filter(expr, schema, eval)?)),
        Expr::BinaryOp { left, op, right } => {
            let cmp = compare_op(op).ok_or_else(|| unsupported(expr))?;
            if let Some((column, ty)) = attr(left)? {
                Filter::Compare {
                    column,
                    op: cmp,
                    value: value(right, ty)?,
                }
            } else if let Some((column, ty)) = attr(right)? {
                Filter::Compare {
                    column,
                    op: flip(cmp),
                    value: value(left, ty)?,
                }
            } else {
                return Err(unsupported(expr));
            }
        }
        Expr::InList {
            expr: e,
            list,
            negated,
        } => {
            let (column, ty) = attr(e)?.ok_or_else(|| unsupported(expr))?;
            let values = list.iter().map(|v| value(v, ty)).collect::<Result<_>>()?;
            negate(*negated, Filter::In { column, values })
        }
        Expr::Between {
            expr: e,
            negated,
            low,
            high,
        } => {
            let (column, ty) = attr(e)?.ok_or_else(|| unsupported(expr))?;
            negate(
                *negated,
                Filter::Between {
                    column,
                    low: value(low, ty)?,
                    high: value(high, ty)?,
                },
            )
        }
        Expr::IsNull(e) => {
            let (column, _) = attr(e)?.ok_or_else(|| unsupported(expr))?;
            Filter::IsNull { column }
        }
        Expr::IsNotNull(e) => {
            let (column, _) = attr(e)?.ok_or_else(|| unsupported(expr))?;
            Filter::Not(Box::new(Filter::IsNull { column }))
        }
        _ => return Err(unsupported(expr)),
    })
}

fn unsupported(expr: &Expr) -> SqlError {
    SqlError::unsupported(format!(
        "WHERE {expr} is not supported; supported: column = <> < <= > >= value, IN (…), \
         BETWEEN, IS [NOT] NULL, combined with AND, OR and NOT"
    ))
}

fn compare_op(op: &BinaryOperator) -> Option<CompareOp> {
    Some(match op {
        BinaryOperator::Eq => CompareOp::Eq,
        BinaryOperator::NotEq => CompareOp::Ne,
        BinaryOperator::Lt => CompareOp::Lt,
        BinaryOperator::LtEq => CompareOp::Le,
        BinaryOperator::Gt => CompareOp::Gt,
        BinaryOperator::GtEq => CompareOp::Ge,
        _ => return None,
    })
}

/// `value op column` as `column flip(op) value`.
fn flip(op: CompareOp) -> CompareOp {
    match op {
        CompareOp::Lt => CompareOp::Gt,
        CompareOp::Le => CompareOp::Ge,
        CompareOp::Gt => CompareOp::Lt,
        CompareOp::Ge => CompareOp::Le,
        other => other,
    }
}

fn negate(negated: bool, f: Filter) -> Filter {
    if negated { Filter::Not(Box::new(f)) } else { f }
}

/// `a AND b` / `a OR b`, merging nested lists of the same kind.
fn flatten(and: bool, a: Filter, b: Filter) -> Filter {
    let mut parts = Vec::new();
    for f in [a, b] {
        match (and, f) {
            (true, Filter::And(inner)) | (false, Filter::Or(inner)) => parts.extend(inner),
            (_, f) => parts.push(f),
        }
    }
    if and {
        Filter::And(parts)
    } else {
        Filter::Or(parts)
    }
}
