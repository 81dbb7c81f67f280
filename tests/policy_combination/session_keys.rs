//! `POST /v1/authorize`: condition keys that describe the session are rolegate's alone.

use reqwest::StatusCode;
use rolegate::credentials::Federation;
use serde_json::json;

use crate::harness::{Server, CALLERS};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn authorize_refuses_condition_keys_of_the_session() {
    let server = Server::start().await;
    // A portal session of dave (sign-in provider `local`), and one of bob.
    let federation = |sub: &str| Federation {
        provider_arn: format!("arn:aws:iam::{CALLERS}:saml-provider/RolegateSSO"),
        key_prefix: "local".into(),
        subject: sub.into(),
        claims: Some(json!({ "sub": sub })),
    };
    let dave = server.session("portal", "dave", None, Some(federation("dave")));
    let bob = server.session("portal", "bob", None, Some(federation("bob")));
    let queue = format!("arn:aws:sqs:us-east-1:{CALLERS}:jobs");
    let (_, out) = server
        .authorize(&bob, "sqs:SendMessage", &queue, json!({}))
        .await;
    assert_eq!(out["decision"], "Allow", "{out}");
    let (_, out) = server
        .authorize(&dave, "sqs:SendMessage", &queue, json!({}))
        .await;
    assert_eq!(out["decision"], "ImplicitDeny", "{out}");

    let refused = [
        "local:sub",
        "LOCAL:Sub",
        "local:groups",
        "saml:sub",
        "corp:sub",
        "127.0.0.1:9/corp:sub",
        "RolegateSSO:sub",
        "sts:RoleSessionName",
        "sts:ExternalId",
        "aws:PrincipalOrgID",
        "aws:principalarn",
        "aws:PrincipalTag/team",
        "aws:MultiFactorAuthAge",
        "aws:CalledVia",
        // The Kelvin sign lowercases to `k`, as condition keys are compared.
        "aws:To\u{212A}enIssueTime",
    ];
    for key in refused {
        let (status, out) = server
            .authorize(
                &dave,
                "sqs:SendMessage",
                &queue,
                json!({ "context": { key: "bob" } }),
            )
            .await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{key}: {out}");
        assert_eq!(out["error"]["code"], "InvalidInput", "{out}");
        let message = out["error"]["message"].as_str().unwrap_or_default();
        assert!(
            message.contains(key) && message.contains("may not supply"),
            "{message}"
        );
        let request_id = out["request_id"].as_str().unwrap_or_default();
        let event = server.audit_event(request_id).await;
        assert_eq!(event.decision, "deny", "{event:?}");
        assert_eq!(event.error_code.as_deref(), Some("InvalidInput"));
        let reason = event.reason.unwrap_or_default();
        assert!(
            reason.contains(key) && reason.contains("may not supply"),
            "{reason}"
        );
    }
    // Keys of the request and resource that only the service knows are still its to give.
    for key in [
        "aws:RequestTag/team",
        "aws:ResourceTag/team",
        "sqs:MessageGroupId",
        "localx:sub",
    ] {
        let (status, out) = server
            .authorize(
                &dave,
                "sqs:SendMessage",
                &queue,
                json!({ "context": { key: "bob" } }),
            )
            .await;
        assert_eq!(status, StatusCode::OK, "{key}: {out}");
        assert_eq!(out["decision"], "ImplicitDeny", "{key}: {out}");
    }
}
