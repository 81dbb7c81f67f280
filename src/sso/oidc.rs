//! The SSO-OIDC API (rest-json, unsigned): `POST /client/register` (RegisterClient),
//! `POST /device_authorization` (StartDeviceAuthorization) and `POST /token` (CreateToken with the
//! device-code, authorization-code + PKCE and refresh-token grants).

use crate::app::App;
use axum::Router;
use std::sync::Arc;

/// The SSO-OIDC routes.
pub fn routes() -> Router<Arc<App>> {
    Router::new()
}
