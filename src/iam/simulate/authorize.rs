//! The signed caller: who it is, and whether its own session's policies allow it to simulate.

use crate::app::App;
use crate::audit::AuditEvent;
use crate::authn::authenticate_for;
use crate::authz::decide::{decide, Question};
use crate::credentials::{OpenSession, SessionClaims};
use crate::iam::SIGNING_NAME;
use crate::query::{QueryError, QueryRequest};
use std::sync::Arc;

/// Whether the caller's own policies allow it `action` on `resource`, as [`decide`] answers for
/// every signed caller; a denial is `AccessDenied`, its reason in the audit event.
pub(super) async fn authorize(
    app: &App,
    req: &QueryRequest<'_>,
    caller: &SessionClaims,
    action: &str,
    resource: &str,
    ev: &mut AuditEvent,
) -> Result<(), QueryError> {
    let q =
        Question::new(caller, action, resource).from_address(req.source_ip, req.secure_transport);
    let verdict = decide(app, q).await?;
    if verdict.allowed() {
        return Ok(());
    }
    let reason = verdict.audit_denial(ev);
    let why = if verdict.explicit_deny() {
        "with an explicit deny in an identity-based policy".to_string()
    } else {
        format!("because no identity-based policy allows the {action} action")
    };
    Err(QueryError::access_denied(format!("{} {why}", verdict.denial_message())).because(reason))
}

/// The caller's session, from a request signed for `iam`, recorded in the audit event.
pub(super) async fn authenticate(
    app: &App,
    req: &QueryRequest<'_>,
    ev: &mut AuditEvent,
) -> Result<Arc<OpenSession>, QueryError> {
    let caller = authenticate_for(app, req, ev, SIGNING_NAME).await?;
    ev.principal = Some(caller.principal.arn());
    ev.access_key_id = Some(caller.access_key_id.clone());
    if let Some(f) = &caller.federation {
        ev.provider = Some(f.provider_arn.clone());
        ev.subject = Some(f.subject.clone());
    }
    Ok(caller)
}
