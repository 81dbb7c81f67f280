//! Ceremony tests against a software security key that produces spec-shaped
//! responses: "none" attestation, ES256 (P-256) credential, CTAP2 canonical
//! CBOR, browser-shaped clientDataJSON and response JSON.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use rolegate::config::WebAuthnSettings;
use rolegate::idp::local::webauthn::{
    PendingCeremony, StoredKey, WebAuthnError, WebAuthnMfa, CEREMONY_SECONDS,
};
use serde_json::Value;
use uuid::Uuid;

#[path = "support/softkey.rs"]
mod soft;

use soft::SoftKey;

const ORIGIN: &str = "https://login.example.com";
const RP_ID: &str = "example.com";
const NOW: i64 = 1_700_000_000;

fn settings() -> WebAuthnSettings {
    WebAuthnSettings {
        rp_id: RP_ID.to_owned(),
        rp_origin: url::Url::parse(ORIGIN).unwrap(),
        rp_name: "rolegate".to_owned(),
    }
}

fn mfa() -> WebAuthnMfa {
    WebAuthnMfa::new(&settings()).unwrap()
}

fn alice() -> Uuid {
    Uuid::from_u128(0x0123_4567_89ab_cdef_0123_4567_89ab_cdef)
}

fn challenge_of(options: &Value) -> String {
    options["publicKey"]["challenge"]
        .as_str()
        .unwrap()
        .to_owned()
}

/// Registers `key` for alice as a browser at ORIGIN would.
fn register(mfa: &WebAuthnMfa, key: &SoftKey, existing: &[StoredKey]) -> StoredKey {
    let (options, pending) = mfa
        .start_registration(alice(), "alice", existing, NOW)
        .unwrap();
    let rp_id = options["publicKey"]["rp"]["id"].as_str().unwrap();
    let response = key.make_credential(&challenge_of(&options), ORIGIN, rp_id);
    mfa.finish_registration(&pending, &response, "my key", NOW + 10)
        .unwrap()
}

/// Starts an authentication and lets `key` answer it as a browser at ORIGIN would.
fn assert_with(
    mfa: &WebAuthnMfa,
    key: &mut SoftKey,
    keys: &[StoredKey],
) -> (PendingCeremony, Value) {
    let (options, pending) = mfa.start_authentication(keys, NOW).unwrap();
    let rp_id = options["publicKey"]["rpId"].as_str().unwrap().to_owned();
    let response = key.get_assertion(&challenge_of(&options), ORIGIN, &rp_id);
    (pending, response)
}

#[track_caller]
fn assert_rejected<T: std::fmt::Debug>(result: Result<T, WebAuthnError>, reason: &str) {
    match result {
        Err(WebAuthnError::Rejected(msg)) => {
            assert!(
                msg.contains(reason),
                "rejected for {msg:?}, expected {reason:?}"
            )
        }
        other => panic!("expected rejection for {reason:?}, got {other:?}"),
    }
}

#[track_caller]
fn assert_corrupt<T: std::fmt::Debug>(result: Result<T, WebAuthnError>) {
    match result {
        Err(WebAuthnError::Corrupt(_)) => {}
        other => panic!("expected Corrupt, got {other:?}"),
    }
}

/// Flips one bit of a base64url field of `response.response`.
fn flip_last_bit(response: &mut Value, field: &str) {
    let encoded = response["response"][field].as_str().unwrap();
    let mut raw = URL_SAFE_NO_PAD.decode(encoded).unwrap();
    *raw.last_mut().unwrap() ^= 0x01;
    response["response"][field] = Value::String(URL_SAFE_NO_PAD.encode(raw));
}

