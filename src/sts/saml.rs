//! `AssumeRoleWithSAML`: a SAML assertion of a configured provider for a session of a role that
//! trusts it. Parameters first, then the assertion (shape, signature, conditions), then the
//! Role attribute, then the trust policy with every `saml:*` key, then the mint gate, and only then
//! the assertion's use is recorded (replay): any refusal issues and records nothing.

use super::federated::{self, SignIn};
use super::mint::{
    finish, role_session, start, write_assumed_role_user, write_credentials, write_packed_size,
};
use super::session::{check_tag_set, packed_percent, session_policy};
use crate::app::App;
use crate::audit::AuditEvent;
use crate::credentials::Tag;
use crate::idp::saml::{self, SamlError, SamlIdentity, Use};
use crate::policy::ContextValue;
use crate::query::params::{self, Params};
use crate::query::{QueryError, QueryRequest};
use serde_json::{Map, Value};
use std::sync::Arc;

/// The SAML attribute naming the roles a person may take: `roleArn,providerArn` pairs.
pub const ROLE_ATTRIBUTE: &str = "https://aws.amazon.com/SAML/Attributes/Role";
/// The session name.
pub const SESSION_NAME_ATTRIBUTE: &str = "https://aws.amazon.com/SAML/Attributes/RoleSessionName";
/// The source identity.
pub const SOURCE_IDENTITY_ATTRIBUTE: &str = "https://aws.amazon.com/SAML/Attributes/SourceIdentity";
/// Prefix of session tag attributes.
pub const PRINCIPAL_TAG_PREFIX: &str = "https://aws.amazon.com/SAML/Attributes/PrincipalTag:";
/// Transitive tag keys.
pub const TRANSITIVE_ATTRIBUTE: &str = "https://aws.amazon.com/SAML/Attributes/TransitiveTagKeys";
/// Session duration in seconds.
pub const SESSION_DURATION_ATTRIBUTE: &str =
    "https://aws.amazon.com/SAML/Attributes/SessionDuration";

/// The STS error for a refused assertion: coarse message, precise reason.
pub fn saml_error(e: SamlError) -> QueryError {
    match e {
        SamlError::Expired(r) => QueryError {
            code: crate::query::AwsCode::ExpiredTokenException,
            message: "Token expired: the SAML assertion has expired".into(),
            reason: r,
            request_id: String::new(),
        },
        SamlError::Unavailable(r) => QueryError::unavailable(r),
        SamlError::Replay(r) => {
            QueryError::invalid_identity_token_msg("Invalid SAML assertion: it was already used")
                .because(format!("replay: {r}"))
        }
        SamlError::UnknownProvider(r) => {
            QueryError::invalid_identity_token_msg("Specified provider doesn't exist.").because(r)
        }
        SamlError::Invalid(r) | SamlError::Unsolicited(r) => {
            QueryError::invalid_identity_token_msg("Invalid SAML assertion").because(r)
        }
    }
}

fn bad_attribute(name: &str, why: &str) -> QueryError {
    QueryError::invalid_identity_token_msg("Invalid SAML assertion")
        .because(format!("attribute {name}: {why}"))
}

fn single<'a>(id: &'a SamlIdentity, name: &str) -> Result<Option<&'a str>, QueryError> {
    match id.attributes.get(name).map(Vec::as_slice) {
        None => Ok(None),
        Some([v]) => Ok(Some(v.as_str())),
        Some(_) => Err(bad_attribute(name, "must have exactly one value")),
    }
}

/// The `saml:*` condition keys of an identity as a claims map (also kept in the session for later
/// decisions): every attribute by name, plus `aud`, `iss`, `sub`, `sub_type`, `namequalifier`,
/// `doc`.
pub fn saml_claims(id: &SamlIdentity, account: &str) -> Map<String, Value> {
    let mut claims = id.attributes_json();
    let s = |v: &str| Value::String(v.to_string());
    claims.insert("aud".into(), s(&id.recipient));
    claims.insert("iss".into(), s(&id.issuer));
    claims.insert("sub".into(), s(&id.name_id));
    claims.insert(
        "sub_type".into(),
        s(&saml::sub_type(id.name_id_format.as_deref())),
    );
    claims.insert(
        "namequalifier".into(),
        s(&saml::name_qualifier(&id.issuer, account, &id.provider)),
    );
    claims.insert("doc".into(), s(&format!("{account}/{}", id.provider)));
    claims
}

/// Whether the Role attribute carries the pair (role, provider), in either order, as AWS accepts.
/// Each value is `ARN,ARN` exactly as signed: nothing is trimmed, so a value with spaces around
/// the comma names no pair.
fn role_pair_present(values: &[String], role_arn: &str, provider_arn: &str) -> bool {
    values.iter().any(|v| {
        let parts: Vec<&str> = v.split(',').collect();
        matches!(parts.as_slice(), [a, b] if (*a == role_arn && *b == provider_arn) || (*a == provider_arn && *b == role_arn))
    })
}

