//! The behaviour every backend must show, as one suite run against each of them. Every check panics
//! with a message naming the behaviour that broke. Knows only the traits, never a backend.
//!
//! [`run`] needs an empty store and leaves records behind; [`run_durable`] needs a constructor that
//! opens the same (initially empty) storage each time it is called. [`write_durable`] and
//! [`check_durable`] are its two halves, for a check across a process that exits without closing
//! the store.

use super::{
    AuditQuery, AuditRecord, DirWrite, KeyBytes, Result, Revocation, RevocationScope, SealingKey,
    Store, StoreError, Versioned, MAX_DIR_BATCH,
};
use std::fmt::Debug;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::Poll;

mod replay_batches;

/// How many concurrent callers race for the same replay record.
pub const RACERS: usize = 32;
/// How many times they race.
pub const RACE_ROUNDS: usize = 16;

/// Runs every behavioural check on `store`, which must start empty.
pub async fn run(store: &dyn Store) {
    starts_empty(store).await;
    sealing_keys(store).await;
    replay_purge(store).await;
    replay(store).await;
    replay_races(store).await;
    replay_batches::run(store).await;
    revocations(store).await;
    revocation_purge(store).await;
    directory(store).await;
    directory_races(store).await;
    audit(store).await;
    ok("health after the suite", store.health().await);
}

fn durable_keys() -> (SealingKey, SealingKey) {
    (key("durable-1", 10, 5), key("durable-2", 20, 6))
}

fn durable_revocations() -> Vec<Revocation> {
    vec![
        revocation(
            RevocationScope::Session("s-1".into()),
            100,
            "session",
            1_000,
        ),
        revocation(
            RevocationScope::Subject {
                provider: "corp".into(),
                subject: "alice".into(),
            },
            200,
            "subject",
            2_000,
        ),
    ]
}

fn durable_events() -> Vec<AuditRecord> {
    vec![
        record(1_000, "d1", "sts:AssumeRole", Some("alice"), "allow"),
        record(2_000, "d2", "sts:AssumeRole", None, "deny"),
    ]
}

/// Writes the records [`check_durable`] looks for into an empty store: two sealing keys (one
/// retired), a replay record, two revocations and an audit batch.
pub async fn write_durable(s: &dyn Store) {
    let (k1, k2) = durable_keys();
    for k in [&k1, &k2] {
        assert!(ok("insert before reopen", s.insert_sealing_key(k).await));
    }
    ok(
        "retire before reopen",
        s.retire_sealing_key(&k1.id, 30).await,
    );
    assert!(ok(
        "first use before reopen",
        s.first_use("saml", "persisted", 10_000, 1).await
    ));
    for r in &durable_revocations() {
        ok("revoke before reopen", s.revoke(r).await);
    }
    ok(
        "append before reopen",
        s.append_audit(&durable_events()).await,
    );
    assert!(ok(
        "directory write before reopen",
        s.dir_write(&[
            DirWrite::insert("user", "durable", "{\"n\":1}".into()),
            DirWrite::insert("group", "durable", "{}".into()),
        ])
        .await
    ));
}

/// Checks, through a store opened after [`write_durable`] returned, that every record is there.
/// Changes nothing but re-uses of the replay record (which must be refused).
pub async fn check_durable(s: &dyn Store) {
    let (k1, k2) = durable_keys();
    let k1_retired = SealingKey {
        retired_at: Some(30),
        ..k1
    };
    assert_eq!(
        ok("sealing_keys after reopen", s.sealing_keys().await),
        vec![k1_retired, k2],
        "store conformance: sealing keys (with retirement) persist across a reopen"
    );
    assert!(
        !ok(
            "first use after reopen",
            s.first_use("saml", "persisted", 20_000, 2).await
        ),
        "store conformance: a replay record persists across a reopen"
    );
    assert_eq!(
        sorted(ok("revocations after reopen", s.revocations().await)),
        sorted(durable_revocations()),
        "store conformance: revocations persist across a reopen"
    );
    assert_eq!(
        ok(
            "query after reopen",
            s.query_audit(&all_oldest_first()).await
        ),
        durable_events(),
        "store conformance: audit records persist across a reopen"
    );
    assert_eq!(
        ok(
            "directory get after reopen",
            s.dir_get("user", "durable").await
        ),
        Some(Versioned {
            value: "{\"n\":1}".into(),
            version: 1
        }),
        "store conformance: directory records persist across a reopen"
    );
    ok("health after reopen", s.health().await);
}

