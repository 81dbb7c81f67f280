//! SSO access and refresh tokens, kept server-side in the store's directory so that every replica
//! honours them and `Logout` ends them for real.
//!
//! A person's approval (of a device code or a PKCE sign-in) starts a **sign-in** (kind
//! `sso_signin`): the identity the portal session had then, the client it was approved for, and an
//! end after `[sso] session_hours`. Each access token (kind `sso_access`) and refresh token (kind
//! `sso_refresh`) belongs to one sign-in. A refresh token is single-use: using it issues a new pair
//! (rotation); using one a second time ends the whole sign-in (a stolen and a legitimate copy
//! cannot both go on). The tokens are 256-bit random strings; the store keys are their SHA-256, so
//! whoever reads the store cannot use them.

use super::{Result, SsoError};
use crate::app::App;
use crate::authz::gate::SignedInIdentity;
use crate::credentials::{random_token, token_key as key_of};
use crate::store::{DirWrite, Versioned};
use serde::{Deserialize, Serialize};

/// Directory kind of sign-ins.
pub const SIGNIN_KIND: &str = "sso_signin";
/// Directory kind of access tokens.
pub const ACCESS_KIND: &str = "sso_access";
/// Directory kind of refresh tokens.
pub const REFRESH_KIND: &str = "sso_refresh";
/// The only token type.
pub const TOKEN_TYPE: &str = "Bearer";

/// Role credentials obtained with one sign-in's tokens: listed for an operator to end one by one,
/// and revoked by a Logout with `logout_revokes_credentials`.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct IssuedSession {
    /// The credentials' session id (revocation scope).
    pub session_id: String,
    /// When they expire (Unix seconds): the revocation need not outlive this.
    pub expires_at: i64,
    /// Their access key id (empty in records written before it was kept).
    #[serde(default)]
    pub access_key_id: String,
    /// The account.
    #[serde(default)]
    pub account: String,
    /// The permission set.
    #[serde(default)]
    pub permission_set: String,
    /// The role behind the permission set in that account.
    #[serde(default)]
    pub role_arn: Option<String>,
    /// Issue time (Unix seconds; none in records written before it was kept).
    #[serde(default)]
    pub issued_at: Option<i64>,
}

/// One approved sign-in as stored.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SigninRecord {
    /// The client it was approved for.
    pub client_id: String,
    /// Who approved it, as their portal session knew them then.
    pub identity: SignedInIdentity,
    /// The start URL the client named.
    pub start_url: String,
    /// Granted scopes.
    #[serde(default)]
    pub scopes: Vec<String>,
    /// Approval time (Unix seconds).
    pub created_at: i64,
    /// No token of this sign-in works after this (Unix seconds).
    pub expires_at: i64,
    /// Ended (Logout, or a refresh token used twice): every token of it is refused.
    #[serde(default)]
    pub ended: Option<String>,
    /// Role credentials obtained with it (most recent last, at most [`MAX_ISSUED`]).
    #[serde(default)]
    pub issued: Vec<IssuedSession>,
}

/// Most credential sessions remembered per sign-in; older ones are forgotten first (their
/// credentials are the closest to expiry).
pub const MAX_ISSUED: usize = 200;

/// An access token as stored.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct AccessRecord {
    /// The sign-in's store key.
    pub signin: String,
    /// The client it was issued to.
    pub client_id: String,
    /// Expiry (Unix seconds).
    pub expires_at: i64,
}

/// A refresh token as stored.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RefreshRecord {
    /// The sign-in's store key.
    pub signin: String,
    /// The client it was issued to.
    pub client_id: String,
    /// When it was used (it then stays, so that a second use is recognised as reuse).
    #[serde(default)]
    pub used_at: Option<i64>,
    /// Expiry (Unix seconds): the sign-in's end.
    pub expires_at: i64,
}

/// A token pair as `CreateToken` answers it.
#[derive(Debug, Clone)]
pub struct Issued {
    /// The access token.
    pub access_token: String,
    /// Seconds until the access token expires.
    pub expires_in: i64,
    /// The refresh token.
    pub refresh_token: String,
}

