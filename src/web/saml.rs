//! The SAML service provider's HTTP edge: SP metadata (`GET /saml/metadata`), SP-initiated login
//! (`GET /saml/<provider>/login` → AuthnRequest over HTTP-Redirect) and the assertion consumer
//! service (`POST /saml/acs`, HTTP-POST).
//!
//! The pending login is bound to the browser: the request ID, RelayState (128 random bits),
//! provider and expiry are sealed with the session-token keys into a cookie (`__Host-` over TLS),
//! so that only this browser can present them; the ACS accepts a Response only if its signed
//! `InResponseTo` is that ID and the RelayState matches, and consumes the ID in the store's replay
//! cache, so that it answers once, on any replica. The verification itself is `idp::saml`'s.

use crate::app::App;
use crate::audit::{AuditEvent, Outcome};
use crate::idp::saml::{self, metadata, request::AuthnRequest, SamlError, SamlIdentity, Use};
use axum::extract::{Path, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Form, Json, Router};
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use std::sync::Arc;

/// Sealing purpose of pending-login cookies.
const PENDING_PURPOSE: &[u8] = b"rolegate saml pending login v1";
/// Replay-cache namespace of consumed AuthnRequest IDs.
pub const REQUEST_NAMESPACE: &str = "saml-request";
/// The cookie over TLS.
pub const COOKIE_SECURE: &str = "__Host-rolegate-saml";
/// The cookie on a loopback http URL (browsers refuse `__Host-` without `Secure`).
pub const COOKIE_PLAIN: &str = "rolegate-saml";
/// Largest ACS form body.
const ACS_BODY_LIMIT: usize = 160 * 1024;

/// The SAML routes.
pub fn routes() -> Router<Arc<App>> {
    Router::new()
        .route("/saml/metadata", get(sp_metadata))
        .route("/saml/{provider}/login", get(login))
        .route(
            "/saml/acs",
            post(acs).layer(axum::extract::DefaultBodyLimit::max(ACS_BODY_LIMIT)),
        )
}

#[derive(Debug, Serialize, Deserialize)]
struct Pending {
    /// AuthnRequest ID.
    id: String,
    /// Provider name.
    p: String,
    /// RelayState.
    r: String,
    /// Expiry (epoch seconds).
    e: i64,
}

fn secure(app: &App) -> bool {
    app.config.public_url.scheme() == "https"
}

fn cookie_name(app: &App) -> &'static str {
    if secure(app) {
        COOKIE_SECURE
    } else {
        COOKIE_PLAIN
    }
}

fn set_cookie(app: &App, value: &str, max_age: i64) -> Option<HeaderValue> {
    // The IdP posts back cross-site: over TLS the cookie must be SameSite=None to come along.
    let attrs = if secure(app) {
        "Path=/; Secure; HttpOnly; SameSite=None"
    } else {
        "Path=/; HttpOnly; SameSite=Lax"
    };
    HeaderValue::from_str(&format!(
        "{}={value}; {attrs}; Max-Age={max_age}",
        cookie_name(app)
    ))
    .ok()
}

fn read_cookie<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|kv| kv.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v)
}

fn random_token(bytes: usize) -> Result<String, crate::credentials::CredentialError> {
    let mut b = vec![0u8; bytes];
    crate::credentials::fill_random(&mut b)?;
    Ok(URL_SAFE_NO_PAD.encode(b))
}

async fn sp_metadata(State(app): State<Arc<App>>) -> Response {
    let s = app.saml.settings();
    let doc = metadata::sp_metadata(&metadata::SpDescription {
        entity_id: &s.entity_id,
        acs_url: &s.acs_url,
        requests_signed: s.signing.is_some(),
        signing_certificates: s
            .signing
            .as_ref()
            .map_or(&[][..], |k| k.certificates_der.as_slice()),
        encryption_certificates: s
            .decryption
            .as_ref()
            .map_or(&[][..], |d| d.certificates_der.as_slice()),
    });
    (
        [(header::CONTENT_TYPE, "application/samlmetadata+xml")],
        doc,
    )
        .into_response()
}

fn error(status: StatusCode, message: &str) -> Response {
    (status, Json(json!({ "error": message }))).into_response()
}

