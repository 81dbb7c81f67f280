//! [`PgStore`]: the shared backend for several replicas, one PostgreSQL database reached through a
//! connection pool. Knows the tables and the SQL that gives each store operation its semantics;
//! knows nothing of what the records mean.
//!
//! **One statement per operation.** Each operation is one statement (or, for an audit batch and a
//! directory batch, one transaction), so that atomicity and uniqueness come from the database and
//! hold across replicas: `first_use` is an `INSERT … ON CONFLICT … DO UPDATE … WHERE expires_at <=
//! now`, so of any number of concurrent callers on any number of replicas exactly one sees a row
//! affected. Every transaction commits with PostgreSQL's default `synchronous_commit = on`: a call
//! that returned has its write on the server's disk.
//!
//! **Directory batches** of several writes run under `READ COMMITTED` behind transaction-scoped
//! advisory locks, one per record of the batch (a hash of kind and key, taken in ascending order so that two batches never
//! wait on each other in a cycle). Each conditional statement must touch exactly one row (a pure
//! absence guard: none), else the transaction rolls back and the batch is refused. The locks make an
//! absence guard hold until commit, which row locks alone cannot, since there is no row to lock.
//! A batch of one write is one statement (see `PgStore::dir_write_one`): the common case costs one
//! round trip.
//!
//! **Schema.** Migrations are embedded ([`MIGRATIONS`]) and applied at start-up by
//! [`PgStore::connect`] under a session advisory lock, so replicas starting together apply each one
//! exactly once; a database migrated by a newer build (a version this build does not know) is
//! refused as [`StoreError::Corrupt`]. Identifiers and keys are `text COLLATE "C"`, whose order is
//! byte order, as the store traits require.
//!
//! **Failures.** Every connection carries a server-side `statement_timeout`; the pool waits at most
//! the connect timeout for a connection, and every operation is also bounded on the client side, so
//! an unreachable or stalled database becomes [`StoreError::Unavailable`] within a bounded time,
//! never a hang. Broken connections are dropped by the pool, and the next call connects afresh: a
//! restarted database is used again without restarting rolegate. Text PostgreSQL cannot hold (NUL)
//! is [`StoreError::Invalid`].

use super::{
    check_audit_batch, check_dir_batch, check_dir_key, check_replay, check_sealing_key, AuditLog,
    AuditQuery, AuditRecord, DirWrite, DirectoryStore, Expect, KeyBytes, KeyStore, ReplayCache,
    Result, Revocation, RevocationScope, RevocationStore, SealingKey, Store, StoreError, Versioned,
};
use async_trait::async_trait;
use deadpool_postgres::{Manager, ManagerConfig, Pool, RecyclingMethod, Runtime};
use std::fmt;
use std::future::Future;
use std::time::Duration;
use tokio_postgres::error::SqlState;
use tokio_postgres::types::ToSql;
use tokio_postgres::NoTls;

