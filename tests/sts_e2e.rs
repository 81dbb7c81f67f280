//! rolegate's STS end to end with the real AWS SDK for Rust (`aws-config`, `aws-sdk-sts`) and a real
//! OpenID provider (`oidc-provider` on loopback): web identity federation through the SDK's default
//! credential chain, role chaining, denials explained by `DecodeAuthorizationMessage`, ES256 tokens,
//! session tags, claim conditions, durations, revocation and presigned `GetCallerIdentity`.
//!
//! One test reads the process environment the way a deployed SDK does (`AWS_WEB_IDENTITY_TOKEN_FILE`,
//! `AWS_ROLE_ARN`, `AWS_ENDPOINT_URL_STS`); every other client here is configured explicitly and reads
//! no environment.

mod support;

use std::time::{Duration, SystemTime};

use aws_sdk_sts::config::retry::RetryConfig;
use aws_sdk_sts::config::{BehaviorVersion, Credentials, Region};
use aws_sdk_sts::error::ProvideErrorMetadata;
use aws_sdk_sts::Client;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use chrono::{DateTime, SecondsFormat, Timelike, Utc};
use reqwest::StatusCode;
use rolegate::store::{Revocation, RevocationScope};
use serde_json::{json, Value};
use support::app::{
    allow, aws_trust, credentials, error_code, role_arn, web_trust, Creds, Idp, RoleSpec, TestApp,
    ACCOUNT,
};
use support::idp::{CLIENT_ID, EC_KID};
use support::signing::{presign_get, SignSpec};

const GCI_QUERY: &str = "Action=GetCallerIdentity&Version=2011-06-15";

/// An STS client for rolegate that reads nothing from the environment and never retries.
fn sts_client(app: &TestApp, creds: Option<&Creds>) -> Client {
    let mut config = aws_sdk_sts::Config::builder()
        .behavior_version(BehaviorVersion::latest())
        .region(Region::new("us-east-1"))
        .endpoint_url(app.url())
        .retry_config(RetryConfig::disabled());
    if let Some(c) = creds {
        config = config.credentials_provider(Credentials::new(
            c.access_key_id.clone(),
            c.secret_access_key.clone(),
            Some(c.session_token.clone()),
            None,
            "rolegate-e2e",
        ));
    }
    Client::from_conf(config.build())
}

fn creds_of(c: Option<&aws_sdk_sts::types::Credentials>) -> Creds {
    let c = c.unwrap_or_else(|| panic!("the answer has no credentials"));
    Creds {
        access_key_id: c.access_key_id().to_owned(),
        secret_access_key: c.secret_access_key().to_owned(),
        session_token: c.session_token().to_owned(),
        expiration: iso(c.expiration().secs()),
    }
}

fn iso(secs: i64) -> String {
    DateTime::<Utc>::from_timestamp(secs, 0)
        .unwrap_or_else(|| panic!("bad time {secs}"))
        .to_rfc3339_opts(SecondsFormat::Secs, true)
}

fn jwt_header(token: &str) -> Value {
    let first = token.split('.').next().unwrap_or("");
    let bytes = URL_SAFE_NO_PAD
        .decode(first)
        .unwrap_or_else(|e| panic!("header is not base64url: {e}"));
    serde_json::from_slice(&bytes).unwrap_or_else(|e| panic!("header is not JSON: {e}"))
}

/// `AssumeRoleWithWebIdentity` through the SDK (unsigned).
async fn sdk_assume_web(
    app: &TestApp,
    role: &str,
    session: &str,
    token: &str,
    duration: Option<i32>,
) -> Result<
    aws_sdk_sts::operation::assume_role_with_web_identity::AssumeRoleWithWebIdentityOutput,
    String,
> {
    sts_client(app, None)
        .assume_role_with_web_identity()
        .role_arn(role_arn(role))
        .role_session_name(session)
        .web_identity_token(token)
        .set_duration_seconds(duration)
        .send()
        .await
        .map_err(|e| e.code().unwrap_or("<no code>").to_owned())
}

