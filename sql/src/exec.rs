//! Running statements: the one entry point the wire protocol, the shell
//! and tests share. [`Executor::describe`] answers what a statement takes
//! and returns without running it; [`Executor::execute`] runs it.

use std::fmt::Write as _;
use std::sync::Arc;
use std::time::Instant;

use sqlparser::ast::{Expr, Set, Statement};
use sqlparser::dialect::PostgreSqlDialect;
use sqlparser::parser::Parser;

use crate::catalog::{Catalog, Row, SearchRequest};
use crate::datum::{Datum, SqlType};
use crate::expr::{Eval, NoColumns, Params};
use crate::metrics::Metrics;
use crate::plan::{OutColumn, Output, Plan, VectorSearch, plan_query};
use crate::session::Session;
use crate::{Result, SqlError};

/// Parses SQL text (PostgreSQL dialect; pgvector's operators included)
/// into statements.
pub fn parse(sql: &str) -> Result<Vec<Statement>> {
    Parser::parse_sql(&PostgreSqlDialect {}, sql).map_err(|e| SqlError::Syntax(e.to_string()))
}

/// What a statement returns.
#[derive(Debug, Clone, PartialEq)]
pub enum Outcome {
    /// Rows, and the command tag (`SELECT n`).
    Rows {
        columns: Vec<OutColumn>,
        rows: Vec<Vec<Datum>>,
    },
    /// A command without rows, with its tag (`SET`, `BEGIN`, `INSERT 0 n`).
    Command { tag: String, rows: Option<u64> },
    /// `COPY table FROM STDIN`: the client sends the rows next, through
    /// the wire protocol's copy sub-protocol.
    CopyIn {
        table: String,
        columns: Vec<String>,
        binary: bool,
    },
}

/// What a statement takes and returns, without running it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Description {
    pub params: Vec<SqlType>,
    pub columns: Vec<OutColumn>,
}

/// Runs statements against a catalog.
#[derive(Debug)]
pub struct Executor {
    catalog: Arc<Catalog>,
    read_only: bool,
    /// Where CREATE TABLE puts new tables.
    data_dir: Option<std::path::PathBuf>,
    metrics: Arc<Metrics>,
}

impl Executor {
    pub fn new(catalog: Arc<Catalog>, read_only: bool) -> Self {
        Executor {
            catalog,
            read_only,
            data_dir: None,
            metrics: Arc::new(Metrics::default()),
        }
    }

    /// Creates tables in `dir`.
    pub fn with_data_dir(mut self, dir: impl Into<std::path::PathBuf>) -> Self {
        self.data_dir = Some(dir.into());
        self
    }

    pub fn catalog(&self) -> &Arc<Catalog> {
        &self.catalog
    }

    pub fn metrics(&self) -> &Arc<Metrics> {
        &self.metrics
    }

    pub fn read_only(&self) -> bool {
        self.read_only
    }

    /// The parameter and result types of `stmt`. `declared` are the types
    /// the client named (Unknown where it named none).
    pub fn describe(
        &self,
        stmt: &Statement,
        session: &Session,
        declared: Vec<SqlType>,
    ) -> Result<Description> {
        let params = Params::describe(declared);
        let columns = match stmt {
            Statement::Query(q) => plan_query(q, &self.catalog, session, &params)?.columns(),
            Statement::Explain { statement, .. } => {
                if let Statement::Query(q) = statement.as_ref() {
                    plan_query(q, &self.catalog, session, &params)?;
                }
                vec![OutColumn::new("QUERY PLAN", SqlType::Text)]
            }
            Statement::ShowVariable { variable } => {
                vec![OutColumn::new(show_name(variable), SqlType::Text)]
            }
            Statement::Insert(_) | Statement::Update(_) | Statement::Delete(_) => {
                crate::write::describe(&self.catalog, stmt, &params, session);
                Vec::new()
            }
            _ => Vec::new(),
        };
        Ok(Description {
            params: params.types(),
            columns,
        })
    }

