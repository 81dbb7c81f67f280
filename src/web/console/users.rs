//! Users in the console: the list with search, creating one, and a user's page with every change
//! the admin API offers on a user (status, unlock, password, MFA devices, access keys, groups,
//! inline policies, sessions) and the permission sets the assignment rules give it.

use super::{
    checked_change, done, failed, seg, shown_on_form, when, with_status, Admin, DoneQuery,
};
use crate::app::App;
use crate::web::directory::AdminError;
use askama::Template;
use axum::extract::{Path, Query, Request, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use axum::Router;
use serde::Deserialize;
use serde_json::{json, Value};
use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

/// Users listed on one page.
pub const PAGE_SIZE: usize = 50;
/// The list of users.
pub const USERS: &str = "/admin/console/users";

pub(super) fn routes() -> Router<Arc<App>> {
    Router::new()
        .route(USERS, get(list).post(create))
        .route("/admin/console/users/{name}", get(show))
        .route("/admin/console/users/{name}/{op}", post(change))
}

/// The page of user `name`.
pub(super) fn user_url(name: &str) -> String {
    format!("{USERS}/{}", seg(name))
}

/// A refused form: which one, why, and what was typed (never a password), to show it again.
#[derive(Default)]
pub(super) struct FormError {
    pub(super) form: String,
    pub(super) message: String,
    pub(super) kept: HashMap<String, String>,
}

impl FormError {
    pub(super) fn new(form: &str, message: impl Into<String>) -> Self {
        Self {
            form: form.to_string(),
            message: message.into(),
            kept: HashMap::new(),
        }
    }

    /// The message when it is about `form`.
    pub(super) fn on(&self, form: &str) -> Option<&str> {
        (self.form == form).then_some(self.message.as_str())
    }

    /// What was typed in `field`, when shown again.
    pub(super) fn kept(&self, field: &str) -> &str {
        self.kept.get(field).map_or("", String::as_str)
    }

    /// The status of the page that shows it: a refused form is a bad request.
    pub(super) fn status(&self) -> StatusCode {
        if self.message.is_empty() {
            StatusCode::OK
        } else {
            StatusCode::BAD_REQUEST
        }
    }
}

#[derive(Deserialize)]
struct ListQuery {
    #[serde(default)]
    q: String,
    #[serde(default)]
    page: usize,
    /// A user name typed in the lookup form (for an operator who may not list users).
    user: Option<String>,
    done: Option<String>,
}

#[derive(Deserialize)]
struct Listed {
    name: String,
    active: bool,
    root: bool,
}

#[derive(Template)]
#[template(path = "admin/users.html")]
struct ListPage<'a> {
    admin: &'a Admin,
    q: &'a str,
    /// `None` when the operator may not list users.
    users: Option<Vec<Listed>>,
    total: usize,
    page: usize,
    pages: usize,
    may_create: bool,
    error: Option<FormError>,
    notice: Option<&'static str>,
}

impl ListPage<'_> {
    fn link(&self, page: usize) -> String {
        let q = form_urlencoded::Serializer::new(String::new())
            .append_pair("q", self.q)
            .append_pair("page", &page.to_string())
            .finish();
        format!("{USERS}?{q}")
    }

    fn user_link(&self, name: &str) -> String {
        user_url(name)
    }
}

async fn list(State(app): State<Arc<App>>, admin: Admin, Query(q): Query<ListQuery>) -> Response {
    if let Some(name) = q.user.as_deref().map(str::trim).filter(|n| !n.is_empty()) {
        return Redirect::to(&user_url(name)).into_response();
    }
    list_page(
        &app,
        &admin,
        &q.q,
        q.page,
        None,
        super::notice(q.done.as_deref()),
    )
    .await
}

