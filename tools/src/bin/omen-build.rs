//! `omen-build`: builds an index segment from a dataset file. All logic
//! lives in `omen_tools::commands::build`.

use std::process::ExitCode;

use clap::Parser;
use omen_tools::cli;
use omen_tools::commands::build::{BuildArgs, LONG_ABOUT};

/// Build an OmenDB index segment from a dataset file.
#[derive(Debug, Parser)]
#[command(
    name = "omen-build",
    version,
    about = "Build an OmenDB index segment from a vector file",
    long_about = LONG_ABOUT
)]
struct Cli {
    /// Hide progress bars (they are also hidden when stderr is not a terminal).
    #[arg(long, short)]
    quiet: bool,
    #[command(flatten)]
    args: BuildArgs,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    cli::run(|| omen_tools::commands::build::run(&cli.args, cli.quiet).map(drop))
}
