//! Disabling and enabling a user. A disabled user keeps its name, id, groups, policies, keys and
//! devices, so enabling it again restores it as it was; while disabled it signs in with nothing:
//! password sign-ins and its access keys are refused here and in the STS, and the mint gate refuses
//! every sign-in and session it started.

use super::{Directory, DirectoryError, Result, User};

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
