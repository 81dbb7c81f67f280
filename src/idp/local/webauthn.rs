//! WebAuthn security keys as a second factor for local users.
//!
//! This module owns the WebAuthn ceremonies for *security keys used as a
//! second factor* after a password, built on the `webauthn-rs` security-key
//! API (not passkeys: the key is never the only factor and is not
//! discoverable):
//!
//! * producing the options JSON for `navigator.credentials.create()` /
//!   `navigator.credentials.get()`,
//! * turning ceremony state and registered credentials into plain JSON strings
//!   ([`PendingCeremony`], [`StoredKey`]) that the caller persists,
//! * verifying the browser's responses: challenge, origin, RP id hash,
//!   user presence, signature, excluded credentials, expiry of the pending
//!   ceremony and a strictly increasing signature counter checked against the
//!   key as it is stored *now* (not only as it was when the ceremony started).
//!
//! It must not know about HTTP, sessions, users, storage or the clock: the
//! caller hands in the stored keys of the one user concerned, the pending
//! ceremony it stored, and the current time (Unix seconds). In particular the
//! caller is responsible for:
//!
//! * **single use of a challenge**: a [`PendingCeremony`] must be deleted
//!   atomically when it is consumed (e.g. `DELETE ... RETURNING`), whatever the
//!   outcome, so that the same state can never be finished twice;
//! * binding a pending ceremony to the user/session that started it and
//!   passing that same user's keys to the finish call;
//! * rejecting a newly registered [`StoredKey::credential_id`] that is already
//!   registered to any user (a unique index on the column);
//! * writing back the updated [`StoredKey`] returned by
//!   [`WebAuthnMfa::finish_authentication`], preferably conditionally on the
//!   stored value being unchanged since it was read, so that two concurrent
//!   ceremonies cannot both be accepted with the same counter.

use std::time::Duration;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use serde::{Deserialize, Serialize};
use webauthn_rs::prelude::{
    Credential, CredentialID, PublicKeyCredential, RegisterPublicKeyCredential, SecurityKey,
    SecurityKeyAuthentication, SecurityKeyRegistration, Webauthn,
};

use crate::config::WebAuthnSettings;

/// Lifetime of a pending ceremony, in seconds. Also sent to the browser as
/// the ceremony `timeout` (in milliseconds).
pub const CEREMONY_SECONDS: i64 = 300;

/// Why a WebAuthn operation failed.
#[derive(Debug, thiserror::Error)]
pub enum WebAuthnError {
    /// The relying-party settings are unusable.
    #[error("webauthn configuration: {0}")]
    Config(String),
    /// The ceremony failed (bad response, wrong origin/RP/challenge, expired,
    /// unknown key, bad signature, counter not increasing, ...): the reason.
    #[error("webauthn ceremony rejected: {0}")]
    Rejected(String),
    /// A stored (or to-be-stored) pending state or credential could not be
    /// (de)serialised or is inconsistent.
    #[error("webauthn stored data corrupt: {0}")]
    Corrupt(String),
}

/// A registered security key, as stored.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct StoredKey {
    /// Credential id, base64url without padding. Unique across all users.
    pub credential_id: String,
    /// User-chosen label, stored as given (the caller validates it).
    pub label: String,
    /// The `webauthn-rs` credential (public key, counter, flags), as JSON.
    pub credential: String,
    /// Registration time, Unix seconds.
    pub created_at: i64,
    /// Last signature counter seen for this key (0 for keys without a
    /// counter). Kept in step with the counter inside `credential`; the
    /// counter check uses the higher of the two.
    pub sign_count: u32,
}

/// A ceremony in progress, as stored between the start and finish requests.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct PendingCeremony {
    /// The challenge sent to the browser, base64url without padding.
    pub challenge: String,
    /// The `webauthn-rs` ceremony state, as JSON. Server-side only: never
    /// send it to the client.
    pub state: String,
    /// Unix seconds from which the ceremony is refused.
    pub expires_at: i64,
}

/// Registration and verification of security keys as a second factor.
///
/// User verification is `preferred`, the policy `webauthn-rs` fixes for
/// security keys: a key with a PIN or biometric is asked to use it, and a key
/// that verified the user at registration must verify at every later use.
/// Registration does not request the `credProtect` extension that `webauthn-rs`
/// adds (level `userVerificationRequired`, not enforced): Chromium refuses that
/// level unless user verification is `required` ("Requested protection policy is
/// inconsistent"), so it is taken out of the options. Attestation is not
/// requested (`none`).
#[derive(Debug, Clone)]
pub struct WebAuthnMfa {
    webauthn: Webauthn,
}

