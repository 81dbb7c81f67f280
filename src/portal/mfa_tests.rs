//! The MFA challenge, TOTP enrolment and recovery codes, through the router.

use super::session::{self, SESSION_COOKIE};
use super::tests::{
    config, config_with_ops, csrf_of, fixture, fixture_with, location, session_cookie, set_cookie,
    text, Fixture, ORIGIN,
};
use crate::idp::local::totp;
use axum::http::StatusCode;
use axum::response::Response;

const CHALLENGE: &str = "portal:MfaChallenge";

/// The serial number of ana's TOTP device.
async fn serial(f: &Fixture) -> String {
    let d = f.app.directory.clone().unwrap();
    d.totp_serial(&d.user("ana").await.unwrap())
}

fn now(f: &Fixture) -> i64 {
    f.app.clock.now().timestamp()
}

/// Enrols ana's TOTP through the directory (codes of this step and the next); returns the secret.
async fn enrol_directly(f: &Fixture) -> Vec<u8> {
    let secret = crate::testing::enable_totp(&f.app, "ana", now(f)).await;
    // Past the steps of the two enrolment codes, with a step of drift to spare.
    f.clock.advance(chrono::Duration::seconds(90));
    secret
}

impl Fixture {
    /// The challenge page's CSRF token.
    async fn challenge_csrf(&self, session: &str) -> String {
        let r = self.get("/portal/mfa", &session_cookie(session)).await;
        assert_eq!(r.status(), StatusCode::OK);
        csrf_of(&text(r).await)
    }

    async fn answer(&self, session: &str, method: &str, code: &str, return_to: &str) -> Response {
        let csrf = self.challenge_csrf(session).await;
        self.post(
            "/portal/mfa",
            &session_cookie(session),
            ORIGIN,
            &[
                ("csrf", &csrf),
                ("method", method),
                ("code", code),
                ("return_to", return_to),
            ],
        )
        .await
    }

    /// Answers the challenge with the TOTP code of `secret` for now.
    async fn answer_totp(&self, session: &str, secret: &[u8], return_to: &str) -> Response {
        let code = totp::code_at(secret, now(self)).unwrap();
        self.answer(session, "totp", &code, return_to).await
    }

    /// Asserts that the TOTP code of `secret` for now passes the challenge of `session`.
    async fn passes_with_totp(&self, session: &str, secret: &[u8]) {
        let r = self.answer_totp(session, secret, "/portal").await;
        assert_eq!(r.status(), StatusCode::SEE_OTHER);
    }

    /// Asserts that an audit event of `action` has this decision and `reason`.
    async fn assert_audited(&self, action: &str, decision: &str, reason: &str) {
        let events = self.audit(action).await;
        let seen: Vec<_> = events.iter().map(|e| (&e.decision, &e.reason)).collect();
        assert!(
            seen.iter()
                .any(|(d, r)| *d == decision && r.as_deref() == Some(reason)),
            "{action}: {decision} {reason:?} in {seen:?}"
        );
    }

    /// Whether an audit event of `action` has this decision and a reason `matches` accepts.
    async fn audited(&self, action: &str, decision: &str, matches: impl Fn(&str) -> bool) -> bool {
        self.audit(action)
            .await
            .iter()
            .any(|e| e.decision == decision && matches(e.reason.as_deref().unwrap_or_default()))
    }

    async fn ops_credentials(&self, session: &str, csrf: &str) -> Response {
        self.get_credentials(session, csrf, "111122223333", "Ops")
            .await
    }

    /// Posts the challenge form with a TOTP `code`, from `origin` with `csrf`.
    async fn challenge(&self, session: &str, origin: &str, csrf: &str, code: &str) -> Response {
        self.post(
            "/portal/mfa",
            &session_cookie(session),
            origin,
            &[("csrf", csrf), ("method", "totp"), ("code", code)],
        )
        .await
    }

