//! `omen-serve`: the PostgreSQL wire-protocol daemon. Serves segments as
//! pgvector-compatible tables; all logic lives in `omen_sql`.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use clap::Parser;
use omen_engine::index::SegmentOptions;
use omen_engine::io::IoWait;
use omen_sql::catalog::Catalog;
use omen_sql::exec::Executor;
use omen_sql::loader::{Loader, Source};
use omen_sql::wire::auth::Users;
use omen_sql::wire::server::{ServeConfig, log_changes, run_until_signal};
use omen_tools::{ToolError, cli, say};

/// Serve OmenDB segments over the PostgreSQL wire protocol.
#[derive(Debug, Parser)]
#[command(
    name = "omen-serve",
    version,
    about = "Serve OmenDB segments over the PostgreSQL wire protocol, with pgvector's SQL",
    long_about = "\
Serve k-nearest-neighbour searches over segments built by omen-build, speaking \
the PostgreSQL v3 wire protocol with pgvector's SQL, so psql, psycopg with \
pgvector-python and other PostgreSQL clients work unchanged.

Every *.omen file in a --data directory becomes a table named after the file \
(lower case; other characters than letters, digits and _ become _), with the \
columns id bigint and embedding vector(d). --table name=path names one \
explicitly. New, changed and removed segment files are picked up while running \
(every --reload-ms).

Queries:
  SELECT id, embedding <-> $1 AS dist FROM t ORDER BY embedding <-> $1 LIMIT 10
  SELECT count(*) FROM t
  EXPLAIN SELECT id FROM t ORDER BY embedding <-> '[1,2,…]' LIMIT 10
  SET omen.ef_search = 100      (pgvector's hnsw.ef_search is an alias)
  SELECT * FROM t WHERE id = 42  (a point lookup, not a scan)
The index serves the operator of the metric the table was built for: <-> for \
l2, <#> (negative inner product) for ip, <=> (cosine distance) for cos. Another \
operator gets exact results from a scan of every row, as pgvector falls back to \
a sequential scan; EXPLAIN says which one a query uses.

Security: without --users every client is trusted, which is allowed only when \
listening on loopback. --users FILE (one name:password per line) turns on \
SCRAM-SHA-256 for everyone. --tls-cert/--tls-key enable TLS (rustls): a client \
that asks for it (psql/libpq sslmode=require) gets an encrypted connection, one \
that does not is served in plain text, as PostgreSQL does with ssl=on; add \
--require-tls to refuse plain-text clients (FATAL, SQLSTATE 28000).

By default the server is read-only: writes get SQLSTATE 25006. With --writable, \
CREATE TABLE items (id bigint PRIMARY KEY, embedding vector(3), category text) \
makes a writable collection in the first --data directory; INSERT, UPDATE and \
DELETE (by id) and DROP TABLE work on it. Segment files stay read-only. SIGTERM or Ctrl-C stops \
accepting connections and lets open ones finish (up to --grace-ms).

Examples:
  omen-serve --data /var/lib/omen --listen 127.0.0.1:5433
  psql -h 127.0.0.1 -p 5433 -c \"SELECT count(*) FROM index\"
  omen-serve --table items=/data/items.omen --listen 0.0.0.0:5433 --users users.txt \\
      --tls-cert server.crt --tls-key server.key --metrics 127.0.0.1:9187"
)]
struct Args {
    /// Directory of segment files (or one segment file) to serve; repeatable.
    #[arg(long)]
    data: Vec<PathBuf>,
    /// A table from one segment file: name=path; repeatable.
    #[arg(long = "table", value_name = "NAME=PATH")]
    tables: Vec<String>,
    /// Address to listen on (port 0 picks a free port, printed at start).
    #[arg(long, default_value = "127.0.0.1:5433")]
    listen: SocketAddr,
    /// Users file for SCRAM-SHA-256 (name:password per line). Without it, trust (loopback only).
    #[arg(long)]
    users: Option<PathBuf>,
    /// TLS certificate chain (PEM).
    #[arg(long, requires = "tls_key")]
    tls_cert: Option<PathBuf>,
    /// TLS private key (PEM).
    #[arg(long, requires = "tls_cert")]
    tls_key: Option<PathBuf>,
    /// With TLS on: refuse clients that do not ask for TLS (instead of serving them in plain text).
    #[arg(long, requires = "tls_cert")]
    require_tls: bool,
    /// Serve Prometheus metrics (plain HTTP) on this address.
    #[arg(long)]
    metrics: Option<SocketAddr>,
    /// Accept writes: CREATE TABLE makes a collection in the first --data directory.
    #[arg(long)]
    writable: bool,
    /// How often to look for new or changed segment files, in milliseconds.
    #[arg(long, default_value_t = 1000)]
    reload_ms: u64,
    /// How long open connections may finish after SIGTERM, in milliseconds.
    #[arg(long, default_value_t = 5000)]
    grace_ms: u64,
    /// How a query waits for its segment reads: sleep, or spin (lower
    /// latency; the query's core stays busy while it waits). Leave it at
    /// sleep when queries keep every core busy.
    #[arg(long, default_value = "sleep")]
    io_wait: IoWait,
}

fn main() -> ExitCode {
    let args = Args::parse();
    cli::run(|| serve(args))
}

fn serve(args: Args) -> omen_tools::Result<()> {
    let mut sources: Vec<Source> = args.data.iter().cloned().map(Source::Path).collect();
    for t in &args.tables {
        sources.push(Source::parse_named(t).map_err(ToolError::Usage)?);
    }
    if sources.is_empty() {
        return Err(ToolError::Usage(
            "nothing to serve: give --data DIR or --table name=path".into(),
        ));
    }
    for s in &sources {
        let path = match s {
            Source::Path(p) | Source::Named { path: p, .. } => p,
        };
        if !path.exists() {
            return Err(ToolError::Usage(format!(
                "{}: no such file or directory",
                path.display()
            )));
        }
    }
    let users = args.users.as_deref().map(Users::load).transpose()?;
    let catalog = Arc::new(Catalog::new());
    let segment_options = SegmentOptions {
        io_wait: args.io_wait,
        ..SegmentOptions::default()
    };
    let mut loader = Loader::new(sources, segment_options);
    log_changes(&loader.refresh(&catalog));
    let names: Vec<String> = catalog
        .tables()
        .iter()
        .map(|t| t.schema().name.clone())
        .collect();
    let mut exec = Executor::new(catalog, !args.writable);
    if let Some(dir) = args.data.iter().find(|d| d.is_dir()) {
        exec = exec.with_data_dir(dir);
    }
    let exec = Arc::new(exec);
    let config = ServeConfig {
        listen: args.listen,
        users,
        tls: args.tls_cert.zip(args.tls_key),
        require_tls: args.require_tls,
        metrics: args.metrics,
        reload_every: Duration::from_millis(args.reload_ms.max(10)),
        grace: Duration::from_millis(args.grace_ms),
    };
    run_until_signal(config, exec, loader, |addr, metrics| {
        say!(
            "omen-serve: listening on {addr}; tables: {}{}",
            if names.is_empty() {
                "(none yet)".to_string()
            } else {
                names.join(", ")
            },
            metrics
                .map(|m| format!("; metrics on http://{m}/metrics"))
                .unwrap_or_default()
        );
    })?;
    say!("omen-serve: stopped");
    Ok(())
}
