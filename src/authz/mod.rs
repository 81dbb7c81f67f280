//! What a session may do: the policies that apply to a session (its role's inline and managed
//! policies, the role's permissions boundary, the session's inline and managed session policies)
//! and the request context a session's requests are judged in. Shared by STS, the authorization
//! API for downstream services and IAM's policy simulator. Knows nothing of HTTP or XML.

pub mod api;

use crate::config::{Config, Role};
use crate::credentials::SessionClaims;
use crate::policy::{Policy, PolicyKind, PolicySet};
use parking_lot::Mutex;
use std::collections::HashMap;
use std::sync::Arc;

/// Label of the inline session policy in decisions and explanations.
pub const INLINE_SESSION_POLICY: &str = "session policy";

/// Session policy documents carried in session tokens, parsed once per distinct text.
///
/// Tokens carry their inline session policy as text; every signed request of a session would
/// otherwise parse it again. The cache is bounded: when full it is emptied and refilled.
#[derive(Default)]
pub struct PolicyCache {
    parsed: Mutex<HashMap<String, Arc<Policy>>>,
}

/// Most distinct session policy texts kept parsed.
pub const POLICY_CACHE_ENTRIES: usize = 4096;

impl PolicyCache {
    /// The parsed session policy for `text`.
    pub fn session_policy(&self, text: &str) -> Result<Arc<Policy>, String> {
        if let Some(p) = self.parsed.lock().get(text) {
            return Ok(Arc::clone(p));
        }
        let p = Arc::new(
            Policy::parse(text, PolicyKind::Session)
                .map_err(|e| format!("sealed session policy does not parse: {e}"))?,
        );
        let mut m = self.parsed.lock();
        if m.len() >= POLICY_CACHE_ENTRIES {
            m.clear();
        }
        m.insert(text.to_string(), Arc::clone(&p));
        Ok(p)
    }
}

/// Every policy that decides what one session may do.
#[derive(Debug, Clone)]
pub struct SessionPolicies {
    /// The session's role as configured now; `None` when it no longer exists (nothing is allowed).
    pub role: Option<Role>,
    /// The session policies (inline first, then `PolicyArns` in order); `None` without any.
    pub session: Option<Vec<(String, Arc<Policy>)>>,
}

impl SessionPolicies {
    /// The policies of the session `c` under the current configuration. A managed session policy
    /// that no longer exists contributes nothing (so a session whose only session policy was
    /// removed is allowed nothing, never more).
    pub fn load(config: &Config, cache: &PolicyCache, c: &SessionClaims) -> Result<Self, String> {
        let role = config.role(&c.principal.role_arn()).cloned();
        let mut session = Vec::new();
        if let Some(t) = &c.session_policy {
            session.push((INLINE_SESSION_POLICY.to_string(), cache.session_policy(t)?));
        }
        for arn in &c.policy_arns {
            if let Some(m) = config.managed_policy(arn) {
                session.push((arn.clone(), Arc::clone(&m.policy)));
            }
        }
        let has_session = c.session_policy.is_some() || !c.policy_arns.is_empty();
        Ok(Self {
            role,
            session: has_session.then_some(session),
        })
    }

    /// The full set: identity policies ∩ session policies ∩ boundary.
    pub fn set(&self) -> PolicySet<'_> {
        let mut set = PolicySet::default();
        if let Some(r) = &self.role {
            for (label, p) in r.identity_policies() {
                set.identity.push((label, p.as_ref()));
            }
            if let Some((label, p)) = &r.permissions_boundary {
                set.boundary = Some((label.as_str(), p.as_ref()));
            }
        }
        if let Some(s) = &self.session {
            set.session = Some(s.iter().map(|(l, p)| (l.as_str(), p.as_ref())).collect());
        }
        set
    }

    /// The session policies alone, as the only policies that must allow (any of them); `None`
    /// when the session has none.
    pub fn session_only(&self) -> Option<PolicySet<'_>> {
        self.session.as_ref().map(|s| PolicySet {
            identity: s.iter().map(|(l, p)| (l.as_str(), p.as_ref())).collect(),
            ..PolicySet::default()
        })
    }
}
