//! A directory user changes its own password on the sign-in security page: the current password
//! (counted against the password lock like a sign-in) and, for a user with an MFA method, an MFA no
//! older than [`super::FRESH_MFA_SECONDS`] (a code of its authenticator app typed with the form, or
//! the challenge passed just before). The new password follows the directory's rules.
//!
//! A changed password ends the person's other portal sessions (other browsers, perhaps signed in
//! by whoever knew the old password); the session that made the change stays. Its SSO sign-ins and
//! the credentials they obtained stay too: ending every sign-in is the administrator's revocation
//! (`POST /admin/sessions/revoke`, scope `user`).

use super::security::{needs_fresh_mfa, render_security, SecurityForm};
use super::{fresh, now, with_status};
use crate::app::App;
use crate::audit::Outcome;
use crate::idp::local::password::Password;
use crate::idp::local::{DirectoryError, User};
use crate::portal::extract::form_action;
use crate::portal::pages::refuse_internal;
use crate::portal::session::{self, SessionRecord, SESSION_KIND};
use crate::portal::PortalError;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::Response;
use std::sync::Arc;

form_action!(
    /// A person changing its own password.
    ChangePassword = "portal:ChangePassword"
);

/// `POST /portal/security/password`.
pub(super) async fn change_password(
    State(app): State<Arc<App>>,
    SecurityForm {
        s,
        user,
        mut ev,
        d,
        r,
        ..
    }: SecurityForm<ChangePassword>,
) -> Response {
    let refuse = |mut ev: crate::audit::AuditEvent, reason: String, message: &'static str| {
        let app = app.clone();
        let s = s.clone();
        async move {
            ev.outcome(Outcome::Deny);
            ev.reason = Some(reason);
            app.audit.record(ev);
            with_status(
                StatusCode::BAD_REQUEST,
                render_security(&app, &s, Some(message)).await,
            )
        }
    };
    let (current, new, confirm) = (
        r.field("current").unwrap_or(""),
        r.field("password").unwrap_or(""),
        r.field("confirm").unwrap_or(""),
    );
    if current.is_empty() || new.is_empty() {
        return refuse(
            ev,
            "current or new password missing".into(),
            "Enter your current password and the new one.",
        )
        .await;
    }
    if new != confirm {
        return refuse(
            ev,
            "the new password and its confirmation differ".into(),
            "The two new passwords differ.",
        )
        .await;
    }
    let code = r.field("code").map(str::trim).filter(|c| !c.is_empty());
    if user.has_mfa() {
        match code {
            Some(code) => {
                if let Err(e) = d.verify_totp(&user, &d.totp_serial(&user), code).await {
                    return refuse(
                        ev,
                        format!("MFA: {e}"),
                        "The code from your authenticator app is wrong or has been used.",
                    )
                    .await;
                }
            }
            None if fresh(s.record.identity.mfa_time, now(&app)) => {}
            None => return needs_fresh_mfa(&app, ev, "changing the password"),
        }
    }
    match d
        .check_password(&user.name, Password::new(current.to_string()))
        .await
    {
        Ok(_) => {}
        Err(e @ (DirectoryError::Denied(_) | DirectoryError::Locked { .. })) => {
            return refuse(
                ev,
                e.to_string(),
                "Your current password is wrong, or password sign-in is locked for a while after too many failures.",
            )
            .await
        }
        Err(e) => return refuse_internal(&app, ev, e),
    }
    match d
        .set_password(&user.name, Password::new(new.to_string()))
        .await
    {
        Ok(()) => {
            ev.outcome(Outcome::Allow);
            let (reason, message) = match end_other_sessions(&app, &user, &s.key).await {
                Ok(n) => (
                    format!("password changed by its user; {n} other portal session(s) ended"),
                    "Your password is changed. You are signed out everywhere else.",
                ),
                Err(e) => (
                    format!("password changed by its user; ending its other portal sessions failed: {e}"),
                    "Your password is changed, but your other sessions could not all be ended: sign out everywhere.",
                ),
            };
            ev.reason = Some(reason);
            app.audit.record(ev);
            render_security(&app, &s, Some(message)).await
        }
        Err(DirectoryError::Invalid(why)) => {
            ev.outcome(Outcome::Deny);
            ev.reason = Some(why.clone());
            app.audit.record(ev);
            with_status(
                StatusCode::BAD_REQUEST,
                render_security(
                    &app,
                    &s,
                    Some(&format!("The new password is not accepted: {why}.")),
                )
                .await,
            )
        }
        Err(e) => refuse_internal(&app, ev, e),
    }
}

/// Ends every portal session of directory user `user` (by its user id: a former user of the same
/// name is someone else) but the one stored under `keep`; returns how many.
async fn end_other_sessions(app: &App, user: &User, keep: &str) -> Result<usize, PortalError> {
    let store = app.store.as_ref();
    let mut ended = 0;
    for (key, v) in store.dir_list(SESSION_KIND).await? {
        if key == keep {
            continue;
        }
        let Ok(r) = serde_json::from_str::<SessionRecord>(&v.value) else {
            continue;
        };
        if r.identity.provider == crate::config::LOCAL_PROVIDER
            && r.identity.origin_user.as_deref() == Some(user.user_id.as_str())
        {
            session::delete(store, &key).await?;
            ended += 1;
        }
    }
    Ok(ended)
}
