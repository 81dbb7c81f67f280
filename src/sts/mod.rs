//! The STS actions: dispatch on `Action` (named with AWS's words in [`StsAction`]), one module an
//! action with its XML response. Each validates its parameters first, then authenticates, then asks
//! the policy engine, then mints (`mint`); any refusal leaves nothing behind. The two federated
//! sign-ins (web identity, [`saml`]) share one path (`federated`); the portal's and SSO's
//! credentials for a permission set are [`credentials_for_assignment`]. The Query API STS shares
//! with IAM (request, parameters, XML writer, [`QueryError`]) is [`crate::query`]; the front door
//! that routes a request to STS or IAM is `web::query`. Knows nothing of HTML or cookies.

mod assume_role;
mod caller;
mod caller_identity;
mod decode;
mod federated;
mod federation_token;
#[cfg(test)]
mod long_term_key_tests;
mod mint;
mod permission_set;
pub mod saml;
#[cfg(test)]
mod saml_tests;
mod session;
mod session_token;
mod web_identity;
#[cfg(test)]
mod web_identity_tests;

pub use permission_set::{credentials_for_assignment, sign_in_provider_arn};

use crate::app::App;
use crate::audit::AuditEvent;
use crate::query::params::Params;
use crate::query::{QueryError, QueryRequest};
use std::sync::Arc;

/// The STS API version.
pub const API_VERSION: &str = "2011-06-15";

/// The actions rolegate's STS answers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StsAction {
    /// Unsigned: an OIDC token for credentials.
    AssumeRoleWithWebIdentity,
    /// Signed: who am I.
    GetCallerIdentity,
    /// Signed: a session of another role.
    AssumeRole,
    /// Signed: the explanation behind a denial.
    DecodeAuthorizationMessage,
    /// Signed with a directory user's long-term key: the user's own temporary credentials.
    GetSessionToken,
    /// Signed with a directory user's long-term key: credentials of a federated user.
    GetFederationToken,
    /// Unsigned: a SAML assertion for credentials.
    AssumeRoleWithSAML,
}

impl StsAction {
    /// Parses an `Action` value (case-sensitive, as AWS).
    pub fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "AssumeRoleWithWebIdentity" => Self::AssumeRoleWithWebIdentity,
            "GetCallerIdentity" => Self::GetCallerIdentity,
            "AssumeRole" => Self::AssumeRole,
            "DecodeAuthorizationMessage" => Self::DecodeAuthorizationMessage,
            "GetSessionToken" => Self::GetSessionToken,
            "GetFederationToken" => Self::GetFederationToken,
            "AssumeRoleWithSAML" => Self::AssumeRoleWithSAML,
            _ => return None,
        })
    }

    /// AWS's name.
    pub fn name(self) -> &'static str {
        match self {
            Self::AssumeRoleWithWebIdentity => "AssumeRoleWithWebIdentity",
            Self::GetCallerIdentity => "GetCallerIdentity",
            Self::AssumeRole => "AssumeRole",
            Self::DecodeAuthorizationMessage => "DecodeAuthorizationMessage",
            Self::GetSessionToken => "GetSessionToken",
            Self::GetFederationToken => "GetFederationToken",
            Self::AssumeRoleWithSAML => "AssumeRoleWithSAML",
        }
    }
}

/// Answers one STS request whose parameters are parsed (the Query front door, `web::query`, has
/// decided it is STS's).
pub async fn dispatch(
    app: &Arc<App>,
    req: &QueryRequest<'_>,
    params: &Params,
    ev: &mut AuditEvent,
) -> Result<String, QueryError> {
    let action = params.action(API_VERSION, StsAction::parse)?;
    if let Some(v) = params.get("Version")? {
        if v != API_VERSION {
            let shown: String = v.chars().take(32).collect();
            return Err(QueryError::invalid_action(format!(
                "Could not find operation {} for version {shown}",
                action.name()
            )));
        }
    }
    match action {
        StsAction::AssumeRoleWithWebIdentity => {
            web_identity::assume_role_with_web_identity(app, req, params, ev).await
        }
        StsAction::GetCallerIdentity => caller_identity::get_caller_identity(app, req, ev).await,
        StsAction::AssumeRole => assume_role::assume_role(app, req, params, ev).await,
        StsAction::DecodeAuthorizationMessage => {
            decode::decode_authorization_message(app, req, params, ev).await
        }
        StsAction::GetSessionToken => session_token::get_session_token(app, req, params, ev).await,
        StsAction::GetFederationToken => {
            federation_token::get_federation_token(app, req, params, ev).await
        }
        StsAction::AssumeRoleWithSAML => saml::assume_role_with_saml(app, req, params, ev).await,
    }
}

/// `RoleArn`, required and recorded on the event (checked once the other required members are read).
fn requested_role<'p>(params: &'p Params, ev: &mut AuditEvent) -> Result<&'p str, QueryError> {
    let role_arn = params.required("RoleArn", "roleArn")?;
    ev.role_arn = Some(role_arn.to_string());
    Ok(role_arn)
}

/// `RoleArn` and `RoleSessionName`, both required and recorded on the event (checked once the other
/// required members are read).
fn requested_role_session<'p>(
    params: &'p Params,
    ev: &mut AuditEvent,
) -> Result<(&'p str, &'p str), QueryError> {
    let role_arn = requested_role(params, ev)?;
    let session_name = params.required("RoleSessionName", "roleSessionName")?;
    ev.session_name = Some(session_name.to_string());
    Ok((role_arn, session_name))
}
