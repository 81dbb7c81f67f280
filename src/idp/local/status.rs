//! Disabling and enabling a user. A disabled user keeps its name, id, groups, policies, keys and
//! devices, so enabling it again restores it as it was; while disabled it signs in with nothing:
//! password sign-ins and its access keys are refused here and in the STS, and the mint gate refuses
//! every sign-in and session it started.

use super::{
    key_of, keys, Directory, DirectoryError, Result, Throttle, User, LOGIN_STATE, MFA_STATE,
};
use crate::store::Versioned;

impl Directory {
    /// Disables (`disabled`) or enables user `name`; returns the user as it is now. The root user
    /// cannot be disabled: it is the directory's way back in.
    pub async fn set_user_disabled(&self, name: &str, disabled: bool) -> Result<User> {
        let now = self.now();
        self.update_user(name, |u| {
            if u.root && disabled {
                return Err(DirectoryError::Invalid(
                    "the root user cannot be disabled (revoke its sessions or replace its MFA device instead)"
                        .into(),
                ));
            }
            u.disabled_at = match (disabled, u.disabled_at) {
                (true, Some(at)) => Some(at),
                (true, None) => Some(now),
                (false, _) => None,
            };
            Ok((u.clone(), Vec::new()))
        })
        .await
    }
}

/// What of a user's sign-in is locked after repeated failures, as of now.
#[derive(Debug, Clone, Default, PartialEq, serde::Serialize)]
pub struct Locks {
    /// The password sign-in is refused until then (Unix seconds).
    pub password_until: Option<i64>,
    /// The TOTP device is refused until then.
    pub totp_until: Option<i64>,
    /// Security keys are refused until then.
    pub security_key_until: Option<i64>,
}

impl Locks {
    /// Whether anything is locked.
    pub fn any(&self) -> bool {
        self.password_until.is_some()
            || self.totp_until.is_some()
            || self.security_key_until.is_some()
    }
}

impl Directory {
    /// The locks of `user` in force now.
    pub async fn locks(&self, user: &User) -> Result<Locks> {
        let now = self.now();
        let until = |t: Option<(Throttle, Versioned)>| {
            t.and_then(|(t, _)| t.locked_until.filter(|u| *u > now))
        };
        Ok(Locks {
            password_until: until(self.read(LOGIN_STATE, &key_of(&user.name)).await?),
            totp_until: until(self.read(MFA_STATE, &keys::totp_state_key(user)).await?),
            security_key_until: until(
                self.read(MFA_STATE, &keys::webauthn_state_key(user))
                    .await?,
            ),
        })
    }

    /// Lifts every lock of user `name` and forgets its failure counts: the password sign-in and
    /// its MFA devices. The last accepted TOTP step is kept, so no used code becomes good again.
    /// Returns the locks that were in force.
    pub async fn unlock_user(&self, name: &str) -> Result<Locks> {
        let user = self.user(name).await?;
        let was = self.locks(&user).await?;
        let now = self.now();
        for (kind, key) in [
            (LOGIN_STATE, key_of(&user.name)),
            (MFA_STATE, keys::totp_state_key(&user)),
            (MFA_STATE, keys::webauthn_state_key(&user)),
        ] {
            if self.read::<Throttle>(kind, &key).await?.is_some() {
                self.throttle(kind, &key, now, |t| {
                    t.failures = 0;
                    t.first_failure = 0;
                    t.locked_until = None;
                    Ok(())
                })
                .await?;
            }
        }
        Ok(was)
    }
}
