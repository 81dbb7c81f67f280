//! Web identity tokens: compact JWS ID tokens verified with jsonwebtoken against the issuer's JWKS.
//! Keys come only from the provider's pinned JWKS (discovery or an explicit URL), looked up by `kid`;
//! never from `jwk`/`jku`/`x5u` headers. The JWKS is cached; an unknown `kid` triggers at most one fetch per
//! issuer per [`REFRESH_MIN_INTERVAL`] (single flight); the last good key set survives a failed fetch.

use super::VerifiedIdentity;
use crate::clock::SharedClock;
use crate::config::{JwksSource, OidcProvider};
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use jsonwebtoken::jwk::{AlgorithmParameters, EllipticCurve, Jwk, KeyAlgorithm, PublicKeyUse};
use jsonwebtoken::{Algorithm, DecodingKey};
use parking_lot::{Mutex, RwLock};
use serde_json::{Map, Value};
use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Longest token accepted, in characters, before any decoding.
pub const MAX_TOKEN_CHARS: usize = 20_000;
/// An unknown `kid` causes at most one JWKS fetch per issuer in this interval.
pub const REFRESH_MIN_INTERVAL: Duration = Duration::from_secs(10);
/// Key sets older than this are refreshed in the background when used.
pub const KEYS_MAX_AGE: Duration = Duration::from_secs(3600);
/// Largest discovery document or JWKS accepted.
const MAX_DOCUMENT_BYTES: usize = 512 * 1024;

/// Why a token was refused.
#[derive(Debug, Clone, thiserror::Error)]
pub enum JwtError {
    /// Not acceptable (`InvalidIdentityToken`).
    #[error("{0}")]
    Invalid(String),
    /// Expired (`ExpiredTokenException`).
    #[error("{0}")]
    Expired(String),
    /// The provider's keys cannot be had (`IDPCommunicationError`).
    #[error("{0}")]
    Unreachable(String),
}

/// Result of this module.
pub type Result<T> = std::result::Result<T, JwtError>;

struct CachedKey {
    kid: Option<String>,
    alg: Option<Algorithm>,
    family: KeyFamily,
    key: DecodingKey,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum KeyFamily {
    Rsa,
    EcP256,
    EcP384,
    Other,
}

struct KeySet {
    keys: Vec<CachedKey>,
    by_kid: HashMap<String, usize>,
    fetched_at: Instant,
}

struct ProviderState {
    cfg: Arc<OidcProvider>,
    keys: RwLock<Option<Arc<KeySet>>>,
    jwks_uri: RwLock<Option<String>>,
    fetch: tokio::sync::Mutex<()>,
    /// When the last fetch was attempted and whether it succeeded.
    last_attempt: Mutex<Option<(Instant, bool)>>,
    /// Why the last fetch failed, until one succeeds.
    last_error: Mutex<Option<String>>,
    background: Mutex<bool>,
}

/// Counters for operators.
#[derive(Debug, Default)]
pub struct JwksStats {
    /// JWKS fetches attempted.
    pub fetches: AtomicU64,
    /// JWKS fetches that failed.
    pub failures: AtomicU64,
}

/// Verifies web identity tokens for the configured providers.
pub struct WebIdentityVerifier {
    providers: HashMap<String, Arc<ProviderState>>,
    http: reqwest::Client,
    clock: SharedClock,
    /// Fetch counters.
    pub stats: Arc<JwksStats>,
}

impl WebIdentityVerifier {
    /// Each provider's key set: when it was loaded and why the last fetch failed.
    pub fn health(&self) -> Vec<super::ProviderHealth> {
        let mut out: Vec<_> = self
            .providers
            .values()
            .map(|p| super::ProviderHealth {
                name: p.cfg.issuer.clone(),
                kind: "web identity",
                loaded_secs_ago: p
                    .keys
                    .read()
                    .as_ref()
                    .map(|k| k.fetched_at.elapsed().as_secs()),
                last_error: p.last_error.lock().clone(),
            })
            .collect();
        out.sort_by(|a, b| a.name.cmp(&b.name));
        out
    }

