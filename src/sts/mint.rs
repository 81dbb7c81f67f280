//! Minting a session for an identity the gate admitted, and the XML every action that answers
//! with credentials writes.

use super::session::SessionPolicy;
use crate::app::App;
use crate::audit::AuditEvent;
use crate::authz::gate::{Admission, Refusal};
use crate::config::Role;
use crate::credentials::{self, Federation, SessionClaims, SessionPrincipal, Tag};
use crate::query::xml::XmlWriter;
use crate::query::QueryError;
use chrono::{DateTime, Utc};

pub(super) fn iso(t: i64) -> String {
    crate::clock::rfc3339(
        &DateTime::<Utc>::from_timestamp(t, 0).unwrap_or_default(),
        false,
    )
}

pub(super) fn internal<E: std::fmt::Display>(what: &'static str) -> impl Fn(E) -> QueryError {
    move |e| QueryError::internal(format!("{what}: {e}"))
}

/// The gate's refusal on the wire: `ServiceUnavailable` when the directory could not be read,
/// else `denied` with the gate's precise reason for the audit log.
pub(super) fn refused(e: Refusal, denied: impl FnOnce() -> QueryError) -> QueryError {
    match &e {
        Refusal::Directory(d) => QueryError::directory("the mint gate reading the directory", d),
        _ => denied().because(format!("mint gate: {e}")),
    }
}

pub(super) fn write_credentials(w: &mut XmlWriter, c: &SessionClaims, token: &str) {
    w.open("Credentials");
    w.leaf("AccessKeyId", &c.access_key_id);
    w.leaf("SecretAccessKey", &c.secret_access_key);
    w.leaf("SessionToken", token);
    w.leaf("Expiration", &iso(c.expires_at));
    w.close("Credentials");
}

/// `PackedPolicySize`, when the session has a session policy or tags.
pub(super) fn write_packed_size(
    w: &mut XmlWriter,
    sp: &SessionPolicy,
    c: &SessionClaims,
    percent: u32,
) {
    if sp.is_some() || !c.tags.is_empty() {
        w.leaf("PackedPolicySize", &percent.to_string());
    }
}

pub(super) fn write_assumed_role_user(w: &mut XmlWriter, c: &SessionClaims) {
    w.open("AssumedRoleUser");
    w.leaf("AssumedRoleId", &c.principal.user_id());
    w.leaf("Arn", &c.principal.arn());
    w.close("AssumedRoleUser");
}

pub(super) fn finish(mut w: XmlWriter, op: &str, request_id: &str) -> String {
    w.close_suffixed(op, "Result");
    w.open("ResponseMetadata");
    w.leaf("RequestId", request_id);
    w.close("ResponseMetadata");
    w.close_suffixed(op, "Response");
    w.finish()
}

pub(super) fn start(op: &str) -> XmlWriter {
    let mut w = XmlWriter::new();
    w.open_ns_suffixed(op, "Response");
    w.open_suffixed(op, "Result");
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
    /// The sessions the new one is chained from ([`SessionClaims::parents`]).
    pub(super) parents: Vec<String>,
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
) -> Result<(SessionClaims, String), QueryError> {
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
        parents: m.parents,
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
