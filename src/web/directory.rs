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

mod root;
mod status;
#[cfg(test)]
mod tests;

use crate::app::App;
use crate::audit::{AuditEvent, Outcome};
use crate::authz::decide::{decide, Question};
use crate::idp::local::{Directory, DirectoryError, Holder, KeyStatus, User};
use crate::sigv4::{SignedRequest, VerifyOptions};
use crate::store::{Revocation, RevocationScope};
use axum::body::Bytes;
use axum::extract::{ConnectInfo, Path, Query, State};
use axum::http::{header, HeaderMap, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::routing::{delete, get, post, put};
use axum::{Json, Router};
use serde::Deserialize;
use serde_json::{json, Value};
use std::net::SocketAddr;
use std::sync::Arc;
use subtle::ConstantTimeEq;

/// The SigV4 signing name of the admin API.
pub const SIGNING_NAME: &str = "rolegate";

pub fn routes() -> Router<Arc<App>> {
    Router::new()
        .route("/admin/users", get(list_users).post(create_user))
        .route("/admin/users/{name}", get(get_user).delete(delete_user))
        .route("/admin/users/{name}/password", put(set_password))
        .route("/admin/users/{name}/disable", post(status::disable_user))
        .route("/admin/users/{name}/enable", post(status::enable_user))
        .route("/admin/users/{name}/access-keys", post(create_access_key))
        .route(
            "/admin/users/{name}/access-keys/rotate",
            post(rotate_access_key),
        )
        .route(
            "/admin/users/{name}/access-keys/{id}",
            put(update_access_key).delete(delete_access_key),
        )
        .route("/admin/users/{name}/mfa/totp", post(create_totp))
        .route("/admin/users/{name}/mfa/totp/enable", post(enable_totp))
        .route("/admin/users/{name}/mfa", delete(delete_mfa))
        .route(
            "/admin/users/{name}/policies/{policy}",
            put(put_user_policy).delete(delete_user_policy),
        )
        .route("/admin/groups", get(list_groups).post(create_group))
        .route("/admin/groups/{group}", delete(delete_group))
        .route(
            "/admin/groups/{group}/members/{name}",
            put(add_member).delete(remove_member),
        )
        .route(
            "/admin/groups/{group}/policies/{policy}",
            put(put_group_policy).delete(delete_group_policy),
        )
        .route("/admin/assignments/explain", post(explain_assignments))
        .route("/admin/sessions/revoke", post(revoke_sessions))
        .route("/login/password", post(password_sign_in))
        .route("/bootstrap", post(bootstrap_start))
        .route("/bootstrap/finish", post(bootstrap_finish))
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
            ev.reason = Some(e.reason.clone());
            AdminError::new(e.status(), format!("{}: {}", e.code, e.message))
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

/// Runs one admin call: guard, work, one audit event. (A call that changes a user goes through
/// [`root::call_on_user`].)
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
    let mut ev = AuditEvent::new(app.clock.now(), &crate::request::request_id(), action);
    ev.role_arn = Some(resource.clone());
    let result = match guard(app, req, action, &resource, None, &mut ev).await {
        Ok(_) => work().await,
        Err(e) => Err(e),
    };
    respond(app, ev, result)
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

async fn user_view(app: &App, d: &Directory, u: &User) -> Result<Value, AdminError> {
    let mut keys = Vec::new();
    for k in &u.access_keys {
        let used = d.access_key_last_used(&k.id).await?;
        keys.push(json!({
            "access_key_id": k.id,
            "status": k.status,
            "created_at": k.created_at,
            "last_used": used,
        }));
    }
    Ok(json!({
        "name": u.name,
        "user_id": u.user_id,
        "arn": u.arn(d.account()),
        "path": u.path,
        "root": u.root,
        "created_at": u.created_at,
        "active": u.active(),
        "disabled_at": u.disabled_at,
        "password_set": u.password_hash.is_some(),
        "password_changed_at": u.password_changed_at,
        "groups": u.groups,
        "policies": u.policies.keys().collect::<Vec<_>>(),
        "managed_policy_arns": u.managed_policy_arns,
        "access_keys": keys,
        "mfa_devices": u.mfa_devices.iter().map(|m| json!({
            "serial": m.serial(), "enabled": m.enabled()
        })).collect::<Vec<_>>(),
        "console": app.config.public_url.as_str(),
    }))
}

#[derive(Deserialize)]
struct NewUser {
    name: String,
    path: Option<String>,
}

async fn create_user(State(app): State<Arc<App>>, req: AdminRequest) -> Response {
    let body: Result<NewUser, _> = req.json();
    let name = body.as_ref().map(|b| b.name.clone()).unwrap_or_default();
    call(
        &app,
        &req,
        "rolegate:CreateUser",
        user_arn(&app, &name),
        || async {
            let b = body?;
            let d = directory(&app)?;
            let u = d.create_user(&b.name, b.path.as_deref()).await?;
            user_view(&app, d, &u).await
        },
    )
    .await
}

async fn list_users(State(app): State<Arc<App>>, req: AdminRequest) -> Response {
    call(&app, &req, "rolegate:ListUsers", user_arn(&app, "*"), || async {
        let d = directory(&app)?;
        let users = d.users().await?;
        Ok(json!(users
            .iter()
            .map(|u| json!({"name": u.name, "user_id": u.user_id, "arn": u.arn(d.account()), "root": u.root, "active": u.active()}))
            .collect::<Vec<_>>()))
    })
    .await
}

async fn get_user(
    State(app): State<Arc<App>>,
    Path(name): Path<String>,
    req: AdminRequest,
) -> Response {
    call(
        &app,
        &req,
        "rolegate:GetUser",
        user_arn(&app, &name),
        || async {
            let d = directory(&app)?;
            let u = d.user(&name).await?;
            user_view(&app, d, &u).await
        },
    )
    .await
}

async fn delete_user(
    State(app): State<Arc<App>>,
    Path(name): Path<String>,
    req: AdminRequest,
) -> Response {
    root::call_on_user(
        &app,
        &req,
        "rolegate:DeleteUser",
        user_arn(&app, &name),
        Some(&name),
        || async {
            let u = directory(&app)?.delete_user(&name).await?;
            // Sessions the user started end with it.
            revoke_user(&app, &u.user_id, "user deleted").await?;
            Ok(json!({"deleted": u.name}))
        },
    )
    .await
}

#[derive(Deserialize)]
struct PasswordBody {
    password: String,
}

async fn set_password(
    State(app): State<Arc<App>>,
    Path(name): Path<String>,
    req: AdminRequest,
) -> Response {
    root::call_on_user(
        &app,
        &req,
        "rolegate:UpdateLoginProfile",
        user_arn(&app, &name),
        Some(&name),
        || async {
            let b: PasswordBody = req.json()?;
            directory(&app)?
                .set_password(
                    &name,
                    crate::idp::local::password::Password::new(b.password),
                )
                .await?;
            Ok(json!({"password_set": true}))
        },
    )
    .await
}

async fn create_access_key(
    State(app): State<Arc<App>>,
    Path(name): Path<String>,
    req: AdminRequest,
) -> Response {
    root::call_on_user(&app, &req, "rolegate:CreateAccessKey", user_arn(&app, &name), Some(&name), || async {
        let k = directory(&app)?.create_access_key(&name).await?;
        Ok(json!({"access_key_id": k.id, "secret_access_key": k.secret.expose(), "status": k.status}))
    })
    .await
}

async fn rotate_access_key(
    State(app): State<Arc<App>>,
    Path(name): Path<String>,
    req: AdminRequest,
) -> Response {
    root::call_on_user(
        &app,
        &req,
        "rolegate:RotateAccessKey",
        user_arn(&app, &name),
        Some(&name),
        || async {
            let (k, old) = directory(&app)?.rotate_access_key(&name).await?;
            Ok(json!({
                "access_key_id": k.id,
                "secret_access_key": k.secret.expose(),
                "deactivated": old,
            }))
        },
    )
    .await
}

#[derive(Deserialize)]
struct StatusBody {
    status: KeyStatus,
}

async fn update_access_key(
    State(app): State<Arc<App>>,
    Path((name, id)): Path<(String, String)>,
    req: AdminRequest,
) -> Response {
    root::call_on_user(
        &app,
        &req,
        "rolegate:UpdateAccessKey",
        user_arn(&app, &name),
        Some(&name),
        || async {
            let b: StatusBody = req.json()?;
            directory(&app)?
                .set_access_key_status(&name, &id, b.status)
                .await?;
            Ok(json!({"access_key_id": id, "status": b.status}))
        },
    )
    .await
}

async fn delete_access_key(
    State(app): State<Arc<App>>,
    Path((name, id)): Path<(String, String)>,
    req: AdminRequest,
) -> Response {
    root::call_on_user(
        &app,
        &req,
        "rolegate:DeleteAccessKey",
        user_arn(&app, &name),
        Some(&name),
        || async {
            directory(&app)?.delete_access_key(&name, &id).await?;
            Ok(json!({"deleted": id}))
        },
    )
    .await
}

async fn create_totp(
    State(app): State<Arc<App>>,
    Path(name): Path<String>,
    req: AdminRequest,
) -> Response {
    root::call_on_user(
        &app,
        &req,
        "rolegate:CreateVirtualMFADevice",
        user_arn(&app, &name),
        Some(&name),
        || async {
            let e = directory(&app)?.create_totp(&name).await?;
            Ok(json!({
                "serial": e.serial,
                "secret_base32": e.secret_base32.expose(),
                "uri": e.uri.expose(),
            }))
        },
    )
    .await
}

#[derive(Deserialize)]
struct Codes {
    code1: String,
    code2: String,
}

async fn enable_totp(
    State(app): State<Arc<App>>,
    Path(name): Path<String>,
    req: AdminRequest,
) -> Response {
    root::call_on_user(
        &app,
        &req,
        "rolegate:EnableMFADevice",
        user_arn(&app, &name),
        Some(&name),
        || async {
            let b: Codes = req.json()?;
            let serial = directory(&app)?
                .enable_totp(&name, &b.code1, &b.code2)
                .await?;
            Ok(json!({"serial": serial, "enabled": true}))
        },
    )
    .await
}

#[derive(Deserialize)]
struct SerialQuery {
    serial: String,
}

async fn delete_mfa(
    State(app): State<Arc<App>>,
    Path(name): Path<String>,
    Query(q): Query<SerialQuery>,
    req: AdminRequest,
) -> Response {
    root::call_on_user(
        &app,
        &req,
        "rolegate:DeactivateMFADevice",
        user_arn(&app, &name),
        Some(&name),
        || async {
            directory(&app)?.delete_mfa_device(&name, &q.serial).await?;
            Ok(json!({"deleted": q.serial}))
        },
    )
    .await
}

#[derive(Deserialize)]
struct PolicyBody {
    document: Value,
}

fn policy_text(b: &PolicyBody) -> String {
    match &b.document {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

async fn put_user_policy(
    State(app): State<Arc<App>>,
    Path((name, policy)): Path<(String, String)>,
    req: AdminRequest,
) -> Response {
    root::call_on_user(
        &app,
        &req,
        "rolegate:PutUserPolicy",
        user_arn(&app, &name),
        Some(&name),
        || async {
            let b: PolicyBody = req.json()?;
            directory(&app)?
                .put_policy(Holder::User(&name), &policy, &policy_text(&b))
                .await?;
            Ok(json!({"policy": policy}))
        },
    )
    .await
}

async fn delete_user_policy(
    State(app): State<Arc<App>>,
    Path((name, policy)): Path<(String, String)>,
    req: AdminRequest,
) -> Response {
    root::call_on_user(
        &app,
        &req,
        "rolegate:DeleteUserPolicy",
        user_arn(&app, &name),
        Some(&name),
        || async {
            directory(&app)?
                .delete_policy(Holder::User(&name), &policy)
                .await?;
            Ok(json!({"deleted": policy}))
        },
    )
    .await
}

async fn create_group(State(app): State<Arc<App>>, req: AdminRequest) -> Response {
    let body: Result<NewUser, _> = req.json();
    let name = body.as_ref().map(|b| b.name.clone()).unwrap_or_default();
    call(
        &app,
        &req,
        "rolegate:CreateGroup",
        group_arn(&app, &name),
        || async {
            let b = body?;
            let g = directory(&app)?
                .create_group(&b.name, b.path.as_deref())
                .await?;
            Ok(json!({"name": g.name, "group_id": g.group_id}))
        },
    )
    .await
}

async fn list_groups(State(app): State<Arc<App>>, req: AdminRequest) -> Response {
    call(
        &app,
        &req,
        "rolegate:ListGroups",
        group_arn(&app, "*"),
        || async {
            let groups = directory(&app)?.groups().await?;
            Ok(json!(groups
                .iter()
                .map(|g| json!({"name": g.name, "group_id": g.group_id,
                "policies": g.policies.keys().collect::<Vec<_>>(),
                "managed_policy_arns": g.managed_policy_arns}))
                .collect::<Vec<_>>()))
        },
    )
    .await
}

async fn delete_group(
    State(app): State<Arc<App>>,
    Path(group): Path<String>,
    req: AdminRequest,
) -> Response {
    call(
        &app,
        &req,
        "rolegate:DeleteGroup",
        group_arn(&app, &group),
        || async {
            directory(&app)?.delete_group(&group).await?;
            Ok(json!({"deleted": group}))
        },
    )
    .await
}

async fn add_member(
    State(app): State<Arc<App>>,
    Path((group, name)): Path<(String, String)>,
    req: AdminRequest,
) -> Response {
    root::call_on_user(
        &app,
        &req,
        "rolegate:AddUserToGroup",
        group_arn(&app, &group),
        Some(&name),
        || async {
            directory(&app)?.add_user_to_group(&name, &group).await?;
            Ok(json!({"group": group, "added": name}))
        },
    )
    .await
}

async fn remove_member(
    State(app): State<Arc<App>>,
    Path((group, name)): Path<(String, String)>,
    req: AdminRequest,
) -> Response {
    root::call_on_user(
        &app,
        &req,
        "rolegate:RemoveUserFromGroup",
        group_arn(&app, &group),
        Some(&name),
        || async {
            directory(&app)?
                .remove_user_from_group(&name, &group)
                .await?;
            Ok(json!({"group": group, "removed": name}))
        },
    )
    .await
}

async fn put_group_policy(
    State(app): State<Arc<App>>,
    Path((group, policy)): Path<(String, String)>,
    req: AdminRequest,
) -> Response {
    call(
        &app,
        &req,
        "rolegate:PutGroupPolicy",
        group_arn(&app, &group),
        || async {
            let b: PolicyBody = req.json()?;
            directory(&app)?
                .put_policy(Holder::Group(&group), &policy, &policy_text(&b))
                .await?;
            Ok(json!({"policy": policy}))
        },
    )
    .await
}

async fn delete_group_policy(
    State(app): State<Arc<App>>,
    Path((group, policy)): Path<(String, String)>,
    req: AdminRequest,
) -> Response {
    call(
        &app,
        &req,
        "rolegate:DeleteGroupPolicy",
        group_arn(&app, &group),
        || async {
            directory(&app)?
                .delete_policy(Holder::Group(&group), &policy)
                .await?;
            Ok(json!({"deleted": policy}))
        },
    )
    .await
}

/// An explanation request: which permission sets these claims yield.
#[derive(Deserialize)]
pub struct ExplainBody {
    /// Provider name (or `local`).
    pub provider: String,
    /// The claims or attributes.
    pub claims: serde_json::Map<String, Value>,
    /// For `local`: the user's groups.
    #[serde(default)]
    pub local_groups: Vec<String>,
}

async fn explain_assignments(State(app): State<Arc<App>>, req: AdminRequest) -> Response {
    call(
        &app,
        &req,
        "rolegate:ExplainAssignments",
        "arn:aws:rolegate:::assignments".into(),
        || async {
            let b: ExplainBody = req.json()?;
            let subject = b
                .claims
                .get("sub")
                .and_then(Value::as_str)
                .unwrap_or("-")
                .to_string();
            let e = crate::mapping::evaluate(
                &app.config,
                &crate::mapping::Subject {
                    provider: &b.provider,
                    subject: &subject,
                    claims: &b.claims,
                    local_groups: &b.local_groups,
                },
            )
            .map_err(|e| AdminError::new(StatusCode::BAD_REQUEST, e.to_string()))?;
            serde_json::to_value(e)
                .map_err(|e| AdminError::new(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()))
        },
    )
    .await
}

async fn revoke_user(app: &App, user_id: &str, reason: &str) -> Result<Revocation, AdminError> {
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
struct RevokeBody {
    /// `user` (a directory user's name), `role` (ARN), `session` (id), `subject` (with provider).
    scope: String,
    value: String,
    provider: Option<String>,
    reason: String,
}

async fn revoke_sessions(State(app): State<Arc<App>>, req: AdminRequest) -> Response {
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
                    let r = super::RevocationRequest {
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

#[derive(Deserialize)]
struct BootstrapStart {
    token: String,
    password: String,
}

#[derive(Deserialize)]
struct BootstrapFinish {
    token: String,
    code1: String,
    code2: String,
}

/// The first step of the root bootstrap; the token itself is the credential.
async fn bootstrap_start(State(app): State<Arc<App>>, req: AdminRequest) -> Response {
    bootstrap(&app, &req, "rolegate:BootstrapRoot", || async {
        let b: BootstrapStart = req.json()?;
        let e = directory(&app)?
            .bootstrap_start(
                &b.token,
                crate::idp::local::password::Password::new(b.password),
            )
            .await?;
        Ok(json!({
            "serial": e.serial,
            "secret_base32": e.secret_base32.expose(),
            "uri": e.uri.expose(),
        }))
    })
    .await
}

async fn bootstrap_finish(State(app): State<Arc<App>>, req: AdminRequest) -> Response {
    bootstrap(&app, &req, "rolegate:BootstrapRootMFA", || async {
        let b: BootstrapFinish = req.json()?;
        directory(&app)?
            .bootstrap_finish(&b.token, &b.code1, &b.code2)
            .await?;
        Ok(json!({"root": "ready"}))
    })
    .await
}

async fn bootstrap<F, Fut>(app: &Arc<App>, req: &AdminRequest, action: &str, work: F) -> Response
where
    F: FnOnce() -> Fut,
    Fut: std::future::Future<Output = Result<Value, AdminError>>,
{
    let mut ev = AuditEvent::new(app.clock.now(), &crate::request::request_id(), action);
    ev.principal = Some(user_arn(app, "root").replace(":user/root", ":root"));
    ev.source_ip = Some(req.source.ip().to_string());
    ev.root = true;
    let result = match app.limits.login(req.source.ip(), None) {
        Ok(()) => work().await,
        Err(limited) => Err(rate_limited(app, &mut ev, &limited)),
    };
    respond(app, ev, result)
}

#[derive(Deserialize)]
struct SignIn {
    user: String,
    password: String,
    serial: Option<String>,
    code: Option<String>,
    /// With `permission_set`: also hand out credentials for that assignment.
    account: Option<String>,
    permission_set: Option<String>,
}

/// Password sign-in of a directory user (with a TOTP code when the user has a device, and always
/// for root): checks the credentials, applies the assignment rules of the local directory, records
/// the login, and answers who signed in and what they may assume. Root sign-ins are flagged in the
/// audit log.
async fn password_sign_in(State(app): State<Arc<App>>, req: AdminRequest) -> Response {
    let mut ev = AuditEvent::new(
        app.clock.now(),
        &crate::request::request_id(),
        "rolegate:SignIn",
    );
    ev.source_ip = Some(req.source.ip().to_string());
    ev.provider = Some(crate::config::LOCAL_PROVIDER.into());
    let result = async {
        let b: SignIn = req.json()?;
        ev.subject = Some(b.user.clone());
        // Before any password work: a refused attempt costs no hashing.
        let limited = app
            .limits
            .login(req.source.ip(), Some(&b.user))
            .and_then(|()| match (&b.serial, &b.code) {
                (Some(serial), Some(_)) => app.limits.mfa(serial),
                _ => Ok(()),
            });
        if let Err(limited) = limited {
            return Err(rate_limited(&app, &mut ev, &limited));
        }
        let d = directory(&app)?;
        let user = d
            .check_password(
                &b.user,
                crate::idp::local::password::Password::new(b.password),
            )
            .await
            .map_err(|e| {
                ev.reason = Some(e.to_string());
                match e {
                    DirectoryError::Locked { .. } => AdminError::new(
                        StatusCode::TOO_MANY_REQUESTS,
                        "too many failed sign-ins; try again later",
                    ),
                    DirectoryError::Denied(_) => {
                        AdminError::new(StatusCode::UNAUTHORIZED, "wrong user name or password")
                    }
                    other => AdminError::from(other),
                }
            })?;
        ev.principal = Some(user.arn(d.account()));
        ev.root = user.root;
        let mfa_time = match (&b.serial, &b.code, user.has_mfa()) {
            (Some(serial), Some(code), true) => {
                Some(d.verify_totp(&user, serial, code).await.map_err(|e| {
                    ev.reason = Some(e.to_string());
                    AdminError::new(StatusCode::UNAUTHORIZED, "MFA failed")
                })?)
            }
            (None, None, _) => None,
            _ => {
                ev.reason = Some("MFA code given for a user without an MFA device".into());
                return Err(AdminError::new(StatusCode::UNAUTHORIZED, "MFA failed"));
            }
        };
        // The one MFA rule: whoever has an MFA method (root always) signs in only with it.
        if let Err(e) = crate::authz::gate::mfa_rule(&user, mfa_time) {
            ev.reason = Some(format!("mint gate: {e}"));
            return Err(AdminError::new(
                StatusCode::UNAUTHORIZED,
                "this user signs in only with MFA: give serial and code",
            ));
        }
        ev.mfa = Some(mfa_time.is_some());
        let claims = serde_json::Map::from_iter([
            ("sub".to_string(), Value::String(user.name.clone())),
            ("username".to_string(), Value::String(user.name.clone())),
        ]);
        let evaluation = crate::mapping::evaluate(
            &app.config,
            &crate::mapping::Subject {
                provider: crate::config::LOCAL_PROVIDER,
                subject: &user.name,
                claims: &claims,
                local_groups: &user.groups,
            },
        )
        .map_err(|e| AdminError::new(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()))?;
        let changes = crate::mapping::record_login(
            app.store.as_ref(),
            &evaluation,
            app.clock.now().timestamp(),
        )
        .await
        .map_err(|e| AdminError::new(StatusCode::SERVICE_UNAVAILABLE, e.to_string()))?;
        let credentials = match (&b.account, &b.permission_set) {
            (Some(account), Some(set)) => {
                let who = crate::authz::gate::SignedInIdentity {
                    provider: crate::config::LOCAL_PROVIDER.into(),
                    subject: user.name.clone(),
                    claims: claims.clone(),
                    mfa_time,
                    origin_user: Some(user.user_id.clone()),
                    local_groups: user.groups.clone(),
                    signed_in_at: app.clock.now().timestamp(),
                };
                let admitted = crate::authz::gate::admit_sign_in(&app, &who)
                    .await
                    .map_err(|e| {
                        ev.reason = Some(format!("mint gate: {e}"));
                        if e.unavailable() {
                            AdminError::new(StatusCode::SERVICE_UNAVAILABLE, e.to_string())
                        } else {
                            AdminError::new(StatusCode::FORBIDDEN, "sign-in refused")
                        }
                    })?;
                let (c, token) =
                    crate::sts::credentials_for_assignment(&app, &admitted, account, set, &mut ev)
                        .map_err(|e| {
                            ev.reason = Some(e.reason.clone());
                            AdminError::new(e.status(), e.message.clone())
                        })?;
                Some(json!({
                    "AccessKeyId": c.access_key_id,
                    "SecretAccessKey": c.secret_access_key,
                    "SessionToken": token,
                    "Expiration": chrono::DateTime::<chrono::Utc>::from_timestamp(c.expires_at, 0)
                        .unwrap_or_default()
                        .to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
                }))
            }
            (None, None) => None,
            _ => {
                return Err(AdminError::new(
                    StatusCode::BAD_REQUEST,
                    "give account and permission_set together",
                ))
            }
        };
        Ok(json!({
            "user": user.name,
            "arn": user.arn(d.account()),
            "root": user.root,
            "mfa": mfa_time.is_some(),
            "assignments": evaluation.assignments,
            "removed_since_last_login": changes.removed,
            "credentials": credentials,
        }))
    }
    .await;
    respond(&app, ev, result)
}
