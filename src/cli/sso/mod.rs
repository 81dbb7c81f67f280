//! `rolegate` as a command line client of an IAM Identity Center–compatible sign-in (its own, or
//! any that speaks the same APIs): `login` (PKCE through the browser with a loopback redirect, or
//! the device flow), `credentials` and `credential-process` (role credentials for a permission set),
//! `console` (a console sign-in URL), `configure` (an `[sso-session]` and profiles in
//! `~/.aws/config`) and `logout`. These commands read no server configuration.

mod api;
pub mod cache;
mod ini;

use anyhow::{bail, Context};
use api::{Api, ApiError, Endpoints, RoleCredentials};
use cache::{CachedRegistration, CachedToken, ProcessCredentials};
use chrono::{Duration, Utc};
use clap::{Args, ValueEnum};
use serde_json::json;
use subtle::ConstantTimeEq;

/// The scope that gives the portal API.
pub const SCOPE: &str = "sso:account:access";
/// A cached access token is refreshed when less than this is left (botocore's window).
const REFRESH_WINDOW: i64 = 15 * 60;
/// Cached role credentials are reused while more than this is left: the SDKs refresh
/// `credential_process` credentials 10–15 minutes before they expire, so handing out credentials
/// with less left would make them ask again at once.
const CREDENTIALS_MARGIN: i64 = 15 * 60;
/// Longest wait for the person to approve in the browser (PKCE).
const APPROVAL_WAIT: std::time::Duration = std::time::Duration::from_secs(600);
const DEVICE_GRANT: &str = "urn:ietf:params:oauth:grant-type:device_code";
const CODE_GRANT: &str = "authorization_code";
const REFRESH_GRANT: &str = "refresh_token";
/// The region written to caches and profiles when none is given (the SDKs need one).
const DEFAULT_REGION: &str = "us-east-1";

/// Which sign-in an sso-session is.
#[derive(Debug, Clone, Args)]
pub struct SessionArgs {
    /// The sso-session name (the AWS CLI's `sso_session`; the token cache is keyed by it).
    #[arg(long, default_value = "rolegate")]
    pub session_name: String,
    /// SSO-OIDC and portal API base URL (default: AWS_ENDPOINT_URL_SSO_OIDC / AWS_ENDPOINT_URL_SSO
    /// / AWS_ENDPOINT_URL, else the start URL's origin).
    #[arg(long)]
    pub endpoint_url: Option<String>,
}

/// `rolegate login`.
#[derive(Debug, Clone, Args)]
pub struct LoginArgs {
    /// The start URL (e.g. https://rolegate.example.com/start).
    #[arg(long)]
    pub start_url: String,
    /// The SSO region recorded for the SDKs.
    #[arg(long, default_value = DEFAULT_REGION)]
    pub region: String,
    /// Use the device code flow (approve on any device) instead of a browser on this machine.
    #[arg(long)]
    pub use_device_code: bool,
    /// Print the sign-in URL instead of opening a browser.
    #[arg(long)]
    pub no_browser: bool,
    #[command(flatten)]
    pub session: SessionArgs,
}

/// `rolegate credentials` / `credential-process` / `console`: one permission set in one account.
#[derive(Debug, Clone, Args)]
pub struct RoleArgs {
    /// Twelve-digit account id.
    #[arg(long)]
    pub account: String,
    /// The permission set (the portal API's role name).
    #[arg(long)]
    pub role: String,
    #[command(flatten)]
    pub session: SessionArgs,
}

/// Output of `rolegate credentials`.
#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum Format {
    /// `export` lines for a shell: the credentials, AWS_ENDPOINT_URL_STS (rolegate) and
    /// AWS_REGION / AWS_DEFAULT_REGION (the sign-in's region, `login --region`).
    Env,
    /// The `credential_process` JSON: credentials only, it cannot carry the STS endpoint or a
    /// region (set AWS_ENDPOINT_URL_STS and a region, or use `rolegate configure`).
    Json,
    /// A `~/.aws/credentials` profile: credentials only, that file cannot carry the STS endpoint or
    /// a region (`rolegate configure` writes them to the config file).
    Ini,
}

