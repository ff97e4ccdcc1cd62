//! The node record: one base-graph node as stored in the nodes section, so
//! that one page read brings a node's full vector and its neighbour list.
//!
//! ```text
//! 0        8      10     12                      12+V'              12+V'+4R
//! +--------+------+------+-----------------------+------------------+
//! | ext id | deg  | zero | vector (V bytes, pad  | neighbours       |
//! | u64    | u16  | u16  | to V' = align4(V))    | u32 x R          |
//! +--------+------+------+-----------------------+------------------+
//! ```
//!
//! Records are rows of a paged section (SPEC.md §2.4, §2.5.3). Offsets are
//! multiples of 4 within a page, so vectors of every element type can be
//! viewed in place. Decoding validates the degree and every neighbour id, so
//! a corrupt record is an error, never an out-of-bounds index.

use omen_format::ElementType;
use omen_format::segment::layout::PAGE_PAYLOAD;

/// Byte offset of the vector within a record.
pub const VECTOR_OFFSET: usize = 12;

/// The fixed shape of every record in one segment.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NodeLayout {
    /// Bytes of one vector, unpadded.
    pub vector_len: usize,
    /// Maximum degree R.
    pub max_degree: usize,
}

/// A decoded view of one record.
#[derive(Debug, Clone, Copy)]
pub struct NodeView<'a> {
    /// The caller's id for the vector (its row in the input).
    pub external_id: u64,
    /// The vector's bytes, `vector_len` long.
    pub vector: &'a [u8],
    neighbours: &'a [u8],
}

impl NodeView<'_> {
    /// Number of neighbours.
    pub fn degree(&self) -> usize {
        self.neighbours.len() / 4
    }

    /// The neighbours' internal ids.
    pub fn neighbours(&self) -> impl Iterator<Item = u32> + '_ {
        self.neighbours
            .chunks_exact(4)
            .map(|c| u32::from_le_bytes([c[0], c[1], c[2], c[3]]))
    }
}

/// Why a record failed to decode; the caller adds the file and offset.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NodeError(pub String);

impl NodeLayout {
    /// The layout for `dimension` components of `element_type`, degree `r`.
    pub fn new(element_type: ElementType, dimension: usize, max_degree: usize) -> Self {
        NodeLayout {
            vector_len: dimension * element_type.size(),
            max_degree,
        }
    }

    /// Bytes of one record.
    pub fn record_len(&self) -> usize {
        self.neighbours_offset() + 4 * self.max_degree
    }

    /// Byte offset of the neighbour slots within a record: the header and
    /// the vector padded to a multiple of 4.
    fn neighbours_offset(&self) -> usize {
        VECTOR_OFFSET + self.vector_len.next_multiple_of(4)
    }

    /// Records that share one page: at least one, since a record longer than
    /// a page's payload spans pages of its own.
    pub fn nodes_per_page(&self) -> usize {
        (PAGE_PAYLOAD / self.record_len()).max(1)
    }

    /// The largest degree whose records still fit [`Self::nodes_per_page`]
    /// to a page, or `None` when a record spans pages. Up to that degree a
    /// denser graph costs no disk, no RAM and no extra reads, only build
    /// time: at 384-d f32, R = 64 leaves room for R = 124 in the same two
    /// records per page, and R = 96 cut the reads at recall@10 0.95 by a
    /// quarter (benches/RESULTS.md, session 12).
    pub fn widest_degree_on_same_pages(&self) -> Option<usize> {
        if self.record_len() > PAGE_PAYLOAD {
            return None;
        }
        let share = PAGE_PAYLOAD / self.nodes_per_page();
        Some((share - self.neighbours_offset()) / 4)
    }

    /// Recovers the layout from a record length stored in the directory.
    /// `R = 0` (no neighbour slots) is a flat index's layout; the segment
    /// checks that the index header says so.
    pub fn from_record_len(vector_len: usize, record_len: usize) -> Option<Self> {
        let fixed = VECTOR_OFFSET + vector_len.next_multiple_of(4);
        let rest = record_len.checked_sub(fixed)?;
        (rest % 4 == 0).then_some(NodeLayout {
            vector_len,
            max_degree: rest / 4,
        })
    }

