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
//! (the directory and [`recovery`] do), WebAuthn ceremonies.

use super::pages::{
    event, page, refuse, require_post, require_post_with, require_session, require_session_any,
    to_login, with_cookies, PortalRequest,
};
use super::session::{self, Session, SESSION_COOKIE};
use super::{recovery, settings, PortalError, SignedInIdentity};
use crate::app::App;
use crate::audit::{AuditEvent, Outcome};
use crate::config::MfaRequirement;
use crate::idp::local::{Directory, DirectoryError, MfaDevice, User};
use crate::store::DirWrite;
use askama::Template;
use axum::extract::{Request, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use axum::Router;
use serde::{Deserialize, Serialize};
use std::sync::Arc;

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

// ----- the challenge -----

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

async fn challenge_page(State(app): State<Arc<App>>, req: Request) -> Response {
    let r = match PortalRequest::read(req).await {
        Ok(r) => r,
        Err(e) => return e.into_response(),
    };
    let return_to = session::safe_return_to(r.query.get("return_to").map(String::as_str));
    let s = match require_session_any(&app, &r.headers).await {
        Ok(s) => s,
        Err(PortalError::SessionExpired)
            if session::cookie(&r.headers, SESSION_COOKIE).is_none() =>
        {
            return to_login(&return_to)
        }
        Err(e) => return e.into_response(),
    };
    render_challenge(&app, &s, &return_to, None).await
}

/// Checks one TOTP or recovery code; on success the session moves to a new id with the MFA time.
async fn challenge_submit(State(app): State<Arc<App>>, req: Request) -> Response {
    let r = match PortalRequest::read(req).await {
        Ok(r) => r,
        Err(e) => return e.into_response(),
    };
    let s = match require_post_with(&app, &r, CHALLENGE_ACTION, true).await {
        Ok(s) => s,
        Err(resp) => return resp,
    };
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

// ----- the sign-in security page -----

/// The session that started a TOTP enrolment.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct Enrolment {
    /// SHA-256 of that session's CSRF token.
    session: String,
    /// Unix seconds.
    started_at: i64,
}

fn enrolment_binding(s: &Session) -> String {
    session::key_of(&s.record.csrf)
}

/// Whether the TOTP enrolment of `user` was started by session `s` and can still be confirmed.
async fn enrolment_is_ours(app: &App, user: &User, s: &Session) -> Result<bool, PortalError> {
    let Some(v) = app.store.dir_get(ENROLMENT_KIND, &user.user_id).await? else {
        return Ok(false);
    };
    let Ok(e) = serde_json::from_str::<Enrolment>(&v.value) else {
        return Ok(false);
    };
    let pending_device = user
        .mfa_devices
        .iter()
        .any(|d| matches!(d, MfaDevice::Totp { .. }) && !d.enabled());
    Ok(pending_device
        && crate::credentials::same_token(&e.session, &enrolment_binding(s))
        && now(app) - e.started_at <= ENROLMENT_SECONDS)
}

async fn end_enrolment(app: &App, user_id: &str) -> Result<(), PortalError> {
    if let Some(v) = app.store.dir_get(ENROLMENT_KIND, user_id).await? {
        app.store
            .dir_write(&[DirWrite::delete(ENROLMENT_KIND, user_id, v.version)])
            .await?;
    }
    Ok(())
}

#[derive(Template)]
#[template(path = "portal/security.html")]
struct SecurityPage<'a> {
    who: String,
    csrf: &'a str,
    message: Option<&'a str>,
    federated: bool,
    provider: &'a str,
    totp_since: Option<String>,
    enrolment_here: bool,
    recovery_left: Option<usize>,
    has_mfa: bool,
}

fn date(t: i64) -> String {
    chrono::DateTime::<chrono::Utc>::from_timestamp(t, 0)
        .unwrap_or_default()
        .format("%Y-%m-%d %H:%M UTC")
        .to_string()
}

