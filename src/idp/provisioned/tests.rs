//! The provisioned directory over the memory store: ids, versions, uniqueness of `userName`
//! (case-insensitive, also across replicas), `If-Match`, deprovisioning, membership, and a second
//! replica that sees the first one's changes after a refresh.

use super::*;
use crate::clock::FixedClock;
use crate::config::{GroupSource, MatchAttribute, Secret};
use crate::store::{DirectoryStore, MemoryStore};
use serde_json::json;

const T0: i64 = 1_700_000_000;

fn client(provider: &str, m: MatchAttribute) -> ScimClient {
    ScimClient {
        name: format!("{provider}-directory"),
        token: Secret::new("t".repeat(40)),
        provider: provider.into(),
        match_attribute: m,
        groups: GroupSource::Both,
        require_provisioned: false,
        rate: None,
    }
}

fn replica(store: &Arc<MemoryStore>, m: MatchAttribute) -> Provisioned {
    replica_on(store.clone(), m)
}

fn replica_on(store: Arc<dyn Store>, m: MatchAttribute) -> Provisioned {
    let clock = FixedClock::new(chrono::DateTime::from_timestamp(T0, 0).unwrap());
    Provisioned::new(
        store,
        Arc::new(clock),
        "http://127.0.0.1:8080/scim/v2",
        &[client("corp", m), client("partner", m)],
    )
}

fn user(name: &str) -> Value {
    json!({"schemas": [crate::scim::USER_SCHEMA], "userName": name, "active": true})
}

/// Every record of the provisioned kinds of provider `corp`, for "nothing changed" checks.
async fn records(store: &MemoryStore) -> Vec<(String, String, u64)> {
    let mut out = Vec::new();
    for k in [
        "scim_user/corp",
        "scim_group/corp",
        "scim_user_name/corp",
        "scim_subject/corp",
        "scim_gone/corp",
    ] {
        for (key, v) in store.dir_list(k).await.unwrap() {
            out.push((k.to_string(), key, v.version));
        }
    }
    out
}

#[tokio::test]
async fn a_user_gets_an_id_meta_and_version_and_usernames_are_unique_case_insensitively() {
    let store = Arc::new(MemoryStore::new());
    let d = replica(&store, MatchAttribute::UserName);
    d.load().await.unwrap();
    let (s, change) = d
        .create("corp", Resource::User, user("Ana@Example.com"))
        .await
        .unwrap();
    assert_eq!(change, Change::default());
    assert_eq!(s.version, 1);
    assert_eq!(s.resource["id"], s.id.as_str());
    assert_eq!(s.resource["meta"]["version"], "W/\"1\"");
    assert_eq!(s.resource["meta"]["resourceType"], "User");
    assert_eq!(
        s.resource["meta"]["location"],
        format!("http://127.0.0.1:8080/scim/v2/Users/{}", s.id)
    );
    let before = records(&store).await;
    let e = d
        .create("corp", Resource::User, user("ana@example.COM"))
        .await
        .unwrap_err();
    assert!(matches!(e, ProvisionError::Uniqueness(_)), "{e:?}");
    assert_eq!(
        records(&store).await,
        before,
        "a refused create changes nothing"
    );
    // Another provider has its own people: the same name is someone else there.
    d.create("partner", Resource::User, user("ana@example.com"))
        .await
        .unwrap();
    // A rename frees the old name.
    let rename = |_: &Value| -> Result<Value, ProvisionError> { Ok(user("ana.new@example.com")) };
    d.update("corp", Resource::User, &s.id, None, &rename)
        .await
        .unwrap();
    d.create("corp", Resource::User, user("ANA@example.com"))
        .await
        .unwrap();
}

