//! Requests signed as clients sign them, for tests that go through the router: SigV4 by the
//! aws-sigv4 crate (the SDKs' own signer) at [`T0`], in the header form or as a presigned URL, and
//! the pieces of STS answers tests read.

use aws_credential_types::Credentials;
use aws_sigv4::http_request::{
    sign, PayloadChecksumKind, SignableBody, SignableRequest, SignatureLocation, SigningSettings,
};
use aws_sigv4::sign::v4;
use aws_smithy_runtime_api::client::identity::Identity;
use axum::body::Body;
use axum::http::Request;
use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use serde_json::{json, Value};
use std::time::{Duration, SystemTime};

/// When every request here is signed (Unix seconds): a fixture's clock starts there.
pub const T0: i64 = 1_800_000_000;
/// The host requests are signed for (the configured `public_url`'s).
pub const HOST: &str = "127.0.0.1:8080";

/// Who signs: an access key, its secret, and the session token of temporary credentials.
#[derive(Clone, Debug)]
pub struct Creds {
    /// The access key id.
    pub key: String,
    /// Its secret.
    pub secret: String,
    /// The session token, for temporary credentials.
    pub token: Option<String>,
}

/// A request as the client sends it: method, path and query, headers, body.
#[derive(Clone, Debug)]
pub struct Signed {
    /// HTTP method.
    pub method: &'static str,
    /// Path and query.
    pub target: String,
    /// Every header, signed or added after signing.
    pub headers: Vec<(String, String)>,
    /// The body.
    pub body: Vec<u8>,
}

impl Signed {
    /// The request with `extra` headers added after signing.
    pub fn with(&self, extra: &[(&str, &str)]) -> Self {
        let mut copy = self.clone();
        copy.headers
            .extend(extra.iter().map(|(k, v)| (k.to_string(), v.to_string())));
        copy
    }

    /// The request, to send to the router.
    pub fn request(&self) -> Request<Body> {
        let mut builder = Request::builder().method(self.method).uri(&self.target);
        for (k, v) in &self.headers {
            builder = builder.header(k, v);
        }
        builder.body(Body::from(self.body.clone())).unwrap()
    }

    /// The `request` of a `POST /v1/authorize` body: this request as a service received it.
    pub fn as_received(&self) -> Value {
        let (path, query) = self.target.split_once('?').unwrap_or((&self.target, ""));
        let headers: serde_json::Map<String, Value> = self
            .headers
            .iter()
            .map(|(k, v)| (k.clone(), json!(v)))
            .collect();
        json!({
            "method": self.method,
            "path": path,
            "query": query,
            "headers": headers,
            "body_base64": STANDARD.encode(&self.body),
        })
    }
}

/// Signs `method target` for `service` at [`T0`], in the header form or, with `presign`, as a
/// presigned URL; S3 requests also carry the signed `x-amz-content-sha256`.
pub fn sign_request(
    creds: &Creds,
    service: &str,
    method: &'static str,
    target: &str,
    headers: &[(&str, &str)],
    body: &[u8],
    presign: bool,
) -> Signed {
    let request = ToSign {
        service,
        method,
        target,
        headers,
        body,
        presign,
    };
    request.signed_at(creds, T0)
}

/// A request to sign, for a fixture whose clock is not at [`T0`]: `method target` for `service` with `headers` and `body`, in the header form
/// or, with `presign`, as a presigned URL.
pub struct ToSign<'a> {
    /// The signing name.
    pub service: &'a str,
    /// The HTTP method.
    pub method: &'static str,
    /// Path and query.
    pub target: &'a str,
    /// The headers besides `host`.
    pub headers: &'a [(&'a str, &'a str)],
    /// The body.
    pub body: &'a [u8],
    /// Whether to presign (a URL) rather than sign the headers.
    pub presign: bool,
}

