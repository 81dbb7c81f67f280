//! Authorization codes of the PKCE flow (kind `sso_auth_code`, keyed by the SHA-256 of the
//! 256-bit code): the person approves at `/authorize` in the portal, the browser carries the
//! code to the client's loopback redirect URI, and the client exchanges it at `CreateToken` with
//! its code verifier (RFC 7636, `S256` only).
//!
//! A code lives [`CODE_SECONDS`] and is used once: the exchange that succeeds deletes it in the
//! write that starts the sign-in, and a failed exchange of a known code (wrong client, redirect
//! URI or verifier) deletes it too, since whoever holds a code and the wrong verifier is not the
//! client that asked.

use super::token::{load_record, random, to_json, write};
use super::{Result, SsoError};
use crate::app::App;
use crate::authz::gate::SignedInIdentity;
use crate::credentials::same_token;
use crate::credentials::token_key as key_of;
use crate::store::DirWrite;
use base64::Engine;
use serde::{Deserialize, Serialize};

/// Directory kind of authorization codes.
pub const CODE_KIND: &str = "sso_auth_code";
/// Lifetime of an authorization code (seconds).
pub const CODE_SECONDS: i64 = 300;
/// The only code challenge method.
pub const S256: &str = "S256";

/// An authorization code as stored.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct CodeRecord {
    /// The client it was issued to.
    pub client_id: String,
    /// The redirect URI exactly as given at `/authorize`.
    pub redirect_uri: String,
    /// The S256 code challenge.
    pub code_challenge: String,
    /// Who approved.
    pub identity: SignedInIdentity,
    /// Granted scopes.
    pub scopes: Vec<String>,
    /// Issue time (Unix seconds).
    pub created_at: i64,
    /// Expiry (Unix seconds).
    pub expires_at: i64,
}

/// Whether `s` has the shape of an S256 code challenge: 43 base64url characters (32 bytes).
pub fn is_s256_challenge(s: &str) -> bool {
    s.len() == 43
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

/// Whether `s` has the shape of a code verifier (RFC 7636 §4.1: 43 to 128 unreserved
/// characters).
pub fn is_verifier(s: &str) -> bool {
    (43..=128).contains(&s.len())
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~'))
}

/// The S256 challenge of a verifier: base64url(SHA-256(verifier)), no padding.
pub fn s256(verifier: &str) -> String {
    let d = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, verifier.as_bytes());
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(d.as_ref())
}

/// Stores a new code for an approval at `/authorize` and returns it.
pub async fn issue(
    app: &App,
    client_id: &str,
    redirect_uri: &str,
    code_challenge: &str,
    identity: SignedInIdentity,
    scopes: Vec<String>,
) -> Result<String> {
    let now = app.clock.now().timestamp();
    let code = random()?;
    let record = CodeRecord {
        client_id: client_id.to_string(),
        redirect_uri: redirect_uri.to_string(),
        code_challenge: code_challenge.to_string(),
        identity,
        scopes,
        created_at: now,
        expires_at: now + CODE_SECONDS,
    };
    if !write(
        app,
        &[DirWrite::insert(
            CODE_KIND,
            &key_of(&code),
            to_json(&record)?,
        )],
    )
    .await?
    {
        return Err(SsoError::internal("authorization code collision"));
    }
    Ok(code)
}

/// The exchange of `CreateToken` with `grant_type=authorization_code`: the code exists, is
/// unexpired, was issued to `client_id` for exactly `redirect_uri`, and `verifier` hashes to its
/// challenge. Returns the record and the write that consumes it (to join the write that starts
/// the sign-in). Every refusal is `InvalidGrantException` with the precise reason.
pub async fn redeem(
    app: &App,
    client_id: &str,
    code: &str,
    redirect_uri: &str,
    verifier: &str,
) -> Result<(CodeRecord, DirWrite)> {
    let invalid = || SsoError::invalid_grant("Invalid authorization code provided");
    let now = app.clock.now().timestamp();
    let key = key_of(code);
    let Some((r, v)) =
        load_record::<CodeRecord>(app, CODE_KIND, &key, "authorization code record").await?
    else {
        return Err(invalid().because("unknown or already used authorization code"));
    };
    let problem = if r.client_id != client_id {
        Some(format!(
            "authorization code was issued to client {}, not {client_id}",
            r.client_id
        ))
    } else if r.expires_at <= now {
        Some(format!(
            "authorization code expired {} s ago",
            now - r.expires_at
        ))
    } else if r.redirect_uri != redirect_uri {
        Some(format!(
            "redirectUri {redirect_uri:?} is not the {:?} of the authorization request",
            r.redirect_uri
        ))
    } else if !is_verifier(verifier) {
        Some("codeVerifier is not 43 to 128 unreserved characters".to_string())
    } else if !same_token(&s256(verifier), &r.code_challenge) {
        Some("codeVerifier does not match the S256 code challenge".to_string())
    } else {
        None
    };
    if let Some(why) = problem {
        // Spent: whoever presents a code wrongly is not the client that asked for it.
        let _ = write(app, &[DirWrite::delete(CODE_KIND, &key, v.version)]).await?;
        return Err(invalid().because(format!("{why}; the code is spent")));
    }
    Ok((r, DirWrite::delete(CODE_KIND, &key, v.version)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn s256_is_rfc_7636_appendix_b() {
        let verifier = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk";
        assert_eq!(
            s256(verifier),
            "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM"
        );
        assert!(is_verifier(verifier));
        assert!(is_s256_challenge(&s256(verifier)));
        assert!(!is_verifier("short"));
        assert!(!is_verifier(&"a".repeat(129)));
        assert!(!is_verifier(&format!("{}+", "a".repeat(43))));
        assert!(!is_s256_challenge("plain-challenge"));
    }
}
