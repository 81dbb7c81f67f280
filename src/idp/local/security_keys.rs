//! WebAuthn security keys of users, the directory side of `webauthn`: pending ceremonies (kind
//! `webauthn_pending`, used once, optionally bound to a scope), registered credentials (kind
//! `webauthn_credential`, unique across users) and the sign-in with its failure count.

use super::{
    decode, encode, key_of, keys, webauthn, Directory, DirectoryError, MfaDevice, Result, User,
    CAS_ATTEMPTS, MFA_MAX_FAILURES, MFA_STATE, USER, WEBAUTHN_CREDENTIAL, WEBAUTHN_PENDING,
};
use crate::store::DirWrite;

impl Directory {
    fn webauthn(&self) -> Result<&webauthn::WebAuthnMfa> {
        self.webauthn.as_ref().ok_or_else(|| {
            DirectoryError::Invalid(
                "security keys need a public_url with https (or localhost): WebAuthn is off".into(),
            )
        })
    }

    fn security_keys(user: &User) -> Vec<webauthn::StoredKey> {
        user.mfa_devices
            .iter()
            .filter_map(|d| match d {
                MfaDevice::SecurityKey { key, .. } => Some(key.clone()),
                MfaDevice::Totp { .. } => None,
            })
            .collect()
    }

