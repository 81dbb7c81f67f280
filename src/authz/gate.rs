//! The mint gate: every path that issues credentials passes here first, and every long-lived
//! sign-in (a portal session, an SSO sign-in) is re-checked here each time it is used. One rule
//! set, in one place:
//!
//! - **Revocation newer than the sign-in.** A revocation of everything, of the directory user, or of
//!   the subject at its provider (by any name the provider goes by) made after the identity was
//!   verified ends the sign-in. The STS paths check the same for the token or session presented.
//! - **Directory state now.** A sign-in of the local directory is re-read: the user must still
//!   exist (by its unique id, so a new user of the same name is someone else) and its groups are
//!   taken as they are now, never from the sign-in's snapshot. "Now" is the directory's cache of
//!   the request path: a change made on this replica is seen at once, one made on another replica
//!   within [`CACHE_BOUND`](crate::idp::local::CACHE_BOUND), the same bound as revocations (the
//!   periodic refresh of the background maintenance).
//! - **The one MFA rule.** A directory user with an MFA method (and root, always) never has a
//!   sign-in, and so never gets credentials through one, without having passed MFA in it.
//!   Long-term access keys are a credential of their own: MFA on their calls is stated per call
//!   (`SerialNumber`/`TokenCode`) and judged by policies, as in AWS.
//! - **A provider still configured.** A sign-in through a provider removed from the configuration
//!   ends.
//! - **Provisioning.** For a provider whose people a directory provisions over SCIM
//!   (`[[scim_clients]]`), a person provisioned with `active: false` or deleted is refused, however
//!   freshly the provider vouches for them; with `require_provisioned`, so is a person never
//!   provisioned (otherwise they are admitted as without SCIM). Deprovisioning also revokes the
//!   subject at the provider at once ([`deprovision`]), which ends their portal sessions, SSO
//!   sign-ins and issued credentials; provisioning them again admits new sign-ins only.
//!
//! What passes gets an [`Admission`], which only this module makes and which minting requires: no
//! path can mint without passing the gate. Knows nothing of HTTP; each edge maps a [`Refusal`] to
//! its own wire error.

use crate::app::App;
use crate::credentials::{SessionClaims, SignInRef};
use crate::idp::local::DirectoryError;
use crate::store::{Revocation, RevocationScope, StoreError};
use serde::{Deserialize, Serialize};

/// Someone a provider vouched for, as a long-lived sign-in keeps them (a portal session, an SSO
/// sign-in): the same shape whatever the provider (OIDC, SAML, the local directory).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SignedInIdentity {
    /// The provider's name (an `[[oidc_providers]]` name, a SAML provider's name, or `local`).
    pub provider: String,
    /// The subject at that provider, exactly as the provider signed it.
    pub subject: String,
    /// Every claim or attribute the provider vouched for.
    pub claims: serde_json::Map<String, serde_json::Value>,
    /// When MFA was performed in this sign-in (Unix seconds), if it was.
    pub mfa_time: Option<i64>,
    /// Groups of the local directory (local users only; empty otherwise). A snapshot for display:
    /// the gate reads them again before they decide anything.
    pub local_groups: Vec<String>,
    /// The directory user id (local users only).
    pub origin_user: Option<String>,
    /// When the provider verified the identity (Unix seconds). Records from before this field
    /// existed read 0, so that every revocation in their scope ends them.
    #[serde(default)]
    pub signed_in_at: i64,
}

impl SignedInIdentity {
    /// The name shown in the page header and used as the audit principal of portal events.
    pub fn display(&self) -> String {
        format!("{}/{}", self.provider, self.subject)
    }

    fn as_ref(&self) -> SignInRef<'_> {
        SignInRef {
            provider: &self.provider,
            subject: &self.subject,
            origin_user: self.origin_user.as_deref(),
            signed_in_at: self.signed_in_at,
        }
    }
}

/// Proof that the gate admitted the identity credentials are about to be minted for. Only this
/// module makes one; minting takes one.
#[derive(Debug)]
pub struct Admission(());

/// A sign-in the gate admitted, with its identity as it is now (directory groups re-read).
#[derive(Debug)]
pub struct Admitted {
    /// The identity, its directory groups as they are now.
    pub identity: SignedInIdentity,
    /// The gate's proof, for minting.
    pub admission: Admission,
}

