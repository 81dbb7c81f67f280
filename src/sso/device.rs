//! Device authorization (RFC 8628): `StartDeviceAuthorization` stores a device code (kind
//! `sso_device`, keyed by the SHA-256 of the 256-bit device code) and its user code (kind
//! `sso_user_code`, keyed by the eight letters, pointing at the device code's key). The person
//! enters the user code in the portal and approves or denies; the client polls `CreateToken`
//! until then. An approved device code yields tokens once: its deletion is part of the write that
//! starts the sign-in (its user code stays until it expires, so that it reads as used).
//!
//! User codes are eight letters from an alphabet without vowels and look-alikes
//! ([`USER_CODE_ALPHABET`], 19⁸ ≈ 1.7·10¹⁰ codes), shown as `XXXX-XXXX`; a new code is unique
//! among the stored ones (the insert requires the key to be absent).

use super::token::{load_record, random, settings, to_json, write};
use super::{Result, SsoError};
use crate::app::App;
use crate::authz::gate::SignedInIdentity;
use crate::credentials::token_key as key_of;
use crate::store::{DirWrite, Versioned};
use serde::{Deserialize, Serialize};

/// Directory kind of device codes.
pub const DEVICE_KIND: &str = "sso_device";
/// Directory kind of user codes.
pub const USER_CODE_KIND: &str = "sso_user_code";
/// The letters of user codes: no digits, no vowels (no words, no 0/O or 1/I), no L.
pub const USER_CODE_ALPHABET: &[u8] = b"BCDFGHJKMNPQRSTVWXZ";
/// Letters in a user code.
pub const USER_CODE_LEN: usize = 8;
/// How much a poll that came too soon adds to the device code's interval (RFC 8628 §3.5).
pub const SLOW_DOWN_SECONDS: i64 = 5;

/// Where a device code stands.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(tag = "state", rename_all = "snake_case")]
pub enum DeviceState {
    /// Nobody has decided yet.
    Pending,
    /// Approved by this person (the tokens carry this identity).
    Approved {
        /// Who approved, as their portal session knew them.
        identity: SignedInIdentity,
        /// When (Unix seconds).
        at: i64,
    },
    /// Denied by the person signed in to the portal.
    Denied {
        /// Who denied (display name).
        by: String,
        /// When (Unix seconds).
        at: i64,
    },
}

/// A device code as stored.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct DeviceRecord {
    /// The client that started it.
    pub client_id: String,
    /// Its user code (eight letters, no dash).
    pub user_code: String,
    /// The start URL the client named.
    pub start_url: String,
    /// Scopes the sign-in will have.
    pub scopes: Vec<String>,
    /// Start time (Unix seconds).
    pub created_at: i64,
    /// Expiry (Unix seconds).
    pub expires_at: i64,
    /// Least seconds between polls (grows with each poll that came too soon).
    pub interval: i64,
    /// Last poll (Unix seconds).
    #[serde(default)]
    pub last_poll: Option<i64>,
    /// Pending, approved or denied.
    #[serde(flatten)]
    pub state: DeviceState,
}

/// A user code as stored: the device code it stands for.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct UserCodeRecord {
    /// The device code's store key.
    pub device: String,
    /// Expiry (Unix seconds), as the device code's.
    pub expires_at: i64,
}

/// What `StartDeviceAuthorization` answers.
pub struct Started {
    /// The device code (never stored).
    pub device_code: String,
    /// The user code as shown, `XXXX-XXXX`.
    pub user_code: String,
    /// Seconds until both expire.
    pub expires_in: i64,
    /// Least seconds between polls.
    pub interval: i64,
}

/// The user code as shown: `XXXX-XXXX`.
pub fn display_user_code(code: &str) -> String {
    if code.len() == USER_CODE_LEN && code.is_ascii() {
        format!("{}-{}", &code[..4], &code[4..])
    } else {
        code.to_string()
    }
}

/// A user code as typed (any case, with or without the dash or spaces) in its stored form, or
/// `None` when it cannot be one.
pub fn normalize_user_code(typed: &str) -> Option<String> {
    let code: String = typed
        .chars()
        .filter(|c| !matches!(c, '-' | ' ' | '\t'))
        .map(|c| c.to_ascii_uppercase())
        .collect();
    (code.len() == USER_CODE_LEN && code.bytes().all(|b| USER_CODE_ALPHABET.contains(&b)))
        .then_some(code)
}

