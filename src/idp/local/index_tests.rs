//! The index of the users behind the user list and a group's members: this directory's writes are
//! seen at once without reading every user again, another replica's as soon as the store has them.

use super::*;
use crate::clock::FixedClock;
use crate::metrics::{MeteredStore, Metrics, StoreOp};
use crate::store::MemoryStore;
use chrono::{TimeZone, Utc};

/// Two directories (two replicas) over one memory store whose operations are counted, on one test
/// clock.
fn replicas() -> (Directory, Directory, FixedClock, Arc<Metrics>) {
    let clock = FixedClock::new(Utc.timestamp_opt(1_700_000_015, 0).unwrap());
    let metrics = Arc::new(Metrics::new().unwrap());
    let store: Arc<dyn Store> = Arc::new(MeteredStore::new(
        Arc::new(MemoryStore::new()),
        metrics.clone(),
    ));
    let directory = || {
        Directory::new(
            store.clone(),
            DirectorySettings {
                account: "111122223333".into(),
                min_password_length: 12,
                role_prefix: "RolegateSSO_".into(),
            },
            Arc::new(clock.clone()),
            "rolegate",
        )
    };
    (directory(), directory(), clock, metrics)
}

async fn names(d: &Directory) -> Vec<String> {
    d.users()
        .await
        .unwrap()
        .into_iter()
        .map(|u| u.name)
        .collect()
}

async fn members(d: &Directory, group: &str) -> Vec<String> {
    d.group_members(group)
        .await
        .unwrap()
        .into_iter()
        .map(|u| u.name)
        .collect()
}

#[tokio::test]
async fn this_directorys_writes_are_listed_at_once_without_reading_every_user_again() {
    let (d, _, _, metrics) = replicas();
    d.create_group("dev", None).await.unwrap();
    d.create_group("ops", None).await.unwrap();
    d.create_user("bob", None).await.unwrap();
    d.create_user("alice", None).await.unwrap();
    assert_eq!(names(&d).await, ["alice", "bob"]);
    let lists = metrics.store_op_count(StoreOp::DirList);

    d.add_user_to_group("alice", "dev").await.unwrap();
    assert_eq!(members(&d, "DEV").await, ["alice"]);
    assert!(members(&d, "ops").await.is_empty());
    d.create_user("carol", None).await.unwrap();
    d.add_user_to_group("carol", "Dev").await.unwrap();
    assert_eq!(names(&d).await, ["alice", "bob", "carol"]);
    assert_eq!(members(&d, "dev").await, ["alice", "carol"]);
    d.remove_user_from_group("alice", "dev").await.unwrap();
    assert_eq!(members(&d, "dev").await, ["carol"]);

    // No operation renames a user: the new name is a new user, the old one is gone with its
    // memberships.
    d.delete_user("carol").await.unwrap();
    assert_eq!(names(&d).await, ["alice", "bob"]);
    assert!(members(&d, "dev").await.is_empty());
    d.create_user("Carla", None).await.unwrap();
    d.add_user_to_group("Carla", "dev").await.unwrap();
    assert_eq!(names(&d).await, ["alice", "bob", "Carla"]);
    assert_eq!(members(&d, "dev").await, ["Carla"]);
    assert!(matches!(
        d.delete_group("dev").await,
        Err(DirectoryError::Conflict(_))
    ));
    d.remove_user_from_group("Carla", "dev").await.unwrap();
    d.delete_group("dev").await.unwrap();

    // What the store holds, in its order.
    let stored: Vec<User> = d
        .store
        .dir_list(USER)
        .await
        .unwrap()
        .iter()
        .map(|(k, v)| decode(USER, k, v).unwrap())
        .collect();
    assert_eq!(d.users().await.unwrap(), stored);
    assert_eq!(
        metrics.store_op_count(StoreOp::DirList),
        lists + 1,
        "answered from the index (the one listing read here is the check just above)"
    );
}

#[tokio::test]
async fn another_replicas_writes_are_listed_as_soon_as_the_store_has_them() {
    let (a, b, clock, metrics) = replicas();
    a.create_group("dev", None).await.unwrap();
    a.create_user("alice", None).await.unwrap();
    a.add_user_to_group("alice", "dev").await.unwrap();
    assert_eq!(names(&a).await, ["alice"]);
    assert_eq!(members(&a, "dev").await, ["alice"]);

    // Created, added to a group, deleted on the other replica: never served stale here, at once
    // or later.
    b.create_user("bob", None).await.unwrap();
    b.add_user_to_group("bob", "dev").await.unwrap();
    b.delete_user("alice").await.unwrap();
    for later in [0, 1, CACHE_BOUND.as_secs() as i64] {
        clock.advance(chrono::Duration::seconds(later));
        assert_eq!(names(&a).await, ["bob"], "{later} s after");
        assert_eq!(members(&a, "dev").await, ["bob"], "{later} s after");
    }
    // Once read again, not again while nothing changes.
    let lists = metrics.store_op_count(StoreOp::DirList);
    assert_eq!(names(&a).await, ["bob"]);
    assert_eq!(metrics.store_op_count(StoreOp::DirList), lists);

    // The periodic refresh reads another replica's change ahead of the listings.
    b.create_user("carol", None).await.unwrap();
    b.add_user_to_group("carol", "dev").await.unwrap();
    a.refresh().await.unwrap();
    let lists = metrics.store_op_count(StoreOp::DirList);
    assert_eq!(names(&a).await, ["bob", "carol"]);
    assert_eq!(members(&a, "dev").await, ["bob", "carol"]);
    assert_eq!(metrics.store_op_count(StoreOp::DirList), lists);

    // A write here after the other replica's moved the counter is not refused for it.
    a.add_user_to_group("bob", "dev").await.unwrap();
    b.create_user("dan", None).await.unwrap();
    a.create_user("erin", None).await.unwrap();
    assert_eq!(names(&a).await, ["bob", "carol", "dan", "erin"]);
    assert_eq!(names(&b).await, ["bob", "carol", "dan", "erin"]);
}
