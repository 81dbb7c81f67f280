//! `AssumeRoleWithWebIdentity`: an OIDC ID token for a session of a role that trusts its provider.

use super::federated::{self, SignIn};
use super::mint::{
    finish, role_session, start, write_assumed_role_user, write_credentials, write_packed_size,
};
use super::session::{check_tag_set, packed_percent, session_policy};
use crate::app::App;
use crate::audit::AuditEvent;
use crate::authn as auth;
use crate::credentials::Tag;
use crate::idp::jwt::JwtError;
use crate::policy::ContextValue;
use crate::query::params::{self, Params};
use crate::query::{QueryError, QueryRequest};
use serde_json::Value;
use std::sync::Arc;

/// Session tags in a web identity token.
const TAGS_CLAIM: &str = "https://aws.amazon.com/tags";
/// Source identity in a web identity token.
const SOURCE_IDENTITY_CLAIM: &str = "https://aws.amazon.com/source_identity";

fn jwt_error(e: JwtError) -> QueryError {
    match e {
        JwtError::Invalid(r) => QueryError::invalid_identity_token(r),
        JwtError::Expired(r) => QueryError::expired_identity_token(r),
        JwtError::Unreachable(r) => QueryError::idp_communication(r),
    }
}

/// When the provider says MFA was performed: an `amr` value the provider's configuration trusts
/// (`mfa_amr`) makes the session's MFA time the token's `auth_time` (or `iat`). Without trusted
/// values, upstream MFA does not count.
fn upstream_mfa_time(
    provider: &crate::config::OidcProvider,
    claims: &serde_json::Map<String, Value>,
    issued_at: i64,
) -> Option<i64> {
    if provider.mfa_amr.is_empty() {
        return None;
    }
    let amr: Vec<&str> = match claims.get("amr") {
        Some(Value::Array(a)) => a.iter().filter_map(Value::as_str).collect(),
        Some(Value::String(s)) => vec![s.as_str()],
        _ => return None,
    };
    if !amr.iter().any(|v| provider.mfa_amr.iter().any(|t| t == v)) {
        return None;
    }
    Some(crate::idp::authenticated_at(claims, issued_at))
}

/// Session tags and transitive keys from the `https://aws.amazon.com/tags` claim.
fn token_tags(
    claims: &serde_json::Map<String, Value>,
) -> Result<(Vec<Tag>, Vec<String>), QueryError> {
    let Some(v) = claims.get(TAGS_CLAIM) else {
        return Ok((Vec::new(), Vec::new()));
    };
    let bad = |why: &str| QueryError::invalid_identity_token(format!("claim {TAGS_CLAIM}: {why}"));
    let obj = v.as_object().ok_or_else(|| bad("not an object"))?;
    let mut tags = Vec::new();
    if let Some(pt) = obj.get("principal_tags") {
        let pt = pt
            .as_object()
            .ok_or_else(|| bad("principal_tags is not an object"))?;
        for (k, vals) in pt {
            let value = match vals {
                Value::Array(a) if a.len() == 1 => a[0]
                    .as_str()
                    .ok_or_else(|| bad("tag values must be strings"))?,
                Value::String(s) => s.as_str(),
                _ => return Err(bad("each principal tag must have exactly one string value")),
            };
            params::check_tag(k, value).map_err(|e| bad(&e.message))?;
            tags.push(Tag {
                key: k.clone(),
                value: value.to_string(),
            });
        }
    }
    let mut transitive = Vec::new();
    if let Some(tt) = obj.get("transitive_tag_keys") {
        let arr = tt
            .as_array()
            .ok_or_else(|| bad("transitive_tag_keys is not an array"))?;
        for k in arr {
            let k = k
                .as_str()
                .ok_or_else(|| bad("transitive tag keys must be strings"))?;
            if !tags.iter().any(|t| t.key == k) {
                return Err(bad(&format!(
                    "transitive tag key {k} is not a principal tag"
                )));
            }
            transitive.push(k.to_string());
        }
    }
    check_tag_set(&tags).map_err(|e| bad(&e.message))?;
    Ok((tags, transitive))
}

