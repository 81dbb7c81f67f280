//! One route of the admin API ([`super::API`]) and the one path every call on it takes:
//! authenticate the caller (the admin bearer token, or SigV4 for the service `rolegate`), refuse a
//! change to root unless root itself or the admin token asks ([`root::check_target`]), ask the
//! decision core whether the caller's policies allow the route's `rolegate:*` action on the route's
//! resource, run the route's operation, record one audit event and answer JSON.
//!
//! What it must not know: what any one operation does to the directory.

use super::{respond, root, sessions, users, AdminError, AdminRequest, SIGNING_NAME};
use crate::app::App;
use crate::audit::AuditEvent;
use crate::authz::decide::{decide, Question, Verdict};
use crate::credentials::{OpenSession, SessionClaims};
use crate::idp::local::Directory;
use crate::sigv4::{SignedRequest, VerifyOptions};
use axum::extract::rejection::QueryRejection;
use axum::extract::{FromRequest, Path, Query, Request, State};
use axum::http::{header, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::routing::{on, MethodFilter, MethodRouter};
use serde::de::DeserializeOwned;
use serde_json::Value;
use std::collections::HashMap;
use std::future::Future;
use std::net::IpAddr;
use std::pin::Pin;
use std::sync::Arc;
use subtle::ConstantTimeEq;

/// An HTTP method of the admin API.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Verb {
    /// `GET` (and `HEAD`).
    Get,
    /// `POST`.
    Post,
    /// `PUT`.
    Put,
    /// `DELETE`.
    Delete,
}

impl Verb {
    /// The method as sent.
    pub fn method(self) -> axum::http::Method {
        use axum::http::Method;
        match self {
            Verb::Get => Method::GET,
            Verb::Post => Method::POST,
            Verb::Put => Method::PUT,
            Verb::Delete => Method::DELETE,
        }
    }

    fn filter(self) -> MethodFilter {
        match self {
            Verb::Get => MethodFilter::GET,
            Verb::Post => MethodFilter::POST,
            Verb::Put => MethodFilter::PUT,
            Verb::Delete => MethodFilter::DELETE,
        }
    }
}

/// What a call is about: the resource the caller's policies must allow the action on and, for a
/// call that changes a user, that user (a change to root is reserved to root itself and the admin
/// token, whatever the policies say). `{name}` and `{group}` are the route's path segments;
/// `ACCOUNT` is the directory's account.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Resource {
    /// `arn:aws:iam::ACCOUNT:user/*`.
    AllUsers,
    /// `arn:aws:iam::ACCOUNT:user/{name}`, for a call that reads the user.
    User,
    /// `arn:aws:iam::ACCOUNT:user/{name}`, for a call that changes the user.
    ChangesUser,
    /// `arn:aws:iam::ACCOUNT:user/NAME` with the body's `name` (the user to create).
    UserInBody,
    /// `arn:aws:iam::ACCOUNT:group/*`.
    AllGroups,
    /// `arn:aws:iam::ACCOUNT:group/{group}`.
    Group,
    /// `arn:aws:iam::ACCOUNT:group/NAME` with the body's `name` (the group to create).
    GroupInBody,
    /// `arn:aws:iam::ACCOUNT:group/{group}`, for a call that changes the group memberships of user
    /// `{name}`.
    GroupMember,
    /// `arn:aws:rolegate:::assignments`.
    Assignments,
    /// By the body's `scope`: `user` names `arn:aws:iam::ACCOUNT:user/VALUE` and changes that user,
    /// `role` names the role ARN `value`, any other `arn:aws:rolegate:::sessions`.
    Sessions,
}

/// The resource of one call, and the user it changes.
pub struct Scope {
    /// What the policies must allow the action on.
    pub resource: String,
    /// The user the call changes, if it names one.
    pub target: Option<String>,
}

