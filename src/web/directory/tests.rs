//! The directory admin API through the router: the root user's protection against callers whose
//! policies allow `rolegate:*` on `user/*` or on `*`, the names no user may be created with, and
//! assignment explanations of unverified e-mail addresses.

use super::root::ROOT_RESERVED;
use crate::app::App;
use crate::audit::AuditEvent;
use crate::credentials::SessionClaims;
use crate::idp::local::User;
use crate::web::testing::{access_key, Creds, ToSign};
use axum::body::Body;
use axum::http::{Method, Request, StatusCode};
use serde_json::{json, Value};
use std::sync::Arc;
use tower::ServiceExt;

const ACCOUNT: &str = "111122223333";
const T0: i64 = 1_700_000_000;
const ADMIN_TOKEN: &str = "an-admin-token-of-forty-characters-0001";

/// Two OIDC providers, `consumer` (e-mail addresses verified or not) and `workforce` (always
/// verified), whose people of `example.com` get the permission set ReadOnly; the admin API.
fn config() -> crate::testing::TestConfig {
    let read = r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"s3:Get*","Resource":"*"}]}"#;
    crate::testing::config()
        .admin_token("ADMIN_TOKEN", ADMIN_TOKEN)
        .oidc_provider("consumer", "https://accounts.example.net", "rolegate", "")
        .oidc_provider(
            "workforce",
            "https://login.example.com",
            "rolegate",
            "email_always_verified = true",
        )
        .unassigned_set("ReadOnly", "", &[("read", read)])
        .assignment_rule(
            "consumer",
            "ReadOnly",
            &[ACCOUNT],
            "email_domain = \"example.com\"",
        )
        .assignment_rule(
            "workforce",
            "ReadOnly",
            &[ACCOUNT],
            "email_domain = \"example.com\"",
        )
}

struct Fixture {
    app: Arc<App>,
    router: axum::Router,
}

/// An admin call's answer.
struct Answer {
    status: StatusCode,
    body: Value,
}

impl Fixture {
    async fn new() -> Self {
        let (app, _clock) = config().build(T0).await;
        app.directory.as_ref().unwrap().ensure_root().await.unwrap();
        let router = crate::web::router(app.clone());
        Self { app, router }
    }

    fn directory(&self) -> &crate::idp::local::Directory {
        self.app.directory.as_deref().unwrap()
    }

    async fn send(&self, req: Request<Body>) -> Answer {
        let resp = self.router.clone().oneshot(req).await.unwrap();
        let status = resp.status();
        let bytes = axum::body::to_bytes(resp.into_body(), 1 << 20)
            .await
            .unwrap();
        Answer {
            status,
            body: serde_json::from_slice(&bytes).unwrap_or(Value::Null),
        }
    }

    /// A call with the admin bearer token.
    /// Sets `user`'s password through the admin API with the admin token.
    async fn set_password(&self, user: &str, password: &str) {
        let a = self
            .admin(
                Method::PUT,
                &format!("/admin/users/{user}/password"),
                Some(json!({"password": password})),
            )
            .await;
        assert_eq!(a.status, StatusCode::OK, "{}", a.body);
    }

    async fn admin(&self, method: Method, path: &str, body: Option<Value>) -> Answer {
        let req = Request::builder()
            .method(method)
            .uri(path)
            .header("authorization", format!("Bearer {ADMIN_TOKEN}"))
            .header("content-type", "application/json")
            .body(Body::from(body.map(|b| b.to_string()).unwrap_or_default()))
            .unwrap();
        self.send(req).await
    }

    /// A call signed with SigV4 for the service `rolegate` at the fixture's time.
    async fn signed(
        &self,
        creds: &Creds,
        method: Method,
        path: &str,
        body: Option<Value>,
    ) -> Answer {
        let body = body.map(|b| b.to_string()).unwrap_or_default();
        let method = match method {
            Method::GET => "GET",
            Method::POST => "POST",
            Method::PUT => "PUT",
            Method::DELETE => "DELETE",
            other => panic!("no test signs {other}"),
        };
        let signed = ToSign {
            service: super::SIGNING_NAME,
            method,
            target: path,
            headers: &[("content-type", "application/json")],
            body: body.as_bytes(),
            presign: false,
        }
        .signed_at(creds, T0);
        self.send(signed.request()).await
    }

