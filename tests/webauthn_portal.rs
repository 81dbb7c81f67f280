//! The portal's security-key pages through the router, with a software security key answering as
//! a browser at the public URL would: enrolment, the MFA challenge and its new session, and what
//! is refused (replayed, expired, other session's or other site's challenges, unknown or cloned
//! keys, missing CSRF/Origin/session, stale MFA for adding or removing keys), each with its audit
//! reason and nothing recorded.

#[path = "support/softkey.rs"]
mod soft;

use axum::body::Body;
use axum::http::{header, Request, StatusCode};
use axum::response::Response;
use rolegate::app::App;
use rolegate::clock::FixedClock;
use rolegate::idp::local::password::Password;
use rolegate::idp::local::Directory;
use rolegate::testing::{set_cookie, text};
use serde_json::Value;
use soft::SoftKey;
use std::sync::Arc;

const ORIGIN: &str = "https://sso.example.com";
const RP_ID: &str = "sso.example.com";
const PASSWORD: &str = "correct horse battery";
const SESSION: &str = "__Host-rolegate-session";
const LOGIN_CSRF: &str = "__Host-rolegate-csrf";
const CHALLENGE: &str = "portal:SecurityKeyChallenge";
const REGISTER: &str = "portal:RegisterSecurityKey";
const REMOVE: &str = "portal:RemoveSecurityKey";

struct Fixture {
    app: Arc<App>,
    clock: FixedClock,
    origin: String,
}

/// rolegate reached at `public_url` with permission set Ops (MFA) for the group dev, and ana and
/// bo in that group with a password.
async fn fixture_at(public_url: &str) -> Fixture {
    let (app, clock) = rolegate::testing::config()
        .server("127.0.0.1:0", public_url)
        .permission_set("Ops", "mfa = \"required\"")
        .with("[portal]\n")
        .build(1_700_000_000)
        .await;
    for name in ["ana", "bo"] {
        rolegate::testing::directory_user(&app, name, &["dev"]).await;
        app.directory
            .clone()
            .unwrap()
            .set_password(name, Password::new(PASSWORD.to_string()))
            .await
            .unwrap();
    }
    Fixture {
        app,
        clock,
        origin: public_url.trim_end_matches('/').to_string(),
    }
}

async fn fixture() -> Fixture {
    fixture_at(ORIGIN).await
}

/// A signed-in browser: its session cookie and CSRF token.
#[derive(Clone)]
struct Browser {
    session: String,
    csrf: String,
}

impl Browser {
    fn cookie(&self) -> String {
        format!("{SESSION}={}", self.session)
    }
}

impl Fixture {
    fn directory(&self) -> Arc<Directory> {
        self.app.directory.clone().unwrap()
    }

    async fn send(&self, req: Request<Body>) -> Response {
        // Audit records are ordered by time: one millisecond per request keeps them in order.
        self.clock.advance(chrono::Duration::milliseconds(1));
        rolegate::testing::send(&self.app, req).await
    }

    async fn get(&self, path: &str, cookies: &str) -> Response {
        self.send(
            Request::get(path)
                .header(header::COOKIE, cookies)
                .body(Body::empty())
                .unwrap(),
        )
        .await
    }

    async fn post_with(
        &self,
        path: &str,
        cookies: &str,
        origin: Option<&str>,
        form: &[(&str, &str)],
    ) -> Response {
        let body = form_urlencoded::Serializer::new(String::new())
            .extend_pairs(form)
            .finish();
        let mut req = Request::post(path)
            .header(header::COOKIE, cookies)
            .header(header::ACCEPT, "application/json")
            .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded");
        if let Some(o) = origin {
            req = req.header(header::ORIGIN, o);
        }
        self.send(req.body(Body::from(body)).unwrap()).await
    }

    async fn post(&self, path: &str, b: &Browser, form: &[(&str, &str)]) -> Response {
        let mut all = vec![("csrf", b.csrf.as_str())];
        all.extend_from_slice(form);
        self.post_with(path, &b.cookie(), Some(&self.origin), &all)
            .await
    }

    async fn sign_in(&self, user: &str) -> Browser {
        let login = self.get("/login", "").await;
        let csrf = set_cookie(&login, LOGIN_CSRF).unwrap();
        let resp = self
            .post_with(
                "/login/local",
                &format!("{LOGIN_CSRF}={csrf}"),
                Some(&self.origin),
                &[
                    ("csrf", &csrf),
                    ("user", user),
                    ("password", PASSWORD),
                    ("return_to", "/portal"),
                ],
            )
            .await;
        assert_eq!(resp.status(), StatusCode::SEE_OTHER);
        let session = set_cookie(&resp, SESSION).unwrap();
        let csrf = self.csrf_of(&session).await;
        Browser { session, csrf }
    }

