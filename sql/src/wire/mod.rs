//! The PostgreSQL v3 wire protocol, through pgwire: simple and extended
//! query protocol, parameters in text and binary (pgvector's binary
//! `vector` included), and errors with SQLSTATEs.
//!
//! - [`codec`]: SQL values to and from the bytes of the wire;
//! - [`copy`]: COPY FROM STDIN data, text and binary;
//! - [`auth`]: SCRAM-SHA-256 users from a file, or trust on loopback;
//! - [`server`]: listening, TLS, hot reload, graceful shutdown, metrics.

pub mod auth;
pub mod codec;
pub mod copy;
pub mod server;

use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use futures::stream;
use pgwire::api::portal::{Format, Portal};
use pgwire::api::query::{ExtendedQueryHandler, SimpleQueryHandler};
use pgwire::api::results::{
    DescribePortalResponse, DescribeStatementResponse, FieldInfo, QueryResponse, Response, Tag,
};
use pgwire::api::stmt::{QueryParser, StoredStatement};
use pgwire::api::{ClientInfo, ErrorHandler, Type};
use pgwire::error::{ErrorInfo, PgWireError, PgWireResult};
use sqlparser::ast::Statement;

use crate::datum::SqlType;
use crate::exec::{Description, Executor, Outcome, parse};
use crate::plan::OutColumn;
use crate::session::Session;
use crate::{Result, SqlError};

/// Longest query text accepted; longer ones get 54000
/// (program_limit_exceeded) and the connection stays open.
pub const MAX_QUERY_BYTES: usize = 16 << 20;

/// One connection's settings, kept in pgwire's per-session store.
#[derive(Debug, Default)]
struct SessionSlot(Mutex<Session>);

fn session_of<C: ClientInfo>(client: &C) -> Arc<SessionSlot> {
    client
        .session_extensions()
        .get_or_insert_with(SessionSlot::default)
}

/// A `SqlError` as the ErrorResponse a client sees.
pub fn to_pg_error(err: &SqlError) -> PgWireError {
    PgWireError::UserError(Box::new(ErrorInfo::new(
        "ERROR".to_owned(),
        err.sqlstate().to_owned(),
        crate::exec::render(err),
    )))
}

/// A parsed statement as the extended protocol stores it: `None` for an
/// empty query.
#[derive(Debug, Clone)]
pub struct Prepared {
    pub sql: Arc<str>,
    pub statement: Option<Arc<Statement>>,
    /// The parameter types, worked out (by planning the statement) on its
    /// first execution and reused by the next ones: a prepared statement
    /// executed many times is planned for its types once, not per Execute.
    param_types: Arc<std::sync::OnceLock<Vec<SqlType>>>,
}

impl Prepared {
    pub fn new(sql: &str, statement: Option<Statement>) -> Self {
        Prepared {
            sql: sql.into(),
            statement: statement.map(Arc::new),
            param_types: Arc::default(),
        }
    }
}

/// The query handlers of one connection (the executor and parser are
/// shared by all).
#[derive(Debug, Clone)]
pub struct Handler {
    exec: Arc<Executor>,
    parser: Arc<OmenQueryParser>,
    /// A second handle on the connection's socket, to notice a client that
    /// hung up while its statements run; `None` where there is no socket.
    peer: Option<Arc<std::net::TcpStream>>,
}

impl Handler {
    pub fn new(exec: Arc<Executor>) -> Self {
        Handler {
            parser: Arc::new(OmenQueryParser { exec: exec.clone() }),
            exec,
            peer: None,
        }
    }

    /// This handler for the connection on `socket` (a duplicate of its
    /// descriptor; pgwire owns the original).
    pub fn for_connection(&self, socket: &tokio::net::TcpStream) -> Self {
        use std::os::fd::AsFd;
        let peer = socket
            .as_fd()
            .try_clone_to_owned()
            .ok()
            .map(|fd| Arc::new(std::net::TcpStream::from(fd)));
        Handler {
            peer,
            ..self.clone()
        }
    }

