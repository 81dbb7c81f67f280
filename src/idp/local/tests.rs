use super::password::Password;
use super::*;
use crate::clock::FixedClock;
use crate::store::{DirectoryStore, MemoryStore};
use chrono::{Duration, TimeZone, Utc};

const ACCOUNT: &str = "111122223333";

fn directory() -> (Directory, FixedClock, Arc<MemoryStore>) {
    let clock = FixedClock::new(Utc.timestamp_opt(1_700_000_015, 0).unwrap());
    let store = Arc::new(MemoryStore::new());
    let d = Directory::new(
        store.clone(),
        DirectorySettings {
            account: ACCOUNT.into(),
            min_password_length: 12,
            role_prefix: "RolegateSSO_".into(),
        },
        Arc::new(clock.clone()),
        "rolegate",
    );
    (d, clock, store)
}

fn now(c: &FixedClock) -> i64 {
    crate::clock::Clock::now(c).timestamp()
}

async fn enrolled(d: &Directory, c: &FixedClock, user: &str) -> (String, Vec<u8>) {
    let e = d.create_totp(user).await.unwrap();
    let secret = totp::from_base32(e.secret_base32.expose()).unwrap();
    let t = now(c);
    let code1 = totp::code_at(&secret, t - 30).unwrap();
    let code2 = totp::code_at(&secret, t).unwrap();
    let serial = d.enable_totp(user, &code1, &code2).await.unwrap();
    (serial, secret)
}

#[tokio::test]
async fn users_are_unique_case_insensitively_and_root_is_reserved() {
    let (d, _, _) = directory();
    let u = d.create_user("Alice", None).await.unwrap();
    assert!(
        u.user_id.starts_with("AIDA") && u.user_id.len() == 21,
        "{}",
        u.user_id
    );
    assert_eq!(u.arn(ACCOUNT), "arn:aws:iam::111122223333:user/Alice");
    assert!(matches!(
        d.create_user("alice", None).await,
        Err(DirectoryError::Conflict(_))
    ));
    assert!(matches!(
        d.create_user("root", None).await,
        Err(DirectoryError::Invalid(_))
    ));
    assert!(matches!(
        d.create_user("a b", None).await,
        Err(DirectoryError::Invalid(_))
    ));
    assert!(matches!(
        d.create_user("x", Some("no-slash")).await,
        Err(DirectoryError::Invalid(_))
    ));
    assert_eq!(d.user("ALICE").await.unwrap().user_id, u.user_id);
    assert_eq!(
        d.user_by_id(&u.user_id).await.unwrap().unwrap().name,
        "Alice"
    );
    assert_eq!(d.users().await.unwrap().len(), 1);
}

#[tokio::test]
async fn a_successful_sign_in_writes_the_login_state_only_to_forget_failures() {
    let (d, _c, store) = directory();
    d.create_user("alice", None).await.unwrap();
    d.set_password("alice", Password::new("correct horse battery"))
        .await
        .unwrap();
    let right = || Password::new("correct horse battery");
    // Sign-ins without failures leave no record: replicas signing one user in update no shared row.
    for _ in 0..3 {
        d.check_password("alice", right()).await.unwrap();
    }
    assert!(store.dir_get(LOGIN_STATE, "alice").await.unwrap().is_none());
    // A failure is counted; the next success forgets it, and the one after writes nothing.
    assert!(d
        .check_password("alice", Password::new("wrong password!!"))
        .await
        .is_err());
    let counted = store.dir_get(LOGIN_STATE, "alice").await.unwrap().unwrap();
    d.check_password("alice", right()).await.unwrap();
    let reset = store.dir_get(LOGIN_STATE, "alice").await.unwrap().unwrap();
    assert_eq!(reset.version, counted.version + 1);
    let t: Throttle = serde_json::from_str(&reset.value).unwrap();
    assert_eq!((t.failures, t.locked_until), (0, None));
    d.check_password("alice", right()).await.unwrap();
    assert_eq!(
        store
            .dir_get(LOGIN_STATE, "alice")
            .await
            .unwrap()
            .unwrap()
            .version,
        reset.version
    );
}