/// `rolegate configure`.
#[derive(Debug, Clone, Args)]
pub struct ConfigureArgs {
    /// The start URL.
    #[arg(long)]
    pub start_url: String,
    /// The SSO region.
    #[arg(long, default_value = DEFAULT_REGION)]
    pub region: String,
    /// The region of the profiles (default: the SSO region).
    #[arg(long)]
    pub profile_region: Option<String>,
    /// A profile for each `ACCOUNT:ROLE[:PROFILE]` (default profile name `ROLE-ACCOUNT`).
    #[arg(long = "profile", value_name = "ACCOUNT:ROLE[:PROFILE]")]
    pub profiles: Vec<String>,
    /// Write profiles that run `rolegate credential-process` instead of the SDKs' own SSO
    /// provider.
    #[arg(long)]
    pub credential_process: bool,
    #[command(flatten)]
    pub session: SessionArgs,
}

fn env(k: &str) -> Option<String> {
    std::env::var(k).ok()
}

fn api_for(start_url: &str, session: &SessionArgs) -> anyhow::Result<Api> {
    Api::new(Endpoints::resolve(
        start_url,
        session.endpoint_url.as_deref(),
        &env,
    )?)
}

fn random_b64(n: usize) -> anyhow::Result<String> {
    use base64::Engine;
    let mut b = vec![0u8; n];
    crate::credentials::fill_random(&mut b).map_err(|e| anyhow::anyhow!("{e}"))?;
    Ok(base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(b))
}

/// The PKCE S256 challenge of `verifier` (RFC 7636), computed as the server checks it.
pub fn pkce_challenge(verifier: &str) -> String {
    crate::sso::code::s256(verifier)
}

/// A client registration for `flow` from the cache, or a new one (kept until a day before its
/// secret expires).
async fn registration(
    api: &Api,
    args: &LoginArgs,
    flow: &str,
) -> anyhow::Result<CachedRegistration> {
    let path = cache::registration_path(&args.session.session_name, flow)?;
    if let Some(r) = cache::read::<CachedRegistration>(&path) {
        if cache::parse_time(&r.expires_at).is_ok_and(|t| t - Utc::now() > Duration::days(1)) {
            return Ok(r);
        }
    }
    let (grants, redirects): (&[&str], &[&str]) = if flow == "pkce" {
        (
            &[CODE_GRANT, REFRESH_GRANT],
            &["http://127.0.0.1/oauth/callback"],
        )
    } else {
        (&[DEVICE_GRANT, REFRESH_GRANT], &[])
    };
    let r = api
        .register(grants, redirects, &args.start_url)
        .await
        .context("registering this client")?;
    let expires = chrono::DateTime::from_timestamp(r.client_secret_expires_at, 0)
        .context("clientSecretExpiresAt out of range")?;
    let cached = CachedRegistration {
        client_id: r.client_id,
        client_secret: r.client_secret,
        expires_at: cache::rfc3339(expires),
        authorization_endpoint: r.authorization_endpoint,
    };
    cache::write(&path, &cached)?;
    Ok(cached)
}

fn open_or_print(url: &str, print_only: bool, what: &str) {
    if !print_only {
        let opener = std::env::var("BROWSER").unwrap_or_else(|_| "xdg-open".into());
        let opened = std::process::Command::new(&opener)
            .arg(url)
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .is_ok();
        if opened {
            eprintln!("Opening {what} in your browser. If it does not open, visit:\n\n  {url}\n");
            return;
        }
    }
    eprintln!("To {what}, open this URL:\n\n  {url}\n");
}

/// `rolegate login`.
pub async fn login(args: &LoginArgs) -> anyhow::Result<()> {
    let api = api_for(&args.start_url, &args.session)?;
    let flow = if args.use_device_code {
        "device"
    } else {
        "pkce"
    };
    let reg = registration(&api, args, flow).await?;
    let token = if args.use_device_code {
        device_login(&api, args, &reg).await?
    } else {
        pkce_login(&api, args, &reg).await?
    };
    let cached = CachedToken {
        start_url: args.start_url.clone(),
        region: args.region.clone(),
        access_token: token.access_token,
        expires_at: cache::rfc3339(Utc::now() + Duration::seconds(token.expires_in)),
        client_id: Some(reg.client_id),
        client_secret: Some(reg.client_secret),
        registration_expires_at: Some(reg.expires_at),
        refresh_token: token.refresh_token,
    };
    let path = cache::token_path(&args.session.session_name)?;
    cache::write(&path, &cached)?;
    eprintln!(
        "Signed in; the token for sso-session {:?} is cached in {}",
        args.session.session_name,
        path.display()
    );
    Ok(())
}

