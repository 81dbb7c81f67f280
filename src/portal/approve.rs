//! The approval pages of command line sign-in (with `[sso]`): `/device`, where a person enters
//! the user code a CLI showed and approves or denies it, and `/authorize`, where the AWS CLI's
//! PKCE flow (authorization code, loopback redirect) asks for the same approval. Both need a
//! portal session that has passed the MFA challenge; without one the browser signs in (and does
//! the challenge) and comes back.
//!
//! The approved identity is the session's [`super::SignedInIdentity`]; the tokens the client
//! then collects carry it.
//!
//! Owns: the pages and their rules (CSRF + Origin on every form, user code entries rate-limited
//! per address and per session, redirects only to a client's registered loopback URI). Must not
//! know: how codes are stored (see [`crate::sso::device`], [`crate::sso::code`]).

use super::extract::{
    form_action, query_param, require_session, CheckedPost, PageRule, PortalRequest, SignedIn,
};
use super::pages::{event, page, refuse, to_login};
use super::{error_page, mfa, PortalError};
use crate::app::App;
use crate::audit::{AuditEvent, Outcome};
use crate::sso::client::{self, ClientRecord, CODE_GRANT};
use crate::sso::{code, device};
use askama::Template;
use axum::extract::State;
use axum::http::request::Parts;
use axum::http::{header, HeaderValue, StatusCode, Uri};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use axum::Router;
use std::collections::HashMap;
use std::sync::Arc;

/// Audit action of the device page (code entries refused, approvals, denials).
pub const DEVICE_ACTION: &str = "portal:ApproveDevice";
/// Audit action of the authorization page.
pub const AUTHORIZE_ACTION: &str = "portal:ApproveAuthorization";
/// Longest `state` passed through to the client.
const MAX_STATE: usize = 512;

form_action!(
    /// A user code entered, or a device approved or denied.
    ApproveDevice = DEVICE_ACTION
);
form_action!(
    /// An authorization request approved or denied.
    ApproveAuthorization = AUTHORIZE_ACTION
);

/// The routes of this module.
pub(super) fn routes() -> Router<Arc<App>> {
    Router::new()
        .route(
            crate::sso::oidc::DEVICE_PATH,
            get(device_page).post(device_lookup),
        )
        .route("/device/decide", post(device_decide))
        .route(
            crate::sso::oidc::AUTHORIZE_PATH,
            get(authorize_page).post(authorize_decide),
        )
}

fn session_hours(app: &App) -> i64 {
    app.config
        .sso
        .as_ref()
        .map_or(0, |s| s.session_seconds / 3600)
}

/// A GET page's session; without one (or with one waiting for MFA) the browser is sent to sign
/// in (or to the challenge), coming back to `return_to`.
async fn page_session(
    app: &App,
    r: &PortalRequest,
    return_to: &str,
) -> Result<super::session::Session, Response> {
    require_session(app, &r.headers)
        .await
        .map_err(|e| page_refusal(e, return_to))
}

fn page_refusal(e: PortalError, return_to: &str) -> Response {
    match e {
        PortalError::SessionExpired => to_login(return_to),
        PortalError::MfaPending => Redirect::to(&mfa::challenge_url(return_to)).into_response(),
        e => e.into_response(),
    }
}

/// The device page: without a session (or with one waiting for MFA) the browser signs in (or
/// does the challenge) and comes back with the code it brought.
struct DevicePageRule;

impl PageRule for DevicePageRule {
    fn refusal(parts: &Parts, e: PortalError) -> Response {
        let typed = query_param(parts, "user_code").and_then(|c| device::normalize_user_code(&c));
        page_refusal(e, &device_return_to(typed.as_deref()))
    }
}

/// Where the device page comes back to after sign-in: with the code the browser brought.
fn device_return_to(typed: Option<&str>) -> String {
    match typed {
        Some(c) => format!(
            "{}?user_code={}",
            crate::sso::oidc::DEVICE_PATH,
            device::display_user_code(c)
        ),
        None => crate::sso::oidc::DEVICE_PATH.to_string(),
    }
}

