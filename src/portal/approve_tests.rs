//! The approval pages of command line sign-in (`/device`, `/authorize`), through the router, with
//! the SSO-OIDC API that starts and finishes each flow.

use super::session::SESSION_COOKIE;
use super::tests::{
    config, csrf_of, fixture_with, location, session_cookie, set_cookie, text, Fixture, ORIGIN,
};
use crate::idp::local::totp;
use crate::sso::{client, code, token};
use crate::testing::unescape;
use axum::http::{header, StatusCode};
use axum::response::Response;
use serde_json::{json, Value};

const SSO: &str = "[sso]\n";
const START_URL: &str = "http://127.0.0.1:8080/start";
const VERIFIER: &str = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk";
const REDIRECT: &str = "http://127.0.0.1:54321/oauth/callback";

async fn fixture() -> Fixture {
    fixture_with(config().with(SSO)).await
}

fn query_of(url: &str) -> std::collections::HashMap<String, String> {
    let u = url::Url::parse(url).unwrap();
    u.query_pairs().into_owned().collect()
}

impl Fixture {
    async fn api(&self, path: &str, body: Value) -> (StatusCode, String, Value) {
        crate::sso::testing::api(&self.app, path, &body.to_string()).await
    }

    async fn register(&self, body: Value) -> (String, String) {
        crate::sso::testing::register(&self.app, body).await
    }

    /// A device client and a started device authorization: (id, secret, answer).
    async fn device_flow(&self, name: &str) -> (String, String, Value) {
        let (id, secret) = self
            .register(json!({"clientName": name, "clientType": "public"}))
            .await;
        let (status, _, d) = self
            .api(
                "/device_authorization",
                json!({"clientId": id, "clientSecret": secret, "startUrl": START_URL}),
            )
            .await;
        assert_eq!(status, StatusCode::OK, "{d}");
        (id, secret, d)
    }

    async fn poll(&self, id: &str, secret: &str, device_code: &str) -> (StatusCode, String, Value) {
        self.api(
            "/token",
            json!({"clientId": id, "clientSecret": secret,
                   "grantType": client::DEVICE_GRANT, "deviceCode": device_code}),
        )
        .await
    }

    /// Signs ana in with the password form, asking to come back to `return_to`; returns the
    /// session cookie value and the answer.
    async fn sign_in_to(&self, return_to: &str) -> (String, Response) {
        self.sign_in_with(Some(return_to), None).await
    }

    /// The device page's CSRF token for a session.
    async fn device_csrf(&self, session: &str) -> String {
        let r = self.get("/device", &session_cookie(session)).await;
        assert_eq!(r.status(), StatusCode::OK);
        csrf_of(&text(r).await)
    }

    async fn enter_code(&self, session: &str, csrf: &str, user_code: &str) -> Response {
        self.post(
            "/device",
            &session_cookie(session),
            ORIGIN,
            &[("csrf", csrf), ("user_code", user_code)],
        )
        .await
    }

    async fn decide(&self, session: &str, csrf: &str, user_code: &str, decision: &str) -> Response {
        self.post(
            "/device/decide",
            &session_cookie(session),
            ORIGIN,
            &[
                ("csrf", csrf),
                ("user_code", user_code),
                ("decision", decision),
            ],
        )
        .await
    }

    async fn reasons(&self, action: &str, decision: &str) -> Vec<String> {
        self.audit(action)
            .await
            .into_iter()
            .filter(|e| e.decision == decision)
            .filter_map(|e| e.reason)
            .collect()
    }
}

