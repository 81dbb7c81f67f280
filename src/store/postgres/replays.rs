//! The replay cache: single uses are group-committed, concurrent ones recorded by one statement.
//!
//! A use is an `INSERT … ON CONFLICT (namespace, key) DO UPDATE … WHERE replays.expires_at <= now`
//! that affects a row for exactly one caller. Each commit waits for its WAL to reach the server's
//! disk (`synchronous_commit = on`), so one statement per use costs one flush per use, whatever
//! PostgreSQL manages to share. Concurrent uses therefore join a [`GroupCommit`]: a lone caller's
//! statement runs at once, and the callers that arrive while [`CONCURRENT_BATCHES`] statements are
//! running gather (at most [`MAX_BATCH`] of them) for the next one, one `INSERT … SELECT FROM
//! unnest(…)` whose `RETURNING` names the records it inserted or renewed. Each caller is answered
//! only after that statement has committed.
//!
//! Within a batch each row carries its caller's own `now`. A key used twice in one batch is sent once,
//! with the latest `now` of its callers (a record expired for an earlier `now` is expired for a
//! later one): that caller wins if anyone can, the others are replays, as if they had come after it.
//! Text PostgreSQL cannot hold (NUL) is refused before a use joins a batch; if a batch fails anyway
//! (a key too long for the index, a deadlock with another replica), each of its callers runs its own
//! statement and gets its own answer, so one bad row never fails the others. A batch that failed
//! has recorded nothing, or, if its commit was lost with the connection, everything: then its
//! callers are told "replay", never "first use" twice.

use super::{from_pg, Db, PgStore};
use crate::store::group_commit::GroupCommit;
use crate::store::{check_replay, ReplayCache, Result, StoreError};
use async_trait::async_trait;
use std::collections::{BTreeMap, HashSet};

/// The most uses one statement records.
pub(super) const MAX_BATCH: usize = 256;
/// How many batch statements run at a time (each holds a pooled connection).
pub(super) const CONCURRENT_BATCHES: usize = 2;

/// One caller's use, already checked.
#[derive(Clone)]
pub(super) struct Use {
    namespace: String,
    key: String,
    expires_at: i64,
    now: i64,
}

const ONE: &str = "INSERT INTO replays (namespace, key, expires_at) VALUES ($1, $2, $3)
     ON CONFLICT (namespace, key) DO UPDATE SET expires_at = excluded.expires_at
     WHERE replays.expires_at <= $4";

const MANY: &str = "WITH input AS (
         SELECT * FROM unnest($1::text[], $2::text[], $3::int8[], $4::int8[])
             AS i (namespace, key, expires_at, now))
     INSERT INTO replays AS r (namespace, key, expires_at)
     SELECT namespace, key, expires_at FROM input
     ON CONFLICT (namespace, key) DO UPDATE SET expires_at = excluded.expires_at
     WHERE r.expires_at <= (SELECT i.now FROM input i
         WHERE i.namespace = excluded.namespace COLLATE \"C\" AND i.key = excluded.key COLLATE \"C\")
     RETURNING r.namespace, r.key";

/// The committer of `db`'s single uses.
pub(super) fn committer(db: &Db) -> GroupCommit<Use, Result<bool>> {
    let db = db.clone();
    GroupCommit::new(MAX_BATCH, CONCURRENT_BATCHES, move |uses: Vec<Use>| {
        let db = db.clone();
        async move { Ok(record(&db, uses).await) }
    })
}

/// Records a batch of uses; one answer per use, in order.
async fn record(db: &Db, uses: Vec<Use>) -> Vec<Result<bool>> {
    if let [one] = uses.as_slice() {
        return vec![record_one(db, one).await];
    }
    // Per record, the use sent for it: the one with the latest `now` (the first of equals).
    let mut sent: BTreeMap<(&str, &str), usize> = BTreeMap::new();
    for (i, u) in uses.iter().enumerate() {
        let chosen = sent.entry((&u.namespace, &u.key)).or_insert(i);
        if uses[*chosen].now < u.now {
            *chosen = i;
        }
    }
    match record_many(db, &uses, &sent).await {
        Ok(won) => (0..uses.len()).map(|i| Ok(won.contains(&i))).collect(),
        Err(e) => {
            tracing::warn!(error = %e, uses = uses.len(), "a batch of single uses failed; recording them one by one");
            record_each(db, &uses).await
        }
    }
}

/// The batch statement for the uses in `sent` (in key order, so that concurrent batches of several
/// replicas take their row locks in one order); the uses whose record it inserted or renewed.
async fn record_many(
    db: &Db,
    uses: &[Use],
    sent: &BTreeMap<(&str, &str), usize>,
) -> Result<HashSet<usize>> {
    let rows: Vec<&Use> = sent.values().map(|&i| &uses[i]).collect();
    let namespaces: Vec<&str> = rows.iter().map(|u| u.namespace.as_str()).collect();
    let keys: Vec<&str> = rows.iter().map(|u| u.key.as_str()).collect();
    let expiries: Vec<i64> = rows.iter().map(|u| u.expires_at).collect();
    let nows: Vec<i64> = rows.iter().map(|u| u.now).collect();
    let won = db
        .query(
            "recording single uses",
            MANY,
            &[&namespaces, &keys, &expiries, &nows],
        )
        .await?;
    let mut winners = HashSet::with_capacity(won.len());
    for row in won {
        let namespace: &str = row.try_get(0).map_err(from_pg)?;
        let key: &str = row.try_get(1).map_err(from_pg)?;
        let Some(&i) = sent.get(&(namespace, key)) else {
            return Err(StoreError::Corrupt(format!(
                "postgres returned a single use {namespace:?}/{key:?} that was not sent"
            )));
        };
        winners.insert(i);
    }
    Ok(winners)
}

/// Each use by a statement of its own, all at once.
async fn record_each(db: &Db, uses: &[Use]) -> Vec<Result<bool>> {
    let tasks: Vec<_> = uses
        .iter()
        .map(|u| {
            let (db, u) = (db.clone(), u.clone());
            tokio::spawn(async move { record_one(&db, &u).await })
        })
        .collect();
    let mut answers = Vec::with_capacity(tasks.len());
    for t in tasks {
        answers.push(t.await.unwrap_or_else(|e| {
            Err(StoreError::Unavailable(format!(
                "recording a single use failed: {e}"
            )))
        }));
    }
    answers
}

async fn record_one(db: &Db, u: &Use) -> Result<bool> {
    let n = db
        .execute(
            "recording a single use",
            ONE,
            &[&u.namespace, &u.key, &u.expires_at, &u.now],
        )
        .await?;
    Ok(n == 1)
}

#[async_trait]
impl ReplayCache for PgStore {
    async fn first_use(
        &self,
        namespace: &str,
        key: &str,
        expires_at: i64,
        now: i64,
    ) -> Result<bool> {
        check_replay(namespace, key, expires_at, now)?;
        for (what, text) in [("namespace", namespace), ("key", key)] {
            if text.contains('\0') {
                return Err(StoreError::Invalid(format!(
                    "replay {what} {text:?} contains NUL, which postgres cannot hold"
                )));
            }
        }
        self.replays
            .commit(Use {
                namespace: namespace.to_owned(),
                key: key.to_owned(),
                expires_at,
                now,
            })
            .await?
    }

    async fn purge_expired_replays(&self, now: i64) -> Result<u64> {
        self.db
            .execute(
                "purging replay records",
                "DELETE FROM replays WHERE expires_at <= $1",
                &[&now],
            )
            .await
    }
}
