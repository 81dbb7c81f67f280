//! The schema: the embedded [`MIGRATIONS`] and how they are applied, once, under an advisory lock.

use super::connect::with_causes;
use super::{from_pg, Result, StoreError};
use std::time::Duration;
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

/// The two-key advisory lock (`pg_advisory_lock(int, int)`) held while migrating. The two-key space
/// never meets the one-key space of the directory locks.
const MIGRATION_LOCK: (i32, i32) = (0x726f_6c65, 1);

/// Applies the migrations the database lacks, on a connection of its own that holds the migration
/// lock until it closes.
pub(super) async fn migrate(
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
