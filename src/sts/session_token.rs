//! `GetSessionToken`.

use super::mfa::with_mfa;
use super::mint::{finish, mint, refused, start, write_credentials, Mint};
use super::session::SessionPolicy;
use crate::app::App;
use crate::audit::AuditEvent;
use crate::authn as auth;
use crate::authz::gate;
use crate::query::params::{self, Params};
use crate::query::{QueryRequest, StsError};
use std::sync::Arc;

/// `GetSessionToken`: temporary credentials of the calling directory user, with MFA if a code is
/// given. Only long-term credentials may call it.
pub async fn get_session_token(
    app: &Arc<App>,
    req: &QueryRequest<'_>,
    params: &Params,
    ev: &mut AuditEvent,
) -> Result<String, StsError> {
    let duration = params::duration(params.get("DurationSeconds")?, 900, 129_600)?;
    let mfa = params::mfa(params)?;
    let caller = auth::authenticate(app, req, ev).await?;
    if !auth::is_long_term(&caller) {
        return Err(StsError::access_denied(
            "Cannot call GetSessionToken with session credentials",
        )
        .because(format!(
            "{} called with a session token",
            caller.principal.arn()
        )));
    }
    let admission = gate::admit_session(app, &caller).await.map_err(|e| {
        refused(e, || {
            StsError::access_denied(format!(
                "User: {} is not authorized to perform: sts:GetSessionToken",
                caller.principal.arn()
            ))
        })
    })?;
    let caller = match &mfa {
        Some((serial, code)) => with_mfa(app, caller, serial, code).await?,
        None => caller,
    };
    let (claims, token) = mint(
        app,
        &admission,
        Mint {
            principal: caller.principal.clone(),
            duration: duration.unwrap_or(43_200),
            source_identity: None,
            tags: Vec::new(),
            transitive: Vec::new(),
            policy: &SessionPolicy::none(),
            federation: None,
            mfa_time: caller.mfa_time,
            chained: false,
            origin_user: caller.origin_user.clone(),
        },
        ev,
    )?;
    let op = "GetSessionToken";
    let mut w = start(op);
    write_credentials(&mut w, &claims, &token);
    Ok(finish(w, op, req.request_id))
}
