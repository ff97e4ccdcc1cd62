//! `omen-build`: will build an index segment from a dataset. The index
//! arrives in later work; until then the binary accepts its arguments (so
//! `--help` documents the plan) and exits with status 2.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::Parser;
use omen_format::Metric;
use omen_tools::cli;

/// Build an OmenDB index segment from a dataset file.
#[derive(Debug, Parser)]
#[command(
    name = "omen-build",
    version,
    about = "Build an OmenDB index segment from a dataset file (not implemented yet)",
    long_about = "\
Build an OmenDB index segment from a big-ann-benchmarks or TEXMEX dataset \
file.

Not implemented yet: the index builder arrives with issue 3. Until then this \
command exits with status 2. To produce datasets and ground truth today, use \
`omen data synth` and `omen data gt`; to try the pipeline, `omen demo`.

Example (planned):
  omen-build --base data/synth-1m/base.fbin --metric l2 --out data/synth-1m/index.omen"
)]
struct Args {
    /// Base vectors to index.
    #[arg(long)]
    base: Option<PathBuf>,
    /// Distance: l2, ip or cos.
    #[arg(long, default_value = "l2")]
    metric: Metric,
    /// Output segment file.
    #[arg(long)]
    out: Option<PathBuf>,
}

fn main() -> ExitCode {
    let _args = Args::parse();
    cli::not_implemented(
        "omen-build",
        "the index builder is not implemented yet; see issue 3",
    )
}
