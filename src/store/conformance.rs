//! The behaviour every backend must show. Each check panics with a message naming what broke.
#![doc(hidden)]

use super::*;
use std::sync::Arc;

fn key(id: &str, created_at: i64) -> SealingKey {
    SealingKey {
        id: id.into(),
        secret: KeyBytes::new(vec![7; 32]),
        created_at,
        retired_at: None,
    }
}

fn rev(scope: RevocationScope, before: i64) -> Revocation {
    Revocation {
        scope,
        issued_before: before,
        created_at: before,
        reason: format!("before {before}"),
        expires_at: before + 1000,
    }
}

fn record(t: i64, id: &str, action: &str, principal: Option<&str>, decision: &str) -> AuditRecord {
    AuditRecord {
        time_ms: t,
        id: id.into(),
        action: action.into(),
        principal: principal.map(String::from),
        decision: decision.into(),
        json: format!("{{\"id\":\"{id}\"}}"),
    }
}

/// Runs every behavioural check on an empty store.
pub async fn run(store: Arc<dyn Store>) {
    keys(store.as_ref()).await;
    replays(store.clone()).await;
    revocations(store.as_ref()).await;
    audit(store.as_ref()).await;
    store.health().await.expect("health");
}

async fn keys(s: &dyn Store) {
    assert!(
        s.sealing_keys().await.unwrap().is_empty(),
        "a new store has no keys"
    );
    assert!(s.insert_sealing_key(&key("a", 1)).await.unwrap());
    let mut other = key("a", 2);
    other.secret = KeyBytes::new(vec![9; 32]);
    assert!(
        !s.insert_sealing_key(&other).await.unwrap(),
        "an existing id is not overwritten"
    );
    let ks = s.sealing_keys().await.unwrap();
    assert_eq!(ks, vec![key("a", 1)], "the first key stays as stored");
    assert!(s.insert_sealing_key(&key("b", 5)).await.unwrap());
    s.retire_sealing_key("a", 10).await.unwrap();
    s.retire_sealing_key("a", 20).await.unwrap();
    let a = s
        .sealing_keys()
        .await
        .unwrap()
        .into_iter()
        .find(|k| k.id == "a")
        .unwrap();
    assert_eq!(a.retired_at, Some(10), "retirement time is set once");
    s.retire_sealing_key("missing", 10).await.unwrap();
    s.delete_sealing_key("a").await.unwrap();
    let ids: Vec<String> = s
        .sealing_keys()
        .await
        .unwrap()
        .into_iter()
        .map(|k| k.id)
        .collect();
    assert_eq!(ids, vec!["b"]);
    s.delete_sealing_key("b").await.unwrap();
}

async fn replays(s: Arc<dyn Store>) {
    assert!(
        s.first_use("saml", "id-1", 100, 10).await.unwrap(),
        "first use"
    );
    assert!(
        !s.first_use("saml", "id-1", 100, 11).await.unwrap(),
        "replay"
    );
    assert!(
        !s.first_use("saml", "id-1", 200, 99).await.unwrap(),
        "replay until expiry"
    );
    assert!(
        s.first_use("totp", "id-1", 100, 11).await.unwrap(),
        "namespaces are independent"
    );
    assert!(
        s.first_use("saml", "id-1", 300, 100).await.unwrap(),
        "usable again once expired"
    );
    assert!(
        !s.first_use("saml", "id-1", 300, 150).await.unwrap(),
        "the new record holds"
    );
    // Concurrent first use: exactly one wins.
    let mut tasks = Vec::new();
    for _ in 0..32 {
        let s = s.clone();
        tasks.push(tokio::spawn(async move {
            s.first_use("race", "same", 1000, 1).await.unwrap()
        }));
    }
    let mut wins = 0;
    for t in tasks {
        if t.await.unwrap() {
            wins += 1;
        }
    }
    assert_eq!(wins, 1, "exactly one concurrent first use succeeds");
    assert!(s.first_use("p", "short", 50, 1).await.unwrap());
    assert!(s.first_use("p", "long", 500, 1).await.unwrap());
    let purged = s.purge_expired_replays(60).await.unwrap();
    assert!(purged >= 1, "expired entries are purged");
    assert!(
        !s.first_use("p", "long", 500, 61).await.unwrap(),
        "unexpired entries survive a purge"
    );
    assert!(
        s.first_use("p", "short", 500, 61).await.unwrap(),
        "purged entries are gone"
    );
}

