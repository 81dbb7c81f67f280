//! The rolegate every test here talks to, and the callers, roles and policies it is configured
//! with. The calling sessions are role sessions of account [`CALLERS`] sealed with the server's
//! own keys, as STS seals them: one per combination of "identity policies allow / do not",
//! "permissions boundary allows / does not", "session policy allows / does not" and "an identity
//! policy denies".

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;

use crate::support::app::{form_body, Creds};
use crate::support::signing::{sign_post, SignSpec};
use base64::Engine;
use reqwest::StatusCode;
use rolegate::app::App;
use rolegate::audit::AuditEvent;
use rolegate::clock::SystemClock;
use rolegate::config::Config;
use rolegate::credentials::{Federation, SessionClaims, SessionPrincipal};
use rolegate::store::memory::MemoryStore;
use rolegate::store::AuditQuery;
use serde_json::{json, Value};

/// The account of every calling session.
pub const CALLERS: &str = "222233334444";
/// Another account, owning the cross-account resources and roles.
pub const RESOURCES: &str = "111122223333";
/// The downstream service's bearer token.
const SERVICE_TOKEN: &str = "queues-service-token-0123456789abcdef";
/// The downstream service's host, as its clients sign it.
const SERVICE_HOST: &str = "queue.example";

const BOUNDARY_ALL: &str = "arn:aws:iam::222233334444:policy/BoundaryAll";
const BOUNDARY_NARROW: &str = "arn:aws:iam::222233334444:policy/BoundaryNarrow";

/// What a calling session's policies say about the actions under test.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Caller {
    /// Identity policies and boundary allow; no session policy.
    Allowed,
    /// Identity policies allow, the boundary does not.
    BoundaryDenies,
    /// The boundary allows, no identity policy does.
    NoIdentity,
    /// Neither allows.
    Neither,
    /// Identity policies and boundary allow; the session policy does not.
    SessionPolicyDenies,
    /// An identity policy explicitly denies.
    ExplicitDeny,
}

pub const CALLERS_ALL: [Caller; 6] = [
    Caller::Allowed,
    Caller::BoundaryDenies,
    Caller::NoIdentity,
    Caller::Neither,
    Caller::SessionPolicyDenies,
    Caller::ExplicitDeny,
];

impl Caller {
    /// The caller's role in [`CALLERS`].
    pub fn role(self) -> &'static str {
        match self {
            Caller::Allowed | Caller::SessionPolicyDenies => "id-bnd",
            Caller::BoundaryDenies => "id-nobnd",
            Caller::NoIdentity => "noid-bnd",
            Caller::Neither => "noid-nobnd",
            Caller::ExplicitDeny => "denier",
        }
    }

    /// The session name: distinct per caller, so that a grant to one session names no other.
    pub fn session(self) -> &'static str {
        match self {
            Caller::SessionPolicyDenies => "narrowed",
            _ => "s",
        }
    }

    pub fn role_arn(self) -> String {
        format!("arn:aws:iam::{CALLERS}:role/{}", self.role())
    }

    pub fn session_arn(self) -> String {
        format!(
            "arn:aws:sts::{CALLERS}:assumed-role/{}/{}",
            self.role(),
            self.session()
        )
    }
}

/// What a resource policy (or trust policy) names as its principal.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Names {
    /// The calling session's ARN.
    Session,
    /// The calling session's role ARN.
    Role,
    /// The caller's account.
    Account,
    /// Someone else.
    Other,
    /// There is no resource policy.
    Nothing,
}

/// The principal element of a policy naming `names` for every caller.
pub fn principal(names: Names) -> Value {
    let aws: Vec<String> = match names {
        Names::Session => CALLERS_ALL.iter().map(|c| c.session_arn()).collect(),
        Names::Role => CALLERS_ALL.iter().map(|c| c.role_arn()).collect(),
        Names::Account => vec![CALLERS.to_owned()],
        Names::Other | Names::Nothing => vec!["arn:aws:iam::999988887777:role/someone".to_owned()],
    };
    json!({ "AWS": aws })
}

