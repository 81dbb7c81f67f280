//! Groups: create, list, delete, members and policies; and the explanation of assignment rules.

use super::route::{Call, Work};
use super::users::{delete_policy, put_policy, NewUser};
use super::AdminError;
use crate::idp::local::Holder;
use axum::http::StatusCode;
use serde::Deserialize;
use serde_json::{json, Value};

pub(super) fn create_group(c: &Call) -> Work<'_> {
    Box::pin(async move {
        let b: NewUser = c.json()?;
        let g = c
            .directory()?
            .create_group(&b.name, b.path.as_deref())
            .await?;
        Ok(json!({"name": g.name, "group_id": g.group_id}))
    })
}

pub(super) fn list_groups(c: &Call) -> Work<'_> {
    Box::pin(async move {
        let groups = c.directory()?.groups().await?;
        Ok(json!(groups
            .iter()
            .map(|g| json!({"name": g.name, "group_id": g.group_id,
            "policies": g.policies.keys().collect::<Vec<_>>(),
            "managed_policy_arns": g.managed_policy_arns}))
            .collect::<Vec<_>>()))
    })
}

/// `GET /admin/groups/{group}`: the group, its inline policies with their documents, and its
/// members (as IAM's GetGroup).
pub(super) fn get_group(c: &Call) -> Work<'_> {
    Box::pin(async move {
        let d = c.directory()?;
        let g = d.group(c.param("group")?).await?;
        let members: Vec<Value> = d
            .group_members(&g.name)
            .await?
            .iter()
            .map(|u| json!({"name": u.name, "arn": u.arn(d.account()), "active": u.active()}))
            .collect();
        Ok(json!({
            "name": g.name,
            "group_id": g.group_id,
            "arn": crate::policy::arn::group(d.account(), &g.name),
            "path": g.path,
            "created_at": g.created_at,
            "policies": g.policies,
            "managed_policy_arns": g.managed_policy_arns,
            "members": members,
        }))
    })
}

pub(super) fn delete_group(c: &Call) -> Work<'_> {
    Box::pin(async move {
        let group = c.param("group")?;
        c.directory()?.delete_group(group).await?;
        Ok(json!({"deleted": group}))
    })
}

pub(super) fn add_member(c: &Call) -> Work<'_> {
    Box::pin(async move {
        let (group, name) = (c.param("group")?, c.param("name")?);
        c.directory()?.add_user_to_group(name, group).await?;
        Ok(json!({"group": group, "added": name}))
    })
}

pub(super) fn remove_member(c: &Call) -> Work<'_> {
    Box::pin(async move {
        let (group, name) = (c.param("group")?, c.param("name")?);
        c.directory()?.remove_user_from_group(name, group).await?;
        Ok(json!({"group": group, "removed": name}))
    })
}

pub(super) fn put_group_policy(c: &Call) -> Work<'_> {
    Box::pin(async move { put_policy(c, Holder::Group(c.param("group")?)).await })
}

pub(super) fn delete_group_policy(c: &Call) -> Work<'_> {
    Box::pin(async move { delete_policy(c, Holder::Group(c.param("group")?)).await })
}

/// An explanation request: which permission sets these claims yield.
#[derive(Deserialize)]
pub struct ExplainBody {
    /// Provider name (or `local`).
    pub provider: String,
    /// The claims or attributes (none: only what the provisioned directory knows).
    #[serde(default)]
    pub claims: serde_json::Map<String, Value>,
    /// The subject at the provider (default: the `sub` claim). For a provider a SCIM client
    /// provisions, the provisioned groups of this person count as the client's `groups` setting
    /// says, also before their first sign-in.
    #[serde(default)]
    pub subject: Option<String>,
    /// For `local`: the user's groups.
    #[serde(default)]
    pub local_groups: Vec<String>,
}

pub(super) fn explain_assignments(c: &Call) -> Work<'_> {
    Box::pin(async move {
        let b: ExplainBody = c.json()?;
        let subject = b
            .subject
            .clone()
            .or_else(|| {
                b.claims
                    .get("sub")
                    .and_then(Value::as_str)
                    .map(String::from)
            })
            .unwrap_or_else(|| "-".to_string());
        let provisioned = c.app.provisioned.groups(&b.provider, &subject);
        let e = crate::mapping::evaluate(
            &c.app.config,
            &crate::mapping::Subject {
                provider: &b.provider,
                subject: &subject,
                claims: &b.claims,
                local_groups: &b.local_groups,
                provisioned_groups: provisioned.as_deref(),
            },
        )
        .map_err(|e| AdminError::new(StatusCode::BAD_REQUEST, e.to_string()))?;
        serde_json::to_value(e)
            .map_err(|e| AdminError::new(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()))
    })
}
