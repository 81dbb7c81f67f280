//! rolegate itself, in process, for end-to-end tests: the shared test configuration of
//! `rolegate::testing` (memory store) with one OpenID provider trusted over loopback http and the
//! accounts and roles given per test, built by the same builder as the unit tests' apps with a
//! fixed or system clock, and `web::router` served on a free 127.0.0.1 port with the client
//! address as connect info. Also parsers for the STS XML answers and a reader of the audit log.
#![allow(dead_code)]

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use reqwest::StatusCode;
use rolegate::app::App;
use rolegate::audit::AuditEvent;
use rolegate::clock::{FixedClock, SharedClock, SystemClock};
use rolegate::store::AuditQuery;
use rolegate::testing::TestConfig;

/// The account every test role lives in.
pub const ACCOUNT: &str = "111122223333";
/// A second account, for cross-account cases.
pub const OTHER_ACCOUNT: &str = "444455556666";

const HTTP_TIMEOUT: Duration = Duration::from_secs(30);

/// A role of the test configuration.
#[derive(Clone, Debug)]
pub struct RoleSpec {
    /// Account id.
    pub account: String,
    /// Role name.
    pub name: String,
    /// Trust policy JSON.
    pub trust_policy: String,
    /// Permission policies: (name, JSON).
    pub policies: Vec<(String, String)>,
    /// `max_session_duration`, when not the default.
    pub max_session_duration: Option<u32>,
}

impl RoleSpec {
    /// A role in [`ACCOUNT`] with a trust policy and no permission policies.
    pub fn new(name: &str, trust_policy: impl Into<String>) -> Self {
        Self {
            account: ACCOUNT.to_owned(),
            name: name.to_owned(),
            trust_policy: trust_policy.into(),
            policies: Vec::new(),
            max_session_duration: None,
        }
    }

    /// Adds a permission policy.
    pub fn policy(mut self, name: &str, document: impl Into<String>) -> Self {
        self.policies.push((name.to_owned(), document.into()));
        self
    }

    /// Sets the longest session.
    pub fn max_session(mut self, seconds: u32) -> Self {
        self.max_session_duration = Some(seconds);
        self
    }

    /// Moves the role to another account.
    pub fn in_account(mut self, account: &str) -> Self {
        self.account = account.to_owned();
        self
    }
}

/// How to start a [`TestApp`].
#[derive(Clone, Debug)]
pub struct TestAppBuilder {
    issuer: Option<String>,
    audiences: Vec<String>,
    algorithms: Vec<String>,
    leeway_seconds: Option<u32>,
    roles: Vec<RoleSpec>,
    fixed_clock: Option<DateTime<Utc>>,
    background: bool,
}

impl Default for TestAppBuilder {
    fn default() -> Self {
        Self {
            issuer: None,
            audiences: vec![super::idp::CLIENT_ID.to_owned()],
            algorithms: vec!["RS256".to_owned(), "ES256".to_owned()],
            leeway_seconds: None,
            roles: Vec::new(),
            fixed_clock: None,
            background: false,
        }
    }
}

impl TestAppBuilder {
    /// Trusts the OpenID provider with this issuer (loopback http).
    pub fn issuer(mut self, issuer: &str) -> Self {
        self.issuer = Some(issuer.to_owned());
        self
    }

    /// Replaces the accepted audiences (default: the harness client [`super::idp::CLIENT_ID`]).
    pub fn audiences(mut self, audiences: &[&str]) -> Self {
        self.audiences = audiences.iter().map(|a| (*a).to_owned()).collect();
        self
    }

    /// Replaces the accepted algorithms (default RS256 and ES256).
    pub fn algorithms(mut self, algorithms: &[&str]) -> Self {
        self.algorithms = algorithms.iter().map(|a| (*a).to_owned()).collect();
        self
    }

    /// Sets the provider's clock leeway.
    pub fn leeway(mut self, seconds: u32) -> Self {
        self.leeway_seconds = Some(seconds);
        self
    }

