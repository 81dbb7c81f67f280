//! The sign-in page after a refused password sign-in, through the router.

use super::tests::{fixture, text, unescape, ORIGIN, PASSWORD};
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
