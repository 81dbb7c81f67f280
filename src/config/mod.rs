//! Configuration as code: one TOML file (plus the policy files it names), overridable from a few
//! environment variables, secrets from files or the environment. Loading validates everything and reports
//! every problem with file and line, so that a bad configuration fails at start-up and never at request
//! time. Knows nothing of HTTP or of store implementations.

mod accounts;
mod env;
mod identity;
mod oidc;
mod oidc_login;
mod ops;
mod policies;
mod portal;
mod raw;
mod roles;
mod rules;
mod saml;
pub mod saml_metadata;
mod scim;
mod server;
mod services;
mod sso;
mod store;
mod webauthn;

pub use crate::secret::Secret;
pub use accounts::Account;
pub use identity::{
    permission_set_trust_policy, DirectorySettings, MfaRequirement, PermissionSet,
    DEFAULT_ROLE_PREFIX, LOCAL_PROVIDER, SIGN_IN_PROVIDER,
};
pub use oidc::{JwksSource, OidcProvider, MAX_LEEWAY_SECONDS, SUPPORTED_ALGORITHMS};
pub use oidc_login::OidcLogin;
pub use ops::{
    AuditSinks, BodyLimits, LogFormat, LogSettings, MetricsSettings, OpsSettings, Rate,
    RateLimitSettings, TlsSettings, TracingSettings, DEFAULT_BODY_LIMITS,
};
pub use policies::ManagedPolicy;
pub use portal::PortalSettings;
pub use roles::{role_id_for, Role, MAX_MANAGED_PER_ROLE};
pub use rules::{AssignmentRule, RuleMatch, RULE_ACTION};
pub use saml::{
    MetadataSource, SamlProvider, SamlSettings, SpDecryption, SpSigning, MAX_SAML_SKEW_SECONDS,
};
pub use scim::{GroupSource, MatchAttribute, ScimClient, DEFAULT_SCIM_RATE};
pub use services::Service;
pub use sso::SsoSettings;
pub use store::{PostgresSettings, StoreSettings};
pub use webauthn::{webauthn_unusable_on, WebAuthnSettings};

use raw::RawConfig;
use std::fmt;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use url::Url;

/// Environment variables that override single keys of the file (older names; every key can
/// also be set as `ROLEGATE__<SECTION>__<KEY>`, see [`ENV_PREFIX`]).
pub const ENV_OVERRIDES: &[&str] = &[
    "ROLEGATE_LISTEN",
    "ROLEGATE_PUBLIC_URL",
    "ROLEGATE_STORE_PATH",
];
/// The prefix of `ROLEGATE__<SECTION>__<KEY>` variables, which set any key of the file.
pub const ENV_PREFIX: &str = env::PREFIX;
/// Environment variables rolegate reads besides the overrides (not configuration problems when set).
const ENV_KNOWN: &[&str] = &["ROLEGATE_LOG", "ROLEGATE_LOG_FORMAT", "ROLEGATE_CONFIG"];

/// One thing wrong with the configuration, with where it is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    /// The file the problem is in (or `<environment>`).
    pub file: PathBuf,
    /// 1-based line, when known.
    pub line: Option<usize>,
    /// What is wrong.
    pub message: String,
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.line {
            Some(l) => write!(f, "{}:{}: {}", self.file.display(), l, self.message),
            None => write!(f, "{}: {}", self.file.display(), self.message),
        }
    }
}

/// Everything wrong with a configuration.
#[derive(Debug, Clone, thiserror::Error)]
#[error("{} configuration problem(s):\n{}", .0.len(), .0.iter().map(|p| format!("  {p}")).collect::<Vec<_>>().join("\n"))]
pub struct ConfigError(pub Vec<Problem>);