fn person_event(
    app: &App,
    action: &str,
    r: &PortalRequest,
    s: &super::session::Session,
) -> AuditEvent {
    let mut ev = event(app, action, &r.ip);
    let id = &s.record.identity;
    ev.provider = Some(id.provider.clone());
    ev.subject = Some(id.subject.clone());
    ev.principal = Some(id.display());
    ev.mfa = Some(id.mfa_time.is_some());
    ev
}

// ----- /device -----

#[derive(Template)]
#[template(path = "portal/device.html")]
struct DevicePage<'a> {
    who: String,
    csrf: &'a str,
    user_code: String,
    message: Option<&'a str>,
}

#[derive(Template)]
#[template(path = "portal/device_confirm.html")]
struct ConfirmPage<'a> {
    who: String,
    csrf: &'a str,
    client_name: &'a str,
    user_code: String,
    session_hours: i64,
}

#[derive(Template)]
#[template(path = "portal/approved.html")]
struct DonePage<'a> {
    who: String,
    csrf: &'a str,
    title: &'a str,
    message: String,
}

/// Approve (`true`) or Deny (`false`) on an approval form; the refusal says why neither.
fn decision(r: &PortalRequest) -> Result<bool, String> {
    match r.field("decision") {
        Some("approve") => Ok(true),
        Some("deny") => Ok(false),
        other => Err(format!("decision {other:?} is neither approve nor deny")),
    }
}

fn with_status(status: StatusCode, mut resp: Response) -> Response {
    if resp.status() == StatusCode::OK {
        *resp.status_mut() = status;
    }
    resp
}

/// The code form, prefilled from `user_code` when that is a well-formed code.
async fn device_page(SignedIn(s, _): SignedIn<DevicePageRule>, r: PortalRequest) -> Response {
    let typed = r.param("user_code").and_then(device::normalize_user_code);
    page(DevicePage {
        who: s.record.identity.display(),
        csrf: &s.record.csrf,
        user_code: typed
            .map(|c| device::display_user_code(&c))
            .unwrap_or_default(),
        message: None,
    })
}

/// The form again with a message, audited as a refusal with `reason`.
fn code_refused(
    app: &App,
    mut ev: AuditEvent,
    s: &super::session::Session,
    status: StatusCode,
    message: &str,
    reason: String,
) -> Response {
    ev.outcome(Outcome::Deny);
    ev.reason = Some(reason);
    app.audit.record(ev);
    with_status(
        status,
        page(DevicePage {
            who: s.record.identity.display(),
            csrf: &s.record.csrf,
            user_code: String::new(),
            message: Some(message),
        }),
    )
}

/// A user code entry: counted against the limits, then looked up. Returns the pending device
/// code, or the answer for the person (already audited).
async fn entered_code(
    app: &App,
    r: &PortalRequest,
    s: &super::session::Session,
    ev: &AuditEvent,
) -> Result<device::Pending, Response> {
    if let Ok(ip) = r.ip.parse::<std::net::IpAddr>() {
        if let Err(limited) = app.limits.user_code(ip, &s.key) {
            app.metrics.rate_limited(limited.limit);
            return Err(code_refused(
                app,
                ev.clone(),
                s,
                StatusCode::TOO_MANY_REQUESTS,
                "Too many codes were entered. Wait a minute and try again.",
                limited.to_string(),
            ));
        }
    }
    let typed = r.field("user_code").unwrap_or("");
    let Some(user_code) = device::normalize_user_code(typed) else {
        return Err(code_refused(
            app,
            ev.clone(),
            s,
            StatusCode::BAD_REQUEST,
            "That is not a code from a device: it has eight letters, like BCDF-GHJK.",
            "malformed user code".into(),
        ));
    };
    let shown = device::display_user_code(&user_code);
    match device::find_pending(app, &user_code).await {
        Ok(Ok(p)) => Ok(p),
        Ok(Err(problem)) => {
            let message = match problem {
                device::CodeProblem::Unknown => {
                    "That code is not known. Check it against the one your device shows."
                }
                device::CodeProblem::Expired(_) => {
                    "That code has expired. Start the sign-in on your device again for a new code."
                }
                device::CodeProblem::Decided(_) | device::CodeProblem::NoClient => {
                    "That code has been used already. Start the sign-in on your device again for a new code."
                }
            };
            Err(code_refused(
                app,
                ev.clone(),
                s,
                StatusCode::BAD_REQUEST,
                message,
                format!("user code {shown}: {problem}"),
            ))
        }
        Err(e) => Err(PortalError::Internal(e.reason).into_response()),
    }
}

