//! The authorization API for downstream services: a service that received a SigV4-signed request
//! hands over the request as received, the action and resource it is about to perform and the
//! condition keys it knows; rolegate verifies the signature, opens the session and answers with the
//! verified principal and the policy decision (with the explanation and an encoded authorization
//! message when it is a denial). The JSON shapes are [`AuthorizeInput`] and [`AuthorizeOutput`].

use super::decide::{decide, Question};
use super::encode_denial;
use crate::app::App;
use crate::audit::AuditEvent;
use crate::authn;
use crate::authz::context;
use crate::config::Service;
use crate::credentials::{OpenSession, SessionClaims};
use crate::policy::{
    self, ContextValue, Effect, Explanation, MatchedStatement, Policy, PolicyKind, ResourceAccount,
};
use crate::query::{AwsCode, QueryError};
use crate::sigv4::{SignedRequest, VerifyOptions};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use base64::Engine;

use http::{HeaderMap, HeaderName, HeaderValue};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::net::IpAddr;
use std::sync::Arc;

/// Most condition keys a service may supply.
pub const MAX_CONTEXT_KEYS: usize = 100;
/// Most values of one supplied condition key.
pub const MAX_CONTEXT_VALUES: usize = 100;

/// What a service sends.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AuthorizeInput {
    /// The signed request as the service received it.
    pub request: SignedInput,
    /// The action the request asks for, e.g. `s3:GetObject`.
    pub action: String,
    /// The resource it acts on (an ARN, or `*`).
    pub resource: String,
    /// Condition keys the service knows (service-specific keys, `aws:RequestTag/K`,
    /// `aws:ResourceTag/K`…): a string, a list of strings, a number or a boolean each. Keys that
    /// describe the principal, its session or the request as rolegate sees it (see
    /// [`crate::authz::context::reserved`]) are refused with `InvalidInput`.
    #[serde(default)]
    pub context: BTreeMap<String, ContextInput>,
    /// The resource's resource-based policy, as a JSON object or its text.
    #[serde(default)]
    pub resource_policy: Option<serde_json::Value>,
    /// The 12-digit account that owns the resource, for ARNs that name none (S3's
    /// `arn:aws:s3:::bucket/key`); when the ARN names one, this must be the same. Decides how the
    /// resource policy combines with the session's policies: within the principal's account as
    /// AWS does within one account; in another account both the session's policies and the
    /// resource policy must allow (without a resource policy nothing is allowed). When neither
    /// the ARN nor this field says, the account is taken as unknown: the session's policies must
    /// allow, and a given resource policy must allow too (it never allows on its own).
    #[serde(default)]
    pub resource_account: Option<String>,
    /// The client's address, as the service saw it (`aws:SourceIp`); absent when not given.
    #[serde(default)]
    pub source_ip: Option<IpAddr>,
    /// Whether the client used TLS (`aws:SecureTransport`).
    #[serde(default)]
    pub secure_transport: bool,
}

/// A SigV4-signed request, exactly as received.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SignedInput {
    /// HTTP method.
    pub method: String,
    /// Raw path, percent-encoded as on the wire, without the query.
    pub path: String,
    /// Raw query string without `?`.
    #[serde(default)]
    pub query: String,
    /// Every header: name → value, or name → list of values.
    pub headers: BTreeMap<String, HeaderInput>,
    /// The body, base64-encoded (omit with `body_sha256`, or for an empty body).
    #[serde(default)]
    pub body_base64: Option<String>,
    /// The lowercase hex SHA-256 of the body, when the service hashed it itself.
    #[serde(default)]
    pub body_sha256: Option<String>,
    /// Whether the service accepts `x-amz-content-sha256: UNSIGNED-PAYLOAD` (as S3 does).
    #[serde(default)]
    pub allow_unsigned_payload: bool,
}

/// One header's value or values.
#[derive(Debug, Deserialize)]
#[serde(untagged)]
pub enum HeaderInput {
    /// One value.
    One(String),
    /// Several values, in order.
    Many(Vec<String>),
}

/// One supplied condition key's value.
#[derive(Debug, Deserialize)]
#[serde(untagged)]
pub enum ContextInput {
    /// A string.
    Text(String),
    /// A boolean.
    Flag(bool),
    /// A number.
    Number(serde_json::Number),
    /// Several strings.
    List(Vec<String>),
}

