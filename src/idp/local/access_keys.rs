//! Long-term access keys (`AKIA…`) of users: creation (at most [`MAX_ACCESS_KEYS`], never for
//! root), rotation, status, deletion, the lookup by key id (kind `access_key`) and the last use
//! (kind `key_used`).

use super::{
    encode, key_of, random_id, AccessKey, Directory, DirectoryError, KeyStatus, KeyUse, Result,
    Secret, User, ACCESS_KEY, CAS_ATTEMPTS, KEY_USED, KEY_USE_RESOLUTION, MAX_ACCESS_KEYS, USER,
};
use crate::store::DirWrite;

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
        .await
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

    /// The user owning an access key and the key, if both exist.
    pub async fn access_key(&self, id: &str) -> Result<Option<(User, AccessKey)>> {
        let Some(owner) = self.store.dir_get(ACCESS_KEY, id).await? else {
            return Ok(None);
        };
        let Some((user, _)) = self.read::<User>(USER, &key_of(&owner.value)).await? else {
            return Ok(None);
        };
        let key = user.access_keys.iter().find(|k| k.id == id).cloned();
        Ok(key.map(|k| (user, k)))
    }

    /// Records that a key signed a request, at most once per [`KEY_USE_RESOLUTION`] per key and
    /// process (best effort: a failure is logged, never fatal).
    pub async fn touch_access_key(&self, id: &str, service: &str, region: &str) {
        let now = self.now();
        {
            let mut seen = self.key_use.lock();
            if seen.get(id).is_some_and(|t| now - t < KEY_USE_RESOLUTION) {
                return;
            }
            if seen.len() > 100_000 {
                seen.clear();
            }
            seen.insert(id.to_string(), now);
        }
        let record = KeyUse {
            time: now,
            service: service.to_string(),
            region: region.to_string(),
        };
        let result = async {
            let current = self.store.dir_get(KEY_USED, id).await?;
            let value = encode(&record)?;
            let write = DirWrite::put(KEY_USED, id, current.as_ref(), value);
            self.store.dir_write(&[write]).await?;
            Ok::<_, DirectoryError>(())
        }
        .await;
        if let Err(e) = result {
            tracing::warn!(access_key = id, error = %e, "recording access key use failed");
        }
    }

    /// When a key last signed a request.
    pub async fn access_key_last_used(&self, id: &str) -> Result<Option<KeyUse>> {
        Ok(self.read::<KeyUse>(KEY_USED, id).await?.map(|(k, _)| k))
    }
}