async fn list_page(
    app: &Arc<App>,
    admin: &Admin,
    q: &str,
    page: usize,
    error: Option<FormError>,
    notice: Option<&'static str>,
) -> Response {
    let may_create = admin
        .may(app, "rolegate:CreateUser", &user_arn(app, "*"))
        .await;
    let (users, total) = if admin.nav.users {
        match admin
            .run(app, "rolegate:ListUsers", &[], "", Value::Null)
            .await
        {
            Ok(v) => {
                let needle = q.trim().to_lowercase();
                // Only the users found are read into the page's rows.
                let found: Vec<Listed> = v
                    .as_array()
                    .into_iter()
                    .flatten()
                    .filter(|u| {
                        needle.is_empty()
                            || u.get("name")
                                .and_then(Value::as_str)
                                .is_some_and(|n| n.to_lowercase().contains(&needle))
                    })
                    .filter_map(|u| Listed::deserialize(u).ok())
                    .collect();
                let total = found.len();
                let shown = found
                    .into_iter()
                    .skip(page * PAGE_SIZE)
                    .take(PAGE_SIZE)
                    .collect();
                (Some(shown), total)
            }
            Err(e) => return failed(&e),
        }
    } else {
        (None, 0)
    };
    let status = if error.is_some() {
        StatusCode::BAD_REQUEST
    } else {
        StatusCode::OK
    };
    let page = crate::portal::page(ListPage {
        admin,
        q,
        users,
        total,
        page,
        pages: total.div_ceil(PAGE_SIZE),
        may_create,
        error,
        notice,
    });
    with_status(page, status)
}

fn user_arn(app: &App, name: &str) -> String {
    let account = app.directory.as_ref().map_or("", |d| d.account());
    crate::policy::arn::user(account, "/", name)
}

/// `POST /admin/console/users`: creates a user (name and optional path); its password, groups and
/// keys are set on its page.
async fn create(State(app): State<Arc<App>>, req: Request) -> Response {
    let (admin, r) = match super::checked_form(&app, req, "rolegate:CreateUser").await {
        Ok(x) => x,
        Err(resp) => return resp,
    };
    let name = r.field("name").unwrap_or("").trim().to_string();
    let path = r.field("path").unwrap_or("").trim().to_string();
    let mut error = FormError::new("create", "");
    error.kept.insert("name".into(), name.clone());
    error.kept.insert("path".into(), path.clone());
    if name.is_empty() {
        error.message = "Enter a user name.".into();
        return list_page(&app, &admin, "", 0, Some(error), None).await;
    }
    let mut body = json!({ "name": name });
    if !path.is_empty() {
        body["path"] = json!(path);
    }
    match admin.run(&app, "rolegate:CreateUser", &[], "", body).await {
        Ok(_) => done(&user_url(&name), "created"),
        Err(e) if shown_on_form(&e) => {
            error.message = e.message().to_string();
            list_page(&app, &admin, "", 0, Some(error), None).await
        }
        Err(e) => failed(&e),
    }
}

/// A user as `GetUser` answers.
#[derive(Deserialize)]
pub(super) struct UserJson {
    pub(super) name: String,
    pub(super) user_id: String,
    pub(super) arn: String,
    pub(super) path: String,
    pub(super) root: bool,
    pub(super) created_at: i64,
    pub(super) active: bool,
    pub(super) password_set: bool,
    pub(super) password_changed_at: Option<i64>,
    pub(super) groups: Vec<String>,
    #[serde(default)]
    pub(super) policy_documents: BTreeMap<String, String>,
    pub(super) access_keys: Vec<KeyJson>,
    pub(super) mfa_devices: Vec<MfaJson>,
    pub(super) locked: LocksJson,
}

#[derive(Deserialize)]
pub(super) struct KeyJson {
    pub(super) access_key_id: String,
    pub(super) status: String,
    pub(super) created_at: i64,
    pub(super) last_used: Option<KeyUseJson>,
}

#[derive(Deserialize)]
pub(super) struct KeyUseJson {
    pub(super) time: i64,
    pub(super) service: String,
    pub(super) region: String,
}

#[derive(Deserialize)]
pub(super) struct MfaJson {
    pub(super) serial: String,
    pub(super) enabled: bool,
}

#[derive(Deserialize, Default)]
pub(super) struct LocksJson {
    pub(super) password_until: Option<i64>,
    pub(super) totp_until: Option<i64>,
    pub(super) security_key_until: Option<i64>,
}

/// The permission sets the rules give a user, as `ExplainAssignments` answers.
#[derive(Deserialize)]
pub(super) struct AccessJson {
    pub(super) assignments: Vec<AssignmentJson>,
}

#[derive(Deserialize)]
pub(super) struct AssignmentJson {
    pub(super) account: String,
    pub(super) permission_set: String,
    pub(super) rules: Vec<usize>,
}

