//! "Open console" on the portal home and rolegate's own console page. Opening a console demands
//! the MFA the permission set requires (else a page that starts the MFA step), issues credentials
//! on the command line access path, and signs them in through the federation endpoint's sign-in
//! token. The console page shows who the console session is, the policies in force, its expiry,
//! and a policy simulator answered by the policy engine.
//!
//! Owns: the open-console form handler, the console page, the simulator form, console sign-out.
//! Must not know: how sign-in tokens and console sessions are stored (see
//! [`super::federation`]), how MFA is performed.

use super::extract::{form_action, CheckedPost, FormAction, PortalRequest};
use super::federation::{self, load_console, Console, NoConsole, CONSOLE_COOKIE, CONSOLE_PATH};
use super::pages::{event, fail, missing_assignment, page, refuse, refuse_denied, with_cookies};
use super::session;
use super::{error_page, PortalError};
use crate::app::App;
use crate::audit::Outcome;
use crate::authz::decide::{decide, Question};
use crate::config::MfaRequirement;
use crate::credentials::{same_token, SessionPrincipal};
use crate::policy::ContextValue;
use askama::Template;
use axum::extract::{FromRequest, Request, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use std::marker::PhantomData;
use std::sync::Arc;

/// Audit action of "Open console".
pub const OPEN_ACTION: &str = "portal:OpenConsole";
/// Audit action of a simulation on the console page.
pub const SIMULATE_ACTION: &str = "console:SimulatePolicy";
/// Audit action of console sign-out.
pub const SIGN_OUT_ACTION: &str = "console:SignOut";
/// Audit action of a console page refused because its session ended.
pub const VIEW_ACTION: &str = "console:View";
/// Most context keys one simulation may supply.
pub const MAX_CONTEXT_KEYS: usize = 20;

form_action!(
    /// "Open console" on the portal home.
    OpenConsole = OPEN_ACTION
);
form_action!(
    /// The simulator form of the console page.
    SimulatePolicy = SIMULATE_ACTION
);
form_action!(
    /// Console sign-out.
    ConsoleSignOut = SIGN_OUT_ACTION
);

/// Whether a sign-in's MFA satisfies a permission set's requirement at `now`; the refusal says
/// why not, in words for the person.
pub fn mfa_satisfied(
    set: &str,
    required: MfaRequirement,
    mfa_time: Option<i64>,
    now: i64,
) -> Result<(), String> {
    // The rule itself is the challenge page's; this adds the words.
    if super::mfa::satisfies(required, mfa_time, now) {
        return Ok(());
    }
    match (required, mfa_time) {
        (MfaRequirement::None, _) | (MfaRequirement::Required, Some(_)) => Ok(()),
        (MfaRequirement::Required, None) => Err(format!(
            "Permission set {set} requires MFA, and this sign-in did not use MFA."
        )),
        (MfaRequirement::Within(s), None) => Err(format!(
            "Permission set {set} requires MFA within the last {} minutes, and this sign-in did \
             not use MFA.",
            s / 60
        )),
        (MfaRequirement::Within(s), Some(t)) => Err(format!(
            "Permission set {set} requires MFA within the last {} minutes; your last MFA was {} \
             minutes ago.",
            s / 60,
            (now - t) / 60
        )),
    }
}

#[derive(Template)]
#[template(path = "portal/console_mfa.html")]
struct MfaNeededPage<'a> {
    who: String,
    csrf: &'a str,
    message: &'a str,
    /// What the person does after the challenge ("open the console again").
    again: &'a str,
    mfa_link: String,
    /// The policy engine's explanation, folded below the way on.
    explanation: Option<String>,
}

/// The page of an action refused for want of (fresh) MFA (403): `message` in words for the
/// person, the challenge coming back to `return_to` first, the engine's `explanation` folded.
pub(super) fn mfa_needed_page(
    identity: &super::SignedInIdentity,
    csrf: &str,
    message: &str,
    again: &str,
    return_to: &str,
    explanation: Option<String>,
) -> Response {
    let mut resp = page(MfaNeededPage {
        who: identity.display(),
        csrf,
        message,
        again,
        mfa_link: super::mfa::challenge_url(return_to),
        explanation,
    });
    *resp.status_mut() = StatusCode::FORBIDDEN;
    resp
}

