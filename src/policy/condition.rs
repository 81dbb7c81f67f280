//! Condition operators: parsing operator names, compiling condition values once at parse time, and
//! evaluating one operator/key pair against the request context.

use std::cmp::Ordering;
use std::net::IpAddr;

use base64::Engine as _;
use chrono::NaiveDate;
use ipnet::IpNet;

use super::context::{ContextValue, RequestContext};
use super::variables::{self, Piece, Template, Variable};
use super::wildcard::{ArnPattern, Glob};

/// A condition operator without its `ForAnyValue:`/`ForAllValues:` prefix and `IfExists` suffix.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Base {
    StringEquals,
    StringNotEquals,
    StringEqualsIgnoreCase,
    StringNotEqualsIgnoreCase,
    StringLike,
    StringNotLike,
    NumericEquals,
    NumericNotEquals,
    NumericLessThan,
    NumericLessThanEquals,
    NumericGreaterThan,
    NumericGreaterThanEquals,
    DateEquals,
    DateNotEquals,
    DateLessThan,
    DateLessThanEquals,
    DateGreaterThan,
    DateGreaterThanEquals,
    Bool,
    BinaryEquals,
    IpAddress,
    NotIpAddress,
    ArnEquals,
    ArnLike,
    ArnNotEquals,
    ArnNotLike,
    Null,
}

const BASES: [(&str, Base); 27] = [
    ("StringEquals", Base::StringEquals),
    ("StringNotEquals", Base::StringNotEquals),
    ("StringEqualsIgnoreCase", Base::StringEqualsIgnoreCase),
    ("StringNotEqualsIgnoreCase", Base::StringNotEqualsIgnoreCase),
    ("StringLike", Base::StringLike),
    ("StringNotLike", Base::StringNotLike),
    ("NumericEquals", Base::NumericEquals),
    ("NumericNotEquals", Base::NumericNotEquals),
    ("NumericLessThan", Base::NumericLessThan),
    ("NumericLessThanEquals", Base::NumericLessThanEquals),
    ("NumericGreaterThan", Base::NumericGreaterThan),
    ("NumericGreaterThanEquals", Base::NumericGreaterThanEquals),
    ("DateEquals", Base::DateEquals),
    ("DateNotEquals", Base::DateNotEquals),
    ("DateLessThan", Base::DateLessThan),
    ("DateLessThanEquals", Base::DateLessThanEquals),
    ("DateGreaterThan", Base::DateGreaterThan),
    ("DateGreaterThanEquals", Base::DateGreaterThanEquals),
    ("Bool", Base::Bool),
    ("BinaryEquals", Base::BinaryEquals),
    ("IpAddress", Base::IpAddress),
    ("NotIpAddress", Base::NotIpAddress),
    ("ArnEquals", Base::ArnEquals),
    ("ArnLike", Base::ArnLike),
    ("ArnNotEquals", Base::ArnNotEquals),
    ("ArnNotLike", Base::ArnNotLike),
    ("Null", Base::Null),
];

impl Base {
    /// Negated operators are true for a missing key and when no value matches.
    pub(crate) fn negated(self) -> bool {
        matches!(
            self,
            Base::StringNotEquals
                | Base::StringNotEqualsIgnoreCase
                | Base::StringNotLike
                | Base::NumericNotEquals
                | Base::DateNotEquals
                | Base::NotIpAddress
                | Base::ArnNotEquals
                | Base::ArnNotLike
        )
    }

    /// Whether values of this operator may contain policy variables.
    fn takes_variables(self) -> bool {
        matches!(
            self,
            Base::StringEquals
                | Base::StringNotEquals
                | Base::StringEqualsIgnoreCase
                | Base::StringNotEqualsIgnoreCase
                | Base::StringLike
                | Base::StringNotLike
                | Base::Bool
                | Base::ArnEquals
                | Base::ArnLike
                | Base::ArnNotEquals
                | Base::ArnNotLike
        )
    }
}

/// The `ForAnyValue:`/`ForAllValues:` prefix.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum SetQualifier {
    None,
    ForAnyValue,
    ForAllValues,
}

/// A parsed operator name.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Operator {
    pub(crate) base: Base,
    pub(crate) qualifier: SetQualifier,
    pub(crate) if_exists: bool,
}