/// A user's live sign-ins, as `ListUserSessions` answers.
#[derive(Deserialize)]
pub(super) struct SessionsJson {
    pub(super) portal: Vec<PortalSessionJson>,
    #[serde(default)]
    pub(super) credentials_without_portal_session: Vec<IssuedJson>,
    pub(super) sso: Vec<SsoSignInJson>,
}

#[derive(Deserialize)]
pub(super) struct PortalSessionJson {
    pub(super) id: String,
    pub(super) created_at: i64,
    pub(super) last_seen: i64,
    pub(super) ip: String,
    pub(super) mfa: bool,
    #[serde(default)]
    pub(super) credentials: Vec<IssuedJson>,
}

/// Credentials the portal or a password sign-in issued, still valid.
#[derive(Deserialize)]
pub(super) struct IssuedJson {
    pub(super) id: String,
    pub(super) how: String,
    pub(super) account: String,
    pub(super) permission_set: String,
    pub(super) access_key_id: String,
    pub(super) expires_at: i64,
}

#[derive(Deserialize)]
pub(super) struct SsoSignInJson {
    pub(super) id: String,
    pub(super) client_id: String,
    pub(super) created_at: i64,
    pub(super) expires_at: i64,
    pub(super) credentials: Vec<CredentialJson>,
}

#[derive(Deserialize)]
pub(super) struct CredentialJson {
    pub(super) session_id: String,
    #[serde(default)]
    pub(super) access_key_id: String,
    #[serde(default)]
    pub(super) account: String,
    #[serde(default)]
    pub(super) permission_set: String,
    pub(super) expires_at: i64,
}

/// What the operator may do to the user on the page.
#[derive(Default)]
pub(super) struct Controls {
    status: bool,
    delete: bool,
    password: bool,
    unlock: bool,
    keys: bool,
    mfa: bool,
    groups: bool,
    policies: bool,
    revoke: bool,
    end: bool,
}

#[derive(Template)]
#[template(path = "admin/user.html")]
struct UserPage<'a> {
    admin: &'a Admin,
    name: &'a str,
    url: String,
    /// `None` when the operator may not read the user.
    user: Option<UserJson>,
    access: Option<AccessJson>,
    sessions: Option<SessionsJson>,
    can: Controls,
    error: FormError,
    notice: Option<&'static str>,
}

impl UserPage<'_> {
    /// Whether the user is active, when the operator may read it.
    fn active(&self) -> Option<bool> {
        self.user.as_ref().map(|u| u.active)
    }

    fn when(&self, t: &Option<i64>) -> String {
        when(*t)
    }

    fn at(&self, t: &i64) -> String {
        when(Some(*t))
    }

    /// How the portal issued credentials, in words.
    fn issued_how(&self, how: &str) -> &'static str {
        match how {
            "console_sign_in" => "console",
            "password_sign_in" => "password sign-in",
            _ => "command line access",
        }
    }
}

async fn show(
    State(app): State<Arc<App>>,
    admin: Admin,
    Path(name): Path<String>,
    Query(q): Query<DoneQuery>,
) -> Response {
    user_page(&app, &admin, &name, FormError::default(), q.notice()).await
}

