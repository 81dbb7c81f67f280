//! The directory commands (`user`, `group`, `access-key`, `mfa`, `assignments`, `root`): each is one
//! call of the directory admin API. When the store can be opened here, the API runs in this process
//! over it; when a running rolegate holds the store, the call goes to that server with the admin
//! token. Either way the same code answers and the call is audited.

use crate::app::App;
use crate::clock::SystemClock;
use crate::config::{Config, Secret};
use axum::body::Body;
use clap::Subcommand;
use http::{Method, Request};
use serde_json::{json, Value};
use std::path::PathBuf;
use std::sync::Arc;
use tower::ServiceExt;

/// `rolegate user …`
#[derive(Debug, Subcommand)]
pub enum UserCommand {
    /// Create a user (no password, keys or MFA yet).
    Create {
        /// 1-64 characters of [A-Za-z0-9_+=,.@-].
        name: String,
        /// IAM path, e.g. /engineering/.
        #[arg(long)]
        path: Option<String>,
    },
    /// List users.
    List,
    /// Show a user: groups, policies, access keys with their last use (written by the server every
    /// 5 seconds: up to that much behind when read from another process), MFA devices.
    Show {
        /// The user.
        name: String,
    },
    /// Delete a user with its keys and devices; sessions it started are revoked.
    Delete {
        /// The user.
        name: String,
    },
    /// Disable a user: it keeps its record but signs in with nothing, and the sessions it started
    /// are revoked.
    Disable {
        /// The user.
        name: String,
    },
    /// Enable a disabled user again.
    Enable {
        /// The user.
        name: String,
    },
    /// Lift the locks that repeated wrong passwords or MFA codes put on a user's sign-in.
    Unlock {
        /// The user.
        name: String,
    },
    /// Set a user's password, read from a file or (without --password-file) from standard input.
    SetPassword {
        /// The user.
        name: String,
        /// A file holding the password.
        #[arg(long)]
        password_file: Option<PathBuf>,
    },
    /// Add or replace an inline policy of the user.
    PutPolicy {
        /// The user.
        name: String,
        /// Policy name.
        policy: String,
        /// The policy document (JSON).
        #[arg(long)]
        file: PathBuf,
    },
}

/// `rolegate group …`
#[derive(Debug, Subcommand)]
pub enum GroupCommand {
    /// Create a group.
    Create {
        /// The group.
        name: String,
    },
    /// List groups.
    List,
    /// Add a user to a group.
    AddUser {
        /// The group.
        group: String,
        /// The user.
        user: String,
    },
    /// Remove a user from a group.
    RemoveUser {
        /// The group.
        group: String,
        /// The user.
        user: String,
    },
    /// Add or replace an inline policy of the group.
    PutPolicy {
        /// The group.
        group: String,
        /// Policy name.
        policy: String,
        /// The policy document (JSON).
        #[arg(long)]
        file: PathBuf,
    },
}

/// `rolegate access-key …`
#[derive(Debug, Subcommand)]
pub enum AccessKeyCommand {
    /// Create a key (at most two per user); the secret is shown once.
    Create {
        /// The user.
        user: String,
    },
    /// Create a new key and deactivate the user's only other one.
    Rotate {
        /// The user.
        user: String,
    },
    /// Stop a key from signing.
    Deactivate {
        /// The user.
        user: String,
        /// The key id.
        id: String,
    },
    /// Let a key sign again.
    Activate {
        /// The user.
        user: String,
        /// The key id.
        id: String,
    },
    /// Delete a key.
    Delete {
        /// The user.
        user: String,
        /// The key id.
        id: String,
    },
}

/// `rolegate mfa …`
#[derive(Debug, Subcommand)]
pub enum MfaCommand {
    /// Start TOTP enrolment: prints the secret and the otpauth URI.
    CreateTotp {
        /// The user.
        user: String,
    },
    /// Finish enrolment with two consecutive codes.
    Enable {
        /// The user.
        user: String,
        /// A code.
        code1: String,
        /// The next code.
        code2: String,
    },
    /// Remove a device.
    Delete {
        /// The user.
        user: String,
        /// The device's serial number.
        serial: String,
    },
}

