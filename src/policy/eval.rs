//! Evaluation: does a statement apply to a request, and what do the policies of a [`PolicySet`]
//! (or a trust policy alone) decide. The rule is in the module documentation of `policy`.

use serde::Serialize;

use super::context::{Principal, RequestContext};
use super::grammar::{
    root_account, ActionClause, Policy, PrincipalClause, PrincipalEntry, PrincipalSpec,
    ResourceClause, Statement,
};

/// What a statement says when it applies.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
pub enum StatementEffect {
    /// `"Effect": "Allow"`.
    Allow,
    /// `"Effect": "Deny"`.
    Deny,
}

/// The outcome of evaluating a request.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
pub enum Effect {
    /// Allowed.
    Allow,
    /// A `Deny` statement applies.
    ExplicitDeny,
    /// Nothing (or not everything that must) allows it.
    ImplicitDeny,
}

/// The role a policy plays in a [`PolicySet`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
pub enum PolicyScope {
    /// An identity-based policy of the caller.
    Identity,
    /// A session policy of the caller's session.
    Session,
    /// The caller's permissions boundary.
    Boundary,
    /// The resource-based policy of the resource (for roles, the trust policy).
    Resource,
}

/// A statement that applied to the request.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct MatchedStatement {
    /// The label the caller gave the policy.
    pub policy: String,
    /// The role of that policy.
    pub scope: PolicyScope,
    /// The statement's `Sid`.
    pub sid: Option<String>,
    /// The statement's index in its policy.
    pub index: usize,
    /// Allow or Deny.
    pub effect: StatementEffect,
}

/// The decision for one request.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Decision {
    /// Allowed, explicitly denied or implicitly denied.
    pub effect: Effect,
    /// Every statement that applied, in policy order.
    pub matched: Vec<MatchedStatement>,
    /// Condition keys and policy variables that statements needed but the request context lacked
    /// (as written in the policy), in first-seen order.
    pub missing_context_keys: Vec<String>,
}

impl Decision {
    /// Whether the request is allowed.
    pub fn is_allowed(&self) -> bool {
        self.effect == Effect::Allow
    }
}

/// Where the resource of a request is, seen from the caller; decides how its resource-based policy
/// combines with the caller's own policies (see the `policy` module documentation).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize)]
pub enum ResourceAccount {
    /// In the caller's account: a resource policy can allow on its own (within the one-account
    /// rule).
    #[default]
    Same,
    /// In another account: the caller's identity policies (within its boundary and session
    /// policies) and the resource policy must both allow; without a resource policy nothing is
    /// allowed.
    Other,
    /// Not known: the caller's identity policies (within its boundary and session policies) must
    /// allow, and the resource policy too when there is one; a resource policy never allows on its
    /// own.
    Unknown,
}

impl ResourceAccount {
    /// The relation of a resource in `resource_account` (`None`: unknown) to a caller of
    /// `caller_account`.
    pub fn of(caller_account: &str, resource_account: Option<&str>) -> Self {
        match resource_account {
            None => ResourceAccount::Unknown,
            Some(a) if a == caller_account => ResourceAccount::Same,
            Some(_) => ResourceAccount::Other,
        }
    }
}

/// The account field of an ARN, when it names one (not empty, no wildcard): `111122223333` of
/// `arn:aws:dynamodb:us-east-1:111122223333:table/T`, nothing for `arn:aws:s3:::bucket` or `*`.
pub fn arn_account(arn: &str) -> Option<&str> {
    let account = super::Arn::parse(arn)?.account;
    (!account.is_empty() && !account.contains(['*', '?'])).then_some(account)
}

/// The full set of policies that apply to one request, each labelled for explanations.
#[derive(Debug, Clone, Default)]
pub struct PolicySet<'a> {
    /// The caller's identity-based policies.
    pub identity: Vec<(&'a str, &'a Policy)>,
    /// The session policies; `None` when the session has none. `Some(empty)` allows nothing.
    pub session: Option<Vec<(&'a str, &'a Policy)>>,
    /// The caller's permissions boundary.
    pub boundary: Option<(&'a str, &'a Policy)>,
    /// The resource's resource-based policy.
    pub resource: Option<(&'a str, &'a Policy)>,
    /// Where the resource is, seen from the caller (default: in the caller's account).
    pub resource_account: ResourceAccount,
}

impl<'a> PolicySet<'a> {
    /// An empty set (which allows nothing).
    pub fn new() -> Self {
        PolicySet::default()
    }

    /// Adds an identity-based policy.
    pub fn with_identity(mut self, label: &'a str, policy: &'a Policy) -> Self {
        self.identity.push((label, policy));
        self
    }

