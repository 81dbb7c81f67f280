//! The shared fixture of rolegate's tests.
//!
//! [`config`] starts a configuration from the text every test shares (`[server]` on loopback with
//! the public URL [`PUBLIC_URL`], the memory store, account [`ACCOUNT`] named `main`) and adds the
//! pieces a test needs: raw TOML ([`TestConfig::with`]), permission sets assigned to the local
//! group `dev` ([`TestConfig::permission_set`]), roles ([`TestConfig::role`]) and the environment
//! the configuration reads ([`TestConfig::env`]). [`TestConfig::build`] makes the app over an
//! in-memory store with a [`FixedClock`] the test moves. The functions after it drive that app the
//! way a browser or a client does: requests through the whole router, the cookies and pages they
//! answer, the audit events they leave, and the people of the directory.
//!
//! The unit tests compile this module with `cfg(test)`. The integration tests (tests/support) use
//! it through the `testing` cargo feature, which only the package's dev-dependency on itself turns
//! on: a release build, or any build of rolegate as a dependency, neither compiles nor exports it.

use crate::app::App;
use crate::audit::AuditEvent;
use crate::clock::{FixedClock, SharedClock};
use crate::config::Config;
use crate::portal::SignedInIdentity;
use crate::store::AuditQuery;
use axum::body::Body;
use axum::http::{header, Request};
use axum::response::Response;
use std::sync::Arc;
use tower::ServiceExt;

/// The account of the shared configuration.
pub const ACCOUNT: &str = "111122223333";
/// Where the shared configuration says rolegate is reached; also the `Origin` of the portal's forms.
pub const PUBLIC_URL: &str = "http://127.0.0.1:8080";
/// A policy document that allows everything.
pub const ALLOW_ALL: &str =
    r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"*","Resource":"*"}]}"#;

/// A test configuration: the shared head and the pieces the test adds, in the order added.
#[derive(Clone, Debug)]
pub struct TestConfig {
    listen: String,
    public_url: String,
    accounts: Vec<(String, String)>,
    pieces: String,
    env: Vec<(String, String)>,
}

/// The shared configuration, nothing added yet.
pub fn config() -> TestConfig {
    TestConfig {
        listen: "127.0.0.1:0".into(),
        public_url: PUBLIC_URL.into(),
        accounts: vec![(ACCOUNT.into(), "main".into())],
        pieces: String::new(),
        env: Vec::new(),
    }
}

impl TestConfig {
    /// Listens on `listen` and is reached at `public_url` instead of the loopback defaults.
    pub fn server(mut self, listen: &str, public_url: &str) -> Self {
        self.listen = listen.into();
        self.public_url = public_url.into();
        self
    }

    /// Replaces the accounts (id, name); the default is [`ACCOUNT`] named `main`.
    pub fn accounts(mut self, accounts: &[(&str, &str)]) -> Self {
        self.accounts = accounts
            .iter()
            .map(|(id, name)| (id.to_string(), name.to_string()))
            .collect();
        self
    }

    /// Adds configuration text (whole tables: it goes after what is there).
    pub fn with(mut self, toml: &str) -> Self {
        if !self.pieces.is_empty() && !self.pieces.ends_with('\n') {
            self.pieces.push('\n');
        }
        self.pieces.push_str(toml);
        self
    }

    /// Adds a permission set with `settings` (its own lines, e.g. `mfa = "required"`) and one
    /// policy `all` allowing everything, assigned to the local group `dev` in [`ACCOUNT`].
    pub fn permission_set(self, name: &str, settings: &str) -> Self {
        self.assigned_set(name, settings, ("all", ALLOW_ALL), &[ACCOUNT])
    }

    /// [`TestConfig::permission_set`] assigned in `accounts`.
    pub fn permission_set_in(self, name: &str, settings: &str, accounts: &[&str]) -> Self {
        self.assigned_set(name, settings, ("all", ALLOW_ALL), accounts)
    }