#[tokio::test]
async fn password_sign_in_checks_the_password_and_locks_after_repeated_failures() {
    let (d, c, _) = directory();
    d.create_user("alice", None).await.unwrap();
    // No password yet: refused like a wrong one.
    assert!(matches!(
        d.check_password("alice", Password::new("whatever-long-enough"))
            .await,
        Err(DirectoryError::Denied(_))
    ));
    assert!(matches!(
        d.set_password("alice", Password::new("short")).await,
        Err(DirectoryError::Invalid(_))
    ));
    d.set_password("alice", Password::new("correct horse battery"))
        .await
        .unwrap();
    assert_eq!(
        d.check_password("alice", Password::new("correct horse battery"))
            .await
            .unwrap()
            .name,
        "alice"
    );
    assert!(matches!(
        d.check_password("nobody", Password::new("correct horse battery"))
            .await,
        Err(DirectoryError::Denied(_))
    ));
    for _ in 0..PASSWORD_MAX_FAILURES {
        assert!(matches!(
            d.check_password("alice", Password::new("wrong password!!"))
                .await,
            Err(DirectoryError::Denied(_))
        ));
    }
    // Locked: even the right password is refused until the lock ends.
    assert!(matches!(
        d.check_password("alice", Password::new("correct horse battery"))
            .await,
        Err(DirectoryError::Locked { .. })
    ));
    c.advance(Duration::seconds(LOCK_SECONDS));
    d.check_password("alice", Password::new("correct horse battery"))
        .await
        .unwrap();
}

#[tokio::test]
async fn totp_enrolment_needs_two_consecutive_codes() {
    let (d, c, _) = directory();
    d.create_user("alice", None).await.unwrap();
    let e = d.create_totp("alice").await.unwrap();
    assert_eq!(e.serial, "arn:aws:iam::111122223333:mfa/alice");
    assert!(e.uri.expose().starts_with("otpauth://totp/rolegate:alice?"));
    let secret = totp::from_base32(e.secret_base32.expose()).unwrap();
    let t = now(&c);
    let same = totp::code_at(&secret, t).unwrap();
    assert!(matches!(
        d.enable_totp("alice", &same, &same).await,
        Err(DirectoryError::Denied(_))
    ));
    assert!(!d.user("alice").await.unwrap().has_mfa());
    let (serial, _) = enrolled(&d, &c, "alice").await;
    assert!(d.user("alice").await.unwrap().has_mfa());
    // An enabled device is not replaced by a new enrolment.
    assert!(matches!(
        d.create_totp("alice").await,
        Err(DirectoryError::Conflict(_))
    ));
    d.delete_mfa_device("alice", &serial).await.unwrap();
    assert!(!d.user("alice").await.unwrap().has_mfa());
}

#[tokio::test]
async fn a_totp_code_is_accepted_once_and_never_an_older_step() {
    let (d, c, _) = directory();
    d.create_user("alice", None).await.unwrap();
    c.advance(Duration::seconds(90));
    let (serial, secret) = enrolled(&d, &c, "alice").await;
    c.advance(Duration::seconds(30));
    let user = d.user("alice").await.unwrap();
    let t = now(&c);
    let code = totp::code_at(&secret, t).unwrap();
    assert_eq!(d.verify_totp(&user, &serial, &code).await.unwrap(), t);
    let again = d.verify_totp(&user, &serial, &code).await;
    assert!(
        matches!(&again, Err(DirectoryError::Denied(m)) if m.contains("already used")),
        "{again:?}"
    );
    // The previous step's code is still within drift but older than the one used: refused.
    let previous = totp::code_at(&secret, t - 30).unwrap();
    assert!(matches!(
        d.verify_totp(&user, &serial, &previous).await,
        Err(DirectoryError::Denied(_))
    ));
    // A device that is not the user's, or not enabled, is refused.
    assert!(matches!(
        d.verify_totp(&user, "arn:aws:iam::111122223333:mfa/bob", &code)
            .await,
        Err(DirectoryError::Denied(_))
    ));
}

