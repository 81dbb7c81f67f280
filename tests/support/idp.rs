//! A real OpenID Connect provider for end-to-end tests: `tests/node/oidc-idp.mjs` (npm `oidc-provider`)
//! run as a child process on 127.0.0.1 with plain-http issuer `http://127.0.0.1:PORT[/path]`.
//!
//! It issues genuine ID tokens through the custom grant `urn:rolegate:test:id-token` (header `alg`,
//! `kid`; claims `sub`, `aud` = the client id as a string, `iss`, `iat`, `exp` = `iat` + 3600, plus the
//! extra claims asked for; no `azp`, `auth_time` or `nonce`), signs arbitrary forged JWS through
//! `POST /test/sign`, and counts discovery and JWKS fetches (`GET /test/stats`). Keys live in
//! `<keys_dir>/keys.json` (created on first start) so a key can be added and the provider restarted on the
//! same port. The provider's own log goes to `<keys_dir>/oidc-idp.log`.
//!
//! The npm packages come from `scripts/test` (`npm ci` in `tests/node`). `ROLEGATE_TEST_NODE_DIR`
//! overrides where `oidc-idp.mjs` and its `node_modules` are looked for. This module knows nothing of
//! rolegate itself.
#![allow(dead_code)]

use std::fs::{File, OpenOptions};
use std::io::{BufRead, BufReader, Read};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use serde_json::{json, Value};

/// Client id whose ID tokens [`TestIdp::id_token`] issues.
pub const CLIENT_ID: &str = "rolegate-test";
/// Secret of [`CLIENT_ID`] (client_secret_basic).
pub const CLIENT_SECRET: &str = "rolegate-test-secret";
/// A second registered client, for tokens with a foreign audience.
pub const OTHER_CLIENT_ID: &str = "rolegate-other";
/// Secret of [`OTHER_CLIENT_ID`].
pub const OTHER_CLIENT_SECRET: &str = "rolegate-other-secret";
/// Grant type at the token endpoint that returns a signed ID token for a given `sub` and claims.
pub const ID_TOKEN_GRANT: &str = "urn:rolegate:test:id-token";
/// Kids of the keys generated for a new keys file: RSA-2048 (RS256) and P-256 (ES256).
pub const RSA_KID: &str = "rsa-1";
/// See [`RSA_KID`].
pub const EC_KID: &str = "ec-1";

const START_TIMEOUT: Duration = Duration::from_secs(30);
const STOP_TIMEOUT: Duration = Duration::from_secs(5);
const HTTP_TIMEOUT: Duration = Duration::from_secs(15);

/// How to start the provider; `Default` is a free port, issuer at the root, redirect URI
/// `http://127.0.0.1/callback` (the clients are `native`, so any loopback port matches).
#[derive(Clone, Debug, Default)]
pub struct IdpOptions {
    /// Port to listen on; 0 picks a free one.
    pub port: u16,
    /// Path part of the issuer, e.g. `/realms/test`.
    pub issuer_path: Option<String>,
    /// Redirect URIs registered for both clients.
    pub redirect_uris: Vec<String>,
}

/// A running `oidc-idp.mjs`; the child process is killed when this is dropped.
pub struct TestIdp {
    child: Option<Child>,
    issuer: String,
    port: u16,
    keys_file: PathBuf,
    options: IdpOptions,
    http: reqwest::Client,
}

/// Directory holding `oidc-idp.mjs` and `node_modules`.
pub fn node_dir() -> PathBuf {
    match std::env::var_os("ROLEGATE_TEST_NODE_DIR") {
        Some(dir) if !dir.is_empty() => PathBuf::from(dir),
        _ => Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("tests")
            .join("node"),
    }
}

/// Panics with instructions unless `dir` has the npm packages installed.
pub fn ensure_node_modules(dir: &Path) {
    let marker = dir
        .join("node_modules")
        .join("oidc-provider")
        .join("package.json");
    if !marker.is_file() {
        panic!(
            "{} is missing: run scripts/test to install the test dependencies \
             (or `npm ci` in {})",
            marker.display(),
            dir.display()
        );
    }
}

