//! The `omen` command line: argument definitions (clap derive) and the
//! dispatch to each subcommand.
//!
//! Invariant: argument structs hold only what the user typed; validation
//! that needs files happens in the command, so `--help` never touches disk.

pub mod attach;
pub mod bench;
pub mod bench_filter;
pub mod build;
pub mod data;
pub mod debug;
pub mod demo;
pub mod ingest;
pub mod inspect;
pub mod inspect_collection;
pub mod sql;

use clap::{Parser, Subcommand};

use crate::Result;

const LONG_ABOUT: &str = "\
OmenDB's command-line tool: generate and inspect datasets, compute exact \
ground truth, and try OmenDB out.

Dataset files use the big-ann-benchmarks layout (.fbin, .f16bin, .u8bin, \
.i8bin; ground truth .ibin) or TEXMEX (.fvecs, .bvecs, .ivecs); the \
extension tells the element type.

Examples:
  omen demo
  omen data synth --n 1000000 --dim 128 --queries 10000 --out data/synth-1m
  omen data gt --base data/synth-1m/base.fbin --queries data/synth-1m/query.fbin \\
      --k 100 --metric l2 --out data/synth-1m/gt.ibin
  omen data info data/synth-1m/base.fbin
  omen-build --input data/synth-1m/base.fbin --metric l2 --out data/synth-1m/index.omen
  omen bench --segment data/synth-1m/index.omen --queries data/synth-1m/query.fbin \\
      --gt data/synth-1m/gt.ibin --k 10 --sweep ef=10,20,40,80
  omen inspect --verify data/synth-1m/index.omen
  omen sql data/synth-1m -c \"SELECT count(*) FROM index\"

Set RUST_LOG=debug for diagnostics. Exit status: 0 success, 1 error, 2 usage.";

/// The `omen` command line.
#[derive(Debug, Parser)]
#[command(
    name = "omen",
    version,
    about = "OmenDB: datasets, ground truth and demos for disk-first vector search",
    long_about = LONG_ABOUT
)]
pub struct Cli {
    /// Hide progress bars (they are also hidden when stderr is not a terminal).
    #[arg(long, short, global = true)]
    pub quiet: bool,

    #[command(subcommand)]
    pub command: Command,
}

/// Top-level subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Generate, inspect and score datasets.
    #[command(subcommand)]
    Data(data::DataCommand),
    /// Search a segment with a sweep of settings; print recall, QPS, latency, I/O.
    #[command(long_about = bench::LONG_ABOUT)]
    Bench(bench::BenchArgs),
    /// Describe a segment file's superblock, sections and index parameters.
    #[command(long_about = inspect::LONG_ABOUT)]
    Inspect(inspect::InspectArgs),
    /// Add attribute columns to a built segment (for filtered search).
    #[command(long_about = attach::LONG_ABOUT)]
    Attach(attach::AttachArgs),
    /// Generate a small dataset, compute its ground truth and summarise it.
    #[command(long_about = demo::LONG_ABOUT)]
    Demo(demo::DemoArgs),
    /// An interactive SQL shell on a data directory (pgvector SQL, like psql).
    #[command(long_about = sql::LONG_ABOUT)]
    Sql(sql::SqlArgs),
    /// Helpers for tests (crash writer); not a stable interface.
    #[command(subcommand, hide = true)]
    Debug(debug::DebugCommand),
}

/// Runs the parsed command line.
pub fn run(cli: Cli) -> Result<()> {
    match cli.command {
        Command::Data(cmd) => data::run(cmd, cli.quiet),
        Command::Demo(args) => demo::run(&args, cli.quiet),
        Command::Bench(args) => bench::run(&args),
        Command::Inspect(args) => inspect::run(&args),
        Command::Debug(cmd) => debug::run(cmd),
        Command::Attach(args) => attach::run(&args),
        Command::Sql(args) => sql::run(&args),
    }
}
