//! "Open console", the federation endpoint's sign-in token and login, and the console page, through
//! the router: every refusal leaves no sign-in token or console session behind and is audited with
//! its reason.

use super::federation::{CONSOLE_COOKIE, CONSOLE_KIND, SIGNIN_KIND};
use super::SignedInIdentity;
use crate::app::App;
use crate::clock::FixedClock;
use crate::testing::{form_body, location, set_cookie, set_cookie_header, text, TestConfig};
use axum::body::Body;
use axum::http::{header, Request, StatusCode};
use axum::response::Response;
use std::sync::Arc;

const ORIGIN: &str = crate::testing::PUBLIC_URL;
const ACCOUNT: &str = crate::testing::ACCOUNT;
const T0: i64 = 1_700_000_000;
/// The relay state of permission set Ext.
const RELAY: &str = "https://console.example.com/app";
const READ_DATA: &str = r#"{"Version":"2012-10-17","Statement":[{"Sid":"ReadData","Effect":"Allow","Action":"s3:GetObject","Resource":"arn:aws:s3:::data/*"}]}"#;

/// Permission sets for the group dev: Dev (reads `data/*`), Ops (MFA), Step (MFA of the last 15
/// minutes) and Ext (a console at `relay`); portal sessions of up to 12 hours.
fn config(relay: &str) -> TestConfig {
    crate::testing::config()
        .permission_set_with_policy("Dev", "", ("read-data", READ_DATA))
        .permission_set("Ops", "mfa = \"required\"")
        .permission_set("Step", "mfa = \"required\"\nmfa_max_age_minutes = 15")
        .permission_set("Ext", &format!("relay_state = \"{relay}\""))
        .with("[portal]\nsession_idle_minutes = 30\nsession_max_hours = 12\n")
}

/// Access key id, secret access key and session token.
type Credentials = (String, String, String);

struct Fixture {
    app: Arc<App>,
    clock: FixedClock,
}

async fn fixture() -> Fixture {
    let (app, clock) = config(RELAY).build(T0).await;
    Fixture { app, clock }
}

fn ana(mfa_time: Option<i64>) -> SignedInIdentity {
    SignedInIdentity {
        claims: serde_json::Map::from_iter([("sub".to_string(), "ana".into())]),
        ..crate::testing::ana(mfa_time)
    }
}

impl Fixture {
    fn now(&self) -> i64 {
        self.app.clock.now().timestamp()
    }

    async fn send(&self, req: Request<Body>) -> Response {
        crate::testing::send(&self.app, req).await
    }

    async fn get(&self, path: &str, cookies: &str) -> Response {
        crate::testing::get(&self.app, path, cookies).await
    }

    async fn post(&self, path: &str, cookies: &str, form: &[(&str, &str)]) -> Response {
        crate::testing::post_form(&self.app, path, cookies, ORIGIN, form).await
    }

    /// A portal session for `identity`: its cookie header and CSRF token.
    async fn portal(&self, identity: SignedInIdentity) -> (String, String) {
        let identity = crate::testing::in_directory(&self.app, identity).await;
        crate::testing::portal_session(&self.app, identity, self.now()).await
    }

    async fn open_console(&self, cookies: &str, csrf: &str, set: &str) -> Response {
        self.post(
            "/portal/console",
            cookies,
            &[
                ("csrf", csrf),
                ("account", ACCOUNT),
                ("permission_set", set),
            ],
        )
        .await
    }

    /// Real credentials for `set` (as command line access issues them): key, secret, token.
    async fn credentials(&self, set: &str, mfa_time: Option<i64>) -> Credentials {
        let id = crate::testing::in_directory(&self.app, ana(mfa_time)).await;
        crate::testing::assignment_credentials(&self.app, &id, ACCOUNT, set).await
    }

    async fn get_signin_token(&self, session_json: &str, duration: Option<&str>) -> Response {
        let mut q = vec![("Action", "getSigninToken"), ("Session", session_json)];
        if let Some(d) = duration {
            q.push(("SessionDuration", d));
        }
        self.get(&format!("/federation?{}", form_body(&q)), "")
            .await
    }

