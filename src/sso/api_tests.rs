//! The SSO-OIDC API through the router: every rule of RegisterClient, StartDeviceAuthorization
//! and CreateToken, with the approvals made directly in the store layer (the portal pages have
//! their own tests).

use super::{client, code, device, token};
use crate::app::App;
use crate::clock::FixedClock;
use crate::portal::SignedInIdentity;
use axum::http::StatusCode;
use serde_json::{json, Value};
use std::sync::Arc;

const START_URL: &str = "http://127.0.0.1:8080/start";

struct Fixture {
    app: Arc<App>,
    clock: FixedClock,
}

/// What an API call answered: status, `x-amzn-ErrorType` (empty on success) and the body.
struct Answer {
    status: StatusCode,
    error_type: String,
    body: Value,
}

/// The fixture over the shared configuration with `[portal]`, `[sso]` and `extra`.
async fn fixture_with(extra: &str) -> Fixture {
    let (app, clock) = crate::testing::config()
        .with("[portal]\n[sso]\n")
        .with(extra)
        .build(1_700_000_000)
        .await;
    Fixture { app, clock }
}

async fn fixture() -> Fixture {
    fixture_with("").await
}

fn ana() -> SignedInIdentity {
    crate::testing::ana(None)
}

impl Fixture {
    async fn call_raw(&self, path: &str, body: &str) -> Answer {
        let (status, error_type, body) = crate::sso::testing::api(&self.app, path, body).await;
        Answer {
            status,
            error_type,
            body,
        }
    }

    async fn call(&self, path: &str, body: Value) -> Answer {
        self.call_raw(path, &body.to_string()).await
    }

    /// Registers a client; returns (clientId, clientSecret).
    async fn register(&self, body: Value) -> (String, String) {
        crate::sso::testing::register(&self.app, body).await
    }

    async fn device_client(&self) -> (String, String) {
        self.register(json!({"clientName": "cli", "clientType": "public"}))
            .await
    }

    async fn pkce_client(&self) -> (String, String) {
        crate::sso::testing::pkce_client(&self.app).await
    }

    /// Starts a device authorization; returns the whole answer.
    async fn start(&self, id: &str, secret: &str) -> Value {
        let a = self
            .call(
                "/device_authorization",
                json!({"clientId": id, "clientSecret": secret, "startUrl": START_URL}),
            )
            .await;
        assert_eq!(a.status, StatusCode::OK, "{}", a.body);
        a.body
    }

    async fn poll(&self, id: &str, secret: &str, device_code: &str) -> Answer {
        self.call(
            "/token",
            json!({
                "clientId": id,
                "clientSecret": secret,
                "grantType": client::DEVICE_GRANT,
                "deviceCode": device_code,
            }),
        )
        .await
    }

    async fn decide(&self, user_code: &str, approve: bool) {
        let code = device::normalize_user_code(user_code).unwrap();
        let pending = device::find_pending(&self.app, &code)
            .await
            .unwrap()
            .unwrap();
        let who = if approve {
            Some(crate::sso::testing::in_directory(&self.app, ana()).await)
        } else {
            None
        };
        assert!(device::decide(&self.app, &pending, who, "local/ana")
            .await
            .unwrap());
    }

    async fn audit(&self, action: &str) -> Vec<crate::audit::AuditEvent> {
        crate::testing::audit(&self.app, action).await
    }

    /// How many records of `kind` are stored.
    async fn records(&self, kind: &str) -> usize {
        self.app.store.dir_list(kind).await.unwrap().len()
    }

    /// The stored record of client `id`: as stored, and read.
    async fn client_record(&self, id: &str) -> (String, client::ClientRecord) {
        let stored = self
            .app
            .store
            .dir_get(client::CLIENT_KIND, id)
            .await
            .unwrap()
            .unwrap();
        let record = serde_json::from_str(&stored.value).unwrap();
        (stored.value, record)
    }

