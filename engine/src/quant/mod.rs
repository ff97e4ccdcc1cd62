//! Compact codes of vectors, kept in RAM to rank which graph nodes to read
//! from disk; the full vectors rerank at the end.
//!
//! Two quantizers sit behind one front, [`Quantizer`]:
//!
//! - [`pq`]: product quantization, `m` bytes per vector (`pq16`, `pq32`);
//! - [`rabitq`]: RaBitQ, `B` bits per padded dimension plus two f32
//!   correction factors and (with several centroids) a centroid id byte
//!   (`rabitq`, `rabitq2`, `rabitq4c1`).
//!
//! Each follows the same pipeline: `builder.rs` trains, `storage.rs`
//! encodes and (de)serialises, `query.rs` prepares a query and computes
//! code distances; [`transform`] holds the shared normalisation and
//! rotation. Inputs are f32: callers widen other element types first.
//!
//! [`build_codes`] is not a search code: it is the 8-bit copy of every
//! vector that the graph build computes its distances on.
//!
//! A code distance estimates the metric distance of `omen_format::Metric`
//! (smaller is closer): squared L2, negated inner product, or cosine
//! distance.
//!
//! # Serialised layout (version 1)
//!
//! All integers and floats are little-endian. A quantizer section is:
//!
//! ```text
//! offset  size  field
//! 0       1     kind: 1 = product quantization, 2 = RaBitQ
//! 1       1     version: 1
//! 2       1     metric: 1 = l2, 2 = ip, 3 = cos
//! ```
//!
//! then, for product quantization (kind 1):
//!
//! ```text
//! 3       1     reserved, 0
//! 4       4     dim D, 1..=16384
//! 8       4     m subspaces, 1..=D; subspace s spans components
//!               off(s)..off(s+1), off(s) = s·q + min(s, r), D = q·m + r
//! 12      4·256·D  codebook: for s in 0..m, for c in 0..256, the width(s)
//!               f32 components of centroid c of subspace s
//! ```
//!
//! and for RaBitQ (kind 2):
//!
//! ```text
//! 3       1     bits B per dimension: 1 to 8
//! 4       4     dim D, 1..=16384
//! 8       4     padded dimension D' = D rounded up to a multiple of 64
//! 12      4     centroids C, 1..=256
//! 16      4·D   mean μ of the training sample (f32)
//! ..      4·C·D centroids, row-major (f32)
//! ..      4·D·D' rotation: D columns of D' f32 (column j is R e_j)
//! ```
//!
//! A code of a product quantizer is `m` bytes (byte s = centroid index of
//! subspace s). A RaBitQ code is `D'·B/8` grid bytes (a bit stream, least
//! significant bit of byte 0 first: bit b of component j is stream bit
//! `j·B + b`, i.e. bit `(j·B + b) % 8` of byte `(j·B + b) / 8`), `f_add`
//! (f32), `f_scale` (f32)
//! and, if C > 1, the centroid id (u8); see [`rabitq`] for the estimator.
//!
//! Every value must be finite and every length exact; [`Quantizer::from_bytes`]
//! reports anything else as corruption at its file offset. Version 1 is the
//! only version; a reader refuses others.
//!
//! Invariant: the decoding code of this module never panics on any input;
//! it is compiled with `clippy::unwrap_used` and `clippy::indexing_slicing`
//! denied, and each exception states why it cannot fail.

#![cfg_attr(not(test), deny(clippy::unwrap_used, clippy::indexing_slicing))]

pub mod build_codes;
pub(crate) mod codec;
pub mod eval;
pub mod pq;
pub mod rabitq;
pub(crate) mod transform;

use std::fmt;
use std::path::Path;
use std::str::FromStr;

use omen_format::Metric;
use rayon::prelude::*;

use crate::vectors::{FlatVectors, VectorSet};
use crate::{EngineError, Result};
pub use build_codes::BuildCodes;
use codec::{Reader, Writer};
pub use pq::{PqQuery, ProductQuantizer};
pub use rabitq::{RaBitQQuery, RaBitQuantizer};

/// Largest dimension a quantizer accepts (the segment format's limit).
pub const MAX_DIM: usize = 16384;

/// The serialisation version this build writes and reads.
pub const VERSION: u8 = 1;

const KIND_PQ: u8 = 1;
const KIND_RABITQ: u8 = 2;

/// Residual centroids of `rabitq` when the name does not say.
pub const DEFAULT_RABITQ_CENTROIDS: usize = 256;

/// Which quantizer to train, with its parameters. Parsed from and printed
/// as `pq{m}` or `rabitq[{bits}][c{centroids}]`, for example `pq32`,
/// `rabitq` (1 bit, default centroids), `rabitq4c1`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum QuantizerKind {
    /// Product quantization with `m` one-byte subspaces.
    Pq { m: usize },
    /// RaBitQ with `bits` per padded dimension and residuals to the nearest
    /// of `centroids` k-means centres.
    RaBitQ { bits: u8, centroids: usize },
}

