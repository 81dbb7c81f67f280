//! Byte layout of records in the embedded (sled) backend: versioned values and ordered keys.
//! Knows the shape of records, not what they mean.
//!
//! A value is one format byte followed by JSON. Keys sort the way queries need them: audit keys start
//! with the event time so that a time range is one key range.

use super::{AuditRecord, KeyBytes, Result, Revocation, RevocationScope, SealingKey, StoreError};
use base64::engine::general_purpose::STANDARD as BASE64;
use base64::Engine as _;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

/// Format byte of every value written by this build, also kept as the database's format marker.
/// Format 1 was an earlier development layout (JSON of the public types, raw replay values); it is not
/// read.
pub(super) const FORMAT: u8 = 2;

/// Encodes `value` as the current format.
pub(super) fn encode<T: Serialize>(value: &T) -> Result<Vec<u8>> {
    let mut out = vec![FORMAT];
    serde_json::to_writer(&mut out, value)
        .map_err(|e| StoreError::Invalid(format!("cannot encode record: {e}")))?;
    Ok(out)
}

/// Decodes a value read from `tree`.
pub(super) fn decode<T: DeserializeOwned>(tree: &str, bytes: &[u8]) -> Result<T> {
    match bytes.split_first() {
        Some((&FORMAT, json)) => serde_json::from_slice(json)
            .map_err(|e| StoreError::Corrupt(format!("unreadable record in {tree}: {e}"))),
        Some((version, _)) => Err(StoreError::Corrupt(format!(
            "record in {tree} has format version {version}, this build reads {FORMAT}"
        ))),
        None => Err(StoreError::Corrupt(format!("empty record in {tree}"))),
    }
}

/// `t` as 8 bytes whose byte order is the numeric order of `t` (negative times first).
pub(super) fn time_key(t: i64) -> [u8; 8] {
    ((t as u64) ^ (1 << 63)).to_be_bytes()
}

/// Key of an audit record: time, then id.
pub(super) fn audit_key(time_ms: i64, id: &str) -> Vec<u8> {
    let mut k = Vec::with_capacity(8 + id.len());
    k.extend_from_slice(&time_key(time_ms));
    k.extend_from_slice(id.as_bytes());
    k
}

fn push_part(out: &mut Vec<u8>, part: &str) {
    let len = u32::try_from(part.len()).unwrap_or(u32::MAX);
    out.extend_from_slice(&len.to_be_bytes());
    out.extend_from_slice(part.as_bytes());
}

/// Key of a replay record; length-prefixed so that no two (namespace, key) pairs share a key.
pub(super) fn replay_key(namespace: &str, key: &str) -> Vec<u8> {
    let mut k = Vec::with_capacity(8 + namespace.len() + key.len());
    push_part(&mut k, namespace);
    push_part(&mut k, key);
    k
}

/// Key of a revocation: a tag per scope kind, then length-prefixed parts.
pub(super) fn scope_key(scope: &RevocationScope) -> Vec<u8> {
    let mut k = Vec::new();
    match scope {
        RevocationScope::All => k.push(0),
        RevocationScope::Role(role) => {
            k.push(1);
            push_part(&mut k, role);
        }
        RevocationScope::Subject { provider, subject } => {
            k.push(2);
            push_part(&mut k, provider);
            push_part(&mut k, subject);
        }
        RevocationScope::Session(session) => {
            k.push(3);
            push_part(&mut k, session);
        }
        RevocationScope::AccessKey(access_key) => {
            k.push(4);
            push_part(&mut k, access_key);
        }
    }
    k
}

/// Stored form of a sealing key. No `Debug`: it holds the secret in clear.
#[derive(Serialize, Deserialize)]
pub(super) struct StoredSealingKey {
    id: String,
    secret: String,
    created_at: i64,
    retired_at: Option<i64>,
}

impl From<&SealingKey> for StoredSealingKey {
    fn from(k: &SealingKey) -> Self {
        Self {
            id: k.id.clone(),
            secret: BASE64.encode(k.secret.expose()),
            created_at: k.created_at,
            retired_at: k.retired_at,
        }
    }
}

impl TryFrom<StoredSealingKey> for SealingKey {
    type Error = StoreError;

