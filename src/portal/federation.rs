//! Console sign-in federation: `GET /federation?Action=getSigninToken` turns live rolegate-issued
//! credentials into a single-use sign-in token (valid 15 minutes), and `GET /federation?Action=login`
//! consumes it, opens a console session and sends the browser to the console destination. Sign-in
//! tokens (kind `console_signin`) and console sessions (kind `console_session`) live in the store's
//! directory, keyed by the SHA-256 of the value the client holds, so any replica accepts them and
//! whoever reads the store cannot replay one.
//!
//! Owns: the two federation actions, sign-in token and console session records, the console
//! session cookie, the rule of which destinations a login may lead to. Must not know: how the
//! console page renders, SigV4, how credentials were issued (it checks them through the key ring
//! and the revocation list).

use super::extract::PortalRequest;
use super::pages::{event, with_cookies};
use super::session::{self, key_of, random_token};
use super::PortalError;
use crate::app::App;
use crate::audit::{AuditEvent, Outcome};
use crate::credentials::SessionClaims;
use crate::store::DirWrite;
use axum::extract::State;
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use serde::{Deserialize, Serialize};
use std::sync::Arc;
use subtle::ConstantTimeEq;

/// Directory kind of sign-in tokens.
pub const SIGNIN_KIND: &str = "console_signin";
/// Directory kind of console sessions.
pub const CONSOLE_KIND: &str = "console_session";
/// Cookie holding the console session id.
pub const CONSOLE_COOKIE: &str = "__Host-rolegate-console";
/// rolegate's own console page.
pub const CONSOLE_PATH: &str = "/console";
/// How long a sign-in token is valid (seconds).
pub const SIGNIN_TOKEN_SECONDS: i64 = 900;
/// Shortest and longest `SessionDuration` (seconds).
pub const SESSION_DURATION: (i64, i64) = (900, 43_200);
/// Audit action of `getSigninToken`.
pub const GET_SIGNIN_TOKEN_ACTION: &str = "console:GetSigninToken";
/// Audit action of `login`.
pub const LOGIN_ACTION: &str = "console:Login";
/// Longest accepted `Session` JSON, `Issuer` and `Destination`.
const MAX_SESSION_JSON: usize = 8 * 1024;
const MAX_URL: usize = 2048;

/// A sign-in token as stored.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SigninRecord {
    /// The session token of the credentials it was made from (sealed).
    pub session_token: String,
    /// When the console session it opens ends (Unix seconds).
    pub console_expires_at: i64,
    /// When the sign-in token itself stops being accepted (Unix seconds).
    pub expires_at: i64,
}

/// A console session as stored.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ConsoleRecord {
    /// The session token of the credentials behind the console (sealed).
    pub session_token: String,
    /// When the console session ends (Unix seconds).
    pub expires_at: i64,
    /// The CSRF token of the console's forms.
    pub csrf: String,
    /// When it was opened (Unix seconds).
    pub created_at: i64,
    /// The `Issuer` the login named.
    pub issuer: String,
    /// Client address at login.
    pub ip: String,
}

/// A refusal of `getSigninToken`: status, AWS-style code, what the client is told, and the precise
/// reason for the audit log.
#[derive(Debug)]
pub struct TokenError {
    status: StatusCode,
    code: &'static str,
    message: String,
    reason: String,
}

impl TokenError {
    fn bad(code: &'static str, message: impl Into<String>) -> Self {
        let message = message.into();
        Self {
            status: StatusCode::BAD_REQUEST,
            code,
            reason: message.clone(),
            message,
        }
    }

    fn denied(code: &'static str, message: &str, reason: impl Into<String>) -> Self {
        Self {
            status: StatusCode::FORBIDDEN,
            code,
            message: message.into(),
            reason: reason.into(),
        }
    }

    fn internal(reason: impl Into<String>) -> Self {
        Self {
            status: StatusCode::SERVICE_UNAVAILABLE,
            code: "ServiceUnavailable",
            message: "rolegate cannot issue a sign-in token right now".into(),
            reason: reason.into(),
        }
    }

    fn into_response(self) -> Response {
        json(
            self.status,
            &serde_json::json!({"Error": {"Code": self.code, "Message": self.message}}),
        )
    }
}

