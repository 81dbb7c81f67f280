//! rolegate's own directory, the IAM side: a root user, users with argon2id passwords, groups, their
//! policies, long-term access keys (`AKIA…`) and MFA devices (TOTP). Records live in the store's
//! [`DirectoryStore`](crate::store::DirectoryStore) as JSON documents changed with optimistic
//! concurrency, so every replica sees one directory. Knows nothing of HTTP, cookies or the policy
//! engine's evaluation (it only checks that policy documents parse).
//!
//! Records (kind → key → document): `user` → name → [`User`]; `user_id` → `AIDA…` → name;
//! `access_key` → `AKIA…` → user name; `key_used` → `AKIA…` → last use; `group` → name → [`Group`];
//! `mfa_state` → `user:<AIDA…>:totp` / `user:<AIDA…>:webauthn` → [`Throttle`] (last accepted step
//! and failures; keyed by user id, see [`keys`]); `login_state` →
//! user name → [`Throttle`]; `bootstrap` → `root` → the root bootstrap token's hash;
//! `webauthn_pending` → `reg:`/`auth:` + user (+ `:` + scope) → a pending ceremony (used once:
//! deleted before it is checked; a scope binds it to one caller, e.g. a browser session); `webauthn_credential` → credential id → user name (unique across users).

pub mod keys;
pub mod password;
mod status;
pub mod totp;
pub mod webauthn;

use crate::clock::SharedClock;
use crate::config::{DirectorySettings, WebAuthnSettings};
use crate::policy::{Policy, PolicyKind};
use crate::store::{DirWrite, Store, StoreError, Versioned};
use password::{Hasher, Password};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::fmt;
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
/// Last-use times of access keys are written at most this often per key, in seconds.
pub const KEY_USE_RESOLUTION: i64 = 60;
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
}

/// Result of directory operations.
pub type Result<T> = std::result::Result<T, DirectoryError>;

/// A secret kept in a record. `Debug` prints `***`.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Hidden(String);

impl Hidden {
    /// Wraps a secret.
    pub fn new(s: impl Into<String>) -> Self {
        Self(s.into())
    }

