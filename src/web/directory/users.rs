//! Users: create, read, list, delete, password, access keys, MFA devices and inline policies.

use super::route::{Call, Work};
use super::sessions::revoke_user;
use super::AdminError;
use crate::app::App;
use crate::idp::local::{Directory, Holder, KeyStatus, User};
use serde::Deserialize;
use serde_json::{json, Value};

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
        "policy_documents": u.policies,
        "managed_policy_arns": u.managed_policy_arns,
        "access_keys": keys,
        "mfa_devices": u.mfa_devices.iter().map(|m| json!({
            "serial": m.serial(), "enabled": m.enabled()
        })).collect::<Vec<_>>(),
        "locked": d.locks(u).await?,
        "console": app.config.public_url.as_str(),
    }))
}

#[derive(Deserialize)]
pub(super) struct NewUser {
    pub(super) name: String,
    pub(super) path: Option<String>,
}

pub(super) fn create_user(c: &Call) -> Work<'_> {
    Box::pin(async move {
        let b: NewUser = c.json()?;
        let d = c.directory()?;
        let u = d.create_user(&b.name, b.path.as_deref()).await?;
        user_view(&c.app, d, &u).await
    })
}

pub(super) fn list_users(c: &Call) -> Work<'_> {
    Box::pin(async move {
        let d = c.directory()?;
        let users = d
            .map_users(|u| json!({"name": u.name, "user_id": u.user_id, "arn": u.arn(d.account()), "root": u.root, "active": u.active()}))
            .await?;
        Ok(Value::Array(users))
    })
}

pub(super) fn get_user(c: &Call) -> Work<'_> {
    Box::pin(async move {
        let d = c.directory()?;
        let u = d.user(c.param("name")?).await?;
        user_view(&c.app, d, &u).await
    })
}

pub(super) fn delete_user(c: &Call) -> Work<'_> {
    Box::pin(async move {
        let u = c.directory()?.delete_user(c.param("name")?).await?;
        // Sessions the user started end with it.
        revoke_user(&c.app, &u.user_id, "user deleted").await?;
        Ok(json!({"deleted": u.name}))
    })
}

#[derive(Deserialize)]
pub(super) struct PasswordBody {
    password: String,
}

pub(super) fn set_password(c: &Call) -> Work<'_> {
    Box::pin(async move {
        let b: PasswordBody = c.json()?;
        c.directory()?
            .set_password(
                c.param("name")?,
                crate::idp::local::password::Password::new(b.password),
            )
            .await?;
        Ok(json!({"password_set": true}))
    })
}

pub(super) fn create_access_key(c: &Call) -> Work<'_> {
    Box::pin(async move {
        let k = c.directory()?.create_access_key(c.param("name")?).await?;
        Ok(
            json!({"access_key_id": k.id, "secret_access_key": k.secret.expose(), "status": k.status}),
        )
    })
}

pub(super) fn rotate_access_key(c: &Call) -> Work<'_> {
    Box::pin(async move {
        let (k, old) = c.directory()?.rotate_access_key(c.param("name")?).await?;
        Ok(json!({
            "access_key_id": k.id,
            "secret_access_key": k.secret.expose(),
            "deactivated": old,
        }))
    })
}

#[derive(Deserialize)]
pub(super) struct StatusBody {
    status: KeyStatus,
}

pub(super) fn update_access_key(c: &Call) -> Work<'_> {
    Box::pin(async move {
        let b: StatusBody = c.json()?;
        let id = c.param("id")?;
        c.directory()?
            .set_access_key_status(c.param("name")?, id, b.status)
            .await?;
        Ok(json!({"access_key_id": id, "status": b.status}))
    })
}

pub(super) fn delete_access_key(c: &Call) -> Work<'_> {
    Box::pin(async move {
        let id = c.param("id")?;
        c.directory()?
            .delete_access_key(c.param("name")?, id)
            .await?;
        Ok(json!({"deleted": id}))
    })
}

pub(super) fn create_totp(c: &Call) -> Work<'_> {
    Box::pin(async move {
        let e = c.directory()?.create_totp(c.param("name")?).await?;
        Ok(json!({
            "serial": e.serial,
            "secret_base32": e.secret_base32.expose(),
            "uri": e.uri.expose(),
        }))
    })
}

#[derive(Deserialize)]
pub(super) struct Codes {
    code1: String,
    code2: String,
}

pub(super) fn enable_totp(c: &Call) -> Work<'_> {
    Box::pin(async move {
        let b: Codes = c.json()?;
        let serial = c
            .directory()?
            .enable_totp(c.param("name")?, &b.code1, &b.code2)
            .await?;
        Ok(json!({"serial": serial, "enabled": true}))
    })
}

/// The query of `DELETE /admin/users/{name}/mfa`.
#[derive(Deserialize)]
pub(super) struct SerialQuery {
    serial: String,
}

pub(super) fn delete_mfa(c: &Call) -> Work<'_> {
    Box::pin(async move {
        let q: SerialQuery = c.query()?;
        c.directory()?
            .delete_mfa_device(c.param("name")?, &q.serial)
            .await?;
        Ok(json!({"deleted": q.serial}))
    })
}

#[derive(Deserialize)]
pub(super) struct PolicyBody {
    document: Value,
}

fn policy_text(b: &PolicyBody) -> String {
    match &b.document {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

/// Puts the inline policy `{policy}` of the body on `holder`.
pub(super) async fn put_policy(c: &Call, holder: Holder<'_>) -> Result<Value, AdminError> {
    let b: PolicyBody = c.json()?;
    let policy = c.param("policy")?;
    c.directory()?
        .put_policy(holder, policy, &policy_text(&b))
        .await?;
    Ok(json!({"policy": policy}))
}

/// Deletes the inline policy `{policy}` of `holder`.
pub(super) async fn delete_policy(c: &Call, holder: Holder<'_>) -> Result<Value, AdminError> {
    let policy = c.param("policy")?;
    c.directory()?.delete_policy(holder, policy).await?;
    Ok(json!({"deleted": policy}))
}

pub(super) fn put_user_policy(c: &Call) -> Work<'_> {
    Box::pin(async move { put_policy(c, Holder::User(c.param("name")?)).await })
}

pub(super) fn delete_user_policy(c: &Call) -> Work<'_> {
    Box::pin(async move { delete_policy(c, Holder::User(c.param("name")?)).await })
}
