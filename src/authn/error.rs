//! Why a signed request is not accepted as coming from a live session. Each edge that takes SigV4
//! requests turns an [`AuthnError`] into its own error: the Query API into a [`QueryError`] with the
//! same code, the authorization API and the admin API into theirs.

use crate::idp::local::DirectoryError;
use crate::query::{AwsCode, QueryError};
use crate::sigv4::SigV4Error;

/// A refused signed request: the code and message the client sees, the reason only the audit log
/// sees.
#[derive(Debug, thiserror::Error)]
pub enum AuthnError {
    /// The signature does not hold or the request is not signed as AWS requires.
    #[error("{0}")]
    Signature(SigV4Error),
    /// The access key or session token is unknown, foreign or inactive, or its user is disabled:
    /// `InvalidClientTokenId`, worded alike for all so that none tells which.
    #[error("{0}")]
    UnknownKey(String),
    /// The session has expired: `ExpiredToken`.
    #[error("{0}")]
    Expired(String),
    /// A revocation covers the session: `ExpiredToken`, saying so.
    #[error("{0}")]
    Revoked(String),
    /// The caller is over its rate limit: `Throttling`.
    #[error("{0}")]
    Throttled(String),
    /// The directory behind a long-term key could not be read.
    #[error("reading access key: {0}")]
    Directory(DirectoryError),
}

impl AuthnError {
    /// The AWS error code the client is answered with.
    pub fn code(&self) -> AwsCode {
        match self {
            // The verifier's codes are Query API codes; one it might add unknown here still refuses.
            Self::Signature(e) => AwsCode::parse(e.aws_code()).unwrap_or(AwsCode::AccessDenied),
            Self::UnknownKey(_) => AwsCode::InvalidClientTokenId,
            Self::Expired(_) | Self::Revoked(_) => AwsCode::ExpiredToken,
            Self::Throttled(_) => AwsCode::Throttling,
            Self::Directory(e) => QueryError::directory("", e).code,
        }
    }

    /// What the client is told (never the reason).
    pub fn message(&self) -> String {
        match self {
            Self::Signature(e) => e.client_message(),
            Self::UnknownKey(_) => "The security token included in the request is invalid.".into(),
            Self::Expired(_) => "The security token included in the request is expired".into(),
            Self::Revoked(_) => {
                "The security token included in the request has been revoked".into()
            }
            Self::Throttled(_) => "Rate exceeded".into(),
            Self::Directory(e) => QueryError::directory("", e).message,
        }
    }

    /// The precise reason, for the audit log only.
    pub fn reason(&self) -> String {
        match self {
            Self::Directory(DirectoryError::Store(s)) => format!("reading access key: {s}"),
            _ => self.to_string(),
        }
    }
}

impl From<AuthnError> for QueryError {
    fn from(e: AuthnError) -> Self {
        QueryError::new(e.code(), e.message()).because(e.reason())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::StoreError;
    use axum::http::StatusCode;

    #[test]
    fn each_refusal_has_its_code_and_keeps_its_reason_from_the_client() {
        let cases = [
            (
                AuthnError::UnknownKey("access key AKIAX is inactive".into()),
                "InvalidClientTokenId",
                StatusCode::FORBIDDEN,
            ),
            (
                AuthnError::Expired("session s1 expired at 5".into()),
                "ExpiredToken",
                StatusCode::FORBIDDEN,
            ),
            (
                AuthnError::Revoked("session s1 was issued before the revocation".into()),
                "ExpiredToken",
                StatusCode::FORBIDDEN,
            ),
            (
                AuthnError::Throttled("rate limit sts_per_principal exceeded".into()),
                "Throttling",
                StatusCode::BAD_REQUEST,
            ),
            (
                AuthnError::Signature(SigV4Error::MissingAuthentication),
                "MissingAuthenticationToken",
                StatusCode::FORBIDDEN,
            ),
            (
                AuthnError::Directory(DirectoryError::Store(StoreError::Unavailable(
                    "connection refused".into(),
                ))),
                "ServiceUnavailable",
                StatusCode::SERVICE_UNAVAILABLE,
            ),
        ];
        for (e, code, status) in cases {
            let reason = e.reason();
            assert_eq!(
                (e.code().as_str(), e.code().status()),
                (code, status),
                "{e}"
            );
            assert!(!e.message().is_empty());
            let q = QueryError::from(e);
            assert_eq!(q.code.as_str(), code);
            assert!(!q.message.contains("AKIAX") && !q.message.contains("s1"));
            assert!(!q.message.contains("connection refused"));
            assert!(q.reason.contains(&reason), "{} / {reason}", q.reason);
        }
    }

    #[test]
    fn a_revoked_session_is_told_apart_from_an_expired_one() {
        let expired = AuthnError::Expired("x".into()).message();
        let revoked = AuthnError::Revoked("x".into()).message();
        assert!(expired.ends_with("is expired"), "{expired}");
        assert!(revoked.ends_with("has been revoked"), "{revoked}");
    }
}
