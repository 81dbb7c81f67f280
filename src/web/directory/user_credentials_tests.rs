//! Every credential set a user was issued, through the router: the list shows only those still
//! valid (a revocation of the user, the role, the subject, everything, the session or the access
//! key ends them in the list as it does at the edge), a password sign-in's credentials are listed and ended one by
//! one, and so are those of an SSO sign-in, whether or not a Logout would revoke them.

use super::user_sessions_tests::{listed, Fixture};
use crate::portal::SignedInIdentity;
use crate::testing::{send, text, ACCOUNT};
use crate::web::testing::Creds;
use axum::body::Body;
use axum::http::{Request, StatusCode};
use serde_json::{json, Value};

/// Every access key id `ListUserSessions` lists for the user, wherever it is listed.
fn every_key(sessions: &Value) -> Vec<String> {
    let mut keys: Vec<String> = listed(sessions).into_iter().map(|(k, _, _)| k).collect();
    let without = sessions["credentials_without_portal_session"].as_array();
    let sso = sessions["sso"].as_array().into_iter().flatten();
    let sso = sso.flat_map(|s| s["credentials"].as_array().unwrap().iter());
    for c in without.into_iter().flatten().chain(sso) {
        keys.push(c["access_key_id"].as_str().unwrap().to_string());
    }
    keys
}

impl Fixture {
    async fn revoke(&self, body: Value) {
        let (status, v) = self.admin("POST", "/admin/sessions/revoke", body).await;
        assert_eq!(status, StatusCode::OK, "{v}");
    }

    /// Gives the directory user `name` a password; returns it.
    async fn password(&self, name: &str) -> &'static str {
        let password = "a long enough password for signing in";
        let path = format!("/admin/users/{name}/password");
        let (status, v) = self
            .admin("PUT", &path, json!({"password": password}))
            .await;
        assert_eq!(status, StatusCode::OK, "{v}");
        password
    }

    /// `POST /login/password` asking for Dev credentials.
    async fn password_sign_in(&self, name: &str, password: &str) -> Creds {
        let body = json!({"user": name, "password": password, "account": ACCOUNT,
            "permission_set": "Dev"});
        let req = Request::post("/login/password")
            .header("content-type", "application/json")
            .body(Body::from(body.to_string()))
            .unwrap();
        let resp = send(&self.app, req).await;
        assert_eq!(resp.status(), StatusCode::OK);
        let v: Value = serde_json::from_str(&text(resp).await).unwrap();
        let c = &v["credentials"];
        Creds {
            key: c["AccessKeyId"].as_str().unwrap().to_string(),
            secret: c["SecretAccessKey"].as_str().unwrap().to_string(),
            token: Some(c["SessionToken"].as_str().unwrap().to_string()),
        }
    }

    /// An SSO sign-in of the directory user `name` (group dev): its access token.
    async fn sso_signed_in(&self, name: &str) -> String {
        let identity = SignedInIdentity {
            provider: "local".into(),
            subject: name.into(),
            claims: serde_json::Map::new(),
            mfa_time: None,
            local_groups: vec!["dev".into()],
            origin_user: None,
            signed_in_at: self.app.clock.now().timestamp(),
        };
        crate::sso::testing::signed_in(&self.app, identity)
            .await
            .access_token
    }

    /// `GetRoleCredentials` for Dev with the SSO access token.
    async fn role_credentials(&self, token: &str) -> Creds {
        let path = format!("/federation/credentials?role_name=Dev&account_id={ACCOUNT}");
        let req = Request::get(path)
            .header(crate::sso::portal_api::BEARER_HEADER, token)
            .body(Body::empty())
            .unwrap();
        let resp = send(&self.app, req).await;
        assert_eq!(resp.status(), StatusCode::OK);
        let v: Value = serde_json::from_str(&text(resp).await).unwrap();
        let c = &v["roleCredentials"];
        Creds {
            key: c["accessKeyId"].as_str().unwrap().to_string(),
            secret: c["secretAccessKey"].as_str().unwrap().to_string(),
            token: Some(c["sessionToken"].as_str().unwrap().to_string()),
        }
    }
}