/// `AssumeRoleWithWebIdentity`: an OIDC token for a session of a role that trusts its provider.
pub async fn assume_role_with_web_identity(
    app: &Arc<App>,
    req: &QueryRequest<'_>,
    params: &Params,
    ev: &mut AuditEvent,
) -> Result<String, QueryError> {
    let (role_arn, session_name) = super::requested_role_session(params, ev)?;
    let token = params.required("WebIdentityToken", "webIdentityToken")?;
    params::check_role_arn(role_arn)?;
    params::check_name(session_name, "roleSessionName")?;
    params::check_secret_length(token, "webIdentityToken", 4, 20_000)?;
    if params.get("ProviderId")?.is_some() {
        return Err(QueryError::invalid_parameter(
            "ProviderId is only for OAuth 2.0 access tokens; this service accepts OpenID Connect ID tokens",
        ));
    }
    let duration = params::duration(params.get("DurationSeconds")?, 900, 43_200)?;
    let sp = session_policy(params)?;

    let denied =
        || QueryError::access_denied("Not authorized to perform sts:AssumeRoleWithWebIdentity");
    let role = federated::role(app, role_arn, &sp, denied)?;
    ev.principal = Some(role_session(role, session_name).arn());

    let identity = app.verifier.verify(token).await.map_err(jwt_error)?;
    let provider = &identity.provider;
    ev.provider = Some(provider.issuer.clone());
    ev.subject = Some(identity.subject.clone());
    auth::limit_principal(app, &format!("{}#{}", provider.issuer, identity.subject))?;
    if !provider.serves_account(&role.account) {
        return Err(denied().because(format!(
            "provider {} is not a provider of account {}",
            provider.issuer, role.account
        )));
    }
    federated::check_duration(duration, role)?;
    let (tags, transitive) = token_tags(&identity.claims)?;
    let source_identity = match identity.claims.get(SOURCE_IDENTITY_CLAIM) {
        None => None,
        Some(Value::String(s)) => {
            params::check_source_identity(s).map_err(|e| {
                QueryError::invalid_identity_token(format!(
                    "claim {SOURCE_IDENTITY_CLAIM}: {}",
                    e.message
                ))
            })?;
            Some(s.clone())
        }
        Some(_) => {
            return Err(QueryError::invalid_identity_token(format!(
                "claim {SOURCE_IDENTITY_CLAIM} is not a string"
            )))
        }
    };
    let percent = packed_percent(&sp, &tags)?;

    let now = app.clock.now();
    let sign_in = SignIn {
        action: "sts:AssumeRoleWithWebIdentity",
        role,
        provider_arn: provider.arn(&role.account),
        key_prefix: &provider.key_prefix,
        claims: &identity.claims,
        protocol_keys: vec![(
            format!("{}:aud", provider.key_prefix),
            ContextValue::Single(identity.audience.clone()),
        )],
        subject: &identity.subject,
        session_name,
        mfa_time: upstream_mfa_time(provider, &identity.claims, identity.issued_at),
        tags,
        transitive,
        source_identity: source_identity.clone(),
    };
    sign_in.check_trust(req, now, denied, ev)?;

    let admission = sign_in.admit(app, &provider.name, identity.issued_at, denied)?;
    let (claims, token) = sign_in.mint(app, &admission, duration.unwrap_or(3600), &sp, ev)?;

    let op = "AssumeRoleWithWebIdentity";
    let mut w = start(op);
    write_credentials(&mut w, &claims, &token);
    w.leaf("SubjectFromWebIdentityToken", &identity.subject);
    write_assumed_role_user(&mut w, &claims);
    write_packed_size(&mut w, &sp, &claims, percent);
    w.leaf("Provider", &provider.issuer);
    w.leaf("Audience", &identity.audience);
    w.leaf_opt("SourceIdentity", source_identity.as_deref());
    Ok(finish(w, op, req.request_id))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn provider(trusted: &[&str]) -> crate::config::OidcProvider {
        crate::config::OidcProvider {
            issuer: "https://idp.example.com".into(),
            key_prefix: "idp.example.com".into(),
            audiences: vec!["a".into()],
            jwks: crate::config::JwksSource::Discovery,
            algorithms: vec![],
            leeway_seconds: 0,
            allow_http: false,
            accounts: None,
            name: "idp".into(),
            groups_claim: "groups".into(),
            groups_delimiter: None,
            email_claim: "email".into(),
            email_always_verified: false,
            mfa_amr: trusted.iter().map(|s| s.to_string()).collect(),
            login: None,
        }
    }

    #[test]
    fn upstream_mfa_counts_only_for_trusted_amr_values() {
        let claims = |v: Value| v.as_object().unwrap().clone();
        let cases = [
            (
                &["mfa"][..],
                json!({"amr": ["pwd", "mfa"], "auth_time": 900}),
                Some(900),
            ),
            (&["mfa"][..], json!({"amr": ["pwd", "mfa"]}), Some(1000)),
            (&["mfa"][..], json!({"amr": "mfa"}), Some(1000)),
            (&["mfa"][..], json!({"amr": ["pwd"]}), None),
            (&["mfa"][..], json!({}), None),
            // auth_time after iat is not believed.
            (
                &["mfa"][..],
                json!({"amr": ["mfa"], "auth_time": 2000}),
                Some(1000),
            ),
            // Nothing trusted: the provider's word does not count.
            (&[][..], json!({"amr": ["mfa"], "auth_time": 900}), None),
            (&["hwk"][..], json!({"amr": ["MFA"]}), None),
        ];
        for (trusted, c, want) in cases {
            assert_eq!(
                upstream_mfa_time(&provider(trusted), &claims(c.clone()), 1000),
                want,
                "{trusted:?} {c}"
            );
        }
    }
}