#[tokio::test]
async fn the_device_page_sends_to_sign_in_and_back_with_the_code() {
    let f = fixture().await;
    let r = f.get("/device?user_code=bcdf-ghjk", "").await;
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    assert_eq!(
        location(&r),
        "/login?return_to=%2Fdevice%3Fuser_code%3DBCDF-GHJK"
    );
    let (session, resp) = f.sign_in_to("/device?user_code=BCDF-GHJK").await;
    assert_eq!(resp.status(), StatusCode::SEE_OTHER);
    assert_eq!(location(&resp), "/device?user_code=BCDF-GHJK");
    let r = f
        .get("/device?user_code=BCDF-GHJK", &session_cookie(&session))
        .await;
    assert_eq!(r.status(), StatusCode::OK);
    let html = text(r).await;
    assert!(html.contains("value=\"BCDF-GHJK\""), "{html}");
    assert!(html.contains("local/ana"));
    // A malformed code is not reflected into the form.
    let html = text(
        f.get("/device?user_code=%3Cscript%3E", &session_cookie(&session))
            .await,
    )
    .await;
    assert!(
        !html.contains("&#60;script") && html.contains("value=\"\""),
        "{html}"
    );
}

#[tokio::test]
async fn approving_a_device_code_gives_the_client_tokens_carrying_the_approver() {
    let f = fixture().await;
    let (id, secret, d) = f.device_flow("ana's laptop").await;
    let user_code = d["userCode"].as_str().unwrap();
    let device_code = d["deviceCode"].as_str().unwrap();
    let (session, _) = f.sign_in_to("/portal").await;
    let csrf = f.device_csrf(&session).await;
    // Typed in lower case without the dash: the same code.
    let typed = user_code.replace('-', "").to_lowercase();
    let r = f.enter_code(&session, &csrf, &typed).await;
    assert_eq!(r.status(), StatusCode::OK);
    let html = text(r).await;
    for needle in [
        "ana&#39;s laptop",
        user_code,
        "local/ana",
        "Approve",
        "Deny",
    ] {
        assert!(html.contains(needle), "{needle} in {html}");
    }
    let (_, kind, _) = f.poll(&id, &secret, device_code).await;
    assert_eq!(kind, "AuthorizationPendingException");
    let r = f.decide(&session, &csrf, user_code, "approve").await;
    assert_eq!(r.status(), StatusCode::OK);
    let html = text(r).await;
    assert!(html.contains("Device approved"), "{html}");
    f.clock.advance(chrono::Duration::seconds(5));
    let (status, _, t) = f.poll(&id, &secret, device_code).await;
    assert_eq!(status, StatusCode::OK, "{t}");
    let b = token::bearer(&f.app, t["accessToken"].as_str().unwrap())
        .await
        .unwrap();
    assert_eq!(b.signin.identity.display(), "local/ana");
    assert_eq!(b.signin.identity.local_groups, ["dev"]);
    // Used: a second approval finds nothing to approve.
    let r = f.decide(&session, &csrf, user_code, "approve").await;
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);
    assert!(text(r).await.contains("used already"));
    let allowed = f.reasons(super::approve::DEVICE_ACTION, "allow").await;
    assert_eq!(allowed.len(), 1);
    assert!(
        allowed[0].contains(&format!("approved user code {user_code}")),
        "{allowed:?}"
    );
    let ev = f.audit(super::approve::DEVICE_ACTION).await;
    let ok = ev.iter().find(|e| e.decision == "allow").unwrap();
    assert_eq!(ok.principal.as_deref(), Some("local/ana"));
    assert_eq!(ok.resource.as_deref(), Some(id.as_str()));
}

