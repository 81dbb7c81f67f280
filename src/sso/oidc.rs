//! The SSO-OIDC API (rest-json, unsigned): `POST /client/register` (RegisterClient),
//! `POST /device_authorization` (StartDeviceAuthorization) and `POST /token` (CreateToken with the
//! device-code, authorization-code + PKCE and refresh-token grants), shaped exactly as botocore's
//! `sso-oidc` model: camelCase JSON members, errors as `{error, error_description}` with the AWS
//! error type in `x-amzn-ErrorType`.
//!
//! Every call is audited (`sso:RegisterClient`, `sso:StartDeviceAuthorization`,
//! `sso:CreateToken`, the client id as the resource) except the `CreateToken` polls answered
//! `AuthorizationPendingException`, which a waiting client sends every few seconds; every refusal
//! is audited with its precise reason.

use super::client::{self, ClientRecord, CODE_GRANT, DEVICE_GRANT};
use super::{code, device, token, Result, SsoCode, SsoError};
use crate::app::App;
use crate::audit::AuditEvent;
use axum::extract::{Request, State};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::Router;
use serde::de::DeserializeOwned;
use serde::Deserialize;
use serde_json::json;
use std::net::IpAddr;
use std::sync::Arc;

/// Largest request body (every member together is far smaller).
const BODY_LIMIT: usize = 16 * 1024;
/// Audit action of RegisterClient.
pub const REGISTER_ACTION: &str = "sso:RegisterClient";
/// Audit action of StartDeviceAuthorization.
pub const DEVICE_ACTION: &str = "sso:StartDeviceAuthorization";
/// Audit action of CreateToken.
pub const TOKEN_ACTION: &str = "sso:CreateToken";
/// The portal page where people enter a user code.
pub const DEVICE_PATH: &str = "/device";
/// The portal page where people approve a PKCE sign-in.
pub const AUTHORIZE_PATH: &str = "/authorize";

/// The SSO-OIDC routes.
pub fn routes() -> Router<Arc<App>> {
    Router::new()
        .route("/client/register", post(register_client))
        .route("/device_authorization", post(start_device_authorization))
        .route("/token", post(create_token))
}

/// `{public_url}{path}`.
pub fn public(config: &crate::config::Config, path: &str) -> String {
    format!("{}{path}", config.public_url.as_str().trim_end_matches('/'))
}

/// The request's client address, and its JSON body as `T`.
async fn read<T: DeserializeOwned>(req: Request) -> (IpAddr, Result<T>) {
    let ip = crate::request::client_ip(&req);
    let body = match axum::body::to_bytes(req.into_body(), BODY_LIMIT).await {
        Ok(b) => b,
        Err(_) => {
            return (
                ip,
                Err(SsoError::invalid_request("Request body too large")
                    .because(format!("body over {BODY_LIMIT} bytes"))),
            )
        }
    };
    let parsed =
        serde_json::from_slice::<T>(if body.is_empty() { b"{}" } else { &body }).map_err(|e| {
            SsoError::invalid_request("Request body is not valid for this operation")
                .because(format!("request body: {e}"))
        });
    (ip, parsed)
}

fn required<'a>(v: &'a Option<String>, name: &str) -> Result<&'a str> {
    match v.as_deref() {
        Some(s) if !s.is_empty() => Ok(s),
        _ => Err(SsoError::invalid_request(format!("{name} is required"))),
    }
}