/// Who signed the request.
#[derive(Debug, Clone, Serialize)]
pub struct PrincipalOutput {
    /// The session ARN (`arn:aws:sts::ACCOUNT:assumed-role/ROLE/SESSION`).
    pub arn: String,
    /// The role's ARN.
    pub role_arn: String,
    /// The account.
    pub account: String,
    /// `aws:userid` (`AROA…:SESSION`).
    pub user_id: String,
    /// The access key the request was signed with.
    pub access_key_id: String,
    /// The source identity, if set.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub source_identity: Option<String>,
    /// Session tags.
    pub tags: BTreeMap<String, String>,
    /// The federated provider (ARN) behind the session, if any.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub federated_provider: Option<String>,
    /// The subject at that provider.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub subject: Option<String>,
    /// Whether the session was established with MFA.
    pub mfa_authenticated: bool,
    /// Issue time, RFC 3339.
    pub issued_at: String,
    /// Expiry, RFC 3339; absent for a long-term access key, which does not expire.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub expiration: Option<String>,
}

/// rolegate's answer.
#[derive(Debug, Serialize)]
pub struct AuthorizeOutput {
    /// The verified principal.
    pub principal: PrincipalOutput,
    /// `Allow`, `ExplicitDeny` or `ImplicitDeny`.
    pub decision: Effect,
    /// Whether the request may proceed.
    pub allowed: bool,
    /// The statements that applied.
    pub matched_statements: Vec<MatchedStatement>,
    /// Condition keys the policies asked about that the request did not have.
    pub missing_context_values: Vec<String>,
    /// Statement by statement, why: on denials only.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub explanation: Option<Explanation>,
    /// For the client on denials: `sts:DecodeAuthorizationMessage` turns it into the explanation.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub encoded_authorization_message: Option<String>,
}

/// A refusal of the API call itself (not a policy decision): the authorization API's one error
/// type. The code is AWS-style: for a request whose signature fails, the code the service should
/// return to its client (`SignatureDoesNotMatch`, `InvalidClientTokenId`, `ExpiredToken`…).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiError {
    /// HTTP status.
    pub status: StatusCode,
    /// The error code.
    pub code: &'static str,
    /// The message for the service (and, for signature failures, its client).
    pub message: String,
    /// The precise reason, for the audit log.
    pub reason: String,
}

impl ApiError {
    /// An error with an AWS code and its status; `message` is also the reason.
    fn aws(code: AwsCode, message: impl Into<String>) -> Self {
        let message = message.into();
        Self {
            status: code.status(),
            code: code.as_str(),
            reason: message.clone(),
            message,
        }
    }

    /// `InvalidInput` (400): the request to the API is malformed.
    pub fn invalid(message: impl Into<String>) -> Self {
        Self::aws(AwsCode::InvalidInput, message)
    }

    /// `UnrecognizedClient` (401): no configured service presents this bearer token.
    pub fn unrecognized_client() -> Self {
        Self {
            status: StatusCode::UNAUTHORIZED,
            code: "UnrecognizedClient",
            message: "a configured service's bearer token is required".into(),
            reason: "no configured service presents this bearer token".into(),
        }
    }

    /// The JSON answer: `{"error": {"code", "message"}, "request_id"}`.
    pub fn response(&self, request_id: &str) -> Response {
        (
            self.status,
            [("x-amzn-requestid", request_id.to_string())],
            axum::Json(serde_json::json!({
                "error": {"code": self.code, "message": self.message},
                "request_id": request_id,
            })),
        )
            .into_response()
    }
}

impl From<authn::AuthnError> for ApiError {
    fn from(e: authn::AuthnError) -> Self {
        let code = e.code();
        Self {
            status: code.status(),
            code: code.as_str(),
            message: e.message(),
            reason: e.reason(),
        }
    }
}

impl From<super::PolicyLoadError> for ApiError {
    /// `ServiceUnavailable` when the store is, `InternalFailure` otherwise; the detail stays in the
    /// reason.
    fn from(e: super::PolicyLoadError) -> Self {
        let q = QueryError::from(e);
        Self {
            status: q.status(),
            code: q.code.as_str(),
            message: q.message,
            reason: q.reason,
        }
    }
}

crate::audit::edge_error!(ApiError, |e| e.code);

