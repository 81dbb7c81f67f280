//! The path `AssumeRoleWithWebIdentity` and `AssumeRoleWithSAML` share: a federated sign-in for
//! a session of a role that trusts its provider.

use crate::audit::AuditEvent;
use crate::config::Role;
use crate::policy::{self, Effect, RequestContext};
use crate::query::StsError;

/// What a federated sign-in (web identity or SAML) asks of a role's trust policy.
pub(super) struct FederatedTrust<'a> {
    /// `sts:AssumeRoleWithWebIdentity` or `sts:AssumeRoleWithSAML`.
    pub action: &'static str,
    /// Session tags are asked for: `sts:TagSession` must be allowed too.
    pub tags: bool,
    /// A source identity is set: `sts:SetSourceIdentity` must be allowed too.
    pub source_identity: bool,
    /// The provider's ARN, for the audit reason.
    pub provider_arn: &'a str,
    /// The subject at the provider, for the audit reason.
    pub subject: &'a str,
}

/// The trust policy must allow the sign-in's action and every action its request implies, each
/// evaluated on its own request context; the first refusal carries the policy engine's
/// explanation into the audit event.
pub(super) fn check_federated_trust(
    role: &Role,
    t: FederatedTrust<'_>,
    make_ctx: impl Fn(&str) -> RequestContext,
    denied: impl Fn() -> StsError,
    ev: &mut AuditEvent,
) -> Result<(), StsError> {
    let mut actions = vec![t.action];
    if t.tags {
        actions.push("sts:TagSession");
    }
    if t.source_identity {
        actions.push("sts:SetSourceIdentity");
    }
    for action in actions {
        let ctx = make_ctx(action);
        if policy::evaluate_trust(&role.trust_policy, &ctx).effect != Effect::Allow {
            let explanation = policy::explain_trust(&role.trust_policy, &ctx);
            ev.explanation = serde_json::to_value(&explanation).ok();
            return Err(denied().because(format!(
                "trust policy of {} does not allow {action} for {} (sub {}): {explanation}",
                role.arn, t.provider_arn, t.subject
            )));
        }
    }
    Ok(())
}
