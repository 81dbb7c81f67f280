//! Credentials the portal issued, through the router: listed under the portal session they came
//! from, ended one by one (every call signed with them refused at once, the others untouched),
//! ended with their portal session, and the refusals of ids that are not the user's or not live.

use crate::app::App;
use crate::clock::FixedClock;
use crate::portal::SignedInIdentity;
use crate::testing::{self, post_form, send, text, ACCOUNT, PUBLIC_URL};
use crate::web::testing::{sts_post, Creds, T0};
use axum::body::Body;
use axum::http::{header, Request, StatusCode};
use serde_json::{json, Value};
use std::sync::Arc;

const ADMIN_TOKEN: &str = "an-admin-token-of-forty-characters-0001";

pub(super) struct Fixture {
    pub(super) app: Arc<App>,
    pub(super) clock: FixedClock,
}

/// A portal session: its `Cookie` header and CSRF token.
pub(super) type Portal = (String, String);

fn config() -> testing::TestConfig {
    testing::config()
        .permission_set("Dev", "")
        .with("[admin]\ntoken_env = \"ADMIN_TOKEN\"\n[portal]\nsession_max_hours = 12\n[sso]\n")
        .env("ADMIN_TOKEN", ADMIN_TOKEN)
}

impl Fixture {
    pub(super) async fn new() -> Self {
        let (app, clock) = config().build(T0).await;
        Self { app, clock }
    }

    /// Another replica over the same store and clock.
    async fn replica(&self) -> Arc<App> {
        App::build(
            config().load(),
            self.app.store.clone(),
            Arc::new(self.clock.clone()),
        )
        .await
        .unwrap()
    }

    /// A portal session of the new directory user `name` (group dev).
    pub(super) async fn signed_in(&self, name: &str) -> Portal {
        let user = match self.app.directory.as_ref().unwrap().user(name).await {
            Ok(u) => u,
            Err(_) => testing::directory_user(&self.app, name, &["dev"]).await,
        };
        let identity = SignedInIdentity {
            provider: "local".into(),
            subject: user.name.clone(),
            claims: serde_json::Map::new(),
            mfa_time: None,
            local_groups: user.groups.clone(),
            origin_user: Some(user.user_id.clone()),
            signed_in_at: T0,
        };
        testing::portal_session(&self.app, identity, T0).await
    }

    /// A portal session, with MFA, of the new directory user `name` whose group `admins` may do
    /// every `rolegate:*` action: an operator of the console.
    pub(super) async fn operator(&self, name: &str) -> Portal {
        const ADMIN: &str = r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"rolegate:*","Resource":"*"}]}"#;
        let d = self.app.directory.as_ref().unwrap();
        d.create_group("admins", None).await.unwrap();
        d.put_policy(crate::idp::local::Holder::Group("admins"), "all", ADMIN)
            .await
            .unwrap();
        let user = testing::directory_user(&self.app, name, &["admins"]).await;
        let identity = SignedInIdentity {
            provider: "local".into(),
            subject: user.name.clone(),
            claims: serde_json::Map::new(),
            mfa_time: Some(T0),
            local_groups: user.groups.clone(),
            origin_user: Some(user.user_id.clone()),
            signed_in_at: T0,
        };
        testing::portal_session(&self.app, identity, T0).await
    }

    /// Command line access to Dev from the portal session: the credentials on the page.
    pub(super) async fn command_line_access(&self, (cookie, csrf): &Portal) -> Creds {
        let form = [
            ("csrf", csrf.as_str()),
            ("account", ACCOUNT),
            ("permission_set", "Dev"),
        ];
        let resp = post_form(&self.app, "/portal/credentials", cookie, PUBLIC_URL, &form).await;
        assert_eq!(resp.status(), StatusCode::OK);
        let page = text(resp).await;
        let value = |name: &str| testing::quoted_after(&page, &format!("export {name}=\""));
        Creds {
            key: value("AWS_ACCESS_KEY_ID"),
            secret: value("AWS_SECRET_ACCESS_KEY"),
            token: Some(value("AWS_SESSION_TOKEN")),
        }
    }

    /// An admin API call with the admin token.
    pub(super) async fn admin(&self, method: &str, path: &str, body: Value) -> (StatusCode, Value) {
        let req = Request::builder()
            .method(method)
            .uri(path)
            .header(header::AUTHORIZATION, format!("Bearer {ADMIN_TOKEN}"))
            .header(header::CONTENT_TYPE, "application/json")
            .body(Body::from(body.to_string()))
            .unwrap();
        let resp = send(&self.app, req).await;
        let status = resp.status();
        let text = text(resp).await;
        (
            status,
            serde_json::from_str(&text).unwrap_or_else(|_| json!(text)),
        )
    }

    pub(super) async fn sessions(&self, user: &str) -> Value {
        let (status, v) = self
            .admin("GET", &format!("/admin/users/{user}/sessions"), Value::Null)
            .await;
        assert_eq!(status, StatusCode::OK, "{v}");
        v
    }

    pub(super) async fn end(&self, user: &str, body: Value) -> (StatusCode, Value) {
        let path = format!("/admin/users/{user}/sessions/end");
        self.admin("POST", &path, body).await
    }

    /// The status and body of an STS call signed with `creds`.
    pub(super) async fn sts(&self, creds: &Creds, form: &str) -> (StatusCode, String) {
        let resp = send(&self.app, sts_post(creds, form).request()).await;
        (resp.status(), text(resp).await)
    }

    pub(super) async fn caller_identity(&self, creds: &Creds) -> StatusCode {
        self.sts(creds, "Action=GetCallerIdentity&Version=2011-06-15")
            .await
            .0
    }

    /// Whether a `rolegate:EndUserSession` event with `decision` has a reason with every one of
    /// `parts`.
    pub(super) async fn audited(&self, decision: &str, parts: &[&str]) -> bool {
        testing::audit(&self.app, "rolegate:EndUserSession")
            .await
            .iter()
            .filter(|e| e.decision == decision)
            .filter_map(|e| e.reason.as_deref())
            .any(|r| parts.iter().all(|p| r.contains(p)))
    }
}

