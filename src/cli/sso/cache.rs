//! Files of the command line client: the SSO token cache exactly as the AWS CLI and botocore keep
//! it (`~/.aws/sso/cache/<sha1 of the sso-session name>.json`, so that the SDKs' own SSO token
//! provider reads a token `rolegate login` wrote, and refreshes it), the client registrations, and
//! the role credentials `credential-process` reuses. Files are 0600 in 0700 directories and
//! replaced atomically (a temporary file renamed into place).

use anyhow::Context;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};

/// A cached SSO token, field for field as botocore writes it.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct CachedToken {
    /// The start URL it was issued for.
    pub start_url: String,
    /// The SSO region (`sso_region`).
    pub region: String,
    /// The access token.
    pub access_token: String,
    /// When the access token expires, RFC 3339 UTC (`2026-12-03T20:00:00Z`).
    pub expires_at: String,
    /// The registered client.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_id: Option<String>,
    /// Its secret.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_secret: Option<String>,
    /// When the client registration expires (RFC 3339).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub registration_expires_at: Option<String>,
    /// The refresh token.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub refresh_token: Option<String>,
}

/// A client registration kept for reuse until it expires.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct CachedRegistration {
    /// The client id.
    pub client_id: String,
    /// The client secret.
    pub client_secret: String,
    /// When the secret expires (RFC 3339).
    pub expires_at: String,
    /// Where a person approves a PKCE sign-in (`authorizationEndpoint`), if the server said.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub authorization_endpoint: Option<String>,
}

/// Role credentials as `credential_process` prints them (`Version` 1).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "PascalCase")]
pub struct ProcessCredentials {
    /// Always 1.
    pub version: u32,
    /// The access key id.
    pub access_key_id: String,
    /// The secret access key.
    pub secret_access_key: String,
    /// The session token.
    pub session_token: String,
    /// RFC 3339 UTC.
    pub expiration: String,
}

/// RFC 3339 UTC with seconds, as botocore and the AWS CLI write times.
pub fn rfc3339(t: DateTime<Utc>) -> String {
    crate::clock::rfc3339(&t, false)
}

/// A time read back from a cache file.
pub fn parse_time(s: &str) -> anyhow::Result<DateTime<Utc>> {
    Ok(DateTime::parse_from_rfc3339(s)
        .with_context(|| format!("not an RFC 3339 time: {s}"))?
        .with_timezone(&Utc))
}

/// Lower-case hex SHA-1 of `s` (the AWS CLI's cache file names).
pub fn sha1_hex(s: &str) -> String {
    hex::encode(
        aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA1_FOR_LEGACY_USE_ONLY, s.as_bytes())
            .as_ref(),
    )
}

/// The home directory (`HOME`).
fn home() -> anyhow::Result<PathBuf> {
    std::env::var_os("HOME")
        .filter(|h| !h.is_empty())
        .map(PathBuf::from)
        .context("HOME is not set")
}

/// `~/.aws/sso/cache`, where botocore looks for SSO tokens.
pub fn sso_cache_dir() -> anyhow::Result<PathBuf> {
    Ok(home()?.join(".aws").join("sso").join("cache"))
}

/// The token cache file of an sso-session, as botocore names it.
pub fn token_path(session_name: &str) -> anyhow::Result<PathBuf> {
    Ok(sso_cache_dir()?.join(format!("{}.json", sha1_hex(session_name))))
}

/// The registration cache file of a session and flow (its own name: botocore keys its
/// registrations differently and never reads ours).
pub fn registration_path(session_name: &str, flow: &str) -> anyhow::Result<PathBuf> {
    Ok(sso_cache_dir()?.join(format!(
        "{}.json",
        sha1_hex(&format!("rolegate-registration\n{session_name}\n{flow}"))
    )))
}

/// Where `credential-process` keeps role credentials: `$XDG_CACHE_HOME/rolegate/credentials`
/// (default `~/.cache/rolegate/credentials`).
pub fn credentials_dir() -> anyhow::Result<PathBuf> {
    let base = match std::env::var_os("XDG_CACHE_HOME").filter(|v| !v.is_empty()) {
        Some(d) => PathBuf::from(d),
        None => home()?.join(".cache"),
    };
    Ok(base.join("rolegate").join("credentials"))
}