/// Writes through one instance from `open`, drops it, and checks through a new one that everything
/// persisted; then does the same for a deletion and a purge.
pub async fn run_durable<F>(open: F)
where
    F: Fn() -> Arc<dyn Store>,
{
    let s = open();
    write_durable(s.as_ref()).await;
    drop(s);

    let s = open();
    check_durable(s.as_ref()).await;
    let (k1, k2) = durable_keys();
    ok("delete after reopen", s.delete_sealing_key(&k2.id).await);
    assert_eq!(
        ok(
            "purge after reopen",
            s.purge_expired_revocations(1_000).await
        ),
        1,
        "store conformance: purge after a reopen removes the expired revocation"
    );
    drop(s);

    let s = open();
    assert_eq!(
        ok("sealing_keys after second reopen", s.sealing_keys().await),
        vec![SealingKey {
            retired_at: Some(30),
            ..k1
        }],
        "store conformance: a deletion persists across a reopen"
    );
    assert_eq!(
        ok("revocations after second reopen", s.revocations().await),
        vec![durable_revocations()[1].clone()],
        "store conformance: a purge persists across a reopen"
    );
}

#[track_caller]
fn ok<T>(what: &str, r: Result<T>) -> T {
    match r {
        Ok(v) => v,
        Err(e) => panic!("store conformance: {what}: unexpected error: {e}"),
    }
}

#[track_caller]
fn invalid<T: Debug>(what: &str, r: Result<T>) {
    match r {
        Err(StoreError::Invalid(_)) => {}
        other => panic!("store conformance: {what}: expected StoreError::Invalid, got {other:?}"),
    }
}

fn key(id: &str, created_at: i64, fill: u8) -> SealingKey {
    SealingKey {
        id: id.into(),
        secret: KeyBytes::from([fill; KeyBytes::LEN]),
        created_at,
        retired_at: None,
    }
}

fn revocation(
    scope: RevocationScope,
    issued_before: i64,
    reason: &str,
    expires_at: i64,
) -> Revocation {
    Revocation {
        scope,
        issued_before,
        created_at: issued_before,
        reason: reason.into(),
        expires_at,
    }
}

fn record(
    time_ms: i64,
    id: &str,
    action: &str,
    principal: Option<&str>,
    decision: &str,
) -> AuditRecord {
    AuditRecord {
        time_ms,
        id: id.into(),
        action: action.into(),
        principal: principal.map(str::to_owned),
        decision: decision.into(),
        json: format!(r#"{{"id":"{id}","action":"{action}"}}"#),
    }
}

fn sorted(mut v: Vec<Revocation>) -> Vec<Revocation> {
    v.sort_by_key(|r| format!("{:?}", r.scope));
    v
}

fn all_oldest_first() -> AuditQuery {
    AuditQuery {
        limit: usize::MAX,
        newest_first: false,
        ..AuditQuery::default()
    }
}

fn ids(records: &[AuditRecord]) -> Vec<&str> {
    records.iter().map(|r| r.id.as_str()).collect()
}

type BoxedFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// Polls all `futures` concurrently until each is done; results in input order.
async fn join_all<'a, T>(futures: Vec<BoxedFuture<'a, T>>) -> Vec<T> {
    let mut pending: Vec<Option<BoxedFuture<'a, T>>> = futures.into_iter().map(Some).collect();
    let mut done: Vec<Option<T>> = pending.iter().map(|_| None).collect();
    std::future::poll_fn(|cx| {
        let mut finished = true;
        for (slot, out) in pending.iter_mut().zip(done.iter_mut()) {
            if let Some(f) = slot {
                match f.as_mut().poll(cx) {
                    Poll::Ready(v) => {
                        *out = Some(v);
                        *slot = None;
                    }
                    Poll::Pending => finished = false,
                }
            }
        }
        if finished {
            Poll::Ready(())
        } else {
            Poll::Pending
        }
    })
    .await;
    done.into_iter().flatten().collect()
}