impl TestIdp {
    /// Starts the provider on a free port with keys in `keys_dir/keys.json`.
    pub async fn start(keys_dir: &Path) -> TestIdp {
        Self::start_with(keys_dir, IdpOptions::default()).await
    }

    /// Starts the provider with explicit options.
    pub async fn start_with(keys_dir: &Path, options: IdpOptions) -> TestIdp {
        std::fs::create_dir_all(keys_dir)
            .unwrap_or_else(|e| panic!("cannot create {}: {e}", keys_dir.display()));
        let keys_file = keys_dir.join("keys.json");
        match launch(&keys_file, &options).await {
            Ok(idp) => idp,
            Err(log) => panic!("oidc-idp.mjs did not start:\n{log}"),
        }
    }

    /// Issuer URL exactly as it appears in `iss` and discovery.
    pub fn issuer(&self) -> &str {
        &self.issuer
    }

    /// Port the provider listens on (127.0.0.1).
    pub fn port(&self) -> u16 {
        self.port
    }

    /// `http://127.0.0.1:PORT`, where the `/test/` endpoints live whatever the issuer path.
    pub fn base_url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// The discovery document URL.
    pub fn discovery_url(&self) -> String {
        format!("{}/.well-known/openid-configuration", self.issuer)
    }

    /// The JWKS URL (as advertised in discovery).
    pub fn jwks_uri(&self) -> String {
        format!("{}/jwks", self.issuer)
    }

    /// The token endpoint URL.
    pub fn token_endpoint(&self) -> String {
        format!("{}/token", self.issuer)
    }

    /// The private JWKS file.
    pub fn keys_file(&self) -> &Path {
        &self.keys_file
    }

    /// An RS256 ID token for [`CLIENT_ID`] with `sub` and the extra `claims` (a JSON object, or null).
    pub async fn id_token(&self, sub: &str, claims: Value) -> String {
        self.id_token_for(CLIENT_ID, "RS256", sub, claims).await
    }

    /// An ID token for `client_id` (audience), signed with `alg` (`RS256` or `ES256`).
    pub async fn id_token_for(
        &self,
        client_id: &str,
        alg: &str,
        sub: &str,
        claims: Value,
    ) -> String {
        let claims_json = claims_param(&claims);
        let mut form = vec![("grant_type", ID_TOKEN_GRANT), ("sub", sub), ("alg", alg)];
        if let Some(c) = claims_json.as_deref() {
            form.push(("claims", c));
        }
        let (status, body) = self.token_request(client_id, &form).await;
        if status != reqwest::StatusCode::OK {
            panic!("ID token request failed with {status}: {body}");
        }
        body.get("id_token")
            .and_then(Value::as_str)
            .unwrap_or_else(|| panic!("no id_token in {body}"))
            .to_owned()
    }

    /// POSTs `form` to the token endpoint authenticated as `client_id` (a registered client) and
    /// returns the status and JSON body, for tests of the provider's error answers.
    pub async fn token_request(
        &self,
        client_id: &str,
        form: &[(&str, &str)],
    ) -> (reqwest::StatusCode, Value) {
        let secret = client_secret(client_id);
        let response = self
            .http
            .post(self.token_endpoint())
            .basic_auth(client_id, Some(secret))
            .form(form)
            .send()
            .await
            .unwrap_or_else(|e| panic!("token endpoint unreachable: {e}"));
        let status = response.status();
        let body = response
            .json::<Value>()
            .await
            .unwrap_or_else(|e| panic!("token endpoint answered non-JSON ({status}): {e}"));
        (status, body)
    }

    /// A compact JWS with exactly this `header` and `payload`, signed by the private key `kid`
    /// (algorithm from the header when that key can do it, else the key's own `alg`).
    pub async fn sign(&self, header: Value, payload: Value, kid: &str) -> String {
        self.sign_with(json!({ "header": header, "payload": payload, "kid": kid }))
            .await
    }

    /// `POST /test/sign` with a raw request body: `sign_alg`, a string `payload`, or
    /// `raw_alg: "HS256"` with an optional `hmac_key` (default: the SPKI PEM of `kid`).
    pub async fn sign_with(&self, request: Value) -> String {
        let body = self
            .get_or_post_json(&format!("{}/test/sign", self.base_url()), Some(&request))
            .await;
        body.get("token")
            .and_then(Value::as_str)
            .unwrap_or_else(|| panic!("no token in {body}"))
            .to_owned()
    }

