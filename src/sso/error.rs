//! The SSO edge's one error type, [`SsoError`], shaped as each of the two APIs answers it, and the
//! error types both APIs use ([`SsoCode`]).

use axum::http::{HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use std::fmt;

/// The error types of both APIs: each with its wire name (the `x-amzn-ErrorType` header, which the
/// SDKs turn into the exception name), its HTTP status and, for SSO-OIDC, its OAuth `error` value.
macro_rules! codes {
    ($($variant:ident = $name:literal => $status:ident, $oauth:literal,)*) => {
        /// An SSO error type.
        #[derive(Debug, Clone, Copy, PartialEq, Eq)]
        pub enum SsoCode {
            $(
                #[doc = concat!("`", $name, "`")]
                $variant,
            )*
        }

        impl SsoCode {
            /// The type as AWS spells it.
            pub fn as_str(self) -> &'static str {
                match self {
                    $(SsoCode::$variant => $name,)*
                }
            }

            /// The HTTP status it is answered with.
            pub fn status(self) -> StatusCode {
                match self {
                    $(SsoCode::$variant => StatusCode::$status,)*
                }
            }

            /// The OAuth `error` value SSO-OIDC answers it with (empty where only the portal API
            /// answers it).
            pub fn oauth_error(self) -> &'static str {
                match self {
                    $(SsoCode::$variant => $oauth,)*
                }
            }
        }
    };
}

codes! {
    InvalidRequest = "InvalidRequestException" => BAD_REQUEST, "invalid_request",
    InvalidClient = "InvalidClientException" => UNAUTHORIZED, "invalid_client",
    InvalidGrant = "InvalidGrantException" => BAD_REQUEST, "invalid_grant",
    UnsupportedGrantType = "UnsupportedGrantTypeException" => BAD_REQUEST, "unsupported_grant_type",
    UnauthorizedClient = "UnauthorizedClientException" => BAD_REQUEST, "unauthorized_client",
    InvalidScope = "InvalidScopeException" => BAD_REQUEST, "invalid_scope",
    InvalidClientMetadata = "InvalidClientMetadataException" => BAD_REQUEST, "invalid_client_metadata",
    InvalidRedirectUri = "InvalidRedirectUriException" => BAD_REQUEST, "invalid_redirect_uri",
    AuthorizationPending = "AuthorizationPendingException" => BAD_REQUEST, "authorization_pending",
    SlowDown = "SlowDownException" => BAD_REQUEST, "slow_down",
    ExpiredToken = "ExpiredTokenException" => BAD_REQUEST, "expired_token",
    AccessDenied = "AccessDeniedException" => BAD_REQUEST, "access_denied",
    InternalServer = "InternalServerException" => INTERNAL_SERVER_ERROR, "server_error",
    Unauthorized = "UnauthorizedException" => UNAUTHORIZED, "",
    Forbidden = "ForbiddenException" => FORBIDDEN, "",
    ResourceNotFound = "ResourceNotFoundException" => NOT_FOUND, "",
    TooManyRequests = "TooManyRequestsException" => TOO_MANY_REQUESTS, "",
}

impl fmt::Display for SsoCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Which of the two APIs an error belongs to: they shape error bodies differently.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Api {
    /// SSO-OIDC: `{"error": "...", "error_description": "..."}`.
    Oidc,
    /// The portal API: `{"message": "..."}`.
    Portal,
}

/// An error of either API, the SSO edge's one error type: the error type, a coarse message for the
/// client and the precise reason for the audit log.
#[derive(Debug, Clone, thiserror::Error)]
#[error("{code}: {reason}")]
pub struct SsoError {
    /// Which API answers.
    pub api: Api,
    /// The error type: its wire name, HTTP status and OAuth `error` value.
    pub code: SsoCode,
    /// What the client is told.
    pub message: String,
    /// What the audit log records.
    pub reason: String,
}

impl SsoError {
    fn new(api: Api, code: SsoCode, message: impl Into<String>) -> Self {
        let message = message.into();
        Self {
            api,
            code,
            reason: message.clone(),
            message,
        }
    }

    /// The HTTP status.
    pub fn status(&self) -> StatusCode {
        self.code.status()
    }

    /// Replaces the audit reason.
    pub fn because(mut self, reason: impl Into<String>) -> Self {
        self.reason = reason.into();
        self
    }

