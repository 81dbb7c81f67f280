//! A person's own password change on the sign-in security page, and the sign-in history with the
//! attempts refused on its name and the MFA of sign-ins completed by the challenge.

use super::tests::{csrf_of, fixture, session_cookie, text, Fixture, ORIGIN, PASSWORD};
use crate::idp::local::password::Password;
use crate::idp::local::totp;
use axum::http::StatusCode;

const NEW: &str = "a brand new passphrase";

impl Fixture {
    async fn change_password(
        &self,
        session: &str,
        form: &[(&str, &str)],
    ) -> axum::response::Response {
        let page = self.get("/portal/security", &session_cookie(session)).await;
        let csrf = csrf_of(&text(page).await);
        let mut fields = vec![("csrf", csrf.as_str())];
        fields.extend_from_slice(form);
        self.post(
            "/portal/security/password",
            &session_cookie(session),
            ORIGIN,
            &fields,
        )
        .await
    }

    /// Whether `session` still opens the security page.
    async fn works(&self, session: &str) -> bool {
        self.get("/portal/security", &session_cookie(session))
            .await
            .status()
            == StatusCode::OK
    }

    async fn password_is(&self, password: &str) -> bool {
        let d = self.app.directory.clone().unwrap();
        d.check_password("ana", Password::new(password.to_string()))
            .await
            .is_ok()
    }
}

#[tokio::test]
async fn a_person_changes_its_password_with_the_current_one() {
    let f = fixture().await;
    let (session, _) = f.sign_in(None).await;
    let page = text(f.get("/portal/security", &session_cookie(&session)).await).await;
    assert!(
        page.contains("action=\"/portal/security/password\""),
        "{page}"
    );

    for (form, status, says) in [
        (
            vec![
                ("current", "wrong one"),
                ("password", NEW),
                ("confirm", NEW),
            ],
            StatusCode::BAD_REQUEST,
            "Your current password is wrong",
        ),
        (
            vec![
                ("current", PASSWORD),
                ("password", NEW),
                ("confirm", "other"),
            ],
            StatusCode::BAD_REQUEST,
            "The two new passwords differ.",
        ),
        (
            vec![
                ("current", PASSWORD),
                ("password", "short"),
                ("confirm", "short"),
            ],
            StatusCode::BAD_REQUEST,
            "The new password is not accepted",
        ),
    ] {
        let r = f.change_password(&session, &form).await;
        assert_eq!(r.status(), status);
        let html = text(r).await;
        assert!(html.contains(says), "{says}: {html}");
        assert!(f.password_is(PASSWORD).await, "unchanged after {says}");
    }
    let r = f
        .change_password(
            &session,
            &[("current", PASSWORD), ("password", NEW), ("confirm", NEW)],
        )
        .await;
    assert_eq!(r.status(), StatusCode::OK);
    assert!(text(r).await.contains("Your password is changed."));
    assert!(f.password_is(NEW).await && !f.password_is(PASSWORD).await);
    let events = f.audit("portal:ChangePassword").await;
    assert_eq!(events.iter().filter(|e| e.decision == "deny").count(), 3);
    assert_eq!(events.iter().filter(|e| e.decision == "allow").count(), 1);
}

#[tokio::test]
async fn with_an_authenticator_app_the_change_needs_a_code_or_a_fresh_challenge() {
    let f = fixture().await;
    let secret = crate::testing::enable_totp(&f.app, "ana", f.app.clock.now().timestamp()).await;
    f.clock.advance(chrono::Duration::seconds(90));
    let now = f.app.clock.now().timestamp();
    // Signed in with a code on the form; ten minutes later that MFA is no longer fresh.
    let (csrf, cookies) = f.login_csrf().await;
    let code = totp::code_at(&secret, now).unwrap();
    let r = f
        .post(
            "/login/local",
            &cookies,
            ORIGIN,
            &[
                ("csrf", &csrf),
                ("user", "ana"),
                ("password", PASSWORD),
                ("code", &code),
            ],
        )
        .await;
    let session = super::tests::set_cookie(&r, super::session::SESSION_COOKIE).unwrap();
    f.clock.advance(chrono::Duration::seconds(600));

    let base = [("current", PASSWORD), ("password", NEW), ("confirm", NEW)];
    let r = f.change_password(&session, &base).await;
    assert_eq!(r.status(), StatusCode::SEE_OTHER, "to the challenge");
    assert!(f.password_is(PASSWORD).await);

    let mut wrong = base.to_vec();
    wrong.push(("code", "000000"));
    let r = f.change_password(&session, &wrong).await;
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);
    assert!(f.password_is(PASSWORD).await);

    let now = f.app.clock.now().timestamp();
    let code = totp::code_at(&secret, now).unwrap();
    let mut right = base.to_vec();
    right.push(("code", &code));
    let r = f.change_password(&session, &right).await;
    assert_eq!(r.status(), StatusCode::OK);
    assert!(f.password_is(NEW).await);
}