    /// Confirms the TOTP enrolment of `session` with the codes of `secret` at `t` and a step later.
    async fn confirm_totp(&self, session: &str, csrf: &str, secret: &[u8], t: i64) -> Response {
        self.post(
            "/portal/security/totp/confirm",
            &session_cookie(session),
            ORIGIN,
            &[
                ("csrf", csrf),
                ("code1", &totp::code_at(secret, t).unwrap()),
                ("code2", &totp::code_at(secret, t + 30).unwrap()),
            ],
        )
        .await
    }

    /// A portal session of `identity`, started now; its id.
    async fn session_of(&self, identity: super::SignedInIdentity) -> String {
        session::create(
            self.app.store.as_ref(),
            identity,
            "127.0.0.1".into(),
            now(self),
        )
        .await
        .unwrap()
    }

    /// Enrols ana's TOTP through the portal pages; returns the secret, the new session cookie and
    /// the recovery codes shown.
    async fn enrol_in_portal(&self, session: &str) -> (Vec<u8>, String, Vec<String>) {
        let csrf = self.home_csrf(session).await;
        let r = self
            .post_csrf("/portal/security/totp", session, &csrf)
            .await;
        assert_eq!(r.status(), StatusCode::SEE_OTHER);
        assert_eq!(location(&r), "/portal/security/totp");
        let html = text(
            self.get("/portal/security/totp", &session_cookie(session))
                .await,
        )
        .await;
        let secret = secret_of(&html);
        let r = self.confirm_totp(session, &csrf, &secret, now(self)).await;
        assert_eq!(r.status(), StatusCode::OK);
        let new = set_cookie(&r, SESSION_COOKIE).expect("a new session cookie");
        let html = text(r).await;
        let codes: Vec<String> = html
            .split("<li><code>")
            .skip(1)
            .map(|s| s.split('<').next().unwrap().to_string())
            .collect();
        self.clock.advance(chrono::Duration::seconds(60));
        (secret, new, codes)
    }
}

/// Asserts that command line access to Ops was refused for want of MFA with a link to the
/// challenge, which comes back to that action; the page.
async fn refused_for_mfa(r: Response) -> String {
    assert_eq!(r.status(), StatusCode::FORBIDDEN);
    let html = text(r).await;
    assert!(
        html.contains(
            "href=\"/portal/mfa?return_to=%2Fportal%2Fcredentials%3Faccount%3D111122223333%26permission_set%3DOps\""
        ),
        "{html}"
    );
    html
}

/// Asserts that an answer to the challenge was refused with `status`, without a new session
/// cookie, on a page that `says` why.
async fn refused(r: Response, status: StatusCode, says: &str) {
    assert_eq!(r.status(), status);
    assert!(set_cookie(&r, SESSION_COOKIE).is_none());
    let html = text(r).await;
    assert!(html.contains(says), "{says} in {html}");
}

fn secret_of(html: &str) -> Vec<u8> {
    let at = html.find("<code id=\"totp-secret\">").expect("the secret") + 23;
    let end = at + html[at..].find('<').unwrap();
    totp::from_base32(&html[at..end].replace(' ', "")).unwrap()
}