    /// A directory user with an access key and one inline policy allowing `rolegate:*` on
    /// `resources`.
    async fn user_with_grant(&self, name: &str, resources: &[&str]) -> Creds {
        let d = self.directory();
        crate::testing::directory_user(&self.app, name, &[]).await;
        let doc = json!({"Version": "2012-10-17", "Statement": [
            {"Effect": "Allow", "Action": "rolegate:*", "Resource": resources}
        ]});
        d.put_policy(
            crate::idp::local::Holder::User(name),
            "grant",
            &doc.to_string(),
        )
        .await
        .unwrap();
        access_key(&self.app, name).await
    }

    /// A sealed session of a directory user, as `GetSessionToken` would issue it.
    fn user_session(&self, user: &User, mfa: bool) -> Creds {
        let user_itself = crate::authn::directory_caller(
            ACCOUNT,
            user,
            &crate::credentials::new_temporary_access_key_id().unwrap(),
            crate::credentials::new_session_id().unwrap(),
            T0 - 10,
            mfa.then_some(T0 - 10),
        );
        let claims = SessionClaims {
            secret_access_key: crate::credentials::new_secret_access_key().unwrap(),
            expires_at: T0 + 3600,
            ..user_itself
        };
        let token = self.app.keys.seal_session(&claims).unwrap();
        Creds {
            key: claims.access_key_id,
            secret: claims.secret_access_key,
            token: Some(token),
        }
    }

    async fn audit(&self, action: &str) -> Vec<AuditEvent> {
        crate::testing::audit(&self.app, action).await
    }

    /// The root user's record as stored, to show that a refused call changed nothing.
    async fn root_record(&self) -> (User, usize) {
        let root = self.directory().user("root").await.unwrap();
        let revocations = self.app.store.revocations().await.unwrap().len();
        (root, revocations)
    }
}

/// Every admin route that changes a user, as (action, method, path, body) for user `u`.
fn user_changing_routes(u: &str) -> Vec<(&'static str, Method, String, Option<Value>)> {
    let key = "AKIAAAAAAAAAAAAAAAAA";
    vec![
        (
            "rolegate:DisableUser",
            Method::POST,
            format!("/admin/users/{u}/disable"),
            None,
        ),
        (
            "rolegate:EnableUser",
            Method::POST,
            format!("/admin/users/{u}/enable"),
            None,
        ),
        (
            "rolegate:UpdateLoginProfile",
            Method::PUT,
            format!("/admin/users/{u}/password"),
            Some(json!({"password": "a brand new password"})),
        ),
        (
            "rolegate:CreateVirtualMFADevice",
            Method::POST,
            format!("/admin/users/{u}/mfa/totp"),
            None,
        ),
        (
            "rolegate:EnableMFADevice",
            Method::POST,
            format!("/admin/users/{u}/mfa/totp/enable"),
            Some(json!({"code1": "123456", "code2": "654321"})),
        ),
        (
            "rolegate:DeactivateMFADevice",
            Method::DELETE,
            format!(
                "/admin/users/{u}/mfa?serial=arn%3Aaws%3Aiam%3A%3A{ACCOUNT}%3Amfa%2Froot-account-mfa-device"
            ),
            None,
        ),
        (
            "rolegate:CreateAccessKey",
            Method::POST,
            format!("/admin/users/{u}/access-keys"),
            None,
        ),
        (
            "rolegate:RotateAccessKey",
            Method::POST,
            format!("/admin/users/{u}/access-keys/rotate"),
            None,
        ),
        (
            "rolegate:UpdateAccessKey",
            Method::PUT,
            format!("/admin/users/{u}/access-keys/{key}"),
            Some(json!({"status": "Inactive"})),
        ),
        (
            "rolegate:DeleteAccessKey",
            Method::DELETE,
            format!("/admin/users/{u}/access-keys/{key}"),
            None,
        ),
        (
            "rolegate:PutUserPolicy",
            Method::PUT,
            format!("/admin/users/{u}/policies/everything"),
            Some(json!({"document": {"Version": "2012-10-17", "Statement": [
                {"Effect": "Deny", "Action": "*", "Resource": "*"}]}})),
        ),
        (
            "rolegate:DeleteUserPolicy",
            Method::DELETE,
            format!("/admin/users/{u}/policies/root-policy"),
            None,
        ),
        (
            "rolegate:AddUserToGroup",
            Method::PUT,
            format!("/admin/groups/helpdesk/members/{u}"),
            None,
        ),
        (
            "rolegate:RemoveUserFromGroup",
            Method::DELETE,
            format!("/admin/groups/helpdesk/members/{u}"),
            None,
        ),
        (
            "rolegate:RevokeSessions",
            Method::POST,
            "/admin/sessions/revoke".to_string(),
            Some(json!({"scope": "user", "value": u, "reason": "helpdesk ticket"})),
        ),
        (
            "rolegate:DeleteUser",
            Method::DELETE,
            format!("/admin/users/{u}"),
            None,
        ),
    ]
}