    /// Runs `stmt` with bound parameter values, counting it in the metrics.
    pub fn execute(
        &self,
        stmt: &Statement,
        session: &mut Session,
        params: Vec<Datum>,
    ) -> Result<Outcome> {
        let start = Instant::now();
        let out = self.run(stmt, session, &Params::bound(params));
        self.metrics.record_query(start.elapsed(), out.is_ok());
        out
    }

    fn run(&self, stmt: &Statement, session: &mut Session, params: &Params) -> Result<Outcome> {
        let command = |tag: &str| {
            Ok(Outcome::Command {
                tag: tag.into(),
                rows: None,
            })
        };
        match stmt {
            Statement::Query(q) => {
                let plan = plan_query(q, &self.catalog, session, params)?;
                self.run_plan(plan)
            }
            Statement::Explain {
                statement, analyze, ..
            } => {
                let Statement::Query(q) = statement.as_ref() else {
                    return Err(SqlError::unsupported("EXPLAIN is supported for SELECT"));
                };
                let plan = plan_query(q, &self.catalog, session, params)?;
                let text = self.explain(plan, *analyze)?;
                Ok(Outcome::Rows {
                    columns: vec![OutColumn::new("QUERY PLAN", SqlType::Text)],
                    rows: text
                        .lines()
                        .map(|l| vec![Datum::Text(l.to_string())])
                        .collect(),
                })
            }
            Statement::Set(set) => {
                self.set(set, session, params)?;
                command("SET")
            }
            Statement::Reset(r) => {
                match &r.reset {
                    sqlparser::ast::Reset::ConfigurationParameter(name) => {
                        session.reset(&name.to_string())
                    }
                    _ => *session = Session::default(),
                }
                command("RESET")
            }
            Statement::ShowVariable { variable } => {
                let name = show_name(variable);
                if name.eq_ignore_ascii_case("all") {
                    return Ok(Outcome::Rows {
                        columns: vec![
                            OutColumn::new("name", SqlType::Text),
                            OutColumn::new("setting", SqlType::Text),
                        ],
                        rows: session
                            .all()
                            .map(|(k, v)| vec![Datum::Text(k.into()), Datum::Text(v.into())])
                            .collect(),
                    });
                }
                let value = session.get(&name)?.to_string();
                Ok(Outcome::Rows {
                    columns: vec![OutColumn::new(name, SqlType::Text)],
                    rows: vec![vec![Datum::Text(value)]],
                })
            }
            // Reads are consistent per statement; there is nothing to
            // commit, and drivers that open transactions must not fail.
            Statement::StartTransaction { .. } => command("BEGIN"),
            Statement::Commit { .. } => command("COMMIT"),
            Statement::Rollback { .. } => command("ROLLBACK"),
            Statement::Discard { .. } => command("DISCARD ALL"),
            // psycopg deallocates its prepared statements by SQL. pgwire
            // keeps them per connection (the simple-query hook cannot reach
            // its store); they go when the connection closes.
            Statement::Deallocate { .. } => command("DEALLOCATE"),
            Statement::CreateExtension(e) if e.name.value.eq_ignore_ascii_case("vector") => {
                command("CREATE EXTENSION")
            }
            Statement::Copy { .. } if !self.read_only => copy_in(stmt),
            Statement::Insert(_)
            | Statement::Update(_)
            | Statement::Delete(_)
            | Statement::CreateTable(_)
            | Statement::Drop { .. }
            | Statement::CreateIndex(_)
            | Statement::Copy { .. }
            | Statement::Truncate(_) => {
                if self.read_only {
                    return Err(SqlError::ReadOnly(format!(
                        "cannot execute {} in a read-only server; start omen-serve with --writable",
                        statement_kind(stmt)
                    )));
                }
                crate::write::run(
                    &crate::write::WriteContext {
                        catalog: &self.catalog,
                        data_dir: self.data_dir.as_deref(),
                        params,
                        session,
                    },
                    stmt,
                )
            }
            other => Err(SqlError::unsupported(format!(
                "{} is not supported; supported: SELECT … ORDER BY embedding <-> $1 LIMIT k (also <#>, <=>), \
                 SELECT count(*), EXPLAIN, SET/SHOW/RESET, BEGIN/COMMIT, and with --writable: \
                 CREATE TABLE, INSERT, COPY, UPDATE, DELETE, DROP TABLE, CREATE INDEX",
                statement_kind(other)
            ))),
        }
    }

