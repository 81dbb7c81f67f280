//! Credentials the portal issued, and those a password sign-in (`POST /login/password`) returned,
//! one record each (kind `portal_credentials`, keyed by the credentials' session id), so that an
//! operator can list them under the portal session they came from (if any) and end them one by one. A record lives until its credentials expire; the background
//! clean-up deletes it then. Ending credentials is a revocation of their session id (the decision
//! core refuses them from then on); the record only remembers that it was ended, by whom and why.
//!
//! Owns: the record of each issued credential set. Must not know: how a revocation is stored or
//! enforced, who may list or end credentials.

use super::{PortalError, SignedInIdentity};
use crate::credentials::SessionClaims;
use crate::store::{DirWrite, Store, Versioned};
use serde::{Deserialize, Serialize};

/// Directory kind of issued credential records.
pub const ISSUED_KIND: &str = "portal_credentials";

/// How the portal handed the credentials out.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum IssuedHow {
    /// "Command line access": shown to the person as keys and a session token.
    CommandLine,
    /// "Open console": behind the console session the federation sign-in opened.
    ConsoleSignIn,
    /// Returned by a password sign-in of the admin API (`POST /login/password`), without a portal
    /// session.
    PasswordSignIn,
}

impl IssuedHow {
    /// The name in the admin API's answers.
    pub fn as_str(self) -> &'static str {
        match self {
            IssuedHow::CommandLine => "command_line",
            IssuedHow::ConsoleSignIn => "console_sign_in",
            IssuedHow::PasswordSignIn => "password_sign_in",
        }
    }
}

/// When issued credentials were ended and why (who ended them is in the audit log).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Ended {
    /// When (Unix seconds).
    pub at: i64,
    /// Why.
    pub reason: String,
}

/// One issued credential set, as stored.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct IssuedRecord {
    /// The store key of the portal session it was issued from; none for a password sign-in.
    pub portal_session: Option<String>,
    /// The provider of the person it was issued to.
    pub provider: String,
    /// The person at that provider.
    pub subject: String,
    /// The directory user id, for a person of the local directory.
    #[serde(default)]
    pub origin_user: Option<String>,
    /// The account.
    pub account: String,
    /// The permission set.
    pub permission_set: String,
    /// The role behind the permission set in that account.
    #[serde(default)]
    pub role_arn: Option<String>,
    /// The credentials' access key id.
    pub access_key_id: String,
    /// Issue time (Unix seconds).
    pub issued_at: i64,
    /// Expiry (Unix seconds): the record is deleted after it.
    pub expires_at: i64,
    /// How they were handed out.
    pub how: IssuedHow,
    /// Set once an operator ended them.
    #[serde(default)]
    pub ended: Option<Ended>,
}

impl IssuedRecord {
    /// Whether the credentials are still valid at `now` as far as the record knows (not expired,
    /// not ended).
    pub fn live(&self, now: i64) -> bool {
        self.ended.is_none() && self.expires_at > now
    }
}

/// What was issued, for [`record`].
pub struct Issue<'a> {
    /// The portal session's store key, if they come from one.
    pub portal_session: Option<&'a str>,
    /// The person, as the portal session knows them.
    pub identity: &'a SignedInIdentity,
    /// The credentials.
    pub claims: &'a SessionClaims,
    /// The account.
    pub account: &'a str,
    /// The permission set.
    pub permission_set: &'a str,
    /// How they are handed out.
    pub how: IssuedHow,
}

fn to_json(r: &IssuedRecord) -> Result<String, PortalError> {
    serde_json::to_string(r).map_err(|e| PortalError::Internal(e.to_string()))
}

/// Records credentials about to be handed out, durably on return. The caller hands them
/// out only once this succeeds: credentials nobody could list and end are not issued.
pub async fn record(store: &dyn Store, i: Issue<'_>) -> Result<(), PortalError> {
    let r = IssuedRecord {
        portal_session: i.portal_session.map(str::to_string),
        provider: i.identity.provider.clone(),
        subject: i.identity.subject.clone(),
        origin_user: i.identity.origin_user.clone(),
        account: i.account.to_string(),
        permission_set: i.permission_set.to_string(),
        role_arn: i.claims.principal.role_arn(),
        access_key_id: i.claims.access_key_id.clone(),
        issued_at: i.claims.issued_at,
        expires_at: i.claims.expires_at,
        how: i.how,
        ended: None,
    };
    let doc = to_json(&r)?;
    if !store
        .dir_write(&[DirWrite::insert(ISSUED_KIND, &i.claims.session_id, doc)])
        .await?
    {
        return Err(PortalError::Internal(
            "issued credentials record collision".into(),
        ));
    }
    Ok(())
}

/// Every issued credentials record that decodes, by session id.
pub async fn list(store: &dyn Store) -> Result<Vec<(String, IssuedRecord)>, PortalError> {
    Ok(store
        .dir_list(ISSUED_KIND)
        .await?
        .into_iter()
        .filter_map(|(k, v)| Some((k, serde_json::from_str(&v.value).ok()?)))
        .collect())
}

/// The record of the credentials with session id `id`, with its version; `None` when there is
/// none (or it does not decode).
pub async fn get(
    store: &dyn Store,
    id: &str,
) -> Result<Option<(IssuedRecord, Versioned)>, PortalError> {
    let Some(v) = store.dir_get(ISSUED_KIND, id).await? else {
        return Ok(None);
    };
    Ok(serde_json::from_str(&v.value).ok().map(|r| (r, v)))
}

/// Marks the credentials `id` ended (once revoked); a record already ended keeps its first end,
/// a record that is gone needs nothing.
pub async fn mark_ended(store: &dyn Store, id: &str, ended: Ended) -> Result<(), PortalError> {
    for _ in 0..5 {
        let Some((mut r, v)) = get(store, id).await? else {
            return Ok(());
        };
        if r.ended.is_some() {
            return Ok(());
        }
        r.ended = Some(ended.clone());
        if store
            .dir_write(&[DirWrite::update(ISSUED_KIND, id, v.version, to_json(&r)?)])
            .await?
        {
            return Ok(());
        }
    }
    Err(PortalError::Internal(
        "issued credentials changed while being ended".into(),
    ))
}

/// Deletes the records of credentials expired by `now` (and records that no longer decode);
/// returns how many.
pub async fn purge_expired(store: &dyn Store, now: i64) -> Result<usize, PortalError> {
    let dead =
        |v: &str| serde_json::from_str::<IssuedRecord>(v).map_or(true, |r| r.expires_at <= now);
    Ok(crate::store::purge_dir_records(store, ISSUED_KIND, dead).await?)
}
