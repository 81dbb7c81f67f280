//! What every portal handler of a kind starts with, as axum extractors, so that a handler's
//! signature says what it needs and its body starts with its own work:
//! - [`PortalRequest`]: the request taken apart (client address, query, form); a parameter given
//!   twice is refused.
//! - [`SignedIn`]: for a page, the live session of a signed-in person, rechecked against the gate.
//!   Its [`PageRule`] says whether a session waiting for the MFA challenge counts and where a
//!   browser without a session is sent.
//! - [`CheckedPost`]: for a state-changing form of a signed-in person, our Origin, a live session
//!   and its CSRF token. Its [`FormAction`] names the audit action of each refusal and says whether
//!   a session waiting for the MFA challenge may send the form.
//!
//! Owns: the order of those checks and their refusals (pages, redirects, audit events). Must not
//! know: what a handler does with the session.

use super::pages::{event, refuse, to_login};
use super::session::{self, Session, SESSION_COOKIE};
use super::{settings, PortalError, Result};
use crate::app::App;
use crate::audit::{AuditEvent, Outcome};
use axum::extract::{ConnectInfo, FromRequest, FromRequestParts, Request};
use axum::http::request::Parts;
use axum::http::{HeaderMap, Method};
use axum::response::{IntoResponse, Response};
use std::collections::HashMap;
use std::marker::PhantomData;
use std::net::SocketAddr;
use std::sync::Arc;

/// Largest form body accepted.
const FORM_LIMIT: usize = 16 * 1024;

/// A request taken apart: headers, client address, query and (for POST) form fields.
pub(crate) struct PortalRequest {
    pub(crate) headers: HeaderMap,
    pub(crate) ip: String,
    pub(crate) query: HashMap<String, String>,
    pub(crate) form: HashMap<String, String>,
}

impl PortalRequest {
    /// Reads the request: its client address, query and (for POST) form.
    pub(crate) async fn read(req: Request) -> Result<Self> {
        let (parts, body) = req.into_parts();
        let ip = parts
            .extensions
            .get::<ConnectInfo<SocketAddr>>()
            .map(|c| c.0.ip().to_string())
            .unwrap_or_else(|| "127.0.0.1".into());
        let query = query_of(&parts)?;
        let form = if parts.method == Method::POST {
            let bytes = axum::body::to_bytes(body, FORM_LIMIT)
                .await
                .map_err(|_| PortalError::BadRequest("form too large".into()))?;
            parse_pairs(&bytes)?
        } else {
            HashMap::new()
        };
        Ok(Self {
            headers: parts.headers,
            ip,
            query,
            form,
        })
    }

    /// The form field `name`.
    pub(crate) fn field(&self, name: &str) -> Option<&str> {
        self.form.get(name).map(String::as_str)
    }

    /// The query parameter `name`.
    pub(crate) fn param(&self, name: &str) -> Option<&str> {
        self.query.get(name).map(String::as_str)
    }
}

impl<S: Send + Sync> FromRequest<S> for PortalRequest {
    type Rejection = PortalError;

    async fn from_request(req: Request, _: &S) -> Result<Self> {
        Self::read(req).await
    }
}

fn query_of(parts: &Parts) -> Result<HashMap<String, String>> {
    parse_pairs(parts.uri.query().unwrap_or("").as_bytes())
}

/// Form or query pairs; a name given twice is refused (which value counts would be ambiguous).
fn parse_pairs(bytes: &[u8]) -> Result<HashMap<String, String>> {
    let mut out = HashMap::new();
    for (k, v) in form_urlencoded::parse(bytes) {
        if out.insert(k.to_string(), v.to_string()).is_some() {
            return Err(PortalError::BadRequest(format!(
                "parameter {k} given twice"
            )));
        }
    }
    Ok(out)
}

/// The query parameter `name` of a request whose query [`SignedIn`] has accepted.
pub(super) fn query_param(parts: &Parts, name: &str) -> Option<String> {
    query_of(parts).ok()?.remove(name)
}

