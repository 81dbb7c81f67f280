//! Floors for the STS load benchmark: the least any AssumeRoleWithWebIdentity server can do on this
//! machine. `verify` parses the form, verifies the RS256 token with the same jsonwebtoken crate and key
//! type rolegate uses, and returns a fixed XML body; `plain` skips verification.
//!
//! Run by scripts/load (not by `cargo test`):
//! `cargo bench --bench floor -- --bench MODE PORT JWKS_FILE`

use axum::body::Bytes;
use axum::routing::post;
use axum::Router;
use jsonwebtoken::jwk::JwkSet;
use jsonwebtoken::{DecodingKey, Validation};
use std::sync::Arc;

const XML: &str = "<AssumeRoleWithWebIdentityResponse xmlns=\"https://sts.amazonaws.com/doc/2011-06-15/\"><AssumeRoleWithWebIdentityResult/></AssumeRoleWithWebIdentityResponse>";

struct Floor {
    verify: bool,
    keys: Vec<(String, DecodingKey)>,
}

async fn handle(state: Arc<Floor>, body: Bytes) -> (axum::http::StatusCode, &'static str) {
    let token = form_urlencoded::parse(&body)
        .find(|(k, _)| k == "WebIdentityToken")
        .map(|(_, v)| v.trim().to_string())
        .unwrap_or_default();
    if state.verify {
        let Ok(header) = jsonwebtoken::decode_header(&token) else {
            return (axum::http::StatusCode::BAD_REQUEST, "bad token");
        };
        let Some((_, key)) = state
            .keys
            .iter()
            .find(|(k, _)| Some(k) == header.kid.as_ref())
        else {
            return (axum::http::StatusCode::BAD_REQUEST, "no key");
        };
        let mut v = Validation::new(header.alg);
        v.validate_aud = false;
        if jsonwebtoken::decode::<serde_json::Value>(&token, key, &v).is_err() {
            return (axum::http::StatusCode::BAD_REQUEST, "invalid");
        }
    }
    (axum::http::StatusCode::OK, XML)
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    // `cargo test --all-targets` runs bench targets without --bench: nothing to do then.
    let Some(pos) = args.iter().position(|a| a == "--bench") else {
        return;
    };
    let rest = &args[pos + 1..];
    if rest.len() < 3 {
        eprintln!("usage: floor --bench verify|plain PORT JWKS_FILE");
        std::process::exit(2);
    }
    let verify = rest[0] == "verify";
    let port: u16 = rest[1].parse().expect("port");
    let jwks: JwkSet =
        serde_json::from_str(&std::fs::read_to_string(&rest[2]).expect("jwks file")).expect("jwks");
    let keys = jwks
        .keys
        .iter()
        .filter_map(|k| Some((k.common.key_id.clone()?, DecodingKey::from_jwk(k).ok()?)))
        .collect();
    let state = Arc::new(Floor { verify, keys });
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("runtime");
    rt.block_on(async move {
        let app = Router::new().route(
            "/",
            post(move |body: Bytes| {
                let s = state.clone();
                async move { handle(s, body).await }
            }),
        );
        let listener = tokio::net::TcpListener::bind(("127.0.0.1", port))
            .await
            .expect("bind");
        axum::serve(listener, app).await.expect("serve");
    });
}
