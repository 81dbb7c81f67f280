//! Authenticates a signed STS request: parse the SigV4 authorization, open the session token, check that
//! it belongs to the presented access key, verify the signature with the sealed secret, then expiry and
//! revocation. A request without a session token is signed with a long-term key of a directory user
//! (`AKIA…`): its secret comes from the directory, and the caller is the user, described by claims
//! made up for it (see [`is_long_term`]). An unknown or foreign key costs the same signature work as
//! a known one, except that a known key's signing key, once a request verified with it, is kept for
//! its scope ([`crate::sigv4::SigningKeyCache`]): a request in that scope is spared the derivation
//! whatever its signature, so its timing can tell that the key signed there recently (as the
//! directory's cache of the key's record already can). A refusal is an [`AuthnError`], which each
//! edge turns into its own error.

mod error;
#[cfg(test)]
mod tests;

pub use error::AuthnError;

use crate::app::App;
use crate::audit::AuditEvent;
use crate::credentials::{OpenSession, SessionClaims, SessionPrincipal};
use crate::query::QueryRequest;
use crate::sigv4::{self, SignedRequest, VerifyOptions};
use std::sync::Arc;

/// A secret used only to spend the same work on requests whose key is unknown.
const DECOY_SECRET: &str = "rolegate-decoy-secret-never-matches-0000";

/// The session behind a signed STS request.
pub async fn authenticate(
    app: &App,
    req: &QueryRequest<'_>,
    ev: &mut AuditEvent,
) -> Result<Arc<OpenSession>, AuthnError> {
    authenticate_for(app, req, ev, "sts").await
}

/// The session behind a request signed for `service` (the SigV4 signing name, e.g. `iam`).
pub async fn authenticate_for(
    app: &App,
    req: &QueryRequest<'_>,
    ev: &mut AuditEvent,
    service: &str,
) -> Result<Arc<OpenSession>, AuthnError> {
    let sreq = SignedRequest {
        method: req.method.as_str(),
        path: req.path,
        query: req.query,
        headers: req.headers,
        body: req.body,
        body_sha256: None,
    };
    let opts = VerifyOptions {
        service,
        regions: &app.config.sts_regions,
        max_skew: app.config.max_clock_skew,
        allow_unsigned_payload: false,
    };
    let caller = authenticate_signed(app, &sreq, &opts, ev).await?;
    limit_principal(app, caller.principal_arn())?;
    Ok(caller)
}

/// `[rate_limits] sts_per_principal` for a proven caller: `Throttling` when it is over.
pub fn limit_principal(app: &App, principal: &str) -> Result<(), AuthnError> {
    app.limits.sts_principal(principal).map_err(|limited| {
        app.metrics.rate_limited(limited.limit);
        AuthnError::Throttled(format!(
            "rate limit {} exceeded by {principal}",
            limited.limit
        ))
    })
}

/// Whether the caller signed with a long-term access key of a directory user (not a session).
pub fn is_long_term(c: &SessionClaims) -> bool {
    c.access_key_id.starts_with("AKIA")
}

/// The session behind any SigV4-signed request, verified with `opts`.
pub async fn authenticate_signed(
    app: &App,
    sreq: &SignedRequest<'_>,
    opts: &VerifyOptions<'_>,
    ev: &mut AuditEvent,
) -> Result<Arc<OpenSession>, AuthnError> {
    let sreq = *sreq;
    let opts = *opts;
    let now = app.clock.now();
    let auth = sigv4::parse_authorization(&sreq).map_err(sig_error)?;
    let decoy = |reason: String| {
        let _ = sigv4::verify(&sreq, &auth, DECOY_SECRET, now, &opts);
        AuthnError::UnknownKey(reason)
    };
    let Some(token) = auth.security_token.as_deref() else {
        return long_term(app, &sreq, &auth, &opts, ev).await;
    };
    let claims = match app.keys.open_session(token) {
        Ok(c) => c,
        Err(e) => return Err(decoy(format!("session token: {e}"))),
    };
    // From here on the audit event names the session the token describes, refused or not.
    ev.principal = Some(claims.principal_arn().to_owned());
    ev.access_key_id = Some(auth.access_key_id.to_string());
    let presented = auth.access_key_id.as_bytes();
    let sealed = claims.access_key_id.as_bytes();
    if !bool::from(subtle::ConstantTimeEq::ct_eq(presented, sealed)) {
        return Err(decoy(format!(
            "session token belongs to {}, not to the presented access key {}",
            claims.access_key_id, auth.access_key_id
        )));
    }
    let key = claims.signing_key(&auth.scope_date, &auth.region, &auth.service);
    sigv4::verify_with_key(&sreq, &auth, &key, now, &opts).map_err(sig_error)?;
    check_live(app, &claims, now.timestamp())?;
    Ok(claims)
}

