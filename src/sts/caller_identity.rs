//! `GetCallerIdentity`.

use super::mint::{finish, start};
use crate::app::App;
use crate::audit::AuditEvent;
use crate::authn as auth;
use crate::query::{QueryError, QueryRequest};
use std::sync::Arc;

/// `GetCallerIdentity`: who signed this request. Never denied for a valid signature, as in AWS.
pub async fn get_caller_identity(
    app: &Arc<App>,
    req: &QueryRequest<'_>,
    ev: &mut AuditEvent,
) -> Result<String, QueryError> {
    // `authenticate` has named the principal and access key in the audit event already.
    let caller = auth::authenticate(app, req, ev).await?;
    ev.role_arn = caller.role_arn().map(str::to_owned);
    let op = "GetCallerIdentity";
    let mut w = start(op);
    w.leaf("Arn", caller.principal_arn());
    w.leaf("UserId", caller.user_id());
    w.leaf("Account", caller.principal.account());
    Ok(finish(w, op, req.request_id))
}
