//! The STS actions: `AssumeRoleWithWebIdentity`, `GetCallerIdentity`, `AssumeRole`,
//! `DecodeAuthorizationMessage`. Each validates its parameters first, then authenticates, then asks the
//! policy engine, then mints; any refusal leaves nothing behind.

use crate::app::App;
use crate::audit::AuditEvent;
use crate::authn as auth;
use crate::authz::context::{self, add_request_keys, add_request_tags, request_tag_keys};
use crate::authz::decide::{decide, Question};
use crate::authz::denial::{encode_denial, AUTH_MESSAGE_PURPOSE};
use crate::authz::gate::{self, Admission, Admitted, Refusal};
use crate::config::Role;
use crate::credentials::{self, Federation, SessionClaims, SessionPrincipal, Tag};
use crate::idp::jwt::JwtError;
use crate::policy::{self, ContextValue, Effect, Policy, PolicyKind, Principal, RequestContext};
use crate::query::params::{self, Params};
use crate::query::xml::XmlWriter;
use crate::query::{QueryRequest, StsError};
use chrono::{DateTime, Utc};
use serde_json::Value;
use std::sync::Arc;

/// Session tags in a web identity token.
const TAGS_CLAIM: &str = "https://aws.amazon.com/tags";
/// Source identity in a web identity token.
const SOURCE_IDENTITY_CLAIM: &str = "https://aws.amazon.com/source_identity";
/// Longest role-chaining session.
const CHAINED_MAX_SECONDS: i64 = 3600;
/// Most session tags.
const MAX_TAGS: usize = 50;

/// Session policy parameters, validated.
pub(super) struct SessionPolicy {
    pub(super) text: Option<String>,
    pub(super) arns: Vec<String>,
    pub(super) minified_len: usize,
}

pub(super) fn session_policy(params: &Params) -> Result<SessionPolicy, StsError> {
    let arns: Vec<String> = params
        .list("PolicyArns", ".arn")?
        .into_iter()
        .map(String::from)
        .collect();
    let refs: Vec<&str> = arns.iter().map(String::as_str).collect();
    params::check_policy_arns(&refs)?;
    let mut minified_len = 0;
    let text = match params.get("Policy")? {
        Some(t) => {
            params::check_session_policy_text(t)?;
            Policy::parse(t, PolicyKind::Session)
                .map_err(|e| StsError::malformed_policy(e.to_string()))?;
            minified_len = serde_json::from_str::<Value>(t)
                .map(|v| v.to_string().len())
                .unwrap_or(t.len());
            Some(t.to_string())
        }
        None => None,
    };
    Ok(SessionPolicy {
        text,
        arns,
        minified_len,
    })
}

/// Every `PolicyArns` entry must name a managed policy of the role's account: a session policy that
/// cannot be evaluated must never be silently dropped, since that would widen the session.
pub(super) fn check_policy_arns_exist(
    app: &App,
    sp: &SessionPolicy,
    role: &Role,
) -> Result<(), StsError> {
    for arn in &sp.arns {
        match app.config.managed_policy(arn) {
            Some(m) if m.account == role.account => {}
            found => {
                let why = if found.is_some() {
                    format!(
                        "managed policy {arn} belongs to another account than role {}",
                        role.arn
                    )
                } else {
                    format!("managed policy {arn} is not defined")
                };
                return Err(StsError::invalid_parameter(format!(
                    "Policy {arn} does not exist or is not attachable."
                ))
                .because(why));
            }
        }
    }
    Ok(())
}

/// Packed size of session policy and tags as a percentage of the allowed size.
pub(super) fn packed_percent(sp: &SessionPolicy, tags: &[Tag]) -> u32 {
    let tag_bytes: usize = tags.iter().map(|t| t.key.len() + t.value.len() + 2).sum();
    let bytes = sp.minified_len + sp.arns.iter().map(String::len).sum::<usize>() + tag_bytes;
    (bytes * 100).div_ceil(2048) as u32
}

pub(super) fn iso(t: i64) -> String {
    crate::clock::rfc3339(
        &DateTime::<Utc>::from_timestamp(t, 0).unwrap_or_default(),
        false,
    )
}

fn jwt_error(e: JwtError) -> StsError {
    match e {
        JwtError::Invalid(r) => StsError::invalid_identity_token(r),
        JwtError::Expired(r) => StsError::expired_identity_token(r),
        JwtError::Unreachable(r) => StsError::idp_communication(r),
    }
}

pub(super) fn internal<E: std::fmt::Display>(what: &'static str) -> impl Fn(E) -> StsError {
    move |e| StsError::internal(format!("{what}: {e}"))
}

/// The gate's refusal on the wire: `ServiceUnavailable` when the directory could not be read,
/// else `denied` with the gate's precise reason for the audit log.
pub(super) fn refused(e: Refusal, denied: impl FnOnce() -> StsError) -> StsError {
    match &e {
        Refusal::Directory(d) => StsError::directory("the mint gate reading the directory", d),
        _ => denied().because(format!("mint gate: {e}")),
    }
}

/// When the provider says MFA was performed: an `amr` value the provider's configuration trusts
/// (`mfa_amr`) makes the session's MFA time the token's `auth_time` (or `iat`). Without trusted
/// values, upstream MFA does not count.
fn upstream_mfa_time(
    provider: &crate::config::OidcProvider,
    claims: &serde_json::Map<String, Value>,
    issued_at: i64,
) -> Option<i64> {
    if provider.mfa_amr.is_empty() {
        return None;
    }
    let amr: Vec<&str> = match claims.get("amr") {
        Some(Value::Array(a)) => a.iter().filter_map(Value::as_str).collect(),
        Some(Value::String(s)) => vec![s.as_str()],
        _ => return None,
    };
    if !amr.iter().any(|v| provider.mfa_amr.iter().any(|t| t == v)) {
        return None;
    }
    Some(
        claims
            .get("auth_time")
            .and_then(Value::as_i64)
            .filter(|t| *t <= issued_at)
            .unwrap_or(issued_at),
    )
}

