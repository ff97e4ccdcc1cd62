//! Evaluating scalar expressions: literals, `$n` parameters, casts,
//! pgvector's operators and functions, comparisons and the handful of
//! catalog functions drivers call (`version()`, `current_setting()`).
//!
//! Parameters are typed by where they appear: `embedding <-> $1` makes
//! `$1` a vector, `LIMIT $2` a bigint. [`Params`] records those types while
//! a statement is described, and hands out bound values when it runs.

use std::cell::RefCell;

use sqlparser::ast::{
    BinaryOperator, CastKind, DataType, Expr, Function, FunctionArg, FunctionArgExpr,
    FunctionArguments, Ident, UnaryOperator, Value,
};

use crate::datum::{Datum, SqlType, VECTOR_OID};
use crate::session::{SERVER_VERSION, Session};
use crate::vector::DistanceOp;
use crate::{Result, SqlError};

/// A statement's parameters: being described (types collected, values
/// unknown) or bound (values known).
#[derive(Debug)]
pub struct Params {
    types: RefCell<Vec<SqlType>>,
    values: Option<Vec<Datum>>,
}

impl Params {
    /// For describing a statement: `declared` holds the types the client
    /// gave in Parse (Unknown where it gave none).
    pub fn describe(declared: Vec<SqlType>) -> Self {
        Params {
            types: RefCell::new(declared),
            values: None,
        }
    }

    /// For running a statement with these values.
    pub fn bound(values: Vec<Datum>) -> Self {
        Params {
            types: RefCell::new(values.iter().map(|_| SqlType::Unknown).collect()),
            values: Some(values),
        }
    }

    /// No parameters (simple protocol).
    pub fn none() -> Self {
        Params::bound(Vec::new())
    }

    /// Whether values are bound (false while describing).
    pub fn is_bound(&self) -> bool {
        self.values.is_some()
    }

    /// The parameter types learned so far.
    pub fn types(&self) -> Vec<SqlType> {
        self.types.borrow().clone()
    }

    /// Parameter `$n` (1-based), expected to be `ty`.
    fn get(&self, n: usize, ty: SqlType) -> Result<Datum> {
        if n == 0 {
            return Err(undefined_parameter(n));
        }
        {
            let mut types = self.types.borrow_mut();
            if types.len() < n {
                if self.values.is_some() {
                    return Err(undefined_parameter(n));
                }
                types.resize(n, SqlType::Unknown);
            }
            if types[n - 1] == SqlType::Unknown {
                types[n - 1] = ty;
            }
        }
        match &self.values {
            None => Ok(Datum::Null),
            Some(values) => values
                .get(n - 1)
                .cloned()
                .ok_or_else(|| undefined_parameter(n))?
                .coerce(ty),
        }
    }
}

fn undefined_parameter(n: usize) -> SqlError {
    SqlError::InvalidValue {
        sqlstate: "42P02",
        message: format!("there is no parameter ${n}"),
    }
}

/// Resolves column references for the row being evaluated.
pub trait Columns {
    /// The value of the column called `name`; `Ok(None)` when no such
    /// column exists here.
    fn column(&self, name: &str) -> Result<Option<Datum>>;
    /// The type of that column, for describing results.
    fn column_type(&self, name: &str) -> Option<SqlType>;
}

/// No columns: expressions outside any table.
#[derive(Debug)]
pub struct NoColumns;

impl Columns for NoColumns {
    fn column(&self, _: &str) -> Result<Option<Datum>> {
        Ok(None)
    }
    fn column_type(&self, _: &str) -> Option<SqlType> {
        None
    }
}

/// The name a column reference refers to (qualifiers dropped).
pub fn column_name(expr: &Expr) -> Option<&str> {
    match expr {
        Expr::Identifier(Ident { value, .. }) => Some(value),
        Expr::CompoundIdentifier(parts) => parts.last().map(|i| i.value.as_str()),
        Expr::Nested(e) => column_name(e),
        _ => None,
    }
}

/// The distance operator of a binary operator, if it is one of pgvector's.
pub fn distance_operator(op: &BinaryOperator) -> Option<DistanceOp> {
    match op {
        BinaryOperator::LtDashGt => Some(DistanceOp::L2),
        BinaryOperator::Spaceship => Some(DistanceOp::Cosine),
        BinaryOperator::Custom(s) if s == "<#>" => Some(DistanceOp::NegativeInnerProduct),
        BinaryOperator::PGCustomBinaryOperator(parts) if parts.len() == 1 && parts[0] == "<#>" => {
            Some(DistanceOp::NegativeInnerProduct)
        }
        _ => None,
    }
}

