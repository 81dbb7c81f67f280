//! `AssumeRole`: a signed-in session takes on another role.

use super::caller::with_mfa;
use super::mint::{
    finish, mint, refused, role_session, start, write_assumed_role_user, write_credentials,
    write_packed_size, Mint,
};
use super::session::{check_policy_arns_exist, check_tag_set, packed_percent, session_policy};
use crate::app::App;
use crate::audit::AuditEvent;
use crate::authn as auth;
use crate::authz::context::request_tag_keys;
use crate::authz::decide::{decide, Question};
use crate::authz::denial::encode_denial;
use crate::authz::gate;
use crate::credentials::{SessionClaims, Tag};
use crate::policy::{self, ContextValue, Effect, RequestContext};
use crate::query::params::{self, Params};
use crate::query::{QueryError, QueryRequest};
use serde_json::Value;
use std::sync::Arc;

/// Longest role-chaining session.
const CHAINED_MAX_SECONDS: i64 = 3600;

/// An `AccessDenied` carrying an encoded explanation, with the explanation in the audit event.
#[allow(clippy::too_many_arguments)]
fn denial(
    app: &App,
    caller: &SessionClaims,
    ctx: &RequestContext,
    effect: Effect,
    explanation: &policy::Explanation,
    base: QueryError,
    reason: String,
    ev: &mut AuditEvent,
) -> QueryError {
    let ex = serde_json::to_value(explanation).unwrap_or(Value::Null);
    let encoded = encode_denial(app, caller, ctx, effect == Effect::ExplicitDeny, &ex);
    ev.explanation = Some(ex);
    let mut e = base.because(reason);
    e.message = format!(
        "{} Encoded authorization failure message: {encoded}",
        e.message
    );
    e
}

