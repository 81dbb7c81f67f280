//! SCIM filters (RFC 7644 §3.4.2.2): a tokenizer and a recursive-descent parser into an
//! expression tree (precedence `not` > `and` > `or`, grouping, value filters in brackets), and
//! the parser of PATCH paths (RFC 7644 §3.5.2), which shares the tokenizer. Evaluation lives in
//! `eval.rs`.
//!
//! A hostile filter cannot exhaust the stack: the text is bounded by [`MAX_LEN`] before anything
//! else, the tokenizer is a loop, and the parser refuses nesting deeper than [`MAX_DEPTH`]; `and`
//! and `or` chains are flat lists, so evaluating them does not recurse per term.

use super::path::AttrPath;
use super::{ResourceKind, ScimError, ScimType};
use serde_json::{Number, Value};

/// The longest filter accepted, in bytes.
pub const MAX_LEN: usize = 4096;
/// The deepest nesting of parentheses, `not` and value-filter brackets accepted.
pub const MAX_DEPTH: usize = 32;

/// A parsed filter.
#[derive(Debug, Clone, PartialEq)]
pub struct Filter {
    pub(crate) expr: Expr,
}

/// A comparison operator.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Op {
    Eq,
    Ne,
    Co,
    Sw,
    Ew,
    Gt,
    Ge,
    Lt,
    Le,
}

impl Op {
    fn parse(word: &str) -> Option<Op> {
        Some(match word.to_ascii_lowercase().as_str() {
            "eq" => Op::Eq,
            "ne" => Op::Ne,
            "co" => Op::Co,
            "sw" => Op::Sw,
            "ew" => Op::Ew,
            "gt" => Op::Gt,
            "ge" => Op::Ge,
            "lt" => Op::Lt,
            "le" => Op::Le,
            _ => return None,
        })
    }

    pub(crate) fn as_str(self) -> &'static str {
        match self {
            Op::Eq => "eq",
            Op::Ne => "ne",
            Op::Co => "co",
            Op::Sw => "sw",
            Op::Ew => "ew",
            Op::Gt => "gt",
            Op::Ge => "ge",
            Op::Lt => "lt",
            Op::Le => "le",
        }
    }
}

/// A comparison value.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Literal {
    Str(String),
    Num(Number),
    Bool(bool),
    Null,
}

/// A filter expression.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Expr {
    /// All of these (two or more).
    And(Vec<Expr>),
    /// Any of these (two or more).
    Or(Vec<Expr>),
    Not(Box<Expr>),
    Compare(AttrPath, Op, Literal),
    Present(AttrPath),
    /// `attr[filter]`: some value of a multi-valued (or complex) attribute matches the filter,
    /// whose paths name sub-attributes.
    ValuePath(AttrPath, Box<Expr>),
}

impl Filter {
    /// Parses a filter; `invalidFilter` (400) with a precise detail on any error. Attribute paths are
    /// case-insensitive, may carry a schema URN prefix, sub-attributes (`name.familyName`,
    /// `emails.value`) and value filters (`members[value eq "x"]`,
    /// `emails[type eq "work" and value co "@x"]`). Operators: eq ne co sw ew pr gt ge lt le, and or
    /// not, grouping ( ). Whether the attributes exist is checked by [`Filter::check`].
    pub fn parse(s: &str) -> Result<Filter, ScimError> {
        let mut p = Parser::new(s, ScimType::InvalidFilter)?;
        if p.peek().is_none() {
            return Err(p.error_here("the filter is empty; expected an attribute path"));
        }
        let expr = p.or_expr(false)?;
        p.expect_end()?;
        Ok(Filter { expr })
    }

    /// [`Filter::parse`] and [`Filter::check`] in one.
    pub fn parse_for(kind: ResourceKind, s: &str) -> Result<Filter, ScimError> {
        let f = Filter::parse(s)?;
        f.check(kind)?;
        Ok(f)
    }

    /// `Some((attribute path lower-cased without schema prefix, value))` when the whole filter is
    /// one `attr eq "string"` comparison — lets the caller use an index (userName, externalId,
    /// displayName, id). `members[value eq "x"]` counts as `("members.value", "x")`. The value is as
    /// given: whether to compare it case-sensitively follows the attribute (`id`, `externalId` and
    /// `members.value` are caseExact, `userName` and `displayName` are not).
    pub fn equality(&self) -> Option<(String, String)> {
        match &self.expr {
            Expr::Compare(p, Op::Eq, Literal::Str(v)) => Some((p.lower(), v.clone())),
            Expr::ValuePath(p, inner) if p.sub.is_none() => match inner.as_ref() {
                Expr::Compare(q, Op::Eq, Literal::Str(v)) if q.sub.is_none() => Some((
                    format!("{}.{}", p.lower(), q.name.to_lowercase()),
                    v.clone(),
                )),
                _ => None,
            },
            _ => None,
        }
    }
}

