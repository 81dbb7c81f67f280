//! SAML configuration: the `[saml]` service-provider section and the `[[saml_providers]]` list.
//! Every provider needs metadata with at least one signing certificate: a provider without one is a
//! configuration error (samael would skip signature verification). Metadata from a file is read and
//! checked here; metadata from a URL is fetched and checked at start-up.

use super::saml_metadata::{self, IdpMetadata};
use super::server::host_is_loopback;
use super::{OidcProvider, Validator, LOCAL_PROVIDER, SIGN_IN_PROVIDER};
use serde::Deserialize;
use std::collections::HashSet;
use std::path::{Path, PathBuf};
use toml::Spanned;
use url::Url;

/// Largest clock skew a SAML provider may be given, in seconds.
pub const MAX_SAML_SKEW_SECONDS: i64 = 180;
/// Default age after which a Response's `IssueInstant` is too old, in seconds.
pub const DEFAULT_MAX_RESPONSE_AGE_SECONDS: i64 = 300;

#[derive(Debug, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct RawSaml {
    pub entity_id: Option<String>,
    pub signing_key_file: Option<String>,
    pub signing_cert_file: Option<String>,
    pub next_signing_cert_file: Option<String>,
    pub decryption_key_file: Option<String>,
    pub decryption_cert_file: Option<String>,
    pub next_decryption_key_file: Option<String>,
    pub next_decryption_cert_file: Option<String>,
    pub max_clock_skew_seconds: Option<i64>,
    pub max_response_age_seconds: Option<i64>,
    pub max_concurrent_verifications: Option<i64>,
    pub login_timeout_seconds: Option<i64>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawSamlProvider {
    pub name: String,
    pub metadata_file: Option<String>,
    pub metadata_url: Option<String>,
    #[serde(default)]
    pub allow_http: bool,
    pub refresh_minutes: Option<i64>,
    pub accounts: Option<Vec<String>>,
    #[serde(default)]
    pub allow_idp_initiated: bool,
    #[serde(default)]
    pub mfa_authn_contexts: Vec<String>,
    pub groups_attribute: Option<String>,
    pub groups_delimiter: Option<String>,
    pub email_attribute: Option<String>,
    #[serde(default)]
    pub email_always_verified: bool,
}

/// rolegate as a SAML service provider.
#[derive(Debug, Clone)]
pub struct SamlSettings {
    /// Our entity id: the audience assertions must be restricted to.
    pub entity_id: String,
    /// The assertion consumer service (HTTP-POST), also the `Recipient` AssumeRoleWithSAML requires.
    pub acs_url: String,
    /// Where our metadata is served.
    pub metadata_url: String,
    /// Clock skew allowed on `NotBefore` / `NotOnOrAfter`.
    pub max_clock_skew_seconds: i64,
    /// A Response issued longer ago than this is refused.
    pub max_response_age_seconds: i64,
    /// Signature verifications run at once (each on the blocking pool).
    pub max_concurrent_verifications: usize,
    /// How long a browser has between the AuthnRequest and the Response.
    pub login_timeout_seconds: i64,
    /// rolegate's own signing key: AuthnRequests are signed (HTTP-Redirect binding,
    /// RSA-SHA256) and the metadata says so and carries the certificate(s).
    pub signing: Option<SpSigning>,
    /// rolegate's decryption key(s): IdPs may encrypt assertions for it (RSA-OAEP + AES-GCM), and
    /// the metadata carries the certificate(s) with `use="encryption"`.
    pub decryption: Option<SpDecryption>,
}

/// rolegate's SAML signing key and the certificates its metadata publishes.
#[derive(Clone)]
pub struct SpSigning {
    /// The RSA private key, PKCS#8 DER.
    pub key_pkcs8_der: Vec<u8>,
    /// The key's certificate, then (during a rotation) the next one, DER.
    pub certificates_der: Vec<Vec<u8>>,
}

impl std::fmt::Debug for SpSigning {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SpSigning")
            .field("key", &"***")
            .field("certificates", &self.certificates_der.len())
            .finish()
    }
}

