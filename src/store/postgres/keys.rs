//! Sealing keys.

use super::{from_pg, PgStore};
use crate::store::{check_sealing_key, KeyBytes, KeyStore, Result, SealingKey, StoreError};
use async_trait::async_trait;

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

#[async_trait]
impl KeyStore for PgStore {
    async fn sealing_keys(&self) -> Result<Vec<SealingKey>> {
        self.db.query(
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
        let n = self.db
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
            .db
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
        self.db
            .execute(
                "deleting a sealing key",
                "DELETE FROM sealing_keys WHERE id = $1",
                &[&id],
            )
            .await
            .map(drop)
    }
}
