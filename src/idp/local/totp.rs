//! Time-based one-time passwords (RFC 6238): SHA-1, six digits, 30-second steps, at most one step of
//! drift either way. Which step a code matched is returned so that the caller can refuse any step
//! at or before the last one accepted: each code works once.

use totp_rs::{Algorithm, TOTP};

/// Seconds per step.
pub const STEP_SECONDS: u64 = 30;
/// Bytes of a new secret (160 bits, as RFC 4226 recommends).
pub const SECRET_BYTES: usize = 20;

/// Errors of this module.
#[derive(Debug, thiserror::Error)]
pub enum TotpError {
    /// The stored secret is not usable.
    #[error("TOTP secret unusable: {0}")]
    Secret(String),
}

fn totp(secret: &[u8], issuer: &str, account: &str) -> Result<TOTP, TotpError> {
    TOTP::new(
        Algorithm::SHA1,
        6,
        1,
        STEP_SECONDS,
        secret.to_vec(),
        Some(issuer.replace(':', "")),
        account.replace(':', ""),
    )
    .map_err(|e| TotpError::Secret(e.to_string()))
}

/// A new random secret.
pub fn new_secret() -> Result<Vec<u8>, TotpError> {
    let mut s = vec![0u8; SECRET_BYTES];
    crate::credentials::fill_random(&mut s).map_err(|e| TotpError::Secret(e.to_string()))?;
    Ok(s)
}

/// The secret in base32 (no padding), as authenticator apps take it.
pub fn base32(secret: &[u8]) -> String {
    base32_encode(secret)
}

/// Decodes a base32 secret.
pub fn from_base32(s: &str) -> Result<Vec<u8>, TotpError> {
    totp_rs::Secret::Encoded(s.to_string())
        .to_bytes()
        .map_err(|e| TotpError::Secret(format!("{e:?}")))
}

fn base32_encode(bytes: &[u8]) -> String {
    const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";
    let mut out = String::new();
    let mut buffer: u32 = 0;
    let mut bits = 0;
    for &b in bytes {
        buffer = (buffer << 8) | u32::from(b);
        bits += 8;
        while bits >= 5 {
            out.push(ALPHABET[((buffer >> (bits - 5)) & 31) as usize] as char);
            bits -= 5;
        }
    }
    if bits > 0 {
        out.push(ALPHABET[((buffer << (5 - bits)) & 31) as usize] as char);
    }
    out
}

/// The `otpauth://` URI an authenticator app scans.
pub fn uri(secret: &[u8], issuer: &str, account: &str) -> Result<String, TotpError> {
    Ok(totp(secret, issuer, account)?.get_url())
}

/// The code for Unix time `t` (for tests and tools).
pub fn code_at(secret: &[u8], t: i64) -> Result<String, TotpError> {
    Ok(totp(secret, "x", "x")?.generate(t.max(0) as u64))
}

/// Whether `code` has the shape of a code: exactly six ASCII digits.
pub fn well_formed(code: &str) -> bool {
    code.len() == 6 && code.bytes().all(|b| b.is_ascii_digit())
}

/// The step (Unix time / 30) that `code` is valid for, within one step of `now`, considering only
/// steps after `after`. Every candidate is compared in constant time.
pub fn matching_step(
    secret: &[u8],
    code: &str,
    now: i64,
    after: Option<u64>,
) -> Result<Option<u64>, TotpError> {
    if !well_formed(code) || now < 0 {
        return Ok(None);
    }
    let t = totp(secret, "x", "x")?;
    let current = now as u64 / STEP_SECONDS;
    let mut found = None;
    for step in [current.saturating_sub(1), current, current + 1] {
        let candidate = t.generate(step * STEP_SECONDS);
        let same = subtle::ConstantTimeEq::ct_eq(candidate.as_bytes(), code.as_bytes());
        if bool::from(same) && after.is_none_or(|a| step > a) && found.is_none() {
            found = Some(step);
        }
    }
    Ok(found)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// RFC 6238 appendix B, SHA-1, eight digits truncated to six.
    #[test]
    fn rfc_6238_vectors() {
        let secret = b"12345678901234567890";
        for (t, eight) in [
            (59, "94287082"),
            (1111111109, "07081804"),
            (1111111111, "14050471"),
            (1234567890, "89005924"),
            (2000000000, "69279037"),
        ] {
            assert_eq!(code_at(secret, t).unwrap(), eight[2..], "t = {t}");
        }
    }

    #[test]
    fn one_step_of_drift_and_no_more() {
        let secret = new_secret().unwrap();
        let now = 1_700_000_015; // inside step 56_666_667
        let step = now as u64 / 30;
        for (offset, want) in [
            (-60, None),
            (-30, Some(step - 1)),
            (0, Some(step)),
            (30, Some(step + 1)),
            (60, None),
        ] {
            let code = code_at(&secret, now + offset).unwrap();
            assert_eq!(
                matching_step(&secret, &code, now, None).unwrap(),
                want,
                "offset {offset}"
            );
        }
    }

    #[test]
    fn steps_at_or_before_the_last_accepted_are_refused() {
        let secret = new_secret().unwrap();
        let now = 1_700_000_015;
        let step = now as u64 / 30;
        let code = code_at(&secret, now).unwrap();
        assert_eq!(
            matching_step(&secret, &code, now, Some(step - 1)).unwrap(),
            Some(step)
        );
        assert_eq!(
            matching_step(&secret, &code, now, Some(step)).unwrap(),
            None
        );
        let previous = code_at(&secret, now - 30).unwrap();
        assert_eq!(
            matching_step(&secret, &previous, now, Some(step)).unwrap(),
            None
        );
    }

    #[test]
    fn malformed_codes_never_match() {
        let secret = new_secret().unwrap();
        let now = 1_700_000_015;
        let code = code_at(&secret, now).unwrap();
        for bad in [
            "",
            "12345",
            "1234567",
            "12345a",
            " 123456",
            &format!("{code} "),
        ] {
            assert_eq!(
                matching_step(&secret, bad, now, None).unwrap(),
                None,
                "{bad:?}"
            );
        }
    }

    #[test]
    fn base32_round_trips_and_uri_names_the_issuer() {
        let secret = new_secret().unwrap();
        let b = base32(&secret);
        assert_eq!(b.len(), 32);
        assert_eq!(from_base32(&b).unwrap(), secret);
        let u = uri(&secret, "rolegate", "alice").unwrap();
        assert!(u.starts_with("otpauth://totp/rolegate:alice?"), "{u}");
        assert!(u.contains(&format!("secret={b}")), "{u}");
    }
}
