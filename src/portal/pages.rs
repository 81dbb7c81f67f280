//! The portal's HTTP handlers: start page, password sign-in, home, command line access, sign-in
//! history and sign-out.

pub mod security_keys;

use super::extract::{form_action, BackHere, CheckedPost, FormAction, PortalRequest, SignedIn};
use super::session::{self, LOGIN_CSRF_COOKIE, SESSION_COOKIE};
use super::{settings, PortalError, Result, SignedInIdentity, SIGN_IN_ACTION};
use crate::app::App;
use crate::audit::{AuditEvent, Outcome};
use crate::idp::local::DirectoryError;
use crate::store::AuditQuery;
use askama::Template;
use axum::body::Body;
use axum::extract::{Request, State};
use axum::handler::Handler;
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{Html, IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use axum::Router;
use std::collections::HashMap;
use std::sync::Arc;

/// The portal's routes.
pub fn routes() -> Router<Arc<App>> {
    Router::new()
        .route("/login", get(login_page))
        .route("/login/local", post(submit_password))
        .route("/portal", get(home))
        .route(
            "/portal/credentials",
            post(command_line_access).get(super::resume::credentials),
        )
        .route(
            "/portal/console",
            post(super::console::open).get(super::resume::console),
        )
        .route("/federation", get(super::federation::federation))
        .route(super::federation::CONSOLE_PATH, get(super::console::view))
        .route("/console/simulate", post(super::console::simulate))
        .route("/console/logout", post(super::console::sign_out))
        .route("/portal/history", get(history))
        .route("/logout", post(sign_out))
        .route("/static/portal.js", get(script))
        .merge(super::mfa::routes())
        .merge(security_keys::routes())
        .merge(super::oidc::routes())
}

pub(super) fn event(app: &App, action: &str, ip: &str) -> AuditEvent {
    let mut ev = AuditEvent::new(app.clock.now(), &crate::request::request_id(), action);
    ev.source_ip = Some(ip.to_string());
    ev
}

/// Records `ev` as refused with `reason` and returns `err`.
pub(super) fn refuse(app: &App, mut ev: AuditEvent, reason: String, err: PortalError) -> Response {
    ev.outcome(Outcome::Deny);
    ev.reason = Some(reason);
    app.audit.record(ev);
    err.into_response()
}

/// Records `ev` as failed with `reason` and returns `err`.
pub(super) fn fail(app: &App, mut ev: AuditEvent, reason: String, err: PortalError) -> Response {
    ev.outcome(Outcome::Error);
    ev.reason = Some(reason);
    app.audit.record(ev);
    err.into_response()
}

/// Records `ev` as denied for the reason of `e` and answers its message with the policy engine's
/// explanation the event carries.
pub(super) fn refuse_denied(app: &App, ev: AuditEvent, e: &crate::query::QueryError) -> Response {
    let explanation = explanation_of(&ev);
    let message = e.message.clone();
    refuse(
        app,
        ev,
        e.reason.clone(),
        PortalError::Denied {
            message,
            explanation,
        },
    )
}

/// Records `ev` as refused with `e` and answers that rolegate cannot complete the request now.
pub(super) fn refuse_internal(app: &App, ev: AuditEvent, e: impl std::fmt::Display) -> Response {
    let why = e.to_string();
    refuse(app, ev, why.clone(), PortalError::Internal(why))
}

pub(crate) fn page(t: impl Template) -> Response {
    match t.render() {
        Ok(html) => ([("referrer-policy", super::REFERRER_POLICY)], Html(html)).into_response(),
        Err(e) => PortalError::Internal(format!("rendering: {e}")).into_response(),
    }
}

pub(super) fn with_cookies(mut resp: Response, cookies: &[String]) -> Response {
    for c in cookies {
        if let Ok(v) = HeaderValue::from_str(c) {
            resp.headers_mut().append(header::SET_COOKIE, v);
        }
    }
    resp
}

#[derive(Template)]
#[template(path = "portal/login.html")]
struct LoginPage<'a> {
    csrf: &'a str,
    return_to: &'a str,
    local: bool,
    message: Option<&'a str>,
    /// Why the last password sign-in was refused.
    error: Option<&'a str>,
    /// The user name to fill in again after a refusal.
    user: &'a str,
    /// OIDC providers with browser sign-in: (name, display name, start link).
    oidc: Vec<(String, String, String)>,
    /// SAML providers whose metadata names an HTTP-Redirect sign-on endpoint: (name, start link).
    saml: Vec<(String, String)>,
}

