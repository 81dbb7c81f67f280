//! [`SledStore`]: the embedded default backend, one sled database in a private data directory with a
//! tree per capability, and the audit log as segment files in `<dir>/audit` ([`AuditFiles`]): sled's
//! memory grows with the data it holds, and the audit log only grows. Knows how records sit on disk;
//! knows nothing of what they mean.
//!
//! **One process per directory.** sled 0.34.7 takes an exclusive, non-blocking `flock` on `<dir>/db`
//! when it opens and reports a conflict as `sled::Error::Io` of kind `Other` whose message reads
//! `could not acquire lock on "<dir>/db": Os { .., kind: WouldBlock, .. }`. [`SledStore::open`] turns
//! that into [`StoreError::Locked`]. On Linux the lock belongs to the open file description, so a second
//! open of the same directory *within one process* is refused the same way while the first handle
//! lives; once every handle is dropped the directory opens again at once.
//!
//! **Off the runtime.** Every operation, flush included, runs as one closure on tokio's blocking pool,
//! at most [`BLOCKING_PERMITS`] at a time. sled's own `flush_async` is not used: in sled 0.34.7 it queues
//! the flush on sled's I/O thread pool, and with eight or more concurrent callers every pool thread
//! waits in the flush for a log-buffer write queued behind it on the same pool, which never runs.
//! Flushing inline on a runtime worker instead stalled other tasks by about 100 ms under 32 concurrent
//! writers.
//!
//! Writes the callers rely on after a crash (keys, replay records, revocations, audit batches) are
//! flushed to disk before the call returns.
//!
//! **Replay records are group-committed.** Every accepted SAML assertion (and OIDC nonce, TOTP step)
//! is a `first_use` that must be on disk before its answer is sent, and a sled flush writes and
//! `fsync`s everything written before it started, whoever wrote it. So a caller whose record won
//! makes no flush of its own: it joins the next flush of a [`GroupCommit`] and returns `true` only
//! once that flush, started after its insert, has completed; one flush serves every caller that
//! inserted while the previous one ran, and a failed flush is an error (never `true`) for each of
//! them. A caller whose record lost (a replay) returns `false` at once: nothing of its own needs to
//! reach the disk.
//!
//! **Formats.** The format marker in the `meta` tree says how the directory is laid out. Format 2 kept
//! the audit log in a sled tree; opening such a directory migrates it to format 3 (see
//! `migrate_from_format_2`), resumably if interrupted.

use super::audit_files::AuditFiles;
use super::codec::{self, StoredDirEntry, StoredReplay, StoredRevocation, StoredSealingKey};
use super::group_commit::GroupCommit;
use super::{
    check_audit_batch, check_dir_batch, check_dir_key, check_replay, check_sealing_key,
    merge_revocation, retire_time, AuditLog, AuditQuery, AuditRecord, DirWrite, DirectoryStore,
    Expect, KeyStore, ReplayCache, Result, Revocation, RevocationStore, SealingKey, Store,
    StoreError, Versioned,
};
use ::sled::transaction::{ConflictableTransactionError, TransactionError};
use async_trait::async_trait;
use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use tokio::sync::Semaphore;

/// sled's page cache. Its default (1 GiB) lets memory grow with the audit log; this bounds it.
pub const CACHE_BYTES: u64 = 32 * 1024 * 1024;

/// Store operations running at once on the blocking pool; further callers wait their turn.
pub const BLOCKING_PERMITS: usize = 16;

const KEYS: &str = "sealing_keys";
const REPLAYS: &str = "replays";
const REVOCATIONS: &str = "revocations";
const DIRECTORY: &str = "directory";
/// Format 2 kept the audit log in this tree, one record per key; format 3 keeps it in
/// [`AUDIT_DIR`] (see [`super::audit_files`]).
const LEGACY_AUDIT: &str = "audit";
/// The audit log's segment files, inside the data directory.
pub const AUDIT_DIR: &str = "audit";
const META: &str = "meta";
const FORMAT_KEY: &[u8] = b"format";

struct Trees {
    db: ::sled::Db,
    keys: ::sled::Tree,
    replays: ::sled::Tree,
    revocations: ::sled::Tree,
    directory: ::sled::Tree,
    audit: AuditFiles,
    meta: ::sled::Tree,
    /// The data directory.
    dir: std::path::PathBuf,
}

impl Drop for Trees {
    fn drop(&mut self) {
        CLOSED_HERE.lock().insert(self.dir.clone());
    }
}

impl Trees {
    fn flush(&self) -> Result<()> {
        self.db.flush().map(drop).map_err(from_sled)
    }
}

