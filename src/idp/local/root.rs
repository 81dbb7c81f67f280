//! The root user and its bootstrap: root is created at first start, and until it has a password and
//! an MFA device a one-time bootstrap token (only its hash is stored) lets the operator set both.

use super::password::Password;
use super::{
    encode, Directory, DirectoryError, Result, TotpEnrolment, User, BOOTSTRAP, BOOTSTRAP_SECONDS,
    ROOT, USER,
};
use crate::store::{DirWrite, Versioned};
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Serialize, Deserialize)]
struct BootstrapToken {
    sha256: String,
    expires_at: i64,
}

/// Where the root bootstrap stands, as [`Directory::ensure_root`] finds it at a start.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RootBootstrap {
    /// Root has a password and an MFA device.
    Done,
    /// A new one-time token was issued: show it to the operator, once.
    NewToken {
        /// The token.
        token: String,
        /// Unix seconds when it stops being valid.
        expires_at: i64,
    },
    /// The token shown at an earlier start is still valid and unused.
    Pending {
        /// Unix seconds when it stops being valid (a new one is issued at the first start after).
        expires_at: i64,
    },
}

impl RootBootstrap {
    /// The token, when one was just issued.
    pub fn new_token(&self) -> Option<&str> {
        match self {
            Self::NewToken { token, .. } => Some(token),
            _ => None,
        }
    }
}

impl Directory {
    /// Creates the root user at first start. While root has no password and MFA device, a fresh
    /// one-time bootstrap token is issued (and returned, to be shown to the operator once) whenever
    /// none is valid; otherwise the pending state is returned, so that every start can say so.
    pub async fn ensure_root(&self) -> Result<RootBootstrap> {
        let now = self.now();
        let root = match self.read::<User>(USER, ROOT).await? {
            Some((u, _)) => u,
            None => {
                let u = User::new(ROOT, "/", true, now)?;
                self.insert_user(&u).await?;
                self.user(ROOT).await?
            }
        };
        if root.password_hash.is_some() && root.has_mfa() {
            return Ok(RootBootstrap::Done);
        }
        let current = self.read::<BootstrapToken>(BOOTSTRAP, ROOT).await?;
        if let Some((t, _)) = &current {
            if t.expires_at > now {
                return Ok(RootBootstrap::Pending {
                    expires_at: t.expires_at,
                });
            }
        }
        let mut raw = [0u8; 32];
        crate::credentials::fill_random(&mut raw)
            .map_err(|e| DirectoryError::Internal(e.to_string()))?;
        let token = hex::encode(raw);
        let record = BootstrapToken {
            sha256: crate::sigv4::sha256_hex(token.as_bytes()),
            expires_at: now + BOOTSTRAP_SECONDS,
        };
        let write = DirWrite::put(
            BOOTSTRAP,
            ROOT,
            current.as_ref().map(|(_, v)| v),
            encode(&record)?,
        );
        if self.store.dir_write(&[write]).await? {
            Ok(RootBootstrap::NewToken {
                token,
                expires_at: record.expires_at,
            })
        } else {
            // Another replica issued one at the same moment: it shows that one.
            Ok(RootBootstrap::Pending {
                expires_at: record.expires_at,
            })
        }
    }

    async fn check_bootstrap(&self, token: &str) -> Result<Versioned> {
        let now = self.now();
        let denied = || DirectoryError::Denied("the bootstrap token is not valid".into());
        let (t, v) = self
            .read::<BootstrapToken>(BOOTSTRAP, ROOT)
            .await?
            .ok_or_else(denied)?;
        let same = subtle::ConstantTimeEq::ct_eq(
            crate::sigv4::sha256_hex(token.as_bytes()).as_bytes(),
            t.sha256.as_bytes(),
        );
        if !bool::from(same) || t.expires_at <= now {
            return Err(denied());
        }
        Ok(v)
    }

    /// Step one of the root bootstrap: with a valid token, sets root's password and starts a TOTP
    /// device. The token stays valid until [`Directory::bootstrap_finish`].
    pub async fn bootstrap_start(&self, token: &str, password: Password) -> Result<TotpEnrolment> {
        self.check_bootstrap(token).await?;
        self.set_password(ROOT, password).await?;
        self.create_totp(ROOT).await
    }

    /// Step two: two consecutive codes enable root's device and use up the token.
    pub async fn bootstrap_finish(&self, token: &str, code1: &str, code2: &str) -> Result<()> {
        let v = self.check_bootstrap(token).await?;
        self.enable_totp(ROOT, code1, code2).await?;
        self.store
            .dir_write(&[DirWrite::delete(BOOTSTRAP, ROOT, v.version)])
            .await?;
        Ok(())
    }
}
