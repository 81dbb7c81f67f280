//! The portal API through the router: bearer tokens, pagination, credentials and Logout.

use super::portal_api::BEARER_HEADER;
use super::testing::{ana, app_with, json, send, signed_in, T0};
use crate::app::App;
use axum::body::Body;
use axum::http::Request;
use serde_json::Value;
use std::sync::Arc;

fn get(path: &str, token: Option<&str>) -> Request<Body> {
    let mut b = Request::get(path);
    if let Some(t) = token {
        b = b.header(BEARER_HEADER, t);
    }
    b.body(Body::empty()).unwrap()
}

/// `GET path` with the bearer `token`, answered: status, error type and JSON body.
async fn got(app: &Arc<App>, path: &str, token: Option<&str>) -> (u16, Option<String>, Value) {
    json(send(app, get(path, token)).await).await
}

fn logout(token: &str) -> Request<Body> {
    Request::post("/logout")
        .header(BEARER_HEADER, token)
        .body(Body::empty())
        .unwrap()
}

#[tokio::test]
async fn no_unknown_or_expired_token_is_unauthorized() {
    let (app, clock) = app_with("").await;
    let t = signed_in(&app, ana(None)).await;
    for token in [
        None,
        Some(""),
        Some("not-a-token"),
        Some(t.refresh_token.as_str()),
    ] {
        let (status, kind, body) = got(&app, "/assignment/accounts", token).await;
        assert_eq!(status, 401, "{token:?}");
        assert_eq!(kind.as_deref(), Some("UnauthorizedException"));
        assert_eq!(body["message"], "Session token not found or invalid");
    }
    let (status, ..) = got(&app, "/assignment/accounts", Some(&t.access_token)).await;
    assert_eq!(status, 200);
    clock.advance(chrono::Duration::seconds(3600));
    let (status, kind, _) = got(&app, "/assignment/accounts", Some(&t.access_token)).await;
    assert_eq!(
        (status, kind.as_deref()),
        (401, Some("UnauthorizedException"))
    );
    app.audit.flush().await;
    let refused = crate::audit::query(
        app.store.as_ref(),
        &crate::store::AuditQuery {
            action: Some("sso:ListAccounts".into()),
            ..Default::default()
        },
    )
    .await
    .unwrap();
    let reasons: Vec<_> = refused.iter().filter_map(|e| e.reason.clone()).collect();
    assert!(
        reasons
            .iter()
            .any(|r| r.contains("no x-amz-sso_bearer_token")),
        "{reasons:?}"
    );
    assert!(
        reasons.iter().any(|r| r == "unknown access token"),
        "{reasons:?}"
    );
    assert!(reasons.iter().any(|r| r.contains("expired")), "{reasons:?}");
}