    async fn csrf_of(&self, session: &str) -> String {
        let cookie = format!("{SESSION}={session}");
        let mut home = self.get("/portal", &cookie).await;
        if home.status() == StatusCode::SEE_OTHER {
            // A user with a second factor who signed in with the password waits for the challenge.
            let to = home.headers()[header::LOCATION]
                .to_str()
                .unwrap()
                .to_string();
            assert!(to.starts_with("/portal/mfa"), "{to}");
            home = self
                .get("/portal/mfa/webauthn?return_to=/portal", &cookie)
                .await;
        }
        assert_eq!(home.status(), StatusCode::OK);
        rolegate::testing::csrf_of(&text(home).await)
    }

    /// Registers `key` as `label` in `b`'s session (which must be allowed to add one).
    /// Adds a security key in `b`'s session; the registration proves the key, so the session
    /// moves to a new id with the MFA time: returns the browser with that session.
    async fn enrol(&self, b: &Browser, key: &SoftKey, label: &str) -> Browser {
        let begin = self.post("/portal/security/webauthn/begin", b, &[]).await;
        assert_eq!(begin.status(), StatusCode::OK);
        let options = json(begin).await;
        assert_eq!(options["publicKey"]["rp"]["id"], RP_ID);
        let challenge = options["publicKey"]["challenge"].as_str().unwrap();
        let attestation = key.make_credential(challenge, &self.origin, RP_ID);
        let finish = self
            .post(
                "/portal/security/webauthn/finish",
                b,
                &[("label", label), ("credential", &attestation.to_string())],
            )
            .await;
        assert_eq!(finish.status(), StatusCode::OK);
        let session = set_cookie(&finish, SESSION).expect("a new session cookie");
        assert_ne!(session, b.session);
        assert_eq!(
            json(finish).await["redirect"],
            "/portal/security/webauthn?done=added"
        );
        Browser {
            session,
            csrf: b.csrf.clone(),
        }
    }

    /// Starts a challenge in `b`'s session; returns its challenge.
    async fn begin_challenge(&self, b: &Browser) -> String {
        let begin = self.post("/portal/mfa/webauthn/begin", b, &[]).await;
        assert_eq!(begin.status(), StatusCode::OK);
        let options = json(begin).await;
        assert_eq!(options["publicKey"]["rpId"], RP_ID);
        options["publicKey"]["challenge"]
            .as_str()
            .unwrap()
            .to_string()
    }

    async fn finish_challenge(&self, b: &Browser, assertion: &Value) -> Response {
        self.post(
            "/portal/mfa/webauthn/finish",
            b,
            &[
                ("credential", &assertion.to_string()),
                ("return_to", "/portal/history"),
            ],
        )
        .await
    }

    /// Whether `b`'s session may take the MFA-only permission set.
    /// The answer to a request for the MFA-only permission set: 200 with MFA, 403 without. A
    /// password-only session of a user with a second factor is sent to the challenge instead
    /// (303 to `/portal/mfa…`): also no MFA, reported as 403.
    async fn has_mfa(&self, b: &Browser) -> StatusCode {
        let r = self
            .post(
                "/portal/credentials",
                b,
                &[("account", "111122223333"), ("permission_set", "Ops")],
            )
            .await;
        if r.status() == StatusCode::SEE_OTHER
            && r.headers()[header::LOCATION]
                .to_str()
                .unwrap()
                .starts_with("/portal/mfa")
        {
            return StatusCode::FORBIDDEN;
        }
        r.status()
    }

    async fn audit(&self, action: &str) -> Vec<rolegate::audit::AuditEvent> {
        rolegate::testing::audit(&self.app, action).await
    }

    /// The reason of the last audit record of `action`, asserting its decision.
    async fn last_reason(&self, action: &str, decision: &str) -> String {
        let all = self.audit(action).await;
        let last = all.first().expect("an audit record"); // newest first
        assert_eq!(last.decision, decision, "{last:?}");
        last.reason.clone().unwrap_or_default()
    }

    async fn key_count(&self, user: &str) -> usize {
        Directory::security_keys_of(&self.directory().user(user).await.unwrap()).len()
    }
}

