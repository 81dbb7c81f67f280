//! The portal cases of the security document, through the router.

use crate::app::App;
use crate::clock::FixedClock;
use crate::store::AuditQuery;
use axum::body::Body;
use axum::http::{header, Request, StatusCode};
use axum::response::Response;
use std::sync::Arc;
use tower::ServiceExt;

pub(super) const CONFIG: &str = r#"
[server]
listen = "127.0.0.1:0"
public_url = "http://127.0.0.1:8080"
[store]
kind = "memory"
[[accounts]]
id = "111122223333"
name = "main"
[[permission_sets]]
name = "Dev"
description = "Developer access"
[[permission_sets.policies]]
name = "all"
document = '{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"*","Resource":"*"}]}'
[[permission_sets]]
name = "Ops"
mfa = "required"
[[permission_sets.policies]]
name = "all"
document = '{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"*","Resource":"*"}]}'
[[assignment_rules]]
provider = "local"
permission_set = "Dev"
accounts = ["111122223333"]
local_group = "dev"
[[assignment_rules]]
provider = "local"
permission_set = "Ops"
accounts = ["111122223333"]
local_group = "dev"
[portal]
session_idle_minutes = 30
session_max_hours = 1
"#;

pub(super) const ORIGIN: &str = "http://127.0.0.1:8080";
pub(super) const PASSWORD: &str = "correct horse battery";

pub(super) struct Fixture {
    pub(super) app: Arc<App>,
    pub(super) clock: FixedClock,
}

pub(super) async fn fixture() -> Fixture {
    fixture_with(CONFIG).await
}

/// The fixture over another configuration.
pub(super) async fn fixture_with(toml: &str) -> Fixture {
    let config = crate::config::Config::from_str_with_env(
        std::path::Path::new("/etc/rolegate.toml"),
        toml,
        &[],
    )
    .unwrap();
    let clock = FixedClock::new(chrono::DateTime::from_timestamp(1_700_000_000, 0).unwrap());
    let app = App::build(
        config,
        Arc::new(crate::store::MemoryStore::new()),
        Arc::new(clock.clone()),
    )
    .await
    .unwrap();
    let d = app.directory.clone().unwrap();
    d.create_user("ana", None).await.unwrap();
    d.set_password(
        "ana",
        crate::idp::local::password::Password::new(PASSWORD.to_string()),
    )
    .await
    .unwrap();
    d.create_group("dev", None).await.unwrap();
    d.add_user_to_group("ana", "dev").await.unwrap();
    Fixture { app, clock }
}

impl Fixture {
    pub(super) async fn send(&self, req: Request<Body>) -> Response {
        crate::web::router(self.app.clone())
            .oneshot(req)
            .await
            .unwrap()
    }

    pub(super) async fn get(&self, path: &str, cookies: &str) -> Response {
        self.send(
            Request::get(path)
                .header(header::COOKIE, cookies)
                .body(Body::empty())
                .unwrap(),
        )
        .await
    }

    pub(super) async fn post(
        &self,
        path: &str,
        cookies: &str,
        origin: &str,
        form: &[(&str, &str)],
    ) -> Response {
        let body = form_urlencoded::Serializer::new(String::new())
            .extend_pairs(form)
            .finish();
        self.send(
            Request::post(path)
                .header(header::COOKIE, cookies)
                .header(header::ORIGIN, origin)
                .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
                .body(Body::from(body))
                .unwrap(),
        )
        .await
    }

    /// Signs ana in; returns the session cookie value and the home page's CSRF token.
    pub(super) async fn sign_in(&self, planted: Option<&str>) -> (String, Response) {
        let login = self.get("/login", "").await;
        assert_eq!(login.status(), StatusCode::OK);
        let csrf = set_cookie(&login, super::session::LOGIN_CSRF_COOKIE).unwrap();
        let mut cookies = format!("{}={csrf}", super::session::LOGIN_CSRF_COOKIE);
        if let Some(p) = planted {
            cookies.push_str(&format!("; {}={p}", super::session::SESSION_COOKIE));
        }
        let resp = self
            .post(
                "/login/local",
                &cookies,
                ORIGIN,
                &[
                    ("csrf", &csrf),
                    ("user", "ana"),
                    ("password", PASSWORD),
                    ("return_to", "/portal"),
                ],
            )
            .await;
        let session = set_cookie(&resp, super::session::SESSION_COOKIE).unwrap_or_default();
        (session, resp)
    }