    fn set(&self, set: &Set, session: &mut Session, params: &Params) -> Result<()> {
        let Set::SingleAssignment {
            variable, values, ..
        } = set
        else {
            // SET TIME ZONE, SET NAMES, …: drivers send these; accept them.
            if let Set::SetTimeZone { value, .. } = set {
                let text = value.to_string().trim_matches('\'').to_string();
                session.set("timezone", &text)?;
            }
            return Ok(());
        };
        let name = variable.to_string();
        let text = values
            .iter()
            .map(|v| match v {
                Expr::Identifier(i) if i.value.eq_ignore_ascii_case("default") => Ok(None),
                Expr::Identifier(i) => Ok(Some(i.value.clone())),
                e => {
                    let eval = Eval {
                        params,
                        session,
                        columns: &NoColumns,
                    };
                    Ok(eval.eval(e, SqlType::Text)?.to_text())
                }
            })
            .collect::<Result<Vec<_>>>()?;
        match text.as_slice() {
            [None] => {
                session.reset(&name);
                Ok(())
            }
            parts => {
                let joined: Vec<String> = parts.iter().flatten().cloned().collect();
                session.set(&name, &joined.join(", "))
            }
        }
    }

    fn run_plan(&self, plan: Plan) -> Result<Outcome> {
        match plan {
            Plan::Values { columns, rows } => Ok(Outcome::Rows { columns, rows }),
            Plan::Count {
                table,
                filter,
                ids,
                column,
            } => {
                let n = match ids {
                    Some(ids) => table.rows(&ids)?.len() as u64,
                    None => table.count(filter.as_ref())?,
                };
                Ok(Outcome::Rows {
                    columns: vec![column],
                    rows: vec![vec![Datum::Int(n as i64)]],
                })
            }
            Plan::Search(s) => {
                let rows = self.search(&s)?.0;
                Ok(Outcome::Rows {
                    columns: s.columns,
                    rows,
                })
            }
            Plan::Scan(s) => {
                let found = match &s.ids {
                    Some(ids) => s.table.rows(ids)?,
                    None => s
                        .table
                        .scan(s.limit.map_or(usize::MAX, |l| l.saturating_add(s.offset)))?,
                };
                let rows = found
                    .iter()
                    .skip(s.offset)
                    .take(s.limit.unwrap_or(usize::MAX))
                    .map(|r| project(&s.outputs, r.id, None, Some(r)))
                    .collect();
                Ok(Outcome::Rows {
                    columns: s.columns,
                    rows,
                })
            }
        }
    }

    fn search(
        &self,
        s: &VectorSearch,
    ) -> Result<(Vec<Vec<Datum>>, omen_engine::index::QueryStats)> {
        let query = s
            .query
            .as_deref()
            .ok_or_else(|| SqlError::invalid("the query vector is not bound"))?;
        let request = SearchRequest {
            query,
            k: s.k,
            params: s.params,
            filter: s.filter.as_ref(),
        };
        let out = match &s.exact_scan {
            None => s.table.search(&request)?,
            Some(_) => s.table.exact_search(&request, s.op.metric())?,
        };
        self.metrics.record_search(&out.stats);
        let hits: Vec<_> = out.hits.iter().skip(s.offset).collect();
        // Stored vectors and attributes are read only when selected.
        let needs_rows = s
            .outputs
            .iter()
            .any(|o| matches!(o, Output::Vector | Output::Attribute(_)));
        let stored: std::collections::HashMap<u64, Row> = if needs_rows {
            let ids: Vec<u64> = hits.iter().map(|h| h.id).collect();
            s.table.rows(&ids)?.into_iter().map(|r| (r.id, r)).collect()
        } else {
            Default::default()
        };
        let rows = hits
            .iter()
            .map(|hit| {
                project(
                    &s.outputs,
                    hit.id,
                    Some(s.op.from_engine(hit.distance)),
                    stored.get(&hit.id),
                )
            })
            .collect();
        Ok((rows, out.stats))
    }