    fn try_from(s: StoredSealingKey) -> Result<Self> {
        let bytes = BASE64.decode(s.secret.as_bytes()).map_err(|_| {
            StoreError::Corrupt(format!("sealing key {:?}: secret is not base64", s.id))
        })?;
        let secret = KeyBytes::from_slice(&bytes).map_err(|_| {
            StoreError::Corrupt(format!(
                "sealing key {:?}: secret is {} bytes, not {}",
                s.id,
                bytes.len(),
                KeyBytes::LEN
            ))
        })?;
        Ok(SealingKey {
            id: s.id,
            secret,
            created_at: s.created_at,
            retired_at: s.retired_at,
        })
    }
}

/// Stored form of a replay record.
#[derive(Debug, Serialize, Deserialize)]
pub(super) struct StoredReplay {
    pub(super) expires_at: i64,
}

#[derive(Debug, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
enum StoredScope {
    All,
    Role { role: String },
    Subject { provider: String, subject: String },
    Session { session: String },
    AccessKey { access_key: String },
}

/// Stored form of a revocation.
#[derive(Debug, Serialize, Deserialize)]
pub(super) struct StoredRevocation {
    scope: StoredScope,
    issued_before: i64,
    created_at: i64,
    reason: String,
    expires_at: i64,
}

impl From<&Revocation> for StoredRevocation {
    fn from(r: &Revocation) -> Self {
        let scope = match &r.scope {
            RevocationScope::All => StoredScope::All,
            RevocationScope::Role(role) => StoredScope::Role { role: role.clone() },
            RevocationScope::Subject { provider, subject } => StoredScope::Subject {
                provider: provider.clone(),
                subject: subject.clone(),
            },
            RevocationScope::Session(session) => StoredScope::Session {
                session: session.clone(),
            },
            RevocationScope::AccessKey(access_key) => StoredScope::AccessKey {
                access_key: access_key.clone(),
            },
        };
        Self {
            scope,
            issued_before: r.issued_before,
            created_at: r.created_at,
            reason: r.reason.clone(),
            expires_at: r.expires_at,
        }
    }
}

impl From<StoredRevocation> for Revocation {
    fn from(s: StoredRevocation) -> Self {
        let scope = match s.scope {
            StoredScope::All => RevocationScope::All,
            StoredScope::Role { role } => RevocationScope::Role(role),
            StoredScope::Subject { provider, subject } => {
                RevocationScope::Subject { provider, subject }
            }
            StoredScope::Session { session } => RevocationScope::Session(session),
            StoredScope::AccessKey { access_key } => RevocationScope::AccessKey(access_key),
        };
        Self {
            scope,
            issued_before: s.issued_before,
            created_at: s.created_at,
            reason: s.reason,
            expires_at: s.expires_at,
        }
    }
}

/// Stored form of an audit record.
#[derive(Debug, Serialize, Deserialize)]
pub(super) struct StoredAudit {
    time_ms: i64,
    id: String,
    action: String,
    principal: Option<String>,
    decision: String,
    json: String,
}

impl From<&AuditRecord> for StoredAudit {
    fn from(r: &AuditRecord) -> Self {
        Self {
            time_ms: r.time_ms,
            id: r.id.clone(),
            action: r.action.clone(),
            principal: r.principal.clone(),
            decision: r.decision.clone(),
            json: r.json.clone(),
        }
    }
}

