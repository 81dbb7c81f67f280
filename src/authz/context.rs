//! Request contexts for policy decisions: the condition keys rolegate fills for each kind of caller.

use crate::config::{Config, LOCAL_PROVIDER, SIGN_IN_PROVIDER};
use crate::credentials::SessionClaims;
use crate::policy::{ContextValue, Principal, RequestContext};
use chrono::{DateTime, Utc};
use serde_json::{Map, Value};
use std::net::IpAddr;

/// Keys every request has: time, source address, transport.
pub fn add_request_keys(ctx: &mut RequestContext, now: DateTime<Utc>, ip: IpAddr, secure: bool) {
    ctx.set(
        "aws:CurrentTime",
        single(crate::clock::rfc3339(&now, false)),
    );
    ctx.set("aws:EpochTime", single(now.timestamp().to_string()));
    ctx.set("aws:SourceIp", single(ip.to_string()));
    ctx.set("aws:SecureTransport", single(secure.to_string()));
}

fn single(s: impl Into<String>) -> ContextValue {
    ContextValue::Single(s.into())
}

/// Every claim of a token as `<prefix>:<claim>`; nested objects by path with `/`
/// (`<prefix>:kubernetes.io/serviceaccount/name`); arrays of scalars as multi-valued keys.
pub fn add_claims(ctx: &mut RequestContext, prefix: &str, claims: &Map<String, Value>) {
    for (k, v) in claims {
        add_claim(ctx, &format!("{prefix}:{k}"), v, 0);
    }
}

