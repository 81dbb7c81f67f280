//! `AssumeRoleWithWebIdentity` through the router with tokens of a provider served on loopback: the
//! token's `sub` is the subject exactly as signed (trust policy, response, audit), never trimmed or
//! folded.

use crate::app::App;
use crate::audit::AuditEvent;
use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::signature::{EcdsaKeyPair, KeyPair, ECDSA_P256_SHA256_FIXED_SIGNING};
use axum::http::StatusCode;
use axum::routing::get;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use serde_json::{json, Value};
use std::sync::Arc;

const T0: i64 = 1_800_000_000;
const ACCOUNT: &str = "111122223333";
const CLIENT: &str = "client-a";
const KID: &str = "k1";

struct Fixture {
    app: Arc<App>,
    key: EcdsaKeyPair,
    issuer: String,
}

/// A provider serving discovery and its JWKS on loopback, and rolegate trusting it for two roles:
/// `any-subject` (audience only) and `only-alice` (`sub` = `alice`).
async fn fixture() -> Fixture {
    let key = EcdsaKeyPair::generate(&ECDSA_P256_SHA256_FIXED_SIGNING).unwrap();
    let public = key.public_key().as_ref();
    let jwks = json!({"keys": [{
        "kty": "EC", "crv": "P-256", "kid": KID, "use": "sig", "alg": "ES256",
        "x": URL_SAFE_NO_PAD.encode(&public[1..33]), "y": URL_SAFE_NO_PAD.encode(&public[33..65]),
    }]});
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let host = listener.local_addr().unwrap().to_string();
    let issuer = format!("http://{host}");
    let discovery = json!({"issuer": issuer, "jwks_uri": format!("{issuer}/jwks")});
    let provider = axum::Router::new()
        .route(
            "/.well-known/openid-configuration",
            get(move || async move { axum::Json(discovery) }),
        )
        .route("/jwks", get(move || async move { axum::Json(jwks) }));
    tokio::spawn(async move { axum::serve(listener, provider).await.unwrap() });

    let trust = |extra: &str| {
        format!(
            r#"{{"Version":"2012-10-17","Statement":[{{"Effect":"Allow","Principal":{{"Federated":"arn:aws:iam::{ACCOUNT}:oidc-provider/{host}"}},"Action":"sts:AssumeRoleWithWebIdentity","Condition":{{"StringEquals":{{"{host}:aud":"{CLIENT}"{extra}}}}}}}]}}"#
        )
    };
    let (app, _clock) = crate::testing::config()
        .with(&format!(
            "[[oidc_providers]]\nissuer = \"{issuer}\"\naudiences = [\"{CLIENT}\"]\nalgorithms = [\"ES256\"]\nallow_http = true\n"
        ))
        .role("any-subject", &trust(""))
        .role("only-alice", &trust(&format!(r#","{host}:sub":"alice""#)))
        .build(T0)
        .await;
    Fixture { app, key, issuer }
}

fn role(name: &str) -> String {
    format!("arn:aws:iam::{ACCOUNT}:role/{name}")
}

fn xml_text<'a>(xml: &'a str, tag: &str) -> Option<&'a str> {
    let (_, rest) = xml.split_once(&format!("<{tag}>"))?;
    rest.split_once(&format!("</{tag}>")).map(|(t, _)| t)
}

impl Fixture {
    /// An ES256 ID token of the provider about `sub`, issued at T0.
    fn token(&self, sub: &str) -> String {
        let header = json!({"alg": "ES256", "kid": KID, "typ": "JWT"});
        let claims: Value = json!({
            "iss": self.issuer, "aud": CLIENT, "sub": sub, "iat": T0, "exp": T0 + 3600,
        });
        let input = format!(
            "{}.{}",
            URL_SAFE_NO_PAD.encode(header.to_string()),
            URL_SAFE_NO_PAD.encode(claims.to_string())
        );
        let signature = self
            .key
            .sign(&SystemRandom::new(), input.as_bytes())
            .unwrap();
        format!("{input}.{}", URL_SAFE_NO_PAD.encode(signature.as_ref()))
    }

    /// `AssumeRoleWithWebIdentity` of `role_arn` with a token about `sub`: the status, the body and
    /// the audit event of the call.
    async fn assume(&self, role_arn: &str, sub: &str) -> (StatusCode, String, AuditEvent) {
        let token = self.token(sub);
        crate::web::testing::unsigned_sts_call(
            &self.app,
            &[
                ("Action", "AssumeRoleWithWebIdentity"),
                ("Version", "2011-06-15"),
                ("RoleArn", role_arn),
                ("RoleSessionName", "web-session"),
                ("WebIdentityToken", &token),
            ],
        )
        .await
    }
}

#[tokio::test]
async fn a_subject_with_whitespace_or_another_case_is_not_the_same_subject() {
    let f = fixture().await;
    let (any, alice) = (role("any-subject"), role("only-alice"));
    for sub in [" alice", "alice ", "\talice", "Alice"] {
        // The subject is carried as signed.
        let (status, body, ev) = f.assume(&any, sub).await;
        assert_eq!(status, StatusCode::OK, "{sub:?}: {body}");
        assert_eq!(
            xml_text(&body, "SubjectFromWebIdentityToken"),
            Some(sub),
            "{body}"
        );
        assert_eq!(ev.subject.as_deref(), Some(sub));
        // And it is not "alice" to a trust policy that names her.
        let (status, body, ev) = f.assume(&alice, sub).await;
        assert_eq!(status, StatusCode::FORBIDDEN, "{sub:?}: {body}");
        assert_eq!(xml_text(&body, "Code"), Some("AccessDenied"), "{body}");
        assert!(!body.contains("<Credentials>"), "{body}");
        assert_eq!(ev.decision, "deny");
        assert_eq!(ev.subject.as_deref(), Some(sub));
    }
    // Control: alice herself.
    let (status, body, ev) = f.assume(&alice, "alice").await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(
        xml_text(&body, "SubjectFromWebIdentityToken"),
        Some("alice")
    );
    assert_eq!(ev.decision, "allow");
}