#[tokio::test]
async fn denying_a_device_code_refuses_the_client() {
    let f = fixture().await;
    let (id, secret, d) = f.device_flow("cli").await;
    let (session, _) = f.sign_in_to("/portal").await;
    let csrf = f.device_csrf(&session).await;
    let user_code = d["userCode"].as_str().unwrap();
    let r = f.decide(&session, &csrf, user_code, "deny").await;
    assert_eq!(r.status(), StatusCode::OK);
    assert!(text(r).await.contains("Sign-in denied"));
    let (_, kind, _) = f
        .poll(&id, &secret, d["deviceCode"].as_str().unwrap())
        .await;
    assert_eq!(kind, "AccessDeniedException");
    let denied = f.reasons(super::approve::DEVICE_ACTION, "deny").await;
    assert!(
        denied
            .iter()
            .any(|r| r.contains("local/ana denied user code")),
        "{denied:?}"
    );
    // Neither approve nor deny: refused, and nothing changes.
    let (id2, secret2, d2) = f.device_flow("cli").await;
    let r = f
        .decide(&session, &csrf, d2["userCode"].as_str().unwrap(), "maybe")
        .await;
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);
    let (_, kind, _) = f
        .poll(&id2, &secret2, d2["deviceCode"].as_str().unwrap())
        .await;
    assert_eq!(kind, "AuthorizationPendingException");
}

#[tokio::test]
async fn wrong_expired_and_used_codes_and_forged_forms_get_a_clear_refusal() {
    let f = fixture().await;
    let (id, secret, d) = f.device_flow("cli").await;
    let user_code = d["userCode"].as_str().unwrap().to_string();
    let device_code = d["deviceCode"].as_str().unwrap().to_string();
    let (session, _) = f.sign_in_to("/portal").await;
    let csrf = f.device_csrf(&session).await;
    let unknown = if user_code == "BCDF-GHJK" {
        "BCDF-GHJM"
    } else {
        "BCDF-GHJK"
    };
    for (typed, needle, reason) in [
        (unknown, "not known", "no such user code"),
        ("ABCD-EFGH", "eight letters", "malformed user code"),
        ("", "eight letters", "malformed user code"),
    ] {
        let r = f.enter_code(&session, &csrf, typed).await;
        assert_eq!(r.status(), StatusCode::BAD_REQUEST, "{typed}");
        let html = text(r).await;
        assert!(html.contains(needle), "{typed}: {html}");
        assert!(
            f.reasons(super::approve::DEVICE_ACTION, "deny")
                .await
                .iter()
                .any(|r| r.contains(reason)),
            "{reason}"
        );
    }
    // Forged: another origin, a wrong CSRF token, no session. Nothing is approved.
    let cookie = session_cookie(&session);
    let form = [
        ("csrf", csrf.as_str()),
        ("user_code", user_code.as_str()),
        ("decision", "approve"),
    ];
    let r = f
        .post("/device/decide", &cookie, "https://evil.example", &form)
        .await;
    assert_eq!(r.status(), StatusCode::FORBIDDEN);
    let r = f
        .post(
            "/device/decide",
            &cookie,
            ORIGIN,
            &[
                ("csrf", "x"),
                ("user_code", &user_code),
                ("decision", "approve"),
            ],
        )
        .await;
    assert_eq!(r.status(), StatusCode::FORBIDDEN);
    let r = f.post("/device/decide", "", ORIGIN, &form).await;
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    let (_, kind, _) = f.poll(&id, &secret, &device_code).await;
    assert_eq!(kind, "AuthorizationPendingException");
    let refused = f.reasons(super::approve::DEVICE_ACTION, "deny").await;
    assert!(refused.iter().any(|r| r.contains("CSRF")), "{refused:?}");
    assert!(refused
        .iter()
        .any(|r| r.contains("is not http://127.0.0.1:8080")));

    // Expired.
    f.clock.advance(chrono::Duration::seconds(600));
    let csrf = f.device_csrf(&session).await;
    let r = f.enter_code(&session, &csrf, &user_code).await;
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);
    assert!(text(r).await.contains("expired"));
    assert!(f
        .reasons(super::approve::DEVICE_ACTION, "deny")
        .await
        .iter()
        .any(|r| r.contains(&format!("user code {user_code}: the user code expired"))));
}