    /// The reasons of the audit events of `action`.
    async fn reasons(&self, action: &str) -> Vec<String> {
        self.audit(action)
            .await
            .into_iter()
            .filter_map(|e| e.reason)
            .collect()
    }

    /// Runs the clean-up now; how many records it removed.
    async fn purge(&self) -> usize {
        super::purge_expired(&self.app, self.app.clock.now().timestamp())
            .await
            .unwrap()
    }

    fn advance(&self, seconds: i64) {
        self.clock.advance(chrono::Duration::seconds(seconds));
    }
}

/// Asserts that one of `reasons` contains `needle`.
fn assert_any_contains(reasons: &[String], needle: &str) {
    assert!(
        reasons.iter().any(|r| r.contains(needle)),
        "{needle}: {reasons:?}"
    );
}

fn assert_error(a: &Answer, error_type: &str, oauth: &str) {
    assert_eq!(a.error_type, error_type, "{}", a.body);
    let want = if error_type == "InvalidClientException" {
        StatusCode::UNAUTHORIZED
    } else {
        StatusCode::BAD_REQUEST
    };
    assert_eq!(a.status, want, "{error_type}");
    assert_eq!(a.body["error"], oauth, "{}", a.body);
    assert!(a.body["error_description"].is_string(), "{}", a.body);
}

#[tokio::test]
async fn register_client_answers_the_model_s_members_and_stores_only_a_hash_of_the_secret() {
    let f = fixture().await;
    let a = f
        .call(
            "/client/register",
            json!({"clientName": "my laptop", "clientType": "public"}),
        )
        .await;
    assert_eq!(a.status, StatusCode::OK, "{}", a.body);
    let id = a.body["clientId"].as_str().unwrap();
    let secret = a.body["clientSecret"].as_str().unwrap();
    assert_eq!(secret.len(), 43, "256 bits, base64url");
    assert_eq!(a.body["clientIdIssuedAt"], 1_700_000_000);
    assert_eq!(a.body["clientSecretExpiresAt"], 1_700_000_000 + 90 * 86400);
    assert_eq!(
        a.body["authorizationEndpoint"],
        "http://127.0.0.1:8080/authorize"
    );
    assert_eq!(a.body["tokenEndpoint"], "http://127.0.0.1:8080/token");
    let (stored, r) = f.client_record(id).await;
    assert!(!stored.contains(secret));
    assert_eq!(r.secret_hash, crate::portal::session::key_of(secret));
    assert_eq!(r.grant_types, client::DEFAULT_GRANTS);
    assert_eq!(r.scopes, ["sso:account:access"]);
    let ev = f.audit(super::oidc::REGISTER_ACTION).await;
    assert_eq!(ev.len(), 1);
    assert_eq!(ev[0].decision, "allow");
    assert_eq!(ev[0].resource.as_deref(), Some(id));

    // The AWS CLI's PKCE registration.
    let (id, _) = f.pkce_client().await;
    let (_, r) = f.client_record(&id).await;
    assert_eq!(r.grant_types, ["authorization_code", "refresh_token"]);
    assert_eq!(r.redirect_uris, ["http://127.0.0.1/oauth/callback"]);
}

