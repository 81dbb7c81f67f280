//! Signing in with a password (`POST /login/password`) and the root user's bootstrap.

use super::{directory, rate_limited, respond, user_arn, AdminError, AdminRequest};
use crate::app::App;
use crate::audit::AuditEvent;
use crate::idp::local::DirectoryError;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use serde_json::{json, Value};
use std::net::SocketAddr;
use std::sync::Arc;

#[derive(Deserialize)]
pub(super) struct BootstrapStart {
    token: String,
    password: String,
}

#[derive(Deserialize)]
pub(super) struct BootstrapFinish {
    token: String,
    code1: String,
    code2: String,
}

/// The first step of the root bootstrap; the token itself is the credential.
pub(super) async fn bootstrap_start(State(app): State<Arc<App>>, req: AdminRequest) -> Response {
    let result = match req.json::<BootstrapStart>() {
        Ok(b) => start_root(&app, req.source, &b.token, &b.password).await,
        Err(e) => {
            audited_bootstrap(&app, req.source, "rolegate:BootstrapRoot", || async {
                Err(e)
            })
            .await
        }
    };
    into_response(result)
}

pub(super) async fn bootstrap_finish(State(app): State<Arc<App>>, req: AdminRequest) -> Response {
    let result = match req.json::<BootstrapFinish>() {
        Ok(b) => finish_root(&app, req.source, &b.token, &b.code1, &b.code2).await,
        Err(e) => {
            audited_bootstrap(&app, req.source, "rolegate:BootstrapRootMFA", || async {
                Err(e)
            })
            .await
        }
    };
    into_response(result)
}

fn into_response(result: Result<Value, AdminError>) -> Response {
    match result {
        Ok(v) => axum::Json(v).into_response(),
        Err(e) => e.into_response(),
    }
}

/// The root bootstrap's first step, from `source`: with the bootstrap token, root's password;
/// answers root's new TOTP device (serial, secret, `otpauth:` URI). Rate-limited and audited.
pub async fn start_root(
    app: &Arc<App>,
    source: SocketAddr,
    token: &str,
    password: &str,
) -> Result<Value, AdminError> {
    audited_bootstrap(app, source, "rolegate:BootstrapRoot", || async {
        let e = directory(app)?
            .bootstrap_start(
                token,
                crate::idp::local::password::Password::new(password.to_string()),
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

/// The root bootstrap's second step: two consecutive codes of root's new TOTP device.
pub async fn finish_root(
    app: &Arc<App>,
    source: SocketAddr,
    token: &str,
    code1: &str,
    code2: &str,
) -> Result<Value, AdminError> {
    audited_bootstrap(app, source, "rolegate:BootstrapRootMFA", || async {
        directory(app)?
            .bootstrap_finish(token, code1, code2)
            .await?;
        Ok(json!({"root": "ready"}))
    })
    .await
}

async fn audited_bootstrap<F, Fut>(
    app: &Arc<App>,
    source: SocketAddr,
    action: &str,
    work: F,
) -> Result<Value, AdminError>
where
    F: FnOnce() -> Fut,
    Fut: std::future::Future<Output = Result<Value, AdminError>>,
{
    let mut ev = AuditEvent::new(app.clock.now(), &crate::request::request_id(), action);
    ev.principal = Some(user_arn(app, "root").replace(":user/root", ":root"));
    ev.source_ip = Some(source.ip().to_string());
    ev.root = true;
    let result = match app.limits.login(source.ip(), None) {
        Ok(()) => work().await,
        Err(limited) => Err(rate_limited(app, &mut ev, &limited)),
    };
    super::record(app, ev, &result);
    result
}

#[derive(Deserialize)]
pub(super) struct SignIn {
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
/// the login, and answers who signed in and what they may assume — with credentials for one
/// assignment when asked, recorded so that an operator can list and end them. Root sign-ins are
/// flagged in the audit log.
pub(super) async fn password_sign_in(State(app): State<Arc<App>>, req: AdminRequest) -> Response {
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
        // The login record is read while the password is checked: one wait for the store less.
        let (checked, ahead) = tokio::join!(
            d.check_password(
                &b.user,
                crate::idp::local::password::Password::new(b.password),
            ),
            crate::mapping::read_login_record(
                app.store.as_ref(),
                crate::config::LOCAL_PROVIDER,
                &b.user
            )
        );
        let user = checked.map_err(|e| {
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
                provisioned_groups: None,
            },
        )
        .map_err(|e| AdminError::new(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()))?;
        let changes = crate::mapping::record_login_after(
            app.store.as_ref(),
            &evaluation,
            app.clock.now().timestamp(),
            ahead,
        )
        .await
        .map_err(|e| {
            ev.reason = Some(format!("login record: {e}"));
            AdminError::new(StatusCode::SERVICE_UNAVAILABLE, e.to_string())
        })?;
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
                // Recorded before they are handed out, so that an operator can list and end them.
                let issue = crate::portal::issued::Issue {
                    portal_session: None,
                    identity: &admitted.identity,
                    claims: &c,
                    account,
                    permission_set: set,
                    how: crate::portal::issued::IssuedHow::PasswordSignIn,
                };
                crate::portal::issued::record(app.store.as_ref(), issue)
                    .await
                    .map_err(|e| {
                        ev.reason = Some(format!("recording the credentials: {e}"));
                        AdminError::new(StatusCode::SERVICE_UNAVAILABLE, e.to_string())
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
