//! The sign-in security page (`/portal/security`): the person's MFA methods and recovery codes, and
//! what every change made from it starts with.

use super::totp::enrolment_is_ours;
use super::{
    challenge_url, local_user, person_event, with_status, FRESH_MFA_SECONDS, SECURITY_PATH,
};
use crate::app::App;
use crate::audit::{AuditEvent, Outcome};
use crate::idp::local::{Directory, MfaDevice, User};
use crate::portal::extract::{BackHere, CheckedPost, FormAction, PortalRequest, SignedIn};
use crate::portal::pages::{page, refuse};
use crate::portal::session::Session;
use crate::portal::{recovery, PortalError};
use askama::Template;
use axum::extract::{FromRequest, Request, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use std::marker::PhantomData;
use std::sync::Arc;

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
    /// Why security keys are off on this server, instead of the link to manage them.
    keys_off: Option<String>,
}

fn date(t: i64) -> String {
    chrono::DateTime::<chrono::Utc>::from_timestamp(t, 0)
        .unwrap_or_default()
        .format("%Y-%m-%d %H:%M UTC")
        .to_string()
}

pub(super) async fn render_security(app: &App, s: &Session, message: Option<&str>) -> Response {
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
        keys_off: crate::portal::security_keys_off(app),
    })
}

/// The security page ([`SECURITY_PATH`]).
pub(super) async fn security_page(
    State(app): State<Arc<App>>,
    SignedIn(s, _): SignedIn<BackHere>,
) -> Response {
    render_security(&app, &s, None).await
}

/// A form of the security page, checked as a [`CheckedPost`], of a directory user: the session,
/// the user, the directory, the audit event of `A` naming the person, and the request.
pub(super) struct SecurityForm<A> {
    pub(super) s: Session,
    pub(super) user: User,
    pub(super) ev: AuditEvent,
    pub(super) d: Arc<Directory>,
    pub(super) r: PortalRequest,
    action: PhantomData<A>,
}

impl<A: FormAction> FromRequest<Arc<App>> for SecurityForm<A> {
    type Rejection = Response;

    async fn from_request(req: Request, app: &Arc<App>) -> Result<Self, Response> {
        let CheckedPost(s, r, _) = CheckedPost::<A>::from_request(req, app).await?;
        let ev = person_event(app, A::NAME, &r, &s);
        match local_user(app, &s.record.identity).await {
            // A directory user was found, so there is a directory.
            Ok(Some(user)) => match app.directory.clone() {
                Some(d) => Ok(Self {
                    s,
                    user,
                    ev,
                    d,
                    r,
                    action: PhantomData,
                }),
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
}

/// Sends a person whose MFA is not fresh to the challenge (audited as refused).
pub(super) fn needs_fresh_mfa(app: &App, mut ev: AuditEvent, what: &str) -> Response {
    ev.outcome(Outcome::Deny);
    ev.reason = Some(format!(
        "{what} needs an MFA within the last {} minutes",
        FRESH_MFA_SECONDS / 60
    ));
    app.audit.record(ev);
    Redirect::to(&challenge_url(SECURITY_PATH)).into_response()
}

/// A change the state of the account does not allow: audited as refused for `reason`, answered
/// `409 Conflict` with the security page showing `message`.
pub(super) async fn refuse_on_page(
    app: &App,
    s: &Session,
    mut ev: AuditEvent,
    reason: String,
    message: &str,
) -> Response {
    ev.outcome(Outcome::Deny);
    ev.reason = Some(reason);
    app.audit.record(ev);
    with_status(
        StatusCode::CONFLICT,
        render_security(app, s, Some(message)).await,
    )
}