/// A validated configuration.
#[derive(Debug, Clone)]
pub struct Config {
    /// The file it was loaded from.
    pub path: PathBuf,
    /// Address to listen on.
    pub listen: SocketAddr,
    /// The URL clients use to reach rolegate.
    pub public_url: Url,
    /// Load balancers and reverse proxies whose `X-Forwarded-For` / `X-Forwarded-Proto` are
    /// believed (empty: those headers are ignored).
    pub trusted_proxies: Vec<ipnet::IpNet>,
    /// Persistent state.
    pub store: StoreSettings,
    /// Regions accepted in SigV4 credential scopes.
    pub sts_regions: Vec<String>,
    /// Largest accepted difference between a signed request's time and ours.
    pub max_clock_skew: chrono::Duration,
    /// Bearer token for the admin API, if enabled.
    pub admin_token: Option<Secret>,
    /// Downstream services allowed to use the authorization API.
    pub services: Vec<Service>,
    /// Days audit events are kept.
    pub audit_retention_days: i64,
    /// The built-in demo identity provider (loopback only).
    pub demo: bool,
    /// Accounts.
    pub accounts: Vec<Account>,
    /// Web identity providers.
    pub oidc_providers: Vec<OidcProvider>,
    /// Customer managed policies.
    pub managed_policies: Vec<ManagedPolicy>,
    /// Roles (configured ones, then those permission sets provision).
    pub roles: Vec<Role>,
    /// The local directory's settings (`None` without accounts).
    pub directory: Option<DirectorySettings>,
    /// Permission sets.
    pub permission_sets: Vec<PermissionSet>,
    /// Assignment rules, in file order.
    pub assignment_rules: Vec<AssignmentRule>,
    /// Operational settings: logs, metrics, limits, shutdown, TLS, audit sinks.
    pub ops: OpsSettings,
    /// The browser portal (`None` without a `[portal]` table).
    pub portal: Option<PortalSettings>,
    /// Command line sign-in (`None` without an `[sso]` table).
    pub sso: Option<SsoSettings>,
    /// rolegate as a SAML service provider.
    pub saml: SamlSettings,
    /// Trusted SAML identity providers.
    pub saml_providers: Vec<SamlProvider>,
    /// Directories that provision the people and groups of a provider over SCIM.
    pub scim_clients: Vec<ScimClient>,
    /// Things worth knowing that do not stop start-up.
    pub warnings: Vec<Problem>,
}

impl Config {
    /// Loads and validates `path`, applying overrides from the process environment.
    pub fn load(path: &Path) -> Result<Config, ConfigError> {
        let env: Vec<(String, String)> = std::env::vars().collect();
        Self::load_with_env(path, &env)
    }

    /// Loads and validates `path` with the given environment (for tests).
    pub fn load_with_env(path: &Path, env: &[(String, String)]) -> Result<Config, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|e| {
            ConfigError(vec![Problem {
                file: path.to_path_buf(),
                line: None,
                message: format!("cannot read: {e}"),
            }])
        })?;
        Self::from_str_with_env(path, &text, env)
    }

    /// Parses and validates configuration text that came from `path` (used to resolve relative files).
    pub fn from_str_with_env(
        path: &Path,
        text: &str,
        env: &[(String, String)],
    ) -> Result<Config, ConfigError> {
        // ROLEGATE__SECTION__KEY variables, applied to the document so that they are checked
        // like the file itself.
        let overridden = env::apply(text, env).map_err(ConfigError)?;
        let fix = |mut problems: Vec<Problem>| {
            if let Some(o) = &overridden {
                o.fix(path, &mut problems);
            }
            problems
        };
        let text = overridden.as_ref().map_or(text, |o| o.text.as_str());
        let raw: RawConfig = toml::from_str(text).map_err(|e| {
            ConfigError(fix(vec![Problem {
                file: path.to_path_buf(),
                line: e.span().map(|s| line_of(text, s.start)),
                message: e.message().trim().to_string(),
            }]))
        })?;
        let mut v = Validator {
            path,
            text,
            dir: path.parent().unwrap_or(Path::new(".")).to_path_buf(),
            problems: Vec::new(),
            warnings: Vec::new(),
            saml_names: Vec::new(),
        };
        let cfg = v.validate(raw, env);
        if v.problems.is_empty() {
            match cfg {
                Some(mut c) => {
                    c.warnings = fix(v.warnings);
                    Ok(c)
                }
                None => Err(ConfigError(vec![v.problem(None, "invalid configuration")])),
            }
        } else {
            Err(ConfigError(fix(v.problems)))
        }
    }

    /// Every identity provider's name with the other names it goes by (an OpenID provider's issuer
    /// with and without its scheme), for matching revocations however a session names its provider.
    pub fn provider_aliases(&self) -> Vec<(String, Vec<String>)> {
        let mut out: Vec<(String, Vec<String>)> = self
            .oidc_providers
            .iter()
            .map(|p| {
                let aliases = vec![
                    p.issuer.clone(),
                    p.issuer.trim_end_matches('/').to_string(),
                    p.key_prefix.clone(),
                ];
                (p.name.clone(), aliases)
            })
            .collect();
        out.extend(
            self.saml_providers
                .iter()
                .map(|p| (p.name.clone(), Vec::new())),
        );
        out.push((LOCAL_PROVIDER.to_string(), Vec::new()));
        out
    }

    /// Whether `name` is the name of a provider people sign in through: `local`, an OpenID
    /// provider or a SAML provider of this configuration.
    pub fn knows_provider(&self, name: &str) -> bool {
        name == LOCAL_PROVIDER
            || self.oidc_providers.iter().any(|p| p.name == name)
            || self.saml_providers.iter().any(|p| p.name == name)
    }

    /// The SCIM client that provisions the people of `provider`, if one does.
    pub fn scim_client_for(&self, provider: &str) -> Option<&ScimClient> {
        self.scim_clients.iter().find(|c| c.provider == provider)
    }

    /// The role with this ARN.
    pub fn role(&self, arn: &str) -> Option<&Role> {
        self.roles.iter().find(|r| r.arn == arn)
    }

    /// The managed policy with this ARN.
    pub fn managed_policy(&self, arn: &str) -> Option<&ManagedPolicy> {
        self.managed_policies.iter().find(|p| p.arn == arn)
    }
}