/// The schema, one migration per entry, applied in order; entry `i` is version `i + 1`. Never edit
/// an entry once released: append a new one.
pub const MIGRATIONS: &[&str] = &[r#"
CREATE TABLE sealing_keys (
    id text COLLATE "C" PRIMARY KEY,
    secret bytea NOT NULL CHECK (length(secret) = 32),
    created_at bigint NOT NULL,
    retired_at bigint
);
CREATE TABLE replays (
    namespace text COLLATE "C" NOT NULL,
    key text COLLATE "C" NOT NULL,
    expires_at bigint NOT NULL,
    PRIMARY KEY (namespace, key)
);
CREATE INDEX replays_expires_at ON replays (expires_at);
CREATE TABLE revocations (
    scope text COLLATE "C" PRIMARY KEY,
    issued_before bigint NOT NULL,
    created_at bigint NOT NULL,
    reason text NOT NULL,
    expires_at bigint NOT NULL
);
CREATE INDEX revocations_expires_at ON revocations (expires_at);
CREATE TABLE directory (
    kind text COLLATE "C" NOT NULL,
    key text COLLATE "C" NOT NULL,
    version bigint NOT NULL CHECK (version >= 1),
    value text NOT NULL,
    PRIMARY KEY (kind, key)
);
CREATE TABLE audit (
    time_ms bigint NOT NULL,
    id text COLLATE "C" NOT NULL,
    action text COLLATE "C" NOT NULL,
    principal text COLLATE "C",
    decision text COLLATE "C" NOT NULL,
    json text NOT NULL,
    PRIMARY KEY (time_ms, id)
);
CREATE INDEX audit_principal ON audit (principal, time_ms);
CREATE INDEX audit_action ON audit (action, time_ms);
"#];

/// Rows per audit `INSERT`; a batch longer than this is several statements in one transaction.
pub const AUDIT_ROWS_PER_STATEMENT: usize = 256;

/// Appends audit rows given as arrays, in order, so that of two rows with the same `(time_ms, id)`
/// (in the batch or stored) the first is kept.
const AUDIT_INSERT: &str = "INSERT INTO audit (time_ms, id, action, principal, decision, json)
     SELECT * FROM unnest($1::bigint[], $2::text[], $3::text[], $4::text[], $5::text[], $6::text[])
     ON CONFLICT (time_ms, id) DO NOTHING";

/// The two-key advisory lock (`pg_advisory_lock(int, int)`) held while migrating. The two-key space
/// never meets the one-key space of the directory locks.
const MIGRATION_LOCK: (i32, i32) = (0x726f_6c65, 1);

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
fn with_causes(e: &dyn std::error::Error) -> String {
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

/// The store in a PostgreSQL database.
pub struct PgStore {
    pool: Pool,
    /// Where it connects, without credentials, for logs.
    target: String,
    /// The client-side bound on one operation.
    op_timeout: Duration,
}

impl fmt::Debug for PgStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PgStore")
            .field("target", &self.target)
            .finish_non_exhaustive()
    }
}

/// `host:port/dbname` of a configuration, never its password.
fn describe(cfg: &tokio_postgres::Config) -> String {
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

/// What a PostgreSQL error means to callers.
fn from_pg(e: tokio_postgres::Error) -> StoreError {
    let Some(code) = e.code() else {
        return StoreError::Unavailable(format!("postgres: {e}"));
    };
    let detail = e
        .as_db_error()
        .map_or_else(|| e.to_string(), |d| d.message().to_owned());
    if *code == SqlState::QUERY_CANCELED {
        StoreError::Unavailable(format!(
            "postgres: statement timed out or was cancelled: {detail}"
        ))
    } else if [
        SqlState::CHARACTER_NOT_IN_REPERTOIRE,
        SqlState::UNTRANSLATABLE_CHARACTER,
        SqlState::PROGRAM_LIMIT_EXCEEDED,
        SqlState::STRING_DATA_RIGHT_TRUNCATION,
    ]
    .contains(code)
    {
        StoreError::Invalid(format!("postgres refused the value: {detail}"))
    } else if [SqlState::DATA_CORRUPTED, SqlState::INDEX_CORRUPTED].contains(code) {
        StoreError::Corrupt(format!("postgres: {detail}"))
    } else {
        StoreError::Unavailable(format!("postgres ({}): {detail}", code.code()))
    }
}

fn from_pool(e: deadpool_postgres::PoolError) -> StoreError {
    match e {
        deadpool_postgres::PoolError::Backend(e) => from_pg(e),
        other => StoreError::Unavailable(format!("postgres connection pool: {other}")),
    }
}

fn to_i64(n: u64) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}

fn to_u64(n: i64) -> Result<u64> {
    u64::try_from(n).map_err(|_| StoreError::Corrupt(format!("negative count or version {n}")))
}

/// The key a revocation scope is stored under: its JSON, which names the kind and every value.
fn scope_key(scope: &RevocationScope) -> Result<String> {
    serde_json::to_string(scope)
        .map_err(|e| StoreError::Invalid(format!("cannot encode revocation scope: {e}")))
}

