//! The admin API, for the CLI when the store is held by a running rolegate: audit queries, revocations,
//! sealing-key rotation. Off unless an admin token is configured; every call needs it as a bearer token
//! and is itself audited.

use crate::app::App;
use crate::audit::{self, AuditEvent, Outcome};
use crate::credentials::{KeyRing, KEY_RETENTION_SECONDS};
use crate::store::{AuditQuery, Revocation, RevocationScope};
use axum::extract::{Query, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::{Deserialize, Serialize};
use std::sync::Arc;
use subtle::ConstantTimeEq;

pub fn routes() -> Router<Arc<App>> {
    Router::new()
        .route("/admin/audit", get(list_audit))
        .route("/admin/revocations", post(create_revocation))
        .route("/admin/keys/rotate", post(rotate_keys))
}

fn authorized(app: &App, headers: &HeaderMap) -> Result<(), Box<Response>> {
    let Some(token) = &app.config.admin_token else {
        return Err(Box::new(StatusCode::NOT_FOUND.into_response()));
    };
    let presented = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .unwrap_or("");
    if bool::from(presented.as_bytes().ct_eq(token.expose().as_bytes())) {
        Ok(())
    } else {
        Err(Box::new(
            (
                StatusCode::UNAUTHORIZED,
                Json(serde_json::json!({"error": "a valid admin bearer token is required"})),
            )
                .into_response(),
        ))
    }
}

/// Filters of an audit query, as query parameters.
#[derive(Debug, Deserialize, Serialize, Default)]
pub struct AuditParams {
    /// Events at or after (epoch milliseconds).
    pub since_ms: Option<i64>,
    /// Events before (epoch milliseconds).
    pub until_ms: Option<i64>,
    /// Exact action.
    pub action: Option<String>,
    /// Exact principal.
    pub principal: Option<String>,
    /// allow, deny or error.
    pub decision: Option<String>,
    /// At most this many (default 100, at most 10,000).
    pub limit: Option<usize>,
    /// Oldest first instead of newest first.
    #[serde(default)]
    pub oldest_first: bool,
}

impl AuditParams {
    /// The store query these parameters ask for.
    pub fn to_query(&self) -> AuditQuery {
        AuditQuery {
            since_ms: self.since_ms,
            until_ms: self.until_ms,
            action: self.action.clone(),
            principal: self.principal.clone(),
            decision: self.decision.clone(),
            limit: self.limit.unwrap_or(100).min(10_000),
            newest_first: !self.oldest_first,
        }
    }
}

async fn list_audit(
    State(app): State<Arc<App>>,
    headers: HeaderMap,
    Query(p): Query<AuditParams>,
) -> Response {
    if let Err(r) = authorized(&app, &headers) {
        return *r;
    }
    app.audit.flush().await;
    match audit::query(app.store.as_ref(), &p.to_query()).await {
        Ok(events) => Json(events).into_response(),
        Err(e) => (
            StatusCode::SERVICE_UNAVAILABLE,
            Json(serde_json::json!({"error": e.to_string()})),
        )
            .into_response(),
    }
}

/// A revocation request.
#[derive(Debug, Deserialize, Serialize)]
pub struct RevocationRequest {
    /// `all`, `role`, `subject`, `session` or `access-key`.
    pub scope: String,
    /// Role ARN, subject, session id or access key id.
    pub value: Option<String>,
    /// For `subject`: the provider (issuer or ARN).
    pub provider: Option<String>,
    /// Why (kept with the revocation and in the audit log).
    pub reason: String,
}

impl RevocationRequest {
    /// The revocation this asks for, effective for sessions issued before `now`.
    pub fn to_revocation(&self, now: i64) -> Result<Revocation, String> {
        let value = || {
            self.value
                .clone()
                .filter(|v| !v.is_empty())
                .ok_or("value is required for this scope")
        };
        let scope = match self.scope.as_str() {
            "all" => RevocationScope::All,
            "role" => RevocationScope::Role(value()?),
            "session" => RevocationScope::Session(value()?),
            "access-key" => RevocationScope::AccessKey(value()?),
            "subject" => RevocationScope::Subject {
                provider: self
                    .provider
                    .clone()
                    .filter(|p| !p.is_empty())
                    .ok_or("provider is required for scope subject")?,
                subject: value()?,
            },
            other => {
                return Err(format!(
                    "unknown scope '{other}' (all, role, subject, session, access-key)"
                ))
            }
        };
        if self.reason.trim().is_empty() {
            return Err("a reason is required".into());
        }
        // One second past now: a session minted in the current second is covered too.
        Ok(Revocation {
            scope,
            issued_before: now + 1,
            created_at: now,
            reason: self.reason.clone(),
            expires_at: now + 1 + KEY_RETENTION_SECONDS,
        })
    }
}

async fn create_revocation(
    State(app): State<Arc<App>>,
    headers: HeaderMap,
    Json(req): Json<RevocationRequest>,
) -> Response {
    if let Err(r) = authorized(&app, &headers) {
        return *r;
    }
    let now = app.clock.now();
    let mut ev = AuditEvent::new(now, &crate::request::request_id(), "admin:Revoke");
    ev.principal = Some("admin".into());
    let r = match req.to_revocation(now.timestamp()) {
        Ok(r) => r,
        Err(e) => {
            ev.outcome(Outcome::Deny);
            ev.reason = Some(e.clone());
            app.audit.record(ev);
            return (
                StatusCode::BAD_REQUEST,
                Json(serde_json::json!({"error": e})),
            )
                .into_response();
        }
    };
    ev.reason = Some(format!("{:?}: {}", r.scope, r.reason));
    match app.revocations.revoke(app.store.as_ref(), r.clone()).await {
        Ok(()) => {
            ev.outcome(Outcome::Allow);
            app.audit.record(ev);
            Json(serde_json::json!({"revoked": format!("{:?}", r.scope), "issued_before": r.issued_before})).into_response()
        }
        Err(e) => {
            ev.outcome(Outcome::Error);
            app.audit.record(ev);
            (
                StatusCode::SERVICE_UNAVAILABLE,
                Json(serde_json::json!({"error": e.to_string()})),
            )
                .into_response()
        }
    }
}

async fn rotate_keys(State(app): State<Arc<App>>, headers: HeaderMap) -> Response {
    if let Err(r) = authorized(&app, &headers) {
        return *r;
    }
    let now = app.clock.now();
    let mut ev = AuditEvent::new(now, &crate::request::request_id(), "admin:RotateSealingKey");
    ev.principal = Some("admin".into());
    let result = async {
        let id = KeyRing::rotate(app.store.as_ref(), now.timestamp()).await?;
        app.keys.refresh(app.store.as_ref()).await?;
        Ok::<_, crate::credentials::CredentialError>(id)
    }
    .await;
    match result {
        Ok(id) => {
            ev.outcome(Outcome::Allow);
            ev.reason = Some(format!("new sealing key {id}"));
            app.audit.record(ev);
            Json(serde_json::json!({"key_id": id})).into_response()
        }
        Err(e) => {
            ev.outcome(Outcome::Error);
            ev.reason = Some(e.to_string());
            app.audit.record(ev);
            (
                StatusCode::SERVICE_UNAVAILABLE,
                Json(serde_json::json!({"error": e.to_string()})),
            )
                .into_response()
        }
    }
}