async fn login_page(State(app): State<Arc<App>>, r: PortalRequest) -> Response {
    if settings(&app).is_none() {
        return StatusCode::NOT_FOUND.into_response();
    }
    let csrf = match session::random_token() {
        Ok(t) => t,
        Err(e) => return e.into_response(),
    };
    let return_to = session::safe_return_to(r.query.get("return_to").map(String::as_str));
    let resp = login_form(&app, &csrf, &return_to, None, "");
    with_cookies(resp, &[session::set_cookie(LOGIN_CSRF_COOKIE, &csrf, 3600)])
}

/// The sign-in page: the password form (with `error` beside it and `user` filled in after a
/// refusal) and the identity providers' links, each coming back to `return_to`.
fn login_form(app: &App, csrf: &str, return_to: &str, error: Option<&str>, user: &str) -> Response {
    let local = settings(app).is_some_and(|s| s.local_login);
    let oidc = app
        .oidc
        .list()
        .into_iter()
        .map(|(name, display)| {
            let q: String = form_urlencoded::Serializer::new(String::new())
                .append_pair("return_to", return_to)
                .finish();
            let link = format!("/login/oidc/{name}?{q}");
            (name, display, link)
        })
        .collect();
    let saml = app
        .saml
        .names()
        .filter(|name| {
            app.saml
                .metadata(name)
                .is_some_and(|m| m.sso_redirect.is_some())
        })
        .map(|name| (name.to_string(), format!("/saml/{name}/login")))
        .collect();
    page(LoginPage {
        csrf,
        return_to,
        local,
        message: None,
        error,
        user,
        oidc,
        saml,
    })
}

/// What a refused password sign-in is told: never which of the user name, password or code
/// was wrong.
const SIGN_IN_REFUSED: &str = "The user name, password or MFA code is wrong, or sign-in is locked for a while after too many failures.";

/// Records `ev` as a refused sign-in with `reason` and answers with the sign-in form again
/// (401): the error beside it, the user name kept, the password and code fields empty.
fn refuse_sign_in(app: &App, mut ev: AuditEvent, reason: String, r: &PortalRequest) -> Response {
    ev.outcome(Outcome::Deny);
    ev.reason = Some(reason);
    app.audit.record(ev);
    // The CSRF field was checked against the cookie before any refusal that comes here.
    let csrf = r.field("csrf").unwrap_or_default();
    let return_to = session::safe_return_to(r.field("return_to"));
    let user = r.field("user").unwrap_or_default();
    let mut resp = login_form(app, csrf, &return_to, Some(SIGN_IN_REFUSED), user);
    if resp.status() == StatusCode::OK {
        *resp.status_mut() = StatusCode::UNAUTHORIZED;
    }
    resp
}

form_action!(
    /// Command line access: temporary credentials shown on a page.
    GetCredentials = "portal:GetCredentials"
);
form_action!(
    /// Sign-out; also of a session waiting for the MFA challenge.
    SignOut = "portal:SignOut", while_pending
);