/// The credential ids listed under `user`'s only portal session, by access key id.
pub(super) fn listed(sessions: &Value) -> Vec<(String, String, String)> {
    let portal = sessions["portal"].as_array().unwrap();
    portal
        .iter()
        .flat_map(|p| p["credentials"].as_array().unwrap().iter())
        .map(|c| {
            (
                c["access_key_id"].as_str().unwrap().to_string(),
                c["id"].as_str().unwrap().to_string(),
                c["how"].as_str().unwrap().to_string(),
            )
        })
        .collect()
}

#[tokio::test]
async fn portal_credentials_are_listed_under_their_portal_session_and_end_one_by_one() {
    let f = Fixture::new().await;
    let bob = f.signed_in("bob").await;
    let first = f.command_line_access(&bob).await;
    let second = f.command_line_access(&bob).await;
    let carl = f.signed_in("carl").await;
    let carls = f.command_line_access(&carl).await;
    for c in [&first, &second, &carls] {
        assert_eq!(f.caller_identity(c).await, StatusCode::OK);
    }

    let sessions = f.sessions("bob").await;
    assert_eq!(
        sessions["portal"].as_array().unwrap().len(),
        1,
        "{sessions}"
    );
    let creds = listed(&sessions);
    let mut keys: Vec<&str> = creds.iter().map(|(k, _, _)| k.as_str()).collect();
    keys.sort();
    let mut want = [first.key.as_str(), second.key.as_str()];
    want.sort();
    assert_eq!(keys, want, "{sessions}");
    assert!(creds.iter().all(|(_, _, how)| how == "command_line"));
    let c0 = &sessions["portal"][0]["credentials"][0];
    assert_eq!(c0["account"], ACCOUNT);
    assert_eq!(c0["permission_set"], "Dev");
    assert_eq!(c0["expires_at"], T0 + 3600);
    let first_id = creds
        .iter()
        .find(|(k, _, _)| *k == first.key)
        .unwrap()
        .1
        .clone();
    let carls_id = listed(&f.sessions("carl").await)[0].1.clone();

    // Another user's credentials, an unknown id: refused, nothing ended.
    for (id, why) in [
        (carls_id.as_str(), "not to user bob"),
        ("no-such-session", "no such credentials session"),
    ] {
        let (status, body) = f.end("bob", json!({"kind": "credentials", "id": id})).await;
        assert_eq!(status, StatusCode::NOT_FOUND, "{body}");
        assert!(
            body.to_string().contains("no such credentials session"),
            "{body}"
        );
        assert!(f.audited("deny", &[id, why]).await, "{why}");
    }
    assert_eq!(f.caller_identity(&carls).await, StatusCode::OK);

    let (status, body) = f
        .end(
            "bob",
            json!({"kind": "credentials", "id": first_id, "reason": "laptop lost"}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["access_key_id"], first.key.as_str());
    let parts = [first.key.as_str(), "laptop lost", "command_line", "bob"];
    assert!(f.audited("allow", &parts).await);
    // Every call signed with the ended credentials is refused; the other set still works.
    let role = format!("arn:aws:iam::{ACCOUNT}:role/RolegateSSO_Dev");
    for form in [
        "Action=GetCallerIdentity&Version=2011-06-15".to_string(),
        "Action=GetFederationToken&Version=2011-06-15&Name=bob".to_string(),
        format!("Action=AssumeRole&Version=2011-06-15&RoleArn={role}&RoleSessionName=chain"),
    ] {
        let (status, body) = f.sts(&first, &form).await;
        assert_eq!(status, StatusCode::FORBIDDEN, "{form}: {body}");
        assert!(body.contains("has been revoked"), "{form}: {body}");
    }
    assert_eq!(f.caller_identity(&second).await, StatusCode::OK);
    let keys: Vec<String> = listed(&f.sessions("bob").await)
        .into_iter()
        .map(|(k, _, _)| k)
        .collect();
    assert_eq!(keys, std::slice::from_ref(&second.key));
    // Ending them again is refused with what happened.
    let (status, body) = f
        .end("bob", json!({"kind": "credentials", "id": first_id}))
        .await;
    assert_eq!(status, StatusCode::CONFLICT, "{body}");
    assert!(body.to_string().contains("already ended"), "{body}");

    // Ending the portal session ends the credentials issued from it.
    let portal_id = f.sessions("bob").await["portal"][0]["id"]
        .as_str()
        .unwrap()
        .to_string();
    let (status, body) = f
        .end("bob", json!({"kind": "portal", "id": portal_id}))
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["credentials_revoked"], 1);
    assert!(f.audited("allow", &[&portal_id, &second.key]).await);
    assert_eq!(f.caller_identity(&second).await, StatusCode::FORBIDDEN);
    let sessions = f.sessions("bob").await;
    assert_eq!(sessions["portal"], json!([]));
    assert_eq!(sessions["credentials_without_portal_session"], json!([]));
    // Carl's were never touched.
    assert_eq!(f.caller_identity(&carls).await, StatusCode::OK);
}