#[derive(Template)]
#[template(path = "portal/console_continue.html")]
struct ContinuePage<'a> {
    who: String,
    csrf: &'a str,
    link: &'a str,
    destination: &'a str,
}

/// `POST /portal/console`: opens the console of one permission set in one account.
pub(super) async fn open(
    State(app): State<Arc<App>>,
    CheckedPost(s, r, _): CheckedPost<OpenConsole>,
) -> Response {
    let mut ev = event(&app, OPEN_ACTION, &r.ip);
    let identity = &s.record.identity;
    ev.provider = Some(identity.provider.clone());
    ev.subject = Some(identity.subject.clone());
    ev.mfa = Some(identity.mfa_time.is_some());
    let (Some(account), Some(set_name)) = (r.field("account"), r.field("permission_set")) else {
        return missing_assignment(&app, ev);
    };
    ev.resource = Some(format!("{account}/{set_name}"));
    let evaluation = match super::assignments_of(&app, identity) {
        Ok(e) => e,
        Err(e) => return e.into_response(),
    };
    let set = app
        .config
        .permission_sets
        .iter()
        .find(|p| p.name == set_name);
    let assigned = evaluation
        .assignments
        .iter()
        .any(|a| a.account == account && a.permission_set == set_name);
    let Some(set) = set.filter(|_| assigned) else {
        return refuse(
            &app,
            ev,
            format!(
                "no assignment rule gives {} at {} permission set {set_name} in {account}",
                identity.subject, identity.provider
            ),
            PortalError::Denied {
                message: format!(
                    "Not authorized to use permission set {set_name} in account {account}"
                ),
                explanation: None,
            },
        );
    };
    let now = app.clock.now().timestamp();
    if let Err(why) = mfa_satisfied(set_name, set.mfa, identity.mfa_time, now) {
        ev.outcome(Outcome::Deny);
        ev.error_code = Some("MfaRequired".into());
        ev.reason = Some(match identity.mfa_time {
            Some(t) => format!("MFA at {} is {} s old: {why}", t, now - t),
            None => format!("no MFA in this sign-in: {why}"),
        });
        app.audit.record(ev);
        // Signed in through an OIDC or SAML provider: the MFA step is a new sign-in there.
        if let Some(step_up) = super::oidc::step_up_offer(&app, identity, set_name, &why) {
            return step_up;
        }
        let back = super::resume::return_to(super::resume::Action::Console, account, set_name);
        return mfa_needed_page(
            identity,
            &s.record.csrf,
            &why,
            "open the console again",
            &back,
            None,
        );
    }
    let admitted = match crate::authz::gate::admit_sign_in(&app, identity).await {
        Ok(a) => a,
        Err(e) => return super::pages::gate_refused(&app, ev, e),
    };
    let (claims, token) =
        match crate::sts::credentials_for_assignment(&app, &admitted, account, set_name, &mut ev) {
            Ok(v) => v,
            Err(e) => return refuse_denied(&app, ev, &e),
        };
    ev.principal = Some(claims.principal.arn());
    ev.access_key_id = Some(claims.access_key_id.clone());
    ev.expiration = Some(crate::clock::rfc3339_secs(claims.expires_at));
    let issue = super::issued::Issue {
        portal_session: Some(&s.key),
        identity,
        claims: &claims,
        account,
        permission_set: set_name,
        how: super::issued::IssuedHow::ConsoleSignIn,
    };
    if let Err(e) = super::issued::record(app.store.as_ref(), issue).await {
        return fail(&app, ev, format!("recording the credentials: {e}"), e);
    }
    let signin = match federation::mint_signin_token(&app, &token, claims.expires_at, now).await {
        Ok(t) => t,
        Err(e) => return fail(&app, ev, e.to_string(), e),
    };
    let destination = set.relay_state.as_deref().unwrap_or(CONSOLE_PATH);
    ev.outcome(Outcome::Allow);
    ev.reason = Some(format!("console sign-in to {destination}"));
    app.audit.record(ev);
    let link = federation::login_path(&app.config, &signin, destination);
    if destination.starts_with('/') {
        Redirect::to(&link).into_response()
    } else {
        // A form post may redirect only to our own origin (CSP form-action): the browser follows
        // a link to the sign-in instead, which then leaves for the other site.
        page(ContinuePage {
            who: identity.display(),
            csrf: &s.record.csrf,
            link: &link,
            destination,
        })
    }
}

