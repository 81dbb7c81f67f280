//! Long-term access keys (`AKIA…`) of users: creation (at most [`MAX_ACCESS_KEYS`], never for
//! root), rotation, status, deletion, the lookup by key id (kind `access_key`, through the cache of
//! the request path) and the last use (kind `key_used`).
//!
//! **Last use is written in batches, not per request.** A signed call only notes the use in memory
//! ([`Directory::touch_access_key`]); [`Directory::flush_key_use`] writes what was noted, in batches
//! of up to [`MAX_DIR_BATCH`] keys, when the background maintenance runs (every 5 s, the app's
//! `REFRESH_INTERVAL`) and when the server shuts down. So the stored last use is at most that much
//! behind; this process shows its own uses at once (merged
//! when read); another replica's show once written; a crash loses at most the last interval's.

use super::{
    decode, encode, key_of, random_id, AccessKey, Directory, DirectoryError, KeyStatus, KeyUse,
    Result, Secret, User, ACCESS_KEY, CAS_ATTEMPTS, KEY_USED, MAX_ACCESS_KEYS, USER,
};
use crate::store::{DirWrite, MAX_DIR_BATCH};

/// Most keys whose use waits in memory for the next flush.
const MAX_PENDING_KEY_USES: usize = 100_000;

impl Directory {
    /// Creates an access key for a user (at most [`MAX_ACCESS_KEYS`]; never for root).
    pub async fn create_access_key(&self, user: &str) -> Result<AccessKey> {
        for _ in 0..CAS_ATTEMPTS {
            let key = AccessKey {
                id: random_id("AKIA", 16)?,
                secret: Secret::new(
                    crate::credentials::new_secret_access_key()
                        .map_err(|e| DirectoryError::Internal(e.to_string()))?,
                ),
                status: KeyStatus::Active,
                created_at: self.now(),
            };
            let (mut u, v) = self.user_record(user).await?;
            if u.root {
                return Err(DirectoryError::Invalid(
                    "the root user has no access keys: create a user for programmatic access"
                        .into(),
                ));
            }
            if u.access_keys.len() >= MAX_ACCESS_KEYS {
                return Err(DirectoryError::Conflict(format!(
                    "user {} already has {MAX_ACCESS_KEYS} access keys; delete one first",
                    u.name
                )));
            }
            u.access_keys.push(key.clone());
            if self
                .store
                .dir_write(&[
                    DirWrite::update(USER, &key_of(user), v.version, encode(&u)?),
                    DirWrite::insert(ACCESS_KEY, &key.id, u.name.clone()),
                ])
                .await?
            {
                return Ok(key);
            }
        }
        Err(DirectoryError::Conflict(format!(
            "user {user} is being changed concurrently; try again"
        )))
    }

    /// Activates or deactivates a key.
    pub async fn set_access_key_status(
        &self,
        user: &str,
        id: &str,
        status: KeyStatus,
    ) -> Result<()> {
        self.update_user(user, |u| {
            let k = u
                .access_keys
                .iter_mut()
                .find(|k| k.id == id)
                .ok_or_else(|| {
                    DirectoryError::NotFound(format!("user {user} has no access key {id}"))
                })?;
            k.status = status;
            Ok(((), Vec::new()))
        })
        .await
    }

    /// Deletes a key.
    pub async fn delete_access_key(&self, user: &str, id: &str) -> Result<()> {
        let idx = self.store.dir_get(ACCESS_KEY, id).await?;
        let used = self.store.dir_get(KEY_USED, id).await?;
        self.update_user(user, |u| {
            let before = u.access_keys.len();
            u.access_keys.retain(|k| k.id != id);
            if before == u.access_keys.len() {
                return Err(DirectoryError::NotFound(format!(
                    "user {user} has no access key {id}"
                )));
            }
            let mut extra = Vec::new();
            if let Some(v) = &idx {
                extra.push(DirWrite::delete(ACCESS_KEY, id, v.version));
            }
            if let Some(v) = &used {
                extra.push(DirWrite::delete(KEY_USED, id, v.version));
            }
            Ok(((), extra))
        })
        .await?;
        self.forget_key_use(std::iter::once(id));
        Ok(())
    }

    /// Rotation: a new active key is created and the user's only other key is deactivated (delete it
    /// once nothing uses it). Refused when the user already has two keys.
    pub async fn rotate_access_key(&self, user: &str) -> Result<(AccessKey, Option<String>)> {
        let u = self.user(user).await?;
        if u.access_keys.len() >= MAX_ACCESS_KEYS {
            return Err(DirectoryError::Conflict(format!(
                "user {} has {MAX_ACCESS_KEYS} access keys; delete the one being replaced before rotating",
                u.name
            )));
        }
        let old = u.access_keys.first().map(|k| k.id.clone());
        let new = self.create_access_key(user).await?;
        if let Some(old) = &old {
            self.set_access_key_status(user, old, KeyStatus::Inactive)
                .await?;
        }
        Ok((new, old))
    }