/// rolegate's SAML decryption keys, each tried on an encrypted assertion, and their certificates.
#[derive(Clone)]
pub struct SpDecryption {
    /// The RSA private keys, PKCS#8 DER: the current one, then (during a rotation) the next.
    pub keys_pkcs8_der: Vec<Vec<u8>>,
    /// Their certificates, in the same order, DER.
    pub certificates_der: Vec<Vec<u8>>,
}

impl std::fmt::Debug for SpDecryption {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SpDecryption")
            .field("keys", &self.keys_pkcs8_der.len())
            .field("certificates", &self.certificates_der.len())
            .finish()
    }
}

fn read_file(p: &Path) -> Result<Vec<u8>, String> {
    std::fs::read(p).map_err(|e| format!("cannot read {}: {e}", p.display()))
}

fn read_certificate(p: &Path) -> Result<openssl::x509::X509, String> {
    openssl::x509::X509::from_pem(&read_file(p)?)
        .map_err(|e| format!("{}: not a PEM certificate ({e})", p.display()))
}

/// Reads an RSA key (at least 2048 bits) and its certificate, and checks that the certificate is
/// the key's: (PKCS#8 DER key, DER certificate).
fn load_key_pair(key: &Path, cert: &Path) -> Result<(Vec<u8>, Vec<u8>), String> {
    let pkey = openssl::pkey::PKey::private_key_from_pem(&read_file(key)?)
        .map_err(|e| format!("{}: not a PEM private key ({e})", key.display()))?;
    if pkey.rsa().is_err() || pkey.bits() < 2048 {
        return Err(format!(
            "{}: the key must be RSA of at least 2048 bits",
            key.display()
        ));
    }
    let own = read_certificate(cert)?;
    let matches = own
        .public_key()
        .map(|k| k.public_eq(&pkey))
        .unwrap_or(false);
    if !matches {
        return Err(format!(
            "{} is not the certificate of the key in {}",
            cert.display(),
            key.display()
        ));
    }
    Ok((
        pkey.private_key_to_pkcs8()
            .map_err(|e| format!("{}: {e}", key.display()))?,
        own.to_der().map_err(|e| e.to_string())?,
    ))
}

/// Reads rolegate's SAML signing key and certificate(s), and checks that the certificate is the
/// key's. The next certificate (rotation) is only published: it must be a certificate.
fn load_signing(key: &Path, cert: &Path, next: Option<&Path>) -> Result<SpSigning, String> {
    let (key_pkcs8_der, own) = load_key_pair(key, cert)?;
    let mut certificates_der = vec![own];
    if let Some(n) = next {
        certificates_der.push(read_certificate(n)?.to_der().map_err(|e| e.to_string())?);
    }
    Ok(SpSigning {
        key_pkcs8_der,
        certificates_der,
    })
}

/// Reads rolegate's SAML decryption key pair and, during a rotation, the next pair: every key is
/// checked against its certificate exactly as the signing key is.
fn load_decryption(pairs: &[(PathBuf, PathBuf)]) -> Result<SpDecryption, String> {
    let mut d = SpDecryption {
        keys_pkcs8_der: Vec::new(),
        certificates_der: Vec::new(),
    };
    for (key, cert) in pairs {
        let (k, c) = load_key_pair(key, cert)?;
        if d.certificates_der.contains(&c) {
            return Err(format!(
                "{} is the same certificate as the current one",
                cert.display()
            ));
        }
        d.keys_pkcs8_der.push(k);
        d.certificates_der.push(c);
    }
    Ok(d)
}

/// Where a provider's metadata comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MetadataSource {
    /// A file, re-read at each refresh.
    File(PathBuf),
    /// An https URL (loopback http with `allow_http`), fetched at start-up and at each refresh.
    Url(String),
}

