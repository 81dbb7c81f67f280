//! Router assembly and middleware: request ids, body limits, security headers, metrics, health, the
//! admin API, the demo issuer and static files; the listener (plain or TLS) and graceful shutdown.
//! Domain rules live elsewhere.

mod admin;
#[cfg(test)]
mod admit_tests;
pub mod authorize;
pub mod console;
pub mod directory;
pub mod forwarded;
pub mod query;
pub mod saml;
#[cfg(test)]
mod saml_tests;
pub mod scim;
pub mod serve;
#[cfg(test)]
pub(crate) mod testing;
#[cfg(test)]
mod unsigned_header_tests;

pub use admin::{AuditParams, RevocationRequest};

use crate::app::App;
use crate::idp::demo::DEMO_PATH;
use crate::query::QueryRequest;
use crate::request::{client_ip, new_request_id, API_CSP, PAGE_CSP};
use askama::Template;
use axum::body::{Body, Bytes};
use axum::extract::{ConnectInfo, DefaultBodyLimit, MatchedPath, Request, State};
use axum::http::{header, HeaderValue, Method, StatusCode};
use axum::response::{Html, IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Form, Json, Router};
use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;

/// Largest request body accepted on the STS endpoint by default for `AssumeRoleWithSAML` (a SAML
/// assertion is at most 100,000 characters), and the default for routes without their own limit;
/// `[limits] saml_body_bytes` changes it.
pub const STS_BODY_LIMIT: usize = crate::config::DEFAULT_BODY_LIMITS.saml;

/// The whole HTTP surface of rolegate.
pub fn router(app: Arc<App>) -> Router {
    let limits = app.config.ops.limits;
    let mut r = Router::new()
        .route("/", get(sts_or_home).post(sts_endpoint))
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
        .route("/static/style.css", get(stylesheet))
        .merge(admin::routes().layer(DefaultBodyLimit::max(limits.admin)))
        .merge(directory::routes().layer(DefaultBodyLimit::max(limits.admin)))
        .merge(console::routes())
        .merge(authorize::routes())
        .merge(saml::routes())
        .merge(scim::routes())
        .merge(crate::portal::router(&app))
        .merge(crate::sso::router(&app));
    if app.config.ops.metrics.enabled && app.config.ops.metrics.listen.is_none() {
        r = r.route(METRICS_PATH, get(metrics_endpoint));
    }
    if app.demo.is_some() {
        r = r
            .route(
                &format!("{DEMO_PATH}/.well-known/openid-configuration"),
                get(demo_discovery),
            )
            .route(&format!("{DEMO_PATH}/jwks"), get(demo_jwks))
            .route(&format!("{DEMO_PATH}/token"), post(demo_token));
    }
    r.layer(DefaultBodyLimit::max(limits.saml))
        .layer(axum::middleware::from_fn_with_state(app.clone(), edge))
        .with_state(app)
}

/// Where Prometheus scrapes.
pub const METRICS_PATH: &str = "/metrics";

/// `/metrics` alone, for `[metrics] listen` (a separate listener, e.g. on an internal address).
pub fn metrics_router(app: Arc<App>) -> Router {
    Router::new()
        .route(METRICS_PATH, get(metrics_endpoint))
        .with_state(app)
}

async fn metrics_endpoint(State(app): State<Arc<App>>) -> Response {
    match app.render_metrics() {
        Ok(text) => ([(header::CONTENT_TYPE, crate::metrics::CONTENT_TYPE)], text).into_response(),
        Err(e) => {
            tracing::error!(error = %e, "rendering metrics failed");
            StatusCode::INTERNAL_SERVER_ERROR.into_response()
        }
    }
}

/// Audit query parameters from CLI arguments; `since` and `until` are a duration before now such
/// as `15m`, `2h` or `7d`, or an RFC 3339 time (`2026-12-03T06:00:00Z`).
pub fn admin_audit_params(
    since: Option<&str>,
    action: Option<String>,
    principal: Option<String>,
    decision: Option<String>,
    limit: usize,
) -> Result<AuditParams, String> {
    admin_audit_params_between(since, None, action, principal, decision, limit)
}

