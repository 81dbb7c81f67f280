//! `SledStore`: the embedded default, one sled database in a data directory (mode 0700), a tree per
//! capability. sled allows one process per database: a second process gets [`StoreError::Locked`].
//! Writes that must survive a crash (keys, replay entries, revocations, audit batches) are flushed before
//! the call returns; flushing runs on the blocking pool, off the async runtime.

use super::*;
use std::path::{Path, PathBuf};

const FORMAT: u8 = 1;
/// sled's page cache. Its default (1 GiB) lets memory grow with the audit log; this bounds it.
pub const CACHE_BYTES: u64 = 32 * 1024 * 1024;

/// The sled-backed store.
pub struct SledStore {
    dir: PathBuf,
    db: ::sled::Db,
    keys: ::sled::Tree,
    replays: ::sled::Tree,
    revocations: ::sled::Tree,
    audit: ::sled::Tree,
}

fn unavailable(e: impl std::fmt::Display) -> StoreError {
    StoreError::Unavailable(e.to_string())
}

fn encode<T: Serialize>(v: &T) -> Result<Vec<u8>> {
    let mut out = vec![FORMAT];
    serde_json::to_writer(&mut out, v).map_err(|e| StoreError::Corrupt(e.to_string()))?;
    Ok(out)
}

fn decode<T: serde::de::DeserializeOwned>(bytes: &[u8]) -> Result<T> {
    match bytes.split_first() {
        Some((&FORMAT, rest)) => {
            serde_json::from_slice(rest).map_err(|e| StoreError::Corrupt(e.to_string()))
        }
        _ => Err(StoreError::Corrupt("unknown record format".into())),
    }
}

impl SledStore {
    /// Opens (creating if needed) the store in `dir`.
    pub fn open(dir: &Path) -> Result<SledStore> {
        std::fs::create_dir_all(dir)
            .map_err(|e| unavailable(format!("cannot create {}: {e}", dir.display())))?;
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700))
                .map_err(|e| unavailable(format!("cannot restrict {}: {e}", dir.display())))?;
        }
        let db = ::sled::Config::new().path(dir).cache_capacity(CACHE_BYTES).open().map_err(|e| match e {
            ::sled::Error::Io(io) if io.to_string().contains("could not acquire lock") => {
                StoreError::Locked(format!(
                    "{} is in use by another rolegate process (the embedded store allows one process at a time)",
                    dir.display()
                ))
            }
            other => unavailable(format!("cannot open {}: {other}", dir.display())),
        })?;
        let tree = |name: &str| db.open_tree(name).map_err(unavailable);
        Ok(SledStore {
            dir: dir.to_path_buf(),
            keys: tree("sealing_keys")?,
            replays: tree("replays")?,
            revocations: tree("revocations")?,
            audit: tree("audit")?,
            db,
        })
    }

    /// The data directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    async fn flush(&self) -> Result<()> {
        self.db.flush_async().await.map(|_| ()).map_err(unavailable)
    }
}

fn replay_key(namespace: &str, key: &str) -> Vec<u8> {
    let mut k = Vec::with_capacity(namespace.len() + key.len() + 1);
    k.extend_from_slice(namespace.as_bytes());
    k.push(0);
    k.extend_from_slice(key.as_bytes());
    k
}

fn audit_key(r: &AuditRecord) -> Vec<u8> {
    // Big-endian time (offset to sort negatives first), then the id: ordered by time.
    let mut k = ((r.time_ms as u64) ^ (1 << 63)).to_be_bytes().to_vec();
    k.extend_from_slice(r.id.as_bytes());
    k
}

fn time_prefix(ms: i64) -> [u8; 8] {
    ((ms as u64) ^ (1 << 63)).to_be_bytes()
}

#[async_trait]
impl KeyStore for SledStore {
    async fn sealing_keys(&self) -> Result<Vec<SealingKey>> {
        self.keys
            .iter()
            .map(|kv| kv.map_err(unavailable).and_then(|(_, v)| decode(&v)))
            .collect()
    }
    async fn insert_sealing_key(&self, key: &SealingKey) -> Result<bool> {
        let inserted = self
            .keys
            .compare_and_swap(key.id.as_bytes(), None as Option<&[u8]>, Some(encode(key)?))
            .map_err(unavailable)?
            .is_ok();
        self.flush().await?;
        Ok(inserted)
    }
    async fn retire_sealing_key(&self, id: &str, retired_at: i64) -> Result<()> {
        if let Some(v) = self.keys.get(id.as_bytes()).map_err(unavailable)? {
            let mut k: SealingKey = decode(&v)?;
            if k.retired_at.is_none() {
                k.retired_at = Some(retired_at);
                self.keys
                    .insert(id.as_bytes(), encode(&k)?)
                    .map_err(unavailable)?;
                self.flush().await?;
            }
        }
        Ok(())
    }
    async fn delete_sealing_key(&self, id: &str) -> Result<()> {
        self.keys.remove(id.as_bytes()).map_err(unavailable)?;
        self.flush().await
    }
}