impl fmt::Display for QuantizerKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            QuantizerKind::Pq { m } => write!(f, "pq{m}"),
            QuantizerKind::RaBitQ { bits, centroids } => {
                f.write_str("rabitq")?;
                if bits != 1 {
                    write!(f, "{bits}")?;
                }
                if centroids != DEFAULT_RABITQ_CENTROIDS {
                    write!(f, "c{centroids}")?;
                }
                Ok(())
            }
        }
    }
}

impl FromStr for QuantizerKind {
    type Err = String;

    fn from_str(s: &str) -> std::result::Result<Self, String> {
        let lower = s.to_ascii_lowercase();
        let bad = || {
            format!(
                "unknown quantizer {s:?}; expected pq<m> (pq16, pq32) or rabitq[<bits>][c<centroids>] (rabitq, rabitq4, rabitq2c1)"
            )
        };
        let number = |t: &str| -> std::result::Result<usize, String> {
            if t.is_empty() || !t.bytes().all(|b| b.is_ascii_digit()) {
                return Err(bad());
            }
            t.parse().map_err(|_| bad())
        };
        if let Some(m) = lower.strip_prefix("pq") {
            let m = number(m)?;
            if m == 0 {
                return Err(bad());
            }
            return Ok(QuantizerKind::Pq { m });
        }
        if let Some(rest) = lower.strip_prefix("rabitq") {
            let (bits, centroids) = match rest.split_once('c') {
                Some((b, c)) => (b, Some(c)),
                None => (rest, None),
            };
            let bits = if bits.is_empty() { 1 } else { number(bits)? };
            let bits = u8::try_from(bits).map_err(|_| bad())?;
            if !rabitq::RABITQ_BITS.contains(&bits) {
                return Err(format!("{s:?}: RaBitQ supports 1 to 8 bits"));
            }
            let centroids = match centroids {
                Some(c) => number(c)?,
                None => DEFAULT_RABITQ_CENTROIDS,
            };
            if !(1..=256).contains(&centroids) {
                return Err(format!("{s:?}: RaBitQ supports 1 to 256 centroids"));
            }
            return Ok(QuantizerKind::RaBitQ { bits, centroids });
        }
        Err(bad())
    }
}

/// A trained quantizer of either kind.
#[derive(Debug, Clone, PartialEq)]
pub enum Quantizer {
    Pq(ProductQuantizer),
    RaBitQ(RaBitQuantizer),
}

/// A query prepared for computing distances to codes; cheap to reuse for
/// thousands of codes, which is the point of preparing it.
#[derive(Debug, Clone)]
pub enum QueryDistances {
    Pq(PqQuery),
    RaBitQ(RaBitQQuery),
}

impl Quantizer {
    /// Trains a quantizer of `kind` for `metric` on `sample` (a random
    /// subset of at most 65536 rows is used). Deterministic for a seed.
    pub fn train(
        kind: QuantizerKind,
        sample: FlatVectors<'_, f32>,
        metric: Metric,
        seed: u64,
    ) -> Result<Quantizer> {
        if sample.dim() > MAX_DIM {
            return Err(EngineError::InvalidArgument(format!(
                "dimension {} exceeds {MAX_DIM}",
                sample.dim()
            )));
        }
        if let Some(i) = sample.as_slice().iter().position(|x| !x.is_finite()) {
            return Err(EngineError::InvalidArgument(format!(
                "training vector {} holds a non-finite value",
                i / sample.dim()
            )));
        }
        Ok(match kind {
            QuantizerKind::Pq { m } => {
                Quantizer::Pq(ProductQuantizer::train(sample, m, metric, seed)?)
            }
            QuantizerKind::RaBitQ { bits, centroids } => Quantizer::RaBitQ(RaBitQuantizer::train(
                sample, bits, centroids, metric, seed,
            )?),
        })
    }

    /// The kind and parameters (for RaBitQ, the centroids actually trained).
    pub fn kind(&self) -> QuantizerKind {
        match self {
            Quantizer::Pq(p) => QuantizerKind::Pq { m: p.m() },
            Quantizer::RaBitQ(r) => QuantizerKind::RaBitQ {
                bits: r.bits(),
                centroids: r.centroid_count(),
            },
        }
    }

    /// The metric the codes estimate.
    pub fn metric(&self) -> Metric {
        match self {
            Quantizer::Pq(p) => p.metric(),
            Quantizer::RaBitQ(r) => r.metric(),
        }
    }

    /// Components per input vector.
    pub fn dim(&self) -> usize {
        match self {
            Quantizer::Pq(p) => p.dim(),
            Quantizer::RaBitQ(r) => r.dim(),
        }
    }

    /// Bytes per code.
    pub fn code_len(&self) -> usize {
        match self {
            Quantizer::Pq(p) => p.code_len(),
            Quantizer::RaBitQ(r) => r.code_len(),
        }
    }

    /// Writes the code of `v` into `out`. Panics unless `v.len() == dim()`
    /// and `out.len() == code_len()`.
    pub fn encode(&self, v: &[f32], out: &mut [u8]) {
        match self {
            Quantizer::Pq(p) => p.encode(v, out),
            Quantizer::RaBitQ(r) => r.encode(v, out),
        }
    }