    /// [`TestConfig::permission_set`] with another policy (name, document) instead of `all`.
    pub fn permission_set_with_policy(
        self,
        name: &str,
        settings: &str,
        policy: (&str, &str),
    ) -> Self {
        self.assigned_set(name, settings, policy, &[ACCOUNT])
    }

    fn assigned_set(
        self,
        name: &str,
        settings: &str,
        policy: (&str, &str),
        accounts: &[&str],
    ) -> Self {
        self.unassigned_set(name, settings, &[policy])
            .assignment_rule("local", name, accounts, "local_group = \"dev\"")
    }

    /// Adds a permission set with `settings` (its own lines) and the inline `policies` (name,
    /// document), which no rule assigns yet.
    pub fn unassigned_set(self, name: &str, settings: &str, policies: &[(&str, &str)]) -> Self {
        let mut text = format!(
            "[[permission_sets]]\nname = \"{name}\"\n{}",
            lines(settings)
        );
        for (policy, document) in policies {
            text.push_str(&format!(
                "[[permission_sets.policies]]\nname = \"{policy}\"\ndocument = '{document}'\n"
            ));
        }
        self.with(&text)
    }

    /// Adds an assignment rule: the people of `provider` that `condition` selects (its own lines,
    /// e.g. `group = "admins"`) get the permission set `set` in `accounts`.
    pub fn assignment_rule(
        self,
        provider: &str,
        set: &str,
        accounts: &[&str],
        condition: &str,
    ) -> Self {
        let accounts = accounts
            .iter()
            .map(|a| format!("\"{a}\""))
            .collect::<Vec<_>>()
            .join(", ");
        self.with(&format!(
            "[[assignment_rules]]\nprovider = \"{provider}\"\npermission_set = \"{set}\"\n\
             accounts = [{accounts}]\n{}",
            lines(condition)
        ))
    }

    /// Adds a managed policy `name` of `account` with `document`.
    pub fn managed_policy(self, account: &str, name: &str, document: &str) -> Self {
        self.with(&format!(
            "[[managed_policies]]\naccount = \"{account}\"\nname = \"{name}\"\ndocument = '{document}'\n"
        ))
    }

    /// Adds an OpenID provider `name` of `issuer` whose tokens are for `audience`, with `settings`
    /// (its own lines, e.g. `groups_delimiter = ","`).
    pub fn oidc_provider(self, name: &str, issuer: &str, audience: &str, settings: &str) -> Self {
        self.with(&format!(
            "[[oidc_providers]]\nname = \"{name}\"\nissuer = \"{issuer}\"\naudiences = [\"{audience}\"]\n{}",
            lines(settings)
        ))
    }

    /// Turns the admin API on, its bearer token read from the variable `var`, set to `token`.
    pub fn admin_token(self, var: &str, token: &str) -> Self {
        self.with(&format!("[admin]\ntoken_env = \"{var}\"\n"))
            .env(var, token)
    }

    /// Adds a SCIM client `name` of `provider` that matches users on `matching`, its bearer token
    /// read from the variable `var`, set to `token`; with `settings` (its own lines).
    pub fn scim_client(
        self,
        name: &str,
        provider: &str,
        matching: &str,
        (var, token): (&str, &str),
        settings: &str,
    ) -> Self {
        self.with(&format!(
            "[[scim_clients]]\nname = \"{name}\"\nprovider = \"{provider}\"\nmatch = \"{matching}\"\n\
             token_env = \"{var}\"\n{}",
            lines(settings)
        ))
        .env(var, token)
    }

    /// Adds a role of [`ACCOUNT`] with a trust policy and no permission policies.
    pub fn role(self, name: &str, trust_policy: &str) -> Self {
        self.with(&format!(
            "[[roles]]\naccount = \"{ACCOUNT}\"\nname = \"{name}\"\ntrust_policy = '''{trust_policy}'''\n"
        ))
    }