/// The advisory lock key of a directory record: the first 8 bytes of SHA-256 over the
/// length-prefixed kind and the key. Equal on every replica.
fn dir_lock_key(kind: &str, key: &str) -> i64 {
    let mut ctx = aws_lc_rs::digest::Context::new(&aws_lc_rs::digest::SHA256);
    ctx.update(&u64::try_from(kind.len()).unwrap_or(u64::MAX).to_be_bytes());
    ctx.update(kind.as_bytes());
    ctx.update(key.as_bytes());
    let d = ctx.finish();
    let mut first = [0u8; 8];
    first.copy_from_slice(&d.as_ref()[..8]);
    i64::from_be_bytes(first)
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
        let manager_config = ManagerConfig {
            recycling_method: RecyclingMethod::Fast,
        };
        let manager = match tls {
            Some(tls) => Manager::from_config(cfg, tls, manager_config),
            None => Manager::from_config(cfg, NoTls, manager_config),
        };
        let pool = Pool::builder(manager)
            .max_size(opts.pool_size.max(1))
            .runtime(Runtime::Tokio1)
            .wait_timeout(Some(opts.connect_timeout))
            .create_timeout(Some(opts.connect_timeout))
            .recycle_timeout(Some(opts.connect_timeout))
            .build()
            .map_err(|e| StoreError::Invalid(format!("postgres connection pool: {e}")))?;
        let store = PgStore {
            pool,
            target,
            op_timeout,
        };
        store.health().await?;
        tracing::debug!(target = %store.target, "postgres store open");
        Ok(store)
    }

    /// Where the store connects (`host:port/dbname`), for logs.
    pub fn target(&self) -> &str {
        &self.target
    }

    /// Runs `work` with a pooled connection, within the operation timeout.
    async fn with<T, F, Fut>(&self, what: &str, work: F) -> Result<T>
    where
        F: FnOnce(deadpool_postgres::Object) -> Fut,
        Fut: Future<Output = Result<T>>,
    {
        let run = async {
            let client = self.pool.get().await.map_err(from_pool)?;
            work(client).await
        };
        match tokio::time::timeout(self.op_timeout, run).await {
            Ok(r) => r,
            Err(_) => Err(StoreError::Unavailable(format!(
                "postgres at {}: {what} took longer than {} ms",
                self.target,
                self.op_timeout.as_millis()
            ))),
        }
    }

    /// A batch of one write as one statement (one round trip, no explicit transaction). An update or
    /// delete conditional on the version is atomic by itself and waits for the row lock of any batch
    /// touching the record; an insert takes the record's advisory lock in the same statement, so that
    /// it waits for a batch holding an absence guard on it. A pure guard is a read.
    async fn dir_write_one(&self, w: &DirWrite) -> Result<bool> {
        let what = "writing a directory record";
        let n = match (&w.value, w.expect) {
            (Some(value), Expect::Absent) => {
                self.execute(
                    what,
                    "WITH l AS MATERIALIZED (SELECT pg_advisory_xact_lock($4))
                     INSERT INTO directory (kind, key, version, value)
                     SELECT $1, $2, 1, $3 FROM l ON CONFLICT (kind, key) DO NOTHING",
                    &[&w.kind, &w.key, value, &dir_lock_key(&w.kind, &w.key)],
                )
                .await?
            }
            (Some(value), Expect::Version(v)) => {
                self.execute(
                    what,
                    "UPDATE directory SET version = version + 1, value = $4
                     WHERE kind = $1 AND key = $2 AND version = $3",
                    &[&w.kind, &w.key, &to_i64(v), value],
                )
                .await?
            }
            (None, Expect::Version(v)) => {
                self.execute(
                    what,
                    "DELETE FROM directory WHERE kind = $1 AND key = $2 AND version = $3",
                    &[&w.kind, &w.key, &to_i64(v)],
                )
                .await?
            }
            (None, Expect::Absent) => {
                let found = self
                    .query(
                        what,
                        "SELECT 1 FROM directory WHERE kind = $1 AND key = $2",
                        &[&w.kind, &w.key],
                    )
                    .await?;
                return Ok(found.is_empty());
            }
        };
        Ok(n == 1)
    }

    /// Runs one statement and returns how many rows it touched.
    async fn execute(&self, what: &str, sql: &str, params: &[&(dyn ToSql + Sync)]) -> Result<u64> {
        self.with(what, |c| async move {
            let st = c.prepare_cached(sql).await.map_err(from_pg)?;
            c.execute(&st, params).await.map_err(from_pg)
        })
        .await
    }

    /// Runs one query and returns its rows.
    async fn query(
        &self,
        what: &str,
        sql: &str,
        params: &[&(dyn ToSql + Sync)],
    ) -> Result<Vec<tokio_postgres::Row>> {
        self.with(what, |c| async move {
            let st = c.prepare_cached(sql).await.map_err(from_pg)?;
            c.query(&st, params).await.map_err(from_pg)
        })
        .await
    }
}