#[tokio::test]
async fn a_password_only_sign_in_of_a_user_with_totp_waits_for_the_challenge() {
    let f = fixture().await;
    let secret = enrol_directly(&f).await;
    let (pending, r) = f.sign_in(None).await;
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    assert_eq!(location(&r), "/portal/mfa?return_to=%2Fportal");

    // Until the challenge is passed, the portal sends the browser there and issues nothing.
    let home = f.get("/portal", &session_cookie(&pending)).await;
    assert_eq!(home.status(), StatusCode::SEE_OTHER);
    assert_eq!(location(&home), "/portal/mfa");
    let security = f.get("/portal/security", &session_cookie(&pending)).await;
    assert_eq!(location(&security), "/portal/mfa");
    let csrf = f.challenge_csrf(&pending).await;
    let r = f.ops_credentials(&pending, &csrf).await;
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    assert!(!text(r).await.contains("AWS_ACCESS_KEY_ID"));
    f.assert_audited(
        "portal:GetCredentials",
        "deny",
        "the session has not passed the MFA challenge yet",
    )
    .await;

    let page = text(f.get("/portal/mfa", &session_cookie(&pending)).await).await;
    assert!(page.contains("Code from your authenticator app"), "{page}");
    assert!(!page.contains("Use a security key"), "{page}");
    assert!(
        !page.contains("Recovery code"),
        "no codes made outside the portal"
    );

    let r = f.answer_totp(&pending, &secret, "/portal/history").await;
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    assert_eq!(location(&r), "/portal/history");
    let stepped = set_cookie(&r, SESSION_COOKIE).unwrap();
    assert_ne!(stepped, pending);
    f.assert_audited(CHALLENGE, "allow", "TOTP code accepted")
        .await;
    assert_eq!(
        f.get("/portal", &session_cookie(&pending)).await.status(),
        StatusCode::UNAUTHORIZED,
        "the pending id is gone"
    );
    let csrf = f.home_csrf(&stepped).await;
    let r = f.ops_credentials(&stepped, &csrf).await;
    assert_eq!(r.status(), StatusCode::OK);
    assert!(text(r).await.contains("AWS_ACCESS_KEY_ID"));
}

#[tokio::test]
async fn wrong_replayed_and_drifted_codes_are_refused_and_five_failures_lock() {
    let f = fixture().await;
    let secret = enrol_directly(&f).await;
    let sn = serial(&f).await;
    let t = now(&f);

    let (one, _) = f.sign_in(None).await;
    // Two steps ahead is beyond the one step of drift allowed.
    let r = f
        .answer(
            &one,
            "totp",
            &totp::code_at(&secret, t + 60).unwrap(),
            "/portal",
        )
        .await;
    refused(
        r,
        StatusCode::UNAUTHORIZED,
        "That code is wrong or has been used",
    )
    .await;
    f.assert_audited(CHALLENGE, "deny", &format!("TOTP: wrong MFA code for {sn}"))
        .await;
    assert_eq!(
        location(&f.get("/portal", &session_cookie(&one)).await),
        "/portal/mfa",
        "still pending"
    );
    // One step behind is within the drift.
    let code = totp::code_at(&secret, t - 30).unwrap();
    let r = f.answer(&one, "totp", &code, "/portal").await;
    assert_eq!(r.status(), StatusCode::SEE_OTHER);

    // The same code again, in another session: refused as a replay.
    let (two, _) = f.sign_in(None).await;
    let r = f.answer(&two, "totp", &code, "/portal").await;
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    f.assert_audited(
        CHALLENGE,
        "deny",
        &format!("TOTP: MFA code for {sn} was already used"),
    )
    .await;

    // Four more wrong codes (five failures in all) lock the device: then even a right code fails.
    for i in 0..4 {
        let r = f.answer(&two, "totp", "000000", "/portal").await;
        assert_eq!(r.status(), StatusCode::UNAUTHORIZED, "failure {i}");
    }
    assert!(
        f.audited(CHALLENGE, "deny", |r| r
            .ends_with("; the device is now locked"))
            .await
    );
    let good = totp::code_at(&secret, now(&f) + 30).unwrap();
    let r = f.answer(&two, "totp", &good, "/portal").await;
    refused(r, StatusCode::TOO_MANY_REQUESTS, "locked for a few minutes").await;
    let until = now(&f) + 300;
    f.assert_audited(
        CHALLENGE,
        "deny",
        &format!("TOTP: MFA device {sn} is locked after repeated failures until {until}"),
    )
    .await;
    assert_eq!(
        location(&f.get("/portal", &session_cookie(&two)).await),
        "/portal/mfa"
    );
    // After the lock, the right code works.
    f.clock.advance(chrono::Duration::seconds(301));
    f.passes_with_totp(&two, &secret).await;
}