    /// Adds a session policy.
    pub fn with_session(mut self, label: &'a str, policy: &'a Policy) -> Self {
        self.session
            .get_or_insert_with(Vec::new)
            .push((label, policy));
        self
    }

    /// Sets the permissions boundary.
    pub fn with_boundary(mut self, label: &'a str, policy: &'a Policy) -> Self {
        self.boundary = Some((label, policy));
        self
    }

    /// Sets the resource-based policy.
    pub fn with_resource(mut self, label: &'a str, policy: &'a Policy) -> Self {
        self.resource = Some((label, policy));
        self
    }

    /// Says where the resource is, seen from the caller.
    pub fn with_resource_account(mut self, account: ResourceAccount) -> Self {
        self.resource_account = account;
        self
    }

    /// Every policy with its label and scope, in evaluation order.
    pub(crate) fn all(&self) -> impl Iterator<Item = (&'a str, &'a Policy, PolicyScope)> + '_ {
        let identity = self
            .identity
            .iter()
            .map(|(l, p)| (*l, *p, PolicyScope::Identity));
        let session = self
            .session
            .iter()
            .flatten()
            .map(|(l, p)| (*l, *p, PolicyScope::Session));
        let boundary = self
            .boundary
            .iter()
            .map(|(l, p)| (*l, *p, PolicyScope::Boundary));
        let resource = self
            .resource
            .iter()
            .map(|(l, p)| (*l, *p, PolicyScope::Resource));
        identity.chain(session).chain(boundary).chain(resource)
    }
}

/// How a resource-based statement reached the caller; decides which implicit denies limit it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) enum Grant {
    /// Through the caller's account only: delegates to identity policies.
    Account,
    /// Through a wildcard (`*`, `{"AWS": "*"}`, `NotPrincipal`), or no principal element.
    Wildcard,
    /// Through the caller's role ARN: limited by boundary and session policies.
    Role,
    /// Through the caller's own ARN (user, role session, federated user), federated provider or
    /// service: not limited by implicit denies elsewhere.
    Direct,
}

fn classify(arn: &str) -> Grant {
    if root_account(arn).is_some() {
        Grant::Account
    } else if super::Arn::parse(arn)
        .is_some_and(|a| a.service == "iam" && a.resource.starts_with("role/"))
    {
        Grant::Role
    } else {
        Grant::Direct
    }
}

impl PrincipalEntry {
    /// How this entry matches the given caller identity (an AWS ARN, provider or service name),
    /// if it does.
    fn matches_identity(&self, identity: &Identity<'_>) -> Option<Grant> {
        match (self, identity) {
            (PrincipalEntry::AnyAws, Identity::Aws(_)) => Some(Grant::Wildcard),
            (PrincipalEntry::Account(a), Identity::Aws(arn)) => {
                (root_account(arn) == Some(a.as_str())).then_some(Grant::Account)
            }
            (PrincipalEntry::Aws(p), Identity::Aws(arn)) => (p == arn).then(|| classify(arn)),
            (PrincipalEntry::AnyFederated, Identity::Federated(_)) => Some(Grant::Wildcard),
            (PrincipalEntry::Federated(p), Identity::Federated(f)) => {
                (p == f).then_some(Grant::Direct)
            }
            (PrincipalEntry::AnyService, Identity::Service(_)) => Some(Grant::Wildcard),
            (PrincipalEntry::Service(p), Identity::Service(s)) => {
                p.eq_ignore_ascii_case(s).then_some(Grant::Direct)
            }
            _ => None,
        }
    }
}