/// Parses an operator name such as `ForAllValues:StringLikeIfExists`.
pub(crate) fn parse_operator(name: &str) -> std::result::Result<Operator, String> {
    let (qualifier, rest) = if let Some(rest) = name.strip_prefix("ForAnyValue:") {
        (SetQualifier::ForAnyValue, rest)
    } else if let Some(rest) = name.strip_prefix("ForAllValues:") {
        (SetQualifier::ForAllValues, rest)
    } else {
        (SetQualifier::None, name)
    };
    let (if_exists, base_name) = match rest.strip_suffix("IfExists") {
        Some(b) => (true, b),
        None => (false, rest),
    };
    let Some(base) = BASES.iter().find(|(n, _)| *n == base_name).map(|(_, b)| *b) else {
        return Err(format!("unknown condition operator {name:?}"));
    };
    if base == Base::Null && if_exists {
        return Err("the Null operator cannot take the IfExists suffix".to_owned());
    }
    if base == Base::Null && qualifier != SetQualifier::None {
        return Err("the Null operator cannot take a ForAnyValue:/ForAllValues: prefix".to_owned());
    }
    Ok(Operator {
        base,
        qualifier,
        if_exists,
    })
}

/// A `Bool` condition value: a literal or a template resolved at evaluation.
#[derive(Debug, Clone, PartialEq, Eq)]
enum BoolValue {
    Literal(bool),
    Template(Template),
}

/// Condition values compiled for their operator family.
#[derive(Debug, Clone, PartialEq)]
enum Matchers {
    Str(Vec<Template>),
    StrIgnoreCase(Vec<Template>),
    Like(Vec<Glob>),
    Num(Vec<Num>),
    Date(Vec<i64>),
    Bool(Vec<BoolValue>),
    Binary(Vec<Vec<u8>>),
    Ip(Vec<IpNet>),
    Arn(Vec<ArnPattern>),
    Null(Vec<bool>),
}

/// One operator/key pair of a `Condition` block, compiled.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Condition {
    /// The operator as written.
    pub(crate) operator: String,
    /// The condition key as written.
    pub(crate) key_name: String,
    /// The condition key, lower-cased.
    pub(crate) key: String,
    /// The values as written (JSON numbers and booleans as text).
    pub(crate) raw_values: Vec<String>,
    pub(crate) op: Operator,
    matchers: Matchers,
}

/// The result of evaluating one condition.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Outcome {
    pub(crate) matched: bool,
    /// The key was absent from the request context.
    pub(crate) missing: bool,
}

impl Condition {
    /// Compiles the values of one operator/key pair. On error returns the index of the offending
    /// value (if one value is at fault) and a message.
    pub(crate) fn compile(
        operator: &str,
        op: Operator,
        key_name: &str,
        raw_values: Vec<String>,
        variables_enabled: bool,
    ) -> std::result::Result<Condition, (Option<usize>, String)> {
        let vars = variables_enabled && op.base.takes_variables();
        let pieces = |raw: &str, wild: bool| variables::parse(raw, vars, wild);
        let matchers = match op.base {
            Base::StringEquals | Base::StringNotEquals => {
                Matchers::Str(compile_all(&raw_values, |r| {
                    pieces(r, false).map(Template::new)
                })?)
            }
            Base::StringEqualsIgnoreCase | Base::StringNotEqualsIgnoreCase => {
                Matchers::StrIgnoreCase(compile_all(&raw_values, |r| {
                    pieces(r, false).map(Template::new)
                })?)
            }
            Base::StringLike | Base::StringNotLike => {
                Matchers::Like(compile_all(&raw_values, |r| {
                    pieces(r, true).map(|p| Glob::new(p, false))
                })?)
            }
            Base::NumericEquals
            | Base::NumericNotEquals
            | Base::NumericLessThan
            | Base::NumericLessThanEquals
            | Base::NumericGreaterThan
            | Base::NumericGreaterThanEquals => Matchers::Num(compile_all(&raw_values, |r| {
                parse_num(r).ok_or_else(|| format!("{r:?} is not a number"))
            })?),
            Base::DateEquals
            | Base::DateNotEquals
            | Base::DateLessThan
            | Base::DateLessThanEquals
            | Base::DateGreaterThan
            | Base::DateGreaterThanEquals => Matchers::Date(compile_all(&raw_values, |r| {
                parse_date(r)
                    .ok_or_else(|| format!("{r:?} is not an ISO 8601 date or epoch seconds"))
            })?),
            Base::Bool => Matchers::Bool(compile_all(&raw_values, |r| {
                let p = pieces(r, false)?;
                if p.iter().any(|x| matches!(x, Piece::Var(_))) {
                    return Ok(BoolValue::Template(Template::new(p)));
                }
                parse_bool(r)
                    .map(BoolValue::Literal)
                    .ok_or_else(|| format!("{r:?} is not true or false"))
            })?),
            Base::BinaryEquals => Matchers::Binary(compile_all(&raw_values, |r| {
                base64::engine::general_purpose::STANDARD
                    .decode(r)
                    .map_err(|_| format!("{r:?} is not base64"))
            })?),
            Base::IpAddress | Base::NotIpAddress => Matchers::Ip(compile_all(&raw_values, |r| {
                parse_net(r).ok_or_else(|| format!("{r:?} is not an IP address or CIDR range"))
            })?),
            Base::ArnEquals | Base::ArnLike | Base::ArnNotEquals | Base::ArnNotLike => {
                Matchers::Arn(compile_all(&raw_values, |r| {
                    pieces(r, true).map(ArnPattern::new)
                })?)
            }
            Base::Null => Matchers::Null(compile_all(&raw_values, |r| {
                parse_bool(r).ok_or_else(|| format!("Null takes true or false, not {r:?}"))
            })?),
        };
        Ok(Condition {
            operator: operator.to_owned(),
            key_name: key_name.to_owned(),
            key: key_name.to_lowercase(),
            raw_values,
            op,
            matchers,
        })
    }