#[tokio::test]
async fn the_history_shows_refused_attempts_and_mfa_passed_by_the_challenge() {
    let f = fixture().await;
    let secret = crate::testing::enable_totp(&f.app, "ana", f.app.clock.now().timestamp()).await;
    f.clock.advance(chrono::Duration::seconds(90));
    // A wrong password on ana's name.
    let (csrf, cookies) = f.login_csrf().await;
    let r = f
        .post(
            "/login/local",
            &cookies,
            ORIGIN,
            &[("csrf", &csrf), ("user", "ana"), ("password", "not hers")],
        )
        .await;
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    // A password-only sign-in, completed by the challenge.
    let (session, _) = f.sign_in(None).await;
    let code = totp::code_at(&secret, f.app.clock.now().timestamp()).unwrap();
    let page = text(f.get("/portal/mfa", &session_cookie(&session)).await).await;
    let r = f
        .post(
            "/portal/mfa",
            &session_cookie(&session),
            ORIGIN,
            &[
                ("csrf", &csrf_of(&page)),
                ("method", "totp"),
                ("code", &code),
                ("return_to", "/portal"),
            ],
        )
        .await;
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    // The challenge passed starts the session anew under a new cookie.
    let session = super::tests::set_cookie(&r, super::session::SESSION_COOKIE).unwrap_or(session);

    let html = text(f.get("/portal/history", &session_cookie(&session)).await).await;
    assert!(html.contains("<td>refused</td>"), "{html}");
    assert!(html.contains("<td>yes, by the challenge</td>"), "{html}");
    assert_eq!(html.matches("<tr><td>").count(), 2, "{html}");
}

#[tokio::test]
async fn a_changed_password_ends_the_persons_other_portal_sessions_only() {
    let f = fixture().await;
    let (here, _) = f.sign_in(None).await;
    let (elsewhere, _) = f.sign_in(None).await;
    assert_ne!(here, elsewhere);
    // Another person's session, which the change must leave alone.
    let ben = crate::testing::directory_user(&f.app, "ben", &["dev"]).await;
    let now = f.app.clock.now().timestamp();
    let bens = super::session::create(
        f.app.store.as_ref(),
        super::SignedInIdentity {
            provider: crate::config::LOCAL_PROVIDER.into(),
            subject: "ben".into(),
            claims: serde_json::Map::new(),
            mfa_time: None,
            local_groups: vec!["dev".into()],
            origin_user: Some(ben.user_id.clone()),
            signed_in_at: now,
        },
        "127.0.0.1".into(),
        now,
    )
    .await
    .unwrap();
    for s in [&here, &elsewhere, &bens] {
        assert!(f.works(s).await, "signed in before the change");
    }

    // A refused change ends nothing.
    let r = f
        .change_password(
            &here,
            &[
                ("current", "wrong one"),
                ("password", NEW),
                ("confirm", NEW),
            ],
        )
        .await;
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);
    assert!(f.works(&elsewhere).await, "refused change");

    let r = f
        .change_password(
            &here,
            &[("current", PASSWORD), ("password", NEW), ("confirm", NEW)],
        )
        .await;
    assert_eq!(r.status(), StatusCode::OK);
    assert!(text(r)
        .await
        .contains("You are signed out everywhere else."));
    assert!(!f.works(&elsewhere).await, "the other browser is out");
    let home = f.get("/portal", &session_cookie(&elsewhere)).await;
    assert_ne!(home.status(), StatusCode::OK, "the other browser is out");
    assert!(f.works(&here).await, "the changing session stays");
    assert!(f.works(&bens).await, "another person's session stays");
    let allowed: Vec<_> = f
        .audit("portal:ChangePassword")
        .await
        .into_iter()
        .filter(|e| e.decision == "allow")
        .collect();
    assert_eq!(allowed.len(), 1);
    assert_eq!(
        allowed[0].reason.as_deref(),
        Some("password changed by its user; 1 other portal session(s) ended")
    );
}