    /// The SPKI PEM of the public key `kid`.
    pub async fn public_pem(&self, kid: &str) -> String {
        let url = format!("{}/test/public-pem?kid={kid}", self.base_url());
        let response = self
            .http
            .get(url)
            .send()
            .await
            .unwrap_or_else(|e| panic!("/test/public-pem unreachable: {e}"));
        let status = response.status();
        let text = response
            .text()
            .await
            .unwrap_or_else(|e| panic!("/test/public-pem body: {e}"));
        if status != reqwest::StatusCode::OK {
            panic!("/test/public-pem answered {status}: {text}");
        }
        text
    }

    /// `(jwks_requests, discovery_requests)` served since this process started.
    pub async fn stats(&self) -> (u64, u64) {
        let body = self
            .get_or_post_json(&format!("{}/test/stats", self.base_url()), None)
            .await;
        let count = |name: &str| {
            body.get(name)
                .and_then(Value::as_u64)
                .unwrap_or_else(|| panic!("no {name} in {body}"))
        };
        (count("jwks_requests"), count("discovery_requests"))
    }

    /// Adds a new RSA-2048 key `kid` as the first (current) signing key of the keys file. The running
    /// provider keeps its keys until [`TestIdp::restart`].
    pub fn add_key(&self, kid: &str) {
        let dir = node_dir();
        let output = Command::new("node")
            .current_dir(&dir)
            .arg("oidc-idp.mjs")
            .arg("--add-key")
            .arg(&self.keys_file)
            .arg("--kid")
            .arg(kid)
            .stdin(Stdio::null())
            .output()
            .unwrap_or_else(|e| panic!("cannot run node: {e}"));
        if !output.status.success() {
            panic!(
                "oidc-idp.mjs --add-key failed ({}): {}",
                output.status,
                String::from_utf8_lossy(&output.stderr)
            );
        }
    }

    /// Stops the provider and starts it again on the same port with the same keys file (re-read),
    /// so the issuer is unchanged. Counters start again from zero.
    pub async fn restart(mut self) -> TestIdp {
        if let Some(child) = self.child.take() {
            terminate(child).await;
        }
        let options = IdpOptions {
            port: self.port,
            ..self.options.clone()
        };
        // The port was just released; another process may hold it for a moment.
        let deadline = Instant::now() + START_TIMEOUT;
        loop {
            match launch(&self.keys_file, &options).await {
                Ok(idp) => {
                    assert_eq!(idp.issuer, self.issuer, "issuer changed across restart");
                    return idp;
                }
                Err(log) if Instant::now() >= deadline => {
                    panic!("oidc-idp.mjs did not restart on port {}:\n{log}", self.port)
                }
                Err(_) => tokio::time::sleep(Duration::from_millis(100)).await,
            }
        }
    }

    /// Stops the provider (EOF on its stdin, then SIGKILL after 5 s); panics unless it exited cleanly.
    pub async fn stop(mut self) {
        if let Some(child) = self.child.take() {
            let status = terminate(child).await;
            assert!(status.success(), "oidc-idp.mjs exited with {status}");
        }
    }

    async fn get_or_post_json(&self, url: &str, body: Option<&Value>) -> Value {
        let request = match body {
            Some(b) => self.http.post(url).json(b),
            None => self.http.get(url),
        };
        let response = request
            .send()
            .await
            .unwrap_or_else(|e| panic!("{url} unreachable: {e}"));
        let status = response.status();
        let value = response
            .json::<Value>()
            .await
            .unwrap_or_else(|e| panic!("{url} answered non-JSON ({status}): {e}"));
        if status != reqwest::StatusCode::OK {
            panic!("{url} answered {status}: {value}");
        }
        value
    }
}

impl Drop for TestIdp {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

fn client_secret(client_id: &str) -> &'static str {
    match client_id {
        CLIENT_ID => CLIENT_SECRET,
        OTHER_CLIENT_ID => OTHER_CLIENT_SECRET,
        other => panic!("{other} is not a client of the test provider"),
    }
}