/// Session tags and transitive keys from the `https://aws.amazon.com/tags` claim.
fn token_tags(
    claims: &serde_json::Map<String, Value>,
) -> Result<(Vec<Tag>, Vec<String>), StsError> {
    let Some(v) = claims.get(TAGS_CLAIM) else {
        return Ok((Vec::new(), Vec::new()));
    };
    let bad = |why: &str| StsError::invalid_identity_token(format!("claim {TAGS_CLAIM}: {why}"));
    let obj = v.as_object().ok_or_else(|| bad("not an object"))?;
    let mut tags = Vec::new();
    if let Some(pt) = obj.get("principal_tags") {
        let pt = pt
            .as_object()
            .ok_or_else(|| bad("principal_tags is not an object"))?;
        for (k, vals) in pt {
            let value = match vals {
                Value::Array(a) if a.len() == 1 => a[0]
                    .as_str()
                    .ok_or_else(|| bad("tag values must be strings"))?,
                Value::String(s) => s.as_str(),
                _ => return Err(bad("each principal tag must have exactly one string value")),
            };
            params::check_tag(k, value).map_err(|e| bad(&e.message))?;
            tags.push(Tag {
                key: k.clone(),
                value: value.to_string(),
            });
        }
    }
    let mut transitive = Vec::new();
    if let Some(tt) = obj.get("transitive_tag_keys") {
        let arr = tt
            .as_array()
            .ok_or_else(|| bad("transitive_tag_keys is not an array"))?;
        for k in arr {
            let k = k
                .as_str()
                .ok_or_else(|| bad("transitive tag keys must be strings"))?;
            if !tags.iter().any(|t| t.key == k) {
                return Err(bad(&format!(
                    "transitive tag key {k} is not a principal tag"
                )));
            }
            transitive.push(k.to_string());
        }
    }
    check_tag_set(&tags).map_err(|e| bad(&e.message))?;
    Ok((tags, transitive))
}

pub(super) fn check_tag_set(tags: &[Tag]) -> Result<(), StsError> {
    if tags.len() > MAX_TAGS {
        return Err(StsError::validation(
            &tags.len().to_string(),
            "tags",
            "Member must have length less than or equal to 50",
        ));
    }
    for (i, t) in tags.iter().enumerate() {
        if tags[..i].iter().any(|o| o.key.eq_ignore_ascii_case(&t.key)) {
            return Err(StsError::invalid_parameter(
                "Duplicate tag keys found. Please note that Tag keys are case insensitive.",
            ));
        }
    }
    Ok(())
}

pub(super) fn tag_pairs(tags: &[Tag]) -> Vec<(String, String)> {
    tags.iter()
        .map(|t| (t.key.clone(), t.value.clone()))
        .collect()
}

/// An `AccessDenied` carrying an encoded explanation, with the explanation in the audit event.
#[allow(clippy::too_many_arguments)]
fn denial(
    app: &App,
    caller: &SessionClaims,
    ctx: &RequestContext,
    effect: Effect,
    explanation: &policy::Explanation,
    base: StsError,
    reason: String,
    ev: &mut AuditEvent,
) -> StsError {
    let ex = serde_json::to_value(explanation).unwrap_or(Value::Null);
    let encoded = encode_denial(app, caller, ctx, effect == Effect::ExplicitDeny, &ex);
    ev.explanation = Some(ex);
    let mut e = base.because(reason);
    e.message = format!(
        "{} Encoded authorization failure message: {encoded}",
        e.message
    );
    e
}

pub(super) fn write_credentials(w: &mut XmlWriter, c: &SessionClaims, token: &str) {
    w.open("Credentials");
    w.leaf("AccessKeyId", &c.access_key_id);
    w.leaf("SecretAccessKey", &c.secret_access_key);
    w.leaf("SessionToken", token);
    w.leaf("Expiration", &iso(c.expires_at));
    w.close("Credentials");
}

pub(super) fn write_assumed_role_user(w: &mut XmlWriter, c: &SessionClaims) {
    w.open("AssumedRoleUser");
    w.leaf("AssumedRoleId", &c.principal.user_id());
    w.leaf("Arn", &c.principal.arn());
    w.close("AssumedRoleUser");
}

pub(super) fn finish(mut w: XmlWriter, op: &str, request_id: &str) -> String {
    w.close(&format!("{op}Result"));
    w.open("ResponseMetadata");
    w.leaf("RequestId", request_id);
    w.close("ResponseMetadata");
    w.close(&format!("{op}Response"));
    w.finish()
}

pub(super) fn start(op: &str) -> XmlWriter {
    let mut w = XmlWriter::new();
    w.open_ns(&format!("{op}Response"));
    w.open(&format!("{op}Result"));
    w
}

pub(super) struct Mint<'a> {
    pub(super) principal: SessionPrincipal,
    pub(super) duration: i64,
    pub(super) source_identity: Option<String>,
    pub(super) tags: Vec<Tag>,
    pub(super) transitive: Vec<String>,
    pub(super) policy: &'a SessionPolicy,
    pub(super) federation: Option<Federation>,
    pub(super) mfa_time: Option<i64>,
    pub(super) chained: bool,
    pub(super) origin_user: Option<String>,
}

pub(super) fn role_session(role: &Role, session_name: &str) -> SessionPrincipal {
    SessionPrincipal::AssumedRole {
        account: role.account.clone(),
        role_name: role.name.clone(),
        role_path: role.path.clone(),
        role_id: role.role_id.clone(),
        session_name: session_name.to_string(),
    }
}