#[tokio::test]
async fn credentials_ended_by_any_revocation_are_no_longer_listed_as_valid() {
    let role = format!("arn:aws:iam::{ACCOUNT}:role/RolegateSSO_Dev");
    for scope in ["user", "role", "subject", "all", "session", "access-key"] {
        let f = Fixture::new().await;
        let bob = f.signed_in("bob").await;
        let portal = f.command_line_access(&bob).await;
        let password = f.password("bob").await;
        let signed_in = f.password_sign_in("bob", password).await;
        let token = f.sso_signed_in("bob").await;
        let sso = f.role_credentials(&token).await;
        let carl = f.signed_in("carl").await;
        let carls = f.command_line_access(&carl).await;
        let mut keys = every_key(&f.sessions("bob").await);
        keys.sort();
        let mut want = vec![portal.key.clone(), signed_in.key.clone(), sso.key.clone()];
        want.sort();
        assert_eq!(keys, want, "{scope}");

        let body = match scope {
            "user" => json!({"scope": "user", "value": "bob"}),
            "role" => json!({"scope": "role", "value": role}),
            "subject" => json!({"scope": "subject", "value": "bob", "provider": "local"}),
            "all" => json!({"scope": "all", "value": ""}),
            // One access key: the SSO credentials only.
            "access-key" => json!({"scope": "access-key", "value": sso.key}),
            _ => {
                // `rolegate revoke` of one session: the portal's credentials only.
                let id = listed(&f.sessions("bob").await)[0].1.clone();
                json!({"scope": "session", "value": id})
            }
        };
        let mut body = body;
        body["reason"] = json!("incident 7");
        f.revoke(body).await;

        let ended: Vec<&str> = match scope {
            "session" => vec![&portal.key],
            "access-key" => vec![&sso.key],
            _ => vec![&portal.key, &signed_in.key, &sso.key],
        };
        for c in [&portal, &signed_in, &sso] {
            let want = if ended.contains(&c.key.as_str()) {
                StatusCode::FORBIDDEN
            } else {
                StatusCode::OK
            };
            assert_eq!(f.caller_identity(c).await, want, "{scope}");
        }
        let sessions = f.sessions("bob").await;
        let keys = every_key(&sessions);
        for c in [&portal, &signed_in, &sso] {
            assert_eq!(
                keys.contains(&c.key),
                !ended.contains(&c.key.as_str()),
                "{scope}: {sessions}"
            );
        }
        // The sign-ins themselves: ended by a revocation of the user, the subject or everything.
        let sign_ins_ended = matches!(scope, "user" | "subject" | "all");
        for kind in ["portal", "sso"] {
            let none = sessions[kind].as_array().unwrap().is_empty();
            assert_eq!(none, sign_ins_ended, "{scope}: {sessions}");
        }
        // Another user's credentials: listed as long as the revocation does not end them.
        let carl_ended = matches!(scope, "role" | "all");
        let listed_for_carl = every_key(&f.sessions("carl").await).contains(&carls.key);
        assert_eq!(listed_for_carl, !carl_ended, "{scope}");
        assert_eq!(
            f.caller_identity(&carls).await == StatusCode::OK,
            !carl_ended,
            "{scope}"
        );
    }
}

#[tokio::test]
async fn ending_credentials_a_revocation_already_ended_is_refused_with_its_reason() {
    let f = Fixture::new().await;
    let dora = f.signed_in("dora").await;
    f.command_line_access(&dora).await;
    let id = listed(&f.sessions("dora").await)[0].1.clone();
    let role = format!("arn:aws:iam::{ACCOUNT}:role/RolegateSSO_Dev");
    f.revoke(json!({"scope": "role", "value": role, "reason": "role compromised"}))
        .await;
    let revocations = f.app.revocations.len();
    let (status, body) = f
        .end("dora", json!({"kind": "credentials", "id": id}))
        .await;
    assert_eq!(status, StatusCode::CONFLICT, "{body}");
    assert!(body.to_string().contains("role compromised"), "{body}");
    assert!(f.audited("deny", &[&id, "role compromised"]).await);
    assert_eq!(f.app.revocations.len(), revocations);
    // The portal session itself is not ended by a role's revocation, and is still listed; the
    // credentials it issues from now on are listed again.
    f.clock.advance(chrono::Duration::seconds(2));
    let fresh = f.command_line_access(&dora).await;
    let sessions = f.sessions("dora").await;
    assert_eq!(sessions["portal"].as_array().unwrap().len(), 1);
    assert_eq!(every_key(&sessions), vec![fresh.key]);
}

