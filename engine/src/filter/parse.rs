//! A small SQL-like predicate syntax for tools (`omen bench --filter`):
//!
//! ```text
//! expr      := or
//! or        := and ("OR" and)*
//! and       := unary ("AND" unary)*
//! unary     := "NOT" unary | "(" expr ")" | predicate
//! predicate := column op literal
//!            | column ["NOT"] "IN" "(" literal ("," literal)* ")"
//!            | column ["NOT"] "BETWEEN" literal "AND" literal
//!            | column "IS" ["NOT"] "NULL"
//! op        := = | == | <> | != | < | <= | > | >=
//! literal   := integer | float | 'text' ('' escapes ') | true | false | NULL
//!            | timestamp 'YYYY-MM-DD[THH:MM:SS[.ffffff]][Z]'
//! column    := [A-Za-z_][A-Za-z0-9_.]* | "quoted name"
//! ```
//!
//! Keywords are case-insensitive. SQL proper (issue 5) goes through the SQL
//! parser; this is for command lines.

use std::str::FromStr;

use omen_format::dataset::side_file::parse_timestamp;

use super::{CompareOp, Filter, Value};

#[derive(Debug, Clone, PartialEq)]
enum Token {
    Word(String),
    Quoted(String),
    Text(String),
    Number(String),
    Op(&'static str),
    Open,
    Close,
    Comma,
}

fn tokens(s: &str) -> Result<Vec<(Token, usize)>, String> {
    let mut out = Vec::new();
    let chars: Vec<(usize, char)> = s.char_indices().collect();
    let mut i = 0;
    while i < chars.len() {
        let (at, c) = chars[i];
        let quoted = |i: &mut usize, q: char| -> Result<String, String> {
            let mut text = String::new();
            *i += 1;
            loop {
                match chars.get(*i) {
                    None => {
                        return Err(format!("unterminated {q}...{q} starting at character {at}"));
                    }
                    Some(&(_, c)) if c == q => {
                        if chars.get(*i + 1).map(|x| x.1) == Some(q) {
                            text.push(q);
                            *i += 2;
                        } else {
                            *i += 1;
                            return Ok(text);
                        }
                    }
                    Some(&(_, c)) => {
                        text.push(c);
                        *i += 1;
                    }
                }
            }
        };
        match c {
            c if c.is_whitespace() => i += 1,
            '(' => {
                out.push((Token::Open, at));
                i += 1;
            }
            ')' => {
                out.push((Token::Close, at));
                i += 1;
            }
            ',' => {
                out.push((Token::Comma, at));
                i += 1;
            }
            '\'' => out.push((Token::Text(quoted(&mut i, '\'')?), at)),
            '"' => out.push((Token::Quoted(quoted(&mut i, '"')?), at)),
            '<' | '>' | '=' | '!' => {
                let next = chars.get(i + 1).map(|x| x.1);
                let (op, len) = match (c, next) {
                    ('<', Some('=')) => ("<=", 2),
                    ('<', Some('>')) => ("<>", 2),
                    ('>', Some('=')) => (">=", 2),
                    ('!', Some('=')) => ("<>", 2),
                    ('=', Some('=')) => ("=", 2),
                    ('<', _) => ("<", 1),
                    ('>', _) => (">", 1),
                    ('=', _) => ("=", 1),
                    _ => return Err(format!("unexpected '!' at character {at}")),
                };
                out.push((Token::Op(op), at));
                i += len;
            }
            c if c.is_ascii_digit() || c == '-' || c == '+' || c == '.' => {
                let start = i;
                i += 1;
                while chars.get(i).is_some_and(|&(_, c)| {
                    c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '+')
                }) {
                    i += 1;
                }
                let text: String = chars[start..i].iter().map(|x| x.1).collect();
                out.push((Token::Number(text), at));
            }
            c if c.is_alphabetic() || c == '_' => {
                let start = i;
                while chars
                    .get(i)
                    .is_some_and(|&(_, c)| c.is_alphanumeric() || matches!(c, '_' | '.'))
                {
                    i += 1;
                }
                out.push((
                    Token::Word(chars[start..i].iter().map(|x| x.1).collect()),
                    at,
                ));
            }
            c => return Err(format!("unexpected {c:?} at character {at}")),
        }
    }
    Ok(out)
}

