//! The one authorization check: may this session do this action on this resource? Every edge that
//! answers that question for a signed caller — the STS actions (`GetFederationToken`,
//! `DecodeAuthorizationMessage`, the caller's side of `AssumeRole`), the directory admin API, the
//! console's policy simulation, IAM `Simulate*` and `POST /v1/authorize` — asks [`decide`], and only
//! maps a denial to its own wire error. No edge gathers a session's policies or builds its request
//! context itself.
//!
//! [`decide`] builds the request context in one order: the principal, the request's own keys
//! (`aws:CurrentTime`, `aws:SourceIp`, `aws:SecureTransport`, …), the session's keys
//! (`aws:PrincipalArn`, tags, claims, MFA), then the facts only the edge knows ([`Question::facts`]).
//! It loads the session's policies as they are now ([`SessionPolicies::for_session`]) and evaluates
//! them, with a resource policy when the edge has one.

use super::{PolicyLoadError, SessionPolicies};
use crate::app::App;
use crate::audit::AuditEvent;
use crate::credentials::SessionClaims;
use crate::policy::{self, ContextValue, Decision, Effect, Explanation, Policy, RequestContext};
use crate::sts::context::{add_request_keys, add_session_keys, session_principal};
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
    /// Keys only this edge knows (request tags, a downstream service's own context), set after the
    /// session's. An edge that takes keys from its caller checks them against the reserved key
    /// space first.
    pub facts: Vec<(String, ContextValue)>,
    /// A resource-based policy that applies, with its label.
    pub resource_policy: Option<(&'a str, &'a Policy)>,
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
        }
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
        let mut set = self.policies.set();
        if let Some(rp) = self.resource_policy {
            set.resource = Some(rp);
        }
        policy::explain(&set, &self.context)
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
    let ip = q
        .source_ip
        .unwrap_or(IpAddr::V4(std::net::Ipv4Addr::UNSPECIFIED));
    add_request_keys(&mut ctx, now, ip, q.secure_transport);
    if q.source_ip.is_none() {
        ctx.remove("aws:SourceIp");
    }
    add_session_keys(&mut ctx, q.caller, now);
    for (k, v) in q.facts {
        ctx.set(&k, v);
    }
    let policies = SessionPolicies::for_session(app, q.caller).await?;
    let decision = {
        let mut set = policies.set();
        if let Some(rp) = q.resource_policy {
            set.resource = Some(rp);
        }
        policy::evaluate(&set, &ctx)
    };
    Ok(Verdict {
        decision,
        context: ctx,
        policies,
        resource_policy: q.resource_policy,
        principal: q.caller.principal.arn(),
        action: q.action.to_string(),
        resource: q.resource.to_string(),
    })
}
