//! SCIM 2.0, the protocol: the core User schema with the enterprise extension and the Group schema
//! (RFC 7643), filters, PATCH, attribute projection, list responses, errors and the discovery
//! documents (RFC 7644), including the dialects Okta and Entra ID speak.
//!
//! A leaf: pure functions over `serde_json::Value`, no I/O. It knows nothing of the directory, the
//! store, HTTP or configuration; the provisioning edge stores what [`schema::validate`] and
//! [`patch::apply`] return and answers with what [`project::project`] and [`list_response`] build.

pub mod definitions;
pub mod error;
pub mod filter;
pub mod patch;
pub mod project;
pub mod schema;

mod discovery;
mod eval;
mod path;

pub use error::{ScimError, ScimType};
pub use filter::Filter;
pub use project::list_response;

/// The SCIM media type (RFC 7644 §3.1).
pub const MEDIA_TYPE: &str = "application/scim+json";
/// The core User schema (RFC 7643 §4.1).
pub const USER_SCHEMA: &str = "urn:ietf:params:scim:schemas:core:2.0:User";
/// The core Group schema (RFC 7643 §4.2).
pub const GROUP_SCHEMA: &str = "urn:ietf:params:scim:schemas:core:2.0:Group";
/// The enterprise User extension (RFC 7643 §4.3).
pub const ENTERPRISE_USER_SCHEMA: &str =
    "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User";
/// The ListResponse message (RFC 7644 §3.4.2).
pub const LIST_RESPONSE: &str = "urn:ietf:params:scim:api:messages:2.0:ListResponse";
/// The PatchOp message (RFC 7644 §3.5.2).
pub const PATCH_OP: &str = "urn:ietf:params:scim:api:messages:2.0:PatchOp";
/// The Error message (RFC 7644 §3.12).
pub const ERROR_SCHEMA: &str = "urn:ietf:params:scim:api:messages:2.0:Error";

/// A kind of resource rolegate provisions.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ResourceKind {
    /// A person (`/Users`).
    User,
    /// A group (`/Groups`).
    Group,
}

impl ResourceKind {
    /// The endpoint under the SCIM base: `Users` or `Groups`.
    pub fn endpoint(self) -> &'static str {
        match self {
            ResourceKind::User => "Users",
            ResourceKind::Group => "Groups",
        }
    }

    /// The resource type name, as in `meta.resourceType`: `User` or `Group`.
    pub fn name(self) -> &'static str {
        match self {
            ResourceKind::User => "User",
            ResourceKind::Group => "Group",
        }
    }

    /// The core schema URN of this kind.
    pub fn schema(self) -> &'static str {
        match self {
            ResourceKind::User => USER_SCHEMA,
            ResourceKind::Group => GROUP_SCHEMA,
        }
    }

    /// The extension schema URNs this kind may carry.
    pub fn extensions(self) -> &'static [&'static str] {
        match self {
            ResourceKind::User => &[ENTERPRISE_USER_SCHEMA],
            ResourceKind::Group => &[],
        }
    }
}

#[cfg(test)]
mod filter_tests;
#[cfg(test)]
mod patch_tests;
#[cfg(test)]
mod project_tests;
#[cfg(test)]
mod schema_tests;
