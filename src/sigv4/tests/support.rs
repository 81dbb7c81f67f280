//! Requests signed by the aws-sigv4 crate, and small tools to change and re-sign them.

use std::time::{Duration as StdDuration, SystemTime};

use aws_credential_types::Credentials;
use aws_sigv4::http_request::{
    sign, PayloadChecksumKind, SignableBody, SignableRequest, SignatureLocation, SigningSettings,
};
use aws_sigv4::sign::v4;
use aws_smithy_runtime_api::client::identity::Identity;
use chrono::{DateTime, Duration, TimeZone, Utc};
use http::{HeaderMap, HeaderName, HeaderValue};

use super::super::{
    canonical_request, parse_authorization, signing_key, string_to_sign, verify, AuthForm,
    Authorization, Result, SignedRequest, VerifyOptions,
};

pub const AKID: &str = "AKIDEXAMPLE";
pub const SECRET: &str = "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY";
pub const TOKEN: &str = "FwoGZXIvYXdzEBYaDExample+Session/Token==";
pub const HOST: &str = "sts.example.test";
pub const REGION: &str = "us-east-1";
pub const SERVICE: &str = "sts";

/// 2024-05-17T12:34:56Z.
pub fn signed_at() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2024, 5, 17, 12, 34, 56).unwrap()
}

/// A minute after signing.
pub fn soon() -> DateTime<Utc> {
    signed_at() + Duration::minutes(1)
}

pub fn regions() -> Vec<String> {
    vec![REGION.to_owned()]
}

pub fn sts_options(regions: &[String]) -> VerifyOptions<'_> {
    VerifyOptions {
        service: SERVICE,
        regions,
        max_skew: Duration::minutes(15),
        allow_unsigned_payload: false,
    }
}

/// A request as the server receives it.
#[derive(Debug, Clone)]
pub struct OwnedRequest {
    pub method: String,
    pub path: String,
    pub query: String,
    pub headers: HeaderMap,
    pub body: Vec<u8>,
}

impl OwnedRequest {
    pub fn as_signed(&self) -> SignedRequest<'_> {
        SignedRequest {
            method: &self.method,
            path: &self.path,
            query: &self.query,
            headers: &self.headers,
            body: &self.body,
            body_sha256: None,
        }
    }

    /// Parses, then verifies with `secret` at `now` for STS in us-east-1.
    pub fn check_with(&self, secret: &str, now: DateTime<Utc>) -> Result<Authorization<'_>> {
        let req = self.as_signed();
        let auth = parse_authorization(&req)?;
        let regions = regions();
        verify(&req, &auth, secret, now, &sts_options(&regions))?;
        Ok(auth)
    }

    pub fn check(&self) -> Result<Authorization<'_>> {
        self.check_with(SECRET, soon())
    }

    pub fn header(&self, name: &str) -> String {
        self.headers[name].to_str().unwrap().to_owned()
    }

    /// Replaces every value of `name` by `value`.
    pub fn set_header(&mut self, name: &str, value: &str) {
        self.headers.insert(
            HeaderName::from_bytes(name.as_bytes()).unwrap(),
            HeaderValue::from_str(value).unwrap(),
        );
    }

    /// The request with the header `name` removed.
    pub fn without_header(&self, name: &str) -> Self {
        let mut copy = self.clone();
        copy.headers.remove(name);
        copy
    }
}

/// What to sign.
#[derive(Debug, Clone)]
pub struct Spec<'a> {
    pub method: &'a str,
    /// Raw path and query, e.g. `/a%20b?x=1`.
    pub target: &'a str,
    pub headers: Vec<(&'a str, &'a str)>,
    pub body: &'a [u8],
    pub token: Option<&'a str>,
    /// `Some(expiry)` for the presigned form.
    pub presign: Option<StdDuration>,
    pub region: &'a str,
    pub service: &'a str,
    pub time: DateTime<Utc>,
    /// Sends `x-amz-content-sha256` (with the body hash, or UNSIGNED-PAYLOAD if `unsigned`).
    pub content_sha256: bool,
    pub unsigned: bool,
}

impl<'a> Spec<'a> {
    pub fn get(target: &'a str) -> Self {
        Spec {
            method: "GET",
            target,
            headers: Vec::new(),
            body: b"",
            token: None,
            presign: None,
            region: REGION,
            service: SERVICE,
            time: signed_at(),
            content_sha256: false,
            unsigned: false,
        }
    }

    pub fn post(target: &'a str, body: &'a [u8]) -> Self {
        Spec {
            method: "POST",
            headers: vec![(
                "content-type",
                "application/x-www-form-urlencoded; charset=utf-8",
            )],
            body,
            ..Spec::get(target)
        }
    }

    pub fn token(self, token: &'a str) -> Self {
        Spec {
            token: Some(token),
            ..self
        }
    }

    pub fn presigned(self, seconds: u64) -> Self {
        Spec {
            presign: Some(StdDuration::from_secs(seconds)),
            ..self
        }
    }

    pub fn header(mut self, name: &'a str, value: &'a str) -> Self {
        self.headers.push((name, value));
        self
    }