#[tokio::test]
async fn register_client_refuses_bad_metadata_with_the_model_s_errors() {
    let f = fixture().await;
    let ok = json!({"clientName": "cli", "clientType": "public"});
    let with = |k: &str, v: Value| {
        let mut o = ok.clone();
        o[k] = v;
        o
    };
    let code_grant = |uris: Value| {
        let mut o = with("grantTypes", json!(["authorization_code"]));
        o["redirectUris"] = uris;
        o
    };
    let cases: Vec<(Value, &str, &str, &str)> = vec![
        (
            json!({"clientType": "public"}),
            "InvalidRequestException",
            "invalid_request",
            "clientName is required",
        ),
        (
            json!({"clientName": "cli"}),
            "InvalidRequestException",
            "invalid_request",
            "clientType is required",
        ),
        (
            with("clientType", json!("confidential")),
            "InvalidClientMetadataException",
            "invalid_client_metadata",
            "not public",
        ),
        (
            with("clientName", json!("bad\nname")),
            "InvalidClientMetadataException",
            "invalid_client_metadata",
            "control characters",
        ),
        (
            with("scopes", json!(["sso:account:access", "openid"])),
            "InvalidScopeException",
            "invalid_scope",
            "unknown scope \"openid\"",
        ),
        (
            with("grantTypes", json!(["client_credentials"])),
            "UnsupportedGrantTypeException",
            "unsupported_grant_type",
            "client_credentials",
        ),
        (
            with("grantTypes", json!(["authorization_code"])),
            "InvalidRedirectUriException",
            "invalid_redirect_uri",
            "redirectUris is required",
        ),
        (
            code_grant(json!(["https://evil.example/cb"])),
            "InvalidRedirectUriException",
            "invalid_redirect_uri",
            "is not http://",
        ),
        (
            code_grant(json!(["http://10.0.0.1:8080/cb"])),
            "InvalidRedirectUriException",
            "invalid_redirect_uri",
            "not on 127.0.0.1",
        ),
        (
            with("redirectUris", json!(["http://127.0.0.1/cb"])),
            "InvalidClientMetadataException",
            "invalid_client_metadata",
            "need the authorization_code grant",
        ),
        (
            with("issuerUrl", json!("https://evil.example/start")),
            "InvalidRequestException",
            "invalid_request",
            "not this rolegate's start URL",
        ),
        (
            with("clientName", json!(7)),
            "InvalidRequestException",
            "invalid_request",
            "request body",
        ),
    ];
    for (body, error_type, oauth, _) in &cases {
        let a = f.call("/client/register", body.clone()).await;
        assert_error(&a, error_type, oauth);
    }
    let a = f.call_raw("/client/register", "{not json").await;
    assert_error(&a, "InvalidRequestException", "invalid_request");
    assert_eq!(f.records(client::CLIENT_KIND).await, 0);
    let ev = f.audit(super::oidc::REGISTER_ACTION).await;
    assert_eq!(ev.len(), cases.len() + 1);
    assert!(ev.iter().all(|e| e.decision == "deny"));
    for (_, error_type, _, reason) in &cases {
        assert!(
            ev.iter()
                .any(|e| e.error_code.as_deref() == Some(*error_type)
                    && e.reason.as_deref().unwrap_or("").contains(reason)),
            "{reason}: {:?}",
            ev.iter().map(|e| e.reason.clone()).collect::<Vec<_>>()
        );
    }
}

#[tokio::test]
async fn registrations_and_device_authorizations_are_rate_limited_per_address() {
    let f = fixture_with("[rate_limits]\nsso_start_per_ip = { per_minute = 1, burst = 2 }\n").await;
    let (id, secret) = f.device_client().await;
    f.start(&id, &secret).await;
    let a = f
        .call(
            "/client/register",
            json!({"clientName": "cli", "clientType": "public"}),
        )
        .await;
    assert_error(&a, "SlowDownException", "slow_down");
    let a = f
        .call(
            "/device_authorization",
            json!({"clientId": id, "clientSecret": secret, "startUrl": START_URL}),
        )
        .await;
    assert_error(&a, "SlowDownException", "slow_down");
    assert_eq!(f.records(client::CLIENT_KIND).await, 1);
    assert_eq!(f.records(device::DEVICE_KIND).await, 1);
    let ev = f.audit(super::oidc::REGISTER_ACTION).await;
    assert!(
        ev.iter()
            .any(|e| e.decision == "deny"
                && e.reason.as_deref().unwrap().contains("sso_start_per_ip"))
    );
}

