//! Explanations: for each statement of each policy, which part matched and which failed
//! (principal, action, resource, each condition with expected and actual values), and why the set
//! decided what it did. Slow by design; used for denials and simulation only.

use std::fmt;

use serde::Serialize;

use super::context::RequestContext;
use super::eval::{
    decide, decide_trust, statement_applies, Effect, MatchedStatement, PolicyScope, PolicySet,
    Reason, ResourceAccount, StatementEffect, Tally,
};
use super::grammar::{Policy, Statement};
use super::variables::Piece;
use super::wildcard::ArnPattern;

/// Why a request was or was not allowed, statement by statement.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Explanation {
    /// The decision (always the same as [`super::evaluate`]'s).
    pub effect: Effect,
    /// One sentence saying why.
    pub summary: String,
    /// The action asked for.
    pub action: String,
    /// The resource asked for.
    pub resource: String,
    /// The caller's identities (empty when anonymous).
    pub principal: Vec<String>,
    /// The `Deny` statements that applied.
    pub explicit_denies: Vec<MatchedStatement>,
    /// Condition keys and variables the request context lacked.
    pub missing_context_keys: Vec<String>,
    /// Every policy, statement by statement.
    pub policies: Vec<PolicyReport>,
}

/// One policy of the set.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PolicyReport {
    /// The label the caller gave it.
    pub policy: String,
    /// Its role in the set.
    pub scope: PolicyScope,
    /// Its statements, in order.
    pub statements: Vec<StatementReport>,
}

/// One statement and what each of its parts made of the request.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct StatementReport {
    /// Index in the policy.
    pub index: usize,
    /// `Sid`, if any.
    pub sid: Option<String>,
    /// Allow or Deny.
    pub effect: StatementEffect,
    /// Whether the statement applied to the request.
    pub applies: bool,
    /// One check per element (and per condition operator/key).
    pub checks: Vec<Check>,
}

/// One element of a statement compared with the request.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Check {
    /// `Principal`, `NotPrincipal`, `Action`, `NotAction`, `Resource`, `NotResource` or `Condition`.
    pub element: String,
    /// The condition operator, for conditions.
    pub operator: Option<String>,
    /// The condition key, for conditions.
    pub key: Option<String>,
    /// Whether this part matched.
    pub passed: bool,
    /// The values in the policy.
    pub expected: Vec<String>,
    /// The values in the request (empty when the key is missing).
    pub actual: Vec<String>,
    /// Extra detail: the rule applied to a missing key, an unresolved policy variable.
    pub note: Option<String>,
}

/// Explains the decision for a request against a policy set.
pub fn explain(set: &PolicySet<'_>, ctx: &RequestContext) -> Explanation {
    let mut b = Builder::default();
    for (label, policy, scope) in set.all() {
        b.policy(label, policy, scope, ctx);
    }
    let (effect, reason) = decide(set, &b.tally);
    b.finish(
        effect,
        reason,
        ctx,
        Whose::Set {
            resource_account: set.resource_account,
            has_resource_policy: set.resource.is_some(),
        },
    )
}

/// What was explained: a policy set (where its resource is, whether it has a resource policy),
/// or a trust policy alone.
#[derive(Clone, Copy)]
enum Whose {
    Set {
        resource_account: ResourceAccount,
        has_resource_policy: bool,
    },
    Trust,
}

fn where_is(account: ResourceAccount) -> &'static str {
    match account {
        ResourceAccount::Same => "in the caller's account",
        ResourceAccount::Other => "in another account",
        ResourceAccount::Unknown => "in an account not known to be the caller's",
    }
}

/// Explains the decision for a request against a role trust policy alone.
pub fn explain_trust(trust: &Policy, ctx: &RequestContext) -> Explanation {
    let mut b = Builder::default();
    b.policy("trust", trust, PolicyScope::Resource, ctx);
    let (effect, reason) = decide_trust(&b.tally);
    b.finish(effect, reason, ctx, Whose::Trust)
}

#[derive(Default)]
struct Builder {
    tally: Tally,
    missing: Vec<String>,
    denies: Vec<MatchedStatement>,
    allows: Vec<MatchedStatement>,
    policies: Vec<PolicyReport>,
}