    /// Adds a role.
    pub fn role(mut self, role: RoleSpec) -> Self {
        self.roles.push(role);
        self
    }

    /// Runs on a [`FixedClock`] reading `at` instead of the system clock.
    pub fn fixed_clock(mut self, at: DateTime<Utc>) -> Self {
        self.fixed_clock = Some(at);
        self
    }

    /// Also starts the background work `serve` starts (key warm-up, refreshes).
    pub fn background(mut self) -> Self {
        self.background = true;
        self
    }

    /// The configuration of a server reachable at `addr`: the shared test configuration
    /// (`rolegate::testing`) with accounts [`ACCOUNT`] and [`OTHER_ACCOUNT`], the provider and the
    /// roles.
    pub fn config(&self, addr: SocketAddr) -> TestConfig {
        let mut config = rolegate::testing::config()
            .server(&addr.to_string(), &format!("http://{addr}"))
            .accounts(&[(ACCOUNT, "test"), (OTHER_ACCOUNT, "other")]);
        if let Some(issuer) = &self.issuer {
            let mut provider = format!(
                "[[oidc_providers]]\nissuer = {}\naudiences = {}\nalgorithms = {}\nallow_http = true\n",
                toml_string(issuer),
                toml_list(&self.audiences),
                toml_list(&self.algorithms),
            );
            if let Some(l) = self.leeway_seconds {
                provider.push_str(&format!("leeway_seconds = {l}\n"));
            }
            config = config.with(&provider);
        }
        for role in &self.roles {
            let mut toml = format!(
                "[[roles]]\naccount = \"{}\"\nname = \"{}\"\n",
                role.account, role.name
            );
            if let Some(max) = role.max_session_duration {
                toml.push_str(&format!("max_session_duration = {max}\n"));
            }
            toml.push_str(&format!("trust_policy = '''\n{}\n'''\n", role.trust_policy));
            for (name, doc) in &role.policies {
                toml.push_str(&format!(
                    "[[roles.policies]]\nname = \"{name}\"\ndocument = '''\n{doc}\n'''\n"
                ));
            }
            config = config.with(&toml);
        }
        config
    }

    /// Binds a free port, builds the app and serves it.
    pub async fn start(self) -> TestApp {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .unwrap_or_else(|e| panic!("cannot bind 127.0.0.1:0: {e}"));
        let addr = listener
            .local_addr()
            .unwrap_or_else(|e| panic!("no local address: {e}"));
        let fixed = self.fixed_clock.map(FixedClock::new);
        let clock: SharedClock = match &fixed {
            Some(c) => Arc::new(c.clone()),
            None => Arc::new(SystemClock),
        };
        let app = self.config(addr).build_on(clock).await;
        if self.background {
            rolegate::maintenance::start(&app);
        }
        let router = rolegate::web::router(app.clone());
        let server = tokio::spawn(async move {
            let service = router.into_make_service_with_connect_info::<SocketAddr>();
            if let Err(e) = axum::serve(listener, service).await {
                panic!("rolegate test server stopped: {e}");
            }
        });
        let http = reqwest::Client::builder()
            .no_proxy()
            .timeout(HTTP_TIMEOUT)
            .build()
            .unwrap_or_else(|e| panic!("http client: {e}"));
        TestApp {
            addr,
            app,
            clock: fixed,
            http,
            server,
        }
    }
}

fn toml_string(s: &str) -> String {
    serde_json::Value::String(s.to_owned()).to_string()
}

fn toml_list(items: &[String]) -> String {
    let quoted: Vec<String> = items.iter().map(|s| toml_string(s)).collect();
    format!("[{}]", quoted.join(", "))
}

/// rolegate serving on 127.0.0.1; the server stops when this is dropped.
pub struct TestApp {
    addr: SocketAddr,
    app: Arc<App>,
    clock: Option<FixedClock>,
    http: reqwest::Client,
    server: tokio::task::JoinHandle<()>,
}

impl Drop for TestApp {
    fn drop(&mut self) {
        self.server.abort();
    }
}