async fn starts_empty(s: &dyn Store) {
    let kind = s.kind();
    assert!(
        !kind.is_empty(),
        "store conformance: kind() names the backend"
    );
    ok("health of a new store", s.health().await);
    assert!(
        ok("sealing_keys", s.sealing_keys().await).is_empty(),
        "store conformance: the suite needs an empty store, {kind} has sealing keys"
    );
    assert!(
        ok("revocations", s.revocations().await).is_empty(),
        "store conformance: the suite needs an empty store, {kind} has revocations"
    );
    assert!(
        ok("query_audit", s.query_audit(&all_oldest_first()).await).is_empty(),
        "store conformance: the suite needs an empty store, {kind} has audit records"
    );
    assert_eq!(
        ok("purge replays", s.purge_expired_replays(i64::MAX).await),
        0,
        "store conformance: the suite needs an empty store, {kind} has replay records"
    );
    assert_eq!(
        ok(
            "purge revocations",
            s.purge_expired_revocations(i64::MAX).await
        ),
        0,
        "store conformance: purging an empty store removes nothing"
    );
}

async fn sealing_keys(s: &dyn Store) {
    let b = key("b", 20, 2);
    let a = key("a", 20, 1);
    let c = key("c", 10, 3);
    assert!(
        ok("insert b", s.insert_sealing_key(&b).await),
        "store conformance: inserting a new key id returns true"
    );
    let mut rival = key("b", 99, 9);
    rival.retired_at = Some(100);
    assert!(
        !ok("insert b again", s.insert_sealing_key(&rival).await),
        "store conformance: inserting an existing key id returns false"
    );
    assert_eq!(
        ok("sealing_keys", s.sealing_keys().await),
        vec![b.clone()],
        "store conformance: inserting an existing key id changes nothing (secret included)"
    );
    for k in [&a, &c] {
        assert!(ok("insert", s.insert_sealing_key(k).await));
    }
    assert_eq!(
        ok("sealing_keys", s.sealing_keys().await),
        vec![c.clone(), a.clone(), b.clone()],
        "store conformance: keys come back whole, ordered by created_at then id"
    );

    let short = SealingKey {
        secret: KeyBytes::new(vec![1; 16]),
        ..key("short", 1, 0)
    };
    invalid(
        "insert a 16-byte secret",
        s.insert_sealing_key(&short).await,
    );
    invalid(
        "insert an empty id",
        s.insert_sealing_key(&key("", 1, 0)).await,
    );

    let retired = |at| {
        let mut k = a.clone();
        k.retired_at = Some(at);
        vec![c.clone(), k, b.clone()]
    };
    ok("retire a", s.retire_sealing_key("a", 100).await);
    assert_eq!(
        ok("sealing_keys", s.sealing_keys().await),
        retired(100),
        "store conformance: retiring sets retired_at on that key only"
    );
    ok("retire a later", s.retire_sealing_key("a", 150).await);
    assert_eq!(
        ok("sealing_keys", s.sealing_keys().await),
        retired(100),
        "store conformance: retiring again later keeps the earlier time"
    );
    ok("retire a earlier", s.retire_sealing_key("a", 50).await);
    assert_eq!(
        ok("sealing_keys", s.sealing_keys().await),
        retired(50),
        "store conformance: retiring again earlier moves to the earlier time"
    );
    match s.retire_sealing_key("missing", 10).await {
        Err(StoreError::NotFound(_)) => {}
        other => panic!("store conformance: retiring a missing key gives NotFound, got {other:?}"),
    }

    ok("delete a", s.delete_sealing_key("a").await);
    assert_eq!(
        ok("sealing_keys", s.sealing_keys().await),
        vec![c.clone(), b.clone()],
        "store conformance: delete removes that key only"
    );
    ok("delete a again", s.delete_sealing_key("a").await);
    ok("delete missing", s.delete_sealing_key("missing").await);
    assert!(
        ok("insert a after delete", s.insert_sealing_key(&a).await),
        "store conformance: a deleted key id can be inserted again"
    );
    for id in ["a", "b", "c"] {
        ok("delete", s.delete_sealing_key(id).await);
    }
    assert!(ok("sealing_keys", s.sealing_keys().await).is_empty());
}

