//! rolegate's own directory, the IAM side: a root user, users with argon2id passwords, groups, their
//! policies, long-term access keys (`AKIA…`) and MFA devices (TOTP). Records live in the store's
//! [`DirectoryStore`](crate::store::DirectoryStore) as JSON documents changed with optimistic
//! concurrency, so every replica sees one directory. Knows nothing of HTTP, cookies or the policy
//! engine's evaluation (it only checks that policy documents parse).
//!
//! Records (kind → key → document): `user` → name → [`User`]; `user_id` → `AIDA…` → name;
//! `access_key` → `AKIA…` → user name; `key_used` → `AKIA…` → last use (written in batches, not per
//! call: see `access_keys`); `group` → name → [`Group`];
//! `mfa_state` → `user:<AIDA…>:totp` / `user:<AIDA…>:webauthn` → [`Throttle`] (last accepted step
//! and failures; keyed by user id, see [`keys`]); `login_state` →
//! user name → [`Throttle`]; `bootstrap` → `root` → the root bootstrap token's hash;
//! `webauthn_pending` → `reg:`/`auth:` + user (+ `:` + scope) → a pending ceremony (used once:
//! deleted before it is checked; a scope binds it to one caller, e.g. a browser session); `webauthn_credential` → credential id → user name (unique across users);
//! `user_rev` → `users` → nothing, its version the users' change counter (moved by every batch
//! that writes a user; see `records`).
//!
//! Every directory write of the process goes through one path (`records`), which keeps a cache of
//! the records signed calls read consistent: a change made here is seen at once, one made by
//! another replica within [`CACHE_BOUND`] (the revocation refresh interval). Listings of the users
//! (and a group's members) answer from an in-memory index (`index`) at the store's state now.
//!
//! This file holds the records' types and the store plumbing (reading, the compare-and-swap updates
//! of users and groups); the operations of [`Directory`] are in one file per capability: `users`
//! (and `status`, disabling), `groups`, `policies`, `access_keys`, `mfa` (TOTP devices),
//! `security_keys` (WebAuthn devices, over the ceremonies of [`webauthn`]), `throttle` (failure
//! counts and locks of passwords and MFA) and `root` (the root user and its bootstrap).

mod access_keys;
mod groups;
mod index;
pub mod keys;
mod mfa;
pub mod password;
mod policies;
mod records;
pub use records::CACHE_BOUND;
mod root;
pub use root::RootBootstrap;
mod security_keys;
mod status;
pub use status::Locks;
mod throttle;
pub use throttle::count_failure;
pub mod totp;
mod users;
pub mod webauthn;

use crate::clock::SharedClock;
use crate::config::{DirectorySettings, WebAuthnSettings};
use crate::store::{DirWrite, Store, StoreError, Versioned};
use password::Hasher;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::sync::Arc;

const USER: &str = "user";
const USER_ID: &str = "user_id";
const ACCESS_KEY: &str = "access_key";
const KEY_USED: &str = "key_used";
const GROUP: &str = "group";
const MFA_STATE: &str = "mfa_state";
const LOGIN_STATE: &str = "login_state";
const BOOTSTRAP: &str = "bootstrap";
const WEBAUTHN_PENDING: &str = "webauthn_pending";
const WEBAUTHN_CREDENTIAL: &str = "webauthn_credential";

/// The root user's name.
pub const ROOT: &str = "root";
/// Most access keys per user (as IAM).
pub const MAX_ACCESS_KEYS: usize = 2;
/// Consecutive wrong TOTP codes before the device is locked.
pub const MFA_MAX_FAILURES: u32 = 5;
/// Consecutive wrong passwords before the user's password sign-in is locked.
pub const PASSWORD_MAX_FAILURES: u32 = 10;
/// How long a lock lasts, in seconds; failures older than this are forgotten.
pub const LOCK_SECONDS: i64 = 300;
/// How long a root bootstrap token is valid, in seconds.
pub const BOOTSTRAP_SECONDS: i64 = 24 * 3600;
/// Times a read-modify-write is retried when another writer got there first.
const CAS_ATTEMPTS: usize = 16;