#[tokio::test]
async fn accounts_and_roles_are_listed_a_page_at_a_time() {
    let (app, _) = app_with("").await;
    let t = signed_in(&app, ana(None)).await;
    let tok = Some(t.access_token.as_str());
    let (status, _, all) = got(&app, "/assignment/accounts", tok).await;
    assert_eq!(status, 200);
    let ids: Vec<_> = all["accountList"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| {
            (
                a["accountId"].as_str().unwrap(),
                a["accountName"].as_str().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        ids,
        [
            ("111122223333", "main"),
            ("222233334444", "staging"),
            ("333344445555", "prod")
        ]
    );
    assert!(all.get("nextToken").is_none());

    let (_, _, p1) = got(&app, "/assignment/accounts?max_result=2", tok).await;
    assert_eq!(p1["accountList"].as_array().unwrap().len(), 2);
    let next = p1["nextToken"].as_str().unwrap().to_string();
    let (_, _, p2) = got(
        &app,
        &format!("/assignment/accounts?max_result=2&next_token={next}"),
        tok,
    )
    .await;
    assert_eq!(p2["accountList"][0]["accountId"], "333344445555");
    assert!(p2.get("nextToken").is_none());

    let (_, _, roles) = got(
        &app,
        "/assignment/roles?account_id=111122223333&max_result=1",
        tok,
    )
    .await;
    assert_eq!(
        roles["roleList"],
        serde_json::json!([{"roleName": "Dev", "accountId": "111122223333"}])
    );
    let next_role = roles["nextToken"].as_str().unwrap().to_string();
    let (_, _, roles2) = got(
        &app,
        &format!("/assignment/roles?account_id=111122223333&next_token={next_role}"),
        tok,
    )
    .await;
    assert_eq!(roles2["roleList"][0]["roleName"], "Ops");
    let (_, _, other) = got(&app, "/assignment/roles?account_id=999999999999", tok).await;
    assert_eq!(other["roleList"], serde_json::json!([]));

    for bad in [
        "/assignment/accounts?max_result=0".to_string(),
        "/assignment/accounts?max_result=101".to_string(),
        "/assignment/accounts?max_result=x".to_string(),
        "/assignment/accounts?next_token=garbage".to_string(),
        // A token of another list is not a token of this one.
        format!("/assignment/accounts?next_token={next_role}"),
        format!("/assignment/roles?account_id=222233334444&next_token={next_role}"),
        "/assignment/roles".to_string(),
        "/assignment/roles?account_id=12".to_string(),
        "/assignment/accounts?max_result=1&max_result=2".to_string(),
    ] {
        let (status, kind, _) = got(&app, &bad, tok).await;
        assert_eq!(
            (status, kind.as_deref()),
            (400, Some("InvalidRequestException")),
            "{bad}"
        );
    }
}

#[tokio::test]
async fn role_credentials_follow_the_assignment_and_mfa_rules() {
    let (app, _) = app_with("").await;
    let t = signed_in(&app, ana(None)).await;
    let tok = Some(t.access_token.as_str());
    let (status, _, body) = got(
        &app,
        "/federation/credentials?role_name=Dev&account_id=111122223333",
        tok,
    )
    .await;
    assert_eq!(status, 200, "{body}");
    let c = &body["roleCredentials"];
    // Epoch milliseconds, the permission set's two hours.
    assert_eq!(c["expiration"], (T0 + 7200) * 1000);
    let claims = app
        .keys
        .unseal_session(c["sessionToken"].as_str().unwrap())
        .unwrap();
    assert_eq!(claims.access_key_id, c["accessKeyId"].as_str().unwrap());
    assert_eq!(
        claims.secret_access_key,
        c["secretAccessKey"].as_str().unwrap()
    );
    assert_eq!(
        claims.principal.arn(),
        "arn:aws:sts::111122223333:assumed-role/RolegateSSO_Dev/ana"
    );

    // Ops needs MFA: refused with the reason, and no credentials.
    let (status, kind, body) = got(
        &app,
        "/federation/credentials?role_name=Ops&account_id=111122223333",
        tok,
    )
    .await;
    assert_eq!((status, kind.as_deref()), (403, Some("ForbiddenException")));
    assert!(body["message"].as_str().unwrap().contains("MFA"), "{body}");
    assert!(body.get("roleCredentials").is_none());
    // Ops is not assigned in staging; Admin exists nowhere.
    for q in [
        "role_name=Ops&account_id=222233334444",
        "role_name=Admin&account_id=111122223333",
    ] {
        let (status, kind, body) = got(&app, &format!("/federation/credentials?{q}"), tok).await;
        assert_eq!(
            (status, kind.as_deref()),
            (403, Some("ForbiddenException")),
            "{q}"
        );
        assert_eq!(body["message"], "No access", "{q}");
    }
    for q in [
        "account_id=111122223333",
        "role_name=Dev",
        "role_name=Dev&account_id=abc",
    ] {
        let (status, kind, _) = got(&app, &format!("/federation/credentials?{q}"), tok).await;
        assert_eq!(
            (status, kind.as_deref()),
            (400, Some("InvalidRequestException")),
            "{q}"
        );
    }

    // A sign-in with MFA gets Ops.
    let m = signed_in(&app, ana(Some(T0 - 60))).await;
    let (status, _, _) = got(
        &app,
        "/federation/credentials?role_name=Ops&account_id=111122223333",
        Some(&m.access_token),
    )
    .await;
    assert_eq!(status, 200);

    app.audit.flush().await;
    let events = crate::audit::query(
        app.store.as_ref(),
        &crate::store::AuditQuery {
            action: Some("sso:GetRoleCredentials".into()),
            ..Default::default()
        },
    )
    .await
    .unwrap();
    let allowed = events.iter().filter(|e| e.decision == "allow").count();
    assert_eq!(allowed, 2);
    assert!(events.iter().any(|e| e
        .reason
        .as_deref()
        .is_some_and(|r| r.contains("no assignment rule"))));
}

async fn logout_case(revoke: bool) {
    let (app, clock) = app_with(if revoke {
        "logout_revokes_credentials = true"
    } else {
        ""
    })
    .await;
    let t = signed_in(&app, ana(None)).await;
    let other = signed_in(&app, ana(None)).await;
    let creds = |token: String| {
        let app = app.clone();
        async move {
            let (_, _, body) = got(
                &app,
                "/federation/credentials?role_name=Dev&account_id=111122223333",
                Some(&token),
            )
            .await;
            app.keys
                .unseal_session(body["roleCredentials"]["sessionToken"].as_str().unwrap())
                .unwrap()
        }
    };
    let mine = creds(t.access_token.clone()).await;
    let theirs = creds(other.access_token.clone()).await;
    // The sign-in remembers its credentials either way (an operator lists and ends them).
    let remembered = super::token::bearer(&app, &t.access_token)
        .await
        .unwrap()
        .signin
        .issued
        .len();
    assert_eq!(remembered, 1);
    clock.advance(chrono::Duration::seconds(10));
    let (status, _, _) = json(send(&app, logout(&t.access_token)).await).await;
    assert_eq!(status, 200);
    let (status, kind, _) = got(&app, "/assignment/accounts", Some(&t.access_token)).await;
    assert_eq!(
        (status, kind.as_deref()),
        (401, Some("UnauthorizedException"))
    );
    let e = super::token::refresh(&app, "client-a", &t.refresh_token)
        .await
        .unwrap_err();
    assert_eq!(e.code.as_str(), "InvalidGrantException");
    // A second Logout with the ended token is unauthorized; the other sign-in lives on.
    let (status, ..) = json(send(&app, logout(&t.access_token)).await).await;
    assert_eq!(status, 401);
    let (status, ..) = got(&app, "/assignment/accounts", Some(&other.access_token)).await;
    assert_eq!(status, 200);
    assert_eq!(app.revocations.check(&mine).is_some(), revoke);
    assert!(app.revocations.check(&theirs).is_none());
    assert!(app.clock.now().timestamp() < mine.expires_at);
}

#[tokio::test]
async fn logout_ends_the_sign_in_and_keeps_credentials_by_default() {
    logout_case(false).await;
}

#[tokio::test]
async fn logout_revokes_the_credentials_when_configured() {
    logout_case(true).await;
}

#[tokio::test]
async fn a_browser_sign_out_without_a_bearer_token_is_still_the_portal_s() {
    let (app, _) = app_with("").await;
    let resp = send(
        &app,
        Request::post("/logout")
            .header("origin", "http://127.0.0.1:8080")
            .body(Body::empty())
            .unwrap(),
    )
    .await;
    // No session cookie: the portal's refusal page, not the API's JSON.
    assert!(resp.headers().get("x-amzn-errortype").is_none());
    assert!(resp
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|c| c.starts_with("text/html")));
}

#[tokio::test]
async fn the_start_url_opens_the_portal() {
    let (app, _) = app_with("").await;
    let resp = send(&app, get("/start", None)).await;
    assert_eq!(resp.status(), 303);
    assert_eq!(resp.headers()["location"], "/portal");
    assert_eq!(super::start_url(&app.config), "http://127.0.0.1:8080/start");
}