    /// SSO-OIDC `InvalidRequestException` (400): a missing or malformed parameter.
    pub fn invalid_request(message: impl Into<String>) -> Self {
        Self::new(Api::Oidc, SsoCode::InvalidRequest, message)
    }

    /// SSO-OIDC `InvalidClientException` (401): unknown client, wrong or expired secret.
    pub fn invalid_client(message: impl Into<String>) -> Self {
        Self::new(Api::Oidc, SsoCode::InvalidClient, message)
    }

    /// SSO-OIDC `InvalidGrantException` (400): a code, device code or refresh token that is
    /// unknown, used, or issued to another client.
    pub fn invalid_grant(message: impl Into<String>) -> Self {
        Self::new(Api::Oidc, SsoCode::InvalidGrant, message)
    }

    /// SSO-OIDC `UnsupportedGrantTypeException` (400).
    pub fn unsupported_grant_type(message: impl Into<String>) -> Self {
        Self::new(Api::Oidc, SsoCode::UnsupportedGrantType, message)
    }

    /// SSO-OIDC `UnauthorizedClientException` (400): the client may not use this grant.
    pub fn unauthorized_client(message: impl Into<String>) -> Self {
        Self::new(Api::Oidc, SsoCode::UnauthorizedClient, message)
    }

    /// SSO-OIDC `InvalidScopeException` (400).
    pub fn invalid_scope(message: impl Into<String>) -> Self {
        Self::new(Api::Oidc, SsoCode::InvalidScope, message)
    }

    /// SSO-OIDC `InvalidClientMetadataException` (400): RegisterClient with bad metadata.
    pub fn invalid_client_metadata(message: impl Into<String>) -> Self {
        Self::new(Api::Oidc, SsoCode::InvalidClientMetadata, message)
    }

    /// SSO-OIDC `InvalidRedirectUriException` (400).
    pub fn invalid_redirect_uri(message: impl Into<String>) -> Self {
        Self::new(Api::Oidc, SsoCode::InvalidRedirectUri, message)
    }

    /// SSO-OIDC `AuthorizationPendingException` (400): the person has not approved yet.
    pub fn authorization_pending() -> Self {
        Self::new(
            Api::Oidc,
            SsoCode::AuthorizationPending,
            "Authorization is pending",
        )
    }

    /// SSO-OIDC `SlowDownException` (400): polled sooner than `interval` allows.
    pub fn slow_down() -> Self {
        Self::new(Api::Oidc, SsoCode::SlowDown, "Client is polling too fast")
    }

    /// SSO-OIDC `ExpiredTokenException` (400): the device code (or token) ran out.
    pub fn expired_token(message: impl Into<String>) -> Self {
        Self::new(Api::Oidc, SsoCode::ExpiredToken, message)
    }

    /// SSO-OIDC `AccessDeniedException` (400): the person denied the sign-in.
    pub fn access_denied(message: impl Into<String>) -> Self {
        Self::new(Api::Oidc, SsoCode::AccessDenied, message)
    }

    /// `InternalServerException` (500) of SSO-OIDC, e.g. when the store fails.
    pub fn internal(reason: impl Into<String>) -> Self {
        Self::new(
            Api::Oidc,
            SsoCode::InternalServer,
            "An internal error occurred",
        )
        .because(reason)
    }

    /// Portal API `UnauthorizedException` (401): no, an unknown, an expired or an ended token.
    pub fn unauthorized(reason: impl Into<String>) -> Self {
        Self::new(
            Api::Portal,
            SsoCode::Unauthorized,
            "Session token not found or invalid",
        )
        .because(reason)
    }

    /// Portal API `InvalidRequestException` (400).
    pub fn portal_invalid_request(message: impl Into<String>) -> Self {
        Self::new(Api::Portal, SsoCode::InvalidRequest, message)
    }

    /// Portal API `ForbiddenException` (403): the assignment or its policy does not allow this.
    pub fn forbidden(message: impl Into<String>) -> Self {
        Self::new(Api::Portal, SsoCode::Forbidden, message)
    }

    /// Portal API `ResourceNotFoundException` (404): no such account or role for this person.
    pub fn not_found(message: impl Into<String>) -> Self {
        Self::new(Api::Portal, SsoCode::ResourceNotFound, message)
    }

