//! Directory records: versioned reads and conditional writes, a batch of one as one statement and a
//! longer batch as one transaction behind advisory locks.

use super::{from_pg, to_i64, to_u64, PgStore};
use crate::store::{
    check_dir_batch, check_dir_key, DirWrite, DirectoryStore, Expect, Result, StoreError, Versioned,
};
use async_trait::async_trait;

/// The advisory lock key of a directory record: the first 8 bytes of SHA-256 over the
/// length-prefixed kind and the key. Equal on every replica.
pub(super) fn dir_lock_key(kind: &str, key: &str) -> i64 {
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
    /// A batch of one write as one statement (one round trip, no explicit transaction). An update or
    /// delete conditional on the version is atomic by itself and waits for the row lock of any batch
    /// touching the record; an insert takes the record's advisory lock in the same statement, so that
    /// it waits for a batch holding an absence guard on it. A pure guard is a read.
    async fn dir_write_one(&self, w: &DirWrite) -> Result<bool> {
        let what = "writing a directory record";
        let n = match (&w.value, w.expect) {
            (Some(value), Expect::Absent) => {
                self.db
                    .execute(
                        what,
                        "WITH l AS MATERIALIZED (SELECT pg_advisory_xact_lock($4))
                     INSERT INTO directory (kind, key, version, value)
                     SELECT $1, $2, 1, $3 FROM l ON CONFLICT (kind, key) DO NOTHING",
                        &[&w.kind, &w.key, value, &dir_lock_key(&w.kind, &w.key)],
                    )
                    .await?
            }
            (Some(value), Expect::Version(v)) => {
                self.db
                    .execute(
                        what,
                        "UPDATE directory SET version = version + 1, value = $4
                     WHERE kind = $1 AND key = $2 AND version = $3",
                        &[&w.kind, &w.key, &to_i64(v), value],
                    )
                    .await?
            }
            (None, Expect::Version(v)) => {
                self.db
                    .execute(
                        what,
                        "DELETE FROM directory WHERE kind = $1 AND key = $2 AND version = $3",
                        &[&w.kind, &w.key, &to_i64(v)],
                    )
                    .await?
            }
            (None, Expect::Absent) => {
                let found = self
                    .db
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
}

fn row_versioned(r: &tokio_postgres::Row, value: usize, version: usize) -> Result<Versioned> {
    Ok(Versioned {
        value: r.try_get(value).map_err(from_pg)?,
        version: to_u64(r.try_get(version).map_err(from_pg)?)?,
    })
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
        self.db
            .query(
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
        self.db
            .query(
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
        self.db
            .with("writing directory records", |mut c| async move {
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
