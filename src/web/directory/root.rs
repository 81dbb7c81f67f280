//! The root user in the directory admin API: every change to root (its password, MFA devices,
//! access keys, policies, group memberships, sessions, the record itself) is reserved to root and
//! to the admin token. No policy widens this: a helpdesk grant of `rolegate:*` on
//! `arn:aws:iam::ACCOUNT:user/*`, or on `*`, still stops at root. Reading root (`GetUser`,
//! `ListUsers`) stays under the policies like any other read.
//!
//! **Who is "root itself".** The admin API knows two kinds of caller: the admin bearer token, and a
//! SigV4-signed request, whose caller is a session rolegate issued or a directory user's long-term
//! key. Root holds no access keys (the directory refuses to create them) and signs in only with
//! MFA, so the only SigV4 caller that can be root is a *session* of the root user itself — principal
//! `User` with root's user id, started by root (`origin_user`), with MFA performed (`mfa_time`). A
//! role session root assumed, a federated user, or a session without MFA is not root. No edge
//! issues such a session today (`GetSessionToken` needs a long-term key), so in practice only the
//! admin token acts on root; a root session that passed this check would still need its policies
//! to allow the action, as every SigV4 caller does.

use super::AdminError;
use crate::app::App;
use crate::audit::AuditEvent;
use crate::credentials::{SessionClaims, SessionPrincipal};
use crate::idp::local::ROOT;
use axum::http::StatusCode;

/// The audit reason, and the gist of the answer, when a caller other than root or the admin token
/// targets root.
pub const ROOT_RESERVED: &str =
    "operations on the root user are reserved to root and the admin token";

/// Whether `name` names the root user (user names are case-insensitive).
pub fn is_root(name: &str) -> bool {
    name.eq_ignore_ascii_case(ROOT)
}

/// Whether the session is the root user's own, signed in with MFA (see the module docs).
async fn is_root_itself(app: &App, c: &SessionClaims) -> Result<bool, AdminError> {
    let SessionPrincipal::User { user_id, .. } = &c.principal else {
        return Ok(false);
    };
    if c.origin_user.as_deref() != Some(user_id.as_str()) || c.mfa_time.is_none() {
        return Ok(false);
    }
    let Some(d) = app.directory.as_deref() else {
        return Ok(false);
    };
    Ok(d.user_by_id(user_id).await?.is_some_and(|u| u.root))
}

/// For a SigV4 caller whose call would change user `target`: refused with 403 `AccessDenied`
/// (whatever its policies say) when `target` is root and the caller is not root itself.
pub async fn check_target(
    app: &App,
    caller: &SessionClaims,
    action: &str,
    target: &str,
    ev: &mut AuditEvent,
) -> Result<(), AdminError> {
    if !is_root(target) || is_root_itself(app, caller).await? {
        return Ok(());
    }
    let who = caller.principal.arn();
    ev.error_code = Some("AccessDenied".into());
    ev.reason = Some(format!(
        "{ROOT_RESERVED}: {who} is not the root user signed in with MFA ({action} on root)"
    ));
    Err(AdminError::new(
        StatusCode::FORBIDDEN,
        format!(
            "AccessDenied: User: {who} is not authorized to perform: {action} on the root user: {ROOT_RESERVED}"
        ),
    ))
}
