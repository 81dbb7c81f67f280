//! The operator console: HTML pages at `/admin` for the people who run rolegate, in the portal's
//! style and without a script framework. Users, groups, who has access to what, sessions, the
//! audit log and the health of the store, keys and providers.
//!
//! **Who may use it.** A user of the local directory signed in to the portal *with MFA* (root
//! always is). Every read and every change is a call of the admin API's table
//! ([`crate::web::directory::API`]): the console turns a form into the JSON body the API takes and
//! runs the same operation through [`directory::perform`], so it is authorized by the decision core
//! with the same `rolegate:*` action on the same resource, refused root changes the same way, and
//! audited the same way, with the signed-in user as the principal. A control is offered only when
//! the decision core would allow it ([`directory::would_allow`]): a helpdesk group granted only
//! `rolegate:UpdateLoginProfile` and `rolegate:UnlockUser` sees a user lookup and those two forms.
//! Root itself, signed in with MFA, may do everything, as the admin token may. Two reads are the
//! console's own: the audit log (`rolegate:ListAuditEvents` on `arn:aws:rolegate:::audit`) and
//! the health page (`rolegate:GetHealth` on `arn:aws:rolegate:::health`).
//!
//! **Forms.** Every form is a POST checked like the portal's (our Origin, a live session that
//! passed MFA, the session's CSRF token), validated on the server; a refusal shows the page again
//! with the error beside the form and what was typed kept (never a password). A secret (a new
//! access key's) is shown once, on the answer to the form that made it, and never again.

mod access;
mod audit;
mod bootstrap;
mod groups;
mod health;
#[cfg(test)]
mod tests;
mod users;

use crate::app::App;
use crate::audit::AuditEvent;
use crate::config::LOCAL_PROVIDER;
use crate::portal::{require_session, PortalError, PortalRequest};
use crate::web::directory::{self, AdminError, Call, Caller};
use askama::Template;
use axum::extract::{ConnectInfo, FromRequestParts};
use axum::http::request::Parts;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::get;
use axum::Router;
use serde::Deserialize;
use serde_json::Value;
use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;

/// Where the console starts.
pub const HOME: &str = "/admin";

/// The console's own action for reading the audit log, and its resource.
pub const LIST_AUDIT: (&str, &str) = ("rolegate:ListAuditEvents", "arn:aws:rolegate:::audit");
/// The console's own action for the health page, and its resource.
pub const GET_HEALTH: (&str, &str) = ("rolegate:GetHealth", "arn:aws:rolegate:::health");

/// The console's routes.
pub fn routes() -> Router<Arc<App>> {
    Router::new()
        .route(HOME, get(home))
        .merge(users::routes())
        .merge(groups::routes())
        .merge(access::routes())
        .merge(audit::routes())
        .merge(health::routes())
        .merge(bootstrap::routes())
}

/// A signed-in operator: who, as the decision core sees them, and what the pages need.
pub(super) struct Admin {
    /// The caller every operation is run as.
    pub(super) caller: Caller,
    /// The name in the page header.
    pub(super) who: String,
    /// The session's CSRF token, for the forms.
    pub(super) csrf: String,
    /// The client's address (a condition key of the policies).
    pub(super) source: SocketAddr,
    /// The sections of the header the caller may open.
    pub(super) nav: Nav,
}

/// The sections an operator may open, each by the read it needs.
#[derive(Default)]
pub(super) struct Nav {
    pub(super) users: bool,
    pub(super) groups: bool,
    pub(super) access: bool,
    pub(super) audit: bool,
    pub(super) health: bool,
}

impl Admin {
    /// Whether the decision core would allow `action` on `resource` (nothing done, not audited).
    pub(super) async fn may(&self, app: &App, action: &str, resource: &str) -> bool {
        directory::would_allow(app, &self.caller, self.source.ip(), action, resource).await
    }

    /// Runs the admin API's operation for `action` as this operator, with the route's path
    /// segments, query and JSON body, and records its one audit event.
    pub(super) async fn run(
        &self,
        app: &Arc<App>,
        action: &str,
        params: &[(&str, &str)],
        query: &str,
        body: Value,
    ) -> Result<Value, AdminError> {
        let Some(route) = directory::route(action) else {
            return Err(AdminError::internal(format!("no admin operation {action}")));
        };
        let params: HashMap<String, String> = params
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        let call = Call::from_console(app.clone(), route, params, query, &body, self.source);
        let mut ev = AuditEvent::new(app.clock.now(), &crate::request::request_id(), action);
        ev.source_ip = Some(self.source.ip().to_string());
        let result = directory::perform(route, &call, &self.caller, &mut ev).await;
        directory::record(app, ev, &result);
        result
    }