async fn user_page(
    app: &Arc<App>,
    admin: &Admin,
    name: &str,
    error: FormError,
    notice: Option<&'static str>,
) -> Response {
    let arn = user_arn(app, name);
    let is_root = crate::web::directory::is_root(name);
    // Changes to root are reserved to root itself, whatever the policies say.
    let may_change_root =
        !is_root || matches!(admin.caller, crate::web::directory::Caller::Root(_));
    let may = |action: &'static str| {
        let arn = arn.clone();
        async move { may_change_root && admin.may(app, action, &arn).await }
    };
    let can = Controls {
        status: may("rolegate:DisableUser").await || may("rolegate:EnableUser").await,
        delete: may("rolegate:DeleteUser").await,
        password: may("rolegate:UpdateLoginProfile").await,
        unlock: may("rolegate:UnlockUser").await,
        keys: may("rolegate:CreateAccessKey").await,
        mfa: may("rolegate:DeactivateMFADevice").await,
        groups: may_change_root
            && admin
                .may(
                    app,
                    "rolegate:AddUserToGroup",
                    &crate::policy::arn::group(
                        app.directory.as_ref().map_or("", |d| d.account()),
                        "*",
                    ),
                )
                .await,
        policies: may("rolegate:PutUserPolicy").await,
        revoke: may("rolegate:RevokeSessions").await,
        end: may("rolegate:EndUserSession").await,
    };
    let user = if admin.may(app, "rolegate:GetUser", &arn).await {
        match admin
            .run(app, "rolegate:GetUser", &[("name", name)], "", Value::Null)
            .await
        {
            Ok(v) => match serde_json::from_value::<UserJson>(v) {
                Ok(u) => Some(u),
                Err(e) => return failed(&AdminError::internal(format!("user view: {e}"))),
            },
            Err(e) => return failed(&e),
        }
    } else {
        None
    };
    let access = match &user {
        Some(u) if admin.nav.access => {
            let body = json!({"provider": crate::config::LOCAL_PROVIDER,
                "claims": {"sub": u.name}, "local_groups": u.groups});
            admin
                .run(app, "rolegate:ExplainAssignments", &[], "", body)
                .await
                .ok()
                .and_then(|v| serde_json::from_value(v).ok())
        }
        _ => None,
    };
    let sessions = match &user {
        Some(_) if admin.may(app, "rolegate:ListUserSessions", &arn).await => admin
            .run(
                app,
                "rolegate:ListUserSessions",
                &[("name", name)],
                "",
                Value::Null,
            )
            .await
            .ok()
            .and_then(|v| serde_json::from_value(v).ok()),
        _ => None,
    };
    let status = error.status();
    let shown = user.as_ref().map_or(name, |u| u.name.as_str()).to_string();
    let page = crate::portal::page(UserPage {
        admin,
        name: &shown,
        url: user_url(name),
        user,
        access,
        sessions,
        can,
        error,
        notice,
    });
    with_status(page, status)
}

