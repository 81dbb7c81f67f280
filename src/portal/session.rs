//! Portal sessions kept server-side in the store's directory (kind `portal_session`), so that they
//! survive a restart and every replica sees them. The browser holds only a random id in a
//! `__Host-` cookie; the store key is the id's SHA-256, so whoever reads the store cannot replay a
//! cookie. Also the helpers every form needs: CSRF tokens, the Origin check and safe `return_to`.

use super::{PortalError, SignedInIdentity};
use crate::store::{DirWrite, Store};
use axum::http::HeaderMap;
use serde::{Deserialize, Serialize};

/// Directory kind of portal sessions.
pub const SESSION_KIND: &str = "portal_session";
/// Cookie holding the session id.
pub const SESSION_COOKIE: &str = "__Host-rolegate-session";
/// Cookie holding the CSRF token of the sign-in forms (before there is a session).
pub const LOGIN_CSRF_COOKIE: &str = "__Host-rolegate-csrf";
/// A session's `last_seen` is written back at most this often (seconds).
const TOUCH_EVERY: i64 = 60;

/// A signed-in browser session as stored.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SessionRecord {
    /// Who signed in.
    pub identity: SignedInIdentity,
    /// The CSRF token of this session's forms.
    pub csrf: String,
    /// Sign-in time (Unix seconds).
    pub created_at: i64,
    /// Last request (Unix seconds, written back at most once a minute).
    pub last_seen: i64,
    /// Client address at sign-in.
    pub ip: String,
    /// The person has an MFA method but signed in without it: until the MFA challenge is passed
    /// ([`record_mfa`] clears this), only the challenge pages and sign-out accept the session.
    #[serde(default)]
    pub mfa_pending: bool,
}

/// A loaded session: its id hash (store key), record and version.
#[derive(Debug, Clone)]
pub struct Session {
    /// The store key (SHA-256 of the cookie value, hex).
    pub key: String,
    /// The record.
    pub record: SessionRecord,
    /// The record's version.
    pub version: u64,
}

/// A new session or CSRF token ([`crate::credentials::random_token`]).
pub fn random_token() -> Result<String, PortalError> {
    crate::credentials::random_token().map_err(|e| PortalError::Internal(e.to_string()))
}

pub use crate::credentials::token_key as key_of;

/// The value of cookie `name`, if the request carries exactly one.
pub fn cookie(headers: &HeaderMap, name: &str) -> Option<String> {
    let mut found = None;
    for v in headers.get_all(axum::http::header::COOKIE) {
        let Ok(s) = v.to_str() else { continue };
        for part in s.split(';') {
            if let Some((k, val)) = part.trim().split_once('=') {
                if k == name {
                    if found.is_some() {
                        // Two cookies of one name: one may have been planted; trust neither.
                        return None;
                    }
                    found = Some(val.to_string());
                }
            }
        }
    }
    found
}

/// A `Set-Cookie` value for a `__Host-` cookie (Secure, Path=/, no Domain, HttpOnly, Lax).
pub fn set_cookie(name: &str, value: &str, max_age: i64) -> String {
    format!("{name}={value}; Path=/; Secure; HttpOnly; SameSite=Lax; Max-Age={max_age}")
}

/// A `Set-Cookie` value that removes a cookie.
pub fn clear_cookie(name: &str) -> String {
    set_cookie(name, "", 0)
}

/// Whether a state-changing request comes from our own pages: its `Origin` must be the public
/// URL's origin (or, without `Origin`, `Sec-Fetch-Site: same-origin`).
pub fn origin_ok(headers: &HeaderMap, public_url: &url::Url) -> Result<(), String> {
    let ours = public_url.origin().ascii_serialization();
    match headers.get(axum::http::header::ORIGIN) {
        Some(o) if o.as_bytes() == ours.as_bytes() => Ok(()),
        Some(o) => Err(format!(
            "Origin {} is not {ours}",
            String::from_utf8_lossy(o.as_bytes())
        )),
        None => match headers.get("sec-fetch-site") {
            Some(s) if s.as_bytes() == b"same-origin" => Ok(()),
            _ => Err("no Origin header on a state-changing request".into()),
        },
    }
}

