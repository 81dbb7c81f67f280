//! Temporary credentials: access key ids, secrets, and the sealed, self-contained session token that
//! carries a whole session so that any replica holding the sealing keys verifies a signed request with
//! no database read. Also the sealing-key ring (rotation with key ids) and revocation checks.
//! Knows nothing of HTTP or XML.

mod keyring;
mod revocation;

pub use keyring::{KeyRing, OpenSession, KEY_RETENTION_SECONDS, OPEN_SESSION_CACHE};
pub use revocation::{IssuedRef, ProviderAliases, RevocationList, SignInRef};

use aws_lc_rs::rand::{SecureRandom, SystemRandom};
use serde::{Deserialize, Serialize};
use std::fmt;

/// Errors of this module.
#[derive(Debug, thiserror::Error)]
pub enum CredentialError {
    /// The token is not one of ours, was altered, or its key is gone.
    #[error("session token rejected: {0}")]
    InvalidToken(String),
    /// No sealing key is available.
    #[error("no sealing key is available")]
    NoKey,
    /// The store failed.
    #[error("store: {0}")]
    Store(#[from] crate::store::StoreError),
    /// Randomness failed (should never happen).
    #[error("random number generator failed")]
    Random,
}

/// Result of this module.
pub type Result<T> = std::result::Result<T, CredentialError>;

/// What kind of identity a session is.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "t")]
pub enum SessionPrincipal {
    /// A session of an assumed role.
    #[serde(rename = "r")]
    AssumedRole {
        /// Account id.
        #[serde(rename = "a")]
        account: String,
        /// Role name.
        #[serde(rename = "n")]
        role_name: String,
        /// Role path.
        #[serde(rename = "p")]
        role_path: String,
        /// The role's unique id (`AROA…`).
        #[serde(rename = "i")]
        role_id: String,
        /// The session name.
        #[serde(rename = "s")]
        session_name: String,
    },
    /// A user of the local directory, signed in with a session token (`GetSessionToken`).
    #[serde(rename = "u")]
    User {
        /// Account id.
        #[serde(rename = "a")]
        account: String,
        /// User name.
        #[serde(rename = "n")]
        name: String,
        /// User path.
        #[serde(rename = "p")]
        path: String,
        /// The user's unique id (`AIDA…`).
        #[serde(rename = "i")]
        user_id: String,
    },
    /// A federated user a directory user created with `GetFederationToken`.
    #[serde(rename = "f")]
    FederatedUser {
        /// Account id.
        #[serde(rename = "a")]
        account: String,
        /// The federated user's name (`Name`).
        #[serde(rename = "n")]
        name: String,
    },
}

impl SessionPrincipal {
    /// The account the session belongs to.
    pub fn account(&self) -> &str {
        match self {
            Self::AssumedRole { account, .. }
            | Self::User { account, .. }
            | Self::FederatedUser { account, .. } => account,
        }
    }

    /// The principal's ARN as `GetCallerIdentity` reports it.
    pub fn arn(&self) -> String {
        match self {
            Self::AssumedRole {
                account,
                role_name,
                session_name,
                ..
            } => crate::policy::arn::assumed_role(account, role_name, session_name),
            Self::User {
                account,
                name,
                path,
                ..
            } => crate::policy::arn::user(account, path, name),
            Self::FederatedUser { account, name } => {
                crate::policy::arn::federated_user(account, name)
            }
        }
    }

    /// `UserId` as `GetCallerIdentity` reports it.
    pub fn user_id(&self) -> String {
        match self {
            Self::AssumedRole {
                role_id,
                session_name,
                ..
            } => format!("{role_id}:{session_name}"),
            Self::User { user_id, .. } => user_id.clone(),
            Self::FederatedUser { account, name } => format!("{account}:{name}"),
        }
    }

    /// The ARN of the role behind the session, for role sessions.
    pub fn role_arn(&self) -> Option<String> {
        match self {
            Self::AssumedRole {
                account,
                role_name,
                role_path,
                ..
            } => Some(crate::policy::arn::role(account, role_path, role_name)),
            Self::User { .. } | Self::FederatedUser { .. } => None,
        }
    }

    /// The ARN policies see as `aws:PrincipalArn`: the role for role sessions, else the principal.
    pub fn principal_arn(&self) -> String {
        self.role_arn().unwrap_or_else(|| self.arn())
    }