    /// Records the console's own read `action` (allowed or refused), as the admin API records its
    /// calls; refused with the decision core's explanation when the policies do not allow it.
    pub(super) async fn read(
        &self,
        app: &App,
        (action, resource): (&str, &str),
    ) -> Result<(), AdminError> {
        let mut ev = AuditEvent::new(app.clock.now(), &crate::request::request_id(), action);
        ev.source_ip = Some(self.source.ip().to_string());
        ev.principal = Some(self.caller.principal());
        ev.role_arn = Some(resource.to_string());
        let result = directory::authorize_read(
            app,
            &self.caller,
            self.source.ip(),
            action,
            resource,
            &mut ev,
        )
        .await
        .map(|()| Value::Null);
        directory::record(app, ev, &result);
        result.map(drop)
    }
}

impl FromRequestParts<Arc<App>> for Admin {
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, app: &Arc<App>) -> Result<Self, Response> {
        let source = source_of(&parts.extensions);
        if app.config.portal.is_none() {
            return Err(refused(
                StatusCode::NOT_FOUND,
                "No console",
                "The operator console signs people in through the portal, which is off: add a [portal] section to the configuration.",
                "/",
                "Home",
            ));
        }
        let session = match require_session(app, &parts.headers).await {
            Ok(s) => s,
            Err(PortalError::SessionExpired) => {
                let back = parts
                    .uri
                    .path_and_query()
                    .map_or(HOME.to_string(), |p| p.to_string());
                let q = form_urlencoded::Serializer::new(String::new())
                    .append_pair("return_to", &back)
                    .finish();
                return Err(Redirect::to(&format!("/login?{q}")).into_response());
            }
            Err(e) => return Err(e.into_response()),
        };
        let admin = admin_of(app, &session, source).await?;
        Ok(admin)
    }
}

/// The operator behind a portal session: a directory user signed in with MFA.
async fn admin_of(
    app: &App,
    session: &crate::portal::session::Session,
    source: SocketAddr,
) -> Result<Admin, Response> {
    let identity = &session.record.identity;
    let (Some(d), Some(user_id), true) = (
        app.directory.as_deref(),
        identity.origin_user.as_deref(),
        identity.provider == LOCAL_PROVIDER,
    ) else {
        return Err(refused(
            StatusCode::FORBIDDEN,
            "Not for this sign-in",
            &format!(
                "The operator console is for users of rolegate's own directory. You signed in through {}.",
                identity.provider
            ),
            "/portal",
            "Back to your accounts",
        ));
    };
    if identity.mfa_time.is_none() {
        return Err(refused(
            StatusCode::FORBIDDEN,
            "MFA needed",
            "The operator console needs a sign-in with MFA. Set up an authenticator app or a security key, then sign out and sign in again.",
            "/portal/security",
            "Sign-in security",
        ));
    }
    let user = match d.user_by_id(user_id).await {
        Ok(Some(u)) => u,
        Ok(None) => return Err(PortalError::SessionExpired.into_response()),
        Err(e) => return Err(PortalError::Internal(e.to_string()).into_response()),
    };
    let claims = crate::authn::directory_caller(
        d.account(),
        &user,
        "",
        format!("console-{}", &session.key[..16.min(session.key.len())]),
        identity.signed_in_at,
        identity.mfa_time,
    );
    let open = Arc::new(crate::credentials::OpenSession::new(claims));
    let caller = if user.root {
        Caller::Root(open)
    } else {
        Caller::Session(open)
    };
    let mut admin = Admin {
        caller,
        who: user.name.clone(),
        csrf: session.record.csrf.clone(),
        source,
        nav: Nav::default(),
    };
    let account = d.account();
    admin.nav = Nav {
        users: admin
            .may(
                app,
                "rolegate:ListUsers",
                &crate::policy::arn::user(account, "/", "*"),
            )
            .await,
        groups: admin
            .may(
                app,
                "rolegate:ListGroups",
                &crate::policy::arn::group(account, "*"),
            )
            .await,
        access: admin
            .may(
                app,
                "rolegate:ExplainAssignments",
                "arn:aws:rolegate:::assignments",
            )
            .await,
        audit: admin.may(app, LIST_AUDIT.0, LIST_AUDIT.1).await,
        health: admin.may(app, GET_HEALTH.0, GET_HEALTH.1).await,
    };
    Ok(admin)
}

/// A form of the console, checked as the portal checks its forms (our Origin, a live session that
/// passed MFA, the CSRF token), refusals audited under `action`; then the operator behind it.
pub(super) async fn checked_form(
    app: &Arc<App>,
    req: axum::extract::Request,
    action: &str,
) -> Result<(Admin, PortalRequest), Response> {
    let (r, source) = form_of(req).await?;
    let session = crate::portal::checked_post(app, &r, action, false).await?;
    let admin = admin_of(app, &session, source).await?;
    Ok((admin, r))
}

