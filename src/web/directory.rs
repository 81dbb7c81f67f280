//! The directory admin API (JSON): users, groups, their policies, access keys, MFA devices,
//! assignment explanations, session revocation, and the one-time root bootstrap.
//!
//! **Who may call it.** A request is either signed with SigV4 for the service `rolegate` (by a
//! directory user's access key or any session rolegate issued) and then allowed only if the caller's
//! policies allow the `rolegate:<Action>` it asks for on the resource it names (users
//! `arn:aws:iam::ACCOUNT:user/NAME`, groups `arn:aws:iam::ACCOUNT:group/NAME`, everything else
//! `arn:aws:rolegate:::<what>`) — so an admin is whoever a policy allows `rolegate:*`, and MFA or
//! source-address conditions apply like anywhere else — or it carries the configured admin bearer
//! token (the break-glass path the CLI uses). Every call is audited, refused ones with the reason.
//! Changes to the root user are reserved to root itself and the admin token, whatever the policies
//! say (see [`root`]).

mod groups;
mod root;
mod sessions;
mod sign_in;
mod status;
#[cfg(test)]
mod tests;
mod users;

use crate::app::App;
use crate::audit::{AuditEvent, Outcome};
use crate::authz::decide::{decide, Question};
use crate::idp::local::{Directory, DirectoryError};
use crate::sigv4::{SignedRequest, VerifyOptions};
use axum::body::Bytes;
use axum::extract::ConnectInfo;
use axum::http::{header, HeaderMap, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::routing::{delete, get, post, put};
use axum::{Json, Router};
use serde_json::{json, Value};
use std::net::SocketAddr;
use std::sync::Arc;
use subtle::ConstantTimeEq;

/// The SigV4 signing name of the admin API.
pub const SIGNING_NAME: &str = "rolegate";

pub fn routes() -> Router<Arc<App>> {
    Router::new()
        .route(
            "/admin/users",
            get(users::list_users).post(users::create_user),
        )
        .route(
            "/admin/users/{name}",
            get(users::get_user).delete(users::delete_user),
        )
        .route("/admin/users/{name}/password", put(users::set_password))
        .route("/admin/users/{name}/disable", post(status::disable_user))
        .route("/admin/users/{name}/enable", post(status::enable_user))
        .route(
            "/admin/users/{name}/access-keys",
            post(users::create_access_key),
        )
        .route(
            "/admin/users/{name}/access-keys/rotate",
            post(users::rotate_access_key),
        )
        .route(
            "/admin/users/{name}/access-keys/{id}",
            put(users::update_access_key).delete(users::delete_access_key),
        )
        .route("/admin/users/{name}/mfa/totp", post(users::create_totp))
        .route(
            "/admin/users/{name}/mfa/totp/enable",
            post(users::enable_totp),
        )
        .route("/admin/users/{name}/mfa", delete(users::delete_mfa))
        .route(
            "/admin/users/{name}/policies/{policy}",
            put(users::put_user_policy).delete(users::delete_user_policy),
        )
        .route(
            "/admin/groups",
            get(groups::list_groups).post(groups::create_group),
        )
        .route("/admin/groups/{group}", delete(groups::delete_group))
        .route(
            "/admin/groups/{group}/members/{name}",
            put(groups::add_member).delete(groups::remove_member),
        )
        .route(
            "/admin/groups/{group}/policies/{policy}",
            put(groups::put_group_policy).delete(groups::delete_group_policy),
        )
        .route(
            "/admin/assignments/explain",
            post(groups::explain_assignments),
        )
        .route("/admin/sessions/revoke", post(sessions::revoke_sessions))
        .route("/login/password", post(sign_in::password_sign_in))
        .route("/bootstrap", post(sign_in::bootstrap_start))
        .route("/bootstrap/finish", post(sign_in::bootstrap_finish))
}

/// A refused or failed admin call, as JSON.
pub struct AdminError {
    status: StatusCode,
    message: String,
    retry_after: Option<u64>,
}

impl AdminError {
    fn new(status: StatusCode, message: impl Into<String>) -> Self {
        Self {
            status,
            message: message.into(),
            retry_after: None,
        }
    }

    fn retry_after(mut self, seconds: u64) -> Self {
        self.retry_after = Some(seconds);
        self
    }
}

impl IntoResponse for AdminError {
    fn into_response(self) -> Response {
        let mut resp = (self.status, Json(json!({"error": self.message}))).into_response();
        if let Some(s) = self.retry_after {
            resp.headers_mut().insert(
                axum::http::header::RETRY_AFTER,
                axum::http::HeaderValue::from(s),
            );
        }
        resp
    }
}

impl From<DirectoryError> for AdminError {
    fn from(e: DirectoryError) -> Self {
        let status = match &e {
            DirectoryError::NotFound(_) => StatusCode::NOT_FOUND,
            DirectoryError::Conflict(_) => StatusCode::CONFLICT,
            DirectoryError::Invalid(_) => StatusCode::BAD_REQUEST,
            DirectoryError::Denied(_) => StatusCode::FORBIDDEN,
            DirectoryError::Locked { .. } => StatusCode::TOO_MANY_REQUESTS,
            DirectoryError::Store(_) => StatusCode::SERVICE_UNAVAILABLE,
            DirectoryError::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        };
        Self::new(status, e.to_string())
    }
}

/// One admin request as received (signature checks need all of it).
pub struct AdminRequest {
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
    source: SocketAddr,
}

impl<S: Send + Sync> axum::extract::FromRequest<S> for AdminRequest {
    type Rejection = Response;

    async fn from_request(req: axum::extract::Request, state: &S) -> Result<Self, Response> {
        let source = req
            .extensions()
            .get::<ConnectInfo<SocketAddr>>()
            .map(|c| c.0)
            .unwrap_or_else(|| SocketAddr::from(([127, 0, 0, 1], 0)));
        let (parts, body) = req.into_parts();
        let body = Bytes::from_request(
            axum::extract::Request::from_parts(parts.clone(), body),
            state,
        )
        .await
        .map_err(IntoResponse::into_response)?;
        Ok(Self {
            method: parts.method,
            uri: parts.uri,
            headers: parts.headers,
            body,
            source,
        })
    }
}

impl AdminRequest {
    fn json<T: serde::de::DeserializeOwned>(&self) -> Result<T, AdminError> {
        serde_json::from_slice(&self.body)
            .map_err(|e| AdminError::new(StatusCode::BAD_REQUEST, format!("request body: {e}")))
    }
}

fn directory(app: &App) -> Result<&Directory, AdminError> {
    app.directory.as_deref().ok_or_else(|| {
        AdminError::new(
            StatusCode::NOT_FOUND,
            "no directory: configure at least one account",
        )
    })
}

/// Authenticates and authorizes an admin call for `action` on `resource`; the audit event names
/// the caller. A call that changes a user names it as `target`: root is reserved to root and the
/// admin token ([`root::check_target`]). Returns the caller's name for the audit log.
async fn guard(
    app: &App,
    req: &AdminRequest,
    action: &str,
    resource: &str,
    target: Option<&str>,
    ev: &mut AuditEvent,
) -> Result<String, AdminError> {
    ev.source_ip = Some(req.source.ip().to_string());
    let bearer = req
        .headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "));
    if let Some(presented) = bearer {
        let ok = app
            .config
            .admin_token
            .as_ref()
            .is_some_and(|t| bool::from(presented.as_bytes().ct_eq(t.expose().as_bytes())));
        ev.principal = Some("admin-token".into());
        return if ok {
            Ok("admin-token".into())
        } else {
            ev.reason = Some("the bearer token is not the admin token".into());
            Err(AdminError::new(
                StatusCode::UNAUTHORIZED,
                "a valid admin bearer token or a SigV4 signature is required",
            ))
        };
    }
    let path = req.uri.path();
    let query = req.uri.query().unwrap_or("");
    let sreq = SignedRequest {
        method: req.method.as_str(),
        path,
        query,
        headers: &req.headers,
        body: &req.body,
        body_sha256: None,
    };
    let opts = VerifyOptions {
        service: SIGNING_NAME,
        regions: &app.config.sts_regions,
        max_skew: app.config.max_clock_skew,
        allow_unsigned_payload: false,
    };
    let caller = crate::authn::authenticate_signed(app, &sreq, &opts, ev)
        .await
        .map_err(|e| {
            ev.reason = Some(e.reason());
            AdminError::new(e.code().status(), format!("{}: {}", e.code(), e.message()))
        })?;
    if let Some(target) = target {
        root::check_target(app, &caller, action, target, ev).await?;
    }
    let q = Question::new(&caller, action, resource).from_address(req.source.ip(), false);
    let verdict = decide(app, q).await.map_err(|e| {
        let status = if e.unavailable() {
            StatusCode::SERVICE_UNAVAILABLE
        } else {
            StatusCode::INTERNAL_SERVER_ERROR
        };
        AdminError::new(status, e.to_string())
    })?;
    if !verdict.allowed() {
        verdict.audit_denial(ev);
        return Err(AdminError::new(
            StatusCode::FORBIDDEN,
            verdict.denial_message(),
        ));
    }
    Ok(caller.principal.arn())
}

/// Runs one admin call that changes no user: guard, work, one audit event (see
/// [`root::call_on_user`] for one that does).
async fn call<F, Fut>(
    app: &Arc<App>,
    req: &AdminRequest,
    action: &str,
    resource: String,
    work: F,
) -> Response
where
    F: FnOnce() -> Fut,
    Fut: std::future::Future<Output = Result<Value, AdminError>>,
{
    root::call_on_user(app, req, action, resource, None, work).await
}

/// The response to an admin call, with its one audit event: the outcome, and for a refusal the
/// reason (the precise one when the handler set it, else the message).
fn respond(app: &App, mut ev: AuditEvent, result: Result<Value, AdminError>) -> Response {
    let response = match result {
        Ok(v) => {
            ev.outcome(Outcome::Allow);
            if ev.root {
                tracing::warn!(source = ?ev.source_ip, action = %ev.action, "root user acted");
            }
            Json(v).into_response()
        }
        Err(e) => {
            ev.outcome(if e.status.is_server_error() {
                Outcome::Error
            } else {
                Outcome::Deny
            });
            if ev.reason.is_none() {
                ev.reason = Some(e.message.clone());
            }
            e.into_response()
        }
    };
    app.audit.record(ev);
    response
}

/// A sign-in refused by a rate limit: HTTP 429 with `Retry-After`, the limit named in the audit
/// reason and counted in the metrics.
fn rate_limited(app: &App, ev: &mut AuditEvent, limited: &crate::limit::Limited) -> AdminError {
    app.metrics.rate_limited(limited.limit);
    ev.error_code = Some("Throttling".into());
    ev.reason = Some(format!(
        "rate limit {} exceeded; retry in {} s",
        limited.limit,
        limited.retry_after.as_secs().max(1)
    ));
    AdminError::new(
        StatusCode::TOO_MANY_REQUESTS,
        "too many requests; try again later",
    )
    .retry_after(limited.retry_after.as_secs().max(1))
}

fn user_arn(app: &App, name: &str) -> String {
    let account = app.directory.as_ref().map_or("", |d| d.account());
    format!("arn:aws:iam::{account}:user/{name}")
}

fn group_arn(app: &App, name: &str) -> String {
    let account = app.directory.as_ref().map_or("", |d| d.account());
    format!("arn:aws:iam::{account}:group/{name}")
}