/// Applies the migrations the database lacks, on a connection of its own that holds the migration
/// lock until it closes.
async fn migrate(
    cfg: &tokio_postgres::Config,
    tls: Option<tokio_postgres_rustls::MakeRustlsConnect>,
    target: &str,
    bound: Duration,
) -> Result<()> {
    let work = async {
        let unavailable = |e: tokio_postgres::Error| {
            StoreError::Unavailable(format!(
                "cannot connect to postgres at {target}: {}",
                with_causes(&e)
            ))
        };
        let (mut client, conn) = match tls {
            Some(tls) => {
                let (client, conn) = cfg.connect(tls).await.map_err(unavailable)?;
                (client, tokio::spawn(conn))
            }
            None => {
                let (client, conn) = cfg.connect(NoTls).await.map_err(unavailable)?;
                (client, tokio::spawn(conn))
            }
        };
        let out = async {
            client
                .execute(
                    "SELECT pg_advisory_lock($1, $2)",
                    &[&MIGRATION_LOCK.0, &MIGRATION_LOCK.1],
                )
                .await
                .map_err(from_pg)?;
            client
                .batch_execute(
                    "CREATE TABLE IF NOT EXISTS rolegate_schema (
                         version integer PRIMARY KEY,
                         applied_at timestamptz NOT NULL DEFAULT now()
                     )",
                )
                .await
                .map_err(from_pg)?;
            let row = client
                .query_one("SELECT COALESCE(max(version), 0) FROM rolegate_schema", &[])
                .await
                .map_err(from_pg)?;
            let current: i32 = row.get(0);
            let known = i32::try_from(MIGRATIONS.len()).unwrap_or(i32::MAX);
            if current > known {
                return Err(StoreError::Corrupt(format!(
                    "postgres at {target} has schema version {current}; this build knows up to \
                     {known}"
                )));
            }
            for (version, sql) in (1..)
                .zip(MIGRATIONS)
                .skip(usize::try_from(current).unwrap_or(0))
            {
                let tx = client.transaction().await.map_err(from_pg)?;
                tx.batch_execute(sql).await.map_err(from_pg)?;
                tx.execute(
                    "INSERT INTO rolegate_schema (version) VALUES ($1)",
                    &[&version],
                )
                .await
                .map_err(from_pg)?;
                tx.commit().await.map_err(from_pg)?;
                tracing::info!(target = %target, version, "postgres schema migrated");
            }
            Ok(())
        }
        .await;
        // Closing the connection releases the lock, also when a step failed.
        drop(client);
        let _ = conn.await;
        out
    };
    // Migrations may take longer than one statement, but never unboundedly.
    match tokio::time::timeout(bound * 4, work).await {
        Ok(r) => r,
        Err(_) => Err(StoreError::Unavailable(format!(
            "postgres at {target}: migrating took longer than {} ms",
            (bound * 4).as_millis()
        ))),
    }
}

fn row_key(r: &tokio_postgres::Row) -> Result<SealingKey> {
    let secret: Vec<u8> = r.try_get(1).map_err(from_pg)?;
    Ok(SealingKey {
        id: r.try_get(0).map_err(from_pg)?,
        secret: KeyBytes::from_slice(&secret).map_err(|_| {
            StoreError::Corrupt(format!("sealing key secret of {} bytes", secret.len()))
        })?,
        created_at: r.try_get(2).map_err(from_pg)?,
        retired_at: r.try_get(3).map_err(from_pg)?,
    })
}

fn row_revocation(r: &tokio_postgres::Row) -> Result<Revocation> {
    let scope: String = r.try_get(0).map_err(from_pg)?;
    Ok(Revocation {
        scope: serde_json::from_str(&scope)
            .map_err(|e| StoreError::Corrupt(format!("revocation scope {scope:?}: {e}")))?,
        issued_before: r.try_get(1).map_err(from_pg)?,
        created_at: r.try_get(2).map_err(from_pg)?,
        reason: r.try_get(3).map_err(from_pg)?,
        expires_at: r.try_get(4).map_err(from_pg)?,
    })
}