fn json(status: StatusCode, v: &serde_json::Value) -> Response {
    (
        status,
        [(header::CONTENT_TYPE, "application/json")],
        v.to_string(),
    )
        .into_response()
}

/// The credentials of a sign-in request, as the `Session` parameter names them.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct SessionParam {
    #[serde(rename = "sessionId")]
    session_id: String,
    #[serde(rename = "sessionKey")]
    session_key: String,
    #[serde(rename = "sessionToken")]
    session_token: String,
}

/// Checks that sealed credentials are a live rolegate session at `now`: not expired, not revoked.
/// Returns the claims, or a refusal with its precise reason.
fn live(app: &App, token: &str, now: i64) -> std::result::Result<SessionClaims, TokenError> {
    let claims = app.keys.open_session(token).map_err(|e| {
        TokenError::denied(
            "InvalidClientTokenId",
            "The session credentials are not valid",
            format!("session token: {e}"),
        )
    })?;
    crate::authn::check_live(app, &claims, now).map_err(|e| {
        let message = match e {
            crate::authn::AuthnError::Revoked(_) => "The session credentials have been revoked",
            _ => "The session credentials have expired",
        };
        TokenError::denied(e.code().as_str(), message, e.reason())
    })?;
    Ok(claims.claims().clone())
}

/// Verifies the `Session` credentials and `SessionDuration` of a `getSigninToken` request and
/// returns the session, when its console would end, and its session token.
fn verify_request(
    app: &App,
    session_json: Option<&str>,
    duration: Option<&str>,
    now: i64,
    ev: &mut AuditEvent,
) -> std::result::Result<(SessionClaims, i64, String), TokenError> {
    let duration = match duration {
        None => None,
        Some(d) => match d.parse::<i64>() {
            Ok(n) if (SESSION_DURATION.0..=SESSION_DURATION.1).contains(&n) => Some(n),
            _ => {
                return Err(TokenError::bad(
                    "InvalidParameterValue",
                    format!(
                        "SessionDuration must be a whole number of seconds from {} to {}",
                        SESSION_DURATION.0, SESSION_DURATION.1
                    ),
                ))
            }
        },
    };
    let Some(raw) = session_json else {
        return Err(TokenError::bad(
            "MissingParameter",
            "the Session parameter is required",
        ));
    };
    if raw.len() > MAX_SESSION_JSON {
        return Err(TokenError::bad(
            "InvalidParameterValue",
            format!("Session must be at most {MAX_SESSION_JSON} characters"),
        ));
    }
    let p: SessionParam = serde_json::from_str(raw).map_err(|_| {
        TokenError::bad(
            "InvalidParameterValue",
            "Session must be a JSON object with exactly sessionId, sessionKey and sessionToken",
        )
    })?;
    ev.access_key_id = Some(p.session_id.chars().take(128).collect());
    let claims = live(app, &p.session_token, now)?;
    ev.principal = Some(claims.principal.arn());
    let id_ok = bool::from(
        p.session_id
            .as_bytes()
            .ct_eq(claims.access_key_id.as_bytes()),
    );
    let key_ok = bool::from(
        p.session_key
            .as_bytes()
            .ct_eq(claims.secret_access_key.as_bytes()),
    );
    if !id_ok {
        return Err(TokenError::denied(
            "InvalidClientTokenId",
            "The session credentials are not valid",
            format!(
                "session token belongs to {}, not to sessionId {}",
                claims.access_key_id, p.session_id
            ),
        ));
    }
    if !key_ok {
        return Err(TokenError::denied(
            "InvalidClientTokenId",
            "The session credentials are not valid",
            format!(
                "sessionKey is not the secret of access key {}",
                claims.access_key_id
            ),
        ));
    }
    let remaining = claims.expires_at - now;
    let lasts = duration
        .unwrap_or(remaining)
        .min(remaining)
        .min(SESSION_DURATION.1);
    Ok((claims, now + lasts, p.session_token))
}