/// A PATCH path: `attrPath [ "[" valFilter "]" [ "." subAttr ] ]`.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct PatchPath {
    pub attr: AttrPath,
    pub filter: Option<Expr>,
    /// The sub-attribute after a value filter (`emails[type eq "work"].value`).
    pub sub: Option<String>,
}

/// Parses a PATCH `path`; `invalidPath` (400) on any error.
pub(crate) fn parse_patch_path(s: &str) -> Result<PatchPath, ScimError> {
    let mut p = Parser::new(s, ScimType::InvalidPath)?;
    let Some(tok) = p.next() else {
        return Err(p.error_here("the path is empty; expected an attribute path"));
    };
    let attr = p.attr_path(&tok)?;
    let mut filter = None;
    let mut sub = None;
    if p.peek_is(&Tok::LBracket) {
        p.next();
        if attr.sub.is_some() || attr.name.is_empty() {
            return Err(p.error_at(
                tok.pos,
                "a value filter follows an attribute, not a sub-attribute",
            ));
        }
        p.depth = 1;
        filter = Some(p.or_expr(true)?);
        p.expect(&Tok::RBracket, "']' to close the value filter")?;
        if let Some(Token {
            kind: Tok::Word(w),
            pos,
        }) = p.peek().cloned()
        {
            let Some(name) = w.strip_prefix('.') else {
                return Err(p.error_at(
                    pos,
                    &format!("expected '.' and a sub-attribute or the end, found '{w}'"),
                ));
            };
            p.next();
            let sp = AttrPath::parse(name).map_err(|e| p.error_at(pos + 1, &e))?;
            if sp.urn.is_some() || sp.sub.is_some() {
                return Err(p.error_at(
                    pos + 1,
                    &format!("expected one sub-attribute name, found '{name}'"),
                ));
            }
            sub = Some(sp.name);
        }
    }
    p.expect_end()?;
    Ok(PatchPath { attr, filter, sub })
}

#[derive(Debug, Clone, PartialEq)]
enum Tok {
    LParen,
    RParen,
    LBracket,
    RBracket,
    /// An attribute path, operator, keyword or bare number.
    Word(String),
    Str(String),
}

#[derive(Debug, Clone, PartialEq)]
struct Token {
    kind: Tok,
    /// Byte offset in the text.
    pos: usize,
}

fn describe(t: Option<&Token>) -> String {
    match t.map(|t| &t.kind) {
        None => "the end".into(),
        Some(Tok::LParen) => "'('".into(),
        Some(Tok::RParen) => "')'".into(),
        Some(Tok::LBracket) => "'['".into(),
        Some(Tok::RBracket) => "']'".into(),
        Some(Tok::Word(w)) => format!("'{w}'"),
        Some(Tok::Str(_)) => "a string".into(),
    }
}

fn is_word_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || matches!(c, '_' | ':' | '$' | '.' | '-' | '+')
}

/// Splits the text into tokens (a loop: no recursion). JSON strings are decoded by serde_json, so
/// escapes follow JSON exactly.
fn tokenize(s: &str, t: ScimType) -> Result<Vec<Token>, ScimError> {
    let bytes = s.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < bytes.len() {
        let c = bytes[i];
        let kind = match c {
            b' ' | b'\t' | b'\n' | b'\r' => {
                i += 1;
                continue;
            }
            b'(' => Tok::LParen,
            b')' => Tok::RParen,
            b'[' => Tok::LBracket,
            b']' => Tok::RBracket,
            b'"' => {
                let start = i;
                i += 1;
                loop {
                    match bytes.get(i) {
                        None => return Err(err_at(s, t, start, "unterminated string")),
                        Some(b'\\') => i += 2,
                        Some(b'"') => break,
                        Some(_) => i += 1,
                    }
                }
                let lit = s.get(start..=i).unwrap_or("");
                let v: String = serde_json::from_str(lit)
                    .map_err(|e| err_at(s, t, start, &format!("invalid string ({e})")))?;
                out.push(Token {
                    kind: Tok::Str(v),
                    pos: start,
                });
                i += 1;
                continue;
            }
            _ => {
                let start = i;
                let rest = &s[i..];
                let len: usize = rest
                    .chars()
                    .take_while(|c| is_word_char(*c))
                    .map(char::len_utf8)
                    .sum();
                if len == 0 {
                    let ch = rest.chars().next().unwrap_or(' ');
                    return Err(err_at(s, t, start, &format!("unexpected character '{ch}'")));
                }
                i += len;
                out.push(Token {
                    kind: Tok::Word(rest[..len].to_string()),
                    pos: start,
                });
                continue;
            }
        };
        out.push(Token { kind, pos: i });
        i += 1;
    }
    Ok(out)
}

