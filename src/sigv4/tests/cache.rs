//! The cache of derived signing keys: a kept key spares the derivation only. Every request is
//! still verified, a secret that changed never finds the key of the old one, and a request that
//! fails keeps nothing.

use chrono::Duration;

use super::super::{parse_authorization, verify, SigV4Error, SigningKeyCache, SIGNING_KEY_CACHE};
use super::support::*;

const AR: &[u8] = b"Action=AssumeRole&Version=2011-06-15&RoleArn=arn:aws:iam::111122223333:role/r&RoleSessionName=s";
const OTHER_SECRET: &str = "c2VjcmV0LW9mLWZvcnR5LWNoYXJhY3RlcnMtMDAwMQ";

/// Verifies `req` with `secret` through `cache`, for STS in us-east-1 a minute after signing.
fn through(cache: &SigningKeyCache, req: &OwnedRequest, secret: &str) -> Result<(), SigV4Error> {
    let signed = req.as_signed();
    let auth = parse_authorization(&signed)?;
    let regions = regions();
    cache.verify(&signed, &auth, secret, soon(), &sts_options(&regions))
}

/// The same request with the last hex digit of its signature changed.
fn with_wrong_signature(req: &OwnedRequest) -> OwnedRequest {
    let mut wrong = req.clone();
    let header = req.header("authorization");
    let last = header.chars().last().unwrap();
    let swapped = if last == '0' { '1' } else { '0' };
    let changed = format!("{}{swapped}", &header[..header.len() - 1]);
    wrong.set_header("authorization", &changed);
    wrong
}

#[test]
fn a_cached_key_still_verifies_every_request() {
    let cache = SigningKeyCache::new();
    let req = Spec::post("/", AR).sign();
    through(&cache, &req, SECRET).unwrap();
    through(&cache, &req, SECRET).unwrap();
    assert_eq!(cache.len(), 1, "one key for one secret and scope");
    // The key is cached for this scope: a wrong signature and a changed body are still refused.
    assert_eq!(
        through(&cache, &with_wrong_signature(&req), SECRET).unwrap_err(),
        SigV4Error::SignatureMismatch
    );
    let mut tampered = req.clone();
    tampered.body = b"Action=AssumeRole&Version=2011-06-15&RoleArn=arn:aws:iam::111122223333:role/admin&RoleSessionName=s".to_vec();
    assert_eq!(
        through(&cache, &tampered, SECRET).unwrap_err(),
        SigV4Error::SignatureMismatch
    );
    // The other checks still run on a cached key: a request replayed past the skew is refused.
    let signed = req.as_signed();
    let auth = parse_authorization(&signed).unwrap();
    let regions = regions();
    let late = soon() + Duration::minutes(20);
    assert!(matches!(
        cache.verify(&signed, &auth, SECRET, late, &sts_options(&regions)),
        Err(SigV4Error::RequestTimeTooSkewed { .. })
    ));
    assert_eq!(cache.len(), 1);
}

#[test]
fn a_changed_secret_never_finds_the_key_of_the_old_one() {
    let cache = SigningKeyCache::new();
    let old = Spec::post("/", AR).sign();
    through(&cache, &old, SECRET).unwrap();
    // The directory now holds another secret for the same key id: a request signed with the old
    // secret is refused at once, one signed with the new secret accepted.
    assert_eq!(
        through(&cache, &old, OTHER_SECRET).unwrap_err(),
        SigV4Error::SignatureMismatch
    );
    let new = Spec::post("/", AR).sign_with(OTHER_SECRET);
    through(&cache, &new, OTHER_SECRET).unwrap();
    assert_eq!(
        through(&cache, &new, SECRET).unwrap_err(),
        SigV4Error::SignatureMismatch
    );
    // What the cache answers is what a fresh derivation answers, either way round.
    let regions = regions();
    for (req, secret) in [
        (&old, SECRET),
        (&old, OTHER_SECRET),
        (&new, SECRET),
        (&new, OTHER_SECRET),
    ] {
        let signed = req.as_signed();
        let auth = parse_authorization(&signed).unwrap();
        assert_eq!(
            through(&cache, req, secret),
            verify(&signed, &auth, secret, soon(), &sts_options(&regions))
        );
    }
}

#[test]
fn a_request_that_fails_keeps_nothing() {
    let cache = SigningKeyCache::new();
    let req = Spec::post("/", AR).sign();
    // Someone who knows the key id but not the secret, in any scope: nothing is kept.
    assert!(through(&cache, &req, OTHER_SECRET).is_err());
    assert!(through(&cache, &with_wrong_signature(&req), SECRET).is_err());
    let elsewhere = Spec {
        region: "eu-west-1",
        ..Spec::post("/", AR)
    }
    .sign();
    assert!(matches!(
        through(&cache, &elsewhere, SECRET),
        Err(SigV4Error::InvalidScope { .. })
    ));
    assert!(cache.is_empty());
}

#[test]
fn the_cache_is_bounded_and_shows_no_secret() {
    let cache = SigningKeyCache::new();
    let req = Spec::post("/", AR).sign();
    through(&cache, &req, SECRET).unwrap();
    let shown = format!("{cache:?}");
    assert!(!shown.contains(SECRET) && !shown.contains(AKID), "{shown}");
    // Many scopes verified: never more than the bound.
    for i in 0..SIGNING_KEY_CACHE + 10 {
        let secret = format!("{SECRET}{i}");
        let req = Spec::post("/", AR).sign_with(&secret);
        through(&cache, &req, &secret).unwrap();
        assert!(cache.len() <= SIGNING_KEY_CACHE);
    }
}