    /// Whether the client has closed its end (or the connection broke):
    /// statements it sent and that have not started are then skipped, not
    /// run for nobody. One non-blocking `peek` (the socket is non-blocking,
    /// as tokio left it); data waiting, or nothing yet, means still there.
    fn client_gone(&self) -> bool {
        let Some(peer) = &self.peer else {
            return false;
        };
        match peer.peek(&mut [0u8; 1]) {
            Ok(0) => true,
            Ok(_) => false,
            Err(e) => !matches!(
                e.kind(),
                std::io::ErrorKind::WouldBlock | std::io::ErrorKind::Interrupted
            ),
        }
    }

    pub fn executor(&self) -> &Arc<Executor> {
        &self.exec
    }

    /// Runs one statement where blocking is allowed (searches block on
    /// disk). On a multi-threaded runtime (omen-serve's) it runs in place:
    /// tokio hands this worker's other tasks to another thread and the
    /// statement runs here, with no wake-up of a blocking-pool thread and
    /// no wake-up back, two scheduler hand-offs a query that a loaded
    /// machine makes expensive (benches/RESULTS.md). Elsewhere it goes to
    /// the blocking pool. A panic becomes an error for this statement only.
    async fn run(
        &self,
        slot: Arc<SessionSlot>,
        stmt: Arc<Statement>,
        params: Vec<crate::datum::Datum>,
    ) -> Result<Outcome> {
        let exec = self.exec.clone();
        let work = move || {
            let mut session = slot.0.lock().unwrap_or_else(|p| p.into_inner()).clone();
            let out = exec.execute(&stmt, &mut session, params);
            *slot.0.lock().unwrap_or_else(|p| p.into_inner()) = session;
            out
        };
        let failed = |why: String| SqlError::invalid(format!("the statement failed: {why}"));
        if tokio::runtime::Handle::current().runtime_flavor()
            == tokio::runtime::RuntimeFlavor::MultiThread
        {
            tokio::task::block_in_place(|| {
                std::panic::catch_unwind(std::panic::AssertUnwindSafe(work)).unwrap_or_else(|p| {
                    let why = p
                        .downcast_ref::<&str>()
                        .map(|s| s.to_string())
                        .or_else(|| p.downcast_ref::<String>().cloned())
                        .unwrap_or_else(|| "internal error".into());
                    Err(failed(why))
                })
            })
        } else {
            tokio::task::spawn_blocking(work)
                .await
                .unwrap_or_else(|e| Err(failed(e.to_string())))
        }
    }
}

fn pg_type(ty: SqlType) -> Type {
    match ty {
        SqlType::Vector => codec::vector_type(),
        SqlType::Unknown => Type::TEXT,
        other => Type::from_oid(other.oid()).unwrap_or(Type::TEXT),
    }
}

fn field_infos(columns: &[OutColumn], format: &Format) -> Vec<FieldInfo> {
    columns
        .iter()
        .enumerate()
        .map(|(i, c)| {
            FieldInfo::new(
                c.name.clone(),
                None,
                None,
                pg_type(c.ty),
                format.format_for(i),
            )
        })
        .collect()
}

/// A COPY FROM STDIN in progress on one connection.
#[derive(Debug, Default)]
struct CopySlot(Mutex<Option<CopyState>>);

#[derive(Debug)]
struct CopyState {
    table: Arc<dyn crate::catalog::Table>,
    targets: Vec<String>,
    binary: bool,
    data: Vec<u8>,
    too_large: bool,
}

impl Handler {
    /// Starts a COPY: remembers where the rows go and tells the client to
    /// send them.
    fn start_copy<C: ClientInfo>(
        &self,
        client: &C,
        table: &str,
        columns: &[String],
        binary: bool,
    ) -> Result<Response> {
        let table = self.exec.catalog().get(table)?;
        if !table.writable() {
            return Err(table.read_only());
        }
        let targets = copy::targets(table.schema(), columns)?;
        let n = targets.len();
        let slot = client
            .session_extensions()
            .get_or_insert_with(CopySlot::default);
        *slot.0.lock().unwrap_or_else(|p| p.into_inner()) = Some(CopyState {
            table,
            targets,
            binary,
            data: Vec::new(),
            too_large: false,
        });
        Ok(Response::CopyIn(pgwire::api::results::CopyResponse::new(
            i8::from(binary),
            n,
            stream::empty(),
        )))
    }