    /// EXPLAIN's text: the segments searched, ef and the filter strategy;
    /// with ANALYZE, what the search cost.
    fn explain(&self, plan: Plan, analyze: bool) -> Result<String> {
        let mut t = String::new();
        match &plan {
            Plan::Values { rows, .. } => {
                let _ = writeln!(t, "Result (rows={})", rows.len());
            }
            Plan::Scan(sc) => match &sc.ids {
                Some(ids) => point_lookup(&mut t, "Point lookup", &sc.table, ids),
                None => {
                    let _ = writeln!(t, "Scan on {}", sc.table.schema().name);
                }
            },
            Plan::Count {
                table,
                ids: Some(ids),
                ..
            } => point_lookup(&mut t, "Count by point lookup", table, ids),
            Plan::Count { table, filter, .. } => {
                let sp = table.plan_search(filter.as_ref())?;
                let _ = writeln!(t, "Count on {}", table.schema().name);
                describe_segments(&mut t, &sp);
            }
            Plan::Search(s) => {
                let schema = s.table.schema();
                let sp = s.table.plan_search(s.filter.as_ref())?;
                let _ = writeln!(
                    t,
                    "Limit (k={}{})",
                    s.k - s.offset,
                    if s.offset > 0 {
                        format!(", offset={}", s.offset)
                    } else {
                        String::new()
                    }
                );
                match &s.exact_scan {
                    None => {
                        let _ = writeln!(
                            t,
                            "  ->  Vector search on {} using omen ({} {} query, {})",
                            schema.name,
                            schema.vector_column().0,
                            s.op.symbol(),
                            crate::vector::DistanceOp::opclass(schema.metric)
                        );
                        let _ = writeln!(
                            t,
                            "        ef={} beam_width={} upper_ef={} early_stop={}",
                            s.params.ef,
                            s.params.beam_width,
                            s.params.upper_ef,
                            s.params
                                .stop_permille
                                .map(|p| format!("{p}‰"))
                                .unwrap_or_else(|| "off".into())
                        );
                    }
                    Some(why) => {
                        let _ = writeln!(
                            t,
                            "  ->  Exact scan on {} ({} {} query)",
                            schema.name,
                            schema.vector_column().0,
                            s.op.symbol(),
                        );
                        let _ = writeln!(t, "        Index not used: {why}");
                    }
                }
                describe_segments(&mut t, &sp);
                match (&s.filter, &sp.filter_strategy) {
                    (None, _) => {
                        let _ = writeln!(t, "        Filter: none");
                    }
                    (Some(f), strategy) => {
                        let _ = writeln!(t, "        Filter: {f}");
                        let _ = writeln!(
                            t,
                            "        Filter strategy: {}",
                            strategy.as_deref().unwrap_or("engine's choice")
                        );
                    }
                }
            }
        }
        if analyze {
            let start = Instant::now();
            match plan {
                Plan::Search(s) => {
                    let (rows, stats) = self.search(&s)?;
                    let _ = writeln!(
                        t,
                        "Actual: rows={} pages_read={} bytes_read={} rounds={} code_distances={} exact_distances={}",
                        rows.len(),
                        stats.pages_read,
                        stats.bytes_read,
                        stats.rounds,
                        stats.code_distances,
                        stats.exact_distances
                    );
                }
                other => {
                    self.run_plan(other)?;
                }
            }
            let _ = writeln!(
                t,
                "Execution Time: {:.3} ms",
                start.elapsed().as_secs_f64() * 1e3
            );
        }
        Ok(t)
    }
}

