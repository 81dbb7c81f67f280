//! Registered SSO-OIDC clients (kind `sso_client`, keyed by client id): what `RegisterClient`
//! accepts, and the client authentication of every later call.
//!
//! Only public clients exist (a CLI on someone's laptop keeps no secret that matters): the
//! secret AWS hands out anyway is 256 random bits, stored as its SHA-256 only, compared in
//! constant time, and it expires after `[sso] client_secret_days`, when the client is purged.
//! Redirect URIs are loopback only (RFC 8252 §7.3): a URI registered without a port matches the
//! same URI at any port, as the AWS CLI registers `http://127.0.0.1/oauth/callback` and then
//! listens on a port of its choosing.

use super::token::{load_record, random, settings, to_json, write};
use super::{Result, SsoError};
use crate::app::App;
use crate::credentials::same_token;
use crate::credentials::token_key as key_of;
use crate::store::{DirWrite, Versioned};
use serde::{Deserialize, Serialize};

/// Directory kind of registered clients.
pub const CLIENT_KIND: &str = "sso_client";
/// The device authorization grant (RFC 8628).
pub const DEVICE_GRANT: &str = "urn:ietf:params:oauth:grant-type:device_code";
/// The authorization code grant (with PKCE).
pub const CODE_GRANT: &str = "authorization_code";
/// The refresh token grant.
pub const REFRESH_GRANT: &str = "refresh_token";
/// Every grant a client may register.
pub const GRANTS: &[&str] = &[DEVICE_GRANT, CODE_GRANT, REFRESH_GRANT];
/// The grants of a client that names none (what the device flow of the AWS SDKs needs).
pub const DEFAULT_GRANTS: &[&str] = &[DEVICE_GRANT, REFRESH_GRANT];
/// The scope that gives the portal API (ListAccounts, GetRoleCredentials…): the only one
/// rolegate knows, and the one a client that names none gets.
pub const ACCOUNT_ACCESS_SCOPE: &str = "sso:account:access";
/// Every scope a client may register or ask for.
pub const SCOPES: &[&str] = &[ACCOUNT_ACCESS_SCOPE];
/// Longest client name.
pub const MAX_NAME_CHARS: usize = 128;
/// Most redirect URIs, scopes or grant types in one registration.
pub const MAX_LIST: usize = 10;
/// Longest redirect URI.
pub const MAX_URI_CHARS: usize = 512;

/// A registered client as stored.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ClientRecord {
    /// The name it registered with (shown on the approval pages).
    pub name: String,
    /// SHA-256 (hex) of its secret.
    pub secret_hash: String,
    /// Registration time (Unix seconds).
    pub issued_at: i64,
    /// The secret, and with it the client, expires then (Unix seconds).
    pub expires_at: i64,
    /// Grants it may use.
    pub grant_types: Vec<String>,
    /// Loopback redirect URIs (normalised) for the authorization code grant.
    #[serde(default)]
    pub redirect_uris: Vec<String>,
    /// Scopes it may ask for.
    pub scopes: Vec<String>,
}

impl ClientRecord {
    /// Whether the client registered `grant`.
    pub fn allows(&self, grant: &str) -> bool {
        self.grant_types.iter().any(|g| g == grant)
    }

    /// Whether `uri` (as given at `/authorize`) is one of the client's redirect URIs: equal once
    /// parsed, or equal but for the port to one registered without a port.
    pub fn redirect_matches(&self, uri: &str) -> bool {
        let Ok(asked) = loopback_uri(uri) else {
            return false;
        };
        self.redirect_uris.iter().any(|r| {
            let Ok(reg) = url::Url::parse(r) else {
                return false;
            };
            reg.host_str() == asked.host_str()
                && reg.path() == asked.path()
                && reg.query() == asked.query()
                && (reg.port().is_none() || reg.port() == asked.port())
        })
    }

    /// The scopes granted for `asked` (none asked: all the client registered); an asked scope
    /// the client did not register is refused.
    pub fn grant_scopes(&self, asked: &[String]) -> Result<Vec<String>> {
        if asked.is_empty() {
            return Ok(self.scopes.clone());
        }
        for s in asked {
            if !self.scopes.contains(s) {
                return Err(SsoError::invalid_scope("Invalid scope requested")
                    .because(format!("scope {s:?} was not registered by the client")));
            }
        }
        let mut out = asked.to_vec();
        out.dedup();
        Ok(out)
    }
}

/// What `RegisterClient` asks for.
#[derive(Debug, Clone, Default)]
pub struct Registration {
    /// `clientName`.
    pub client_name: Option<String>,
    /// `clientType`.
    pub client_type: Option<String>,
    /// `scopes`.
    pub scopes: Option<Vec<String>>,
    /// `redirectUris`.
    pub redirect_uris: Option<Vec<String>>,
    /// `grantTypes`.
    pub grant_types: Option<Vec<String>>,
    /// `issuerUrl`.
    pub issuer_url: Option<String>,
    /// `entitledApplicationArn` (not supported).
    pub entitled_application_arn: Option<String>,
}

