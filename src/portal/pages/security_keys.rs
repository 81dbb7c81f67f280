//! Security keys (WebAuthn) in the portal: the enrolment page `/portal/security/webauthn` (start
//! and finish a registration, name the key, list and remove keys) and the challenge page
//! `/portal/mfa/webauthn` (start and finish an assertion, then the session records the MFA and
//! moves to a new id). The ceremonies' JSON goes to and from `static/webauthn.js`.
//!
//! Owns: the HTTP shape of the ceremonies (form fields in, JSON out), who may run them (a live
//! session of a directory user, its CSRF token, our Origin; a fresh MFA to add a key when the user
//! already has a second factor, and to remove one), binding a pending ceremony to the session that
//! started it, and the audit reason of every refusal. Must not know: CBOR, signatures, counters
//! (the directory and `idp::local::webauthn` check those).

use super::{event, page, refuse, refuse_internal, with_cookies};
use crate::app::App;
use crate::audit::{AuditEvent, Outcome};
use crate::idp::local::{Directory, DirectoryError, MfaDevice, User};
use crate::portal::extract::{
    form_action, query_param, require_session, require_session_any, BackHere, CheckedPost,
    FormAction, PageRule, PortalRequest, SignedIn,
};
use crate::portal::session::{Session, SESSION_COOKIE};
use crate::portal::{session, settings, PortalError};
use askama::Template;
use axum::body::Body;
use axum::extract::{FromRequest, Request, State};
use axum::http::request::Parts;
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use axum::Router;
use std::marker::PhantomData;
use std::sync::Arc;

/// The enrolment page.
pub const KEYS_PATH: &str = "/portal/security/webauthn";
/// The challenge page.
pub const CHALLENGE_PATH: &str = "/portal/mfa/webauthn";
/// Audit action of adding a key.
pub const REGISTER_ACTION: &str = "portal:RegisterSecurityKey";
/// Audit action of removing a key.
pub const REMOVE_ACTION: &str = "portal:RemoveSecurityKey";
/// Audit action of an MFA challenge answered with a key.
pub const CHALLENGE_ACTION: &str = "portal:SecurityKeyChallenge";
/// How recent an MFA must be to add a key (when the user already has a second factor) or to
/// remove one, in seconds.
pub const FRESH_MFA_SECONDS: i64 = 15 * 60;
/// Longest key name, in characters.
pub const MAX_LABEL_CHARS: usize = 64;

form_action!(
    /// Adding a key (both steps of the registration).
    RegisterSecurityKey = REGISTER_ACTION
);
form_action!(
    /// Removing a key.
    RemoveSecurityKey = REMOVE_ACTION
);
form_action!(
    /// Answering the MFA challenge with a key (both steps): the way a session waiting for MFA
    /// gets on.
    SecurityKeyChallenge = CHALLENGE_ACTION, while_pending
);

/// The routes of this module.
pub fn routes() -> Router<Arc<App>> {
    Router::new()
        .route(KEYS_PATH, get(keys_page))
        .route("/portal/security/webauthn/begin", post(register_begin))
        .route("/portal/security/webauthn/finish", post(register_finish))
        .route("/portal/security/webauthn/remove", post(remove_key))
        .route(CHALLENGE_PATH, get(challenge_page))
        .route("/portal/mfa/webauthn/begin", post(challenge_begin))
        .route("/portal/mfa/webauthn/finish", post(challenge_finish))
        .route("/static/webauthn.js", get(script))
}

/// Whether the person signed in as `identity` can answer an MFA challenge with a security key:
/// security keys are on, the person is a directory user and has at least one key. For pages that
/// offer the way to `/portal/mfa/webauthn`.
pub async fn offers_security_key(
    app: &App,
    identity: &crate::portal::SignedInIdentity,
) -> crate::portal::Result<bool> {
    match local_user(app, identity).await {
        Ok((_, u)) => Ok(!Directory::security_keys_of(&u).is_empty()),
        Err(Refusal::Unavailable(_)) => Ok(false),
        Err(Refusal::Failed(e)) => Err(PortalError::Internal(e)),
    }
}

/// Why the person cannot use security keys here.
enum Refusal {
    /// Security keys are off, or the person is not (or no longer) a directory user.
    Unavailable(String),
    /// The directory failed.
    Failed(String),
}

