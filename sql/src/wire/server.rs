//! The omen-serve daemon's event loop: accept connections (optionally
//! TLS), run each on its own task, poll the data directory for new
//! segments, serve Prometheus metrics, and shut down gracefully: on the
//! shutdown signal it stops accepting, lets open connections finish for a
//! grace period, then returns.

use std::future::Future;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use pgwire::api::ErrorHandler;
use pgwire::api::PgWireServerHandlers;
use pgwire::api::auth::StartupHandler;
use pgwire::api::query::{ExtendedQueryHandler, SimpleQueryHandler};
use pgwire::tokio::process_socket;
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;
use tokio_rustls::TlsAcceptor;
use tokio_rustls::rustls::ServerConfig;

use super::auth::{Startup, Trust, Users};
use super::{Errors, Handler};
use crate::exec::Executor;
use crate::loader::{Change, Loader};
use crate::{Result, SqlError};

/// How to serve.
#[derive(Debug)]
pub struct ServeConfig {
    pub listen: SocketAddr,
    /// SCRAM users; `None` means trust, allowed only on loopback.
    pub users: Option<Users>,
    /// PEM certificate chain and private key for TLS.
    pub tls: Option<(PathBuf, PathBuf)>,
    /// With `tls`: refuse clients that do not ask for TLS (PostgreSQL's
    /// `hostssl`) instead of serving them in plain text.
    pub require_tls: bool,
    /// Where to serve Prometheus text.
    pub metrics: Option<SocketAddr>,
    /// How often to look for new segments.
    pub reload_every: Duration,
    /// How long open connections may finish after shutdown starts.
    pub grace: Duration,
}

struct Factory {
    handler: Arc<Handler>,
    startup: Arc<Startup>,
    errors: Arc<Errors>,
}

impl PgWireServerHandlers for Factory {
    fn simple_query_handler(&self) -> Arc<impl SimpleQueryHandler> {
        self.handler.clone()
    }
    fn extended_query_handler(&self) -> Arc<impl ExtendedQueryHandler> {
        self.handler.clone()
    }
    fn startup_handler(&self) -> Arc<impl StartupHandler> {
        self.startup.clone()
    }
    fn copy_handler(&self) -> Arc<impl pgwire::api::copy::CopyHandler> {
        self.handler.clone()
    }
    fn error_handler(&self) -> Arc<impl ErrorHandler> {
        self.errors.clone()
    }
}

/// Checks the configuration before anything listens: trust without users
/// only on a loopback address; TLS files readable.
pub fn validate(config: &ServeConfig) -> Result<Option<TlsAcceptor>> {
    if config.users.is_none() && !config.listen.ip().is_loopback() {
        return Err(SqlError::invalid(format!(
            "listening on {} without --users would trust every client; trust is allowed only on loopback (127.0.0.1, ::1). Give --users FILE for SCRAM-SHA-256",
            config.listen
        )));
    }
    let Some((cert, key)) = &config.tls else {
        if config.require_tls {
            return Err(SqlError::invalid(
                "--require-tls needs --tls-cert and --tls-key",
            ));
        }
        return Ok(None);
    };
    let bad =
        |path: &PathBuf, e: String| SqlError::invalid(format!("TLS: {}: {e}", path.display()));
    let certs = CertificateDer::pem_file_iter(cert)
        .map_err(|e| bad(cert, e.to_string()))?
        .collect::<std::result::Result<Vec<_>, _>>()
        .map_err(|e| bad(cert, e.to_string()))?;
    let key_der = PrivateKeyDer::from_pem_file(key).map_err(|e| bad(key, e.to_string()))?;
    let mut tls = ServerConfig::builder()
        .with_no_client_auth()
        .with_single_cert(certs, key_der)
        .map_err(|e| bad(cert, e.to_string()))?;
    tls.alpn_protocols = vec![b"postgresql".to_vec()];
    Ok(Some(TlsAcceptor::from(Arc::new(tls))))
}

