//! Wildcard matching: `*`/`?` patterns (with policy variables resolved during the match, without
//! allocating) and ARN patterns matched field by field.

use super::context::RequestContext;
use super::variables::Piece;

/// A compiled `*`/`?` pattern.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Glob {
    pieces: Vec<Piece>,
    /// Compare ASCII letters ignoring case (action names).
    ignore_ascii_case: bool,
    /// The common shapes, matched without the general algorithm (derived from `pieces`).
    shape: Shape,
}

/// The shape of a pattern's pieces.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Shape {
    /// `*` alone.
    Any,
    /// Literal text alone (or nothing: only the empty value matches).
    Exact,
    /// Literal text then `*`.
    Prefix,
    /// Anything else (`?`, variables, inner `*`).
    General,
}

impl Glob {
    pub(crate) fn new(pieces: Vec<Piece>, ignore_ascii_case: bool) -> Self {
        let shape = match pieces.as_slice() {
            [Piece::Star] => Shape::Any,
            [] | [Piece::Text(_)] => Shape::Exact,
            [Piece::Text(_), Piece::Star] => Shape::Prefix,
            _ => Shape::General,
        };
        Glob {
            pieces,
            ignore_ascii_case,
            shape,
        }
    }

    /// The literal text of an [`Shape::Exact`] or [`Shape::Prefix`] pattern.
    fn leading_text(&self) -> &[u8] {
        match self.pieces.first() {
            Some(Piece::Text(t)) => t.as_bytes(),
            _ => &[],
        }
    }

    /// The text this pattern matches exactly, when it is literal text (no wildcard, no variable).
    pub(crate) fn literal(&self) -> Option<&str> {
        if self.shape != Shape::Exact {
            return None;
        }
        match self.pieces.first() {
            Some(Piece::Text(t)) => Some(t),
            _ => Some(""),
        }
    }

    pub(crate) fn pieces(&self) -> &[Piece] {
        &self.pieces
    }

    /// Whether the pattern's last piece is `*`.
    pub(crate) fn ends_with_star(&self) -> bool {
        self.pieces.last() == Some(&Piece::Star)
    }

    fn literal_at(&self, value: &[u8], at: usize, lit: &[u8]) -> bool {
        let Some(candidate) = value.get(at..at + lit.len()) else {
            return false;
        };
        if self.ignore_ascii_case {
            candidate.eq_ignore_ascii_case(lit)
        } else {
            candidate == lit
        }
    }

    /// The first position at or after `from` where `lit` occurs in `value`.
    fn find(&self, value: &[u8], from: usize, lit: &[u8]) -> Option<usize> {
        let hay = value.get(from..)?;
        if lit.is_empty() {
            Some(from)
        } else if self.ignore_ascii_case {
            hay.windows(lit.len())
                .position(|w| w.eq_ignore_ascii_case(lit))
                .map(|i| from + i)
        } else {
            memchr::memmem::find(hay, lit).map(|i| from + i)
        }
    }

    /// Whether `value` matches. A variable without a value makes the pattern match nothing.
    pub(crate) fn matches(&self, value: &str, ctx: &RequestContext) -> bool {
        let v = value.as_bytes();
        match self.shape {
            Shape::Any => return true,
            Shape::Exact => {
                let lit = self.leading_text();
                return v.len() == lit.len() && self.literal_at(v, 0, lit);
            }
            Shape::Prefix => return self.literal_at(v, 0, self.leading_text()),
            Shape::General => {}
        }
        let pieces = self.pieces.as_slice();
        let (mut t, mut p) = (0usize, 0usize);
        // Where to resume after the most recent `*`: (piece index after it, value position).
        let mut resume: Option<(usize, usize)> = None;
        loop {
            if let Some(piece) = pieces.get(t) {
                let step = match piece {
                    Piece::Star => {
                        resume = Some((t + 1, p));
                        t += 1;
                        continue;
                    }
                    Piece::Question => (p < v.len()).then(|| char_len(v[p])),
                    Piece::Text(lit) => self.literal_at(v, p, lit.as_bytes()).then_some(lit.len()),
                    Piece::Var(var) => match var.resolve(ctx) {
                        Some(s) => self.literal_at(v, p, s.as_bytes()).then_some(s.len()),
                        None => return false,
                    },
                };
                if let Some(n) = step {
                    p += n;
                    t += 1;
                    continue;
                }
            } else if p == v.len() {
                return true;
            }
            match resume {
                Some((rt, rp)) if rp < v.len() => {
                    let mut np = rp + char_len(v[rp]);
                    // The star takes more of the value: skip straight to where the text after it
                    // next occurs. Resumption only moves forward, so if it occurs nowhere further
                    // on, nothing can match. (A match of valid UTF-8 text starts on a character
                    // boundary.)
                    if let Some(Piece::Text(lit)) = pieces.get(rt) {
                        match self.find(v, np, lit.as_bytes()) {
                            Some(i) => np = i,
                            None => return false,
                        }
                    }
                    resume = Some((rt, np));
                    t = rt;
                    p = np;
                }
                _ => return false,
            }
        }
    }
}