async fn device_login(
    api: &Api,
    args: &LoginArgs,
    reg: &CachedRegistration,
) -> anyhow::Result<api::Token> {
    let d = api
        .start_device(&reg.client_id, &reg.client_secret, &args.start_url)
        .await
        .context("starting the device authorization")?;
    eprintln!(
        "To sign in, open {} and confirm the code {} (it expires in {} minutes).",
        d.verification_uri,
        d.user_code,
        d.expires_in / 60
    );
    open_or_print(
        &d.verification_uri_complete,
        args.no_browser,
        "approve this sign-in",
    );
    let mut interval = d.interval.max(1);
    let deadline =
        std::time::Instant::now() + std::time::Duration::from_secs(d.expires_in.max(1) as u64 + 5);
    loop {
        tokio::time::sleep(std::time::Duration::from_secs(interval as u64)).await;
        match api
            .create_token(
                &reg.client_id,
                &reg.client_secret,
                DEVICE_GRANT,
                json!({"deviceCode": d.device_code}),
            )
            .await
        {
            Ok(t) => return Ok(t),
            Err(e) if e.code == "AuthorizationPendingException" => {}
            Err(e) if e.code == "SlowDownException" => interval += 5,
            Err(e) if e.code == "ExpiredTokenException" => {
                bail!(
                    "the code {} expired before it was approved; run rolegate login again",
                    d.user_code
                )
            }
            Err(e) if e.code == "AccessDeniedException" => {
                bail!("the sign-in was denied in the browser")
            }
            Err(e) => return Err(anyhow::Error::new(e).context("waiting for the approval")),
        }
        if std::time::Instant::now() > deadline {
            bail!(
                "the code {} expired before it was approved; run rolegate login again",
                d.user_code
            );
        }
    }
}

/// The first HTTP request on the loopback listener: its path and query.
async fn one_callback(
    listener: &tokio::net::TcpListener,
) -> anyhow::Result<(tokio::net::TcpStream, String)> {
    use tokio::io::AsyncReadExt;
    loop {
        let (mut s, _) = listener.accept().await?;
        let mut buf = Vec::with_capacity(2048);
        let mut chunk = [0u8; 2048];
        let head_end = loop {
            let n = s.read(&mut chunk).await?;
            if n == 0 {
                break None;
            }
            buf.extend_from_slice(&chunk[..n]);
            if let Some(p) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
                break Some(p);
            }
            if buf.len() > 16 * 1024 {
                break None;
            }
        };
        let Some(end) = head_end else { continue };
        let head = String::from_utf8_lossy(&buf[..end]).to_string();
        let mut parts = head.lines().next().unwrap_or("").split(' ');
        let (Some("GET"), Some(target)) = (parts.next(), parts.next()) else {
            continue;
        };
        if target.starts_with("/oauth/callback") {
            return Ok((s, target.to_string()));
        }
        // Anything else (a favicon): answer and keep waiting.
        respond(&mut s, "404 Not Found", "Not found").await;
    }
}

async fn respond(s: &mut tokio::net::TcpStream, status: &str, text: &str) {
    use tokio::io::AsyncWriteExt;
    let body = format!("<!doctype html><meta charset=utf-8><title>rolegate</title><p>{text}</p>");
    let msg = format!(
        "HTTP/1.1 {status}\r\ncontent-type: text/html; charset=utf-8\r\ncontent-length: {}\r\nconnection: close\r\ncache-control: no-store\r\n\r\n{body}",
        body.len()
    );
    let _ = s.write_all(msg.as_bytes()).await;
    let _ = s.shutdown().await;
}

