//! SAML 2.0 identity providers: verifying a base64 `Response` into a [`SamlIdentity`].
//!
//! The order is fixed and fails closed: size → base64/UTF-8 → the strict [`shape`] check (before
//! any crypto) → samael/xmlsec signature verification against the provider's pinned signing
//! certificates, with an algorithm allow-list, on the blocking pool behind a semaphore → for an
//! `EncryptedAssertion` (only inside a signed Response), [`decrypt`]ion of the signed content with
//! rolegate's key(s) and the same strict shape check on the decrypted Assertion (whose own
//! signature, if it has one, must verify too) → the checks
//! samael does not make (issuer, every `AudienceRestriction`, bearer `Recipient`, time with bounded
//! skew, status, `AuthnStatement`, `SessionNotOnOrAfter`, `InResponseTo` for browsers) → the durable
//! replay cache keyed by (issuer, assertion ID), last, so that only a fully valid assertion is
//! recorded. Provider metadata comes from a file or URL and is refreshed; a refresh without a
//! signing certificate is refused and the last good metadata kept.
//!
//! Knows nothing of HTTP routing, cookies, STS parameters or policies.

pub mod decrypt;
#[cfg(test)]
mod encrypted_tests;
#[cfg(test)]
mod identity_tests;
pub mod metadata;
pub mod request;
pub mod shape;
#[cfg(test)]
pub(crate) mod test_idp;
#[cfg(test)]
mod tests;
mod verify;
#[cfg(test)]
mod verify_tests;

use crate::clock::SharedClock;
use crate::config::saml_metadata::{self, IdpMetadata};
use crate::config::{MetadataSource, SamlProvider, SamlSettings};
use crate::cpu_pool::CpuPool;
use crate::store::Store;
use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use chrono::{DateTime, Utc};
use openssl::pkey::{PKey, Private};
use parking_lot::RwLock;
pub use rolegate_xmlsec::VerifyingKeys;
use samael::crypto::AllowedSignatureAlgorithm;
use samael::schema::Assertion;
use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};
pub use verify::{verify_blocking, verify_encrypted_blocking};

/// A verified assertion's use, still to be recorded: an assertion is single-use, so whoever
/// verified it records the use ([`Federation::record_use`]) before acting on it.
#[must_use = "an assertion is single-use: record its use before acting on it"]
#[derive(Debug)]
pub struct FirstUse {
    key: String,
    until: i64,
    what: String,
}

/// Longest `SAMLResponse` / `SAMLAssertion` accepted, in base64 characters (AWS's limit).
pub const MAX_BASE64_CHARS: usize = 100_000;
/// Replay-cache namespace of assertion IDs.
pub const REPLAY_NAMESPACE: &str = "saml-assertion";
/// `urn:oasis:names:tc:SAML:2.0:status:Success`.
pub const STATUS_SUCCESS: &str = "urn:oasis:names:tc:SAML:2.0:status:Success";
/// The bearer subject confirmation method.
pub const BEARER: &str = "urn:oasis:names:tc:SAML:2.0:cm:bearer";
/// Verifications that may wait for a thread; past that an assertion is refused as unavailable
/// (ServiceUnavailable), at once, rather than queued without bound.
pub const VERIFY_QUEUE: usize = 1024;

/// Largest metadata document fetched from a URL.
const FETCH_TIMEOUT: Duration = Duration::from_secs(10);

const ALLOWED_ALGORITHMS: &[AllowedSignatureAlgorithm] = &[
    AllowedSignatureAlgorithm::RsaSha256,
    AllowedSignatureAlgorithm::RsaSha384,
    AllowedSignatureAlgorithm::RsaSha512,
    AllowedSignatureAlgorithm::EcdsaSha256,
    AllowedSignatureAlgorithm::EcdsaSha384,
    AllowedSignatureAlgorithm::EcdsaSha512,
];

