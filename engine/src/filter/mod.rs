//! Filters on scalar attribute columns: the typed predicate tree that
//! `search_filtered`, the collection layer and SQL's `WHERE` all produce.
//!
//! The tree is plain data so that the SQL planner can build it, EXPLAIN can
//! print it and the engine can estimate its selectivity before choosing a
//! search strategy.

use std::fmt;

mod compile;
mod estimate;
mod eval;
mod parse;
mod strategy;

pub use compile::CompiledFilter;
pub(crate) use compile::{check, compile};
pub use estimate::selectivity;
pub use omen_format::attr::Value;
pub use strategy::{
    EXACT_SCAN_MAX_SELECTIVITY, EXACT_SCAN_RERANK_FACTOR, FilterPlan, SearchStrategy, choose,
};

/// A comparison operator.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum CompareOp {
    Eq,
    Ne,
    Lt,
    Le,
    Gt,
    Ge,
}

impl CompareOp {
    /// The SQL spelling.
    pub const fn symbol(self) -> &'static str {
        match self {
            CompareOp::Eq => "=",
            CompareOp::Ne => "<>",
            CompareOp::Lt => "<",
            CompareOp::Le => "<=",
            CompareOp::Gt => ">",
            CompareOp::Ge => ">=",
        }
    }
}

/// A predicate over one row's attributes. NULL follows SQL: a comparison
/// with NULL is unknown, and a row matches only when the whole tree is true.
#[derive(Debug, Clone, PartialEq)]
pub enum Filter {
    /// `column op value`.
    Compare {
        column: String,
        op: CompareOp,
        value: Value,
    },
    /// `column IN (values…)`.
    In {
        column: String,
        values: Vec<Value>,
    },
    /// `column BETWEEN low AND high`, both ends included.
    Between {
        column: String,
        low: Value,
        high: Value,
    },
    /// `column IS NULL`.
    IsNull {
        column: String,
    },
    And(Vec<Filter>),
    Or(Vec<Filter>),
    Not(Box<Filter>),
}

impl Filter {
    /// `column = value`.
    pub fn eq(column: impl Into<String>, value: Value) -> Filter {
        Filter::Compare {
            column: column.into(),
            op: CompareOp::Eq,
            value,
        }
    }

    /// `column op value`.
    pub fn cmp(column: impl Into<String>, op: CompareOp, value: Value) -> Filter {
        Filter::Compare {
            column: column.into(),
            op,
            value,
        }
    }
}

impl fmt::Display for Filter {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let list = |f: &mut fmt::Formatter<'_>, parts: &[Filter], sep: &str| {
            f.write_str("(")?;
            for (i, p) in parts.iter().enumerate() {
                if i > 0 {
                    f.write_str(sep)?;
                }
                write!(f, "{p}")?;
            }
            f.write_str(")")
        };
        match self {
            Filter::Compare { column, op, value } => {
                write!(f, "{column} {} {value}", op.symbol())
            }
            Filter::In { column, values } => {
                write!(f, "{column} IN (")?;
                for (i, v) in values.iter().enumerate() {
                    if i > 0 {
                        f.write_str(", ")?;
                    }
                    write!(f, "{v}")?;
                }
                f.write_str(")")
            }
            Filter::Between { column, low, high } => {
                write!(f, "{column} BETWEEN {low} AND {high}")
            }
            Filter::IsNull { column } => write!(f, "{column} IS NULL"),
            Filter::And(parts) => list(f, parts, " AND "),
            Filter::Or(parts) => list(f, parts, " OR "),
            Filter::Not(inner) => write!(f, "NOT ({inner})"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn display_reads_like_sql() {
        let f = Filter::And(vec![
            Filter::eq("category", Value::Text("o'k".into())),
            Filter::Not(Box::new(Filter::cmp(
                "price",
                CompareOp::Lt,
                Value::Float64(10.5),
            ))),
        ]);
        assert_eq!(f.to_string(), "(category = 'o''k' AND NOT (price < 10.5))");
    }
}
