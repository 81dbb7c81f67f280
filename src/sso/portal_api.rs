//! The portal API (rest-json, bearer token in `x-amz-sso_bearer_token`): `GET /assignment/accounts`
//! (ListAccounts), `GET /assignment/roles` (ListAccountRoles), `GET /federation/credentials`
//! (GetRoleCredentials) and `POST /logout` (Logout). A role here is a permission set; what a token
//! may reach is what the assignment rules give its sign-in's identity *now*, so a rule change
//! applies to existing tokens at once.

use super::token::{self, Bearer, IssuedSession};
use super::{Result, SsoError};
use crate::app::App;
use crate::audit::AuditEvent;
use crate::store::{Revocation, RevocationScope};
use axum::extract::{Request, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use base64::Engine;
use serde_json::json;
use std::collections::HashMap;
use std::sync::Arc;

/// The header carrying the SSO access token.
pub const BEARER_HEADER: &str = "x-amz-sso_bearer_token";
/// Page size when `max_result` is not given.
const DEFAULT_PAGE: usize = 20;
/// Largest `max_result` (the model's bound).
const MAX_PAGE: usize = 100;

/// The portal API routes (`POST /logout` is shared with the browser sign-out, which hands requests
/// carrying [`BEARER_HEADER`] to [`logout`]), and the start URL itself: opened in a browser, it is
/// the portal.
pub fn routes() -> Router<Arc<App>> {
    Router::new()
        .route(
            "/start",
            get(|| async { axum::response::Redirect::to("/portal") }),
        )
        .route("/assignment/accounts", get(list_accounts))
        .route("/assignment/roles", get(list_account_roles))
        .route("/federation/credentials", get(get_role_credentials))
}

/// Whether a `POST /logout` is the portal API's Logout rather than the browser's sign-out.
pub fn is_api_logout(headers: &HeaderMap) -> bool {
    headers.contains_key(BEARER_HEADER)
}

/// A request taken apart: the bearer token and query.
struct ApiRequest {
    token: Option<String>,
    query: HashMap<String, String>,
}

/// Starts handling `req` as `action`: the audit event (with the client address) and the request
/// taken apart (refused when a parameter is given twice). The request itself is dropped here: its
/// body is not `Sync`, and the handlers' futures must be `Send`.
fn begin(app: &App, action: &str, req: Request) -> (AuditEvent, Result<ApiRequest>) {
    let ev = super::event(app, action, &crate::request::client_ip(&req).to_string());
    let token = req
        .headers()
        .get(BEARER_HEADER)
        .and_then(|v| v.to_str().ok())
        .map(str::to_string);
    let mut query = HashMap::new();
    for (k, v) in form_urlencoded::parse(req.uri().query().unwrap_or("").as_bytes()) {
        if query.insert(k.to_string(), v.to_string()).is_some() {
            let e = SsoError::portal_invalid_request(format!("Parameter {k} given twice"));
            return (ev, Err(e));
        }
    }
    (ev, Ok(ApiRequest { token, query }))
}

impl ApiRequest {
    fn param(&self, name: &str) -> Option<&str> {
        self.query.get(name).map(String::as_str)
    }

    fn required(&self, name: &str) -> Result<&str> {
        match self.param(name) {
            Some(v) if !v.is_empty() => Ok(v),
            _ => Err(SsoError::portal_invalid_request(format!(
                "Missing required parameter {name}"
            ))),
        }
    }
}

/// The live sign-in behind the request's token, with the audit event naming who it is.
async fn authenticate(app: &App, r: &ApiRequest, ev: &mut AuditEvent) -> Result<Bearer> {
    let Some(t) = r.token.as_deref().filter(|t| !t.is_empty()) else {
        return Err(SsoError::unauthorized(format!("no {BEARER_HEADER} header")));
    };
    let mut b = token::bearer(app, t).await?;
    let id = &b.signin.identity;
    ev.provider = Some(id.provider.clone());
    ev.subject = Some(id.subject.clone());
    ev.principal = Some(id.display());
    ev.mfa = Some(id.mfa_time.is_some());
    b.signin.identity = token::recheck(app, &b.signin_key, &b.signin.identity).await?;
    Ok(b)
}

/// The (account, permission set) pairs the rules give the token's identity now, in rule order.
fn assignments(app: &App, b: &Bearer) -> Result<Vec<(String, String)>> {
    let id = &b.signin.identity;
    let provisioned = app.provisioned.groups(&id.provider, &id.subject);
    let evaluation = crate::mapping::evaluate(
        &app.config,
        &crate::mapping::Subject {
            provider: &id.provider,
            subject: &id.subject,
            claims: &id.claims,
            local_groups: &id.local_groups,
            provisioned_groups: provisioned.as_deref(),
        },
    )
    .map_err(|e| SsoError::portal_internal(format!("assignment rules: {e}")))?;
    Ok(evaluation
        .assignments
        .into_iter()
        .map(|a| (a.account, a.permission_set))
        .collect())
}

/// `max_result` and `next_token` as a page: (offset, size). The next token is opaque to clients;
/// it encodes the offset of the next item and the list it belongs to.
fn page(r: &ApiRequest, list: &str) -> Result<(usize, usize)> {
    let size = match r.param("max_result") {
        None => DEFAULT_PAGE,
        Some(s) => match s.parse::<usize>() {
            Ok(n) if (1..=MAX_PAGE).contains(&n) => n,
            _ => {
                return Err(SsoError::portal_invalid_request(format!(
                    "max_result must be between 1 and {MAX_PAGE}"
                )))
            }
        },
    };
    let offset = match r.param("next_token") {
        None | Some("") => 0,
        Some(t) => base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(t)
            .ok()
            .and_then(|b| String::from_utf8(b).ok())
            .and_then(|s| {
                let (l, n) = s.split_once(':')?;
                (l == list).then(|| n.parse::<usize>().ok()).flatten()
            })
            .ok_or_else(|| SsoError::portal_invalid_request("Invalid next_token"))?,
    };
    Ok((offset, size))
}

fn next_token(list: &str, next: usize, total: usize) -> serde_json::Value {
    if next < total {
        json!(base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(format!("{list}:{next}")))
    } else {
        serde_json::Value::Null
    }
}

/// A page of `items` as the response object `{<field>: [...], "nextToken": ...}`.
fn paged(
    items: Vec<serde_json::Value>,
    field: &str,
    list: &str,
    r: &ApiRequest,
) -> Result<Response> {
    let (offset, size) = page(r, list)?;
    let total = items.len();
    let end = offset.saturating_add(size).min(total);
    let slice: Vec<_> = items.into_iter().skip(offset).take(size).collect();
    let mut body = serde_json::Map::new();
    body.insert(field.to_string(), serde_json::Value::Array(slice));
    let next = next_token(list, end, total);
    if !next.is_null() {
        body.insert("nextToken".into(), next);
    }
    Ok(super::ok_json(serde_json::Value::Object(body)))
}

/// `ListAccounts`: the accounts in which the token's identity has at least one permission set.
async fn list_accounts(State(app): State<Arc<App>>, req: Request) -> Response {
    let (mut ev, parsed) = begin(&app, "sso:ListAccounts", req);
    let result = async {
        let r = parsed?;
        let b = authenticate(&app, &r, &mut ev).await?;
        let mut seen: Vec<String> = Vec::new();
        for (account, _) in assignments(&app, &b)? {
            if !seen.contains(&account) {
                seen.push(account);
            }
        }
        let items = seen
            .iter()
            .map(|id| {
                let name = app
                    .config
                    .accounts
                    .iter()
                    .find(|a| &a.id == id)
                    .map_or_else(|| id.clone(), |a| a.name.clone());
                json!({"accountId": id, "accountName": name})
            })
            .collect();
        paged(items, "accountList", "accounts", &r)
    }
    .await;
    super::finish(&app, ev, result, false)
}

/// `ListAccountRoles`: the permission sets of the token's identity in one account (an account it
/// has none in gives an empty list, not an error: no oracle for which accounts exist).
async fn list_account_roles(State(app): State<Arc<App>>, req: Request) -> Response {
    let (mut ev, parsed) = begin(&app, "sso:ListAccountRoles", req);
    let result = async {
        let r = parsed?;
        let b = authenticate(&app, &r, &mut ev).await?;
        let account = r.required("account_id")?;
        check_account_id(account)?;
        let items = assignments(&app, &b)?
            .into_iter()
            .filter(|(a, _)| a == account)
            .map(|(a, set)| json!({"roleName": set, "accountId": a}))
            .collect();
        paged(items, "roleList", &format!("roles/{account}"), &r)
    }
    .await;
    super::finish(&app, ev, result, false)
}

fn check_account_id(account: &str) -> Result<()> {
    if crate::policy::is_account_id(account) {
        Ok(())
    } else {
        Err(SsoError::portal_invalid_request(
            "account_id must be 12 digits",
        ))
    }
}

/// `GetRoleCredentials`: temporary credentials for a permission set (`role_name`) in an account,
/// exactly as the portal's command line access issues them (the same assignment and MFA rules);
/// `expiration` in epoch milliseconds.
async fn get_role_credentials(State(app): State<Arc<App>>, req: Request) -> Response {
    let (mut ev, parsed) = begin(&app, "sso:GetRoleCredentials", req);
    let result = async {
        let r = parsed?;
        let b = authenticate(&app, &r, &mut ev).await?;
        let set = r.required("role_name")?;
        let account = r.required("account_id")?;
        check_account_id(account)?;
        let admitted = token::admit(&app, &b.signin_key, &b.signin.identity).await?;
        let (c, session_token) =
            crate::sts::credentials_for_assignment(&app, &admitted, account, set, &mut ev)
                .map_err(|e| {
                    let assigned = e.reason.contains("no assignment rule");
                    let message = if assigned {
                        "No access".to_string()
                    } else {
                        e.message.clone()
                    };
                    SsoError::forbidden(message).because(e.reason)
                })?;
        // Remembered always, before they are handed out: an operator lists and ends them one by
        // one; a Logout revokes them only with `logout_revokes_credentials`.
        token::record_issued(
            &app,
            &b.signin_key,
            IssuedSession {
                session_id: c.session_id.clone(),
                expires_at: c.expires_at,
                access_key_id: c.access_key_id.clone(),
                account: account.to_string(),
                permission_set: set.to_string(),
                role_arn: c.principal.role_arn(),
                issued_at: Some(c.issued_at),
            },
        )
        .await
        .map_err(|e| e.for_api(super::Api::Portal))?;
        ev.principal = Some(c.principal.arn());
        ev.access_key_id = Some(c.access_key_id.clone());
        ev.expiration = Some(crate::clock::rfc3339(
            &chrono::DateTime::from_timestamp(c.expires_at, 0).unwrap_or_default(),
            false,
        ));
        Ok(super::ok_json(json!({
            "roleCredentials": {
                "accessKeyId": c.access_key_id,
                "secretAccessKey": c.secret_access_key,
                "sessionToken": session_token,
                "expiration": c.expires_at * 1000,
            }
        })))
    }
    .await;
    super::finish(&app, ev, result, true)
}

/// `Logout`: ends the token's sign-in (every access and refresh token of it); with
/// `[sso] logout_revokes_credentials`, also revokes the role credentials obtained with it.
pub async fn logout(State(app): State<Arc<App>>, req: Request) -> Response {
    let (mut ev, parsed) = begin(&app, "sso:Logout", req);
    let result = async {
        let r = parsed?;
        let b = authenticate(&app, &r, &mut ev).await?;
        let ended = token::end(&app, &b.signin_key, "Logout")
            .await
            .map_err(|e| e.for_api(super::Api::Portal))?;
        let revoke = app
            .config
            .sso
            .as_ref()
            .is_some_and(|s| s.logout_revokes_credentials);
        let mut revoked = 0;
        if let (true, Some(signin)) = (revoke, ended) {
            let now = app.clock.now().timestamp();
            for s in signin.issued.iter().filter(|s| s.expires_at > now) {
                let rev = Revocation {
                    scope: RevocationScope::Session(s.session_id.clone()),
                    issued_before: now + 1,
                    created_at: now,
                    expires_at: s.expires_at,
                    reason: format!("SSO Logout of {}", b.signin.identity.display()),
                };
                app.revocations
                    .revoke(app.store.as_ref(), rev)
                    .await
                    .map_err(|e| SsoError::portal_internal(format!("revocation: {e}")))?;
                revoked += 1;
            }
        }
        ev.reason = Some(if revoke {
            format!("sign-in ended; {revoked} credential sessions revoked")
        } else {
            "sign-in ended; credentials obtained with it stay valid until they expire".into()
        });
        Ok(StatusCode::OK.into_response())
    }
    .await;
    super::finish(&app, ev, result, true)
}