/// The code entered: the page naming the client, with Approve and Deny.
async fn device_lookup(
    State(app): State<Arc<App>>,
    CheckedPost(s, r, _): CheckedPost<ApproveDevice>,
) -> Response {
    let ev = person_event(&app, DEVICE_ACTION, &r, &s);
    let p = match entered_code(&app, &r, &s, &ev).await {
        Ok(p) => p,
        Err(resp) => return resp,
    };
    page(ConfirmPage {
        who: s.record.identity.display(),
        csrf: &s.record.csrf,
        client_name: &p.client_name,
        user_code: device::display_user_code(&p.record.user_code),
        session_hours: session_hours(&app),
    })
}

/// Approve or Deny on the confirmation page.
async fn device_decide(
    State(app): State<Arc<App>>,
    CheckedPost(s, r, _): CheckedPost<ApproveDevice>,
) -> Response {
    let mut ev = person_event(&app, DEVICE_ACTION, &r, &s);
    let approve = match decision(&r) {
        Ok(a) => a,
        Err(why) => return refuse(&app, ev, why.clone(), PortalError::BadRequest(why)),
    };
    let who = s.record.identity.display();
    // A poll of the client may change the record between the lookup and the decision: look up
    // again then (a decision made elsewhere shows as a used code).
    for _ in 0..3 {
        let p = match entered_code(&app, &r, &s, &ev).await {
            Ok(p) => p,
            Err(resp) => return resp,
        };
        let identity = approve.then(|| s.record.identity.clone());
        match device::decide(&app, &p, identity, &who).await {
            Ok(true) => {
                let shown = device::display_user_code(&p.record.user_code);
                ev.resource = Some(p.record.client_id.clone());
                let (title, message) = if approve {
                    ev.outcome(Outcome::Allow);
                    ev.reason = Some(format!(
                        "approved user code {shown} for client {:?}",
                        p.client_name
                    ));
                    (
                        "Device approved",
                        format!(
                            "{} is signed in as you. You can close this window and return to it.",
                            p.client_name
                        ),
                    )
                } else {
                    ev.outcome(Outcome::Deny);
                    ev.reason = Some(format!(
                        "{who} denied user code {shown} for client {:?}",
                        p.client_name
                    ));
                    (
                        "Sign-in denied",
                        format!(
                            "{} was not signed in. If you did not start this sign-in, tell your administrator.",
                            p.client_name
                        ),
                    )
                };
                app.audit.record(ev);
                return page(DonePage {
                    who,
                    csrf: &s.record.csrf,
                    title,
                    message,
                });
            }
            Ok(false) => continue,
            Err(e) => return PortalError::Internal(e.reason).into_response(),
        }
    }
    PortalError::Internal("device code kept changing while being decided".into()).into_response()
}

// ----- /authorize -----

/// An authorization request (from the query at GET, the form at POST), checked.
struct AuthRequest {
    client_id: String,
    client: ClientRecord,
    redirect_uri: String,
    state: Option<String>,
    code_challenge: String,
    scopes: Vec<String>,
}

/// Why an authorization request is refused: before the redirect URI is known good, with a page;
/// after, with a redirect carrying the OAuth error.
enum AuthRefusal {
    Page(String),
    Redirect {
        redirect_uri: String,
        state: Option<String>,
        error: &'static str,
        reason: String,
    },
}

