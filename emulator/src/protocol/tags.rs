//! Blob index tag expressions: the `where` of Find Blobs by Tags and the `x-ms-if-tags`
//! (and `x-ms-source-if-tags`) condition of blob operations, parsed once and evaluated on a
//! blob's tags.
//!
//! The two dialects differ as Azure's page "Manage and find Azure Blob data with blob index
//! tags" lists: Find Blobs by Tags takes `=`, `>`, `>=`, `<`, `<=` joined by `AND` and
//! `@container = '...'` (account level only); a condition also takes `<>`, `OR` and
//! parentheses, and no `@container`. Keys are quoted with `"`, values with `'`; strings
//! compare lexicographically.

use std::fmt;

/// Most tag comparisons one Find Blobs by Tags expression may hold (`@container` aside).
const MAX_FIND_TERMS: usize = 10;
const MAX_KEY: usize = 128;
const MAX_VALUE: usize = 256;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Op {
    Eq,
    Ne,
    Gt,
    Ge,
    Lt,
    Le,
}

impl Op {
    fn holds(self, left: &str, right: &str) -> bool {
        match self {
            Op::Eq => left == right,
            Op::Ne => left != right,
            Op::Gt => left > right,
            Op::Ge => left >= right,
            Op::Lt => left < right,
            Op::Le => left <= right,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TagExpr {
    /// `"key" op 'value'`; the key `@container` compares the container's name.
    Compare {
        key: String,
        op: Op,
        value: String,
    },
    And(Box<TagExpr>, Box<TagExpr>),
    Or(Box<TagExpr>, Box<TagExpr>),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dialect {
    /// Find Blobs by Tags; `account_level` allows `@container`.
    Find { account_level: bool },
    /// `x-ms-if-tags` / `x-ms-source-if-tags`.
    Condition,
}

/// Where and why an expression could not be read, in Azure's words.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParseError {
    pub position: usize,
    pub reason: String,
}

impl fmt::Display for ParseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "Error parsing query at or near character position {}: {}",
            self.position, self.reason
        )
    }
}

/// Characters Azure allows in tag keys and values.
pub fn valid_tag_chars(s: &str) -> bool {
    s.chars()
        .all(|c| c.is_ascii_alphanumeric() || " +-./:=_".contains(c))
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Token {
    Key(String),
    Value(String),
    Container,
    Op(Op),
    And,
    Or,
    Open,
    Close,
}

struct Lexer<'a> {
    src: &'a str,
    pos: usize,
}

impl<'a> Lexer<'a> {
    fn err(&self, at: usize, reason: impl Into<String>) -> ParseError {
        ParseError {
            position: at,
            reason: reason.into(),
        }
    }

    fn skip_space(&mut self) {
        while let Some(c) = self.src[self.pos..].chars().next() {
            if !c.is_whitespace() {
                break;
            }
            self.pos += c.len_utf8();
        }
    }

    /// The next token and the position it starts at; None at the end.
    fn next(&mut self) -> Result<Option<(usize, Token)>, ParseError> {
        self.skip_space();
        let start = self.pos;
        let rest = &self.src[self.pos..];
        let Some(c) = rest.chars().next() else {
            return Ok(None);
        };
        let quoted = |quote: char, lexer: &mut Lexer<'a>| -> Result<String, ParseError> {
            let body = &rest[1..];
            let end = body.find(quote).ok_or_else(|| {
                lexer.err(start, format!("unterminated string starting with {quote}"))
            })?;
            lexer.pos += 1 + end + 1;
            Ok(body[..end].to_string())
        };
        let token = match c {
            '"' => Token::Key(quoted('"', self)?),
            '\'' => Token::Value(quoted('\'', self)?),
            '(' => {
                self.pos += 1;
                Token::Open
            }
            ')' => {
                self.pos += 1;
                Token::Close
            }
            '=' | '<' | '>' => {
                let (op, len) = match (c, rest[1..].chars().next()) {
                    ('<', Some('>')) => (Op::Ne, 2),
                    ('<', Some('=')) => (Op::Le, 2),
                    ('>', Some('=')) => (Op::Ge, 2),
                    ('<', _) => (Op::Lt, 1),
                    ('>', _) => (Op::Gt, 1),
                    _ => (Op::Eq, 1),
                };
                self.pos += len;
                Token::Op(op)
            }
            '@' => {
                let word: String = rest[1..]
                    .chars()
                    .take_while(|c| c.is_ascii_alphanumeric())
                    .collect();
                if !word.eq_ignore_ascii_case("container") {
                    return Err(self.err(start, "unexpected '@'"));
                }
                self.pos += 1 + word.len();
                Token::Container
            }
            _ => {
                let word: String = rest
                    .chars()
                    .take_while(|c| !c.is_whitespace() && !"=<>()'\"".contains(*c))
                    .collect();
                if word.is_empty() {
                    return Err(self.err(start, format!("unexpected '{c}'")));
                }
                self.pos += word.len();
                if word.eq_ignore_ascii_case("and") {
                    Token::And
                } else if word.eq_ignore_ascii_case("or") {
                    Token::Or
                } else {
                    // An unquoted key, as some clients send.
                    Token::Key(word)
                }
            }
        };
        Ok(Some((start, token)))
    }
}

