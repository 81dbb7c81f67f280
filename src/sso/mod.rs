//! IAM Identity Center compatibility for command line sign-in: the SSO-OIDC token API
//! ([`oidc`]: RegisterClient, StartDeviceAuthorization, CreateToken) and the portal API
//! ([`portal_api`]: ListAccounts, ListAccountRoles, GetRoleCredentials, Logout), both rest-json as
//! the AWS SDKs speak them. A person approves a device code or a PKCE sign-in in the browser portal;
//! the resulting SSO access token carries that portal sign-in's identity (see [`token`]).
//!
//! Owns: the JSON wire shapes and errors of both APIs. Must not know: HTML (the approval pages live
//! in the portal), how a provider proves an identity.

#[cfg(test)]
mod api_tests;
pub mod client;
pub mod code;
pub mod device;
pub mod oidc;
pub mod portal_api;
#[cfg(test)]
mod portal_api_tests;
#[cfg(test)]
pub(crate) mod testing;
pub mod token;

use crate::app::App;
use axum::http::{HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Router;
use std::sync::Arc;

/// Which of the two APIs an error belongs to: they shape error bodies differently.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Api {
    /// SSO-OIDC: `{"error": "...", "error_description": "..."}`.
    Oidc,
    /// The portal API: `{"message": "..."}`.
    Portal,
}

/// An error of either API: the AWS error type (the `x-amzn-ErrorType` header, which the SDKs turn
/// into the exception name), its HTTP status, a coarse message for the client and the precise
/// reason for the audit log.
#[derive(Debug, Clone, thiserror::Error)]
#[error("{code}: {reason}")]
pub struct SsoError {
    /// Which API answers.
    pub api: Api,
    /// AWS error type, e.g. `AuthorizationPendingException`.
    pub code: &'static str,
    /// HTTP status.
    pub status: StatusCode,
    /// The OAuth `error` value (SSO-OIDC only), e.g. `authorization_pending`.
    pub oauth_error: &'static str,
    /// What the client is told.
    pub message: String,
    /// What the audit log records.
    pub reason: String,
}

impl SsoError {
    fn new(
        api: Api,
        code: &'static str,
        status: StatusCode,
        oauth_error: &'static str,
        message: impl Into<String>,
    ) -> Self {
        let message = message.into();
        Self {
            api,
            code,
            status,
            oauth_error,
            reason: message.clone(),
            message,
        }
    }

    /// Replaces the audit reason.
    pub fn because(mut self, reason: impl Into<String>) -> Self {
        self.reason = reason.into();
        self
    }

    /// SSO-OIDC `InvalidRequestException` (400): a missing or malformed parameter.
    pub fn invalid_request(message: impl Into<String>) -> Self {
        Self::new(
            Api::Oidc,
            "InvalidRequestException",
            StatusCode::BAD_REQUEST,
            "invalid_request",
            message,
        )
    }

    /// SSO-OIDC `InvalidClientException` (401): unknown client, wrong or expired secret.
    pub fn invalid_client(message: impl Into<String>) -> Self {
        Self::new(
            Api::Oidc,
            "InvalidClientException",
            StatusCode::UNAUTHORIZED,
            "invalid_client",
            message,
        )
    }

    /// SSO-OIDC `InvalidGrantException` (400): a code, device code or refresh token that is
    /// unknown, used, or issued to another client.
    pub fn invalid_grant(message: impl Into<String>) -> Self {
        Self::new(
            Api::Oidc,
            "InvalidGrantException",
            StatusCode::BAD_REQUEST,
            "invalid_grant",
            message,
        )
    }

    /// SSO-OIDC `UnsupportedGrantTypeException` (400).
    pub fn unsupported_grant_type(message: impl Into<String>) -> Self {
        Self::new(
            Api::Oidc,
            "UnsupportedGrantTypeException",
            StatusCode::BAD_REQUEST,
            "unsupported_grant_type",
            message,
        )
    }

    /// SSO-OIDC `UnauthorizedClientException` (400): the client may not use this grant.
    pub fn unauthorized_client(message: impl Into<String>) -> Self {
        Self::new(
            Api::Oidc,
            "UnauthorizedClientException",
            StatusCode::BAD_REQUEST,
            "unauthorized_client",
            message,
        )
    }

    /// SSO-OIDC `InvalidScopeException` (400).
    pub fn invalid_scope(message: impl Into<String>) -> Self {
        Self::new(
            Api::Oidc,
            "InvalidScopeException",
            StatusCode::BAD_REQUEST,
            "invalid_scope",
            message,
        )
    }

