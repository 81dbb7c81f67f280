//! The one authorization check: may this session do this action on this resource? Every edge that
//! answers that question for a signed caller — the STS actions (`GetFederationToken`,
//! `DecodeAuthorizationMessage`, the caller's side of `AssumeRole`), the directory admin API, the
//! console's policy simulation, IAM `Simulate*` and `POST /v1/authorize` — asks [`decide`], and only
//! maps a denial to its own wire error. No edge gathers a session's policies or builds its request
//! context itself.
//!
//! [`decide`] builds the request context in one order: the principal, the facts only the edge
//! knows ([`Question::facts`]: request tags, a downstream service's own keys), then the request's
//! own keys (`aws:CurrentTime`, `aws:SourceIp`, `aws:SecureTransport`, …) and the session's keys
//! (`aws:PrincipalArn`, tags, claims, MFA) — last, so that no fact an edge passes on can replace
//! one of them. (Edges that take keys from their caller refuse those in the reserved key space,
//! [`crate::authz::context::reserved`], before asking.) It loads the session's policies as they are
//! now ([`SessionPolicies::for_session`]) and evaluates them, with a resource policy (and where the
//! resource is) when the edge has one.

use super::{PolicyLoadError, SessionPolicies};
use crate::app::App;
use crate::audit::AuditEvent;
use crate::authz::context::{add_request_keys, add_session_keys, session_principal};
use crate::credentials::SessionClaims;
use crate::policy::{
    self, ContextValue, Decision, Effect, Explanation, Policy, PolicySet, RequestContext,
    ResourceAccount,
};
use std::net::IpAddr;

/// What an edge asks about a signed caller.
pub struct Question<'a> {
    /// The caller's session (or long-term key, opened as a session).
    pub caller: &'a SessionClaims,
    /// The action, e.g. `sts:GetFederationToken`.
    pub action: &'a str,
    /// The resource ARN (or `*`).
    pub resource: &'a str,
    /// The request's source address; `None` leaves `aws:SourceIp` out of the context (a caller of
    /// `/v1/authorize` that did not say where the request came from).
    pub source_ip: Option<IpAddr>,
    /// Whether the request came over TLS (`aws:SecureTransport`).
    pub secure_transport: bool,
    /// Keys only this edge knows (request tags, a downstream service's own context); set before
    /// the request's and the session's keys, which they cannot replace.
    pub facts: Vec<(String, ContextValue)>,
    /// A resource-based policy that applies, with its label.
    pub resource_policy: Option<(&'a str, &'a Policy)>,
    /// Where the resource is, seen from the caller (its account, another, unknown).
    pub resource_account: ResourceAccount,
}

impl<'a> Question<'a> {
    /// The question for `caller` doing `action` on `resource`, with no source address, no extra
    /// facts and no resource policy.
    pub fn new(caller: &'a SessionClaims, action: &'a str, resource: &'a str) -> Self {
        Self {
            caller,
            action,
            resource,
            source_ip: None,
            secure_transport: false,
            facts: Vec::new(),
            resource_policy: None,
            resource_account: ResourceAccount::Same,
        }
    }

    /// The resource has a resource-based policy (`label`, `policy`), and is in `account` as seen
    /// from the caller.
    pub fn with_resource_policy(
        mut self,
        label: &'a str,
        policy: Option<&'a Policy>,
        account: ResourceAccount,
    ) -> Self {
        self.resource_policy = policy.map(|p| (label, p));
        self.resource_account = account;
        self
    }

    /// Adds a fact only this edge knows.
    pub fn fact(mut self, key: impl Into<String>, value: ContextValue) -> Self {
        self.facts.push((key.into(), value));
        self
    }

    /// The request came from `ip`, over TLS or not.
    pub fn from_address(mut self, ip: IpAddr, secure_transport: bool) -> Self {
        self.source_ip = Some(ip);
        self.secure_transport = secure_transport;
        self
    }
}

/// The answer: the decision with its matched statements and missing keys, the context it was
/// made in, and what is needed to explain it.
pub struct Verdict<'a> {
    /// The evaluation's result.
    pub decision: Decision,
    /// The request context the policies were evaluated in.
    pub context: RequestContext,
    policies: SessionPolicies,
    resource_policy: Option<(&'a str, &'a Policy)>,
    resource_account: ResourceAccount,
    principal: String,
    action: String,
    resource: String,
}

impl Verdict<'_> {
    /// Whether the policies allow the request.
    pub fn allowed(&self) -> bool {
        self.decision.is_allowed()
    }

    /// Whether a `Deny` statement decided.
    pub fn explicit_deny(&self) -> bool {
        self.decision.effect == Effect::ExplicitDeny
    }

    /// Why, statement by statement (computed on demand: allowed requests rarely need it).
    pub fn explain(&self) -> Explanation {
        policy::explain(&self.set(), &self.context)
    }

    fn set(&self) -> PolicySet<'_> {
        set_of(&self.policies, self.resource_policy, self.resource_account)
    }

    /// For a denial: the audit event gets the explanation and the reason ("the policies of … do
    /// not allow … on …: …"); returns the reason.
    pub fn audit_denial(&self, ev: &mut AuditEvent) -> String {
        let explanation = self.explain();
        ev.explanation = serde_json::to_value(&explanation).ok();
        let reason = format!(
            "the policies of {} do not allow {} on {}: {explanation}",
            self.principal, self.action, self.resource
        );
        ev.reason = Some(reason.clone());
        reason
    }

    /// AWS's message for a denial: `User: ARN is not authorized to perform: ACTION on resource:
    /// RESOURCE`.
    pub fn denial_message(&self) -> String {
        format!(
            "User: {} is not authorized to perform: {} on resource: {}",
            self.principal, self.action, self.resource
        )
    }
}

/// Decides `q`: the caller's policies as they are now (and the resource policy, if any) in the
/// context [`Question`] describes. Fails only when the policies cannot be loaded.
pub async fn decide<'a>(app: &App, q: Question<'a>) -> Result<Verdict<'a>, PolicyLoadError> {
    let now = app.clock.now();
    let mut ctx =
        RequestContext::new(q.action, q.resource).with_principal(session_principal(q.caller));
    for (k, v) in q.facts {
        ctx.set(&k, v);
    }
    let ip = q
        .source_ip
        .unwrap_or(IpAddr::V4(std::net::Ipv4Addr::UNSPECIFIED));
    add_request_keys(&mut ctx, now, ip, q.secure_transport);
    if q.source_ip.is_none() {
        ctx.remove("aws:SourceIp");
    }
    add_session_keys(&mut ctx, q.caller, now);
    let policies = SessionPolicies::for_session(app, q.caller).await?;
    let decision = policy::evaluate(
        &set_of(&policies, q.resource_policy, q.resource_account),
        &ctx,
    );
    Ok(Verdict {
        decision,
        context: ctx,
        policies,
        resource_policy: q.resource_policy,
        resource_account: q.resource_account,
        principal: q.caller.principal.arn(),
        action: q.action.to_string(),
        resource: q.resource.to_string(),
    })
}

/// The session's policies with the resource policy, and where the resource is.
fn set_of<'p>(
    policies: &'p SessionPolicies,
    resource_policy: Option<(&'p str, &'p Policy)>,
    account: ResourceAccount,
) -> PolicySet<'p> {
    let mut set = policies.set().with_resource_account(account);
    set.resource = resource_policy;
    set
}
