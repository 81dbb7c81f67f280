//! The way back to an action after the MFA challenge: the challenge returns to a page that asks
//! once more for the action the person chose (open the console, command line access) of one
//! permission set in one account, with its own form (a GET never acts).

use super::extract::SignedIn;
use super::pages::page;
use crate::app::App;
use askama::Template;
use axum::extract::{Query, State};
use axum::response::{IntoResponse, Redirect, Response};
use std::collections::HashMap;
use std::sync::Arc;

/// The action the person asked for before the MFA challenge.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Action {
    /// `POST /portal/console`.
    Console,
    /// `POST /portal/credentials`.
    Credentials,
}

impl Action {
    fn path(self) -> &'static str {
        match self {
            Action::Console => "/portal/console",
            Action::Credentials => "/portal/credentials",
        }
    }

    fn label(self) -> &'static str {
        match self {
            Action::Console => "Open console",
            Action::Credentials => "Command line access",
        }
    }
}

/// Where the MFA challenge returns to for `action` on permission set `set` in `account`: the
/// page that offers the action again.
pub(super) fn return_to(action: Action, account: &str, set: &str) -> String {
    let q: String = form_urlencoded::Serializer::new(String::new())
        .append_pair("account", account)
        .append_pair("permission_set", set)
        .finish();
    format!("{}?{q}", action.path())
}

#[derive(Template)]
#[template(path = "portal/resume.html")]
struct ResumePage<'a> {
    who: String,
    csrf: &'a str,
    action: &'a str,
    label: &'a str,
    account: &'a str,
    account_name: String,
    permission_set: &'a str,
}

/// `GET /portal/console` and `GET /portal/credentials`: the action again, for an assignment the
/// person has; anything else goes to the home page.
async fn resume(
    action: Action,
    app: &App,
    SignedIn(s, _): SignedIn,
    q: &HashMap<String, String>,
) -> Response {
    let identity = &s.record.identity;
    let (Some(account), Some(set)) = (q.get("account"), q.get("permission_set")) else {
        return Redirect::to("/portal").into_response();
    };
    let assigned = match super::assignments_of(app, identity) {
        Ok(e) => e
            .assignments
            .iter()
            .any(|a| &a.account == account && &a.permission_set == set),
        Err(e) => return e.into_response(),
    };
    if !assigned {
        return Redirect::to("/portal").into_response();
    }
    let account_name = app
        .config
        .accounts
        .iter()
        .find(|x| &x.id == account)
        .map_or_else(|| account.clone(), |x| x.name.clone());
    page(ResumePage {
        who: identity.display(),
        csrf: &s.record.csrf,
        action: action.path(),
        label: action.label(),
        account,
        account_name,
        permission_set: set,
    })
}

/// `GET /portal/console`.
pub(super) async fn console(
    State(app): State<Arc<App>>,
    signed_in: SignedIn,
    Query(q): Query<HashMap<String, String>>,
) -> Response {
    resume(Action::Console, &app, signed_in, &q).await
}

/// `GET /portal/credentials`.
pub(super) async fn credentials(
    State(app): State<Arc<App>>,
    signed_in: SignedIn,
    Query(q): Query<HashMap<String, String>>,
) -> Response {
    resume(Action::Credentials, &app, signed_in, &q).await
}