/// [`admin_audit_params`] with an end of the time range (events before it).
pub fn admin_audit_params_between(
    since: Option<&str>,
    until: Option<&str>,
    action: Option<String>,
    principal: Option<String>,
    decision: Option<String>,
    limit: usize,
) -> Result<AuditParams, String> {
    let now_ms = chrono::Utc::now().timestamp_millis();
    let since_ms = since
        .map(|s| audit_time("--since", s, now_ms))
        .transpose()?;
    let until_ms = until
        .map(|s| audit_time("--until", s, now_ms))
        .transpose()?;
    if let Some(d) = &decision {
        if !["allow", "deny", "error"].contains(&d.as_str()) {
            return Err(format!("--decision {d}: expected allow, deny or error"));
        }
    }
    Ok(AuditParams {
        since_ms,
        until_ms,
        action,
        principal,
        decision,
        limit: Some(limit),
        oldest_first: false,
    })
}

/// `s` as Unix milliseconds: an RFC 3339 time, or a duration before `now_ms`.
fn audit_time(flag: &str, s: &str, now_ms: i64) -> Result<i64, String> {
    if let Ok(t) = chrono::DateTime::parse_from_rfc3339(s) {
        return Ok(t.timestamp_millis());
    }
    let (n, unit) = s.split_at(s.len().saturating_sub(1));
    let n: i64 = n.parse().map_err(|_| {
        format!("{flag} {s}: expected a number and a unit (s, m, h, d) or an RFC 3339 time")
    })?;
    let secs = match unit {
        "s" => n,
        "m" => n * 60,
        "h" => n * 3600,
        "d" => n * 86_400,
        _ => return Err(format!("{flag} {s}: unit must be s, m, h or d")),
    };
    Ok(now_ms - secs * 1000)
}

/// Every response: security headers. Every route but the STS (which measures and identifies its
/// own requests, on the hot path): a request id (response header, log span, audit events) and
/// metrics by route template.
async fn edge(
    State(app): State<Arc<App>>,
    mut req: Request,
    next: axum::middleware::Next,
) -> Response {
    // Every request but the probes and the scrape goes no faster than the audit store writes.
    if !matches!(req.uri().path(), "/healthz" | "/readyz" | METRICS_PATH) {
        app.audit.admit().await;
    }
    if !app.config.trusted_proxies.is_empty() {
        let peer = client_ip(&req);
        if let Some((client, https)) =
            forwarded::client_behind(peer, req.headers(), &app.config.trusted_proxies)
        {
            req.extensions_mut()
                .insert(ConnectInfo(SocketAddr::new(client, 0)));
            if https {
                req.extensions_mut().insert(forwarded::ForwardedHttps);
            }
        }
    }
    let route = req.extensions().get::<MatchedPath>().cloned();
    let exporting = crate::telemetry::enabled();
    let mut resp = if route.as_ref().is_some_and(|r| r.as_str() == "/") && !exporting {
        next.run(req).await
    } else if route.as_ref().is_some_and(|r| r.as_str() == "/") {
        // The STS makes its own request id; with trace export on, it still gets a span.
        use tracing::Instrument;
        let span = tracing::info_span!(
            "request",
            otel.name = %format!("{} /", req.method()),
            otel.kind = "server",
            request_id = tracing::field::Empty,
            method = %req.method(),
            route = "/",
            http.response.status_code = tracing::field::Empty,
        );
        crate::telemetry::adopt_parent(&span, req.headers());
        let resp = next.run(req).instrument(span.clone()).await;
        span.record("http.response.status_code", resp.status().as_u16());
        resp
    } else {
        use tracing::Instrument;
        let started = std::time::Instant::now();
        let id: Arc<str> = Arc::from(new_request_id());
        let route = route.as_ref().map_or("(unmatched)", |r| r.as_str());
        let span = tracing::info_span!(
            "request",
            request_id = %id,
            method = %req.method(),
            route = %route,
            otel.name = tracing::field::Empty,
            otel.kind = tracing::field::Empty,
            http.response.status_code = tracing::field::Empty,
        );
        if exporting {
            span.record("otel.name", format!("{} {route}", req.method()));
            span.record("otel.kind", "server");
            crate::telemetry::adopt_parent(&span, req.headers());
        }
        let mut resp =
            crate::request::scoped(id.clone(), next.run(req).instrument(span.clone())).await;
        if exporting {
            span.record("http.response.status_code", resp.status().as_u16());
        }
        app.metrics
            .http_request(route, resp.status().as_u16(), started.elapsed());
        if let Ok(v) = HeaderValue::from_str(&id) {
            resp.headers_mut().insert("x-request-id", v);
        }
        resp
    };
    security_headers(resp.headers_mut());
    resp
}