fn check_auth_request(
    params: &HashMap<String, String>,
    client: Option<ClientRecord>,
) -> Result<AuthRequest, AuthRefusal> {
    let get = |k: &str| params.get(k).map(String::as_str).filter(|v| !v.is_empty());
    let client_id = get("client_id").unwrap_or("");
    let Some(client) = client else {
        return Err(AuthRefusal::Page(if client_id.is_empty() {
            "no client_id".into()
        } else {
            format!("unknown or expired client {client_id}")
        }));
    };
    let Some(redirect_uri) = get("redirect_uri") else {
        return Err(AuthRefusal::Page("no redirect_uri".into()));
    };
    if !client.redirect_matches(redirect_uri) {
        return Err(AuthRefusal::Page(format!(
            "redirect_uri {redirect_uri:?} is not registered by client {client_id}"
        )));
    }
    let state = get("state").map(str::to_string);
    let refuse = |error: &'static str, reason: String| AuthRefusal::Redirect {
        redirect_uri: redirect_uri.to_string(),
        state: state.clone(),
        error,
        reason,
    };
    if state.as_ref().is_some_and(|s| s.len() > MAX_STATE) {
        return Err(refuse(
            "invalid_request",
            format!("state longer than {MAX_STATE} characters"),
        ));
    }
    if !client.allows(CODE_GRANT) {
        return Err(refuse(
            "unauthorized_client",
            format!("client {client_id} did not register {CODE_GRANT}"),
        ));
    }
    if get("response_type") != Some("code") {
        return Err(refuse(
            "unsupported_response_type",
            format!("response_type {:?} is not code", get("response_type")),
        ));
    }
    match get("code_challenge_method") {
        Some(code::S256) => {}
        other => {
            return Err(refuse(
                "invalid_request",
                format!("code_challenge_method {other:?} is not S256 (plain is refused)"),
            ))
        }
    }
    let Some(challenge) = get("code_challenge").filter(|c| code::is_s256_challenge(c)) else {
        return Err(refuse(
            "invalid_request",
            "code_challenge missing or not 43 base64url characters".into(),
        ));
    };
    let asked: Vec<String> = get("scopes")
        .or(get("scope"))
        .unwrap_or("")
        .split([' ', ','])
        .filter(|s| !s.is_empty())
        .map(str::to_string)
        .collect();
    let scopes = client
        .grant_scopes(&asked)
        .map_err(|e| refuse("invalid_scope", e.reason))?;
    Ok(AuthRequest {
        client_id: client_id.to_string(),
        client,
        redirect_uri: redirect_uri.to_string(),
        state,
        code_challenge: challenge.to_string(),
        scopes,
    })
}

/// `redirect_uri` with `pairs` added to its query.
fn redirect_with(redirect_uri: &str, pairs: &[(&str, &str)]) -> Response {
    let Ok(mut u) = url::Url::parse(redirect_uri) else {
        return PortalError::Internal("checked redirect URI does not parse".into()).into_response();
    };
    {
        let mut q = u.query_pairs_mut();
        for (k, v) in pairs {
            q.append_pair(k, v);
        }
    }
    let mut resp = StatusCode::FOUND.into_response();
    match HeaderValue::from_str(u.as_str()) {
        Ok(v) => {
            resp.headers_mut().insert(header::LOCATION, v);
            resp
        }
        Err(_) => {
            PortalError::Internal("redirect URI is not a header value".into()).into_response()
        }
    }
}

/// The refusal of an authorization request, audited with its reason.
fn auth_refused(app: &App, mut ev: AuditEvent, refusal: AuthRefusal) -> Response {
    ev.outcome(Outcome::Deny);
    match refusal {
        AuthRefusal::Page(reason) => {
            ev.reason = Some(reason);
            app.audit.record(ev);
            error_page(
                StatusCode::BAD_REQUEST,
                "Sign-in request not valid",
                "The application that sent you here is not registered with rolegate, or asked to return somewhere it did not register. Start the sign-in again from the application.",
                "/portal",
                "Back to your accounts",
            )
        }
        AuthRefusal::Redirect {
            redirect_uri,
            state,
            error,
            reason,
        } => {
            ev.reason = Some(reason);
            ev.error_code = Some(error.to_string());
            app.audit.record(ev);
            let mut pairs = vec![("error", error)];
            if let Some(s) = state.as_deref() {
                pairs.push(("state", s));
            }
            redirect_with(&redirect_uri, &pairs)
        }
    }
}

async fn lookup_client(
    app: &App,
    params: &HashMap<String, String>,
) -> Result<Option<ClientRecord>, Response> {
    match params.get("client_id") {
        Some(id) => client::get(app, id)
            .await
            .map_err(|e| PortalError::Internal(e.reason).into_response()),
        None => Ok(None),
    }
}

#[derive(Template)]
#[template(path = "portal/authorize.html")]
struct AuthorizePage<'a> {
    who: String,
    csrf: &'a str,
    client_name: &'a str,
    client_id: &'a str,
    redirect_uri: &'a str,
    state: Option<&'a str>,
    code_challenge: &'a str,
    scopes: String,
    session_hours: i64,
}