    /// SSO-OIDC `InvalidClientMetadataException` (400): RegisterClient with bad metadata.
    pub fn invalid_client_metadata(message: impl Into<String>) -> Self {
        Self::new(
            Api::Oidc,
            "InvalidClientMetadataException",
            StatusCode::BAD_REQUEST,
            "invalid_client_metadata",
            message,
        )
    }

    /// SSO-OIDC `InvalidRedirectUriException` (400).
    pub fn invalid_redirect_uri(message: impl Into<String>) -> Self {
        Self::new(
            Api::Oidc,
            "InvalidRedirectUriException",
            StatusCode::BAD_REQUEST,
            "invalid_redirect_uri",
            message,
        )
    }

    /// SSO-OIDC `AuthorizationPendingException` (400): the person has not approved yet.
    pub fn authorization_pending() -> Self {
        Self::new(
            Api::Oidc,
            "AuthorizationPendingException",
            StatusCode::BAD_REQUEST,
            "authorization_pending",
            "Authorization is pending",
        )
    }

    /// SSO-OIDC `SlowDownException` (400): polled sooner than `interval` allows.
    pub fn slow_down() -> Self {
        Self::new(
            Api::Oidc,
            "SlowDownException",
            StatusCode::BAD_REQUEST,
            "slow_down",
            "Client is polling too fast",
        )
    }

    /// SSO-OIDC `ExpiredTokenException` (400): the device code (or token) ran out.
    pub fn expired_token(message: impl Into<String>) -> Self {
        Self::new(
            Api::Oidc,
            "ExpiredTokenException",
            StatusCode::BAD_REQUEST,
            "expired_token",
            message,
        )
    }

    /// SSO-OIDC `AccessDeniedException` (400): the person denied the sign-in.
    pub fn access_denied(message: impl Into<String>) -> Self {
        Self::new(
            Api::Oidc,
            "AccessDeniedException",
            StatusCode::BAD_REQUEST,
            "access_denied",
            message,
        )
    }

    /// `InternalServerException` (500) of SSO-OIDC, e.g. when the store fails.
    pub fn internal(reason: impl Into<String>) -> Self {
        Self::new(
            Api::Oidc,
            "InternalServerException",
            StatusCode::INTERNAL_SERVER_ERROR,
            "server_error",
            "An internal error occurred",
        )
        .because(reason)
    }

    /// Portal API `UnauthorizedException` (401): no, an unknown, an expired or an ended token.
    pub fn unauthorized(reason: impl Into<String>) -> Self {
        Self::new(
            Api::Portal,
            "UnauthorizedException",
            StatusCode::UNAUTHORIZED,
            "",
            "Session token not found or invalid",
        )
        .because(reason)
    }

    /// Portal API `InvalidRequestException` (400).
    pub fn portal_invalid_request(message: impl Into<String>) -> Self {
        Self::new(
            Api::Portal,
            "InvalidRequestException",
            StatusCode::BAD_REQUEST,
            "",
            message,
        )
    }

    /// Portal API `ForbiddenException` (403): the assignment or its policy does not allow this.
    pub fn forbidden(message: impl Into<String>) -> Self {
        Self::new(
            Api::Portal,
            "ForbiddenException",
            StatusCode::FORBIDDEN,
            "",
            message,
        )
    }

    /// Portal API `ResourceNotFoundException` (404): no such account or role for this person.
    pub fn not_found(message: impl Into<String>) -> Self {
        Self::new(
            Api::Portal,
            "ResourceNotFoundException",
            StatusCode::NOT_FOUND,
            "",
            message,
        )
    }

    /// Portal API `TooManyRequestsException` (429).
    pub fn too_many_requests(reason: impl Into<String>) -> Self {
        Self::new(
            Api::Portal,
            "TooManyRequestsException",
            StatusCode::TOO_MANY_REQUESTS,
            "",
            "Too many requests",
        )
        .because(reason)
    }

    /// The portal API's answer when the store fails (AWS documents no 5xx shape there; the SDKs
    /// retry a 500).
    pub fn portal_internal(reason: impl Into<String>) -> Self {
        Self::new(
            Api::Portal,
            "InternalServerException",
            StatusCode::INTERNAL_SERVER_ERROR,
            "",
            "An internal error occurred",
        )
        .because(reason)
    }

    /// The same error answered by the other API (the token helpers serve both).
    pub fn for_api(mut self, api: Api) -> Self {
        self.api = api;
        self
    }

