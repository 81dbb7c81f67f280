//! `AssumeRole` and `GetSessionToken` signed with a directory user's long-term access key, through
//! the router: with the directory cache warm they read and write nothing in the store; a user
//! deleted or disabled, a key deleted or deactivated, a group policy removed on this replica is
//! refused on the very next call, on another replica over the same store within
//! [`CACHE_BOUND`]; the key's last use is written by the batch and shown by the admin API.

use crate::app::App;
use crate::clock::FixedClock;
use crate::idp::local::{Directory, Holder, KeyStatus, CACHE_BOUND};
use crate::metrics::StoreOp;
use crate::store::{DirectoryStore, MemoryStore, Store};
use crate::web::testing::{access_key, sts_post, Creds, T0};
use axum::body::Body;
use axum::http::{Request, StatusCode};
use serde_json::Value;
use std::sync::Arc;

const ADMIN_TOKEN: &str = "an-admin-token-of-forty-characters-0001";
const TRUST: &str = r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"AWS":"arn:aws:iam::111122223333:root"},"Action":"sts:AssumeRole"}]}"#;
const ASSUME: &str = r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"sts:AssumeRole","Resource":"*"}]}"#;
const ASSUME_ROLE: &str =
    "Action=AssumeRole&Version=2011-06-15&RoleArn=arn:aws:iam::111122223333:role/Target&RoleSessionName=bob-session";
const SESSION_TOKEN: &str = "Action=GetSessionToken&Version=2011-06-15";

fn config() -> crate::testing::TestConfig {
    crate::testing::config()
        .role("Target", TRUST)
        .with("[admin]\ntoken_env = \"ADMIN_TOKEN\"\n")
        .env("ADMIN_TOKEN", ADMIN_TOKEN)
}

/// Replicas: apps over one memory store and one clock standing at [`T0`].
async fn replicas(n: usize) -> (Vec<Arc<App>>, FixedClock, Arc<MemoryStore>) {
    let clock = FixedClock::new(chrono::DateTime::from_timestamp(T0, 0).unwrap());
    let store = Arc::new(MemoryStore::new());
    let mut apps = Vec::new();
    for _ in 0..n {
        let shared: Arc<dyn Store> = store.clone();
        apps.push(
            App::build(config().load(), shared, Arc::new(clock.clone()))
                .await
                .unwrap(),
        );
    }
    (apps, clock, store)
}

fn directory(app: &App) -> &Directory {
    app.directory.as_deref().unwrap()
}

/// User `bob` in group `ops`, whose policy allows `sts:AssumeRole`, and bob's key.
async fn bob(app: &App) -> Creds {
    crate::testing::directory_user(app, "bob", &["ops"]).await;
    directory(app)
        .put_policy(Holder::Group("ops"), "assume", ASSUME)
        .await
        .unwrap();
    access_key(app, "bob").await
}

/// A signed STS call: the status and the error code (empty on success).
async fn call(app: &Arc<App>, creds: &Creds, form: &str) -> (StatusCode, String) {
    let resp = crate::testing::send(app, sts_post(creds, form).request()).await;
    let status = resp.status();
    let body = crate::testing::text(resp).await;
    let code = crate::web::testing::text_of(&body, "Code")
        .unwrap_or("")
        .to_string();
    (status, code)
}

async fn assert_ok(app: &Arc<App>, creds: &Creds, form: &str, what: &str) {
    let (status, code) = call(app, creds, form).await;
    assert_eq!(status, StatusCode::OK, "{what}: {code}");
}

async fn assert_refused(app: &Arc<App>, creds: &Creds, form: &str, what: &str) {
    let (status, code) = call(app, creds, form).await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{what}: {code}");
    assert!(
        code == "InvalidClientTokenId" || code == "AccessDenied",
        "{what}: {code}"
    );
}

/// What happens to bob or his key between two calls.
#[derive(Debug, Clone, Copy)]
enum Change {
    DeleteUser,
    DisableUser,
    DeleteKey,
    DeactivateKey,
    /// The group's policy allowing `sts:AssumeRole` removed (`AssumeRole` only is refused).
    RemoveGroupPolicy,
}