impl From<StoredAudit> for AuditRecord {
    fn from(s: StoredAudit) -> Self {
        Self {
            time_ms: s.time_ms,
            id: s.id,
            action: s.action,
            principal: s.principal,
            decision: s.decision,
            json: s.json,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn time_keys_sort_like_the_numbers() {
        let times = [
            i64::MIN,
            -1_000,
            -1,
            0,
            1,
            255,
            256,
            1_700_000_000_000,
            i64::MAX,
        ];
        for pair in times.windows(2) {
            assert!(
                time_key(pair[0]) < time_key(pair[1]),
                "{} must sort before {}",
                pair[0],
                pair[1]
            );
        }
        assert_eq!(time_key(0), [0x80, 0, 0, 0, 0, 0, 0, 0]);
        assert_eq!(
            time_key(-1),
            [0x7f, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff]
        );
        assert_eq!(time_key(i64::MIN), [0; 8]);
    }

    #[test]
    fn audit_keys_order_by_time_then_id() {
        let ordered = [
            audit_key(-5, "z"),
            audit_key(10, "a"),
            audit_key(10, "b"),
            audit_key(10, "ba"),
            audit_key(11, ""),
        ];
        for pair in ordered.windows(2) {
            assert!(pair[0] < pair[1], "{:?} < {:?}", pair[0], pair[1]);
        }
    }

    #[test]
    fn replay_keys_do_not_collide_across_the_boundary() {
        let pairs = [
            ("a", "bc"),
            ("ab", "c"),
            ("abc", ""),
            ("", "abc"),
            ("a\0", "bc"),
        ];
        for (i, x) in pairs.iter().enumerate() {
            for (j, y) in pairs.iter().enumerate() {
                assert_eq!(
                    replay_key(x.0, x.1) == replay_key(y.0, y.1),
                    i == j,
                    "{x:?} {y:?}"
                );
            }
        }
        assert_eq!(replay_key("ns", "k"), b"\0\0\0\x02ns\0\0\0\x01k".to_vec());
    }

    #[test]
    fn scope_keys_are_distinct_per_kind_and_part() {
        let scopes = [
            RevocationScope::All,
            RevocationScope::Role("x".into()),
            RevocationScope::Session("x".into()),
            RevocationScope::AccessKey("x".into()),
            RevocationScope::Role(String::new()),
            RevocationScope::Subject {
                provider: "a".into(),
                subject: "bc".into(),
            },
            RevocationScope::Subject {
                provider: "ab".into(),
                subject: "c".into(),
            },
        ];
        for (i, x) in scopes.iter().enumerate() {
            for (j, y) in scopes.iter().enumerate() {
                assert_eq!(scope_key(x) == scope_key(y), i == j, "{x:?} {y:?}");
            }
        }
    }

    #[test]
    fn values_carry_the_format_byte_and_round_trip() {
        let r = Revocation {
            scope: RevocationScope::Subject {
                provider: "corp".into(),
                subject: "alice".into(),
            },
            issued_before: 100,
            created_at: 90,
            reason: "left".into(),
            expires_at: 200,
        };
        let bytes = encode(&StoredRevocation::from(&r)).expect("encode");
        assert_eq!(
            &bytes[1..],
            br#"{"scope":{"kind":"subject","provider":"corp","subject":"alice"},"issued_before":100,"created_at":90,"reason":"left","expires_at":200}"#,
            "the stored layout is fixed for this format"
        );
        assert_eq!(bytes[0], FORMAT);
        let back: StoredRevocation = decode("revocations", &bytes).expect("decode");
        assert_eq!(Revocation::from(back), r);
    }

    #[test]
    fn decode_rejects_unknown_versions_and_damage() {
        let cases: [(&[u8], &str); 5] = [
            (b"", "empty record in t"),
            (b"\x01{\"expires_at\":1}", "format version 1"),
            (b"\x03{\"expires_at\":1}", "format version 3"),
            (b"\x02{\"expires_at\":", "unreadable record in t"),
            (b"\x02{}", "unreadable record in t"),
        ];
        for (bytes, want) in cases {
            match decode::<StoredReplay>("t", bytes) {
                Err(StoreError::Corrupt(m)) => assert!(m.contains(want), "{m}"),
                other => panic!("{bytes:?}: expected Corrupt, got {other:?}"),
            }
        }
    }

    #[test]
    fn sealing_key_secret_must_decode_to_32_bytes() {
        let key = SealingKey {
            id: "k1".into(),
            secret: KeyBytes::from([3; 32]),
            created_at: 5,
            retired_at: Some(6),
        };
        let stored = StoredSealingKey::from(&key);
        assert_eq!(SealingKey::try_from(stored).expect("round trip"), key);
        for secret in ["not base64!", "AAAA"] {
            let bad = StoredSealingKey {
                id: "k1".into(),
                secret: secret.into(),
                created_at: 5,
                retired_at: None,
            };
            assert!(
                matches!(SealingKey::try_from(bad), Err(StoreError::Corrupt(_))),
                "{secret}"
            );
        }
    }
}