/// One identity of a caller.
enum Identity<'a> {
    Aws(&'a str),
    Federated(&'a str),
    Service(&'a str),
}

fn identities(p: Option<&Principal>) -> impl Iterator<Item = Identity<'_>> {
    p.into_iter().flat_map(|p| {
        p.aws
            .iter()
            .map(|a| Identity::Aws(a))
            .chain(p.federated.as_deref().map(Identity::Federated))
            .chain(p.service.as_deref().map(Identity::Service))
    })
}

impl PrincipalClause {
    /// How the clause matches the caller, if it does.
    pub(crate) fn grant(&self, caller: Option<&Principal>) -> Option<Grant> {
        let entries = match &self.spec {
            PrincipalSpec::Anyone => {
                // NotPrincipal "*" excludes everyone.
                return (!self.negated).then_some(Grant::Wildcard);
            }
            PrincipalSpec::Entries(entries) => entries,
        };
        if self.negated {
            // The statement applies unless every identity of the caller is excluded.
            let mut ids = identities(caller).peekable();
            if ids.peek().is_none() {
                return Some(Grant::Wildcard);
            }
            let escapes = ids.any(|id| !entries.iter().any(|e| e.matches_identity(&id).is_some()));
            return escapes.then_some(Grant::Wildcard);
        }
        identities(caller)
            .flat_map(|id| entries.iter().filter_map(move |e| e.matches_identity(&id)))
            .max()
    }
}

impl ActionClause {
    pub(crate) fn matches(&self, ctx: &RequestContext) -> bool {
        let hit = self.patterns.iter().any(|g| g.matches(ctx.action(), ctx));
        hit != self.negated
    }
}

impl ResourceClause {
    pub(crate) fn matches(&self, ctx: &RequestContext) -> bool {
        let hit = self.patterns.iter().any(|p| p.matches(ctx.resource(), ctx));
        hit != self.negated
    }
}

/// Whether `stmt` applies to the request; `Some(grant)` says how its principal matched (statements
/// without a principal element give [`Grant::Wildcard`]). Records missing keys in `missing`.
pub(crate) fn statement_applies<'p>(
    stmt: &'p Statement,
    ctx: &RequestContext,
    missing: &mut Vec<&'p str>,
) -> Option<Grant> {
    let grant = match &stmt.principal {
        Some(p) => p.grant(ctx.principal())?,
        None => Grant::Wildcard,
    };
    if !stmt.action.matches(ctx) {
        return None;
    }
    for (key, name) in &stmt.required_variables {
        if ctx.lookup(key).is_none() {
            note_missing(missing, name);
        }
    }
    if let Some(r) = &stmt.resource {
        if !r.matches(ctx) {
            return None;
        }
    }
    // Every condition is evaluated (no short cut) so that missing keys are reported completely.
    let mut all = true;
    for c in &stmt.conditions {
        let outcome = c.evaluate(ctx);
        if outcome.missing {
            note_missing(missing, &c.key_name);
        }
        all &= outcome.matched;
    }
    all.then_some(grant)
}

fn note_missing<'p>(missing: &mut Vec<&'p str>, key: &'p str) {
    if !missing.iter().any(|k| k.eq_ignore_ascii_case(key)) {
        missing.push(key);
    }
}

/// What the statements of a set said, gathered for [`decide`].
#[derive(Debug, Default, Clone, Copy)]
pub(crate) struct Tally {
    pub(crate) explicit_deny: bool,
    pub(crate) identity_allow: bool,
    pub(crate) session_allow: bool,
    pub(crate) boundary_allow: bool,
    pub(crate) resource_allow: Option<Grant>,
}

impl Tally {
    pub(crate) fn record(&mut self, scope: PolicyScope, effect: StatementEffect, grant: Grant) {
        match (effect, scope) {
            (StatementEffect::Deny, _) => self.explicit_deny = true,
            (StatementEffect::Allow, PolicyScope::Identity) => self.identity_allow = true,
            (StatementEffect::Allow, PolicyScope::Session) => self.session_allow = true,
            (StatementEffect::Allow, PolicyScope::Boundary) => self.boundary_allow = true,
            (StatementEffect::Allow, PolicyScope::Resource) => {
                self.resource_allow = self.resource_allow.max(Some(grant))
            }
        }
    }
}

/// Why a set decided what it decided.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Reason {
    ExplicitDeny,
    DirectResourceGrant,
    Allowed,
    NoAllow,
    SessionDoesNotAllow,
    BoundaryDoesNotAllow,
    /// Across accounts (or with the resource's account unknown), no identity policy allows.
    NoIdentityAllow,
    /// Across accounts (or with the resource's account unknown), the resource policy (or its
    /// absence) does not allow.
    ResourceDoesNotAllow,
}

/// The evaluation rule for a policy set (see the `policy` module documentation): the one place
/// that combines identity, session, boundary and resource policies, for every caller of
/// [`evaluate`] and [`super::explain`] (the authorization API, STS `AssumeRole` with the role's
/// trust policy as the resource policy, IAM's simulator).
pub(crate) fn decide(set: &PolicySet<'_>, t: &Tally) -> (Effect, Reason) {
    if t.explicit_deny {
        return (Effect::ExplicitDeny, Reason::ExplicitDeny);
    }
    match set.resource_account {
        ResourceAccount::Same => decide_one_account(set, t),
        ResourceAccount::Other | ResourceAccount::Unknown => decide_across_accounts(set, t),
    }
}

