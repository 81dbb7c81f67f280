//! Command-line interface: `serve`, `check-config`, and the operator commands (`audit`, `revoke`,
//! `keys rotate`, and the directory's `user`, `group`, `access-key`, `mfa`, `assignments`, `root`).
//! Operator commands open the store directly; when a running rolegate holds it (sled allows one
//! process), they go through that server's admin API instead.

mod directory;
pub mod sso;

use crate::app::{open_store, App};
use crate::audit::AuditEvent;
use crate::clock::{SharedClock, SystemClock};
use crate::config::Config;
use crate::credentials::{KeyRing, RevocationList};
use crate::store::{Store, StoreError};
use crate::web::{self};
use clap::{Parser, Subcommand};
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

/// rolegate: federation identity broker with an AWS-compatible STS.
#[derive(Debug, Parser)]
#[command(name = "rolegate", version, about)]
pub struct Cli {
    /// The configuration file.
    #[arg(
        long,
        global = true,
        env = "ROLEGATE_CONFIG",
        default_value = "config/rolegate.toml"
    )]
    pub config: PathBuf,
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// Subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the server.
    Serve,
    /// Validate the configuration and print every problem with file and line.
    CheckConfig,
    /// Show audit events, newest first.
    Audit {
        /// Only events of the last DURATION (e.g. 15m, 2h, 7d) or since an RFC 3339 time.
        #[arg(long)]
        since: Option<String>,
        /// Only events before DURATION ago or before an RFC 3339 time.
        #[arg(long)]
        until: Option<String>,
        /// Only this action (e.g. AssumeRoleWithWebIdentity).
        #[arg(long)]
        action: Option<String>,
        /// Only this principal ARN.
        #[arg(long)]
        principal: Option<String>,
        /// Only allow, deny or error.
        #[arg(long)]
        decision: Option<String>,
        /// At most this many events.
        #[arg(long, default_value_t = 50)]
        limit: usize,
        /// Print JSON lines instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// Revoke sessions issued before now.
    Revoke {
        /// all, role, subject, session, access-key, or user (a directory user's name: every
        /// session it started, directly or by chaining).
        #[arg(long)]
        scope: String,
        /// Role ARN, subject, session id or access key id.
        #[arg(long)]
        value: Option<String>,
        /// For --scope subject: the provider's issuer URL or ARN.
        #[arg(long)]
        provider: Option<String>,
        /// Why (recorded).
        #[arg(long)]
        reason: String,
    },
    /// Session-token sealing keys.
    Keys {
        /// What to do with the keys.
        #[command(subcommand)]
        action: KeysCommand,
    },
    /// Users of the local directory.
    User {
        /// What to do.
        #[command(subcommand)]
        action: directory::UserCommand,
    },
    /// Groups of the local directory.
    Group {
        /// What to do.
        #[command(subcommand)]
        action: directory::GroupCommand,
    },
    /// Long-term access keys of directory users.
    AccessKey {
        /// What to do.
        #[command(subcommand)]
        action: directory::AccessKeyCommand,
    },
    /// MFA devices of directory users.
    Mfa {
        /// What to do.
        #[command(subcommand)]
        action: directory::MfaCommand,
    },
    /// Assignment rules.
    Assignments {
        /// What to do.
        #[command(subcommand)]
        action: directory::AssignmentsCommand,
    },
    /// The root user.
    Root {
        /// What to do.
        #[command(subcommand)]
        action: directory::RootCommand,
    },
    /// Sign in through a start URL (PKCE in the browser, or --use-device-code) and cache the SSO
    /// token where the AWS CLI and SDKs find it.
    Login(sso::LoginArgs),
    /// End the cached sign-in at the server and remove it.
    Logout(sso::SessionArgs),
    /// Print role credentials for a permission set in an account.
    Credentials {
        /// The permission set and account.
        #[command(flatten)]
        role: sso::RoleArgs,
        /// Output format.
        #[arg(long, value_enum, default_value = "env")]
        format: sso::Format,
    },
    /// For `credential_process`: role credentials as `Version: 1` JSON, cached until 15 minutes
    /// before they expire. The JSON cannot carry the STS endpoint or a region: the profile needs
    /// them (`rolegate configure` writes both).
    CredentialProcess(sso::RoleArgs),
    /// Open (or print) a console sign-in URL for a permission set in an account.
    Console {
        /// The permission set and account.
        #[command(flatten)]
        role: sso::RoleArgs,
        /// Print the URL instead of opening a browser.
        #[arg(long)]
        print: bool,
    },
    /// Write an [sso-session] and profiles for rolegate to the AWS config file.
    Configure(sso::ConfigureArgs),
}

