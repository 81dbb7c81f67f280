//! `GetFederationToken`.

use super::caller::long_term_caller;
use super::mint::{finish, mint, start, write_credentials, write_packed_size, Mint};
use super::session::{check_tag_set, packed_percent, session_policy};
use crate::app::App;
use crate::audit::AuditEvent;
use crate::authz::decide::{decide, Question};
use crate::credentials::{SessionPrincipal, Tag};
use crate::query::params::{self, Params};
use crate::query::{QueryError, QueryRequest};
use std::sync::Arc;

/// `GetFederationToken`: credentials for a federated user whose permissions are the intersection of
/// the calling directory user's policies and the session policies passed (none passed: nothing).
pub async fn get_federation_token(
    app: &Arc<App>,
    req: &QueryRequest<'_>,
    params: &Params,
    ev: &mut AuditEvent,
) -> Result<String, QueryError> {
    let name = params.required("Name", "name")?;
    let n = name.chars().count();
    if !(2..=32).contains(&n) {
        return Err(QueryError::validation(
            name,
            "name",
            "Member must have length between 2 and 32",
        ));
    }
    params::check_name(name, "name")?;
    ev.session_name = Some(name.to_string());
    let duration = params::duration(params.get("DurationSeconds")?, 900, 129_600)?;
    let sp = session_policy(params)?;
    let tags: Vec<Tag> = params::tags(params)?
        .into_iter()
        .map(|(key, value)| Tag { key, value })
        .collect();
    check_tag_set(&tags)?;
    let (caller, admission) = long_term_caller(app, req, "GetFederationToken", ev).await?;
    let account = caller.principal.account().to_string();
    for arn in &sp.arns {
        if app
            .config
            .managed_policy(arn)
            .is_none_or(|m| m.account != account)
        {
            return Err(QueryError::invalid_parameter(format!(
                "Policy {arn} does not exist or is not attachable."
            ))
            .because(format!(
                "managed policy {arn} is not defined in account {account}"
            )));
        }
    }
    let percent = packed_percent(&sp, &tags)?;
    let federated = SessionPrincipal::FederatedUser {
        account: account.clone(),
        name: name.to_string(),
    };
    let federated_arn = federated.arn();
    let q = Question::new(&caller, "sts:GetFederationToken", &federated_arn)
        .from_address(req.source_ip, req.secure_transport);
    let verdict = decide(app, q).await?;
    if !verdict.allowed() {
        let reason = verdict.audit_denial(ev);
        return Err(QueryError::access_denied(verdict.denial_message()).because(reason));
    }
    let (claims, token) = mint(
        app,
        &admission,
        Mint {
            principal: federated,
            duration: duration.unwrap_or(43_200),
            source_identity: None,
            tags,
            transitive: Vec::new(),
            policy: &sp,
            federation: None,
            mfa_time: None,
            chained: false,
            origin_user: caller.origin_user.clone(),
            parents: caller.parents_of_child(),
        },
        ev,
    )?;
    let op = "GetFederationToken";
    let mut w = start(op);
    write_credentials(&mut w, &claims, &token);
    w.open("FederatedUser");
    w.leaf("FederatedUserId", &claims.principal.user_id());
    w.leaf("Arn", &claims.principal.arn());
    w.close("FederatedUser");
    write_packed_size(&mut w, &sp, &claims, percent);
    Ok(finish(w, op, req.request_id))
}