async fn render_security(app: &App, s: &Session, message: Option<&str>) -> Response {
    let identity = &s.record.identity;
    let user = match local_user(app, identity).await {
        Ok(u) => u,
        Err(e) => return e.into_response(),
    };
    let (totp_since, enrolment_here, recovery_left, has_mfa) = match &user {
        Some(u) => {
            let since = u.mfa_devices.iter().find_map(|d| match d {
                MfaDevice::Totp {
                    enabled_at: Some(t),
                    ..
                } => Some(date(*t)),
                _ => None,
            });
            let ours = match enrolment_is_ours(app, u, s).await {
                Ok(b) => b,
                Err(e) => return e.into_response(),
            };
            let left =
                match recovery::remaining(app.store.as_ref(), &recovery::local_person(&u.user_id))
                    .await
                {
                    Ok(n) => n,
                    Err(e) => return PortalError::Internal(e.to_string()).into_response(),
                };
            (since, ours, left, u.has_mfa())
        }
        None => (None, false, None, false),
    };
    page(SecurityPage {
        who: identity.display(),
        csrf: &s.record.csrf,
        message,
        federated: user.is_none(),
        provider: &identity.provider,
        totp_since,
        enrolment_here,
        recovery_left,
        has_mfa,
    })
}

async fn security_page(State(app): State<Arc<App>>, req: Request) -> Response {
    let r = match PortalRequest::read(req).await {
        Ok(r) => r,
        Err(e) => return e.into_response(),
    };
    let s = match require_session(&app, &r.headers).await {
        Ok(s) => s,
        Err(PortalError::SessionExpired)
            if session::cookie(&r.headers, SESSION_COOKIE).is_none() =>
        {
            return to_login(SECURITY_PATH)
        }
        Err(e) => return e.into_response(),
    };
    render_security(&app, &s, None).await
}

/// For a POST of the security page: the session, its directory user and the audit event.
async fn security_post(
    app: &App,
    r: &PortalRequest,
    action: &str,
) -> std::result::Result<(Session, User, AuditEvent, Arc<Directory>), Response> {
    let s = require_post(app, r, action).await?;
    let ev = person_event(app, action, r, &s);
    match local_user(app, &s.record.identity).await {
        // A directory user was found, so there is a directory.
        Ok(Some(u)) => match app.directory.clone() {
            Some(d) => Ok((s, u, ev, d)),
            None => Err(PortalError::Internal("no directory".into()).into_response()),
        },
        Ok(None) => Err(refuse(
            app,
            ev,
            "MFA of a federated sign-in is managed at its provider".into(),
            PortalError::BadRequest("not a rolegate user".into()),
        )),
        Err(e) => Err(refuse(app, ev, e.to_string(), e)),
    }
}

/// Sends a person whose MFA is not fresh to the challenge (audited as refused).
fn needs_fresh_mfa(app: &App, mut ev: AuditEvent, what: &str) -> Response {
    ev.outcome(Outcome::Deny);
    ev.reason = Some(format!(
        "{what} needs an MFA within the last {} minutes",
        FRESH_MFA_SECONDS / 60
    ));
    app.audit.record(ev);
    Redirect::to(&challenge_url(SECURITY_PATH)).into_response()
}

#[derive(Template)]
#[template(path = "portal/totp-enrol.html")]
struct EnrolPage<'a> {
    who: String,
    csrf: &'a str,
    message: Option<&'a str>,
    qr_svg: String,
    secret_groups: String,
}

/// The otpauth URI as an inline SVG QR code: no `style` attributes (the CSP holds), a name for
/// assistive technology.
pub fn qr_svg(uri: &str) -> Result<String, PortalError> {
    let code = qrcode::QrCode::with_error_correction_level(uri.as_bytes(), qrcode::EcLevel::M)
        .map_err(|e| PortalError::Internal(format!("QR code: {e}")))?;
    let svg = code
        .render::<qrcode::render::svg::Color>()
        .min_dimensions(240, 240)
        .quiet_zone(true)
        .build();
    let body = svg.split_once("?>").map_or(svg.as_str(), |(_, b)| b);
    Ok(body.replacen(
        "<svg ",
        "<svg role=\"img\" aria-label=\"QR code to scan with your authenticator app\" ",
        1,
    ))
}

