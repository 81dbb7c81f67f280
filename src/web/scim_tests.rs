//! `/scim/v2` through the router: every endpoint, every refusal (each leaving the directory and
//! the revocations as they were, and audited with its reason), the separation of providers, and
//! deprovisioning through the decision core.

use crate::app::App;
use crate::authz::gate::{self, SignedInIdentity};
use axum::body::Body;
use axum::http::{header, HeaderMap, Method, Request, StatusCode};
use serde_json::{json, Value};
use std::sync::Arc;

const T0: i64 = 1_700_000_000;
const OKTA: &str = "scim-token-of-the-corp-directory-0000000001";
const ENTRA: &str = "scim-token-of-the-partner-directory-000002";
const TINY: &str = "scim-token-of-a-rate-limited-directory-0003";
const ADMIN: &str = "an-admin-token-of-forty-characters-000001";
const USERS: &str = "/scim/v2/Users";
const GROUPS: &str = "/scim/v2/Groups";

/// Three providers, each with its SCIM client (`okta` of `corp`, `entra` of `partner`,
/// `tiny-directory` of `tiny`, rate-limited); the group `Engineering` of corp and of tiny gets the
/// permission set Engineering; the admin API.
fn config() -> crate::testing::TestConfig {
    let engineering = "group = \"Engineering\"";
    crate::testing::config()
        .admin_token("ADMIN", ADMIN)
        .oidc_provider("corp", "https://login.corp.example", "rolegate", "")
        .oidc_provider("partner", "https://login.partner.example", "rolegate", "")
        .oidc_provider("tiny", "https://login.tiny.example", "rolegate", "")
        .unassigned_set("Engineering", "", &[("all", crate::testing::ALLOW_ALL)])
        .assignment_rule(
            "corp",
            "Engineering",
            &[crate::testing::ACCOUNT],
            engineering,
        )
        .scim_client(
            "okta",
            "corp",
            "userName",
            ("OKTA", OKTA),
            "groups = \"both\"",
        )
        .scim_client("entra", "partner", "externalId", ("ENTRA", ENTRA), "")
        .scim_client(
            "tiny-directory",
            "tiny",
            "userName",
            ("TINY", TINY),
            "rate = { per_minute = 1, burst = 10 }\nrequire_provisioned = true",
        )
        .assignment_rule(
            "tiny",
            "Engineering",
            &[crate::testing::ACCOUNT],
            engineering,
        )
}

async fn app() -> Arc<App> {
    config().build(T0).await.0
}

/// An answer: status, headers, JSON body (`Null` when empty).
struct Answer {
    status: StatusCode,
    headers: HeaderMap,
    body: Value,
}

impl Answer {
    fn header(&self, name: header::HeaderName) -> String {
        self.headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_string()
    }
    fn scim_type(&self) -> &str {
        self.body["scimType"].as_str().unwrap_or_default()
    }
}

async fn send(app: &Arc<App>, req: Request<Body>) -> Answer {
    let resp = crate::testing::send(app, req).await;
    let status = resp.status();
    let headers = resp.headers().clone();
    let bytes = axum::body::to_bytes(resp.into_body(), usize::MAX)
        .await
        .unwrap();
    let body = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
    Answer {
        status,
        headers,
        body,
    }
}

fn request(method: Method, path: &str, token: Option<&str>, body: Option<&Value>) -> Request<Body> {
    let mut b = Request::builder().method(method).uri(path);
    if let Some(t) = token {
        b = b.header(header::AUTHORIZATION, format!("Bearer {t}"));
    }
    match body {
        Some(v) => b
            .header(header::CONTENT_TYPE, "application/scim+json")
            .body(Body::from(v.to_string()))
            .unwrap(),
        None => b.body(Body::empty()).unwrap(),
    }
}

async fn call(
    app: &Arc<App>,
    method: Method,
    path: &str,
    token: &str,
    body: Option<Value>,
) -> Answer {
    send(app, request(method, path, Some(token), body.as_ref())).await
}

fn user(name: &str) -> Value {
    json!({
        "schemas": [crate::scim::USER_SCHEMA],
        "userName": name,
        "name": {"givenName": "Ana", "familyName": "Lima"},
        "emails": [{"value": name, "type": "work", "primary": true}],
        "active": true
    })
}