/// What a form on a user's page asks the admin API for.
struct Asked {
    params: Vec<(&'static str, String)>,
    query: String,
    body: Value,
}

/// The changes on a user's page: the form's name in the path, the admin API action.
const CHANGES: &[(&str, &str)] = &[
    ("disable", "rolegate:DisableUser"),
    ("enable", "rolegate:EnableUser"),
    ("delete", "rolegate:DeleteUser"),
    ("password", "rolegate:UpdateLoginProfile"),
    ("unlock", "rolegate:UnlockUser"),
    ("create-key", "rolegate:CreateAccessKey"),
    ("rotate-key", "rolegate:RotateAccessKey"),
    ("key-status", "rolegate:UpdateAccessKey"),
    ("delete-key", "rolegate:DeleteAccessKey"),
    ("remove-mfa", "rolegate:DeactivateMFADevice"),
    ("put-policy", "rolegate:PutUserPolicy"),
    ("delete-policy", "rolegate:DeleteUserPolicy"),
    ("add-group", "rolegate:AddUserToGroup"),
    ("remove-group", "rolegate:RemoveUserFromGroup"),
    ("revoke", "rolegate:RevokeSessions"),
    ("end-session", "rolegate:EndUserSession"),
];

/// The form's fields as the admin API's request, or why they are not acceptable.
fn asked(op: &str, name: &str, r: &crate::portal::PortalRequest) -> Result<Asked, FormError> {
    let field = |f: &str| r.field(f).unwrap_or("").trim().to_string();
    let required = |f: &str, what: &str| {
        let v = field(f);
        if v.is_empty() {
            Err(FormError::new(op, format!("Enter {what}.")))
        } else {
            Ok(v)
        }
    };
    let plain = |body: Value| Asked {
        params: Vec::new(),
        query: String::new(),
        body,
    };
    Ok(match op {
        "delete" => {
            if !field("confirm").eq_ignore_ascii_case(name) {
                return Err(FormError::new(op, "Type the user's name to confirm."));
            }
            plain(Value::Null)
        }
        "password" => {
            // Passwords are taken as typed (no trimming) and never shown again.
            let p = r.field("password").unwrap_or("");
            if p.is_empty() {
                return Err(FormError::new(op, "Enter the new password."));
            }
            if r.field("confirm").unwrap_or("") != p {
                return Err(FormError::new(op, "The two passwords differ."));
            }
            plain(json!({ "password": p }))
        }
        "key-status" => {
            let status = field("status");
            if status != "Active" && status != "Inactive" {
                return Err(FormError::new(op, "The status is Active or Inactive."));
            }
            Asked {
                params: vec![("id", required("id", "the access key id")?)],
                query: String::new(),
                body: json!({ "status": status }),
            }
        }
        "delete-key" => Asked {
            params: vec![("id", required("id", "the access key id")?)],
            query: String::new(),
            body: Value::Null,
        },
        "remove-mfa" => Asked {
            params: Vec::new(),
            query: form_urlencoded::Serializer::new(String::new())
                .append_pair("serial", &required("serial", "the device's serial")?)
                .finish(),
            body: Value::Null,
        },
        "put-policy" => {
            let policy = field("policy");
            let document = r.field("document").unwrap_or("").to_string();
            let mut e = FormError::new(op, "");
            e.kept.insert("policy".into(), policy.clone());
            e.kept.insert("document".into(), document.clone());
            if policy.is_empty() || document.trim().is_empty() {
                e.message = "Enter the policy's name and its document.".into();
                return Err(e);
            }
            Asked {
                params: vec![("policy", policy)],
                query: String::new(),
                body: json!({ "document": document }),
            }
        }
        "delete-policy" => Asked {
            params: vec![("policy", required("policy", "the policy's name")?)],
            query: String::new(),
            body: Value::Null,
        },
        "add-group" | "remove-group" => {
            let group = field("group");
            if group.is_empty() {
                return Err(FormError::new(op, "Enter the group's name."));
            }
            Asked {
                params: vec![("group", group)],
                query: String::new(),
                body: Value::Null,
            }
        }
        "end-session" => {
            let kind = field("kind");
            if !["portal", "sso", "credentials"].contains(&kind.as_str()) {
                return Err(FormError::new(op, "Choose a session to end."));
            }
            plain(json!({"kind": kind, "id": required("id", "the session")?}))
        }
        "revoke" => {
            let reason = required("reason", "a reason (it is kept in the audit log)")?;
            plain(json!({"scope": "user", "value": name, "reason": reason}))
        }
        _ => plain(Value::Null),
    })
}

#[derive(Template)]
#[template(path = "admin/key_created.html")]
struct KeyCreated<'a> {
    admin: &'a Admin,
    name: &'a str,
    url: String,
    access_key_id: String,
    secret_access_key: String,
    deactivated: Option<String>,
}

/// `POST /admin/console/users/{name}/{op}`: one change to a user, through the admin API.
async fn change(
    State(app): State<Arc<App>>,
    Path((name, op)): Path<(String, String)>,
    req: Request,
) -> Response {
    let (action, admin, r) = match checked_change(&app, req, CHANGES, &op).await {
        Ok(x) => x,
        Err(resp) => return resp,
    };
    let asked = match asked(&op, &name, &r) {
        Ok(a) => a,
        Err(e) => return user_page(&app, &admin, &name, e, None).await,
    };
    let mut params: Vec<(&str, &str)> = vec![("name", name.as_str())];
    params.extend(asked.params.iter().map(|(k, v)| (*k, v.as_str())));
    let result = admin
        .run(&app, action, &params, &asked.query, asked.body)
        .await;
    match result {
        Ok(v) if op == "create-key" || op == "rotate-key" => {
            let text = |k: &str| v.get(k).and_then(Value::as_str).map(str::to_string);
            crate::portal::page(KeyCreated {
                admin: &admin,
                name: &name,
                url: user_url(&name),
                access_key_id: text("access_key_id").unwrap_or_default(),
                secret_access_key: text("secret_access_key").unwrap_or_default(),
                deactivated: text("deactivated"),
            })
        }
        Ok(_) if op == "delete" => done(USERS, "deleted"),
        Ok(_) => done(&user_url(&name), &op),
        Err(e) if shown_on_form(&e) => {
            let mut kept = FormError::new(&op, e.message());
            if op == "put-policy" {
                for f in ["policy", "document"] {
                    kept.kept
                        .insert(f.into(), r.field(f).unwrap_or("").to_string());
                }
            }
            user_page(&app, &admin, &name, kept, None).await
        }
        Err(e) => failed(&e),
    }
}
