//! MFA devices of users, the TOTP side: enrolment (started, then confirmed with two consecutive
//! codes), verification (each step accepted once, a lock after repeated wrong codes, state keyed by
//! user id, see `keys`) and deleting a device of either kind.

use super::{
    encode, keys, totp, Directory, DirectoryError, MfaDevice, Result, Secret, Throttle,
    TotpEnrolment, User, CAS_ATTEMPTS, MFA_MAX_FAILURES, MFA_STATE, WEBAUTHN_CREDENTIAL,
};
use crate::store::DirWrite;

impl Directory {
    /// The serial number of a user's virtual MFA device.
    pub fn totp_serial(&self, user: &User) -> String {
        if user.root {
            crate::policy::arn::mfa(self.account(), keys::ROOT_MFA_DEVICE)
        } else {
            crate::policy::arn::mfa(self.account(), &user.name)
        }
    }

    /// Starts (or restarts) enrolment of the user's TOTP device. A user has at most one; an enabled
    /// one must be deleted first.
    pub async fn create_totp(&self, user: &str) -> Result<TotpEnrolment> {
        let secret = totp::new_secret().map_err(|e| DirectoryError::Internal(e.to_string()))?;
        let b32 = totp::base32(&secret);
        let now = self.now();
        let u = self.user(user).await?;
        let serial = self.totp_serial(&u);
        let label = if u.root {
            "root".to_string()
        } else {
            u.name.clone()
        };
        let uri = totp::uri(&secret, &self.issuer, &label)
            .map_err(|e| DirectoryError::Internal(e.to_string()))?;
        let s = serial.clone();
        let secret_b32 = b32.clone();
        self.update_user(user, move |u| {
            if u.mfa_devices.iter().any(|d| d.serial() == s && d.enabled()) {
                return Err(DirectoryError::Conflict(format!(
                    "user {} already has an enabled MFA device {s}; delete it first",
                    u.name
                )));
            }
            u.mfa_devices.retain(|d| d.serial() != s);
            u.mfa_devices.push(MfaDevice::Totp {
                serial: s.clone(),
                secret: Secret::new(secret_b32.clone()),
                enabled_at: None,
                created_at: now,
            });
            Ok(((), Vec::new()))
        })
        .await?;
        Ok(TotpEnrolment {
            serial,
            secret_base32: Secret::new(b32),
            uri: Secret::new(uri),
        })
    }

    /// Confirms enrolment with two consecutive codes (as IAM's `EnableMFADevice`).
    pub async fn enable_totp(&self, user: &str, code1: &str, code2: &str) -> Result<String> {
        let now = self.now();
        let u = self.user(user).await?;
        let serial = self.totp_serial(&u);
        let Some(MfaDevice::Totp {
            secret, enabled_at, ..
        }) = u.mfa_devices.iter().find(|d| d.serial() == serial)
        else {
            return Err(DirectoryError::NotFound(format!(
                "user {user} has no MFA device waiting for enrolment"
            )));
        };
        if enabled_at.is_some() {
            return Err(DirectoryError::Conflict(format!(
                "MFA device {serial} is already enabled"
            )));
        }
        let state = keys::totp_state_key(&u);
        self.check_lock(MFA_STATE, &state, &format!("MFA device {serial}"), now)
            .await?;
        let secret = totp::from_base32(secret.expose())
            .map_err(|e| DirectoryError::Internal(e.to_string()))?;
        let s1 = totp::matching_step(&secret, code1, now, None)
            .map_err(|e| DirectoryError::Internal(e.to_string()))?;
        let s2 = totp::matching_step(&secret, code2, now, None)
            .map_err(|e| DirectoryError::Internal(e.to_string()))?;
        let consecutive = matches!((s1, s2), (Some(a), Some(b)) if b == a + 1);
        if !consecutive {
            self.record_failure(MFA_STATE, &state, MFA_MAX_FAILURES, now)
                .await?;
            return Err(DirectoryError::Denied(
                "the two codes are not consecutive valid codes of the device".into(),
            ));
        }
        let last = s2;
        self.throttle(MFA_STATE, &state, now, |t| {
            *t = Throttle {
                last_step: last,
                ..Throttle::default()
            };
            Ok(())
        })
        .await?;
        let s = serial.clone();
        self.update_user(user, move |u| {
            for d in u.mfa_devices.iter_mut() {
                if let MfaDevice::Totp {
                    serial, enabled_at, ..
                } = d
                {
                    if *serial == s {
                        *enabled_at = Some(now);
                    }
                }
            }
            Ok(((), Vec::new()))
        })
        .await?;
        Ok(serial)
    }