async fn pkce_login(
    api: &Api,
    args: &LoginArgs,
    reg: &CachedRegistration,
) -> anyhow::Result<api::Token> {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .context("listening on a loopback port for the browser's answer")?;
    let port = listener.local_addr()?.port();
    let redirect_uri = format!("http://127.0.0.1:{port}/oauth/callback");
    let state = random_b64(32)?;
    let verifier = random_b64(48)?;
    let authorize = reg
        .authorization_endpoint
        .clone()
        .unwrap_or_else(|| format!("{}/authorize", api.endpoints.oidc));
    let q = form_urlencoded::Serializer::new(String::new())
        .append_pair("response_type", "code")
        .append_pair("client_id", &reg.client_id)
        .append_pair("redirect_uri", &redirect_uri)
        .append_pair("state", &state)
        .append_pair("code_challenge_method", "S256")
        .append_pair("scopes", SCOPE)
        .append_pair("code_challenge", &pkce_challenge(&verifier))
        .finish();
    open_or_print(&format!("{authorize}?{q}"), args.no_browser, "sign in");
    let (mut stream, target) = tokio::time::timeout(APPROVAL_WAIT, one_callback(&listener))
        .await
        .context("no answer from the browser within 10 minutes")??;
    let params: std::collections::HashMap<String, String> =
        url::Url::parse(&format!("http://127.0.0.1{target}"))?
            .query_pairs()
            .into_owned()
            .collect();
    let state_ok = params
        .get("state")
        .is_some_and(|s| bool::from(s.as_bytes().ct_eq(state.as_bytes())));
    if !state_ok {
        respond(
            &mut stream,
            "400 Bad Request",
            "This answer does not belong to the sign-in rolegate started.",
        )
        .await;
        bail!(
            "the browser's answer carries another state: refused (was it started by someone else?)"
        );
    }
    if let Some(err) = params.get("error") {
        respond(
            &mut stream,
            "200 OK",
            "Sign-in denied. You can close this window.",
        )
        .await;
        if err == "access_denied" {
            bail!("the sign-in was denied in the browser");
        }
        bail!("the sign-in failed: {err}");
    }
    let Some(code) = params.get("code") else {
        respond(&mut stream, "400 Bad Request", "No authorization code.").await;
        bail!("the browser's answer has no code");
    };
    let token = api
        .create_token(
            &reg.client_id,
            &reg.client_secret,
            CODE_GRANT,
            json!({"code": code, "redirectUri": redirect_uri, "codeVerifier": verifier}),
        )
        .await;
    match &token {
        Ok(_) => {
            respond(
                &mut stream,
                "200 OK",
                "Signed in to rolegate. You can close this window.",
            )
            .await
        }
        Err(_) => respond(&mut stream, "200 OK", "Sign-in failed; see the terminal.").await,
    }
    token.context("exchanging the authorization code")
}

/// The cached token of an sso-session, refreshed (and written back) when it has less than
/// [`REFRESH_WINDOW`] left.
async fn access_token(session: &SessionArgs) -> anyhow::Result<(Api, CachedToken)> {
    let path = cache::token_path(&session.session_name)?;
    let Some(mut t) = cache::read::<CachedToken>(&path) else {
        bail!(
            "not signed in (no token for sso-session {:?}): run rolegate login --start-url URL --session-name {}",
            session.session_name,
            session.session_name
        );
    };
    let api = api_for(&t.start_url, session)?;
    let left = cache::parse_time(&t.expires_at)
        .map(|e| (e - Utc::now()).num_seconds())
        .unwrap_or(0);
    if left >= REFRESH_WINDOW {
        return Ok((api, t));
    }
    let login_again = format!(
        "run rolegate login --start-url {} --session-name {}",
        t.start_url, session.session_name
    );
    let (Some(id), Some(secret), Some(refresh)) = (
        t.client_id.clone(),
        t.client_secret.clone(),
        t.refresh_token.clone(),
    ) else {
        if left > 0 {
            return Ok((api, t));
        }
        bail!("the sign-in has expired: {login_again}");
    };
    match api
        .create_token(
            &id,
            &secret,
            REFRESH_GRANT,
            json!({"refreshToken": refresh}),
        )
        .await
    {
        Ok(n) => {
            t.access_token = n.access_token;
            t.expires_at = cache::rfc3339(Utc::now() + Duration::seconds(n.expires_in));
            if n.refresh_token.is_some() {
                t.refresh_token = n.refresh_token;
            }
            cache::write(&path, &t)?;
            Ok((api, t))
        }
        Err(e) if left > 60 => {
            eprintln!(
                "warning: refreshing the SSO token failed ({e}); using it for its last {left} s"
            );
            Ok((api, t))
        }
        Err(e) => bail!("the sign-in has ended ({e}): {login_again}"),
    }
}

