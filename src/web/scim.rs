//! The SCIM 2.0 edge, `/scim/v2`: the company directory of an identity provider (a
//! `[[scim_clients]]` entry) provisions that provider's people and groups. Discovery
//! (`ServiceProviderConfig`, `Schemas`, `ResourceTypes`), and `Users` and `Groups`: list (filter,
//! `startIndex`/`count` paging, `attributes`/`excludedAttributes`), get, create (201 with
//! `Location` and `ETag`), replace, patch, delete (204); `If-Match` is honoured (412 when it names
//! another version).
//!
//! **Who may call it.** A bearer token of a SCIM client, compared with every client's token in
//! constant time; the client then sees and changes only the people and groups of its own provider
//! (ids of another provider's resources are unknown to it: 404). A missing or unknown token is 401
//! with `WWW-Authenticate`; a client past its rate is 429.
//!
//! **What it answers.** `application/scim+json` (requests may also be `application/json`); every
//! refusal is a SCIM Error message with the right status and `scimType`, and bodies over
//! [`BODY_LIMIT`] are 413. Bad input changes nothing. Every change and every refusal is audited
//! (`scim:CreateUser`, `scim:PatchGroup`, …, the principal the client's name, the precise reason
//! on refusals). A change that deprovisions someone (`active` set to false, deleted, their
//! subject changed) revokes their subject at the provider through the decision core
//! ([`crate::authz::gate::deprovision`]).

use crate::app::App;
use crate::audit::{AuditEvent, EdgeError};
use crate::config::ScimClient;
use crate::idp::provisioned::{etag, ProvisionError, Resource, Stored};
use crate::scim::{self, ResourceKind, ScimError, ScimType};
use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{header, HeaderMap, HeaderValue, Method, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::any;
use axum::Router;
use serde_json::Value;
use std::sync::Arc;
use subtle::ConstantTimeEq;

/// Where the SCIM service is.
pub const BASE_PATH: &str = "/scim/v2";
/// Largest request body accepted (a group replaced with thousands of members fits).
pub const BODY_LIMIT: usize = 1024 * 1024;
/// Most resources one list answers (`count` above it is lowered to it): the `filter.maxResults`
/// the ServiceProviderConfig publishes.
pub const MAX_COUNT: usize = scim::schema::MAX_RESULTS;
/// Resources a list answers when `count` is not given.
pub const DEFAULT_COUNT: usize = 100;

/// The routes of `/scim/v2`.
pub fn routes() -> Router<Arc<App>> {
    Router::new()
        .route(BASE_PATH, any(handle))
        .route(&format!("{BASE_PATH}/{{*rest}}"), any(handle))
}

/// A refusal of the SCIM edge: the SCIM Error the client gets and the precise reason only the
/// audit log records.
#[derive(Debug)]
pub struct ScimRefusal {
    /// What the client is told.
    pub error: ScimError,
    /// Why, precisely.
    pub reason: String,
    code: String,
    retry_after: Option<u64>,
}

impl ScimRefusal {
    /// A refusal whose SCIM detail is also its reason (input errors: the detail names what is
    /// wrong, never a stored value).
    pub fn new(error: ScimError) -> Self {
        let reason = error.detail.clone();
        Self::because(error, reason)
    }

    /// A refusal with a reason of its own.
    pub fn because(error: ScimError, reason: impl Into<String>) -> Self {
        let code = match error.scim_type {
            Some(t) => t.as_str().to_string(),
            None => error.status.to_string(),
        };
        Self {
            error,
            reason: reason.into(),
            code,
            retry_after: None,
        }
    }

    fn unauthorized(reason: impl Into<String>) -> Self {
        Self::because(
            ScimError::unauthorized("a valid SCIM bearer token is required"),
            reason,
        )
    }
}

impl EdgeError for ScimRefusal {
    fn code(&self) -> &str {
        &self.code
    }
    fn message(&self) -> &str {
        &self.error.detail
    }
    fn reason(&self) -> &str {
        &self.reason
    }
}

impl From<ScimError> for ScimRefusal {
    fn from(e: ScimError) -> Self {
        Self::new(e)
    }
}

impl From<ProvisionError> for ScimRefusal {
    fn from(e: ProvisionError) -> Self {
        let detail = e.to_string();
        match e {
            ProvisionError::NotFound(_) => Self::new(ScimError::not_found(detail)),
            ProvisionError::Uniqueness(_) => Self::new(ScimError::conflict(detail)),
            ProvisionError::Precondition(_) => Self::new(ScimError::precondition_failed(detail)),
            ProvisionError::Invalid(_) => {
                Self::new(ScimError::bad_request(ScimType::InvalidValue, detail))
            }
            ProvisionError::Busy => Self::because(
                ScimError {
                    status: 503,
                    scim_type: None,
                    detail: "the directory is busy; try again".into(),
                },
                detail,
            ),
            ProvisionError::UnknownProvider(_) | ProvisionError::Store(_) => Self::because(
                ScimError {
                    status: 503,
                    scim_type: None,
                    detail: "the directory is unavailable; try again".into(),
                },
                detail,
            ),
        }
    }
}

impl IntoResponse for ScimRefusal {
    fn into_response(self) -> Response {
        let status =
            StatusCode::from_u16(self.error.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        let mut resp = scim_json(status, &self.error.body());
        if status == StatusCode::UNAUTHORIZED {
            resp.headers_mut().insert(
                header::WWW_AUTHENTICATE,
                HeaderValue::from_static("Bearer realm=\"rolegate-scim\""),
            );
        }
        if let Some(s) = self.retry_after {
            resp.headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from(s));
        }
        resp
    }
}

type Result<T> = std::result::Result<T, ScimRefusal>;

fn scim_json(status: StatusCode, v: &Value) -> Response {
    (
        status,
        [(
            header::CONTENT_TYPE,
            HeaderValue::from_static(scim::MEDIA_TYPE),
        )],
        v.to_string(),
    )
        .into_response()
}

/// What a request asks for.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Op {
    ServiceProviderConfig,
    Schemas(Option<String>),
    ResourceTypes(Option<String>),
    List(ResourceKind),
    Search(ResourceKind),
    /// A request this server refuses with a status (405 for writes to the discovery documents,
    /// 501 for a search over several resource types at once) and why.
    NotAllowed(u16, String),
    Get(ResourceKind, String),
    Create(ResourceKind),
    Replace(ResourceKind, String),
    Patch(ResourceKind, String),
    Delete(ResourceKind, String),
}