impl WebAuthnMfa {
    /// Builds the verifier for one relying party.
    ///
    /// Fails with [`WebAuthnError::Config`] if `rp_id` is not the origin's host
    /// or a suffix of it, if the origin is not `https` (plain `http` is allowed
    /// for `localhost` only), or if `rp_name` is blank.
    pub fn new(s: &WebAuthnSettings) -> Result<Self, WebAuthnError> {
        let webauthn = s
            .builder()
            .map_err(WebAuthnError::Config)?
            .timeout(Duration::from_secs(CEREMONY_SECONDS.unsigned_abs()))
            .build()
            .map_err(|e| WebAuthnError::Config(e.to_string()))?;
        Ok(Self { webauthn })
    }

    /// Starts registering a new key for a user.
    ///
    /// Returns the options for `navigator.credentials.create()` (the
    /// `{"publicKey": {...}}` object; binary fields are base64url) and the
    /// pending ceremony to store. Keys in `existing` are listed in
    /// `excludeCredentials` and refused at finish. `user_handle` is the user's
    /// stable id; `user_name` is their login name (also used as display name).
    pub fn start_registration(
        &self,
        user_handle: uuid::Uuid,
        user_name: &str,
        existing: &[StoredKey],
        now: i64,
    ) -> Result<(serde_json::Value, PendingCeremony), WebAuthnError> {
        let exclude = existing
            .iter()
            .map(|k| decode_key(k).map(|sk| sk.cred_id().clone()))
            .collect::<Result<Vec<CredentialID>, _>>()?;
        let (options, state) = self
            .webauthn
            .start_securitykey_registration(
                user_handle,
                user_name,
                user_name,
                Some(exclude),
                None,
                None,
            )
            .map_err(rejected)?;
        let challenge = URL_SAFE_NO_PAD.encode(options.public_key.challenge.as_ref());
        let pending = pending(challenge, &state, now)?;
        let mut options = serde_json::to_value(&options)
            .map_err(|e| WebAuthnError::Corrupt(format!("registration options: {e}")))?;
        if let Some(ext) = options
            .pointer_mut("/publicKey/extensions")
            .and_then(serde_json::Value::as_object_mut)
        {
            ext.remove("credentialProtectionPolicy");
            ext.remove("enforceCredentialProtectionPolicy");
        }
        Ok((options, pending))
    }

    /// Finishes a registration with the browser's response (the
    /// `RegisterPublicKeyCredential` JSON: `id`, `rawId`, `type`,
    /// `response.{clientDataJSON, attestationObject, transports}`,
    /// `clientExtensionResults`, binary fields base64url).
    ///
    /// Refuses an expired ceremony (`now >= expires_at`), a response to another
    /// challenge, a wrong origin or RP id, a missing user-presence flag and a
    /// key listed as excluded. Attestation is not required (`none` is
    /// accepted). Returns the key to store.
    pub fn finish_registration(
        &self,
        pending: &PendingCeremony,
        response: &serde_json::Value,
        label: &str,
        now: i64,
    ) -> Result<StoredKey, WebAuthnError> {
        check_not_expired(pending, now)?;
        let state: SecurityKeyRegistration = serde_json::from_str(&pending.state)
            .map_err(|e| WebAuthnError::Corrupt(format!("registration state: {e}")))?;
        let response = RegisterPublicKeyCredential::deserialize(response).map_err(|e| {
            WebAuthnError::Rejected(format!("malformed registration response: {e}"))
        })?;
        let key = self
            .webauthn
            .finish_securitykey_registration(&response, &state)
            .map_err(rejected)?;
        let sign_count = Credential::from(key.clone()).counter;
        Ok(StoredKey {
            credential_id: URL_SAFE_NO_PAD.encode(key.cred_id().as_ref()),
            label: label.to_owned(),
            credential: encode_key(&key)?,
            created_at: now,
            sign_count,
        })
    }

    /// Starts an authentication with the user's registered keys.
    ///
    /// Returns the options for `navigator.credentials.get()` (the
    /// `{"publicKey": {...}}` object; `allowCredentials` lists `keys`) and the
    /// pending ceremony to store. Refuses an empty `keys`.
    pub fn start_authentication(
        &self,
        keys: &[StoredKey],
        now: i64,
    ) -> Result<(serde_json::Value, PendingCeremony), WebAuthnError> {
        if keys.is_empty() {
            return Err(WebAuthnError::Rejected(
                "no security key is registered".to_owned(),
            ));
        }
        let keys = keys
            .iter()
            .map(decode_key)
            .collect::<Result<Vec<SecurityKey>, _>>()?;
        let (options, state) = self
            .webauthn
            .start_securitykey_authentication(&keys)
            .map_err(rejected)?;
        let challenge = URL_SAFE_NO_PAD.encode(options.public_key.challenge.as_ref());
        let pending = pending(challenge, &state, now)?;
        let options = serde_json::to_value(&options)
            .map_err(|e| WebAuthnError::Corrupt(format!("authentication options: {e}")))?;
        Ok((options, pending))
    }