/// Password (+TOTP) sign-in of a directory user.
async fn submit_password(State(app): State<Arc<App>>, r: PortalRequest) -> Response {
    let mut ev = event(&app, SIGN_IN_ACTION, &r.ip);
    ev.provider = Some(crate::config::LOCAL_PROVIDER.into());
    let (Some(s), Some(d)) = (settings(&app), app.directory.as_ref()) else {
        return StatusCode::NOT_FOUND.into_response();
    };
    if !s.local_login {
        return StatusCode::NOT_FOUND.into_response();
    }
    if let Err(why) = session::origin_ok(&r.headers, &app.config.public_url) {
        return refuse(&app, ev, why.clone(), PortalError::Forged(why));
    }
    let csrf_ok = match (
        session::cookie(&r.headers, LOGIN_CSRF_COOKIE),
        r.field("csrf"),
    ) {
        (Some(c), Some(f)) => crate::credentials::same_token(&c, f),
        _ => false,
    };
    if !csrf_ok {
        return refuse(
            &app,
            ev,
            "sign-in form CSRF token missing or not the cookie's".into(),
            PortalError::Forged("csrf".into()),
        );
    }
    let (Some(user), Some(password)) = (r.field("user"), r.field("password")) else {
        return refuse(
            &app,
            ev,
            "user or password missing".into(),
            PortalError::BadRequest("user and password are required".into()),
        );
    };
    ev.subject = Some(user.to_string());
    let user = match d
        .check_password(
            user,
            crate::idp::local::password::Password::new(password.to_string()),
        )
        .await
    {
        Ok(u) => u,
        Err(e @ (DirectoryError::Denied(_) | DirectoryError::Locked { .. })) => {
            // A failed attempt on an existing user is that user's: its sign-in history shows it.
            if let Ok(u) = d.user(user).await {
                ev.principal = Some(u.arn(d.account()));
            }
            return refuse_sign_in(&app, ev, e.to_string(), &r);
        }
        Err(e) => {
            // Hashing at capacity, or the store: no answer on the password; the event says why.
            ev.outcome(Outcome::Error);
            ev.reason = Some(e.to_string());
            app.audit.record(ev);
            return PortalError::Internal(e.to_string()).into_response();
        }
    };
    ev.principal = Some(user.arn(d.account()));
    ev.root = user.root;
    let code = r.field("code").filter(|c| !c.is_empty());
    let mfa_time = match (code, user.has_mfa()) {
        (Some(code), true) => match d.verify_totp(&user, &d.totp_serial(&user), code).await {
            Ok(t) => Some(t),
            Err(e) => return refuse_sign_in(&app, ev, format!("MFA: {e}"), &r),
        },
        (Some(_), false) => {
            return refuse_sign_in(
                &app,
                ev,
                "MFA code given for a user without an MFA device".into(),
                &r,
            )
        }
        (None, _) if user.root => {
            return refuse_sign_in(&app, ev, "root signs in only with MFA".into(), &r)
        }
        (None, _) => None,
    };
    let claims = serde_json::Map::from_iter([
        (
            "sub".to_string(),
            serde_json::Value::String(user.name.clone()),
        ),
        (
            "username".to_string(),
            serde_json::Value::String(user.name.clone()),
        ),
    ]);
    let identity = SignedInIdentity {
        provider: crate::config::LOCAL_PROVIDER.into(),
        subject: user.name.clone(),
        claims,
        mfa_time,
        local_groups: user.groups.clone(),
        origin_user: Some(user.user_id.clone()),
        signed_in_at: app.clock.now().timestamp(),
    };
    let return_to = session::safe_return_to(r.field("return_to"));
    // Whoever has an MFA method and did not use it here passes the challenge before the portal.
    let mfa_pending = mfa_time.is_none() && user.has_mfa();
    finish_sign_in(&app, identity, &r, ev, &return_to, mfa_pending).await
}

/// Ends a sign-in that another path verified (the SAML assertion consumer) in a portal session:
/// the same session start as the portal's own sign-ins, then the browser goes to the portal home.
pub async fn sign_in_verified_elsewhere(
    app: &App,
    identity: SignedInIdentity,
    headers: HeaderMap,
    ip: String,
    ev: AuditEvent,
) -> Response {
    let r = PortalRequest {
        headers,
        ip,
        query: HashMap::new(),
        form: HashMap::new(),
    };
    finish_sign_in(app, identity, &r, ev, "/portal", false).await
}