struct Parser {
    tokens: Vec<(Token, usize)>,
    at: usize,
}

impl Parser {
    fn peek(&self) -> Option<&Token> {
        self.tokens.get(self.at).map(|t| &t.0)
    }

    fn where_(&self) -> String {
        self.tokens
            .get(self.at)
            .map_or("at the end".into(), |t| format!("at character {}", t.1))
    }

    fn keyword(&mut self, kw: &str) -> bool {
        if matches!(self.peek(), Some(Token::Word(w)) if w.eq_ignore_ascii_case(kw)) {
            self.at += 1;
            true
        } else {
            false
        }
    }

    fn expect(&mut self, t: &Token, what: &str) -> Result<(), String> {
        if self.peek() == Some(t) {
            self.at += 1;
            Ok(())
        } else {
            Err(format!("expected {what} {}", self.where_()))
        }
    }

    fn or(&mut self) -> Result<Filter, String> {
        let mut parts = vec![self.and()?];
        while self.keyword("or") {
            parts.push(self.and()?);
        }
        Ok(if parts.len() == 1 {
            parts.remove(0)
        } else {
            Filter::Or(parts)
        })
    }

    fn and(&mut self) -> Result<Filter, String> {
        let mut parts = vec![self.unary()?];
        while self.keyword("and") {
            parts.push(self.unary()?);
        }
        Ok(if parts.len() == 1 {
            parts.remove(0)
        } else {
            Filter::And(parts)
        })
    }

    fn unary(&mut self) -> Result<Filter, String> {
        if self.keyword("not") {
            return Ok(Filter::Not(Box::new(self.unary()?)));
        }
        if self.peek() == Some(&Token::Open) {
            self.at += 1;
            let inner = self.or()?;
            self.expect(&Token::Close, "')'")?;
            return Ok(inner);
        }
        self.predicate()
    }

    fn predicate(&mut self) -> Result<Filter, String> {
        let column = match self.peek() {
            Some(Token::Word(w)) if !is_keyword(w) => w.clone(),
            Some(Token::Quoted(w)) => w.clone(),
            _ => return Err(format!("expected a column name {}", self.where_())),
        };
        self.at += 1;
        if let Some(Token::Op(op)) = self.peek() {
            let op = match *op {
                "=" => CompareOp::Eq,
                "<>" => CompareOp::Ne,
                "<" => CompareOp::Lt,
                "<=" => CompareOp::Le,
                ">" => CompareOp::Gt,
                _ => CompareOp::Ge,
            };
            self.at += 1;
            let value = self.literal()?;
            return Ok(Filter::Compare { column, op, value });
        }
        if self.keyword("is") {
            let not = self.keyword("not");
            if !self.keyword("null") {
                return Err(format!("expected NULL after IS {}", self.where_()));
            }
            let f = Filter::IsNull { column };
            return Ok(if not { Filter::Not(Box::new(f)) } else { f });
        }
        let not = self.keyword("not");
        let f = if self.keyword("in") {
            self.expect(&Token::Open, "'(' after IN")?;
            let mut values = vec![self.literal()?];
            while self.peek() == Some(&Token::Comma) {
                self.at += 1;
                values.push(self.literal()?);
            }
            self.expect(&Token::Close, "')' closing IN")?;
            Filter::In { column, values }
        } else if self.keyword("between") {
            let low = self.literal()?;
            if !self.keyword("and") {
                return Err(format!("expected AND in BETWEEN {}", self.where_()));
            }
            let high = self.literal()?;
            Filter::Between { column, low, high }
        } else {
            return Err(format!(
                "expected an operator (=, <>, <, <=, >, >=, IN, BETWEEN, IS) after \"{column}\" {}",
                self.where_()
            ));
        };
        Ok(if not { Filter::Not(Box::new(f)) } else { f })
    }

