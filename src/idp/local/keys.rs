//! Names and record keys of the directory that must never be shared by two principals: the user
//! names reserved for (or derived from) the root user, and the keys under which MFA state (the last
//! accepted TOTP step, failures, locks) is kept.
//!
//! **MFA state is keyed by user id.** A user's TOTP state lives under `user:<AIDA…>:totp` and its
//! security-key failure count under `user:<AIDA…>:webauthn`. User ids are random, unique (their
//! index record is inserted once) and never reused, so no user name, device serial or credential
//! id chosen by anyone can name another principal's state, and a user created with the name of a
//! deleted one starts afresh. Keying by the device serial (`arn:aws:iam::ACCOUNT:mfa/<name>`) did
//! not have that property: the root user's serial ends in `mfa/root-account-mfa-device`, which a
//! user of that name shared.

use super::{User, ROOT};

/// The name at the end of the root user's TOTP serial (`arn:aws:iam::ACCOUNT:mfa/…`), as in IAM.
pub const ROOT_MFA_DEVICE: &str = "root-account-mfa-device";

/// User names no user may be created with (compared case-insensitively), and why: the root user's
/// own name, and the name whose MFA serial would be the root user's.
pub const RESERVED_USER_NAMES: &[(&str, &str)] = &[
    (ROOT, "the name root is reserved for the root user"),
    (
        ROOT_MFA_DEVICE,
        "the name root-account-mfa-device is reserved: it is the name of the root user's MFA device, and a user of that name would have the root user's MFA serial",
    ),
];

/// Why `name` may not be given to a new user, if it may not.
pub fn reserved_user_name(name: &str) -> Option<&'static str> {
    RESERVED_USER_NAMES
        .iter()
        .find(|(reserved, _)| name.eq_ignore_ascii_case(reserved))
        .map(|(_, why)| *why)
}

/// The record key (kind `mfa_state`) of a user's TOTP device state.
pub fn totp_state_key(user: &User) -> String {
    format!("user:{}:totp", user.user_id)
}

/// The record key (kind `mfa_state`) of a user's security-key failure count.
pub fn webauthn_state_key(user: &User) -> String {
    format!("user:{}:webauthn", user.user_id)
}
