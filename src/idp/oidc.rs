//! Browser sign-in through OpenID Connect providers with the openidconnect crate: discovery
//! (cached, the last good document kept when a refresh fails), the authorization request
//! (authorization code flow, PKCE S256, `state` and `nonce` of 256 random bits, and for a step-up
//! `prompt=login`, `max_age` and `acr_values`), the code exchange, and optionally userinfo.
//!
//! The ID token is verified by [`crate::idp::jwt::WebIdentityVerifier::verify_for_client`], not by
//! openidconnect's verifier: that one has no `iat` check, no `exp` leeway and never re-fetches the
//! JWKS, while the web-identity verifier already enforces every ID-token check of the security
//! document (pinned JWKS by `kid` with rate-limited refresh on rotation, algorithm allow-list,
//! `crit` and JWE refused, `exp`/`nbf`/`iat` with the provider's bounded leeway) and the STS path
//! and the browser path then refuse exactly the same tokens. This module adds what only the
//! browser flow has: the client id as the one audience, the nonce, `auth_time` against `max_age`,
//! and userinfo's `sub`.
//!
//! Must not know: HTTP routing, cookies, sessions, where the pending login is kept.

use crate::config::{OidcLogin, OidcProvider};
use crate::idp::jwt::{JwtError, WebIdentityVerifier};
use openidconnect::core::{
    CoreAuthDisplay, CoreAuthPrompt, CoreAuthenticationFlow, CoreClaimName, CoreClaimType,
    CoreClient, CoreClientAuthMethod, CoreGenderClaim, CoreGrantType, CoreJsonWebKey,
    CoreJweContentEncryptionAlgorithm, CoreJweKeyManagementAlgorithm, CoreResponseMode,
    CoreResponseType, CoreSubjectIdentifierType,
};
use openidconnect::{
    AdditionalClaims, AdditionalProviderMetadata, AuthenticationContextClass, AuthorizationCode,
    ClientId, ClientSecret, CsrfToken, IssuerUrl, Nonce, OAuth2TokenResponse, PkceCodeChallenge,
    PkceCodeVerifier, ProviderMetadata, RedirectUrl, RequestTokenError, Scope, SubjectIdentifier,
    TokenResponse, UserInfoClaims,
};
use parking_lot::RwLock;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// A discovery document older than this is fetched again on the next sign-in.
pub const DISCOVERY_MAX_AGE: Duration = Duration::from_secs(3600);
/// Random bytes of `state` and `nonce` (256 bits).
const RANDOM_BYTES: u32 = 32;

/// Why a browser sign-in through an OpenID Connect provider did not succeed.
#[derive(Debug, Clone, thiserror::Error)]
pub enum OidcError {
    /// No provider of that name offers browser sign-in.
    #[error("no oidc provider '{0}' with browser sign-in")]
    UnknownProvider(String),
    /// The provider cannot be reached (discovery, token or userinfo endpoint).
    #[error("identity provider unreachable: {0}")]
    Unreachable(String),
    /// The provider's answer or token is not acceptable.
    #[error("{0}")]
    Refused(String),
}

/// Result of this module.
pub type Result<T> = std::result::Result<T, OidcError>;

/// Discovery metadata beyond openidconnect's core set: RFC 9207's flag.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct IssParameterMetadata {
    /// Whether the provider sends `iss` in authorization responses (RFC 9207).
    #[serde(default)]
    pub authorization_response_iss_parameter_supported: Option<bool>,
}
impl AdditionalProviderMetadata for IssParameterMetadata {}

type Metadata = ProviderMetadata<
    IssParameterMetadata,
    CoreAuthDisplay,
    CoreClientAuthMethod,
    CoreClaimName,
    CoreClaimType,
    CoreGrantType,
    CoreJweContentEncryptionAlgorithm,
    CoreJweKeyManagementAlgorithm,
    CoreJsonWebKey,
    CoreResponseMode,
    CoreResponseType,
    CoreSubjectIdentifierType,
>;

/// Every userinfo claim, whatever its name.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct AllClaims(HashMap<String, Value>);
impl AdditionalClaims for AllClaims {}

struct LoginProvider {
    cfg: Arc<OidcProvider>,
    login: OidcLogin,
    metadata: RwLock<Option<(Arc<Metadata>, Instant)>>,
    fetch: tokio::sync::Mutex<()>,
}

