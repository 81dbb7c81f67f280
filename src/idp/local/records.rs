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
//! **Listings.** The users as a whole (the user list, a group's members) are answered from an
//! in-memory [`UserIndex`], the store's state at one value of the users' change counter (the
//! version of the record `user_rev`/`users`, moved by every batch that writes a user, in the same
//! atomic batch, as the provisioned directory's counter). A listing reads that counter from the
//! store (one small record) and answers from memory when the index is at it: a change made here is
//! applied to the index in place at once, one made by another replica moved the counter and the
//! index is read again from the store before anything is answered. So a listing is never staler
//! than the store at the time it was asked, fails when the store does, and reads every user only
//! after another replica changed one. The background refresh does that read ahead of the
//! listings ([`Records::refresh_index`]). A directory of more than [`INDEX_CAPACITY`] users is
//! not kept in memory.
//!
//! Writes and every other read (the read-modify-write updates, throttles, MFA state) go to the
//! store directly.

use super::index::{UserIndex, INDEX_CAPACITY};
use super::{DirectoryError, User, ACCESS_KEY, GROUP, USER, USER_ID};
use crate::clock::SharedClock;
use crate::store::{DirWrite, Expect, Store, StoreError, Versioned, MAX_DIR_BATCH};
use std::collections::{HashMap, HashSet};
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

/// The users' change counter: the version of this record moves with every batch that writes a
/// user (it holds nothing).
const USER_REV: &str = "user_rev";
/// The counter's key.
const USER_REV_KEY: &str = "users";

/// Times a batch that writes a user is tried again when only the counter moved meanwhile.
const REV_ATTEMPTS: usize = 32;

type StoreResult<T> = std::result::Result<T, StoreError>;

/// The index of the users and the counter value it is the state of.
#[derive(Default)]
struct Indexed {
    /// `None` until a listing asks for it, and after a write whose outcome is unknown.
    index: Option<UserIndex>,
    /// The version of the counter the index is the state of.
    generation: u64,
}

#[derive(Default)]
struct Cache {
    /// Counts invalidations: a read caches its record only if none happened while it ran.
    generation: u64,
    /// (kind, key) → the record and when the read that fetched it began (Unix milliseconds).
    entries: HashMap<(String, String), (Versioned, i64)>,
    /// The records being read again ahead of their bound, each by one task.
    refreshing: HashSet<(String, String)>,
}

impl Cache {
    /// Keeps what a read that began at `at`, with the cache at `generation`, found: the record,
    /// or for an absent one no entry. A read that raced with an invalidation keeps nothing.
    fn settle(&mut self, k: (String, String), found: Option<&Versioned>, generation: u64, at: i64) {
        match found {
            Some(v) if self.generation == generation => {
                if self.entries.len() >= CACHE_CAPACITY {
                    self.entries.clear();
                }
                self.entries.insert(k, (v.clone(), at));
            }
            // Gone from the store: never served from here again, whatever raced with the read.
            None => {
                self.entries.remove(&k);
            }
            Some(_) => {}
        }
    }
}

/// The store's directory records as the directory reads and writes them.
pub(super) struct Records {
    store: Arc<dyn Store>,
    clock: SharedClock,
    bound_ms: i64,
    cache: Arc<parking_lot::Mutex<Cache>>,
    indexed: parking_lot::RwLock<Indexed>,
    /// Held while a batch that writes a user is applied (store and index) and while the index is
    /// read again from the store: a rebuild never misses a write of this process.
    writer: tokio::sync::Mutex<()>,
}

