//! Policy variables: splitting a policy string into literal text, `${key}` / `${key, 'default'}`
//! variables, the escapes `${*}`, `${?}`, `${$}`, and (for patterns) the wildcards `*` and `?`;
//! and resolving variables against a request context.

use super::context::{ContextValue, RequestContext};

/// One piece of a compiled policy string.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Piece {
    /// Literal text (escapes already applied).
    Text(String),
    /// A policy variable.
    Var(Variable),
    /// `*`: any run of characters (patterns only).
    Star,
    /// `?`: exactly one character (patterns only).
    Question,
}

/// A `${key}` or `${key, 'default'}` policy variable.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Variable {
    /// The context key, lower-cased for lookup.
    pub(crate) key: String,
    /// The context key as written in the policy.
    pub(crate) name: String,
    /// The value used when the key has no single value.
    pub(crate) default: Option<String>,
}

impl Variable {
    /// The value of this variable in `ctx`: the key's single value, else the default. A
    /// multivalued key cannot be used as a variable.
    pub(crate) fn resolve<'a>(&'a self, ctx: &'a RequestContext) -> Option<&'a str> {
        match ctx.lookup(&self.key) {
            Some(ContextValue::Single(v)) => Some(v.as_str()),
            _ => self.default.as_deref(),
        }
    }
}

/// Splits `raw` into pieces. `variables` enables `${…}` (policy version 2012-10-17);
/// `wildcards` makes `*` and `?` special (StringLike, ArnLike, Action and Resource patterns).
pub(crate) fn parse(
    raw: &str,
    variables: bool,
    wildcards: bool,
) -> std::result::Result<Vec<Piece>, String> {
    let mut pieces: Vec<Piece> = Vec::new();
    let mut rest = raw;
    while let Some(c) = rest.chars().next() {
        if variables && rest.starts_with("${") {
            let Some(end) = rest.find('}') else {
                return Err(format!("unterminated policy variable in {raw:?}"));
            };
            let inner = &rest[2..end];
            match inner {
                "*" | "?" | "$" => push_text(&mut pieces, inner),
                _ => pieces.push(Piece::Var(parse_variable(inner, raw)?)),
            }
            rest = &rest[end + 1..];
            continue;
        }
        match c {
            '*' if wildcards => {
                if pieces.last() != Some(&Piece::Star) {
                    pieces.push(Piece::Star);
                }
            }
            '?' if wildcards => pieces.push(Piece::Question),
            _ => {
                let mut buf = [0u8; 4];
                push_text(&mut pieces, c.encode_utf8(&mut buf));
            }
        }
        rest = &rest[c.len_utf8()..];
    }
    Ok(pieces)
}

fn parse_variable(inner: &str, raw: &str) -> std::result::Result<Variable, String> {
    let (name, default) = match inner.split_once(',') {
        Some((name, default)) => {
            let default = default.trim();
            let quoted = default.len() >= 2 && default.starts_with('\'') && default.ends_with('\'');
            if !quoted {
                return Err(format!(
                    "the default value of policy variable ${{{inner}}} in {raw:?} must be in single quotes"
                ));
            }
            (name.trim(), Some(default[1..default.len() - 1].to_owned()))
        }
        None => (inner.trim(), None),
    };
    if name.is_empty() || name.contains(char::is_whitespace) || name.contains(['$', '{']) {
        return Err(format!("invalid policy variable ${{{inner}}} in {raw:?}"));
    }
    Ok(Variable {
        key: name.to_lowercase(),
        name: name.to_owned(),
        default,
    })
}

/// Appends literal text, merging it with a preceding text piece.
pub(crate) fn push_text(pieces: &mut Vec<Piece>, text: &str) {
    if text.is_empty() {
        return;
    }
    if let Some(Piece::Text(last)) = pieces.last_mut() {
        last.push_str(text);
    } else {
        pieces.push(Piece::Text(text.to_owned()));
    }
}

/// The variables without a default in `pieces`.
pub(crate) fn required_variables(pieces: &[Piece]) -> impl Iterator<Item = &Variable> {
    pieces.iter().filter_map(|p| match p {
        Piece::Var(v) if v.default.is_none() => Some(v),
        _ => None,
    })
}

/// A string compared for equality after resolving its variables (no wildcards).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Template {
    pieces: Vec<Piece>,
}

impl Template {
    pub(crate) fn new(pieces: Vec<Piece>) -> Self {
        Template { pieces }
    }

    pub(crate) fn pieces(&self) -> &[Piece] {
        &self.pieces
    }

    /// Whether every variable has a value in `ctx`.
    fn resolvable(&self, ctx: &RequestContext) -> bool {
        self.pieces.iter().all(|p| match p {
            Piece::Var(v) => v.resolve(ctx).is_some(),
            _ => true,
        })
    }