    /// Signs with the aws-sigv4 crate and returns the request as it goes on the wire.
    pub fn sign(&self) -> OwnedRequest {
        self.sign_with(SECRET)
    }

    /// [`Spec::sign`] with another secret for the same access key id.
    pub fn sign_with(&self, secret: &str) -> OwnedRequest {
        let identity: Identity =
            Credentials::new(AKID, secret, self.token.map(str::to_owned), None, "test").into();
        let mut settings = SigningSettings::default();
        if let Some(expires) = self.presign {
            settings.signature_location = SignatureLocation::QueryParams;
            settings.expires_in = Some(expires);
        }
        if self.content_sha256 {
            settings.payload_checksum_kind = PayloadChecksumKind::XAmzSha256;
        }
        let params = v4::SigningParams::builder()
            .identity(&identity)
            .region(self.region)
            .name(self.service)
            .time(SystemTime::from(self.time))
            .settings(settings)
            .build()
            .unwrap()
            .into();
        let uri = format!("https://{HOST}{}", self.target);
        let mut headers = vec![("host", HOST)];
        headers.extend(self.headers.iter().copied());
        let body = if self.unsigned {
            SignableBody::UnsignedPayload
        } else {
            SignableBody::Bytes(self.body)
        };
        let signable =
            SignableRequest::new(self.method, uri.as_str(), headers.iter().copied(), body).unwrap();
        let (instructions, _) = sign(signable, &params).unwrap().into_parts();

        let mut builder = http::Request::builder().method(self.method).uri(&uri);
        for (name, value) in &headers {
            builder = builder.header(*name, *value);
        }
        let mut request = builder.body(()).unwrap();
        instructions.apply_to_request_http1x(&mut request);
        OwnedRequest {
            method: self.method.to_owned(),
            path: request.uri().path().to_owned(),
            query: request.uri().query().unwrap_or("").to_owned(),
            headers: request.headers().clone(),
            body: self.body.to_vec(),
        }
    }
}

/// Replaces byte `index` of an ASCII string by `x`, or `y` if it was `x`.
pub fn flip(text: &str, index: usize) -> String {
    let mut bytes = text.as_bytes().to_vec();
    bytes[index] = if bytes[index] == b'x' { b'y' } else { b'x' };
    String::from_utf8(bytes).expect("ASCII input")
}

/// Replaces the first `from` in `text` by `to`, which must exist.
pub fn replace_once(text: &str, from: &str, to: &str) -> String {
    assert!(text.contains(from), "{from:?} not in {text:?}");
    text.replacen(from, to, 1)
}

/// Signs `req` again, with this module's own functions, after `change` altered what the signer
/// claims; the result carries a valid signature for the altered claims. Used to show that a check
/// refuses a request whose signature is correct.
pub fn resign(req: &OwnedRequest, change: impl FnOnce(&mut Authorization)) -> OwnedRequest {
    let mut auth = parse_authorization(&req.as_signed()).unwrap();
    change(&mut auth);
    sign_claims(req, &auth)
}

/// Signs `req` for the claims `auth` with this module's own functions.
pub fn sign_claims(req: &OwnedRequest, auth: &Authorization) -> OwnedRequest {
    let mut copy = req.clone();
    let credential = format!(
        "{}/{}/{}/{}/aws4_request",
        auth.access_key_id, auth.scope_date, auth.region, auth.service
    );
    let signed_headers = auth.signed_headers.join(";");
    let date = auth.request_time.format("%Y%m%dT%H%M%SZ").to_string();
    let signature = |copy: &OwnedRequest| {
        let creq = canonical_request(&copy.as_signed(), auth);
        let sts = string_to_sign(auth, &creq);
        let key = signing_key(SECRET, &auth.scope_date, &auth.region, &auth.service);
        hex::encode(super::super::canonical::hmac(&key, &sts))
    };
    match auth.form {
        AuthForm::Header => {
            if copy.headers.contains_key("x-amz-date") {
                copy.set_header("x-amz-date", &date);
            }
            let signature = signature(&copy);
            copy.set_header(
                "authorization",
                &format!(
                    "AWS4-HMAC-SHA256 Credential={credential}, SignedHeaders={signed_headers}, \
                     Signature={signature}"
                ),
            );
        }
        AuthForm::Presigned => {
            let encode = |v: &str| v.replace('/', "%2F").replace(';', "%3B");
            let mut query: Vec<String> = copy
                .query
                .split('&')
                .filter(|p| {
                    ![
                        "X-Amz-Credential=",
                        "X-Amz-SignedHeaders=",
                        "X-Amz-Date=",
                        "X-Amz-Signature=",
                    ]
                    .iter()
                    .any(|prefix| p.starts_with(prefix))
                })
                .map(str::to_owned)
                .collect();
            query.push(format!("X-Amz-Credential={}", encode(&credential)));
            query.push(format!("X-Amz-SignedHeaders={}", encode(&signed_headers)));
            query.push(format!("X-Amz-Date={date}"));
            copy.query = query.join("&");
            let signature = signature(&copy);
            copy.query
                .push_str(&format!("&X-Amz-Signature={signature}"));
        }
    }
    copy
}