/// Errors of the directory. Messages are for operators and the audit log; clients get coarse ones.
#[derive(Debug, thiserror::Error)]
pub enum DirectoryError {
    /// No such user, group, key or device.
    #[error("{0}")]
    NotFound(String),
    /// It exists already, or a limit is reached.
    #[error("{0}")]
    Conflict(String),
    /// The request is malformed (a name, a policy document, a password too short).
    #[error("{0}")]
    Invalid(String),
    /// A wrong password or code, or a disabled credential.
    #[error("{0}")]
    Denied(String),
    /// Too many failures: refused until `until` (Unix seconds).
    #[error("{what} is locked after repeated failures until {until}")]
    Locked {
        /// What is locked.
        what: String,
        /// Unix seconds.
        until: i64,
    },
    /// The store failed, or a record cannot be read.
    #[error("store: {0}")]
    Store(#[from] StoreError),
    /// Internal failure (hashing, randomness).
    #[error("{0}")]
    Internal(String),
    /// Too much work waiting (password hashing at capacity): refused at once, worth retrying
    /// shortly.
    #[error("{0}")]
    Busy(String),
}

/// Result of directory operations.
pub type Result<T> = std::result::Result<T, DirectoryError>;

pub use crate::secret::Secret;

/// Whether a long-term access key may sign requests.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum KeyStatus {
    /// It signs.
    Active,
    /// It is kept but refused.
    Inactive,
}

/// A long-term access key of a user.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AccessKey {
    /// `AKIA` + 16 base32 characters.
    pub id: String,
    /// The 40-character secret.
    pub secret: Secret,
    /// Active or inactive.
    pub status: KeyStatus,
    /// Unix seconds.
    pub created_at: i64,
}

/// An MFA device of a user.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum MfaDevice {
    /// A virtual (TOTP) device.
    Totp {
        /// `arn:aws:iam::ACCOUNT:mfa/NAME`.
        serial: String,
        /// The secret, base32.
        secret: Secret,
        /// When enrolment was confirmed with two consecutive codes; `None` while pending.
        enabled_at: Option<i64>,
        /// Unix seconds.
        created_at: i64,
    },
    /// A WebAuthn security key.
    SecurityKey {
        /// `webauthn:` + the credential id.
        serial: String,
        /// The registered key (public key, counter).
        key: webauthn::StoredKey,
    },
}

impl MfaDevice {
    /// The device's serial number.
    pub fn serial(&self) -> &str {
        match self {
            Self::Totp { serial, .. } | Self::SecurityKey { serial, .. } => serial,
        }
    }

    /// Whether the device is in use (enrolment confirmed).
    pub fn enabled(&self) -> bool {
        match self {
            Self::Totp { enabled_at, .. } => enabled_at.is_some(),
            Self::SecurityKey { .. } => true,
        }
    }
}

/// A user of the local directory.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct User {
    /// Unique name (1-64 of `[A-Za-z0-9_+=,.@-]`, case-insensitively unique).
    pub name: String,
    /// `AIDA` + 17 base32 characters.
    pub user_id: String,
    /// IAM path.
    pub path: String,
    /// The root user: all `rolegate:*` actions, sign-in only with MFA, no access keys.
    #[serde(default)]
    pub root: bool,
    /// Unix seconds.
    pub created_at: i64,
    /// argon2id PHC string; `None` until a password is set.
    #[serde(default)]
    pub password_hash: Option<Secret>,
    /// When the password was last set.
    #[serde(default)]
    pub password_changed_at: Option<i64>,
    /// Groups the user is in.
    #[serde(default)]
    pub groups: Vec<String>,
    /// Inline policies by name.
    #[serde(default)]
    pub policies: BTreeMap<String, String>,
    /// Attached managed policies (ARNs of the directory account's managed policies).
    #[serde(default)]
    pub managed_policy_arns: Vec<String>,
    /// Long-term access keys (at most [`MAX_ACCESS_KEYS`]).
    #[serde(default)]
    pub access_keys: Vec<AccessKey>,
    /// MFA devices.
    #[serde(default)]
    pub mfa_devices: Vec<MfaDevice>,
    /// When the user was disabled (Unix seconds); `None` while it is active. A disabled user
    /// keeps its record but signs in with nothing: no password, no access key, no session.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub disabled_at: Option<i64>,
}

impl User {
    /// A new user created at `created_at` (Unix seconds) with a new user id and nothing else yet:
    /// no password, group, policy, key or MFA device.
    fn new(name: &str, path: &str, root: bool, created_at: i64) -> Result<User> {
        Ok(User {
            name: name.to_string(),
            user_id: random_id("AIDA", 17)?,
            path: path.to_string(),
            root,
            created_at,
            password_hash: None,
            password_changed_at: None,
            groups: Vec::new(),
            policies: BTreeMap::new(),
            managed_policy_arns: Vec::new(),
            access_keys: Vec::new(),
            mfa_devices: Vec::new(),
            disabled_at: None,
        })
    }