/// The store in a sled database.
pub struct SledStore {
    dir: PathBuf,
    trees: Arc<Trees>,
    permits: Arc<Semaphore>,
    /// The shared flushes that make replay records durable.
    commits: GroupCommit,
}

impl fmt::Debug for SledStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SledStore")
            .field("dir", &self.dir)
            .finish_non_exhaustive()
    }
}

fn from_sled(e: ::sled::Error) -> StoreError {
    match e {
        ::sled::Error::Corruption { .. } | ::sled::Error::CollectionNotFound(_) => {
            StoreError::Corrupt(e.to_string())
        }
        other => StoreError::Unavailable(other.to_string()),
    }
}

/// Whether sled failed to open because another handle holds the directory's lock (see the module doc).
fn is_lock_conflict(e: &::sled::Error) -> bool {
    match e {
        ::sled::Error::Io(io) => {
            let msg = io.to_string();
            io.kind() == std::io::ErrorKind::Other
                && msg.contains("could not acquire lock")
                && msg.contains("WouldBlock")
        }
        _ => false,
    }
}

/// How long opening waits for the lock of a data directory this process closed.
const LOCK_WAIT: std::time::Duration = std::time::Duration::from_secs(2);

/// Data directories whose store this process has closed (and not opened again since).
static CLOSED_HERE: parking_lot::Mutex<std::collections::BTreeSet<std::path::PathBuf>> =
    parking_lot::Mutex::new(std::collections::BTreeSet::new());

fn open_error(dir: &Path, e: ::sled::Error) -> StoreError {
    if is_lock_conflict(&e) {
        return StoreError::Locked(format!(
            "{} is in use by another rolegate process (the embedded store allows one process per \
             directory); stop that process or point this one at another directory",
            dir.display()
        ));
    }
    match from_sled(e) {
        StoreError::Corrupt(m) => StoreError::Corrupt(format!("{}: {m}", dir.display())),
        other => StoreError::Unavailable(format!("cannot open {}: {other}", dir.display())),
    }
}

/// Creates `dir` (and missing parents) readable by its owner only, and narrows an existing one.
fn create_private_dir(dir: &Path) -> Result<()> {
    let fail = |what: &str, e: std::io::Error| {
        StoreError::Unavailable(format!("cannot {what} {}: {e}", dir.display()))
    };
    #[cfg(unix)]
    {
        use std::os::unix::fs::{DirBuilderExt, PermissionsExt};
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(dir)
            .map_err(|e| fail("create", e))?;
        let mode = std::fs::metadata(dir)
            .map_err(|e| fail("inspect", e))?
            .permissions()
            .mode();
        // The directory holds sealing keys in clear: nobody but the owner may read or enter it.
        if mode & 0o077 != 0 {
            std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700))
                .map_err(|e| fail("restrict permissions of", e))?;
            tracing::warn!(dir = %dir.display(), was = format!("{:o}", mode & 0o777), "store directory narrowed to mode 700");
        }
    }
    #[cfg(not(unix))]
    std::fs::create_dir_all(dir).map_err(|e| fail("create", e))?;
    Ok(())
}

/// Whether the database has a tree called `name`, without creating it.
fn has_tree(db: &::sled::Db, name: &str) -> bool {
    db.tree_names()
        .iter()
        .any(|n| n.as_ref() == name.as_bytes())
}

/// Writes the format marker into a new database, or checks the one present, migrating a format 2
/// database first.
fn check_format(trees: &Trees, dir: &Path) -> Result<()> {
    match trees.meta.get(FORMAT_KEY).map_err(from_sled)? {
        Some(v) if v.as_ref() == [codec::FORMAT] => {
            // A migration that stopped after switching the marker left the old log behind.
            if has_tree(&trees.db, LEGACY_AUDIT) {
                trees.db.drop_tree(LEGACY_AUDIT).map_err(from_sled)?;
            }
            Ok(())
        }
        Some(v) if v.as_ref() == [codec::LEGACY_FORMAT] => {
            migrate_from_format_2(trees, dir)?;
            check_format(trees, dir)
        }
        Some(v) => Err(StoreError::Corrupt(format!(
            "{} was written in store format {:?}, this build reads [{}]",
            dir.display(),
            v.as_ref(),
            codec::FORMAT
        ))),
        None => {
            let legacy_audit = has_tree(&trees.db, LEGACY_AUDIT)
                && !trees
                    .db
                    .open_tree(LEGACY_AUDIT)
                    .map_err(from_sled)?
                    .is_empty();
            let has_data = legacy_audit
                || !trees.audit.is_empty()
                || [
                    &trees.keys,
                    &trees.replays,
                    &trees.revocations,
                    &trees.directory,
                ]
                .iter()
                .any(|t| !t.is_empty());
            if has_data {
                return Err(StoreError::Corrupt(format!(
                    "{} holds records without a format marker (an earlier development layout); move it \
                     aside",
                    dir.display()
                )));
            }
            trees
                .meta
                .insert(FORMAT_KEY, &[codec::FORMAT])
                .map_err(from_sled)?;
            trees.flush()
        }
    }
}

