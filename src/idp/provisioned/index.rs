//! The in-memory view of one provider's provisioned directory: every user and group as a SCIM
//! resource ready to answer (its `meta.version` and, for a user, its derived `groups` filled in),
//! and the lookups the gate and the `/scim/v2` edge need (by lower-cased `userName`, by subject,
//! deleted subjects, group membership). It is exactly the store's state at `generation`: it is
//! rebuilt from the store when that moves elsewhere, and changed in place by this replica's own
//! writes.

use serde_json::{json, Map, Value};
use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::sync::Arc;

/// One stored resource.
#[derive(Debug, Clone)]
pub(super) struct Entry {
    /// The store's version of the record: the ETag `W/"<version>"`.
    pub version: u64,
    /// The document as stored (no `meta.version`, no user `groups`).
    pub doc: Arc<Value>,
    /// The resource as answered.
    pub rendered: Arc<Value>,
}

/// One provider's users and groups.
#[derive(Debug, Default)]
pub(super) struct Index {
    /// The version of the provider's change counter this view is the state of (0: never written).
    pub generation: u64,
    /// Users by id.
    pub users: BTreeMap<String, Entry>,
    /// Groups by id.
    pub groups: BTreeMap<String, Entry>,
    /// Lower-cased `userName` → user id.
    pub by_name: HashMap<String, String>,
    /// Subject at the provider → user id.
    pub by_subject: HashMap<String, String>,
    /// Subjects of users deleted (and not provisioned again since).
    pub gone: HashSet<String>,
    /// User id → ids of the groups it is a member of.
    pub member_of: HashMap<String, BTreeSet<String>>,
}

/// The ETag of a version.
pub fn etag(version: u64) -> String {
    format!("W/\"{version}\"")
}

/// A string attribute of a document.
pub(super) fn text<'a>(doc: &'a Value, name: &str) -> Option<&'a str> {
    doc.get(name).and_then(Value::as_str)
}

/// Whether a user document is active: `active` absent counts as active, anything but `false`
/// (SCIM validation normalises booleans) too.
pub(super) fn is_active(doc: &Value) -> bool {
    doc.get("active") != Some(&Value::Bool(false))
}

/// The member ids of a group document.
pub(super) fn members(doc: &Value) -> Vec<String> {
    doc.get("members")
        .and_then(Value::as_array)
        .map(|m| {
            m.iter()
                .filter_map(|x| x.get("value").and_then(Value::as_str))
                .map(String::from)
                .collect()
        })
        .unwrap_or_default()
}

fn with_version(doc: &Value, version: u64) -> Map<String, Value> {
    let mut m = doc.as_object().cloned().unwrap_or_default();
    if let Some(Value::Object(meta)) = m.get_mut("meta") {
        meta.insert("version".into(), Value::String(etag(version)));
    }
    m
}

impl Index {
    /// The subject of a user document under `match_attr` (`userName` or `externalId`).
    pub fn subject_of(doc: &Value, match_attr: &str) -> Option<String> {
        text(doc, match_attr)
            .filter(|s| !s.is_empty())
            .map(String::from)
    }

    fn render_user(&self, id: &str, doc: &Value, version: u64) -> Value {
        let mut m = with_version(doc, version);
        let groups: Vec<Value> = self
            .member_of
            .get(id)
            .into_iter()
            .flatten()
            .filter_map(|g| self.groups.get(g).map(|e| (g, e)))
            .map(|(g, e)| {
                json!({
                    "value": g,
                    "display": text(&e.doc, "displayName").unwrap_or_default(),
                    "$ref": location_sibling(&e.doc, "Groups", g),
                    "type": "direct",
                })
            })
            .collect();
        if !groups.is_empty() {
            m.insert("groups".into(), Value::Array(groups));
        }
        Value::Object(m)
    }

    fn render_group(&self, doc: &Value, version: u64) -> Value {
        let mut m = with_version(doc, version);
        // Members deleted since are not shown.
        if let Some(Value::Array(ms)) = m.get_mut("members") {
            ms.retain(|x| {
                x.get("value")
                    .and_then(Value::as_str)
                    .is_some_and(|v| self.users.contains_key(v))
            });
        }
        Value::Object(m)
    }

    /// Puts (or replaces) a user.
    pub fn put_user(&mut self, id: &str, doc: Arc<Value>, version: u64, match_attr: &str) {
        self.remove_user_keys(id, match_attr);
        if let Some(n) = text(&doc, "userName") {
            self.by_name.insert(n.to_lowercase(), id.to_string());
        }
        if let Some(s) = Self::subject_of(&doc, match_attr) {
            self.gone.remove(&s);
            self.by_subject.insert(s, id.to_string());
        }
        let rendered = Arc::new(self.render_user(id, &doc, version));
        self.users.insert(
            id.to_string(),
            Entry {
                version,
                doc,
                rendered,
            },
        );
    }

