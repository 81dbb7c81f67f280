//! `POST /admin/users/{name}/disable` and `/enable`. Disabling a user also revokes every session it
//! started, as deleting it does, so credentials already issued stop working at once (on other
//! replicas within the revocation refresh bound); the mint gate refuses its sign-ins from then on.
//! Enabling it again lets it sign in anew; sessions ended by the disabling stay ended. Unlocking
//! lifts the locks that repeated wrong passwords or MFA codes put on a user's sign-in.

use super::route::{Call, Work};
use super::sessions::revoke_user;
use super::users::user_view;
use super::AdminError;
use serde_json::Value;

/// `POST /admin/users/{name}/disable`
pub(super) fn disable_user(c: &Call) -> Work<'_> {
    Box::pin(set_disabled(c, true))
}

/// `POST /admin/users/{name}/enable`
pub(super) fn enable_user(c: &Call) -> Work<'_> {
    Box::pin(set_disabled(c, false))
}

async fn set_disabled(c: &Call, disabled: bool) -> Result<Value, AdminError> {
    let d = c.directory()?;
    let u = d.set_user_disabled(c.param("name")?, disabled).await?;
    if disabled {
        revoke_user(&c.app, &u.user_id, "user disabled").await?;
    }
    user_view(&c.app, d, &u).await
}

/// `POST /admin/users/{name}/unlock`: lifts the locks of repeated failures (password and MFA).
pub(super) fn unlock_user(c: &Call) -> Work<'_> {
    Box::pin(async move {
        let d = c.directory()?;
        let was = d.unlock_user(c.param("name")?).await?;
        let u = d.user(c.param("name")?).await?;
        let mut view = user_view(&c.app, d, &u).await?;
        view["unlocked"] = serde_json::to_value(was).unwrap_or_default();
        Ok(view)
    })
}