fn new_user_code() -> Result<String> {
    let mut out = String::with_capacity(USER_CODE_LEN);
    // Rejection sampling below the largest multiple of the alphabet's size that fits a byte, so
    // that every letter is as likely as every other.
    let n = USER_CODE_ALPHABET.len();
    let limit = 256 - 256 % n;
    while out.len() < USER_CODE_LEN {
        let mut b = [0u8; 16];
        crate::credentials::fill_random(&mut b).map_err(|e| SsoError::internal(e.to_string()))?;
        for x in b {
            if out.len() < USER_CODE_LEN && usize::from(x) < limit {
                let i = usize::from(x) % n;
                out.push(char::from(USER_CODE_ALPHABET[i]));
            }
        }
    }
    Ok(out)
}

/// Stores a new device code and its user code for `client_id`.
pub async fn start(
    app: &App,
    client_id: &str,
    start_url: &str,
    scopes: Vec<String>,
) -> Result<Started> {
    let s = settings(app)?;
    let now = app.clock.now().timestamp();
    for _ in 0..5 {
        let device_code = random()?;
        let user_code = new_user_code()?;
        let key = key_of(&device_code);
        let record = DeviceRecord {
            client_id: client_id.to_string(),
            user_code: user_code.clone(),
            start_url: start_url.to_string(),
            scopes: scopes.clone(),
            created_at: now,
            expires_at: now + s.device_code_seconds,
            interval: s.poll_interval_seconds,
            last_poll: None,
            state: DeviceState::Pending,
        };
        let index = UserCodeRecord {
            device: key.clone(),
            expires_at: record.expires_at,
        };
        let written = write(
            app,
            &[
                DirWrite::insert(USER_CODE_KIND, &user_code, to_json(&index)?),
                DirWrite::insert(DEVICE_KIND, &key, to_json(&record)?),
            ],
        )
        .await?;
        if written {
            return Ok(Started {
                device_code,
                user_code: display_user_code(&user_code),
                expires_in: s.device_code_seconds,
                interval: s.poll_interval_seconds,
            });
        }
        // The user code is taken (live, or expired and not yet purged): draw another.
    }
    Err(SsoError::internal("no free user code after 5 draws"))
}

/// What the device grant of `CreateToken` found: an approved device code, and the writes that
/// consume it (to join the write that starts the sign-in).
pub struct Approved {
    /// The device code as stored.
    pub record: DeviceRecord,
    /// Who approved.
    pub identity: SignedInIdentity,
    /// Deletes the device code (at the version read).
    pub consume: Vec<DirWrite>,
}

async fn load(app: &App, key: &str) -> Result<Option<(DeviceRecord, Versioned)>> {
    load_record(app, DEVICE_KIND, key, "device code record").await
}

/// One poll of `device_code` by `client_id` (RFC 8628 §3.4/3.5): pending →
/// `AuthorizationPendingException`; sooner than the interval after the last poll →
/// `SlowDownException` (and the interval grows by [`SLOW_DOWN_SECONDS`]); expired →
/// `ExpiredTokenException`; denied → `AccessDeniedException`; unknown, used or another client's
/// → `InvalidGrantException`; approved → [`Approved`].
pub async fn poll(app: &App, client_id: &str, device_code: &str) -> Result<Approved> {
    let invalid = || SsoError::invalid_grant("Invalid device code provided");
    let now = app.clock.now().timestamp();
    let key = key_of(device_code);
    let Some((mut r, v)) = load(app, &key).await? else {
        return Err(invalid().because("unknown or already used device code"));
    };
    if r.client_id != client_id {
        return Err(invalid().because(format!(
            "device code was issued to client {}, not {client_id}",
            r.client_id
        )));
    }
    if r.expires_at <= now {
        return Err(SsoError::expired_token("Device code has expired")
            .because(format!("device code expired {} s ago", now - r.expires_at)));
    }
    if let DeviceState::Denied { by, .. } = &r.state {
        return Err(SsoError::access_denied("Access denied")
            .because(format!("{by} denied the device code")));
    }
    let too_soon = r.last_poll.is_some_and(|t| now - t < r.interval);
    if too_soon {
        r.interval += SLOW_DOWN_SECONDS;
    }
    r.last_poll = Some(now);
    if too_soon || matches!(r.state, DeviceState::Pending) {
        // Remember this poll. A failed write means another poll of the same code raced this
        // one: too soon by definition.
        let written = write(
            app,
            &[DirWrite::update(DEVICE_KIND, &key, v.version, to_json(&r)?)],
        )
        .await?;
        if too_soon || !written {
            return Err(SsoError::slow_down().because(format!(
                "polled sooner than the interval; interval now {} s",
                r.interval
            )));
        }
        return Err(SsoError::authorization_pending());
    }
    let DeviceState::Approved { identity, .. } = r.state.clone() else {
        return Err(SsoError::internal("device code in an unknown state"));
    };
    // The user code stays until it expires: entered again, it is shown as used (and no new
    // code can take its letters meanwhile).
    Ok(Approved {
        record: r,
        identity,
        consume: vec![DirWrite::delete(DEVICE_KIND, &key, v.version)],
    })
}