async fn render_enrolment(app: &App, s: &Session, user: &User, message: Option<&str>) -> Response {
    let Some(MfaDevice::Totp { secret, .. }) = user
        .mfa_devices
        .iter()
        .find(|d| matches!(d, MfaDevice::Totp { .. }) && !d.enabled())
    else {
        return Redirect::to(SECURITY_PATH).into_response();
    };
    let Some(d) = app.directory.as_ref() else {
        return PortalError::Internal("no directory".into()).into_response();
    };
    let b32 = secret.expose();
    let label = if user.root {
        "root"
    } else {
        user.name.as_str()
    };
    let raw = match crate::idp::local::totp::from_base32(b32) {
        Ok(r) => r,
        Err(e) => return PortalError::Internal(e.to_string()).into_response(),
    };
    let uri = match crate::idp::local::totp::uri(&raw, d.issuer(), label) {
        Ok(u) => u,
        Err(e) => return PortalError::Internal(e.to_string()).into_response(),
    };
    let qr = match qr_svg(&uri) {
        Ok(q) => q,
        Err(e) => return e.into_response(),
    };
    let groups: Vec<String> = b32
        .as_bytes()
        .chunks(4)
        .map(|c| String::from_utf8_lossy(c).into_owned())
        .collect();
    page(EnrolPage {
        who: s.record.identity.display(),
        csrf: &s.record.csrf,
        message,
        qr_svg: qr,
        secret_groups: groups.join(" "),
    })
}

/// The enrolment started by this session: QR code, secret and the confirmation form.
async fn totp_page(State(app): State<Arc<App>>, req: Request) -> Response {
    let r = match PortalRequest::read(req).await {
        Ok(r) => r,
        Err(e) => return e.into_response(),
    };
    let s = match require_session(&app, &r.headers).await {
        Ok(s) => s,
        Err(e) => return e.into_response(),
    };
    let user = match local_user(&app, &s.record.identity).await {
        Ok(Some(u)) => u,
        Ok(None) => return Redirect::to(SECURITY_PATH).into_response(),
        Err(e) => return e.into_response(),
    };
    match enrolment_is_ours(&app, &user, &s).await {
        Ok(true) => render_enrolment(&app, &s, &user, None).await,
        Ok(false) => Redirect::to(SECURITY_PATH).into_response(),
        Err(e) => e.into_response(),
    }
}

/// Starts TOTP enrolment: a new secret, bound to this session.
async fn totp_start(State(app): State<Arc<App>>, req: Request) -> Response {
    const ACTION: &str = "portal:StartTotpEnrolment";
    let r = match PortalRequest::read(req).await {
        Ok(r) => r,
        Err(e) => return e.into_response(),
    };
    let (s, user, mut ev, d) = match security_post(&app, &r, ACTION).await {
        Ok(x) => x,
        Err(resp) => return resp,
    };
    if has_totp(&user) {
        ev.outcome(Outcome::Deny);
        ev.reason = Some(format!("user {} already has TOTP", user.name));
        app.audit.record(ev);
        return with_status(
            StatusCode::CONFLICT,
            render_security(
                &app,
                &s,
                Some("An authenticator app is already set up. Remove it first."),
            )
            .await,
        );
    }
    if user.has_mfa() && !fresh(s.record.identity.mfa_time, now(&app)) {
        return needs_fresh_mfa(&app, ev, "adding an MFA method");
    }
    if let Err(e) = d.create_totp(&user.name).await {
        return refuse(
            &app,
            ev,
            e.to_string(),
            PortalError::Internal(e.to_string()),
        );
    }
    let binding = Enrolment {
        session: enrolment_binding(&s),
        started_at: now(&app),
    };
    let doc = match serde_json::to_string(&binding) {
        Ok(d) => d,
        Err(e) => return PortalError::Internal(e.to_string()).into_response(),
    };
    let current = match app.store.dir_get(ENROLMENT_KIND, &user.user_id).await {
        Ok(c) => c,
        Err(e) => return PortalError::Store(e).into_response(),
    };
    match app
        .store
        .dir_write(&[DirWrite::put(
            ENROLMENT_KIND,
            &user.user_id,
            current.as_ref(),
            doc,
        )])
        .await
    {
        Ok(true) => {}
        Ok(false) => {
            return refuse(
                &app,
                ev,
                "TOTP enrolment started concurrently".into(),
                PortalError::Internal("enrolment started concurrently".into()),
            )
        }
        Err(e) => return PortalError::Store(e).into_response(),
    }
    ev.outcome(Outcome::Allow);
    ev.reason = Some(format!(
        "TOTP enrolment started for {}",
        d.totp_serial(&user)
    ));
    app.audit.record(ev);
    Redirect::to("/portal/security/totp").into_response()
}