    fn remove_user_keys(&mut self, id: &str, match_attr: &str) {
        if let Some(old) = self.users.get(id) {
            let old = old.doc.clone();
            if let Some(n) = text(&old, "userName") {
                if self.by_name.get(&n.to_lowercase()).map(String::as_str) == Some(id) {
                    self.by_name.remove(&n.to_lowercase());
                }
            }
            if let Some(s) = Self::subject_of(&old, match_attr) {
                if self.by_subject.get(&s).map(String::as_str) == Some(id) {
                    self.by_subject.remove(&s);
                }
            }
        }
    }

    /// Removes a user (its subject remembered as deleted) and re-renders its groups.
    pub fn remove_user(&mut self, id: &str, match_attr: &str) {
        let subject = self
            .users
            .get(id)
            .and_then(|e| Self::subject_of(&e.doc, match_attr));
        self.remove_user_keys(id, match_attr);
        self.users.remove(id);
        if let Some(s) = subject {
            self.gone.insert(s);
        }
        let groups: Vec<String> = self
            .member_of
            .remove(id)
            .map(|g| g.into_iter().collect())
            .unwrap_or_default();
        for g in groups {
            self.rerender_group(&g);
        }
    }

    fn rerender_group(&mut self, gid: &str) {
        if let Some(e) = self.groups.get(gid) {
            let rendered = Arc::new(self.render_group(&e.doc, e.version));
            if let Some(e) = self.groups.get_mut(gid) {
                e.rendered = rendered;
            }
        }
    }

    fn rerender_user(&mut self, uid: &str) {
        if let Some(e) = self.users.get(uid) {
            let rendered = Arc::new(self.render_user(uid, &e.doc, e.version));
            if let Some(e) = self.users.get_mut(uid) {
                e.rendered = rendered;
            }
        }
    }

    /// Puts (or replaces) a group, and re-renders the users whose membership changed.
    pub fn put_group(&mut self, id: &str, doc: Arc<Value>, version: u64) {
        let old: BTreeSet<String> = self
            .groups
            .get(id)
            .map(|e| members(&e.doc).into_iter().collect())
            .unwrap_or_default();
        let new: BTreeSet<String> = members(&doc).into_iter().collect();
        let renamed = self
            .groups
            .get(id)
            .is_some_and(|e| text(&e.doc, "displayName") != text(&doc, "displayName"));
        for u in old.difference(&new) {
            if let Some(s) = self.member_of.get_mut(u) {
                s.remove(id);
            }
        }
        for u in new.difference(&old) {
            self.member_of
                .entry(u.clone())
                .or_default()
                .insert(id.to_string());
        }
        let rendered = Arc::new(self.render_group(&doc, version));
        self.groups.insert(
            id.to_string(),
            Entry {
                version,
                doc,
                rendered,
            },
        );
        let touched: Vec<String> = if renamed {
            old.union(&new).cloned().collect()
        } else {
            old.symmetric_difference(&new).cloned().collect()
        };
        for u in touched {
            self.rerender_user(&u);
        }
    }

    /// Removes a group and re-renders its members.
    pub fn remove_group(&mut self, id: &str) {
        let Some(e) = self.groups.remove(id) else {
            return;
        };
        for u in members(&e.doc) {
            if let Some(s) = self.member_of.get_mut(&u) {
                s.remove(id);
            }
            self.rerender_user(&u);
        }
    }

    /// The display names of the groups user `id` is a member of.
    pub fn group_names(&self, id: &str) -> Vec<String> {
        self.member_of
            .get(id)
            .into_iter()
            .flatten()
            .filter_map(|g| self.groups.get(g))
            .filter_map(|e| text(&e.doc, "displayName").map(String::from))
            .collect()
    }

    /// Builds the view of a whole provider from its stored records.
    pub fn build(
        generation: u64,
        users: Vec<(String, u64, Value)>,
        groups: Vec<(String, u64, Value)>,
        gone: Vec<String>,
        match_attr: &str,
    ) -> Index {
        let mut ix = Index {
            generation,
            gone: gone.into_iter().collect(),
            ..Index::default()
        };
        // Groups first (membership known), then users (rendered with it), then groups again
        // (rendered with the users present).
        for (id, version, doc) in &groups {
            for u in members(doc) {
                ix.member_of.entry(u).or_default().insert(id.clone());
            }
            ix.groups.insert(
                id.clone(),
                Entry {
                    version: *version,
                    doc: Arc::new(doc.clone()),
                    rendered: Arc::new(Value::Null),
                },
            );
        }
        for (id, version, doc) in users {
            ix.put_user(&id, Arc::new(doc), version, match_attr);
        }
        let ids: Vec<String> = ix.groups.keys().cloned().collect();
        for g in ids {
            ix.rerender_group(&g);
        }
        ix
    }
}

/// `$ref` of a resource of `endpoint` beside the one whose `meta.location` `doc` carries.
fn location_sibling(doc: &Value, endpoint: &str, id: &str) -> String {
    let loc = doc
        .get("meta")
        .and_then(|m| m.get("location"))
        .and_then(Value::as_str)
        .unwrap_or_default();
    match loc.rfind("/Groups/").or_else(|| loc.rfind("/Users/")) {
        Some(i) => format!("{}/{endpoint}/{id}", &loc[..i]),
        None => format!("{endpoint}/{id}"),
    }
}
