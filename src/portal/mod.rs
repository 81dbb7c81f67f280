//! The browser portal: the sign-in start page, server-side sessions, the portal home listing each
//! account and the permission sets the assignment rules give the person, command line access
//! (temporary credentials for one permission set) and the console (see [`console`] and
//! [`federation`]). Every sign-in method ends in one seam, [`start_session`], which takes a provider-neutral [`SignedInIdentity`]: the local directory's
//! password (+TOTP) form calls it today, and any verified federated identity (OIDC, SAML) calls it
//! the same way.
//!
//! Owns: HTML pages (askama), cookies, CSRF tokens, the Origin check, `return_to` rules. Must not
//! know: XML, SigV4, how a provider proves an identity (it is handed one already verified).

mod approve;
#[cfg(test)]
mod approve_tests;
mod console;
#[cfg(test)]
mod console_tests;
#[cfg(test)]
mod credentials_tests;
mod extract;
#[cfg(test)]
mod extract_tests;
pub mod federation;
pub mod issued;
#[cfg(test)]
mod login_tests;
pub mod mfa;
#[cfg(test)]
mod mfa_tests;
mod oidc;
mod pages;
pub mod recovery;
mod resume;
#[cfg(test)]
mod security_keys_tests;
#[cfg(test)]
mod self_service_tests;
pub mod session;
#[cfg(test)]
mod tests;

use crate::app::App;
use crate::audit::{AuditEvent, Outcome};
use crate::store::StoreError;
use askama::Template;
use axum::http::StatusCode;
use axum::response::{Html, IntoResponse, Response};
use axum::Router;
use std::sync::Arc;

pub use console::mfa_satisfied;
pub(crate) use extract::{checked_post, require_session, PortalRequest};
pub(crate) use pages::page;
pub use pages::security_keys::{offers_security_key, security_keys_off};
pub use pages::{home_page, routes, sign_in_verified_elsewhere, AccountView, HomePage, SetView};

/// Referrer policy of portal pages: URLs never leave for other sites, and form posts carry our
/// `Origin` (under `no-referrer` browsers send `Origin: null`).
pub const REFERRER_POLICY: &str = "same-origin";

/// Audit action of a portal sign-in.
pub const SIGN_IN_ACTION: &str = "portal:SignIn";

/// Errors of the portal, each shown as an HTML page with a coarse message (details go to the
/// audit log and debug logs).
#[derive(Debug, thiserror::Error)]
pub enum PortalError {
    /// No session, or the session timed out.
    #[error("session expired")]
    SessionExpired,
    /// A form without a valid CSRF token or from another origin.
    #[error("request refused: {0}")]
    Forged(String),
    /// The request is malformed.
    #[error("bad request: {0}")]
    BadRequest(String),
    /// The session waits for the MFA challenge (the person has MFA but signed in without it):
    /// the browser is sent to the challenge.
    #[error("MFA challenge not yet passed in this session")]
    MfaPending,
    /// The person may not do this without (fresh) MFA; the page links to the challenge, which
    /// comes back to `return_to`.
    #[error("MFA needed: {message}")]
    MfaNeeded {
        /// What the person is told.
        message: String,
        /// The engine's explanation.
        explanation: Option<String>,
        /// Where the challenge returns to.
        return_to: String,
    },
    /// Sign-in failed (wrong password, MFA failed, locked).
    #[error("sign-in failed: {0}")]
    SignInFailed(String),
    /// The person may not do this; the policy engine's explanation when there is one.
    #[error("access denied: {message}")]
    Denied {
        /// What the person is told.
        message: String,
        /// The engine's explanation.
        explanation: Option<String>,
    },
    /// The store failed.
    #[error("store: {0}")]
    Store(#[from] StoreError),
    /// Anything else that should not happen.
    #[error("internal: {0}")]
    Internal(String),
}

/// Result of portal operations.
pub type Result<T> = std::result::Result<T, PortalError>;

#[derive(Template)]
#[template(path = "portal/error.html")]
struct ErrorPage<'a> {
    title: &'a str,
    message: &'a str,
    explanation: Option<&'a str>,
    next: &'a str,
    next_label: &'a str,
}