/// The directory user behind `identity`, for a page: when security keys are not for them, the page
/// says so.
async fn page_user(
    app: &App,
    identity: &crate::portal::SignedInIdentity,
) -> std::result::Result<User, PortalError> {
    match local_user(app, identity).await {
        Ok((_, u)) => Ok(u),
        Err(Refusal::Unavailable(_)) => Err(PortalError::Denied {
            message: unavailable_message(app),
            explanation: None,
        }),
        Err(Refusal::Failed(e)) => Err(PortalError::Internal(e)),
    }
}

/// Why security keys cannot be used, for the person: off on this server (and why, when browsers
/// would not offer them at rolegate's address), or not for their account.
fn unavailable_message(app: &App) -> String {
    security_keys_off(app)
        .unwrap_or_else(|| "Security keys are not available for your account.".into())
}

/// Why security keys are off on this server, in words for the person (the browsers' rule when
/// rolegate's address is one they refuse WebAuthn on); `None` when they are on.
pub fn security_keys_off(app: &App) -> Option<String> {
    if app.directory.as_ref().is_some_and(|d| d.webauthn_enabled()) {
        return None;
    }
    Some(
        match crate::config::webauthn_unusable_on(&app.config.public_url) {
            Some(why) => format!("Security keys are off on this server: {why}"),
            None => "Security keys are turned off on this server.".into(),
        },
    )
}

/// The directory (with security keys on) and the directory user behind `identity`: the user of
/// that name must still be the one who signed in (same user id).
async fn local_user(
    app: &App,
    identity: &crate::portal::SignedInIdentity,
) -> std::result::Result<(Arc<Directory>, User), Refusal> {
    let d = match app.directory.as_ref() {
        Some(d) if d.webauthn_enabled() => d.clone(),
        _ => return Err(Refusal::Unavailable("security keys are off".into())),
    };
    if identity.provider != crate::config::LOCAL_PROVIDER {
        return Err(Refusal::Unavailable(format!(
            "{} is not a directory user: security keys are for rolegate users",
            identity.display()
        )));
    }
    match d.user(&identity.subject).await {
        Ok(u) if identity.origin_user.as_deref() == Some(u.user_id.as_str()) => Ok((d, u)),
        Ok(_) | Err(DirectoryError::NotFound(_)) => Err(Refusal::Unavailable(format!(
            "directory user {} no longer exists",
            identity.subject
        ))),
        Err(e) => Err(Refusal::Failed(e.to_string())),
    }
}

/// Whether the session's MFA is recent enough for changing second factors.
fn fresh_mfa(s: &Session, now: i64) -> bool {
    s.record
        .identity
        .mfa_time
        .is_some_and(|t| t <= now && now - t < FRESH_MFA_SECONDS)
}

/// A JSON answer.
fn json(status: StatusCode, body: serde_json::Value) -> Response {
    (
        status,
        [("referrer-policy", crate::portal::REFERRER_POLICY)],
        axum::Json(body),
    )
        .into_response()
}

/// A JSON refusal: `{"error": code, "message": what the person is told}`.
fn json_error(status: StatusCode, code: &str, message: &str) -> Response {
    json(
        status,
        serde_json::json!({ "error": code, "message": message }),
    )
}

/// Records `ev` as refused with `reason` and answers with a JSON refusal.
fn refuse_json(
    app: &App,
    mut ev: AuditEvent,
    reason: String,
    status: StatusCode,
    code: &str,
    message: &str,
) -> Response {
    ev.outcome(Outcome::Deny);
    ev.reason = Some(reason);
    app.audit.record(ev);
    json_error(status, code, message)
}

/// Records `ev` as refused with `reason`: the browser's answer was not understood.
fn refuse_unreadable(app: &App, ev: AuditEvent, reason: String) -> Response {
    refuse_json(
        app,
        ev,
        reason,
        StatusCode::BAD_REQUEST,
        "bad_request",
        "The browser's answer was not understood. Try again.",
    )
}

/// Records `ev` as refused with `reason` and answers that the session has ended.
fn refuse_ended(app: &App, ev: AuditEvent, reason: String) -> Response {
    refuse_json(
        app,
        ev,
        reason,
        StatusCode::UNAUTHORIZED,
        "session_expired",
        "Your session has ended. Sign in again to continue.",
    )
}

