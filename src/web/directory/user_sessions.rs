//! A user's live sign-ins, one by one: its portal sessions with the credentials the portal issued
//! from each (command line access, console sign-in), the credentials not tied to a live portal
//! session (those of a portal session since ended, those a password sign-in returned), and its SSO
//! sign-ins (device or PKCE logins of the CLI) with the role credentials each obtained — only those
//! still valid: not expired, not ended, and not ended by any revocation in force (of the user, the
//! role, the subject, everything, the session or its access key); and ending one of them.
//! Ending a portal session deletes it and revokes the credentials issued from it; ending an SSO
//! sign-in refuses every token of it from then on and revokes the credentials it obtained; ending
//! one credential session revokes it alone. (Revoking every session the user ever started is
//! `POST /admin/sessions/revoke` with scope `user`.)

use super::route::{Call, Work};
use super::sessions::revoke_session;
use super::AdminError;
use crate::app::App;
use crate::authz::gate::SignedInIdentity;
use crate::credentials::{IssuedRef, SignInRef};
use crate::idp::local::User;
use crate::portal::issued::{self, Ended, IssuedRecord};
use crate::portal::session::{SessionRecord, SESSION_KIND};
use crate::sso::token::{IssuedSession, SigninRecord, SIGNIN_KIND};
use crate::store::Revocation;
use axum::http::StatusCode;
use serde::Deserialize;
use serde_json::{json, Value};

/// Whether a sign-in is `user`'s (by its directory user id: a new user of the same name is not).
fn is_of(identity: &SignedInIdentity, user: &User) -> bool {
    identity.provider == crate::config::LOCAL_PROVIDER
        && identity.origin_user.as_deref() == Some(user.user_id.as_str())
}

/// Whether issued credentials are `user`'s (by its directory user id).
fn issued_to(r: &IssuedRecord, user: &User) -> bool {
    r.provider == crate::config::LOCAL_PROVIDER
        && r.origin_user.as_deref() == Some(user.user_id.as_str())
}

/// The revocation in force that ends the sign-in `identity` (of the user, the subject, everything).
fn sign_in_revoked(app: &App, identity: &SignedInIdentity) -> Option<Revocation> {
    app.revocations.check_sign_in(&SignInRef {
        provider: &identity.provider,
        subject: &identity.subject,
        origin_user: identity.origin_user.as_deref(),
        signed_in_at: identity.signed_in_at,
    })
}

/// The revocation in force that ends issued credentials `id` (recorded as `r`), if any: the one
/// that refuses every call signed with them.
fn issued_revoked(app: &App, id: &str, r: &IssuedRecord) -> Option<Revocation> {
    let provider_arn = crate::sts::sign_in_provider_arn(&r.account);
    app.revocations.check_issued(&IssuedRef {
        session_id: id,
        access_key_id: &r.access_key_id,
        role_arn: r.role_arn.as_deref(),
        origin_user: r.origin_user.as_deref(),
        federation: Some((&r.subject, [&provider_arn, &r.provider])),
        issued_at: r.issued_at,
    })
}

/// The revocation in force that ends credentials `s` obtained with the SSO sign-in `signin`, if
/// any. A record written before the issue time was kept stands for the sign-in's approval time.
fn sso_revoked(app: &App, signin: &SigninRecord, s: &IssuedSession) -> Option<Revocation> {
    let who = &signin.identity;
    let provider_arn = crate::sts::sign_in_provider_arn(&s.account);
    app.revocations.check_issued(&IssuedRef {
        session_id: &s.session_id,
        access_key_id: &s.access_key_id,
        role_arn: s.role_arn.as_deref(),
        origin_user: who.origin_user.as_deref(),
        federation: Some((&who.subject, [&provider_arn, &who.provider])),
        issued_at: s.issued_at.unwrap_or(signin.created_at),
    })
}

/// Issued credentials as `ListUserSessions` lists them.
fn issued_json(id: &str, r: &IssuedRecord) -> Value {
    json!({
        "id": id,
        "how": r.how.as_str(),
        "account": r.account,
        "permission_set": r.permission_set,
        "role_arn": r.role_arn,
        "access_key_id": r.access_key_id,
        "issued_at": r.issued_at,
        "expires_at": r.expires_at,
    })
}