/// The security headers of every response. A page gets [`crate::request::PAGE_CSP`] and `Referrer-Policy:
/// no-referrer` unless it set its own (the portal's same-origin: with no-referrer, browsers send
/// `Origin: null` on its form posts; the PKCE approval page's `form-action` names the client's
/// loopback redirect). Anything else (the STS and the APIs above all, with their high request
/// rates) gets the shorter [`crate::request::API_CSP`] and no referrer policy, which only a document with links
/// could use. Every response: `nosniff`, `X-Frame-Options: DENY`, `Cache-Control: no-store`.
fn security_headers(h: &mut header::HeaderMap) {
    let page = h
        .get(header::CONTENT_TYPE)
        .is_some_and(|v| v.as_bytes().starts_with(b"text/html"));
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    h.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    if page && !h.contains_key(header::REFERRER_POLICY) {
        h.insert(
            header::REFERRER_POLICY,
            HeaderValue::from_static("no-referrer"),
        );
    }
    if !h.contains_key(header::CONTENT_SECURITY_POLICY) {
        let csp = if page { PAGE_CSP } else { API_CSP };
        h.insert(
            header::CONTENT_SECURITY_POLICY,
            HeaderValue::from_static(csp),
        );
    }
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
}

async fn sts_or_home(State(app): State<Arc<App>>, req: Request) -> Response {
    if req.uri().query().is_none_or(|q| q.is_empty()) {
        return home(&app);
    }
    sts_endpoint(State(app), req).await
}

async fn sts_endpoint(State(app): State<Arc<App>>, req: Request) -> Response {
    let request_id = new_request_id();
    let ip = client_ip(&req);
    let limits = app.config.ops.limits;
    let (parts, body) = req.into_parts();
    let too_large = |why: String| {
        let started = std::time::Instant::now();
        let mut e =
            crate::query::QueryError::validation_msg("The request body is too large").because(why);
        e.request_id = request_id.clone();
        app.metrics
            .sts_request("-", Some(e.code.as_str()), started.elapsed());
        let mut ev = crate::audit::AuditEvent::new(app.clock.now(), &request_id, "-");
        ev.outcome(crate::audit::Outcome::Deny);
        ev.refused(&e);
        ev.source_ip = Some(ip.to_string());
        app.audit.record(ev);
        // Not yet parsed, so not yet told apart from IAM: answered as STS.
        e.response(crate::query::xml::NAMESPACE)
    };
    let body: Bytes = match axum::body::to_bytes(body, limits.saml.max(limits.sts)).await {
        Ok(b) => b,
        Err(_) => {
            return too_large(format!(
                "body over the limit of {} bytes",
                limits.saml.max(limits.sts)
            ))
        }
    };
    // Only AssumeRoleWithSAML may be larger than the STS limit (its assertion alone may be
    // 100,000 characters); the action is looked up only for such bodies.
    if body.len() > limits.sts && !is_saml_request(parts.uri.query(), &body) {
        return too_large(format!(
            "body of {} bytes over the limit of {} bytes for actions other than AssumeRoleWithSAML",
            body.len(),
            limits.sts
        ));
    }
    let secure = app.config.ops.tls.is_some()
        || parts.uri.scheme_str() == Some("https")
        || parts
            .extensions
            .get::<forwarded::ForwardedHttps>()
            .is_some();
    query::handle(
        &app,
        QueryRequest {
            method: &parts.method,
            path: parts.uri.path(),
            query: parts.uri.query().unwrap_or(""),
            headers: &parts.headers,
            body: &body,
            source_ip: ip,
            secure_transport: secure,
            request_id: &request_id,
        },
    )
    .await
}