impl TestApp {
    /// A builder with the defaults.
    pub fn builder() -> TestAppBuilder {
        TestAppBuilder::default()
    }

    /// `http://127.0.0.1:PORT` (no trailing slash).
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// `127.0.0.1:PORT`.
    pub fn host(&self) -> String {
        self.addr.to_string()
    }

    /// The running app.
    pub fn app(&self) -> &Arc<App> {
        &self.app
    }

    /// The fixed clock; panics when the app runs on the system clock.
    pub fn clock(&self) -> &FixedClock {
        self.clock
            .as_ref()
            .unwrap_or_else(|| panic!("this TestApp runs on the system clock"))
    }

    /// The app's current time.
    pub fn now(&self) -> DateTime<Utc> {
        self.app.clock.now()
    }

    /// A plain HTTP client without proxies.
    pub fn http(&self) -> &reqwest::Client {
        &self.http
    }

    /// An unsigned `POST /` with a form body; returns the status and body.
    pub async fn sts(&self, form: &[(&str, &str)]) -> (StatusCode, String) {
        let body = form_body(form);
        self.post_raw(&body, &[]).await
    }

    /// `POST /` with a raw form body and extra headers.
    pub async fn post_raw(&self, body: &str, headers: &[(&str, &str)]) -> (StatusCode, String) {
        let mut request = self
            .http
            .post(format!("{}/", self.url()))
            .header("content-type", "application/x-www-form-urlencoded")
            .body(body.to_owned());
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        send(request).await
    }

    /// `GET` of a path and query (starting with `/`).
    pub async fn get(&self, path_and_query: &str) -> (StatusCode, String) {
        send(self.http.get(format!("{}{}", self.url(), path_and_query))).await
    }

    /// `AssumeRoleWithWebIdentity` through raw HTTP.
    pub async fn assume_web(
        &self,
        role_arn: &str,
        session: &str,
        token: &str,
        extra: &[(&str, &str)],
    ) -> (StatusCode, String) {
        let mut form = vec![
            ("Action", "AssumeRoleWithWebIdentity"),
            ("Version", "2011-06-15"),
            ("RoleArn", role_arn),
            ("RoleSessionName", session),
            ("WebIdentityToken", token),
        ];
        form.extend_from_slice(extra);
        self.sts(&form).await
    }

    /// Credentials from a successful `AssumeRoleWithWebIdentity`; panics with the answer otherwise.
    pub async fn credentials_for(&self, role_arn: &str, session: &str, token: &str) -> Creds {
        let (status, body) = self.assume_web(role_arn, session, token, &[]).await;
        assert_eq!(status, StatusCode::OK, "{body}");
        credentials(&body).unwrap_or_else(|| panic!("no credentials in {body}"))
    }

    /// Every audit event written so far (after a flush), newest first.
    pub async fn audit_events(&self) -> Vec<AuditEvent> {
        self.app.audit.flush().await;
        let query = AuditQuery {
            limit: 100_000,
            newest_first: true,
            ..AuditQuery::default()
        };
        rolegate::audit::query(self.app.store.as_ref(), &query)
            .await
            .unwrap_or_else(|e| panic!("audit query failed: {e}"))
    }

    /// The audit event of the request whose answer was `body` (by its RequestId).
    pub async fn audit_event_for(&self, body: &str) -> AuditEvent {
        let id = request_id(body).unwrap_or_else(|| panic!("no RequestId in {body}"));
        let events = self.audit_events().await;
        let mut matching: Vec<AuditEvent> =
            events.into_iter().filter(|e| e.request_id == id).collect();
        assert_eq!(
            matching.len(),
            1,
            "expected exactly one audit event for request {id}: {matching:?}"
        );
        matching.remove(0)
    }

