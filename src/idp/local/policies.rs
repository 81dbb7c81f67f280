//! Policies of users and groups: inline documents (which must parse) and attached managed policy
//! ARNs, and the list of policies that apply to a user through itself and its groups.

use super::{key_of, Directory, DirectoryError, Group, Holder, PolicySource, Result, User, GROUP};
use crate::policy::{Policy, PolicyKind};

impl Directory {
    /// Adds or replaces an inline policy of a user or group; the document must parse.
    pub async fn put_policy(&self, holder: Holder<'_>, name: &str, document: &str) -> Result<()> {
        if name.is_empty() || name.len() > 128 || !name.chars().all(crate::config::is_iam_name_char)
        {
            return Err(DirectoryError::Invalid(format!(
                "policy name '{name}' must be 1-128 characters of [A-Za-z0-9_+=,.@-]"
            )));
        }
        Policy::parse(document, PolicyKind::Inline)
            .map_err(|e| DirectoryError::Invalid(format!("policy {name}: {e}")))?;
        let doc = document.to_string();
        match holder {
            Holder::User(u) => {
                self.update_user(u, |user| {
                    user.policies.insert(name.to_string(), doc.clone());
                    Ok(((), Vec::new()))
                })
                .await
            }
            Holder::Group(g) => {
                self.update_group(g, |group| {
                    group.policies.insert(name.to_string(), doc.clone());
                    Ok(())
                })
                .await
            }
        }
    }

    /// Removes an inline policy.
    pub async fn delete_policy(&self, holder: Holder<'_>, name: &str) -> Result<()> {
        let missing = || DirectoryError::NotFound(format!("policy {name} is not attached"));
        match holder {
            Holder::User(u) => {
                self.update_user(u, |user| {
                    user.policies
                        .remove(name)
                        .map(|_| ((), Vec::new()))
                        .ok_or_else(missing)
                })
                .await
            }
            Holder::Group(g) => {
                self.update_group(g, |group| {
                    group.policies.remove(name).map(|_| ()).ok_or_else(missing)
                })
                .await
            }
        }
    }

    /// Attaches (`attach`) or detaches a managed policy by ARN. The caller checks that the ARN names
    /// a managed policy of the directory's account.
    pub async fn set_managed_policy(
        &self,
        holder: Holder<'_>,
        arn: &str,
        attach: bool,
    ) -> Result<()> {
        let apply = |list: &mut Vec<String>| -> Result<()> {
            let present = list.iter().any(|a| a == arn);
            match (attach, present) {
                (true, false) => {
                    if list.len() >= crate::config::MAX_MANAGED_PER_ROLE {
                        return Err(DirectoryError::Conflict(format!(
                            "at most {} managed policies may be attached",
                            crate::config::MAX_MANAGED_PER_ROLE
                        )));
                    }
                    list.push(arn.to_string());
                }
                (false, true) => list.retain(|a| a != arn),
                (false, false) => {
                    return Err(DirectoryError::NotFound(format!(
                        "policy {arn} is not attached"
                    )))
                }
                (true, true) => {}
            }
            Ok(())
        };
        match holder {
            Holder::User(u) => {
                self.update_user(u, |user| {
                    apply(&mut user.managed_policy_arns).map(|()| ((), Vec::new()))
                })
                .await
            }
            Holder::Group(g) => {
                self.update_group(g, |group| apply(&mut group.managed_policy_arns))
                    .await
            }
        }
    }

    /// The policy documents that apply to a user: its own (inline, then managed ARNs) and those of
    /// each of its groups, as (label, inline text or managed ARN, is managed). Groups are read
    /// through the cache of the request path (see `records`): a change made by this process is
    /// seen at once, one made by another replica within [`CACHE_BOUND`](super::CACHE_BOUND).
    pub async fn policies_of(&self, user: &User) -> Result<Vec<PolicySource>> {
        let mut out = Vec::new();
        for (n, d) in &user.policies {
            out.push(PolicySource::Inline {
                label: format!("user {} policy {n}", user.name),
                document: d.clone(),
            });
        }
        for a in &user.managed_policy_arns {
            out.push(PolicySource::Managed(a.clone()));
        }
        for g in &user.groups {
            let Some(group) = self.cached_read::<Group>(GROUP, &key_of(g)).await? else {
                continue;
            };
            for (n, d) in &group.policies {
                out.push(PolicySource::Inline {
                    label: format!("group {} policy {n}", group.name),
                    document: d.clone(),
                });
            }
            for a in &group.managed_policy_arns {
                if !out
                    .iter()
                    .any(|p| matches!(p, PolicySource::Managed(x) if x == a))
                {
                    out.push(PolicySource::Managed(a.clone()));
                }
            }
        }
        Ok(out)
    }
}