/// Mints a session: only for an identity the gate admitted (`_admission`).
pub(super) fn mint(
    app: &App,
    _admission: &Admission,
    m: Mint<'_>,
    ev: &mut AuditEvent,
) -> Result<(SessionClaims, String), StsError> {
    let now = app.clock.now().timestamp();
    let claims = SessionClaims {
        access_key_id: credentials::new_temporary_access_key_id()
            .map_err(internal("access key id"))?,
        secret_access_key: credentials::new_secret_access_key().map_err(internal("secret"))?,
        session_id: credentials::new_session_id().map_err(internal("session id"))?,
        principal: m.principal,
        source_identity: m.source_identity,
        tags: m.tags,
        transitive_tag_keys: m.transitive,
        session_policy: m.policy.text.clone(),
        policy_arns: m.policy.arns.clone(),
        federation: m.federation,
        mfa_time: m.mfa_time,
        issued_at: now,
        expires_at: now + m.duration,
        chained: m.chained,
        origin_user: m.origin_user,
    };
    let token = app
        .keys
        .seal_session(&claims)
        .map_err(internal("sealing the session"))?;
    ev.access_key_id = Some(claims.access_key_id.clone());
    ev.expiration = Some(iso(claims.expires_at));
    app.metrics.session_minted(now, claims.expires_at);
    Ok((claims, token))
}

/// What a federated sign-in (web identity or SAML) asks of a role's trust policy.
pub(super) struct FederatedTrust<'a> {
    /// `sts:AssumeRoleWithWebIdentity` or `sts:AssumeRoleWithSAML`.
    pub action: &'static str,
    /// Session tags are asked for: `sts:TagSession` must be allowed too.
    pub tags: bool,
    /// A source identity is set: `sts:SetSourceIdentity` must be allowed too.
    pub source_identity: bool,
    /// The provider's ARN, for the audit reason.
    pub provider_arn: &'a str,
    /// The subject at the provider, for the audit reason.
    pub subject: &'a str,
}

/// The trust policy must allow the sign-in's action and every action its request implies, each
/// evaluated on its own request context; the first refusal carries the policy engine's
/// explanation into the audit event.
pub(super) fn check_federated_trust(
    role: &Role,
    t: FederatedTrust<'_>,
    make_ctx: impl Fn(&str) -> RequestContext,
    denied: impl Fn() -> StsError,
    ev: &mut AuditEvent,
) -> Result<(), StsError> {
    let mut actions = vec![t.action];
    if t.tags {
        actions.push("sts:TagSession");
    }
    if t.source_identity {
        actions.push("sts:SetSourceIdentity");
    }
    for action in actions {
        let ctx = make_ctx(action);
        if policy::evaluate_trust(&role.trust_policy, &ctx).effect != Effect::Allow {
            let explanation = policy::explain_trust(&role.trust_policy, &ctx);
            ev.explanation = serde_json::to_value(&explanation).ok();
            return Err(denied().because(format!(
                "trust policy of {} does not allow {action} for {} (sub {}): {explanation}",
                role.arn, t.provider_arn, t.subject
            )));
        }
    }
    Ok(())
}

/// `AssumeRoleWithWebIdentity`: an OIDC token for a session of a role that trusts its provider.
pub async fn assume_role_with_web_identity(
    app: &Arc<App>,
    req: &QueryRequest<'_>,
    params: &Params,
    ev: &mut AuditEvent,
) -> Result<String, StsError> {
    let role_arn = params.required("RoleArn", "roleArn")?;
    ev.role_arn = Some(role_arn.to_string());
    let session_name = params.required("RoleSessionName", "roleSessionName")?;
    ev.session_name = Some(session_name.to_string());
    let token = params.required("WebIdentityToken", "webIdentityToken")?;
    params::check_role_arn(role_arn)?;
    params::check_name(session_name, "roleSessionName")?;
    params::check_secret_length(token, "webIdentityToken", 4, 20_000)?;
    if params.get("ProviderId")?.is_some() {
        return Err(StsError::invalid_parameter(
            "ProviderId is only for OAuth 2.0 access tokens; this service accepts OpenID Connect ID tokens",
        ));
    }
    let duration = params::duration(params.get("DurationSeconds")?, 900, 43_200)?;
    let sp = session_policy(params)?;

    let denied =
        || StsError::access_denied("Not authorized to perform sts:AssumeRoleWithWebIdentity");
    let role = app
        .config
        .role(role_arn)
        .ok_or_else(|| denied().because(format!("role {role_arn} does not exist")))?;
    check_policy_arns_exist(app, &sp, role)?;
    ev.principal = Some(format!(
        "arn:aws:sts::{}:assumed-role/{}/{}",
        role.account, role.name, session_name
    ));

    let identity = app.verifier.verify(token).await.map_err(jwt_error)?;
    let provider = &identity.provider;
    ev.provider = Some(provider.issuer.clone());
    ev.subject = Some(identity.subject.clone());
    auth::limit_principal(app, &format!("{}#{}", provider.issuer, identity.subject))?;
    if !provider.serves_account(&role.account) {
        return Err(denied().because(format!(
            "provider {} is not a provider of account {}",
            provider.issuer, role.account
        )));
    }
    if let Some(d) = duration {
        if d > i64::from(role.max_session_duration) {
            return Err(StsError::validation_msg(
                "The requested DurationSeconds exceeds the MaxSessionDuration set for this role.",
            ));
        }
    }
    let (tags, transitive) = token_tags(&identity.claims)?;
    let source_identity = match identity.claims.get(SOURCE_IDENTITY_CLAIM) {
        None => None,
        Some(Value::String(s)) => {
            params::check_source_identity(s).map_err(|e| {
                StsError::invalid_identity_token(format!(
                    "claim {SOURCE_IDENTITY_CLAIM}: {}",
                    e.message
                ))
            })?;
            Some(s.clone())
        }
        Some(_) => {
            return Err(StsError::invalid_identity_token(format!(
                "claim {SOURCE_IDENTITY_CLAIM} is not a string"
            )))
        }
    };
    let percent = packed_percent(&sp, &tags);
    if percent > 100 {
        return Err(StsError::packed_policy_too_large(percent));
    }

    let provider_arn = provider.arn(&role.account);
    let now = app.clock.now();
    let upstream_mfa = upstream_mfa_time(provider, &identity.claims, identity.issued_at);
    let make_ctx = |action: &str| {
        let mut ctx = RequestContext::new(action, role.arn.clone()).with_principal(Principal {
            aws: Vec::new(),
            federated: Some(provider_arn.clone()),
            service: None,
        });
        add_request_keys(&mut ctx, now, req.source_ip, req.secure_transport);
        context::add_claims(&mut ctx, &provider.key_prefix, &identity.claims);
        ctx.set(
            &format!("{}:aud", provider.key_prefix),
            ContextValue::Single(identity.audience.clone()),
        );
        ctx.set(
            "aws:FederatedProvider",
            ContextValue::Single(provider_arn.clone()),
        );
        context::add_mfa_keys(&mut ctx, upstream_mfa, now);
        ctx.set(
            "sts:RoleSessionName",
            ContextValue::Single(session_name.to_string()),
        );
        if !tags.is_empty() {
            add_request_tags(&mut ctx, &tag_pairs(&tags));
        }
        if let Some(si) = &source_identity {
            ctx.set("sts:SourceIdentity", ContextValue::Single(si.clone()));
        }
        ctx
    };
    check_federated_trust(
        role,
        FederatedTrust {
            action: "sts:AssumeRoleWithWebIdentity",
            tags: !tags.is_empty(),
            source_identity: source_identity.is_some(),
            provider_arn: &provider_arn,
            subject: &identity.subject,
        },
        make_ctx,
        denied,
        ev,
    )?;

    let admission =
        gate::admit_federated(app, &provider.name, &identity.subject, identity.issued_at)
            .map_err(|e| refused(e, denied))?;
    let federation = Federation {
        provider_arn,
        key_prefix: provider.key_prefix.clone(),
        subject: identity.subject.clone(),
        claims: Some(Value::Object(identity.claims.clone())),
    };
    let (claims, token) = mint(
        app,
        &admission,
        Mint {
            principal: role_session(role, session_name),
            duration: duration.unwrap_or(3600),
            source_identity: source_identity.clone(),
            tags,
            transitive,
            policy: &sp,
            federation: Some(federation),
            mfa_time: upstream_mfa,
            chained: false,
            origin_user: None,
        },
        ev,
    )?;

    let op = "AssumeRoleWithWebIdentity";
    let mut w = start(op);
    write_credentials(&mut w, &claims, &token);
    w.leaf("SubjectFromWebIdentityToken", &identity.subject);
    write_assumed_role_user(&mut w, &claims);
    if sp.text.is_some() || !sp.arns.is_empty() || !claims.tags.is_empty() {
        w.leaf("PackedPolicySize", &percent.to_string());
    }
    w.leaf("Provider", &provider.issuer);
    w.leaf("Audience", &identity.audience);
    w.leaf_opt("SourceIdentity", source_identity.as_deref());
    Ok(finish(w, op, req.request_id))
}

