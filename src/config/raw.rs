//! The configuration file's shape, exactly as written: every table rejects unknown keys, and items that
//! later checks may complain about keep their position in the file.

use serde::Deserialize;
use std::collections::BTreeMap;
use toml::Spanned;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawConfig {
    pub server: RawServer,
    #[serde(default)]
    pub store: RawStore,
    #[serde(default)]
    pub sts: RawSts,
    #[serde(default)]
    pub admin: RawAdmin,
    #[serde(default)]
    pub audit: RawAudit,
    #[serde(default)]
    pub demo: RawDemo,
    #[serde(default)]
    pub services: Vec<Spanned<RawService>>,
    #[serde(default)]
    pub accounts: Vec<Spanned<RawAccount>>,
    #[serde(default)]
    pub oidc_providers: Vec<Spanned<RawOidcProvider>>,
    #[serde(default)]
    pub managed_policies: Vec<Spanned<RawManagedPolicy>>,
    #[serde(default)]
    pub roles: Vec<Spanned<RawRole>>,
    pub directory: Option<Spanned<RawDirectory>>,
    #[serde(default)]
    pub permission_sets: Vec<Spanned<RawPermissionSet>>,
    #[serde(default)]
    pub assignment_rules: Vec<Spanned<RawAssignmentRule>>,
    #[serde(default)]
    pub log: super::ops::RawLog,
    #[serde(default)]
    pub tracing: super::ops::RawTracing,
    #[serde(default)]
    pub metrics: super::ops::RawMetrics,
    #[serde(default)]
    pub limits: super::ops::RawLimits,
    #[serde(default)]
    pub rate_limits: super::ops::RawRateLimits,
    #[serde(default)]
    pub shutdown: super::ops::RawShutdown,
    pub tls: Option<Spanned<super::ops::RawTls>>,
    pub saml: Option<Spanned<super::saml::RawSaml>>,
    #[serde(default)]
    pub saml_providers: Vec<Spanned<super::saml::RawSamlProvider>>,
    pub portal: Option<Spanned<RawPortal>>,
    pub sso: Option<Spanned<RawSso>>,
    #[serde(default)]
    pub scim_clients: Vec<Spanned<super::scim::RawScimClient>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawPortal {
    pub session_idle_minutes: Option<i64>,
    pub session_max_hours: Option<i64>,
    pub local_login: Option<bool>,
    pub webauthn: Option<bool>,
    pub webauthn_rp_id: Option<String>,
    pub webauthn_rp_name: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawSso {
    pub access_token_minutes: Option<i64>,
    pub session_hours: Option<i64>,
    pub device_code_minutes: Option<i64>,
    pub poll_interval_seconds: Option<i64>,
    pub client_secret_days: Option<i64>,
    pub logout_revokes_credentials: Option<bool>,
}

#[derive(Debug, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct RawDirectory {
    pub account: Option<String>,
    pub min_password_length: Option<i64>,
    pub permission_set_role_prefix: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawPermissionSet {
    pub name: String,
    pub description: Option<String>,
    #[serde(default)]
    pub managed_policies: Vec<String>,
    #[serde(default)]
    pub policies: Vec<Spanned<RawInlinePolicy>>,
    pub permissions_boundary: Option<String>,
    pub session_duration: Option<String>,
    pub relay_state: Option<String>,
    pub mfa: Option<String>,
    pub mfa_max_age_minutes: Option<i64>,
    #[serde(default)]
    pub tags: BTreeMap<String, String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawAssignmentRule {
    pub provider: String,
    pub permission_set: String,
    pub accounts: Vec<String>,
    pub description: Option<String>,
    pub group: Option<String>,
    pub email_domain: Option<String>,
    pub local_group: Option<String>,
    pub condition: Option<Spanned<String>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawServer {
    pub listen: Spanned<String>,
    pub public_url: Spanned<String>,
    #[serde(default)]
    pub trusted_proxies: Vec<Spanned<String>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawStore {
    #[serde(default = "default_store_kind")]
    pub kind: Spanned<String>,
    #[serde(default = "default_store_path")]
    pub path: String,
    pub url_file: Option<Spanned<String>>,
    pub url_env: Option<Spanned<String>>,
    pub pool_size: Option<Spanned<i64>>,
    pub statement_timeout_ms: Option<Spanned<i64>>,
    pub connect_timeout_ms: Option<Spanned<i64>>,
    pub allow_plaintext: Option<Spanned<bool>>,
    pub tls_ca_file: Option<Spanned<String>>,
}

impl Default for RawStore {
    fn default() -> Self {
        Self {
            kind: default_store_kind(),
            path: default_store_path(),
            url_file: None,
            url_env: None,
            pool_size: None,
            statement_timeout_ms: None,
            connect_timeout_ms: None,
            allow_plaintext: None,
            tls_ca_file: None,
        }
    }
}

fn default_store_kind() -> Spanned<String> {
    Spanned::new(0..0, "sled".to_string())
}

fn default_store_path() -> String {
    "data".to_string()
}

#[derive(Debug, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct RawSts {
    pub regions: Option<Spanned<Vec<String>>>,
    pub max_clock_skew_seconds: Option<Spanned<i64>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawService {
    pub name: String,
    pub signing_names: Vec<String>,
    pub token_file: Option<Spanned<String>>,
    pub token_env: Option<Spanned<String>>,
}

#[derive(Debug, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct RawAdmin {
    pub token_file: Option<Spanned<String>>,
    pub token_env: Option<Spanned<String>>,
}

#[derive(Debug, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct RawAudit {
    pub retention_days: Option<Spanned<i64>>,
    pub sinks: Option<Spanned<Vec<String>>>,
    pub file: Option<Spanned<String>>,
    pub file_max_bytes: Option<Spanned<i64>>,
}

#[derive(Debug, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct RawDemo {
    pub enabled: Option<Spanned<bool>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawAccount {
    pub id: String,
    pub name: String,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawOidcProvider {
    pub issuer: String,
    pub audiences: Vec<String>,
    pub jwks_url: Option<String>,
    pub algorithms: Option<Vec<String>>,
    pub leeway_seconds: Option<i64>,
    #[serde(default)]
    pub allow_http: bool,
    pub accounts: Option<Vec<String>>,
    pub name: Option<String>,
    pub groups_claim: Option<String>,
    pub groups_delimiter: Option<String>,
    pub email_claim: Option<String>,
    #[serde(default)]
    pub email_always_verified: bool,
    pub mfa_amr: Option<Vec<String>>,
    pub login: Option<Spanned<super::oidc_login::RawOidcLogin>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawRole {
    pub account: String,
    pub name: String,
    pub path: Option<String>,
    pub description: Option<String>,
    pub max_session_duration: Option<i64>,
    pub trust_policy: Option<Spanned<String>>,
    pub trust_policy_file: Option<String>,
    #[serde(default)]
    pub policies: Vec<Spanned<RawInlinePolicy>>,
    #[serde(default)]
    pub managed_policy_arns: Vec<String>,
    pub permissions_boundary: Option<String>,
    #[serde(default)]
    pub tags: BTreeMap<String, String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawManagedPolicy {
    pub account: String,
    pub name: String,
    pub path: Option<String>,
    pub description: Option<String>,
    pub document: Option<Spanned<String>>,
    pub file: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawInlinePolicy {
    pub name: String,
    pub document: Option<Spanned<String>>,
    pub file: Option<String>,
}