    pub(super) async fn home_csrf(&self, session: &str) -> String {
        let home = self.get("/portal", &session_cookie(session)).await;
        assert_eq!(home.status(), StatusCode::OK);
        let html = text(home).await;
        let at = html.find("name=\"csrf\" value=\"").unwrap() + 19;
        html[at..at + 43].to_string()
    }

    pub(super) async fn audit(&self, action: &str) -> Vec<crate::audit::AuditEvent> {
        self.app.audit.flush().await;
        crate::audit::query(
            self.app.store.as_ref(),
            &AuditQuery {
                action: Some(action.into()),
                ..AuditQuery::default()
            },
        )
        .await
        .unwrap()
    }
}

pub(super) fn session_cookie(v: &str) -> String {
    format!("{}={v}", super::session::SESSION_COOKIE)
}

pub(super) fn set_cookie(resp: &Response, name: &str) -> Option<String> {
    resp.headers()
        .get_all(header::SET_COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find_map(|c| {
            let c = c.strip_prefix(&format!("{name}="))?;
            Some(c.split(';').next().unwrap_or("").to_string())
        })
        .filter(|v| !v.is_empty())
}

pub(super) async fn text(resp: Response) -> String {
    let b = axum::body::to_bytes(resp.into_body(), 1 << 20)
        .await
        .unwrap();
    String::from_utf8(b.to_vec()).unwrap()
}

#[tokio::test]
async fn sign_in_gives_a_new_session_id_and_the_home_page_lists_the_assignments() {
    let f = fixture().await;
    let planted = "attacker-chosen-session-id-0000000000000000";
    let (session, resp) = f.sign_in(Some(planted)).await;
    assert_eq!(resp.status(), StatusCode::SEE_OTHER);
    assert_eq!(resp.headers()[header::LOCATION], "/portal");
    let all: Vec<&str> = resp
        .headers()
        .get_all(header::SET_COOKIE)
        .iter()
        .map(|v| v.to_str().unwrap())
        .collect();
    let sc = all
        .iter()
        .find(|c| c.starts_with("__Host-rolegate-session="))
        .unwrap();
    for attr in ["Path=/", "Secure", "HttpOnly", "SameSite=Lax"] {
        assert!(sc.contains(attr), "{sc}");
    }
    assert!(!sc.contains("Domain"), "{sc}");
    assert_ne!(session, planted);
    assert_eq!(session.len(), 43, "256-bit id");
    // The planted id is no session.
    let r = f.get("/portal", &session_cookie(planted)).await;
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);

    let home = f.get("/portal", &session_cookie(&session)).await;
    assert_eq!(home.status(), StatusCode::OK);
    let csp = home.headers()["content-security-policy"]
        .to_str()
        .unwrap()
        .to_string();
    assert!(
        csp.contains("frame-ancestors 'none'") && !csp.contains("unsafe-inline"),
        "{csp}"
    );
    let html = text(home).await;
    assert!(html.contains("local/ana"), "{html}");
    assert!(html.contains("111122223333") && html.contains("Dev") && html.contains("Ops"));
    let filtered = text(f.get("/portal?q=ops", &session_cookie(&session)).await).await;
    assert!(
        filtered.contains("Ops") && !filtered.contains(">Dev<"),
        "{filtered}"
    );

    let ev = f.audit(super::SIGN_IN_ACTION).await;
    assert_eq!(ev.len(), 1);
    assert_eq!(ev[0].decision, "allow");
    assert_eq!(ev[0].mfa, Some(false));
}