    /// [`Fixture::get_signin_token`] for the credentials `(key, secret, token)`.
    async fn get_signin_token_for(&self, creds: &Credentials, duration: Option<&str>) -> Response {
        let (key, secret, token) = creds;
        self.get_signin_token(&session_json(key, secret, token), duration)
            .await
    }

    /// A sign-in token issued for the credentials `(key, secret, token)`.
    async fn signin_token_for(&self, creds: &Credentials, duration: Option<&str>) -> String {
        signin_token(self.get_signin_token_for(creds, duration).await).await
    }

    async fn records(&self, kind: &str) -> usize {
        self.app.store.dir_list(kind).await.unwrap().len()
    }

    async fn audit(&self, action: &str) -> Vec<crate::audit::AuditEvent> {
        crate::testing::audit(&self.app, action).await
    }

    /// The reason of the newest audit event of `action`.
    async fn last_reason(&self, action: &str) -> (String, String) {
        crate::testing::last_reason(&self.app, action).await
    }
}

fn session_json(key: &str, secret: &str, token: &str) -> String {
    serde_json::json!({"sessionId": key, "sessionKey": secret, "sessionToken": token}).to_string()
}

async fn signin_token(resp: Response) -> String {
    assert_eq!(resp.status(), StatusCode::OK);
    let v: serde_json::Value = serde_json::from_str(&text(resp).await).unwrap();
    v["SigninToken"].as_str().unwrap().to_string()
}

fn login_url(destination: &str, token: &str) -> String {
    format!(
        "/federation?{}",
        form_body(&[
            ("Action", "login"),
            ("Issuer", "https://idp.example.com/"),
            ("Destination", destination),
            ("SigninToken", token),
        ])
    )
}

#[tokio::test]
async fn open_console_without_mfa_is_refused_with_a_page_that_starts_the_mfa_step() {
    let f = fixture().await;
    let (cookies, csrf) = f.portal(ana(None)).await;
    let resp = f.open_console(&cookies, &csrf, "Ops").await;
    assert_eq!(resp.status(), StatusCode::FORBIDDEN);
    assert!(set_cookie_header(&resp, CONSOLE_COOKIE).is_none());
    let html = text(resp).await;
    assert!(html.contains("Permission set Ops requires MFA"), "{html}");
    // The challenge comes back to opening this console.
    assert!(
        html.contains(&format!(
            r#"href="/portal/mfa?return_to=%2Fportal%2Fconsole%3Faccount%3D{ACCOUNT}%26permission_set%3DOps""#
        )),
        "{html}"
    );
    assert_eq!(f.records(SIGNIN_KIND).await, 0);
    assert_eq!(f.records(CONSOLE_KIND).await, 0);
    let (decision, reason) = f.last_reason(super::console::OPEN_ACTION).await;
    assert_eq!(decision, "deny");
    assert!(reason.starts_with("no MFA in this sign-in"), "{reason}");
    // No credentials were issued either.
    assert!(f.audit(super::console::OPEN_ACTION).await[0]
        .access_key_id
        .is_none());
}

#[tokio::test]
async fn mfa_older_than_a_step_up_set_allows_is_refused_and_recent_mfa_passes() {
    let f = fixture().await;
    let (cookies, csrf) = f.portal(ana(Some(T0 - 20 * 60))).await;
    let resp = f.open_console(&cookies, &csrf, "Step").await;
    assert_eq!(resp.status(), StatusCode::FORBIDDEN);
    let html = text(resp).await;
    assert!(
        html.contains("requires MFA within the last 15 minutes; your last MFA was 20 minutes ago"),
        "{html}"
    );
    assert_eq!(f.records(SIGNIN_KIND).await, 0);
    let (_, reason) = f.last_reason(super::console::OPEN_ACTION).await;
    assert!(reason.contains("is 1200 s old"), "{reason}");
    // The same set with recent MFA, and a set without an age limit with the old MFA, open.
    let (cookies, csrf) = f.portal(ana(Some(T0 - 5 * 60))).await;
    let resp = f.open_console(&cookies, &csrf, "Step").await;
    assert_eq!(resp.status(), StatusCode::SEE_OTHER);
    let (cookies, csrf) = f.portal(ana(Some(T0 - 20 * 60))).await;
    let resp = f.open_console(&cookies, &csrf, "Ops").await;
    assert_eq!(resp.status(), StatusCode::SEE_OTHER);
}