/// `rolegate keys …`
#[derive(Debug, Subcommand)]
pub enum KeysCommand {
    /// Start sealing with a new key; old keys still open tokens until those expire.
    Rotate,
}

/// Runs the command and returns the process exit code.
pub async fn run(cli: Cli) -> ExitCode {
    // The client commands read no server configuration.
    let client = match &cli.command {
        Command::Login(a) => Some(sso::login(a).await),
        Command::Logout(a) => Some(sso::logout(a).await),
        Command::Credentials { role, format } => Some(sso::credentials(role, *format).await),
        Command::CredentialProcess(a) => Some(sso::credential_process(a).await),
        Command::Console { role, print } => Some(sso::console(role, *print).await),
        Command::Configure(a) => Some(sso::configure(a)),
        _ => None,
    };
    if let Some(result) = client {
        return match result {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("rolegate: {e:#}");
                ExitCode::from(1)
            }
        };
    }
    let config = match Config::load(&cli.config) {
        Ok(c) => c,
        Err(e) => {
            let _ = init_tracing(false, &Default::default(), None);
            eprintln!("{e}");
            return ExitCode::from(2);
        }
    };
    let serving = matches!(cli.command, Command::Serve);
    if let Err(e) = init_tracing(
        serving,
        &config.ops.log,
        config.ops.tracing.as_ref().filter(|_| serving),
    ) {
        eprintln!("tracing export: {e}");
        return ExitCode::from(2);
    }
    for w in &config.warnings {
        eprintln!("warning: {w}");
    }
    let result = match cli.command {
        Command::CheckConfig => {
            println!(
                "{}: ok ({} accounts, {} oidc providers, {} roles, {} permission sets, {} assignment rules, {} warnings)",
                cli.config.display(),
                config.accounts.len(),
                config.oidc_providers.len(),
                config.roles.len(),
                config.permission_sets.len(),
                config.assignment_rules.len(),
                config.warnings.len()
            );
            Ok(())
        }
        Command::Serve => serve(config).await,
        Command::Audit {
            since,
            until,
            action,
            principal,
            decision,
            limit,
            json,
        } => {
            let params = web::admin_audit_params_between(
                since.as_deref(),
                until.as_deref(),
                action,
                principal,
                decision,
                limit,
            );
            match params {
                Ok(p) => audit_command(&config, p, json).await,
                Err(e) => Err(anyhow::anyhow!(e)),
            }
        }
        Command::Revoke {
            scope,
            value,
            provider,
            reason,
        } => {
            let req = web::RevocationRequest {
                scope,
                value,
                provider,
                reason,
            };
            revoke_command(&config, req).await
        }
        Command::Keys {
            action: KeysCommand::Rotate,
        } => rotate_command(&config).await,
        Command::User { action } => directory::user(&config, action).await,
        Command::Group { action } => directory::group(&config, action).await,
        Command::AccessKey { action } => directory::access_key(&config, action).await,
        Command::Mfa { action } => directory::mfa(&config, action).await,
        Command::Assignments { action } => directory::assignments(&config, action).await,
        Command::Root { action } => directory::root(&config, action).await,
        Command::Login(_)
        | Command::Logout(_)
        | Command::Credentials { .. }
        | Command::CredentialProcess(_)
        | Command::Console { .. }
        | Command::Configure(_) => unreachable!("the client commands returned above"),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("rolegate: {e:#}");
            ExitCode::from(1)
        }
    }
}

