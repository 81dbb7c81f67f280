//! The policy simulator: `SimulatePrincipalPolicy` (a configured role's identity policies and
//! permissions boundary, plus policies given in the request) and `SimulateCustomPolicy` (only
//! policies given in the request), each evaluated with rolegate's policy engine for every action ×
//! resource asked about.
//!
//! The caller signs for `iam` and must itself be allowed `iam:SimulatePrincipalPolicy` on the role
//! (or `iam:SimulateCustomPolicy` on `*`) by its own session's policies; a role of another account
//! is reported as not found.
//!
//! The simulated request context holds only what the request supplies (`ContextEntries`, and
//! `ResourceOwner` as `aws:ResourceAccount`), plus, when simulating a role, the principal keys
//! `aws:PrincipalArn`, `aws:PrincipalAccount` and `aws:PrincipalType`; condition keys the policies
//! look at but the context lacks are reported in `MissingContextValues`, as IAM does. The principal
//! that resource-policy `Principal` elements are matched against is `CallerArn` when given, else
//! the simulated role. `ContextEntries` may name any key, those describing a session included
//! (keys that [`crate::authz::context::reserved`] keeps from services asking `/v1/authorize`): a
//! simulation grants nothing, and IAM's simulator takes such keys from the request too.
//!
//! A resource policy combines with the simulated caller's policies by the same rule as every
//! decision (`policy::evaluate`): within the caller's account as AWS does within one account, across
//! accounts only when both sides allow. The resource's account is its ARN's account field, else
//! `ResourceOwner`, else — as IAM's simulator assumes — the caller's own (`CallerArn`'s account, or
//! the simulated role's).
//!
//! Statement positions (`StartPosition`/`EndPosition`) are given for policies whose text is in the
//! request: lines count from 1 and columns from 1, each position being the one just after the
//! statement's opening or closing brace (IAM's convention). They are found by scanning the text for
//! the elements of its top-level `Statement`. Policies from the configuration are kept parsed, not
//! as text, so their statements carry no positions.

mod authorize;
mod context;
mod eval;
mod params;
mod positions;
mod principal;
mod response;
#[cfg(test)]
mod tests;

use crate::app::App;
use crate::audit::AuditEvent;
use crate::credentials::OpenSession;
use crate::iam::IamAction;
use crate::policy::ContextValue;
use crate::query::params::Params;
use crate::query::{QueryError, QueryRequest};
use authorize::{authenticate, authorize};
use eval::Simulation;
use params::{check_length, Common};
use principal::{arn_account, caller_keys, caller_principal, parse_source_arn, SimulatedRole};
use response::render;
use std::sync::Arc;

/// `SimulatePrincipalPolicy` or `SimulateCustomPolicy`: the caller is authenticated, the request
/// read and authorized, and the simulation run.
pub async fn simulate(
    app: &Arc<App>,
    req: &QueryRequest<'_>,
    params: &Params,
    ev: &mut AuditEvent,
    action: IamAction,
) -> Result<String, QueryError> {
    let caller = authenticate(app, req, ev).await?;
    let (common, marker, role) = match action {
        IamAction::SimulatePrincipalPolicy => {
            let (common, marker, role) = principal_request(app, req, &caller, params, ev).await?;
            (common, marker, Some(role))
        }
        IamAction::SimulateCustomPolicy => {
            let common = Common::parse(params, true)?;
            let marker = common.offset()?;
            authorize(app, req, &caller, "iam:SimulateCustomPolicy", "*", ev).await?;
            (common, marker, None)
        }
    };
    let page = simulation(app, common, marker, role).run();
    Ok(render(action.name(), &page, req.request_id))
}

/// What `SimulatePrincipalPolicy` asks (its parameters, the first result, the role simulated),
/// once the caller is authorized on the role.
async fn principal_request(
    app: &App,
    req: &QueryRequest<'_>,
    caller: &OpenSession,
    params: &Params,
    ev: &mut AuditEvent,
) -> Result<(Common, usize, SimulatedRole), QueryError> {
    let source_arn = params.required("PolicySourceArn", "policySourceArn")?;
    check_length(source_arn, "policySourceArn", 20, 2048)?;
    let target = parse_source_arn(source_arn)?;
    let common = Common::parse(params, false)?;
    let marker = common.offset()?;

    let (role, session) = target.role(app);
    // Authorized on the role (a session ARN stands for its role); on the ARN as given when it
    // names nothing, so that the answer for an unknown entity needs the same permission.
    let resource = role.map_or(source_arn, |r| r.arn.as_str());
    ev.role_arn = Some(resource.to_string());
    authorize(
        app,
        req,
        caller,
        "iam:SimulatePrincipalPolicy",
        resource,
        ev,
    )
    .await?;
    let role = match role {
        Some(r) if r.account == caller.principal.account() => r,
        Some(r) => {
            return Err(target.not_found().because(format!(
                "role {} belongs to account {}, not to the caller's account {}",
                r.arn,
                r.account,
                caller.principal.account()
            )))
        }
        None => {
            return Err(target
                .not_found()
                .because(format!("{source_arn} is not a configured role")))
        }
    };

    let simulated = SimulatedRole::new(role, session.map(|s| (source_arn, s)));
    Ok((common, marker, simulated))
}

/// The simulation the parameters ask for, from result `marker` on, of `role` when one is
/// simulated. The policies are the role's, then those in the request (whose permissions boundary
/// replaces the role's), then the resource policy. A `CallerArn` is the principal that resource
/// policies see and names the caller's account; its principal keys are used only when no role is
/// simulated (a role keeps its own).
fn simulation(app: &App, common: Common, marker: usize, role: Option<SimulatedRole>) -> Simulation {
    let caller = common.caller_arn.as_deref();
    let mut principal = caller.map(|arn| caller_principal(app, arn));
    let mut principal_account = caller.and_then(arn_account).map(String::from);
    let (mut sources, mut keys, boundary) = match role {
        Some(r) => {
            principal = principal.or(Some(r.principal));
            principal_account = principal_account.or(Some(r.account));
            (r.policies, r.keys, common.boundary.or(r.boundary))
        }
        None => {
            let keys = caller.map_or_else(Vec::new, |arn| caller_keys(app, arn));
            (Vec::new(), keys, common.boundary)
        }
    };
    sources.extend(common.inputs);
    sources.extend(boundary);
    sources.extend(common.resource_policy);
    if let Some(owner) = &common.resource_owner {
        keys.push((
            "aws:ResourceAccount".into(),
            ContextValue::Single(owner.clone()),
        ));
    }
    keys.extend(common.entries);
    Simulation {
        sources,
        actions: common.actions,
        resources: common.resources,
        resources_given: common.resources_given,
        principal,
        principal_account,
        resource_owner: common.resource_owner,
        keys,
        max_items: common.max_items,
        marker,
    }
}