/// What `RegisterClient` answers.
pub struct Registered {
    /// The new client id.
    pub client_id: String,
    /// Its secret (never stored).
    pub client_secret: String,
    /// Registration time (Unix seconds).
    pub issued_at: i64,
    /// Expiry of the secret (Unix seconds).
    pub expires_at: i64,
    /// The stored record.
    pub record: ClientRecord,
}

/// A redirect URI parsed and checked: `http`, a loopback host (`127.0.0.1`, `[::1]` or
/// `localhost`), no user information, no fragment, at most [`MAX_URI_CHARS`].
pub fn loopback_uri(raw: &str) -> std::result::Result<url::Url, String> {
    if raw.len() > MAX_URI_CHARS {
        return Err(format!(
            "redirect URI longer than {MAX_URI_CHARS} characters"
        ));
    }
    let u = url::Url::parse(raw).map_err(|e| format!("redirect URI {raw:?}: {e}"))?;
    if u.scheme() != "http" {
        return Err(format!("redirect URI {raw:?} is not http://"));
    }
    let loopback = match u.host() {
        Some(url::Host::Ipv4(a)) => a == std::net::Ipv4Addr::LOCALHOST,
        Some(url::Host::Ipv6(a)) => a == std::net::Ipv6Addr::LOCALHOST,
        Some(url::Host::Domain(d)) => d == "localhost",
        None => false,
    };
    if !loopback {
        return Err(format!(
            "redirect URI {raw:?} is not on 127.0.0.1, [::1] or localhost"
        ));
    }
    if !u.username().is_empty() || u.password().is_some() {
        return Err(format!("redirect URI {raw:?} has user information"));
    }
    if u.fragment().is_some() {
        return Err(format!("redirect URI {raw:?} has a fragment"));
    }
    Ok(u)
}

fn list<'a>(v: &'a Option<Vec<String>>, name: &str) -> Result<Option<&'a [String]>> {
    match v {
        None => Ok(None),
        Some(l) if l.len() > MAX_LIST => Err(SsoError::invalid_request(format!(
            "At most {MAX_LIST} {name} are allowed"
        ))),
        Some(l) => Ok(Some(l.as_slice())),
    }
}

/// Checks a registration and stores the client. Errors are `RegisterClient`'s, each with the
/// precise reason.
pub async fn register(app: &App, r: &Registration) -> Result<Registered> {
    let s = settings(app)?;
    let name = r
        .client_name
        .as_deref()
        .ok_or_else(|| SsoError::invalid_request("clientName is required"))?;
    let client_type = r
        .client_type
        .as_deref()
        .ok_or_else(|| SsoError::invalid_request("clientType is required"))?;
    if name.trim().is_empty()
        || name.chars().count() > MAX_NAME_CHARS
        || name.chars().any(char::is_control)
    {
        return Err(
            SsoError::invalid_client_metadata("Invalid client name").because(format!(
                "clientName must be 1 to {MAX_NAME_CHARS} characters without control characters"
            )),
        );
    }
    if client_type != "public" {
        return Err(
            SsoError::invalid_client_metadata("Only public clients are supported")
                .because(format!("clientType {client_type:?} is not public")),
        );
    }
    if r.entitled_application_arn.is_some() {
        return Err(SsoError::invalid_request(
            "entitledApplicationArn is not supported",
        ));
    }
    if let Some(issuer) = &r.issuer_url {
        if !super::is_our_start_url(&app.config, issuer) {
            return Err(
                SsoError::invalid_request("Invalid issuerUrl").because(format!(
                    "issuerUrl {issuer:?} is not this rolegate's start URL"
                )),
            );
        }
    }
    let mut scopes: Vec<String> = Vec::new();
    match list(&r.scopes, "scopes")? {
        None | Some([]) => scopes.push(ACCOUNT_ACCESS_SCOPE.to_string()),
        Some(l) => {
            for sc in l {
                if !SCOPES.contains(&sc.as_str()) {
                    return Err(SsoError::invalid_scope("Invalid scope requested")
                        .because(format!("unknown scope {sc:?}")));
                }
                if !scopes.contains(sc) {
                    scopes.push(sc.clone());
                }
            }
        }
    }
    let mut grants: Vec<String> = Vec::new();
    match list(&r.grant_types, "grantTypes")? {
        None => grants.extend(DEFAULT_GRANTS.iter().map(|g| g.to_string())),
        Some([]) => {
            return Err(SsoError::invalid_client_metadata("grantTypes is empty"));
        }
        Some(l) => {
            for g in l {
                if !GRANTS.contains(&g.as_str()) {
                    return Err(SsoError::unsupported_grant_type("Unsupported grant type")
                        .because(format!("unknown grant type {g:?}")));
                }
                if !grants.contains(g) {
                    grants.push(g.clone());
                }
            }
        }
    }
    let code_grant = grants.iter().any(|g| g == CODE_GRANT);
    let mut redirect_uris = Vec::new();
    match (list(&r.redirect_uris, "redirectUris")?, code_grant) {
        (None | Some([]), true) => {
            return Err(SsoError::invalid_redirect_uri(
                "redirectUris is required for the authorization_code grant",
            ))
        }
        (Some([_, ..]), false) => {
            return Err(SsoError::invalid_client_metadata(
                "redirectUris need the authorization_code grant",
            ))
        }
        (Some(l), true) => {
            for raw in l {
                let u = loopback_uri(raw).map_err(|why| {
                    SsoError::invalid_redirect_uri(
                        "Redirect URIs must be http:// on 127.0.0.1, [::1] or localhost",
                    )
                    .because(why)
                })?;
                redirect_uris.push(u.to_string());
            }
        }
        (None | Some([]), false) => {}
    }
    let now = app.clock.now().timestamp();
    let client_secret = random()?;
    let record = ClientRecord {
        name: name.to_string(),
        secret_hash: key_of(&client_secret),
        issued_at: now,
        expires_at: now + s.client_secret_seconds,
        grant_types: grants,
        redirect_uris,
        scopes,
    };
    let client_id = random()?;
    if !write(
        app,
        &[DirWrite::insert(CLIENT_KIND, &client_id, to_json(&record)?)],
    )
    .await?
    {
        return Err(SsoError::internal("client id collision"));
    }
    Ok(Registered {
        client_id,
        client_secret,
        issued_at: now,
        expires_at: record.expires_at,
        record,
    })
}