/// `GetCallerIdentity`: who signed this request. Never denied for a valid signature, as in AWS.
pub async fn get_caller_identity(
    app: &Arc<App>,
    req: &QueryRequest<'_>,
    ev: &mut AuditEvent,
) -> Result<String, StsError> {
    // `authenticate` has named the principal and access key in the audit event already.
    let caller = auth::authenticate(app, req, ev).await?;
    ev.role_arn = caller.principal.role_arn();
    let op = "GetCallerIdentity";
    let mut w = start(op);
    w.leaf("Arn", caller.principal_arn());
    w.leaf("UserId", &caller.principal.user_id());
    w.leaf("Account", caller.principal.account());
    Ok(finish(w, op, req.request_id))
}

/// `AssumeRole`: a signed-in session takes on another role (role chaining: at most one hour).
pub async fn assume_role(
    app: &Arc<App>,
    req: &QueryRequest<'_>,
    params: &Params,
    ev: &mut AuditEvent,
) -> Result<String, StsError> {
    let role_arn = params.required("RoleArn", "roleArn")?;
    ev.role_arn = Some(role_arn.to_string());
    let session_name = params.required("RoleSessionName", "roleSessionName")?;
    ev.session_name = Some(session_name.to_string());
    params::check_role_arn(role_arn)?;
    params::check_name(session_name, "roleSessionName")?;
    let duration = params::duration(params.get("DurationSeconds")?, 900, 43_200)?;
    let external_id = params.get("ExternalId")?;
    if let Some(x) = external_id {
        params::check_external_id(x)?;
    }
    let requested_si = params.get("SourceIdentity")?;
    if let Some(si) = requested_si {
        params::check_source_identity(si)?;
    }
    let request_pairs = params::tags(params)?;
    let keys: Vec<&str> = request_pairs.iter().map(|(k, _)| k.as_str()).collect();
    let mut tags: Vec<Tag> = request_pairs
        .iter()
        .map(|(k, v)| Tag {
            key: k.clone(),
            value: v.clone(),
        })
        .collect();
    check_tag_set(&tags)?;
    let requested_transitive: Vec<String> = params
        .list("TransitiveTagKeys", "")?
        .into_iter()
        .map(String::from)
        .collect();
    for k in &requested_transitive {
        if !tags.iter().any(|t| &t.key == k) {
            return Err(StsError::invalid_parameter(format!(
                "Transitive tag key {k} is not one of the session tags"
            )));
        }
    }
    let sp = session_policy(params)?;
    let mfa = params::mfa(params)?;

    let caller = auth::authenticate(app, req, ev).await?;
    ev.principal = Some(caller.principal.arn());
    if let Some(f) = &caller.federation {
        ev.provider = Some(f.provider_arn.clone());
        ev.subject = Some(f.subject.clone());
    }
    let admission = gate::admit_session(app, &caller).await.map_err(|e| {
        refused(e, || {
            StsError::access_denied(format!(
                "User: {} is not authorized to perform: sts:AssumeRole on resource: {role_arn}",
                caller.principal.arn()
            ))
        })
    })?;
    let caller = match &mfa {
        Some((serial, code)) => with_mfa(app, caller, serial, code).await?,
        None => caller,
    };
    let denied = || {
        StsError::access_denied(format!(
            "User: {} is not authorized to perform: sts:AssumeRole on resource: {role_arn}",
            caller.principal.arn()
        ))
    };
    let Some(role) = app.config.role(role_arn) else {
        return Err(denied().because(format!("role {role_arn} does not exist")));
    };
    check_policy_arns_exist(app, &sp, role)?;
    // Role chaining: the calling session is itself a role session, capped at one hour. A directory
    // user (long-term key or its session token) gets up to the role's maximum.
    let chained = caller.principal.role_arn().is_some();
    let duration = duration.unwrap_or(3600);
    if chained && duration > CHAINED_MAX_SECONDS {
        return Err(StsError::validation_msg(
            "The requested DurationSeconds exceeds the 1 hour session limit for roles assumed by role chaining.",
        ));
    }
    if duration > i64::from(role.max_session_duration) {
        return Err(StsError::validation_msg(
            "The requested DurationSeconds exceeds the MaxSessionDuration set for this role.",
        ));
    }
    // Transitive tags of the calling session pass on and cannot be overridden.
    let mut transitive = requested_transitive.clone();
    for k in &caller.transitive_tag_keys {
        if let Some(t) = caller.tags.iter().find(|t| &t.key == k) {
            if tags.iter().any(|r| r.key.eq_ignore_ascii_case(k)) {
                return Err(StsError::invalid_parameter(format!(
                    "Tag key {k} is transitive from the calling session and cannot be set again"
                )));
            }
            tags.push(t.clone());
            transitive.push(k.clone());
        }
    }
    check_tag_set(&tags)?;
    let source_identity = match (&caller.source_identity, requested_si) {
        (Some(have), Some(want)) if have != want => {
            return Err(StsError::validation_msg(format!(
                "SourceIdentity cannot be changed once set: the calling session has '{have}'"
            )))
        }
        (Some(have), _) => Some(have.clone()),
        (None, want) => want.map(String::from),
    };
    let percent = packed_percent(&sp, &tags);
    if percent > 100 {
        return Err(StsError::packed_policy_too_large(percent));
    }

    let request_tags: Vec<(String, String)> = tags
        .iter()
        .filter(|t| keys.contains(&t.key.as_str()))
        .map(|t| (t.key.clone(), t.value.clone()))
        .collect();
    // What only this request says, in the context of every check below.
    let mut facts = vec![(
        "sts:RoleSessionName".to_string(),
        ContextValue::Single(session_name.to_string()),
    )];
    if let Some(x) = external_id {
        facts.push(("sts:ExternalId".into(), ContextValue::Single(x.to_string())));
    }
    if let Some(si) = requested_si {
        facts.push((
            "sts:SourceIdentity".into(),
            ContextValue::Single(si.to_string()),
        ));
    }
    facts.extend(request_tag_keys(&request_tags));
    if !requested_transitive.is_empty() {
        facts.push((
            "sts:TransitiveTagKeys".into(),
            ContextValue::Multi(requested_transitive.clone()),
        ));
    }
    let mut actions = vec!["sts:AssumeRole"];
    if !request_tags.is_empty() {
        actions.push("sts:TagSession");
    }
    if requested_si.is_some() {
        actions.push("sts:SetSourceIdentity");
    }
    // The trust policy is the role's resource policy: it combines with the caller's own policies
    // by the rule every resource policy follows (the decision core with the role's account as the
    // resource's). Within one account a statement naming the calling session's ARN is enough on
    // its own; one naming the caller's role ARN (or any principal) is still limited by the
    // caller's permissions boundary and session policies; one naming the account delegates to the
    // caller's policies. Across accounts both the caller's policies and the trust policy must
    // allow. An explicit deny anywhere refuses.
    let resource_account =
        policy::ResourceAccount::of(caller.principal.account(), Some(&role.account));
    for action in actions {
        let mut q = Question::new(&caller, action, &role.arn).with_resource_policy(
            "trust",
            Some(&role.trust_policy),
            resource_account,
        );
        q = q.from_address(req.source_ip, req.secure_transport);
        q.facts = facts.clone();
        let verdict = decide(app, q).await?;
        let ctx = &verdict.context;
        let trust = policy::evaluate_trust(&role.trust_policy, ctx);
        if trust.effect != Effect::Allow {
            let explanation = policy::explain_trust(&role.trust_policy, ctx);
            let reason = format!(
                "trust policy of {} does not allow {action}: {explanation}",
                role.arn
            );
            return Err(denial(
                app,
                &caller,
                ctx,
                trust.effect,
                &explanation,
                denied(),
                reason,
                ev,
            ));
        }
        if !verdict.allowed() {
            let explanation = verdict.explain();
            let reason = format!(
                "the policies of {} do not allow {action} on {}: {explanation}",
                caller.principal.arn(),
                role.arn
            );
            return Err(denial(
                app,
                &caller,
                ctx,
                verdict.decision.effect,
                &explanation,
                denied(),
                reason,
                ev,
            ));
        }
    }

    let (claims, token) = mint(
        app,
        &admission,
        Mint {
            principal: role_session(role, session_name),
            duration,
            source_identity: source_identity.clone(),
            tags,
            transitive,
            policy: &sp,
            federation: caller.federation.clone(),
            mfa_time: caller.mfa_time,
            chained,
            origin_user: caller.origin_user.clone(),
        },
        ev,
    )?;
    let op = "AssumeRole";
    let mut w = start(op);
    write_credentials(&mut w, &claims, &token);
    write_assumed_role_user(&mut w, &claims);
    if sp.text.is_some() || !sp.arns.is_empty() || !claims.tags.is_empty() {
        w.leaf("PackedPolicySize", &percent.to_string());
    }
    w.leaf_opt("SourceIdentity", source_identity.as_deref());
    Ok(finish(w, op, req.request_id))
}

