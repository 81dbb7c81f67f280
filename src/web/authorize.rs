//! `POST /v1/authorize`: the authorization API for downstream services (see `authz::api`). Each
//! configured service presents its own bearer token; each call is audited.

use crate::app::App;
use crate::audit::{AuditEvent, Outcome};
use crate::authz::api::{self, ApiError, AuthorizeInput};
use crate::config::Service;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::{Json, Router};
use std::sync::Arc;
use subtle::ConstantTimeEq;

/// The path of the authorization API.
pub const AUTHORIZE_PATH: &str = "/v1/authorize";

pub fn routes() -> Router<Arc<App>> {
    Router::new().route(AUTHORIZE_PATH, post(authorize))
}

/// The service whose token is presented; every configured token is compared, in constant time.
fn caller<'a>(app: &'a App, headers: &HeaderMap) -> Option<&'a Service> {
    let presented = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .unwrap_or("");
    let mut found = None;
    for s in &app.config.services {
        if bool::from(presented.as_bytes().ct_eq(s.token.expose().as_bytes())) {
            found = Some(s);
        }
    }
    found
}

async fn authorize(State(app): State<Arc<App>>, headers: HeaderMap, body: Bytes) -> Response {
    let request_id = crate::request::request_id();
    let mut ev = AuditEvent::new(app.clock.now(), &request_id, "Authorize");
    let Some(service) = caller(&app, &headers) else {
        let e = ApiError::unrecognized_client();
        ev.outcome(Outcome::Deny);
        ev.refused(&e);
        app.audit.record(ev);
        return e.response(&request_id);
    };
    let input: AuthorizeInput = match serde_json::from_slice(&body) {
        Ok(i) => i,
        Err(e) => {
            let e = ApiError::invalid(format!(
                "the body is not a valid authorization request: {e}"
            ));
            ev.service = Some(service.name.clone());
            ev.outcome(Outcome::Deny);
            ev.refused(&e);
            app.audit.record(ev);
            return e.response(&request_id);
        }
    };
    ev.action = input.action.chars().take(128).collect();
    let result = api::authorize(&app, service, &input, &mut ev).await;
    let response = match result {
        Ok(out) => {
            ev.outcome(if out.allowed {
                Outcome::Allow
            } else {
                Outcome::Deny
            });
            (
                StatusCode::OK,
                [("x-amzn-requestid", request_id.clone())],
                Json(out),
            )
                .into_response()
        }
        Err(e) => {
            ev.outcome(if e.status.is_server_error() {
                Outcome::Error
            } else {
                Outcome::Deny
            });
            ev.refused(&e);
            e.response(&request_id)
        }
    };
    app.audit.record(ev);
    response
}