#[tokio::test]
async fn start_device_authorization_gives_codes_to_authenticated_device_clients_only() {
    let f = fixture().await;
    let (id, secret) = f.device_client().await;
    let d = f.start(&id, &secret).await;
    let user_code = d["userCode"].as_str().unwrap();
    assert_eq!(user_code.len(), 9);
    assert_eq!(&user_code[4..5], "-");
    assert!(user_code
        .bytes()
        .filter(|b| *b != b'-')
        .all(|b| device::USER_CODE_ALPHABET.contains(&b)));
    assert_eq!(d["verificationUri"], "http://127.0.0.1:8080/device");
    assert_eq!(
        d["verificationUriComplete"],
        format!("http://127.0.0.1:8080/device?user_code={user_code}")
    );
    assert_eq!(d["expiresIn"], 600);
    assert_eq!(d["interval"], 5);
    let device_code = d["deviceCode"].as_str().unwrap();
    assert_eq!(device_code.len(), 43);
    let dev = f.app.store.dir_list(device::DEVICE_KIND).await.unwrap();
    assert_eq!(dev.len(), 1);
    assert_eq!(dev[0].0, crate::portal::session::key_of(device_code));
    assert!(!dev[0].1.value.contains(device_code));

    let (pkce_id, pkce_secret) = f.pkce_client().await;
    let body = |id: &str, secret: &str, start: &str| json!({"clientId": id, "clientSecret": secret, "startUrl": start});
    let cases = [
        (
            body(&id, "wrong", START_URL),
            "InvalidClientException",
            "invalid_client",
            "wrong client secret",
        ),
        (
            body("nobody", &secret, START_URL),
            "InvalidClientException",
            "invalid_client",
            "unknown client id",
        ),
        (
            body(&pkce_id, &pkce_secret, START_URL),
            "UnauthorizedClientException",
            "unauthorized_client",
            "did not register urn:ietf:params:oauth:grant-type:device_code",
        ),
        (
            body(&id, &secret, "https://other.awsapps.com/start"),
            "InvalidRequestException",
            "invalid_request",
            "is not this rolegate's",
        ),
        (
            json!({"clientId": id, "clientSecret": secret}),
            "InvalidRequestException",
            "invalid_request",
            "startUrl is required",
        ),
    ];
    for (b, error_type, oauth, _) in &cases {
        let a = f.call("/device_authorization", b.clone()).await;
        assert_error(&a, error_type, oauth);
    }
    // The secret expires after client_secret_days (90).
    f.advance(90 * 86400);
    let a = f
        .call("/device_authorization", body(&id, &secret, START_URL))
        .await;
    assert_error(&a, "InvalidClientException", "invalid_client");
    assert_eq!(f.records(device::DEVICE_KIND).await, 1);
    let ev = f.audit(super::oidc::DEVICE_ACTION).await;
    assert_eq!(ev.iter().filter(|e| e.decision == "allow").count(), 1);
    for (_, _, _, reason) in &cases {
        assert!(
            ev.iter()
                .any(|e| e.reason.as_deref().unwrap_or("").contains(reason)),
            "{reason}"
        );
    }
    assert!(ev.iter().any(|e| e
        .reason
        .as_deref()
        .unwrap_or("")
        .contains("client secret expired")));
    // The clean-up removes both expired clients, the device code and its user code.
    assert_eq!(f.purge().await, 4);
    assert_eq!(f.records(client::CLIENT_KIND).await, 0);
}

