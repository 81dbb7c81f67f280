//! MFA in the portal: the challenge (`/portal/mfa`), and the sign-in security page
//! (`/portal/security`) with TOTP enrolment (QR code rendered here as inline SVG), its removal
//! and the recovery codes.
//!
//! The flow: a directory user who has an MFA method and signs in with the password alone gets a
//! session that waits for the challenge (`mfa_pending`): every portal page but the challenge, the
//! security-key challenge and sign-out sends the browser to `/portal/mfa`, which comes back to
//! the sign-in's `return_to`; a session still waiting after [`PENDING_SECONDS`] ends. Passing the
//! challenge (a TOTP code, a recovery code, or a security key on `/portal/mfa/webauthn`) moves
//! the session to a new id with the MFA time ([`session::record_mfa`]). A permission set that
//! needs (fresh) MFA links to the challenge too. Removing TOTP, regenerating recovery codes and
//! adding a method to an account that has one need an MFA no older than [`FRESH_MFA_SECONDS`];
//! root keeps its last MFA device (it signs in only with MFA).
//!
//! A TOTP enrolment belongs to the session that started it (kind `portal_totp_enrolment`, keyed
//! by the directory user id, holding the hash of that session's CSRF token, which survives the
//! session's step-up): no other session of the person is shown its secret.
//!
//! People who sign in through an OIDC or SAML provider do their MFA at the provider; these pages
//! say so and offer nothing to enrol here.
//!
//! Owns: the challenge and enrolment pages and their rules. Must not know: how codes are checked
//! (the directory and [`recovery`](super::recovery) do), WebAuthn ceremonies.

mod challenge;
mod password;
mod recovery_codes;
mod security;
mod totp;

pub use totp::qr_svg;

use super::extract::PortalRequest;
use super::pages::event;
use super::session::{self, Session, SESSION_COOKIE};
use super::{settings, PortalError, SignedInIdentity};
use crate::app::App;
use crate::audit::AuditEvent;
use crate::config::MfaRequirement;
use crate::idp::local::{MfaDevice, User};
use axum::http::StatusCode;
use axum::response::Response;
use axum::routing::{get, post};
use axum::Router;
use challenge::{challenge_page, challenge_submit};
use recovery_codes::recovery_regenerate;
use security::security_page;
use std::sync::Arc;
use totp::{totp_confirm, totp_page, totp_remove, totp_start};

/// The challenge page.
pub const CHALLENGE_PATH: &str = "/portal/mfa";
/// The security-key challenge (built with the WebAuthn pages).
pub const WEBAUTHN_CHALLENGE_PATH: &str = "/portal/mfa/webauthn";
/// The sign-in security page.
pub const SECURITY_PATH: &str = "/portal/security";
/// Audit action of the challenge.
pub const CHALLENGE_ACTION: &str = "portal:MfaChallenge";
/// How recent an MFA must be for removing TOTP, regenerating recovery codes or adding a method
/// to an account that has one (seconds).
pub const FRESH_MFA_SECONDS: i64 = 300;
/// How long a started TOTP enrolment can be confirmed (seconds).
pub const ENROLMENT_SECONDS: i64 = 600;
/// How long a session waits for the MFA challenge before it ends (seconds).
pub const PENDING_SECONDS: i64 = 600;
/// Directory kind binding a pending TOTP enrolment to the session that started it.
const ENROLMENT_KIND: &str = "portal_totp_enrolment";

/// The challenge's URL coming back to `return_to` (made safe).
pub fn challenge_url(return_to: &str) -> String {
    url_with_return(CHALLENGE_PATH, return_to)
}

fn url_with_return(path: &str, return_to: &str) -> String {
    let q: String = form_urlencoded::Serializer::new(String::new())
        .append_pair("return_to", &session::safe_return_to(Some(return_to)))
        .finish();
    format!("{path}?{q}")
}

/// Whether an MFA at `mfa_time` meets `requirement` at `now`.
pub fn satisfies(requirement: MfaRequirement, mfa_time: Option<i64>, now: i64) -> bool {
    match requirement {
        MfaRequirement::None => true,
        MfaRequirement::Required => mfa_time.is_some(),
        MfaRequirement::Within(s) => mfa_time.is_some_and(|t| now - t <= i64::from(s)),
    }
}

/// Whether an MFA at `mfa_time` is fresh enough for changing the person's MFA methods.
pub fn fresh(mfa_time: Option<i64>, now: i64) -> bool {
    mfa_time.is_some_and(|t| now - t <= FRESH_MFA_SECONDS && t <= now + 60)
}

/// Whether a session waiting for the MFA challenge has waited too long: it then ends.
pub fn pending_too_long(r: &session::SessionRecord, now: i64) -> bool {
    r.mfa_pending && now - r.created_at >= PENDING_SECONDS
}

/// Whether the user has an enabled TOTP device.
pub fn has_totp(user: &User) -> bool {
    user.mfa_devices
        .iter()
        .any(|d| matches!(d, MfaDevice::Totp { .. }) && d.enabled())
}

/// Whether the user has registered security keys (WebAuthn).
pub fn has_webauthn(user: &User) -> bool {
    user.mfa_devices
        .iter()
        .any(|d| matches!(d, MfaDevice::SecurityKey { .. }))
}

/// The routes of this module.
pub(super) fn routes() -> Router<Arc<App>> {
    Router::new()
        .route(CHALLENGE_PATH, get(challenge_page).post(challenge_submit))
        .route(SECURITY_PATH, get(security_page))
        .route("/portal/security/totp", get(totp_page).post(totp_start))
        .route("/portal/security/totp/confirm", post(totp_confirm))
        .route("/portal/security/totp/remove", post(totp_remove))
        .route("/portal/security/recovery", post(recovery_regenerate))
        .route("/portal/security/password", post(password::change_password))
}

/// The directory user behind a session: `None` for people of a federated provider.
async fn local_user(app: &App, identity: &SignedInIdentity) -> Result<Option<User>, PortalError> {
    let Some(id) = identity.origin_user.as_deref() else {
        return Ok(None);
    };
    let d = app
        .directory
        .as_ref()
        .ok_or_else(|| PortalError::Internal("a local session without the directory".into()))?;
    match d.user_by_id(id).await {
        Ok(Some(u)) => Ok(Some(u)),
        // The user was deleted: the session is worth nothing any more.
        Ok(None) => Err(PortalError::SessionExpired),
        Err(e) => Err(PortalError::Internal(e.to_string())),
    }
}

fn person_event(app: &App, action: &str, r: &PortalRequest, s: &Session) -> AuditEvent {
    let mut ev = event(app, action, &r.ip);
    let identity = &s.record.identity;
    ev.principal = Some(identity.display());
    ev.provider = Some(identity.provider.clone());
    ev.subject = Some(identity.subject.clone());
    ev
}

fn now(app: &App) -> i64 {
    app.clock.now().timestamp()
}

fn session_cookie(app: &App, token: &str) -> String {
    let max = settings(app).map_or(3600, |s| s.max_seconds);
    session::set_cookie(SESSION_COOKIE, token, max)
}

fn with_status(status: StatusCode, mut resp: Response) -> Response {
    if resp.status() == StatusCode::OK {
        *resp.status_mut() = status;
    }
    resp
}