#[tokio::test]
async fn a_wrong_password_or_a_forged_sign_in_form_gives_no_session() {
    let f = fixture().await;
    let login = f.get("/login", "").await;
    let csrf = set_cookie(&login, super::session::LOGIN_CSRF_COOKIE).unwrap();
    let cookies = format!("{}={csrf}", super::session::LOGIN_CSRF_COOKIE);
    let base = [
        ("csrf", csrf.as_str()),
        ("user", "ana"),
        ("password", PASSWORD),
    ];
    let wrong = [
        ("csrf", csrf.as_str()),
        ("user", "ana"),
        ("password", "nope nope nope"),
    ];
    let other_csrf = [("csrf", "x"), ("user", "ana"), ("password", PASSWORD)];
    type Case<'a> = (
        &'a str,
        &'a str,
        &'a [(&'a str, &'a str)],
        StatusCode,
        &'a str,
    );
    let cases: [Case<'_>; 4] = [
        (
            &cookies,
            ORIGIN,
            &wrong,
            StatusCode::UNAUTHORIZED,
            "wrong password",
        ),
        (
            &cookies,
            "https://evil.example",
            &base,
            StatusCode::FORBIDDEN,
            "Origin",
        ),
        (&cookies, ORIGIN, &other_csrf, StatusCode::FORBIDDEN, "CSRF"),
        ("", ORIGIN, &base, StatusCode::FORBIDDEN, "CSRF"),
    ];
    for (cookie, origin, form, status, reason) in cases {
        let r = f.post("/login/local", cookie, origin, form).await;
        assert_eq!(r.status(), status, "{reason}");
        assert!(
            set_cookie(&r, super::session::SESSION_COOKIE).is_none(),
            "{reason}"
        );
    }
    let ev = f.audit(super::SIGN_IN_ACTION).await;
    assert_eq!(ev.len(), 4);
    assert!(ev.iter().all(|e| e.decision == "deny"));
    let reasons: Vec<String> = ev.iter().map(|e| e.reason.clone().unwrap()).collect();
    assert!(
        reasons
            .iter()
            .any(|r| r.contains("is not http://127.0.0.1:8080")),
        "{reasons:?}"
    );
    assert_eq!(
        reasons.iter().filter(|r| r.contains("CSRF")).count(),
        2,
        "{reasons:?}"
    );
    assert!(f
        .app
        .store
        .dir_list(super::session::SESSION_KIND)
        .await
        .unwrap()
        .is_empty());
}

#[tokio::test]
async fn return_to_outside_the_portal_lands_on_the_home_page() {
    let f = fixture().await;
    let login = f.get("/login", "").await;
    let csrf = set_cookie(&login, super::session::LOGIN_CSRF_COOKIE).unwrap();
    let cookies = format!("{}={csrf}", super::session::LOGIN_CSRF_COOKIE);
    for (to, want) in [
        ("//evil.example/portal", "/portal"),
        ("https://evil.example", "/portal"),
        ("/portal%0d%0aX:1", "/portal"),
        ("/portal/history", "/portal/history"),
    ] {
        let r = f
            .post(
                "/login/local",
                &cookies,
                ORIGIN,
                &[
                    ("csrf", &csrf),
                    ("user", "ana"),
                    ("password", PASSWORD),
                    ("return_to", to),
                ],
            )
            .await;
        assert_eq!(r.status(), StatusCode::SEE_OTHER, "{to}");
        assert_eq!(r.headers()[header::LOCATION], want, "{to}");
    }
}