/// Why a SAML Response was refused. The text is the precise audit reason.
#[derive(Debug, Clone, thiserror::Error)]
pub enum SamlError {
    /// Not acceptable: malformed, badly shaped, badly signed, wrong audience, issuer, recipient…
    #[error("{0}")]
    Invalid(String),
    /// Valid once, but expired (or not yet valid).
    #[error("{0}")]
    Expired(String),
    /// The assertion was used before.
    #[error("{0}")]
    Replay(String),
    /// A browser Response that does not answer this browser's pending request.
    #[error("{0}")]
    Unsolicited(String),
    /// The provider is unknown or its metadata is not loaded.
    #[error("{0}")]
    UnknownProvider(String),
    /// Too many verifications waiting, or the store failed.
    #[error("{0}")]
    Unavailable(String),
}

/// Result of this module.
pub type Result<T> = std::result::Result<T, SamlError>;

impl From<shape::ShapeError> for SamlError {
    fn from(e: shape::ShapeError) -> Self {
        SamlError::Invalid(format!("shape check: {e}"))
    }
}

/// Where a Response is being used.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Use<'a> {
    /// `AssumeRoleWithSAML`: no request of ours to answer.
    Sts,
    /// The browser ACS: `pending` is the ID of the AuthnRequest this browser is waiting for, if any.
    Browser {
        /// The pending request's ID.
        pending: Option<&'a str>,
    },
}

/// A verified SAML assertion.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SamlIdentity {
    /// The provider's configured name.
    pub provider: String,
    /// The Issuer (the provider's entity id).
    pub issuer: String,
    /// The assertion's ID.
    pub assertion_id: String,
    /// The NameID value.
    pub name_id: String,
    /// The NameID format, if given.
    pub name_id_format: Option<String>,
    /// `NameQualifier` of the NameID.
    pub name_qualifier: Option<String>,
    /// `SPNameQualifier` of the NameID.
    pub sp_name_qualifier: Option<String>,
    /// The bearer confirmation's Recipient (our ACS).
    pub recipient: String,
    /// Our entity id, as the audience.
    pub audience: String,
    /// Every attribute by `Name`, every one multi-valued, in document order.
    pub attributes: BTreeMap<String, Vec<String>>,
    /// `AuthnInstant`, epoch seconds.
    pub authn_instant: i64,
    /// `AuthnContextClassRef`.
    pub authn_context: Option<String>,
    /// `SessionNotOnOrAfter`, epoch seconds.
    pub session_not_on_or_after: Option<i64>,
    /// When MFA was performed, if the provider's `mfa_authn_contexts` lists the class.
    pub mfa_time: Option<i64>,
    /// The `InResponseTo` the assertion carries (browser logins).
    pub in_response_to: Option<String>,
    /// Until when the assertion's ID is held in the replay cache.
    pub replay_until: i64,
}

impl SamlIdentity {
    /// The attributes as JSON (name → array of strings), for assignment rules and condition keys.
    pub fn attributes_json(&self) -> serde_json::Map<String, serde_json::Value> {
        self.attributes
            .iter()
            .map(|(k, v)| {
                (
                    k.clone(),
                    serde_json::Value::Array(
                        v.iter().cloned().map(serde_json::Value::String).collect(),
                    ),
                )
            })
            .collect()
    }
}

struct ProviderState {
    cfg: Arc<SamlProvider>,
    metadata: RwLock<Option<Arc<IdpMetadata>>>,
    /// The public keys of the metadata's signing certificates, decoded once for the metadata
    /// document they came from (a refresh that changes the metadata decodes them again).
    keys: parking_lot::Mutex<Option<(Arc<IdpMetadata>, Arc<VerifyingKeys>)>>,
    last_refresh: parking_lot::Mutex<Instant>,
    /// When metadata was last read successfully, and why the last refresh failed (until one works).
    loaded: parking_lot::Mutex<(Option<Instant>, Option<String>)>,
}