/// Serves until `shutdown` completes. `ready` receives the bound address
/// (useful with port 0).
pub async fn serve(
    config: ServeConfig,
    exec: Arc<Executor>,
    loader: Loader,
    ready: impl FnOnce(SocketAddr, Option<SocketAddr>),
    shutdown: impl Future<Output = ()>,
) -> Result<()> {
    let tls = validate(&config)?;
    let io = |what: &str, e: std::io::Error| {
        SqlError::Format(omen_format::FormatError::io(PathBuf::from(what), e))
    };
    let listener = TcpListener::bind(config.listen)
        .await
        .map_err(|e| io(&config.listen.to_string(), e))?;
    let local = listener.local_addr().map_err(|e| io("listener", e))?;
    let metrics_addr = match config.metrics {
        Some(addr) => {
            let l = TcpListener::bind(addr)
                .await
                .map_err(|e| io(&addr.to_string(), e))?;
            let bound = l.local_addr().map_err(|e| io("metrics listener", e))?;
            tokio::spawn(serve_metrics(l, exec.clone()));
            Some(bound)
        }
        None => None,
    };

    let startup = match config.users {
        Some(users) => Startup::scram(Arc::new(users)),
        None => Startup::Trust(Trust),
    };
    let factory = Arc::new(Factory {
        handler: Arc::new(Handler::new(exec.clone())),
        startup: Arc::new(startup),
        errors: Arc::new(Errors { exec: exec.clone() }),
    });

    let loader = Arc::new(Mutex::new(loader));
    let reload = {
        let exec = exec.clone();
        let loader = loader.clone();
        let every = config.reload_every;
        tokio::spawn(async move {
            loop {
                tokio::time::sleep(every).await;
                let exec = exec.clone();
                let loader = loader.clone();
                let changes = tokio::task::spawn_blocking(move || {
                    loader
                        .lock()
                        .unwrap_or_else(|p| p.into_inner())
                        .refresh(exec.catalog())
                })
                .await
                .unwrap_or_default();
                log_changes(&changes);
            }
        })
    };
    ready(local, metrics_addr);

    tokio::pin!(shutdown);
    loop {
        tokio::select! {
            _ = &mut shutdown => break,
            accepted = listener.accept() => {
                let (socket, peer) = match accepted {
                    Ok(a) => a,
                    Err(e) => {
                        tracing::warn!(error = %e, "accept failed");
                        tokio::time::sleep(Duration::from_millis(50)).await;
                        continue;
                    }
                };
                let _ = socket.set_nodelay(true);
                let factory = Arc::new(Factory {
                    handler: Arc::new(factory.handler.for_connection(&socket)),
                    startup: factory.startup.clone(),
                    errors: factory.errors.clone(),
                });
                let tls = tls.clone();
                let metrics = exec.metrics().clone();
                metrics.connection_opened();
                let require_tls = config.require_tls;
                tokio::spawn(async move {
                    let mut socket = socket;
                    if require_tls && !tls_requested(&mut socket).await {
                        refuse_plain_text(socket).await;
                        metrics.connection_closed();
                        return;
                    }
                    if let Err(e) = process_socket(socket, tls, factory).await {
                        tracing::debug!(%peer, error = %e, "connection ended with an error");
                    }
                    metrics.connection_closed();
                });
            }
        }
    }
    reload.abort();
    drop(listener);
    let deadline = tokio::time::Instant::now() + config.grace;
    while exec.metrics().open_connections() > 0 && tokio::time::Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    Ok(())
}

/// The request codes a client sends instead of a startup message to ask
/// for an encrypted connection (PostgreSQL protocol, "SSLRequest" and
/// "GSSENCRequest").
const SSL_REQUEST: u32 = 80_877_103;
const GSSENC_REQUEST: u32 = 80_877_104;
/// The first byte of a TLS ClientHello (a handshake record).
const TLS_HANDSHAKE_RECORD: u8 = 0x16;

/// Whether the client's first message asks for TLS, looked at without
/// consuming it (pgwire then runs the handshake). A GSSAPI-encryption
/// request is declined here with 'N', as PostgreSQL does without GSSAPI,
/// and the client's next message decides. A client that sends nothing
/// within 10 s, or closes, counts as not asking.
async fn tls_requested(socket: &mut tokio::net::TcpStream) -> bool {
    let mut head = [0u8; 8];
    loop {
        let peeked = tokio::time::timeout(Duration::from_secs(10), async {
            loop {
                match socket.peek(&mut head).await {
                    Ok(8) => return true,
                    Ok(0) | Err(_) => return false,
                    // Fewer bytes so far: wait for the rest.
                    Ok(_) => tokio::time::sleep(Duration::from_millis(5)).await,
                }
            }
        })
        .await;
        if !matches!(peeked, Ok(true)) {
            return false;
        }
        let len = u32::from_be_bytes([head[0], head[1], head[2], head[3]]);
        let code = u32::from_be_bytes([head[4], head[5], head[6], head[7]]);
        if head[0] == TLS_HANDSHAKE_RECORD {
            // PostgreSQL 17's sslnegotiation=direct: TLS from the first byte.
            return true;
        }
        match (len, code) {
            (8, SSL_REQUEST) => return true,
            (8, GSSENC_REQUEST) => {
                if socket.read_exact(&mut head).await.is_err()
                    || socket.write_all(b"N").await.is_err()
                {
                    return false;
                }
            }
            _ => return false,
        }
    }
}

