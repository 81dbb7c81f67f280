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
}

impl Glob {
    pub(crate) fn new(pieces: Vec<Piece>, ignore_ascii_case: bool) -> Self {
        Glob {
            pieces,
            ignore_ascii_case,
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

    /// Whether `value` matches. A variable without a value makes the pattern match nothing.
    pub(crate) fn matches(&self, value: &str, ctx: &RequestContext) -> bool {
        let v = value.as_bytes();
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
                    let np = rp + char_len(v[rp]);
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
    Fields(Vec<Glob>),
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
        ArnPattern::Fields(fields.into_iter().map(|f| Glob::new(f, false)).collect())
    }

    /// Whether `value` matches (case-sensitively).
    pub(crate) fn matches(&self, value: &str, ctx: &RequestContext) -> bool {
        let fields = match self {
            ArnPattern::Any => return true,
            ArnPattern::Fields(fields) => fields,
        };
        let n = fields.len();
        let mut rest = value;
        for (i, glob) in fields.iter().enumerate() {
            if i + 1 == n {
                if i == 5 || glob.ends_with_star() {
                    // The sixth field, or a trailing `*` in a shorter pattern, takes the rest.
                    return glob.matches(rest, ctx);
                }
                return !rest.contains(':') && glob.matches(rest, ctx);
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