    fn literal(&mut self) -> Result<Value, String> {
        let (token, at) = self
            .tokens
            .get(self.at)
            .cloned()
            .ok_or_else(|| "expected a value at the end".to_string())?;
        self.at += 1;
        match token {
            Token::Text(s) => Ok(Value::Text(s)),
            Token::Number(n) => n
                .parse::<i64>()
                .map(Value::Int64)
                .or_else(|_| {
                    n.parse::<f64>()
                        .ok()
                        .filter(|x| x.is_finite())
                        .map(Value::Float64)
                        .ok_or(())
                })
                .map_err(|_| format!("{n:?} at character {at} is not a number")),
            Token::Word(w) if w.eq_ignore_ascii_case("true") => Ok(Value::Bool(true)),
            Token::Word(w) if w.eq_ignore_ascii_case("false") => Ok(Value::Bool(false)),
            Token::Word(w) if w.eq_ignore_ascii_case("null") => Ok(Value::Null),
            Token::Word(w) if w.eq_ignore_ascii_case("timestamp") => match self.tokens.get(self.at)
            {
                Some((Token::Text(s), _)) => {
                    let v = parse_timestamp(s).ok_or_else(|| {
                        format!("timestamp '{s}' at character {at} is not a date or date-time")
                    })?;
                    self.at += 1;
                    Ok(Value::Timestamp(v))
                }
                _ => Err(format!(
                    "expected 'YYYY-MM-DD...' after timestamp at character {at}"
                )),
            },
            _ => Err(format!("expected a value at character {at}")),
        }
    }
}

fn is_keyword(w: &str) -> bool {
    [
        "and", "or", "not", "in", "between", "is", "null", "true", "false",
    ]
    .iter()
    .any(|k| w.eq_ignore_ascii_case(k))
}

impl FromStr for Filter {
    type Err = String;

    fn from_str(s: &str) -> Result<Filter, String> {
        let mut p = Parser {
            tokens: tokens(s)?,
            at: 0,
        };
        let f = p.or()?;
        if p.at != p.tokens.len() {
            return Err(format!("unexpected text {} of {s:?}", p.where_()));
        }
        Ok(f)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_every_predicate_kind_and_round_trips_through_display() {
        for (text, want) in [
            ("a < 10", Filter::cmp("a", CompareOp::Lt, Value::Int64(10))),
            (
                "price >= 2.5",
                Filter::cmp("price", CompareOp::Ge, Value::Float64(2.5)),
            ),
            ("tag = 'o''k'", Filter::eq("tag", Value::Text("o'k".into()))),
            ("x != -3", Filter::cmp("x", CompareOp::Ne, Value::Int64(-3))),
            (
                "b IS NOT NULL",
                Filter::Not(Box::new(Filter::IsNull { column: "b".into() })),
            ),
            (
                "c in (1, 2, NULL)",
                Filter::In {
                    column: "c".into(),
                    values: vec![Value::Int64(1), Value::Int64(2), Value::Null],
                },
            ),
            (
                "t BETWEEN timestamp '1970-01-01' AND timestamp '1970-01-02'",
                Filter::Between {
                    column: "t".into(),
                    low: Value::Timestamp(0),
                    high: Value::Timestamp(86_400_000_000),
                },
            ),
            (
                "a = 1 OR b = true AND NOT (c > 2)",
                Filter::Or(vec![
                    Filter::eq("a", Value::Int64(1)),
                    Filter::And(vec![
                        Filter::eq("b", Value::Bool(true)),
                        Filter::Not(Box::new(Filter::cmp("c", CompareOp::Gt, Value::Int64(2)))),
                    ]),
                ]),
            ),
        ] {
            assert_eq!(text.parse::<Filter>().unwrap(), want, "{text}");
        }
        let f: Filter = "(a < 1 AND NOT (b = 'x')) OR c IS NULL".parse().unwrap();
        assert_eq!(f.to_string().parse::<Filter>().unwrap(), f);
    }

    #[test]
    fn errors_say_where() {
        for (text, needle) in [
            ("a <", "end"),
            ("a = 'x", "unterminated"),
            ("a ~ 1", "'~'"),
            ("a = 1 b", "character 6"),
            ("a in (1", "')'"),
            ("= 1", "column name"),
        ] {
            let err = text.parse::<Filter>().unwrap_err();
            assert!(err.contains(needle), "{text}: {err}");
        }
    }
}
