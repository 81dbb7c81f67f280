//! `QueryError`: every refusal the Query API edge gives (STS and IAM alike), with its AWS code,
//! HTTP status and a coarse client message, plus a precise reason that goes only to the audit log.
//! The service that answers names the XML namespace of the `ErrorResponse`
//! ([`QueryError::response`]).

use super::code::AwsCode;
use super::xml::XmlWriter;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};

/// A Query API error as sent on the wire, plus the reason kept for the audit log.
#[derive(Debug, Clone)]
pub struct QueryError {
    /// AWS error code, e.g. `InvalidIdentityToken`.
    pub code: AwsCode,
    /// The message the client sees.
    pub message: String,
    /// The precise reason, for the audit and debug logs only.
    pub reason: String,
    /// Filled in when the response is built.
    pub request_id: String,
}

impl QueryError {
    /// An error with `code` whose message is also its reason.
    pub fn new(code: AwsCode, message: impl Into<String>) -> Self {
        let message = message.into();
        Self {
            code,
            reason: message.clone(),
            message,
            request_id: String::new(),
        }
    }

    /// Replaces the audit-only reason.
    pub fn because(mut self, reason: impl Into<String>) -> Self {
        self.reason = reason.into();
        self
    }

    /// HTTP status per AWS ([`AwsCode::status`]).
    pub fn status(&self) -> StatusCode {
        self.code.status()
    }

    /// `Sender` for client faults, `Receiver` for ours.
    pub fn fault_type(&self) -> &'static str {
        if self.status().is_server_error() {
            "Receiver"
        } else {
            "Sender"
        }
    }

    /// `ValidationError` in AWS's wording for a constraint on a member.
    pub fn validation(value: &str, member: &str, constraint: &str) -> Self {
        let shown: String = value.chars().take(64).collect();
        Self::new(
            AwsCode::ValidationError,
            format!("1 validation error detected: Value '{shown}' at '{member}' failed to satisfy constraint: {constraint}"),
        )
    }

    /// `ValidationError` for a missing required member.
    pub fn missing(member: &str) -> Self {
        Self::new(
            AwsCode::ValidationError,
            format!("1 validation error detected: Value null at '{member}' failed to satisfy constraint: Member must not be null"),
        )
    }

    /// `ValidationError` with a free message.
    pub fn validation_msg(message: impl Into<String>) -> Self {
        Self::new(AwsCode::ValidationError, message)
    }
    /// `InvalidParameterValue`.
    pub fn invalid_parameter(message: impl Into<String>) -> Self {
        Self::new(AwsCode::InvalidParameterValue, message)
    }
    /// `InvalidAction`.
    pub fn invalid_action(message: impl Into<String>) -> Self {
        Self::new(AwsCode::InvalidAction, message)
    }
    /// `MalformedPolicyDocument`.
    pub fn malformed_policy(message: impl Into<String>) -> Self {
        Self::new(AwsCode::MalformedPolicyDocument, message)
    }
    /// `PackedPolicyTooLarge`.
    pub fn packed_policy_too_large(percent: u32) -> Self {
        Self::new(
            AwsCode::PackedPolicyTooLarge,
            format!("Packed size of the session policy and session tags exceeds the limit ({percent}% of the allowed size)"),
        )
    }
    /// `InvalidIdentityToken` with a coarse message; the reason goes to the audit log.
    pub fn invalid_identity_token(reason: impl Into<String>) -> Self {
        Self::new(AwsCode::InvalidIdentityToken, "The web identity token that was passed could not be validated. Verify the token and try again.")
            .because(reason)
    }
    /// `InvalidIdentityToken` whose message may be shown as is.
    pub fn invalid_identity_token_msg(message: impl Into<String>) -> Self {
        Self::new(AwsCode::InvalidIdentityToken, message)
    }
    /// `ExpiredTokenException` (an expired web identity token).
    pub fn expired_identity_token(reason: impl Into<String>) -> Self {
        Self::new(
            AwsCode::ExpiredTokenException,
            "Token expired: the web identity token has expired",
        )
        .because(reason)
    }
    /// `IDPCommunicationError` (SDKs retry it).
    pub fn idp_communication(reason: impl Into<String>) -> Self {
        Self::new(
            AwsCode::IdpCommunicationError,
            "The identity provider could not be reached to validate the token. Try again.",
        )
        .because(reason)
    }
    /// `AccessDenied`.
    pub fn access_denied(message: impl Into<String>) -> Self {
        Self::new(AwsCode::AccessDenied, message)
    }
    /// `InvalidClientTokenId`.
    pub fn invalid_client_token(reason: impl Into<String>) -> Self {
        Self::new(
            AwsCode::InvalidClientTokenId,
            "The security token included in the request is invalid.",
        )
        .because(reason)
    }
    /// `ExpiredToken` (temporary credentials past their expiry or revoked).
    pub fn expired_token(message: &str, reason: impl Into<String>) -> Self {
        Self::new(AwsCode::ExpiredToken, message).because(reason)
    }
    /// A SigV4 failure with its own AWS code.
    pub fn signature(code: AwsCode, message: String, reason: String) -> Self {
        Self::new(code, message).because(reason)
    }
    /// `InvalidAuthorizationMessageException`.
    pub fn invalid_authorization_message(reason: impl Into<String>) -> Self {
        Self::new(
            AwsCode::InvalidAuthorizationMessage,
            "The encoded authorization message is invalid.",
        )
        .because(reason)
    }
    /// `InternalFailure`: the detail stays in the logs.
    pub fn internal(reason: impl Into<String>) -> Self {
        Self::new(
            AwsCode::InternalFailure,
            "The request processing has failed because of an unknown error.",
        )
        .because(reason)
    }
    /// `ServiceUnavailable`.
    pub fn unavailable(reason: impl Into<String>) -> Self {
        Self::new(
            AwsCode::ServiceUnavailable,
            "The service is unavailable. Please try again later.",
        )
        .because(reason)
    }

    /// A failure of the store behind a request: `ServiceUnavailable` (503, which SDKs retry) when
    /// the store cannot be reached or is held elsewhere, `InternalFailure` for anything else (a
    /// record that cannot be read back is not fixed by retrying).
    pub fn store(what: &str, e: &crate::store::StoreError) -> Self {
        use crate::store::StoreError;
        match e {
            StoreError::Unavailable(_) | StoreError::Locked(_) => {
                Self::unavailable(format!("{what}: {e}"))
            }
            _ => Self::internal(format!("{what}: {e}")),
        }
    }

    /// A failure of the local directory: [`QueryError::store`] for its store, `InternalFailure`
    /// otherwise.
    pub fn directory(what: &str, e: &crate::idp::local::DirectoryError) -> Self {
        match e {
            crate::idp::local::DirectoryError::Store(s) => Self::store(what, s),
            crate::idp::local::DirectoryError::Busy(b) => Self::unavailable(format!("{what}: {b}")),
            other => Self::internal(format!("{what}: {other}")),
        }
    }

    /// `Throttling` (HTTP 400, as AWS sends it; SDKs retry it with back-off).
    pub fn throttling(reason: impl Into<String>) -> Self {
        Self::new(AwsCode::Throttling, "Rate exceeded").because(reason)
    }

    /// The `ErrorResponse` document, its root in `namespace` (STS's or IAM's).
    pub fn to_xml(&self, namespace: &str) -> String {
        let mut w = XmlWriter::new();
        w.open_in("ErrorResponse", namespace);
        w.open("Error");
        w.leaf("Type", self.fault_type());
        w.leaf("Code", self.code.as_str());
        w.leaf("Message", &self.message);
        w.close("Error");
        w.leaf("RequestId", &self.request_id);
        w.close("ErrorResponse");
        w.finish()
    }
}