/// A key proved: the session moves to a new id with the MFA time now. Returns the new cookie
/// value; when the session ended meanwhile, `ev` is refused with `what` and the error.
async fn record_mfa(
    app: &App,
    s: &Session,
    ev: &AuditEvent,
    what: &str,
) -> std::result::Result<String, Response> {
    let now = app.clock.now().timestamp();
    session::record_mfa(app.store.as_ref(), s, now)
        .await
        .map_err(|e| refuse_ended(app, ev.clone(), format!("{what}: {e}")))
}

/// What a JSON ceremony request of `A` has been checked to be: the session, the directory, its
/// user, the audit event (its principal filled in) and the request.
struct Ceremony<A> {
    session: Session,
    directory: Arc<Directory>,
    user: User,
    ev: AuditEvent,
    r: PortalRequest,
    action: PhantomData<A>,
}

impl<A: FormAction> FromRequest<Arc<App>> for Ceremony<A> {
    type Rejection = Response;

    async fn from_request(req: Request, app: &Arc<App>) -> std::result::Result<Self, Response> {
        let r = PortalRequest::from_request(req, app)
            .await
            .map_err(IntoResponse::into_response)?;
        let (session, directory, user, ev) = ceremony(app, &r, A::NAME, A::WHILE_PENDING).await?;
        Ok(Self {
            session,
            directory,
            user,
            ev,
            r,
            action: PhantomData,
        })
    }
}

/// For a ceremony request: our Origin, a live session (also one waiting for the MFA challenge
/// when `while_pending`), its CSRF token, a directory user with security keys on. Each refusal is
/// audited with its reason and answered in JSON.
async fn ceremony(
    app: &App,
    r: &PortalRequest,
    action: &str,
    while_pending: bool,
) -> std::result::Result<(Session, Arc<Directory>, User, AuditEvent), Response> {
    let mut ev = event(app, action, &r.ip);
    if let Err(why) = session::origin_ok(&r.headers, &app.config.public_url) {
        return Err(refuse_json(
            app,
            ev,
            why,
            StatusCode::FORBIDDEN,
            "forged",
            "This request was not sent from a rolegate page. Reload the page and try again.",
        ));
    }
    // The challenge is how a session waiting for MFA gets on; every other ceremony needs a session
    // that has passed it.
    let loaded = if while_pending {
        require_session_any(app, &r.headers).await
    } else {
        require_session(app, &r.headers).await
    };
    let s = match loaded {
        Ok(s) => s,
        Err(PortalError::SessionExpired) => {
            return Err(refuse_ended(app, ev, "no live session".into()))
        }
        Err(PortalError::MfaPending) => {
            let mut ev = ev;
            ev.outcome(Outcome::Deny);
            ev.reason = Some("the session has not passed the MFA challenge yet".into());
            app.audit.record(ev);
            let to = format!(
                "{CHALLENGE_PATH}?return_to={}",
                percent_encoding::utf8_percent_encode(
                    KEYS_PATH,
                    percent_encoding::NON_ALPHANUMERIC
                )
            );
            return Err(json(
                StatusCode::FORBIDDEN,
                serde_json::json!({
                    "error": "fresh_mfa_required",
                    "message": "Confirm your sign-in with your second factor first.",
                    "redirect": to,
                }),
            ));
        }
        Err(e) => {
            return Err(refuse_json(
                app,
                ev,
                e.to_string(),
                StatusCode::SERVICE_UNAVAILABLE,
                "unavailable",
                "rolegate cannot complete this request right now. Try again in a moment.",
            ))
        }
    };
    let identity = &s.record.identity;
    ev.principal = Some(identity.display());
    ev.provider = Some(identity.provider.clone());
    ev.subject = Some(identity.subject.clone());
    ev.mfa = Some(identity.mfa_time.is_some());
    match r.field("csrf") {
        Some(t) if crate::credentials::same_token(t, &s.record.csrf) => {}
        _ => {
            return Err(refuse_json(
                app,
                ev,
                "CSRF token missing or wrong".into(),
                StatusCode::FORBIDDEN,
                "forged",
                "This page is too old. Reload it and try again.",
            ))
        }
    }
    match local_user(app, identity).await {
        Ok((directory, user)) => Ok((s, directory, user, ev)),
        Err(Refusal::Unavailable(why)) => Err(refuse_json(
            app,
            ev,
            why,
            StatusCode::NOT_FOUND,
            "unavailable",
            &unavailable_message(app),
        )),
        Err(Refusal::Failed(why)) => Err(refuse_json(
            app,
            ev,
            why,
            StatusCode::SERVICE_UNAVAILABLE,
            "unavailable",
            "rolegate cannot complete this request right now. Try again in a moment.",
        )),
    }
}

