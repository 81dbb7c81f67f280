//! `POST /v1/authorize`: the authorization API for downstream services (see `authz::api`). Each
//! configured service presents its own bearer token; each call is audited.

use crate::app::App;
use crate::audit::{AuditEvent, Outcome};
use crate::authz::api::{self, AuthorizeInput};
use crate::config::Service;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::{Json, Router};
use serde_json::json;
use std::sync::Arc;
use subtle::ConstantTimeEq;

/// The path of the authorization API.
pub const AUTHORIZE_PATH: &str = "/v1/authorize";

pub fn routes() -> Router<Arc<App>> {
    Router::new().route(AUTHORIZE_PATH, post(authorize))
}

fn error(status: StatusCode, code: &str, message: &str, request_id: &str) -> Response {
    (
        status,
        [("x-amzn-requestid", request_id.to_string())],
        Json(json!({"error": {"code": code, "message": message}, "request_id": request_id})),
    )
        .into_response()
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
        ev.outcome(Outcome::Deny);
        ev.error_code = Some("UnrecognizedClient".into());
        ev.reason = Some("no configured service presents this bearer token".into());
        app.audit.record(ev);
        return error(
            StatusCode::UNAUTHORIZED,
            "UnrecognizedClient",
            "a configured service's bearer token is required",
            &request_id,
        );
    };
    let input: AuthorizeInput = match serde_json::from_slice(&body) {
        Ok(i) => i,
        Err(e) => {
            let message = format!("the body is not a valid authorization request: {e}");
            ev.service = Some(service.name.clone());
            ev.outcome(Outcome::Deny);
            ev.error_code = Some("InvalidInput".into());
            ev.reason = Some(message.clone());
            app.audit.record(ev);
            return error(
                StatusCode::BAD_REQUEST,
                "InvalidInput",
                &message,
                &request_id,
            );
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
            ev.outcome(if e.status >= 500 {
                Outcome::Error
            } else {
                Outcome::Deny
            });
            ev.error_code = Some(e.code.clone());
            ev.reason = Some(e.reason.clone());
            let status = StatusCode::from_u16(e.status).unwrap_or(StatusCode::BAD_REQUEST);
            error(status, e.code.as_str(), &e.message, &request_id)
        }
    };
    app.audit.record(ev);
    response
}