async fn replay_purge(s: &dyn Store) {
    for (ns, k, exp) in [
        ("purge", "p1", 1_000),
        ("purge", "p2", 2_000),
        ("other", "p3", 3_000),
    ] {
        assert!(ok("first use", s.first_use(ns, k, exp, 0).await));
    }
    assert_eq!(
        ok("purge at 999", s.purge_expired_replays(999).await),
        0,
        "store conformance: purge keeps records that have not expired"
    );
    assert_eq!(
        ok("purge at 2000", s.purge_expired_replays(2_000).await),
        2,
        "store conformance: purge removes records with expires_at <= now, in every namespace"
    );
    assert!(
        !ok(
            "first use of p3",
            s.first_use("other", "p3", 5_000, 2_500).await
        ),
        "store conformance: purge leaves live records in force"
    );
    assert_eq!(
        ok("purge at 2000 again", s.purge_expired_replays(2_000).await),
        0,
        "store conformance: a second purge finds nothing"
    );
    assert_eq!(
        ok("purge everything", s.purge_expired_replays(i64::MAX).await),
        1,
        "store conformance: purge counts what it removed"
    );
}

async fn replay(s: &dyn Store) {
    assert!(
        ok("first use", s.first_use("saml", "id-1", 100, 10).await),
        "store conformance: the first use of a key is accepted"
    );
    assert!(
        !ok("second use", s.first_use("saml", "id-1", 100, 11).await),
        "store conformance: the second use of a key is a replay"
    );
    assert!(
        !ok(
            "use before expiry",
            s.first_use("saml", "id-1", 500, 99).await
        ),
        "store conformance: a key is a replay until its record expires"
    );
    assert!(
        ok(
            "other namespace",
            s.first_use("oidc-nonce", "id-1", 100, 11).await
        ),
        "store conformance: namespaces are independent"
    );
    assert!(
        ok("other key", s.first_use("saml", "id-2", 100, 11).await),
        "store conformance: keys are independent"
    );
    assert!(ok("a/bc", s.first_use("a", "bc", 100, 11).await));
    assert!(
        ok("ab/c", s.first_use("ab", "c", 100, 11).await),
        "store conformance: (a, bc) and (ab, c) are different records"
    );
    assert!(
        ok("use at expiry", s.first_use("saml", "id-1", 300, 100).await),
        "store conformance: a record is reusable once now reaches its expires_at"
    );
    assert!(
        !ok(
            "use after renewal",
            s.first_use("saml", "id-1", 900, 299).await
        ),
        "store conformance: a reused record holds until its new expires_at"
    );
    assert!(
        ok(
            "use after renewal expiry",
            s.first_use("saml", "id-1", 900, 300).await
        ),
        "store conformance: the new expires_at, not the first, ends the renewed record"
    );

    invalid("expires_at == now", s.first_use("fresh", "k", 10, 10).await);
    invalid("expires_at < now", s.first_use("fresh", "k", 9, 10).await);
    invalid("empty namespace", s.first_use("", "k", 20, 10).await);
    invalid("empty key", s.first_use("fresh", "", 20, 10).await);
    assert!(
        ok(
            "first use after refusals",
            s.first_use("fresh", "k", 20, 10).await
        ),
        "store conformance: a refused call records nothing"
    );
}

fn racers<'a>(
    s: &'a dyn Store,
    key: &'a str,
    expires_at: i64,
    now: i64,
) -> Vec<BoxedFuture<'a, Result<bool>>> {
    (0..RACERS)
        .map(|_| s.first_use("race", key, expires_at, now))
        .collect()
}

async fn winners(what: &str, racers: Vec<BoxedFuture<'_, Result<bool>>>) -> usize {
    join_all(racers)
        .await
        .into_iter()
        .map(|r| ok(what, r))
        .filter(|won| *won)
        .count()
}

async fn replay_races(s: &dyn Store) {
    // Several rounds, since a check-then-set race shows only when two callers interleave.
    for round in 0..RACE_ROUNDS {
        let key = format!("same-{round}");
        assert_eq!(
            winners("concurrent first use", racers(s, &key, 1_000, 1)).await,
            1,
            "store conformance: of {RACERS} concurrent first uses of one key exactly one is accepted"
        );
        assert_eq!(
            winners("concurrent reuse", racers(s, &key, 2_000, 1_000)).await,
            1,
            "store conformance: of {RACERS} concurrent reuses of one expired record exactly one is \
             accepted"
        );
    }
    let names: Vec<String> = (0..RACERS).map(|i| format!("distinct-{i}")).collect();
    let distinct: Vec<BoxedFuture<'_, Result<bool>>> = names
        .iter()
        .map(|k| s.first_use("race", k, 1_000, 1))
        .collect();
    for r in join_all(distinct).await {
        assert!(
            ok("concurrent distinct first use", r),
            "store conformance: concurrent first uses of distinct keys are all accepted"
        );
    }
}