/// What a valid access token stands for.
#[derive(Debug, Clone)]
pub struct Bearer {
    /// The access token's store key.
    pub access_key: String,
    /// The sign-in's store key.
    pub signin_key: String,
    /// The sign-in, as read (with its version, for writes that must not race).
    pub signin: SigninRecord,
    /// The sign-in record's version.
    pub signin_version: u64,
    /// The access token's expiry (Unix seconds).
    pub expires_at: i64,
}

/// `[sso]` settings; an internal error when it is not configured.
pub(super) fn settings(app: &App) -> Result<&crate::config::SsoSettings> {
    app.config
        .sso
        .as_ref()
        .ok_or_else(|| SsoError::internal("[sso] is not configured"))
}

/// A store failure as SSO-OIDC's internal error.
pub(super) fn store_err(e: crate::store::StoreError) -> SsoError {
    SsoError::internal(format!("store: {e}"))
}

/// The record of `kind` stored under `key`, with its version; `None` when there is none. `what`
/// names the record in the error when it does not parse.
pub(super) async fn load_record<T: serde::de::DeserializeOwned>(
    app: &App,
    kind: &str,
    key: &str,
    what: &str,
) -> Result<Option<(T, Versioned)>> {
    let Some(v) = app.store.dir_get(kind, key).await.map_err(store_err)? else {
        return Ok(None);
    };
    let r =
        serde_json::from_str(&v.value).map_err(|e| SsoError::internal(format!("{what}: {e}")))?;
    Ok(Some((r, v)))
}

/// Applies `writes` atomically; `false` when a version check failed (nothing written).
pub(super) async fn write(app: &App, writes: &[DirWrite]) -> Result<bool> {
    app.store.dir_write(writes).await.map_err(store_err)
}

/// A record as JSON for the store.
pub(super) fn to_json<T: Serialize>(v: &T) -> Result<String> {
    serde_json::to_string(v).map_err(|e| SsoError::internal(e.to_string()))
}

/// A 256-bit random token (base64url).
pub(super) fn random() -> Result<String> {
    random_token().map_err(|e| SsoError::internal(e.to_string()))
}

/// The writes that create a new access and refresh token of sign-in `signin_key` for `client_id`,
/// with the tokens; the access token expires at the configured lifetime or the sign-in's end,
/// whichever is first.
fn new_pair(
    app: &App,
    signin_key: &str,
    client_id: &str,
    signin_expires_at: i64,
    now: i64,
) -> Result<(Issued, Vec<DirWrite>)> {
    let s = settings(app)?;
    let access_token = random()?;
    let refresh_token = random()?;
    let access_expires = (now + s.access_token_seconds).min(signin_expires_at);
    let access = AccessRecord {
        signin: signin_key.to_string(),
        client_id: client_id.to_string(),
        expires_at: access_expires,
    };
    let refresh = RefreshRecord {
        signin: signin_key.to_string(),
        client_id: client_id.to_string(),
        used_at: None,
        expires_at: signin_expires_at,
    };
    let writes = vec![
        DirWrite::insert(ACCESS_KIND, &key_of(&access_token), to_json(&access)?),
        DirWrite::insert(REFRESH_KIND, &key_of(&refresh_token), to_json(&refresh)?),
    ];
    Ok((
        Issued {
            access_token,
            expires_in: access_expires - now,
            refresh_token,
        },
        writes,
    ))
}