/// The live session of a request; `SessionExpired` when there is none, `MfaPending` while it
/// waits for the MFA challenge.
pub(crate) async fn require_session(app: &App, headers: &HeaderMap) -> Result<Session> {
    let s = require_session_any(app, headers).await?;
    if s.record.mfa_pending {
        return Err(PortalError::MfaPending);
    }
    Ok(s)
}

/// The live session of a request, also one that waits for the MFA challenge.
pub(super) async fn require_session_any(app: &App, headers: &HeaderMap) -> Result<Session> {
    let s = settings(app).ok_or(PortalError::SessionExpired)?;
    let now = app.clock.now().timestamp();
    let loaded = session::load(
        app.store.as_ref(),
        headers,
        now,
        s.idle_seconds,
        s.max_seconds,
    )
    .await?
    .ok_or(PortalError::SessionExpired)?;
    if super::mfa::pending_too_long(&loaded.record, now) {
        session::delete(app.store.as_ref(), &loaded.key).await?;
        return Err(PortalError::SessionExpired);
    }
    recheck(app, loaded).await
}

/// The session with its identity as the gate sees it now (directory groups re-read). A sign-in the
/// gate refuses (user deleted, revoked, provider removed, MFA rule unmet) ends here: the session
/// is deleted and the refusal audited with its reason.
async fn recheck(app: &App, mut s: Session) -> Result<Session> {
    match crate::authz::gate::recheck(app, &s.record.identity, s.record.mfa_pending).await {
        Ok(identity) => {
            s.record.identity = identity;
            Ok(s)
        }
        Err(e) if e.unavailable() => Err(PortalError::Internal(e.to_string())),
        Err(e) => {
            session::delete(app.store.as_ref(), &s.key).await?;
            let mut ev = AuditEvent::new(
                app.clock.now(),
                &crate::request::request_id(),
                "portal:EndSession",
            );
            ev.provider = Some(s.record.identity.provider.clone());
            ev.subject = Some(s.record.identity.subject.clone());
            ev.principal = Some(s.record.identity.display());
            ev.source_ip = Some(s.record.ip.clone());
            ev.outcome(Outcome::Deny);
            ev.reason = Some(format!("portal session ended: {e}"));
            app.audit.record(ev);
            Err(PortalError::SessionExpired)
        }
    }
}

/// Which sessions a signed-in page accepts and how it answers a request without one.
pub(super) trait PageRule: Send + Sync + 'static {
    /// Whether a session waiting for the MFA challenge counts.
    const WHILE_PENDING: bool = false;

    /// Where a browser without a session cookie signs in, coming back here afterwards; `None`:
    /// the session-expired page.
    fn sign_in_return(_parts: &Parts) -> Option<String> {
        None
    }

    /// The answer to a request the page cannot serve: sign-in (coming back) for a browser without
    /// a session cookie when [`Self::sign_in_return`] names the way back, else `e`'s page (the
    /// MFA challenge for a session waiting for it).
    fn refusal(parts: &Parts, e: PortalError) -> Response {
        match (&e, Self::sign_in_return(parts)) {
            (PortalError::SessionExpired, Some(back))
                if session::cookie(&parts.headers, SESSION_COOKIE).is_none() =>
            {
                to_login(&back)
            }
            _ => e.into_response(),
        }
    }
}

/// A page of a session that has passed the MFA challenge; without one, the session-expired page.
pub(super) struct Plain;

impl PageRule for Plain {}

/// A page of a session that has passed the MFA challenge; a browser without a session signs in
/// and comes back to the page's path.
pub(super) struct BackHere;

impl PageRule for BackHere {
    fn sign_in_return(parts: &Parts) -> Option<String> {
        Some(parts.uri.path().to_string())
    }
}

/// The live session of a signed-in person, rechecked against the gate, as page `R` accepts it.
/// Like every portal request, one whose query names a parameter twice is refused first.
pub(super) struct SignedIn<R = Plain>(pub(super) Session, pub(super) PhantomData<R>);

