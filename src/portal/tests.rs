//! The portal cases of the security document, through the router.

use crate::app::App;
use crate::clock::FixedClock;
pub(super) use crate::testing::{csrf_of, location, set_cookie, text, TestConfig};
use axum::http::{header, StatusCode};
use axum::response::Response;
use std::sync::Arc;

pub(super) const ORIGIN: &str = crate::testing::PUBLIC_URL;
pub(super) const PASSWORD: &str = "correct horse battery";
/// The portal's sessions: half an hour idle, an hour at most.
const PORTAL: &str = "[portal]\nsession_idle_minutes = 30\nsession_max_hours = 1\n";

/// The portal tests' configuration: permission sets Dev and Ops (Ops with `ops` settings, MFA
/// required at least) for the group dev.
pub(super) fn config_with_ops(ops: &str) -> TestConfig {
    crate::testing::config()
        .permission_set("Dev", "description = \"Developer access\"")
        .permission_set("Ops", &format!("mfa = \"required\"\n{ops}"))
        .with(PORTAL)
}

/// [`config_with_ops`] with nothing more for Ops.
pub(super) fn config() -> TestConfig {
    config_with_ops("")
}

pub(super) struct Fixture {
    pub(super) app: Arc<App>,
    pub(super) clock: FixedClock,
}

pub(super) async fn fixture() -> Fixture {
    fixture_with(config()).await
}

/// The fixture over another configuration: its app, and ana (group dev) with a password.
pub(super) async fn fixture_with(config: TestConfig) -> Fixture {
    let (app, clock) = config.build(1_700_000_000).await;
    crate::testing::directory_user(&app, "ana", &["dev"]).await;
    app.directory
        .clone()
        .unwrap()
        .set_password(
            "ana",
            crate::idp::local::password::Password::new(PASSWORD.to_string()),
        )
        .await
        .unwrap();
    Fixture { app, clock }
}

impl Fixture {
    pub(super) async fn get(&self, path: &str, cookies: &str) -> Response {
        crate::testing::get(&self.app, path, cookies).await
    }

    pub(super) async fn post(
        &self,
        path: &str,
        cookies: &str,
        origin: &str,
        form: &[(&str, &str)],
    ) -> Response {
        crate::testing::post_form(&self.app, path, cookies, origin, form).await
    }

    /// Signs ana in; returns the session cookie value and the home page's CSRF token.
    pub(super) async fn sign_in(&self, planted: Option<&str>) -> (String, Response) {
        self.sign_in_with(None, planted).await
    }

    /// Signs ana in with the password form, asking to come back to `return_to` (the home page
    /// without), with a `planted` session cookie sent along; returns the session cookie value and
    /// the answer.
    pub(super) async fn sign_in_with(
        &self,
        return_to: Option<&str>,
        planted: Option<&str>,
    ) -> (String, Response) {
        let page = match return_to {
            Some(r) => format!("/login?{}", crate::testing::form_body(&[("return_to", r)])),
            None => "/login".into(),
        };
        let login = self.get(&page, "").await;
        assert_eq!(login.status(), StatusCode::OK);
        let csrf = set_cookie(&login, super::session::LOGIN_CSRF_COOKIE).unwrap();
        let mut cookies = format!("{}={csrf}", super::session::LOGIN_CSRF_COOKIE);
        if let Some(p) = planted {
            cookies.push_str(&format!("; {}={p}", super::session::SESSION_COOKIE));
        }
        // The form carries return_to on, as the page received it.
        let carried = match return_to {
            Some(_) => {
                let html = text(login).await;
                crate::testing::quoted_after(&html, "name=\"return_to\" value=\"")
            }
            None => "/portal".into(),
        };
        let resp = self.sign_in_form(&cookies, &csrf, &carried).await;
        let session = set_cookie(&resp, super::session::SESSION_COOKIE).unwrap_or_default();
        (session, resp)
    }

    /// Posts a form that carries only the CSRF token, from our origin with the session cookie.
    pub(super) async fn post_csrf(&self, path: &str, session: &str, csrf: &str) -> Response {
        self.post(path, &session_cookie(session), ORIGIN, &[("csrf", csrf)])
            .await
    }

    /// Asks for credentials of permission set `set` in `account` with the session's form.
    pub(super) async fn get_credentials(
        &self,
        session: &str,
        csrf: &str,
        account: &str,
        set: &str,
    ) -> Response {
        self.post(
            "/portal/credentials",
            &session_cookie(session),
            ORIGIN,
            &[
                ("csrf", csrf),
                ("account", account),
                ("permission_set", set),
            ],
        )
        .await
    }