/// The credentials cache file of a session, account and permission set.
pub fn credentials_path(session_name: &str, account: &str, role: &str) -> anyhow::Result<PathBuf> {
    Ok(credentials_dir()?.join(format!(
        "{}.json",
        sha1_hex(&format!("{session_name}\n{account}\n{role}"))
    )))
}

/// Reads a JSON cache file; `None` when it does not exist or no longer parses (a damaged cache is
/// a miss, not an error: it is written anew).
pub fn read<T: for<'de> Deserialize<'de>>(path: &Path) -> Option<T> {
    let bytes = std::fs::read(path).ok()?;
    serde_json::from_slice(&bytes).ok()
}

/// Writes `value` as JSON to `path`: directories made 0700, the file 0600, replaced atomically.
pub fn write<T: Serialize>(path: &Path, value: &T) -> anyhow::Result<()> {
    let dir = path.parent().context("cache path without a directory")?;
    create_private_dir(dir)?;
    let json = serde_json::to_vec_pretty(value)?;
    write_private(path, &json)
}

/// Creates `dir` (and its parents) with mode 0700 for what it creates.
pub fn create_private_dir(dir: &Path) -> anyhow::Result<()> {
    let mut b = std::fs::DirBuilder::new();
    b.recursive(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::DirBuilderExt;
        b.mode(0o700);
    }
    b.create(dir)
        .with_context(|| format!("creating {}", dir.display()))
}

/// Replaces `path` with `bytes` through a 0600 temporary file in the same directory.
pub fn write_private(path: &Path, bytes: &[u8]) -> anyhow::Result<()> {
    use std::io::Write;
    let dir = path.parent().context("path without a directory")?;
    let mut suffix = [0u8; 8];
    crate::credentials::fill_random(&mut suffix).map_err(|e| anyhow::anyhow!("{e}"))?;
    let tmp = dir.join(format!(
        ".{}.{}.tmp",
        path.file_name().and_then(|n| n.to_str()).unwrap_or("cache"),
        hex::encode(suffix)
    ));
    let mut opts = std::fs::OpenOptions::new();
    opts.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        opts.mode(0o600);
    }
    let result = (|| {
        let mut f = opts
            .open(&tmp)
            .with_context(|| format!("creating {}", tmp.display()))?;
        f.write_all(bytes)?;
        f.sync_all()?;
        std::fs::rename(&tmp, path).with_context(|| format!("replacing {}", path.display()))
    })();
    if result.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    result
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn file_names_are_the_aws_cli_s() {
        // botocore: hashlib.sha1(session_name.encode("utf-8")).hexdigest().
        assert_eq!(
            sha1_hex("my-sso"),
            "0ad374308c5a4e22f723adf10145eafad7c4031c"
        );
        assert_eq!(sha1_hex("abc"), "a9993e364706816aba3e25717850c26c9cd0d89d");
    }

    #[test]
    fn writes_are_private_atomic_and_read_back() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("a").join("b").join("token.json");
        let t = CachedToken {
            start_url: "https://sso.example.com/start".into(),
            region: "us-east-1".into(),
            access_token: "at".into(),
            expires_at: "2026-12-03T20:00:00Z".into(),
            client_id: Some("c".into()),
            client_secret: Some("s".into()),
            registration_expires_at: Some("2027-03-03T20:00:00Z".into()),
            refresh_token: None,
        };
        write(&path, &t).unwrap();
        assert_eq!(read::<CachedToken>(&path), Some(t.clone()));
        let json: serde_json::Value =
            serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap();
        // The names botocore reads; an absent refresh token is left out, not null.
        for k in [
            "startUrl",
            "region",
            "accessToken",
            "expiresAt",
            "clientId",
            "clientSecret",
            "registrationExpiresAt",
        ] {
            assert!(json.get(k).is_some(), "{k}");
        }
        assert!(json.get("refreshToken").is_none());
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
            assert_eq!(mode(&path), 0o600);
            assert_eq!(mode(path.parent().unwrap()), 0o700);
        }
        // Replacing leaves no temporary file behind; a damaged file reads as a miss.
        write(&path, &t).unwrap();
        assert_eq!(
            std::fs::read_dir(path.parent().unwrap()).unwrap().count(),
            1
        );
        std::fs::write(&path, b"{not json").unwrap();
        assert_eq!(read::<CachedToken>(&path), None);
        assert_eq!(
            parse_time("2026-12-03T20:00:00Z").unwrap().timestamp(),
            1_796_328_000
        );
    }
}