async fn revocations(s: &dyn Store) {
    assert!(s.revocations().await.unwrap().is_empty());
    let role = RevocationScope::Role("arn:aws:iam::111122223333:role/r".into());
    s.revoke(&rev(role.clone(), 100)).await.unwrap();
    s.revoke(&rev(role.clone(), 50)).await.unwrap();
    let all = s.revocations().await.unwrap();
    assert_eq!(all.len(), 1);
    assert_eq!(all[0].issued_before, 100, "a revocation never moves back");
    s.revoke(&rev(role.clone(), 150)).await.unwrap();
    assert_eq!(
        s.revocations().await.unwrap()[0].issued_before,
        150,
        "a later revocation replaces"
    );
    let subject = RevocationScope::Subject {
        provider: "https://idp".into(),
        subject: "alice".into(),
    };
    s.revoke(&rev(subject.clone(), 120)).await.unwrap();
    s.revoke(&rev(RevocationScope::Session("s1".into()), 130))
        .await
        .unwrap();
    s.revoke(&rev(RevocationScope::AccessKey("ASIA1".into()), 140))
        .await
        .unwrap();
    s.revoke(&rev(RevocationScope::All, 10)).await.unwrap();
    assert_eq!(
        s.revocations().await.unwrap().len(),
        5,
        "scopes are distinct"
    );
    // expires_at = issued_before + 1000
    assert_eq!(
        s.purge_expired_revocations(1125).await.unwrap(),
        2,
        "All (1010) and subject (1120)"
    );
    let left: Vec<RevocationScope> = s
        .revocations()
        .await
        .unwrap()
        .into_iter()
        .map(|r| r.scope)
        .collect();
    assert!(left.contains(&role) && !left.contains(&subject));
    s.purge_expired_revocations(i64::MAX).await.unwrap();
}

async fn audit(s: &dyn Store) {
    let q = |since, until, limit, newest_first| AuditQuery {
        since_ms: since,
        until_ms: until,
        limit,
        newest_first,
        ..Default::default()
    };
    assert!(s
        .query_audit(&q(None, None, 10, true))
        .await
        .unwrap()
        .is_empty());
    s.append_audit(&[
        record(1000, "r1", "AssumeRole", Some("p1"), "allow"),
        record(2000, "r2", "GetCallerIdentity", Some("p2"), "deny"),
    ])
    .await
    .unwrap();
    s.append_audit(&[
        record(3000, "r3", "AssumeRole", None, "error"),
        record(-5, "r0", "X", None, "deny"),
    ])
    .await
    .unwrap();
    let ids = |v: Vec<AuditRecord>| v.into_iter().map(|r| r.id).collect::<Vec<_>>();
    assert_eq!(
        ids(s.query_audit(&q(None, None, 10, true)).await.unwrap()),
        ["r3", "r2", "r1", "r0"]
    );
    assert_eq!(
        ids(s.query_audit(&q(None, None, 10, false)).await.unwrap()),
        ["r0", "r1", "r2", "r3"]
    );
    assert_eq!(
        ids(s
            .query_audit(&q(Some(1000), Some(3000), 10, false))
            .await
            .unwrap()),
        ["r1", "r2"]
    );
    assert_eq!(
        ids(s.query_audit(&q(None, None, 2, true)).await.unwrap()),
        ["r3", "r2"]
    );
    let mut f = q(None, None, 10, false);
    f.action = Some("AssumeRole".into());
    assert_eq!(ids(s.query_audit(&f).await.unwrap()), ["r1", "r3"]);
    f.decision = Some("error".into());
    assert_eq!(ids(s.query_audit(&f).await.unwrap()), ["r3"]);
    let mut p = q(None, None, 10, false);
    p.principal = Some("p2".into());
    let got = s.query_audit(&p).await.unwrap();
    assert_eq!(got.len(), 1);
    assert_eq!(
        got[0],
        record(2000, "r2", "GetCallerIdentity", Some("p2"), "deny"),
        "records round-trip"
    );
    assert!(s
        .query_audit(&q(Some(10_000), None, 10, true))
        .await
        .unwrap()
        .is_empty());
}

/// Writes with one instance, reopens, and checks that everything persisted.
pub async fn run_durable<F>(open: F)
where
    F: Fn() -> Arc<dyn Store>,
{
    {
        let s = open();
        assert!(s.insert_sealing_key(&key("k", 1)).await.unwrap());
        assert!(s.first_use("saml", "once", i64::MAX, 1).await.unwrap());
        s.revoke(&rev(RevocationScope::All, 5)).await.unwrap();
        s.append_audit(&[record(1, "e1", "A", None, "allow")])
            .await
            .unwrap();
    }
    let s = open();
    assert_eq!(
        s.sealing_keys().await.unwrap(),
        vec![key("k", 1)],
        "keys persist"
    );
    assert!(
        !s.first_use("saml", "once", i64::MAX, 2).await.unwrap(),
        "replay entries persist"
    );
    assert_eq!(
        s.revocations().await.unwrap().len(),
        1,
        "revocations persist"
    );
    let q = AuditQuery {
        limit: 10,
        ..Default::default()
    };
    assert_eq!(
        s.query_audit(&q).await.unwrap().len(),
        1,
        "audit events persist"
    );
}