    /// The codes of every row of `data`, back to back, encoded in parallel.
    /// Panics unless `data.dim() == dim()`.
    pub fn encode_all(&self, data: FlatVectors<'_, f32>) -> Vec<u8> {
        assert_eq!(data.dim(), self.dim(), "vector dimension");
        let len = self.code_len();
        let mut out = vec![0u8; data.len() * len];
        out.par_chunks_mut(len)
            .zip(data.as_slice().par_chunks(data.dim()))
            .with_min_len(256)
            .for_each(|(code, v)| self.encode(v, code));
        out
    }

    /// Prepares `q` for code distances. Panics unless `q.len() == dim()`.
    pub fn query(&self, q: &[f32]) -> QueryDistances {
        match self {
            Quantizer::Pq(p) => QueryDistances::Pq(p.query(q)),
            Quantizer::RaBitQ(r) => QueryDistances::RaBitQ(r.query(q)),
        }
    }

    /// The serialised quantizer (layout in the module documentation).
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut w = Writer::default();
        w.u8(match self {
            Quantizer::Pq(_) => KIND_PQ,
            Quantizer::RaBitQ(_) => KIND_RABITQ,
        });
        w.u8(VERSION);
        w.u8(self.metric() as u8);
        match self {
            Quantizer::Pq(p) => {
                w.u8(0);
                p.write(&mut w);
            }
            Quantizer::RaBitQ(r) => r.write(&mut w),
        }
        w.bytes
    }

    /// Decodes [`Quantizer::to_bytes`] output read from file `path` at
    /// `section_offset`. Anything but a well-formed version-1 quantizer is
    /// [`omen_format::FormatError::Corrupt`] with the file offset of the bad field.
    pub fn from_bytes(bytes: &[u8], path: &Path, section_offset: u64) -> Result<Quantizer> {
        let mut r = Reader::new(bytes, path, section_offset, "quantizer");
        let kind = r.u8()?;
        if kind != KIND_PQ && kind != KIND_RABITQ {
            return Err(r.error_at(0, format!("unknown quantizer kind {kind}")));
        }
        let version = r.u8()?;
        if version != VERSION {
            return Err(r.error_at(
                1,
                format!(
                    "quantizer version {version} is not supported (this build reads {VERSION})"
                ),
            ));
        }
        let code = r.u8()?;
        let metric = Metric::from_code(code)
            .ok_or_else(|| r.error_at(2, format!("unknown metric {code}")))?;
        let q = if kind == KIND_PQ {
            let reserved = r.u8()?;
            if reserved != 0 {
                return Err(r.error_at(3, format!("reserved byte is {reserved}, not 0")));
            }
            Quantizer::Pq(ProductQuantizer::read(&mut r, metric)?)
        } else {
            Quantizer::RaBitQ(RaBitQuantizer::read(&mut r, metric)?)
        };
        r.finish()?;
        Ok(q)
    }
}

impl QueryDistances {
    /// Bytes per code.
    pub fn code_len(&self) -> usize {
        match self {
            QueryDistances::Pq(p) => p.code_len(),
            QueryDistances::RaBitQ(r) => r.code_len(),
        }
    }

    /// The estimated distance to one code (smaller is closer).
    #[inline]
    pub fn distance(&self, code: &[u8]) -> f32 {
        match self {
            QueryDistances::Pq(p) => p.distance(code),
            QueryDistances::RaBitQ(r) => r.distance(code),
        }
    }

    /// `out[i]` = the distance to code `ids[i]` of `codes` (all codes back
    /// to back, code `i` at `i * code_len()`). Panics if the lengths of
    /// `ids` and `out` differ or an id is out of range: ids are internal.
    pub fn distances(&self, codes: &[u8], ids: &[u32], out: &mut [f32]) {
        assert_eq!(ids.len(), out.len(), "one output per id");
        let len = self.code_len();
        let code = |id: u32| {
            let start = id as usize * len;
            codes
                .get(start..start + len)
                .expect("code id beyond the code array")
        };
        match self {
            QueryDistances::Pq(p) => {
                for (o, &id) in out.iter_mut().zip(ids) {
                    *o = p.distance(code(id));
                }
            }
            QueryDistances::RaBitQ(r) => {
                for (o, &id) in out.iter_mut().zip(ids) {
                    *o = r.distance(code(id));
                }
            }
        }
    }

    /// `out[i]` = the distance to the `i`-th code of `codes`, for scanning
    /// a contiguous block. Panics unless `codes.len() == out.len() * code_len()`.
    pub fn scan(&self, codes: &[u8], out: &mut [f32]) {
        let len = self.code_len();
        assert_eq!(codes.len(), out.len() * len, "one output per code");
        match self {
            QueryDistances::Pq(p) => {
                for (o, c) in out.iter_mut().zip(codes.chunks_exact(len)) {
                    *o = p.distance(c);
                }
            }
            QueryDistances::RaBitQ(r) => {
                for (o, c) in out.iter_mut().zip(codes.chunks_exact(len)) {
                    *o = r.distance(c);
                }
            }
        }
    }
}