impl<R: PageRule> FromRequestParts<Arc<App>> for SignedIn<R> {
    type Rejection = Response;

    async fn from_request_parts(
        parts: &mut Parts,
        app: &Arc<App>,
    ) -> std::result::Result<Self, Response> {
        query_of(parts).map_err(IntoResponse::into_response)?;
        let s = if R::WHILE_PENDING {
            require_session_any(app, &parts.headers).await
        } else {
            require_session(app, &parts.headers).await
        };
        match s {
            Ok(s) => Ok(Self(s, PhantomData)),
            Err(e) => Err(R::refusal(parts, e)),
        }
    }
}

/// A state-changing form of a signed-in person.
pub(super) trait FormAction: Send + Sync + 'static {
    /// The audit action of the form (and of its refusals).
    const NAME: &'static str;
    /// Whether a session waiting for the MFA challenge may send it.
    const WHILE_PENDING: bool = false;
}

/// Declares a [`FormAction`]: `form_action!(Name = "portal:Action");`, with `, while_pending`
/// for a form a session waiting for the MFA challenge may send.
macro_rules! form_action {
    ($(#[$doc:meta])* $name:ident = $action:expr) => {
        $(#[$doc])*
        pub(super) struct $name;
        impl $crate::portal::extract::FormAction for $name {
            const NAME: &'static str = $action;
        }
    };
    ($(#[$doc:meta])* $name:ident = $action:expr, while_pending) => {
        $(#[$doc])*
        pub(super) struct $name;
        impl $crate::portal::extract::FormAction for $name {
            const NAME: &'static str = $action;
            const WHILE_PENDING: bool = true;
        }
    };
}
pub(super) use form_action;

/// A form of a signed-in person, checked: our Origin, a live session (one that has passed the
/// MFA challenge unless `A` allows otherwise) and the session's CSRF token. Yields the session and
/// the request. Each refusal is audited as `A` with its reason.
pub(super) struct CheckedPost<A>(
    pub(super) Session,
    pub(super) PortalRequest,
    pub(super) PhantomData<A>,
);

impl<A: FormAction> FromRequest<Arc<App>> for CheckedPost<A> {
    type Rejection = Response;

    async fn from_request(req: Request, app: &Arc<App>) -> std::result::Result<Self, Response> {
        let r = PortalRequest::read(req)
            .await
            .map_err(IntoResponse::into_response)?;
        let s = checked_post(app, &r, A::NAME, A::WHILE_PENDING).await?;
        Ok(Self(s, r, PhantomData))
    }
}

/// The session, its CSRF token matching the form's, and the Origin check, in that order of
/// refusal: Origin, session, MFA challenge passed (unless `while_pending`), CSRF token.
pub(crate) async fn checked_post(
    app: &App,
    r: &PortalRequest,
    action: &str,
    while_pending: bool,
) -> std::result::Result<Session, Response> {
    let ev = event(app, action, &r.ip);
    if let Err(why) = session::origin_ok(&r.headers, &app.config.public_url) {
        return Err(refuse(app, ev, why.clone(), PortalError::Forged(why)));
    }
    let s = match require_session_any(app, &r.headers).await {
        Ok(s) => s,
        Err(e) => return Err(refuse(app, ev, "no live session".into(), e)),
    };
    if s.record.mfa_pending && !while_pending {
        let mut ev = ev;
        ev.principal = Some(s.record.identity.display());
        return Err(refuse(
            app,
            ev,
            "the session has not passed the MFA challenge yet".into(),
            PortalError::MfaPending,
        ));
    }
    match r.field("csrf") {
        Some(t) if crate::credentials::same_token(t, &s.record.csrf) => Ok(s),
        _ => {
            let mut ev = ev;
            ev.principal = Some(s.record.identity.display());
            Err(refuse(
                app,
                ev,
                "CSRF token missing or wrong".into(),
                PortalError::Forged("csrf".into()),
            ))
        }
    }
}