/// Starts a sign-in for `identity` approved for `client_id` and issues its first token pair, in
/// one atomic write. `extra` writes join the batch (e.g. consuming the device code or the
/// authorization code, so that a code yields tokens at most once).
pub async fn start(
    app: &App,
    client_id: &str,
    identity: SignedInIdentity,
    start_url: &str,
    scopes: Vec<String>,
    extra: Vec<DirWrite>,
) -> Result<Issued> {
    let s = settings(app)?;
    let now = app.clock.now().timestamp();
    let signin_key = key_of(&random()?);
    let record = SigninRecord {
        client_id: client_id.to_string(),
        identity,
        start_url: start_url.to_string(),
        scopes,
        created_at: now,
        expires_at: now + s.session_seconds,
        ended: None,
        issued: Vec::new(),
    };
    let (issued, mut writes) = new_pair(app, &signin_key, client_id, record.expires_at, now)?;
    writes.push(DirWrite::insert(
        SIGNIN_KIND,
        &signin_key,
        to_json(&record)?,
    ));
    writes.extend(extra);
    if !write(app, &writes).await? {
        return Err(
            SsoError::invalid_grant("Invalid grant provided").because("the code was used already")
        );
    }
    Ok(issued)
}

async fn load_signin(app: &App, key: &str) -> Result<Option<(SigninRecord, Versioned)>> {
    load_record(app, SIGNIN_KIND, key, &format!("sign-in record {key}")).await
}

/// The sign-in an access token stands for, if the token is known, unexpired and its sign-in is
/// live. Errors are the portal API's `UnauthorizedException` with the precise reason.
pub async fn bearer(app: &App, access_token: &str) -> Result<Bearer> {
    let now = app.clock.now().timestamp();
    let access_key = key_of(access_token);
    let Some(v) = app
        .store
        .dir_get(ACCESS_KIND, &access_key)
        .await
        .map_err(|e| SsoError::portal_internal(format!("store: {e}")))?
    else {
        return Err(SsoError::unauthorized("unknown access token"));
    };
    let a: AccessRecord = serde_json::from_str(&v.value)
        .map_err(|e| SsoError::portal_internal(format!("access token record: {e}")))?;
    if a.expires_at <= now {
        return Err(SsoError::unauthorized(format!(
            "access token expired {} s ago",
            now - a.expires_at
        )));
    }
    let Some((signin, sv)) = load_signin(app, &a.signin)
        .await
        .map_err(|e| e.for_api(super::Api::Portal))?
    else {
        return Err(SsoError::unauthorized("the token's sign-in is gone"));
    };
    if let Some(why) = &signin.ended {
        return Err(SsoError::unauthorized(format!(
            "the token's sign-in was ended: {why}"
        )));
    }
    if signin.expires_at <= now {
        return Err(SsoError::unauthorized("the token's sign-in has expired"));
    }
    Ok(Bearer {
        access_key,
        signin_key: a.signin,
        signin,
        signin_version: sv.version,
        expires_at: a.expires_at,
    })
}

/// The sign-in's identity as the gate sees it now (directory groups re-read). A sign-in the gate
/// refuses (user deleted, revoked, provider removed) is ended, so none of its tokens works again,
/// and the caller gets `UnauthorizedException` with the gate's reason.
pub async fn recheck(
    app: &App,
    signin_key: &str,
    identity: &SignedInIdentity,
) -> Result<SignedInIdentity> {
    match crate::authz::gate::recheck(app, identity, false).await {
        Ok(fresh) => Ok(fresh),
        Err(e) => Err(gate_refused(app, signin_key, e).await),
    }
}

/// [`recheck`] with the gate's admission, for minting credentials.
pub async fn admit(
    app: &App,
    signin_key: &str,
    identity: &SignedInIdentity,
) -> Result<crate::authz::gate::Admitted> {
    match crate::authz::gate::admit_sign_in(app, identity).await {
        Ok(a) => Ok(a),
        Err(e) => Err(gate_refused(app, signin_key, e).await),
    }
}

async fn gate_refused(app: &App, signin_key: &str, e: crate::authz::gate::Refusal) -> SsoError {
    if e.unavailable() {
        return SsoError::portal_internal(format!("mint gate: {e}"));
    }
    let why = format!("mint gate: {e}");
    if let Err(end_failed) = end(app, signin_key, &why).await {
        return end_failed.for_api(super::Api::Portal);
    }
    SsoError::unauthorized(format!("{why}; the sign-in is ended"))
}