/// `a <op> b` or `l2_distance(a, b)` / `cosine_distance(a, b)` as
/// (operator, a, b).
pub fn as_distance(expr: &Expr) -> Option<(DistanceOp, &Expr, &Expr)> {
    match expr {
        Expr::Nested(e) => as_distance(e),
        Expr::BinaryOp { left, op, right } => {
            distance_operator(op).map(|d| (d, left.as_ref(), right.as_ref()))
        }
        Expr::Function(f) => {
            let op = match function_name(f).as_str() {
                "l2_distance" => DistanceOp::L2,
                "cosine_distance" => DistanceOp::Cosine,
                _ => return None,
            };
            match plain_args(f).ok()?.as_slice() {
                [a, b] => Some((op, *a, *b)),
                _ => None,
            }
        }
        _ => None,
    }
}

/// The lower-case function name without a `pg_catalog.` or `public.`
/// qualifier.
pub fn function_name(f: &Function) -> String {
    let name = f.name.to_string().to_ascii_lowercase();
    let name = name.replace('"', "");
    name.strip_prefix("pg_catalog.")
        .or_else(|| name.strip_prefix("public."))
        .unwrap_or(&name)
        .to_string()
}

/// The positional argument expressions of `f`; `*` gives none.
pub fn plain_args(f: &Function) -> Result<Vec<&Expr>> {
    match &f.args {
        FunctionArguments::None => Ok(Vec::new()),
        FunctionArguments::List(list) => list
            .args
            .iter()
            .filter_map(|a| match a {
                FunctionArg::Unnamed(FunctionArgExpr::Expr(e)) => Some(Ok(e)),
                FunctionArg::Unnamed(FunctionArgExpr::Wildcard) => None,
                other => Some(Err(SqlError::unsupported(format!(
                    "function argument {other} is not supported"
                )))),
            })
            .collect(),
        FunctionArguments::Subquery(_) => {
            Err(SqlError::unsupported("subqueries are not supported"))
        }
    }
}

/// Evaluates expressions against one row.
pub struct Eval<'a> {
    pub params: &'a Params,
    pub session: &'a Session,
    pub columns: &'a dyn Columns,
}

impl std::fmt::Debug for Eval<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Eval").finish_non_exhaustive()
    }
}