/// Logging to standard error: `[log] level` (default `info` for the server, `warn` for the other
/// commands, whose own output is their result) unless ROLEGATE_LOG says otherwise; JSON lines when
/// `[log] format = "json"` (or ROLEGATE_LOG_FORMAT=json), each carrying the request id of the
/// request it belongs to; colours only when standard error is a terminal. With `export`, spans also go to an OpenTelemetry collector (the same
/// filter applies).
fn init_tracing(
    serving: bool,
    log: &crate::config::LogSettings,
    export: Option<&crate::config::TracingSettings>,
) -> anyhow::Result<()> {
    use std::io::IsTerminal;
    use tracing_subscriber::layer::SubscriberExt;
    use tracing_subscriber::util::SubscriberInitExt;
    use tracing_subscriber::{EnvFilter, Layer};
    let default = match (&log.level, serving) {
        (Some(l), true) => l.as_str(),
        (_, true) => "info",
        (_, false) => "warn",
    };
    let filter =
        EnvFilter::try_from_env("ROLEGATE_LOG").unwrap_or_else(|_| EnvFilter::new(default));
    let json = log.format == crate::config::LogFormat::Json
        || std::env::var("ROLEGATE_LOG_FORMAT").is_ok_and(|v| v == "json");
    // Colours only for a person at a terminal: a log file, a pipe or a journal gets plain text.
    let fmt = tracing_subscriber::fmt::layer()
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal());
    let fmt = if json {
        fmt.json().flatten_event(true).boxed()
    } else {
        fmt.boxed()
    };
    let otel = export.map(crate::telemetry::layer).transpose()?;
    let _ = tracing_subscriber::registry()
        .with(filter)
        .with(fmt)
        .with(otel)
        .try_init();
    Ok(())
}

/// Says at every start where the root bootstrap stands, until it is done: the token itself only
/// when it is new (it is shown once), else when the one shown before stops being valid.
fn log_root_bootstrap(
    state: Result<crate::idp::local::RootBootstrap, crate::idp::local::DirectoryError>,
    config: &Config,
) {
    use crate::idp::local::RootBootstrap;
    let next = |token: &str| {
        format!(
            "in the browser at {}admin/bootstrap, or with `rolegate root bootstrap --token {token}` \
             (rolegate may keep running; or POST {}bootstrap with {{\"token\", \"password\"}}), then \
             `rolegate root bootstrap-finish`",
            config.public_url, config.public_url
        )
    };
    match state {
        Ok(RootBootstrap::Done) => {}
        Ok(RootBootstrap::NewToken { token, expires_at }) => tracing::warn!(
            bootstrap_token = %token,
            valid_until = %crate::clock::rfc3339_secs(expires_at),
            "the root user has no password and MFA yet: set them {}; the token is shown only now",
            next(&token)
        ),
        Ok(RootBootstrap::Pending { expires_at }) => tracing::warn!(
            valid_until = %crate::clock::rfc3339_secs(expires_at),
            "the root user has no password and MFA yet: set them {}, with the bootstrap token shown at an earlier start; a new one is shown at the first start after {}",
            next("TOKEN"),
            crate::clock::rfc3339_secs(expires_at)
        ),
        Err(e) => tracing::error!(error = %e, "preparing the root user failed"),
    }
}

async fn serve(config: Config) -> anyhow::Result<()> {
    let listen = config.listen;
    let store = open_store(&config).await?;
    let clock: SharedClock = Arc::new(SystemClock);
    let app = App::build(config, store, clock).await?;
    // Listen before the background key warm-up: a provider may be served by rolegate itself (the demo).
    let listener = tokio::net::TcpListener::bind(listen)
        .await
        .map_err(|e| anyhow::anyhow!("cannot listen on {listen}: {e}"))?;
    crate::maintenance::start(&app);
    if let Some(d) = &app.directory {
        log_root_bootstrap(d.ensure_root().await, &app.config);
    }
    let bound = listener.local_addr()?;
    tracing::info!(
        address = %bound,
        public_url = %app.config.public_url,
        tls = app.config.ops.tls.is_some(),
        "rolegate listening"
    );
    web::serve::serve(app, listener).await
}

