//! Web identity token checks against a JWKS served on loopback, with tokens built by hand so that every
//! header and claim can be bent.

use super::*;
use crate::clock::FixedClock;
use crate::config::{JwksSource, OidcProvider};
use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::signature::{EcdsaKeyPair, KeyPair, ECDSA_P256_SHA256_FIXED_SIGNING};
use axum::routing::get;
use serde_json::json;
use std::sync::atomic::AtomicUsize;

const NOW: i64 = 1_800_000_000;

struct Key {
    kid: String,
    pair: EcdsaKeyPair,
}

impl Key {
    fn new(kid: &str) -> Key {
        Key {
            kid: kid.into(),
            pair: EcdsaKeyPair::generate(&ECDSA_P256_SHA256_FIXED_SIGNING).unwrap(),
        }
    }
    fn jwk(&self) -> Value {
        let p = self.pair.public_key().as_ref();
        json!({"kty": "EC", "crv": "P-256", "kid": self.kid, "use": "sig", "alg": "ES256",
               "x": URL_SAFE_NO_PAD.encode(&p[1..33]), "y": URL_SAFE_NO_PAD.encode(&p[33..65])})
    }
    fn sign(&self, header: Value, claims: Value) -> String {
        let h = URL_SAFE_NO_PAD.encode(header.to_string());
        let c = URL_SAFE_NO_PAD.encode(claims.to_string());
        let input = format!("{h}.{c}");
        let sig = self
            .pair
            .sign(&SystemRandom::new(), input.as_bytes())
            .unwrap();
        format!("{input}.{}", URL_SAFE_NO_PAD.encode(sig.as_ref()))
    }
    fn token(&self, claims: Value) -> String {
        self.sign(
            json!({"alg": "ES256", "kid": self.kid, "typ": "JWT"}),
            claims,
        )
    }
}

struct Idp {
    issuer: String,
    jwks: Arc<RwLock<Value>>,
    fetches: Arc<AtomicUsize>,
    down: Arc<std::sync::atomic::AtomicBool>,
}

async fn idp(keys: &[&Key]) -> Idp {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let issuer = format!("http://{}", listener.local_addr().unwrap());
    let jwks = Arc::new(RwLock::new(
        json!({"keys": keys.iter().map(|k| k.jwk()).collect::<Vec<_>>()}),
    ));
    let fetches = Arc::new(AtomicUsize::new(0));
    let down = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let (j, f, d, iss) = (jwks.clone(), fetches.clone(), down.clone(), issuer.clone());
    let (d2, iss2) = (down.clone(), issuer.clone());
    let app = axum::Router::new()
        .route(
            "/.well-known/openid-configuration",
            get(move || {
                let (d, iss) = (d2.clone(), iss2.clone());
                async move {
                    if d.load(Ordering::SeqCst) {
                        return Err(axum::http::StatusCode::SERVICE_UNAVAILABLE);
                    }
                    Ok(axum::Json(
                        json!({"issuer": iss, "jwks_uri": format!("{iss}/jwks")}),
                    ))
                }
            }),
        )
        .route(
            "/jwks",
            get(move || {
                let (j, f, d) = (j.clone(), f.clone(), d.clone());
                async move {
                    f.fetch_add(1, Ordering::SeqCst);
                    if d.load(Ordering::SeqCst) {
                        return Err(axum::http::StatusCode::SERVICE_UNAVAILABLE);
                    }
                    Ok(axum::Json(j.read().clone()))
                }
            }),
        );
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    let _ = iss;
    Idp {
        issuer,
        jwks,
        fetches,
        down,
    }
}

fn provider(issuer: &str) -> OidcProvider {
    OidcProvider {
        issuer: issuer.into(),
        key_prefix: issuer.trim_start_matches("http://").into(),
        audiences: vec!["client-a".into(), "client-b".into()],
        jwks: JwksSource::Discovery,
        algorithms: vec![Algorithm::ES256],
        leeway_seconds: 30,
        allow_http: true,
        accounts: None,
        name: "test".into(),
        groups_claim: "groups".into(),
        groups_delimiter: None,
        email_claim: "email".into(),
        email_always_verified: false,
        mfa_amr: Vec::new(),
        login: None,
    }
}