/// `rolegate assignments …`
#[derive(Debug, Subcommand)]
pub enum AssignmentsCommand {
    /// Which permission sets a set of claims yields, and why, rule by rule.
    Explain {
        /// The provider's name, or "local".
        #[arg(long)]
        provider: String,
        /// A JSON file with the claims (or SAML attributes).
        #[arg(long)]
        claims: PathBuf,
        /// For --provider local: the user's groups.
        #[arg(long = "local-group")]
        local_groups: Vec<String>,
    },
}

/// `rolegate root …`
#[derive(Debug, Subcommand)]
pub enum RootCommand {
    /// Set the root password with the one-time bootstrap token rolegate printed at first start;
    /// prints the TOTP secret to enrol.
    Bootstrap {
        /// The bootstrap token.
        #[arg(long)]
        token: String,
        /// A file holding the new password (default: standard input).
        #[arg(long)]
        password_file: Option<PathBuf>,
    },
    /// Finish the bootstrap with two consecutive TOTP codes.
    BootstrapFinish {
        /// The bootstrap token.
        #[arg(long)]
        token: String,
        /// A code.
        code1: String,
        /// The next code.
        code2: String,
    },
}

/// One admin API call: in this process over the store when it can be opened, else through the
/// running server.
pub async fn admin_request(
    config: &Config,
    method: Method,
    path: &str,
    body: Option<Value>,
) -> anyhow::Result<Value> {
    match super::try_open(config).await? {
        Some(store) => {
            let mut config = config.clone();
            let mut raw = [0u8; 32];
            crate::credentials::fill_random(&mut raw)?;
            let token = hex::encode(raw);
            config.admin_token = Some(Secret::new(token.clone()));
            let app = App::build(config, store, Arc::new(SystemClock)).await?;
            let router = crate::web::router(app.clone());
            let req = Request::builder()
                .method(method)
                .uri(path)
                .header("authorization", format!("Bearer {token}"))
                .header("content-type", "application/json")
                .body(Body::from(body.map(|b| b.to_string()).unwrap_or_default()))?;
            let resp = router.oneshot(req).await?;
            let status = resp.status();
            let bytes = axum::body::to_bytes(resp.into_body(), 1 << 20).await?;
            app.audit.flush().await;
            let v: Value = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
            if !status.is_success() {
                anyhow::bail!("{}", super::admin_refusal(status, &v));
            }
            Ok(v)
        }
        None => {
            let (http, base, token) = super::admin_client(config)?;
            let m = reqwest::Method::from_bytes(method.as_str().as_bytes())?;
            let mut req = http.request(m, format!("{base}{path}")).bearer_auth(token);
            if let Some(b) = body {
                req = req.json(&b);
            }
            super::admin_call(req).await
        }
    }
}

fn read_secret(file: Option<&PathBuf>) -> anyhow::Result<String> {
    let text = match file {
        Some(f) => std::fs::read_to_string(f)?,
        None => {
            let mut s = String::new();
            std::io::stdin().read_line(&mut s)?;
            s
        }
    };
    Ok(text.trim_end_matches(['\n', '\r']).to_string())
}

fn read_json(file: &PathBuf) -> anyhow::Result<Value> {
    let text = std::fs::read_to_string(file)
        .map_err(|e| anyhow::anyhow!("cannot read {}: {e}", file.display()))?;
    serde_json::from_str(&text).map_err(|e| anyhow::anyhow!("{}: {e}", file.display()))
}

fn print(v: &Value) -> anyhow::Result<()> {
    let v = super::readable_times(v.clone());
    println!("{}", serde_json::to_string_pretty(&v)?);
    Ok(())
}

fn seg(s: &str) -> String {
    percent_encoding::utf8_percent_encode(s, percent_encoding::NON_ALPHANUMERIC).to_string()
}

/// One call of the admin API a command makes: its method, path and JSON body.
type ApiCall = (Method, String, Option<Value>);

/// Makes the command's one admin API call and prints its answer.
async fn run(config: &Config, (method, path, body): ApiCall) -> anyhow::Result<()> {
    print(&admin_request(config, method, &path, body).await?)
}

