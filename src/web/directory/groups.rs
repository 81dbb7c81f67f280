//! Groups: create, list, delete, members and policies; and the explanation of assignment rules.

use super::users::{policy_text, NewUser, PolicyBody};
use super::{call, directory, group_arn, root, AdminError, AdminRequest};
use crate::app::App;
use crate::idp::local::Holder;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::Response;
use serde::Deserialize;
use serde_json::{json, Value};
use std::sync::Arc;

pub(super) async fn create_group(State(app): State<Arc<App>>, req: AdminRequest) -> Response {
    let body: Result<NewUser, _> = req.json();
    let name = body.as_ref().map(|b| b.name.clone()).unwrap_or_default();
    call(
        &app,
        &req,
        "rolegate:CreateGroup",
        group_arn(&app, &name),
        || async {
            let b = body?;
            let g = directory(&app)?
                .create_group(&b.name, b.path.as_deref())
                .await?;
            Ok(json!({"name": g.name, "group_id": g.group_id}))
        },
    )
    .await
}

pub(super) async fn list_groups(State(app): State<Arc<App>>, req: AdminRequest) -> Response {
    call(
        &app,
        &req,
        "rolegate:ListGroups",
        group_arn(&app, "*"),
        || async {
            let groups = directory(&app)?.groups().await?;
            Ok(json!(groups
                .iter()
                .map(|g| json!({"name": g.name, "group_id": g.group_id,
                "policies": g.policies.keys().collect::<Vec<_>>(),
                "managed_policy_arns": g.managed_policy_arns}))
                .collect::<Vec<_>>()))
        },
    )
    .await
}

pub(super) async fn delete_group(
    State(app): State<Arc<App>>,
    Path(group): Path<String>,
    req: AdminRequest,
) -> Response {
    call(
        &app,
        &req,
        "rolegate:DeleteGroup",
        group_arn(&app, &group),
        || async {
            directory(&app)?.delete_group(&group).await?;
            Ok(json!({"deleted": group}))
        },
    )
    .await
}

pub(super) async fn add_member(
    State(app): State<Arc<App>>,
    Path((group, name)): Path<(String, String)>,
    req: AdminRequest,
) -> Response {
    root::call_on_user(
        &app,
        &req,
        "rolegate:AddUserToGroup",
        group_arn(&app, &group),
        Some(&name),
        || async {
            directory(&app)?.add_user_to_group(&name, &group).await?;
            Ok(json!({"group": group, "added": name}))
        },
    )
    .await
}

pub(super) async fn remove_member(
    State(app): State<Arc<App>>,
    Path((group, name)): Path<(String, String)>,
    req: AdminRequest,
) -> Response {
    root::call_on_user(
        &app,
        &req,
        "rolegate:RemoveUserFromGroup",
        group_arn(&app, &group),
        Some(&name),
        || async {
            directory(&app)?
                .remove_user_from_group(&name, &group)
                .await?;
            Ok(json!({"group": group, "removed": name}))
        },
    )
    .await
}

pub(super) async fn put_group_policy(
    State(app): State<Arc<App>>,
    Path((group, policy)): Path<(String, String)>,
    req: AdminRequest,
) -> Response {
    call(
        &app,
        &req,
        "rolegate:PutGroupPolicy",
        group_arn(&app, &group),
        || async {
            let b: PolicyBody = req.json()?;
            directory(&app)?
                .put_policy(Holder::Group(&group), &policy, &policy_text(&b))
                .await?;
            Ok(json!({"policy": policy}))
        },
    )
    .await
}

pub(super) async fn delete_group_policy(
    State(app): State<Arc<App>>,
    Path((group, policy)): Path<(String, String)>,
    req: AdminRequest,
) -> Response {
    call(
        &app,
        &req,
        "rolegate:DeleteGroupPolicy",
        group_arn(&app, &group),
        || async {
            directory(&app)?
                .delete_policy(Holder::Group(&group), &policy)
                .await?;
            Ok(json!({"deleted": policy}))
        },
    )
    .await
}

/// An explanation request: which permission sets these claims yield.
#[derive(Deserialize)]
pub struct ExplainBody {
    /// Provider name (or `local`).
    pub provider: String,
    /// The claims or attributes.
    pub claims: serde_json::Map<String, Value>,
    /// For `local`: the user's groups.
    #[serde(default)]
    pub local_groups: Vec<String>,
}

pub(super) async fn explain_assignments(
    State(app): State<Arc<App>>,
    req: AdminRequest,
) -> Response {
    call(
        &app,
        &req,
        "rolegate:ExplainAssignments",
        "arn:aws:rolegate:::assignments".into(),
        || async {
            let b: ExplainBody = req.json()?;
            let subject = b
                .claims
                .get("sub")
                .and_then(Value::as_str)
                .unwrap_or("-")
                .to_string();
            let e = crate::mapping::evaluate(
                &app.config,
                &crate::mapping::Subject {
                    provider: &b.provider,
                    subject: &subject,
                    claims: &b.claims,
                    local_groups: &b.local_groups,
                },
            )
            .map_err(|e| AdminError::new(StatusCode::BAD_REQUEST, e.to_string()))?;
            serde_json::to_value(e)
                .map_err(|e| AdminError::new(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()))
        },
    )
    .await
}