const CHANGES: [Change; 5] = [
    Change::DeleteUser,
    Change::DisableUser,
    Change::DeleteKey,
    Change::DeactivateKey,
    Change::RemoveGroupPolicy,
];

async fn change(d: &Directory, creds: &Creds, c: Change) {
    match c {
        Change::DeleteUser => drop(d.delete_user("bob").await.unwrap()),
        Change::DisableUser => drop(d.set_user_disabled("bob", true).await.unwrap()),
        Change::DeleteKey => d.delete_access_key("bob", &creds.key).await.unwrap(),
        Change::DeactivateKey => d
            .set_access_key_status("bob", &creds.key, KeyStatus::Inactive)
            .await
            .unwrap(),
        Change::RemoveGroupPolicy => d
            .delete_policy(Holder::Group("ops"), "assume")
            .await
            .unwrap(),
    }
}

fn forms(c: Change) -> &'static [&'static str] {
    match c {
        Change::RemoveGroupPolicy => &[ASSUME_ROLE],
        _ => &[ASSUME_ROLE, SESSION_TOKEN],
    }
}

#[tokio::test]
async fn a_change_on_this_replica_is_refused_on_the_very_next_call() {
    for c in CHANGES {
        let (apps, _clock, _store) = replicas(1).await;
        let app = &apps[0];
        let creds = bob(app).await;
        for form in forms(c) {
            // Twice: the second call is served by the warm cache.
            assert_ok(app, &creds, form, &format!("before {c:?}")).await;
            assert_ok(app, &creds, form, &format!("before {c:?}, cached")).await;
        }
        change(directory(app), &creds, c).await;
        for form in forms(c) {
            assert_refused(app, &creds, form, &format!("{form} right after {c:?}")).await;
        }
    }
}

#[tokio::test]
async fn a_change_on_another_replica_is_refused_within_the_bound() {
    for c in CHANGES {
        let (apps, clock, _store) = replicas(2).await;
        let (a, b) = (&apps[0], &apps[1]);
        let creds = bob(a).await;
        // A key created on A works on B at once: nothing absent is cached.
        for form in forms(c) {
            assert_ok(b, &creds, form, &format!("B before {c:?}")).await;
        }
        clock.advance(chrono::Duration::milliseconds(1));
        change(directory(a), &creds, c).await;
        for form in forms(c) {
            assert_refused(a, &creds, form, &format!("A right after {c:?}")).await;
        }
        clock.advance(chrono::Duration::from_std(CACHE_BOUND).unwrap());
        for form in forms(c) {
            assert_refused(b, &creds, form, &format!("B {CACHE_BOUND:?} after {c:?}")).await;
        }
    }
}

#[tokio::test]
async fn a_key_created_on_another_replica_works_at_once_where_its_user_is_cached() {
    // B caches bob's record; A creates a key for him: B's cached record does not have it, so B
    // reads again rather than refusing from the cache.
    let (apps, _clock, _store) = replicas(2).await;
    let (a, b) = (&apps[0], &apps[1]);
    let creds = bob(a).await;
    let d = directory(a);
    let second = d.create_access_key("bob").await.unwrap();
    let second = Creds {
        key: second.id,
        secret: second.secret.expose().to_string(),
        token: None,
    };
    // B caches bob's record through the first key.
    assert_ok(b, &creds, SESSION_TOKEN, "first key on B").await;
    d.delete_access_key("bob", &creds.key).await.unwrap();
    // The second key existed when B cached bob; it works on B.
    assert_ok(b, &second, SESSION_TOKEN, "second key on B").await;
    let third = d.create_access_key("bob").await.unwrap();
    let third = Creds {
        key: third.id,
        secret: third.secret.expose().to_string(),
        token: None,
    };
    // The third key is newer than B's cached record of bob: read again, it works.
    assert_ok(b, &third, SESSION_TOKEN, "a key created on A, on B at once").await;
}

/// The store operations of `ops` counted so far.
fn ops(app: &App, ops: &[StoreOp]) -> Vec<u64> {
    ops.iter()
        .map(|op| app.metrics.store_op_count(*op))
        .collect()
}

