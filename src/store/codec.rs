//! Byte layout of records in the embedded (sled) backend: versioned values and ordered keys.
//! Knows the shape of records, not what they mean.
//!
//! A value is one format byte followed by JSON. Audit batches, kept in segment files beside the
//! database, have a binary layout of their own ([`encode_audit_batch`]).

use super::{AuditRecord, KeyBytes, Result, Revocation, RevocationScope, SealingKey, StoreError};
use base64::engine::general_purpose::STANDARD as BASE64;
use base64::Engine as _;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

/// Format byte of every value written by this build, also kept as the database's format marker.
/// Format 1 was an earlier development layout (JSON of the public types, raw replay values) and is not
/// read. Format 2 kept the audit log in sled, one record per key, and is migrated on open
/// ([`LEGACY_FORMAT`]); format 3 keeps it in segment files (`super::audit_files`).
pub(super) const FORMAT: u8 = 3;

/// The previous format, which differs from [`FORMAT`] only in the audit log: one JSON record per
/// sled key (`time_key` then the record id) instead of segment files.
pub(super) const LEGACY_FORMAT: u8 = 2;

/// An audit record as format 2 stored it.
#[derive(Deserialize)]
struct LegacyAudit {
    time_ms: i64,
    id: String,
    action: String,
    principal: Option<String>,
    decision: String,
    json: String,
}

/// Decodes a format 2 audit record.
pub(super) fn decode_legacy_audit(bytes: &[u8]) -> Result<AuditRecord> {
    match bytes.split_first() {
        Some((&LEGACY_FORMAT, json)) => {
            let a: LegacyAudit = serde_json::from_slice(json).map_err(|e| {
                StoreError::Corrupt(format!("unreadable format 2 audit record: {e}"))
            })?;
            Ok(AuditRecord {
                time_ms: a.time_ms,
                id: a.id,
                action: a.action,
                principal: a.principal,
                decision: a.decision,
                json: a.json,
            })
        }
        _ => Err(StoreError::Corrupt(
            "audit record of the format 2 log is not in format 2".into(),
        )),
    }
}

/// A format 2 value of the sealing key, replay or revocation trees in this format: the layout is
/// the same, only the leading byte changes. Values already in this format are returned unchanged.
pub(super) fn upgrade_legacy_value(tree: &str, bytes: &[u8]) -> Result<Vec<u8>> {
    match bytes.split_first() {
        Some((&LEGACY_FORMAT | &FORMAT, rest)) => {
            let mut out = Vec::with_capacity(bytes.len());
            out.push(FORMAT);
            out.extend_from_slice(rest);
            Ok(out)
        }
        Some((version, _)) => Err(StoreError::Corrupt(format!(
            "record in {tree} has format version {version} in a format 2 store"
        ))),
        None => Err(StoreError::Corrupt(format!("empty record in {tree}"))),
    }
}

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

/// `t` as 8 bytes whose byte order is the numeric order of `t` (negative times first): how format 2
/// keyed audit records.
#[cfg(test)]
pub(super) fn time_key(t: i64) -> [u8; 8] {
    ((t as u64) ^ (1 << 63)).to_be_bytes()
}

/// Encodes a batch of audit records: the format byte, then per record its time (8 bytes, big
/// endian), id, action, principal (a 0/1 flag, then the value), decision and JSON, each string with a
/// 4-byte big-endian length.
pub(super) fn encode_audit_batch<'a>(
    records: impl Iterator<Item = &'a AuditRecord> + Clone,
) -> Vec<u8> {
    // Sized once: a batch may hold thousands of records, and regrowing would copy it over and over.
    let size: usize = records
        .clone()
        .map(|r| {
            8 + 4 * 5
                + 1
                + r.id.len()
                + r.action.len()
                + r.principal.as_ref().map_or(0, String::len)
                + r.decision.len()
                + r.json.len()
        })
        .sum();
    let mut out = Vec::with_capacity(1 + size);
    out.push(FORMAT);
    for r in records {
        out.extend_from_slice(&r.time_ms.to_be_bytes());
        push_part(&mut out, &r.id);
        push_part(&mut out, &r.action);
        match &r.principal {
            Some(p) => {
                out.push(1);
                push_part(&mut out, p);
            }
            None => out.push(0),
        }
        push_part(&mut out, &r.decision);
        push_part(&mut out, &r.json);
    }
    out
}

/// One record of an audit batch, borrowed from the batch's bytes.
#[derive(Debug, Clone, Copy)]
pub(super) struct AuditView<'a> {
    pub time_ms: i64,
    pub id: &'a str,
    pub action: &'a str,
    pub principal: Option<&'a str>,
    pub decision: &'a str,
    pub json: &'a str,
}

impl AuditView<'_> {
    /// The record, owned.
    pub fn to_record(self) -> AuditRecord {
        AuditRecord {
            time_ms: self.time_ms,
            id: self.id.to_string(),
            action: self.action.to_string(),
            principal: self.principal.map(str::to_string),
            decision: self.decision.to_string(),
            json: self.json.to_string(),
        }
    }
}

