//! `MemoryStore`: every capability in process memory. Nothing survives the process; for tests.

use super::*;
use parking_lot::Mutex;
use std::collections::HashMap;

#[derive(Default)]
struct Inner {
    keys: Vec<SealingKey>,
    replays: HashMap<(String, String), i64>,
    revocations: Vec<Revocation>,
    audit: Vec<AuditRecord>,
}

/// The in-memory store.
#[derive(Default)]
pub struct MemoryStore {
    inner: Mutex<Inner>,
}

impl MemoryStore {
    /// An empty store.
    pub fn new() -> Self {
        Self::default()
    }
}

#[async_trait]
impl KeyStore for MemoryStore {
    async fn sealing_keys(&self) -> Result<Vec<SealingKey>> {
        Ok(self.inner.lock().keys.clone())
    }
    async fn insert_sealing_key(&self, key: &SealingKey) -> Result<bool> {
        let mut g = self.inner.lock();
        if g.keys.iter().any(|k| k.id == key.id) {
            return Ok(false);
        }
        g.keys.push(key.clone());
        Ok(true)
    }
    async fn retire_sealing_key(&self, id: &str, retired_at: i64) -> Result<()> {
        let mut g = self.inner.lock();
        if let Some(k) = g.keys.iter_mut().find(|k| k.id == id) {
            k.retired_at.get_or_insert(retired_at);
        }
        Ok(())
    }
    async fn delete_sealing_key(&self, id: &str) -> Result<()> {
        self.inner.lock().keys.retain(|k| k.id != id);
        Ok(())
    }
}

#[async_trait]
impl ReplayCache for MemoryStore {
    async fn first_use(
        &self,
        namespace: &str,
        key: &str,
        expires_at: i64,
        now: i64,
    ) -> Result<bool> {
        let mut g = self.inner.lock();
        let k = (namespace.to_string(), key.to_string());
        match g.replays.get(&k) {
            Some(exp) if *exp > now => Ok(false),
            _ => {
                g.replays.insert(k, expires_at);
                Ok(true)
            }
        }
    }
    async fn purge_expired_replays(&self, now: i64) -> Result<u64> {
        let mut g = self.inner.lock();
        let before = g.replays.len();
        g.replays.retain(|_, exp| *exp > now);
        Ok((before - g.replays.len()) as u64)
    }
}

#[async_trait]
impl RevocationStore for MemoryStore {
    async fn revoke(&self, r: &Revocation) -> Result<()> {
        let mut g = self.inner.lock();
        match g.revocations.iter_mut().find(|x| x.scope == r.scope) {
            Some(x) if x.issued_before >= r.issued_before => {}
            Some(x) => *x = r.clone(),
            None => g.revocations.push(r.clone()),
        }
        Ok(())
    }
    async fn revocations(&self) -> Result<Vec<Revocation>> {
        Ok(self.inner.lock().revocations.clone())
    }
    async fn purge_expired_revocations(&self, now: i64) -> Result<u64> {
        let mut g = self.inner.lock();
        let before = g.revocations.len();
        g.revocations.retain(|r| r.expires_at > now);
        Ok((before - g.revocations.len()) as u64)
    }
}

#[async_trait]
impl AuditLog for MemoryStore {
    async fn append_audit(&self, records: &[AuditRecord]) -> Result<()> {
        self.inner.lock().audit.extend_from_slice(records);
        Ok(())
    }
    async fn query_audit(&self, q: &AuditQuery) -> Result<Vec<AuditRecord>> {
        let g = self.inner.lock();
        let mut all: Vec<&AuditRecord> = g.audit.iter().filter(|r| q.matches(r)).collect();
        all.sort_by(|a, b| (a.time_ms, &a.id).cmp(&(b.time_ms, &b.id)));
        if q.newest_first {
            all.reverse();
        }
        Ok(all.into_iter().take(q.limit).cloned().collect())
    }
}

#[async_trait]
impl Store for MemoryStore {
    fn kind(&self) -> &'static str {
        "memory"
    }
    async fn health(&self) -> Result<()> {
        Ok(())
    }
}
