//! The ACS through the router: a Response refused before its provider is known (an IdP-initiated
//! one, which names its provider only by its Issuer) gets the status and reason the same Response
//! gets when it answers a pending login.

use crate::app::App;
use crate::idp::saml::test_idp::{self, Claims, Signed};
use crate::testing::{self, PUBLIC_URL};
use axum::http::StatusCode;
use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use std::sync::Arc;

const T0: i64 = 1_800_000_000;

async fn app() -> (Arc<App>, tempfile::TempDir) {
    let idp = test_idp::rsa_key();
    let dir = tempfile::tempdir().unwrap();
    let metadata = dir.path().join("idp.xml");
    std::fs::write(&metadata, test_idp::metadata_xml(&idp)).unwrap();
    let (app, _clock) = testing::config()
        .with(&format!(
            "[saml]\n[[saml_providers]]\nname = \"corp\"\nmetadata_file = \"{}\"\nallow_idp_initiated = true\n",
            metadata.display()
        ))
        .build(T0)
        .await;
    (app, dir)
}

/// A Response of the test IdP with its assertion twice: refused by the shape check (the ID repeats).
fn two_assertions() -> String {
    let key = test_idp::rsa_key();
    let (audience, acs) = (
        format!("{PUBLIC_URL}/saml/metadata"),
        format!("{PUBLIC_URL}/saml/acs"),
    );
    let xml = test_idp::response(
        &Claims::new("ana", &audience, &acs, T0),
        &key,
        Signed::Response,
    );
    let start = xml.find("<saml:Assertion").unwrap();
    let end = xml.find("</saml:Assertion>").unwrap() + "</saml:Assertion>".len();
    let assertion = &xml[start..end];
    STANDARD.encode(xml.replacen(assertion, &format!("{assertion}{assertion}"), 1))
}

/// Posts `response` to the ACS (with `cookies` and `relay`): the status and the audit reason.
async fn acs(app: &Arc<App>, response: &str, cookies: &str, relay: &str) -> (StatusCode, String) {
    let mut form = vec![("SAMLResponse", response)];
    if !relay.is_empty() {
        form.push(("RelayState", relay));
    }
    let resp = testing::post_form(app, "/saml/acs", cookies, PUBLIC_URL, &form).await;
    let status = resp.status();
    let id = resp.headers()["x-request-id"].to_str().unwrap().to_string();
    let ev = testing::audit_event(app, &id).await;
    assert_eq!(ev.decision, "deny", "{ev:?}");
    (status, ev.reason.unwrap_or_default())
}

#[tokio::test]
async fn a_badly_shaped_idp_initiated_response_is_refused_as_a_solicited_one_is() {
    let (app, _dir) = app().await;
    let response = two_assertions();

    let login = testing::get(&app, "/saml/corp/login", "").await;
    assert_eq!(login.status(), StatusCode::FOUND);
    let pending = testing::set_cookie(&login, super::saml::COOKIE_PLAIN).unwrap();
    let location = testing::location(&login);
    let relay = url::Url::parse(&location)
        .unwrap()
        .query_pairs()
        .find(|(k, _)| k == "RelayState")
        .map(|(_, v)| v.into_owned())
        .unwrap();
    let cookie = format!("{}={pending}", super::saml::COOKIE_PLAIN);
    let solicited = acs(&app, &response, &cookie, &relay).await;
    assert_eq!(solicited.0, StatusCode::FORBIDDEN, "{solicited:?}");
    assert!(solicited.1.contains("shape check:"), "{solicited:?}");
    assert!(
        solicited.1.contains("appears more than once"),
        "{solicited:?}"
    );

    let unsolicited = acs(&app, &response, "", "").await;
    assert_eq!(unsolicited, solicited);

    // Not base64 at all: refused as the verification refuses it, with its reason.
    let (status, reason) = acs(&app, "%%%", "", "").await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{reason}");
    assert!(reason.contains("base64"), "{reason}");
}
