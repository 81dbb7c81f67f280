//! Storage for what must outlive a process or be shared between replicas: sealing keys, replay records
//! (SAML assertion IDs, OIDC nonces, TOTP steps), revocation epochs, the local directory and the audit
//! log.
//!
//! Each capability is its own trait ([`KeyStore`], [`ReplayCache`], [`RevocationStore`],
//! [`DirectoryStore`], [`AuditLog`]);
//! [`Store`] composes them. Backends: [`SledStore`] (embedded, one process per directory),
//! [`PgStore`] (PostgreSQL, shared by several replicas) and [`MemoryStore`] (tests). Every backend must pass [`conformance::run`]. Atomic operations are single
//! calls so that an SQL backend can express each as one statement.
//!
//! The store knows no domain rules: it never decides whether a token, key or principal is valid; it only
//! keeps records and compares the times it is given. All times are Unix seconds except audit
//! `time_ms` (Unix milliseconds).
//!
//! In SQL each operation is one statement: `first_use` an `INSERT … ON CONFLICT (namespace, key) DO
//! UPDATE SET expires_at = excluded.expires_at WHERE <table>.expires_at <= $now` (one row affected
//! means first use); `insert_sealing_key` an `INSERT … ON CONFLICT DO NOTHING`; `retire_sealing_key`
//! an `UPDATE … SET retired_at = LEAST(retired_at, $t)`; `revoke` an upsert keyed by scope using
//! `GREATEST`; `append_audit` one `INSERT … ON CONFLICT DO NOTHING` keyed by `(time_ms, id)` (a batch of
//! more than 1,000 records: several in one transaction); `dir_write` one transaction whose conditional `INSERT`/`UPDATE … WHERE version =
//! $v`/`DELETE … WHERE version = $v` statements must each touch exactly one row, rolled back otherwise.

use async_trait::async_trait;
use serde::{Deserialize, Serialize};
use std::fmt;

mod audit_files;
mod codec;
#[doc(hidden)]
pub mod conformance;
mod group_commit;
pub mod memory;
pub mod postgres;
pub mod sled;

pub use self::memory::MemoryStore;
pub use self::postgres::PgStore;
pub use self::sled::SledStore;

/// Errors of the storage layer.
#[derive(Debug, Clone, thiserror::Error)]
pub enum StoreError {
    /// The backend cannot be reached or failed an I/O operation.
    #[error("store unavailable: {0}")]
    Unavailable(String),
    /// The backend is held by another process.
    #[error("store locked: {0}")]
    Locked(String),
    /// A stored record cannot be read back (damaged, or written by an unknown format version).
    #[error("store data corrupt: {0}")]
    Corrupt(String),
    /// The request itself is malformed (empty identifier, expiry not after `now`, wrong key length).
    #[error("invalid store request: {0}")]
    Invalid(String),
    /// The record to change does not exist.
    #[error("not found: {0}")]
    NotFound(String),
}

/// Result of storage operations.
pub type Result<T> = std::result::Result<T, StoreError>;

/// The secret bytes of a sealing key ([`KeyBytes::LEN`] of them in every stored key). `Debug` prints
/// `***`; equality is constant-time.
#[derive(Clone)]
pub struct KeyBytes(Vec<u8>);

impl KeyBytes {
    /// Length of a sealing key secret in bytes; [`KeyStore::insert_sealing_key`] refuses any other.
    pub const LEN: usize = 32;

    /// Wraps secret bytes.
    pub fn new(bytes: Vec<u8>) -> Self {
        Self(bytes)
    }

    /// Copies a secret from a slice; [`StoreError::Invalid`] unless it is exactly [`KeyBytes::LEN`] bytes.
    pub fn from_slice(bytes: &[u8]) -> Result<Self> {
        if bytes.len() != Self::LEN {
            return Err(StoreError::Invalid(format!(
                "a sealing key secret is {} bytes, got {}",
                Self::LEN,
                bytes.len()
            )));
        }
        Ok(Self(bytes.to_vec()))
    }