/// Runs `rolegate user …`.
pub async fn user(config: &Config, c: UserCommand) -> anyhow::Result<()> {
    let user = |name: &str, rest: &str| format!("/admin/users/{}{rest}", seg(name));
    let call = match c {
        UserCommand::Create { name, path } => (
            Method::POST,
            "/admin/users".into(),
            Some(json!({"name": name, "path": path})),
        ),
        UserCommand::List => (Method::GET, "/admin/users".into(), None),
        UserCommand::Show { name } => (Method::GET, user(&name, ""), None),
        UserCommand::Delete { name } => (Method::DELETE, user(&name, ""), None),
        UserCommand::Disable { name } => (Method::POST, user(&name, "/disable"), None),
        UserCommand::Enable { name } => (Method::POST, user(&name, "/enable"), None),
        UserCommand::Unlock { name } => (Method::POST, user(&name, "/unlock"), None),
        UserCommand::SetPassword {
            name,
            password_file,
        } => {
            let password = read_secret(password_file.as_ref())?;
            (
                Method::PUT,
                user(&name, "/password"),
                Some(json!({"password": password})),
            )
        }
        UserCommand::PutPolicy { name, policy, file } => (
            Method::PUT,
            user(&name, &format!("/policies/{}", seg(&policy))),
            Some(json!({"document": read_json(&file)?})),
        ),
    };
    run(config, call).await
}

/// Runs `rolegate group …`.
pub async fn group(config: &Config, c: GroupCommand) -> anyhow::Result<()> {
    let member = |g: &str, u: &str| format!("/admin/groups/{}/members/{}", seg(g), seg(u));
    let call = match c {
        GroupCommand::Create { name } => (
            Method::POST,
            "/admin/groups".into(),
            Some(json!({"name": name})),
        ),
        GroupCommand::List => (Method::GET, "/admin/groups".into(), None),
        GroupCommand::AddUser { group, user } => (Method::PUT, member(&group, &user), None),
        GroupCommand::RemoveUser { group, user } => (Method::DELETE, member(&group, &user), None),
        GroupCommand::PutPolicy {
            group,
            policy,
            file,
        } => (
            Method::PUT,
            format!("/admin/groups/{}/policies/{}", seg(&group), seg(&policy)),
            Some(json!({"document": read_json(&file)?})),
        ),
    };
    run(config, call).await
}

/// Runs `rolegate access-key …`.
pub async fn access_key(config: &Config, c: AccessKeyCommand) -> anyhow::Result<()> {
    let keys = |u: &str, rest: &str| format!("/admin/users/{}/access-keys{rest}", seg(u));
    let key = |u: &str, id: &str| keys(u, &format!("/{}", seg(id)));
    let call = match c {
        AccessKeyCommand::Create { user } => (Method::POST, keys(&user, ""), None),
        AccessKeyCommand::Rotate { user } => (Method::POST, keys(&user, "/rotate"), None),
        AccessKeyCommand::Deactivate { user, id } => (
            Method::PUT,
            key(&user, &id),
            Some(json!({"status": "Inactive"})),
        ),
        AccessKeyCommand::Activate { user, id } => (
            Method::PUT,
            key(&user, &id),
            Some(json!({"status": "Active"})),
        ),
        AccessKeyCommand::Delete { user, id } => (Method::DELETE, key(&user, &id), None),
    };
    run(config, call).await
}

/// Runs `rolegate mfa …`.
pub async fn mfa(config: &Config, c: MfaCommand) -> anyhow::Result<()> {
    let mfa = |u: &str, rest: &str| format!("/admin/users/{}/mfa{rest}", seg(u));
    let call = match c {
        MfaCommand::CreateTotp { user } => (Method::POST, mfa(&user, "/totp"), None),
        MfaCommand::Enable { user, code1, code2 } => (
            Method::POST,
            mfa(&user, "/totp/enable"),
            Some(json!({"code1": code1, "code2": code2})),
        ),
        MfaCommand::Delete { user, serial } => (
            Method::DELETE,
            mfa(&user, &format!("?serial={}", seg(&serial))),
            None,
        ),
    };
    run(config, call).await
}