    /// A verifier for `providers`. Nothing is fetched until [`WebIdentityVerifier::warm`] or first use.
    pub fn new(
        providers: &[OidcProvider],
        clock: SharedClock,
    ) -> std::result::Result<Self, String> {
        rsa_cache::install();
        let http = super::oidc_http_client()?;
        let providers = providers
            .iter()
            .map(|p| {
                (
                    p.issuer.clone(),
                    Arc::new(ProviderState {
                        cfg: Arc::new(p.clone()),
                        keys: RwLock::new(None),
                        jwks_uri: RwLock::new(match &p.jwks {
                            JwksSource::Url(u) => Some(u.clone()),
                            JwksSource::Discovery => None,
                        }),
                        fetch: tokio::sync::Mutex::new(()),
                        last_attempt: Mutex::new(None),
                        last_error: Mutex::new(None),
                        background: Mutex::new(false),
                    }),
                )
            })
            .collect();
        Ok(Self {
            providers,
            http,
            clock,
            stats: Arc::new(JwksStats::default()),
        })
    }

    /// Fetches every provider's keys once (failures are logged, not fatal: the IdP may come up later).
    pub async fn warm(&self) {
        for p in self.providers.values() {
            if let Err(e) = self.fetch_keys(p, true).await {
                tracing::warn!(issuer = %p.cfg.issuer, error = %e, "could not load provider keys at start-up");
            }
        }
    }

    /// The provider configuration for an issuer.
    pub fn provider(&self, issuer: &str) -> Option<Arc<OidcProvider>> {
        self.providers.get(issuer).map(|p| p.cfg.clone())
    }

    /// Verifies `token` (surrounding whitespace is ignored) and returns the identity it proves.
    pub async fn verify(&self, token: &str) -> Result<VerifiedIdentity> {
        self.verify_as(token, None).await
    }

    /// Verifies an ID token of browser sign-in: every check of [`WebIdentityVerifier::verify`]
    /// (pinned keys, algorithms, `exp`/`nbf`/`iat` with the provider's leeway, `crit`), except
    /// that `iss` must be exactly `issuer` and the one accepted audience is `client_id` (with
    /// several audiences, `azp` must be `client_id`), not the provider's `audiences` list.
    pub async fn verify_for_client(
        &self,
        token: &str,
        issuer: &str,
        client_id: &str,
    ) -> Result<VerifiedIdentity> {
        self.verify_as(token, Some((issuer, client_id))).await
    }