#[test]
fn register_then_authenticate_succeeds() {
    let mfa = mfa();
    let mut key = SoftKey::new();
    let stored = register(&mfa, &key, &[]);
    assert_eq!(stored.credential_id, key.id());
    assert_eq!(stored.label, "my key");
    assert_eq!(stored.created_at, NOW + 10);
    assert_eq!(stored.sign_count, 0);

    let (pending, response) = assert_with(&mfa, &mut key, std::slice::from_ref(&stored));
    let (used, updated) = mfa
        .finish_authentication(&pending, &response, std::slice::from_ref(&stored), NOW + 20)
        .unwrap();
    assert_eq!(used, key.id());
    let updated = updated.expect("counter advanced, so the key must be written back");
    assert_eq!(updated.sign_count, 1);
    assert_eq!(updated.credential_id, stored.credential_id);
    assert_eq!(updated.label, stored.label);
    assert_eq!(updated.created_at, stored.created_at);

    // The written-back key keeps working and keeps counting.
    let (pending, response) = assert_with(&mfa, &mut key, std::slice::from_ref(&updated));
    let (_, again) = mfa
        .finish_authentication(
            &pending,
            &response,
            std::slice::from_ref(&updated),
            NOW + 30,
        )
        .unwrap();
    assert_eq!(again.unwrap().sign_count, 2);
}

#[test]
fn options_carry_rp_user_challenge_and_policy() {
    let mfa = mfa();
    let (options, pending) = mfa.start_registration(alice(), "alice", &[], NOW).unwrap();
    let pk = &options["publicKey"];
    assert_eq!(pk["rp"]["id"], RP_ID);
    assert_eq!(pk["rp"]["name"], "rolegate");
    assert_eq!(pk["user"]["id"], URL_SAFE_NO_PAD.encode(alice().as_bytes()));
    assert_eq!(pk["user"]["name"], "alice");
    assert_eq!(pk["challenge"], pending.challenge);
    assert_eq!(
        URL_SAFE_NO_PAD.decode(&pending.challenge).unwrap().len(),
        32
    );
    assert_eq!(pk["timeout"], CEREMONY_SECONDS * 1000);
    assert_eq!(
        pk["authenticatorSelection"]["userVerification"],
        "preferred"
    );
    // credProtect at userVerificationRequired without required UV: Chromium refuses the options.
    let ext = pk["extensions"].as_object().unwrap();
    assert!(
        !ext.contains_key("credentialProtectionPolicy")
            && !ext.contains_key("enforceCredentialProtectionPolicy"),
        "{ext:?}"
    );
    assert_eq!(pending.expires_at, NOW + CEREMONY_SECONDS);

    let key = SoftKey::new();
    let stored = register(&mfa, &key, &[]);
    let (options, pending) = mfa
        .start_authentication(std::slice::from_ref(&stored), NOW)
        .unwrap();
    let pk = &options["publicKey"];
    assert_eq!(pk["rpId"], RP_ID);
    assert_eq!(pk["challenge"], pending.challenge);
    assert_eq!(pk["userVerification"], "preferred");
    assert_eq!(pk["allowCredentials"][0]["id"], key.id());
    assert_eq!(pk["allowCredentials"].as_array().unwrap().len(), 1);
    assert_eq!(pending.expires_at, NOW + CEREMONY_SECONDS);
}

#[test]
fn exclude_list_contains_existing_keys_and_they_cannot_register_again() {
    let mfa = mfa();
    let (k1, k2) = (SoftKey::new(), SoftKey::new());
    let s1 = register(&mfa, &k1, &[]);
    let s2 = register(&mfa, &k2, std::slice::from_ref(&s1));

    let existing = [s1.clone(), s2.clone()];
    let (options, pending) = mfa
        .start_registration(alice(), "alice", &existing, NOW)
        .unwrap();
    let mut excluded: Vec<&str> = options["publicKey"]["excludeCredentials"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["id"].as_str().unwrap())
        .collect();
    excluded.sort_unstable();
    let mut expected = vec![s1.credential_id.as_str(), s2.credential_id.as_str()];
    expected.sort_unstable();
    assert_eq!(excluded, expected);

    // An authenticator that ignores the exclude list is still refused
    // (webauthn-rs 0.5 reports it as CredentialAlteredAlgFromRequest).
    let response = k1.make_credential(&challenge_of(&options), ORIGIN, RP_ID);
    assert_rejected(
        mfa.finish_registration(&pending, &response, "again", NOW),
        "",
    );
    // ...while a key not in the list registers under the same options.
    let k3 = SoftKey::new();
    let response = k3.make_credential(&challenge_of(&options), ORIGIN, RP_ID);
    assert!(mfa
        .finish_registration(&pending, &response, "new", NOW)
        .is_ok());
}

