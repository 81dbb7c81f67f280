//! Calls signed with a directory user's long-term key, through the router, once the key's signing
//! key is cached: the directory's word on the key (its secret, its status) is taken on every call,
//! and every request's signature is still verified.

use crate::app::App;
use crate::clock::FixedClock;
use crate::idp::local::{Holder, KeyStatus, CACHE_BOUND};
use crate::store::{DirWrite, DirectoryStore, MemoryStore, Store};
use crate::web::testing::{access_key, form_post_at, Creds, Signed, T0};
use axum::http::StatusCode;
use std::sync::Arc;

const TRUST: &str = r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"AWS":"arn:aws:iam::111122223333:root"},"Action":"sts:AssumeRole"}]}"#;
const ASSUME: &str = r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"sts:AssumeRole","Resource":"*"}]}"#;
const ASSUME_ROLE: &str =
    "Action=AssumeRole&Version=2011-06-15&RoleArn=arn:aws:iam::111122223333:role/Target&RoleSessionName=bob-session";
const SESSION_TOKEN: &str = "Action=GetSessionToken&Version=2011-06-15";
const FORMS: [&str; 2] = [ASSUME_ROLE, SESSION_TOKEN];

/// An app over a memory store with a clock at [`T0`], user `bob` allowed to assume `Target`, and
/// bob's key.
async fn app_with_bob() -> (Arc<App>, FixedClock, Arc<MemoryStore>, Creds) {
    let clock = FixedClock::new(chrono::DateTime::from_timestamp(T0, 0).unwrap());
    let store = Arc::new(MemoryStore::new());
    let shared: Arc<dyn Store> = store.clone();
    let config = crate::testing::config().role("Target", TRUST).load();
    let app = App::build(config, shared, Arc::new(clock.clone()))
        .await
        .unwrap();
    crate::testing::directory_user(&app, "bob", &["ops"]).await;
    app.directory
        .as_ref()
        .unwrap()
        .put_policy(Holder::Group("ops"), "assume", ASSUME)
        .await
        .unwrap();
    let creds = access_key(&app, "bob").await;
    (app, clock, store, creds)
}

/// The status and the error code (empty on success) of `req`.
async fn send(app: &Arc<App>, req: &Signed) -> (StatusCode, String) {
    let resp = crate::testing::send(app, req.request()).await;
    let status = resp.status();
    let body = crate::testing::text(resp).await;
    let code = crate::web::testing::text_of(&body, "Code").unwrap_or("");
    (status, code.to_string())
}

/// `form` signed with `creds` at `at`.
fn signed(creds: &Creds, form: &str, at: i64) -> Signed {
    form_post_at(creds, "sts", form, at)
}

/// Both forms succeed twice (the second call finds the signing key cached).
async fn warm(app: &Arc<App>, creds: &Creds, at: i64) {
    for form in FORMS {
        for _ in 0..2 {
            let (status, code) = send(app, &signed(creds, form, at)).await;
            assert_eq!(status, StatusCode::OK, "{form}: {code}");
        }
    }
    assert_eq!(app.signing_keys.len(), 1, "one signing key for bob's key");
}

/// `req` with the last hex digit of its signature changed.
fn with_wrong_signature(req: &Signed) -> Signed {
    let mut wrong = req.clone();
    let (_, auth) = wrong
        .headers
        .iter_mut()
        .find(|(k, _)| k.eq_ignore_ascii_case("authorization"))
        .unwrap();
    let last = auth.pop().unwrap();
    auth.push(if last == '0' { '1' } else { '0' });
    wrong
}

#[tokio::test]
async fn a_wrong_signature_is_refused_though_the_signing_key_is_cached() {
    let (app, _clock, _store, creds) = app_with_bob().await;
    warm(&app, &creds, T0).await;
    for form in FORMS {
        let (status, code) = send(&app, &with_wrong_signature(&signed(&creds, form, T0))).await;
        assert_eq!(status, StatusCode::FORBIDDEN, "{form}");
        assert_eq!(code, "SignatureDoesNotMatch", "{form}");
        // Someone without the secret: a key signed with another one is refused as well.
        let guessed = Creds {
            secret: "a-guessed-secret-of-forty-characters-000".into(),
            ..creds.clone()
        };
        let (status, code) = send(&app, &signed(&guessed, form, T0)).await;
        assert_eq!(status, StatusCode::FORBIDDEN, "{form}");
        assert_eq!(code, "SignatureDoesNotMatch", "{form}");
    }
    assert_eq!(app.signing_keys.len(), 1, "refused requests keep nothing");
}

#[tokio::test]
async fn a_deactivated_key_is_refused_at_once_though_its_signing_key_is_cached() {
    let (app, _clock, _store, creds) = app_with_bob().await;
    warm(&app, &creds, T0).await;
    let d = app.directory.as_ref().unwrap();
    d.set_access_key_status("bob", &creds.key, KeyStatus::Inactive)
        .await
        .unwrap();
    for form in FORMS {
        let (status, code) = send(&app, &signed(&creds, form, T0)).await;
        assert_eq!(status, StatusCode::FORBIDDEN, "{form}");
        assert_eq!(code, "InvalidClientTokenId", "{form}");
    }
    d.set_access_key_status("bob", &creds.key, KeyStatus::Active)
        .await
        .unwrap();
    warm(&app, &creds, T0).await;
}

#[tokio::test]
async fn a_changed_secret_is_refused_as_soon_as_the_directory_has_it() {
    let (app, clock, store, creds) = app_with_bob().await;
    warm(&app, &creds, T0).await;
    // The secret of bob's key changes in the store (as another replica, or an operator restoring
    // a record, would change it): this process's directory reads it within CACHE_BOUND.
    let new_secret = "a-new-secret-of-forty-characters-0000001";
    let (key, record) = store
        .dir_list("user")
        .await
        .unwrap()
        .into_iter()
        .find(|(_, v)| v.value.contains(&creds.key))
        .unwrap();
    assert!(record.value.contains(&creds.secret));
    let changed = record.value.replace(&creds.secret, new_secret);
    assert!(store
        .dir_write(&[DirWrite::update("user", &key, record.version, changed)])
        .await
        .unwrap());
    clock.advance(chrono::Duration::from_std(CACHE_BOUND).unwrap() + chrono::Duration::seconds(1));
    let at = T0 + CACHE_BOUND.as_secs() as i64 + 1;
    for form in FORMS {
        let (status, code) = send(&app, &signed(&creds, form, at)).await;
        assert_eq!(status, StatusCode::FORBIDDEN, "{form} with the old secret");
        assert_eq!(code, "SignatureDoesNotMatch", "{form} with the old secret");
    }
    let renewed = Creds {
        secret: new_secret.into(),
        ..creds.clone()
    };
    for form in FORMS {
        let (status, code) = send(&app, &signed(&renewed, form, at)).await;
        assert_eq!(status, StatusCode::OK, "{form} with the new secret: {code}");
    }
}