    /// The JSON body.
    pub fn body(&self) -> String {
        match self.api {
            Api::Oidc => serde_json::json!({
                "error": self.oauth_error,
                "error_description": self.message,
            }),
            Api::Portal => serde_json::json!({ "message": self.message }),
        }
        .to_string()
    }
}

impl IntoResponse for SsoError {
    fn into_response(self) -> Response {
        if self.status.is_server_error() {
            tracing::error!(code = self.code, reason = %self.reason, "SSO request failed");
        }
        let mut resp = (
            self.status,
            [("content-type", "application/json")],
            self.body(),
        )
            .into_response();
        resp.headers_mut()
            .insert("x-amzn-errortype", HeaderValue::from_static(self.code));
        resp
    }
}

/// Result of SSO operations.
pub type Result<T> = std::result::Result<T, SsoError>;

/// The routes of both APIs (empty without `[sso]`).
pub fn router(app: &App) -> Router<Arc<App>> {
    if app.config.sso.is_some() {
        oidc::routes().merge(portal_api::routes())
    } else {
        Router::new()
    }
}

/// An audit event of either API for a request from `ip`.
pub(crate) fn event(app: &App, action: &str, ip: &str) -> crate::audit::AuditEvent {
    let mut ev =
        crate::audit::AuditEvent::new(app.clock.now(), &crate::request::request_id(), action);
    ev.source_ip = Some(ip.to_string());
    ev
}

/// A 200 answer with a JSON body.
pub(crate) fn ok_json(body: serde_json::Value) -> Response {
    (
        StatusCode::OK,
        [("content-type", "application/json")],
        body.to_string(),
    )
        .into_response()
}

/// Answers `result` of either API and audits it: a refusal always (deny, or error for a server
/// fault, with the precise reason and the error type), a success when `audit_allowed` (the
/// portal API's reads are audited only when refused: a CLI lists on every sign-in, and the
/// allowed reads say nothing an operator needs).
pub(crate) fn finish(
    app: &App,
    mut ev: crate::audit::AuditEvent,
    result: Result<Response>,
    audit_allowed: bool,
) -> Response {
    use crate::audit::Outcome;
    match result {
        Ok(resp) => {
            if audit_allowed {
                ev.outcome(Outcome::Allow);
                app.audit.record(ev);
            }
            resp
        }
        Err(e) => {
            ev.outcome(if e.status.is_server_error() {
                Outcome::Error
            } else {
                Outcome::Deny
            });
            ev.reason = Some(e.reason.clone());
            ev.error_code = Some(e.code.to_string());
            app.audit.record(ev);
            e.into_response()
        }
    }
}

/// Every kind of SSO record in the store.
pub const RECORD_KINDS: &[&str] = &[
    token::ACCESS_KIND,
    token::REFRESH_KIND,
    token::SIGNIN_KIND,
    device::DEVICE_KIND,
    device::USER_CODE_KIND,
    code::CODE_KIND,
    client::CLIENT_KIND,
];

/// Deletes what has run out: tokens and sign-ins, device and user codes, authorization codes and
/// clients whose secret expired. Returns how many records.
pub async fn purge_expired(app: &App, now: i64) -> Result<usize> {
    token::purge_records(app, RECORD_KINDS, now).await
}

/// The start URL of this rolegate: what `sso_start_url` / `startUrl` name (the portal's home).
pub fn start_url(config: &crate::config::Config) -> String {
    format!("{}/start", config.public_url.as_str().trim_end_matches('/'))
}

/// Whether a client's `startUrl` names this rolegate: the start URL or the portal home, with or
/// without a trailing slash.
pub fn is_our_start_url(config: &crate::config::Config, url: &str) -> bool {
    let base = config.public_url.as_str().trim_end_matches('/');
    let u = url.trim_end_matches('/');
    u == format!("{base}/start") || u == format!("{base}/portal") || u == base
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn errors_have_the_aws_shapes() {
        let e = SsoError::slow_down();
        assert_eq!(e.status, StatusCode::BAD_REQUEST);
        let body: serde_json::Value = serde_json::from_str(&e.body()).unwrap();
        assert_eq!(body["error"], "slow_down");
        let resp = e.into_response();
        assert_eq!(resp.headers()["x-amzn-errortype"], "SlowDownException");
        let p = SsoError::unauthorized("token expired");
        assert_eq!(p.status, StatusCode::UNAUTHORIZED);
        let body: serde_json::Value = serde_json::from_str(&p.body()).unwrap();
        assert!(body.get("error").is_none());
        assert_eq!(body["message"], "Session token not found or invalid");
        assert_eq!(p.reason, "token expired");
    }
}
