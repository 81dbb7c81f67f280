//! Revoking sessions: of a user (also when it is deleted or disabled), a role, a session, a subject.

use super::route::{Call, Scope, Work};
use super::{user_arn, AdminError};
use crate::app::App;
use crate::store::{Revocation, RevocationScope};
use axum::http::StatusCode;
use serde::Deserialize;
use serde_json::json;

pub(super) async fn revoke_user(
    app: &App,
    user_id: &str,
    reason: &str,
) -> Result<Revocation, AdminError> {
    let now = app.clock.now().timestamp();
    let r = Revocation {
        scope: RevocationScope::User(user_id.to_string()),
        issued_before: now + 1,
        created_at: now,
        reason: reason.to_string(),
        expires_at: now + 1 + crate::credentials::KEY_RETENTION_SECONDS,
    };
    revoke(app, r).await
}

/// Revokes one credential session (by its session id) until it expires.
pub(super) async fn revoke_session(
    app: &App,
    session_id: &str,
    expires_at: i64,
    reason: &str,
) -> Result<Revocation, AdminError> {
    let now = app.clock.now().timestamp();
    revoke(
        app,
        Revocation {
            scope: RevocationScope::Session(session_id.to_string()),
            issued_before: now + 1,
            created_at: now,
            reason: reason.to_string(),
            expires_at: expires_at.max(now) + 1,
        },
    )
    .await
}

/// Records a revocation (every replica applies it within the refresh interval).
async fn revoke(app: &App, r: Revocation) -> Result<Revocation, AdminError> {
    app.revocations
        .revoke(app.store.as_ref(), r.clone())
        .await
        .map_err(|e| AdminError::new(StatusCode::SERVICE_UNAVAILABLE, e.to_string()))?;
    Ok(r)
}

/// Which sessions to end.
#[derive(Deserialize)]
pub(super) struct RevokeBody {
    /// `user` (a directory user's name), `role` (ARN), `session` (id), `subject` (with provider).
    scope: String,
    value: String,
    provider: Option<String>,
    reason: String,
}

/// What a revocation is about: a user's sessions are a change to that user (ending root's is a
/// change to root like any other), a role's are the role's; anything else, and a body that does not
/// parse, is `arn:aws:rolegate:::sessions`.
pub(super) fn scope(c: &Call) -> Scope {
    match c.json::<RevokeBody>() {
        Ok(b) if b.scope == "user" => Scope {
            resource: user_arn(&c.app, &b.value),
            target: Some(b.value),
        },
        Ok(b) if b.scope == "role" => Scope {
            resource: b.value,
            target: None,
        },
        _ => Scope {
            resource: "arn:aws:rolegate:::sessions".to_string(),
            target: None,
        },
    }
}

pub(super) fn revoke_sessions(c: &Call) -> Work<'_> {
    Box::pin(async move {
        let b: RevokeBody = c.json()?;
        let app = &c.app;
        if b.reason.trim().is_empty() {
            return Err(AdminError::new(
                StatusCode::BAD_REQUEST,
                "a reason is required",
            ));
        }
        let r = match b.scope.as_str() {
            "user" => {
                let u = c.directory()?.user(&b.value).await?;
                revoke_user(app, &u.user_id, &b.reason).await?
            }
            other => {
                let r = crate::web::RevocationRequest {
                    scope: other.to_string(),
                    value: Some(b.value.clone()),
                    provider: b.provider.clone(),
                    reason: b.reason.clone(),
                }
                .to_revocation(app.clock.now().timestamp())
                .map_err(|e| AdminError::new(StatusCode::BAD_REQUEST, e))?;
                revoke(app, r).await?
            }
        };
        Ok(json!({
            "revoked": format!("{:?}", r.scope),
            "issued_before": r.issued_before,
            "effective_everywhere_within_seconds": crate::app::REFRESH_INTERVAL.as_secs(),
        }))
    })
}
