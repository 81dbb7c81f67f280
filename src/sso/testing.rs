//! Test fixture of the SSO modules: an app with `[portal]` and `[sso]`, three accounts and a person
//! with two permission sets (one needing MFA), and tokens issued for them without the approval
//! pages.

use crate::app::App;
use crate::clock::FixedClock;
use crate::portal::SignedInIdentity;
use axum::body::Body;
use axum::http::Request;
use axum::response::Response;
use std::sync::Arc;
use tower::ServiceExt;

/// The fixture's configuration; `{sso}` is replaced by extra `[sso]` lines.
pub const CONFIG: &str = r#"
[server]
listen = "127.0.0.1:0"
public_url = "http://127.0.0.1:8080"
[store]
kind = "memory"
[[accounts]]
id = "111122223333"
name = "main"
[[accounts]]
id = "222233334444"
name = "staging"
[[accounts]]
id = "333344445555"
name = "prod"
[[permission_sets]]
name = "Dev"
session_duration = "PT2H"
[[permission_sets.policies]]
name = "all"
document = '{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"*","Resource":"*"}]}'
[[permission_sets]]
name = "Ops"
mfa = "required"
[[permission_sets.policies]]
name = "all"
document = '{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"*","Resource":"*"}]}'
[[assignment_rules]]
provider = "local"
permission_set = "Dev"
accounts = ["111122223333", "222233334444", "333344445555"]
local_group = "dev"
[[assignment_rules]]
provider = "local"
permission_set = "Ops"
accounts = ["111122223333"]
local_group = "dev"
[portal]
[sso]
access_token_minutes = 60
session_hours = 8
{sso}
"#;

/// The fixture's start time (Unix seconds).
pub const T0: i64 = 1_700_000_000;

/// An app over the fixture configuration with `sso` lines added to `[sso]`.
pub async fn app_with(sso: &str) -> (Arc<App>, FixedClock) {
    crate::testing::app(&CONFIG.replace("{sso}", sso), T0).await
}

/// The directory user `ana` of group `dev`, signed in with or without MFA.
pub fn ana(mfa_time: Option<i64>) -> SignedInIdentity {
    SignedInIdentity {
        provider: "local".into(),
        subject: "ana".into(),
        claims: serde_json::Map::new(),
        mfa_time,
        local_groups: vec!["dev".into()],
        origin_user: None,
        signed_in_at: 0,
    }
}

/// `identity` as a sign-in of the directory: a local identity names its directory user, which is
/// created (in the identity's groups) when the fixture does not have it yet.
pub async fn in_directory(app: &App, mut identity: SignedInIdentity) -> SignedInIdentity {
    if identity.provider != "local" || identity.origin_user.is_some() {
        return identity;
    }
    let d = app.directory.clone().expect("the fixture has a directory");
    let user = match d.user(&identity.subject).await {
        Ok(u) => u,
        Err(_) => {
            d.create_user(&identity.subject, None).await.unwrap();
            for g in &identity.local_groups {
                if d.group(g).await.is_err() {
                    d.create_group(g, None).await.unwrap();
                }
                d.add_user_to_group(&identity.subject, g).await.unwrap();
            }
            d.user(&identity.subject).await.unwrap()
        }
    };
    identity.origin_user = Some(user.user_id);
    identity
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

/// Sends `req` through the whole router.
pub async fn send(app: &Arc<App>, req: Request<Body>) -> Response {
    crate::web::router(app.clone()).oneshot(req).await.unwrap()
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