    /// The policy variables without a default used by this condition's values.
    pub(crate) fn required_variables(&self) -> Vec<&Variable> {
        let mut out = Vec::new();
        match &self.matchers {
            Matchers::Str(ts) | Matchers::StrIgnoreCase(ts) => {
                for t in ts {
                    out.extend(variables::required_variables(t.pieces()));
                }
            }
            Matchers::Like(gs) => {
                for g in gs {
                    out.extend(variables::required_variables(g.pieces()));
                }
            }
            Matchers::Bool(bs) => {
                for b in bs {
                    if let BoolValue::Template(t) = b {
                        out.extend(variables::required_variables(t.pieces()));
                    }
                }
            }
            Matchers::Arn(ps) => {
                for p in ps {
                    if let ArnPattern::Fields(fields) = p {
                        for g in fields {
                            out.extend(variables::required_variables(g.pieces()));
                        }
                    }
                }
            }
            _ => {}
        }
        out
    }

    /// Whether one request value satisfies the operator (negation included).
    fn satisfied_by(&self, value: &str, ctx: &RequestContext) -> bool {
        self.any_match(value, ctx) != self.op.base.negated()
    }

    /// Whether `value` matches any policy value under the positive form of the operator.
    fn any_match(&self, value: &str, ctx: &RequestContext) -> bool {
        let base = self.op.base;
        match &self.matchers {
            Matchers::Str(ts) => ts.iter().any(|t| t.equals(value, ctx)),
            Matchers::StrIgnoreCase(ts) => ts.iter().any(|t| t.equals_ignore_case(value, ctx)),
            Matchers::Like(gs) => gs.iter().any(|g| g.matches(value, ctx)),
            Matchers::Num(ns) => match parse_num(value) {
                Some(x) => ns.iter().any(|n| ordering_satisfies(base, cmp_num(x, *n))),
                None => false,
            },
            Matchers::Date(ds) => match parse_date(value) {
                Some(x) => ds.iter().any(|d| ordering_satisfies(base, Some(x.cmp(d)))),
                None => false,
            },
            Matchers::Bool(bs) => match parse_bool(value) {
                Some(x) => bs.iter().any(|b| match b {
                    BoolValue::Literal(l) => *l == x,
                    BoolValue::Template(t) => {
                        t.resolve(ctx).and_then(|s| parse_bool(&s)) == Some(x)
                    }
                }),
                None => false,
            },
            Matchers::Binary(bs) => match base64::engine::general_purpose::STANDARD.decode(value) {
                Ok(bytes) => bs.contains(&bytes),
                Err(_) => false,
            },
            Matchers::Ip(nets) => match parse_request_ip(value) {
                Some(RequestIp::Addr(a)) => nets.iter().any(|n| n.contains(&a)),
                Some(RequestIp::Net(r)) => nets.iter().any(|n| n.contains(&r)),
                None => false,
            },
            Matchers::Arn(ps) => ps.iter().any(|p| p.matches(value, ctx)),
            Matchers::Null(_) => false,
        }
    }