/// `CreateToken` with `grant_type=refresh_token`: exchanges an unused refresh token of
/// `client_id` for a new pair (the old refresh token is marked used, in the same write). A refresh
/// token used a second time ends its sign-in. Errors are SSO-OIDC's.
pub async fn refresh(app: &App, client_id: &str, refresh_token: &str) -> Result<Issued> {
    let invalid = || SsoError::invalid_grant("Invalid refresh token provided");
    let now = app.clock.now().timestamp();
    let key = key_of(refresh_token);
    for _ in 0..3 {
        let Some((mut r, v)) =
            load_record::<RefreshRecord>(app, REFRESH_KIND, &key, "refresh token record").await?
        else {
            return Err(invalid().because("unknown refresh token"));
        };
        if r.client_id != client_id {
            return Err(invalid().because(format!(
                "refresh token was issued to client {}, not {client_id}",
                r.client_id
            )));
        }
        if r.expires_at <= now {
            return Err(SsoError::expired_token("Refresh token has expired")
                .because("the refresh token's sign-in has expired"));
        }
        let Some((mut signin, sv)) = load_signin(app, &r.signin).await? else {
            return Err(invalid().because("the refresh token's sign-in is gone"));
        };
        if let Some(why) = &signin.ended {
            return Err(invalid().because(format!("the sign-in was ended: {why}")));
        }
        if let Err(e) = crate::authz::gate::recheck(app, &signin.identity, false).await {
            if e.unavailable() {
                return Err(SsoError::internal(format!("mint gate: {e}")));
            }
            let why = format!("mint gate: {e}");
            end(app, &r.signin, &why).await?;
            return Err(invalid().because(format!("{why}; the sign-in is ended")));
        }
        if let Some(used) = r.used_at {
            // Reuse: someone holds a copy. End the sign-in, so neither copy goes on.
            signin.ended = Some(format!("refresh token used twice (first at {used})"));
            let _ = write(
                app,
                &[DirWrite::update(
                    SIGNIN_KIND,
                    &r.signin,
                    sv.version,
                    to_json(&signin)?,
                )],
            )
            .await?;
            return Err(invalid().because(format!(
                "refresh token reused (first used at {used}); the sign-in is ended"
            )));
        }
        r.used_at = Some(now);
        let (issued, mut writes) = new_pair(app, &r.signin, client_id, signin.expires_at, now)?;
        writes.push(DirWrite::update(
            REFRESH_KIND,
            &key,
            v.version,
            to_json(&r)?,
        ));
        // The sign-in must not change (end) meanwhile.
        writes.push(DirWrite::unchanged(SIGNIN_KIND, &r.signin, &sv));
        if write(app, &writes).await? {
            return Ok(issued);
        }
        // Raced with another use or an end: read again; a second use is then seen as reuse.
    }
    Err(SsoError::internal("refresh token changed while being used"))
}

/// Applies `change` to the sign-in record and writes it back, retried a few times against
/// concurrent writers; `change` returns `false` to write nothing. Returns the record as written (or
/// as it was when nothing was written); `None` when the sign-in is gone.
async fn update_signin(
    app: &App,
    signin_key: &str,
    what: &str,
    mut change: impl FnMut(&mut SigninRecord) -> bool,
) -> Result<Option<SigninRecord>> {
    for _ in 0..5 {
        let Some((mut r, v)) = load_signin(app, signin_key).await? else {
            return Ok(None);
        };
        if !change(&mut r) {
            return Ok(Some(r));
        }
        let doc = to_json(&r)?;
        if write(
            app,
            &[DirWrite::update(SIGNIN_KIND, signin_key, v.version, doc)],
        )
        .await?
        {
            return Ok(Some(r));
        }
    }
    Err(SsoError::internal(format!("sign-in changed while {what}")))
}

/// Records role credentials obtained with this sign-in (one update of the sign-in's record).
pub async fn record_issued(app: &App, signin_key: &str, session: IssuedSession) -> Result<()> {
    let now = app.clock.now().timestamp();
    update_signin(app, signin_key, "recording credentials", |r| {
        r.issued.retain(|s| s.expires_at > now);
        r.issued.push(session.clone());
        if r.issued.len() > MAX_ISSUED {
            let extra = r.issued.len() - MAX_ISSUED;
            r.issued.drain(..extra);
        }
        true
    })
    .await
    .map(|_| ())
}