fn explain(e: ApiError, args: &RoleArgs) -> anyhow::Error {
    match e.code.as_str() {
        "UnauthorizedException" => anyhow::anyhow!(
            "the SSO token was refused ({}): run rolegate login --session-name {}",
            e.message,
            args.session.session_name
        ),
        "ForbiddenException" => anyhow::anyhow!(
            "no access to permission set {} in account {}: {}",
            args.role,
            args.account,
            e.message
        ),
        _ => anyhow::Error::new(e).context("getting role credentials"),
    }
}

/// Role credentials, with the API that gave them and the sign-in's region (`login --region`).
async fn fetch_credentials(args: &RoleArgs) -> anyhow::Result<(Api, RoleCredentials, String)> {
    let (api, t) = access_token(&args.session).await?;
    let c = api
        .role_credentials(&t.access_token, &args.account, &args.role)
        .await
        .map_err(|e| explain(e, args))?;
    Ok((api, c, t.region))
}

fn process_json(c: &RoleCredentials) -> anyhow::Result<ProcessCredentials> {
    let exp =
        chrono::DateTime::from_timestamp_millis(c.expiration).context("expiration out of range")?;
    Ok(ProcessCredentials {
        version: 1,
        access_key_id: c.access_key_id.clone(),
        secret_access_key: c.secret_access_key.clone(),
        session_token: c.session_token.clone(),
        expiration: cache::rfc3339(exp),
    })
}

/// `export` lines for a shell (`--format env`): the portal's command line access block (the
/// credentials and `AWS_ENDPOINT_URL_STS`, rolegate's URL, so that an AWS command after an `eval`
/// sends the session token to rolegate and not to AWS), and the region the SDKs need.
pub fn env_lines(p: &ProcessCredentials, endpoint: &str, region: &str) -> String {
    [
        ("AWS_ACCESS_KEY_ID", p.access_key_id.as_str()),
        ("AWS_SECRET_ACCESS_KEY", &p.secret_access_key),
        ("AWS_SESSION_TOKEN", &p.session_token),
        ("AWS_ENDPOINT_URL_STS", endpoint),
        ("AWS_REGION", region),
        ("AWS_DEFAULT_REGION", region),
    ]
    .iter()
    .map(|(k, v)| format!("export {k}=\"{v}\"\n"))
    .chain([format!("# expires {}", p.expiration)])
    .collect()
}

/// `rolegate credentials`.
pub async fn credentials(args: &RoleArgs, format: Format) -> anyhow::Result<()> {
    let (api, c, region) = fetch_credentials(args).await?;
    let p = process_json(&c)?;
    match format {
        Format::Json => println!("{}", serde_json::to_string_pretty(&p)?),
        Format::Env => println!("{}", env_lines(&p, &api.endpoints.portal, &region)),
        Format::Ini => println!(
            "[{}-{}]\naws_access_key_id = {}\naws_secret_access_key = {}\naws_session_token = {}",
            args.role, args.account, p.access_key_id, p.secret_access_key, p.session_token
        ),
    }
    Ok(())
}

/// Whether cached process credentials still have more than [`CREDENTIALS_MARGIN`] left at `now`.
pub fn still_good(c: &ProcessCredentials, now: chrono::DateTime<Utc>) -> bool {
    cache::parse_time(&c.expiration).is_ok_and(|e| (e - now).num_seconds() > CREDENTIALS_MARGIN)
}

/// `rolegate credential-process`: the `Version: 1` JSON, from the cache while it has more than
/// [`CREDENTIALS_MARGIN`] left.
pub async fn credential_process(args: &RoleArgs) -> anyhow::Result<()> {
    let path = cache::credentials_path(&args.session.session_name, &args.account, &args.role)?;
    if let Some(c) = cache::read::<ProcessCredentials>(&path) {
        if still_good(&c, Utc::now()) {
            println!("{}", serde_json::to_string(&c)?);
            return Ok(());
        }
    }
    let (_, c, _) = fetch_credentials(args).await?;
    let p = process_json(&c)?;
    cache::write(&path, &p)?;
    println!("{}", serde_json::to_string(&p)?);
    Ok(())
}