/// Identity policy allowing what the tests ask for.
pub const ALLOW_ALL_TESTED: &str = r#"{"Version": "2012-10-17", "Statement": [{"Effect": "Allow",
  "Action": ["sqs:SendMessage", "s3:GetObject", "sts:AssumeRole"], "Resource": "*"}]}"#;
/// A policy allowing something else only.
pub const ALLOW_OTHER: &str = r#"{"Version": "2012-10-17", "Statement": [{"Effect": "Allow",
  "Action": "sqs:GetQueueUrl", "Resource": "*"}]}"#;
const DENY_TESTED: &str = r#"{"Version": "2012-10-17", "Statement": [{"Effect": "Deny",
  "Action": ["sqs:SendMessage", "s3:GetObject", "sts:AssumeRole"], "Resource": "*"}]}"#;
const ALLOW_EVERYTHING: &str = r#"{"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "*", "Resource": "*"}]}"#;

fn role_toml(account: &str, name: &str, trust: &str, policies: &[&str], boundary: &str) -> String {
    let mut out = format!(
        "[[roles]]\naccount = \"{account}\"\nname = \"{name}\"\ntrust_policy = '''{trust}'''\n"
    );
    if !boundary.is_empty() {
        out.push_str(&format!("permissions_boundary = \"{boundary}\"\n"));
    }
    for (i, p) in policies.iter().enumerate() {
        out.push_str(&format!(
            "[[roles.policies]]\nname = \"p{i}\"\ndocument = '''{p}'''\n"
        ));
    }
    out.push('\n');
    out
}

fn trust_naming(names: Names) -> String {
    json!({"Version": "2012-10-17", "Statement": [{"Effect": "Allow",
        "Principal": principal(names), "Action": "sts:AssumeRole"}]})
    .to_string()
}

/// The target role of `AssumeRole` in `account` whose trust policy names `names`.
pub fn target(account: &str, names: Names) -> String {
    let side = if account == CALLERS { "same" } else { "cross" };
    format!("arn:aws:iam::{account}:role/{side}-{names:?}")
}

fn config_text(addr: SocketAddr) -> String {
    let mut toml = format!(
        "[server]\nlisten = \"{addr}\"\npublic_url = \"http://{addr}\"\n\n\
         [store]\nkind = \"memory\"\n\n\
         [[accounts]]\nid = \"{RESOURCES}\"\nname = \"resources\"\n\n\
         [[accounts]]\nid = \"{CALLERS}\"\nname = \"callers\"\n\n\
         [[services]]\nname = \"queues\"\nsigning_names = [\"sqs\"]\ntoken_env = \"QUEUES_TOKEN\"\n\n\
         [[oidc_providers]]\nissuer = \"http://127.0.0.1:9/corp\"\nname = \"corp\"\n\
         audiences = [\"client\"]\nallow_http = true\n\n\
         [[managed_policies]]\naccount = \"{CALLERS}\"\nname = \"BoundaryAll\"\n\
         document = '''{ALLOW_EVERYTHING}'''\n\n\
         [[managed_policies]]\naccount = \"{CALLERS}\"\nname = \"BoundaryNarrow\"\n\
         document = '''{ALLOW_OTHER}'''\n\n"
    );
    let trust_account = trust_naming(Names::Account);
    let simulate = r#"{"Version": "2012-10-17", "Statement": [{"Effect": "Allow",
  "Action": ["iam:SimulateCustomPolicy", "iam:SimulatePrincipalPolicy"], "Resource": "*"}]}"#;
    let callers: [(&str, &[&str], &str); 5] = [
        ("id-bnd", &[ALLOW_ALL_TESTED], BOUNDARY_ALL),
        ("id-nobnd", &[ALLOW_ALL_TESTED], BOUNDARY_NARROW),
        ("noid-bnd", &[ALLOW_OTHER], BOUNDARY_ALL),
        ("noid-nobnd", &[ALLOW_OTHER], BOUNDARY_NARROW),
        ("denier", &[ALLOW_EVERYTHING, DENY_TESTED], BOUNDARY_ALL),
    ];
    for (name, policies, boundary) in callers {
        toml.push_str(&role_toml(
            CALLERS,
            name,
            &trust_account,
            policies,
            boundary,
        ));
    }
    // Sessions of `portal` carry sign-in claims; its policy allows SendMessage to bob only.
    let portal = r#"{"Version": "2012-10-17", "Statement": [{"Effect": "Allow",
  "Action": "sqs:SendMessage", "Resource": "*",
  "Condition": {"StringEquals": {"local:sub": "bob"}}}]}"#;
    toml.push_str(&role_toml(CALLERS, "portal", &trust_account, &[portal], ""));
    toml.push_str(&role_toml(
        CALLERS,
        "simulator",
        &trust_account,
        &[simulate],
        "",
    ));
    for account in [CALLERS, RESOURCES] {
        for names in [Names::Session, Names::Role, Names::Account, Names::Other] {
            let arn = target(account, names);
            let name = arn.rsplit('/').next().unwrap_or_default();
            toml.push_str(&role_toml(account, name, &trust_naming(names), &[], ""));
        }
    }
    toml
}

