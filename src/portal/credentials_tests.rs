//! Command line access refused, through the router: what the person reads.

use super::tests::{fixture, text};
use axum::http::StatusCode;

#[tokio::test]
async fn command_line_access_without_mfa_says_why_in_words_and_leads_to_the_challenge_first() {
    let f = fixture().await;
    let (session, _) = f.sign_in(None).await;
    let csrf = f.home_csrf(&session).await;
    let r = f
        .get_credentials(&session, &csrf, "111122223333", "Ops")
        .await;
    assert_eq!(r.status(), StatusCode::FORBIDDEN);
    let html = text(r).await;
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