    /// Turns an outcome into a response, starting a COPY if it asks for one.
    fn respond<C: ClientInfo>(
        &self,
        client: &C,
        outcome: Outcome,
        format: &Format,
    ) -> PgWireResult<Response> {
        match outcome {
            Outcome::CopyIn {
                table,
                columns,
                binary,
            } => self
                .start_copy(client, &table, &columns, binary)
                .map_err(|e| to_pg_error(&e)),
            other => response(other, format),
        }
    }
}

#[async_trait]
impl pgwire::api::copy::CopyHandler for Handler {
    async fn on_copy_data<C>(
        &self,
        client: &mut C,
        data: pgwire::messages::copy::CopyData,
    ) -> PgWireResult<()>
    where
        C: ClientInfo + futures::Sink<pgwire::messages::PgWireBackendMessage> + Unpin + Send + Sync,
        C::Error: std::fmt::Debug,
        PgWireError: From<<C as futures::Sink<pgwire::messages::PgWireBackendMessage>>::Error>,
    {
        let slot = client
            .session_extensions()
            .get_or_insert_with(CopySlot::default);
        let mut state = slot.0.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(s) = state.as_mut() {
            if s.data.len() + data.data.len() > copy::MAX_COPY_BYTES {
                // Keep reading (the protocol requires it) but drop the data;
                // CopyDone reports the error.
                s.too_large = true;
                s.data = Vec::new();
            } else if !s.too_large {
                s.data.extend_from_slice(&data.data);
            }
        }
        Ok(())
    }

    async fn on_copy_done<C>(
        &self,
        client: &mut C,
        _done: pgwire::messages::copy::CopyDone,
    ) -> PgWireResult<()>
    where
        C: ClientInfo + futures::Sink<pgwire::messages::PgWireBackendMessage> + Unpin + Send + Sync,
        C::Error: std::fmt::Debug,
        PgWireError: From<<C as futures::Sink<pgwire::messages::PgWireBackendMessage>>::Error>,
    {
        use futures::SinkExt;
        let slot = client
            .session_extensions()
            .get_or_insert_with(CopySlot::default);
        let state = slot.0.lock().unwrap_or_else(|p| p.into_inner()).take();
        let Some(state) = state else {
            return Err(to_pg_error(&SqlError::invalid(
                "CopyDone without a COPY in progress",
            )));
        };
        if state.too_large {
            return Err(to_pg_error(&SqlError::InvalidValue {
                sqlstate: "54000",
                message: format!(
                    "COPY data exceeds {} bytes; load it in batches",
                    copy::MAX_COPY_BYTES
                ),
            }));
        }
        let exec = self.exec.clone();
        let n = tokio::task::spawn_blocking(move || -> Result<u64> {
            let schema = state.table.schema();
            let rows = if state.binary {
                copy::parse_binary(&state.data, schema, &state.targets)?
            } else {
                copy::parse_text(&state.data, schema, &state.targets)?
            };
            let n = if rows.is_empty() {
                0
            } else {
                state.table.insert(rows)?
            };
            exec.metrics().record_query(std::time::Duration::ZERO, true);
            Ok(n)
        })
        .await
        .unwrap_or_else(|e| Err(SqlError::invalid(format!("COPY task failed: {e}"))))
        .map_err(|e| to_pg_error(&e))?;
        client
            .send(pgwire::messages::PgWireBackendMessage::CommandComplete(
                Tag::new("COPY").with_rows(n as usize).into(),
            ))
            .await?;
        Ok(())
    }
}