    /// Evaluates this operator/key pair against the request context.
    pub(crate) fn evaluate(&self, ctx: &RequestContext) -> Outcome {
        let Some(value) = ctx.lookup(&self.key) else {
            let matched = match (&self.matchers, self.op.qualifier) {
                (Matchers::Null(bs), _) => bs.contains(&true),
                _ if self.op.if_exists => true,
                (_, SetQualifier::ForAllValues) => true,
                (_, SetQualifier::ForAnyValue) => false,
                (_, SetQualifier::None) => self.op.base.negated(),
            };
            return Outcome {
                matched,
                missing: true,
            };
        };
        let matched = match (&self.matchers, self.op.qualifier) {
            (Matchers::Null(bs), _) => bs.contains(&value.is_null()),
            (_, SetQualifier::ForAllValues) => {
                value.as_set().iter().all(|v| self.satisfied_by(v, ctx))
            }
            (_, SetQualifier::ForAnyValue) => {
                value.as_set().iter().any(|v| self.satisfied_by(v, ctx))
            }
            (_, SetQualifier::None) => match value {
                ContextValue::Single(v) => self.satisfied_by(v, ctx),
                ContextValue::Multi(vs) if self.op.base.negated() => {
                    vs.iter().all(|v| self.satisfied_by(v, ctx))
                }
                ContextValue::Multi(vs) => vs.iter().any(|v| self.satisfied_by(v, ctx)),
            },
        };
        Outcome {
            matched,
            missing: false,
        }
    }

    /// In words, the rule that decided the outcome for a missing key.
    pub(crate) fn missing_key_rule(&self) -> &'static str {
        match (self.op.base, self.op.qualifier) {
            (Base::Null, _) => "Null treats a missing key as null",
            _ if self.op.if_exists => "…IfExists is true when the key is missing",
            (_, SetQualifier::ForAllValues) => {
                "ForAllValues is true when the key is missing (add a Null check to require it)"
            }
            (_, SetQualifier::ForAnyValue) => "ForAnyValue is false when the key is missing",
            (b, SetQualifier::None) if b.negated() => {
                "a negated operator is true when the key is missing"
            }
            _ => "a positive operator is false when the key is missing",
        }
    }
}

fn compile_all<T>(
    raw: &[String],
    f: impl Fn(&str) -> std::result::Result<T, String>,
) -> std::result::Result<Vec<T>, (Option<usize>, String)> {
    raw.iter()
        .enumerate()
        .map(|(i, r)| f(r).map_err(|m| (Some(i), m)))
        .collect()
}

fn ordering_satisfies(base: Base, ord: Option<Ordering>) -> bool {
    let Some(o) = ord else { return false };
    match base {
        Base::NumericEquals | Base::NumericNotEquals | Base::DateEquals | Base::DateNotEquals => {
            o == Ordering::Equal
        }
        Base::NumericLessThan | Base::DateLessThan => o == Ordering::Less,
        Base::NumericLessThanEquals | Base::DateLessThanEquals => o != Ordering::Greater,
        Base::NumericGreaterThan | Base::DateGreaterThan => o == Ordering::Greater,
        Base::NumericGreaterThanEquals | Base::DateGreaterThanEquals => o != Ordering::Less,
        _ => false,
    }
}

/// A number from a policy or request: integers compare exactly, anything else as `f64`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) enum Num {
    Int(i128),
    Float(f64),
}

pub(crate) fn parse_num(s: &str) -> Option<Num> {
    if let Ok(i) = s.parse::<i128>() {
        return Some(Num::Int(i));
    }
    let plausible = !s.is_empty()
        && s.bytes()
            .all(|b| b.is_ascii_digit() || matches!(b, b'.' | b'-' | b'+' | b'e' | b'E'))
        && s.bytes().any(|b| b.is_ascii_digit());
    if !plausible {
        return None;
    }
    s.parse::<f64>()
        .ok()
        .filter(|f| f.is_finite())
        .map(Num::Float)
}

fn cmp_num(a: Num, b: Num) -> Option<Ordering> {
    match (a, b) {
        (Num::Int(x), Num::Int(y)) => Some(x.cmp(&y)),
        _ => as_f64(a).partial_cmp(&as_f64(b)),
    }
}

fn as_f64(n: Num) -> f64 {
    match n {
        Num::Int(i) => i as f64,
        Num::Float(f) => f,
    }
}

pub(crate) fn parse_bool(s: &str) -> Option<bool> {
    if s.eq_ignore_ascii_case("true") {
        Some(true)
    } else if s.eq_ignore_ascii_case("false") {
        Some(false)
    } else {
        None
    }
}

