//! [`MeteredStore`]: any [`Store`] behind its trait object, with every operation's latency and
//! failures recorded. The one place store metrics are taken, whatever the backend.

use super::{Metrics, StoreOp};
use crate::store::{
    AuditLog, AuditQuery, AuditRecord, DirWrite, DirectoryStore, KeyStore, ReplayCache, Result,
    Revocation, RevocationStore, SealingKey, Store, Versioned,
};
use async_trait::async_trait;
use std::future::Future;
use std::sync::Arc;
use std::time::Instant;

/// A store whose operations are timed into [`Metrics`].
pub struct MeteredStore {
    inner: Arc<dyn Store>,
    metrics: Arc<Metrics>,
}

impl MeteredStore {
    /// Wraps `inner`.
    pub fn new(inner: Arc<dyn Store>, metrics: Arc<Metrics>) -> Self {
        Self { inner, metrics }
    }

    async fn timed<T>(&self, op: StoreOp, f: impl Future<Output = Result<T>>) -> Result<T> {
        let start = Instant::now();
        let r = f.await;
        self.metrics.store_op(op, r.is_ok(), start.elapsed());
        r
    }
}

#[async_trait]
impl KeyStore for MeteredStore {
    async fn sealing_keys(&self) -> Result<Vec<SealingKey>> {
        self.timed(StoreOp::SealingKeys, self.inner.sealing_keys())
            .await
    }
    async fn insert_sealing_key(&self, key: &SealingKey) -> Result<bool> {
        self.timed(
            StoreOp::InsertSealingKey,
            self.inner.insert_sealing_key(key),
        )
        .await
    }
    async fn retire_sealing_key(&self, id: &str, retired_at: i64) -> Result<()> {
        self.timed(
            StoreOp::RetireSealingKey,
            self.inner.retire_sealing_key(id, retired_at),
        )
        .await
    }
    async fn delete_sealing_key(&self, id: &str) -> Result<()> {
        self.timed(StoreOp::DeleteSealingKey, self.inner.delete_sealing_key(id))
            .await
    }
}

#[async_trait]
impl ReplayCache for MeteredStore {
    async fn first_use(
        &self,
        namespace: &str,
        key: &str,
        expires_at: i64,
        now: i64,
    ) -> Result<bool> {
        self.timed(
            StoreOp::FirstUse,
            self.inner.first_use(namespace, key, expires_at, now),
        )
        .await
    }
    async fn purge_expired_replays(&self, now: i64) -> Result<u64> {
        self.timed(
            StoreOp::PurgeExpiredReplays,
            self.inner.purge_expired_replays(now),
        )
        .await
    }
}

#[async_trait]
impl RevocationStore for MeteredStore {
    async fn revoke(&self, r: &Revocation) -> Result<()> {
        self.timed(StoreOp::Revoke, self.inner.revoke(r)).await
    }
    async fn revocations(&self) -> Result<Vec<Revocation>> {
        self.timed(StoreOp::Revocations, self.inner.revocations())
            .await
    }
    async fn purge_expired_revocations(&self, now: i64) -> Result<u64> {
        self.timed(
            StoreOp::PurgeExpiredRevocations,
            self.inner.purge_expired_revocations(now),
        )
        .await
    }
}

#[async_trait]
impl DirectoryStore for MeteredStore {
    async fn dir_get(&self, kind: &str, key: &str) -> Result<Option<Versioned>> {
        self.timed(StoreOp::DirGet, self.inner.dir_get(kind, key))
            .await
    }
    async fn dir_list(&self, kind: &str) -> Result<Vec<(String, Versioned)>> {
        self.timed(StoreOp::DirList, self.inner.dir_list(kind))
            .await
    }
    async fn dir_write(&self, writes: &[DirWrite]) -> Result<bool> {
        self.timed(StoreOp::DirWrite, self.inner.dir_write(writes))
            .await
    }
}

#[async_trait]
impl AuditLog for MeteredStore {
    async fn append_audit(&self, records: &[AuditRecord]) -> Result<()> {
        self.timed(StoreOp::AppendAudit, self.inner.append_audit(records))
            .await
    }
    async fn query_audit(&self, q: &AuditQuery) -> Result<Vec<AuditRecord>> {
        self.timed(StoreOp::QueryAudit, self.inner.query_audit(q))
            .await
    }
}

#[async_trait]
impl Store for MeteredStore {
    fn kind(&self) -> &'static str {
        self.inner.kind()
    }
    async fn health(&self) -> Result<()> {
        self.timed(StoreOp::Health, self.inner.health()).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::MemoryStore;

    #[tokio::test]
    async fn a_metered_memory_store_passes_the_conformance_suite_and_is_timed() {
        let metrics = Arc::new(Metrics::new().unwrap());
        let store: Arc<dyn Store> = Arc::new(MeteredStore::new(
            Arc::new(MemoryStore::new()),
            metrics.clone(),
        ));
        crate::store::conformance::run(store.as_ref()).await;
        let text = metrics.render(Default::default()).unwrap();
        for op in StoreOp::ALL {
            if op == StoreOp::Health {
                continue;
            }
            let prefix = format!(
                "rolegate_store_operation_duration_seconds_count{{op=\"{}\"}} ",
                op.name()
            );
            let n: u64 = text
                .lines()
                .find_map(|l| l.strip_prefix(prefix.as_str()))
                .unwrap_or_else(|| panic!("no series for {}", op.name()))
                .parse()
                .unwrap();
            assert!(n > 0, "{} never timed", op.name());
        }
        // The suite checks refusals of invalid input: they count as failures.
        assert!(!text.contains("rolegate_store_errors_total{op=\"first_use\"} 0\n"));
    }
}