/// The grants a helpdesk may be given: `rolegate:*` on every user (and group, for memberships,
/// and the session revocation resource), and `rolegate:*` on everything.
const GRANTS: &[(&str, &[&str])] = &[
    (
        "helpdesk",
        &[
            "arn:aws:iam::111122223333:user/*",
            "arn:aws:iam::111122223333:group/*",
            "arn:aws:rolegate:::*",
        ],
    ),
    ("superuser", &["*"]),
];

#[tokio::test]
async fn a_grant_on_every_user_or_on_everything_stops_at_the_root_user() {
    let f = Fixture::new().await;
    f.directory().create_group("helpdesk", None).await.unwrap();
    // Root holds a policy the helpdesk would like to remove.
    f.admin(
        Method::PUT,
        "/admin/users/root/policies/root-policy",
        Some(json!({"document": {"Version": "2012-10-17", "Statement": [
            {"Effect": "Allow", "Action": "rolegate:GetUser", "Resource": "*"}]}})),
    )
    .await;
    for (caller, resources) in GRANTS {
        let creds = f.user_with_grant(caller, resources).await;
        for target in ["root", "Root", "ROOT"] {
            for (action, method, path, body) in user_changing_routes(target) {
                let before = f.root_record().await;
                let a = f.signed(&creds, method.clone(), &path, body).await;
                let case = format!("{caller} {method} {path}: {} {}", a.status, a.body);
                assert_eq!(a.status, StatusCode::FORBIDDEN, "{case}");
                let message = a.body["error"].as_str().unwrap_or_default();
                assert!(message.starts_with("AccessDenied"), "{case}");
                assert!(message.contains(ROOT_RESERVED), "{case}");
                assert_eq!(f.root_record().await, before, "{case}: root changed");
                let events = f.audit(action).await;
                assert!(
                    events.iter().any(|e| e.decision == "deny"
                        && e.reason
                            .as_deref()
                            .is_some_and(|r| r.starts_with(ROOT_RESERVED))
                        && e.principal.as_deref()
                            == Some(&format!("arn:aws:iam::{ACCOUNT}:user/{caller}"))),
                    "{case}: no audit event with the reason"
                );
            }
        }
        // The same grant does reach an ordinary user: the refusal above is root's alone.
        let victim = format!("victim-of-{caller}");
        f.directory().create_user(&victim, None).await.unwrap();
        for (_, method, path, body) in user_changing_routes(&victim) {
            let a = f.signed(&creds, method.clone(), &path, body).await;
            let message = a.body["error"].as_str().unwrap_or_default();
            assert!(
                !message.contains(ROOT_RESERVED) && !message.contains("is not authorized"),
                "{caller} {method} {path}: {} {}",
                a.status,
                a.body
            );
        }
    }
    let root = f.directory().user("root").await.unwrap();
    assert!(root.password_hash.is_none() && root.mfa_devices.is_empty());
    assert!(root.policies.contains_key("root-policy"));
}

#[tokio::test]
async fn the_admin_token_and_root_itself_signed_in_with_mfa_may_change_root() {
    let f = Fixture::new().await;
    // Reading root stays under the policies.
    let reader = f.user_with_grant("reader", &["*"]).await;
    let a = f
        .signed(&reader, Method::GET, "/admin/users/root", None)
        .await;
    assert_eq!(a.status, StatusCode::OK, "{}", a.body);
    assert_eq!(a.body["root"], json!(true));
    // The admin token changes root.
    f.set_password("root", "the root password, long").await;
    let grant = json!({"document": {"Version": "2012-10-17", "Statement": [
        {"Effect": "Allow", "Action": "rolegate:*", "Resource": "*"}]}});
    let a = f
        .admin(
            Method::PUT,
            "/admin/users/root/policies/all",
            Some(grant.clone()),
        )
        .await;
    assert_eq!(a.status, StatusCode::OK, "{}", a.body);

    let root = f.directory().user("root").await.unwrap();
    // Root's own session with MFA passes; without MFA it is not "root itself".
    let with_mfa = f.user_session(&root, true);
    let a = f
        .signed(
            &with_mfa,
            Method::PUT,
            "/admin/users/root/policies/more",
            Some(grant.clone()),
        )
        .await;
    assert_eq!(a.status, StatusCode::OK, "{}", a.body);
    let without_mfa = f.user_session(&root, false);
    let a = f
        .signed(
            &without_mfa,
            Method::DELETE,
            "/admin/users/root/policies/more",
            None,
        )
        .await;
    assert_eq!(a.status, StatusCode::FORBIDDEN, "{}", a.body);
    assert!(a.body["error"].as_str().unwrap().contains(ROOT_RESERVED));
    // Another user's session with MFA is not root either.
    let other = f.user_with_grant("other", &["*"]).await;
    drop(other);
    let other = f.directory().user("other").await.unwrap();
    let a = f
        .signed(
            &f.user_session(&other, true),
            Method::DELETE,
            "/admin/users/root/policies/more",
            None,
        )
        .await;
    assert_eq!(a.status, StatusCode::FORBIDDEN, "{}", a.body);
    assert!(f
        .directory()
        .user("root")
        .await
        .unwrap()
        .policies
        .contains_key("more"));
}