impl ProviderState {
    /// The public keys of `metadata`'s signing certificates: decoded on the first call for a
    /// metadata document, then shared.
    fn verifying_keys(&self, metadata: &Arc<IdpMetadata>) -> Arc<VerifyingKeys> {
        let mut memo = self.keys.lock();
        if let Some((m, k)) = memo.as_ref() {
            if Arc::ptr_eq(m, metadata) {
                return k.clone();
            }
        }
        let keys = Arc::new(VerifyingKeys::from_certificates(
            &metadata.signing_certificates,
        ));
        for why in keys.skipped() {
            tracing::error!(provider = %self.cfg.name, error = %why, "a saml signing certificate does not decode; it is not used");
        }
        *memo = Some((metadata.clone(), keys.clone()));
        keys
    }
}

/// The configured SAML providers and the verification pipeline.
pub struct SamlFederation {
    settings: SamlSettings,
    providers: Vec<ProviderState>,
    /// xmlsec's work: `max_concurrent_verifications` threads, [`VERIFY_QUEUE`] waiting.
    pool: CpuPool,
    decryption_keys: Arc<Vec<PKey<Private>>>,
    clock: SharedClock,
    http: reqwest::Client,
}

impl SamlFederation {
    /// Providers as configured; metadata from files is already loaded, URLs need [`Self::load`].
    pub fn new(settings: &SamlSettings, providers: &[SamlProvider], clock: SharedClock) -> Self {
        let http = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .timeout(FETCH_TIMEOUT)
            .build()
            .unwrap_or_default();
        // Checked when the configuration was loaded; a key that no longer parses is left out
        // (and an encrypted assertion then fails to decrypt with the reason).
        let decryption_keys = settings
            .decryption
            .iter()
            .flat_map(|d| d.keys_pkcs8_der.iter())
            .filter_map(|der| match PKey::private_key_from_pkcs8(der) {
                Ok(k) => Some(k),
                Err(e) => {
                    tracing::error!(error = %e, "saml decryption key does not parse");
                    None
                }
            })
            .collect();
        Self {
            settings: settings.clone(),
            providers: providers
                .iter()
                .map(|p| ProviderState {
                    metadata: RwLock::new(p.metadata.clone().map(Arc::new)),
                    keys: parking_lot::Mutex::new(None),
                    cfg: Arc::new(p.clone()),
                    last_refresh: parking_lot::Mutex::new(Instant::now()),
                    loaded: parking_lot::Mutex::new((
                        p.metadata.is_some().then(Instant::now),
                        None,
                    )),
                })
                .collect(),
            pool: CpuPool::new(
                "saml-verify",
                settings.max_concurrent_verifications,
                VERIFY_QUEUE,
            ),
            decryption_keys: Arc::new(decryption_keys),
            clock,
            http,
        }
    }

    /// The SP settings.
    pub fn settings(&self) -> &SamlSettings {
        &self.settings
    }

    /// The provider named `name`.
    pub fn provider(&self, name: &str) -> Option<Arc<SamlProvider>> {
        self.state(name).map(|s| s.cfg.clone())
    }

    /// Names of the configured providers.
    pub fn names(&self) -> impl Iterator<Item = &str> {
        self.providers.iter().map(|p| p.cfg.name.as_str())
    }

    /// The provider's metadata as currently loaded.
    pub fn metadata(&self, name: &str) -> Option<Arc<IdpMetadata>> {
        self.state(name).and_then(|s| s.metadata.read().clone())
    }

    fn state(&self, name: &str) -> Option<&ProviderState> {
        self.providers.iter().find(|p| p.cfg.name == name)
    }

    /// Loads metadata every provider still lacks (URL sources): an error names the first that fails,
    /// so that start-up refuses a provider it cannot verify.
    pub async fn load(&self) -> std::result::Result<(), String> {
        for p in &self.providers {
            if p.metadata.read().is_some() {
                continue;
            }
            let m = self
                .read_metadata(&p.cfg.source)
                .await
                .map_err(|e| format!("saml provider '{}': {e}", p.cfg.name))?;
            *p.metadata.write() = Some(Arc::new(m));
        }
        Ok(())
    }

