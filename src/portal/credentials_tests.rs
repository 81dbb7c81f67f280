//! Command line access refused, through the router: what the person reads.

use super::tests::{fixture, text};
use axum::http::StatusCode;

#[tokio::test]
async fn command_line_access_without_mfa_says_why_in_words_and_leads_to_the_challenge_first() {
    let f = fixture().await;
    let (_, _, html) = f.credentials_without_mfa().await;
    assert!(!html.contains("AWS_ACCESS_KEY_ID"));
    let reason = "Permission set Ops requires MFA, and this sign-in did not use MFA.";
    let at_reason = html.find(reason).unwrap_or_else(|| panic!("{html}"));
    let at_button = html
        .find("class=\"button\" href=\"/portal/mfa?return_to=")
        .unwrap_or_else(|| panic!("{html}"));
    // The policy trace is there for whoever wants it, folded, after the way on.
    let at_details = html.find("<details>").unwrap_or_else(|| panic!("{html}"));
    let folded_end = html.find("</details>").unwrap();
    assert!(at_reason < at_button && at_button < at_details, "{html}");
    // What the person reads outside the fold names no SAML internals.
    let outside = format!("{}{}", &html[..at_details], &html[folded_end..]);
    for internal in ["AssumeRoleWithSAML", "saml-provider", "SAML"] {
        assert!(!outside.contains(internal), "{internal}: {outside}");
    }
    assert!(html[at_details..folded_end].contains("aws:MultiFactorAuthPresent"));
    // Audited as before: refused by the sign-in trust policy, no credentials.
    let ev = f.audit("portal:GetCredentials").await;
    assert_eq!(ev.len(), 1);
    assert_eq!(ev[0].decision, "deny");
    assert!(ev[0].access_key_id.is_none());
    assert!(ev[0].reason.is_some());
}

/// The href of the first link whose text is `label` in `html`, as askama escaped it.
fn href_before(html: &str, label: &str) -> String {
    let end = html
        .find(label)
        .unwrap_or_else(|| panic!("{label} in {html}"));
    let at = html[..end].rfind("href=\"").unwrap() + 6;
    let stop = at + html[at..].find('"').unwrap();
    crate::testing::unescape(&html[at..stop])
}

/// The value of the hidden field `name` in `html`.
fn field(html: &str, name: &str) -> String {
    crate::testing::quoted_after(html, &format!("name=\"{name}\" value=\""))
}

#[tokio::test]
async fn after_the_mfa_challenge_the_person_is_back_at_the_action_they_asked_for() {
    use super::tests::{location, session_cookie, set_cookie, ORIGIN};
    let f =
        super::tests::fixture_with(super::tests::config_with_ops("mfa_max_age_minutes = 15")).await;
    let secret = crate::testing::enable_totp(&f.app, "ana", f.app.clock.now().timestamp()).await;
    f.clock.advance(chrono::Duration::seconds(90));
    let answer = |session: String, return_to: String| {
        let f = &f;
        let secret = &secret;
        async move {
            let page = text(f.get("/portal/mfa", &session_cookie(&session)).await).await;
            let csrf = crate::testing::csrf_of(&page);
            let now = f.app.clock.now().timestamp();
            let code = crate::idp::local::totp::code_at(secret, now).unwrap();
            let r = f
                .post(
                    "/portal/mfa",
                    &session_cookie(&session),
                    ORIGIN,
                    &[
                        ("csrf", &csrf),
                        ("method", "totp"),
                        ("code", &code),
                        ("return_to", &return_to),
                    ],
                )
                .await;
            assert_eq!(r.status(), StatusCode::SEE_OTHER);
            (
                set_cookie(&r, super::session::SESSION_COOKIE).unwrap(),
                location(&r),
            )
        }
    };
    let (pending, _) = f.sign_in(None).await;
    let (session, _) = answer(pending, "/portal".into()).await;
    // The MFA of the sign-in grows too old for Ops.
    f.clock.advance(chrono::Duration::minutes(16));
    let mut session = session;
    for (path, label, done) in [
        (
            "/portal/credentials",
            "Command line access",
            "AWS_ACCESS_KEY_ID",
        ),
        ("/portal/console", "Open console", ""),
    ] {
        let csrf = f.home_csrf(&session).await;
        let form = [
            ("csrf", csrf.as_str()),
            ("account", "111122223333"),
            ("permission_set", "Ops"),
        ];
        let r = f.post(path, &session_cookie(&session), ORIGIN, &form).await;
        assert_eq!(r.status(), StatusCode::FORBIDDEN, "{path}");
        let challenge = href_before(&text(r).await, "Verify with MFA");
        let page = text(f.get(&challenge, &session_cookie(&session)).await).await;
        let return_to = field(&page, "return_to");
        assert_eq!(
            return_to,
            format!("{path}?account=111122223333&permission_set=Ops")
        );
        let (stepped, back) = answer(session.clone(), return_to.clone()).await;
        // Back at the action: a page that asks for it once more, with the session's form.
        assert_eq!(back, return_to);
        let page = f.get(&back, &session_cookie(&stepped)).await;
        assert_eq!(page.status(), StatusCode::OK, "{path}");
        let page = text(page).await;
        assert!(page.contains(&format!("action=\"{path}\"")), "{page}");
        assert!(page.contains(&format!(">{label}</button>")), "{page}");
        assert_eq!(field(&page, "account"), "111122223333");
        assert_eq!(field(&page, "permission_set"), "Ops");
        let csrf = field(&page, "csrf");
        let form = [
            ("csrf", csrf.as_str()),
            ("account", "111122223333"),
            ("permission_set", "Ops"),
        ];
        let r = f.post(path, &session_cookie(&stepped), ORIGIN, &form).await;
        assert!(
            r.status() == StatusCode::OK || r.status() == StatusCode::SEE_OTHER,
            "{path}: {}",
            r.status()
        );
        if !done.is_empty() {
            assert!(text(r).await.contains(done));
        }
        session = stepped;
        f.clock.advance(chrono::Duration::minutes(16));
    }
}

#[tokio::test]
async fn the_way_back_to_an_action_offers_only_what_the_person_is_assigned() {
    let f = fixture().await;
    let (session, _) = f.sign_in(None).await;
    let cookie = super::tests::session_cookie(&session);
    for path in [
        "/portal/credentials?account=111122223333&permission_set=Nope",
        "/portal/console?account=999999999999&permission_set=Dev",
        "/portal/console",
    ] {
        let r = f.get(path, &cookie).await;
        assert_eq!(r.status(), StatusCode::SEE_OTHER, "{path}");
        assert_eq!(super::tests::location(&r), "/portal", "{path}");
    }
    // Without a session: nothing.
    let r = f
        .get(
            "/portal/console?account=111122223333&permission_set=Dev",
            "",
        )
        .await;
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
}