async fn load_client(app: &App, client_id: &str) -> Result<Option<(ClientRecord, Versioned)>> {
    load_record(
        app,
        CLIENT_KIND,
        client_id,
        &format!("client record {client_id}"),
    )
    .await
}

/// The live (unexpired) client `client_id`, if there is one.
pub async fn get(app: &App, client_id: &str) -> Result<Option<ClientRecord>> {
    if client_id.is_empty() || client_id.len() > 128 {
        return Ok(None);
    }
    let Some((r, _)) = load_client(app, client_id).await? else {
        return Ok(None);
    };
    if r.expires_at <= app.clock.now().timestamp() {
        return Ok(None);
    }
    Ok(Some(r))
}

/// Client authentication: the client exists, its secret has not expired and `secret` is it
/// (compared in constant time). Errors are `InvalidClientException` with the precise reason.
pub async fn authenticate(app: &App, client_id: &str, secret: &str) -> Result<ClientRecord> {
    let invalid = || SsoError::invalid_client("Invalid client credentials");
    if client_id.is_empty() || client_id.len() > 128 {
        return Err(invalid().because("malformed client id"));
    }
    let Some((r, _)) = load_client(app, client_id).await? else {
        return Err(invalid().because("unknown client id"));
    };
    if !same_token(&key_of(secret), &r.secret_hash) {
        return Err(invalid().because("wrong client secret"));
    }
    let now = app.clock.now().timestamp();
    if r.expires_at <= now {
        return Err(invalid().because(format!(
            "the client secret expired {} s ago",
            now - r.expires_at
        )));
    }
    Ok(r)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn redirect_uris_are_loopback_http_only() {
        for ok in [
            "http://127.0.0.1:8400/oauth/callback",
            "http://127.0.0.1/oauth/callback",
            "http://[::1]:9000/cb",
            "http://localhost:1234/",
            "http://localhost/cb?x=1",
        ] {
            assert!(loopback_uri(ok).is_ok(), "{ok}");
        }
        for bad in [
            "https://127.0.0.1:8400/cb",
            "http://127.0.0.2:8400/cb",
            "http://example.com/cb",
            "http://localhost.example.com/cb",
            "http://user@127.0.0.1/cb",
            "http://127.0.0.1/cb#frag",
            "custom-scheme://127.0.0.1/cb",
            "/oauth/callback",
            "http://0.0.0.0/cb",
            "http://[::2]/cb",
        ] {
            assert!(loopback_uri(bad).is_err(), "{bad}");
        }
        assert!(loopback_uri(&format!("http://127.0.0.1/{}", "a".repeat(600))).is_err());
    }

    #[test]
    fn a_redirect_uri_registered_without_a_port_matches_any_port() {
        let c = ClientRecord {
            name: "cli".into(),
            secret_hash: String::new(),
            issued_at: 0,
            expires_at: 0,
            grant_types: vec![CODE_GRANT.into()],
            redirect_uris: vec![
                "http://127.0.0.1/oauth/callback".into(),
                "http://localhost:5000/cb".into(),
            ],
            scopes: vec![ACCOUNT_ACCESS_SCOPE.into()],
        };
        assert!(c.redirect_matches("http://127.0.0.1:54321/oauth/callback"));
        assert!(c.redirect_matches("http://127.0.0.1/oauth/callback"));
        assert!(c.redirect_matches("http://localhost:5000/cb"));
        for bad in [
            "http://localhost:5001/cb",
            "http://127.0.0.1:54321/oauth/callback2",
            "http://127.0.0.1:54321/oauth/callback?x=1",
            "http://[::1]:54321/oauth/callback",
            "http://localhost:54321/oauth/callback",
            "http://evil.example/oauth/callback",
            "https://127.0.0.1:54321/oauth/callback",
        ] {
            assert!(!c.redirect_matches(bad), "{bad}");
        }
    }
}