fn claims_param(claims: &Value) -> Option<String> {
    match claims {
        Value::Null => None,
        Value::Object(map) if map.is_empty() => None,
        Value::Object(_) => Some(claims.to_string()),
        other => panic!("claims must be a JSON object, not {other}"),
    }
}

fn log_file(keys_file: &Path) -> PathBuf {
    keys_file.with_file_name("oidc-idp.log")
}

fn read_log(path: &Path) -> String {
    let mut text = String::new();
    if let Ok(mut f) = File::open(path) {
        let _ = f.read_to_string(&mut text);
    }
    format!("--- {} ---\n{text}", path.display())
}

/// Spawns the provider and waits for its ready line; on failure returns its log.
async fn launch(keys_file: &Path, options: &IdpOptions) -> Result<TestIdp, String> {
    let dir = node_dir();
    ensure_node_modules(&dir);
    let log_path = log_file(keys_file);
    let log = OpenOptions::new()
        .create(true)
        .append(true)
        .open(&log_path)
        .map_err(|e| format!("cannot open {}: {e}", log_path.display()))?;

    let mut command = Command::new("node");
    command
        .current_dir(&dir)
        .arg("oidc-idp.mjs")
        .arg("--port")
        .arg(options.port.to_string())
        .arg("--keys")
        .arg(keys_file)
        .arg("--exit-on-stdin-close");
    if let Some(path) = &options.issuer_path {
        command.arg("--issuer-path").arg(path);
    }
    for uri in &options.redirect_uris {
        command.arg("--redirect-uri").arg(uri);
    }
    let mut child = command
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::from(log))
        .spawn()
        .map_err(|e| format!("cannot run node in {}: {e}", dir.display()))?;

    let Some(stdout) = child.stdout.take() else {
        return Err("no stdout pipe".to_owned());
    };
    let (tx, rx) = tokio::sync::oneshot::channel::<String>();
    std::thread::spawn(move || {
        let mut reader = BufReader::new(stdout);
        let mut line = String::new();
        if matches!(reader.read_line(&mut line), Ok(n) if n > 0) {
            let _ = tx.send(line);
            let _ = std::io::copy(&mut reader, &mut std::io::sink());
        }
    });

    let line = match tokio::time::timeout(START_TIMEOUT, rx).await {
        Ok(Ok(line)) => line,
        outcome => {
            let _ = child.kill();
            let status = child.wait();
            let why = if outcome.is_err() {
                "timed out".to_owned()
            } else {
                format!("exited ({status:?})")
            };
            return Err(format!("{why}\n{}", read_log(&log_path)));
        }
    };

    let ready: Value =
        serde_json::from_str(line.trim()).map_err(|e| format!("bad ready line {line:?}: {e}"))?;
    let issuer = ready
        .get("issuer")
        .and_then(Value::as_str)
        .ok_or_else(|| format!("no issuer in {line:?}"))?
        .to_owned();
    let port = ready
        .get("port")
        .and_then(Value::as_u64)
        .and_then(|p| u16::try_from(p).ok())
        .ok_or_else(|| format!("no port in {line:?}"))?;

    let http = reqwest::Client::builder()
        .no_proxy()
        .timeout(HTTP_TIMEOUT)
        .build()
        .map_err(|e| format!("http client: {e}"))?;

    Ok(TestIdp {
        child: Some(child),
        issuer,
        port,
        keys_file: keys_file.to_path_buf(),
        options: options.clone(),
        http,
    })
}

/// Closes the child's stdin (it exits on EOF), waits, and kills it if it lingers.
async fn terminate(mut child: Child) -> ExitStatus {
    drop(child.stdin.take());
    let deadline = Instant::now() + STOP_TIMEOUT;
    loop {
        match child.try_wait() {
            Ok(Some(status)) => return status,
            Ok(None) if Instant::now() < deadline => {
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            _ => {
                let _ = child.kill();
                match child.wait() {
                    Ok(status) => return status,
                    Err(e) => panic!("cannot reap oidc-idp.mjs: {e}"),
                }
            }
        }
    }
}