/// Ends a sign-in verified by an OpenID Connect provider in a portal session, then sends the
/// browser to `return_to` (already checked by [`session::safe_return_to`]).
pub(super) async fn sign_in_verified_to(
    app: &App,
    identity: SignedInIdentity,
    r: &PortalRequest,
    ev: AuditEvent,
    return_to: &str,
) -> Response {
    finish_sign_in(app, identity, r, ev, return_to, false).await
}

/// Starts the session, replaces any session cookie the browser had, and sends it on.
async fn finish_sign_in(
    app: &App,
    identity: SignedInIdentity,
    r: &PortalRequest,
    mut ev: AuditEvent,
    return_to: &str,
    mfa_pending: bool,
) -> Response {
    let Some(s) = settings(app) else {
        return StatusCode::NOT_FOUND.into_response();
    };
    // The gate's word on a person a provider vouched for just now (provisioned and active where
    // a SCIM client provisions the provider).
    if identity.provider != crate::config::LOCAL_PROVIDER {
        if let Err(e) = crate::authz::gate::recheck(app, &identity, mfa_pending).await {
            ev.provider = Some(identity.provider.clone());
            ev.subject = Some(identity.subject.clone());
            ev.principal = Some(identity.display());
            ev.outcome(Outcome::Deny);
            ev.reason = Some(format!("mint gate: {e}"));
            app.audit.record(ev);
            return PortalError::Denied {
                message:
                    "Your access through this identity provider has ended; ask your administrator."
                        .into(),
                explanation: None,
            }
            .into_response();
        }
    }
    // The session the browser had before, if any, ends here: the new one has a new id.
    if let Some(old) = session::cookie(&r.headers, SESSION_COOKIE) {
        if let Err(e) = session::delete(app.store.as_ref(), &session::key_of(&old)).await {
            return e.into_response();
        }
    }
    match super::start_session_with(app, identity, &r.ip, &mut ev, mfa_pending).await {
        Ok(token) => {
            if mfa_pending {
                ev.reason = Some("password accepted; MFA challenge next".into());
            }
            app.audit.record(ev);
            let next = if mfa_pending {
                super::mfa::challenge_url(return_to)
            } else {
                return_to.to_string()
            };
            with_cookies(
                Redirect::to(&next).into_response(),
                &[
                    session::set_cookie(SESSION_COOKIE, &token, s.max_seconds),
                    session::clear_cookie(LOGIN_CSRF_COOKIE),
                ],
            )
        }
        Err(e) => fail(app, ev, e.to_string(), e),
    }
}

/// One permission set on the home page.
pub struct SetView {
    /// Its name.
    pub name: String,
    /// Its description.
    pub description: String,
    /// Whether it needs MFA.
    pub mfa: bool,
}

/// One account on the home page.
pub struct AccountView {
    /// Account id.
    pub id: String,
    /// Account name.
    pub name: String,
    /// Permission sets assigned in it.
    pub sets: Vec<SetView>,
}

/// The portal home page.
#[derive(Template)]
#[template(path = "portal/home.html")]
pub struct HomePage {
    /// Who is signed in.
    pub who: String,
    /// The session's CSRF token.
    pub csrf: String,
    /// The filter.
    pub q: String,
    /// Accounts with their permission sets.
    pub accounts: Vec<AccountView>,
}

/// The accounts and permission sets the rules give `identity` now, filtered by `q` (case-
/// insensitive, on account id or name and permission set name).
pub fn home_page(
    config: &crate::config::Config,
    identity: &SignedInIdentity,
    csrf: String,
    q: &str,
) -> Result<HomePage> {
    home_page_provisioned(config, None, identity, csrf, q)
}