/// Paths `return_to` may lead to: the portal, the console, and the approval pages of command
/// line sign-in (whose queries carry the user code, or the whole authorization request with its
/// percent-encoded redirect URI: `/authorize` checks that request again when it is shown).
const RETURN_PREFIXES: &[&str] = &[
    "/portal",
    "/console",
    "/device",
    "/authorize",
    "/admin/console",
];

/// Pages `return_to` may name exactly (the operator console's home; `/admin/…` is otherwise the
/// JSON admin API).
const RETURN_PAGES: &[&str] = &["/admin"];

/// Longest `return_to` (an authorization request with its query fits).
const MAX_RETURN_TO: usize = 1024;

/// `return_to` if it is a safe relative path into the portal, else `/portal`. Refused: absolute
/// and scheme-relative URLs (`//host`, `/\host`), anything outside the allow-list, control
/// characters and their percent-encodings, double percent-encodings, backslashes, dot segments,
/// more than [`MAX_RETURN_TO`] characters.
pub fn safe_return_to(raw: Option<&str>) -> String {
    const HOME: &str = "/portal";
    let Some(r) = raw else {
        return HOME.into();
    };
    let decoded: String = percent_encoding::percent_decode_str(r)
        .decode_utf8_lossy()
        .into_owned();
    let bad = |s: &str| {
        s.len() > MAX_RETURN_TO
            || !s.starts_with('/')
            || s.starts_with("//")
            || s.contains('\\')
            || s.chars().any(|c| c.is_control())
            || s.contains('%') && s != r
    };
    if bad(r) || bad(&decoded) {
        return HOME.into();
    }
    let path = r.split(['?', '#']).next().unwrap_or("");
    if path.split('/').any(|seg| seg == ".." || seg == ".") {
        return HOME.into();
    }
    if RETURN_PAGES.contains(&path)
        || RETURN_PREFIXES
            .iter()
            .any(|p| path == *p || path.starts_with(&format!("{p}/")))
    {
        r.to_string()
    } else {
        HOME.into()
    }
}

/// Stores a new session for `identity` and returns the cookie value.
pub async fn create(
    store: &dyn Store,
    identity: SignedInIdentity,
    ip: String,
    now: i64,
) -> Result<String, PortalError> {
    create_with(store, identity, ip, now, false).await
}

/// Stores a new session for `identity`, waiting for the MFA challenge when `mfa_pending`, and
/// returns the cookie value.
pub async fn create_with(
    store: &dyn Store,
    identity: SignedInIdentity,
    ip: String,
    now: i64,
    mfa_pending: bool,
) -> Result<String, PortalError> {
    let token = random_token()?;
    let record = SessionRecord {
        identity,
        csrf: random_token()?,
        created_at: now,
        last_seen: now,
        ip,
        mfa_pending,
    };
    let doc = serde_json::to_string(&record).map_err(|e| PortalError::Internal(e.to_string()))?;
    if !store
        .dir_write(&[DirWrite::insert(SESSION_KIND, &key_of(&token), doc)])
        .await?
    {
        return Err(PortalError::Internal("session id collision".into()));
    }
    Ok(token)
}

/// Records that the person behind `session` has just passed MFA (a step-up after sign-in):
/// the session moves to a new id with `mfa_time = now`, in one atomic write that also deletes the
/// old id, so a cookie copied before the step-up never carries the stronger session. Returns the
/// new cookie value. Fails with [`PortalError::SessionExpired`] when the session was ended or
/// changed meanwhile (signed out elsewhere): nothing is written then.
pub async fn record_mfa(
    store: &dyn Store,
    session: &Session,
    now: i64,
) -> Result<String, PortalError> {
    let token = random_token()?;
    let mut record = session.record.clone();
    record.identity.mfa_time = Some(now);
    record.mfa_pending = false;
    record.last_seen = now;
    let doc = serde_json::to_string(&record).map_err(|e| PortalError::Internal(e.to_string()))?;
    let done = store
        .dir_write(&[
            DirWrite::delete(SESSION_KIND, &session.key, session.version),
            DirWrite::insert(SESSION_KIND, &key_of(&token), doc),
        ])
        .await?;
    if done {
        Ok(token)
    } else {
        Err(PortalError::SessionExpired)
    }
}

