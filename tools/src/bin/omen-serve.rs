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
Serve k-nearest-neighbour searches over segments built by omen-build.

Not implemented yet: the server needs the index builder of issue 3 and \
arrives after it. Until then this command exits with status 2; try \
`omen demo` instead.

Example (planned):
  omen-serve --segment data/synth-1m/index.omen --listen 127.0.0.1:7700"
)]
struct Args {
    /// Segment files to serve.
    #[arg(long)]
    segment: Vec<PathBuf>,
    /// Address to listen on.
    #[arg(long, default_value = "127.0.0.1:7700")]
    listen: String,
}

fn main() -> ExitCode {
    let _args = Args::parse();
    cli::not_implemented(
        "omen-serve",
        "the server is not implemented yet; it needs the index builder (issue 3)",
    )
}
