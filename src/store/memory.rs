//! In-memory backend for tests: the semantics of every store, none of the persistence. Nothing survives
//! the value, and nothing is shared between processes.

use super::{
    check_audit_batch, check_dir_batch, check_dir_key, check_replay, check_sealing_key,
    merge_revocation, retire_time, AuditLog, AuditQuery, AuditRecord, DirWrite, DirectoryStore,
    Expect, KeyStore, ReplayCache, Result, Revocation, RevocationScope, RevocationStore,
    SealingKey, Store, StoreError, Versioned,
};
use async_trait::async_trait;
use parking_lot::Mutex;
use std::collections::{BTreeMap, HashMap};

/// A store held in process memory.
#[derive(Debug, Default)]
pub struct MemoryStore {
    keys: Mutex<HashMap<String, SealingKey>>,
    replays: Mutex<HashMap<(String, String), i64>>,
    revocations: Mutex<HashMap<RevocationScope, Revocation>>,
    audit: Mutex<BTreeMap<(i64, String), AuditRecord>>,
    directory: Mutex<BTreeMap<(String, String), Versioned>>,
    audit_failing: std::sync::atomic::AtomicBool,
    audit_delay_ms: std::sync::atomic::AtomicU64,
    /// Delays of the next audit writes, one each, before `audit_delay_ms` applies again.
    audit_delays: parking_lot::Mutex<std::collections::VecDeque<std::time::Duration>>,
}

impl MemoryStore {
    /// An empty store.
    pub fn new() -> Self {
        Self::default()
    }

    /// Fault injection for tests: while `on`, audit writes fail as an unreachable backend's do.
    pub fn set_audit_writes_failing(&self, on: bool) {
        self.audit_failing
            .store(on, std::sync::atomic::Ordering::SeqCst);
    }
}

impl MemoryStore {
    /// Fault injection for tests: the next audit writes take these times first, one each (then
    /// the delay of [`MemoryStore::set_audit_write_delay`] again).
    pub fn set_next_audit_write_delays(&self, delays: &[std::time::Duration]) {
        self.audit_delays.lock().extend(delays.iter().copied());
    }

    /// Fault injection for tests: every audit write takes this long first, as a busy backend's do.
    pub fn set_audit_write_delay(&self, delay: std::time::Duration) {
        let ms = u64::try_from(delay.as_millis()).unwrap_or(u64::MAX);
        self.audit_delay_ms
            .store(ms, std::sync::atomic::Ordering::SeqCst);
    }
}

fn count(n: usize) -> u64 {
    u64::try_from(n).unwrap_or(u64::MAX)
}

#[async_trait]
impl KeyStore for MemoryStore {
    async fn sealing_keys(&self) -> Result<Vec<SealingKey>> {
        let mut keys: Vec<SealingKey> = self.keys.lock().values().cloned().collect();
        keys.sort_by(|a, b| (a.created_at, &a.id).cmp(&(b.created_at, &b.id)));
        Ok(keys)
    }

    async fn insert_sealing_key(&self, key: &SealingKey) -> Result<bool> {
        check_sealing_key(key)?;
        let mut keys = self.keys.lock();
        if keys.contains_key(&key.id) {
            return Ok(false);
        }
        keys.insert(key.id.clone(), key.clone());
        Ok(true)
    }

    async fn retire_sealing_key(&self, id: &str, retired_at: i64) -> Result<()> {
        let mut keys = self.keys.lock();
        let key = keys
            .get_mut(id)
            .ok_or_else(|| StoreError::NotFound(format!("sealing key {id:?}")))?;
        key.retired_at = Some(retire_time(key.retired_at, retired_at));
        Ok(())
    }

    async fn delete_sealing_key(&self, id: &str) -> Result<()> {
        self.keys.lock().remove(id);
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
        check_replay(namespace, key, expires_at, now)?;
        let mut replays = self.replays.lock();
        let slot = replays
            .entry((namespace.to_owned(), key.to_owned()))
            .or_insert(i64::MIN);
        if *slot > now {
            return Ok(false);
        }
        *slot = expires_at;
        Ok(true)
    }