/// [`home_page`] of a person whose provisioned groups are `provisioned` (see
/// [`crate::idp::provisioned`]).
pub fn home_page_provisioned(
    config: &crate::config::Config,
    provisioned: Option<&[String]>,
    identity: &SignedInIdentity,
    csrf: String,
    q: &str,
) -> Result<HomePage> {
    let evaluation = super::evaluate_with(config, identity, provisioned)?;
    let needle = q.trim().to_lowercase();
    let mut accounts: Vec<AccountView> = Vec::new();
    for a in &evaluation.assignments {
        let name = config
            .accounts
            .iter()
            .find(|x| x.id == a.account)
            .map_or_else(|| a.account.clone(), |x| x.name.clone());
        let set = config
            .permission_sets
            .iter()
            .find(|p| p.name == a.permission_set);
        if !needle.is_empty()
            && !a.account.contains(&needle)
            && !name.to_lowercase().contains(&needle)
            && !a.permission_set.to_lowercase().contains(&needle)
        {
            continue;
        }
        let view = SetView {
            name: a.permission_set.clone(),
            description: set.and_then(|s| s.description.clone()).unwrap_or_default(),
            mfa: set.is_some_and(|s| s.mfa != crate::config::MfaRequirement::None),
        };
        match accounts.last_mut() {
            Some(last) if last.id == a.account => last.sets.push(view),
            _ => accounts.push(AccountView {
                id: a.account.clone(),
                name,
                sets: vec![view],
            }),
        }
    }
    Ok(HomePage {
        who: identity.display(),
        csrf,
        q: q.to_string(),
        accounts,
    })
}

pub(super) fn to_login(return_to: &str) -> Response {
    let q: String = form_urlencoded::Serializer::new(String::new())
        .append_pair("return_to", return_to)
        .finish();
    Redirect::to(&format!("/login?{q}")).into_response()
}

async fn home(
    State(app): State<Arc<App>>,
    SignedIn(s, _): SignedIn<BackHere>,
    r: PortalRequest,
) -> Response {
    let q = r.param("q").unwrap_or("");
    let identity = &s.record.identity;
    let provisioned = app
        .provisioned
        .groups(&identity.provider, &identity.subject);
    match home_page_provisioned(
        &app.config,
        provisioned.as_deref(),
        identity,
        s.record.csrf.clone(),
        q,
    ) {
        Ok(p) => page(p),
        Err(e) => e.into_response(),
    }
}

#[derive(Template)]
#[template(path = "portal/credentials.html")]
struct CredentialsPage<'a> {
    who: String,
    csrf: &'a str,
    account: &'a str,
    permission_set: &'a str,
    expiration: String,
    access_key_id: &'a str,
    secret_access_key: &'a str,
    session_token: &'a str,
    endpoint: &'a str,
    profile: String,
}

