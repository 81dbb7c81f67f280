//! Why a signed request is refused: a precise detail for the audit log (`Display`) and a coarse,
//! AWS-worded message and code for the client.

use chrono::{DateTime, Utc};

/// Most unsigned header names an [`SigV4Error::UnsignedAmzHeaders`] carries.
pub const MAX_NAMED_HEADERS: usize = 8;

/// Result of this module.
pub type Result<T> = std::result::Result<T, SigV4Error>;

/// The part of the credential scope that is wrong.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ScopeField {
    /// The scope date is not the day of the request time.
    Date,
    /// The region is not accepted.
    Region,
    /// The service is not the verifying service.
    Service,
    /// The terminator is not `aws4_request`.
    Terminator,
}

/// A refused SigV4 request. `Display` gives the detail for the audit log; [`SigV4Error::aws_code`],
/// [`SigV4Error::http_status`] and [`SigV4Error::client_message`] give what the client sees.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SigV4Error {
    /// Neither an `Authorization` header nor presigned query parameters.
    #[error("no Authorization header and no presigned X-Amz-* query parameters")]
    MissingAuthentication,
    /// An `Authorization` header and presigned query parameters at once.
    #[error("both an Authorization header and presigned X-Amz-* query parameters")]
    AmbiguousAuthentication,
    /// An algorithm other than `AWS4-HMAC-SHA256`.
    #[error("unsupported signing algorithm {0}")]
    UnsupportedAlgorithm(String),
    /// The `Authorization` header or the presigned parameters do not parse.
    #[error("malformed authorization: {0}")]
    Malformed(String),
    /// A header that must be signed when present is not among the signed headers.
    #[error("header {0} is required to be signed but is not in SignedHeaders")]
    HeaderNotSigned(&'static str),
    /// `x-amz-*` headers present in the request but not among the signed headers: anyone on the
    /// way could have added or changed them after signing, and a service reading one (`x-amz-acl`,
    /// `x-amz-copy-source`, …) would act on what the signer never asked for.
    #[error(
        "{total} x-amz-* header(s) present but not in SignedHeaders: {}{}",
        .names.join(", "),
        if *.total > .names.len() { ", …" } else { "" }
    )]
    UnsignedAmzHeaders {
        /// At most [`MAX_NAMED_HEADERS`] of them, quoted and truncated.
        names: Vec<String>,
        /// How many there are.
        total: usize,
    },
    /// A wrong credential scope.
    #[error("invalid credential scope ({field:?}): {detail}")]
    InvalidScope {
        /// Which part is wrong.
        field: ScopeField,
        /// What was found.
        detail: String,
    },
    /// The request time is too far from now.
    #[error("request time {request_time} is more than {max_skew_seconds} s away from now ({now})")]
    RequestTimeTooSkewed {
        /// The signed request time.
        request_time: DateTime<Utc>,
        /// The verifier's time.
        now: DateTime<Utc>,
        /// The allowed skew.
        max_skew_seconds: i64,
    },
    /// A presigned request used after `X-Amz-Date + X-Amz-Expires`.
    #[error("presigned request expired at {expired_at} (now {now})")]
    Expired {
        /// When it stopped being valid.
        expired_at: DateTime<Utc>,
        /// The verifier's time.
        now: DateTime<Utc>,
    },
    /// `x-amz-content-sha256` does not describe the body received.
    #[error("x-amz-content-sha256 {claimed} does not match the body")]
    PayloadHashMismatch {
        /// The claimed value, truncated and escaped.
        claimed: String,
    },
    /// The signature is not the one computed with the secret.
    #[error("signature does not match")]
    SignatureMismatch,
}