    /// The user owning an access key and the key, if both exist. Read through the cache of the
    /// request path (see `records`): a key deleted or deactivated, or its user deleted or
    /// disabled, by this process is seen at once, by another replica within
    /// [`CACHE_BOUND`](super::CACHE_BOUND). A cached user without the key is read again.
    pub async fn access_key(&self, id: &str) -> Result<Option<(User, AccessKey)>> {
        for fresh in [false, true] {
            let owner = if fresh {
                self.store.dir_get(ACCESS_KEY, id).await?.map(|v| v.value)
            } else {
                self.cached_read_raw(ACCESS_KEY, id).await?
            };
            let Some(owner) = owner else {
                return Ok(None);
            };
            let user_key = key_of(&owner);
            let user = if fresh {
                self.read::<User>(USER, &user_key).await?.map(|(u, _)| u)
            } else {
                self.cached_read::<User>(USER, &user_key).await?
            };
            let key = user
                .as_ref()
                .and_then(|u| u.access_keys.iter().find(|k| k.id == id).cloned());
            match (user, key) {
                (Some(u), Some(k)) => return Ok(Some((u, k))),
                _ if fresh => return Ok(None),
                _ => {
                    self.store.forget(ACCESS_KEY, id);
                    self.store.forget(USER, &user_key);
                }
            }
        }
        Ok(None)
    }

    async fn cached_read_raw(&self, kind: &str, key: &str) -> Result<Option<String>> {
        Ok(self.store.cached_get(kind, key).await?.map(|v| v.value))
    }

    /// Records that a key signed a request, in memory only: no store write on the request path.
    /// The uses are written in batches by [`Directory::flush_key_use`] (the background maintenance
    /// runs it every few seconds, and the server at shutdown); until then
    /// [`Directory::access_key_last_used`] of this process already shows them.
    pub fn touch_access_key(&self, id: &str, service: &str, region: &str) {
        let now = self.now();
        let mut pending = self.key_use.lock();
        if let Some(u) = pending.get_mut(id) {
            if u.time <= now {
                u.time = now;
                if u.service != service || u.region != region {
                    u.service = service.to_string();
                    u.region = region.to_string();
                }
            }
            return;
        }
        if pending.len() >= MAX_PENDING_KEY_USES {
            // Only keys that signed a request get here; past this many between two flushes the
            // rest wait for the next use after the flush.
            return;
        }
        pending.insert(
            id.to_string(),
            KeyUse {
                time: now,
                service: service.to_string(),
                region: region.to_string(),
            },
        );
    }

    /// Writes the key uses recorded since the last flush (see [`Directory::touch_access_key`]) to
    /// the store, in batches of [`MAX_DIR_BATCH`] records; a record already newer (written by
    /// another replica) is kept, a key deleted meanwhile gets none. A use stays in memory (and
    /// shown) until its batch is written: uses not written because the store failed wait for the
    /// next flush. Returns how many records were written.
    pub async fn flush_key_use(&self) -> Result<usize> {
        let pending: Vec<(String, KeyUse)> = self
            .key_use
            .lock()
            .iter()
            .map(|(id, u)| (id.clone(), u.clone()))
            .collect();
        let mut written = 0;
        for chunk in pending.chunks(MAX_DIR_BATCH) {
            written += self.write_key_uses(chunk).await?;
            // Done with these, unless a key was used again meanwhile.
            let mut now_pending = self.key_use.lock();
            for (id, u) in chunk {
                if now_pending.get(id).is_some_and(|p| p.time <= u.time) {
                    now_pending.remove(id);
                }
            }
        }
        Ok(written)
    }

    /// One batch; when it meets another writer, key by key (a key that keeps meeting one is left
    /// to it: the other replica is writing a use of its own).
    async fn write_key_uses(&self, uses: &[(String, KeyUse)]) -> Result<usize> {
        if let Some(n) = self.try_write_key_uses(uses).await? {
            return Ok(n);
        }
        let mut n = 0;
        for one in uses {
            for _ in 0..CAS_ATTEMPTS {
                if let Some(k) = self.try_write_key_uses(std::slice::from_ref(one)).await? {
                    n += k;
                    break;
                }
            }
        }
        Ok(n)
    }

    /// Each use over the stored record when it is newer, for keys that still exist; `None` when
    /// another writer changed a record meanwhile (nothing written).
    async fn try_write_key_uses(&self, uses: &[(String, KeyUse)]) -> Result<Option<usize>> {
        let mut writes = Vec::new();
        for (id, u) in uses {
            if self.store.dir_get(ACCESS_KEY, id).await?.is_none() {
                continue;
            }
            let current = self.store.dir_get(KEY_USED, id).await?;
            let newer = match &current {
                Some(v) => decode::<KeyUse>(KEY_USED, id, v).map_or(true, |s| s.time < u.time),
                None => true,
            };
            if newer {
                writes.push(DirWrite::put(KEY_USED, id, current.as_ref(), encode(u)?));
            }
        }
        if writes.is_empty() {
            return Ok(Some(0));
        }
        Ok(self.store.dir_write(&writes).await?.then_some(writes.len()))
    }

    /// When a key last signed a request: the later of the stored record and a use recorded by this
    /// process and not yet written. Another replica's uses show once it has written them (within
    /// a few seconds, see [`Directory::flush_key_use`]).
    pub async fn access_key_last_used(&self, id: &str) -> Result<Option<KeyUse>> {
        let stored = self.read::<KeyUse>(KEY_USED, id).await?.map(|(k, _)| k);
        let pending = self.key_use.lock().get(id).cloned();
        Ok(match (stored, pending) {
            (Some(s), Some(p)) if s.time >= p.time => Some(s),
            (s, None) => s,
            (_, p) => p,
        })
    }

    /// Forgets uses of `ids` not yet written (their keys are being deleted).
    pub(super) fn forget_key_use<'a>(&self, ids: impl Iterator<Item = &'a str>) {
        let mut pending = self.key_use.lock();
        for id in ids {
            pending.remove(id);
        }
    }
}