    /// Adds a downstream service `name` that signs as `signing_name` and calls
    /// `POST /v1/authorize` with `token` (from the variable `<NAME>_TOKEN`).
    pub fn service(self, name: &str, signing_name: &str, token: &str) -> Self {
        let var = format!("{}_TOKEN", name.to_uppercase());
        self.with(&format!(
            "[[services]]\nname = \"{name}\"\nsigning_names = [\"{signing_name}\"]\ntoken_env = \"{var}\"\n"
        ))
        .env(&var, token)
    }

    /// Sets an environment variable the configuration reads (`*_env` settings).
    pub fn env(mut self, name: &str, value: &str) -> Self {
        self.env.push((name.into(), value.into()));
        self
    }

    /// The whole configuration text.
    pub fn text(&self) -> String {
        let mut text = format!(
            "[server]\nlisten = \"{}\"\npublic_url = \"{}\"\n[store]\nkind = \"memory\"\n",
            self.listen, self.public_url
        );
        for (id, name) in &self.accounts {
            text.push_str(&format!("[[accounts]]\nid = \"{id}\"\nname = \"{name}\"\n"));
        }
        text.push_str(&self.pieces);
        text
    }

    /// The configuration, loaded as `/etc/rolegate.toml`; panics with the text on any problem.
    pub fn load(&self) -> Config {
        let text = self.text();
        Config::from_str_with_env(std::path::Path::new("/etc/rolegate.toml"), &text, &self.env)
            .unwrap_or_else(|e| panic!("test configuration: {e}\n{text}"))
    }

    /// The app over an in-memory store, its clock standing at `t0` (Unix seconds).
    pub async fn build(self, t0: i64) -> (Arc<App>, FixedClock) {
        let clock = FixedClock::new(
            chrono::DateTime::from_timestamp(t0, 0).unwrap_or_else(|| panic!("bad time {t0}")),
        );
        let app = self.build_on(Arc::new(clock.clone())).await;
        (app, clock)
    }

    /// The app over an in-memory store and `clock`.
    pub async fn build_on(self, clock: SharedClock) -> Arc<App> {
        App::build(
            self.load(),
            Arc::new(crate::store::MemoryStore::new()),
            clock,
        )
        .await
        .unwrap_or_else(|e| panic!("building the test app: {e:#}"))
    }
}

/// `settings` as whole lines: empty, or ending with a newline.
fn lines(settings: &str) -> String {
    if settings.is_empty() || settings.ends_with('\n') {
        settings.to_string()
    } else {
        format!("{settings}\n")
    }
}

/// Sends `req` through the whole router.
pub async fn send(app: &Arc<App>, req: Request<Body>) -> Response {
    crate::web::router(app.clone())
        .oneshot(req)
        .await
        .unwrap_or_else(|e| match e {})
}

/// `GET path` with a `Cookie` header.
pub async fn get(app: &Arc<App>, path: &str, cookies: &str) -> Response {
    let req = Request::get(path)
        .header(header::COOKIE, cookies)
        .body(Body::empty())
        .unwrap_or_else(|e| panic!("request: {e}"));
    send(app, req).await
}

/// `POST path` of a form, with a `Cookie` header, from `origin`.
pub async fn post_form(
    app: &Arc<App>,
    path: &str,
    cookies: &str,
    origin: &str,
    form: &[(&str, &str)],
) -> Response {
    let req = Request::post(path)
        .header(header::COOKIE, cookies)
        .header(header::ORIGIN, origin)
        .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
        .body(Body::from(form_body(form)))
        .unwrap_or_else(|e| panic!("request: {e}"));
    send(app, req).await
}

/// `pairs` as an `application/x-www-form-urlencoded` text (a body or a query).
pub fn form_body(pairs: &[(&str, &str)]) -> String {
    form_urlencoded::Serializer::new(String::new())
        .extend_pairs(pairs)
        .finish()
}

/// The body of `resp` as text.
pub async fn text(resp: Response) -> String {
    let bytes = axum::body::to_bytes(resp.into_body(), 1 << 20)
        .await
        .unwrap_or_else(|e| panic!("reading the body: {e}"));
    String::from_utf8(bytes.to_vec()).unwrap_or_else(|e| panic!("a body of text: {e}"))
}