/// Why the gate refuses. The message is the precise reason for the audit log.
#[derive(Debug, thiserror::Error)]
pub enum Refusal {
    /// The directory user behind the sign-in or session was deleted.
    #[error("directory user {0} no longer exists")]
    UserGone(String),
    /// The directory user behind the sign-in or session is disabled.
    #[error("directory user {0} is disabled")]
    UserDisabled(String),
    /// A revocation made after the sign-in covers it.
    #[error("{what} revoked after it began ({scope}, at {at}): {reason}")]
    Revoked {
        /// What was revoked: the sign-in, the token, the session.
        what: &'static str,
        /// The revocation's scope, as the audit log names it.
        scope: String,
        /// When the revocation was made.
        at: i64,
        /// The revocation's reason.
        reason: String,
    },
    /// The person has an MFA method (or is root) and did not pass MFA in this sign-in.
    #[error("{0} has an MFA method and did not pass MFA in this sign-in")]
    MfaNotPassed(String),
    /// The sign-in's provider is not (or no longer) configured.
    #[error("provider {0} is not configured")]
    UnknownProvider(String),
    /// The sign-in claims the local directory without naming a directory user.
    #[error("a local sign-in without a directory user")]
    NoDirectoryUser,
    /// The directory could not be read.
    #[error("reading the directory: {0}")]
    Directory(#[from] DirectoryError),
    /// The person is provisioned inactive, or was deleted, by the provider's SCIM client.
    #[error("{subject} at {provider} is deprovisioned ({why}) by SCIM client {client}")]
    Deprovisioned {
        /// The provider.
        provider: String,
        /// The subject at the provider.
        subject: String,
        /// `active is false` or `deleted`.
        why: &'static str,
        /// The SCIM client that provisions the provider.
        client: String,
    },
    /// The provider requires people to be provisioned and this one never was.
    #[error("{subject} at {provider} is not provisioned by SCIM client {client}, which the provider requires")]
    NotProvisioned {
        /// The provider.
        provider: String,
        /// The subject at the provider.
        subject: String,
        /// The SCIM client that provisions the provider.
        client: String,
    },
}

impl Refusal {
    /// Whether the refusal is the store's fault and retrying may help (answered as unavailable,
    /// not as a denial).
    pub fn unavailable(&self) -> bool {
        matches!(
            self,
            Self::Directory(DirectoryError::Store(
                StoreError::Unavailable(_) | StoreError::Locked(_)
            ))
        )
    }

