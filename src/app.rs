//! `App`: everything a request needs, wired once at start-up and shared by `serve` and the tests.

use crate::audit::Auditor;
use crate::clock::SharedClock;
use crate::config::{Config, StoreSettings};
use crate::credentials::{KeyRing, RevocationList};
use crate::idp::demo::DemoIdp;
use crate::idp::jwt::WebIdentityVerifier;
use crate::idp::local::Directory;
use crate::idp::saml::SamlFederation;
use crate::metrics::{MeteredStore, Metrics};
use crate::store::{self, Store};
use anyhow::Context;
use std::sync::Arc;
use std::time::Duration;

/// How often shared state (keys, revocations) is re-read from the store: the bound on how long a
/// rotation or revocation made by another replica takes to apply here.
pub const REFRESH_INTERVAL: Duration = Duration::from_secs(5);

/// The running service.
pub struct App {
    /// Validated configuration.
    pub config: Arc<Config>,
    /// Persistent, shared state.
    pub store: Arc<dyn Store>,
    /// Session-token sealing keys.
    pub keys: KeyRing,
    /// Revocations in force.
    pub revocations: RevocationList,
    /// Web identity token verification.
    pub verifier: WebIdentityVerifier,
    /// Audit events.
    pub audit: Auditor,
    /// Time.
    pub clock: SharedClock,
    /// Session policies carried in tokens, parsed once.
    pub policy_cache: crate::policy::PolicyCache,
    /// The built-in demo identity provider, when enabled.
    pub demo: Option<DemoIdp>,
    /// The local directory (`None` when no account is configured).
    pub directory: Option<Arc<Directory>>,
    /// Prometheus series.
    pub metrics: Arc<Metrics>,
    /// Rate limits on sign-in, MFA and the STS.
    pub limits: crate::limit::RateLimits,
    /// Makes the audit file sink reopen its file (SIGHUP), when there is one.
    pub audit_reopen: Option<crate::audit::ReopenHandle>,
    /// SAML identity providers and rolegate's service-provider side.
    pub saml: SamlFederation,
    /// Browser sign-in through OpenID Connect providers.
    pub oidc: crate::idp::oidc::OidcLogins,
    /// The rate limit of each SCIM client (by name) that has one.
    pub scim_limits: std::collections::HashMap<String, crate::limit::Limiter<u8>>,
    /// People and groups provisioned over SCIM, per provider.
    pub provisioned: crate::idp::provisioned::Provisioned,
    /// Set once shutdown has begun: `/readyz` answers 503 from then on.
    pub draining: std::sync::atomic::AtomicBool,
    /// SigV4 signing keys of directory users' long-term secrets, derived once per scope.
    pub signing_keys: crate::sigv4::SigningKeyCache,
}

/// Opens the store a configuration names (for PostgreSQL: connects and migrates the schema).
pub async fn open_store(config: &Config) -> anyhow::Result<Arc<dyn Store>> {
    Ok(match &config.store {
        StoreSettings::Sled { path } => Arc::new(store::sled::SledStore::open(path)?),
        StoreSettings::Memory => Arc::new(store::memory::MemoryStore::new()),
        StoreSettings::Postgres(pg) => {
            let opts = store::postgres::PgOptions {
                pool_size: pg.pool_size,
                statement_timeout: pg.statement_timeout,
                connect_timeout: pg.connect_timeout,
                tls_ca_file: pg.tls_ca_file.clone(),
            };
            Arc::new(store::postgres::PgStore::connect(pg.url.expose(), &opts).await?)
        }
    })
}