#[tokio::test]
async fn names_reserved_for_the_root_user_are_refused_at_creation() {
    let f = Fixture::new().await;
    for name in [
        "root",
        "Root",
        "root-account-mfa-device",
        "ROOT-Account-MFA-Device",
    ] {
        let a = f
            .admin(Method::POST, "/admin/users", Some(json!({"name": name})))
            .await;
        assert_eq!(a.status, StatusCode::BAD_REQUEST, "{name}: {}", a.body);
        let message = a.body["error"].as_str().unwrap_or_default();
        assert!(message.contains("reserved"), "{name}: {message}");
        assert!(
            f.directory().users().await.unwrap().len() == 1,
            "{name}: a user was created"
        );
    }
    // Near names are ordinary.
    for name in [
        "root2",
        "rootkit",
        "account-mfa-device",
        "root-account-mfa-device2",
    ] {
        let a = f
            .admin(Method::POST, "/admin/users", Some(json!({"name": name})))
            .await;
        assert_eq!(a.status, StatusCode::OK, "{name}: {}", a.body);
    }
}

#[tokio::test]
async fn explain_says_an_email_domain_rule_needs_a_verified_address() {
    let f = Fixture::new().await;
    // (provider, email_verified or None for absent, matches, words in the reason)
    let cases = [
        ("consumer", None, false, "email_verified is absent"),
        (
            "consumer",
            Some(json!(false)),
            false,
            "email_verified is false",
        ),
        (
            "consumer",
            Some(json!("true")),
            false,
            "email_verified is the string \"true\", not the boolean true",
        ),
        (
            "consumer",
            Some(json!(true)),
            true,
            "verified (email_verified is true)",
        ),
        ("workforce", None, true, "hands out verified addresses only"),
        (
            "workforce",
            Some(json!(false)),
            false,
            "email_verified is false",
        ),
    ];
    for (provider, verified, matches, words) in cases {
        let mut claims = json!({"sub": "ana", "email": "ana@example.com"});
        if let Some(v) = &verified {
            claims["email_verified"] = v.clone();
        }
        let a = f
            .admin(
                Method::POST,
                "/admin/assignments/explain",
                Some(json!({"provider": provider, "claims": claims})),
            )
            .await;
        let case = format!("{provider} with email_verified {verified:?}: {}", a.body);
        assert_eq!(a.status, StatusCode::OK, "{case}");
        let rule = &a.body["rules"][0];
        assert_eq!(rule["matched"], json!(matches), "{case}");
        let reason = rule["reason"].as_str().unwrap_or_default();
        assert!(reason.contains(words), "{case}");
        if !matches {
            assert!(reason.starts_with("e-mail not verified"), "{case}");
        }
        let assigned = a.body["assignments"].as_array().unwrap();
        assert_eq!(!assigned.is_empty(), matches, "{case}");
    }
}