fn row_audit(r: &tokio_postgres::Row) -> Result<AuditRecord> {
    Ok(AuditRecord {
        time_ms: r.try_get(0).map_err(from_pg)?,
        id: r.try_get(1).map_err(from_pg)?,
        action: r.try_get(2).map_err(from_pg)?,
        principal: r.try_get(3).map_err(from_pg)?,
        decision: r.try_get(4).map_err(from_pg)?,
        json: r.try_get(5).map_err(from_pg)?,
    })
}

fn row_versioned(r: &tokio_postgres::Row, value: usize, version: usize) -> Result<Versioned> {
    Ok(Versioned {
        value: r.try_get(value).map_err(from_pg)?,
        version: to_u64(r.try_get(version).map_err(from_pg)?)?,
    })
}

#[async_trait]
impl KeyStore for PgStore {
    async fn sealing_keys(&self) -> Result<Vec<SealingKey>> {
        self.query(
            "reading sealing keys",
            "SELECT id, secret, created_at, retired_at FROM sealing_keys ORDER BY created_at, id",
            &[],
        )
        .await?
        .iter()
        .map(row_key)
        .collect()
    }

    async fn insert_sealing_key(&self, key: &SealingKey) -> Result<bool> {
        check_sealing_key(key)?;
        let n = self
            .execute(
                "inserting a sealing key",
                "INSERT INTO sealing_keys (id, secret, created_at, retired_at) VALUES ($1, $2, $3, $4)
                 ON CONFLICT (id) DO NOTHING",
                &[
                    &key.id,
                    &key.secret.expose(),
                    &key.created_at,
                    &key.retired_at,
                ],
            )
            .await?;
        Ok(n == 1)
    }

    async fn retire_sealing_key(&self, id: &str, retired_at: i64) -> Result<()> {
        let n = self
            .execute(
                "retiring a sealing key",
                "UPDATE sealing_keys SET retired_at = LEAST(retired_at, $2) WHERE id = $1",
                &[&id, &retired_at],
            )
            .await?;
        if n == 0 {
            return Err(StoreError::NotFound(format!("sealing key {id:?}")));
        }
        Ok(())
    }

    async fn delete_sealing_key(&self, id: &str) -> Result<()> {
        self.execute(
            "deleting a sealing key",
            "DELETE FROM sealing_keys WHERE id = $1",
            &[&id],
        )
        .await
        .map(drop)
    }
}

#[async_trait]
impl ReplayCache for PgStore {
    async fn first_use(
        &self,
        namespace: &str,
        key: &str,
        expires_at: i64,
        now: i64,
    ) -> Result<bool> {
        check_replay(namespace, key, expires_at, now)?;
        let n = self
            .execute(
                "recording a single use",
                "INSERT INTO replays (namespace, key, expires_at) VALUES ($1, $2, $3)
                 ON CONFLICT (namespace, key) DO UPDATE SET expires_at = excluded.expires_at
                 WHERE replays.expires_at <= $4",
                &[&namespace, &key, &expires_at, &now],
            )
            .await?;
        Ok(n == 1)
    }

    async fn purge_expired_replays(&self, now: i64) -> Result<u64> {
        self.execute(
            "purging replay records",
            "DELETE FROM replays WHERE expires_at <= $1",
            &[&now],
        )
        .await
    }
}

#[async_trait]
impl RevocationStore for PgStore {
    async fn revoke(&self, r: &Revocation) -> Result<()> {
        let scope = scope_key(&r.scope)?;
        // In DO UPDATE, `revocations.*` is the stored row and `excluded.*` the new one; the
        // later issued_before wins issued_before, created_at and reason (a tie keeps the stored).
        self.execute(
            "recording a revocation",
            "INSERT INTO revocations (scope, issued_before, created_at, reason, expires_at)
             VALUES ($1, $2, $3, $4, $5)
             ON CONFLICT (scope) DO UPDATE SET
               issued_before = GREATEST(revocations.issued_before, excluded.issued_before),
               created_at = CASE WHEN excluded.issued_before > revocations.issued_before
                                 THEN excluded.created_at ELSE revocations.created_at END,
               reason = CASE WHEN excluded.issued_before > revocations.issued_before
                             THEN excluded.reason ELSE revocations.reason END,
               expires_at = GREATEST(revocations.expires_at, excluded.expires_at)",
            &[
                &scope,
                &r.issued_before,
                &r.created_at,
                &r.reason,
                &r.expires_at,
            ],
        )
        .await
        .map(drop)
    }

