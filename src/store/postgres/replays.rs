//! The replay cache: a single use is one `INSERT … ON CONFLICT … DO UPDATE … WHERE` that affects a
//! row for exactly one caller.
//!
//! Each use commits on its own (`synchronous_commit = on`: on the server's disk when the call
//! returns), unlike the sled store's group commit: PostgreSQL already writes the WAL of commits that
//! arrive together with one flush (a backend that waited for the WAL write lock finds its commit
//! record flushed by the one before it), so concurrent uses share flushes without batching here.

use super::PgStore;
use crate::store::{check_replay, ReplayCache, Result};
use async_trait::async_trait;

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
