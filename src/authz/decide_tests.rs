//! Every edge that authorizes a signed caller answers as the decision core does. For each caller
//! in [`CALLERS`] (an identity policy that allows, none, an explicit deny, an MFA condition not
//! met, a session policy that does not allow, and controls that do allow) and each edge in
//! [`EDGES`], a real request goes through the router, [`decide`] is asked the same question
//! directly, and the edge's outcome must be the verdict: allowed ⇔ the action succeeds, denied ⇔
//! the edge's own wire error. A denial's audit event carries the core's explanation.

use super::decide::{decide, Question, Verdict};
use crate::app::App;
use crate::audit::AuditEvent;
use crate::credentials::SessionClaims;
use crate::policy::{ContextValue, RequestContext, ResourceAccount};
use crate::sigv4::{SignedRequest, VerifyOptions};
use crate::web::testing::{form_post, sign_request, sts_post, text_of, Creds, HOST, T0};
use axum::body::Body;
use axum::http::{header, HeaderMap, Request, StatusCode};
use serde_json::{json, Value};
use std::collections::HashMap;
use std::net::{IpAddr, Ipv4Addr};
use std::sync::Arc;
use tower::ServiceExt;

const ROLE_ARN: &str = "arn:aws:iam::111122223333:role/Worker";
/// The directory user the admin API is asked about.
const USER_ARN: &str = "arn:aws:iam::111122223333:user/ana";
/// The federated user `GetFederationToken` is asked for.
const FEDERATED_ARN: &str = "arn:aws:sts::111122223333:federated-user/app";
/// The object the downstream service and the console's simulation ask about.
const OBJECT_ARN: &str = "arn:aws:s3:::bucket/key";
const SERVICE_TOKEN: &str = "objstore-token-0123456789abcdef0123456789";
/// Where in-process requests come from, as every edge sees them.
const LOOPBACK: IpAddr = IpAddr::V4(Ipv4Addr::LOCALHOST);

const WORKER_TRUST: &str = r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"AWS":"arn:aws:iam::111122223333:root"},"Action":"sts:AssumeRole"}]}"#;

/// Every action an edge here asks about.
const TESTED: [&str; 6] = [
    "rolegate:GetUser",
    "sts:GetFederationToken",
    "sts:DecodeAuthorizationMessage",
    "sts:AssumeRole",
    "iam:SimulatePrincipalPolicy",
    "s3:GetObject",
];

/// A session policy allowing something else only.
const NARROW: &str = r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"s3:PutObject","Resource":"*"}]}"#;