/// Stores a new sign-in token for `session_token` opening a console until `console_expires_at`;
/// returns the token.
pub async fn mint_signin_token(
    app: &App,
    session_token: &str,
    console_expires_at: i64,
    now: i64,
) -> super::Result<String> {
    let token = random_token()?;
    let record = SigninRecord {
        session_token: session_token.to_string(),
        console_expires_at,
        expires_at: now + SIGNIN_TOKEN_SECONDS,
    };
    let doc = serde_json::to_string(&record).map_err(|e| PortalError::Internal(e.to_string()))?;
    if !app
        .store
        .dir_write(&[DirWrite::insert(SIGNIN_KIND, &key_of(&token), doc)])
        .await?
    {
        return Err(PortalError::Internal("sign-in token collision".into()));
    }
    Ok(token)
}

/// Takes the sign-in token out of the store in one write, so that it opens at most one console
/// anywhere. `Ok(None)` for an unknown, already used or corrupt token.
async fn consume(app: &App, token: &str) -> super::Result<Option<SigninRecord>> {
    let key = key_of(token);
    let Some(v) = app.store.dir_get(SIGNIN_KIND, &key).await? else {
        return Ok(None);
    };
    if !app
        .store
        .dir_write(&[DirWrite::delete(SIGNIN_KIND, &key, v.version)])
        .await?
    {
        // Another request took it first.
        return Ok(None);
    }
    Ok(serde_json::from_str(&v.value).ok())
}

/// Whether a login may send the browser to `destination`: rolegate's console (as a path or under
/// the public URL), or exactly the relay state of a configured permission set.
pub fn destination_allowed(config: &crate::config::Config, destination: &str) -> bool {
    let ours = format!(
        "{}{CONSOLE_PATH}",
        config.public_url.as_str().trim_end_matches('/')
    );
    destination == CONSOLE_PATH
        || destination == ours
        || config
            .permission_sets
            .iter()
            .any(|p| p.relay_state.as_deref() == Some(destination))
}

/// The path of `/federation?Action=login` that opens a console with `token` at `destination`.
pub fn login_path(config: &crate::config::Config, token: &str, destination: &str) -> String {
    let q: String = form_urlencoded::Serializer::new(String::new())
        .append_pair("Action", "login")
        .append_pair(
            "Issuer",
            &format!(
                "{}/portal",
                config.public_url.as_str().trim_end_matches('/')
            ),
        )
        .append_pair("Destination", destination)
        .append_pair("SigninToken", token)
        .finish();
    format!("/federation?{q}")
}

/// `GET /federation`.
pub(super) async fn federation(
    State(app): State<Arc<App>>,
    r: Result<PortalRequest, super::PortalError>,
) -> Response {
    let r = match r {
        Ok(r) => r,
        Err(e) => {
            return json(
                StatusCode::BAD_REQUEST,
                &serde_json::json!({"Error": {"Code": "InvalidParameterValue", "Message": e.to_string()}}),
            )
        }
    };
    match r.query.get("Action").map(String::as_str) {
        Some("getSigninToken") => get_signin_token(&app, &r).await,
        Some("login") => login(&app, &r).await,
        other => {
            let mut ev = event(&app, GET_SIGNIN_TOKEN_ACTION, &r.ip);
            let e = TokenError::bad(
                "InvalidAction",
                format!(
                    "Action must be getSigninToken or login, not {:?}",
                    other.unwrap_or("").chars().take(64).collect::<String>()
                ),
            );
            ev.outcome(Outcome::Deny);
            ev.reason = Some(e.reason.clone());
            app.audit.record(ev);
            e.into_response()
        }
    }
}

async fn get_signin_token(app: &App, r: &PortalRequest) -> Response {
    let mut ev = event(app, GET_SIGNIN_TOKEN_ACTION, &r.ip);
    let now = app.clock.now().timestamp();
    let verified = verify_request(
        app,
        r.query.get("Session").map(String::as_str),
        r.query.get("SessionDuration").map(String::as_str),
        now,
        &mut ev,
    );
    let (claims, console_expires_at, token) = match verified {
        Ok(v) => v,
        Err(e) => {
            ev.outcome(Outcome::Deny);
            ev.error_code = Some(e.code.to_string());
            ev.reason = Some(e.reason.clone());
            app.audit.record(ev);
            return e.into_response();
        }
    };
    match mint_signin_token(app, &token, console_expires_at, now).await {
        Ok(signin) => {
            ev.outcome(Outcome::Allow);
            ev.expiration = Some(crate::clock::rfc3339_secs(console_expires_at));
            ev.reason = Some(format!(
                "sign-in token for {} valid {SIGNIN_TOKEN_SECONDS} s",
                claims.principal.arn()
            ));
            app.audit.record(ev);
            json(StatusCode::OK, &serde_json::json!({"SigninToken": signin}))
        }
        Err(e) => {
            let e = TokenError::internal(e.to_string());
            ev.outcome(Outcome::Error);
            ev.reason = Some(e.reason.clone());
            app.audit.record(ev);
            e.into_response()
        }
    }
}