impl Op {
    fn parse(method: &Method, path: &str) -> Option<Op> {
        let rest = path.strip_prefix(BASE_PATH)?.trim_end_matches('/');
        let segs: Vec<&str> = rest.split('/').skip(1).collect();
        let kind = |s: &str| match s {
            "Users" => Some(ResourceKind::User),
            "Groups" => Some(ResourceKind::Group),
            _ => None,
        };
        let id = |s: &str| (!s.is_empty()).then(|| s.to_string());
        Some(match (method.as_str(), segs.as_slice()) {
            ("GET", ["ServiceProviderConfig"]) => Op::ServiceProviderConfig,
            ("GET", ["Schemas"]) => Op::Schemas(None),
            ("GET", ["Schemas", s]) => Op::Schemas(Some(s.to_string())),
            ("GET", ["ResourceTypes"]) => Op::ResourceTypes(None),
            ("GET", ["ResourceTypes", s]) => Op::ResourceTypes(Some(s.to_string())),
            (_, ["ServiceProviderConfig" | "Schemas" | "ResourceTypes", ..]) => {
                Op::NotAllowed(405, format!("{method} is not allowed on {path}"))
            }
            // RFC 7644 §3.4.3 allows a search at the root over every resource type; §3.12: 501
            // for an operation the service provider does not support.
            ("POST", [".search"]) => Op::NotAllowed(
                501,
                "searching several resource types at once is not supported; search /Users/.search or /Groups/.search".into(),
            ),
            ("GET", [k]) => Op::List(kind(k)?),
            ("POST", [k, ".search"]) => Op::Search(kind(k)?),
            ("POST", [k]) => Op::Create(kind(k)?),
            ("GET", [k, i]) => Op::Get(kind(k)?, id(i)?),
            ("PUT", [k, i]) => Op::Replace(kind(k)?, id(i)?),
            ("PATCH", [k, i]) => Op::Patch(kind(k)?, id(i)?),
            ("DELETE", [k, i]) => Op::Delete(kind(k)?, id(i)?),
            _ => return None,
        })
    }

