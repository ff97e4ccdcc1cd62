//! Section kinds: what a section holds. The codes are part of the format.

use std::fmt;

/// The kind of a section, as stored in its directory entry.
///
/// It is a plain code rather than a closed enum so that a reader can list
/// (and, if they are optional, skip) kinds written by newer versions.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct SectionKind(pub u32);

impl SectionKind {
    /// Key-value metadata about how the segment was made (SPEC.md §2.5.1).
    pub const METADATA: SectionKind = SectionKind(1);
    /// Full-precision vectors in row order, packed into checksummed pages
    /// (SPEC.md §2.5.2).
    pub const VECTORS: SectionKind = SectionKind(2);

    /// The index's fixed parameters: entry node, degree, page packing
    /// (SPEC.md §2.5.3).
    pub const INDEX_HEADER: SectionKind = SectionKind(3);
    /// Base-graph node records, several per checksummed page (SPEC.md §2.5.4).
    pub const NODES: SectionKind = SectionKind(4);
    /// One quantized code per node, in node order, loaded into RAM
    /// (SPEC.md §2.5.5).
    pub const CODES: SectionKind = SectionKind(5);
    /// The quantizer that decodes the codes (SPEC.md §2.5.6).
    pub const QUANTIZER: SectionKind = SectionKind(6);
    /// The upper HNSW layers, loaded into RAM (SPEC.md §2.5.7).
    pub const UPPER_LAYERS: SectionKind = SectionKind(7);

    /// Scalar attribute columns in node order, with per-column statistics
    /// (SPEC.md §2.6). Optional: readers that do not know it skip it.
    pub const ATTRIBUTES: SectionKind = SectionKind(8);

    /// Every kind this build knows.
    pub const KNOWN: [SectionKind; 8] = [
        SectionKind::METADATA,
        SectionKind::VECTORS,
        SectionKind::INDEX_HEADER,
        SectionKind::NODES,
        SectionKind::CODES,
        SectionKind::QUANTIZER,
        SectionKind::UPPER_LAYERS,
        SectionKind::ATTRIBUTES,
    ];

    /// Whether this build knows how to read the kind.
    pub fn is_known(self) -> bool {
        Self::KNOWN.contains(&self)
    }

    /// A human-readable name for messages and `omen inspect`.
    pub fn name(self) -> &'static str {
        match self {
            SectionKind::METADATA => "metadata",
            SectionKind::VECTORS => "vectors",
            SectionKind::INDEX_HEADER => "index header",
            SectionKind::NODES => "nodes",
            SectionKind::CODES => "codes",
            SectionKind::QUANTIZER => "quantizer",
            SectionKind::UPPER_LAYERS => "upper layers",
            SectionKind::ATTRIBUTES => "attributes",
            _ => "unknown",
        }
    }
}

impl fmt::Debug for SectionKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}({})", self.name(), self.0)
    }
}

impl fmt::Display for SectionKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} section (kind {})", self.name(), self.0)
    }
}