/// Ends a sign-in (Logout): every access and refresh token of it is refused from now on. Returns
/// the sign-in as it was, for revoking its credentials. Ending one that is gone or ended succeeds.
pub async fn end(app: &App, signin_key: &str, why: &str) -> Result<Option<SigninRecord>> {
    update_signin(app, signin_key, "being ended", |r| {
        if r.ended.is_some() {
            return false;
        }
        r.ended = Some(why.to_string());
        true
    })
    .await
}

/// Deletes the records of `kinds` whose `expires_at` has passed (and records that no longer
/// decode); returns how many. Every SSO record kind keeps its end in `expires_at`.
pub async fn purge_records(app: &App, kinds: &[&str], now: i64) -> Result<usize> {
    #[derive(Deserialize)]
    struct Ends {
        expires_at: i64,
    }
    let dead = |v: &str| serde_json::from_str::<Ends>(v).map_or(true, |e| e.expires_at <= now);
    let mut n = 0;
    for &kind in kinds {
        n += crate::store::purge_dir_records(app.store.as_ref(), kind, dead)
            .await
            .map_err(store_err)?;
    }
    Ok(n)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::clock::{Clock, FixedClock};
    use std::sync::Arc;

    async fn app() -> (Arc<App>, FixedClock) {
        crate::sso::testing::app_with("").await
    }

    fn ana() -> SignedInIdentity {
        crate::sso::testing::ana(None)
    }

    async fn signed_in(app: &App) -> Issued {
        start(
            app,
            "client-a",
            crate::sso::testing::in_directory(app, ana()).await,
            "http://127.0.0.1:8080/start",
            vec![],
            vec![],
        )
        .await
        .unwrap()
    }

    #[tokio::test]
    async fn an_access_token_stands_for_its_sign_in_until_it_expires() {
        let (app, clock) = app().await;
        let t = signed_in(&app).await;
        assert_eq!(t.expires_in, 3600);
        let b = bearer(&app, &t.access_token).await.unwrap();
        assert_eq!(b.signin.identity.subject, "ana");
        assert_eq!(b.signin.client_id, "client-a");
        let e = bearer(&app, &t.refresh_token).await.unwrap_err();
        assert_eq!(e.code.as_str(), "UnauthorizedException");
        assert_eq!(e.reason, "unknown access token");
        clock.advance(chrono::Duration::seconds(3600));
        let e = bearer(&app, &t.access_token).await.unwrap_err();
        assert!(e.reason.contains("expired"), "{}", e.reason);
    }

    #[tokio::test]
    async fn refresh_rotates_and_a_second_use_ends_the_sign_in() {
        let (app, clock) = app().await;
        let first = signed_in(&app).await;
        clock.advance(chrono::Duration::seconds(3000));
        let e = refresh(&app, "client-b", &first.refresh_token)
            .await
            .unwrap_err();
        assert_eq!(e.code.as_str(), "InvalidGrantException");
        assert!(e.reason.contains("client-a"), "{}", e.reason);
        let second = refresh(&app, "client-a", &first.refresh_token)
            .await
            .unwrap();
        assert_ne!(second.access_token, first.access_token);
        assert_ne!(second.refresh_token, first.refresh_token);
        bearer(&app, &second.access_token).await.unwrap();
        // The old access token keeps its own expiry; reuse of the old refresh token ends all.
        let e = refresh(&app, "client-a", &first.refresh_token)
            .await
            .unwrap_err();
        assert_eq!(e.code.as_str(), "InvalidGrantException");
        assert!(e.reason.contains("reused"), "{}", e.reason);
        for token in [&first.access_token, &second.access_token] {
            let e = bearer(&app, token).await.unwrap_err();
            assert!(e.reason.contains("ended"), "{}", e.reason);
        }
        let e = refresh(&app, "client-a", &second.refresh_token)
            .await
            .unwrap_err();
        assert!(e.reason.contains("ended"), "{}", e.reason);
    }

    #[tokio::test]
    async fn access_tokens_never_outlive_the_sign_in_and_refresh_stops_at_its_end() {
        let (app, clock) = app().await;
        let mut t = signed_in(&app).await;
        for _ in 0..7 {
            clock.advance(chrono::Duration::seconds(3600));
            t = refresh(&app, "client-a", &t.refresh_token).await.unwrap();
        }
        // Seven hours in: the last token may only live for the sign-in's last hour.
        assert_eq!(t.expires_in, 3600);
        clock.advance(chrono::Duration::seconds(1800));
        let t = refresh(&app, "client-a", &t.refresh_token).await.unwrap();
        assert_eq!(t.expires_in, 1800);
        clock.advance(chrono::Duration::seconds(1800));
        let e = refresh(&app, "client-a", &t.refresh_token)
            .await
            .unwrap_err();
        assert_eq!(e.code.as_str(), "ExpiredTokenException");
        assert!(bearer(&app, &t.access_token).await.is_err());
    }

    /// Purges the access and refresh tokens and sign-ins that ran out by now; how many.
    async fn purge_tokens(app: &App, clock: &FixedClock) -> usize {
        let kinds = [ACCESS_KIND, REFRESH_KIND, SIGNIN_KIND];
        purge_records(app, &kinds, clock.now().timestamp())
            .await
            .unwrap()
    }

    #[tokio::test]
    async fn ending_a_sign_in_refuses_its_tokens_and_purge_removes_what_ran_out() {
        let (app, clock) = app().await;
        let t = signed_in(&app).await;
        let other = signed_in(&app).await;
        let b = bearer(&app, &t.access_token).await.unwrap();
        record_issued(
            &app,
            &b.signin_key,
            IssuedSession {
                session_id: "s1".into(),
                expires_at: 1_700_003_600,
                access_key_id: "ASIAEXAMPLE".into(),
                account: "123456789012".into(),
                permission_set: "Dev".into(),
                role_arn: None,
                issued_at: Some(1_700_000_000),
            },
        )
        .await
        .unwrap();
        let ended = end(&app, &b.signin_key, "logout").await.unwrap().unwrap();
        assert_eq!(ended.issued.len(), 1);
        assert!(bearer(&app, &t.access_token).await.is_err());
        assert!(refresh(&app, "client-a", &t.refresh_token).await.is_err());
        // Another sign-in of the same person is untouched.
        bearer(&app, &other.access_token).await.unwrap();
        assert_eq!(purge_tokens(&app, &clock).await, 0);
        clock.advance(chrono::Duration::seconds(8 * 3600));
        // Two sign-ins, each with one access and one refresh token.
        assert_eq!(purge_tokens(&app, &clock).await, 6);
    }

    #[tokio::test]
    async fn refresh_re_checks_the_person_and_ends_the_sign_in_of_a_disabled_user() {
        let (app, clock) = app().await;
        let t = signed_in(&app).await;
        clock.advance(chrono::Duration::seconds(60));
        let d = app.directory.clone().unwrap();
        d.set_user_disabled("ana", true).await.unwrap();
        let e = refresh(&app, "client-a", &t.refresh_token)
            .await
            .unwrap_err();
        assert_eq!(e.code.as_str(), "InvalidGrantException");
        assert!(
            e.reason
                .contains("mint gate: directory user ana is disabled"),
            "{}",
            e.reason
        );
        // The sign-in is over: its access token too, and enabling the user brings neither back.
        d.set_user_disabled("ana", false).await.unwrap();
        let e = bearer(&app, &t.access_token).await.unwrap_err();
        assert!(e.reason.contains("ended"), "{}", e.reason);
        let e = refresh(&app, "client-a", &t.refresh_token)
            .await
            .unwrap_err();
        assert!(e.reason.contains("ended"), "{}", e.reason);
    }
}