/// Query of `GET /saml/<provider>/login`.
#[derive(Deserialize)]
struct LoginQuery {
    /// `1`: a step-up — the IdP must authenticate afresh (`ForceAuthn`) with one of the
    /// provider's MFA classes (`RequestedAuthnContext`), because a permission set wants recent MFA.
    step_up: Option<String>,
}

async fn login(
    State(app): State<Arc<App>>,
    Path(provider): Path<String>,
    axum::extract::Query(query): axum::extract::Query<LoginQuery>,
) -> Response {
    let mut ev = AuditEvent::new(app.clock.now(), &crate::request::request_id(), "saml:Login");
    ev.provider = Some(provider.chars().take(128).collect());
    let step_up = match query.step_up.as_deref() {
        None => false,
        Some("1") => true,
        Some(other) => {
            ev.outcome(Outcome::Deny);
            ev.reason = Some(format!(
                "step_up must be 1, not {:?}",
                other.chars().take(32).collect::<String>()
            ));
            app.audit.record(ev);
            return error(StatusCode::BAD_REQUEST, "bad request");
        }
    };
    if step_up {
        ev.reason = Some("step-up: ForceAuthn with the provider's MFA classes".into());
    }
    let result = start_login(&app, &provider, step_up);
    let mut response = match result {
        Ok(r) => {
            ev.outcome(Outcome::Allow);
            r
        }
        Err((status, why)) => {
            ev.outcome(if status.is_server_error() {
                Outcome::Error
            } else {
                Outcome::Deny
            });
            ev.reason = Some(why.clone());
            error(
                status,
                if status == StatusCode::NOT_FOUND {
                    "unknown provider"
                } else {
                    "sign-in is unavailable"
                },
            )
        }
    };
    if let Ok(v) = HeaderValue::from_str(&ev.request_id) {
        response.headers_mut().insert("x-request-id", v);
    }
    app.audit.record(ev);
    response
}

fn start_login(app: &App, provider: &str, step_up: bool) -> Result<Response, (StatusCode, String)> {
    let Some(meta) = app.saml.metadata(provider) else {
        return Err((
            StatusCode::NOT_FOUND,
            format!("no saml provider '{provider}'"),
        ));
    };
    let Some(sso) = meta.sso_redirect.as_deref() else {
        return Err((
            StatusCode::SERVICE_UNAVAILABLE,
            format!("provider {provider}'s metadata has no HTTP-Redirect SingleSignOnService"),
        ));
    };
    let internal = |e: String| (StatusCode::INTERNAL_SERVER_ERROR, e);
    // A step-up asks for the provider's MFA classes; an ordinary sign-in asks for nothing.
    let requested_classes = match (step_up, app.saml.provider(provider)) {
        (true, Some(p)) => p.mfa_authn_contexts.clone(),
        _ => Vec::new(),
    };
    let id = format!(
        "_{}",
        hex::encode(
            random_token(16)
                .map_err(|e| internal(e.to_string()))?
                .as_bytes()
        )
    );
    let relay = random_token(16).map_err(|e| internal(e.to_string()))?;
    let s = app.saml.settings();
    let now = app.clock.now();
    let pending = Pending {
        id: id.clone(),
        p: provider.to_string(),
        r: relay.clone(),
        e: now.timestamp() + s.login_timeout_seconds,
    };
    let sealed = app
        .keys
        .seal_bytes(
            PENDING_PURPOSE,
            serde_json::to_string(&pending)
                .map_err(|e| internal(e.to_string()))?
                .as_bytes(),
        )
        .map_err(|e| internal(e.to_string()))?;
    let url = AuthnRequest {
        id: &id,
        issue_instant: now,
        destination: sso,
        issuer: &s.entity_id,
        acs_url: &s.acs_url,
        force_authn: step_up,
        authn_contexts: &requested_classes,
    }
    .redirect_url_signed(
        &relay,
        s.signing.as_ref().map(|k| k.key_pkcs8_der.as_slice()),
    )
    .map_err(|e| internal(e.to_string()))?;
    let mut r = StatusCode::FOUND.into_response();
    let h = r.headers_mut();
    h.insert(
        header::LOCATION,
        HeaderValue::from_str(&url).map_err(|e| internal(e.to_string()))?,
    );
    if let Some(c) = set_cookie(app, &sealed, s.login_timeout_seconds) {
        h.insert(header::SET_COOKIE, c);
    }
    Ok(r)
}