#[tokio::test]
async fn credentials_need_the_session_csrf_token_and_our_origin() {
    let f = fixture().await;
    let (session, _) = f.sign_in(None).await;
    let csrf = f.home_csrf(&session).await;
    let cookie = session_cookie(&session);
    let form = |csrf: &'static str| {
        [
            ("csrf", csrf),
            ("account", "111122223333"),
            ("permission_set", "Dev"),
        ]
    };
    let r = f
        .post("/portal/credentials", &cookie, ORIGIN, &form("wrong"))
        .await;
    assert_eq!(r.status(), StatusCode::FORBIDDEN);
    assert!(!text(r).await.contains("AWS_ACCESS_KEY_ID"));
    let csrf_static: &'static str = Box::leak(csrf.into_boxed_str());
    let r = f
        .post(
            "/portal/credentials",
            &cookie,
            "https://evil.example",
            &form(csrf_static),
        )
        .await;
    assert_eq!(r.status(), StatusCode::FORBIDDEN);
    let r = f
        .post("/portal/credentials", "", ORIGIN, &form(csrf_static))
        .await;
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);

    let r = f
        .post("/portal/credentials", &cookie, ORIGIN, &form(csrf_static))
        .await;
    assert_eq!(r.status(), StatusCode::OK);
    let html = text(r).await;
    for needle in [
        "export AWS_ACCESS_KEY_ID=\"ASIA",
        "$Env:AWS_SESSION_TOKEN=",
        "[111122223333_Dev]",
        "aws_session_token = ",
        "2023-11-14T23:13:20Z",
    ] {
        assert!(html.contains(needle), "{needle} in {html}");
    }
    let ev = f.audit("portal:GetCredentials").await;
    assert_eq!(ev.iter().filter(|e| e.decision == "deny").count(), 3);
    assert_eq!(ev.iter().filter(|e| e.decision == "allow").count(), 1);
    let allowed = ev.iter().find(|e| e.decision == "allow").unwrap();
    assert_eq!(
        allowed.principal.as_deref(),
        Some("arn:aws:sts::111122223333:assumed-role/RolegateSSO_Dev/ana")
    );
}

#[tokio::test]
async fn a_permission_set_requiring_mfa_is_refused_with_the_explanation() {
    let f = fixture().await;
    let (session, _) = f.sign_in(None).await;
    let csrf = f.home_csrf(&session).await;
    let r = f
        .post(
            "/portal/credentials",
            &session_cookie(&session),
            ORIGIN,
            &[
                ("csrf", &csrf),
                ("account", "111122223333"),
                ("permission_set", "Ops"),
            ],
        )
        .await;
    assert_eq!(r.status(), StatusCode::FORBIDDEN);
    let html = text(r).await;
    assert!(html.contains("Permission set Ops requires MFA"), "{html}");
    assert!(html.contains("aws:MultiFactorAuthPresent"), "{html}");
    assert!(!html.contains("AWS_ACCESS_KEY_ID"));
    let r = f
        .post(
            "/portal/credentials",
            &session_cookie(&session),
            ORIGIN,
            &[
                ("csrf", &csrf),
                ("account", "999999999999"),
                ("permission_set", "Dev"),
            ],
        )
        .await;
    assert_eq!(r.status(), StatusCode::FORBIDDEN);
}