#[tokio::test]
async fn repeated_wrong_codes_lock_the_device() {
    let (d, c, _) = directory();
    d.create_user("alice", None).await.unwrap();
    let (serial, secret) = enrolled(&d, &c, "alice").await;
    c.advance(Duration::seconds(60));
    let user = d.user("alice").await.unwrap();
    let good = totp::code_at(&secret, now(&c)).unwrap();
    let wrong = if good == "000000" { "111111" } else { "000000" };
    for i in 0..MFA_MAX_FAILURES {
        let r = d.verify_totp(&user, &serial, wrong).await;
        assert!(
            matches!(r, Err(DirectoryError::Denied(_))),
            "attempt {i}: {r:?}"
        );
    }
    assert!(matches!(
        d.verify_totp(&user, &serial, &good).await,
        Err(DirectoryError::Locked { .. })
    ));
    c.advance(Duration::seconds(LOCK_SECONDS));
    let later = totp::code_at(&secret, now(&c)).unwrap();
    d.verify_totp(&user, &serial, &later).await.unwrap();
}

#[tokio::test]
async fn access_key_lifecycle() {
    let (d, _, _) = directory();
    d.create_user("ci", None).await.unwrap();
    let k1 = d.create_access_key("ci").await.unwrap();
    assert!(k1.id.starts_with("AKIA") && k1.id.len() == 20, "{}", k1.id);
    assert_eq!(k1.secret.expose().len(), 40);
    assert_eq!(format!("{:?}", k1.secret), "***");
    let (owner, key) = d.access_key(&k1.id).await.unwrap().unwrap();
    assert_eq!((owner.name.as_str(), key.status), ("ci", KeyStatus::Active));

    // Rotation: a new key, the old one deactivated; a third key is refused.
    let (k2, old) = d.rotate_access_key("ci").await.unwrap();
    assert_eq!(old.as_deref(), Some(k1.id.as_str()));
    let (_, k1_now) = d.access_key(&k1.id).await.unwrap().unwrap();
    assert_eq!(k1_now.status, KeyStatus::Inactive);
    assert!(matches!(
        d.create_access_key("ci").await,
        Err(DirectoryError::Conflict(_))
    ));
    assert!(matches!(
        d.rotate_access_key("ci").await,
        Err(DirectoryError::Conflict(_))
    ));

    d.delete_access_key("ci", &k1.id).await.unwrap();
    assert!(d.access_key(&k1.id).await.unwrap().is_none());
    assert!(matches!(
        d.delete_access_key("ci", &k1.id).await,
        Err(DirectoryError::NotFound(_))
    ));
    d.set_access_key_status("ci", &k2.id, KeyStatus::Inactive)
        .await
        .unwrap();
    assert_eq!(
        d.access_key(&k2.id).await.unwrap().unwrap().1.status,
        KeyStatus::Inactive
    );

    d.touch_access_key(&k2.id, "sts", "us-east-1");
    let used = d.access_key_last_used(&k2.id).await.unwrap().unwrap();
    assert_eq!(used.service, "sts");

    // Deleting the user removes its keys from the index.
    d.delete_user("ci").await.unwrap();
    assert!(d.access_key(&k2.id).await.unwrap().is_none());
}

