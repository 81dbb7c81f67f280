//! What rolegate's STS refuses, case by case (security.md: "OIDC / JWT", "STS parameters", "SigV4"),
//! against a real OpenID provider whose own keys sign every forged token. Each refusal is checked for
//! its HTTP status and AWS error code, for carrying no credentials, and for one audit event recording a
//! deny with the precise reason. Requests SDKs would refuse to send are made with a raw HTTP client;
//! signed ones are signed with `aws-sigv4`, the SDKs' own signer.

mod support;

use std::time::{Duration, Instant, SystemTime};

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use chrono::{Timelike, Utc};
use reqwest::StatusCode;
use serde_json::{json, Value};
use support::app::{
    allow, aws_trust, credentials, form_body, id_token_expiring_in, role_arn, web_trust, Creds,
    Idp, RoleSpec, TestApp, ACCOUNT,
};
use support::idp::{CLIENT_ID, EC_KID, OTHER_CLIENT_ID, RSA_KID};
use support::signing::{presign_get, sign_post, SignSpec, TokenPlacement};

const BAD_REQUEST: StatusCode = StatusCode::BAD_REQUEST;
const FORBIDDEN: StatusCode = StatusCode::FORBIDDEN;
const GCI_BODY: &str = "Action=GetCallerIdentity&Version=2011-06-15";
const TARGET: &str = "target";

/// A provider and rolegate trusting it for role [`TARGET`] (any subject of [`CLIENT_ID`]).
async fn federation() -> (Idp, TestApp) {
    let idp = Idp::start().await;
    let app = TestApp::builder()
        .issuer(idp.idp.issuer())
        .role(RoleSpec::new(TARGET, web_trust(&idp.prefix(), &[], "")))
        .start()
        .await;
    (idp, app)
}

fn now() -> i64 {
    Utc::now().timestamp()
}

/// Claims of a token rolegate would accept.
fn good_claims(issuer: &str) -> Value {
    json!({
        "iss": issuer,
        "sub": "mallory",
        "aud": CLIENT_ID,
        "iat": now(),
        "exp": now() + 600,
    })
}

fn rs256() -> Value {
    json!({ "alg": "RS256", "kid": RSA_KID, "typ": "JWT" })
}

fn b64(v: &Value) -> String {
    URL_SAFE_NO_PAD.encode(v.to_string())
}

fn without(mut claims: Value, name: &str) -> Value {
    claims
        .as_object_mut()
        .unwrap_or_else(|| panic!("claims are not an object"))
        .remove(name);
    claims
}

fn with(mut claims: Value, name: &str, value: Value) -> Value {
    claims[name] = value;
    claims
}

async fn assume(app: &TestApp, token: &str) -> (StatusCode, String) {
    app.assume_web(&role_arn(TARGET), "mallory", token, &[])
        .await
}

async fn assume_with(app: &TestApp, token: &str, extra: &[(&str, &str)]) -> (StatusCode, String) {
    app.assume_web(&role_arn(TARGET), "mallory", token, extra)
        .await
}

fn assert_granted(answer: &(StatusCode, String), what: &str) {
    assert_eq!(answer.0, StatusCode::OK, "{what}: {}", answer.1);
    assert!(
        credentials(&answer.1).is_some(),
        "{what}: no credentials in {}",
        answer.1
    );
}