#[tokio::test]
async fn the_device_grant_is_pending_slows_down_and_yields_tokens_once_after_approval() {
    let f = fixture().await;
    let (id, secret) = f.device_client().await;
    let (other_id, other_secret) = f.device_client().await;
    let d = f.start(&id, &secret).await;
    let device_code = d["deviceCode"].as_str().unwrap();
    let user_code = d["userCode"].as_str().unwrap();

    let a = f.poll(&id, &secret, device_code).await;
    assert_error(&a, "AuthorizationPendingException", "authorization_pending");
    // Sooner than the interval (5 s): slow down, and the interval becomes 10 s.
    f.advance(4);
    let a = f.poll(&id, &secret, device_code).await;
    assert_error(&a, "SlowDownException", "slow_down");
    f.advance(9);
    let a = f.poll(&id, &secret, device_code).await;
    assert_error(&a, "SlowDownException", "slow_down");
    f.advance(15);
    let a = f.poll(&id, &secret, device_code).await;
    assert_error(&a, "AuthorizationPendingException", "authorization_pending");
    // Another client's device code, a wrong secret, a missing member, an unknown grant.
    let a = f.poll(&other_id, &other_secret, device_code).await;
    assert_error(&a, "InvalidGrantException", "invalid_grant");
    let a = f.poll(&id, "wrong", device_code).await;
    assert_error(&a, "InvalidClientException", "invalid_client");
    let a = f
        .call(
            "/token",
            json!({"clientId": id, "clientSecret": secret, "grantType": client::DEVICE_GRANT}),
        )
        .await;
    assert_error(&a, "InvalidRequestException", "invalid_request");
    let a = f
        .call(
            "/token",
            json!({"clientId": id, "clientSecret": secret, "grantType": "password"}),
        )
        .await;
    assert_error(
        &a,
        "UnsupportedGrantTypeException",
        "unsupported_grant_type",
    );
    let a = f
        .call(
            "/token",
            json!({"clientId": id, "clientSecret": secret, "grantType": "authorization_code",
                   "code": "x", "redirectUri": "http://127.0.0.1/cb", "codeVerifier": "y"}),
        )
        .await;
    assert_error(&a, "UnauthorizedClientException", "unauthorized_client");

    f.decide(user_code, true).await;
    f.advance(15);
    let a = f.poll(&id, &secret, device_code).await;
    assert_eq!(a.status, StatusCode::OK, "{}", a.body);
    assert_eq!(a.body["tokenType"], "Bearer");
    assert_eq!(a.body["expiresIn"], 3600);
    let access = a.body["accessToken"].as_str().unwrap();
    assert!(a.body["refreshToken"].is_string());
    let b = token::bearer(&f.app, access).await.unwrap();
    assert_eq!(b.signin.identity.subject, "ana");
    assert_eq!(b.signin.client_id, id);
    assert_eq!(b.signin.start_url, START_URL);
    assert_eq!(b.signin.scopes, ["sso:account:access"]);
    // Tokens once: the device code is gone (its user code stays until it expires).
    f.advance(15);
    let a = f.poll(&id, &secret, device_code).await;
    assert_error(&a, "InvalidGrantException", "invalid_grant");
    assert_eq!(f.records(device::DEVICE_KIND).await, 0);
    let code = device::normalize_user_code(user_code).unwrap();
    assert!(matches!(
        device::find_pending(&f.app, &code).await.unwrap(),
        Err(device::CodeProblem::Decided("used"))
    ));

    let ev = f.audit(super::oidc::TOKEN_ACTION).await;
    assert!(
        ev.iter()
            .all(|e| e.error_code.as_deref() != Some("AuthorizationPendingException")),
        "pending polls are not audited"
    );
    let allowed: Vec<_> = ev.iter().filter(|e| e.decision == "allow").collect();
    assert_eq!(allowed.len(), 1);
    assert_eq!(allowed[0].principal.as_deref(), Some("local/ana"));
    let reasons = f.reasons(super::oidc::TOKEN_ACTION).await;
    for needle in [
        "interval now 10 s",
        "interval now 15 s",
        &format!("device code was issued to client {id}"),
        "wrong client secret",
        "deviceCode is required",
        "unknown grant type \"password\"",
        "did not register authorization_code",
        "unknown or already used device code",
    ] {
        assert_any_contains(&reasons, needle);
    }
}