fn portal_unavailable(e: crate::portal::PortalError) -> AdminError {
    AdminError::new(StatusCode::SERVICE_UNAVAILABLE, e.to_string())
}

/// Revokes issued credentials `id` until they expire (through the revocation list every replica
/// applies) and marks their record ended.
async fn end_issued(app: &App, id: &str, r: &IssuedRecord, why: &str) -> Result<(), AdminError> {
    revoke_session(app, id, r.expires_at, why).await?;
    let ended = Ended {
        at: app.clock.now().timestamp(),
        reason: why.to_string(),
    };
    issued::mark_ended(app.store.as_ref(), id, ended)
        .await
        .map_err(portal_unavailable)
}

/// The operator's reason, or `default`; 400 for one longer than 512 characters.
fn reason_of(given: Option<&str>, default: &str) -> Result<String, AdminError> {
    match given.map(str::trim).filter(|r| !r.is_empty()) {
        None => Ok(default.to_string()),
        Some(r) if r.chars().count() > 512 || r.chars().any(char::is_control) => {
            Err(AdminError::new(
                StatusCode::BAD_REQUEST,
                "reason is at most 512 characters of text",
            ))
        }
        Some(r) => Ok(r.to_string()),
    }
}

/// `GET /admin/users/{name}/sessions`.
pub(super) fn list_user_sessions(c: &Call) -> Work<'_> {
    Box::pin(async move {
        let d = c.directory()?;
        let user = d.user(c.param("name")?).await?;
        let now = c.app.clock.now().timestamp();
        let store = c.app.store.as_ref();
        let unavailable = |e: crate::store::StoreError| {
            AdminError::new(StatusCode::SERVICE_UNAVAILABLE, e.to_string())
        };
        let app = &c.app;
        let mut credentials: Vec<(String, IssuedRecord)> = issued::list(store)
            .await
            .map_err(portal_unavailable)?
            .into_iter()
            .filter(|(id, r)| {
                issued_to(r, &user) && r.live(now) && issued_revoked(app, id, r).is_none()
            })
            .collect();
        credentials.sort_by_key(|(_, r)| r.issued_at);
        let mut portal = Vec::new();
        for (key, v) in store.dir_list(SESSION_KIND).await.map_err(unavailable)? {
            let Ok(r) = serde_json::from_str::<SessionRecord>(&v.value) else {
                continue;
            };
            if is_of(&r.identity, &user) && sign_in_revoked(app, &r.identity).is_none() {
                let (from_here, rest) = credentials
                    .into_iter()
                    .partition::<Vec<_>, _>(|(_, c)| c.portal_session.as_ref() == Some(&key));
                credentials = rest;
                let from_here: Vec<Value> =
                    from_here.iter().map(|(id, c)| issued_json(id, c)).collect();
                portal.push(json!({
                    "id": key,
                    "created_at": r.created_at,
                    "last_seen": r.last_seen,
                    "ip": r.ip,
                    "mfa": r.identity.mfa_time.is_some(),
                    "waiting_for_mfa": r.mfa_pending,
                    "credentials": from_here,
                }));
            }
        }
        // Credentials outlive the portal session they came from (signed out, timed out, ended),
        // and those of a password sign-in never had one.
        let without_portal_session: Vec<Value> = credentials
            .iter()
            .map(|(id, c)| {
                let mut v = issued_json(id, c);
                v["portal_session"] = json!(c.portal_session);
                v
            })
            .collect();
        let mut sso = Vec::new();
        for (key, v) in store.dir_list(SIGNIN_KIND).await.map_err(unavailable)? {
            let Ok(r) = serde_json::from_str::<SigninRecord>(&v.value) else {
                continue;
            };
            if is_of(&r.identity, &user)
                && r.ended.is_none()
                && r.expires_at > now
                && sign_in_revoked(app, &r.identity).is_none()
            {
                let live: Vec<Value> = r
                    .issued
                    .iter()
                    .filter(|s| s.expires_at > now && sso_revoked(app, &r, s).is_none())
                    .map(|s| {
                        json!({
                            "session_id": s.session_id,
                            "access_key_id": s.access_key_id,
                            "account": s.account,
                            "permission_set": s.permission_set,
                            "role_arn": s.role_arn,
                            "issued_at": s.issued_at,
                            "expires_at": s.expires_at,
                        })
                    })
                    .collect();
                sso.push(json!({
                    "id": key,
                    "client_id": r.client_id,
                    "created_at": r.created_at,
                    "expires_at": r.expires_at,
                    "credentials": live,
                }));
            }
        }
        Ok(json!({
            "user": user.name,
            "portal": portal,
            "credentials_without_portal_session": without_portal_session,
            "sso": sso,
        }))
    })
}