/// Length of the UTF-8 sequence starting with byte `b`.
fn char_len(b: u8) -> usize {
    match b {
        0xF0..=0xFF => 4,
        0xE0..=0xEF => 3,
        0xC0..=0xDF => 2,
        _ => 1,
    }
}

/// A compiled resource or ARN pattern.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum ArnPattern {
    /// `*`: every resource.
    Any,
    /// Up to six `:`-separated fields; the sixth holds the rest of the ARN, colons included.
    Fields(ArnFields),
}

/// The fields of an ARN pattern, with its leading literal fields joined for a single comparison.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ArnFields {
    globs: Vec<Glob>,
    /// The leading fields that are literal text (not counting the last field), each followed by
    /// `:`, e.g. `arn:aws:s3:::`.
    prefix: String,
    /// How many fields `prefix` covers.
    prefix_fields: usize,
}

impl ArnFields {
    fn new(globs: Vec<Glob>) -> Self {
        let mut prefix = String::new();
        let mut prefix_fields = 0;
        for glob in &globs[..globs.len().saturating_sub(1)] {
            let Some(lit) = glob.literal() else { break };
            // Literal text in the first five fields never contains `:` (see `ArnPattern::new`).
            prefix.push_str(lit);
            prefix.push(':');
            prefix_fields += 1;
        }
        ArnFields {
            globs,
            prefix,
            prefix_fields,
        }
    }
}

impl<'a> IntoIterator for &'a ArnFields {
    type Item = &'a Glob;
    type IntoIter = std::slice::Iter<'a, Glob>;

    fn into_iter(self) -> Self::IntoIter {
        self.globs.iter()
    }
}

impl ArnPattern {
    /// Compiles a pattern already split into pieces.
    pub(crate) fn new(pieces: Vec<Piece>) -> Self {
        if pieces == [Piece::Star] {
            return ArnPattern::Any;
        }
        let mut fields: Vec<Vec<Piece>> = vec![Vec::new()];
        for piece in pieces {
            match piece {
                Piece::Text(text) => {
                    let mut rest = text.as_str();
                    while fields.len() < 6 {
                        let Some(i) = rest.find(':') else { break };
                        push(&mut fields, &rest[..i]);
                        fields.push(Vec::new());
                        rest = &rest[i + 1..];
                    }
                    push(&mut fields, rest);
                }
                other => {
                    if let Some(last) = fields.last_mut() {
                        last.push(other);
                    }
                }
            }
        }
        ArnPattern::Fields(ArnFields::new(
            fields.into_iter().map(|f| Glob::new(f, false)).collect(),
        ))
    }

    /// Whether `value` matches (case-sensitively).
    pub(crate) fn matches(&self, value: &str, ctx: &RequestContext) -> bool {
        let fields = match self {
            ArnPattern::Any => return true,
            ArnPattern::Fields(fields) => fields,
        };
        // The leading literal fields, compared at once: field by field they would each have to be
        // exactly that text followed by `:`.
        let Some(mut rest) = value.strip_prefix(fields.prefix.as_str()) else {
            return false;
        };
        let n = fields.globs.len();
        for (i, glob) in fields.globs.iter().enumerate().skip(fields.prefix_fields) {
            if i + 1 == n {
                if i == 5 || glob.ends_with_star() {
                    // The sixth field, or a trailing `*` in a shorter pattern, takes the rest.
                    return glob.matches(rest, ctx);
                }
                return !rest.contains(':') && glob.matches(rest, ctx);
            }
            if let Some(lit) = glob.literal() {
                // Literal text in the first five fields never contains `:` (see `new`), so the
                // field matches when the value goes on with exactly that text and a `:`.
                debug_assert!(!lit.contains(':'));
                let (b, lit) = (rest.as_bytes(), lit.as_bytes());
                if b.len() > lit.len() && b[lit.len()] == b':' && b[..lit.len()] == *lit {
                    rest = &rest[lit.len() + 1..];
                    continue;
                }
                return false;
            }
            let Some((field, tail)) = rest.split_once(':') else {
                return false;
            };
            if !glob.matches(field, ctx) {
                return false;
            }
            rest = tail;
        }
        false
    }
}

fn push(fields: &mut [Vec<Piece>], text: &str) {
    if let Some(last) = fields.last_mut() {
        super::variables::push_text(last, text);
    }
}