/// The store, or `None` when a running server holds it.
/// The store, opened directly, or `None` when only the running server can reach it: sled allows
/// one process, and a memory store lives inside the server that holds it.
async fn try_open(config: &Config) -> anyhow::Result<Option<Arc<dyn Store>>> {
    if matches!(config.store, crate::config::StoreSettings::Memory) {
        return Ok(None);
    }
    match open_store(config).await {
        Ok(s) => Ok(Some(s)),
        Err(e) => match e.downcast_ref::<StoreError>() {
            Some(StoreError::Locked(_)) => Ok(None),
            _ => Err(e),
        },
    }
}

fn admin_client(config: &Config) -> anyhow::Result<(reqwest::Client, String, String)> {
    let token = config.admin_token.as_ref().ok_or_else(|| {
        anyhow::anyhow!(
            "the store is held by a running rolegate (sled allows one process; a memory store lives in the server); configure [admin] token_file or token_env to reach it through its admin API"
        )
    })?;
    Ok((
        reqwest::Client::new(),
        server_base(config),
        token.expose().to_string(),
    ))
}

/// The running server as this machine reaches it: its listening address (loopback when it
/// listens on every address), over HTTPS when it serves TLS.
fn server_base(config: &Config) -> String {
    let mut addr = config.listen;
    if addr.ip().is_unspecified() {
        addr.set_ip(std::net::Ipv4Addr::LOCALHOST.into());
    }
    let scheme = if config.ops.tls.is_some() {
        "https"
    } else {
        "http"
    };
    format!("{scheme}://{addr}")
}

async fn admin_call(req: reqwest::RequestBuilder) -> anyhow::Result<serde_json::Value> {
    let resp = req.send().await?;
    let status = resp.status();
    let body: serde_json::Value = resp.json().await.unwrap_or(serde_json::Value::Null);
    if !status.is_success() {
        anyhow::bail!("{}", admin_refusal(status, &body));
    }
    Ok(body)
}

/// A refusal of the admin API as a sentence: the text of its `error`, with the status in words.
fn admin_refusal(status: http::StatusCode, body: &serde_json::Value) -> String {
    let words = status.canonical_reason().map_or_else(
        || format!("HTTP status {}", status.as_u16()),
        str::to_string,
    );
    match body["error"].as_str().filter(|e| !e.is_empty()) {
        Some(e) => format!("admin API: {e} ({words})"),
        None => format!("admin API: {words}"),
    }
}

/// A time the admin API answers in Unix seconds, as RFC 3339 (anything else as it is).
fn readable_time(v: &serde_json::Value) -> String {
    match (v.as_i64(), v.as_str()) {
        (Some(t), _) => crate::clock::rfc3339_secs(t),
        (None, Some(s)) => s.to_string(),
        (None, None) => v.to_string(),
    }
}

/// An admin API answer with its Unix-second times (`…_at`, `issued_before`, a last use's `time`)
/// as RFC 3339, for people.
fn readable_times(v: serde_json::Value) -> serde_json::Value {
    use serde_json::Value;
    match v {
        Value::Object(m) => Value::Object(
            m.into_iter()
                .map(|(k, v)| {
                    let is_time = k.ends_with("_at") || k == "issued_before" || k == "time";
                    let v = match v {
                        Value::Number(n) if is_time && n.is_i64() => {
                            Value::String(readable_time(&Value::Number(n)))
                        }
                        other => readable_times(other),
                    };
                    (k, v)
                })
                .collect(),
        ),
        Value::Array(a) => Value::Array(a.into_iter().map(readable_times).collect()),
        other => other,
    }
}

async fn audit_command(config: &Config, p: web::AuditParams, json: bool) -> anyhow::Result<()> {
    let events: Vec<AuditEvent> = match try_open(config).await? {
        Some(store) => crate::audit::query(store.as_ref(), &p.to_query()).await?,
        None => {
            let (http, base, token) = admin_client(config)?;
            let v = admin_call(
                http.get(format!("{base}/admin/audit"))
                    .bearer_auth(token)
                    .query(&p),
            )
            .await?;
            serde_json::from_value(v)?
        }
    };
    for e in &events {
        if json {
            println!("{}", serde_json::to_string(e)?);
        } else {
            println!(
                "{} {:<5} {:<28} {} {}{}",
                e.time,
                e.decision,
                e.action,
                e.principal
                    .as_deref()
                    .or(e.subject.as_deref())
                    .unwrap_or("-"),
                e.error_code
                    .as_deref()
                    .map(|c| format!("[{c}] "))
                    .unwrap_or_default(),
                e.reason.as_deref().unwrap_or("")
            );
        }
    }
    if !json {
        eprintln!("{} event(s)", events.len());
    }
    Ok(())
}