/// Parses a date as milliseconds since the epoch: epoch seconds (`1714564800`, `1714564800.5`) or
/// a W3C profile of ISO 8601 (`2024-05`, `2024-05-01`, `2024-05-01T12:00Z`,
/// `2024-05-01T12:00:00.250+02:00`; no zone means UTC).
pub(crate) fn parse_date(s: &str) -> Option<i64> {
    let unsigned = s.strip_prefix('-').unwrap_or(s);
    if !unsigned.is_empty() && unsigned.bytes().all(|b| b.is_ascii_digit() || b == b'.') {
        return parse_epoch(s);
    }
    parse_iso(s.as_bytes())
}

fn parse_epoch(s: &str) -> Option<i64> {
    let (negative, digits) = match s.strip_prefix('-') {
        Some(d) => (true, d),
        None => (false, s),
    };
    let (whole, frac) = match digits.split_once('.') {
        Some((w, f)) => (w, f),
        None => (digits, ""),
    };
    if whole.is_empty() || frac.contains('.') {
        return None;
    }
    let secs: i64 = whole.parse().ok()?;
    let mut millis: i64 = 0;
    for (i, b) in frac.bytes().enumerate() {
        if i < 3 {
            millis = millis * 10 + i64::from(b - b'0');
        }
    }
    for _ in frac.len()..3 {
        millis *= 10;
    }
    let total = secs.checked_mul(1000)?.checked_add(millis)?;
    Some(if negative { -total } else { total })
}

fn digits(b: &[u8], at: usize, n: usize) -> Option<u32> {
    let slice = b.get(at..at + n)?;
    slice.iter().try_fold(0u32, |acc, c| {
        c.is_ascii_digit().then(|| acc * 10 + u32::from(c - b'0'))
    })
}

fn byte_at(b: &[u8], at: usize, c: u8) -> Option<()> {
    (b.get(at) == Some(&c)).then_some(())
}

fn parse_iso(b: &[u8]) -> Option<i64> {
    let year = i32::try_from(digits(b, 0, 4)?).ok()?;
    byte_at(b, 4, b'-')?;
    let month = digits(b, 5, 2)?;
    let (day, mut pos) = if b.len() == 7 {
        (1, 7)
    } else {
        byte_at(b, 7, b'-')?;
        (digits(b, 8, 2)?, 10)
    };
    let date = NaiveDate::from_ymd_opt(year, month, day)?;
    let (mut hour, mut minute, mut second, mut millis) = (0, 0, 0, 0);
    let mut offset_secs: i64 = 0;
    if pos < b.len() {
        if !matches!(b[pos], b'T' | b't') {
            return None;
        }
        hour = digits(b, pos + 1, 2)?;
        byte_at(b, pos + 3, b':')?;
        minute = digits(b, pos + 4, 2)?;
        pos += 6;
        if b.get(pos) == Some(&b':') {
            second = digits(b, pos + 1, 2)?;
            pos += 3;
            if b.get(pos) == Some(&b'.') {
                let start = pos + 1;
                let mut end = start;
                while b.get(end).is_some_and(u8::is_ascii_digit) {
                    end += 1;
                }
                if end == start {
                    return None;
                }
                for i in 0..3 {
                    let d = b.get(start + i).filter(|_| start + i < end);
                    millis = millis * 10 + d.map_or(0, |c| u32::from(c - b'0'));
                }
                pos = end;
            }
        }
        match b.get(pos) {
            None => {}
            Some(b'Z' | b'z') if pos + 1 == b.len() => {}
            Some(&sign @ (b'+' | b'-')) => {
                let oh = digits(b, pos + 1, 2)?;
                let mut p = pos + 3;
                if b.get(p) == Some(&b':') {
                    p += 1;
                }
                let om = digits(b, p, 2)?;
                if p + 2 != b.len() || oh > 23 || om > 59 {
                    return None;
                }
                let off = i64::from(oh * 3600 + om * 60);
                offset_secs = if sign == b'+' { off } else { -off };
            }
            Some(_) => return None,
        }
    }
    let dt = date.and_hms_milli_opt(hour, minute, second, millis)?;
    Some(dt.and_utc().timestamp_millis() - offset_secs * 1000)
}

/// A policy IP value: a CIDR range, or a bare address meaning /32 (IPv4) or /128 (IPv6).
fn parse_net(s: &str) -> Option<IpNet> {
    if s.contains('/') {
        s.parse::<IpNet>().ok()
    } else {
        s.parse::<IpAddr>().ok().map(IpNet::from)
    }
}

enum RequestIp {
    Addr(IpAddr),
    Net(IpNet),
}