    /// Re-reads the metadata of providers whose refresh interval has passed. A failure keeps the
    /// last good metadata.
    pub async fn refresh_due(&self) {
        self.refresh(false).await
    }

    /// Each provider's metadata: when it was last read and why the last refresh failed.
    pub fn health(&self) -> Vec<crate::idp::ProviderHealth> {
        self.providers
            .iter()
            .map(|p| {
                let (at, error) = p.loaded.lock().clone();
                crate::idp::ProviderHealth {
                    name: p.cfg.name.clone(),
                    kind: "SAML",
                    loaded_secs_ago: at.map(|t| t.elapsed().as_secs()),
                    last_error: error,
                }
            })
            .collect()
    }

    /// Re-reads every provider's metadata now, due or not (SIGHUP: an operator who has just
    /// rotated a certificate at the IdP need not wait for `refresh_minutes`). A failure keeps the
    /// last good metadata.
    pub async fn refresh_now(&self) {
        self.refresh(true).await
    }

    async fn refresh(&self, all: bool) {
        for p in &self.providers {
            let due = p.last_refresh.lock().elapsed() >= Duration::from_secs(p.cfg.refresh_seconds);
            if !due && !all {
                continue;
            }
            *p.last_refresh.lock() = Instant::now();
            let read = self.read_metadata(&p.cfg.source).await;
            {
                let mut loaded = p.loaded.lock();
                match &read {
                    Ok(_) => *loaded = (Some(Instant::now()), None),
                    Err(e) => loaded.1 = Some(e.clone()),
                }
            }
            match read {
                Ok(m) => {
                    let changed = p.metadata.read().as_deref() != Some(&m);
                    if changed {
                        // Logged once in force, so that the line means the new certificates count.
                        let certificates = m.signing_certificates.len();
                        *p.metadata.write() = Some(Arc::new(m));
                        tracing::info!(provider = %p.cfg.name, certificates, "saml metadata updated");
                    }
                }
                Err(e) => {
                    tracing::warn!(provider = %p.cfg.name, error = %e, "saml metadata refresh failed; keeping the last good metadata")
                }
            }
        }
    }

    async fn read_metadata(
        &self,
        source: &MetadataSource,
    ) -> std::result::Result<IdpMetadata, String> {
        let text = match source {
            MetadataSource::File(path) => tokio::fs::read_to_string(path)
                .await
                .map_err(|e| format!("cannot read {}: {e}", path.display()))?,
            MetadataSource::Url(url) => {
                let resp = self
                    .http
                    .get(url)
                    .send()
                    .await
                    .map_err(|e| format!("fetching {url}: {e}"))?;
                if !resp.status().is_success() {
                    return Err(format!("fetching {url}: HTTP {}", resp.status()));
                }
                if resp
                    .content_length()
                    .is_some_and(|l| l > saml_metadata::MAX_METADATA_BYTES as u64)
                {
                    return Err(format!("{url}: metadata too large"));
                }
                let bytes = resp
                    .bytes()
                    .await
                    .map_err(|e| format!("fetching {url}: {e}"))?;
                if bytes.len() > saml_metadata::MAX_METADATA_BYTES {
                    return Err(format!("{url}: metadata too large"));
                }
                String::from_utf8(bytes.to_vec())
                    .map_err(|_| format!("{url}: metadata is not UTF-8"))?
            }
        };
        saml_metadata::parse_idp(&text).map_err(|e| e.to_string())
    }

    /// Verifies a base64 `Response` from provider `name` for `usage`, and records its assertion ID.
    pub async fn verify(
        &self,
        store: &dyn Store,
        name: &str,
        base64_response: &str,
        usage: Use<'_>,
    ) -> Result<SamlIdentity> {
        let (identity, first_use) = self.verify_unrecorded(name, base64_response, usage).await?;
        self.record_use(store, first_use).await?;
        Ok(identity)
    }

