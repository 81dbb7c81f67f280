//! Portal sign-in through an OpenID Connect provider: `GET /login/oidc/{provider}` starts it and
//! `GET /login/oidc/{provider}/callback` completes it in a portal session.
//!
//! The pending login is kept server-side in the store's directory (kind `portal_oidc_login`),
//! keyed by the SHA-256 of `state`, so that every replica can complete it and it is answered at
//! most once (marked used with a version-checked write). It is bound to the browser that started
//! it: the record holds the SHA-256 of a random value the browser keeps in a `__Host-` cookie, and
//! a callback carrying the `state` without that cookie is refused. The protocol itself (discovery,
//! PKCE, code exchange, ID token) is `idp::oidc`'s.

use super::extract::PortalRequest;
use super::pages::sign_in_verified_to;
use super::session::{self, clear_cookie, set_cookie};
use super::PortalError;
use super::{settings, SignedInIdentity, REFERRER_POLICY, SIGN_IN_ACTION};
use crate::app::App;
use crate::audit::{AuditEvent, Outcome};
use crate::idp::oidc::{Expected, OidcError};
use crate::store::DirWrite;
use askama::Template;
use axum::extract::{Path, State};
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{Html, IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use serde::{Deserialize, Serialize};
use std::sync::Arc;

/// Directory kind of pending OIDC sign-ins.
pub const PENDING_KIND: &str = "portal_oidc_login";
/// Cookie binding a pending sign-in to the browser that started it.
pub const BINDING_COOKIE: &str = "__Host-rolegate-oidc";
/// How long a browser has between the start and the callback (seconds).
pub const LOGIN_TIMEOUT_SECONDS: i64 = 600;
/// Audit action of the start of a sign-in.
pub const START_ACTION: &str = "portal:OidcStart";
/// Longest step-up `max_age` accepted (seconds), the longest `mfa_max_age_minutes`.
const MAX_STEP_UP_SECONDS: u32 = 720 * 60;

/// The OIDC sign-in routes.
pub fn routes() -> Router<Arc<App>> {
    Router::new()
        .route("/login/oidc/{provider}", get(start))
        .route("/login/oidc/{provider}/callback", get(callback))
}

/// A pending sign-in as stored (no `Debug`: it holds the nonce and the PKCE verifier).
#[derive(Clone, Serialize, Deserialize)]
struct PendingLogin {
    provider: String,
    nonce: String,
    pkce_verifier: String,
    /// SHA-256 (hex) of the binding cookie's value.
    binding: String,
    return_to: String,
    max_age: Option<u32>,
    expires_at: i64,
    used: bool,
}

/// The redirect URI of provider `name`: `{public_url}/login/oidc/{name}/callback`.
pub fn redirect_uri(app: &App, name: &str) -> String {
    format!(
        "{}/login/oidc/{name}/callback",
        app.config.public_url.as_str().trim_end_matches('/')
    )
}

/// The link that starts a step-up sign-in at provider `name` asking for authentication no older
/// than `max_age` seconds.
pub fn step_up_link(name: &str, max_age: u32, return_to: &str) -> String {
    let q: String = form_urlencoded::Serializer::new(String::new())
        .append_pair("step_up", &max_age.to_string())
        .append_pair("return_to", return_to)
        .finish();
    format!("/login/oidc/{name}?{q}")
}

/// Why an OIDC sign-in stopped, as the browser sees it (the audit log has the detail).
#[derive(Debug)]
enum Failure {
    UnknownProvider,
    BadRequest,
    /// No pending login, not this browser's, used, or another provider's.
    Refused,
    Expired,
    /// The provider's answer (code exchange, ID token, userinfo) did not verify.
    Unverified,
    /// The provider answered with an `error`.
    ProviderError(String),
    Unreachable,
    Unavailable,
    /// Too many sign-ins from this address.
    RateLimited,
}

impl IntoResponse for Failure {
    fn into_response(self) -> Response {
        let provider_message;
        let (status, title, message, next, next_label) = match &self {
            Failure::UnknownProvider => (
                StatusCode::NOT_FOUND,
                "Unknown identity provider",
                "There is no identity provider of that name.",
                "/login",
                "Back to sign-in",
            ),
            Failure::BadRequest => (
                StatusCode::BAD_REQUEST,
                "Bad request",
                "The identity provider's answer is incomplete.",
                "/login",
                "Sign in again",
            ),
            Failure::Refused => (
                StatusCode::FORBIDDEN,
                "Sign-in refused",
                "This sign-in was not started in this browser, or it was already completed. Start again from the sign-in page.",
                "/login",
                "Sign in again",
            ),
            Failure::Unverified => (
                StatusCode::FORBIDDEN,
                "Sign-in refused",
                "The identity provider's answer could not be verified, so you are not signed in. Start again from the sign-in page; if this persists, tell your administrator.",
                "/login",
                "Sign in again",
            ),
            Failure::Expired => (
                StatusCode::UNAUTHORIZED,
                "Sign-in expired",
                "The sign-in took too long and has expired. Start again from the sign-in page.",
                "/login",
                "Sign in again",
            ),
            Failure::ProviderError(code) => {
                provider_message = if code == "access_denied" {
                    "The identity provider denied access: you did not sign in there, or you may not use rolegate.".to_string()
                } else {
                    format!("The identity provider did not sign you in (it answered \"{code}\").")
                };
                (
                    StatusCode::UNAUTHORIZED,
                    "Access denied",
                    provider_message.as_str(),
                    "/login",
                    "Back to sign-in",
                )
            }
            Failure::Unreachable => (
                StatusCode::SERVICE_UNAVAILABLE,
                "Identity provider unreachable",
                "rolegate cannot reach the identity provider right now. Try again in a moment, or choose another way to sign in.",
                "/login",
                "Back to sign-in",
            ),
            Failure::RateLimited => (
                StatusCode::TOO_MANY_REQUESTS,
                "Too many sign-ins",
                "There were too many sign-in attempts from your address. Wait a minute and try again.",
                "/login",
                "Back to sign-in",
            ),
            Failure::Unavailable => (
                StatusCode::SERVICE_UNAVAILABLE,
                "Temporarily unavailable",
                "rolegate cannot complete this sign-in right now. Try again in a moment.",
                "/login",
                "Back to sign-in",
            ),
        };
        let mut resp = super::error_page(status, title, message, next, next_label);
        resp.headers_mut()
            .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
        resp
    }
}

fn event(app: &App, action: &str, ip: &str, provider: &str) -> AuditEvent {
    let mut ev = AuditEvent::new(app.clock.now(), &crate::request::request_id(), action);
    ev.source_ip = Some(ip.to_string());
    ev.provider = Some(provider.chars().take(128).collect());
    ev
}

/// Records `ev` with `outcome` and `reason` and answers `failure`.
fn stop(app: &App, mut ev: AuditEvent, outcome: Outcome, reason: String, f: Failure) -> Response {
    ev.outcome(outcome);
    ev.reason = Some(reason);
    app.audit.record(ev);
    f.into_response()
}

/// [`stop`] for a sign-in refused ([`Failure::Refused`]), audited as denied.
fn refused(app: &App, ev: AuditEvent, reason: String) -> Response {
    stop(app, ev, Outcome::Deny, reason, Failure::Refused)
}

/// [`stop`] for a sign-in rolegate could not complete ([`Failure::Unavailable`]), audited as an
/// error.
fn unavailable(app: &App, ev: AuditEvent, reason: String) -> Response {
    stop(app, ev, Outcome::Error, reason, Failure::Unavailable)
}

/// The client address of a request, empty when it could not be read.
fn ip_of(r: &std::result::Result<PortalRequest, PortalError>) -> &str {
    r.as_ref().map_or("", |r| r.ip.as_str())
}

/// `resp` with the binding cookie removed: for answers after the pending login was consumed (a
/// refusal before that leaves the browser's own pending login alone: a forged callback must not
/// end it).
fn consumed(mut resp: Response) -> Response {
    if let Ok(v) = HeaderValue::from_str(&clear_cookie(BINDING_COOKIE)) {
        resp.headers_mut().append(header::SET_COOKIE, v);
    }
    resp
}

fn failure_of(e: &OidcError) -> (Outcome, Failure) {
    match e {
        OidcError::UnknownProvider(_) => (Outcome::Deny, Failure::UnknownProvider),
        OidcError::Unreachable(_) => (Outcome::Error, Failure::Unreachable),
        OidcError::Refused(_) => (Outcome::Deny, Failure::Unverified),
    }
}

async fn start(
    State(app): State<Arc<App>>,
    Path(provider): Path<String>,
    r: std::result::Result<PortalRequest, PortalError>,
) -> Response {
    let ev = event(&app, START_ACTION, ip_of(&r), &provider);
    let r = match r {
        Ok(r) => r,
        Err(e) => return stop(&app, ev, Outcome::Deny, e.to_string(), Failure::BadRequest),
    };
    // Each start stores a pending login: bounded per address like every other sign-in.
    if let Ok(ip) = r.ip.parse::<std::net::IpAddr>() {
        if let Err(limited) = app.limits.login(ip, None) {
            return stop(
                &app,
                ev,
                Outcome::Deny,
                limited.to_string(),
                Failure::RateLimited,
            );
        }
    }
    if settings(&app).is_none() || !app.oidc.has(&provider) {
        let why = format!(
            "no oidc provider '{}' with browser sign-in",
            ev.provider.clone().unwrap_or_default()
        );
        return stop(&app, ev, Outcome::Deny, why, Failure::UnknownProvider);
    }
    let return_to = session::safe_return_to(r.query.get("return_to").map(String::as_str));
    let max_age = match r.query.get("step_up").map(|s| s.parse::<u32>()) {
        None => None,
        Some(Ok(s)) if (1..=MAX_STEP_UP_SECONDS).contains(&s) => Some(s),
        Some(_) => {
            return stop(
                &app,
                ev,
                Outcome::Deny,
                format!("step_up must be 1-{MAX_STEP_UP_SECONDS} seconds"),
                Failure::BadRequest,
            )
        }
    };
    let redirect = redirect_uri(&app, &provider);
    let auth = match app.oidc.authorize(&provider, &redirect, max_age).await {
        Ok(a) => a,
        Err(e) => {
            let (outcome, f) = failure_of(&e);
            return stop(&app, ev, outcome, e.to_string(), f);
        }
    };
    let binding = match session::random_token() {
        Ok(b) => b,
        Err(e) => return e.into_response(),
    };
    let now = app.clock.now().timestamp();
    let pending = PendingLogin {
        provider: provider.clone(),
        nonce: auth.nonce,
        pkce_verifier: auth.pkce_verifier,
        binding: session::key_of(&binding),
        return_to,
        max_age,
        expires_at: now + LOGIN_TIMEOUT_SECONDS,
        used: false,
    };
    let doc = match serde_json::to_string(&pending) {
        Ok(d) => d,
        Err(e) => {
            return unavailable(&app, ev, e.to_string());
        }
    };
    match app
        .store
        .dir_write(&[DirWrite::insert(
            PENDING_KIND,
            &session::key_of(&auth.state),
            doc,
        )])
        .await
    {
        Ok(true) => {}
        Ok(false) => return unavailable(&app, ev, "state collision".into()),
        Err(e) => return unavailable(&app, ev, format!("store: {e}")),
    }
    let mut ev = ev;
    ev.outcome(Outcome::Allow);
    ev.reason = Some(match max_age {
        Some(s) => format!("step-up sign-in started (max_age {s} s)"),
        None => "sign-in started".into(),
    });
    app.audit.record(ev);
    let mut resp = StatusCode::SEE_OTHER.into_response();
    let h = resp.headers_mut();
    match HeaderValue::from_str(&auth.url) {
        Ok(v) => {
            h.insert(header::LOCATION, v);
        }
        Err(_) => return Failure::Unavailable.into_response(),
    }
    if let Ok(v) =
        HeaderValue::from_str(&set_cookie(BINDING_COOKIE, &binding, LOGIN_TIMEOUT_SECONDS))
    {
        h.append(header::SET_COOKIE, v);
    }
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    resp
}

async fn callback(
    State(app): State<Arc<App>>,
    Path(provider): Path<String>,
    r: std::result::Result<PortalRequest, PortalError>,
) -> Response {
    let ev = event(&app, SIGN_IN_ACTION, ip_of(&r), &provider);
    let r = match r {
        Ok(r) => r,
        Err(e) => return stop(&app, ev, Outcome::Deny, e.to_string(), Failure::BadRequest),
    };
    if settings(&app).is_none() || !app.oidc.has(&provider) {
        let why = format!(
            "callback for unknown oidc provider '{}'",
            ev.provider.clone().unwrap_or_default()
        );
        return stop(&app, ev, Outcome::Deny, why, Failure::UnknownProvider);
    }
    let q = |k: &str| r.query.get(k).map(String::as_str);
    let Some(state) = q("state").filter(|s| !s.is_empty() && s.len() <= 512) else {
        return refused(&app, ev, "callback without state".into());
    };
    let now = app.clock.now().timestamp();
    let key = session::key_of(state);
    let record = match app.store.dir_get(PENDING_KIND, &key).await {
        Ok(r) => r,
        Err(e) => return unavailable(&app, ev, format!("store: {e}")),
    };
    let Some(record) = record else {
        return refused(&app, ev, "no pending login for this state".into());
    };
    let Ok(mut pending) = serde_json::from_str::<PendingLogin>(&record.value) else {
        return unavailable(&app, ev, "pending login record does not parse".into());
    };
    if pending.provider != provider {
        return refused(
            &app,
            ev,
            format!(
                "state belongs to a pending login at provider '{}'",
                pending.provider
            ),
        );
    }
    let bound = session::cookie(&r.headers, BINDING_COOKIE)
        .is_some_and(|c| crate::credentials::same_token(&session::key_of(&c), &pending.binding));
    if !bound {
        return refused(
            &app,
            ev,
            "state is not bound to this browser (pending-login cookie missing or different)".into(),
        );
    }
    if pending.used {
        return refused(&app, ev, "state was already used".into());
    }
    if pending.expires_at <= now {
        return stop(
            &app,
            ev,
            Outcome::Deny,
            format!("pending login expired at {}", pending.expires_at),
            Failure::Expired,
        );
    }
    // Single use, on every replica: the version-checked write succeeds for one callback only.
    pending.used = true;
    let used = serde_json::to_string(&pending).unwrap_or_default();
    match app
        .store
        .dir_write(&[DirWrite::update(PENDING_KIND, &key, record.version, used)])
        .await
    {
        Ok(true) => {}
        Ok(false) => return refused(&app, ev, "state was already used".into()),
        Err(e) => return unavailable(&app, ev, format!("store: {e}")),
    }
    let issuer = app.oidc.issuer(&provider).unwrap_or_default();
    match q("iss") {
        Some(iss) if iss != issuer => {
            return consumed(refused(
                &app,
                ev,
                format!(
                "authorization response iss '{}' is not the provider's issuer {issuer} (RFC 9207)",
                iss.chars().take(256).collect::<String>()
            ),
            ))
        }
        None if app.oidc.sends_iss(&provider).await => {
            return consumed(refused(
                &app,
                ev,
                "authorization response has no iss although the provider announces it (RFC 9207)"
                    .into(),
            ))
        }
        _ => {}
    }
    if let Some(code) = q("error") {
        let code: String = code
            .chars()
            .take(64)
            .filter(|c| c.is_ascii_graphic())
            .collect();
        let desc: String = q("error_description")
            .unwrap_or("")
            .chars()
            .take(256)
            .collect();
        return consumed(stop(
            &app,
            ev,
            Outcome::Deny,
            format!("identity provider answered error {code}: {desc}"),
            Failure::ProviderError(code),
        ));
    }
    let Some(code) = q("code").filter(|c| !c.is_empty() && c.len() <= 2048) else {
        return consumed(stop(
            &app,
            ev,
            Outcome::Deny,
            "callback without code".into(),
            Failure::BadRequest,
        ));
    };
    let redirect = redirect_uri(&app, &provider);
    let expected = Expected {
        nonce: &pending.nonce,
        pkce_verifier: &pending.pkce_verifier,
        max_age: pending.max_age,
        redirect_uri: &redirect,
    };
    let identity = match app
        .oidc
        .finish(&provider, code, &expected, &app.verifier, now)
        .await
    {
        Ok(i) => i,
        Err(e) => {
            let (outcome, f) = failure_of(&e);
            return consumed(stop(&app, ev, outcome, e.to_string(), f));
        }
    };
    let mut ev = ev;
    if pending.max_age.is_some() {
        ev.reason = Some(match identity.mfa_time {
            Some(_) => "step-up sign-in with MFA at the provider".into(),
            None => "step-up sign-in without MFA the provider's trusted amr/acr shows".into(),
        });
    }
    let signed_in = SignedInIdentity {
        provider: identity.provider,
        subject: identity.subject,
        claims: identity.claims,
        mfa_time: identity.mfa_time,
        local_groups: Vec::new(),
        origin_user: None,
        signed_in_at: app.clock.now().timestamp(),
    };
    let mut resp = sign_in_verified_to(&app, signed_in, &r, ev, &pending.return_to).await;
    if let Ok(v) = HeaderValue::from_str(&clear_cookie(BINDING_COOKIE)) {
        resp.headers_mut().append(header::SET_COOKIE, v);
    }
    resp
}

/// Deletes pending sign-ins that expired (used or not); for the background clean-up.
pub async fn purge_expired(app: &App) -> crate::store::Result<usize> {
    let now = app.clock.now().timestamp();
    let expired =
        |v: &str| serde_json::from_str::<PendingLogin>(v).map_or(true, |p| p.expires_at <= now);
    crate::store::purge_dir_records(app.store.as_ref(), PENDING_KIND, expired).await
}

#[derive(Template)]
#[template(path = "portal/step_up.html")]
struct StepUpPage<'a> {
    message: &'a str,
    provider: &'a str,
    link: &'a str,
}