#[tokio::test]
async fn if_match_of_another_version_changes_nothing() {
    let store = Arc::new(MemoryStore::new());
    let d = replica(&store, MatchAttribute::UserName);
    d.load().await.unwrap();
    let (s, _) = d.create("corp", Resource::User, user("bo")).await.unwrap();
    let before = records(&store).await;
    let off = |_: &Value| -> Result<Value, ProvisionError> {
        Ok(json!({"userName": "bo", "active": false}))
    };
    let e = d
        .update("corp", Resource::User, &s.id, Some("W/\"7\""), &off)
        .await
        .unwrap_err();
    assert!(matches!(e, ProvisionError::Precondition(_)), "{e:?}");
    let e = d
        .delete("corp", Resource::User, &s.id, Some("W/\"2\""))
        .await
        .unwrap_err();
    assert!(matches!(e, ProvisionError::Precondition(_)), "{e:?}");
    assert_eq!(records(&store).await, before);
    assert_eq!(d.status("corp", "bo"), Status::Active(vec![]));
    // The current version passes.
    let (s2, change) = d
        .update("corp", Resource::User, &s.id, Some("W/\"1\""), &off)
        .await
        .unwrap();
    assert_eq!(s2.version, 2);
    assert_eq!(change.deprovisioned, vec!["bo".to_string()]);
}

#[tokio::test]
async fn deactivation_and_deletion_deprovision_and_a_new_provisioning_admits_again() {
    let store = Arc::new(MemoryStore::new());
    let d = replica(&store, MatchAttribute::ExternalId);
    d.load().await.unwrap();
    let mut doc = user("cy@example.com");
    doc["externalId"] = json!("00u-cy");
    let (s, _) = d.create("corp", Resource::User, doc.clone()).await.unwrap();
    assert_eq!(d.status("corp", "00u-cy"), Status::Active(vec![]));
    assert_eq!(
        d.status("corp", "cy@example.com"),
        Status::Unknown,
        "the subject is externalId"
    );
    let (g, _) = d
        .create(
            "corp",
            Resource::Group,
            json!({"displayName": "Engineering", "members": [{"value": s.id}]}),
        )
        .await
        .unwrap();
    assert_eq!(
        d.status("corp", "00u-cy"),
        Status::Active(vec!["Engineering".into()])
    );
    let u = d.get("corp", Resource::User, &s.id).unwrap();
    assert_eq!(u.resource["groups"][0]["value"], g.id.as_str());
    assert_eq!(u.resource["groups"][0]["display"], "Engineering");
    // Same externalId on another user: refused, it names one person.
    let mut twin = user("cy2@example.com");
    twin["externalId"] = json!("00u-cy");
    let e = d.create("corp", Resource::User, twin).await.unwrap_err();
    assert!(matches!(e, ProvisionError::Uniqueness(_)), "{e:?}");

    let mut off = doc.clone();
    off["active"] = json!(false);
    let set_off = move |_: &Value| -> Result<Value, ProvisionError> { Ok(off.clone()) };
    let (_, change) = d
        .update("corp", Resource::User, &s.id, None, &set_off)
        .await
        .unwrap();
    assert_eq!(change.deprovisioned, vec!["00u-cy".to_string()]);
    assert_eq!(d.status("corp", "00u-cy"), Status::Inactive);
    // Still inactive: nothing more to deprovision.
    let (_, change) = d
        .update("corp", Resource::User, &s.id, None, &set_off)
        .await
        .unwrap();
    assert!(change.deprovisioned.is_empty());

    let change = d.delete("corp", Resource::User, &s.id, None).await.unwrap();
    assert_eq!(change.deprovisioned, vec!["00u-cy".to_string()]);
    assert_eq!(d.status("corp", "00u-cy"), Status::Deleted);
    // The group no longer shows the member.
    let g = d.get("corp", Resource::Group, &g.id).unwrap();
    assert_eq!(g.resource["members"], json!([]));
    // A member that is no user of the provider is refused.
    let e = d
        .create(
            "corp",
            Resource::Group,
            json!({"displayName": "Ghosts", "members": [{"value": s.id}]}),
        )
        .await
        .unwrap_err();
    assert!(matches!(e, ProvisionError::Invalid(_)), "{e:?}");

    // Provisioned again: active again.
    d.create("corp", Resource::User, doc).await.unwrap();
    assert_eq!(d.status("corp", "00u-cy"), Status::Active(vec![]));
}

