use super::*;
use crate::store::memory::MemoryStore;
use crate::store::{Revocation, RevocationScope, Store};
use std::sync::Arc;

fn claims() -> SessionClaims {
    SessionClaims {
        access_key_id: new_temporary_access_key_id().unwrap(),
        secret_access_key: new_secret_access_key().unwrap(),
        session_id: new_session_id().unwrap(),
        principal: SessionPrincipal::AssumedRole {
            account: "111122223333".into(),
            role_name: "deploy".into(),
            role_path: "/ci/".into(),
            role_id: "AROAEXAMPLEEXAMPLE1".into(),
            session_name: "run-42".into(),
        },
        source_identity: Some("alice".into()),
        tags: vec![Tag {
            key: "team".into(),
            value: "platform".into(),
        }],
        transitive_tag_keys: vec!["team".into()],
        session_policy: None,
        policy_arns: vec![],
        federation: Some(Federation {
            provider_arn: "arn:aws:iam::111122223333:oidc-provider/idp.example".into(),
            key_prefix: "idp.example".into(),
            subject: "alice".into(),
            claims: None,
        }),
        mfa_time: None,
        issued_at: 1_000,
        expires_at: 4_600,
        chained: false,
        origin_user: None,
        parents: Vec::new(),
    }
}

#[test]
fn key_ids_and_secrets_have_aws_shapes() {
    let id = new_temporary_access_key_id().unwrap();
    assert!(is_temporary_access_key_id(&id), "{id}");
    assert!(!is_temporary_access_key_id("AKIAAAAAAAAAAAAAAAAA"));
    let s = new_secret_access_key().unwrap();
    assert_eq!(s.len(), 40);
    assert_ne!(s, new_secret_access_key().unwrap());
    assert_eq!(new_session_id().unwrap().len(), 32);
}

#[test]
fn principal_arns_follow_aws() {
    let c = claims();
    assert_eq!(
        c.principal.arn(),
        "arn:aws:sts::111122223333:assumed-role/deploy/run-42"
    );
    assert_eq!(
        c.principal.role_arn().as_deref(),
        Some("arn:aws:iam::111122223333:role/ci/deploy")
    );
    assert_eq!(c.principal.user_id(), "AROAEXAMPLEEXAMPLE1:run-42");
    let user = SessionPrincipal::User {
        account: "111122223333".into(),
        name: "alice".into(),
        path: "/eng/".into(),
        user_id: "AIDAEXAMPLEEXAMPLE12".into(),
    };
    assert_eq!(user.arn(), "arn:aws:iam::111122223333:user/eng/alice");
    assert_eq!(user.user_id(), "AIDAEXAMPLEEXAMPLE12");
    assert_eq!(user.role_arn(), None);
    assert_eq!(user.principal_arn(), user.arn());
    assert_eq!(user.principal_type(), "User");
    let fed = SessionPrincipal::FederatedUser {
        account: "111122223333".into(),
        name: "bob".into(),
    };
    assert_eq!(fed.arn(), "arn:aws:sts::111122223333:federated-user/bob");
    assert_eq!(fed.user_id(), "111122223333:bob");
    assert_eq!(fed.principal_type(), "FederatedUser");
    assert!(!format!("{c:?}").contains(&c.secret_access_key));
}

#[tokio::test]
async fn sealed_sessions_round_trip_and_any_change_is_refused() {
    let store = MemoryStore::new();
    let ring = KeyRing::load(&store, 0).await.unwrap();
    let c = claims();
    let token = ring.seal_session(&c).unwrap();
    assert_eq!(ring.unseal_session(&token).unwrap(), c);
    // Two seals of the same session differ (fresh nonce).
    assert_ne!(token, ring.seal_session(&c).unwrap());
    let raw =
        base64::Engine::decode(&base64::engine::general_purpose::URL_SAFE_NO_PAD, &token).unwrap();
    for i in 0..raw.len() {
        let mut m = raw.clone();
        m[i] ^= 0x01;
        let t = base64::Engine::encode(&base64::engine::general_purpose::URL_SAFE_NO_PAD, &m);
        assert!(
            ring.unseal_session(&t).is_err(),
            "byte {i} changed but accepted"
        );
    }
    assert!(ring.unseal_session("").is_err());
    assert!(ring.unseal_session("not base64!").is_err());
    // A value sealed for another purpose does not open as a session.
    let other = ring
        .seal_bytes(b"other purpose", &serde_json::to_vec(&c).unwrap())
        .unwrap();
    assert!(ring.unseal_session(&other).is_err());
}

#[tokio::test]
async fn rotation_seals_with_the_new_key_and_old_tokens_still_open() {
    let store = MemoryStore::new();
    let ring = KeyRing::load(&store, 0).await.unwrap();
    let first = ring.current_key_id().unwrap();
    let old = ring.seal_session(&claims()).unwrap();
    let new_id = KeyRing::rotate(&store, 100).await.unwrap();
    ring.refresh(&store).await.unwrap();
    assert_eq!(ring.current_key_id().unwrap(), new_id);
    assert_ne!(first, new_id);
    assert!(ring.unseal_session(&old).is_ok());
    // The retired key goes only after the retention period.
    assert_eq!(
        KeyRing::delete_expired(&store, 100 + KEY_RETENTION_SECONDS)
            .await
            .unwrap(),
        0
    );
    assert_eq!(
        KeyRing::delete_expired(&store, 101 + KEY_RETENTION_SECONDS)
            .await
            .unwrap(),
        1
    );
    ring.refresh(&store).await.unwrap();
    assert!(ring.unseal_session(&old).is_err());
    // A second ring over the same store (another replica) agrees on the sealing key.
    let replica = KeyRing::load(&store, 200).await.unwrap();
    assert_eq!(replica.current_key_id(), ring.current_key_id());
}

