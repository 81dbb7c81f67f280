//! The refusals of what every portal handler starts with (the session of a page, the Origin,
//! session and CSRF checks of a form), for every route, through the router.

use super::session::SESSION_COOKIE;
use super::tests::{
    config, csrf_of, fixture_with, location, session_cookie, set_cookie, text, Fixture, ORIGIN,
};
use crate::idp::local::password::Password;
use axum::http::StatusCode;

const EVIL: &str = "https://evil.example";
const STALE: &str = "__Host-rolegate-session=no-such-session";

/// A form of a signed-in person: its path, its audit action, and whether a session waiting for
/// the MFA challenge may send it.
const FORMS: &[(&str, &str, bool)] = &[
    ("/portal/credentials", "portal:GetCredentials", false),
    ("/portal/console", "portal:OpenConsole", false),
    ("/logout", "portal:SignOut", true),
    ("/portal/mfa", "portal:MfaChallenge", true),
    ("/portal/security/totp", "portal:StartTotpEnrolment", false),
    ("/portal/security/totp/confirm", "portal:EnableTotp", false),
    ("/portal/security/totp/remove", "portal:RemoveTotp", false),
    (
        "/portal/security/recovery",
        "portal:RegenerateRecoveryCodes",
        false,
    ),
    (
        "/portal/security/webauthn/remove",
        "portal:RemoveSecurityKey",
        false,
    ),
    ("/device", "portal:ApproveDevice", false),
    ("/device/decide", "portal:ApproveDevice", false),
    ("/authorize", "portal:ApproveAuthorization", false),
];

/// The security-key ceremonies (answered in JSON): path, action, whether a session waiting for
/// the MFA challenge may run it.
const CEREMONIES: &[(&str, &str, bool)] = &[
    (
        "/portal/security/webauthn/begin",
        "portal:RegisterSecurityKey",
        false,
    ),
    (
        "/portal/security/webauthn/finish",
        "portal:RegisterSecurityKey",
        false,
    ),
    (
        "/portal/mfa/webauthn/begin",
        "portal:SecurityKeyChallenge",
        true,
    ),
    (
        "/portal/mfa/webauthn/finish",
        "portal:SecurityKeyChallenge",
        true,
    ),
];

/// The portal with command line sign-in, ana signed in (no MFA method) and bo signed in with
/// the password alone although he has TOTP (his session waits for the MFA challenge). Returns
/// their session cookies and CSRF tokens.
async fn two_sessions() -> (Fixture, (String, String), (String, String)) {
    let f = fixture_with(config().with("[sso]\n")).await;
    let (ana, _) = f.sign_in(None).await;
    let ana_csrf = f.home_csrf(&ana).await;
    crate::testing::directory_user(&f.app, "bo", &["dev"]).await;
    let d = f.app.directory.clone().unwrap();
    d.set_password("bo", Password::new("bo's long password"))
        .await
        .unwrap();
    crate::testing::enable_totp(&f.app, "bo", f.app.clock.now().timestamp()).await;
    let (login_csrf, cookies) = f.login_csrf().await;
    let signed_in = f
        .post(
            "/login/local",
            &cookies,
            ORIGIN,
            &[
                ("csrf", &login_csrf),
                ("user", "bo"),
                ("password", "bo's long password"),
            ],
        )
        .await;
    let bo = set_cookie(&signed_in, SESSION_COOKIE).unwrap();
    let challenge = f.get("/portal/mfa", &session_cookie(&bo)).await;
    assert_eq!(challenge.status(), StatusCode::OK);
    let bo_csrf = csrf_of(&text(challenge).await);
    (f, (ana, ana_csrf), (bo, bo_csrf))
}

impl Fixture {
    /// How many refusals of `action` were audited with `reason`.
    async fn refusals(&self, action: &str, reason: &str) -> usize {
        self.audit(action)
            .await
            .iter()
            .filter(|e| e.decision == "deny" && e.reason.as_deref() == Some(reason))
            .count()
    }