/// One policy in force on the console page.
pub struct PolicyRow {
    /// Its role in the decision.
    pub scope: &'static str,
    /// Its label (inline policy name or managed policy ARN).
    pub label: String,
    /// How many statements it has.
    pub statements: usize,
    /// Its statement ids, those that have one.
    pub sids: String,
}

/// What the simulator answered.
pub struct SimView {
    /// Allowed or not.
    pub allowed: bool,
    /// `Allow`, `ImplicitDeny` or `ExplicitDeny`.
    pub effect: String,
    /// The engine's explanation.
    pub explanation: String,
}

/// rolegate's console page.
#[derive(Template)]
#[template(path = "portal/console.html")]
pub struct ConsolePage {
    /// The session's ARN.
    pub arn: String,
    /// Its account.
    pub account: String,
    /// The role behind it, for role sessions.
    pub role_arn: Option<String>,
    /// The role session name, for role sessions.
    pub session_name: Option<String>,
    /// `SourceIdentity`, if set.
    pub source_identity: Option<String>,
    /// When the console session ends (RFC 3339).
    pub expires: String,
    /// Minutes left.
    pub minutes_left: i64,
    /// The policies in force.
    pub policies: Vec<PolicyRow>,
    /// Whether there is a session policy (then only what it allows too is allowed).
    pub has_session_policy: bool,
    /// The console's CSRF token.
    pub csrf: String,
    /// The simulator form's values.
    pub action: String,
    /// The simulator form's values.
    pub resource: String,
    /// The simulator form's values.
    pub context: String,
    /// The simulator's answer, after a simulation.
    pub sim: Option<SimView>,
    /// A refusal of the simulation form.
    pub sim_error: Option<String>,
}

fn console_page(app: &App, c: &Console, policies: &crate::authz::SessionPolicies) -> ConsolePage {
    let now = app.clock.now().timestamp();
    let claims = &c.claims;
    let (role_arn, session_name) = match &claims.principal {
        SessionPrincipal::AssumedRole { session_name, .. } => {
            (claims.principal.role_arn(), Some(session_name.clone()))
        }
        _ => (None, None),
    };
    let row = |scope, label: &str, p: &crate::policy::Policy| PolicyRow {
        scope,
        label: label.to_string(),
        statements: p.statement_count(),
        sids: p.sids().flatten().collect::<Vec<_>>().join(", "),
    };
    let mut rows: Vec<PolicyRow> = policies
        .identity
        .iter()
        .map(|(l, p)| row("Identity policy", l, p))
        .collect();
    if let Some((l, p)) = &policies.boundary {
        rows.push(row("Permissions boundary", l, p));
    }
    for (l, p) in policies.session.iter().flatten() {
        rows.push(row("Session policy", l, p));
    }
    ConsolePage {
        arn: claims.principal.arn(),
        account: claims.principal.account().to_string(),
        role_arn,
        session_name,
        source_identity: claims.source_identity.clone(),
        expires: crate::clock::rfc3339_secs(c.record.expires_at),
        minutes_left: (c.record.expires_at - now).max(0) / 60,
        policies: rows,
        has_session_policy: policies.session.is_some(),
        csrf: c.record.csrf.clone(),
        action: String::new(),
        resource: String::new(),
        context: String::new(),
        sim: None,
        sim_error: None,
    }
}

/// The console session of a request, or the page saying there is none.
async fn require_console(app: &App, r: &PortalRequest) -> Result<Console, Response> {
    match load_console(app, &r.headers).await {
        Ok(c) => Ok(c),
        Err(NoConsole::Missing) => Err(error_page(
            StatusCode::UNAUTHORIZED,
            "No console session",
            "Open the console from your accounts in the portal.",
            "/portal",
            "Your accounts",
        )),
        Err(NoConsole::Expired(why)) => {
            let mut ev = event(app, VIEW_ACTION, &r.ip);
            ev.outcome(Outcome::Deny);
            ev.error_code = Some("SessionExpired".into());
            ev.reason = Some(why);
            app.audit.record(ev);
            Err(with_cookies(
                error_page(
                    StatusCode::UNAUTHORIZED,
                    "Console session expired",
                    "Your console session has ended. Open the console again from your accounts.",
                    "/portal",
                    "Your accounts",
                ),
                &[session::clear_cookie(CONSOLE_COOKIE)],
            ))
        }
        Err(NoConsole::Failed(e)) => Err(e.into_response()),
    }
}