    /// The resolved parts, in order (only meaningful when [`Template::resolvable`]).
    fn parts<'a>(&'a self, ctx: &'a RequestContext) -> impl Iterator<Item = &'a str> + 'a {
        self.pieces.iter().map(move |p| match p {
            Piece::Text(t) => t.as_str(),
            Piece::Var(v) => v.resolve(ctx).unwrap_or_default(),
            Piece::Star => "*",
            Piece::Question => "?",
        })
    }

    /// Case-sensitive equality with `value`; false when a variable has no value.
    pub(crate) fn equals(&self, value: &str, ctx: &RequestContext) -> bool {
        if let [Piece::Text(t)] = self.pieces.as_slice() {
            return t == value;
        }
        if !self.resolvable(ctx) {
            return false;
        }
        let mut rest = value;
        for part in self.parts(ctx) {
            match rest.strip_prefix(part) {
                Some(r) => rest = r,
                None => return false,
            }
        }
        rest.is_empty()
    }

    /// Equality ignoring (Unicode) case; false when a variable has no value.
    pub(crate) fn equals_ignore_case(&self, value: &str, ctx: &RequestContext) -> bool {
        if !self.resolvable(ctx) {
            return false;
        }
        let ours = self
            .parts(ctx)
            .flat_map(str::chars)
            .flat_map(char::to_lowercase);
        value.chars().flat_map(char::to_lowercase).eq(ours)
    }

    /// The resolved string, or `None` when a variable has no value.
    pub(crate) fn resolve(&self, ctx: &RequestContext) -> Option<String> {
        self.resolvable(ctx).then(|| self.parts(ctx).collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn var(name: &str, default: Option<&str>) -> Piece {
        Piece::Var(Variable {
            key: name.to_lowercase(),
            name: name.to_owned(),
            default: default.map(str::to_owned),
        })
    }

    fn text(t: &str) -> Piece {
        Piece::Text(t.to_owned())
    }

    #[test]
    fn parses_variables_escapes_and_wildcards() {
        let cases: Vec<(&str, bool, bool, Vec<Piece>)> = vec![
            ("plain", true, true, vec![text("plain")]),
            (
                "home/${aws:username}/*",
                true,
                true,
                vec![
                    text("home/"),
                    var("aws:username", None),
                    text("/"),
                    Piece::Star,
                ],
            ),
            (
                "${aws:userid, 'anonymous'}",
                true,
                false,
                vec![var("aws:userid", Some("anonymous"))],
            ),
            (
                "${aws:userid,'a b'}x",
                true,
                false,
                vec![var("aws:userid", Some("a b")), text("x")],
            ),
            ("a${*}b${?}c${$}", true, true, vec![text("a*b?c$")]),
            (
                "a**?",
                true,
                true,
                vec![text("a"), Piece::Star, Piece::Question],
            ),
            ("a*?", true, false, vec![text("a*?")]),
            // Without variables (Version 2008-10-17) `${…}` is literal text.
            (
                "${aws:username}*",
                false,
                true,
                vec![text("${aws:username}"), Piece::Star],
            ),
            (
                "${token.actions.githubusercontent.com:sub}",
                true,
                false,
                vec![var("token.actions.githubusercontent.com:sub", None)],
            ),
            ("", true, true, vec![]),
            ("é?", true, true, vec![text("é"), Piece::Question]),
        ];
        for (raw, vars, wild, want) in cases {
            assert_eq!(parse(raw, vars, wild).unwrap(), want, "{raw}");
        }
    }

    #[test]
    fn rejects_malformed_variables() {
        for raw in [
            "${aws:username",
            "${}",
            "${ }",
            "${a, anonymous}",
            "${a, 'x}",
            "${a b}",
        ] {
            assert!(parse(raw, true, false).is_err(), "{raw}");
        }
    }

    #[test]
    fn template_equality_resolves_variables() {
        let mut ctx = RequestContext::new("s3:GetObject", "*");
        ctx.set_string("aws:username", "Alice");
        ctx.set_strings("aws:TagKeys", ["a", "b"]);
        let t = Template::new(parse("home/${aws:username}", true, false).unwrap());
        assert!(t.equals("home/Alice", &ctx));
        assert!(!t.equals("home/alice", &ctx));
        assert!(t.equals_ignore_case("HOME/ALICE", &ctx));
        assert_eq!(t.resolve(&ctx).as_deref(), Some("home/Alice"));

        let missing = Template::new(parse("${aws:userid}", true, false).unwrap());
        assert!(!missing.equals("", &ctx));
        assert_eq!(missing.resolve(&ctx), None);

        let defaulted = Template::new(parse("${aws:userid, 'anonymous'}", true, false).unwrap());
        assert!(defaulted.equals("anonymous", &ctx));

        // A multivalued key is not a variable value.
        let multi = Template::new(parse("${aws:TagKeys}", true, false).unwrap());
        assert!(!multi.equals("a", &ctx));
    }
}