    /// [`Fixture::refused`] of a form from our origin without its session's CSRF token.
    async fn refused_csrf(&self, path: &str, action: &str, cookie: &str, form: &[(&str, &str)]) {
        let (status, shows) = (StatusCode::FORBIDDEN, "Request refused");
        let reason = "CSRF token missing or wrong";
        self.refused(path, action, cookie, ORIGIN, form, status, shows, reason)
            .await;
    }

    /// [`Fixture::refused`] of a form with the session's CSRF token sent from another origin.
    async fn refused_from_elsewhere(&self, path: &str, action: &str, cookie: &str, csrf: &str) {
        let (status, shows) = (StatusCode::FORBIDDEN, "Request refused");
        let reason = format!("Origin {EVIL} is not {ORIGIN}");
        let form = [("csrf", csrf)];
        self.refused(path, action, cookie, EVIL, &form, status, shows, &reason)
            .await;
    }

    /// Sends one form and checks the answer (status, and the page's title or the redirect) and
    /// that exactly one refusal of `action` was audited with `reason`.
    #[allow(clippy::too_many_arguments)]
    async fn refused(
        &self,
        path: &str,
        action: &str,
        cookie: &str,
        origin: &str,
        form: &[(&str, &str)],
        status: StatusCode,
        shows: &str,
        reason: &str,
    ) {
        let before = self.refusals(action, reason).await;
        let r = self.post(path, cookie, origin, form).await;
        assert_eq!(r.status(), status, "{path} {form:?}: {reason}");
        if status == StatusCode::SEE_OTHER {
            assert_eq!(location(&r), shows, "{path}");
        } else {
            let body = text(r).await;
            assert!(body.contains(shows), "{path}: {shows} in {body}");
        }
        assert_eq!(
            self.refusals(action, reason).await,
            before + 1,
            "{path}: one refusal audited as {action} with {reason:?}"
        );
    }
}

#[tokio::test]
async fn every_form_of_a_signed_in_person_checks_origin_session_mfa_and_csrf_in_that_order() {
    let (f, (ana, ana_csrf), (bo, bo_csrf)) = two_sessions().await;
    let (ana, bo) = (session_cookie(&ana), session_cookie(&bo));
    for &(path, action, while_pending) in FORMS {
        // No CSRF token, a wrong one: the session is live, the form is not its own.
        for form in [vec![], vec![("csrf", "not-the-session-s-token")]] {
            f.refused_csrf(path, action, &ana, &form).await;
        }
        // The right token from another origin.
        f.refused_from_elsewhere(path, action, &ana, &ana_csrf)
            .await;
        // No session, and a cookie naming no session.
        for cookie in ["", STALE] {
            f.refused(
                path,
                action,
                cookie,
                ORIGIN,
                &[("csrf", &ana_csrf)],
                StatusCode::UNAUTHORIZED,
                "Session expired",
                "no live session",
            )
            .await;
        }
        // A session waiting for the MFA challenge: sent to it, or (where it may send the form)
        // still held to its CSRF token.
        if while_pending {
            f.refused_csrf(path, action, &bo, &[("csrf", "not-the-session-s-token")])
                .await;
        } else {
            f.refused(
                path,
                action,
                &bo,
                ORIGIN,
                &[("csrf", &bo_csrf)],
                StatusCode::SEE_OTHER,
                super::mfa::CHALLENGE_PATH,
                "the session has not passed the MFA challenge yet",
            )
            .await;
        }
        // A field given twice is refused before anything is looked at (and not audited).
        let before = f.audit(action).await.len();
        let r = f
            .post(
                path,
                &ana,
                ORIGIN,
                &[("csrf", &ana_csrf), ("csrf", &ana_csrf)],
            )
            .await;
        assert_eq!(r.status(), StatusCode::BAD_REQUEST, "{path}");
        assert_eq!(f.audit(action).await.len(), before, "{path}");
    }
    // Nobody was signed out by any of this.
    assert_eq!(f.get("/portal", &ana).await.status(), StatusCode::OK);
}

