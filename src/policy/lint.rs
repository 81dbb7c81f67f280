//! Lint checks beyond the grammar: statements that are legal but grant more than their author
//! probably meant (`Allow` with `NotAction`, federated trust without `aud`/`sub` conditions, wildcard
//! subjects) or that can never decide anything (shadowed by an unconditional `Deny`, or asking about
//! actions a trust policy is never asked about).

use super::condition::Base;
use super::eval::StatementEffect;
use super::grammar::{Policy, PrincipalEntry, PrincipalSpec, Statement};
use super::PolicyKind;

/// The actions a role trust policy is evaluated for.
const TRUST_ACTIONS: &[&str] = &[
    "sts:AssumeRole",
    "sts:AssumeRoleWithWebIdentity",
    "sts:AssumeRoleWithSAML",
    "sts:TagSession",
    "sts:SetSourceIdentity",
];

/// Every finding, as (statement, message).
pub(crate) fn lint(policy: &Policy) -> Vec<(&Statement, String)> {
    let mut out = Vec::new();
    let trust = policy.kind() == PolicyKind::Trust;
    for s in &policy.statements {
        let allow = s.effect == StatementEffect::Allow;
        if allow && s.action.negated {
            out.push((
                s,
                format!(
                    "Allow with NotAction {:?} grants every other action of every service, \
                     including actions added later; list the actions to allow instead",
                    s.action.raw
                ),
            ));
        }
        if allow && trust {
            let federated = federated_entries(s);
            if !federated.is_empty() {
                let pins = |suffix: &str| {
                    s.conditions.iter().any(|c| {
                        c.key.ends_with(suffix)
                            && !c.op.if_exists
                            && !matches!(
                                c.op.base,
                                Base::Null
                                    | Base::StringNotEquals
                                    | Base::StringNotEqualsIgnoreCase
                                    | Base::StringNotLike
                            )
                    })
                };
                if !pins(":aud") && !pins(":sub") {
                    out.push((
                        s,
                        format!(
                            "trusts {} without conditions on 'aud' or 'sub': every identity the \
                             provider issues a token to (for an accepted audience) can assume the \
                             role; add a StringEquals condition on '<provider>:sub'",
                            federated.join(", ")
                        ),
                    ));
                }
                for c in &s.conditions {
                    let wildcard_op = matches!(c.op.base, Base::StringLike);
                    if !(wildcard_op && c.key.ends_with(":sub")) {
                        continue;
                    }
                    for v in c.raw_values.iter().filter(|v| v.contains(['*', '?'])) {
                        out.push((
                            s,
                            format!(
                                "{} matches '{}' with the wildcard pattern {v:?}: every subject of \
                                 that shape can assume the role (for CI providers: every branch, \
                                 tag, pull request and environment); match the full subject",
                                c.operator, c.key_name
                            ),
                        ));
                    }
                }
            }
        }
        if trust && !s.action.negated {
            let reachable = s.action.raw.iter().any(|a| {
                TRUST_ACTIONS
                    .iter()
                    .any(|t| pattern_covers(a, t) || pattern_covers(t, a))
            });
            if !reachable {
                out.push((
                    s,
                    format!(
                        "never applies: a trust policy is only asked about {}, not {:?}",
                        TRUST_ACTIONS.join(", "),
                        s.action.raw
                    ),
                ));
            }
        }
        if allow {
            if let Some(d) = policy.statements.iter().find(|d| shadows(d, s)) {
                let sid = d
                    .sid
                    .as_deref()
                    .map(|x| format!(" ({x})"))
                    .unwrap_or_default();
                out.push((
                    s,
                    format!(
                        "can never allow anything: statement {}{sid} denies all of its actions on \
                         all of its resources without conditions",
                        d.index
                    ),
                ));
            }
        }
    }
    out
}

fn federated_entries(s: &Statement) -> Vec<String> {
    let Some(p) = &s.principal else {
        return Vec::new();
    };
    if p.negated {
        return Vec::new();
    }
    match &p.spec {
        PrincipalSpec::Anyone => Vec::new(),
        PrincipalSpec::Entries(es) => es
            .iter()
            .filter_map(|e| match e {
                PrincipalEntry::Federated(f) => Some(f.clone()),
                PrincipalEntry::AnyFederated => Some("any federated principal".to_string()),
                _ => None,
            })
            .collect(),
    }
}

/// Whether the unconditional `Deny` statement `d` applies to every request `a` (an `Allow`) could.
fn shadows(d: &Statement, a: &Statement) -> bool {
    if d.effect != StatementEffect::Deny || !d.conditions.is_empty() || d.index == a.index {
        return false;
    }
    let principal_ok = match (&d.principal, &a.principal) {
        (None, _) => true,
        (Some(dp), _) if !dp.negated && matches!(dp.spec, PrincipalSpec::Anyone) => true,
        (Some(dp), Some(ap)) => {
            !dp.negated && !ap.negated && ap.raw.iter().all(|r| dp.raw.contains(r))
        }
        _ => false,
    };
    let action_ok = !d.action.negated
        && !a.action.negated
        && a.action
            .raw
            .iter()
            .all(|x| d.action.raw.iter().any(|p| pattern_covers(p, x)));
    let resource_ok = match (&d.resource, &a.resource) {
        (None, _) => true,
        (Some(dr), _) if !dr.negated && dr.raw.iter().any(|r| r == "*") => true,
        (Some(dr), Some(ar)) => {
            !dr.negated
                && !ar.negated
                && ar.raw.iter().all(|x| {
                    !x.contains("${")
                        && dr
                            .raw
                            .iter()
                            .any(|p| !p.contains("${") && glob_covers(p, x, false))
                })
        }
        (Some(_), None) => false,
    };
    principal_ok && action_ok && resource_ok
}

/// Whether the action pattern `p` matches everything the action pattern `x` matches.
fn pattern_covers(p: &str, x: &str) -> bool {
    glob_covers(p, x, true)
}

/// A conservative check that pattern `p` covers pattern `x`: `*`, equal text, or `p` a literal
/// prefix followed by a single trailing `*` that `x` starts with.
fn glob_covers(p: &str, x: &str, ignore_case: bool) -> bool {
    let eq = |a: &str, b: &str| {
        if ignore_case {
            a.eq_ignore_ascii_case(b)
        } else {
            a == b
        }
    };
    if p == "*" || eq(p, x) {
        return true;
    }
    match p.strip_suffix('*') {
        Some(prefix) if !prefix.contains(['*', '?']) => {
            x.len() >= prefix.len()
                && x.is_char_boundary(prefix.len())
                && eq(&x[..prefix.len()], prefix)
        }
        _ => false,
    }
}