/// An outcome as the response pgwire sends.
fn response(outcome: Outcome, format: &Format) -> PgWireResult<Response> {
    match outcome {
        Outcome::CopyIn { .. } => Err(to_pg_error(&SqlError::invalid(
            "COPY needs the copy sub-protocol",
        ))),
        Outcome::Command { tag, rows } => {
            let mut t = Tag::new(&tag);
            if let Some(n) = rows {
                t = t.with_rows(n as usize);
            }
            Ok(Response::Execution(t))
        }
        Outcome::Rows { columns, rows } => {
            let fields = Arc::new(field_infos(&columns, format));
            let types: Vec<SqlType> = columns.iter().map(|c| c.ty).collect();
            let encoded = rows
                .into_iter()
                .map(|row| Ok(codec::encode_row(&row, &types, format)))
                .collect::<Vec<_>>();
            Ok(Response::Query(QueryResponse::new(
                fields,
                stream::iter(encoded),
            )))
        }
    }
}

fn check_size(query: &str) -> PgWireResult<()> {
    if query.len() > MAX_QUERY_BYTES {
        return Err(PgWireError::UserError(Box::new(ErrorInfo::new(
            "ERROR".into(),
            "54000".into(),
            format!(
                "query of {} bytes exceeds the limit of {MAX_QUERY_BYTES} bytes",
                query.len()
            ),
        ))));
    }
    Ok(())
}

#[async_trait]
impl SimpleQueryHandler for Handler {
    async fn do_query<C>(&self, client: &mut C, query: &str) -> PgWireResult<Vec<Response>>
    where
        C: ClientInfo + Unpin + Send + Sync,
    {
        check_size(query).inspect_err(|_| self.exec.metrics().record_error())?;
        let statements = parse(query).map_err(|e| {
            self.exec.metrics().record_error();
            to_pg_error(&e)
        })?;
        let slot = session_of(client);
        let total = statements.len();
        let mut out = Vec::with_capacity(total);
        for stmt in statements {
            if self.client_gone() {
                tracing::debug!(
                    skipped = total - out.len(),
                    "client disconnected; the rest of its query is not run"
                );
                break;
            }
            match self.run(slot.clone(), Arc::new(stmt), Vec::new()).await {
                Ok(o) => out.push(self.respond(client, o, &Format::UnifiedText)?),
                Err(e) => {
                    // PostgreSQL stops a multi-statement query at the
                    // first error and reports it after what ran before.
                    if let PgWireError::UserError(info) = to_pg_error(&e) {
                        out.push(Response::Error(info));
                    }
                    break;
                }
            }
        }
        Ok(out)
    }
}

/// Parses statements for the extended protocol and describes them.
#[derive(Debug)]
pub struct OmenQueryParser {
    exec: Arc<Executor>,
}

impl OmenQueryParser {
    fn describe(&self, stmt: &Prepared, declared: &[Option<Type>]) -> PgWireResult<Description> {
        let Some(s) = &stmt.statement else {
            return Ok(Description {
                params: Vec::new(),
                columns: Vec::new(),
            });
        };
        let declared = declared
            .iter()
            .map(|t| {
                t.as_ref()
                    .and_then(|t| codec::sql_type_of(t.oid()))
                    .unwrap_or(SqlType::Unknown)
            })
            .collect();
        self.exec
            .describe(s, &Session::default(), declared)
            .map_err(|e| to_pg_error(&e))
    }
}

#[async_trait]
impl QueryParser for OmenQueryParser {
    type Statement = Prepared;

    async fn parse_sql<C>(
        &self,
        _client: &C,
        sql: &str,
        _types: &[Option<Type>],
    ) -> PgWireResult<Option<Prepared>>
    where
        C: ClientInfo + Unpin + Send + Sync,
    {
        check_size(sql)?;
        let mut statements = parse(sql).map_err(|e| to_pg_error(&e))?;
        if statements.len() > 1 {
            return Err(to_pg_error(&SqlError::Syntax(
                "cannot insert multiple commands into a prepared statement".into(),
            )));
        }
        Ok(Some(Prepared::new(sql, statements.pop())))
    }

    fn get_parameter_types(&self, stmt: &Prepared) -> PgWireResult<Vec<Type>> {
        Ok(self
            .describe(stmt, &[])?
            .params
            .into_iter()
            .map(pg_type)
            .collect())
    }

