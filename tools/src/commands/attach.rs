//! `omen attach`: adds attribute columns to a built segment without
//! rebuilding its index.

use std::path::PathBuf;
use std::time::Instant;

use clap::Args;
use omen_engine::index::attach_attributes;
use omen_format::dataset::side_file::read_side_file;

use super::build::{AttrTypes, parse_attr_types};
use crate::{Result, say};

/// `--help` text of `omen attach`.
pub const LONG_ABOUT: &str = "\
Write a copy of a segment with attribute columns added, for filtered search. \
Every section of the input is copied as is (the index is not rebuilt); the \
side file's rows, one per vector in id order, are stored in the segment's \
node order. The side file is .csv (a header row names the columns) or .jsonl; \
types are inferred unless --attr-types gives them. The output appears only \
when complete and fsynced.

Example:
  omen attach --segment d/index.omen --attributes d/attrs.csv --out d/index-attrs.omen";

/// Arguments of `omen attach`.
#[derive(Debug, Args)]
pub struct AttachArgs {
    /// Segment to copy (it must not have attributes yet).
    #[arg(long)]
    pub segment: PathBuf,
    /// Attribute side file (.csv or .jsonl), one row per vector in id order.
    #[arg(long, value_name = "FILE")]
    pub attributes: PathBuf,
    /// Types of side-file columns, overriding inference: name:type,...
    #[arg(long, value_name = "NAME:TYPE,...", value_parser = parse_attr_types)]
    pub attr_types: Option<AttrTypes>,
    /// Output segment.
    #[arg(long)]
    pub out: PathBuf,
}

/// Runs `omen attach`.
pub fn run(args: &AttachArgs) -> Result<()> {
    let started = Instant::now();
    let declared = args.attr_types.clone().unwrap_or_default().0;
    let columns = read_side_file(&args.attributes, &declared)?;
    let out = attach_attributes(&args.segment, &columns, &args.out)?;
    let names: Vec<String> = columns
        .schema()
        .iter()
        .map(|c| format!("{} {}", c.name, c.ty))
        .collect();
    say!(
        "wrote {} with {} attribute rows ({}) in {:.1} s",
        out.display(),
        columns.len(),
        names.join(", "),
        started.elapsed().as_secs_f64()
    );
    Ok(())
}