fn patch(ops: Value) -> Value {
    json!({"schemas": [crate::scim::PATCH_OP], "Operations": ops})
}

/// `PATCH path` of the operations `ops` with `token`.
async fn patch_call(app: &Arc<App>, path: &str, token: &str, ops: Value) -> Answer {
    call(app, Method::PATCH, path, token, Some(patch(ops))).await
}

/// `PATCH path` of the operations `ops` by okta, which succeeds.
async fn patched(app: &Arc<App>, path: &str, ops: Value) -> Answer {
    let a = patch_call(app, path, OKTA, ops).await;
    assert_eq!(a.status, StatusCode::OK, "{}", a.body);
    a
}

/// Everything a SCIM request could change: the provisioned records of every provider and the
/// revocations.
async fn state(app: &App) -> Vec<String> {
    let mut out = Vec::new();
    for p in ["corp", "partner", "tiny"] {
        for k in [
            "scim_user",
            "scim_group",
            "scim_user_name",
            "scim_subject",
            "scim_gone",
        ] {
            for (key, v) in app.store.dir_list(&format!("{k}/{p}")).await.unwrap() {
                out.push(format!("{k}/{p} {key} v{} {}", v.version, v.value));
            }
        }
    }
    for r in app.store.revocations().await.unwrap() {
        out.push(format!("revocation {:?}", r.scope));
    }
    out.sort();
    out
}

/// The audit event of the request that got answer `a`, which must be of `action`: (decision,
/// reason, principal).
async fn last(app: &App, a: &Answer, action: &str) -> (String, String, String) {
    let ev = crate::testing::audit_event(
        app,
        &a.header(header::HeaderName::from_static("x-request-id")),
    )
    .await;
    assert_eq!(ev.action, action);
    (
        ev.decision.clone(),
        ev.reason.clone().unwrap_or_default(),
        ev.principal.clone().unwrap_or_default(),
    )
}

/// A refused request: method, path, body, If-Match, status, scimType (empty: none checked) and
/// the audited action.
type Case = (
    Method,
    String,
    Option<Value>,
    Option<&'static str>,
    u16,
    &'static str,
    &'static str,
);

async fn create_user(app: &Arc<App>, token: &str, name: &str) -> String {
    let a = call(app, Method::POST, USERS, token, Some(user(name))).await;
    assert_eq!(a.status, StatusCode::CREATED, "{}", a.body);
    a.body["id"].as_str().unwrap().to_string()
}

/// Creates the group `name` with the one member `member`; its id.
async fn create_group(app: &Arc<App>, token: &str, name: &str, member: &str) -> String {
    let group = json!({
        "schemas": [crate::scim::GROUP_SCHEMA],
        "displayName": name,
        "members": [{"value": member}]
    });
    let a = call(app, Method::POST, GROUPS, token, Some(group)).await;
    assert_eq!(a.status, StatusCode::CREATED, "{}", a.body);
    a.body["id"].as_str().unwrap().to_string()
}

#[tokio::test]
async fn discovery_answers_scim_json_to_a_client() {
    let app = app().await;
    for path in [
        "/scim/v2/ServiceProviderConfig",
        "/scim/v2/Schemas",
        "/scim/v2/ResourceTypes",
    ] {
        let a = call(&app, Method::GET, path, OKTA, None).await;
        assert_eq!(a.status, StatusCode::OK, "{path}");
        assert_eq!(
            a.header(header::CONTENT_TYPE),
            crate::scim::MEDIA_TYPE,
            "{path}"
        );
        assert!(a.body["schemas"].is_array(), "{path}: {}", a.body);
    }
    let a = call(&app, Method::GET, "/scim/v2/Bulk", OKTA, None).await;
    assert_eq!(a.status, StatusCode::NOT_FOUND);
    assert_eq!(a.body["schemas"][0], crate::scim::ERROR_SCHEMA);
}