impl Eval<'_> {
    /// The value of `expr`; `want` types parameters and untyped literals.
    pub fn eval(&self, expr: &Expr, want: SqlType) -> Result<Datum> {
        match expr {
            Expr::Nested(e) => self.eval(e, want),
            Expr::Value(v) => self.literal(&v.value, want),
            Expr::Identifier(_) | Expr::CompoundIdentifier(_) => {
                let name = column_name(expr).unwrap_or_default();
                match self.columns.column(name)? {
                    Some(d) => Ok(d),
                    None => match name.to_ascii_lowercase().as_str() {
                        "current_user" | "session_user" | "user" => Ok(Datum::Text("omen".into())),
                        "current_schema" => Ok(Datum::Text("public".into())),
                        "current_catalog" => Ok(Datum::Text("omen".into())),
                        _ => Err(SqlError::UndefinedColumn {
                            table: String::new(),
                            column: name.to_string(),
                        }),
                    },
                }
            }
            Expr::Cast {
                kind: CastKind::DoubleColon | CastKind::Cast,
                expr,
                data_type,
                ..
            } => {
                let ty = cast_type(data_type)?;
                if is_regtype(data_type) {
                    return self.regtype(expr);
                }
                self.eval(expr, ty)?.coerce(ty)
            }
            Expr::TypedString(ts) => {
                let ty = cast_type(&ts.data_type)?;
                self.literal(&ts.value.value, SqlType::Unknown)?.coerce(ty)
            }
            Expr::UnaryOp { op, expr } => {
                let v = self.eval(expr, want)?;
                match (op, v) {
                    (UnaryOperator::Minus, Datum::Int(i)) => Ok(Datum::Int(-i)),
                    (UnaryOperator::Minus, Datum::Float(f)) => Ok(Datum::Float(-f)),
                    (UnaryOperator::Plus, d @ (Datum::Int(_) | Datum::Float(_))) => Ok(d),
                    (UnaryOperator::Not, Datum::Bool(b)) => Ok(Datum::Bool(!b)),
                    (_, Datum::Null) => Ok(Datum::Null),
                    (op, v) => Err(SqlError::unsupported(format!(
                        "operator {op} on {}",
                        v.describe()
                    ))),
                }
            }
            Expr::BinaryOp { left, op, right } => self.binary(left, op, right),
            Expr::IsNull(e) => Ok(Datum::Bool(self.eval(e, SqlType::Unknown)? == Datum::Null)),
            Expr::IsNotNull(e) => Ok(Datum::Bool(self.eval(e, SqlType::Unknown)? != Datum::Null)),
            Expr::Function(f) => self.function(f),
            other => Err(SqlError::unsupported(format!(
                "expression {other} is not supported; supported: literals, $n parameters, casts, \
                 the vector operators <-> <#> <=>, comparisons, AND/OR/NOT, arithmetic and the \
                 functions l2_distance, inner_product, cosine_distance, vector_dims"
            ))),
        }
    }

    fn literal(&self, v: &Value, want: SqlType) -> Result<Datum> {
        let d = match v {
            Value::Number(n, _) => match n.parse::<i64>() {
                Ok(i) => Datum::Int(i),
                Err(_) => Datum::Float(
                    n.parse()
                        .map_err(|_| SqlError::bad_text(format!("bad number {n}")))?,
                ),
            },
            Value::SingleQuotedString(s)
            | Value::EscapedStringLiteral(s)
            | Value::DoubleQuotedString(s) => Datum::Text(s.clone()),
            Value::Boolean(b) => Datum::Bool(*b),
            Value::Null => Datum::Null,
            Value::Placeholder(p) => {
                let n = p
                    .strip_prefix('$')
                    .and_then(|n| n.parse().ok())
                    .ok_or_else(|| {
                        SqlError::unsupported(format!(
                            "parameter {p}: parameters are written $1, $2, …"
                        ))
                    })?;
                return self.params.get(n, want);
            }
            other => {
                return Err(SqlError::unsupported(format!("literal {other}")));
            }
        };
        // Untyped text takes the type its context wants ('[1,2]' next to
        // a vector is a vector).
        match (&d, want) {
            (Datum::Text(_), SqlType::Vector) => d.coerce(want),
            _ => Ok(d),
        }
    }

    fn binary(&self, left: &Expr, op: &BinaryOperator, right: &Expr) -> Result<Datum> {
        if let Some(dist) = distance_operator(op) {
            let a = self.vector(left)?;
            let b = self.vector(right)?;
            return match (a, b) {
                (Some(a), Some(b)) => Ok(Datum::Float(dist.eval(&a, &b)?)),
                _ => Ok(Datum::Null),
            };
        }
        match op {
            BinaryOperator::And | BinaryOperator::Or => {
                let a = self.eval(left, SqlType::Bool)?;
                let b = self.eval(right, SqlType::Bool)?;
                let (a, b) = (as_bool(&a)?, as_bool(&b)?);
                Ok(match (op, a, b) {
                    (BinaryOperator::And, Some(false), _)
                    | (BinaryOperator::And, _, Some(false)) => Datum::Bool(false),
                    (BinaryOperator::And, Some(true), Some(true)) => Datum::Bool(true),
                    (BinaryOperator::Or, Some(true), _) | (BinaryOperator::Or, _, Some(true)) => {
                        Datum::Bool(true)
                    }
                    (BinaryOperator::Or, Some(false), Some(false)) => Datum::Bool(false),
                    _ => Datum::Null,
                })
            }
            BinaryOperator::Eq
            | BinaryOperator::NotEq
            | BinaryOperator::Lt
            | BinaryOperator::LtEq
            | BinaryOperator::Gt
            | BinaryOperator::GtEq => {
                let (a, b) = self.pair(left, right)?;
                let ord = match (&a, &b) {
                    (Datum::Null, _) | (_, Datum::Null) => return Ok(Datum::Null),
                    (Datum::Int(x), Datum::Int(y)) => x.partial_cmp(y),
                    (Datum::Int(x), Datum::Float(y)) => (*x as f64).partial_cmp(y),
                    (Datum::Float(x), Datum::Int(y)) => x.partial_cmp(&(*y as f64)),
                    (Datum::Float(x), Datum::Float(y)) => x.partial_cmp(y),
                    (Datum::Text(x), Datum::Text(y)) => x.partial_cmp(y),
                    (Datum::Bool(x), Datum::Bool(y)) => x.partial_cmp(y),
                    (Datum::Vector(x), Datum::Vector(y)) => x.partial_cmp(y),
                    (x, y) => {
                        return Err(SqlError::invalid(format!(
                            "cannot compare {} with {}",
                            x.describe(),
                            y.describe()
                        )));
                    }
                };
                let Some(ord) = ord else {
                    return Ok(Datum::Null);
                };
                use std::cmp::Ordering::*;
                Ok(Datum::Bool(match op {
                    BinaryOperator::Eq => ord == Equal,
                    BinaryOperator::NotEq => ord != Equal,
                    BinaryOperator::Lt => ord == Less,
                    BinaryOperator::LtEq => ord != Greater,
                    BinaryOperator::Gt => ord == Greater,
                    _ => ord != Less,
                }))
            }
            BinaryOperator::Plus
            | BinaryOperator::Minus
            | BinaryOperator::Multiply
            | BinaryOperator::Divide => {
                let a = self.eval(left, SqlType::Float8)?;
                let b = self.eval(right, SqlType::Float8)?;
                arithmetic(op, a, b)
            }
            BinaryOperator::StringConcat => {
                let a = self.eval(left, SqlType::Text)?;
                let b = self.eval(right, SqlType::Text)?;
                match (a.to_text(), b.to_text()) {
                    (Some(a), Some(b)) => Ok(Datum::Text(a + &b)),
                    _ => Ok(Datum::Null),
                }
            }
            other => Err(SqlError::unsupported(format!(
                "operator {other} is not supported; supported: <-> <#> <=> = <> < <= > >= AND OR NOT + - * / ||"
            ))),
        }
    }

    /// Both sides of a comparison, each typed by the other where one is a
    /// parameter or untyped literal.
    fn pair(&self, left: &Expr, right: &Expr) -> Result<(Datum, Datum)> {
        let lt = self.infer(left);
        let rt = self.infer(right);
        let a = self.eval(left, rt)?;
        let b = self.eval(
            right,
            if lt == SqlType::Unknown {
                a.sql_type()
            } else {
                lt
            },
        )?;
        // Coerce untyped text to the other side's type.
        let a = match (&a, &b) {
            (Datum::Text(_), Datum::Int(_)) => a.coerce(SqlType::Int8)?,
            (Datum::Text(_), Datum::Float(_)) => a.coerce(SqlType::Float8)?,
            (Datum::Text(_), Datum::Bool(_)) => a.coerce(SqlType::Bool)?,
            (Datum::Text(_), Datum::Vector(_)) => a.coerce(SqlType::Vector)?,
            _ => a,
        };
        let b = match (&a, &b) {
            (Datum::Int(_), Datum::Text(_)) => b.coerce(SqlType::Int8)?,
            (Datum::Float(_), Datum::Text(_)) => b.coerce(SqlType::Float8)?,
            (Datum::Bool(_), Datum::Text(_)) => b.coerce(SqlType::Bool)?,
            (Datum::Vector(_), Datum::Text(_)) => b.coerce(SqlType::Vector)?,
            _ => b,
        };
        Ok((a, b))
    }

    /// `expr` as a vector; `None` for NULL.
    pub fn vector(&self, expr: &Expr) -> Result<Option<Vec<f32>>> {
        match self.eval(expr, SqlType::Vector)?.coerce(SqlType::Vector)? {
            Datum::Vector(v) => Ok(Some(v)),
            _ => Ok(None),
        }
    }

    fn regtype(&self, expr: &Expr) -> Result<Datum> {
        match self.eval(expr, SqlType::Text)? {
            Datum::Int(oid) => Ok(Datum::Int(oid)),
            Datum::Text(name) => match type_oid_by_name(&name) {
                Some(oid) => Ok(Datum::Int(i64::from(oid))),
                None => Err(SqlError::InvalidValue {
                    sqlstate: "42704",
                    message: format!("type \"{name}\" does not exist"),
                }),
            },
            d => Ok(d),
        }
    }

    fn function(&self, f: &Function) -> Result<Datum> {
        let name = function_name(f);
        let args = plain_args(f)?;
        let arity = |n: usize| -> Result<()> {
            if args.len() == n {
                Ok(())
            } else {
                Err(SqlError::invalid(format!(
                    "{name}() takes {n} argument(s), got {}",
                    args.len()
                )))
            }
        };
        match name.as_str() {
            "version" => {
                arity(0)?;
                Ok(Datum::Text(format!(
                    "PostgreSQL {SERVER_VERSION} {} on {}, omen-sql {}",
                    "compatible",
                    std::env::consts::ARCH,
                    env!("CARGO_PKG_VERSION")
                )))
            }
            "current_setting" => {
                if args.is_empty() || args.len() > 2 {
                    return Err(SqlError::invalid("current_setting(name [, missing_ok])"));
                }
                let missing_ok = match args.get(1) {
                    Some(e) => as_bool(&self.eval(e, SqlType::Bool)?)?.unwrap_or(false),
                    None => false,
                };
                match self.eval(args[0], SqlType::Text)? {
                    Datum::Text(n) => match self.session.get(&n) {
                        Ok(v) => Ok(Datum::Text(v.to_string())),
                        Err(_) if missing_ok => Ok(Datum::Null),
                        Err(e) => Err(e),
                    },
                    _ => Ok(Datum::Null),
                }
            }
            "current_database" | "current_catalog" => Ok(Datum::Text("omen".into())),
            "current_schema" => Ok(Datum::Text("public".into())),
            "current_user" | "session_user" => Ok(Datum::Text("omen".into())),
            "pg_backend_pid" => Ok(Datum::Int(i64::from(std::process::id()))),
            "to_regtype" => {
                arity(1)?;
                match self.eval(args[0], SqlType::Text)? {
                    Datum::Text(n) => Ok(type_oid_by_name(&n)
                        .map(|o| Datum::Int(i64::from(o)))
                        .unwrap_or(Datum::Null)),
                    _ => Ok(Datum::Null),
                }
            }
            "vector_dims" => {
                arity(1)?;
                Ok(self
                    .vector(args[0])?
                    .map(|v| Datum::Int(v.len() as i64))
                    .unwrap_or(Datum::Null))
            }
            "vector_norm" | "l2_norm" => {
                arity(1)?;
                Ok(self
                    .vector(args[0])?
                    .map(|v| {
                        Datum::Float(
                            v.iter()
                                .map(|&x| f64::from(x) * f64::from(x))
                                .sum::<f64>()
                                .sqrt(),
                        )
                    })
                    .unwrap_or(Datum::Null))
            }
            "l2_distance" | "cosine_distance" | "inner_product" => {
                arity(2)?;
                let (Some(a), Some(b)) = (self.vector(args[0])?, self.vector(args[1])?) else {
                    return Ok(Datum::Null);
                };
                Ok(Datum::Float(match name.as_str() {
                    "l2_distance" => DistanceOp::L2.eval(&a, &b)?,
                    "cosine_distance" => DistanceOp::Cosine.eval(&a, &b)?,
                    // inner_product() is the positive one; <#> negates it.
                    _ => -DistanceOp::NegativeInnerProduct.eval(&a, &b)?,
                }))
            }
            other => Err(SqlError::unsupported(format!(
                "function {other}() is not supported; supported: l2_distance, inner_product, \
                 cosine_distance, vector_dims, vector_norm, count(*), version, current_setting"
            ))),
        }
    }

    /// The type `expr` will have, for describing a statement.
    pub fn infer(&self, expr: &Expr) -> SqlType {
        match expr {
            Expr::Nested(e) => self.infer(e),
            Expr::Value(v) => match &v.value {
                Value::Number(n, _) if n.parse::<i64>().is_ok() => SqlType::Int8,
                Value::Number(..) => SqlType::Float8,
                Value::Boolean(_) => SqlType::Bool,
                Value::Placeholder(p) => p
                    .strip_prefix('$')
                    .and_then(|n| n.parse::<usize>().ok())
                    .and_then(|n| self.params.types.borrow().get(n.wrapping_sub(1)).copied())
                    .unwrap_or(SqlType::Unknown),
                Value::Null => SqlType::Unknown,
                _ => SqlType::Text,
            },
            Expr::Identifier(_) | Expr::CompoundIdentifier(_) => column_name(expr)
                .and_then(|n| self.columns.column_type(n))
                .unwrap_or(SqlType::Text),
            Expr::Cast { data_type, .. } => {
                if is_regtype(data_type) {
                    SqlType::Oid
                } else {
                    cast_type(data_type).unwrap_or(SqlType::Text)
                }
            }
            Expr::TypedString(ts) => cast_type(&ts.data_type).unwrap_or(SqlType::Text),
            Expr::UnaryOp {
                op: UnaryOperator::Not,
                ..
            } => SqlType::Bool,
            Expr::UnaryOp { expr, .. } => self.infer(expr),
            Expr::IsNull(_) | Expr::IsNotNull(_) => SqlType::Bool,
            Expr::BinaryOp { left, op, right } => {
                if distance_operator(op).is_some() {
                    return SqlType::Float8;
                }
                match op {
                    BinaryOperator::Plus
                    | BinaryOperator::Minus
                    | BinaryOperator::Multiply
                    | BinaryOperator::Divide => match (self.infer(left), self.infer(right)) {
                        (SqlType::Int8, SqlType::Int8) => SqlType::Int8,
                        _ => SqlType::Float8,
                    },
                    BinaryOperator::StringConcat => SqlType::Text,
                    _ => SqlType::Bool,
                }
            }
            Expr::Function(f) => match function_name(f).as_str() {
                "vector_dims" | "pg_backend_pid" => SqlType::Int4,
                "count" => SqlType::Int8,
                "l2_distance" | "cosine_distance" | "inner_product" | "vector_norm" | "l2_norm" => {
                    SqlType::Float8
                }
                "to_regtype" => SqlType::Oid,
                _ => SqlType::Text,
            },
            _ => SqlType::Text,
        }
    }
}