impl ToSign<'_> {
    /// Signs the request at `at` (Unix seconds); S3 requests also carry the signed
    /// `x-amz-content-sha256`.
    pub fn signed_at(&self, creds: &Creds, at: i64) -> Signed {
        let identity: Identity = Credentials::new(
            creds.key.clone(),
            creds.secret.clone(),
            creds.token.clone(),
            None,
            "test",
        )
        .into();
        let mut settings = SigningSettings::default();
        if self.presign {
            settings.signature_location = SignatureLocation::QueryParams;
            settings.expires_in = Some(Duration::from_secs(900));
        }
        if self.service == "s3" {
            settings.payload_checksum_kind = PayloadChecksumKind::XAmzSha256;
        }
        let params = v4::SigningParams::builder()
            .identity(&identity)
            .region("us-east-1")
            .name(self.service)
            .time(SystemTime::UNIX_EPOCH + Duration::from_secs(at as u64))
            .settings(settings)
            .build()
            .unwrap()
            .into();
        let uri = format!("http://{HOST}{}", self.target);
        let mut all = vec![("host", HOST)];
        all.extend_from_slice(self.headers);
        let signable = SignableRequest::new(
            self.method,
            uri.as_str(),
            all.iter().copied(),
            SignableBody::Bytes(self.body),
        )
        .unwrap();
        let (instructions, _) = sign(signable, &params).unwrap().into_parts();
        let mut request = http::Request::builder().method(self.method).uri(&uri);
        for (k, v) in &all {
            request = request.header(*k, *v);
        }
        let mut request = request.body(()).unwrap();
        instructions.apply_to_request_http1x(&mut request);
        Signed {
            method: self.method,
            target: request
                .uri()
                .path_and_query()
                .map(|p| p.as_str().to_string())
                .unwrap(),
            headers: request
                .headers()
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_str().unwrap().to_string()))
                .collect(),
            body: self.body.to_vec(),
        }
    }
}

/// A signed `POST /` with a form body, for `service` (`sts`, or `iam` for the IAM actions).
pub fn form_post(creds: &Creds, service: &str, form: &str) -> Signed {
    form_post_at(creds, service, form, T0)
}

/// [`form_post`] signed at `at` (Unix seconds), for a fixture whose clock has moved.
pub fn form_post_at(creds: &Creds, service: &str, form: &str, at: i64) -> Signed {
    let request = ToSign {
        service,
        method: "POST",
        target: "/",
        headers: &[("content-type", "application/x-www-form-urlencoded")],
        body: form.as_bytes(),
        presign: false,
    };
    request.signed_at(creds, at)
}

/// A signed STS `POST /` with a form body.
pub fn sts_post(creds: &Creds, form: &str) -> Signed {
    form_post(creds, "sts", form)
}

/// The text of the first `<tag>` element of an XML answer.
pub fn text_of<'a>(xml: &'a str, tag: &str) -> Option<&'a str> {
    let (_, rest) = xml.split_once(&format!("<{tag}>"))?;
    rest.split_once(&format!("</{tag}>")).map(|(t, _)| t)
}

/// An unsigned STS `POST /` of `form` (e.g. `AssumeRoleWithWebIdentity`) through the router: the
/// status, the body, and the audit event of the call (found by the answer's `RequestId`).
pub async fn unsigned_sts_call(
    app: &std::sync::Arc<crate::app::App>,
    form: &[(&str, &str)],
) -> (axum::http::StatusCode, String, crate::audit::AuditEvent) {
    use tower::ServiceExt;
    let body = form_urlencoded::Serializer::new(String::new())
        .extend_pairs(form)
        .finish();
    let resp = crate::web::router(app.clone())
        .oneshot(
            Request::post("/")
                .header(axum::http::header::HOST, HOST)
                .header(
                    axum::http::header::CONTENT_TYPE,
                    "application/x-www-form-urlencoded",
                )
                .body(Body::from(body))
                .unwrap(),
        )
        .await
        .unwrap();
    let status = resp.status();
    let bytes = axum::body::to_bytes(resp.into_body(), 1 << 20)
        .await
        .unwrap();
    let text = String::from_utf8(bytes.to_vec()).unwrap();
    let request_id = text_of(&text, "RequestId")
        .unwrap_or_else(|| panic!("no RequestId in {text}"))
        .to_string();
    let event = crate::testing::audit_event(app, &request_id).await;
    (status, text, event)
}

/// A new long-term access key of the directory user `name`, ready to sign with.
pub async fn access_key(app: &crate::app::App, name: &str) -> Creds {
    let key = app
        .directory
        .as_ref()
        .unwrap()
        .create_access_key(name)
        .await
        .unwrap();
    Creds {
        key: key.id,
        secret: key.secret.expose().to_string(),
        token: None,
    }
}