/// When permission set `set` was refused to `identity` for lack of (fresh) MFA and the person
/// signed in through an OIDC or SAML provider: the page offering "Sign in again with MFA" (a
/// step-up sign-in: OIDC with `prompt=login`, `max_age` and the configured `acr_values`; SAML with
/// `ForceAuthn` and the provider's MFA `RequestedAuthnContext`). `None` when the refusal has
/// another cause or the session is neither's.
pub fn step_up_offer(
    app: &App,
    identity: &SignedInIdentity,
    set: &str,
    message: &str,
) -> Option<Response> {
    use crate::config::MfaRequirement;
    let oidc = app.oidc.has(&identity.provider);
    let saml = !oidc && app.saml.provider(&identity.provider).is_some();
    if !oidc && !saml {
        return None;
    }
    let requirement = app
        .config
        .permission_sets
        .iter()
        .find(|p| p.name == set)?
        .mfa;
    if super::mfa::satisfies(requirement, identity.mfa_time, app.clock.now().timestamp()) {
        return None;
    }
    // The step-up sign-in must be at most this old when it comes back.
    let max_age = match requirement {
        MfaRequirement::Within(s) => s,
        _ => LOGIN_TIMEOUT_SECONDS as u32,
    };
    let display = app
        .oidc
        .list()
        .into_iter()
        .find(|(n, _)| *n == identity.provider)
        .map(|(_, d)| d)
        .unwrap_or_else(|| identity.provider.clone());
    // A SAML provider is asked with `ForceAuthn` and its MFA classes; the Assertion's
    // `AuthnInstant` then tells how recent the MFA is, so an IdP that reuses an old sign-in does not
    // pass a `Within` requirement.
    let link = if saml {
        format!("/saml/{}/login?step_up=1", identity.provider)
    } else {
        step_up_link(&identity.provider, max_age, "/portal")
    };
    let page = StepUpPage {
        message,
        provider: &display,
        link: &link,
    };
    let html = page.render().ok()?;
    Some(
        (
            StatusCode::FORBIDDEN,
            [("referrer-policy", REFERRER_POLICY)],
            Html(html),
        )
            .into_response(),
    )
}

#[cfg(test)]
#[path = "oidc_tests.rs"]
mod tests;