    /// The secret bytes; call only where they are used.
    pub fn expose(&self) -> &[u8] {
        &self.0
    }
}

impl From<[u8; KeyBytes::LEN]> for KeyBytes {
    fn from(bytes: [u8; KeyBytes::LEN]) -> Self {
        Self(bytes.to_vec())
    }
}

impl fmt::Debug for KeyBytes {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("***")
    }
}

impl PartialEq for KeyBytes {
    fn eq(&self, other: &Self) -> bool {
        // Secrets are compared without early exit so that timing reveals nothing but their lengths.
        self.0.len() == other.0.len()
            && self
                .0
                .iter()
                .zip(other.0.iter())
                .fold(0u8, |acc, (a, b)| acc | (a ^ b))
                == 0
    }
}

impl Eq for KeyBytes {}

/// A key that seals session tokens.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SealingKey {
    /// Identifier carried in sealed tokens; unique in the store.
    pub id: String,
    /// The secret.
    pub secret: KeyBytes,
    /// When the key was created (Unix seconds).
    pub created_at: i64,
    /// When the key stopped sealing new tokens (Unix seconds); it may still unseal until deleted.
    pub retired_at: Option<i64>,
}

/// Sealing keys shared by all replicas.
#[async_trait]
pub trait KeyStore: Send + Sync {
    /// All stored keys, ordered by `created_at`, then `id`.
    async fn sealing_keys(&self) -> Result<Vec<SealingKey>>;
    /// Stores a new key, durably on return. `false` (and nothing changes) if a key with this id exists.
    async fn insert_sealing_key(&self, key: &SealingKey) -> Result<bool>;
    /// Marks a key retired at `retired_at`. A key already retired keeps the earlier of the two times.
    /// [`StoreError::NotFound`] if there is no such key.
    async fn retire_sealing_key(&self, id: &str, retired_at: i64) -> Result<()>;
    /// Removes a key; removing a key that does not exist succeeds.
    async fn delete_sealing_key(&self, id: &str) -> Result<()>;
}

/// Single-use records: each (namespace, key) is accepted once until it expires.
#[async_trait]
pub trait ReplayCache: Send + Sync {
    /// Atomically records (namespace, key) until `expires_at`; `true` if this is its first use (or the
    /// previous record has expired by `now`), `false` if it is a replay. A record is live while
    /// `now < expires_at`. Durable once it returns `true`. [`StoreError::Invalid`] if `expires_at <= now`
    /// or the namespace or key is empty.
    async fn first_use(
        &self,
        namespace: &str,
        key: &str,
        expires_at: i64,
        now: i64,
    ) -> Result<bool>;
    /// Removes records with `expires_at <= now`; returns how many were removed.
    async fn purge_expired_replays(&self, now: i64) -> Result<u64>;
}

/// What a revocation applies to. Scopes are distinct keys: `Role("x")` and `Session("x")` never merge.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum RevocationScope {
    /// Every session.
    All,
    /// Sessions of one role (by role ARN).
    Role(String),
    /// Sessions of one federated subject of one provider.
    Subject {
        /// The identity provider's name.
        provider: String,
        /// The subject at that provider.
        subject: String,
    },
    /// One session (by session id), and the sessions chained from it.
    Session(String),
    /// Credentials with one access key id.
    AccessKey(String),
    /// Sessions that a user of the local directory started, directly or by a chain (by user id).
    User(String),
}

/// "Tokens in this scope issued before `issued_before` are revoked".
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Revocation {
    /// What the revocation applies to.
    pub scope: RevocationScope,
    /// Tokens issued strictly before this time (Unix seconds) are revoked.
    pub issued_before: i64,
    /// When the revocation was made (Unix seconds).
    pub created_at: i64,
    /// Free text for operators.
    pub reason: String,
    /// When the record may be dropped (Unix seconds): no token it covers is valid after this time.
    pub expires_at: i64,
}