struct Parser<'a> {
    tokens: Vec<(usize, Token)>,
    at: usize,
    dialect: Dialect,
    end: usize,
    terms: usize,
    _src: &'a str,
}

impl Parser<'_> {
    fn peek(&self) -> Option<&(usize, Token)> {
        self.tokens.get(self.at)
    }

    fn here(&self) -> usize {
        self.peek().map_or(self.end, |(p, _)| *p)
    }

    fn err(&self, reason: impl Into<String>) -> ParseError {
        ParseError {
            position: self.here(),
            reason: reason.into(),
        }
    }

    fn or(&mut self) -> Result<TagExpr, ParseError> {
        let mut left = self.and()?;
        while matches!(self.peek(), Some((_, Token::Or))) {
            if matches!(self.dialect, Dialect::Find { .. }) {
                return Err(self.err("the OR operator is not supported here"));
            }
            self.at += 1;
            let right = self.and()?;
            left = TagExpr::Or(Box::new(left), Box::new(right));
        }
        Ok(left)
    }

    fn and(&mut self) -> Result<TagExpr, ParseError> {
        let mut left = self.primary()?;
        while matches!(self.peek(), Some((_, Token::And))) {
            self.at += 1;
            let right = self.primary()?;
            left = TagExpr::And(Box::new(left), Box::new(right));
        }
        Ok(left)
    }

    fn primary(&mut self) -> Result<TagExpr, ParseError> {
        match self.peek().cloned() {
            Some((_, Token::Open)) if self.dialect == Dialect::Condition => {
                self.at += 1;
                let inner = self.or()?;
                match self.peek() {
                    Some((_, Token::Close)) => {
                        self.at += 1;
                        Ok(inner)
                    }
                    _ => Err(self.err("expected ')'")),
                }
            }
            Some((_, Token::Key(key))) => {
                if key.is_empty() || key.chars().count() > MAX_KEY || !valid_tag_chars(&key) {
                    return Err(self.err(format!("'{key}' is not a valid tag name")));
                }
                self.at += 1;
                self.comparison(key)
            }
            Some((_, Token::Container)) => match self.dialect {
                Dialect::Find {
                    account_level: true,
                } => {
                    self.at += 1;
                    self.comparison("@container".to_string())
                }
                _ => Err(self.err("@container is not supported here")),
            },
            Some(_) => Err(self.err("expected a tag name")),
            None => Err(self.err("unexpected end of expression")),
        }
    }

    fn comparison(&mut self, key: String) -> Result<TagExpr, ParseError> {
        let op = match self.peek() {
            Some((_, Token::Op(op))) => *op,
            _ => return Err(self.err("expected an operator")),
        };
        if op == Op::Ne && self.dialect != Dialect::Condition {
            return Err(self.err("the <> operator is not supported here"));
        }
        if key == "@container" && op != Op::Eq {
            return Err(self.err("@container supports only the = operator"));
        }
        self.at += 1;
        let value = match self.peek() {
            Some((_, Token::Value(v))) => v.clone(),
            _ => return Err(self.err("expected a value in single quotes")),
        };
        if value.chars().count() > MAX_VALUE || !valid_tag_chars(&value) {
            return Err(self.err(format!("'{value}' is not a valid tag value")));
        }
        self.at += 1;
        if key != "@container" {
            self.terms += 1;
        }
        if matches!(self.dialect, Dialect::Find { .. }) && self.terms > MAX_FIND_TERMS {
            return Err(self.err(format!(
                "at most {MAX_FIND_TERMS} tag conditions are allowed"
            )));
        }
        Ok(TagExpr::Compare { key, op, value })
    }
}

/// Parses an expression of `dialect`.
pub fn parse(expr: &str, dialect: Dialect) -> Result<TagExpr, ParseError> {
    let mut lexer = Lexer { src: expr, pos: 0 };
    let mut tokens = Vec::new();
    while let Some(t) = lexer.next()? {
        tokens.push(t);
    }
    let mut p = Parser {
        tokens,
        at: 0,
        dialect,
        end: expr.len(),
        terms: 0,
        _src: expr,
    };
    let e = p.or()?;
    if p.peek().is_some() {
        return Err(p.err("unexpected text after the expression"));
    }
    Ok(e)
}