#[tokio::test]
async fn user_code_entries_are_rate_limited() {
    let f = fixture_with(
        config()
            .with(SSO)
            .with("[rate_limits]\nuser_code_per_ip = { per_minute = 1, burst = 3 }\n"),
    )
    .await;
    let (_, _, d) = f.device_flow("cli").await;
    let (session, _) = f.sign_in_to("/portal").await;
    let csrf = f.device_csrf(&session).await;
    for _ in 0..3 {
        let r = f.enter_code(&session, &csrf, "BCDF-BCDF").await;
        assert_eq!(r.status(), StatusCode::BAD_REQUEST);
    }
    // Even the right code is refused now.
    let r = f
        .enter_code(&session, &csrf, d["userCode"].as_str().unwrap())
        .await;
    assert_eq!(r.status(), StatusCode::TOO_MANY_REQUESTS);
    assert!(text(r).await.contains("Too many codes"));
    assert!(f
        .reasons(super::approve::DEVICE_ACTION, "deny")
        .await
        .iter()
        .any(|r| r.contains("user_code_per_")));
}

#[tokio::test]
async fn a_person_with_mfa_passes_the_challenge_before_approving_and_the_token_says_so() {
    let f = fixture().await;
    let secret = crate::testing::enable_totp(&f.app, "ana", f.app.clock.now().timestamp()).await;
    f.clock.advance(chrono::Duration::seconds(90));

    let (id, client_secret, flow) = f.device_flow("cli").await;
    let user_code = flow["userCode"].as_str().unwrap();
    let back = format!("/device?user_code={user_code}");
    let (pending, resp) = f.sign_in_to(&back).await;
    let challenge = super::mfa::challenge_url(&back);
    assert_eq!(location(&resp), challenge);
    // Waiting for the challenge, the device page sends there too.
    let r = f.get(&back, &session_cookie(&pending)).await;
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    assert_eq!(location(&r), challenge);
    // And its forms are refused.
    let r = f
        .post(
            "/device",
            &session_cookie(&pending),
            ORIGIN,
            &[("csrf", "x"), ("user_code", user_code)],
        )
        .await;
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    let html = text(f.get(&challenge, &session_cookie(&pending)).await).await;
    let csrf = csrf_of(&html);
    let now = f.app.clock.now().timestamp();
    let r = f
        .post(
            "/portal/mfa",
            &session_cookie(&pending),
            ORIGIN,
            &[
                ("csrf", &csrf),
                ("method", "totp"),
                ("code", &totp::code_at(&secret, now).unwrap()),
                ("return_to", &back),
            ],
        )
        .await;
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    assert_eq!(location(&r), back);
    let session = set_cookie(&r, SESSION_COOKIE).unwrap();
    let csrf = f.device_csrf(&session).await;
    let r = f.decide(&session, &csrf, user_code, "approve").await;
    assert_eq!(r.status(), StatusCode::OK);
    let (status, _, t) = f
        .poll(&id, &client_secret, flow["deviceCode"].as_str().unwrap())
        .await;
    assert_eq!(status, StatusCode::OK, "{t}");
    let b = token::bearer(&f.app, t["accessToken"].as_str().unwrap())
        .await
        .unwrap();
    assert_eq!(b.signin.identity.mfa_time, Some(now));
}

// ----- /authorize -----

async fn pkce_client(f: &Fixture) -> (String, String) {
    crate::sso::testing::pkce_client(&f.app).await
}

fn authorize_url(client_id: &str, redirect: &str, method: &str) -> String {
    let q = form_urlencoded::Serializer::new(String::new())
        .append_pair("response_type", "code")
        .append_pair("client_id", client_id)
        .append_pair("redirect_uri", redirect)
        .append_pair("state", "state-123")
        .append_pair("code_challenge_method", method)
        .append_pair("scopes", "sso:account:access")
        .append_pair("code_challenge", &code::s256(VERIFIER))
        .finish();
    format!("/authorize?{q}")
}