#[derive(Template)]
#[template(path = "portal/recovery-codes.html")]
struct CodesPage<'a> {
    who: String,
    csrf: &'a str,
    intro: &'a str,
    codes: Vec<String>,
}

/// Confirms the enrolment with two consecutive codes; the first MFA method also brings the
/// recovery codes, shown once. The codes prove the device: the session gets the MFA time.
async fn totp_confirm(State(app): State<Arc<App>>, req: Request) -> Response {
    const ACTION: &str = "portal:EnableTotp";
    let r = match PortalRequest::read(req).await {
        Ok(r) => r,
        Err(e) => return e.into_response(),
    };
    let (s, user, mut ev, d) = match security_post(&app, &r, ACTION).await {
        Ok(x) => x,
        Err(resp) => return resp,
    };
    match enrolment_is_ours(&app, &user, &s).await {
        Ok(true) => {}
        Ok(false) => {
            ev.outcome(Outcome::Deny);
            ev.reason = Some(
                "no TOTP enrolment of this session to confirm (another session's, expired or none)"
                    .into(),
            );
            app.audit.record(ev);
            return with_status(
                StatusCode::CONFLICT,
                render_security(
                    &app,
                    &s,
                    Some("There is no set-up to confirm in this session. Start again."),
                )
                .await,
            );
        }
        Err(e) => return e.into_response(),
    }
    let code1 = r.field("code1").unwrap_or("").trim();
    let code2 = r.field("code2").unwrap_or("").trim();
    let serial = match d.enable_totp(&user.name, code1, code2).await {
        Ok(serial) => serial,
        Err(e @ (DirectoryError::Denied(_) | DirectoryError::Locked { .. })) => {
            let locked = matches!(e, DirectoryError::Locked { .. });
            ev.outcome(Outcome::Deny);
            ev.reason = Some(e.to_string());
            app.audit.record(ev);
            let message = if locked {
                "Too many wrong codes: try again in a few minutes."
            } else {
                "Those are not two consecutive codes of your app. Enter the code shown now and, after it changes, the next one."
            };
            return with_status(
                if locked {
                    StatusCode::TOO_MANY_REQUESTS
                } else {
                    StatusCode::UNAUTHORIZED
                },
                render_enrolment(&app, &s, &user, Some(message)).await,
            );
        }
        Err(e) => {
            return refuse(
                &app,
                ev,
                e.to_string(),
                PortalError::Internal(e.to_string()),
            )
        }
    };
    if let Err(e) = end_enrolment(&app, &user.user_id).await {
        return e.into_response();
    }
    let person = recovery::local_person(&user.user_id);
    let codes = match recovery::remaining(app.store.as_ref(), &person).await {
        Ok(Some(n)) if n > 0 => None,
        Ok(_) => match recovery::generate(app.store.as_ref(), &person, now(&app)).await {
            Ok(c) => Some(c),
            Err(e) => return PortalError::Internal(e.to_string()).into_response(),
        },
        Err(e) => return PortalError::Internal(e.to_string()).into_response(),
    };
    let token = match session::record_mfa(app.store.as_ref(), &s, now(&app)).await {
        Ok(t) => t,
        Err(e) => {
            return refuse(
                &app,
                ev,
                format!("{serial} enabled, but the session ended"),
                e,
            )
        }
    };
    ev.outcome(Outcome::Allow);
    ev.mfa = Some(true);
    ev.reason = Some(match &codes {
        Some(c) => format!("{serial} enabled; {} recovery codes made", c.len()),
        None => format!("{serial} enabled"),
    });
    app.audit.record(ev);
    let cookie = session_cookie(&app, &token);
    match codes {
        Some(codes) => with_cookies(
            page(CodesPage {
                who: s.record.identity.display(),
                csrf: &s.record.csrf,
                intro: "Your authenticator app is set up. Keep these recovery codes somewhere safe: each signs you in once when you do not have your app. They are shown only now.",
                codes,
            }),
            &[cookie],
        ),
        None => with_cookies(Redirect::to(SECURITY_PATH).into_response(), &[cookie]),
    }
}