impl Records {
    pub(super) fn new(store: Arc<dyn Store>, clock: SharedClock) -> Self {
        Self {
            store,
            clock,
            bound_ms: i64::try_from(CACHE_BOUND.as_millis()).unwrap_or(i64::MAX),
            cache: Default::default(),
            indexed: Default::default(),
            writer: tokio::sync::Mutex::new(()),
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
    /// writer changed the record). A batch that writes a user also moves the users' change counter
    /// and changes the index in place.
    pub(super) async fn dir_write(&self, writes: &[DirWrite]) -> StoreResult<bool> {
        let result = if writes.iter().any(|w| w.kind == USER) {
            self.write_users(writes).await
        } else {
            self.store.dir_write(writes).await
        };
        if writes.iter().any(|w| CACHED.contains(&w.kind.as_str())) {
            let mut c = self.cache.lock();
            c.generation += 1;
            for w in writes {
                c.entries.remove(&(w.kind.clone(), w.key.clone()));
            }
        }
        result
    }

    /// The version of the users' change counter now (0: never moved).
    async fn user_rev(&self) -> StoreResult<Option<Versioned>> {
        self.store.dir_get(USER_REV, USER_REV_KEY).await
    }

    /// A batch that writes a user, with the counter moved from the version read: when only the
    /// counter moved meanwhile (another write of a user, here or elsewhere), tried again.
    async fn write_users(&self, writes: &[DirWrite]) -> StoreResult<bool> {
        if writes.len() >= MAX_DIR_BATCH {
            return Err(StoreError::Invalid(format!(
                "a batch writing a user has at most {} writes, got {}",
                MAX_DIR_BATCH - 1,
                writes.len()
            )));
        }
        let _w = self.writer.lock().await;
        let mut rev = self.user_rev().await?;
        for _ in 0..REV_ATTEMPTS {
            let mut batch = writes.to_vec();
            batch.push(DirWrite::put(
                USER_REV,
                USER_REV_KEY,
                rev.as_ref(),
                String::new(),
            ));
            let written = match self.store.dir_write(&batch).await {
                Ok(w) => w,
                Err(e) => {
                    // Perhaps applied: the index is read again before the next listing.
                    self.indexed.write().index = None;
                    return Err(e);
                }
            };
            let from = rev.as_ref().map_or(0, |v| v.version);
            if written {
                self.apply(writes, from);
                return Ok(true);
            }
            let now = self.user_rev().await?;
            if now.as_ref().map(|v| v.version) == rev.as_ref().map(|v| v.version) {
                // The counter is as read: the batch's own expectations failed.
                return Ok(false);
            }
            rev = now;
        }
        Ok(false)
    }

    /// Changes the index by a batch written with the counter moved from `from` to `from + 1`.
    fn apply(&self, writes: &[DirWrite], from: u64) {
        let mut guard = self.indexed.write();
        let ix = &mut *guard;
        let Some(index) = ix.index.as_mut() else {
            return;
        };
        for w in writes.iter().filter(|w| w.kind == USER) {
            match (&w.value, w.expect) {
                (Some(doc), _) => match serde_json::from_str::<User>(doc) {
                    Ok(u) => index.put(&w.key, u),
                    Err(_) => {
                        // Not a user as this version reads them: read again when listed.
                        ix.index = None;
                        return;
                    }
                },
                (None, Expect::Version(_)) => index.remove(&w.key),
                (None, Expect::Absent) => {}
            }
        }
        // Another replica's change in between leaves the index behind: read again when listed.
        if ix.generation == from {
            ix.generation = from + 1;
        }
    }

    /// Answers `query` from the index of the users at the store's counter now: read again from
    /// the store first if another replica moved the counter since it was read (or it never was).
    pub(super) async fn with_users<T>(
        &self,
        query: impl FnOnce(&UserIndex) -> T,
    ) -> Result<T, DirectoryError> {
        let rev = self.user_rev().await?.map_or(0, |v| v.version);
        {
            let ix = self.indexed.read();
            if let Some(index) = ix.index.as_ref().filter(|_| ix.generation == rev) {
                return Ok(query(index));
            }
        }
        let _w = self.writer.lock().await;
        let (rev, fresh) = self.reindex(true).await?;
        if let Some(index) = fresh {
            // Too many to keep: answered from this reading alone.
            return Ok(query(&index));
        }
        let ix = self.indexed.read();
        match ix.index.as_ref().filter(|_| ix.generation == rev) {
            Some(index) => Ok(query(index)),
            None => Err(DirectoryError::Internal(
                "the index of the users was dropped while it was read".into(),
            )),
        }
    }

    /// Reads the index again from the store if the counter moved since it was read (or, with
    /// `load`, if it was never read). With the writer held. Returns the counter value read and,
    /// for a directory too large to keep, the index read.
    async fn reindex(&self, load: bool) -> Result<(u64, Option<UserIndex>), DirectoryError> {
        // The counter read before the records: a change in between makes the next listing read
        // them again.
        let rev = self.user_rev().await?.map_or(0, |v| v.version);
        {
            let ix = self.indexed.read();
            if (ix.index.is_none() && !load) || (ix.index.is_some() && ix.generation == rev) {
                return Ok((rev, None));
            }
        }
        let index = UserIndex::build(&self.store.dir_list(USER).await?)?;
        if index.len() > INDEX_CAPACITY {
            self.indexed.write().index = None;
            return Ok((rev, Some(index)));
        }
        *self.indexed.write() = Indexed {
            index: Some(index),
            generation: rev,
        };
        Ok((rev, None))
    }

    /// Reads the index again if another replica changed a user since it was read (the periodic
    /// refresh of shared state). Nothing while no listing has asked for it.
    pub(super) async fn refresh_index(&self) -> Result<(), DirectoryError> {
        if self.indexed.read().index.is_none() {
            return Ok(());
        }
        let _w = self.writer.lock().await;
        self.reindex(false).await.map(|_| ())
    }

    /// The record `(kind, key)` from the cache if it was read less than [`CACHE_BOUND`] ago,
    /// otherwise from the store (and cached if found). For the kinds the request path reads.
    /// A record served in the second half of its bound is read again in the background (one
    /// task per record), so that a busy record is seldom read on the request path: a store slow
    /// for less than half the bound delays no request that finds its records cached.
    pub(super) async fn cached_get(&self, kind: &str, key: &str) -> StoreResult<Option<Versioned>> {
        let now = self.now_ms();
        let k = (kind.to_owned(), key.to_owned());
        let generation = {
            let mut c = self.cache.lock();
            if let Some((v, at)) = c.entries.get(&k) {
                let age = now - *at;
                if *at <= now && age < self.bound_ms {
                    let v = v.clone();
                    if age >= self.bound_ms / 2 && c.refreshing.insert(k.clone()) {
                        let generation = c.generation;
                        self.refresh(k, generation, now);
                    }
                    return Ok(Some(v));
                }
            }
            c.generation
        };
        let found = self.store.dir_get(kind, key).await?;
        self.cache.lock().settle(k, found.as_ref(), generation, now);
        Ok(found)
    }

    /// Reads `k` again in a task of its own and keeps what it finds as read at `at`, the cache
    /// then at `generation`; a failed read keeps the entry until its bound, after which the
    /// request path reads it.
    fn refresh(&self, k: (String, String), generation: u64, at: i64) {
        let (store, cache) = (self.store.clone(), self.cache.clone());
        tokio::spawn(async move {
            let found = store.dir_get(&k.0, &k.1).await;
            let mut c = cache.lock();
            c.refreshing.remove(&k);
            match found {
                Ok(found) => c.settle(k, found.as_ref(), generation, at),
                Err(e) => {
                    tracing::debug!(kind = %k.0, error = %e, "reading a cached record ahead of its bound failed")
                }
            }
        });
    }

    /// Drops the cached record `(kind, key)`: it did not fit what it was read for.
    pub(super) fn forget(&self, kind: &str, key: &str) {
        let mut c = self.cache.lock();
        c.generation += 1;
        c.entries.remove(&(kind.to_owned(), key.to_owned()));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::clock::FixedClock;
    use crate::store::{DirectoryStore, MemoryStore};

    /// Records over a store that another replica also writes, and the clock they read.
    fn records() -> (Records, Arc<MemoryStore>, FixedClock) {
        let store = Arc::new(MemoryStore::new());
        let clock = FixedClock::new(chrono::DateTime::from_timestamp(1_700_000_000, 0).unwrap());
        (
            Records::new(store.clone(), Arc::new(clock.clone())),
            store,
            clock,
        )
    }

    /// What another replica does: writes the store, which this process's cache does not see.
    async fn elsewhere(store: &MemoryStore, value: Option<&str>) {
        let current = store.dir_get(ACCESS_KEY, "k").await.unwrap();
        let w = match (value, &current) {
            (Some(v), _) => DirWrite::put(ACCESS_KEY, "k", current.as_ref(), v.into()),
            (None, Some(c)) => DirWrite::delete(ACCESS_KEY, "k", c.version),
            (None, None) => return,
        };
        assert!(store.dir_write(&[w]).await.unwrap());
    }

    fn ms(n: i64) -> chrono::Duration {
        chrono::Duration::milliseconds(n)
    }

    async fn value(r: &Records) -> Option<String> {
        r.cached_get(ACCESS_KEY, "k")
            .await
            .unwrap()
            .map(|v| v.value)
    }

    /// Lets the refresh tasks run to their end.
    async fn settle(r: &Records) {
        for _ in 0..1_000 {
            if r.cache.lock().refreshing.is_empty() {
                return;
            }
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
        panic!("a refresh did not finish");
    }

    #[tokio::test]
    async fn a_record_in_the_second_half_of_its_bound_is_read_again_in_the_background() {
        let (r, store, clock) = records();
        let half = r.bound_ms / 2;
        elsewhere(&store, Some("one")).await;
        assert_eq!(value(&r).await.as_deref(), Some("one"));
        elsewhere(&store, Some("two")).await;
        // The first half: from the cache, nothing read.
        clock.advance(ms(half - 1));
        assert_eq!(value(&r).await.as_deref(), Some("one"));
        settle(&r).await;
        assert_eq!(
            value(&r).await.as_deref(),
            Some("one"),
            "nothing read ahead"
        );
        // The second half: still the cached record (within the bound), and a read ahead.
        clock.advance(ms(1));
        assert_eq!(value(&r).await.as_deref(), Some("one"));
        settle(&r).await;
        // The read ahead is what the cache serves now, timed from when it began: past the first
        // read's bound, and with the store's record gone, it is served from the cache.
        elsewhere(&store, None).await;
        clock.advance(ms(half + 1));
        assert_eq!(value(&r).await.as_deref(), Some("two"));
        // Its own bound holds: past it the store is read, and the record is gone.
        clock.advance(ms(r.bound_ms - half - 1));
        assert_eq!(value(&r).await, None);
    }

    #[tokio::test]
    async fn a_read_ahead_that_finds_the_record_gone_drops_it_at_once() {
        let (r, store, clock) = records();
        elsewhere(&store, Some("one")).await;
        assert_eq!(value(&r).await.as_deref(), Some("one"));
        elsewhere(&store, None).await;
        clock.advance(ms(r.bound_ms / 2));
        assert_eq!(value(&r).await.as_deref(), Some("one"), "within the bound");
        settle(&r).await;
        assert_eq!(value(&r).await, None, "the read ahead found it gone");
    }

    #[tokio::test]
    async fn a_write_here_while_a_read_ahead_is_pending_is_served_at_once() {
        let (r, store, clock) = records();
        elsewhere(&store, Some("one")).await;
        assert_eq!(value(&r).await.as_deref(), Some("one"));
        clock.advance(ms(r.bound_ms / 2));
        // Single-threaded: the read ahead is spawned and has not run when the write lands.
        assert_eq!(value(&r).await.as_deref(), Some("one"));
        let current = store.dir_get(ACCESS_KEY, "k").await.unwrap();
        assert!(r
            .dir_write(&[DirWrite::put(
                ACCESS_KEY,
                "k",
                current.as_ref(),
                "mine".into()
            )])
            .await
            .unwrap());
        settle(&r).await;
        assert_eq!(value(&r).await.as_deref(), Some("mine"));
    }
}
