//! The sealing-key ring: AES-256-GCM keys with ids, the newest unretired one sealing, every kept one
//! unsealing. Keys are generated on first start, stored, rotated with a new id, and deleted only after
//! every token they sealed has expired.

use super::{random_bytes, CredentialError, Result, SessionClaims};
use crate::store::{KeyBytes, SealingKey, Store};
use aws_lc_rs::aead::{Aad, LessSafeKey, Nonce, UnboundKey, AES_256_GCM, NONCE_LEN};
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use parking_lot::RwLock;
use std::collections::HashMap;
use std::sync::Arc;

/// How long a retired key is kept: the longest session (36 h) plus the largest clock skew.
pub const KEY_RETENTION_SECONDS: i64 = 129_600 + 900;

const FORMAT_VERSION: u8 = 1;
const SESSION_PURPOSE: &[u8] = b"rolegate session token v1";

/// How many opened session tokens are kept; the cache is emptied when it is full.
pub const OPEN_SESSION_CACHE: usize = 4096;

/// A session token already opened: its claims, and the SigV4 signing key of the scope it last
/// signed for (derived from the sealed secret; a client signs a day's requests with one scope).
pub struct OpenSession {
    claims: SessionClaims,
    signing: parking_lot::Mutex<Option<(String, crate::sigv4::SigningKey)>>,
    arn: std::sync::OnceLock<String>,
    user_id: std::sync::OnceLock<String>,
    role_arn: std::sync::OnceLock<Option<String>>,
}

impl OpenSession {
    /// An open session for `claims` (also for callers signing with long-term keys, whose claims
    /// are made up from the directory rather than unsealed).
    pub fn new(claims: SessionClaims) -> Self {
        OpenSession {
            claims,
            signing: parking_lot::Mutex::new(None),
            arn: std::sync::OnceLock::new(),
            user_id: std::sync::OnceLock::new(),
            role_arn: std::sync::OnceLock::new(),
        }
    }

    /// The principal's ARN ([`super::SessionPrincipal::arn`]), written once per open session:
    /// every signed call of a cached session names it in its audit event.
    pub fn principal_arn(&self) -> &str {
        self.arn.get_or_init(|| self.claims.principal.arn())
    }

    /// `UserId` as `GetCallerIdentity` reports it ([`super::SessionPrincipal::user_id`]), written
    /// once per open session.
    pub fn user_id(&self) -> &str {
        self.user_id.get_or_init(|| self.claims.principal.user_id())
    }

    /// The role's ARN for role sessions ([`super::SessionPrincipal::role_arn`]), written once per
    /// open session.
    pub fn role_arn(&self) -> Option<&str> {
        self.role_arn
            .get_or_init(|| self.claims.principal.role_arn())
            .as_deref()
    }

    /// The session's claims.
    pub fn claims(&self) -> &SessionClaims {
        &self.claims
    }

    /// The signing key of this session's secret for `date`/`region`/`service`, derived once per
    /// scope.
    pub fn signing_key(&self, date: &str, region: &str, service: &str) -> crate::sigv4::SigningKey {
        let mut slot = self.signing.lock();
        if let Some((scope, key)) = slot.as_ref() {
            let mut parts = scope.split('/');
            if parts.next() == Some(date)
                && parts.next() == Some(region)
                && parts.next() == Some(service)
            {
                return key.clone();
            }
        }
        let key =
            crate::sigv4::derive_signing_key(&self.claims.secret_access_key, date, region, service);
        *slot = Some((format!("{date}/{region}/{service}"), key.clone()));
        key
    }
}

impl std::ops::Deref for OpenSession {
    type Target = SessionClaims;

    fn deref(&self) -> &SessionClaims {
        &self.claims
    }
}

type OpenSessions = HashMap<Box<str>, Arc<OpenSession>, foldhash::fast::RandomState>;

/// One generation of keys, as read from the store, with the session tokens opened under it.
struct Ring {
    current: Option<String>,
    keys: HashMap<String, LessSafeKey>,
    /// Session tokens already opened with these keys, by their exact text (a token is authenticated
    /// before it is kept, so the same text opens to the same claims). A refresh starts a new
    /// generation with an empty cache, so a token opened with a key since deleted is not kept.
    open: parking_lot::Mutex<OpenSessions>,
}