#[tokio::test]
async fn root_is_bootstrapped_once_with_a_password_and_mfa() {
    let (d, c, _) = directory();
    let first = d.ensure_root().await.unwrap();
    let token = first
        .new_token()
        .expect("first start issues a token")
        .to_string();
    let RootBootstrap::NewToken { expires_at, .. } = first else {
        unreachable!()
    };
    assert_eq!(expires_at, now(&c) + BOOTSTRAP_SECONDS);
    assert_eq!(
        d.ensure_root().await.unwrap(),
        RootBootstrap::Pending { expires_at },
        "a valid token is not replaced, and the next start says it is pending"
    );
    let root = d.user(ROOT).await.unwrap();
    assert!(root.root && root.password_hash.is_none());
    assert_eq!(root.arn(ACCOUNT), "arn:aws:iam::111122223333:root");
    assert!(matches!(
        d.create_access_key(ROOT).await,
        Err(DirectoryError::Invalid(_))
    ));
    assert!(matches!(
        d.delete_user(ROOT).await,
        Err(DirectoryError::Invalid(_))
    ));

    assert!(matches!(
        d.bootstrap_start("not-the-token", Password::new("root password long"))
            .await,
        Err(DirectoryError::Denied(_))
    ));
    let e = d
        .bootstrap_start(&token, Password::new("root password long"))
        .await
        .unwrap();
    let secret = totp::from_base32(e.secret_base32.expose()).unwrap();
    let t = now(&c);
    d.bootstrap_finish(
        &token,
        &totp::code_at(&secret, t - 30).unwrap(),
        &totp::code_at(&secret, t).unwrap(),
    )
    .await
    .unwrap();
    assert!(matches!(
        d.bootstrap_start(&token, Password::new("another password"))
            .await,
        Err(DirectoryError::Denied(_))
    ));
    assert_eq!(d.ensure_root().await.unwrap(), RootBootstrap::Done);
    let root = d
        .check_password(ROOT, Password::new("root password long"))
        .await
        .unwrap();
    assert!(root.has_mfa());
}

#[tokio::test]
async fn an_expired_bootstrap_token_is_refused_and_replaced() {
    let (d, c, _) = directory();
    let token = crate::testing::root_token(&d).await;
    c.advance(Duration::seconds(BOOTSTRAP_SECONDS));
    assert!(matches!(
        d.bootstrap_start(&token, Password::new("root password long"))
            .await,
        Err(DirectoryError::Denied(_))
    ));
    let fresh = d.ensure_root().await.unwrap();
    let fresh = fresh.new_token().expect("a new token");
    assert_ne!(fresh, token);
}

#[tokio::test]
async fn groups_and_policies() {
    let (d, _, _) = directory();
    d.create_user("alice", None).await.unwrap();
    d.create_group("ops", None).await.unwrap();
    assert!(matches!(
        d.add_user_to_group("alice", "nope").await,
        Err(DirectoryError::NotFound(_))
    ));
    d.add_user_to_group("alice", "OPS").await.unwrap();
    d.add_user_to_group("alice", "ops").await.unwrap();
    assert_eq!(
        d.user("alice").await.unwrap().groups,
        vec!["ops".to_string()]
    );
    assert!(matches!(
        d.delete_group("ops").await,
        Err(DirectoryError::Conflict(_))
    ));

    let doc = r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"sts:AssumeRole","Resource":"*"}]}"#;
    assert!(matches!(
        d.put_policy(Holder::Group("ops"), "bad", "{").await,
        Err(DirectoryError::Invalid(_))
    ));
    d.put_policy(Holder::Group("ops"), "assume", doc)
        .await
        .unwrap();
    d.put_policy(Holder::User("alice"), "own", doc)
        .await
        .unwrap();
    d.set_managed_policy(
        Holder::Group("ops"),
        "arn:aws:iam::111122223333:policy/RO",
        true,
    )
    .await
    .unwrap();
    let user = d.user("alice").await.unwrap();
    let sources = d.policies_of(&user).await.unwrap();
    assert_eq!(sources.len(), 3, "{sources:?}");
    assert!(
        matches!(&sources[0], PolicySource::Inline { label, .. } if label == "user alice policy own")
    );
    assert!(
        matches!(&sources[1], PolicySource::Inline { label, .. } if label == "group ops policy assume")
    );
    assert_eq!(
        sources[2],
        PolicySource::Managed("arn:aws:iam::111122223333:policy/RO".into())
    );

    d.remove_user_from_group("alice", "ops").await.unwrap();
    let user = d.user("alice").await.unwrap();
    assert_eq!(d.policies_of(&user).await.unwrap().len(), 1);
    d.delete_group("ops").await.unwrap();
}

