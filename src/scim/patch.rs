//! PATCH (RFC 7644 §3.5.2) and the dialects Okta and Entra ID send.

use super::{ResourceKind, ScimError, ScimType};
use serde_json::Value;

/// Applies a PatchOp message to a stored resource and returns the new resource.
pub fn apply(kind: ResourceKind, resource: &Value, message: &Value) -> Result<Value, ScimError> {
    let _ = (kind, resource, message);
    Err(ScimError::bad_request(
        ScimType::InvalidSyntax,
        "PATCH is not supported yet",
    ))
}