/// Rewrites a format 2 database as format 3: the audit log's records move to the segment files, the
/// other trees' values get the new format byte, and only then does the marker change. Each step can
/// be repeated, so a migration stopped by a crash starts over on the next open: the segment files are
/// emptied first, and the old tree is dropped only after the marker says 3.
fn migrate_from_format_2(trees: &Trees, dir: &Path) -> Result<()> {
    tracing::info!(dir = %dir.display(), "migrating the store from format 2 to format {}", codec::FORMAT);
    trees.audit.clear()?;
    let mut migrated = 0u64;
    if has_tree(&trees.db, LEGACY_AUDIT) {
        let legacy = trees.db.open_tree(LEGACY_AUDIT).map_err(from_sled)?;
        let mut batch: Vec<AuditRecord> = Vec::with_capacity(MIGRATION_BATCH);
        for item in legacy.iter() {
            let (_, v) = item.map_err(from_sled)?;
            batch.push(codec::decode_legacy_audit(&v)?);
            if batch.len() == MIGRATION_BATCH {
                trees.audit.append(&batch)?;
                migrated += batch.len() as u64;
                batch.clear();
            }
        }
        if !batch.is_empty() {
            trees.audit.append(&batch)?;
            migrated += batch.len() as u64;
        }
    }
    for (name, tree) in [
        (KEYS, &trees.keys),
        (REPLAYS, &trees.replays),
        (REVOCATIONS, &trees.revocations),
    ] {
        for item in tree.iter() {
            let (k, v) = item.map_err(from_sled)?;
            tree.insert(k, codec::upgrade_legacy_value(name, &v)?)
                .map_err(from_sled)?;
        }
    }
    trees.flush()?;
    trees
        .meta
        .insert(FORMAT_KEY, &[codec::FORMAT])
        .map_err(from_sled)?;
    trees.flush()?;
    tracing::info!(dir = %dir.display(), audit_records = migrated, "store migrated to format {}", codec::FORMAT);
    Ok(())
}

/// Audit records moved per append while migrating.
const MIGRATION_BATCH: usize = 1024;

impl SledStore {
    /// Opens the store in `dir`, creating it with mode 0700 if needed. [`StoreError::Locked`] when
    /// another process (or another live handle in this process) holds it. Blocking: call at start-up.
    pub fn open(dir: &Path) -> Result<SledStore> {
        create_private_dir(dir)?;
        // A store this process just closed may hold the lock a moment longer (sled's flusher
        // thread outlives the handle): only then wait, a bounded time. A lock held by another
        // process, or by a handle still open here, is refused at once.
        let closed_here = CLOSED_HERE.lock().contains(dir);
        let deadline = std::time::Instant::now() + LOCK_WAIT;
        let db = loop {
            match ::sled::Config::new()
                .path(dir)
                .cache_capacity(CACHE_BYTES)
                .open()
            {
                Ok(db) => break db,
                Err(e)
                    if closed_here
                        && is_lock_conflict(&e)
                        && std::time::Instant::now() < deadline =>
                {
                    std::thread::sleep(std::time::Duration::from_millis(20));
                }
                Err(e) => return Err(open_error(dir, e)),
            }
        };
        let tree = |name: &str| db.open_tree(name).map_err(from_sled);
        let trees = Trees {
            keys: tree(KEYS)?,
            replays: tree(REPLAYS)?,
            revocations: tree(REVOCATIONS)?,
            directory: tree(DIRECTORY)?,
            audit: AuditFiles::open(&dir.join(AUDIT_DIR))?,
            meta: tree(META)?,
            db,
            dir: dir.to_path_buf(),
        };
        check_format(&trees, dir)?;
        CLOSED_HERE.lock().remove(dir);
        tracing::debug!(dir = %dir.display(), recovered = trees.db.was_recovered(), "sled store open");
        let trees = Arc::new(trees);
        let permits = Arc::new(Semaphore::new(BLOCKING_PERMITS));
        // A flush of the whole database on the blocking pool covers every caller of its batch.
        let commits = {
            let (trees, permits) = (Arc::clone(&trees), Arc::clone(&permits));
            GroupCommit::new(usize::MAX, 1, move |callers: Vec<()>| {
                let flush = run_blocking(Arc::clone(&permits), Arc::clone(&trees), |t| t.flush());
                async move {
                    flush.await?;
                    Ok(callers)
                }
            })
        };
        Ok(SledStore {
            dir: dir.to_path_buf(),
            trees,
            permits,
            commits,
        })
    }