#[test]
fn wrong_origin_refused() {
    let mfa = mfa();
    let mut key = SoftKey::new();
    for origin in [
        "https://evil.example.net",
        "https://sub.login.example.com", // subdomains are not allowed
        "https://login.example.com:8443",
        "http://login.example.com",
    ] {
        let (options, pending) = mfa.start_registration(alice(), "alice", &[], NOW).unwrap();
        let response = key.make_credential(&challenge_of(&options), origin, RP_ID);
        assert_rejected(
            mfa.finish_registration(&pending, &response, "k", NOW),
            "InvalidRPOrigin",
        );
    }

    let stored = register(&mfa, &key, &[]);
    let keys = [stored];
    let (options, pending) = mfa.start_authentication(&keys, NOW).unwrap();
    let response = key.get_assertion(&challenge_of(&options), "https://evil.example.net", RP_ID);
    assert_rejected(
        mfa.finish_authentication(&pending, &response, &keys, NOW),
        "InvalidRPOrigin",
    );
}

#[test]
fn wrong_rp_id_refused() {
    let mfa = mfa();
    let mut key = SoftKey::new();
    let (options, pending) = mfa.start_registration(alice(), "alice", &[], NOW).unwrap();
    let response = key.make_credential(&challenge_of(&options), ORIGIN, "evil.example.net");
    assert_rejected(
        mfa.finish_registration(&pending, &response, "k", NOW),
        "InvalidRPIDHash",
    );

    let stored = register(&mfa, &key, &[]);
    let keys = [stored];
    let (options, pending) = mfa.start_authentication(&keys, NOW).unwrap();
    let response = key.get_assertion(&challenge_of(&options), ORIGIN, "login.example.com");
    assert_rejected(
        mfa.finish_authentication(&pending, &response, &keys, NOW),
        "InvalidRPIDHash",
    );
}

#[test]
fn response_to_another_challenge_refused() {
    let mfa = mfa();
    let mut key = SoftKey::new();
    let (options_a, _pending_a) = mfa.start_registration(alice(), "alice", &[], NOW).unwrap();
    let (_options_b, pending_b) = mfa.start_registration(alice(), "alice", &[], NOW).unwrap();
    let response = key.make_credential(&challenge_of(&options_a), ORIGIN, RP_ID);
    assert_rejected(
        mfa.finish_registration(&pending_b, &response, "k", NOW),
        "MismatchedChallenge",
    );

    let stored = register(&mfa, &key, &[]);
    let keys = [stored];
    let (options_a, _pending_a) = mfa.start_authentication(&keys, NOW).unwrap();
    let (_options_b, pending_b) = mfa.start_authentication(&keys, NOW).unwrap();
    let response = key.get_assertion(&challenge_of(&options_a), ORIGIN, RP_ID);
    assert_rejected(
        mfa.finish_authentication(&pending_b, &response, &keys, NOW),
        "MismatchedChallenge",
    );
}

#[test]
fn expired_pending_ceremony_refused() {
    let mfa = mfa();
    let mut key = SoftKey::new();
    let (options, pending) = mfa.start_registration(alice(), "alice", &[], NOW).unwrap();
    let response = key.make_credential(&challenge_of(&options), ORIGIN, RP_ID);
    let deadline = NOW + CEREMONY_SECONDS;
    assert_rejected(
        mfa.finish_registration(&pending, &response, "k", deadline),
        "expired",
    );
    assert_rejected(
        mfa.finish_registration(&pending, &response, "k", deadline + 3600),
        "expired",
    );
    let stored = mfa
        .finish_registration(&pending, &response, "k", deadline - 1)
        .unwrap();

    let keys = [stored];
    let (pending, response) = assert_with(&mfa, &mut key, &keys);
    assert_rejected(
        mfa.finish_authentication(&pending, &response, &keys, deadline),
        "expired",
    );
    assert!(mfa
        .finish_authentication(&pending, &response, &keys, deadline - 1)
        .is_ok());
}