/// Revocation epochs shared by all replicas.
#[async_trait]
pub trait RevocationStore: Send + Sync {
    /// Records a revocation, durably on return. For a scope already stored, `issued_before` never moves
    /// back: the record with the later `issued_before` supplies `issued_before`, `created_at` and
    /// `reason` (on a tie the stored one stays), and `expires_at` becomes the later of the two.
    async fn revoke(&self, r: &Revocation) -> Result<()>;
    /// All stored revocations, including expired ones not yet purged; in no particular order.
    async fn revocations(&self) -> Result<Vec<Revocation>>;
    /// Removes revocations with `expires_at <= now`; returns how many were removed.
    async fn purge_expired_revocations(&self, now: i64) -> Result<u64>;
}

/// A directory record as stored: an opaque document (JSON, written by the domain) and its version.
/// The first write of a key gives version 1; each later write adds one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Versioned {
    /// The document.
    pub value: String,
    /// How many times the record has been written since it was (last) created.
    pub version: u64,
}

/// What a directory write requires of the record it touches.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Expect {
    /// No record with this key exists.
    Absent,
    /// The record exists at exactly this version.
    Version(u64),
}

/// One write of an atomic directory batch ([`DirectoryStore::dir_write`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DirWrite {
    /// The kind of record (a namespace: `user`, `access_key`, …).
    pub kind: String,
    /// The record's key within its kind.
    pub key: String,
    /// What must hold for the batch to apply.
    pub expect: Expect,
    /// The new document; `None` deletes the record (with [`Expect::Absent`], a pure guard that
    /// changes nothing).
    pub value: Option<String>,
}

impl DirWrite {
    /// Creates a record that must not exist yet.
    pub fn insert(kind: &str, key: &str, value: String) -> Self {
        Self::new(kind, key, Expect::Absent, Some(value))
    }

    /// Replaces the record at `version`.
    pub fn update(kind: &str, key: &str, version: u64, value: String) -> Self {
        Self::new(kind, key, Expect::Version(version), Some(value))
    }

    /// Deletes the record at `version`.
    pub fn delete(kind: &str, key: &str, version: u64) -> Self {
        Self::new(kind, key, Expect::Version(version), None)
    }

    /// Writes `value` over the record as last read (`current`): an update of that version, or an
    /// insert when it did not exist.
    pub fn put(kind: &str, key: &str, current: Option<&Versioned>, value: String) -> Self {
        match current {
            Some(v) => Self::update(kind, key, v.version, value),
            None => Self::insert(kind, key, value),
        }
    }

    /// Requires that the record does not exist, changing nothing.
    pub fn absent(kind: &str, key: &str) -> Self {
        Self::new(kind, key, Expect::Absent, None)
    }

    /// Requires that the record is at `version`, changing nothing: written back unchanged.
    pub fn unchanged(kind: &str, key: &str, current: &Versioned) -> Self {
        Self::update(kind, key, current.version, current.value.clone())
    }

    fn new(kind: &str, key: &str, expect: Expect, value: Option<String>) -> Self {
        Self {
            kind: kind.to_owned(),
            key: key.to_owned(),
            expect,
            value,
        }
    }
}

/// Most writes in one directory batch.
pub const MAX_DIR_BATCH: usize = 64;

/// The local directory (users, groups, access keys, MFA devices, bootstrap tokens, login records) as
/// versioned documents with optimistic concurrency: every change names the version it read, and a
/// batch applies only if every record is still as read. The domain owns the documents' meaning.
#[async_trait]
pub trait DirectoryStore: Send + Sync {
    /// The record `(kind, key)`, if it exists.
    async fn dir_get(&self, kind: &str, key: &str) -> Result<Option<Versioned>>;
    /// Every record of `kind`, ordered by key (byte order).
    async fn dir_list(&self, kind: &str) -> Result<Vec<(String, Versioned)>>;
    /// Applies every write of `writes` atomically and durably if each one's [`Expect`] holds:
    /// `true`. Otherwise nothing changes: `false`. [`StoreError::Invalid`] for an empty batch, one
    /// longer than [`MAX_DIR_BATCH`], an empty kind or key, a kind containing NUL, or the same record
    /// twice.
    async fn dir_write(&self, writes: &[DirWrite]) -> Result<bool>;
}

