//! Revocation: "sessions issued before T" per role, subject, user, session, access key, or everything.
//! The list is small, cached in memory, refreshed from the store, and checked after a token is unsealed
//! and, for long-lived sign-ins (portal sessions, SSO sign-ins), against the time of the sign-in.

use super::{Result, SessionClaims, SessionPrincipal};
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

/// What a record of issued credentials knows of them, as revocations see it: enough to tell whether
/// a revocation in force ends them without their session token.
#[derive(Debug, Clone, Copy)]
pub struct IssuedRef<'a> {
    /// The credentials' session id.
    pub session_id: &'a str,
    /// Their access key id.
    pub access_key_id: &'a str,
    /// The role they are a session of.
    pub role_arn: Option<&'a str>,
    /// The directory user whose sign-in obtained them.
    pub origin_user: Option<&'a str>,
    /// The person they were issued to, by subject and by every name their provider goes by in the
    /// credentials (the provider's ARN and its name).
    pub federation: Option<(&'a str, [&'a str; 2])>,
    /// Issue time (Unix seconds).
    pub issued_at: i64,
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
        let held = Held::of_claims(c);
        list.iter()
            .find(|r| c.issued_at < r.issued_before && scope_matches(&r.scope, &held, &providers))
            .cloned()
    }

    /// The revocation that ends the issued credentials `i`, if any: the one [`Self::check`] would
    /// find for their session token.
    pub fn check_issued(&self, i: &IssuedRef<'_>) -> Option<Revocation> {
        let list = self.list.read().clone();
        if list.is_empty() {
            return None;
        }
        let providers = self.providers.read().clone();
        let held = Held {
            session_id: i.session_id,
            parents: &[],
            access_key_id: i.access_key_id,
            origin_user: i.origin_user,
            role: RoleOf::Arn(i.role_arn),
            federation: i.federation,
        };
        list.iter()
            .find(|r| i.issued_at < r.issued_before && scope_matches(&r.scope, &held, &providers))
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

/// The role of a session: as its claims carry it (the ARN is only built when a revocation of a role
/// asks), or as a record wrote it down.
enum RoleOf<'a> {
    Principal(&'a SessionPrincipal),
    Arn(Option<&'a str>),
}

impl RoleOf<'_> {
    fn is(&self, arn: &str) -> bool {
        match self {
            RoleOf::Principal(p) => p.role_arn().is_some_and(|r| r == arn),
            RoleOf::Arn(a) => *a == Some(arn),
        }
    }
}

/// What a revocation's scope is matched against, from a session token's claims or a record.
struct Held<'a> {
    session_id: &'a str,
    parents: &'a [String],
    access_key_id: &'a str,
    origin_user: Option<&'a str>,
    role: RoleOf<'a>,
    /// The subject and the names of its provider.
    federation: Option<(&'a str, [&'a str; 2])>,
}

impl<'a> Held<'a> {
    fn of_claims(c: &'a SessionClaims) -> Self {
        Held {
            session_id: &c.session_id,
            parents: &c.parents,
            access_key_id: &c.access_key_id,
            origin_user: c.origin_user.as_deref(),
            role: RoleOf::Principal(&c.principal),
            federation: c.federation.as_ref().map(|f| {
                (
                    f.subject.as_str(),
                    [f.provider_arn.as_str(), f.key_prefix.as_str()],
                )
            }),
        }
    }
}

fn scope_matches(scope: &RevocationScope, c: &Held<'_>, providers: &ProviderAliases) -> bool {
    match scope {
        RevocationScope::All => true,
        RevocationScope::Role(arn) => c.role.is(arn),
        RevocationScope::User(id) => c.origin_user == Some(id.as_str()),
        RevocationScope::Session(id) => id == c.session_id || c.parents.contains(id),
        RevocationScope::AccessKey(id) => id == c.access_key_id,
        RevocationScope::Subject { provider, subject } => c.federation.is_some_and(|(s, names)| {
            s == subject && names.iter().any(|n| providers.same(provider, n))
        }),
    }
}
