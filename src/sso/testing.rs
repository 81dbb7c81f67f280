//! Test fixture of the SSO modules: an app with `[portal]` and `[sso]`, three accounts and a person
//! with two permission sets (one needing MFA), and tokens issued for them without the approval
//! pages.

use crate::app::App;
use crate::clock::FixedClock;
use crate::portal::SignedInIdentity;
pub use crate::testing::{ana, in_directory, send};
use axum::body::Body;
use axum::http::{header, Request, StatusCode};
use axum::response::Response;
use serde_json::Value;
use std::sync::Arc;

/// The fixture's start time (Unix seconds).
pub const T0: i64 = 1_700_000_000;

/// An app over the fixture configuration with `sso` lines added to `[sso]`: accounts main,
/// staging and prod; permission set Dev (two-hour sessions) in all three and Ops (MFA) in main.
pub async fn app_with(sso: &str) -> (Arc<App>, FixedClock) {
    use crate::testing::ACCOUNT;
    crate::testing::config()
        .accounts(&[
            (ACCOUNT, "main"),
            ("222233334444", "staging"),
            ("333344445555", "prod"),
        ])
        .permission_set_in(
            "Dev",
            "session_duration = \"PT2H\"",
            &[ACCOUNT, "222233334444", "333344445555"],
        )
        .permission_set("Ops", "mfa = \"required\"")
        .with("[portal]\n[sso]\naccess_token_minutes = 60\nsession_hours = 8\n")
        .with(sso)
        .build(T0)
        .await
}

/// A sign-in approved for `client-a`.
pub async fn signed_in(app: &App, identity: SignedInIdentity) -> super::token::Issued {
    let identity = in_directory(app, identity).await;
    super::token::start(
        app,
        "client-a",
        identity,
        "http://127.0.0.1:8080/start",
        vec!["sso:account:access".into()],
        vec![],
    )
    .await
    .unwrap()
}

/// The response's status and JSON body (`Null` for an empty body).
pub async fn json(resp: Response) -> (u16, Option<String>, serde_json::Value) {
    let status = resp.status().as_u16();
    let kind = resp
        .headers()
        .get("x-amzn-errortype")
        .and_then(|v| v.to_str().ok())
        .map(str::to_string);
    let bytes = axum::body::to_bytes(resp.into_body(), 1 << 20)
        .await
        .unwrap();
    let v = if bytes.is_empty() {
        serde_json::Value::Null
    } else {
        serde_json::from_slice(&bytes).unwrap()
    };
    (status, kind, v)
}

/// A call of the SSO-OIDC API: `POST path` of a JSON `body` through the router; the status, the
/// `x-amzn-ErrorType` (empty on success) and the JSON answer (`Null` when it is not JSON).
pub async fn api(app: &Arc<App>, path: &str, body: &str) -> (StatusCode, String, Value) {
    let resp = send(
        app,
        Request::post(path)
            .header(header::CONTENT_TYPE, "application/json")
            .body(Body::from(body.to_string()))
            .unwrap(),
    )
    .await;
    let status = resp.status();
    let error_type = resp
        .headers()
        .get("x-amzn-errortype")
        .map(|v| v.to_str().unwrap().to_string())
        .unwrap_or_default();
    let bytes = axum::body::to_bytes(resp.into_body(), 1 << 20)
        .await
        .unwrap();
    let answer = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
    (status, error_type, answer)
}

/// Registers a client with `RegisterClient`; returns its id and secret.
pub async fn register(app: &Arc<App>, body: Value) -> (String, String) {
    let (status, _, answer) = api(app, "/client/register", &body.to_string()).await;
    assert_eq!(status, StatusCode::OK, "{answer}");
    (
        answer["clientId"].as_str().unwrap().to_string(),
        answer["clientSecret"].as_str().unwrap().to_string(),
    )
}

/// Registers the client the AWS CLI registers for the authorization code grant (PKCE, a loopback
/// redirect); returns its id and secret.
pub async fn pkce_client(app: &Arc<App>) -> (String, String) {
    register(
        app,
        serde_json::json!({
            "clientName": "aws-cli",
            "clientType": "public",
            "grantTypes": ["authorization_code", "refresh_token"],
            "redirectUris": ["http://127.0.0.1/oauth/callback"],
            "issuerUrl": "http://127.0.0.1:8080/start",
            "scopes": ["sso:account:access"],
        }),
    )
    .await
}
