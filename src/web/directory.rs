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
//!
//! **Its routes.** [`API`] lists them all, one line each: method and path, the `rolegate:*` action,
//! the resource and the operation. Every call on them takes one path ([`route`]); only password
//! sign-in and the root bootstrap, which come before any credentials, have handlers of their own.

mod groups;
mod root;
mod route;
mod sessions;
mod sign_in;
mod status;
#[cfg(test)]
mod tests;
#[cfg(test)]
mod user_credentials_tests;
mod user_sessions;
#[cfg(test)]
mod user_sessions_tests;
mod users;

use crate::app::App;
use crate::audit::{AuditEvent, Outcome};
use crate::idp::local::{Directory, DirectoryError};
use axum::body::Bytes;
use axum::extract::ConnectInfo;
use axum::http::{HeaderMap, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::{Json, Router};
pub use root::is_root;
pub use route::{authorize_read, perform, would_allow, Call, Caller, Route};
use serde_json::{json, Value};
pub use sign_in::{finish_root, start_root};
use std::net::SocketAddr;
use std::sync::Arc;

/// The SigV4 signing name of the admin API.
pub const SIGNING_NAME: &str = "rolegate";

/// The admin API: every route, the `rolegate:*` action a caller's policies must allow, the
/// resource it is asked on (see [`route::Resource`]: `ChangesUser` and `GroupMember` change a user,
/// which is reserved to root and the admin token when that user is root) and the operation. Every
/// call takes the same path ([`route`]): authenticate, authorize, operate, audit, answer JSON.
#[rustfmt::skip]
const API: &[Route] = { use route::{Resource::*, Verb::*}; &[
    //         method  path                                       action                             resource      operation
    Route::new(Get,    "/admin/users",                            "rolegate:ListUsers",              AllUsers,     users::list_users),
    Route::new(Post,   "/admin/users",                            "rolegate:CreateUser",             UserInBody,   users::create_user),
    Route::new(Get,    "/admin/users/{name}",                     "rolegate:GetUser",                User,         users::get_user),
    Route::new(Delete, "/admin/users/{name}",                     "rolegate:DeleteUser",             ChangesUser,  users::delete_user),
    Route::new(Put,    "/admin/users/{name}/password",            "rolegate:UpdateLoginProfile",     ChangesUser,  users::set_password),
    Route::new(Post,   "/admin/users/{name}/disable",             "rolegate:DisableUser",            ChangesUser,  status::disable_user),
    Route::new(Post,   "/admin/users/{name}/enable",              "rolegate:EnableUser",             ChangesUser,  status::enable_user),
    Route::new(Post,   "/admin/users/{name}/unlock",              "rolegate:UnlockUser",             ChangesUser,  status::unlock_user),
    Route::new(Post,   "/admin/users/{name}/access-keys",         "rolegate:CreateAccessKey",        ChangesUser,  users::create_access_key),
    Route::new(Post,   "/admin/users/{name}/access-keys/rotate",  "rolegate:RotateAccessKey",        ChangesUser,  users::rotate_access_key),
    Route::new(Put,    "/admin/users/{name}/access-keys/{id}",    "rolegate:UpdateAccessKey",        ChangesUser,  users::update_access_key),
    Route::new(Delete, "/admin/users/{name}/access-keys/{id}",    "rolegate:DeleteAccessKey",        ChangesUser,  users::delete_access_key),
    Route::new(Post,   "/admin/users/{name}/mfa/totp",            "rolegate:CreateVirtualMFADevice", ChangesUser,  users::create_totp),
    Route::new(Post,   "/admin/users/{name}/mfa/totp/enable",     "rolegate:EnableMFADevice",        ChangesUser,  users::enable_totp),
    Route::new(Delete, "/admin/users/{name}/mfa",                 "rolegate:DeactivateMFADevice",    ChangesUser,  users::delete_mfa)
        .query::<users::SerialQuery>(),
    Route::new(Put,    "/admin/users/{name}/policies/{policy}",   "rolegate:PutUserPolicy",          ChangesUser,  users::put_user_policy),
    Route::new(Delete, "/admin/users/{name}/policies/{policy}",   "rolegate:DeleteUserPolicy",       ChangesUser,  users::delete_user_policy),
    Route::new(Get,    "/admin/groups",                           "rolegate:ListGroups",             AllGroups,    groups::list_groups),
    Route::new(Post,   "/admin/groups",                           "rolegate:CreateGroup",            GroupInBody,  groups::create_group),
    Route::new(Get,    "/admin/groups/{group}",                   "rolegate:GetGroup",               Group,        groups::get_group),
    Route::new(Delete, "/admin/groups/{group}",                   "rolegate:DeleteGroup",            Group,        groups::delete_group),
    Route::new(Put,    "/admin/groups/{group}/members/{name}",    "rolegate:AddUserToGroup",         GroupMember,  groups::add_member),
    Route::new(Delete, "/admin/groups/{group}/members/{name}",    "rolegate:RemoveUserFromGroup",    GroupMember,  groups::remove_member),
    Route::new(Put,    "/admin/groups/{group}/policies/{policy}", "rolegate:PutGroupPolicy",         Group,        groups::put_group_policy),
    Route::new(Delete, "/admin/groups/{group}/policies/{policy}", "rolegate:DeleteGroupPolicy",      Group,        groups::delete_group_policy),
    Route::new(Post,   "/admin/assignments/explain",              "rolegate:ExplainAssignments",     Assignments,  groups::explain_assignments),
    Route::new(Post,   "/admin/sessions/revoke",                  "rolegate:RevokeSessions",         Sessions,     sessions::revoke_sessions),
    Route::new(Get,    "/admin/users/{name}/sessions",            "rolegate:ListUserSessions",       User,         user_sessions::list_user_sessions),
    Route::new(Post,   "/admin/users/{name}/sessions/end",        "rolegate:EndUserSession",         ChangesUser,  user_sessions::end_user_session),
]};

/// The route of [`API`] that asks for `action`.
pub fn route(action: &str) -> Option<&'static Route> {
    API.iter().find(|r| r.action == action)
}