/// One result row from the outputs.
fn project(outputs: &[Output], id: u64, distance: Option<f64>, row: Option<&Row>) -> Vec<Datum> {
    outputs
        .iter()
        .map(|o| match o {
            Output::Id => Datum::Int(id as i64),
            Output::Distance => distance.map_or(Datum::Null, Datum::Float),
            Output::Vector => row.map_or(Datum::Null, |r| Datum::Vector(r.vector.clone())),
            Output::Attribute(i) => row
                .and_then(|r| r.values.get(*i))
                .map_or(Datum::Null, Datum::from_value),
            Output::Constant(d) => d.clone(),
        })
        .collect()
}

/// EXPLAIN's lines for reading rows by id.
fn point_lookup(t: &mut String, what: &str, table: &Arc<dyn crate::catalog::Table>, ids: &[u64]) {
    let _ = writeln!(
        t,
        "{what} on {} by id ({} id{})",
        table.schema().name,
        ids.len(),
        if ids.len() == 1 { "" } else { "s" }
    );
    let _ = writeln!(
        t,
        "        {}",
        if table.writable() {
            "memtables, then each segment's id map, newest first; deleted rows skipped"
        } else {
            "the segment's id map (built on the first lookup), one row read per id"
        }
    );
}

fn describe_segments(t: &mut String, sp: &crate::catalog::SearchPlan) {
    let _ = writeln!(t, "        Segments: {}", sp.segments.len());
    for s in &sp.segments {
        let _ = writeln!(
            t,
            "          {} ({} rows, io={})",
            s.path.display(),
            s.rows,
            s.io
        );
    }
}

fn show_name(variable: &[sqlparser::ast::Ident]) -> String {
    variable
        .iter()
        .map(|i| i.value.as_str())
        .collect::<Vec<_>>()
        .join(".")
}

/// The statement's leading keywords, for messages ("INSERT", "CREATE TABLE").
pub fn statement_kind(stmt: &Statement) -> String {
    let text = stmt.to_string();
    let words: Vec<&str> = text.split_whitespace().take(2).collect();
    match words.as_slice() {
        [a, b] if matches!(a.to_ascii_uppercase().as_str(), "CREATE" | "DROP" | "ALTER") => {
            format!("{} {}", a.to_ascii_uppercase(), b.to_ascii_uppercase())
        }
        [a, ..] => a.to_ascii_uppercase(),
        [] => "this statement".into(),
    }
}

/// `err`'s message with its causes (see [`omen_format::error::render_chain`]).
pub use omen_format::error::render_chain as render;

/// `COPY t [(cols)] FROM STDIN [WITH (FORMAT text|binary)]`.
fn copy_in(stmt: &Statement) -> Result<Outcome> {
    use sqlparser::ast::{CopyLegacyOption, CopyOption, CopySource, CopyTarget};
    let Statement::Copy {
        source,
        to,
        target,
        options,
        legacy_options,
        ..
    } = stmt
    else {
        return Err(SqlError::unsupported("COPY"));
    };
    let (
        CopySource::Table {
            table_name,
            columns,
        },
        false,
        CopyTarget::Stdin,
    ) = (source, to, target)
    else {
        return Err(SqlError::unsupported(
            "COPY supports loading: COPY table [(columns)] FROM STDIN [WITH (FORMAT text|binary)]",
        ));
    };
    let mut binary = legacy_options
        .iter()
        .any(|o| matches!(o, CopyLegacyOption::Binary));
    for o in options {
        match o {
            CopyOption::Format(f) => match f.value.to_ascii_lowercase().as_str() {
                "binary" => binary = true,
                "text" => binary = false,
                other => {
                    return Err(SqlError::unsupported(format!(
                        "COPY format {other}; supported: text, binary"
                    )));
                }
            },
            CopyOption::Freeze(_) => {}
            other => return Err(SqlError::unsupported(format!("COPY option {other}"))),
        }
    }
    let name = table_name.to_string().replace('"', "").to_ascii_lowercase();
    Ok(Outcome::CopyIn {
        table: name.strip_prefix("public.").unwrap_or(&name).to_string(),
        columns: columns
            .iter()
            .map(|c| c.value.to_ascii_lowercase())
            .collect(),
        binary,
    })
}