#[tokio::test]
async fn users_are_created_read_listed_replaced_patched_and_deleted() {
    let app = app().await;
    let a = call(
        &app,
        Method::POST,
        USERS,
        OKTA,
        Some(user("ana@corp.example")),
    )
    .await;
    assert_eq!(a.status, StatusCode::CREATED, "{}", a.body);
    let id = a.body["id"].as_str().unwrap().to_string();
    assert_eq!(a.header(header::ETAG), "W/\"1\"");
    assert_eq!(
        a.header(header::LOCATION),
        format!("http://127.0.0.1:8080/scim/v2/Users/{id}")
    );
    assert_eq!(a.header(header::CONTENT_TYPE), crate::scim::MEDIA_TYPE);
    assert_eq!(a.body["meta"]["version"], "W/\"1\"");
    let (decision, _, principal) = last(&app, &a, "scim:CreateUser").await;
    assert_eq!((decision.as_str(), principal.as_str()), ("allow", "okta"));

    let a = call(&app, Method::GET, &format!("{USERS}/{id}"), OKTA, None).await;
    assert_eq!(a.status, StatusCode::OK);
    assert_eq!(a.body["userName"], "ana@corp.example");
    assert_eq!(a.header(header::ETAG), "W/\"1\"");

    create_user(&app, OKTA, "bo@corp.example").await;
    let a = call(
        &app,
        Method::GET,
        &format!("{USERS}?filter=userName%20eq%20%22ANA@corp.example%22"),
        OKTA,
        None,
    )
    .await;
    assert_eq!(a.status, StatusCode::OK, "{}", a.body);
    assert_eq!(a.body["totalResults"], 1, "{}", a.body);
    assert_eq!(a.body["Resources"][0]["id"], id.as_str());
    let a = call(
        &app,
        Method::GET,
        &format!("{USERS}?startIndex=2&count=1"),
        OKTA,
        None,
    )
    .await;
    assert_eq!(a.body["totalResults"], 2);
    assert_eq!(a.body["startIndex"], 2);
    assert_eq!(a.body["itemsPerPage"], 1);
    let a = call(
        &app,
        Method::GET,
        &format!("{USERS}/{id}?attributes=userName"),
        OKTA,
        None,
    )
    .await;
    assert_eq!(a.body["userName"], "ana@corp.example");
    assert!(a.body.get("emails").is_none(), "{}", a.body);

    let mut replaced = user("ana@corp.example");
    replaced["displayName"] = json!("Ana Lima");
    let a = call(
        &app,
        Method::PUT,
        &format!("{USERS}/{id}"),
        OKTA,
        Some(replaced),
    )
    .await;
    assert_eq!(a.status, StatusCode::OK, "{}", a.body);
    assert_eq!(a.body["displayName"], "Ana Lima");
    assert_eq!(a.header(header::ETAG), "W/\"2\"");
    assert_eq!(last(&app, &a, "scim:ReplaceUser").await.0, "allow");

    let a = patched(
        &app,
        &format!("{USERS}/{id}"),
        json!([{"op": "Replace", "path": "displayName", "value": "A. Lima"}]),
    )
    .await;
    assert_eq!(a.body["displayName"], "A. Lima");
    assert_eq!(a.header(header::ETAG), "W/\"3\"");

    let a = call(&app, Method::DELETE, &format!("{USERS}/{id}"), OKTA, None).await;
    assert_eq!(a.status, StatusCode::NO_CONTENT);
    assert_eq!(last(&app, &a, "scim:DeleteUser").await.0, "allow");
    let a = call(&app, Method::GET, &format!("{USERS}/{id}"), OKTA, None).await;
    assert_eq!(a.status, StatusCode::NOT_FOUND);
    assert_eq!(a.body["status"], "404");
}

