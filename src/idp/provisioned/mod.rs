//! The provisioned directory: the people and groups a company directory (Okta, Entra ID, …)
//! pushes over SCIM for one identity provider (`[[scim_clients]]`), kept per provider as versioned
//! documents in the store's [`DirectoryStore`](crate::store::DirectoryStore), so that every replica
//! and every backend (memory, sled, PostgreSQL) sees one directory. Knows nothing of HTTP or of the
//! SCIM wire format beyond the resource documents it keeps: the `/scim/v2` edge validates them.
//!
//! Records (kind → key → document), every kind suffixed with `/<provider>`:
//! `scim_user` → id → the user resource (with `id` and `meta`, without `meta.version` and the
//! derived `groups`); `scim_group` → id → the group resource; `scim_user_name` → lower-cased
//! `userName` → id (a guard: `userName` is unique per provider, case-insensitively);
//! `scim_subject` → subject → id (a guard when the subject is `externalId`: it names one person);
//! `scim_gone` → subject → when the user was deleted (a deleted person stays refused until
//! provisioned again); and `scim_rev` → provider → nothing, its version the provider's change
//! counter. Every change is one atomic batch that also moves the counter from the version it read,
//! so the batch applies only to the state it was computed from; the store's version of a record is
//! its ETag `W/"<version>"`.
//!
//! Reads come from an in-memory index per provider (the store's state at one counter value):
//! this replica's writes change it in place, [`Provisioned::refresh`] (at every
//! refresh of shared state, every 5 s) rebuilds it when another replica moved the counter.
//!
//! **Who is provisioned.** A user's subject is the value of the client's `match` attribute
//! (`userName` or `externalId`). [`Provisioned::status`] answers for a subject: active (with the
//! display names of its groups), inactive (`active: false`), deleted, or never provisioned (people
//! the provider vouches for without being provisioned are treated as without SCIM, unless the
//! client says `require_provisioned`).

mod index;
#[cfg(test)]
mod tests;

pub use index::etag;

use crate::clock::SharedClock;
use crate::config::ScimClient;
use crate::store::{DirWrite, Store, StoreError, Versioned};
use index::{is_active, text, Entry, Index};
use parking_lot::RwLock;
use serde_json::{json, Value};
use std::collections::HashMap;
use std::sync::Arc;

/// Times a change is recomputed when another writer moved the provider's counter first.
const ATTEMPTS: usize = 8;

/// A SCIM resource type.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Resource {
    /// A person.
    User,
    /// A group of people.
    Group,
}

impl Resource {
    fn kind(self) -> &'static str {
        match self {
            Self::User => "scim_user",
            Self::Group => "scim_group",
        }
    }
    /// `User` or `Group` (`meta.resourceType`).
    pub fn name(self) -> &'static str {
        match self {
            Self::User => "User",
            Self::Group => "Group",
        }
    }
    /// `Users` or `Groups` (the endpoint).
    pub fn endpoint(self) -> &'static str {
        match self {
            Self::User => "Users",
            Self::Group => "Groups",
        }
    }
}

/// Errors of the provisioned directory. Messages are precise, for the audit log.
#[derive(Debug, thiserror::Error)]
pub enum ProvisionError {
    /// No such resource of this provider.
    #[error("{0}")]
    NotFound(String),
    /// A `userName` (or subject) another user of the provider has.
    #[error("{0}")]
    Uniqueness(String),
    /// `If-Match` names another version.
    #[error("{0}")]
    Precondition(String),
    /// A group member that is no user of the provider, or a resource without what it needs.
    #[error("{0}")]
    Invalid(String),
    /// The provider has no SCIM client.
    #[error("provider {0} is not provisioned")]
    UnknownProvider(String),
    /// Other writers kept changing the directory.
    #[error("the directory kept changing; try again")]
    Busy,
    /// The store failed or holds a record that cannot be read.
    #[error("store: {0}")]
    Store(#[from] StoreError),
}

/// A resource as answered: its id, version and SCIM JSON.
#[derive(Debug, Clone)]
pub struct Stored {
    /// Server-assigned id.
    pub id: String,
    /// The version (ETag `W/"<version>"`).
    pub version: u64,
    /// The resource as a GET answers it.
    pub resource: Arc<Value>,
}

impl From<(&String, &Entry)> for Stored {
    fn from((id, e): (&String, &Entry)) -> Self {
        Stored {
            id: id.clone(),
            version: e.version,
            resource: e.rendered.clone(),
        }
    }
}

/// What a change did to people's access: the subjects it deprovisioned (set inactive, deleted,
/// or whose subject changed), whose sessions and credentials must end.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Change {
    /// Subjects at the provider deprovisioned by the change.
    pub deprovisioned: Vec<String>,
}