async fn policies_of(app: &App, c: &Console) -> Result<crate::authz::SessionPolicies, PortalError> {
    crate::authz::SessionPolicies::for_session(app, &c.claims)
        .await
        .map_err(|e| PortalError::Internal(format!("loading the session's policies: {e}")))
}

/// The console session of a request, or the page saying there is none.
pub(super) struct ConsoleSession(Console);

impl FromRequest<Arc<App>> for ConsoleSession {
    type Rejection = Response;

    async fn from_request(req: Request, app: &Arc<App>) -> Result<Self, Response> {
        let r = PortalRequest::from_request(req, app)
            .await
            .map_err(IntoResponse::into_response)?;
        Ok(Self(require_console(app, &r).await?))
    }
}

/// A form of the console page, checked: our Origin, a live console session, its CSRF token. Each
/// refusal is audited as `A` with its reason.
pub(super) struct ConsolePost<A>(Console, PortalRequest, PhantomData<A>);

impl<A: FormAction> FromRequest<Arc<App>> for ConsolePost<A> {
    type Rejection = Response;

    async fn from_request(req: Request, app: &Arc<App>) -> Result<Self, Response> {
        let r = PortalRequest::from_request(req, app)
            .await
            .map_err(IntoResponse::into_response)?;
        let c = require_console_post(app, &r, A::NAME).await?;
        Ok(Self(c, r, PhantomData))
    }
}

/// `GET /console`.
pub(super) async fn view(
    State(app): State<Arc<App>>,
    ConsoleSession(c): ConsoleSession,
) -> Response {
    match policies_of(&app, &c).await {
        Ok(p) => page(console_page(&app, &c, &p)),
        Err(e) => e.into_response(),
    }
}

/// The console's CSRF and Origin checks for its forms.
async fn require_console_post(
    app: &App,
    r: &PortalRequest,
    action: &str,
) -> Result<Console, Response> {
    let ev = event(app, action, &r.ip);
    if let Err(why) = session::origin_ok(&r.headers, &app.config.public_url) {
        return Err(refuse(app, ev, why.clone(), PortalError::Forged(why)));
    }
    let c = require_console(app, r).await?;
    match r.field("csrf") {
        Some(t) if same_token(t, &c.record.csrf) => Ok(c),
        _ => {
            let mut ev = ev;
            ev.principal = Some(c.claims.principal.arn());
            Err(refuse(
                app,
                ev,
                "CSRF token missing or wrong".into(),
                PortalError::Forged("csrf".into()),
            ))
        }
    }
}

/// The simulator's request: action, resource and supplied context keys, checked.
fn simulation_input(
    action: &str,
    resource: &str,
    context: &str,
) -> Result<Vec<(String, ContextValue)>, String> {
    if !crate::policy::is_action_name(action) {
        return Err("The action must be of the form service:Action, like s3:GetObject.".into());
    }
    if resource.is_empty()
        || resource.len() > 2048
        || resource.chars().any(char::is_control)
        || (resource != "*" && !resource.starts_with("arn:"))
    {
        return Err("The resource must be * or an ARN of at most 2048 characters.".into());
    }
    let mut keys: Vec<(String, Vec<String>)> = Vec::new();
    for line in context.lines().map(str::trim).filter(|l| !l.is_empty()) {
        let Some((k, v)) = line.split_once('=') else {
            return Err(format!(
                "Context line {:?} is not key=value.",
                line.chars().take(80).collect::<String>()
            ));
        };
        let (k, v) = (k.trim(), v.trim());
        if k.is_empty() || k.len() > 256 || !k.contains(':') || v.len() > 1024 {
            return Err(format!(
                "Context key {:?} must be a prefix:name key of at most 256 characters with a value \
                 of at most 1024.",
                k.chars().take(80).collect::<String>()
            ));
        }
        match keys.iter_mut().find(|(x, _)| x.eq_ignore_ascii_case(k)) {
            Some((_, vs)) => vs.push(v.to_string()),
            None => keys.push((k.to_string(), vec![v.to_string()])),
        }
    }
    if keys.len() > MAX_CONTEXT_KEYS {
        return Err(format!("At most {MAX_CONTEXT_KEYS} context keys."));
    }
    Ok(keys
        .into_iter()
        .map(|(k, mut vs)| {
            let v = if vs.len() == 1 {
                ContextValue::Single(vs.remove(0))
            } else {
                ContextValue::Multi(vs)
            };
            (k, v)
        })
        .collect())
}