/// Deletes the directory record `(kind, key)`, reading it again when another writer changed it
/// first, at most `attempts` times: `true` once it is gone (also when there was none), `false`
/// when it changed under every attempt.
pub async fn delete_dir_record<S: DirectoryStore + ?Sized>(
    store: &S,
    kind: &str,
    key: &str,
    attempts: usize,
) -> Result<bool> {
    for _ in 0..attempts {
        let Some(v) = store.dir_get(kind, key).await? else {
            return Ok(true);
        };
        if store
            .dir_write(&[DirWrite::delete(kind, key, v.version)])
            .await?
        {
            return Ok(true);
        }
    }
    Ok(false)
}

/// Deletes the directory records of `kind` whose document `dead` says has run out (the callers
/// count one that no longer decodes as run out); returns how many. A record changed since it was
/// listed is left for the next purge.
pub async fn purge_dir_records<S: DirectoryStore + ?Sized>(
    store: &S,
    kind: &str,
    dead: impl Fn(&str) -> bool,
) -> Result<usize> {
    let mut n = 0;
    for (key, v) in store.dir_list(kind).await? {
        if dead(&v.value)
            && store
                .dir_write(&[DirWrite::delete(kind, &key, v.version)])
                .await?
        {
            n += 1;
        }
    }
    Ok(n)
}

/// One stored audit event. `(time_ms, id)` identifies it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuditRecord {
    /// When it happened (Unix milliseconds).
    pub time_ms: i64,
    /// Unique id of the event.
    pub id: String,
    /// What was attempted (e.g. `sts:AssumeRoleWithWebIdentity`).
    pub action: String,
    /// Who attempted it, when known.
    pub principal: Option<String>,
    /// The outcome (e.g. `allow`, `deny`).
    pub decision: String,
    /// The full event as JSON; opaque to the store.
    pub json: String,
}

/// Which audit records to return.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuditQuery {
    /// Only records with `time_ms >= since_ms`.
    pub since_ms: Option<i64>,
    /// Only records with `time_ms < until_ms`.
    pub until_ms: Option<i64>,
    /// Only records with exactly this action.
    pub action: Option<String>,
    /// Only records with exactly this principal (records without one never match).
    pub principal: Option<String>,
    /// Only records with exactly this decision.
    pub decision: Option<String>,
    /// At most this many records (0 returns none).
    pub limit: usize,
    /// Order by `(time_ms, id)` descending instead of ascending; `limit` keeps the first in this order.
    pub newest_first: bool,
}

impl AuditQuery {
    /// The `limit` of [`AuditQuery::default`].
    pub const DEFAULT_LIMIT: usize = 100;

    /// Whether `r` passes the time range and every filter (`limit` and order aside).
    pub fn matches(&self, r: &AuditRecord) -> bool {
        audit_time_matches(self, r.time_ms) && audit_filter_matches(self, r)
    }
}

impl Default for AuditQuery {
    /// The newest [`AuditQuery::DEFAULT_LIMIT`] records, unfiltered.
    fn default() -> Self {
        Self {
            since_ms: None,
            until_ms: None,
            action: None,
            principal: None,
            decision: None,
            limit: Self::DEFAULT_LIMIT,
            newest_first: true,
        }
    }
}