/// A person as the provisioned directory knows them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Status {
    /// Provisioned and active: the display names of their groups.
    Active(Vec<String>),
    /// Provisioned with `active: false`.
    Inactive,
    /// Deleted (and not provisioned again).
    Deleted,
    /// Never provisioned.
    Unknown,
}

struct ProviderDir {
    match_attr: &'static str,
    index: RwLock<Index>,
    writer: tokio::sync::Mutex<()>,
}

/// The provisioned directories of every provider that has a SCIM client.
pub struct Provisioned {
    store: Arc<dyn Store>,
    clock: SharedClock,
    /// Absolute URL of `/scim/v2`, for `meta.location`.
    base: String,
    providers: HashMap<String, ProviderDir>,
}

fn kind(resource: Resource, provider: &str) -> String {
    format!("{}/{provider}", resource.kind())
}

fn guard_kind(what: &str, provider: &str) -> String {
    format!("{what}/{provider}")
}

const REV: &str = "scim_rev";

fn decode(kind: &str, key: &str, v: &Versioned) -> Result<Value, StoreError> {
    serde_json::from_str(&v.value).map_err(|e| StoreError::Corrupt(format!("{kind} {key}: {e}")))
}

fn new_id() -> Result<String, ProvisionError> {
    let mut b = [0u8; 16];
    crate::credentials::fill_random(&mut b)
        .map_err(|e| ProvisionError::Store(StoreError::Unavailable(e.to_string())))?;
    Ok(uuid::Builder::from_random_bytes(b).into_uuid().to_string())
}

impl Provisioned {
    /// The directories of `clients`' providers (empty until [`Provisioned::load`]); `base` is the
    /// absolute URL of `/scim/v2`.
    pub fn new(
        store: Arc<dyn Store>,
        clock: SharedClock,
        base: &str,
        clients: &[ScimClient],
    ) -> Self {
        let providers = clients
            .iter()
            .map(|c| {
                (
                    c.provider.clone(),
                    ProviderDir {
                        match_attr: c.match_attribute.attribute(),
                        index: RwLock::new(Index::default()),
                        writer: tokio::sync::Mutex::new(()),
                    },
                )
            })
            .collect();
        Self {
            store,
            clock,
            base: base.trim_end_matches('/').to_string(),
            providers,
        }
    }

    /// Reads every provider's directory from the store.
    pub async fn load(&self) -> Result<(), ProvisionError> {
        for (p, d) in &self.providers {
            let _w = d.writer.lock().await;
            self.reload(p, d).await?;
        }
        Ok(())
    }

    /// Re-reads the directory of each provider another replica changed since it was read.
    pub async fn refresh(&self) -> Result<(), ProvisionError> {
        for (p, d) in &self.providers {
            let rev = self.rev(p).await?;
            if rev != d.index.read().generation {
                let _w = d.writer.lock().await;
                if self.rev(p).await? != d.index.read().generation {
                    self.reload(p, d).await?;
                }
            }
        }
        Ok(())
    }

    async fn rev(&self, provider: &str) -> Result<u64, ProvisionError> {
        Ok(self
            .store
            .dir_get(REV, provider)
            .await?
            .map_or(0, |v| v.version))
    }

    async fn reload(&self, provider: &str, d: &ProviderDir) -> Result<(), ProvisionError> {
        // The counter read before the records: a change in between makes the next refresh read
        // them again.
        let generation = self.rev(provider).await?;
        let read = |r: Resource| async move {
            let k = kind(r, provider);
            let list = self.store.dir_list(&k).await?;
            list.into_iter()
                .map(|(key, v)| Ok((key.clone(), v.version, decode(&k, &key, &v)?)))
                .collect::<Result<Vec<_>, StoreError>>()
        };
        let users = read(Resource::User).await?;
        let groups = read(Resource::Group).await?;
        let gone = self
            .store
            .dir_list(&guard_kind("scim_gone", provider))
            .await?
            .into_iter()
            .map(|(k, _)| k)
            .collect();
        *d.index.write() = Index::build(generation, users, groups, gone, d.match_attr);
        Ok(())
    }

    fn dir(&self, provider: &str) -> Result<&ProviderDir, ProvisionError> {
        self.providers
            .get(provider)
            .ok_or_else(|| ProvisionError::UnknownProvider(provider.to_string()))
    }

