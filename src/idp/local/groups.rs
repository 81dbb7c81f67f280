//! Groups and group membership. A membership is kept on the user (`User::groups`); a group with
//! members cannot be deleted.

use super::{
    check_name, check_path, decode, encode, key_of, random_id, Directory, DirectoryError, Group,
    Result, GROUP,
};
use crate::store::DirWrite;
use std::collections::BTreeMap;

impl Directory {
    /// Creates a group.
    pub async fn create_group(&self, name: &str, path: Option<&str>) -> Result<Group> {
        check_name("group", name)?;
        let path = path.unwrap_or("/");
        check_path(path)?;
        let group = Group {
            name: name.to_string(),
            group_id: random_id("AGPA", 17)?,
            path: path.to_string(),
            created_at: self.now(),
            policies: BTreeMap::new(),
            managed_policy_arns: Vec::new(),
        };
        if self
            .store
            .dir_write(&[DirWrite::insert(GROUP, &key_of(name), encode(&group)?)])
            .await?
        {
            Ok(group)
        } else {
            Err(DirectoryError::Conflict(format!(
                "group {name} already exists"
            )))
        }
    }

    /// The group called `name`.
    pub async fn group(&self, name: &str) -> Result<Group> {
        Ok(self.group_record(name).await?.0)
    }

    /// Every group, by name.
    pub async fn groups(&self) -> Result<Vec<Group>> {
        self.store
            .dir_list(GROUP)
            .await?
            .iter()
            .map(|(k, v)| decode(GROUP, k, v))
            .collect()
    }

    /// Deletes a group that has no members.
    pub async fn delete_group(&self, name: &str) -> Result<()> {
        let (_, v) = self.group_record(name).await?;
        let members: Vec<String> = self
            .group_members(name)
            .await?
            .into_iter()
            .map(|u| u.name)
            .collect();
        if !members.is_empty() {
            return Err(DirectoryError::Conflict(format!(
                "group {name} still has members: {}",
                members.join(", ")
            )));
        }
        if self
            .store
            .dir_write(&[DirWrite::delete(GROUP, &key_of(name), v.version)])
            .await?
        {
            Ok(())
        } else {
            Err(DirectoryError::Conflict(format!(
                "group {name} changed meanwhile; try again"
            )))
        }
    }

    /// Adds a user to a group (the group must exist when the membership is written).
    pub async fn add_user_to_group(&self, user: &str, group: &str) -> Result<()> {
        let (g, gv) = self.group_record(group).await?;
        self.update_user(user, |u| {
            if u.root {
                return Err(DirectoryError::Invalid(
                    "the root user is in no group".into(),
                ));
            }
            if !u.groups.iter().any(|x| x.eq_ignore_ascii_case(&g.name)) {
                u.groups.push(g.name.clone());
            }
            Ok(((), vec![DirWrite::unchanged(GROUP, &key_of(&g.name), &gv)]))
        })
        .await
    }

    /// Removes a user from a group.
    pub async fn remove_user_from_group(&self, user: &str, group: &str) -> Result<()> {
        self.update_user(user, |u| {
            let before = u.groups.len();
            u.groups.retain(|x| !x.eq_ignore_ascii_case(group));
            if before == u.groups.len() {
                return Err(DirectoryError::NotFound(format!(
                    "user {} is not in group {group}",
                    u.name
                )));
            }
            Ok(((), Vec::new()))
        })
        .await
    }
}