#[test]
fn assertion_by_unregistered_credential_refused() {
    let mfa = mfa();
    let key = SoftKey::new();
    let keys = [register(&mfa, &key, &[])];
    let mut stranger = SoftKey::new();
    let (pending, response) = assert_with(&mfa, &mut stranger, &keys);
    assert_rejected(
        mfa.finish_authentication(&pending, &response, &keys, NOW),
        "CredentialNotFound",
    );
}

#[test]
fn key_removed_after_start_refused() {
    let mfa = mfa();
    let (mut k1, k2) = (SoftKey::new(), SoftKey::new());
    let s1 = register(&mfa, &k1, &[]);
    let s2 = register(&mfa, &k2, std::slice::from_ref(&s1));
    let (pending, response) = assert_with(&mfa, &mut k1, &[s1, s2.clone()]);
    // k1 is deleted between start and finish.
    assert_rejected(
        mfa.finish_authentication(&pending, &response, &[s2], NOW),
        "not registered",
    );
}

#[test]
fn replayed_assertion_refused() {
    let mfa = mfa();
    let mut key = SoftKey::new();
    let stored = register(&mfa, &key, &[]);
    let (pending, response) = assert_with(&mfa, &mut key, std::slice::from_ref(&stored));
    let (_, updated) = mfa
        .finish_authentication(&pending, &response, &[stored], NOW)
        .unwrap();
    let updated = updated.unwrap();
    // Same pending state (not deleted) and the same response again: the
    // counter it carries is no longer above the stored one.
    assert_rejected(
        mfa.finish_authentication(&pending, &response, &[updated], NOW),
        "counter did not increase",
    );
}

#[test]
fn cloned_key_with_stale_counter_refused_in_concurrent_ceremony() {
    let mfa = mfa();
    let mut key = SoftKey::new();
    let stored = register(&mfa, &key, &[]);
    let mut clone = key.clone();

    // Two ceremonies start from the same stored key (counter 0).
    let keys = [stored];
    let (options_1, pending_1) = mfa.start_authentication(&keys, NOW).unwrap();
    let (options_2, pending_2) = mfa.start_authentication(&keys, NOW).unwrap();

    let response_1 = key.get_assertion(&challenge_of(&options_1), ORIGIN, RP_ID);
    let (_, updated) = mfa
        .finish_authentication(&pending_1, &response_1, &keys, NOW)
        .unwrap();
    let updated = updated.unwrap();
    assert_eq!(updated.sign_count, 1);

    // The copy signs with the same counter value (1): above the counter
    // captured in pending_2, but not above the one stored now.
    let response_2 = clone.get_assertion(&challenge_of(&options_2), ORIGIN, RP_ID);
    assert_rejected(
        mfa.finish_authentication(&pending_2, &response_2, &[updated], NOW),
        "counter did not increase",
    );
}

#[test]
fn counter_going_backwards_refused() {
    let mfa = mfa();
    let mut key = SoftKey::new();
    let mut stored = register(&mfa, &key, &[]);
    for _ in 0..3 {
        let (pending, response) = assert_with(&mfa, &mut key, std::slice::from_ref(&stored));
        stored = mfa
            .finish_authentication(&pending, &response, &[stored], NOW)
            .unwrap()
            .1
            .unwrap();
    }
    assert_eq!(stored.sign_count, 3);
    key.counter = 1; // next assertion carries 2
    let (pending, response) = assert_with(&mfa, &mut key, std::slice::from_ref(&stored));
    assert_rejected(
        mfa.finish_authentication(&pending, &response, &[stored], NOW),
        "CredentialPossibleCompromise",
    );
}

#[test]
fn key_without_counter_accepted_repeatedly() {
    let mfa = mfa();
    let mut key = SoftKey::counterless();
    let stored = register(&mfa, &key, &[]);
    for _ in 0..2 {
        let (pending, response) = assert_with(&mfa, &mut key, std::slice::from_ref(&stored));
        let (used, updated) = mfa
            .finish_authentication(&pending, &response, std::slice::from_ref(&stored), NOW)
            .unwrap();
        assert_eq!(used, key.id());
        assert_eq!(updated, None);
    }
}