#[tokio::test]
async fn a_disabled_user_signs_in_with_nothing_until_enabled_and_root_cannot_be_disabled() {
    let f = Fixture::new().await;
    let helpdesk = f.user_with_grant("helpdesk", &["*"]).await;
    let bob_key = f.user_with_grant("bob", &["*"]).await;
    let password = "bob's long enough password";
    f.set_password("bob", password).await;
    let bob = f.directory().user("bob").await.unwrap();
    let bob_session = f.user_session(&bob, false);
    let sign_in = || async {
        f.send(
            Request::post("/login/password")
                .header("content-type", "application/json")
                .body(Body::from(
                    json!({"user": "bob", "password": password}).to_string(),
                ))
                .unwrap(),
        )
        .await
    };
    assert_eq!(sign_in().await.status, StatusCode::OK);
    let whoami = |c: Creds| {
        let f = &f;
        async move { f.signed(&c, Method::GET, "/admin/users/bob", None).await }
    };
    assert_eq!(whoami(bob_session.clone()).await.status, StatusCode::OK);

    // A caller whose policies allow it disables bob: his sessions are revoked at once, his key
    // and password are refused, and the record says so.
    let a = f
        .signed(&helpdesk, Method::POST, "/admin/users/bob/disable", None)
        .await;
    assert_eq!(a.status, StatusCode::OK, "{}", a.body);
    assert_eq!(a.body["active"], json!(false));
    assert_eq!(a.body["disabled_at"], json!(T0));
    let a = sign_in().await;
    assert_eq!(a.status, StatusCode::UNAUTHORIZED, "{}", a.body);
    let refused = f.audit("rolegate:SignIn").await;
    assert!(
        refused
            .iter()
            .any(|e| e.reason.as_deref() == Some("user bob is disabled")),
        "{refused:?}"
    );
    assert_eq!(
        whoami(bob_session.clone()).await.status,
        StatusCode::FORBIDDEN
    );
    assert_eq!(whoami(bob_key.clone()).await.status, StatusCode::FORBIDDEN);
    let revoked = f.app.store.revocations().await.unwrap();
    assert!(
        revoked.iter().any(|r| r.reason == "user disabled"
            && r.scope == crate::store::RevocationScope::User(bob.user_id.clone())),
        "{revoked:?}"
    );

    // Enabled again: the password and the key work; the session ended by the disabling stays
    // ended.
    let a = f.admin(Method::POST, "/admin/users/bob/enable", None).await;
    assert_eq!(a.status, StatusCode::OK, "{}", a.body);
    assert_eq!(a.body["active"], json!(true));
    assert_eq!(sign_in().await.status, StatusCode::OK);
    assert_eq!(whoami(bob_key).await.status, StatusCode::OK);
    assert_eq!(whoami(bob_session).await.status, StatusCode::FORBIDDEN);

    // Root cannot be disabled, not even with the admin token, and stays as it was.
    let before = f.root_record().await;
    let a = f
        .admin(Method::POST, "/admin/users/root/disable", None)
        .await;
    assert_eq!(a.status, StatusCode::BAD_REQUEST, "{}", a.body);
    assert!(a.body["error"]
        .as_str()
        .unwrap()
        .contains("root user cannot be disabled"));
    assert_eq!(f.root_record().await, before);
}

mod api;

#[tokio::test]
async fn a_sign_in_past_the_hashing_queue_is_refused_with_503_and_counts_no_failure() {
    // The sign-in limits off, so that more attempts than lock a user reach the hasher.
    let (app, _clock) = config()
        .with("[rate_limits]\nlogin_per_ip = { per_minute = 0 }\nlogin_per_user = { per_minute = 0 }\n")
        .build(T0)
        .await;
    app.directory.as_ref().unwrap().ensure_root().await.unwrap();
    let router = crate::web::router(app.clone());
    let f = Fixture { app, router };
    crate::testing::directory_user(&f.app, "bob", &[]).await;
    let password = "bob's long enough password";
    f.set_password("bob", password).await;
    let sign_in = |password: &str| {
        Request::post("/login/password")
            .header("content-type", "application/json")
            .body(Body::from(
                json!({"user": "bob", "password": password}).to_string(),
            ))
            .unwrap()
    };
    let d = f.directory();
    d.hasher().test_fill(true);
    // More wrong passwords than lock a user, while the hasher is full: each refused at once,
    // none counted as a failure.
    for i in 0..=crate::idp::local::PASSWORD_MAX_FAILURES {
        let resp = f
            .router
            .clone()
            .oneshot(sign_in("a wrong password, long"))
            .await
            .unwrap();
        assert_eq!(
            resp.status(),
            StatusCode::SERVICE_UNAVAILABLE,
            "attempt {i}"
        );
        assert_eq!(resp.headers()["retry-after"], "1");
        let body = axum::body::to_bytes(resp.into_body(), 1 << 16)
            .await
            .unwrap();
        let body: Value = serde_json::from_slice(&body).unwrap();
        assert!(
            body["error"]
                .as_str()
                .unwrap()
                .starts_with("password hashing is at capacity ("),
            "{body}"
        );
    }
    let refused = f.audit("rolegate:SignIn").await;
    assert_eq!(refused.len(), 11, "{refused:?}");
    for e in &refused {
        let reason = e.reason.as_deref().unwrap_or_default();
        assert!(
            reason.starts_with("password hashing is at capacity (")
                && reason.ends_with("; try again shortly"),
            "{e:?}"
        );
        assert_eq!(e.decision, "error", "{e:?}");
    }
    d.hasher().test_fill(false);
    let a = f.send(sign_in(password)).await;
    assert_eq!(a.status, StatusCode::OK, "not locked: {}", a.body);
}