#[tokio::test]
async fn a_warm_call_reads_and_writes_nothing_in_the_store() {
    let (apps, _clock, _store) = replicas(1).await;
    let app = &apps[0];
    let creds = bob(app).await;
    for form in [ASSUME_ROLE, SESSION_TOKEN] {
        assert_ok(app, &creds, form, "warming the cache").await;
    }
    let watched = [
        StoreOp::DirGet,
        StoreOp::DirList,
        StoreOp::DirWrite,
        StoreOp::FirstUse,
        StoreOp::Revoke,
    ];
    let before = ops(app, &watched);
    for _ in 0..20 {
        for form in [ASSUME_ROLE, SESSION_TOKEN] {
            assert_ok(app, &creds, form, "warm").await;
        }
    }
    assert_eq!(
        ops(app, &watched),
        before,
        "directory reads and writes, replay records, revocations of {watched:?} over 40 warm calls"
    );
}

/// `GET /admin/users/bob`: the last use of bob's first key.
async fn last_used(app: &Arc<App>, key: &str) -> Value {
    let req = Request::get("/admin/users/bob")
        .header("authorization", format!("Bearer {ADMIN_TOKEN}"))
        .body(Body::empty())
        .unwrap();
    let resp = crate::testing::send(app, req).await;
    assert_eq!(resp.status(), StatusCode::OK);
    let user: Value = serde_json::from_str(&crate::testing::text(resp).await).unwrap();
    user["access_keys"]
        .as_array()
        .unwrap()
        .iter()
        .find(|k| k["access_key_id"] == key)
        .unwrap()["last_used"]
        .clone()
}

#[tokio::test]
async fn the_last_use_is_written_by_the_batch_and_shown_by_the_admin_api() {
    let (apps, clock, store) = replicas(2).await;
    let (a, b) = (&apps[0], &apps[1]);
    let creds = bob(a).await;
    assert_eq!(last_used(a, &creds.key).await, Value::Null, "never used");
    clock.advance(chrono::Duration::seconds(7));
    assert_ok(a, &creds, ASSUME_ROLE, "a call").await;
    // Shown at once where it was used; not in the store yet, so not on the other replica.
    let shown = last_used(a, &creds.key).await;
    assert_eq!(shown["time"], T0 + 7, "{shown}");
    assert_eq!(shown["service"], "sts");
    assert_eq!(shown["region"], "us-east-1");
    assert!(store
        .dir_get("key_used", &creds.key)
        .await
        .unwrap()
        .is_none());
    assert_eq!(last_used(b, &creds.key).await, Value::Null);
    // The maintenance writes it; every replica shows it.
    crate::maintenance::flush_key_use(a).await;
    assert!(store
        .dir_get("key_used", &creds.key)
        .await
        .unwrap()
        .is_some());
    assert_eq!(last_used(b, &creds.key).await["time"], T0 + 7);
    assert_eq!(last_used(a, &creds.key).await["time"], T0 + 7);
    // An older use noted by B does not overwrite the newer one A wrote; a later one does.
    directory(b).touch_access_key(&creds.key, "sts", "us-east-1");
    clock.set(chrono::DateTime::from_timestamp(T0 + 3, 0).unwrap());
    directory(a).touch_access_key(&creds.key, "iam", "us-east-1");
    clock.set(chrono::DateTime::from_timestamp(T0 + 9, 0).unwrap());
    directory(b).touch_access_key(&creds.key, "sts", "eu-west-1");
    assert_eq!(directory(a).flush_key_use().await.unwrap(), 0, "older");
    assert_eq!(directory(b).flush_key_use().await.unwrap(), 1, "newer");
    let shown = last_used(a, &creds.key).await;
    assert_eq!(shown["time"], T0 + 9);
    assert_eq!(shown["region"], "eu-west-1");
    // A deleted key gets no record back from a use flushed after the deletion.
    directory(b).touch_access_key(&creds.key, "sts", "us-east-1");
    directory(a)
        .delete_access_key("bob", &creds.key)
        .await
        .unwrap();
    assert_eq!(directory(b).flush_key_use().await.unwrap(), 0);
    assert!(store
        .dir_get("key_used", &creds.key)
        .await
        .unwrap()
        .is_none());
}