    async fn purge_expired_replays(&self, now: i64) -> Result<u64> {
        let mut replays = self.replays.lock();
        let before = replays.len();
        replays.retain(|_, expires_at| *expires_at > now);
        Ok(count(before - replays.len()))
    }
}

#[async_trait]
impl RevocationStore for MemoryStore {
    async fn revoke(&self, r: &Revocation) -> Result<()> {
        let mut revocations = self.revocations.lock();
        let merged = match revocations.get(&r.scope) {
            Some(stored) => merge_revocation(stored, r),
            None => r.clone(),
        };
        revocations.insert(r.scope.clone(), merged);
        Ok(())
    }

    async fn revocations(&self) -> Result<Vec<Revocation>> {
        Ok(self.revocations.lock().values().cloned().collect())
    }

    async fn purge_expired_revocations(&self, now: i64) -> Result<u64> {
        let mut revocations = self.revocations.lock();
        let before = revocations.len();
        revocations.retain(|_, r| r.expires_at > now);
        Ok(count(before - revocations.len()))
    }
}

#[async_trait]
impl DirectoryStore for MemoryStore {
    async fn dir_get(&self, kind: &str, key: &str) -> Result<Option<Versioned>> {
        check_dir_key(kind, key)?;
        Ok(self
            .directory
            .lock()
            .get(&(kind.to_owned(), key.to_owned()))
            .cloned())
    }

    async fn dir_list(&self, kind: &str) -> Result<Vec<(String, Versioned)>> {
        check_dir_key(kind, "-")?;
        Ok(self
            .directory
            .lock()
            .range((kind.to_owned(), String::new())..)
            .take_while(|((k, _), _)| k == kind)
            .map(|((_, key), v)| (key.clone(), v.clone()))
            .collect())
    }

    async fn dir_write(&self, writes: &[DirWrite]) -> Result<bool> {
        check_dir_batch(writes)?;
        let mut dir = self.directory.lock();
        let holds = writes.iter().all(|w| {
            let current = dir.get(&(w.kind.clone(), w.key.clone()));
            match w.expect {
                Expect::Absent => current.is_none(),
                Expect::Version(v) => current.is_some_and(|c| c.version == v),
            }
        });
        if !holds {
            return Ok(false);
        }
        for w in writes {
            let k = (w.kind.clone(), w.key.clone());
            match (&w.value, w.expect) {
                (Some(value), expect) => {
                    let version = match expect {
                        Expect::Absent => 1,
                        Expect::Version(v) => v + 1,
                    };
                    dir.insert(
                        k,
                        Versioned {
                            value: value.clone(),
                            version,
                        },
                    );
                }
                (None, Expect::Version(_)) => {
                    dir.remove(&k);
                }
                (None, Expect::Absent) => {}
            }
        }
        Ok(true)
    }
}

#[async_trait]
impl AuditLog for MemoryStore {
    async fn append_audit(&self, records: &[AuditRecord]) -> Result<()> {
        let next = self.audit_delays.lock().pop_front();
        let delay = next.unwrap_or_else(|| {
            std::time::Duration::from_millis(
                self.audit_delay_ms
                    .load(std::sync::atomic::Ordering::SeqCst),
            )
        });
        if !delay.is_zero() {
            tokio::time::sleep(delay).await;
        }
        if self.audit_failing.load(std::sync::atomic::Ordering::SeqCst) {
            return Err(StoreError::Unavailable(
                "audit writes failing (injected)".into(),
            ));
        }
        check_audit_batch(records)?;
        let mut audit = self.audit.lock();
        for r in records {
            audit
                .entry((r.time_ms, r.id.clone()))
                .or_insert_with(|| r.clone());
        }
        Ok(())
    }

    async fn query_audit(&self, q: &AuditQuery) -> Result<Vec<AuditRecord>> {
        let audit = self.audit.lock();
        let matching = audit.values().filter(|r| q.matches(r));
        let out = if q.newest_first {
            matching.rev().take(q.limit).cloned().collect()
        } else {
            matching.take(q.limit).cloned().collect()
        };
        Ok(out)
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
