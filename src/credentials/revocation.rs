//! Revocation: "sessions issued before T" per role, subject, user, session, access key, or everything.
//! The list is small, cached in memory, refreshed from the store, and checked after a token is unsealed
//! and, for long-lived sign-ins (portal sessions, SSO sign-ins), against the time of the sign-in.

use super::{Result, SessionClaims};
use crate::store::{Revocation, RevocationScope, Store};
use parking_lot::RwLock;
use std::borrow::Cow;
use std::collections::HashMap;
use std::sync::Arc;

/// The names one identity provider goes by — its configured name, its issuer with and without the
/// scheme, its ARN's last part — so that a revocation naming any of them matches every session of
/// that provider, however the session recorded it (STS sessions carry the issuer without scheme or
/// the provider's ARN; portal and SSO sessions carry the provider's name).
#[derive(Debug, Default)]
pub struct ProviderAliases {
    canonical: HashMap<String, String>,
}

impl ProviderAliases {
    /// Groups of names, each group one provider: `(canonical name, every other name it goes by)`.
    pub fn new(groups: impl IntoIterator<Item = (String, Vec<String>)>) -> Self {
        let mut canonical = HashMap::new();
        for (name, aliases) in groups {
            for a in aliases {
                canonical.insert(a, name.clone());
            }
            canonical.insert(name.clone(), name);
        }
        Self { canonical }
    }

    /// The canonical name of the provider `p` names: an alias as configured, the last part of an
    /// `oidc-provider/…` or `saml-provider/…` ARN, or an issuer URL without its scheme and trailing
    /// slash. A name no provider goes by stands for itself.
    pub fn canonical<'a>(&'a self, p: &'a str) -> Cow<'a, str> {
        if let Some(c) = self.canonical.get(p) {
            return Cow::Borrowed(c);
        }
        let bare = p
            .split_once(":oidc-provider/")
            .or_else(|| p.split_once(":saml-provider/"))
            .map(|(_, rest)| rest)
            .or_else(|| p.split_once("://").map(|(_, rest)| rest))
            .unwrap_or(p)
            .trim_end_matches('/');
        match self.canonical.get(bare) {
            Some(c) => Cow::Borrowed(c),
            None => Cow::Borrowed(bare),
        }
    }

    /// Whether `a` and `b` name the same provider.
    pub fn same(&self, a: &str, b: &str) -> bool {
        a == b || self.canonical(a) == self.canonical(b)
    }
}

/// Who a long-lived sign-in is, as revocations see it.
#[derive(Debug, Clone, Copy)]
pub struct SignInRef<'a> {
    /// The provider's name (or `local`).
    pub provider: &'a str,
    /// The subject at the provider.
    pub subject: &'a str,
    /// The directory user, for sign-ins of the local directory.
    pub origin_user: Option<&'a str>,
    /// When the identity was verified (Unix seconds).
    pub signed_in_at: i64,
}

/// The cached revocation list.
#[derive(Default)]
pub struct RevocationList {
    list: RwLock<Arc<Vec<Revocation>>>,
    providers: RwLock<Arc<ProviderAliases>>,
}

impl RevocationList {
    /// Sets the names each configured provider goes by (see [`ProviderAliases`]).
    pub fn set_providers(&self, aliases: ProviderAliases) {
        *self.providers.write() = Arc::new(aliases);
    }

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
        if list.is_empty() {
            return None;
        }
        let providers = self.providers.read().clone();
        list.iter()
            .find(|r| c.issued_at < r.issued_before && scope_matches(&r.scope, c, &providers))
            .cloned()
    }

    /// The revocation made after the sign-in `s` that ends it, if any: one of everything, of the
    /// directory user, or of the subject at its provider. Revocations of roles, sessions and access
    /// keys end credentials, not the sign-in that obtained them.
    pub fn check_sign_in(&self, s: &SignInRef<'_>) -> Option<Revocation> {
        let list = self.list.read().clone();
        if list.is_empty() {
            return None;
        }
        let providers = self.providers.read().clone();
        list.iter()
            .find(|r| {
                s.signed_in_at < r.issued_before
                    && match &r.scope {
                        RevocationScope::All => true,
                        RevocationScope::User(id) => s.origin_user == Some(id.as_str()),
                        RevocationScope::Subject { provider, subject } => {
                            subject == s.subject && providers.same(provider, s.provider)
                        }
                        RevocationScope::Role(_)
                        | RevocationScope::Session(_)
                        | RevocationScope::AccessKey(_) => false,
                    }
            })
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

fn scope_matches(scope: &RevocationScope, c: &SessionClaims, providers: &ProviderAliases) -> bool {
    match scope {
        RevocationScope::All => true,
        RevocationScope::Role(arn) => c.principal.role_arn().is_some_and(|r| r == *arn),
        RevocationScope::User(id) => c.origin_user.as_ref() == Some(id),
        RevocationScope::Session(id) => *id == c.session_id || c.parents.contains(id),
        RevocationScope::AccessKey(id) => *id == c.access_key_id,
        RevocationScope::Subject { provider, subject } => c.federation.as_ref().is_some_and(|f| {
            f.subject == *subject
                && (providers.same(provider, &f.provider_arn)
                    || providers.same(provider, &f.key_prefix))
        }),
    }
}