fn rate_limit(app: &App, ip: IpAddr) -> Result<()> {
    app.limits.sso_start(ip).map_err(|limited| {
        app.metrics.rate_limited(limited.limit);
        SsoError::slow_down().because(limited.to_string())
    })
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct RegisterClientRequest {
    client_name: Option<String>,
    client_type: Option<String>,
    scopes: Option<Vec<String>>,
    redirect_uris: Option<Vec<String>>,
    grant_types: Option<Vec<String>>,
    issuer_url: Option<String>,
    entitled_application_arn: Option<String>,
}

/// `RegisterClient`: a public client with an expiring secret.
async fn register_client(State(app): State<Arc<App>>, req: Request) -> Response {
    let (ip, parsed) = read::<RegisterClientRequest>(req).await;
    let mut ev = super::event(&app, REGISTER_ACTION, &ip.to_string());
    let result = async {
        rate_limit(&app, ip)?;
        let r = parsed?;
        let registration = client::Registration {
            client_name: r.client_name,
            client_type: r.client_type,
            scopes: r.scopes,
            redirect_uris: r.redirect_uris,
            grant_types: r.grant_types,
            issuer_url: r.issuer_url,
            entitled_application_arn: r.entitled_application_arn,
        };
        let done = client::register(&app, &registration).await?;
        ev.resource = Some(done.client_id.clone());
        ev.reason = Some(format!(
            "registered client {:?} with grants {} and scopes {}",
            done.record.name,
            done.record.grant_types.join(" "),
            done.record.scopes.join(" ")
        ));
        Ok(super::ok_json(json!({
            "clientId": done.client_id,
            "clientSecret": done.client_secret,
            "clientIdIssuedAt": done.issued_at,
            "clientSecretExpiresAt": done.expires_at,
            "authorizationEndpoint": public(&app.config, AUTHORIZE_PATH),
            "tokenEndpoint": public(&app.config, "/token"),
        })))
    }
    .await;
    super::finish(&app, ev, result, true)
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct StartDeviceAuthorizationRequest {
    client_id: Option<String>,
    client_secret: Option<String>,
    start_url: Option<String>,
}

/// `StartDeviceAuthorization`: a device code and its user code for the person to approve.
async fn start_device_authorization(State(app): State<Arc<App>>, req: Request) -> Response {
    let (ip, parsed) = read::<StartDeviceAuthorizationRequest>(req).await;
    let mut ev = super::event(&app, DEVICE_ACTION, &ip.to_string());
    let result = async {
        let r = parsed?;
        let client_id = required(&r.client_id, "clientId")?;
        ev.resource = Some(client_id.to_string());
        let secret = required(&r.client_secret, "clientSecret")?;
        let start_url = required(&r.start_url, "startUrl")?;
        rate_limit(&app, ip)?;
        let c = client::authenticate(&app, client_id, secret).await?;
        if !c.allows(DEVICE_GRANT) {
            return Err(SsoError::unauthorized_client(
                "Client is not authorized for the device code grant",
            )
            .because(format!(
                "client {client_id} did not register {DEVICE_GRANT}"
            )));
        }
        if !super::is_our_start_url(&app.config, start_url) {
            return Err(SsoError::invalid_request("Invalid startUrl")
                .because(format!("startUrl {start_url:?} is not this rolegate's")));
        }
        let started = device::start(&app, client_id, start_url, c.scopes.clone()).await?;
        let uri = public(&app.config, DEVICE_PATH);
        let complete = format!(
            "{uri}?{}",
            form_urlencoded::Serializer::new(String::new())
                .append_pair("user_code", &started.user_code)
                .finish()
        );
        ev.reason = Some(format!(
            "device code with user code {} for client {:?}",
            started.user_code, c.name
        ));
        Ok(super::ok_json(json!({
            "deviceCode": started.device_code,
            "userCode": started.user_code,
            "verificationUri": uri,
            "verificationUriComplete": complete,
            "expiresIn": started.expires_in,
            "interval": started.interval,
        })))
    }
    .await;
    super::finish(&app, ev, result, true)
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct CreateTokenRequest {
    client_id: Option<String>,
    client_secret: Option<String>,
    grant_type: Option<String>,
    device_code: Option<String>,
    code: Option<String>,
    refresh_token: Option<String>,
    scope: Option<Vec<String>>,
    redirect_uri: Option<String>,
    code_verifier: Option<String>,
}

/// The scopes of a sign-in: those it was approved with, narrowed to `asked` when the client asks
/// for some (each of which it must have been approved with).
fn narrow(approved: &[String], asked: &Option<Vec<String>>) -> Result<Vec<String>> {
    match asked.as_deref() {
        None | Some([]) => Ok(approved.to_vec()),
        Some(asked) => {
            for s in asked {
                if !approved.contains(s) {
                    return Err(SsoError::invalid_scope("Invalid scope requested")
                        .because(format!("scope {s:?} was not approved for this client")));
                }
            }
            Ok(asked.to_vec())
        }
    }
}

fn token_response(t: &token::Issued) -> Response {
    super::ok_json(json!({
        "accessToken": t.access_token,
        "tokenType": token::TOKEN_TYPE,
        "expiresIn": t.expires_in,
        "refreshToken": t.refresh_token,
    }))
}

/// `CreateToken`: tokens for an approved device code, an authorization code with its PKCE
/// verifier, or a refresh token (rotated).
async fn create_token(State(app): State<Arc<App>>, req: Request) -> Response {
    let (ip, parsed) = read::<CreateTokenRequest>(req).await;
    let mut ev = super::event(&app, TOKEN_ACTION, &ip.to_string());
    let result = async {
        let r = parsed?;
        let client_id = required(&r.client_id, "clientId")?;
        ev.resource = Some(client_id.to_string());
        let secret = required(&r.client_secret, "clientSecret")?;
        let grant = required(&r.grant_type, "grantType")?;
        let c = client::authenticate(&app, client_id, secret).await?;
        if !client::GRANTS.contains(&grant) {
            return Err(SsoError::unsupported_grant_type("Unsupported grant type")
                .because(format!("unknown grant type {grant:?}")));
        }
        if !c.allows(grant) {
            return Err(SsoError::unauthorized_client(
                "Client is not authorized for this grant type",
            )
            .because(format!("client {client_id} did not register {grant}")));
        }
        match grant {
            DEVICE_GRANT => device_grant(&app, client_id, &r, &mut ev).await,
            CODE_GRANT => code_grant(&app, client_id, &r, &mut ev).await,
            _ => refresh_grant(&app, client_id, &c, &r, &mut ev).await,
        }
    }
    .await;
    if let Err(e) = &result {
        if e.code == SsoCode::AuthorizationPending {
            // The waiting client's polls: answered, not audited one by one.
            return e.clone().into_response();
        }
    }
    super::finish(&app, ev, result, true)
}

fn who(ev: &mut AuditEvent, identity: &crate::authz::gate::SignedInIdentity) {
    ev.provider = Some(identity.provider.clone());
    ev.subject = Some(identity.subject.clone());
    ev.principal = Some(identity.display());
    ev.mfa = Some(identity.mfa_time.is_some());
}

async fn device_grant(
    app: &App,
    client_id: &str,
    r: &CreateTokenRequest,
    ev: &mut AuditEvent,
) -> Result<Response> {
    let device_code = required(&r.device_code, "deviceCode")?;
    let approved = device::poll(app, client_id, device_code).await?;
    who(ev, &approved.identity);
    let scopes = narrow(&approved.record.scopes, &r.scope)?;
    let t = token::start(
        app,
        client_id,
        approved.identity,
        &approved.record.start_url,
        scopes,
        approved.consume,
    )
    .await
    .map_err(|e| {
        if e.code == SsoCode::InvalidGrant {
            SsoError::invalid_grant("Invalid device code provided")
                .because("the device code was used already (a concurrent CreateToken)")
        } else {
            e
        }
    })?;
    ev.reason = Some(format!(
        "device code approved with user code {}; sign-in started",
        device::display_user_code(&approved.record.user_code)
    ));
    Ok(token_response(&t))
}

async fn code_grant(
    app: &App,
    client_id: &str,
    r: &CreateTokenRequest,
    ev: &mut AuditEvent,
) -> Result<Response> {
    let the_code = required(&r.code, "code")?;
    let redirect_uri = required(&r.redirect_uri, "redirectUri")?;
    let verifier = required(&r.code_verifier, "codeVerifier")?;
    let (record, consume) = code::redeem(app, client_id, the_code, redirect_uri, verifier).await?;
    who(ev, &record.identity);
    let scopes = narrow(&record.scopes, &r.scope)?;
    let t = token::start(
        app,
        client_id,
        record.identity,
        &super::start_url(&app.config),
        scopes,
        vec![consume],
    )
    .await
    .map_err(|e| {
        if e.code == SsoCode::InvalidGrant {
            SsoError::invalid_grant("Invalid authorization code provided")
                .because("the authorization code was used already (a concurrent CreateToken)")
        } else {
            e
        }
    })?;
    ev.reason = Some("authorization code with a matching PKCE verifier; sign-in started".into());
    Ok(token_response(&t))
}

async fn refresh_grant(
    app: &App,
    client_id: &str,
    c: &ClientRecord,
    r: &CreateTokenRequest,
    ev: &mut AuditEvent,
) -> Result<Response> {
    let refresh_token = required(&r.refresh_token, "refreshToken")?;
    narrow(&c.scopes, &r.scope)?;
    let t = token::refresh(app, client_id, refresh_token).await?;
    ev.reason = Some("refresh token used once and rotated".into());
    Ok(token_response(&t))
}