impl Builder {
    fn policy(&mut self, label: &str, policy: &Policy, scope: PolicyScope, ctx: &RequestContext) {
        let mut statements = Vec::with_capacity(policy.statements.len());
        for stmt in &policy.statements {
            let mut missing = Vec::new();
            let grant = statement_applies(stmt, ctx, &mut missing);
            for m in missing {
                if !self.missing.iter().any(|k| k.eq_ignore_ascii_case(m)) {
                    self.missing.push(m.to_owned());
                }
            }
            if let Some(grant) = grant {
                self.tally.record(scope, stmt.effect, grant);
                let matched = MatchedStatement {
                    policy: label.to_owned(),
                    scope,
                    sid: stmt.sid.clone(),
                    index: stmt.index,
                    effect: stmt.effect,
                };
                match stmt.effect {
                    StatementEffect::Deny => self.denies.push(matched),
                    StatementEffect::Allow => self.allows.push(matched),
                }
            }
            statements.push(StatementReport {
                index: stmt.index,
                sid: stmt.sid.clone(),
                effect: stmt.effect,
                applies: grant.is_some(),
                checks: checks(stmt, ctx),
            });
        }
        self.policies.push(PolicyReport {
            policy: label.to_owned(),
            scope,
            statements,
        });
    }

    fn finish(
        self,
        effect: Effect,
        reason: Reason,
        ctx: &RequestContext,
        whose: Whose,
    ) -> Explanation {
        let request = format!("{} on {}", ctx.action(), ctx.resource());
        let trust = matches!(whose, Whose::Trust);
        let (resource_account, has_resource_policy) = match whose {
            Whose::Set {
                resource_account,
                has_resource_policy,
            } => (resource_account, has_resource_policy),
            Whose::Trust => (ResourceAccount::Same, true),
        };
        let summary = match reason {
            Reason::ExplicitDeny => match self.denies.first() {
                Some(d) => format!("{request} is explicitly denied by {}", describe(d)),
                None => format!("{request} is explicitly denied"),
            },
            Reason::DirectResourceGrant => match self
                .allows
                .iter()
                .find(|m| m.scope == PolicyScope::Resource)
            {
                Some(a) => format!(
                    "{request} is allowed by {}, which names the caller directly",
                    describe(a)
                ),
                None => format!("{request} is allowed by the resource policy"),
            },
            Reason::Allowed => match self.allows.first() {
                Some(a) => format!("{request} is allowed by {}", describe(a)),
                None => format!("{request} is allowed"),
            },
            Reason::NoAllow if trust => {
                format!("no statement of the trust policy allows {request} for this principal")
            }
            Reason::NoAllow => format!(
                "no identity-based policy statement (and no resource policy statement naming the \
                 caller) allows {request}"
            ),
            Reason::SessionDoesNotAllow => {
                format!("the session policies do not allow {request}")
            }
            Reason::BoundaryDoesNotAllow => {
                format!("the permissions boundary does not allow {request}")
            }
            Reason::NoIdentityAllow => format!(
                "no identity-based policy statement allows {request}; the resource is {}, where \
                 a resource policy cannot allow on its own",
                where_is(resource_account)
            ),
            Reason::ResourceDoesNotAllow if has_resource_policy => format!(
                "the resource is {} and no statement of its resource policy allows {request} for \
                 this principal",
                where_is(resource_account)
            ),
            Reason::ResourceDoesNotAllow => format!(
                "the resource is {} and has no resource policy allowing {request}",
                where_is(resource_account)
            ),
        };
        Explanation {
            effect,
            summary,
            action: ctx.action().to_owned(),
            resource: ctx.resource().to_owned(),
            principal: ctx
                .principal()
                .map(|p| p.identities().map(str::to_owned).collect())
                .unwrap_or_default(),
            explicit_denies: self.denies,
            missing_context_keys: self.missing,
            policies: self.policies,
        }
    }
}

fn describe(m: &MatchedStatement) -> String {
    match &m.sid {
        Some(sid) => format!(
            "statement {} (Sid {sid:?}) of {} policy {:?}",
            m.index, m.scope, m.policy
        ),
        None => format!("statement {} of {} policy {:?}", m.index, m.scope, m.policy),
    }
}

fn unresolved<'a>(pieces: &'a [Piece], ctx: &RequestContext) -> Vec<&'a str> {
    pieces
        .iter()
        .filter_map(|p| match p {
            Piece::Var(v) if v.resolve(ctx).is_none() => Some(v.name.as_str()),
            _ => None,
        })
        .collect()
}

fn variable_note(names: &[&str]) -> Option<String> {
    if names.is_empty() {
        return None;
    }
    let list: Vec<String> = names.iter().map(|n| format!("${{{n}}}")).collect();
    Some(format!(
        "policy variable {} has no value (and no default), so values using it match nothing",
        list.join(", ")
    ))
}

