//! Revoking sessions: of a user (also when it is deleted or disabled), a role, a session, a subject.

use super::{directory, root, user_arn, AdminError, AdminRequest};
use crate::app::App;
use crate::store::{Revocation, RevocationScope};
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::Response;
use serde::Deserialize;
use serde_json::json;
use std::sync::Arc;

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

pub(super) async fn revoke_sessions(State(app): State<Arc<App>>, req: AdminRequest) -> Response {
    let body: Result<RevokeBody, _> = req.json();
    let resource = match &body {
        Ok(b) if b.scope == "user" => user_arn(&app, &b.value),
        Ok(b) if b.scope == "role" => b.value.clone(),
        _ => "arn:aws:rolegate:::sessions".to_string(),
    };
    // Ending root's sessions is a change to root like any other.
    let target = match &body {
        Ok(b) if b.scope == "user" => Some(b.value.clone()),
        _ => None,
    };
    root::call_on_user(
        &app,
        &req,
        "rolegate:RevokeSessions",
        resource,
        target.as_deref(),
        || async {
            let b = body?;
            if b.reason.trim().is_empty() {
                return Err(AdminError::new(
                    StatusCode::BAD_REQUEST,
                    "a reason is required",
                ));
            }
            let r = match b.scope.as_str() {
                "user" => {
                    let u = directory(&app)?.user(&b.value).await?;
                    revoke_user(&app, &u.user_id, &b.reason).await?
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
                    app.revocations
                        .revoke(app.store.as_ref(), r.clone())
                        .await
                        .map_err(|e| {
                            AdminError::new(StatusCode::SERVICE_UNAVAILABLE, e.to_string())
                        })?;
                    r
                }
            };
            Ok(json!({
                "revoked": format!("{:?}", r.scope),
                "issued_before": r.issued_before,
                "effective_everywhere_within_seconds": crate::app::REFRESH_INTERVAL.as_secs(),
            }))
        },
    )
    .await
}
