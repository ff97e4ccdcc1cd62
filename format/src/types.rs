//! The vocabulary shared by every layer: element types and metrics.
//!
//! Both are stored on disk as one byte; the discriminants below are part of
//! the format (SPEC.md §2.2) and must never be renumbered.

use std::fmt;
use std::str::FromStr;

/// The numeric type of each vector component.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[repr(u8)]
pub enum ElementType {
    F32 = 1,
    F16 = 2,
    U8 = 3,
    I8 = 4,
}

impl ElementType {
    /// Bytes per component.
    pub const fn size(self) -> usize {
        match self {
            ElementType::F32 => 4,
            ElementType::F16 => 2,
            ElementType::U8 | ElementType::I8 => 1,
        }
    }

    /// Decodes the on-disk byte; `None` for an unknown code.
    pub const fn from_code(code: u8) -> Option<Self> {
        match code {
            1 => Some(ElementType::F32),
            2 => Some(ElementType::F16),
            3 => Some(ElementType::U8),
            4 => Some(ElementType::I8),
            _ => None,
        }
    }

    /// The name used on command lines and in file extensions.
    pub const fn name(self) -> &'static str {
        match self {
            ElementType::F32 => "f32",
            ElementType::F16 => "f16",
            ElementType::U8 => "u8",
            ElementType::I8 => "i8",
        }
    }
}

impl fmt::Display for ElementType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for ElementType {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s.to_ascii_lowercase().as_str() {
            "f32" | "float" | "float32" => Ok(ElementType::F32),
            "f16" | "half" | "float16" => Ok(ElementType::F16),
            "u8" | "uint8" => Ok(ElementType::U8),
            "i8" | "int8" => Ok(ElementType::I8),
            other => Err(format!(
                "unknown element type {other:?}; expected f32, f16, u8 or i8"
            )),
        }
    }
}

/// How the distance between two vectors is measured. Smaller is always
/// closer, so one ordering serves every metric:
///
/// - `L2`: squared Euclidean distance (pgvector `<->` without the root);
/// - `InnerProduct`: the negated dot product (pgvector `<#>`);
/// - `Cosine`: `1 - cos(a, b)` (pgvector `<=>`); a zero vector is at 1.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[repr(u8)]
pub enum Metric {
    L2 = 1,
    InnerProduct = 2,
    Cosine = 3,
}

impl Metric {
    /// Decodes the on-disk byte; `None` for an unknown code.
    pub const fn from_code(code: u8) -> Option<Self> {
        match code {
            1 => Some(Metric::L2),
            2 => Some(Metric::InnerProduct),
            3 => Some(Metric::Cosine),
            _ => None,
        }
    }

    /// The name used on command lines.
    pub const fn name(self) -> &'static str {
        match self {
            Metric::L2 => "l2",
            Metric::InnerProduct => "ip",
            Metric::Cosine => "cos",
        }
    }
}

impl fmt::Display for Metric {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for Metric {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s.to_ascii_lowercase().as_str() {
            "l2" | "euclidean" => Ok(Metric::L2),
            "ip" | "dot" | "inner_product" => Ok(Metric::InnerProduct),
            "cos" | "cosine" => Ok(Metric::Cosine),
            other => Err(format!("unknown metric {other:?}; expected l2, ip or cos")),
        }
    }
}
