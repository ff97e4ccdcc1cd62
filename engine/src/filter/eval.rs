//! Evaluating a [`CompiledFilter`]: one row at a time (during a graph walk,
//! which touches few rows) or every row at once into a bitmap (for the
//! exact scan of a selective filter, in tight typed loops). Both follow
//! SQL's three-valued logic: a comparison with NULL is unknown, NOT unknown
//! is unknown, and a row matches only when the whole tree is true.

use std::cmp::Ordering;

use omen_format::segment::attributes::{Column, ColumnValues};

use super::CompareOp;
use super::compile::{CompiledFilter, Leaf, Node, Truth};

impl CompareOp {
    /// Whether `ordering` (row value against the literal) satisfies `self`.
    #[inline]
    pub fn holds(self, ordering: Ordering) -> bool {
        match self {
            CompareOp::Eq => ordering.is_eq(),
            CompareOp::Ne => ordering.is_ne(),
            CompareOp::Lt => ordering.is_lt(),
            CompareOp::Le => ordering.is_le(),
            CompareOp::Gt => ordering.is_gt(),
            CompareOp::Ge => ordering.is_ge(),
        }
    }
}

/// Rows as bits: `t` where the predicate is true, `f` where it is false;
/// neither where unknown.
struct Bits {
    t: Vec<u64>,
    f: Vec<u64>,
}

impl CompiledFilter {
    /// Whether row `row` satisfies the filter.
    pub fn matches(&self, row: usize) -> bool {
        self.eval(&self.root, row) == Truth::True
    }

    /// Rows of the segment.
    pub fn rows(&self) -> usize {
        self.rows
    }

    /// Every matching row, ascending.
    pub fn matching_rows(&self) -> Vec<u32> {
        let bits = self.bits(&self.root);
        let mut out = Vec::new();
        for (w, &word) in bits.t.iter().enumerate() {
            let mut word = word;
            while word != 0 {
                let b = word.trailing_zeros() as usize;
                out.push((w * 64 + b) as u32);
                word &= word - 1;
            }
        }
        out
    }

    fn col(&self, col: usize) -> &Column {
        // `compile` checked that every column the tree reads is present.
        self.columns[col]
            .as_deref()
            .expect("compiled column present")
    }

    fn eval(&self, node: &Node, row: usize) -> Truth {
        match node {
            Node::Const(t) => *t,
            Node::Leaf(leaf) => self.test(leaf, row),
            Node::And(parts) => {
                let mut out = Truth::True;
                for p in parts {
                    match self.eval(p, row) {
                        Truth::False => return Truth::False,
                        Truth::Unknown => out = Truth::Unknown,
                        Truth::True => {}
                    }
                }
                out
            }
            Node::Or(parts) => {
                let mut out = Truth::False;
                for p in parts {
                    match self.eval(p, row) {
                        Truth::True => return Truth::True,
                        Truth::Unknown => out = Truth::Unknown,
                        Truth::False => {}
                    }
                }
                out
            }
            Node::Not(inner) => match self.eval(inner, row) {
                Truth::True => Truth::False,
                Truth::False => Truth::True,
                Truth::Unknown => Truth::Unknown,
            },
        }
    }

    fn test(&self, leaf: &Leaf, row: usize) -> Truth {
        let c = self.col(leaf.column());
        if c.is_null(row) {
            return if matches!(leaf, Leaf::IsNull { .. }) {
                Truth::True
            } else {
                Truth::Unknown
            };
        }
        let t = |b: bool| if b { Truth::True } else { Truth::False };
        let member = |found: bool, has_null: bool| match (found, has_null) {
            (true, _) => Truth::True,
            (false, true) => Truth::Unknown,
            (false, false) => Truth::False,
        };
        match (leaf, &c.values) {
            (Leaf::IsNull { .. }, _) => Truth::False,
            (Leaf::Int { op, lit, .. }, ColumnValues::Int64(v) | ColumnValues::Timestamp(v)) => {
                t(op.holds(v[row].cmp(lit)))
            }
            (Leaf::Float { op, lit, .. }, ColumnValues::Float64(v)) => {
                t(op.holds(v[row].total_cmp(lit)))
            }
            (Leaf::Float { op, lit, .. }, ColumnValues::Int64(v)) => {
                t(op.holds((v[row] as f64).total_cmp(lit)))
            }
            (Leaf::Bool { op, lit, .. }, ColumnValues::Bool(v)) => t(op.holds(v[row].cmp(lit))),
            (Leaf::CodeRange { lo, hi, .. }, ColumnValues::Text { codes, .. }) => {
                t((*lo..*hi).contains(&codes[row]))
            }
            (
                Leaf::IntIn { set, has_null, .. },
                ColumnValues::Int64(v) | ColumnValues::Timestamp(v),
            ) => member(set.binary_search(&v[row]).is_ok(), *has_null),
            (Leaf::FloatIn { set, has_null, .. }, ColumnValues::Float64(v)) => member(
                set.binary_search_by(|x| x.total_cmp(&v[row])).is_ok(),
                *has_null,
            ),
            (Leaf::FloatIn { set, has_null, .. }, ColumnValues::Int64(v)) => member(
                set.binary_search_by(|x| x.total_cmp(&(v[row] as f64)))
                    .is_ok(),
                *has_null,
            ),
            (Leaf::CodeIn { set, has_null, .. }, ColumnValues::Text { codes, .. }) => member(
                set.get(codes[row] as usize).copied().unwrap_or(false),
                *has_null,
            ),
            _ => Truth::Unknown,
        }
    }

