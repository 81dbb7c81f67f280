//! `POST /admin/users/{name}/disable` and `/enable`. Disabling a user also revokes every session it
//! started, as deleting it does, so credentials already issued stop working at once (on other
//! replicas within the revocation refresh bound); the mint gate refuses its sign-ins from then on.
//! Enabling it again lets it sign in anew; sessions ended by the disabling stay ended.

use super::sessions::revoke_user;
use super::users::user_view;
use super::{directory, root, user_arn, AdminRequest};
use crate::app::App;
use axum::extract::{Path, State};
use axum::response::Response;
use std::sync::Arc;

/// `POST /admin/users/{name}/disable`
pub async fn disable_user(
    State(app): State<Arc<App>>,
    Path(name): Path<String>,
    req: AdminRequest,
) -> Response {
    set_disabled(app, name, req, true).await
}

/// `POST /admin/users/{name}/enable`
pub async fn enable_user(
    State(app): State<Arc<App>>,
    Path(name): Path<String>,
    req: AdminRequest,
) -> Response {
    set_disabled(app, name, req, false).await
}

async fn set_disabled(app: Arc<App>, name: String, req: AdminRequest, disabled: bool) -> Response {
    let action = if disabled {
        "rolegate:DisableUser"
    } else {
        "rolegate:EnableUser"
    };
    root::call_on_user(
        &app,
        &req,
        action,
        user_arn(&app, &name),
        Some(&name),
        || async {
            let d = directory(&app)?;
            let u = d.set_user_disabled(&name, disabled).await?;
            if disabled {
                revoke_user(&app, &u.user_id, "user disabled").await?;
            }
            user_view(&app, d, &u).await
        },
    )
    .await
}