    /// Verifies an assertion (the `PublicKeyCredential` JSON: `id`, `rawId`,
    /// `type`, `response.{clientDataJSON, authenticatorData, signature,
    /// userHandle}`, binary fields base64url) against the pending ceremony and
    /// the user's keys as stored now.
    ///
    /// Refuses an expired ceremony, a response to another challenge, a wrong
    /// origin or RP id, a missing user-presence flag, a missing user
    /// verification for a key that verified the user at registration, a bad
    /// signature, a credential not in `keys` (also one removed since the
    /// ceremony started), and a signature counter that does not increase over
    /// the stored one when either is non-zero.
    ///
    /// Returns the credential id used and, when its counter or backup state
    /// changed, the updated key to write back.
    pub fn finish_authentication(
        &self,
        pending: &PendingCeremony,
        response: &serde_json::Value,
        keys: &[StoredKey],
        now: i64,
    ) -> Result<(String, Option<StoredKey>), WebAuthnError> {
        check_not_expired(pending, now)?;
        let state: SecurityKeyAuthentication = serde_json::from_str(&pending.state)
            .map_err(|e| WebAuthnError::Corrupt(format!("authentication state: {e}")))?;
        let response = PublicKeyCredential::deserialize(response).map_err(|e| {
            WebAuthnError::Rejected(format!("malformed authentication response: {e}"))
        })?;
        // Checks challenge, origin, RP id, flags and signature, and the counter
        // against the copy of the key captured when the ceremony started.
        let result = self
            .webauthn
            .finish_securitykey_authentication(&response, &state)
            .map_err(rejected)?;

        let credential_id = URL_SAFE_NO_PAD.encode(result.cred_id().as_ref());
        let stored = keys
            .iter()
            .find(|k| k.credential_id == credential_id)
            .ok_or_else(|| {
                WebAuthnError::Rejected(format!(
                    "credential {credential_id} is not registered to this user"
                ))
            })?;
        let mut key = decode_key(stored)?;

        // The counter check again, against the key as stored now: a copy of the
        // key may have advanced since the ceremony started.
        let stored_count = Credential::from(key.clone()).counter.max(stored.sign_count);
        let presented = result.counter();
        if (presented > 0 || stored_count > 0) && presented <= stored_count {
            return Err(WebAuthnError::Rejected(format!(
                "signature counter did not increase (stored {stored_count}, presented {presented}): possible cloned key or replay"
            )));
        }

        let changed = key.update_credential(&result).ok_or_else(|| {
            WebAuthnError::Corrupt(format!("credential {credential_id} does not match its id"))
        })?;
        let updated = if changed {
            Some(StoredKey {
                credential: encode_key(&key)?,
                sign_count: Credential::from(key).counter,
                ..stored.clone()
            })
        } else {
            None
        };
        Ok((credential_id, updated))
    }
}

/// Refuses a ceremony whose deadline has passed.
fn check_not_expired(pending: &PendingCeremony, now: i64) -> Result<(), WebAuthnError> {
    if now >= pending.expires_at {
        return Err(WebAuthnError::Rejected(format!(
            "ceremony expired at {} (now {now})",
            pending.expires_at
        )));
    }
    Ok(())
}

/// Wraps a ceremony state for storage.
fn pending<S: Serialize>(
    challenge: String,
    state: &S,
    now: i64,
) -> Result<PendingCeremony, WebAuthnError> {
    let state = serde_json::to_string(state)
        .map_err(|e| WebAuthnError::Corrupt(format!("ceremony state: {e}")))?;
    Ok(PendingCeremony {
        challenge,
        state,
        expires_at: now.saturating_add(CEREMONY_SECONDS),
    })
}

/// Reads a stored key and checks that it is the credential its id says.
fn decode_key(stored: &StoredKey) -> Result<SecurityKey, WebAuthnError> {
    let key: SecurityKey = serde_json::from_str(&stored.credential)
        .map_err(|e| WebAuthnError::Corrupt(format!("credential {}: {e}", stored.credential_id)))?;
    if URL_SAFE_NO_PAD.encode(key.cred_id().as_ref()) != stored.credential_id {
        return Err(WebAuthnError::Corrupt(format!(
            "credential {} holds a different credential id",
            stored.credential_id
        )));
    }
    Ok(key)
}

/// Serialises a key for storage.
fn encode_key(key: &SecurityKey) -> Result<String, WebAuthnError> {
    serde_json::to_string(key).map_err(|e| WebAuthnError::Corrupt(format!("credential: {e}")))
}

/// Maps a `webauthn-rs` ceremony error to a rejection with its reason.
fn rejected(e: webauthn_rs::prelude::WebauthnError) -> WebAuthnError {
    WebAuthnError::Rejected(format!("{e} ({e:?})"))
}
