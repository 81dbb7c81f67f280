//! What a session may do: the policies that apply to a session (its role's inline and managed
//! policies, the role's permissions boundary, the session's inline and managed session policies)
//! and the request context a session's requests are judged in. Shared by STS, the authorization
//! API for downstream services and IAM's policy simulator. Knows nothing of HTTP or XML.

pub mod api;
pub mod context;
pub mod decide;
#[cfg(test)]
mod decide_tests;
pub mod denial;
pub mod gate;
#[cfg(test)]
mod gate_tests;

pub use denial::encode_denial;

use crate::app::App;
use crate::config::Config;
use crate::credentials::{SessionClaims, SessionPrincipal};
use crate::idp::local::{PolicySource, User};
use crate::policy::{Policy, PolicyCache, PolicyKind, PolicySet};
use std::sync::Arc;

/// Label of the inline session policy in decisions and explanations.
pub const INLINE_SESSION_POLICY: &str = "session policy";

/// Why a session's policies could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum PolicyLoadError {
    /// The directory (and so its store) could not be read.
    #[error("reading the directory: {0}")]
    Directory(#[from] crate::idp::local::DirectoryError),
    /// A sealed or stored policy does not parse.
    #[error("{what} does not parse: {error}")]
    Invalid {
        /// Which policy.
        what: String,
        /// Why not.
        error: crate::policy::PolicyError,
    },
}

impl PolicyLoadError {
    /// Whether retrying may help: the store behind the directory is unreachable or busy.
    pub fn unavailable(&self) -> bool {
        use crate::store::StoreError;
        matches!(
            self,
            Self::Directory(crate::idp::local::DirectoryError::Store(
                StoreError::Unavailable(_) | StoreError::Locked(_)
            ))
        )
    }
}

impl From<PolicyLoadError> for crate::query::QueryError {
    /// `ServiceUnavailable` when the store is, `InternalFailure` otherwise.
    fn from(e: PolicyLoadError) -> Self {
        match e {
            PolicyLoadError::Directory(d) => Self::directory("loading the caller's policies", &d),
            e @ PolicyLoadError::Invalid { .. } => Self::internal(e.to_string()),
        }
    }
}

/// Every policy that decides what one session may do.
#[derive(Debug, Clone, Default)]
pub struct SessionPolicies {
    /// Identity policies: the role's (inline, then managed), or a directory user's and its groups'.
    /// Empty when the role or user no longer exists (nothing is allowed).
    pub identity: Vec<(String, Arc<Policy>)>,
    /// The role's permissions boundary.
    pub boundary: Option<(String, Arc<Policy>)>,
    /// The session policies (inline first, then `PolicyArns` in order); `None` without any.
    pub session: Option<Vec<(String, Arc<Policy>)>>,
}

impl SessionPolicies {
    /// The policies of the role session `c` under the current configuration. A managed session
    /// policy that no longer exists contributes nothing (so a session whose only session policy
    /// was removed is allowed nothing, never more). Sessions of directory users need the directory:
    /// see [`SessionPolicies::for_session`]; here they get no identity policies.
    pub fn load(
        config: &Config,
        cache: &PolicyCache,
        c: &SessionClaims,
    ) -> Result<Self, PolicyLoadError> {
        let role = c.principal.role_arn().and_then(|arn| config.role(&arn));
        let mut out = Self::default();
        if let Some(r) = role {
            out.identity = r
                .identity_policies()
                .map(|(l, p)| (l.to_string(), Arc::clone(p)))
                .collect();
            out.boundary = r.permissions_boundary.clone();
        }
        let mut session = Vec::new();
        if let Some(t) = &c.session_policy {
            let p = cache
                .session_policy(t)
                .map_err(|error| PolicyLoadError::Invalid {
                    what: "sealed session policy".into(),
                    error,
                })?;
            session.push((INLINE_SESSION_POLICY.to_string(), p));
        }
        for arn in &c.policy_arns {
            if let Some(m) = config.managed_policy(arn) {
                session.push((arn.clone(), Arc::clone(&m.policy)));
            }
        }
        // A federated user has exactly the permissions its session policies allow of its user's:
        // without a session policy, nothing.
        let federated = matches!(c.principal, SessionPrincipal::FederatedUser { .. });
        let has_session = federated || c.session_policy.is_some() || !c.policy_arns.is_empty();
        out.session = has_session.then_some(session);
        Ok(out)
    }