/// The calling directory user, for actions only users (long-term key or their session) may call.
async fn calling_user(
    app: &App,
    caller: &SessionClaims,
) -> Result<crate::idp::local::User, StsError> {
    let user = match (&app.directory, &caller.principal, &caller.origin_user) {
        (Some(d), SessionPrincipal::User { .. }, Some(id)) => d
            .user_by_id(id)
            .await
            .map_err(|e| StsError::directory("reading the directory", &e))?,
        _ => None,
    };
    user.ok_or_else(|| {
        StsError::access_denied(format!(
            "User: {} cannot use an MFA device: it is not a user of the directory",
            caller.principal.arn()
        ))
        .because("MFA was presented by a caller that is not a directory user")
    })
}

/// The caller with MFA: the code must be a valid, unused code of the calling user's device.
async fn with_mfa(
    app: &App,
    caller: Arc<crate::credentials::OpenSession>,
    serial: &str,
    code: &str,
) -> Result<Arc<crate::credentials::OpenSession>, StsError> {
    let user = calling_user(app, &caller).await?;
    let Some(d) = &app.directory else {
        return Err(StsError::internal("no directory"));
    };
    use crate::idp::local::DirectoryError;
    match d.verify_totp(&user, serial, code).await {
        Ok(t) => {
            let mut claims = caller.claims().clone();
            claims.mfa_time = Some(t);
            Ok(Arc::new(crate::credentials::OpenSession::new(claims)))
        }
        Err(e @ (DirectoryError::Denied(_) | DirectoryError::Locked { .. })) => {
            Err(StsError::access_denied(
                "MultiFactorAuthentication failed with invalid MFA one time pass code. ",
            )
            .because(e.to_string()))
        }
        Err(e) => Err(StsError::directory("verifying MFA", &e)),
    }
}