#[tokio::test]
async fn a_second_replica_sees_changes_after_a_refresh_and_uniqueness_holds_across_replicas() {
    two_replicas(Arc::new(MemoryStore::new())).await;
}

#[tokio::test]
async fn two_replicas_over_sled_agree_as_over_memory() {
    let dir = tempfile::tempdir().unwrap();
    let store = crate::store::SledStore::open(dir.path()).unwrap();
    two_replicas(Arc::new(store)).await;
}

/// Two replicas over one store: B, not refreshed, cannot take a name A gave; each sees the other's
/// changes after a refresh; writes on top of the other's line up.
async fn two_replicas(store: Arc<dyn Store>) {
    let a = replica_on(store.clone(), MatchAttribute::UserName);
    let b = replica_on(store, MatchAttribute::UserName);
    a.load().await.unwrap();
    b.load().await.unwrap();
    let (s, _) = a.create("corp", Resource::User, user("dee")).await.unwrap();
    assert_eq!(
        b.status("corp", "dee"),
        Status::Unknown,
        "not yet refreshed"
    );
    // B, not refreshed, cannot create the same name: the batch expects the counter it read.
    let e = b
        .create("corp", Resource::User, user("DEE"))
        .await
        .unwrap_err();
    assert!(matches!(e, ProvisionError::Uniqueness(_)), "{e:?}");
    assert_eq!(
        b.status("corp", "dee"),
        Status::Active(vec![]),
        "B re-read the directory"
    );
    // A deactivates; B refreshes and sees it.
    let off = |_: &Value| -> Result<Value, ProvisionError> {
        Ok(json!({"userName": "dee", "active": false}))
    };
    a.update("corp", Resource::User, &s.id, None, &off)
        .await
        .unwrap();
    assert_eq!(b.status("corp", "dee"), Status::Active(vec![]));
    b.refresh().await.unwrap();
    assert_eq!(b.status("corp", "dee"), Status::Inactive);
    // B writes on top of A's change (its index is current, versions line up).
    let on = |_: &Value| -> Result<Value, ProvisionError> {
        Ok(json!({"userName": "dee", "active": true}))
    };
    let (s3, _) = b
        .update("corp", Resource::User, &s.id, Some("W/\"2\""), &on)
        .await
        .unwrap();
    assert_eq!(s3.version, 3);
    a.refresh().await.unwrap();
    assert_eq!(a.status("corp", "dee"), Status::Active(vec![]));
}

#[tokio::test]
async fn lists_filter_page_and_answer_username_equality_from_the_index() {
    let store = Arc::new(MemoryStore::new());
    let d = replica(&store, MatchAttribute::UserName);
    d.load().await.unwrap();
    for i in 0..25 {
        d.create("corp", Resource::User, user(&format!("user{i:02}")))
            .await
            .unwrap();
    }
    let all = |_: &Value| true;
    let (total, page) = d.list("corp", Resource::User, None, &all, 11, 10).unwrap();
    assert_eq!((total, page.len()), (25, 10));
    let (total, page) = d.list("corp", Resource::User, None, &all, 21, 10).unwrap();
    assert_eq!((total, page.len()), (25, 5));
    let (total, page) = d
        .list(
            "corp",
            Resource::User,
            Some(("username", "USER07")),
            &all,
            1,
            10,
        )
        .unwrap();
    assert_eq!(total, 1);
    assert_eq!(page[0].resource["userName"], "user07");
    let (total, _) = d
        .list("partner", Resource::User, None, &all, 1, 10)
        .unwrap();
    assert_eq!(total, 0, "another provider's people are not listed");
}