/// Why a user code entered in the portal cannot be decided on.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CodeProblem {
    /// No such code (mistyped, or consumed and purged).
    #[error("no such user code")]
    Unknown,
    /// The code has expired.
    #[error("the user code expired {0} s ago")]
    Expired(i64),
    /// Someone approved or denied it already (or its client fetched the tokens).
    #[error("the user code was already {0}")]
    Decided(&'static str),
    /// The client that started it is gone (its registration expired).
    #[error("the client that started the user code is no longer registered")]
    NoClient,
}

/// A pending device code found by its user code, with the client that asks.
pub struct Pending {
    /// The device code's store key.
    pub key: String,
    /// The record.
    pub record: DeviceRecord,
    /// The record's version.
    pub version: u64,
    /// The client's registered name.
    pub client_name: String,
}

/// The pending device code of `user_code` (stored form, see [`normalize_user_code`]).
pub async fn find_pending(
    app: &App,
    user_code: &str,
) -> Result<std::result::Result<Pending, CodeProblem>> {
    let now = app.clock.now().timestamp();
    let Some((index, _)) =
        load_record::<UserCodeRecord>(app, USER_CODE_KIND, user_code, "user code record").await?
    else {
        return Ok(Err(CodeProblem::Unknown));
    };
    let Some((r, v)) = load(app, &index.device).await? else {
        return Ok(Err(CodeProblem::Decided("used")));
    };
    if r.expires_at <= now {
        return Ok(Err(CodeProblem::Expired(now - r.expires_at)));
    }
    match r.state {
        DeviceState::Pending => {}
        DeviceState::Approved { .. } => return Ok(Err(CodeProblem::Decided("approved"))),
        DeviceState::Denied { .. } => return Ok(Err(CodeProblem::Decided("denied"))),
    }
    let Some(client) = super::client::get(app, &r.client_id).await? else {
        return Ok(Err(CodeProblem::NoClient));
    };
    Ok(Ok(Pending {
        key: index.device,
        record: r,
        version: v.version,
        client_name: client.name,
    }))
}

/// Approves (`Some(identity)`) or denies (`None`, naming `who`) a pending device code found by
/// [`find_pending`]. `Ok(false)` when it changed meanwhile (decided elsewhere, or polled: look
/// it up again).
pub async fn decide(
    app: &App,
    pending: &Pending,
    approve: Option<SignedInIdentity>,
    who: &str,
) -> Result<bool> {
    let now = app.clock.now().timestamp();
    let mut r = pending.record.clone();
    r.state = match approve {
        Some(identity) => DeviceState::Approved { identity, at: now },
        None => DeviceState::Denied {
            by: who.to_string(),
            at: now,
        },
    };
    write(
        app,
        &[DirWrite::update(
            DEVICE_KIND,
            &pending.key,
            pending.version,
            to_json(&r)?,
        )],
    )
    .await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn user_codes_use_the_unambiguous_alphabet_and_normalise() {
        for _ in 0..200 {
            let c = new_user_code().unwrap();
            assert_eq!(c.len(), USER_CODE_LEN);
            assert!(c.bytes().all(|b| USER_CODE_ALPHABET.contains(&b)), "{c}");
            assert_eq!(normalize_user_code(&display_user_code(&c)), Some(c.clone()));
            assert_eq!(
                normalize_user_code(&display_user_code(&c).to_lowercase()),
                Some(c)
            );
        }
        for bad in [
            "BCDF-GHJ",
            "BCDF-GHJKM",
            "BCDF-GHJ0",
            "ABCD-EFGH",
            "BCDF-GHJ1",
            "",
        ] {
            assert_eq!(normalize_user_code(bad), None, "{bad}");
        }
        assert_eq!(normalize_user_code(" bcdf ghjk "), Some("BCDFGHJK".into()));
        for c in b"AEIOU01LI" {
            assert!(!USER_CODE_ALPHABET.contains(c));
        }
    }
}