/// `GetSessionToken`: temporary credentials of the calling directory user, with MFA if a code is
/// given. Only long-term credentials may call it.
pub async fn get_session_token(
    app: &Arc<App>,
    req: &QueryRequest<'_>,
    params: &Params,
    ev: &mut AuditEvent,
) -> Result<String, StsError> {
    let duration = params::duration(params.get("DurationSeconds")?, 900, 129_600)?;
    let mfa = params::mfa(params)?;
    let caller = auth::authenticate(app, req, ev).await?;
    if !auth::is_long_term(&caller) {
        return Err(StsError::access_denied(
            "Cannot call GetSessionToken with session credentials",
        )
        .because(format!(
            "{} called with a session token",
            caller.principal.arn()
        )));
    }
    let admission = gate::admit_session(app, &caller).await.map_err(|e| {
        refused(e, || {
            StsError::access_denied(format!(
                "User: {} is not authorized to perform: sts:GetSessionToken",
                caller.principal.arn()
            ))
        })
    })?;
    let caller = match &mfa {
        Some((serial, code)) => with_mfa(app, caller, serial, code).await?,
        None => caller,
    };
    let (claims, token) = mint(
        app,
        &admission,
        Mint {
            principal: caller.principal.clone(),
            duration: duration.unwrap_or(43_200),
            source_identity: None,
            tags: Vec::new(),
            transitive: Vec::new(),
            policy: &SessionPolicy {
                text: None,
                arns: Vec::new(),
                minified_len: 0,
            },
            federation: None,
            mfa_time: caller.mfa_time,
            chained: false,
            origin_user: caller.origin_user.clone(),
        },
        ev,
    )?;
    let op = "GetSessionToken";
    let mut w = start(op);
    write_credentials(&mut w, &claims, &token);
    Ok(finish(w, op, req.request_id))
}

/// `GetFederationToken`: credentials for a federated user whose permissions are the intersection of
/// the calling directory user's policies and the session policies passed (none passed: nothing).
pub async fn get_federation_token(
    app: &Arc<App>,
    req: &QueryRequest<'_>,
    params: &Params,
    ev: &mut AuditEvent,
) -> Result<String, StsError> {
    let name = params.required("Name", "name")?;
    let n = name.chars().count();
    if !(2..=32).contains(&n) {
        return Err(StsError::validation(
            name,
            "name",
            "Member must have length between 2 and 32",
        ));
    }
    params::check_name(name, "name")?;
    ev.session_name = Some(name.to_string());
    let duration = params::duration(params.get("DurationSeconds")?, 900, 129_600)?;
    let sp = session_policy(params)?;
    let tags: Vec<Tag> = params::tags(params)?
        .into_iter()
        .map(|(key, value)| Tag { key, value })
        .collect();
    check_tag_set(&tags)?;
    let caller = auth::authenticate(app, req, ev).await?;
    if !auth::is_long_term(&caller) {
        return Err(StsError::access_denied(
            "Cannot call GetFederationToken with session credentials",
        )
        .because(format!(
            "{} called with a session token",
            caller.principal.arn()
        )));
    }
    let admission = gate::admit_session(app, &caller).await.map_err(|e| {
        refused(e, || {
            StsError::access_denied(format!(
                "User: {} is not authorized to perform: sts:GetFederationToken",
                caller.principal.arn()
            ))
        })
    })?;
    let account = caller.principal.account().to_string();
    for arn in &sp.arns {
        if app
            .config
            .managed_policy(arn)
            .is_none_or(|m| m.account != account)
        {
            return Err(StsError::invalid_parameter(format!(
                "Policy {arn} does not exist or is not attachable."
            ))
            .because(format!(
                "managed policy {arn} is not defined in account {account}"
            )));
        }
    }
    let percent = packed_percent(&sp, &tags);
    if percent > 100 {
        return Err(StsError::packed_policy_too_large(percent));
    }
    let federated = SessionPrincipal::FederatedUser {
        account: account.clone(),
        name: name.to_string(),
    };
    let federated_arn = federated.arn();
    let q = Question::new(&caller, "sts:GetFederationToken", &federated_arn)
        .from_address(req.source_ip, req.secure_transport);
    let verdict = decide(app, q).await?;
    if !verdict.allowed() {
        let reason = verdict.audit_denial(ev);
        return Err(StsError::access_denied(verdict.denial_message()).because(reason));
    }
    let (claims, token) = mint(
        app,
        &admission,
        Mint {
            principal: federated,
            duration: duration.unwrap_or(43_200),
            source_identity: None,
            tags,
            transitive: Vec::new(),
            policy: &sp,
            federation: None,
            mfa_time: None,
            chained: false,
            origin_user: caller.origin_user.clone(),
        },
        ev,
    )?;
    let op = "GetFederationToken";
    let mut w = start(op);
    write_credentials(&mut w, &claims, &token);
    w.open("FederatedUser");
    w.leaf("FederatedUserId", &claims.principal.user_id());
    w.leaf("Arn", &claims.principal.arn());
    w.close("FederatedUser");
    if sp.text.is_some() || !sp.arns.is_empty() || !claims.tags.is_empty() {
        w.leaf("PackedPolicySize", &percent.to_string());
    }
    Ok(finish(w, op, req.request_id))
}

