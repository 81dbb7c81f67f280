//! A cache of parsed policy documents.

use super::{Policy, PolicyError, PolicyKind};
use parking_lot::Mutex;
use std::collections::HashMap;
use std::sync::Arc;

/// Policy documents carried in session tokens or kept in the directory, parsed once per distinct
/// text and kind.
///
/// Tokens carry their inline session policy as text, and directory users' policies are stored as
/// text; every signed request would otherwise parse them again. The cache is bounded: when full it
/// is emptied and refilled.
#[derive(Default)]
pub struct PolicyCache {
    parsed: Mutex<HashMap<(PolicyKind, String), Arc<Policy>>>,
}

/// Most distinct policy texts kept parsed.
pub const POLICY_CACHE_ENTRIES: usize = 4096;

impl PolicyCache {
    /// The parsed session policy for `text`.
    pub fn session_policy(&self, text: &str) -> Result<Arc<Policy>, PolicyError> {
        self.parsed(text, PolicyKind::Session)
    }

    /// `text` parsed as a policy of `kind`.
    pub fn parsed(&self, text: &str, kind: PolicyKind) -> Result<Arc<Policy>, PolicyError> {
        let key = (kind, text.to_string());
        if let Some(p) = self.parsed.lock().get(&key) {
            return Ok(Arc::clone(p));
        }
        let p = Arc::new(Policy::parse(text, kind)?);
        let mut m = self.parsed.lock();
        if m.len() >= POLICY_CACHE_ENTRIES {
            m.clear();
        }
        m.insert(key, Arc::clone(&p));
        Ok(p)
    }
}