#[test]
fn tampered_signature_or_authenticator_data_refused() {
    let mfa = mfa();
    let mut key = SoftKey::new();
    let keys = [register(&mfa, &key, &[])];

    let (pending, mut response) = assert_with(&mfa, &mut key, &keys);
    flip_last_bit(&mut response, "signature");
    assert_rejected(
        mfa.finish_authentication(&pending, &response, &keys, NOW),
        "AuthenticationFailure",
    );

    let (pending, mut response) = assert_with(&mfa, &mut key, &keys);
    flip_last_bit(&mut response, "authenticatorData"); // low byte of the counter
    assert_rejected(
        mfa.finish_authentication(&pending, &response, &keys, NOW),
        "AuthenticationFailure",
    );

    // Control: the same key with an untouched response passes.
    let (pending, response) = assert_with(&mfa, &mut key, &keys);
    assert!(mfa
        .finish_authentication(&pending, &response, &keys, NOW)
        .is_ok());
}

#[test]
fn key_registered_with_user_verification_must_keep_verifying() {
    let mfa = mfa();
    let mut key = SoftKey::new();
    key.uv = true;
    let keys = [register(&mfa, &key, &[])];
    key.uv = false;
    let (pending, response) = assert_with(&mfa, &mut key, &keys);
    assert_rejected(
        mfa.finish_authentication(&pending, &response, &keys, NOW),
        "UserNotVerified",
    );
    key.uv = true;
    let (pending, response) = assert_with(&mfa, &mut key, &keys);
    assert!(mfa
        .finish_authentication(&pending, &response, &keys, NOW)
        .is_ok());
}

#[test]
fn stored_key_and_pending_ceremony_round_trip_through_json() {
    let mfa = mfa();
    let mut key = SoftKey::new();
    let stored = register(&mfa, &key, &[]);
    let stored_json = serde_json::to_string(&stored).unwrap();
    let stored_back: StoredKey = serde_json::from_str(&stored_json).unwrap();
    assert_eq!(stored_back, stored);

    let (options, pending) = mfa
        .start_authentication(std::slice::from_ref(&stored_back), NOW)
        .unwrap();
    let pending_json = serde_json::to_string(&pending).unwrap();
    let pending_back: PendingCeremony = serde_json::from_str(&pending_json).unwrap();
    assert_eq!(pending_back.challenge, pending.challenge);
    assert_eq!(pending_back.state, pending.state);
    assert_eq!(pending_back.expires_at, pending.expires_at);

    // The round-tripped values still complete a ceremony.
    let response = key.get_assertion(&challenge_of(&options), ORIGIN, RP_ID);
    let (used, updated) = mfa
        .finish_authentication(&pending_back, &response, &[stored_back], NOW)
        .unwrap();
    assert_eq!(used, stored.credential_id);
    let updated = updated.unwrap();
    let updated_back: StoredKey =
        serde_json::from_str(&serde_json::to_string(&updated).unwrap()).unwrap();
    assert_eq!(updated_back, updated);
}

#[test]
fn unreadable_or_mismatched_stored_data_is_corrupt() {
    let mfa = mfa();
    let mut key = SoftKey::new();
    let stored = register(&mfa, &key, &[]);

    let (options, mut pending) = mfa.start_registration(alice(), "alice", &[], NOW).unwrap();
    let response = key.make_credential(&challenge_of(&options), ORIGIN, RP_ID);
    let registration_pending = pending.clone();
    pending.state = "{}".to_owned();
    assert_corrupt(mfa.finish_registration(&pending, &response, "k", NOW));

    // A registration state handed to the authentication finish.
    let keys = [stored.clone()];
    let (_, response) = assert_with(&mfa, &mut key, &keys);
    assert_corrupt(mfa.finish_authentication(&registration_pending, &response, &keys, NOW));

    let mut garbled = stored.clone();
    garbled.credential = "not json".to_owned();
    assert_corrupt(mfa.start_authentication(&[garbled], NOW));

    let mut relabelled = stored;
    relabelled.credential_id = SoftKey::new().id();
    assert_corrupt(mfa.start_authentication(std::slice::from_ref(&relabelled), NOW));
    assert_corrupt(mfa.start_registration(alice(), "alice", &[relabelled], NOW));
}

#[test]
fn no_registered_key_refused() {
    assert_rejected(mfa().start_authentication(&[], NOW), "no security key");
}

