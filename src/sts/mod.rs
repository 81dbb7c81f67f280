//! The STS Query API (`AssumeRoleWithSAML` in [`saml`]): parameters from a form body or query string, dispatch on `Action` (named with
//! AWS's words in [`StsAction`]), handlers, XML responses and [`StsError`] → `ErrorResponse`.
//! Knows nothing of HTML or cookies. Requests whose `Version` is IAM's are answered by [`crate::iam`].

mod actions;
pub(crate) mod auth;
pub(crate) mod context;
pub mod error;
pub mod params;
pub mod saml;
#[cfg(test)]
mod saml_tests;
#[cfg(test)]
mod web_identity_tests;
pub mod xml;

pub use actions::credentials_for_assignment;
pub(crate) use actions::encode_denial;
pub use error::StsError;

use crate::app::App;
use crate::audit::{AuditEvent, Outcome};
use axum::http::{header, HeaderMap, HeaderValue, Method};
use axum::response::{IntoResponse, Response};
use params::Params;
use std::net::IpAddr;
use std::sync::Arc;

/// The response header that carries the request id, as AWS names it.
pub static X_AMZN_REQUESTID: header::HeaderName =
    header::HeaderName::from_static("x-amzn-requestid");

/// The headers of every STS and IAM answer, result or error: XML, and the request id.
pub fn set_xml_headers(h: &mut HeaderMap, request_id: &str) {
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static("text/xml"));
    if let Ok(v) = HeaderValue::from_str(request_id) {
        h.insert(X_AMZN_REQUESTID.clone(), v);
    }
}

/// The STS API version.
pub const API_VERSION: &str = "2011-06-15";

/// The actions rolegate's STS answers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StsAction {
    /// Unsigned: an OIDC token for credentials.
    AssumeRoleWithWebIdentity,
    /// Signed: who am I.
    GetCallerIdentity,
    /// Signed: a session of another role.
    AssumeRole,
    /// Signed: the explanation behind a denial.
    DecodeAuthorizationMessage,
    /// Signed with a directory user's long-term key: the user's own temporary credentials.
    GetSessionToken,
    /// Signed with a directory user's long-term key: credentials of a federated user.
    GetFederationToken,
    /// Unsigned: a SAML assertion for credentials.
    AssumeRoleWithSAML,
}

impl StsAction {
    /// Parses an `Action` value (case-sensitive, as AWS).
    pub fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "AssumeRoleWithWebIdentity" => Self::AssumeRoleWithWebIdentity,
            "GetCallerIdentity" => Self::GetCallerIdentity,
            "AssumeRole" => Self::AssumeRole,
            "DecodeAuthorizationMessage" => Self::DecodeAuthorizationMessage,
            "GetSessionToken" => Self::GetSessionToken,
            "GetFederationToken" => Self::GetFederationToken,
            "AssumeRoleWithSAML" => Self::AssumeRoleWithSAML,
            _ => return None,
        })
    }

    /// AWS's name.
    pub fn name(self) -> &'static str {
        match self {
            Self::AssumeRoleWithWebIdentity => "AssumeRoleWithWebIdentity",
            Self::GetCallerIdentity => "GetCallerIdentity",
            Self::AssumeRole => "AssumeRole",
            Self::DecodeAuthorizationMessage => "DecodeAuthorizationMessage",
            Self::GetSessionToken => "GetSessionToken",
            Self::GetFederationToken => "GetFederationToken",
            Self::AssumeRoleWithSAML => "AssumeRoleWithSAML",
        }
    }
}

/// One STS request as received.
pub struct StsRequest<'a> {
    /// HTTP method.
    pub method: &'a Method,
    /// Raw path.
    pub path: &'a str,
    /// Raw query string.
    pub query: &'a str,
    /// Headers.
    pub headers: &'a HeaderMap,
    /// Body bytes.
    pub body: &'a [u8],
    /// Client address.
    pub source_ip: IpAddr,
    /// Whether the request came over TLS.
    pub secure_transport: bool,
    /// Request id for the response and the audit log.
    pub request_id: &'a str,
}