async fn directory(s: &dyn Store) {
    let v = |value: &str, version: u64| Versioned {
        value: value.into(),
        version,
    };
    assert_eq!(
        ok("get missing", s.dir_get("user", "alice").await),
        None,
        "store conformance: a missing directory record reads as None"
    );
    assert!(
        ok(
            "insert",
            s.dir_write(&[DirWrite::insert("user", "alice", "a1".into())])
                .await
        ),
        "store conformance: inserting an absent record succeeds"
    );
    assert_eq!(
        ok("get", s.dir_get("user", "alice").await),
        Some(v("a1", 1)),
        "store conformance: an inserted record has version 1"
    );
    assert!(
        !ok(
            "insert again",
            s.dir_write(&[DirWrite::insert("user", "alice", "other".into())])
                .await
        ),
        "store conformance: inserting an existing record is refused"
    );
    assert!(
        !ok(
            "stale update",
            s.dir_write(&[DirWrite::update("user", "alice", 2, "a?".into())])
                .await
        ),
        "store conformance: an update naming the wrong version is refused"
    );
    assert!(
        ok(
            "update",
            s.dir_write(&[DirWrite::update("user", "alice", 1, "a2".into())])
                .await
        ),
        "store conformance: an update naming the current version succeeds"
    );
    assert_eq!(
        ok("get after update", s.dir_get("user", "alice").await),
        Some(v("a2", 2)),
        "store conformance: an update adds one to the version"
    );

    // Atomicity: one failing expectation and nothing of the batch is written.
    assert!(
        !ok(
            "failing batch",
            s.dir_write(&[
                DirWrite::insert("user", "bob", "b1".into()),
                DirWrite::update("user", "alice", 2, "a3".into()),
                DirWrite::update("user", "carol", 1, "c?".into()),
            ])
            .await
        ),
        "store conformance: a batch with one failing expectation is refused"
    );
    assert_eq!(
        ok("get bob", s.dir_get("user", "bob").await),
        None,
        "store conformance: a refused batch writes none of its inserts"
    );
    assert_eq!(
        ok("get alice", s.dir_get("user", "alice").await),
        Some(v("a2", 2)),
        "store conformance: a refused batch writes none of its updates"
    );
    assert!(
        !ok(
            "guarded batch",
            s.dir_write(&[
                DirWrite::insert("user", "bob", "b1".into()),
                DirWrite::absent("user", "alice"),
            ])
            .await
        ),
        "store conformance: an absence guard on an existing record refuses the batch"
    );
    assert!(
        ok(
            "batch",
            s.dir_write(&[
                DirWrite::insert("user", "bob", "b1".into()),
                DirWrite::update("user", "alice", 2, "a3".into()),
                DirWrite::absent("user", "carol"),
                DirWrite::insert("access_key", "AKIA1", "bob".into()),
            ])
            .await
        ),
        "store conformance: a batch whose expectations all hold is applied"
    );
    assert_eq!(
        ok("get carol", s.dir_get("user", "carol").await),
        None,
        "store conformance: an absence guard writes nothing"
    );

    // Listing is per kind, ordered by key, and a kind that is a prefix of another sees only its own.
    ok(
        "insert prefix kinds",
        s.dir_write(&[
            DirWrite::insert("use", "zed", "z".into()),
            DirWrite::insert("users", "aaron", "x".into()),
            DirWrite::insert("user", "adam", "d".into()),
        ])
        .await,
    );
    let keys = |l: Vec<(String, Versioned)>| l.into_iter().map(|(k, _)| k).collect::<Vec<_>>();
    assert_eq!(
        keys(ok("list user", s.dir_list("user").await)),
        vec!["adam", "alice", "bob"],
        "store conformance: dir_list returns one kind's records ordered by key"
    );
    assert_eq!(
        ok("list access_key", s.dir_list("access_key").await),
        vec![("AKIA1".to_string(), v("bob", 1))],
        "store conformance: dir_list returns values and versions"
    );
    assert!(
        ok("list empty kind", s.dir_list("nothing").await).is_empty(),
        "store conformance: a kind without records lists nothing"
    );

    // Deletion needs the current version; a deleted record can be created again at version 1.
    assert!(
        !ok(
            "stale delete",
            s.dir_write(&[DirWrite::delete("user", "bob", 7)]).await
        ),
        "store conformance: a delete naming the wrong version is refused"
    );
    assert!(
        ok(
            "delete",
            s.dir_write(&[DirWrite::delete("user", "bob", 1)]).await
        ),
        "store conformance: a delete naming the current version succeeds"
    );
    assert_eq!(
        ok("get deleted", s.dir_get("user", "bob").await),
        None,
        "store conformance: a deleted record is gone"
    );
    assert!(
        ok(
            "recreate",
            s.dir_write(&[DirWrite::insert("user", "bob", "b2".into())])
                .await
        ),
        "store conformance: a deleted record can be created again"
    );
    assert_eq!(
        ok("get recreated", s.dir_get("user", "bob").await),
        Some(v("b2", 1)),
        "store conformance: a re-created record starts at version 1"
    );

    let long: Vec<DirWrite> = (0..=MAX_DIR_BATCH)
        .map(|i| DirWrite::insert("bulk", &i.to_string(), String::new()))
        .collect();
    let twice = [
        DirWrite::insert("user", "dup", "1".into()),
        DirWrite::absent("user", "dup"),
    ];
    invalid("empty batch", s.dir_write(&[]).await);
    invalid("too long a batch", s.dir_write(&long).await);
    invalid("the same record twice", s.dir_write(&twice).await);
    invalid(
        "empty kind",
        s.dir_write(&[DirWrite::insert("", "k", "v".into())]).await,
    );
    invalid(
        "empty key",
        s.dir_write(&[DirWrite::insert("user", "", "v".into())])
            .await,
    );
    invalid(
        "NUL in kind",
        s.dir_write(&[DirWrite::insert("us\0er", "k", "v".into())])
            .await,
    );
    invalid("get with empty key", s.dir_get("user", "").await);
    invalid("list with empty kind", s.dir_list("").await);
    assert_eq!(
        ok("get dup", s.dir_get("user", "dup").await),
        None,
        "store conformance: an invalid batch writes nothing"
    );
}