/// Whether the `Action` of a Query API request (query string first, as the STS reads it) is
/// `AssumeRoleWithSAML`.
fn is_saml_request(query: Option<&str>, body: &[u8]) -> bool {
    let action = |bytes: &[u8]| {
        form_urlencoded::parse(bytes)
            .find(|(k, _)| k == "Action")
            .map(|(_, v)| v == "AssumeRoleWithSAML")
    };
    query
        .and_then(|q| action(q.as_bytes()))
        .or_else(|| action(body))
        .unwrap_or(false)
}

/// The landing page at `/`: the way to sign in when there is a portal, the STS endpoint, and
/// the demo's first step. Nothing about roles: whoever reads it has not signed in.
#[derive(Template)]
#[template(path = "home.html")]
struct HomePage<'a> {
    public_url: &'a str,
    portal: bool,
    demo: bool,
}

fn home(app: &App) -> Response {
    let page = HomePage {
        public_url: app.config.public_url.as_str().trim_end_matches('/'),
        portal: app.config.portal.is_some(),
        demo: app.demo.is_some(),
    };
    match page.render() {
        Ok(html) => Html(html).into_response(),
        Err(e) => {
            tracing::error!(error = %e, "rendering the home page failed");
            StatusCode::INTERNAL_SERVER_ERROR.into_response()
        }
    }
}

async fn stylesheet() -> Response {
    (
        [(header::CONTENT_TYPE, "text/css; charset=utf-8")],
        include_str!("../../static/style.css"),
    )
        .into_response()
}

async fn healthz() -> &'static str {
    "ok\n"
}

async fn readyz(State(app): State<Arc<App>>) -> Response {
    if app.draining.load(std::sync::atomic::Ordering::Relaxed) {
        return (StatusCode::SERVICE_UNAVAILABLE, "shutting down\n").into_response();
    }
    match app.store.health().await {
        Ok(()) if app.keys.current_key_id().is_some() => "ready\n".into_response(),
        Ok(()) => (StatusCode::SERVICE_UNAVAILABLE, "no sealing key\n").into_response(),
        Err(e) => {
            tracing::warn!(error = %e, "store not healthy");
            (StatusCode::SERVICE_UNAVAILABLE, "store unavailable\n").into_response()
        }
    }
}

async fn demo_discovery(State(app): State<Arc<App>>) -> Response {
    match &app.demo {
        Some(d) => Json(d.discovery()).into_response(),
        None => StatusCode::NOT_FOUND.into_response(),
    }
}

async fn demo_jwks(State(app): State<Arc<App>>) -> Response {
    match &app.demo {
        Some(d) => Json(d.jwks()).into_response(),
        None => StatusCode::NOT_FOUND.into_response(),
    }
}

