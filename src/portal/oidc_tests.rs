//! The refusals of OIDC portal sign-in that need no real provider, through the router: each answers
//! its status and page, records its precise reason, starts no session and (where it applies) leaves
//! the pending login as it was. The successful round trip runs against the real provider in
//! tests/py/test_portal_oidc.py.

use super::{PendingLogin, BINDING_COOKIE, LOGIN_TIMEOUT_SECONDS, PENDING_KIND, START_ACTION};
use crate::app::App;
use crate::clock::FixedClock;
use crate::portal::session::{key_of, SESSION_KIND};
use crate::portal::SIGN_IN_ACTION;
use crate::store::DirWrite;
use crate::testing::text;
use axum::http::{header, StatusCode};
use axum::response::Response;
use std::sync::Arc;

const NOW: i64 = 1_700_000_000;

/// Providers at port 1 on loopback: nothing listens there, so discovery fails at once.
const PROVIDERS: &str = r#"
[[oidc_providers]]
issuer = "http://127.0.0.1:1/idp"
audiences = ["web"]
allow_http = true
name = "corp"
[oidc_providers.login]
client_id = "rolegate"
display_name = "Corp SSO"
[[oidc_providers]]
issuer = "http://127.0.0.1:1/tokens-only"
audiences = ["web"]
allow_http = true
name = "ci"
[portal]
"#;

struct Fixture {
    app: Arc<App>,
    clock: FixedClock,
}

async fn fixture() -> Fixture {
    let (app, clock) = crate::testing::config().with(PROVIDERS).build(NOW).await;
    Fixture { app, clock }
}

fn pending(provider: &str, binding: &str, expires_at: i64, used: bool) -> PendingLogin {
    PendingLogin {
        provider: provider.into(),
        nonce: "n".repeat(43),
        pkce_verifier: "v".repeat(43),
        binding: key_of(binding),
        return_to: "/portal".into(),
        max_age: None,
        expires_at,
        used,
    }
}

impl Fixture {
    async fn get(&self, path: &str, cookies: &str) -> Response {
        // One second apart, so that the audit log orders the events of one test.
        self.clock.advance(chrono::Duration::seconds(1));
        crate::testing::get(&self.app, path, cookies).await
    }

    async fn put_pending(&self, state: &str, p: &PendingLogin) {
        assert!(self
            .app
            .store
            .dir_write(&[DirWrite::insert(
                PENDING_KIND,
                &key_of(state),
                serde_json::to_string(p).unwrap(),
            )])
            .await
            .unwrap());
    }

    async fn stored_pending(&self, state: &str) -> Option<PendingLogin> {
        self.app
            .store
            .dir_get(PENDING_KIND, &key_of(state))
            .await
            .unwrap()
            .map(|v| serde_json::from_str(&v.value).unwrap())
    }

    async fn last_reason(&self, action: &str) -> (String, String) {
        crate::testing::last_reason(&self.app, action).await
    }

    async fn sessions(&self) -> usize {
        self.app.store.dir_list(SESSION_KIND).await.unwrap().len()
    }
}