    fn revoked(what: &'static str, r: Revocation) -> Self {
        Self::Revoked {
            what,
            scope: scope_name(&r.scope),
            at: r.created_at,
            reason: r.reason,
        }
    }
}

/// A revocation scope as the audit log names it.
fn scope_name(s: &RevocationScope) -> String {
    match s {
        RevocationScope::All => "everything".into(),
        RevocationScope::Role(r) => format!("role {r}"),
        RevocationScope::User(u) => format!("directory user {u}"),
        RevocationScope::Session(s) => format!("session {s}"),
        RevocationScope::AccessKey(k) => format!("access key {k}"),
        RevocationScope::Subject { provider, subject } => {
            format!("subject {subject} at {provider}")
        }
    }
}

/// Re-checks a long-lived sign-in: no revocation newer than it, its provider still configured,
/// and for the local directory the user still there (its groups read now) and the MFA rule met.
pub async fn admit_sign_in(app: &App, identity: &SignedInIdentity) -> Result<Admitted, Refusal> {
    Ok(Admitted {
        identity: recheck(app, identity, false).await?,
        admission: Admission(()),
    })
}

/// [`admit_sign_in`] without the admission, for a sign-in that is only being looked at (a
/// portal page): the identity as it is now. With `mfa_pending` (a portal session waiting for its
/// MFA challenge, which only the challenge pages accept) the MFA rule is left to the challenge.
pub async fn recheck(
    app: &App,
    identity: &SignedInIdentity,
    mfa_pending: bool,
) -> Result<SignedInIdentity, Refusal> {
    if !app.config.knows_provider(&identity.provider) {
        return Err(Refusal::UnknownProvider(identity.provider.clone()));
    }
    if let Some(r) = app.revocations.check_sign_in(&identity.as_ref()) {
        return Err(Refusal::revoked("sign-in", r));
    }
    let mut fresh = identity.clone();
    if identity.provider == crate::config::LOCAL_PROVIDER {
        let id = identity
            .origin_user
            .as_deref()
            .ok_or(Refusal::NoDirectoryUser)?;
        let user = match &app.directory {
            Some(d) => d.user_by_id(id).await?,
            None => None,
        };
        let Some(user) = user.filter(|u| u.name == identity.subject) else {
            return Err(Refusal::UserGone(format!("{} ({id})", identity.subject)));
        };
        if !user.active() {
            return Err(Refusal::UserDisabled(user.name));
        }
        if !mfa_pending {
            mfa_rule(&user, identity.mfa_time)?;
        }
        fresh.local_groups = user.groups;
    } else {
        provisioned(app, &identity.provider, &identity.subject)?;
    }
    Ok(fresh)
}

/// The provisioning rule for `subject` at `provider`: `Ok(Some(groups))` for a person provisioned
/// and active (the display names of their provisioned groups), `Ok(None)` when the provider has
/// no SCIM client or, without `require_provisioned`, the person was never provisioned; refused
/// when provisioned inactive or deleted, or never provisioned where that is required. In memory
/// only: this is on every sign-in path.
pub fn provisioned(
    app: &App,
    provider: &str,
    subject: &str,
) -> Result<Option<Vec<String>>, Refusal> {
    use crate::idp::provisioned::Status;
    let Some(client) = app.config.scim_client_for(provider) else {
        return Ok(None);
    };
    let refuse = |why| Refusal::Deprovisioned {
        provider: provider.to_string(),
        subject: subject.to_string(),
        why,
        client: client.name.clone(),
    };
    match app.provisioned.status(provider, subject) {
        Status::Active(groups) => Ok(Some(groups)),
        Status::Inactive => Err(refuse("active is false")),
        Status::Deleted => Err(refuse("deleted")),
        Status::Unknown if client.require_provisioned => Err(Refusal::NotProvisioned {
            provider: provider.to_string(),
            subject: subject.to_string(),
            client: client.name.clone(),
        }),
        Status::Unknown => Ok(None),
    }
}

/// Ends the access of `subjects` at `provider`, deprovisioned just now by a SCIM client: one
/// revocation of each subject, effective here at once and on other replicas within
/// [`crate::app::REFRESH_INTERVAL`]. Their portal sessions, SSO sign-ins and issued credentials
/// end; a later sign-in is admitted again only once they are provisioned active.
pub async fn deprovision(
    app: &App,
    provider: &str,
    subjects: &[String],
    reason: &str,
) -> Result<(), StoreError> {
    let now = app.clock.now().timestamp();
    for subject in subjects {
        // One second past now: a session minted in the current second is covered too.
        let r = Revocation {
            scope: RevocationScope::Subject {
                provider: provider.to_string(),
                subject: subject.clone(),
            },
            issued_before: now + 1,
            created_at: now,
            reason: reason.to_string(),
            expires_at: now + 1 + crate::credentials::KEY_RETENTION_SECONDS,
        };
        app.revocations
            .revoke(app.store.as_ref(), r)
            .await
            .map_err(|e| StoreError::Unavailable(e.to_string()))?;
    }
    Ok(())
}

/// The one MFA rule for sign-ins: whoever has an MFA method, and root always, passes MFA first.
pub fn mfa_rule(user: &crate::idp::local::User, mfa_time: Option<i64>) -> Result<(), Refusal> {
    if mfa_time.is_none() && (user.root || user.has_mfa()) {
        return Err(Refusal::MfaNotPassed(user.name.clone()));
    }
    Ok(())
}

/// Admits a federated token or assertion verified just now (`AssumeRoleWithWebIdentity`,
/// `AssumeRoleWithSAML`): no revocation of everything or of the subject at `provider` is newer
/// than the time the provider issued it, and the person not deprovisioned (see [`provisioned`]).
/// In memory only: this is on the hot path.
pub fn admit_federated(
    app: &App,
    provider: &str,
    subject: &str,
    issued_at: i64,
) -> Result<Admission, Refusal> {
    let s = SignInRef {
        provider,
        subject,
        origin_user: None,
        signed_in_at: issued_at,
    };
    if let Some(r) = app.revocations.check_sign_in(&s) {
        return Err(Refusal::revoked("token", r));
    }
    provisioned(app, provider, subject)?;
    Ok(Admission(()))
}

/// Admits a session or long-term key that signed a request asking for new credentials
/// (`AssumeRole`, `GetSessionToken`, `GetFederationToken`): not revoked, and the directory user
/// whose key or sign-in started its chain still exists and is active.
pub async fn admit_session(app: &App, caller: &SessionClaims) -> Result<Admission, Refusal> {
    if let Some(r) = app.revocations.check(caller) {
        return Err(Refusal::revoked("session", r));
    }
    if let Some(id) = &caller.origin_user {
        let user = match &app.directory {
            Some(d) => d.user_by_id(id).await?,
            None => None,
        };
        match user {
            None => return Err(Refusal::UserGone(id.clone())),
            Some(u) if !u.active() => return Err(Refusal::UserDisabled(u.name)),
            Some(_) => {}
        }
    }
    Ok(Admission(()))
}

#[cfg(test)]
impl Admission {
    /// An admission for unit tests of minting itself.
    pub fn for_tests() -> Self {
        Self(())
    }
}