    /// `aws:PrincipalType`.
    pub fn principal_type(&self) -> &'static str {
        match self {
            Self::AssumedRole { .. } => "AssumedRole",
            Self::User { .. } => "User",
            Self::FederatedUser { .. } => "FederatedUser",
        }
    }
}

/// A session tag.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Tag {
    /// Key.
    #[serde(rename = "k")]
    pub key: String,
    /// Value.
    #[serde(rename = "v")]
    pub value: String,
}

/// Where a federated session came from.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Federation {
    /// The provider's ARN.
    #[serde(rename = "p")]
    pub provider_arn: String,
    /// The condition-key prefix of the provider (issuer without scheme).
    #[serde(rename = "k")]
    pub key_prefix: String,
    /// The subject.
    #[serde(rename = "s")]
    pub subject: String,
    /// Every claim of the token, for condition keys in later decisions.
    #[serde(rename = "c", default, skip_serializing_if = "Option::is_none")]
    pub claims: Option<serde_json::Value>,
}

/// Everything a session is, sealed inside its session token.
#[derive(Clone, PartialEq, Serialize, Deserialize)]
pub struct SessionClaims {
    /// The temporary access key id (`ASIA…`).
    #[serde(rename = "ak")]
    pub access_key_id: String,
    /// The secret access key.
    #[serde(rename = "sk")]
    pub secret_access_key: String,
    /// A random id of this session (revocation by session).
    #[serde(rename = "id")]
    pub session_id: String,
    /// Who the session is.
    #[serde(rename = "pr")]
    pub principal: SessionPrincipal,
    /// `SourceIdentity`, once set never changed along a chain.
    #[serde(rename = "si", default, skip_serializing_if = "Option::is_none")]
    pub source_identity: Option<String>,
    /// Session tags.
    #[serde(rename = "tg", default, skip_serializing_if = "Vec::is_empty")]
    pub tags: Vec<Tag>,
    /// Keys of tags that pass to chained sessions.
    #[serde(rename = "tt", default, skip_serializing_if = "Vec::is_empty")]
    pub transitive_tag_keys: Vec<String>,
    /// Inline session policy text.
    #[serde(rename = "sp", default, skip_serializing_if = "Option::is_none")]
    pub session_policy: Option<String>,
    /// Managed session policy ARNs.
    #[serde(rename = "pa", default, skip_serializing_if = "Vec::is_empty")]
    pub policy_arns: Vec<String>,
    /// The federated identity behind the session, if any.
    #[serde(rename = "fd", default, skip_serializing_if = "Option::is_none")]
    pub federation: Option<Federation>,
    /// When MFA was last performed (epoch seconds), if it was.
    #[serde(rename = "mf", default, skip_serializing_if = "Option::is_none")]
    pub mfa_time: Option<i64>,
    /// Issue time, epoch seconds.
    #[serde(rename = "ia")]
    pub issued_at: i64,
    /// Expiry, epoch seconds.
    #[serde(rename = "ex")]
    pub expires_at: i64,
    /// Whether the session came from role chaining.
    #[serde(rename = "ch", default)]
    pub chained: bool,
    /// The id (`AIDA…`) of the local directory user whose long-term key or sign-in started the
    /// chain this session belongs to; revoking the user's sessions matches it.
    #[serde(rename = "ou", default, skip_serializing_if = "Option::is_none")]
    pub origin_user: Option<String>,
    /// The session ids of the sessions this one was chained from, the first of the chain first and
    /// the one that asked for it last: revoking any of them ends this one too. A chain deeper than
    /// [`MAX_PARENTS`] keeps its first session and the nearest ones.
    #[serde(rename = "pc", default, skip_serializing_if = "Vec::is_empty")]
    pub parents: Vec<String>,
}

/// Most session ids a chained session carries of the sessions it was chained from.
pub const MAX_PARENTS: usize = 16;

