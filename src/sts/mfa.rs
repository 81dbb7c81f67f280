//! MFA presented with a signed request (`SerialNumber`, `TokenCode`): only a directory user's
//! device counts.

use crate::app::App;
use crate::credentials::{SessionClaims, SessionPrincipal};
use crate::query::StsError;
use std::sync::Arc;

/// The calling directory user, for actions only users (long-term key or their session) may call.
pub(super) async fn calling_user(
    app: &App,
    caller: &SessionClaims,
) -> Result<crate::idp::local::User, StsError> {
    let user = match (&app.directory, &caller.principal, &caller.origin_user) {
        (Some(d), SessionPrincipal::User { .. }, Some(id)) => d
            .user_by_id(id)
            .await
            .map_err(|e| StsError::directory("reading the directory", &e))?,
        _ => None,
    };
    user.ok_or_else(|| {
        StsError::access_denied(format!(
            "User: {} cannot use an MFA device: it is not a user of the directory",
            caller.principal.arn()
        ))
        .because("MFA was presented by a caller that is not a directory user")
    })
}

/// The caller with MFA: the code must be a valid, unused code of the calling user's device.
pub(super) async fn with_mfa(
    app: &App,
    caller: Arc<crate::credentials::OpenSession>,
    serial: &str,
    code: &str,
) -> Result<Arc<crate::credentials::OpenSession>, StsError> {
    let user = calling_user(app, &caller).await?;
    let Some(d) = &app.directory else {
        return Err(StsError::internal("no directory"));
    };
    use crate::idp::local::DirectoryError;
    match d.verify_totp(&user, serial, code).await {
        Ok(t) => {
            let mut claims = caller.claims().clone();
            claims.mfa_time = Some(t);
            Ok(Arc::new(crate::credentials::OpenSession::new(claims)))
        }
        Err(e @ (DirectoryError::Denied(_) | DirectoryError::Locked { .. })) => {
            Err(StsError::access_denied(
                "MultiFactorAuthentication failed with invalid MFA one time pass code. ",
            )
            .because(e.to_string()))
        }
        Err(e) => Err(StsError::directory("verifying MFA", &e)),
    }
}