/// Every allow event in the audit log, to show refusals left nothing behind.
async fn allowed_count(app: &TestApp) -> usize {
    app.audit_events()
        .await
        .iter()
        .filter(|e| e.decision == "allow")
        .count()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn forged_headers_and_algorithms_are_refused() {
    let (idp, app) = federation().await;
    let issuer = idp.idp.issuer().to_owned();
    let claims = good_claims(&issuer);

    // Controls: the same forging path with an honest header is accepted, RS256 and ES256.
    let honest = idp.idp.sign(rs256(), claims.clone(), RSA_KID).await;
    assert_granted(&assume(&app, &honest).await, "honest RS256 token");
    let honest_ec = idp
        .idp
        .sign(
            json!({"alg": "ES256", "kid": EC_KID}),
            claims.clone(),
            EC_KID,
        )
        .await;
    assert_granted(&assume(&app, &honest_ec).await, "honest ES256 token");

    // alg none in any casing, without a signature and with a real one.
    for alg in ["none", "None", "NONE", "nOnE"] {
        let header = json!({ "alg": alg, "kid": RSA_KID, "typ": "JWT" });
        let unsigned = format!("{}.{}.", b64(&header), b64(&claims));
        let reason = format!("algorithm '{alg}' is not allowed");
        let answer = assume(&app, &unsigned).await;
        app.assert_denied(&answer, BAD_REQUEST, "InvalidIdentityToken", &[&reason])
            .await;
        let signed = idp.idp.sign(header, claims.clone(), RSA_KID).await;
        let answer = assume(&app, &signed).await;
        app.assert_denied(&answer, BAD_REQUEST, "InvalidIdentityToken", &[&reason])
            .await;
    }
    let no_alg = format!("{}.{}.", b64(&json!({"kid": RSA_KID})), b64(&claims));
    let answer = assume(&app, &no_alg).await;
    app.assert_denied(
        &answer,
        BAD_REQUEST,
        "InvalidIdentityToken",
        &["alg is missing"],
    )
    .await;

    // RS256 → HS* confusion: an HMAC keyed with the provider's public key (PEM), for each key.
    for (alg, kid) in [("HS256", RSA_KID), ("HS384", RSA_KID), ("HS256", EC_KID)] {
        let token = idp
            .idp
            .sign_with(json!({
                "header": { "alg": alg, "kid": kid, "typ": "JWT" },
                "payload": claims,
                "raw_alg": alg,
                "kid": kid,
            }))
            .await;
        let answer = assume(&app, &token).await;
        let reason = format!("algorithm '{alg}' is not allowed");
        app.assert_denied(&answer, BAD_REQUEST, "InvalidIdentityToken", &[&reason])
            .await;
    }

    // Asymmetric algorithms outside the provider's allow-list, and an algorithm the key cannot do.
    for alg in ["RS512", "PS256"] {
        let token = idp
            .idp
            .sign(json!({"alg": alg, "kid": RSA_KID}), claims.clone(), RSA_KID)
            .await;
        let answer = assume(&app, &token).await;
        let reason = format!("algorithm '{alg}' is not allowed");
        app.assert_denied(&answer, BAD_REQUEST, "InvalidIdentityToken", &[&reason])
            .await;
    }
    let mismatch = idp
        .idp
        .sign(
            json!({"alg": "ES256", "kid": RSA_KID}),
            claims.clone(),
            RSA_KID,
        )
        .await;
    let answer = assume(&app, &mismatch).await;
    app.assert_denied(
        &answer,
        BAD_REQUEST,
        "InvalidIdentityToken",
        &["key 'rsa-1' cannot verify ES256"],
    )
    .await;

    // Keys named by the token itself are never used.
    let public_jwk = json!({"kty": "oct", "k": "c2VjcmV0"});
    for (name, value) in [
        ("jku", json!("http://127.0.0.1:9/jwks.json")),
        ("x5u", json!("http://127.0.0.1:9/cert.pem")),
        ("jwk", public_jwk),
    ] {
        let mut header = rs256();
        header[name] = value;
        let token = idp.idp.sign(header, claims.clone(), RSA_KID).await;
        let answer = assume(&app, &token).await;
        let reason = format!("header carries '{name}'");
        app.assert_denied(&answer, BAD_REQUEST, "InvalidIdentityToken", &[&reason])
            .await;
    }

    // crit, nested tokens, JWE.
    let mut crit = rs256();
    crit["crit"] = json!(["x"]);
    crit["x"] = json!(1);
    let token = idp.idp.sign(crit, claims.clone(), RSA_KID).await;
    let answer = assume(&app, &token).await;
    app.assert_denied(&answer, BAD_REQUEST, "InvalidIdentityToken", &["crit"])
        .await;
    let mut nested = rs256();
    nested["cty"] = json!("JWT");
    let token = idp.idp.sign(nested, claims.clone(), RSA_KID).await;
    let answer = assume(&app, &token).await;
    app.assert_denied(
        &answer,
        BAD_REQUEST,
        "InvalidIdentityToken",
        &["nested tokens are not accepted"],
    )
    .await;
    let jwe = format!(
        "{}.AAAA.AAAA.AAAA.AAAA",
        b64(&json!({"alg": "RSA-OAEP", "enc": "A256GCM"}))
    );
    let answer = assume(&app, &jwe).await;
    app.assert_denied(
        &answer,
        BAD_REQUEST,
        "InvalidIdentityToken",
        &["encrypted tokens (JWE) are not accepted"],
    )
    .await;

    // ECDSA with r = s = 0 ("psychic signatures"), and signatures that are merely wrong.
    let parts: Vec<&str> = honest_ec.split('.').collect();
    let zero = format!(
        "{}.{}.{}",
        parts[0],
        parts[1],
        URL_SAFE_NO_PAD.encode([0u8; 64])
    );
    let answer = assume(&app, &zero).await;
    app.assert_denied(
        &answer,
        BAD_REQUEST,
        "InvalidIdentityToken",
        &["signature does not verify"],
    )
    .await;
    let parts: Vec<&str> = honest.split('.').collect();
    let other_payload = b64(&with(claims.clone(), "sub", json!("admin")));
    let swapped = format!("{}.{}.{}", parts[0], other_payload, parts[2]);
    let answer = assume(&app, &swapped).await;
    app.assert_denied(
        &answer,
        BAD_REQUEST,
        "InvalidIdentityToken",
        &["signature does not verify"],
    )
    .await;
    let ec_signed_as_rsa = idp
        .idp
        .sign_with(
            json!({"header": rs256(), "payload": claims, "kid": EC_KID, "sign_alg": "ES256"}),
        )
        .await;
    let answer = assume(&app, &ec_signed_as_rsa).await;
    app.assert_denied(
        &answer,
        BAD_REQUEST,
        "InvalidIdentityToken",
        &["signature does not verify"],
    )
    .await;

    // kid values that look like paths or SQL are just unknown kids.
    for kid in [
        "../../../../etc/passwd",
        "/dev/null",
        "rsa-1' OR '1'='1",
        "rsa-1\u{0}",
        "rsa-1 ",
    ] {
        let header = json!({"alg": "RS256", "kid": kid});
        let token = idp.idp.sign(header, claims.clone(), RSA_KID).await;
        let answer = assume(&app, &token).await;
        app.assert_denied(
            &answer,
            BAD_REQUEST,
            "InvalidIdentityToken",
            &["no key with kid"],
        )
        .await;
    }
    for kid in [json!(""), json!(7), json!("k".repeat(300))] {
        let header = json!({"alg": "RS256", "kid": kid});
        let token = idp.idp.sign(header, claims.clone(), RSA_KID).await;
        let answer = assume(&app, &token).await;
        app.assert_denied(
            &answer,
            BAD_REQUEST,
            "InvalidIdentityToken",
            &["kid is not a short non-empty string"],
        )
        .await;
    }

    assert_eq!(
        allowed_count(&app).await,
        2,
        "only the controls were granted"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn claims_are_checked() {
    let (idp, app) = federation().await;
    let issuer = idp.idp.issuer().to_owned();
    let good = good_claims(&issuer);
    let mut granted = 0;

    let honest = idp.idp.sign(rs256(), good.clone(), RSA_KID).await;
    assert_granted(&assume(&app, &honest).await, "honest token");
    granted += 1;

    // Expired: a real token from the provider, and forged ones around the 60 s leeway.
    let expired = id_token_expiring_in(&idp.idp, "mallory", -600).await;
    let answer = assume(&app, &expired).await;
    app.assert_denied(
        &answer,
        BAD_REQUEST,
        "ExpiredTokenException",
        &["token expired at"],
    )
    .await;
    let beyond_leeway = with(good.clone(), "exp", json!(now() - 90));
    let token = idp.idp.sign(rs256(), beyond_leeway, RSA_KID).await;
    let answer = assume(&app, &token).await;
    app.assert_denied(
        &answer,
        BAD_REQUEST,
        "ExpiredTokenException",
        &["token expired at"],
    )
    .await;
    let within_leeway = with(good.clone(), "exp", json!(now() - 20));
    let token = idp.idp.sign(rs256(), within_leeway, RSA_KID).await;
    assert_granted(
        &assume(&app, &token).await,
        "expired 20 s ago (leeway 60 s)",
    );
    granted += 1;

    let cases: Vec<(&str, Value, &str)> = vec![
        (
            "string exp",
            with(good.clone(), "exp", json!((now() + 600).to_string())),
            "exp",
        ),
        (
            "string nbf",
            with(good.clone(), "nbf", json!((now() - 10).to_string())),
            "nbf must be a number",
        ),
        (
            "string iat",
            with(good.clone(), "iat", json!(now().to_string())),
            "iat must be a number",
        ),
        (
            "future nbf",
            with(good.clone(), "nbf", json!(now() + 600)),
            "token is not valid before",
        ),
        (
            "future iat",
            with(good.clone(), "iat", json!(now() + 600)),
            "token is issued in the future",
        ),
        (
            "missing sub",
            without(good.clone(), "sub"),
            "required claim sub is missing",
        ),
        (
            "missing exp",
            without(good.clone(), "exp"),
            "required claim exp is missing",
        ),
        (
            "missing aud",
            without(good.clone(), "aud"),
            "required claim aud is missing",
        ),
        (
            "missing iss",
            without(good.clone(), "iss"),
            "iss is missing",
        ),
        (
            "missing iat",
            without(good.clone(), "iat"),
            "iat is missing",
        ),
        (
            "empty sub",
            with(good.clone(), "sub", json!("")),
            "sub must be a non-empty string",
        ),
        (
            "wrong aud",
            with(good.clone(), "aud", json!("someone-else")),
            "aud is not one of the accepted audiences",
        ),
        (
            "several aud, no azp",
            with(good.clone(), "aud", json!([CLIENT_ID, OTHER_CLIENT_ID])),
            "several audiences and no azp",
        ),
        (
            "several aud, azp of the other client",
            with(
                with(good.clone(), "aud", json!([CLIENT_ID, OTHER_CLIENT_ID])),
                "azp",
                json!(OTHER_CLIENT_ID),
            ),
            "several audiences and no azp",
        ),
        (
            "foreign issuer",
            with(good.clone(), "iss", json!("https://evil.example")),
            "no OpenID Connect provider is configured for issuer https://evil.example",
        ),
        (
            "issuer with a trailing slash",
            with(good.clone(), "iss", json!(format!("{issuer}/"))),
            "no OpenID Connect provider is configured for issuer",
        ),
    ];
    for (what, claims, reason) in cases {
        let token = idp.idp.sign(rs256(), claims, RSA_KID).await;
        let answer = assume(&app, &token).await;
        assert_eq!(answer.0, BAD_REQUEST, "{what}: {}", answer.1);
        app.assert_denied(&answer, BAD_REQUEST, "InvalidIdentityToken", &[reason])
            .await;
    }

    // Session tags and source identity in the token are checked like request parameters.
    let tags_claim = "https://aws.amazon.com/tags";
    let many: serde_json::Map<String, Value> =
        (1..=51).map(|i| (format!("k{i}"), json!(["v"]))).collect();
    for (what, claims, reason) in [
        (
            "51 principal tags",
            json!({ tags_claim: { "principal_tags": many } }),
            "Member must have length less than or equal to 50",
        ),
        (
            "a reserved tag key",
            json!({ tags_claim: { "principal_tags": { "aws:team": ["x"] } } }),
            "uses the reserved prefix aws:",
        ),
        (
            "two values for one tag",
            json!({ tags_claim: { "principal_tags": { "team": ["a", "b"] } } }),
            "exactly one string value",
        ),
        (
            "a transitive key that is not a tag",
            json!({ tags_claim: { "principal_tags": { "team": ["a"] }, "transitive_tag_keys": ["org"] } }),
            "transitive tag key org is not a principal tag",
        ),
        (
            "a reserved source identity",
            json!({ "https://aws.amazon.com/source_identity": "aws:admin" }),
            "at 'sourceIdentity'",
        ),
    ] {
        let token = idp.idp.id_token("mallory", claims).await;
        let answer = assume(&app, &token).await;
        assert_eq!(answer.0, BAD_REQUEST, "{what}: {}", answer.1);
        app.assert_denied(
            &answer,
            BAD_REQUEST,
            "InvalidIdentityToken",
            &["https://aws.amazon.com/", reason],
        )
        .await;
    }

    // A real token of the provider's other client has a foreign audience.
    let foreign = idp
        .idp
        .id_token_for(OTHER_CLIENT_ID, "RS256", "mallory", json!({}))
        .await;
    let answer = assume(&app, &foreign).await;
    app.assert_denied(
        &answer,
        BAD_REQUEST,
        "InvalidIdentityToken",
        &["aud is not one of the accepted audiences"],
    )
    .await;

    // Several audiences are fine when azp names our client.
    let with_azp = with(
        with(good.clone(), "aud", json!([OTHER_CLIENT_ID, CLIENT_ID])),
        "azp",
        json!(CLIENT_ID),
    );
    let token = idp.idp.sign(rs256(), with_azp, RSA_KID).await;
    let answer = assume(&app, &token).await;
    assert_granted(&answer, "several audiences with our azp");
    granted += 1;
    assert_eq!(
        support::app::xml_text(&answer.1, "Audience").as_deref(),
        Some(CLIENT_ID)
    );

    assert_eq!(allowed_count(&app).await, granted);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_flood_of_unknown_kids_fetches_the_jwks_once() {
    let (idp, app) = federation().await;
    let claims = good_claims(idp.idp.issuer());
    assert_eq!(idp.idp.stats().await, (0, 0), "nothing fetched before use");

    let mut tokens = Vec::new();
    for i in 0..40 {
        let header = json!({"alg": "RS256", "kid": format!("unknown-{i}")});
        tokens.push(idp.idp.sign(header, claims.clone(), RSA_KID).await);
    }
    let url = format!("{}/", app.url());
    let mut requests = Vec::new();
    for token in tokens.clone() {
        let http = app.http().clone();
        let url = url.clone();
        let body = form_body(&[
            ("Action", "AssumeRoleWithWebIdentity"),
            ("Version", "2011-06-15"),
            ("RoleArn", &role_arn(TARGET)),
            ("RoleSessionName", "flood"),
            ("WebIdentityToken", &token),
        ]);
        requests.push(tokio::spawn(async move {
            let response = http
                .post(url)
                .header("content-type", "application/x-www-form-urlencoded")
                .body(body)
                .send()
                .await
                .unwrap_or_else(|e| panic!("rolegate unreachable: {e}"));
            let status = response.status();
            (status, response.text().await.unwrap_or_default())
        }));
    }
    for request in requests {
        let answer = request
            .await
            .unwrap_or_else(|e| panic!("concurrent request: {e}"));
        app.assert_denied(
            &answer,
            BAD_REQUEST,
            "InvalidIdentityToken",
            &["no key with kid 'unknown-"],
        )
        .await;
    }
    assert_eq!(
        idp.idp.stats().await,
        (1, 1),
        "40 concurrent unknown kids: one discovery, one JWKS fetch"
    );

    // Unknown kids right after a fetch fetch nothing more; known kids are served from the cache.
    for token in tokens.iter().take(10) {
        let answer = assume(&app, token).await;
        assert_eq!(answer.0, BAD_REQUEST, "{}", answer.1);
    }
    let honest = idp.idp.id_token("mallory", json!({})).await;
    assert_granted(&assume(&app, &honest).await, "known kid");
    assert_eq!(idp.idp.stats().await, (1, 1));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn key_rotation_fetches_the_new_key_once_and_a_missing_kid_is_ambiguous() {
    let Idp { idp, dir } = Idp::start().await;
    let prefix = support::app::prefix_of(idp.issuer());
    let app = TestApp::builder()
        .issuer(idp.issuer())
        .role(RoleSpec::new(TARGET, web_trust(&prefix, &[], "")))
        .start()
        .await;
    let issuer = idp.issuer().to_owned();
    // The new key is generated now, before the first fetch, so that only the restart (which
    // re-reads the keys file) falls inside the refresh interval the test relies on below.
    idp.add_key("rsa-2");

    let old = idp.id_token("mallory", json!({})).await;
    assert_granted(&assume(&app, &old).await, "token of the first key");
    let fetched_at = Instant::now();
    assert_eq!(idp.stats().await.0, 1);
    // With one RSA key, a token without kid is unambiguous.
    let no_kid = idp
        .sign(json!({"alg": "RS256"}), good_claims(&issuer), RSA_KID)
        .await;
    assert_granted(&assume(&app, &no_kid).await, "no kid, one RSA key");

    let idp = idp.restart().await;
    let new = idp.id_token("mallory", json!({})).await;
    let header: Value = serde_json::from_slice(
        &URL_SAFE_NO_PAD
            .decode(new.split('.').next().unwrap())
            .unwrap(),
    )
    .unwrap();
    assert_eq!(
        header["kid"],
        json!("rsa-2"),
        "the provider signs with the new key"
    );

    // Within the refresh interval an unknown kid causes no fetch.
    assert!(
        fetched_at.elapsed() < Duration::from_secs(9),
        "the provider's restart took {:?}; the next check must run within the 10 s refresh interval",
        fetched_at.elapsed()
    );
    let answer = assume(&app, &new).await;
    app.assert_denied(
        &answer,
        BAD_REQUEST,
        "InvalidIdentityToken",
        &["no key with kid 'rsa-2'"],
    )
    .await;
    assert_eq!(idp.stats().await, (0, 0));

    let wait = Duration::from_millis(10_300).saturating_sub(fetched_at.elapsed());
    tokio::time::sleep(wait).await;

    assert_granted(&assume(&app, &new).await, "token of the new key");
    assert_eq!(idp.stats().await.0, 1, "one JWKS fetch for the new kid");
    assert_granted(&assume(&app, &new).await, "new key, cached");
    assert_granted(&assume(&app, &old).await, "old key, still published");
    assert_eq!(idp.stats().await.0, 1);

    // Two RSA keys now: a token without kid could be either, and is refused.
    let no_kid = idp
        .sign(json!({"alg": "RS256"}), good_claims(&issuer), "rsa-2")
        .await;
    let answer = assume(&app, &no_kid).await;
    app.assert_denied(
        &answer,
        BAD_REQUEST,
        "InvalidIdentityToken",
        &["token has no kid and the provider's JWKS has several keys"],
    )
    .await;
    drop(idp);
    drop(dir);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stopped_provider_keeps_cached_keys_and_unknown_kids_are_communication_errors() {
    let Idp { idp, dir } = Idp::start().await;
    let prefix = support::app::prefix_of(idp.issuer());
    let app = TestApp::builder()
        .issuer(idp.issuer())
        .role(RoleSpec::new(TARGET, web_trust(&prefix, &[], "")))
        .start()
        .await;
    let rsa = idp.id_token("mallory", json!({})).await;
    let ec = idp
        .id_token_for(CLIENT_ID, "ES256", "mallory", json!({}))
        .await;
    let unknown = idp
        .sign(
            json!({"alg": "RS256", "kid": "rsa-9"}),
            good_claims(idp.issuer()),
            RSA_KID,
        )
        .await;
    assert_granted(&assume(&app, &rsa).await, "provider up");
    let fetched_at = Instant::now();
    idp.stop().await;

    assert_granted(&assume(&app, &rsa).await, "cached RSA key, provider down");
    assert_granted(&assume(&app, &ec).await, "cached EC key, provider down");

    let wait = Duration::from_millis(10_300).saturating_sub(fetched_at.elapsed());
    tokio::time::sleep(wait).await;
    let answer = assume(&app, &unknown).await;
    app.assert_denied(&answer, BAD_REQUEST, "IDPCommunicationError", &["/jwks"])
        .await;
    // The last good key set survives the failed fetch.
    assert_granted(&assume(&app, &rsa).await, "cached key after a failed fetch");
    drop(dir);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_provider_never_reached_is_a_communication_error() {
    let idp = Idp::start().await;
    let closed = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        listener.local_addr().unwrap().port()
    };
    let dead_issuer = format!("http://127.0.0.1:{closed}");
    let app = TestApp::builder()
        .issuer(&dead_issuer)
        .role(RoleSpec::new(
            TARGET,
            web_trust(&support::app::prefix_of(&dead_issuer), &[], ""),
        ))
        .start()
        .await;
    let token = idp
        .idp
        .sign(rs256(), good_claims(&dead_issuer), RSA_KID)
        .await;
    let answer = assume(&app, &token).await;
    app.assert_denied(
        &answer,
        BAD_REQUEST,
        "IDPCommunicationError",
        &["/.well-known/openid-configuration"],
    )
    .await;
    // Retried at once: still a communication error (not an invalid token), and no busy retry.
    let answer = assume(&app, &token).await;
    app.assert_denied(
        &answer,
        BAD_REQUEST,
        "IDPCommunicationError",
        &["could not be fetched"],
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn token_size_limits_and_surrounding_whitespace() {
    let (idp, app) = federation().await;
    let huge = idp
        .idp
        .id_token("mallory", json!({"padding": "x".repeat(20_100)}))
        .await;
    assert!(huge.len() > 20_000);
    let answer = assume(&app, &huge).await;
    app.assert_denied(
        &answer,
        BAD_REQUEST,
        "ValidationError",
        &["webIdentityToken", "less than or equal to 20000"],
    )
    .await;

    let large = idp
        .idp
        .id_token("mallory", json!({"padding": "x".repeat(14_000)}))
        .await;
    assert!((18_000..20_000).contains(&large.len()), "{}", large.len());
    assert_granted(&assume(&app, &large).await, "a token just under the limit");

    let answer = assume(&app, "abc").await;
    app.assert_denied(
        &answer,
        BAD_REQUEST,
        "ValidationError",
        &["webIdentityToken", "greater than or equal to 4"],
    )
    .await;

    let token = idp.idp.id_token("mallory", json!({})).await;
    let padded = format!("\n\t {token} \r\n");
    assert_granted(&assume(&app, &padded).await, "surrounding whitespace");
    assert_eq!(allowed_count(&app).await, 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sts_parameters_are_validated_before_anything_is_issued() {
    let idp = Idp::start().await;
    let app = TestApp::builder()
        .issuer(idp.idp.issuer())
        .role(RoleSpec::new(TARGET, web_trust(&idp.prefix(), &[], "")))
        .start()
        .await;
    let token = idp.idp.id_token("mallory", json!({})).await;
    let arn = role_arn(TARGET);

    for (name, reason) in [
        ("a".to_owned(), "greater than or equal to 2"),
        ("a".repeat(65), "less than or equal to 64"),
        ("a/b".to_owned(), "regular expression"),
        ("a b".to_owned(), "regular expression"),
    ] {
        let answer = app.assume_web(&arn, &name, &token, &[]).await;
        app.assert_denied(
            &answer,
            BAD_REQUEST,
            "ValidationError",
            &["roleSessionName", reason],
        )
        .await;
    }
    assert_granted(
        &app.assume_web(&arn, &"a".repeat(64), &token, &[]).await,
        "64-character session name",
    );

    for (duration, reason) in [
        ("899", "greater than or equal to 900"),
        ("43201", "less than or equal to 43200"),
        ("ten", "Member must be a number"),
    ] {
        let answer = assume_with(&app, &token, &[("DurationSeconds", duration)]).await;
        app.assert_denied(
            &answer,
            BAD_REQUEST,
            "ValidationError",
            &["durationSeconds", reason],
        )
        .await;
    }
    let answer = assume_with(&app, &token, &[("DurationSeconds", "3601")]).await;
    app.assert_denied(
        &answer,
        BAD_REQUEST,
        "ValidationError",
        &["exceeds the MaxSessionDuration"],
    )
    .await;

    let statement = r#"{"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "sts:GetCallerIdentity", "Resource": "*"}]}"#;
    let too_long = format!("{statement}{}", " ".repeat(2049 - statement.len()));
    let answer = assume_with(&app, &token, &[("Policy", &too_long)]).await;
    app.assert_denied(
        &answer,
        BAD_REQUEST,
        "ValidationError",
        &["at 'policy'", "less than or equal to 2048"],
    )
    .await;
    for outside in ["\u{0100}", "\u{1F600}", "\u{0007}"] {
        let policy = statement.replace("Allow\"", &format!("Allow\", \"Sid\": \"x{outside}\""));
        let answer = assume_with(&app, &token, &[("Policy", &policy)]).await;
        app.assert_denied(
            &answer,
            BAD_REQUEST,
            "ValidationError",
            &["at 'policy'", "regular expression pattern"],
        )
        .await;
    }
    let at_limit = format!("{statement}{}", " ".repeat(2048 - statement.len()));
    assert_granted(
        &assume_with(&app, &token, &[("Policy", &at_limit)]).await,
        "a 2048-character session policy",
    );

    for (malformed, reason) in [
        (
            r#"{"Version": "2012-10-17", "Statement": ["#,
            "malformed policy document at line 1",
        ),
        (
            r#"{"Version": "2012-10-17", "Statement": [{"Effect": "Maybe", "Action": "*", "Resource": "*"}]}"#,
            r#"Effect must be "Allow" or "Deny""#,
        ),
        ("not json", "malformed policy document at line 1"),
    ] {
        let answer = assume_with(&app, &token, &[("Policy", malformed)]).await;
        app.assert_denied(&answer, BAD_REQUEST, "MalformedPolicyDocument", &[reason])
            .await;
    }

    let arns: Vec<(String, String)> = (1..=11)
        .map(|i| {
            (
                format!("PolicyArns.member.{i}.arn"),
                format!("arn:aws:iam::{ACCOUNT}:policy/p{i}"),
            )
        })
        .collect();
    let extra: Vec<(&str, &str)> = arns.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    let answer = assume_with(&app, &token, &extra).await;
    app.assert_denied(
        &answer,
        BAD_REQUEST,
        "ValidationError",
        &["at 'policyArns'", "less than or equal to 10"],
    )
    .await;

    let answer = app
        .sts(&[("Action", "AssumeRoot"), ("Version", "2011-06-15")])
        .await;
    app.assert_denied(
        &answer,
        BAD_REQUEST,
        "InvalidAction",
        &["Could not find operation AssumeRoot"],
    )
    .await;
    let answer = app
        .sts(&[
            ("Action", "assumerolewithwebidentity"),
            ("Version", "2011-06-15"),
            ("RoleArn", &arn),
            ("RoleSessionName", "mallory"),
            ("WebIdentityToken", &token),
        ])
        .await;
    app.assert_denied(
        &answer,
        BAD_REQUEST,
        "InvalidAction",
        &["Could not find operation assumerolewithwebidentity"],
    )
    .await;
    let answer = app
        .sts(&[
            ("Action", "AssumeRoleWithWebIdentity"),
            ("Version", "2011-06-16"),
            ("RoleArn", &arn),
            ("RoleSessionName", "mallory"),
            ("WebIdentityToken", &token),
        ])
        .await;
    app.assert_denied(
        &answer,
        BAD_REQUEST,
        "InvalidAction",
        &["for version 2011-06-16"],
    )
    .await;
    let answer = app.sts(&[("Version", "2011-06-15")]).await;
    app.assert_denied(
        &answer,
        BAD_REQUEST,
        "InvalidAction",
        &["no Action parameter"],
    )
    .await;

    let answer = app
        .assume_web(&role_arn("does-not-exist"), "mallory", &token, &[])
        .await;
    app.assert_denied(&answer, FORBIDDEN, "AccessDenied", &["does not exist"])
        .await;
    let answer = app
        .assume_web(
            &format!("arn:aws:iam::{ACCOUNT}:user/{TARGET}"),
            "mallory",
            &token,
            &[],
        )
        .await;
    app.assert_denied(&answer, BAD_REQUEST, "ValidationError", &["is invalid"])
        .await;
    let answer = app
        .sts(&[
            ("Action", "AssumeRoleWithWebIdentity"),
            ("Version", "2011-06-15"),
            ("RoleArn", &arn),
            ("RoleArn", &role_arn("other")),
            ("RoleSessionName", "mallory"),
            ("WebIdentityToken", &token),
        ])
        .await;
    app.assert_denied(
        &answer,
        BAD_REQUEST,
        "InvalidParameterValue",
        &["RoleArn was given more than once"],
    )
    .await;

    assert_eq!(
        allowed_count(&app).await,
        2,
        "only the controls were granted"
    );
}

/// A provider, rolegate, and credentials of two federated sessions of `web` (which may chain to
/// `chain`, whose trust policy names it and allows tagging).
struct Signed {
    idp: Idp,
    app: TestApp,
    alpha: Creds,
    beta: Creds,
}

async fn signed_setup(fixed: bool) -> Signed {
    let idp = Idp::start().await;
    let mut builder = TestApp::builder()
        .issuer(idp.idp.issuer())
        .role(
            RoleSpec::new("web", web_trust(&idp.prefix(), &[], ""))
                .policy("chain", allow(&["sts:AssumeRole", "sts:TagSession"], "*")),
        )
        .role(RoleSpec::new(
            "chain",
            aws_trust(&[&role_arn("web")], &["sts:TagSession"]),
        ));
    if fixed {
        builder = builder.fixed_clock(Utc::now().with_nanosecond(0).unwrap());
    }
    let app = builder.start().await;
    let token = idp.idp.id_token("mallory", json!({})).await;
    let alpha = app.credentials_for(&role_arn("web"), "alpha", &token).await;
    let beta = app.credentials_for(&role_arn("web"), "beta", &token).await;
    Signed {
        idp,
        app,
        alpha,
        beta,
    }
}

async fn signed_post(
    app: &TestApp,
    body: &str,
    creds: &Creds,
    spec: &SignSpec,
) -> (StatusCode, String) {
    signed_post_sending(app, body, body, creds, spec).await
}

/// Signs `signed_body` and sends `sent_body`.
async fn signed_post_sending(
    app: &TestApp,
    signed_body: &str,
    sent_body: &str,
    creds: &Creds,
    spec: &SignSpec,
) -> (StatusCode, String) {
    let headers = sign_post(&app.url(), &app.host(), signed_body, creds, spec);
    let mut with_token = headers.clone();
    if spec.token == TokenPlacement::Unsigned {
        assert!(
            headers
                .iter()
                .any(|(k, v)| k == "authorization" && !v.contains("x-amz-security-token")),
            "{headers:?}"
        );
        if !headers.iter().any(|(k, _)| k == "x-amz-security-token") {
            with_token.push((
                "x-amz-security-token".to_owned(),
                creds.session_token.clone(),
            ));
        }
    }
    let refs: Vec<(&str, &str)> = with_token
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect();
    app.post_raw(sent_body, &refs).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigv4_refusals() {
    let Signed {
        idp,
        app,
        alpha,
        beta,
    } = signed_setup(false).await;
    let now = SystemTime::now();

    let ok = signed_post(&app, GCI_BODY, &alpha, &SignSpec::at(now)).await;
    assert_eq!(ok.0, StatusCode::OK, "{}", ok.1);
    assert!(ok.1.contains("assumed-role/web/alpha"), "{}", ok.1);
    let mut granted = 3;

    for skew in [
        SystemTime::now() - Duration::from_secs(16 * 60),
        SystemTime::now() + Duration::from_secs(16 * 60),
    ] {
        let answer = signed_post(&app, GCI_BODY, &alpha, &SignSpec::at(skew)).await;
        app.assert_denied(
            &answer,
            FORBIDDEN,
            "RequestTimeTooSkewed",
            &["more than 900 s away from now"],
        )
        .await;
    }
    let fourteen = signed_post(
        &app,
        GCI_BODY,
        &alpha,
        &SignSpec::at(SystemTime::now() - Duration::from_secs(14 * 60)),
    )
    .await;
    assert_eq!(
        fourteen.0,
        StatusCode::OK,
        "14 minutes of skew: {}",
        fourteen.1
    );
    granted += 1;

    let wrong_region = SignSpec {
        region: "us-west-2".to_owned(),
        ..SignSpec::default()
    };
    let answer = signed_post(&app, GCI_BODY, &alpha, &wrong_region).await;
    app.assert_denied(
        &answer,
        FORBIDDEN,
        "SignatureDoesNotMatch",
        &["invalid credential scope (Region)"],
    )
    .await;
    let wrong_service = SignSpec {
        service: "iam".to_owned(),
        ..SignSpec::default()
    };
    let answer = signed_post(&app, GCI_BODY, &alpha, &wrong_service).await;
    app.assert_denied(
        &answer,
        FORBIDDEN,
        "SignatureDoesNotMatch",
        &["invalid credential scope (Service)"],
    )
    .await;

    let expired_url = presign_get(
        &app.url(),
        &app.host(),
        GCI_BODY,
        &alpha,
        &SignSpec::at(SystemTime::now() - Duration::from_secs(300)),
        Duration::from_secs(60),
    );
    let answer = app.get(&expired_url[app.url().len()..]).await;
    app.assert_denied(
        &answer,
        FORBIDDEN,
        "AccessDenied",
        &["presigned request expired"],
    )
    .await;

    // The security token must be covered by the signature.
    let unsigned_token = SignSpec {
        token: TokenPlacement::Unsigned,
        ..SignSpec::default()
    };
    let answer = signed_post(&app, GCI_BODY, &alpha, &unsigned_token).await;
    app.assert_denied(
        &answer,
        BAD_REQUEST,
        "IncompleteSignature",
        &["x-amz-security-token is required to be signed"],
    )
    .await;

    // A token must belong to the access key presented with it.
    let swapped = Creds {
        session_token: beta.session_token.clone(),
        ..alpha.clone()
    };
    let answer = signed_post(&app, GCI_BODY, &swapped, &SignSpec::default()).await;
    app.assert_denied(
        &answer,
        FORBIDDEN,
        "InvalidClientTokenId",
        &[
            "session token belongs to",
            &beta.access_key_id,
            &alpha.access_key_id,
        ],
    )
    .await;
    let borrowed_key = Creds {
        access_key_id: beta.access_key_id.clone(),
        session_token: beta.session_token.clone(),
        ..alpha.clone()
    };
    let answer = signed_post(&app, GCI_BODY, &borrowed_key, &SignSpec::default()).await;
    app.assert_denied(
        &answer,
        FORBIDDEN,
        "SignatureDoesNotMatch",
        &["signature does not match"],
    )
    .await;

    // The body cannot change after signing.
    let signed_body = form_body(&[
        ("Action", "AssumeRole"),
        ("Version", "2011-06-15"),
        ("RoleArn", &role_arn("chain")),
        ("RoleSessionName", "as-signed"),
    ]);
    let sent_body = signed_body.replace("as-signed", "as-changed");
    let answer =
        signed_post_sending(&app, &signed_body, &sent_body, &alpha, &SignSpec::default()).await;
    app.assert_denied(
        &answer,
        FORBIDDEN,
        "SignatureDoesNotMatch",
        &["signature does not match"],
    )
    .await;
    let as_signed = signed_post(&app, &signed_body, &alpha, &SignSpec::default()).await;
    assert_eq!(as_signed.0, StatusCode::OK, "{}", as_signed.1);
    granted += 1;

    // Credentials of another deployment (other sealing keys) are not ours.
    let elsewhere = TestApp::builder()
        .issuer(idp.idp.issuer())
        .role(RoleSpec::new("web", web_trust(&idp.prefix(), &[], "")))
        .start()
        .await;
    let token = idp.idp.id_token("mallory", json!({})).await;
    let foreign = elsewhere
        .credentials_for(&role_arn("web"), "alpha", &token)
        .await;
    let answer = signed_post(&app, GCI_BODY, &foreign, &SignSpec::default()).await;
    app.assert_denied(
        &answer,
        FORBIDDEN,
        "InvalidClientTokenId",
        &["session token rejected"],
    )
    .await;

    // Unknown keys and tokens that are not ours.
    let long_term = Creds {
        access_key_id: "AKIAIOSFODNN7EXAMPLE".to_owned(),
        secret_access_key: "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY".to_owned(),
        session_token: String::new(),
        expiration: String::new(),
    };
    let omitted = SignSpec {
        token: TokenPlacement::Omitted,
        ..SignSpec::default()
    };
    let answer = signed_post(&app, GCI_BODY, &long_term, &omitted).await;
    app.assert_denied(
        &answer,
        FORBIDDEN,
        "InvalidClientTokenId",
        &["AKIAIOSFODNN7EXAMPLE has no session token"],
    )
    .await;
    let answer = signed_post(&app, GCI_BODY, &alpha, &omitted).await;
    app.assert_denied(
        &answer,
        FORBIDDEN,
        "InvalidClientTokenId",
        &["has no session token"],
    )
    .await;
    let garbage = Creds {
        session_token: "garbage".to_owned(),
        ..alpha.clone()
    };
    let answer = signed_post(&app, GCI_BODY, &garbage, &SignSpec::default()).await;
    app.assert_denied(
        &answer,
        FORBIDDEN,
        "InvalidClientTokenId",
        &["session token"],
    )
    .await;
    let mut altered = alpha.session_token.clone().into_bytes();
    let i = altered.len() / 2;
    altered[i] = if altered[i] == b'A' { b'B' } else { b'A' };
    let altered = Creds {
        session_token: String::from_utf8(altered).unwrap(),
        ..alpha.clone()
    };
    let answer = signed_post(&app, GCI_BODY, &altered, &SignSpec::default()).await;
    app.assert_denied(
        &answer,
        FORBIDDEN,
        "InvalidClientTokenId",
        &["session token"],
    )
    .await;
    let unknown_temporary = Creds {
        access_key_id: "ASIAQQQQQQQQQQQQQQQQ".to_owned(),
        session_token: "bm90IGEgdG9rZW4".to_owned(),
        ..alpha.clone()
    };
    let answer = signed_post(&app, GCI_BODY, &unknown_temporary, &SignSpec::default()).await;
    app.assert_denied(
        &answer,
        FORBIDDEN,
        "InvalidClientTokenId",
        &["session token"],
    )
    .await;

    // No authentication at all on signed actions.
    for body in [
        GCI_BODY.to_owned(),
        form_body(&[
            ("Action", "AssumeRole"),
            ("Version", "2011-06-15"),
            ("RoleArn", &role_arn("chain")),
            ("RoleSessionName", "anonymous"),
        ]),
    ] {
        let answer = app.post_raw(&body, &[]).await;
        app.assert_denied(
            &answer,
            FORBIDDEN,
            "MissingAuthenticationToken",
            &["no Authorization header"],
        )
        .await;
    }
    let answer = app.get(&format!("/?{GCI_BODY}")).await;
    app.assert_denied(
        &answer,
        FORBIDDEN,
        "MissingAuthenticationToken",
        &["no Authorization header"],
    )
    .await;

    assert_eq!(allowed_count(&app).await, granted);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn expired_credentials_are_refused() {
    let Signed {
        idp: _idp,
        app,
        alpha,
        ..
    } = signed_setup(true).await;
    let at = |app: &TestApp| SignSpec::at(SystemTime::from(app.now()));
    let ok = signed_post(&app, GCI_BODY, &alpha, &at(&app)).await;
    assert_eq!(ok.0, StatusCode::OK, "{}", ok.1);
    assert_eq!(
        alpha.expires_at(),
        app.now() + chrono::Duration::seconds(3600)
    );

    app.clock().advance(chrono::Duration::seconds(3599));
    let ok = signed_post(&app, GCI_BODY, &alpha, &at(&app)).await;
    assert_eq!(ok.0, StatusCode::OK, "one second before expiry: {}", ok.1);

    app.clock().advance(chrono::Duration::seconds(1));
    let answer = signed_post(&app, GCI_BODY, &alpha, &at(&app)).await;
    app.assert_denied(&answer, FORBIDDEN, "ExpiredToken", &["expired at"])
        .await;
    assert!(answer.1.contains("expired"), "{}", answer.1);

    // Chaining from expired credentials is refused the same way.
    let body = form_body(&[
        ("Action", "AssumeRole"),
        ("Version", "2011-06-15"),
        ("RoleArn", &role_arn("chain")),
        ("RoleSessionName", "late"),
    ]);
    let answer = signed_post(&app, &body, &alpha, &at(&app)).await;
    app.assert_denied(&answer, FORBIDDEN, "ExpiredToken", &["expired at"])
        .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fifty_one_session_tags_are_refused() {
    let Signed {
        idp: _idp,
        app,
        alpha,
        ..
    } = signed_setup(false).await;
    let tags = |n: usize| {
        let mut form = vec![
            ("Action".to_owned(), "AssumeRole".to_owned()),
            ("Version".to_owned(), "2011-06-15".to_owned()),
            ("RoleArn".to_owned(), role_arn("chain")),
            ("RoleSessionName".to_owned(), "tagged".to_owned()),
        ];
        for i in 1..=n {
            form.push((format!("Tags.member.{i}.Key"), format!("k{i}")));
            form.push((format!("Tags.member.{i}.Value"), "v".to_owned()));
        }
        let refs: Vec<(&str, &str)> = form.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
        form_body(&refs)
    };
    let answer = signed_post(&app, &tags(51), &alpha, &SignSpec::default()).await;
    app.assert_denied(
        &answer,
        BAD_REQUEST,
        "ValidationError",
        &["tags", "less than or equal to 50"],
    )
    .await;
    let fifty = signed_post(&app, &tags(50), &alpha, &SignSpec::default()).await;
    assert_eq!(fifty.0, StatusCode::OK, "50 tags: {}", fifty.1);
    assert!(credentials(&fifty.1).is_some());
}

/// Roles for the session-policy cases: `web` may assume anything; `by-account` trusts the account,
/// `by-role` trusts `web`'s role ARN.
async fn session_policy_setup() -> (Idp, TestApp, String) {
    let idp = Idp::start().await;
    let app = TestApp::builder()
        .issuer(idp.idp.issuer())
        .role(
            RoleSpec::new("web", web_trust(&idp.prefix(), &[], ""))
                .policy("assume-anything", allow(&["sts:AssumeRole"], "*")),
        )
        .role(RoleSpec::new("by-account", aws_trust(&[ACCOUNT], &[])))
        .role(RoleSpec::new(
            "by-role",
            aws_trust(&[&role_arn("web")], &[]),
        ))
        .start()
        .await;
    let token = idp.idp.id_token("mallory", json!({})).await;
    (idp, app, token)
}

const ONLY_WHO_AM_I: &str = r#"{"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "sts:GetCallerIdentity", "Resource": "*"}]}"#;

async fn federated_with_policy(
    app: &TestApp,
    token: &str,
    session: &str,
    policy: Option<&str>,
) -> Creds {
    let extra: Vec<(&str, &str)> = policy.map(|p| ("Policy", p)).into_iter().collect();
    let answer = app
        .assume_web(&role_arn("web"), session, token, &extra)
        .await;
    assert_granted(&answer, "federation");
    credentials(&answer.1).unwrap()
}

fn assume_role_body(role: &str, session: &str) -> String {
    form_body(&[
        ("Action", "AssumeRole"),
        ("Version", "2011-06-15"),
        ("RoleArn", &role_arn(role)),
        ("RoleSessionName", session),
    ])
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_session_policy_never_widens_what_the_role_allows() {
    let (_idp, app, token) = session_policy_setup().await;
    let full = federated_with_policy(&app, &token, "full", None).await;
    let limited = federated_with_policy(&app, &token, "limited", Some(ONLY_WHO_AM_I)).await;
    let chaining = federated_with_policy(
        &app,
        &token,
        "chaining",
        Some(&allow(&["sts:AssumeRole"], &role_arn("by-account"))),
    )
    .await;

    // The role allows it: without a session policy the session chains.
    let answer = signed_post(
        &app,
        &assume_role_body("by-account", "chained"),
        &full,
        &SignSpec::default(),
    )
    .await;
    assert_granted(&answer, "no session policy");
    // The limited session can still do what its session policy allows ...
    let who = signed_post(&app, GCI_BODY, &limited, &SignSpec::default()).await;
    assert_eq!(who.0, StatusCode::OK, "{}", who.1);
    // ... but not what only the role allows.
    let answer = signed_post(
        &app,
        &assume_role_body("by-account", "chained"),
        &limited,
        &SignSpec::default(),
    )
    .await;
    let event = app
        .assert_denied(
            &answer,
            FORBIDDEN,
            "AccessDenied",
            &["do not allow sts:AssumeRole", &role_arn("by-account")],
        )
        .await;
    assert!(event.explanation.is_some(), "{event:?}");
    assert!(
        answer.1.contains("Encoded authorization failure message"),
        "{}",
        answer.1
    );
    // A session policy allowing exactly one role: that role, and nothing the session policy omits.
    let answer = signed_post(
        &app,
        &assume_role_body("by-account", "chained"),
        &chaining,
        &SignSpec::default(),
    )
    .await;
    assert_granted(&answer, "session policy allowing the role");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_session_policy_also_limits_trust_granted_to_the_role_arn() {
    let (_idp, app, token) = session_policy_setup().await;
    let full = federated_with_policy(&app, &token, "full", None).await;
    let limited = federated_with_policy(&app, &token, "limited", Some(ONLY_WHO_AM_I)).await;

    let answer = signed_post(
        &app,
        &assume_role_body("by-role", "chained"),
        &full,
        &SignSpec::default(),
    )
    .await;
    assert_granted(&answer, "no session policy");
    // AWS: a resource-based policy naming the role ARN adds to the identity-based permissions before
    // the session is created, so the session policy still limits it. Only a grant naming the session
    // ARN itself escapes the session policy.
    let answer = signed_post(
        &app,
        &assume_role_body("by-role", "chained"),
        &limited,
        &SignSpec::default(),
    )
    .await;
    app.assert_denied(&answer, FORBIDDEN, "AccessDenied", &["sts:AssumeRole"])
        .await;
}