/// Checks a whole audit batch and calls `each` with every record in order, borrowed: a reader that
/// keeps few of them copies only those. An empty batch is damage (nothing writes it); on damage the
/// records before it have been passed on already, and the caller drops what it gathered.
pub(super) fn visit_audit_batch<'a>(
    bytes: &'a [u8],
    mut each: impl FnMut(AuditView<'a>),
) -> Result<()> {
    let corrupt = |why: &str| StoreError::Corrupt(format!("unreadable audit batch: {why}"));
    let body = match bytes.split_first() {
        Some((&FORMAT, rest)) => rest,
        Some((version, _)) => {
            return Err(StoreError::Corrupt(format!(
                "audit batch has format version {version}, this build reads {FORMAT}"
            )))
        }
        None => return Err(corrupt("empty")),
    };
    if body.is_empty() {
        return Err(corrupt("no records"));
    }
    fn take<'b>(rest: &mut &'b [u8], n: usize) -> Option<&'b [u8]> {
        let (head, tail) = rest.split_at_checked(n)?;
        *rest = tail;
        Some(head)
    }
    fn part<'b>(rest: &mut &'b [u8]) -> Option<&'b str> {
        let len = u32::from_be_bytes(take(rest, 4)?.try_into().ok()?) as usize;
        std::str::from_utf8(take(rest, len)?).ok()
    }
    fn one<'b>(rest: &mut &'b [u8]) -> Option<AuditView<'b>> {
        let time_ms = i64::from_be_bytes(take(rest, 8)?.try_into().ok()?);
        let id = part(rest)?;
        let action = part(rest)?;
        let principal = match take(rest, 1)? {
            [0] => None,
            [1] => Some(part(rest)?),
            _ => return None,
        };
        Some(AuditView {
            time_ms,
            id,
            action,
            principal,
            decision: part(rest)?,
            json: part(rest)?,
        })
    }
    let mut rest = body;
    while !rest.is_empty() {
        each(one(&mut rest).ok_or_else(|| corrupt("truncated or not UTF-8"))?);
    }
    Ok(())
}

/// Decodes an audit batch; an empty one is damage (nothing writes it).
#[cfg(test)]
pub(super) fn decode_audit_batch(bytes: &[u8]) -> Result<Vec<AuditRecord>> {
    let mut out = Vec::new();
    visit_audit_batch(bytes, |v| out.push(v.to_record()))?;
    Ok(out)
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

/// Key of a directory record: length-prefixed kind, then the key itself. Every key of one kind starts
/// with [`dir_prefix`] of that kind.
pub(super) fn dir_key(kind: &str, key: &str) -> Vec<u8> {
    let mut k = dir_prefix(kind);
    k.extend_from_slice(key.as_bytes());
    k
}

/// The prefix shared by every directory key of `kind` (and by no key of another kind).
pub(super) fn dir_prefix(kind: &str) -> Vec<u8> {
    let mut k = Vec::with_capacity(4 + kind.len());
    push_part(&mut k, kind);
    k
}

/// Stored form of a directory record.
#[derive(Debug, Serialize, Deserialize)]
pub(super) struct StoredDirEntry {
    pub(super) version: u64,
    pub(super) value: String,
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
        RevocationScope::User(user) => {
            k.push(5);
            push_part(&mut k, user);
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
    User { user: String },
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
            RevocationScope::User(user) => StoredScope::User { user: user.clone() },
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
            StoredScope::User { user } => RevocationScope::User(user),
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
    fn audit_batches_round_trip_and_refuse_damage() {
        let records = vec![
            AuditRecord {
                time_ms: 1_234,
                id: "a".into(),
                action: "sts:AssumeRole".into(),
                principal: Some("arn:aws:sts::1:assumed-role/r/s".into()),
                decision: "allow".into(),
                json: "{\"é\":1}".into(),
            },
            AuditRecord {
                time_ms: 1_999,
                id: "b".into(),
                action: String::new(),
                principal: None,
                decision: "deny".into(),
                json: String::new(),
            },
        ];
        let bytes = encode_audit_batch(records.iter());
        assert_eq!(decode_audit_batch(&bytes).unwrap(), records);
        let boundary = encode_audit_batch(records[..1].iter()).len();
        for cut in (1..bytes.len()).filter(|&c| c != boundary) {
            assert!(decode_audit_batch(&bytes[..cut]).is_err(), "cut at {cut}");
        }
        let mut old = bytes.clone();
        old[0] = 2;
        assert!(decode_audit_batch(&old).is_err());
        assert!(decode_audit_batch(&[]).is_err());
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
        let scopes = crate::store::distinct_scopes();
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
            (b"\x02{\"expires_at\":1}", "format version 2"),
            (b"\x04{\"expires_at\":1}", "format version 4"),
            (b"\x03{\"expires_at\":", "unreadable record in t"),
            (b"\x03{}", "unreadable record in t"),
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