#[tokio::test]
async fn open_console_with_mfa_lands_on_the_console_page_once() {
    let f = fixture().await;
    let (cookies, csrf) = f.portal(ana(Some(T0 - 60))).await;
    let resp = f.open_console(&cookies, &csrf, "Ops").await;
    assert_eq!(resp.status(), StatusCode::SEE_OTHER);
    let login = location(&resp);
    assert!(login.starts_with("/federation?Action=login&"), "{login}");
    assert!(login.contains("Destination=%2Fconsole&"), "{login}");
    assert_eq!(f.records(SIGNIN_KIND).await, 1);
    let (decision, _) = f.last_reason(super::console::OPEN_ACTION).await;
    assert_eq!(decision, "allow");

    let resp = f.get(&login, "").await;
    assert_eq!(resp.status(), StatusCode::SEE_OTHER);
    assert_eq!(location(&resp), "/console");
    let c = set_cookie_header(&resp, CONSOLE_COOKIE).unwrap();
    assert!(
        c.contains("Secure") && c.contains("HttpOnly") && c.contains("Path=/"),
        "{c}"
    );
    let console = set_cookie(&resp, CONSOLE_COOKIE).unwrap();
    assert_eq!(f.records(SIGNIN_KIND).await, 0, "the token is spent");
    assert_eq!(f.records(CONSOLE_KIND).await, 1);

    let resp = f
        .get("/console", &format!("{CONSOLE_COOKIE}={console}"))
        .await;
    assert_eq!(resp.status(), StatusCode::OK);
    let html = text(resp).await;
    assert!(
        html.contains("arn:aws:sts::111122223333:assumed-role/RolegateSSO_Ops/ana"),
        "{html}"
    );
    assert!(html.contains("arn:aws:iam::111122223333:role/RolegateSSO_Ops"));
    assert!(html.contains("Identity policy"));
    assert!(!html.contains("<style") && !html.contains("<script>"));

    // The same link again: refused, no second console session.
    f.clock.advance(chrono::Duration::milliseconds(5));
    let resp = f.get(&login, "").await;
    assert_eq!(resp.status(), StatusCode::FORBIDDEN);
    assert!(set_cookie_header(&resp, CONSOLE_COOKIE).is_none());
    assert!(text(resp).await.contains("already used"));
    assert_eq!(f.records(CONSOLE_KIND).await, 1);
    let (decision, reason) = f.last_reason(super::federation::LOGIN_ACTION).await;
    assert_eq!(
        (decision.as_str(), reason.as_str()),
        ("deny", "sign-in token unknown or already used")
    );
}

#[tokio::test]
async fn open_console_without_csrf_or_from_another_origin_is_refused() {
    let f = fixture().await;
    let (cookies, csrf) = f.portal(ana(Some(T0))).await;
    let resp = f
        .post(
            "/portal/console",
            &cookies,
            &[("account", ACCOUNT), ("permission_set", "Ops")],
        )
        .await;
    assert_eq!(resp.status(), StatusCode::FORBIDDEN);
    let (_, reason) = f.last_reason(super::console::OPEN_ACTION).await;
    assert_eq!(reason, "CSRF token missing or wrong");
    let resp = f
        .send(
            Request::post("/portal/console")
                .header(header::COOKIE, &cookies)
                .header(header::ORIGIN, "https://evil.example")
                .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
                .body(Body::from(form_body(&[
                    ("csrf", &csrf),
                    ("account", ACCOUNT),
                    ("permission_set", "Ops"),
                ])))
                .unwrap(),
        )
        .await;
    assert_eq!(resp.status(), StatusCode::FORBIDDEN);
    assert_eq!(f.records(SIGNIN_KIND).await, 0);
    // A set that is not assigned is refused like any other denial.
    let resp = f.open_console(&cookies, &csrf, "Nope").await;
    assert_eq!(resp.status(), StatusCode::FORBIDDEN);
    assert!(text(resp)
        .await
        .contains("Not authorized to use permission set Nope"));
    assert_eq!(f.records(SIGNIN_KIND).await, 0);
}