/// Verifies the signed request of `input` and decides it. One audit event is filled in `ev`.
pub async fn authorize(
    app: &App,
    service: &Service,
    input: &AuthorizeInput,
    ev: &mut AuditEvent,
) -> Result<AuthorizeOutput, ApiError> {
    ev.service = Some(service.name.clone());
    ev.resource = Some(input.resource.chars().take(2048).collect());
    check_action_and_resource(&input.action, &input.resource)?;
    let resource_account = resource_account(&input.resource, input.resource_account.as_deref())?;
    let supplied = supplied_context(&input.context)?;
    let resource_policy = match &input.resource_policy {
        None => None,
        Some(v) => {
            let text = match v {
                serde_json::Value::String(s) => s.clone(),
                other => other.to_string(),
            };
            Some(Policy::parse(&text, PolicyKind::Resource).map_err(|e| {
                ApiError::aws(
                    AwsCode::MalformedPolicyDocument,
                    format!("resource_policy: {e}"),
                )
            })?)
        }
    };

    let claims = verify_signed(app, service, &input.request, ev).await?;
    ev.principal = Some(claims.principal.arn());
    ev.access_key_id = Some(claims.access_key_id.clone());
    if let Some(f) = &claims.federation {
        ev.provider = Some(f.provider_arn.clone());
        ev.subject = Some(f.subject.clone());
    }

    if let Some((key, _)) = supplied
        .iter()
        .find(|(k, _)| context::reserved(k, &app.config, Some(&claims)))
    {
        return Err(ApiError::invalid(format!(
            "context key {key} is set by rolegate from the verified session and request; a \
             service may not supply it"
        )));
    }

    let mut q = Question::new(&claims, &input.action, &input.resource).with_resource_policy(
        "resource policy",
        resource_policy.as_ref(),
        ResourceAccount::of(claims.principal.account(), resource_account),
    );
    q.source_ip = input.source_ip;
    q.secure_transport = input.secure_transport;
    q.facts = supplied;
    let verdict = decide(app, q).await.map_err(ApiError::from)?;
    let allowed = verdict.allowed();
    let (explanation, encoded) = if allowed {
        (None, None)
    } else {
        let explanation = verdict.explain();
        let value = serde_json::to_value(&explanation).unwrap_or_default();
        let encoded = encode_denial(
            app,
            &claims,
            &verdict.context,
            verdict.explicit_deny(),
            &value,
        );
        ev.reason = Some(format!(
            "{} is not allowed {} on {}: {explanation}",
            claims.principal.arn(),
            input.action,
            input.resource
        ));
        ev.explanation = Some(value);
        (Some(explanation), Some(encoded))
    };
    let decision = verdict.decision;
    Ok(AuthorizeOutput {
        principal: principal_output(&claims),
        decision: decision.effect,
        allowed,
        matched_statements: decision.matched,
        missing_context_values: decision.missing_context_keys,
        explanation,
        encoded_authorization_message: encoded,
    })
}

fn check_action_and_resource(action: &str, resource: &str) -> Result<(), ApiError> {
    if !crate::policy::is_action_name(action) {
        return Err(ApiError::invalid(format!(
            "action {:?} is not of the form service:Action",
            action.chars().take(140).collect::<String>()
        )));
    }
    if resource.is_empty() || resource.len() > 2048 || resource.chars().any(char::is_control) {
        return Err(ApiError::invalid(
            "resource must be an ARN or * of 1-2048 characters without control characters",
        ));
    }
    if resource != "*" && !resource.starts_with("arn:") {
        return Err(ApiError::invalid(format!(
            "resource {:?} is neither an ARN nor *",
            resource.chars().take(140).collect::<String>()
        )));
    }
    Ok(())
}

/// The account of the resource: its ARN's account field, or `given` for ARNs that name none;
/// `None` when neither says. A `given` account must be an account id and agree with the ARN.
fn resource_account<'a>(
    resource: &'a str,
    given: Option<&'a str>,
) -> Result<Option<&'a str>, ApiError> {
    let in_arn = policy::arn_account(resource);
    let Some(given) = given else {
        return Ok(in_arn);
    };
    if !policy::is_account_id(given) {
        return Err(ApiError::invalid(format!(
            "resource_account {:?} is not a 12-digit account id",
            given.chars().take(40).collect::<String>()
        )));
    }
    match in_arn {
        Some(a) if a != given => Err(ApiError::invalid(format!(
            "resource_account {given} contradicts the account {a} in the resource ARN"
        ))),
        _ => Ok(Some(given)),
    }
}