impl Resource {
    /// The path segments this resource is built from.
    #[cfg(test)]
    pub fn params(self) -> &'static [&'static str] {
        match self {
            Resource::User | Resource::ChangesUser => &["name"],
            Resource::Group => &["group"],
            Resource::GroupMember => &["group", "name"],
            Resource::AllUsers
            | Resource::UserInBody
            | Resource::AllGroups
            | Resource::GroupInBody
            | Resource::Assignments
            | Resource::Sessions => &[],
        }
    }

    /// The resource and target of `call`. A body that does not parse names no one (the
    /// operation answers the parse error once the caller is allowed).
    fn scope(self, call: &Call) -> Result<Scope, AdminError> {
        let resource = |resource: String| Scope {
            resource,
            target: None,
        };
        Ok(match self {
            Resource::AllUsers => resource(super::user_arn(&call.app, "*")),
            Resource::User => resource(super::user_arn(&call.app, call.param("name")?)),
            Resource::ChangesUser => {
                let name = call.param("name")?;
                Scope {
                    resource: super::user_arn(&call.app, name),
                    target: Some(name.to_string()),
                }
            }
            Resource::UserInBody => resource(super::user_arn(&call.app, &new_name(call))),
            Resource::AllGroups => resource(super::group_arn(&call.app, "*")),
            Resource::Group => resource(super::group_arn(&call.app, call.param("group")?)),
            Resource::GroupInBody => resource(super::group_arn(&call.app, &new_name(call))),
            Resource::GroupMember => Scope {
                resource: super::group_arn(&call.app, call.param("group")?),
                target: Some(call.param("name")?.to_string()),
            },
            Resource::Assignments => resource("arn:aws:rolegate:::assignments".into()),
            Resource::Sessions => sessions::scope(call),
        })
    }
}

/// The `name` of a user or group to create, or empty when the body does not parse.
fn new_name(call: &Call) -> String {
    call.json::<users::NewUser>()
        .map(|b| b.name)
        .unwrap_or_default()
}

/// What an operation returns: the JSON answer, or the error to answer instead.
pub type Work<'a> = Pin<Box<dyn Future<Output = Result<Value, AdminError>> + Send + 'a>>;

/// The directory work of one route, run once the caller is allowed.
pub type Operation = for<'a> fn(&'a Call) -> Work<'a>;

/// Checks a route's query string before anything else (as an axum `Query` extractor would).
type QueryCheck = fn(&Uri) -> Result<(), QueryRejection>;

/// One route of the admin API: method and path, the `rolegate:*` action it asks the policies for,
/// the resource it asks on, and the operation.
pub struct Route {
    /// The HTTP method.
    pub verb: Verb,
    /// The path, with `{segment}` placeholders.
    pub path: &'static str,
    /// The `rolegate:*` action (also the audit event's action).
    pub action: &'static str,
    /// The resource the action is asked on.
    pub resource: Resource,
    operation: Operation,
    query: Option<QueryCheck>,
}

impl Route {
    /// A route.
    pub const fn new(
        verb: Verb,
        path: &'static str,
        action: &'static str,
        resource: Resource,
        operation: Operation,
    ) -> Self {
        Self {
            verb,
            path,
            action,
            resource,
            operation,
            query: None,
        }
    }

    /// The same route, answering 400 (plain text, before authentication, unaudited) when the query
    /// string does not parse as `T`.
    pub const fn query<T: DeserializeOwned>(mut self) -> Self {
        self.query = Some(query_parses::<T>);
        self
    }

    /// The handler of this route.
    pub fn method_router(&'static self) -> MethodRouter<Arc<App>> {
        on(
            self.verb.filter(),
            move |State(app): State<Arc<App>>,
                  Path(params): Path<HashMap<String, String>>,
                  req: Request| serve(self, app, params, req),
        )
    }
}

fn query_parses<T: DeserializeOwned>(uri: &Uri) -> Result<(), QueryRejection> {
    Query::<T>::try_from_uri(uri).map(drop)
}

/// What an operation gets: the app, the request, and the route's path segments.
pub struct Call {
    /// The application.
    pub app: Arc<App>,
    req: AdminRequest,
    params: HashMap<String, String>,
    reason: std::sync::Mutex<Option<String>>,
}

impl Call {
    /// A call made from a page of the console rather than an HTTP request to the API: the same
    /// operation gets the path segments, the query (`a=b&…`, already encoded) and the JSON body
    /// the API would have received.
    pub fn from_console(
        app: Arc<App>,
        route: &Route,
        params: HashMap<String, String>,
        query: &str,
        body: &Value,
        source: std::net::SocketAddr,
    ) -> Self {
        let req = AdminRequest {
            method: route.verb.method(),
            uri: format!("/?{query}").parse().unwrap_or_default(),
            headers: axum::http::HeaderMap::new(),
            body: serde_json::to_vec(body).unwrap_or_default().into(),
            source,
        };
        Self::new(app, req, params)
    }

