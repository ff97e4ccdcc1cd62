//! `omen inspect`: describe a segment file: its superblock, every section
//! and, for index segments, the parameters a search will use.
//!
//! Invariant: inspect only reads; with `--verify` it checks every checksum
//! in the file, including every node page, and fails (exit 1) on the first
//! mismatch, naming the section and the offset.

use std::path::PathBuf;

use clap::Args;
use indicatif::HumanBytes;
use omen_format::segment::layout::IndexHeader;
use omen_format::segment::{OpenOptions, SectionKind, SegmentFile, Verify};
use zerocopy::FromBytes;

use crate::{Result, say};

/// `--help` text of `omen inspect`.
pub const LONG_ABOUT: &str = "\
Describe an OmenDB segment file: format version, UUID, creation time, element \
type, dimension, metric, vector count, and each section's kind, flags, offset, \
length and checksum, then the index parameters and metadata.

The file's structure and the checksums of its RAM-loaded sections are always \
verified. --verify also reads every page of the paged sections (the node \
blocks), which reads the whole file.

Examples:
  omen inspect data/synth-1m/index.omen
  omen inspect --verify data/synth-1m/index.omen
  omen inspect data/my-collection        (a collection directory: segments, \
tombstones, WAL files, compaction state)";

/// Arguments of `omen inspect`.
#[derive(Debug, Args)]
pub struct InspectArgs {
    /// The segment file, or a collection directory.
    pub path: PathBuf,
    /// Verify every checksum in the file, node pages included.
    #[arg(long)]
    pub verify: bool,
}

/// Runs `omen inspect`.
pub fn run(args: &InspectArgs) -> Result<()> {
    if args.path.is_dir() {
        return super::inspect_collection::run(&args.path);
    }
    let verify = if args.verify {
        Verify::Full
    } else {
        Verify::Metadata
    };
    let file = SegmentFile::open(&args.path, OpenOptions { verify })?;
    let info = file.info();
    say!("{}", args.path.display());
    say!(
        "  format        v{}.{}",
        info.version_major,
        info.version_minor
    );
    say!("  uuid          {}", info.uuid_string());
    say!(
        "  created       {} µs since the Unix epoch",
        info.created_unix_micros
    );
    say!(
        "  vectors       {} × {} {} ({} distance)",
        info.vector_count,
        info.dimension,
        info.element_type,
        info.metric
    );
    say!(
        "  file          {} ({} bytes)",
        HumanBytes(info.file_len),
        info.file_len
    );
    say!(
        "  sections      {:>3} {:<14} {:<18} {:>12} {:>12} {:>12} {:>18}",
        "#",
        "kind",
        "flags",
        "offset",
        "stored",
        "items",
        "checksum"
    );
    for s in file.sections() {
        let mut flags = Vec::new();
        if s.is_paged() {
            flags.push("paged");
        }
        if s.is_lz4() {
            flags.push("lz4");
        }
        if s.flags & omen_format::segment::layout::SECTION_FLAG_REQUIRED != 0 {
            flags.push("required");
        }
        say!(
            "                {:>3} {:<14} {:<18} {:>12} {:>12} {:>12} {:#018x}",
            s.index,
            s.kind.name(),
            flags.join(","),
            s.offset,
            s.stored_len,
            s.items,
            s.checksum
        );
    }
    if let Some(section) = file.section(SectionKind::INDEX_HEADER) {
        let bytes = file.read_section(section)?;
        if let Ok(h) = IndexHeader::read_from_bytes(&bytes) {
            say!(
                "  index         R = {}, {} nodes per page, {}-byte records, {}-byte codes, entry {}, built with L = {}, alpha = {}",
                h.max_degree.get(),
                h.nodes_per_page.get(),
                h.record_len.get(),
                h.code_len.get(),
                h.base_entry.get(),
                h.build_list_size.get(),
                f32::from_bits(h.build_alpha_bits.get())
            );
        }
    }
    for (k, v) in file.metadata()? {
        say!("  meta          {k} = {v}");
    }
    say!(
        "  verified      {}",
        if args.verify {
            "every checksum, node pages included"
        } else {
            "structure and RAM-loaded sections (use --verify for node pages)"
        }
    );
    Ok(())
}