#[tokio::test]
async fn credentials_outlive_a_signed_out_portal_session_in_the_list_and_expired_ones_end_nothing()
{
    let f = Fixture::new().await;
    let ana = f.signed_in("ana").await;
    let creds = f.command_line_access(&ana).await;
    // The person signs out of the portal: the credentials are still valid, so still listed.
    let portal_id = f.sessions("ana").await["portal"][0]["id"]
        .as_str()
        .unwrap()
        .to_string();
    crate::portal::session::delete(f.app.store.as_ref(), &portal_id)
        .await
        .unwrap();
    let sessions = f.sessions("ana").await;
    let after = &sessions["credentials_without_portal_session"];
    assert_eq!(after[0]["access_key_id"], creds.key.as_str(), "{sessions}");
    assert_eq!(after[0]["portal_session"], portal_id.as_str());
    let id = after[0]["id"].as_str().unwrap().to_string();
    // Once expired: no longer listed, and ending them is refused and changes nothing.
    f.clock.advance(chrono::Duration::seconds(3600));
    let sessions = f.sessions("ana").await;
    assert_eq!(sessions["credentials_without_portal_session"], json!([]));
    let (status, body) = f.end("ana", json!({"kind": "credentials", "id": id})).await;
    assert_eq!(status, StatusCode::CONFLICT, "{body}");
    assert!(body.to_string().contains("expired"), "{body}");
    assert!(f.app.revocations.is_empty());
    // The background clean-up removes the record.
    crate::portal::purge_expired(&f.app).await.unwrap();
    let left = crate::portal::issued::list(f.app.store.as_ref())
        .await
        .unwrap();
    assert!(left.is_empty(), "{left:?}");
}