fn sets_cookie(resp: &Response, name: &str) -> bool {
    resp.headers()
        .get_all(header::SET_COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .any(|c| c.starts_with(&format!("{name}=")) && !c.starts_with(&format!("{name}=;")))
}

#[tokio::test]
async fn the_sign_in_page_lists_only_providers_with_browser_sign_in() {
    let f = fixture().await;
    let html = text(f.get("/login?return_to=/portal/history", "").await).await;
    assert!(html.contains("Sign in with Corp SSO"), "{html}");
    assert!(html.contains(r#"href="/login/oidc/corp?return_to=%2Fportal%2Fhistory""#));
    assert!(!html.contains("/login/oidc/ci"));
    assert!(!html.contains("No sign-in method is configured"));
}

#[tokio::test]
async fn an_unreachable_provider_gets_the_503_page_and_nothing_is_stored() {
    let f = fixture().await;
    let resp = f.get("/login/oidc/corp", "").await;
    assert_eq!(resp.status(), StatusCode::SERVICE_UNAVAILABLE);
    assert!(resp.headers().get(header::LOCATION).is_none());
    assert!(!sets_cookie(&resp, BINDING_COOKIE));
    assert!(text(resp).await.contains("Identity provider unreachable"));
    let (decision, reason) = f.last_reason(START_ACTION).await;
    assert_eq!(decision, "error");
    assert!(
        reason.starts_with("identity provider unreachable: discovery"),
        "{reason}"
    );
    assert!(f.app.store.dir_list(PENDING_KIND).await.unwrap().is_empty());
}

#[tokio::test]
async fn unknown_providers_and_bad_step_up_values_are_refused_at_the_start() {
    let f = fixture().await;
    for (path, status, reason) in [
        (
            "/login/oidc/nosuch",
            StatusCode::NOT_FOUND,
            "no oidc provider 'nosuch' with browser sign-in",
        ),
        (
            "/login/oidc/ci",
            StatusCode::NOT_FOUND,
            "no oidc provider 'ci' with browser sign-in",
        ),
        (
            "/login/oidc/corp?step_up=0",
            StatusCode::BAD_REQUEST,
            "step_up must be 1-43200 seconds",
        ),
        (
            "/login/oidc/corp?step_up=43201",
            StatusCode::BAD_REQUEST,
            "step_up must be 1-43200 seconds",
        ),
        (
            "/login/oidc/corp?step_up=soon",
            StatusCode::BAD_REQUEST,
            "step_up must be 1-43200 seconds",
        ),
    ] {
        let resp = f.get(path, "").await;
        assert_eq!(resp.status(), status, "{path}");
        assert!(!sets_cookie(&resp, BINDING_COOKIE), "{path}");
        assert_eq!(
            f.last_reason(START_ACTION).await,
            ("deny".to_string(), reason.to_string()),
            "{path}"
        );
    }
}

#[tokio::test]
async fn callbacks_without_a_live_pending_login_of_this_browser_are_refused() {
    let f = fixture().await;
    let cookie = format!("{BINDING_COOKIE}=the-browser");
    f.put_pending("s-live", &pending("corp", "the-browser", NOW + 600, false))
        .await;
    f.put_pending("s-used", &pending("corp", "the-browser", NOW + 600, true))
        .await;
    f.put_pending("s-old", &pending("corp", "the-browser", NOW + 1, false))
        .await;
    f.put_pending(
        "s-other",
        &pending("other", "the-browser", NOW + 600, false),
    )
    .await;
    let cases: &[(&str, &str, StatusCode, &str)] = &[
        (
            "/login/oidc/corp/callback?code=c",
            &cookie,
            StatusCode::FORBIDDEN,
            "callback without state",
        ),
        (
            "/login/oidc/corp/callback?code=c&state=never-issued",
            &cookie,
            StatusCode::FORBIDDEN,
            "no pending login for this state",
        ),
        (
            "/login/oidc/corp/callback?code=c&state=s-live",
            "",
            StatusCode::FORBIDDEN,
            "state is not bound to this browser (pending-login cookie missing or different)",
        ),
        (
            "/login/oidc/corp/callback?code=c&state=s-live",
            &format!("{BINDING_COOKIE}=another-browser"),
            StatusCode::FORBIDDEN,
            "state is not bound to this browser (pending-login cookie missing or different)",
        ),
        (
            "/login/oidc/corp/callback?code=c&state=s-used",
            &cookie,
            StatusCode::FORBIDDEN,
            "state was already used",
        ),
        (
            "/login/oidc/corp/callback?code=c&state=s-old",
            &cookie,
            StatusCode::UNAUTHORIZED,
            "pending login expired at 1700000001",
        ),
        (
            "/login/oidc/corp/callback?code=c&state=s-other",
            &cookie,
            StatusCode::FORBIDDEN,
            "state belongs to a pending login at provider 'other'",
        ),
        (
            "/login/oidc/corp/callback?code=c&state=s-live&state=s-live",
            &cookie,
            StatusCode::BAD_REQUEST,
            "bad request: parameter state given twice",
        ),
        (
            "/login/oidc/nosuch/callback?code=c&state=s-live",
            &cookie,
            StatusCode::NOT_FOUND,
            "callback for unknown oidc provider 'nosuch'",
        ),
    ];
    for (path, cookies, status, reason) in cases {
        let resp = f.get(path, cookies).await;
        assert_eq!(resp.status(), *status, "{path}");
        assert!(!sets_cookie(&resp, crate::portal::session::SESSION_COOKIE));
        assert_eq!(
            f.last_reason(SIGN_IN_ACTION).await,
            ("deny".to_string(), reason.to_string()),
            "{path}"
        );
    }
    // None of them consumed the live pending login or started a session.
    assert!(!f.stored_pending("s-live").await.unwrap().used);
    assert_eq!(f.sessions().await, 0);
}

#[tokio::test]
async fn a_wrong_iss_or_an_idp_error_consumes_the_state_and_starts_no_session() {
    let f = fixture().await;
    let cookie = format!("{BINDING_COOKIE}=b");
    let cases = [
        (
            "s1",
            "/login/oidc/corp/callback?code=c&state=s1&iss=http%3A%2F%2F127.0.0.1%3A1%2Fother",
            StatusCode::FORBIDDEN,
            "authorization response iss 'http://127.0.0.1:1/other' is not the provider's issuer http://127.0.0.1:1/idp (RFC 9207)".to_string(),
        ),
        (
            "s2",
            "/login/oidc/corp/callback?state=s2&iss=http%3A%2F%2F127.0.0.1%3A1%2Fidp&error=access_denied&error_description=no+thanks",
            StatusCode::UNAUTHORIZED,
            "identity provider answered error access_denied: no thanks".to_string(),
        ),
        (
            "s3",
            "/login/oidc/corp/callback?state=s3",
            StatusCode::BAD_REQUEST,
            "callback without code".to_string(),
        ),
    ];
    for (state, path, status, reason) in cases {
        f.put_pending(state, &pending("corp", "b", NOW + 600, false))
            .await;
        let resp = f.get(path, &cookie).await;
        assert_eq!(resp.status(), status, "{path}");
        // The browser's pending-login cookie goes with the consumed state.
        let cleared = resp.headers().get_all(header::SET_COOKIE).iter().any(|v| {
            v.to_str()
                .unwrap()
                .starts_with(&format!("{BINDING_COOKIE}=;"))
        });
        assert!(cleared, "{path}");
        assert_eq!(
            f.last_reason(SIGN_IN_ACTION).await,
            ("deny".to_string(), reason),
            "{path}"
        );
        assert!(f.stored_pending(state).await.unwrap().used, "{path}");
        // A second answer with the same state is refused as reused.
        f.get(path, &cookie).await;
        assert_eq!(
            f.last_reason(SIGN_IN_ACTION).await.1,
            "state was already used"
        );
    }
    assert_eq!(f.sessions().await, 0);
}

#[tokio::test]
async fn a_consumed_state_with_an_unreachable_provider_is_a_503_and_starts_no_session() {
    let f = fixture().await;
    f.put_pending("s", &pending("corp", "b", NOW + 600, false))
        .await;
    let resp = f
        .get(
            "/login/oidc/corp/callback?code=c&state=s",
            &format!("{BINDING_COOKIE}=b"),
        )
        .await;
    assert_eq!(resp.status(), StatusCode::SERVICE_UNAVAILABLE);
    let (decision, reason) = f.last_reason(SIGN_IN_ACTION).await;
    assert_eq!(decision, "error");
    assert!(
        reason.starts_with("identity provider unreachable"),
        "{reason}"
    );
    assert_eq!(f.sessions().await, 0);
}

#[tokio::test]
async fn expired_pending_logins_are_purged_and_live_ones_kept() {
    let f = fixture().await;
    f.put_pending("live", &pending("corp", "b", NOW + 600, false))
        .await;
    f.put_pending("used", &pending("corp", "b", NOW + 600, true))
        .await;
    f.put_pending("old", &pending("corp", "b", NOW - 1, false))
        .await;
    assert_eq!(super::purge_expired(&f.app).await.unwrap(), 1);
    assert!(f.stored_pending("used").await.is_some());
    assert!(f.stored_pending("old").await.is_none());
    assert!(f.stored_pending("live").await.is_some());
    f.clock
        .advance(chrono::Duration::seconds(LOGIN_TIMEOUT_SECONDS));
    assert_eq!(super::purge_expired(&f.app).await.unwrap(), 2);
}

#[tokio::test]
async fn starts_from_one_address_are_rate_limited_like_password_sign_ins() {
    let f = fixture().await;
    // The default login_per_ip burst is 20 (refilled at one a second): each start before the
    // limit reaches discovery; then one is refused.
    let mut passed = 0;
    let resp = loop {
        let resp = f.get("/login/oidc/corp", "").await;
        if resp.status() != StatusCode::SERVICE_UNAVAILABLE {
            break resp;
        }
        passed += 1;
        assert!(passed < 60, "no start was rate limited");
    };
    assert!(passed >= 20, "{passed}");
    assert_eq!(resp.status(), StatusCode::TOO_MANY_REQUESTS);
    assert!(!sets_cookie(&resp, BINDING_COOKIE));
    assert!(text(resp).await.contains("Too many sign-ins"));
    let (decision, reason) = f.last_reason(START_ACTION).await;
    assert_eq!(decision, "deny");
    assert!(
        reason.starts_with("rate limit login_per_ip exceeded"),
        "{reason}"
    );
}