/// The routes of [`API`], and the three that come before any credentials: password sign-in
/// (`rolegate:SignIn`) and the root bootstrap (`rolegate:BootstrapRoot`,
/// `rolegate:BootstrapRootMFA`), where the body is the credential (see [`sign_in`]).
pub fn routes() -> Router<Arc<App>> {
    API.iter()
        .fold(Router::new(), |r, route| {
            r.route(route.path, route.method_router())
        })
        .route("/login/password", post(sign_in::password_sign_in))
        .route("/bootstrap", post(sign_in::bootstrap_start))
        .route("/bootstrap/finish", post(sign_in::bootstrap_finish))
}

/// A refused or failed admin call, as JSON.
#[derive(Debug)]
pub struct AdminError {
    status: StatusCode,
    message: String,
    retry_after: Option<u64>,
}

impl AdminError {
    /// The HTTP status of the refusal.
    pub fn status(&self) -> StatusCode {
        self.status
    }

    /// What the caller is told.
    pub fn message(&self) -> &str {
        &self.message
    }

    /// Refused (403).
    pub fn forbidden(message: impl Into<String>) -> Self {
        Self::new(StatusCode::FORBIDDEN, message)
    }

    /// Something that should not happen (500).
    pub fn internal(message: impl Into<String>) -> Self {
        Self::new(StatusCode::INTERNAL_SERVER_ERROR, message)
    }

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
            DirectoryError::Busy(_) => StatusCode::SERVICE_UNAVAILABLE,
        };
        let busy = matches!(e, DirectoryError::Busy(_));
        let error = Self::new(status, e.to_string());
        if busy {
            error.retry_after(1)
        } else {
            error
        }
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

/// The response to an admin call, with its one audit event ([`record`]).
fn respond(app: &App, ev: AuditEvent, result: Result<Value, AdminError>) -> Response {
    record(app, ev, &result);
    match result {
        Ok(v) => Json(v).into_response(),
        Err(e) => e.into_response(),
    }
}

/// Records the one audit event of an admin call: the outcome, and for a refusal the reason (the
/// precise one when the handler set it, else the message).
pub fn record(app: &App, mut ev: AuditEvent, result: &Result<Value, AdminError>) {
    match result {
        Ok(_) => {
            ev.outcome(Outcome::Allow);
            if ev.root {
                tracing::warn!(source = ?ev.source_ip, action = %ev.action, "root user acted");
            }
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
        }
    }
    app.audit.record(ev);
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
    crate::policy::arn::user(account, "/", name)
}

fn group_arn(app: &App, name: &str) -> String {
    let account = app.directory.as_ref().map_or("", |d| d.account());
    crate::policy::arn::group(account, name)
}