/// Credentials for a permission set in an account, for someone signed in: the assignment must be
/// one the rules give them now, and the role's generated trust policy (with the permission set's
/// MFA requirement) must allow rolegate's sign-in path with this sign-in's MFA. The session lasts
/// the permission set's session duration and is named after the subject. Only for a sign-in the
/// gate admitted just now ([`gate::admit_sign_in`]): its directory groups are as they are now.
pub fn credentials_for_assignment(
    app: &App,
    admitted: &Admitted,
    account: &str,
    permission_set: &str,
    ev: &mut AuditEvent,
) -> Result<(SessionClaims, String), StsError> {
    let denied = || {
        StsError::access_denied(format!(
            "Not authorized to use permission set {permission_set} in account {account}"
        ))
    };
    let who = &admitted.identity;
    let evaluation = crate::mapping::evaluate(
        &app.config,
        &crate::mapping::Subject {
            provider: &who.provider,
            subject: &who.subject,
            claims: &who.claims,
            local_groups: &who.local_groups,
        },
    )
    .map_err(|e| denied().because(e.to_string()))?;
    let Some(assignment) = evaluation
        .assignments
        .iter()
        .find(|a| a.account == account && a.permission_set == permission_set)
    else {
        return Err(denied().because(format!(
            "no assignment rule gives {} at {} permission set {permission_set} in {account}",
            who.subject, who.provider
        )));
    };
    let role = app.config.role(&assignment.role_arn).ok_or_else(|| {
        denied().because(format!("role {} is not provisioned", assignment.role_arn))
    })?;
    let set = app
        .config
        .permission_sets
        .iter()
        .find(|p| p.name == permission_set)
        .ok_or_else(|| denied().because("permission set not configured"))?;
    ev.role_arn = Some(role.arn.clone());
    let provider_arn = format!(
        "arn:aws:iam::{account}:saml-provider/{}",
        crate::config::SIGN_IN_PROVIDER
    );
    let now = app.clock.now();
    let mut ctx = RequestContext::new("sts:AssumeRoleWithSAML", role.arn.clone())
        .with_principal(Principal::federated(provider_arn.clone()));
    add_request_keys(&mut ctx, now, std::net::IpAddr::from([127, 0, 0, 1]), true);
    ctx.remove("aws:SourceIp");
    context::add_mfa_keys(&mut ctx, who.mfa_time, now);
    if policy::evaluate_trust(&role.trust_policy, &ctx).effect != Effect::Allow {
        let explanation = policy::explain_trust(&role.trust_policy, &ctx);
        ev.explanation = serde_json::to_value(&explanation).ok();
        return Err(StsError::access_denied(format!(
            "Permission set {permission_set} requires {}",
            match set.mfa {
                crate::config::MfaRequirement::Within(s) => {
                    format!("MFA within the last {} minutes", s / 60)
                }
                _ => "MFA".to_string(),
            }
        ))
        .because(format!(
            "trust policy of {} does not allow this sign-in: {explanation}",
            role.arn
        )));
    }
    let session_name: String = who
        .subject
        .chars()
        .map(|c| {
            if crate::config::is_iam_name_char(c) {
                c
            } else {
                '_'
            }
        })
        .take(64)
        .collect();
    let session_name = if session_name.chars().count() < 2 {
        format!("{session_name}__")
    } else {
        session_name
    };
    mint(
        app,
        &admitted.admission,
        Mint {
            principal: role_session(role, &session_name),
            duration: i64::from(set.session_seconds),
            source_identity: None,
            tags: Vec::new(),
            transitive: Vec::new(),
            policy: &SessionPolicy {
                text: None,
                arns: Vec::new(),
                minified_len: 0,
            },
            federation: Some(Federation {
                provider_arn,
                key_prefix: who.provider.clone(),
                subject: who.subject.to_string(),
                claims: Some(Value::Object(who.claims.clone())),
            }),
            mfa_time: who.mfa_time,
            chained: false,
            origin_user: who.origin_user.clone(),
        },
        ev,
    )
}