/// Removes the TOTP device (needs a fresh MFA). Without any MFA method left, the recovery codes
/// go too.
async fn totp_remove(State(app): State<Arc<App>>, req: Request) -> Response {
    const ACTION: &str = "portal:RemoveTotp";
    let r = match PortalRequest::read(req).await {
        Ok(r) => r,
        Err(e) => return e.into_response(),
    };
    let (s, user, mut ev, d) = match security_post(&app, &r, ACTION).await {
        Ok(x) => x,
        Err(resp) => return resp,
    };
    if !has_totp(&user) {
        return refuse(
            &app,
            ev,
            format!("user {} has no TOTP device to remove", user.name),
            PortalError::BadRequest("no TOTP device".into()),
        );
    }
    if user.root && !has_webauthn(&user) {
        ev.outcome(Outcome::Deny);
        ev.reason = Some("root signs in only with MFA: its last MFA device stays".into());
        app.audit.record(ev);
        return with_status(
            StatusCode::CONFLICT,
            render_security(
                &app,
                &s,
                Some("The root user signs in only with MFA: set up another method before removing this one."),
            )
            .await,
        );
    }
    if !fresh(s.record.identity.mfa_time, now(&app)) {
        return needs_fresh_mfa(&app, ev, "removing TOTP");
    }
    let serial = d.totp_serial(&user);
    if let Err(e) = d.delete_mfa_device(&user.name, &serial).await {
        return refuse(
            &app,
            ev,
            e.to_string(),
            PortalError::Internal(e.to_string()),
        );
    }
    let left_mfa = match d.user_by_id(&user.user_id).await {
        Ok(Some(u)) => u.has_mfa(),
        Ok(None) => false,
        Err(e) => return PortalError::Internal(e.to_string()).into_response(),
    };
    if !left_mfa {
        if let Err(e) =
            recovery::delete(app.store.as_ref(), &recovery::local_person(&user.user_id)).await
        {
            return PortalError::Internal(e.to_string()).into_response();
        }
    }
    ev.outcome(Outcome::Allow);
    ev.reason = Some(if left_mfa {
        format!("{serial} removed")
    } else {
        format!("{serial} removed; no MFA method left, recovery codes deleted")
    });
    app.audit.record(ev);
    Redirect::to(SECURITY_PATH).into_response()
}

/// A new set of recovery codes (needs a fresh MFA); the old set stops working.
async fn recovery_regenerate(State(app): State<Arc<App>>, req: Request) -> Response {
    const ACTION: &str = "portal:RegenerateRecoveryCodes";
    let r = match PortalRequest::read(req).await {
        Ok(r) => r,
        Err(e) => return e.into_response(),
    };
    let (s, user, mut ev, _) = match security_post(&app, &r, ACTION).await {
        Ok(x) => x,
        Err(resp) => return resp,
    };
    if !user.has_mfa() {
        return refuse(
            &app,
            ev,
            format!("user {} has no MFA method", user.name),
            PortalError::BadRequest("no MFA method".into()),
        );
    }
    if !fresh(s.record.identity.mfa_time, now(&app)) {
        return needs_fresh_mfa(&app, ev, "regenerating recovery codes");
    }
    let person = recovery::local_person(&user.user_id);
    let codes = match recovery::generate(app.store.as_ref(), &person, now(&app)).await {
        Ok(c) => c,
        Err(e) => {
            return refuse(
                &app,
                ev,
                e.to_string(),
                PortalError::Internal(e.to_string()),
            )
        }
    };
    ev.outcome(Outcome::Allow);
    ev.reason = Some(format!(
        "{} new recovery codes; the old ones no longer work",
        codes.len()
    ));
    app.audit.record(ev);
    page(CodesPage {
        who: s.record.identity.display(),
        csrf: &s.record.csrf,
        intro: "Your new recovery codes. The old ones no longer work. Keep these somewhere safe: each signs you in once when you do not have your app. They are shown only now.",
        codes,
    })
}