#[tokio::test]
async fn groups_hold_members_and_users_show_their_groups() {
    let app = app().await;
    let ana = create_user(&app, OKTA, "ana@corp.example").await;
    let bo = create_user(&app, OKTA, "bo@corp.example").await;
    let gid = create_group(&app, OKTA, "Engineering", &ana).await;
    let a = patched(
        &app,
        &format!("{GROUPS}/{gid}"),
        json!([{"op": "add", "path": "members", "value": [{"value": bo}]}]),
    )
    .await;
    assert_eq!(
        a.body["members"].as_array().map(Vec::len),
        Some(2),
        "{}",
        a.body
    );
    let a = call(&app, Method::GET, &format!("{USERS}/{bo}"), OKTA, None).await;
    assert_eq!(a.body["groups"][0]["display"], "Engineering", "{}", a.body);
    let a = patched(
        &app,
        &format!("{GROUPS}/{gid}"),
        json!([{"op": "remove", "path": format!("members[value eq \"{bo}\"]")}]),
    )
    .await;
    assert_eq!(
        a.body["members"].as_array().map(Vec::len),
        Some(1),
        "{}",
        a.body
    );
    let a = call(&app, Method::GET, GROUPS, OKTA, None).await;
    assert_eq!(a.body["totalResults"], 1);
    let a = call(&app, Method::DELETE, &format!("{GROUPS}/{gid}"), OKTA, None).await;
    assert_eq!(a.status, StatusCode::NO_CONTENT);
    assert_eq!(last(&app, &a, "scim:DeleteGroup").await.0, "allow");
}

#[tokio::test]
async fn tokens_missing_wrong_or_of_another_provider_see_and_change_nothing() {
    let app = app().await;
    let id = create_user(&app, OKTA, "ana@corp.example").await;
    let before = state(&app).await;
    // No token, a wrong one, a lower-case scheme with a wrong one.
    for token in [None, Some("scim-token-of-nobody-at-all-00000000000000")] {
        for (method, path, body) in [
            (Method::GET, USERS.to_string(), None),
            (
                Method::POST,
                USERS.to_string(),
                Some(user("eve@corp.example")),
            ),
            (Method::DELETE, format!("{USERS}/{id}"), None),
            (
                Method::GET,
                "/scim/v2/ServiceProviderConfig".to_string(),
                None,
            ),
        ] {
            let a = send(&app, request(method.clone(), &path, token, body.as_ref())).await;
            assert_eq!(a.status, StatusCode::UNAUTHORIZED, "{method} {path}");
            assert!(a.header(header::WWW_AUTHENTICATE).starts_with("Bearer"));
            assert_eq!(a.body["schemas"][0], crate::scim::ERROR_SCHEMA);
            let ev = crate::testing::audit_event(
                &app,
                &a.header(header::HeaderName::from_static("x-request-id")),
            )
            .await;
            assert_eq!(ev.decision, "deny");
            let reason = ev.reason.unwrap_or_default();
            let want = if token.is_none() {
                "no bearer token"
            } else {
                "the bearer token is no SCIM client's"
            };
            assert_eq!(reason, want);
        }
    }
    // The partner directory cannot see or touch corp's people.
    let a = call(&app, Method::GET, &format!("{USERS}/{id}"), ENTRA, None).await;
    assert_eq!(a.status, StatusCode::NOT_FOUND);
    let a = call(&app, Method::GET, USERS, ENTRA, None).await;
    assert_eq!(a.body["totalResults"], 0);
    let mut off = user("ana@corp.example");
    off["active"] = json!(false);
    let a = call(
        &app,
        Method::PUT,
        &format!("{USERS}/{id}"),
        ENTRA,
        Some(off),
    )
    .await;
    assert_eq!(a.status, StatusCode::NOT_FOUND);
    let a = patch_call(
        &app,
        &format!("{USERS}/{id}"),
        ENTRA,
        json!([{"op": "replace", "path": "active", "value": false}]),
    )
    .await;
    assert_eq!(a.status, StatusCode::NOT_FOUND);
    let a = call(&app, Method::DELETE, &format!("{USERS}/{id}"), ENTRA, None).await;
    assert_eq!(a.status, StatusCode::NOT_FOUND);
    let (decision, _, principal) = last(&app, &a, "scim:DeleteUser").await;
    assert_eq!((decision.as_str(), principal.as_str()), ("deny", "entra"));
    assert_eq!(state(&app).await, before, "nothing changed");
    assert_eq!(
        gate::provisioned(&app, "corp", "ana@corp.example").unwrap(),
        Some(vec![])
    );
}