    /// Asserts that the answer is the AWS error `code` with `status`, carries no credentials, and that
    /// exactly one audit event records a deny with that code and a reason containing every one of
    /// `reason_parts`. Returns the event.
    pub async fn assert_denied(
        &self,
        answer: &(StatusCode, String),
        status: StatusCode,
        code: &str,
        reason_parts: &[&str],
    ) -> AuditEvent {
        let (got_status, body) = answer;
        assert_eq!(
            error_code(body).as_deref(),
            Some(code),
            "wrong error code in {body}"
        );
        assert_eq!(*got_status, status, "wrong status for {code}: {body}");
        assert_no_credentials(body);
        let event = self.audit_event_for(body).await;
        assert_eq!(event.decision, "deny", "{event:?}");
        assert_eq!(event.error_code.as_deref(), Some(code), "{event:?}");
        let reason = event.reason.clone().unwrap_or_default();
        for part in reason_parts {
            assert!(
                reason.contains(part),
                "audit reason {reason:?} does not contain {part:?}"
            );
        }
        event
    }
}

async fn send(request: reqwest::RequestBuilder) -> (StatusCode, String) {
    let response = request
        .send()
        .await
        .unwrap_or_else(|e| panic!("rolegate unreachable: {e}"));
    let status = response.status();
    let body = response
        .text()
        .await
        .unwrap_or_else(|e| panic!("reading the answer: {e}"));
    (status, body)
}

/// An `application/x-www-form-urlencoded` body.
pub fn form_body(form: &[(&str, &str)]) -> String {
    let mut s = form_urlencoded::Serializer::new(String::new());
    for (k, v) in form {
        s.append_pair(k, v);
    }
    s.finish()
}

/// Temporary credentials from an STS answer.
#[derive(Clone, Debug)]
pub struct Creds {
    /// `ASIA…`.
    pub access_key_id: String,
    /// The secret.
    pub secret_access_key: String,
    /// The sealed session token.
    pub session_token: String,
    /// ISO-8601 expiry as sent.
    pub expiration: String,
}

impl Creds {
    /// The expiry as a time.
    pub fn expires_at(&self) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(&self.expiration)
            .unwrap_or_else(|e| panic!("Expiration {:?}: {e}", self.expiration))
            .with_timezone(&Utc)
    }
}

/// The unescaped text of the first `<tag>…</tag>` in `xml`.
pub fn xml_text(xml: &str, tag: &str) -> Option<String> {
    let open = format!("<{tag}>");
    let close = format!("</{tag}>");
    let start = xml.find(&open)? + open.len();
    let end = start + xml[start..].find(&close)?;
    Some(unescape(&xml[start..end]))
}

fn unescape(s: &str) -> String {
    s.replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&quot;", "\"")
        .replace("&apos;", "'")
        .replace("&amp;", "&")
}

/// `Error/Code` of an `ErrorResponse`.
pub fn error_code(xml: &str) -> Option<String> {
    if !xml.contains("<ErrorResponse") {
        return None;
    }
    xml_text(xml, "Code")
}

/// `RequestId` of any STS answer.
pub fn request_id(xml: &str) -> Option<String> {
    xml_text(xml, "RequestId")
}

/// The `Credentials` of a successful answer.
pub fn credentials(xml: &str) -> Option<Creds> {
    let block = xml_text(xml, "Credentials")?;
    Some(Creds {
        access_key_id: xml_text(&block, "AccessKeyId")?,
        secret_access_key: xml_text(&block, "SecretAccessKey")?,
        session_token: xml_text(&block, "SessionToken")?,
        expiration: xml_text(&block, "Expiration")?,
    })
}

/// Panics if the answer carries credentials in any form.
pub fn assert_no_credentials(body: &str) {
    for marker in [
        "<Credentials>",
        "<SessionToken>",
        "<SecretAccessKey>",
        "<AccessKeyId>",
    ] {
        assert!(
            !body.contains(marker),
            "a refusal carries {marker:?}: {body}"
        );
    }
}