/// Why a login was refused, shown as a page.
fn login_refused(app: &App, mut ev: AuditEvent, reason: String, what: LoginRefusal) -> Response {
    ev.outcome(Outcome::Deny);
    ev.reason = Some(reason);
    app.audit.record(ev);
    let message = match what {
        LoginRefusal::BadRequest(m) => m,
        LoginRefusal::Token => "This console sign-in link is not valid: it was already used, it \
                                is older than 15 minutes, or it was never issued. Open the console \
                                again from your accounts."
            .to_string(),
        LoginRefusal::Credentials => "The credentials behind this console sign-in have expired \
                                      or been revoked. Open the console again from your accounts."
            .to_string(),
    };
    PortalError::Denied {
        message,
        explanation: None,
    }
    .into_response()
}

enum LoginRefusal {
    BadRequest(String),
    Token,
    Credentials,
}

async fn login(app: &App, r: &PortalRequest) -> Response {
    let mut ev = event(app, LOGIN_ACTION, &r.ip);
    let now = app.clock.now().timestamp();
    let (Some(destination), Some(token)) = (r.query.get("Destination"), r.query.get("SigninToken"))
    else {
        return login_refused(
            app,
            ev,
            "Destination or SigninToken missing".into(),
            LoginRefusal::BadRequest("The sign-in link is incomplete.".into()),
        );
    };
    let issuer = r.query.get("Issuer").cloned().unwrap_or_default();
    if issuer.len() > MAX_URL || destination.len() > MAX_URL {
        return login_refused(
            app,
            ev,
            "Issuer or Destination longer than 2048 characters".into(),
            LoginRefusal::BadRequest("The sign-in link is too long.".into()),
        );
    }
    ev.resource = Some(destination.clone());
    // Checked before the token is spent: a foreign destination is refused, and the token stays
    // usable for the link it was made for.
    if !destination_allowed(&app.config, destination) {
        return login_refused(
            app,
            ev,
            format!(
                "Destination {destination:?} is neither {CONSOLE_PATH} nor the relay state of a permission set"
            ),
            LoginRefusal::BadRequest(
                "The sign-in link leads somewhere rolegate does not send consoles to.".into(),
            ),
        );
    }
    let record = match consume(app, token).await {
        Ok(Some(rec)) => rec,
        Ok(None) => {
            return login_refused(
                app,
                ev,
                "sign-in token unknown or already used".into(),
                LoginRefusal::Token,
            )
        }
        Err(e) => return e.into_response(),
    };
    if record.expires_at <= now {
        return login_refused(
            app,
            ev,
            format!(
                "sign-in token expired at {}",
                crate::clock::rfc3339_secs(record.expires_at)
            ),
            LoginRefusal::Token,
        );
    }
    let claims = match live(app, &record.session_token, now) {
        Ok(c) => c,
        Err(e) => return login_refused(app, ev, e.reason, LoginRefusal::Credentials),
    };
    ev.principal = Some(claims.principal.arn());
    ev.access_key_id = Some(claims.access_key_id.clone());
    let expires_at = record.console_expires_at.min(claims.expires_at);
    ev.expiration = Some(crate::clock::rfc3339_secs(expires_at));
    let cookie = match open_console(app, &record.session_token, expires_at, issuer, r, now).await {
        Ok(c) => c,
        Err(e) => return super::pages::fail(app, ev, e.to_string(), e),
    };
    ev.outcome(Outcome::Allow);
    app.audit.record(ev);
    with_cookies(
        Redirect::to(destination).into_response(),
        &[session::set_cookie(
            CONSOLE_COOKIE,
            &cookie,
            expires_at - now,
        )],
    )
}