#[tokio::test]
async fn enrolment_in_the_portal_shows_a_qr_code_and_recovery_codes_that_work_once() {
    let f = fixture().await;
    let (first, _) = f.sign_in(None).await;
    let html = text(f.get("/portal/security", &session_cookie(&first)).await).await;
    assert!(html.contains("Set up authenticator app"), "{html}");
    let (secret, stepped, codes) = f.enrol_in_portal(&first).await;
    assert_eq!(codes.len(), 10);
    let sn = serial(&f).await;
    assert_eq!(
        f.get("/portal", &session_cookie(&first)).await.status(),
        StatusCode::UNAUTHORIZED,
        "enrolment moved the session to a new id"
    );
    f.assert_audited(
        "portal:EnableTotp",
        "allow",
        &format!("{sn} enabled; 10 recovery codes made"),
    )
    .await;
    // Only hashes are stored.
    let stored = f.records(super::recovery::KIND).await;
    assert_eq!(stored.len(), 1);
    assert!(codes
        .iter()
        .all(|c| !stored[0].1.value.contains(c.as_str())));
    let html = text(f.get("/portal/security", &session_cookie(&stepped)).await).await;
    assert!(html.contains("You have 10 unused recovery codes"), "{html}");
    assert!(html.contains("Remove authenticator app"), "{html}");
    assert!(!html.contains("totp-secret"));

    // A password-only sign-in now waits for the challenge, which offers TOTP and recovery codes.
    let (pending, r) = f.sign_in(None).await;
    assert_eq!(location(&r), "/portal/mfa?return_to=%2Fportal");
    let page = text(f.get("/portal/mfa", &session_cookie(&pending)).await).await;
    assert!(page.contains("You have 10 left"), "{page}");
    let r = f.answer(&pending, "recovery", &codes[0], "/portal").await;
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    assert_eq!(location(&r), "/portal");
    f.assert_audited(CHALLENGE, "allow", "recovery code used; 9 left")
        .await;
    // The same code a second time is refused.
    let (again, _) = f.sign_in(None).await;
    let r = f.answer(&again, "recovery", &codes[0], "/portal").await;
    refused(
        r,
        StatusCode::UNAUTHORIZED,
        "That recovery code is wrong or has been used",
    )
    .await;
    f.assert_audited(
        CHALLENGE,
        "deny",
        "recovery code: wrong or already used recovery code",
    )
    .await;
    // The TOTP from the enrolment works too.
    f.passes_with_totp(&again, &secret).await;
}

#[tokio::test]
async fn the_enrolment_secret_is_shown_only_to_the_session_that_started_it() {
    let f = fixture().await;
    let (a, _) = f.sign_in(None).await;
    let (b, _) = f.sign_in(None).await;
    let csrf_a = f.home_csrf(&a).await;
    let csrf_b = f.home_csrf(&b).await;
    let r = f.post_csrf("/portal/security/totp", &a, &csrf_a).await;
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    let page = text(f.get("/portal/security/totp", &session_cookie(&a)).await).await;
    let secret = secret_of(&page);
    let b32 = totp::base32(&secret);
    // The QR code is inline SVG without style attributes (the CSP has no unsafe-inline).
    assert!(
        page.contains("<svg role=\"img\" aria-label=\"QR code"),
        "{page}"
    );
    assert!(!page.contains("style="), "{page}");
    let uri = totp::uri(&secret, "127.0.0.1", "ana").unwrap();
    assert!(
        page.contains(&super::mfa::qr_svg(&uri).unwrap()),
        "the QR code is of the otpauth URI"
    );

    // Another session of the same person sees no secret, and cannot confirm.
    let r = f.get("/portal/security/totp", &session_cookie(&b)).await;
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    assert_eq!(location(&r), "/portal/security");
    let html = text(f.get("/portal/security", &session_cookie(&b)).await).await;
    assert!(!html.contains(&b32[..8]) && !html.contains("totp-secret"));
    assert!(!html.contains("Continue setting up"), "{html}");
    let r = f.confirm_totp(&b, &csrf_b, &secret, now(&f)).await;
    assert_eq!(r.status(), StatusCode::CONFLICT);
    let html = text(r).await;
    assert!(
        !html.contains(&b32[..8]) && !html.contains("<svg"),
        "{html}"
    );
    let d = f.app.directory.clone().unwrap();
    assert!(!d.user("ana").await.unwrap().has_mfa());

    // Wrong codes in the session that started it: the page again, with the message.
    let r = f
        .post(
            "/portal/security/totp/confirm",
            &session_cookie(&a),
            ORIGIN,
            &[("csrf", &csrf_a), ("code1", "123456"), ("code2", "654321")],
        )
        .await;
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    assert!(text(r).await.contains("not two consecutive codes"));
    assert!(!d.user("ana").await.unwrap().has_mfa());

    // An enrolment not confirmed in ten minutes is not shown any more.
    f.clock.advance(chrono::Duration::seconds(601));
    let r = f.get("/portal/security/totp", &session_cookie(&a)).await;
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
}