/// The status, error code and message for a directory refusal of a ceremony; the audit reason is
/// the directory's (and the WebAuthn library's) own.
fn ceremony_failure(e: &DirectoryError) -> (StatusCode, &'static str, String) {
    let text = e.to_string();
    match e {
        DirectoryError::Locked { until, .. } => (
            StatusCode::TOO_MANY_REQUESTS,
            "locked",
            format!(
                "Too many failed attempts: security keys are locked until {} UTC.",
                chrono::DateTime::from_timestamp(*until, 0)
                    .map(|t| t.format("%H:%M").to_string())
                    .unwrap_or_default()
            ),
        ),
        DirectoryError::Conflict(_) => (
            StatusCode::CONFLICT,
            "already_registered",
            "This security key is already registered. Use another key.".into(),
        ),
        DirectoryError::Denied(_) => {
            let (code, message) = if text.contains("no security key ceremony is pending") {
                (
                    "no_ceremony",
                    "This security key request was already used or replaced. Try again.",
                )
            } else if text.contains("ceremony expired") {
                (
                    "expired",
                    "This security key request has expired. Try again.",
                )
            } else if text.contains("CredentialNotFound") || text.contains("is not registered to") {
                (
                    "unknown_credential",
                    "This security key is not registered to your account. Use a key you added on the security keys page.",
                )
            } else if text.contains("signature counter did not increase")
                || text.contains("CredentialPossibleCompromise")
            {
                (
                    "counter",
                    "This security key answered with a signature counter that did not increase: it may have been copied. It was refused; tell your administrator.",
                )
            } else if text.contains("InvalidRPOrigin") || text.contains("InvalidRPIDHash") {
                (
                    "wrong_origin",
                    "The security key answered for another site. Open this page at its usual address and try again.",
                )
            } else if text.contains("used concurrently") {
                (
                    "concurrent",
                    "The security key was used twice at once. Try again.",
                )
            } else {
                (
                    "rejected",
                    "The security key's answer was not accepted. Try again with a key registered to your account.",
                )
            };
            (StatusCode::FORBIDDEN, code, message.into())
        }
        DirectoryError::NotFound(_) | DirectoryError::Invalid(_) => (
            StatusCode::NOT_FOUND,
            "unavailable",
            "Security keys are not available for your account.".into(),
        ),
        DirectoryError::Store(_) | DirectoryError::Internal(_) | DirectoryError::Busy(_) => (
            StatusCode::SERVICE_UNAVAILABLE,
            "unavailable",
            "rolegate cannot complete this request right now. Try again in a moment.".into(),
        ),
    }
}

/// The `credential` field: the browser's response as JSON.
fn credential_field(r: &PortalRequest) -> std::result::Result<serde_json::Value, String> {
    let raw = r
        .field("credential")
        .ok_or_else(|| "credential missing".to_string())?;
    match serde_json::from_str::<serde_json::Value>(raw) {
        Ok(v @ serde_json::Value::Object(_)) => Ok(v),
        Ok(_) => Err("credential is not a JSON object".into()),
        Err(e) => Err(format!("credential is not JSON: {e}")),
    }
}

/// A key name as given, trimmed: 1 to [`MAX_LABEL_CHARS`] characters, no control characters.
fn valid_label(raw: Option<&str>) -> std::result::Result<String, &'static str> {
    let label = raw.unwrap_or("").trim();
    if label.is_empty() {
        return Err("Give the key a name, for example “blue USB key”.");
    }
    if label.chars().count() > MAX_LABEL_CHARS || label.chars().any(char::is_control) {
        return Err("The name must be at most 64 characters, without line breaks.");
    }
    Ok(label.to_string())
}

/// Where a step-up for changing second factors happens.
fn step_up_path(user: &User) -> String {
    let base = if Directory::security_keys_of(user).is_empty() {
        "/portal/mfa"
    } else {
        CHALLENGE_PATH
    };
    let q: String = form_urlencoded::Serializer::new(String::new())
        .append_pair("return_to", KEYS_PATH)
        .finish();
    format!("{base}?{q}")
}