fn verifier(issuer: &str) -> (WebIdentityVerifier, FixedClock) {
    let clock = FixedClock::new(DateTime::from_timestamp(NOW, 0).unwrap());
    let v = WebIdentityVerifier::new(&[provider(issuer)], Arc::new(clock.clone())).unwrap();
    (v, clock)
}

use chrono::DateTime;

fn claims(iss: &str) -> Value {
    json!({"iss": iss, "sub": "repo:acme/app:ref:refs/heads/main", "aud": "client-a",
           "iat": NOW - 10, "exp": NOW + 300, "groups": ["dev", "ops"], "nested": {"a": {"b": 1}}})
}

fn with(mut base: Value, f: impl FnOnce(&mut serde_json::Map<String, Value>)) -> Value {
    f(base.as_object_mut().unwrap());
    base
}

fn invalid(r: Result<VerifiedIdentity>) -> String {
    match r {
        Err(JwtError::Invalid(m)) => m,
        other => panic!("expected InvalidIdentityToken, got {other:?}"),
    }
}

#[tokio::test]
async fn a_valid_token_yields_its_subject_audience_and_every_claim() {
    let k = Key::new("k1");
    let idp = idp(&[&k]).await;
    let (v, _) = verifier(&idp.issuer);
    let token = format!("  {}\n", k.token(claims(&idp.issuer)));
    let id = v.verify(&token).await.unwrap();
    assert_eq!(id.subject, "repo:acme/app:ref:refs/heads/main");
    assert_eq!(id.audience, "client-a");
    assert_eq!(id.claims["groups"], json!(["dev", "ops"]));
    assert_eq!(id.claims["nested"]["a"]["b"], json!(1));
}

#[tokio::test]
async fn the_subject_is_used_exactly_as_signed() {
    let k = Key::new("k1");
    let idp = idp(&[&k]).await;
    let (v, _) = verifier(&idp.issuer);
    for sub in [" alice", "alice ", "\talice\n", "ALICE", "al ice"] {
        let token = k.token(with(claims(&idp.issuer), |m| {
            m.insert("sub".into(), json!(sub));
        }));
        let id = v.verify(&token).await.unwrap();
        assert_eq!(id.subject, sub);
        assert_eq!(id.claims["sub"], json!(sub));
    }
}

#[tokio::test]
async fn headers_that_name_keys_or_unsafe_algorithms_are_refused() {
    let k = Key::new("k1");
    let idp = idp(&[&k]).await;
    let (v, _) = verifier(&idp.issuer);
    let c = claims(&idp.issuer);
    let body = URL_SAFE_NO_PAD.encode(c.to_string());
    for alg in ["none", "None", "NONE", "nOnE"] {
        let h = URL_SAFE_NO_PAD.encode(json!({"alg": alg, "kid": "k1"}).to_string());
        assert!(
            invalid(v.verify(&format!("{h}.{body}.")).await).contains("not allowed"),
            "{alg}"
        );
    }
    // RS256 -> HS256 confusion: an HMAC "signed" with public key material never gets that far.
    let h = URL_SAFE_NO_PAD.encode(json!({"alg": "HS256", "kid": "k1"}).to_string());
    assert!(invalid(v.verify(&format!("{h}.{body}.AAAA")).await).contains("not allowed"));
    for (name, extra) in [
        ("jku", json!("http://evil.example/jwks")),
        ("x5u", json!("http://evil.example/cert")),
        ("jwk", k.jwk()),
        ("crit", json!(["exp"])),
        ("cty", json!("JWT")),
        ("b64", json!(false)),
    ] {
        let mut h = json!({"alg": "ES256", "kid": "k1"});
        h[name] = extra;
        let msg = invalid(v.verify(&k.sign(h, c.clone())).await);
        assert!(!msg.is_empty(), "{name}");
    }
    for kid in ["../../etc/passwd", "1' OR '1'='1", ""] {
        let msg = invalid(
            v.verify(&k.sign(json!({"alg": "ES256", "kid": kid}), c.clone()))
                .await,
        );
        assert!(msg.contains("kid"), "{kid}: {msg}");
    }
}