    /// The data directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Runs `work` on the blocking pool.
    async fn run<T, F>(&self, work: F) -> Result<T>
    where
        T: Send + 'static,
        F: FnOnce(&Trees) -> Result<T> + Send + 'static,
    {
        run_blocking(Arc::clone(&self.permits), Arc::clone(&self.trees), work).await
    }
}

/// Runs `work` on the blocking pool once one of `permits` is free.
async fn run_blocking<T, F>(permits: Arc<Semaphore>, trees: Arc<Trees>, work: F) -> Result<T>
where
    T: Send + 'static,
    F: FnOnce(&Trees) -> Result<T> + Send + 'static,
{
    let permit = permits
        .acquire_owned()
        .await
        .map_err(|_| StoreError::Unavailable("the store is closed".into()))?;
    tokio::task::spawn_blocking(move || {
        let _permit = permit;
        work(&trees)
    })
    .await
    .map_err(|e| StoreError::Unavailable(format!("store operation failed: {e}")))?
}

fn decode_key(v: &[u8]) -> Result<SealingKey> {
    SealingKey::try_from(codec::decode::<StoredSealingKey>(KEYS, v)?)
}

fn decode_revocation(v: &[u8]) -> Result<Revocation> {
    Ok(codec::decode::<StoredRevocation>(REVOCATIONS, v)?.into())
}

fn replay_expiry(v: &[u8]) -> Result<i64> {
    Ok(codec::decode::<StoredReplay>(REPLAYS, v)?.expires_at)
}

fn count(n: usize) -> u64 {
    u64::try_from(n).unwrap_or(u64::MAX)
}

/// Removes every record of `tree` whose value `expired` says so, unless it changed meanwhile.
fn purge(
    trees: &Trees,
    tree: &::sled::Tree,
    expired: impl Fn(&[u8]) -> Result<bool>,
) -> Result<u64> {
    let mut removed = 0;
    for item in tree.iter() {
        let (k, v) = item.map_err(from_sled)?;
        if expired(&v)?
            && tree
                .compare_and_swap(&k, Some(&v), None::<&[u8]>)
                .map_err(from_sled)?
                .is_ok()
        {
            removed += 1;
        }
    }
    if removed > 0 {
        trees.flush()?;
    }
    Ok(count(removed))
}

#[async_trait]
impl KeyStore for SledStore {
    async fn sealing_keys(&self) -> Result<Vec<SealingKey>> {
        self.run(|t| {
            let mut keys = t
                .keys
                .iter()
                .map(|item| item.map_err(from_sled).and_then(|(_, v)| decode_key(&v)))
                .collect::<Result<Vec<_>>>()?;
            keys.sort_by(|a, b| (a.created_at, &a.id).cmp(&(b.created_at, &b.id)));
            Ok(keys)
        })
        .await
    }

    async fn insert_sealing_key(&self, key: &SealingKey) -> Result<bool> {
        check_sealing_key(key)?;
        let id = key.id.clone();
        let value = codec::encode(&StoredSealingKey::from(key))?;
        self.run(move |t| {
            let inserted = t
                .keys
                .compare_and_swap(id.as_bytes(), None::<&[u8]>, Some(value))
                .map_err(from_sled)?
                .is_ok();
            if inserted {
                t.flush()?;
            }
            Ok(inserted)
        })
        .await
    }

    async fn retire_sealing_key(&self, id: &str, retired_at: i64) -> Result<()> {
        let id = id.to_owned();
        self.run(move |t| loop {
            let current = t
                .keys
                .get(id.as_bytes())
                .map_err(from_sled)?
                .ok_or_else(|| StoreError::NotFound(format!("sealing key {id:?}")))?;
            let mut key = decode_key(&current)?;
            key.retired_at = Some(retire_time(key.retired_at, retired_at));
            let value = codec::encode(&StoredSealingKey::from(&key))?;
            if t.keys
                .compare_and_swap(id.as_bytes(), Some(&current), Some(value))
                .map_err(from_sled)?
                .is_ok()
            {
                return t.flush();
            }
        })
        .await
    }