/// Runs `rolegate assignments …`.
pub async fn assignments(config: &Config, c: AssignmentsCommand) -> anyhow::Result<()> {
    let AssignmentsCommand::Explain {
        provider,
        claims,
        local_groups,
    } = c;
    // Explaining needs only the configuration: no store, no server.
    let claims = match read_json(&claims)? {
        Value::Object(m) => m,
        _ => anyhow::bail!("{}: the claims must be a JSON object", claims.display()),
    };
    let subject = claims
        .get("sub")
        .and_then(Value::as_str)
        .unwrap_or("-")
        .to_string();
    let e = crate::mapping::evaluate(
        config,
        &crate::mapping::Subject {
            provider: &provider,
            subject: &subject,
            claims: &claims,
            local_groups: &local_groups,
            // Explaining from the configuration alone: the provisioned directory is the
            // server's (ask the admin API with a subject for it).
            provisioned_groups: None,
        },
    )?;
    for a in &e.assignments {
        println!(
            "{} {} ({}) by rule {}",
            a.account,
            a.permission_set,
            a.role_arn,
            a.rules
                .iter()
                .map(|r| r.to_string())
                .collect::<Vec<_>>()
                .join(", ")
        );
    }
    if e.assignments.is_empty() {
        println!("no permission sets");
    }
    for r in &e.rules {
        println!(
            "  rule {} {} {} in {}: {}",
            r.rule,
            if r.matched {
                "matched"
            } else {
                "did not match"
            },
            r.permission_set,
            r.accounts.join(", "),
            r.reason
        );
    }
    for n in &e.notes {
        println!("  note: {n}");
    }
    Ok(())
}

/// Runs `rolegate root …`. The bootstrap token is the credential: no admin token is needed,
/// whether rolegate is stopped (the store is opened here) or running (its `/bootstrap` endpoints are
/// called).
pub async fn root(config: &Config, c: RootCommand) -> anyhow::Result<()> {
    match c {
        RootCommand::Bootstrap {
            token,
            password_file,
        } => {
            let password = read_secret(password_file.as_ref())?;
            let v = bootstrap_request(
                config,
                "/bootstrap",
                json!({"token": token, "password": password}),
            )
            .await?;
            println!("{}", bootstrap_next_step(&v, &token));
        }
        RootCommand::BootstrapFinish {
            token,
            code1,
            code2,
        } => {
            bootstrap_request(
                config,
                "/bootstrap/finish",
                json!({"token": token, "code1": code1, "code2": code2}),
            )
            .await?;
            println!("{}", bootstrap_done(config));
        }
    }
    Ok(())
}

/// One bootstrap call, authorized by the token in `body`: over the store when it can be opened,
/// else through the running server at its listening address.
async fn bootstrap_request(config: &Config, path: &str, body: Value) -> anyhow::Result<Value> {
    if super::try_open(config).await?.is_some() {
        return admin_request(config, Method::POST, path, Some(body)).await;
    }
    let base = super::server_base(config);
    let resp = reqwest::Client::new()
        .post(format!("{base}{path}"))
        .json(&body)
        .send()
        .await
        .map_err(|e| anyhow::anyhow!("cannot reach the running rolegate at {base}: {e}"))?;
    let status = resp.status();
    let v: Value = resp.json().await.unwrap_or(Value::Null);
    if !status.is_success() {
        anyhow::bail!(
            "{}",
            v["error"]
                .as_str()
                .map(str::to_string)
                .unwrap_or_else(|| format!("rolegate answered {status}"))
        );
    }
    Ok(v)
}

/// What `root bootstrap` prints: the TOTP secret to enrol and the command that finishes.
fn bootstrap_next_step(v: &Value, token: &str) -> String {
    format!(
        "Root's password is set.\n\
         Next, add root's MFA device to an authenticator app, with this secret or URI:\n\
         \x20 serial: {}\n\
         \x20 secret: {}\n\
         \x20 uri:    {}\n\
         then finish with two consecutive codes from the app:\n\
         \x20 rolegate root bootstrap-finish --token {token} CODE NEXT_CODE",
        v["serial"].as_str().unwrap_or("?"),
        v["secret_base32"].as_str().unwrap_or("?"),
        v["uri"].as_str().unwrap_or("?"),
    )
}

/// What `root bootstrap-finish` prints: where root signs in now.
fn bootstrap_done(config: &Config) -> String {
    format!(
        "Root is ready: sign in at {}login as root with the password and a code from the app.\n\
         Use root only to make the first administrators, in the operator console at {}admin or with \
         `rolegate group create admins`, `rolegate user create NAME`, `rolegate group add-user admins NAME`.",
        config.public_url, config.public_url
    )
}
