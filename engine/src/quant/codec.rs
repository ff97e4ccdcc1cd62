//! Little-endian writing and strict reading of quantizer sections.
//!
//! Invariant: [`Reader`] never panics and never allocates more than the
//! input could justify: every length is checked against the bytes left
//! before anything is allocated, and every failure is a
//! [`FormatError::Corrupt`] naming the file offset of the offending field.

use std::path::Path;

use omen_format::FormatError;

use crate::EngineError;

/// Appends little-endian fields to a byte vector.
#[derive(Debug, Default)]
pub(crate) struct Writer {
    pub(crate) bytes: Vec<u8>,
}

impl Writer {
    pub(crate) fn u8(&mut self, v: u8) {
        self.bytes.push(v);
    }

    pub(crate) fn u32(&mut self, v: u32) {
        self.bytes.extend_from_slice(&v.to_le_bytes());
    }

    pub(crate) fn f32s(&mut self, v: &[f32]) {
        self.bytes.reserve(v.len() * 4);
        for x in v {
            self.bytes.extend_from_slice(&x.to_le_bytes());
        }
    }
}

/// A cursor over untrusted bytes that reports errors at their file offset.
#[derive(Debug)]
pub(crate) struct Reader<'a> {
    bytes: &'a [u8],
    pos: usize,
    path: &'a Path,
    base: u64,
    what: &'static str,
}

impl<'a> Reader<'a> {
    /// `bytes` start at file offset `base` of `path`; `what` names the
    /// structure in errors.
    pub(crate) fn new(bytes: &'a [u8], path: &'a Path, base: u64, what: &'static str) -> Self {
        Reader {
            bytes,
            pos: 0,
            path,
            base,
            what,
        }
    }

    /// The local offset of the next byte.
    pub(crate) fn pos(&self) -> usize {
        self.pos
    }

    /// A corruption error at local offset `at`.
    pub(crate) fn error_at(&self, at: usize, reason: impl Into<String>) -> EngineError {
        EngineError::Format(FormatError::Corrupt {
            path: self.path.to_path_buf(),
            what: self.what.to_owned(),
            offset: self.base.saturating_add(at as u64),
            reason: reason.into(),
        })
    }

    /// The next `n` bytes.
    pub(crate) fn take(&mut self, n: usize) -> Result<&'a [u8], EngineError> {
        let end = self.pos.checked_add(n).filter(|&e| e <= self.bytes.len());
        match end.and_then(|e| self.bytes.get(self.pos..e).map(|s| (e, s))) {
            Some((e, s)) => {
                self.pos = e;
                Ok(s)
            }
            None => Err(self.error_at(
                self.pos,
                format!(
                    "needs {n} more bytes, but only {} remain",
                    self.bytes.len().saturating_sub(self.pos)
                ),
            )),
        }
    }

    pub(crate) fn u8(&mut self) -> Result<u8, EngineError> {
        let b = self.take(1)?;
        b.first()
            .copied()
            .ok_or_else(|| self.error_at(self.pos, "empty read"))
    }

    pub(crate) fn u32(&mut self) -> Result<u32, EngineError> {
        let at = self.pos;
        let b = self.take(4)?;
        let a: [u8; 4] = b.try_into().map_err(|_| self.error_at(at, "short u32"))?;
        Ok(u32::from_le_bytes(a))
    }

    /// `n` finite f32 values; `n` is checked against the remaining bytes
    /// before anything is allocated.
    pub(crate) fn f32s(&mut self, n: usize) -> Result<Vec<f32>, EngineError> {
        let at = self.pos;
        let len = n
            .checked_mul(4)
            .ok_or_else(|| self.error_at(at, format!("{n} floats overflow a length")))?;
        let b = self.take(len)?;
        let mut out = Vec::with_capacity(n);
        for (i, c) in b.chunks_exact(4).enumerate() {
            let a: [u8; 4] = c.try_into().map_err(|_| self.error_at(at, "short f32"))?;
            let x = f32::from_le_bytes(a);
            if !x.is_finite() {
                return Err(self.error_at(at + 4 * i, format!("value {x} is not finite")));
            }
            out.push(x);
        }
        Ok(out)
    }

    /// Fails unless every byte was consumed.
    pub(crate) fn finish(&self) -> Result<(), EngineError> {
        if self.pos == self.bytes.len() {
            Ok(())
        } else {
            Err(self.error_at(
                self.pos,
                format!("{} trailing bytes", self.bytes.len() - self.pos),
            ))
        }
    }
}