    async fn delete_sealing_key(&self, id: &str) -> Result<()> {
        let id = id.to_owned();
        self.run(move |t| {
            if t.keys.remove(id.as_bytes()).map_err(from_sled)?.is_some() {
                t.flush()?;
            }
            Ok(())
        })
        .await
    }
}

#[async_trait]
impl ReplayCache for SledStore {
    async fn first_use(
        &self,
        namespace: &str,
        key: &str,
        expires_at: i64,
        now: i64,
    ) -> Result<bool> {
        check_replay(namespace, key, expires_at, now)?;
        let k = codec::replay_key(namespace, key);
        let value = codec::encode(&StoredReplay { expires_at })?;
        let won = self
            .run(move |t| loop {
                let current = t.replays.get(&k).map_err(from_sled)?;
                if let Some(v) = &current {
                    if replay_expiry(v)? > now {
                        return Ok(false);
                    }
                }
                // Only the caller whose compare-and-swap lands on exactly what it read wins; every
                // other concurrent caller re-reads and sees the live record.
                if t.replays
                    .compare_and_swap(&k, current.as_ref(), Some(value.as_slice()))
                    .map_err(from_sled)?
                    .is_ok()
                {
                    return Ok(true);
                }
            })
            .await?;
        if won {
            // Durable before it is reported: a flush started after the insert has completed.
            self.commits.commit(()).await?;
        }
        Ok(won)
    }

    async fn purge_expired_replays(&self, now: i64) -> Result<u64> {
        self.run(move |t| purge(t, &t.replays, |v| Ok(replay_expiry(v)? <= now)))
            .await
    }
}

#[async_trait]
impl RevocationStore for SledStore {
    async fn revoke(&self, r: &Revocation) -> Result<()> {
        let k = codec::scope_key(&r.scope);
        let r = r.clone();
        self.run(move |t| loop {
            let current = t.revocations.get(&k).map_err(from_sled)?;
            let merged = match &current {
                Some(v) => merge_revocation(&decode_revocation(v)?, &r),
                None => r.clone(),
            };
            let value = codec::encode(&StoredRevocation::from(&merged))?;
            if t.revocations
                .compare_and_swap(&k, current.as_ref(), Some(value))
                .map_err(from_sled)?
                .is_ok()
            {
                return t.flush();
            }
        })
        .await
    }

    async fn revocations(&self) -> Result<Vec<Revocation>> {
        self.run(|t| {
            t.revocations
                .iter()
                .map(|item| {
                    item.map_err(from_sled)
                        .and_then(|(_, v)| decode_revocation(&v))
                })
                .collect()
        })
        .await
    }

    async fn purge_expired_revocations(&self, now: i64) -> Result<u64> {
        self.run(move |t| {
            purge(t, &t.revocations, |v| {
                Ok(decode_revocation(v)?.expires_at <= now)
            })
        })
        .await
    }
}

fn decode_dir(v: &[u8]) -> Result<Versioned> {
    let e = codec::decode::<StoredDirEntry>(DIRECTORY, v)?;
    Ok(Versioned {
        value: e.value,
        version: e.version,
    })
}

#[async_trait]
impl DirectoryStore for SledStore {
    async fn dir_get(&self, kind: &str, key: &str) -> Result<Option<Versioned>> {
        check_dir_key(kind, key)?;
        let k = codec::dir_key(kind, key);
        self.run(move |t| {
            t.directory
                .get(&k)
                .map_err(from_sled)?
                .map(|v| decode_dir(&v))
                .transpose()
        })
        .await
    }

    async fn dir_list(&self, kind: &str) -> Result<Vec<(String, Versioned)>> {
        check_dir_key(kind, "-")?;
        let prefix = codec::dir_prefix(kind);
        self.run(move |t| {
            t.directory
                .scan_prefix(&prefix)
                .map(|item| {
                    let (k, v) = item.map_err(from_sled)?;
                    let key = std::str::from_utf8(&k[prefix.len()..])
                        .map_err(|_| StoreError::Corrupt("directory key is not UTF-8".into()))?;
                    Ok((key.to_owned(), decode_dir(&v)?))
                })
                .collect()
        })
        .await
    }

