//! AWS Signature Version 4 verification on the server side: parsing the `Authorization` header or the
//! presigned query parameters, the canonical request, the string to sign, key derivation and the
//! constant-time signature comparison, plus the scope, clock-skew and expiry rules.
//!
//! The module works on plain request parts ([`SignedRequest`]). It must not know axum, the stores, the
//! STS actions or how a secret is found: callers [`parse_authorization`], look up the secret of
//! [`Authorization::access_key_id`] (for temporary credentials, inside the sealed security token), then
//! [`verify`]. For an unknown access key callers still call [`verify`], with a random secret, so that
//! the work done does not reveal whether the key exists.
//!
//! In the header form SigV4 does not sign the access key id itself: a request is bound to a key only
//! through the secret looked up for exactly [`Authorization::access_key_id`]. Callers holding a
//! session token must likewise check that the token belongs to that access key.
//!
//! Canonicalisation follows AWS's rules, chosen by the service the credential scope names
//! ([`PathRule::for_service`]): for every service but S3 the path is normalised and URI-encoded a
//! second time; for S3 it is taken exactly as sent. The payload is always hashed.

mod cache;
mod canonical;
mod error;
mod parse;

#[cfg(test)]
mod tests;

use std::borrow::Cow;
use std::fmt;

use chrono::{DateTime, Duration, Utc};
use subtle::ConstantTimeEq;

pub use cache::{SigningKeyCache, SIGNING_KEY_CACHE};
use canonical::signing_key;
pub use canonical::{canonical_request, sha256_hex, string_to_sign, PathRule, S3_SIGNING_NAMES};
pub use error::{Result, ScopeField, SigV4Error, MAX_NAMED_HEADERS};
pub use parse::parse_authorization;

/// The only signing algorithm accepted.
pub const ALGORITHM: &str = "AWS4-HMAC-SHA256";
/// The credential scope terminator.
pub const TERMINATOR: &str = "aws4_request";
/// The `x-amz-content-sha256` value that waives payload signing (only with
/// [`VerifyOptions::allow_unsigned_payload`]).
pub const UNSIGNED_PAYLOAD: &str = "UNSIGNED-PAYLOAD";
/// The largest `X-Amz-Expires` AWS accepts: seven days.
pub const MAX_EXPIRES_SECONDS: u32 = 604_800;

/// A request as received, before any decoding.
///
/// HTTP/2 requests carry no `Host` header: callers must insert `host` from the URI authority before
/// verification, since the host is always signed.
#[derive(Clone, Copy)]
pub struct SignedRequest<'a> {
    /// The method, e.g. `GET`.
    pub method: &'a str,
    /// The raw path exactly as on the wire (percent-encoded), without the query.
    pub path: &'a str,
    /// The raw query string without `?`, possibly empty.
    pub query: &'a str,
    /// All request headers.
    pub headers: &'a http::HeaderMap,
    /// The whole body.
    pub body: &'a [u8],
    /// The lowercase hex SHA-256 of the whole body, when the caller hashed it already (a service
    /// that streamed a large upload); `body` is then not read.
    pub body_sha256: Option<&'a str>,
}

impl fmt::Debug for SignedRequest<'_> {
    /// Header values, the query and the body may carry a security token: only names and sizes.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SignedRequest")
            .field("method", &self.method)
            .field("path", &self.path)
            .field("query_len", &self.query.len())
            .field("header_names", &self.headers.keys().collect::<Vec<_>>())
            .field("body_len", &self.body.len())
            .finish()
    }
}

/// Where the signature travels.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AuthForm {
    /// An `Authorization: AWS4-HMAC-SHA256 …` header.
    Header,
    /// `X-Amz-*` query parameters (a presigned URL).
    Presigned,
}

/// What the request claims about its signer, parsed without any secret. The header form borrows
/// every part from the request (nothing is copied on the hot path); the presigned form owns what it
/// had to percent-decode.
#[derive(Clone, PartialEq, Eq)]
pub struct Authorization<'a> {
    /// Header or presigned form.
    pub form: AuthForm,
    /// The access key id of the credential scope.
    pub access_key_id: Cow<'a, str>,
    /// `YYYYMMDD` as in the credential scope.
    pub scope_date: Cow<'a, str>,
    /// The region of the credential scope.
    pub region: Cow<'a, str>,
    /// The service of the credential scope.
    pub service: Cow<'a, str>,
    /// Lowercase header names, strictly ascending.
    pub signed_headers: Vec<Cow<'a, str>>,
    /// 64 lowercase hex digits.
    pub signature: Cow<'a, str>,
    /// `X-Amz-Date` (header or query), or the `Date` header.
    pub request_time: DateTime<Utc>,
    /// Presigned only: `X-Amz-Expires`, 1..=604800.
    pub expires_seconds: Option<u32>,
    /// `X-Amz-Security-Token` from the header or the query.
    pub security_token: Option<Cow<'a, str>>,
}

