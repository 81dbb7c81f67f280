//! An `x-amz-*` header added to a correctly signed request after signing is refused at every edge
//! that verifies SigV4, through the router: the STS (long-term keys, temporary credentials,
//! presigned URLs) and `POST /v1/authorize`. Requests are signed with the aws-sigv4 crate, the
//! SDKs' own signer.

use super::testing::{sign_request, sts_post, text_of, Creds, Signed, T0};
use crate::app::App;
use crate::audit::AuditEvent;
use axum::body::Body;
use axum::http::{Request, StatusCode};
use serde_json::{json, Value};
use std::sync::Arc;

const SERVICE_TOKEN: &str = "objstore-token-0123456789abcdef0123456789";
const GCI: &str = "Action=GetCallerIdentity&Version=2011-06-15";
const INJECTED: [(&str, &str); 3] = [
    ("x-amz-acl", "public-read-write"),
    ("x-amz-copy-source", "/other-bucket/secret"),
    ("x-amz-grant-full-control", "id=attacker"),
];

struct Fixture {
    app: Arc<App>,
    /// A directory user's long-term key.
    user: Creds,
}

async fn fixture() -> Fixture {
    let (app, _clock) = crate::testing::config()
        .service("objstore", "s3", SERVICE_TOKEN)
        .build(T0)
        .await;
    crate::testing::directory_user(&app, "ana", &[]).await;
    let user = super::testing::access_key(&app, "ana").await;
    Fixture { app, user }
}

impl Fixture {
    async fn send(&self, req: Request<Body>) -> (StatusCode, String) {
        let resp = crate::testing::send(&self.app, req).await;
        (resp.status(), crate::testing::text(resp).await)
    }

    /// Sends a signed request to the STS.
    async fn sts(&self, req: &Signed) -> (StatusCode, String) {
        self.send(req.request()).await
    }

    /// `POST /v1/authorize` for the signed request `req` (as the object store received it).
    async fn authorize(&self, req: &Signed) -> (StatusCode, Value) {
        let input = json!({
            "request": req.as_received(),
            "action": "s3:PutObject",
            "resource": "arn:aws:s3:::bucket/key",
        });
        let (status, body) = self
            .send(
                Request::post("/v1/authorize")
                    .header("authorization", format!("Bearer {SERVICE_TOKEN}"))
                    .header("content-type", "application/json")
                    .body(Body::from(input.to_string()))
                    .unwrap(),
            )
            .await;
        (status, serde_json::from_str(&body).unwrap())
    }

    /// The audit event of the request `request_id`.
    async fn event(&self, request_id: &str) -> AuditEvent {
        crate::testing::audit_event(&self.app, request_id).await
    }

    /// Temporary credentials of the user, from `GetSessionToken`.
    async fn session(&self) -> Creds {
        let (status, body) = self
            .sts(&sts_post(
                &self.user,
                "Action=GetSessionToken&Version=2011-06-15",
            ))
            .await;
        assert_eq!(status, StatusCode::OK, "{body}");
        Creds {
            key: text_of(&body, "AccessKeyId").unwrap().to_string(),
            secret: text_of(&body, "SecretAccessKey").unwrap().to_string(),
            token: Some(text_of(&body, "SessionToken").unwrap().to_string()),
        }
    }

    /// Asserts an STS refusal for the unsigned `header`, audited with its name.
    async fn assert_sts_refused(&self, answer: (StatusCode, String), header: &str) {
        let (status, body) = answer;
        assert_eq!(status, StatusCode::FORBIDDEN, "{body}");
        assert_eq!(text_of(&body, "Code"), Some("AccessDenied"), "{body}");
        assert_eq!(
            text_of(&body, "Message"),
            Some("There were headers present in the request which were not signed"),
            "{body}"
        );
        assert!(!body.contains("<Arn>"), "{body}");
        let ev = self.event(text_of(&body, "RequestId").unwrap()).await;
        assert_eq!(ev.decision, "deny");
        assert_eq!(ev.error_code.as_deref(), Some("AccessDenied"));
        let reason = ev.reason.unwrap_or_default();
        assert!(
            reason.contains(&format!("{header:?}")) && reason.contains("not in SignedHeaders"),
            "{reason}"
        );
    }
}

#[tokio::test]
async fn sts_refuses_x_amz_headers_added_after_signing_with_either_kind_of_key() {
    let f = fixture().await;
    let session = f.session().await;
    for (what, creds) in [("long-term key", &f.user), ("session", &session)] {
        let signed = sts_post(creds, GCI);
        let (status, body) = f.sts(&signed).await;
        assert_eq!(status, StatusCode::OK, "{what}: control: {body}");
        assert!(text_of(&body, "Arn").unwrap().contains("ana"), "{body}");
        for (name, value) in INJECTED {
            let answer = f.sts(&signed.with(&[(name, value)])).await;
            f.assert_sts_refused(answer, name).await;
        }
        // Headers outside x-amz-* (a trace id, a user agent) may stay unsigned.
        let (status, body) = f
            .sts(&signed.with(&[
                (
                    "x-amzn-trace-id",
                    "Root=1-00000000-000000000000000000000000",
                ),
                ("user-agent", "custom/1.0"),
            ]))
            .await;
        assert_eq!(status, StatusCode::OK, "{what}: {body}");
    }
}

#[tokio::test]
async fn sts_refuses_an_unsigned_x_amz_header_on_a_presigned_url() {
    let f = fixture().await;
    let session = f.session().await;
    for creds in [&f.user, &session] {
        let presigned = sign_request(creds, "sts", "GET", &format!("/?{GCI}"), &[], b"", true);
        let (status, body) = f.sts(&presigned).await;
        assert_eq!(status, StatusCode::OK, "control: {body}");
        let answer = f
            .sts(&presigned.with(&[("x-amz-copy-source", "/other-bucket/secret")]))
            .await;
        f.assert_sts_refused(answer, "x-amz-copy-source").await;
    }
}

#[tokio::test]
async fn authorize_refuses_a_request_with_unsigned_x_amz_headers() {
    let f = fixture().await;
    let session = f.session().await;
    for (what, creds) in [("long-term key", &f.user), ("session", &session)] {
        let put = sign_request(
            creds,
            "s3",
            "PUT",
            "/bucket/key",
            &[("x-amz-acl", "private")],
            b"data",
            false,
        );
        let (status, out) = f.authorize(&put).await;
        assert_eq!(status, StatusCode::OK, "{what}: control: {out}");
        assert!(
            out["principal"]["arn"].as_str().unwrap().contains("ana"),
            "{out}"
        );
        // A signed x-amz-acl is fine; a second value or another header slipped in is not.
        for (name, value) in INJECTED.iter().skip(1) {
            let (status, out) = f.authorize(&put.with(&[(*name, *value)])).await;
            assert_eq!(status, StatusCode::FORBIDDEN, "{what} {name}: {out}");
            assert_eq!(out["error"]["code"], "AccessDenied", "{out}");
            assert_eq!(
                out["error"]["message"],
                "There were headers present in the request which were not signed"
            );
            assert!(out.get("principal").is_none(), "{out}");
            let ev = f.event(out["request_id"].as_str().unwrap()).await;
            assert_eq!(ev.decision, "deny");
            let reason = ev.reason.unwrap_or_default();
            assert!(reason.contains(&format!("{name:?}")), "{reason}");
        }
        // The same header signed with the request is accepted.
        let signed_all = sign_request(creds, "s3", "PUT", "/bucket/key", &INJECTED, b"data", false);
        let (status, out) = f.authorize(&signed_all).await;
        assert_eq!(status, StatusCode::OK, "{what}: {out}");
    }
}