    /// Whether `provider` has a SCIM client.
    pub fn provisions(&self, provider: &str) -> bool {
        self.providers.contains_key(provider)
    }

    /// The person with `subject` at `provider`, as provisioned (in memory: on the sign-in path).
    pub fn status(&self, provider: &str, subject: &str) -> Status {
        let Some(d) = self.providers.get(provider) else {
            return Status::Unknown;
        };
        let ix = d.index.read();
        match ix
            .by_subject
            .get(subject)
            .and_then(|id| ix.users.get(id).map(|e| (id, e)))
        {
            Some((id, e)) if is_active(&e.doc) => Status::Active(ix.group_names(id)),
            Some(_) => Status::Inactive,
            None if ix.gone.contains(subject) => Status::Deleted,
            None => Status::Unknown,
        }
    }

    /// The display names of the provisioned groups of the active person `subject` at `provider`
    /// (`None` unless provisioned and active).
    pub fn groups(&self, provider: &str, subject: &str) -> Option<Vec<String>> {
        match self.status(provider, subject) {
            Status::Active(g) => Some(g),
            _ => None,
        }
    }

    /// One resource by id.
    pub fn get(&self, provider: &str, r: Resource, id: &str) -> Result<Stored, ProvisionError> {
        let d = self.dir(provider)?;
        let ix = d.index.read();
        let map = match r {
            Resource::User => &ix.users,
            Resource::Group => &ix.groups,
        };
        map.get_key_value(id)
            .map(Stored::from)
            .ok_or_else(|| ProvisionError::NotFound(format!("no {} {id}", r.name())))
    }

    /// The provisioned users of `provider` (id and resource), for listing people who never signed in.
    pub fn users(&self, provider: &str) -> Vec<Stored> {
        self.providers
            .get(provider)
            .map(|d| d.index.read().users.iter().map(Stored::from).collect())
            .unwrap_or_default()
    }

    /// The resources of `r` for which `keep` holds, in id order: `(total, the page)` where the page
    /// starts at the 1-based `start` and holds at most `count`. `eq` is an `attribute eq "value"`
    /// comparison the whole filter is (lower-cased attribute): `userName` and `id` are answered
    /// from the index without a scan.
    pub fn list(
        &self,
        provider: &str,
        r: Resource,
        eq: Option<(&str, &str)>,
        keep: &dyn Fn(&Value) -> bool,
        start: usize,
        count: usize,
    ) -> Result<(usize, Vec<Stored>), ProvisionError> {
        let d = self.dir(provider)?;
        let ix = d.index.read();
        let map = match r {
            Resource::User => &ix.users,
            Resource::Group => &ix.groups,
        };
        let candidates: Box<dyn Iterator<Item = (&String, &Entry)>> = match (r, eq) {
            (Resource::User, Some(("username", v))) => Box::new(
                ix.by_name
                    .get(&v.to_lowercase())
                    .and_then(|id| map.get_key_value(id))
                    .into_iter(),
            ),
            (_, Some(("id", v))) => Box::new(map.get_key_value(v).into_iter()),
            _ => Box::new(map.iter()),
        };
        let mut total = 0usize;
        let mut page = Vec::new();
        for (id, e) in candidates {
            if keep(&e.rendered) {
                total += 1;
                if total >= start.max(1) && page.len() < count {
                    page.push(Stored::from((id, e)));
                }
            }
        }
        Ok((total, page))
    }

    /// Creates a resource from a validated document (no `id`, no `meta`): a server-assigned id,
    /// `meta` set, uniqueness of `userName` checked atomically.
    pub async fn create(
        &self,
        provider: &str,
        r: Resource,
        doc: Value,
    ) -> Result<(Stored, Change), ProvisionError> {
        let id = new_id()?;
        let now = crate::clock::rfc3339_secs(self.clock.now().timestamp());
        let mut doc = doc;
        if let Value::Object(m) = &mut doc {
            m.insert("id".into(), Value::String(id.clone()));
            m.insert(
                "meta".into(),
                json!({
                    "resourceType": r.name(),
                    "created": now,
                    "lastModified": now,
                    "location": format!("{}/{}/{id}", self.base, r.endpoint()),
                }),
            );
        }
        self.write(provider, r, &id, None, Some(doc), false).await
    }

