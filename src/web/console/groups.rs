//! Groups in the console: the list, creating one, and a group's page with its members and inline
//! policies, each change through the admin API.

use super::users::{user_url, FormError};
use super::{checked_change, done, failed, seg, shown_on_form, with_status, Admin, DoneQuery};
use crate::app::App;
use askama::Template;
use axum::extract::{Path, Query, Request, State};
use axum::response::Response;
use axum::routing::{get, post};
use axum::Router;
use serde::Deserialize;
use serde_json::{json, Value};
use std::collections::BTreeMap;
use std::sync::Arc;

/// The list of groups.
pub const GROUPS: &str = "/admin/console/groups";

pub(super) fn routes() -> Router<Arc<App>> {
    Router::new()
        .route(GROUPS, get(list).post(create))
        .route("/admin/console/groups/{group}", get(show))
        .route("/admin/console/groups/{group}/{op}", post(change))
}

fn group_url(name: &str) -> String {
    format!("{GROUPS}/{}", seg(name))
}

fn group_arn(app: &App, name: &str) -> String {
    crate::policy::arn::group(app.directory.as_ref().map_or("", |d| d.account()), name)
}

#[derive(Deserialize)]
struct Listed {
    name: String,
    #[serde(default)]
    policies: Vec<String>,
}

#[derive(Template)]
#[template(path = "admin/groups.html")]
struct ListPage<'a> {
    admin: &'a Admin,
    groups: Vec<Listed>,
    may_create: bool,
    error: FormError,
    notice: Option<&'static str>,
}

impl ListPage<'_> {
    fn link(&self, name: &str) -> String {
        group_url(name)
    }
}

async fn list(State(app): State<Arc<App>>, admin: Admin, Query(q): Query<DoneQuery>) -> Response {
    list_page(&app, &admin, FormError::default(), q.notice()).await
}

async fn list_page(
    app: &Arc<App>,
    admin: &Admin,
    error: FormError,
    notice: Option<&'static str>,
) -> Response {
    let groups = match admin
        .run(app, "rolegate:ListGroups", &[], "", Value::Null)
        .await
    {
        Ok(v) => serde_json::from_value(v).unwrap_or_default(),
        Err(e) => return failed(&e),
    };
    let may_create = admin
        .may(app, "rolegate:CreateGroup", &group_arn(app, "*"))
        .await;
    let status = error.status();
    let page = crate::portal::page(ListPage {
        admin,
        groups,
        may_create,
        error,
        notice,
    });
    with_status(page, status)
}

async fn create(State(app): State<Arc<App>>, req: Request) -> Response {
    let (admin, r) = match super::checked_form(&app, req, "rolegate:CreateGroup").await {
        Ok(x) => x,
        Err(resp) => return resp,
    };
    let name = r.field("name").unwrap_or("").trim().to_string();
    let mut error = FormError::new("create", "");
    error.kept.insert("name".into(), name.clone());
    if name.is_empty() {
        error.message = "Enter a group name.".into();
        return list_page(&app, &admin, error, None).await;
    }
    match admin
        .run(
            &app,
            "rolegate:CreateGroup",
            &[],
            "",
            json!({ "name": name }),
        )
        .await
    {
        Ok(_) => done(&group_url(&name), "created"),
        Err(e) if shown_on_form(&e) => {
            error.message = e.message().to_string();
            list_page(&app, &admin, error, None).await
        }
        Err(e) => failed(&e),
    }
}

#[derive(Deserialize)]
struct GroupJson {
    name: String,
    arn: String,
    #[serde(default)]
    policies: BTreeMap<String, String>,
    members: Vec<Member>,
}

#[derive(Deserialize)]
struct Member {
    name: String,
    active: bool,
}

#[derive(Template)]
#[template(path = "admin/group.html")]
struct GroupPage<'a> {
    admin: &'a Admin,
    group: GroupJson,
    url: String,
    can_members: bool,
    can_policies: bool,
    can_delete: bool,
    error: FormError,
    notice: Option<&'static str>,
}