/// The service's condition keys, checked for shape (whether one is rolegate's alone is decided
/// once the session is known).
fn supplied_context(
    context: &BTreeMap<String, ContextInput>,
) -> Result<Vec<(String, ContextValue)>, ApiError> {
    if context.len() > MAX_CONTEXT_KEYS {
        return Err(ApiError::invalid(format!(
            "at most {MAX_CONTEXT_KEYS} context keys may be given"
        )));
    }
    let mut out = Vec::with_capacity(context.len());
    for (key, value) in context {
        if key.is_empty() || key.len() > 256 || !key.contains(':') {
            return Err(ApiError::invalid(format!(
                "context key {:?} must be a prefix:name key of at most 256 characters",
                key.chars().take(140).collect::<String>()
            )));
        }
        let v = match value {
            ContextInput::Text(s) => ContextValue::Single(s.clone()),
            ContextInput::Flag(b) => ContextValue::Single(b.to_string()),
            ContextInput::Number(n) => ContextValue::Single(n.to_string()),
            ContextInput::List(l) if l.len() <= MAX_CONTEXT_VALUES => {
                ContextValue::Multi(l.clone())
            }
            ContextInput::List(_) => {
                return Err(ApiError::invalid(format!(
                    "context key {key} has more than {MAX_CONTEXT_VALUES} values"
                )))
            }
        };
        out.push((key.clone(), v));
    }
    Ok(out)
}

async fn verify_signed(
    app: &App,
    service: &Service,
    req: &SignedInput,
    ev: &mut AuditEvent,
) -> Result<Arc<OpenSession>, ApiError> {
    let mut headers = HeaderMap::new();
    for (name, values) in &req.headers {
        let name = HeaderName::from_bytes(name.as_bytes())
            .map_err(|_| ApiError::invalid(format!("header name {name:?} is not valid")))?;
        let values: Vec<&String> = match values {
            HeaderInput::One(v) => vec![v],
            HeaderInput::Many(vs) => vs.iter().collect(),
        };
        for v in values {
            let v = HeaderValue::from_str(v)
                .map_err(|_| ApiError::invalid(format!("header {name} has an invalid value")))?;
            headers.append(name.clone(), v);
        }
    }
    let method = req.method.to_ascii_uppercase();
    if method.is_empty() || !method.bytes().all(|b| b.is_ascii_uppercase()) {
        return Err(ApiError::invalid("request.method is not an HTTP method"));
    }
    if !req.path.starts_with('/') {
        return Err(ApiError::invalid("request.path must start with /"));
    }
    let body = match &req.body_base64 {
        Some(b) => base64::engine::general_purpose::STANDARD
            .decode(b)
            .map_err(|_| ApiError::invalid("request.body_base64 is not base64"))?,
        None => Vec::new(),
    };
    if let Some(h) = &req.body_sha256 {
        if req.body_base64.is_some() {
            return Err(ApiError::invalid(
                "give request.body_base64 or request.body_sha256, not both",
            ));
        }
        if h.len() != 64 || !h.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err(ApiError::invalid(
                "request.body_sha256 must be 64 hex digits",
            ));
        }
    }
    let sreq = SignedRequest {
        method: &method,
        path: &req.path,
        query: &req.query,
        headers: &headers,
        body: &body,
        body_sha256: req.body_sha256.as_deref(),
    };
    // The credential scope names the service the client signed for; it must be one this service
    // answers for.
    let scope_service = crate::sigv4::parse_authorization(&sreq)
        .map(|a| a.service)
        .unwrap_or_default();
    let signing_name = service
        .signing_names
        .iter()
        .find(|n| **n == scope_service)
        .map(String::as_str)
        .unwrap_or(service.signing_names[0].as_str());
    let opts = VerifyOptions {
        service: signing_name,
        regions: &app.config.sts_regions,
        max_skew: app.config.max_clock_skew,
        allow_unsigned_payload: req.allow_unsigned_payload,
    };
    authn::authenticate_signed(app, &sreq, &opts, ev)
        .await
        .map_err(ApiError::from)
}

fn principal_output(c: &SessionClaims) -> PrincipalOutput {
    let time = crate::clock::rfc3339_secs;
    PrincipalOutput {
        arn: c.principal.arn(),
        role_arn: c.principal.principal_arn(),
        account: c.principal.account().to_string(),
        user_id: c.principal.user_id(),
        access_key_id: c.access_key_id.clone(),
        source_identity: c.source_identity.clone(),
        tags: c
            .tags
            .iter()
            .map(|t| (t.key.clone(), t.value.clone()))
            .collect(),
        federated_provider: c.federation.as_ref().map(|f| f.provider_arn.clone()),
        subject: c.federation.as_ref().map(|f| f.subject.clone()),
        mfa_authenticated: c.mfa_time.is_some(),
        issued_at: time(c.issued_at),
        expiration: (!authn::is_long_term(c)).then(|| time(c.expires_at)),
    }
}