/// The CSP of the authorization page: its form may lead (through our 302) to the client's
/// loopback origin, so `form-action` names it. CSP host sources cannot name an IPv6 literal:
/// for `[::1]` the form may lead to any `http:` URL (the page has no other form target).
fn authorize_csp(redirect_uri: &str) -> Option<HeaderValue> {
    let u = url::Url::parse(redirect_uri).ok()?;
    let target = match u.host()? {
        url::Host::Ipv6(_) => "http:".to_string(),
        _ => u.origin().ascii_serialization(),
    };
    // The page policy ends with `form-action 'self'`: the target is one more source of it.
    HeaderValue::from_str(&format!("{} {target}", crate::request::PAGE_CSP)).ok()
}

/// The AWS CLI's authorization request: checked, then the page naming the client.
///
/// The request is checked before the session is looked at: a request not valid is refused (and
/// audited) whether or not someone is signed in.
async fn authorize_page(State(app): State<Arc<App>>, uri: Uri, r: PortalRequest) -> Response {
    let return_to = uri.path_and_query().map_or_else(
        || crate::sso::oidc::AUTHORIZE_PATH.to_string(),
        |p| p.to_string(),
    );
    let mut ev = event(&app, AUTHORIZE_ACTION, &r.ip);
    ev.resource = r.query.get("client_id").cloned();
    let client = match lookup_client(&app, &r.query).await {
        Ok(c) => c,
        Err(resp) => return resp,
    };
    let a = match check_auth_request(&r.query, client) {
        Ok(a) => a,
        Err(refusal) => return auth_refused(&app, ev, refusal),
    };
    let s = match page_session(&app, &r, &return_to).await {
        Ok(s) => s,
        Err(resp) => return resp,
    };
    let mut resp = page(AuthorizePage {
        who: s.record.identity.display(),
        csrf: &s.record.csrf,
        client_name: &a.client.name,
        client_id: &a.client_id,
        redirect_uri: &a.redirect_uri,
        state: a.state.as_deref(),
        code_challenge: &a.code_challenge,
        scopes: a.scopes.join(" "),
        session_hours: session_hours(&app),
    });
    if let Some(csp) = authorize_csp(&a.redirect_uri) {
        resp.headers_mut().insert("content-security-policy", csp);
    }
    resp
}

/// Approve (a code to the redirect URI) or Deny (`error=access_denied` to it).
async fn authorize_decide(
    State(app): State<Arc<App>>,
    CheckedPost(s, r, _): CheckedPost<ApproveAuthorization>,
) -> Response {
    let mut ev = person_event(&app, AUTHORIZE_ACTION, &r, &s);
    ev.resource = r.form.get("client_id").cloned();
    let client = match lookup_client(&app, &r.form).await {
        Ok(c) => c,
        Err(resp) => return resp,
    };
    let a = match check_auth_request(&r.form, client) {
        Ok(a) => a,
        Err(refusal) => return auth_refused(&app, ev, refusal),
    };
    let approve = match decision(&r) {
        Ok(a) => a,
        Err(why) => return refuse(&app, ev, why.clone(), PortalError::BadRequest(why)),
    };
    let who = s.record.identity.display();
    if !approve {
        return auth_refused(
            &app,
            ev,
            AuthRefusal::Redirect {
                redirect_uri: a.redirect_uri,
                state: a.state,
                error: "access_denied",
                reason: format!("{who} denied the sign-in of client {:?}", a.client.name),
            },
        );
    }
    let issued = code::issue(
        &app,
        &a.client_id,
        &a.redirect_uri,
        &a.code_challenge,
        s.record.identity.clone(),
        a.scopes,
    )
    .await;
    let the_code = match issued {
        Ok(c) => c,
        Err(e) => return PortalError::Internal(e.reason).into_response(),
    };
    ev.outcome(Outcome::Allow);
    ev.reason = Some(format!(
        "approved the sign-in of client {:?}; authorization code sent to {}",
        a.client.name, a.redirect_uri
    ));
    app.audit.record(ev);
    let mut pairs = vec![("code", the_code.as_str())];
    if let Some(st) = a.state.as_deref() {
        pairs.push(("state", st));
    }
    redirect_with(&a.redirect_uri, &pairs)
}