/// `rolegate console`.
pub async fn console(args: &RoleArgs, print: bool) -> anyhow::Result<()> {
    let (api, c, _) = fetch_credentials(args).await?;
    let url = api
        .console_url(&c)
        .await
        .context("getting a console sign-in token")?;
    if print {
        println!("{url}");
    } else {
        open_or_print(&url, false, "open the console");
    }
    Ok(())
}

/// `rolegate logout`: ends the sign-in at the server and removes the cached token.
pub async fn logout(session: &SessionArgs) -> anyhow::Result<()> {
    let path = cache::token_path(&session.session_name)?;
    let Some(t) = cache::read::<CachedToken>(&path) else {
        eprintln!("not signed in");
        return Ok(());
    };
    let api = api_for(&t.start_url, session)?;
    let result = api.logout(&t.access_token).await;
    std::fs::remove_file(&path).with_context(|| format!("removing {}", path.display()))?;
    match result {
        Ok(()) => eprintln!("Signed out of sso-session {:?}", session.session_name),
        Err(e) if e.code == "UnauthorizedException" => {
            eprintln!("The sign-in had ended already; the cached token is removed")
        }
        Err(e) => return Err(anyhow::Error::new(e).context("ending the sign-in")),
    }
    Ok(())
}

/// `rolegate configure`: writes the sso-session, a services section with rolegate's endpoints,
/// and a profile per `--profile` to the AWS config file (`AWS_CONFIG_FILE`, default
/// `~/.aws/config`), keeping everything else in it.
pub fn configure(args: &ConfigureArgs) -> anyhow::Result<()> {
    let path = match env("AWS_CONFIG_FILE").filter(|v| !v.is_empty()) {
        Some(p) => std::path::PathBuf::from(p),
        None => std::path::PathBuf::from(env("HOME").context("HOME is not set")?)
            .join(".aws")
            .join("config"),
    };
    let endpoints =
        Endpoints::resolve(&args.start_url, args.session.endpoint_url.as_deref(), &env)?;
    let text = std::fs::read_to_string(&path).unwrap_or_default();
    let mut doc = ini::Document::parse(&text);
    let name = &args.session.session_name;
    let services = format!("rolegate-{name}");
    doc.set(
        &format!("sso-session {name}"),
        &[
            ("sso_start_url", args.start_url.clone()),
            ("sso_region", args.region.clone()),
            ("sso_registration_scopes", SCOPE.to_string()),
        ],
    );
    set_services(&mut doc, &services, &endpoints);
    let exe = std::env::current_exe()
        .context("locating the rolegate binary")?
        .display()
        .to_string();
    let region = args
        .profile_region
        .clone()
        .unwrap_or_else(|| args.region.clone());
    let mut written = Vec::new();
    for spec in &args.profiles {
        let mut parts = spec.split(':');
        let (Some(account), Some(role)) = (parts.next(), parts.next()) else {
            bail!("--profile {spec:?}: expected ACCOUNT:ROLE[:PROFILE]");
        };
        if !crate::policy::is_account_id(account) {
            bail!("--profile {spec:?}: the account must be 12 digits");
        }
        let profile = parts
            .next()
            .map_or_else(|| format!("{role}-{account}"), str::to_string);
        let section = if profile == "default" {
            "default".to_string()
        } else {
            format!("profile {profile}")
        };
        let mut keys = vec![("region", region.clone()), ("services", services.clone())];
        if args.credential_process {
            keys.push((
                "credential_process",
                format!(
                    "{exe} credential-process --session-name {name} --account {account} --role {role}"
                ),
            ));
            doc.remove_keys(
                &section,
                &["sso_session", "sso_account_id", "sso_role_name"],
            );
        } else {
            keys.extend([
                ("sso_session", name.clone()),
                ("sso_account_id", account.to_string()),
                ("sso_role_name", role.to_string()),
            ]);
            doc.remove_keys(&section, &["credential_process"]);
        }
        doc.set(&section, &keys);
        written.push(profile);
    }
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    }
    cache::write_private(&path, doc.render().as_bytes())?;
    eprintln!(
        "Wrote sso-session {name:?}{} to {}",
        if written.is_empty() {
            String::new()
        } else {
            format!(" and profiles {}", written.join(", "))
        },
        path.display()
    );
    Ok(())
}