    async fn verify_as(
        &self,
        token: &str,
        client: Option<(&str, &str)>,
    ) -> Result<VerifiedIdentity> {
        let token = token.trim();
        if token.len() > MAX_TOKEN_CHARS {
            return Err(JwtError::Invalid(format!(
                "token is longer than {MAX_TOKEN_CHARS} characters"
            )));
        }
        let parts: Vec<&str> = token.split('.').collect();
        match parts.len() {
            3 => {}
            5 => {
                return Err(JwtError::Invalid(
                    "encrypted tokens (JWE) are not accepted".into(),
                ))
            }
            _ => {
                return Err(JwtError::Invalid(
                    "not a compact JWS (header.payload.signature)".into(),
                ))
            }
        }
        let header = decode_json(parts[0], "header")?;
        let payload = decode_json(parts[1], "payload")?;
        let issuer = match payload.get("iss") {
            Some(Value::String(s)) => s.as_str(),
            Some(_) => return Err(JwtError::Invalid("iss is not a string".into())),
            None => return Err(JwtError::Invalid("iss is missing".into())),
        };
        if let Some((expected, _)) = client {
            if issuer != expected {
                return Err(JwtError::Invalid(format!(
                    "iss {issuer} is not the provider's issuer {expected}"
                )));
            }
        }
        let state = self.providers.get(issuer).ok_or_else(|| {
            JwtError::Invalid(format!(
                "no OpenID Connect provider is configured for issuer {issuer}"
            ))
        })?;
        let cfg = &state.cfg;
        let alg = check_header(&header, cfg)?;
        let kid = match header.get("kid") {
            None => None,
            Some(Value::String(k)) if !k.is_empty() && k.len() <= 256 => Some(k.as_str()),
            Some(_) => {
                return Err(JwtError::Invalid(
                    "kid is not a short non-empty string".into(),
                ))
            }
        };

        let keys = self.keys_for(state, kid).await?;
        let key = select_key(&keys, kid, alg)?;

        // The header and payload are already decoded above: check the signature over the signing
        // input directly rather than decoding the token a second time.
        let signing_input = &token[..parts[0].len() + 1 + parts[1].len()];
        match jsonwebtoken::crypto::verify(parts[2], signing_input.as_bytes(), &key.key, alg) {
            Ok(true) => {}
            Ok(false) => {
                return Err(JwtError::Invalid(
                    "signature does not verify with the provider's key".into(),
                ))
            }
            Err(e) => {
                use jsonwebtoken::errors::ErrorKind as K;
                return Err(JwtError::Invalid(match e.kind() {
                    K::Base64(_) => "signature is not base64url".to_string(),
                    K::InvalidAlgorithm | K::InvalidKeyFormat => {
                        "algorithm does not match the key".to_string()
                    }
                    other => format!("token rejected: {other:?}"),
                }));
            }
        }
        let client_audiences;
        let audiences = match client {
            Some((_, id)) => {
                client_audiences = [id.to_string()];
                &client_audiences[..]
            }
            None => &cfg.audiences[..],
        };
        check_registered_claims(&payload, cfg, audiences)?;
        let claims = payload;
        self.check_claims(&claims, cfg, audiences)
    }

    fn check_claims(
        &self,
        claims: &Map<String, Value>,
        cfg: &Arc<OidcProvider>,
        audiences: &[String],
    ) -> Result<VerifiedIdentity> {
        let now = self.clock.now().timestamp();
        let leeway = cfg.leeway_seconds as i64;
        let exp = numeric_date(claims, "exp")?
            .ok_or_else(|| JwtError::Invalid("exp is missing".into()))?;
        let iat = numeric_date(claims, "iat")?
            .ok_or_else(|| JwtError::Invalid("iat is missing".into()))?;
        if let Some(nbf) = numeric_date(claims, "nbf")? {
            if nbf > now + leeway {
                return Err(JwtError::Invalid(format!(
                    "token is not valid before {nbf} (now {now})"
                )));
            }
        }
        if iat > now + leeway {
            return Err(JwtError::Invalid(format!(
                "token is issued in the future (iat {iat}, now {now})"
            )));
        }
        if exp <= now - leeway {
            return Err(JwtError::Expired(format!(
                "token expired at {exp} (now {now})"
            )));
        }
        let subject = match claims.get("sub") {
            Some(Value::String(s)) if !s.is_empty() && s.len() <= 255 => s.clone(),
            _ => {
                return Err(JwtError::Invalid(
                    "sub must be a non-empty string of at most 255 characters".into(),
                ))
            }
        };
        let audience =
            match claims.get("aud") {
                Some(Value::String(a)) => a.clone(),
                Some(Value::Array(list)) => {
                    let auds: Vec<&str> = list.iter().filter_map(|v| v.as_str()).collect();
                    if auds.len() != list.len() || auds.is_empty() {
                        return Err(JwtError::Invalid(
                            "aud must be a string or an array of strings".into(),
                        ));
                    }
                    if auds.len() == 1 {
                        auds[0].to_string()
                    } else {
                        match claims.get("azp") {
                            Some(Value::String(azp))
                                if audiences.contains(azp) && auds.contains(&azp.as_str()) =>
                            {
                                azp.clone()
                            }
                            _ => return Err(JwtError::Invalid(
                                "token has several audiences and no azp naming an accepted client"
                                    .into(),
                            )),
                        }
                    }
                }
                _ => return Err(JwtError::Invalid("aud is missing".into())),
            };
        if !audiences.contains(&audience) {
            return Err(JwtError::Invalid(format!("aud {audience} is not accepted")));
        }
        if let Some(azp) = claims.get("azp") {
            match azp.as_str() {
                Some(a) if audiences.iter().any(|x| x == a) => {}
                _ => return Err(JwtError::Invalid("azp is not an accepted client".into())),
            }
        }
        Ok(VerifiedIdentity {
            provider: cfg.clone(),
            subject,
            audience,
            claims: claims.clone(),
            issued_at: iat,
            expires_at: exp,
        })
    }