    /// Verifies a base64 `Response` like [`Federation::verify`] but leaves recording its use to the
    /// caller, which does it ([`Federation::record_use`]) once every check of its own has passed:
    /// an assertion refused by a trust policy is not spent.
    pub async fn verify_unrecorded(
        &self,
        name: &str,
        base64_response: &str,
        usage: Use<'_>,
    ) -> Result<(SamlIdentity, FirstUse)> {
        let state = self.state(name).ok_or_else(|| {
            SamlError::UnknownProvider(format!("no saml provider named '{name}'"))
        })?;
        let metadata = state.metadata.read().clone().ok_or_else(|| {
            SamlError::UnknownProvider(format!("metadata of saml provider '{name}' is not loaded"))
        })?;
        let xml = decode(base64_response)?;
        let mut shape = shape::check(&xml)?;
        // An encrypted assertion's Issuer is known only once it is decrypted: then it is checked
        // the same way.
        check_issuer(&shape, &metadata, name, !shape.encrypted)?;
        let assertion = if shape.encrypted {
            if self.decryption_keys.is_empty() {
                // Only RSA-OAEP + AES-GCM pass the shape check; decryption needs an SP key.
                return Err(SamlError::Invalid(
                    "an EncryptedAssertion arrived, but no decryption key is configured".into(),
                ));
            }
            let (assertion, inner) = self
                .verify_encrypted(xml, state.verifying_keys(&metadata))
                .await?;
            shape.assertion_id = inner.assertion_id;
            shape.assertion_issuer = inner.assertion_issuer;
            shape.assertion_signed = inner.assertion_signed;
            shape.name_qualifier = inner.name_qualifier;
            shape.sp_name_qualifier = inner.sp_name_qualifier;
            check_issuer(&shape, &metadata, name, true)?;
            assertion
        } else {
            self.verify_signature(xml, state.verifying_keys(&metadata))
                .await?
        };
        let now = self.clock.now();
        let identity =
            self.check_assertion(&state.cfg, &metadata, &shape, &assertion, usage, now)?;
        let first_use = FirstUse {
            key: format!("{}\n{}", identity.issuer, identity.assertion_id),
            until: identity.replay_until,
            what: format!(
                "assertion {} of {}",
                truncate(&identity.assertion_id),
                identity.issuer
            ),
        };
        Ok((identity, first_use))
    }

    /// Records the first use of a verified assertion in the durable replay cache: refused with
    /// [`SamlError::Replay`] when it was used before (by this or any replica).
    pub async fn record_use(&self, store: &dyn Store, first_use: FirstUse) -> Result<()> {
        let now = self.clock.now().timestamp();
        match store
            .first_use(REPLAY_NAMESPACE, &first_use.key, first_use.until, now)
            .await
        {
            Ok(true) => Ok(()),
            Ok(false) => Err(SamlError::Replay(format!(
                "{} was already used",
                first_use.what
            ))),
            Err(e) => Err(SamlError::Unavailable(format!("replay cache: {e}"))),
        }
    }

    /// xmlsec on the verification threads (at most `max_concurrent_verifications` at once): the
    /// signed content only, verified with the provider's keys.
    async fn verify_signature(&self, xml: String, keys: Arc<VerifyingKeys>) -> Result<Assertion> {
        self.blocking(move || verify_blocking(&xml, &keys)).await
    }

    /// The Response's signature verified, then its `EncryptedAssertion` decrypted and checked, on
    /// the same verification threads: the Assertion and what the shape check learned
    /// of it.
    async fn verify_encrypted(
        &self,
        xml: String,
        certs: Arc<VerifyingKeys>,
    ) -> Result<(Assertion, shape::Shape)> {
        let keys = self.decryption_keys.clone();
        self.blocking(move || verify_encrypted_blocking(&xml, &certs, &keys))
            .await
    }

