//! Who has access to what: the permission sets and assignment rules as configured (read-only, they
//! are configuration as code), who among the directory's users gets each permission set in each
//! account and by which rule (the same rule engine the portal uses), and the explanation of the
//! rules for a set of claims. Needs `rolegate:ExplainAssignments`; the per-user table also
//! `rolegate:ListUsers`.

use super::users::{user_url, FormError};
use super::{failed, Admin};
use crate::app::App;
use crate::config::{RuleMatch, LOCAL_PROVIDER};
use crate::web::directory::AdminError;
use askama::Template;
use axum::extract::{Request, State};
use axum::http::StatusCode;
use axum::response::Response;
use axum::routing::get;
use axum::Router;
use serde::Deserialize;
use serde_json::{json, Value};
use std::collections::BTreeMap;
use std::sync::Arc;

/// The page.
pub const ACCESS: &str = "/admin/console/access";

pub(super) fn routes() -> Router<Arc<App>> {
    Router::new().route(ACCESS, get(show).post(explain))
}

/// A permission set as configured.
struct SetView {
    name: String,
    description: String,
    session_hours: String,
    mfa: String,
    policies: Vec<String>,
}

/// An assignment rule as configured.
struct RuleView {
    number: usize,
    provider: String,
    matcher: String,
    permission_set: String,
    accounts: String,
    description: String,
}

/// Who has one permission set in one account, and by which rules.
struct Holders {
    account: String,
    permission_set: String,
    users: Vec<(String, String)>,
}

/// People of the identity providers who had one permission set in one account at their last
/// sign-in: `provider/subject` and when.
struct Federated {
    account: String,
    permission_set: String,
    people: Vec<(String, String)>,
}

#[derive(Deserialize)]
struct Explained {
    assignments: Vec<ExplainedSet>,
    rules: Vec<ExplainedRule>,
    #[serde(default)]
    notes: Vec<String>,
}

#[derive(Deserialize)]
struct ExplainedSet {
    account: String,
    permission_set: String,
}

#[derive(Deserialize)]
struct ExplainedRule {
    rule: usize,
    permission_set: String,
    matched: bool,
    reason: String,
}

#[derive(Template)]
#[template(path = "admin/access.html")]
struct AccessPage<'a> {
    admin: &'a Admin,
    sets: Vec<SetView>,
    rules: Vec<RuleView>,
    holders: Option<Vec<Holders>>,
    federated: Vec<Federated>,
    providers: Vec<String>,
    explained: Option<Explained>,
    error: FormError,
}

impl AccessPage<'_> {
    fn user_link(&self, name: &str) -> String {
        user_url(name)
    }

    fn chosen(&self, provider: &str) -> bool {
        self.error.kept("provider") == provider
    }
}

async fn show(State(app): State<Arc<App>>, admin: Admin) -> Response {
    render(&app, &admin, None, FormError::default()).await
}

async fn render(
    app: &Arc<App>,
    admin: &Admin,
    explained: Option<Explained>,
    error: FormError,
) -> Response {
    if !admin.nav.access {
        return failed(&AdminError::forbidden(
            "your policies do not allow rolegate:ExplainAssignments",
        ));
    }
    let config = &app.config;
    let sets = config
        .permission_sets
        .iter()
        .map(|s| SetView {
            name: s.name.clone(),
            description: s.description.clone().unwrap_or_default(),
            session_hours: format!("{:.1}", f64::from(s.session_seconds) / 3600.0),
            mfa: format!("{:?}", s.mfa),
            policies: s
                .policies
                .iter()
                .map(|(n, _)| n.clone())
                .chain(s.managed_policies.iter().map(|m| format!("{m} (managed)")))
                .collect(),
        })
        .collect();
    let rules = config
        .assignment_rules
        .iter()
        .map(|r| RuleView {
            number: r.index + 1,
            provider: r.provider.clone(),
            matcher: match &r.matcher {
                RuleMatch::Group(g) => format!("group {g}"),
                RuleMatch::EmailDomain(d) => format!("verified e-mail in {d}"),
                RuleMatch::LocalGroup(g) => format!("directory group {g}"),
                RuleMatch::Condition(_) => "a condition on the claims".to_string(),
            },
            permission_set: r.permission_set.clone(),
            accounts: r.accounts.join(", "),
            description: r.description.clone().unwrap_or_default(),
        })
        .collect();
    let holders = if admin.nav.users {
        match directory_holders(app) {
            Ok(h) => Some(h.await),
            Err(e) => return failed(&e),
        }
    } else {
        None
    };
    let federated = match crate::mapping::login_records(app.store.as_ref()).await {
        Ok(records) => federated_holders(records),
        Err(e) => return failed(&AdminError::internal(e.to_string())),
    };
    let mut providers: Vec<String> = vec![LOCAL_PROVIDER.to_string()];
    providers.extend(config.assignment_rules.iter().map(|r| r.provider.clone()));
    providers.sort();
    providers.dedup();
    let status = error.status();
    let page = crate::portal::page(AccessPage {
        admin,
        sets,
        rules,
        holders,
        federated,
        providers,
        explained,
        error,
    });
    super::with_status(page, status)
}

