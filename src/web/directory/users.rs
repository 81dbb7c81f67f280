//! Users: create, read, list, delete, password, access keys, MFA devices and inline policies.

use super::sessions::revoke_user;
use super::{call, directory, root, user_arn, AdminError, AdminRequest};
use crate::app::App;
use crate::idp::local::{Directory, Holder, KeyStatus, User};
use axum::extract::{Path, Query, State};
use axum::response::Response;
use serde::Deserialize;
use serde_json::{json, Value};
use std::sync::Arc;

pub(super) async fn user_view(app: &App, d: &Directory, u: &User) -> Result<Value, AdminError> {
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
pub(super) struct NewUser {
    pub(super) name: String,
    pub(super) path: Option<String>,
}

pub(super) async fn create_user(State(app): State<Arc<App>>, req: AdminRequest) -> Response {
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

pub(super) async fn list_users(State(app): State<Arc<App>>, req: AdminRequest) -> Response {
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

pub(super) async fn get_user(
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

pub(super) async fn delete_user(
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
pub(super) struct PasswordBody {
    password: String,
}

pub(super) async fn set_password(
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

pub(super) async fn create_access_key(
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

pub(super) async fn rotate_access_key(
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
pub(super) struct StatusBody {
    status: KeyStatus,
}

pub(super) async fn update_access_key(
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

pub(super) async fn delete_access_key(
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

pub(super) async fn create_totp(
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
pub(super) struct Codes {
    code1: String,
    code2: String,
}

pub(super) async fn enable_totp(
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
pub(super) struct SerialQuery {
    serial: String,
}

pub(super) async fn delete_mfa(
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
pub(super) struct PolicyBody {
    document: Value,
}

pub(super) fn policy_text(b: &PolicyBody) -> String {
    match &b.document {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

pub(super) async fn put_user_policy(
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

pub(super) async fn delete_user_policy(
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