/// Append-only audit log.
#[async_trait]
pub trait AuditLog: Send + Sync {
    /// Appends one batch, atomically and durably on return. A record whose `(time_ms, id)` is already
    /// stored (or repeats earlier in the batch) is ignored, so a retried batch does not duplicate.
    async fn append_audit(&self, records: &[AuditRecord]) -> Result<()>;
    /// Records matching `q`, ordered by `(time_ms, id)` as `q.newest_first` says.
    async fn query_audit(&self, q: &AuditQuery) -> Result<Vec<AuditRecord>>;
}

/// Every storage capability, as one backend provides them.
#[async_trait]
pub trait Store:
    KeyStore + ReplayCache + RevocationStore + DirectoryStore + AuditLog + Send + Sync
{
    /// Short backend name (`sled`, `memory`, …) for logs and health output.
    fn kind(&self) -> &'static str;
    /// Succeeds when the backend can serve requests.
    async fn health(&self) -> Result<()>;
}

fn check_not_empty(what: &str, value: &str) -> Result<()> {
    if value.is_empty() {
        return Err(StoreError::Invalid(format!("{what} must not be empty")));
    }
    Ok(())
}

fn check_replay(namespace: &str, key: &str, expires_at: i64, now: i64) -> Result<()> {
    check_not_empty("replay namespace", namespace)?;
    check_not_empty("replay key", key)?;
    // A record that is already expired would protect nothing: refuse it rather than accept a replay.
    if expires_at <= now {
        return Err(StoreError::Invalid(format!(
            "replay record for namespace {namespace:?} expires at {expires_at}, not after now ({now})"
        )));
    }
    Ok(())
}

fn check_sealing_key(key: &SealingKey) -> Result<()> {
    check_not_empty("sealing key id", &key.id)?;
    if key.secret.expose().len() != KeyBytes::LEN {
        return Err(StoreError::Invalid(format!(
            "sealing key {:?}: secret is {} bytes, not {}",
            key.id,
            key.secret.expose().len(),
            KeyBytes::LEN
        )));
    }
    Ok(())
}

fn check_dir_batch(writes: &[DirWrite]) -> Result<()> {
    if writes.is_empty() || writes.len() > MAX_DIR_BATCH {
        return Err(StoreError::Invalid(format!(
            "a directory batch has 1 to {MAX_DIR_BATCH} writes, got {}",
            writes.len()
        )));
    }
    for (i, w) in writes.iter().enumerate() {
        check_dir_key(&w.kind, &w.key)?;
        if writes[..i]
            .iter()
            .any(|o| o.kind == w.kind && o.key == w.key)
        {
            return Err(StoreError::Invalid(format!(
                "directory record {}/{} is written twice in one batch",
                w.kind, w.key
            )));
        }
    }
    Ok(())
}

fn check_dir_key(kind: &str, key: &str) -> Result<()> {
    check_not_empty("directory kind", kind)?;
    check_not_empty("directory key", key)?;
    if kind.contains('\0') {
        return Err(StoreError::Invalid(format!(
            "directory kind {kind:?} contains NUL"
        )));
    }
    Ok(())
}

fn check_audit_batch(records: &[AuditRecord]) -> Result<()> {
    records
        .iter()
        .try_for_each(|r| check_not_empty("audit record id", &r.id))
}

/// The retirement time kept when `requested` meets a stored `current` one.
fn retire_time(current: Option<i64>, requested: i64) -> i64 {
    current.map_or(requested, |t| t.min(requested))
}

/// The record kept when `new` is revoked over `stored` of the same scope.
fn merge_revocation(stored: &Revocation, new: &Revocation) -> Revocation {
    let winner = if new.issued_before > stored.issued_before {
        new
    } else {
        stored
    };
    Revocation {
        scope: stored.scope.clone(),
        issued_before: winner.issued_before,
        created_at: winner.created_at,
        reason: winner.reason.clone(),
        expires_at: stored.expires_at.max(new.expires_at),
    }
}