    async fn revocations(&self) -> Result<Vec<Revocation>> {
        self.query(
            "reading revocations",
            "SELECT scope, issued_before, created_at, reason, expires_at FROM revocations",
            &[],
        )
        .await?
        .iter()
        .map(row_revocation)
        .collect()
    }

    async fn purge_expired_revocations(&self, now: i64) -> Result<u64> {
        self.execute(
            "purging revocations",
            "DELETE FROM revocations WHERE expires_at <= $1",
            &[&now],
        )
        .await
    }
}

/// Why a directory batch stopped before commit.
enum Refused {
    /// An expectation did not hold: roll back, answer `false`.
    Expectation,
    /// The database failed.
    Error(StoreError),
}

impl From<tokio_postgres::Error> for Refused {
    fn from(e: tokio_postgres::Error) -> Self {
        Refused::Error(from_pg(e))
    }
}

async fn apply_dir_batch(
    tx: &deadpool_postgres::Transaction<'_>,
    writes: &[DirWrite],
    lock_keys: &[i64],
) -> std::result::Result<(), Refused> {
    let lock = tx
        .prepare_cached("SELECT pg_advisory_xact_lock(k) FROM unnest($1::bigint[]) AS k")
        .await?;
    tx.execute(&lock, &[&lock_keys]).await?;
    for w in writes {
        let touched = match (&w.value, w.expect) {
            (Some(value), Expect::Absent) => {
                let st = tx
                    .prepare_cached(
                        "INSERT INTO directory (kind, key, version, value) VALUES ($1, $2, 1, $3)
                         ON CONFLICT (kind, key) DO NOTHING",
                    )
                    .await?;
                tx.execute(&st, &[&w.kind, &w.key, value]).await? == 1
            }
            (Some(value), Expect::Version(v)) => {
                let st = tx
                    .prepare_cached(
                        "UPDATE directory SET version = version + 1, value = $4
                         WHERE kind = $1 AND key = $2 AND version = $3",
                    )
                    .await?;
                tx.execute(&st, &[&w.kind, &w.key, &to_i64(v), value])
                    .await?
                    == 1
            }
            (None, Expect::Version(v)) => {
                let st = tx
                    .prepare_cached(
                        "DELETE FROM directory WHERE kind = $1 AND key = $2 AND version = $3",
                    )
                    .await?;
                tx.execute(&st, &[&w.kind, &w.key, &to_i64(v)]).await? == 1
            }
            (None, Expect::Absent) => {
                let st = tx
                    .prepare_cached("SELECT 1 FROM directory WHERE kind = $1 AND key = $2")
                    .await?;
                tx.query(&st, &[&w.kind, &w.key]).await?.is_empty()
            }
        };
        if !touched {
            return Err(Refused::Expectation);
        }
    }
    Ok(())
}

#[async_trait]
impl DirectoryStore for PgStore {
    async fn dir_get(&self, kind: &str, key: &str) -> Result<Option<Versioned>> {
        check_dir_key(kind, key)?;
        self.query(
            "reading a directory record",
            "SELECT value, version FROM directory WHERE kind = $1 AND key = $2",
            &[&kind, &key],
        )
        .await?
        .first()
        .map(|r| row_versioned(r, 0, 1))
        .transpose()
    }

    async fn dir_list(&self, kind: &str) -> Result<Vec<(String, Versioned)>> {
        check_dir_key(kind, "-")?;
        self.query(
            "listing directory records",
            "SELECT key, value, version FROM directory WHERE kind = $1 ORDER BY key",
            &[&kind],
        )
        .await?
        .iter()
        .map(|r| Ok((r.try_get(0).map_err(from_pg)?, row_versioned(r, 1, 2)?)))
        .collect()
    }