#[tokio::test]
async fn claims_are_checked_exactly() {
    let k = Key::new("k1");
    let idp = idp(&[&k]).await;
    let (v, _) = verifier(&idp.issuer);
    let iss = idp.issuer.clone();
    let base = claims(&iss);
    // Each case: the claims changed from `base`, a value set or (None) the claim removed.
    let cases = vec![
        ("wrong aud", vec![("aud", Some(json!("other")))]),
        ("no aud", vec![("aud", None)]),
        ("no sub", vec![("sub", None)]),
        ("empty sub", vec![("sub", Some(json!("")))]),
        ("no exp", vec![("exp", None)]),
        ("no iat", vec![("iat", None)]),
        (
            "string exp",
            vec![("exp", Some(json!((NOW + 300).to_string())))],
        ),
        ("string nbf", vec![("nbf", Some(json!("0")))]),
        ("future nbf", vec![("nbf", Some(json!(NOW + 31)))]),
        ("future iat", vec![("iat", Some(json!(NOW + 31)))]),
        (
            "several aud, no azp",
            vec![("aud", Some(json!(["client-a", "x"])))],
        ),
        (
            "azp not ours",
            vec![
                ("aud", Some(json!(["client-a", "x"]))),
                ("azp", Some(json!("x"))),
            ],
        ),
    ];
    for (name, changes) in cases {
        let c = with(base.clone(), |m| {
            for (claim, value) in changes {
                match value {
                    Some(value) => m.insert(claim.into(), value),
                    None => m.remove(claim),
                };
            }
        });
        let r = v.verify(&k.token(c)).await;
        assert!(matches!(r, Err(JwtError::Invalid(_))), "{name}: {r:?}");
    }
    // A wrongly typed time claim is named as such, not as missing.
    let r = v
        .verify(&k.token(with(base.clone(), |m| {
            m.insert("exp".into(), json!("soon"));
        })))
        .await;
    let msg = invalid(r);
    assert!(msg.contains("exp") && msg.contains("wrong type"), "{msg}");
    // Unknown issuer: no such provider.
    let r = v
        .verify(&k.token(with(base.clone(), |m| {
            m.insert("iss".into(), json!("https://other.example"));
        })))
        .await;
    assert!(invalid(r).contains("no OpenID Connect provider"));
    // Expired beyond leeway; within leeway still fine.
    let r = v
        .verify(&k.token(with(base.clone(), |m| {
            m.insert("exp".into(), json!(NOW - 31));
        })))
        .await;
    assert!(matches!(r, Err(JwtError::Expired(_))), "{r:?}");
    assert!(v
        .verify(&k.token(with(base.clone(), |m| {
            m.insert("exp".into(), json!(NOW - 29));
        })))
        .await
        .is_ok());
    // Several audiences with our azp are fine.
    let ok = with(base.clone(), |m| {
        m.insert("aud".into(), json!(["client-b", "x"]));
        m.insert("azp".into(), json!("client-b"));
    });
    assert_eq!(v.verify(&k.token(ok)).await.unwrap().audience, "client-b");
}