#[tokio::test]
async fn a_password_sign_ins_credentials_are_listed_and_ended_one_by_one() {
    let f = Fixture::new().await;
    let gil = crate::testing::directory_user(&f.app, "gil", &["dev"]).await;
    let password = f.password("gil").await;
    let first = f.password_sign_in("gil", password).await;
    let second = f.password_sign_in("gil", password).await;
    let sessions = f.sessions("gil").await;
    let without = sessions["credentials_without_portal_session"]
        .as_array()
        .unwrap();
    assert_eq!(without.len(), 2, "{sessions}");
    for c in without {
        assert_eq!(c["how"], "password_sign_in");
        assert_eq!(c["portal_session"], Value::Null);
        assert_eq!(c["account"], ACCOUNT);
        assert_eq!(c["permission_set"], "Dev");
    }
    let id = without
        .iter()
        .find(|c| c["access_key_id"] == first.key.as_str())
        .unwrap()["id"]
        .as_str()
        .unwrap()
        .to_string();
    // Recorded with the directory user it was issued to.
    let (record, _) = crate::portal::issued::get(f.app.store.as_ref(), &id)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(record.origin_user, Some(gil.user_id));

    let (status, body) = f
        .end(
            "gil",
            json!({"kind": "credentials", "id": id, "reason": "leaked"}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert!(
        f.audited("allow", &[&first.key, "a password sign-in", "leaked"])
            .await
    );
    assert_eq!(f.caller_identity(&first).await, StatusCode::FORBIDDEN);
    assert_eq!(f.caller_identity(&second).await, StatusCode::OK);
    assert_eq!(
        every_key(&f.sessions("gil").await),
        vec![second.key.clone()]
    );
    // The console's user page lists them apart from any portal session.
    let (cookie, _) = f.operator("ada").await;
    let page = text(crate::testing::get(&f.app, "/admin/console/users/gil", &cookie).await).await;
    assert!(
        page.contains("Credentials without a portal session"),
        "{page}"
    );
    let shown = format!(
        "<code>{}</code> Dev in {ACCOUNT} (password sign-in)",
        second.key
    );
    assert!(page.contains(&shown), "{page}");
    assert!(!page.contains(&first.key), "{page}");
    // Another user cannot end them.
    crate::testing::directory_user(&f.app, "hal", &["dev"]).await;
    let other = every_key(&f.sessions("gil").await);
    let id = f.sessions("gil").await["credentials_without_portal_session"][0]["id"].clone();
    let (status, body) = f.end("hal", json!({"kind": "credentials", "id": id})).await;
    assert_eq!(status, StatusCode::NOT_FOUND, "{body}");
    assert_eq!(every_key(&f.sessions("gil").await), other);
    assert_eq!(f.caller_identity(&second).await, StatusCode::OK);
}

#[tokio::test]
async fn sso_credentials_are_listed_without_logout_revocation_and_ended_one_by_one() {
    let f = Fixture::new().await;
    assert!(
        !f.app
            .config
            .sso
            .as_ref()
            .unwrap()
            .logout_revokes_credentials
    );
    let token = f.sso_signed_in("ivy").await;
    let first = f.role_credentials(&token).await;
    let second = f.role_credentials(&token).await;
    let sessions = f.sessions("ivy").await;
    let listed = sessions["sso"][0]["credentials"].as_array().unwrap();
    assert_eq!(listed.len(), 2, "{sessions}");
    let one = listed
        .iter()
        .find(|c| c["access_key_id"] == first.key.as_str())
        .unwrap();
    assert_eq!(one["account"], ACCOUNT);
    assert_eq!(one["permission_set"], "Dev");
    let id = one["session_id"].clone();
    let (status, body) = f.end("ivy", json!({"kind": "credentials", "id": id})).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(f.caller_identity(&first).await, StatusCode::FORBIDDEN);
    assert_eq!(f.caller_identity(&second).await, StatusCode::OK);
    assert_eq!(
        every_key(&f.sessions("ivy").await),
        vec![second.key.clone()]
    );
    let (cookie, _) = f.operator("ada").await;
    let page = text(crate::testing::get(&f.app, "/admin/console/users/ivy", &cookie).await).await;
    let shown = format!("<code>{}</code> Dev in {ACCOUNT} until", second.key);
    assert!(page.contains(&shown), "{page}");
    assert!(!page.contains(&first.key), "{page}");
    // Ended once: ending again is refused with the revocation's reason.
    let (status, body) = f.end("ivy", json!({"kind": "credentials", "id": id})).await;
    assert_eq!(status, StatusCode::CONFLICT, "{body}");
    assert!(
        body.to_string().contains("revoked by an operator"),
        "{body}"
    );
}