    /// Writes a record into `out` (`record_len()` bytes).
    pub fn encode(&self, external_id: u64, vector: &[u8], neighbours: &[u32], out: &mut [u8]) {
        assert_eq!(vector.len(), self.vector_len, "vector length");
        assert!(neighbours.len() <= self.max_degree, "degree above R");
        assert_eq!(out.len(), self.record_len(), "record buffer length");
        out.fill(0);
        out[0..8].copy_from_slice(&external_id.to_le_bytes());
        out[8..10].copy_from_slice(&(neighbours.len() as u16).to_le_bytes());
        out[VECTOR_OFFSET..VECTOR_OFFSET + vector.len()].copy_from_slice(vector);
        let at = self.neighbours_offset();
        for (slot, n) in out[at..].chunks_exact_mut(4).zip(neighbours) {
            slot.copy_from_slice(&n.to_le_bytes());
        }
    }

    /// Decodes a record, checking that its degree is at most R and that
    /// every neighbour is below `node_count`.
    pub fn decode<'a>(&self, record: &'a [u8], node_count: u64) -> Result<NodeView<'a>, NodeError> {
        let bad = |why: String| NodeError(why);
        if record.len() != self.record_len() {
            return Err(bad(format!(
                "record of {} bytes, expected {}",
                record.len(),
                self.record_len()
            )));
        }
        let external_id = u64::from_le_bytes(record[0..8].try_into().expect("8 bytes"));
        let degree = usize::from(u16::from_le_bytes([record[8], record[9]]));
        if degree > self.max_degree {
            return Err(bad(format!(
                "degree {degree} exceeds R = {}",
                self.max_degree
            )));
        }
        if record[10..12] != [0, 0] {
            return Err(bad("reserved bytes are not zero".into()));
        }
        let vector = &record[VECTOR_OFFSET..VECTOR_OFFSET + self.vector_len];
        let at = self.neighbours_offset();
        let neighbours = &record[at..at + 4 * degree];
        let view = NodeView {
            external_id,
            vector,
            neighbours,
        };
        if let Some(n) = view.neighbours().find(|&n| u64::from(n) >= node_count) {
            return Err(bad(format!(
                "neighbour {n} is not below the node count {node_count}"
            )));
        }
        Ok(view)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_rejects_corrupt_records() {
        let layout = NodeLayout::new(ElementType::U8, 5, 3);
        assert_eq!(layout.record_len(), 12 + 8 + 12);
        assert_eq!(
            NodeLayout::from_record_len(5, layout.record_len()),
            Some(layout)
        );
        let mut rec = vec![0u8; layout.record_len()];
        layout.encode(77, &[1, 2, 3, 4, 5], &[9, 4], &mut rec);
        let view = layout.decode(&rec, 10).unwrap();
        assert_eq!(view.external_id, 77);
        assert_eq!(view.vector, &[1, 2, 3, 4, 5]);
        assert_eq!(view.neighbours().collect::<Vec<_>>(), [9, 4]);
        assert!(layout.decode(&rec, 9).is_err(), "neighbour 9 of 9 nodes");
        rec[8] = 4;
        assert!(layout.decode(&rec, 10).is_err(), "degree above R");
    }

    #[test]
    fn widest_degree_keeps_the_records_per_page() {
        for (element, dim, r) in [
            (ElementType::F32, 128, 64),
            (ElementType::F32, 384, 64),
            (ElementType::F32, 384, 96),
            (ElementType::U8, 100, 32),
            (ElementType::F16, 5, 1),
        ] {
            let layout = NodeLayout::new(element, dim, r);
            let widest = layout.widest_degree_on_same_pages().unwrap();
            assert!(widest >= r, "{dim}-d R = {r}: widest {widest}");
            let at = |max_degree| NodeLayout {
                max_degree,
                ..layout
            };
            assert_eq!(at(widest).nodes_per_page(), layout.nodes_per_page());
            assert!(at(widest + 1).nodes_per_page() < layout.nodes_per_page());
        }
        assert_eq!(
            NodeLayout::new(ElementType::F32, 384, 64).widest_degree_on_same_pages(),
            Some(124)
        );
        let spans_pages = NodeLayout::new(ElementType::F32, 1536, 64);
        assert_eq!(spans_pages.nodes_per_page(), 1);
        assert_eq!(spans_pages.widest_degree_on_same_pages(), None);
    }
}