#[tokio::test]
async fn removing_totp_and_new_recovery_codes_need_a_fresh_mfa() {
    let f = fixture().await;
    let (first, _) = f.sign_in(None).await;
    let (secret, stepped, old_codes) = f.enrol_in_portal(&first).await;
    let sn = serial(&f).await;
    f.clock.advance(chrono::Duration::seconds(300));
    let csrf = f.home_csrf(&stepped).await;
    for path in ["/portal/security/totp/remove", "/portal/security/recovery"] {
        let r = f.post_csrf(path, &stepped, &csrf).await;
        assert_eq!(r.status(), StatusCode::SEE_OTHER, "{path}");
        assert_eq!(location(&r), "/portal/mfa?return_to=%2Fportal%2Fsecurity");
    }
    f.assert_audited(
        "portal:RemoveTotp",
        "deny",
        "removing TOTP needs an MFA within the last 5 minutes",
    )
    .await;
    let d = f.app.directory.clone().unwrap();
    assert!(d.user("ana").await.unwrap().has_mfa());

    let r = f.answer_totp(&stepped, &secret, "/portal/security").await;
    assert_eq!(location(&r), "/portal/security");
    let fresh = set_cookie(&r, SESSION_COOKIE).unwrap();
    let r = f
        .post_csrf("/portal/security/recovery", &fresh, &csrf)
        .await;
    assert_eq!(r.status(), StatusCode::OK);
    let html = text(r).await;
    assert!(html.contains("The old ones no longer work"));
    assert_eq!(html.matches("<li><code>").count(), 10);
    let (pending, _) = f.sign_in(None).await;
    assert_eq!(
        f.answer(&pending, "recovery", &old_codes[1], "/portal")
            .await
            .status(),
        StatusCode::UNAUTHORIZED,
        "the old set no longer works"
    );

    let r = f
        .post_csrf("/portal/security/totp/remove", &fresh, &csrf)
        .await;
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    assert_eq!(location(&r), "/portal/security");
    assert!(!d.user("ana").await.unwrap().has_mfa());
    assert!(f.records(super::recovery::KIND).await.is_empty());
    f.assert_audited(
        "portal:RemoveTotp",
        "allow",
        &format!("{sn} removed; no MFA method left, recovery codes deleted"),
    )
    .await;
    // Without MFA the sign-in goes straight to the portal again.
    let (_, r) = f.sign_in(None).await;
    assert_eq!(location(&r), "/portal");
}