impl Ring {
    fn new(current: Option<String>, keys: HashMap<String, LessSafeKey>) -> Ring {
        Ring {
            current,
            keys,
            open: parking_lot::Mutex::new(OpenSessions::default()),
        }
    }
}

/// The keys that seal and unseal tokens.
pub struct KeyRing {
    ring: RwLock<Arc<Ring>>,
}

impl KeyRing {
    /// Loads the keys from the store, creating the first one if there is none to seal with.
    pub async fn load(store: &dyn Store, now: i64) -> Result<KeyRing> {
        let kr = KeyRing {
            ring: RwLock::new(Arc::new(Ring::new(None, HashMap::new()))),
        };
        kr.refresh(store).await?;
        if kr.ring.read().current.is_none() {
            Self::create_key(store, now).await?;
            kr.refresh(store).await?;
        }
        Ok(kr)
    }

    /// Re-reads the keys from the store (other replicas may have rotated them).
    pub async fn refresh(&self, store: &dyn Store) -> Result<()> {
        let stored = store.sealing_keys().await?;
        let mut keys = HashMap::new();
        let mut current: Option<&SealingKey> = None;
        for k in &stored {
            let unbound = UnboundKey::new(&AES_256_GCM, k.secret.expose()).map_err(|_| {
                CredentialError::InvalidToken(format!("stored key {} is not 32 bytes", k.id))
            })?;
            keys.insert(k.id.clone(), LessSafeKey::new(unbound));
            if k.retired_at.is_none() {
                // Every replica picks the same key: newest creation time, then highest id.
                let newer = current.is_none_or(|c| (k.created_at, &k.id) > (c.created_at, &c.id));
                if newer {
                    current = Some(k);
                }
            }
        }
        let ring = Ring::new(current.map(|k| k.id.clone()), keys);
        *self.ring.write() = Arc::new(ring);
        Ok(())
    }

    async fn create_key(store: &dyn Store, now: i64) -> Result<String> {
        let id = hex::encode(random_bytes::<8>()?);
        let secret = random_bytes::<32>()?;
        let key = SealingKey {
            id: id.clone(),
            secret: KeyBytes::new(secret.to_vec()),
            created_at: now,
            retired_at: None,
        };
        store.insert_sealing_key(&key).await?;
        Ok(id)
    }

    /// Creates a new key that seals from now on and retires the others (they still unseal until
    /// [`KEY_RETENTION_SECONDS`] after retirement). Returns the new key id.
    pub async fn rotate(store: &dyn Store, now: i64) -> Result<String> {
        let old: Vec<String> = store
            .sealing_keys()
            .await?
            .into_iter()
            .filter(|k| k.retired_at.is_none())
            .map(|k| k.id)
            .collect();
        let id = Self::create_key(store, now).await?;
        for k in old {
            store.retire_sealing_key(&k, now).await?;
        }
        Ok(id)
    }

    /// Deletes keys retired long enough ago that nothing they sealed can still be valid.
    pub async fn delete_expired(store: &dyn Store, now: i64) -> Result<usize> {
        let mut n = 0;
        for k in store.sealing_keys().await? {
            if k.retired_at
                .is_some_and(|r| r + KEY_RETENTION_SECONDS < now)
            {
                store.delete_sealing_key(&k.id).await?;
                n += 1;
            }
        }
        Ok(n)
    }

    /// The id of the key that seals now.
    pub fn current_key_id(&self) -> Option<String> {
        self.ring.read().current.clone()
    }

    /// Seals `plaintext` for `purpose` with the current key: version, key id, nonce, ciphertext.
    pub fn seal_bytes(&self, purpose: &[u8], plaintext: &[u8]) -> Result<String> {
        let ring = self.ring.read().clone();
        let kid = ring.current.as_ref().ok_or(CredentialError::NoKey)?;
        let key = ring.keys.get(kid).ok_or(CredentialError::NoKey)?;
        let nonce_bytes = random_bytes::<NONCE_LEN>()?;
        let mut out = Vec::with_capacity(2 + kid.len() + NONCE_LEN + plaintext.len() + 16);
        out.push(FORMAT_VERSION);
        out.push(kid.len() as u8);
        out.extend_from_slice(kid.as_bytes());
        out.extend_from_slice(&nonce_bytes);
        let header_len = out.len();
        let mut body = plaintext.to_vec();
        key.seal_in_place_append_tag(
            Nonce::assume_unique_for_key(nonce_bytes),
            Aad::from(aad(purpose, kid)),
            &mut body,
        )
        .map_err(|_| CredentialError::Random)?;
        out.truncate(header_len);
        out.extend_from_slice(&body);
        Ok(URL_SAFE_NO_PAD.encode(out))
    }