#[test]
fn bad_settings_refused() {
    let config = |rp_id: &str, origin: &str, name: &str| {
        WebAuthnMfa::new(&WebAuthnSettings {
            rp_id: rp_id.to_owned(),
            rp_origin: url::Url::parse(origin).unwrap(),
            rp_name: name.to_owned(),
        })
    };
    for (rp_id, origin, name) in [
        ("other.com", "https://login.example.com", "x"),
        ("ample.com", "https://login.example.com", "x"),
        ("", "https://login.example.com", "x"),
        ("example.com", "http://login.example.com", "x"),
        ("example.com", "https://login.example.com", " "),
    ] {
        assert!(
            matches!(config(rp_id, origin, name), Err(WebAuthnError::Config(_))),
            "{rp_id} {origin} {name:?} accepted"
        );
    }
    assert!(config("example.com", "https://login.example.com", "x").is_ok());
    assert!(config("login.example.com", "https://login.example.com", "x").is_ok());
    assert!(config("localhost", "http://localhost:8080", "x").is_ok());
}

/// Security keys as MFA devices of directory users: registration and sign-in through the
/// directory, with each pending ceremony usable once and credential ids unique across users.
mod directory {
    use super::*;
    use rolegate::clock::FixedClock;
    use rolegate::config::DirectorySettings;
    use rolegate::idp::local::{Directory, DirectoryError};
    use rolegate::store::MemoryStore;
    use std::sync::Arc;

    fn directory() -> Directory {
        let clock = FixedClock::new(chrono::DateTime::from_timestamp(NOW, 0).unwrap());
        let mut d = Directory::new(
            Arc::new(MemoryStore::new()),
            DirectorySettings {
                account: "111122223333".into(),
                min_password_length: 12,
                role_prefix: "RolegateSSO_".into(),
            },
            Arc::new(clock),
            "rolegate",
        );
        d.enable_webauthn(&settings()).unwrap();
        d
    }

    async fn register(d: &Directory, user: &str, key: &SoftKey) -> Result<String, DirectoryError> {
        let options = d.start_security_key_registration(user).await?;
        let rp_id = options["publicKey"]["rp"]["id"]
            .as_str()
            .unwrap()
            .to_owned();
        let response = key.make_credential(&challenge_of(&options), ORIGIN, &rp_id);
        d.finish_security_key_registration(user, &response, "yubikey")
            .await
    }

    #[tokio::test]
    async fn a_security_key_is_an_mfa_device_and_each_ceremony_is_used_once() {
        let d = directory();
        d.create_user("alice", None).await.unwrap();
        let mut key = SoftKey::new();
        let serial = register(&d, "alice", &key).await.unwrap();
        assert!(serial.starts_with("webauthn:"));
        let alice = d.user("alice").await.unwrap();
        assert!(alice.has_mfa());

        let options = d.start_security_key_authentication(&alice).await.unwrap();
        let rp_id = options["publicKey"]["rpId"].as_str().unwrap().to_owned();
        let response = key.get_assertion(&challenge_of(&options), ORIGIN, &rp_id);
        assert_eq!(
            d.finish_security_key_authentication("alice", &response)
                .await
                .unwrap(),
            NOW
        );
        // The ceremony is gone: the same response cannot be finished again.
        assert!(matches!(
            d.finish_security_key_authentication("alice", &response)
                .await,
            Err(DirectoryError::Denied(_))
        ));
        // Replaying the old assertion against a new ceremony fails (other challenge, old counter).
        d.start_security_key_authentication(&alice).await.unwrap();
        assert!(matches!(
            d.finish_security_key_authentication("alice", &response)
                .await,
            Err(DirectoryError::Denied(_))
        ));

        // The same credential cannot be registered for a second user.
        d.create_user("bob", None).await.unwrap();
        assert!(matches!(
            register(&d, "bob", &key).await,
            Err(DirectoryError::Conflict(_))
        ));
        assert!(!d.user("bob").await.unwrap().has_mfa());

        d.delete_mfa_device("alice", &serial).await.unwrap();
        assert!(!d.user("alice").await.unwrap().has_mfa());
        // Once deleted, the key may be registered again (by bob).
        register(&d, "bob", &key).await.unwrap();
    }
}
