//! Identity providers: each verifies one kind of proof of identity and yields a [`VerifiedIdentity`].
//! `jwt` verifies web identity tokens (OIDC ID tokens) against the issuer's pinned JWKS. Knows nothing of
//! HTTP routing, cookies or policies.

pub mod demo;
pub mod jwt;
pub mod local;
pub mod oidc;
pub mod saml;

use crate::config::OidcProvider;
use std::sync::Arc;

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