    async fn dir_write(&self, writes: &[DirWrite]) -> Result<bool> {
        check_dir_batch(writes)?;
        if writes
            .iter()
            .any(|w| matches!(w.expect, Expect::Version(v) if v == u64::MAX))
        {
            return Err(StoreError::Invalid("directory version overflow".into()));
        }
        if let [w] = writes {
            return self.dir_write_one(w).await;
        }
        let mut lock_keys: Vec<i64> = writes
            .iter()
            .map(|w| dir_lock_key(&w.kind, &w.key))
            .collect();
        lock_keys.sort_unstable();
        lock_keys.dedup();
        self.with("writing directory records", |mut c| async move {
            let tx = c.transaction().await.map_err(from_pg)?;
            match apply_dir_batch(&tx, writes, &lock_keys).await {
                Ok(()) => {
                    tx.commit().await.map_err(from_pg)?;
                    Ok(true)
                }
                Err(Refused::Expectation) => {
                    tx.rollback().await.map_err(from_pg)?;
                    Ok(false)
                }
                // Dropping the transaction rolls it back.
                Err(Refused::Error(e)) => Err(e),
            }
        })
        .await
    }
}

#[async_trait]
impl AuditLog for PgStore {
    async fn append_audit(&self, records: &[AuditRecord]) -> Result<()> {
        check_audit_batch(records)?;
        if records.is_empty() {
            return Ok(());
        }
        // One transaction of statements of at most AUDIT_ROWS_PER_STATEMENT rows: a connection's
        // buffers grow to the largest statement it sent and keep that size.
        self.with("appending audit records", |mut c| async move {
            let st = c.prepare_cached(AUDIT_INSERT).await.map_err(from_pg)?;
            let tx = c.transaction().await.map_err(from_pg)?;
            for chunk in records.chunks(AUDIT_ROWS_PER_STATEMENT) {
                let times: Vec<i64> = chunk.iter().map(|r| r.time_ms).collect();
                let ids: Vec<&str> = chunk.iter().map(|r| r.id.as_str()).collect();
                let actions: Vec<&str> = chunk.iter().map(|r| r.action.as_str()).collect();
                let principals: Vec<Option<&str>> =
                    chunk.iter().map(|r| r.principal.as_deref()).collect();
                let decisions: Vec<&str> = chunk.iter().map(|r| r.decision.as_str()).collect();
                let jsons: Vec<&str> = chunk.iter().map(|r| r.json.as_str()).collect();
                tx.execute(
                    &st,
                    &[&times, &ids, &actions, &principals, &decisions, &jsons],
                )
                .await
                .map_err(from_pg)?;
            }
            tx.commit().await.map_err(from_pg)
        })
        .await
    }

    async fn query_audit(&self, q: &AuditQuery) -> Result<Vec<AuditRecord>> {
        if q.limit == 0 {
            return Ok(Vec::new());
        }
        let limit = i64::try_from(q.limit).unwrap_or(i64::MAX);
        // NULL parameters switch a filter off, so that one prepared statement serves every query.
        let sql = if q.newest_first {
            "SELECT time_ms, id, action, principal, decision, json FROM audit
             WHERE ($1::bigint IS NULL OR time_ms >= $1) AND ($2::bigint IS NULL OR time_ms < $2)
               AND ($3::text IS NULL OR action = $3) AND ($4::text IS NULL OR principal = $4)
               AND ($5::text IS NULL OR decision = $5)
             ORDER BY time_ms DESC, id DESC LIMIT $6"
        } else {
            "SELECT time_ms, id, action, principal, decision, json FROM audit
             WHERE ($1::bigint IS NULL OR time_ms >= $1) AND ($2::bigint IS NULL OR time_ms < $2)
               AND ($3::text IS NULL OR action = $3) AND ($4::text IS NULL OR principal = $4)
               AND ($5::text IS NULL OR decision = $5)
             ORDER BY time_ms, id LIMIT $6"
        };
        self.query(
            "querying the audit log",
            sql,
            &[
                &q.since_ms,
                &q.until_ms,
                &q.action,
                &q.principal,
                &q.decision,
                &limit,
            ],
        )
        .await?
        .iter()
        .map(row_audit)
        .collect()
    }
}

