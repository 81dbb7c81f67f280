//! The operator console through the router: who may open it, that every change goes through the
//! decision core with the admin API's actions (a helpdesk grant sees and does only that), root's
//! protection, the checks of every form, errors beside their form with nothing changed, a secret
//! shown once, the audit log's filters and exports, and the health page.

use crate::app::App;
use crate::idp::local::Holder;
use crate::portal::SignedInIdentity;
use crate::testing::{self, audit, get, location, post_form, text, PUBLIC_URL};
use axum::http::StatusCode;
use std::sync::Arc;

const T0: i64 = 1_700_000_000;

const ADMIN_POLICY: &str = r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"rolegate:*","Resource":"*"}]}"#;
const HELPDESK_POLICY: &str = r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":["rolegate:UpdateLoginProfile","rolegate:UnlockUser"],"Resource":"arn:aws:iam::111122223333:user/*"}]}"#;

struct Console {
    app: Arc<App>,
}

impl Console {
    async fn new() -> Self {
        let (app, _clock) = testing::config()
            .with(
                "[portal]\n[[oidc_providers]]\nname = \"corp\"\nissuer = \"https://corp.example\"\naudiences = [\"web\"]\n",
            )
            .permission_set("Dev", "")
            .build(T0)
            .await;
        let d = app.directory.clone().unwrap();
        d.ensure_root().await.unwrap();
        d.create_group("admins", None).await.unwrap();
        d.put_policy(Holder::Group("admins"), "console", ADMIN_POLICY)
            .await
            .unwrap();
        d.create_group("helpdesk", None).await.unwrap();
        d.put_policy(Holder::Group("helpdesk"), "console", HELPDESK_POLICY)
            .await
            .unwrap();
        Self { app }
    }

    /// The console and the portal session of `ada`, of group `admins`, signed in with MFA.
    async fn with_admin() -> (Self, (String, String)) {
        let c = Self::new().await;
        let admin = c.signed_in("ada", &["admins"], true).await;
        (c, admin)
    }

    fn directory(&self) -> &crate::idp::local::Directory {
        self.app.directory.as_deref().unwrap()
    }

    /// A portal session of directory user `name` (created in `groups`), with MFA or without.
    async fn signed_in(&self, name: &str, groups: &[&str], mfa: bool) -> (String, String) {
        let user = match self.directory().user(name).await {
            Ok(u) => u,
            Err(_) => testing::directory_user(&self.app, name, groups).await,
        };
        let identity = SignedInIdentity {
            provider: "local".into(),
            subject: user.name.clone(),
            claims: serde_json::Map::new(),
            mfa_time: mfa.then_some(T0),
            local_groups: user.groups.clone(),
            origin_user: Some(user.user_id.clone()),
            signed_in_at: T0,
        };
        testing::portal_session(&self.app, identity, T0).await
    }

    async fn page(&self, path: &str, cookie: &str) -> (StatusCode, String) {
        let resp = get(&self.app, path, cookie).await;
        let status = resp.status();
        (status, text(resp).await)
    }

    /// The page at `path` for the session `cookie`, which answers 200.
    async fn page_ok(&self, path: &str, cookie: &str) -> String {
        let (status, html) = self.page(path, cookie).await;
        assert_eq!(status, StatusCode::OK, "{path}");
        html
    }

    /// Whether directory user `name` has a password set.
    async fn has_password(&self, name: &str) -> bool {
        let user = self.directory().user(name).await.unwrap();
        user.password_hash.is_some()
    }

    async fn post(
        &self,
        path: &str,
        (cookie, csrf): &(String, String),
        form: &[(&str, &str)],
    ) -> axum::response::Response {
        let mut fields = vec![("csrf", csrf.as_str())];
        fields.extend_from_slice(form);
        post_form(&self.app, path, cookie, PUBLIC_URL, &fields).await
    }

    /// Posts the password form of user `name`'s page: the new password and its confirmation.
    async fn post_password(
        &self,
        name: &str,
        operator: &(String, String),
        password: &str,
        confirm: &str,
    ) -> axum::response::Response {
        let path = format!("/admin/console/users/{name}/password");
        let form = [("password", password), ("confirm", confirm)];
        self.post(&path, operator, &form).await
    }
}

#[tokio::test]
async fn without_a_session_the_console_sends_the_browser_to_sign_in_and_back() {
    let c = Console::new().await;
    let resp = get(&c.app, "/admin/console/users?q=ad", "").await;
    assert_eq!(resp.status(), StatusCode::SEE_OTHER);
    assert_eq!(
        location(&resp),
        "/login?return_to=%2Fadmin%2Fconsole%2Fusers%3Fq%3Dad"
    );
}

#[tokio::test]
async fn the_console_is_for_directory_users_signed_in_with_mfa() {
    let c = Console::new().await;
    let (cookie, _) = c.signed_in("ada", &["admins"], false).await;
    let (status, html) = c.page("/admin", &cookie).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    assert!(html.contains("needs a sign-in with MFA"), "{html}");

    let federated = SignedInIdentity {
        provider: "corp".into(),
        subject: "ada".into(),
        claims: serde_json::Map::new(),
        mfa_time: Some(T0),
        local_groups: Vec::new(),
        origin_user: None,
        signed_in_at: T0,
    };
    let (cookie, _) = testing::portal_session(&c.app, federated, T0).await;
    let (status, html) = c.page("/admin", &cookie).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    assert!(html.contains("You signed in through corp."), "{html}");
}

#[tokio::test]
async fn an_admin_creates_a_user_sets_its_password_and_gets_a_key_whose_secret_is_shown_once() {
    let (c, admin) = Console::with_admin().await;

    let home = c.page_ok("/admin", &admin.0).await;
    for section in ["Users", "Groups", "Access", "Audit log", "Health"] {
        assert!(
            home.contains(&format!(">{section}</a>")),
            "{section}: {home}"
        );
    }

    // A name the directory refuses: the error beside the form, what was typed kept, no user.
    let resp = c
        .post("/admin/console/users", &admin, &[("name", "bad name!")])
        .await;
    assert_eq!(resp.status(), StatusCode::BAD_REQUEST);
    let html = text(resp).await;
    assert!(html.contains("id=\"create-error\""), "{html}");
    assert!(html.contains("value=\"bad name!\""), "{html}");
    assert!(c.directory().user("bad name!").await.is_err());

    let resp = c
        .post("/admin/console/users", &admin, &[("name", "bob")])
        .await;
    assert_eq!(resp.status(), StatusCode::SEE_OTHER);
    assert_eq!(location(&resp), "/admin/console/users/bob?done=created");
    assert!(c.directory().user("bob").await.is_ok());

    // Passwords that differ change nothing; the page says why beside the form.
    let resp = c
        .post_password("bob", &admin, "a long passphrase 1", "another one")
        .await;
    assert_eq!(resp.status(), StatusCode::BAD_REQUEST);
    let html = text(resp).await;
    assert!(html.contains("The two passwords differ."), "{html}");
    assert!(
        !html.contains("a long passphrase 1"),
        "a password is never shown"
    );
    assert!(!c.has_password("bob").await);

    let resp = c
        .post_password("bob", &admin, "a long passphrase 1", "a long passphrase 1")
        .await;
    assert_eq!(resp.status(), StatusCode::SEE_OTHER, "{}", text(resp).await);
    assert!(c.has_password("bob").await);

    let resp = c
        .post("/admin/console/users/bob/create-key", &admin, &[])
        .await;
    assert_eq!(resp.status(), StatusCode::OK);
    let html = text(resp).await;
    let key = c.directory().user("bob").await.unwrap().access_keys[0].clone();
    assert!(html.contains(&key.id));
    assert!(html.contains(key.secret.expose()), "the secret, once");
    let (_, page) = c.page("/admin/console/users/bob", &admin.0).await;
    assert!(page.contains(&key.id));
    assert!(!page.contains(key.secret.expose()), "never twice");

    // Every change is in the audit log with the operator as its principal.
    let created = audit(&c.app, "rolegate:CreateUser").await;
    let ok: Vec<_> = created.iter().filter(|e| e.decision == "allow").collect();
    assert_eq!(ok.len(), 1);
    assert!(ok[0].principal.as_deref().unwrap().ends_with(":user/ada"));
    assert_eq!(audit(&c.app, "rolegate:CreateAccessKey").await.len(), 1);
}

#[tokio::test]
async fn a_helpdesk_grant_sees_and_does_only_password_resets_and_unlocks() {
    let c = Console::new().await;
    testing::directory_user(&c.app, "carol", &[]).await;
    let desk = c.signed_in("hal", &["helpdesk"], true).await;

    let home = c.page_ok("/admin", &desk.0).await;
    assert!(!home.contains(">Users</a>"), "{home}");
    assert!(!home.contains(">Audit log</a>"), "{home}");
    assert!(home.contains("Find a user"), "{home}");

    let list = c.page_ok("/admin/console/users", &desk.0).await;
    assert!(list.contains("do not allow you to list users"), "{list}");
    assert!(!list.contains("carol"), "{list}");

    let page = c.page_ok("/admin/console/users/carol", &desk.0).await;
    assert!(
        page.contains("/admin/console/users/carol/password"),
        "{page}"
    );
    assert!(page.contains("/admin/console/users/carol/unlock"), "{page}");
    for absent in [
        "/disable",
        "/delete",
        "/create-key",
        "/revoke",
        "/put-policy",
    ] {
        assert!(!page.contains(absent), "{absent} offered: {page}");
    }

    // A change beyond the grant, sent anyway, is refused by the decision core and audited.
    let resp = c
        .post("/admin/console/users/carol/disable", &desk, &[])
        .await;
    assert_eq!(resp.status(), StatusCode::FORBIDDEN);
    assert!(c.directory().user("carol").await.unwrap().active());
    let (decision, reason) = testing::last_reason(&c.app, "rolegate:DisableUser").await;
    assert_eq!(decision, "deny");
    assert!(
        reason.contains("do not allow rolegate:DisableUser"),
        "{reason}"
    );

    for (path, form) in [
        (
            "/admin/console/users/carol/password",
            vec![
                ("password", "correct horse 42"),
                ("confirm", "correct horse 42"),
            ],
        ),
        ("/admin/console/users/carol/unlock", vec![]),
    ] {
        let resp = c.post(path, &desk, &form).await;
        assert_eq!(resp.status(), StatusCode::SEE_OTHER, "{path}");
    }
    assert!(c.has_password("carol").await);
    let (status, _) = c.page("/admin/console/audit", &desk.0).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
}

#[tokio::test]
async fn changes_to_root_are_reserved_to_root_whatever_the_policies_say() {
    let (c, admin) = Console::with_admin().await;
    let (_, page) = c.page("/admin/console/users/root", &admin.0).await;
    assert!(
        !page.contains("/admin/console/users/root/password"),
        "{page}"
    );
    let resp = c
        .post_password("root", &admin, "taken over root 1", "taken over root 1")
        .await;
    assert_eq!(resp.status(), StatusCode::FORBIDDEN);
    let (decision, reason) = testing::last_reason(&c.app, "rolegate:UpdateLoginProfile").await;
    assert_eq!(decision, "deny");
    assert!(reason.contains("reserved to root"), "{reason}");
}

#[tokio::test]
async fn a_form_without_our_origin_or_csrf_token_changes_nothing() {
    let c = Console::new().await;
    testing::directory_user(&c.app, "dan", &[]).await;
    let admin = c.signed_in("ada", &["admins"], true).await;
    let wrong_csrf = (admin.0.clone(), "x".repeat(43));
    let resp = c
        .post("/admin/console/users/dan/disable", &wrong_csrf, &[])
        .await;
    assert_eq!(resp.status(), StatusCode::FORBIDDEN);
    let resp = post_form(
        &c.app,
        "/admin/console/users/dan/disable",
        &admin.0,
        "https://evil.example",
        &[("csrf", admin.1.as_str())],
    )
    .await;
    assert_eq!(resp.status(), StatusCode::FORBIDDEN);
    assert!(c.directory().user("dan").await.unwrap().active());
    let refusals = audit(&c.app, "rolegate:DisableUser").await;
    assert_eq!(refusals.len(), 2);
    assert!(refusals.iter().all(|e| e.decision == "deny"));
}

#[tokio::test]
async fn the_audit_log_filters_and_exports_with_formulas_defused() {
    let (c, admin) = Console::with_admin().await;
    // A refused creation whose reason starts like a spreadsheet formula would not; the name does.
    c.post("/admin/console/users", &admin, &[("name", "=cmd")])
        .await;
    c.post("/admin/console/users", &admin, &[("name", "erin")])
        .await;

    let html = c
        .page_ok(
            "/admin/console/audit?decision=deny&action=rolegate%3ACreateUser",
            &admin.0,
        )
        .await;
    assert!(html.contains("rolegate:CreateUser"), "{html}");
    assert!(!html.contains("<td>allow</td>"), "{html}");

    let (status, html) = c
        .page("/admin/console/audit?from=yesterday", &admin.0)
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(html.contains("id=\"f-from-error\""), "{html}");
    assert!(html.contains("value=\"yesterday\""), "{html}");

    let resp = get(
        &c.app,
        "/admin/console/audit?action=rolegate%3ACreateUser&format=jsonl",
        &admin.0,
    )
    .await;
    assert_eq!(resp.status(), StatusCode::OK);
    let body = text(resp).await;
    let lines: Vec<serde_json::Value> = body
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), 2);

    let resp = get(
        &c.app,
        "/admin/console/audit?action=rolegate%3ACreateUser&format=csv",
        &admin.0,
    )
    .await;
    let csv = text(resp).await;
    assert!(csv.starts_with("time,request_id,action,decision"), "{csv}");
    assert!(!csv.contains(",=cmd") && !csv.contains("\"=cmd"), "{csv}");
}

#[tokio::test]
async fn the_health_page_shows_the_store_and_the_sealing_key_in_use() {
    let (c, admin) = Console::with_admin().await;
    let html = c.page_ok("/admin/console/health", &admin.0).await;
    assert!(html.contains("The store is reachable"), "{html}");
    let key = c.app.keys.current_key_id().unwrap();
    assert!(html.contains(&key), "{html}");
    assert_eq!(audit(&c.app, "rolegate:GetHealth").await.len(), 1);
}

#[tokio::test]
async fn the_access_page_shows_who_gets_each_permission_set_by_which_rule() {
    let c = Console::new().await;
    testing::directory_user(&c.app, "dev1", &["dev"]).await;
    // dana signed in through corp once, and the rules then gave her Dev.
    let evaluation = crate::mapping::Evaluation {
        provider: "corp".into(),
        subject: "dana".into(),
        groups: None,
        email: None,
        assignments: vec![crate::mapping::Assignment {
            account: testing::ACCOUNT.into(),
            permission_set: "Dev".into(),
            role_arn: format!("arn:aws:iam::{}:role/RolegateSSO_Dev", testing::ACCOUNT),
            rules: vec![1],
        }],
        rules: Vec::new(),
        notes: Vec::new(),
    };
    crate::mapping::record_login(c.app.store.as_ref(), &evaluation, T0)
        .await
        .unwrap();
    let admin = c.signed_in("ada", &["admins"], true).await;
    let html = c.page_ok("/admin/console/access", &admin.0).await;
    assert!(html.contains("<td>Dev</td>"), "{html}");
    assert!(html.contains(">dev1</a> (1)"), "{html}");
    assert!(html.contains("corp/dana (2023-11-14T22:13:20Z)"), "{html}");

    // Claims that are not a JSON object are refused beside the form; an object is explained.
    for (claims, status, shown) in [
        ("[1]", StatusCode::BAD_REQUEST, "are a JSON object"),
        ("{}", StatusCode::OK, "<li>Dev in 111122223333</li>"),
    ] {
        let form = [
            ("provider", "local"),
            ("claims", claims),
            ("local_groups", "dev"),
        ];
        let resp = c.post("/admin/console/access", &admin, &form).await;
        assert_eq!(resp.status(), status, "{claims}");
        let html = text(resp).await;
        assert!(html.contains(shown), "{html}");
    }
}

#[tokio::test]
async fn root_is_bootstrapped_in_the_browser_with_the_token_and_two_codes() {
    let (app, _clock) = testing::config().with("[portal]\n").build(T0).await;
    let d = app.directory.clone().unwrap();
    let token = crate::testing::root_token(&d).await;
    let resp = get(&app, "/admin/bootstrap", "").await;
    assert_eq!(resp.status(), StatusCode::OK);
    assert!(text(resp).await.contains("Bootstrap token"));

    // Not from our page: refused before the token is even looked at.
    let form = [
        ("token", token.as_str()),
        ("password", "root passphrase 1"),
        ("confirm", "root passphrase 1"),
    ];
    let resp = post_form(&app, "/admin/bootstrap", "", "https://evil.example", &form).await;
    assert_eq!(resp.status(), StatusCode::FORBIDDEN);
    // A wrong token: the form again with why, root unchanged.
    let wrong = [
        ("token", "not-the-token"),
        ("password", "root passphrase 1"),
        ("confirm", "root passphrase 1"),
    ];
    let resp = post_form(&app, "/admin/bootstrap", "", PUBLIC_URL, &wrong).await;
    assert!(resp.status().is_client_error(), "{}", resp.status());
    assert!(text(resp).await.contains("id=\"bootstrap-error\""));
    assert!(d.user("root").await.unwrap().password_hash.is_none());

    let resp = post_form(&app, "/admin/bootstrap", "", PUBLIC_URL, &form).await;
    assert_eq!(resp.status(), StatusCode::OK);
    let html = text(resp).await;
    let at = html.find("id=\"totp-secret\">").unwrap() + "id=\"totp-secret\">".len();
    let b32: String = html[at..].split('<').next().unwrap().replace(' ', "");
    let secret = crate::idp::local::totp::from_base32(&b32).unwrap();
    let code = |t: i64| crate::idp::local::totp::code_at(&secret, t).unwrap();

    let bad = [
        ("token", token.as_str()),
        ("code1", "000000"),
        ("code2", "000001"),
    ];
    let resp = post_form(&app, "/admin/bootstrap/finish", "", PUBLIC_URL, &bad).await;
    assert!(resp.status().is_client_error());
    assert!(!d.user("root").await.unwrap().has_mfa());

    let (c1, c2) = (code(T0), code(T0 + 30));
    let good = [
        ("token", token.as_str()),
        ("code1", c1.as_str()),
        ("code2", c2.as_str()),
    ];
    let resp = post_form(&app, "/admin/bootstrap/finish", "", PUBLIC_URL, &good).await;
    let status = resp.status();
    let body = text(resp).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert!(body.contains("Root is ready"));
    assert!(d.user("root").await.unwrap().has_mfa());
    let resp = get(&app, "/admin/bootstrap", "").await;
    assert!(text(resp).await.contains("Root is ready"));
    assert_eq!(audit(&app, "rolegate:BootstrapRootMFA").await.len(), 2);
}

#[tokio::test]
async fn unlocking_lifts_a_password_lock_shown_on_the_users_page() {
    use crate::idp::local::password::Password;
    let c = Console::new().await;
    testing::directory_user(&c.app, "erin", &[]).await;
    let d = c.directory();
    d.set_password("erin", Password::new("erin's long password".to_string()))
        .await
        .unwrap();
    for _ in 0..crate::idp::local::PASSWORD_MAX_FAILURES {
        let _ = d
            .check_password("erin", Password::new("wrong".to_string()))
            .await;
    }
    let right = || d.check_password("erin", Password::new("erin's long password".to_string()));
    assert!(right().await.is_err(), "locked");
    let admin = c.signed_in("ada", &["admins"], true).await;
    let (_, page) = c.page("/admin/console/users/erin", &admin.0).await;
    assert!(page.contains("password sign-in until"), "{page}");

    let resp = c
        .post("/admin/console/users/erin/unlock", &admin, &[])
        .await;
    assert_eq!(location(&resp), "/admin/console/users/erin?done=unlock");
    assert!(right().await.is_ok(), "unlocked");
    let (_, page) = c
        .page("/admin/console/users/erin?done=unlock", &admin.0)
        .await;
    assert!(page.contains("Sign-in locks are lifted."), "{page}");
    assert!(!page.contains("password sign-in until"), "{page}");
}

#[tokio::test]
async fn an_operator_sees_a_users_portal_sessions_and_ends_one_of_them() {
    let c = Console::new().await;
    let (bob_cookie, _) = c.signed_in("bob", &["dev"], false).await;
    let (other_cookie, _) = c.signed_in("bob", &["dev"], false).await;
    let admin = c.signed_in("ada", &["admins"], true).await;
    let (_, page) = c.page("/admin/console/users/bob", &admin.0).await;
    assert_eq!(page.matches("End this session").count(), 2, "{page}");
    let ids: Vec<String> = page
        .match_indices("name=\"kind\" value=\"portal\"><input type=\"hidden\" name=\"id\" value=\"")
        .map(|(at, m)| page[at + m.len()..at + m.len() + 64].to_string())
        .collect();
    // An id that is not one of bob's sessions (ada's own) is refused and ends nothing.
    let ada_key = crate::portal::session::key_of(admin.0.split('=').nth(1).unwrap());
    let resp = c
        .post(
            "/admin/console/users/bob/end-session",
            &admin,
            &[("kind", "portal"), ("id", &ada_key)],
        )
        .await;
    assert_eq!(resp.status(), StatusCode::BAD_REQUEST);
    assert!(text(resp).await.contains("no such portal session"));
    let resp = c
        .post(
            "/admin/console/users/bob/end-session",
            &admin,
            &[("kind", "portal"), ("id", &ids[0])],
        )
        .await;
    assert_eq!(resp.status(), StatusCode::SEE_OTHER);
    let live = [
        get(&c.app, "/portal", &bob_cookie).await.status() == StatusCode::OK,
        get(&c.app, "/portal", &other_cookie).await.status() == StatusCode::OK,
    ];
    assert_eq!(
        live.iter().filter(|l| **l).count(),
        1,
        "one ended, one left"
    );
    let (_, page) = c.page("/admin/console/users/bob", &admin.0).await;
    assert_eq!(page.matches("End this session").count(), 1, "{page}");
}

/// More events in one millisecond than one read of the store returns, the few from one provider
/// the oldest of them: the page with that provider shows them all, and the pages before a cursor
/// in that millisecond go on where the last one stopped.
#[tokio::test]
async fn audit_pages_read_on_through_a_crowded_millisecond() {
    let (c, admin) = Console::with_admin().await;
    let ms = (T0 - 3_600) * 1000;
    let time = chrono::DateTime::<chrono::Utc>::from_timestamp_millis(ms)
        .unwrap()
        .to_rfc3339_opts(chrono::SecondsFormat::Millis, true);
    let records: Vec<crate::store::AuditRecord> = (0..260)
        .map(|i| {
            let id = format!("crowd-{i:03}");
            let mut json = serde_json::json!({
                "time": time, "request_id": id, "action": "sts:GetCallerIdentity",
                "decision": "allow", "reason": id,
            });
            if i < 10 {
                json["provider"] = "https://corp.example".into();
            }
            crate::store::AuditRecord {
                time_ms: ms,
                id,
                action: "sts:GetCallerIdentity".into(),
                principal: None,
                decision: "allow".into(),
                json: json.to_string(),
            }
        })
        .collect();
    c.app.store.append_audit(&records).await.unwrap();
    let shown = |html: &str| -> Vec<String> {
        (0..260)
            .map(|i| format!("crowd-{i:03}"))
            .filter(|id| html.contains(&format!(">{id}<")))
            .collect()
    };

    let html = c.page_ok("/admin/console/audit?action=sts%3AGetCallerIdentity&provider=https%3A%2F%2Fcorp.example", &admin.0).await;
    let want: Vec<String> = (0..10).rev().map(|i| format!("crowd-{i:03}")).collect();
    let mut got = shown(&html);
    got.sort();
    got.reverse();
    assert_eq!(got, want, "{html}");

    // Page after page without a filter: every event of the millisecond once.
    let mut seen: Vec<String> = Vec::new();
    let mut path = "/admin/console/audit?action=sts%3AGetCallerIdentity".to_string();
    for _ in 0..10 {
        let html = c.page_ok(&path, &admin.0).await;
        seen.extend(shown(&html));
        let Some(at) = html.find("/admin/console/audit?action=sts%3AGetCallerIdentity&#38;before=")
        else {
            break;
        };
        let end = at + html[at..].find('"').unwrap();
        path = html[at..end].replace("&#38;", "&");
    }
    let mut want: Vec<String> = (0..260).map(|i| format!("crowd-{i:03}")).collect();
    want.sort();
    let count = seen.len();
    seen.sort();
    seen.dedup();
    assert_eq!((count, seen), (260, want));
}