/// Temporary credentials for one permission set, shown for bash, PowerShell and the credentials
/// file.
async fn command_line_access(
    State(app): State<Arc<App>>,
    CheckedPost(s, r, _): CheckedPost<GetCredentials>,
) -> Response {
    let mut ev = event(&app, GetCredentials::NAME, &r.ip);
    let identity = &s.record.identity;
    ev.provider = Some(identity.provider.clone());
    ev.subject = Some(identity.subject.clone());
    let (Some(account), Some(set)) = (r.field("account"), r.field("permission_set")) else {
        return missing_assignment(&app, ev);
    };
    let admitted = match crate::authz::gate::admit_sign_in(&app, identity).await {
        Ok(a) => a,
        Err(e) => return gate_refused(&app, ev, e),
    };
    match crate::sts::credentials_for_assignment(&app, &admitted, account, set, &mut ev) {
        Ok((c, token)) => {
            ev.principal = Some(c.principal.arn());
            ev.access_key_id = Some(c.access_key_id.clone());
            let issue = super::issued::Issue {
                portal_session: Some(&s.key),
                identity,
                claims: &c,
                account,
                permission_set: set,
                how: super::issued::IssuedHow::CommandLine,
            };
            if let Err(e) = super::issued::record(app.store.as_ref(), issue).await {
                return refuse_internal(&app, ev, format!("recording the credentials: {e}"));
            }
            ev.outcome(Outcome::Allow);
            let expiration = chrono::DateTime::<chrono::Utc>::from_timestamp(c.expires_at, 0)
                .unwrap_or_default()
                .to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
            ev.expiration = Some(expiration.clone());
            app.audit.record(ev);
            page(CredentialsPage {
                who: identity.display(),
                csrf: &s.record.csrf,
                account,
                permission_set: set,
                expiration,
                access_key_id: &c.access_key_id,
                secret_access_key: &c.secret_access_key,
                session_token: &token,
                endpoint: app.config.public_url.as_str().trim_end_matches('/'),
                profile: format!("{account}_{set}"),
            })
        }
        Err(e) => {
            let explanation = explanation_of(&ev);
            let message = e.message.clone();
            let step_up = super::oidc::step_up_offer(&app, identity, set, &message);
            let now = app.clock.now().timestamp();
            // Refused for want of MFA: the reason in words for the person and the way on first;
            // the engine's explanation (the sign-in trust policy) only folded below.
            let wants_mfa = app
                .config
                .permission_sets
                .iter()
                .find(|p| p.name == set)
                .and_then(|p| {
                    super::console::mfa_satisfied(set, p.mfa, identity.mfa_time, now).err()
                });
            if let Some(why) = wants_mfa {
                ev.outcome(Outcome::Deny);
                ev.reason = Some(e.reason.clone());
                app.audit.record(ev);
                return step_up.unwrap_or_else(|| {
                    super::console::mfa_needed_page(
                        identity,
                        &s.record.csrf,
                        &why,
                        "ask for command line access again",
                        &super::resume::return_to(super::resume::Action::Credentials, account, set),
                        explanation,
                    )
                });
            }
            let denied = refuse_denied(&app, ev, &e);
            step_up.unwrap_or(denied)
        }
    }
}

/// The policy engine's explanation recorded in `ev`, for the person.
pub(super) fn explanation_of(ev: &AuditEvent) -> Option<String> {
    ev.explanation
        .as_ref()
        .and_then(|v| serde_json::to_string_pretty(v).ok())
}

/// Records `ev` as refused for a form that does not name both an account and a permission set.
pub(super) fn missing_assignment(app: &App, ev: AuditEvent) -> Response {
    refuse(
        app,
        ev,
        "account or permission_set missing".into(),
        PortalError::BadRequest("account and permission_set are required".into()),
    )
}

/// A sign-in the gate refused at the moment of minting: audited with the gate's reason; the
/// person signs in again (or, when the directory could not be read, tries again later).
pub(super) fn gate_refused(app: &App, ev: AuditEvent, e: crate::authz::gate::Refusal) -> Response {
    let err = if e.unavailable() {
        PortalError::Internal(e.to_string())
    } else {
        PortalError::SessionExpired
    };
    refuse(app, ev, format!("mint gate: {e}"), err)
}

/// One row of the sign-in history.
struct HistoryRow {
    time: String,
    ip: String,
    provider: String,
    mfa: &'static str,
    outcome: String,
}

#[derive(Template)]
#[template(path = "portal/history.html")]
struct HistoryPage<'a> {
    who: String,
    csrf: &'a str,
    rows: Vec<HistoryRow>,
}

/// The person's last 50 portal sign-ins from the audit log.
async fn history(State(app): State<Arc<App>>, SignedIn(s, _): SignedIn) -> Response {
    let identity = &s.record.identity;
    match history_rows(&app, identity).await {
        Ok(rows) => page(HistoryPage {
            who: identity.display(),
            csrf: &s.record.csrf,
            rows,
        }),
        Err(e) => PortalError::Store(e).into_response(),
    }
}

/// How long after a sign-in its MFA challenge may complete it (the pending session's limit).
const CHALLENGE_WINDOW_MS: i64 = 15 * 60 * 1000;

