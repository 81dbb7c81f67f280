//! Revocation: "sessions issued before T" per role, subject, session, access key, or everything. The list
//! is small, cached in memory, refreshed from the store, and checked after a token is unsealed.

use super::{Result, SessionClaims};
use crate::store::{Revocation, RevocationScope, Store};
use parking_lot::RwLock;
use std::sync::Arc;

/// The cached revocation list.
#[derive(Default)]
pub struct RevocationList {
    list: RwLock<Arc<Vec<Revocation>>>,
}

impl RevocationList {
    /// Re-reads revocations from the store.
    pub async fn refresh(&self, store: &dyn Store) -> Result<()> {
        let list = store.revocations().await?;
        *self.list.write() = Arc::new(list);
        Ok(())
    }

    /// Records a revocation and makes it effective here at once.
    pub async fn revoke(&self, store: &dyn Store, r: Revocation) -> Result<()> {
        store.revoke(&r).await?;
        self.refresh(store).await
    }

    /// The revocation that ends this session, if any.
    pub fn check(&self, c: &SessionClaims) -> Option<Revocation> {
        let list = self.list.read().clone();
        list.iter()
            .find(|r| c.issued_at < r.issued_before && scope_matches(&r.scope, c))
            .cloned()
    }

    /// Number of entries in force.
    pub fn len(&self) -> usize {
        self.list.read().len()
    }

    /// Whether nothing is revoked.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

fn scope_matches(scope: &RevocationScope, c: &SessionClaims) -> bool {
    match scope {
        RevocationScope::All => true,
        RevocationScope::Role(arn) => c.principal.role_arn().is_some_and(|r| r == *arn),
        RevocationScope::User(id) => c.origin_user.as_ref() == Some(id),
        RevocationScope::Session(id) => *id == c.session_id,
        RevocationScope::AccessKey(id) => *id == c.access_key_id,
        RevocationScope::Subject { provider, subject } => c.federation.as_ref().is_some_and(|f| {
            f.subject == *subject
                && (f.provider_arn == *provider
                    || f.key_prefix == *provider
                    || provider
                        .split_once("://")
                        .is_some_and(|(_, p)| p.trim_end_matches('/') == f.key_prefix))
        }),
    }
}