    /// Opens a value sealed by [`KeyRing::seal_bytes`] for the same purpose.
    pub fn unseal_bytes(&self, purpose: &[u8], token: &str) -> Result<Vec<u8>> {
        let ring = self.ring.read().clone();
        unseal_with(&ring, purpose, token)
    }

    /// Seals a session into a session token.
    pub fn seal_session(&self, claims: &SessionClaims) -> Result<String> {
        let json =
            serde_json::to_vec(claims).map_err(|e| CredentialError::InvalidToken(e.to_string()))?;
        self.seal_bytes(SESSION_PURPOSE, &json)
    }

    /// Opens a session token like [`KeyRing::unseal_session`], from the cache of opened tokens when
    /// this exact token was opened before.
    pub fn open_session(&self, token: &str) -> Result<Arc<OpenSession>> {
        let ring = self.ring.read().clone();
        if let Some(s) = ring.open.lock().get(token) {
            return Ok(s.clone());
        }
        let plain = unseal_with(&ring, SESSION_PURPOSE, token)?;
        let session = Arc::new(OpenSession::new(session_claims(&plain)?));
        let mut open = ring.open.lock();
        if open.len() >= OPEN_SESSION_CACHE {
            open.clear();
        }
        open.insert(token.into(), session.clone());
        Ok(session)
    }

    /// Opens a session token; fails for anything not sealed by one of our keys.
    pub fn unseal_session(&self, token: &str) -> Result<SessionClaims> {
        session_claims(&self.unseal_bytes(SESSION_PURPOSE, token)?)
    }
}

fn session_claims(plain: &[u8]) -> Result<SessionClaims> {
    serde_json::from_slice(plain)
        .map_err(|e| CredentialError::InvalidToken(format!("bad session: {e}")))
}

/// Opens `token` sealed for `purpose` with one of `ring`'s keys.
fn unseal_with(ring: &Ring, purpose: &[u8], token: &str) -> Result<Vec<u8>> {
    let bad = |why: &str| CredentialError::InvalidToken(why.to_string());
    let raw = URL_SAFE_NO_PAD
        .decode(token.trim_end_matches('='))
        .map_err(|_| bad("not base64url"))?;
    let (&version, rest) = raw.split_first().ok_or_else(|| bad("empty"))?;
    if version != FORMAT_VERSION {
        return Err(bad("unknown format version"));
    }
    let (&kid_len, rest) = rest.split_first().ok_or_else(|| bad("truncated"))?;
    let kid_len = kid_len as usize;
    if rest.len() < kid_len + NONCE_LEN + 16 {
        return Err(bad("truncated"));
    }
    let (kid, rest) = rest.split_at(kid_len);
    let kid = std::str::from_utf8(kid).map_err(|_| bad("key id not utf-8"))?;
    let (nonce, sealed) = rest.split_at(NONCE_LEN);
    let key = ring
        .keys
        .get(kid)
        .ok_or_else(|| CredentialError::InvalidToken(format!("unknown sealing key {kid}")))?;
    let nonce = Nonce::try_assume_unique_for_key(nonce).map_err(|_| bad("bad nonce"))?;
    let mut buf = sealed.to_vec();
    let plain = key
        .open_in_place(nonce, Aad::from(aad(purpose, kid)), &mut buf)
        .map_err(|_| bad("authentication failed"))?;
    Ok(plain.to_vec())
}

fn aad(purpose: &[u8], kid: &str) -> Vec<u8> {
    let mut a = Vec::with_capacity(purpose.len() + 1 + kid.len());
    a.extend_from_slice(purpose);
    a.push(0);
    a.extend_from_slice(kid.as_bytes());
    a
}