/// The type a cast names.
pub fn cast_type(dt: &DataType) -> Result<SqlType> {
    let name = dt.to_string();
    SqlType::from_sql_name(&name).ok_or_else(|| {
        SqlError::unsupported(format!(
            "type {name} is not supported; supported: vector, bigint, integer, smallint, real, \
             double precision, text, boolean, timestamp"
        ))
    })
}

fn is_regtype(dt: &DataType) -> bool {
    matches!(dt, DataType::Regclass) || dt.to_string().eq_ignore_ascii_case("regtype")
}

/// The OID of the type called `name` (`vector`, `int8`, `bigint`, …).
pub fn type_oid_by_name(name: &str) -> Option<u32> {
    let n = name.trim().trim_matches('"').to_ascii_lowercase();
    if n == "vector[]" || n == "_vector" {
        return Some(crate::datum::VECTOR_ARRAY_OID);
    }
    if n == "bit" || n == "pg_catalog.bit" {
        return Some(1560);
    }
    if n == "vector" || n == "public.vector" {
        return Some(VECTOR_OID);
    }
    SqlType::from_sql_name(&n).map(SqlType::oid)
}

fn as_bool(d: &Datum) -> Result<Option<bool>> {
    match d {
        Datum::Null => Ok(None),
        Datum::Bool(b) => Ok(Some(*b)),
        other => Err(SqlError::invalid(format!(
            "argument of AND/OR/WHERE must be boolean, not {}",
            other.describe()
        ))),
    }
}