    /// The user's ARN (`…:root` for the root user).
    pub fn arn(&self, account: &str) -> String {
        if self.root {
            crate::policy::arn::root(account)
        } else {
            crate::policy::arn::user(account, &self.path, &self.name)
        }
    }

    /// Whether the user is active (not disabled).
    pub fn active(&self) -> bool {
        self.disabled_at.is_none()
    }

    /// Whether an enabled MFA device exists.
    pub fn has_mfa(&self) -> bool {
        self.mfa_devices.iter().any(MfaDevice::enabled)
    }
}

/// A group of the local directory.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Group {
    /// Unique name.
    pub name: String,
    /// `AGPA` + 17 base32 characters.
    pub group_id: String,
    /// IAM path.
    pub path: String,
    /// Unix seconds.
    pub created_at: i64,
    /// Inline policies by name.
    #[serde(default)]
    pub policies: BTreeMap<String, String>,
    /// Attached managed policies.
    #[serde(default)]
    pub managed_policy_arns: Vec<String>,
}

/// Failure counting and lockout for one credential (a password, an MFA device), plus the last TOTP
/// step accepted.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Throttle {
    /// Consecutive failures since the first one at `first_failure`.
    pub failures: u32,
    /// Unix seconds of the first failure counted.
    pub first_failure: i64,
    /// Refused until then.
    pub locked_until: Option<i64>,
    /// The last TOTP step accepted (codes of this step or earlier are refused).
    pub last_step: Option<u64>,
}

/// Last use of an access key.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct KeyUse {
    /// Unix seconds.
    pub time: i64,
    /// The SigV4 service and region it signed for.
    pub service: String,
    /// Region.
    pub region: String,
}

/// A TOTP device waiting for its first two codes.
#[derive(Debug, Clone, PartialEq)]
pub struct TotpEnrolment {
    /// The device's serial number.
    pub serial: String,
    /// The secret in base32, for typing in.
    pub secret_base32: Secret,
    /// The `otpauth://` URI, for a QR code.
    pub uri: Secret,
}