/// The person's last sign-ins, newest first: those that succeeded, and for a directory user the
/// attempts refused on its name (wrong password or code, locked). A sign-in that waited for the MFA
/// challenge shows MFA once the challenge passed.
async fn history_rows(
    app: &App,
    identity: &SignedInIdentity,
) -> std::result::Result<Vec<HistoryRow>, crate::store::StoreError> {
    app.audit.flush().await;
    let query = |action: &str, principal: String| AuditQuery {
        action: Some(action.into()),
        principal: Some(principal),
        limit: 50,
        ..AuditQuery::default()
    };
    let mut sign_ins = crate::audit::query(
        app.store.as_ref(),
        &query(SIGN_IN_ACTION, identity.display()),
    )
    .await?;
    if identity.provider == crate::config::LOCAL_PROVIDER {
        if let Some(d) = app.directory.as_deref() {
            if let Ok(u) = d.user(&identity.subject).await {
                let arn = u.arn(d.account());
                sign_ins.extend(
                    crate::audit::query(app.store.as_ref(), &query(SIGN_IN_ACTION, arn)).await?,
                );
            }
        }
    }
    sign_ins.sort_by(|a, b| b.time.cmp(&a.time));
    sign_ins.truncate(50);
    let challenges: Vec<i64> = crate::audit::query(
        app.store.as_ref(),
        &query(super::mfa::CHALLENGE_ACTION, identity.display()),
    )
    .await?
    .into_iter()
    .filter(|e| e.decision == "allow")
    .map(|e| millis(&e.time))
    .collect();
    Ok(sign_ins
        .into_iter()
        .map(|e| {
            let at = millis(&e.time);
            let challenged = e.decision == "allow"
                && e.mfa != Some(true)
                && challenges
                    .iter()
                    .any(|c| *c >= at && *c - at <= CHALLENGE_WINDOW_MS);
            HistoryRow {
                ip: e.source_ip.unwrap_or_default(),
                provider: e
                    .provider
                    .unwrap_or_else(|| crate::config::LOCAL_PROVIDER.into()),
                mfa: match (e.mfa, challenged) {
                    (Some(true), _) => "yes",
                    (_, true) => "yes, by the challenge",
                    _ => "no",
                },
                outcome: if e.decision == "allow" {
                    "signed in".into()
                } else {
                    "refused".into()
                },
                time: e.time,
            }
        })
        .collect())
}

fn millis(time: &str) -> i64 {
    chrono::DateTime::parse_from_rfc3339(time).map_or(0, |t| t.timestamp_millis())
}

/// Ends the session server-side (with `everywhere`, every session of the person). A `POST /logout`
/// carrying an SSO bearer token is the portal API's Logout instead (the AWS path is the same).
async fn sign_out(State(app): State<Arc<App>>, req: Request) -> Response {
    if app.config.sso.is_some() && crate::sso::portal_api::is_api_logout(req.headers()) {
        return crate::sso::portal_api::logout(State(app), req).await;
    }
    Handler::call(browser_sign_out, req, app).await
}

/// The browser's sign-out (also of a session waiting for the MFA challenge).
async fn browser_sign_out(
    State(app): State<Arc<App>>,
    CheckedPost(s, r, _): CheckedPost<SignOut>,
) -> Response {
    let mut ev = event(&app, SignOut::NAME, &r.ip);
    let identity = &s.record.identity;
    ev.principal = Some(identity.display());
    ev.provider = Some(identity.provider.clone());
    ev.subject = Some(identity.subject.clone());
    let result = if r.field("everywhere") == Some("1") {
        session::delete_all_of(app.store.as_ref(), &identity.provider, &identity.subject)
            .await
            .map(|n| format!("signed out of {n} sessions"))
    } else {
        session::delete(app.store.as_ref(), &s.key)
            .await
            .map(|()| "signed out".to_string())
    };
    match result {
        Ok(reason) => {
            ev.outcome(Outcome::Allow);
            ev.reason = Some(reason);
            app.audit.record(ev);
            with_cookies(
                Redirect::to("/login").into_response(),
                &[session::clear_cookie(SESSION_COOKIE)],
            )
        }
        Err(e) => e.into_response(),
    }
}

async fn script() -> Response {
    (
        [(header::CONTENT_TYPE, "text/javascript; charset=utf-8")],
        Body::from(include_str!("../../static/portal.js")),
    )
        .into_response()
}