/// Whether the session of an opened token is still live at `now`: not expired, not revoked. For
/// every path that accepts rolegate-issued credentials (signed requests, console sign-in).
pub fn check_live(app: &App, claims: &SessionClaims, now: i64) -> Result<(), AuthnError> {
    if claims.expires_at <= now {
        return Err(AuthnError::Expired(format!(
            "session {} of {} expired at {}",
            claims.session_id,
            claims.principal.arn(),
            claims.expires_at
        )));
    }
    if let Some(r) = app.revocations.check(claims) {
        return Err(AuthnError::Revoked(format!(
            "session {} of {} was issued before the revocation of {:?} at {}: {}",
            claims.session_id,
            claims.principal.arn(),
            r.scope,
            r.issued_before,
            r.reason
        )));
    }
    Ok(())
}

/// A request signed with a long-term key: the key's user, if the key exists, is active, and signed.
async fn long_term(
    app: &App,
    sreq: &SignedRequest<'_>,
    auth: &sigv4::Authorization<'_>,
    opts: &VerifyOptions<'_>,
    ev: &mut AuditEvent,
) -> Result<Arc<OpenSession>, AuthnError> {
    let now = app.clock.now();
    let found = match &app.directory {
        Some(d) if auth.access_key_id.starts_with("AKIA") => d
            .access_key(&auth.access_key_id)
            .await
            .map_err(AuthnError::Directory)?,
        _ => None,
    };
    let Some((user, key)) = found else {
        let _ = sigv4::verify(sreq, auth, DECOY_SECRET, now, opts);
        return Err(AuthnError::UnknownKey(format!(
            "access key {} has no session token and is not a long-term key of the directory",
            auth.access_key_id
        )));
    };
    let account = app
        .directory
        .as_ref()
        .map(|d| d.account().to_string())
        .unwrap_or_default();
    ev.principal = Some(user.arn(&account));
    ev.access_key_id = Some(key.id.clone());
    // Every request is verified; the cache spares only the derivation of the key, and the
    // status of the key and its user below are read from the directory on every call.
    app.signing_keys
        .verify(sreq, auth, key.secret.expose(), now, opts)
        .map_err(sig_error)?;
    if key.status != crate::idp::local::KeyStatus::Active {
        return Err(AuthnError::UnknownKey(format!(
            "access key {} of user {} is inactive",
            key.id, user.name
        )));
    }
    if !user.active() {
        return Err(AuthnError::UnknownKey(format!(
            "access key {} belongs to user {}, which is disabled",
            key.id, user.name
        )));
    }
    if let Some(d) = &app.directory {
        d.touch_access_key(&key.id, &auth.service, &auth.region);
    }
    Ok(Arc::new(OpenSession::new(directory_caller(
        &account,
        &user,
        &key.id,
        format!("long-term-{}", key.id),
        key.created_at,
        None,
    ))))
}

fn sig_error(e: sigv4::SigV4Error) -> AuthnError {
    AuthnError::Signature(e)
}

/// The caller a directory user is to the decision core when it acts as itself rather than through
/// credentials it was issued: with a long-term key, or signed in to the portal (the operator
/// console). `session_id` names that use in the audit log; `issued_at` is when the key was made or
/// the sign-in verified; `mfa_time` when MFA was performed, if it was.
pub fn directory_caller(
    account: &str,
    user: &crate::idp::local::User,
    access_key_id: &str,
    session_id: String,
    issued_at: i64,
    mfa_time: Option<i64>,
) -> SessionClaims {
    SessionClaims {
        access_key_id: access_key_id.to_string(),
        secret_access_key: String::new(),
        session_id,
        principal: SessionPrincipal::User {
            account: account.to_string(),
            name: user.name.clone(),
            path: user.path.clone(),
            user_id: user.user_id.clone(),
        },
        source_identity: None,
        tags: Vec::new(),
        transitive_tag_keys: Vec::new(),
        session_policy: None,
        policy_arns: Vec::new(),
        federation: None,
        mfa_time,
        issued_at,
        expires_at: i64::MAX,
        chained: false,
        origin_user: Some(user.user_id.clone()),
        parents: Vec::new(),
    }
}