    /// The secret; call only where it is used.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Hidden {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("***")
    }
}

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
    pub secret: Hidden,
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
        secret: Hidden,
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
    pub password_hash: Option<Hidden>,
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
    /// The user's ARN (`…:root` for the root user).
    pub fn arn(&self, account: &str) -> String {
        if self.root {
            format!("arn:aws:iam::{account}:root")
        } else {
            format!("arn:aws:iam::{account}:user{}{}", self.path, self.name)
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

#[derive(Debug, Clone, Serialize, Deserialize)]
struct BootstrapToken {
    sha256: String,
    expires_at: i64,
}

/// A TOTP device waiting for its first two codes.
#[derive(Debug, Clone, PartialEq)]
pub struct TotpEnrolment {
    /// The device's serial number.
    pub serial: String,
    /// The secret in base32, for typing in.
    pub secret_base32: Hidden,
    /// The `otpauth://` URI, for a QR code.
    pub uri: Hidden,
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

fn sha256_hex(s: &str) -> String {
    hex::encode(aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, s.as_bytes()).as_ref())
}

/// The directory service.
pub struct Directory {
    webauthn: Option<webauthn::WebAuthnMfa>,
    store: Arc<dyn Store>,
    settings: DirectorySettings,
    clock: SharedClock,
    hasher: Hasher,
    issuer: String,
    key_use: parking_lot::Mutex<std::collections::HashMap<String, i64>>,
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
            store,
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

    // ----- users -----

    async fn insert_user(&self, user: &User) -> Result<bool> {
        Ok(self
            .store
            .dir_write(&[
                DirWrite::insert(USER, &key_of(&user.name), encode(user)?),
                DirWrite::insert(USER_ID, &user.user_id, user.name.clone()),
            ])
            .await?)
    }

    /// Creates a user without password, keys or devices.
    pub async fn create_user(&self, name: &str, path: Option<&str>) -> Result<User> {
        check_name("user", name)?;
        if let Some(why) = keys::reserved_user_name(name) {
            return Err(DirectoryError::Invalid(why.into()));
        }
        let path = path.unwrap_or("/");
        check_path(path)?;
        let user = User {
            name: name.to_string(),
            user_id: random_id("AIDA", 17)?,
            path: path.to_string(),
            root: false,
            created_at: self.now(),
            password_hash: None,
            password_changed_at: None,
            groups: Vec::new(),
            policies: BTreeMap::new(),
            managed_policy_arns: Vec::new(),
            access_keys: Vec::new(),
            mfa_devices: Vec::new(),
            disabled_at: None,
        };
        if self.insert_user(&user).await? {
            Ok(user)
        } else {
            Err(DirectoryError::Conflict(format!(
                "user {name} already exists"
            )))
        }
    }

    /// The user called `name` (case-insensitive).
    pub async fn user(&self, name: &str) -> Result<User> {
        Ok(self.user_record(name).await?.0)
    }

    /// The user with this id (`AIDA…`), if it still exists.
    pub async fn user_by_id(&self, id: &str) -> Result<Option<User>> {
        let Some(name) = self.store.dir_get(USER_ID, id).await? else {
            return Ok(None);
        };
        match self.read::<User>(USER, &key_of(&name.value)).await? {
            Some((u, _)) if u.user_id == id => Ok(Some(u)),
            _ => Ok(None),
        }
    }

    /// Every user, by name.
    pub async fn users(&self) -> Result<Vec<User>> {
        self.store
            .dir_list(USER)
            .await?
            .iter()
            .map(|(k, v)| decode(USER, k, v))
            .collect()
    }

    /// Deletes a user with everything it holds (keys, devices, memberships). The root user stays.
    pub async fn delete_user(&self, name: &str) -> Result<User> {
        for _ in 0..CAS_ATTEMPTS {
            let (user, v) = self.user_record(name).await?;
            if user.root {
                return Err(DirectoryError::Invalid(
                    "the root user cannot be deleted".into(),
                ));
            }
            let mut writes = vec![DirWrite::delete(USER, &key_of(name), v.version)];
            if let Some(idx) = self.store.dir_get(USER_ID, &user.user_id).await? {
                writes.push(DirWrite::delete(USER_ID, &user.user_id, idx.version));
            }
            for k in &user.access_keys {
                if let Some(idx) = self.store.dir_get(ACCESS_KEY, &k.id).await? {
                    writes.push(DirWrite::delete(ACCESS_KEY, &k.id, idx.version));
                }
            }
            if self.store.dir_write(&writes).await? {
                return Ok(user);
            }
        }
        Err(DirectoryError::Conflict(format!(
            "user {name} is being changed concurrently; try again"
        )))
    }

    fn check_password_rules(&self, user: &str, password: &Password) -> Result<()> {
        let p = password.expose();
        let n = p.chars().count();
        if n < self.settings.min_password_length {
            return Err(DirectoryError::Invalid(format!(
                "the password must have at least {} characters",
                self.settings.min_password_length
            )));
        }
        if n > 1024 {
            return Err(DirectoryError::Invalid(
                "the password must have at most 1024 characters".into(),
            ));
        }
        if p.eq_ignore_ascii_case(user) {
            return Err(DirectoryError::Invalid(
                "the password must not be the user name".into(),
            ));
        }
        Ok(())
    }

    /// Sets a user's password (hashed with argon2id off the runtime).
    pub async fn set_password(&self, name: &str, password: Password) -> Result<()> {
        let user = self.user(name).await?;
        self.check_password_rules(&user.name, &password)?;
        let hash = self
            .hasher
            .hash(password)
            .await
            .map_err(|e| DirectoryError::Internal(e.to_string()))?;
        let now = self.now();
        self.update_user(name, |u| {
            u.password_hash = Some(Hidden::new(hash.clone()));
            u.password_changed_at = Some(now);
            Ok(((), Vec::new()))
        })
        .await?;
        // A new password lifts a password lock.
        if let Some(v) = self.store.dir_get(LOGIN_STATE, &key_of(name)).await? {
            let _ = self
                .store
                .dir_write(&[DirWrite::delete(LOGIN_STATE, &key_of(name), v.version)])
                .await?;
        }
        Ok(())
    }

    /// Checks a password sign-in. Unknown users, users without a password and wrong passwords all
    /// cost one argon2 verification and give the same [`DirectoryError::Denied`]; after
    /// [`PASSWORD_MAX_FAILURES`] wrong passwords the user is locked for [`LOCK_SECONDS`].
    pub async fn check_password(&self, name: &str, password: Password) -> Result<User> {
        let now = self.now();
        let user = if valid_name(name) {
            self.read::<User>(USER, &key_of(name))
                .await?
                .map(|(u, _)| u)
        } else {
            None
        };
        let throttle_key = key_of(name);
        if user.is_some() {
            let what = format!("password sign-in of {throttle_key}");
            self.check_lock(LOGIN_STATE, &throttle_key, &what, now)
                .await?;
        }
        let hash = user
            .as_ref()
            .and_then(|u| u.password_hash.as_ref().map(|h| h.expose().to_string()));
        let ok = self
            .hasher
            .verify(hash, password)
            .await
            .map_err(|e| DirectoryError::Internal(e.to_string()))?;
        match user {
            Some(u) if ok && !u.active() => Err(DirectoryError::Denied(format!(
                "user {} is disabled",
                u.name
            ))),
            Some(u) if ok => {
                self.throttle(LOGIN_STATE, &throttle_key, now, |t| {
                    t.failures = 0;
                    t.locked_until = None;
                    Ok(())
                })
                .await?;
                Ok(u)
            }
            Some(u) => {
                let locked = self
                    .record_failure(LOGIN_STATE, &throttle_key, PASSWORD_MAX_FAILURES, now)
                    .await?;
                Err(DirectoryError::Denied(format!(
                    "wrong password for user {}{}",
                    u.name,
                    if locked {
                        "; password sign-in is now locked"
                    } else {
                        ""
                    }
                )))
            }
            None => Err(DirectoryError::Denied(format!(
                "no user {name} with a password"
            ))),
        }
    }

    // ----- throttles -----

    /// Refuses while the throttle record `kind`/`key` is locked; `what` names the credential.
    async fn check_lock(&self, kind: &str, key: &str, what: &str, now: i64) -> Result<()> {
        if let Some((t, _)) = self.read::<Throttle>(kind, key).await? {
            if let Some(until) = t.locked_until.filter(|u| *u > now) {
                return Err(DirectoryError::Locked {
                    what: what.to_string(),
                    until,
                });
            }
        }
        Ok(())
    }

    async fn throttle<T>(
        &self,
        kind: &str,
        key: &str,
        now: i64,
        mut change: impl FnMut(&mut Throttle) -> Result<T>,
    ) -> Result<T> {
        for _ in 0..CAS_ATTEMPTS {
            let current = self.read::<Throttle>(kind, key).await?;
            let mut t = current.as_ref().map(|(t, _)| t.clone()).unwrap_or_default();
            if t.locked_until.is_some_and(|u| u <= now) {
                t.locked_until = None;
                t.failures = 0;
            }
            let out = change(&mut t)?;
            let write = DirWrite::put(kind, key, current.as_ref().map(|(_, v)| v), encode(&t)?);
            if self.store.dir_write(&[write]).await? {
                return Ok(out);
            }
        }
        Err(DirectoryError::Conflict(format!(
            "{kind} {key} is being changed concurrently; try again"
        )))
    }

    /// Counts a failure; `true` if it locked the credential.
    async fn record_failure(&self, kind: &str, key: &str, max: u32, now: i64) -> Result<bool> {
        self.throttle(kind, key, now, |t| {
            if t.failures == 0 || now - t.first_failure > LOCK_SECONDS {
                t.failures = 0;
                t.first_failure = now;
            }
            t.failures += 1;
            if t.failures >= max {
                t.locked_until = Some(now + LOCK_SECONDS);
                return Ok(true);
            }
            Ok(false)
        })
        .await
    }

    // ----- root and bootstrap -----

    /// Creates the root user at first start. While root has no password, a fresh one-time bootstrap
    /// token is issued (and returned, to be shown to the operator once) whenever none is valid.
    pub async fn ensure_root(&self) -> Result<Option<String>> {
        let now = self.now();
        let root = match self.read::<User>(USER, ROOT).await? {
            Some((u, _)) => u,
            None => {
                let u = User {
                    name: ROOT.into(),
                    user_id: random_id("AIDA", 17)?,
                    path: "/".into(),
                    root: true,
                    created_at: now,
                    password_hash: None,
                    password_changed_at: None,
                    groups: Vec::new(),
                    policies: BTreeMap::new(),
                    managed_policy_arns: Vec::new(),
                    access_keys: Vec::new(),
                    mfa_devices: Vec::new(),
                    disabled_at: None,
                };
                self.insert_user(&u).await?;
                self.user(ROOT).await?
            }
        };
        if root.password_hash.is_some() && root.has_mfa() {
            return Ok(None);
        }
        let current = self.read::<BootstrapToken>(BOOTSTRAP, ROOT).await?;
        if let Some((t, _)) = &current {
            if t.expires_at > now {
                return Ok(None);
            }
        }
        let mut raw = [0u8; 32];
        crate::credentials::fill_random(&mut raw)
            .map_err(|e| DirectoryError::Internal(e.to_string()))?;
        let token = hex::encode(raw);
        let record = BootstrapToken {
            sha256: sha256_hex(&token),
            expires_at: now + BOOTSTRAP_SECONDS,
        };
        let write = DirWrite::put(
            BOOTSTRAP,
            ROOT,
            current.as_ref().map(|(_, v)| v),
            encode(&record)?,
        );
        if self.store.dir_write(&[write]).await? {
            Ok(Some(token))
        } else {
            Ok(None)
        }
    }

    async fn check_bootstrap(&self, token: &str) -> Result<Versioned> {
        let now = self.now();
        let denied = || DirectoryError::Denied("the bootstrap token is not valid".into());
        let (t, v) = self
            .read::<BootstrapToken>(BOOTSTRAP, ROOT)
            .await?
            .ok_or_else(denied)?;
        let same = subtle::ConstantTimeEq::ct_eq(sha256_hex(token).as_bytes(), t.sha256.as_bytes());
        if !bool::from(same) || t.expires_at <= now {
            return Err(denied());
        }
        Ok(v)
    }

    /// Step one of the root bootstrap: with a valid token, sets root's password and starts a TOTP
    /// device. The token stays valid until [`Directory::bootstrap_finish`].
    pub async fn bootstrap_start(&self, token: &str, password: Password) -> Result<TotpEnrolment> {
        self.check_bootstrap(token).await?;
        self.set_password(ROOT, password).await?;
        self.create_totp(ROOT).await
    }

    /// Step two: two consecutive codes enable root's device and use up the token.
    pub async fn bootstrap_finish(&self, token: &str, code1: &str, code2: &str) -> Result<()> {
        let v = self.check_bootstrap(token).await?;
        self.enable_totp(ROOT, code1, code2).await?;
        self.store
            .dir_write(&[DirWrite::delete(BOOTSTRAP, ROOT, v.version)])
            .await?;
        Ok(())
    }

    // ----- groups -----

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
            .users()
            .await?
            .into_iter()
            .filter(|u| u.groups.iter().any(|g| g.eq_ignore_ascii_case(name)))
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

    // ----- policies -----

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
    /// each of its groups, as (label, inline text or managed ARN, is managed).
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
            let Some((group, _)) = self.read::<Group>(GROUP, &key_of(g)).await? else {
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

    // ----- access keys -----

    /// Creates an access key for a user (at most [`MAX_ACCESS_KEYS`]; never for root).
    pub async fn create_access_key(&self, user: &str) -> Result<AccessKey> {
        for _ in 0..CAS_ATTEMPTS {
            let key = AccessKey {
                id: random_id("AKIA", 16)?,
                secret: Hidden::new(
                    crate::credentials::new_secret_access_key()
                        .map_err(|e| DirectoryError::Internal(e.to_string()))?,
                ),
                status: KeyStatus::Active,
                created_at: self.now(),
            };
            let (mut u, v) = self.user_record(user).await?;
            if u.root {
                return Err(DirectoryError::Invalid(
                    "the root user has no access keys: create a user for programmatic access"
                        .into(),
                ));
            }
            if u.access_keys.len() >= MAX_ACCESS_KEYS {
                return Err(DirectoryError::Conflict(format!(
                    "user {} already has {MAX_ACCESS_KEYS} access keys; delete one first",
                    u.name
                )));
            }
            u.access_keys.push(key.clone());
            if self
                .store
                .dir_write(&[
                    DirWrite::update(USER, &key_of(user), v.version, encode(&u)?),
                    DirWrite::insert(ACCESS_KEY, &key.id, u.name.clone()),
                ])
                .await?
            {
                return Ok(key);
            }
        }
        Err(DirectoryError::Conflict(format!(
            "user {user} is being changed concurrently; try again"
        )))
    }

    /// Activates or deactivates a key.
    pub async fn set_access_key_status(
        &self,
        user: &str,
        id: &str,
        status: KeyStatus,
    ) -> Result<()> {
        self.update_user(user, |u| {
            let k = u
                .access_keys
                .iter_mut()
                .find(|k| k.id == id)
                .ok_or_else(|| {
                    DirectoryError::NotFound(format!("user {user} has no access key {id}"))
                })?;
            k.status = status;
            Ok(((), Vec::new()))
        })
        .await
    }

    /// Deletes a key.
    pub async fn delete_access_key(&self, user: &str, id: &str) -> Result<()> {
        let idx = self.store.dir_get(ACCESS_KEY, id).await?;
        let used = self.store.dir_get(KEY_USED, id).await?;
        self.update_user(user, |u| {
            let before = u.access_keys.len();
            u.access_keys.retain(|k| k.id != id);
            if before == u.access_keys.len() {
                return Err(DirectoryError::NotFound(format!(
                    "user {user} has no access key {id}"
                )));
            }
            let mut extra = Vec::new();
            if let Some(v) = &idx {
                extra.push(DirWrite::delete(ACCESS_KEY, id, v.version));
            }
            if let Some(v) = &used {
                extra.push(DirWrite::delete(KEY_USED, id, v.version));
            }
            Ok(((), extra))
        })
        .await
    }

    /// Rotation: a new active key is created and the user's only other key is deactivated (delete it
    /// once nothing uses it). Refused when the user already has two keys.
    pub async fn rotate_access_key(&self, user: &str) -> Result<(AccessKey, Option<String>)> {
        let u = self.user(user).await?;
        if u.access_keys.len() >= MAX_ACCESS_KEYS {
            return Err(DirectoryError::Conflict(format!(
                "user {} has {MAX_ACCESS_KEYS} access keys; delete the one being replaced before rotating",
                u.name
            )));
        }
        let old = u.access_keys.first().map(|k| k.id.clone());
        let new = self.create_access_key(user).await?;
        if let Some(old) = &old {
            self.set_access_key_status(user, old, KeyStatus::Inactive)
                .await?;
        }
        Ok((new, old))
    }

    /// The user owning an access key and the key, if both exist.
    pub async fn access_key(&self, id: &str) -> Result<Option<(User, AccessKey)>> {
        let Some(owner) = self.store.dir_get(ACCESS_KEY, id).await? else {
            return Ok(None);
        };
        let Some((user, _)) = self.read::<User>(USER, &key_of(&owner.value)).await? else {
            return Ok(None);
        };
        let key = user.access_keys.iter().find(|k| k.id == id).cloned();
        Ok(key.map(|k| (user, k)))
    }

    /// Records that a key signed a request, at most once per [`KEY_USE_RESOLUTION`] per key and
    /// process (best effort: a failure is logged, never fatal).
    pub async fn touch_access_key(&self, id: &str, service: &str, region: &str) {
        let now = self.now();
        {
            let mut seen = self.key_use.lock();
            if seen.get(id).is_some_and(|t| now - t < KEY_USE_RESOLUTION) {
                return;
            }
            if seen.len() > 100_000 {
                seen.clear();
            }
            seen.insert(id.to_string(), now);
        }
        let record = KeyUse {
            time: now,
            service: service.to_string(),
            region: region.to_string(),
        };
        let result = async {
            let current = self.store.dir_get(KEY_USED, id).await?;
            let value = encode(&record)?;
            let write = DirWrite::put(KEY_USED, id, current.as_ref(), value);
            self.store.dir_write(&[write]).await?;
            Ok::<_, DirectoryError>(())
        }
        .await;
        if let Err(e) = result {
            tracing::warn!(access_key = id, error = %e, "recording access key use failed");
        }
    }

    /// When a key last signed a request.
    pub async fn access_key_last_used(&self, id: &str) -> Result<Option<KeyUse>> {
        Ok(self.read::<KeyUse>(KEY_USED, id).await?.map(|(k, _)| k))
    }

    // ----- MFA -----

    /// The serial number of a user's virtual MFA device.
    pub fn totp_serial(&self, user: &User) -> String {
        if user.root {
            format!(
                "arn:aws:iam::{}:mfa/{}",
                self.account(),
                keys::ROOT_MFA_DEVICE
            )
        } else {
            format!("arn:aws:iam::{}:mfa/{}", self.account(), user.name)
        }
    }

    /// Starts (or restarts) enrolment of the user's TOTP device. A user has at most one; an enabled
    /// one must be deleted first.
    pub async fn create_totp(&self, user: &str) -> Result<TotpEnrolment> {
        let secret = totp::new_secret().map_err(|e| DirectoryError::Internal(e.to_string()))?;
        let b32 = totp::base32(&secret);
        let now = self.now();
        let u = self.user(user).await?;
        let serial = self.totp_serial(&u);
        let label = if u.root {
            "root".to_string()
        } else {
            u.name.clone()
        };
        let uri = totp::uri(&secret, &self.issuer, &label)
            .map_err(|e| DirectoryError::Internal(e.to_string()))?;
        let s = serial.clone();
        let secret_b32 = b32.clone();
        self.update_user(user, move |u| {
            if u.mfa_devices.iter().any(|d| d.serial() == s && d.enabled()) {
                return Err(DirectoryError::Conflict(format!(
                    "user {} already has an enabled MFA device {s}; delete it first",
                    u.name
                )));
            }
            u.mfa_devices.retain(|d| d.serial() != s);
            u.mfa_devices.push(MfaDevice::Totp {
                serial: s.clone(),
                secret: Hidden::new(secret_b32.clone()),
                enabled_at: None,
                created_at: now,
            });
            Ok(((), Vec::new()))
        })
        .await?;
        Ok(TotpEnrolment {
            serial,
            secret_base32: Hidden::new(b32),
            uri: Hidden::new(uri),
        })
    }

    /// Confirms enrolment with two consecutive codes (as IAM's `EnableMFADevice`).
    pub async fn enable_totp(&self, user: &str, code1: &str, code2: &str) -> Result<String> {
        let now = self.now();
        let u = self.user(user).await?;
        let serial = self.totp_serial(&u);
        let Some(MfaDevice::Totp {
            secret, enabled_at, ..
        }) = u.mfa_devices.iter().find(|d| d.serial() == serial)
        else {
            return Err(DirectoryError::NotFound(format!(
                "user {user} has no MFA device waiting for enrolment"
            )));
        };
        if enabled_at.is_some() {
            return Err(DirectoryError::Conflict(format!(
                "MFA device {serial} is already enabled"
            )));
        }
        let state = keys::totp_state_key(&u);
        self.check_lock(MFA_STATE, &state, &format!("MFA device {serial}"), now)
            .await?;
        let secret = totp::from_base32(secret.expose())
            .map_err(|e| DirectoryError::Internal(e.to_string()))?;
        let s1 = totp::matching_step(&secret, code1, now, None)
            .map_err(|e| DirectoryError::Internal(e.to_string()))?;
        let s2 = totp::matching_step(&secret, code2, now, None)
            .map_err(|e| DirectoryError::Internal(e.to_string()))?;
        let consecutive = matches!((s1, s2), (Some(a), Some(b)) if b == a + 1);
        if !consecutive {
            self.record_failure(MFA_STATE, &state, MFA_MAX_FAILURES, now)
                .await?;
            return Err(DirectoryError::Denied(
                "the two codes are not consecutive valid codes of the device".into(),
            ));
        }
        let last = s2;
        self.throttle(MFA_STATE, &state, now, |t| {
            *t = Throttle {
                last_step: last,
                ..Throttle::default()
            };
            Ok(())
        })
        .await?;
        let s = serial.clone();
        self.update_user(user, move |u| {
            for d in u.mfa_devices.iter_mut() {
                if let MfaDevice::Totp {
                    serial, enabled_at, ..
                } = d
                {
                    if *serial == s {
                        *enabled_at = Some(now);
                    }
                }
            }
            Ok(((), Vec::new()))
        })
        .await?;
        Ok(serial)
    }

    /// Removes an MFA device.
    pub async fn delete_mfa_device(&self, user: &str, serial: &str) -> Result<()> {
        // The TOTP device's state goes with it; security keys share one per-user failure count.
        let u = self.user(user).await?;
        let is_totp = u
            .mfa_devices
            .iter()
            .any(|d| d.serial() == serial && matches!(d, MfaDevice::Totp { .. }));
        let state = match is_totp {
            true => {
                let key = keys::totp_state_key(&u);
                self.store.dir_get(MFA_STATE, &key).await?.map(|v| (key, v))
            }
            false => None,
        };
        let credential = match serial.strip_prefix("webauthn:") {
            Some(id) => self
                .store
                .dir_get(WEBAUTHN_CREDENTIAL, id)
                .await?
                .map(|v| (id, v)),
            None => None,
        };
        self.update_user(user, |u| {
            let before = u.mfa_devices.len();
            u.mfa_devices.retain(|d| d.serial() != serial);
            if before == u.mfa_devices.len() {
                return Err(DirectoryError::NotFound(format!(
                    "user {} has no MFA device {serial}",
                    u.name
                )));
            }
            let mut extra: Vec<DirWrite> = state
                .as_ref()
                .map(|(key, v)| vec![DirWrite::delete(MFA_STATE, key, v.version)])
                .unwrap_or_default();
            if let Some((id, v)) = &credential {
                extra.push(DirWrite::delete(WEBAUTHN_CREDENTIAL, id, v.version));
            }
            Ok(((), extra))
        })
        .await
    }

    /// Verifies a TOTP code of the user's enabled device `serial`: each code (step) is accepted at
    /// most once, and never a step at or before the last accepted one; after [`MFA_MAX_FAILURES`]
    /// wrong codes the device is locked for [`LOCK_SECONDS`]. Returns the time of the MFA.
    pub async fn verify_totp(&self, user: &User, serial: &str, code: &str) -> Result<i64> {
        let now = self.now();
        let Some(MfaDevice::Totp { secret, .. }) = user
            .mfa_devices
            .iter()
            .find(|d| d.serial() == serial && d.enabled())
        else {
            return Err(DirectoryError::Denied(format!(
                "user {} has no enabled MFA device {serial}",
                user.name
            )));
        };
        let secret = totp::from_base32(secret.expose())
            .map_err(|e| DirectoryError::Internal(e.to_string()))?;
        let key = keys::totp_state_key(user);
        // State kept under the serial by earlier versions (which another user's name could share):
        // only its last accepted step is honoured, so that a code used just before an upgrade, or on
        // a replica not yet upgraded, is not accepted again.
        let legacy_step = self
            .read::<Throttle>(MFA_STATE, serial)
            .await?
            .and_then(|(t, _)| t.last_step);
        for _ in 0..CAS_ATTEMPTS {
            let current = self.read::<Throttle>(MFA_STATE, &key).await?;
            let mut t = current.as_ref().map(|(t, _)| t.clone()).unwrap_or_default();
            t.last_step = t.last_step.max(legacy_step);
            if let Some(until) = t.locked_until.filter(|u| *u > now) {
                return Err(DirectoryError::Locked {
                    what: format!("MFA device {serial}"),
                    until,
                });
            }
            if t.locked_until.is_some() {
                t.locked_until = None;
                t.failures = 0;
            }
            let matched = totp::matching_step(&secret, code, now, t.last_step)
                .map_err(|e| DirectoryError::Internal(e.to_string()))?;
            let replayed = matched.is_none()
                && totp::matching_step(&secret, code, now, None)
                    .map_err(|e| DirectoryError::Internal(e.to_string()))?
                    .is_some();
            match matched {
                Some(step) => {
                    t.last_step = Some(step);
                    t.failures = 0;
                }
                None => {
                    if t.failures == 0 || now - t.first_failure > LOCK_SECONDS {
                        t.failures = 0;
                        t.first_failure = now;
                    }
                    t.failures += 1;
                    if t.failures >= MFA_MAX_FAILURES {
                        t.locked_until = Some(now + LOCK_SECONDS);
                    }
                }
            }
            let write = DirWrite::put(
                MFA_STATE,
                &key,
                current.as_ref().map(|(_, v)| v),
                encode(&t)?,
            );
            if !self.store.dir_write(&[write]).await? {
                continue;
            }
            return match matched {
                Some(_) => Ok(now),
                None if replayed => Err(DirectoryError::Denied(format!(
                    "MFA code for {serial} was already used"
                ))),
                None => Err(DirectoryError::Denied(format!(
                    "wrong MFA code for {serial}{}",
                    if t.locked_until.is_some() {
                        "; the device is now locked"
                    } else {
                        ""
                    }
                ))),
            };
        }
        Err(DirectoryError::Conflict(format!(
            "MFA device {serial} is being used concurrently; try again"
        )))
    }
}

impl Directory {
    fn webauthn(&self) -> Result<&webauthn::WebAuthnMfa> {
        self.webauthn.as_ref().ok_or_else(|| {
            DirectoryError::Invalid(
                "security keys need a public_url with https (or localhost): WebAuthn is off".into(),
            )
        })
    }

    fn security_keys(user: &User) -> Vec<webauthn::StoredKey> {
        user.mfa_devices
            .iter()
            .filter_map(|d| match d {
                MfaDevice::SecurityKey { key, .. } => Some(key.clone()),
                MfaDevice::Totp { .. } => None,
            })
            .collect()
    }

    fn user_handle(user: &User) -> uuid::Uuid {
        let digest = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, user.user_id.as_bytes());
        let mut b = [0u8; 16];
        b.copy_from_slice(&digest.as_ref()[..16]);
        uuid::Uuid::from_bytes(b)
    }

    async fn put_pending(&self, key: &str, p: &webauthn::PendingCeremony) -> Result<()> {
        let value = encode(p)?;
        for _ in 0..CAS_ATTEMPTS {
            let current = self.store.dir_get(WEBAUTHN_PENDING, key).await?;
            let write = DirWrite::put(WEBAUTHN_PENDING, key, current.as_ref(), value.clone());
            if self.store.dir_write(&[write]).await? {
                return Ok(());
            }
        }
        Err(DirectoryError::Conflict(
            "ceremony started concurrently; try again".into(),
        ))
    }

    /// Takes the pending ceremony out of the store: it is deleted before it is checked, so it can
    /// be finished at most once whatever the outcome.
    async fn take_pending(&self, key: &str) -> Result<webauthn::PendingCeremony> {
        let none = || DirectoryError::Denied("no security key ceremony is pending".into());
        let v = self
            .store
            .dir_get(WEBAUTHN_PENDING, key)
            .await?
            .ok_or_else(none)?;
        if !self
            .store
            .dir_write(&[DirWrite::delete(WEBAUTHN_PENDING, key, v.version)])
            .await?
        {
            return Err(none());
        }
        decode(WEBAUTHN_PENDING, key, &v)
    }

    /// Whether security keys are enabled (a relying party is configured).
    pub fn webauthn_enabled(&self) -> bool {
        self.webauthn.is_some()
    }

    /// The user's registered security keys.
    pub fn security_keys_of(user: &User) -> Vec<webauthn::StoredKey> {
        Self::security_keys(user)
    }

    /// Deletes pending ceremonies whose deadline has passed (and records that no longer decode),
    /// left behind by browsers that never finished them; returns how many.
    pub async fn purge_expired_ceremonies(&self) -> Result<usize> {
        let now = self.now();
        let mut n = 0;
        for (key, v) in self.store.dir_list(WEBAUTHN_PENDING).await? {
            let dead = serde_json::from_str::<webauthn::PendingCeremony>(&v.value)
                .map(|p| p.expires_at <= now)
                .unwrap_or(true);
            if dead
                && self
                    .store
                    .dir_write(&[DirWrite::delete(WEBAUTHN_PENDING, &key, v.version)])
                    .await?
            {
                n += 1;
            }
        }
        Ok(n)
    }

    /// Starts registering a security key: the options for `navigator.credentials.create()`.
    pub async fn start_security_key_registration(&self, user: &str) -> Result<serde_json::Value> {
        self.start_security_key_registration_in(user, "").await
    }

    /// [`Self::start_security_key_registration`] bound to `scope` (e.g. a session's id hash): only
    /// a finish with the same scope finds the ceremony, and it replaces an earlier one of the scope.
    pub async fn start_security_key_registration_in(
        &self,
        user: &str,
        scope: &str,
    ) -> Result<serde_json::Value> {
        let w = self.webauthn()?;
        let u = self.user(user).await?;
        let (options, pending) = w
            .start_registration(
                Self::user_handle(&u),
                &u.name,
                &Self::security_keys(&u),
                self.now(),
            )
            .map_err(|e| DirectoryError::Internal(e.to_string()))?;
        self.put_pending(&pending_key("reg", &u.name, scope), &pending)
            .await?;
        Ok(options)
    }

    /// Finishes registering a security key with the browser's response; returns its serial.
    pub async fn finish_security_key_registration(
        &self,
        user: &str,
        response: &serde_json::Value,
        label: &str,
    ) -> Result<String> {
        self.finish_security_key_registration_in(user, "", response, label)
            .await
    }

    /// [`Self::finish_security_key_registration`] of a ceremony started in `scope`.
    pub async fn finish_security_key_registration_in(
        &self,
        user: &str,
        scope: &str,
        response: &serde_json::Value,
        label: &str,
    ) -> Result<String> {
        let w = self.webauthn()?;
        let pending = self.take_pending(&pending_key("reg", user, scope)).await?;
        let key = w
            .finish_registration(&pending, response, label, self.now())
            .map_err(|e| DirectoryError::Denied(e.to_string()))?;
        if self
            .store
            .dir_get(WEBAUTHN_CREDENTIAL, &key.credential_id)
            .await?
            .is_some()
        {
            return Err(DirectoryError::Conflict(
                "this security key is already registered".into(),
            ));
        }
        let serial = format!("webauthn:{}", key.credential_id);
        let cred = key.credential_id.clone();
        let s = serial.clone();
        self.update_user(user, move |u| {
            u.mfa_devices.push(MfaDevice::SecurityKey {
                serial: s.clone(),
                key: key.clone(),
            });
            // A credential id belongs to one user: the insert fails if it is registered anywhere.
            Ok((
                (),
                vec![DirWrite::insert(WEBAUTHN_CREDENTIAL, &cred, u.name.clone())],
            ))
        })
        .await?;
        Ok(serial)
    }

    /// Starts a security-key sign-in: the options for `navigator.credentials.get()`.
    pub async fn start_security_key_authentication(
        &self,
        user: &User,
    ) -> Result<serde_json::Value> {
        self.start_security_key_authentication_in(user, "").await
    }

    /// [`Self::start_security_key_authentication`] bound to `scope`.
    pub async fn start_security_key_authentication_in(
        &self,
        user: &User,
        scope: &str,
    ) -> Result<serde_json::Value> {
        let w = self.webauthn()?;
        let (options, pending) = w
            .start_authentication(&Self::security_keys(user), self.now())
            .map_err(|e| DirectoryError::Denied(e.to_string()))?;
        self.put_pending(&pending_key("auth", &user.name, scope), &pending)
            .await?;
        Ok(options)
    }

    /// Verifies a security-key assertion; the updated counter is written back only if the user
    /// did not change meanwhile, so two ceremonies cannot both pass with one counter value. Counts
    /// failures like wrong TOTP codes. Returns the time of the MFA.
    pub async fn finish_security_key_authentication(
        &self,
        user: &str,
        response: &serde_json::Value,
    ) -> Result<i64> {
        self.finish_security_key_authentication_in(user, "", response)
            .await
    }

    /// [`Self::finish_security_key_authentication`] of a ceremony started in `scope`.
    pub async fn finish_security_key_authentication_in(
        &self,
        user: &str,
        scope: &str,
        response: &serde_json::Value,
    ) -> Result<i64> {
        let w = self.webauthn()?;
        let now = self.now();
        let throttle_key = keys::webauthn_state_key(&self.user(user).await?);
        let what = format!("security keys of {}", key_of(user));
        self.check_lock(MFA_STATE, &throttle_key, &what, now)
            .await?;
        let pending = self.take_pending(&pending_key("auth", user, scope)).await?;
        let (u, v) = self.user_record(user).await?;
        match w.finish_authentication(&pending, response, &Self::security_keys(&u), now) {
            Ok((used, updated)) => {
                if let Some(updated) = updated {
                    let mut u2 = u.clone();
                    for d in u2.mfa_devices.iter_mut() {
                        if let MfaDevice::SecurityKey { key, .. } = d {
                            if key.credential_id == used {
                                *key = updated.clone();
                            }
                        }
                    }
                    if !self
                        .store
                        .dir_write(&[DirWrite::update(
                            USER,
                            &key_of(user),
                            v.version,
                            encode(&u2)?,
                        )])
                        .await?
                    {
                        return Err(DirectoryError::Denied(
                            "the security key was used concurrently; try again".into(),
                        ));
                    }
                }
                Ok(now)
            }
            Err(e) => {
                self.record_failure(MFA_STATE, &throttle_key, MFA_MAX_FAILURES, now)
                    .await?;
                Err(DirectoryError::Denied(e.to_string()))
            }
        }
    }
}

/// The record key of a pending ceremony: `reg:`/`auth:` + user, and `:` + scope when scoped (user
/// names cannot contain `:`).
fn pending_key(kind: &str, user: &str, scope: &str) -> String {
    if scope.is_empty() {
        format!("{kind}:{}", key_of(user))
    } else {
        format!("{kind}:{}:{scope}", key_of(user))
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
mod tests;
