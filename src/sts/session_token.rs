//! `GetSessionToken`.

use super::caller::{long_term_caller, with_mfa};
use super::mint::{finish, mint, start, write_credentials, Mint};
use super::session::SessionPolicy;
use crate::app::App;
use crate::audit::AuditEvent;
use crate::query::params::{self, Params};
use crate::query::{QueryError, QueryRequest};
use std::sync::Arc;

/// `GetSessionToken`: temporary credentials of the calling directory user, with MFA if a code is
/// given. Only long-term credentials may call it.
pub async fn get_session_token(
    app: &Arc<App>,
    req: &QueryRequest<'_>,
    params: &Params,
    ev: &mut AuditEvent,
) -> Result<String, QueryError> {
    let duration = params::duration(params.get("DurationSeconds")?, 900, 129_600)?;
    let mfa = params::mfa(params)?;
    let (caller, admission) = long_term_caller(app, req, "GetSessionToken", ev).await?;
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
            parents: caller.parents_of_child(),
        },
        ev,
    )?;
    let op = "GetSessionToken";
    let mut w = start(op);
    write_credentials(&mut w, &claims, &token);
    Ok(finish(w, op, req.request_id))
}
