//! The schemas rolegate serves (RFC 7643): core User with the enterprise extension, and Group;
//! validation of request bodies against them and the discovery documents.

use super::{ResourceKind, ScimError, ScimType};
use serde_json::{json, Value};

/// Validates and normalises a POST/PUT body into the stored form.
pub fn validate(kind: ResourceKind, body: &Value) -> Result<Value, ScimError> {
    let _ = kind;
    match body {
        Value::Object(_) => Ok(body.clone()),
        _ => Err(ScimError::bad_request(
            ScimType::InvalidSyntax,
            "the body is not a JSON object",
        )),
    }
}

/// The ServiceProviderConfig document.
pub fn service_provider_config(base: &str) -> Value {
    json!({
        "schemas": ["urn:ietf:params:scim:schemas:core:2.0:ServiceProviderConfig"],
        "meta": {"resourceType": "ServiceProviderConfig", "location": format!("{base}/ServiceProviderConfig")},
    })
}

/// The Schemas list.
pub fn schemas(base: &str) -> Value {
    let _ = base;
    super::list_response(Vec::new(), 0, 1)
}

/// One schema by its id.
pub fn schema(base: &str, id: &str) -> Option<Value> {
    let _ = (base, id);
    None
}

/// The ResourceTypes list.
pub fn resource_types(base: &str) -> Value {
    let _ = base;
    super::list_response(Vec::new(), 0, 1)
}

/// One resource type by its name.
pub fn resource_type(base: &str, name: &str) -> Option<Value> {
    let _ = (base, name);
    None
}