/// Whether a session has run out by `now` (idle or absolute timeout).
pub fn expired(r: &SessionRecord, now: i64, idle: i64, max: i64) -> bool {
    now - r.last_seen >= idle || now - r.created_at >= max || now < r.created_at - 300
}

/// The live session a request's cookie names. `Ok(None)` without a cookie or for an unknown id;
/// `Err(SessionExpired)` for a session that has timed out (it is deleted).
pub async fn load(
    store: &dyn Store,
    headers: &HeaderMap,
    now: i64,
    idle: i64,
    max: i64,
) -> Result<Option<Session>, PortalError> {
    let Some(token) = cookie(headers, SESSION_COOKIE) else {
        return Ok(None);
    };
    let key = key_of(&token);
    let Some(v) = store.dir_get(SESSION_KIND, &key).await? else {
        return Ok(None);
    };
    let mut record: SessionRecord =
        serde_json::from_str(&v.value).map_err(|e| PortalError::Internal(e.to_string()))?;
    if expired(&record, now, idle, max) {
        let _ = store
            .dir_write(&[DirWrite::delete(SESSION_KIND, &key, v.version)])
            .await?;
        return Err(PortalError::SessionExpired);
    }
    let mut version = v.version;
    if now - record.last_seen >= TOUCH_EVERY {
        record.last_seen = now;
        let doc =
            serde_json::to_string(&record).map_err(|e| PortalError::Internal(e.to_string()))?;
        // A concurrent request may have touched it first; either write is as good.
        if store
            .dir_write(&[DirWrite::update(SESSION_KIND, &key, v.version, doc)])
            .await?
        {
            version += 1;
        }
    }
    Ok(Some(Session {
        key,
        record,
        version,
    }))
}

/// Deletes one session (logout). Deleting a session that is gone succeeds.
pub async fn delete(store: &dyn Store, key: &str) -> Result<(), PortalError> {
    if crate::store::delete_dir_record(store, SESSION_KIND, key, 3).await? {
        return Ok(());
    }
    Err(PortalError::Internal(
        "session changed while being deleted".into(),
    ))
}

/// Deletes every session of one person (logout everywhere); returns how many.
pub async fn delete_all_of(
    store: &dyn Store,
    provider: &str,
    subject: &str,
) -> Result<usize, PortalError> {
    let mut n = 0;
    for (key, v) in store.dir_list(SESSION_KIND).await? {
        let Ok(r) = serde_json::from_str::<SessionRecord>(&v.value) else {
            continue;
        };
        if r.identity.provider == provider && r.identity.subject == subject {
            delete(store, &key).await?;
            n += 1;
        }
    }
    Ok(n)
}