    async fn blocking<T: Send + 'static>(
        &self,
        work: impl FnOnce() -> Result<T> + Send + 'static,
    ) -> Result<T> {
        match self.pool.run(work).await {
            Ok(r) => r,
            Err(
                e @ (crate::cpu_pool::PoolError::Busy { .. }
                | crate::cpu_pool::PoolError::Unstarted { .. }),
            ) => Err(SamlError::Unavailable(e.to_string())),
            Err(e) => Err(SamlError::Invalid(format!(
                "signature verification failed: {e}"
            ))),
        }
    }

    fn check_assertion(
        &self,
        provider: &SamlProvider,
        metadata: &IdpMetadata,
        shape: &shape::Shape,
        a: &Assertion,
        usage: Use<'_>,
        now: DateTime<Utc>,
    ) -> Result<SamlIdentity> {
        let s = &self.settings;
        let skew = chrono::Duration::seconds(s.max_clock_skew_seconds);
        let invalid = |m: String| Err(SamlError::Invalid(m));
        if Some(&a.id) != shape.assertion_id.as_ref() {
            return invalid("the verified assertion is not the document's assertion".into());
        }
        if a.issuer.value.as_deref() != Some(metadata.entity_id.as_str()) {
            return invalid(format!(
                "Assertion Issuer {:?} is not '{}'",
                a.issuer.value, metadata.entity_id
            ));
        }
        match shape.status.as_deref() {
            Some(STATUS_SUCCESS) => {}
            Some(other) => return invalid(format!("status is {}, not Success", truncate(other))),
            None => return invalid("the Response has no StatusCode".into()),
        }
        if let Some(d) = &shape.destination {
            if d != &s.acs_url {
                return invalid(format!(
                    "Destination '{}' is not our ACS '{}'",
                    truncate(d),
                    s.acs_url
                ));
            }
        }
        let age = chrono::Duration::seconds(s.max_response_age_seconds);
        if a.issue_instant > now + skew {
            return Err(SamlError::Expired(format!(
                "assertion issued in the future ({})",
                a.issue_instant.to_rfc3339()
            )));
        }
        if a.issue_instant + age + skew < now {
            return Err(SamlError::Expired(format!(
                "assertion issued at {}, more than {} s ago",
                a.issue_instant.to_rfc3339(),
                s.max_response_age_seconds
            )));
        }
        let Some(conditions) = &a.conditions else {
            return invalid("the assertion has no Conditions".into());
        };
        if let Some(nb) = conditions.not_before {
            if now + skew < nb {
                return Err(SamlError::Expired(format!(
                    "assertion not valid before {}",
                    nb.to_rfc3339()
                )));
            }
        }
        let Some(not_after) = conditions.not_on_or_after else {
            return invalid("Conditions have no NotOnOrAfter".into());
        };
        if not_after + skew <= now {
            return Err(SamlError::Expired(format!(
                "assertion expired at {}",
                not_after.to_rfc3339()
            )));
        }
        let restrictions = conditions.audience_restrictions.as_deref().unwrap_or(&[]);
        if restrictions.is_empty() {
            return invalid("the assertion has no AudienceRestriction".into());
        }
        for r in restrictions {
            if !r.audience.iter().any(|x| x == &s.entity_id) {
                return invalid(format!(
                    "an AudienceRestriction [{}] does not contain our entity id '{}'",
                    r.audience
                        .iter()
                        .map(|x| truncate(x))
                        .collect::<Vec<_>>()
                        .join(", "),
                    s.entity_id
                ));
            }
        }
        let Some(subject) = &a.subject else {
            return invalid("the assertion has no Subject".into());
        };
        let Some(name_id) = subject.name_id.as_ref() else {
            return invalid("the Subject has no NameID".into());
        };
        // The NameID is the subject exactly as signed: never trimmed or folded, so that two
        // different signed values never become one identity. One with nothing but whitespace
        // names nobody.
        if name_id.value.trim().is_empty() {
            return invalid(format!(
                "the Subject's NameID {:?} is empty or only whitespace",
                truncate(&name_id.value)
            ));
        }
        // A bearer confirmation for our endpoint, still valid. Other methods (holder-of-key) are
        // never enough on their own.
        let confirmations = subject.subject_confirmations.as_deref().unwrap_or(&[]);
        let mut why = String::from("no bearer SubjectConfirmation");
        let mut bearer = None;
        for c in confirmations {
            if c.method.as_deref() != Some(BEARER) {
                why = format!(
                    "SubjectConfirmation method {} is not bearer",
                    truncate(c.method.as_deref().unwrap_or("(none)"))
                );
                continue;
            }
            let Some(d) = &c.subject_confirmation_data else {
                why = "bearer SubjectConfirmation without SubjectConfirmationData".into();
                continue;
            };
            if d.recipient.as_deref() != Some(s.acs_url.as_str()) {
                why = format!(
                    "bearer Recipient {:?} is not our ACS '{}'",
                    d.recipient.as_deref().map(truncate),
                    s.acs_url
                );
                continue;
            }
            let Some(na) = d.not_on_or_after else {
                why = "bearer SubjectConfirmationData has no NotOnOrAfter".into();
                continue;
            };
            if na + skew <= now {
                return Err(SamlError::Expired(format!(
                    "bearer confirmation expired at {}",
                    na.to_rfc3339()
                )));
            }
            if d.not_before.is_some_and(|nb| now + skew < nb) {
                return Err(SamlError::Expired(
                    "bearer confirmation not yet valid".into(),
                ));
            }
            bearer = Some((d, na));
            break;
        }
        let Some((data, bearer_until)) = bearer else {
            return invalid(why);
        };
        let in_response_to = data.in_response_to.clone();
        if let (Some(r), Some(a)) = (&shape.in_response_to, &in_response_to) {
            if r != a {
                return invalid("InResponseTo of the Response and of the assertion differ".into());
            }
        }
        if let Use::Browser { pending } = usage {
            match (in_response_to.as_deref(), pending) {
                (Some(got), Some(want)) if got == want => {}
                (Some(got), Some(_)) => {
                    return Err(SamlError::Unsolicited(format!(
                        "InResponseTo '{}' is not the request this browser is waiting for",
                        truncate(got)
                    )))
                }
                (Some(got), None) => {
                    return Err(SamlError::Unsolicited(format!(
                        "InResponseTo '{}' answers no pending request of this browser",
                        truncate(got)
                    )))
                }
                (None, _) if provider.allow_idp_initiated => {}
                (None, _) => {
                    return Err(SamlError::Unsolicited(format!(
                        "IdP-initiated Response: provider {} does not allow it",
                        provider.name
                    )))
                }
            }
        }
        let authn = a.authn_statements.as_deref().unwrap_or(&[]);
        let Some(st) = authn.first() else {
            return invalid("the assertion has no AuthnStatement".into());
        };
        let Some(authn_instant) = st.authn_instant else {
            return invalid("AuthnStatement has no AuthnInstant".into());
        };
        if authn_instant > now + skew {
            return invalid("AuthnInstant is in the future".into());
        }
        let session_not_on_or_after = st.session_not_on_or_after.map(|t| t.timestamp());
        if let Some(t) = st.session_not_on_or_after {
            if t <= now {
                return Err(SamlError::Expired(format!(
                    "the IdP session ended at {} (SessionNotOnOrAfter)",
                    t.to_rfc3339()
                )));
            }
        }
        // Exactly as signed, like every value taken from the assertion: a context with whitespace
        // around it is not one of the configured MFA contexts.
        let authn_context = st
            .authn_context
            .as_ref()
            .and_then(|c| c.value.as_ref())
            .and_then(|r| r.value.clone());
        let mfa_time = authn_context
            .as_ref()
            .filter(|c| provider.mfa_authn_contexts.iter().any(|m| m == *c))
            .map(|_| authn_instant.timestamp());
        let mut attributes: BTreeMap<String, Vec<String>> = BTreeMap::new();
        for statement in a.attribute_statements.as_deref().unwrap_or(&[]) {
            for attr in &statement.attributes {
                let Some(n) = attr.name.as_ref().filter(|n| !n.is_empty()) else {
                    continue;
                };
                let values = attributes.entry(n.clone()).or_default();
                values.extend(attr.values.iter().filter_map(|v| v.value.clone()));
            }
        }
        let replay_until = not_after.max(bearer_until) + skew;
        Ok(SamlIdentity {
            provider: provider.name.clone(),
            issuer: metadata.entity_id.clone(),
            assertion_id: a.id.clone(),
            name_id: name_id.value.clone(),
            name_id_format: name_id.format.clone(),
            name_qualifier: shape.name_qualifier.clone(),
            sp_name_qualifier: shape.sp_name_qualifier.clone(),
            recipient: s.acs_url.clone(),
            audience: s.entity_id.clone(),
            attributes,
            authn_instant: authn_instant.timestamp(),
            authn_context,
            session_not_on_or_after,
            mfa_time,
            in_response_to,
            replay_until: replay_until.timestamp(),
        })
    }
}