    fn new(app: Arc<App>, req: AdminRequest, params: HashMap<String, String>) -> Self {
        Self {
            app,
            req,
            params,
            reason: std::sync::Mutex::new(None),
        }
    }

    /// Sets the audit event's reason: what the operation did (or precisely why it refused), for
    /// an operation whose answer alone does not say it.
    pub fn audit_reason(&self, reason: String) {
        if let Ok(mut r) = self.reason.lock() {
            *r = Some(reason);
        }
    }

    /// The path segment `{name}` of the route.
    pub fn param(&self, name: &str) -> Result<&str, AdminError> {
        self.params.get(name).map(String::as_str).ok_or_else(|| {
            AdminError::new(
                StatusCode::INTERNAL_SERVER_ERROR,
                format!("the route has no path segment {{{name}}}"),
            )
        })
    }

    /// The JSON body.
    pub fn json<T: DeserializeOwned>(&self) -> Result<T, AdminError> {
        self.req.json()
    }

    /// The query string (checked before the call when the route says [`Route::query`]).
    pub fn query<T: DeserializeOwned>(&self) -> Result<T, AdminError> {
        Query::<T>::try_from_uri(&self.req.uri)
            .map(|q| q.0)
            .map_err(|e| AdminError::new(StatusCode::BAD_REQUEST, e.body_text()))
    }

    /// The directory, or 404 when none is configured.
    pub fn directory(&self) -> Result<&Directory, AdminError> {
        super::directory(&self.app)
    }
}

/// The one path of every admin call: authenticate, authorize, operate, audit, answer.
async fn serve(
    route: &'static Route,
    app: Arc<App>,
    params: HashMap<String, String>,
    req: Request,
) -> Response {
    if let Some(check) = route.query {
        if let Err(rejection) = check(req.uri()) {
            return rejection.into_response();
        }
    }
    let req = match AdminRequest::from_request(req, &app).await {
        Ok(req) => req,
        Err(rejection) => return rejection,
    };
    let mut ev = AuditEvent::new(app.clock.now(), &crate::request::request_id(), route.action);
    ev.source_ip = Some(req.source.ip().to_string());
    let caller = authenticate(&app, &req, &mut ev).await;
    let call = Call::new(app, req, params);
    let result = match caller {
        Ok(caller) => perform(route, &call, &caller, &mut ev).await,
        Err(e) => Err(e),
    };
    respond(&call.app, ev, result)
}

/// Who an admin call is made by, once authenticated.
pub enum Caller {
    /// The configured admin bearer token (the break-glass path): every action, root included.
    AdminToken,
    /// The root user itself, signed in with MFA (the console): every action, as the admin token.
    Root(Arc<OpenSession>),
    /// A session rolegate issued, or a directory user's long-term key: what its policies allow.
    Session(Arc<OpenSession>),
}

impl Caller {
    /// The caller's name in the audit log.
    pub fn principal(&self) -> String {
        match self {
            Caller::AdminToken => "admin-token".into(),
            Caller::Root(s) | Caller::Session(s) => s.principal.arn(),
        }
    }
}

/// A call of `route` by an authenticated `caller`: scope, authorization, then the operation.
/// The audit event is filled in; the caller records it (with the outcome) once answered.
pub async fn perform(
    route: &'static Route,
    call: &Call,
    caller: &Caller,
    ev: &mut AuditEvent,
) -> Result<Value, AdminError> {
    ev.principal = Some(caller.principal());
    let scope = route.resource.scope(call)?;
    ev.role_arn = Some(scope.resource.clone());
    authorize(
        &call.app,
        caller,
        call.req.source.ip(),
        route.action,
        &scope,
        ev,
    )
    .await?;
    let result = (route.operation)(call).await;
    if let Some(reason) = call.reason.lock().ok().and_then(|mut r| r.take()) {
        ev.reason = Some(reason);
    }
    result
}

