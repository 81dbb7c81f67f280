//! `DecodeAuthorizationMessage`.

use super::mint::{finish, start};
use crate::app::App;
use crate::audit::AuditEvent;
use crate::authn as auth;
use crate::authz::decide::{decide, Question};
use crate::authz::denial::AUTH_MESSAGE_PURPOSE;
use crate::query::params::Params;
use crate::query::{QueryError, QueryRequest};
use serde_json::Value;
use std::sync::Arc;

/// `DecodeAuthorizationMessage`: the explanation sealed into an earlier denial, for callers allowed
/// `sts:DecodeAuthorizationMessage` in the same account.
pub async fn decode_authorization_message(
    app: &Arc<App>,
    req: &QueryRequest<'_>,
    params: &Params,
    ev: &mut AuditEvent,
) -> Result<String, QueryError> {
    let encoded = params.required("EncodedMessage", "encodedMessage")?;
    if encoded.is_empty() || encoded.len() > 10_240 {
        return Err(QueryError::validation(
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
        return Err(QueryError::access_denied(format!(
            "User: {} is not authorized to perform: sts:DecodeAuthorizationMessage",
            caller.principal.arn()
        ))
        .because(reason));
    }
    let plain = app
        .keys
        .unseal_bytes(AUTH_MESSAGE_PURPOSE, encoded.trim())
        .map_err(|e| QueryError::invalid_authorization_message(e.to_string()))?;
    let doc: Value = serde_json::from_slice(&plain)
        .map_err(|e| QueryError::invalid_authorization_message(e.to_string()))?;
    if doc.get("account").and_then(Value::as_str) != Some(caller.principal.account()) {
        return Err(QueryError::invalid_authorization_message(
            "the message was issued in another account",
        ));
    }
    let message = doc.get("message").cloned().unwrap_or(Value::Null);
    let op = "DecodeAuthorizationMessage";
    let mut w = start(op);
    w.leaf("DecodedMessage", &message.to_string());
    Ok(finish(w, op, req.request_id))
}
