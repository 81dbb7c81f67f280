//! Derived signing keys of long-term secrets, kept for the scope they signed: a client signs a day's
//! requests for one region and service with one key, and deriving it (four HMACs and a key
//! schedule) costs more than the rest of the signature check.
//!
//! An entry is found by a digest of the access key id, the scope and the secret together, so a
//! secret that changed for the same key id never finds the key of the old one. A key is kept only
//! after a request verified with it: a client without the secret adds nothing, whatever scopes it
//! names. The cache only spares the derivation: every request is still verified, and the caller
//! still decides whether the key and its owner may sign at all.

use std::collections::HashMap;
use std::fmt;

use aws_lc_rs::digest;

use super::{derive_signing_key, verify_with_key, Authorization, Result, SignedRequest};
use super::{SigningKey, VerifyOptions};
use chrono::{DateTime, Utc};

/// How many signing keys are kept; the cache is emptied when it is full.
pub const SIGNING_KEY_CACHE: usize = 4096;

/// What distinguishes the inputs of one entry, and nothing of the secret that could be read back.
const DOMAIN: &[u8] = b"rolegate sigv4 signing-key cache v1\0";

type Entries = HashMap<[u8; 32], SigningKey, foldhash::fast::RandomState>;

/// Signing keys by access key id, scope and secret (see the module documentation).
#[derive(Default)]
pub struct SigningKeyCache {
    entries: parking_lot::Mutex<Entries>,
}

impl fmt::Debug for SigningKeyCache {
    /// The number of keys only.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SigningKeyCache")
            .field("keys", &self.len())
            .finish()
    }
}

impl SigningKeyCache {
    /// An empty cache.
    pub fn new() -> Self {
        Self::default()
    }

    /// How many keys are kept.
    pub fn len(&self) -> usize {
        self.entries.lock().len()
    }

    /// Whether no key is kept.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// [`super::verify`] with the signing key of `secret_access_key` for the authorization's scope
    /// taken from the cache when a request already verified with it, derived (and kept if this
    /// request verifies) otherwise. The outcome is always [`super::verify`]'s.
    pub fn verify(
        &self,
        req: &SignedRequest,
        auth: &Authorization,
        secret_access_key: &str,
        now: DateTime<Utc>,
        opts: &VerifyOptions,
    ) -> Result<()> {
        let id = entry_id(auth, secret_access_key);
        let cached = self.entries.lock().get(&id).cloned();
        if let Some(key) = cached {
            return verify_with_key(req, auth, &key, now, opts);
        }
        let key = derive_signing_key(
            secret_access_key,
            &auth.scope_date,
            &auth.region,
            &auth.service,
        );
        let verified = verify_with_key(req, auth, &key, now, opts);
        if verified.is_ok() {
            let mut entries = self.entries.lock();
            if entries.len() >= SIGNING_KEY_CACHE {
                entries.clear();
            }
            entries.insert(id, key);
        }
        verified
    }
}

/// SHA-256 over the access key id, the scope and the secret, each preceded by its length so that no
/// two different inputs run together into the same bytes.
fn entry_id(auth: &Authorization, secret: &str) -> [u8; 32] {
    let mut ctx = digest::Context::new(&digest::SHA256);
    ctx.update(DOMAIN);
    for part in [
        auth.access_key_id.as_bytes(),
        auth.scope_date.as_bytes(),
        auth.region.as_bytes(),
        auth.service.as_bytes(),
        secret.as_bytes(),
    ] {
        ctx.update(&(part.len() as u64).to_be_bytes());
        ctx.update(part);
    }
    let mut out = [0u8; 32];
    out.copy_from_slice(ctx.finish().as_ref());
    out
}