    fn bits(&self, node: &Node) -> Bits {
        let words = self.rows.div_ceil(64);
        match node {
            Node::Const(t) => {
                let fill = |on: bool| vec![if on { u64::MAX } else { 0 }; words];
                self.trim(Bits {
                    t: fill(*t == Truth::True),
                    f: fill(*t == Truth::False),
                })
            }
            Node::Leaf(leaf) => self.leaf_bits(leaf),
            Node::And(parts) => {
                let mut acc = self.bits(&Node::Const(Truth::True));
                for p in parts {
                    let b = self.bits(p);
                    for w in 0..words {
                        acc.t[w] &= b.t[w];
                        acc.f[w] |= b.f[w];
                    }
                }
                acc
            }
            Node::Or(parts) => {
                let mut acc = self.bits(&Node::Const(Truth::False));
                for p in parts {
                    let b = self.bits(p);
                    for w in 0..words {
                        acc.t[w] |= b.t[w];
                        acc.f[w] &= b.f[w];
                    }
                }
                acc
            }
            Node::Not(inner) => {
                let b = self.bits(inner);
                Bits { t: b.f, f: b.t }
            }
        }
    }

    /// Clears bits past the last row.
    fn trim(&self, mut b: Bits) -> Bits {
        let tail = self.rows % 64;
        if tail != 0
            && let (Some(t), Some(f)) = (b.t.last_mut(), b.f.last_mut())
        {
            *t &= (1u64 << tail) - 1;
            *f &= (1u64 << tail) - 1;
        }
        b
    }

    fn leaf_bits(&self, leaf: &Leaf) -> Bits {
        let c = self.col(leaf.column());
        let present = c.present.as_deref();
        match (leaf, &c.values) {
            (Leaf::IsNull { .. }, _) => {
                let mut b = fill_bits(self.rows, None, |row| c.is_null(row));
                // IS NULL is never unknown.
                for w in 0..b.t.len() {
                    b.f[w] = !b.t[w];
                }
                self.trim(b)
            }
            (Leaf::Int { op, lit, .. }, ColumnValues::Int64(v) | ColumnValues::Timestamp(v)) => {
                let (op, lit) = (*op, *lit);
                fill_bits(self.rows, present, |row| op.holds(v[row].cmp(&lit)))
            }
            (Leaf::Float { op, lit, .. }, ColumnValues::Float64(v)) => {
                let (op, lit) = (*op, *lit);
                fill_bits(self.rows, present, |row| op.holds(v[row].total_cmp(&lit)))
            }
            (Leaf::CodeRange { lo, hi, .. }, ColumnValues::Text { codes, .. }) => {
                let range = *lo..*hi;
                fill_bits(self.rows, present, |row| range.contains(&codes[row]))
            }
            (Leaf::CodeIn { set, has_null, .. }, ColumnValues::Text { codes, .. }) => {
                let mut b = fill_bits(self.rows, present, |row| {
                    set.get(codes[row] as usize).copied().unwrap_or(false)
                });
                if *has_null {
                    b.f.iter_mut().for_each(|w| *w = 0);
                }
                b
            }
            _ => {
                // The rest (bool, IN on numbers, int against float) go row
                // by row through the same test as `matches`.
                let truth: Vec<Truth> = (0..self.rows).map(|r| self.test(leaf, r)).collect();
                let mut b = fill_bits(self.rows, None, |r| truth[r] == Truth::True);
                let f = fill_bits(self.rows, None, |r| truth[r] == Truth::False);
                b.f = f.t;
                b
            }
        }
    }
}

/// Bits of `pred` over `rows` rows; NULL rows (per `present`) are neither
/// true nor false.
#[inline]
fn fill_bits(rows: usize, present: Option<&[bool]>, pred: impl Fn(usize) -> bool) -> Bits {
    let words = rows.div_ceil(64);
    let mut t = vec![0u64; words];
    let mut f = vec![0u64; words];
    for w in 0..words {
        let start = w * 64;
        let end = (start + 64).min(rows);
        let (mut tw, mut fw) = (0u64, 0u64);
        for row in start..end {
            let bit = 1u64 << (row - start);
            if present.is_none_or(|p| p[row]) {
                if pred(row) {
                    tw |= bit;
                } else {
                    fw |= bit;
                }
            }
        }
        t[w] = tw;
        f[w] = fw;
    }
    Bits { t, f }
}