#[cfg(test)]
mod tests {
    use super::super::variables;
    use super::*;

    fn glob(p: &str, ci: bool) -> Glob {
        Glob::new(variables::parse(p, true, true).unwrap(), ci)
    }

    fn arn(p: &str) -> ArnPattern {
        ArnPattern::new(variables::parse(p, true, true).unwrap())
    }

    #[test]
    fn glob_table() {
        let ctx = RequestContext::new("a:b", "*");
        let cases: &[(&str, &str, bool)] = &[
            ("*", "", true),
            ("*", "anything at all", true),
            ("", "", true),
            ("", "x", false),
            ("abc", "abc", true),
            ("abc", "abcd", false),
            ("a?c", "abc", true),
            ("a?c", "ac", false),
            ("a*c", "ac", true),
            ("a*c", "abbbc", true),
            ("a*c", "abbbd", false),
            ("*c*c", "cc", true),
            ("*c*c", "acbc", true),
            ("*c*c", "acb", false),
            ("a*b*c*d", "aXbYcZd", true),
            ("a*b*c*d", "aXbYcZ", false),
            ("*ab", "aab", true),
            ("?", "é", true),
            ("??", "é", false),
            ("é*", "éa", true),
            ("Abc", "abc", false),
        ];
        for (p, v, want) in cases {
            assert_eq!(glob(p, false).matches(v, &ctx), *want, "{p} vs {v}");
        }
    }

    #[test]
    fn glob_ignoring_ascii_case() {
        let ctx = RequestContext::new("a:b", "*");
        assert!(glob("sts:AssumeRole*", true).matches("STS:assumerolewithwebidentity", &ctx));
        assert!(!glob("sts:AssumeRole", true).matches("sts:AssumeRoleWithSAML", &ctx));
        assert!(!glob("sts:AssumeRole*", false).matches("STS:assumerole", &ctx));
    }

    #[test]
    fn glob_variables_and_escapes() {
        let mut ctx = RequestContext::new("a:b", "*");
        ctx.set_string("aws:username", "bob");
        assert!(glob("home/${aws:username}/*", false).matches("home/bob/x", &ctx));
        assert!(!glob("home/${aws:username}/*", false).matches("home/alice/x", &ctx));
        // No value and no default: nothing matches, not even a wildcard-looking value.
        assert!(!glob("${aws:userid}*", false).matches("", &ctx));
        assert!(glob("${aws:userid, 'anon'}*", false).matches("anon-1", &ctx));
        // `${*}` is a literal asterisk.
        assert!(glob("a${*}", false).matches("a*", &ctx));
        assert!(!glob("a${*}", false).matches("ab", &ctx));
        assert!(glob("a${?}", false).matches("a?", &ctx));
        assert!(!glob("a${?}", false).matches("ab", &ctx));
    }

    #[test]
    fn arn_table() {
        let ctx = RequestContext::new("a:b", "*");
        let cases: &[(&str, &str, bool)] = &[
            ("*", "arn:aws:s3:::b", true),
            ("*", "*", true),
            ("arn:aws:s3:::bucket/*", "arn:aws:s3:::bucket/a/b:c", true),
            ("arn:aws:s3:::bucket/*", "arn:aws:s3:::bucket", false),
            ("arn:aws:s3:::bucket/*", "arn:aws:s3:::Bucket/a", false),
            ("arn:aws:s3:::*", "arn:aws:s3:::any/thing", true),
            ("arn:aws:iam::*:role/x", "arn:aws:iam::123456789012:role/x", true),
            ("arn:aws:iam::*:role/x", "arn:aws:iam::123456789012:role/y", false),
            // A wildcard in the first five fields does not cross a colon (the ArnLike example).
            (
                "arn:aws:someservice:*:111122223333:finance/*",
                "arn:aws:someservice:us-east-2:999999999999:store/abc:111122223333:finance/document.txt",
                false,
            ),
            (
                "arn:aws:someservice:*:111122223333:finance/*",
                "arn:aws:someservice:us-east-2:111122223333:finance/document.txt",
                true,
            ),
            // The resource field may contain colons.
            (
                "arn:aws:logs:us-east-1:123456789012:log-group:app:*",
                "arn:aws:logs:us-east-1:123456789012:log-group:app:log-stream:x",
                true,
            ),
            // A trailing `*` in a short pattern takes the rest of the ARN.
            ("arn:aws:ec2:*", "arn:aws:ec2:us-east-1:123456789012:instance/i-1", true),
            ("arn:aws:ec2:*", "arn:aws:s3:::bucket", false),
            ("arn:aws:ec2:us-*", "arn:aws:ec2:us-east-1:1:instance/i-1", true),
            // A short pattern without a trailing `*` needs exactly its fields.
            ("arn:aws:ec2", "arn:aws:ec2:us-east-1:1:instance/i-1", false),
            // ... and its wildcards do not reach across the colon after it.
            ("arn:aws:s3:b?x", "arn:aws:s3:b:x", false),
            ("arn:aws:s3:b?x", "arn:aws:s3:b-x", true),
            ("arn:aws:s3:::b", "*", false),
            ("arn:aws:s3:::b", "arn:aws:s3:::b", true),
            ("arn:aws:s3:::b?", "arn:aws:s3:::b1", true),
            ("arn:aws:s3:::b?", "arn:aws:s3:::b", false),
            ("arn:aws:s?:::b", "arn:aws:s3:::b", true),
            ("arn:aws:s?:::b", "arn:aws:s:::b", false),
        ];
        for (p, v, want) in cases {
            assert_eq!(arn(p).matches(v, &ctx), *want, "{p} vs {v}");
        }
    }