    /// The audit action.
    fn action(&self) -> String {
        let (verb, k) = match self {
            Op::ServiceProviderConfig => return "scim:GetServiceProviderConfig".into(),
            Op::Schemas(_) => return "scim:GetSchemas".into(),
            Op::ResourceTypes(_) => return "scim:GetResourceTypes".into(),
            Op::NotAllowed(..) => return "scim:Unknown".into(),
            Op::List(k) | Op::Search(k) => ("List", k.endpoint()),
            Op::Get(k, _) => ("Get", k.name()),
            Op::Create(k) => ("Create", k.name()),
            Op::Replace(k, _) => ("Replace", k.name()),
            Op::Patch(k, _) => ("Patch", k.name()),
            Op::Delete(k, _) => ("Delete", k.name()),
        };
        format!("scim:{verb}{k}")
    }

    fn changes(&self) -> bool {
        matches!(
            self,
            Op::Create(_) | Op::Replace(..) | Op::Patch(..) | Op::Delete(..)
        )
    }
}

fn resource(k: ResourceKind) -> Resource {
    match k {
        ResourceKind::User => Resource::User,
        ResourceKind::Group => Resource::Group,
    }
}

/// The SCIM client whose token the request carries. Every client's token is compared, in
/// constant time and without an early exit, so timing tells nothing about which matched.
fn client<'a>(app: &'a App, headers: &HeaderMap) -> Result<&'a ScimClient> {
    let presented = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| {
            v.strip_prefix("Bearer ")
                .or_else(|| v.strip_prefix("bearer "))
        })
        .map(str::trim)
        .ok_or_else(|| ScimRefusal::unauthorized("no bearer token"))?;
    let mut found = None;
    for c in &app.config.scim_clients {
        if bool::from(presented.as_bytes().ct_eq(c.token.expose().as_bytes())) {
            found = Some(c);
        }
    }
    found.ok_or_else(|| ScimRefusal::unauthorized("the bearer token is no SCIM client's"))
}

async fn handle(State(app): State<Arc<App>>, req: Request) -> Response {
    let ip = crate::request::client_ip(&req);
    let op = Op::parse(req.method(), req.uri().path());
    let action = op
        .as_ref()
        .map_or_else(|| "scim:Unknown".to_string(), Op::action);
    let mut ev = AuditEvent::new(app.clock.now(), &crate::request::request_id(), &action);
    ev.source_ip = Some(ip.to_string());
    ev.user_agent = req
        .headers()
        .get(header::USER_AGENT)
        .and_then(|v| v.to_str().ok())
        .map(String::from);
    let changes = op.as_ref().is_some_and(Op::changes);
    let result = serve(&app, op, req, &mut ev).await;
    // 501 refuses an operation this server does not offer: a denial, not a fault.
    app.audit
        .finish(ev, result, changes, |e| {
            e.error.status >= 500 && e.error.status != 501
        })
        .unwrap_or_else(IntoResponse::into_response)
}