impl SigV4Error {
    /// The AWS error code.
    pub fn aws_code(&self) -> &'static str {
        match self {
            Self::MissingAuthentication => "MissingAuthenticationToken",
            // An unsigned security token (like an unsigned host or date) is a request-shape error
            // found before any key lookup: every AWS signer signs these headers, so only a tampered
            // or hand-built request lacks the signature. `IncompleteSignature` (400) says the request
            // does not conform to the signing rules, without suggesting a wrong secret and without
            // saying anything about the key or the token.
            Self::AmbiguousAuthentication
            | Self::UnsupportedAlgorithm(_)
            | Self::Malformed(_)
            | Self::HeaderNotSigned(_) => "IncompleteSignature",
            Self::InvalidScope { .. }
            | Self::PayloadHashMismatch { .. }
            | Self::SignatureMismatch => "SignatureDoesNotMatch",
            Self::RequestTimeTooSkewed { .. } => "RequestTimeTooSkewed",
            // S3 refuses unsigned x-amz-* headers with AccessDenied ("There were headers present in
            // the request which were not signed"); AWS documents no code for the Query API (STS),
            // so every edge answers as S3 does: AccessDenied, which SDKs do not retry as a clock
            // skew and which does not hint at a wrong secret, unlike SignatureDoesNotMatch.
            Self::Expired { .. } | Self::UnsignedAmzHeaders { .. } => "AccessDenied",
        }
    }

    /// The HTTP status AWS uses for [`SigV4Error::aws_code`].
    pub fn http_status(&self) -> u16 {
        match self {
            Self::AmbiguousAuthentication
            | Self::UnsupportedAlgorithm(_)
            | Self::Malformed(_)
            | Self::HeaderNotSigned(_) => 400,
            Self::MissingAuthentication
            | Self::InvalidScope { .. }
            | Self::RequestTimeTooSkewed { .. }
            | Self::Expired { .. }
            | Self::UnsignedAmzHeaders { .. }
            | Self::PayloadHashMismatch { .. }
            | Self::SignatureMismatch => 403,
        }
    }

    /// The coarse message for the client, worded like AWS's.
    pub fn client_message(&self) -> String {
        let message = match self {
            Self::MissingAuthentication => "Request is missing Authentication Token",
            Self::AmbiguousAuthentication => {
                "Only one auth mechanism allowed; only the X-Amz-Algorithm query parameter or the \
                 Authorization header should be specified"
            }
            Self::UnsupportedAlgorithm(_) => {
                "Unsupported AWS 'algorithm': only AWS4-HMAC-SHA256 is accepted"
            }
            Self::Malformed(_) => "The request signature does not conform to AWS standards.",
            Self::HeaderNotSigned(header) => {
                return format!("'{header}' must be a signed header.");
            }
            Self::InvalidScope { field, .. } => match field {
                ScopeField::Date => {
                    "Date in Credential scope does not match YYYYMMDD from ISO-8601 version of \
                     date from HTTP."
                }
                ScopeField::Region => "Credential should be scoped to a valid region.",
                ScopeField::Service => "Credential should be scoped to correct service.",
                ScopeField::Terminator => {
                    "Credential should be scoped with a valid terminator: 'aws4_request'."
                }
            },
            Self::RequestTimeTooSkewed { .. } => {
                "Signature expired: the difference between the request time and the current time \
                 is too large."
            }
            Self::Expired { .. } => "Request has expired",
            Self::UnsignedAmzHeaders { .. } => {
                "There were headers present in the request which were not signed"
            }
            Self::PayloadHashMismatch { .. } | Self::SignatureMismatch => {
                "The request signature we calculated does not match the signature you provided. \
                 Check your AWS Secret Access Key and signing method. Consult the service \
                 documentation for details."
            }
        };
        message.to_owned()
    }
}

/// Untrusted text for a detail string: at most 64 characters, escaped.
pub(super) fn snippet(text: &str) -> String {
    let mut cut: String = text.chars().take(64).collect();
    if cut.len() < text.len() {
        cut.push('…');
    }
    format!("{cut:?}")
}

/// Untrusted bytes for a detail string: at most 64 bytes, escaped.
pub(super) fn snippet_bytes(bytes: &[u8]) -> String {
    let cut = &bytes[..bytes.len().min(64)];
    let mut text = String::from_utf8_lossy(cut).into_owned();
    if cut.len() < bytes.len() {
        text.push('…');
    }
    format!("{text:?}")
}
