//! The manifest (SPEC.md §8.2): the one file that says which segments,
//! tombstone generations and WAL files make up a collection.
//!
//! It is replaced atomically (temporary file, fsync, rename, directory
//! fsync), so a reader sees either the old or the new manifest, whole; the
//! trailing checksum catches anything else.

use std::path::Path;

use crate::atomic::AtomicFile;
use crate::attr::{ColumnSchema, ColumnType};
use crate::checksum::Checksum;
use crate::collection::reader::{Cursor, put_short_str};
use crate::{ElementType, FormatError, Metric, Result};

/// The first 8 bytes of a manifest.
pub const MANIFEST_MAGIC: [u8; 8] = *b"OMENMAN1";
/// The manifest layout version.
pub const MANIFEST_VERSION: u32 = 1;
/// Bytes before the body: magic, version, reserved, body length.
pub const MANIFEST_HEADER_LEN: usize = 24;
/// Bytes of one segment record in the body.
pub const SEGMENT_RECORD_LEN: usize = 48;

/// The collection's schema as the manifest stores it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SchemaRecord {
    pub dimension: u32,
    pub element_type: ElementType,
    pub metric: Metric,
    /// The primary key column's name (its values are u64).
    pub primary_key: String,
    pub columns: Vec<ColumnSchema>,
}

/// One live segment.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SegmentRecord {
    /// Names `seg-<id>.omen` and `seg-<id>.ids`.
    pub id: u64,
    /// Rows in the segment, live or tombstoned.
    pub vectors: u64,
    /// Size tier for compaction (0 = a flushed memtable).
    pub tier: u32,
    /// Generation of `seg-<id>.tomb-<generation>`; 0: no tombstones.
    pub tombstone_generation: u64,
    /// Rows that generation hides.
    pub tombstones: u64,
    /// Highest log sequence number whose writes the segment holds.
    pub max_lsn: u64,
}

/// The whole manifest.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Manifest {
    /// Increases by one with every replacement.
    pub generation: u64,
    /// The id the next new segment gets.
    pub next_segment_id: u64,
    /// Every record with a sequence number below this is in the segments.
    pub flushed_lsn: u64,
    /// The first WAL file recovery must replay; older ones may be deleted.
    pub wal_checkpoint: u64,
    /// Compactions completed over the collection's life.
    pub compactions: u64,
    pub schema: SchemaRecord,
    /// Oldest first.
    pub segments: Vec<SegmentRecord>,
}

impl Manifest {
    /// Serialises the manifest.
    pub fn encode(&self) -> Vec<u8> {
        let mut body = Vec::new();
        for x in [
            self.generation,
            self.next_segment_id,
            self.flushed_lsn,
            self.wal_checkpoint,
            self.compactions,
        ] {
            body.extend_from_slice(&x.to_le_bytes());
        }
        let s = &self.schema;
        body.extend_from_slice(&s.dimension.to_le_bytes());
        body.push(s.element_type as u8);
        body.push(s.metric as u8);
        put_short_str(&mut body, &s.primary_key);
        body.extend_from_slice(&(s.columns.len() as u16).to_le_bytes());
        for c in &s.columns {
            body.push(c.ty as u8);
            body.push(u8::from(c.nullable));
            put_short_str(&mut body, &c.name);
        }
        body.extend_from_slice(&(self.segments.len() as u32).to_le_bytes());
        for seg in &self.segments {
            body.extend_from_slice(&seg.id.to_le_bytes());
            body.extend_from_slice(&seg.vectors.to_le_bytes());
            body.extend_from_slice(&seg.tier.to_le_bytes());
            body.extend_from_slice(&0u32.to_le_bytes());
            body.extend_from_slice(&seg.tombstone_generation.to_le_bytes());
            body.extend_from_slice(&seg.tombstones.to_le_bytes());
            body.extend_from_slice(&seg.max_lsn.to_le_bytes());
        }
        let mut out = Vec::with_capacity(MANIFEST_HEADER_LEN + body.len() + 8);
        out.extend_from_slice(&MANIFEST_MAGIC);
        out.extend_from_slice(&MANIFEST_VERSION.to_le_bytes());
        out.extend_from_slice(&0u32.to_le_bytes());
        out.extend_from_slice(&(body.len() as u64).to_le_bytes());
        out.extend_from_slice(&body);
        let sum = Checksum::of(&out).0;
        out.extend_from_slice(&sum.to_le_bytes());
        out
    }