// ----- the enrolment page -----

/// One registered key on the enrolment page.
struct KeyView {
    id: String,
    label: String,
    added: String,
}

#[derive(Template)]
#[template(path = "portal/security_keys.html")]
struct KeysPage {
    who: String,
    csrf: String,
    keys: Vec<KeyView>,
    notice: Option<&'static str>,
    /// A fresh MFA is needed first (adding when a second factor exists, or removing).
    needs_step_up: bool,
    can_remove: bool,
    step_up: String,
    max_label: usize,
}

fn date(t: i64) -> String {
    chrono::DateTime::from_timestamp(t, 0)
        .map(|t| t.format("%Y-%m-%d %H:%M UTC").to_string())
        .unwrap_or_default()
}

async fn keys_page(
    State(app): State<Arc<App>>,
    SignedIn(s, _): SignedIn<BackHere>,
    r: PortalRequest,
) -> Response {
    let user = match page_user(&app, &s.record.identity).await {
        Ok(u) => u,
        Err(e) => return e.into_response(),
    };
    let now = app.clock.now().timestamp();
    let keys: Vec<KeyView> = user
        .mfa_devices
        .iter()
        .filter_map(|d| match d {
            MfaDevice::SecurityKey { key, .. } => Some(KeyView {
                id: key.credential_id.clone(),
                label: key.label.clone(),
                added: date(key.created_at),
            }),
            MfaDevice::Totp { .. } => None,
        })
        .collect();
    let fresh = fresh_mfa(&s, now);
    let notice = match r.param("done") {
        Some("added") => Some("The security key was added."),
        Some("removed") => Some("The security key was removed."),
        _ => None,
    };
    page(KeysPage {
        who: s.record.identity.display(),
        csrf: s.record.csrf.clone(),
        keys,
        notice,
        needs_step_up: user.has_mfa() && !fresh,
        can_remove: fresh,
        step_up: step_up_path(&user),
        max_label: MAX_LABEL_CHARS,
    })
}

/// Starts registering a key: the options for `navigator.credentials.create()`.
async fn register_begin(State(app): State<Arc<App>>, c: Ceremony<RegisterSecurityKey>) -> Response {
    if let Some(resp) = refuse_stale_add(&app, &c) {
        return resp;
    }
    match c
        .directory
        .start_security_key_registration_in(&c.user.name, &c.session.key)
        .await
    {
        Ok(options) => json(StatusCode::OK, options),
        Err(e) => {
            let (status, code, message) = ceremony_failure(&e);
            refuse_json(&app, c.ev, format!("start: {e}"), status, code, &message)
        }
    }
}

/// A key may be added by a user without a second factor, or with an MFA in the last
/// [`FRESH_MFA_SECONDS`]: otherwise a password alone would add the attacker's key. Checked at the
/// start and again at the finish (a second factor may have been added meanwhile).
fn refuse_stale_add<A>(app: &App, c: &Ceremony<A>) -> Option<Response> {
    let now = app.clock.now().timestamp();
    if !c.user.has_mfa() || fresh_mfa(&c.session, now) {
        return None;
    }
    let path = step_up_path(&c.user);
    let mut ev = c.ev.clone();
    ev.outcome(Outcome::Deny);
    ev.reason = Some(format!(
        "adding a security key to a user with MFA needs an MFA in the last {FRESH_MFA_SECONDS} s"
    ));
    app.audit.record(ev);
    Some(json(
        StatusCode::FORBIDDEN,
        serde_json::json!({
            "error": "fresh_mfa_required",
            "message": "You already have a second factor: confirm with it first, then add the key.",
            "redirect": path,
        }),
    ))
}

