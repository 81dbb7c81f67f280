//! The directory's records in the store, behind the directory's one write path, with a cache of the
//! records a signed request reads: the user owning an access key (kind `access_key`), the user by
//! id (`user_id`), the user (`user`) and its groups (`group`). With the cache warm, a call signed
//! with a long-term key (authentication, the mint gate's re-check of the user, the caller's
//! policies) reads nothing from the store.
//!
//! **Consistency.** The cache serves what the mint gate and the STS may rely on:
//!
//! - *On this replica, at once.* Every directory write of this process goes through
//!   [`Records::dir_write`], which drops the cached records it touches (and, by a generation count,
//!   keeps a read that raced with the write from caching what it read before). A user deleted or
//!   disabled, a key deleted or deactivated here is refused on the very next call.
//! - *On other replicas, within [`CACHE_BOUND`].* A record is served from the cache for at most
//!   [`CACHE_BOUND`] after the store read that fetched it began, then read again. That is the bound
//!   within which other replicas learn of revocations (the app's `REFRESH_INTERVAL`, the
//!   periodic refresh of the background maintenance); a test holds the two equal. A clock that
//!   goes backwards expires every entry.
//! - *Only what was found.* An absent record is never cached (a key or user created on another
//!   replica works there at once), and a cached record that does not fit the question (a user
//!   without the key its index names, a user id that is someone else's) is read again from the
//!   store before anything is refused.
//!
//! Writes and every other read (the read-modify-write updates, listings, throttles, MFA state) go
//! to the store directly.

use super::{ACCESS_KEY, GROUP, USER, USER_ID};
use crate::clock::SharedClock;
use crate::store::{DirWrite, Store, StoreError, Versioned};
use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

/// How long a cached directory record is served without reading the store again: the bound
/// within which a change made on another replica (a user deleted or disabled, a key deleted or
/// deactivated, a policy or group changed) takes effect here. Equal to the revocation refresh
/// interval.
pub const CACHE_BOUND: Duration = Duration::from_secs(5);

/// Most records cached; past it the cache starts afresh.
const CACHE_CAPACITY: usize = 50_000;

/// The kinds of record the cache holds.
const CACHED: [&str; 4] = [USER, USER_ID, ACCESS_KEY, GROUP];

type StoreResult<T> = std::result::Result<T, StoreError>;

#[derive(Default)]
struct Cache {
    /// Counts invalidations: a read caches its record only if none happened while it ran.
    generation: u64,
    /// (kind, key) → the record and when the read that fetched it began (Unix milliseconds).
    entries: HashMap<(String, String), (Versioned, i64)>,
}

/// The store's directory records as the directory reads and writes them.
pub(super) struct Records {
    store: Arc<dyn Store>,
    clock: SharedClock,
    bound_ms: i64,
    cache: parking_lot::Mutex<Cache>,
}

impl Records {
    pub(super) fn new(store: Arc<dyn Store>, clock: SharedClock) -> Self {
        Self {
            store,
            clock,
            bound_ms: i64::try_from(CACHE_BOUND.as_millis()).unwrap_or(i64::MAX),
            cache: Default::default(),
        }
    }

    fn now_ms(&self) -> i64 {
        self.clock.now().timestamp_millis()
    }

    /// The record `(kind, key)` as the store has it now.
    pub(super) async fn dir_get(&self, kind: &str, key: &str) -> StoreResult<Option<Versioned>> {
        self.store.dir_get(kind, key).await
    }

    /// Every record of `kind` as the store has it now.
    pub(super) async fn dir_list(&self, kind: &str) -> StoreResult<Vec<(String, Versioned)>> {
        self.store.dir_list(kind).await
    }

    /// The directory's one write path: applies `writes` (see
    /// [`DirectoryStore::dir_write`](crate::store::DirectoryStore::dir_write)), then drops every
    /// cached record they touch, whatever the outcome (a failed compare-and-swap means another
    /// writer changed the record).
    pub(super) async fn dir_write(&self, writes: &[DirWrite]) -> StoreResult<bool> {
        let result = self.store.dir_write(writes).await;
        if writes.iter().any(|w| CACHED.contains(&w.kind.as_str())) {
            let mut c = self.cache.lock();
            c.generation += 1;
            for w in writes {
                c.entries.remove(&(w.kind.clone(), w.key.clone()));
            }
        }
        result
    }

    /// The record `(kind, key)` from the cache if it was read less than [`CACHE_BOUND`] ago,
    /// otherwise from the store (and cached if found). For the kinds the request path reads.
    pub(super) async fn cached_get(&self, kind: &str, key: &str) -> StoreResult<Option<Versioned>> {
        let now = self.now_ms();
        let generation = {
            let c = self.cache.lock();
            if let Some((v, at)) = c.entries.get(&(kind.to_owned(), key.to_owned())) {
                if *at <= now && now - *at < self.bound_ms {
                    return Ok(Some(v.clone()));
                }
            }
            c.generation
        };
        let found = self.store.dir_get(kind, key).await?;
        if let Some(v) = &found {
            let mut c = self.cache.lock();
            if c.generation == generation {
                if c.entries.len() >= CACHE_CAPACITY {
                    c.entries.clear();
                }
                c.entries
                    .insert((kind.to_owned(), key.to_owned()), (v.clone(), now));
            }
        }
        Ok(found)
    }

    /// Drops the cached record `(kind, key)`: it did not fit what it was read for.
    pub(super) fn forget(&self, kind: &str, key: &str) {
        let mut c = self.cache.lock();
        c.generation += 1;
        c.entries.remove(&(kind.to_owned(), key.to_owned()));
    }
}