#[tokio::test]
async fn forged_challenges_unsafe_return_to_and_no_session_are_refused() {
    let f = fixture().await;
    let secret = enrol_directly(&f).await;
    let (pending, _) = f.sign_in(None).await;
    let csrf = f.challenge_csrf(&pending).await;
    let code = totp::code_at(&secret, now(&f)).unwrap();
    let cases: [(&str, &str, &str); 3] = [
        (&pending, "https://evil.example", &csrf),
        (
            &pending,
            ORIGIN,
            "wrong-csrf-token-wrong-csrf-token-wrong-csr",
        ),
        ("", ORIGIN, &csrf),
    ];
    for (i, (session, origin, token)) in cases.into_iter().enumerate() {
        let r = f.challenge(session, origin, token, &code).await;
        let want = if i == 2 {
            StatusCode::UNAUTHORIZED
        } else {
            StatusCode::FORBIDDEN
        };
        assert_eq!(r.status(), want, "case {i}");
        assert!(set_cookie(&r, SESSION_COOKIE).is_none());
    }
    let mut reasons: Vec<String> = f
        .audit(CHALLENGE)
        .await
        .into_iter()
        .map(|e| format!("{} {}", e.decision, e.reason.unwrap_or_default()))
        .collect();
    reasons.sort();
    assert_eq!(
        reasons,
        [
            "deny CSRF token missing or wrong",
            "deny Origin https://evil.example is not http://127.0.0.1:8080",
            "deny no live session",
        ]
    );
    // The code was never checked: it still works, and an unsafe return_to lands on the home page.
    let r = f
        .answer(&pending, "totp", &code, "https://evil.example/portal")
        .await;
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    assert_eq!(location(&r), "/portal");

    // An unknown method is a bad request.
    let (other, _) = f.sign_in(None).await;
    let r = f.answer(&other, "sms", "123456", "/portal").await;
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);

    // Without a session the challenge page sends to sign-in, keeping return_to.
    let r = f.get("/portal/mfa?return_to=%2Fportal%2Fhistory", "").await;
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    assert_eq!(location(&r), "/login?return_to=%2Fportal%2Fhistory");
}

#[tokio::test]
async fn without_a_method_the_challenge_says_so_and_mfa_sets_link_to_it() {
    let f = fixture().await;
    let (session, r) = f.sign_in(None).await;
    assert_eq!(location(&r), "/portal");
    let html = text(f.get("/portal/mfa", &session_cookie(&session)).await).await;
    assert!(html.contains("You have no MFA method set up yet"), "{html}");
    assert!(html.contains("href=\"/portal/security\""), "{html}");
    let csrf = f.home_csrf(&session).await;
    let r = f.challenge(&session, ORIGIN, &csrf, "123456").await;
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    assert!(set_cookie(&r, SESSION_COOKIE).is_none());
    f.assert_audited(
        CHALLENGE,
        "deny",
        "TOTP: user ana has no enabled TOTP device",
    )
    .await;
    let r = f.ops_credentials(&session, &csrf).await;
    let html = refused_for_mfa(r).await;
    assert!(html.contains("Permission set Ops requires MFA"), "{html}");
}

#[tokio::test]
async fn federated_people_are_told_that_their_provider_does_mfa() {
    let f = fixture_with(config().with(
        "[[oidc_providers]]\nname = \"corp\"\nissuer = \"https://idp.example.com\"\naudiences = [\"rolegate\"]\n",
    ))
    .await;
    let identity = super::SignedInIdentity {
        provider: "corp".into(),
        subject: "u-1".into(),
        local_groups: vec![],
        ..crate::testing::ana(None)
    };
    let token = f.session_of(identity).await;
    let html = text(f.get("/portal/security", &session_cookie(&token)).await).await;
    assert!(html.contains("managed there, not in rolegate"), "{html}");
    assert!(!html.contains("/portal/security/totp"), "{html}");
    let html = text(f.get("/portal/mfa", &session_cookie(&token)).await).await;
    assert!(html.contains("checked by that identity provider"), "{html}");
    let csrf = csrf_of(&html);
    for path in ["/portal/security/totp", "/portal/mfa"] {
        let r = f
            .post(
                path,
                &session_cookie(&token),
                ORIGIN,
                &[("csrf", &csrf), ("method", "totp"), ("code", "123456")],
            )
            .await;
        assert_eq!(r.status(), StatusCode::BAD_REQUEST, "{path}");
    }
    assert!(f.records("portal_totp_enrolment").await.is_empty());
}