/// Finishes registering a key with the browser's attestation and the key's name.
async fn register_finish(
    State(app): State<Arc<App>>,
    c: Ceremony<RegisterSecurityKey>,
) -> Response {
    if let Some(resp) = refuse_stale_add(&app, &c) {
        return resp;
    }
    let label = match valid_label(c.r.field("label")) {
        Ok(l) => l,
        Err(message) => {
            return refuse_json(
                &app,
                c.ev,
                "key name empty, too long or with control characters".into(),
                StatusCode::BAD_REQUEST,
                "bad_label",
                message,
            )
        }
    };
    if Directory::security_keys_of(&c.user)
        .iter()
        .any(|k| k.label.to_lowercase() == label.to_lowercase())
    {
        return refuse_json(
            &app,
            c.ev,
            format!("a security key named {label:?} exists"),
            StatusCode::CONFLICT,
            "duplicate_label",
            "You already have a key of this name. Choose another name.",
        );
    }
    let credential = match credential_field(&c.r) {
        Ok(v) => v,
        Err(why) => return refuse_unreadable(&app, c.ev, why),
    };
    let mut ev = c.ev;
    match c
        .directory
        .finish_security_key_registration_in(&c.user.name, &c.session.key, &credential, &label)
        .await
    {
        Ok(serial) => {
            // The registration proves the key, as a TOTP enrolment's codes prove the device: the
            // session moves to a new id with the MFA time, so the one MFA rule (whoever has an
            // MFA method passes it) holds for the session that added the first one.
            let added = format!("security key {label:?} added, but the session ended");
            let token = match record_mfa(&app, &c.session, &ev, &added).await {
                Ok(t) => t,
                Err(resp) => return resp,
            };
            ev.outcome(Outcome::Allow);
            ev.mfa = Some(true);
            ev.resource = Some(serial);
            ev.reason = Some(format!("security key {label:?} added"));
            app.audit.record(ev);
            let resp = json(
                StatusCode::OK,
                serde_json::json!({ "redirect": format!("{KEYS_PATH}?done=added") }),
            );
            match settings(&app) {
                Some(s) => with_cookies(
                    resp,
                    &[session::set_cookie(SESSION_COOKIE, &token, s.max_seconds)],
                ),
                None => resp,
            }
        }
        Err(e) => {
            let (status, code, message) = ceremony_failure(&e);
            refuse_json(&app, ev, e.to_string(), status, code, &message)
        }
    }
}

/// Removes a key (an HTML form): needs a fresh MFA.
async fn remove_key(
    State(app): State<Arc<App>>,
    CheckedPost(s, r, _): CheckedPost<RemoveSecurityKey>,
) -> Response {
    let mut ev = event(&app, REMOVE_ACTION, &r.ip);
    let identity = &s.record.identity;
    ev.principal = Some(identity.display());
    ev.provider = Some(identity.provider.clone());
    ev.subject = Some(identity.subject.clone());
    ev.mfa = Some(identity.mfa_time.is_some());
    let (d, user) = match local_user(&app, identity).await {
        Ok(x) => x,
        Err(Refusal::Unavailable(why)) => {
            let err = PortalError::Denied {
                message: unavailable_message(&app),
                explanation: None,
            };
            return refuse(&app, ev, why, err);
        }
        Err(Refusal::Failed(why)) => {
            return refuse(&app, ev, why.clone(), PortalError::Internal(why));
        }
    };
    let Some(id) = r.field("credential_id").filter(|s| !s.is_empty()) else {
        return refuse(
            &app,
            ev,
            "credential_id missing".into(),
            PortalError::BadRequest("credential_id is required".into()),
        );
    };
    ev.resource = Some(format!("webauthn:{id}"));
    if !fresh_mfa(&s, app.clock.now().timestamp()) {
        return refuse(
            &app,
            ev,
            format!("removing a security key needs an MFA in the last {FRESH_MFA_SECONDS} s"),
            PortalError::Denied {
                message: "Removing a security key needs a recent MFA. Confirm with a security key or your authenticator code, then remove it.".into(),
                explanation: None,
            },
        );
    }
    let Some(key) = Directory::security_keys_of(&user)
        .into_iter()
        .find(|k| k.credential_id == id)
    else {
        return refuse(
            &app,
            ev,
            format!("user {} has no security key {id}", user.name),
            PortalError::BadRequest("no such security key".into()),
        );
    };
    match d
        .delete_mfa_device(&user.name, &format!("webauthn:{}", key.credential_id))
        .await
    {
        Ok(()) => {
            ev.outcome(Outcome::Allow);
            ev.reason = Some(format!("security key {:?} removed", key.label));
            app.audit.record(ev);
            Redirect::to(&format!("{KEYS_PATH}?done=removed")).into_response()
        }
        Err(DirectoryError::NotFound(why)) => {
            refuse(&app, ev, why, PortalError::BadRequest("no such key".into()))
        }
        Err(e) => refuse_internal(&app, ev, e),
    }
}