fn parse_request_ip(s: &str) -> Option<RequestIp> {
    if let Ok(a) = s.parse::<IpAddr>() {
        let a = match a {
            IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(a, IpAddr::V4),
            v4 => v4,
        };
        return Some(RequestIp::Addr(a));
    }
    s.parse::<IpNet>().ok().map(RequestIp::Net)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn operator_names() {
        let ok: &[(&str, Base, SetQualifier, bool)] = &[
            (
                "StringEquals",
                Base::StringEquals,
                SetQualifier::None,
                false,
            ),
            (
                "StringLikeIfExists",
                Base::StringLike,
                SetQualifier::None,
                false,
            ),
            (
                "ForAllValues:StringNotLike",
                Base::StringNotLike,
                SetQualifier::ForAllValues,
                false,
            ),
            (
                "ForAnyValue:ArnLikeIfExists",
                Base::ArnLike,
                SetQualifier::ForAnyValue,
                true,
            ),
            ("Null", Base::Null, SetQualifier::None, false),
            (
                "BinaryEquals",
                Base::BinaryEquals,
                SetQualifier::None,
                false,
            ),
        ];
        for (name, base, q, _) in ok {
            let op = parse_operator(name).unwrap();
            assert_eq!((op.base, op.qualifier), (*base, *q), "{name}");
        }
        assert!(parse_operator("StringLikeIfExists").unwrap().if_exists);
        for bad in [
            "NullIfExists",
            "ForAnyValue:Null",
            "StringEqual",
            "stringequals",
            "ForSomeValues:StringEquals",
            "IfExists",
            "StringEqualsIfExistsIfExists",
        ] {
            assert!(parse_operator(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn numbers() {
        assert_eq!(parse_num("10"), Some(Num::Int(10)));
        assert_eq!(parse_num("-3"), Some(Num::Int(-3)));
        assert_eq!(parse_num("1.5"), Some(Num::Float(1.5)));
        assert_eq!(parse_num("1e3"), Some(Num::Float(1000.0)));
        for bad in ["", "abc", "NaN", "inf", "1,0", "${x}", "-"] {
            assert_eq!(parse_num(bad), None, "{bad}");
        }
        assert_eq!(
            cmp_num(Num::Int(10), Num::Float(10.0)),
            Some(Ordering::Equal)
        );
        assert_eq!(
            cmp_num(
                Num::Int(9_007_199_254_740_993),
                Num::Int(9_007_199_254_740_992)
            ),
            Some(Ordering::Greater)
        );
    }

    #[test]
    fn dates() {
        let cases: &[(&str, Option<i64>)] = &[
            ("1714564800", Some(1_714_564_800_000)),
            ("1714564800.25", Some(1_714_564_800_250)),
            ("0", Some(0)),
            ("2024-05-01T12:00:00Z", Some(1_714_564_800_000)),
            ("2024-05-01T12:00:00.250Z", Some(1_714_564_800_250)),
            ("2024-05-01T12:00Z", Some(1_714_564_800_000)),
            ("2024-05-01T14:00:00+02:00", Some(1_714_564_800_000)),
            ("2024-05-01T14:00:00+0200", Some(1_714_564_800_000)),
            ("2024-05-01T07:00:00-05:00", Some(1_714_564_800_000)),
            ("2024-05-01T12:00:00", Some(1_714_564_800_000)),
            ("2024-05-01", Some(1_714_521_600_000)),
            ("2024-05", Some(1_714_521_600_000)),
            ("2024-02-30", None),
            ("2024-05-01T25:00:00Z", None),
            ("2024-05-01 12:00:00Z", None),
            ("2024-05-01T12:00:00Zjunk", None),
            ("yesterday", None),
            ("", None),
            ("1.2.3", None),
        ];
        for (s, want) in cases {
            assert_eq!(parse_date(s), *want, "{s}");
        }
    }

    #[test]
    fn ip_values() {
        assert_eq!(
            parse_net("203.0.113.7"),
            Some("203.0.113.7/32".parse().unwrap())
        );
        assert_eq!(
            parse_net("2001:DB8:1234:5678::/64"),
            Some("2001:db8:1234:5678::/64".parse().unwrap())
        );
        assert_eq!(parse_net("203.0.113.0/33"), None);
        assert_eq!(parse_net("not-an-ip"), None);
        assert!(matches!(
            parse_request_ip("::ffff:203.0.113.7"),
            Some(RequestIp::Addr(IpAddr::V4(_)))
        ));
    }
}