/// An ID token with an explicit lifetime from the real provider (negative: already expired).
pub async fn id_token_expiring_in(idp: &super::idp::TestIdp, sub: &str, seconds: i64) -> String {
    let expires = seconds.to_string();
    let form = [
        ("grant_type", super::idp::ID_TOKEN_GRANT),
        ("sub", sub),
        ("alg", "RS256"),
        ("expires_in", expires.as_str()),
    ];
    let (status, body) = idp.token_request(super::idp::CLIENT_ID, &form).await;
    assert_eq!(status, reqwest::StatusCode::OK, "{body}");
    body.get("id_token")
        .and_then(serde_json::Value::as_str)
        .unwrap_or_else(|| panic!("no id_token in {body}"))
        .to_owned()
}

/// A running provider with its keys directory, removed when dropped (after the provider).
pub struct Idp {
    /// The provider.
    pub idp: super::idp::TestIdp,
    /// Owns the keys directory.
    pub dir: tempfile::TempDir,
}

impl Idp {
    /// Starts a provider in a fresh directory.
    pub async fn start() -> Idp {
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("tempdir: {e}"));
        let idp = super::idp::TestIdp::start(dir.path()).await;
        Idp { idp, dir }
    }

    /// `host:port[/path]` of the issuer: the provider's name in ARNs and its condition-key prefix.
    pub fn prefix(&self) -> String {
        prefix_of(self.idp.issuer())
    }

    /// `arn:aws:iam::ACCOUNT:oidc-provider/<prefix>`.
    pub fn provider_arn(&self) -> String {
        format!("arn:aws:iam::{ACCOUNT}:oidc-provider/{}", self.prefix())
    }
}

/// The issuer without its scheme.
pub fn prefix_of(issuer: &str) -> String {
    issuer
        .split_once("://")
        .map(|(_, rest)| rest.trim_end_matches('/').to_owned())
        .unwrap_or_else(|| issuer.to_owned())
}

/// `arn:aws:iam::ACCOUNT:role/NAME`.
pub fn role_arn(name: &str) -> String {
    format!("arn:aws:iam::{ACCOUNT}:role/{name}")
}

/// A trust policy letting the provider's tokens for [`super::idp::CLIENT_ID`] assume a role, with
/// extra actions and extra conditions (a JSON object of operator → {key → value}, or empty).
pub fn web_trust(prefix: &str, actions: &[&str], extra_conditions: &str) -> String {
    let mut all_actions = vec!["sts:AssumeRoleWithWebIdentity"];
    all_actions.extend_from_slice(actions);
    let actions_json = serde_json::to_string(&all_actions).unwrap_or_default();
    let mut conditions = format!(
        "\"StringEquals\": {{\"{prefix}:aud\": \"{}\"}}",
        super::idp::CLIENT_ID
    );
    if !extra_conditions.is_empty() {
        conditions.push_str(", ");
        conditions.push_str(extra_conditions);
    }
    format!(
        r#"{{"Version": "2012-10-17", "Statement": [{{"Effect": "Allow",
  "Principal": {{"Federated": "arn:aws:iam::{ACCOUNT}:oidc-provider/{prefix}"}},
  "Action": {actions_json},
  "Condition": {{{conditions}}}}}]}}"#
    )
}

/// A trust policy letting the given AWS principals (ARNs or account ids) `sts:AssumeRole`.
pub fn aws_trust(principals: &[&str], actions: &[&str]) -> String {
    let mut all_actions = vec!["sts:AssumeRole"];
    all_actions.extend_from_slice(actions);
    format!(
        r#"{{"Version": "2012-10-17", "Statement": [{{"Effect": "Allow",
  "Principal": {{"AWS": {}}}, "Action": {}}}]}}"#,
        serde_json::to_string(principals).unwrap_or_default(),
        serde_json::to_string(&all_actions).unwrap_or_default()
    )
}

/// An identity policy allowing `actions` on `resource`.
pub fn allow(actions: &[&str], resource: &str) -> String {
    format!(
        r#"{{"Version": "2012-10-17", "Statement": [{{"Effect": "Allow", "Action": {}, "Resource": "{resource}"}}]}}"#,
        serde_json::to_string(actions).unwrap_or_default()
    )
}