    /// The key set to use, fetching it if there is none yet or if `kid` is unknown (rate-limited).
    async fn keys_for(&self, state: &Arc<ProviderState>, kid: Option<&str>) -> Result<Arc<KeySet>> {
        let current = state.keys.read().clone();
        if let Some(ks) = &current {
            let known = match kid {
                Some(k) => ks.by_kid.contains_key(k),
                None => true,
            };
            if known {
                if ks.fetched_at.elapsed() > KEYS_MAX_AGE {
                    self.refresh_in_background(state);
                }
                return Ok(ks.clone());
            }
        }
        // An unknown kid while the provider cannot be reached is a communication error (SDKs retry it);
        // the last good key set still serves every kid it knows.
        self.fetch_keys(state, false).await
    }

    fn refresh_in_background(&self, state: &Arc<ProviderState>) {
        let mut running = state.background.lock();
        if *running {
            return;
        }
        *running = true;
        let state = state.clone();
        let http = self.http.clone();
        let stats = self.stats.clone();
        tokio::spawn(async move {
            let _ = fetch_and_store(&http, &stats, &state, false).await;
            *state.background.lock() = false;
        });
    }

    async fn fetch_keys(&self, state: &Arc<ProviderState>, force: bool) -> Result<Arc<KeySet>> {
        fetch_and_store(&self.http, &self.stats, state, force).await
    }
}

/// Single flight: one fetch at a time per issuer, and none within REFRESH_MIN_INTERVAL of the last attempt.
async fn fetch_and_store(
    http: &reqwest::Client,
    stats: &JwksStats,
    state: &Arc<ProviderState>,
    force: bool,
) -> Result<Arc<KeySet>> {
    let seen_before = state.keys.read().as_ref().map(|k| k.fetched_at);
    let _guard = state.fetch.lock().await;
    // Someone else fetched while we waited.
    if let Some(ks) = state.keys.read().clone() {
        if Some(ks.fetched_at) != seen_before {
            return Ok(ks);
        }
    }
    if !force {
        let last = *state.last_attempt.lock();
        if let Some((at, ok)) = last {
            if at.elapsed() < REFRESH_MIN_INTERVAL {
                return match (ok, state.keys.read().clone()) {
                    (true, Some(ks)) => Ok(ks),
                    _ => Err(JwtError::Unreachable(format!(
                        "keys of {} could not be fetched; not retrying for {}s",
                        state.cfg.issuer,
                        REFRESH_MIN_INTERVAL.as_secs()
                    ))),
                };
            }
        }
    }
    *state.last_attempt.lock() = Some((Instant::now(), false));
    stats.fetches.fetch_add(1, Ordering::Relaxed);
    match fetch_key_set(http, state).await {
        Ok(ks) => {
            let ks = Arc::new(ks);
            *state.keys.write() = Some(ks.clone());
            *state.last_attempt.lock() = Some((Instant::now(), true));
            *state.last_error.lock() = None;
            tracing::info!(issuer = %state.cfg.issuer, keys = ks.keys.len(), "loaded provider keys");
            Ok(ks)
        }
        Err(e) => {
            stats.failures.fetch_add(1, Ordering::Relaxed);
            *state.last_error.lock() = Some(e.to_string());
            Err(e)
        }
    }
}

async fn get_json(http: &reqwest::Client, url: &str) -> Result<Value> {
    let unreachable = |why: String| JwtError::Unreachable(format!("{url}: {why}"));
    let resp = http
        .get(url)
        .send()
        .await
        .map_err(|e| unreachable(e.to_string()))?;
    if !resp.status().is_success() {
        return Err(unreachable(format!("HTTP {}", resp.status())));
    }
    if resp
        .content_length()
        .is_some_and(|l| l as usize > MAX_DOCUMENT_BYTES)
    {
        return Err(unreachable("document too large".into()));
    }
    let body = resp.bytes().await.map_err(|e| unreachable(e.to_string()))?;
    if body.len() > MAX_DOCUMENT_BYTES {
        return Err(unreachable("document too large".into()));
    }
    serde_json::from_slice(&body).map_err(|e| unreachable(format!("not JSON: {e}")))
}

async fn fetch_key_set(http: &reqwest::Client, state: &ProviderState) -> Result<KeySet> {
    let cfg = &state.cfg;
    let known_uri = state.jwks_uri.read().clone();
    let jwks_uri = match known_uri {
        Some(u) => u,
        None => {
            let url = format!(
                "{}/.well-known/openid-configuration",
                cfg.issuer.trim_end_matches('/')
            );
            let doc = get_json(http, &url).await?;
            if doc.get("issuer").and_then(Value::as_str) != Some(cfg.issuer.as_str()) {
                return Err(JwtError::Unreachable(format!(
                    "discovery document at {url} names a different issuer"
                )));
            }
            let uri = doc
                .get("jwks_uri")
                .and_then(Value::as_str)
                .ok_or_else(|| JwtError::Unreachable(format!("{url} has no jwks_uri")))?
                .to_string();
            let parsed = url::Url::parse(&uri)
                .map_err(|_| JwtError::Unreachable(format!("bad jwks_uri {uri}")))?;
            let loopback = matches!(parsed.host(), Some(url::Host::Ipv4(a)) if a.is_loopback())
                || matches!(parsed.host(), Some(url::Host::Ipv6(a)) if a.is_loopback())
                || matches!(parsed.host(), Some(url::Host::Domain("localhost")));
            if !(parsed.scheme() == "https"
                || (parsed.scheme() == "http" && cfg.allow_http && loopback))
            {
                return Err(JwtError::Unreachable(format!(
                    "jwks_uri {uri} is not https"
                )));
            }
            *state.jwks_uri.write() = Some(uri.clone());
            uri
        }
    };
    let doc = get_json(http, &jwks_uri).await?;
    let list = doc
        .get("keys")
        .and_then(Value::as_array)
        .ok_or_else(|| JwtError::Unreachable(format!("{jwks_uri} has no keys array")))?;
    let mut keys = Vec::new();
    let mut by_kid = HashMap::new();
    for k in list {
        let jwk: Jwk = match serde_json::from_value(k.clone()) {
            Ok(j) => j,
            Err(e) => {
                tracing::debug!(issuer = %cfg.issuer, error = %e, "skipping unusable JWK");
                continue;
            }
        };
        if matches!(&jwk.common.public_key_use, Some(u) if *u != PublicKeyUse::Signature) {
            continue;
        }
        let family = match &jwk.algorithm {
            AlgorithmParameters::RSA(_) => KeyFamily::Rsa,
            AlgorithmParameters::EllipticCurve(ec) => match ec.curve {
                EllipticCurve::P256 => KeyFamily::EcP256,
                EllipticCurve::P384 => KeyFamily::EcP384,
                _ => KeyFamily::Other,
            },
            _ => KeyFamily::Other,
        };
        if family == KeyFamily::Other {
            continue;
        }
        let alg = match jwk.common.key_algorithm {
            None => None,
            Some(a) => match key_algorithm(a) {
                Some(x) => Some(x),
                None => continue,
            },
        };
        let Ok(key) = DecodingKey::from_jwk(&jwk) else {
            continue;
        };
        let kid = jwk.common.key_id.clone();
        if let Some(k) = &kid {
            if by_kid.contains_key(k) {
                continue; // the first key with a kid wins; duplicates are ignored
            }
            by_kid.insert(k.clone(), keys.len());
        }
        keys.push(CachedKey {
            kid,
            alg,
            family,
            key,
        });
    }
    if keys.is_empty() {
        return Err(JwtError::Unreachable(format!(
            "{jwks_uri} holds no usable signing key"
        )));
    }
    Ok(KeySet {
        keys,
        by_kid,
        fetched_at: Instant::now(),
    })
}

fn key_algorithm(a: KeyAlgorithm) -> Option<Algorithm> {
    Some(match a {
        KeyAlgorithm::RS256 => Algorithm::RS256,
        KeyAlgorithm::RS384 => Algorithm::RS384,
        KeyAlgorithm::RS512 => Algorithm::RS512,
        KeyAlgorithm::PS256 => Algorithm::PS256,
        KeyAlgorithm::PS384 => Algorithm::PS384,
        KeyAlgorithm::PS512 => Algorithm::PS512,
        KeyAlgorithm::ES256 => Algorithm::ES256,
        KeyAlgorithm::ES384 => Algorithm::ES384,
        _ => return None,
    })
}

fn family_of(alg: Algorithm) -> KeyFamily {
    match alg {
        Algorithm::RS256
        | Algorithm::RS384
        | Algorithm::RS512
        | Algorithm::PS256
        | Algorithm::PS384
        | Algorithm::PS512 => KeyFamily::Rsa,
        Algorithm::ES256 => KeyFamily::EcP256,
        Algorithm::ES384 => KeyFamily::EcP384,
        _ => KeyFamily::Other,
    }
}

fn select_key<'a>(keys: &'a KeySet, kid: Option<&str>, alg: Algorithm) -> Result<&'a CachedKey> {
    let usable = |k: &CachedKey| k.family == family_of(alg) && k.alg.is_none_or(|a| a == alg);
    let key = match kid {
        Some(k) => {
            let idx = keys.by_kid.get(k).ok_or_else(|| {
                JwtError::Invalid(format!(
                    "no key with kid '{}' in the provider's JWKS",
                    k.escape_debug()
                ))
            })?;
            &keys.keys[*idx]
        }
        None => {
            let candidates: Vec<&CachedKey> = keys.keys.iter().filter(|k| usable(k)).collect();
            match candidates.as_slice() {
                [one] => *one,
                [] => {
                    return Err(JwtError::Invalid(format!(
                        "no {alg:?} key in the provider's JWKS"
                    )))
                }
                _ => {
                    return Err(JwtError::Invalid(
                        "token has no kid and the provider's JWKS has several keys".into(),
                    ))
                }
            }
        }
    };
    if !usable(key) {
        return Err(JwtError::Invalid(format!(
            "key '{}' cannot verify {alg:?}",
            key.kid.as_deref().unwrap_or("")
        )));
    }
    Ok(key)
}