impl SessionClaims {
    /// The parents of a session chained from this one: this session's own parents and this
    /// session, when it is a temporary session (a long-term key starts a chain and is no parent);
    /// at most [`MAX_PARENTS`], the first of the chain always kept.
    pub fn parents_of_child(&self) -> Vec<String> {
        if !is_temporary_access_key_id(&self.access_key_id) {
            return Vec::new();
        }
        let mut parents = self.parents.clone();
        parents.push(self.session_id.clone());
        if parents.len() > MAX_PARENTS {
            let drop = parents.len() - MAX_PARENTS;
            parents.drain(1..=drop);
        }
        parents
    }
}

impl fmt::Debug for SessionClaims {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SessionClaims")
            .field("access_key_id", &self.access_key_id)
            .field("secret_access_key", &"***")
            .field("session_id", &self.session_id)
            .field("principal", &self.principal)
            .field("issued_at", &self.issued_at)
            .field("expires_at", &self.expires_at)
            .finish_non_exhaustive()
    }
}

const BASE32: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";
const SECRET_ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

/// A bearer token of 32 random bytes, base64url without padding (256 bits): portal sessions, SSO
/// sign-ins, codes.
pub fn random_token() -> Result<String> {
    use base64::Engine;
    let mut b = [0u8; 32];
    fill_random(&mut b)?;
    Ok(base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(b))
}

/// The store key of a bearer token: its SHA-256 in hex, so that the store never holds the token.
pub fn token_key(token: &str) -> String {
    crate::sigv4::sha256_hex(token.as_bytes())
}

/// Fills `out` from the system's cryptographic generator, through a per-thread buffer refilled
/// [`RANDOM_POOL`] bytes at a time: one generator call serves many identifiers and keys. Bytes are
/// handed out once and wiped from the buffer as they are.
pub fn fill_random(out: &mut [u8]) -> Result<()> {
    use std::cell::RefCell;
    thread_local! {
        static POOL: RefCell<([u8; RANDOM_POOL], usize)> = const { RefCell::new(([0; RANDOM_POOL], RANDOM_POOL)) };
    }
    if out.len() > RANDOM_POOL {
        return SystemRandom::new()
            .fill(out)
            .map_err(|_| CredentialError::Random);
    }
    POOL.with_borrow_mut(|(buf, used)| {
        if RANDOM_POOL - *used < out.len() {
            SystemRandom::new()
                .fill(buf)
                .map_err(|_| CredentialError::Random)?;
            *used = 0;
        }
        let taken = &mut buf[*used..*used + out.len()];
        out.copy_from_slice(taken);
        taken.fill(0);
        *used += out.len();
        Ok(())
    })
}

/// Size of the per-thread buffer of [`fill_random`].
const RANDOM_POOL: usize = 1024;

fn random_bytes<const N: usize>() -> Result<[u8; N]> {
    let mut b = [0u8; N];
    fill_random(&mut b)?;
    Ok(b)
}

fn random_from(alphabet: &[u8], len: usize) -> Result<String> {
    // Alphabets are 32 or 64 symbols, so masking the byte keeps the distribution uniform.
    let mut bytes = [0u8; 64];
    let bytes = &mut bytes[..len.min(64)];
    fill_random(bytes)?;
    Ok(bytes
        .iter()
        .map(|b| alphabet[(*b as usize) % alphabet.len()] as char)
        .collect())
}

/// A new temporary access key id: `ASIA` + 16 base32 characters.
pub fn new_temporary_access_key_id() -> Result<String> {
    Ok(format!("ASIA{}", random_from(BASE32, 16)?))
}

/// A new 40-character secret access key.
pub fn new_secret_access_key() -> Result<String> {
    random_from(SECRET_ALPHABET, 40)
}

/// A new random session id (hex, 128 bits).
pub fn new_session_id() -> Result<String> {
    Ok(hex::encode(random_bytes::<16>()?))
}

/// Whether an access key id has the shape of a temporary one.
pub fn is_temporary_access_key_id(s: &str) -> bool {
    s.len() == 20 && s.starts_with("ASIA") && s[4..].bytes().all(|b| BASE32.contains(&b))
}

/// Constant-time equality of two tokens (secrets, hashes, CSRF tokens, nonces): the time taken does
/// not depend on where they differ, only on whether their lengths do.
pub fn same_token(a: &str, b: &str) -> bool {
    a.len() == b.len() && bool::from(subtle::ConstantTimeEq::ct_eq(a.as_bytes(), b.as_bytes()))
}

#[cfg(test)]
mod tests;
