//! Revocations, one row per scope, the later `issued_before` winning.

use super::{from_pg, PgStore};
use crate::store::{Result, Revocation, RevocationScope, RevocationStore, StoreError};
use async_trait::async_trait;

/// The key a revocation scope is stored under: its JSON, which names the kind and every value.
pub(super) fn scope_key(scope: &RevocationScope) -> Result<String> {
    serde_json::to_string(scope)
        .map_err(|e| StoreError::Invalid(format!("cannot encode revocation scope: {e}")))
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

#[async_trait]
impl RevocationStore for PgStore {
    async fn revoke(&self, r: &Revocation) -> Result<()> {
        let scope = scope_key(&r.scope)?;
        // In DO UPDATE, `revocations.*` is the stored row and `excluded.*` the new one; the
        // later issued_before wins issued_before, created_at and reason (a tie keeps the stored).
        self.db
            .execute(
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
        self.db
            .query(
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
        self.db
            .execute(
                "purging revocations",
                "DELETE FROM revocations WHERE expires_at <= $1",
                &[&now],
            )
            .await
    }
}