/// rolegate serving on 127.0.0.1; stops when dropped.
pub struct Server {
    addr: SocketAddr,
    app: Arc<App>,
    http: reqwest::Client,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for Server {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl Server {
    pub async fn start() -> Server {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .unwrap_or_else(|e| panic!("bind: {e}"));
        let addr = listener
            .local_addr()
            .unwrap_or_else(|e| panic!("address: {e}"));
        let text = config_text(addr);
        let env = [("QUEUES_TOKEN".to_owned(), SERVICE_TOKEN.to_owned())];
        let config =
            Config::from_str_with_env(Path::new("/nonexistent/rolegate.toml"), &text, &env)
                .unwrap_or_else(|e| panic!("configuration refused: {e}\n{text}"));
        let app = App::build(config, Arc::new(MemoryStore::new()), Arc::new(SystemClock))
            .await
            .unwrap_or_else(|e| panic!("App::build: {e:#}"));
        let router = rolegate::web::router(app.clone());
        let task = tokio::spawn(async move {
            let service = router.into_make_service_with_connect_info::<SocketAddr>();
            if let Err(e) = axum::serve(listener, service).await {
                panic!("server stopped: {e}");
            }
        });
        let http = reqwest::Client::builder()
            .no_proxy()
            .build()
            .unwrap_or_else(|e| panic!("client: {e}"));
        Server {
            addr,
            app,
            http,
            task,
        }
    }

    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Credentials of a session of `role` (in [`CALLERS`]) named `session`, sealed as STS seals
    /// them.
    pub fn session(
        &self,
        role: &str,
        session: &str,
        session_policy: Option<&str>,
        federation: Option<Federation>,
    ) -> Creds {
        let arn = format!("arn:aws:iam::{CALLERS}:role/{role}");
        let r = self
            .app
            .config
            .role(&arn)
            .unwrap_or_else(|| panic!("no role {arn}"));
        let now = self.app.clock.now().timestamp();
        let claims = SessionClaims {
            access_key_id: rolegate::credentials::new_temporary_access_key_id()
                .unwrap_or_else(|e| panic!("{e}")),
            secret_access_key: rolegate::credentials::new_secret_access_key()
                .unwrap_or_else(|e| panic!("{e}")),
            session_id: rolegate::credentials::new_session_id().unwrap_or_else(|e| panic!("{e}")),
            principal: SessionPrincipal::AssumedRole {
                account: r.account.clone(),
                role_name: r.name.clone(),
                role_path: r.path.clone(),
                role_id: r.role_id.clone(),
                session_name: session.to_owned(),
            },
            source_identity: None,
            tags: Vec::new(),
            transitive_tag_keys: Vec::new(),
            session_policy: session_policy.map(str::to_owned),
            policy_arns: Vec::new(),
            federation,
            mfa_time: None,
            issued_at: now,
            expires_at: now + 3600,
            chained: false,
            origin_user: None,
            parents: Vec::new(),
        };
        let token = self
            .app
            .keys
            .seal_session(&claims)
            .unwrap_or_else(|e| panic!("sealing: {e}"));
        Creds {
            access_key_id: claims.access_key_id.clone(),
            secret_access_key: claims.secret_access_key.clone(),
            session_token: token,
            expiration: String::new(),
        }
    }

    /// The session of a table caller.
    pub fn caller(&self, c: Caller) -> Creds {
        let policy = (c == Caller::SessionPolicyDenies).then_some(ALLOW_OTHER);
        self.session(c.role(), c.session(), policy, None)
    }

    /// `POST /v1/authorize` for a request `creds` signed for the service, with `extra` fields.
    pub async fn authorize(
        &self,
        creds: &Creds,
        action: &str,
        resource: &str,
        extra: Value,
    ) -> (StatusCode, Value) {
        let body = "Action=SendMessage";
        let spec = SignSpec {
            service: "sqs".to_owned(),
            ..SignSpec::default()
        };
        let signed = sign_post(
            &format!("https://{SERVICE_HOST}"),
            SERVICE_HOST,
            body,
            creds,
            &spec,
        );
        let mut headers: BTreeMap<String, String> = signed.into_iter().collect();
        headers.insert("host".into(), SERVICE_HOST.into());
        headers.insert(
            "content-type".into(),
            "application/x-www-form-urlencoded".into(),
        );
        let mut input = json!({
            "request": {
                "method": "POST",
                "path": "/",
                "headers": headers,
                "body_base64": base64::engine::general_purpose::STANDARD.encode(body),
            },
            "action": action,
            "resource": resource,
        });
        if let (Some(input), Value::Object(extra)) = (input.as_object_mut(), extra) {
            input.extend(extra);
        }
        let response = self
            .http
            .post(format!("{}/v1/authorize", self.url()))
            .bearer_auth(SERVICE_TOKEN)
            .json(&input)
            .send()
            .await
            .unwrap_or_else(|e| panic!("authorize: {e}"));
        let status = response.status();
        let out: Value = response
            .json()
            .await
            .unwrap_or_else(|e| panic!("authorize answer: {e}"));
        (status, out)
    }

    /// A signed form `POST /` (STS and IAM).
    pub async fn query(
        &self,
        creds: &Creds,
        service: &str,
        form: &[(&str, &str)],
    ) -> (StatusCode, String) {
        let body = form_body(form);
        let spec = SignSpec {
            service: service.to_owned(),
            ..SignSpec::default()
        };
        let host = self.addr.to_string();
        let headers = sign_post(&self.url(), &host, &body, creds, &spec);
        let mut request = self
            .http
            .post(format!("{}/", self.url()))
            .header("content-type", "application/x-www-form-urlencoded")
            .body(body);
        for (k, v) in headers {
            request = request.header(k, v);
        }
        let response = request
            .send()
            .await
            .unwrap_or_else(|e| panic!("POST /: {e}"));
        let status = response.status();
        let text = response.text().await.unwrap_or_default();
        (status, text)
    }

    /// `AssumeRole` of `role_arn` with the session `creds`.
    pub async fn assume_role(&self, creds: &Creds, role_arn: &str) -> (StatusCode, String) {
        self.query(
            creds,
            "sts",
            &[
                ("Action", "AssumeRole"),
                ("Version", "2011-06-15"),
                ("RoleArn", role_arn),
                ("RoleSessionName", "chained"),
            ],
        )
        .await
    }

    /// The audit event of the request `request_id`.
    pub async fn audit_event(&self, request_id: &str) -> AuditEvent {
        self.app.audit.flush().await;
        let query = AuditQuery {
            limit: 100_000,
            newest_first: true,
            ..AuditQuery::default()
        };
        let events = rolegate::audit::query(self.app.store.as_ref(), &query)
            .await
            .unwrap_or_else(|e| panic!("audit query: {e}"));
        let mut matching: Vec<AuditEvent> = events
            .into_iter()
            .filter(|e| e.request_id == request_id)
            .collect();
        assert_eq!(matching.len(), 1, "{matching:?}");
        matching.remove(0)
    }
}