#[tokio::test]
async fn a_relay_state_console_is_reached_through_a_link_and_the_login_redirects_there() {
    let f = fixture().await;
    let (cookies, csrf) = f.portal(ana(None)).await;
    let resp = f.open_console(&cookies, &csrf, "Ext").await;
    assert_eq!(resp.status(), StatusCode::OK);
    let html = text(resp).await;
    let at = html.find("href=\"/federation?").unwrap() + 6;
    let link = html[at..]
        .split('"')
        .next()
        .unwrap()
        .replace("&#38;", "&")
        .replace("&amp;", "&");
    assert!(html.contains("data-follow"));
    let resp = f.get(&link, "").await;
    assert_eq!(resp.status(), StatusCode::SEE_OTHER);
    assert_eq!(location(&resp), "https://console.example.com/app");
}

#[tokio::test]
async fn get_signin_token_accepts_live_credentials_and_the_console_lasts_at_most_as_long() {
    let f = fixture().await;
    let creds = f.credentials("Dev", None).await;
    let t = f.signin_token_for(&creds, None).await;
    assert!(t.len() >= 43, "{t}");
    assert_eq!(f.records(SIGNIN_KIND).await, 1);
    let resp = f.get(&login_url("/console", &t), "").await;
    assert_eq!(resp.status(), StatusCode::SEE_OTHER);
    // Without SessionDuration: the credentials' remaining hour.
    assert!(set_cookie_header(&resp, CONSOLE_COOKIE)
        .unwrap()
        .contains("Max-Age=3600"));
    // With one: that long, but never longer than the credentials.
    for (asked, max_age) in [("900", 900), ("43200", 3600)] {
        let t = f.signin_token_for(&creds, Some(asked)).await;
        let resp = f.get(&login_url("/console", &t), "").await;
        let c = set_cookie_header(&resp, CONSOLE_COOKIE).unwrap();
        assert!(c.contains(&format!("Max-Age={max_age}")), "{asked}: {c}");
    }
    let (decision, _) = f
        .last_reason(super::federation::GET_SIGNIN_TOKEN_ACTION)
        .await;
    assert_eq!(decision, "allow");
}