impl fmt::Debug for Authorization<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Authorization")
            .field("form", &self.form)
            .field("access_key_id", &self.access_key_id)
            .field("scope_date", &self.scope_date)
            .field("region", &self.region)
            .field("service", &self.service)
            .field("signed_headers", &self.signed_headers)
            .field("signature", &self.signature)
            .field("request_time", &self.request_time)
            .field("expires_seconds", &self.expires_seconds)
            .field(
                "security_token",
                &self.security_token.as_ref().map(|_| "***"),
            )
            .finish()
    }
}

/// What a service accepts.
#[derive(Debug, Clone, Copy)]
pub struct VerifyOptions<'a> {
    /// The service name every credential scope must carry, e.g. `sts`.
    pub service: &'a str,
    /// Allowed regions; an empty slice accepts any well-formed region.
    pub regions: &'a [String],
    /// The largest accepted distance between the request time and now (15 minutes for STS).
    pub max_skew: Duration,
    /// Whether `x-amz-content-sha256: UNSIGNED-PAYLOAD` is accepted (never for STS).
    pub allow_unsigned_payload: bool,
}

/// Verifies the signature of `req` with the secret of `auth.access_key_id`, and the scope, clock-skew
/// and expiry rules.
///
/// The whole computation (canonical request, key derivation, signature) runs whatever the outcome of
/// the other checks, so that the time taken does not tell which check failed nor whether the secret
/// was real. When several checks fail, the error reported is the first of: unsigned required header,
/// scope, time, payload hash, signature.
pub fn verify(
    req: &SignedRequest,
    auth: &Authorization,
    secret_access_key: &str,
    now: DateTime<Utc>,
    opts: &VerifyOptions,
) -> Result<()> {
    let key = derive_signing_key(
        secret_access_key,
        &auth.scope_date,
        &auth.region,
        &auth.service,
    );
    verify_with_key(req, auth, &key, now, opts)
}

/// The SigV4 signing key (`kSigning`) of a secret for one date, region and service, ready to sign:
/// what [`verify_with_key`] takes, so that a caller may keep it for the day instead of deriving it
/// anew (four HMACs and a key schedule) for every request.
#[derive(Clone)]
pub struct SigningKey(aws_lc_rs::hmac::Key);

impl fmt::Debug for SigningKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("SigningKey(***)")
    }
}

/// The [`SigningKey`] of `secret` for one scope.
pub fn derive_signing_key(secret: &str, date: &str, region: &str, service: &str) -> SigningKey {
    SigningKey(aws_lc_rs::hmac::Key::new(
        aws_lc_rs::hmac::HMAC_SHA256,
        &signing_key(secret, date, region, service),
    ))
}

/// [`verify`] with the signing key of the authorization's scope already derived.
pub fn verify_with_key(
    req: &SignedRequest,
    auth: &Authorization,
    key: &SigningKey,
    now: DateTime<Utc>,
    opts: &VerifyOptions,
) -> Result<()> {
    let shape = parse::check_signed_header_requirements(req, auth);
    let scope = check_scope(auth, opts);
    let time = check_time(auth, now, opts);

    let body_hash = canonical::body_hash(req);
    let (payload_line, payload) = payload_hash(req, auth, &body_hash, opts);

    let creq = canonical::canonical_request_with_payload(req, auth, payload_line);
    let sts = string_to_sign(auth, &creq);
    let computed = aws_lc_rs::hmac::sign(&key.0, &sts);

    let mut provided = [0u8; 32];
    let well_formed = auth.signature.len() == 64
        && auth
            .signature
            .bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
        && hex::decode_to_slice(auth.signature.as_bytes(), &mut provided).is_ok();
    // The comparison is constant-time: a timing difference would let a client find a valid
    // signature byte by byte.
    let matches: bool = computed.as_ref().ct_eq(&provided).into();

    shape?;
    scope?;
    time?;
    payload?;
    if !(well_formed && matches) {
        return Err(SigV4Error::SignatureMismatch);
    }
    Ok(())
}