/// A trusted SAML identity provider.
#[derive(Debug, Clone)]
pub struct SamlProvider {
    /// Its IAM name: `arn:aws:iam::ACCOUNT:saml-provider/<name>`; also its name in assignment rules.
    pub name: String,
    /// Where the metadata comes from.
    pub source: MetadataSource,
    /// The metadata as read at configuration time (files only).
    pub metadata: Option<IdpMetadata>,
    /// How often metadata is re-read.
    pub refresh_seconds: u64,
    /// Accounts whose roles may trust this provider; `None` = all.
    pub accounts: Option<Vec<String>>,
    /// Whether the browser ACS accepts Responses that answer no AuthnRequest of ours.
    pub allow_idp_initiated: bool,
    /// `AuthnContextClassRef` values that count as MFA.
    pub mfa_authn_contexts: Vec<String>,
    /// The attribute holding group memberships (default `groups`).
    pub groups_attribute: String,
    /// Splits each group value further (e.g. `","`).
    pub groups_delimiter: Option<String>,
    /// The attribute holding the e-mail address (default `email`).
    pub email_attribute: String,
    /// Whether the IdP hands out verified addresses only, so that `email_domain` rules trust the
    /// e-mail attribute without an `email_verified` of boolean true (SAML attributes are strings,
    /// so without this setting no SAML identity matches an `email_domain` rule). Default false.
    pub email_always_verified: bool,
}

impl SamlProvider {
    /// `arn:aws:iam::ACCOUNT:saml-provider/<name>`.
    pub fn arn(&self, account: &str) -> String {
        crate::policy::arn::saml_provider(account, &self.name)
    }
    /// Whether roles in `account` may trust this provider.
    pub fn serves_account(&self, account: &str) -> bool {
        self.accounts
            .as_ref()
            .is_none_or(|a| a.iter().any(|x| x == account))
    }
}