#[async_trait]
impl Store for PgStore {
    fn kind(&self) -> &'static str {
        "postgres"
    }

    async fn health(&self) -> Result<()> {
        let rows = self
            .query(
                "checking the schema",
                "SELECT COALESCE(max(version), 0) FROM rolegate_schema",
                &[],
            )
            .await?;
        let version: i32 = rows
            .first()
            .map(|r| r.try_get(0))
            .transpose()
            .map_err(from_pg)?
            .unwrap_or(0);
        if usize::try_from(version).ok() != Some(MIGRATIONS.len()) {
            return Err(StoreError::Corrupt(format!(
                "postgres at {} has schema version {version}, this build needs {}",
                self.target,
                MIGRATIONS.len()
            )));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_description_never_shows_the_password() {
        let cfg: tokio_postgres::Config = "postgresql://rolegate:hunter2@db.internal:6543/ident"
            .parse()
            .expect("url");
        let shown = describe(&cfg);
        assert_eq!(shown, "db.internal:6543/ident");
        assert!(!shown.contains("hunter2"));
    }

    #[test]
    fn lock_keys_separate_kind_and_key() {
        assert_ne!(dir_lock_key("a", "bc"), dir_lock_key("ab", "c"));
        assert_eq!(dir_lock_key("user", "alice"), dir_lock_key("user", "alice"));
        assert_ne!(dir_lock_key("user", "alice"), dir_lock_key("user", "alicf"));
    }

    #[test]
    fn scope_keys_name_kind_and_value() {
        let keys: Vec<String> = [
            RevocationScope::All,
            RevocationScope::Role("x".into()),
            RevocationScope::Session("x".into()),
            RevocationScope::Subject {
                provider: "a".into(),
                subject: "bc".into(),
            },
            RevocationScope::Subject {
                provider: "ab".into(),
                subject: "c".into(),
            },
        ]
        .iter()
        .map(|s| scope_key(s).expect("encodes"))
        .collect();
        for (i, k) in keys.iter().enumerate() {
            assert!(!keys[..i].contains(k), "{k} repeats");
        }
    }

    #[tokio::test]
    async fn an_unreachable_database_is_unavailable_within_the_connect_timeout() {
        // A port nobody listens on: connection refused at once.
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        let port = listener.local_addr().expect("addr").port();
        drop(listener);
        let opts = PgOptions {
            connect_timeout: Duration::from_millis(500),
            ..PgOptions::default()
        };
        let started = std::time::Instant::now();
        let url = format!("postgresql://postgres@127.0.0.1:{port}/postgres");
        match PgStore::connect(&url, &opts).await {
            Err(StoreError::Unavailable(m)) => assert!(m.contains("cannot connect"), "{m}"),
            other => panic!("expected Unavailable, got {other:?}"),
        }
        assert!(started.elapsed() < Duration::from_secs(5));
    }

    #[tokio::test]
    async fn a_database_that_never_answers_is_unavailable_not_a_hang() {
        // Accepts TCP connections and never says a word.
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let port = listener.local_addr().expect("addr").port();
        let _held = tokio::spawn(async move {
            let mut held = Vec::new();
            while let Ok((s, _)) = listener.accept().await {
                held.push(s);
            }
        });
        let opts = PgOptions {
            connect_timeout: Duration::from_millis(300),
            statement_timeout: Duration::from_millis(300),
            ..PgOptions::default()
        };
        let started = std::time::Instant::now();
        let url = format!("postgresql://postgres@127.0.0.1:{port}/postgres");
        assert!(matches!(
            PgStore::connect(&url, &opts).await,
            Err(StoreError::Unavailable(_))
        ));
        assert!(started.elapsed() < Duration::from_secs(10));
    }

    #[tokio::test]
    async fn a_url_that_does_not_parse_is_invalid_and_not_echoed() {
        match PgStore::connect(
            "postgresql://u:secret@host:notaport/db",
            &PgOptions::default(),
        )
        .await
        {
            Err(StoreError::Invalid(m)) => assert!(!m.contains("secret"), "{m}"),
            other => panic!("expected Invalid, got {other:?}"),
        }
    }
}