#[tokio::test]
async fn get_signin_token_refuses_bad_credentials_and_durations_and_stores_nothing() {
    let f = fixture().await;
    let (key, secret, token) = f.credentials("Dev", None).await;
    let (key2, _, _) = f.credentials("Dev", None).await;
    let mut wrong_secret = secret.clone();
    wrong_secret.replace_range(0..1, if secret.starts_with('A') { "B" } else { "A" });
    let cases: Vec<(String, Option<&str>, u16, &str, &str)> = vec![
        (
            session_json(&key, &wrong_secret, &token),
            None,
            403,
            "InvalidClientTokenId",
            "sessionKey is not the secret of access key",
        ),
        (
            session_json(&key2, &secret, &token),
            None,
            403,
            "InvalidClientTokenId",
            "session token belongs to",
        ),
        (
            session_json(&key, &secret, "not-a-rolegate-token"),
            None,
            403,
            "InvalidClientTokenId",
            "session token:",
        ),
        (
            session_json(&key, &secret, &token),
            Some("899"),
            400,
            "InvalidParameterValue",
            "SessionDuration must be",
        ),
        (
            session_json(&key, &secret, &token),
            Some("43201"),
            400,
            "InvalidParameterValue",
            "SessionDuration must be",
        ),
        (
            session_json(&key, &secret, &token),
            Some("1h"),
            400,
            "InvalidParameterValue",
            "SessionDuration must be",
        ),
        (
            r#"{"sessionId":"x","sessionKey":"y"}"#.into(),
            None,
            400,
            "InvalidParameterValue",
            "Session must be a JSON object",
        ),
    ];
    for (json, duration, status, code, reason) in cases {
        let resp = f.get_signin_token(&json, duration).await;
        assert_eq!(resp.status().as_u16(), status, "{json} {duration:?}");
        assert_eq!(resp.headers()[header::CONTENT_TYPE], "application/json");
        let v: serde_json::Value = serde_json::from_str(&text(resp).await).unwrap();
        assert_eq!(v["Error"]["Code"], code, "{json}");
        assert!(v.get("SigninToken").is_none());
        let (decision, got) = f
            .last_reason(super::federation::GET_SIGNIN_TOKEN_ACTION)
            .await;
        assert_eq!(decision, "deny");
        assert!(
            got.starts_with(reason),
            "{got} does not start with {reason}"
        );
        assert_eq!(f.records(SIGNIN_KIND).await, 0, "{json}");
        f.clock.advance(chrono::Duration::milliseconds(5));
    }
    let resp = f.get("/federation?Action=getSigninToken", "").await;
    assert_eq!(resp.status(), StatusCode::BAD_REQUEST);
    let v: serde_json::Value = serde_json::from_str(&text(resp).await).unwrap();
    assert_eq!(v["Error"]["Code"], "MissingParameter");
    let resp = f.get("/federation?Action=other", "").await;
    assert_eq!(resp.status(), StatusCode::BAD_REQUEST);

    // Expired, then revoked credentials.
    f.clock.advance(chrono::Duration::seconds(3601));
    let resp = f
        .get_signin_token(&session_json(&key, &secret, &token), None)
        .await;
    assert_eq!(resp.status(), StatusCode::FORBIDDEN);
    let v: serde_json::Value = serde_json::from_str(&text(resp).await).unwrap();
    assert_eq!(v["Error"]["Code"], "ExpiredToken");
    let (_, reason) = f
        .last_reason(super::federation::GET_SIGNIN_TOKEN_ACTION)
        .await;
    assert!(reason.contains("expired at"), "{reason}");
    let creds = f.credentials("Dev", None).await;
    f.clock.advance(chrono::Duration::seconds(1));
    f.app
        .revocations
        .revoke(
            f.app.store.as_ref(),
            crate::store::Revocation {
                scope: crate::store::RevocationScope::All,
                issued_before: f.now(),
                created_at: f.now(),
                reason: "incident".into(),
                expires_at: f.now() + 86_400,
            },
        )
        .await
        .unwrap();
    let resp = f.get_signin_token_for(&creds, None).await;
    assert_eq!(resp.status(), StatusCode::FORBIDDEN);
    let (_, reason) = f
        .last_reason(super::federation::GET_SIGNIN_TOKEN_ACTION)
        .await;
    assert!(reason.contains("revocation"), "{reason}");
    assert_eq!(f.records(SIGNIN_KIND).await, 0);
}

#[tokio::test]
async fn a_sign_in_token_expires_after_15_minutes_and_a_foreign_destination_does_not_spend_it() {
    let f = fixture().await;
    let creds = f.credentials("Dev", None).await;
    let t = f.signin_token_for(&creds, None).await;
    for foreign in [
        "https://evil.example/console",
        "//evil.example/console",
        "https://console.example.com/app/other",
        "/console/../admin",
    ] {
        let resp = f.get(&login_url(foreign, &t), "").await;
        assert_eq!(resp.status(), StatusCode::FORBIDDEN, "{foreign}");
        assert!(resp.headers().get(header::LOCATION).is_none());
        let (_, reason) = f.last_reason(super::federation::LOGIN_ACTION).await;
        assert!(reason.contains("is neither /console"), "{reason}");
        f.clock.advance(chrono::Duration::milliseconds(5));
    }
    assert_eq!(f.records(SIGNIN_KIND).await, 1, "still unspent");
    // The public URL's own console is a valid destination too.
    let ok = f
        .get(&login_url("http://127.0.0.1:8080/console", &t), "")
        .await;
    assert_eq!(ok.status(), StatusCode::SEE_OTHER);

    let t = f.signin_token_for(&creds, None).await;
    f.clock.advance(chrono::Duration::seconds(901));
    let resp = f.get(&login_url("/console", &t), "").await;
    assert_eq!(resp.status(), StatusCode::FORBIDDEN);
    assert!(set_cookie_header(&resp, CONSOLE_COOKIE).is_none());
    let (_, reason) = f.last_reason(super::federation::LOGIN_ACTION).await;
    assert!(reason.starts_with("sign-in token expired at"), "{reason}");
    assert_eq!(f.records(SIGNIN_KIND).await, 0);
}