/// `true` only for a true boolean (WHERE keeps a row only then).
pub fn is_true(d: &Datum) -> Result<bool> {
    Ok(as_bool(d)? == Some(true))
}

fn arithmetic(op: &BinaryOperator, a: Datum, b: Datum) -> Result<Datum> {
    let err = |a: &Datum, b: &Datum| {
        SqlError::invalid(format!(
            "cannot apply {op} to {} and {}",
            a.describe(),
            b.describe()
        ))
    };
    Ok(match (&a, &b) {
        (Datum::Null, _) | (_, Datum::Null) => Datum::Null,
        (Datum::Int(x), Datum::Int(y)) => {
            let r = match op {
                BinaryOperator::Plus => x.checked_add(*y),
                BinaryOperator::Minus => x.checked_sub(*y),
                BinaryOperator::Multiply => x.checked_mul(*y),
                _ if *y == 0 => {
                    return Err(SqlError::InvalidValue {
                        sqlstate: "22012",
                        message: "division by zero".into(),
                    });
                }
                _ => x.checked_div(*y),
            };
            Datum::Int(r.ok_or_else(|| SqlError::InvalidValue {
                sqlstate: "22003",
                message: "bigint out of range".into(),
            })?)
        }
        _ => {
            let x = match a.clone().coerce(SqlType::Float8)? {
                Datum::Float(v) => v,
                _ => return Err(err(&a, &b)),
            };
            let y = match b.clone().coerce(SqlType::Float8)? {
                Datum::Float(v) => v,
                _ => return Err(err(&a, &b)),
            };
            Datum::Float(match op {
                BinaryOperator::Plus => x + y,
                BinaryOperator::Minus => x - y,
                BinaryOperator::Multiply => x * y,
                _ => x / y,
            })
        }
    })
}
