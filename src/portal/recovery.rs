//! MFA recovery codes: a set of [`CODES`] single-use codes of 80 random bits each, made when a
//! person first enrols an MFA method and shown once. The store keeps only salted SHA-256 hashes
//! (kind `portal_recovery`, keyed by the person: `local:` + the directory user id), so whoever
//! reads the store cannot use a code. A code is used up in the same compare-and-swap write that
//! accepts it; [`MAX_FAILURES`] wrong codes lock the set for [`LOCK_SECONDS`].
//!
//! Owns: making, hashing, checking and using up codes. Must not know: HTTP, sessions, the
//! directory's other records.

use crate::idp::local::count_failure;
use crate::store::{DirWrite, Store, StoreError, Versioned};
use serde::{Deserialize, Serialize};
use subtle::ConstantTimeEq;

/// Directory kind of recovery code sets.
pub const KIND: &str = "portal_recovery";
/// Codes in a set.
pub const CODES: usize = 10;
/// Random bytes of a code (80 bits).
const CODE_BYTES: usize = 10;
/// Consecutive wrong codes before the set is locked.
pub const MAX_FAILURES: u32 = 5;
/// How long a lock lasts; failures older than this are forgotten.
pub const LOCK_SECONDS: i64 = 300;
/// Times a read-modify-write is retried when another writer got there first.
const CAS_ATTEMPTS: usize = 16;
/// Letters of a code (RFC 4648 base32, lower case).
const ALPHABET: &[u8] = b"abcdefghijklmnopqrstuvwxyz234567";