#[tokio::test]
async fn a_denied_device_code_is_refused_and_an_expired_one_runs_out() {
    let f = fixture().await;
    let (id, secret) = f.device_client().await;
    let denied = f.start(&id, &secret).await;
    let expiring = f.start(&id, &secret).await;
    f.decide(denied["userCode"].as_str().unwrap(), false).await;
    let a = f
        .poll(&id, &secret, denied["deviceCode"].as_str().unwrap())
        .await;
    assert_error(&a, "AccessDeniedException", "access_denied");
    // Approved, but collected too late.
    f.decide(expiring["userCode"].as_str().unwrap(), true).await;
    f.advance(600);
    let a = f
        .poll(&id, &secret, expiring["deviceCode"].as_str().unwrap())
        .await;
    assert_error(&a, "ExpiredTokenException", "expired_token");
    assert_eq!(f.records(token::SIGNIN_KIND).await, 0);
    let reasons = f.reasons(super::oidc::TOKEN_ACTION).await;
    assert!(reasons
        .iter()
        .any(|r| r == "local/ana denied the device code"));
    assert_any_contains(&reasons, "device code expired 0 s ago");
    // The clean-up removes both codes and their user codes.
    assert_eq!(f.purge().await, 4);
}

async fn device_tokens(f: &Fixture, id: &str, secret: &str) -> Value {
    let d = f.start(id, secret).await;
    f.decide(d["userCode"].as_str().unwrap(), true).await;
    let a = f.poll(id, secret, d["deviceCode"].as_str().unwrap()).await;
    assert_eq!(a.status, StatusCode::OK, "{}", a.body);
    a.body
}

#[tokio::test]
async fn refresh_tokens_rotate_and_are_bound_to_their_client() {
    let f = fixture().await;
    let (id, secret) = f.device_client().await;
    let (other_id, other_secret) = f.device_client().await;
    let t = device_tokens(&f, &id, &secret).await;
    let refresh = |id: &str, secret: &str, rt: &str| {
        json!({"clientId": id, "clientSecret": secret, "grantType": "refresh_token",
               "refreshToken": rt})
    };
    let rt = t["refreshToken"].as_str().unwrap();
    let a = f
        .call("/token", refresh(&other_id, &other_secret, rt))
        .await;
    assert_error(&a, "InvalidGrantException", "invalid_grant");
    let a = f.call("/token", refresh(&id, &secret, rt)).await;
    assert_eq!(a.status, StatusCode::OK, "{}", a.body);
    let second = a.body["accessToken"].as_str().unwrap().to_string();
    assert_ne!(second, t["accessToken"].as_str().unwrap());
    token::bearer(&f.app, &second).await.unwrap();
    // Used twice: refused, and the whole sign-in ends.
    let a = f.call("/token", refresh(&id, &secret, rt)).await;
    assert_error(&a, "InvalidGrantException", "invalid_grant");
    assert!(token::bearer(&f.app, &second).await.is_err());
    let a = f
        .call(
            "/token",
            json!({"clientId": id, "clientSecret": secret, "grantType": "refresh_token"}),
        )
        .await;
    assert_error(&a, "InvalidRequestException", "invalid_request");

    // A client that did not register refresh_token may not use it.
    let (dev_only, dev_secret) = f
        .register(json!({"clientName": "x", "clientType": "public",
                         "grantTypes": [client::DEVICE_GRANT]}))
        .await;
    let t = device_tokens(&f, &dev_only, &dev_secret).await;
    let a = f
        .call(
            "/token",
            refresh(&dev_only, &dev_secret, t["refreshToken"].as_str().unwrap()),
        )
        .await;
    assert_error(&a, "UnauthorizedClientException", "unauthorized_client");
    let reasons = f.reasons(super::oidc::TOKEN_ACTION).await;
    for needle in [
        format!("refresh token was issued to client {id}, not {other_id}"),
        "refresh token reused".to_string(),
        "did not register refresh_token".to_string(),
    ] {
        assert_any_contains(&reasons, &needle);
    }
}