    async fn dir_write(&self, writes: &[DirWrite]) -> Result<bool> {
        check_dir_batch(writes)?;
        let mut prepared = Vec::with_capacity(writes.len());
        for w in writes {
            let value = match (&w.value, w.expect) {
                (Some(value), expect) => {
                    let version = match expect {
                        Expect::Absent => 1,
                        Expect::Version(v) => v.checked_add(1).ok_or_else(|| {
                            StoreError::Invalid("directory version overflow".into())
                        })?,
                    };
                    Some(codec::encode(&StoredDirEntry {
                        version,
                        value: value.clone(),
                    })?)
                }
                (None, _) => None,
            };
            prepared.push((codec::dir_key(&w.kind, &w.key), w.expect, value));
        }
        self.run(move |t| {
            let outcome = t.directory.transaction(|tx| {
                for (k, expect, _) in &prepared {
                    let current = tx.get(k)?;
                    let holds = match (expect, current) {
                        (Expect::Absent, None) => true,
                        (Expect::Version(v), Some(c)) => {
                            decode_dir(&c)
                                .map_err(ConflictableTransactionError::Abort)?
                                .version
                                == *v
                        }
                        _ => false,
                    };
                    if !holds {
                        return Ok(false);
                    }
                }
                for (k, expect, value) in &prepared {
                    match (value, expect) {
                        (Some(v), _) => {
                            tx.insert(k.as_slice(), v.as_slice())?;
                        }
                        (None, Expect::Version(_)) => {
                            tx.remove(k.as_slice())?;
                        }
                        (None, Expect::Absent) => {}
                    }
                }
                Ok(true)
            });
            match outcome {
                Ok(true) => t.flush().map(|()| true),
                Ok(false) => Ok(false),
                Err(TransactionError::Abort(e)) => Err(e),
                Err(TransactionError::Storage(e)) => Err(from_sled(e)),
            }
        })
        .await
    }
}

#[async_trait]
impl AuditLog for SledStore {
    async fn append_audit(&self, records: &[AuditRecord]) -> Result<()> {
        check_audit_batch(records)?;
        if records.is_empty() {
            return Ok(());
        }
        let records = records.to_vec();
        self.run(move |t| t.audit.append(&records)).await
    }

    async fn query_audit(&self, q: &AuditQuery) -> Result<Vec<AuditRecord>> {
        let q = q.clone();
        self.run(move |t| t.audit.query(&q)).await
    }
}