    fn get_result_schema(
        &self,
        stmt: &Prepared,
        format: Option<&Format>,
    ) -> PgWireResult<Vec<FieldInfo>> {
        let d = self.describe(stmt, &[])?;
        Ok(field_infos(
            &d.columns,
            format.unwrap_or(&Format::UnifiedBinary),
        ))
    }
}

#[async_trait]
impl ExtendedQueryHandler for Handler {
    type Statement = Prepared;
    type QueryParser = OmenQueryParser;

    fn query_parser(&self) -> Arc<Self::QueryParser> {
        self.parser.clone()
    }

    async fn do_query<C>(
        &self,
        client: &mut C,
        portal: &Portal<Prepared>,
        _max_rows: usize,
    ) -> PgWireResult<Response>
    where
        C: ClientInfo + Unpin + Send + Sync,
    {
        let Some(stmt) = portal.statement.statement.statement.clone() else {
            return Ok(Response::EmptyQuery);
        };
        if self.client_gone() {
            // Pipelined Executes of a client that hung up: nobody reads
            // the answer, so do not run them.
            return Err(to_pg_error(&SqlError::invalid(
                "the client disconnected before this statement ran",
            )));
        }
        let prepared = &portal.statement.statement;
        let described = match prepared.param_types.get() {
            Some(types) => types.clone(),
            None => {
                let types = self
                    .parser
                    .describe(prepared, &portal.statement.parameter_types)?
                    .params;
                let _ = prepared.param_types.set(types.clone());
                types
            }
        };
        let mut params = Vec::with_capacity(portal.parameters.len());
        for (i, raw) in portal.parameters.iter().enumerate() {
            let declared = portal.statement.parameter_types.get(i).cloned().flatten();
            let ty = declared
                .as_ref()
                .and_then(|t| codec::sql_type_of(t.oid()))
                .or_else(|| described.get(i).copied())
                .unwrap_or(SqlType::Unknown);
            let value =
                codec::decode_param(raw.as_deref(), portal.parameter_format.is_binary(i), ty)
                    .map_err(|e| {
                        self.exec.metrics().record_error();
                        to_pg_error(&SqlError::InvalidValue {
                            sqlstate: e.sqlstate(),
                            message: format!("parameter ${}: {}", i + 1, crate::exec::render(&e)),
                        })
                    })?;
            params.push(value);
        }
        let out = self
            .run(session_of(client), stmt, params)
            .await
            .map_err(|e| to_pg_error(&e))?;
        self.respond(client, out, &portal.result_column_format)
    }

    async fn do_describe_statement<C>(
        &self,
        _client: &mut C,
        stmt: &StoredStatement<Prepared>,
    ) -> PgWireResult<DescribeStatementResponse>
    where
        C: ClientInfo + Unpin + Send + Sync,
    {
        let d = self
            .parser
            .describe(&stmt.statement, &stmt.parameter_types)?;
        // Statement describe comes before Bind: result formats are not
        // known yet, so the fields are described as text.
        Ok(DescribeStatementResponse::new(
            d.params.into_iter().map(pg_type).collect(),
            field_infos(&d.columns, &Format::UnifiedText),
        ))
    }

    async fn do_describe_portal<C>(
        &self,
        _client: &mut C,
        portal: &Portal<Prepared>,
    ) -> PgWireResult<DescribePortalResponse>
    where
        C: ClientInfo + Unpin + Send + Sync,
    {
        let d = self.parser.describe(
            &portal.statement.statement,
            &portal.statement.parameter_types,
        )?;
        Ok(DescribePortalResponse::new(field_infos(
            &d.columns,
            &portal.result_column_format,
        )))
    }
}

/// Counts failed logins and other errors for the metrics.
#[derive(Debug)]
pub struct Errors {
    exec: Arc<Executor>,
}

impl ErrorHandler for Errors {
    fn on_error<C>(&self, _client: &C, error: &mut PgWireError)
    where
        C: ClientInfo,
    {
        match error {
            PgWireError::InvalidPassword(_) | PgWireError::InvalidScramMessage(_) => {
                self.exec.metrics().auth_failed();
            }
            _ => {}
        }
        tracing::debug!(%error, "client error");
    }
}