/// A user whose name makes its TOTP serial the root user's (`mfa/root-account-mfa-device`) — no
/// longer creatable, but possibly in a store written by an earlier version — shares none of root's
/// TOTP state: neither the last accepted step nor failures and locks.
#[tokio::test]
async fn roots_totp_state_is_not_shared_with_a_user_named_like_its_device() {
    let (d, c, _) = directory();
    d.ensure_root().await.unwrap();
    let (root_serial, root_secret) = enrolled(&d, &c, ROOT).await;
    assert!(matches!(
        d.create_user(keys::ROOT_MFA_DEVICE, None).await,
        Err(DirectoryError::Invalid(m)) if m.contains("reserved")
    ));
    let mut twin = d.user("root").await.unwrap();
    twin.name = keys::ROOT_MFA_DEVICE.into();
    twin.user_id = "AIDATWINTWINTWINTWIN2".into();
    twin.root = false;
    twin.mfa_devices.clear();
    assert!(d.insert_user(&twin).await.unwrap());
    let (twin_serial, twin_secret) = enrolled(&d, &c, keys::ROOT_MFA_DEVICE).await;
    assert_eq!(twin_serial, root_serial, "the serials are the same string");
    let root = d.user(ROOT).await.unwrap();
    let twin = d.user(keys::ROOT_MFA_DEVICE).await.unwrap();

    // The twin uses a code of this step: root's code of the same step is still good.
    c.advance(Duration::seconds(30));
    let t = now(&c);
    let code = totp::code_at(&twin_secret, t).unwrap();
    d.verify_totp(&twin, &twin_serial, &code).await.unwrap();
    let code = totp::code_at(&root_secret, t).unwrap();
    assert_eq!(d.verify_totp(&root, &root_serial, &code).await.unwrap(), t);

    // The twin locks its own device: root's is not locked.
    c.advance(Duration::seconds(30));
    let t = now(&c);
    let good = totp::code_at(&twin_secret, t).unwrap();
    let wrong = if good == "000000" { "111111" } else { "000000" };
    for _ in 0..MFA_MAX_FAILURES {
        let _ = d.verify_totp(&twin, &twin_serial, wrong).await;
    }
    assert!(matches!(
        d.verify_totp(&twin, &twin_serial, &good).await,
        Err(DirectoryError::Locked { .. })
    ));
    let code = totp::code_at(&root_secret, t).unwrap();
    assert_eq!(d.verify_totp(&root, &root_serial, &code).await.unwrap(), t);
}

/// TOTP state an earlier version kept under the device serial still bounds replays: a code of the
/// step it last accepted is refused.
#[tokio::test]
async fn the_last_step_kept_under_the_serial_by_earlier_versions_still_counts() {
    let (d, c, store) = directory();
    d.create_user("alice", None).await.unwrap();
    let (serial, secret) = enrolled(&d, &c, "alice").await;
    c.advance(Duration::seconds(30));
    let t = now(&c);
    let legacy = Throttle {
        last_step: Some((t / 30) as u64),
        ..Throttle::default()
    };
    let write = DirWrite::put(MFA_STATE, &serial, None, encode(&legacy).unwrap());
    assert!(
        crate::store::DirectoryStore::dir_write(store.as_ref(), &[write])
            .await
            .unwrap()
    );
    let user = d.user("alice").await.unwrap();
    let code = totp::code_at(&secret, t).unwrap();
    let r = d.verify_totp(&user, &serial, &code).await;
    assert!(
        matches!(&r, Err(DirectoryError::Denied(m)) if m.contains("already used")),
        "{r:?}"
    );
    c.advance(Duration::seconds(30));
    let code = totp::code_at(&secret, now(&c)).unwrap();
    d.verify_totp(&user, &serial, &code).await.unwrap();
}
