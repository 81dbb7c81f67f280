//! Users: creating, reading, listing and deleting them, their passwords (the length and name rules,
//! argon2id hashing) and the password sign-in with its lock after repeated failures. Disabling a
//! user is in `status`.

use super::password::Password;
use super::{
    check_name, check_path, encode, key_of, keys, valid_name, Directory, DirectoryError, Result,
    Secret, User, ACCESS_KEY, CAS_ATTEMPTS, LOGIN_STATE, PASSWORD_MAX_FAILURES, USER, USER_ID,
};
use crate::store::DirWrite;

impl Directory {
    pub(super) async fn insert_user(&self, user: &User) -> Result<bool> {
        Ok(self
            .store
            .dir_write(&[
                DirWrite::insert(USER, &key_of(&user.name), encode(user)?),
                DirWrite::insert(USER_ID, &user.user_id, user.name.clone()),
            ])
            .await?)
    }

    /// Creates a user without password, keys or devices.
    pub async fn create_user(&self, name: &str, path: Option<&str>) -> Result<User> {
        check_name("user", name)?;
        if let Some(why) = keys::reserved_user_name(name) {
            return Err(DirectoryError::Invalid(why.into()));
        }
        let path = path.unwrap_or("/");
        check_path(path)?;
        let user = User::new(name, path, false, self.now())?;
        if self.insert_user(&user).await? {
            Ok(user)
        } else {
            Err(DirectoryError::Conflict(format!(
                "user {name} already exists"
            )))
        }
    }

    /// The user called `name` (case-insensitive).
    pub async fn user(&self, name: &str) -> Result<User> {
        Ok(self.user_record(name).await?.0)
    }

    /// The user with this id (`AIDA…`), if it still exists. Read through the cache of the request
    /// path (see `records`): a user deleted or disabled by this process is seen at once, by another
    /// replica within [`CACHE_BOUND`](super::CACHE_BOUND). A cached record that names someone else
    /// is read again.
    pub async fn user_by_id(&self, id: &str) -> Result<Option<User>> {
        let Some(name) = self.store.cached_get(USER_ID, id).await? else {
            return Ok(None);
        };
        let key = key_of(&name.value);
        match self.cached_read::<User>(USER, &key).await? {
            Some(u) if u.user_id == id => return Ok(Some(u)),
            _ => {
                self.store.forget(USER_ID, id);
                self.store.forget(USER, &key);
            }
        }
        let Some(name) = self.store.dir_get(USER_ID, id).await? else {
            return Ok(None);
        };
        match self.read::<User>(USER, &key_of(&name.value)).await? {
            Some((u, _)) if u.user_id == id => Ok(Some(u)),
            _ => Ok(None),
        }
    }

    /// Every user, by name (the store's order of record keys). Answered from the index of the
    /// users at the store's state now (see `records`): reads one record unless another replica
    /// changed a user since the last listing.
    pub async fn users(&self) -> Result<Vec<User>> {
        self.store.with_users(|ix| ix.users()).await
    }

    /// What `f` makes of each user, in the order of [`Directory::users`], from the same index
    /// (without copying the users).
    pub async fn map_users<T>(&self, f: impl FnMut(&User) -> T) -> Result<Vec<T>> {
        self.store.with_users(|ix| ix.map(f)).await
    }

    /// The members of group `group` (case-insensitive; it need not exist), in the order of
    /// [`Directory::users`], from the same index.
    pub async fn group_members(&self, group: &str) -> Result<Vec<User>> {
        self.store.with_users(|ix| ix.members(group)).await
    }

    /// Reads the index of the users again if another replica changed a user since it was read
    /// (the periodic refresh of shared state, so that listings seldom wait for it).
    pub async fn refresh(&self) -> Result<()> {
        self.store.refresh_index().await
    }

    /// Deletes a user with everything it holds (keys, devices, memberships). The root user stays.
    pub async fn delete_user(&self, name: &str) -> Result<User> {
        for _ in 0..CAS_ATTEMPTS {
            let (user, v) = self.user_record(name).await?;
            if user.root {
                return Err(DirectoryError::Invalid(
                    "the root user cannot be deleted".into(),
                ));
            }
            let mut writes = vec![DirWrite::delete(USER, &key_of(name), v.version)];
            if let Some(idx) = self.store.dir_get(USER_ID, &user.user_id).await? {
                writes.push(DirWrite::delete(USER_ID, &user.user_id, idx.version));
            }
            for k in &user.access_keys {
                if let Some(idx) = self.store.dir_get(ACCESS_KEY, &k.id).await? {
                    writes.push(DirWrite::delete(ACCESS_KEY, &k.id, idx.version));
                }
            }
            if self.store.dir_write(&writes).await? {
                self.forget_key_use(user.access_keys.iter().map(|k| k.id.as_str()));
                return Ok(user);
            }
        }
        Err(DirectoryError::Conflict(format!(
            "user {name} is being changed concurrently; try again"
        )))
    }

