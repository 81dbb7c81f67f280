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
mod error;
pub mod oidc;
pub mod portal_api;
#[cfg(test)]
mod portal_api_tests;
#[cfg(test)]
pub(crate) mod testing;
pub mod token;

pub use error::{Api, SsoCode, SsoError};

use crate::app::App;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Router;
use std::sync::Arc;

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
    ev: crate::audit::AuditEvent,
    result: Result<Response>,
    audit_allowed: bool,
) -> Response {
    app.audit
        .finish(ev, result, audit_allowed, |e| e.status().is_server_error())
        .unwrap_or_else(IntoResponse::into_response)
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