    /// The policies of any session: role sessions from the configuration, sessions of directory
    /// users (and their federated users) from the directory as it is now.
    pub async fn for_session(app: &App, c: &SessionClaims) -> Result<Self, PolicyLoadError> {
        let mut out = Self::load(&app.config, &app.policy_cache, c)?;
        if c.principal.role_arn().is_none() {
            let user = match (&app.directory, &c.origin_user) {
                (Some(d), Some(id)) => d.user_by_id(id).await?,
                _ => None,
            };
            if let Some(u) = user {
                out.identity = Self::of_user(app, &u).await?;
            }
        }
        Ok(out)
    }

    /// A directory user's identity policies (its own and its groups'), parsed.
    pub async fn of_user(
        app: &App,
        user: &User,
    ) -> Result<Vec<(String, Arc<Policy>)>, PolicyLoadError> {
        let Some(d) = &app.directory else {
            return Ok(Vec::new());
        };
        let mut out = Vec::new();
        for source in d.policies_of(user).await? {
            match source {
                PolicySource::Inline { label, document } => {
                    let p = app
                        .policy_cache
                        .parsed(&document, PolicyKind::Inline)
                        .map_err(|error| PolicyLoadError::Invalid {
                            what: label.clone(),
                            error,
                        })?;
                    out.push((label, p));
                }
                PolicySource::Managed(arn) => {
                    // A managed policy removed from the configuration grants nothing.
                    if let Some(m) = app.config.managed_policy(&arn) {
                        out.push((arn, Arc::clone(&m.policy)));
                    }
                }
            }
        }
        Ok(out)
    }

    /// The full set: identity policies ∩ session policies ∩ boundary.
    pub fn set(&self) -> PolicySet<'_> {
        let mut set = PolicySet::default();
        for (label, p) in &self.identity {
            set.identity.push((label.as_str(), p.as_ref()));
        }
        if let Some((label, p)) = &self.boundary {
            set.boundary = Some((label.as_str(), p.as_ref()));
        }
        if let Some(s) = &self.session {
            set.session = Some(s.iter().map(|(l, p)| (l.as_str(), p.as_ref())).collect());
        }
        set
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::policy::{evaluate, Effect, RequestContext};

    #[test]
    fn a_store_outage_while_loading_policies_is_service_unavailable_and_nothing_else_is() {
        use crate::idp::local::DirectoryError;
        use crate::query::QueryError;
        use crate::store::StoreError;
        let cases = [
            (
                PolicyLoadError::Directory(DirectoryError::Store(StoreError::Unavailable(
                    "connection refused".into(),
                ))),
                true,
                "ServiceUnavailable",
                503,
            ),
            (
                PolicyLoadError::Directory(DirectoryError::Store(StoreError::Corrupt(
                    "bad record".into(),
                ))),
                false,
                "InternalFailure",
                500,
            ),
            (
                PolicyLoadError::Invalid {
                    what: "inline policy x".into(),
                    error: crate::policy::Policy::parse("{", crate::policy::PolicyKind::Inline)
                        .unwrap_err(),
                },
                false,
                "InternalFailure",
                500,
            ),
        ];
        for (e, unavailable, code, status) in cases {
            assert_eq!(e.unavailable(), unavailable, "{e}");
            let sts = QueryError::from(e);
            assert_eq!(sts.code, code);
            assert_eq!(sts.status().as_u16(), status);
        }
    }

    const ALL: &str =
        r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"*","Resource":"*"}]}"#;

    fn federated(session_policy: Option<&str>) -> SessionClaims {
        SessionClaims {
            session_policy: session_policy.map(String::from),
            federation: None,
            origin_user: Some("AIDAEXAMPLE".into()),
            ..context::tests::session("")
        }
    }

    fn decide(c: &SessionClaims) -> Effect {
        let config = crate::config::Config::from_str_with_env(
            std::path::Path::new("/etc/rolegate.toml"),
            "[server]\nlisten = \"127.0.0.1:0\"\npublic_url = \"http://127.0.0.1:1\"\n",
            &[],
        )
        .unwrap();
        let mut p = SessionPolicies::load(&config, &PolicyCache::default(), c).unwrap();
        // The calling user's policies allow everything.
        p.identity = vec![(
            "user policy".into(),
            Arc::new(Policy::parse(ALL, PolicyKind::Inline).unwrap()),
        )];
        evaluate(
            &p.set(),
            &RequestContext::new("s3:GetObject", "arn:aws:s3:::b/k"),
        )
        .effect
    }

    #[test]
    fn a_federated_user_without_a_session_policy_may_do_nothing() {
        assert_ne!(decide(&federated(None)), Effect::Allow);
        assert_eq!(decide(&federated(Some(ALL))), Effect::Allow);
        let narrow = r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"s3:PutObject","Resource":"*"}]}"#;
        assert_ne!(decide(&federated(Some(narrow))), Effect::Allow);
    }
}
