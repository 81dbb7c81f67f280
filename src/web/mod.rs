//! Router assembly and middleware: request ids, body limits, security headers, health, the admin API,
//! the demo issuer and static files. Domain rules live elsewhere.

mod admin;
pub mod authorize;
pub mod directory;
pub mod saml;

pub use admin::{AuditParams, RevocationRequest};

use crate::app::App;
use crate::idp::demo::DEMO_PATH;
use crate::sts::{self, StsRequest};
use askama::Template;
use axum::body::{Body, Bytes};
use axum::extract::{ConnectInfo, DefaultBodyLimit, Request, State};
use axum::http::{header, HeaderValue, Method, StatusCode};
use axum::response::{Html, IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Form, Json, Router};
use std::collections::HashMap;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::Arc;

/// Largest request body accepted on the STS endpoint (a SAML assertion is at most 100,000 characters).
pub const STS_BODY_LIMIT: usize = 256 * 1024;

/// The whole HTTP surface of rolegate.
pub fn router(app: Arc<App>) -> Router {
    let mut r = Router::new()
        .route("/", get(sts_or_home).post(sts_endpoint))
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
        .route("/static/style.css", get(stylesheet))
        .merge(admin::routes())
        .merge(directory::routes())
        .merge(authorize::routes())
        .merge(saml::routes());
    if app.demo.is_some() {
        r = r
            .route(
                &format!("{DEMO_PATH}/.well-known/openid-configuration"),
                get(demo_discovery),
            )
            .route(&format!("{DEMO_PATH}/jwks"), get(demo_jwks))
            .route(&format!("{DEMO_PATH}/token"), post(demo_token));
    }
    r.layer(DefaultBodyLimit::max(STS_BODY_LIMIT))
        .layer(axum::middleware::from_fn(security_headers))
        .with_state(app)
}

/// Audit query parameters from CLI arguments; `since` is a duration such as `15m`, `2h` or `7d`.
pub fn admin_audit_params(
    since: Option<&str>,
    action: Option<String>,
    principal: Option<String>,
    decision: Option<String>,
    limit: usize,
) -> Result<AuditParams, String> {
    let since_ms = match since {
        None => None,
        Some(s) => {
            let (n, unit) = s.split_at(s.len().saturating_sub(1));
            let n: i64 = n
                .parse()
                .map_err(|_| format!("--since {s}: expected a number and a unit (s, m, h, d)"))?;
            let secs = match unit {
                "s" => n,
                "m" => n * 60,
                "h" => n * 3600,
                "d" => n * 86_400,
                _ => return Err(format!("--since {s}: unit must be s, m, h or d")),
            };
            Some(chrono::Utc::now().timestamp_millis() - secs * 1000)
        }
    };
    if let Some(d) = &decision {
        if !["allow", "deny", "error"].contains(&d.as_str()) {
            return Err(format!("--decision {d}: expected allow, deny or error"));
        }
    }
    Ok(AuditParams {
        since_ms,
        until_ms: None,
        action,
        principal,
        decision,
        limit: Some(limit),
        oldest_first: false,
    })
}

/// A request id in the shape AWS uses (a random UUID).
pub fn new_request_id() -> String {
    let mut b = random_16();
    b[6] = (b[6] & 0x0f) | 0x40;
    b[8] = (b[8] & 0x3f) | 0x80;
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let mut id = String::with_capacity(36);
    for (i, byte) in b.iter().enumerate() {
        if matches!(i, 4 | 6 | 8 | 10) {
            id.push('-');
        }
        id.push(char::from(HEX[usize::from(byte >> 4)]));
        id.push(char::from(HEX[usize::from(byte & 0x0f)]));
    }
    id
}

/// 16 random bytes ([`crate::credentials::fill_random`]); if the generator fails, which is never
/// seen in practice, an id must still be unique: the time and a count.
fn random_16() -> [u8; 16] {
    let mut out = [0u8; 16];
    if crate::credentials::fill_random(&mut out).is_err() {
        static COUNT: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
        let n = COUNT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let t = chrono::Utc::now().timestamp_nanos_opt().unwrap_or_default() as u64;
        out[..8].copy_from_slice(&t.to_be_bytes());
        out[8..].copy_from_slice(&n.to_be_bytes());
    }
    out
}

async fn security_headers(req: Request, next: axum::middleware::Next) -> Response {
    let mut resp = next.run(req).await;
    let h = resp.headers_mut();
    h.insert(
        "x-content-type-options",
        HeaderValue::from_static("nosniff"),
    );
    h.insert("referrer-policy", HeaderValue::from_static("no-referrer"));
    h.insert("x-frame-options", HeaderValue::from_static("DENY"));
    h.insert(
        "content-security-policy",
        HeaderValue::from_static("default-src 'none'; style-src 'self'; img-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'"),
    );
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    resp
}

fn client_ip(req: &Request) -> IpAddr {
    req.extensions()
        .get::<ConnectInfo<SocketAddr>>()
        .map(|c| c.0.ip())
        .unwrap_or(IpAddr::V4(Ipv4Addr::LOCALHOST))
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
    let (parts, body) = req.into_parts();
    let body: Bytes = match axum::body::to_bytes(body, STS_BODY_LIMIT).await {
        Ok(b) => b,
        Err(_) => {
            let mut e = sts::StsError::validation_msg("The request body is too large")
                .because("body over the limit");
            e.request_id = request_id;
            return e.into_response();
        }
    };
    let secure = parts.uri.scheme_str() == Some("https");
    sts::handle(
        &app,
        StsRequest {
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

#[derive(Template)]
#[template(path = "home.html")]
struct HomePage<'a> {
    public_url: &'a str,
    roles: Vec<(String, String)>,
    providers: Vec<String>,
    demo: bool,
}

fn home(app: &App) -> Response {
    let page = HomePage {
        public_url: app.config.public_url.as_str().trim_end_matches('/'),
        roles: app
            .config
            .roles
            .iter()
            .map(|r| (r.arn.clone(), r.description.clone().unwrap_or_default()))
            .collect(),
        providers: app
            .config
            .oidc_providers
            .iter()
            .map(|p| p.issuer.clone())
            .collect(),
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
