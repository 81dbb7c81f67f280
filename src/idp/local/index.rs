//! The in-memory view of the directory's users that listings answer from: every user record
//! decoded once, in the store's listing order (by record key), and each group's members. It is the
//! store's state at one value of the users' change counter (see `records`): rebuilt from the store
//! when the counter moved elsewhere, changed in place by this process's own writes.

use super::{decode, key_of, Result, User, USER};
use crate::store::Versioned;
use std::collections::{BTreeMap, BTreeSet, HashMap};

/// Most users kept in memory; a directory past it is listed from the store on every call.
pub(super) const INDEX_CAPACITY: usize = 50_000;

/// The directory's users and group memberships.
#[derive(Debug, Default)]
pub(super) struct UserIndex {
    /// Record key (the lower-cased name) → the user, in the store's listing order (byte order).
    users: BTreeMap<String, User>,
    /// Lower-cased group name → the record keys of its members.
    members: HashMap<String, BTreeSet<String>>,
}

impl UserIndex {
    /// The index of the `user` records as listed by the store.
    pub(super) fn build(records: &[(String, Versioned)]) -> Result<Self> {
        let mut ix = Self::default();
        for (key, v) in records {
            ix.put(key, decode(USER, key, v)?);
        }
        Ok(ix)
    }

    /// How many users it holds.
    pub(super) fn len(&self) -> usize {
        self.users.len()
    }

    /// Puts (or replaces) the user kept under record key `key`.
    pub(super) fn put(&mut self, key: &str, user: User) {
        self.remove(key);
        for g in &user.groups {
            self.members
                .entry(key_of(g))
                .or_default()
                .insert(key.to_string());
        }
        self.users.insert(key.to_string(), user);
    }

    /// Removes the user kept under record key `key` (and its memberships).
    pub(super) fn remove(&mut self, key: &str) {
        let Some(old) = self.users.remove(key) else {
            return;
        };
        for g in &old.groups {
            let g = key_of(g);
            if let Some(m) = self.members.get_mut(&g) {
                m.remove(key);
                if m.is_empty() {
                    self.members.remove(&g);
                }
            }
        }
    }

    /// Every user, in the store's listing order.
    pub(super) fn users(&self) -> Vec<User> {
        self.users.values().cloned().collect()
    }

    /// What `f` makes of each user, in the store's listing order.
    pub(super) fn map<T>(&self, f: impl FnMut(&User) -> T) -> Vec<T> {
        self.users.values().map(f).collect()
    }

    /// The members of group `group` (case-insensitive), in the store's listing order.
    pub(super) fn members(&self, group: &str) -> Vec<User> {
        self.members
            .get(&key_of(group))
            .into_iter()
            .flatten()
            .filter_map(|k| self.users.get(k))
            .cloned()
            .collect()
    }
}
