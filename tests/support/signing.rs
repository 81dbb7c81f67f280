//! SigV4 signing of raw STS requests with the `aws-sigv4` crate (the signer inside the AWS SDKs), with
//! knobs for the ways a request can be wrong: another time, region or service, a security token left out
//! of the signature, a presigned URL.
#![allow(dead_code)]

use std::time::{Duration, SystemTime};

use aws_credential_types::Credentials;
use aws_sigv4::http_request::{
    sign, SessionTokenMode, SignableBody, SignableRequest, SignatureLocation, SigningSettings,
};
use aws_sigv4::sign::v4;
use aws_smithy_runtime_api::client::identity::Identity;
use percent_encoding::{utf8_percent_encode, AsciiSet, NON_ALPHANUMERIC};

use super::app::Creds;

/// What a signer does with the session token.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TokenPlacement {
    /// Sent and covered by the signature (what SDKs do).
    Signed,
    /// Sent, but left out of the canonical request.
    Unsigned,
    /// Not sent at all.
    Omitted,
}

/// How to sign.
#[derive(Clone, Debug)]
pub struct SignSpec {
    /// Region of the credential scope.
    pub region: String,
    /// Service of the credential scope.
    pub service: String,
    /// The signing time (`X-Amz-Date`).
    pub time: SystemTime,
    /// The session token's treatment.
    pub token: TokenPlacement,
}

impl Default for SignSpec {
    fn default() -> Self {
        Self {
            region: "us-east-1".to_owned(),
            service: "sts".to_owned(),
            time: SystemTime::now(),
            token: TokenPlacement::Signed,
        }
    }
}

impl SignSpec {
    /// The default spec signed at `time`.
    pub fn at(time: SystemTime) -> Self {
        Self {
            time,
            ..Self::default()
        }
    }
}

fn identity(creds: &Creds, spec: &SignSpec) -> Identity {
    let token = match spec.token {
        TokenPlacement::Omitted => None,
        _ => Some(creds.session_token.clone()),
    };
    Credentials::new(
        creds.access_key_id.clone(),
        creds.secret_access_key.clone(),
        token,
        None,
        "rolegate-tests",
    )
    .into()
}

fn settings(spec: &SignSpec) -> SigningSettings {
    let mut settings = SigningSettings::default();
    if spec.token == TokenPlacement::Unsigned {
        settings.session_token_mode = SessionTokenMode::Exclude;
    }
    settings
}

/// Headers (name, value) that sign `POST {url}/` with a form `body` for `host`.
pub fn sign_post(
    url: &str,
    host: &str,
    body: &str,
    creds: &Creds,
    spec: &SignSpec,
) -> Vec<(String, String)> {
    let identity = identity(creds, spec);
    let params = v4::SigningParams::builder()
        .identity(&identity)
        .region(&spec.region)
        .name(&spec.service)
        .time(spec.time)
        .settings(settings(spec))
        .build()
        .unwrap_or_else(|e| panic!("signing parameters: {e}"))
        .into();
    let headers = [
        ("host", host),
        ("content-type", "application/x-www-form-urlencoded"),
    ];
    let request = SignableRequest::new(
        "POST",
        format!("{url}/"),
        headers.into_iter(),
        SignableBody::Bytes(body.as_bytes()),
    )
    .unwrap_or_else(|e| panic!("signable request: {e}"));
    let (instructions, _signature) = sign(request, &params)
        .unwrap_or_else(|e| panic!("signing failed: {e}"))
        .into_parts();
    instructions
        .headers()
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .collect()
}

/// Characters SigV4 leaves unencoded: `A-Z a-z 0-9 - _ . ~`.
const UNRESERVED: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'_')
    .remove(b'.')
    .remove(b'~');

/// Percent-encodes a query component the SigV4 way.
pub fn uri_encode(s: &str) -> String {
    utf8_percent_encode(s, UNRESERVED).to_string()
}

/// A presigned `GET {url}/?{query}&X-Amz-…` valid for `expires` from `spec.time`.
pub fn presign_get(
    url: &str,
    host: &str,
    query: &str,
    creds: &Creds,
    spec: &SignSpec,
    expires: Duration,
) -> String {
    let identity = identity(creds, spec);
    let mut settings = settings(spec);
    settings.signature_location = SignatureLocation::QueryParams;
    settings.expires_in = Some(expires);
    let params = v4::SigningParams::builder()
        .identity(&identity)
        .region(&spec.region)
        .name(&spec.service)
        .time(spec.time)
        .settings(settings)
        .build()
        .unwrap_or_else(|e| panic!("signing parameters: {e}"))
        .into();
    let base = format!("{url}/?{query}");
    let request = SignableRequest::new(
        "GET",
        base.clone(),
        [("host", host)].into_iter(),
        SignableBody::Bytes(b""),
    )
    .unwrap_or_else(|e| panic!("signable request: {e}"));
    let (instructions, _signature) = sign(request, &params)
        .unwrap_or_else(|e| panic!("signing failed: {e}"))
        .into_parts();
    let mut signed = base;
    for (name, value) in instructions.params() {
        signed.push('&');
        signed.push_str(&uri_encode(name));
        signed.push('=');
        signed.push_str(&uri_encode(value));
    }
    signed
}