// ----- the challenge page -----

#[derive(Template)]
#[template(path = "portal/mfa_webauthn.html")]
struct ChallengePage {
    who: String,
    csrf: String,
    return_to: String,
    has_keys: bool,
}

/// The challenge page: also (above all) for a session waiting for MFA; a browser without a
/// session signs in and comes back to the challenge, with where it leads.
struct ChallengePageRule;

impl PageRule for ChallengePageRule {
    const WHILE_PENDING: bool = true;

    fn sign_in_return(parts: &Parts) -> Option<String> {
        let return_to = session::safe_return_to(query_param(parts, "return_to").as_deref());
        let q: String = form_urlencoded::Serializer::new(String::new())
            .append_pair("return_to", &return_to)
            .finish();
        Some(format!("{CHALLENGE_PATH}?{q}"))
    }
}

async fn challenge_page(
    State(app): State<Arc<App>>,
    SignedIn(s, _): SignedIn<ChallengePageRule>,
    r: PortalRequest,
) -> Response {
    let return_to = session::safe_return_to(r.param("return_to"));
    let has_keys = match page_user(&app, &s.record.identity).await {
        Ok(u) => !Directory::security_keys_of(&u).is_empty(),
        Err(e) => return e.into_response(),
    };
    page(ChallengePage {
        who: s.record.identity.display(),
        csrf: s.record.csrf.clone(),
        return_to,
        has_keys,
    })
}

/// Starts an MFA challenge: the options for `navigator.credentials.get()`.
async fn challenge_begin(
    State(app): State<Arc<App>>,
    c: Ceremony<SecurityKeyChallenge>,
) -> Response {
    if Directory::security_keys_of(&c.user).is_empty() {
        return refuse_json(
            &app,
            c.ev,
            format!("user {} has no security key", c.user.name),
            StatusCode::CONFLICT,
            "no_keys",
            "No security key is registered to your account.",
        );
    }
    match c
        .directory
        .start_security_key_authentication_in(&c.user, &c.session.key)
        .await
    {
        Ok(options) => json(StatusCode::OK, options),
        Err(e) => {
            let (status, code, message) = ceremony_failure(&e);
            refuse_json(&app, c.ev, format!("start: {e}"), status, code, &message)
        }
    }
}

/// Finishes an MFA challenge: on success the session records the MFA under a new id (new cookie)
/// and the browser goes on to `return_to` (JSON `{"redirect"}` for scripts, else a 303).
async fn challenge_finish(
    State(app): State<Arc<App>>,
    c: Ceremony<SecurityKeyChallenge>,
) -> Response {
    let r = c.r;
    let credential = match credential_field(&r) {
        Ok(v) => v,
        Err(why) => return refuse_unreadable(&app, c.ev, why),
    };
    let mut ev = c.ev;
    if let Err(e) = c
        .directory
        .finish_security_key_authentication_in(&c.user.name, &c.session.key, &credential)
        .await
    {
        let (status, code, message) = ceremony_failure(&e);
        return refuse_json(&app, ev, e.to_string(), status, code, &message);
    }
    let Some(s) = settings(&app) else {
        return StatusCode::NOT_FOUND.into_response();
    };
    let accepted = "security key accepted, but the session could not record it";
    let token = match record_mfa(&app, &c.session, &ev, accepted).await {
        Ok(t) => t,
        Err(resp) => return resp,
    };
    ev.outcome(Outcome::Allow);
    ev.mfa = Some(true);
    ev.resource = credential
        .get("id")
        .and_then(|v| v.as_str())
        .map(|id| format!("webauthn:{id}"));
    ev.reason = Some("MFA with a security key".into());
    app.audit.record(ev);
    let return_to = session::safe_return_to(r.field("return_to"));
    let wants_json = r
        .headers
        .get(header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.contains("application/json"));
    let resp = if wants_json {
        json(StatusCode::OK, serde_json::json!({ "redirect": return_to }))
    } else {
        Redirect::to(&return_to).into_response()
    };
    with_cookies(
        resp,
        &[session::set_cookie(SESSION_COOKIE, &token, s.max_seconds)],
    )
}

async fn script() -> Response {
    (
        [(header::CONTENT_TYPE, "text/javascript; charset=utf-8")],
        Body::from(include_str!("../../../static/webauthn.js")),
    )
        .into_response()
}