/// The whole first `Set-Cookie` header of `resp` that sets `name` (attributes included).
pub fn set_cookie_header(resp: &Response, name: &str) -> Option<String> {
    resp.headers()
        .get_all(header::SET_COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find(|c| c.starts_with(&format!("{name}=")))
        .map(str::to_string)
}

/// The value the first `Set-Cookie` of `name` gives, unless it is empty (a cookie cleared).
pub fn set_cookie(resp: &Response, name: &str) -> Option<String> {
    set_cookie_header(resp, name)
        .map(|c| {
            c[name.len() + 1..]
                .split(';')
                .next()
                .unwrap_or("")
                .to_string()
        })
        .filter(|v| !v.is_empty())
}

/// The `Location` of `resp` (empty without one).
pub fn location(resp: &Response) -> String {
    resp.headers()
        .get(header::LOCATION)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_string()
}

/// The value of the first `csrf` field of a page.
pub fn csrf_of(html: &str) -> String {
    let at = html
        .find("name=\"csrf\" value=\"")
        .unwrap_or_else(|| panic!("no csrf field in {html}"))
        + 19;
    html[at..at + 43].to_string()
}

/// Text askama escaped in HTML, read back.
pub fn unescape(s: &str) -> String {
    s.replace("&#34;", "\"")
        .replace("&#39;", "'")
        .replace("&#60;", "<")
        .replace("&#62;", ">")
        .replace("&#43;", "+")
        .replace("&#47;", "/")
        .replace("&#61;", "=")
        .replace("&#38;", "&")
}

/// What stands in `html` between `marker` and the next `"`, unescaped: an attribute's value when
/// `marker` ends with its opening quote.
pub fn quoted_after(html: &str, marker: &str) -> String {
    let at = html
        .find(marker)
        .unwrap_or_else(|| panic!("no {marker} in {html}"))
        + marker.len();
    let end = at
        + html[at..]
            .find('"')
            .unwrap_or_else(|| panic!("no closing quote after {marker} in {html}"));
    unescape(&html[at..end])
}

/// Every audit event of `action` so far (after a flush).
pub async fn audit(app: &App, action: &str) -> Vec<AuditEvent> {
    app.audit.flush().await;
    crate::audit::query(
        app.store.as_ref(),
        &AuditQuery {
            action: Some(action.into()),
            limit: 10_000,
            ..AuditQuery::default()
        },
    )
    .await
    .unwrap_or_else(|e| panic!("audit query: {e}"))
}

/// The audit event of the request `request_id` (after a flush).
pub async fn audit_event(app: &App, request_id: &str) -> AuditEvent {
    app.audit.flush().await;
    crate::audit::query(app.store.as_ref(), &AuditQuery::default())
        .await
        .unwrap_or_else(|e| panic!("audit query: {e}"))
        .into_iter()
        .find(|e| e.request_id == request_id)
        .unwrap_or_else(|| panic!("no audit event for {request_id}"))
}

/// The decision and reason of the newest audit event of `action`.
pub async fn last_reason(app: &App, action: &str) -> (String, String) {
    let events = audit(app, action).await;
    let ev = events
        .iter()
        .max_by_key(|e| e.time.clone())
        .unwrap_or_else(|| panic!("no {action} event"));
    (ev.decision.clone(), ev.reason.clone().unwrap_or_default())
}

/// The directory user `ana` of group `dev`, signed in (without claims) with or without MFA.
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

/// Creates the directory user `name` in `groups` (creating the groups it does not have yet).
pub async fn directory_user(app: &App, name: &str, groups: &[&str]) -> crate::idp::local::User {
    let d = app
        .directory
        .clone()
        .unwrap_or_else(|| panic!("the test app has no directory"));
    d.create_user(name, None)
        .await
        .unwrap_or_else(|e| panic!("creating {name}: {e}"));
    for g in groups {
        if d.group(g).await.is_err() {
            d.create_group(g, None)
                .await
                .unwrap_or_else(|e| panic!("creating group {g}: {e}"));
        }
        d.add_user_to_group(name, g)
            .await
            .unwrap_or_else(|e| panic!("adding {name} to {g}: {e}"));
    }
    d.user(name)
        .await
        .unwrap_or_else(|e| panic!("reading {name}: {e}"))
}

/// A bootstrap token for root newly issued by `d` (root not bootstrapped, no token valid).
pub async fn root_token(d: &crate::idp::local::Directory) -> String {
    let bootstrap = d
        .ensure_root()
        .await
        .unwrap_or_else(|e| panic!("ensuring root: {e}"));
    bootstrap
        .new_token()
        .unwrap_or_else(|| panic!("no new bootstrap token"))
        .to_string()
}

/// `identity` as a sign-in of the directory: a local identity names its directory user, which is
/// created (in the identity's groups) when the app does not have it yet.
pub async fn in_directory(app: &App, mut identity: SignedInIdentity) -> SignedInIdentity {
    if identity.provider != "local" || identity.origin_user.is_some() {
        return identity;
    }
    let d = app
        .directory
        .clone()
        .unwrap_or_else(|| panic!("the test app has no directory"));
    let user = match d.user(&identity.subject).await {
        Ok(u) => u,
        Err(_) => {
            let groups: Vec<&str> = identity.local_groups.iter().map(String::as_str).collect();
            directory_user(app, &identity.subject, &groups).await
        }
    };
    identity.origin_user = Some(user.user_id);
    identity
}

/// Enables a TOTP device of the directory user `name` with the codes of the steps at `first` and
/// 30 seconds later; returns the secret.
pub async fn enable_totp(app: &App, name: &str, first: i64) -> Vec<u8> {
    use crate::idp::local::totp;
    let d = app
        .directory
        .clone()
        .unwrap_or_else(|| panic!("the test app has no directory"));
    let e = d
        .create_totp(name)
        .await
        .unwrap_or_else(|e| panic!("creating a TOTP device: {e}"));
    let secret = totp::from_base32(e.secret_base32.expose())
        .unwrap_or_else(|e| panic!("the TOTP secret: {e}"));
    let code = |t: i64| totp::code_at(&secret, t).unwrap_or_else(|e| panic!("a TOTP code: {e}"));
    d.enable_totp(name, &code(first), &code(first + 30))
        .await
        .unwrap_or_else(|e| panic!("enabling the TOTP device: {e}"));
    secret
}

/// A portal session of `identity` started at `now`: its `Cookie` header and its CSRF token.
pub async fn portal_session(app: &App, identity: SignedInIdentity, now: i64) -> (String, String) {
    use crate::portal::session;
    let token = session::create(app.store.as_ref(), identity, "127.0.0.1".into(), now)
        .await
        .unwrap_or_else(|e| panic!("creating a session: {e}"));
    let stored = app
        .store
        .dir_get(session::SESSION_KIND, &session::key_of(&token))
        .await
        .unwrap_or_else(|e| panic!("reading the session: {e}"))
        .unwrap_or_else(|| panic!("the session was not stored"));
    let record: session::SessionRecord =
        serde_json::from_str(&stored.value).unwrap_or_else(|e| panic!("the session record: {e}"));
    (format!("{}={token}", session::SESSION_COOKIE), record.csrf)
}

/// Credentials of permission set `set` in `account` for `identity`, as the portal issues them:
/// access key id, secret and session token.
pub async fn assignment_credentials(
    app: &App,
    identity: &SignedInIdentity,
    account: &str,
    set: &str,
) -> (String, String, String) {
    let admitted = crate::authz::gate::admit_sign_in(app, identity)
        .await
        .unwrap_or_else(|e| panic!("the gate refused the sign-in: {e}"));
    let mut ev = AuditEvent::new(app.clock.now(), "t", "portal:GetCredentials");
    let (claims, token) =
        crate::sts::credentials_for_assignment(app, &admitted, account, set, &mut ev)
            .unwrap_or_else(|e| panic!("credentials for {set}: {e:?}"));
    (claims.access_key_id, claims.secret_access_key, token)
}