/// The hidden fields and CSRF token of the authorization page, as a form.
fn approval_form(html: &str, decision: &str) -> Vec<(String, String)> {
    let mut form = Vec::new();
    let html = &html[html.find("action=\"/authorize\"").unwrap()..];
    let html = &html[..html.find("</form>").unwrap()];
    for part in html.split("<input type=\"hidden\" name=\"").skip(1) {
        let name = &part[..part.find('"').unwrap()];
        let at = part.find("value=\"").unwrap() + 7;
        let value = &part[at..at + part[at..].find('"').unwrap()];
        form.push((name.to_string(), unescape(value)));
    }
    form.push(("decision".into(), decision.into()));
    form
}

impl Fixture {
    async fn post_form(&self, path: &str, session: &str, form: &[(String, String)]) -> Response {
        let pairs: Vec<(&str, &str)> = form.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
        self.post(path, &session_cookie(session), ORIGIN, &pairs)
            .await
    }
}

#[tokio::test]
async fn authorize_checks_the_client_and_redirect_uri_before_anything_else() {
    let f = fixture().await;
    let (id, _) = pkce_client(&f).await;
    let (device_only, _) = f
        .register(json!({"clientName": "d", "clientType": "public"}))
        .await;
    for (url, reason) in [
        (
            authorize_url("nobody", REDIRECT, "S256"),
            "unknown or expired client nobody",
        ),
        (
            authorize_url(&id, "http://127.0.0.1:54321/elsewhere", "S256"),
            "is not registered",
        ),
        (
            authorize_url(&id, "https://evil.example/cb", "S256"),
            "is not registered",
        ),
        (
            authorize_url(&device_only, REDIRECT, "S256"),
            "is not registered",
        ),
    ] {
        let r = f.get(&url, "").await;
        assert_eq!(r.status(), StatusCode::BAD_REQUEST, "{url}");
        assert!(
            r.headers().get(header::LOCATION).is_none(),
            "never a redirect"
        );
        assert!(text(r).await.contains("Sign-in request not valid"));
        assert!(
            f.reasons(super::approve::AUTHORIZE_ACTION, "deny")
                .await
                .iter()
                .any(|r| r.contains(reason)),
            "{reason}"
        );
    }
    // Once the redirect URI is known good, errors go back to it with the state.
    let r = f.get(&authorize_url(&id, REDIRECT, "plain"), "").await;
    assert_eq!(r.status(), StatusCode::FOUND);
    let q = query_of(&location(&r));
    assert!(location(&r).starts_with(REDIRECT));
    assert_eq!(q["error"], "invalid_request");
    assert_eq!(q["state"], "state-123");
    assert!(!q.contains_key("code"));
    let bad_scope =
        authorize_url(&id, REDIRECT, "S256").replace("sso%3Aaccount%3Aaccess", "openid");
    let r = f.get(&bad_scope, "").await;
    assert_eq!(query_of(&location(&r))["error"], "invalid_scope");
    let reasons = f.reasons(super::approve::AUTHORIZE_ACTION, "deny").await;
    assert!(
        reasons.iter().any(|r| r.contains("plain is refused")),
        "{reasons:?}"
    );
}