/// The error at a byte offset, given as a 1-based character position.
fn err_at(s: &str, t: ScimType, pos: usize, msg: &str) -> ScimError {
    let ch = s.get(..pos).map_or(pos, |p| p.chars().count()) + 1;
    let what = if t == ScimType::InvalidPath {
        "path"
    } else {
        "filter"
    };
    ScimError::bad_request(t, format!("invalid {what} at character {ch}: {msg}"))
}

struct Parser<'a> {
    text: &'a str,
    toks: Vec<Token>,
    at: usize,
    depth: usize,
    kind: ScimType,
}

impl<'a> Parser<'a> {
    fn new(text: &'a str, kind: ScimType) -> Result<Self, ScimError> {
        if text.len() > MAX_LEN {
            let what = if kind == ScimType::InvalidPath {
                "path"
            } else {
                "filter"
            };
            return Err(ScimError::bad_request(
                kind,
                format!(
                    "the {what} is {} bytes long; at most {MAX_LEN} are accepted",
                    text.len()
                ),
            ));
        }
        Ok(Parser {
            text,
            toks: tokenize(text, kind)?,
            at: 0,
            depth: 0,
            kind,
        })
    }

    fn peek(&self) -> Option<&Token> {
        self.toks.get(self.at)
    }

    fn peek_is(&self, k: &Tok) -> bool {
        self.peek().is_some_and(|t| &t.kind == k)
    }

    fn peek_word(&self, w: &str) -> bool {
        matches!(self.peek(), Some(Token { kind: Tok::Word(x), .. }) if x.eq_ignore_ascii_case(w))
    }

    fn next(&mut self) -> Option<Token> {
        let t = self.toks.get(self.at).cloned();
        if t.is_some() {
            self.at += 1;
        }
        t
    }

    fn pos(&self) -> usize {
        self.peek().map_or(self.text.len(), |t| t.pos)
    }

    fn error_at(&self, pos: usize, msg: &str) -> ScimError {
        err_at(self.text, self.kind, pos, msg)
    }

    fn error_here(&self, msg: &str) -> ScimError {
        self.error_at(self.pos(), msg)
    }

    fn expected(&self, what: &str) -> ScimError {
        self.error_here(&format!("expected {what}, found {}", describe(self.peek())))
    }

    fn expect(&mut self, k: &Tok, what: &str) -> Result<(), ScimError> {
        if self.peek_is(k) {
            self.next();
            Ok(())
        } else {
            Err(self.expected(what))
        }
    }

    fn expect_end(&self) -> Result<(), ScimError> {
        match self.peek() {
            None => Ok(()),
            Some(_) => Err(self.expected("'and', 'or' or the end")),
        }
    }

    fn deeper(&mut self) -> Result<(), ScimError> {
        self.depth += 1;
        if self.depth > MAX_DEPTH {
            return Err(self.error_here(&format!(
                "nested deeper than {MAX_DEPTH} levels of parentheses, 'not' and brackets"
            )));
        }
        Ok(())
    }

    fn or_expr(&mut self, in_value: bool) -> Result<Expr, ScimError> {
        let mut terms = vec![self.and_expr(in_value)?];
        while self.peek_word("or") {
            self.next();
            terms.push(self.and_expr(in_value)?);
        }
        Ok(if terms.len() == 1 {
            terms.remove(0)
        } else {
            Expr::Or(terms)
        })
    }

    fn and_expr(&mut self, in_value: bool) -> Result<Expr, ScimError> {
        let mut terms = vec![self.unary(in_value)?];
        while self.peek_word("and") {
            self.next();
            terms.push(self.unary(in_value)?);
        }
        Ok(if terms.len() == 1 {
            terms.remove(0)
        } else {
            Expr::And(terms)
        })
    }

    fn unary(&mut self, in_value: bool) -> Result<Expr, ScimError> {
        if self.peek_word("not") {
            self.next();
            self.deeper()?;
            self.expect(&Tok::LParen, "'(' after 'not'")?;
            let e = self.or_expr(in_value)?;
            self.expect(&Tok::RParen, "')' to close 'not ('")?;
            self.depth -= 1;
            return Ok(Expr::Not(Box::new(e)));
        }
        if self.peek_is(&Tok::LParen) {
            self.deeper()?;
            self.next();
            let e = self.or_expr(in_value)?;
            self.expect(&Tok::RParen, "')' to close '('")?;
            self.depth -= 1;
            return Ok(e);
        }
        self.attr_expr(in_value)
    }