/// Deletes sessions that have timed out (and records that no longer decode); returns how many.
pub async fn purge_expired(
    store: &dyn Store,
    now: i64,
    idle: i64,
    max: i64,
) -> Result<usize, PortalError> {
    let dead = |v: &str| {
        serde_json::from_str::<SessionRecord>(v).map_or(true, |r| expired(&r, now, idle, max))
    };
    Ok(crate::store::purge_dir_records(store, SESSION_KIND, dead).await?)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The AWS CLI's authorization request, as the browser opens it.
    const AUTHORIZE: Option<&str> = Some(
        "/authorize?response_type=code&client_id=u_TncqdAp8ueBzVPIZxnt0sxqptpF1OsUwxjUP6PCqk\
         &redirect_uri=http%3A%2F%2F127.0.0.1%3A54321%2Foauth%2Fcallback\
         &state=0f1e2d3c4b5a69788796a5b4c3d2e1f0&code_challenge_method=S256\
         &scopes=sso%3Aaccount%3Aaccess&code_challenge=E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM",
    );

    #[test]
    fn return_to_is_a_relative_portal_path_or_home() {
        let cases = [
            (None, "/portal"),
            (Some("/portal"), "/portal"),
            (Some("/portal/history"), "/portal/history"),
            (Some("/portal?q=ops"), "/portal?q=ops"),
            (Some("/console"), "/console"),
            (Some("//evil.example/portal"), "/portal"),
            (Some("https://evil.example/portal"), "/portal"),
            (Some("/\\evil.example"), "/portal"),
            (Some("/portal%0d%0aSet-Cookie:x=1"), "/portal"),
            (Some("/portal\r\nx"), "/portal"),
            (Some("/%2f%2fevil.example"), "/portal"),
            (Some("/admin/users"), "/portal"),
            (Some("/admin"), "/admin"),
            (Some("/admin/console/users?q=a"), "/admin/console/users?q=a"),
            (Some("/admin/bootstrap"), "/portal"),
            (Some("/adminx"), "/portal"),
            (Some("/portalx"), "/portal"),
            (Some("/portal/../admin"), "/portal"),
            (Some(""), "/portal"),
            (Some("portal"), "/portal"),
            (Some("/device"), "/device"),
            (
                Some("/device?user_code=BCDF-GHJK"),
                "/device?user_code=BCDF-GHJK",
            ),
            (Some("/devices"), "/portal"),
            (Some("/device/../admin"), "/portal"),
            (Some("/device%0d%0aX:1"), "/portal"),
            (AUTHORIZE, AUTHORIZE.unwrap()),
            (Some("/authorize?state=%252f%252fevil"), "/portal"),
            (Some("/authorize?x=%0d%0aSet-Cookie:a"), "/portal"),
            (Some("/authorizer"), "/portal"),
            (Some("//authorize"), "/portal"),
            (Some("/authorize\\x"), "/portal"),
        ];
        let long = format!("/authorize?state={}", "a".repeat(1100));
        assert_eq!(safe_return_to(Some(&long)), "/portal");
        for (raw, want) in cases {
            assert_eq!(safe_return_to(raw), want, "{raw:?}");
        }
    }

    #[test]
    fn origin_must_be_ours() {
        let ours = url::Url::parse("https://sso.example.com").unwrap();
        let h = |pairs: &[(&'static str, &'static str)]| {
            let mut m = HeaderMap::new();
            for (k, v) in pairs {
                m.insert(*k, v.parse().unwrap());
            }
            m
        };
        assert!(origin_ok(&h(&[("origin", "https://sso.example.com")]), &ours).is_ok());
        assert!(origin_ok(&h(&[("origin", "https://evil.example")]), &ours).is_err());
        assert!(origin_ok(&h(&[("origin", "null")]), &ours).is_err());
        assert!(origin_ok(&h(&[("origin", "http://sso.example.com")]), &ours).is_err());
        assert!(origin_ok(&h(&[]), &ours).is_err());
        assert!(origin_ok(&h(&[("sec-fetch-site", "same-origin")]), &ours).is_ok());
        assert!(origin_ok(&h(&[("sec-fetch-site", "cross-site")]), &ours).is_err());
    }

    #[test]
    fn a_duplicated_cookie_is_not_trusted() {
        let mut m = HeaderMap::new();
        m.insert("cookie", "a=1; __Host-rolegate-session=x".parse().unwrap());
        assert_eq!(cookie(&m, SESSION_COOKIE).as_deref(), Some("x"));
        m.append("cookie", "__Host-rolegate-session=y".parse().unwrap());
        assert_eq!(cookie(&m, SESSION_COOKIE), None);
    }

    #[test]
    fn sessions_end_after_idle_and_absolute_timeouts() {
        let r = |created_at, last_seen| SessionRecord {
            identity: SignedInIdentity {
                provider: "local".into(),
                subject: "a".into(),
                claims: Default::default(),
                mfa_time: None,
                local_groups: vec![],
                origin_user: None,
                signed_in_at: 0,
            },
            csrf: String::new(),
            created_at,
            last_seen,
            ip: String::new(),
            mfa_pending: false,
        };
        assert!(!expired(&r(1000, 1000), 1000 + 1799, 1800, 3600));
        assert!(expired(&r(1000, 1000), 1000 + 1800, 1800, 3600));
        assert!(!expired(&r(1000, 4000), 4500, 1800, 3600));
        assert!(expired(&r(1000, 4500), 4600, 1800, 3600));
    }
}