async fn serve(app: &App, op: Option<Op>, req: Request, ev: &mut AuditEvent) -> Result<Response> {
    let client = client(app, req.headers())?;
    ev.principal = Some(client.name.clone());
    ev.provider = Some(client.provider.clone());
    if let Some(l) = app.scim_limits.get(&client.name) {
        if let Err(limited) = l.check(&0) {
            let mut r = ScimRefusal::because(
                ScimError::too_many_requests("too many requests; slow down"),
                limited.to_string(),
            );
            r.retry_after = Some(limited.retry_after.as_secs().max(1));
            return Err(r);
        }
    }
    let Some(op) = op else {
        return Err(ScimRefusal::new(ScimError::not_found(format!(
            "no SCIM endpoint {} {}",
            req.method(),
            req.uri().path()
        ))));
    };
    let base = format!(
        "{}{BASE_PATH}",
        app.config.public_url.as_str().trim_end_matches('/')
    );
    let mut query = Query::parse(req.uri().query())?;
    let if_match = req
        .headers()
        .get(header::IF_MATCH)
        .and_then(|v| v.to_str().ok())
        .map(String::from);
    let provider = client.provider.as_str();
    let dir = &app.provisioned;
    match op {
        Op::ServiceProviderConfig => Ok(scim_json(
            StatusCode::OK,
            &scim::schema::service_provider_config(&base),
        )),
        Op::Schemas(None) => Ok(scim_json(StatusCode::OK, &scim::schema::schemas(&base))),
        Op::Schemas(Some(id)) => scim::schema::schema(&base, &id)
            .map(|v| scim_json(StatusCode::OK, &v))
            .ok_or_else(|| ScimRefusal::new(ScimError::not_found(format!("no schema {id}")))),
        Op::ResourceTypes(None) => Ok(scim_json(
            StatusCode::OK,
            &scim::schema::resource_types(&base),
        )),
        Op::ResourceTypes(Some(n)) => scim::schema::resource_type(&base, &n)
            .map(|v| scim_json(StatusCode::OK, &v))
            .ok_or_else(|| ScimRefusal::new(ScimError::not_found(format!("no resource type {n}")))),
        Op::NotAllowed(status, why) => Err(ScimRefusal::new(ScimError {
            status,
            scim_type: None,
            detail: why,
        })),
        Op::Search(k) => {
            // RFC 7644 §3.4.3: the query of a list in a SearchRequest body.
            let body = read_json(req).await?;
            query = Query::from_search(&body)?;
            list(dir, provider, k, &query)
        }
        Op::List(k) => list(dir, provider, k, &query),
        Op::Get(k, id) => {
            ev.resource = Some(format!("{}/{id}", k.endpoint()));
            let s = dir.get(provider, resource(k), &id)?;
            answer(StatusCode::OK, k, &s, &query)
        }
        Op::Create(k) => {
            let body = read_json(req).await?;
            let doc = scim::schema::validate(k, &body)?;
            note_subject(ev, client, k, &doc);
            let (s, change) = dir.create(provider, resource(k), doc).await?;
            ev.resource = Some(format!("{}/{}", k.endpoint(), s.id));
            deprovision(app, client, &change, "changed", ev).await?;
            let mut resp = answer(StatusCode::CREATED, k, &s, &query)?;
            if let Some(loc) = s
                .resource
                .get("meta")
                .and_then(|m| m.get("location"))
                .and_then(Value::as_str)
                .and_then(|l| HeaderValue::from_str(l).ok())
            {
                resp.headers_mut().insert(header::LOCATION, loc);
            }
            Ok(resp)
        }
        Op::Replace(k, id) => {
            ev.resource = Some(format!("{}/{id}", k.endpoint()));
            let body = read_json(req).await?;
            let doc = scim::schema::validate(k, &body)?;
            note_subject(ev, client, k, &doc);
            let compute = move |_: &Value| -> Result<Value> { Ok(doc.clone()) };
            let (s, change) = dir
                .update(provider, resource(k), &id, if_match.as_deref(), &compute)
                .await?;
            deprovision(app, client, &change, "replaced", ev).await?;
            answer(StatusCode::OK, k, &s, &query)
        }
        Op::Patch(k, id) => {
            ev.resource = Some(format!("{}/{id}", k.endpoint()));
            let body = read_json(req).await?;
            let compute =
                |current: &Value| -> Result<Value> { Ok(scim::patch::apply(k, current, &body)?) };
            let (s, change) = dir
                .update(provider, resource(k), &id, if_match.as_deref(), &compute)
                .await?;
            note_subject(ev, client, k, &s.resource);
            deprovision(app, client, &change, "patched", ev).await?;
            answer(StatusCode::OK, k, &s, &query)
        }
        Op::Delete(k, id) => {
            ev.resource = Some(format!("{}/{id}", k.endpoint()));
            if let Ok(s) = dir.get(provider, resource(k), &id) {
                note_subject(ev, client, k, &s.resource);
            }
            let change = dir
                .delete(provider, resource(k), &id, if_match.as_deref())
                .await?;
            deprovision(app, client, &change, "deleted", ev).await?;
            Ok(StatusCode::NO_CONTENT.into_response())
        }
    }
}

