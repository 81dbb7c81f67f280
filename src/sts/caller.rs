//! What the actions a directory user signs ask of their caller: a long-term key
//! (`GetSessionToken`, `GetFederationToken`), and MFA presented with the request (`SerialNumber`,
//! `TokenCode`), where only a directory user's device counts.

use super::mint::refused;
use crate::app::App;
use crate::audit::AuditEvent;
use crate::authn as auth;
use crate::authz::gate::{self, Admission};
use crate::credentials::OpenSession;
use crate::credentials::{SessionClaims, SessionPrincipal};
use crate::query::QueryError;
use crate::query::QueryRequest;
use std::sync::Arc;

/// The calling directory user, for actions only users (long-term key or their session) may call.
pub(super) async fn calling_user(
    app: &App,
    caller: &SessionClaims,
) -> Result<crate::idp::local::User, QueryError> {
    let user = match (&app.directory, &caller.principal, &caller.origin_user) {
        (Some(d), SessionPrincipal::User { .. }, Some(id)) => d
            .user_by_id(id)
            .await
            .map_err(|e| QueryError::directory("reading the directory", &e))?,
        _ => None,
    };
    user.ok_or_else(|| {
        QueryError::access_denied(format!(
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
) -> Result<Arc<crate::credentials::OpenSession>, QueryError> {
    let user = calling_user(app, &caller).await?;
    let Some(d) = &app.directory else {
        return Err(QueryError::internal("no directory"));
    };
    use crate::idp::local::DirectoryError;
    match d.verify_totp(&user, serial, code).await {
        Ok(t) => {
            let mut claims = caller.claims().clone();
            claims.mfa_time = Some(t);
            Ok(Arc::new(crate::credentials::OpenSession::new(claims)))
        }
        Err(e @ (DirectoryError::Denied(_) | DirectoryError::Locked { .. })) => {
            Err(QueryError::access_denied(
                "MultiFactorAuthentication failed with invalid MFA one time pass code. ",
            )
            .because(e.to_string()))
        }
        Err(e) => Err(QueryError::directory("verifying MFA", &e)),
    }
}

/// The caller of `op`, which only a long-term key may sign, and the mint gate's word on them.
pub(super) async fn long_term_caller(
    app: &App,
    req: &QueryRequest<'_>,
    op: &str,
    ev: &mut AuditEvent,
) -> Result<(Arc<OpenSession>, Admission), QueryError> {
    let caller = auth::authenticate(app, req, ev).await?;
    if !auth::is_long_term(&caller) {
        return Err(QueryError::access_denied(format!(
            "Cannot call {op} with session credentials"
        ))
        .because(format!(
            "{} called with a session token",
            caller.principal.arn()
        )));
    }
    let admission = gate::admit_session(app, &caller).await.map_err(|e| {
        refused(e, || {
            QueryError::access_denied(format!(
                "User: {} is not authorized to perform: sts:{op}",
                caller.principal.arn()
            ))
        })
    })?;
    Ok((caller, admission))
}