fn scalar(v: &Value) -> Option<String> {
    match v {
        Value::String(s) => Some(s.clone()),
        Value::Bool(b) => Some(b.to_string()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

fn add_claim(ctx: &mut RequestContext, key: &str, v: &Value, depth: usize) {
    if depth > 8 {
        return;
    }
    match v {
        Value::Object(m) => {
            for (k, inner) in m {
                add_claim(ctx, &format!("{key}/{k}"), inner, depth + 1);
            }
        }
        Value::Array(items) => {
            let values: Vec<String> = items.iter().filter_map(scalar).collect();
            if values.len() == items.len() {
                ctx.set(key, ContextValue::Multi(values));
            }
        }
        Value::Null => {}
        other => {
            if let Some(s) = scalar(other) {
                ctx.set(key, ContextValue::Single(s));
            }
        }
    }
}

/// How a session is known to trust policies: its session ARN, its role, its account.
pub fn session_principal(c: &SessionClaims) -> Principal {
    let account = c.principal.account().to_string();
    Principal {
        aws: dedup(vec![
            c.principal.arn(),
            c.principal.principal_arn(),
            crate::policy::arn::root(&account),
            account,
        ]),
        federated: None,
        service: None,
    }
}

fn dedup(mut v: Vec<String>) -> Vec<String> {
    let mut seen = std::collections::HashSet::new();
    v.retain(|s| seen.insert(s.clone()));
    v
}

/// `aws:` condition keys (lowercase) that describe the principal, its session or the request as
/// rolegate saw it; only rolegate sets them.
const RESERVED_AWS_KEYS: &[&str] = &[
    "aws:currenttime",
    "aws:epochtime",
    "aws:securetransport",
    "aws:sourceip",
    "aws:userid",
    "aws:username",
    "aws:tokenissuetime",
    "aws:multifactorauthpresent",
    "aws:multifactorauthage",
    "aws:sourceidentity",
    "aws:federatedprovider",
    "aws:viaawsservice",
    "aws:calledvia",
    "aws:calledviafirst",
    "aws:calledvialast",
    "aws:assumedroot",
];

/// Key prefixes (lowercase) only rolegate fills: every `aws:Principal…` key (`PrincipalArn`,
/// `PrincipalAccount`, `PrincipalType`, `PrincipalTag/K`, `PrincipalOrgID`…), STS's own keys
/// (rolegate is the STS), SAML assertions' and the local directory's claims.
const RESERVED_PREFIXES: &[&str] = &["aws:principal", "sts:", "saml:"];

/// Whether the condition key `key` (compared case-insensitively, as condition keys are) belongs
/// to the space of keys rolegate produces for a session, so that no one else may supply it: the
/// keys [`add_request_keys`] and [`add_session_keys`] set and the ones of their kind, STS's
/// `sts:` keys, and the claims of every source of sessions — each OpenID provider's key prefix (its
/// issuer without scheme) and name, each SAML provider's name, `saml:`, the local directory's
/// `local:`, rolegate's own sign-in provider — and, for `session`, the prefix its own claims carry.
pub fn reserved(key: &str, config: &Config, session: Option<&SessionClaims>) -> bool {
    // Lowercased as the request context stores keys (Unicode-aware: `K`, the Kelvin sign, is `k`).
    let key = key.to_lowercase();
    if RESERVED_AWS_KEYS.contains(&key.as_str())
        || RESERVED_PREFIXES.iter().any(|p| key.starts_with(p))
    {
        return true;
    }
    let under = |prefix: &str| {
        key.get(..prefix.len())
            .is_some_and(|head| head.eq_ignore_ascii_case(prefix))
            && key.as_bytes().get(prefix.len()) == Some(&b':')
    };
    let oidc = config
        .oidc_providers
        .iter()
        .flat_map(|p| [p.key_prefix.as_str(), p.name.as_str()]);
    let saml = config.saml_providers.iter().map(|p| p.name.as_str());
    let own = session
        .and_then(|c| c.federation.as_ref())
        .map(|f| f.key_prefix.as_str());
    [LOCAL_PROVIDER, SIGN_IN_PROVIDER]
        .into_iter()
        .chain(oidc)
        .chain(saml)
        .chain(own)
        .any(under)
}

/// The keys describing a signed-in session: principal, tags, MFA, issue time, federated claims.
pub fn add_session_keys(ctx: &mut RequestContext, c: &SessionClaims, now: DateTime<Utc>) {
    ctx.set("aws:PrincipalArn", single(c.principal.principal_arn()));
    ctx.set("aws:PrincipalAccount", single(c.principal.account()));
    ctx.set("aws:PrincipalType", single(c.principal.principal_type()));
    if let crate::credentials::SessionPrincipal::User { name, .. } = &c.principal {
        ctx.set("aws:username", single(name.clone()));
    }
    ctx.set("aws:userid", single(c.principal.user_id()));
    if let Some(t) = DateTime::<Utc>::from_timestamp(c.issued_at, 0) {
        ctx.set(
            "aws:TokenIssueTime",
            single(crate::clock::rfc3339(&t, false)),
        );
    }
    add_mfa_keys(ctx, c.mfa_time, now);
    if let Some(si) = &c.source_identity {
        ctx.set("aws:SourceIdentity", single(si.clone()));
    }
    for t in &c.tags {
        ctx.set(
            &format!("aws:PrincipalTag/{}", t.key),
            single(t.value.clone()),
        );
    }
    if let Some(f) = &c.federation {
        ctx.set("aws:FederatedProvider", single(f.provider_arn.clone()));
        if let Some(Value::Object(claims)) = &f.claims {
            add_claims(ctx, &f.key_prefix, claims);
        }
    }
}

/// `aws:MultiFactorAuthPresent`, and `aws:MultiFactorAuthAge` when MFA was performed at `mfa_time`.
pub fn add_mfa_keys(ctx: &mut RequestContext, mfa_time: Option<i64>, now: DateTime<Utc>) {
    match mfa_time {
        Some(t) => {
            ctx.set("aws:MultiFactorAuthPresent", single("true"));
            ctx.set(
                "aws:MultiFactorAuthAge",
                single((now.timestamp() - t).max(0).to_string()),
            );
        }
        None => ctx.set("aws:MultiFactorAuthPresent", single("false")),
    }
}

/// `aws:RequestTag/K` and `aws:TagKeys` for tags a request sets.
pub fn add_request_tags(ctx: &mut RequestContext, tags: &[(String, String)]) {
    for (k, v) in request_tag_keys(tags) {
        ctx.set(&k, v);
    }
}

/// The keys of a request's tags: `aws:RequestTag/<key>` for each and `aws:TagKeys` listing them;
/// none without tags.
pub fn request_tag_keys(tags: &[(String, String)]) -> Vec<(String, ContextValue)> {
    if tags.is_empty() {
        return Vec::new();
    }
    let mut keys: Vec<(String, ContextValue)> = tags
        .iter()
        .map(|(k, v)| (format!("aws:RequestTag/{k}"), single(v.clone())))
        .collect();
    keys.push((
        "aws:TagKeys".into(),
        ContextValue::Multi(tags.iter().map(|(k, _)| k.clone()).collect()),
    ));
    keys
}

#[cfg(test)]
pub(super) mod tests {
    use super::*;
    use crate::config::{MetadataSource, SamlProvider};
    use crate::credentials::{Federation, SessionPrincipal};

    fn config() -> Config {
        let mut c = Config::from_str_with_env(
            std::path::Path::new("/etc/rolegate.toml"),
            "[server]\nlisten = \"127.0.0.1:0\"\npublic_url = \"http://127.0.0.1:1\"\n\
             [[oidc_providers]]\nissuer = \"https://login.example.com/tenant\"\nname = \"Corp\"\n\
             audiences = [\"app\"]\n",
            &[],
        )
        .unwrap();
        c.saml_providers.push(SamlProvider {
            name: "Okta".into(),
            source: MetadataSource::Url("https://okta.example/metadata".into()),
            ..crate::idp::saml::test_idp::provider(None, &[])
        });
        c
    }

    /// The session of a federated user `app` of a provider whose key prefix is `key_prefix`.
    pub(in crate::authz) fn session(key_prefix: &str) -> SessionClaims {
        SessionClaims {
            access_key_id: "ASIAEXAMPLEEXAMPLE00".into(),
            secret_access_key: "x".into(),
            session_id: "s".into(),
            principal: SessionPrincipal::FederatedUser {
                account: "111122223333".into(),
                name: "app".into(),
            },
            source_identity: None,
            tags: Vec::new(),
            transitive_tag_keys: Vec::new(),
            session_policy: None,
            policy_arns: Vec::new(),
            federation: Some(Federation {
                provider_arn: "arn:aws:iam::111122223333:saml-provider/Gone".into(),
                key_prefix: key_prefix.into(),
                subject: "dave".into(),
                claims: None,
            }),
            mfa_time: None,
            issued_at: 0,
            expires_at: 10,
            chained: false,
            origin_user: None,
            parents: Vec::new(),
        }
    }

    #[test]
    fn the_session_key_space_is_reserved_case_insensitively() {
        let c = config();
        let own = session("gone.example/idp");
        let reserved_keys = [
            "aws:PrincipalArn",
            "AWS:PRINCIPALTAG/team",
            "aws:PrincipalOrgID",
            "aws:userid",
            "aws:CurrentTime",
            "aws:SourceIp",
            "aws:MultiFactorAuthAge",
            "aws:FederatedProvider",
            "sts:RoleSessionName",
            "STS:ExternalId",
            "saml:sub",
            "local:sub",
            "Local:groups",
            "login.example.com/tenant:sub",
            "LOGIN.example.com/TENANT:email",
            "corp:sub",
            "okta:sub",
            "RolegateSSO:sub",
            "rolegatesso:email",
            "gone.example/idp:sub",
        ];
        for key in reserved_keys {
            assert!(reserved(key, &c, Some(&own)), "{key}");
        }
        // The session's own prefix is reserved for it (its claims carry that prefix).
        assert!(!reserved("gone.example/idp:sub", &c, None));
        let free = [
            "aws:RequestTag/team",
            "aws:ResourceTag/team",
            "aws:TagKeys",
            "aws:ResourceAccount",
            "s3:prefix",
            "localx:sub",
            "oktax:sub",
            "login.example.com:sub",
            "corp",
        ];
        for key in free {
            assert!(!reserved(key, &c, Some(&own)), "{key}");
        }
    }

    #[test]
    fn every_key_a_session_carries_is_reserved() {
        let c = config();
        let mut s = session("login.example.com/tenant");
        s.tags = vec![crate::credentials::Tag {
            key: "team".into(),
            value: "blue".into(),
        }];
        s.source_identity = Some("dave".into());
        s.mfa_time = Some(5);
        if let Some(f) = &mut s.federation {
            f.claims = Some(serde_json::json!({"sub": "dave", "nested": {"a": "b"}}));
        }
        let mut ctx = RequestContext::new("s3:GetObject", "*");
        add_request_keys(&mut ctx, Utc::now(), IpAddr::from([127, 0, 0, 1]), true);
        add_session_keys(&mut ctx, &s, Utc::now());
        let keys: Vec<String> = ctx.keys().map(|(k, _)| k.to_owned()).collect();
        assert!(keys.len() > 10, "{keys:?}");
        for key in keys {
            assert!(reserved(&key, &c, Some(&s)), "{key}");
        }
    }
}