/// A list of `k` (GET with query parameters, or POST `.search`): filtered, paged, projected.
fn list(
    dir: &crate::idp::provisioned::Provisioned,
    provider: &str,
    k: ResourceKind,
    query: &Query,
) -> Result<Response> {
    let filter = query
        .filter
        .as_deref()
        .map(|f| scim::Filter::parse_for(k, f))
        .transpose()?;
    let eq = filter.as_ref().and_then(scim::Filter::equality);
    let keep = |v: &Value| filter.as_ref().is_none_or(|f| f.matches(k, v));
    let (total, page) = dir.list(
        provider,
        resource(k),
        eq.as_ref().map(|(a, v)| (a.as_str(), v.as_str())),
        &keep,
        query.start,
        query.count,
    )?;
    let resources = page
        .iter()
        .map(|s| query.project(k, &s.resource))
        .collect::<Result<Vec<_>>>()?;
    Ok(scim_json(
        StatusCode::OK,
        &scim::list_response(resources, total, query.start),
    ))
}

/// Records the subject a user resource stands for on the audit event.
fn note_subject(ev: &mut AuditEvent, client: &ScimClient, k: ResourceKind, doc: &Value) {
    if k == ResourceKind::User {
        if let Some(s) = doc
            .get(client.match_attribute.attribute())
            .and_then(Value::as_str)
        {
            ev.subject = Some(s.to_string());
        }
    }
}

/// Ends the access of the people a change deprovisioned, through the decision core.
async fn deprovision(
    app: &App,
    client: &ScimClient,
    change: &crate::idp::provisioned::Change,
    how: &str,
    ev: &mut AuditEvent,
) -> Result<()> {
    if change.deprovisioned.is_empty() {
        return Ok(());
    }
    let reason = format!(
        "deprovisioned by SCIM client {} ({} {how}, no longer active)",
        client.name,
        ev.resource.as_deref().unwrap_or("user")
    );
    crate::authz::gate::deprovision(app, &client.provider, &change.deprovisioned, &reason)
        .await
        .map_err(|e| {
            ScimRefusal::because(
                ScimError::internal("the change is stored but revoking access failed; retry"),
                format!("{reason}: revoking failed: {e}"),
            )
        })?;
    ev.reason = Some(format!(
        "{reason}; revoked subject(s) {} at {}",
        change.deprovisioned.join(", "),
        client.provider
    ));
    Ok(())
}

fn answer(status: StatusCode, k: ResourceKind, s: &Stored, q: &Query) -> Result<Response> {
    let v = q.project(k, &s.resource)?;
    let mut resp = scim_json(status, &v);
    if let Ok(e) = HeaderValue::from_str(&etag(s.version)) {
        resp.headers_mut().insert(header::ETAG, e);
    }
    Ok(resp)
}

/// The body of a create, replace or patch: `application/scim+json` or `application/json`, at
/// most [`BODY_LIMIT`] bytes, a JSON object.
async fn read_json(req: Request) -> Result<Value> {
    let ct = req
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase();
    if ct != scim::MEDIA_TYPE && ct != "application/json" {
        return Err(ScimRefusal::new(ScimError {
            status: 415,
            scim_type: None,
            detail: format!(
                "Content-Type must be {} or application/json, not '{ct}'",
                scim::MEDIA_TYPE
            ),
        }));
    }
    let too_large = || {
        ScimRefusal::new(ScimError::too_large(format!(
            "the request body is larger than {BODY_LIMIT} bytes"
        )))
    };
    let declared = req
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<usize>().ok());
    if declared.is_some_and(|n| n > BODY_LIMIT) {
        return Err(too_large());
    }
    let body: Body = req.into_body();
    let bytes = axum::body::to_bytes(body, BODY_LIMIT)
        .await
        .map_err(|_| too_large())?;
    let v: Value = serde_json::from_slice(&bytes).map_err(|e| {
        ScimRefusal::new(ScimError::bad_request(
            ScimType::InvalidSyntax,
            format!("the body is not JSON: {e}"),
        ))
    })?;
    if !v.is_object() {
        return Err(ScimRefusal::new(ScimError::bad_request(
            ScimType::InvalidSyntax,
            "the body must be a JSON object",
        )));
    }
    Ok(v)
}