/// `AssumeRoleWithSAML`.
pub async fn assume_role_with_saml(
    app: &Arc<App>,
    req: &QueryRequest<'_>,
    params: &Params,
    ev: &mut AuditEvent,
) -> Result<String, QueryError> {
    let role_arn = super::requested_role(params, ev)?;
    let principal_arn = params.required("PrincipalArn", "principalArn")?;
    ev.provider = Some(principal_arn.to_string());
    let assertion = params.required("SAMLAssertion", "SAMLAssertion")?;
    params::check_role_arn(role_arn)?;
    if principal_arn.len() < 20 || principal_arn.len() > 2048 {
        return Err(QueryError::validation(
            principal_arn,
            "principalArn",
            "Member must have length between 20 and 2048",
        ));
    }
    params::check_secret_length(assertion, "SAMLAssertion", 4, saml::MAX_BASE64_CHARS)?;
    let duration = params::duration(params.get("DurationSeconds")?, 900, 43_200)?;
    let sp = session_policy(params)?;

    let denied = || QueryError::access_denied("Not authorized to perform sts:AssumeRoleWithSAML");
    let role = federated::role(app, role_arn, &sp, denied)?;
    let provider_name = crate::policy::Arn::iam_resource(principal_arn, "saml-provider")
        .filter(|(account, _)| *account == role.account)
        .map(|(_, name)| name);
    let Some(provider) = provider_name.and_then(|n| app.saml.provider(n)) else {
        return Err(
            QueryError::invalid_identity_token_msg("Specified provider doesn't exist.").because(
                format!(
                    "PrincipalArn {principal_arn} is not a configured saml provider of account {}",
                    role.account
                ),
            ),
        );
    };
    if !provider.serves_account(&role.account) {
        return Err(denied().because(format!(
            "saml provider {} is not a provider of account {}",
            provider.name, role.account
        )));
    }
    federated::check_duration(duration, role)?;

    // The assertion's use is recorded last, once every check here has passed: one refused by the
    // trust policy or the mint gate is not spent.
    let (identity, first_use) = app
        .saml
        .verify_unrecorded(&provider.name, assertion.trim(), Use::Sts)
        .await
        .map_err(saml_error)?;
    ev.subject = Some(identity.name_id.clone());
    let provider_arn = provider.arn(&role.account);

    let roles = identity
        .attributes
        .get(ROLE_ATTRIBUTE)
        .map(Vec::as_slice)
        .unwrap_or(&[]);
    if !role_pair_present(roles, &role.arn, &provider_arn) {
        return Err(denied().because(format!(
            "the assertion's {ROLE_ATTRIBUTE} attribute does not contain {},{provider_arn} (it has {} value(s))",
            role.arn,
            roles.len()
        )));
    }
    let session_name = single(&identity, SESSION_NAME_ATTRIBUTE)?
        .ok_or_else(|| bad_attribute(SESSION_NAME_ATTRIBUTE, "is missing"))?
        .to_string();
    params::check_name(&session_name, "roleSessionName")
        .map_err(|e| bad_attribute(SESSION_NAME_ATTRIBUTE, &e.message))?;
    ev.session_name = Some(session_name.clone());
    ev.principal = Some(role_session(role, &session_name).arn());
    let source_identity = match single(&identity, SOURCE_IDENTITY_ATTRIBUTE)? {
        Some(si) => {
            params::check_source_identity(si)
                .map_err(|e| bad_attribute(SOURCE_IDENTITY_ATTRIBUTE, &e.message))?;
            Some(si.to_string())
        }
        None => None,
    };
    let mut tags = Vec::new();
    for (name, values) in &identity.attributes {
        let Some(key) = name.strip_prefix(PRINCIPAL_TAG_PREFIX) else {
            continue;
        };
        let [value] = values.as_slice() else {
            return Err(bad_attribute(
                name,
                "a session tag must have exactly one value",
            ));
        };
        params::check_tag(key, value).map_err(|e| bad_attribute(name, &e.message))?;
        tags.push(Tag {
            key: key.to_string(),
            value: value.clone(),
        });
    }
    check_tag_set(&tags).map_err(|e| bad_attribute(PRINCIPAL_TAG_PREFIX, &e.message))?;
    let mut transitive = Vec::new();
    for k in identity
        .attributes
        .get(TRANSITIVE_ATTRIBUTE)
        .map(Vec::as_slice)
        .unwrap_or(&[])
    {
        if !tags.iter().any(|t| &t.key == k) {
            return Err(bad_attribute(
                TRANSITIVE_ATTRIBUTE,
                &format!("transitive tag key {k} is not a principal tag"),
            ));
        }
        transitive.push(k.clone());
    }
    let attribute_duration = match single(&identity, SESSION_DURATION_ATTRIBUTE)? {
        Some(v) => {
            // Decimal digits exactly as signed: no sign, no whitespace around them.
            let d: i64 = v
                .bytes()
                .all(|b| b.is_ascii_digit())
                .then(|| v.parse().ok())
                .flatten()
                .ok_or_else(|| {
                    bad_attribute(
                        SESSION_DURATION_ATTRIBUTE,
                        &format!(
                            "{:?} is not a number of seconds",
                            v.chars().take(32).collect::<String>()
                        ),
                    )
                })?;
            if !(900..=43_200).contains(&d) {
                return Err(bad_attribute(
                    SESSION_DURATION_ATTRIBUTE,
                    "must be between 900 and 43200",
                ));
            }
            Some(d)
        }
        None => None,
    };
    let percent = packed_percent(&sp, &tags)?;

    let now = app.clock.now();
    let claims = saml_claims(&identity, &role.account);
    let mut protocol_keys = Vec::new();
    if !transitive.is_empty() {
        protocol_keys.push((
            "sts:TransitiveTagKeys".to_string(),
            ContextValue::Multi(transitive.clone()),
        ));
    }
    let sign_in = SignIn {
        action: "sts:AssumeRoleWithSAML",
        role,
        provider_arn: provider_arn.clone(),
        key_prefix: "saml",
        claims: &claims,
        protocol_keys,
        subject: &identity.name_id,
        session_name: &session_name,
        mfa_time: identity.mfa_time,
        tags,
        transitive,
        source_identity: source_identity.clone(),
    };
    sign_in.check_trust(req, now, denied, ev)?;

    // Lifetime: the shortest of DurationSeconds (default one hour), the SessionDuration attribute,
    // the IdP session (SessionNotOnOrAfter) and the role's maximum.
    let mut lifetime = duration
        .unwrap_or(3600)
        .min(i64::from(role.max_session_duration));
    if let Some(d) = attribute_duration {
        lifetime = lifetime.min(d);
    }
    if let Some(t) = identity.session_not_on_or_after {
        lifetime = lifetime.min(t - now.timestamp());
    }
    if lifetime <= 0 {
        return Err(saml_error(SamlError::Expired(
            "the IdP session ends before a session could start".into(),
        )));
    }

    let admission = sign_in.admit(app, &identity.provider, identity.authn_instant, denied)?;
    app.saml
        .record_use(app.store.as_ref(), first_use)
        .await
        .map_err(saml_error)?;
    let (session, token) = sign_in.mint(app, &admission, lifetime, &sp, ev)?;

    let op = "AssumeRoleWithSAML";
    let mut w = start(op);
    write_credentials(&mut w, &session, &token);
    write_assumed_role_user(&mut w, &session);
    write_packed_size(&mut w, &sp, &session, percent);
    w.leaf("Subject", &identity.name_id);
    w.leaf(
        "SubjectType",
        &saml::sub_type(identity.name_id_format.as_deref()),
    );
    w.leaf("Issuer", &identity.issuer);
    w.leaf("Audience", &identity.recipient);
    w.leaf(
        "NameQualifier",
        &saml::name_qualifier(&identity.issuer, &role.account, &provider.name),
    );
    w.leaf_opt("SourceIdentity", source_identity.as_deref());
    Ok(finish(w, op, req.request_id))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_role_attribute_pair_is_accepted_in_either_order_only_whole_and_as_signed() {
        let role = "arn:aws:iam::111122223333:role/admin";
        let idp = "arn:aws:iam::111122223333:saml-provider/corp";
        let cases: &[(&[&str], bool)] = &[
            (&["arn:aws:iam::111122223333:role/admin,arn:aws:iam::111122223333:saml-provider/corp"], true),
            (&["arn:aws:iam::111122223333:saml-provider/corp,arn:aws:iam::111122223333:role/admin"], true),
            // Exactly as signed: no ARN has whitespace, and none is trimmed away.
            (&["arn:aws:iam::111122223333:saml-provider/corp, arn:aws:iam::111122223333:role/admin"], false),
            (&["arn:aws:iam::111122223333:role/admin ,arn:aws:iam::111122223333:saml-provider/corp"], false),
            (&[" arn:aws:iam::111122223333:role/admin,arn:aws:iam::111122223333:saml-provider/corp"], false),
            (&["arn:aws:iam::111122223333:role/admin"], false),
            (&["arn:aws:iam::111122223333:role/admin,arn:aws:iam::111122223333:saml-provider/other"], false),
            (&["arn:aws:iam::111122223333:role/adminx,arn:aws:iam::111122223333:saml-provider/corp"], false),
            (&["arn:aws:iam::111122223333:role/admin,arn:aws:iam::111122223333:saml-provider/corp,x"], false),
            (&["x,y", "arn:aws:iam::111122223333:role/admin,arn:aws:iam::111122223333:saml-provider/corp"], true),
            (&[], false),
        ];
        for (values, want) in cases {
            let v: Vec<String> = values.iter().map(|s| s.to_string()).collect();
            assert_eq!(role_pair_present(&v, role, idp), *want, "{values:?}");
        }
    }

    #[test]
    fn name_qualifier_is_awss_hash_of_issuer_account_and_provider() {
        // base64(SHA-1("https://idp.example.com/saml" + "111122223333" + "/corp")), computed with
        // `printf %s … | openssl sha1 -binary | base64`.
        let got = saml::name_qualifier("https://idp.example.com/saml", "111122223333", "corp");
        assert_eq!(got.len(), 28);
        assert_eq!(got, EXPECTED_QUALIFIER);
    }

    const EXPECTED_QUALIFIER: &str = "q9cKCJk6vpTW1u2/xwTUYDemF2k=";
}