    /// Removes an MFA device.
    pub async fn delete_mfa_device(&self, user: &str, serial: &str) -> Result<()> {
        // The TOTP device's state goes with it; security keys share one per-user failure count.
        let u = self.user(user).await?;
        let is_totp = u
            .mfa_devices
            .iter()
            .any(|d| d.serial() == serial && matches!(d, MfaDevice::Totp { .. }));
        let state = match is_totp {
            true => {
                let key = keys::totp_state_key(&u);
                self.store.dir_get(MFA_STATE, &key).await?.map(|v| (key, v))
            }
            false => None,
        };
        let credential = match serial.strip_prefix("webauthn:") {
            Some(id) => self
                .store
                .dir_get(WEBAUTHN_CREDENTIAL, id)
                .await?
                .map(|v| (id, v)),
            None => None,
        };
        self.update_user(user, |u| {
            let before = u.mfa_devices.len();
            u.mfa_devices.retain(|d| d.serial() != serial);
            if before == u.mfa_devices.len() {
                return Err(DirectoryError::NotFound(format!(
                    "user {} has no MFA device {serial}",
                    u.name
                )));
            }
            let mut extra: Vec<DirWrite> = state
                .as_ref()
                .map(|(key, v)| vec![DirWrite::delete(MFA_STATE, key, v.version)])
                .unwrap_or_default();
            if let Some((id, v)) = &credential {
                extra.push(DirWrite::delete(WEBAUTHN_CREDENTIAL, id, v.version));
            }
            Ok(((), extra))
        })
        .await
    }

    /// Verifies a TOTP code of the user's enabled device `serial`: each code (step) is accepted at
    /// most once, and never a step at or before the last accepted one; after [`MFA_MAX_FAILURES`]
    /// wrong codes the device is locked for [`LOCK_SECONDS`](super::LOCK_SECONDS). Returns the time
    /// of the MFA.
    pub async fn verify_totp(&self, user: &User, serial: &str, code: &str) -> Result<i64> {
        let now = self.now();
        let Some(MfaDevice::Totp { secret, .. }) = user
            .mfa_devices
            .iter()
            .find(|d| d.serial() == serial && d.enabled())
        else {
            return Err(DirectoryError::Denied(format!(
                "user {} has no enabled MFA device {serial}",
                user.name
            )));
        };
        let secret = totp::from_base32(secret.expose())
            .map_err(|e| DirectoryError::Internal(e.to_string()))?;
        let key = keys::totp_state_key(user);
        // State kept under the serial by earlier versions (which another user's name could share):
        // only its last accepted step is honoured, so that a code used just before an upgrade, or on
        // a replica not yet upgraded, is not accepted again.
        let legacy_step = self
            .read::<Throttle>(MFA_STATE, serial)
            .await?
            .and_then(|(t, _)| t.last_step);
        for _ in 0..CAS_ATTEMPTS {
            let current = self.read::<Throttle>(MFA_STATE, &key).await?;
            let mut t = current.as_ref().map(|(t, _)| t.clone()).unwrap_or_default();
            t.last_step = t.last_step.max(legacy_step);
            if let Some(until) = t.locked_until.filter(|u| *u > now) {
                return Err(DirectoryError::Locked {
                    what: format!("MFA device {serial}"),
                    until,
                });
            }
            if t.locked_until.is_some() {
                t.locked_until = None;
                t.failures = 0;
            }
            let matched = totp::matching_step(&secret, code, now, t.last_step)
                .map_err(|e| DirectoryError::Internal(e.to_string()))?;
            let replayed = matched.is_none()
                && totp::matching_step(&secret, code, now, None)
                    .map_err(|e| DirectoryError::Internal(e.to_string()))?
                    .is_some();
            match matched {
                Some(step) => {
                    t.last_step = Some(step);
                    t.failures = 0;
                }
                None => {
                    t.count_failure(MFA_MAX_FAILURES, now);
                }
            }
            let write = DirWrite::put(
                MFA_STATE,
                &key,
                current.as_ref().map(|(_, v)| v),
                encode(&t)?,
            );
            if !self.store.dir_write(&[write]).await? {
                continue;
            }
            return match matched {
                Some(_) => Ok(now),
                None if replayed => Err(DirectoryError::Denied(format!(
                    "MFA code for {serial} was already used"
                ))),
                None => Err(DirectoryError::Denied(format!(
                    "wrong MFA code for {serial}{}",
                    if t.locked_until.is_some() {
                        "; the device is now locked"
                    } else {
                        ""
                    }
                ))),
            };
        }
        Err(DirectoryError::Conflict(format!(
            "MFA device {serial} is being used concurrently; try again"
        )))
    }
}
