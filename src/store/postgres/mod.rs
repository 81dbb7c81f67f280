//! [`PgStore`]: the shared backend for several replicas, one PostgreSQL database reached through a
//! connection pool. Knows the tables and the SQL that gives each store operation its semantics;
//! knows nothing of what the records mean.
//!
//! **One statement per operation.** Each operation is one statement (or, for an audit batch of
//! more than 1,000 records and a directory batch, one transaction), so that atomicity and uniqueness come from the database and
//! hold across replicas: `first_use` is an `INSERT … ON CONFLICT … DO UPDATE … WHERE expires_at <=
//! now`, so of any number of concurrent callers on any number of replicas exactly one sees a row
//! affected; concurrent uses in one process share one such statement (see `replays`). Every transaction commits with PostgreSQL's default `synchronous_commit = on`: a call
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

mod audit;
mod connect;
mod directory;
mod keys;
mod replays;
mod revocations;
mod schema;

pub use audit::AUDIT_ROWS_PER_STATEMENT;
pub use connect::{PgOptions, AUDIT_CONNECTIONS};
pub use schema::MIGRATIONS;

use super::group_commit::GroupCommit;
use super::{Result, Store, StoreError};
use async_trait::async_trait;
use deadpool_postgres::Pool;
use std::fmt;
use std::future::Future;
use std::time::Duration;
use tokio_postgres::error::SqlState;
use tokio_postgres::types::ToSql;
#[cfg(test)]
use {connect::describe, directory::dir_lock_key, revocations::scope_key};

/// The store in a PostgreSQL database.
pub struct PgStore {
    db: Db,
    /// The audit log's appends, on connections of their own: a large batch neither waits behind
    /// the request path's statements nor makes them wait, and only these connections keep the
    /// buffers such a batch grows.
    audit_db: Db,
    /// Gathers concurrent single uses into shared transactions (see `replays`).
    replays: GroupCommit<replays::Use, Result<bool>>,
}

/// The database the store runs its statements on: a handle cheap to clone into a task.
#[derive(Clone)]
struct Db {
    pool: Pool,
    /// Where it connects, without credentials, for logs.
    target: String,
    /// The client-side bound on one operation.
    op_timeout: Duration,
}

impl fmt::Debug for PgStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PgStore")
            .field("target", &self.db.target)
            .finish_non_exhaustive()
    }
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

impl Db {
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

#[async_trait]
impl Store for PgStore {
    fn kind(&self) -> &'static str {
        "postgres"
    }

    async fn health(&self) -> Result<()> {
        let rows = self
            .db
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
                self.db.target,
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
        let keys: Vec<String> = crate::store::distinct_scopes()
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