/// The client's address (loopback when the connection did not say: in-process requests).
fn source_of(extensions: &axum::http::Extensions) -> SocketAddr {
    extensions
        .get::<ConnectInfo<SocketAddr>>()
        .map(|c| c.0)
        .unwrap_or_else(|| SocketAddr::from(([127, 0, 0, 1], 0)))
}

/// A form's fields and the client's address.
pub(super) async fn form_of(
    req: axum::extract::Request,
) -> Result<(PortalRequest, SocketAddr), Response> {
    let source = source_of(req.extensions());
    let r = PortalRequest::read(req)
        .await
        .map_err(IntoResponse::into_response)?;
    Ok((r, source))
}

#[derive(Template)]
#[template(path = "admin/refused.html")]
struct RefusedPage<'a> {
    title: &'a str,
    message: &'a str,
    next: &'a str,
    next_label: &'a str,
}

/// A page that says why the console cannot go on, with one link on.
pub(super) fn refused(
    status: StatusCode,
    title: &str,
    message: &str,
    next: &str,
    next_label: &str,
) -> Response {
    with_status(
        crate::portal::page(RefusedPage {
            title,
            message,
            next,
            next_label,
        }),
        status,
    )
}

/// `resp` answered with `status` instead of its own.
pub(super) fn with_status(mut resp: Response, status: StatusCode) -> Response {
    *resp.status_mut() = status;
    resp
}

/// Whether the admin API's refusal `e` is shown beside the form that asked, what was typed kept: a
/// client error other than a refusal by the policies (that one is a page of its own).
pub(super) fn shown_on_form(e: &AdminError) -> bool {
    e.status().is_client_error() && e.status() != StatusCode::FORBIDDEN
}

/// The query of a page a change redirects back to: the fixed word naming what was done.
#[derive(Deserialize)]
pub(super) struct DoneQuery {
    pub(super) done: Option<String>,
}

impl DoneQuery {
    /// The sentence for the `done` word (nothing typed is reflected).
    pub(super) fn notice(&self) -> Option<&'static str> {
        notice(self.done.as_deref())
    }
}

/// The sentence for a `done` word of a redirect after a change (nothing typed is reflected).
pub(super) fn notice(done: Option<&str>) -> Option<&'static str> {
    Some(match done? {
        "created" => "Created.",
        "deleted" => "Deleted.",
        "disable" => "The user is disabled and every session it started has ended.",
        "enable" => "The user is enabled.",
        "unlock" => "Sign-in locks are lifted.",
        "password" => "The password is set.",
        "key-status" => "The access key's status is changed.",
        "delete-key" => "The access key is deleted.",
        "remove-mfa" => "The MFA device is removed.",
        "put-policy" => "The policy is saved.",
        "delete-policy" => "The policy is deleted.",
        "add-group" | "add-member" => "Added to the group.",
        "remove-group" | "remove-member" => "Removed from the group.",
        "revoke" => "Every session of the user has ended.",
        "end-session" => "The session has ended.",
        _ => return None,
    })
}

/// A change on a page, `POST .../{op}`: its admin API action from `changes` (an unknown `op` is
/// not found), its form checked under that action, and the operator behind it.
pub(super) async fn checked_change(
    app: &Arc<App>,
    req: axum::extract::Request,
    changes: &[(&str, &'static str)],
    op: &str,
) -> Result<(&'static str, Admin, PortalRequest), Response> {
    let Some(&(_, action)) = changes.iter().find(|(o, _)| *o == op) else {
        return Err(StatusCode::NOT_FOUND.into_response());
    };
    let (admin, r) = checked_form(app, req, action).await?;
    Ok((action, admin, r))
}

/// The page for an operation the console could not do: its status and message.
pub(super) fn failed(e: &AdminError) -> Response {
    refused(
        e.status(),
        if e.status() == StatusCode::FORBIDDEN {
            "Not allowed"
        } else {
            "Could not do that"
        },
        e.message(),
        HOME,
        "Back to the console",
    )
}

#[derive(Template)]
#[template(path = "admin/home.html")]
struct HomePage<'a> {
    admin: &'a Admin,
}

async fn home(admin: Admin) -> Response {
    crate::portal::page(HomePage { admin: &admin })
}

/// A time (Unix seconds) as RFC 3339, or "never".
pub(super) fn when(t: Option<i64>) -> String {
    t.map_or_else(|| "never".to_string(), crate::clock::rfc3339_secs)
}

/// A redirect after a change, to `to` with `done` naming what was done (a fixed word the page
/// turns into its own sentence: nothing typed is reflected).
pub(super) fn done(to: &str, what: &str) -> Response {
    let sep = if to.contains('?') { '&' } else { '?' };
    Redirect::to(&format!("{to}{sep}done={what}")).into_response()
}

/// The path segment `s`, percent-encoded for a link.
pub(super) fn seg(s: &str) -> String {
    percent_encoding::utf8_percent_encode(s, percent_encoding::NON_ALPHANUMERIC).to_string()
}