/// A page with a title, a message and one link on, with `status`.
fn error_page(
    status: StatusCode,
    title: &str,
    message: &str,
    next: &str,
    next_label: &str,
) -> Response {
    let page = ErrorPage {
        title,
        message,
        explanation: None,
        next,
        next_label,
    };
    match page.render() {
        Ok(html) => (status, [("referrer-policy", REFERRER_POLICY)], Html(html)).into_response(),
        Err(_) => status.into_response(),
    }
}

impl IntoResponse for PortalError {
    fn into_response(self) -> Response {
        if matches!(self, PortalError::MfaPending) {
            return axum::response::Redirect::to(mfa::CHALLENGE_PATH).into_response();
        }
        let challenge;
        let (status, title, message, next, next_label) = match &self {
            // Answered above with the redirect; the page is its fallback wording.
            PortalError::MfaPending => (
                StatusCode::SEE_OTHER,
                "MFA needed",
                "Verify with MFA to continue.",
                mfa::CHALLENGE_PATH,
                "Verify",
            ),
            PortalError::MfaNeeded {
                message, return_to, ..
            } => {
                challenge = mfa::challenge_url(return_to);
                (
                    StatusCode::FORBIDDEN,
                    "MFA needed",
                    message.as_str(),
                    challenge.as_str(),
                    "Verify with MFA",
                )
            }
            PortalError::SessionExpired => (
                StatusCode::UNAUTHORIZED,
                "Session expired",
                "Your session has ended. Sign in again to continue.",
                "/login",
                "Sign in",
            ),
            PortalError::Forged(_) => (
                StatusCode::FORBIDDEN,
                "Request refused",
                "This form was not sent from a rolegate page, or it is too old. Go back, reload the page and try again.",
                "/portal",
                "Back to your accounts",
            ),
            PortalError::BadRequest(_) => (
                StatusCode::BAD_REQUEST,
                "Bad request",
                "The request was not understood.",
                "/portal",
                "Back to your accounts",
            ),
            PortalError::SignInFailed(_) => (
                StatusCode::UNAUTHORIZED,
                "Sign-in failed",
                "The user name, password or MFA code is wrong, or sign-in is locked for a while after too many failures.",
                "/login",
                "Try again",
            ),
            PortalError::Denied { message, .. } => (
                StatusCode::FORBIDDEN,
                "Access denied",
                message.as_str(),
                "/portal",
                "Back to your accounts",
            ),
            PortalError::Store(_) | PortalError::Internal(_) => (
                StatusCode::SERVICE_UNAVAILABLE,
                "Temporarily unavailable",
                "rolegate cannot complete this request right now. Try again in a moment.",
                "/portal",
                "Back to your accounts",
            ),
        };
        if status.is_server_error() {
            tracing::error!(error = %self, "portal request failed");
        }
        let explanation = match &self {
            PortalError::Denied { explanation, .. }
            | PortalError::MfaNeeded { explanation, .. } => explanation.as_deref(),
            _ => None,
        };
        let page = ErrorPage {
            title,
            message,
            explanation,
            next,
            next_label,
        };
        match page.render() {
            Ok(html) => {
                (status, [("referrer-policy", REFERRER_POLICY)], Html(html)).into_response()
            }
            Err(_) => status.into_response(),
        }
    }
}

pub use crate::authz::gate::SignedInIdentity;

/// Starts a portal session for a verified identity: applies the assignment rules and records the
/// login (what no rule gives any more is gone), stores a new session under a new random id (any
/// session the browser had before is not reused: no fixation), and audits the sign-in. Returns the
/// cookie value of the new session.
pub async fn start_session(
    app: &App,
    identity: SignedInIdentity,
    ip: &str,
    ev: &mut AuditEvent,
) -> Result<String> {
    start_session_with(app, identity, ip, ev, false).await
}