/// Across accounts both sides must allow: the caller's (identity policies within the boundary
/// and the session policies) and the resource's (any statement of its resource policy naming the
/// caller in any form, its account included). With the account unknown, a missing resource policy
/// leaves the decision to the caller's side.
fn decide_across_accounts(set: &PolicySet<'_>, t: &Tally) -> (Effect, Reason) {
    if !t.identity_allow {
        return (Effect::ImplicitDeny, Reason::NoIdentityAllow);
    }
    if set.session.is_some() && !t.session_allow {
        return (Effect::ImplicitDeny, Reason::SessionDoesNotAllow);
    }
    if set.boundary.is_some() && !t.boundary_allow {
        return (Effect::ImplicitDeny, Reason::BoundaryDoesNotAllow);
    }
    let resource_needed = set.resource.is_some() || set.resource_account == ResourceAccount::Other;
    if resource_needed && t.resource_allow.is_none() {
        return (Effect::ImplicitDeny, Reason::ResourceDoesNotAllow);
    }
    (Effect::Allow, Reason::Allowed)
}

fn decide_one_account(set: &PolicySet<'_>, t: &Tally) -> (Effect, Reason) {
    if t.resource_allow == Some(Grant::Direct) {
        return (Effect::Allow, Reason::DirectResourceGrant);
    }
    let granted =
        t.identity_allow || matches!(t.resource_allow, Some(Grant::Role) | Some(Grant::Wildcard));
    if !granted {
        return (Effect::ImplicitDeny, Reason::NoAllow);
    }
    if set.session.is_some() && !t.session_allow {
        return (Effect::ImplicitDeny, Reason::SessionDoesNotAllow);
    }
    if set.boundary.is_some() && !t.boundary_allow {
        return (Effect::ImplicitDeny, Reason::BoundaryDoesNotAllow);
    }
    (Effect::Allow, Reason::Allowed)
}

/// The rule for a trust policy alone.
pub(crate) fn decide_trust(t: &Tally) -> (Effect, Reason) {
    if t.explicit_deny {
        (Effect::ExplicitDeny, Reason::ExplicitDeny)
    } else if t.resource_allow.is_some() {
        (Effect::Allow, Reason::Allowed)
    } else {
        (Effect::ImplicitDeny, Reason::NoAllow)
    }
}

fn run<'p>(
    label: &str,
    policy: &'p Policy,
    scope: PolicyScope,
    ctx: &RequestContext,
    tally: &mut Tally,
    matched: &mut Vec<MatchedStatement>,
    missing: &mut Vec<&'p str>,
) {
    for stmt in &policy.statements {
        if let Some(grant) = statement_applies(stmt, ctx, missing) {
            tally.record(scope, stmt.effect, grant);
            matched.push(MatchedStatement {
                policy: label.to_owned(),
                scope,
                sid: stmt.sid.clone(),
                index: stmt.index,
                effect: stmt.effect,
            });
        }
    }
}

/// Decides a request against every policy that applies to it.
pub fn evaluate(set: &PolicySet<'_>, ctx: &RequestContext) -> Decision {
    let mut tally = Tally::default();
    let mut matched = Vec::new();
    let mut missing = Vec::new();
    for (label, policy, scope) in set.all() {
        run(
            label,
            policy,
            scope,
            ctx,
            &mut tally,
            &mut matched,
            &mut missing,
        );
    }
    let (effect, _) = decide(set, &tally);
    Decision {
        effect,
        matched,
        missing_context_keys: missing.into_iter().map(str::to_owned).collect(),
    }
}