#[derive(Deserialize)]
struct AcsForm {
    #[serde(rename = "SAMLResponse")]
    saml_response: Option<String>,
    #[serde(rename = "RelayState")]
    relay_state: Option<String>,
}

async fn acs(
    State(app): State<Arc<App>>,
    extensions: axum::http::Extensions,
    headers: HeaderMap,
    Form(form): Form<AcsForm>,
) -> Response {
    let mut ev = AuditEvent::new(
        app.clock.now(),
        &crate::request::request_id(),
        "saml:SignIn",
    );
    let result = consume(&app, &headers, &form, &mut ev).await;
    let clear = set_cookie(&app, "", 0);
    // With the portal on, the person lands in a portal session; without it, the ACS answers the
    // sign-in's assignments as JSON.
    if let (Some(_), Ok(identity)) = (&app.config.portal, &result) {
        let signed_in = crate::portal::SignedInIdentity {
            provider: identity.provider.clone(),
            subject: identity.name_id.clone(),
            claims: identity.attributes_json(),
            mfa_time: identity.mfa_time,
            local_groups: Vec::new(),
            origin_user: None,
            signed_in_at: app.clock.now().timestamp(),
        };
        let mut response = crate::portal::sign_in_verified_elsewhere(
            &app,
            signed_in,
            headers,
            extensions
                .get::<axum::extract::ConnectInfo<std::net::SocketAddr>>()
                .map(|c| c.0.ip().to_string())
                .unwrap_or_else(|| "127.0.0.1".into()),
            ev,
        )
        .await;
        if let Some(c) = clear {
            response.headers_mut().append(header::SET_COOKIE, c);
        }
        return response;
    }
    let mut response = match result {
        Ok(identity) => match browser_sign_in_complete(&app, &identity, &mut ev).await {
            Ok(v) => {
                ev.outcome(Outcome::Allow);
                Json(v).into_response()
            }
            Err((status, why)) => {
                ev.outcome(if status.is_server_error() {
                    Outcome::Error
                } else {
                    Outcome::Deny
                });
                ev.reason = Some(why);
                error(status, "sign-in failed")
            }
        },
        Err((status, why)) => {
            ev.outcome(if status.is_server_error() {
                Outcome::Error
            } else {
                Outcome::Deny
            });
            ev.error_code = Some(status.as_u16().to_string());
            ev.reason = Some(why);
            error(status, "sign-in failed")
        }
    };
    if let Some(c) = clear {
        response.headers_mut().insert(header::SET_COOKIE, c);
    }
    if let Ok(v) = HeaderValue::from_str(&ev.request_id) {
        response.headers_mut().insert("x-request-id", v);
    }
    app.audit.record(ev);
    response
}

