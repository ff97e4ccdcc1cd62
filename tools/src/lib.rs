//! OmenDB's command-line tools as a library, so that the binaries in
//! `src/bin/` stay thin and the commands can be tested in-process.
//!
//! - [`cli`]: process setup shared by every binary (logging, error
//!   reporting, exit codes);
//! - [`progress`]: progress bars that vanish when nobody is watching;
//! - [`commands`]: the `omen` subcommands.
//!
//! Invariant: no command panics on bad input; every failure becomes a
//! [`ToolError`] that `cli::run` prints as `error: <message>` with its full
//! cause chain and turns into exit code 1.

pub mod cli;
pub mod commands;
pub mod error;
pub mod plot;
pub mod progress;

pub use error::{Result, ToolError};

/// Prints a line to stdout, ignoring failures: a closed pipe (`omen ... |
/// head`) must not turn a finished command into a panic.
#[macro_export]
macro_rules! say {
    ($($arg:tt)*) => {{
        use ::std::io::Write as _;
        let _ = ::std::writeln!(::std::io::stdout().lock(), $($arg)*);
    }};
}