/// The hashed-payload line of the canonical request, and whether the request may use it.
///
/// A present `x-amz-content-sha256` is what signers put in the canonical request; it must describe the
/// body actually received, or a body swapped after signing would pass.
///
/// A presigned S3 URL without the header signs no payload: S3's signers put `UNSIGNED-PAYLOAD` in its
/// canonical request, accepted only with [`VerifyOptions::allow_unsigned_payload`].
fn payload_hash<'a>(
    req: &'a SignedRequest,
    auth: &Authorization,
    body_hash: &'a str,
    opts: &VerifyOptions,
) -> (&'a [u8], Result<()>) {
    let mut claimed = req.headers.get_all(canonical::X_AMZ_CONTENT_SHA256).iter();
    let Some(first) = claimed.next() else {
        if canonical::signs_no_payload(auth) {
            let result = if opts.allow_unsigned_payload {
                Ok(())
            } else {
                Err(SigV4Error::PayloadHashMismatch {
                    claimed: UNSIGNED_PAYLOAD.to_owned(),
                })
            };
            return (UNSIGNED_PAYLOAD.as_bytes(), result);
        }
        return (body_hash.as_bytes(), Ok(()));
    };
    let value = first.as_bytes();
    let result = if claimed.next().is_some() {
        Err(SigV4Error::Malformed(
            "x-amz-content-sha256 header given more than once".into(),
        ))
    } else if value == body_hash.as_bytes()
        || (opts.allow_unsigned_payload && value == UNSIGNED_PAYLOAD.as_bytes())
    {
        Ok(())
    } else {
        Err(SigV4Error::PayloadHashMismatch {
            claimed: error::snippet_bytes(value),
        })
    };
    (value, result)
}

fn check_scope(auth: &Authorization, opts: &VerifyOptions) -> Result<()> {
    let request_day = canonical::scope_day(&auth.request_time);
    if auth.scope_date.as_bytes() != request_day {
        return Err(SigV4Error::InvalidScope {
            field: ScopeField::Date,
            detail: format!(
                "scope date {} differs from request day {}",
                error::snippet(&auth.scope_date),
                String::from_utf8_lossy(&request_day)
            ),
        });
    }
    let region_ok = if opts.regions.is_empty() {
        is_well_formed_region(&auth.region)
    } else {
        opts.regions.iter().any(|r| r == &auth.region)
    };
    if !region_ok {
        return Err(SigV4Error::InvalidScope {
            field: ScopeField::Region,
            detail: format!("region {} is not accepted", error::snippet(&auth.region)),
        });
    }
    if auth.service != opts.service {
        return Err(SigV4Error::InvalidScope {
            field: ScopeField::Service,
            detail: format!(
                "service {} where {} is expected",
                error::snippet(&auth.service),
                opts.service
            ),
        });
    }
    Ok(())
}

/// Lowercase letters, digits and inner hyphens, starting with a letter, at most 64 characters
/// (`us-east-1`, `us-gov-west-1`, `cn-north-1`).
fn is_well_formed_region(region: &str) -> bool {
    let bytes = region.as_bytes();
    !bytes.is_empty()
        && bytes.len() <= 64
        && bytes[0].is_ascii_lowercase()
        && !region.ends_with('-')
        && bytes
            .iter()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || *b == b'-')
}

fn check_time(auth: &Authorization, now: DateTime<Utc>, opts: &VerifyOptions) -> Result<()> {
    let ahead = auth.request_time - now;
    let too_skewed = match auth.form {
        AuthForm::Header => ahead > opts.max_skew || -ahead > opts.max_skew,
        // A presigned URL is meant to be used later, until it expires; only a date in the future
        // beyond the skew is suspicious.
        AuthForm::Presigned => ahead > opts.max_skew,
    };
    if too_skewed {
        return Err(SigV4Error::RequestTimeTooSkewed {
            request_time: auth.request_time,
            now,
            max_skew_seconds: opts.max_skew.num_seconds(),
        });
    }
    match (auth.form, auth.expires_seconds) {
        (AuthForm::Header, _) => Ok(()),
        (AuthForm::Presigned, Some(expires)) if (1..=MAX_EXPIRES_SECONDS).contains(&expires) => {
            let expired_at = auth.request_time + Duration::seconds(i64::from(expires));
            if now > expired_at {
                Err(SigV4Error::Expired { expired_at, now })
            } else {
                Ok(())
            }
        }
        (AuthForm::Presigned, _) => Err(SigV4Error::Malformed(
            "presigned request without a valid X-Amz-Expires".into(),
        )),
    }
}