async fn consume(
    app: &App,
    headers: &HeaderMap,
    form: &AcsForm,
    ev: &mut AuditEvent,
) -> Result<SamlIdentity, (StatusCode, String)> {
    let forbidden = |why: String| (StatusCode::FORBIDDEN, why);
    let bad = |why: String| (StatusCode::BAD_REQUEST, why);
    let Some(response) = form.saml_response.as_deref().filter(|r| !r.is_empty()) else {
        return Err(bad("no SAMLResponse".into()));
    };
    let now = app.clock.now().timestamp();
    let pending: Option<Pending> = match read_cookie(headers, cookie_name(app)) {
        None | Some("") => None,
        Some(c) => {
            let plain = app
                .keys
                .unseal_bytes(PENDING_PURPOSE, c)
                .map_err(|e| forbidden(format!("pending-login cookie does not open: {e}")))?;
            let p: Pending = serde_json::from_slice(&plain)
                .map_err(|e| forbidden(format!("pending-login cookie: {e}")))?;
            if p.e <= now {
                return Err(forbidden(format!("the pending login {} expired", p.id)));
            }
            Some(p)
        }
    };
    // Which provider: the pending login's, or for an IdP-initiated Response the one whose entity
    // id is the Issuer. A Response refused on the way is refused as the verification refuses it
    // (403, the same reason), whether or not it answers a pending login.
    let provider = match &pending {
        Some(p) => p.p.clone(),
        None => {
            let xml = saml::decode(response).map_err(|e| forbidden(e.to_string()))?;
            let shape =
                saml::shape::check(&xml).map_err(|e| forbidden(SamlError::from(e).to_string()))?;
            let issuer = shape
                .response_issuer
                .or(shape.assertion_issuer)
                .unwrap_or_default();
            app.saml
                .names()
                .find(|n| app.saml.metadata(n).is_some_and(|m| m.entity_id == issuer))
                .map(String::from)
                .ok_or_else(|| {
                    forbidden(format!(
                        "unsolicited Response from unknown issuer '{}'",
                        issuer.chars().take(128).collect::<String>()
                    ))
                })?
        }
    };
    ev.provider = Some(provider.clone());
    if let Some(p) = &pending {
        if form.relay_state.as_deref() != Some(p.r.as_str()) {
            return Err(forbidden(
                "RelayState does not match the pending login of this browser".into(),
            ));
        }
    }
    let identity = app
        .saml
        .verify(
            app.store.as_ref(),
            &provider,
            response,
            Use::Browser {
                pending: pending.as_ref().map(|p| p.id.as_str()),
            },
        )
        .await
        .map_err(|e| match e {
            SamlError::Unavailable(r) => (StatusCode::SERVICE_UNAVAILABLE, r),
            SamlError::Replay(r) => forbidden(format!("replay: {r}")),
            other => forbidden(other.to_string()),
        })?;
    ev.subject = Some(identity.name_id.clone());
    if let Some(p) = &pending {
        match app
            .store
            .first_use(REQUEST_NAMESPACE, &p.id, p.e, now)
            .await
        {
            Ok(true) => {}
            Ok(false) => {
                return Err(forbidden(format!(
                    "the AuthnRequest {} was already answered",
                    p.id
                )))
            }
            Err(e) => {
                return Err((
                    StatusCode::SERVICE_UNAVAILABLE,
                    format!("replay cache: {e}"),
                ))
            }
        }
    }
    Ok(identity)
}

/// The end of a browser SAML sign-in: the verified identity as the sign-in shape the permission-set
/// path uses, its assignments evaluated and recorded, answered as JSON (the portal session starts
/// here once it exists).
pub async fn browser_sign_in_complete(
    app: &App,
    identity: &SamlIdentity,
    ev: &mut AuditEvent,
) -> Result<Value, (StatusCode, String)> {
    ev.mfa = Some(identity.mfa_time.is_some());
    let claims = identity.attributes_json();
    let provisioned = crate::authz::gate::provisioned(app, &identity.provider, &identity.name_id)
        .map_err(|e| (StatusCode::FORBIDDEN, format!("mint gate: {e}")))?;
    let evaluation = crate::mapping::evaluate(
        &app.config,
        &crate::mapping::Subject {
            provider: &identity.provider,
            subject: &identity.name_id,
            claims: &claims,
            local_groups: &[],
            provisioned_groups: provisioned.as_deref(),
        },
    )
    .map_err(|e| (StatusCode::INTERNAL_SERVER_ERROR, e.to_string()))?;
    let changes =
        crate::mapping::record_login(app.store.as_ref(), &evaluation, app.clock.now().timestamp())
            .await
            .map_err(|e| {
                ev.reason = Some(format!("login record: {e}"));
                (StatusCode::SERVICE_UNAVAILABLE, e.to_string())
            })?;
    Ok(json!({
        "provider": identity.provider,
        "subject": identity.name_id,
        "subject_type": saml::sub_type(identity.name_id_format.as_deref()),
        "issuer": identity.issuer,
        "mfa": identity.mfa_time.is_some(),
        "authn_context": identity.authn_context,
        "groups": evaluation.groups,
        "assignments": evaluation.assignments,
        "removed_since_last_login": changes.removed,
    }))
}