async fn directory_races(s: &dyn Store) {
    // Every racer reads, then writes back its increment naming the version it read, retrying on
    // refusal: with optimistic concurrency no increment is lost.
    ok(
        "counter",
        s.dir_write(&[DirWrite::insert("counter", "c", "0".into())])
            .await,
    );
    let increment = || async {
        loop {
            let cur = ok("read counter", s.dir_get("counter", "c").await).expect("counter exists");
            let n: u64 = cur.value.parse().expect("counter is a number");
            if ok(
                "write counter",
                s.dir_write(&[DirWrite::update(
                    "counter",
                    "c",
                    cur.version,
                    (n + 1).to_string(),
                )])
                .await,
            ) {
                return;
            }
        }
    };
    let racers: Vec<BoxedFuture<'_, ()>> = (0..RACERS)
        .map(|_| Box::pin(increment()) as BoxedFuture<'_, ()>)
        .collect();
    join_all(racers).await;
    let end = ok("read counter", s.dir_get("counter", "c").await).expect("counter exists");
    assert_eq!(
        (end.value.as_str(), end.version),
        (RACERS.to_string().as_str(), RACERS as u64 + 1),
        "store conformance: concurrent compare-and-swap increments are none of them lost"
    );
    // Racing inserts of one key: exactly one wins.
    let inserts: Vec<BoxedFuture<'_, Result<bool>>> = (0..RACERS)
        .map(|i| {
            Box::pin(async move {
                s.dir_write(&[DirWrite::insert("race", "one", i.to_string())])
                    .await
            }) as BoxedFuture<'_, Result<bool>>
        })
        .collect();
    let won = join_all(inserts)
        .await
        .into_iter()
        .filter(|r| matches!(r, Ok(true)))
        .count();
    assert_eq!(
        won, 1,
        "store conformance: of {RACERS} concurrent inserts of one record exactly one succeeds"
    );
}

async fn revocations(s: &dyn Store) {
    let role = RevocationScope::Role("arn:aws:iam::111122223333:role/Admin".into());
    let first = revocation(role.clone(), 100, "first", 1_000);
    let second = revocation(role.clone(), 200, "second", 1_200);
    let merged = Revocation {
        expires_at: 1_500,
        ..second.clone()
    };
    // Each revocation of one scope in turn, and the one record stored after it.
    let steps = [
        (
            "revoke",
            first.clone(),
            first.clone(),
            "a revocation comes back whole",
        ),
        (
            "revoke earlier",
            Revocation {
                created_at: 150,
                ..revocation(role.clone(), 50, "older", 800)
            },
            first.clone(),
            "an earlier issued_before changes nothing (and never shortens expires_at)",
        ),
        (
            "revoke earlier, longer",
            revocation(role.clone(), 50, "older", 1_500),
            Revocation {
                expires_at: 1_500,
                ..first.clone()
            },
            "issued_before never moves back, expires_at takes the later time",
        ),
        (
            "revoke later",
            second,
            merged.clone(),
            "a later issued_before replaces issued_before, created_at and reason",
        ),
        (
            "revoke tie",
            Revocation {
                created_at: 300,
                ..revocation(role.clone(), 200, "tie", 1_500)
            },
            merged.clone(),
            "an equal issued_before keeps the stored record",
        ),
    ];
    for (what, r, stored, why) in steps {
        ok(what, s.revoke(&r).await);
        assert_eq!(
            ok("revocations", s.revocations().await),
            vec![stored],
            "store conformance: {why}"
        );
    }

    let others = [
        revocation(RevocationScope::All, 10, "all", 2_000),
        revocation(RevocationScope::Role("x".into()), 11, "role x", 2_100),
        revocation(RevocationScope::Session("x".into()), 12, "session x", 2_200),
        revocation(
            RevocationScope::AccessKey("x".into()),
            13,
            "access key x",
            2_300,
        ),
        revocation(
            RevocationScope::Subject {
                provider: "a".into(),
                subject: "bc".into(),
            },
            14,
            "subject a/bc",
            2_400,
        ),
        revocation(
            RevocationScope::Subject {
                provider: "ab".into(),
                subject: "c".into(),
            },
            15,
            "subject ab/c",
            2_500,
        ),
    ];
    for r in &others {
        ok("revoke", s.revoke(r).await);
    }
    let mut want = others.to_vec();
    want.push(merged);
    assert_eq!(
        sorted(ok("revocations", s.revocations().await)),
        sorted(want),
        "store conformance: every scope (kind and value) is its own record"
    );
}

async fn revocation_purge(s: &dyn Store) {
    assert_eq!(
        ok("purge at 1499", s.purge_expired_revocations(1_499).await),
        0,
        "store conformance: purge keeps revocations that have not expired"
    );
    assert_eq!(
        ok("purge at 2100", s.purge_expired_revocations(2_100).await),
        3,
        "store conformance: purge removes revocations with expires_at <= now"
    );
    let mut left: Vec<i64> = ok("revocations", s.revocations().await)
        .iter()
        .map(|r| r.expires_at)
        .collect();
    left.sort_unstable();
    assert_eq!(
        left,
        vec![2_200, 2_300, 2_400, 2_500],
        "store conformance: purge leaves the live revocations"
    );
    assert_eq!(
        ok(
            "purge at 2100 again",
            s.purge_expired_revocations(2_100).await
        ),
        0
    );
    assert_eq!(
        ok(
            "purge everything",
            s.purge_expired_revocations(i64::MAX).await
        ),
        4
    );
    assert!(ok("revocations", s.revocations().await).is_empty());
}

async fn audit(s: &dyn Store) {
    let e0 = record(-5, "e0", "sts:AssumeRole", None, "error");
    let e1 = record(1_000, "e1", "sts:AssumeRole", Some("alice"), "allow");
    let e2 = record(1_000, "e2", "sts:GetCallerIdentity", Some("bob"), "allow");
    let e3 = record(
        2_000,
        "e3",
        "sts:AssumeRoleWithWebIdentity",
        Some("alice"),
        "deny",
    );
    let e4 = record(3_000, "e4", "sts:AssumeRole", Some("bob"), "deny");
    let e5 = record(3_000, "e5", "admin:Revoke", Some("admin"), "allow");
    let all = vec![
        e0.clone(),
        e1.clone(),
        e2.clone(),
        e3.clone(),
        e4.clone(),
        e5.clone(),
    ];

    ok("append an empty batch", s.append_audit(&[]).await);
    ok("append", s.append_audit(&[e3.clone(), e1.clone()]).await);
    let e1_again = AuditRecord {
        json: "{\"changed\":true}".into(),
        ..e1.clone()
    };
    ok(
        "append with duplicates",
        s.append_audit(&[
            e5.clone(),
            e2.clone(),
            e1_again,
            e0.clone(),
            e4.clone(),
            e5.clone(),
        ])
        .await,
    );
    invalid(
        "append with an empty id",
        s.append_audit(&[
            record(4_000, "e9", "x", None, "allow"),
            record(4_000, "", "x", None, "allow"),
        ])
        .await,
    );

    let query = |f: &dyn Fn(&mut AuditQuery)| {
        let mut q = all_oldest_first();
        f(&mut q);
        q
    };
    assert_eq!(
        ok("query all", s.query_audit(&all_oldest_first()).await),
        all,
        "store conformance: records come back whole, oldest first by (time_ms, id), duplicates ignored, \
         a refused batch stores nothing"
    );
    let cases: Vec<(&str, AuditQuery, Vec<&str>)> = vec![
        (
            "newest first",
            query(&|q| q.newest_first = true),
            vec!["e5", "e4", "e3", "e2", "e1", "e0"],
        ),
        (
            "the default query is the newest first",
            AuditQuery::default(),
            vec!["e5", "e4", "e3", "e2", "e1", "e0"],
        ),
        (
            "since is inclusive, until exclusive",
            query(&|q| {
                q.since_ms = Some(1_000);
                q.until_ms = Some(3_000);
            }),
            vec!["e1", "e2", "e3"],
        ),
        (
            "since alone",
            query(&|q| q.since_ms = Some(1_000)),
            vec!["e1", "e2", "e3", "e4", "e5"],
        ),
        (
            "until alone",
            query(&|q| q.until_ms = Some(1_000)),
            vec!["e0"],
        ),
        (
            "negative times",
            query(&|q| q.until_ms = Some(0)),
            vec!["e0"],
        ),
        (
            "a one-millisecond window",
            query(&|q| {
                q.since_ms = Some(3_000);
                q.until_ms = Some(3_001);
            }),
            vec!["e4", "e5"],
        ),
        (
            "an empty window",
            query(&|q| {
                q.since_ms = Some(2_000);
                q.until_ms = Some(2_000);
            }),
            vec![],
        ),
        (
            "a reversed window",
            query(&|q| {
                q.since_ms = Some(3_000);
                q.until_ms = Some(1_000);
            }),
            vec![],
        ),
        (
            "a window after every record",
            query(&|q| q.since_ms = Some(3_001)),
            vec![],
        ),
        (
            "action filter",
            query(&|q| q.action = Some("sts:AssumeRole".into())),
            vec!["e0", "e1", "e4"],
        ),
        (
            "action filter is exact",
            query(&|q| q.action = Some("sts:assumerole".into())),
            vec![],
        ),
        (
            "principal filter",
            query(&|q| q.principal = Some("alice".into())),
            vec!["e1", "e3"],
        ),
        (
            "principal filter newest first",
            query(&|q| {
                q.principal = Some("bob".into());
                q.newest_first = true;
            }),
            vec!["e4", "e2"],
        ),
        (
            "decision filter",
            query(&|q| q.decision = Some("deny".into())),
            vec!["e3", "e4"],
        ),
        (
            "filters combine",
            query(&|q| {
                q.action = Some("sts:AssumeRole".into());
                q.decision = Some("deny".into());
            }),
            vec!["e4"],
        ),
        (
            "filters combine with the window",
            query(&|q| {
                q.principal = Some("alice".into());
                q.since_ms = Some(1_500);
            }),
            vec!["e3"],
        ),
        (
            "a filter nothing matches",
            query(&|q| q.principal = Some("nobody".into())),
            vec![],
        ),
        (
            "limit oldest first",
            query(&|q| q.limit = 2),
            vec!["e0", "e1"],
        ),
        (
            "limit newest first",
            query(&|q| {
                q.limit = 2;
                q.newest_first = true;
            }),
            vec!["e5", "e4"],
        ),
        (
            "limit counts matches, not scanned records",
            query(&|q| {
                q.limit = 1;
                q.decision = Some("allow".into());
                q.newest_first = true;
            }),
            vec!["e5"],
        ),
        (
            "limit inside a window newest first",
            query(&|q| {
                q.limit = 2;
                q.since_ms = Some(0);
                q.until_ms = Some(3_000);
                q.newest_first = true;
            }),
            vec!["e3", "e2"],
        ),
        ("limit 0", query(&|q| q.limit = 0), vec![]),
    ];
    for (what, q, want) in cases {
        let got = ok(what, s.query_audit(&q).await);
        assert_eq!(
            ids(&got),
            want,
            "store conformance: audit query: {what} ({q:?})"
        );
    }
}