    fn user_handle(user: &User) -> uuid::Uuid {
        let digest = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, user.user_id.as_bytes());
        let mut b = [0u8; 16];
        b.copy_from_slice(&digest.as_ref()[..16]);
        uuid::Uuid::from_bytes(b)
    }

    async fn put_pending(&self, key: &str, p: &webauthn::PendingCeremony) -> Result<()> {
        let value = encode(p)?;
        for _ in 0..CAS_ATTEMPTS {
            let current = self.store.dir_get(WEBAUTHN_PENDING, key).await?;
            let write = DirWrite::put(WEBAUTHN_PENDING, key, current.as_ref(), value.clone());
            if self.store.dir_write(&[write]).await? {
                return Ok(());
            }
        }
        Err(DirectoryError::Conflict(
            "ceremony started concurrently; try again".into(),
        ))
    }

    /// Takes the pending ceremony out of the store: it is deleted before it is checked, so it can
    /// be finished at most once whatever the outcome.
    async fn take_pending(&self, key: &str) -> Result<webauthn::PendingCeremony> {
        let none = || DirectoryError::Denied("no security key ceremony is pending".into());
        let v = self
            .store
            .dir_get(WEBAUTHN_PENDING, key)
            .await?
            .ok_or_else(none)?;
        if !self
            .store
            .dir_write(&[DirWrite::delete(WEBAUTHN_PENDING, key, v.version)])
            .await?
        {
            return Err(none());
        }
        decode(WEBAUTHN_PENDING, key, &v)
    }

    /// Whether security keys are enabled (a relying party is configured).
    pub fn webauthn_enabled(&self) -> bool {
        self.webauthn.is_some()
    }

    /// The user's registered security keys.
    pub fn security_keys_of(user: &User) -> Vec<webauthn::StoredKey> {
        Self::security_keys(user)
    }

    /// Deletes pending ceremonies whose deadline has passed (and records that no longer decode),
    /// left behind by browsers that never finished them; returns how many.
    pub async fn purge_expired_ceremonies(&self) -> Result<usize> {
        let now = self.now();
        let mut n = 0;
        for (key, v) in self.store.dir_list(WEBAUTHN_PENDING).await? {
            let dead = serde_json::from_str::<webauthn::PendingCeremony>(&v.value)
                .map(|p| p.expires_at <= now)
                .unwrap_or(true);
            if dead
                && self
                    .store
                    .dir_write(&[DirWrite::delete(WEBAUTHN_PENDING, &key, v.version)])
                    .await?
            {
                n += 1;
            }
        }
        Ok(n)
    }

    /// Starts registering a security key: the options for `navigator.credentials.create()`.
    pub async fn start_security_key_registration(&self, user: &str) -> Result<serde_json::Value> {
        self.start_security_key_registration_in(user, "").await
    }

    /// [`Self::start_security_key_registration`] bound to `scope` (e.g. a session's id hash): only
    /// a finish with the same scope finds the ceremony, and it replaces an earlier one of the scope.
    pub async fn start_security_key_registration_in(
        &self,
        user: &str,
        scope: &str,
    ) -> Result<serde_json::Value> {
        let w = self.webauthn()?;
        let u = self.user(user).await?;
        let (options, pending) = w
            .start_registration(
                Self::user_handle(&u),
                &u.name,
                &Self::security_keys(&u),
                self.now(),
            )
            .map_err(|e| DirectoryError::Internal(e.to_string()))?;
        self.put_pending(&pending_key("reg", &u.name, scope), &pending)
            .await?;
        Ok(options)
    }

    /// Finishes registering a security key with the browser's response; returns its serial.
    pub async fn finish_security_key_registration(
        &self,
        user: &str,
        response: &serde_json::Value,
        label: &str,
    ) -> Result<String> {
        self.finish_security_key_registration_in(user, "", response, label)
            .await
    }

    /// [`Self::finish_security_key_registration`] of a ceremony started in `scope`.
    pub async fn finish_security_key_registration_in(
        &self,
        user: &str,
        scope: &str,
        response: &serde_json::Value,
        label: &str,
    ) -> Result<String> {
        let w = self.webauthn()?;
        let pending = self.take_pending(&pending_key("reg", user, scope)).await?;
        let key = w
            .finish_registration(&pending, response, label, self.now())
            .map_err(|e| DirectoryError::Denied(e.to_string()))?;
        if self
            .store
            .dir_get(WEBAUTHN_CREDENTIAL, &key.credential_id)
            .await?
            .is_some()
        {
            return Err(DirectoryError::Conflict(
                "this security key is already registered".into(),
            ));
        }
        let serial = format!("webauthn:{}", key.credential_id);
        let cred = key.credential_id.clone();
        let s = serial.clone();
        self.update_user(user, move |u| {
            u.mfa_devices.push(MfaDevice::SecurityKey {
                serial: s.clone(),
                key: key.clone(),
            });
            // A credential id belongs to one user: the insert fails if it is registered anywhere.
            Ok((
                (),
                vec![DirWrite::insert(WEBAUTHN_CREDENTIAL, &cred, u.name.clone())],
            ))
        })
        .await?;
        Ok(serial)
    }

    /// Starts a security-key sign-in: the options for `navigator.credentials.get()`.
    pub async fn start_security_key_authentication(
        &self,
        user: &User,
    ) -> Result<serde_json::Value> {
        self.start_security_key_authentication_in(user, "").await
    }

    /// [`Self::start_security_key_authentication`] bound to `scope`.
    pub async fn start_security_key_authentication_in(
        &self,
        user: &User,
        scope: &str,
    ) -> Result<serde_json::Value> {
        let w = self.webauthn()?;
        let (options, pending) = w
            .start_authentication(&Self::security_keys(user), self.now())
            .map_err(|e| DirectoryError::Denied(e.to_string()))?;
        self.put_pending(&pending_key("auth", &user.name, scope), &pending)
            .await?;
        Ok(options)
    }

    /// Verifies a security-key assertion; the updated counter is written back only if the user
    /// did not change meanwhile, so two ceremonies cannot both pass with one counter value. Counts
    /// failures like wrong TOTP codes. Returns the time of the MFA.
    pub async fn finish_security_key_authentication(
        &self,
        user: &str,
        response: &serde_json::Value,
    ) -> Result<i64> {
        self.finish_security_key_authentication_in(user, "", response)
            .await
    }

    /// [`Self::finish_security_key_authentication`] of a ceremony started in `scope`.
    pub async fn finish_security_key_authentication_in(
        &self,
        user: &str,
        scope: &str,
        response: &serde_json::Value,
    ) -> Result<i64> {
        let w = self.webauthn()?;
        let now = self.now();
        let throttle_key = keys::webauthn_state_key(&self.user(user).await?);
        let what = format!("security keys of {}", key_of(user));
        self.check_lock(MFA_STATE, &throttle_key, &what, now)
            .await?;
        let pending = self.take_pending(&pending_key("auth", user, scope)).await?;
        let (u, v) = self.user_record(user).await?;
        match w.finish_authentication(&pending, response, &Self::security_keys(&u), now) {
            Ok((used, updated)) => {
                if let Some(updated) = updated {
                    let mut u2 = u.clone();
                    for d in u2.mfa_devices.iter_mut() {
                        if let MfaDevice::SecurityKey { key, .. } = d {
                            if key.credential_id == used {
                                *key = updated.clone();
                            }
                        }
                    }
                    if !self
                        .store
                        .dir_write(&[DirWrite::update(
                            USER,
                            &key_of(user),
                            v.version,
                            encode(&u2)?,
                        )])
                        .await?
                    {
                        return Err(DirectoryError::Denied(
                            "the security key was used concurrently; try again".into(),
                        ));
                    }
                }
                Ok(now)
            }
            Err(e) => {
                self.record_failure(MFA_STATE, &throttle_key, MFA_MAX_FAILURES, now)
                    .await?;
                Err(DirectoryError::Denied(e.to_string()))
            }
        }
    }
}

/// The record key of a pending ceremony: `reg:`/`auth:` + user, and `:` + scope when scoped (user
/// names cannot contain `:`).
fn pending_key(kind: &str, user: &str, scope: &str) -> String {
    if scope.is_empty() {
        format!("{kind}:{}", key_of(user))
    } else {
        format!("{kind}:{}:{scope}", key_of(user))
    }
}