    /// Portal API `TooManyRequestsException` (429).
    pub fn too_many_requests(reason: impl Into<String>) -> Self {
        Self::new(Api::Portal, SsoCode::TooManyRequests, "Too many requests").because(reason)
    }

    /// The portal API's answer when the store fails (AWS documents no 5xx shape there; the SDKs
    /// retry a 500).
    pub fn portal_internal(reason: impl Into<String>) -> Self {
        Self::new(
            Api::Portal,
            SsoCode::InternalServer,
            "An internal error occurred",
        )
        .because(reason)
    }

    /// The same error answered by the other API (the token helpers serve both).
    pub fn for_api(mut self, api: Api) -> Self {
        self.api = api;
        self
    }

    /// The JSON body.
    pub fn body(&self) -> String {
        match self.api {
            Api::Oidc => serde_json::json!({
                "error": self.code.oauth_error(),
                "error_description": self.message,
            }),
            Api::Portal => serde_json::json!({ "message": self.message }),
        }
        .to_string()
    }
}

impl IntoResponse for SsoError {
    fn into_response(self) -> Response {
        if self.status().is_server_error() {
            tracing::error!(code = self.code.as_str(), reason = %self.reason, "SSO request failed");
        }
        let mut resp = (
            self.status(),
            [("content-type", "application/json")],
            self.body(),
        )
            .into_response();
        resp.headers_mut().insert(
            "x-amzn-errortype",
            HeaderValue::from_static(self.code.as_str()),
        );
        resp
    }
}

crate::audit::edge_error!(SsoError, |e| e.code.as_str());

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn errors_have_the_aws_shapes() {
        let e = SsoError::slow_down();
        assert_eq!(e.status(), StatusCode::BAD_REQUEST);
        let body: serde_json::Value = serde_json::from_str(&e.body()).unwrap();
        assert_eq!(body["error"], "slow_down");
        let resp = e.into_response();
        assert_eq!(resp.headers()["x-amzn-errortype"], "SlowDownException");
        let p = SsoError::unauthorized("token expired");
        assert_eq!(p.status(), StatusCode::UNAUTHORIZED);
        let body: serde_json::Value = serde_json::from_str(&p.body()).unwrap();
        assert!(body.get("error").is_none());
        assert_eq!(body["message"], "Session token not found or invalid");
        assert_eq!(p.reason, "token expired");
    }

    #[test]
    fn every_type_is_an_exception_and_sso_oidc_types_carry_an_oauth_error() {
        let oidc = [
            SsoError::invalid_request("x"),
            SsoError::invalid_client("x"),
            SsoError::invalid_grant("x"),
            SsoError::unsupported_grant_type("x"),
            SsoError::unauthorized_client("x"),
            SsoError::invalid_scope("x"),
            SsoError::invalid_client_metadata("x"),
            SsoError::invalid_redirect_uri("x"),
            SsoError::authorization_pending(),
            SsoError::slow_down(),
            SsoError::expired_token("x"),
            SsoError::access_denied("x"),
            SsoError::internal("x"),
        ];
        for e in &oidc {
            assert!(e.code.as_str().ends_with("Exception"), "{}", e.code);
            assert!(!e.code.oauth_error().is_empty(), "{}", e.code);
            let body: serde_json::Value = serde_json::from_str(&e.body()).unwrap();
            assert_eq!(body["error"], e.code.oauth_error());
        }
        for e in [
            SsoError::unauthorized("x"),
            SsoError::portal_invalid_request("x"),
            SsoError::forbidden("x"),
            SsoError::not_found("x"),
            SsoError::too_many_requests("x"),
            SsoError::portal_internal("x"),
        ] {
            assert!(e.code.as_str().ends_with("Exception"), "{}", e.code);
            let body: serde_json::Value = serde_json::from_str(&e.body()).unwrap();
            assert!(body.get("error").is_none(), "{}", e.code);
        }
        assert_eq!(
            SsoError::internal("x").status(),
            StatusCode::INTERNAL_SERVER_ERROR
        );
        assert_eq!(
            SsoError::invalid_client("x").status(),
            StatusCode::UNAUTHORIZED
        );
        assert_eq!(SsoError::not_found("x").status(), StatusCode::NOT_FOUND);
    }
}
