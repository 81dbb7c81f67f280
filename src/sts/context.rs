//! Request contexts for policy decisions: the condition keys rolegate fills for each kind of caller.

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
            format!("arn:aws:iam::{account}:root"),
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

/// How a session is known when only a specific grant counts (not its account).
pub fn session_principal_specific(c: &SessionClaims) -> Principal {
    Principal {
        aws: dedup(vec![c.principal.arn(), c.principal.principal_arn()]),
        federated: None,
        service: None,
    }
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
    for (k, v) in tags {
        ctx.set(&format!("aws:RequestTag/{k}"), single(v.clone()));
    }
    ctx.set(
        "aws:TagKeys",
        ContextValue::Multi(tags.iter().map(|(k, _)| k.clone()).collect()),
    );
}