#[async_trait]
impl ReplayCache for SledStore {
    async fn first_use(
        &self,
        namespace: &str,
        key: &str,
        expires_at: i64,
        now: i64,
    ) -> Result<bool> {
        let k = replay_key(namespace, key);
        let new = expires_at.to_be_bytes();
        loop {
            let current = self.replays.get(&k).map_err(unavailable)?;
            if let Some(cur) = &current {
                let exp = i64::from_be_bytes(
                    cur.as_ref()
                        .try_into()
                        .map_err(|_| StoreError::Corrupt("replay entry".into()))?,
                );
                if exp > now {
                    return Ok(false);
                }
            }
            // Atomic: only one caller replaces exactly what it saw.
            match self
                .replays
                .compare_and_swap(&k, current.as_ref(), Some(&new[..]))
                .map_err(unavailable)?
            {
                Ok(()) => {
                    self.flush().await?;
                    return Ok(true);
                }
                Err(_) => continue,
            }
        }
    }
    async fn purge_expired_replays(&self, now: i64) -> Result<u64> {
        let mut n = 0;
        for kv in self.replays.iter() {
            let (k, v) = kv.map_err(unavailable)?;
            let exp = i64::from_be_bytes(
                v.as_ref()
                    .try_into()
                    .map_err(|_| StoreError::Corrupt("replay entry".into()))?,
            );
            if exp <= now
                && self
                    .replays
                    .compare_and_swap(&k, Some(v), None as Option<&[u8]>)
                    .map_err(unavailable)?
                    .is_ok()
            {
                n += 1;
            }
        }
        if n > 0 {
            self.flush().await?;
        }
        Ok(n)
    }
}

#[async_trait]
impl RevocationStore for SledStore {
    async fn revoke(&self, r: &Revocation) -> Result<()> {
        let k = encode(&r.scope)?;
        loop {
            let current = self.revocations.get(&k).map_err(unavailable)?;
            if let Some(cur) = &current {
                let existing: Revocation = decode(cur)?;
                if existing.issued_before >= r.issued_before {
                    return Ok(());
                }
            }
            if self
                .revocations
                .compare_and_swap(&k, current.as_ref(), Some(encode(r)?))
                .map_err(unavailable)?
                .is_ok()
            {
                return self.flush().await;
            }
        }
    }
    async fn revocations(&self) -> Result<Vec<Revocation>> {
        self.revocations
            .iter()
            .map(|kv| kv.map_err(unavailable).and_then(|(_, v)| decode(&v)))
            .collect()
    }
    async fn purge_expired_revocations(&self, now: i64) -> Result<u64> {
        let mut n = 0;
        for kv in self.revocations.iter() {
            let (k, v) = kv.map_err(unavailable)?;
            let r: Revocation = decode(&v)?;
            if r.expires_at <= now {
                self.revocations.remove(&k).map_err(unavailable)?;
                n += 1;
            }
        }
        if n > 0 {
            self.flush().await?;
        }
        Ok(n)
    }
}

#[async_trait]
impl AuditLog for SledStore {
    async fn append_audit(&self, records: &[AuditRecord]) -> Result<()> {
        let mut batch = ::sled::Batch::default();
        for r in records {
            batch.insert(audit_key(r), encode(r)?);
        }
        self.audit.apply_batch(batch).map_err(unavailable)?;
        self.flush().await
    }
    async fn query_audit(&self, q: &AuditQuery) -> Result<Vec<AuditRecord>> {
        let start = time_prefix(q.since_ms.unwrap_or(i64::MIN));
        let end = time_prefix(q.until_ms.unwrap_or(i64::MAX));
        let range = self.audit.range(start..end);
        let iter: Box<dyn Iterator<Item = ::sled::Result<(::sled::IVec, ::sled::IVec)>>> =
            if q.newest_first {
                Box::new(range.rev())
            } else {
                Box::new(range)
            };
        let mut out = Vec::new();
        for kv in iter {
            if out.len() >= q.limit {
                break;
            }
            let (_, v) = kv.map_err(unavailable)?;
            let r: AuditRecord = decode(&v)?;
            if q.matches(&r) {
                out.push(r);
            }
        }
        Ok(out)
    }
}

#[async_trait]
impl Store for SledStore {
    fn kind(&self) -> &'static str {
        "sled"
    }
    async fn health(&self) -> Result<()> {
        self.db.was_recovered();
        self.keys.len();
        Ok(())
    }
}