async fn json(resp: Response) -> Value {
    serde_json::from_str(&text(resp).await).unwrap()
}

/// Asserts a JSON refusal with `status` and error `code`; returns its message.
async fn refused(resp: Response, status: StatusCode, code: &str) -> String {
    assert_eq!(resp.status(), status);
    assert!(set_cookie(&resp, SESSION).is_none(), "no new session");
    let body = json(resp).await;
    assert_eq!(body["error"], code, "{body}");
    body["message"].as_str().unwrap().to_string()
}

#[tokio::test]
async fn enrolled_key_passes_the_challenge_and_the_session_moves_to_a_new_id_with_mfa() {
    let f = fixture().await;
    let b = f.sign_in("ana").await;
    let page = f.get("/portal/security/webauthn", &b.cookie()).await;
    assert_eq!(page.status(), StatusCode::OK);
    let html = text(page).await;
    assert!(html.contains("You have no security key yet"), "{html}");
    assert!(html.contains(r#"<script src="/static/webauthn.js" defer></script>"#));
    // Without JavaScript the form stays hidden and the notice says what is needed.
    assert!(
        html.contains(r#"<form id="webauthn-form" class="stack" data-webauthn="create" hidden"#)
    );
    assert!(html.contains("Adding a security key needs JavaScript"));
    let js = f.get("/static/webauthn.js", "").await;
    assert_eq!(js.status(), StatusCode::OK);
    assert_eq!(
        js.headers()[header::CONTENT_TYPE],
        "text/javascript; charset=utf-8"
    );
    assert!(text(js).await.contains("navigator.credentials.create"));
    let csp = f
        .get("/portal/security/webauthn", &b.cookie())
        .await
        .headers()["content-security-policy"]
        .to_str()
        .unwrap()
        .to_string();
    assert!(
        csp.contains("script-src 'self'") && csp.contains("connect-src 'self'"),
        "{csp}"
    );
    // The challenge page of a user without keys says so and offers no button.
    let html = text(
        f.get("/portal/mfa/webauthn?return_to=/portal", &b.cookie())
            .await,
    )
    .await;
    assert!(
        html.contains("No security key is registered to your account"),
        "{html}"
    );
    assert!(!html.contains("Use security key"), "{html}");

    let mut key = SoftKey::new();
    let b = f.enrol(&b, &key, "blue key").await;
    assert_eq!(f.has_mfa(&b).await, StatusCode::OK);
    assert_eq!(
        f.last_reason(REGISTER, "allow").await,
        "security key \"blue key\" added"
    );
    let html = text(
        f.get("/portal/security/webauthn?done=added", &b.cookie())
            .await,
    )
    .await;
    assert!(html.contains("<td>blue key</td>"), "{html}");
    assert!(html.contains("The security key was added."));

    // Signed in with the password only: the MFA set is refused until the challenge is passed.
    let b = f.sign_in("ana").await;
    assert_eq!(f.has_mfa(&b).await, StatusCode::FORBIDDEN);
    let challenge = f.begin_challenge(&b).await;
    let assertion = key.get_assertion(&challenge, &f.origin, RP_ID);
    let done = f.finish_challenge(&b, &assertion).await;
    assert_eq!(done.status(), StatusCode::OK);
    let new_session = set_cookie(&done, SESSION).expect("a new session cookie");
    assert_ne!(new_session, b.session);
    assert_eq!(json(done).await["redirect"], "/portal/history");
    assert_eq!(
        f.last_reason(CHALLENGE, "allow").await,
        "MFA with a security key"
    );

    // The old id is gone; the new one carries the MFA.
    assert_eq!(
        f.get("/portal", &b.cookie()).await.status(),
        StatusCode::UNAUTHORIZED
    );
    let stepped = Browser {
        csrf: f.csrf_of(&new_session).await,
        session: new_session,
    };
    assert_eq!(f.has_mfa(&stepped).await, StatusCode::OK);

    // Without `Accept: application/json` the finish answers a 303 to the safe return_to.
    let b = f.sign_in("ana").await;
    let challenge = f.begin_challenge(&b).await;
    let assertion = key.get_assertion(&challenge, &f.origin, RP_ID);
    let body = form_urlencoded::Serializer::new(String::new())
        .extend_pairs([
            ("csrf", b.csrf.as_str()),
            ("credential", &assertion.to_string()),
            ("return_to", "https://evil.example/portal"),
        ])
        .finish();
    let resp = f
        .send(
            Request::post("/portal/mfa/webauthn/finish")
                .header(header::COOKIE, b.cookie())
                .header(header::ORIGIN, ORIGIN)
                .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
                .body(Body::from(body))
                .unwrap(),
        )
        .await;
    assert_eq!(resp.status(), StatusCode::SEE_OTHER);
    assert_eq!(resp.headers()[header::LOCATION], "/portal");
    assert!(set_cookie(&resp, SESSION).is_some());
}

#[tokio::test]
async fn a_challenge_is_single_use_and_expires() {
    let f = fixture().await;
    let b = f.sign_in("ana").await;
    let mut key = SoftKey::new();
    f.enrol(&b, &key, "k").await;

    // Replayed: the same answer again, after it was accepted.
    let b = f.sign_in("ana").await;
    let challenge = f.begin_challenge(&b).await;
    let assertion = key.get_assertion(&challenge, &f.origin, RP_ID);
    let done = f.finish_challenge(&b, &assertion).await;
    assert_eq!(done.status(), StatusCode::OK);
    let stepped = Browser {
        session: set_cookie(&done, SESSION).unwrap(),
        csrf: b.csrf.clone(),
    };
    // The step-up's session may start a new challenge, but the old answer does not finish it.
    let _ = f.begin_challenge(&stepped).await;
    let msg = refused(
        f.finish_challenge(&stepped, &assertion).await,
        StatusCode::FORBIDDEN,
        "rejected",
    )
    .await;
    assert!(msg.contains("not accepted"), "{msg}");
    assert!(f
        .last_reason(CHALLENGE, "deny")
        .await
        .contains("MismatchedChallenge"));
    // That failed finish consumed the challenge too: nothing is pending now.
    let again = key.get_assertion(&challenge, &f.origin, RP_ID);
    refused(
        f.finish_challenge(&stepped, &again).await,
        StatusCode::FORBIDDEN,
        "no_ceremony",
    )
    .await;
    assert_eq!(
        f.last_reason(CHALLENGE, "deny").await,
        "no security key ceremony is pending"
    );

    // Expired: answered correctly, but after the ceremony's five minutes.
    let b = f.sign_in("ana").await;
    let challenge = f.begin_challenge(&b).await;
    let late = key.get_assertion(&challenge, &f.origin, RP_ID);
    f.clock.advance(chrono::Duration::seconds(300));
    refused(
        f.finish_challenge(&b, &late).await,
        StatusCode::FORBIDDEN,
        "expired",
    )
    .await;
    assert!(f
        .last_reason(CHALLENGE, "deny")
        .await
        .contains("ceremony expired at"));
    assert_eq!(f.has_mfa(&b).await, StatusCode::FORBIDDEN);
}

#[tokio::test]
async fn ceremonies_nobody_finished_are_purged_once_expired() {
    let f = fixture().await;
    let b = f.sign_in("ana").await;
    let mut key = SoftKey::new();
    f.enrol(&b, &key, "k").await;
    let b = f.sign_in("ana").await;
    let challenge = f.begin_challenge(&b).await;
    let assertion = key.get_assertion(&challenge, &f.origin, RP_ID);
    let d = f.directory();
    f.clock.advance(chrono::Duration::seconds(299));
    assert_eq!(d.purge_expired_ceremonies().await.unwrap(), 0, "still live");
    f.clock.advance(chrono::Duration::seconds(1));
    rolegate::portal::purge_expired(&f.app).await.unwrap();
    assert_eq!(
        d.purge_expired_ceremonies().await.unwrap(),
        0,
        "already gone"
    );
    refused(
        f.finish_challenge(&b, &assertion).await,
        StatusCode::FORBIDDEN,
        "no_ceremony",
    )
    .await;
}

#[tokio::test]
async fn a_challenge_belongs_to_the_session_that_started_it() {
    let f = fixture().await;
    let b = f.sign_in("ana").await;
    let mut key = SoftKey::new();
    f.enrol(&b, &key, "k").await;
    let first = f.sign_in("ana").await;
    let second = f.sign_in("ana").await;
    let challenge = f.begin_challenge(&first).await;
    let assertion = key.get_assertion(&challenge, &f.origin, RP_ID);
    refused(
        f.finish_challenge(&second, &assertion).await,
        StatusCode::FORBIDDEN,
        "no_ceremony",
    )
    .await;
    assert_eq!(f.has_mfa(&second).await, StatusCode::FORBIDDEN);
    // The session that started it still can finish it.
    let done = f.finish_challenge(&first, &assertion).await;
    assert_eq!(done.status(), StatusCode::OK);

    // Another user's session cannot finish it either (bo has no key: nothing to start).
    let bo = f.sign_in("bo").await;
    refused(
        f.post("/portal/mfa/webauthn/begin", &bo, &[]).await,
        StatusCode::CONFLICT,
        "no_keys",
    )
    .await;
    assert_eq!(
        f.last_reason(CHALLENGE, "deny").await,
        "user bo has no security key"
    );
}

#[tokio::test]
async fn wrong_origin_unknown_key_and_stale_counter_are_refused_with_their_reasons() {
    let f = fixture().await;
    let b = f.sign_in("ana").await;
    let mut key = SoftKey::new();
    f.enrol(&b, &key, "k").await;

    let b = f.sign_in("ana").await;
    let challenge = f.begin_challenge(&b).await;
    let phished = key.get_assertion(&challenge, "https://sso.example.com.evil.example", RP_ID);
    let msg = refused(
        f.finish_challenge(&b, &phished).await,
        StatusCode::FORBIDDEN,
        "wrong_origin",
    )
    .await;
    assert!(msg.contains("another site"), "{msg}");
    assert!(f
        .last_reason(CHALLENGE, "deny")
        .await
        .contains("InvalidRPOrigin"));

    let mut stranger = SoftKey::new();
    let challenge = f.begin_challenge(&b).await;
    let foreign = stranger.get_assertion(&challenge, &f.origin, RP_ID);
    let msg = refused(
        f.finish_challenge(&b, &foreign).await,
        StatusCode::FORBIDDEN,
        "unknown_credential",
    )
    .await;
    assert!(msg.contains("not registered to your account"), "{msg}");
    assert!(f
        .last_reason(CHALLENGE, "deny")
        .await
        .contains("CredentialNotFound"));

    // A copy of the key that fell behind: the original moves on, the copy replays old counters.
    let mut copy = key.clone();
    let challenge = f.begin_challenge(&b).await;
    let ok = key.get_assertion(&challenge, &f.origin, RP_ID);
    let done = f.finish_challenge(&b, &ok).await;
    assert_eq!(done.status(), StatusCode::OK);
    let b = Browser {
        session: set_cookie(&done, SESSION).unwrap(),
        csrf: b.csrf.clone(),
    };
    copy.counter = 0;
    let challenge = f.begin_challenge(&b).await;
    let cloned = copy.get_assertion(&challenge, &f.origin, RP_ID);
    let msg = refused(
        f.finish_challenge(&b, &cloned).await,
        StatusCode::FORBIDDEN,
        "counter",
    )
    .await;
    assert!(msg.contains("may have been copied"), "{msg}");
    let reason = f.last_reason(CHALLENGE, "deny").await;
    assert!(
        reason.contains("CredentialPossibleCompromise")
            || reason.contains("signature counter did not increase"),
        "{reason}"
    );
}

#[tokio::test]
async fn another_rp_id_is_refused_and_repeated_failures_lock_security_keys() {
    let f = fixture().await;
    let b = f.sign_in("ana").await;
    let mut key = SoftKey::new();
    f.enrol(&b, &key, "k").await;
    let b = f.sign_in("ana").await;
    let challenge = f.begin_challenge(&b).await;
    let other_rp = key.get_assertion(&challenge, &f.origin, "example.com");
    refused(
        f.finish_challenge(&b, &other_rp).await,
        StatusCode::FORBIDDEN,
        "wrong_origin",
    )
    .await;
    assert!(f
        .last_reason(CHALLENGE, "deny")
        .await
        .contains("InvalidRPIDHash"));
    // Four more failures make five: then even a correct answer is refused for a while.
    for _ in 0..4 {
        let challenge = f.begin_challenge(&b).await;
        let bad = key.get_assertion(&challenge, "https://evil.example", RP_ID);
        refused(
            f.finish_challenge(&b, &bad).await,
            StatusCode::FORBIDDEN,
            "wrong_origin",
        )
        .await;
    }
    let challenge = f.begin_challenge(&b).await;
    let good = key.get_assertion(&challenge, &f.origin, RP_ID);
    let msg = refused(
        f.finish_challenge(&b, &good).await,
        StatusCode::TOO_MANY_REQUESTS,
        "locked",
    )
    .await;
    assert!(msg.starts_with("Too many failed attempts"), "{msg}");
    assert!(f
        .last_reason(CHALLENGE, "deny")
        .await
        .contains("is locked after repeated failures"));
    assert_eq!(f.has_mfa(&b).await, StatusCode::FORBIDDEN);
}

#[tokio::test]
async fn every_ceremony_post_needs_our_origin_a_session_and_its_csrf_token() {
    let f = fixture().await;
    let b = f.sign_in("ana").await;
    for path in [
        "/portal/security/webauthn/begin",
        "/portal/security/webauthn/finish",
        "/portal/mfa/webauthn/begin",
        "/portal/mfa/webauthn/finish",
    ] {
        let action = if path.contains("/mfa/") {
            CHALLENGE
        } else {
            REGISTER
        };
        let good = [("csrf", b.csrf.as_str())];
        let r = f.post_with(path, &b.cookie(), None, &good).await;
        refused(r, StatusCode::FORBIDDEN, "forged").await;
        assert_eq!(
            f.last_reason(action, "deny").await,
            "no Origin header on a state-changing request"
        );
        let r = f
            .post_with(path, &b.cookie(), Some("https://evil.example"), &good)
            .await;
        refused(r, StatusCode::FORBIDDEN, "forged").await;
        assert!(f
            .last_reason(action, "deny")
            .await
            .contains("Origin https://evil.example is not"));
        let r = f
            .post_with(path, &b.cookie(), Some(ORIGIN), &[("csrf", "wrong")])
            .await;
        refused(r, StatusCode::FORBIDDEN, "forged").await;
        assert_eq!(
            f.last_reason(action, "deny").await,
            "CSRF token missing or wrong"
        );
        let r = f.post_with(path, &b.cookie(), Some(ORIGIN), &[]).await;
        refused(r, StatusCode::FORBIDDEN, "forged").await;
        let r = f.post_with(path, "", Some(ORIGIN), &good).await;
        refused(r, StatusCode::UNAUTHORIZED, "session_expired").await;
        assert_eq!(f.last_reason(action, "deny").await, "no live session");
    }
    // None of the refused begins left a ceremony to finish.
    let key = SoftKey::new();
    let attestation = key.make_credential("AAAA", ORIGIN, RP_ID);
    refused(
        f.post(
            "/portal/security/webauthn/finish",
            &b,
            &[("label", "k"), ("credential", &attestation.to_string())],
        )
        .await,
        StatusCode::FORBIDDEN,
        "no_ceremony",
    )
    .await;
    assert_eq!(f.key_count("ana").await, 0);
    // Pages without a session send the browser to sign in, and back.
    let r = f
        .get("/portal/mfa/webauthn?return_to=/portal/history", "")
        .await;
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    assert_eq!(
        r.headers()[header::LOCATION],
        "/login?return_to=%2Fportal%2Fmfa%2Fwebauthn%3Freturn_to%3D%252Fportal%252Fhistory"
    );
}

#[tokio::test]
async fn adding_a_second_factor_or_removing_a_key_needs_a_fresh_mfa() {
    let f = fixture().await;
    let b = f.sign_in("ana").await;
    // Bad names are refused before the ceremony is consumed: it still finishes afterwards.
    let mut key = SoftKey::new();
    let begin = json(f.post("/portal/security/webauthn/begin", &b, &[]).await).await;
    let attestation = key
        .make_credential(
            begin["publicKey"]["challenge"].as_str().unwrap(),
            &f.origin,
            RP_ID,
        )
        .to_string();
    for (label, code) in [("", "bad_label"), ("a\nb", "bad_label")] {
        refused(
            f.post(
                "/portal/security/webauthn/finish",
                &b,
                &[("label", label), ("credential", &attestation)],
            )
            .await,
            StatusCode::BAD_REQUEST,
            code,
        )
        .await;
    }
    let long = "x".repeat(65);
    refused(
        f.post(
            "/portal/security/webauthn/finish",
            &b,
            &[("label", &long), ("credential", &attestation)],
        )
        .await,
        StatusCode::BAD_REQUEST,
        "bad_label",
    )
    .await;
    let ok = f
        .post(
            "/portal/security/webauthn/finish",
            &b,
            &[("label", " first "), ("credential", &attestation)],
        )
        .await;
    assert_eq!(ok.status(), StatusCode::OK);
    assert_eq!(f.key_count("ana").await, 1);

    // ana now has a second factor: a password-only session waits for the challenge and cannot add
    // another.
    let pending = f.sign_in("ana").await;
    let r = f
        .post("/portal/security/webauthn/begin", &pending, &[])
        .await;
    assert_eq!(r.status(), StatusCode::FORBIDDEN);
    let body = json(r).await;
    assert_eq!(body["error"], "fresh_mfa_required");
    assert_eq!(
        body["redirect"],
        "/portal/mfa/webauthn?return_to=%2Fportal%2Fsecurity%2Fwebauthn"
    );
    assert_eq!(
        f.last_reason(REGISTER, "deny").await,
        "the session has not passed the MFA challenge yet"
    );

    // A session whose MFA is older than 15 minutes can neither add nor remove a key.
    let challenge = f.begin_challenge(&pending).await;
    let done = f
        .finish_challenge(&pending, &key.get_assertion(&challenge, &f.origin, RP_ID))
        .await;
    let b = Browser {
        session: set_cookie(&done, SESSION).unwrap(),
        csrf: pending.csrf.clone(),
    };
    f.clock.advance(chrono::Duration::minutes(16));
    let r = f.post("/portal/security/webauthn/begin", &b, &[]).await;
    assert_eq!(r.status(), StatusCode::FORBIDDEN);
    assert_eq!(json(r).await["error"], "fresh_mfa_required");
    assert!(f
        .last_reason(REGISTER, "deny")
        .await
        .starts_with("adding a security key to a user with MFA needs an MFA in the last 900 s"));
    let id = Directory::security_keys_of(&f.directory().user("ana").await.unwrap())[0]
        .credential_id
        .clone();
    let remove = f
        .post(
            "/portal/security/webauthn/remove",
            &b,
            &[("credential_id", &id)],
        )
        .await;
    assert_eq!(remove.status(), StatusCode::FORBIDDEN);
    assert!(text(remove).await.contains("needs a recent MFA"));
    assert!(f
        .last_reason(REMOVE, "deny")
        .await
        .starts_with("removing a security key needs an MFA"));
    assert_eq!(f.key_count("ana").await, 1);

    // After the challenge: a second key can be added, and the duplicate name is refused.
    let challenge = f.begin_challenge(&b).await;
    let done = f
        .finish_challenge(&b, &key.get_assertion(&challenge, &f.origin, RP_ID))
        .await;
    let b = Browser {
        session: set_cookie(&done, SESSION).unwrap(),
        csrf: b.csrf.clone(),
    };
    let second = SoftKey::new();
    let begin = json(f.post("/portal/security/webauthn/begin", &b, &[]).await).await;
    let excluded = begin["publicKey"]["excludeCredentials"].as_array().unwrap();
    assert_eq!(excluded.len(), 1, "the first key is excluded");
    let attestation = second.make_credential(
        begin["publicKey"]["challenge"].as_str().unwrap(),
        &f.origin,
        RP_ID,
    );
    refused(
        f.post(
            "/portal/security/webauthn/finish",
            &b,
            &[("label", "First"), ("credential", &attestation.to_string())],
        )
        .await,
        StatusCode::CONFLICT,
        "duplicate_label",
    )
    .await;
    let ok = f
        .post(
            "/portal/security/webauthn/finish",
            &b,
            &[
                ("label", "second"),
                ("credential", &attestation.to_string()),
            ],
        )
        .await;
    assert_eq!(ok.status(), StatusCode::OK);
    assert_eq!(f.key_count("ana").await, 2);
    // The registration proved the new key: the session goes on under a new id.
    let b = Browser {
        session: set_cookie(&ok, SESSION).expect("a new session cookie"),
        csrf: b.csrf.clone(),
    };

    // The first key again, from another user: refused as already registered.
    let bo = f.sign_in("bo").await;
    let begin = json(f.post("/portal/security/webauthn/begin", &bo, &[]).await).await;
    let again = key.make_credential(
        begin["publicKey"]["challenge"].as_str().unwrap(),
        &f.origin,
        RP_ID,
    );
    refused(
        f.post(
            "/portal/security/webauthn/finish",
            &bo,
            &[("label", "mine"), ("credential", &again.to_string())],
        )
        .await,
        StatusCode::CONFLICT,
        "already_registered",
    )
    .await;
    assert_eq!(f.key_count("bo").await, 0);

    // Removal with the fresh MFA; the removed key no longer passes a challenge.
    let remove = f
        .post(
            "/portal/security/webauthn/remove",
            &b,
            &[("credential_id", &id)],
        )
        .await;
    assert_eq!(remove.status(), StatusCode::SEE_OTHER);
    assert_eq!(
        remove.headers()[header::LOCATION],
        "/portal/security/webauthn?done=removed"
    );
    assert_eq!(
        f.last_reason(REMOVE, "allow").await,
        "security key \"first\" removed"
    );
    assert_eq!(f.key_count("ana").await, 1);
    let challenge = f.begin_challenge(&b).await;
    refused(
        f.finish_challenge(&b, &key.get_assertion(&challenge, &f.origin, RP_ID))
            .await,
        StatusCode::FORBIDDEN,
        "unknown_credential",
    )
    .await;

    // A fresh MFA goes stale after 15 minutes.
    f.clock.advance(chrono::Duration::seconds(15 * 60));
    let b = Browser {
        csrf: f.csrf_of(&b.session).await,
        ..b
    };
    let r = f.post("/portal/security/webauthn/begin", &b, &[]).await;
    assert_eq!(r.status(), StatusCode::FORBIDDEN);
}

#[tokio::test]
async fn a_registration_started_before_another_key_was_added_cannot_finish_without_fresh_mfa() {
    let f = fixture().await;
    let early = f.sign_in("ana").await;
    let begin = json(f.post("/portal/security/webauthn/begin", &early, &[]).await).await;
    let challenge = begin["publicKey"]["challenge"]
        .as_str()
        .unwrap()
        .to_string();
    // Meanwhile, another session adds the first key: ana now has a second factor.
    let other = f.sign_in("ana").await;
    f.enrol(&other, &SoftKey::new(), "first").await;
    let late = SoftKey::new().make_credential(&challenge, &f.origin, RP_ID);
    let r = f
        .post(
            "/portal/security/webauthn/finish",
            &early,
            &[("label", "late"), ("credential", &late.to_string())],
        )
        .await;
    // The early session signed in with the password alone, and ana now has a second factor: the
    // one MFA rule ends that session, so its registration cannot finish.
    let msg = refused(r, StatusCode::UNAUTHORIZED, "session_expired").await;
    assert!(msg.contains("Sign in again"), "{msg}");
    assert_eq!(f.key_count("ana").await, 1);
}

#[tokio::test]
async fn security_keys_are_off_where_browsers_cannot_use_them() {
    let f = fixture_at("http://127.0.0.1:8080").await;
    assert!(!f.directory().webauthn_enabled());
    let b = f.sign_in("ana").await;
    refused(
        f.post("/portal/security/webauthn/begin", &b, &[]).await,
        StatusCode::NOT_FOUND,
        "unavailable",
    )
    .await;
    assert_eq!(
        f.last_reason(REGISTER, "deny").await,
        "security keys are off"
    );
    let page = f.get("/portal/security/webauthn", &b.cookie()).await;
    assert_eq!(page.status(), StatusCode::FORBIDDEN);
    let identity = rolegate::portal::SignedInIdentity {
        provider: "local".into(),
        subject: "ana".into(),
        claims: Default::default(),
        mfa_time: None,
        local_groups: vec![],
        origin_user: None,
        signed_in_at: 0,
    };
    assert!(!rolegate::portal::offers_security_key(&f.app, &identity)
        .await
        .unwrap());
}

#[tokio::test]
async fn other_pages_can_ask_whether_to_offer_a_security_key() {
    let f = fixture().await;
    let ana = f.directory().user("ana").await.unwrap();
    let identity =
        |provider: &str, origin_user: Option<String>| rolegate::portal::SignedInIdentity {
            provider: provider.into(),
            signed_in_at: 0,
            subject: "ana".into(),
            claims: Default::default(),
            mfa_time: None,
            local_groups: vec![],
            origin_user,
        };
    let local = identity("local", Some(ana.user_id.clone()));
    assert!(!rolegate::portal::offers_security_key(&f.app, &local)
        .await
        .unwrap());
    let b = f.sign_in("ana").await;
    f.enrol(&b, &SoftKey::new(), "k").await;
    assert!(rolegate::portal::offers_security_key(&f.app, &local)
        .await
        .unwrap());
    // Not for a federated person of the same name, nor a recreated user of that name.
    let federated = identity("corp", Some(ana.user_id.clone()));
    assert!(!rolegate::portal::offers_security_key(&f.app, &federated)
        .await
        .unwrap());
    let stale = identity("local", Some("AIDAOTHER".into()));
    assert!(!rolegate::portal::offers_security_key(&f.app, &stale)
        .await
        .unwrap());
}