async fn console_for(f: &Fixture, set: &str) -> (String, String) {
    let creds = f.credentials(set, Some(T0)).await;
    let t = f.signin_token_for(&creds, None).await;
    let resp = f.get(&login_url("/console", &t), "").await;
    let cookie = format!(
        "{CONSOLE_COOKIE}={}",
        set_cookie(&resp, CONSOLE_COOKIE).unwrap()
    );
    let html = text(f.get("/console", &cookie).await).await;
    let at = html.find("name=\"csrf\" value=\"").unwrap() + 19;
    (cookie, html[at..at + 43].to_string())
}

#[tokio::test]
async fn the_simulator_answers_allow_and_deny_with_the_engines_explanation() {
    let f = fixture().await;
    let (cookie, csrf) = console_for(&f, "Dev").await;
    let resp = f
        .post(
            "/console/simulate",
            &cookie,
            &[
                ("csrf", &csrf),
                ("action", "s3:GetObject"),
                ("resource", "arn:aws:s3:::data/report.csv"),
                ("context", ""),
            ],
        )
        .await;
    assert_eq!(resp.status(), StatusCode::OK);
    let html = text(resp).await;
    assert!(html.contains("<strong>Allowed</strong> (Allow)"), "{html}");
    f.clock.advance(chrono::Duration::milliseconds(5));
    let resp = f
        .post(
            "/console/simulate",
            &cookie,
            &[
                ("csrf", &csrf),
                ("action", "s3:DeleteObject"),
                ("resource", "arn:aws:s3:::data/report.csv"),
                ("context", "s3:prefix=reports\naws:RequestTag/team=ops"),
            ],
        )
        .await;
    let html = text(resp).await;
    assert!(
        html.contains("<strong>Denied</strong> (ImplicitDeny)"),
        "{html}"
    );
    let explanation = html.split("id=\"sim-explanation\"").nth(1).unwrap();
    assert!(
        explanation.contains("ReadData") && explanation.contains("does not apply"),
        "{explanation}"
    );
    let (decision, reason) = f.last_reason(super::console::SIMULATE_ACTION).await;
    assert_eq!(decision, "allow");
    assert!(reason.ends_with(": ImplicitDeny"), "{reason}");

    // Bad input: a clear message, 400.
    for (action, resource, context, says) in [
        ("GetObject", "*", "", "service:Action"),
        ("s3:GetObject", "bucket", "", "must be * or an ARN"),
        ("s3:GetObject", "*", "novalue", "is not key=value"),
        // The session's own keys cannot be simulated away.
        (
            "s3:GetObject",
            "*",
            "aws:MultiFactorAuthPresent=true",
            "context key aws:MultiFactorAuthPresent is set by rolegate",
        ),
        (
            "s3:GetObject",
            "*",
            "aws:PrincipalTag/team=admins",
            "context key aws:PrincipalTag/team is set by rolegate",
        ),
    ] {
        let resp = f
            .post(
                "/console/simulate",
                &cookie,
                &[
                    ("csrf", &csrf),
                    ("action", action),
                    ("resource", resource),
                    ("context", context),
                ],
            )
            .await;
        assert_eq!(resp.status(), StatusCode::BAD_REQUEST, "{action}");
        let html = text(resp).await;
        assert!(html.contains(says), "{says}: {html}");
        assert!(!html.contains("sim-result"));
    }
    // Without the console's CSRF token: refused.
    let resp = f
        .post(
            "/console/simulate",
            &cookie,
            &[("action", "s3:GetObject"), ("resource", "*")],
        )
        .await;
    assert_eq!(resp.status(), StatusCode::FORBIDDEN);
}