/// Handles one STS request end to end, recording exactly one audit event.
pub async fn handle(app: &Arc<App>, req: StsRequest<'_>) -> Response {
    let started = std::time::Instant::now();
    let now = app.clock.now();
    let mut params = Params::default();
    params.add_form(req.query.as_bytes());
    if req.method == Method::POST {
        params.add_form(req.body);
    }
    let action_name = params
        .get("Action")
        .ok()
        .flatten()
        .unwrap_or("")
        .to_string();
    if crate::telemetry::enabled() {
        let span = tracing::Span::current();
        span.record("request_id", req.request_id);
        if let Some(a) = StsAction::parse(&action_name) {
            crate::telemetry::rename(&span, format!("sts:{}", a.name()));
        }
    }
    let mut event = AuditEvent::new(
        now,
        req.request_id,
        if action_name.is_empty() {
            "-"
        } else {
            &action_name
        },
    );
    event.source_ip = Some(req.source_ip.to_string());
    event.user_agent = req
        .headers
        .get(header::USER_AGENT)
        .and_then(|v| v.to_str().ok())
        .map(|s| {
            // At most 256 characters (a header value that is a str is ASCII: bytes are characters).
            s[..s.len().min(256)].to_string()
        });

    let iam = crate::iam::is_iam_request(&params);
    let mfa_serial = match (params.get("TokenCode"), params.get("SerialNumber")) {
        (Ok(Some(_)), Ok(serial)) => Some(serial.unwrap_or("-")),
        _ => None,
    };
    let result = match app.limits.sts(req.source_ip, mfa_serial) {
        Ok(()) => dispatch(app, &req, &params, &mut event).await,
        Err(limited) => {
            app.metrics.rate_limited(limited.limit);
            Err(StsError::throttling(format!(
                "rate limit {} exceeded by {}",
                limited.limit,
                match limited.limit {
                    "mfa_per_user" => mfa_serial.unwrap_or("-").to_string(),
                    _ => req.source_ip.to_string(),
                }
            )))
        }
    };
    let response = match result {
        Ok(xml) => {
            event.outcome(Outcome::Allow);
            let mut r = xml.into_response();
            let h = r.headers_mut();
            // Room for these two and the security headers added on the way out, without regrowing.
            h.reserve(8);
            set_xml_headers(h, req.request_id);
            r
        }
        Err(mut e) => {
            e.request_id = req.request_id.to_string();
            event.outcome(if e.status().is_server_error() {
                Outcome::Error
            } else {
                Outcome::Deny
            });
            event.error_code = Some(e.code.to_string());
            event.reason = Some(e.reason.clone());
            if iam {
                crate::iam::error_response(e)
            } else {
                e.into_response()
            }
        }
    };
    app.metrics
        .sts_request(&action_name, event.error_code.as_deref(), started.elapsed());
    app.audit.record(event);
    response
}

async fn dispatch(
    app: &Arc<App>,
    req: &StsRequest<'_>,
    params: &Params,
    ev: &mut AuditEvent,
) -> Result<String, StsError> {
    if crate::iam::is_iam_request(params) {
        return crate::iam::dispatch(app, req, params, ev).await;
    }
    let action = params.get("Action")?.ok_or_else(|| {
        StsError::invalid_action("The request must contain the parameter Action")
            .because("no Action parameter")
    })?;
    let Some(action) = StsAction::parse(action) else {
        let shown: String = action.chars().take(64).collect();
        return Err(StsError::invalid_action(format!(
            "Could not find operation {shown} for version {API_VERSION}"
        )));
    };
    if let Some(v) = params.get("Version")? {
        if v != API_VERSION {
            let shown: String = v.chars().take(32).collect();
            return Err(StsError::invalid_action(format!(
                "Could not find operation {} for version {shown}",
                action.name()
            )));
        }
    }
    match action {
        StsAction::AssumeRoleWithWebIdentity => {
            actions::assume_role_with_web_identity(app, req, params, ev).await
        }
        StsAction::GetCallerIdentity => actions::get_caller_identity(app, req, ev).await,
        StsAction::AssumeRole => actions::assume_role(app, req, params, ev).await,
        StsAction::DecodeAuthorizationMessage => {
            actions::decode_authorization_message(app, req, params, ev).await
        }
        StsAction::GetSessionToken => actions::get_session_token(app, req, params, ev).await,
        StsAction::GetFederationToken => actions::get_federation_token(app, req, params, ev).await,
        StsAction::AssumeRoleWithSAML => saml::assume_role_with_saml(app, req, params, ev).await,
    }
}