#[async_trait]
impl Store for SledStore {
    fn kind(&self) -> &'static str {
        "sled"
    }

    async fn health(&self) -> Result<()> {
        self.run(|t| match t.meta.get(FORMAT_KEY).map_err(from_sled)? {
            Some(v) if v.as_ref() == [codec::FORMAT] => t.audit.health(),
            _ => Err(StoreError::Corrupt(
                "the store format marker is missing".into(),
            )),
        })
        .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[cfg(unix)]
    #[test]
    fn open_creates_a_private_directory_and_narrows_an_open_one() {
        use std::os::unix::fs::PermissionsExt;
        let base = tempfile::tempdir().expect("tempdir");
        let fresh = base.path().join("a/b/data");
        let _s = SledStore::open(&fresh).expect("open");
        let mode = |p: &Path| std::fs::metadata(p).expect("stat").permissions().mode() & 0o777;
        assert_eq!(mode(&fresh), 0o700);

        let open = base.path().join("open");
        std::fs::create_dir(&open).expect("mkdir");
        std::fs::set_permissions(&open, std::fs::Permissions::from_mode(0o755)).expect("chmod");
        let _t = SledStore::open(&open).expect("open");
        assert_eq!(mode(&open), 0o700);
    }

    #[test]
    fn a_second_handle_in_the_same_process_is_locked_until_the_first_is_dropped() {
        let dir = tempfile::tempdir().expect("tempdir");
        let first = SledStore::open(dir.path()).expect("open");
        let asked = std::time::Instant::now();
        let second = SledStore::open(dir.path());
        assert!(
            asked.elapsed() < LOCK_WAIT,
            "a lock held by an open handle is refused without waiting"
        );
        match second {
            Err(StoreError::Locked(m)) => {
                assert!(m.contains(&dir.path().display().to_string()), "{m}");
                assert!(m.contains("in use by another rolegate process"), "{m}");
            }
            other => panic!("expected Locked, got {other:?}"),
        }
        drop(first);
        SledStore::open(dir.path()).expect("reopen after drop");
    }

    #[test]
    fn lock_conflicts_are_told_apart_from_other_io_errors() {
        let lock = ::sled::Error::Io(std::io::Error::other(
            "could not acquire lock on \"/d/db\": Os { code: 11, kind: WouldBlock, message: \"Resource temporarily unavailable\" }",
        ));
        let no_locks = ::sled::Error::Io(std::io::Error::other(
            "could not acquire lock on \"/d/db\": Os { code: 37, kind: Uncategorized, message: \"No locks available\" }",
        ));
        let denied = ::sled::Error::Io(std::io::Error::from(std::io::ErrorKind::PermissionDenied));
        assert!(is_lock_conflict(&lock));
        assert!(!is_lock_conflict(&no_locks));
        assert!(!is_lock_conflict(&denied));
        assert!(matches!(
            open_error(Path::new("/d"), lock),
            StoreError::Locked(_)
        ));
        assert!(matches!(
            open_error(Path::new("/d"), no_locks),
            StoreError::Unavailable(_)
        ));
    }

    #[test]
    fn a_directory_with_data_but_no_format_marker_is_refused() {
        let dir = tempfile::tempdir().expect("tempdir");
        {
            let db = ::sled::open(dir.path()).expect("raw open");
            let t = db.open_tree(REPLAYS).expect("tree");
            t.insert(b"x", &7i64.to_be_bytes()).expect("insert");
            db.flush().expect("flush");
        }
        match SledStore::open(dir.path()) {
            Err(StoreError::Corrupt(m)) => assert!(m.contains("format marker"), "{m}"),
            other => panic!("expected Corrupt, got {other:?}"),
        }
    }

    #[test]
    fn a_directory_of_another_format_is_refused() {
        let dir = tempfile::tempdir().expect("tempdir");
        {
            let db = ::sled::open(dir.path()).expect("raw open");
            let t = db.open_tree(META).expect("tree");
            t.insert(FORMAT_KEY, &[codec::FORMAT + 1]).expect("insert");
            db.flush().expect("flush");
        }
        match SledStore::open(dir.path()) {
            Err(StoreError::Corrupt(m)) => assert!(m.contains("store format"), "{m}"),
            other => panic!("expected Corrupt, got {other:?}"),
        }
    }

    #[tokio::test]
    async fn damaged_records_surface_as_corrupt() {
        let dir = tempfile::tempdir().expect("tempdir");
        let s = SledStore::open(dir.path()).expect("open");
        s.trees
            .replays
            .insert(codec::replay_key("ns", "k"), &[9u8, 1, 2][..])
            .expect("insert");
        s.trees
            .keys
            .insert(b"k1", &[codec::FORMAT, b'{'][..])
            .expect("insert");
        assert!(matches!(
            s.first_use("ns", "k", 10, 1).await,
            Err(StoreError::Corrupt(_))
        ));
        assert!(matches!(
            s.purge_expired_replays(5).await,
            Err(StoreError::Corrupt(_))
        ));
        assert!(matches!(
            s.sealing_keys().await,
            Err(StoreError::Corrupt(_))
        ));
        assert!(matches!(
            s.retire_sealing_key("k1", 5).await,
            Err(StoreError::Corrupt(_))
        ));
    }

    /// A format 2 database: the API's writes with their leading byte set back to 2, and an audit log
    /// of one JSON record per key, as format 2 wrote it.
    async fn format_2_database(dir: &Path, audit: &[AuditRecord]) -> SealingKey {
        use super::super::{KeyBytes, RevocationScope};
        let key = SealingKey {
            id: "k1".into(),
            secret: KeyBytes::new(vec![7u8; 32]),
            created_at: 10,
            retired_at: None,
        };
        {
            let s = SledStore::open(dir).expect("open");
            assert!(s.insert_sealing_key(&key).await.expect("key"));
            assert!(s.first_use("ns", "jti", 1_000, 1).await.expect("replay"));
            s.revoke(&Revocation {
                scope: RevocationScope::Role("arn:aws:iam::1:role/r".into()),
                issued_before: 50,
                created_at: 40,
                reason: "test".into(),
                expires_at: 900,
            })
            .await
            .expect("revoke");
        }
        std::fs::remove_dir_all(dir.join(AUDIT_DIR)).expect("format 2 had no segment files");
        let db = ::sled::open(dir).expect("raw open");
        for name in [KEYS, REPLAYS, REVOCATIONS] {
            let t = db.open_tree(name).expect("tree");
            for item in t.iter() {
                let (k, v) = item.expect("item");
                let mut old = v.to_vec();
                assert_eq!(old[0], codec::FORMAT);
                old[0] = codec::LEGACY_FORMAT;
                t.insert(k, old).expect("insert");
            }
        }
        let legacy = db.open_tree(LEGACY_AUDIT).expect("tree");
        for r in audit {
            let mut k = codec::time_key(r.time_ms).to_vec();
            k.extend_from_slice(r.id.as_bytes());
            let mut v = vec![codec::LEGACY_FORMAT];
            serde_json::to_writer(
                &mut v,
                &serde_json::json!({
                    "time_ms": r.time_ms, "id": r.id, "action": r.action,
                    "principal": r.principal, "decision": r.decision, "json": r.json,
                }),
            )
            .expect("json");
            legacy.insert(k, v).expect("insert");
        }
        db.open_tree(META)
            .expect("meta")
            .insert(FORMAT_KEY, &[codec::LEGACY_FORMAT])
            .expect("marker");
        db.flush().expect("flush");
        key
    }

    fn audit_record(time_ms: i64, id: &str) -> AuditRecord {
        AuditRecord {
            time_ms,
            id: id.into(),
            action: "sts:AssumeRoleWithWebIdentity".into(),
            principal: (time_ms % 2 == 0).then(|| "arn:aws:sts::1:assumed-role/r/s".into()),
            decision: "allow".into(),
            json: format!("{{\"n\":{time_ms}}}"),
        }
    }

    #[tokio::test]
    async fn a_format_2_database_is_migrated_on_open_and_loses_nothing() {
        let dir = tempfile::tempdir().expect("tempdir");
        let audit: Vec<AuditRecord> = [
            (-1_500, "neg"),
            (999, "a"),
            (1_000, "b"),
            (1_000, "c"),
            (1_999, "d"),
            (5_000, "e"),
        ]
        .iter()
        .map(|&(t, id)| audit_record(t, id))
        .collect();
        let key = format_2_database(dir.path(), &audit).await;

        // A migration that stopped part-way left segment files behind; they must not be read twice.
        {
            let stale = AuditFiles::open(&dir.path().join(AUDIT_DIR)).expect("audit files");
            stale.append(&audit[1..2]).expect("append");
        }

        let s = SledStore::open(dir.path()).expect("migrating open");
        s.health().await.expect("healthy");
        assert!(!has_tree(&s.trees.db, LEGACY_AUDIT));
        assert_eq!(s.sealing_keys().await.expect("keys"), vec![key]);
        assert!(!s
            .first_use("ns", "jti", 1_000, 2)
            .await
            .expect("replay kept"));
        assert_eq!(s.revocations().await.expect("revocations").len(), 1);
        let all = AuditQuery {
            newest_first: false,
            limit: 100,
            ..AuditQuery::default()
        };
        assert_eq!(s.query_audit(&all).await.expect("audit"), audit);
        let window = AuditQuery {
            since_ms: Some(1_000),
            until_ms: Some(2_000),
            ..all.clone()
        };
        assert_eq!(s.query_audit(&window).await.expect("audit"), audit[2..5]);
        drop(s);
        // Opening again is a plain open.
        let s = SledStore::open(dir.path()).expect("reopen");
        assert_eq!(s.query_audit(&all).await.expect("audit"), audit);
    }

    #[tokio::test]
    async fn a_damaged_format_2_record_stops_the_migration_and_keeps_the_old_marker() {
        let dir = tempfile::tempdir().expect("tempdir");
        format_2_database(dir.path(), &[audit_record(1_000, "a")]).await;
        {
            let db = ::sled::open(dir.path()).expect("raw open");
            db.open_tree(LEGACY_AUDIT)
                .expect("tree")
                .insert(b"zz", &[codec::LEGACY_FORMAT, b'{'][..])
                .expect("insert");
            db.flush().expect("flush");
        }
        match SledStore::open(dir.path()) {
            Err(StoreError::Corrupt(m)) => assert!(m.contains("format 2 audit record"), "{m}"),
            other => panic!("expected Corrupt, got {other:?}"),
        }
        let db = ::sled::open(dir.path()).expect("raw open");
        assert_eq!(
            db.open_tree(META)
                .expect("meta")
                .get(FORMAT_KEY)
                .expect("get")
                .as_deref(),
            Some(&[codec::LEGACY_FORMAT][..])
        );
        assert_eq!(db.open_tree(LEGACY_AUDIT).expect("tree").len(), 2);
    }

    #[tokio::test]
    async fn health_reads_the_format_marker() {
        let dir = tempfile::tempdir().expect("tempdir");
        let s = SledStore::open(dir.path()).expect("open");
        s.health().await.expect("healthy");
        s.trees.meta.remove(FORMAT_KEY).expect("remove");
        assert!(matches!(s.health().await, Err(StoreError::Corrupt(_))));
    }
}