/// Decides a request against a role trust policy alone (the principal must match). Matched
/// statements are reported under the policy label `trust`.
pub fn evaluate_trust(trust: &Policy, ctx: &RequestContext) -> Decision {
    let mut tally = Tally::default();
    let mut matched = Vec::new();
    let mut missing = Vec::new();
    run(
        "trust",
        trust,
        PolicyScope::Resource,
        ctx,
        &mut tally,
        &mut matched,
        &mut missing,
    );
    let (effect, _) = decide_trust(&tally);
    Decision {
        effect,
        matched,
        missing_context_keys: missing.into_iter().map(str::to_owned).collect(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn classifies_principal_arns() {
        assert_eq!(classify("arn:aws:iam::111122223333:root"), Grant::Account);
        assert_eq!(classify("arn:aws:iam::111122223333:role/R"), Grant::Role);
        assert_eq!(classify("arn:aws:iam::111122223333:role/p/R"), Grant::Role);
        assert_eq!(
            classify("arn:aws:sts::111122223333:assumed-role/R/S"),
            Grant::Direct
        );
        assert_eq!(classify("arn:aws:iam::111122223333:user/U"), Grant::Direct);
    }

    #[test]
    fn the_account_of_an_arn() {
        let cases = [
            ("arn:aws:sqs:us-east-1:111122223333:q", Some("111122223333")),
            ("arn:aws:iam::111122223333:role/a:b", Some("111122223333")),
            ("arn:aws:s3:::bucket/key", None),
            ("arn:aws:sqs:us-east-1:*:q", None),
            ("arn:aws:sqs:us-east-1:1111?2223333:q", None),
            ("arn:aws:sqs:us-east-1:111122223333", None),
            ("*", None),
            ("urn:aws:sqs:us-east-1:111122223333:q", None),
        ];
        for (arn, want) in cases {
            assert_eq!(arn_account(arn), want, "{arn}");
        }
        assert_eq!(ResourceAccount::of("1", Some("1")), ResourceAccount::Same);
        assert_eq!(ResourceAccount::of("1", Some("2")), ResourceAccount::Other);
        assert_eq!(ResourceAccount::of("1", None), ResourceAccount::Unknown);
    }

    /// The rule per resource account, for a role session of 111122223333 (columns: same, other,
    /// unknown account).
    #[test]
    fn resource_policies_combine_by_account() {
        use crate::policy::PolicyKind;
        let parse = |doc: serde_json::Value, kind| Policy::parse(&doc.to_string(), kind).unwrap();
        let allow = |action: &str| {
            parse(
                serde_json::json!({"Version": "2012-10-17", "Statement": [{"Effect": "Allow",
                    "Action": action, "Resource": "*"}]}),
                PolicyKind::Identity,
            )
        };
        let naming = |principal: &str, effect: &str| {
            parse(
                serde_json::json!({"Version": "2012-10-17", "Statement": [{"Effect": effect,
                    "Principal": {"AWS": principal}, "Action": "sqs:SendMessage",
                    "Resource": "*"}]}),
                PolicyKind::Resource,
            )
        };
        let session = "arn:aws:sts::111122223333:assumed-role/R/s";
        let (identity, other) = (allow("sqs:SendMessage"), allow("s3:GetObject"));
        let by_session = naming(session, "Allow");
        let by_role = naming("arn:aws:iam::111122223333:role/R", "Allow");
        let by_account = naming("111122223333", "Allow");
        let denied = naming(session, "Deny");
        let nobody = naming("arn:aws:iam::999988887777:role/X", "Allow");
        // A boundary that does not allow the request.
        let boundary = allow("s3:*");
        let ctx = RequestContext::new("sqs:SendMessage", "arn:aws:sqs:us-east-1:1:q")
            .with_principal(Principal::aws([
                session.to_owned(),
                "arn:aws:iam::111122223333:role/R".to_owned(),
                "arn:aws:iam::111122223333:root".to_owned(),
                "111122223333".to_owned(),
            ]));
        use Effect::{Allow as A, ExplicitDeny as X, ImplicitDeny as I};
        // (identity allows, boundary allows, resource policy, [same, other, unknown])
        let cases: [(bool, bool, Option<&Policy>, [Effect; 3]); 11] = [
            (false, true, Some(&by_session), [A, I, I]),
            (false, true, Some(&by_role), [A, I, I]),
            (false, false, Some(&by_role), [I, I, I]),
            (false, false, Some(&by_session), [A, I, I]),
            (false, true, Some(&by_account), [I, I, I]),
            (true, true, None, [A, I, A]),
            (true, true, Some(&by_account), [A, A, A]),
            (true, true, Some(&by_session), [A, A, A]),
            (true, true, Some(&nobody), [A, I, I]),
            (true, false, Some(&by_session), [A, I, I]),
            (true, true, Some(&denied), [X, X, X]),
        ];
        let places = [
            ResourceAccount::Same,
            ResourceAccount::Other,
            ResourceAccount::Unknown,
        ];
        for (i, (id, bnd, rp, want)) in cases.into_iter().enumerate() {
            for (place, want) in places.into_iter().zip(want) {
                let mut set = PolicySet::new()
                    .with_identity("id", if id { &identity } else { &other })
                    .with_resource_account(place);
                if !bnd {
                    set = set.with_boundary("boundary", &boundary);
                }
                if let Some(rp) = rp {
                    set = set.with_resource("rp", rp);
                }
                assert_eq!(evaluate(&set, &ctx).effect, want, "case {i} {place:?}");
                assert_eq!(super::super::explain(&set, &ctx).effect, want, "case {i}");
            }
        }
    }

    #[test]
    fn grants_are_ordered_by_strength() {
        assert!(Grant::Direct > Grant::Role);
        assert!(Grant::Role > Grant::Wildcard);
        assert!(Grant::Wildcard > Grant::Account);
        assert!(Some(Grant::Account) > None);
    }
}