#[tokio::test]
async fn approving_at_authorize_redirects_a_code_the_client_exchanges_with_its_verifier() {
    let f = fixture().await;
    let (id, secret) = pkce_client(&f).await;
    let url = authorize_url(&id, REDIRECT, "S256");
    // No session: sign in, and come back to the whole request.
    let r = f.get(&url, "").await;
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    assert!(location(&r).starts_with("/login?return_to=%2Fauthorize%3F"));
    let (session, resp) = f.sign_in_to(&url).await;
    assert_eq!(location(&resp), url);
    let r = f.get(&url, &session_cookie(&session)).await;
    assert_eq!(r.status(), StatusCode::OK);
    let csp = r.headers()["content-security-policy"]
        .to_str()
        .unwrap()
        .to_string();
    assert!(
        csp.contains("form-action 'self' http://127.0.0.1:54321")
            && csp.contains("frame-ancestors 'none'"),
        "{csp}"
    );
    let html = text(r).await;
    assert!(
        html.contains("aws-cli") && html.contains("local/ana"),
        "{html}"
    );

    // A forged approval is refused and sends no code.
    let mut forged = approval_form(&html, "approve");
    for (k, v) in forged.iter_mut() {
        if k == "csrf" {
            *v = "x".into();
        }
    }
    let r = f.post_form("/authorize", &session, &forged).await;
    assert_eq!(r.status(), StatusCode::FORBIDDEN);
    assert!(f
        .app
        .store
        .dir_list(code::CODE_KIND)
        .await
        .unwrap()
        .is_empty());
    // A form whose redirect URI was changed is refused with a page.
    let mut moved = approval_form(&html, "approve");
    for (k, v) in moved.iter_mut() {
        if k == "redirect_uri" {
            *v = "http://127.0.0.1:54321/other".into();
        }
    }
    let r = f.post_form("/authorize", &session, &moved).await;
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);
    assert!(r.headers().get(header::LOCATION).is_none());

    let r = f
        .post_form("/authorize", &session, &approval_form(&html, "approve"))
        .await;
    assert_eq!(r.status(), StatusCode::FOUND);
    let to = location(&r);
    assert!(to.starts_with(&format!("{REDIRECT}?")), "{to}");
    let q = query_of(&to);
    assert_eq!(q["state"], "state-123");
    let exchange = |verifier: &str, c: &str| {
        json!({"clientId": id, "clientSecret": secret, "grantType": "authorization_code",
               "code": c, "redirectUri": REDIRECT, "codeVerifier": verifier})
    };
    let (status, _, t) = f.api("/token", exchange(VERIFIER, &q["code"])).await;
    assert_eq!(status, StatusCode::OK, "{t}");
    let b = token::bearer(&f.app, t["accessToken"].as_str().unwrap())
        .await
        .unwrap();
    assert_eq!(b.signin.identity.display(), "local/ana");

    // A second approval, exchanged with the wrong verifier: refused.
    let r = f
        .post_form("/authorize", &session, &approval_form(&html, "approve"))
        .await;
    let q = query_of(&location(&r));
    let (_, kind, _) = f.api("/token", exchange(&"w".repeat(43), &q["code"])).await;
    assert_eq!(kind, "InvalidGrantException");

    // Deny: the client hears access_denied, with its state.
    let r = f
        .post_form("/authorize", &session, &approval_form(&html, "deny"))
        .await;
    assert_eq!(r.status(), StatusCode::FOUND);
    let q = query_of(&location(&r));
    assert_eq!(q["error"], "access_denied");
    assert_eq!(q["state"], "state-123");
    assert!(!q.contains_key("code"));
    let allowed = f.reasons(super::approve::AUTHORIZE_ACTION, "allow").await;
    assert_eq!(allowed.len(), 2);
    let denied = f.reasons(super::approve::AUTHORIZE_ACTION, "deny").await;
    assert!(denied
        .iter()
        .any(|r| r.contains("local/ana denied the sign-in")));
    assert!(denied.iter().any(|r| r.contains("CSRF")));
    assert!(denied.iter().any(|r| r.contains("is not registered")));
}

#[tokio::test]
async fn without_sso_there_are_no_approval_pages_and_no_sso_oidc_api() {
    let f = fixture_with(config()).await;
    assert_eq!(f.get("/device", "").await.status(), StatusCode::NOT_FOUND);
    assert_eq!(
        f.get(&authorize_url("x", REDIRECT, "S256"), "")
            .await
            .status(),
        StatusCode::NOT_FOUND
    );
    let (status, _, _) = f
        .api(
            "/client/register",
            json!({"clientName": "cli", "clientType": "public"}),
        )
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
}