/// Whether `r` passes the filters of `q` (time range excluded).
fn audit_filter_matches(q: &AuditQuery, r: &AuditRecord) -> bool {
    q.action.as_ref().is_none_or(|a| *a == r.action)
        && q.decision.as_ref().is_none_or(|d| *d == r.decision)
        && q.principal
            .as_ref()
            .is_none_or(|p| r.principal.as_ref() == Some(p))
}

/// Whether `time_ms` lies in `[since_ms, until_ms)`.
fn audit_time_matches(q: &AuditQuery, time_ms: i64) -> bool {
    q.since_ms.is_none_or(|s| time_ms >= s) && q.until_ms.is_none_or(|u| time_ms < u)
}

/// Revocation scopes that are all different though some look alike (one kind's value as
/// another's, the same text split differently into a subject's parts): each needs a key of its own
/// in every backend.
#[cfg(test)]
pub(crate) fn distinct_scopes() -> Vec<RevocationScope> {
    vec![
        RevocationScope::All,
        RevocationScope::Role("x".into()),
        RevocationScope::Session("x".into()),
        RevocationScope::AccessKey("x".into()),
        RevocationScope::Role(String::new()),
        RevocationScope::Subject {
            provider: "a".into(),
            subject: "bc".into(),
        },
        RevocationScope::Subject {
            provider: "ab".into(),
            subject: "c".into(),
        },
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rev(issued_before: i64, created_at: i64, reason: &str, expires_at: i64) -> Revocation {
        Revocation {
            scope: RevocationScope::Role("arn:aws:iam::123456789012:role/r".into()),
            issued_before,
            created_at,
            reason: reason.into(),
            expires_at,
        }
    }

    #[test]
    fn key_bytes_debug_hides_the_secret() {
        let k = KeyBytes::from([7; 32]);
        assert_eq!(format!("{k:?}"), "***");
        let sk = SealingKey {
            id: "k1".into(),
            secret: k,
            created_at: 1,
            retired_at: None,
        };
        let shown = format!("{sk:?}");
        assert!(shown.contains("secret: ***"), "{shown}");
        assert!(!shown.contains('7'), "{shown}");
    }

    #[test]
    fn key_bytes_from_slice_needs_exactly_32_bytes() {
        for (len, ok) in [
            (0, false),
            (31, false),
            (32, true),
            (33, false),
            (64, false),
        ] {
            let got = KeyBytes::from_slice(&vec![1u8; len]);
            assert_eq!(got.is_ok(), ok, "length {len}");
            if let Err(e) = got {
                assert!(matches!(e, StoreError::Invalid(_)), "length {len}: {e:?}");
            }
        }
        assert_eq!(
            KeyBytes::from_slice(&[9u8; 32])
                .map(|k| k.expose().to_vec())
                .ok(),
            Some(vec![9u8; 32])
        );
    }

    #[test]
    fn key_bytes_equality_compares_every_byte() {
        let a = KeyBytes::from([0; 32]);
        let mut last = [0; 32];
        last[31] = 1;
        let mut first = [0; 32];
        first[0] = 0x80;
        assert_eq!(a, KeyBytes::new(vec![0; 32]));
        assert_ne!(a, KeyBytes::from(last));
        assert_ne!(a, KeyBytes::from(first));
        assert_ne!(a, KeyBytes::new(vec![0; 31]), "a prefix is not equal");
        assert_ne!(a, KeyBytes::new(vec![0; 33]), "an extension is not equal");
    }

    #[test]
    fn sealing_keys_need_an_id_and_a_32_byte_secret() {
        let key = |id: &str, len: usize| SealingKey {
            id: id.into(),
            secret: KeyBytes::new(vec![1; len]),
            created_at: 0,
            retired_at: None,
        };
        for (id, len, ok) in [
            ("k", 32, true),
            ("", 32, false),
            ("k", 16, false),
            ("k", 0, false),
        ] {
            let got = check_sealing_key(&key(id, len));
            assert_eq!(got.is_ok(), ok, "{id:?} {len}");
            if let Err(e) = got {
                assert!(matches!(e, StoreError::Invalid(_)), "{e:?}");
            }
        }
    }

    #[test]
    fn retire_time_keeps_the_earlier_time() {
        for (current, requested, kept) in [
            (None, 50, 50),
            (Some(40), 50, 40),
            (Some(60), 50, 50),
            (Some(50), 50, 50),
        ] {
            assert_eq!(
                retire_time(current, requested),
                kept,
                "{current:?} {requested}"
            );
        }
    }

    #[test]
    fn merge_revocation_never_moves_issued_before_back() {
        let stored = rev(100, 10, "first", 500);
        let cases = [
            // later issued_before wins issued_before, created_at and reason
            (rev(150, 20, "second", 400), rev(150, 20, "second", 500)),
            (rev(150, 20, "second", 900), rev(150, 20, "second", 900)),
            // earlier or equal issued_before keeps the stored record, expiry still extends
            (rev(50, 20, "older", 400), rev(100, 10, "first", 500)),
            (rev(50, 20, "older", 900), rev(100, 10, "first", 900)),
            (rev(100, 20, "tie", 500), rev(100, 10, "first", 500)),
        ];
        for (new, want) in cases {
            assert_eq!(merge_revocation(&stored, &new), want, "new {new:?}");
        }
    }

    #[test]
    fn replay_checks_refuse_empty_names_and_dead_records() {
        let cases = [
            ("ns", "k", 11, 10, true),
            ("ns", "k", 10, 10, false),
            ("ns", "k", 9, 10, false),
            ("", "k", 11, 10, false),
            ("ns", "", 11, 10, false),
        ];
        for (ns, key, exp, now, ok) in cases {
            let got = check_replay(ns, key, exp, now);
            assert_eq!(got.is_ok(), ok, "{ns:?} {key:?} {exp} {now}");
            if let Err(e) = got {
                assert!(matches!(e, StoreError::Invalid(_)), "{e:?}");
            }
        }
    }

    #[test]
    fn audit_filters_match_exact_values() {
        let r = AuditRecord {
            time_ms: 1000,
            id: "e1".into(),
            action: "sts:AssumeRole".into(),
            principal: Some("alice".into()),
            decision: "allow".into(),
            json: "{}".into(),
        };
        let anonymous = AuditRecord {
            principal: None,
            ..r.clone()
        };
        let q = |f: fn(&mut AuditQuery)| {
            let mut q = AuditQuery::default();
            f(&mut q);
            q
        };
        let cases: [(AuditQuery, &AuditRecord, bool); 9] = [
            (AuditQuery::default(), &r, true),
            (q(|q| q.action = Some("sts:AssumeRole".into())), &r, true),
            (q(|q| q.action = Some("sts:assumerole".into())), &r, false),
            (q(|q| q.decision = Some("deny".into())), &r, false),
            (q(|q| q.principal = Some("alice".into())), &r, true),
            (q(|q| q.principal = Some("bob".into())), &r, false),
            (q(|q| q.principal = Some("alice".into())), &anonymous, false),
            (q(|q| q.principal = Some(String::new())), &anonymous, false),
            (AuditQuery::default(), &anonymous, true),
        ];
        for (i, (q, rec, want)) in cases.iter().enumerate() {
            assert_eq!(audit_filter_matches(q, rec), *want, "case {i}");
        }
    }

    #[test]
    fn audit_time_range_is_half_open() {
        let q = AuditQuery {
            since_ms: Some(100),
            until_ms: Some(200),
            ..AuditQuery::default()
        };
        for (t, want) in [(99, false), (100, true), (199, true), (200, false)] {
            assert_eq!(audit_time_matches(&q, t), want, "t = {t}");
        }
        let open = AuditQuery::default();
        assert!(audit_time_matches(&open, i64::MIN));
        assert!(audit_time_matches(&open, i64::MAX));
    }
}
