//! SCIM errors (RFC 7644 §3.12): an HTTP status, an optional `scimType` and a detail, rendered as
//! the Error message. Every function of this module that refuses input says here exactly why; the
//! edge sends the body as it is (the detail names the attribute or the filter position, never a
//! stored value).

use super::ERROR_SCHEMA;
use serde_json::{json, Value};
use std::fmt;

/// The `scimType` keywords of RFC 7644 Table 9.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ScimType {
    /// The filter is malformed or names something that cannot be filtered.
    InvalidFilter,
    /// The filter yields more results than the server will answer.
    TooMany,
    /// A unique attribute's value is already taken.
    Uniqueness,
    /// An attempt to modify a readOnly or immutable attribute.
    Mutability,
    /// The request body is not a valid message of its schema.
    InvalidSyntax,
    /// The `path` of a PATCH operation is malformed or names nothing modifiable.
    InvalidPath,
    /// A PATCH path's value filter selects nothing (or a remove has no path).
    NoTarget,
    /// A value has the wrong type or is otherwise unacceptable (or a required value is missing).
    InvalidValue,
    /// The request's SCIM protocol version is not supported.
    InvalidVers,
    /// The request holds sensitive information in the URL (e.g. a filter on a password).
    Sensitive,
}

impl ScimType {
    /// The keyword as sent in `scimType`.
    pub fn as_str(self) -> &'static str {
        match self {
            ScimType::InvalidFilter => "invalidFilter",
            ScimType::TooMany => "tooMany",
            ScimType::Uniqueness => "uniqueness",
            ScimType::Mutability => "mutability",
            ScimType::InvalidSyntax => "invalidSyntax",
            ScimType::InvalidPath => "invalidPath",
            ScimType::NoTarget => "noTarget",
            ScimType::InvalidValue => "invalidValue",
            ScimType::InvalidVers => "invalidVers",
            ScimType::Sensitive => "sensitive",
        }
    }
}

impl fmt::Display for ScimType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A SCIM error: what the edge answers with, in the Error schema.
#[derive(Debug, Clone, PartialEq)]
pub struct ScimError {
    /// The HTTP status.
    pub status: u16,
    /// The `scimType` (only with 400, and 409 uniqueness).
    pub scim_type: Option<ScimType>,
    /// A human-readable reason.
    pub detail: String,
}

impl ScimError {
    fn new(status: u16, scim_type: Option<ScimType>, detail: impl Into<String>) -> Self {
        ScimError {
            status,
            scim_type,
            detail: detail.into(),
        }
    }

    /// 400 with a `scimType`.
    pub fn bad_request(t: ScimType, detail: impl Into<String>) -> Self {
        Self::new(400, Some(t), detail)
    }

    /// 404: the resource (or endpoint) does not exist.
    pub fn not_found(detail: impl Into<String>) -> Self {
        Self::new(404, None, detail)
    }

    /// 409 `uniqueness`: a unique value is taken.
    pub fn conflict(detail: impl Into<String>) -> Self {
        Self::new(409, Some(ScimType::Uniqueness), detail)
    }

    /// 412: the `If-Match` version is not the current one.
    pub fn precondition_failed(detail: impl Into<String>) -> Self {
        Self::new(412, None, detail)
    }

    /// 401: no or a wrong bearer token.
    pub fn unauthorized(detail: impl Into<String>) -> Self {
        Self::new(401, None, detail)
    }

    /// 403: the client may not do this.
    pub fn forbidden(detail: impl Into<String>) -> Self {
        Self::new(403, None, detail)
    }

    /// 413: the request body is too large.
    pub fn too_large(detail: impl Into<String>) -> Self {
        Self::new(413, None, detail)
    }

    /// 429: too many requests.
    pub fn too_many_requests(detail: impl Into<String>) -> Self {
        Self::new(429, None, detail)
    }

    /// 500: the server failed.
    pub fn internal(detail: impl Into<String>) -> Self {
        Self::new(500, None, detail)
    }

    /// The body in the SCIM Error schema:
    /// `{"schemas":[ERROR_SCHEMA],"status":"400","scimType":"invalidFilter","detail":"…"}`
    /// (`status` a string, as RFC 7644 §3.12 shows it; no `scimType` when there is none).
    pub fn body(&self) -> Value {
        let mut v = json!({
            "schemas": [ERROR_SCHEMA],
            "status": self.status.to_string(),
            "detail": self.detail,
        });
        if let (Some(t), Some(o)) = (self.scim_type, v.as_object_mut()) {
            o.insert("scimType".into(), Value::String(t.as_str().into()));
        }
        v
    }
}

impl fmt::Display for ScimError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.scim_type {
            Some(t) => write!(f, "{} {}: {}", self.status, t, self.detail),
            None => write!(f, "{}: {}", self.status, self.detail),
        }
    }
}

impl std::error::Error for ScimError {}
