//! Connecting: the pool's [`PgOptions`], TLS, the connection settings every session carries, and
//! [`PgStore::connect`], which migrates the schema and checks one connection before the store is used.

use super::schema::migrate;
use super::{PgStore, Result, Store, StoreError};
use deadpool_postgres::{Manager, ManagerConfig, Pool, RecyclingMethod, Runtime};
use std::time::Duration;
use tokio_postgres::NoTls;

/// Connections of the audit writer's own pool (see [`PgStore`]), besides `pool_size`.
pub const AUDIT_CONNECTIONS: usize = 2;

/// Tunables of the pool.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PgOptions {
    /// Most connections the pool opens.
    pub pool_size: usize,
    /// Server-side `statement_timeout` of every connection; also bounds each operation.
    pub statement_timeout: Duration,
    /// How long connecting, or waiting for a free connection, may take.
    pub connect_timeout: Duration,
    /// TLS with this CA bundle (PEM) and the server name checked against the URL's host; `None`:
    /// plain TCP.
    pub tls_ca_file: Option<std::path::PathBuf>,
}

impl Default for PgOptions {
    fn default() -> Self {
        Self {
            pool_size: 16,
            statement_timeout: Duration::from_secs(5),
            connect_timeout: Duration::from_secs(3),
            tls_ca_file: None,
        }
    }
}

/// The TLS connector for `ca_file`: rustls (aws-lc-rs), TLS 1.2+, the server's certificate checked
/// against the bundle and the URL's host.
fn tls_connector(ca_file: &std::path::Path) -> Result<tokio_postgres_rustls::MakeRustlsConnect> {
    use rustls_pki_types::pem::PemObject;
    use rustls_pki_types::CertificateDer;
    let bad = |why: String| {
        StoreError::Invalid(format!("store.tls_ca_file {}: {why}", ca_file.display()))
    };
    let mut roots = rustls::RootCertStore::empty();
    for cert in CertificateDer::pem_file_iter(ca_file).map_err(|e| bad(e.to_string()))? {
        roots
            .add(cert.map_err(|e| bad(e.to_string()))?)
            .map_err(|e| bad(e.to_string()))?;
    }
    if roots.is_empty() {
        return Err(bad("no CERTIFICATE block".into()));
    }
    let provider = std::sync::Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| bad(e.to_string()))?
        .with_root_certificates(roots)
        .with_no_client_auth();
    Ok(tokio_postgres_rustls::MakeRustlsConnect::new(config))
}

/// An error and its causes, `a: b: c` (tokio-postgres shows only "db error" or "error performing
/// TLS handshake" of itself; the server's message or the certificate problem is the cause).
pub(super) fn with_causes(e: &dyn std::error::Error) -> String {
    let mut out = e.to_string();
    let mut cause = e.source();
    while let Some(c) = cause {
        let text = c.to_string();
        if !out.ends_with(&text) {
            out.push_str(": ");
            out.push_str(&text);
        }
        cause = c.source();
    }
    out
}

/// `url` without its `sslmode` (tokio-postgres knows no `verify-full`; TLS is set up here).
fn without_sslmode(url: &str) -> Result<String> {
    let mut u = url::Url::parse(url)
        .map_err(|_| StoreError::Invalid("the PostgreSQL URL does not parse".into()))?;
    let kept: Vec<(String, String)> = u
        .query_pairs()
        .filter(|(k, _)| k != "sslmode")
        .map(|(k, v)| (k.into_owned(), v.into_owned()))
        .collect();
    if kept.is_empty() {
        u.set_query(None);
    } else {
        u.query_pairs_mut().clear().extend_pairs(kept);
    }
    Ok(u.to_string())
}

/// `host:port/dbname` of a configuration, never its password.
pub(super) fn describe(cfg: &tokio_postgres::Config) -> String {
    let host = cfg
        .get_hosts()
        .first()
        .map(|h| match h {
            tokio_postgres::config::Host::Tcp(h) => h.clone(),
            #[cfg(unix)]
            tokio_postgres::config::Host::Unix(p) => p.display().to_string(),
        })
        .unwrap_or_else(|| "localhost".into());
    let port = cfg.get_ports().first().copied().unwrap_or(5432);
    format!("{host}:{port}/{}", cfg.get_dbname().unwrap_or("-"))
}

impl PgStore {
    /// Connects to the database at `url` (a `postgresql://` URL or `key=value` string), applies the
    /// migrations it lacks, and checks that one connection works. [`StoreError::Unavailable`] when
    /// the database cannot be reached within the connect timeout; [`StoreError::Invalid`] for a URL
    /// that does not parse; [`StoreError::Corrupt`] for a schema newer than this build.
    pub async fn connect(url: &str, opts: &PgOptions) -> Result<PgStore> {
        let tls = opts.tls_ca_file.as_deref().map(tls_connector).transpose()?;
        let url = if tls.is_some() {
            without_sslmode(url)?
        } else {
            url.to_string()
        };
        let mut cfg: tokio_postgres::Config = url
            .parse()
            .map_err(|_| StoreError::Invalid("the PostgreSQL URL does not parse".into()))?;
        if tls.is_some() {
            cfg.ssl_mode(tokio_postgres::config::SslMode::Require);
        }
        let statement_ms = opts.statement_timeout.as_millis().max(1);
        cfg.connect_timeout(opts.connect_timeout)
            .keepalives(true)
            .keepalives_idle(Duration::from_secs(30))
            .tcp_user_timeout(opts.connect_timeout + opts.statement_timeout)
            .application_name("rolegate")
            .options(format!(
                "-c statement_timeout={statement_ms} -c lock_timeout={statement_ms} \
                 -c idle_in_transaction_session_timeout={}",
                statement_ms * 2
            ));
        let target = describe(&cfg);
        let op_timeout = opts.connect_timeout + opts.statement_timeout + Duration::from_secs(1);
        migrate(&cfg, tls.clone(), &target, op_timeout).await?;
        let pool = |manager, max_size: usize| {
            Pool::builder(manager)
                .max_size(max_size.max(1))
                .runtime(Runtime::Tokio1)
                .wait_timeout(Some(opts.connect_timeout))
                .create_timeout(Some(opts.connect_timeout))
                .recycle_timeout(Some(opts.connect_timeout))
                .build()
                .map_err(|e| StoreError::Invalid(format!("postgres connection pool: {e}")))
        };
        let manager = |cfg: tokio_postgres::Config| {
            let manager_config = ManagerConfig {
                recycling_method: RecyclingMethod::Fast,
            };
            match &tls {
                Some(tls) => Manager::from_config(cfg, tls.clone(), manager_config),
                None => Manager::from_config(cfg, NoTls, manager_config),
            }
        };
        let db = super::Db {
            pool: pool(manager(cfg.clone()), opts.pool_size)?,
            target: target.clone(),
            op_timeout,
        };
        let audit_db = super::Db {
            pool: pool(manager(cfg), AUDIT_CONNECTIONS)?,
            target,
            op_timeout,
        };
        let store = PgStore {
            replays: super::replays::committer(&db),
            db,
            audit_db,
        };
        store.health().await?;
        tracing::debug!(target = %store.db.target, "postgres store open");
        Ok(store)
    }

    /// Where the store connects (`host:port/dbname`), for logs.
    pub fn target(&self) -> &str {
        &self.db.target
    }
}