impl Validator<'_> {
    pub(super) fn validate_saml(
        &mut self,
        raw: Option<&Spanned<RawSaml>>,
        public_url: Option<&Url>,
    ) -> Option<SamlSettings> {
        let at = raw.map(|r| r.span().start);
        let default = RawSaml::default();
        let r = raw.map(|r| r.get_ref()).unwrap_or(&default);
        let base = public_url?.as_str().trim_end_matches('/').to_string();
        let metadata_url = format!("{base}/saml/metadata");
        let entity_id = r.entity_id.clone().unwrap_or_else(|| metadata_url.clone());
        let mut ok = true;
        if entity_id.trim().is_empty() || entity_id.len() > 1024 {
            self.err(at, "saml.entity_id: must be 1-1024 characters");
            ok = false;
        }
        let skew = r.max_clock_skew_seconds.unwrap_or(60);
        if !(0..=MAX_SAML_SKEW_SECONDS).contains(&skew) {
            self.err(
                at,
                format!(
                    "saml.max_clock_skew_seconds: must be between 0 and {MAX_SAML_SKEW_SECONDS}"
                ),
            );
            ok = false;
        }
        let age = r
            .max_response_age_seconds
            .unwrap_or(DEFAULT_MAX_RESPONSE_AGE_SECONDS);
        if !(30..=3600).contains(&age) {
            self.err(
                at,
                "saml.max_response_age_seconds: must be between 30 and 3600",
            );
            ok = false;
        }
        let cores = std::thread::available_parallelism().map_or(2, |n| n.get()) as i64;
        let conc = r.max_concurrent_verifications.unwrap_or(cores);
        if !(1..=256).contains(&conc) {
            self.err(
                at,
                "saml.max_concurrent_verifications: must be between 1 and 256",
            );
            ok = false;
        }
        let login = r.login_timeout_seconds.unwrap_or(600);
        if !(60..=3600).contains(&login) {
            self.err(
                at,
                "saml.login_timeout_seconds: must be between 60 and 3600",
            );
            ok = false;
        }
        let signing = match (&r.signing_key_file, &r.signing_cert_file) {
            (None, None) => {
                if r.next_signing_cert_file.is_some() {
                    self.err(
                        at,
                        "saml.next_signing_cert_file: needs signing_key_file and signing_cert_file",
                    );
                    ok = false;
                }
                None
            }
            (Some(k), Some(c)) => {
                let next = r.next_signing_cert_file.as_deref().map(|n| self.resolve(n));
                match load_signing(&self.resolve(k), &self.resolve(c), next.as_deref()) {
                    Ok(s) => Some(s),
                    Err(e) => {
                        self.err(at, format!("saml signing key: {e}"));
                        ok = false;
                        None
                    }
                }
            }
            _ => {
                self.err(
                    at,
                    "saml: set both signing_key_file and signing_cert_file, or neither",
                );
                ok = false;
                None
            }
        };
        let decryption = match (
            &r.decryption_key_file,
            &r.decryption_cert_file,
            &r.next_decryption_key_file,
            &r.next_decryption_cert_file,
        ) {
            (None, None, None, None) => None,
            (Some(k), Some(c), nk, nc) => {
                let mut pairs = vec![(self.resolve(k), self.resolve(c))];
                match (nk, nc) {
                    (None, None) => {}
                    (Some(nk), Some(nc)) => pairs.push((self.resolve(nk), self.resolve(nc))),
                    _ => {
                        self.err(
                            at,
                            "saml: set both next_decryption_key_file and next_decryption_cert_file, or neither",
                        );
                        ok = false;
                    }
                }
                match load_decryption(&pairs) {
                    Ok(d) => Some(d),
                    Err(e) => {
                        self.err(at, format!("saml decryption key: {e}"));
                        ok = false;
                        None
                    }
                }
            }
            (None, None, _, _) => {
                self.err(
                    at,
                    "saml.next_decryption_key_file/next_decryption_cert_file: need decryption_key_file and decryption_cert_file",
                );
                ok = false;
                None
            }
            _ => {
                self.err(
                    at,
                    "saml: set both decryption_key_file and decryption_cert_file, or neither",
                );
                ok = false;
                None
            }
        };
        ok.then(|| SamlSettings {
            entity_id,
            acs_url: format!("{base}/saml/acs"),
            metadata_url,
            max_clock_skew_seconds: skew,
            max_response_age_seconds: age,
            max_concurrent_verifications: conc as usize,
            login_timeout_seconds: login,
            signing,
            decryption,
        })
    }

    /// The SAML providers: names unique among all providers (among SAML ones whatever their case),
    /// entity ids unique. Their names and accounts are kept for the trust-policy references check.
    pub(super) fn validate_saml_providers(
        &mut self,
        raw: &[Spanned<RawSamlProvider>],
        accounts: &HashSet<String>,
        providers: &[OidcProvider],
    ) -> Vec<SamlProvider> {
        let mut saml_providers: Vec<SamlProvider> = Vec::new();
        for p in raw {
            if let Some(sp) = self.validate_saml_provider(p, accounts) {
                if saml_providers
                    .iter()
                    .any(|x| x.name.eq_ignore_ascii_case(&sp.name))
                    || providers.iter().any(|x| x.name == sp.name)
                {
                    self.err(
                        Some(p.span().start),
                        format!("saml provider name '{}' is used twice", sp.name),
                    );
                }
                let entity = sp.metadata.as_ref().map(|m| m.entity_id.as_str());
                if entity.is_some()
                    && saml_providers
                        .iter()
                        .any(|x| x.metadata.as_ref().map(|m| m.entity_id.as_str()) == entity)
                {
                    self.err(
                        Some(p.span().start),
                        format!(
                            "saml provider '{}': entity id is also another provider's",
                            sp.name
                        ),
                    );
                }
                saml_providers.push(sp);
            }
        }
        self.saml_names = saml_providers
            .iter()
            .map(|p| (p.name.clone(), p.accounts.clone()))
            .collect();
        saml_providers
    }

    fn validate_saml_provider(
        &mut self,
        p: &Spanned<RawSamlProvider>,
        accounts: &HashSet<String>,
    ) -> Option<SamlProvider> {
        let at = Some(p.span().start);
        let raw = p.get_ref();
        let name = &raw.name;
        let what = format!("saml provider '{name}'");
        let mut ok = true;
        // IAM's SAML provider names: 1-128 of [\w._-].
        if name.is_empty()
            || name.len() > 128
            || name == LOCAL_PROVIDER
            || !name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || "_.-".contains(c))
        {
            self.err(
                at,
                format!("{what}: name must be 1-128 characters of [A-Za-z0-9_.-] and not \"{LOCAL_PROVIDER}\""),
            );
            ok = false;
        }
        // The provider rolegate's own sign-in path uses in permission-set trust policies: an IdP
        // by that name could assume those roles without the assignment rules.
        if name.eq_ignore_ascii_case(SIGN_IN_PROVIDER) {
            self.err(
                at,
                format!("{what}: the name \"{SIGN_IN_PROVIDER}\" is reserved for rolegate's own sign-in"),
            );
            ok = false;
        }
        let (source, metadata) = match (&raw.metadata_file, &raw.metadata_url) {
            (Some(f), None) => {
                let path = self.resolve(f);
                let parsed = match std::fs::read_to_string(&path) {
                    Ok(text) => match saml_metadata::parse_idp(&text) {
                        Ok(m) => Some(m),
                        Err(e) => {
                            self.err(at, format!("{what}: {}: {e}", path.display()));
                            ok = false;
                            None
                        }
                    },
                    Err(e) => {
                        self.err(at, format!("{what}: cannot read {}: {e}", path.display()));
                        ok = false;
                        None
                    }
                };
                if raw.allow_http {
                    self.err(
                        at,
                        format!("{what}: allow_http applies only to metadata_url"),
                    );
                    ok = false;
                }
                (MetadataSource::File(path), parsed)
            }
            (None, Some(u)) => {
                match Url::parse(u) {
                    Ok(url)
                        if url.scheme() == "https"
                            || (url.scheme() == "http"
                                && raw.allow_http
                                && host_is_loopback(&url)) => {}
                    _ => {
                        self.err(
                            at,
                            format!("{what}: metadata_url '{u}' must be https (plain http only with allow_http = true on a loopback address)"),
                        );
                        ok = false;
                    }
                }
                (MetadataSource::Url(u.clone()), None)
            }
            _ => {
                self.err(
                    at,
                    format!("{what}: set exactly one of metadata_file and metadata_url"),
                );
                return None;
            }
        };
        let refresh = raw.refresh_minutes.unwrap_or(60);
        if !(1..=10_080).contains(&refresh) {
            self.err(
                at,
                format!("{what}: refresh_minutes must be between 1 and 10080"),
            );
            ok = false;
        }
        if let Some(accs) = &raw.accounts {
            for a in accs {
                if !accounts.contains(a) {
                    self.err(at, format!("{what}: account {a} is not defined"));
                    ok = false;
                }
            }
        }
        if raw.groups_delimiter.as_deref() == Some("") {
            self.err(at, format!("{what}: groups_delimiter must not be empty"));
            ok = false;
        }
        if raw.mfa_authn_contexts.iter().any(|c| c.trim().is_empty()) {
            self.err(
                at,
                format!("{what}: mfa_authn_contexts must not contain empty values"),
            );
            ok = false;
        }
        ok.then(|| SamlProvider {
            name: name.clone(),
            source,
            metadata,
            refresh_seconds: refresh as u64 * 60,
            accounts: raw.accounts.clone(),
            allow_idp_initiated: raw.allow_idp_initiated,
            mfa_authn_contexts: raw.mfa_authn_contexts.clone(),
            groups_attribute: raw
                .groups_attribute
                .clone()
                .unwrap_or_else(|| "groups".into()),
            groups_delimiter: raw.groups_delimiter.clone(),
            email_attribute: raw
                .email_attribute
                .clone()
                .unwrap_or_else(|| "email".into()),
            email_always_verified: raw.email_always_verified,
        })
    }
}