    fn check_password_rules(&self, user: &str, password: &Password) -> Result<()> {
        let p = password.expose();
        let n = p.chars().count();
        if n < self.settings.min_password_length {
            return Err(DirectoryError::Invalid(format!(
                "the password must have at least {} characters",
                self.settings.min_password_length
            )));
        }
        if n > 1024 {
            return Err(DirectoryError::Invalid(
                "the password must have at most 1024 characters".into(),
            ));
        }
        if p.eq_ignore_ascii_case(user) {
            return Err(DirectoryError::Invalid(
                "the password must not be the user name".into(),
            ));
        }
        Ok(())
    }

    /// Sets a user's password (hashed with argon2id off the runtime).
    pub async fn set_password(&self, name: &str, password: Password) -> Result<()> {
        let user = self.user(name).await?;
        self.check_password_rules(&user.name, &password)?;
        let hash = self
            .hasher
            .hash(password)
            .await
            .map_err(DirectoryError::from)?;
        let now = self.now();
        self.update_user(name, |u| {
            u.password_hash = Some(Secret::new(hash.clone()));
            u.password_changed_at = Some(now);
            Ok(((), Vec::new()))
        })
        .await?;
        // A new password lifts a password lock.
        if let Some(v) = self.store.dir_get(LOGIN_STATE, &key_of(name)).await? {
            let _ = self
                .store
                .dir_write(&[DirWrite::delete(LOGIN_STATE, &key_of(name), v.version)])
                .await?;
        }
        Ok(())
    }

    /// Checks a password sign-in. Unknown users, users without a password and wrong passwords all
    /// cost one argon2 verification and give the same [`DirectoryError::Denied`]; after
    /// [`PASSWORD_MAX_FAILURES`] wrong passwords the user is locked for [`LOCK_SECONDS`](super::LOCK_SECONDS).
    pub async fn check_password(&self, name: &str, password: Password) -> Result<User> {
        let now = self.now();
        let throttle_key = key_of(name);
        let what = format!("password sign-in of {throttle_key}");
        // The user and the sign-in's lock state are read together, one wait instead of two; the
        // lock state counts only for a user that exists.
        let (user, lock) = tokio::join!(
            async {
                if !valid_name(name) {
                    return Ok(None);
                }
                Ok::<_, DirectoryError>(
                    self.read::<User>(USER, &throttle_key)
                        .await?
                        .map(|(u, _)| u),
                )
            },
            self.check_lock(LOGIN_STATE, &throttle_key, &what, now)
        );
        let user = user?;
        let counted = if user.is_some() { lock? } else { false };
        let hash = user
            .as_ref()
            .and_then(|u| u.password_hash.as_ref().map(|h| h.expose().to_string()));
        let ok = self
            .hasher
            .verify(hash, password)
            .await
            .map_err(DirectoryError::from)?;
        match user {
            Some(u) if ok && !u.active() => Err(DirectoryError::Denied(format!(
                "user {} is disabled",
                u.name
            ))),
            Some(u) if ok => {
                // Only a record with failures to forget is written: the sign-ins of one user, on
                // any replica, do not all update one row.
                if counted {
                    self.throttle(LOGIN_STATE, &throttle_key, now, |t| {
                        t.failures = 0;
                        t.locked_until = None;
                        Ok(())
                    })
                    .await?;
                }
                Ok(u)
            }
            Some(u) => {
                let locked = self
                    .record_failure(LOGIN_STATE, &throttle_key, PASSWORD_MAX_FAILURES, now)
                    .await?;
                Err(DirectoryError::Denied(format!(
                    "wrong password for user {}{}",
                    u.name,
                    if locked {
                        "; password sign-in is now locked"
                    } else {
                        ""
                    }
                )))
            }
            None => Err(DirectoryError::Denied(format!(
                "no user {name} with a password"
            ))),
        }
    }
}