#[tokio::test]
async fn a_session_waiting_for_the_challenge_ends_after_ten_minutes() {
    let f = fixture().await;
    let secret = enrol_directly(&f).await;
    let (pending, _) = f.sign_in(None).await;
    f.clock.advance(chrono::Duration::seconds(599));
    assert_eq!(
        f.get("/portal/mfa", &session_cookie(&pending))
            .await
            .status(),
        StatusCode::OK
    );
    let csrf = f.challenge_csrf(&pending).await;
    f.clock.advance(chrono::Duration::seconds(1));
    let code = totp::code_at(&secret, now(&f)).unwrap();
    let r = f.challenge(&pending, ORIGIN, &csrf, &code).await;
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    assert!(set_cookie(&r, SESSION_COOKIE).is_none());
    assert!(f.records(session::SESSION_KIND).await.is_empty());
    // The code was not spent on the ended session.
    let (again, _) = f.sign_in(None).await;
    assert_eq!(
        f.answer(&again, "totp", &code, "/portal").await.status(),
        StatusCode::SEE_OTHER
    );
}

#[tokio::test]
async fn root_keeps_its_last_mfa_device() {
    let f = fixture().await;
    let d = f.app.directory.clone().unwrap();
    d.ensure_root().await.unwrap();
    let t = now(&f);
    crate::testing::enable_totp(&f.app, "root", t).await;
    let root = d.user("root").await.unwrap();
    let identity = super::SignedInIdentity {
        subject: "root".into(),
        local_groups: vec![],
        origin_user: Some(root.user_id.clone()),
        ..crate::testing::ana(Some(t))
    };
    let token = f.session_of(identity).await;
    let csrf = f.home_csrf(&token).await;
    let r = f
        .post_csrf("/portal/security/totp/remove", &token, &csrf)
        .await;
    assert_eq!(r.status(), StatusCode::CONFLICT);
    assert!(text(r)
        .await
        .contains("The root user signs in only with MFA"));
    assert!(d.user("root").await.unwrap().has_mfa());
    f.assert_audited(
        "portal:RemoveTotp",
        "deny",
        "root signs in only with MFA: its last MFA device stays",
    )
    .await;
}

#[test]
fn mfa_requirements_and_freshness() {
    use super::mfa::{fresh, satisfies};
    use crate::config::MfaRequirement;
    let now = 10_000;
    assert!(satisfies(MfaRequirement::None, None, now));
    assert!(!satisfies(MfaRequirement::Required, None, now));
    assert!(satisfies(MfaRequirement::Required, Some(1), now));
    assert!(satisfies(MfaRequirement::Within(900), Some(now - 900), now));
    assert!(!satisfies(
        MfaRequirement::Within(900),
        Some(now - 901),
        now
    ));
    assert!(!satisfies(MfaRequirement::Within(900), None, now));
    assert!(fresh(Some(now - 300), now));
    assert!(!fresh(Some(now - 301), now));
    assert!(!fresh(None, now));
    assert!(
        !fresh(Some(now + 61), now),
        "an MFA time from the future is not trusted"
    );
}

#[tokio::test]
async fn a_permission_set_wanting_a_recent_mfa_sends_back_to_the_challenge() {
    let f = fixture_with(config_with_ops("mfa_max_age_minutes = 15")).await;
    let secret = enrol_directly(&f).await;
    let (pending, _) = f.sign_in(None).await;
    let r = f.answer_totp(&pending, &secret, "/portal").await;
    let session = set_cookie(&r, SESSION_COOKIE).unwrap();
    let csrf = f.home_csrf(&session).await;
    assert_eq!(
        f.ops_credentials(&session, &csrf).await.status(),
        StatusCode::OK
    );
    f.clock.advance(chrono::Duration::minutes(16));
    let r = f.ops_credentials(&session, &csrf).await;
    let html = refused_for_mfa(r).await;
    assert!(!html.contains("AWS_ACCESS_KEY_ID"));
    // A step-up with a new code: the set is open again.
    let r = f.answer_totp(&session, &secret, "/portal").await;
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    let stepped = set_cookie(&r, SESSION_COOKIE).unwrap();
    let r = f.ops_credentials(&stepped, &csrf).await;
    assert_eq!(r.status(), StatusCode::OK);
}