/// The start of a sign-in: where to send the browser, and what the callback must be given back.
/// No `Debug`: it holds the nonce and the PKCE verifier.
#[derive(Clone)]
pub struct Authorization {
    /// The authorization request URL at the provider.
    pub url: String,
    /// The `state` sent.
    pub state: String,
    /// The `nonce` sent.
    pub nonce: String,
    /// The PKCE code verifier (its S256 challenge was sent).
    pub pkce_verifier: String,
}

/// What the callback checks the answer against: the pending login's secrets (no `Debug`).
#[derive(Clone)]
pub struct Expected<'a> {
    /// The nonce sent.
    pub nonce: &'a str,
    /// The PKCE code verifier.
    pub pkce_verifier: &'a str,
    /// `max_age` sent (a step-up), seconds.
    pub max_age: Option<u32>,
    /// The redirect URI sent.
    pub redirect_uri: &'a str,
}

/// A person the provider signed in, verified.
#[derive(Debug, Clone)]
pub struct OidcIdentity {
    /// The provider's name.
    pub provider: String,
    /// `sub`.
    pub subject: String,
    /// The ID token's claims, with userinfo's claims added (the ID token's win).
    pub claims: Map<String, Value>,
    /// When MFA was performed, if the provider's trusted `amr`/`acr` says it was.
    pub mfa_time: Option<i64>,
    /// `auth_time`, if given.
    pub auth_time: Option<i64>,
}

/// The providers that offer browser sign-in, in configuration order.
pub struct OidcLogins {
    providers: Vec<(String, Arc<LoginProvider>)>,
    http: reqwest::Client,
}

fn endpoint_ok(cfg: &OidcProvider, u: &url::Url) -> bool {
    let loopback = match u.host() {
        Some(url::Host::Ipv4(a)) => a.is_loopback(),
        Some(url::Host::Ipv6(a)) => a.is_loopback(),
        Some(url::Host::Domain(d)) => d == "localhost",
        None => false,
    };
    u.scheme() == "https" || (u.scheme() == "http" && cfg.allow_http && loopback)
}

/// The `MultiFactorAuth` time a verified token proves: only when one of its `amr` values is in the
/// provider's `mfa_amr` or its `acr` is in the login's `mfa_acr`; then `auth_time` (not after
/// `iat`), else `iat`.
pub fn trusted_mfa_time(
    cfg: &OidcProvider,
    login: &OidcLogin,
    claims: &Map<String, Value>,
    issued_at: i64,
) -> Option<i64> {
    let amr_ok = match claims.get("amr") {
        Some(Value::Array(a)) => a
            .iter()
            .filter_map(Value::as_str)
            .any(|v| cfg.mfa_amr.iter().any(|t| t == v)),
        Some(Value::String(s)) => cfg.mfa_amr.iter().any(|t| t == s),
        _ => false,
    };
    let acr_ok = claims
        .get("acr")
        .and_then(Value::as_str)
        .is_some_and(|a| login.mfa_acr.iter().any(|t| t == a));
    if !(amr_ok || acr_ok) {
        return None;
    }
    Some(super::authenticated_at(claims, issued_at))
}

impl OidcLogins {
    /// Browser sign-in for every provider with a `login` table. Nothing is fetched yet.
    pub fn new(providers: &[OidcProvider]) -> std::result::Result<Self, String> {
        // A redirect from a token or discovery endpoint is never followed.
        let http = super::oidc_http_client()?;
        let providers = providers
            .iter()
            .filter_map(|p| {
                let login = p.login.clone()?;
                Some((
                    p.name.clone(),
                    Arc::new(LoginProvider {
                        cfg: Arc::new(p.clone()),
                        login,
                        metadata: RwLock::new(None),
                        fetch: tokio::sync::Mutex::new(()),
                    }),
                ))
            })
            .collect();
        Ok(Self { providers, http })
    }

    /// `(name, display name)` of each provider, in configuration order.
    pub fn list(&self) -> Vec<(String, String)> {
        self.providers
            .iter()
            .map(|(n, p)| (n.clone(), p.login.display_name.clone()))
            .collect()
    }