/// Writes the `[services NAME]` section: rolegate's endpoint under each service's identifier as the
/// SDKs look it up (the service id in snake case — `sso`, `sso_oidc`, `sts` — the lower case of
/// `AWS_ENDPOINT_URL_<ID>`), dropping the `sso-oidc` entry earlier versions wrote, which no SDK
/// reads (so a token refresh went to AWS instead).
fn set_services(doc: &mut ini::Document, name: &str, endpoints: &Endpoints) {
    let header = format!("services {name}");
    doc.set_nested(
        &header,
        &[
            ("sso", endpoints.portal.clone()),
            ("sso_oidc", endpoints.oidc.clone()),
            ("sts", endpoints.portal.clone()),
        ],
    );
    doc.remove_keys(&header, &["sso-oidc"]);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pkce_s256_is_rfc_7636_s() {
        // RFC 7636 appendix B.
        assert_eq!(
            pkce_challenge("dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk"),
            "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM"
        );
    }

    #[test]
    fn process_credentials_are_reused_only_with_a_margin_left() {
        let now = Utc::now();
        let with = |secs: i64| ProcessCredentials {
            version: 1,
            access_key_id: "ASIA".into(),
            secret_access_key: "s".into(),
            session_token: "t".into(),
            expiration: cache::rfc3339(now + Duration::seconds(secs)),
        };
        assert!(still_good(&with(3600), now));
        assert!(!still_good(&with(CREDENTIALS_MARGIN - 5), now));
        assert!(!still_good(&with(-10), now));
        let json = serde_json::to_value(with(60)).unwrap();
        for k in [
            "Version",
            "AccessKeyId",
            "SecretAccessKey",
            "SessionToken",
            "Expiration",
        ] {
            assert!(json.get(k).is_some(), "{k}");
        }
        assert_eq!(json["Version"], 1);
    }

    #[test]
    fn env_lines_send_aws_commands_to_rolegate_in_the_sign_in_s_region() {
        let p = ProcessCredentials {
            version: 1,
            access_key_id: "ASIAEXAMPLE".into(),
            secret_access_key: "secret/+=".into(),
            session_token: "token".into(),
            expiration: "2026-12-03T20:00:00Z".into(),
        };
        let text = env_lines(&p, "https://rolegate.example.com", "eu-west-1");
        let lines: Vec<&str> = text.lines().collect();
        // The portal's command line access block, plus the region the SDKs need.
        for want in [
            "export AWS_ACCESS_KEY_ID=\"ASIAEXAMPLE\"",
            "export AWS_SECRET_ACCESS_KEY=\"secret/+=\"",
            "export AWS_SESSION_TOKEN=\"token\"",
            "export AWS_ENDPOINT_URL_STS=\"https://rolegate.example.com\"",
            "export AWS_REGION=\"eu-west-1\"",
            "export AWS_DEFAULT_REGION=\"eu-west-1\"",
            "# expires 2026-12-03T20:00:00Z",
        ] {
            assert!(lines.contains(&want), "{want} in:\n{text}");
        }
        assert_eq!(lines.len(), 7, "{text}");
    }

    #[test]
    fn the_services_section_names_services_as_the_sdks_look_them_up() {
        let endpoints = Endpoints {
            oidc: "https://oidc.example.com".into(),
            portal: "https://portal.example.com".into(),
        };
        // As an earlier version wrote it: `sso-oidc`, which no SDK reads.
        let old = "[services rolegate-rg]\nsso =\n  endpoint_url = https://portal.example.com\nsso-oidc =\n  endpoint_url = https://oidc.example.com\nsts =\n  endpoint_url = https://portal.example.com\n";
        let fresh = "[services rolegate-rg]\nsso =\n  endpoint_url = https://portal.example.com\nsso_oidc =\n  endpoint_url = https://oidc.example.com\nsts =\n  endpoint_url = https://portal.example.com\n";
        let rewritten = "[services rolegate-rg]\nsso =\n  endpoint_url = https://portal.example.com\nsts =\n  endpoint_url = https://portal.example.com\nsso_oidc =\n  endpoint_url = https://oidc.example.com\n";
        for (text, want) in [("", fresh), (old, rewritten)] {
            let mut doc = ini::Document::parse(text);
            set_services(&mut doc, "rolegate-rg", &endpoints);
            assert_eq!(doc.render(), want, "from {text:?}");
        }
    }
}