    /// Changes resource `id`: `compute` gets the resource as a GET answers it and returns the new
    /// validated document (without `id`/`meta`, which are kept). With `if_match` the resource must
    /// be at that version. `compute` errors pass through unchanged and nothing is written.
    pub async fn update<E: From<ProvisionError>>(
        &self,
        provider: &str,
        r: Resource,
        id: &str,
        if_match: Option<&str>,
        compute: &(dyn Fn(&Value) -> Result<Value, E> + Sync),
    ) -> Result<(Stored, Change), E> {
        for _ in 0..ATTEMPTS {
            let current = self.get(provider, r, id)?;
            check_if_match(if_match, current.version)?;
            let mut doc = compute(&current.resource)?;
            let now = crate::clock::rfc3339_secs(self.clock.now().timestamp());
            if let (Value::Object(m), Some(meta)) = (&mut doc, current.resource.get("meta")) {
                m.insert("id".into(), Value::String(id.to_string()));
                m.remove("groups");
                let mut meta = meta.clone();
                if let Value::Object(mm) = &mut meta {
                    mm.remove("version");
                    mm.insert("lastModified".into(), Value::String(now));
                }
                m.insert("meta".into(), meta);
            }
            match self
                .write(provider, r, id, Some(current.version), Some(doc), true)
                .await
            {
                Err(ProvisionError::Busy) => continue,
                other => return other.map_err(E::from),
            }
        }
        Err(ProvisionError::Busy.into())
    }

    /// Deletes resource `id` (at `if_match`'s version when given).
    pub async fn delete(
        &self,
        provider: &str,
        r: Resource,
        id: &str,
        if_match: Option<&str>,
    ) -> Result<Change, ProvisionError> {
        for _ in 0..ATTEMPTS {
            let current = self.get(provider, r, id)?;
            check_if_match(if_match, current.version)?;
            match self
                .write(provider, r, id, Some(current.version), None, true)
                .await
            {
                Err(ProvisionError::Busy) => continue,
                other => return other.map(|(_, c)| c),
            }
        }
        Err(ProvisionError::Busy)
    }

    /// One atomic change of resource `id` from the version `expected` (`None`: it is new) to `new`
    /// (`None`: deleted). `Busy` when the state it was computed from moved (with `single`: the
    /// caller recomputes; otherwise retried here).
    async fn write(
        &self,
        provider: &str,
        r: Resource,
        id: &str,
        expected: Option<u64>,
        new: Option<Value>,
        single: bool,
    ) -> Result<(Stored, Change), ProvisionError> {
        let d = self.dir(provider)?;
        let _w = d.writer.lock().await;
        let attempts = if single { 1 } else { ATTEMPTS };
        for _ in 0..attempts {
            let rev = self.store.dir_get(REV, provider).await?;
            let generation = rev.as_ref().map_or(0, |v| v.version);
            if generation != d.index.read().generation {
                self.reload(provider, d).await?;
                if single {
                    // The caller's reading is older than the store's state: recompute.
                    return Err(ProvisionError::Busy);
                }
            }
            let (batch, change) = self.batch(provider, d, r, id, expected, new.as_ref())?;
            let mut writes = batch;
            writes.push(DirWrite::put(REV, provider, rev.as_ref(), String::new()));
            if self.store.dir_write(&writes).await? {
                let mut ix = d.index.write();
                ix.generation = generation + 1;
                let version = expected.map_or(1, |v| v + 1);
                match (&new, r) {
                    (Some(doc), Resource::User) => {
                        ix.put_user(id, Arc::new(doc.clone()), version, d.match_attr)
                    }
                    (Some(doc), Resource::Group) => {
                        ix.put_group(id, Arc::new(doc.clone()), version)
                    }
                    (None, Resource::User) => ix.remove_user(id, d.match_attr),
                    (None, Resource::Group) => ix.remove_group(id),
                }
                let stored = match r {
                    Resource::User => ix.users.get_key_value(id),
                    Resource::Group => ix.groups.get_key_value(id),
                }
                .map(Stored::from)
                .unwrap_or(Stored {
                    id: id.to_string(),
                    version,
                    resource: Arc::new(Value::Null),
                });
                return Ok((stored, change));
            }
            // Another replica wrote in between: read its state and try again.
            self.reload(provider, d).await?;
            if single {
                return Err(ProvisionError::Busy);
            }
        }
        Err(ProvisionError::Busy)
    }