/// Stores a new console session (replacing the one the browser had) and returns its cookie value.
async fn open_console(
    app: &App,
    session_token: &str,
    expires_at: i64,
    issuer: String,
    r: &PortalRequest,
    now: i64,
) -> super::Result<String> {
    if let Some(old) = session::cookie(&r.headers, CONSOLE_COOKIE) {
        end_console(app, &key_of(&old)).await?;
    }
    let cookie = random_token()?;
    let record = ConsoleRecord {
        session_token: session_token.to_string(),
        expires_at,
        csrf: random_token()?,
        created_at: now,
        issuer,
        ip: r.ip.clone(),
    };
    let doc = serde_json::to_string(&record).map_err(|e| PortalError::Internal(e.to_string()))?;
    if !app
        .store
        .dir_write(&[DirWrite::insert(CONSOLE_KIND, &key_of(&cookie), doc)])
        .await?
    {
        return Err(PortalError::Internal("console session id collision".into()));
    }
    Ok(cookie)
}

/// A loaded console session.
pub struct Console {
    /// Store key.
    pub key: String,
    /// The record.
    pub record: ConsoleRecord,
    /// The credentials behind it, checked live.
    pub claims: SessionClaims,
}

/// Why there is no console for a request.
pub enum NoConsole {
    /// No cookie, or one naming no session.
    Missing,
    /// The console session (or the credentials behind it) ended; the reason says which. The record
    /// is deleted.
    Expired(String),
    /// The store failed.
    Failed(PortalError),
}

/// The live console session of a request.
pub async fn load_console(
    app: &App,
    headers: &HeaderMap,
) -> std::result::Result<Console, NoConsole> {
    let Some(cookie) = session::cookie(headers, CONSOLE_COOKIE) else {
        return Err(NoConsole::Missing);
    };
    let key = key_of(&cookie);
    let v = match app.store.dir_get(CONSOLE_KIND, &key).await {
        Ok(Some(v)) => v,
        Ok(None) => return Err(NoConsole::Missing),
        Err(e) => return Err(NoConsole::Failed(e.into())),
    };
    let now = app.clock.now().timestamp();
    let ended = match serde_json::from_str::<ConsoleRecord>(&v.value) {
        Err(e) => Err(format!("console record does not decode: {e}")),
        Ok(rec) if rec.expires_at <= now => Err(format!(
            "console session expired at {}",
            crate::clock::rfc3339_secs(rec.expires_at)
        )),
        Ok(rec) => match live(app, &rec.session_token, now) {
            Ok(claims) => Ok((rec, claims)),
            Err(e) => Err(e.reason),
        },
    };
    match ended {
        Ok((record, claims)) => Ok(Console {
            key,
            record,
            claims,
        }),
        Err(why) => {
            let _ = app
                .store
                .dir_write(&[DirWrite::delete(CONSOLE_KIND, &key, v.version)])
                .await;
            Err(NoConsole::Expired(why))
        }
    }
}

/// Deletes one console session; deleting one that is gone succeeds.
pub async fn end_console(app: &App, key: &str) -> super::Result<()> {
    if crate::store::delete_dir_record(app.store.as_ref(), CONSOLE_KIND, key, 3).await? {
        return Ok(());
    }
    Err(PortalError::Internal(
        "console session changed while being deleted".into(),
    ))
}

/// Deletes sign-in tokens and console sessions that have run out (and records that no longer
/// decode); returns how many.
pub async fn purge_expired(app: &App, now: i64) -> super::Result<usize> {
    let store = app.store.as_ref();
    let signins = crate::store::purge_dir_records(store, SIGNIN_KIND, |v| {
        serde_json::from_str::<SigninRecord>(v).map_or(true, |r| r.expires_at <= now)
    });
    let signins = signins.await?;
    let consoles = crate::store::purge_dir_records(store, CONSOLE_KIND, |v| {
        serde_json::from_str::<ConsoleRecord>(v).map_or(true, |r| r.expires_at <= now)
    });
    Ok(signins + consoles.await?)
}