#[tokio::test]
async fn bad_input_is_refused_with_the_right_error_and_changes_nothing() {
    let app = app().await;
    let id = create_user(&app, OKTA, "ana@corp.example").await;
    let path = format!("{USERS}/{id}");
    let before = state(&app).await;
    let big = json!({"schemas": [crate::scim::USER_SCHEMA], "userName": "x", "displayName": "a".repeat(super::BODY_LIMIT)});
    let cases: Vec<Case> = vec![
        (
            Method::POST,
            USERS.into(),
            Some(user("ANA@corp.example")),
            None,
            409,
            "uniqueness",
            "scim:CreateUser",
        ),
        (
            Method::GET,
            format!("{USERS}?filter=userName%20eq"),
            None,
            None,
            400,
            "invalidFilter",
            "scim:ListUsers",
        ),
        (
            Method::GET,
            format!("{USERS}?filter=userName%20xx%20%22a%22"),
            None,
            None,
            400,
            "invalidFilter",
            "scim:ListUsers",
        ),
        (
            Method::POST,
            USERS.into(),
            Some(json!({"schemas": [crate::scim::USER_SCHEMA], "userName": "new", "shoeSize": 44})),
            None,
            400,
            "",
            "scim:CreateUser",
        ),
        (
            Method::POST,
            USERS.into(),
            Some(json!({"schemas": [crate::scim::USER_SCHEMA], "userName": 42})),
            None,
            400,
            "invalidValue",
            "scim:CreateUser",
        ),
        (
            Method::POST,
            USERS.into(),
            Some(json!({"schemas": [crate::scim::USER_SCHEMA], "displayName": "no name"})),
            None,
            400,
            "",
            "scim:CreateUser",
        ),
        (
            Method::PUT,
            path.clone(),
            Some(user("ana@corp.example")),
            Some("W/\"9\""),
            412,
            "",
            "scim:ReplaceUser",
        ),
        (
            Method::PATCH,
            path.clone(),
            Some(patch(
                json!([{"op": "replace", "path": "active", "value": false}]),
            )),
            Some("W/\"9\""),
            412,
            "",
            "scim:PatchUser",
        ),
        (
            Method::DELETE,
            path.clone(),
            None,
            Some("W/\"9\""),
            412,
            "",
            "scim:DeleteUser",
        ),
        (
            Method::PATCH,
            path.clone(),
            Some(patch(
                json!([{"op": "replace", "path": "active", "value": "maybe"}]),
            )),
            None,
            400,
            "invalidValue",
            "scim:PatchUser",
        ),
        (
            Method::PATCH,
            path.clone(),
            Some(patch(json!([{"op": "remove"}]))),
            None,
            400,
            "noTarget",
            "scim:PatchUser",
        ),
        (
            Method::POST,
            USERS.into(),
            Some(big),
            None,
            413,
            "",
            "scim:CreateUser",
        ),
        (
            Method::POST,
            GROUPS.into(),
            Some(
                json!({"schemas": [crate::scim::GROUP_SCHEMA], "displayName": "G", "members": [{"value": "no-such-user"}]}),
            ),
            None,
            400,
            "invalidValue",
            "scim:CreateGroup",
        ),
    ];
    for (method, p, body, if_match, status, scim_type, action) in cases {
        let mut req = request(method.clone(), &p, Some(OKTA), body.as_ref());
        if let Some(m) = if_match {
            req.headers_mut()
                .insert(header::IF_MATCH, m.parse().unwrap());
        }
        let a = send(&app, req).await;
        let case = format!("{method} {p} → {} {}", a.status, a.body);
        assert_eq!(a.status.as_u16(), status, "{case}");
        assert_eq!(a.body["schemas"][0], crate::scim::ERROR_SCHEMA, "{case}");
        assert_eq!(a.body["status"], status.to_string(), "{case}");
        if !scim_type.is_empty() {
            assert_eq!(a.scim_type(), scim_type, "{case}");
        }
        let (decision, reason, principal) = last(&app, &a, action).await;
        assert_eq!(
            (decision.as_str(), principal.as_str()),
            ("deny", "okta"),
            "{case}"
        );
        assert!(!reason.is_empty(), "{case}: a reason is audited");
        assert_eq!(state(&app).await, before, "{case}: nothing changed");
    }
    // Neither JSON nor SCIM JSON.
    let req = Request::builder()
        .method(Method::POST)
        .uri(USERS)
        .header(header::AUTHORIZATION, format!("Bearer {OKTA}"))
        .header(header::CONTENT_TYPE, "text/plain")
        .body(Body::from(user("zed").to_string()))
        .unwrap();
    assert_eq!(send(&app, req).await.status.as_u16(), 415);
    // Plain application/json is accepted.
    let req = Request::builder()
        .method(Method::POST)
        .uri(USERS)
        .header(header::AUTHORIZATION, format!("Bearer {OKTA}"))
        .header(header::CONTENT_TYPE, "application/json")
        .body(Body::from(user("zed@corp.example").to_string()))
        .unwrap();
    assert_eq!(send(&app, req).await.status, StatusCode::CREATED);
}

