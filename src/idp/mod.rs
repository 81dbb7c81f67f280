//! Identity providers: each verifies one kind of proof of identity and yields a [`VerifiedIdentity`].
//! `jwt` verifies web identity tokens (OIDC ID tokens) against the issuer's pinned JWKS. Knows nothing of
//! HTTP routing, cookies or policies.

pub mod demo;
pub mod jwt;
pub mod local;
pub mod oidc;
pub mod provisioned;
pub mod saml;

/// How a provider's keys or metadata were last fetched, for operators (the console's health page).
#[derive(Debug, Clone)]
pub struct ProviderHealth {
    /// The provider's name (an OIDC issuer or a SAML provider's name).
    pub name: String,
    /// `web identity` or `SAML`.
    pub kind: &'static str,
    /// Seconds since its keys or metadata were last loaded, if they ever were.
    pub loaded_secs_ago: Option<u64>,
    /// Why the last attempt failed, if it did.
    pub last_error: Option<String>,
}

use crate::config::OidcProvider;
use std::sync::Arc;
use std::time::Duration;

/// An identity proven by a provider.
#[derive(Debug, Clone)]
pub struct VerifiedIdentity {
    /// The provider that vouched for it.
    pub provider: Arc<OidcProvider>,
    /// `sub`.
    pub subject: String,
    /// The audience (client id) the token was accepted for.
    pub audience: String,
    /// Every claim of the token.
    pub claims: serde_json::Map<String, serde_json::Value>,
    /// `iat`, epoch seconds.
    pub issued_at: i64,
    /// `exp`, epoch seconds.
    pub expires_at: i64,
}

/// The HTTP client that talks to OpenID providers (discovery, keys, tokens): a redirect is never
/// followed; 5 s a request, 3 s to connect; rolegate's user agent.
pub(crate) fn oidc_http_client() -> Result<reqwest::Client, String> {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .timeout(Duration::from_secs(5))
        .connect_timeout(Duration::from_secs(3))
        .user_agent(concat!("rolegate/", env!("CARGO_PKG_VERSION")))
        .build()
        .map_err(|e| format!("http client: {e}"))
}

/// When a verified token says its user authenticated: `auth_time` when given and not after `iat`
/// (`issued_at`), else `iat`.
pub fn authenticated_at(
    claims: &serde_json::Map<String, serde_json::Value>,
    issued_at: i64,
) -> i64 {
    claims
        .get("auth_time")
        .and_then(serde_json::Value::as_i64)
        .filter(|t| *t <= issued_at)
        .unwrap_or(issued_at)
}