/// `DecodeAuthorizationMessage`: the explanation sealed into an earlier denial, for callers allowed
/// `sts:DecodeAuthorizationMessage` in the same account.
pub async fn decode_authorization_message(
    app: &Arc<App>,
    req: &QueryRequest<'_>,
    params: &Params,
    ev: &mut AuditEvent,
) -> Result<String, StsError> {
    let encoded = params.required("EncodedMessage", "encodedMessage")?;
    if encoded.is_empty() || encoded.len() > 10_240 {
        return Err(StsError::validation(
            "…",
            "encodedMessage",
            "Member must have length between 1 and 10240",
        ));
    }
    let caller = auth::authenticate(app, req, ev).await?;
    ev.principal = Some(caller.principal.arn());
    let q = Question::new(&caller, "sts:DecodeAuthorizationMessage", "*")
        .from_address(req.source_ip, req.secure_transport);
    let verdict = decide(app, q).await?;
    if !verdict.allowed() {
        let reason = verdict.audit_denial(ev);
        return Err(StsError::access_denied(format!(
            "User: {} is not authorized to perform: sts:DecodeAuthorizationMessage",
            caller.principal.arn()
        ))
        .because(reason));
    }
    let plain = app
        .keys
        .unseal_bytes(AUTH_MESSAGE_PURPOSE, encoded.trim())
        .map_err(|e| StsError::invalid_authorization_message(e.to_string()))?;
    let doc: Value = serde_json::from_slice(&plain)
        .map_err(|e| StsError::invalid_authorization_message(e.to_string()))?;
    if doc.get("account").and_then(Value::as_str) != Some(caller.principal.account()) {
        return Err(StsError::invalid_authorization_message(
            "the message was issued in another account",
        ));
    }
    let message = doc.get("message").cloned().unwrap_or(Value::Null);
    let op = "DecodeAuthorizationMessage";
    let mut w = start(op);
    w.leaf("DecodedMessage", &message.to_string());
    Ok(finish(w, op, req.request_id))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn provider(trusted: &[&str]) -> crate::config::OidcProvider {
        crate::config::OidcProvider {
            issuer: "https://idp.example.com".into(),
            key_prefix: "idp.example.com".into(),
            audiences: vec!["a".into()],
            jwks: crate::config::JwksSource::Discovery,
            algorithms: vec![],
            leeway_seconds: 0,
            allow_http: false,
            accounts: None,
            name: "idp".into(),
            groups_claim: "groups".into(),
            groups_delimiter: None,
            email_claim: "email".into(),
            email_always_verified: false,
            mfa_amr: trusted.iter().map(|s| s.to_string()).collect(),
            login: None,
        }
    }

    #[test]
    fn upstream_mfa_counts_only_for_trusted_amr_values() {
        let claims = |v: Value| v.as_object().unwrap().clone();
        let cases = [
            (
                &["mfa"][..],
                json!({"amr": ["pwd", "mfa"], "auth_time": 900}),
                Some(900),
            ),
            (&["mfa"][..], json!({"amr": ["pwd", "mfa"]}), Some(1000)),
            (&["mfa"][..], json!({"amr": "mfa"}), Some(1000)),
            (&["mfa"][..], json!({"amr": ["pwd"]}), None),
            (&["mfa"][..], json!({}), None),
            // auth_time after iat is not believed.
            (
                &["mfa"][..],
                json!({"amr": ["mfa"], "auth_time": 2000}),
                Some(1000),
            ),
            // Nothing trusted: the provider's word does not count.
            (&[][..], json!({"amr": ["mfa"], "auth_time": 900}), None),
            (&["hwk"][..], json!({"amr": ["MFA"]}), None),
        ];
        for (trusted, c, want) in cases {
            assert_eq!(
                upstream_mfa_time(&provider(trusted), &claims(c.clone()), 1000),
                want,
                "{trusted:?} {c}"
            );
        }
    }

    const STEP_UP: &str = r#"
[server]
listen = "127.0.0.1:0"
public_url = "http://127.0.0.1:8080"
[store]
kind = "memory"
[[accounts]]
id = "111122223333"
name = "main"
[[permission_sets]]
name = "Breakglass"
mfa = "required"
mfa_max_age_minutes = 15
[[permission_sets.policies]]
name = "all"
document = '{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"*","Resource":"*"}]}'
[[assignment_rules]]
provider = "local"
permission_set = "Breakglass"
accounts = ["111122223333"]
local_group = "oncall"
"#;

    #[tokio::test]
    async fn step_up_mfa_must_be_recent_for_the_permission_set() {
        use crate::clock::FixedClock;
        let config = crate::config::Config::from_str_with_env(
            std::path::Path::new("/etc/rolegate.toml"),
            STEP_UP,
            &[],
        )
        .unwrap();
        let clock = FixedClock::new(DateTime::from_timestamp(1_700_000_000, 0).unwrap());
        let app = App::build(
            config,
            Arc::new(crate::store::MemoryStore::new()),
            Arc::new(clock.clone()),
        )
        .await
        .unwrap();
        let d = app.directory.clone().unwrap();
        for (name, group) in [("ana", "oncall"), ("bo", "dev")] {
            d.create_user(name, None).await.unwrap();
            if d.group(group).await.is_err() {
                d.create_group(group, None).await.unwrap();
            }
            d.add_user_to_group(name, group).await.unwrap();
        }
        let who = |name: &str, mfa_time: Option<i64>| {
            let d = d.clone();
            let name = name.to_string();
            async move {
                let u = d.user(&name).await.unwrap();
                crate::authz::gate::SignedInIdentity {
                    provider: "local".into(),
                    subject: name.clone(),
                    claims: json!({"sub": name}).as_object().unwrap().clone(),
                    mfa_time,
                    origin_user: Some(u.user_id),
                    // A stale snapshot: the gate reads the groups again.
                    local_groups: vec!["oncall".into()],
                    signed_in_at: 1_700_000_000,
                }
            }
        };
        let app2 = app.clone();
        let issue = |w: crate::authz::gate::SignedInIdentity| {
            let app = app2.clone();
            async move {
                let admitted = gate::admit_sign_in(&app, &w).await.unwrap();
                let mut ev = AuditEvent::default();
                credentials_for_assignment(&app, &admitted, "111122223333", "Breakglass", &mut ev)
            }
        };
        let fresh = who("ana", Some(1_700_000_000 - 60)).await;
        let (c, _) = issue(fresh.clone())
            .await
            .expect("MFA a minute ago is recent enough");
        assert_eq!(
            c.principal.arn(),
            "arn:aws:sts::111122223333:assumed-role/RolegateSSO_Breakglass/ana"
        );
        assert_eq!(c.expires_at - c.issued_at, 3600);
        assert_eq!(c.mfa_time, Some(1_700_000_000 - 60));

        clock.advance(chrono::Duration::minutes(15));
        let e = issue(fresh)
            .await
            .expect_err("MFA 16 minutes ago is too old");
        assert_eq!(e.code, "AccessDenied");
        assert!(
            e.message.contains("within the last 15 minutes"),
            "{}",
            e.message
        );
        assert!(e.reason.contains("aws:MultiFactorAuthAge"), "{}", e.reason);

        let none = who("ana", None).await;
        assert!(issue(none).await.is_err(), "no MFA at all");
        // bo's snapshot says oncall; the directory says dev.
        let outsider = who("bo", Some(1_700_000_000 + 900)).await;
        let e = issue(outsider).await.expect_err("not assigned");
        assert!(e.reason.contains("no assignment rule"), "{}", e.reason);
    }
}