#[tokio::test]
async fn a_client_past_its_rate_gets_429_with_retry_after() {
    let app = app().await;
    for _ in 0..10 {
        let a = call(&app, Method::GET, USERS, TINY, None).await;
        assert_eq!(a.status, StatusCode::OK);
    }
    let before = state(&app).await;
    let a = call(
        &app,
        Method::POST,
        USERS,
        TINY,
        Some(user("x@tiny.example")),
    )
    .await;
    assert_eq!(a.status, StatusCode::TOO_MANY_REQUESTS);
    assert!(!a.header(header::RETRY_AFTER).is_empty());
    assert_eq!(state(&app).await, before);
    let (decision, reason, _) = last(&app, &a, "scim:CreateUser").await;
    assert_eq!(decision, "deny");
    assert!(reason.contains("rate limit"), "{reason}");
    // Other clients have their own budget.
    assert_eq!(
        call(&app, Method::GET, USERS, OKTA, None).await.status,
        StatusCode::OK
    );
}

fn corp_person(subject: &str, signed_in_at: i64) -> SignedInIdentity {
    SignedInIdentity {
        provider: "corp".into(),
        subject: subject.into(),
        claims: serde_json::Map::from_iter([("sub".to_string(), json!(subject))]),
        mfa_time: None,
        local_groups: Vec::new(),
        origin_user: None,
        signed_in_at,
    }
}

#[tokio::test]
async fn deactivation_ends_sign_ins_and_credentials_at_once_and_reactivation_admits_new_ones() {
    let (app, clock) = config().build(T0).await;
    let subject = "ana@corp.example";
    let id = create_user(&app, OKTA, subject).await;
    create_group(&app, OKTA, "Engineering", &id).await;
    // Signed in (no group claim: the provisioned group gives the permission set).
    let before = corp_person(subject, T0);
    let (_, _, token) = crate::testing::assignment_credentials(
        &app,
        &before,
        crate::testing::ACCOUNT,
        "Engineering",
    )
    .await;
    assert!(!token.is_empty());
    assert!(gate::admit_federated(&app, "corp", subject, T0).is_ok());

    clock.advance(chrono::Duration::seconds(5));
    let a = patched(
        &app,
        &format!("{USERS}/{id}"),
        json!([{"op": "Replace", "path": "active", "value": "False"}]),
    )
    .await;
    assert_eq!(a.body["active"], false);
    let (decision, reason, _) = last(&app, &a, "scim:PatchUser").await;
    assert_eq!(decision, "allow");
    assert!(
        reason.contains("deprovisioned by SCIM client okta"),
        "{reason}"
    );

    // The sign-in, a new sign-in, a fresh token: all refused by the gate.
    let e = gate::recheck(&app, &before, false).await.unwrap_err();
    assert!(e.to_string().contains("revoked"), "{e}");
    let fresh = corp_person(subject, T0 + 10);
    clock.advance(chrono::Duration::seconds(5));
    let e = gate::recheck(&app, &fresh, false).await.unwrap_err();
    assert!(
        e.to_string().contains("deprovisioned (active is false)"),
        "{e}"
    );
    let e = gate::admit_federated(&app, "corp", subject, T0 + 10).unwrap_err();
    assert!(e.to_string().contains("deprovisioned"), "{e}");
    // Issued credentials: the subject is revoked.
    let revoked = app.store.revocations().await.unwrap();
    assert!(revoked.iter().any(|r| matches!(
        &r.scope,
        crate::store::RevocationScope::Subject { provider, subject: s } if provider == "corp" && s == subject
    )));

    // Reactivated: a new sign-in is admitted, the old one stays revoked.
    patched(
        &app,
        &format!("{USERS}/{id}"),
        json!([{"op": "replace", "path": "active", "value": true}]),
    )
    .await;
    let later = corp_person(subject, T0 + 10);
    assert!(gate::recheck(&app, &later, false).await.is_ok());
    assert!(gate::recheck(&app, &before, false).await.is_err());

    // Deleted: refused again, also when the provider vouches for them afresh.
    clock.advance(chrono::Duration::seconds(5));
    let a = call(&app, Method::DELETE, &format!("{USERS}/{id}"), OKTA, None).await;
    assert_eq!(a.status, StatusCode::NO_CONTENT);
    let e = gate::recheck(&app, &corp_person(subject, T0 + 30), false)
        .await
        .unwrap_err();
    assert!(e.to_string().contains("deprovisioned (deleted)"), "{e}");
    // Someone never provisioned is treated as without SCIM.
    assert!(
        gate::recheck(&app, &corp_person("nobody@corp.example", T0 + 30), false)
            .await
            .is_ok()
    );
}

