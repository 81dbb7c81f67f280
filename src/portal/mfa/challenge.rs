//! The challenge (`/portal/mfa`): a TOTP code or a recovery code (a security key has its own
//! page), after which the session moves to a new id with the MFA time.

use super::{
    has_totp, has_webauthn, local_user, now, person_event, session_cookie, url_with_return,
    with_status, CHALLENGE_ACTION, WEBAUTHN_CHALLENGE_PATH,
};
use crate::app::App;
use crate::audit::Outcome;
use crate::idp::local::DirectoryError;
use crate::portal::extract::{
    form_action, query_param, CheckedPost, PageRule, PortalRequest, SignedIn,
};
use crate::portal::pages::{page, refuse, with_cookies};
use crate::portal::session::{self, Session};
use crate::portal::{recovery, PortalError};
use askama::Template;
use axum::extract::State;
use axum::http::request::Parts;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use std::sync::Arc;

#[derive(Template)]
#[template(path = "portal/mfa.html")]
struct ChallengePage<'a> {
    who: String,
    csrf: &'a str,
    return_to: &'a str,
    message: Option<&'a str>,
    pending: bool,
    federated: bool,
    totp: bool,
    recovery_left: usize,
    webauthn_url: Option<String>,
}

impl ChallengePage<'_> {
    fn any_method(&self) -> bool {
        self.totp || self.recovery_left > 0 || self.webauthn_url.is_some()
    }
}

async fn render_challenge(
    app: &App,
    s: &Session,
    return_to: &str,
    message: Option<&str>,
) -> Response {
    let user = match local_user(app, &s.record.identity).await {
        Ok(u) => u,
        Err(e) => return e.into_response(),
    };
    let recovery_left = match &user {
        Some(u) => {
            match recovery::remaining(app.store.as_ref(), &recovery::local_person(&u.user_id)).await
            {
                Ok(n) => n.unwrap_or(0),
                Err(e) => return PortalError::Internal(e.to_string()).into_response(),
            }
        }
        None => 0,
    };
    page(ChallengePage {
        who: s.record.identity.display(),
        csrf: &s.record.csrf,
        return_to,
        message,
        pending: s.record.mfa_pending,
        federated: user.is_none(),
        totp: user.as_ref().is_some_and(has_totp),
        recovery_left,
        webauthn_url: user
            .as_ref()
            .filter(|u| has_webauthn(u))
            .map(|_| url_with_return(WEBAUTHN_CHALLENGE_PATH, return_to)),
    })
}

/// The challenge page: also (above all) for a session waiting for it; a browser without a session
/// signs in, coming back to where the challenge leads.
pub(super) struct ChallengePageRule;

impl PageRule for ChallengePageRule {
    const WHILE_PENDING: bool = true;

    fn sign_in_return(parts: &Parts) -> Option<String> {
        Some(session::safe_return_to(
            query_param(parts, "return_to").as_deref(),
        ))
    }
}

form_action!(
    /// A TOTP or recovery code entered on the challenge.
    MfaChallenge = CHALLENGE_ACTION, while_pending
);

pub(super) async fn challenge_page(
    State(app): State<Arc<App>>,
    SignedIn(s, _): SignedIn<ChallengePageRule>,
    r: PortalRequest,
) -> Response {
    let return_to = session::safe_return_to(r.param("return_to"));
    render_challenge(&app, &s, &return_to, None).await
}

/// Checks one TOTP or recovery code; on success the session moves to a new id with the MFA time.
pub(super) async fn challenge_submit(
    State(app): State<Arc<App>>,
    CheckedPost(s, r, _): CheckedPost<MfaChallenge>,
) -> Response {
    let mut ev = person_event(&app, CHALLENGE_ACTION, &r, &s);
    let return_to = session::safe_return_to(r.field("return_to"));
    let user = match local_user(&app, &s.record.identity).await {
        Ok(Some(u)) => u,
        Ok(None) => {
            return refuse(
                &app,
                ev,
                "no MFA method of this portal for a federated sign-in".into(),
                PortalError::BadRequest("no MFA method here".into()),
            )
        }
        Err(e) => return refuse(&app, ev, e.to_string(), e),
    };
    let Some(d) = app.directory.as_ref() else {
        return PortalError::Internal("no directory".into()).into_response();
    };
    ev.root = user.root;
    let code = r.field("code").unwrap_or("").trim();
    let method = r.field("method").unwrap_or("");
    let outcome: std::result::Result<String, (StatusCode, String)> = match method {
        "totp" if has_totp(&user) => {
            match d.verify_totp(&user, &d.totp_serial(&user), code).await {
                Ok(_) => Ok("TOTP code accepted".into()),
                Err(e @ DirectoryError::Denied(_)) => {
                    Err((StatusCode::UNAUTHORIZED, format!("TOTP: {e}")))
                }
                Err(e @ DirectoryError::Locked { .. }) => {
                    Err((StatusCode::TOO_MANY_REQUESTS, format!("TOTP: {e}")))
                }
                Err(e) => return PortalError::Internal(e.to_string()).into_response(),
            }
        }
        "recovery" => {
            let person = recovery::local_person(&user.user_id);
            match recovery::redeem(app.store.as_ref(), &person, code, now(&app)).await {
                Ok(left) => Ok(format!("recovery code used; {left} left")),
                Err(
                    e @ (recovery::RecoveryError::Wrong { .. } | recovery::RecoveryError::NoCodes),
                ) => Err((StatusCode::UNAUTHORIZED, format!("recovery code: {e}"))),
                Err(e @ recovery::RecoveryError::Locked { .. }) => {
                    Err((StatusCode::TOO_MANY_REQUESTS, format!("recovery code: {e}")))
                }
                Err(e) => return PortalError::Internal(e.to_string()).into_response(),
            }
        }
        "totp" => Err((
            StatusCode::UNAUTHORIZED,
            format!("TOTP: user {} has no enabled TOTP device", user.name),
        )),
        other => {
            return refuse(
                &app,
                ev,
                format!("unknown MFA method {other:?}"),
                PortalError::BadRequest("unknown method".into()),
            )
        }
    };
    match outcome {
        Ok(reason) => match session::record_mfa(app.store.as_ref(), &s, now(&app)).await {
            Ok(token) => {
                ev.outcome(Outcome::Allow);
                ev.mfa = Some(true);
                ev.reason = Some(reason);
                app.audit.record(ev);
                with_cookies(
                    Redirect::to(&return_to).into_response(),
                    &[session_cookie(&app, &token)],
                )
            }
            Err(e) => refuse(
                &app,
                ev,
                format!("{reason}, but the session ended meanwhile"),
                e,
            ),
        },
        Err((status, reason)) => {
            ev.outcome(Outcome::Deny);
            ev.reason = Some(reason);
            app.audit.record(ev);
            let message = if status == StatusCode::TOO_MANY_REQUESTS {
                "Too many wrong codes: this method is locked for a few minutes."
            } else if method == "recovery" {
                "That recovery code is wrong or has been used."
            } else {
                "That code is wrong or has been used. Wait for the next code and try again."
            };
            with_status(
                status,
                render_challenge(&app, &s, &return_to, Some(message)).await,
            )
        }
    }
}
