//! `omen-serve`: will serve searches over built segments. The server
//! arrives in later work; until then the binary accepts its arguments (so
//! `--help` documents the plan) and exits with status 2.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::Parser;
use omen_tools::cli;

/// Serve k-NN searches over OmenDB index segments.
#[derive(Debug, Parser)]
#[command(
    name = "omen-serve",
    version,
    about = "Serve k-NN searches over OmenDB index segments (not implemented yet)",
    long_about = "\
Serve k-nearest-neighbour searches over segments built by omen-build, \
speaking the PostgreSQL wire protocol with pgvector's SQL.

Not implemented yet (issue 5). Until then this command exits with status 2; \
to search a segment today use `omen bench` or the library's Segment::search, \
and try `omen demo`.

Example (planned):
  omen-serve --data DIR --listen 127.0.0.1:5433"
)]
struct Args {
    /// Collection directory or segment files to serve.
    #[arg(long)]
    data: Vec<PathBuf>,
    /// Address to listen on.
    #[arg(long, default_value = "127.0.0.1:5433")]
    listen: String,
}

fn main() -> ExitCode {
    let _args = Args::parse();
    cli::not_implemented(
        "omen-serve",
        "the server is not implemented yet (issue 5); search segments with `omen bench` or the library",
    )
}
