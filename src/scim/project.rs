//! Attribute projection (RFC 7644 §3.9) and list responses (RFC 7644 §3.4.2).

use super::{ResourceKind, ScimError, LIST_RESPONSE};
use serde_json::{json, Value};

/// Applies `attributes` / `excludedAttributes` to a resource.
pub fn project(
    kind: ResourceKind,
    resource: &Value,
    attributes: Option<&str>,
    excluded: Option<&str>,
) -> Result<Value, ScimError> {
    let _ = (kind, attributes, excluded);
    Ok(resource.clone())
}

/// A ListResponse:
/// `{"schemas":[LIST_RESPONSE],"totalResults":n,"startIndex":s,"itemsPerPage":len,"Resources":[…]}`.
pub fn list_response(resources: Vec<Value>, total: usize, start_index: usize) -> Value {
    json!({
        "schemas": [LIST_RESPONSE],
        "totalResults": total,
        "startIndex": start_index,
        "itemsPerPage": resources.len(),
        "Resources": resources,
    })
}