#[tokio::test]
async fn an_expired_console_session_shows_session_expired_and_sign_out_ends_it() {
    let f = fixture().await;
    let (cookie, csrf) = console_for(&f, "Dev").await;
    // Sign-out needs the CSRF token.
    let resp = f.post("/console/logout", &cookie, &[]).await;
    assert_eq!(resp.status(), StatusCode::FORBIDDEN);
    assert_eq!(f.records(CONSOLE_KIND).await, 1);
    let resp = f.post("/console/logout", &cookie, &[("csrf", &csrf)]).await;
    assert_eq!(resp.status(), StatusCode::SEE_OTHER);
    assert_eq!(location(&resp), "/portal");
    assert!(set_cookie_header(&resp, CONSOLE_COOKIE)
        .unwrap()
        .contains("Max-Age=0"));
    assert_eq!(f.records(CONSOLE_KIND).await, 0);
    let resp = f.get("/console", &cookie).await;
    assert_eq!(resp.status(), StatusCode::UNAUTHORIZED);
    assert!(text(resp).await.contains("No console session"));

    let (cookie, _) = console_for(&f, "Dev").await;
    f.clock.advance(chrono::Duration::seconds(3600));
    let resp = f.get("/console", &cookie).await;
    assert_eq!(resp.status(), StatusCode::UNAUTHORIZED);
    assert!(text(resp).await.contains("Console session expired"));
    assert_eq!(f.records(CONSOLE_KIND).await, 0, "the record is deleted");
    let (decision, reason) = f.last_reason(super::console::VIEW_ACTION).await;
    assert_eq!(decision, "deny");
    assert!(reason.starts_with("console session expired at"), "{reason}");
}

#[tokio::test]
async fn the_home_page_offers_open_console_for_every_set() {
    let f = fixture().await;
    let (cookies, _) = f.portal(ana(None)).await;
    let html = text(f.get("/portal", &cookies).await).await;
    for set in ["Dev", "Ops", "Step", "Ext"] {
        assert!(
            html.contains(&format!("aria-label=\"Open console: {set} in main\"")),
            "{set}"
        );
    }
}

#[tokio::test]
async fn purge_removes_spent_sign_in_tokens_and_console_sessions() {
    let f = fixture().await;
    let (_cookie, _) = console_for(&f, "Dev").await;
    let creds = f.credentials("Dev", None).await;
    let _ = f.get_signin_token_for(&creds, None).await;
    assert_eq!(super::purge_expired(&f.app).await.unwrap(), 0);
    assert_eq!(f.records(SIGNIN_KIND).await, 1);
    f.clock.advance(chrono::Duration::seconds(3601));
    assert!(super::purge_expired(&f.app).await.unwrap() >= 2);
    assert_eq!(f.records(SIGNIN_KIND).await, 0);
    assert_eq!(f.records(CONSOLE_KIND).await, 0);
}

#[test]
fn relay_state_must_be_https_or_loopback_http_or_a_path() {
    let load = |relay: &str| {
        crate::config::Config::from_str_with_env(
            std::path::Path::new("/etc/r.toml"),
            &config(relay).text(),
            &[],
        )
    };
    for good in [
        "https://console.example.com/app",
        "http://127.0.0.1:9000/",
        "http://localhost/x",
        "http://[::1]/",
        "/console",
    ] {
        assert!(load(good).is_ok(), "{good}");
    }
    for bad in [
        "http://console.example.com/",
        "https://user:pw@console.example.com/",
        "ftp://console.example.com/",
        "//evil.example",
        "javascript:alert(1)",
        "console",
    ] {
        let e = load(bad).unwrap_err();
        assert!(
            e.0.iter().any(|p| p.message.contains("relay_state")),
            "{bad}: {e:?}"
        );
    }
}