impl QueryError {
    /// The HTTP response: the `ErrorResponse` document in `namespace`, the status of the code, and
    /// the headers of every Query API answer.
    pub fn response(self, namespace: &str) -> Response {
        let mut resp = (self.status(), self.to_xml(namespace)).into_response();
        super::set_xml_headers(resp.headers_mut(), &self.request_id);
        resp
    }
}

crate::audit::edge_error!(QueryError, |e| e.code.as_str());

#[cfg(test)]
mod tests {
    use super::*;
    use crate::idp::local::DirectoryError;
    use crate::store::StoreError;

    #[test]
    fn an_unreachable_store_is_service_unavailable_and_damage_is_an_internal_failure() {
        let cases = [
            (
                DirectoryError::Store(StoreError::Unavailable("connection refused".into())),
                "ServiceUnavailable",
                StatusCode::SERVICE_UNAVAILABLE,
            ),
            (
                DirectoryError::Store(StoreError::Locked("held".into())),
                "ServiceUnavailable",
                StatusCode::SERVICE_UNAVAILABLE,
            ),
            (
                DirectoryError::Store(StoreError::Corrupt("bad record".into())),
                "InternalFailure",
                StatusCode::INTERNAL_SERVER_ERROR,
            ),
            (
                DirectoryError::Internal("rng".into()),
                "InternalFailure",
                StatusCode::INTERNAL_SERVER_ERROR,
            ),
        ];
        for (e, code, status) in cases {
            let s = QueryError::directory("reading access key", &e);
            assert_eq!((s.code.as_str(), s.status()), (code, status), "{e}");
            assert_eq!(s.fault_type(), "Receiver");
            assert!(s.reason.starts_with("reading access key: "), "{}", s.reason);
            assert!(
                !s.message.contains("connection refused"),
                "detail stays in the audit reason"
            );
        }
    }
}