/// Who among the directory's users has each permission set in each account, by the rules now.
fn directory_holders(
    app: &Arc<App>,
) -> Result<impl std::future::Future<Output = Vec<Holders>> + '_, AdminError> {
    let d = app
        .directory
        .as_deref()
        .ok_or_else(|| AdminError::internal("no directory"))?;
    Ok(async move {
        let mut by: BTreeMap<(String, String), Vec<(String, String)>> = BTreeMap::new();
        let users = d
            .map_users(|u| (u.name.clone(), u.groups.clone()))
            .await
            .unwrap_or_default();
        let claims = serde_json::Map::new();
        for (name, groups) in &users {
            let subject = crate::mapping::Subject {
                provider: LOCAL_PROVIDER,
                subject: name,
                claims: &claims,
                local_groups: groups,
                provisioned_groups: None,
            };
            let Ok(e) = crate::mapping::evaluate(&app.config, &subject) else {
                continue;
            };
            for a in e.assignments {
                let rules = a
                    .rules
                    .iter()
                    .map(ToString::to_string)
                    .collect::<Vec<_>>()
                    .join(", ");
                by.entry((a.account, a.permission_set))
                    .or_default()
                    .push((name.clone(), rules));
            }
        }
        by.into_iter()
            .map(|((account, permission_set), users)| Holders {
                account,
                permission_set,
                users,
            })
            .collect()
    })
}

/// The people of identity providers (the directory's users are evaluated live instead) by the
/// permission set and account they had at their last sign-in.
fn federated_holders(records: Vec<crate::mapping::LoginRecord>) -> Vec<Federated> {
    let mut by: BTreeMap<(String, String), Vec<(String, String)>> = BTreeMap::new();
    for r in records.iter().filter(|r| r.provider != LOCAL_PROVIDER) {
        for a in &r.assignments {
            by.entry((a.account.clone(), a.permission_set.clone()))
                .or_default()
                .push((
                    format!("{}/{}", r.provider, r.subject),
                    super::when(Some(r.last_login)),
                ));
        }
    }
    by.into_iter()
        .map(|((account, permission_set), people)| Federated {
            account,
            permission_set,
            people,
        })
        .collect()
}

/// `POST /admin/console/access`: the rules explained for the claims typed in.
async fn explain(State(app): State<Arc<App>>, req: Request) -> Response {
    let (admin, r) = match super::checked_form(&app, req, "rolegate:ExplainAssignments").await {
        Ok(x) => x,
        Err(resp) => return resp,
    };
    let provider = r.field("provider").unwrap_or("").trim().to_string();
    let claims_text = r.field("claims").unwrap_or("").to_string();
    let groups_text = r.field("local_groups").unwrap_or("").to_string();
    let mut error = FormError::new("explain", "");
    error.kept.insert("provider".into(), provider.clone());
    error.kept.insert("claims".into(), claims_text.clone());
    error
        .kept
        .insert("local_groups".into(), groups_text.clone());
    let claims: Value = if claims_text.trim().is_empty() {
        json!({})
    } else {
        match serde_json::from_str::<Value>(&claims_text) {
            Ok(v @ Value::Object(_)) => v,
            Ok(_) => {
                error.message =
                    "The claims are a JSON object, e.g. {\"sub\": \"ada\", \"groups\": [\"eng\"]}."
                        .into();
                return render(&app, &admin, None, error).await;
            }
            Err(e) => {
                error.message = format!("The claims are not JSON: {e}.");
                return render(&app, &admin, None, error).await;
            }
        }
    };
    let local_groups: Vec<&str> = groups_text
        .split(',')
        .map(str::trim)
        .filter(|g| !g.is_empty())
        .collect();
    let body = json!({"provider": provider, "claims": claims, "local_groups": local_groups});
    match admin
        .run(&app, "rolegate:ExplainAssignments", &[], "", body)
        .await
    {
        Ok(v) => match serde_json::from_value::<Explained>(v) {
            Ok(x) => render(&app, &admin, Some(x), error).await,
            Err(e) => failed(&AdminError::internal(format!("explanation: {e}"))),
        },
        Err(e) if e.status() == StatusCode::BAD_REQUEST => {
            error.message = e.message().to_string();
            render(&app, &admin, None, error).await
        }
        Err(e) => failed(&e),
    }
}
