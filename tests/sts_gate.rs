//! The mint gate at the STS edges, with the real AWS SDK for Rust and a real OpenID provider: a web
//! identity token issued before a revocation of its subject gets no credentials (the revocation
//! named by the provider's issuer, not its configured name), one issued after it does; a directory
//! user's session gets nothing from `AssumeRole` once the user is disabled or deleted, and its
//! long-term key nothing from `GetSessionToken` or `GetFederationToken` while it is disabled.

mod support;

use aws_sdk_sts::config::retry::RetryConfig;
use aws_sdk_sts::config::{BehaviorVersion, Credentials, Region};
use aws_sdk_sts::error::ProvideErrorMetadata;
use aws_sdk_sts::Client;
use chrono::{Timelike, Utc};
use reqwest::StatusCode;
use rolegate::store::{Revocation, RevocationScope};
use serde_json::json;
use support::app::{aws_trust, role_arn, web_trust, Idp, RoleSpec, TestApp, ACCOUNT};

/// An STS client for rolegate with explicit credentials, reading no environment, never retrying.
fn client(app: &TestApp, id: &str, secret: &str, token: Option<&str>) -> Client {
    let config = aws_sdk_sts::Config::builder()
        .behavior_version(BehaviorVersion::latest())
        .region(Region::new("us-east-1"))
        .endpoint_url(app.url())
        .retry_config(RetryConfig::disabled())
        .credentials_provider(Credentials::new(
            id,
            secret,
            token.map(str::to_owned),
            None,
            "rolegate-gate",
        ));
    Client::from_conf(config.build())
}

/// Whether a denied audit event of `action` has a reason containing every one of `parts`.
async fn denied_because(app: &TestApp, action: &str, parts: &[&str]) -> bool {
    app.audit_events().await.iter().any(|e| {
        e.action == action
            && e.decision == "deny"
            && e.reason
                .as_deref()
                .is_some_and(|r| parts.iter().all(|p| r.contains(p)))
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_token_issued_before_its_subject_was_revoked_gets_no_credentials() {
    let idp = Idp::start().await;
    let start = Utc::now().with_nanosecond(0).unwrap();
    let app = TestApp::builder()
        .issuer(idp.idp.issuer())
        .fixed_clock(start)
        .role(RoleSpec::new("web", web_trust(&idp.prefix(), &[], "")))
        .start()
        .await;
    let t0 = start.timestamp();
    let before = idp.idp.id_token("grace", json!({"iat": t0 - 60})).await;
    let other = idp.idp.id_token("henry", json!({"iat": t0 - 60})).await;
    // Before the revocation the token works.
    app.credentials_for(&role_arn("web"), "grace", &before)
        .await;

    let store = app.app().store.clone();
    app.app()
        .revocations
        .revoke(
            store.as_ref(),
            Revocation {
                // The provider named by its issuer URL, as an operator copying it from a token would.
                scope: RevocationScope::Subject {
                    provider: idp.idp.issuer().to_owned(),
                    subject: "grace".into(),
                },
                issued_before: t0 + 1,
                created_at: t0,
                reason: "laptop stolen".into(),
                expires_at: t0 + 86_400,
            },
        )
        .await
        .unwrap_or_else(|e| panic!("revoke: {e}"));

    let answer = app
        .assume_web(&role_arn("web"), "grace", &before, &[])
        .await;
    let ev = app
        .assert_denied(
            &answer,
            StatusCode::FORBIDDEN,
            "AccessDenied",
            &["mint gate", "token revoked after it began", "laptop stolen"],
        )
        .await;
    assert!(ev.access_key_id.is_none(), "{ev:?}");
    // Another subject of the same provider is untouched.
    app.credentials_for(&role_arn("web"), "henry", &other).await;
    // A token the provider issued after the revocation is a new sign-in.
    app.clock().advance(chrono::Duration::seconds(10));
    let after = idp.idp.id_token("grace", json!({"iat": t0 + 5})).await;
    app.credentials_for(&role_arn("web"), "grace", &after).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_disabled_or_deleted_directory_user_gets_nothing_from_its_session_or_key() {
    let app = TestApp::builder()
        .fixed_clock(Utc::now().with_nanosecond(0).unwrap())
        .role(RoleSpec::new(
            "target",
            aws_trust(&[&format!("arn:aws:iam::{ACCOUNT}:root")], &[]),
        ))
        .start()
        .await;
    let d = app.app().directory.clone().expect("the directory");
    d.create_user("uma", None).await.unwrap();
    d.put_policy(
        rolegate::idp::local::Holder::User("uma"),
        "sts",
        &json!({"Version": "2012-10-17", "Statement": [
            {"Effect": "Allow", "Action": "sts:*", "Resource": "*"}
        ]})
        .to_string(),
    )
    .await
    .unwrap();
    let key = d.create_access_key("uma").await.unwrap();
    let long_term = client(&app, &key.id, key.secret.expose(), None);
    let s = long_term
        .get_session_token()
        .send()
        .await
        .unwrap_or_else(|e| panic!("GetSessionToken: {e:?}"));
    let c = s.credentials().expect("credentials");
    let session = client(
        &app,
        c.access_key_id(),
        c.secret_access_key(),
        Some(c.session_token()),
    );
    let assume = || {
        session
            .assume_role()
            .role_arn(role_arn("target"))
            .role_session_name("uma")
            .send()
    };
    assume()
        .await
        .unwrap_or_else(|e| panic!("AssumeRole of an active user: {e:?}"));

    // Disabled in the directory (nothing revoked): the gate reads the user's state itself.
    d.set_user_disabled("uma", true).await.unwrap();
    let e = assume()
        .await
        .expect_err("a disabled user's session assumed a role");
    assert_eq!(e.code(), Some("AccessDenied"), "{e:?}");
    assert!(denied_because(&app, "AssumeRole", &["mint gate", "uma is disabled"]).await);
    for refused in [
        long_term
            .get_session_token()
            .send()
            .await
            .err()
            .and_then(|e| e.code().map(str::to_owned)),
        long_term
            .get_federation_token()
            .name("uma-app")
            .send()
            .await
            .err()
            .and_then(|e| e.code().map(str::to_owned)),
    ] {
        assert_eq!(refused.as_deref(), Some("InvalidClientTokenId"));
    }
    assert!(denied_because(&app, "GetSessionToken", &["uma, which is disabled"]).await);

    // Enabled again: the same session works (nothing was revoked).
    d.set_user_disabled("uma", false).await.unwrap();
    assume()
        .await
        .unwrap_or_else(|e| panic!("AssumeRole after enabling: {e:?}"));

    // Deleted: its session gets nothing, even if a user of the same name comes back.
    d.delete_user("uma").await.unwrap();
    d.create_user("uma", None).await.unwrap();
    let e = assume()
        .await
        .expect_err("a deleted user's session assumed a role");
    assert_eq!(e.code(), Some("AccessDenied"), "{e:?}");
    assert!(denied_because(&app, "AssumeRole", &["mint gate", "no longer exists"]).await);
}