/// Where an Issuer comes from and whether it is the provider's: the Response's and the Assertion's
/// must agree, and the one given must be the metadata's entity id. With `required` unset a
/// document without either passes (its Issuer is inside an encrypted assertion).
fn check_issuer(
    shape: &shape::Shape,
    metadata: &IdpMetadata,
    name: &str,
    required: bool,
) -> Result<()> {
    let issuer = match (&shape.response_issuer, &shape.assertion_issuer) {
        (Some(r), Some(a)) if r != a => {
            return Err(SamlError::Invalid(format!(
                "the Response's Issuer '{}' differs from the Assertion's '{}'",
                truncate(r),
                truncate(a)
            )))
        }
        (_, Some(i)) | (Some(i), None) => i,
        (None, None) if required => return Err(SamlError::Invalid("no Issuer".into())),
        (None, None) => return Ok(()),
    };
    if issuer != &metadata.entity_id {
        return Err(SamlError::Invalid(format!(
            "Issuer '{}' is not provider {name}'s entity id '{}'",
            truncate(issuer),
            metadata.entity_id
        )));
    }
    Ok(())
}

/// Base64 (whitespace ignored) to UTF-8 text, within [`MAX_BASE64_CHARS`].
pub fn decode(b64: &str) -> Result<String> {
    if b64.len() > MAX_BASE64_CHARS + MAX_BASE64_CHARS / 16 {
        return Err(SamlError::Invalid(format!(
            "the SAML message is longer than {MAX_BASE64_CHARS} characters"
        )));
    }
    let compact: Vec<u8> = b64.bytes().filter(|b| !b.is_ascii_whitespace()).collect();
    if compact.len() > MAX_BASE64_CHARS {
        return Err(SamlError::Invalid(format!(
            "the SAML message is longer than {MAX_BASE64_CHARS} characters"
        )));
    }
    let bytes = STANDARD
        .decode(&compact)
        .map_err(|e| SamlError::Invalid(format!("not base64: {e}")))?;
    String::from_utf8(bytes).map_err(|_| SamlError::Invalid("not UTF-8".into()))
}

fn truncate(s: &str) -> String {
    s.chars().take(128).collect()
}

/// AWS's `NameQualifier`: base64(SHA-1(issuer + account id + "/" + provider name)).
pub fn name_qualifier(issuer: &str, account: &str, provider: &str) -> String {
    let d = aws_lc_rs::digest::digest(
        &aws_lc_rs::digest::SHA1_FOR_LEGACY_USE_ONLY,
        format!("{issuer}{account}/{provider}").as_bytes(),
    );
    STANDARD.encode(d.as_ref())
}

/// `saml:sub_type`: `persistent`, `transient`, or the full format URI.
pub fn sub_type(format: Option<&str>) -> String {
    match format {
        Some("urn:oasis:names:tc:SAML:2.0:nameid-format:persistent") => "persistent".into(),
        Some("urn:oasis:names:tc:SAML:2.0:nameid-format:transient") => "transient".into(),
        Some(f) => f.to_string(),
        None => "urn:oasis:names:tc:SAML:1.1:nameid-format:unspecified".into(),
    }
}