async fn revoke_command(config: &Config, req: web::RevocationRequest) -> anyhow::Result<()> {
    if req.scope == "user" {
        let v = directory::admin_request(
            config,
            http::Method::POST,
            "/admin/sessions/revoke",
            Some(serde_json::json!({
                "scope": "user",
                "value": req.value.clone().unwrap_or_default(),
                "reason": req.reason,
            })),
        )
        .await?;
        println!(
            "revoked {}: sessions issued before {}",
            v["revoked"].as_str().unwrap_or_default(),
            readable_time(&v["issued_before"])
        );
        return Ok(());
    }
    let now = chrono::Utc::now().timestamp();
    match try_open(config).await? {
        Some(store) => {
            let r = req.to_revocation(now).map_err(anyhow::Error::msg)?;
            RevocationList::default()
                .revoke(store.as_ref(), r.clone())
                .await?;
            println!(
                "revoked {:?}: sessions issued before {}",
                r.scope,
                crate::clock::rfc3339_secs(r.issued_before)
            );
        }
        None => {
            let (http, base, token) = admin_client(config)?;
            let v = admin_call(
                http.post(format!("{base}/admin/revocations"))
                    .bearer_auth(token)
                    .json(&req),
            )
            .await?;
            println!(
                "revoked {}: sessions issued before {}",
                v["revoked"].as_str().unwrap_or_default(),
                readable_time(&v["issued_before"])
            );
        }
    }
    Ok(())
}

async fn rotate_command(config: &Config) -> anyhow::Result<()> {
    let id = match try_open(config).await? {
        Some(store) => KeyRing::rotate(store.as_ref(), chrono::Utc::now().timestamp()).await?,
        None => {
            let (http, base, token) = admin_client(config)?;
            let v = admin_call(
                http.post(format!("{base}/admin/keys/rotate"))
                    .bearer_auth(token),
            )
            .await?;
            v["key_id"].as_str().unwrap_or_default().to_string()
        }
    };
    println!("sealing with new key {id}; retired keys open existing tokens until they expire");
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn admin_refusals_are_the_server_s_sentence_with_the_status_in_words() {
        let m = admin_refusal(
            http::StatusCode::UNAUTHORIZED,
            &json!({"error": "a valid admin bearer token is required"}),
        );
        assert_eq!(
            m,
            "admin API: a valid admin bearer token is required (Unauthorized)"
        );
        assert_eq!(
            admin_refusal(http::StatusCode::BAD_GATEWAY, &serde_json::Value::Null),
            "admin API: Bad Gateway"
        );
        assert!(!m.contains('{') && !m.contains("401"), "{m}");
    }

    #[test]
    fn admin_answers_show_times_in_rfc_3339() {
        assert_eq!(readable_time(&json!(1_796_328_000)), "2026-12-03T20:00:00Z");
        assert_eq!(readable_time(&json!("later")), "later");
        let v = readable_times(json!({
            "name": "bob",
            "created_at": 1_796_328_000,
            "disabled_at": null,
            "issued_before": 1_796_328_001,
            "access_keys": [{"created_at": 1_796_328_002, "last_used": {"time": 1_796_328_003, "region": "us-east-1"}}],
            "effective_everywhere_within_seconds": 30,
        }));
        assert_eq!(
            v,
            json!({
                "name": "bob",
                "created_at": "2026-12-03T20:00:00Z",
                "disabled_at": null,
                "issued_before": "2026-12-03T20:00:01Z",
                "access_keys": [{"created_at": "2026-12-03T20:00:02Z", "last_used": {"time": "2026-12-03T20:00:03Z", "region": "us-east-1"}}],
                "effective_everywhere_within_seconds": 30,
            })
        );
    }
}