impl GroupPage<'_> {
    fn user_link(&self, name: &str) -> String {
        user_url(name)
    }
}

async fn show(
    State(app): State<Arc<App>>,
    admin: Admin,
    Path(group): Path<String>,
    Query(q): Query<DoneQuery>,
) -> Response {
    group_page(&app, &admin, &group, FormError::default(), q.notice()).await
}

async fn group_page(
    app: &Arc<App>,
    admin: &Admin,
    name: &str,
    error: FormError,
    notice: Option<&'static str>,
) -> Response {
    let group = match admin
        .run(
            app,
            "rolegate:GetGroup",
            &[("group", name)],
            "",
            Value::Null,
        )
        .await
        .map(serde_json::from_value::<GroupJson>)
    {
        Ok(Ok(g)) => g,
        Ok(Err(e)) => {
            return failed(&crate::web::directory::AdminError::internal(format!(
                "group view: {e}"
            )))
        }
        Err(e) => return failed(&e),
    };
    let arn = group_arn(app, &group.name);
    let status = error.status();
    let page = crate::portal::page(GroupPage {
        admin,
        url: group_url(&group.name),
        can_members: admin.may(app, "rolegate:AddUserToGroup", &arn).await,
        can_policies: admin.may(app, "rolegate:PutGroupPolicy", &arn).await,
        can_delete: admin.may(app, "rolegate:DeleteGroup", &arn).await,
        group,
        error,
        notice,
    });
    with_status(page, status)
}

/// The changes on a group's page: the form's name in the path, the admin API action.
const CHANGES: &[(&str, &str)] = &[
    ("add-member", "rolegate:AddUserToGroup"),
    ("remove-member", "rolegate:RemoveUserFromGroup"),
    ("put-policy", "rolegate:PutGroupPolicy"),
    ("delete-policy", "rolegate:DeleteGroupPolicy"),
    ("delete", "rolegate:DeleteGroup"),
];

/// `POST /admin/console/groups/{group}/{op}`: one change to a group, through the admin API.
async fn change(
    State(app): State<Arc<App>>,
    Path((group, op)): Path<(String, String)>,
    req: Request,
) -> Response {
    let (action, admin, r) = match checked_change(&app, req, CHANGES, &op).await {
        Ok(x) => x,
        Err(resp) => return resp,
    };
    let field = |f: &str| r.field(f).unwrap_or("").trim().to_string();
    let mut error = FormError::new(&op, "");
    let mut params = vec![("group", group.clone())];
    let mut body = Value::Null;
    match op.as_str() {
        "add-member" | "remove-member" => {
            let user = field("user");
            error.kept.insert("user".into(), user.clone());
            if user.is_empty() {
                error.message = "Enter a user name.".into();
            }
            params.push(("name", user));
        }
        "put-policy" | "delete-policy" => {
            let policy = field("policy");
            let document = r.field("document").unwrap_or("").to_string();
            error.kept.insert("policy".into(), policy.clone());
            error.kept.insert("document".into(), document.clone());
            if policy.is_empty() || (op == "put-policy" && document.trim().is_empty()) {
                error.message = "Enter the policy's name and its document.".into();
            }
            params.push(("policy", policy));
            body = json!({ "document": document });
        }
        _ => {
            if !field("confirm").eq_ignore_ascii_case(&group) {
                error.message = "Type the group's name to confirm.".into();
            }
        }
    }
    if !error.message.is_empty() {
        return group_page(&app, &admin, &group, error, None).await;
    }
    let params: Vec<(&str, &str)> = params.iter().map(|(k, v)| (*k, v.as_str())).collect();
    match admin.run(&app, action, &params, "", body).await {
        Ok(_) if op == "delete" => done(GROUPS, "deleted"),
        Ok(_) => done(&group_url(&group), &op),
        Err(e) if shown_on_form(&e) => {
            error.message = e.message().to_string();
            group_page(&app, &admin, &group, error, None).await
        }
        Err(e) => failed(&e),
    }
}