#[tokio::test]
async fn every_security_key_ceremony_checks_origin_session_mfa_and_csrf_in_json() {
    let (f, (ana, ana_csrf), (bo, bo_csrf)) = two_sessions().await;
    let (ana, bo) = (session_cookie(&ana), session_cookie(&bo));
    let not_ours = format!("Origin {EVIL} is not {ORIGIN}");
    for &(path, action, while_pending) in CEREMONIES {
        let mut cases = vec![
            (
                ana.as_str(),
                ORIGIN,
                "",
                StatusCode::FORBIDDEN,
                "forged",
                "CSRF token missing or wrong",
            ),
            (
                ana.as_str(),
                EVIL,
                ana_csrf.as_str(),
                StatusCode::FORBIDDEN,
                "forged",
                not_ours.as_str(),
            ),
            (
                "",
                ORIGIN,
                ana_csrf.as_str(),
                StatusCode::UNAUTHORIZED,
                "session_expired",
                "no live session",
            ),
        ];
        if while_pending {
            cases.push((
                bo.as_str(),
                ORIGIN,
                "",
                StatusCode::FORBIDDEN,
                "forged",
                "CSRF token missing or wrong",
            ));
        } else {
            cases.push((
                bo.as_str(),
                ORIGIN,
                bo_csrf.as_str(),
                StatusCode::FORBIDDEN,
                "fresh_mfa_required",
                "the session has not passed the MFA challenge yet",
            ));
        }
        for (cookie, origin, csrf, status, code, reason) in cases {
            let before = f.refusals(action, reason).await;
            let r = f.post(path, cookie, origin, &[("csrf", csrf)]).await;
            assert_eq!(r.status(), status, "{path}: {reason}");
            let body: serde_json::Value = serde_json::from_str(&text(r).await).unwrap();
            assert_eq!(body["error"], code, "{path}: {reason}");
            assert_eq!(f.refusals(action, reason).await, before + 1, "{path}");
        }
    }
}

#[tokio::test]
async fn console_forms_check_origin_then_the_console_session() {
    let (f, (ana, ana_csrf), _) = two_sessions().await;
    let ana = session_cookie(&ana);
    for (path, action) in [
        ("/console/simulate", "console:SimulatePolicy"),
        ("/console/logout", "console:SignOut"),
    ] {
        f.refused_from_elsewhere(path, action, &ana, &ana_csrf)
            .await;
        // The portal session is not a console session.
        let r = f.post(path, &ana, ORIGIN, &[("csrf", &ana_csrf)]).await;
        assert_eq!(r.status(), StatusCode::UNAUTHORIZED, "{path}");
        assert!(text(r).await.contains("No console session"), "{path}");
    }
    let r = f.get(super::federation::CONSOLE_PATH, &ana).await;
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    assert!(text(r).await.contains("No console session"));
}

/// A page, and where a browser goes from it without a session cookie (`None`: the session-expired
/// page), with a cookie naming no session, and with a session waiting for the MFA challenge.
struct PageCase {
    path: &'static str,
    no_cookie: Option<&'static str>,
    stale: Option<&'static str>,
    pending: Option<&'static str>,
}