/// Errors of recovery codes.
#[derive(Debug, thiserror::Error)]
pub enum RecoveryError {
    /// The person has no recovery codes (none made, or all used).
    #[error("no unused recovery code left")]
    NoCodes,
    /// Not one of the person's unused codes.
    #[error("wrong or already used recovery code{}", if *.locked { "; recovery codes are now locked" } else { "" })]
    Wrong {
        /// Whether this failure locked the set.
        locked: bool,
    },
    /// Too many wrong codes: refused until `until` (Unix seconds).
    #[error("recovery codes are locked after repeated failures until {until}")]
    Locked {
        /// Unix seconds.
        until: i64,
    },
    /// The set was changed concurrently too often.
    #[error("recovery codes are being used concurrently; try again")]
    Busy,
    /// The store failed or a record cannot be read.
    #[error("store: {0}")]
    Store(#[from] StoreError),
    /// Randomness or encoding failed.
    #[error("{0}")]
    Internal(String),
}

/// A person's recovery codes as stored.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
struct CodeSet {
    /// Random salt of this set (hex).
    salt: String,
    /// SHA-256 of salt and code (hex) of each unused code.
    hashes: Vec<String>,
    /// When the set was made (Unix seconds).
    created_at: i64,
    /// Consecutive wrong codes since `first_failure`.
    #[serde(default)]
    failures: u32,
    #[serde(default)]
    first_failure: i64,
    #[serde(default)]
    locked_until: Option<i64>,
}

/// The store key of a directory user's set.
pub fn local_person(user_id: &str) -> String {
    format!("local:{user_id}")
}

fn random(n: usize) -> Result<Vec<u8>, RecoveryError> {
    let mut b = vec![0u8; n];
    crate::credentials::fill_random(&mut b).map_err(|e| RecoveryError::Internal(e.to_string()))?;
    Ok(b)
}

/// 80 bits as 16 base32 letters, shown in groups of four: `abcd-efgh-ijkl-mnop`.
fn new_code() -> Result<String, RecoveryError> {
    let bytes = random(CODE_BYTES)?;
    let mut letters = String::with_capacity(16);
    let (mut buffer, mut bits) = (0u32, 0);
    for b in bytes {
        buffer = (buffer << 8) | u32::from(b);
        bits += 8;
        while bits >= 5 {
            letters.push(ALPHABET[((buffer >> (bits - 5)) & 31) as usize] as char);
            bits -= 5;
        }
    }
    let groups: Vec<&str> = (0..4).map(|i| &letters[i * 4..i * 4 + 4]).collect();
    Ok(groups.join("-"))
}

/// A typed code in its canonical form (lower case, without spaces and dashes), if it has the
/// shape of a code.
fn normalise(code: &str) -> Option<String> {
    let c: String = code
        .chars()
        .filter(|c| !matches!(c, '-' | ' '))
        .map(|c| c.to_ascii_lowercase())
        .collect();
    (c.len() == 16 && c.bytes().all(|b| ALPHABET.contains(&b))).then_some(c)
}

fn hash(salt: &str, normalised: &str) -> String {
    let mut ctx = aws_lc_rs::digest::Context::new(&aws_lc_rs::digest::SHA256);
    ctx.update(salt.as_bytes());
    ctx.update(b":");
    ctx.update(normalised.as_bytes());
    hex::encode(ctx.finish().as_ref())
}

async fn read(
    store: &dyn Store,
    person: &str,
) -> Result<Option<(CodeSet, Versioned)>, RecoveryError> {
    match store.dir_get(KIND, person).await? {
        Some(v) => {
            let set = serde_json::from_str(&v.value).map_err(|e| {
                RecoveryError::Store(StoreError::Corrupt(format!("{KIND}/{person}: {e}")))
            })?;
            Ok(Some((set, v)))
        }
        None => Ok(None),
    }
}

fn encode(set: &CodeSet) -> Result<String, RecoveryError> {
    serde_json::to_string(set).map_err(|e| RecoveryError::Internal(e.to_string()))
}

/// Makes a new set for `person`, replacing (and so invalidating) any earlier one; returns the
/// codes, which are not kept anywhere.
pub async fn generate(
    store: &dyn Store,
    person: &str,
    now: i64,
) -> Result<Vec<String>, RecoveryError> {
    let codes = (0..CODES)
        .map(|_| new_code())
        .collect::<Result<Vec<_>, _>>()?;
    let salt = hex::encode(random(16)?);
    let set = CodeSet {
        hashes: codes
            .iter()
            .map(|c| hash(&salt, &normalise(c).unwrap_or_default()))
            .collect(),
        salt,
        created_at: now,
        ..CodeSet::default()
    };
    let doc = encode(&set)?;
    for _ in 0..CAS_ATTEMPTS {
        let current = store.dir_get(KIND, person).await?;
        if store
            .dir_write(&[DirWrite::put(KIND, person, current.as_ref(), doc.clone())])
            .await?
        {
            return Ok(codes);
        }
    }
    Err(RecoveryError::Busy)
}

/// How many unused codes `person` has (`None` without a set).
pub async fn remaining(store: &dyn Store, person: &str) -> Result<Option<usize>, RecoveryError> {
    Ok(read(store, person).await?.map(|(s, _)| s.hashes.len()))
}

/// Deletes `person`'s set (when their last MFA method is removed).
pub async fn delete(store: &dyn Store, person: &str) -> Result<(), RecoveryError> {
    if crate::store::delete_dir_record(store, KIND, person, CAS_ATTEMPTS).await? {
        Ok(())
    } else {
        Err(RecoveryError::Busy)
    }
}

/// Uses up one of `person`'s codes: accepted at most once (removed in the write that accepts it);
/// a wrong code counts towards the lock. Returns how many unused codes are left.
pub async fn redeem(
    store: &dyn Store,
    person: &str,
    code: &str,
    now: i64,
) -> Result<usize, RecoveryError> {
    for _ in 0..CAS_ATTEMPTS {
        let Some((mut set, v)) = read(store, person).await? else {
            return Err(RecoveryError::NoCodes);
        };
        if let Some(until) = set.locked_until.filter(|u| *u > now) {
            return Err(RecoveryError::Locked { until });
        }
        if set.locked_until.is_some() {
            set.locked_until = None;
            set.failures = 0;
        }
        if set.hashes.is_empty() {
            return Err(RecoveryError::NoCodes);
        }
        let wanted = normalise(code).map(|c| hash(&set.salt, &c));
        // Every stored hash is compared, in constant time.
        let mut found = None;
        for (i, h) in set.hashes.iter().enumerate() {
            let same = wanted
                .as_ref()
                .is_some_and(|w| bool::from(w.as_bytes().ct_eq(h.as_bytes())));
            if same && found.is_none() {
                found = Some(i);
            }
        }
        let mut locked = false;
        match found {
            Some(i) => {
                set.hashes.remove(i);
                set.failures = 0;
            }
            None => {
                locked = count_failure(
                    (
                        &mut set.failures,
                        &mut set.first_failure,
                        &mut set.locked_until,
                    ),
                    MAX_FAILURES,
                    LOCK_SECONDS,
                    now,
                );
            }
        }
        if !store
            .dir_write(&[DirWrite::update(KIND, person, v.version, encode(&set)?)])
            .await?
        {
            continue;
        }
        return match found {
            Some(_) => Ok(set.hashes.len()),
            None => Err(RecoveryError::Wrong { locked }),
        };
    }
    Err(RecoveryError::Busy)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::{DirectoryStore, MemoryStore};

    #[tokio::test]
    async fn codes_are_single_use_and_stored_only_as_hashes() {
        let store = MemoryStore::new();
        let codes = generate(&store, "local:A", 100).await.unwrap();
        assert_eq!(codes.len(), CODES);
        let distinct: std::collections::HashSet<_> = codes.iter().collect();
        assert_eq!(distinct.len(), CODES);
        for c in &codes {
            assert_eq!(c.len(), 19, "{c}");
            assert!(normalise(c).is_some(), "{c}");
        }
        let stored = store.dir_get(KIND, "local:A").await.unwrap().unwrap().value;
        for c in &codes {
            assert!(!stored.contains(c.as_str()));
            assert!(!stored.contains(&normalise(c).unwrap()));
        }
        // Typed in upper case and without dashes it is the same code.
        let typed = normalise(&codes[3]).unwrap().to_uppercase();
        assert_eq!(redeem(&store, "local:A", &typed, 101).await.unwrap(), 9);
        assert!(matches!(
            redeem(&store, "local:A", &codes[3], 102).await,
            Err(RecoveryError::Wrong { locked: false })
        ));
        assert_eq!(remaining(&store, "local:A").await.unwrap(), Some(9));
        assert!(matches!(
            redeem(&store, "local:B", &codes[0], 102).await,
            Err(RecoveryError::NoCodes)
        ));
    }

    #[tokio::test]
    async fn a_new_set_ends_the_old_one_and_five_wrong_codes_lock() {
        let store = MemoryStore::new();
        let old = generate(&store, "local:A", 100).await.unwrap();
        let new = generate(&store, "local:A", 101).await.unwrap();
        assert!(matches!(
            redeem(&store, "local:A", &old[0], 102).await,
            Err(RecoveryError::Wrong { locked: false })
        ));
        for i in 0..3 {
            assert!(matches!(
                redeem(&store, "local:A", "aaaa-aaaa-aaaa-aaaa", 103 + i).await,
                Err(RecoveryError::Wrong { locked: false })
            ));
        }
        assert!(matches!(
            redeem(&store, "local:A", "not a code", 110).await,
            Err(RecoveryError::Wrong { locked: true })
        ));
        // Locked: even a right code is refused, and not used up.
        assert!(matches!(
            redeem(&store, "local:A", &new[0], 111).await,
            Err(RecoveryError::Locked { until: 410 })
        ));
        assert_eq!(remaining(&store, "local:A").await.unwrap(), Some(10));
        assert_eq!(redeem(&store, "local:A", &new[0], 410).await.unwrap(), 9);
        delete(&store, "local:A").await.unwrap();
        assert_eq!(remaining(&store, "local:A").await.unwrap(), None);
    }
}