    fn attr_path(&self, tok: &Token) -> Result<AttrPath, ScimError> {
        match &tok.kind {
            Tok::Word(w) => {
                let p = AttrPath::parse(w).map_err(|e| self.error_at(tok.pos, &e))?;
                Ok(p)
            }
            _ => Err(self.error_at(
                tok.pos,
                &format!("expected an attribute path, found {}", describe(Some(tok))),
            )),
        }
    }

    fn attr_expr(&mut self, in_value: bool) -> Result<Expr, ScimError> {
        let Some(tok) = self.peek().cloned() else {
            return Err(self.expected("an attribute path, '(' or 'not'"));
        };
        if !matches!(tok.kind, Tok::Word(_)) {
            return Err(self.expected("an attribute path, '(' or 'not'"));
        }
        self.next();
        let path = self.attr_path(&tok)?;
        if path.name.is_empty() {
            return Err(self.error_at(tok.pos, "the path names a schema, not an attribute"));
        }
        if in_value && (path.urn.is_some() || path.sub.is_some()) {
            return Err(self.error_at(
                tok.pos,
                "inside a value filter, name a sub-attribute of the bracketed attribute",
            ));
        }
        if self.peek_is(&Tok::LBracket) {
            if in_value {
                return Err(self.error_here("value filters do not nest"));
            }
            if path.sub.is_some() {
                return Err(
                    self.error_here("a value filter follows an attribute, not a sub-attribute")
                );
            }
            self.deeper()?;
            self.next();
            let inner = self.or_expr(true)?;
            let close = self.pos();
            self.expect(&Tok::RBracket, "']' to close the value filter")?;
            self.depth -= 1;
            // `emails[type eq "work"].value eq "x"` (outside RFC 7644's grammar, sent by
            // Entra ID): some value matching the bracket whose sub-attribute compares.
            if let Some(Token {
                kind: Tok::Word(w),
                pos,
            }) = self.peek().cloned()
            {
                if let (Some(name), true) = (w.strip_prefix('.'), pos == close + 1) {
                    self.next();
                    let sp = AttrPath::parse(name).map_err(|e| self.error_at(pos + 1, &e))?;
                    if sp.urn.is_some() || sp.sub.is_some() {
                        return Err(self.error_at(
                            pos + 1,
                            &format!("expected one sub-attribute name, found '{name}'"),
                        ));
                    }
                    let cmp = self.comparison(sp)?;
                    let both = match inner {
                        Expr::And(mut v) => {
                            v.push(cmp);
                            Expr::And(v)
                        }
                        other => Expr::And(vec![other, cmp]),
                    };
                    return Ok(Expr::ValuePath(path, Box::new(both)));
                }
            }
            return Ok(Expr::ValuePath(path, Box::new(inner)));
        }
        self.comparison(path)
    }

    /// The operator and value after an attribute path.
    fn comparison(&mut self, path: AttrPath) -> Result<Expr, ScimError> {
        let Some(Token {
            kind: Tok::Word(opw),
            ..
        }) = self.peek().cloned()
        else {
            return Err(self.expected("an operator (eq ne co sw ew gt ge lt le pr)"));
        };
        if opw.eq_ignore_ascii_case("pr") {
            self.next();
            return Ok(Expr::Present(path));
        }
        let Some(op) = Op::parse(&opw) else {
            return Err(self.expected("an operator (eq ne co sw ew gt ge lt le pr)"));
        };
        self.next();
        let value = self.literal()?;
        Ok(Expr::Compare(path, op, value))
    }

    fn literal(&mut self) -> Result<Literal, ScimError> {
        const WHAT: &str =
            "a value (a JSON string in double quotes, a number, true, false or null)";
        let Some(tok) = self.peek().cloned() else {
            return Err(self.expected(WHAT));
        };
        let lit = match &tok.kind {
            Tok::Str(s) => Literal::Str(s.clone()),
            Tok::Word(w) if w.eq_ignore_ascii_case("true") => Literal::Bool(true),
            Tok::Word(w) if w.eq_ignore_ascii_case("false") => Literal::Bool(false),
            Tok::Word(w) if w.eq_ignore_ascii_case("null") => Literal::Null,
            Tok::Word(w) if w.starts_with(|c: char| c.is_ascii_digit() || c == '-') => {
                match serde_json::from_str::<Value>(w) {
                    Ok(Value::Number(n)) => Literal::Num(n),
                    _ => return Err(self.error_at(tok.pos, &format!("'{w}' is not a JSON number"))),
                }
            }
            _ => return Err(self.expected(WHAT)),
        };
        self.next();
        Ok(lit)
    }
}