/// The 1-based line of byte `offset` in `text`.
pub fn line_of(text: &str, offset: usize) -> usize {
    text.as_bytes()[..offset.min(text.len())]
        .iter()
        .filter(|b| **b == b'\n')
        .count()
        + 1
}

/// Whether `s` is a valid IAM name (roles, sessions): `[\w+=,.@-]`.
pub fn is_iam_name_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || "_+=,.@-".contains(c)
}

/// An IAM path: starts and ends with `/`, at most 512 printable ASCII characters, no empty segment.
fn valid_iam_path(path: &str) -> bool {
    path.starts_with('/')
        && path.ends_with('/')
        && path.len() <= 512
        && !path.contains("//")
        && path.chars().all(|c| c == '/' || c.is_ascii_graphic())
}

/// Collects the problems and warnings of one configuration while its sections are validated, each
/// by the module of that section.
struct Validator<'a> {
    path: &'a Path,
    text: &'a str,
    dir: PathBuf,
    problems: Vec<Problem>,
    warnings: Vec<Problem>,
    /// SAML providers (name, accounts served), for the trust-policy references check.
    saml_names: Vec<(String, Option<Vec<String>>)>,
}

impl Validator<'_> {
    fn problem(&self, span_start: Option<usize>, msg: impl Into<String>) -> Problem {
        Problem {
            file: self.path.to_path_buf(),
            line: span_start.map(|s| line_of(self.text, s)),
            message: msg.into(),
        }
    }

    /// The checks every IAM entity of an account gets (a role, a managed policy): the account is
    /// defined, the name is 1 to `max_name` characters of `[A-Za-z0-9_+=,.@-]`, and the path is an
    /// IAM path. Reports each failure against `what`; returns the path and whether all held.
    fn iam_entity(
        &mut self,
        at: Option<usize>,
        what: &str,
        accounts: &std::collections::HashSet<String>,
        (account, name, path): (&str, &str, Option<&String>),
        max_name: usize,
    ) -> (String, bool) {
        let mut ok = true;
        if !accounts.contains(account) {
            self.err(at, format!("{what}: account {account} is not defined"));
            ok = false;
        }
        if name.is_empty() || name.len() > max_name || !name.chars().all(is_iam_name_char) {
            self.err(
                at,
                format!("{what}: name must be 1-{max_name} characters of [A-Za-z0-9_+=,.@-]"),
            );
            ok = false;
        }
        let path = path.cloned().unwrap_or_else(|| "/".into());
        if !valid_iam_path(&path) {
            self.err(
                at,
                format!("{what}: path '{path}' must start and end with '/'"),
            );
            ok = false;
        }
        (path, ok)
    }

    /// Whether the tags of `what` are valid (key 1-128 characters not starting with `aws:`, value
    /// at most 256); each one that is not is reported.
    fn tags_ok(
        &mut self,
        at: Option<usize>,
        what: &str,
        tags: &std::collections::BTreeMap<String, String>,
    ) -> bool {
        let mut ok = true;
        for (k, v) in tags {
            if k.is_empty()
                || k.len() > 128
                || v.len() > 256
                || k.to_ascii_lowercase().starts_with("aws:")
            {
                self.err(at, format!("{what}: tag '{k}' is invalid (key 1-128 chars not starting with aws:, value ≤ 256)"));
                ok = false;
            }
        }
        ok
    }

    fn err(&mut self, span_start: Option<usize>, msg: impl Into<String>) {
        let p = self.problem(span_start, msg);
        self.problems.push(p);
    }

    /// Every section, in the order their problems are reported.
    fn validate(&mut self, raw: RawConfig, env: &[(String, String)]) -> Option<Config> {
        let env_get = |k: &str| env.iter().find(|(n, _)| n == k).map(|(_, v)| v.clone());
        self.unknown_variables(&raw, env);

        // server
        let listen = self.listen(&raw.server, &env_get);
        let public_url = self.public_url(&raw.server, &env_get);

        // store
        let store = self.store_settings(&raw.store, &env_get);

        // sts
        let sts_regions = self.sts_regions(&raw.sts);
        let skew = self.max_clock_skew(&raw.sts);

        // admin
        let admin_token = self.bearer_token(
            raw.admin.token_file.as_ref(),
            raw.admin.token_env.as_ref(),
            "admin",
            &env_get,
        );

        // downstream services of the authorization API
        let services = self.validate_services(&raw.services, admin_token.as_ref(), &env_get);

        let audit_retention_days = match &raw.audit.retention_days {
            Some(d) if *d.get_ref() < 1 => {
                self.err(
                    Some(d.span().start),
                    "audit.retention_days: must be at least 1",
                );
                90
            }
            Some(d) => *d.get_ref(),
            None => 90,
        };

        let demo = raw.demo.enabled.as_ref().is_some_and(|e| *e.get_ref());
        if demo {
            if let Some(l) = listen {
                if !l.ip().is_loopback() {
                    self.err(
                        raw.demo.enabled.as_ref().map(|e| e.span().start),
                        "demo.enabled: the demo identity provider issues tokens to anyone; it may only run on a loopback listen address",
                    );
                }
            }
        }

        // accounts
        let (accounts, seen_accounts) = self.validate_accounts(&raw.accounts);

        // OIDC providers
        let providers = self.validate_oidc_providers(&raw.oidc_providers, &seen_accounts, &env_get);

        // SAML
        let saml = self.validate_saml(raw.saml.as_ref(), public_url.as_ref());
        let trusted_proxies = self.trusted_proxies(&raw.server);
        let saml_providers =
            self.validate_saml_providers(&raw.saml_providers, &seen_accounts, &providers);

        // managed policies
        let managed = self.validate_managed_policies(&raw.managed_policies, &seen_accounts);

        // roles
        let mut roles = self.validate_roles(&raw.roles, &seen_accounts, &providers, &managed);

        // the identity model
        let directory = self.validate_directory(raw.directory.as_ref(), &accounts);
        let permission_sets = self.validate_permission_sets(&raw.permission_sets);
        // Rules know every set by name, also one with problems (reported once, above).
        let set_names: Vec<&str> = raw
            .permission_sets
            .iter()
            .map(|p| p.get_ref().name.as_str())
            .collect();
        let assignment_rules = self.validate_rules(
            &raw.assignment_rules,
            &providers,
            &saml_providers,
            &set_names,
            &seen_accounts,
        );
        self.provision_roles(
            directory.as_ref(),
            &assignment_rules,
            &permission_sets,
            &managed,
            &mut roles,
        );

        let ops = self.ops(
            ops::RawOps {
                log: &raw.log,
                tracing: &raw.tracing,
                metrics: &raw.metrics,
                limits: &raw.limits,
                rate_limits: &raw.rate_limits,
                shutdown: &raw.shutdown,
                tls: raw.tls.as_ref(),
                audit: ops::RawAuditSinks {
                    sinks: raw.audit.sinks.as_ref(),
                    file: raw.audit.file.as_ref(),
                    file_max_bytes: raw.audit.file_max_bytes.as_ref(),
                },
            },
            listen,
        );
        let mut portal = self.validate_portal(
            raw.portal.as_ref(),
            directory.as_ref(),
            &accounts,
            (&providers, &saml_providers),
        );
        if let (Some(p), Some(raw_portal)) = (portal.as_mut(), raw.portal.as_ref()) {
            p.webauthn = self.validate_webauthn(raw_portal, public_url.as_ref(), p.local_login);
        }
        let sso = self.validate_sso(raw.sso.as_ref(), portal.is_some());
        let scim_clients = self.validate_scim_clients(
            &raw.scim_clients,
            (&providers, &saml_providers),
            (admin_token.as_ref(), &services),
            &env_get,
        );

        Some(Config {
            path: self.path.to_path_buf(),
            listen: listen?,
            public_url: public_url?,
            trusted_proxies,
            store: store?,
            sts_regions,
            max_clock_skew: chrono::Duration::seconds(skew),
            admin_token,
            services,
            audit_retention_days,
            demo,
            accounts,
            oidc_providers: providers,
            managed_policies: managed,
            roles,
            directory,
            permission_sets,
            assignment_rules,
            ops,
            portal,
            sso,
            saml: saml?,
            saml_providers,
            scim_clients,
            warnings: Vec::new(),
        })
    }

    fn resolve(&self, p: &str) -> PathBuf {
        let p = Path::new(p);
        if p.is_absolute() {
            p.to_path_buf()
        } else {
            self.dir.join(p)
        }
    }
}

/// Loads `text` as `/etc/rolegate/rolegate.toml` with the environment `env` (the tests of each
/// section).
#[cfg(test)]
fn load_test_text(text: &str, env: &[(&str, &str)]) -> Result<Config, ConfigError> {
    let env: Vec<(String, String)> = env
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    Config::from_str_with_env(Path::new("/etc/rolegate/rolegate.toml"), text, &env)
}

/// [`load_test_text`] with no environment, its problems in their `Debug` form.
#[cfg(test)]
fn load_test_debug(text: &str) -> Result<Config, String> {
    load_test_text(text, &[]).map_err(|e| format!("{e:?}"))
}

#[cfg(test)]
mod tests;