#[tokio::test]
async fn signatures_and_shapes_are_checked() {
    let k = Key::new("k1");
    let other = Key::new("k1"); // same kid, different key
    let idp = idp(&[&k]).await;
    let (v, _) = verifier(&idp.issuer);
    let c = claims(&idp.issuer);
    assert!(invalid(v.verify(&other.token(c.clone())).await).contains("signature"));
    // ECDSA r = s = 0.
    let t = k.token(c.clone());
    let (head, _) = t.rsplit_once('.').unwrap();
    let zero = URL_SAFE_NO_PAD.encode([0u8; 64]);
    assert!(matches!(
        v.verify(&format!("{head}.{zero}")).await,
        Err(JwtError::Invalid(_))
    ));
    assert!(invalid(v.verify("a.b.c.d.e").await).contains("JWE"));
    assert!(invalid(v.verify("abc").await).contains("compact"));
    let long = format!("{}{}", k.token(c.clone()), "A".repeat(MAX_TOKEN_CHARS));
    assert!(invalid(v.verify(&long).await).contains("longer"));
    // Tampered payload.
    let mut parts: Vec<String> = t.split('.').map(String::from).collect();
    parts[1] = URL_SAFE_NO_PAD.encode(
        with(c.clone(), |m| {
            m.insert("sub".into(), json!("admin"));
        })
        .to_string(),
    );
    assert!(invalid(v.verify(&parts.join(".")).await).contains("signature"));
}

#[tokio::test]
async fn unknown_kids_refetch_at_most_once_per_interval_and_rotation_is_picked_up() {
    let k1 = Key::new("k1");
    let idp = idp(&[&k1]).await;
    let (v, _) = verifier(&idp.issuer);
    v.verify(&k1.token(claims(&idp.issuer))).await.unwrap();
    assert_eq!(idp.fetches.load(Ordering::SeqCst), 1);
    // Within the interval after a fetch, unknown kids cause no fetch at all.
    let stranger = Key::new("zzz");
    assert!(matches!(
        v.verify(&stranger.token(claims(&idp.issuer))).await,
        Err(JwtError::Invalid(_))
    ));
    assert_eq!(idp.fetches.load(Ordering::SeqCst), 1);
    // After it, a flood of unknown kids causes one fetch, not one per token.
    let state = v.providers.values().next().unwrap().clone();
    *state.last_attempt.lock() = Some((Instant::now() - REFRESH_MIN_INTERVAL, true));
    let v = Arc::new(v);
    let mut set = tokio::task::JoinSet::new();
    for i in 0..50 {
        let t = Key::new(&format!("unknown-{i}")).token(claims(&idp.issuer));
        let v = v.clone();
        set.spawn(async move { v.verify(&t).await });
    }
    while let Some(r) = set.join_next().await {
        assert!(matches!(r.unwrap(), Err(JwtError::Invalid(_))));
    }
    assert_eq!(
        idp.fetches.load(Ordering::SeqCst),
        2,
        "one refetch for the whole flood"
    );
    // Rotation: a new key appears at the IdP; after the interval a token with its kid is accepted.
    let k2 = Key::new("k2");
    *idp.jwks.write() = json!({"keys": [k1.jwk(), k2.jwk()]});
    *state.last_attempt.lock() = Some((Instant::now() - REFRESH_MIN_INTERVAL, true));
    v.verify(&k2.token(claims(&idp.issuer))).await.unwrap();
    assert_eq!(idp.fetches.load(Ordering::SeqCst), 3);
    // Known kids need no fetch.
    v.verify(&k1.token(claims(&idp.issuer))).await.unwrap();
    assert_eq!(idp.fetches.load(Ordering::SeqCst), 3);
}

