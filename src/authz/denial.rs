//! Denials explained to the caller: the sealed message an `AccessDenied` carries, which the
//! caller's own account can open with `sts:DecodeAuthorizationMessage`.

use crate::app::App;
use crate::credentials::SessionClaims;
use crate::policy::{ContextValue, RequestContext};
use serde_json::{json, Value};

/// Sealing purpose of encoded authorization messages.
pub const AUTH_MESSAGE_PURPOSE: &[u8] = b"rolegate authorization message v1";

/// A sealed message explaining a denial, for `DecodeAuthorizationMessage`.
pub fn encode_denial(
    app: &App,
    caller: &SessionClaims,
    ctx: &RequestContext,
    explicit: bool,
    explanation: &Value,
) -> String {
    let conditions: Vec<Value> = ctx
        .keys()
        .map(|(k, v)| {
            let values: Vec<Value> = match v {
                ContextValue::Single(s) => vec![json!({ "value": s })],
                ContextValue::Multi(m) => m.iter().map(|s| json!({ "value": s })).collect(),
            };
            json!({ "key": k, "values": { "items": values } })
        })
        .collect();
    let message = json!({
        "allowed": false,
        "explicitDeny": explicit,
        "matchedStatements": { "items": applied_statements(explanation) },
        "failures": { "items": [] },
        "context": {
            "principal": { "id": caller.principal.user_id(), "arn": caller.principal.arn() },
            "action": ctx.action(),
            "resource": ctx.resource(),
            "conditions": { "items": conditions },
        },
        "explanation": explanation,
    });
    let sealed = json!({ "account": caller.principal.account(), "message": message });
    app.keys
        .seal_bytes(AUTH_MESSAGE_PURPOSE, sealed.to_string().as_bytes())
        .unwrap_or_default()
}

/// The statements of an explanation that applied, as AWS lists matched statements.
fn applied_statements(explanation: &Value) -> Vec<Value> {
    let mut out = Vec::new();
    for p in explanation["policies"].as_array().into_iter().flatten() {
        for st in p["statements"].as_array().into_iter().flatten() {
            if st["applies"] == json!(true) {
                out.push(json!({
                    "policy": p["policy"],
                    "scope": p["scope"],
                    "sid": st["sid"],
                    "index": st["index"],
                    "effect": st["effect"],
                }));
            }
        }
    }
    out
}