    /// Parses a manifest read from `path`.
    pub fn decode(path: &Path, bytes: &[u8]) -> Result<Manifest> {
        let corrupt = |offset: usize, reason: String| FormatError::Corrupt {
            path: path.to_path_buf(),
            what: "manifest".into(),
            offset: offset as u64,
            reason,
        };
        let truncated = |needed: usize| FormatError::Truncated {
            path: path.to_path_buf(),
            what: "manifest".into(),
            needed: needed as u64,
            actual: bytes.len() as u64,
        };
        let mut c = Cursor::new(bytes);
        let magic = c.take(8).ok_or_else(|| truncated(MANIFEST_HEADER_LEN))?;
        if magic != MANIFEST_MAGIC {
            return Err(corrupt(0, "not an OmenDB manifest".into()));
        }
        let version = c.u32().ok_or_else(|| truncated(MANIFEST_HEADER_LEN))?;
        if version != MANIFEST_VERSION {
            return Err(FormatError::IncompatibleVersion {
                path: path.to_path_buf(),
                found_major: version.min(u32::from(u16::MAX)) as u16,
                found_minor: 0,
                supported: MANIFEST_VERSION.to_string(),
            });
        }
        let _reserved = c.u32();
        let body_len = c.u64().ok_or_else(|| truncated(MANIFEST_HEADER_LEN))?;
        let total = usize::try_from(body_len)
            .ok()
            .and_then(|b| b.checked_add(MANIFEST_HEADER_LEN + 8))
            .ok_or_else(|| corrupt(16, format!("body length {body_len} is impossible")))?;
        if bytes.len() < total {
            return Err(truncated(total));
        }
        if bytes.len() > total {
            return Err(corrupt(
                total,
                format!("{} bytes after the checksum", bytes.len() - total),
            ));
        }
        let covered = bytes.get(..total - 8).unwrap_or_default();
        let stored = bytes
            .get(total - 8..)
            .and_then(|b| b.try_into().ok())
            .map(u64::from_le_bytes)
            .unwrap_or(0);
        Checksum::of(covered).check(stored, path, "manifest", 0, covered.len() as u64)?;

        let body = bytes
            .get(MANIFEST_HEADER_LEN..total - 8)
            .unwrap_or_default();
        let mut c = Cursor::new(body);
        let at = |c: &Cursor<'_>| MANIFEST_HEADER_LEN + c.position();
        let short = |c: &Cursor<'_>| corrupt(at(c), "the body ends early".into());
        let mut fixed = [0u64; 5];
        for f in &mut fixed {
            *f = c.u64().ok_or_else(|| short(&c))?;
        }
        let [
            generation,
            next_segment_id,
            flushed_lsn,
            wal_checkpoint,
            compactions,
        ] = fixed;
        let dimension = c.u32().ok_or_else(|| short(&c))?;
        if dimension == 0 {
            return Err(corrupt(at(&c) - 4, "dimension 0".into()));
        }
        let code = c.u8().ok_or_else(|| short(&c))?;
        let element_type = ElementType::from_code(code)
            .ok_or_else(|| corrupt(at(&c) - 1, format!("unknown element type {code}")))?;
        let code = c.u8().ok_or_else(|| short(&c))?;
        let metric = Metric::from_code(code)
            .ok_or_else(|| corrupt(at(&c) - 1, format!("unknown metric {code}")))?;
        let name = |c: &mut Cursor<'_>| -> Result<String> {
            let start = at(c);
            match c.short_str() {
                None => Err(short(c)),
                Some(Err(e)) => Err(corrupt(start, format!("name is not UTF-8: {e}"))),
                Some(Ok(s)) => Ok(s),
            }
        };
        let primary_key = name(&mut c)?;
        let ncols = c.u16().ok_or_else(|| short(&c))?;
        let mut columns = Vec::new();
        for _ in 0..ncols {
            let code = c.u8().ok_or_else(|| short(&c))?;
            let ty = ColumnType::from_code(code)
                .ok_or_else(|| corrupt(at(&c) - 1, format!("unknown column type {code}")))?;
            let nullable = match c.u8().ok_or_else(|| short(&c))? {
                0 => false,
                1 => true,
                b => return Err(corrupt(at(&c) - 1, format!("nullable flag {b}"))),
            };
            columns.push(ColumnSchema {
                name: name(&mut c)?,
                ty,
                nullable,
            });
        }
        let count = c.u32().ok_or_else(|| short(&c))? as usize;
        if count.saturating_mul(SEGMENT_RECORD_LEN) != c.remaining() {
            return Err(corrupt(
                at(&c) - 4,
                format!(
                    "{count} segment records need {} bytes, {} remain",
                    count.saturating_mul(SEGMENT_RECORD_LEN),
                    c.remaining()
                ),
            ));
        }
        let mut segments: Vec<SegmentRecord> = Vec::with_capacity(count);
        for _ in 0..count {
            let start = at(&c);
            let id = c.u64().unwrap_or(0);
            let vectors = c.u64().unwrap_or(0);
            let tier = c.u32().unwrap_or(0);
            let _reserved = c.u32();
            let tombstone_generation = c.u64().unwrap_or(0);
            let tombstones = c.u64().unwrap_or(0);
            let max_lsn = c.u64().unwrap_or(0);
            if id >= next_segment_id || segments.iter().any(|s| s.id == id) {
                return Err(corrupt(
                    start,
                    format!("segment id {id} is repeated or not below {next_segment_id}"),
                ));
            }
            if tombstones > vectors || (tombstone_generation == 0) != (tombstones == 0) {
                return Err(corrupt(
                    start,
                    format!(
                        "segment {id}: {tombstones} tombstones (generation \
                         {tombstone_generation}) for {vectors} rows"
                    ),
                ));
            }
            segments.push(SegmentRecord {
                id,
                vectors,
                tier,
                tombstone_generation,
                tombstones,
                max_lsn,
            });
        }
        Ok(Manifest {
            generation,
            next_segment_id,
            flushed_lsn,
            wal_checkpoint,
            compactions,
            schema: SchemaRecord {
                dimension,
                element_type,
                metric,
                primary_key,
                columns,
            },
            segments,
        })
    }

    /// Replaces `path` with this manifest, durably (AtomicFile).
    pub fn write(&self, path: &Path) -> Result<()> {
        let mut file = AtomicFile::create(path)?;
        file.write(&self.encode())?;
        file.commit(&[])?;
        Ok(())
    }

    /// Reads and validates the manifest at `path`.
    pub fn read(path: &Path) -> Result<Manifest> {
        let bytes = fs_err::read(path).map_err(|e| FormatError::io(path, e))?;
        Manifest::decode(path, &bytes)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn manifest() -> impl Strategy<Value = Manifest> {
        let column =
            ("[a-z_]{1,8}", 1u8..=5, any::<bool>()).prop_map(|(name, ty, nullable)| ColumnSchema {
                name,
                ty: ColumnType::from_code(ty).unwrap(),
                nullable,
            });
        let segment = (any::<u64>(), 0u32..5, any::<u64>(), any::<u64>()).prop_map(
            |(vectors, tier, tombs, lsn)| {
                let tombstones = if vectors == 0 { 0 } else { tombs % vectors };
                SegmentRecord {
                    id: 0,
                    vectors,
                    tier,
                    tombstone_generation: u64::from(tombstones > 0) * 7,
                    tombstones,
                    max_lsn: lsn,
                }
            },
        );
        (
            any::<[u64; 4]>(),
            1u32..4096,
            proptest::collection::vec(column, 0..5),
            proptest::collection::vec(segment, 0..6),
        )
            .prop_map(|(f, dimension, columns, mut segments)| {
                for (i, s) in segments.iter_mut().enumerate() {
                    s.id = i as u64 * 2;
                }
                Manifest {
                    generation: f[0],
                    next_segment_id: segments.len() as u64 * 2 + 1,
                    flushed_lsn: f[1],
                    wal_checkpoint: f[2],
                    compactions: f[3],
                    schema: SchemaRecord {
                        dimension,
                        element_type: ElementType::F32,
                        metric: Metric::L2,
                        primary_key: "id".into(),
                        columns,
                    },
                    segments,
                }
            })
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(128))]

        #[test]
        fn manifests_round_trip(m in manifest()) {
            let bytes = m.encode();
            prop_assert_eq!(Manifest::decode(Path::new("M"), &bytes).unwrap(), m);
        }

        #[test]
        fn any_damage_is_an_error(m in manifest(), at in any::<prop::sample::Index>(), bit in 0u8..8, cut in any::<bool>()) {
            let mut bytes = m.encode();
            let at = at.index(bytes.len());
            if cut { bytes.truncate(at) } else { bytes[at] ^= 1 << bit }
            let err = Manifest::decode(Path::new("/x/MANIFEST"), &bytes).unwrap_err();
            let typed = err.is_corruption() || matches!(err, FormatError::IncompatibleVersion { .. });
            prop_assert!(typed, "{}", err);
            prop_assert!(err.to_string().contains("/x/MANIFEST"));
        }
    }

    #[test]
    fn write_then_read() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("MANIFEST");
        let m = Manifest {
            generation: 1,
            next_segment_id: 1,
            flushed_lsn: 0,
            wal_checkpoint: 1,
            compactions: 0,
            schema: SchemaRecord {
                dimension: 8,
                element_type: ElementType::F32,
                metric: Metric::Cosine,
                primary_key: "id".into(),
                columns: vec![],
            },
            segments: vec![],
        };
        m.write(&path).unwrap();
        assert_eq!(Manifest::read(&path).unwrap(), m);
        assert!(!dir.path().join("MANIFEST.tmp").exists());
    }
}