#[tokio::test]
async fn provisioned_groups_give_permission_sets_before_the_first_sign_in() {
    let app = app().await;
    let id = create_user(&app, OKTA, "cy@corp.example").await;
    let explain = |subject: &str| {
        Request::builder()
            .method(Method::POST)
            .uri("/admin/assignments/explain")
            .header(header::AUTHORIZATION, format!("Bearer {ADMIN}"))
            .header(header::CONTENT_TYPE, "application/json")
            .body(Body::from(
                json!({"provider": "corp", "subject": subject}).to_string(),
            ))
            .unwrap()
    };
    let a = send(&app, explain("cy@corp.example")).await;
    assert_eq!(a.status, StatusCode::OK, "{}", a.body);
    assert_eq!(a.body["assignments"], json!([]));
    create_group(&app, OKTA, "Engineering", &id).await;
    let a = send(&app, explain("cy@corp.example")).await;
    assert_eq!(
        a.body["assignments"][0]["permission_set"], "Engineering",
        "{}",
        a.body
    );
    assert_eq!(a.body["groups"], json!(["Engineering"]));
    // The portal's view of the person, once signed in, is the same.
    let admitted = gate::admit_sign_in(&app, &corp_person("cy@corp.example", T0))
        .await
        .unwrap();
    assert!(gets_engineering(&app, &admitted));
}

/// Whether `admitted` is given credentials of permission set Engineering in the test account.
fn gets_engineering(app: &App, admitted: &gate::Admitted) -> bool {
    let mut ev = crate::audit::AuditEvent::new(app.clock.now(), "t", "portal:GetCredentials");
    crate::sts::credentials_for_assignment(
        app,
        admitted,
        crate::testing::ACCOUNT,
        "Engineering",
        &mut ev,
    )
    .is_ok()
}

#[tokio::test]
async fn require_provisioned_refuses_people_never_provisioned_and_claim_groups_ignore_provisioned_ones(
) {
    let app = app().await;
    let person = |subject: &str| SignedInIdentity {
        provider: "tiny".into(),
        ..corp_person(subject, T0)
    };
    // Nobody provisioned: refused at every gate, with the reason.
    let e = gate::recheck(&app, &person("lee"), false)
        .await
        .unwrap_err();
    assert_eq!(
        e.to_string(),
        "lee at tiny is not provisioned by SCIM client tiny-directory, which the provider requires"
    );
    assert!(gate::admit_federated(&app, "tiny", "lee", T0).is_err());
    // Provisioned (and in group Engineering): admitted; but the client's groups setting is the
    // default "claim", so the provisioned group gives nothing.
    let id = create_user(&app, TINY, "lee").await;
    create_group(&app, TINY, "Engineering", &id).await;
    let admitted = gate::admit_sign_in(&app, &person("lee")).await.unwrap();
    assert!(!gets_engineering(&app, &admitted));
    // The provider's own group claim still counts.
    let mut claimed = person("lee");
    claimed
        .claims
        .insert("groups".into(), json!(["Engineering"]));
    let admitted = gate::admit_sign_in(&app, &claimed).await.unwrap();
    assert!(gets_engineering(&app, &admitted));
}

#[path = "scim_list_tests.rs"]
mod list;