/// `POST /console/simulate`: what the policy engine decides for the console's session on one
/// action and resource, with the given context keys over the session's own.
pub(super) async fn simulate(
    State(app): State<Arc<App>>,
    ConsolePost(c, r, _): ConsolePost<SimulatePolicy>,
) -> Response {
    let policies = match policies_of(&app, &c).await {
        Ok(p) => p,
        Err(e) => return e.into_response(),
    };
    let mut out = console_page(&app, &c, &policies);
    out.action = r.field("action").unwrap_or("").trim().to_string();
    out.resource = r.field("resource").unwrap_or("").trim().to_string();
    out.context = r.field("context").unwrap_or("").to_string();
    let mut ev = event(&app, SIMULATE_ACTION, &r.ip);
    ev.principal = Some(c.claims.principal.arn());
    ev.access_key_id = Some(c.claims.access_key_id.clone());
    ev.resource = Some(out.resource.chars().take(2048).collect());
    let supplied = simulation_input(&out.action, &out.resource, &out.context).and_then(|s| {
        // The session's own keys are what they are: a simulation of this session cannot set them.
        match s
            .iter()
            .find(|(k, _)| crate::authz::context::reserved(k, &app.config, Some(&c.claims)))
        {
            Some((k, _)) => Err(format!(
                "context key {k} is set by rolegate from your session and request; it cannot be supplied"
            )),
            None => Ok(s),
        }
    });
    let supplied = match supplied {
        Ok(s) => s,
        Err(why) => {
            ev.outcome(Outcome::Deny);
            ev.error_code = Some("InvalidInput".into());
            ev.reason = Some(why.clone());
            app.audit.record(ev);
            out.sim_error = Some(why);
            let mut resp = page(out);
            *resp.status_mut() = StatusCode::BAD_REQUEST;
            return resp;
        }
    };
    let ip =
        r.ip.parse()
            .unwrap_or(std::net::IpAddr::from([127, 0, 0, 1]));
    let mut q = Question::new(&c.claims, &out.action, &out.resource)
        .from_address(ip, app.config.public_url.scheme() == "https");
    q.facts = supplied;
    let verdict = match decide(&app, q).await {
        Ok(v) => v,
        Err(e) => {
            return PortalError::Internal(format!("loading the session's policies: {e}"))
                .into_response()
        }
    };
    let (decision, explanation) = (&verdict.decision, verdict.explain());
    ev.outcome(Outcome::Allow);
    ev.reason = Some(format!(
        "simulated {} on {}: {}",
        out.action, out.resource, decision.effect
    ));
    app.audit.record(ev);
    out.sim = Some(SimView {
        allowed: verdict.allowed(),
        effect: decision.effect.to_string(),
        explanation: explanation.to_string(),
    });
    page(out)
}

/// `POST /console/logout`: ends the console session (the portal session stays).
pub(super) async fn sign_out(
    State(app): State<Arc<App>>,
    ConsolePost(c, r, _): ConsolePost<ConsoleSignOut>,
) -> Response {
    let mut ev = event(&app, SIGN_OUT_ACTION, &r.ip);
    ev.principal = Some(c.claims.principal.arn());
    ev.access_key_id = Some(c.claims.access_key_id.clone());
    if let Err(e) = federation::end_console(&app, &c.key).await {
        return e.into_response();
    }
    ev.outcome(Outcome::Allow);
    ev.reason = Some("console signed out".into());
    app.audit.record(ev);
    with_cookies(
        Redirect::to("/portal").into_response(),
        &[session::clear_cookie(CONSOLE_COOKIE)],
    )
}