fn decode_json(part: &str, what: &str) -> Result<Map<String, Value>> {
    let bytes = URL_SAFE_NO_PAD
        .decode(part)
        .map_err(|_| JwtError::Invalid(format!("{what} is not base64url")))?;
    match serde_json::from_slice::<Value>(&bytes) {
        Ok(Value::Object(m)) => Ok(m),
        _ => Err(JwtError::Invalid(format!("{what} is not a JSON object"))),
    }
}

/// The header's algorithm if it is allowed for the provider and the header asks for nothing unsafe.
fn check_header(h: &Map<String, Value>, cfg: &OidcProvider) -> Result<Algorithm> {
    let alg_text = match h.get("alg") {
        Some(Value::String(a)) => a.as_str(),
        _ => return Err(JwtError::Invalid("alg is missing".into())),
    };
    // Exact, case-sensitive comparison against the allow-list: "none", "NONE", "HS256" never pass.
    let alg = cfg
        .algorithms
        .iter()
        .copied()
        .find(|a| format!("{a:?}") == alg_text)
        .ok_or_else(|| {
            JwtError::Invalid(format!(
                "algorithm '{}' is not allowed for this provider",
                alg_text.escape_debug()
            ))
        })?;
    for forbidden in ["jku", "x5u", "jwk"] {
        if h.contains_key(forbidden) {
            return Err(JwtError::Invalid(format!(
                "header carries '{forbidden}': keys come only from the provider's JWKS"
            )));
        }
    }
    if h.contains_key("crit") {
        return Err(JwtError::Invalid(
            "header has crit extensions, none of which are supported".into(),
        ));
    }
    if h.contains_key("enc") || h.contains_key("zip") {
        return Err(JwtError::Invalid(
            "encrypted tokens (JWE) are not accepted".into(),
        ));
    }
    if let Some(cty) = h.get("cty") {
        if cty.as_str().is_some_and(|c| c.eq_ignore_ascii_case("JWT")) {
            return Err(JwtError::Invalid("nested tokens are not accepted".into()));
        }
    }
    if h.get("b64") == Some(&Value::Bool(false)) {
        return Err(JwtError::Invalid(
            "unencoded payloads are not accepted".into(),
        ));
    }
    Ok(alg)
}

