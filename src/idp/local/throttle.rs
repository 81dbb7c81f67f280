//! Failure counting and lockout of one credential, kept as a [`Throttle`] record: the password
//! sign-in of a user (kind `login_state`) and its MFA devices (kind `mfa_state`, see `keys`).

use super::{encode, Directory, DirectoryError, Result, Throttle, CAS_ATTEMPTS, LOCK_SECONDS};
use crate::store::DirWrite;

impl Directory {
    /// Refuses while the throttle record `kind`/`key` is locked; `what` names the credential.
    /// Otherwise whether the record counts anything (failures or a lock) that a success resets.
    pub(super) async fn check_lock(
        &self,
        kind: &str,
        key: &str,
        what: &str,
        now: i64,
    ) -> Result<bool> {
        let Some((t, _)) = self.read::<Throttle>(kind, key).await? else {
            return Ok(false);
        };
        if let Some(until) = t.locked_until.filter(|u| *u > now) {
            return Err(DirectoryError::Locked {
                what: what.to_string(),
                until,
            });
        }
        Ok(t.failures > 0 || t.locked_until.is_some())
    }

    pub(super) async fn throttle<T>(
        &self,
        kind: &str,
        key: &str,
        now: i64,
        mut change: impl FnMut(&mut Throttle) -> Result<T>,
    ) -> Result<T> {
        for _ in 0..CAS_ATTEMPTS {
            let current = self.read::<Throttle>(kind, key).await?;
            let mut t = current.as_ref().map(|(t, _)| t.clone()).unwrap_or_default();
            if t.locked_until.is_some_and(|u| u <= now) {
                t.locked_until = None;
                t.failures = 0;
            }
            let out = change(&mut t)?;
            let write = DirWrite::put(kind, key, current.as_ref().map(|(_, v)| v), encode(&t)?);
            if self.store.dir_write(&[write]).await? {
                return Ok(out);
            }
        }
        Err(DirectoryError::Conflict(format!(
            "{kind} {key} is being changed concurrently; try again"
        )))
    }

    /// Counts a failure; `true` if it locked the credential.
    pub(super) async fn record_failure(
        &self,
        kind: &str,
        key: &str,
        max: u32,
        now: i64,
    ) -> Result<bool> {
        self.throttle(kind, key, now, |t| Ok(t.count_failure(max, now)))
            .await
    }
}

impl Throttle {
    /// Counts one failure at `now` ([`count_failure`] with `max` and [`LOCK_SECONDS`]); `true` if
    /// it locked the credential.
    pub(super) fn count_failure(&mut self, max: u32, now: i64) -> bool {
        count_failure(
            (
                &mut self.failures,
                &mut self.first_failure,
                &mut self.locked_until,
            ),
            max,
            LOCK_SECONDS,
            now,
        )
    }
}

/// Counts one failure at `now` of a credential that has had `failures` consecutive ones since
/// `first_failure` and is locked until `locked_until`: a count whose first failure is more than
/// `lock_seconds` old starts again, and the `max`th failure locks the credential for
/// `lock_seconds`. `true` if this failure locked it.
pub fn count_failure(
    (failures, first_failure, locked_until): (&mut u32, &mut i64, &mut Option<i64>),
    max: u32,
    lock_seconds: i64,
    now: i64,
) -> bool {
    if *failures == 0 || now - *first_failure > lock_seconds {
        *failures = 0;
        *first_failure = now;
    }
    *failures += 1;
    if *failures >= max {
        *locked_until = Some(now + lock_seconds);
        return true;
    }
    false
}