async fn demo_token(
    State(app): State<Arc<App>>,
    method: Method,
    Form(form): Form<HashMap<String, String>>,
) -> Response {
    let Some(d) = &app.demo else {
        return StatusCode::NOT_FOUND.into_response();
    };
    debug_assert_eq!(method, Method::POST);
    let sub = form.get("sub").map(String::as_str).unwrap_or("demo-user");
    if sub.is_empty() || sub.len() > 255 {
        return (StatusCode::BAD_REQUEST, "sub must be 1-255 characters\n").into_response();
    }
    let mut extra = serde_json::Map::new();
    if let Some(g) = form.get("groups") {
        let groups: Vec<serde_json::Value> = g
            .split(',')
            .filter(|s| !s.is_empty())
            .map(|s| s.trim().into())
            .collect();
        extra.insert("groups".into(), serde_json::Value::Array(groups));
    }
    if let Some(e) = form.get("email") {
        extra.insert("email".into(), e.clone().into());
    }
    match d.token(sub, &extra, app.clock.now().timestamp()) {
        Ok(t) => (
            [(header::CONTENT_TYPE, "application/jwt")],
            Body::from(format!("{t}\n")),
        )
            .into_response(),
        Err(e) => {
            tracing::error!(error = %e, "demo token signing failed");
            StatusCode::INTERNAL_SERVER_ERROR.into_response()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn audit_times_are_durations_before_now_or_rfc_3339() {
        let now = 1_800_000_000_000;
        assert_eq!(audit_time("--since", "15m", now), Ok(now - 900_000));
        assert_eq!(audit_time("--since", "2d", now), Ok(now - 172_800_000));
        assert_eq!(
            audit_time("--until", "2026-12-03T06:00:00Z", now),
            Ok(1_796_277_600_000)
        );
        assert!(audit_time("--until", "3w", now)
            .unwrap_err()
            .contains("unit"));
        assert!(audit_time("--since", "yesterday", now)
            .unwrap_err()
            .contains("RFC 3339"));
        let p = admin_audit_params_between(
            Some("2026-12-03T06:00:00Z"),
            Some("2026-12-03T07:00:00+01:00"),
            None,
            None,
            Some("deny".into()),
            10,
        )
        .unwrap();
        assert_eq!(p.since_ms, Some(1_796_277_600_000));
        assert_eq!(p.until_ms, p.since_ms, "07:00+01:00 is 06:00Z");
    }

    #[test]
    fn pages_and_everything_else_get_their_own_security_headers() {
        let with = |content_type: &str, own: &[(&'static str, &'static str)]| {
            let mut h = header::HeaderMap::new();
            h.insert(
                header::CONTENT_TYPE,
                HeaderValue::from_str(content_type).unwrap(),
            );
            for (k, v) in own {
                h.insert(*k, HeaderValue::from_static(v));
            }
            security_headers(&mut h);
            h
        };
        let common = |h: &header::HeaderMap| {
            assert_eq!(h["x-content-type-options"], "nosniff");
            assert_eq!(h["x-frame-options"], "DENY");
            assert_eq!(h[header::CACHE_CONTROL], "no-store");
        };
        let page = with("text/html; charset=utf-8", &[]);
        common(&page);
        assert_eq!(page[header::CONTENT_SECURITY_POLICY], PAGE_CSP);
        assert_eq!(page[header::REFERRER_POLICY], "no-referrer");
        // A page's own policies stand.
        let own = with(
            "text/html; charset=utf-8",
            &[
                ("referrer-policy", "same-origin"),
                ("content-security-policy", "default-src 'self'"),
            ],
        );
        common(&own);
        assert_eq!(own[header::CONTENT_SECURITY_POLICY], "default-src 'self'");
        assert_eq!(own[header::REFERRER_POLICY], "same-origin");
        for api in ["text/xml", "application/json", "text/css"] {
            let h = with(api, &[]);
            common(&h);
            assert_eq!(h[header::CONTENT_SECURITY_POLICY], API_CSP, "{api}");
            assert!(!h.contains_key(header::REFERRER_POLICY), "{api}");
        }
        assert!(PAGE_CSP.ends_with("form-action 'self'"));
    }

    #[test]
    fn request_ids_are_distinct_version_4_uuids() {
        let ids: std::collections::HashSet<String> = (0..2_000).map(|_| new_request_id()).collect();
        assert_eq!(ids.len(), 2_000);
        for id in &ids {
            let groups: Vec<&str> = id.split('-').collect();
            assert_eq!(
                groups.iter().map(|g| g.len()).collect::<Vec<_>>(),
                [8, 4, 4, 4, 12],
                "{id}"
            );
            assert!(id
                .bytes()
                .all(|b| b == b'-' || b.is_ascii_digit() || (b'a'..=b'f').contains(&b)));
            assert!(groups[2].starts_with('4'), "{id}");
            assert!(
                matches!(groups[3].as_bytes()[0], b'8'..=b'9' | b'a'..=b'b'),
                "{id}"
            );
        }
    }
}