fn checks(stmt: &Statement, ctx: &RequestContext) -> Vec<Check> {
    let mut out = Vec::new();
    if let Some(p) = &stmt.principal {
        out.push(Check {
            element: if p.negated {
                "NotPrincipal"
            } else {
                "Principal"
            }
            .to_owned(),
            operator: None,
            key: None,
            passed: p.grant(ctx.principal()).is_some(),
            expected: p.raw.clone(),
            actual: ctx
                .principal()
                .map(|c| c.identities().map(str::to_owned).collect())
                .unwrap_or_default(),
            note: None,
        });
    }
    let a = &stmt.action;
    out.push(Check {
        element: if a.negated { "NotAction" } else { "Action" }.to_owned(),
        operator: None,
        key: None,
        passed: a.matches(ctx),
        expected: a.raw.clone(),
        actual: vec![ctx.action().to_owned()],
        note: None,
    });
    if let Some(r) = &stmt.resource {
        let mut vars = Vec::new();
        for p in &r.patterns {
            if let ArnPattern::Fields(fields) = p {
                for g in fields {
                    vars.extend(unresolved(g.pieces(), ctx));
                }
            }
        }
        out.push(Check {
            element: if r.negated { "NotResource" } else { "Resource" }.to_owned(),
            operator: None,
            key: None,
            passed: r.matches(ctx),
            expected: r.raw.clone(),
            actual: vec![ctx.resource().to_owned()],
            note: variable_note(&vars),
        });
    }
    for c in &stmt.conditions {
        let outcome = c.evaluate(ctx);
        let vars: Vec<&str> = c
            .required_variables()
            .into_iter()
            .filter(|v| v.resolve(ctx).is_none())
            .map(|v| v.name.as_str())
            .collect();
        let note = if outcome.missing {
            Some(format!(
                "{:?} is not in the request context: {}",
                c.key_name,
                c.missing_key_rule()
            ))
        } else {
            variable_note(&vars)
        };
        out.push(Check {
            element: "Condition".to_owned(),
            operator: Some(c.operator.clone()),
            key: Some(c.key_name.clone()),
            passed: outcome.matched,
            expected: c.raw_values.clone(),
            actual: ctx
                .lookup(&c.key)
                .map(|v| v.as_slice().to_vec())
                .unwrap_or_default(),
            note,
        });
    }
    out
}

impl fmt::Display for Effect {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Effect::Allow => "Allow",
            Effect::ExplicitDeny => "ExplicitDeny",
            Effect::ImplicitDeny => "ImplicitDeny",
        })
    }
}

impl fmt::Display for PolicyScope {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            PolicyScope::Identity => "identity",
            PolicyScope::Session => "session",
            PolicyScope::Boundary => "boundary",
            PolicyScope::Resource => "resource",
        })
    }
}

impl fmt::Display for StatementEffect {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            StatementEffect::Allow => "Allow",
            StatementEffect::Deny => "Deny",
        })
    }
}

impl fmt::Display for Check {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mark = if self.passed { "ok  " } else { "FAIL" };
        write!(f, "[{mark}] {}", self.element)?;
        if let Some(op) = &self.operator {
            write!(f, " {op}")?;
        }
        if let Some(key) = &self.key {
            write!(f, " {key:?}")?;
        }
        write!(f, ": expected {:?}, actual ", self.expected)?;
        if self.actual.is_empty() {
            f.write_str("(none)")?;
        } else {
            write!(f, "{:?}", self.actual)?;
        }
        if let Some(note) = &self.note {
            write!(f, " ({note})")?;
        }
        Ok(())
    }
}

impl fmt::Display for Explanation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "{}: {}", self.effect, self.summary)?;
        let who = if self.principal.is_empty() {
            "an anonymous caller".to_owned()
        } else {
            self.principal.join(", ")
        };
        writeln!(f, "request: {} on {} by {who}", self.action, self.resource)?;
        if !self.missing_context_keys.is_empty() {
            writeln!(
                f,
                "missing context keys: {}",
                self.missing_context_keys.join(", ")
            )?;
        }
        for p in &self.policies {
            writeln!(f, "{} policy {:?}:", p.scope, p.policy)?;
            for s in &p.statements {
                let sid = s
                    .sid
                    .as_ref()
                    .map(|s| format!(" (Sid {s:?})"))
                    .unwrap_or_default();
                let verdict = if s.applies {
                    "applies"
                } else {
                    "does not apply"
                };
                writeln!(f, "  statement {}{sid}, {}: {verdict}", s.index, s.effect)?;
                for c in s.checks.iter().filter(|c| !s.applies && !c.passed) {
                    writeln!(f, "    {c}")?;
                }
            }
        }
        Ok(())
    }
}