    /// `*`/`?` matching by recursion on characters: slow and obviously right.
    fn naive_glob(p: &[char], v: &[char]) -> bool {
        match p.split_first() {
            None => v.is_empty(),
            Some(('*', rest)) => (0..=v.len()).any(|i| naive_glob(rest, &v[i..])),
            Some(('?', rest)) => !v.is_empty() && naive_glob(rest, &v[1..]),
            Some((c, rest)) => v.first() == Some(c) && naive_glob(rest, &v[1..]),
        }
    }

    /// ARN matching as IAM describes it, written out naively: up to six `:`-separated fields,
    /// wildcards stay within a field, and the last field takes the rest of the ARN when it is the
    /// sixth or ends with `*`.
    fn naive_arn(p: &str, v: &str) -> bool {
        if p == "*" {
            return true;
        }
        let pf: Vec<&str> = p.splitn(6, ':').collect();
        let n = pf.len();
        let last_takes_rest = n == 6 || pf[n - 1].ends_with('*');
        let vf: Vec<&str> = if last_takes_rest {
            v.splitn(n, ':').collect()
        } else {
            v.split(':').collect()
        };
        vf.len() == n
            && pf.iter().zip(&vf).all(|(p, v)| {
                let (p, v): (Vec<char>, Vec<char>) = (p.chars().collect(), v.chars().collect());
                naive_glob(&p, &v)
            })
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(4096))]

        /// The compiled matcher (with its literal-prefix and literal-field shortcuts) agrees
        /// with the naive one on patterns and values over a small alphabet rich in separators.
        #[test]
        fn arn_patterns_agree_with_a_naive_matcher(
            p in "[ab:*?/]{0,14}",
            v in "[ab:/é]{0,14}",
        ) {
            let ctx = RequestContext::new("a:b", "*");
            proptest::prop_assert_eq!(arn(&p).matches(&v, &ctx), naive_arn(&p, &v), "{} vs {}", p, v);
        }

        /// Likewise for plain globs, with and without ASCII case folding.
        #[test]
        fn globs_agree_with_a_naive_matcher(p in "[aB*?]{0,8}", v in "[abAB]{0,8}") {
            let ctx = RequestContext::new("a:b", "*");
            let (pc, vc): (Vec<char>, Vec<char>) = (p.chars().collect(), v.chars().collect());
            proptest::prop_assert_eq!(glob(&p, false).matches(&v, &ctx), naive_glob(&pc, &vc));
            let (pl, vl): (Vec<char>, Vec<char>) = (
                p.to_ascii_lowercase().chars().collect(),
                v.to_ascii_lowercase().chars().collect(),
            );
            proptest::prop_assert_eq!(glob(&p, true).matches(&v, &ctx), naive_glob(&pl, &vl));
        }
    }

    #[test]
    fn arn_variables_resolve_within_fields() {
        let mut ctx = RequestContext::new("a:b", "*");
        ctx.set_string("aws:username", "bob");
        ctx.set_string("aws:PrincipalAccount", "123456789012");
        let p = arn("arn:aws:s3:::bucket/${aws:username}/*");
        assert!(p.matches("arn:aws:s3:::bucket/bob/file", &ctx));
        assert!(!p.matches("arn:aws:s3:::bucket/eve/file", &ctx));
        let q = arn("arn:aws:iam::${aws:PrincipalAccount}:role/*");
        assert!(q.matches("arn:aws:iam::123456789012:role/r", &ctx));
        assert!(!q.matches("arn:aws:iam::999999999999:role/r", &ctx));
        // A variable value is matched inside its field and cannot span fields.
        ctx.set_string("x:y", "1:2");
        let r = arn("arn:aws:svc:${x:y}:res");
        assert!(!r.matches("arn:aws:svc:1:2:res", &ctx));
    }
}