/// Removes every `AWS_*` variable and points the SDK's files at empty ones, as a fresh container would.
fn isolate_aws_environment(dir: &std::path::Path) {
    let names: Vec<String> = std::env::vars()
        .map(|(k, _)| k)
        .filter(|k| k.starts_with("AWS_"))
        .collect();
    for name in names {
        std::env::remove_var(name);
    }
    let config = dir.join("config");
    let credentials = dir.join("credentials");
    std::fs::write(&config, "").unwrap();
    std::fs::write(&credentials, "").unwrap();
    std::env::set_var("AWS_CONFIG_FILE", &config);
    std::env::set_var("AWS_SHARED_CREDENTIALS_FILE", &credentials);
    std::env::set_var("AWS_EC2_METADATA_DISABLED", "true");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_default_credential_chain_federates_from_a_token_file_chains_and_explains_denials() {
    let idp = Idp::start().await;
    let prefix = idp.prefix();
    let app = TestApp::builder()
        .issuer(idp.idp.issuer())
        .role(
            RoleSpec::new("web-role", web_trust(&prefix, &[], ""))
                .policy("chain", allow(&["sts:AssumeRole"], &role_arn("chain-role")))
                .policy("decode", allow(&["sts:DecodeAuthorizationMessage"], "*")),
        )
        .role(RoleSpec::new(
            "chain-role",
            aws_trust(&[&role_arn("web-role")], &[]),
        ))
        .role(RoleSpec::new(
            "closed-role",
            aws_trust(&[&role_arn("someone-else")], &[]),
        ))
        .start()
        .await;

    // The token file as Kubernetes and CI systems write it: with a trailing newline.
    let token = idp.idp.id_token("alice", json!({})).await;
    let files = tempfile::tempdir().unwrap();
    let token_file = files.path().join("token");
    std::fs::write(&token_file, format!("{token}\n")).unwrap();

    isolate_aws_environment(files.path());
    std::env::set_var("AWS_WEB_IDENTITY_TOKEN_FILE", &token_file);
    std::env::set_var("AWS_ROLE_ARN", role_arn("web-role"));
    std::env::set_var("AWS_ROLE_SESSION_NAME", "e2e-session");
    std::env::set_var("AWS_ENDPOINT_URL_STS", app.url());
    std::env::set_var("AWS_REGION", "us-east-1");

    let sdk_config = aws_config::defaults(BehaviorVersion::latest())
        .endpoint_url(app.url())
        .retry_config(RetryConfig::disabled())
        .load()
        .await;
    let client = Client::new(&sdk_config);
    let me = client
        .get_caller_identity()
        .send()
        .await
        .unwrap_or_else(|e| panic!("GetCallerIdentity: {e:?}"));
    let role_id = rolegate::config::role_id_for(&role_arn("web-role"));
    assert!(
        role_id.starts_with("AROA") && role_id.len() == 21,
        "{role_id}"
    );
    assert_eq!(
        me.arn(),
        Some(format!("arn:aws:sts::{ACCOUNT}:assumed-role/web-role/e2e-session").as_str())
    );
    assert_eq!(
        me.user_id(),
        Some(format!("{role_id}:e2e-session").as_str())
    );
    assert_eq!(me.account(), Some(ACCOUNT));

    // The federation itself is in the audit log with the subject from the token.
    let events = app.audit_events().await;
    let federation: Vec<_> = events
        .iter()
        .filter(|e| e.action == "AssumeRoleWithWebIdentity")
        .collect();
    assert_eq!(federation.len(), 1, "{events:?}");
    assert_eq!(federation[0].decision, "allow");
    assert_eq!(federation[0].subject.as_deref(), Some("alice"));
    assert_eq!(federation[0].provider.as_deref(), Some(idp.idp.issuer()));

    // Role chaining with the federated session's credentials.
    let chained = client
        .assume_role()
        .role_arn(role_arn("chain-role"))
        .role_session_name("chained")
        .send()
        .await
        .unwrap_or_else(|e| panic!("AssumeRole: {e:?}"));
    let chained_creds = creds_of(chained.credentials());
    assert!(chained_creds.access_key_id.starts_with("ASIA"));
    assert_eq!(
        chained.assumed_role_user().map(|u| u.arn()),
        Some(format!("arn:aws:sts::{ACCOUNT}:assumed-role/chain-role/chained").as_str())
    );
    let chained_me = sts_client(&app, Some(&chained_creds))
        .get_caller_identity()
        .send()
        .await
        .unwrap_or_else(|e| panic!("GetCallerIdentity (chained): {e:?}"));
    assert_eq!(
        chained_me.arn(),
        Some(format!("arn:aws:sts::{ACCOUNT}:assumed-role/chain-role/chained").as_str())
    );

    // Role chaining is capped at one hour.
    let too_long = client
        .assume_role()
        .role_arn(role_arn("chain-role"))
        .role_session_name("chained")
        .duration_seconds(3601)
        .send()
        .await
        .expect_err("a chained session over one hour was granted");
    assert_eq!(too_long.code(), Some("ValidationError"), "{too_long:?}");
    let at_limit = client
        .assume_role()
        .role_arn(role_arn("chain-role"))
        .role_session_name("chained")
        .duration_seconds(3600)
        .send()
        .await
        .unwrap_or_else(|e| panic!("AssumeRole for 3600 s: {e:?}"));
    assert!(at_limit.credentials().is_some());

    // A real denial, then its explanation.
    let denied = client
        .assume_role()
        .role_arn(role_arn("closed-role"))
        .role_session_name("nope")
        .send()
        .await
        .expect_err("a role whose trust policy names someone else was assumed");
    assert_eq!(denied.code(), Some("AccessDenied"), "{denied:?}");
    let message = denied.message().unwrap_or("").to_owned();
    let marker = "Encoded authorization failure message: ";
    let encoded = message
        .split_once(marker)
        .map(|(_, m)| m.trim().to_owned())
        .unwrap_or_else(|| panic!("no encoded message in {message:?}"));
    let decoded = client
        .decode_authorization_message()
        .encoded_message(&encoded)
        .send()
        .await
        .unwrap_or_else(|e| panic!("DecodeAuthorizationMessage: {e:?}"));
    let doc: Value = serde_json::from_str(decoded.decoded_message().unwrap_or("")).unwrap();
    assert_eq!(doc["allowed"], json!(false), "{doc}");
    assert_eq!(doc["context"]["action"], json!("sts:AssumeRole"), "{doc}");
    assert_eq!(
        doc["context"]["resource"],
        json!(role_arn("closed-role")),
        "{doc}"
    );
    assert_eq!(
        doc["context"]["principal"]["arn"],
        json!(format!(
            "arn:aws:sts::{ACCOUNT}:assumed-role/web-role/e2e-session"
        )),
        "{doc}"
    );

    // A tampered message is refused, not decoded.
    let mut tampered = encoded.clone().into_bytes();
    let i = tampered.len() / 2;
    tampered[i] = if tampered[i] == b'A' { b'B' } else { b'A' };
    let refused = client
        .decode_authorization_message()
        .encoded_message(String::from_utf8(tampered).unwrap())
        .send()
        .await
        .expect_err("a tampered authorization message was decoded");
    assert_eq!(
        refused.code(),
        Some("InvalidAuthorizationMessageException"),
        "{refused:?}"
    );

    // The chained session's role has no policy allowing DecodeAuthorizationMessage.
    let not_allowed = sts_client(&app, Some(&chained_creds))
        .decode_authorization_message()
        .encoded_message(&encoded)
        .send()
        .await
        .expect_err("a caller without sts:DecodeAuthorizationMessage decoded a message");
    assert_eq!(not_allowed.code(), Some("AccessDenied"), "{not_allowed:?}");

    for name in [
        "AWS_WEB_IDENTITY_TOKEN_FILE",
        "AWS_ROLE_ARN",
        "AWS_ROLE_SESSION_NAME",
        "AWS_ENDPOINT_URL_STS",
        "AWS_REGION",
    ] {
        std::env::remove_var(name);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn es256_tokens_from_the_provider_are_accepted() {
    let idp = Idp::start().await;
    let app = TestApp::builder()
        .issuer(idp.idp.issuer())
        .role(RoleSpec::new("ec-role", web_trust(&idp.prefix(), &[], "")))
        .start()
        .await;
    let token = idp
        .idp
        .id_token_for(CLIENT_ID, "ES256", "bob", json!({}))
        .await;
    let header = jwt_header(&token);
    assert_eq!(header["alg"], json!("ES256"), "{header}");
    assert_eq!(header["kid"], json!(EC_KID), "{header}");

    let out = sdk_assume_web(&app, "ec-role", "bob-session", &token, None)
        .await
        .unwrap_or_else(|code| panic!("ES256 token refused: {code}"));
    assert_eq!(out.subject_from_web_identity_token(), Some("bob"));
    assert_eq!(out.provider(), Some(idp.idp.issuer()));
    assert_eq!(out.audience(), Some(CLIENT_ID));
    let creds = creds_of(out.credentials());
    let me = sts_client(&app, Some(&creds))
        .get_caller_identity()
        .send()
        .await
        .unwrap_or_else(|e| panic!("GetCallerIdentity: {e:?}"));
    assert_eq!(
        me.arn(),
        Some(format!("arn:aws:sts::{ACCOUNT}:assumed-role/ec-role/bob-session").as_str())
    );

    // The same token with one signature byte changed is not.
    let mut parts: Vec<String> = token.split('.').map(str::to_owned).collect();
    let mut sig = URL_SAFE_NO_PAD.decode(&parts[2]).unwrap();
    sig[5] ^= 0x01;
    parts[2] = URL_SAFE_NO_PAD.encode(sig);
    let forged = parts.join(".");
    let code = sdk_assume_web(&app, "ec-role", "bob-session", &forged, None)
        .await
        .expect_err("an ES256 token with a changed signature was accepted");
    assert_eq!(code, "InvalidIdentityToken");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn session_tags_from_the_token_need_tag_session_and_reach_chained_trust() {
    let idp = Idp::start().await;
    let prefix = idp.prefix();
    let blue_only = format!(
        r#"{{"Version": "2012-10-17", "Statement": [{{"Effect": "Allow",
  "Principal": {{"AWS": "{}"}}, "Action": "sts:AssumeRole",
  "Condition": {{"StringEquals": {{"aws:PrincipalTag/team": "blue"}}}}}}]}}"#,
        role_arn("tagged")
    );
    let app = TestApp::builder()
        .issuer(idp.idp.issuer())
        .role(RoleSpec::new("untagged", web_trust(&prefix, &[], "")))
        .role(RoleSpec::new(
            "tagged",
            web_trust(&prefix, &["sts:TagSession"], ""),
        ))
        .role(RoleSpec::new("blue-only", blue_only))
        .start()
        .await;
    let tags = |team: &str| {
        json!({ "https://aws.amazon.com/tags": {
            "principal_tags": { "team": [team], "cost-center": ["42"] },
            "transitive_tag_keys": ["team"],
        }})
    };
    let blue = idp.idp.id_token("carol", tags("blue")).await;

    // Without sts:TagSession in the trust policy the tagged token is refused.
    let code = sdk_assume_web(&app, "untagged", "carol", &blue, None)
        .await
        .expect_err("tags were accepted without sts:TagSession");
    assert_eq!(code, "AccessDenied");
    let events = app.audit_events().await;
    let deny = events
        .iter()
        .find(|e| e.decision == "deny" && e.role_arn.as_deref() == Some(&role_arn("untagged")))
        .unwrap_or_else(|| panic!("no deny event: {events:?}"));
    assert!(
        deny.reason
            .as_deref()
            .is_some_and(|r| r.contains("sts:TagSession")),
        "{deny:?}"
    );

    // With it, the session is tagged (PackedPolicySize is reported) ...
    let (status, body) = app
        .assume_web(&role_arn("tagged"), "carol", &blue, &[])
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let size: u32 = support::app::xml_text(&body, "PackedPolicySize")
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("no PackedPolicySize in {body}"));
    assert!((1..=100).contains(&size), "PackedPolicySize {size}");
    let blue_creds = credentials(&body).unwrap();

    // ... and the tag is what a chained trust policy sees as aws:PrincipalTag/team.
    let chained = sts_client(&app, Some(&blue_creds))
        .assume_role()
        .role_arn(role_arn("blue-only"))
        .role_session_name("blue")
        .send()
        .await
        .unwrap_or_else(|e| panic!("blue session refused: {e:?}"));
    assert!(chained.credentials().is_some());

    let red = idp.idp.id_token("dave", tags("red")).await;
    let red_creds = creds_of(
        sdk_assume_web(&app, "tagged", "dave", &red, None)
            .await
            .unwrap_or_else(|code| panic!("tagged federation refused: {code}"))
            .credentials(),
    );
    let refused = sts_client(&app, Some(&red_creds))
        .assume_role()
        .role_arn(role_arn("blue-only"))
        .role_session_name("red")
        .send()
        .await
        .expect_err("a red session assumed the blue-only role");
    assert_eq!(refused.code(), Some("AccessDenied"), "{refused:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn trust_conditions_see_arbitrary_and_nested_claims() {
    let idp = Idp::start().await;
    let p = idp.prefix();
    let trust = format!(
        r#"{{"Version": "2012-10-17", "Statement": [{{"Effect": "Allow",
  "Principal": {{"Federated": "{arn}"}},
  "Action": "sts:AssumeRoleWithWebIdentity",
  "Condition": {{
    "StringEquals": {{"{p}:aud": "{CLIENT_ID}", "{p}:org/team/name": "platform"}},
    "ForAnyValue:StringEquals": {{"{p}:groups": ["admins", "ops"]}},
    "StringLike": {{"{p}:email": "*@example.com"}}
  }}}}]}}"#,
        arn = idp.provider_arn()
    );
    let app = TestApp::builder()
        .issuer(idp.idp.issuer())
        .role(RoleSpec::new("platform-admin", trust))
        .start()
        .await;
    let cases = [
        (
            "member of admins, platform team",
            json!({"groups": ["dev", "admins"], "org": {"team": {"name": "platform"}}, "email": "erin@example.com"}),
            true,
        ),
        (
            "ops alone is enough",
            json!({"groups": ["ops"], "org": {"team": {"name": "platform"}}, "email": "erin@example.com"}),
            true,
        ),
        (
            "no listed group",
            json!({"groups": ["dev", "Admins"], "org": {"team": {"name": "platform"}}, "email": "erin@example.com"}),
            false,
        ),
        (
            "empty groups",
            json!({"groups": [], "org": {"team": {"name": "platform"}}, "email": "erin@example.com"}),
            false,
        ),
        (
            "other team",
            json!({"groups": ["admins"], "org": {"team": {"name": "payments"}}, "email": "erin@example.com"}),
            false,
        ),
        (
            "nested claim missing",
            json!({"groups": ["admins"], "org": {"team": {}}, "email": "erin@example.com"}),
            false,
        ),
        (
            "nested value at another path",
            json!({"groups": ["admins"], "org": {"name": "platform"}, "email": "erin@example.com"}),
            false,
        ),
        (
            "nested object where a string is expected",
            json!({"groups": ["admins"], "org": {"team": {"name": {"x": "platform"}}}, "email": "erin@example.com"}),
            false,
        ),
        (
            "email outside the domain",
            json!({"groups": ["admins"], "org": {"team": {"name": "platform"}}, "email": "erin@example.org"}),
            false,
        ),
    ];
    for (what, claims, allowed) in cases {
        let token = idp.idp.id_token("erin", claims).await;
        let outcome = sdk_assume_web(&app, "platform-admin", "erin", &token, None).await;
        match (allowed, outcome) {
            (true, Ok(out)) => assert!(out.credentials().is_some(), "{what}"),
            (false, Err(code)) => assert_eq!(code, "AccessDenied", "{what}"),
            (true, Err(code)) => panic!("{what}: refused with {code}"),
            (false, Ok(_)) => panic!("{what}: allowed"),
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn durations_are_capped_by_the_role_and_expiration_is_exact() {
    let idp = Idp::start().await;
    let prefix = idp.prefix();
    let start = Utc::now().with_nanosecond(0).unwrap();
    let app = TestApp::builder()
        .issuer(idp.idp.issuer())
        .fixed_clock(start)
        .role(RoleSpec::new("short", web_trust(&prefix, &[], "")))
        .role(RoleSpec::new("long", web_trust(&prefix, &[], "")).max_session(7200))
        .start()
        .await;
    let token = idp.idp.id_token("frank", json!({})).await;
    let now = start.timestamp();

    let default = sdk_assume_web(&app, "short", "frank", &token, None)
        .await
        .unwrap_or_else(|code| panic!("default duration refused: {code}"));
    assert_eq!(
        default.credentials().map(|c| c.expiration().secs()),
        Some(now + 3600)
    );
    let longest = sdk_assume_web(&app, "long", "frank", &token, Some(7200))
        .await
        .unwrap_or_else(|code| panic!("7200 s on a 7200 s role refused: {code}"));
    assert_eq!(
        longest.credentials().map(|c| c.expiration().secs()),
        Some(now + 7200)
    );
    let shortest = sdk_assume_web(&app, "long", "frank", &token, Some(900))
        .await
        .unwrap_or_else(|code| panic!("900 s refused: {code}"));
    assert_eq!(
        shortest.credentials().map(|c| c.expiration().secs()),
        Some(now + 900)
    );

    for (role, duration) in [("short", 3601), ("long", 7201)] {
        let code = sdk_assume_web(&app, role, "frank", &token, Some(duration))
            .await
            .expect_err("a duration above the role maximum was granted");
        assert_eq!(code, "ValidationError", "{role} {duration}");
    }

    // The raw answer carries the same instant as ISO-8601 UTC.
    let (status, body) = app
        .assume_web(
            &role_arn("long"),
            "frank",
            &token,
            &[("DurationSeconds", "5400")],
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let creds = credentials(&body).unwrap();
    assert_eq!(creds.expiration, iso(now + 5400));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn revoking_a_role_ends_its_sessions_and_fresh_ones_work() {
    let idp = Idp::start().await;
    let start = Utc::now().with_nanosecond(0).unwrap();
    let app = TestApp::builder()
        .issuer(idp.idp.issuer())
        .fixed_clock(start)
        .role(RoleSpec::new(
            "revocable",
            web_trust(&idp.prefix(), &[], ""),
        ))
        .role(RoleSpec::new(
            "bystander",
            web_trust(&idp.prefix(), &[], ""),
        ))
        .start()
        .await;
    let token = idp.idp.id_token("grace", json!({})).await;
    let old = app
        .credentials_for(&role_arn("revocable"), "grace", &token)
        .await;
    let bystander = app
        .credentials_for(&role_arn("bystander"), "grace", &token)
        .await;
    let old_client = sts_client(&app, Some(&old));
    old_client
        .get_caller_identity()
        .send()
        .await
        .unwrap_or_else(|e| panic!("fresh credentials refused: {e:?}"));

    revoke(
        &app,
        RevocationScope::Role(role_arn("revocable")),
        "end-to-end revocation",
    )
    .await;

    let refused = old_client
        .get_caller_identity()
        .send()
        .await
        .expect_err("revoked credentials still work");
    assert_eq!(refused.code(), Some("ExpiredToken"), "{refused:?}");
    let events = app.audit_events().await;
    let deny = events
        .iter()
        .find(|e| e.action == "GetCallerIdentity" && e.decision == "deny")
        .unwrap_or_else(|| panic!("no deny event: {events:?}"));
    assert!(
        deny.reason
            .as_deref()
            .is_some_and(|r| r.contains("revocation") && r.contains("end-to-end revocation")),
        "{deny:?}"
    );

    // Sessions of other roles are untouched.
    sts_client(&app, Some(&bystander))
        .get_caller_identity()
        .send()
        .await
        .unwrap_or_else(|e| panic!("a session of another role was revoked: {e:?}"));

    // Sessions issued after the revocation work; the old one stays revoked.
    app.clock().advance(chrono::Duration::seconds(2));
    let fresh = app
        .credentials_for(&role_arn("revocable"), "grace", &token)
        .await;
    let me = sts_client(&app, Some(&fresh))
        .get_caller_identity()
        .send()
        .await
        .unwrap_or_else(|e| panic!("fresh credentials after revocation refused: {e:?}"));
    assert_eq!(
        me.arn(),
        Some(format!("arn:aws:sts::{ACCOUNT}:assumed-role/revocable/grace").as_str())
    );
    let still = old_client
        .get_caller_identity()
        .send()
        .await
        .expect_err("revoked credentials came back");
    assert_eq!(still.code(), Some("ExpiredToken"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn presigned_get_caller_identity_verifies_until_it_expires() {
    let idp = Idp::start().await;
    let app = TestApp::builder()
        .issuer(idp.idp.issuer())
        .role(RoleSpec::new(
            "presigner",
            web_trust(&idp.prefix(), &[], ""),
        ))
        .start()
        .await;
    let token = idp.idp.id_token("heidi", json!({})).await;
    let creds = app
        .credentials_for(&role_arn("presigner"), "heidi", &token)
        .await;

    let url = presign_get(
        &app.url(),
        &app.host(),
        GCI_QUERY,
        &creds,
        &SignSpec::default(),
        Duration::from_secs(300),
    );
    assert!(url.contains("X-Amz-Security-Token="), "{url}");
    let (status, body) = app.get(&url[app.url().len()..]).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert!(body.contains("<GetCallerIdentityResponse"), "{body}");
    assert_eq!(
        support::app::xml_text(&body, "Arn").as_deref(),
        Some(format!("arn:aws:sts::{ACCOUNT}:assumed-role/presigner/heidi").as_str())
    );
    // A presigned URL can be used more than once until it expires, as with AWS.
    let (again, _) = app.get(&url[app.url().len()..]).await;
    assert_eq!(again, StatusCode::OK);

    let signed_earlier = SignSpec::at(SystemTime::now() - Duration::from_secs(120));
    let expired = presign_get(
        &app.url(),
        &app.host(),
        GCI_QUERY,
        &creds,
        &signed_earlier,
        Duration::from_secs(60),
    );
    let answer = app.get(&expired[app.url().len()..]).await;
    assert_eq!(
        error_code(&answer.1).as_deref(),
        Some("AccessDenied"),
        "{}",
        answer.1
    );
    app.assert_denied(
        &answer,
        StatusCode::FORBIDDEN,
        "AccessDenied",
        &["presigned request expired"],
    )
    .await;
}

/// Revokes what `scope` names now, as `rolegate revoke` does.
async fn revoke(app: &TestApp, scope: RevocationScope, reason: &str) {
    let now = app.now().timestamp();
    let store = app.app().store.clone();
    app.app()
        .revocations
        .revoke(
            store.as_ref(),
            Revocation {
                scope,
                issued_before: now + 1,
                created_at: now,
                reason: reason.to_owned(),
                expires_at: now + 43_200,
            },
        )
        .await
        .unwrap_or_else(|e| panic!("revoke: {e}"));
}

/// Revokes one session by its id, as `rolegate revoke --scope session` does.
async fn revoke_session(app: &TestApp, creds: &Creds, reason: &str) {
    let id = app
        .app()
        .keys
        .unseal_session(&creds.session_token)
        .unwrap_or_else(|e| panic!("unseal: {e}"))
        .session_id;
    revoke(app, RevocationScope::Session(id), reason).await;
}

async fn chain(app: &TestApp, from: &Creds, role: &str, name: &str) -> Creds {
    let answer = sts_client(app, Some(from))
        .assume_role()
        .role_arn(role_arn(role))
        .role_session_name(name)
        .send()
        .await
        .unwrap_or_else(|e| panic!("AssumeRole {role}: {e:?}"));
    creds_of(answer.credentials())
}

async fn works(app: &TestApp, creds: &Creds) -> Result<(), String> {
    match sts_client(app, Some(creds))
        .get_caller_identity()
        .send()
        .await
    {
        Ok(_) => Ok(()),
        Err(e) => Err(e.code().unwrap_or("no code").to_owned()),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn revoking_a_session_ends_the_sessions_chained_from_it_and_no_other() {
    let idp = Idp::start().await;
    let start = Utc::now().with_nanosecond(0).unwrap();
    let app = TestApp::builder()
        .issuer(idp.idp.issuer())
        .fixed_clock(start)
        .role(
            RoleSpec::new("web-root", web_trust(&idp.prefix(), &[], ""))
                .policy("chain", allow(&["sts:AssumeRole"], &role_arn("chain-a"))),
        )
        .role(
            RoleSpec::new("chain-a", aws_trust(&[&role_arn("web-root")], &[]))
                .policy("chain", allow(&["sts:AssumeRole"], &role_arn("chain-b"))),
        )
        .role(RoleSpec::new(
            "chain-b",
            aws_trust(&[&role_arn("chain-a")], &[]),
        ))
        .start()
        .await;
    let token = idp.idp.id_token("hana", json!({})).await;
    let web = app
        .credentials_for(&role_arn("web-root"), "hana", &token)
        .await;
    let a1 = chain(&app, &web, "chain-a", "a1").await;
    let b1 = chain(&app, &a1, "chain-b", "b1").await;
    let a2 = chain(&app, &web, "chain-a", "a2").await;

    // The grandchild carries both sessions above it, the first of the chain first.
    let id = |c: &Creds| app.app().keys.unseal_session(&c.session_token).unwrap();
    assert_eq!(
        id(&b1).parents,
        vec![id(&web).session_id, id(&a1).session_id]
    );
    assert!(id(&web).parents.is_empty());

    revoke_session(&app, &a1, "a1 leaked").await;
    assert_eq!(works(&app, &a1).await, Err("ExpiredToken".to_owned()));
    assert_eq!(
        works(&app, &b1).await,
        Err("ExpiredToken".to_owned()),
        "a session chained from a revoked one still works"
    );
    assert_eq!(works(&app, &web).await, Ok(()), "the parent was ended");
    assert_eq!(works(&app, &a2).await, Ok(()), "a sibling was ended");
    let deny = app
        .audit_events()
        .await
        .into_iter()
        .rev()
        .find(|e| e.action == "GetCallerIdentity" && e.decision == "deny")
        .unwrap_or_else(|| panic!("no deny event"));
    assert!(
        deny.reason
            .as_deref()
            .is_some_and(|r| r.contains("a1 leaked")),
        "{deny:?}"
    );

    // Ending the first session of the chain ends everything below it.
    revoke_session(&app, &web, "root leaked").await;
    assert_eq!(works(&app, &web).await, Err("ExpiredToken".to_owned()));
    assert_eq!(works(&app, &a2).await, Err("ExpiredToken".to_owned()));
}