/// Where a policy is attached.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Holder<'a> {
    /// A user.
    User(&'a str),
    /// A group.
    Group(&'a str),
}

fn encode<T: Serialize>(v: &T) -> Result<String> {
    serde_json::to_string(v).map_err(|e| DirectoryError::Internal(format!("encode: {e}")))
}

fn decode<T: DeserializeOwned>(kind: &str, key: &str, v: &Versioned) -> Result<T> {
    serde_json::from_str(&v.value).map_err(|e| {
        DirectoryError::Store(StoreError::Corrupt(format!(
            "directory record {kind}/{key}: {e}"
        )))
    })
}

/// Whether `name` is a valid user or group name.
pub fn valid_name(name: &str) -> bool {
    !name.is_empty() && name.len() <= 64 && name.chars().all(crate::config::is_iam_name_char)
}

fn check_name(what: &str, name: &str) -> Result<()> {
    if valid_name(name) {
        Ok(())
    } else {
        Err(DirectoryError::Invalid(format!(
            "{what} name '{name}' must be 1-64 characters of [A-Za-z0-9_+=,.@-]"
        )))
    }
}

fn check_path(path: &str) -> Result<()> {
    if path.starts_with('/')
        && path.ends_with('/')
        && path.len() <= 512
        && !path.contains("//")
        && path.chars().all(|c| c.is_ascii_graphic())
    {
        Ok(())
    } else {
        Err(DirectoryError::Invalid(format!(
            "path '{path}' must start and end with '/'"
        )))
    }
}

/// Names are unique case-insensitively, as in IAM: the record key is the lower-cased name.
fn key_of(name: &str) -> String {
    name.to_ascii_lowercase()
}

fn random_id(prefix: &str, len: usize) -> Result<String> {
    const BASE32: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";
    let mut bytes = vec![0u8; len];
    crate::credentials::fill_random(&mut bytes)
        .map_err(|e| DirectoryError::Internal(e.to_string()))?;
    Ok(format!(
        "{prefix}{}",
        bytes
            .iter()
            .map(|b| BASE32[(*b as usize) % 32] as char)
            .collect::<String>()
    ))
}

/// The directory service.
pub struct Directory {
    webauthn: Option<webauthn::WebAuthnMfa>,
    store: records::Records,
    settings: DirectorySettings,
    clock: SharedClock,
    hasher: Hasher,
    issuer: String,
    /// Uses of access keys not yet written to the store (see `access_keys`).
    key_use: parking_lot::Mutex<std::collections::HashMap<String, KeyUse>>,
}

impl Directory {
    /// The directory over `store`. `issuer` names rolegate in authenticator apps.
    pub fn new(
        store: Arc<dyn Store>,
        settings: DirectorySettings,
        clock: SharedClock,
        issuer: impl Into<String>,
    ) -> Self {
        Self {
            webauthn: None,
            store: records::Records::new(store, clock.clone()),
            settings,
            clock,
            hasher: Hasher::default(),
            issuer: issuer.into(),
            key_use: Default::default(),
        }
    }

    /// Enables WebAuthn security keys for this relying party (an https origin, or localhost).
    pub fn enable_webauthn(&mut self, settings: &WebAuthnSettings) -> Result<()> {
        self.webauthn = Some(
            webauthn::WebAuthnMfa::new(settings)
                .map_err(|e| DirectoryError::Invalid(e.to_string()))?,
        );
        Ok(())
    }

    /// The account of the directory's users.
    pub fn account(&self) -> &str {
        &self.settings.account
    }

    /// The issuer name authenticator apps show for rolegate.
    pub fn issuer(&self) -> &str {
        &self.issuer
    }

    /// The password hasher (shared with benchmarks).
    pub fn hasher(&self) -> &Hasher {
        &self.hasher
    }

    fn now(&self) -> i64 {
        self.clock.now().timestamp()
    }

    async fn read<T: DeserializeOwned>(
        &self,
        kind: &str,
        key: &str,
    ) -> Result<Option<(T, Versioned)>> {
        match self.store.dir_get(kind, key).await? {
            Some(v) => Ok(Some((decode(kind, key, &v)?, v))),
            None => Ok(None),
        }
    }

    /// [`Directory::read`] through the cache of the request path (see `records`): at most
    /// [`CACHE_BOUND`] old, never older than this process's last write of it.
    async fn cached_read<T: DeserializeOwned>(&self, kind: &str, key: &str) -> Result<Option<T>> {
        match self.store.cached_get(kind, key).await? {
            Some(v) => Ok(Some(decode(kind, key, &v)?)),
            None => Ok(None),
        }
    }

    async fn user_record(&self, name: &str) -> Result<(User, Versioned)> {
        self.read(USER, &key_of(name))
            .await?
            .ok_or_else(|| DirectoryError::NotFound(format!("user {name} does not exist")))
    }

    async fn group_record(&self, name: &str) -> Result<(Group, Versioned)> {
        self.read(GROUP, &key_of(name))
            .await?
            .ok_or_else(|| DirectoryError::NotFound(format!("group {name} does not exist")))
    }

    /// Reads user `name`, lets `change` edit it (and name extra writes), and writes it back; retried
    /// when another writer changed the user meanwhile.
    async fn update_user<T>(
        &self,
        name: &str,
        mut change: impl FnMut(&mut User) -> Result<(T, Vec<DirWrite>)>,
    ) -> Result<T> {
        for _ in 0..CAS_ATTEMPTS {
            let (mut user, v) = self.user_record(name).await?;
            let (out, mut extra) = change(&mut user)?;
            let mut writes = vec![DirWrite::update(
                USER,
                &key_of(name),
                v.version,
                encode(&user)?,
            )];
            writes.append(&mut extra);
            if self.store.dir_write(&writes).await? {
                return Ok(out);
            }
        }
        Err(DirectoryError::Conflict(format!(
            "user {name} is being changed concurrently; try again"
        )))
    }

    async fn update_group(
        &self,
        name: &str,
        mut change: impl FnMut(&mut Group) -> Result<()>,
    ) -> Result<()> {
        for _ in 0..CAS_ATTEMPTS {
            let (mut group, v) = self.group_record(name).await?;
            change(&mut group)?;
            if self
                .store
                .dir_write(&[DirWrite::update(
                    GROUP,
                    &key_of(name),
                    v.version,
                    encode(&group)?,
                )])
                .await?
            {
                return Ok(());
            }
        }
        Err(DirectoryError::Conflict(format!(
            "group {name} is being changed concurrently; try again"
        )))
    }
}

/// A policy that applies to a user, before parsing.
#[derive(Debug, Clone, PartialEq)]
pub enum PolicySource {
    /// An inline policy of the user or one of its groups.
    Inline {
        /// Where it is attached, for explanations.
        label: String,
        /// The document.
        document: String,
    },
    /// A managed policy by ARN.
    Managed(String),
}

#[cfg(test)]
mod index_tests;
#[cfg(test)]
mod tests;