/// `AssumeRole`: a signed-in session takes on another role (role chaining: at most one hour).
pub async fn assume_role(
    app: &Arc<App>,
    req: &QueryRequest<'_>,
    params: &Params,
    ev: &mut AuditEvent,
) -> Result<String, QueryError> {
    let (role_arn, session_name) = super::requested_role_session(params, ev)?;
    params::check_role_arn(role_arn)?;
    params::check_name(session_name, "roleSessionName")?;
    let duration = params::duration(params.get("DurationSeconds")?, 900, 43_200)?;
    let external_id = params.get("ExternalId")?;
    if let Some(x) = external_id {
        params::check_external_id(x)?;
    }
    let requested_si = params.get("SourceIdentity")?;
    if let Some(si) = requested_si {
        params::check_source_identity(si)?;
    }
    let request_pairs = params::tags(params)?;
    let keys: Vec<&str> = request_pairs.iter().map(|(k, _)| k.as_str()).collect();
    let mut tags: Vec<Tag> = request_pairs
        .iter()
        .map(|(k, v)| Tag {
            key: k.clone(),
            value: v.clone(),
        })
        .collect();
    check_tag_set(&tags)?;
    let requested_transitive: Vec<String> = params
        .list("TransitiveTagKeys", "")?
        .into_iter()
        .map(String::from)
        .collect();
    for k in &requested_transitive {
        if !tags.iter().any(|t| &t.key == k) {
            return Err(QueryError::invalid_parameter(format!(
                "Transitive tag key {k} is not one of the session tags"
            )));
        }
    }
    let sp = session_policy(params)?;
    let mfa = params::mfa(params)?;

    let caller = auth::authenticate(app, req, ev).await?;
    // Written once per open session (authentication's rate limit already asked for it).
    ev.principal = Some(caller.principal_arn().to_owned());
    if let Some(f) = &caller.federation {
        ev.provider = Some(f.provider_arn.clone());
        ev.subject = Some(f.subject.clone());
    }
    let admission = gate::admit_session(app, &caller).await.map_err(|e| {
        refused(e, || {
            QueryError::access_denied(format!(
                "User: {} is not authorized to perform: sts:AssumeRole on resource: {role_arn}",
                caller.principal.arn()
            ))
        })
    })?;
    let caller = match &mfa {
        Some((serial, code)) => with_mfa(app, caller, serial, code).await?,
        None => caller,
    };
    let denied = || {
        QueryError::access_denied(format!(
            "User: {} is not authorized to perform: sts:AssumeRole on resource: {role_arn}",
            caller.principal.arn()
        ))
    };
    let Some(role) = app.config.role(role_arn) else {
        return Err(denied().because(format!("role {role_arn} does not exist")));
    };
    check_policy_arns_exist(app, &sp, role)?;
    // Role chaining: the calling session is itself a role session, capped at one hour. A directory
    // user (long-term key or its session token) gets up to the role's maximum.
    let chained = caller.principal.role_arn().is_some();
    let duration = duration.unwrap_or(3600);
    if chained && duration > CHAINED_MAX_SECONDS {
        return Err(QueryError::validation_msg(
            "The requested DurationSeconds exceeds the 1 hour session limit for roles assumed by role chaining.",
        ));
    }
    if duration > i64::from(role.max_session_duration) {
        return Err(QueryError::validation_msg(
            "The requested DurationSeconds exceeds the MaxSessionDuration set for this role.",
        ));
    }
    // Transitive tags of the calling session pass on and cannot be overridden.
    let mut transitive = requested_transitive.clone();
    for k in &caller.transitive_tag_keys {
        if let Some(t) = caller.tags.iter().find(|t| &t.key == k) {
            if tags.iter().any(|r| r.key.eq_ignore_ascii_case(k)) {
                return Err(QueryError::invalid_parameter(format!(
                    "Tag key {k} is transitive from the calling session and cannot be set again"
                )));
            }
            tags.push(t.clone());
            transitive.push(k.clone());
        }
    }
    check_tag_set(&tags)?;
    let source_identity = match (&caller.source_identity, requested_si) {
        (Some(have), Some(want)) if have != want => {
            return Err(QueryError::validation_msg(format!(
                "SourceIdentity cannot be changed once set: the calling session has '{have}'"
            )))
        }
        (Some(have), _) => Some(have.clone()),
        (None, want) => want.map(String::from),
    };
    let percent = packed_percent(&sp, &tags)?;

    let request_tags: Vec<(String, String)> = tags
        .iter()
        .filter(|t| keys.contains(&t.key.as_str()))
        .map(|t| (t.key.clone(), t.value.clone()))
        .collect();
    // What only this request says, in the context of every check below.
    let mut facts = vec![(
        "sts:RoleSessionName".to_string(),
        ContextValue::Single(session_name.to_string()),
    )];
    if let Some(x) = external_id {
        facts.push(("sts:ExternalId".into(), ContextValue::Single(x.to_string())));
    }
    if let Some(si) = requested_si {
        facts.push((
            "sts:SourceIdentity".into(),
            ContextValue::Single(si.to_string()),
        ));
    }
    facts.extend(request_tag_keys(&request_tags));
    if !requested_transitive.is_empty() {
        facts.push((
            "sts:TransitiveTagKeys".into(),
            ContextValue::Multi(requested_transitive.clone()),
        ));
    }
    let mut actions = vec!["sts:AssumeRole"];
    if !request_tags.is_empty() {
        actions.push("sts:TagSession");
    }
    if requested_si.is_some() {
        actions.push("sts:SetSourceIdentity");
    }
    // The trust policy is the role's resource policy: it combines with the caller's own policies
    // by the rule every resource policy follows (the decision core with the role's account as the
    // resource's). Within one account a statement naming the calling session's ARN is enough on
    // its own; one naming the caller's role ARN (or any principal) is still limited by the
    // caller's permissions boundary and session policies; one naming the account delegates to the
    // caller's policies. Across accounts both the caller's policies and the trust policy must
    // allow. An explicit deny anywhere refuses.
    let resource_account =
        policy::ResourceAccount::of(caller.principal.account(), Some(&role.account));
    for action in actions {
        let mut q = Question::new(&caller, action, &role.arn).with_resource_policy(
            "trust",
            Some(&role.trust_policy),
            resource_account,
        );
        q = q.from_address(req.source_ip, req.secure_transport);
        q.facts = facts.clone();
        let verdict = decide(app, q).await?;
        let ctx = &verdict.context;
        let trust = policy::evaluate_trust(&role.trust_policy, ctx);
        if trust.effect != Effect::Allow {
            let explanation = policy::explain_trust(&role.trust_policy, ctx);
            let reason = format!(
                "trust policy of {} does not allow {action}: {explanation}",
                role.arn
            );
            return Err(denial(
                app,
                &caller,
                ctx,
                trust.effect,
                &explanation,
                denied(),
                reason,
                ev,
            ));
        }
        if !verdict.allowed() {
            let explanation = verdict.explain();
            let reason = format!(
                "the policies of {} do not allow {action} on {}: {explanation}",
                caller.principal.arn(),
                role.arn
            );
            return Err(denial(
                app,
                &caller,
                ctx,
                verdict.decision.effect,
                &explanation,
                denied(),
                reason,
                ev,
            ));
        }
    }

    let (claims, token) = mint(
        app,
        &admission,
        Mint {
            principal: role_session(role, session_name),
            duration,
            source_identity: source_identity.clone(),
            tags,
            transitive,
            policy: &sp,
            federation: caller.federation.clone(),
            mfa_time: caller.mfa_time,
            chained,
            origin_user: caller.origin_user.clone(),
            parents: caller.parents_of_child(),
        },
        ev,
    )?;
    let op = "AssumeRole";
    let mut w = start(op);
    write_credentials(&mut w, &claims, &token);
    write_assumed_role_user(&mut w, &claims);
    write_packed_size(&mut w, &sp, &claims, percent);
    w.leaf_opt("SourceIdentity", source_identity.as_deref());
    Ok(finish(w, op, req.request_id))
}