const VERIFIER: &str = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk";
const REDIRECT: &str = "http://127.0.0.1:54321/oauth/callback";

#[tokio::test]
async fn an_authorization_code_needs_its_client_redirect_uri_and_verifier_and_works_once() {
    let f = fixture().await;
    let (id, secret) = f.pkce_client().await;
    let (other_id, other_secret) = f.pkce_client().await;
    let issue = || {
        let (app, id) = (f.app.clone(), id.clone());
        async move {
            code::issue(
                &app,
                &id,
                REDIRECT,
                &code::s256(VERIFIER),
                crate::sso::testing::in_directory(&app, ana()).await,
                vec!["sso:account:access".into()],
            )
            .await
            .unwrap()
        }
    };
    let exchange = |id: &str, secret: &str, c: &str, redirect: &str, verifier: &str| {
        json!({"clientId": id, "clientSecret": secret, "grantType": "authorization_code",
               "code": c, "redirectUri": redirect, "codeVerifier": verifier})
    };
    let c = issue().await;
    let a = f
        .call("/token", exchange(&id, &secret, &c, REDIRECT, VERIFIER))
        .await;
    assert_eq!(a.status, StatusCode::OK, "{}", a.body);
    let b = token::bearer(&f.app, a.body["accessToken"].as_str().unwrap())
        .await
        .unwrap();
    assert_eq!(b.signin.identity.subject, "ana");
    assert_eq!(b.signin.start_url, START_URL);
    // Once only.
    let a = f
        .call("/token", exchange(&id, &secret, &c, REDIRECT, VERIFIER))
        .await;
    assert_error(&a, "InvalidGrantException", "invalid_grant");

    let wrong_verifier = "x".repeat(43);
    let cases = [
        (
            other_id.as_str(),
            other_secret.as_str(),
            REDIRECT,
            VERIFIER,
            "was issued to client",
        ),
        (
            id.as_str(),
            secret.as_str(),
            "http://127.0.0.1:54322/oauth/callback",
            VERIFIER,
            "is not the",
        ),
        (
            id.as_str(),
            secret.as_str(),
            REDIRECT,
            wrong_verifier.as_str(),
            "does not match",
        ),
        (id.as_str(), secret.as_str(), REDIRECT, "short", "43 to 128"),
    ];
    for (cid, csecret, redirect, verifier, _) in cases {
        let c = issue().await;
        let a = f
            .call("/token", exchange(cid, csecret, &c, redirect, verifier))
            .await;
        assert_error(&a, "InvalidGrantException", "invalid_grant");
        // The failed attempt spent the code: the right exchange fails now too.
        let a = f
            .call("/token", exchange(&id, &secret, &c, REDIRECT, VERIFIER))
            .await;
        assert_error(&a, "InvalidGrantException", "invalid_grant");
    }
    let c = issue().await;
    f.advance(code::CODE_SECONDS);
    let a = f
        .call("/token", exchange(&id, &secret, &c, REDIRECT, VERIFIER))
        .await;
    assert_error(&a, "InvalidGrantException", "invalid_grant");
    let a = f
        .call(
            "/token",
            json!({"clientId": id, "clientSecret": secret, "grantType": "authorization_code",
                   "code": "x", "redirectUri": REDIRECT}),
        )
        .await;
    assert_error(&a, "InvalidRequestException", "invalid_request");
    let reasons = f.reasons(super::oidc::TOKEN_ACTION).await;
    for (_, _, _, _, needle) in cases {
        assert_any_contains(&reasons, needle);
    }
    assert_any_contains(&reasons, "authorization code expired");
    assert_any_contains(&reasons, "codeVerifier is required");
    assert_eq!(f.records(token::SIGNIN_KIND).await, 1);
}
