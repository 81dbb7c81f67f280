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
use crate::authz::decide::{decide, Question};
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
    #[cfg(test)]
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
}

impl Call {
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
    let call = Call { app, req, params };
    let app = &call.app;
    let mut ev = AuditEvent::new(app.clock.now(), &crate::request::request_id(), route.action);
    let result = match route.resource.scope(&call) {
        Ok(scope) => {
            ev.role_arn = Some(scope.resource.clone());
            let guarded = guard(app, &call.req, route.action, &scope, &mut ev).await;
            match guarded {
                Ok(_) => (route.operation)(&call).await,
                Err(e) => Err(e),
            }
        }
        Err(e) => Err(e),
    };
    respond(app, ev, result)
}

/// Authenticates and authorizes an admin call for `action` on the scope's resource; the audit
/// event names the caller. A call that changes a user names it as the scope's target: root is
/// reserved to root and the admin token ([`root::check_target`]). Returns the caller's name for
/// the audit log.
async fn guard(
    app: &App,
    req: &AdminRequest,
    action: &str,
    scope: &Scope,
    ev: &mut AuditEvent,
) -> Result<String, AdminError> {
    ev.source_ip = Some(req.source.ip().to_string());
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
            Ok("admin-token".into())
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
    if let Some(target) = &scope.target {
        root::check_target(app, &caller, action, target, ev).await?;
    }
    let q = Question::new(&caller, action, &scope.resource).from_address(req.source.ip(), false);
    let verdict = decide(app, q).await.map_err(|e| {
        let status = if e.unavailable() {
            StatusCode::SERVICE_UNAVAILABLE
        } else {
            StatusCode::INTERNAL_SERVER_ERROR
        };
        AdminError::new(status, e.to_string())
    })?;
    if !verdict.allowed() {
        verdict.audit_denial(ev);
        return Err(AdminError::new(
            StatusCode::FORBIDDEN,
            verdict.denial_message(),
        ));
    }
    Ok(caller.principal.arn())
}
