//! What the person reads when security keys are off, through the router.

use super::tests::{fixture, fixture_with, session_cookie, text};
use axum::http::StatusCode;

#[tokio::test]
async fn security_keys_off_at_an_ip_address_say_so_instead_of_blaming_the_account() {
    // The portal tests' server is reached at http://127.0.0.1:8080: no WebAuthn there.
    let f = fixture().await;
    let (session, _) = f.sign_in(None).await;
    let r = f
        .get("/portal/security/webauthn", &session_cookie(&session))
        .await;
    assert_eq!(r.status(), StatusCode::FORBIDDEN);
    let html = text(r).await;
    assert!(
        html.contains("IP address (http://127.0.0.1:8080)"),
        "{html}"
    );
    assert!(html.contains("domain name over https"), "{html}");
    assert!(!html.contains("not available for your account"), "{html}");
    // The security page says it where the link would be.
    let r = f.get("/portal/security", &session_cookie(&session)).await;
    assert_eq!(r.status(), StatusCode::OK);
    let html = text(r).await;
    assert!(
        html.contains("IP address (http://127.0.0.1:8080)"),
        "{html}"
    );
    assert!(!html.contains("Manage security keys"), "{html}");
}

#[tokio::test]
async fn security_keys_turned_off_on_a_domain_say_so() {
    let config = crate::testing::config()
        .server("127.0.0.1:0", "https://sso.example.com")
        .with("[portal]\nwebauthn = false\n");
    let f = fixture_with(config).await;
    let identity = crate::testing::in_directory(&f.app, crate::testing::ana(None)).await;
    let now = f.app.clock.now().timestamp();
    let (cookies, _) = crate::testing::portal_session(&f.app, identity, now).await;
    let r = f.get("/portal/security/webauthn", &cookies).await;
    assert_eq!(r.status(), StatusCode::FORBIDDEN);
    let html = text(r).await;
    assert!(html.contains("turned off on this server"), "{html}");
    assert!(!html.contains("not available for your account"), "{html}");
}