const PAGES: &[PageCase] = &[
    PageCase {
        path: "/portal",
        no_cookie: Some("/login?return_to=%2Fportal"),
        stale: None,
        pending: Some("/portal/mfa"),
    },
    PageCase {
        path: "/portal?q=Dev",
        no_cookie: Some("/login?return_to=%2Fportal"),
        stale: None,
        pending: Some("/portal/mfa"),
    },
    PageCase {
        path: "/portal/history",
        no_cookie: None,
        stale: None,
        pending: Some("/portal/mfa"),
    },
    PageCase {
        path: "/portal/security",
        no_cookie: Some("/login?return_to=%2Fportal%2Fsecurity"),
        stale: None,
        pending: Some("/portal/mfa"),
    },
    PageCase {
        path: "/portal/security/totp",
        no_cookie: None,
        stale: None,
        pending: Some("/portal/mfa"),
    },
    PageCase {
        path: "/portal/security/webauthn",
        no_cookie: Some("/login?return_to=%2Fportal%2Fsecurity%2Fwebauthn"),
        stale: None,
        pending: Some("/portal/mfa"),
    },
    PageCase {
        path: "/portal/mfa?return_to=%2Fportal%2Fhistory",
        no_cookie: Some("/login?return_to=%2Fportal%2Fhistory"),
        stale: None,
        pending: None,
    },
    PageCase {
        path: "/portal/mfa?return_to=https%3A%2F%2Fevil.example",
        no_cookie: Some("/login?return_to=%2Fportal"),
        stale: None,
        pending: None,
    },
    PageCase {
        path: "/portal/mfa/webauthn?return_to=%2Fportal%2Fhistory",
        no_cookie: Some(
            "/login?return_to=%2Fportal%2Fmfa%2Fwebauthn%3Freturn_to%3D%252Fportal%252Fhistory",
        ),
        stale: None,
        pending: None,
    },
    PageCase {
        path: "/device",
        no_cookie: Some("/login?return_to=%2Fdevice"),
        stale: Some("/login?return_to=%2Fdevice"),
        pending: Some("/portal/mfa?return_to=%2Fdevice"),
    },
    PageCase {
        path: "/device?user_code=bcdf+ghjk",
        no_cookie: Some("/login?return_to=%2Fdevice%3Fuser_code%3DBCDF-GHJK"),
        stale: Some("/login?return_to=%2Fdevice%3Fuser_code%3DBCDF-GHJK"),
        pending: Some("/portal/mfa?return_to=%2Fdevice%3Fuser_code%3DBCDF-GHJK"),
    },
];

#[tokio::test]
async fn every_signed_in_page_answers_a_browser_without_a_live_session_as_before() {
    let (f, (ana, _), (bo, _)) = two_sessions().await;
    let (ana, bo) = (session_cookie(&ana), session_cookie(&bo));
    for case in PAGES {
        let path = case.path;
        for (cookie, want) in [("", case.no_cookie), (STALE, case.stale)] {
            let r = f.get(path, cookie).await;
            match want {
                Some(to) => {
                    assert_eq!(r.status(), StatusCode::SEE_OTHER, "{path} [{cookie}]");
                    assert_eq!(location(&r), to, "{path} [{cookie}]");
                }
                None => {
                    assert_eq!(r.status(), StatusCode::UNAUTHORIZED, "{path} [{cookie}]");
                    assert!(text(r).await.contains("Session expired"), "{path}");
                }
            }
        }
        let r = f.get(path, &bo).await;
        match case.pending {
            Some(to) => {
                assert_eq!(r.status(), StatusCode::SEE_OTHER, "{path} pending");
                assert_eq!(location(&r), to, "{path} pending");
            }
            None => assert_ne!(r.status(), StatusCode::SEE_OTHER, "{path} pending"),
        }
        // The signed-in person gets the page.
        let r = f.get(path, &ana).await;
        assert_ne!(r.status(), StatusCode::UNAUTHORIZED, "{path}");
        if r.status().is_redirection() {
            let to = location(&r);
            assert!(
                !to.starts_with("/login") && !to.starts_with("/portal/mfa"),
                "{path}: {to}"
            );
        }
        // A parameter given twice is refused before the session is looked at.
        let twice = if path.contains('?') {
            format!("{path}&x=1&x=2")
        } else {
            format!("{path}?x=1&x=2")
        };
        for cookie in ["", ana.as_str()] {
            assert_eq!(
                f.get(&twice, cookie).await.status(),
                StatusCode::BAD_REQUEST,
                "{twice}"
            );
        }
    }
}

#[tokio::test]
async fn a_session_the_gate_no_longer_admits_ends_on_the_next_page() {
    let (f, (ana, _), _) = two_sessions().await;
    let ana = session_cookie(&ana);
    let d = f.app.directory.clone().unwrap();
    d.delete_user("ana").await.unwrap();
    let r = f.get("/portal/history", &ana).await;
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    let ended = f.audit("portal:EndSession").await;
    assert_eq!(ended.len(), 1);
    assert!(ended[0]
        .reason
        .as_deref()
        .unwrap_or_default()
        .starts_with("portal session ended: "));
    // The session is gone: the home page now sends to sign-in as it does for a stranger... with
    // the cookie still sent, the session-expired page.
    assert_eq!(
        f.get("/portal", &ana).await.status(),
        StatusCode::UNAUTHORIZED
    );
}
