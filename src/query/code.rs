//! The error codes rolegate answers on the AWS Query API (STS and IAM), each with the HTTP status
//! AWS gives it. Which to use when: a caller's credentials or signature that do not hold are
//! `InvalidClientTokenId`, `SignatureDoesNotMatch`, `IncompleteSignature`, `RequestTimeTooSkewed`,
//! `MissingAuthenticationToken` or `ExpiredToken`; a decision against the caller is `AccessDenied`;
//! a web identity token or SAML assertion that does not hold is `InvalidIdentityToken` (or
//! `ExpiredTokenException`, `IDPCommunicationError`); a malformed request is `ValidationError`,
//! `InvalidParameterValue`, `InvalidAction`, `MalformedPolicyDocument` or `PackedPolicyTooLarge`
//! (IAM: `InvalidInput`, `NoSuchEntity`); our own fault is `InternalFailure`, a store we cannot
//! reach `ServiceUnavailable`, a rate limit `Throttling`.

use axum::http::StatusCode;
use std::fmt;

macro_rules! codes {
    ($($variant:ident = $name:literal => $status:ident,)*) => {
        /// An AWS Query API error code.
        #[derive(Debug, Clone, Copy, PartialEq, Eq)]
        pub enum AwsCode {
            $(
                #[doc = concat!("`", $name, "`")]
                $variant,
            )*
        }

        impl AwsCode {
            /// Every code.
            pub const ALL: &'static [AwsCode] = &[$(AwsCode::$variant,)*];

            /// The code as AWS spells it on the wire.
            pub fn as_str(self) -> &'static str {
                match self {
                    $(AwsCode::$variant => $name,)*
                }
            }

            /// The HTTP status AWS answers it with.
            pub fn status(self) -> StatusCode {
                match self {
                    $(AwsCode::$variant => StatusCode::$status,)*
                }
            }
        }
    };
}

codes! {
    AccessDenied = "AccessDenied" => FORBIDDEN,
    ExpiredToken = "ExpiredToken" => FORBIDDEN,
    ExpiredTokenException = "ExpiredTokenException" => BAD_REQUEST,
    IdpCommunicationError = "IDPCommunicationError" => BAD_REQUEST,
    IdpRejectedClaim = "IDPRejectedClaim" => FORBIDDEN,
    IncompleteSignature = "IncompleteSignature" => BAD_REQUEST,
    InternalFailure = "InternalFailure" => INTERNAL_SERVER_ERROR,
    InvalidAction = "InvalidAction" => BAD_REQUEST,
    InvalidAuthorizationMessage = "InvalidAuthorizationMessageException" => BAD_REQUEST,
    InvalidClientTokenId = "InvalidClientTokenId" => FORBIDDEN,
    InvalidIdentityToken = "InvalidIdentityToken" => BAD_REQUEST,
    InvalidInput = "InvalidInput" => BAD_REQUEST,
    InvalidParameterValue = "InvalidParameterValue" => BAD_REQUEST,
    MalformedPolicyDocument = "MalformedPolicyDocument" => BAD_REQUEST,
    MissingAuthenticationToken = "MissingAuthenticationToken" => FORBIDDEN,
    NoSuchEntity = "NoSuchEntity" => NOT_FOUND,
    PackedPolicyTooLarge = "PackedPolicyTooLarge" => BAD_REQUEST,
    RegionDisabled = "RegionDisabledException" => FORBIDDEN,
    RequestTimeTooSkewed = "RequestTimeTooSkewed" => FORBIDDEN,
    ServiceUnavailable = "ServiceUnavailable" => SERVICE_UNAVAILABLE,
    SignatureDoesNotMatch = "SignatureDoesNotMatch" => FORBIDDEN,
    Throttling = "Throttling" => BAD_REQUEST,
    ValidationError = "ValidationError" => BAD_REQUEST,
}

impl AwsCode {
    /// The code AWS spells `name`, if rolegate answers it.
    pub fn parse(name: &str) -> Option<Self> {
        Self::ALL.iter().copied().find(|c| c.as_str() == name)
    }
}

impl fmt::Display for AwsCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl PartialEq<&str> for AwsCode {
    fn eq(&self, other: &&str) -> bool {
        self.as_str() == *other
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_code_parses_back_and_the_signature_family_is_forbidden() {
        for c in AwsCode::ALL {
            assert_eq!(AwsCode::parse(c.as_str()), Some(*c));
        }
        assert_eq!(AwsCode::parse("NoSuchCode"), None);
        for name in [
            "AccessDenied",
            "SignatureDoesNotMatch",
            "RequestTimeTooSkewed",
            "MissingAuthenticationToken",
        ] {
            assert_eq!(
                AwsCode::parse(name).map(AwsCode::status),
                Some(StatusCode::FORBIDDEN)
            );
        }
        assert_eq!(
            AwsCode::IncompleteSignature.status(),
            StatusCode::BAD_REQUEST
        );
        assert_eq!(AwsCode::NoSuchEntity.status(), StatusCode::NOT_FOUND);
    }
}