/// Which sign-in to end.
#[derive(Deserialize)]
pub(super) struct EndBody {
    /// `portal`, `sso` or `credentials`.
    kind: String,
    /// The portal session's or SSO sign-in's id as listed, or a credential session id.
    id: String,
    /// Why (kept in the audit log and the revocation).
    #[serde(default)]
    reason: Option<String>,
}

/// `POST /admin/users/{name}/sessions/end`: one sign-in of the user, which must be the user's.
pub(super) fn end_user_session(c: &Call) -> Work<'_> {
    Box::pin(async move {
        let b: EndBody = c.json()?;
        let d = c.directory()?;
        let user = d.user(c.param("name")?).await?;
        let app = &c.app;
        let store = app.store.as_ref();
        let not_found = || {
            AdminError::new(
                StatusCode::NOT_FOUND,
                format!("user {} has no such {} session", user.name, b.kind),
            )
        };
        let unavailable = |e: String| AdminError::new(StatusCode::SERVICE_UNAVAILABLE, e);
        let id = b.id.as_str();
        let record = |kind: &'static str| async move {
            store
                .dir_get(kind, id)
                .await
                .map_err(|e| unavailable(e.to_string()))
        };
        match b.kind.as_str() {
            "portal" => {
                let v = record(SESSION_KIND).await?.ok_or_else(not_found)?;
                match serde_json::from_str::<SessionRecord>(&v.value) {
                    Ok(r) if is_of(&r.identity, &user) => {}
                    _ => return Err(not_found()),
                }
                let why = reason_of(b.reason.as_deref(), "portal session ended by an operator")?;
                // The credentials first: should this fail, the session is still there to end.
                let now = app.clock.now().timestamp();
                let mut revoked = Vec::new();
                for (cid, r) in issued::list(store).await.map_err(portal_unavailable)? {
                    if r.portal_session.as_ref() == Some(&b.id)
                        && issued_to(&r, &user)
                        && r.live(now)
                        && issued_revoked(app, &cid, &r).is_none()
                    {
                        end_issued(app, &cid, &r, &why).await?;
                        revoked.push(r.access_key_id);
                    }
                }
                crate::portal::session::delete(store, &b.id)
                    .await
                    .map_err(|e| unavailable(e.to_string()))?;
                c.audit_reason(format!(
                    "ended portal session {} of user {} and the {} credentials issued from it \
                     [{}]: {why}",
                    b.id,
                    user.name,
                    revoked.len(),
                    revoked.join(", ")
                ));
                Ok(json!({"ended": "portal", "id": b.id, "credentials_revoked": revoked.len()}))
            }
            "sso" => {
                let v = record(SIGNIN_KIND).await?.ok_or_else(not_found)?;
                match serde_json::from_str::<SigninRecord>(&v.value) {
                    Ok(r) if is_of(&r.identity, &user) => {}
                    _ => return Err(not_found()),
                }
                let ended = crate::sso::token::end(app, &b.id, "ended by an operator")
                    .await
                    .map_err(|e| unavailable(e.to_string()))?;
                let now = app.clock.now().timestamp();
                let mut revoked = 0;
                for s in ended.iter().flat_map(|r| r.issued.iter()) {
                    if s.expires_at > now {
                        revoke_session(
                            app,
                            &s.session_id,
                            s.expires_at,
                            "SSO sign-in ended by an operator",
                        )
                        .await?;
                        revoked += 1;
                    }
                }
                Ok(json!({"ended": "sso", "id": b.id, "credentials_revoked": revoked}))
            }
            "credentials" => {
                let now = app.clock.now().timestamp();
                if let Some((r, _)) = issued::get(store, id).await.map_err(portal_unavailable)? {
                    return end_portal_credentials(c, &user, id, &r, b.reason.as_deref()).await;
                }
                let mut found = None;
                for (_, v) in store
                    .dir_list(SIGNIN_KIND)
                    .await
                    .map_err(|e| unavailable(e.to_string()))?
                {
                    let Ok(r) = serde_json::from_str::<SigninRecord>(&v.value) else {
                        continue;
                    };
                    if is_of(&r.identity, &user) {
                        found = found.or(r
                            .issued
                            .iter()
                            .find(|s| s.session_id == b.id && s.expires_at > now)
                            .map(|s| (s.expires_at, sso_revoked(app, &r, s))));
                    }
                }
                if let Some((_, Some(rev))) = &found {
                    let message = format!(
                        "credentials {id} were already ended by a revocation at {}: {}",
                        crate::clock::rfc3339_secs(rev.created_at),
                        rev.reason
                    );
                    c.audit_reason(message.clone());
                    return Err(AdminError::new(StatusCode::CONFLICT, message));
                }
                let Some((expires_at, _)) = found else {
                    c.audit_reason(format!(
                        "user {} has no such credentials session: {id} is neither recorded as \
                         issued by the portal nor a live session of an SSO sign-in of the user",
                        user.name
                    ));
                    return Err(not_found());
                };
                revoke_session(app, &b.id, expires_at, "credentials revoked by an operator")
                    .await?;
                Ok(json!({"ended": "credentials", "id": b.id}))
            }
            other => Err(AdminError::new(
                StatusCode::BAD_REQUEST,
                format!("kind is portal, sso or credentials, not {other:?}"),
            )),
        }
    })
}