    /// Posts ana's password to the sign-in form with the login CSRF token, asking for `return_to`.
    pub(super) async fn sign_in_form(
        &self,
        cookies: &str,
        csrf: &str,
        return_to: &str,
    ) -> Response {
        self.post(
            "/login/local",
            cookies,
            ORIGIN,
            &[
                ("csrf", csrf),
                ("user", "ana"),
                ("password", PASSWORD),
                ("return_to", return_to),
            ],
        )
        .await
    }

    /// The login page's CSRF token and the cookie header that carries it.
    pub(super) async fn login_csrf(&self) -> (String, String) {
        let login = self.get("/login", "").await;
        let csrf = set_cookie(&login, super::session::LOGIN_CSRF_COOKIE).unwrap();
        let cookies = format!("{}={csrf}", super::session::LOGIN_CSRF_COOKIE);
        (csrf, cookies)
    }

    /// The stored records of `kind`.
    pub(super) async fn records(&self, kind: &str) -> Vec<(String, crate::store::Versioned)> {
        self.app.store.dir_list(kind).await.unwrap()
    }

    /// Ana, signed in without MFA, asks for command line access to Ops, which requires MFA: her
    /// session, its CSRF token, and the refused page (403).
    pub(super) async fn credentials_without_mfa(&self) -> (String, String, String) {
        let (session, _) = self.sign_in(None).await;
        let csrf = self.home_csrf(&session).await;
        let r = self
            .get_credentials(&session, &csrf, "111122223333", "Ops")
            .await;
        assert_eq!(r.status(), StatusCode::FORBIDDEN);
        (session, csrf, text(r).await)
    }

    pub(super) async fn home_csrf(&self, session: &str) -> String {
        let home = self.get("/portal", &session_cookie(session)).await;
        assert_eq!(home.status(), StatusCode::OK);
        csrf_of(&text(home).await)
    }

    pub(super) async fn audit(&self, action: &str) -> Vec<crate::audit::AuditEvent> {
        crate::testing::audit(&self.app, action).await
    }
}

pub(super) fn session_cookie(v: &str) -> String {
    format!("{}={v}", super::session::SESSION_COOKIE)
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
    let (csrf, cookies) = f.login_csrf().await;
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
    assert!(f.records(super::session::SESSION_KIND).await.is_empty());
}

#[tokio::test]
async fn return_to_outside_the_portal_lands_on_the_home_page() {
    let f = fixture().await;
    let (csrf, cookies) = f.login_csrf().await;
    for (to, want) in [
        ("//evil.example/portal", "/portal"),
        ("https://evil.example", "/portal"),
        ("/portal%0d%0aX:1", "/portal"),
        ("/portal/history", "/portal/history"),
    ] {
        let r = f.sign_in_form(&cookies, &csrf, to).await;
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
    let form = [
        ("csrf", csrf.as_str()),
        ("account", "111122223333"),
        ("permission_set", "Dev"),
    ];
    let r = f
        .get_credentials(&session, "wrong", "111122223333", "Dev")
        .await;
    assert_eq!(r.status(), StatusCode::FORBIDDEN);
    assert!(!text(r).await.contains("AWS_ACCESS_KEY_ID"));
    let r = f
        .post(
            "/portal/credentials",
            &cookie,
            "https://evil.example",
            &form,
        )
        .await;
    assert_eq!(r.status(), StatusCode::FORBIDDEN);
    let r = f.post("/portal/credentials", "", ORIGIN, &form).await;
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);

    let r = f
        .get_credentials(&session, &csrf, "111122223333", "Dev")
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
    let (session, csrf, html) = f.credentials_without_mfa().await;
    assert!(html.contains("Permission set Ops requires MFA"), "{html}");
    assert!(html.contains("aws:MultiFactorAuthPresent"), "{html}");
    assert!(!html.contains("AWS_ACCESS_KEY_ID"));
    let r = f
        .get_credentials(&session, &csrf, "999999999999", "Dev")
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
    let r = f.post_csrf("/logout", &one, &csrf).await;
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
    assert!(f.records(super::session::SESSION_KIND).await.is_empty());
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
    assert_eq!(f.records(super::session::SESSION_KIND).await.len(), 1);
}