/// Answers a plain-text client of a `--require-tls` server with a FATAL
/// ErrorResponse (SQLSTATE 28000, as PostgreSQL's `hostssl` rejection)
/// and closes the connection.
async fn refuse_plain_text(mut socket: tokio::net::TcpStream) {
    let mut fields = Vec::new();
    for (tag, value) in [
        (b'S', "FATAL"),
        (b'V', "FATAL"),
        (b'C', "28000"),
        (
            b'M',
            "this server requires TLS: connect with sslmode=require (or verify-ca, verify-full)",
        ),
    ] {
        fields.push(tag);
        fields.extend_from_slice(value.as_bytes());
        fields.push(0);
    }
    fields.push(0);
    let mut message = vec![b'E'];
    message.extend_from_slice(&(fields.len() as u32 + 4).to_be_bytes());
    message.extend_from_slice(&fields);
    let _ = socket.write_all(&message).await;
    let _ = socket.shutdown().await;
}

/// Prints what a refresh changed.
pub fn log_changes(changes: &[Change]) {
    for c in changes {
        match c {
            Change::Added { table, path } => {
                tracing::info!(table, path = %path.display(), "table added")
            }
            Change::Reloaded { table, path } => {
                tracing::info!(table, path = %path.display(), "table reloaded")
            }
            Change::Removed { table } => tracing::info!(table, "table removed"),
            Change::Failed { path, error } => {
                tracing::warn!(path = %path.display(), error, "segment not served")
            }
        }
    }
}

/// A minimal HTTP endpoint: every request gets the metrics text.
async fn serve_metrics(listener: TcpListener, exec: Arc<Executor>) {
    loop {
        let Ok((mut socket, _)) = listener.accept().await else {
            continue;
        };
        let exec = exec.clone();
        tokio::spawn(async move {
            let mut buf = vec![0u8; 4096];
            let mut got = 0;
            // Read the request head (bounded); its content does not matter.
            while got < buf.len() {
                match tokio::time::timeout(Duration::from_secs(2), socket.read(&mut buf[got..]))
                    .await
                {
                    Ok(Ok(0)) | Err(_) | Ok(Err(_)) => break,
                    Ok(Ok(n)) => {
                        got += n;
                        if buf[..got].windows(4).any(|w| w == b"\r\n\r\n") {
                            break;
                        }
                    }
                }
            }
            let body = exec.metrics().render();
            let head = format!(
                "HTTP/1.1 200 OK\r\nContent-Type: text/plain; version=0.0.4\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
                body.len()
            );
            let _ = socket.write_all(head.as_bytes()).await;
            let _ = socket.write_all(body.as_bytes()).await;
            let _ = socket.shutdown().await;
        });
    }
}

/// Runs [`serve`] on its own multi-threaded runtime until SIGTERM or
/// SIGINT, for binaries that are not async themselves.
pub fn run_until_signal(
    config: ServeConfig,
    exec: Arc<Executor>,
    loader: Loader,
    ready: impl FnOnce(SocketAddr, Option<SocketAddr>),
) -> Result<()> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .thread_name("omen-serve")
        .build()
        .map_err(|e| SqlError::Format(omen_format::FormatError::io("tokio runtime", e)))?;
    runtime.block_on(async move {
        let shutdown = async {
            let mut term = match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
                Ok(s) => s,
                Err(e) => {
                    tracing::warn!(error = %e, "cannot watch SIGTERM; only Ctrl-C stops the server");
                    let _ = tokio::signal::ctrl_c().await;
                    return;
                }
            };
            tokio::select! {
                _ = term.recv() => {}
                _ = tokio::signal::ctrl_c() => {}
            }
            tracing::info!("shutting down: no new connections; waiting for open ones");
        };
        serve(config, exec, loader, ready, shutdown).await
    })
}
