//! `omen`: datasets, ground truth and the demo. All logic lives in the
//! `omen_tools` library; this only parses arguments and reports the outcome.

use std::process::ExitCode;

use clap::Parser;
use omen_tools::cli;
use omen_tools::commands::{self, Cli};

fn main() -> ExitCode {
    let args = Cli::parse();
    cli::run(|| commands::run(args))
}