/// How a caller signs.
#[derive(Clone, Copy, Debug)]
enum Who {
    /// The directory user's long-term access key.
    Key(&'static str),
    /// Its `GetSessionToken` session.
    Session(&'static str),
    /// Its session, with MFA.
    SessionWithMfa(&'static str),
    /// The federated user `ana` gets from `GetFederationToken` with [`NARROW`] as its policy.
    Federated,
    /// A session of the role `Worker` that `ana` assumed, with this session policy.
    RoleSession(Option<&'static str>),
}

/// The callers: what their policies say, how they sign, and whether the actions tested are
/// allowed. Users: `ana` is allowed [`TESTED`]; `bo` has no policy; `cy` is allowed everything but
/// denied [`TESTED`]; `di` is allowed everything when `aws:MultiFactorAuthPresent` is true.
const CALLERS: [(&str, Who, bool); 12] = [
    ("identity policy allows (key)", Who::Key("ana"), true),
    (
        "identity policy allows (session)",
        Who::Session("ana"),
        true,
    ),
    ("no policy (key)", Who::Key("bo"), false),
    ("no policy (session)", Who::Session("bo"), false),
    ("explicit deny (key)", Who::Key("cy"), false),
    ("explicit deny (session)", Who::Session("cy"), false),
    ("MFA required, none (key)", Who::Key("di"), false),
    ("MFA required, none (session)", Who::Session("di"), false),
    ("MFA required, present", Who::SessionWithMfa("di"), true),
    ("federated user's session policy", Who::Federated, false),
    ("role session, role allows", Who::RoleSession(None), true),
    (
        "role session's session policy",
        Who::RoleSession(Some(NARROW)),
        false,
    ),
];

/// The edges that authorize a signed caller by asking [`decide`].
#[derive(Clone, Copy, Debug)]
enum Edge {
    /// `GET /admin/users/ana`.
    Admin,
    /// STS `GetFederationToken` (long-term keys only).
    GetFederationToken,
    /// STS `DecodeAuthorizationMessage`.
    DecodeAuthorizationMessage,
    /// STS `AssumeRole` of `Worker`, the caller's side.
    AssumeRole,
    /// IAM `SimulatePrincipalPolicy` of `Worker`: may the caller simulate?
    SimulatePrincipalPolicy,
    /// `POST /v1/authorize` for `s3:GetObject` by the signer of the request handed over.
    Authorize,
    /// The console's policy simulation of `s3:GetObject` (sessions only).
    Console,
}

const EDGES: [Edge; 7] = [
    Edge::Admin,
    Edge::GetFederationToken,
    Edge::DecodeAuthorizationMessage,
    Edge::AssumeRole,
    Edge::SimulatePrincipalPolicy,
    Edge::Authorize,
    Edge::Console,
];

/// A caller, ready to sign.
struct Caller {
    creds: Creds,
    /// The session the edges open for these credentials.
    claims: SessionClaims,
}

/// What an edge answered.
struct Seen {
    allowed: bool,
    /// The request id of the audit event (edges that audit their denials).
    request_id: Option<String>,
    /// The decision the edge shows, where it shows one.
    effect: Option<String>,
    /// The answer, for messages.
    body: String,
}

struct Fixture {
    app: Arc<App>,
    /// A denial sealed for `DecodeAuthorizationMessage` in the account.
    message: String,
    /// Each directory user's long-term access key.
    keys: HashMap<&'static str, Creds>,
}

/// A response's status, request id and body.
struct Answer {
    status: StatusCode,
    request_id: Option<String>,
    headers: HeaderMap,
    body: String,
}

impl Fixture {
    async fn new() -> Self {
        let (app, _clock) = crate::testing::config()
            .role("Worker", WORKER_TRUST)
            .with(&format!(
                "[[roles.policies]]\nname = \"all\"\ndocument = '''{}'''\n",
                crate::testing::ALLOW_ALL
            ))
            .service("objstore", "s3", SERVICE_TOKEN)
            .with("[portal]\n")
            .build(T0)
            .await;
        let d = app.directory.clone().unwrap();
        let statement = |effect: &str, action: Value, condition: Value| {
            let mut s = json!({"Effect": effect, "Action": action, "Resource": "*"});
            if !condition.is_null() {
                s["Condition"] = condition;
            }
            s
        };
        let mfa = json!({"Bool": {"aws:MultiFactorAuthPresent": "true"}});
        let users = [
            ("ana", vec![statement("Allow", json!(TESTED), Value::Null)]),
            ("bo", vec![]),
            (
                "cy",
                vec![
                    statement("Allow", json!("*"), Value::Null),
                    statement("Deny", json!(TESTED), Value::Null),
                ],
            ),
            ("di", vec![statement("Allow", json!("*"), mfa)]),
        ];
        let mut keys = HashMap::new();
        for (name, statements) in users {
            crate::testing::directory_user(&app, name, &[]).await;
            keys.insert(name, crate::web::testing::access_key(&app, name).await);
            if !statements.is_empty() {
                let doc = json!({"Version": "2012-10-17", "Statement": statements});
                d.put_policy(crate::idp::local::Holder::User(name), "p", &doc.to_string())
                    .await
                    .unwrap();
            }
        }
        let mut f = Self {
            app,
            message: String::new(),
            keys,
        };
        let bo = f.opened(&f.keys["bo"]).await;
        let ctx = RequestContext::new("s3:GetObject", OBJECT_ARN);
        f.message = crate::authz::encode_denial(&f.app, &bo, &ctx, false, &json!({}));
        f
    }

    async fn send(&self, req: Request<Body>) -> Answer {
        let resp = crate::web::router(self.app.clone())
            .oneshot(req)
            .await
            .unwrap();
        let status = resp.status();
        let headers = resp.headers().clone();
        let request_id = ["x-amzn-requestid", "x-request-id"]
            .iter()
            .find_map(|h| headers.get(*h))
            .map(|v| v.to_str().unwrap().to_string());
        let bytes = axum::body::to_bytes(resp.into_body(), 1 << 20)
            .await
            .unwrap();
        Answer {
            status,
            request_id,
            headers,
            body: String::from_utf8(bytes.to_vec()).unwrap(),
        }
    }

    /// A signed STS (or, for `service` `iam`, IAM) form request.
    async fn form(&self, creds: &Creds, service: &str, form: &str) -> Answer {
        self.send(form_post(creds, service, form).request()).await
    }

    /// Temporary credentials from an STS answer.
    fn credentials_in(answer: &Answer) -> Creds {
        assert_eq!(answer.status, StatusCode::OK, "{}", answer.body);
        let text = |tag| text_of(&answer.body, tag).unwrap().to_string();
        Creds {
            key: text("AccessKeyId"),
            secret: text("SecretAccessKey"),
            token: Some(text("SessionToken")),
        }
    }

    /// The long-term access key of the directory user `name`.
    fn key(&self, name: &str) -> &Creds {
        &self.keys[name]
    }

    async fn caller(&self, who: Who) -> Caller {
        let creds = match who {
            Who::Key(name) => self.key(name).clone(),
            Who::Session(name) | Who::SessionWithMfa(name) => {
                let gst = "Action=GetSessionToken&Version=2011-06-15";
                let mut creds = Self::credentials_in(&self.form(self.key(name), "sts", gst).await);
                if matches!(who, Who::SessionWithMfa(_)) {
                    // As GetSessionToken seals it after a TOTP code.
                    let token = creds.token.as_deref().unwrap();
                    let mut claims = self.app.keys.open_session(token).unwrap().claims().clone();
                    claims.mfa_time = Some(T0 - 60);
                    creds.token = Some(self.app.keys.seal_session(&claims).unwrap());
                }
                creds
            }
            Who::Federated => {
                let form = format!(
                    "Action=GetFederationToken&Version=2011-06-15&Name=app&Policy={}",
                    form_encoded(NARROW)
                );
                Self::credentials_in(&self.form(self.key("ana"), "sts", &form).await)
            }
            Who::RoleSession(policy) => {
                let mut form = format!(
                    "Action=AssumeRole&Version=2011-06-15&RoleArn={ROLE_ARN}&RoleSessionName=worker"
                );
                if let Some(p) = policy {
                    form.push_str(&format!("&Policy={}", form_encoded(p)));
                }
                Self::credentials_in(&self.form(self.key("ana"), "sts", &form).await)
            }
        };
        let claims = self.opened(&creds).await;
        Caller { creds, claims }
    }

    /// The session the edges open for `creds`: what STS authentication makes of a request they
    /// signed.
    async fn opened(&self, creds: &Creds) -> SessionClaims {
        let signed = sts_post(creds, "Action=GetCallerIdentity&Version=2011-06-15");
        let (parts, _) = signed.request().into_parts();
        let sreq = SignedRequest {
            method: "POST",
            path: "/",
            query: "",
            headers: &parts.headers,
            body: &signed.body,
            body_sha256: None,
        };
        let opts = VerifyOptions {
            service: "sts",
            regions: &self.app.config.sts_regions,
            max_skew: self.app.config.max_clock_skew,
            allow_unsigned_payload: false,
        };
        let mut ev = AuditEvent::new(self.app.clock.now(), "opening", "test");
        crate::authn::authenticate_signed(&self.app, &sreq, &opts, &mut ev)
            .await
            .unwrap()
            .claims()
            .clone()
    }

    /// The audit event of `request_id`.
    async fn event(&self, request_id: &str) -> AuditEvent {
        crate::testing::audit_event(&self.app, request_id).await
    }
}

/// `s` encoded for a form body or query.
fn form_encoded(s: &str) -> String {
    form_urlencoded::byte_serialize(s.as_bytes()).collect()
}

impl Edge {
    /// Whether the edge serves this caller at all (before any policy is asked).
    fn serves(self, c: &Caller) -> bool {
        match self {
            // Only long-term keys may call GetFederationToken.
            Edge::GetFederationToken => crate::authn::is_long_term(&c.claims),
            // A console opens only for temporary credentials.
            Edge::Console => c.creds.token.is_some(),
            _ => true,
        }
    }

    /// The question the edge asks the core about `c`, as the edge would put it.
    fn question<'a>(self, f: &'a Fixture, c: &'a SessionClaims) -> Question<'a> {
        let at_loopback = |q: Question<'a>| q.from_address(LOOPBACK, false);
        match self {
            Edge::Admin => at_loopback(Question::new(c, "rolegate:GetUser", USER_ARN)),
            Edge::GetFederationToken => {
                at_loopback(Question::new(c, "sts:GetFederationToken", FEDERATED_ARN))
            }
            Edge::DecodeAuthorizationMessage => {
                at_loopback(Question::new(c, "sts:DecodeAuthorizationMessage", "*"))
            }
            Edge::AssumeRole => {
                let role = f.app.config.role(ROLE_ARN).unwrap();
                at_loopback(Question::new(c, "sts:AssumeRole", ROLE_ARN))
                    .with_resource_policy(
                        "trust",
                        Some(&role.trust_policy),
                        ResourceAccount::of(c.principal.account(), Some(&role.account)),
                    )
                    .fact("sts:RoleSessionName", ContextValue::Single("next".into()))
            }
            Edge::SimulatePrincipalPolicy => {
                at_loopback(Question::new(c, "iam:SimulatePrincipalPolicy", ROLE_ARN))
            }
            // The service gave no source address, and no resource policy.
            Edge::Authorize => Question::new(c, "s3:GetObject", OBJECT_ARN).with_resource_policy(
                "resource policy",
                None,
                ResourceAccount::of(c.principal.account(), None),
            ),
            Edge::Console => at_loopback(Question::new(c, "s3:GetObject", OBJECT_ARN)),
        }
    }

    /// Sends the edge's request as `c` and reads its outcome.
    async fn ask(self, f: &Fixture, c: &Caller) -> Seen {
        match self {
            Edge::Admin => admin(f, &c.creds).await,
            Edge::GetFederationToken => {
                let form = "Action=GetFederationToken&Version=2011-06-15&Name=app";
                sts_outcome(f.form(&c.creds, "sts", form).await)
            }
            Edge::DecodeAuthorizationMessage => {
                let form = format!(
                    "Action=DecodeAuthorizationMessage&Version=2011-06-15&EncodedMessage={}",
                    form_encoded(&f.message)
                );
                sts_outcome(f.form(&c.creds, "sts", &form).await)
            }
            Edge::AssumeRole => {
                let form = format!(
                    "Action=AssumeRole&Version=2011-06-15&RoleArn={ROLE_ARN}&RoleSessionName=next"
                );
                sts_outcome(f.form(&c.creds, "sts", &form).await)
            }
            Edge::SimulatePrincipalPolicy => {
                let form = format!(
                    "Action=SimulatePrincipalPolicy&Version=2010-05-08&PolicySourceArn={ROLE_ARN}\
                     &ActionNames.member.1=s3%3AGetObject"
                );
                sts_outcome(f.form(&c.creds, "iam", &form).await)
            }
            Edge::Authorize => authorize(f, &c.creds).await,
            Edge::Console => console(f, &c.creds).await,
        }
    }
}

/// An STS or IAM answer: success, or `AccessDenied` in the XML error (anything else fails).
fn sts_outcome(a: Answer) -> Seen {
    let allowed = match (a.status, text_of(&a.body, "Code")) {
        (StatusCode::OK, _) => true,
        (StatusCode::FORBIDDEN, Some("AccessDenied")) => false,
        _ => panic!("neither success nor AccessDenied: {} {}", a.status, a.body),
    };
    Seen {
        allowed,
        request_id: a.request_id,
        effect: None,
        body: a.body,
    }
}

/// `GET /admin/users/ana`, signed for `rolegate`: the user's record, or 403 with a JSON error.
async fn admin(f: &Fixture, creds: &Creds) -> Seen {
    let path = "/admin/users/ana";
    let signed = sign_request(creds, "rolegate", "GET", path, &[], b"", false);
    let a = f.send(signed.request()).await;
    let body: Value = serde_json::from_str(&a.body).unwrap_or(Value::Null);
    let allowed = match a.status {
        StatusCode::OK => {
            assert_eq!(body["name"], "ana", "{}", a.body);
            true
        }
        StatusCode::FORBIDDEN => {
            let error = body["error"].as_str().unwrap_or_default();
            assert!(
                error.contains("is not authorized to perform: rolegate:GetUser"),
                "{}",
                a.body
            );
            false
        }
        other => panic!("admin API answered {other}: {}", a.body),
    };
    Seen {
        allowed,
        request_id: a.request_id,
        effect: None,
        body: a.body,
    }
}

/// `POST /v1/authorize` for a `GET /bucket/key` the caller signed for `s3`: 200 with `allowed`.
async fn authorize(f: &Fixture, creds: &Creds) -> Seen {
    let get = sign_request(creds, "s3", "GET", "/bucket/key", &[], b"", false);
    let input = json!({
        "request": get.as_received(),
        "action": "s3:GetObject",
        "resource": OBJECT_ARN,
    });
    let a = f
        .send(
            Request::post("/v1/authorize")
                .header(header::AUTHORIZATION, format!("Bearer {SERVICE_TOKEN}"))
                .header(header::CONTENT_TYPE, "application/json")
                .body(Body::from(input.to_string()))
                .unwrap(),
        )
        .await;
    assert_eq!(a.status, StatusCode::OK, "{}", a.body);
    let out: Value = serde_json::from_str(&a.body).unwrap();
    Seen {
        allowed: out["allowed"].as_bool().unwrap(),
        request_id: a.request_id,
        effect: out["decision"].as_str().map(String::from),
        body: a.body,
    }
}

/// The console's simulation: a console opened with the caller's session (sign-in token, login),
/// then `POST /console/simulate`; the page shows the effect.
async fn console(f: &Fixture, creds: &Creds) -> Seen {
    use crate::portal::federation::CONSOLE_COOKIE;
    let get = |path: String, cookie: String| {
        Request::get(path)
            .header(header::COOKIE, cookie)
            .body(Body::empty())
            .unwrap()
    };
    let session = json!({
        "sessionId": creds.key,
        "sessionKey": creds.secret,
        "sessionToken": creds.token,
    });
    let q = |pairs: &[(&str, &str)]| {
        form_urlencoded::Serializer::new(String::new())
            .extend_pairs(pairs)
            .finish()
    };
    let a = f
        .send(get(
            format!(
                "/federation?{}",
                q(&[
                    ("Action", "getSigninToken"),
                    ("Session", &session.to_string())
                ])
            ),
            String::new(),
        ))
        .await;
    assert_eq!(a.status, StatusCode::OK, "{}", a.body);
    let token: Value = serde_json::from_str(&a.body).unwrap();
    let login = q(&[
        ("Action", "login"),
        ("Destination", "/console"),
        ("SigninToken", token["SigninToken"].as_str().unwrap()),
    ]);
    let a = f
        .send(get(format!("/federation?{login}"), String::new()))
        .await;
    let cookie = a
        .headers
        .get_all(header::SET_COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find_map(|c| c.strip_prefix(&format!("{CONSOLE_COOKIE}=")))
        .and_then(|c| c.split(';').next())
        .map(|v| format!("{CONSOLE_COOKIE}={v}"))
        .unwrap_or_else(|| panic!("no console: {} {}", a.status, a.body));
    let page = f.send(get("/console".into(), cookie.clone())).await.body;
    let at = page.find("name=\"csrf\" value=\"").unwrap() + 19;
    let csrf = &page[at..at + 43];
    let form = q(&[
        ("csrf", csrf),
        ("action", "s3:GetObject"),
        ("resource", OBJECT_ARN),
        ("context", ""),
    ]);
    let a = f
        .send(
            Request::post("/console/simulate")
                .header(header::COOKIE, cookie)
                .header(header::ORIGIN, format!("http://{HOST}"))
                .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
                .body(Body::from(form))
                .unwrap(),
        )
        .await;
    assert_eq!(a.status, StatusCode::OK, "{}", a.body);
    let shown = |word| {
        let (_, rest) = a.body.split_once(&format!("<strong>{word}</strong> ("))?;
        rest.split_once(')').map(|(effect, _)| effect.to_string())
    };
    let (allowed, effect) = match (shown("Allowed"), shown("Denied")) {
        (Some(e), None) => (true, e),
        (None, Some(e)) => (false, e),
        _ => panic!("no single simulation result: {}", a.body),
    };
    Seen {
        allowed,
        // The simulation itself succeeds: its audit event is not a denial.
        request_id: None,
        effect: Some(effect),
        body: a.body,
    }
}

/// A denial's audit event carries the core's explanation, and a reason naming the action.
async fn assert_audited_denial(f: &Fixture, request_id: &str, verdict: &Verdict<'_>, what: &str) {
    let ev = f.event(request_id).await;
    assert_eq!(ev.decision, "deny", "{what}");
    assert_eq!(
        ev.explanation,
        serde_json::to_value(verdict.explain()).ok(),
        "{what}: the audit event does not carry the core's explanation"
    );
    let reason = ev.reason.unwrap_or_default();
    assert!(
        reason.contains(verdict.context.action())
            && (reason.contains("do not allow") || reason.contains("is not allowed")),
        "{what}: {reason}"
    );
}

#[tokio::test]
async fn every_edge_reaches_the_decision_cores_verdict() {
    let f = Fixture::new().await;
    let mut asked = 0;
    for (state, who, expected) in CALLERS {
        let caller = f.caller(who).await;
        for edge in EDGES {
            if !edge.serves(&caller) {
                continue;
            }
            let what = format!("{edge:?}, {state}");
            let seen = edge.ask(&f, &caller).await;
            let verdict = decide(&f.app, edge.question(&f, &caller.claims))
                .await
                .unwrap();
            // The table says what the state means; the edge must agree with the core.
            assert_eq!(verdict.allowed(), expected, "{what}: the core's verdict");
            assert_eq!(
                seen.allowed,
                verdict.allowed(),
                "{what}: the edge answered otherwise than the core: {}",
                seen.body
            );
            if let Some(effect) = &seen.effect {
                assert_eq!(*effect, verdict.decision.effect.to_string(), "{what}");
            }
            if let (false, Some(id)) = (seen.allowed, &seen.request_id) {
                assert_audited_denial(&f, id, &verdict, &what).await;
            }
            asked += 1;
        }
    }
    // Every edge but two serves every caller; GetFederationToken serves the 5 long-term keys and
    // the console the 7 sessions.
    assert_eq!(asked, 12 * 5 + 5 + 7);
}

/// `POST /v1/authorize` names the expiration of a session, and none for a long-term access key,
/// which does not expire.
#[tokio::test]
async fn authorize_names_an_expiration_for_sessions_only() {
    let f = Fixture::new().await;
    for (who, expires) in [(Who::Key("ana"), false), (Who::Session("ana"), true)] {
        let caller = f.caller(who).await;
        let seen = authorize(&f, &caller.creds).await;
        let out: Value = serde_json::from_str(&seen.body).unwrap();
        let principal = &out["principal"];
        assert_eq!(principal["access_key_id"], caller.creds.key.as_str());
        assert_eq!(principal["arn"], USER_ARN, "{who:?}");
        if expires {
            assert_eq!(
                principal["expiration"],
                crate::clock::rfc3339_secs(caller.claims.expires_at),
                "{who:?}"
            );
            assert!(caller.claims.expires_at > T0, "{who:?}");
        } else {
            assert!(
                principal.get("expiration").is_none(),
                "{who:?}: {principal}"
            );
            assert!(principal["issued_at"].is_string(), "{who:?}");
        }
    }
}