/// The query parameters of a request.
#[derive(Debug, Default)]
struct Query {
    filter: Option<String>,
    start: usize,
    count: usize,
    attributes: Option<String>,
    excluded: Option<String>,
}

impl Query {
    fn parse(q: Option<&str>) -> Result<Query> {
        let mut out = Query {
            start: 1,
            count: DEFAULT_COUNT,
            ..Query::default()
        };
        for (k, v) in url::form_urlencoded::parse(q.unwrap_or("").as_bytes()) {
            let number = |what: &str| -> Result<i64> {
                v.trim().parse::<i64>().map_err(|_| {
                    ScimRefusal::new(ScimError::bad_request(
                        ScimType::InvalidValue,
                        format!("{what} must be an integer, not '{v}'"),
                    ))
                })
            };
            match k.as_ref() {
                "filter" => out.filter = Some(v.into_owned()),
                // RFC 7644 §3.4.2.4: below 1 is 1; a negative count is 0.
                "startIndex" => out.start = number("startIndex")?.max(1) as usize,
                "count" => out.count = (number("count")?.max(0) as usize).min(MAX_COUNT),
                "attributes" => out.attributes = Some(v.into_owned()),
                "excludedAttributes" => out.excluded = Some(v.into_owned()),
                _ => {}
            }
        }
        Ok(out)
    }

    /// The query of a SearchRequest body (`filter`, `startIndex`, `count`, `attributes` and
    /// `excludedAttributes` as arrays of names).
    fn from_search(body: &Value) -> Result<Query> {
        let bad = |what: &str| {
            ScimRefusal::new(ScimError::bad_request(
                ScimType::InvalidValue,
                format!("the SearchRequest's {what}"),
            ))
        };
        let mut out = Query {
            start: 1,
            count: DEFAULT_COUNT,
            ..Query::default()
        };
        let names = |v: &Value, what: &str| -> Result<String> {
            v.as_array()
                .and_then(|a| {
                    a.iter()
                        .map(|x| x.as_str().map(String::from))
                        .collect::<Option<Vec<_>>>()
                })
                .map(|a| a.join(","))
                .ok_or_else(|| bad(&format!("{what} must be an array of attribute names")))
        };
        if let Some(f) = body.get("filter") {
            out.filter = Some(
                f.as_str()
                    .ok_or_else(|| bad("filter must be a string"))?
                    .into(),
            );
        }
        if let Some(s) = body.get("startIndex") {
            let n = s
                .as_i64()
                .ok_or_else(|| bad("startIndex must be an integer"))?;
            out.start = n.max(1) as usize;
        }
        if let Some(c) = body.get("count") {
            let n = c.as_i64().ok_or_else(|| bad("count must be an integer"))?;
            out.count = (n.max(0) as usize).min(MAX_COUNT);
        }
        if let Some(a) = body.get("attributes") {
            out.attributes = Some(names(a, "attributes")?);
        }
        if let Some(a) = body.get("excludedAttributes") {
            out.excluded = Some(names(a, "excludedAttributes")?);
        }
        Ok(out)
    }

    fn project(&self, k: ResourceKind, v: &Value) -> Result<Value> {
        Ok(scim::project::project(
            k,
            v,
            self.attributes.as_deref(),
            self.excluded.as_deref(),
        )?)
    }
}

#[cfg(test)]
#[path = "scim_tests.rs"]
mod tests;