/// Ends credentials the portal issued (`id`, recorded as `r`), which must be `user`'s and live.
async fn end_portal_credentials(
    c: &Call,
    user: &User,
    id: &str,
    r: &IssuedRecord,
    reason: Option<&str>,
) -> Result<Value, AdminError> {
    let app = &c.app;
    let now = app.clock.now().timestamp();
    let refuse = |status: StatusCode, message: String, why: String| {
        c.audit_reason(why);
        Err(AdminError::new(status, message))
    };
    if !issued_to(r, user) {
        return refuse(
            StatusCode::NOT_FOUND,
            format!("user {} has no such credentials session", user.name),
            format!(
                "credentials {id} ({}) were issued to {} at {}, not to user {}",
                r.access_key_id, r.subject, r.provider, user.name
            ),
        );
    }
    if let Some(e) = &r.ended {
        let message = format!(
            "credentials {id} ({}) were already ended at {}",
            r.access_key_id,
            crate::clock::rfc3339_secs(e.at)
        );
        return refuse(StatusCode::CONFLICT, message.clone(), message);
    }
    if r.expires_at <= now {
        let message = format!(
            "credentials {id} ({}) expired at {}; there is nothing to end",
            r.access_key_id,
            crate::clock::rfc3339_secs(r.expires_at)
        );
        return refuse(StatusCode::CONFLICT, message.clone(), message);
    }
    if let Some(rev) = issued_revoked(app, id, r) {
        let message = format!(
            "credentials {id} ({}) were already ended by a revocation at {}: {}",
            r.access_key_id,
            crate::clock::rfc3339_secs(rev.created_at),
            rev.reason
        );
        return refuse(StatusCode::CONFLICT, message.clone(), message);
    }
    let why = reason_of(reason, "credentials ended by an operator")?;
    end_issued(app, id, r, &why).await?;
    let source = match &r.portal_session {
        Some(p) => format!("portal session {p}"),
        None => "a password sign-in".to_string(),
    };
    c.audit_reason(format!(
        "ended {} credentials {} (session {id}, {} in {}) of user {} issued from {source}: {why}",
        r.how.as_str(),
        r.access_key_id,
        r.permission_set,
        r.account,
        user.name,
    ));
    Ok(json!({"ended": "credentials", "id": id, "access_key_id": r.access_key_id}))
}