/// [`start_session`] for a person who has an MFA method but did not use it in this sign-in when
/// `mfa_pending`: the session then waits for the MFA challenge (see [`mfa`]).
pub async fn start_session_with(
    app: &App,
    identity: SignedInIdentity,
    ip: &str,
    ev: &mut AuditEvent,
    mfa_pending: bool,
) -> Result<String> {
    ev.provider = Some(identity.provider.clone());
    ev.subject = Some(identity.subject.clone());
    ev.principal = Some(identity.display());
    ev.mfa = Some(identity.mfa_time.is_some());
    let evaluation = assignments_of(app, &identity)?;
    let now = app.clock.now().timestamp();
    crate::mapping::record_login(app.store.as_ref(), &evaluation, now)
        .await
        .map_err(|e| PortalError::Internal(e.to_string()))?;
    let token = session::create_with(
        app.store.as_ref(),
        identity,
        ip.to_string(),
        now,
        mfa_pending,
    )
    .await?;
    ev.outcome(Outcome::Allow);
    Ok(token)
}

/// What the assignment rules give `identity` now (with its provisioned groups, if any).
fn assignments_of(app: &App, identity: &SignedInIdentity) -> Result<crate::mapping::Evaluation> {
    let provisioned = app
        .provisioned
        .groups(&identity.provider, &identity.subject);
    evaluate_with(&app.config, identity, provisioned.as_deref())
}

/// What the assignment rules of `config` give `identity`, whose provisioned groups are
/// `provisioned`.
fn evaluate_with(
    config: &crate::config::Config,
    identity: &SignedInIdentity,
    provisioned: Option<&[String]>,
) -> Result<crate::mapping::Evaluation> {
    crate::mapping::evaluate(
        config,
        &crate::mapping::Subject {
            provider: &identity.provider,
            subject: &identity.subject,
            claims: &identity.claims,
            local_groups: &identity.local_groups,
            provisioned_groups: provisioned,
        },
    )
    .map_err(|e| PortalError::Internal(e.to_string()))
}

/// Portal settings in force (`None` when the portal is off).
fn settings(app: &App) -> Option<&crate::config::PortalSettings> {
    app.config.portal.as_ref()
}

/// Deletes timed-out portal sessions, security-key ceremonies nobody finished, expired pending
/// OIDC sign-ins, sign-in tokens, console sessions, records of issued credentials and SSO records
/// (tokens, device and authorization codes, expired clients); for the background clean-up. Returns
/// how many sessions, SSO records, sign-in tokens and console sessions.
pub async fn purge_expired(app: &App) -> Result<usize> {
    let Some(s) = settings(app) else {
        return Ok(0);
    };
    if let Some(d) = app.directory.as_ref().filter(|d| d.webauthn_enabled()) {
        d.purge_expired_ceremonies()
            .await
            .map_err(|e| PortalError::Internal(e.to_string()))?;
    }
    oidc::purge_expired(app).await?;
    let now = app.clock.now().timestamp();
    let sessions =
        session::purge_expired(app.store.as_ref(), now, s.idle_seconds, s.max_seconds).await?;
    let sso = if app.config.sso.is_some() {
        crate::sso::purge_expired(app, now)
            .await
            .map_err(|e| PortalError::Internal(e.reason))?
    } else {
        0
    };
    issued::purge_expired(app.store.as_ref(), now).await?;
    Ok(sessions + sso + federation::purge_expired(app, now).await?)
}

/// The portal's routes (empty when `[portal]` is not configured), with the approval pages of
/// command line sign-in when `[sso]` is.
pub fn router(app: &App) -> Router<Arc<App>> {
    match (settings(app), &app.config.sso) {
        (Some(_), Some(_)) => routes().merge(approve::routes()),
        (Some(_), None) => routes(),
        _ => Router::new(),
    }
}