    /// The writes of one change, checked against the index (the store's state at the counter the
    /// batch expects): the record itself, the uniqueness guards, the deleted-subject records.
    fn batch(
        &self,
        provider: &str,
        d: &ProviderDir,
        r: Resource,
        id: &str,
        expected: Option<u64>,
        new: Option<&Value>,
    ) -> Result<(Vec<DirWrite>, Change), ProvisionError> {
        let ix = d.index.read();
        let k = kind(r, provider);
        let current = match r {
            Resource::User => ix.users.get(id),
            Resource::Group => ix.groups.get(id),
        };
        if current.map(|e| e.version) != expected {
            return Err(ProvisionError::Busy);
        }
        let mut writes = vec![match (new, expected) {
            (Some(doc), None) => DirWrite::insert(&k, id, doc.to_string()),
            (Some(doc), Some(v)) => DirWrite::update(&k, id, v, doc.to_string()),
            (None, Some(v)) => DirWrite::delete(&k, id, v),
            (None, None) => return Err(ProvisionError::NotFound(format!("no {} {id}", r.name()))),
        }];
        let mut change = Change::default();
        match r {
            Resource::Group => {
                if let Some(doc) = new {
                    if text(doc, "displayName").is_none_or(str::is_empty) {
                        return Err(ProvisionError::Invalid(
                            "a group needs a displayName".into(),
                        ));
                    }
                    if let Some(m) = index::members(doc)
                        .into_iter()
                        .find(|m| !ix.users.contains_key(m))
                    {
                        return Err(ProvisionError::Invalid(format!(
                            "member {m} is no user of provider {provider}"
                        )));
                    }
                }
            }
            Resource::User => {
                let old = current.map(|e| e.doc.clone());
                let old_name = old
                    .as_deref()
                    .and_then(|o| text(o, "userName"))
                    .map(str::to_lowercase);
                let new_name = new.and_then(|n| text(n, "userName")).map(str::to_lowercase);
                if new.is_some() && new_name.as_deref().is_none_or(str::is_empty) {
                    return Err(ProvisionError::Invalid("a user needs a userName".into()));
                }
                let names = guard_kind("scim_user_name", provider);
                if old_name != new_name {
                    if let Some(n) = &new_name {
                        if ix.by_name.get(n).is_some_and(|o| o != id) {
                            return Err(ProvisionError::Uniqueness(format!(
                                "userName {n} is taken by another user of provider {provider}"
                            )));
                        }
                        writes.push(DirWrite::insert(&names, n, id.to_string()));
                    }
                    if let Some(o) = &old_name {
                        // The guard as written with the user: version 1.
                        writes.push(DirWrite::delete(&names, o, 1));
                    }
                }
                let old_sub = old
                    .as_deref()
                    .and_then(|o| Index::subject_of(o, d.match_attr));
                let new_sub = new.and_then(|n| Index::subject_of(n, d.match_attr));
                let subjects = guard_kind("scim_subject", provider);
                let gone = guard_kind("scim_gone", provider);
                let guarded = d.match_attr != "userName";
                if old_sub != new_sub {
                    if let Some(s) = &new_sub {
                        if ix.by_subject.get(s).is_some_and(|o| o != id) {
                            return Err(ProvisionError::Uniqueness(format!(
                                "{} {s} names another user of provider {provider}",
                                d.match_attr
                            )));
                        }
                        if guarded {
                            writes.push(DirWrite::insert(&subjects, s, id.to_string()));
                        }
                        if ix.gone.contains(s) {
                            writes.push(DirWrite::delete(&gone, s, 1));
                        }
                    }
                    if let Some(s) = &old_sub {
                        if guarded {
                            writes.push(DirWrite::delete(&subjects, s, 1));
                        }
                        change.deprovisioned.push(s.clone());
                    }
                } else if let (Some(s), Some(o)) = (&old_sub, old.as_deref()) {
                    // Same subject: deprovisioned when it stops being active.
                    if is_active(o) && !new.is_some_and(is_active) {
                        change.deprovisioned.push(s.clone());
                    }
                }
                if new.is_none() {
                    if let Some(s) = &old_sub {
                        let now = self.clock.now().timestamp();
                        writes.push(DirWrite::insert(&gone, s, now.to_string()));
                    }
                }
            }
        }
        Ok((writes, change))
    }
}

fn check_if_match(if_match: Option<&str>, version: u64) -> Result<(), ProvisionError> {
    let Some(want) = if_match else {
        return Ok(());
    };
    let current = etag(version);
    let ok = want.split(',').map(str::trim).any(|t| {
        t == "*" || t == current || t.strip_prefix("W/").unwrap_or(t) == format!("\"{version}\"")
    });
    if ok {
        Ok(())
    } else {
        Err(ProvisionError::Precondition(format!(
            "If-Match {want} does not match the current version {current}"
        )))
    }
}