#[tokio::test]
async fn when_the_idp_is_down_cached_keys_still_work_and_unknown_keys_are_a_communication_error() {
    let k1 = Key::new("k1");
    let idp = idp(&[&k1]).await;
    let (v, _) = verifier(&idp.issuer);
    v.verify(&k1.token(claims(&idp.issuer))).await.unwrap();
    idp.down.store(true, Ordering::SeqCst);
    let state = v.providers.values().next().unwrap().clone();
    *state.last_attempt.lock() = Some((Instant::now() - REFRESH_MIN_INTERVAL, true));
    v.verify(&k1.token(claims(&idp.issuer))).await.unwrap();
    let r = v.verify(&Key::new("new").token(claims(&idp.issuer))).await;
    assert!(matches!(r, Err(JwtError::Unreachable(_))), "{r:?}");
    // Within the interval after a failure, no new fetch and still a communication error.
    let before = idp.fetches.load(Ordering::SeqCst);
    let r = v.verify(&Key::new("new2").token(claims(&idp.issuer))).await;
    assert!(matches!(r, Err(JwtError::Unreachable(_))), "{r:?}");
    assert_eq!(idp.fetches.load(Ordering::SeqCst), before);
}

#[tokio::test]
async fn a_never_reachable_idp_is_a_communication_error() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let issuer = format!("http://{}", listener.local_addr().unwrap());
    drop(listener);
    let (v, _) = verifier(&issuer);
    let k = Key::new("k1");
    let r = v.verify(&k.token(claims(&issuer))).await;
    assert!(matches!(r, Err(JwtError::Unreachable(_))), "{r:?}");
}

#[tokio::test]
async fn no_kid_is_accepted_only_with_a_single_usable_key() {
    let k1 = Key::new("k1");
    let idp1 = idp(&[&k1]).await;
    let (v, _) = verifier(&idp1.issuer);
    assert!(v
        .verify(&k1.sign(json!({"alg": "ES256"}), claims(&idp1.issuer)))
        .await
        .is_ok());
    let k2 = Key::new("k2");
    let idp2 = idp(&[&k1, &k2]).await;
    let (v2, _) = verifier(&idp2.issuer);
    let msg = invalid(
        v2.verify(&k1.sign(json!({"alg": "ES256"}), claims(&idp2.issuer)))
            .await,
    );
    assert!(msg.contains("several keys"), "{msg}");
}

#[tokio::test]
async fn a_browser_id_token_is_accepted_only_for_the_client_and_the_exact_issuer() {
    let k = Key::new("k1");
    let idp = idp(&[&k]).await;
    let (v, _) = verifier(&idp.issuer);
    let for_portal = |aud: Value, azp: Option<&str>| {
        k.token(with(claims(&idp.issuer), |m| {
            m.insert("aud".into(), aud);
            if let Some(a) = azp {
                m.insert("azp".into(), json!(a));
            }
        }))
    };
    let ok = v
        .verify_for_client(&for_portal(json!("portal"), None), &idp.issuer, "portal")
        .await
        .unwrap();
    assert_eq!(ok.audience, "portal");
    let ok = v
        .verify_for_client(
            &for_portal(json!(["portal", "client-a"]), Some("portal")),
            &idp.issuer,
            "portal",
        )
        .await
        .unwrap();
    assert_eq!(ok.audience, "portal");
    // The STS audiences do not count for the browser client, nor the browser client for the STS.
    let sts_token = for_portal(json!("client-a"), None);
    assert!(
        invalid(v.verify_for_client(&sts_token, &idp.issuer, "portal").await)
            .contains("aud is not one of the accepted audiences [\"portal\"]")
    );
    assert!(invalid(v.verify(&for_portal(json!("portal"), None)).await)
        .contains("aud is not one of the accepted audiences"));
    // Several audiences need azp naming the client.
    let no_azp = for_portal(json!(["portal", "client-a"]), None);
    assert!(
        invalid(v.verify_for_client(&no_azp, &idp.issuer, "portal").await)
            .contains("several audiences and no azp")
    );
    let other_azp = for_portal(json!(["portal", "client-a"]), Some("client-a"));
    assert!(!invalid(v.verify_for_client(&other_azp, &idp.issuer, "portal").await).is_empty());
    // A token of another configured issuer is not this provider's.
    let token = for_portal(json!("portal"), None);
    assert!(invalid(
        v.verify_for_client(&token, "http://127.0.0.1:1/other", "portal")
            .await
    )
    .contains("is not the provider's issuer"));
}