#[tokio::test]
async fn sign_out_ends_the_session_in_the_store() {
    let f = fixture().await;
    let (one, _) = f.sign_in(None).await;
    let (two, _) = f.sign_in(None).await;
    let (three, _) = f.sign_in(None).await;
    let csrf = f.home_csrf(&one).await;
    let r = f
        .post("/logout", &session_cookie(&one), ORIGIN, &[("csrf", &csrf)])
        .await;
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    assert_eq!(
        f.get("/portal", &session_cookie(&one)).await.status(),
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(
        f.get("/portal", &session_cookie(&two)).await.status(),
        StatusCode::OK
    );
    let csrf = f.home_csrf(&two).await;
    let r = f
        .post(
            "/logout",
            &session_cookie(&two),
            ORIGIN,
            &[("csrf", &csrf), ("everywhere", "1")],
        )
        .await;
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    for s in [&two, &three] {
        assert_eq!(
            f.get("/portal", &session_cookie(s)).await.status(),
            StatusCode::UNAUTHORIZED
        );
    }
    assert!(f
        .app
        .store
        .dir_list(super::session::SESSION_KIND)
        .await
        .unwrap()
        .is_empty());
}

#[tokio::test]
async fn sessions_end_after_the_idle_and_the_absolute_timeout() {
    let f = fixture().await;
    let (session, _) = f.sign_in(None).await;
    f.clock.advance(chrono::Duration::minutes(29));
    assert_eq!(
        f.get("/portal", &session_cookie(&session)).await.status(),
        StatusCode::OK
    );
    f.clock.advance(chrono::Duration::minutes(29));
    assert_eq!(
        f.get("/portal", &session_cookie(&session)).await.status(),
        StatusCode::OK
    );
    f.clock.advance(chrono::Duration::minutes(2));
    let r = f.get("/portal", &session_cookie(&session)).await;
    assert_eq!(
        r.status(),
        StatusCode::UNAUTHORIZED,
        "an hour after sign-in"
    );
    assert!(text(r).await.contains("Session expired"));

    let (idle, _) = f.sign_in(None).await;
    f.clock.advance(chrono::Duration::minutes(30));
    assert_eq!(
        f.get("/portal", &session_cookie(&idle)).await.status(),
        StatusCode::UNAUTHORIZED
    );
    let (left, _) = f.sign_in(None).await;
    f.clock.advance(chrono::Duration::minutes(31));
    assert_eq!(super::purge_expired(&f.app).await.unwrap(), 1);
    assert_eq!(
        f.get("/portal", &session_cookie(&left)).await.status(),
        StatusCode::UNAUTHORIZED
    );
}

#[tokio::test]
async fn history_lists_the_person_s_sign_ins() {
    let f = fixture().await;
    let (session, _) = f.sign_in(None).await;
    f.sign_in(None).await;
    let html = text(f.get("/portal/history", &session_cookie(&session)).await).await;
    assert_eq!(html.matches("<td>local</td>").count(), 2, "{html}");
}

#[tokio::test]
async fn without_a_session_the_home_page_sends_to_sign_in() {
    let f = fixture().await;
    let r = f.get("/portal", "").await;
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    assert_eq!(r.headers()[header::LOCATION], "/login?return_to=%2Fportal");
}

#[tokio::test]
async fn an_mfa_step_up_moves_the_session_to_a_new_id_and_ends_the_old_one() {
    let f = fixture().await;
    let (old, _) = f.sign_in(None).await;
    let mut headers = axum::http::HeaderMap::new();
    headers.insert(header::COOKIE, session_cookie(&old).parse().unwrap());
    let now = f.app.clock.now().timestamp();
    let loaded = super::session::load(f.app.store.as_ref(), &headers, now, 1800, 3600)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(loaded.record.identity.mfa_time, None);
    let new = super::session::record_mfa(f.app.store.as_ref(), &loaded, now + 5)
        .await
        .unwrap();
    assert_ne!(new, old);
    assert_eq!(
        f.get("/portal", &session_cookie(&old)).await.status(),
        StatusCode::UNAUTHORIZED,
        "the id from before the step-up no longer names a session"
    );
    assert_eq!(
        f.get("/portal", &session_cookie(&new)).await.status(),
        StatusCode::OK
    );
    let key = super::session::key_of(&new);
    let stored = f
        .app
        .store
        .dir_get(super::session::SESSION_KIND, &key)
        .await
        .unwrap()
        .unwrap();
    let record: super::session::SessionRecord = serde_json::from_str(&stored.value).unwrap();
    assert_eq!(record.identity.mfa_time, Some(now + 5));
    // A second step-up from the stale loaded copy writes nothing.
    assert!(matches!(
        super::session::record_mfa(f.app.store.as_ref(), &loaded, now + 6).await,
        Err(super::PortalError::SessionExpired)
    ));
    assert_eq!(
        f.app
            .store
            .dir_list(super::session::SESSION_KIND)
            .await
            .unwrap()
            .len(),
        1
    );
}