impl App {
    /// Wires the service over an open store.
    pub async fn build(
        config: Config,
        store: Arc<dyn Store>,
        clock: SharedClock,
    ) -> anyhow::Result<Arc<App>> {
        let recording = config.ops.metrics.enabled;
        let metrics = Arc::new(Metrics::with_recording(recording).context("registering metrics")?);
        let config_limits = config.ops.rate_limits;
        // Every store operation is timed, whatever the backend: this is the one place it is wrapped.
        let store: Arc<dyn Store> = if recording {
            Arc::new(MeteredStore::new(store, metrics.clone()))
        } else {
            store
        };
        let now = clock.now().timestamp();
        let keys = KeyRing::load(store.as_ref(), now)
            .await
            .context("loading session-token sealing keys")?;
        let revocations = RevocationList::default();
        revocations.set_providers(crate::credentials::ProviderAliases::new(
            config.provider_aliases(),
        ));
        revocations
            .refresh(store.as_ref())
            .await
            .context("loading revocations")?;
        let verifier = WebIdentityVerifier::new(&config.oidc_providers, clock.clone())
            .map_err(anyhow::Error::msg)?;
        let oidc = crate::idp::oidc::OidcLogins::new(&config.oidc_providers)
            .map_err(anyhow::Error::msg)?;
        let demo = if config.demo {
            Some(DemoIdp::new(&config.public_url).context("starting the demo identity provider")?)
        } else {
            None
        };
        let saml = SamlFederation::new(&config.saml, &config.saml_providers, clock.clone());
        saml.load().await.map_err(anyhow::Error::msg)?;
        let sinks = &config.ops.audit;
        let file_sink = match &sinks.file {
            Some(path) => Some(
                crate::audit::FileSink::open(path, sinks.file_max_bytes)
                    .context("opening the audit file")?,
            ),
            None => None,
        };
        let audit_reopen = file_sink.as_ref().map(|f| f.reopen_handle());
        let audit = Auditor::start_with(sinks.store.then(|| store.clone()), file_sink);
        let directory = match config.directory.clone() {
            Some(settings) => {
                let mut d = Directory::new(
                    store.clone(),
                    settings,
                    clock.clone(),
                    config
                        .public_url
                        .host_str()
                        .unwrap_or("rolegate")
                        .to_string(),
                );
                if let Some(w) = config.portal.as_ref().and_then(|p| p.webauthn.as_ref()) {
                    d.enable_webauthn(w)
                        .context("enabling security keys (portal.webauthn)")?;
                }
                Some(Arc::new(d))
            }
            None => None,
        };
        let provisioned = crate::idp::provisioned::Provisioned::new(
            store.clone(),
            clock.clone(),
            &format!(
                "{}/scim/v2",
                config.public_url.as_str().trim_end_matches('/')
            ),
            &config.scim_clients,
        );
        provisioned
            .load()
            .await
            .context("loading the provisioned directory")?;
        let scim_limits = config
            .scim_clients
            .iter()
            .filter_map(|c| {
                c.rate.map(|r| {
                    (
                        c.name.clone(),
                        crate::limit::Limiter::new("scim_client", r, 16),
                    )
                })
            })
            .collect();
        Ok(Arc::new(App {
            config: Arc::new(config),
            store,
            keys,
            revocations,
            verifier,
            audit,
            clock,
            policy_cache: Default::default(),
            demo,
            directory,
            metrics,
            limits: crate::limit::RateLimits::new(&config_limits),
            audit_reopen,
            saml,
            oidc,
            provisioned,
            scim_limits,
            draining: std::sync::atomic::AtomicBool::new(false),
            signing_keys: crate::sigv4::SigningKeyCache::new(),
        }))
    }

    /// The Prometheus text of every series, counters kept elsewhere brought up to date.
    pub fn render_metrics(&self) -> crate::metrics::Result<String> {
        self.metrics.render(crate::metrics::Snapshot {
            jwks_fetches: self
                .verifier
                .stats
                .fetches
                .load(std::sync::atomic::Ordering::Relaxed),
            jwks_failures: self
                .verifier
                .stats
                .failures
                .load(std::sync::atomic::Ordering::Relaxed),
            audit_written: self.audit.written(),
            audit_dropped: self.audit.dropped(),
            audit_paced: self.audit.paced(),
            now: self.clock.now().timestamp(),
        })
    }

    /// Whether browser cookies must be `Secure`: rolegate terminates TLS itself, or clients reach
    /// it through an https URL (a load balancer in front terminates TLS).
    pub fn cookies_secure(&self) -> bool {
        self.config.ops.tls.is_some() || self.config.public_url.scheme() == "https"
    }
}
