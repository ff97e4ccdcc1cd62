//! `omen debug` (hidden): helpers for tests that need a real process, such
//! as the writer that the crash tests SIGKILL.
//!
//! `omen debug crash-writer --dir D --script S` opens (or creates) the
//! collection `D` and runs the operations of the script file `S`, one per
//! line, printing `ack <line>` on stdout after each is acknowledged:
//!
//! ```text
//! i <version> <id>,<id>,...   insert rows (vector: crash_vector(id, version))
//! u <version> <id>,<id>,...   upsert rows
//! d <id>,<id>,...             delete rows
//! f                           flush (freeze and wait)
//! c                           compact until the policy is satisfied
//! ```
//!
//! With `OMEN_FAILPOINT=<name>[:n]` the writer stops at that point of the
//! engine and prints `failpoint <name>`, for the test to kill it there.

use std::path::PathBuf;

use clap::{Args, Subcommand};
use omen_engine::collection::{Collection, CollectionOptions, Schema};
use omen_engine::index::BuildOptions;
use omen_engine::rng::SplitMix64;
use omen_format::Metric;

use crate::{Result, ToolError, say};

/// Hidden debugging subcommands.
#[derive(Debug, Subcommand)]
pub enum DebugCommand {
    /// Run a script of collection writes, acknowledging each on stdout.
    CrashWriter(CrashWriterArgs),
}

/// Arguments of `omen debug crash-writer`.
#[derive(Debug, Args)]
pub struct CrashWriterArgs {
    /// The collection (created if missing, with `--dim` l2 vectors).
    #[arg(long)]
    pub dir: PathBuf,
    /// The script of operations.
    #[arg(long)]
    pub script: PathBuf,
    #[arg(long, default_value_t = 8)]
    pub dim: usize,
    /// Memtable rows before a flush.
    #[arg(long, default_value_t = 200)]
    pub memtable_rows: usize,
    /// Segments per tier before a merge.
    #[arg(long, default_value_t = 3)]
    pub fanout: usize,
}

/// The vector the crash tests write for `id` at `version`.
pub fn crash_vector(id: u64, version: u64, dim: usize) -> Vec<f32> {
    let mut rng = SplitMix64::new(id ^ version.rotate_left(32) ^ 0x5eed);
    (0..dim).map(|_| rng.uniform() as f32).collect()
}

/// Options the crash writer and its test both use.
pub fn crash_options(memtable_rows: usize, fanout: usize) -> CollectionOptions {
    CollectionOptions {
        memtable_rows,
        compaction_fanout: fanout,
        build: BuildOptions {
            max_degree: 16,
            list_size: 24,
            upper_degree: 8,
            memory_budget: 128 << 20,
            ..BuildOptions::default()
        },
        ..CollectionOptions::default()
    }
}

/// Runs `omen debug`.
pub fn run(cmd: DebugCommand) -> Result<()> {
    match cmd {
        DebugCommand::CrashWriter(args) => crash_writer(&args),
    }
}

fn parse_ids(s: &str) -> Result<Vec<u64>> {
    s.split(',')
        .filter(|t| !t.is_empty())
        .map(|t| {
            t.parse()
                .map_err(|_| ToolError::Usage(format!("bad id '{t}' in the script")))
        })
        .collect()
}

fn crash_writer(args: &CrashWriterArgs) -> Result<()> {
    let options = crash_options(args.memtable_rows, args.fanout);
    let collection = if args.dir.join("MANIFEST").exists() {
        Collection::open(&args.dir, options)?
    } else {
        Collection::create(&args.dir, Schema::new(args.dim, Metric::L2), options)?
    };
    let dim = collection.schema().dimension;
    let script =
        std::fs::read_to_string(&args.script).map_err(|e| ToolError::io(&args.script, e))?;
    for (line_no, line) in script.lines().enumerate() {
        let parts: Vec<&str> = line.split_whitespace().collect();
        match parts.as_slice() {
            ["i" | "u", version, ids] => {
                let version: u64 = version
                    .parse()
                    .map_err(|_| ToolError::Usage(format!("bad version in '{line}'")))?;
                let ids = parse_ids(ids)?;
                let vectors: Vec<f32> = ids
                    .iter()
                    .flat_map(|&id| crash_vector(id, version, dim))
                    .collect();
                if parts[0] == "i" {
                    collection.insert(&ids, &vectors, &[])?;
                } else {
                    collection.upsert(&ids, &vectors, &[])?;
                }
            }
            ["d", ids] => collection.delete(&parse_ids(ids)?)?,
            ["f"] => collection.flush()?,
            ["c"] => {
                collection.compact()?;
            }
            [] => {}
            _ => return Err(ToolError::Usage(format!("bad script line '{line}'"))),
        }
        say!("ack {line_no}");
    }
    collection.close()?;
    say!("done");
    Ok(())
}
