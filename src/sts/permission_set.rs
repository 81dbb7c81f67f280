//! Credentials for a permission set, for someone signed in to the portal or SSO.

use super::mint::{mint, role_session, Mint};
use super::session::SessionPolicy;
use crate::app::App;
use crate::audit::AuditEvent;
use crate::authz::context::{self, add_request_keys};
use crate::authz::gate::Admitted;
use crate::credentials::{Federation, SessionClaims};
use crate::policy::{self, Effect, Principal, RequestContext};
use crate::query::QueryError;
use serde_json::Value;

/// The provider ARN credentials for an assignment in `account` carry as their federation (a
/// revocation of the person's subject at it ends them).
pub fn sign_in_provider_arn(account: &str) -> String {
    format!(
        "arn:aws:iam::{account}:saml-provider/{}",
        crate::config::SIGN_IN_PROVIDER
    )
}

/// Credentials for a permission set in an account, for someone signed in: the assignment must be
/// one the rules give them now, and the role's generated trust policy (with the permission set's
/// MFA requirement) must allow rolegate's sign-in path with this sign-in's MFA. The session lasts
/// the permission set's session duration and is named after the subject. Only for a sign-in the
/// gate admitted just now ([`crate::authz::gate::admit_sign_in`]): its directory groups are as
/// they are now.
pub fn credentials_for_assignment(
    app: &App,
    admitted: &Admitted,
    account: &str,
    permission_set: &str,
    ev: &mut AuditEvent,
) -> Result<(SessionClaims, String), QueryError> {
    let denied = || {
        QueryError::access_denied(format!(
            "Not authorized to use permission set {permission_set} in account {account}"
        ))
    };
    let who = &admitted.identity;
    let provisioned = app.provisioned.groups(&who.provider, &who.subject);
    let evaluation = crate::mapping::evaluate(
        &app.config,
        &crate::mapping::Subject {
            provider: &who.provider,
            subject: &who.subject,
            claims: &who.claims,
            local_groups: &who.local_groups,
            provisioned_groups: provisioned.as_deref(),
        },
    )
    .map_err(|e| denied().because(e.to_string()))?;
    let Some(assignment) = evaluation
        .assignments
        .iter()
        .find(|a| a.account == account && a.permission_set == permission_set)
    else {
        return Err(denied().because(format!(
            "no assignment rule gives {} at {} permission set {permission_set} in {account}",
            who.subject, who.provider
        )));
    };
    let role = app.config.role(&assignment.role_arn).ok_or_else(|| {
        denied().because(format!("role {} is not provisioned", assignment.role_arn))
    })?;
    let set = app
        .config
        .permission_sets
        .iter()
        .find(|p| p.name == permission_set)
        .ok_or_else(|| denied().because("permission set not configured"))?;
    ev.role_arn = Some(role.arn.clone());
    let provider_arn = sign_in_provider_arn(account);
    let now = app.clock.now();
    let mut ctx = RequestContext::new("sts:AssumeRoleWithSAML", role.arn.clone())
        .with_principal(Principal::federated(provider_arn.clone()));
    add_request_keys(&mut ctx, now, std::net::IpAddr::from([127, 0, 0, 1]), true);
    ctx.remove("aws:SourceIp");
    context::add_mfa_keys(&mut ctx, who.mfa_time, now);
    if policy::evaluate_trust(&role.trust_policy, &ctx).effect != Effect::Allow {
        let explanation = policy::explain_trust(&role.trust_policy, &ctx);
        ev.explanation = serde_json::to_value(&explanation).ok();
        return Err(QueryError::access_denied(format!(
            "Permission set {permission_set} requires {}",
            match set.mfa {
                crate::config::MfaRequirement::Within(s) => {
                    format!("MFA within the last {} minutes", s / 60)
                }
                _ => "MFA".to_string(),
            }
        ))
        .because(format!(
            "trust policy of {} does not allow this sign-in: {explanation}",
            role.arn
        )));
    }
    let session_name: String = who
        .subject
        .chars()
        .map(|c| {
            if crate::config::is_iam_name_char(c) {
                c
            } else {
                '_'
            }
        })
        .take(64)
        .collect();
    let session_name = if session_name.chars().count() < 2 {
        format!("{session_name}__")
    } else {
        session_name
    };
    mint(
        app,
        &admitted.admission,
        Mint {
            principal: role_session(role, &session_name),
            duration: i64::from(set.session_seconds),
            source_identity: None,
            tags: Vec::new(),
            transitive: Vec::new(),
            policy: &SessionPolicy::none(),
            federation: Some(Federation {
                provider_arn,
                key_prefix: who.provider.clone(),
                subject: who.subject.to_string(),
                claims: Some(Value::Object(who.claims.clone())),
            }),
            mfa_time: who.mfa_time,
            chained: false,
            origin_user: who.origin_user.clone(),
            parents: Vec::new(),
        },
        ev,
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::authz::gate;
    use crate::testing;
    use serde_json::json;

    #[tokio::test]
    async fn step_up_mfa_must_be_recent_for_the_permission_set() {
        let (app, clock) = testing::config()
            .permission_set("Breakglass", "mfa = \"required\"\nmfa_max_age_minutes = 15")
            .build(1_700_000_000)
            .await;
        // The set is assigned to the group dev.
        for (name, group) in [("ana", "dev"), ("bo", "oncall")] {
            testing::directory_user(&app, name, &[group]).await;
        }
        let d = app.directory.clone().unwrap();
        let who = |name: &str, mfa_time: Option<i64>| {
            let d = d.clone();
            let name = name.to_string();
            async move {
                let u = d.user(&name).await.unwrap();
                crate::authz::gate::SignedInIdentity {
                    provider: "local".into(),
                    subject: name.clone(),
                    claims: json!({"sub": name}).as_object().unwrap().clone(),
                    mfa_time,
                    origin_user: Some(u.user_id),
                    // A stale snapshot: the gate reads the groups again.
                    local_groups: vec!["dev".into()],
                    signed_in_at: 1_700_000_000,
                }
            }
        };
        let app2 = app.clone();
        let issue = |w: crate::authz::gate::SignedInIdentity| {
            let app = app2.clone();
            async move {
                let admitted = gate::admit_sign_in(&app, &w).await.unwrap();
                let mut ev = AuditEvent::default();
                credentials_for_assignment(&app, &admitted, "111122223333", "Breakglass", &mut ev)
            }
        };
        let fresh = who("ana", Some(1_700_000_000 - 60)).await;
        let (c, _) = issue(fresh.clone())
            .await
            .expect("MFA a minute ago is recent enough");
        assert_eq!(
            c.principal.arn(),
            "arn:aws:sts::111122223333:assumed-role/RolegateSSO_Breakglass/ana"
        );
        assert_eq!(c.expires_at - c.issued_at, 3600);
        assert_eq!(c.mfa_time, Some(1_700_000_000 - 60));

        clock.advance(chrono::Duration::minutes(15));
        let e = issue(fresh)
            .await
            .expect_err("MFA 16 minutes ago is too old");
        assert_eq!(e.code, "AccessDenied");
        assert!(
            e.message.contains("within the last 15 minutes"),
            "{}",
            e.message
        );
        assert!(e.reason.contains("aws:MultiFactorAuthAge"), "{}", e.reason);

        let none = who("ana", None).await;
        assert!(issue(none).await.is_err(), "no MFA at all");
        // bo's snapshot says dev; the directory says oncall.
        let outsider = who("bo", Some(1_700_000_000 + 900)).await;
        let e = issue(outsider).await.expect_err("not assigned");
        assert!(e.reason.contains("no assignment rule"), "{}", e.reason);
    }
}