/// A NumericDate claim: must be a JSON number when present.
/// The registered claims every token must carry, with the types RFC 7519 gives them; then the
/// issuer and audience. Finer checks (times, `sub` length, `azp`) follow in `check_claims`.
fn check_registered_claims(
    claims: &Map<String, Value>,
    cfg: &OidcProvider,
    audiences: &[String],
) -> Result<()> {
    for name in ["exp", "iat", "sub", "iss", "aud"] {
        let well_typed = match claims.get(name) {
            None | Some(Value::Null) => {
                return Err(JwtError::Invalid(format!(
                    "required claim {name} is missing"
                )))
            }
            Some(v) => match name {
                "exp" | "iat" => v.is_number(),
                "aud" => {
                    v.is_string()
                        || v.as_array()
                            .is_some_and(|a| !a.is_empty() && a.iter().all(Value::is_string))
                }
                _ => v.is_string(),
            },
        };
        if !well_typed {
            let expected = match name {
                "exp" | "iat" => "a number",
                "aud" => "a string or a non-empty array of strings",
                _ => "a string",
            };
            return Err(JwtError::Invalid(format!(
                "claim {name} has the wrong type ({name} must be {expected})"
            )));
        }
    }
    if claims.get("iss").and_then(Value::as_str) != Some(cfg.issuer.as_str()) {
        return Err(JwtError::Invalid("iss does not match".into()));
    }
    let accepted = |a: &str| audiences.iter().any(|x| x == a);
    let any_accepted = match &claims["aud"] {
        Value::String(a) => accepted(a),
        Value::Array(list) => list.iter().filter_map(Value::as_str).any(accepted),
        _ => false,
    };
    if !any_accepted {
        return Err(JwtError::Invalid(format!(
            "aud is not one of the accepted audiences {audiences:?}"
        )));
    }
    Ok(())
}

fn numeric_date(claims: &Map<String, Value>, name: &str) -> Result<Option<i64>> {
    match claims.get(name) {
        None => Ok(None),
        Some(Value::Number(n)) => match n
            .as_i64()
            .or_else(|| n.as_f64().filter(|f| f.is_finite()).map(|f| f as i64))
        {
            Some(v) => Ok(Some(v)),
            None => Err(JwtError::Invalid(format!("{name} is not a valid date"))),
        },
        Some(_) => Err(JwtError::Invalid(format!("{name} must be a number"))),
    }
}

#[cfg(test)]
mod tests;

mod rsa_cache;
