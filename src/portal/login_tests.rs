//! The sign-in page after a refused password sign-in, through the router.

use super::tests::{fixture, text, ORIGIN, PASSWORD};
use crate::testing::unescape;
use axum::http::StatusCode;

/// The value of the input named `name` in `html`, if it has one.
fn value_of(html: &str, name: &str) -> Option<String> {
    let at = html.find(&format!("name=\"{name}\""))?;
    let tag_end = at + html[at..].find('>')?;
    let tag = &html[at..tag_end];
    let v = tag.find("value=\"")? + 7;
    let end = v + tag[v..].find('"')?;
    Some(unescape(&tag[v..end]))
}

#[tokio::test]
async fn a_wrong_password_or_code_shows_the_sign_in_form_again_with_the_user_name_kept() {
    let f = fixture().await;
    crate::testing::enable_totp(&f.app, "ana", f.app.clock.now().timestamp()).await;
    let (csrf, cookies) = f.login_csrf().await;
    let cases = [
        ("nope nope nope", "", "wrong password"),
        (PASSWORD, "000000", "MFA: "),
    ];
    for (password, code, reason) in cases {
        let r = f
            .post(
                "/login/local",
                &cookies,
                ORIGIN,
                &[
                    ("csrf", csrf.as_str()),
                    ("user", "ana"),
                    ("password", password),
                    ("code", code),
                    ("return_to", "/portal/history"),
                ],
            )
            .await;
        assert_eq!(r.status(), StatusCode::UNAUTHORIZED, "{reason}");
        assert!(
            crate::testing::set_cookie(&r, super::session::SESSION_COOKIE).is_none(),
            "{reason}"
        );
        let html = text(r).await;
        // The form again, the error beside it, with what the person typed but the secrets.
        assert!(html.contains("action=\"/login/local\""), "{reason}: {html}");
        assert!(
            html.contains("class=\"error\" role=\"alert\""),
            "{reason}: {html}"
        );
        assert!(html.contains("password or MFA code is wrong"), "{reason}");
        assert_eq!(value_of(&html, "user").as_deref(), Some("ana"), "{reason}");
        assert_eq!(value_of(&html, "password"), None, "{reason}");
        assert_eq!(value_of(&html, "code"), None, "{reason}");
        assert_eq!(value_of(&html, "csrf").as_deref(), Some(csrf.as_str()));
        assert_eq!(
            value_of(&html, "return_to").as_deref(),
            Some("/portal/history")
        );
        assert!(!html.contains(password), "{reason}");
    }
    let ev = f.audit(super::SIGN_IN_ACTION).await;
    assert_eq!(ev.len(), 2);
    assert!(ev.iter().all(|e| e.decision == "deny"));
    assert!(ev.iter().all(|e| e.subject.as_deref() == Some("ana")));
    let reasons: Vec<String> = ev.iter().map(|e| e.reason.clone().unwrap()).collect();
    assert!(
        reasons.iter().any(|r| r.starts_with("MFA: ")),
        "{reasons:?}"
    );
    assert!(f.records(super::session::SESSION_KIND).await.is_empty());
    // The form sent again with the right password signs in.
    let r = f.sign_in_form(&cookies, &csrf, "/portal").await;
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
}

const TRUST: &str = r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"AWS":"arn:aws:iam::111122223333:root"},"Action":"sts:AssumeRole"}]}"#;

/// What the landing page must not show anyone who has not signed in: role ARNs and names.
fn assert_nothing_about_roles(html: &str) {
    for secret in [
        "arn:aws:iam",
        "deploy-prod",
        "RolegateSSO",
        "Developer access",
    ] {
        assert!(
            !html.contains(secret),
            "{secret} on the landing page: {html}"
        );
    }
}

#[tokio::test]
async fn the_landing_page_leads_to_sign_in_and_shows_nothing_about_roles() {
    let f = super::tests::fixture_with(super::tests::config().role("deploy-prod", TRUST)).await;
    let r = f.get("/", "").await;
    assert_eq!(r.status(), StatusCode::OK);
    let html = text(r).await;
    assert!(html.contains("href=\"/login\""), "{html}");
    assert!(html.contains("AWS_ENDPOINT_URL_STS="), "{html}");
    assert_nothing_about_roles(&html);
}

#[tokio::test]
async fn without_a_portal_the_landing_page_names_the_sts_endpoint_only() {
    let (app, _clock) = crate::testing::config()
        .role("deploy-prod", TRUST)
        .build(1_700_000_000)
        .await;
    let r = crate::testing::get(&app, "/", "").await;
    assert_eq!(r.status(), StatusCode::OK);
    let html = text(r).await;
    assert!(
        html.contains(&format!("AWS_ENDPOINT_URL_STS={ORIGIN}")),
        "{html}"
    );
    // No sign-in to lead to.
    assert!(!html.contains("/login"), "{html}");
    assert_nothing_about_roles(&html);
    // An STS request at / is still answered as one.
    let r = crate::testing::get(&app, "/?Action=GetCallerIdentity&Version=2011-06-15", "").await;
    assert_ne!(r.status(), StatusCode::OK);
    assert!(text(r).await.contains("<ErrorResponse"));
}

#[tokio::test]
async fn a_sign_in_while_password_hashing_is_at_capacity_is_503_with_its_reason_in_the_log() {
    let f = fixture().await;
    let (csrf, cookies) = f.login_csrf().await;
    let d = f.app.directory.as_deref().unwrap();
    d.hasher().test_fill(true);
    let r = f.sign_in_form(&cookies, &csrf, "/portal").await;
    assert_eq!(r.status(), StatusCode::SERVICE_UNAVAILABLE);
    assert!(crate::testing::set_cookie(&r, super::session::SESSION_COOKIE).is_none());
    let ev = f.audit(super::SIGN_IN_ACTION).await;
    assert_eq!(ev.len(), 1, "{ev:?}");
    assert_eq!(ev[0].decision, "error");
    assert_eq!(ev[0].subject.as_deref(), Some("ana"));
    let reason = ev[0].reason.as_deref().unwrap_or_default();
    assert!(
        reason.starts_with("password hashing is at capacity ("),
        "{reason}"
    );
    assert!(f.records(super::session::SESSION_KIND).await.is_empty());
    d.hasher().test_fill(false);
    let r = f.sign_in_form(&cookies, &csrf, "/portal").await;
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
}