/// The caller of an admin request: the admin bearer token, or a SigV4 signature for the service
/// `rolegate` by a live session or a directory user's long-term key.
async fn authenticate(
    app: &App,
    req: &AdminRequest,
    ev: &mut AuditEvent,
) -> Result<Caller, AdminError> {
    let bearer = req
        .headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "));
    if let Some(presented) = bearer {
        let ok = app
            .config
            .admin_token
            .as_ref()
            .is_some_and(|t| bool::from(presented.as_bytes().ct_eq(t.expose().as_bytes())));
        ev.principal = Some("admin-token".into());
        return if ok {
            Ok(Caller::AdminToken)
        } else {
            ev.reason = Some("the bearer token is not the admin token".into());
            Err(AdminError::new(
                StatusCode::UNAUTHORIZED,
                "a valid admin bearer token or a SigV4 signature is required",
            ))
        };
    }
    let path = req.uri.path();
    let query = req.uri.query().unwrap_or("");
    let sreq = SignedRequest {
        method: req.method.as_str(),
        path,
        query,
        headers: &req.headers,
        body: &req.body,
        body_sha256: None,
    };
    let opts = VerifyOptions {
        service: SIGNING_NAME,
        regions: &app.config.sts_regions,
        max_skew: app.config.max_clock_skew,
        allow_unsigned_payload: false,
    };
    let caller = crate::authn::authenticate_signed(app, &sreq, &opts, ev)
        .await
        .map_err(|e| {
            ev.reason = Some(e.reason());
            AdminError::new(e.code().status(), format!("{}: {}", e.code(), e.message()))
        })?;
    Ok(Caller::Session(caller))
}

/// Whether `caller` may do `action` on the scope's resource: the admin token and root itself
/// always; a session when it is not changing root (reserved, [`root::check_target`]) and its
/// policies allow it (the decision core). A denial names its reason in the audit event.
async fn authorize(
    app: &App,
    caller: &Caller,
    source: IpAddr,
    action: &str,
    scope: &Scope,
    ev: &mut AuditEvent,
) -> Result<(), AdminError> {
    let session = match caller {
        Caller::AdminToken | Caller::Root(_) => return Ok(()),
        Caller::Session(s) => s,
    };
    if let Some(target) = &scope.target {
        root::check_target(app, session, action, target, ev).await?;
    }
    let verdict = ask(app, session, source, action, &scope.resource).await?;
    if !verdict.allowed() {
        verdict.audit_denial(ev);
        return Err(AdminError::new(
            StatusCode::FORBIDDEN,
            verdict.denial_message(),
        ));
    }
    Ok(())
}

/// Whether `caller` may do `action` on `resource`, which names no user to change: the authorization
/// of an admin call, for a read that is not one of [`super::API`]'s routes (the console's).
pub async fn authorize_read(
    app: &App,
    caller: &Caller,
    source: IpAddr,
    action: &str,
    resource: &str,
    ev: &mut AuditEvent,
) -> Result<(), AdminError> {
    let scope = Scope {
        resource: resource.to_string(),
        target: None,
    };
    authorize(app, caller, source, action, &scope, ev).await
}

/// The decision core's verdict on `session` doing `action` on `resource` from `source`.
async fn ask<'a>(
    app: &App,
    session: &'a SessionClaims,
    source: IpAddr,
    action: &'a str,
    resource: &'a str,
) -> Result<Verdict<'a>, AdminError> {
    let q = Question::new(session, action, resource).from_address(source, false);
    decide(app, q).await.map_err(|e| {
        let status = if e.unavailable() {
            StatusCode::SERVICE_UNAVAILABLE
        } else {
            StatusCode::INTERNAL_SERVER_ERROR
        };
        AdminError::new(status, e.to_string())
    })
}

/// Whether `caller` would be allowed `action` on `resource` (no audit event, nothing done): what
/// the console asks before it offers a control. Root itself is reserved as in [`authorize`].
pub async fn would_allow(
    app: &App,
    caller: &Caller,
    source: IpAddr,
    action: &str,
    resource: &str,
) -> bool {
    match caller {
        Caller::AdminToken | Caller::Root(_) => true,
        Caller::Session(s) => ask(app, s, source, action, resource)
            .await
            .is_ok_and(|v| v.allowed()),
    }
}
