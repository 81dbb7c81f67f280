//! The path `AssumeRoleWithWebIdentity` and `AssumeRoleWithSAML` share: a federated sign-in for
//! a session of a role that trusts its provider. Each protocol reads its own parameters and
//! verifies its own token or assertion; from the role lookup on the steps are the same: the role
//! and its session policies, the requested lifetime against the role's maximum, the trust policy
//! (with `sts:TagSession` and `sts:SetSourceIdentity` when asked for), the mint gate, the mint.

use super::mint::{mint, refused, role_session, Mint};
use super::session::{check_policy_arns_exist, tag_pairs, SessionPolicy};
use crate::app::App;
use crate::audit::AuditEvent;
use crate::authz::context::{self, add_request_keys, add_request_tags};
use crate::authz::gate::{self, Admission};
use crate::config::Role;
use crate::credentials::{Federation, SessionClaims, Tag};
use crate::policy::{self, ContextValue, Effect, Principal, RequestContext};
use crate::query::{QueryError, QueryRequest};
use chrono::{DateTime, Utc};
use serde_json::{Map, Value};

/// The role a sign-in asks for, whose account must hold every `PolicyArns` entry; an unknown
/// role is `denied`.
pub(super) fn role<'a>(
    app: &'a App,
    role_arn: &str,
    sp: &SessionPolicy,
    denied: impl Fn() -> QueryError,
) -> Result<&'a Role, QueryError> {
    let role = app
        .config
        .role(role_arn)
        .ok_or_else(|| denied().because(format!("role {role_arn} does not exist")))?;
    check_policy_arns_exist(app, sp, role)?;
    Ok(role)
}

/// A `DurationSeconds` asked for must not exceed the role's maximum.
pub(super) fn check_duration(duration: Option<i64>, role: &Role) -> Result<(), QueryError> {
    match duration {
        Some(d) if d > i64::from(role.max_session_duration) => Err(QueryError::validation_msg(
            "The requested DurationSeconds exceeds the MaxSessionDuration set for this role.",
        )),
        _ => Ok(()),
    }
}

/// A sign-in its protocol has verified, on its way to a session of `role`.
pub(super) struct SignIn<'a> {
    /// `sts:AssumeRoleWithWebIdentity` or `sts:AssumeRoleWithSAML`.
    pub action: &'static str,
    /// The role asked for.
    pub role: &'a Role,
    /// The provider's ARN in the role's account (`Principal.Federated`, `aws:FederatedProvider`).
    pub provider_arn: String,
    /// The prefix of the claims' condition keys: `saml`, or the OIDC provider's key prefix.
    pub key_prefix: &'a str,
    /// The token's claims or the assertion's `saml:*` keys; kept in the session.
    pub claims: &'a Map<String, Value>,
    /// Condition keys only this protocol sets, after the claims.
    pub protocol_keys: Vec<(String, ContextValue)>,
    /// The subject at the provider.
    pub subject: &'a str,
    /// The session name.
    pub session_name: &'a str,
    /// When the provider vouches for MFA.
    pub mfa_time: Option<i64>,
    /// Session tags.
    pub tags: Vec<Tag>,
    /// Transitive tag keys.
    pub transitive: Vec<String>,
    /// Source identity.
    pub source_identity: Option<String>,
}

impl SignIn<'_> {
    /// The request context the trust policy sees for `action` at `now`.
    fn context(&self, action: &str, req: &QueryRequest<'_>, now: DateTime<Utc>) -> RequestContext {
        let mut ctx =
            RequestContext::new(action, self.role.arn.clone()).with_principal(Principal {
                aws: Vec::new(),
                federated: Some(self.provider_arn.clone()),
                service: None,
            });
        add_request_keys(&mut ctx, now, req.source_ip, req.secure_transport);
        context::add_claims(&mut ctx, self.key_prefix, self.claims);
        for (k, v) in &self.protocol_keys {
            ctx.set(k, v.clone());
        }
        ctx.set(
            "aws:FederatedProvider",
            ContextValue::Single(self.provider_arn.clone()),
        );
        context::add_mfa_keys(&mut ctx, self.mfa_time, now);
        ctx.set(
            "sts:RoleSessionName",
            ContextValue::Single(self.session_name.to_string()),
        );
        if !self.tags.is_empty() {
            add_request_tags(&mut ctx, &tag_pairs(&self.tags));
        }
        if let Some(si) = &self.source_identity {
            ctx.set("sts:SourceIdentity", ContextValue::Single(si.clone()));
        }
        ctx
    }

    /// The trust policy must allow the sign-in's action and every action its request implies,
    /// each evaluated on its own request context; the first refusal carries the policy engine's
    /// explanation into the audit event.
    pub(super) fn check_trust(
        &self,
        req: &QueryRequest<'_>,
        now: DateTime<Utc>,
        denied: impl Fn() -> QueryError,
        ev: &mut AuditEvent,
    ) -> Result<(), QueryError> {
        let mut actions = vec![self.action];
        if !self.tags.is_empty() {
            actions.push("sts:TagSession");
        }
        if self.source_identity.is_some() {
            actions.push("sts:SetSourceIdentity");
        }
        let trust = &self.role.trust_policy;
        for action in actions {
            let ctx = self.context(action, req, now);
            if policy::evaluate_trust(trust, &ctx).effect != Effect::Allow {
                let explanation = policy::explain_trust(trust, &ctx);
                ev.explanation = serde_json::to_value(&explanation).ok();
                return Err(denied().because(format!(
                    "trust policy of {} does not allow {action} for {} (sub {}): {explanation}",
                    self.role.arn, self.provider_arn, self.subject
                )));
            }
        }
        Ok(())
    }

    /// The mint gate's word on this subject of provider `provider` (by name), signed in at
    /// `signed_in_at`.
    pub(super) fn admit(
        &self,
        app: &App,
        provider: &str,
        signed_in_at: i64,
        denied: impl FnOnce() -> QueryError,
    ) -> Result<Admission, QueryError> {
        gate::admit_federated(app, provider, self.subject, signed_in_at)
            .map_err(|e| refused(e, denied))
    }

    /// The session: `lifetime` seconds of the role, federated by the provider with its claims
    /// (later decisions see them under the same key prefix).
    pub(super) fn mint(
        self,
        app: &App,
        admission: &Admission,
        lifetime: i64,
        sp: &SessionPolicy,
        ev: &mut AuditEvent,
    ) -> Result<(SessionClaims, String), QueryError> {
        let federation = Federation {
            provider_arn: self.provider_arn,
            key_prefix: self.key_prefix.to_string(),
            subject: self.subject.to_string(),
            claims: Some(Value::Object(self.claims.clone())),
        };
        mint(
            app,
            admission,
            Mint {
                principal: role_session(self.role, self.session_name),
                duration: lifetime,
                source_identity: self.source_identity,
                tags: self.tags,
                transitive: self.transitive,
                policy: sp,
                federation: Some(federation),
                mfa_time: self.mfa_time,
                chained: false,
                origin_user: None,
                parents: Vec::new(),
            },
            ev,
        )
    }
}
