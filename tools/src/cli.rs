//! Process setup shared by the binaries: logging from `RUST_LOG`, error
//! printing and exit codes.
//!
//! Exit codes: 0 success; 1 an error (bad input, corrupt file, I/O); 2 a
//! usage error (clap) or a command that is not implemented yet.

use std::process::ExitCode;

use crate::ToolError;

/// Exit code for a command that is not implemented yet (and for usage
/// errors, which clap reports itself).
pub const EXIT_NOT_IMPLEMENTED: u8 = 2;

/// Sends `tracing` events to stderr, filtered by `RUST_LOG` (default:
/// warnings and errors only). Idempotent.
pub fn init_tracing() {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn"));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .try_init();
}

pub use omen_format::error::render_chain as render_error;

/// Runs a command body: initialises logging, prints an error as
/// `error: <message>` and maps it to exit code 1.
pub fn run(body: impl FnOnce() -> Result<(), ToolError>) -> ExitCode {
    init_tracing();
    match body() {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("error: {}", render_error(&err));
            ExitCode::from(1)
        }
    }
}

/// Reports that `binary` is not implemented yet and returns exit code 2.
pub fn not_implemented(binary: &str, what: &str) -> ExitCode {
    init_tracing();
    eprintln!("{binary}: {what}");
    ExitCode::from(EXIT_NOT_IMPLEMENTED)
}
