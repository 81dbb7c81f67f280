//! A user's live sign-ins, one by one: its portal sessions and its SSO sign-ins (device or PKCE
//! logins of the CLI) with the role credentials each obtained that are still valid, and ending one
//! of them. Ending a portal session deletes it; ending an SSO sign-in refuses every token of it from
//! then on and revokes the credentials it obtained; ending one credential session revokes it alone.
//! (Revoking every session the user ever started is `POST /admin/sessions/revoke` with scope `user`.)

use super::route::{Call, Work};
use super::sessions::revoke_session;
use super::AdminError;
use crate::idp::local::User;
use crate::portal::session::{SessionRecord, SESSION_KIND};
use crate::sso::token::{SigninRecord, SIGNIN_KIND};
use axum::http::StatusCode;
use serde::Deserialize;
use serde_json::{json, Value};

/// Whether a sign-in is `user`'s (by its directory user id: a new user of the same name is not).
fn is_of(identity: &crate::authz::gate::SignedInIdentity, user: &User) -> bool {
    identity.provider == crate::config::LOCAL_PROVIDER
        && identity.origin_user.as_deref() == Some(user.user_id.as_str())
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
        let mut portal = Vec::new();
        for (key, v) in store.dir_list(SESSION_KIND).await.map_err(unavailable)? {
            let Ok(r) = serde_json::from_str::<SessionRecord>(&v.value) else {
                continue;
            };
            if is_of(&r.identity, &user) {
                portal.push(json!({
                    "id": key,
                    "created_at": r.created_at,
                    "last_seen": r.last_seen,
                    "ip": r.ip,
                    "mfa": r.identity.mfa_time.is_some(),
                    "waiting_for_mfa": r.mfa_pending,
                }));
            }
        }
        let mut sso = Vec::new();
        for (key, v) in store.dir_list(SIGNIN_KIND).await.map_err(unavailable)? {
            let Ok(r) = serde_json::from_str::<SigninRecord>(&v.value) else {
                continue;
            };
            if is_of(&r.identity, &user) && r.ended.is_none() && r.expires_at > now {
                let live: Vec<Value> = r
                    .issued
                    .iter()
                    .filter(|s| s.expires_at > now)
                    .map(|s| json!({"session_id": s.session_id, "expires_at": s.expires_at}))
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
        Ok(json!({"user": user.name, "portal": portal, "sso": sso}))
    })
}

/// Which sign-in to end.
#[derive(Deserialize)]
pub(super) struct EndBody {
    /// `portal`, `sso` or `credentials`.
    kind: String,
    /// The portal session's or SSO sign-in's id as listed, or a credential session id.
    id: String,
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
                crate::portal::session::delete(store, &b.id)
                    .await
                    .map_err(|e| unavailable(e.to_string()))?;
                Ok(json!({"ended": "portal", "id": b.id}))
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
                            .map(|s| s.expires_at));
                    }
                }
                let expires_at = found.ok_or_else(not_found)?;
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