impl TagExpr {
    /// Whether a blob (in `container`, with `tags`) satisfies the expression. A comparison
    /// on a tag the blob lacks is false, `<>` included.
    pub fn matches(&self, container: &str, tags: &[(String, String)]) -> bool {
        match self {
            TagExpr::Compare { key, op, value } => {
                if key == "@container" {
                    return op.holds(container, value);
                }
                tags.iter()
                    .find(|(k, _)| k == key)
                    .is_some_and(|(_, v)| op.holds(v, value))
            }
            TagExpr::And(a, b) => a.matches(container, tags) && b.matches(container, tags),
            TagExpr::Or(a, b) => a.matches(container, tags) || b.matches(container, tags),
        }
    }

    /// The comparisons every match must satisfy: those joined by `AND` at the top (all of
    /// a Find Blobs by Tags expression's), `@container` included.
    pub fn conjuncts(&self) -> Vec<(&str, Op, &str)> {
        match self {
            TagExpr::Compare { key, op, value } => vec![(key.as_str(), *op, value.as_str())],
            TagExpr::And(a, b) => {
                let mut c = a.conjuncts();
                c.extend(b.conjuncts());
                c
            }
            TagExpr::Or(..) => Vec::new(),
        }
    }

    /// The tag keys the expression names (Find Blobs by Tags returns only those).
    pub fn keys(&self) -> Vec<&str> {
        match self {
            TagExpr::Compare { key, .. } => vec![key.as_str()],
            TagExpr::And(a, b) | TagExpr::Or(a, b) => {
                let mut k = a.keys();
                k.extend(b.keys());
                k
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tags(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    const FIND: Dialect = Dialect::Find {
        account_level: false,
    };

    #[test]
    fn find_expressions() {
        let t = tags(&[("project", "alpha"), ("n", "7")]);
        let e = parse("\"project\" = 'alpha' AND \"n\" >= '5'", FIND).expect("parse");
        assert!(e.matches("c1", &t));
        assert_eq!(e.keys(), vec!["project", "n"]);
        assert!(!parse("\"n\" < '5'", FIND).expect("parse").matches("c1", &t));
        let acct = Dialect::Find {
            account_level: true,
        };
        let e = parse("@container = 'c1' AND \"n\" = '7'", acct).expect("parse");
        assert!(e.matches("c1", &t) && !e.matches("c2", &t));
        assert!(
            parse("@container = 'c1'", FIND).is_err(),
            "no @container inside a container"
        );
        assert!(parse("\"n\" ~ '5'", FIND).is_err());
        assert!(parse("\"n\" = '5' OR \"m\" = '1'", FIND).is_err());
        assert!(parse("\"n\" <> '5'", FIND).is_err());
        assert!(parse("", FIND).is_err());
        // Every character Azure allows in a value.
        let odd = tags(&[("k", "value +-.:=_/")]);
        assert!(parse("\"k\" = 'value +-.:=_/'", FIND)
            .expect("parse")
            .matches("c", &odd));
        assert!(parse("\"k\" = 'a@b'", FIND).is_err());
        assert!(parse(&format!("\"{}\" = 'x'", "k".repeat(129)), FIND).is_err());
        assert!(parse(&format!("\"k\" = '{}'", "v".repeat(257)), FIND).is_err());
        let eleven = (0..11)
            .map(|i| format!("\"k{i}\" = 'v'"))
            .collect::<Vec<_>>()
            .join(" AND ");
        assert!(parse(&eleven, FIND).is_err());
        let ten = (0..10)
            .map(|i| format!("\"k{i}\" = 'v'"))
            .collect::<Vec<_>>()
            .join(" AND ");
        assert!(parse(&ten, FIND).is_ok());
    }

    #[test]
    fn conditions() {
        let t = tags(&[("status", "done"), ("prio", "05")]);
        let c = Dialect::Condition;
        assert!(parse("\"status\" = 'done'", c).expect("p").matches("x", &t));
        assert!(parse("\"status\" <> 'open'", c)
            .expect("p")
            .matches("x", &t));
        assert!(!parse("\"missing\" <> 'open'", c)
            .expect("p")
            .matches("x", &t));
        let e = parse(
            "(\"status\" = 'open' OR \"prio\" >= '03') AND \"status\" = 'done'",
            c,
        )
        .expect("p");
        assert!(e.matches("x", &t));
        // AND binds tighter than OR.
        let e = parse("\"status\" = 'x' AND \"prio\" = 'y' OR \"prio\" = '05'", c).expect("p");
        assert!(e.matches("x", &t));
        assert!(parse("@container = 'x'", c).is_err());
        let err = parse("\"status\" = 'done' AND", c).expect_err("incomplete");
        assert_eq!(err.position, 21);
        assert!(err
            .to_string()
            .starts_with("Error parsing query at or near character position 21"));
        assert!(parse("(\"a\" = 'b'", c).is_err());
    }
}