    fn get(&self, name: &str) -> Result<&Arc<LoginProvider>> {
        self.providers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, p)| p)
            .ok_or_else(|| OidcError::UnknownProvider(name.chars().take(128).collect()))
    }

    /// Whether `name` offers browser sign-in.
    pub fn has(&self, name: &str) -> bool {
        self.get(name).is_ok()
    }

    /// The exact issuer of provider `name`.
    pub fn issuer(&self, name: &str) -> Result<String> {
        Ok(self.get(name)?.cfg.issuer.clone())
    }

    /// Whether provider `name`'s discovery document says it sends `iss` with every authorization
    /// response (RFC 9207): its absence is then refused. A document that cannot be had answers
    /// `false` (the code exchange then fails on the same unreachable provider).
    pub async fn sends_iss(&self, name: &str) -> bool {
        let Ok(p) = self.get(name) else {
            return false;
        };
        self.metadata(p).await.is_ok_and(|m| {
            m.additional_metadata()
                .authorization_response_iss_parameter_supported
                == Some(true)
        })
    }

    /// The provider's discovery document: cached; fetched when missing or older than
    /// [`DISCOVERY_MAX_AGE`] (the last good one serves when that refresh fails).
    async fn metadata(&self, p: &LoginProvider) -> Result<Arc<Metadata>> {
        if let Some((m, at)) = p.metadata.read().as_ref() {
            if at.elapsed() < DISCOVERY_MAX_AGE {
                return Ok(m.clone());
            }
        }
        let _single_flight = p.fetch.lock().await;
        let stale = p.metadata.read().clone();
        if let Some((m, at)) = &stale {
            if at.elapsed() < DISCOVERY_MAX_AGE {
                return Ok(m.clone());
            }
        }
        match self.discover(p).await {
            Ok(m) => {
                let m = Arc::new(m);
                *p.metadata.write() = Some((m.clone(), Instant::now()));
                Ok(m)
            }
            Err(e) => match stale {
                Some((m, _)) => {
                    tracing::warn!(provider = %p.cfg.name, error = %e, "discovery refresh failed; using the last good document");
                    Ok(m)
                }
                None => Err(e),
            },
        }
    }

    async fn discover(&self, p: &LoginProvider) -> Result<Metadata> {
        let issuer = IssuerUrl::new(p.cfg.issuer.clone())
            .map_err(|e| OidcError::Refused(format!("issuer URL: {e}")))?;
        let m = Metadata::discover_async(issuer, &self.http)
            .await
            .map_err(|e| {
                use openidconnect::DiscoveryError as D;
                match e {
                    D::Request(r) => OidcError::Unreachable(format!("discovery: {r}")),
                    D::Response(status, _, why) => {
                        OidcError::Unreachable(format!("discovery answered {status}: {why}"))
                    }
                    other => OidcError::Refused(format!("discovery: {other}")),
                }
            })?;
        let mut endpoints = vec![("authorization_endpoint", m.authorization_endpoint().url())];
        if let Some(t) = m.token_endpoint() {
            endpoints.push(("token_endpoint", t.url()));
        } else {
            return Err(OidcError::Refused(
                "discovery document has no token_endpoint".into(),
            ));
        }
        if let Some(u) = m.userinfo_endpoint() {
            endpoints.push(("userinfo_endpoint", u.url()));
        }
        for (what, u) in endpoints {
            if !endpoint_ok(&p.cfg, u) {
                return Err(OidcError::Refused(format!(
                    "discovery: {what} {u} must be https (plain http only for loopback with allow_http)"
                )));
            }
        }
        Ok(m)
    }

    /// Starts a sign-in at provider `name`: the authorization request URL with PKCE S256, a fresh
    /// `state` and `nonce`, and for a step-up (`max_age` seconds) `prompt=login`, `max_age` and the
    /// configured `acr_values`.
    pub async fn authorize(
        &self,
        name: &str,
        redirect_uri: &str,
        max_age: Option<u32>,
    ) -> Result<Authorization> {
        let p = self.get(name)?;
        let meta = self.metadata(p).await?;
        let client = CoreClient::from_provider_metadata(
            (*meta).clone(),
            ClientId::new(p.login.client_id.clone()),
            None,
        )
        .set_redirect_uri(
            RedirectUrl::new(redirect_uri.to_string())
                .map_err(|e| OidcError::Refused(format!("redirect URI: {e}")))?,
        );
        let (challenge, verifier) = PkceCodeChallenge::new_random_sha256();
        let mut req = client
            .authorize_url(
                CoreAuthenticationFlow::AuthorizationCode,
                || CsrfToken::new_random_len(RANDOM_BYTES),
                || Nonce::new_random_len(RANDOM_BYTES),
            )
            .set_pkce_challenge(challenge);
        for s in p.login.scopes.iter().filter(|s| *s != "openid") {
            req = req.add_scope(Scope::new(s.clone()));
        }
        if let Some(secs) = max_age {
            req = req
                .add_prompt(CoreAuthPrompt::Login)
                .set_max_age(Duration::from_secs(u64::from(secs)));
            for acr in &p.login.step_up_acr_values {
                req = req.add_auth_context_value(AuthenticationContextClass::new(acr.clone()));
            }
        }
        let (url, state, nonce) = req.url();
        Ok(Authorization {
            url: url.to_string(),
            state: state.secret().clone(),
            nonce: nonce.secret().clone(),
            pkce_verifier: verifier.secret().clone(),
        })
    }

    /// Completes a sign-in: exchanges `code` (with the PKCE verifier), verifies the ID token
    /// (see the module documentation), checks the nonce and, for a step-up, `auth_time` against
    /// `max_age`; reads userinfo when configured (its `sub` must be the token's).
    pub async fn finish(
        &self,
        name: &str,
        code: &str,
        expected: &Expected<'_>,
        jwt: &WebIdentityVerifier,
        now: i64,
    ) -> Result<OidcIdentity> {
        let p = self.get(name)?;
        let meta = self.metadata(p).await?;
        let client = CoreClient::from_provider_metadata(
            (*meta).clone(),
            ClientId::new(p.login.client_id.clone()),
            p.login
                .client_secret
                .as_ref()
                .map(|s| ClientSecret::new(s.expose().to_string())),
        )
        .set_redirect_uri(
            RedirectUrl::new(expected.redirect_uri.to_string())
                .map_err(|e| OidcError::Refused(format!("redirect URI: {e}")))?,
        );
        let response = client
            .exchange_code(AuthorizationCode::new(code.to_string()))
            .map_err(|e| OidcError::Refused(format!("token endpoint: {e}")))?
            .set_pkce_verifier(PkceCodeVerifier::new(expected.pkce_verifier.to_string()))
            .request_async(&self.http)
            .await
            .map_err(|e| match e {
                RequestTokenError::ServerResponse(r) => OidcError::Refused(format!(
                    "token endpoint refused the code: {}{}",
                    r.error(),
                    r.error_description()
                        .map(|d| format!(" ({})", d.chars().take(200).collect::<String>()))
                        .unwrap_or_default()
                )),
                RequestTokenError::Request(r) => {
                    OidcError::Unreachable(format!("token endpoint: {r}"))
                }
                RequestTokenError::Parse(e, _) => {
                    OidcError::Refused(format!("token response does not parse: {e}"))
                }
                RequestTokenError::Other(o) => OidcError::Refused(format!("token endpoint: {o}")),
            })?;
        let raw = response
            .id_token()
            .ok_or_else(|| OidcError::Refused("token response has no id_token".into()))?
            .to_string();
        let verified = jwt
            .verify_for_client(&raw, &p.cfg.issuer, &p.login.client_id)
            .await
            .map_err(|e| match e {
                JwtError::Unreachable(r) => OidcError::Unreachable(format!("JWKS: {r}")),
                JwtError::Invalid(r) | JwtError::Expired(r) => {
                    OidcError::Refused(format!("ID token: {r}"))
                }
            })?;
        let mut claims = verified.claims;
        match claims.get("nonce") {
            Some(Value::String(n)) if crate::credentials::same_token(n, expected.nonce) => {}
            Some(_) => {
                return Err(OidcError::Refused(
                    "ID token: nonce is not the pending login's".into(),
                ))
            }
            None => return Err(OidcError::Refused("ID token: nonce is missing".into())),
        }
        let auth_time = match claims.get("auth_time") {
            None => None,
            Some(v) => Some(v.as_i64().ok_or_else(|| {
                OidcError::Refused("ID token: auth_time is not an integer".into())
            })?),
        };
        let leeway = p.cfg.leeway_seconds as i64;
        if let Some(t) = auth_time {
            if t > now + leeway {
                return Err(OidcError::Refused(format!(
                    "ID token: auth_time {t} is in the future (now {now})"
                )));
            }
        }
        if let Some(max_age) = expected.max_age {
            match auth_time {
                None => {
                    return Err(OidcError::Refused(
                        "ID token: max_age was requested but auth_time is missing".into(),
                    ))
                }
                Some(t) if now - t > i64::from(max_age) + leeway => {
                    return Err(OidcError::Refused(format!(
                        "ID token: authentication at {t} is older than the requested max_age {max_age} s (now {now})"
                    )))
                }
                Some(_) => {}
            }
        }
        if p.login.userinfo {
            let info: UserInfoClaims<AllClaims, CoreGenderClaim> = client
                .user_info(
                    response.access_token().clone(),
                    Some(SubjectIdentifier::new(verified.subject.clone())),
                )
                .map_err(|e| OidcError::Refused(format!("userinfo: {e}")))?
                .request_async(&self.http)
                .await
                .map_err(|e| {
                    use openidconnect::UserInfoError as U;
                    match e {
                        U::Request(r) => OidcError::Unreachable(format!("userinfo: {r}")),
                        other => OidcError::Refused(format!("userinfo: {other}")),
                    }
                })?;
            let info = match serde_json::to_value(&info) {
                Ok(Value::Object(m)) => m,
                _ => return Err(OidcError::Refused("userinfo is not a JSON object".into())),
            };
            for (k, v) in info {
                claims.entry(k).or_insert(v);
            }
        }
        let mfa_time = trusted_mfa_time(&p.cfg, &p.login, &claims, verified.issued_at);
        Ok(OidcIdentity {
            provider: p.cfg.name.clone(),
            subject: verified.subject,
            claims,
            mfa_time,
            auth_time,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::trusted_mfa_time;
    use crate::config::{Config, OidcLogin, OidcProvider};
    use serde_json::{json, Value};

    fn provider(mfa_amr: &[&str], mfa_acr: &[&str]) -> (OidcProvider, OidcLogin) {
        let text = format!(
            "[server]\nlisten = \"127.0.0.1:0\"\npublic_url = \"http://127.0.0.1:8080\"\n[store]\nkind = \"memory\"\n[[oidc_providers]]\nissuer = \"https://idp.example.com\"\naudiences = [\"a\"]\nname = \"corp\"\nmfa_amr = {}\n[oidc_providers.login]\nclient_id = \"rolegate\"\nmfa_acr = {}\n",
            json!(mfa_amr),
            json!(mfa_acr)
        );
        let c = Config::from_str_with_env(std::path::Path::new("/etc/r.toml"), &text, &[]).unwrap();
        let p = c.oidc_providers[0].clone();
        let l = p.login.clone().unwrap();
        (p, l)
    }

    /// Trusted `amr`, trusted `acr`, the token's claims, the MFA time expected (with `iat` 1000).
    type Case = (
        &'static [&'static str],
        &'static [&'static str],
        Value,
        Option<i64>,
    );

    #[test]
    fn upstream_mfa_counts_only_for_trusted_amr_or_acr_values() {
        let cases: [Case; 9] = [
            (
                &["otp"],
                &[],
                json!({"amr": ["pwd", "otp"], "auth_time": 900}),
                Some(900),
            ),
            (&["otp"], &[], json!({"amr": "otp"}), Some(1000)),
            (
                &["otp"],
                &[],
                json!({"amr": ["pwd"], "acr": "urn:mfa"}),
                None,
            ),
            (
                &[],
                &["urn:mfa"],
                json!({"amr": ["pwd"], "acr": "urn:mfa", "auth_time": 950}),
                Some(950),
            ),
            (&[], &["urn:mfa"], json!({"acr": "urn:pwd"}), None),
            (&[], &[], json!({"amr": ["otp"], "acr": "urn:mfa"}), None),
            // auth_time after iat is not believed: iat is the latest the authentication can be.
            (
                &["otp"],
                &[],
                json!({"amr": ["otp"], "auth_time": 2000}),
                Some(1000),
            ),
            (&["otp"], &[], json!({"amr": ["OTP"]}), None),
            (&["otp"], &[], json!({"amr": [{"otp": true}]}), None),
        ];
        for (amr, acr, claims, want) in cases {
            let (p, l) = provider(amr, acr);
            let claims = claims.as_object().unwrap().clone();
            assert_eq!(trusted_mfa_time(&p, &l, &claims, 1000), want, "{claims:?}");
        }
    }
}