#[tokio::test]
async fn a_token_from_another_installation_is_refused() {
    let a = KeyRing::load(&MemoryStore::new(), 0).await.unwrap();
    let b = KeyRing::load(&MemoryStore::new(), 0).await.unwrap();
    let t = a.seal_session(&claims()).unwrap();
    assert!(b.unseal_session(&t).is_err());
}

#[tokio::test]
async fn revocations_match_their_scope_and_only_older_sessions() {
    let store = MemoryStore::new();
    let list = RevocationList::default();
    let c = claims();
    assert!(list.check(&c).is_none());
    let rev = |scope, before| Revocation {
        scope,
        issued_before: before,
        created_at: before,
        reason: "test".into(),
        expires_at: before + 10_000,
    };
    // One list revoking in turn: whether the session is ended after each.
    let own_role = || RevocationScope::Role(c.principal.role_arn().unwrap());
    for (scope, before, ended, why) in [
        (
            RevocationScope::Role("arn:aws:iam::111122223333:role/other".into()),
            2_000,
            false,
            "another role",
        ),
        (
            own_role(),
            1_000,
            false,
            "issued at the revocation time is not before it",
        ),
        (own_role(), 1_001, true, "issued before the revocation"),
    ] {
        list.revoke(&store, rev(scope, before)).await.unwrap();
        assert_eq!(list.check(&c).is_some(), ended, "{why}");
    }

    let list = RevocationList::default();
    let store = MemoryStore::new();
    list.revoke(
        &store,
        rev(
            RevocationScope::Subject {
                provider: "https://idp.example".into(),
                subject: "alice".into(),
            },
            2_000,
        ),
    )
    .await
    .unwrap();
    assert!(list.check(&c).is_some(), "subject by issuer URL");
    let mut bob = c.clone();
    bob.federation.as_mut().unwrap().subject = "bob".into();
    assert!(list.check(&bob).is_none());

    let list = RevocationList::default();
    let store = MemoryStore::new();
    list.revoke(
        &store,
        rev(RevocationScope::Session(c.session_id.clone()), 2_000),
    )
    .await
    .unwrap();
    assert!(list.check(&c).is_some());
    assert!(list.check(&claims()).is_none(), "another session");
    // Another replica sees it after a refresh.
    let replica = RevocationList::default();
    replica.refresh(&store).await.unwrap();
    assert!(replica.check(&c).is_some());
    let _ = store.kind();
}

#[test]
fn random_bytes_from_the_pool_never_repeat_across_refills() {
    let mut seen = std::collections::HashSet::new();
    // 16-byte draws over several refills of the per-thread buffer, some of odd sizes in between.
    for i in 0..300 {
        let mut b = [0u8; 16];
        fill_random(&mut b).unwrap();
        assert!(seen.insert(b), "draw {i} repeated");
        let mut odd = vec![0u8; 1 + i % 37];
        fill_random(&mut odd).unwrap();
    }
    let mut big = vec![0u8; 5000];
    fill_random(&mut big).unwrap();
    assert!(big.iter().filter(|b| **b == 0).count() < 100);
}

#[tokio::test]
async fn an_opened_session_is_forgotten_once_its_key_is_gone() {
    let store = MemoryStore::new();
    let ring = KeyRing::load(&store, 0).await.unwrap();
    let c = claims();
    let token = ring.seal_session(&c).unwrap();
    let first = ring.open_session(&token).unwrap();
    assert_eq!(first.claims(), &c);
    // The second open is the cached one.
    assert!(Arc::ptr_eq(&first, &ring.open_session(&token).unwrap()));
    KeyRing::rotate(&store, 100).await.unwrap();
    ring.refresh(&store).await.unwrap();
    // A refresh starts afresh, but the retired key still opens the token.
    let again = ring.open_session(&token).unwrap();
    assert!(!Arc::ptr_eq(&first, &again));
    KeyRing::delete_expired(&store, 101 + KEY_RETENTION_SECONDS)
        .await
        .unwrap();
    ring.refresh(&store).await.unwrap();
    assert!(ring.open_session(&token).is_err());
    // Damaged tokens are never cached as anything.
    let mut bad = token.clone();
    bad.pop();
    assert!(ring.open_session(&bad).is_err());
}

#[tokio::test]
async fn the_opened_session_cache_stays_bounded_and_correct() {
    let store = MemoryStore::new();
    let ring = KeyRing::load(&store, 0).await.unwrap();
    let tokens: Vec<(SessionClaims, String)> = (0..OPEN_SESSION_CACHE + 10)
        .map(|_| {
            let c = claims();
            let t = ring.seal_session(&c).unwrap();
            (c, t)
        })
        .collect();
    for (c, t) in tokens.iter().chain(tokens.iter().take(20)) {
        assert_eq!(ring.open_session(t).unwrap().claims(), c);
    }
}

#[test]
fn a_chain_carries_its_first_session_and_the_nearest_ones() {
    let mut s = claims();
    let first = s.session_id.clone();
    let mut ids = vec![first.clone()];
    for _ in 0..MAX_PARENTS + 4 {
        let mut child = claims();
        child.parents = s.parents_of_child();
        ids.push(child.session_id.clone());
        s = child;
    }
    assert_eq!(s.parents.len(), MAX_PARENTS);
    assert_eq!(s.parents[0], first, "the first of the chain is kept");
    let nearest = &ids[ids.len() - MAX_PARENTS..ids.len() - 1];
    assert_eq!(&s.parents[1..], nearest, "the nearest ones, in order");

    // A long-term key starts a chain and is nobody's parent.
    let mut user = claims();
    user.access_key_id = "AKIAIOSFODNN7EXAMPLE".into();
    assert!(user.parents_of_child().is_empty());
}