#[tokio::test]
async fn a_console_opened_from_the_portal_is_listed_and_ending_it_ends_the_console() {
    let f = Fixture::new().await;
    let (cookie, csrf) = f.signed_in("dora").await;
    let form = [
        ("csrf", csrf.as_str()),
        ("account", ACCOUNT),
        ("permission_set", "Dev"),
    ];
    let resp = post_form(&f.app, "/portal/console", &cookie, PUBLIC_URL, &form).await;
    assert_eq!(resp.status(), StatusCode::SEE_OTHER);
    let login = testing::location(&resp);
    let resp = testing::get(&f.app, &login, "").await;
    let console = testing::set_cookie(&resp, crate::portal::federation::CONSOLE_COOKIE)
        .unwrap_or_else(|| panic!("no console cookie: {}", resp.status()));
    let console = format!("{}={console}", crate::portal::federation::CONSOLE_COOKIE);
    assert_eq!(
        testing::get(&f.app, "/console", &console).await.status(),
        StatusCode::OK
    );
    let creds = listed(&f.sessions("dora").await);
    assert_eq!(creds.len(), 1);
    assert_eq!(creds[0].2, "console_sign_in");
    let (status, body) = f
        .end("dora", json!({"kind": "credentials", "id": creds[0].1}))
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(
        testing::get(&f.app, "/console", &console).await.status(),
        StatusCode::UNAUTHORIZED
    );
}

#[tokio::test]
async fn the_console_lists_portal_credentials_on_the_users_page_and_revokes_one() {
    let f = Fixture::new().await;
    let eve = f.signed_in("eve").await;
    let kept = f.command_line_access(&eve).await;
    let ended = f.command_line_access(&eve).await;
    let (cookie, csrf) = f.operator("ada").await;
    let page = text(testing::get(&f.app, "/admin/console/users/eve", &cookie).await).await;
    for c in [&kept, &ended] {
        assert!(
            page.contains(&format!("<code>{}</code> Dev in {ACCOUNT}", c.key)),
            "{page}"
        );
    }
    assert_eq!(page.matches(">Revoke</button>").count(), 2, "{page}");
    let id = listed(&f.sessions("eve").await)
        .into_iter()
        .find(|(k, _, _)| *k == ended.key)
        .unwrap()
        .1;
    assert!(page.contains(&format!(
        "value=\"credentials\"><input type=\"hidden\" name=\"id\" value=\"{id}\""
    )));
    let form = [
        ("csrf", csrf.as_str()),
        ("kind", "credentials"),
        ("id", id.as_str()),
    ];
    let path = "/admin/console/users/eve/end-session";
    let resp = post_form(&f.app, path, &cookie, PUBLIC_URL, &form).await;
    assert_eq!(resp.status(), StatusCode::SEE_OTHER);
    assert_eq!(f.caller_identity(&ended).await, StatusCode::FORBIDDEN);
    assert_eq!(f.caller_identity(&kept).await, StatusCode::OK);
    let page = text(testing::get(&f.app, "/admin/console/users/eve", &cookie).await).await;
    assert!(!page.contains(&ended.key), "{page}");
    assert_eq!(page.matches(">Revoke</button>").count(), 1, "{page}");
    // Ending them again: the reason beside the form, nothing changed.
    let resp = post_form(&f.app, path, &cookie, PUBLIC_URL, &form).await;
    assert_eq!(resp.status(), StatusCode::BAD_REQUEST);
    assert!(text(resp).await.contains("already ended"));
    assert!(
        f.audited("allow", &[&ended.key, "ended by an operator"])
            .await
    );
}

#[tokio::test]
async fn another_replica_refuses_ended_portal_credentials_once_it_refreshes_its_revocations() {
    let f = Fixture::new().await;
    let fay = f.signed_in("fay").await;
    let creds = f.command_line_access(&fay).await;
    let other = f.replica().await;
    let on_other = |creds: &Creds| {
        let req = sts_post(creds, "Action=GetCallerIdentity&Version=2011-06-15").request();
        let other = other.clone();
        async move { send(&other, req).await.status() }
    };
    assert_eq!(on_other(&creds).await, StatusCode::OK);
    let id = listed(&f.sessions("fay").await)[0].1.clone();
    let (status, body) = f.end("fay", json!({"kind": "credentials", "id": id})).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    // What the other replica does every refresh interval.
    other
        .revocations
        .refresh(other.store.as_ref())
        .await
        .unwrap();
    assert_eq!(on_other(&creds).await, StatusCode::FORBIDDEN);
}
