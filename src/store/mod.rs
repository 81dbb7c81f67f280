//! Storage: capability traits for what must persist or be shared between replicas (sealing keys, replay
//! caches, revocations, audit events), composed into [`Store`]. Backends: `sled` (embedded default),
//! `memory` (tests). The store knows no domain rules: it never decides whether a token is valid.
//! One conformance suite ([`conformance`]) is run against every backend.

pub mod conformance;
pub mod memory;
pub mod sled;

use async_trait::async_trait;
use serde::{Deserialize, Serialize};
use std::fmt;

/// Errors of every backend.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The backend cannot be reached or failed to answer.
    #[error("store unavailable: {0}")]
    Unavailable(String),
    /// Another process holds the store.
    #[error("store locked: {0}")]
    Locked(String),
    /// Stored data cannot be read back.
    #[error("stored data is corrupt: {0}")]
    Corrupt(String),
}

/// Result of store operations.
pub type Result<T> = std::result::Result<T, StoreError>;

/// Secret key material whose `Debug` never shows it.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct KeyBytes(Vec<u8>);

impl KeyBytes {
    /// Wraps key bytes.
    pub fn new(bytes: Vec<u8>) -> Self {
        Self(bytes)
    }
    /// The bytes; call only where they are used.
    pub fn expose(&self) -> &[u8] {
        &self.0
    }
}

impl fmt::Debug for KeyBytes {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("***")
    }
}

/// A session-token sealing key.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SealingKey {
    /// Key id, carried in every token it seals.
    pub id: String,
    /// 32 bytes of AES-256 key.
    pub secret: KeyBytes,
    /// Creation time, epoch seconds.
    pub created_at: i64,
    /// When it stopped sealing, epoch seconds.
    pub retired_at: Option<i64>,
}

/// What a revocation covers.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum RevocationScope {
    /// Every session.
    All,
    /// Sessions of a role (ARN).
    Role(String),
    /// Sessions of a federated subject at a provider (issuer URL, key prefix or provider ARN).
    Subject {
        /// The provider.
        provider: String,
        /// The subject.
        subject: String,
    },
    /// One session (its id).
    Session(String),
    /// Sessions of one access key id.
    AccessKey(String),
}

/// "Sessions in this scope issued before T are no longer valid".
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Revocation {
    /// What it covers.
    pub scope: RevocationScope,
    /// Sessions issued strictly before this (epoch seconds) are revoked.
    pub issued_before: i64,
    /// When it was made.
    pub created_at: i64,
    /// Why.
    pub reason: String,
    /// When it can be forgotten (every covered session has expired).
    pub expires_at: i64,
}

/// One stored audit event.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuditRecord {
    /// Event time, epoch milliseconds.
    pub time_ms: i64,
    /// Unique id (the request id).
    pub id: String,
    /// Action.
    pub action: String,
    /// Who.
    pub principal: Option<String>,
    /// allow, deny or error.
    pub decision: String,
    /// The whole event as JSON.
    pub json: String,
}

/// Which audit events to read.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AuditQuery {
    /// At or after, epoch milliseconds.
    pub since_ms: Option<i64>,
    /// Before, epoch milliseconds.
    pub until_ms: Option<i64>,
    /// Exact action.
    pub action: Option<String>,
    /// Exact principal.
    pub principal: Option<String>,
    /// Exact decision.
    pub decision: Option<String>,
    /// At most this many.
    pub limit: usize,
    /// Newest first.
    pub newest_first: bool,
}

impl AuditQuery {
    /// Whether a record passes the filters (time range included).
    pub fn matches(&self, r: &AuditRecord) -> bool {
        self.since_ms.is_none_or(|s| r.time_ms >= s)
            && self.until_ms.is_none_or(|u| r.time_ms < u)
            && self.action.as_ref().is_none_or(|a| *a == r.action)
            && self
                .principal
                .as_ref()
                .is_none_or(|p| Some(p) == r.principal.as_ref())
            && self.decision.as_ref().is_none_or(|d| *d == r.decision)
    }
}

/// Session-token sealing keys.
#[async_trait]
pub trait KeyStore {
    /// Every stored key.
    async fn sealing_keys(&self) -> Result<Vec<SealingKey>>;
    /// Stores a key; `false` (and no change) if its id exists.
    async fn insert_sealing_key(&self, key: &SealingKey) -> Result<bool>;
    /// Marks a key retired at `retired_at` (it still unseals).
    async fn retire_sealing_key(&self, id: &str, retired_at: i64) -> Result<()>;
    /// Removes a key.
    async fn delete_sealing_key(&self, id: &str) -> Result<()>;
}

/// One-time values (assertion ids, nonces, one-time codes).
#[async_trait]
pub trait ReplayCache {
    /// Atomically records (namespace, key) until `expires_at`; `true` if this is its first use (or the
    /// earlier record expired by `now`), `false` if it is a replay. Durable once it returns `true`.
    async fn first_use(
        &self,
        namespace: &str,
        key: &str,
        expires_at: i64,
        now: i64,
    ) -> Result<bool>;
    /// Forgets records expired by `now`; returns how many.
    async fn purge_expired_replays(&self, now: i64) -> Result<u64>;
}

/// Revocations.
#[async_trait]
pub trait RevocationStore {
    /// Records a revocation; for a scope already revoked the later `issued_before` is kept.
    async fn revoke(&self, r: &Revocation) -> Result<()>;
    /// Every revocation in force.
    async fn revocations(&self) -> Result<Vec<Revocation>>;
    /// Forgets revocations whose `expires_at` has passed; returns how many.
    async fn purge_expired_revocations(&self, now: i64) -> Result<u64>;
}

/// The audit log.
#[async_trait]
pub trait AuditLog {
    /// Appends a batch; durable on return.
    async fn append_audit(&self, records: &[AuditRecord]) -> Result<()>;
    /// Reads events.
    async fn query_audit(&self, q: &AuditQuery) -> Result<Vec<AuditRecord>>;
}

/// Everything rolegate stores.
#[async_trait]
pub trait Store: KeyStore + ReplayCache + RevocationStore + AuditLog + Send + Sync {
    /// The backend's name.
    fn kind(&self) -> &'static str;
    /// Whether the backend answers.
    async fn health(&self) -> Result<()>;
}
